"""Serialization at the edge: potrack's own cattrs converter.

Records know nothing of serialization; :func:`make_converter` returns a converter that turns any
record into JSON-ready data and back, exactly:

* ``Decimal`` ↔ string (``"45.5805"``; exponent kept, so ``"1.10"`` stays ``1.10``);
* ``Money`` ↔ ``{"amount": "45.5805", "currency": "USD"}``;
* ``datetime`` ↔ ISO 8601 with its UTC offset (naive datetimes are refused); ``date`` ↔ ISO date;
* enums ↔ their values; frozensets ↔ sorted lists; tuples ↔ lists;
* events ↔ an object with a ``"type"`` tag naming the event class.

Input is checked strictly — a float where a decimal string is expected, an int where a string is
expected, an unknown key — and **every** problem is reported at once, with its path, in one
:class:`~potrack.exceptions.ValidationError`:

>>> from potrack.records import PurchaseOrderLine
>>> conv = make_converter()
>>> conv.structure({"line_no": 1, "description": "Bolt", "category": "hardware",
...                 "quantity": 12.5, "uom": "EA",
...                 "unit_price": {"amount": "0.10", "currency": "USD"}}, PurchaseOrderLine)
Traceback (most recent call last):
...
potrack.exceptions.ValidationError: invalid PurchaseOrderLine: quantity: expected a decimal string, got 12.5 (float)

potrack never registers hooks on cattrs' global converter.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import UnionType
from typing import Any, TypeVar, Union

import attrs
import cattrs
from cattrs.cols import (
    is_namedtuple,
    namedtuple_dict_structure_factory,
    namedtuple_dict_unstructure_factory,
)
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from moneyed import Money

from potrack.events import EVENT_TYPES, Event
from potrack.exceptions import PotrackError, Problem, UnknownCurrencyError, ValidationError, _show
from potrack.money import check_currency

__all__ = ["PotrackConverter", "dumps", "loads", "make_converter"]

T = TypeVar("T")


class _InputError(ValueError):
    """A leaf problem found while structuring (turned into a :class:`Problem`)."""


def _expected(expected: str, value: object) -> _InputError:
    return _InputError(f"expected {expected}, got {_show(value)}")


def _structure_decimal(value: object, _: type) -> Decimal:
    if not isinstance(value, str):
        raise _expected("a decimal string", value)
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise _expected("a decimal string", value) from None
    if not result.is_finite():
        raise _expected("a finite decimal string", value)
    return result


def _structure_money(value: object, _: type) -> Money:
    if not isinstance(value, Mapping):
        raise _expected('an object {"amount": "12.50", "currency": "USD"}', value)
    problems = []
    extra = set(value) - {"amount", "currency"}
    if extra:
        problems.append(f"unexpected keys {sorted(extra)}")
    amount: Decimal | None = None
    try:
        amount = _structure_decimal(value.get("amount"), Decimal)
    except _InputError as err:
        problems.append(f"amount: {err}")
    code = value.get("currency")
    try:
        check_currency(code)
    except UnknownCurrencyError:
        problems.append(f"currency: expected a three-letter ISO 4217 code, got {_show(code)}")
    if problems:
        raise _InputError("; ".join(problems))
    return Money(amount, str(code))


def _structure_datetime(value: object, _: type) -> datetime:
    if not isinstance(value, str):
        raise _expected("an ISO 8601 date-time string", value)
    try:
        result = datetime.fromisoformat(value)
    except ValueError:
        raise _expected("an ISO 8601 date-time string", value) from None
    if result.tzinfo is None:
        raise _expected("a date-time with a UTC offset (e.g. 2026-11-24T09:30:00+00:00)", value)
    return result


def _structure_date(value: object, _: type) -> date:
    if not isinstance(value, str):
        raise _expected("an ISO date string (YYYY-MM-DD)", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _expected("an ISO date string (YYYY-MM-DD)", value) from None


def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _expected("a string", value)
    return value


def _structure_int(value: object, _: type) -> int:
    if type(value) is not int:
        raise _expected("an integer", value)
    return value


def _structure_bool(value: object, _: type) -> bool:
    if type(value) is not bool:
        raise _expected("true or false", value)
    return value


class PotrackConverter(cattrs.Converter):
    """A cattrs converter whose ``structure`` raises potrack's :class:`ValidationError`.

    Use :func:`make_converter` to get one configured for potrack's records.
    """

    def structure(self, obj: Any, cl: Any) -> Any:
        """Build an instance of ``cl`` from JSON-ready data.

        Raises:
            ValidationError: listing every problem with its path (never a bare KeyError or a
                half-built object).
        """
        try:
            return super().structure(obj, cl)
        except (ClassValidationError, IterableValidationError) as exc:
            problems = _problems(exc, "")
        except (_InputError, PotrackError, ForbiddenExtraKeysError, KeyError, TypeError) as exc:
            problems = _problems(exc, "")
        raise ValidationError(getattr(cl, "__name__", str(cl)), problems)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _problems(exc: BaseException, path: str) -> list[Problem]:
    if isinstance(exc, IterableValidationError):
        found: list[Problem] = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            found.extend(_problems(sub, f"{path}[{note.index!r}]"))
        for sub in without:
            found.extend(_problems(sub, path))
        return found
    if isinstance(exc, ClassValidationError):
        found = []
        with_notes_c, without_c = exc.group_exceptions()
        for sub, cnote in with_notes_c:
            found.extend(_problems(sub, _join(path, cnote.name)))
        for sub in without_c:
            found.extend(_problems(sub, path))
        return found
    if isinstance(exc, ForbiddenExtraKeysError):
        return [Problem(path, f"unknown keys {sorted(exc.extra_fields)}")]
    if isinstance(exc, ValidationError):
        return [Problem(_join(path, p.path) if p.path else path, p.message) for p in exc.problems]
    if isinstance(exc, KeyError):
        # cattrs notes the missing field's name, so ``path`` already ends with it.
        return [Problem(path, "required field missing")]
    if isinstance(exc, _InputError | PotrackError):
        return [Problem(path, str(exc))]
    if isinstance(exc, TypeError | ValueError):
        return [Problem(path, f"invalid value ({exc})")]
    return [Problem(path, f"{type(exc).__name__}: {exc}")]


def _make_event_hooks(conv: PotrackConverter) -> None:
    by_name = {cls.__name__: cls for cls in EVENT_TYPES}
    builders: dict[type[Event], Any] = {}
    dumpers: dict[type[Event], Any] = {}

    def unstructure_event(event: Event) -> dict[str, Any]:
        cls = type(event)
        if cls not in dumpers:
            dumpers[cls] = make_dict_unstructure_fn(cls, conv)
        data: dict[str, Any] = dumpers[cls](event)
        return {"type": cls.__name__, **data}

    def structure_event(value: object, wanted: type) -> Event:
        if not isinstance(value, Mapping):
            raise _expected('an event object with a "type" key', value)
        name = value.get("type", wanted.__name__ if wanted is not Event else None)
        cls = by_name.get(name) if isinstance(name, str) else None
        if cls is None or (wanted is not Event and cls is not wanted):
            allowed = sorted(by_name) if wanted is Event else [wanted.__name__]
            raise _InputError(f"unknown event type {name!r}; expected one of {allowed}")
        if cls not in builders:
            builders[cls] = make_dict_structure_fn(
                cls, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
            )
        body = {k: v for k, v in value.items() if k != "type"}
        result: Event = builders[cls](body, cls)
        return result

    conv.register_unstructure_hook(Event, unstructure_event)
    conv.register_structure_hook(Event, structure_event)


def make_converter() -> PotrackConverter:
    """A new converter for potrack's records (one per call; none is global).

    >>> from potrack.money import money
    >>> conv = make_converter()
    >>> conv.unstructure(money("45.5805", "USD"))
    {'amount': '45.5805', 'currency': 'USD'}
    >>> conv.structure({"amount": "45.5805", "currency": "USD"}, Money)
    Money('45.5805', 'USD')
    """
    conv = PotrackConverter(detailed_validation=True, forbid_extra_keys=True)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Money, _structure_money)
    conv.register_unstructure_hook(
        Money, lambda m: {"amount": str(m.amount), "currency": m.currency.code}
    )
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(date, _structure_date)
    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_unstructure_hook_func(
        lambda t: getattr(t, "__origin__", None) is frozenset,
        lambda value: sorted(conv.unstructure(v) for v in value),
    )
    # Results (a match result, its lines and findings) are NamedTuples: objects with their
    # field names, not bare lists.
    conv.register_unstructure_hook_factory(is_namedtuple, namedtuple_dict_unstructure_factory)
    conv.register_structure_hook_factory(
        is_namedtuple,
        # (detailed validation, forbid extra keys: positional-only)
        lambda cl, c: namedtuple_dict_structure_factory(cl, c, True, True),
    )
    conv.register_structure_hook_factory(_decimal_or_record, _structure_decimal_or_record)
    _make_event_hooks(conv)
    return conv


def _decimal_or_record(cl: Any) -> bool:
    """Whether ``cl`` is ``Decimal | SomeRecord`` (a setting that is an amount or a table)."""
    args = typing.get_args(cl)
    if len(args) != 2 or Decimal not in args or typing.get_origin(cl) not in (Union, UnionType):
        return False
    other = args[0] if args[1] is Decimal else args[1]
    return attrs.has(other)


def _structure_decimal_or_record(cl: Any, conv: cattrs.Converter) -> Any:
    """A decimal string is the amount, an object the record."""
    args = typing.get_args(cl)
    record = args[0] if args[1] is Decimal else args[1]

    def structure(value: object, _: Any) -> Any:
        return conv.structure(value, record if isinstance(value, Mapping) else Decimal)

    return structure


_DEFAULT: PotrackConverter | None = None


def _default() -> PotrackConverter:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = make_converter()
    return _DEFAULT


def dumps(record: object, *, converter: PotrackConverter | None = None) -> str:
    """Serialize a record to compact JSON with sorted keys (deterministic text).

    >>> from potrack.money import money
    >>> dumps(money("1.10", "EUR"))
    '{"amount":"1.10","currency":"EUR"}'
    """
    conv = converter or _default()
    return json.dumps(
        conv.unstructure(record), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def loads(text: str | bytes, cls: type[T], *, converter: PotrackConverter | None = None) -> T:
    """Parse JSON text into a ``cls`` record.

    Raises:
        ValidationError: the text is not JSON, or lists every problem with the data.
    """
    conv = converter or _default()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValidationError(cls.__name__, [Problem("", f"not valid JSON: {err}")]) from None
    result: T = conv.structure(data, cls)
    return result


class IncrementalEncoder:
    """Encodes successive versions of records to exactly the text :func:`dumps` gives, reusing the
    text of every part that is the same object as in the version encoded before.

    Records are immutable and a new version shares its unchanged parts with the old one (a PO with
    one more comment shares every earlier comment), so a store saving version *n + 1* right after
    version *n* encodes only what changed.  Field texts are joined in sorted key order; tuple
    fields of records are joined element by element, each element's text cached while the element
    lives in the cache.

    >>> from potrack.testing.samples import sample_po, bump
    >>> enc = IncrementalEncoder(make_converter())
    >>> po = sample_po()
    >>> enc.encode(po.id, po) == dumps(po)
    True
    >>> newer = bump(po, comments=())
    >>> enc.encode(po.id, newer) == dumps(newer)
    True
    """

    def __init__(self, converter: PotrackConverter, size: int = 4_096) -> None:
        self.converter = converter
        self.size = size
        self._last: dict[str, tuple[Any, dict[str, str]]] = {}
        self._elements: dict[int, tuple[Any, str]] = {}
        self._plans: dict[type, list[tuple[str, str, Any, Any]]] = {}

    def _plan(self, cls: type) -> list[tuple[str, str, Any, Any]]:
        """Per field, in key order: name, its JSON key text, declared type, element type of a
        variable-length tuple (or None)."""
        plan = self._plans.get(cls)
        if plan is None:
            attrs.resolve_types(cls)
            plan = []
            for field in sorted(attrs.fields(cls), key=lambda f: f.name):
                element = None
                if getattr(field.type, "__origin__", None) is tuple:
                    args: tuple[Any, ...] = getattr(field.type, "__args__", ())
                    if len(args) == 2 and args[1] is Ellipsis:
                        element = args[0]
                plan.append((field.name, json.dumps(field.name), field.type, element))
            self._plans[cls] = plan
        return plan

    def _text(self, value: Any, as_type: Any) -> str:
        return json.dumps(
            self.converter.unstructure(value, unstructure_as=as_type),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def _element(self, value: Any, as_type: Any) -> str:
        cached = self._elements.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        text = self._text(value, as_type)
        if len(self._elements) >= self.size * 64:
            self._elements.clear()
        self._elements[id(value)] = (value, text)
        return text

    def _sequence(self, value: tuple[Any, ...], before: Any, text: str | None, element: Any) -> str:
        """A tuple's text; when it extends the tuple encoded before (the same objects first, as
        a comment or a receipt is added), only the new elements are encoded."""
        n = len(before) if isinstance(before, tuple) else -1
        if (
            text is not None
            and 0 < n <= len(value)
            and all(a is b for a, b in zip(value, before, strict=False))
        ):
            if n == len(value):
                return text
            extra = ",".join(self._element(v, element) for v in value[n:])
            return f"{text[:-1]},{extra}]"
        return "[" + ",".join(self._element(v, element) for v in value) + "]"

    def encode(self, key: str, record: Any) -> str:
        """The JSON text of ``record`` (equal to ``dumps(record)``); ``key`` names the document
        whose versions follow one another (its id)."""
        previous = self._last.get(key)
        old, old_texts = previous if previous is not None else (None, {})
        if old is not None and type(old) is not type(record):
            old, old_texts = None, {}
        texts: dict[str, str] = {}
        parts = []
        for name, key_text, as_type, element in self._plan(type(record)):
            value = getattr(record, name)
            before = getattr(old, name) if old is not None else None
            if old is not None and before is value:
                text = old_texts[name]
            elif element is not None:
                text = self._sequence(value, before, old_texts.get(name), element)
            else:
                text = self._text(value, as_type)
            texts[name] = text
            parts.append(f"{key_text}:{text}")
        if len(self._last) >= self.size:
            self._last.clear()
        self._last[key] = (record, texts)
        return "{" + ",".join(parts) + "}"
