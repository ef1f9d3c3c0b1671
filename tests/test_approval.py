"""Approval: routing by every condition, explanations, quorums, flags, policy files, linting,
reminders and escalations, simulation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from potrack import approval as ap
from potrack.events import RecordDecision, SubmitForApproval
from potrack.exceptions import ConfigurationError, NotPermittedError, PolicyError
from potrack.memory import InMemoryBudgets, InMemoryDirectory, StaticRates
from potrack.money import money
from potrack.records import (
    Actor,
    ActorId,
    ApprovalDecision,
    ApprovalState,
    Decision,
    POState,
    PurchaseOrder,
    Requisition,
    Role,
    Supplier,
)
from potrack.testing.samples import sample_po, sample_po_line, sample_requisition
from tests.conftest import ROOT

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def person(actor_id: str, *roles: str, **over: Any) -> Actor:
    return Actor(
        id=ActorId(actor_id),
        name=actor_id,
        roles=frozenset(roles or {"approver"}),
        department=over.pop("department", "OPS"),
        **over,
    )


PEOPLE = [
    person("req-1", "requester", manager="mgr-1"),
    person("buyer-1", "buyer", manager="mgr-1"),
    person("mgr-1", "approver", manager="dir-1"),
    person("dir-1", "approver", manager="ceo-1"),
    person("ceo-1", "ceo"),
    person("fin-1", "finance"),
    person("fin-2", "finance"),
    person("fin-3", "finance"),
    person("cfo-1", "cfo", manager="ceo-1"),
    person("it-1", "it", department="IT"),
    person("proc-1", "procurement"),
    person("bc-1", "budget-committee"),
    person("bc-2", "budget-committee"),
    person("bc-3", "budget-committee"),
]
DIRECTORY = InMemoryDirectory(PEOPLE, extra_departments=frozenset({"IT", "FIN"}))
SUPPLIERS = [
    Supplier(id="S-ACME", name="Acme Tool Works", code="ACME", preferred=True),
    Supplier(id="S-SLOW", name="Slow and Co", code="SLOW"),
    Supplier(id="S-BAD", name="Bad Parts", code="BAD", blocked=True, blocked_reason="failed audit"),
]


def policy_file() -> ap.Policy:
    return ap.load_policy(ROOT / "examples" / "policy.toml", directory=DIRECTORY)


def router(policy: ap.Policy | None = None, **kw: Any) -> ap.Router:
    return ap.Router(policy or policy_file(), DIRECTORY, SUPPLIERS, **kw)


def po(amount: str = "10.00", quantity: str = "100", **over: Any) -> PurchaseOrder:
    line_over = {k: over.pop(k) for k in ("category", "cost_centre", "budget") if k in over}
    line = sample_po_line(
        unit_price=money(amount, over.get("currency", "USD")),
        quantity=Decimal(quantity),
        **line_over,
    )
    return attrs.evolve(sample_po(lines=1), lines=(line,), **over)


def steps(route: Any) -> list[tuple[int, str, tuple[str, ...]]]:
    return [(s.level, s.step_id, s.candidates) for s in route.steps]


# -- routing --------------------------------------------------------------------------------------------


def test_small_order_needs_the_manager_only() -> None:
    route = router().route(po("10.00"), AT)  # 1,000 USD
    assert steps(route) == [(1, "L1-manager-manager", ("mgr-1",))]
    assert route.steps[0].because == ("rule manager: amount 1,000.00 USD ≥ 0.00 USD",)
    assert route.amount_base == money("1000.00", "USD")


def test_large_order_explains_why_the_cfo_must_sign() -> None:
    route = router().route(po("600.00"), AT)  # 60,000 USD
    assert steps(route) == [
        (1, "L1-manager-manager", ("mgr-1",)),
        (2, "L2-role-finance", ("fin-1", "fin-2", "fin-3")),
        (3, "L3-role-cfo", ("cfo-1",)),
    ]
    assert route.steps[2].because == ("rule cfo: amount 60,000.00 USD ≥ 50,000.00 USD",)
    assert route.steps[2].rules == ("cfo",)


@pytest.mark.parametrize(
    ("amount", "finance"),
    [("49.99", False), ("50.00", True), ("499.99", True), ("500.00", False)],
)
def test_amount_bounds_are_inclusive_below_and_exclusive_above(amount: str, finance: bool) -> None:
    # 4,999 / 5,000 / 49,999 / 50,000 USD against finance = [5,000, 50,000)
    rules = {r for s in router().route(po(amount), AT).steps for r in s.rules}
    assert ("finance" in rules) is finance


def test_inclusive_maximum_is_honoured() -> None:
    rng = ap.AmountRange(
        maximum=Decimal(5000), max_inclusive=True, min_inclusive=False, minimum=Decimal(0)
    )
    assert rng.contains(Decimal(5000))
    assert not rng.contains(Decimal(0))
    assert rng.describe(money("5000", "USD")) == "amount 5,000.00 USD > 0.00 USD and ≤ 5,000.00 USD"


def test_one_approver_asked_by_two_rules_is_one_step_with_both_reasons() -> None:
    route = router().route(po("60.00", category="it-hardware", supplier_id="S-SLOW"), AT)
    level2 = {s.step_id: s for s in route.steps if s.level == 2}
    assert set(level2) == {"L2-role-finance", "L2-role-it", "L2-role-procurement"}
    assert level2["L2-role-it"].because == (
        "rule it-hardware: amount 6,000.00 USD ≥ 1,000.00 USD, category it-hardware",
    )
    assert level2["L2-role-procurement"].because == (
        "rule non-preferred: supplier S-SLOW (Slow and Co) is not a preferred supplier",
    )


def test_foreign_documents_are_converted_with_the_hosts_rates() -> None:
    euro = po("50.00", currency="EUR")  # 5,000 EUR
    with pytest.raises(ap.RoutingError, match="has no exchange rates"):
        router().route(euro, AT)
    route = router(rates=StaticRates({("EUR", "USD"): Decimal("1.10")})).route(euro, AT)
    assert route.amount_base == money("5500.0000", "USD")
    assert "L2-role-finance" in [s.step_id for s in route.steps]


def test_department_and_cost_centre_conditions() -> None:
    policy = ap.Policy(
        name="p",
        base_currency="USD",
        when_no_rule_matches="auto_approve",
        rules=(
            ap.Rule(
                id="ops",
                departments=frozenset({"OPS"}),
                steps=(ap.StepSpec(level=1, approver=ap.Approver.user("dir-1")),),
            ),
            ap.Rule(
                id="cc",
                cost_centres=frozenset({"CC-9"}),
                steps=(ap.StepSpec(level=1, approver=ap.Approver.role("cfo")),),
            ),
        ),
    )
    r = router(policy)
    assert [s.step_id for s in r.route(po(), AT).steps] == ["L1-user-dir-1"]
    assert [s.step_id for s in r.route(po(cost_centre="CC-9", department="FIN"), AT).steps] == [
        "L1-role-cfo"
    ]
    assert r.route(po(department="FIN"), AT).steps == ()


def test_budget_conditions_use_the_hosts_budgets() -> None:
    budgets = InMemoryBudgets({"B-OPS": money("2000", "USD")})
    r = router(budgets=budgets)
    over = r.route(po("30.00", budget="B-OPS"), AT)  # 3,000 against 2,000 left
    assert "L4-role-budget-committee" in [s.step_id for s in over.steps]
    assert over.steps[-1].quorum.count == 2
    assert any(
        f.startswith("budget_overrun: budget B-OPS has 2,000.00 USD left") for f in over.flags
    )
    within = r.route(po("10.00", budget="B-OPS"), AT)
    assert "L4-role-budget-committee" not in [s.step_id for s in within.steps]


def test_host_defined_conditions() -> None:
    policy = ap.Policy(
        name="p",
        base_currency="USD",
        rules=(
            ap.Rule(id="base", steps=(ap.StepSpec(level=1, approver=ap.Approver.manager()),)),
            ap.Rule(
                id="capex",
                conditions=("capex",),
                steps=(ap.StepSpec(level=2, approver=ap.Approver.role("cfo")),),
            ),
        ),
    )
    with pytest.raises(ConfigurationError, match=r"uses conditions \['capex'\]"):
        ap.Router(policy, DIRECTORY, SUPPLIERS)
    r = ap.Router(
        policy,
        DIRECTORY,
        SUPPLIERS,
        conditions={"capex": lambda doc: doc.lines[0].category == "machines"},
    )
    assert len(r.route(po(category="machines"), AT).steps) == 2
    assert r.route(po(category="machines"), AT).steps[1].because == ("rule capex: condition capex",)
    assert len(r.route(po(), AT).steps) == 1


def test_requisitions_are_routed_too() -> None:
    route = router().route(sample_requisition(), AT)
    assert steps(route) == [(1, "L1-manager-manager", ("mgr-1",))]


def test_no_rule_matches() -> None:
    strict = ap.Policy(
        name="strict",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="big",
                amount=ap.AmountRange(minimum=Decimal(10_000)),
                steps=(ap.StepSpec(level=1, approver=ap.Approver.role("cfo")),),
            ),
        ),
    )
    with pytest.raises(ap.RoutingError, match="no rule of policy 'strict' matches"):
        router(strict).route(po(), AT)
    lenient = attrs.evolve(strict, when_no_rule_matches="auto_approve")
    assert router(lenient).route(po(), AT).steps == ()


def test_a_step_nobody_but_the_requester_can_fill_is_a_routing_error() -> None:
    policy = ap.Policy(
        name="p",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="self", steps=(ap.StepSpec(level=1, approver=ap.Approver.role("requester")),)
            ),
        ),
    )
    with pytest.raises(ap.RoutingError, match="nobody but the requester holds role 'requester'"):
        router(policy).route(po(), AT)


@given(
    st.sampled_from(["5.00", "49.99", "50.00", "600.00"]),
    st.sampled_from(["hardware", "it-hardware"]),
    st.sampled_from(["S-ACME", "S-SLOW"]),
)
def test_routing_is_a_pure_function(amount: str, category: str, supplier: str) -> None:
    doc = po(amount, category=category, supplier_id=supplier)
    r = router()
    assert r.route(doc, AT) == r.route(doc, AT) == router().route(doc, AT)


# -- flags ---------------------------------------------------------------------------------------------


def test_supplier_flags() -> None:
    assert router().route(po(supplier_id="S-SLOW"), AT).flags == (
        "non_preferred_supplier: supplier S-SLOW (Slow and Co) is not a preferred supplier",
    )
    assert router().route(po(supplier_id="S-BAD"), AT).flags == (
        "blocked_supplier: supplier S-BAD (Bad Parts) is blocked (failed audit)",
    )
    assert router().route(po(), AT).flags == ()


class History:
    def __init__(self, docs: list[Requisition | PurchaseOrder]) -> None:
        self.docs = docs

    def recent(
        self, requester: str, supplier_id: str, since: datetime, until: datetime
    ) -> list[Any]:
        return [
            d
            for d in self.docs
            if d.requester == requester
            and since <= d.created_at < until
            and (getattr(d, "supplier_id", None) == supplier_id)
        ]


def test_split_purchases_are_flagged() -> None:
    earlier = [po("20.00", id=f"PO-E{i}", created_at=AT - timedelta(days=i + 1)) for i in range(2)]
    r = router(history=History(earlier))
    route = r.route(po("15.00", id="PO-NOW", created_at=AT), AT)  # 2,000 + 2,000 + 1,500 = 5,500
    assert route.flags == (
        "split_purchase: with PO-E0, PO-E1 by req-1 for supplier S-ACME within 7 days the total "
        "is 5,500.00 USD, reaching the 5,000.00 USD threshold each stays under",
    )
    old = [po("20.00", id=f"PO-O{i}", created_at=AT - timedelta(days=30)) for i in range(3)]
    assert router(history=History(old)).route(po("15.00", created_at=AT), AT).flags == ()
    big = router(history=History(earlier)).route(po("60.00", created_at=AT), AT)
    assert not any(f.startswith("split_purchase") for f in big.flags)


# -- decisions -----------------------------------------------------------------------------------------


def state_for(route: Any, requester: str = "req-1") -> ApprovalState:
    return ApprovalState(route=route, started_at=AT, requester=requester)


def decide(
    state: ApprovalState, step: str, who: str, what: Decision = Decision.APPROVE, hours: int = 1
) -> ApprovalState:
    decision = ApprovalDecision(
        step_id=step, actor=ActorId(who), decision=what, at=AT + timedelta(hours=hours)
    )
    denied, refused, _ = ap.decision_problems(
        state, decision, DIRECTORY.actor(ActorId(who)), DIRECTORY
    )
    assert not denied and not refused, (denied, refused)
    return ap.record_decision(state, decision)


def test_quorum_n_of_m_and_all() -> None:
    policy = ap.Policy(
        name="q",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="two",
                steps=(
                    ap.StepSpec(
                        level=1, approver=ap.Approver.role("finance"), quorum=ap.Quorum.of(2)
                    ),
                ),
            ),
            ap.Rule(
                id="all",
                steps=(
                    ap.StepSpec(
                        level=2,
                        approver=ap.Approver.role("budget-committee"),
                        quorum=ap.Quorum.all(),
                    ),
                ),
            ),
        ),
    )
    state = state_for(router(policy).route(po(), AT))
    state = decide(state, "L1-role-finance", "fin-1")
    assert ap.outcome(state) is ap.ApprovalOutcome.PENDING
    assert [s.step_id for s in ap.active_steps(state)] == ["L1-role-finance"]
    state = decide(state, "L1-role-finance", "fin-2")
    assert [s.step_id for s in ap.active_steps(state)] == ["L2-role-budget-committee"]
    for who in ("bc-1", "bc-2"):
        state = decide(state, "L2-role-budget-committee", who)
    assert ap.outcome(state) is ap.ApprovalOutcome.PENDING
    state = decide(state, "L2-role-budget-committee", "bc-3")
    assert ap.outcome(state) is ap.ApprovalOutcome.APPROVED


def test_parallel_level_opens_every_step_at_once() -> None:
    route = router().route(po("60.00", category="it-hardware", supplier_id="S-SLOW"), AT)
    state = decide(state_for(route), "L1-manager-manager", "mgr-1")
    assert {s.step_id for s in ap.active_steps(state)} == {
        "L2-role-finance",
        "L2-role-it",
        "L2-role-procurement",
    }
    state = decide(state, "L2-role-it", "it-1")
    assert {s.step_id for s in ap.active_steps(state)} == {"L2-role-finance", "L2-role-procurement"}


def test_same_person_twice_on_one_step_is_refused() -> None:
    policy = ap.Policy(
        name="q",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="two",
                steps=(
                    ap.StepSpec(
                        level=1, approver=ap.Approver.role("finance"), quorum=ap.Quorum.of(2)
                    ),
                ),
            ),
        ),
    )
    state = decide(state_for(router(policy).route(po(), AT)), "L1-role-finance", "fin-1")
    again = ApprovalDecision(
        step_id="L1-role-finance", actor=ActorId("fin-1"), decision=Decision.APPROVE, at=AT
    )
    denied, _, _ = ap.decision_problems(state, again, DIRECTORY.actor(ActorId("fin-1")), DIRECTORY)
    assert denied == ["fin-1 already approved step L1-role-finance"]


def test_finished_route_accepts_no_more_decisions() -> None:
    state = decide(
        state_for(router().route(po(), AT)), "L1-manager-manager", "mgr-1", Decision.REJECT
    )
    assert ap.outcome(state) is ap.ApprovalOutcome.REJECTED
    late = ApprovalDecision(
        step_id="L1-manager-manager", actor=ActorId("mgr-1"), decision=Decision.APPROVE, at=AT
    )
    _, refused, _ = ap.decision_problems(state, late, DIRECTORY.actor(ActorId("mgr-1")), DIRECTORY)
    assert refused == ["the approval route is already rejected"]


# -- policy files ---------------------------------------------------------------------------------------


def test_the_example_policy_file_loads() -> None:
    policy = policy_file()
    assert policy.name == "acme-2026"
    assert [r.id for r in policy.rules] == [
        "manager",
        "finance",
        "cfo",
        "it-hardware",
        "non-preferred",
        "over-budget",
    ]
    assert policy.rules[0].location == f"rules[0] ({ROOT / 'examples' / 'policy.toml'} line 17)"
    assert policy.reapproval_percent == Decimal(10)
    assert policy.rules[5].steps[0].quorum == ap.Quorum.of(2)


def test_json_policies_load_the_same() -> None:
    text = """{"policy": {"name": "j", "base_currency": "EUR"},
               "rules": [{"id": "m", "steps": [{"level": 1, "approver": {"relative": "manager"}}]}]}"""
    policy = ap.load_policy("inline.json", text=text)
    assert policy.rules[0].steps[0].approver == ap.Approver.manager()


BAD_POLICY = """\
[policy]
name = "broken"
base_currency = "EURO"
colour = "blue"

[[rules]]
id = "first"
amount = { min = 5000.5 }
[[rules.steps]]
level = 0
approver = { role = "ghost" }
quorum = "most"

[[rules]]
id = "first"
departments = ["NOWHERE"]
suppliers = ["cheap"]
[[rules.steps]]
approver = { user = "nobody" }
mode = "sideways"
due_hours = 4
due_business_days = 1
"""


def test_a_malformed_policy_lists_every_problem_with_its_location() -> None:
    with pytest.raises(PolicyError) as info:
        ap.load_policy("bad.toml", text=BAD_POLICY, directory=DIRECTORY)
    found = [str(p) for p in info.value.problems]
    assert "policy: unknown keys ['colour']; allowed: " in found[0]
    expected = [
        "policy.base_currency: unknown currency code 'EURO'",
        'rules[0] (bad.toml line 6).amount.min: expected a decimal string such as "10000", got 5000.5',
        "rules[0] (bad.toml line 6).steps[0].level: expected a positive integer, got 0",
        "rules[0] (bad.toml line 6).steps[0].quorum: expected 'any', 'all' or a count >= 1, got 'most'",
        "rules[1] (bad.toml line 14).suppliers: unknown supplier statuses ['cheap']",
        "rules[1] (bad.toml line 14).steps[0].mode: expected 'sequential' or 'parallel', got 'sideways'",
        "rules[1] (bad.toml line 14).steps[0]: give due_hours or due_business_days, not both",
    ]
    for fragment in expected:
        assert any(fragment in text for text in found), fragment


def test_unknown_roles_users_and_departments_fail_at_load_time() -> None:
    text = BAD_POLICY.replace('base_currency = "EURO"\ncolour = "blue"', 'base_currency = "EUR"')
    text = text.replace("5000.5", '"5000.5"').replace("level = 0", "level = 1")
    text = text.replace('quorum = "most"', "").replace('suppliers = ["cheap"]', "")
    text = text.replace('mode = "sideways"\n', "").replace("due_business_days = 1\n", "")
    text = text.replace('id = "first"\ndepartments', 'id = "second"\ndepartments')
    with pytest.raises(PolicyError) as info:
        ap.load_policy("bad.toml", text=text, directory=DIRECTORY)
    found = [str(p) for p in info.value.problems]
    assert len(found) == 3
    assert found[0].startswith("rules[0] (bad.toml line 5).steps[0]: unknown role 'ghost'")
    assert found[1] == "rules[1] (bad.toml line 13).steps[0]: unknown user 'nobody'"
    assert found[2].startswith("rules[1] (bad.toml line 13): unknown department 'NOWHERE'")
    assert ap.load_policy("ok.toml", text=text)  # without a directory nothing is cross-checked


def test_not_toml_at_all() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        ap.load_policy("x.toml", text="[policy\nname=")


# -- linting -------------------------------------------------------------------------------------------


def test_the_example_policy_is_clean() -> None:
    assert ap.lint_policy(policy_file(), DIRECTORY) == []


def test_lint_reports_what_is_questionable() -> None:
    rules = (
        ap.Rule(
            id="small",
            amount=ap.AmountRange(maximum=Decimal(1000)),
            location="rules[0]",
            steps=(ap.StepSpec(level=1, approver=ap.Approver.manager()),),
        ),
        ap.Rule(
            id="mid",
            amount=ap.AmountRange(minimum=Decimal(2000), maximum=Decimal(9000)),
            location="rules[1]",
            steps=(ap.StepSpec(level=2, approver=ap.Approver.manager()),),
        ),
        ap.Rule(
            id="mid-copy",
            amount=ap.AmountRange(minimum=Decimal(2000), maximum=Decimal(9000)),
            location="rules[2]",
            steps=(ap.StepSpec(level=1, approver=ap.Approver.role("cfo")),),
        ),
        ap.Rule(
            id="empty",
            amount=ap.AmountRange(minimum=Decimal(10), maximum=Decimal(5)),
            location="rules[3]",
            steps=(ap.StepSpec(level=1, approver=ap.Approver.role("x")),),
        ),
        ap.Rule(
            id="ghost",
            location="rules[4]",
            categories=frozenset({"c"}),
            steps=(
                ap.StepSpec(level=3, approver=ap.Approver.role("ghost"), mode=ap.StepMode.PARALLEL),
            ),
        ),
        ap.Rule(
            id="mode",
            location="rules[5]",
            categories=frozenset({"c"}),
            amount=ap.AmountRange(minimum=Decimal(5)),
            steps=(ap.StepSpec(level=3, approver=ap.Approver.role("cfo")),),
        ),
        ap.Rule(id="nothing", location="rules[6]", departments=frozenset({"MARS"})),
    )
    findings = ap.lint_policy(ap.Policy(name="lint", base_currency="USD", rules=rules), DIRECTORY)
    text = [str(f) for f in findings]
    assert "never_fires: rule empty: the amount range is empty [rules[3]]" in text
    assert "never_fires: rule nothing: contributes no step [rules[6]]" in text
    assert "unknown_role: rule ghost: role 'ghost' is held by nobody [rules[4]]" in text
    assert "unknown_department: rule nothing: department 'MARS' is unknown [rules[6]]" in text
    assert "duplicate: rules mid and mid-copy have the same conditions [rules[1]; rules[2]]" in text
    assert (
        "overlap: rules small and mid can match the same document and ask manager manager at "
        "levels 1 and 2 [rules[0]; rules[1]]"
    ) not in text  # ranges do not overlap
    assert (
        "overlap: rules ghost and mode contradict each other: level 3 is parallel in one and "
        "sequential in the other [rules[4]; rules[5]]"
    ) in text
    assert (
        "uncovered_amounts: no general rule covers requisition amounts ≥ 1,000.00 USD and "
        "< 2,000.00 USD; amounts ≥ 9,000.00 USD (documents there are refused unless another "
        "rule matches) [policy]"
    ) in text


def test_lint_finds_an_approver_at_two_levels() -> None:
    rules = (
        ap.Rule(id="a", steps=(ap.StepSpec(level=1, approver=ap.Approver.role("cfo")),)),
        ap.Rule(
            id="b",
            amount=ap.AmountRange(minimum=Decimal(5)),
            steps=(ap.StepSpec(level=2, approver=ap.Approver.role("cfo")),),
        ),
    )
    text = [str(f) for f in ap.lint_policy(ap.Policy(name="x", base_currency="USD", rules=rules))]
    assert (
        "overlap: rules a and b can match the same document and ask role cfo at levels 1 and 2 [a; b]"
        in text
    )


# -- due times, reminders, escalations ---------------------------------------------------------------------


def test_business_days_skip_weekends_and_holidays() -> None:
    cal = ap.BusinessCalendar(holidays=frozenset({date(2026, 3, 3)}))
    friday = datetime(2026, 3, 6, 15, tzinfo=UTC)
    assert cal.add_business_days(friday, 1) == datetime(2026, 3, 9, 15, tzinfo=UTC)
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert cal.add_business_days(monday, 2) == datetime(2026, 3, 5, 9, tzinfo=UTC)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, recipient: str, subject: str, body: str) -> None:
        self.sent.append((recipient, subject))


def pending_po(amount: str = "100.00") -> PurchaseOrder:
    route = router().route(po(amount), AT)
    return attrs.evolve(
        po(amount),
        state=POState.PENDING_APPROVAL,
        approval=ApprovalState(route=route, started_at=AT, requester="req-1"),
    )


def test_reminders_fall_due_and_repeat_with_stable_keys() -> None:
    policy = policy_file()
    doc = pending_po()
    assert ap.reminders_due([doc], AT + timedelta(hours=23), policy) == []
    due = ap.reminders_due([doc], AT + timedelta(days=1, hours=1), policy)  # 1 business day
    assert [(n.kind, n.recipient, n.step_id) for n in due] == [
        ("reminder", "mgr-1", "L1-manager-manager")
    ]
    assert due[0].key == "PO-1|L1-manager-manager|reminder|mgr-1|1"
    later = ap.reminders_due([doc], AT + timedelta(days=2, hours=2), policy)
    assert later[0].key.endswith("|2")
    outbox = Outbox()
    sent: set[str] = set()
    assert ap.send_notifications(due, outbox, sent) == [due[0].key]
    assert ap.send_notifications(due, outbox, sent) == []
    assert outbox.sent == [("mgr-1", "Reminder: PO-1 awaits your approval")]


def test_escalations_go_to_the_manager_or_a_role() -> None:
    policy = policy_file()
    doc = pending_po()
    now = AT + timedelta(days=1) + timedelta(hours=49)
    notes = ap.escalations_due([doc], now, policy, DIRECTORY)
    assert [(n.kind, n.recipient, n.step_id) for n in notes] == [
        ("escalation", "dir-1", "L1-manager-manager")
    ]
    assert "still waits for mgr-1" in notes[0].body
    # Once the manager approves, the finance level opens: due 2 business days later.
    state = decide(doc.approval, "L1-manager-manager", "mgr-1", hours=2)
    doc = attrs.evolve(doc, approval=state)
    opened = AT + timedelta(hours=2)
    assert ap.step_due(state, state.route.step("L2-role-finance")) == opened + timedelta(days=2)
    assert ap.reminders_due([doc], opened + timedelta(days=1), policy) == []
    assert {n.recipient for n in ap.reminders_due([doc], opened + timedelta(days=2), policy)} == {
        "fin-1",
        "fin-2",
        "fin-3",
    }


def test_documents_not_pending_get_no_reminders() -> None:
    doc = attrs.evolve(pending_po(), state=POState.APPROVED)
    assert ap.reminders_due([doc], AT + timedelta(days=30), policy_file()) == []


# -- simulation --------------------------------------------------------------------------------------------


def test_simulation_reports_load_per_approver_and_compares_policies() -> None:
    docs = [po(a, id=f"PO-{i}") for i, a in enumerate(["10.00", "60.00", "600.00", "5.00"])]
    before = ap.simulate(docs, router())
    assert before.documents == 4
    assert before.unroutable == ()
    assert before.load("mgr-1") == Decimal(4)
    assert before.load("cfo-1") == Decimal(1)
    # Each finance step needs one of three people: a third each, twice.
    assert before.load("fin-1") == Decimal("0.6667")
    assert dict(before.steps_by_rule)["manager"] == 4
    stricter = attrs.evolve(
        policy_file(),
        rules=tuple(
            attrs.evolve(r, amount=ap.AmountRange(minimum=Decimal(1000)))
            if r.id == "finance"
            else r
            for r in policy_file().rules
        ),
    )
    after = ap.simulate(docs, router(stricter))
    diff = ap.compare_policies(before, after)
    assert [doc for doc, _, _ in diff.changed_routes] == ["PO-0"]
    assert ("fin-1", Decimal("0.6667"), Decimal("1.0000")) in diff.load_change
    assert diff.summary().startswith("1 of 4 documents change route; steps 7 → 8")


def test_simulation_lists_unroutable_documents() -> None:
    strict = ap.Policy(
        name="strict",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="big",
                amount=ap.AmountRange(minimum=Decimal(10_000)),
                steps=(ap.StepSpec(level=1, approver=ap.Approver.role("cfo")),),
            ),
        ),
    )
    report = ap.simulate([po(id="PO-S"), po("600.00", id="PO-B")], router(strict))
    assert [doc for doc, _ in report.unroutable] == ["PO-S"]
    assert report.load("cfo-1") == Decimal(1)


# -- through the lifecycle: re-routing keeps decisions only where the policy allows --------------------------


def test_reroute_keeps_unchanged_approvals_when_the_policy_allows() -> None:
    from potrack.events import Issue, ReviseOrder
    from potrack.lifecycle import PurchaseOrderLifecycle
    from potrack.records import LineChange

    for keep in (True, False):
        policy = attrs.evolve(policy_file(), keep_decisions_on_reroute=keep)
        lc = PurchaseOrderLifecycle(router=router(policy))
        buyer = DIRECTORY.actor(ActorId("buyer-1"))
        doc = lc.create(po("10.00"), buyer, AT).document
        doc = lc.apply(doc, SubmitForApproval(), buyer, AT).document
        decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
        doc = lc.apply(doc, decision, DIRECTORY.actor(ActorId("mgr-1")), AT).document
        doc = lc.apply(doc, Issue(number="N-1"), buyer, AT).document
        bigger = ReviseOrder(changes=(LineChange(line_no=1, quantity=Decimal(600)),), reason="more")
        doc = lc.apply(doc, bigger, buyer, AT).document
        assert doc.state is POState.PENDING_APPROVAL
        kept = [d.step_id for d in doc.approval.decisions]
        assert kept == (["L1-manager-manager"] if keep else [])
        open_steps = [s.step_id for s in ap.active_steps(doc.approval)]
        assert open_steps == (["L2-role-finance"] if keep else ["L1-manager-manager"])


def test_the_requester_cannot_approve_through_the_lifecycle() -> None:
    from potrack.lifecycle import PurchaseOrderLifecycle

    lc = PurchaseOrderLifecycle(router=router())
    buyer = DIRECTORY.actor(ActorId("buyer-1"))
    doc = lc.create(po(requester="mgr-1"), buyer, AT).document
    doc = lc.apply(doc, SubmitForApproval(), buyer, AT).document
    # mgr-1 requested it; their own manager (dir-1) is asked instead.
    assert doc.approval.route.steps[0].candidates == ("dir-1",)
    decision = RecordDecision(step_id="L1-manager-manager", verdict=Decision.APPROVE)
    with pytest.raises(NotPermittedError):
        lc.apply(doc, decision, DIRECTORY.actor(ActorId("mgr-1")), AT)


def test_policy_file_is_in_the_examples() -> None:
    assert Path(ROOT / "examples" / "policy.toml").is_file()
    assert Role.APPROVER == "approver"
