"""The purchase-order lifecycle: where a requisition or PO stands and what may happen next.

Hosts call :meth:`PurchaseOrderLifecycle.apply` for every business event.  Applying an event is a
pure function — (current PO, event, actor, time) → (new PO, transition record) — that refuses what
is not allowed with a typed error carrying every reason, and records what is:

>>> from potrack.events import ReceiveGoods
>>> from potrack.testing.scenario import Scenario
>>> s = Scenario()
>>> po = s.issued_po()
>>> po.state.value, po.number
('issued', 'PO-OPS-2026-00001')
>>> t = s.lifecycle.apply(po, ReceiveGoods(receipt=s.receipt(po, "60")), s.receiver, s.at(10))
>>> t.document.state.value, t.record.domain_events
('in_fulfilment', ('goods_received',))
>>> progress(t.document).receipt.value
'partial'

States, events, guards and the roles allowed for each event are declared in one table
(:data:`PO_TRANSITIONS`, :data:`REQUISITION_TRANSITIONS`); :func:`check_table` verifies it (one
initial state, no exits from terminal states, every state reachable, no traps) and
:func:`transition_table_markdown` / :func:`transition_diagram_mermaid` render it for the docs.

Progress — received, billed, matched, paid — is *derived* from quantities and amounts
(:func:`progress`), each line capped at its ordered quantity so an over-received line never hides an
under-received one; the PO closes itself when everything is done.  Transition records are the audit
trail and, replayed (:func:`replay`), rebuild exactly the same document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from potrack._access import DepartmentAccess
from potrack._lifecycle.machine import Applied, _Machine
from potrack._lifecycle.po_table import PO_FINAL as PO_FINAL
from potrack._lifecycle.po_table import PO_REOPEN as PO_REOPEN
from potrack._lifecycle.po_table import PO_TERMINAL as PO_TERMINAL
from potrack._lifecycle.po_table import PO_TRANSITIONS
from potrack._lifecycle.progress import (
    _PO,
    _ZERO,
    BillingStatus,
    MatchStatus,
    PaymentStatus,
    Progress,
    ReceiptStatus,
    _progress_of,
    _Req,
    dashboard_status,
    effective_match_level,
    expected_date,
    is_overdue,
    progress,
    receipt_required,
)
from potrack._lifecycle.requisitions import REQ_TERMINAL as REQ_TERMINAL
from potrack._lifecycle.requisitions import REQUISITION_TRANSITIONS, R
from potrack._lifecycle.table import ACTIVE as ACTIVE
from potrack._lifecycle.table import PODocuments, S, TransitionRule
from potrack.approval import Router, Suppliers, as_suppliers
from potrack.events import (
    ConvertToOrders,
    CreatePurchaseOrder,
    CreateRequisition,
    Event,
    TransitionRecord,
)
from potrack.exceptions import (
    ApprovalError,
)
from potrack.matching import TolerancePolicy
from potrack.numbering import NumberingScheme
from potrack.records import (
    Actor,
    ActorId,
    Closure,
    ClosureKind,
    Conversion,
    InvoiceKind,
    InvoiceStatus,
    ItemId,
    MatchLevel,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderLine,
    Requisition,
    Role,
    SupplierId,
)
from potrack.typing import AccessPolicy, Directory

__all__ = [
    "PO_TRANSITIONS",
    "REQUISITION_TRANSITIONS",
    "Applied",
    "BillingStatus",
    "DepartmentAccess",
    "MatchStatus",
    "PODocuments",
    "PaymentStatus",
    "Progress",
    "PurchaseOrderLifecycle",
    "ReceiptStatus",
    "RequisitionLifecycle",
    "TableProblem",
    "TransitionRule",
    "check_table",
    "dashboard_status",
    "effective_match_level",
    "expected_date",
    "is_overdue",
    "progress",
    "receipt_required",
    "replay",
    "replay_requisition",
    "transition_diagram_mermaid",
    "transition_table_markdown",
]


class PurchaseOrderLifecycle(_Machine[PurchaseOrder]):
    """Applies business events to purchase orders.

    Args:
        router: routes POs through the approval policy at submission and on re-approval.
        directory: people and delegations (defaults to the router's).
        suppliers: supplier master data (blocked suppliers get no orders).
        numbering: the scheme issued numbers must fit (checked at issue).
        default_match_level: matching level of lines that set none (decides which lines wait for
            a receipt).
        over_receipt_allowance: percent of the ordered quantity that may be received beyond it.
        item_allowances: per-item allowances (percent), overriding the default.
        reapproval_percent: a revision raising the value by more than this percent goes back
            through approval (``None``: any increase; default: the policy's setting).
        keep_decisions_on_reroute: keep approvals of unchanged steps when re-routing (default: the
            policy's setting).
        role_overrides: roles allowed per event name, replacing the table's (``{"receive":
            frozenset({"warehouse"})}``).
        access: who may act on which document beyond the table's roles (default
            :class:`DepartmentAccess`: buyers on their own department's documents).
        tolerances: the tolerance policy recording a match runs the engine with (default:
            :class:`~potrack.matching.TolerancePolicy`'s default, exact matching).
        override_roles: roles whose holders may accept a matching finding with a reason
            (default: ``match_override``).
    """

    aggregate = "purchase_order"
    table = PO_TRANSITIONS
    terminal = PO_TERMINAL
    final = PO_FINAL
    reopen = PO_REOPEN

    def __init__(
        self,
        *,
        router: Router | None = None,
        directory: Directory | None = None,
        suppliers: Suppliers | Mapping[str, Any] | Iterable[Any] | None = None,
        numbering: NumberingScheme | None = None,
        default_match_level: MatchLevel = MatchLevel.THREE_WAY,
        over_receipt_allowance: Decimal = _ZERO,
        item_allowances: Mapping[ItemId, Decimal] | None = None,
        reapproval_percent: Decimal | str | None = "policy",
        keep_decisions_on_reroute: bool | None = None,
        role_overrides: Mapping[str, Iterable[str]] | None = None,
        access: AccessPolicy | None = None,
        tolerances: TolerancePolicy | None = None,
        override_roles: Iterable[str] = (Role.MATCH_OVERRIDE,),
    ) -> None:
        super().__init__()
        self.access = access if access is not None else DepartmentAccess()
        self.tolerances = tolerances if tolerances is not None else TolerancePolicy()
        self.override_roles = frozenset(override_roles)
        self.router = router
        self.directory = directory or (router.directory if router else None)
        self.suppliers = as_suppliers(
            suppliers if suppliers is not None else (router.suppliers if router else None)
        )
        self.numbering = numbering
        self.default_match_level = default_match_level
        self.over_receipt_allowance = Decimal(over_receipt_allowance)
        self.item_allowances = dict(item_allowances or {})
        if reapproval_percent == "policy":
            self.reapproval_percent = router.policy.reapproval_percent if router else _ZERO
        else:
            self.reapproval_percent = reapproval_percent  # type: ignore[assignment]
        self.keep_decisions = (
            keep_decisions_on_reroute
            if keep_decisions_on_reroute is not None
            else bool(router and router.policy.keep_decisions_on_reroute)
        )
        self.role_overrides = {k: frozenset(v) for k, v in (role_overrides or {}).items()}
        self._supplier_users: dict[str, frozenset[str]] = {}

    def _builder(self, doc: PurchaseOrder) -> _PO:
        return _PO(doc)

    closed_state = S.CLOSED

    def _done(self, b: _PO) -> bool:
        if b.state is not S.IN_FULFILMENT or not b.invoices:
            return False
        owed = paid = _ZERO
        for inv in b.invoices.values():
            if inv.status is not InvoiceStatus.MATCHED and (
                inv.status is not InvoiceStatus.MATCHED_WITHIN_TOLERANCE
            ):
                return False
            owed += -inv.amount if inv.kind is InvoiceKind.CREDIT_MEMO else inv.amount
            paid += inv.paid
        if paid < owed or paid <= 0:
            return False
        p = _progress_of(
            b.get("match_level"), b.lines, b.peek, b.invoices.values(), self.default_match_level
        )
        return p.complete

    def _close(self, b: _PO, actor: ActorId, at: datetime) -> tuple[str, ...]:
        b.state = S.CLOSED
        b.set(
            closure=Closure(
                kind=ClosureKind.COMPLETE,
                at=at,
                by=actor,
                reason="every line received, invoiced, matched and paid",
            )
        )
        return ("po_closed",)

    def create(
        self, po: PurchaseOrder, actor: Actor | ActorId, at: datetime, key: str | None = None
    ) -> Applied[PurchaseOrder]:
        """Create a draft PO (the first transition record).

        Raises:
            NotPermittedError: the actor may not create POs.
            TransitionRefusedError: the PO is not a fresh draft, or its supplier is blocked.
        """
        event = CreatePurchaseOrder(po=po) if key is None else CreatePurchaseOrder(po=po, key=key)
        return self._apply(None, event, actor, at)

    def apply(
        self,
        po: PurchaseOrder,
        event: Event,
        actor: Actor | ActorId,
        at: datetime,
        *,
        documents: PODocuments | None = None,
    ) -> Applied[PurchaseOrder]:
        """Apply one command: a pure function of its arguments (and this configuration).

        ``at`` is the time the transition is recorded at: :class:`~potrack.service.Purchasing`
        passes its clock's time; a host calling the lifecycle directly is that clock.  ``actor``
        is an id or an :class:`Actor`; with a directory, the directory's record of that person is
        what the rules see.

        Raises:
            TransitionRefusedError: the command is not allowed in the PO's state, or a guard
                refuses it; ``reasons`` lists every reason.  Nothing changed.
            NotPermittedError: the actor may not send this command (role, department, supplier
                scope, segregation of duties, unknown to the directory or described otherwise);
                :class:`~potrack.exceptions.DecidedFieldError` when it carries a value the
                library decides.

        ``documents`` are the PO's stored receipts, returns and invoices: recording a match
        (:class:`~potrack.events.RecordMatch`) runs the matching engine on them, and is refused
        without them.
        """
        return self._apply(po, event, actor, at, documents)


class RequisitionLifecycle(_Machine[Requisition]):
    """Applies events to requisitions (see :data:`REQUISITION_TRANSITIONS`).

    Args:
        router: routes requisitions through the approval policy at submission.
        directory: people and delegations (defaults to the router's).
        role_overrides: roles allowed per event name, replacing the table's.
        access: who may act on which requisition (default :class:`DepartmentAccess`).
    """

    aggregate = "requisition"
    table = REQUISITION_TRANSITIONS
    terminal = REQ_TERMINAL
    final: frozenset[Any] = frozenset()
    reopen: frozenset[type[Event]] = frozenset()

    def __init__(
        self,
        *,
        router: Router | None = None,
        directory: Directory | None = None,
        role_overrides: Mapping[str, Iterable[str]] | None = None,
        access: AccessPolicy | None = None,
    ) -> None:
        super().__init__()
        self.access = access if access is not None else DepartmentAccess()
        self.router = router
        self.directory = directory or (router.directory if router else None)
        self.role_overrides = {k: frozenset(v) for k, v in (role_overrides or {}).items()}

    def _builder(self, doc: Requisition) -> _Req:
        return _Req(doc)

    def create(
        self, requisition: Requisition, actor: Actor | ActorId, at: datetime
    ) -> Applied[Requisition]:
        """Create a draft requisition.

        Raises:
            NotPermittedError, TransitionRefusedError: as :meth:`apply`.
        """
        return self._apply(None, CreateRequisition(requisition=requisition), actor, at)

    def apply(
        self, requisition: Requisition, event: Event, actor: Actor | ActorId, at: datetime
    ) -> Applied[Requisition]:
        """Apply one event to a requisition (pure; raises as :meth:`PurchaseOrderLifecycle.apply`)."""
        return self._apply(requisition, event, actor, at)


_REPLAYERS: dict[str, _Machine[Any]] = {}


def replay(
    records: Iterable[TransitionRecord], default_match_level: MatchLevel = MatchLevel.THREE_WAY
) -> PurchaseOrder:
    """Rebuild a PO from its transition records, in version order.

    Replaying a PO's records gives exactly the PO the live events produced: effects are shared,
    and everything the lifecycle decided when an event was applied (route, number, overrides) is
    in the recorded event.

    Raises:
        ReplayError: the records do not start with the creation or skip a version.
    """
    machine = _REPLAYERS.get(f"po:{default_match_level}")
    if machine is None:
        machine = _REPLAYERS[f"po:{default_match_level}"] = PurchaseOrderLifecycle(
            default_match_level=default_match_level
        )
    result: PurchaseOrder = machine.replay_records(records)
    return result


def replay_requisition(records: Iterable[TransitionRecord]) -> Requisition:
    """Rebuild a requisition from its transition records (see :func:`replay`)."""
    machine = _REPLAYERS.get("req")
    if machine is None:
        machine = _REPLAYERS["req"] = RequisitionLifecycle()
    result: Requisition = machine.replay_records(records)
    return result


# -- definition-time checks and rendering -------------------------------------------------------------------


@attrs.frozen
class TableProblem:
    """A defect of a lifecycle table."""

    code: str
    message: str


def check_table(
    table: Sequence[TransitionRule],
    states: Iterable[Any],
    terminal: Iterable[Any],
    final: Iterable[Any] = (),
    reopen: Iterable[type[Event]] = (),
) -> list[TableProblem]:
    """Definition-time checks of a lifecycle table (empty list: sound).

    * exactly one initial state (the target of the creating event);
    * no exits from terminal states; final states exit only through their reopen events;
    * every state reachable from the initial one;
    * no traps: from every state some terminal or final state is reachable.
    """
    states = list(states)
    terminal = frozenset(terminal)
    final = frozenset(final)
    reopen = frozenset(reopen)
    problems = []
    creators = [r for r in table if not r.sources]
    initial = {t for r in creators for t in r.results}
    if len(creators) != 1 or len(initial) != 1:
        problems.append(
            TableProblem(
                "initial", f"expected one initial state, found {sorted(map(str, initial))}"
            )
        )
    edges: dict[Any, set[Any]] = {s: set() for s in states}
    for row in table:
        for src, tgt in row.moves:
            if tgt != src:
                edges[src].add(tgt)
            if src in terminal:
                problems.append(
                    TableProblem(
                        "terminal_exit", f"{row.event.__name__} is accepted in terminal state {src}"
                    )
                )
            if src in final and row.event not in reopen:
                problems.append(
                    TableProblem(
                        "final_exit",
                        f"{row.event.__name__} is accepted in final "
                        f"state {src}; only reopen events are",
                    )
                )
    seen = set(initial)
    todo = list(initial)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    for state in states:
        if state not in seen:
            problems.append(TableProblem("unreachable", f"state {state} cannot be reached"))
    ends = terminal | final
    for state in states:
        if state in ends:
            continue
        reach = set()
        todo = [state]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
        if not reach & ends:
            problems.append(
                TableProblem("trap", f"no terminal or final state can be reached from {state}")
            )
    return problems


def _roles_text(row: TransitionRule) -> str:
    if row.approver:
        return "an approver of the open step"
    roles = ", ".join(sorted(str(r) for r in row.roles)) or "anyone"
    return roles + (" (supplier users: own orders)" if row.supplier_may else "")


def transition_table_markdown(table: Sequence[TransitionRule], order: Sequence[Any]) -> str:
    """The table as Markdown: event, from, to, who, guards, what it does."""
    rank = {s: i for i, s in enumerate(order)}

    def states(values: Iterable[Any]) -> str:
        items = sorted(values, key=lambda s: rank.get(s, 99))
        return ", ".join(f"`{s}`" for s in items) or "—"

    lines = ["| event | from | to | who | checks | what it does |", "|---|---|---|---|---|---|"]
    for row in table:
        guards = (
            ", ".join(g.__name__.removeprefix("_g_").replace("_", " ") for g in row.guards) or "—"
        )
        to = "(unchanged)" if row.stays else states(row.results)
        lines.append(
            f"| `{row.event.name}` ({row.event.__name__}) | {states(row.sources)} | "
            f"{to} | {_roles_text(row)} | {guards} | {row.summary} |"
        )
    return "\n".join(lines)


def transition_diagram_mermaid(
    table: Sequence[TransitionRule], initial: Any, ends: Iterable[Any]
) -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` (self-loops left out)."""
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    pairs: dict[tuple[str, str], list[str]] = {}
    for row in table:
        for src, tgt in row.moves:
            if src != tgt:
                pairs.setdefault((str(src), str(tgt)), []).append(row.event.name)
    for (src, tgt), names in sorted(pairs.items()):
        lines.append(f"    {src} --> {tgt}: {', '.join(sorted(set(names)))}")
    for end in sorted(map(str, ends)):
        lines.append(f"    {end} --> [*]")
    return "\n".join(lines)


# -- requisitions into orders ---------------------------------------------------------------------------------


def convert_requisitions(
    requisitions: Iterable[Requisition],
    *,
    buyer: ActorId,
    at: datetime,
    new_id: Callable[[int], str],
    supplier_for: Mapping[tuple[str, int], str] | None = None,
    merge: bool = True,
) -> tuple[list[PurchaseOrder], dict[str, ConvertToOrders]]:
    """Turn approved requisitions into draft POs: one PO per (supplier, currency), lines split
    across suppliers, and identical lines (same item, unit, price, price unit) merged when
    ``merge`` is set.

    ``supplier_for`` assigns a supplier to (requisition id, line no) pairs, overriding the line's
    suggested supplier.  ``new_id(i)`` names the i-th PO.  Returns the drafts and, per requisition,
    the :class:`~potrack.events.ConvertToOrders` event to apply to it.

    Raises:
        ApprovalError: a requisition is not approved, or a line has no supplier.
    """
    groups: dict[tuple[str, str], list[tuple[Requisition, Any]]] = {}
    problems = []
    reqs = list(requisitions)
    for req in reqs:
        if req.state is not R.APPROVED:
            problems.append(f"requisition {req.id} is {req.state.value}, not approved")
        done = {cv.line_no for cv in req.conversions}
        for line in req.lines:
            if line.line_no in done:
                continue
            supplier = (supplier_for or {}).get((req.id, line.line_no)) or line.suggested_supplier
            if supplier is None:
                problems.append(f"requisition {req.id} line {line.line_no} has no supplier")
                continue
            groups.setdefault((supplier, req.currency), []).append((req, line))
    if problems:
        raise ApprovalError("; ".join(problems))
    orders = []
    conversions: dict[str, list[Conversion]] = {r.id: [] for r in reqs}
    for index, ((supplier, currency), items) in enumerate(sorted(groups.items())):
        po_id = new_id(index)
        lines: list[PurchaseOrderLine] = []
        keys: dict[tuple[Any, ...], int] = {}
        for req, line in items:
            key = (
                line.item,
                line.uom,
                line.estimated_unit_price,
                line.price_unit,
                line.line_type,
                line.category,
            )
            if merge and line.item is not None and key in keys:
                pos = keys[key]
                lines[pos] = attrs.evolve(lines[pos], quantity=lines[pos].quantity + line.quantity)
                po_line = lines[pos].line_no
            else:
                po_line = len(lines) + 1
                lines.append(
                    PurchaseOrderLine(
                        line_no=po_line,
                        description=line.description,
                        category=line.category,
                        quantity=line.quantity,
                        uom=line.uom,
                        unit_price=line.estimated_unit_price,
                        price_unit=line.price_unit,
                        item=line.item,
                        requested_date=line.needed_by or req.needed_by,
                        cost_centre=line.cost_centre or req.cost_centre,
                        department=req.department,
                        budget=line.budget or req.budget,
                        line_type=line.line_type,
                        requisition=req.id,
                        requisition_line=line.line_no,
                    )
                )
                keys[key] = len(lines) - 1
            conversions[req.id].append(
                Conversion(line_no=line.line_no, po_id=PurchaseOrderId(po_id), po_line_no=po_line)
            )
        first = items[0][0]
        orders.append(
            PurchaseOrder(
                id=PurchaseOrderId(po_id),
                supplier_id=SupplierId(supplier),
                buyer=buyer,
                currency=currency,
                lines=tuple(lines),
                created_at=at,
                requester=first.requester,
                department=first.department,
                cost_centre=first.cost_centre,
                budget=first.budget,
                company=first.company,
                site=first.site,
                requisitions=tuple(dict.fromkeys(r.id for r, _ in items)),
            )
        )
    events = {
        rid: ConvertToOrders(conversions=tuple(cvs)) for rid, cvs in conversions.items() if cvs
    }
    return orders, events
