"""Anyone sends any command, honest or crafted, in any order: approval cannot be walked around.

A hypothesis state machine drives :class:`~potrack.service.Purchasing` with every actor of the
scenario (and an impostor whose ``Actor`` claims roles the directory never gave), sending honest
commands and crafted ones: caller routes, re-approval flags, signed decisions with a chosen time or
principal, reassignments with a chosen reassigner, numbers of their own, events loaded from
hand-written JSON.  After every step it checks, computing each expectation itself from the policy's
plain rules (not with the library's routing code):

* every approved or issued PO carries the route its approved value calls for (the manager always;
  the CFO from 5,000 USD), and every step of it was approved by an eligible person — the
  requester's manager or the CFO as the directory says, or whoever it was properly reassigned to,
  or their delegate inside the delegation's period — never by the requester, the buyer, or one
  person twice;
* an issued PO is never worth more than its approved value plus the 10 % threshold, and never
  above 5,000 USD without the CFO's step;
* every decision is dated at the time the service recorded it;
* PO numbers are unique across the store; the trail replays to every stored PO;
* a refused command leaves the PO and its trail exactly as they were.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from potrack import dumps, loads
from potrack.events import (
    Cancel,
    Event,
    Issue,
    ReassignStep,
    RecordDecision,
    ReviseOrder,
    SubmitForApproval,
)
from potrack.exceptions import PotrackError
from potrack.lifecycle import replay
from potrack.memory import InMemoryStore
from potrack.money import money
from potrack.records import (
    Actor,
    ActorId,
    ApprovalDecision,
    Decision,
    Delegation,
    LineChange,
    POState,
    PurchaseOrder,
    PurchaseOrderId,
    Reassignment,
    Role,
    Route,
    RouteStep,
)
from potrack.service import Purchasing
from potrack.testing.scenario import Scenario
from tests.test_approval_attacks import World

MANAGER_STEP = "L1-manager-manager"
CFO_STEP = "L2-role-cfo"
CFO_FROM = Decimal(5000)
THRESHOLD = Decimal("0.10")
APPROVED_OR_LATER = {
    POState.APPROVED,
    POState.ISSUED,
    POState.ACKNOWLEDGED,
    POState.IN_FULFILMENT,
    POState.CHANGE_PROPOSED,
    POState.SUPPLIER_REJECTED,
}


def world() -> tuple[Scenario, Purchasing, list[Delegation]]:
    """The attack tests' world (an IT buyer, a spare approver, mgr-1 delegating to mgr-2 from day
    1 to day 3) on an in-memory store."""
    w = World(InMemoryStore())
    return w.s, w.svc, [w.delegation]


PEOPLE = [
    "req-1",
    "buyer-1",
    "buyer-2",
    "buyer-it",
    "mgr-1",
    "mgr-2",
    "mgr-3",
    "cfo-1",
    "admin-1",
    "recv-1",
    "acme-sales",
]
people = st.sampled_from(PEOPLE)
buyers = st.sampled_from(["buyer-1", "buyer-1", "buyer-2", "buyer-it", "req-1", "mgr-1"])
approvers = st.sampled_from(["mgr-1", "mgr-2", "mgr-3", "cfo-1", "req-1", "buyer-1", "admin-1"])
recent = st.integers(0, 5)
prices = st.sampled_from(["10.00", "46.00", "48.00", "49.00", "60.00"])
factors = st.sampled_from(["0.5", "1.04", "1.08", "1.15", "2", "20"])
steps = st.sampled_from([MANAGER_STEP, CFO_STEP, "L9-made-up"])
verdicts = st.sampled_from([Decision.APPROVE, Decision.APPROVE, Decision.REJECT, Decision.COMMENT])


class Adversary(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s, self.svc, self.delegations = world()
        self.store = self.svc.store
        self.ids: list[str] = []
        self.baseline: dict[str, Decimal] = {}
        self.refused = 0
        self.applied = 0

    # -- sending ------------------------------------------------------------------------------

    def _snapshot(self, po_id: str) -> tuple[PurchaseOrder | None, int]:
        with self.store.unit_of_work() as uow:
            return (
                uow.purchase_orders.get(PurchaseOrderId(po_id)),
                len(uow.transitions.for_aggregate("purchase_order", po_id)),
            )

    def send(self, po_id: str, command: Event, who: str | Actor) -> None:
        before = self._snapshot(po_id)
        was = before[0].state if before[0] is not None else None
        try:
            applied = self.svc.order(po_id, command, who)
        except PotrackError:
            self.refused += 1
            assert self._snapshot(po_id) == before, "a refused command changed the store"
            return
        self.applied += 1
        doc = applied.document
        if doc.state is POState.APPROVED and was is not POState.APPROVED:
            self.baseline[doc.id] = doc.amount.amount

    def po(self, index: int) -> PurchaseOrder | None:
        if not self.ids:
            return None
        po_id = self.ids[-1 - index % len(self.ids)]  # mostly the newest ones
        return self._snapshot(po_id)[0]

    # -- rules -----------------------------------------------------------------------------------

    @rule(days=st.sampled_from([0.1, 0.5, 1, 2]))
    def tick(self, days: float) -> None:
        self.s.clock.advance(days=days)

    @rule(who=buyers, price=prices, dept=st.sampled_from(["OPS", "OPS", "IT"]))
    def create(self, who: str, price: str, dept: str) -> None:
        doc = self.s.po_document(amount=price, department=dept, buyer=ActorId(who))
        try:
            self.svc.create_order(doc, who)
        except PotrackError:
            self.refused += 1
            assert self._snapshot(doc.id)[0] is None
            return
        self.ids.append(doc.id)

    @rule(price=prices)
    def honest_path(self, price: str) -> None:
        """Create, submit, approve as the route asks, issue: the states the attacks then target."""
        self.create("buyer-1", price, "OPS")
        i = len(self.ids) - 1
        self.submit(i, "buyer-1", forged=False)
        self.decide(i, "mgr-1", MANAGER_STEP, Decision.APPROVE)
        self.decide(i, "cfo-1", CFO_STEP, Decision.APPROVE)
        self.issue(i, "buyer-1", None)

    @rule(i=recent, who=buyers, forged=st.booleans())
    def submit(self, i: int, who: str, forged: bool) -> None:
        po = self.po(i)
        if po is None:
            return
        route = Route(steps=()) if forged else None
        self.send(po.id, SubmitForApproval(route=route), who)

    @rule(i=recent, who=approvers, step=steps, verdict=verdicts)
    def decide(self, i: int, who: str, step: str, verdict: Decision) -> None:
        po = self.po(i)
        if po is not None:
            self.send(po.id, RecordDecision(step_id=step, verdict=verdict), who)

    @rule(
        i=recent,
        who=approvers,
        principal=st.sampled_from([None, "mgr-1", "cfo-1"]),
        step=steps,
        back=st.sampled_from([0, 2, 10]),
    )
    def decide_crafted(
        self, i: int, who: str, principal: str | None, step: str, back: float
    ) -> None:
        """A decision the caller signed: their own time (back-dated) and principal."""
        po = self.po(i)
        if po is None:
            return
        decision = ApprovalDecision(
            step_id=step,
            actor=ActorId(who),
            decision=Decision.APPROVE,
            at=self.s.clock() - timedelta(days=back),
            on_behalf_of=principal,
        )
        self.send(
            po.id, RecordDecision(step_id=step, verdict=Decision.APPROVE, decision=decision), who
        )

    @rule(i=recent, who=people, to=people, step=steps, crafted=st.booleans())
    def reassign(self, i: int, who: str, to: str, step: str, crafted: bool) -> None:
        po = self.po(i)
        if po is None:
            return
        move = (
            Reassignment(
                step_id=step,
                to_actor=ActorId(to),
                by=ActorId("admin-1"),
                at=self.s.clock(),
                reason="r",
            )
            if crafted
            else None
        )
        command = ReassignStep(step_id=step, to_actor=ActorId(to), reason="away", reassignment=move)
        self.send(po.id, command, who)

    @rule(i=recent, who=buyers, own=st.sampled_from([None, "PO-OPS-2026-00001"]))
    def issue(self, i: int, who: str, own: str | None) -> None:
        po = self.po(i)
        if po is not None:
            self.send(po.id, Issue(number=own), who)

    @rule(i=recent, who=buyers, factor=factors, flag=st.sampled_from([None, False]))
    def revise(self, i: int, who: str, factor: str, flag: bool | None) -> None:
        po = self.po(i)
        if po is None:
            return
        price = money(po.lines[0].unit_price.amount * Decimal(factor), po.currency)
        change = LineChange(line_no=1, unit_price=price)
        self.send(po.id, ReviseOrder(changes=(change,), reason="r", reapproval=flag), who)

    @rule(i=recent, times=st.integers(2, 4), factor=st.sampled_from(["1.04", "1.06", "1.09"]))
    def creep(self, i: int, times: int, factor: str) -> None:
        """Small revisions in a row of the newest issued PO, each under the threshold on its own."""
        with self.store.unit_of_work() as uow:
            issued = [
                k
                for k, po_id in enumerate(reversed(self.ids))
                if uow.purchase_orders.require(PurchaseOrderId(po_id)).state is POState.ISSUED
            ]
        target = issued[i % len(issued)] if issued else i
        for _ in range(times):
            self.revise(target, "buyer-1", factor, None)

    @rule(i=recent, who=buyers)
    def cancel(self, i: int, who: str) -> None:
        po = self.po(i)
        if po is not None:
            self.send(po.id, Cancel(reason="no longer needed"), who)

    @rule(
        i=recent,
        who=people,
        text=st.sampled_from(
            [
                '{"route": {"steps": [], "flags": []}}',
                '{"reason": "r", "changes": [], "reapproval": false}',
                '{"step_id": "L1-manager-manager", "verdict": "approve", "decision": '
                '{"step_id": "L1-manager-manager", "actor": "mgr-2", "decision": "approve", '
                '"at": "2026-01-06T09:00:00+00:00", "on_behalf_of": "mgr-1"}}',
            ]
        ),
    )
    def from_json(self, i: int, who: str, text: str) -> None:
        """Commands loaded from hand-written JSON with potrack's own converter."""
        po = self.po(i)
        if po is None:
            return
        kind: type[Event] = (
            SubmitForApproval
            if text.startswith('{"route"')
            else ReviseOrder
            if text.startswith('{"reason"')
            else RecordDecision
        )
        self.send(po.id, loads(text, kind), who)

    @rule(i=recent, claims=st.sampled_from(["buyer-1", "mgr-2", "req-1"]))
    def impostor(self, i: int, claims: str) -> None:
        """An Actor object claiming every role for a real id."""
        po = self.po(i)
        if po is None:
            return
        real = self.s.directory.actor(ActorId(claims))
        assert real is not None
        forged = attrs.evolve(real, roles=frozenset({Role.BUYER, Role.APPROVER, Role.ADMIN, "cfo"}))
        for command in (
            RecordDecision.approve(MANAGER_STEP),
            RecordDecision.approve(CFO_STEP),
            Issue(),
        ):
            self.send(po.id, command, forged)

    # -- invariants ------------------------------------------------------------------------------

    def _eligible(self, po: PurchaseOrder, step: RouteStep, who: str) -> bool:
        """Could ``who`` decide ``step`` of ``po``, by the plain rules (not the library's)?"""
        person = self.s.directory.actor(ActorId(who))
        if person is None or who in (po.requester, po.buyer):
            return False
        state = po.approval
        assert state is not None
        handed = [
            m.to_actor
            for m in state.reassignments
            if m.step_id == step.step_id and m.by != m.to_actor
        ]
        if step.step_id == MANAGER_STEP:
            by_rule = who == "mgr-1"  # req-1's manager in the directory
            return by_rule or (who in handed and person.has_role(Role.APPROVER))
        if step.step_id == CFO_STEP:
            return person.has_role("cfo")
        return False

    @invariant()
    def approval_cannot_be_skipped(self) -> None:
        with self.store.unit_of_work() as uow:
            orders = list(uow.purchase_orders.all())
            trails = {
                po.id: uow.transitions.for_aggregate("purchase_order", po.id) for po in orders
            }
        numbers = [po.number for po in orders if po.number is not None]
        assert len(numbers) == len(set(numbers)), f"a number is held twice: {numbers}"
        for po in orders:
            records = trails[po.id]
            assert replay(records) == po
            for record in records:
                if isinstance(record.event, RecordDecision):
                    assert record.event.decision is not None
                    assert record.event.decision.at == record.at, "a decision kept a caller's time"
                    assert record.event.decision.actor == record.actor
            if po.state not in APPROVED_OR_LATER:
                continue
            base = self.baseline.get(po.id)
            assert base is not None, f"{po.id} reached {po.state} without being seen approved"
            state = po.approval
            assert state is not None
            wanted = {MANAGER_STEP} | ({CFO_STEP} if base >= CFO_FROM else set())
            assert {step.step_id for step in state.route.steps} == wanted
            principals: list[str] = []
            for step in state.route.steps:
                approvals = [
                    d
                    for d in state.decisions
                    if d.step_id == step.step_id and d.decision is Decision.APPROVE
                ]
                assert approvals, f"{po.id}: step {step.step_id} was never approved"
                for d in approvals:
                    principal = d.on_behalf_of or d.actor
                    assert d.actor not in (po.requester, po.buyer)
                    assert self._eligible(po, step, principal), (po.id, step.step_id, principal)
                    if d.on_behalf_of is not None:
                        assert any(
                            g.delegator == d.on_behalf_of
                            and g.delegate == d.actor
                            and g.start <= d.at <= g.end
                            for g in self.delegations
                        ), f"{d.actor} acted for {d.on_behalf_of} outside a delegation"
                    principals.append(principal)
            assert len(principals) == len(set(principals)), "one person filled two steps"
            amount = po.amount.amount
            if po.state is not POState.APPROVED:
                assert amount <= base * (1 + THRESHOLD), f"{po.id} issued above its approval"
                if amount >= CFO_FROM:
                    assert CFO_STEP in wanted, f"{po.id} issued above 5,000 without the CFO"


TestAdversary = Adversary.TestCase
TestAdversary.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_the_honest_path_reaches_issue_through_the_machine() -> None:
    """The machine's world is usable: an honest sequence approves and issues a CFO-sized PO."""
    m = Adversary()
    m.create(who="buyer-1", price="60.00", dept="OPS")
    po_id = m.ids[0]
    m.submit(0, "buyer-1", forged=False)
    m.tick(0.5)
    m.decide(0, "mgr-1", MANAGER_STEP, Decision.APPROVE)
    m.decide(0, "cfo-1", CFO_STEP, Decision.APPROVE)
    m.issue(0, "buyer-1", None)
    po = m._snapshot(po_id)[0]
    assert po is not None and po.state is POState.ISSUED
    assert po.number == "PO-OPS-2026-00001"
    m.approval_cannot_be_skipped()


@pytest.mark.parametrize("forged", [True, False])
def test_a_forged_route_never_reaches_the_machine_state(forged: bool) -> None:
    m = Adversary()
    m.create(who="buyer-1", price="60.00", dept="OPS")
    m.submit(0, "buyer-1", forged=forged)
    po = m._snapshot(m.ids[0])[0]
    assert po is not None
    assert po.state is (POState.DRAFT if forged else POState.PENDING_APPROVAL)


def test_dumps_of_a_command_is_what_a_host_would_send() -> None:
    text = dumps(RecordDecision.approve(MANAGER_STEP))
    assert '"decision":null' in text and '"verdict":"approve"' in text
