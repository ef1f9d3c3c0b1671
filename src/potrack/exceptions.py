"""Every error potrack raises.

All of them derive from :class:`PotrackError`; each also derives from the builtin that fits
(``ValueError``, ``TypeError``, ``LookupError``, ``PermissionError``...) so that code written
against the builtins keeps working.  Each carries its context as attributes and has a message a
person can act on: what was wrong, with which value, and what would be accepted.

Errors raised while validating input collect **every** problem before raising (as cattrs does):
a :class:`ValidationError` lists each :class:`Problem` with the path where it was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "ApprovalError",
    "ConfigurationError",
    "ConflictError",
    "CurrencyError",
    "CurrencyMismatchError",
    "DecidedFieldError",
    "DuplicateError",
    "InvalidNumberError",
    "InvalidValueError",
    "MissingFieldError",
    "NotFoundError",
    "NotPermittedError",
    "NumberFormatError",
    "NumberOverflowError",
    "NumberingError",
    "PatternError",
    "PolicyError",
    "PotrackError",
    "Problem",
    "ReplayError",
    "SchemaVersionError",
    "StorageError",
    "TransitionRefusedError",
    "UnknownCurrencyError",
    "ValidationError",
]


class PotrackError(Exception):
    """Base class of every error potrack raises."""


@attrs.frozen
class Problem:
    """One thing wrong with some input.

    ``path`` locates it (``lines[2].unit_price``; empty for the whole input), ``message`` says what
    was wrong and what would be accepted.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(PotrackError, ValueError):
    """Input that cannot be accepted; ``problems`` lists every problem found, not just the first.

    >>> err = ValidationError("PurchaseOrder", [Problem("lines[0].quantity", "must be > 0, got 0")])
    >>> str(err)
    'invalid PurchaseOrder: lines[0].quantity: must be > 0, got 0'
    """

    def __init__(self, subject: str, problems: Iterable[Problem]) -> None:
        self.subject = subject
        self.problems: tuple[Problem, ...] = tuple(problems)
        if len(self.problems) == 1:
            text = f"invalid {subject}: {self.problems[0]}"
        else:
            listed = "".join(f"\n  - {p}" for p in self.problems)
            text = f"invalid {subject}: {len(self.problems)} problems:{listed}"
        super().__init__(text)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same problems with ``prefix`` prepended to each path (used for nested input)."""
        moved = [
            Problem(
                f"{prefix}.{p.path}" if p.path and not p.path.startswith("[") else prefix + p.path,
                p.message,
            )
            for p in self.problems
        ]
        return ValidationError(self.subject, moved)


class InvalidValueError(ValidationError, TypeError):
    """A field got a value of the wrong kind, e.g. a float where a Decimal is required.

    Derives from both ``ValueError`` and ``TypeError``: code catching either sees it.
    ``field`` names the field, ``value`` is what was given.
    """

    def __init__(self, field: str, value: object, expected: str, subject: str = "value") -> None:
        self.field = field
        self.value = value
        self.expected = expected
        super().__init__(subject, [Problem(field, f"expected {expected}, got {_show(value)}")])


class InvalidNumberError(InvalidValueError):
    """A money amount or a quantity that is not an exact, finite number.

    Floats, bools, NaN and infinities are refused: money is exact.

    >>> from decimal import Decimal
    >>> str(InvalidNumberError("quantity", 12.5, subject="PurchaseOrderLine"))
    'invalid PurchaseOrderLine: quantity: expected a Decimal, an int or a decimal string, got 12.5 (float)'
    """

    def __init__(
        self,
        field: str,
        value: object,
        expected: str = "a Decimal, an int or a decimal string",
        subject: str = "value",
    ) -> None:
        super().__init__(field, value, expected, subject)


class CurrencyError(PotrackError, ValueError):
    """Base class of currency problems."""


class UnknownCurrencyError(CurrencyError):
    """A currency code that is not an ISO 4217 code known to CLDR.

    ``code`` is what was given.  Babel silently answers 2 decimals for unknown codes; potrack
    refuses them instead.
    """

    def __init__(self, code: object, field: str | None = None) -> None:
        self.code = code
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(
            f"{where}unknown currency code {code!r}: expected a three-letter ISO 4217 code "
            "such as 'USD', 'EUR' or 'JPY'"
        )


class CurrencyMismatchError(CurrencyError, TypeError):
    """Two amounts in different currencies were combined or compared.

    ``expected`` and ``actual`` are the two currency codes; ``field`` says where.
    """

    def __init__(self, expected: str, actual: str, field: str | None = None) -> None:
        self.expected = expected
        self.actual = actual
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(
            f"{where}currency {actual} does not match {expected}; convert the amount to "
            f"{expected} first (with an explicit exchange rate)"
        )


class NotFoundError(PotrackError, LookupError):
    """Something looked up by id does not exist.  ``kind`` and ``key`` say what was looked for."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} with id {key!r}")


class DuplicateError(PotrackError, ValueError):
    """Something was added twice (a second document with an existing id, say)."""

    def __init__(self, kind: str, key: object, detail: str = "") -> None:
        self.kind = kind
        self.key = key
        extra = f": {detail}" if detail else ""
        super().__init__(f"{kind} {key!r} already exists{extra}")


class ConflictError(PotrackError):
    """Optimistic concurrency conflict: the aggregate changed since it was read.

    Nothing was written.  ``expected`` is the version the store must hold for the save to apply
    (the saved aggregate's version minus one), ``actual`` what it holds (``None`` if absent).
    Reload the aggregate, re-apply the event and save again.
    """

    def __init__(self, kind: str, key: object, expected: int, actual: int | None) -> None:
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual
        held = "nothing" if actual is None else f"version {actual}"
        super().__init__(
            f"{kind} {key!r} was changed by someone else: the save expected version {expected} "
            f"in the store, which holds {held}; reload it and apply the change again"
        )


class TransitionRefusedError(PotrackError):
    """An event that is not allowed on a document in its current state.

    Carries ``document`` (its number or id), ``state``, ``event``, every reason (``reasons``) and,
    when known, the ``actor`` who sent it — who tried what on which document, and why.
    Nothing was changed.
    """

    def __init__(
        self,
        document: str,
        state: str,
        event: str,
        reasons: Sequence[str],
        actor: str | None = None,
    ) -> None:
        self.document = document
        self.state = state
        self.event = event
        self.reasons: tuple[str, ...] = tuple(reasons)
        self.actor = actor
        who = f"{actor} " if actor else ""
        super().__init__(f"{who}cannot {event} on {document}: " + "; ".join(self.reasons))


class NotPermittedError(TransitionRefusedError, PermissionError):
    """The actor may not do this: a missing role, another department's or supplier's document,
    segregation of duties, an actor the directory does not know or describes otherwise."""

    actor: str

    def __init__(
        self, document: str, state: str, event: str, reasons: Sequence[str], actor: str
    ) -> None:
        super().__init__(document, state, event, reasons, actor)


class DecidedFieldError(NotPermittedError):
    """A command carried a value that only the library decides (a route, a re-approval flag, who a
    delegate acts for, a decision time...).  ``fields`` names each one; nothing was changed.

    >>> err = DecidedFieldError("PO-7", "draft", "submit for approval", ("route",), "buyer-1")
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    buyer-1 cannot submit for approval on PO-7: route is decided by potrack when the command
    is applied; send the command without it
    """

    def __init__(
        self, document: str, state: str, event: str, fields: Sequence[str], actor: str
    ) -> None:
        self.fields: tuple[str, ...] = tuple(fields)
        names = ", ".join(self.fields)
        verb = "is" if len(self.fields) == 1 else "are"
        super().__init__(
            document,
            state,
            event,
            [
                f"{names} {verb} decided by potrack when the command is applied; send the command "
                "without it"
            ],
            actor,
        )


class ReplayError(PotrackError, ValueError):
    """Transition records that cannot be replayed (a gap in versions, no creation first...)."""


class ApprovalError(PotrackError, ValueError):
    """A decision that does not fit the route (unknown step, step already decided...)."""


class NumberingError(PotrackError):
    """Base class of document-numbering errors."""


class PatternError(NumberingError, ValueError):
    """A numbering pattern that cannot be compiled.

    ``pattern`` is the pattern, ``position`` the 0-based offset of the problem and ``expected`` what
    would have been accepted there.
    """

    def __init__(self, pattern: str, position: int, message: str, expected: str = "") -> None:
        self.pattern = pattern
        self.position = position
        self.expected = expected
        caret = " " * position + "^"
        want = f"; expected {expected}" if expected else ""
        super().__init__(f"{message} at position {position}{want}\n  {pattern}\n  {caret}")


class MissingFieldError(NumberingError, LookupError):
    """A numbering pattern needs a field the document does not supply."""

    def __init__(self, token: str, pattern: str) -> None:
        self.token = token
        self.pattern = pattern
        super().__init__(
            f"pattern {pattern!r} needs {{{token}}} but the document supplies no value for "
            f"{token!r}; set it on the NumberingContext"
        )


class NumberOverflowError(NumberingError, OverflowError):
    """The counter would exceed the width the pattern gives it."""

    def __init__(self, scope: str, value: int, width: int) -> None:
        self.scope = scope
        self.value = value
        self.width = width
        super().__init__(
            f"counter for scope {scope!r} reached {value}, which does not fit in {width} digits; "
            "widen the counter in the pattern or change its scope (numbers are never widened "
            "silently)"
        )


class NumberFormatError(NumberingError, ValueError):
    """A document number that does not fit its pattern or fails its check digit."""

    def __init__(self, number: str, reason: str) -> None:
        self.number = number
        self.reason = reason
        super().__init__(f"{number!r} is not a valid document number: {reason}")


class PolicyError(ValidationError):
    """A policy (approval or tolerance) that cannot be loaded; ``problems`` locates each one."""


class ConfigurationError(PotrackError, ValueError):
    """Settings that contradict each other or name something unknown."""


class StorageError(PotrackError):
    """Base class of storage-adapter errors other than conflicts."""


class SchemaVersionError(StorageError):
    """A database written by a newer potrack (or not a potrack database at all)."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"{path}: database schema version {found} is newer than this potrack supports "
            f"({supported}); upgrade potrack to open it"
        )


def _show(value: Any) -> str:
    """``12.5 (float)`` — the value and its type, as error messages show them."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"
