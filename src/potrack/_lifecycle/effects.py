"""Effects of the PO lifecycle: how each recorded fact changes the document (live and on replay)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
from moneyed import Money

from potrack import approval
from potrack._fast import build
from potrack._lifecycle.decide import _revised_lines
from potrack._lifecycle.progress import _PO, _ZERO, _Invoice, _Req
from potrack._lifecycle.table import S
from potrack.approval import ApprovalOutcome
from potrack.events import (
    AcceptChange,
    Acknowledge,
    AddComment,
    Cancel,
    CreatePurchaseOrder,
    DeclineChange,
    EditDraft,
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
)
from potrack.exceptions import (
    ReplayError,
)
from potrack.records import (
    Acknowledgement,
    ActorId,
    ApprovalState,
    ChangeProposal,
    Closure,
    ClosureKind,
    Comment,
    FieldChange,
    FlaggedIssue,
    Hold,
    InvoiceKind,
    InvoiceProgress,
    InvoiceStatus,
    LineChange,
    PurchaseOrderLine,
    RequisitionState,
    Revision,
)

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


def _order_value(lines: Iterable[PurchaseOrderLine], currency: str) -> Money:
    """The net value of ``lines``, exact (what :attr:`PurchaseOrder.amount` gives a frozen PO)."""
    return Money(sum((ln.amount.amount for ln in lines), _ZERO), currency)


def _approve(b: _PO | _Req) -> None:
    """The route is complete: approved, and for a PO its value becomes the approved baseline."""
    if isinstance(b, _PO):
        b.state = S.APPROVED
        currency = b.get("currency")
        b.set(approved_value=_order_value(b.lines, currency))
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
    value_before = _order_value(before_lines, currency)
    value_after = _order_value(after_lines, currency)
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
