"""Approval: rule-based routing that is explainable, enforced and simulable.

A :class:`Policy` is data — rules whose conditions test the document's amount (in a base currency),
department, cost centre, categories, supplier status, budget availability and host-defined
conditions; each matching rule contributes approval *steps*.  A :class:`Router` turns a document
into a :class:`~potrack.records.Route` — a pure function of (document, policy, directory, time) —
listing every step with the sentences that explain it:

>>> from decimal import Decimal
>>> from potrack.memory import InMemoryDirectory
>>> from potrack.records import Actor
>>> from potrack.testing.samples import sample_po
>>> policy = Policy(name="demo", base_currency="USD", rules=(
...     Rule(id="manager", steps=(StepSpec(level=1, approver=Approver.manager()),)),
...     Rule(id="cfo", amount=AmountRange(minimum=Decimal(1000)),
...          steps=(StepSpec(level=2, approver=Approver.role("cfo")),)),
... ))
>>> people = InMemoryDirectory([
...     Actor(id="req-1", name="Rita", roles=["requester"], manager="mgr-1"),
...     Actor(id="mgr-1", name="Max", roles=["approver"]),
...     Actor(id="cfo-1", name="Cleo", roles=["cfo"]),
... ])
>>> route = Router(policy, people).route(sample_po(), at=T0)
>>> tuple((s.level, s.candidates) for s in route.steps)
((1, ('mgr-1',)), (2, ('cfo-1',)))
>>> route.steps[1].because
('rule cfo: amount 1,050.00 USD ≥ 1,000.00 USD',)

Decisions are recorded against the route with segregation of duties enforced here, not in a UI:
the requester never approves their own document, one person does not fill two steps of a route
(unless the policy allows it), an approver must hold the step's role when deciding, and a delegate
decides only within a delegation in force.  :mod:`potrack.lifecycle` refuses to issue a PO whose
route is not complete, whoever calls it.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
from moneyed import Money

from potrack._fast import positional_builder, rebuild
from potrack._files import read_settings
from potrack.exceptions import ConfigurationError, PolicyError, Problem
from potrack.money import check_currency, currency_precision
from potrack.records import (
    Actor,
    ActorId,
    ApprovalDecision,
    ApprovalState,
    ApproverKind,
    BudgetId,
    Decision,
    PurchaseOrder,
    Quorum,
    Reassignment,
    Requisition,
    Route,
    RouteStep,
    StepMode,
    Supplier,
    SupplierId,
)
from potrack.typing import BudgetProvider, Directory, ExchangeRates

__all__ = [
    "T0",
    "AmountRange",
    "ApprovalOutcome",
    "Approver",
    "BudgetState",
    "BusinessCalendar",
    "Condition",
    "DocumentKind",
    "History",
    "LintFinding",
    "Notification",
    "Policy",
    "PolicyComparison",
    "Router",
    "RoutingError",
    "Rule",
    "SimulationReport",
    "StepSpec",
    "SupplierStatus",
    "Suppliers",
    "active_steps",
    "compare_policies",
    "decision_problems",
    "escalations_due",
    "level_started",
    "lint_policy",
    "load_policy",
    "outcome",
    "record_decision",
    "record_reassignment",
    "reminders_due",
    "send_notifications",
    "simulate",
    "step_candidates",
    "step_due",
]

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""A fixed moment for examples."""

_ZERO = Decimal(0)


class DocumentKind(enum.StrEnum):
    """What is being approved."""

    REQUISITION = "requisition"
    PURCHASE_ORDER = "purchase_order"


class SupplierStatus(enum.StrEnum):
    """A supplier's standing, as rules and flags test it."""

    PREFERRED = "preferred"
    NOT_PREFERRED = "not_preferred"
    BLOCKED = "blocked"


class BudgetState(enum.StrEnum):
    """Whether the document fits its budgets (``unknown``: no budget, or none the host knows)."""

    AVAILABLE = "available"
    EXCEEDED = "exceeded"
    UNKNOWN = "unknown"


class ApprovalOutcome(enum.StrEnum):
    """Where a route stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"


class RoutingError(PolicyError):
    """A document the policy cannot route (no rule matches, a step with no eligible approver...)."""


# -- policy --------------------------------------------------------------------------------------


@attrs.frozen
class AmountRange:
    """An amount range in the policy's base currency, each bound inclusive or exclusive as stated.

    By default the minimum is inclusive and the maximum exclusive (``[min, max)``), so adjacent
    rules ``[0, 10000)`` and ``[10000, ∞)`` neither overlap nor leave a gap.

    >>> r = AmountRange(minimum=Decimal(1000), maximum=Decimal(5000))
    >>> r.contains(Decimal(1000)), r.contains(Decimal(5000))
    (True, False)
    >>> AmountRange(maximum=Decimal(5000), max_inclusive=True).contains(Decimal(5000))
    True
    """

    minimum: Decimal | None = None
    maximum: Decimal | None = None
    min_inclusive: bool = True
    max_inclusive: bool = False

    def contains(self, amount: Decimal) -> bool:
        """Whether ``amount`` lies in the range."""
        if self.minimum is not None and (
            amount < self.minimum or (amount == self.minimum and not self.min_inclusive)
        ):
            return False
        return not (
            self.maximum is not None
            and (amount > self.maximum or (amount == self.maximum and not self.max_inclusive))
        )

    @property
    def empty(self) -> bool:
        """Whether no amount can lie in the range."""
        if self.minimum is None or self.maximum is None:
            return False
        if self.minimum > self.maximum:
            return True
        return self.minimum == self.maximum and not (self.min_inclusive and self.max_inclusive)

    def describe(self, amount: Money) -> str:
        """Why ``amount`` is in the range, e.g. ``amount 60,000.00 EUR ≥ 50,000.00 EUR``."""
        code = amount.currency.code
        parts = []
        if self.minimum is not None:
            op = "≥" if self.min_inclusive else ">"
            parts.append(f"{op} {_show_amount(self.minimum, code)}")
        if self.maximum is not None:
            op = "≤" if self.max_inclusive else "<"
            parts.append(f"{op} {_show_amount(self.maximum, code)}")
        return f"amount {_show(amount)} " + " and ".join(parts)


def _show(amount: Money) -> str:
    """``1,050.00 USD``: the amount at its currency's precision, with the ISO code.

    Explanations are written once per routed document and stored in the route, so they use a
    fixed, locale-independent form (locale-aware rendering is for display: see potrack.money).
    """
    return _show_amount(amount.amount, amount.currency.code)


def _show_amount(amount: Decimal, code: str) -> str:
    return f"{amount:,.{currency_precision(code)}f} {code}"


@attrs.frozen
class Approver:
    """Who approves a step: a role, a user, or someone relative to the requester."""

    kind: ApproverKind
    ref: str

    @classmethod
    def role(cls, name: str) -> Approver:
        """Anyone holding role ``name``."""
        return cls(ApproverKind.ROLE, name)

    @classmethod
    def user(cls, actor_id: str) -> Approver:
        """One named person."""
        return cls(ApproverKind.USER, actor_id)

    @classmethod
    def manager(cls) -> Approver:
        """The requester's manager."""
        return cls(ApproverKind.MANAGER, "manager")

    @classmethod
    def second_manager(cls) -> Approver:
        """The requester's manager's manager."""
        return cls(ApproverKind.SECOND_MANAGER, "second_manager")


@attrs.frozen(kw_only=True)
class StepSpec:
    """A step a rule contributes: level, approver, mode within the level, quorum, due time."""

    level: int
    approver: Approver
    mode: StepMode = StepMode.SEQUENTIAL
    quorum: Quorum = Quorum()
    due_hours: int | None = None
    due_business_days: int | None = None
    escalate_to: str | None = None
    """``manager`` (the pending approver's manager) or a role, once the step is overdue."""


@attrs.frozen(kw_only=True)
class Rule:
    """A routing rule: conditions (all must hold; an empty condition is not tested) and steps.

    ``location`` says where the rule was defined (``rules[3] (policy.toml line 42)``).
    """

    id: str
    steps: tuple[StepSpec, ...] = ()
    description: str = ""
    documents: frozenset[DocumentKind] = frozenset(DocumentKind)
    amount: AmountRange | None = None
    departments: frozenset[str] = frozenset()
    cost_centres: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    suppliers: frozenset[SupplierStatus] = frozenset()
    budget: BudgetState | None = None
    conditions: tuple[str, ...] = ()
    location: str = ""


@attrs.frozen(kw_only=True)
class Policy:
    """An approval policy: rules plus how routing behaves.

    Args:
        base_currency: currency of the amount conditions; documents are converted into it with the
            host's exchange rates.
        amount_basis: ``net`` (lines) or ``gross`` (lines + tax).
        when_no_rule_matches: ``error`` (submission is refused) or ``auto_approve``.
        allow_same_approver: whether one person may fill several steps of a route.
        keep_decisions_on_reroute: whether a change order that re-routes a document keeps the
            approvals of steps that are unchanged in the new route.
        reapproval_percent: a revision raising the value by more than this percent goes back
            through approval (``None``: any increase; see :mod:`potrack.lifecycle`).
        split_window_days, split_threshold: flag split purchases — several documents by the same
            requester to the same supplier within the window whose sum reaches the threshold that
            each stays under.
        reminder_interval_hours: how often reminders repeat once a step is overdue.
        escalate_after_hours: how long after the due time an overdue step is escalated.
    """

    name: str
    base_currency: str
    rules: tuple[Rule, ...] = ()
    amount_basis: str = "net"
    when_no_rule_matches: str = "error"
    allow_same_approver: bool = False
    keep_decisions_on_reroute: bool = False
    reapproval_percent: Decimal | None = Decimal(0)
    split_window_days: int = 7
    split_threshold: Decimal | None = None
    reminder_interval_hours: int = 24
    escalate_after_hours: int = 48

    def __attrs_post_init__(self) -> None:
        check_currency(self.base_currency, "Policy.base_currency")
        problems = []
        if self.amount_basis not in ("net", "gross"):
            problems.append(
                Problem("amount_basis", f"expected 'net' or 'gross', got {self.amount_basis!r}")
            )
        if self.when_no_rule_matches not in ("error", "auto_approve"):
            problems.append(
                Problem(
                    "when_no_rule_matches",
                    f"expected 'error' or 'auto_approve', got {self.when_no_rule_matches!r}",
                )
            )
        seen: set[str] = set()
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append(Problem(f"rules[{i}].id", f"duplicate rule id {rule.id!r}"))
            seen.add(rule.id)
        if problems:
            raise PolicyError(f"policy {self.name!r}", problems)


# -- host hooks -----------------------------------------------------------------------------------


class Condition(Protocol):
    """**Protocol:** a host-defined rule condition, registered on a :class:`Router` by name."""

    def __call__(self, document: Requisition | PurchaseOrder) -> bool:
        """Whether the condition holds for the document (must have no side effects)."""
        ...


@runtime_checkable
class Suppliers(Protocol):
    """**Protocol:** the host's supplier master data."""

    def supplier(self, supplier_id: SupplierId) -> Supplier | None:
        """The supplier with that id, or None."""
        ...


class History(Protocol):
    """**Protocol:** earlier documents, for split-purchase detection."""

    def recent(
        self, requester: ActorId, supplier_id: SupplierId, since: datetime, until: datetime
    ) -> Iterable[Requisition | PurchaseOrder]:
        """Documents by ``requester`` for ``supplier_id`` created in ``[since, until)``."""
        ...


@attrs.frozen
class _SupplierMap:
    suppliers: Mapping[str, Supplier]

    def supplier(self, supplier_id: SupplierId) -> Supplier | None:
        return self.suppliers.get(supplier_id)


def as_suppliers(
    suppliers: Suppliers | Mapping[str, Supplier] | Iterable[Supplier] | None,
) -> Suppliers:
    """A :class:`Suppliers` from a mapping, an iterable of suppliers, or a Suppliers object."""
    if suppliers is None:
        return _SupplierMap({})
    if isinstance(suppliers, Mapping):
        return _SupplierMap(dict(suppliers))
    if isinstance(suppliers, Suppliers):
        return suppliers
    return _SupplierMap({s.id: s for s in suppliers})


_make_step = positional_builder(RouteStep)
_make_route = positional_builder(Route)


# -- routing ---------------------------------------------------------------------------------------


@attrs.frozen
class _View:
    """What rules test, extracted once from a requisition or a PO."""

    kind: DocumentKind
    requester: ActorId | None
    department: str | None
    cost_centres: frozenset[str]
    categories: frozenset[str]
    supplier_ids: tuple[SupplierId, ...]
    amount: Money
    budgets: tuple[tuple[BudgetId, Money], ...]
    created_at: datetime


def _view(document: Requisition | PurchaseOrder, basis: str) -> _View:
    if isinstance(document, Requisition):
        lines = document.lines
        amounts = [ln.estimated_amount.amount for ln in lines]
        suppliers = tuple(dict.fromkeys(s for s in (ln.suggested_supplier for ln in lines) if s))
        centres = {c for c in (ln.cost_centre for ln in lines) if c}
        if document.cost_centre:
            centres.add(document.cost_centre)
        budget_of = [ln.budget or document.budget for ln in lines]
        return _View(
            DocumentKind.REQUISITION,
            document.requester,
            document.department,
            frozenset(centres),
            frozenset(ln.category for ln in lines),
            suppliers,
            Money(sum(amounts, _ZERO), document.currency),
            _budgets(budget_of, amounts, document.currency),
            document.created_at,
        )
    lines_po = document.lines
    amounts = [ln.amount.amount for ln in lines_po]
    if basis == "gross":
        amounts = [a + ln.tax_amount.amount for a, ln in zip(amounts, lines_po, strict=True)]
    centres = {c for c in (ln.cost_centre for ln in lines_po) if c}
    if document.cost_centre:
        centres.add(document.cost_centre)
    budget_of = [ln.budget or document.budget for ln in lines_po]
    return _View(
        DocumentKind.PURCHASE_ORDER,
        document.requester or document.buyer,
        document.department,
        frozenset(centres),
        frozenset(ln.category for ln in lines_po),
        (document.supplier_id,),
        Money(sum(amounts, _ZERO), document.currency),
        _budgets(budget_of, amounts, document.currency),
        document.created_at,
    )


def _budgets(
    budget_of: list[BudgetId | None], amounts: list[Decimal], currency: str
) -> tuple[tuple[BudgetId, Money], ...]:
    totals: dict[BudgetId, Decimal] = {}
    for budget, amount in zip(budget_of, amounts, strict=True):
        if budget:
            totals[budget] = totals.get(budget, _ZERO) + amount
    return tuple((b, Money(a, currency)) for b, a in totals.items())


@attrs.frozen
class _Facts:
    view: _View
    base_amount: Money
    supplier_status: tuple[tuple[SupplierId, SupplierStatus, str], ...]
    budget: BudgetState
    budget_detail: str


class Router:
    """Routes documents through a policy, with the host's directory and data.

    Args:
        policy: the policy.
        directory: people, roles, managers and delegations.
        suppliers: supplier master data (a :class:`Suppliers`, a mapping or an iterable).
        rates: exchange rates into the base currency (needed only for foreign documents).
        budgets: budget availability (needed only for budget conditions and flags).
        conditions: host-defined conditions by the names rules use.
        history: earlier documents, for split-purchase flags.

    Raises:
        ConfigurationError: a rule uses a condition that is not registered.
    """

    def __init__(
        self,
        policy: Policy,
        directory: Directory,
        suppliers: Suppliers | Mapping[str, Supplier] | Iterable[Supplier] | None = None,
        *,
        rates: ExchangeRates | None = None,
        budgets: BudgetProvider | None = None,
        conditions: Mapping[str, Condition] | None = None,
        history: History | None = None,
    ) -> None:
        self.policy = policy
        self.directory = directory
        self.suppliers = as_suppliers(suppliers)
        self.rates = rates
        self.budgets = budgets
        self.conditions = dict(conditions or {})
        self.history = history
        missing = sorted({c for r in policy.rules for c in r.conditions} - set(self.conditions))
        if missing:
            raise ConfigurationError(
                f"policy {policy.name!r} uses conditions {missing} that the router was not given; "
                "pass them as conditions={'name': callable}"
            )
        # Index rules by department, else cost centre, else category, so a document only tests
        # the rules that can apply to it (a 500-rule policy routes in a few dozen tests).
        self._order = {rule.id: index for index, rule in enumerate(policy.rules)}
        self._general: list[tuple[int, Rule]] = []
        self._by_department: dict[str, list[tuple[int, Rule]]] = defaultdict(list)
        self._by_category: dict[str, list[tuple[int, Rule]]] = defaultdict(list)
        self._by_centre: dict[str, list[tuple[int, Rule]]] = defaultdict(list)
        for index, rule in enumerate(policy.rules):
            if rule.departments:
                for dept in rule.departments:
                    self._by_department[dept].append((index, rule))
            elif rule.cost_centres:
                for centre in rule.cost_centres:
                    self._by_centre[centre].append((index, rule))
            elif rule.categories:
                for category in rule.categories:
                    self._by_category[category].append((index, rule))
            else:
                self._general.append((index, rule))

    # -- facts ----------------------------------------------------------------------------------

    def _facts(self, document: Requisition | PurchaseOrder, at: datetime) -> _Facts:
        view = _view(document, self.policy.amount_basis)
        base = self._to_base(view.amount, at.date())
        statuses = []
        for sid in view.supplier_ids:
            supplier = self.suppliers.supplier(sid)
            if supplier is None:
                statuses.append((sid, SupplierStatus.NOT_PREFERRED, f"supplier {sid} is unknown"))
            elif supplier.blocked:
                why = f" ({supplier.blocked_reason})" if supplier.blocked_reason else ""
                statuses.append(
                    (
                        sid,
                        SupplierStatus.BLOCKED,
                        f"supplier {sid} ({supplier.name}) is blocked{why}",
                    )
                )
            elif supplier.preferred:
                statuses.append(
                    (
                        sid,
                        SupplierStatus.PREFERRED,
                        f"supplier {sid} ({supplier.name}) is preferred",
                    )
                )
            else:
                statuses.append(
                    (
                        sid,
                        SupplierStatus.NOT_PREFERRED,
                        f"supplier {sid} ({supplier.name}) is not a preferred supplier",
                    )
                )
        budget, detail = self._budget_state(view, at.date())
        return _Facts(view, base, tuple(statuses), budget, detail)

    def _to_base(self, amount: Money, on: date) -> Money:
        code = amount.currency.code
        base = self.policy.base_currency
        if code == base:
            return amount
        if self.rates is None:
            raise RoutingError(
                "document",
                [
                    Problem(
                        "currency",
                        f"the document is in {code} but the policy's base currency is {base}, and the "
                        "router has no exchange rates (pass rates=...)",
                    )
                ],
            )
        rate = self.rates.rate(code, base, on)
        return Money(amount.amount * rate, base)

    def _budget_state(self, view: _View, on: date) -> tuple[BudgetState, str]:
        if not view.budgets or self.budgets is None:
            return BudgetState.UNKNOWN, "no budget is known for the document"
        over = []
        known = False
        for budget, needed in view.budgets:
            left = self.budgets.available(budget, on)
            if left is None:
                continue
            known = True
            if left.currency.code != needed.currency.code:
                if self.rates is None:
                    continue
                needed = Money(
                    needed.amount * self.rates.rate(needed.currency.code, left.currency.code, on),
                    left.currency.code,
                )
            if needed.amount > left.amount:
                over.append(
                    f"budget {budget} has {_show(left)} left, the document needs {_show(needed)}"
                )
        if over:
            return BudgetState.EXCEEDED, "; ".join(over)
        if not known:
            return BudgetState.UNKNOWN, "the host knows none of the document's budgets"
        return BudgetState.AVAILABLE, "every budget of the document covers it"

    # -- rules ----------------------------------------------------------------------------------

    def _candidate_rules(self, view: _View) -> list[Rule]:
        found = dict(self._general)
        if view.department:
            found.update(self._by_department.get(view.department, ()))
        for category in view.categories:
            found.update(self._by_category.get(category, ()))
        for centre in view.cost_centres:
            found.update(self._by_centre.get(centre, ()))
        return [found[index] for index in sorted(found)]

    def _reasons(
        self, rule: Rule, facts: _Facts, document: Requisition | PurchaseOrder
    ) -> list[str] | None:
        """The sentences saying why ``rule`` matches, or None when it does not.

        Every condition is tested before any sentence is written: most candidate rules fail, and
        only matching ones need their explanation.
        """
        view = facts.view
        if view.kind not in rule.documents:
            return None
        if rule.amount is not None and not rule.amount.contains(facts.base_amount.amount):
            return None
        if rule.departments and view.department not in rule.departments:
            return None
        if rule.cost_centres and rule.cost_centres.isdisjoint(view.cost_centres):
            return None
        if rule.categories and rule.categories.isdisjoint(view.categories):
            return None
        if rule.suppliers and not any(st in rule.suppliers for _, st, _ in facts.supplier_status):
            return None
        if rule.budget is not None and facts.budget is not rule.budget:
            return None
        for name in rule.conditions:
            if not self.conditions[name](document):
                return None
        why: list[str] = []
        if rule.amount is not None:
            why.append(rule.amount.describe(facts.base_amount))
        if rule.departments:
            why.append(f"department {view.department}")
        if rule.cost_centres:
            why.append(f"cost centre {', '.join(sorted(view.cost_centres & rule.cost_centres))}")
        if rule.categories:
            why.append(f"category {', '.join(sorted(view.categories & rule.categories))}")
        if rule.suppliers:
            why.extend(text for _, st, text in facts.supplier_status if st in rule.suppliers)
        if rule.budget is not None:
            why.append(f"budget {facts.budget.value}: {facts.budget_detail}")
        why.extend(f"condition {name}" for name in rule.conditions)
        return why

    def matching_rules(
        self, document: Requisition | PurchaseOrder, at: datetime
    ) -> list[tuple[Rule, list[str]]]:
        """Every rule that matches the document, with the reasons, in policy order.

        Raises:
            RoutingError: the document's amount cannot be converted into the base currency.
        """
        facts = self._facts(document, at)
        out = []
        for rule in self._candidate_rules(facts.view):
            why = self._reasons(rule, facts, document)
            if why is not None:
                out.append((rule, why))
        return out

    def route(self, document: Requisition | PurchaseOrder, at: datetime) -> Route:
        """The approval route of ``document`` at ``at``: steps, reasons, flags.

        Raises:
            RoutingError: no rule matches (and the policy does not auto-approve), a step has no
                eligible approver, or the amount cannot be converted.
        """
        facts = self._facts(document, at)
        view = facts.view
        merged: dict[tuple[int, ApproverKind, str], dict[str, Any]] = {}
        matched = 0
        for rule in self._candidate_rules(view):
            why = self._reasons(rule, facts, document)
            if why is None:
                continue
            matched += 1
            sentence = f"rule {rule.id}: " + ", ".join(why) if why else f"rule {rule.id}: always"
            for spec in rule.steps:
                key = (spec.level, spec.approver.kind, spec.approver.ref)
                slot = merged.get(key)
                if slot is None:
                    merged[key] = {"spec": spec, "because": [sentence], "rules": [rule.id]}
                else:
                    slot["spec"] = _stricter(slot["spec"], spec)
                    if rule.id not in slot["rules"]:
                        slot["because"].append(sentence)
                        slot["rules"].append(rule.id)
        problems: list[Problem] = []
        if not matched and self.policy.when_no_rule_matches == "error":
            problems.append(
                Problem(
                    "",
                    f"no rule of policy {self.policy.name!r} matches "
                    f"({facts.base_amount and _show(facts.base_amount)}, "
                    f"department {view.department})",
                )
            )
        steps = []
        for (level, kind, ref), slot in sorted(merged.items(), key=lambda kv: (kv[0][0],)):
            wanted: StepSpec = slot["spec"]
            candidates = self._resolve(kind, ref, view.requester)
            step_id = f"L{level}-{kind.value}-{ref}"
            if not candidates:
                problems.append(Problem(step_id, _no_candidate(kind, ref, view.requester)))
            # Every value comes from the validated policy and directory: build without converters.
            steps.append(
                _make_step(
                    step_id,
                    level,
                    wanted.mode,
                    kind,
                    ref,
                    candidates,
                    wanted.quorum,
                    wanted.due_hours,
                    wanted.due_business_days,
                    wanted.escalate_to,
                    tuple(slot["because"]),
                    tuple(slot["rules"]),
                )
            )
        if problems:
            raise RoutingError("route", problems)
        order = self._order
        steps.sort(key=lambda s: (s.level, order[s.rules[0]]))
        return _make_route(
            tuple(steps),
            self._flags(facts, document, at),
            self.policy.name,
            facts.base_amount,
            self.policy.allow_same_approver,
        )

    def _resolve(
        self, kind: ApproverKind, ref: str, requester: ActorId | None
    ) -> tuple[ActorId, ...]:
        if kind is ApproverKind.ROLE:
            found: tuple[ActorId, ...] = self.directory.holders(ref)
        elif kind is ApproverKind.USER:
            found = (ActorId(ref),) if self.directory.actor(ActorId(ref)) else ()
        else:
            person = self.directory.actor(requester) if requester else None
            manager = person.manager if person else None
            if kind is ApproverKind.SECOND_MANAGER and manager:
                boss = self.directory.actor(manager)
                manager = boss.manager if boss else None
            found = (manager,) if manager else ()
        # Segregation of duties: the requester never approves their own document.
        return tuple(a for a in found if a != requester)

    # -- flags ------------------------------------------------------------------------------------

    def flags(self, document: Requisition | PurchaseOrder, at: datetime) -> tuple[str, ...]:
        """Policy flags on the document, each with its reason (see :meth:`route`).

        Raises:
            RoutingError: the document's amount cannot be converted into the base currency.
        """
        return self._flags(self._facts(document, at), document, at)

    def _flags(
        self, facts: _Facts, document: Requisition | PurchaseOrder, at: datetime
    ) -> tuple[str, ...]:
        out = []
        for _, status, text in facts.supplier_status:
            if status is SupplierStatus.BLOCKED:
                out.append(f"blocked_supplier: {text}")
            elif status is SupplierStatus.NOT_PREFERRED:
                out.append(f"non_preferred_supplier: {text}")
        if facts.budget is BudgetState.EXCEEDED:
            out.append(f"budget_overrun: {facts.budget_detail}")
        split = self._split(facts, document, at)
        if split:
            out.append(split)
        return tuple(out)

    def _split(
        self, facts: _Facts, document: Requisition | PurchaseOrder, at: datetime
    ) -> str | None:
        threshold = self.policy.split_threshold
        view = facts.view
        if threshold is None or self.history is None or view.requester is None:
            return None
        if facts.base_amount.amount >= threshold:
            return None
        window = timedelta(days=self.policy.split_window_days)
        for sid in view.supplier_ids:
            others = [
                d
                for d in self.history.recent(
                    view.requester,
                    sid,
                    view.created_at - window,
                    view.created_at + timedelta(microseconds=1),
                )
                if d.id != document.id
            ]
            amounts = []
            for other in others:
                base = self._to_base(_view(other, self.policy.amount_basis).amount, at.date())
                if base.amount < threshold:
                    amounts.append((other.id, base.amount))
            total = facts.base_amount.amount + sum((a for _, a in amounts), _ZERO)
            if amounts and total >= threshold:
                ids = ", ".join(sorted(i for i, _ in amounts))
                return (
                    f"split_purchase: with {ids} by {view.requester} for supplier {sid} within "
                    f"{self.policy.split_window_days} days the total is "
                    f"{_show(Money(total, self.policy.base_currency))}, reaching the "
                    f"{_show(Money(threshold, self.policy.base_currency))} threshold each stays under"
                )
        return None


def _stricter(a: StepSpec, b: StepSpec) -> StepSpec:
    """Two rules asking for the same approver at the same level: keep the stricter demands."""
    if a == b:
        return a

    def need(q: Quorum) -> float:
        return float("inf") if q.count is None else q.count

    quorum = a.quorum if need(a.quorum) >= need(b.quorum) else b.quorum
    hours = [h for h in (a.due_hours, b.due_hours) if h is not None]
    days = [d for d in (a.due_business_days, b.due_business_days) if d is not None]
    mode = StepMode.PARALLEL if StepMode.PARALLEL in (a.mode, b.mode) else StepMode.SEQUENTIAL
    return attrs.evolve(
        a,
        quorum=quorum,
        due_hours=min(hours) if hours else None,
        due_business_days=min(days) if days else None,
        mode=mode,
        escalate_to=a.escalate_to or b.escalate_to,
    )


def _no_candidate(kind: ApproverKind, ref: str, requester: ActorId | None) -> str:
    if kind is ApproverKind.ROLE:
        return (
            f"nobody but the requester holds role {ref!r}"
            if requester
            else f"nobody holds role {ref!r}"
        )
    if kind is ApproverKind.USER:
        return f"user {ref!r} is unknown to the directory or is the requester"
    return f"the requester {requester!r} has no {kind.value.replace('_', ' ')} in the directory"


# -- decisions -------------------------------------------------------------------------------------


def step_candidates(state: ApprovalState, step: RouteStep) -> tuple[ActorId, ...]:
    """Who may decide ``step`` now: its resolved candidates, after any reassignments."""
    candidates = list(step.candidates)
    for move in state.reassignments:
        if move.step_id != step.step_id:
            continue
        if move.from_actor is None:
            candidates = [move.to_actor]
        else:
            candidates = [move.to_actor if c == move.from_actor else c for c in candidates]
    return tuple(dict.fromkeys(candidates))


def _approvals(state: ApprovalState, step_id: str) -> list[ApprovalDecision]:
    return [d for d in state.decisions if d.step_id == step_id and d.decision is Decision.APPROVE]


def _needed(state: ApprovalState, step: RouteStep) -> int:
    count = step.quorum.count
    if count == 1:
        return 1  # any one approver: no need to resolve who the candidates are
    return max(step.quorum.needed(len(step_candidates(state, step))), 1)


def _satisfied(state: ApprovalState, step: RouteStep) -> bool:
    return len(_approvals(state, step.step_id)) >= _needed(state, step)


def outcome(state: ApprovalState) -> ApprovalOutcome:
    """Where the route stands: a reject or return ends it; approved once every step is satisfied."""
    approvals: dict[str, int] = {}
    for decision in state.decisions:
        kind = decision.decision
        if kind is Decision.APPROVE:
            approvals[decision.step_id] = approvals.get(decision.step_id, 0) + 1
        elif kind is Decision.REJECT:
            return ApprovalOutcome.REJECTED
        elif kind is Decision.RETURN:
            return ApprovalOutcome.RETURNED
    for step in state.route.steps:
        if approvals.get(step.step_id, 0) < _needed(state, step):
            return ApprovalOutcome.PENDING
    return ApprovalOutcome.APPROVED


def active_steps(state: ApprovalState) -> tuple[RouteStep, ...]:
    """The steps waiting for a decision now.

    Levels run in order.  Within the first unfinished level, a parallel level has all its
    unsatisfied steps open at once; a sequential one only the first unsatisfied step.
    """
    if outcome(state) is not ApprovalOutcome.PENDING:
        return ()
    levels = sorted({s.level for s in state.route.steps})
    for level in levels:
        steps = [s for s in state.route.steps if s.level == level]
        open_steps = [s for s in steps if not _satisfied(state, s)]
        if not open_steps:
            continue
        if any(s.mode is StepMode.PARALLEL for s in steps):
            return tuple(open_steps)
        return (open_steps[0],)
    return ()


def level_started(state: ApprovalState, level: int) -> datetime:
    """When ``level`` opened: the route's start, or the last approval completing earlier levels."""
    earlier = [s.step_id for s in state.route.steps if s.level < level]
    times = [
        d.at for d in state.decisions if d.step_id in earlier and d.decision is Decision.APPROVE
    ]
    return max(times, default=state.started_at)


def decision_problems(
    state: ApprovalState,
    decision: ApprovalDecision,
    actor: Actor,
    directory: Directory | None = None,
) -> tuple[list[str], list[str], ActorId | None]:
    """Check a decision before it is recorded.

    Returns ``(not_permitted, refused, on_behalf_of)``: reasons the actor may not decide (roles,
    segregation of duties, delegation), other reasons the decision cannot be taken (step not open,
    route finished), and the approver a delegate decides for.  Side-effect free.
    """
    permitted: list[str] = []
    refused: list[str] = []
    if outcome(state) is not ApprovalOutcome.PENDING:
        refused.append(f"the approval route is already {outcome(state).value}")
        return permitted, refused, None
    step = state.route.step(decision.step_id)
    if step is None:
        refused.append(
            f"the route has no step {decision.step_id!r}; its steps are "
            f"{[s.step_id for s in state.route.steps]}"
        )
        return permitted, refused, None
    open_ids = [s.step_id for s in active_steps(state)]
    if decision.decision is not Decision.COMMENT and step.step_id not in open_ids:
        if _satisfied(state, step):
            refused.append(f"step {step.step_id} is already approved")
        else:
            refused.append(f"step {step.step_id} is not open yet; waiting for {open_ids}")
    candidates = step_candidates(state, step)
    principal: ActorId | None = None
    if actor.id in candidates:
        principal = actor.id
    elif directory is not None:
        for candidate in candidates:
            if any(d.delegate == actor.id for d in directory.delegations(candidate, decision.at)):
                principal = candidate
                break
    if principal is None:
        who = ", ".join(candidates) or "nobody"
        permitted.append(
            f"{actor.id} is not an approver of step {step.step_id} "
            f"({step.describe()}: {who}) and holds no delegation from them"
        )
        return permitted, refused, None
    on_behalf = principal if principal != actor.id else None
    if step.approver_kind is ApproverKind.ROLE:
        holder = actor if on_behalf is None else (directory.actor(principal) if directory else None)
        if holder is None or not holder.has_role(step.approver_ref):
            permitted.append(
                f"{principal} does not hold role {step.approver_ref!r} at {decision.at.isoformat()}"
            )
    people = {actor.id, principal}
    if state.requester in people:
        permitted.append(f"{state.requester} requested this document and may not approve it")
    if decision.decision is Decision.APPROVE:
        mine = [
            d
            for d in state.decisions
            if d.decision is Decision.APPROVE and ({d.actor, d.on_behalf_of} & people)
        ]
        if any(d.step_id == step.step_id for d in mine):
            permitted.append(f"{actor.id} already approved step {step.step_id}")
        elif mine and not state.route.allow_same_approver:
            permitted.append(
                f"{actor.id} already approved step {mine[0].step_id} of this route; "
                "the policy does not let one person fill two steps"
            )
    return permitted, refused, on_behalf


def record_decision(state: ApprovalState, decision: ApprovalDecision) -> ApprovalState:
    """The state with ``decision`` recorded (check it with :func:`decision_problems` first)."""
    return rebuild(state, {"decisions": (*state.decisions, decision)})


def record_reassignment(state: ApprovalState, reassignment: Reassignment) -> ApprovalState:
    """The state with a step handed to another approver (recorded as such)."""
    return rebuild(state, {"reassignments": (*state.reassignments, reassignment)})


def carry_over(old: ApprovalState, new_route: Route, at: datetime, keep: bool) -> ApprovalState:
    """A fresh approval state for ``new_route``; with ``keep``, approvals of steps that are unchanged
    (same id and candidates) carry over, re-dated to ``at`` and marked as carried."""
    decisions: list[ApprovalDecision] = []
    if keep:
        for step in new_route.steps:
            before = old.route.step(step.step_id)
            if before is not None and before.candidates == step.candidates:
                for d in _approvals(old, step.step_id):
                    decisions.append(
                        attrs.evolve(d, reason=f"carried over: {d.reason or 'approved'}")
                    )
    return ApprovalState(
        route=new_route, started_at=at, decisions=tuple(decisions), requester=old.requester
    )


# -- time: due dates, reminders, escalations ---------------------------------------------------------


@attrs.frozen
class BusinessCalendar:
    """Working days: weekdays by default, minus the host's holidays.

    >>> cal = BusinessCalendar(holidays=frozenset({date(2026, 12, 25)}))
    >>> cal.add_business_days(datetime(2026, 12, 24, 10, tzinfo=UTC), 2)
    datetime.datetime(2026, 12, 29, 10, 0, tzinfo=datetime.timezone.utc)
    """

    weekend: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        return day.weekday() not in self.weekend and day not in self.holidays

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """``start`` moved forward by ``days`` working days, keeping the time of day."""
        current = start
        left = days
        while left > 0:
            current += timedelta(days=1)
            if self.is_business_day(current.date()):
                left -= 1
        return current


def step_due(
    state: ApprovalState, step: RouteStep, calendar: BusinessCalendar | None = None
) -> datetime | None:
    """When ``step`` is due: its level's start plus its due hours or business days (or None)."""
    start = level_started(state, step.level)
    if step.due_hours is not None:
        return start + timedelta(hours=step.due_hours)
    if step.due_business_days is not None:
        return (calendar or BusinessCalendar()).add_business_days(start, step.due_business_days)
    return None


@attrs.frozen
class Notification:
    """Something the host should send: a reminder or an escalation, to one person.

    ``key`` is stable for one sending (document, step, kind, round): a host that stores the keys it
    sent never sends twice.
    """

    kind: str
    recipient: ActorId
    document: str
    step_id: str
    due: datetime
    subject: str
    body: str
    key: str


def _pending(
    documents: Iterable[Requisition | PurchaseOrder],
) -> Iterable[tuple[Requisition | PurchaseOrder, ApprovalState, RouteStep]]:
    for doc in documents:
        state = doc.approval
        if state is None or str(doc.state) != "pending_approval":
            continue
        for step in active_steps(state):
            yield doc, state, step


def _waiting(state: ApprovalState, step: RouteStep) -> list[ActorId]:
    done = {d.actor for d in _approvals(state, step.step_id)} | {
        d.on_behalf_of for d in _approvals(state, step.step_id) if d.on_behalf_of
    }
    return [c for c in step_candidates(state, step) if c not in done]


def _label(doc: Requisition | PurchaseOrder) -> str:
    return getattr(doc, "number", None) or doc.id


def reminders_due(
    documents: Iterable[Requisition | PurchaseOrder],
    now: datetime,
    policy: Policy,
    calendar: BusinessCalendar | None = None,
) -> list[Notification]:
    """Reminders to send at ``now``: one per waiting approver of each overdue step, repeating every
    ``policy.reminder_interval_hours`` (each round has its own key).  Nothing sleeps or polls."""
    out = []
    interval = timedelta(hours=policy.reminder_interval_hours)
    for doc, state, step in _pending(documents):
        due = step_due(state, step, calendar)
        if due is None or now < due:
            continue
        rounds = int((now - due) / interval) + 1
        for person in _waiting(state, step):
            out.append(
                Notification(
                    kind="reminder",
                    recipient=person,
                    document=_label(doc),
                    step_id=step.step_id,
                    due=due,
                    subject=f"Reminder: {_label(doc)} awaits your approval",
                    body=(
                        f"{_label(doc)} has waited for {step.describe()} since "
                        f"{level_started(state, step.level).isoformat()}; it was due "
                        f"{due.isoformat()}."
                    ),
                    key=f"{doc.id}|{step.step_id}|reminder|{person}|{rounds}",
                )
            )
    return out


def escalations_due(
    documents: Iterable[Requisition | PurchaseOrder],
    now: datetime,
    policy: Policy,
    directory: Directory,
    calendar: BusinessCalendar | None = None,
) -> list[Notification]:
    """Escalations to send at ``now``: steps overdue by ``policy.escalate_after_hours`` go to their
    ``escalate_to`` (``manager``: each waiting approver's manager; else the holders of that role)."""
    out = []
    after = timedelta(hours=policy.escalate_after_hours)
    for doc, state, step in _pending(documents):
        due = step_due(state, step, calendar)
        if due is None or step.escalate_to is None or now < due + after:
            continue
        waiting = _waiting(state, step)
        if step.escalate_to == "manager":
            recipients = []
            for person in waiting:
                who = directory.actor(person)
                if who and who.manager:
                    recipients.append(who.manager)
        else:
            recipients = list(directory.holders(step.escalate_to))
        for person in dict.fromkeys(recipients):
            out.append(
                Notification(
                    kind="escalation",
                    recipient=person,
                    document=_label(doc),
                    step_id=step.step_id,
                    due=due,
                    subject=f"Escalation: {_label(doc)} is overdue for approval",
                    body=(
                        f"{step.describe()} on {_label(doc)} was due {due.isoformat()} and still "
                        f"waits for {', '.join(waiting)}."
                    ),
                    key=f"{doc.id}|{step.step_id}|escalation|{person}",
                )
            )
    return out


def send_notifications(
    notifications: Iterable[Notification], notifier: Any, already_sent: set[str] | None = None
) -> list[str]:
    """Deliver through the host's :class:`~potrack.typing.Notifier`; skip keys in ``already_sent``.

    Returns the keys sent (add them to ``already_sent`` for the next call).
    """
    sent = []
    for note in notifications:
        if already_sent is not None and note.key in already_sent:
            continue
        notifier.send(note.recipient, note.subject, note.body)
        sent.append(note.key)
        if already_sent is not None:
            already_sent.add(note.key)
    return sent


# -- loading and linting ------------------------------------------------------------------------------


def _rule_lines(text: str) -> list[int]:
    """Line numbers of the ``[[rules]]`` tables of a TOML policy, in order."""
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == "[[rules]]"]


def load_policy(
    source: str | Path,
    *,
    directory: Directory | None = None,
    text: str | None = None,
    format: str | None = None,
) -> Policy:
    """Load a policy from a TOML or JSON file (or from ``text``), checking everything at once.

    With a ``directory``, unknown roles, users and departments are errors at load time, not
    surprises at routing time.  Every problem is listed with its location (``rules[2].steps[0]
    (policy.toml line 31)``).

    Raises:
        PolicyError: listing every problem.
        OSError: the file cannot be read.
    """
    name, kind, text, data = read_settings(source, text, format, PolicyError)
    lines = _rule_lines(text) if kind == "toml" else []
    problems: list[Problem] = []
    policy = _build_policy(data, name, lines, problems)
    if policy is not None and directory is not None:
        roles = directory.roles()
        departments = directory.departments()
        for rule in policy.rules:
            for j, spec in enumerate(rule.steps):
                where = f"{rule.location}.steps[{j}]"
                if spec.approver.kind is ApproverKind.ROLE and spec.approver.ref not in roles:
                    problems.append(
                        Problem(
                            where,
                            f"unknown role {spec.approver.ref!r}; known roles: {sorted(roles)}",
                        )
                    )
                if (
                    spec.approver.kind is ApproverKind.USER
                    and directory.actor(ActorId(spec.approver.ref)) is None
                ):
                    problems.append(Problem(where, f"unknown user {spec.approver.ref!r}"))
                if (
                    spec.escalate_to
                    and spec.escalate_to != "manager"
                    and spec.escalate_to not in roles
                ):
                    problems.append(Problem(where, f"unknown escalation role {spec.escalate_to!r}"))
            for dept in sorted(rule.departments - departments):
                problems.append(
                    Problem(
                        rule.location, f"unknown department {dept!r}; known: {sorted(departments)}"
                    )
                )
    if problems:
        raise PolicyError(f"policy {name}", problems)
    assert policy is not None
    return policy


_POLICY_KEYS = {"policy", "rules"}
_POLICY_FIELDS = {
    "name",
    "base_currency",
    "amount_basis",
    "when_no_rule_matches",
    "allow_same_approver",
    "keep_decisions_on_reroute",
    "reapproval_percent",
    "split_window_days",
    "split_threshold",
    "reminder_interval_hours",
    "escalate_after_hours",
}
_RULE_FIELDS = {
    "id",
    "description",
    "documents",
    "amount",
    "departments",
    "cost_centres",
    "categories",
    "suppliers",
    "budget",
    "conditions",
    "steps",
}
_STEP_FIELDS = {
    "level",
    "approver",
    "mode",
    "quorum",
    "due_hours",
    "due_business_days",
    "escalate_to",
}


def _decimal(value: object, path: str, problems: list[Problem]) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.append(Problem(path, f'expected a decimal string such as "10000", got {value!r}'))
        return None
    try:
        result = Decimal(value)
    except InvalidOperation:
        problems.append(Problem(path, f"expected a decimal string, got {value!r}"))
        return None
    if not result.is_finite():
        problems.append(Problem(path, f"expected a finite number, got {value!r}"))
        return None
    return result


def _strings(value: object, path: str, problems: list[Problem]) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(path, f"expected a list of strings, got {value!r}"))
        return frozenset()
    return frozenset(value)


def _extra(data: Mapping[str, Any], allowed: set[str], path: str, problems: list[Problem]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        problems.append(Problem(path, f"unknown keys {unknown}; allowed: {sorted(allowed)}"))


def _build_policy(
    data: object, name: str, lines: list[int], problems: list[Problem]
) -> Policy | None:
    if not isinstance(data, Mapping):
        problems.append(Problem("", "a policy is a table with [policy] and [[rules]]"))
        return None
    _extra(data, _POLICY_KEYS, "", problems)
    header = data.get("policy", {})
    if not isinstance(header, Mapping):
        problems.append(Problem("policy", "expected a table"))
        header = {}
    _extra(header, _POLICY_FIELDS, "policy", problems)
    kwargs: dict[str, Any] = {}
    for key in ("name", "base_currency", "amount_basis", "when_no_rule_matches"):
        if key in header:
            if isinstance(header[key], str):
                kwargs[key] = header[key]
            else:
                problems.append(Problem(f"policy.{key}", f"expected a string, got {header[key]!r}"))
    for key in ("name", "base_currency"):
        if key not in header:
            problems.append(Problem(f"policy.{key}", "required"))
    if "base_currency" in kwargs:
        try:
            check_currency(kwargs["base_currency"])
        except Exception as err:
            problems.append(Problem("policy.base_currency", str(err)))
    for key in ("allow_same_approver", "keep_decisions_on_reroute"):
        if key in header:
            if isinstance(header[key], bool):
                kwargs[key] = header[key]
            else:
                problems.append(
                    Problem(f"policy.{key}", f"expected true or false, got {header[key]!r}")
                )
    for key in ("split_window_days", "reminder_interval_hours", "escalate_after_hours"):
        if key in header:
            value = header[key]
            if type(value) is int and value > 0:
                kwargs[key] = value
            else:
                problems.append(
                    Problem(f"policy.{key}", f"expected a positive integer, got {value!r}")
                )
    for key in ("split_threshold", "reapproval_percent"):
        if key in header:
            kwargs[key] = _decimal(header[key], f"policy.{key}", problems)
    rules_data = data.get("rules", [])
    if not isinstance(rules_data, list):
        problems.append(Problem("rules", "expected an array of tables [[rules]]"))
        rules_data = []
    rules = []
    for i, raw in enumerate(rules_data):
        where = f"rules[{i}]" + (f" ({name} line {lines[i]})" if i < len(lines) else "")
        rule = _build_rule(raw, where, problems)
        if rule is not None:
            rules.append(rule)
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(
                Problem(rule.location, f"duplicate rule id {rule.id!r} (first at {seen[rule.id]})")
            )
        seen.setdefault(rule.id, rule.location)
    if problems:
        return None
    return Policy(rules=tuple(rules), **kwargs)


def _build_rule(raw: object, where: str, problems: list[Problem]) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(where, "expected a table"))
        return None
    before = len(problems)
    _extra(raw, _RULE_FIELDS, where, problems)
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        problems.append(Problem(f"{where}.id", "every rule needs a string id"))
    kw: dict[str, Any] = {}
    if "description" in raw:
        kw["description"] = str(raw["description"])
    if "documents" in raw:
        docs = _strings(raw["documents"], f"{where}.documents", problems)
        bad = docs - {d.value for d in DocumentKind}
        if bad:
            problems.append(
                Problem(
                    f"{where}.documents",
                    f"unknown document kinds {sorted(bad)}; use requisition, purchase_order",
                )
            )
        kw["documents"] = frozenset(DocumentKind(d) for d in docs - bad)
    if "amount" in raw:
        amount = raw["amount"]
        if not isinstance(amount, Mapping):
            problems.append(
                Problem(f"{where}.amount", 'expected a table {min = "...", max = "..."}')
            )
        else:
            _extra(
                amount,
                {"min", "max", "min_inclusive", "max_inclusive"},
                f"{where}.amount",
                problems,
            )
            lo = (
                _decimal(amount["min"], f"{where}.amount.min", problems)
                if "min" in amount
                else None
            )
            hi = (
                _decimal(amount["max"], f"{where}.amount.max", problems)
                if "max" in amount
                else None
            )
            flags = {}
            for key in ("min_inclusive", "max_inclusive"):
                if key in amount:
                    if isinstance(amount[key], bool):
                        flags[key] = amount[key]
                    else:
                        problems.append(Problem(f"{where}.amount.{key}", "expected true or false"))
            kw["amount"] = AmountRange(minimum=lo, maximum=hi, **flags)
    for key in ("departments", "cost_centres", "categories"):
        if key in raw:
            kw[key] = _strings(raw[key], f"{where}.{key}", problems)
    if "suppliers" in raw:
        statuses = _strings(raw["suppliers"], f"{where}.suppliers", problems)
        bad = statuses - {s.value for s in SupplierStatus}
        if bad:
            problems.append(
                Problem(
                    f"{where}.suppliers",
                    f"unknown supplier statuses {sorted(bad)}; "
                    "use preferred, not_preferred, blocked",
                )
            )
        kw["suppliers"] = frozenset(SupplierStatus(s) for s in statuses - bad)
    if "budget" in raw:
        if raw["budget"] in ("available", "exceeded"):
            kw["budget"] = BudgetState(raw["budget"])
        else:
            problems.append(
                Problem(
                    f"{where}.budget", f"expected 'available' or 'exceeded', got {raw['budget']!r}"
                )
            )
    if "conditions" in raw:
        kw["conditions"] = tuple(
            sorted(_strings(raw["conditions"], f"{where}.conditions", problems))
        )
    steps = []
    raw_steps = raw.get("steps", [])
    if not isinstance(raw_steps, list):
        problems.append(Problem(f"{where}.steps", "expected an array of tables [[rules.steps]]"))
        raw_steps = []
    for j, step in enumerate(raw_steps):
        built = _build_step(step, f"{where}.steps[{j}]", problems)
        if built is not None:
            steps.append(built)
    if len(problems) > before:
        return None
    return Rule(id=str(rule_id), steps=tuple(steps), location=where, **kw)


def _build_step(raw: object, where: str, problems: list[Problem]) -> StepSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(where, "expected a table"))
        return None
    before = len(problems)
    _extra(raw, _STEP_FIELDS, where, problems)
    level = raw.get("level", 1)
    if type(level) is not int or level < 1:
        problems.append(Problem(f"{where}.level", f"expected a positive integer, got {level!r}"))
    approver = raw.get("approver")
    parsed: Approver | None = None
    if isinstance(approver, Mapping) and len(approver) == 1:
        ((key, value),) = approver.items()
        if key == "role" and isinstance(value, str):
            parsed = Approver.role(value)
        elif key == "user" and isinstance(value, str):
            parsed = Approver.user(value)
        elif key == "relative" and value in ("manager", "second_manager"):
            parsed = Approver.manager() if value == "manager" else Approver.second_manager()
    if parsed is None:
        problems.append(
            Problem(
                f"{where}.approver",
                'expected one of {role = "..."}, {user = "..."}, '
                f'{{relative = "manager"}}, {{relative = "second_manager"}}; got {approver!r}',
            )
        )
    mode = raw.get("mode", "sequential")
    if mode not in ("sequential", "parallel"):
        problems.append(
            Problem(f"{where}.mode", f"expected 'sequential' or 'parallel', got {mode!r}")
        )
    quorum_raw = raw.get("quorum", "any")
    quorum = None
    if quorum_raw == "any":
        quorum = Quorum.any()
    elif quorum_raw == "all":
        quorum = Quorum.all()
    elif type(quorum_raw) is int and quorum_raw >= 1:
        quorum = Quorum.of(quorum_raw)
    else:
        problems.append(
            Problem(f"{where}.quorum", f"expected 'any', 'all' or a count >= 1, got {quorum_raw!r}")
        )
    due = {}
    for key in ("due_hours", "due_business_days"):
        if key in raw:
            if type(raw[key]) is int and raw[key] > 0:
                due[key] = raw[key]
            else:
                problems.append(
                    Problem(f"{where}.{key}", f"expected a positive integer, got {raw[key]!r}")
                )
    if len(due) == 2:
        problems.append(Problem(where, "give due_hours or due_business_days, not both"))
    escalate = raw.get("escalate_to")
    if escalate is not None and not isinstance(escalate, str):
        problems.append(Problem(f"{where}.escalate_to", "expected a role name or 'manager'"))
    if len(problems) > before or parsed is None or quorum is None:
        return None
    return StepSpec(
        level=level,
        approver=parsed,
        mode=StepMode(mode),
        quorum=quorum,
        escalate_to=escalate,
        **due,
    )


@attrs.frozen
class LintFinding:
    """Something questionable in a policy, located at the rule(s) concerned."""

    code: str
    message: str
    locations: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.code}: {self.message} [{'; '.join(self.locations)}]"


def _overlaps(a: AmountRange | None, b: AmountRange | None) -> bool:
    a = a or AmountRange()
    b = b or AmountRange()
    if a.empty or b.empty:
        return False

    # a's lower bound against b's upper bound, and the reverse.
    def below(lo: AmountRange, hi: AmountRange) -> bool:
        if lo.minimum is None or hi.maximum is None:
            return False
        if lo.minimum > hi.maximum:
            return True
        return lo.minimum == hi.maximum and not (lo.min_inclusive and hi.max_inclusive)

    return not below(a, b) and not below(b, a)


def _same_scope(a: Rule, b: Rule) -> bool:
    def meet(x: frozenset[Any], y: frozenset[Any]) -> bool:
        return not x or not y or bool(x & y)

    return (
        bool(a.documents & b.documents)
        and meet(a.departments, b.departments)
        and meet(a.cost_centres, b.cost_centres)
        and meet(a.categories, b.categories)
        and meet(a.suppliers, b.suppliers)
        and (a.budget is None or b.budget is None or a.budget == b.budget)
        and _overlaps(a.amount, b.amount)
    )


def lint_policy(policy: Policy, directory: Directory | None = None) -> list[LintFinding]:
    """Report what is questionable in a policy.

    * ``never_fires``: an empty amount range, no document kinds, or no steps;
    * ``unknown_role`` / ``unknown_user`` / ``unknown_department`` (with a directory);
    * ``overlap``: two rules that can match the same document and ask the same approver at
      different levels, or that give one level both sequential and parallel modes (contradiction);
    * ``duplicate``: two rules with identical conditions;
    * ``uncovered_amounts``: amount ranges no rule covers (for rules without other conditions that
      would make them partial), when the policy does not auto-approve.
    """
    out: list[LintFinding] = []
    for rule in policy.rules:
        where = (rule.location or rule.id,)
        problems: list[tuple[str, str]] = []
        if rule.amount is not None and rule.amount.empty:
            problems.append(("never_fires", "the amount range is empty"))
        if not rule.documents:
            problems.append(("never_fires", "applies to no document kind"))
        if not rule.steps:
            problems.append(("never_fires", "contributes no step"))
        if directory is not None:
            roles = directory.roles()
            for spec in rule.steps:
                ref = spec.approver.ref
                if spec.approver.kind is ApproverKind.ROLE and ref not in roles:
                    problems.append(("unknown_role", f"role {ref!r} is held by nobody"))
                if (
                    spec.approver.kind is ApproverKind.USER
                    and directory.actor(ActorId(ref)) is None
                ):
                    problems.append(("unknown_user", f"user {ref!r} is unknown"))
            for dept in sorted(rule.departments - directory.departments()):
                problems.append(("unknown_department", f"department {dept!r} is unknown"))
        out.extend(LintFinding(code, f"rule {rule.id}: {text}", where) for code, text in problems)
    rules = list(policy.rules)
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            if not _same_scope(a, b):
                continue
            locs = (a.location or a.id, b.location or b.id)
            if (
                a.documents,
                a.amount,
                a.departments,
                a.cost_centres,
                a.categories,
                a.suppliers,
                a.budget,
                a.conditions,
            ) == (
                b.documents,
                b.amount,
                b.departments,
                b.cost_centres,
                b.categories,
                b.suppliers,
                b.budget,
                b.conditions,
            ):
                out.append(
                    LintFinding(
                        "duplicate", f"rules {a.id} and {b.id} have the same conditions", locs
                    )
                )
                continue
            a_levels = {(s.approver.kind, s.approver.ref): s.level for s in a.steps}
            for s in b.steps:
                key = (s.approver.kind, s.approver.ref)
                if key in a_levels and a_levels[key] != s.level:
                    out.append(
                        LintFinding(
                            "overlap",
                            f"rules {a.id} and {b.id} can match the same document and ask "
                            f"{s.approver.kind.value} {s.approver.ref} at levels {a_levels[key]} and "
                            f"{s.level}",
                            locs,
                        )
                    )
            a_modes = {s.level: s.mode for s in a.steps}
            for s in b.steps:
                if s.level in a_modes and a_modes[s.level] != s.mode:
                    out.append(
                        LintFinding(
                            "overlap",
                            f"rules {a.id} and {b.id} contradict each other: level "
                            f"{s.level} is {a_modes[s.level].value} in one and {s.mode.value} in the "
                            "other",
                            locs,
                        )
                    )
    if policy.when_no_rule_matches == "error":
        out.extend(_coverage(policy))
    return out


def _coverage(policy: Policy) -> list[LintFinding]:
    """Gaps in amount coverage by the rules that apply to every document of a kind."""
    findings = []
    for kind in DocumentKind:
        general = [
            r
            for r in policy.rules
            if kind in r.documents
            and r.steps
            and not (
                r.departments
                or r.cost_centres
                or r.categories
                or r.suppliers
                or r.budget
                or r.conditions
            )
        ]
        ranges = sorted(
            ((r.amount or AmountRange()) for r in general if not (r.amount and r.amount.empty)),
            key=lambda a: (a.minimum is not None, a.minimum or _ZERO, not a.min_inclusive),
        )
        point = _ZERO  # everything below `point` is covered
        point_inclusive = True  # whether `point` itself is still uncovered
        unbounded = False
        gaps = []
        for rng in ranges:
            lo = rng.minimum
            if lo is not None and (
                lo > point or (lo == point and point_inclusive and not rng.min_inclusive)
            ):
                gaps.append(_gap_text(point, point_inclusive, lo, not rng.min_inclusive, policy))
            if rng.maximum is None:
                unbounded = True
                break
            if rng.maximum > point or (
                rng.maximum == point and rng.max_inclusive and point_inclusive
            ):
                point = rng.maximum
                point_inclusive = not rng.max_inclusive
        if not unbounded:
            op = "≥" if point_inclusive else ">"
            gaps.append(f"amounts {op} {_show(Money(point, policy.base_currency))}")
        if gaps:
            findings.append(
                LintFinding(
                    "uncovered_amounts",
                    f"no general rule covers {kind.value} "
                    + "; ".join(gaps)
                    + " (documents there are refused unless another rule matches)",
                    ("policy",),
                )
            )
    return findings


def _gap_text(lo: Decimal, lo_incl: bool, hi: Decimal, hi_incl: bool, policy: Policy) -> str:
    a = ("≥" if lo_incl else ">") + f" {_show(Money(lo, policy.base_currency))}"
    b = ("≤" if hi_incl else "<") + f" {_show(Money(hi, policy.base_currency))}"
    return f"amounts {a} and {b}"


# -- simulation ---------------------------------------------------------------------------------------


@attrs.frozen
class SimulationReport:
    """What a policy asks of approvers over a batch of documents.

    ``approvals_by_approver`` counts, for each person, the steps they are a candidate for, weighted
    by their share of the step (a step with quorum 1 among 4 candidates adds 0.25 to each), summed
    exactly and rounded to 4 decimals;
    ``steps_by_rule`` counts steps per rule; ``routes`` maps each document id to its step ids.
    """

    policy: str
    documents: int
    unroutable: tuple[tuple[str, str], ...]
    steps: int
    approvals_by_approver: tuple[tuple[str, Decimal], ...]
    steps_by_level: tuple[tuple[int, int], ...]
    steps_by_rule: tuple[tuple[str, int], ...]
    flags: tuple[tuple[str, int], ...]
    routes: tuple[tuple[str, tuple[str, ...]], ...]

    def load(self, approver: str) -> Decimal:
        """Expected approvals for ``approver`` (0 if none)."""
        return dict(self.approvals_by_approver).get(approver, _ZERO)


def simulate(
    documents: Iterable[Requisition | PurchaseOrder],
    router: Router,
    at: Callable[[Requisition | PurchaseOrder], datetime] | None = None,
) -> SimulationReport:
    """Route every document through the router's policy and count what it would ask.

    ``at`` gives the routing time per document (default: its creation time).
    """
    load: dict[str, Fraction] = defaultdict(Fraction)
    by_level: dict[int, int] = defaultdict(int)
    by_rule: dict[str, int] = defaultdict(int)
    flags: dict[str, int] = defaultdict(int)
    routes = []
    unroutable = []
    count = steps = 0
    for doc in documents:
        count += 1
        when = at(doc) if at else doc.created_at
        try:
            route = router.route(doc, when)
        except RoutingError as err:
            unroutable.append((doc.id, "; ".join(str(p) for p in err.problems)))
            continue
        routes.append((doc.id, tuple(s.step_id for s in route.steps)))
        for flag in route.flags:
            flags[flag.split(":", 1)[0]] += 1
        for step in route.steps:
            steps += 1
            by_level[step.level] += 1
            for rule in step.rules:
                by_rule[rule] += 1
            if step.candidates:
                share = Fraction(step.quorum.needed(len(step.candidates)), len(step.candidates))
                for person in step.candidates:
                    load[person] += share
    return SimulationReport(
        policy=router.policy.name,
        documents=count,
        unroutable=tuple(unroutable),
        steps=steps,
        approvals_by_approver=tuple(sorted((who, _four(value)) for who, value in load.items())),
        steps_by_level=tuple(sorted(by_level.items())),
        steps_by_rule=tuple(sorted(by_rule.items())),
        flags=tuple(sorted(flags.items())),
        routes=tuple(routes),
    )


def _four(value: Fraction) -> Decimal:
    """An exact fraction as a Decimal rounded half-even to 4 places (loads are counts of work)."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.0001"))


@attrs.frozen
class PolicyComparison:
    """What changes between two policies on the same documents."""

    before: SimulationReport
    after: SimulationReport
    load_change: tuple[tuple[str, Decimal, Decimal], ...]
    """(approver, before, after) for everyone whose expected load changes."""
    changed_routes: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    """(document, steps before, steps after) for every document whose route changes."""

    def summary(self) -> str:
        """A few lines a person can read."""
        lines = [
            f"{len(self.changed_routes)} of {self.before.documents} documents change route; "
            f"steps {self.before.steps} → {self.after.steps}"
        ]
        for who, a, b in self.load_change:
            lines.append(f"  {who}: {a.normalize():f} → {b.normalize():f}")
        return "\n".join(lines)


def compare_policies(before: SimulationReport, after: SimulationReport) -> PolicyComparison:
    """Compare two simulations of the same documents (see :func:`simulate`)."""
    people = sorted(
        set(dict(before.approvals_by_approver)) | set(dict(after.approvals_by_approver))
    )
    change = tuple(
        (p, before.load(p), after.load(p)) for p in people if before.load(p) != after.load(p)
    )
    a_routes = dict(before.routes)
    b_routes = dict(after.routes)
    changed = tuple(
        (doc, a_routes.get(doc, ()), b_routes.get(doc, ()))
        for doc in sorted(set(a_routes) | set(b_routes))
        if a_routes.get(doc) != b_routes.get(doc)
    )
    return PolicyComparison(before, after, change, changed)
