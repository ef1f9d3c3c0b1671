"""Business events hosts send to the lifecycle, and the transition records it keeps of them.

Each event is a frozen record carrying an idempotency ``key``: a host that retries the same event
(same key) has it recorded once.  The key defaults to a fresh random one, so a retry must resend
the same event object, or the same key.

**Commands in, facts out.**  A host sends an event as a *command*: it carries only what is the
caller's to say (quantities, reasons, the step decided and the verdict, the document received).
Every field listed in a class's :attr:`Event.decided` — the approval route, whether a change needs
re-approval, who a delegate acts for, when a decision was taken, the over-receipt overrides granted
— is **decided by the library** when the command is applied; a command that sends one is refused
with :class:`~potrack.exceptions.DecidedFieldError` naming the field, and nothing changes.  The
transition record stores the completed event (the *facts*), so replaying records never needs the
policy again.

>>> SubmitForApproval.decided
('route',)
>>> RecordDecision.approve("manager", reason="ok").verdict.value
'approve'
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

import attrs
from moneyed import Money

from potrack import _fields as f
from potrack.records import (
    Acknowledgement,
    ActorId,
    ApprovalDecision,
    ChangeProposal,
    ChangeProposalId,
    Conversion,
    Decision,
    DispatchNotice,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceStatus,
    LineChange,
    Payment,
    PaymentTerms,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderNumber,
    Reassignment,
    ReceiptId,
    Requisition,
    RequisitionLine,
    Route,
    SupplierId,
)

__all__ = [
    "EVENT_TYPES",
    "AcceptChange",
    "AcceptFinding",
    "Acknowledge",
    "AddComment",
    "Cancel",
    "ConvertToOrders",
    "CreatePurchaseOrder",
    "CreateRequisition",
    "DeclineChange",
    "EditDraft",
    "EditRequisition",
    "Event",
    "FlagIssue",
    "InspectionLine",
    "Issue",
    "PlaceOnHold",
    "ProposeChange",
    "ReassignStep",
    "ReceiveGoods",
    "RecordCreditMemo",
    "RecordDecision",
    "RecordDispatch",
    "RecordInspection",
    "RecordInvoice",
    "RecordMatch",
    "RecordPayment",
    "ReleaseHold",
    "Reopen",
    "ResolveIssue",
    "ReturnGoods",
    "ReviseOrder",
    "ShortClose",
    "SubmitForApproval",
    "SupplierReject",
    "TransitionRecord",
    "new_key",
]


def new_key() -> str:
    """A fresh idempotency key (random, 32 hex digits)."""
    return uuid.uuid4().hex


def _key() -> str:
    return new_key()


@attrs.frozen(kw_only=True)
class Event:
    """Base of every business event: its idempotency ``key``.

    ``name`` is the event's name in the transition table; ``verb`` how messages say it
    ("record a goods receipt").
    """

    name: ClassVar[str] = "event"
    verb: ClassVar[str] = "apply an event"
    decided: ClassVar[tuple[str, ...]] = ()
    """Fields the library fills when it applies the command; a caller never sends them."""
    key: str = f.text(default=attrs.Factory(_key))

    def sent_facts(self) -> tuple[str, ...]:
        """The :attr:`decided` fields this event carries (empty for an honest command)."""
        fields = attrs.fields_dict(type(self))
        return tuple(name for name in self.decided if getattr(self, name) != fields[name].default)


# -- creation and drafting ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreatePurchaseOrder(Event):
    """Create a PO in draft from a :class:`~potrack.records.PurchaseOrder` document."""

    name: ClassVar[str] = "create"
    verb: ClassVar[str] = "create a purchase order"
    po: PurchaseOrder = f.record(PurchaseOrder)


@attrs.frozen(kw_only=True)
class EditDraft(Event):
    """Change a draft PO's terms (before it is submitted, or after it was returned)."""

    name: ClassVar[str] = "edit_draft"
    verb: ClassVar[str] = "edit the draft"
    lines: tuple[PurchaseOrderLine, ...] | None = f.tuple_of(PurchaseOrderLine, optional=True)
    supplier_id: SupplierId | None = f.text(optional=True)
    payment_terms: PaymentTerms | None = f.record(PaymentTerms, optional=True)
    ship_to: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class CreateRequisition(Event):
    """Create a requisition in draft."""

    name: ClassVar[str] = "create"
    verb: ClassVar[str] = "create a requisition"
    requisition: Requisition = f.record(Requisition)


@attrs.frozen(kw_only=True)
class EditRequisition(Event):
    """Change a draft or returned requisition's lines or justification."""

    name: ClassVar[str] = "edit_requisition"
    verb: ClassVar[str] = "edit the requisition"
    lines: tuple[RequisitionLine, ...] | None = f.tuple_of(RequisitionLine, optional=True)
    justification: str | None = f.text(optional=True)


# -- approval -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubmitForApproval(Event):
    """Submit a draft for approval.  The lifecycle computes ``route`` from its policy."""

    name: ClassVar[str] = "submit"
    verb: ClassVar[str] = "submit for approval"
    decided: ClassVar[tuple[str, ...]] = ("route",)
    route: Route | None = f.record(Route, optional=True)
    """Decided: the route the policy gives the document at submission."""


@attrs.frozen(kw_only=True)
class RecordDecision(Event):
    """An approver's decision (approve, reject, return, comment) on one step of the route.

    The command names the step, the verdict and a reason; the library records the decision
    (:attr:`decision`) with the acting approver, the time it applies the command and, when a
    delegate decides, whom they act for — from the directory's delegations in force at that time.
    """

    name: ClassVar[str] = "decide"
    verb: ClassVar[str] = "record an approval decision"
    decided: ClassVar[tuple[str, ...]] = ("decision",)
    step_id: str | None = f.text(optional=True)
    verdict: Decision | None = f.enum_field(Decision, optional=True)
    reason: str | None = f.text(optional=True)
    decision: ApprovalDecision | None = f.record(ApprovalDecision, optional=True)
    """Decided: the decision as recorded (who, when, on whose behalf)."""

    @classmethod
    def approve(cls, step_id: str, reason: str | None = None) -> RecordDecision:
        """Approve ``step_id``."""
        return cls(step_id=step_id, verdict=Decision.APPROVE, reason=reason)

    @classmethod
    def reject(cls, step_id: str, reason: str) -> RecordDecision:
        """Reject the document at ``step_id`` (ends the route)."""
        return cls(step_id=step_id, verdict=Decision.REJECT, reason=reason)

    @classmethod
    def send_back(cls, step_id: str, reason: str) -> RecordDecision:
        """Return the document to its author for changes (ends the route)."""
        return cls(step_id=step_id, verdict=Decision.RETURN, reason=reason)

    @classmethod
    def comment(cls, step_id: str, reason: str) -> RecordDecision:
        """A comment on ``step_id`` that decides nothing."""
        return cls(step_id=step_id, verdict=Decision.COMMENT, reason=reason)


@attrs.frozen(kw_only=True)
class ReassignStep(Event):
    """Hand an approval step to another approver."""

    name: ClassVar[str] = "reassign"
    verb: ClassVar[str] = "reassign an approval step"
    decided: ClassVar[tuple[str, ...]] = ("reassignment",)
    step_id: str | None = f.text(optional=True)
    to_actor: ActorId | None = f.text(optional=True)
    """Who takes the step over: eligible for the step, never the requester or an earlier approver."""
    from_actor: ActorId | None = f.text(optional=True)
    """The candidate replaced (None: the step's candidates are replaced by ``to_actor``)."""
    reason: str | None = f.text(optional=True)
    reassignment: Reassignment | None = f.record(Reassignment, optional=True)
    """Decided: the reassignment as recorded (by the acting actor, at the library's time)."""


# -- issuing and the supplier ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Issue(Event):
    """Issue the approved PO to its supplier; the PO number is assigned here."""

    name: ClassVar[str] = "issue"
    verb: ClassVar[str] = "issue the purchase order"
    number: PurchaseOrderNumber | None = f.text(optional=True)
    """Allocated through :mod:`potrack.numbering` (the lifecycle fills it when it holds an allocator)."""


@attrs.frozen(kw_only=True)
class Acknowledge(Event):
    """The supplier accepts the PO as issued (possibly promising delivery dates)."""

    name: ClassVar[str] = "acknowledge"
    verb: ClassVar[str] = "record the supplier's acknowledgement"
    acknowledgement: Acknowledgement = f.record(Acknowledgement)


@attrs.frozen(kw_only=True)
class SupplierReject(Event):
    """The supplier refuses the PO."""

    name: ClassVar[str] = "supplier_reject"
    verb: ClassVar[str] = "record the supplier's rejection"
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class ProposeChange(Event):
    """The supplier proposes changed quantities, prices or delivery dates."""

    name: ClassVar[str] = "propose_change"
    verb: ClassVar[str] = "record a change proposal"
    proposal: ChangeProposal = f.record(ChangeProposal)


@attrs.frozen(kw_only=True)
class AcceptChange(Event):
    """The buyer accepts the pending change proposal: a new revision.

    ``reapproval``, ``route``, ``keep_decisions`` and ``explanation`` are decided by the library:
    the revised value is compared with the last approved baseline (see
    :class:`ReviseOrder`).
    """

    name: ClassVar[str] = "accept_change"
    verb: ClassVar[str] = "accept the change proposal"
    decided: ClassVar[tuple[str, ...]] = ("reapproval", "route", "keep_decisions", "explanation")
    proposal_id: ChangeProposalId = f.text()
    reason: str = f.text(default="supplier proposal accepted")
    reapproval: bool | None = f.optional_flag()
    route: Route | None = f.record(Route, optional=True)
    keep_decisions: bool | None = f.optional_flag()
    """Whether approvals of unchanged steps carry over on re-approval."""
    explanation: str | None = f.text(optional=True)
    """Why re-approval is or is not needed, and which steps are kept or asked again, in words."""


@attrs.frozen(kw_only=True)
class DeclineChange(Event):
    """The buyer declines the pending change proposal; the PO stays as it was."""

    name: ClassVar[str] = "decline_change"
    verb: ClassVar[str] = "decline the change proposal"
    proposal_id: ChangeProposalId = f.text()
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class ReviseOrder(Event):
    """A buyer's change order on an issued PO: a new revision.

    The library decides whether it goes back through approval: when the value rises more than
    the policy's threshold above the **last approved baseline** (cumulatively, however many
    revisions since), or when the revised PO routes to a step the approved route did not contain
    (a tier crossing).  Worked example, threshold 10 %: approved at 1,000.00; revisions to 1,060.00
    and then 1,120.00 — the second is 12 % above the baseline and needs re-approval, although it
    is only 5.7 % above the revision before it.
    """

    name: ClassVar[str] = "revise"
    verb: ClassVar[str] = "revise the purchase order"
    decided: ClassVar[tuple[str, ...]] = ("reapproval", "route", "keep_decisions", "explanation")
    changes: tuple[LineChange, ...] = f.tuple_of(LineChange)
    add_lines: tuple[PurchaseOrderLine, ...] = f.tuple_of(PurchaseOrderLine)
    reason: str = f.text()
    reapproval: bool | None = f.optional_flag()
    route: Route | None = f.record(Route, optional=True)
    keep_decisions: bool | None = f.optional_flag()
    explanation: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class RecordDispatch(Event):
    """An advance shipping notice from the supplier."""

    name: ClassVar[str] = "dispatch"
    verb: ClassVar[str] = "record a dispatch notice"
    notice: DispatchNotice = f.record(DispatchNotice)


# -- receiving ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReceiveGoods(Event):
    """A goods receipt.  ``overrides`` (filled by the lifecycle) lists lines received beyond the
    over-receipt allowance by an actor holding the bypass role."""

    name: ClassVar[str] = "receive"
    verb: ClassVar[str] = "record a goods receipt"
    decided: ClassVar[tuple[str, ...]] = ("overrides",)
    receipt: GoodsReceipt = f.record(GoodsReceipt)
    overrides: tuple[int, ...] = f.tuple_of(int)


@attrs.frozen(kw_only=True)
class InspectionLine:
    """Inspection result of one line of a receipt."""

    line_no: int = f.integer(minimum=1)
    accepted: Decimal = f.decimal(non_negative=True)
    rejected: Decimal = f.decimal(non_negative=True, default=Decimal(0))


@attrs.frozen(kw_only=True)
class RecordInspection(Event):
    """Quality inspection of received goods: accepted and rejected quantities."""

    name: ClassVar[str] = "inspect"
    verb: ClassVar[str] = "record an inspection"
    receipt_id: ReceiptId = f.text()
    lines: tuple[InspectionLine, ...] = f.tuple_of(InspectionLine, default_empty=False)


@attrs.frozen(kw_only=True)
class ReturnGoods(Event):
    """Goods sent back to the supplier."""

    name: ClassVar[str] = "return_goods"
    verb: ClassVar[str] = "record a return to the supplier"
    goods_return: GoodsReturn = f.record(GoodsReturn)


# -- invoices, matching, payment -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RecordInvoice(Event):
    """A supplier invoice against the PO (matching is :mod:`potrack.matching`'s job)."""

    name: ClassVar[str] = "invoice"
    verb: ClassVar[str] = "record an invoice"
    invoice: Invoice = f.record(Invoice)


@attrs.frozen(kw_only=True)
class RecordCreditMemo(Event):
    """A supplier credit memo against the PO."""

    name: ClassVar[str] = "credit_memo"
    verb: ClassVar[str] = "record a credit memo"
    memo: Invoice = f.record(Invoice)


@attrs.frozen(kw_only=True)
class AcceptFinding:
    """A matching finding the acting person accepts, with a reason (an override request).

    ``code`` is the finding's code (``price``, ``quantity_received``...), ``invoice_line_no`` the
    invoice line it is on (None for a header finding).  The library grants it only to someone the
    lifecycle lets override findings (by default the ``match_override`` role) and only for a
    finding the match actually has.
    """

    code: str = f.text()
    reason: str = f.text()
    invoice_line_no: int | None = f.optional_int()


@attrs.frozen(kw_only=True)
class RecordMatch(Event):
    """Match one recorded invoice (or credit memo) and record the outcome.

    The command names the invoice and, optionally, findings the sender accepts (``accept``).  The
    library runs potrack's matching engine on the stored PO, its receipts, returns, invoices and
    memos with the lifecycle's tolerance policy, and records the result as facts: ``status``,
    ``payable`` (in the invoice's currency), ``findings`` and ``overrides``.
    """

    name: ClassVar[str] = "match"
    verb: ClassVar[str] = "record a match result"
    decided: ClassVar[tuple[str, ...]] = ("status", "payable", "findings", "overrides")
    invoice_id: InvoiceId = f.text()
    accept: tuple[AcceptFinding, ...] = f.tuple_of(AcceptFinding)
    status: InvoiceStatus | None = f.enum_field(InvoiceStatus, optional=True)
    """Decided: the match status the engine found."""
    payable: Money | None = f.money(optional=True)
    """Decided: what may be paid on the invoice now."""
    findings: tuple[str, ...] = f.tuple_of_str()
    """Decided: the result's findings as sentences (for the audit trail)."""
    overrides: tuple[str, ...] = f.tuple_of_str()
    """Decided: overrides granted on this match, as sentences."""


@attrs.frozen(kw_only=True)
class RecordPayment(Event):
    """A payment settling invoices of this PO."""

    name: ClassVar[str] = "pay"
    verb: ClassVar[str] = "record a payment"
    payment: Payment = f.record(Payment)


# -- holds, closing, comments ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlaceOnHold(Event):
    """Stop everything on the PO until released (receipts and invoices are refused)."""

    name: ClassVar[str] = "hold"
    verb: ClassVar[str] = "place the purchase order on hold"
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class ReleaseHold(Event):
    """Release the hold: the PO resumes where it was."""

    name: ClassVar[str] = "release"
    verb: ClassVar[str] = "release the hold"
    note: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class ShortClose(Event):
    """Close the PO while something is still open (the rest will not come)."""

    name: ClassVar[str] = "short_close"
    verb: ClassVar[str] = "short-close the purchase order"
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class Cancel(Event):
    """Cancel the document."""

    name: ClassVar[str] = "cancel"
    verb: ClassVar[str] = "cancel"
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class Reopen(Event):
    """Reopen a closed PO (a late credit memo, a correction)."""

    name: ClassVar[str] = "reopen"
    verb: ClassVar[str] = "reopen the purchase order"
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class AddComment(Event):
    """A comment from the buyer's or the supplier's side."""

    name: ClassVar[str] = "comment"
    verb: ClassVar[str] = "add a comment"
    decided: ClassVar[tuple[str, ...]] = ("from_supplier",)
    text: str = f.text()
    from_supplier: bool | None = f.optional_flag()
    """Filled by the lifecycle from the actor."""


@attrs.frozen(kw_only=True)
class FlagIssue(Event):
    """Raise a problem on the PO."""

    name: ClassVar[str] = "flag_issue"
    verb: ClassVar[str] = "flag an issue"
    decided: ClassVar[tuple[str, ...]] = ("from_supplier",)
    issue_id: str = f.text()
    text: str = f.text()
    from_supplier: bool | None = f.optional_flag()


@attrs.frozen(kw_only=True)
class ResolveIssue(Event):
    """Resolve a flagged problem."""

    name: ClassVar[str] = "resolve_issue"
    verb: ClassVar[str] = "resolve an issue"
    issue_id: str = f.text()
    resolution: str = f.text()


@attrs.frozen(kw_only=True)
class ConvertToOrders(Event):
    """Record that an approved requisition's lines became PO lines."""

    name: ClassVar[str] = "convert"
    verb: ClassVar[str] = "convert to purchase orders"
    conversions: tuple[Conversion, ...] = f.tuple_of(Conversion, default_empty=False)


EVENT_TYPES: tuple[type[Event], ...] = (
    CreatePurchaseOrder,
    EditDraft,
    CreateRequisition,
    EditRequisition,
    SubmitForApproval,
    RecordDecision,
    ReassignStep,
    Issue,
    Acknowledge,
    SupplierReject,
    ProposeChange,
    AcceptChange,
    DeclineChange,
    ReviseOrder,
    RecordDispatch,
    ReceiveGoods,
    RecordInspection,
    ReturnGoods,
    RecordInvoice,
    RecordCreditMemo,
    RecordMatch,
    RecordPayment,
    PlaceOnHold,
    ReleaseHold,
    ShortClose,
    Cancel,
    Reopen,
    AddComment,
    FlagIssue,
    ResolveIssue,
    ConvertToOrders,
)
"""Every event class, in a fixed order (serialization tags events by class name)."""


@attrs.frozen(kw_only=True)
class TransitionRecord:
    """One applied event: who did what, when, and the version it produced.

    The stream of a document's records is its audit trail and, replayed, rebuilds it exactly.
    ``domain_events`` name what a host may publish to inventory or accounting
    (``goods_received``, ``invoice_matched``, ``po_closed``...).
    """

    aggregate: str = f.text()
    """``purchase_order`` or ``requisition``."""
    aggregate_id: str = f.text()
    version: int = f.integer(minimum=1)
    """The version the aggregate has after this event."""
    event: Event = f.record(Event)
    actor: ActorId = f.text()
    at: datetime = f.timestamp()
    from_state: str | None = f.text(optional=True)
    to_state: str = f.text()
    label: str = f.text()
    """The document's number (or id) when the event happened, for messages and exports."""
    domain_events: tuple[str, ...] = f.tuple_of_str()

    @property
    def key(self) -> str:
        """The event's idempotency key."""
        return self.event.key

    @property
    def event_name(self) -> str:
        """The event's name in the transition table."""
        return type(self.event).name

    @property
    def day(self) -> date:
        """The calendar day of the event in its own offset."""
        return self.at.date()
