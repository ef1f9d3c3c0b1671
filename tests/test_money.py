"""Exact money: conversion, rounding to CLDR precision, currencies, locale-aware formatting."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potrack.exceptions import CurrencyMismatchError, InvalidNumberError, UnknownCurrencyError
from potrack.money import (
    Money,
    Rounding,
    check_currency,
    convert,
    currency_precision,
    extended_amount,
    format_date,
    format_money,
    format_percent,
    format_quantity,
    money,
    percent_of,
    require_same_currency,
    round_money,
    sum_money,
    to_decimal,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", Decimal("12.50")),
        (3, Decimal(3)),
        (Decimal("0.001"), Decimal("0.001")),
        (" 7 ", Decimal(7)),
    ],
)
def test_to_decimal_accepts_exact_numbers(value: object, expected: Decimal) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize(
    "value", [12.5, True, False, float("nan"), "NaN", "Infinity", "-inf", "abc", None, [1]]
)
def test_to_decimal_refuses_inexact_values_naming_field_and_value(value: object) -> None:
    with pytest.raises(InvalidNumberError) as info:
        to_decimal(value, "unit_price")
    assert info.value.field == "unit_price"
    assert info.value.value is value or repr(info.value.value) == repr(value)
    assert "unit_price" in str(info.value)
    assert repr(value)[:20] in str(info.value)


def test_float_error_is_also_a_type_and_value_error() -> None:
    with pytest.raises(TypeError):
        to_decimal(1.5)
    with pytest.raises(ValueError, match=r"got 1\.5 \(float\)"):
        to_decimal(1.5)


def test_money_constructor_refuses_float_and_unknown_currency() -> None:
    with pytest.raises(InvalidNumberError, match="float"):
        money(10.5, "USD")
    with pytest.raises(UnknownCurrencyError, match="'XXZ'") as info:
        money("10.5", "XXZ")
    assert info.value.code == "XXZ"
    with pytest.raises(UnknownCurrencyError):
        money("1", "usd")


def test_unknown_currency_is_refused_where_babel_would_answer_two() -> None:
    with pytest.raises(UnknownCurrencyError):
        currency_precision("QQQ")
    assert check_currency("EUR") == "EUR"


@pytest.mark.parametrize(
    ("code", "digits"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3), ("KWD", 3), ("CLP", 0)]
)
def test_currency_precision_comes_from_cldr(code: str, digits: int) -> None:
    assert currency_precision(code) == digits


@pytest.mark.parametrize(
    ("amount", "code", "mode", "expected"),
    [
        ("10.005", "USD", Rounding.HALF_UP, "10.01"),
        ("10.005", "USD", Rounding.HALF_EVEN, "10.00"),
        ("10.015", "USD", Rounding.HALF_EVEN, "10.02"),
        ("10.005", "USD", Rounding.HALF_DOWN, "10.00"),
        ("-10.001", "USD", Rounding.FLOOR, "-10.01"),
        ("-10.009", "USD", Rounding.CEILING, "-10.00"),
        ("10.001", "USD", Rounding.UP, "10.01"),
        ("2.5", "JPY", Rounding.HALF_EVEN, "2"),
        ("3.5", "JPY", Rounding.HALF_EVEN, "4"),
        ("1.2345", "BHD", Rounding.DOWN, "1.234"),
        ("1.2345", "BHD", Rounding.HALF_UP, "1.235"),
    ],
)
def test_round_money_uses_currency_precision_and_named_mode(
    amount: str, code: str, mode: Rounding, expected: str
) -> None:
    rounded = round_money(money(amount, code), mode)
    assert rounded.amount == Decimal(expected)
    assert rounded.amount.as_tuple().exponent == -currency_precision(code)


def test_unit_prices_keep_their_precision_until_booked() -> None:
    # AdventureWorks: 45.5805 USD per unit, 3 units.
    line = extended_amount(Decimal(3), money("45.5805", "USD"))
    assert line.amount == Decimal("136.7415")
    assert round_money(line, Rounding.HALF_UP).amount == Decimal("136.74")


def test_extended_amount_divides_by_price_unit() -> None:
    # 250 pieces at 12.00 per 100 pieces = 30.00
    assert extended_amount(Decimal(250), money("12.00", "EUR"), Decimal(100)) == money("30", "EUR")


def test_mixed_currencies_raise() -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        sum_money([money("1", "USD"), money("1", "EUR")], "USD")
    assert (info.value.expected, info.value.actual) == ("USD", "EUR")
    with pytest.raises(CurrencyMismatchError):
        require_same_currency("USD", money("1", "USD"), money("2", "CHF"), field="total")
    with pytest.raises(TypeError):
        _ = money("1", "USD") + money("1", "EUR")


def test_convert_with_explicit_rate_is_exact() -> None:
    assert convert(money("100.00", "EUR"), Decimal("1.0850"), "USD").amount == Decimal("108.5")
    with pytest.raises(InvalidNumberError):
        convert(money("1", "EUR"), Decimal(0), "USD")


def test_percent_of_is_exact_and_none_for_zero_base() -> None:
    # DOMAIN.md worked example 2: -6.00 on 130.00 is -4.62 %.
    assert percent_of(Decimal("-6.00"), Decimal("130.00")).quantize(Decimal("0.01")) == Decimal(
        "-4.62"
    )
    assert percent_of(Decimal(1), Decimal(0)) is None


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", "$1,234.50"), ("de_DE", "1.234,50\xa0$"), ("fr_FR", "1\u202f234,50\xa0$US")],
)
def test_format_money_uses_the_given_locale(locale: str, expected: str) -> None:
    assert format_money(money("1234.5", "USD"), locale) == expected


def test_format_money_exact_keeps_unit_price_decimals() -> None:
    assert format_money(money("45.5805", "USD"), exact=True) == "$45.5805"
    assert format_money(money("45.5805", "USD")) == "$45.58"


def test_other_formatters_are_locale_aware() -> None:
    assert format_quantity(Decimal("1234.5"), "de_DE", "KG") == "1.234,5 KG"
    assert format_percent(Decimal("-4.615"), "en_US") == "-4.62%"
    assert format_date(date(2026, 11, 24), "en_US") == "Nov 24, 2026"
    assert format_date(date(2026, 11, 24), "de_DE") == "24.11.2026"


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=6,
        min_value=Decimal(-(10**9)),
        max_value=Decimal(10**9),
    ),
    st.sampled_from(["USD", "JPY", "BHD"]),
    st.sampled_from(list(Rounding)),
)
def test_rounding_lands_within_one_unit_of_precision(
    amount: Decimal, code: str, mode: Rounding
) -> None:
    rounded = round_money(Money(amount, code), mode).amount
    unit = Decimal(1).scaleb(-currency_precision(code))
    assert abs(rounded - amount) < unit
    assert rounded == rounded.quantize(unit)


def test_money_is_re_exported() -> None:
    assert Money("1", "USD") == money("1", "USD")
