"""Document numbers: a small pattern language, unique and sortable, parseable back into parts.

A :class:`NumberingScheme` turns a pattern such as ``PO-{dept}-{yyyy}-{seq:05}-{check:mod97}`` into
numbers like ``PO-OPS-2026-00012-47``:

>>> scheme = NumberingScheme("PO-{dept}-{yyyy}-{seq:05}")
>>> ctx = NumberingContext(on=date(2026, 11, 24), department="ops")
>>> scheme.format(ctx, 12)
'PO-OPS-2026-00012'
>>> scheme.scope(ctx)
'PO-OPS-2026-'
>>> parsed = scheme.parse("PO-OPS-2026-00012-R2")
>>> parsed.counter, parsed.value("dept"), parsed.revision
(12, 'OPS', 2)

Grammar
-------
::

    pattern  := ( literal | token )*
    literal  := any character but "{" and "}";  "{{" and "}}" stand for "{" and "}"
    token    := "{" name [ ":" spec ] "}"

Tokens:

=================  ==========================================================================
``{yyyy}``         year, 4 digits                      (``date:%Y``)
``{yy}``           year, 2 digits                      (``date:%y``)
``{mm}``           month, 2 digits
``{dd}``           day of month, 2 digits
``{ww}``           ISO week, 2 digits (use with ``{date:%G}``, the ISO week-year)
``{q}``            quarter, 1 digit
``{fy}``           fiscal year, 4 digits, named by the calendar year it ends in; the first month
                   is the scheme's ``fiscal_year_start`` (10 → Oct 2026 – Sep 2027 is FY 2027)
``{fyy}``          fiscal year, 2 digits
``{date:FMT}``     ``FMT`` built from ``%Y %y %m %d %j %V %G`` and literal characters
``{dept}``         the department code       \\
``{company}``      the company code           | upper-cased; only A–Z and 0–9 are allowed
``{site}``         the site code              | (other characters are an error, or removed when
``{supplier}``     the supplier's code        | the scheme sanitizes — see below)
``{initials}``     the supplier's initials   /
``{field:NAME}``   any named value of the context (``NumberingContext.fields``)
``{seq:05}``       the counter, zero-padded to the given width (required, exactly one)
``{check:mod97}``  ISO 7064 MOD 97-10 check digits (2) over the letters and digits before it
``{check:luhn}``   a Luhn check digit (1) over the letters and digits before it (A=10 … Z=35)
``{NAME[:ARG]}``   a custom token registered on the scheme (a :class:`NumberToken` or callable)
=================  ==========================================================================

Rules checked when the pattern is compiled (a :class:`~potrack.exceptions.PatternError` names the
position and what was expected): exactly one counter; at most one check, after the counter; a
variable-length token (a field or custom token) is followed by the end of the pattern or by a
literal starting with a character that is neither a letter nor a digit, so numbers parse back
unambiguously.

Scope
-----
The counter restarts for every distinct *scope*.  By default the scope is the resolved text before
the counter (as ERPNext does): with ``{yyyy}`` before the counter, numbering restarts every year;
with ``{dept}`` before it, every department counts on its own.  Pass ``scope=all_parts_scope`` to
scope by every value of the number (useful when fields come after the counter) or
``scope=global_scope`` for one counter for all numbers, or any callable taking the resolved
:class:`Parts`.  A scope must change whenever the text outside the counter changes, or two numbers
could coincide.

Sanitizing
----------
Field values are upper-cased.  With ``sanitize=False`` (the default) a value holding other
characters than A–Z and 0–9 raises :class:`~potrack.exceptions.NumberingError`; with
``sanitize=True`` those characters are dropped (``"R&D"`` → ``RD``) and an empty result is an error.

Allocation
----------
Numbers are allocated through a :class:`~potrack.typing.SequenceStore`:

* :class:`GaplessAllocator` takes the next value inside the caller's unit of work: the number is
  consumed only if the document is committed with it.  No gaps.
* :class:`BlockAllocator` reserves blocks of values per process (in a short unit of work of its
  own) and hands them out from memory: fast under contention, but a process that stops leaves the
  rest of its block unused.  :func:`find_gaps` lists what is missing in a range.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from functools import lru_cache, partial
from typing import Protocol, runtime_checkable

import attrs

from potrack.exceptions import (
    MissingFieldError,
    NumberFormatError,
    NumberingError,
    NumberOverflowError,
    PatternError,
    StorageError,
)
from potrack.records import PurchaseOrder, Supplier
from potrack.typing import Store, UnitOfWork

__all__ = [
    "BlockAllocator",
    "Gap",
    "GaplessAllocator",
    "NumberToken",
    "NumberingContext",
    "NumberingScheme",
    "ParsedNumber",
    "Parts",
    "all_parts_scope",
    "find_gaps",
    "global_scope",
    "luhn_check_digit",
    "mod97_check_digits",
    "prefix_scope",
]

_ALNUM = re.compile(r"[A-Z0-9]+")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def _as_dict(mapping: Mapping[str, str]) -> dict[str, str]:
    return dict(mapping)


# -- context ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NumberingContext:
    """What a pattern's tokens may refer to: the date and the document's fields.

    >>> NumberingContext(on=date(2026, 3, 1), fields={"region": "emea"}).value("region")
    'emea'
    """

    on: date
    department: str | None = None
    company: str | None = None
    site: str | None = None
    supplier_code: str | None = None
    supplier_initials: str | None = None
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_as_dict)

    @classmethod
    def for_order(
        cls, po: PurchaseOrder, on: date, supplier: Supplier | None = None
    ) -> NumberingContext:
        """The context of a purchase order issued on ``on`` (supplier fields from ``supplier``)."""
        return cls(
            on=on,
            department=po.department,
            company=po.company,
            site=po.site,
            supplier_code=supplier.code if supplier else None,
            supplier_initials=supplier.initials if supplier else None,
            fields={k: v for k, v in (("cost_centre", po.cost_centre),) if v},
        )

    def value(self, name: str) -> str | None:
        """The value of a built-in field (``dept``...) or of a named extra field."""
        attribute = _BUILTIN_FIELDS.get(name)
        if attribute is not None:
            found: str | None = getattr(self, attribute)
            return found
        return self.fields.get(name)


_BUILTIN_FIELDS = {
    "dept": "department",
    "company": "company",
    "site": "site",
    "supplier": "supplier_code",
    "initials": "supplier_initials",
}


@runtime_checkable
class NumberToken(Protocol):
    """**Protocol:** a custom token registered on a :class:`NumberingScheme`.

    ``regex`` describes every text ``render`` may produce (no capturing groups); ``fixed_width``
    says whether that text always has the same length.
    """

    @property
    def regex(self) -> str:
        """A regular expression (no capturing groups) matching every text ``render`` produces."""
        ...

    @property
    def fixed_width(self) -> bool:
        """Whether the rendered text always has the same length."""
        ...

    def render(self, context: NumberingContext, argument: str | None) -> str:
        """The token's text for this document (``argument`` is what followed ``:``, if anything)."""
        ...


@attrs.frozen
class _CallableToken:
    """Adapts a plain ``context -> str`` callable: upper-case letters and digits, any length."""

    fn: Callable[[NumberingContext], str]
    regex: str = "[A-Z0-9]+"
    fixed_width: bool = False

    def render(self, context: NumberingContext, argument: str | None) -> str:
        return self.fn(context)


# -- check digits -----------------------------------------------------------------------------------


def _constant(text: str, _: object) -> str:
    return text


_LETTER_DIGITS = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})


def _digits_of(text: str) -> str:
    """Letters and digits of ``text`` as digits (A=10 … Z=35); other characters are skipped."""
    if text.isdigit():
        return text
    return _segment_digits(text)


@lru_cache(maxsize=4096)
def _segment_digits(text: str) -> str:
    return _NOT_ALNUM.sub("", text.upper()).translate(_LETTER_DIGITS)


def _digits_of_parts(parts: list[str]) -> str:
    """:func:`_digits_of` of the parts joined; literal and field parts repeat, so they are cached."""
    return "".join([p if p.isdigit() else _segment_digits(p) for p in parts])


def _mod97(digits: str) -> str:
    return f"{98 - (int(digits or '0') * 100) % 97:02d}"


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def mod97_check_digits(text: str) -> str:
    """ISO 7064 MOD 97-10 check digits (as IBAN uses) over the letters and digits of ``text``.

    The two digits make ``int(digits + check) % 97 == 1``; every single-character error and every
    transposition of adjacent characters is detected.

    >>> mod97_check_digits("PO2026000012")
    '77'
    >>> int(_digits_of("PO2026000012") + "77") % 97
    1
    """
    return _mod97(_digits_of(text))


def luhn_check_digit(text: str) -> str:
    """The Luhn check digit over the letters and digits of ``text`` (letters as A=10 … Z=35).

    >>> luhn_check_digit("7992739871")
    '3'
    """
    return _luhn(_digits_of(text))


_CHECKS: dict[str, tuple[Callable[[str], str], int]] = {
    "mod97": (_mod97, 2),
    "luhn": (_luhn, 1),
}
"""Check algorithms by name: a function of the digit string, and how many digits it adds."""


# -- compiled parts -----------------------------------------------------------------------------------

_DATE_DIRECTIVES = {
    "Y": (r"\d{4}", lambda d: f"{d.year:04d}"),
    "y": (r"\d{2}", lambda d: f"{d.year % 100:02d}"),
    "m": (r"\d{2}", lambda d: f"{d.month:02d}"),
    "d": (r"\d{2}", lambda d: f"{d.day:02d}"),
    "j": (r"\d{3}", lambda d: f"{d.timetuple().tm_yday:03d}"),
    "V": (r"\d{2}", lambda d: f"{d.isocalendar()[1]:02d}"),
    "G": (r"\d{4}", lambda d: f"{d.isocalendar()[0]:04d}"),
}
_SHORT_DATES = {"yyyy": "%Y", "yy": "%y", "mm": "%m", "dd": "%d", "ww": "%V"}
_FIELDS = ("dept", "company", "site", "supplier", "initials")


@attrs.frozen
class _Part:
    kind: str  # literal, date, field, counter, check, custom
    label: str  # the token as written, e.g. "dept" or "date:%Y"; the text for literals
    regex: str
    fixed: bool
    render: Callable[[NumberingContext], str] | None = None
    width: int = 0
    check: str | None = None


@attrs.frozen
class Parts:
    """A number's resolved parts, as scope rules see them.

    ``prefix`` is the text before the counter; ``values`` the text of every token but the counter
    and the check, in pattern order, keyed by token label.
    """

    prefix: str
    values: tuple[tuple[str, str], ...]


def prefix_scope(parts: Parts) -> str:
    """The default scope: the text before the counter (ERPNext's rule)."""
    return parts.prefix


def all_parts_scope(parts: Parts) -> str:
    """Scope by every token value of the number, wherever it stands."""
    return "|".join(f"{label}={text}" for label, text in parts.values)


def global_scope(parts: Parts) -> str:
    """One counter for every number of the scheme."""
    return ""


@attrs.frozen
class ParsedNumber:
    """A document number taken apart by :meth:`NumberingScheme.parse`.

    ``values`` holds the text of every token but the counter and check (``("dept", "OPS")``...).
    """

    number: str
    """The number without its revision suffix."""
    prefix: str
    values: tuple[tuple[str, str], ...]
    counter: int
    check: str | None
    revision: int | None
    scope: str

    def value(self, label: str) -> str | None:
        """The text of the token written ``label`` in the pattern (``dept``, ``date:%Y``...)."""
        for name, text in self.values:
            if name == label:
                return text
        return None


class NumberingScheme:
    """A compiled numbering pattern, with its own custom tokens and scope rule.

    Args:
        pattern: the pattern (see the module documentation for the grammar).
        name: namespace of the scheme's counters in the sequence store.
        tokens: custom tokens, by name: :class:`NumberToken` objects or ``context -> str``
            callables.  They belong to this scheme only; there is no global registry.
        fiscal_year_start: first month of the fiscal year (1–12) for ``{fy}`` and ``{fyy}``.
        scope: the scope rule (default :func:`prefix_scope`).
        sanitize: drop forbidden characters from field values instead of raising.
        revision_format: suffix of revisions; must contain ``{n}``.
        allow_overflow: never set it unless you accept numbers wider than the pattern says
            (default False: overflowing the counter's width is an error).

    Raises:
        PatternError: the pattern (or ``revision_format``) cannot be compiled.
        ValueError: ``fiscal_year_start`` is not a month.
    """

    def __init__(
        self,
        pattern: str,
        *,
        name: str = "po",
        tokens: Mapping[str, NumberToken | Callable[[NumberingContext], str]] | None = None,
        fiscal_year_start: int = 1,
        scope: Callable[[Parts], str] = prefix_scope,
        sanitize: bool = False,
        revision_format: str = "-R{n}",
        allow_overflow: bool = False,
    ) -> None:
        if type(fiscal_year_start) is not int or not 1 <= fiscal_year_start <= 12:
            raise ValueError(f"fiscal_year_start must be a month 1-12, got {fiscal_year_start!r}")
        self.pattern = pattern
        self.name = name
        self.fiscal_year_start = fiscal_year_start
        self.scope_rule = scope
        self.sanitize = sanitize
        self.allow_overflow = allow_overflow
        self._tokens: dict[str, NumberToken] = {}
        for token_name, token in (tokens or {}).items():
            self._tokens[token_name] = self._adapt(token_name, token)
        self.revision_format = revision_format
        self._parts = self._compile(pattern)
        self._counter_index = next(i for i, p in enumerate(self._parts) if p.kind == "counter")
        self._width = self._parts[self._counter_index].width
        # (0, text) literal, (1, render) token, (2, None) counter, (3, check function)
        self._steps: tuple[tuple[int, object], ...] = tuple(
            (0, p.label)
            if p.kind == "literal"
            else (2, None)
            if p.kind == "counter"
            else (3, _CHECKS[p.check][0])
            if p.kind == "check" and p.check
            else (1, p.render)
            for p in self._parts
        )
        self._revision_regex = self._compile_revision(revision_format)
        body = "".join(f"({p.regex})" for p in self._parts)
        self._regex = re.compile(f"^{body}(?:{self._revision_regex})?$")

    # -- definition ----------------------------------------------------------------------------------

    def with_token(
        self, name: str, token: NumberToken | Callable[[NumberingContext], str]
    ) -> NumberingScheme:
        """A new scheme with one more custom token (this one is unchanged)."""
        tokens: dict[str, NumberToken | Callable[[NumberingContext], str]] = dict(self._tokens)
        tokens[name] = token
        return NumberingScheme(
            self.pattern,
            name=self.name,
            tokens=tokens,
            fiscal_year_start=self.fiscal_year_start,
            scope=self.scope_rule,
            sanitize=self.sanitize,
            revision_format=self.revision_format,
            allow_overflow=self.allow_overflow,
        )

    @staticmethod
    def _adapt(name: str, token: NumberToken | Callable[[NumberingContext], str]) -> NumberToken:
        if not _NAME.fullmatch(name) or name in (
            *_FIELDS,
            *_SHORT_DATES,
            "seq",
            "check",
            "date",
            "field",
            "q",
            "fy",
            "fyy",
        ):
            raise ValueError(f"custom token name {name!r} is invalid or taken by a built-in token")
        if isinstance(token, NumberToken):
            re.compile(token.regex)
            return token
        if callable(token):
            return _CallableToken(token)
        raise TypeError(f"token {name!r} must be a NumberToken or a callable, got {token!r}")

    def _compile(self, pattern: str) -> tuple[_Part, ...]:
        parts: list[_Part] = []
        positions: list[int] = []
        literal: list[str] = []
        literal_start = 0
        i = 0

        def flush() -> None:
            if literal:
                text = "".join(literal)
                parts.append(_Part("literal", text, re.escape(text), True))
                positions.append(literal_start)
                literal.clear()

        while i < len(pattern):
            ch = pattern[i]
            if ch == "{" and pattern.startswith("{{", i):
                if not literal:
                    literal_start = i
                literal.append("{")
                i += 2
            elif ch == "}" and pattern.startswith("}}", i):
                if not literal:
                    literal_start = i
                literal.append("}")
                i += 2
            elif ch == "}":
                raise PatternError(pattern, i, "unmatched '}'", "'}}' for a literal brace")
            elif ch == "{":
                end = pattern.find("}", i)
                if end < 0:
                    raise PatternError(pattern, i, "unclosed '{'", "a token such as {seq:05}")
                flush()
                parts.append(self._token(pattern, i, pattern[i + 1 : end]))
                positions.append(i)
                i = end + 1
            else:
                if not literal:
                    literal_start = i
                literal.append(ch)
                i += 1
        flush()
        self._check_structure(pattern, parts, positions)
        return tuple(parts)

    def _token(self, pattern: str, at: int, body: str) -> _Part:
        name, _, spec = body.partition(":")
        has_spec = ":" in body
        spec_at = at + 1 + len(name) + 1
        if not _NAME.fullmatch(name):
            raise PatternError(
                pattern,
                at + 1,
                f"invalid token name {name!r}",
                "a lower-case name such as seq, yyyy or dept",
            )
        if name == "seq":
            if not has_spec or not spec.isdigit() or int(spec) < 1:
                raise PatternError(
                    pattern,
                    spec_at if has_spec else at + 4,
                    "a counter needs a width",
                    "a width such as {seq:05}",
                )
            width = int(spec)
            return _Part("counter", "seq", rf"\d{{{width}}}", True, width=width)
        if name == "check":
            if spec not in _CHECKS:
                raise PatternError(
                    pattern,
                    spec_at if has_spec else at + 6,
                    f"unknown check algorithm {spec!r}",
                    "mod97 or luhn",
                )
            digits = _CHECKS[spec][1]
            return _Part("check", f"check:{spec}", rf"\d{{{digits}}}", True, check=spec)
        if name in _SHORT_DATES or name == "date":
            fmt = _SHORT_DATES.get(name, spec)
            if name == "date" and not spec:
                raise PatternError(
                    pattern,
                    spec_at if has_spec else at + 5,
                    "a date token needs a format",
                    "e.g. {date:%Y%m}",
                )
            if name != "date" and has_spec:
                raise PatternError(pattern, spec_at, f"{{{name}}} takes no argument", "'}'")
            return self._date_part(pattern, spec_at if name == "date" else at, body, fmt)
        if name in ("q", "fy", "fyy"):
            if has_spec:
                raise PatternError(pattern, spec_at, f"{{{name}}} takes no argument", "'}'")
            render, regex = {
                "q": (lambda c: str((c.on.month - 1) // 3 + 1), r"[1-4]"),
                "fy": (lambda c: f"{self._fiscal_year(c.on):04d}", r"\d{4}"),
                "fyy": (lambda c: f"{self._fiscal_year(c.on) % 100:02d}", r"\d{2}"),
            }[name]
            return _Part("date", name, regex, True, render=render)
        if name in _FIELDS or name == "field":
            field = spec if name == "field" else name
            if name == "field" and not _NAME.fullmatch(spec or ""):
                raise PatternError(
                    pattern, spec_at, "a field token needs a field name", "e.g. {field:cost_centre}"
                )
            if name != "field" and has_spec:
                raise PatternError(pattern, spec_at, f"{{{name}}} takes no argument", "'}'")
            label = f"field:{field}" if name == "field" else name
            return _Part(
                "field",
                label,
                "[A-Z0-9]+",
                False,
                render=partial(self._field, name=field, label=label),
            )
        if name in self._tokens:
            token = self._tokens[name]
            argument = spec if has_spec else None
            return _Part(
                "custom",
                body,
                f"(?:{token.regex})",
                token.fixed_width,
                render=partial(self._custom, token=token, argument=argument, label=body),
            )
        known = ", ".join(
            [
                *_SHORT_DATES,
                "q",
                "fy",
                "fyy",
                "date",
                *_FIELDS,
                "field",
                "seq",
                "check",
                *sorted(self._tokens),
            ]
        )
        raise PatternError(pattern, at + 1, f"unknown token {{{name}}}", f"one of {known}")

    def _date_part(self, pattern: str, at: int, label: str, fmt: str) -> _Part:
        regex: list[str] = []
        renders: list[Callable[[date], str]] = []
        i = 0
        while i < len(fmt):
            if fmt[i] == "%":
                directive = fmt[i + 1 : i + 2]
                if directive not in _DATE_DIRECTIVES:
                    raise PatternError(
                        pattern,
                        at + i,
                        f"unsupported date directive %{directive}",
                        "one of %Y %y %m %d %j %V %G",
                    )
                rx, fn = _DATE_DIRECTIVES[directive]
                regex.append(rx)
                renders.append(fn)
                i += 2
            else:
                text = fmt[i]
                regex.append(re.escape(text))
                renders.append(partial(_constant, text))
                i += 1

        @lru_cache(maxsize=128)
        def on_day(day: date) -> str:
            return "".join(r(day) for r in renders)

        return _Part("date", label, "".join(regex), True, render=lambda c: on_day(c.on))

    @staticmethod
    def _check_structure(pattern: str, parts: list[_Part], positions: list[int]) -> None:
        counters = [i for i, p in enumerate(parts) if p.kind == "counter"]
        checks = [i for i, p in enumerate(parts) if p.kind == "check"]
        if not counters:
            raise PatternError(
                pattern, len(pattern), "the pattern has no counter", "a counter such as {seq:05}"
            )
        if len(counters) > 1:
            raise PatternError(
                pattern, positions[counters[1]], "a second counter", "exactly one {seq:..}"
            )
        if len(checks) > 1:
            raise PatternError(
                pattern, positions[checks[1]], "a second check token", "at most one {check:..}"
            )
        if checks and checks[0] < counters[0]:
            raise PatternError(
                pattern,
                positions[checks[0]],
                "a check before the counter",
                "the check after {seq:..}",
            )
        for i, part in enumerate(parts):
            if part.fixed:
                continue
            nxt = parts[i + 1] if i + 1 < len(parts) else None
            if nxt is not None and not (nxt.kind == "literal" and not nxt.label[0].isalnum()):
                where = positions[i + 1]
                raise PatternError(
                    pattern,
                    where,
                    f"{{{part.label}}} has no fixed length and is not followed by a separator",
                    f"a separator such as '-' or '/' after {{{part.label}}}",
                )

    @staticmethod
    def _compile_revision(fmt: str) -> str:
        if fmt.count("{n}") != 1:
            raise PatternError(fmt, 0, "the revision format needs exactly one {n}", "e.g. -R{n}")
        before, after = fmt.split("{n}")
        if not before or before[-1].isdigit():
            raise PatternError(
                fmt, 0, "the revision format needs a non-digit before {n}", "e.g. -R{n}"
            )
        return re.escape(before) + r"(?P<revision>[1-9]\d*)" + re.escape(after)

    def _fiscal_year(self, on: date) -> int:
        if self.fiscal_year_start == 1:
            return on.year
        return on.year + 1 if on.month >= self.fiscal_year_start else on.year

    def _field(self, context: NumberingContext, name: str, label: str) -> str:
        value = context.value(name)
        if value is None or not value.strip():
            raise MissingFieldError(label, self.pattern)
        upper = value.upper()
        if _ALNUM.fullmatch(upper):
            return upper
        return self._clean(upper, label)

    def _custom(
        self, context: NumberingContext, token: NumberToken, argument: str | None, label: str
    ) -> str:
        value = token.render(context, argument)
        if not isinstance(value, str) or not re.fullmatch(token.regex, value):
            raise NumberingError(
                f"token {{{label}}} rendered {value!r}, which does not match its regex "
                f"{token.regex!r}"
            )
        return value

    def _clean(self, value: str, label: str) -> str:
        if _ALNUM.fullmatch(value):
            return value
        if self.sanitize:
            cleaned = _NOT_ALNUM.sub("", value)
            if cleaned:
                return cleaned
        bad = "".join(sorted(set(_NOT_ALNUM.findall(value))))
        rule = "" if self.sanitize else " (or create the scheme with sanitize=True to drop them)"
        raise NumberingError(
            f"value {value!r} for {{{label}}} has characters the pattern forbids ({bad!r}); "
            f"allowed: A-Z and 0-9{rule}"
        )

    # -- formatting ----------------------------------------------------------------------------------

    def resolve(self, context: NumberingContext) -> Parts:
        """The resolved parts of a number for ``context`` (everything but the counter and check).

        Raises:
            MissingFieldError: the context lacks a field the pattern needs.
            NumberingError: a field value has forbidden characters (and the scheme does not
                sanitize), or a custom token rendered something its regex does not allow.
        """
        prefix: list[str] = []
        values: list[tuple[str, str]] = []
        for i, part in enumerate(self._parts):
            if part.kind in ("counter", "check"):
                continue
            text = part.label if part.kind == "literal" else part.render(context)  # type: ignore[misc]
            if i < self._counter_index:
                prefix.append(text)
            if part.kind != "literal":
                values.append((part.label, text))
        return Parts("".join(prefix), tuple(values))

    def scope(self, context: NumberingContext) -> str:
        """The counter scope of a number for ``context`` (by the scheme's scope rule).

        Raises:
            MissingFieldError, NumberingError: as :meth:`resolve`.
        """
        return self.scope_rule(self.resolve(context))

    def sequence_key(self, context: NumberingContext) -> str:
        """The key of the counter in the sequence store: ``name:scope``."""
        return f"{self.name}:{self.scope(context)}"

    def format(self, context: NumberingContext, counter: int) -> str:
        """The number with counter value ``counter`` (1 or more).

        Raises:
            NumberOverflowError: the counter does not fit the pattern's width.
            ValueError: ``counter`` is not a positive int.
            MissingFieldError, NumberingError: as :meth:`resolve`.
        """
        if type(counter) is not int or counter < 1:
            raise ValueError(f"counter must be a positive int, got {counter!r}")
        digits = str(counter)
        if len(digits) > self._width:
            if not self.allow_overflow:
                raise NumberOverflowError(self.scope(context), counter, self._width)
        else:
            digits = digits.zfill(self._width)
        out: list[str] = []
        append = out.append
        for kind, payload in self._steps:
            if kind == 0:
                append(payload)  # type: ignore[arg-type]
            elif kind == 1:
                append(payload(context))  # type: ignore[operator]
            elif kind == 2:
                append(digits)
            else:
                append(payload(_digits_of_parts(out)))  # type: ignore[operator]
        return "".join(out)

    def revision(self, number: str, revision: int) -> str:
        """The number of revision ``revision`` (``PO-00012`` → ``PO-00012-R1``).

        Raises:
            NumberFormatError: ``number`` does not fit the pattern.
            ValueError: ``revision`` is not a positive int.
        """
        if type(revision) is not int or revision < 1:
            raise ValueError(f"revision must be a positive int, got {revision!r}")
        base = self.parse(number).number
        return base + self.revision_format.replace("{n}", str(revision))

    # -- parsing -------------------------------------------------------------------------------------

    def parse(self, number: str) -> ParsedNumber:
        """Take a number apart; checks its shape and its check digits.

        Raises:
            NumberFormatError: the number does not fit the pattern, or its check digits are wrong.
        """
        if not isinstance(number, str):
            raise NumberFormatError(str(number), "a document number is a string")
        match = self._regex.match(number)
        if match is None:
            raise NumberFormatError(number, f"it does not fit the pattern {self.pattern!r}")
        revision_text = match.group("revision")
        prefix: list[str] = []
        values: list[tuple[str, str]] = []
        counter = 0
        check: str | None = None
        seen: list[str] = []
        for i, part in enumerate(self._parts):
            text = match.group(i + 1)
            if part.kind == "counter":
                counter = int(text)
            elif part.kind == "check":
                expected = _CHECKS[part.check][0](_digits_of("".join(seen)))  # type: ignore[index]
                if text != expected:
                    raise NumberFormatError(number, f"check digits {text} should be {expected}")
                check = text
            elif part.kind != "literal":
                values.append((part.label, text))
            if i < self._counter_index:
                prefix.append(text)
            seen.append(text)
        if counter < 1:
            raise NumberFormatError(number, "the counter must be 1 or more")
        parts = Parts("".join(prefix), tuple(values))
        base = "".join(seen)
        return ParsedNumber(
            number=base,
            prefix=parts.prefix,
            values=parts.values,
            counter=counter,
            check=check,
            revision=int(revision_text) if revision_text else None,
            scope=self.scope_rule(parts),
        )

    def validate(self, number: str) -> None:
        """Raise :class:`NumberFormatError` unless ``number`` fits the pattern and its check."""
        self.parse(number)

    def is_valid(self, number: str) -> bool:
        """Whether ``number`` fits the pattern and its check digits are right."""
        try:
            self.parse(number)
        except NumberFormatError:
            return False
        return True

    def __repr__(self) -> str:
        return f"NumberingScheme({self.pattern!r}, name={self.name!r})"


# -- allocation ---------------------------------------------------------------------------------------


class GaplessAllocator:
    """Allocates numbers inside the caller's unit of work: consumed only if it commits.

    >>> from potrack.memory import InMemoryStore
    >>> scheme = NumberingScheme("PO-{yyyy}-{seq:04}")
    >>> numbers = GaplessAllocator(scheme)
    >>> store = InMemoryStore()
    >>> with store.unit_of_work() as uow:
    ...     numbers.allocate(NumberingContext(on=date(2026, 1, 2)), uow)
    'PO-2026-0001'
    """

    gapless = True

    def __init__(self, scheme: NumberingScheme) -> None:
        self.scheme = scheme

    def allocate(self, context: NumberingContext, uow: UnitOfWork | None = None) -> str:
        """The next number for ``context``, taken in ``uow`` (required).

        Raises:
            ValueError: no unit of work was given.
            NumberOverflowError, MissingFieldError, NumberingError: as
                :meth:`NumberingScheme.format`.
        """
        if uow is None:
            raise ValueError("a gapless number is taken inside the document's unit of work")
        key = self.scheme.sequence_key(context)
        value = uow.sequences.next_value(key)
        return self.scheme.format(context, value)


class BlockAllocator:
    """Fast allocation: reserves blocks of ``block_size`` values per scope, hands them out in memory.

    Thread-safe.  Each reservation is a short unit of work of its own on ``store``, so numbers are
    unique across processes sharing the store; values left in a block when the process stops are
    never used (gaps, which :func:`find_gaps` reports).
    """

    gapless = False

    def __init__(self, scheme: NumberingScheme, store: Store, block_size: int = 100) -> None:
        if type(block_size) is not int or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        self.scheme = scheme
        self.store = store
        self.block_size = block_size
        self._lock = threading.Lock()
        self._next: dict[str, tuple[int, int]] = {}
        self._pid = os.getpid()

    def allocate(self, context: NumberingContext, uow: UnitOfWork | None = None) -> str:
        """The next number for ``context`` (``uow`` is ignored: blocks are reserved on their own).

        Fork-safe: a process forked from this one does not inherit the blocks (its parent hands
        those out), it reserves its own.

        Raises:
            StorageError: a unit of work is open on ``store`` in this thread (the reservation
                would join it, and its rollback would hand the block out twice).
            NumberOverflowError, MissingFieldError, NumberingError: as
                :meth:`NumberingScheme.format`.
        """
        if getattr(self.store, "in_unit_of_work", False):
            raise StorageError(
                "BlockAllocator reserves blocks in a unit of work of its own: allocate before "
                "opening one on its store (or use GaplessAllocator inside it)"
            )
        key = self.scheme.sequence_key(context)
        if self._pid != os.getpid():
            # A child of fork: the parent's blocks are the parent's (and so may be its lock, if
            # another thread held it at the fork).
            self._lock = threading.Lock()
            self._next = {}
            self._pid = os.getpid()
        with self._lock:
            current, stop = self._next.get(key, (0, 0))
            if current >= stop:
                with self.store.unit_of_work() as own:
                    block = own.sequences.reserve(key, self.block_size)
                current, stop = block.start, block.stop
            self._next[key] = (current + 1, stop)
        return self.scheme.format(context, current)


# -- audit -------------------------------------------------------------------------------------------


@attrs.frozen
class Gap:
    """Counter values ``first`` … ``last`` (inclusive) missing in ``scope``."""

    scope: str
    first: int
    last: int

    @property
    def size(self) -> int:
        """How many values are missing."""
        return self.last - self.first + 1


def find_gaps(
    scheme: NumberingScheme,
    numbers: Iterable[str],
    *,
    first: int | None = 1,
    last: int | None = None,
) -> tuple[Gap, ...]:
    """Missing counter values per scope among ``numbers``, between ``first`` and ``last``.

    ``first`` defaults to 1 (``None``: the lowest number seen); ``last`` to the highest seen.
    Revisions count as their base number.  Gaps come sorted by scope, then counter.

    Raises:
        NumberFormatError: a number does not fit the scheme.

    >>> s = NumberingScheme("PO-{seq:03}")
    >>> find_gaps(s, ["PO-001", "PO-002", "PO-005", "PO-007", "PO-007-R1"])
    (Gap(scope='PO-', first=3, last=4), Gap(scope='PO-', first=6, last=6))
    """
    seen: dict[str, set[int]] = {}
    for number in numbers:
        parsed = scheme.parse(number)
        seen.setdefault(parsed.scope, set()).add(parsed.counter)
    gaps: list[Gap] = []
    for scope in sorted(seen):
        counters = seen[scope]
        low = min(counters) if first is None else first
        high = max(counters) if last is None else last
        run_start: int | None = None
        for value in range(low, high + 1):
            if value not in counters:
                if run_start is None:
                    run_start = value
            elif run_start is not None:
                gaps.append(Gap(scope, run_start, value - 1))
                run_start = None
        if run_start is not None:
            gaps.append(Gap(scope, run_start, high))
    return tuple(gaps)
