"""attrs field helpers that refuse inexact or malformed values at construction, naming the field.

Private: records use them; hosts meet only the errors they raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from moneyed import Money

from potrack.exceptions import InvalidNumberError, InvalidValueError, Problem, ValidationError
from potrack.money import check_currency, to_decimal

T = TypeVar("T")

_ZERO = Decimal(0)


def _subject(instance: object) -> str:
    return type(instance).__name__


def _decimal_converter(
    *, minimum: Decimal | None, strict_min: bool, optional: bool
) -> attrs.Converter:  # type: ignore[type-arg]
    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> Decimal | None:
        if value is None and optional:
            return None
        if type(value) is Decimal and value.is_finite():
            result = value
        else:
            try:
                result = to_decimal(value, field.name)
            except InvalidNumberError as err:
                raise InvalidNumberError(
                    field.name, value, err.expected, _subject(instance)
                ) from None
        if minimum is not None and (result <= minimum if strict_min else result < minimum):
            sign = ">" if strict_min else ">="
            raise InvalidNumberError(
                field.name, value, f"a number {sign} {minimum}", _subject(instance)
            )
        return result

    return attrs.Converter(convert, takes_self=True, takes_field=True)


def decimal(
    *, positive: bool = False, non_negative: bool = False, default: Any = attrs.NOTHING
) -> Any:
    """A Decimal field; accepts Decimal, int or decimal string, refuses floats/bools/NaN/inf."""
    minimum = _ZERO if (positive or non_negative) else None
    return attrs.field(
        converter=_decimal_converter(minimum=minimum, strict_min=positive, optional=False),
        default=default,
    )


def optional_decimal(*, positive: bool = False, non_negative: bool = False) -> Any:
    """A Decimal field that may be ``None``."""
    minimum = _ZERO if (positive or non_negative) else None
    return attrs.field(
        converter=_decimal_converter(minimum=minimum, strict_min=positive, optional=True),
        default=None,
    )


def _check_money(value: Any, instance: Any, field: attrs.Attribute[Any], optional: bool) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, Money):
        raise InvalidValueError(
            field.name, value, "a Money such as money('12.50', 'USD')", _subject(instance)
        )
    amount = value.amount
    if type(amount) is not Decimal or not amount.is_finite():
        raise InvalidNumberError(field.name, amount, "a finite Decimal amount", _subject(instance))
    check_currency(value.currency.code, f"{_subject(instance)}.{field.name}")
    return value


def money(*, optional: bool = False, default: Any = attrs.NOTHING) -> Any:
    """A Money field (finite Decimal amount, known currency)."""
    if optional and default is attrs.NOTHING:
        default = None
    return attrs.field(
        converter=attrs.Converter(
            lambda v, s, f: _check_money(v, s, f, optional), takes_self=True, takes_field=True
        ),
        default=default,
    )


def currency(*, optional: bool = False) -> Any:
    """An ISO 4217 currency code field."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> str | None:
        if value is None and optional:
            return None
        return check_currency(value, f"{_subject(instance)}.{field.name}")

    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True),
        default=None if optional else attrs.NOTHING,
    )


def _check_aware(value: Any, instance: Any, field: attrs.Attribute[Any], optional: bool) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(
            field.name,
            value,
            "a timezone-aware datetime (e.g. with tzinfo=UTC)",
            _subject(instance),
        )
    return value


def timestamp(*, optional: bool = False) -> Any:
    """A timezone-aware datetime field (naive datetimes are refused: they are ambiguous)."""
    return attrs.field(
        converter=attrs.Converter(
            lambda v, s, f: _check_aware(v, s, f, optional), takes_self=True, takes_field=True
        ),
        default=None if optional else attrs.NOTHING,
    )


def _check_date(value: Any, instance: Any, field: attrs.Attribute[Any], optional: bool) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidValueError(field.name, value, "a date (not a datetime)", _subject(instance))
    return value


def day(*, optional: bool = False) -> Any:
    """A ``date`` field (a datetime is refused: say which day you mean)."""
    return attrs.field(
        converter=attrs.Converter(
            lambda v, s, f: _check_date(v, s, f, optional), takes_self=True, takes_field=True
        ),
        default=None if optional else attrs.NOTHING,
    )


def _check_text(
    value: Any, instance: Any, field: attrs.Attribute[Any], optional: bool, required: bool
) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidValueError(field.name, value, "a string", _subject(instance))
    if required and not value.strip():
        raise InvalidValueError(field.name, value, "a non-empty string", _subject(instance))
    return value


def text(*, optional: bool = False, required: bool = True, default: Any = attrs.NOTHING) -> Any:
    """A string field; ``required`` refuses empty or blank strings."""
    if optional and default is attrs.NOTHING:
        default = None
    return attrs.field(
        converter=attrs.Converter(
            lambda v, s, f: _check_text(v, s, f, optional, required),
            takes_self=True,
            takes_field=True,
        ),
        default=default,
    )


def _check_int(value: Any, instance: Any, field: attrs.Attribute[Any], minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise InvalidValueError(field.name, value, f"an int >= {minimum}", _subject(instance))
    return value


def integer(*, minimum: int = 0, default: Any = attrs.NOTHING) -> Any:
    """An int field (bools refused)."""
    return attrs.field(
        converter=attrs.Converter(
            lambda v, s, f: _check_int(v, s, f, minimum), takes_self=True, takes_field=True
        ),
        default=default,
    )


def _check_bool(value: Any, instance: Any, field: attrs.Attribute[Any]) -> bool:
    if type(value) is not bool:
        raise InvalidValueError(field.name, value, "True or False", _subject(instance))
    return value


def optional_flag() -> Any:
    """A bool field that may be None (not yet decided)."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> bool | None:
        return None if value is None else _check_bool(value, instance, field)

    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=None
    )


def flag(default: bool = False) -> Any:
    """A bool field (``1`` or ``"yes"`` are refused)."""
    return attrs.field(
        converter=attrs.Converter(_check_bool, takes_self=True, takes_field=True), default=default
    )


def tuple_of(
    kind: type[T] | tuple[type, ...], *, default_empty: bool = True, optional: bool = False
) -> Any:
    """A tuple field whose items must all be instances of ``kind``; lists are converted."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> tuple[T, ...] | None:
        if value is None and optional:
            return None
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidValueError(field.name, value, "a sequence", _subject(instance))
        items = tuple(value)
        problems = [
            Problem(f"{field.name}[{i}]", f"expected {_kind_name(kind)}, got {type(item).__name__}")
            for i, item in enumerate(items)
            if not isinstance(item, kind)
        ]
        if problems:
            raise ValidationError(_subject(instance), problems)
        return items

    default: Any = None if optional else (() if default_empty else attrs.NOTHING)
    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=default
    )


def frozenset_of_str() -> Any:
    """A frozenset-of-strings field; any iterable of strings is converted."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> frozenset[str]:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise InvalidValueError(field.name, value, "a set of strings", _subject(instance))
        items = frozenset(value)
        if not all(isinstance(item, str) for item in items):
            raise InvalidValueError(field.name, value, "a set of strings", _subject(instance))
        return items

    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=frozenset()
    )


def enum_field(kind: type[T], *, default: Any = attrs.NOTHING, optional: bool = False) -> Any:
    """An enum field; the enum's value (``"3-way"``) is accepted and converted."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> T | None:
        if value is None and optional:
            return None
        if isinstance(value, kind):
            return value
        try:
            return kind(value)  # type: ignore[call-arg]
        except (ValueError, TypeError):
            allowed = ", ".join(repr(m.value) for m in kind)  # type: ignore[attr-defined]
            raise InvalidValueError(
                field.name, value, f"one of {allowed}", _subject(instance)
            ) from None

    if optional and default is attrs.NOTHING:
        default = None
    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=default
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def collect(subject: str, checks: Iterable[tuple[bool, str, str]]) -> None:
    """Raise one ValidationError listing every failed ``(ok, path, message)`` check."""
    problems = [Problem(path, message) for ok, path, message in checks if not ok]
    if problems:
        raise ValidationError(subject, problems)


def unique(values: Iterable[T]) -> list[T]:
    """The values that occur more than once (each once, in first-seen order)."""
    seen: set[T] = set()
    dupes: list[T] = []
    for value in values:
        if value in seen and value not in dupes:
            dupes.append(value)
        seen.add(value)
    return dupes


Check = Callable[[], Iterable[tuple[bool, str, str]]]


def record(kind: type[Any], *, optional: bool = False, default: Any = attrs.NOTHING) -> Any:
    """A field holding another record of type ``kind`` (or None when ``optional``)."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            raise InvalidValueError(field.name, value, f"a {kind.__name__}", _subject(instance))
        return value

    if optional and default is attrs.NOTHING:
        default = None
    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=default
    )


def optional_int(*, minimum: int = 1, default: int | None = None) -> Any:
    """An int field that may be None (bools refused)."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> int | None:
        if value is None:
            return None
        return _check_int(value, instance, field, minimum)

    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=default
    )


def tuple_of_str() -> Any:
    """A tuple-of-strings field; any iterable of strings (not a bare string) is converted."""

    def convert(value: Any, instance: Any, field: attrs.Attribute[Any]) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise InvalidValueError(field.name, value, "a sequence of strings", _subject(instance))
        items = tuple(value)
        if not all(isinstance(item, str) for item in items):
            raise InvalidValueError(field.name, value, "a sequence of strings", _subject(instance))
        return items

    return attrs.field(
        converter=attrs.Converter(convert, takes_self=True, takes_field=True), default=()
    )
