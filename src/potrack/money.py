"""Exact money and quantities: Decimal and py-moneyed ``Money``, never floats.

Where rounding happens
----------------------
potrack keeps every amount exact until money is *booked*:

* unit prices keep the precision they were given (AdventureWorks prices 45.5805 USD);
* a line's extended amount (quantity × unit price ÷ price unit) is kept exact while it is compared
  (matching compares exact values);
* amounts are rounded to the currency's precision (from CLDR, via babel) with an explicit
  :class:`Rounding` mode only where they are booked: an invoice's payable amount, a payment, a KPI
  reported in money, and :func:`round_money` when a host asks.

>>> from decimal import Decimal
>>> line = extended_amount(Decimal("3"), money("45.5805", "USD"))
>>> line
Money('136.7415', 'USD')
>>> round_money(line, Rounding.HALF_EVEN)
Money('136.74', 'USD')
>>> round_money(money("2.5", "JPY"), Rounding.HALF_EVEN), round_money(money("2.5", "JPY"), Rounding.HALF_UP)
(Money('2', 'JPY'), Money('3', 'JPY'))

Formatting always takes an explicit locale (default ``en_US``), never the machine's:

>>> format_money(money("1234.5", "EUR"), "de_DE")
'1.234,50\\xa0€'
"""

from __future__ import annotations

import decimal
import enum
import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

import babel.dates
import babel.numbers
from moneyed import Money

from potrack.exceptions import (
    CurrencyMismatchError,
    InvalidNumberError,
    InvalidValueError,
    UnknownCurrencyError,
)

__all__ = [
    "DEFAULT_LOCALE",
    "Money",
    "Rounding",
    "check_currency",
    "convert",
    "currency_precision",
    "extended_amount",
    "format_date",
    "format_datetime",
    "format_money",
    "format_percent",
    "format_quantity",
    "money",
    "percent_of",
    "quantum",
    "require_same_currency",
    "round_money",
    "sum_money",
    "to_decimal",
    "zero",
]

DEFAULT_LOCALE = "en_US"
"""The locale used when none is given.  Never the machine's locale."""

_HUNDRED = Decimal(100)


class Rounding(enum.Enum):
    """A named rounding mode; the value is the :mod:`decimal` constant it stands for.

    ``HALF_EVEN`` (banker's rounding) is potrack's default where a default is needed; accounting
    policies often want ``HALF_UP``.
    """

    HALF_EVEN = decimal.ROUND_HALF_EVEN
    HALF_UP = decimal.ROUND_HALF_UP
    HALF_DOWN = decimal.ROUND_HALF_DOWN
    UP = decimal.ROUND_UP
    DOWN = decimal.ROUND_DOWN
    CEILING = decimal.ROUND_CEILING
    FLOOR = decimal.ROUND_FLOOR


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    return frozenset(babel.numbers.list_currencies())


def check_currency(code: object, field: str | None = None) -> str:
    """Return ``code`` if it is an ISO 4217 code CLDR knows, else raise.

    Raises:
        UnknownCurrencyError: ``code`` is not a known three-letter code (``'usd'`` is refused too:
            codes are upper case).

    >>> check_currency("EUR")
    'EUR'
    """
    if not isinstance(code, str) or code not in _known_currencies():
        raise UnknownCurrencyError(code, field)
    return code


@lru_cache(maxsize=512)
def currency_precision(code: str) -> int:
    """Number of decimals the currency has, from CLDR (USD 2, JPY 0, BHD 3).

    Raises:
        UnknownCurrencyError: for a code CLDR does not know (babel would silently answer 2).

    >>> currency_precision("USD"), currency_precision("JPY"), currency_precision("BHD")
    (2, 0, 3)
    """
    check_currency(code)
    return int(babel.numbers.get_currency_precision(code))


def to_decimal(value: object, field: str = "value") -> Decimal:
    """Convert an exact number to a finite Decimal.

    Accepts a Decimal, an int or a decimal string (``"12.50"``).  Refuses floats, bools, NaN and
    infinities, naming ``field`` and the value.

    Raises:
        InvalidNumberError: for anything else.

    >>> to_decimal("12.50"), to_decimal(3)
    (Decimal('12.50'), Decimal('3'))
    >>> to_decimal(12.5, "unit_price")
    Traceback (most recent call last):
    ...
    potrack.exceptions.InvalidNumberError: invalid value: unit_price: expected a Decimal, an int or a decimal string, got 12.5 (float)
    """
    if type(value) is Decimal:
        result = value
    elif isinstance(value, bool):
        raise InvalidNumberError(field, value)
    elif isinstance(value, Decimal | int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidNumberError(field, value) from None
    else:
        raise InvalidNumberError(field, value)
    if not result.is_finite():
        raise InvalidNumberError(field, value, "a finite number")
    return result


def money(amount: object, currency: str, field: str = "amount") -> Money:
    """Build a Money from an exact amount and a validated currency code.

    ``Money(12.5, "USD")`` silently accepts a float; this constructor refuses it.

    Raises:
        InvalidNumberError: the amount is a float, bool, NaN, infinity or not a number.
        UnknownCurrencyError: the currency code is unknown.

    >>> money("12.50", "USD")
    Money('12.50', 'USD')
    """
    return Money(to_decimal(amount, field), check_currency(currency, field))


def check_money(value: object, field: str = "amount") -> Money:
    """Return ``value`` if it is a Money with a finite amount and a known currency, else raise.

    Raises:
        InvalidValueError: not a Money.
        InvalidNumberError: a NaN or infinite amount.
        UnknownCurrencyError: a currency CLDR does not know.
    """
    if not isinstance(value, Money):
        raise InvalidValueError(field, value, "a Money (potrack.money.money('12.50', 'USD'))")
    if not isinstance(value.amount, Decimal) or not value.amount.is_finite():
        raise InvalidNumberError(field, value.amount, "a finite amount")
    check_currency(value.currency.code, field)
    return value


def zero(currency: str) -> Money:
    """Zero in ``currency``.

    >>> zero("EUR")
    Money('0', 'EUR')
    """
    return Money(Decimal(0), check_currency(currency))


def require_same_currency(expected: str, *amounts: Money, field: str | None = None) -> None:
    """Raise unless every amount is in ``expected``.

    Raises:
        CurrencyMismatchError: naming the first amount in another currency.
    """
    for amount in amounts:
        code = amount.currency.code
        if code != expected:
            raise CurrencyMismatchError(expected, code, field)


def sum_money(amounts: Iterable[Money], currency: str) -> Money:
    """Exact sum of amounts, all in ``currency`` (zero for none).

    Raises:
        CurrencyMismatchError: an amount in another currency.

    >>> sum_money([money("1.10", "USD"), money("2.205", "USD")], "USD")
    Money('3.305', 'USD')
    """
    total = Decimal(0)
    for amount in amounts:
        if amount.currency.code != currency:
            raise CurrencyMismatchError(currency, amount.currency.code)
        total += amount.amount
    return Money(total, currency)


def round_money(amount: Money, rounding: Rounding) -> Money:
    """Round to the currency's precision (CLDR) with the given mode; the mode is never implied.

    >>> round_money(money("10.005", "USD"), Rounding.HALF_UP)
    Money('10.01', 'USD')
    >>> round_money(money("10.005", "USD"), Rounding.HALF_EVEN)
    Money('10.00', 'USD')
    >>> round_money(money("1.2345", "BHD"), Rounding.DOWN)
    Money('1.234', 'BHD')
    """
    code = amount.currency.code
    return Money(amount.amount.quantize(quantum(code), rounding=rounding.value), code)


def round_amount(value: Decimal, currency: str, rounding: Rounding) -> Decimal:
    """Round a bare Decimal to ``currency``'s precision (what :func:`round_money` does)."""
    return value.quantize(quantum(currency), rounding=rounding.value)


@lru_cache(maxsize=512)
def quantum(currency: str) -> Decimal:
    """The currency's smallest unit, for ``Decimal.quantize``.

    >>> quantum("USD"), quantum("JPY"), quantum("BHD")
    (Decimal('0.01'), Decimal('1'), Decimal('0.001'))

    Raises:
        UnknownCurrencyError: for a code CLDR does not know.
    """
    return Decimal(1).scaleb(-currency_precision(currency))


def extended_amount(
    quantity: Decimal, unit_price: Money, price_unit: Decimal = Decimal(1)
) -> Money:
    """Exact line amount: quantity × unit price ÷ price unit (not rounded).

    ``price_unit`` is how many units the price is for (a price per 100 pieces has ``100``).

    >>> extended_amount(Decimal("250"), money("12.00", "EUR"), Decimal("100"))
    Money('30.00', 'EUR')
    """
    value = quantity * unit_price.amount
    if price_unit != 1:
        value = value / price_unit
    return Money(value, unit_price.currency.code)


def convert(amount: Money, rate: Decimal, to_currency: str) -> Money:
    """Convert with an explicit rate (1 unit of ``amount``'s currency = ``rate`` ``to_currency``).

    The result is exact; round it with :func:`round_money` where it is booked.

    Raises:
        InvalidNumberError: the rate is not a positive exact number.
        UnknownCurrencyError: ``to_currency`` is unknown.

    >>> convert(money("100.00", "EUR"), Decimal("1.0850"), "USD")
    Money('108.500000', 'USD')
    """
    rate = to_decimal(rate, "rate")
    if rate <= 0:
        raise InvalidNumberError("rate", rate, "a positive exchange rate")
    return Money(amount.amount * rate, check_currency(to_currency))


def percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    """``part`` as a percent of ``whole`` (exact Decimal), or ``None`` when ``whole`` is zero.

    >>> percent_of(Decimal("-6.00"), Decimal("130.00")).quantize(Decimal("0.01"))
    Decimal('-4.62')
    """
    if whole == 0:
        return None
    return part * _HUNDRED / whole


def format_money(amount: Money, locale: str = DEFAULT_LOCALE, *, exact: bool = False) -> str:
    """Format money for people, in an explicit locale.

    By default the amount is shown at the currency's precision (rounded half-even for display
    only); ``exact=True`` keeps extra decimals, as unit prices need.

    >>> format_money(money("45.5805", "USD"))
    '$45.58'
    >>> format_money(money("45.5805", "USD"), exact=True)
    '$45.5805'
    >>> format_money(money("1234", "JPY"), "ja_JP")
    '￥1,234'
    """
    return str(
        babel.numbers.format_currency(
            amount.amount,
            amount.currency.code,
            locale=locale,
            decimal_quantization=not exact,
        )
    )


def format_quantity(quantity: Decimal, locale: str = DEFAULT_LOCALE, uom: str | None = None) -> str:
    """Format a quantity (all its decimals), with its unit of measure if given.

    >>> format_quantity(Decimal("1234.5"), "de_DE", "KG")
    '1.234,5 KG'
    """
    text = str(babel.numbers.format_decimal(quantity, locale=locale, decimal_quantization=False))
    return f"{text} {uom}" if uom else text


def format_percent(value: Decimal, locale: str = DEFAULT_LOCALE, digits: int = 2) -> str:
    """Format a percent given as a number of percent (``-4.615`` → ``-4.62 %`` in its locale's way).

    >>> format_percent(Decimal("-4.615"))
    '-4.62%'
    >>> format_percent(Decimal("12.5"), "de_DE", 1)
    '12,5\\xa0%'
    """
    return str(
        babel.numbers.format_percent(
            value / _HUNDRED, _percent_pattern(locale, digits), locale=locale
        )
    )


@lru_cache(maxsize=64)
def _percent_pattern(locale: str, digits: int) -> str:
    """The locale's own percent pattern (``#,##0 %`` in German) with ``digits`` decimals."""
    pattern = str(babel.Locale.parse(locale).percent_formats[None].pattern)
    if digits:
        pattern = re.sub(r"0(?=[^0#,]|$)", "0." + "0" * digits, pattern, count=1)
    return pattern


def format_date(value: date, locale: str = DEFAULT_LOCALE, form: str = "medium") -> str:
    """Format a date in an explicit locale (``form``: short, medium, long or full).

    >>> format_date(date(2026, 11, 24), "de_DE")
    '24.11.2026'
    """
    return str(babel.dates.format_date(value, format=form, locale=locale))


def format_datetime(value: datetime, locale: str = DEFAULT_LOCALE, form: str = "medium") -> str:
    """Format a timezone-aware datetime in an explicit locale, in its own offset.

    >>> from datetime import timezone
    >>> format_datetime(datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc), "en_US", "short")
    '11/24/26, 9:30\\u202fAM'
    """
    return str(babel.dates.format_datetime(value, format=form, tzinfo=value.tzinfo, locale=locale))
