"""Derived progress of a PO (received, billed, matched, paid), its dashboard status, and the
mutable builders the lifecycle changes documents through before freezing them."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import attrs

from potrack._fast import positional_builder, rebuild
from potrack.records import (
    ClosureKind,
    InvoiceId,
    InvoiceKind,
    InvoiceProgress,
    InvoiceStatus,
    LineProgress,
    LineType,
    MatchLevel,
    POState,
    PurchaseOrder,
    PurchaseOrderLine,
    Requisition,
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


# -- derived progress --------------------------------------------------------------------------------


class ReceiptStatus(enum.StrEnum):
    """Receipt progress of a PO (lines that need no receipt are left out)."""

    NOT_REQUIRED = "not_required"
    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"
    OVER = "over"


class BillingStatus(enum.StrEnum):
    """Billing progress: invoiced net of credit memos, each line capped at its ordered quantity."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class MatchStatus(enum.StrEnum):
    """Matching: ``pending`` until every invoice is matched; ``exception`` while one is held."""

    PENDING = "pending"
    MATCHED = "matched"
    EXCEPTION = "exception"


class PaymentStatus(enum.StrEnum):
    """Payment of what was invoiced (net of credit memos)."""

    UNPAID = "unpaid"
    PARTIAL = "partial"
    PAID = "paid"


@attrs.frozen
class Progress:
    """A PO's derived progress.

    ``received_percent`` is Σ min(net received, ordered) ÷ Σ ordered over the lines that need a
    receipt; ``billed_percent`` the same with net invoiced quantities over all lines — so one
    over-received line never hides an under-received one.

    >>> from potrack.testing.samples import sample_po
    >>> p = progress(sample_po())
    >>> p.receipt.value, p.billing.value, p.received_percent
    ('none', 'none', Decimal('0'))
    """

    receipt: ReceiptStatus
    billing: BillingStatus
    match: MatchStatus
    payment: PaymentStatus
    received_percent: Decimal
    billed_percent: Decimal
    invoiced: Decimal
    """Net invoiced amount (invoices − credit memos) in the PO currency."""
    paid: Decimal

    @property
    def complete(self) -> bool:
        """Everything received (or not required), invoiced, matched and paid."""
        return (
            self.receipt in (ReceiptStatus.FULL, ReceiptStatus.OVER, ReceiptStatus.NOT_REQUIRED)
            and self.billing is BillingStatus.FULL
            and self.match is MatchStatus.MATCHED
            and self.payment is PaymentStatus.PAID
        )


def effective_match_level(
    po: PurchaseOrder, line: PurchaseOrderLine, default: MatchLevel = MatchLevel.THREE_WAY
) -> MatchLevel:
    """The line's matching level: the line's, else the PO's, else ``default``."""
    return line.match_level or po.match_level or default


def receipt_required(
    po: PurchaseOrder, line: PurchaseOrderLine, default: MatchLevel = MatchLevel.THREE_WAY
) -> bool:
    """Whether the line waits for a goods receipt (service and two-way lines do not)."""
    return line.line_type is not LineType.SERVICE and (
        effective_match_level(po, line, default) is not MatchLevel.TWO_WAY
    )


def _percent(part: Decimal, whole: Decimal) -> Decimal:
    return _ZERO if whole == 0 else part * _HUNDRED / whole


def _progress_of(
    po_match: MatchLevel | None,
    lines: Iterable[PurchaseOrderLine],
    line_progress: Callable[[int], Any],
    invoices: Iterable[Any],
    default: MatchLevel,
) -> Progress:
    need = got = billed_cap = ordered_all = _ZERO
    over = False
    any_required = False
    for line in lines:
        p = line_progress(line.line_no)
        level = line.match_level or po_match or default
        if line.line_type is not LineType.SERVICE and level is not MatchLevel.TWO_WAY:
            any_required = True
            received = p.received - p.returned
            need += line.quantity
            got += min(max(received, _ZERO), line.quantity)
            over = over or received > line.quantity
        invoiced = p.invoiced - p.credited
        ordered_all += line.quantity
        billed_cap += min(max(invoiced, _ZERO), line.quantity)
    if not any_required:
        receipt = ReceiptStatus.NOT_REQUIRED
    elif got >= need:
        receipt = ReceiptStatus.OVER if over else ReceiptStatus.FULL
    elif got > 0:
        receipt = ReceiptStatus.PARTIAL
    else:
        receipt = ReceiptStatus.NONE
    billing = (
        BillingStatus.FULL
        if billed_cap >= ordered_all
        else BillingStatus.PARTIAL
        if billed_cap > 0
        else BillingStatus.NONE
    )
    statuses = []
    invoiced_amount = paid = _ZERO
    for inv in invoices:
        statuses.append(inv.status)
        if inv.kind is InvoiceKind.CREDIT_MEMO:
            invoiced_amount -= inv.amount
        else:
            invoiced_amount += inv.amount
        paid += inv.paid
    if InvoiceStatus.HELD in statuses:
        match = MatchStatus.EXCEPTION
    elif statuses and all(
        s in (InvoiceStatus.MATCHED, InvoiceStatus.MATCHED_WITHIN_TOLERANCE) for s in statuses
    ):
        match = MatchStatus.MATCHED
    else:
        match = MatchStatus.PENDING
    if paid <= 0:
        payment = PaymentStatus.UNPAID
    elif paid >= invoiced_amount:
        payment = PaymentStatus.PAID
    else:
        payment = PaymentStatus.PARTIAL
    if invoiced_amount <= 0 and paid <= 0:
        payment = PaymentStatus.UNPAID
    return Progress(
        receipt,
        billing,
        match,
        payment,
        _percent(got, need),
        _percent(billed_cap, ordered_all),
        invoiced_amount,
        paid,
    )


def progress(po: PurchaseOrder, default_level: MatchLevel = MatchLevel.THREE_WAY) -> Progress:
    """The PO's derived receipt, billing, match and payment progress."""
    return _progress_of(po.match_level, po.lines, po.line_progress, po.invoices, default_level)


def expected_date(po: PurchaseOrder, line: PurchaseOrderLine) -> date | None:
    """When the line is expected: the latest dispatch notice covering it, else the promised date,
    else the requested date."""
    arrivals = [
        n.expected_arrival
        for n in po.dispatches
        if not n.lines or any(d.line_no == line.line_no for d in n.lines)
    ]
    if arrivals:
        return max(arrivals)
    return line.expected_date


def is_overdue(
    po: PurchaseOrder, today: date, default_level: MatchLevel = MatchLevel.THREE_WAY
) -> bool:
    """Whether a line still to be received was expected before ``today``.

    >>> from potrack.testing.samples import sample_po
    >>> po = attrs.evolve(sample_po(), state=POState.ISSUED)
    >>> is_overdue(po, date(2026, 1, 20)), is_overdue(po, date(2026, 1, 21))
    (False, True)
    """
    if po.state not in (
        POState.ISSUED,
        POState.ACKNOWLEDGED,
        POState.IN_FULFILMENT,
        POState.CHANGE_PROPOSED,
    ):
        return False
    for line in po.lines:
        if not receipt_required(po, line, default_level):
            continue
        p = po.line_progress(line.line_no)
        if p.received - p.returned >= line.quantity:
            continue
        when = expected_date(po, line)
        if when is not None and when < today:
            return True
    return False


def dashboard_status(
    po: PurchaseOrder, today: date, default_level: MatchLevel = MatchLevel.THREE_WAY
) -> str:
    """The PO's status in words, for dashboards — derived from the same data as :func:`progress`.

    One of: Draft, Pending approval, Approved, Rejected, Awaiting acknowledgement, Change proposed,
    Rejected by supplier, On hold, Overdue, Dispatched, To receive and bill, To receive, To bill,
    To match, Invoice on hold, To pay, Completed, Short-closed, Cancelled.
    """
    state = po.state
    fixed = {
        POState.DRAFT: "Draft",
        POState.PENDING_APPROVAL: "Pending approval",
        POState.APPROVED: "Approved",
        POState.REJECTED: "Rejected",
        POState.CHANGE_PROPOSED: "Change proposed",
        POState.SUPPLIER_REJECTED: "Rejected by supplier",
        POState.ON_HOLD: "On hold",
        POState.CANCELLED: "Cancelled",
    }
    if state in fixed:
        return fixed[state]
    if state is POState.CLOSED:
        return (
            "Short-closed" if po.closure and po.closure.kind is ClosureKind.SHORT else "Completed"
        )
    if is_overdue(po, today, default_level):
        return "Overdue"
    p = progress(po, default_level)
    to_receive = p.receipt in (ReceiptStatus.NONE, ReceiptStatus.PARTIAL)
    to_bill = p.billing is not BillingStatus.FULL
    if to_receive and p.receipt is ReceiptStatus.NONE and p.billing is BillingStatus.NONE:
        if po.dispatches:
            return "Dispatched"
        if state is POState.ISSUED:
            return "Awaiting acknowledgement"
    if to_receive and to_bill:
        return "To receive and bill"
    if to_receive:
        return "To receive"
    if to_bill:
        return "To bill"
    if p.match is MatchStatus.EXCEPTION:
        return "Invoice on hold"
    if p.match is MatchStatus.PENDING:
        return "To match"
    if p.payment is not PaymentStatus.PAID:
        return "To pay"
    return "Completed"


# -- the mutable builder that effects work on ----------------------------------------------------------


_make_line = positional_builder(LineProgress)
_make_invoice = positional_builder(InvoiceProgress)


class _Line:
    """Mutable per-line progress while events are applied."""

    __slots__ = (
        "accepted",
        "credited",
        "credited_amount",
        "invoiced",
        "invoiced_amount",
        "line_no",
        "overrides",
        "pending",
        "received",
        "rejected",
        "returned",
    )

    def __init__(self, p: LineProgress) -> None:
        self.line_no = p.line_no
        self.received = p.received
        self.accepted = p.accepted
        self.rejected = p.rejected
        self.pending = p.pending_inspection
        self.returned = p.returned
        self.invoiced = p.invoiced
        self.invoiced_amount = p.invoiced_amount
        self.credited = p.credited
        self.credited_amount = p.credited_amount
        self.overrides = p.over_receipt_overrides

    def freeze(self) -> LineProgress:
        return _make_line(
            self.line_no,
            self.received,
            self.accepted,
            self.rejected,
            self.pending,
            self.returned,
            self.invoiced,
            self.invoiced_amount,
            self.credited,
            self.credited_amount,
            self.overrides,
        )


class _Invoice:
    __slots__ = ("amount", "invoice_id", "kind", "number", "paid", "payable", "rate", "status")

    @classmethod
    def new(
        cls,
        invoice_id: str,
        kind: InvoiceKind,
        amount: Decimal,
        number: str | None,
        rate: Decimal,
        status: InvoiceStatus = InvoiceStatus.PENDING,
    ) -> _Invoice:
        made = cls.__new__(cls)
        made.invoice_id = InvoiceId(invoice_id)
        made.kind = kind
        made.amount = amount
        made.status = status
        made.payable = _ZERO
        made.paid = _ZERO
        made.number = number
        made.rate = rate
        return made

    def __init__(self, p: InvoiceProgress) -> None:
        self.invoice_id = p.invoice_id
        self.kind = p.kind
        self.amount = p.amount
        self.status = p.status
        self.payable = p.payable
        self.paid = p.paid
        self.number = p.number
        self.rate = p.rate

    def freeze(self) -> InvoiceProgress:
        return _make_invoice(
            self.invoice_id,
            self.kind,
            self.amount,
            self.status,
            self.payable,
            self.paid,
            self.number,
            self.rate,
        )


class _PO:
    """A purchase order being changed by events: plain mutable attributes, frozen at the end."""

    def __init__(self, po: PurchaseOrder) -> None:
        self.base = po
        self.fields: dict[str, Any] = {}
        self.state = po.state
        self.version = po.version
        self.lines = po.lines
        self.progress = {p.line_no: _Line(p) for p in po.progress}
        self.invoices = {i.invoice_id: _Invoice(i) for i in po.invoices}
        self.applied = list(po.applied_keys)
        self.dispatches = list(po.dispatches)
        self.receipts = list(po.receipts)
        self.returns = list(po.returns)
        self.payments = list(po.payments)
        self.comments = list(po.comments)
        self.issues = list(po.issues)
        self.revisions = list(po.revisions)

    def line(self, line_no: int) -> _Line:
        found = self.progress.get(line_no)
        if found is None:
            found = self.progress[line_no] = _Line(LineProgress(line_no=line_no))
        return found

    def peek(self, line_no: int) -> _Line | LineProgress:
        """The line's progress without creating an entry for it."""
        return self.progress.get(line_no) or LineProgress(line_no=line_no)

    def get(self, name: str) -> Any:
        return self.fields[name] if name in self.fields else getattr(self.base, name)

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def freeze(self) -> PurchaseOrder:
        changes = {
            "state": self.state,
            "version": self.version,
            "lines": self.lines,
            "progress": tuple(self.progress[k].freeze() for k in sorted(self.progress)),
            "invoices": tuple(i.freeze() for i in self.invoices.values()),
            "applied_keys": tuple(self.applied),
            "dispatches": tuple(self.dispatches),
            "receipts": tuple(self.receipts),
            "returns": tuple(self.returns),
            "payments": tuple(self.payments),
            "comments": tuple(self.comments),
            "issues": tuple(self.issues),
            "revisions": tuple(self.revisions),
            **self.fields,
        }
        return rebuild(self.base, changes)


class _Req:
    """A requisition being changed by events."""

    def __init__(self, req: Requisition) -> None:
        self.base = req
        self.fields: dict[str, Any] = {}
        self.state = req.state
        self.version = req.version
        self.applied = list(req.applied_keys)

    def get(self, name: str) -> Any:
        return self.fields[name] if name in self.fields else getattr(self.base, name)

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def freeze(self) -> Requisition:
        return attrs.evolve(
            self.base,
            state=self.state,
            version=self.version,
            applied_keys=tuple(self.applied),
            **self.fields,
        )


# -- the declared table ---------------------------------------------------------------------------------
