"""Each way a hostile caller once walked around approval, tried again: refused, store unchanged.

Every attack runs through :class:`~potrack.service.Purchasing` on both stores (in memory and
SQLite).  Each test first shows the honest path works, then sends the crafted command and checks
the typed refusal (who, what, which document, why) and that the PO and its trail did not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from potrack import approval as ap
from potrack import loads
from potrack.events import (
    Cancel,
    Event,
    Issue,
    ReassignStep,
    RecordDecision,
    ReviseOrder,
    SubmitForApproval,
)
from potrack.exceptions import DecidedFieldError, DuplicateError, NotPermittedError, PotrackError
from potrack.lifecycle import DepartmentAccess, PurchaseOrderLifecycle, replay
from potrack.memory import InMemoryDirectory, InMemoryStore
from potrack.money import money
from potrack.numbering import GaplessAllocator
from potrack.records import (
    Actor,
    ActorId,
    ApprovalDecision,
    Decision,
    Delegation,
    LineChange,
    POState,
    PurchaseOrder,
    Reassignment,
    Role,
    Route,
)
from potrack.service import Purchasing
from potrack.sqlite import SQLiteStore
from potrack.testing.scenario import Scenario

MANAGER = "L1-manager-manager"
CFO = "L2-role-cfo"


class World:
    """The scenario's people plus an IT buyer, a buyer who also approves, and a spare approver;
    mgr-1 delegates to mgr-2 from day 1 to day 3."""

    def __init__(self, store: Any, *, allocator: bool = True, **lifecycle: Any) -> None:
        s = Scenario()
        extra = [
            Actor(
                id=ActorId("buyer-it"), name="IT", roles=frozenset({Role.BUYER}), department="IT"
            ),
            Actor(
                id=ActorId("buyer-mgr"),
                name="Buyer and approver",
                roles=frozenset({Role.BUYER, Role.APPROVER}),
                department="OPS",
                manager=ActorId("mgr-1"),
            ),
            Actor(
                id=ActorId("req-2"),
                name="Reports to the buyer",
                roles=frozenset({Role.REQUESTER}),
                department="OPS",
                manager=ActorId("buyer-mgr"),
            ),
            Actor(
                id=ActorId("mgr-3"),
                name="Spare",
                roles=frozenset({Role.APPROVER}),
                department="OPS",
            ),
        ]
        self.delegation = Delegation(
            delegator=ActorId("mgr-1"),
            delegate=ActorId("mgr-2"),
            start=s.at(1),
            end=s.at(3),
            reason="holiday",
        )
        s.people = [*s.people, *extra]
        s.directory = InMemoryDirectory(
            s.people, [self.delegation], extra_departments=frozenset({"IT"})
        )
        s.router = ap.Router(s.policy, s.directory, s.suppliers)
        s.lifecycle = PurchaseOrderLifecycle(router=s.router, numbering=s.scheme, **lifecycle)
        self.s = s
        numbers = GaplessAllocator(s.scheme) if allocator else None
        self.svc = Purchasing(store, s.lifecycle, numbers=numbers, clock=s.clock)

    def at(self, days: float) -> None:
        self.s.clock.set(self.s.at(days))

    def draft(self, price: str = "10.00", **over: Any) -> str:
        """A draft PO of 100 units at ``price`` (10.00: 1,000 USD; 60.00: 6,000 USD)."""
        buyer = over.pop("buyer", "buyer-1")
        doc = self.s.po_document(amount=price, buyer=ActorId(buyer), **over)
        return self.svc.create_order(doc, buyer).document.id

    def send(self, po_id: str, command: Event, who: str | Actor) -> PurchaseOrder:
        return self.svc.order(po_id, command, who).document

    def approved(self, price: str = "10.00", **over: Any) -> str:
        po_id = self.draft(price, **over)
        self.send(po_id, SubmitForApproval(), over.get("buyer", "buyer-1"))
        self.send(po_id, RecordDecision.approve(MANAGER), "mgr-1")
        if Decimal(price) * 100 >= 5000:
            self.send(po_id, RecordDecision.approve(CFO), "cfo-1")
        return po_id

    def issued(self, price: str = "10.00", **over: Any) -> str:
        po_id = self.approved(price, **over)
        self.send(po_id, Issue(), over.get("buyer", "buyer-1"))
        return po_id

    def state(self, po_id: str) -> tuple[PurchaseOrder, tuple[Any, ...]]:
        return self.svc.get_order(po_id), self.svc.history(po_id)

    def refused(
        self, po_id: str, command: Event, who: str | Actor, kind: type[PotrackError]
    ) -> PotrackError:
        """Send ``command``; it must raise ``kind`` and leave the PO and its trail unchanged."""
        before = self.state(po_id)
        with pytest.raises(kind) as info:
            self.send(po_id, command, who)
        assert self.state(po_id) == before
        return info.value


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStore()
    else:
        db = SQLiteStore(tmp_path / "attacks.sqlite")
        yield db
        db.close()


@pytest.fixture
def w(store: Any) -> World:
    return World(store)


# -- the route is the library's --------------------------------------------------------------------


def test_submit_with_own_route_is_refused(w: World) -> None:
    po_id = w.draft("500.00")  # 50,000 USD
    err = w.refused(po_id, SubmitForApproval(route=Route(steps=())), "buyer-1", DecidedFieldError)
    assert err.fields == ("route",)
    assert (err.actor, err.document) == ("buyer-1", po_id)
    assert "route is decided by potrack" in str(err)
    # the honest command gets the policy's route: the manager and the CFO
    po = w.send(po_id, SubmitForApproval(), "buyer-1")
    assert [s.step_id for s in po.approval.route.steps] == [MANAGER, CFO]
    assert po.state is POState.PENDING_APPROVAL
    w.refused(po_id, Issue(), "buyer-1", PotrackError)  # nobody approved it


def test_a_route_loaded_from_hand_written_json_is_refused(w: World) -> None:
    po_id = w.draft("500.00")
    command = loads('{"route": {"steps": [], "flags": []}}', SubmitForApproval)
    err = w.refused(po_id, command, "buyer-1", DecidedFieldError)
    assert err.fields == ("route",)


# -- change orders are compared with the approved baseline -------------------------------------------


def test_revise_with_reapproval_false_is_refused(w: World) -> None:
    po_id = w.issued()  # 1,000 USD
    million = ReviseOrder(
        changes=(LineChange(line_no=1, unit_price=money("10000.00", "USD")),),
        reason="more",
        reapproval=False,
    )
    err = w.refused(po_id, million, "buyer-1", DecidedFieldError)
    assert err.fields == ("reapproval",)
    honest = attrs.evolve(million, reapproval=None)
    po = w.send(po_id, honest, "buyer-1")
    assert po.state is POState.PENDING_APPROVAL
    assert [s.step_id for s in po.approval.route.steps] == [MANAGER, CFO]
    w.refused(po_id, Issue(), "buyer-1", PotrackError)


def _reprice(price: str) -> ReviseOrder:
    return ReviseOrder(
        changes=(LineChange(line_no=1, unit_price=money(price, "USD")),), reason="price rise"
    )


def test_revisions_creeping_past_the_threshold_need_reapproval(w: World) -> None:
    po_id = w.issued()  # approved at 1,000.00; the scenario's threshold is 10 %
    po = w.send(po_id, _reprice("10.60"), "buyer-1")  # 1,060: +6 %
    assert po.state is POState.ISSUED
    assert po.revisions[-1].reapproval is False
    last = w.svc.history(po_id)[-1].event
    assert last.explanation == (
        "no re-approval: 1,060.00 USD against the approved 1,000.00 USD is within the 10 % "
        "re-approval threshold, and the route needs no new step"
    )
    po = w.send(po_id, _reprice("11.20"), "buyer-1")  # 1,120: +5.7 % on 1,060, +12 % on 1,000
    assert po.state is POState.PENDING_APPROVAL
    assert po.approved_value == money("1000.0000", "USD")
    explanation = w.svc.history(po_id)[-1].event.explanation
    assert explanation.startswith(
        "re-approval: the value rises from the approved 1,000.00 USD to 1,120.00 USD "
        "(+12.00 %), beyond the 10 % threshold."
    )
    assert explanation.endswith(
        "No earlier approval is kept. Asked again: step L1-manager-manager."
    )
    # once re-approved, 1,120 is the new baseline
    po = w.send(po_id, RecordDecision.approve(MANAGER), "mgr-1")
    assert po.approved_value == money("1120.0000", "USD")


def test_a_revision_into_a_higher_tier_reaches_that_tiers_approver(w: World) -> None:
    po_id = w.issued("49.00")  # 4,900 USD: the manager alone
    po = w.send(po_id, _reprice("51.00"), "buyer-1")  # 5,100 USD: +4 %, but the CFO's tier
    assert po.state is POState.PENDING_APPROVAL
    assert [s.step_id for s in po.approval.route.steps] == [MANAGER, CFO]
    explanation = w.svc.history(po_id)[-1].event.explanation
    assert (
        "routes to step L2-role-cfo (level 2: any one role cfo), which the approved route did not contain"
        in explanation
    )
    w.send(po_id, RecordDecision.approve(MANAGER), "mgr-1")
    w.refused(po_id, Issue(), "buyer-1", PotrackError)
    assert w.send(po_id, RecordDecision.approve(CFO), "cfo-1").state is POState.APPROVED


def test_kept_and_asked_steps_are_named_when_the_policy_keeps_decisions(store: Any) -> None:
    w = World(store, keep_decisions_on_reroute=True)
    po_id = w.issued("49.00")
    w.send(po_id, _reprice("51.00"), "buyer-1")
    explanation = w.svc.history(po_id)[-1].event.explanation
    assert explanation.endswith("Kept: step L1-manager-manager. Asked again: step L2-role-cfo.")


# -- reassignment ------------------------------------------------------------------------------------


def test_reassign_to_oneself_or_to_someone_ineligible_is_refused(w: World) -> None:
    po_id = w.draft()
    w.send(po_id, SubmitForApproval(), "buyer-1")
    for to, why in (
        ("buyer-mgr", "may not hand a step to themselves"),
        ("recv-1", "does not hold the approver role"),
        ("req-1", "requested the document"),
        ("buyer-1", "is the document's buyer"),
        ("acme-sales", "works for supplier S-ACME"),
    ):
        move = ReassignStep(step_id=MANAGER, to_actor=ActorId(to), reason="away")
        err = w.refused(po_id, move, "buyer-mgr" if to == "buyer-mgr" else "admin-1", PotrackError)
        assert why in str(err), (to, str(err))
    cfo_po = w.draft("60.00")
    w.send(cfo_po, SubmitForApproval(), "buyer-1")
    w.send(cfo_po, RecordDecision.approve(MANAGER), "mgr-1")
    err = w.refused(
        cfo_po,
        ReassignStep(step_id=CFO, to_actor=ActorId("mgr-3"), reason="x"),
        "admin-1",
        PotrackError,
    )
    assert "does not hold role 'cfo'" in str(err)
    err = w.refused(
        cfo_po,
        ReassignStep(step_id=CFO, to_actor=ActorId("mgr-1"), reason="x"),
        "admin-1",
        PotrackError,
    )
    assert "mgr-1 already decided a step" in str(err)


def test_a_forged_reassigner_is_refused_and_the_real_one_recorded(w: World) -> None:
    po_id = w.draft()
    w.send(po_id, SubmitForApproval(), "buyer-1")
    w.at(0.5)
    forged = Reassignment(
        step_id=MANAGER, to_actor=ActorId("mgr-3"), by=ActorId("admin-1"), at=w.s.at(0), reason="r"
    )
    command = ReassignStep(step_id=MANAGER, to_actor=ActorId("mgr-3"), reason="r")
    err = w.refused(po_id, attrs.evolve(command, reassignment=forged), "buyer-1", DecidedFieldError)
    assert err.fields == ("reassignment",)
    po = w.send(po_id, command, "buyer-1")
    assert po.approval.reassignments[-1].by == "buyer-1"
    assert po.approval.reassignments[-1].at == w.s.at(0.5)
    assert w.send(po_id, RecordDecision.approve(MANAGER), "mgr-3").state is POState.APPROVED


# -- decisions: who, for whom, when --------------------------------------------------------------------


def test_a_forged_on_behalf_of_is_refused(w: World) -> None:
    po_id = w.draft()
    w.send(po_id, SubmitForApproval(), "buyer-1")
    forged = ApprovalDecision(
        step_id=MANAGER,
        actor=ActorId("mgr-3"),
        decision=Decision.APPROVE,
        at=w.s.at(0),
        on_behalf_of=ActorId("mgr-1"),
    )
    command = RecordDecision(step_id=MANAGER, verdict=Decision.APPROVE, decision=forged)
    err = w.refused(po_id, command, "mgr-3", DecidedFieldError)
    assert err.fields == ("decision",)
    err = w.refused(po_id, RecordDecision.approve(MANAGER), "mgr-3", NotPermittedError)
    assert "mgr-3 is not an approver of step L1-manager-manager" in str(err)


def test_a_decision_back_dated_into_an_ended_delegation_is_refused(w: World) -> None:
    po_id = w.draft()
    w.send(po_id, SubmitForApproval(), "buyer-1")
    w.at(8)  # the delegation from mgr-1 to mgr-2 ran from day 1 to day 3
    err = w.refused(po_id, RecordDecision.approve(MANAGER), "mgr-2", NotPermittedError)
    assert "holds no delegation" in str(err)
    back_dated = ApprovalDecision(
        step_id=MANAGER, actor=ActorId("mgr-2"), decision=Decision.APPROVE, at=w.s.at(2)
    )
    crafted = RecordDecision(step_id=MANAGER, verdict=Decision.APPROVE, decision=back_dated)
    w.refused(po_id, crafted, "mgr-2", DecidedFieldError)
    # inside the period, the library records whom the delegate acted for, and when
    w.at(2)
    po = w.send(po_id, RecordDecision.approve(MANAGER), "mgr-2")
    decision = po.approval.decisions[-1]
    assert (decision.actor, decision.on_behalf_of, decision.at) == ("mgr-2", "mgr-1", w.s.at(2))


def test_the_buyer_cannot_approve_their_own_order(w: World) -> None:
    # req-2 reports to buyer-mgr, who also buys: the route names the buyer as the manager...
    po_id = w.draft(buyer="buyer-mgr", requester=ActorId("req-2"))
    po = w.send(po_id, SubmitForApproval(), "buyer-mgr")
    assert po.approval.route.steps[0].candidates == ("buyer-mgr",)
    err = w.refused(po_id, RecordDecision.approve(MANAGER), "buyer-mgr", NotPermittedError)
    assert "buyer-mgr is the buyer of this document and may not approve it" in str(err)
    # ...so an admin hands the step to someone else, never back to the buyer
    back = ReassignStep(step_id=MANAGER, to_actor=ActorId("buyer-mgr"), reason="me")
    w.refused(po_id, back, "admin-1", PotrackError)
    w.send(po_id, ReassignStep(step_id=MANAGER, to_actor=ActorId("mgr-3"), reason="sod"), "admin-1")
    assert w.send(po_id, RecordDecision.approve(MANAGER), "mgr-3").state is POState.APPROVED


# -- who is acting -------------------------------------------------------------------------------------


def test_an_actor_claiming_roles_the_directory_never_gave_is_refused(w: World) -> None:
    po_id = w.draft("60.00")
    w.send(po_id, SubmitForApproval(), "buyer-1")
    w.send(po_id, RecordDecision.approve(MANAGER), "mgr-1")
    real = w.s.directory.actor(ActorId("mgr-2"))
    assert real is not None
    claims_cfo = attrs.evolve(real, roles=real.roles | {"cfo"})
    err = w.refused(po_id, RecordDecision.approve(CFO), claims_cfo, NotPermittedError)
    assert (
        "the Actor given for mgr-2 claims roles {approver, cfo} (the directory says {approver})"
        in str(err)
    )
    stranger = Actor(id=ActorId("nobody"), name="Nobody", roles=frozenset({"cfo"}))
    err = w.refused(po_id, RecordDecision.approve(CFO), stranger, NotPermittedError)
    assert "nobody is not in the directory" in str(err)
    w.refused(po_id, RecordDecision.approve(CFO), "nobody", NotPermittedError)
    assert w.send(po_id, RecordDecision.approve(CFO), "cfo-1").state is POState.APPROVED


# -- numbers ---------------------------------------------------------------------------------------------


def test_issue_with_a_number_another_po_holds_is_refused(store: Any) -> None:
    w = World(store, allocator=False)  # the host numbers POs itself
    first = w.approved()
    second = w.approved()
    w.send(first, Issue(number="PO-OPS-2026-00001"), "buyer-1")
    err = w.refused(second, Issue(number="PO-OPS-2026-00001"), "buyer-1", DuplicateError)
    assert f"held by {first}" in str(err)
    assert (
        w.send(second, Issue(number="PO-OPS-2026-00002"), "buyer-1").number == "PO-OPS-2026-00002"
    )


def test_a_number_of_ones_own_is_refused_where_potrack_allocates(w: World) -> None:
    po_id = w.approved()
    err = w.refused(po_id, Issue(number="PO-OPS-2026-00777"), "buyer-1", DecidedFieldError)
    assert err.fields == ("number",)
    assert w.send(po_id, Issue(), "buyer-1").number == "PO-OPS-2026-00001"


# -- departments -------------------------------------------------------------------------------------------


def test_cancel_of_another_departments_po_is_refused(w: World) -> None:
    po_id = w.approved()  # an OPS order
    err = w.refused(po_id, Cancel(reason="mine now"), "buyer-it", NotPermittedError)
    assert "buyer-it (department IT) may not cancel on" in str(err)
    assert w.send(po_id, Cancel(reason="not needed"), "buyer-1").state is POState.CANCELLED


def test_a_central_purchasing_department_buys_for_others(store: Any) -> None:
    w = World(store, access=DepartmentAccess(buys_for={"IT": frozenset({"OPS"})}))
    po_id = w.approved()
    assert w.send(po_id, Cancel(reason="bought centrally"), "buyer-it").state is POState.CANCELLED


def test_a_buyer_cannot_create_an_order_for_another_department(w: World) -> None:
    doc = w.s.po_document(buyer=ActorId("buyer-it"))  # OPS
    with pytest.raises(NotPermittedError, match="buyer-it \\(department IT\\) may not create"):
        w.svc.create_order(doc, "buyer-it")
    with pytest.raises(PotrackError):
        w.svc.get_order(doc.id)


def test_every_trail_replays_to_its_stored_order(w: World) -> None:
    po_id = w.issued("49.00")
    w.send(po_id, _reprice("51.00"), "buyer-1")
    po, trail = w.state(po_id)
    assert replay(trail) == po


def test_trails_written_before_commands_still_replay() -> None:
    """A decision record of the old shape (only the signed decision) replays to the same PO; sent
    live, the same event is refused as carrying a decided field."""
    import json

    from potrack import dumps as dump
    from potrack.events import TransitionRecord

    s = Scenario()
    trail = []
    applied = s.lifecycle.create(s.po_document(), s.buyer, s.at(0))
    trail.append(applied.record)
    for command, who, day in (
        (SubmitForApproval(), s.buyer, 0.1),
        (RecordDecision.approve(MANAGER, reason="fine"), s.manager, 0.2),
    ):
        applied = s.lifecycle.apply(applied.document, command, who, s.at(day))
        trail.append(applied.record)
    old_shape = []
    for record in trail:
        data = json.loads(dump(record))
        if data["event"]["type"] == "RecordDecision":
            for name in ("step_id", "verdict", "reason"):
                del data["event"][name]
        old_shape.append(loads(json.dumps(data), TransitionRecord))
    assert old_shape[-1].event.step_id is None
    rebuilt = replay(old_shape)
    assert rebuilt == applied.document
    assert rebuilt.approved_value == money("1000.00", "USD")
    with pytest.raises(DecidedFieldError):
        s.lifecycle.apply(s.submitted_po(), old_shape[-1].event, s.manager, s.at(1))


# -- the match is computed, not claimed ----------------------------------------------------------------


def test_a_claimed_match_status_and_payable_are_refused_and_the_engine_decides(w: World) -> None:
    from potrack.events import AcceptFinding, ReceiveGoods, RecordInvoice, RecordMatch
    from potrack.records import InvoiceStatus

    po_id = w.issued()
    po = w.svc.get_order(po_id)
    w.send(po_id, ReceiveGoods(receipt=w.s.receipt(po, "100")), "recv-1")
    inv = w.s.invoice(po, "100", price="15.00")  # 50 % above the PO price
    w.send(po_id, RecordInvoice(invoice=inv), "ap-1")
    claimed = RecordMatch(
        invoice_id=inv.id, status=InvoiceStatus.MATCHED, payable=money("1500.00", "USD")
    )
    err = w.refused(po_id, claimed, "ap-1", DecidedFieldError)
    assert err.fields == ("status", "payable")
    text = (
        f'{{"invoice_id": "{inv.id}", "status": "matched", '
        '"payable": {"amount": "1500.00", "currency": "USD"}}'
    )
    from_json = loads(text, RecordMatch)
    w.refused(po_id, from_json, "ap-1", DecidedFieldError)
    accept = (AcceptFinding(code="price", invoice_line_no=1, reason="I say so"),)
    w.refused(po_id, RecordMatch(invoice_id=inv.id, accept=accept), "ap-1", NotPermittedError)
    po = w.send(
        po_id, RecordMatch(invoice_id=inv.id), "ap-1"
    )  # the engine, on the stored documents
    assert po.invoice(inv.id).status is InvoiceStatus.HELD
    assert po.invoice(inv.id).payable == 0
    fact = w.svc.history(po_id)[-1].event
    assert fact.findings and "above the PO price" in fact.findings[0]


def test_a_self_approval_appended_around_the_lifecycle_is_reported_by_verify(w: World) -> None:
    """The requester's own 6,000 USD PO 'approved' by hand-built records saved in a unit of work
    replays cleanly, but its approval facts do not hold: verify says so."""
    from potrack import audit

    po_id = w.draft("60.00")
    w.send(po_id, SubmitForApproval(), "buyer-1")
    honest = w.approved("60.00")  # the shape of the records a forger copies
    _, trail = w.state(honest)
    _, forged_trail = w.state(po_id)
    forged = []
    for n, record in enumerate(trail[2:4], start=len(forged_trail) + 1):
        decision = attrs.evolve(record.event.decision, actor=ActorId("req-1"))
        forged.append(
            attrs.evolve(
                record,
                aggregate_id=po_id,
                version=n,
                actor="req-1",
                label=po_id,
                event=attrs.evolve(record.event, decision=decision),
            )
        )
    approved = replay([*forged_trail, *forged])
    assert approved.state is POState.APPROVED
    assert audit.verify(w.svc.store).ok
    with w.svc.store.unit_of_work() as uow:
        uow.purchase_orders.save(replay([*forged_trail, forged[0]]))
        uow.purchase_orders.save(approved)
        for record in forged:
            uow.transitions.append(record)
    report = audit.verify(w.svc.store)
    assert not report.ok
    kinds = {(f.kind, f.subject) for f in report.findings}
    assert ("approval not proven", f"purchase_order {po_id}") in kinds
    details = " | ".join(f.detail for f in report.findings)
    assert (
        "req-1 approved step L1-manager-manager of a document they requested or bought" in details
    )
    assert "req-1 approved step L2-role-cfo, whose approvers were cfo-1" in details
