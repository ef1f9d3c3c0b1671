"""Approval rules re-checked on a recorded trail (what :func:`potrack.audit.verify` reports).

Replay applies facts without rules, so a transition record appended around the lifecycle — a
decision the requester signed for their own order, a decision dated outside the record that holds
it, an approver the route never named — replays cleanly.  These checks read the facts the
lifecycle records and say where they could not have come from the lifecycle.  They need no
policy: the route each decision is checked against is the one recorded at submission (or at the
last re-approval).
"""

from __future__ import annotations

from collections.abc import Iterable

from potrack.approval import step_candidates
from potrack.events import (
    AcceptChange,
    CreatePurchaseOrder,
    CreateRequisition,
    ReassignStep,
    RecordDecision,
    ReviseOrder,
    SubmitForApproval,
    TransitionRecord,
)
from potrack.records import ApprovalState, Decision, Reassignment, Route

__all__ = ["approval_problems"]


def approval_problems(records: Iterable[TransitionRecord]) -> list[str]:
    """Every way the trail's approval facts break the rules the lifecycle enforces.

    >>> import attrs
    >>> from potrack.testing.scenario import Scenario
    >>> s = Scenario()
    >>> created = s.lifecycle.create(s.po_document(), s.buyer, s.at(0))
    >>> sent = s.lifecycle.apply(created.document, SubmitForApproval(), s.buyer, s.at(1))
    >>> yes = RecordDecision.approve("L1-manager-manager")
    >>> ok = s.lifecycle.apply(sent.document, yes, s.manager, s.at(2))
    >>> approval_problems([created.record, sent.record, ok.record])
    []

    A decision record appended around the lifecycle, the requester approving their own order:

    >>> own = attrs.evolve(ok.record.event.decision, actor="req-1")
    >>> forged = attrs.evolve(ok.record, actor="req-1", event=attrs.evolve(ok.record.event, decision=own))
    >>> for problem in approval_problems([created.record, sent.record, forged]):
    ...     print(problem)
    version 3: req-1 approved step L1-manager-manager of a document they requested or bought
    version 3: req-1 approved step L1-manager-manager, whose approvers were mgr-1
    """
    problems: list[str] = []
    route: Route | None = None
    moves: list[Reassignment] = []
    approvers: list[tuple[str, str]] = []
    requester: str | None = None
    buyer: str | None = None
    for record in records:
        event = record.event
        where = f"version {record.version}"
        if isinstance(event, CreatePurchaseOrder):
            requester = event.po.requester
            buyer = event.po.buyer
        elif isinstance(event, CreateRequisition):
            requester = event.requisition.requester
        elif isinstance(event, SubmitForApproval):
            route = event.route
            requester = requester or record.actor
            moves, approvers = [], []
        elif isinstance(event, AcceptChange | ReviseOrder) and event.reapproval:
            route = event.route
            moves = []
            if not event.keep_decisions:
                approvers = []
        elif isinstance(event, ReassignStep):
            move = event.reassignment
            if move is None:
                problems.append(f"{where}: a reassignment record carries no reassignment")
                continue
            if move.by != record.actor or move.at != record.at:
                problems.append(
                    f"{where}: the reassignment is signed by {move.by} at {move.at.isoformat()}, "
                    f"but {record.actor} recorded it at {record.at.isoformat()}"
                )
            if move.to_actor in (requester, buyer):
                problems.append(
                    f"{where}: step {move.step_id} was handed to {move.to_actor}, "
                    "who requested or bought the document"
                )
            moves.append(move)
        elif isinstance(event, RecordDecision):
            problems.extend(_decision_problems(record, route, moves, approvers, requester, buyer))
    return problems


def _decision_problems(
    record: TransitionRecord,
    route: Route | None,
    moves: list[Reassignment],
    approvers: list[tuple[str, str]],
    requester: str | None,
    buyer: str | None,
) -> list[str]:
    event = record.event
    assert isinstance(event, RecordDecision)
    where = f"version {record.version}"
    d = event.decision
    if d is None:
        return [f"{where}: a decision record carries no decision"]
    problems = []
    if d.actor != record.actor or d.at != record.at:
        problems.append(
            f"{where}: the decision is signed by {d.actor} at {d.at.isoformat()}, but "
            f"{record.actor} recorded it at {record.at.isoformat()}"
        )
    if d.decision is not Decision.APPROVE:
        return problems
    principal = d.on_behalf_of or d.actor
    people = {d.actor, principal}
    if requester in people or buyer in people:
        problems.append(
            f"{where}: {principal} approved step {d.step_id} of a document they requested or bought"
        )
    step = route.step(d.step_id) if route is not None else None
    if route is None or step is None:
        problems.append(f"{where}: step {d.step_id} is not on the recorded route")
        return problems
    state = ApprovalState(route=route, started_at=record.at, reassignments=tuple(moves))
    candidates = step_candidates(state, step)
    if principal not in candidates:
        problems.append(
            f"{where}: {principal} approved step {d.step_id}, whose approvers were "
            f"{', '.join(candidates) or 'nobody'}"
        )
    if not route.allow_same_approver and any(
        who == principal and step_id != d.step_id for step_id, who in approvers
    ):
        problems.append(f"{where}: {principal} approved two steps of one route")
    approvers.append((d.step_id, principal))
    return problems
