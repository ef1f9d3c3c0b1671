"""Milestones, endpoints and the facts every KPI reads."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs

from potrack.exceptions import Problem, ValidationError
from potrack.records import (
    MatchLevel,
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_DAY = 86_400.0


class Milestone(enum.IntEnum):
    """What happened to an order, as the KPIs see it (an index into :class:`OrderFacts`)."""

    REQUISITION = 0
    PO_CREATED = 1
    APPROVED = 2
    ISSUED = 3
    ACKNOWLEDGED = 4
    GOODS_RECEIPT = 5
    RECEIPT_CANCELLED = 6
    VENDOR_INVOICE = 7
    """The supplier's invoice date."""
    INVOICE = 8
    """An invoice recorded."""
    INVOICE_CANCELLED = 9
    PAYMENT_BLOCK = 10
    PAYMENT = 11
    CHANGE = 12
    """A change to the order after it was made (quantity, price, dates: a revision)."""
    CANCELLED = 13
    CLOSED = 14
    OTHER = 15
    REACTIVATED = 16
    """A cancelled (deleted) order or item made live again: a later reactivation undoes a
    cancellation (BPI 2019: 4 of the sample's 29 deleted items were reactivated, then received
    and paid)."""

    @property
    def label(self) -> str:
        """``goods receipt``, ``PO created``..."""
        return _LABELS.get(self.name, self.name.lower().replace("_", " "))


_LABELS = {
    "PO_CREATED": "PO created",
    "INVOICE": "invoice recorded",
    "VENDOR_INVOICE": "invoice date",
}
_REPEATING = frozenset(
    {"GOODS_RECEIPT", "INVOICE", "VENDOR_INVOICE", "PAYMENT", "CHANGE", "PAYMENT_BLOCK", "OTHER"}
)


REQUISITION = Milestone.REQUISITION
PO_CREATED = Milestone.PO_CREATED
APPROVED = Milestone.APPROVED
ISSUED = Milestone.ISSUED
GOODS_RECEIPT = Milestone.GOODS_RECEIPT
INVOICE = Milestone.INVOICE
INVOICE_CANCELLED = Milestone.INVOICE_CANCELLED
PAYMENT_BLOCK = Milestone.PAYMENT_BLOCK
PAYMENT = Milestone.PAYMENT
CHANGE = Milestone.CHANGE
CANCELLED = Milestone.CANCELLED
CLOSED = Milestone.CLOSED
REACTIVATED = Milestone.REACTIVATED
_COUNT = len(Milestone)


class _Point(enum.Enum):
    """Which occurrence of a milestone a cycle time starts or ends at."""

    FIRST = "first"
    LAST = "last"


@attrs.frozen
class Endpoint:
    """A milestone's first or last occurrence (``FIRST_RECEIPT``, ``LAST_RECEIPT``...)."""

    milestone: Milestone
    point: _Point = _Point.FIRST

    @property
    def label(self) -> str:
        """``first goods receipt``, ``last payment``, ``PO created``..."""
        if self.milestone.name in _REPEATING:
            return f"{self.point.value} {self.milestone.label}"
        return self.milestone.label

    def of(self, order: OrderFacts) -> datetime | None:
        """When it happened to ``order`` (None: not yet, or unknown)."""
        return (order.first if self.point is _Point.FIRST else order.last)[self.milestone]


FIRST_RECEIPT = Endpoint(GOODS_RECEIPT, _Point.FIRST)
LAST_RECEIPT = Endpoint(GOODS_RECEIPT, _Point.LAST)
FIRST_INVOICE = Endpoint(INVOICE, _Point.FIRST)
LAST_PAYMENT = Endpoint(PAYMENT, _Point.LAST)


# -- facts ------------------------------------------------------------------------------------------------


@attrs.frozen
class Delivery:
    """One order line's delivery: what was ordered for when, and what arrived when.

    ``receipts`` are (day received, quantity *accepted* into stock) in the order they happened;
    ``rejected`` is the quantity rejected at those receipts, already left out of ``receipts``
    (so the quantity received is the receipts' sum plus ``rejected``).  The days are calendar
    days where the goods arrived (see :func:`orders_from_records`' ``tz``).
    """

    order_id: str
    line_no: int
    quantity: Decimal
    requested: date | None
    promised: date | None
    receipts: tuple[tuple[date, Decimal], ...] = ()
    rejected: Decimal = _ZERO


@attrs.frozen
class OrderFacts:
    """What the KPIs need to know about one order (or one order item of an event log).

    ``first``, ``last`` and ``counts`` are indexed by :class:`Milestone`: when it first and last
    happened (None: never, or unknown) and how often.  ``value`` is the order's net value in
    ``currency``; ``invoiced`` what was invoiced net of credit memos; ``mismatched`` whether an
    invoice failed its first match (None: unknown); ``deliveries`` one per line when the source
    knows quantities and due dates (an event log usually does not).
    """

    id: str
    supplier: str = ""
    category: str = ""
    department: str = ""
    company: str = ""
    currency: str = ""
    value: Decimal = _ZERO
    invoiced: Decimal = _ZERO
    budget: str = ""
    match_level: MatchLevel | None = None
    first: tuple[datetime | None, ...] = (None,) * _COUNT
    last: tuple[datetime | None, ...] = (None,) * _COUNT
    counts: tuple[int, ...] = (0,) * _COUNT
    mismatched: bool | None = None
    exceptions: tuple[str, ...] = ()
    """Why invoices were held (finding codes), for exception counts."""
    deliveries: tuple[Delivery, ...] = ()
    has_po: bool = True

    @classmethod
    def build(
        cls,
        id: str,
        events: Mapping[Milestone, Sequence[datetime]] | None = None,
        **fields: Any,
    ) -> OrderFacts:
        """Facts from the times each milestone happened (a convenience for hosts and tests).

        >>> from datetime import datetime, UTC
        >>> o = OrderFacts.build("PO-1", events={PO_CREATED: [datetime(2026, 3, 2, tzinfo=UTC)]})
        >>> o.first[PO_CREATED].day, o.counts[GOODS_RECEIPT]
        (2, 0)
        """
        first: list[datetime | None] = [None] * _COUNT
        last: list[datetime | None] = [None] * _COUNT
        counts = [0] * _COUNT
        naive = [
            Problem(f"events.{Milestone(milestone).name}", f"naive datetime {t.isoformat()}")
            for milestone, times in (events or {}).items()
            for t in times
            if t.tzinfo is None or t.utcoffset() is None
        ]
        if naive:
            raise ValidationError(
                f"OrderFacts {id}",
                [Problem(p.path, p.message + ": give every timestamp a time zone") for p in naive],
            )
        for milestone, times in (events or {}).items():
            if times:
                first[milestone] = min(times)
                last[milestone] = max(times)
                counts[milestone] = len(times)
        return cls(id=id, first=tuple(first), last=tuple(last), counts=tuple(counts), **fields)

    @property
    def cancelled(self) -> bool:
        """Cancelled, and not reactivated after its last cancellation."""
        return self.counts[CANCELLED] > 0 and not _reactivated(self)

    def dimension(self, name: str) -> str:
        """The order's supplier, category, department or company."""
        value: str = getattr(self, name)
        return value


def _reactivated(order: OrderFacts) -> bool:
    back, gone = order.last[REACTIVATED], order.last[CANCELLED]
    return back is not None and gone is not None and back > gone
