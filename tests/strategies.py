"""Hypothesis strategies for every potrack record type.

``records(cls)`` builds valid instances of any attrs record from its type hints, with custom
strategies where records have cross-field rules (unique line numbers, one currency per document,
accepted + rejected = received...).  Within one example every Money shares one currency.
"""

from __future__ import annotations

import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from functools import cache
from typing import Any

import attrs
from hypothesis import strategies as st
from moneyed import Money

from potrack import events as ev
from potrack import records as rec
from potrack.money import quantum

CURRENCIES = ("USD", "EUR", "JPY", "BHD", "CHF")

currency = st.shared(st.sampled_from(CURRENCIES), key="currency")

positive_decimals = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("1000000"), places=4, allow_nan=False
).map(lambda d: d.normalize() if d == d.to_integral_value() else d) | st.integers(1, 10**6).map(
    Decimal
)

any_decimals = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=4, allow_nan=False
)

moneys = st.builds(lambda amount, code: Money(amount, code), positive_decimals, currency)


def _booked(value: Money) -> Money:
    """``value`` cut to a whole number of its currency's minor units (what documents book)."""
    code = value.currency.code
    return Money(value.amount.quantize(quantum(code), rounding=ROUND_DOWN), code)


booked_moneys = moneys.map(_booked)

texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
).filter(lambda s: s.strip() != "")

offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)

aware_datetimes = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)

dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))

small_ints = st.integers(min_value=1, max_value=10_000)


def _renumber(lines: list[Any]) -> tuple[Any, ...]:
    return tuple(attrs.evolve(line, line_no=i + 1) for i, line in enumerate(lines))


def _lines(cls: type[Any], min_size: int = 1) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(records(cls), min_size=min_size, max_size=3).map(_renumber)


@st.composite
def _receipt_line(draw: st.DrawFn) -> rec.ReceiptLine:
    received = draw(positive_decimals)
    rejected = draw(st.sampled_from([Decimal(0), received, received / 2]))
    inspected = draw(st.booleans())
    return rec.ReceiptLine(
        line_no=draw(small_ints),
        received=received,
        rejected=rejected,
        accepted=(received - rejected) if inspected else None,
        uom=draw(st.none() | texts),
        reason=draw(st.none() | texts),
    )


@st.composite
def _payment_terms(draw: st.DrawFn) -> rec.PaymentTerms:
    net = draw(st.integers(0, 120))
    discounted = draw(st.booleans())
    return rec.PaymentTerms(
        code=draw(texts),
        net_days=net,
        discount_days=draw(st.integers(0, net)) if discounted else None,
        discount_percent=draw(positive_decimals) if discounted else None,
    )


@st.composite
def _line_change(draw: st.DrawFn) -> rec.LineChange:
    quantity = draw(st.none() | positive_decimals)
    price = draw(st.none() | moneys)
    when = draw(dates if quantity is None and price is None else st.none() | dates)
    return rec.LineChange(
        line_no=draw(small_ints), quantity=quantity, unit_price=price, promised_date=when
    )


@st.composite
def _payment(draw: st.DrawFn) -> rec.Payment:
    allocations = draw(st.lists(records(rec.PaymentAllocation), min_size=1, max_size=3))
    code = allocations[0].amount.currency.code
    total = sum((a.amount.amount for a in allocations), Decimal(0))
    return rec.Payment(
        id=draw(texts),
        supplier_id=draw(texts),
        paid_on=draw(dates),
        amount=Money(total, code),
        allocations=tuple(allocations),
        method=draw(texts),
        reference=draw(st.none() | texts),
    )


@st.composite
def _invoice(draw: st.DrawFn) -> rec.Invoice:
    kind = draw(st.sampled_from(rec.InvoiceKind))
    return rec.Invoice(
        id=draw(texts),
        supplier_id=draw(texts),
        invoice_date=draw(dates),
        currency=draw(currency),
        lines=tuple(
            attrs.evolve(ln, tax=None if ln.tax is None else _booked(ln.tax))
            for ln in draw(_lines(rec.InvoiceLine, 0))
        ),
        total=draw(booked_moneys),
        kind=kind,
        number=draw(st.none() | texts),
        po_id=draw(st.none() | texts),
        received_on=draw(st.none() | dates),
        due_date=draw(st.none() | dates),
        exchange_rate=draw(st.none() | positive_decimals),
        charges=tuple(
            attrs.evolve(c, amount=_booked(c.amount))
            for c in draw(st.lists(records(rec.Charge), max_size=2))
        ),
        tax=draw(st.none() | booked_moneys),
        credits=draw(st.none() | texts) if kind is rec.InvoiceKind.CREDIT_MEMO else None,
        reason=draw(st.none() | texts),
    )


def _with_lines(cls: type[Any], line_cls: type[Any]) -> st.SearchStrategy[Any]:
    return records(cls, lines=_lines(line_cls))


_OVERRIDES: dict[type[Any], st.SearchStrategy[Any]] = {}


def _override(cls: type[Any]) -> st.SearchStrategy[Any] | None:
    if not _OVERRIDES:
        _OVERRIDES.update(
            {
                rec.ReceiptLine: _receipt_line(),
                rec.PaymentTerms: _payment_terms(),
                rec.LineChange: _line_change(),
                rec.Payment: _payment(),
                rec.Invoice: _invoice(),
                rec.Quorum: st.builds(rec.Quorum, count=st.none() | st.integers(1, 5)),
                rec.PurchaseOrder: st.deferred(
                    lambda: _with_lines(rec.PurchaseOrder, rec.PurchaseOrderLine)
                ),
                rec.Requisition: st.deferred(
                    lambda: _with_lines(rec.Requisition, rec.RequisitionLine)
                ),
                rec.GoodsReceipt: st.deferred(
                    lambda: _with_lines(rec.GoodsReceipt, rec.ReceiptLine)
                ),
                rec.GoodsReturn: st.deferred(lambda: _with_lines(rec.GoodsReturn, rec.ReturnLine)),
                rec.ChangeProposal: st.deferred(
                    lambda: records(
                        rec.ChangeProposal,
                        changes=st.lists(_line_change(), min_size=1, max_size=3).map(tuple),
                    )
                ),
                ev.Event: st.deferred(lambda: st.one_of([records(c) for c in ev.EVENT_TYPES])),
                rec.LineProgress: st.deferred(
                    lambda: records(
                        rec.LineProgress,
                        **dict.fromkeys(_decimal_fields(rec.LineProgress), any_decimals),
                    )
                ),
            }
        )
    return _OVERRIDES.get(cls)


def _decimal_fields(cls: type[Any]) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [a.name for a in attrs.fields(cls) if hints[a.name] is Decimal]


def for_type(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for a type hint appearing in a record."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of([for_type(a) for a in args])
    if hint is type(None):
        return st.none()
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(for_type(args[0]), max_size=2).map(tuple)
        return st.tuples(*[for_type(a) for a in args])
    if origin is frozenset:
        return st.frozensets(for_type(args[0]), max_size=2)
    if isinstance(hint, typing.NewType):
        return for_type(hint.__supertype__)
    if hint is str:
        return texts
    if hint is int:
        return small_ints
    if hint is bool:
        return st.booleans()
    if hint is Decimal:
        return positive_decimals
    if hint is Money:
        return moneys
    if hint is datetime:
        return aware_datetimes
    if hint is date:
        return dates
    if isinstance(hint, type) and issubclass(hint, __import__("enum").Enum):
        return st.sampled_from(hint)
    if attrs.has(hint) or hint is ev.Event:
        return records(hint)
    raise NotImplementedError(f"no strategy for {hint!r}")


def _field(name: str, hint: Any) -> st.SearchStrategy[Any]:
    if name == "currency":
        return currency if hint is str else st.none() | currency
    return st.deferred(lambda: for_type(hint))


def _build(cls: type[Any], fixed: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {
        a.name: fixed[a.name] if a.name in fixed else _field(a.name, hints[a.name])
        for a in attrs.fields(cls)
        if a.init
    }
    return st.builds(cls, **fields)


@cache
def _plain(cls: type[Any]) -> st.SearchStrategy[Any]:
    return _build(cls, {})


def records(cls: type[Any], **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid instances of the record class ``cls`` (with some fields' strategies ``fixed``)."""
    if not fixed:
        special = _override(cls)
        if special is not None:
            return special
        return _plain(cls)
    return _build(cls, fixed)


RECORD_TYPES: tuple[type[Any], ...] = (
    *tuple(
        getattr(rec, name)
        for name in rec.__all__
        if isinstance(getattr(rec, name), type) and attrs.has(getattr(rec, name))
    ),
    *ev.EVENT_TYPES,
    ev.InspectionLine,
    ev.TransitionRecord,
)
"""Every record type potrack serializes."""
