"""Guards of the PO lifecycle: side-effect-free checks returning every reason to refuse."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from moneyed import Money

from potrack import approval
from potrack._lifecycle.progress import _HUNDRED, _ZERO, progress
from potrack._lifecycle.table import S, _Context, _line_nos, _unknown_lines
from potrack.approval import ApprovalOutcome
from potrack.events import (
    EditDraft,
    ReassignStep,
    RecordDecision,
    RecordInspection,
    RecordMatch,
    ReviseOrder,
)
from potrack.exceptions import (
    PotrackError,
)
from potrack.records import (
    Acknowledgement,
    ApprovalState,
    ApproverKind,
    ChangeProposal,
    Decision,
    DispatchNotice,
    InvoiceKind,
    InvoiceStatus,
    LineChange,
    LineProgress,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
)

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


def _allowance(m: Any, line: PurchaseOrderLine) -> Decimal:
    """The over-receipt allowance of ``line`` on lifecycle ``m`` (percent): the line's, its
    item's, or the lifecycle's default."""
    allowances: Mapping[str, Decimal] = m.item_allowances
    if line.over_receipt_allowance is not None:
        return line.over_receipt_allowance
    if line.item is not None and line.item in allowances:
        return allowances[line.item]
    default: Decimal = m.over_receipt_allowance
    return default


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
    total = _ZERO
    for alloc in mine:
        inv = po.invoice(alloc.invoice_id)
        assert inv is not None
        if inv.kind is InvoiceKind.CREDIT_MEMO:
            yield f"{alloc.invoice_id} is a credit memo; payments settle invoices"
            continue
        paying = _payable_in_po_currency(c, alloc.invoice_id, alloc.amount)
        total += paying
        room = inv.payable - inv.paid
        if inv.status is InvoiceStatus.HELD or inv.status is InvoiceStatus.PENDING:
            state = "held" if inv.status is InvoiceStatus.HELD else "not matched yet"
            yield f"invoice {alloc.invoice_id} is {state}: nothing on it is payable"
        elif paying > room:
            yield (
                f"paying {paying} {po.currency} on {alloc.invoice_id} exceeds what is payable "
                f"and unpaid ({room} {po.currency})"
            )
    payable, credited, paid = _ledger(po)
    owed = payable - credited - paid
    if total > owed:
        yield (
            f"paying {total} {po.currency} exceeds what {po.label} owes net of its credit memos "
            f"({owed} {po.currency}: payable {payable - paid} less credits {credited})"
        )


def _ledger(po: PurchaseOrder) -> tuple[Decimal, Decimal, Decimal]:
    """(payable on the PO's invoices, credit memos, paid), in the PO's currency.

    What the PO still owes is payable − credits − paid.  Worked example: an invoice of 1,000
    matched, 600 paid, then a memo of 300 — 1,000 − 300 − 600 = 100, not the 400 left on the
    invoice.
    """
    payable = credited = paid = _ZERO
    for inv in po.invoices:
        if inv.kind is InvoiceKind.CREDIT_MEMO:
            credited += inv.amount
        else:
            payable += inv.payable
            paid += inv.paid
    return payable, credited, paid


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
