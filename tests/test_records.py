"""Records refuse bad input at construction, naming the field and the value."""

from __future__ import annotations

import re
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moneyed import Money

from potrack import _fields
from potrack.events import Event
from potrack.exceptions import (
    InvalidNumberError,
    InvalidValueError,
    PotrackError,
    UnknownCurrencyError,
    ValidationError,
)
from potrack.money import money
from potrack.records import (
    Actor,
    Invoice,
    InvoiceKind,
    LineChange,
    Payment,
    PaymentAllocation,
    PaymentTerms,
    PurchaseOrderLine,
    Quorum,
    ReceiptLine,
    Supplier,
)
from potrack.testing.samples import (
    sample_invoice,
    sample_payment,
    sample_po,
    sample_po_line,
    sample_receipt,
)
from tests.strategies import RECORD_TYPES, records


def _validated_fields(cls: type[Any]) -> list[attrs.Attribute[Any]]:
    found = []
    for field in attrs.fields(cls):
        conv = field.converter
        fn = getattr(conv, "converter", conv)
        if fn is not None and getattr(fn, "__module__", "") == _fields.__name__:
            found.append(field)
    return found


def _bad_value(hint: Any) -> object:
    """A value of the wrong kind for a field of type ``hint``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) is not tuple and typing.get_origin(hint) is not frozenset:
        hint = args[0]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return [object()]
    if origin is frozenset:
        return "admin"
    if isinstance(hint, typing.NewType) or hint is str:
        return 12
    if hint is Decimal:
        return 12.5
    if hint is Money:
        return 12.5
    if hint is bool:
        return 1
    if hint is int:
        return True
    if hint is datetime:
        return datetime(2026, 1, 1, 9, 0)  # naive
    if hint is date:
        return datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    if isinstance(hint, type) and issubclass(hint, __import__("enum").Enum):
        return "no-such-value"
    if attrs.has(hint) or hint is Event:
        return {"not": "a record"}
    raise NotImplementedError(hint)


VALIDATED_TYPES = [cls for cls in RECORD_TYPES if _validated_fields(cls)]


def test_nearly_every_record_type_validates_its_fields() -> None:
    unvalidated = {cls.__name__ for cls in RECORD_TYPES} - {c.__name__ for c in VALIDATED_TYPES}
    # Progress records are derived by the lifecycle, never built from outside input; the
    # converter still checks their types strictly (see test_serialization).
    assert unvalidated == {"LineProgress", "InvoiceProgress"}


@pytest.mark.parametrize("cls", VALIDATED_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=3)
@given(data=st.data())
def test_wrong_kinds_of_value_are_refused_naming_the_field(
    cls: type[Any], data: st.DataObject
) -> None:
    record = data.draw(records(cls))
    hints = typing.get_type_hints(cls)
    for field in _validated_fields(cls):
        bad = _bad_value(hints[field.name])
        with pytest.raises(PotrackError) as info:
            attrs.evolve(record, **{field.name: bad})
        err = info.value
        assert isinstance(err, ValidationError | UnknownCurrencyError)
        assert field.name in str(err), f"{cls.__name__}.{field.name}: {err}"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("quantity", 2.5, "got 2.5 (float)"),
        ("quantity", True, "got True (bool)"),
        ("quantity", Decimal("NaN"), "expected a finite number"),
        ("quantity", Decimal("Infinity"), "expected a finite number"),
        ("quantity", Decimal(0), "expected a number > 0"),
        ("quantity", -1, "expected a number > 0"),
        ("price_unit", 0, "expected a number > 0"),
        ("tax_rate", Decimal(-1), "expected a number >= 0"),
        ("unit_price", 10.0, "expected a Money"),
        ("unit_price", Money(Decimal("NaN"), "USD"), "finite Decimal amount"),
        ("requested_date", "2026-01-01", "expected a date"),
    ],
)
def test_po_line_refusals(field: str, value: object, expected: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(expected)) as info:
        sample_po_line(**{field: value})
    assert info.value.problems[0].path == field
    assert info.value.subject == "PurchaseOrderLine"


def test_ints_and_decimal_strings_are_accepted_as_exact_quantities() -> None:
    line = sample_po_line(quantity=3, price_unit="100")
    assert line.quantity == Decimal(3)
    assert line.price_unit == Decimal(100)


def test_float_money_amount_is_refused_by_the_money_helper() -> None:
    with pytest.raises(InvalidNumberError, match=r"12\.5 \(float\)"):
        sample_po_line(unit_price=money(12.5, "USD"))


def test_unknown_currency_on_a_document_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError, match="'ABC'"):
        sample_po(currency="ABC")


def test_po_lists_every_line_problem_at_once() -> None:
    lines = (sample_po_line(1), sample_po_line(1, unit_price=money("5", "EUR")))
    with pytest.raises(ValidationError) as info:
        sample_po(lines=2).__class__(**{**attrs.asdict(sample_po(), recurse=False), "lines": lines})
    messages = [str(p) for p in info.value.problems]
    assert messages == [
        "lines: line numbers must be unique; repeated: [1]",
        "lines[1].unit_price: currency EUR differs from the document's USD",
    ]


def test_po_needs_lines() -> None:
    with pytest.raises(ValidationError, match="at least one line"):
        sample_po(lines=0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="timezone-aware") as info:
        sample_po(created_at=datetime(2026, 1, 5, 9, 0))
    assert info.value.field == "created_at"


def test_receipt_line_quantities_must_add_up() -> None:
    assert ReceiptLine(line_no=1, received=Decimal(10), rejected=Decimal(2)).accepted is None
    assert ReceiptLine(
        line_no=1, received=Decimal(10), rejected=Decimal(2), accepted=Decimal(8)
    ).accepted == Decimal(8)
    with pytest.raises(ValidationError, match="accepted 7 \\+ rejected 2 must equal received 10"):
        ReceiptLine(line_no=1, received=Decimal(10), rejected=Decimal(2), accepted=Decimal(7))
    with pytest.raises(ValidationError, match="rejected 11 exceeds received 10"):
        ReceiptLine(line_no=1, received=Decimal(10), rejected=Decimal(11))


def test_receipt_refuses_repeated_lines() -> None:
    line = ReceiptLine(line_no=1, received=Decimal(1))
    with pytest.raises(ValidationError, match=r"appears more than once: \[1\]"):
        sample_receipt(lines=(line, line))


def test_payment_allocations_must_add_up_in_one_currency() -> None:
    with pytest.raises(ValidationError, match=r"add up to 400\.00, not the payment.s 500\.00"):
        sample_payment(
            allocations=(PaymentAllocation(invoice_id="INV-1", amount=money("400.00", "USD")),)
        )
    with pytest.raises(ValidationError, match="must be positive"):
        Payment(
            id="P",
            supplier_id="S",
            paid_on=date(2026, 1, 1),
            amount=money("0", "USD"),
            allocations=(PaymentAllocation(invoice_id="INV-1", amount=money("0", "USD")),),
        )
    assert isinstance(sample_payment(), Payment)


def test_invoice_currency_consistency_and_credit_rules() -> None:
    with pytest.raises(ValidationError) as info:
        sample_invoice(total=money("500", "EUR"), credits="INV-0")
    assert [p.path for p in info.value.problems] == ["total", "credits"]
    memo = Invoice.credit_memo(
        **{
            k: v
            for k, v in attrs.asdict(sample_invoice(), recurse=False).items()
            if k not in ("kind", "credits")
        },
        credits="INV-0",
    )
    assert memo.kind is InvoiceKind.CREDIT_MEMO
    assert memo.is_credit


def test_invoice_totals_are_exact() -> None:
    inv = sample_invoice(
        quantity="3", price="45.5805", total=money("136.74", "USD"), tax=money("10.94", "USD")
    )
    assert inv.net_amount == money("136.7415", "USD")
    assert inv.computed_total == money("147.6815", "USD")


def test_payment_terms_discount_pairs() -> None:
    with pytest.raises(ValidationError, match="go together"):
        PaymentTerms(code="X", net_days=30, discount_days=10)
    with pytest.raises(ValidationError, match="between 0 and net_days"):
        PaymentTerms(code="X", net_days=30, discount_days=40, discount_percent=Decimal(2))


def test_line_change_must_change_something() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        LineChange(line_no=1)


def test_quorum_counts() -> None:
    assert Quorum.of(2).needed(5) == 2
    assert Quorum.of(4).needed(3) == 3
    assert Quorum.all().needed(4) == 4
    with pytest.raises(InvalidValueError):
        Quorum(count=0)


def test_identifiers_and_flags_are_strict() -> None:
    with pytest.raises(InvalidValueError, match="True or False"):
        Supplier(id="S", name="N", code="C", preferred=1)
    with pytest.raises(InvalidValueError, match="set of strings"):
        Actor(id="a", name="A", roles="buyer")
    actor = Actor(id="a", name="A", roles=["buyer", "approver"])
    assert actor.roles == frozenset({"buyer", "approver"})
    assert not actor.is_supplier_user


def test_supplier_initials() -> None:
    assert Supplier(id="S", name="Acme Tool Works", code="ACME").initials == "ATW"
    assert Supplier(id="S", name="acme", code="A", initials_override="AC").initials == "AC"


def test_po_amounts_are_exact() -> None:
    po = sample_po(lines=2)
    assert po.amount == money("1050.00", "USD")
    line = sample_po_line(
        quantity=Decimal(3), unit_price=money("45.5805", "USD"), tax_rate=Decimal(8)
    )
    assert line.amount == money("136.7415", "USD")
    assert line.tax_amount == money("10.939320", "USD")


def test_records_are_immutable() -> None:
    po = sample_po()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        po.state = "closed"  # type: ignore[misc]
    assert isinstance(po.lines, tuple)


def test_payment_terms_dates() -> None:
    terms = PaymentTerms(code="2/10N30", net_days=30, discount_days=10, discount_percent=Decimal(2))
    assert terms.due_date(date(2026, 2, 1)) == date(2026, 3, 3)
    assert terms.discount_deadline(date(2026, 2, 1)) == date(2026, 2, 11)


def test_line_item_price_unit_amount() -> None:
    line = PurchaseOrderLine(
        line_no=1,
        description="Washers",
        category="hardware",
        quantity=Decimal(250),
        uom="PC",
        unit_price=money("12.00", "EUR"),
        price_unit=Decimal(100),
    )
    assert line.amount == money("30", "EUR")


# -- issue 25: what an invoice may state ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("100.005", "USD"), ("3.7035", "KWD"), ("1000.5", "JPY"), ("0.001", "EUR")],
)
def test_an_invoice_total_finer_than_the_currency_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValidationError) as info:
        _invoice_in(currency, amount)
    assert [p.path for p in info.value.problems] == ["total"]
    message = info.value.problems[0].message
    assert f"{amount} {currency}" in message
    assert "whole number of" in message


def _invoice_in(currency: str, total: str) -> Invoice:
    from potrack.records import InvoiceLine

    line = InvoiceLine(
        line_no=1, po_line_no=1, quantity=Decimal(3), unit_price=money("1.2345", currency)
    )
    return sample_invoice(currency=currency, lines=(line,), total=money(total, currency))


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("50.020", "USD"), ("50.0200000", "USD"), ("3.703", "KWD"), ("1001.0", "JPY"), ("0", "USD")],
)
def test_trailing_zeros_are_not_extra_precision(amount: str, currency: str) -> None:
    assert _invoice_in(currency, amount).total.amount == Decimal(amount)


def test_tax_and_charges_are_booked_amounts_too() -> None:
    from potrack.records import Charge

    with pytest.raises(ValidationError) as info:
        sample_invoice(
            tax=money("1.005", "USD"),
            charges=(Charge(code="FREIGHT", amount=money("2.001", "USD")),),
        )
    assert [p.path for p in info.value.problems] == ["tax", "charges[0].amount"]


@pytest.mark.parametrize("field", ["unit_price", "amount", "tax"])
def test_a_negative_invoice_line_is_refused(field: str) -> None:
    from potrack.records import InvoiceLine

    values: dict[str, Any] = {"unit_price": money("10.00", "USD")}
    values[field] = money("-10.00", "USD")
    with pytest.raises(ValidationError) as info:
        InvoiceLine(line_no=1, po_line_no=1, quantity=Decimal(1), **values)
    assert f"{field}: must not be negative" in str(info.value)
    assert "credit memo" in str(info.value)


def test_a_negative_invoice_total_is_refused() -> None:
    with pytest.raises(ValidationError, match="total: must not be negative"):
        sample_invoice(total=money("-1.00", "USD"))
