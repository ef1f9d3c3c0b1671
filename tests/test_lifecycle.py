"""The PO and requisition lifecycles: every transition of the table, every refusal, replay."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

from potrack import approval as ap
from potrack.events import (
    AcceptChange,
    AcceptFinding,
    Acknowledge,
    AddComment,
    Cancel,
    ConvertToOrders,
    CreatePurchaseOrder,
    DeclineChange,
    EditDraft,
    EditRequisition,
    Event,
    FlagIssue,
    InspectionLine,
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
    DecidedFieldError,
    NotPermittedError,
    ReplayError,
    TransitionRefusedError,
)
from potrack.lifecycle import (
    PO_FINAL,
    PO_REOPEN,
    PO_TERMINAL,
    PO_TRANSITIONS,
    REQ_TERMINAL,
    REQUISITION_TRANSITIONS,
    BillingStatus,
    MatchStatus,
    PaymentStatus,
    ReceiptStatus,
    TransitionRule,
    check_table,
    convert_requisitions,
    dashboard_status,
    is_overdue,
    progress,
    replay,
)
from potrack.memory import InMemoryDirectory
from potrack.money import money
from potrack.records import (
    Acknowledgement,
    ActorId,
    ChangeProposal,
    Decision,
    Delegation,
    DispatchLine,
    DispatchNotice,
    GoodsReturn,
    InvoiceKind,
    InvoiceStatus,
    LineChange,
    LineType,
    MatchLevel,
    POState,
    PurchaseOrder,
    PurchaseOrderLine,
    Reassignment,
    ReceiptLine,
    RequisitionState,
    ReturnLine,
    Role,
)
from potrack.testing.samples import sample_requisition
from potrack.testing.scenario import Scenario

S = POState


@pytest.fixture
def s() -> Scenario:
    return Scenario()


def decide(
    s: Scenario,
    po: PurchaseOrder,
    who: str,
    what: Decision = Decision.APPROVE,
    step: str | None = None,
    days: float = 0.2,
    reason: str | None = None,
) -> PurchaseOrder:
    step_id = step or ap.active_steps(po.approval)[0].step_id
    decision = RecordDecision(step_id=step_id, verdict=what, reason=reason)
    return s.apply(po, decision, s.actor(who), days)


def history(
    s: Scenario, po: PurchaseOrder, *steps: tuple[Event, Any, float]
) -> tuple[PurchaseOrder, list[Any]]:
    records = []
    for event, actor, days in steps:
        applied = s.applied(po, event, actor, days)
        po = applied.document
        records.append(applied.record)
    return po, records


# -- the table is sound -------------------------------------------------------------------------------


def test_po_table_passes_definition_time_checks() -> None:
    assert check_table(PO_TRANSITIONS, POState, PO_TERMINAL, PO_FINAL, PO_REOPEN) == []


def test_requisition_table_passes_definition_time_checks() -> None:
    assert check_table(REQUISITION_TRANSITIONS, RequisitionState, REQ_TERMINAL) == []


def test_definition_checks_catch_a_broken_table() -> None:
    def effect(*args: Any) -> tuple[str, ...]:
        return ()

    broken = (
        TransitionRule(
            event=CreatePurchaseOrder,
            sources=frozenset(),
            targets=frozenset({S.DRAFT}),
            effect=effect,
        ),
        TransitionRule(
            event=SubmitForApproval,
            sources=frozenset({S.DRAFT}),
            targets=frozenset({S.PENDING_APPROVAL}),
            effect=effect,
        ),
        TransitionRule(
            event=Reopen,
            sources=frozenset({S.CANCELLED}),
            targets=frozenset({S.DRAFT}),
            effect=effect,
        ),
        TransitionRule(
            event=AddComment,
            sources=frozenset({S.CLOSED}),
            targets=frozenset({S.CLOSED}),
            effect=effect,
        ),
    )
    codes = sorted({p.code for p in check_table(broken, POState, PO_TERMINAL, PO_FINAL, PO_REOPEN)})
    assert codes == ["final_exit", "terminal_exit", "trap", "unreachable"]
    messages = [p.message for p in check_table(broken, POState, PO_TERMINAL, PO_FINAL, PO_REOPEN)]
    assert "no terminal or final state can be reached from draft" in messages
    assert "state issued cannot be reached" in messages


def test_every_event_has_a_row_and_each_row_an_effect() -> None:
    names = [row.event.name for row in PO_TRANSITIONS]
    assert len(names) == len(set(names))
    assert all(callable(row.effect) and row.summary for row in PO_TRANSITIONS)


# -- creation, drafting, approval ---------------------------------------------------------------------------


def test_create_records_the_first_version(s: Scenario) -> None:
    applied = s.lifecycle.create(s.po_document(), s.buyer, s.at(0))
    po, record = applied.document, applied.record
    assert (po.state, po.version, po.number) == (S.DRAFT, 1, None)
    assert record is not None
    assert (record.from_state, record.to_state, record.version, record.domain_events) == (
        None,
        "draft",
        1,
        ("po_created",),
    )
    assert replay([record]) == po


def test_create_refuses_a_blocked_supplier(s: Scenario) -> None:
    with pytest.raises(TransitionRefusedError, match=r"supplier S-BAD is blocked \(failed audit\)"):
        s.draft_po(supplier="S-BAD")


def test_create_refuses_a_po_that_is_not_fresh(s: Scenario) -> None:
    with pytest.raises(TransitionRefusedError, match="starts as a draft at version 1"):
        s.lifecycle.create(s.po_document(state=S.ISSUED), s.buyer, s.at(0))


def test_edit_draft_replaces_lines_and_refuses_bad_ones(s: Scenario) -> None:
    po = s.draft_po()
    line = attrs.evolve(po.lines[0], quantity=Decimal(7))
    edited = s.apply(po, EditDraft(lines=(line,), ship_to="Dock 4"), s.buyer)
    assert (edited.lines[0].quantity, edited.ship_to, edited.version) == (Decimal(7), "Dock 4", 2)
    euro = attrs.evolve(line, unit_price=money("1", "EUR"))
    with pytest.raises(TransitionRefusedError, match="differs from the document's USD"):
        s.apply(po, EditDraft(lines=(euro,)), s.buyer)
    with pytest.raises(TransitionRefusedError, match="supplier S-BAD is blocked"):
        s.apply(po, EditDraft(supplier_id="S-BAD"), s.buyer)


def test_submit_routes_through_the_policy(s: Scenario) -> None:
    small = s.submitted_po(amount="10.00")  # 1,000 USD: the manager only
    assert small.state is S.PENDING_APPROVAL
    assert [step.step_id for step in small.approval.route.steps] == ["L1-manager-manager"]
    big = s.submitted_po(amount="60.00")  # 6,000 USD: manager, then the CFO
    steps = big.approval.route.steps
    assert [(st.level, st.candidates) for st in steps] == [(1, ("mgr-1",)), (2, ("cfo-1",))]
    assert steps[1].because == ("rule cfo: amount 6,000.00 USD ≥ 5,000.00 USD",)


def test_submit_with_an_empty_route_is_approved_at_once() -> None:
    s = Scenario(
        policy=ap.Policy(name="none", base_currency="USD", when_no_rule_matches="auto_approve")
    )
    po = s.submitted_po()
    assert po.state is S.APPROVED


def test_submit_refused_when_no_rule_matches() -> None:
    s = Scenario(policy=ap.Policy(name="none", base_currency="USD"))
    with pytest.raises(TransitionRefusedError, match="no rule of policy 'none' matches"):
        s.submitted_po()


def test_approval_levels_run_in_order(s: Scenario) -> None:
    po = s.submitted_po(amount="60.00")
    with pytest.raises(TransitionRefusedError, match="is not open yet"):
        decide(s, po, "cfo-1", step="L2-role-cfo")
    po = decide(s, po, "mgr-1")
    assert po.state is S.PENDING_APPROVAL
    po = decide(s, po, "cfo-1")
    assert po.state is S.APPROVED


def test_reject_and_return(s: Scenario) -> None:
    rejected = decide(s, s.submitted_po(), "mgr-1", Decision.REJECT, reason="too expensive")
    assert rejected.state is S.REJECTED
    returned = decide(s, s.submitted_po(), "mgr-1", Decision.RETURN, reason="add a quote")
    assert returned.state is S.DRAFT
    resubmitted = s.apply(returned, SubmitForApproval(), s.buyer, 1)
    assert resubmitted.state is S.PENDING_APPROVAL
    assert resubmitted.approval.decisions == ()


def test_comment_decision_keeps_the_route_open(s: Scenario) -> None:
    po = decide(s, s.submitted_po(), "mgr-1", Decision.COMMENT, reason="checking the quote")
    assert po.state is S.PENDING_APPROVAL
    assert [d.decision for d in po.approval.decisions] == [Decision.COMMENT]


def test_requester_never_approves_their_own_document(s: Scenario) -> None:
    # The requester is also a manager here: they are removed from the candidates at routing...
    boss = attrs.evolve(s.requester, roles=frozenset({Role.REQUESTER, "cfo"}))
    s2 = s.with_people([boss])
    po = s2.submitted_po(amount="60.00")
    assert "req-1" not in po.approval.route.steps[1].candidates
    # ...and refused if they try anyway.
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    with pytest.raises(NotPermittedError) as info:
        s2.apply(po, decision, boss, 1)
    assert "req-1 is not an approver of step L1-manager-manager" in str(info.value)


def test_one_person_does_not_fill_two_steps(s: Scenario) -> None:
    both = attrs.evolve(s.manager, roles=frozenset({Role.APPROVER, "cfo"}))
    s2 = s.with_people([both])
    po = s2.submitted_po(amount="60.00")
    po = decide(s2, po, "mgr-1")
    with pytest.raises(NotPermittedError, match="does not let one person fill two steps"):
        decide(s2, po, "mgr-1", step="L2-role-cfo")
    allowed = attrs.evolve(s2.policy, allow_same_approver=True)
    s3 = Scenario(policy=allowed).with_people([both])
    po3 = decide(s3, s3.submitted_po(amount="60.00"), "mgr-1")
    assert decide(s3, po3, "mgr-1", step="L2-role-cfo").state is S.APPROVED


def test_approver_must_hold_the_role_when_deciding(s: Scenario) -> None:
    po = decide(s, s.submitted_po(amount="60.00"), "mgr-1")
    demoted = attrs.evolve(s.cfo, roles=frozenset({Role.APPROVER}))
    decision = RecordDecision(step_id="L2-role-cfo", verdict=Decision.APPROVE)
    # the CFO lost the role in the directory after the route was made
    with pytest.raises(NotPermittedError, match="cfo-1 does not hold role 'cfo'"):
        s.with_people([demoted]).apply(po, decision, demoted, 1)


def test_a_decision_must_be_signed_by_its_sender(s: Scenario) -> None:
    po = s.submitted_po()
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    with pytest.raises((TransitionRefusedError, NotPermittedError)):
        s.apply(po, decision, s.manager2, 1)


def test_delegation_in_force_lets_a_delegate_decide(s: Scenario) -> None:
    away = Delegation(
        delegator=ActorId("mgr-1"),
        delegate=ActorId("mgr-2"),
        start=s.at(0),
        end=s.at(7),
        reason="holiday",
    )
    directory = InMemoryDirectory(s.people, [away])
    router = ap.Router(s.policy, directory, s.suppliers)
    lifecycle = s.lifecycle.__class__(router=router, numbering=s.scheme)
    po = lifecycle.apply(s.draft_po(), SubmitForApproval(), s.buyer, s.at(0.1)).document
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    done = lifecycle.apply(po, decision, s.manager2, s.at(1))
    assert done.document.state is S.APPROVED
    assert done.document.approval.decisions[0].on_behalf_of == "mgr-1"
    with pytest.raises(NotPermittedError, match="holds no delegation"):
        lifecycle.apply(po, decision, s.manager2, s.at(8))  # the delegation ended on day 7


def test_reassignment_is_recorded_and_moves_the_step(s: Scenario) -> None:
    po = s.submitted_po()
    command = ReassignStep(
        step_id="L1-manager-manager",
        from_actor=ActorId("mgr-1"),
        to_actor=ActorId("mgr-2"),
        reason="mgr-1 left",
    )
    po = s.apply(po, command, s.admin, 1)
    move = Reassignment(
        step_id="L1-manager-manager",
        from_actor=ActorId("mgr-1"),
        to_actor=ActorId("mgr-2"),
        by=ActorId("admin-1"),
        at=s.at(1),
        reason="mgr-1 left",
    )
    assert po.approval.reassignments == (move,)  # signed by the actor, at the applied time
    with pytest.raises(NotPermittedError, match="not an approver"):
        decide(s, po, "mgr-1", days=2)
    assert decide(s, po, "mgr-2", days=2).state is S.APPROVED
    to_requester = attrs.evolve(command, to_actor=ActorId("req-1"), from_actor=None)
    with pytest.raises(TransitionRefusedError, match="requested the document"):
        s.apply(s.submitted_po(), to_requester, s.admin, 1)


# -- issuing and the supplier -------------------------------------------------------------------------------


def test_issue_assigns_the_number(s: Scenario) -> None:
    po = s.issued_po()
    assert (po.state, po.number, po.issued_at) == (S.ISSUED, "PO-OPS-2026-00001", s.at(0.3))
    assert s.issued_po().number == "PO-OPS-2026-00002"


def test_issue_is_refused_until_the_route_is_complete_whoever_calls(s: Scenario) -> None:
    po = decide(s, s.submitted_po(amount="60.00"), "mgr-1")
    # Even with the state forced to "approved", the route decides.
    forced = attrs.evolve(po, state=S.APPROVED)
    with pytest.raises(TransitionRefusedError) as info:
        s.apply(forced, Issue(number="PO-OPS-2026-00009"), s.buyer)
    assert "its approval route is not complete: waiting for level 2: any one role cfo" in str(
        info.value
    )


def test_issue_refuses_a_number_outside_the_pattern(s: Scenario) -> None:
    with pytest.raises(TransitionRefusedError, match="does not fit the pattern"):
        s.apply(s.approved_po(), Issue(number="12345"), s.buyer)
    with pytest.raises(TransitionRefusedError, match="it has no number"):
        s.apply(s.approved_po(), Issue(), s.buyer)


def test_acknowledge_by_the_supplier_sets_promised_dates(s: Scenario) -> None:
    po = s.issued_po()
    ack = Acknowledgement(
        po_id=po.id,
        revision=0,
        at=s.at(1),
        by=ActorId("acme-sales"),
        promised_dates=((1, date(2026, 1, 25)),),
    )
    po = s.apply(po, Acknowledge(acknowledgement=ack), s.supplier_user, 1)
    assert po.state is S.ACKNOWLEDGED
    assert po.lines[0].promised_date == date(2026, 1, 25)
    with pytest.raises(TransitionRefusedError):
        s.apply(po, Acknowledge(acknowledgement=ack), s.supplier_user, 1)


def test_supplier_users_act_only_on_their_own_orders(s: Scenario) -> None:
    po = s.issued_po()
    ack = Acknowledgement(po_id=po.id, revision=0, at=s.at(1), by=ActorId("slow-sales"))
    with pytest.raises(NotPermittedError, match=r"but this PO is\s+with S-ACME"):
        s.apply(po, Acknowledge(acknowledgement=ack), s.other_supplier_user, 1)
    with pytest.raises(NotPermittedError, match="supplier users may only acknowledge"):
        s.apply(po, ReceiveGoods(receipt=s.receipt(po, "1")), s.supplier_user, 1)


def test_supplier_rejects(s: Scenario) -> None:
    po = s.apply(s.issued_po(), SupplierReject(reason="discontinued"), s.supplier_user, 1)
    assert po.state is S.SUPPLIER_REJECTED
    assert po.comments[-1].from_supplier


def proposal(po: PurchaseOrder, **change: Any) -> ChangeProposal:
    return ChangeProposal(
        id="CP-1",
        po_id=po.id,
        proposed_by=ActorId("acme-sales"),
        at=po.created_at + timedelta(days=2),
        changes=(LineChange(line_no=1, **change),),
        reason="price increase",
    )


def test_small_change_proposal_accepted_becomes_a_revision(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(
        po,
        ProposeChange(proposal=proposal(po, unit_price=money("10.50", "USD"))),
        s.supplier_user,
        2,
    )
    assert (po.state, po.resume_to) == (S.CHANGE_PROPOSED, S.ISSUED)
    po = s.apply(po, AcceptChange(proposal_id="CP-1"), s.buyer, 3)
    assert (po.state, po.revision, po.pending_change) == (S.ACKNOWLEDGED, 1, None)
    revision = po.revisions[0]
    assert (revision.value_before.amount, revision.value_after.amount) == (
        Decimal("1000.00"),
        Decimal("1050.00"),
    )
    assert [(c.field, c.old, c.new) for c in revision.changes] == [
        ("unit_price", "10.00 USD", "10.50 USD")
    ]
    assert not revision.reapproval


def test_large_increase_goes_back_through_approval(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(
        po, ProposeChange(proposal=proposal(po, quantity=Decimal(600))), s.supplier_user, 2
    )
    applied = s.lifecycle.apply(po, AcceptChange(proposal_id="CP-1"), s.buyer, s.at(3))
    po = applied.document
    assert po.state is S.PENDING_APPROVAL
    assert applied.record.event.reapproval is True
    assert [st.step_id for st in po.approval.route.steps] == ["L1-manager-manager", "L2-role-cfo"]
    with pytest.raises(TransitionRefusedError, match="the PO is pending approval"):
        s.apply(po, Issue(), s.buyer, 3)
    po = s.approve_all(po, 4)
    po = s.apply(po, Issue(), s.buyer, 5)
    assert (po.state, po.number, po.revision) == (S.ISSUED, "PO-OPS-2026-00001", 1)


def test_decline_returns_to_where_it_was(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(
        po, ProposeChange(proposal=proposal(po, promised_date=date(2026, 3, 1))), s.supplier_user, 2
    )
    po = s.apply(po, DeclineChange(proposal_id="CP-1", reason="we need it in January"), s.buyer, 3)
    assert (po.state, po.revision, po.lines[0].promised_date) == (S.ISSUED, 0, None)
    with pytest.raises(TransitionRefusedError, match="the pending change proposal is none"):
        s.apply(
            attrs.evolve(po, state=S.CHANGE_PROPOSED), AcceptChange(proposal_id="CP-1"), s.buyer, 3
        )


def test_buyer_change_order(s: Scenario) -> None:
    po = s.issued_po()
    extra = PurchaseOrderLine(
        line_no=2,
        description="Washers",
        category="hardware",
        quantity=Decimal(10),
        uom="EA",
        unit_price=money("1.00", "USD"),
    )
    po = s.apply(
        po,
        ReviseOrder(
            changes=(LineChange(line_no=1, quantity=Decimal(95)),),
            add_lines=(extra,),
            reason="fewer bolts, add washers",
        ),
        s.buyer,
        2,
    )
    assert (po.state, po.revision, len(po.lines)) == (S.ISSUED, 1, 2)
    assert po.revisions[0].source == "change order"
    with pytest.raises(TransitionRefusedError, match="reuse line numbers"):
        s.apply(po, ReviseOrder(add_lines=(extra,), reason="again"), s.buyer, 3)


def test_change_below_what_was_received_is_refused(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, 5)
    with pytest.raises(
        TransitionRefusedError, match="quantity 50 is below the 60 already received"
    ):
        s.apply(
            po,
            ReviseOrder(changes=(LineChange(line_no=1, quantity=Decimal(50)),), reason="cut"),
            s.buyer,
            6,
        )


def test_dispatch_updates_the_expected_date_and_overdue(s: Scenario) -> None:
    po = s.issued_po()
    assert not is_overdue(po, date(2026, 1, 19))
    assert is_overdue(po, date(2026, 1, 20))  # requested 2026-01-19
    notice = DispatchNotice(
        id="ASN-1",
        po_id=po.id,
        carrier="DHL",
        tracking_reference="JD0001",
        shipped_at=s.at(3),
        expected_arrival=date(2026, 1, 28),
        lines=(DispatchLine(line_no=1, quantity=Decimal(100)),),
    )
    po = s.apply(po, RecordDispatch(notice=notice), s.supplier_user, 3)
    assert po.state is S.IN_FULFILMENT
    assert not is_overdue(po, date(2026, 1, 28))
    assert is_overdue(po, date(2026, 1, 29))
    assert dashboard_status(po, date(2026, 1, 20)) == "Dispatched"
    assert dashboard_status(po, date(2026, 1, 29)) == "Overdue"


# -- receiving ----------------------------------------------------------------------------------------------


def test_partial_and_multiple_receipts(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, 10)
    assert progress(po).receipt is ReceiptStatus.PARTIAL
    assert progress(po).received_percent == Decimal(60)
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "40")), s.receiver, 11)
    assert progress(po).receipt is ReceiptStatus.FULL
    assert po.line_progress(1).received == Decimal(100)
    assert dashboard_status(po, date(2026, 1, 16)) == "To bill"


def test_over_receipt_beyond_the_allowance_is_refused(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "105")), s.receiver, 10)  # within 10 %
    with pytest.raises(TransitionRefusedError) as info:
        s.apply(po, ReceiveGoods(receipt=s.receipt(po, "6")), s.receiver, 11)
    assert (
        "line 1: receiving 6 brings it to 111 of 100 ordered, beyond the 10 % allowance (110)"
        in str(info.value)
    )
    assert "over_receipt_bypass" in str(info.value)


def test_over_receipt_with_the_bypass_role_is_accepted_and_recorded(s: Scenario) -> None:
    po = s.issued_po()
    applied = s.lifecycle.apply(po, ReceiveGoods(receipt=s.receipt(po, "130")), s.bypass, s.at(10))
    assert applied.record.event.overrides == (1,)
    assert "over_receipt_accepted" in applied.record.domain_events
    assert applied.document.line_progress(1).over_receipt_overrides == 1
    assert progress(applied.document).receipt is ReceiptStatus.OVER


def test_item_and_line_allowances_override_the_default() -> None:
    s = Scenario(over_receipt_allowance=Decimal(0))
    s.lifecycle.item_allowances["ITEM-1"] = Decimal(5)
    po = s.issued_po()
    assert (
        s.apply(po, ReceiveGoods(receipt=s.receipt(po, "105")), s.receiver, 10).state
        is S.IN_FULFILMENT
    )
    with pytest.raises(TransitionRefusedError, match="0 % allowance"):
        s.apply(po, ReceiveGoods(receipt=s.receipt(po, "100.002", line=2)), s.receiver, 10) if len(
            po.lines
        ) > 1 else s.apply(
            attrs.evolve(po, lines=(attrs.evolve(po.lines[0], item=None),)),
            ReceiveGoods(receipt=s.receipt(po, "100.002")),
            s.receiver,
            10,
        )


def test_one_over_received_line_does_not_hide_an_under_received_one(s: Scenario) -> None:
    po = s.issued_po(lines=2)
    receipt = attrs.evolve(
        s.receipt(po, "105"),
        lines=(
            ReceiptLine(line_no=1, received=Decimal(105)),
            ReceiptLine(line_no=2, received=Decimal(50)),
        ),
    )
    po = s.apply(po, ReceiveGoods(receipt=receipt), s.receiver, 10)
    p = progress(po)
    assert p.receipt is ReceiptStatus.PARTIAL
    assert p.received_percent == Decimal(75)  # (100 + 50) / 200, not (105 + 50) / 200


def test_receipt_refusals(s: Scenario) -> None:
    po = s.issued_po()
    other = s.issued_po()
    cases = [
        (s.receipt(other, "1"), f"the goods receipt belongs to {other.id}, not {po.id}"),
        (s.receipt(po, "1", line=9), "the receipt names line 9"),
        (
            attrs.evolve(
                s.receipt(po, "1"), lines=(ReceiptLine(line_no=1, received=Decimal(1), uom="KG"),)
            ),
            "received in KG, but the line is ordered in EA",
        ),
    ]
    for receipt, message in cases:
        with pytest.raises(TransitionRefusedError, match=message):
            s.apply(po, ReceiveGoods(receipt=receipt), s.receiver, 10)
    receipt = s.receipt(po, "1")
    po = s.apply(po, ReceiveGoods(receipt=receipt), s.receiver, 10)
    with pytest.raises(TransitionRefusedError, match="already recorded"):
        s.apply(po, ReceiveGoods(receipt=receipt, key="another-key"), s.receiver, 10)


def test_inspection_and_four_way_quantities(s: Scenario) -> None:
    po = s.issued_po()
    receipt = s.receipt(po, "100", rejected="4")
    po = s.apply(po, ReceiveGoods(receipt=receipt), s.receiver, 10)
    assert (po.line_progress(1).pending_inspection, po.line_progress(1).rejected) == (
        Decimal(96),
        Decimal(4),
    )
    inspect = RecordInspection(
        receipt_id=receipt.id,
        lines=(InspectionLine(line_no=1, accepted=Decimal(90), rejected=Decimal(6)),),
    )
    po = s.apply(po, inspect, s.inspector, 11)
    p = po.line_progress(1)
    assert (p.accepted, p.rejected, p.pending_inspection) == (Decimal(90), Decimal(10), Decimal(0))
    with pytest.raises(TransitionRefusedError, match="only 0 awaits inspection"):
        s.apply(po, attrs.evolve(inspect, key="again"), s.inspector, 12)


def test_returns_reduce_received_and_rejected_goods_go_first(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(
        po, ReceiveGoods(receipt=s.receipt(po, "100", rejected="10", accepted="90")), s.receiver, 10
    )
    back = GoodsReturn(
        id="RT-1",
        po_id=po.id,
        returned_at=s.at(12),
        returned_by=ActorId("recv-1"),
        lines=(ReturnLine(line_no=1, quantity=Decimal(15), reason="damaged"),),
    )
    po = s.apply(po, ReturnGoods(goods_return=back), s.receiver, 12)
    p = po.line_progress(1)
    assert (p.net_received, p.net_accepted) == (Decimal(85), Decimal(85))
    assert progress(po).receipt is ReceiptStatus.PARTIAL
    too_many = attrs.evolve(
        back, id="RT-2", lines=(ReturnLine(line_no=1, quantity=Decimal(86), reason="all"),)
    )
    with pytest.raises(TransitionRefusedError, match="only 85 is received and not yet returned"):
        s.apply(po, ReturnGoods(goods_return=too_many), s.receiver, 13)


def test_service_and_two_way_lines_do_not_wait_for_receipts(s: Scenario) -> None:
    po = s.issued_po()
    service = attrs.evolve(po, lines=(attrs.evolve(po.lines[0], line_type=LineType.SERVICE),))
    assert progress(service).receipt is ReceiptStatus.NOT_REQUIRED
    two_way = attrs.evolve(po, match_level=MatchLevel.TWO_WAY)
    assert progress(two_way).receipt is ReceiptStatus.NOT_REQUIRED
    assert not is_overdue(service, date(2027, 1, 1))


# -- invoices, matching, payment, closing --------------------------------------------------------------------


def run_to_close(s: Scenario) -> tuple[PurchaseOrder, list[Any]]:
    po = s.issued_po()
    inv = s.invoice(po, "100")
    return history(
        s,
        po,
        (ReceiveGoods(receipt=s.receipt(po, "100")), s.receiver, 10),
        (RecordInvoice(invoice=inv), s.clerk, 12),
        (
            RecordMatch(invoice_id=inv.id),
            s.clerk,
            12,
        ),
        (RecordPayment(payment=s.payment(po, inv.id, "600.00")), s.treasurer, 20),
        (RecordPayment(payment=s.payment(po, inv.id, "400.00")), s.treasurer, 30),
    )


def test_the_po_closes_itself_when_everything_is_done(s: Scenario) -> None:
    po, records = run_to_close(s)
    assert [r.to_state for r in records] == ["in_fulfilment"] * 4 + ["closed"]
    assert records[-1].domain_events == ("payment_recorded", "po_closed")
    assert po.closure.kind.value == "complete"
    assert dashboard_status(po, date(2026, 3, 1)) == "Completed"
    p = progress(po)
    assert (p.receipt, p.billing, p.match, p.payment) == (
        ReceiptStatus.FULL,
        BillingStatus.FULL,
        MatchStatus.MATCHED,
        PaymentStatus.PAID,
    )


def test_dashboard_follows_the_progress(s: Scenario) -> None:
    po = s.issued_po()
    today = date(2026, 1, 10)
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "50")), s.receiver, 5)
    assert dashboard_status(po, today) == "To receive and bill"
    inv = s.invoice(po, "100")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 6)
    assert dashboard_status(po, today) == "To receive"
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "50")), s.receiver, 7)
    assert dashboard_status(po, today) == "To match"
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 7)
    assert dashboard_status(po, today) == "To pay"


def test_dashboard_shows_a_held_invoice_until_someone_may_accept_it(s: Scenario) -> None:
    po = s.issued_po()
    today = date(2026, 1, 10)
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "100")), s.receiver, 5)
    inv = s.invoice(po, "100", price="10.50")  # 5 % above the PO price; exact matching
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 6)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 7)
    assert dashboard_status(po, today) == "Invoice on hold"
    assert po.invoice(inv.id).payable == Decimal("0.00")
    accept = (AcceptFinding(code="price", invoice_line_no=1, reason="agreed by phone"),)
    with pytest.raises(NotPermittedError, match="ap-1 may not accept matching findings"):
        s.apply(po, RecordMatch(invoice_id=inv.id, accept=accept), s.clerk, 8)
    lead = attrs.evolve(
        s.clerk, id=ActorId("ap-lead"), roles=frozenset({Role.AP_CLERK, Role.MATCH_OVERRIDE})
    )
    s2 = s.with_people([lead])
    applied = s2.applied(po, RecordMatch(invoice_id=inv.id, accept=accept), lead, 8)
    assert dashboard_status(applied.document, today) == "To pay"
    assert applied.document.invoice(inv.id).payable == Decimal("1050.00")
    assert applied.record.event.overrides == (
        "price on line 1 accepted by ap-lead: agreed by phone",
    )
    wrong = (AcceptFinding(code="quantity_received", invoice_line_no=1, reason="x"),)
    with pytest.raises(TransitionRefusedError, match="has no blocking quantity_received finding"):
        s2.apply(po, RecordMatch(invoice_id=inv.id, accept=wrong), lead, 8)


def test_invoice_refusals(s: Scenario) -> None:
    po = s.issued_po()
    euro = s.invoice(
        po,
        "10",
        currency="EUR",
        total=money("100", "EUR"),
        lines=(attrs.evolve(s.invoice(po, "10").lines[0], unit_price=money("10", "EUR")),),
    )
    with pytest.raises(
        TransitionRefusedError,
        match="the invoice is in EUR, the PO in USD, and no exchange_rate is given",
    ):
        s.apply(po, RecordInvoice(invoice=euro), s.clerk, 5)
    with pytest.raises(TransitionRefusedError, match="from supplier S-SLOW"):
        s.apply(po, RecordInvoice(invoice=s.invoice(po, "1", supplier_id="S-SLOW")), s.clerk, 5)
    memo = s.invoice(po, "1", kind=InvoiceKind.CREDIT_MEMO)
    with pytest.raises(TransitionRefusedError, match="is a credit memo, not an invoice"):
        s.apply(po, RecordInvoice(invoice=memo), s.clerk, 5)


def test_foreign_currency_invoice_with_a_rate(s: Scenario) -> None:
    po = s.issued_po()
    line = attrs.evolve(s.invoice(po, "10").lines[0], unit_price=money("8", "EUR"))
    inv = s.invoice(
        po,
        "10",
        currency="EUR",
        exchange_rate=Decimal("1.25"),
        lines=(line,),
        total=money("80", "EUR"),
    )
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "10")), s.receiver, 4)
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 5)
    assert po.line_progress(1).invoiced_amount == Decimal("100.00")
    assert po.invoice(inv.id).amount == Decimal("100.00")
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 6)
    assert po.invoice(inv.id).status is InvoiceStatus.MATCHED
    assert po.invoice(inv.id).payable == Decimal("100.00")  # 80 EUR at 1.25


def test_credit_memo_never_exceeds_what_was_invoiced(s: Scenario) -> None:
    po = s.issued_po()
    inv = s.invoice(po, "10")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 5)
    memo = s.invoice(po, "4", kind=InvoiceKind.CREDIT_MEMO, credits=inv.id)
    po = s.apply(po, RecordCreditMemo(memo=memo), s.clerk, 6)
    assert po.line_progress(1).net_invoiced == Decimal(6)
    too_much = s.invoice(po, "7", kind=InvoiceKind.CREDIT_MEMO)
    with pytest.raises(TransitionRefusedError, match="crediting 7 but only 6 is invoiced"):
        s.apply(po, RecordCreditMemo(memo=too_much), s.clerk, 7)


def test_payments_only_of_what_is_payable(s: Scenario) -> None:
    po = s.issued_po()
    inv = s.invoice(po, "10")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 5)
    with pytest.raises(TransitionRefusedError, match="not matched yet: nothing on it is payable"):
        s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "100.00")), s.treasurer, 6)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 6)  # nothing received yet
    assert po.invoice(inv.id).status is InvoiceStatus.AWAITING_RECEIPT
    with pytest.raises(TransitionRefusedError, match=r"exceeds what is payable and unpaid \(0"):
        s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "100.00")), s.treasurer, 7)
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "10")), s.receiver, 7)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 8)
    with pytest.raises(
        TransitionRefusedError, match=r"exceeds what is payable and unpaid \(100.00"
    ):
        s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "100.01")), s.treasurer, 9)
    with pytest.raises(TransitionRefusedError, match="settles no invoice recorded"):
        s.apply(po, RecordPayment(payment=s.payment(po, "INV-OTHER", "1.00")), s.treasurer, 9)


def test_match_refusals(s: Scenario) -> None:
    po = s.issued_po()
    inv = s.invoice(po, "10")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 5)
    with pytest.raises(TransitionRefusedError, match="INV-X is not recorded"):
        s.apply(
            po,
            RecordMatch(invoice_id="INV-X"),
            s.clerk,
            6,
        )
    forged = RecordMatch(invoice_id=inv.id, status=InvoiceStatus.MATCHED, payable=inv.total)
    with pytest.raises(DecidedFieldError) as info:
        s.apply(po, forged, s.clerk, 6)
    assert info.value.fields == ("status", "payable")
    with pytest.raises(TransitionRefusedError, match="apply it through Purchasing"):
        s.lifecycle.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, s.at(6))  # no documents


def test_a_match_priced_above_the_po_cannot_be_recorded_as_matched(s: Scenario) -> None:
    """The attack of issue 23: an invoice 50 % above the PO recorded as matched and paid."""
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "100")), s.receiver, 5)
    inv = s.invoice(po, "100", price="15.00")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 6)
    claimed = RecordMatch(
        invoice_id=inv.id, status=InvoiceStatus.MATCHED, payable=money("1500.00", "USD")
    )
    with pytest.raises(DecidedFieldError):
        s.apply(po, claimed, s.clerk, 7)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 7)
    assert po.invoice(inv.id).status is InvoiceStatus.HELD
    with pytest.raises(TransitionRefusedError, match="nothing on it is payable"):
        s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "1500.00")), s.treasurer, 8)


# -- holds, closing, cancelling, reopening ---------------------------------------------------------------------


def test_hold_refuses_receipts_with_the_reason_and_resumes_where_it_was(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, PlaceOnHold(reason="supplier dispute"), s.buyer, 0)
    with pytest.raises(TransitionRefusedError) as info:
        s.apply(po, ReceiveGoods(receipt=s.receipt(po, "1")), s.receiver, 1)
    assert str(info.value) == (
        "recv-1 cannot record a goods receipt on PO-OPS-2026-00001: the PO is on "
        "hold since 2026-01-05 (supplier dispute)"
    )
    assert (info.value.state, info.value.event) == ("on_hold", "record a goods receipt")
    commented = s.apply(po, AddComment(text="calling them today"), s.buyer, 1)
    released = s.apply(commented, ReleaseHold(note="settled"), s.buyer, 2)
    assert (released.state, released.hold) == (S.ISSUED, None)


def test_short_close_needs_something_open(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, 5)
    closed = s.apply(po, ShortClose(reason="the rest is discontinued"), s.buyer, 6)
    assert (closed.state, closed.closure.kind.value) == (S.CLOSED, "short")
    assert dashboard_status(closed, date(2026, 2, 1)) == "Short-closed"
    with pytest.raises(TransitionRefusedError, match="the PO is short-closed since"):
        s.apply(closed, ReceiveGoods(receipt=s.receipt(po, "1")), s.receiver, 7)


def test_cancel_only_while_nothing_is_received(s: Scenario) -> None:
    assert (
        s.apply(s.issued_po(), Cancel(reason="no longer needed"), s.buyer, 1).state is S.CANCELLED
    )
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "1")), s.receiver, 1)
    with pytest.raises(TransitionRefusedError, match="short-close it instead"):
        s.apply(attrs.evolve(po, state=S.ISSUED), Cancel(reason="x"), s.buyer, 2)


def test_reopen_a_closed_po(s: Scenario) -> None:
    po, _ = run_to_close(s)
    reopened = s.apply(po, Reopen(reason="late credit memo"), s.buyer, 40)
    assert (reopened.state, reopened.closure) == (S.IN_FULFILMENT, None)


def test_comments_and_issues_from_both_sides(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, AddComment(text="Can you ship early?"), s.buyer, 1)
    po = s.apply(po, AddComment(text="Yes, Thursday."), s.supplier_user, 1)
    assert [(c.by, c.from_supplier) for c in po.comments] == [
        ("buyer-1", False),
        ("acme-sales", True),
    ]
    po = s.apply(po, FlagIssue(issue_id="I-1", text="wrong address on the PO"), s.supplier_user, 2)
    with pytest.raises(TransitionRefusedError, match="already exists"):
        s.apply(po, FlagIssue(issue_id="I-1", text="again"), s.buyer, 2)
    po = s.apply(po, ResolveIssue(issue_id="I-1", resolution="address fixed"), s.buyer, 3)
    assert po.issues[0].resolved_by == "buyer-1"
    with pytest.raises(TransitionRefusedError, match="no open issue"):
        s.apply(po, ResolveIssue(issue_id="I-1", resolution="again"), s.buyer, 3)


# -- refusals for every state and role in the table --------------------------------------------------------------


def po_in(s: Scenario, state: POState) -> PurchaseOrder:
    if state is S.DRAFT:
        return s.draft_po()
    if state is S.PENDING_APPROVAL:
        return s.submitted_po()
    if state is S.APPROVED:
        return s.approved_po()
    if state is S.REJECTED:
        return decide(s, s.submitted_po(), "mgr-1", Decision.REJECT)
    if state is S.ISSUED:
        return s.issued_po()
    po = s.issued_po()
    if state is S.ACKNOWLEDGED:
        ack = Acknowledgement(po_id=po.id, revision=0, at=s.at(1), by=ActorId("acme-sales"))
        return s.apply(po, Acknowledge(acknowledgement=ack), s.supplier_user, 1)
    if state is S.CHANGE_PROPOSED:
        return s.apply(
            po, ProposeChange(proposal=proposal(po, quantity=Decimal(90))), s.supplier_user, 1
        )
    if state is S.SUPPLIER_REJECTED:
        return s.apply(po, SupplierReject(reason="no"), s.supplier_user, 1)
    if state is S.IN_FULFILMENT:
        return s.apply(po, ReceiveGoods(receipt=s.receipt(po, "10")), s.receiver, 1)
    if state is S.ON_HOLD:
        return s.apply(po, PlaceOnHold(reason="dispute"), s.buyer, 1)
    if state is S.CANCELLED:
        return s.apply(po, Cancel(reason="gone"), s.buyer, 1)
    return run_to_close(s)[0]


def sample_event(s: Scenario, row: TransitionRule, po: PurchaseOrder) -> Event:
    """A well-formed event of the row's kind for ``po``."""
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    events: dict[type[Event], Any] = {
        EditDraft: lambda: EditDraft(ship_to="Dock 1"),
        SubmitForApproval: SubmitForApproval,
        RecordDecision: lambda: decision,
        ReassignStep: lambda: ReassignStep(
            step_id="L1-manager-manager", to_actor=ActorId("mgr-2"), reason="r"
        ),
        Issue: lambda: Issue(number="PO-OPS-2026-00099"),
        Acknowledge: lambda: Acknowledge(
            acknowledgement=Acknowledgement(
                po_id=po.id, revision=po.revision, at=s.at(1), by=ActorId("acme-sales")
            )
        ),
        SupplierReject: lambda: SupplierReject(reason="no"),
        ProposeChange: lambda: ProposeChange(
            proposal=attrs.evolve(proposal(po, quantity=Decimal(99)), id="CP-9")
        ),
        AcceptChange: lambda: AcceptChange(proposal_id="CP-1"),
        DeclineChange: lambda: DeclineChange(proposal_id="CP-1", reason="no"),
        ReviseOrder: lambda: ReviseOrder(
            changes=(LineChange(line_no=1, quantity=Decimal(99)),), reason="r"
        ),
        RecordDispatch: lambda: RecordDispatch(
            notice=DispatchNotice(
                id="ASN-9",
                po_id=po.id,
                carrier="UPS",
                tracking_reference="1Z",
                shipped_at=s.at(1),
                expected_arrival=date(2026, 1, 30),
            )
        ),
        ReceiveGoods: lambda: ReceiveGoods(receipt=s.receipt(po, "1")),
        RecordInspection: lambda: RecordInspection(
            receipt_id="GR-X", lines=(InspectionLine(line_no=1, accepted=Decimal(1)),)
        ),
        ReturnGoods: lambda: ReturnGoods(
            goods_return=GoodsReturn(
                id="RT-9",
                po_id=po.id,
                returned_at=s.at(1),
                returned_by=ActorId("recv-1"),
                lines=(ReturnLine(line_no=1, quantity=Decimal(1), reason="r"),),
            )
        ),
        RecordInvoice: lambda: RecordInvoice(invoice=s.invoice(po, "1")),
        RecordCreditMemo: lambda: RecordCreditMemo(
            memo=s.invoice(po, "1", kind=InvoiceKind.CREDIT_MEMO)
        ),
        RecordMatch: lambda: RecordMatch(invoice_id="INV-X"),
        RecordPayment: lambda: RecordPayment(payment=s.payment(po, "INV-X", "1.00")),
        PlaceOnHold: lambda: PlaceOnHold(reason="r"),
        ReleaseHold: ReleaseHold,
        ShortClose: lambda: ShortClose(reason="r"),
        Cancel: lambda: Cancel(reason="r"),
        Reopen: lambda: Reopen(reason="r"),
        AddComment: lambda: AddComment(text="t"),
        FlagIssue: lambda: FlagIssue(issue_id="I-9", text="t"),
        ResolveIssue: lambda: ResolveIssue(issue_id="I-9", resolution="r"),
    }
    made: Event = events[row.event]()
    return made


SENDERS = {
    Role.BUYER: "buyer",
    Role.RECEIVER: "receiver",
    Role.AP_CLERK: "clerk",
    Role.TREASURER: "treasurer",
    Role.SUPPLIER: "supplier_user",
    Role.ADMIN: "admin",
    Role.INSPECTOR: "inspector",
    Role.SYSTEM: "system",
    Role.REQUESTER: "requester",
}

EVENT_ROWS = [row for row in PO_TRANSITIONS if row.sources]


@pytest.mark.parametrize("row", EVENT_ROWS, ids=lambda r: r.event.name)
def test_every_event_is_refused_in_every_state_it_is_not_allowed_in(
    s: Scenario, row: TransitionRule
) -> None:
    for state in POState:
        if state in row.sources:
            continue
        po = po_in(s, state)
        assert po.state is state
        event = sample_event(s, row, po)
        sender = s.manager if row.approver else getattr(s, SENDERS[sorted(row.roles)[0]])
        with pytest.raises(TransitionRefusedError) as info:
            s.apply(po, event, sender, 2)
        assert not isinstance(info.value, NotPermittedError), (row.event.name, state)
        assert info.value.state == state.value
        assert info.value.reasons[0].startswith("the PO is"), info.value.reasons


@pytest.mark.parametrize(
    "row", [r for r in EVENT_ROWS if r.roles and not r.approver], ids=lambda r: r.event.name
)
def test_every_role_restricted_event_refuses_an_actor_without_the_role(
    s: Scenario, row: TransitionRule
) -> None:
    state = sorted(row.sources, key=list(POState).index)[0]
    po = po_in(s, state)
    outsider = attrs.evolve(s.buyer, id=ActorId("nobody"), roles=frozenset({"visitor"}))
    s2 = s.with_people([outsider])
    with pytest.raises(NotPermittedError) as info:
        s2.apply(po, sample_event(s, row, po), outsider, 2)
    assert "holds none of the roles allowed" in info.value.reasons[0]
    assert info.value.actor == "nobody"


def test_role_overrides_replace_the_table_roles(s: Scenario) -> None:
    keeper = attrs.evolve(s.receiver, id=ActorId("keeper-1"), roles=frozenset({"warehouse"}))
    s = s.with_people([keeper])
    lifecycle = s.lifecycle.__class__(
        router=s.router, numbering=s.scheme, role_overrides={"receive": {"warehouse"}}
    )
    po = s.issued_po()
    with pytest.raises(NotPermittedError, match="warehouse"):
        lifecycle.apply(po, ReceiveGoods(receipt=s.receipt(po, "1")), s.receiver, s.at(1))
    assert (
        lifecycle.apply(
            po, ReceiveGoods(receipt=s.receipt(po, "1")), keeper, s.at(1)
        ).document.state
        is S.IN_FULFILMENT
    )


# -- idempotency and replay ----------------------------------------------------------------------------------------


def test_the_same_event_twice_is_recorded_once(s: Scenario) -> None:
    po = s.issued_po()
    event = ReceiveGoods(receipt=s.receipt(po, "40"))
    first = s.lifecycle.apply(po, event, s.receiver, s.at(10))
    again = s.lifecycle.apply(first.document, event, s.receiver, s.at(11))
    assert again.duplicate
    assert again.record is None
    assert again.first_version == first.document.version
    assert again.document is first.document
    assert first.document.line_progress(1).received == Decimal(40)


def test_replay_rebuilds_exactly_the_live_po(s: Scenario) -> None:
    applied = s.lifecycle.create(s.po_document(amount="60.00"), s.buyer, s.at(0))
    po, records = applied.document, [applied.record]
    steps: list[tuple[Event, Any, float]] = [(SubmitForApproval(), s.buyer, 0.1)]
    po, more = history(s, po, *steps)
    records += more
    for who in ("mgr-1", "cfo-1"):
        step = ap.active_steps(po.approval)[0]
        decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
        po, more = history(s, po, (decision, s.actor(who), 0.5))
        records += more
    po, more = history(s, po, (Issue(number=s.number_for(po)), s.buyer, 1))
    records += more
    inv = s.invoice(po, "100")
    po, more = history(
        s,
        po,
        (
            ProposeChange(proposal=proposal(po, unit_price=money("61.00", "USD"))),
            s.supplier_user,
            2,
        ),
        (AcceptChange(proposal_id="CP-1"), s.buyer, 2),
        (ReceiveGoods(receipt=s.receipt(po, "100")), s.bypass, 10),
        (RecordInvoice(invoice=inv), s.clerk, 12),
        (AddComment(text="ok"), s.supplier_user, 12),
    )
    records += more
    assert replay(records) == po
    assert [r.version for r in records] == list(range(1, po.version + 1))


def test_replay_refuses_broken_streams(s: Scenario) -> None:
    _, records = run_to_close(s)
    with pytest.raises(ReplayError, match="must create the document"):
        replay(records)
    applied = s.lifecycle.create(s.po_document(), s.buyer, s.at(0))
    with pytest.raises(ReplayError, match="skip from version 1 to 3"):
        replay([applied.record, attrs.evolve(records[0], version=3)])


# -- requisitions ----------------------------------------------------------------------------------------------------


def test_requisition_lifecycle_and_conversion(s: Scenario) -> None:
    rl = s.requisitions
    req = rl.create(sample_requisition(), s.requester, s.at(0)).document
    req = rl.apply(req, EditRequisition(justification="restock"), s.requester, s.at(0.1)).document
    applied = rl.apply(req, SubmitForApproval(), s.requester, s.at(0.2))
    req = applied.document
    assert req.state is RequisitionState.PENDING_APPROVAL
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    req = rl.apply(req, decision, s.manager, s.at(1)).document
    assert req.state is RequisitionState.APPROVED
    orders, events = convert_requisitions(
        [req], buyer=ActorId("buyer-1"), at=s.at(2), new_id=lambda i: f"PO-R{i}"
    )
    assert [(o.id, o.supplier_id, o.lines[0].requisition) for o in orders] == [
        ("PO-R0", "S-ACME", "REQ-1")
    ]
    req = rl.apply(req, events[req.id], s.buyer, s.at(2)).document
    assert req.state is RequisitionState.CONVERTED
    with pytest.raises(TransitionRefusedError, match="the requisition is converted"):
        rl.apply(req, Cancel(reason="x"), s.requester, s.at(3))


def test_only_the_requester_or_a_buyer_edits_a_requisition(s: Scenario) -> None:
    rl = s.requisitions
    req = rl.create(sample_requisition(), s.requester, s.at(0)).document
    colleague = attrs.evolve(s.requester, id=ActorId("req-2"))
    with pytest.raises(NotPermittedError, match="only req-1 \\(the requester\\)"):
        s.with_people([colleague]).requisitions.apply(
            req, EditRequisition(justification="mine now"), colleague, s.at(1)
        )
    assert (
        rl.apply(req, EditRequisition(justification="ok"), s.buyer, s.at(1)).document.version == 2
    )


def test_returned_requisition_is_edited_and_resubmitted(s: Scenario) -> None:
    rl = s.requisitions
    req = rl.create(sample_requisition(), s.requester, s.at(0)).document
    req = rl.apply(req, SubmitForApproval(), s.requester, s.at(0.2)).document
    back = RecordDecision(step_id="L1-manager-manager", verdict=Decision.RETURN, reason="split it")
    req = rl.apply(req, back, s.manager, s.at(1)).document
    assert req.state is RequisitionState.RETURNED
    req = rl.apply(req, EditRequisition(justification="split"), s.requester, s.at(2)).document
    assert req.state is RequisitionState.DRAFT


def test_conversion_splits_across_suppliers_and_merges_identical_lines(s: Scenario) -> None:
    base = sample_requisition(state=RequisitionState.APPROVED)
    other_line = attrs.evolve(base.lines[0], line_no=2, suggested_supplier="S-SLOW")
    first = attrs.evolve(base, lines=(base.lines[0], other_line))
    second = attrs.evolve(base, id="REQ-2")
    orders, events = convert_requisitions(
        [first, second], buyer=ActorId("buyer-1"), at=s.at(1), new_id=lambda i: f"PO-{i}"
    )
    acme = next(o for o in orders if o.supplier_id == "S-ACME")
    assert [(ln.quantity, ln.requisition) for ln in acme.lines] == [(Decimal(200), "REQ-1")]
    assert acme.requisitions == ("REQ-1", "REQ-2")
    assert len(orders) == 2
    assert events["REQ-2"].conversions[0].po_id == acme.id
    rl = s.requisitions
    partly = rl.apply(
        attrs.evolve(first),
        ConvertToOrders(conversions=events["REQ-1"].conversions[:1]),
        s.buyer,
        s.at(1),
    ).document
    assert partly.state is RequisitionState.APPROVED


# -- money goes out only for what was matched (issue 23, first steps) ------------------------------------


def test_a_negative_allocation_is_refused_at_input(s: Scenario) -> None:
    """Paying 1.00 as −999 on one invoice and +1,000 on another is not a payment."""
    from potrack.exceptions import ValidationError
    from potrack.records import InvoiceId, Payment, PaymentAllocation, PaymentId, SupplierId

    with pytest.raises(ValidationError, match="an allocation must be positive, got -999"):
        Payment(
            id=PaymentId("PAY-X"),
            supplier_id=SupplierId("S-ACME"),
            paid_on=s.at(30).date(),
            amount=money("1.00", "USD"),
            allocations=(
                PaymentAllocation(invoice_id=InvoiceId("INV-1"), amount=money("-999", "USD")),
                PaymentAllocation(invoice_id=InvoiceId("INV-2"), amount=money("1000", "USD")),
            ),
        )


def test_a_po_line_with_a_negative_price_is_refused(s: Scenario) -> None:
    from potrack.exceptions import ValidationError

    with pytest.raises(ValidationError, match=r"unit_price: must not be negative, got -10\.00 USD"):
        s.po_document(amount="-10.00")


def test_short_close_is_refused_while_a_matched_invoice_is_unpaid(s: Scenario) -> None:
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, 5)
    inv = s.invoice(po, "60")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 6)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 6)
    with pytest.raises(TransitionRefusedError, match=rf"invoice {inv.id} is matched and 600\.00"):
        s.apply(po, ShortClose(reason="the rest will not come"), s.buyer, 7)
    po = s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "600.00")), s.treasurer, 8)
    closed = s.apply(po, ShortClose(reason="the rest will not come"), s.buyer, 9)
    assert closed.state is POState.CLOSED


def test_a_credit_memo_after_a_part_payment_reduces_what_may_still_be_paid(s: Scenario) -> None:
    """1,000 matched, 600 paid, then a memo of 300: 100 is owed, not the 400 left on the invoice."""
    po = s.issued_po()
    po = s.apply(po, ReceiveGoods(receipt=s.receipt(po, "100")), s.receiver, 5)
    inv = s.invoice(po, "100")
    po = s.apply(po, RecordInvoice(invoice=inv), s.clerk, 6)
    po = s.apply(po, RecordMatch(invoice_id=inv.id), s.clerk, 6)
    po = s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "600.00")), s.treasurer, 7)
    memo = s.invoice(po, "30", kind=InvoiceKind.CREDIT_MEMO, credits=inv.id)
    po = s.apply(po, RecordCreditMemo(memo=memo), s.clerk, 8)
    with pytest.raises(TransitionRefusedError, match=r"owes net of its credit memos \(100\.00"):
        s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "400.00")), s.treasurer, 9)
    po = s.apply(po, RecordPayment(payment=s.payment(po, inv.id, "100.00")), s.treasurer, 9)
    assert sum(i.paid for i in po.invoices) == Decimal("700.00")
