"""The purchase-order lifecycle: where a requisition or PO stands and what may happen next.

Hosts call :meth:`PurchaseOrderLifecycle.apply` for every business event.  Applying an event is a
pure function — (current PO, event, actor, time) → (new PO, transition record) — that refuses what
is not allowed with a typed error carrying every reason, and records what is:

>>> from potrack.testing.scenario import Scenario
>>> s = Scenario()
>>> po = s.issued_po()
>>> po.state.value, po.number
('issued', 'PO-OPS-2026-00001')
>>> t = s.lifecycle.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, s.at(10))
>>> t.document.state.value, t.record.domain_events
('in_fulfilment', ('goods_received',))
>>> progress(t.document).receipt.value
'partial'

States, events, guards and the roles allowed for each event are declared in one table
(:data:`PO_TRANSITIONS`, :data:`REQUISITION_TRANSITIONS`); :func:`check_table` verifies it (one
initial state, no exits from terminal states, every state reachable, no traps) and
:func:`transition_table_markdown` / :func:`transition_diagram_mermaid` render it for the docs.

Progress — received, billed, matched, paid — is *derived* from quantities and amounts
(:func:`progress`), each line capped at its ordered quantity so an over-received line never hides an
under-received one; the PO closes itself when everything is done.  Transition records are the audit
trail and, replayed (:func:`replay`), rebuild exactly the same document.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import attrs
from moneyed import Money

from potrack import approval
from potrack._access import DepartmentAccess
from potrack._fast import build, positional_builder, rebuild
from potrack.approval import ApprovalOutcome, Router, Suppliers, as_suppliers
from potrack.events import (
    AcceptChange,
    Acknowledge,
    AddComment,
    Cancel,
    ConvertToOrders,
    CreatePurchaseOrder,
    CreateRequisition,
    DeclineChange,
    EditDraft,
    EditRequisition,
    Event,
    FlagIssue,
    Issue,
    PlaceOnHold,
    ProposeChange,
    ReassignStep,
    ReceiveGoods,
    RecordCreditMemo,
    RecordDecision,
    RecordDispatch,
    RecordInspection,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    ReleaseHold,
    Reopen,
    ResolveIssue,
    ReturnGoods,
    ReviseOrder,
    ShortClose,
    SubmitForApproval,
    SupplierReject,
    TransitionRecord,
)
from potrack.exceptions import (
    ApprovalError,
    DecidedFieldError,
    NotPermittedError,
    PotrackError,
    ReplayError,
    TransitionRefusedError,
)
from potrack.matching import TolerancePolicy
from potrack.numbering import NumberingScheme
from potrack.records import (
    Acknowledgement,
    Actor,
    ActorId,
    ApprovalDecision,
    ApprovalState,
    ApproverKind,
    ChangeProposal,
    Closure,
    ClosureKind,
    Comment,
    Conversion,
    Decision,
    DispatchNotice,
    FieldChange,
    FlaggedIssue,
    GoodsReceipt,
    GoodsReturn,
    Hold,
    Invoice,
    InvoiceId,
    InvoiceKind,
    InvoiceProgress,
    InvoiceStatus,
    ItemId,
    LineChange,
    LineProgress,
    LineType,
    MatchLevel,
    POState,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderLine,
    Reassignment,
    Requisition,
    RequisitionState,
    Revision,
    Role,
    SupplierId,
)
from potrack.typing import AccessPolicy, Directory

__all__ = [
    "PO_TRANSITIONS",
    "REQUISITION_TRANSITIONS",
    "Applied",
    "BillingStatus",
    "DepartmentAccess",
    "MatchStatus",
    "PODocuments",
    "PaymentStatus",
    "Progress",
    "PurchaseOrderLifecycle",
    "ReceiptStatus",
    "RequisitionLifecycle",
    "TableProblem",
    "TransitionRule",
    "check_table",
    "dashboard_status",
    "effective_match_level",
    "expected_date",
    "is_overdue",
    "progress",
    "receipt_required",
    "replay",
    "replay_requisition",
    "transition_diagram_mermaid",
    "transition_table_markdown",
]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
D = TypeVar("D", PurchaseOrder, Requisition)


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

Guard = Callable[["_Context"], Iterable[str]]
"""A side-effect-free check returning the reasons an event cannot be applied (none: it can)."""


@attrs.frozen(kw_only=True)
class TransitionRule:
    """One row of a lifecycle table.

    ``sources`` are the states the event is allowed in (empty for the creating event);
    ``targets`` the states it may lead to; ``pairs`` the exact (from, to) moves when not every
    source leads to every target (empty: all of them; an event that keeps the state has
    ``targets`` empty and ``stays`` set); ``roles`` the roles that may send it (any one suffices;
    empty: anyone); ``supplier_may`` whether a supplier's users may send it (on their own
    supplier's orders); ``approver`` whether permission comes from the approval route.
    """

    event: type[Event]
    sources: frozenset[Any]
    targets: frozenset[Any]
    roles: frozenset[str] = frozenset()
    supplier_may: bool = False
    approver: bool = False
    guards: tuple[Guard, ...] = ()
    complete: Callable[[_Context], Event] | None = None
    effect: Callable[[Any, Any, ActorId, datetime], tuple[str, ...]]
    settles: bool = False
    """Whether the event can finish the PO (it then closes itself when everything is done)."""
    owner: str | None = None
    """A field naming the document's owner (``requester``): others need ``owner_override`` roles."""
    owner_override: frozenset[str] = frozenset()
    summary: str = ""
    pairs: frozenset[tuple[Any, Any]] = frozenset()
    stays: bool = False

    @property
    def moves(self) -> frozenset[tuple[Any, Any]]:
        """Every (from, to) state pair this event can produce (to == from: state unchanged)."""
        if self.pairs:
            return self.pairs
        if self.stays:
            return frozenset((s, s) for s in self.sources)
        return frozenset((s, t) for s in self.sources for t in self.targets)

    @property
    def results(self) -> frozenset[Any]:
        """Every state the event can leave the document in."""
        return frozenset(t for _, t in self.moves) | self.targets


@attrs.frozen
class _Context:
    """What guards and completers see."""

    doc: Any
    event: Any
    actor: Actor
    at: datetime
    machine: Any
    documents: PODocuments | None = None


@attrs.frozen(kw_only=True)
class PODocuments:
    """The stored documents of one PO that recording a match needs (the engine's inputs).

    ``invoices`` are the PO's invoices and credit memos in the order they were recorded;
    ``supplier_invoices`` the supplier's invoices on any PO in the order they were recorded (for
    duplicate detection).  :class:`~potrack.service.Purchasing` loads them from its store.
    """

    receipts: tuple[GoodsReceipt, ...] = ()
    returns: tuple[GoodsReturn, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    supplier_invoices: tuple[Invoice, ...] = ()


S = POState
ALL_PO_STATES = frozenset(POState)
ACTIVE = frozenset({S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT})
"""States in which goods, invoices and payments may be recorded."""
OPEN_FOR_TALK = frozenset(POState) - {S.CLOSED, S.CANCELLED, S.REJECTED}


def _line_nos(po: PurchaseOrder) -> set[int]:
    return {line.line_no for line in po.lines}


def _unknown_lines(po: PurchaseOrder, numbers: Iterable[int], what: str) -> list[str]:
    known = _line_nos(po)
    return [
        f"{what} names line {n}, which {po.label} does not have (lines: {sorted(known)})"
        for n in numbers
        if n not in known
    ]


# -- PO guards ---------------------------------------------------------------------------------------------


def _g_create(c: _Context) -> Iterable[str]:
    po: PurchaseOrder = c.event.po
    if po.state is not S.DRAFT or po.version != 1:
        yield f"a new PO starts as a draft at version 1, not {po.state.value} at version {po.version}"
    if po.number or po.progress or po.invoices or po.approval or po.revisions or po.applied_keys:
        yield "a new PO carries no number, progress, invoices, approval or history"
    yield from _supplier_usable(c, po.supplier_id)


def _supplier_usable(c: _Context, supplier_id: str) -> Iterable[str]:
    supplier = c.machine.suppliers.supplier(supplier_id)
    if supplier is not None and supplier.blocked:
        why = f" ({supplier.blocked_reason})" if supplier.blocked_reason else ""
        yield f"supplier {supplier_id} is blocked{why}"


def _g_edit(c: _Context) -> Iterable[str]:
    e: EditDraft = c.event
    po: PurchaseOrder = c.doc
    lines = e.lines
    if lines is not None:
        yield from _try(lambda: attrs.evolve(po, lines=lines))
    if e.supplier_id is not None:
        yield from _supplier_usable(c, e.supplier_id)


def _try(build: Callable[[], object]) -> list[str]:
    try:
        build()
    except PotrackError as err:
        return [str(err)]
    return []


def _g_submit_po(c: _Context) -> Iterable[str]:
    if c.machine.router is None and c.event.route is None:
        yield "no approval router is configured, so the PO cannot be routed"
    yield from _supplier_usable(c, c.doc.supplier_id)


def _g_issue(c: _Context) -> Iterable[str]:
    po: PurchaseOrder = c.doc
    state = po.approval
    if state is None or approval.outcome(state) is not ApprovalOutcome.APPROVED:
        waiting = [s.describe() for s in approval.active_steps(state)] if state else []
        yield (
            "its approval route is not complete"
            + (f": waiting for {'; '.join(waiting)}" if waiting else "")
        )
    yield from _supplier_usable(c, po.supplier_id)
    number = c.event.number or po.number
    if number is None:
        yield "it has no number: issue it through a numbering allocator (or give the number)"
    elif po.number is not None and c.event.number and c.event.number != po.number:
        yield f"it already has number {po.number}; a re-issue keeps it"
    elif c.machine.numbering is not None and not c.machine.numbering.is_valid(number):
        yield f"number {number!r} does not fit the pattern {c.machine.numbering.pattern!r}"


def _g_ack(c: _Context) -> Iterable[str]:
    ack: Acknowledgement = c.event.acknowledgement
    po: PurchaseOrder = c.doc
    if ack.po_id != po.id:
        yield f"the acknowledgement is for {ack.po_id}, not {po.id}"
    if ack.revision != po.revision:
        yield f"it acknowledges revision {ack.revision}, but the PO is at revision {po.revision}"
    if po.acknowledgement is not None and po.acknowledgement.revision == po.revision:
        yield f"revision {po.revision} is already acknowledged"
    yield from _unknown_lines(po, (n for n, _ in ack.promised_dates), "the acknowledgement")


def _g_proposal(c: _Context) -> Iterable[str]:
    proposal: ChangeProposal = c.event.proposal
    po: PurchaseOrder = c.doc
    if proposal.po_id != po.id:
        yield f"the proposal is for {proposal.po_id}, not {po.id}"
    yield from _unknown_lines(po, (ch.line_no for ch in proposal.changes), "the proposal")
    yield from _change_problems(po, proposal.changes)


def _change_problems(po: PurchaseOrder, changes: Iterable[LineChange]) -> Iterable[str]:
    for ch in changes:
        line = po.line(ch.line_no)
        if line is None:
            continue
        if ch.unit_price is not None and ch.unit_price.currency.code != po.currency:
            yield (
                f"line {ch.line_no}: price in {ch.unit_price.currency.code}, but the PO is in "
                f"{po.currency}"
            )
        if ch.quantity is not None:
            p = po.line_progress(ch.line_no)
            floor = max(p.received - p.returned, p.invoiced - p.credited)
            if ch.quantity < floor:
                yield (
                    f"line {ch.line_no}: quantity {ch.quantity} is below the {floor} already "
                    "received or invoiced"
                )


def _g_pending_change(c: _Context) -> Iterable[str]:
    pending = c.doc.pending_change
    if pending is None or pending.id != c.event.proposal_id:
        have = pending.id if pending else "none"
        yield f"the pending change proposal is {have}, not {c.event.proposal_id}"


def _g_revise(c: _Context) -> Iterable[str]:
    e: ReviseOrder = c.event
    po: PurchaseOrder = c.doc
    if not e.changes and not e.add_lines:
        yield "a change order changes or adds at least one line"
    yield from _unknown_lines(po, (ch.line_no for ch in e.changes), "the change order")
    yield from _change_problems(po, e.changes)
    clash = sorted(_line_nos(po) & {line.line_no for line in e.add_lines})
    if clash:
        yield f"added lines reuse line numbers {clash}"
    for line in e.add_lines:
        if line.unit_price.currency.code != po.currency:
            yield f"added line {line.line_no}: price in {line.unit_price.currency.code}, not {po.currency}"


def _g_doc_of_po(doc_po_id: str, c: _Context, what: str) -> Iterable[str]:
    if doc_po_id != c.doc.id:
        yield f"the {what} belongs to {doc_po_id}, not {c.doc.id}"


def _g_dispatch(c: _Context) -> Iterable[str]:
    notice: DispatchNotice = c.event.notice
    yield from _g_doc_of_po(notice.po_id, c, "dispatch notice")
    yield from _unknown_lines(c.doc, (d.line_no for d in notice.lines), "the dispatch notice")


def _allowance(m: PurchaseOrderLifecycle, line: PurchaseOrderLine) -> Decimal:
    if line.over_receipt_allowance is not None:
        return line.over_receipt_allowance
    if line.item is not None and line.item in m.item_allowances:
        return m.item_allowances[line.item]
    return m.over_receipt_allowance


def _lines_by_no(po: PurchaseOrder) -> dict[int, PurchaseOrderLine]:
    """The PO's lines by number: one pass, so checking a document's lines stays linear."""
    return {line.line_no: line for line in po.lines}


def _progress_by_no(po: PurchaseOrder) -> dict[int, LineProgress]:
    """The PO's line progress by number (a line with nothing yet is absent)."""
    return {p.line_no: p for p in po.progress}


def _over_receipts(c: _Context) -> list[tuple[int, str]]:
    po: PurchaseOrder = c.doc
    out = []
    lines = _lines_by_no(po)
    progress = _progress_by_no(po)
    for rl in c.event.receipt.lines:
        line = lines.get(rl.line_no)
        if line is None:
            continue
        p = progress.get(rl.line_no) or LineProgress(line_no=rl.line_no)
        after = p.received - p.returned + rl.received
        allowance = _allowance(c.machine, line)
        limit = line.quantity * (1 + allowance / _HUNDRED)
        if after > limit:
            out.append(
                (
                    rl.line_no,
                    f"line {rl.line_no}: receiving {rl.received} brings it to {after} of "
                    f"{line.quantity} ordered, beyond the {allowance.normalize():f} % "
                    f"allowance ({limit.normalize():f})",
                )
            )
    return out


def _g_receive(c: _Context) -> Iterable[str]:
    receipt = c.event.receipt
    po: PurchaseOrder = c.doc
    yield from _g_doc_of_po(receipt.po_id, c, "goods receipt")
    if receipt.id in po.receipts:
        yield f"receipt {receipt.id} is already recorded"
    yield from _unknown_lines(po, (rl.line_no for rl in receipt.lines), "the receipt")
    lines = _lines_by_no(po)
    for rl in receipt.lines:
        line = lines.get(rl.line_no)
        if line is not None and rl.uom is not None and rl.uom != line.uom:
            yield (
                f"line {rl.line_no}: received in {rl.uom}, but the line is ordered in "
                f"{line.uom}; convert the quantity first"
            )
    if not c.actor.has_role(Role.OVER_RECEIPT_BYPASS):
        for _, reason in _over_receipts(c):
            yield (
                reason
                + f"; someone holding the {Role.OVER_RECEIPT_BYPASS.value} role may accept it"
            )


def _g_inspect(c: _Context) -> Iterable[str]:
    e: RecordInspection = c.event
    po: PurchaseOrder = c.doc
    if e.receipt_id not in po.receipts:
        yield f"receipt {e.receipt_id} is not recorded on {po.label}"
    yield from _unknown_lines(po, (il.line_no for il in e.lines), "the inspection")
    progress = _progress_by_no(po)
    for il in e.lines:
        found = progress.get(il.line_no)
        waiting = _ZERO if found is None else found.pending_inspection
        if il.accepted + il.rejected > waiting:
            yield (
                f"line {il.line_no}: inspecting {il.accepted + il.rejected} but only {waiting} "
                "awaits inspection"
            )


def _g_return(c: _Context) -> Iterable[str]:
    ret = c.event.goods_return
    po: PurchaseOrder = c.doc
    yield from _g_doc_of_po(ret.po_id, c, "return")
    if ret.id in po.returns:
        yield f"return {ret.id} is already recorded"
    yield from _unknown_lines(po, (rl.line_no for rl in ret.lines), "the return")
    progress = _progress_by_no(po)
    for rl in ret.lines:
        p = progress.get(rl.line_no) or LineProgress(line_no=rl.line_no)
        if rl.quantity > p.received - p.returned:
            yield (
                f"line {rl.line_no}: returning {rl.quantity} but only "
                f"{p.received - p.returned} is received and not yet returned"
            )


def _invoice_checks(c: _Context, invoice: Any, kind: InvoiceKind) -> Iterable[str]:
    po: PurchaseOrder = c.doc
    name = "credit memo" if kind is InvoiceKind.CREDIT_MEMO else "invoice"
    if invoice.kind is not kind:
        yield f"{invoice.id} is a {invoice.kind.value.replace('_', ' ')}, not an {name}"
    if invoice.po_id != po.id:
        yield f"the {name} is for {invoice.po_id}, not {po.id}"
    if invoice.supplier_id != po.supplier_id:
        yield f"the {name} is from supplier {invoice.supplier_id}, but the PO is with {po.supplier_id}"
    if po.invoice(invoice.id) is not None:
        yield f"{name} {invoice.id} is already recorded"
    if invoice.currency != po.currency and invoice.exchange_rate is None:
        yield (
            f"the {name} is in {invoice.currency}, the PO in {po.currency}, and no "
            "exchange_rate is given"
        )
    yield from _unknown_lines(
        po, (ln.po_line_no for ln in invoice.lines if ln.po_line_no is not None), f"the {name}"
    )


def _g_invoice(c: _Context) -> Iterable[str]:
    yield from _invoice_checks(c, c.event.invoice, InvoiceKind.INVOICE)


def _g_credit(c: _Context) -> Iterable[str]:
    memo = c.event.memo
    po: PurchaseOrder = c.doc
    yield from _invoice_checks(c, memo, InvoiceKind.CREDIT_MEMO)
    rate = memo.exchange_rate or Decimal(1)
    per_line: dict[int, tuple[Decimal, Decimal]] = {}
    for ln in memo.lines:
        if ln.po_line_no is None:
            continue
        q, a = per_line.get(ln.po_line_no, (_ZERO, _ZERO))
        per_line[ln.po_line_no] = (q + ln.quantity, a + ln.net_amount.amount * rate)
    progress = _progress_by_no(po)
    for line_no, (qty, amount) in sorted(per_line.items()):
        p = progress.get(line_no) or LineProgress(line_no=line_no)
        if qty > p.invoiced - p.credited:
            yield (
                f"line {line_no}: crediting {qty} but only {p.invoiced - p.credited} is "
                "invoiced and not yet credited"
            )
        if amount > p.invoiced_amount - p.credited_amount:
            yield (
                f"line {line_no}: crediting {amount} but only "
                f"{p.invoiced_amount - p.credited_amount} {po.currency} is invoiced"
            )
    if memo.credits is not None and po.invoice(memo.credits) is None:
        yield f"the credit memo credits {memo.credits}, which is not recorded on {po.label}"


def _g_match(c: _Context) -> Iterable[str]:
    e: RecordMatch = c.event
    inv = c.doc.invoice(e.invoice_id)
    if inv is None:
        yield f"invoice {e.invoice_id} is not recorded on {c.doc.label}"
        return
    if c.documents is None:
        yield (
            "recording a match runs the matching engine on the PO's receipts, returns and "
            "invoices: apply it through Purchasing, or pass the PO's documents"
        )
    elif not any(d.id == e.invoice_id for d in c.documents.invoices):
        yield f"invoice {e.invoice_id} is not among the PO's stored documents"
    for a in e.accept:
        if not a.reason.strip():
            yield f"accepting {a.code} needs a reason a reviewer can read"


def _payable_in_po_currency(c: _Context, invoice_id: str, amount: Money) -> Decimal:
    """``amount`` (in the invoice's currency) in the PO's currency."""
    inv = c.doc.invoice(invoice_id)
    return amount.amount * (inv.rate if inv is not None else Decimal(1))


def _g_match_amount(c: _Context) -> Iterable[str]:
    e: RecordMatch = c.event
    inv = c.doc.invoice(e.invoice_id)
    if inv is None or e.payable is None:
        return
    if e.payable.amount < 0:
        yield f"the payable amount cannot be negative ({e.payable.amount})"
    payable = _payable_in_po_currency(c, e.invoice_id, e.payable)
    if inv.kind is InvoiceKind.INVOICE and payable > inv.amount:
        yield (f"payable {payable} exceeds the invoice's amount {inv.amount} {c.doc.currency}")


def _g_pay(c: _Context) -> Iterable[str]:
    payment = c.event.payment
    po: PurchaseOrder = c.doc
    mine = [a for a in payment.allocations if po.invoice(a.invoice_id) is not None]
    if not mine:
        yield f"the payment settles no invoice recorded on {po.label}"
    if payment.supplier_id != po.supplier_id:
        yield f"the payment is to supplier {payment.supplier_id}, not {po.supplier_id}"
    if payment.id in po.payments:
        yield f"payment {payment.id} is already recorded"
    for alloc in mine:
        inv = po.invoice(alloc.invoice_id)
        assert inv is not None
        if inv.kind is InvoiceKind.CREDIT_MEMO:
            yield f"{alloc.invoice_id} is a credit memo; payments settle invoices"
            continue
        paying = _payable_in_po_currency(c, alloc.invoice_id, alloc.amount)
        room = inv.payable - inv.paid
        if inv.status is InvoiceStatus.HELD or inv.status is InvoiceStatus.PENDING:
            state = "held" if inv.status is InvoiceStatus.HELD else "not matched yet"
            yield f"invoice {alloc.invoice_id} is {state}: nothing on it is payable"
        elif paying > room:
            yield (
                f"paying {paying} {po.currency} on {alloc.invoice_id} exceeds what is payable "
                f"and unpaid ({room} {po.currency})"
            )


def _g_short_close(c: _Context) -> Iterable[str]:
    if progress(c.doc, c.machine.default_match_level).complete:
        yield "nothing is open: it closes by itself once paid; short-closing is for what is still open"
    yield from _unpaid_matched(c.doc, "short-closing")


def _unpaid_matched(po: PurchaseOrder, what: str) -> Iterable[str]:
    """A matched invoice still owed money keeps the PO open: closing would strand it."""
    for inv in po.invoices:
        if inv.kind is not InvoiceKind.INVOICE:
            continue
        if inv.status not in (InvoiceStatus.MATCHED, InvoiceStatus.MATCHED_WITHIN_TOLERANCE):
            continue
        owed = inv.payable - inv.paid
        if owed > 0:
            yield (
                f"invoice {inv.invoice_id} is matched and {owed} {po.currency} of it unpaid; "
                f"pay it, or record a credit memo, before {what}"
            )


def _g_cancel(c: _Context) -> Iterable[str]:
    po: PurchaseOrder = c.doc
    if any(p.received > 0 or p.invoiced > 0 for p in po.progress) or po.invoices:
        yield "goods or invoices are already recorded; short-close it instead"


def _g_issue_exists(c: _Context) -> Iterable[str]:
    if not any(i.issue_id == c.event.issue_id and i.resolved_at is None for i in c.doc.issues):
        yield f"there is no open issue {c.event.issue_id!r}"


def _g_new_issue(c: _Context) -> Iterable[str]:
    if any(i.issue_id == c.event.issue_id for i in c.doc.issues):
        yield f"issue {c.event.issue_id!r} already exists"


def _g_decision(c: _Context) -> Iterable[str]:
    e: RecordDecision = c.event
    state: ApprovalState | None = c.doc.approval
    if e.step_id is None or e.verdict is None:
        yield "a decision names the step (step_id) and the verdict (approve, reject, return, comment)"
        return
    if state is None:
        yield "it has no approval route"
        return
    assert e.decision is not None
    _, refused, _ = approval.decision_problems(state, e.decision, c.actor, c.machine.directory)
    yield from refused


def _deciders(state: ApprovalState) -> set[str]:
    people: set[str] = set()
    for d in state.decisions:
        if d.decision is not Decision.COMMENT:
            people.add(d.actor)
            if d.on_behalf_of is not None:
                people.add(d.on_behalf_of)
    return people


def _g_reassign(c: _Context) -> Iterable[str]:
    e: ReassignStep = c.event
    state: ApprovalState | None = c.doc.approval
    if e.step_id is None or e.to_actor is None or not e.reason:
        yield "a reassignment names the step (step_id), who takes it over (to_actor) and a reason"
        return
    if state is None:
        yield "it has no approval route"
        return
    step = state.route.step(e.step_id)
    if step is None:
        yield f"the route has no step {e.step_id!r}"
        return
    if step not in approval.active_steps(state):
        yield f"step {e.step_id} is not waiting for a decision"
    if e.from_actor is not None and e.from_actor not in approval.step_candidates(state, step):
        yield f"{e.from_actor} is not an approver of step {e.step_id}"
    to = e.to_actor
    if to == c.actor.id:
        yield f"{to} may not hand a step to themselves"
    if to == state.requester or to == getattr(c.doc, "requester", None):
        yield f"{to} requested the document and may not approve it"
    if to == getattr(c.doc, "buyer", None):
        yield f"{to} is the document's buyer and may not approve it"
    if to in _deciders(state):
        yield f"{to} already decided a step of this document and may not take another"
    directory = c.machine.directory
    if directory is None:
        return
    person = directory.actor(to)
    if person is None:
        yield f"{to} is not in the directory"
        return
    if person.is_supplier_user:
        yield f"{to} works for supplier {person.supplier_id}"
    elif step.approver_kind is ApproverKind.ROLE:
        if not person.has_role(step.approver_ref):
            yield f"{to} does not hold role {step.approver_ref!r}, which step {e.step_id} needs"
    elif not person.has_role(Role.APPROVER):
        yield f"{to} does not hold the {Role.APPROVER.value} role, which step {e.step_id} needs"


# -- completers (fill what the lifecycle decides when an event is applied) ----------------------------------


def _c_submit(c: _Context) -> Event:
    e: SubmitForApproval = c.event
    route = c.machine.router.route(c.doc, c.at)
    return attrs.evolve(e, route=route)


def _c_decide(c: _Context) -> Event:
    e: RecordDecision = c.event
    assert e.decision is not None
    _, _, on_behalf = approval.decision_problems(
        c.doc.approval, e.decision, c.actor, c.machine.directory
    )
    if on_behalf is not None:
        return attrs.evolve(e, decision=attrs.evolve(e.decision, on_behalf_of=on_behalf))
    return e


def _revised_lines(
    po: PurchaseOrder, changes: Iterable[LineChange], added: Iterable[PurchaseOrderLine] = ()
) -> tuple[PurchaseOrderLine, ...]:
    by_no = {ch.line_no: ch for ch in changes}
    out = []
    for line in po.lines:
        ch = by_no.get(line.line_no)
        if ch is None:
            out.append(line)
            continue
        updates: dict[str, Any] = {}
        if ch.quantity is not None:
            updates["quantity"] = ch.quantity
        if ch.unit_price is not None:
            updates["unit_price"] = ch.unit_price
        if ch.promised_date is not None:
            updates["promised_date"] = ch.promised_date
        out.append(attrs.evolve(line, **updates))
    out.extend(added)
    return tuple(out)


def _baseline(po: PurchaseOrder) -> Money:
    """The value change orders are compared with: the order value when its approval route last
    completed (documents stored before potrack kept it fall back to the current value)."""
    return po.approved_value if po.approved_value is not None else po.amount


def _money_text(value: Decimal, currency: str) -> str:
    return f"{value:,} {currency}"


def _c_revision(
    c: _Context, changes: Iterable[LineChange], added: Iterable[PurchaseOrderLine], event: Any
) -> Event:
    """Decide whether a change order goes back through approval, and say why in words.

    Re-approval is needed when the revised value exceeds the last approved baseline by more than
    the threshold (cumulative: every revision since the approval counts), or when the revised PO
    routes to a step the approved route did not contain (a tier crossing).
    """
    po: PurchaseOrder = c.doc
    machine = c.machine
    revised = attrs.evolve(po, lines=_revised_lines(po, changes, added))
    base = _baseline(po).amount
    after = revised.amount.amount
    currency = po.currency
    reasons: list[str] = []
    threshold = machine.reapproval_percent
    if after > base:
        rise = (after - base) * _HUNDRED / base if base else None
        rise_text = "" if rise is None else f" (+{rise.quantize(Decimal('0.01'))} %)"
        if threshold is None:
            reasons.append(
                f"the value rises from the approved {_money_text(base, currency)} to "
                f"{_money_text(after, currency)}{rise_text}; any increase is re-approved"
            )
        elif rise is None or rise > threshold:
            reasons.append(
                f"the value rises from the approved {_money_text(base, currency)} to "
                f"{_money_text(after, currency)}{rise_text}, beyond the {threshold} % threshold"
            )
    route = None
    new_steps: list[str] = []
    if machine.router is not None:
        try:
            route = machine.router.route(revised, c.at)
        except approval.RoutingError:
            if reasons:
                raise
            route = None
        approved = po.approval.route if po.approval is not None else None
        if route is not None and approved is not None:
            known = {step.step_id for step in approved.steps}
            new_steps = [s.step_id for s in route.steps if s.step_id not in known]
            if new_steps:
                reasons.append(
                    "the revised order routes to "
                    + ", ".join(
                        f"step {s.step_id} ({s.describe()})"
                        for s in route.steps
                        if s.step_id in new_steps
                    )
                    + ", which the approved route did not contain"
                )
    if not reasons:
        within = (
            f"within the {threshold} % re-approval threshold"
            if threshold is not None and after > base
            else "not above it"
        )
        explanation = (
            f"no re-approval: {_money_text(after, currency)} against the approved "
            f"{_money_text(base, currency)} is {within}, and the route needs no new step"
        )
        return attrs.evolve(  # type: ignore[no-any-return]
            event, reapproval=False, route=None, keep_decisions=None, explanation=explanation
        )
    if route is None:
        raise TransitionRefusedError(
            po.label,
            po.state.value,
            event.verb,
            ["; ".join(reasons) + ", and no approval router is configured to route it again"],
        )
    keep = bool(machine.keep_decisions)
    kept, asked = _kept_steps(po.approval, route, keep)
    words = "re-approval: " + "; ".join(reasons) + ". "
    words += "Kept: " + ", ".join(kept) + ". " if kept else "No earlier approval is kept. "
    words += "Asked again: " + ", ".join(asked) + "."
    return attrs.evolve(  # type: ignore[no-any-return]
        event, reapproval=True, route=route, keep_decisions=keep, explanation=words
    )


def _kept_steps(old: ApprovalState | None, route: Any, keep: bool) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    asked: list[str] = []
    for step in route.steps:
        before = old.route.step(step.step_id) if old is not None else None
        carried = (
            keep
            and old is not None
            and before is not None
            and before.candidates == step.candidates
            and any(
                d.step_id == step.step_id and d.decision is Decision.APPROVE for d in old.decisions
            )
        )
        (kept if carried else asked).append(f"step {step.step_id}")
    return kept, asked


def _c_accept(c: _Context) -> Event:
    proposal: ChangeProposal = c.doc.pending_change
    return _c_revision(c, proposal.changes, (), c.event)


def _c_revise(c: _Context) -> Event:
    e: ReviseOrder = c.event
    return _c_revision(c, e.changes, e.add_lines, e)


def _c_match(c: _Context) -> Event:
    """Run the matching engine on the PO's documents; grant the overrides the sender may grant."""
    from potrack import matching

    e: RecordMatch = c.event
    po: PurchaseOrder = c.doc
    docs = c.documents
    assert docs is not None
    position = next(i for i, d in enumerate(docs.invoices) if d.id == e.invoice_id)
    invoice = docs.invoices[position]
    earlier = docs.invoices[:position]
    theirs = list(docs.supplier_invoices)
    cut = next((i for i, d in enumerate(theirs) if d.id == invoice.id), len(theirs))
    machine = c.machine
    supplier = machine.suppliers.supplier(po.supplier_id)

    def run(overrides: Sequence[Any]) -> Any:
        return matching.match(
            invoice,
            po,
            receipts=docs.receipts,
            returns=docs.returns,
            earlier=earlier,
            supplier_invoices=theirs[:cut],
            policy=machine.tolerances,
            supplier=supplier,
            overrides=overrides,
        )

    result = run(())
    if e.accept:
        if not (c.actor.roles & machine.override_roles):
            raise NotPermittedError(
                po.label,
                po.state.value,
                e.verb,
                [
                    f"{c.actor.id} may not accept matching findings (that takes "
                    f"{', '.join(sorted(machine.override_roles))})"
                ],
                c.actor.id,
            )
        granted = []
        for a in e.accept:
            finding = next(
                (
                    f
                    for f in result.findings
                    if f.code.value == a.code and f.invoice_line_no == a.invoice_line_no
                ),
                None,
            )
            if finding is None or not finding.blocking:
                where = "the header" if a.invoice_line_no is None else f"line {a.invoice_line_no}"
                raise TransitionRefusedError(
                    po.label,
                    po.state.value,
                    e.verb,
                    [f"the match of {invoice.id} has no blocking {a.code} finding on {where}"],
                    c.actor.id,
                )
            granted.append(
                matching.Override(
                    invoice_id=invoice.id,
                    code=finding.code,
                    invoice_line_no=finding.invoice_line_no,
                    by=c.actor.id,
                    reason=a.reason,
                    at=c.at,
                    accepted_variance=None if finding.variance is None else abs(finding.variance),
                )
            )
        result = run(granted)
    fact = result.to_event(po.currency)
    return attrs.evolve(
        e,
        status=fact.status,
        payable=fact.payable,
        findings=fact.findings,
        overrides=fact.overrides,
    )


def _c_receive(c: _Context) -> Event:
    e: ReceiveGoods = c.event
    if e.overrides or not c.actor.has_role(Role.OVER_RECEIPT_BYPASS):
        return e
    over = tuple(n for n, _ in _over_receipts(c))
    return attrs.evolve(e, overrides=over) if over else e


def _c_side(c: _Context) -> Event:
    if c.event.from_supplier is not None:
        return c.event  # type: ignore[no-any-return]
    return attrs.evolve(c.event, from_supplier=c.actor.is_supplier_user)  # type: ignore[no-any-return]


def _c_issue(c: _Context) -> Event:
    e: Issue = c.event
    if e.number is None and c.doc.number is not None:
        return attrs.evolve(e, number=c.doc.number)
    return e


# -- PO effects (shared by live application and replay) --------------------------------------------------


def _e_create(b: _PO, e: CreatePurchaseOrder, actor: ActorId, at: datetime) -> tuple[str, ...]:
    return ("po_created",)


def _e_edit(b: _PO, e: EditDraft, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.lines is not None:
        b.lines = e.lines
    for name in ("supplier_id", "payment_terms", "ship_to"):
        value = getattr(e, name)
        if value is not None:
            b.set(**{name: value})
    return ()


def _e_submit(b: _PO | _Req, e: SubmitForApproval, actor: ActorId, at: datetime) -> tuple[str, ...]:
    assert e.route is not None
    requester = b.get("requester") or actor
    state = build(
        ApprovalState,
        {
            "route": e.route,
            "started_at": at,
            "requester": requester,
            "decisions": (),
            "reassignments": (),
        },
    )
    b.set(approval=state)
    if approval.outcome(state) is ApprovalOutcome.APPROVED:
        _approve(b)
        return ("submitted", "approved")
    b.state = _pending_state(b)
    return ("submitted",)


def _approve(b: _PO | _Req) -> None:
    """The route is complete: approved, and for a PO its value becomes the approved baseline."""
    if isinstance(b, _PO):
        b.state = S.APPROVED
        currency = b.get("currency")
        b.set(approved_value=Money(sum((ln.amount.amount for ln in b.lines), _ZERO), currency))
    else:
        b.state = RequisitionState.APPROVED


def _pending_state(b: _PO | _Req) -> Any:
    return S.PENDING_APPROVAL if isinstance(b, _PO) else RequisitionState.PENDING_APPROVAL


def _e_decide(b: _PO | _Req, e: RecordDecision, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.decision is None:
        raise ReplayError(f"a decision record on step {e.step_id} carries no decision")
    state = approval.record_decision(b.get("approval"), e.decision)
    b.set(approval=state)
    result = approval.outcome(state)
    is_po = isinstance(b, _PO)
    if result is ApprovalOutcome.APPROVED:
        _approve(b)
        return ("approved",)
    if result is ApprovalOutcome.REJECTED:
        b.state = S.REJECTED if is_po else RequisitionState.REJECTED
        return ("rejected",)
    if result is ApprovalOutcome.RETURNED:
        b.state = S.DRAFT if is_po else RequisitionState.RETURNED
        return ("returned",)
    return ("approval_recorded",)


def _e_reassign(b: _PO | _Req, e: ReassignStep, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.reassignment is None:
        raise ReplayError(f"a reassignment record on step {e.step_id} carries no reassignment")
    b.set(approval=approval.record_reassignment(b.get("approval"), e.reassignment))
    return ("approval_reassigned",)


def _e_issue(b: _PO, e: Issue, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.state = S.ISSUED
    first = b.get("number") is None
    b.set(number=e.number)
    if b.get("issued_at") is None:
        b.set(issued_at=at)
    return ("po_issued",) if first else ("po_reissued",)


def _e_ack(b: _PO, e: Acknowledge, actor: ActorId, at: datetime) -> tuple[str, ...]:
    ack = e.acknowledgement
    b.set(acknowledgement=ack)
    if ack.promised_dates:
        promised = dict(ack.promised_dates)
        b.lines = tuple(
            attrs.evolve(line, promised_date=promised[line.line_no])
            if line.line_no in promised
            else line
            for line in b.lines
        )
    if b.state is S.ISSUED:
        b.state = S.ACKNOWLEDGED
    return ("po_acknowledged",)


def _e_supplier_reject(b: _PO, e: SupplierReject, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.state = S.SUPPLIER_REJECTED
    b.comments.append(Comment(at=at, by=actor, text=f"rejected: {e.reason}", from_supplier=True))
    return ("po_rejected_by_supplier",)


def _e_propose(b: _PO, e: ProposeChange, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.set(pending_change=e.proposal, resume_to=b.state)
    b.state = S.CHANGE_PROPOSED
    return ("change_proposed",)


def _apply_revision(
    b: _PO,
    changes: Iterable[LineChange],
    added: Iterable[PurchaseOrderLine],
    reason: str,
    source: str,
    reapproval: bool,
    actor: ActorId,
    at: datetime,
) -> None:
    before_lines = b.lines
    base = attrs.evolve(b.base, lines=before_lines)
    after_lines = _revised_lines(base, changes, added)
    diffs = []
    old_by_no = {line.line_no: line for line in before_lines}
    for line in after_lines:
        old = old_by_no.get(line.line_no)
        if old is None:
            diffs.append(
                FieldChange(
                    field="line",
                    old="",
                    new=f"{line.quantity} {line.uom} {line.description}",
                    line_no=line.line_no,
                )
            )
            continue
        for name in ("quantity", "unit_price", "promised_date"):
            a, z = getattr(old, name), getattr(line, name)
            if a != z:
                diffs.append(
                    FieldChange(field=name, old=_text(a), new=_text(z), line_no=line.line_no)
                )
    currency = b.get("currency")
    value_before = Money(sum((ln.amount.amount for ln in before_lines), _ZERO), currency)
    value_after = Money(sum((ln.amount.amount for ln in after_lines), _ZERO), currency)
    number = b.get("revision") + 1
    b.lines = after_lines
    b.set(revision=number)
    b.revisions.append(
        Revision(
            number=number,
            at=at,
            by=actor,
            reason=reason,
            changes=tuple(diffs),
            value_before=value_before,
            value_after=value_after,
            source=source,
            reapproval=reapproval,
        )
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Money):
        return f"{value.amount} {value.currency.code}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _reroute(b: _PO, route: Any, at: datetime, machine_keep: bool) -> None:
    old = b.get("approval")
    if old is None:
        state = ApprovalState(route=route, started_at=at, requester=b.get("requester"))
    else:
        state = approval.carry_over(old, route, at, machine_keep)
    b.set(approval=state)
    if approval.outcome(state) is ApprovalOutcome.APPROVED:
        _approve(b)
    else:
        b.state = S.PENDING_APPROVAL


def _e_accept(b: _PO, e: AcceptChange, actor: ActorId, at: datetime) -> tuple[str, ...]:
    proposal: ChangeProposal = b.get("pending_change")
    resume = b.get("resume_to")
    _apply_revision(
        b, proposal.changes, (), e.reason, "supplier proposal", bool(e.reapproval), actor, at
    )
    b.set(pending_change=None, resume_to=None)
    if e.reapproval:
        _reroute(b, e.route, at, bool(e.keep_decisions))
        return ("change_accepted", "po_revised", "reapproval_required")
    b.set(
        acknowledgement=Acknowledgement(
            po_id=b.get("id"),
            revision=b.get("revision"),
            at=at,
            by=proposal.proposed_by,
            note="change proposal accepted",
        )
    )
    b.state = S.IN_FULFILMENT if resume is S.IN_FULFILMENT else S.ACKNOWLEDGED
    return ("change_accepted", "po_revised")


def _e_decline(b: _PO, e: DeclineChange, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.state = b.get("resume_to") or S.ISSUED
    b.set(pending_change=None, resume_to=None)
    b.comments.append(
        Comment(at=at, by=actor, text=f"change proposal {e.proposal_id} declined: {e.reason}")
    )
    return ("change_declined",)


def _e_revise(b: _PO, e: ReviseOrder, actor: ActorId, at: datetime) -> tuple[str, ...]:
    was = b.state
    _apply_revision(
        b, e.changes, e.add_lines, e.reason, "change order", bool(e.reapproval), actor, at
    )
    if e.reapproval:
        _reroute(b, e.route, at, bool(e.keep_decisions))
        return ("po_revised", "reapproval_required")
    b.state = S.IN_FULFILMENT if was is S.IN_FULFILMENT else S.ISSUED
    return ("po_revised",)


def _fulfilling(b: _PO) -> None:
    if b.state in (S.ISSUED, S.ACKNOWLEDGED):
        b.state = S.IN_FULFILMENT


def _e_dispatch(b: _PO, e: RecordDispatch, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.dispatches.append(e.notice)
    _fulfilling(b)
    return ("dispatch_notified",)


_RECEIVED = ("goods_received",)
_RECEIVED_OVER = ("goods_received", "over_receipt_accepted")


def _e_receive(b: _PO, e: ReceiveGoods, actor: ActorId, at: datetime) -> tuple[str, ...]:
    overrides = e.overrides
    progress = b.progress
    for rl in e.receipt.lines:
        acc = progress.get(rl.line_no) or b.line(rl.line_no)
        received = rl.received
        rejected = rl.rejected
        acc.received += received
        if rejected:
            acc.rejected += rejected
        if rl.accepted is None:
            acc.pending += received - rejected
        else:
            acc.accepted += rl.accepted
        if overrides and rl.line_no in overrides:
            acc.overrides += 1
    b.receipts.append(e.receipt.id)
    if b.state is S.ISSUED or b.state is S.ACKNOWLEDGED:
        b.state = S.IN_FULFILMENT
    return _RECEIVED_OVER if overrides else _RECEIVED


def _e_inspect(b: _PO, e: RecordInspection, actor: ActorId, at: datetime) -> tuple[str, ...]:
    for il in e.lines:
        acc = b.line(il.line_no)
        acc.pending -= il.accepted + il.rejected
        acc.accepted += il.accepted
        acc.rejected += il.rejected
    return ("goods_inspected",)


def _e_return(b: _PO, e: ReturnGoods, actor: ActorId, at: datetime) -> tuple[str, ...]:
    for rl in e.goods_return.lines:
        b.line(rl.line_no).returned += rl.quantity
    b.returns.append(e.goods_return.id)
    return ("goods_returned",)


def _line_amount(ln: Any) -> Decimal:
    """An invoice line's net amount as a Decimal (what ``InvoiceLine.net_amount`` gives)."""
    if ln.amount is not None:
        return ln.amount.amount  # type: ignore[no-any-return]
    value = ln.quantity * ln.unit_price.amount
    return value if ln.price_unit == 1 else value / ln.price_unit  # type: ignore[no-any-return]


def _e_invoice(b: _PO, e: RecordInvoice, actor: ActorId, at: datetime) -> tuple[str, ...]:
    inv = e.invoice
    rate = inv.exchange_rate or Decimal(1)
    for ln in inv.lines:
        if ln.po_line_no is None:
            continue
        acc = b.line(ln.po_line_no)
        acc.invoiced += ln.quantity
        acc.invoiced_amount += _line_amount(ln) if rate == 1 else _line_amount(ln) * rate
    total = inv.total.amount if rate == 1 else inv.total.amount * rate
    b.invoices[inv.id] = _Invoice.new(inv.id, InvoiceKind.INVOICE, total, inv.number, rate)
    _fulfilling(b)
    return ("invoice_received",)


def _e_credit(b: _PO, e: RecordCreditMemo, actor: ActorId, at: datetime) -> tuple[str, ...]:
    memo = e.memo
    rate = memo.exchange_rate or Decimal(1)
    for ln in memo.lines:
        if ln.po_line_no is None:
            continue
        acc = b.line(ln.po_line_no)
        acc.credited += ln.quantity
        acc.credited_amount += _line_amount(ln) * rate
    b.invoices[memo.id] = _Invoice(
        InvoiceProgress(
            invoice_id=memo.id,
            kind=InvoiceKind.CREDIT_MEMO,
            amount=memo.total.amount * rate,
            status=InvoiceStatus.MATCHED,
            number=memo.number,
            rate=rate,
        )
    )
    return ("credit_memo_received",)


_MATCH_EVENTS = {
    InvoiceStatus.MATCHED: ("invoice_matched",),
    InvoiceStatus.MATCHED_WITHIN_TOLERANCE: ("invoice_matched",),
    InvoiceStatus.HELD: ("invoice_held",),
    InvoiceStatus.AWAITING_RECEIPT: ("invoice_awaiting_receipt",),
}


def _e_match(b: _PO, e: RecordMatch, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.status is None or e.payable is None:
        raise ReplayError(f"a match record of {e.invoice_id} carries no status or payable amount")
    inv = b.invoices[e.invoice_id]
    inv.status = e.status
    rate = inv.rate
    inv.payable = e.payable.amount if rate == 1 else e.payable.amount * rate
    return _MATCH_EVENTS[e.status]


def _e_pay(b: _PO, e: RecordPayment, actor: ActorId, at: datetime) -> tuple[str, ...]:
    for alloc in e.payment.allocations:
        inv = b.invoices.get(alloc.invoice_id)
        if inv is not None:
            rate = inv.rate
            inv.paid += alloc.amount.amount if rate == 1 else alloc.amount.amount * rate
    b.payments.append(e.payment.id)
    return _PAID


_PAID = ("payment_recorded",)


def _e_hold(b: _PO, e: PlaceOnHold, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.set(hold=Hold(reason=e.reason, since=at, by=actor, resume_to=b.state))
    b.state = S.ON_HOLD
    return ("po_held",)


def _e_release(b: _PO, e: ReleaseHold, actor: ActorId, at: datetime) -> tuple[str, ...]:
    hold: Hold = b.get("hold")
    b.state = hold.resume_to
    b.set(hold=None)
    if e.note:
        b.comments.append(Comment(at=at, by=actor, text=f"hold released: {e.note}"))
    return ("po_released",)


def _e_short_close(b: _PO, e: ShortClose, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.state = S.CLOSED
    b.set(closure=Closure(kind=ClosureKind.SHORT, at=at, by=actor, reason=e.reason))
    return ("po_closed", "po_short_closed")


def _e_cancel(b: _PO | _Req, e: Cancel, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if isinstance(b, _PO):
        b.state = S.CANCELLED
        b.set(closure=Closure(kind=ClosureKind.SHORT, at=at, by=actor, reason=e.reason))
        return ("po_cancelled",)
    b.state = RequisitionState.CANCELLED
    return ("requisition_cancelled",)


def _e_reopen(b: _PO, e: Reopen, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.state = S.IN_FULFILMENT
    b.set(closure=None)
    b.comments.append(Comment(at=at, by=actor, text=f"reopened: {e.reason}"))
    return ("po_reopened",)


def _e_comment(b: _PO, e: AddComment, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.comments.append(Comment(at=at, by=actor, text=e.text, from_supplier=bool(e.from_supplier)))
    return ("comment_added",)


def _e_flag(b: _PO, e: FlagIssue, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.issues.append(
        FlaggedIssue(
            issue_id=e.issue_id, at=at, by=actor, text=e.text, from_supplier=bool(e.from_supplier)
        )
    )
    return ("issue_flagged",)


def _e_resolve(b: _PO, e: ResolveIssue, actor: ActorId, at: datetime) -> tuple[str, ...]:
    b.issues = [
        attrs.evolve(i, resolved_at=at, resolved_by=actor, resolution=e.resolution)
        if i.issue_id == e.issue_id and i.resolved_at is None
        else i
        for i in b.issues
    ]
    return ("issue_resolved",)


# -- the PO table -------------------------------------------------------------------------------------------

_INTERNAL = frozenset(
    {
        Role.BUYER,
        Role.REQUESTER,
        Role.APPROVER,
        Role.RECEIVER,
        Role.INSPECTOR,
        Role.AP_CLERK,
        Role.TREASURER,
        Role.ADMIN,
        Role.SUPPLIER,
    }
)
_FULFILMENT = frozenset(
    {
        (S.ISSUED, S.IN_FULFILMENT),
        (S.ACKNOWLEDGED, S.IN_FULFILMENT),
        (S.IN_FULFILMENT, S.IN_FULFILMENT),
        (S.IN_FULFILMENT, S.CLOSED),
    }
)
"""A receipt or invoice starts fulfilment; with everything done, the PO closes itself."""
_REVISIONS = frozenset(
    {
        (src, tgt)
        for src in (S.ISSUED, S.ACKNOWLEDGED, S.SUPPLIER_REJECTED, S.IN_FULFILMENT)
        for tgt in (S.PENDING_APPROVAL, S.APPROVED)
    }
    | {
        (S.ISSUED, S.ISSUED),
        (S.ACKNOWLEDGED, S.ISSUED),
        (S.SUPPLIER_REJECTED, S.ISSUED),
        (S.IN_FULFILMENT, S.IN_FULFILMENT),
    }
)
_HOLDABLE = frozenset(
    {
        S.PENDING_APPROVAL,
        S.APPROVED,
        S.ISSUED,
        S.ACKNOWLEDGED,
        S.CHANGE_PROPOSED,
        S.SUPPLIER_REJECTED,
        S.IN_FULFILMENT,
    }
)


def _rule(
    event: type[Event], sources: Iterable[Any], targets: Iterable[Any], effect: Any, **kw: Any
) -> TransitionRule:
    return TransitionRule(
        event=event, sources=frozenset(sources), targets=frozenset(targets), effect=effect, **kw
    )


PO_TRANSITIONS: tuple[TransitionRule, ...] = (
    _rule(
        CreatePurchaseOrder,
        (),
        {S.DRAFT},
        _e_create,
        roles=frozenset({Role.BUYER}),
        guards=(_g_create,),
        summary="a buyer creates the PO as a draft",
    ),
    _rule(
        EditDraft,
        {S.DRAFT},
        {S.DRAFT},
        _e_edit,
        roles=frozenset({Role.BUYER}),
        guards=(_g_edit,),
        summary="change the draft's lines or terms",
    ),
    _rule(
        SubmitForApproval,
        {S.DRAFT},
        {S.PENDING_APPROVAL, S.APPROVED},
        _e_submit,
        roles=frozenset({Role.BUYER}),
        guards=(_g_submit_po,),
        complete=_c_submit,
        summary="route it through the approval policy (approved at once if the route is empty)",
    ),
    _rule(
        RecordDecision,
        {S.PENDING_APPROVAL},
        {S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.DRAFT},
        _e_decide,
        approver=True,
        guards=(_g_decision,),
        complete=_c_decide,
        summary="an approver of the open step approves, rejects, returns or comments",
    ),
    _rule(
        ReassignStep,
        {S.PENDING_APPROVAL},
        {S.PENDING_APPROVAL},
        _e_reassign,
        roles=frozenset({Role.ADMIN, Role.BUYER}),
        guards=(_g_reassign,),
        summary="hand an open step to another approver",
    ),
    _rule(
        Issue,
        {S.APPROVED},
        {S.ISSUED},
        _e_issue,
        roles=frozenset({Role.BUYER}),
        guards=(_g_issue,),
        complete=_c_issue,
        summary="send it to the supplier; the number is assigned here; refused until the "
        "approval route is complete",
    ),
    _rule(
        Acknowledge,
        {S.ISSUED, S.IN_FULFILMENT},
        {S.ACKNOWLEDGED, S.IN_FULFILMENT},
        _e_ack,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        guards=(_g_ack,),
        summary="the supplier accepts the current revision",
        pairs=frozenset({(S.ISSUED, S.ACKNOWLEDGED), (S.IN_FULFILMENT, S.IN_FULFILMENT)}),
    ),
    _rule(
        SupplierReject,
        {S.ISSUED},
        {S.SUPPLIER_REJECTED},
        _e_supplier_reject,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        summary="the supplier refuses the PO",
    ),
    _rule(
        ProposeChange,
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT},
        {S.CHANGE_PROPOSED},
        _e_propose,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        guards=(_g_proposal,),
        summary="the supplier proposes other quantities, prices or dates",
    ),
    _rule(
        AcceptChange,
        {S.CHANGE_PROPOSED},
        {S.ACKNOWLEDGED, S.IN_FULFILMENT, S.PENDING_APPROVAL, S.APPROVED},
        _e_accept,
        roles=frozenset({Role.BUYER}),
        guards=(_g_pending_change,),
        complete=_c_accept,
        summary="a new revision; back through approval if the value rises beyond the threshold",
    ),
    _rule(
        DeclineChange,
        {S.CHANGE_PROPOSED},
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT},
        _e_decline,
        roles=frozenset({Role.BUYER}),
        guards=(_g_pending_change,),
        summary="the PO stays as it was",
    ),
    _rule(
        ReviseOrder,
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT, S.SUPPLIER_REJECTED},
        {S.ISSUED, S.IN_FULFILMENT, S.PENDING_APPROVAL, S.APPROVED},
        _e_revise,
        roles=frozenset({Role.BUYER}),
        guards=(_g_revise,),
        complete=_c_revise,
        summary="a buyer's change order: a new revision, re-approved if it raises the value",
        pairs=_REVISIONS,
    ),
    _rule(
        RecordDispatch,
        ACTIVE,
        {S.IN_FULFILMENT},
        _e_dispatch,
        roles=frozenset({Role.SUPPLIER, Role.BUYER, Role.RECEIVER}),
        supplier_may=True,
        guards=(_g_dispatch,),
        summary="carrier, tracking reference and expected arrival",
        pairs=frozenset((s, S.IN_FULFILMENT) for s in ACTIVE),
    ),
    _rule(
        ReceiveGoods,
        ACTIVE,
        {S.IN_FULFILMENT, S.CLOSED},
        _e_receive,
        roles=frozenset({Role.RECEIVER}),
        guards=(_g_receive,),
        complete=_c_receive,
        settles=True,
        summary="partial or full; over-receipt beyond the allowance needs the "
        "bypass role and is recorded",
        pairs=_FULFILMENT,
    ),
    _rule(
        RecordInspection,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_inspect,
        roles=frozenset({Role.INSPECTOR, Role.RECEIVER}),
        guards=(_g_inspect,),
        settles=True,
        summary="accepted and rejected quantities of received goods",
    ),
    _rule(
        ReturnGoods,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_return,
        roles=frozenset({Role.RECEIVER}),
        guards=(_g_return,),
        settles=True,
        summary="goods sent back to the supplier",
    ),
    _rule(
        RecordInvoice,
        ACTIVE,
        {S.IN_FULFILMENT, S.CLOSED},
        _e_invoice,
        roles=frozenset({Role.AP_CLERK}),
        guards=(_g_invoice,),
        settles=True,
        summary="a supplier invoice (matching is potrack.matching's job)",
        pairs=_FULFILMENT,
    ),
    _rule(
        RecordCreditMemo,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_credit,
        roles=frozenset({Role.AP_CLERK}),
        guards=(_g_credit,),
        settles=True,
        summary="a credit memo; never more than was invoiced",
    ),
    _rule(
        RecordMatch,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_match,
        roles=frozenset({Role.AP_CLERK, Role.SYSTEM}),
        guards=(_g_match,),
        complete=_c_match,
        settles=True,
        summary="match one invoice with the engine and record the outcome (the library computes it)",
    ),
    _rule(
        RecordPayment,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_pay,
        roles=frozenset({Role.TREASURER}),
        guards=(_g_pay,),
        settles=True,
        summary="partial or full; only what matching made payable",
    ),
    _rule(
        PlaceOnHold,
        _HOLDABLE,
        {S.ON_HOLD},
        _e_hold,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="everything but comments is refused until released",
    ),
    _rule(
        ReleaseHold,
        {S.ON_HOLD},
        _HOLDABLE,
        _e_release,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="resume where it was",
    ),
    _rule(
        ShortClose,
        ACTIVE,
        {S.CLOSED},
        _e_short_close,
        roles=frozenset({Role.BUYER}),
        guards=(_g_short_close,),
        summary="close while something is still open, with a reason; refused while a matched "
        "invoice is unpaid",
    ),
    _rule(
        Cancel,
        {
            S.DRAFT,
            S.PENDING_APPROVAL,
            S.APPROVED,
            S.ISSUED,
            S.ACKNOWLEDGED,
            S.SUPPLIER_REJECTED,
            S.CHANGE_PROPOSED,
        },
        {S.CANCELLED},
        _e_cancel,
        roles=frozenset({Role.BUYER}),
        guards=(_g_cancel,),
        summary="only while nothing is received or invoiced",
    ),
    _rule(
        Reopen,
        {S.CLOSED},
        {S.IN_FULFILMENT},
        _e_reopen,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="reopen a closed PO (a late credit memo, a correction)",
    ),
    _rule(
        AddComment,
        OPEN_FOR_TALK,
        (),
        _e_comment,
        roles=_INTERNAL,
        supplier_may=True,
        complete=_c_side,
        summary="two-way communication with the supplier",
        stays=True,
    ),
    _rule(
        FlagIssue,
        OPEN_FOR_TALK,
        (),
        _e_flag,
        roles=_INTERNAL,
        supplier_may=True,
        guards=(_g_new_issue,),
        complete=_c_side,
        summary="raise a problem on the PO",
        stays=True,
    ),
    _rule(
        ResolveIssue,
        OPEN_FOR_TALK,
        (),
        _e_resolve,
        roles=_INTERNAL,
        supplier_may=True,
        guards=(_g_issue_exists,),
        summary="close a flagged problem",
        stays=True,
    ),
)
"""The purchase-order lifecycle, one row per event."""

PO_TERMINAL = frozenset({S.CANCELLED, S.REJECTED})
PO_FINAL = frozenset({S.CLOSED})
"""Final states accept nothing but their reopen events."""
PO_REOPEN = frozenset({Reopen})


# -- requisitions -------------------------------------------------------------------------------------------

R = RequisitionState


def _g_create_req(c: _Context) -> Iterable[str]:
    req: Requisition = c.event.requisition
    if req.state is not R.DRAFT or req.version != 1 or req.approval or req.conversions:
        yield "a new requisition starts as a draft at version 1 with no history"


def _g_edit_req(c: _Context) -> Iterable[str]:
    e: EditRequisition = c.event
    if e.lines is not None:
        yield from _try(lambda: attrs.evolve(c.doc, lines=e.lines))


def _g_submit_req(c: _Context) -> Iterable[str]:
    if c.machine.router is None and c.event.route is None:
        yield "no approval router is configured, so the requisition cannot be routed"


def _g_convert(c: _Context) -> Iterable[str]:
    req: Requisition = c.doc
    known = {line.line_no for line in req.lines}
    done = {cv.line_no for cv in req.conversions}
    for cv in c.event.conversions:
        if cv.line_no not in known:
            yield f"requisition {req.id} has no line {cv.line_no}"
        elif cv.line_no in done:
            yield f"line {cv.line_no} is already converted"


def _e_create_req(b: _Req, e: CreateRequisition, actor: ActorId, at: datetime) -> tuple[str, ...]:
    return ("requisition_created",)


def _e_edit_req(b: _Req, e: EditRequisition, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.lines is not None:
        b.set(lines=e.lines)
    if e.justification is not None:
        b.set(justification=e.justification)
    if b.state is R.RETURNED:
        b.state = R.DRAFT
    return ()


def _e_submit_req(b: _Req, e: SubmitForApproval, actor: ActorId, at: datetime) -> tuple[str, ...]:
    return _e_submit(b, e, actor, at)


def _e_convert(b: _Req, e: ConvertToOrders, actor: ActorId, at: datetime) -> tuple[str, ...]:
    conversions = (*b.get("conversions"), *e.conversions)
    b.set(conversions=conversions)
    lines = {line.line_no for line in b.get("lines")}
    if lines <= {cv.line_no for cv in conversions}:
        b.state = R.CONVERTED
        return ("requisition_converted",)
    return ("requisition_partly_converted",)


REQUISITION_TRANSITIONS: tuple[TransitionRule, ...] = (
    _rule(
        CreateRequisition,
        (),
        {R.DRAFT},
        _e_create_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_create_req,),
        summary="an employee asks to buy",
    ),
    _rule(
        EditRequisition,
        {R.DRAFT, R.RETURNED},
        {R.DRAFT},
        _e_edit_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_edit_req,),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        summary="change lines or justification (a returned requisition becomes a draft again)",
    ),
    _rule(
        SubmitForApproval,
        {R.DRAFT, R.RETURNED},
        {R.PENDING_APPROVAL, R.APPROVED},
        _e_submit_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_submit_req,),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        complete=_c_submit,
        summary="route it through the approval policy",
    ),
    _rule(
        RecordDecision,
        {R.PENDING_APPROVAL},
        {R.PENDING_APPROVAL, R.APPROVED, R.REJECTED, R.RETURNED},
        _e_decide,
        approver=True,
        guards=(_g_decision,),
        complete=_c_decide,
        summary="an approver approves, rejects, returns for changes or comments",
    ),
    _rule(
        ReassignStep,
        {R.PENDING_APPROVAL},
        {R.PENDING_APPROVAL},
        _e_reassign,
        roles=frozenset({Role.ADMIN, Role.BUYER}),
        guards=(_g_reassign,),
        summary="hand an open step to another approver",
    ),
    _rule(
        ConvertToOrders,
        {R.APPROVED},
        {R.APPROVED, R.CONVERTED},
        _e_convert,
        roles=frozenset({Role.BUYER}),
        guards=(_g_convert,),
        summary="lines become PO lines (split across suppliers or merged); converted when all are",
    ),
    _rule(
        Cancel,
        {R.DRAFT, R.PENDING_APPROVAL, R.APPROVED, R.RETURNED},
        {R.CANCELLED},
        _e_cancel,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        summary="withdraw the request",
    ),
)
"""The requisition lifecycle, one row per event."""

REQ_TERMINAL = frozenset({R.REJECTED, R.CONVERTED, R.CANCELLED})


# -- applying ------------------------------------------------------------------------------------------------


@attrs.frozen
class Applied(Generic[D]):
    """The result of applying an event.

    ``document`` is the new document; ``record`` the transition record to store with it (None when
    the event was a duplicate: its key was applied before, at version ``first_version`` — nothing
    changed, and a host returns the first result from its transition log).
    """

    document: D
    record: TransitionRecord | None
    duplicate: bool = False
    first_version: int | None = None


def _describe_state(doc: Any) -> str:
    state = doc.state
    if isinstance(doc, PurchaseOrder):
        if state is S.ON_HOLD and doc.hold is not None:
            return (
                f"the PO is on hold since {doc.hold.since.date().isoformat()} ({doc.hold.reason})"
            )
        if state is S.CLOSED and doc.closure is not None:
            kind = "short-closed" if doc.closure.kind is ClosureKind.SHORT else "closed"
            return f"the PO is {kind} since {doc.closure.at.date().isoformat()}"
        words = {
            S.DRAFT: "a draft",
            S.PENDING_APPROVAL: "pending approval",
            S.IN_FULFILMENT: "in fulfilment",
            S.CHANGE_PROPOSED: "waiting on a change proposal",
            S.SUPPLIER_REJECTED: "rejected by the supplier",
        }
        return f"the PO is {words.get(state, state.value.replace('_', ' '))}"
    return f"the requisition is {state.value.replace('_', ' ')}"


class _Machine(Generic[D]):
    """Applies events to one kind of document through its declared table."""

    aggregate: str
    table: tuple[TransitionRule, ...]
    terminal: frozenset[Any]
    final: frozenset[Any]
    reopen: frozenset[type[Event]]

    def __init__(self) -> None:
        self._rows: dict[type[Event], TransitionRule] = {}
        for row in self.table:
            self._rows[row.event] = row
        self._plan = {r.event: (r.effect, r.settles, not r.sources) for r in self.table}

    # roles the host may override per event name
    role_overrides: Mapping[str, frozenset[str]] = {}
    router: Router | None = None
    directory: Directory | None = None

    def row(self, event: Event) -> TransitionRule:
        found = self._rows.get(type(event))
        if found is None:
            raise TransitionRefusedError(
                "document",
                "-",
                event.verb,
                [f"{type(event).__name__} is not a {self.aggregate} event"],
            )
        return found

    def _roles(self, row: TransitionRule) -> frozenset[str]:
        return self.role_overrides.get(row.event.name, row.roles)

    def _builder(self, doc: D) -> Any:
        raise NotImplementedError

    def _permission(self, doc: Any, row: TransitionRule, actor: Actor, event: Event) -> list[str]:
        reasons: list[str] = []
        if actor.is_supplier_user:
            if not row.supplier_may:
                reasons.append(
                    f"{actor.id} works for supplier {actor.supplier_id}; supplier users "
                    "may only acknowledge, reject, propose changes, send dispatch "
                    "notices and comment"
                )
            elif getattr(doc, "supplier_id", None) != actor.supplier_id:
                reasons.append(
                    f"{actor.id} works for supplier {actor.supplier_id}, but this PO is "
                    f"with {getattr(doc, 'supplier_id', None)}"
                )
            return reasons
        if row.approver:
            state = doc.approval
            decision = getattr(event, "decision", None)
            if state is not None and decision is not None:
                not_permitted, _, _ = approval.decision_problems(
                    state, decision, actor, self.directory
                )
                reasons.extend(not_permitted)
                buyer = getattr(doc, "buyer", None)
                if decision.decision is Decision.APPROVE and actor.id == buyer:
                    reasons.append(
                        f"{actor.id} is the buyer of this document and may not approve it"
                    )
            return reasons
        roles = self._roles(row)
        if roles and not (actor.roles & roles):
            reasons.append(
                f"{actor.id} holds none of the roles allowed to {row.event.verb} "
                f"({', '.join(sorted(roles))})"
            )
        if row.owner is not None and doc is not None:
            owner = getattr(doc, row.owner)
            if owner != actor.id and not (actor.roles & row.owner_override):
                reasons.append(
                    f"only {owner} (the {row.owner}) or someone holding "
                    f"{', '.join(sorted(row.owner_override))} may {row.event.verb}"
                )
        return reasons

    def _actor(self, actor: Actor | ActorId, label: str, state: str, verb: str) -> Actor:
        """The acting person as the host's directory describes them.

        With a directory, an id is looked up, and an :class:`Actor` whose roles, department,
        manager or supplier differ from the directory's is refused: the directory is the truth.
        Without one, the host vouches for the ``Actor`` it passes.
        """
        directory = self.directory
        if isinstance(actor, str):
            known = directory.actor(ActorId(actor)) if directory is not None else None
            if known is None:
                where = (
                    "the directory" if directory is not None else "a lifecycle without a directory"
                )
                raise NotPermittedError(
                    label, state, verb, [f"{actor} is not known to {where}"], actor
                )
            return known
        if not isinstance(actor, Actor):
            raise NotPermittedError(
                label, state, verb, [f"expected an Actor or an actor id, got {actor!r}"], "?"
            )
        if directory is None:
            return actor
        known = directory.actor(actor.id)
        if known is None:
            raise NotPermittedError(
                label, state, verb, [f"{actor.id} is not in the directory"], actor.id
            )
        claims = []
        for name in ("roles", "department", "manager", "supplier_id"):
            said, truth = getattr(actor, name), getattr(known, name)
            if said != truth:
                claims.append(f"{name} {_claim(said)} (the directory says {_claim(truth)})")
        if claims:
            raise NotPermittedError(
                label,
                state,
                verb,
                [f"the Actor given for {actor.id} claims " + ", ".join(claims)],
                actor.id,
            )
        return known

    access: AccessPolicy = DepartmentAccess()

    def _apply(
        self,
        doc: D | None,
        event: Event,
        actor: Actor | ActorId,
        at: datetime,
        documents: PODocuments | None = None,
    ) -> Applied[D]:
        if not isinstance(event, Event):
            raise TransitionRefusedError(
                "document", "-", "apply an event", [f"expected an event, got {event!r}"]
            )
        row = self.row(event)
        creating = not row.sources
        if creating:
            if doc is not None:
                raise TransitionRefusedError(
                    _label(doc), str(doc.state), event.verb, ["the document already exists"]
                )
            target = getattr(event, "po", None) or getattr(event, "requisition", None)
            current: Any = target
        else:
            if doc is None:
                raise TransitionRefusedError(
                    "document", "-", event.verb, ["there is no document yet; create it first"]
                )
            current = doc
            for key, version in doc.applied_keys:
                if key == event.key:
                    return Applied(doc, None, duplicate=True, first_version=version)
        label = _label(current)
        state_name = str(current.state)
        actor = self._actor(actor, label, state_name, event.verb)
        sent = event.sent_facts()
        if sent:
            raise DecidedFieldError(label, state_name, event.verb, sent, actor.id)
        if not creating and current.state not in row.sources:
            raise TransitionRefusedError(
                label, state_name, event.verb, [_describe_state(current)], actor.id
            )
        event = _prepare(event, actor, at)
        context = _Context(current, event, actor, at, self, documents)
        not_permitted = self._permission(current, row, actor, event)
        if not not_permitted:
            not_permitted = self.access.problems(actor, current, event, self._roles(row))
        if not_permitted:
            raise NotPermittedError(label, state_name, event.verb, not_permitted, actor.id)
        reasons = [reason for guard in row.guards for reason in guard(context)]
        if reasons:
            raise TransitionRefusedError(label, state_name, event.verb, reasons, actor.id)
        if row.complete is not None:
            try:
                event = row.complete(context)
            except approval.RoutingError as err:
                raise TransitionRefusedError(
                    label, state_name, event.verb, [str(p) for p in err.problems], actor.id
                ) from err
            except TransitionRefusedError as err:
                if err.actor is None:
                    raise TransitionRefusedError(
                        err.document, err.state, err.event, err.reasons, actor.id
                    ) from err
                raise
        builder = self._builder(current)
        if creating:
            builder.version = 0
            builder.applied = []
        from_state = None if creating else current.state
        domain = self._step(builder, row, event, actor.id, at)
        new_doc = builder.freeze()
        record = TransitionRecord(
            aggregate=self.aggregate,
            aggregate_id=new_doc.id,
            version=new_doc.version,
            event=event,
            actor=actor.id,
            at=at,
            from_state=None if from_state is None else str(from_state),
            to_state=str(new_doc.state),
            label=_label(new_doc),
            domain_events=domain,
        )
        return Applied(new_doc, record)

    def _step(
        self,
        b: Any,
        row: TransitionRule,
        event: Event,
        actor: ActorId,
        at: datetime,
        recorded_to: str | None = None,
    ) -> tuple[str, ...]:
        domain = row.effect(b, event, actor, at)
        version = b.version = b.version + 1
        b.applied.append((event.key, version))
        if row.settles:
            # Live, the machine decides whether the document is done; replaying, the record says
            # so — replay never depends on the configuration.
            closed = self.closed_state
            done = (
                self._done(b)
                if recorded_to is None
                else recorded_to == closed and b.state != closed
            )
            if done:
                domain = domain + self._close(b, actor, at)
        return domain

    closed_state: Any = None

    def _done(self, b: Any) -> bool:
        return False

    def _close(self, b: Any, actor: ActorId, at: datetime) -> tuple[str, ...]:
        return ()

    def replay_records(self, records: Iterable[TransitionRecord]) -> D:
        """Rebuild a document from its transition records (see :func:`replay`)."""
        builder: Any = None
        expected = 1
        plan = self._plan
        closed = self.closed_state
        applied: list[tuple[str, int]] = []
        # The loop does what _step does, inlined: replay is the hot path (every rebuild of a
        # document from its records goes through it).
        for record in records:
            event = record.event
            step = plan.get(type(event))
            if step is None:
                raise ReplayError(f"{type(event).__name__} is not a {self.aggregate} event")
            effect, settles, creates = step
            if builder is None:
                if not creates:
                    raise ReplayError("the first transition record must create the document")
                doc = getattr(event, "po", None) or getattr(event, "requisition", None)
                builder = self._builder(doc)  # type: ignore[arg-type]
                builder.applied = applied
            if record.version != expected:
                raise ReplayError(
                    f"transition records skip from version {expected - 1} to {record.version}"
                )
            effect(builder, event, record.actor, record.at)
            applied.append((event.key, expected))
            if settles and record.to_state == closed and builder.state != closed:
                self._close(builder, record.actor, record.at)
            expected += 1
        if builder is not None:
            builder.version = expected - 1
        if builder is None:
            raise ReplayError("no transition records to replay")
        result: D = builder.freeze()
        return result


def _label(doc: Any) -> str:
    return str(getattr(doc, "number", None) or doc.id)


def _claim(value: Any) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}" if value else "{}"
    return "none" if value is None else str(value)


def _prepare(event: Event, actor: Actor, at: datetime) -> Event:
    """Turn a decision or reassignment command into the record the library keeps: signed by the
    acting actor, at the library's time (on whose behalf a delegate acts is decided later)."""
    if isinstance(event, RecordDecision):
        if event.step_id is None or event.verdict is None:
            return event  # refused by the guard, with its reason
        decision = ApprovalDecision(
            step_id=event.step_id,
            actor=actor.id,
            decision=event.verdict,
            at=at,
            reason=event.reason,
        )
        return attrs.evolve(event, decision=decision)
    if isinstance(event, ReassignStep):
        if event.step_id is None or event.to_actor is None or not event.reason:
            return event
        move = Reassignment(
            step_id=event.step_id,
            from_actor=event.from_actor,
            to_actor=event.to_actor,
            by=actor.id,
            at=at,
            reason=event.reason,
        )
        return attrs.evolve(event, reassignment=move)
    return event


class PurchaseOrderLifecycle(_Machine[PurchaseOrder]):
    """Applies business events to purchase orders.

    Args:
        router: routes POs through the approval policy at submission and on re-approval.
        directory: people and delegations (defaults to the router's).
        suppliers: supplier master data (blocked suppliers get no orders).
        numbering: the scheme issued numbers must fit (checked at issue).
        default_match_level: matching level of lines that set none (decides which lines wait for
            a receipt).
        over_receipt_allowance: percent of the ordered quantity that may be received beyond it.
        item_allowances: per-item allowances (percent), overriding the default.
        reapproval_percent: a revision raising the value by more than this percent goes back
            through approval (``None``: any increase; default: the policy's setting).
        keep_decisions_on_reroute: keep approvals of unchanged steps when re-routing (default: the
            policy's setting).
        role_overrides: roles allowed per event name, replacing the table's (``{"receive":
            frozenset({"warehouse"})}``).
        access: who may act on which document beyond the table's roles (default
            :class:`DepartmentAccess`: buyers on their own department's documents).
        tolerances: the tolerance policy recording a match runs the engine with (default:
            :class:`~potrack.matching.TolerancePolicy`'s default, exact matching).
        override_roles: roles whose holders may accept a matching finding with a reason
            (default: ``match_override``).
    """

    aggregate = "purchase_order"
    table = PO_TRANSITIONS
    terminal = PO_TERMINAL
    final = PO_FINAL
    reopen = PO_REOPEN

    def __init__(
        self,
        *,
        router: Router | None = None,
        directory: Directory | None = None,
        suppliers: Suppliers | Mapping[str, Any] | Iterable[Any] | None = None,
        numbering: NumberingScheme | None = None,
        default_match_level: MatchLevel = MatchLevel.THREE_WAY,
        over_receipt_allowance: Decimal = _ZERO,
        item_allowances: Mapping[ItemId, Decimal] | None = None,
        reapproval_percent: Decimal | str | None = "policy",
        keep_decisions_on_reroute: bool | None = None,
        role_overrides: Mapping[str, Iterable[str]] | None = None,
        access: AccessPolicy | None = None,
        tolerances: TolerancePolicy | None = None,
        override_roles: Iterable[str] = (Role.MATCH_OVERRIDE,),
    ) -> None:
        super().__init__()
        self.access = access if access is not None else DepartmentAccess()
        self.tolerances = tolerances if tolerances is not None else TolerancePolicy()
        self.override_roles = frozenset(override_roles)
        self.router = router
        self.directory = directory or (router.directory if router else None)
        self.suppliers = as_suppliers(
            suppliers if suppliers is not None else (router.suppliers if router else None)
        )
        self.numbering = numbering
        self.default_match_level = default_match_level
        self.over_receipt_allowance = Decimal(over_receipt_allowance)
        self.item_allowances = dict(item_allowances or {})
        if reapproval_percent == "policy":
            self.reapproval_percent = router.policy.reapproval_percent if router else _ZERO
        else:
            self.reapproval_percent = reapproval_percent  # type: ignore[assignment]
        self.keep_decisions = (
            keep_decisions_on_reroute
            if keep_decisions_on_reroute is not None
            else bool(router and router.policy.keep_decisions_on_reroute)
        )
        self.role_overrides = {k: frozenset(v) for k, v in (role_overrides or {}).items()}
        self._supplier_users: dict[str, frozenset[str]] = {}

    def _builder(self, doc: PurchaseOrder) -> _PO:
        return _PO(doc)

    closed_state = S.CLOSED

    def _done(self, b: _PO) -> bool:
        if b.state is not S.IN_FULFILMENT or not b.invoices:
            return False
        owed = paid = _ZERO
        for inv in b.invoices.values():
            if inv.status is not InvoiceStatus.MATCHED and (
                inv.status is not InvoiceStatus.MATCHED_WITHIN_TOLERANCE
            ):
                return False
            owed += -inv.amount if inv.kind is InvoiceKind.CREDIT_MEMO else inv.amount
            paid += inv.paid
        if paid < owed or paid <= 0:
            return False
        p = _progress_of(
            b.get("match_level"), b.lines, b.peek, b.invoices.values(), self.default_match_level
        )
        return p.complete

    def _close(self, b: _PO, actor: ActorId, at: datetime) -> tuple[str, ...]:
        b.state = S.CLOSED
        b.set(
            closure=Closure(
                kind=ClosureKind.COMPLETE,
                at=at,
                by=actor,
                reason="every line received, invoiced, matched and paid",
            )
        )
        return ("po_closed",)

    def create(
        self, po: PurchaseOrder, actor: Actor | ActorId, at: datetime, key: str | None = None
    ) -> Applied[PurchaseOrder]:
        """Create a draft PO (the first transition record).

        Raises:
            NotPermittedError: the actor may not create POs.
            TransitionRefusedError: the PO is not a fresh draft, or its supplier is blocked.
        """
        event = CreatePurchaseOrder(po=po) if key is None else CreatePurchaseOrder(po=po, key=key)
        return self._apply(None, event, actor, at)

    def apply(
        self,
        po: PurchaseOrder,
        event: Event,
        actor: Actor | ActorId,
        at: datetime,
        *,
        documents: PODocuments | None = None,
    ) -> Applied[PurchaseOrder]:
        """Apply one command: a pure function of its arguments (and this configuration).

        ``at`` is the time the transition is recorded at: :class:`~potrack.service.Purchasing`
        passes its clock's time; a host calling the lifecycle directly is that clock.  ``actor``
        is an id or an :class:`Actor`; with a directory, the directory's record of that person is
        what the rules see.

        Raises:
            TransitionRefusedError: the command is not allowed in the PO's state, or a guard
                refuses it; ``reasons`` lists every reason.  Nothing changed.
            NotPermittedError: the actor may not send this command (role, department, supplier
                scope, segregation of duties, unknown to the directory or described otherwise);
                :class:`~potrack.exceptions.DecidedFieldError` when it carries a value the
                library decides.

        ``documents`` are the PO's stored receipts, returns and invoices: recording a match
        (:class:`~potrack.events.RecordMatch`) runs the matching engine on them, and is refused
        without them.
        """
        return self._apply(po, event, actor, at, documents)


class RequisitionLifecycle(_Machine[Requisition]):
    """Applies events to requisitions (see :data:`REQUISITION_TRANSITIONS`).

    Args:
        router: routes requisitions through the approval policy at submission.
        directory: people and delegations (defaults to the router's).
        role_overrides: roles allowed per event name, replacing the table's.
        access: who may act on which requisition (default :class:`DepartmentAccess`).
    """

    aggregate = "requisition"
    table = REQUISITION_TRANSITIONS
    terminal = REQ_TERMINAL
    final: frozenset[Any] = frozenset()
    reopen: frozenset[type[Event]] = frozenset()

    def __init__(
        self,
        *,
        router: Router | None = None,
        directory: Directory | None = None,
        role_overrides: Mapping[str, Iterable[str]] | None = None,
        access: AccessPolicy | None = None,
    ) -> None:
        super().__init__()
        self.access = access if access is not None else DepartmentAccess()
        self.router = router
        self.directory = directory or (router.directory if router else None)
        self.role_overrides = {k: frozenset(v) for k, v in (role_overrides or {}).items()}

    def _builder(self, doc: Requisition) -> _Req:
        return _Req(doc)

    def create(
        self, requisition: Requisition, actor: Actor | ActorId, at: datetime
    ) -> Applied[Requisition]:
        """Create a draft requisition.

        Raises:
            NotPermittedError, TransitionRefusedError: as :meth:`apply`.
        """
        return self._apply(None, CreateRequisition(requisition=requisition), actor, at)

    def apply(
        self, requisition: Requisition, event: Event, actor: Actor | ActorId, at: datetime
    ) -> Applied[Requisition]:
        """Apply one event to a requisition (pure; raises as :meth:`PurchaseOrderLifecycle.apply`)."""
        return self._apply(requisition, event, actor, at)


_REPLAYERS: dict[str, _Machine[Any]] = {}


def replay(
    records: Iterable[TransitionRecord], default_match_level: MatchLevel = MatchLevel.THREE_WAY
) -> PurchaseOrder:
    """Rebuild a PO from its transition records, in version order.

    Replaying a PO's records gives exactly the PO the live events produced: effects are shared,
    and everything the lifecycle decided when an event was applied (route, number, overrides) is
    in the recorded event.

    Raises:
        ReplayError: the records do not start with the creation or skip a version.
    """
    machine = _REPLAYERS.get(f"po:{default_match_level}")
    if machine is None:
        machine = _REPLAYERS[f"po:{default_match_level}"] = PurchaseOrderLifecycle(
            default_match_level=default_match_level
        )
    result: PurchaseOrder = machine.replay_records(records)
    return result


def replay_requisition(records: Iterable[TransitionRecord]) -> Requisition:
    """Rebuild a requisition from its transition records (see :func:`replay`)."""
    machine = _REPLAYERS.get("req")
    if machine is None:
        machine = _REPLAYERS["req"] = RequisitionLifecycle()
    result: Requisition = machine.replay_records(records)
    return result


# -- definition-time checks and rendering -------------------------------------------------------------------


@attrs.frozen
class TableProblem:
    """A defect of a lifecycle table."""

    code: str
    message: str


def check_table(
    table: Sequence[TransitionRule],
    states: Iterable[Any],
    terminal: Iterable[Any],
    final: Iterable[Any] = (),
    reopen: Iterable[type[Event]] = (),
) -> list[TableProblem]:
    """Definition-time checks of a lifecycle table (empty list: sound).

    * exactly one initial state (the target of the creating event);
    * no exits from terminal states; final states exit only through their reopen events;
    * every state reachable from the initial one;
    * no traps: from every state some terminal or final state is reachable.
    """
    states = list(states)
    terminal = frozenset(terminal)
    final = frozenset(final)
    reopen = frozenset(reopen)
    problems = []
    creators = [r for r in table if not r.sources]
    initial = {t for r in creators for t in r.results}
    if len(creators) != 1 or len(initial) != 1:
        problems.append(
            TableProblem(
                "initial", f"expected one initial state, found {sorted(map(str, initial))}"
            )
        )
    edges: dict[Any, set[Any]] = {s: set() for s in states}
    for row in table:
        for src, tgt in row.moves:
            if tgt != src:
                edges[src].add(tgt)
            if src in terminal:
                problems.append(
                    TableProblem(
                        "terminal_exit", f"{row.event.__name__} is accepted in terminal state {src}"
                    )
                )
            if src in final and row.event not in reopen:
                problems.append(
                    TableProblem(
                        "final_exit",
                        f"{row.event.__name__} is accepted in final "
                        f"state {src}; only reopen events are",
                    )
                )
    seen = set(initial)
    todo = list(initial)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for state in states:
        if state not in seen:
            problems.append(TableProblem("unreachable", f"state {state} cannot be reached"))
    ends = terminal | final
    for state in states:
        if state in ends:
            continue
        reach = set()
        todo = [state]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
        if not reach & ends:
            problems.append(
                TableProblem("trap", f"no terminal or final state can be reached from {state}")
            )
    return problems


def _roles_text(row: TransitionRule) -> str:
    if row.approver:
        return "an approver of the open step"
    roles = ", ".join(sorted(str(r) for r in row.roles)) or "anyone"
    return roles + (" (supplier users: own orders)" if row.supplier_may else "")


def transition_table_markdown(table: Sequence[TransitionRule], order: Sequence[Any]) -> str:
    """The table as Markdown: event, from, to, who, guards, what it does."""
    rank = {s: i for i, s in enumerate(order)}

    def states(values: Iterable[Any]) -> str:
        items = sorted(values, key=lambda s: rank.get(s, 99))
        return ", ".join(f"`{s}`" for s in items) or "—"

    lines = ["| event | from | to | who | checks | what it does |", "|---|---|---|---|---|---|"]
    for row in table:
        guards = (
            ", ".join(g.__name__.removeprefix("_g_").replace("_", " ") for g in row.guards) or "—"
        )
        to = "(unchanged)" if row.stays else states(row.results)
        lines.append(
            f"| `{row.event.name}` ({row.event.__name__}) | {states(row.sources)} | "
            f"{to} | {_roles_text(row)} | {guards} | {row.summary} |"
        )
    return "\n".join(lines)


def transition_diagram_mermaid(
    table: Sequence[TransitionRule], initial: Any, ends: Iterable[Any]
) -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` (self-loops left out)."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    pairs: dict[tuple[str, str], list[str]] = {}
    for row in table:
        for src, tgt in row.moves:
            if src != tgt:
                pairs.setdefault((str(src), str(tgt)), []).append(row.event.name)
    for (src, tgt), names in sorted(pairs.items()):
        lines.append(f"    {src} --> {tgt}: {', '.join(sorted(set(names)))}")
    for end in sorted(map(str, ends)):
        lines.append(f"    {end} --> [*]")
    return "\n".join(lines)


# -- requisitions into orders ---------------------------------------------------------------------------------


def convert_requisitions(
    requisitions: Iterable[Requisition],
    *,
    buyer: ActorId,
    at: datetime,
    new_id: Callable[[int], str],
    supplier_for: Mapping[tuple[str, int], str] | None = None,
    merge: bool = True,
) -> tuple[list[PurchaseOrder], dict[str, ConvertToOrders]]:
    """Turn approved requisitions into draft POs: one PO per (supplier, currency), lines split
    across suppliers, and identical lines (same item, unit, price, price unit) merged when
    ``merge`` is set.

    ``supplier_for`` assigns a supplier to (requisition id, line no) pairs, overriding the line's
    suggested supplier.  ``new_id(i)`` names the i-th PO.  Returns the drafts and, per requisition,
    the :class:`~potrack.events.ConvertToOrders` event to apply to it.

    Raises:
        ApprovalError: a requisition is not approved, or a line has no supplier.
    """
    groups: dict[tuple[str, str], list[tuple[Requisition, Any]]] = {}
    problems = []
    reqs = list(requisitions)
    for req in reqs:
        if req.state is not R.APPROVED:
            problems.append(f"requisition {req.id} is {req.state.value}, not approved")
        done = {cv.line_no for cv in req.conversions}
        for line in req.lines:
            if line.line_no in done:
                continue
            supplier = (supplier_for or {}).get((req.id, line.line_no)) or line.suggested_supplier
            if supplier is None:
                problems.append(f"requisition {req.id} line {line.line_no} has no supplier")
                continue
            groups.setdefault((supplier, req.currency), []).append((req, line))
    if problems:
        raise ApprovalError("; ".join(problems))
    orders = []
    conversions: dict[str, list[Conversion]] = {r.id: [] for r in reqs}
    for index, ((supplier, currency), items) in enumerate(sorted(groups.items())):
        po_id = new_id(index)
        lines: list[PurchaseOrderLine] = []
        keys: dict[tuple[Any, ...], int] = {}
        for req, line in items:
            key = (
                line.item,
                line.uom,
                line.estimated_unit_price,
                line.price_unit,
                line.line_type,
                line.category,
            )
            if merge and line.item is not None and key in keys:
                pos = keys[key]
                lines[pos] = attrs.evolve(lines[pos], quantity=lines[pos].quantity + line.quantity)
                po_line = lines[pos].line_no
            else:
                po_line = len(lines) + 1
                lines.append(
                    PurchaseOrderLine(
                        line_no=po_line,
                        description=line.description,
                        category=line.category,
                        quantity=line.quantity,
                        uom=line.uom,
                        unit_price=line.estimated_unit_price,
                        price_unit=line.price_unit,
                        item=line.item,
                        requested_date=line.needed_by or req.needed_by,
                        cost_centre=line.cost_centre or req.cost_centre,
                        department=req.department,
                        budget=line.budget or req.budget,
                        line_type=line.line_type,
                        requisition=req.id,
                        requisition_line=line.line_no,
                    )
                )
                keys[key] = len(lines) - 1
            conversions[req.id].append(
                Conversion(line_no=line.line_no, po_id=PurchaseOrderId(po_id), po_line_no=po_line)
            )
        first = items[0][0]
        orders.append(
            PurchaseOrder(
                id=PurchaseOrderId(po_id),
                supplier_id=SupplierId(supplier),
                buyer=buyer,
                currency=currency,
                lines=tuple(lines),
                created_at=at,
                requester=first.requester,
                department=first.department,
                cost_centre=first.cost_centre,
                budget=first.budget,
                company=first.company,
                site=first.site,
                requisitions=tuple(dict.fromkeys(r.id for r, _ in items)),
            )
        )
    events = {
        rid: ConvertToOrders(conversions=tuple(cvs)) for rid, cvs in conversions.items() if cvs
    }
    return orders, events
