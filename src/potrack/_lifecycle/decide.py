"""What the library decides when it applies a command (the route, re-approval, the match...):
the completers that turn a command into the facts it records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs
from moneyed import Money

from potrack import approval, matching
from potrack._lifecycle.guards import _over_receipts
from potrack._lifecycle.progress import _HUNDRED
from potrack._lifecycle.table import _Context
from potrack.events import (
    Event,
    Issue,
    ReceiveGoods,
    RecordDecision,
    RecordMatch,
    ReviseOrder,
    SubmitForApproval,
)
from potrack.exceptions import (
    NotPermittedError,
    TransitionRefusedError,
)
from potrack.records import (
    ApprovalState,
    ChangeProposal,
    Decision,
    LineChange,
    PurchaseOrder,
    PurchaseOrderLine,
    Role,
)

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
