"""A small, fully configured procurement world for tests, examples and docs.

:class:`Scenario` holds a directory of people (requester, buyers, approvers, receiver, inspector,
accounts payable, treasurer, supplier users), three suppliers (preferred, not preferred, blocked),
an approval policy (the requester's manager always; the CFO from 5,000 USD), a numbering scheme and
the lifecycles wired together, plus helpers that bring a PO to a given state in one call.

>>> s = Scenario()
>>> po = s.approved_po()
>>> po.state.value, [d.actor for d in po.approval.decisions]
('approved', ['mgr-1'])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from potrack import approval as ap
from potrack.events import Event, Issue, RecordDecision, SubmitForApproval
from potrack.lifecycle import Applied, PODocuments, PurchaseOrderLifecycle, RequisitionLifecycle
from potrack.matching import TolerancePolicy
from potrack.memory import InMemoryDirectory, InMemoryStore
from potrack.money import money
from potrack.numbering import GaplessAllocator, NumberingContext, NumberingScheme
from potrack.records import (
    Actor,
    ActorId,
    Decision,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceLine,
    ItemId,
    MatchLevel,
    Payment,
    PaymentAllocation,
    PaymentId,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderLine,
    PurchaseOrderNumber,
    ReceiptId,
    ReceiptLine,
    Role,
    Supplier,
    SupplierId,
)
from potrack.testing.clock import ManualClock
from potrack.testing.samples import T0

__all__ = ["Scenario"]


def _actor(actor_id: str, *roles: str, **over: Any) -> Actor:
    fields: dict[str, Any] = {
        "id": ActorId(actor_id),
        "name": actor_id.replace("-", " ").title(),
        "roles": frozenset(roles),
        "department": "OPS",
    }
    fields.update(over)
    return Actor(**fields)


class Scenario:
    """A configured world: people, suppliers, policy, numbering, lifecycles.

    Args:
        over_receipt_allowance: percent allowed beyond the ordered quantity (default 10).
        default_match_level: matching level of lines that set none.
        policy: replace the default approval policy.
        start: the moment ``at(0)`` stands for.
        tolerances: the tolerance policy recording a match runs the engine with (default: exact).
    """

    def __init__(
        self,
        *,
        over_receipt_allowance: Decimal = Decimal(10),
        default_match_level: MatchLevel = MatchLevel.THREE_WAY,
        policy: ap.Policy | None = None,
        start: datetime = T0,
        tolerances: TolerancePolicy | None = None,
    ) -> None:
        self.start = start
        self.clock = ManualClock(start)
        """The clock a :class:`~potrack.service.Purchasing` built on this scenario should use."""
        self.acme = Supplier(
            id=SupplierId("S-ACME"),
            name="Acme Tool Works",
            code="ACME",
            preferred=True,
            currency="USD",
        )
        self.slowco = Supplier(
            id=SupplierId("S-SLOW"), name="Slow and Co", code="SLOW", currency="USD"
        )
        self.badco = Supplier(
            id=SupplierId("S-BAD"),
            name="Bad Parts Ltd",
            code="BAD",
            blocked=True,
            blocked_reason="failed audit",
            currency="USD",
        )
        self.suppliers: dict[str, Supplier] = {
            s.id: s for s in (self.acme, self.slowco, self.badco)
        }
        self.requester = _actor("req-1", Role.REQUESTER, manager="mgr-1")
        self.buyer = _actor("buyer-1", Role.BUYER, manager="mgr-1")
        self.buyer2 = _actor("buyer-2", Role.BUYER)
        self.manager = _actor("mgr-1", Role.APPROVER, manager="cfo-1")
        self.manager2 = _actor("mgr-2", Role.APPROVER)
        self.cfo = _actor("cfo-1", Role.APPROVER, "cfo", department="FIN")
        self.receiver = _actor("recv-1", Role.RECEIVER)
        self.bypass = _actor("recv-2", Role.RECEIVER, Role.OVER_RECEIPT_BYPASS)
        self.inspector = _actor("insp-1", Role.INSPECTOR)
        self.clerk = _actor("ap-1", Role.AP_CLERK, department="FIN")
        self.treasurer = _actor("pay-1", Role.TREASURER, department="FIN")
        self.admin = _actor("admin-1", Role.ADMIN)
        self.system = _actor("potrack", Role.SYSTEM)
        self.supplier_user = _actor(
            "acme-sales", Role.SUPPLIER, supplier_id="S-ACME", department=None
        )
        self.other_supplier_user = _actor(
            "slow-sales", Role.SUPPLIER, supplier_id="S-SLOW", department=None
        )
        self.people = [
            self.requester,
            self.buyer,
            self.buyer2,
            self.manager,
            self.manager2,
            self.cfo,
            self.receiver,
            self.bypass,
            self.inspector,
            self.clerk,
            self.treasurer,
            self.admin,
            self.system,
            self.supplier_user,
            self.other_supplier_user,
        ]
        self.directory = InMemoryDirectory(self.people, extra_departments=frozenset({"IT"}))
        self.policy = policy or ap.Policy(
            name="scenario",
            base_currency="USD",
            rules=(
                ap.Rule(
                    id="manager",
                    description="the requester's manager approves everything",
                    steps=(
                        ap.StepSpec(
                            level=1,
                            approver=ap.Approver.manager(),
                            due_hours=24,
                            escalate_to="manager",
                        ),
                    ),
                ),
                ap.Rule(
                    id="cfo",
                    description="the CFO signs from 5,000 USD",
                    amount=ap.AmountRange(minimum=Decimal(5000)),
                    steps=(
                        ap.StepSpec(level=2, approver=ap.Approver.role("cfo"), due_business_days=2),
                    ),
                ),
            ),
            reapproval_percent=Decimal(10),
        )
        self.router = ap.Router(self.policy, self.directory, self.suppliers)
        self.scheme = NumberingScheme("PO-{dept}-{yyyy}-{seq:05}")
        self.numbers = GaplessAllocator(self.scheme)
        self.store = InMemoryStore()
        self.lifecycle = PurchaseOrderLifecycle(
            router=self.router,
            numbering=self.scheme,
            default_match_level=default_match_level,
            over_receipt_allowance=over_receipt_allowance,
            tolerances=tolerances,
        )
        self.requisitions = RequisitionLifecycle(router=self.router)
        self._ids = itertools.count(1)
        self._by_po: dict[str, list[GoodsReceipt | GoodsReturn | Invoice]] = {}
        self._by_supplier: dict[str, list[Invoice]] = {}

    # -- time and ids ----------------------------------------------------------------------------

    def at(self, days: float) -> datetime:
        """``start`` plus ``days`` days."""
        return self.start + timedelta(days=days)

    def new_id(self, prefix: str) -> str:
        """A fresh id such as ``GR-7``."""
        return f"{prefix}-{next(self._ids)}"

    # -- documents --------------------------------------------------------------------------------

    def po_document(
        self,
        *,
        amount: str = "10.00",
        quantity: str = "100",
        lines: int = 1,
        supplier: str = "S-ACME",
        **over: Any,
    ) -> PurchaseOrder:
        """A draft PO document (not yet created): ``lines`` lines of ``quantity`` at ``amount``."""
        fields: dict[str, Any] = {
            "id": PurchaseOrderId(self.new_id("PO")),
            "supplier_id": SupplierId(supplier),
            "buyer": self.buyer.id,
            "requester": self.requester.id,
            "department": "OPS",
            "currency": "USD",
            "created_at": self.at(0),
            "lines": tuple(
                PurchaseOrderLine(
                    line_no=n,
                    description=f"Part {n}",
                    category="hardware",
                    quantity=Decimal(quantity),
                    uom="EA",
                    unit_price=money(amount, "USD"),
                    item=ItemId(f"ITEM-{n}"),
                    requested_date=(self.at(14)).date(),
                )
                for n in range(1, lines + 1)
            ),
        }
        fields.update(over)
        return PurchaseOrder(**fields)

    def apply(
        self, po: PurchaseOrder, event: Event, actor: Actor | ActorId, days: float = 0
    ) -> PurchaseOrder:
        """Apply a command and return the new PO (raising what the lifecycle raises).

        The scenario keeps the receipts, returns, invoices and memos it applied, and hands them
        to the lifecycle as a store would: recording a match runs the engine on them.
        """
        return self.applied(po, event, actor, days).document

    def applied(
        self, po: PurchaseOrder, event: Event, actor: Actor | ActorId, days: float = 0
    ) -> Applied[PurchaseOrder]:
        """Like :meth:`apply`, returning the lifecycle's whole answer (document and record)."""
        applied = self.lifecycle.apply(
            po, event, actor, self.at(days), documents=self.documents(po)
        )
        if applied.record is not None and not applied.duplicate:
            self._keep(applied.record.event)
        return applied

    def documents(self, po: PurchaseOrder) -> PODocuments:
        """The documents of ``po`` applied through :meth:`apply`, in order."""
        mine = self._by_po.get(po.id, [])
        return PODocuments(
            receipts=tuple(d for d in mine if isinstance(d, GoodsReceipt)),
            returns=tuple(d for d in mine if isinstance(d, GoodsReturn)),
            invoices=tuple(d for d in mine if isinstance(d, Invoice)),
            supplier_invoices=tuple(self._by_supplier.get(po.supplier_id, ())),
        )

    def _keep(self, event: Event) -> None:
        for name in ("receipt", "goods_return", "invoice", "memo"):
            document = getattr(event, name, None)
            if isinstance(document, GoodsReceipt | GoodsReturn | Invoice):
                self._by_po.setdefault(document.po_id or "", []).append(document)
                if isinstance(document, Invoice):
                    self._by_supplier.setdefault(document.supplier_id, []).append(document)

    def draft_po(self, **kw: Any) -> PurchaseOrder:
        """A created draft PO (see :meth:`po_document` for the arguments)."""
        return self.lifecycle.create(self.po_document(**kw), self.buyer, self.at(0)).document

    def submitted_po(self, **kw: Any) -> PurchaseOrder:
        """A PO pending approval."""
        return self.apply(self.draft_po(**kw), SubmitForApproval(), self.buyer, 0.1)

    def approve_all(self, po: PurchaseOrder, days: float = 0.2) -> PurchaseOrder:
        """Approve every open step with its first candidate until the route is complete."""
        while po.approval is not None and ap.active_steps(po.approval):
            for step in ap.active_steps(po.approval):
                who = ap.step_candidates(po.approval, step)[0]
                actor = self.directory.actor(who)
                assert actor is not None
                decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
                po = self.apply(po, decision, actor, days)
        return po

    def approved_po(self, **kw: Any) -> PurchaseOrder:
        """A PO whose approval route is complete."""
        return self.approve_all(self.submitted_po(**kw))

    def number_for(self, po: PurchaseOrder, days: float = 0.3) -> str:
        """Allocate the next number for ``po`` (gapless, in the scenario's store)."""
        ctx = NumberingContext.for_order(
            po, self.at(days).date(), self.suppliers.get(po.supplier_id)
        )
        with self.store.unit_of_work() as uow:
            return self.numbers.allocate(ctx, uow)

    def issued_po(self, **kw: Any) -> PurchaseOrder:
        """An issued PO with its number."""
        po = self.approved_po(**kw)
        return self.apply(
            po, Issue(number=PurchaseOrderNumber(self.number_for(po))), self.buyer, 0.3
        )

    def receipt(
        self,
        po: PurchaseOrder,
        quantity: str,
        line: int = 1,
        *,
        rejected: str = "0",
        accepted: str | None = None,
        days: float = 10,
    ) -> GoodsReceipt:
        """A receipt of ``quantity`` on one line of ``po``."""
        return GoodsReceipt(
            id=ReceiptId(self.new_id("GR")),
            po_id=po.id,
            received_at=self.at(days),
            received_by=self.receiver.id,
            lines=(
                ReceiptLine(
                    line_no=line,
                    received=Decimal(quantity),
                    rejected=Decimal(rejected),
                    accepted=None if accepted is None else Decimal(accepted),
                ),
            ),
        )

    def invoice(
        self, po: PurchaseOrder, quantity: str, price: str | None = None, line: int = 1, **over: Any
    ) -> Invoice:
        """An invoice of ``quantity`` on one line of ``po`` at ``price`` (default: the PO's)."""
        po_line = po.line(line)
        assert po_line is not None
        unit = money(price, po.currency) if price else po_line.unit_price
        qty = Decimal(quantity)
        fields: dict[str, Any] = {
            "id": InvoiceId(self.new_id("INV")),
            "supplier_id": po.supplier_id,
            "number": f"A-{self.new_id('N')}",
            "po_id": po.id,
            "invoice_date": self.at(12).date(),
            "currency": po.currency,
            "lines": (
                InvoiceLine(
                    line_no=1,
                    po_line_no=line,
                    quantity=qty,
                    unit_price=unit,
                    price_unit=po_line.price_unit,
                ),
            ),
            "total": money(qty * unit.amount / po_line.price_unit, po.currency),
        }
        fields.update(over)
        return Invoice(**fields)

    def payment(self, po: PurchaseOrder, invoice_id: str, amount: str) -> Payment:
        """A payment of ``amount`` (PO currency) settling one invoice."""
        value = money(amount, po.currency)
        return Payment(
            id=PaymentId(self.new_id("PAY")),
            supplier_id=po.supplier_id,
            paid_on=self.at(30).date(),
            amount=value,
            allocations=(PaymentAllocation(invoice_id=InvoiceId(invoice_id), amount=value),),
        )

    def actor(self, actor_id: str) -> Actor:
        """The scenario's actor with that id."""
        found = self.directory.actor(ActorId(actor_id))
        assert found is not None
        return found

    def with_people(self, people: Iterable[Actor]) -> Scenario:
        """The same scenario with more people in the directory (and the router rebuilt)."""
        clone = Scenario.__new__(Scenario)
        clone.__dict__.update(self.__dict__)
        directory = self.directory
        for person in people:
            directory = directory.with_actor(person)
        clone.directory = directory
        clone.router = ap.Router(self.policy, directory, self.suppliers)
        clone.lifecycle = PurchaseOrderLifecycle(
            router=clone.router,
            numbering=self.scheme,
            default_match_level=self.lifecycle.default_match_level,
            over_receipt_allowance=self.lifecycle.over_receipt_allowance,
            tolerances=self.lifecycle.tolerances,
            access=self.lifecycle.access,
        )
        clone.requisitions = RequisitionLifecycle(router=clone.router)
        return clone
