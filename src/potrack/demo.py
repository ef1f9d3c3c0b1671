"""``potrack demo``: a complete procurement story on the embedded SQLite store, told step by step.

Three departments ask for goods; the approval policy routes them (one is rejected, one needs the
CFO); the approved requisitions become purchase orders with numbers; one supplier acknowledges,
another proposes a change the buyer accepts; goods are dispatched and arrive in parts and late;
an over-receipt is refused; invoices arrive — one on time and exact, one with a price variance
that an authorized clerk overrides, one before its goods (held, then released), one duplicate
(held and left unpaid); a hold is placed and released; matched invoices are paid.  A batch of
synthetic invoices then runs through the matching engine with a progress bar, and the demo ends
with a KPI report and the audit trail verified.

Every step goes through the library's public API (:class:`~potrack.service.Purchasing`,
:mod:`~potrack.matching`, :mod:`~potrack.metrics`, :mod:`~potrack.audit`) exactly as a host
application would call it; nothing is faked for the printout.

>>> import io
>>> out = io.StringIO()
>>> summary = run_demo(out=out, batch_lines=500)
>>> summary.audit.ok, summary.requisitions, summary.orders, summary.refused_over_receipt
(True, 3, 2, True)
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TextIO, TypeVar

import attrs
from moneyed import Money

from potrack import approval as ap
from potrack.audit import AuditReport, verify
from potrack.events import (
    AcceptChange,
    AcceptFinding,
    Acknowledge,
    Issue,
    PlaceOnHold,
    ProposeChange,
    ReceiveGoods,
    RecordDecision,
    RecordDispatch,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    ReleaseHold,
    SubmitForApproval,
)
from potrack.exceptions import TransitionRefusedError
from potrack.lifecycle import (
    DepartmentAccess,
    PurchaseOrderLifecycle,
    RequisitionLifecycle,
    convert_requisitions,
)
from potrack.matching import BatchMatcher, MatchResult, Override, TolerancePolicy, match
from potrack.memory import InMemoryDirectory
from potrack.metrics import (
    FIRST_RECEIPT,
    PO_CREATED,
    cycle_times,
    on_time_delivery,
    orders_from_records,
    spend,
)
from potrack.money import format_date, format_money, money
from potrack.numbering import GaplessAllocator, NumberingScheme
from potrack.records import (
    Acknowledgement,
    Actor,
    ActorId,
    ChangeProposal,
    ChangeProposalId,
    Decision,
    DepartmentId,
    DispatchId,
    DispatchLine,
    DispatchNotice,
    GoodsReceipt,
    Invoice,
    InvoiceId,
    InvoiceLine,
    ItemId,
    LineChange,
    Payment,
    PaymentAllocation,
    PaymentId,
    PurchaseOrder,
    ReceiptId,
    ReceiptLine,
    Requisition,
    RequisitionId,
    RequisitionLine,
    Role,
    Supplier,
    SupplierId,
)
from potrack.service import Purchasing
from potrack.sqlite import SQLiteStore
from potrack.testing.clock import ManualClock
from potrack.testing.synth import Synth

__all__ = ["DemoSummary", "run_demo"]

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
_Doc = TypeVar("_Doc", Requisition, PurchaseOrder)


@attrs.frozen
class DemoSummary:
    """What the demo did, for tests and for the caller."""

    db: str
    requisitions: int
    orders: int
    invoices: int
    paid: int
    held: int
    refused_over_receipt: bool
    batch_lines: int
    batch_first_pass: Decimal | None
    audit: AuditReport


def _person(
    actor_id: str,
    name: str,
    department: str | None,
    *roles: str,
    manager: str | None = None,
    supplier: SupplierId | None = None,
) -> Actor:
    return Actor(
        id=ActorId(actor_id),
        name=name,
        roles=frozenset(roles),
        department=DepartmentId(department) if department else None,
        manager=ActorId(manager) if manager else None,
        supplier_id=supplier,
    )


class _World:
    """The demo company: people, suppliers, the approval policy, numbering, the store."""

    def __init__(self, db: str) -> None:
        self.acme = Supplier(
            id=SupplierId("S-ACME"), name="Acme Tool Works", code="ACME", preferred=True
        )
        self.north = Supplier(id=SupplierId("S-NORTH"), name="Northwind Office", code="NWO")
        self.suppliers = {s.id: s for s in (self.acme, self.north)}
        self.people = {
            p.id: p
            for p in (
                _person("olga", "Olga Petrova", "OPS", Role.REQUESTER, manager="marc"),
                _person("ian", "Ian Fisher", "IT", Role.REQUESTER, manager="nina"),
                _person("mia", "Mia Keller", "MKT", Role.REQUESTER, manager="marc"),
                _person("marc", "Marc Dubois", "OPS", Role.APPROVER, manager="carla"),
                _person("nina", "Nina Berg", "IT", Role.APPROVER, manager="carla"),
                _person("carla", "Carla Nunes", "FIN", Role.APPROVER, "cfo"),
                _person("ben", "Ben Okafor", "PUR", Role.BUYER, manager="marc"),
                _person("rosa", "Rosa Lind", "OPS", Role.RECEIVER),
                _person("ali", "Ali Demir", "FIN", Role.AP_CLERK, Role.MATCH_OVERRIDE),
                _person("tom", "Tom Weiss", "FIN", Role.TREASURER),
                _person(
                    "acme-sales", "Acme sales desk", None, Role.SUPPLIER, supplier=self.acme.id
                ),
                _person(
                    "nwo-sales", "Northwind sales desk", None, Role.SUPPLIER, supplier=self.north.id
                ),
            )
        }
        directory = InMemoryDirectory(
            list(self.people.values()),
            extra_departments=frozenset({"OPS", "IT", "MKT", "FIN", "PUR"}),
        )
        self.policy = ap.Policy(
            name="demo",
            base_currency="USD",
            rules=(
                ap.Rule(
                    id="manager",
                    description="the requester's manager approves every purchase",
                    steps=(ap.StepSpec(level=1, approver=ap.Approver.manager(), due_hours=24),),
                ),
                ap.Rule(
                    id="cfo",
                    description="the CFO also signs from 5,000 USD",
                    amount=ap.AmountRange(minimum=Decimal(5000)),
                    steps=(
                        ap.StepSpec(level=2, approver=ap.Approver.role("cfo"), due_business_days=2),
                    ),
                ),
            ),
            reapproval_percent=Decimal(10),
        )
        router = ap.Router(self.policy, directory, list(self.suppliers.values()))
        # The story runs over a quarter: the service's clock is moved on as the days pass.
        self.clock = ManualClock(START)
        scheme = NumberingScheme("PO-{dept}-{yyyy}-{seq:04}")
        # Purchasing (PUR) buys for every department; other buyers only for their own.
        access = DepartmentAccess(buys_for={"PUR": frozenset({"*"})})
        self.lifecycle = PurchaseOrderLifecycle(
            router=router,
            numbering=scheme,
            over_receipt_allowance=Decimal(5),
            access=access,
            tolerances=TolerancePolicy.lenient(),
        )
        self.store = SQLiteStore(db)
        self.service = Purchasing(
            self.store,
            self.lifecycle,
            requisitions=RequisitionLifecycle(router=router, access=access),
            numbers=GaplessAllocator(scheme),
            clock=self.clock,
        )
        self.tolerances = TolerancePolicy.lenient()

    def who(self, actor_id: str) -> Actor:
        return self.people[ActorId(actor_id)]


class _Teller:
    """Prints the story: a day column, one line per step, indented details."""

    def __init__(self, out: TextIO, locale: str) -> None:
        self.out = out
        self.locale = locale
        self._quarter = 0

    def day(self, days: float) -> datetime:
        return START + timedelta(days=days)

    def say(self, days: float, text: str) -> None:
        when = format_date(self.day(days).date(), self.locale)
        self.out.write(f"{when:>14}  {text}\n")

    def detail(self, text: str) -> None:
        self.out.write(f"{'':>14}    {text}\n")

    def heading(self, text: str) -> None:
        self.out.write(f"\n{text}\n{'─' * len(text)}\n")

    def money(self, amount: Money) -> str:
        return format_money(amount, self.locale)

    def progress(self, done: int, total: int) -> None:
        """A bar redrawn in place on a terminal; a line per quarter otherwise (logs, pipes)."""
        width = 30
        filled = width * done // max(total, 1)
        bar = f"{'':>14}  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} invoice lines"
        if getattr(self.out, "isatty", lambda: False)():
            self.out.write("\r" + bar + ("\n" if done >= total else ""))
            self.out.flush()
            return
        quarter = 4 * done // max(total, 1)
        if quarter > self._quarter:
            self._quarter = quarter
            self.out.write(bar + "\n")


def _requisition(
    w: _World, req_id: str, who: str, lines: list[tuple[str, str, str, str, str]], at: datetime
) -> Requisition:
    requester = w.who(who)
    return Requisition(
        id=RequisitionId(req_id),
        requester=requester.id,
        department=requester.department or DepartmentId("OPS"),
        currency="USD",
        created_at=at,
        lines=tuple(
            RequisitionLine(
                line_no=n,
                description=description,
                category=category,
                quantity=Decimal(quantity),
                uom="EA",
                estimated_unit_price=money(price, "USD"),
                item=ItemId(item),
                suggested_supplier=supplier,
                needed_by=(at + timedelta(days=14)).date(),
            )
            for n, (description, category, quantity, price, item) in enumerate(lines, start=1)
            for supplier in [w.acme.id if category == "safety" else w.north.id]
        ),
        justification="demo",
    )


def _decide(w: _World, tell: _Teller, doc: _Doc, days: float, reject: str = "") -> _Doc:
    """Every active step decided by its first candidate (or rejected with ``reject``)."""
    while doc.approval is not None and ap.active_steps(doc.approval):
        for step in ap.active_steps(doc.approval):
            who = ap.step_candidates(doc.approval, step)[0]
            verdict = Decision.REJECT if reject else Decision.APPROVE
            decision = RecordDecision(step_id=step.step_id, verdict=verdict, reason=reject or None)
            event = decision
            if isinstance(doc, Requisition):
                w.clock.set(tell.day(days))
                doc = w.service.requisition(doc.id, event, w.who(who)).document
            elif isinstance(doc, PurchaseOrder):
                w.clock.set(tell.day(days))
                doc = w.service.order(doc.id, event, w.who(who)).document
            name = w.who(who).name
            if reject:
                tell.detail(f"✗ {name} rejects at {step.describe()}: “{reject}”")
                return doc
            tell.detail(f"✓ {name} approves ({step.describe()})")
    return doc


def _route_lines(tell: _Teller, doc: Requisition | PurchaseOrder) -> None:
    assert doc.approval is not None
    for step in doc.approval.route.steps:
        why = "; ".join(step.because) or ", ".join(step.rules)
        tell.detail(f"route {step.describe()} → {', '.join(step.candidates)} — because {why}")


def _invoice(
    po: PurchaseOrder,
    inv_id: str,
    number: str,
    quantities: dict[int, str],
    days: datetime,
    prices: dict[int, str] | None = None,
) -> Invoice:
    lines = []
    total = Decimal(0)
    for n, (line_no, quantity) in enumerate(sorted(quantities.items()), start=1):
        po_line = po.line(line_no)
        assert po_line is not None
        price = money((prices or {}).get(line_no) or po_line.unit_price.amount, po.currency)
        lines.append(
            InvoiceLine(line_no=n, po_line_no=line_no, quantity=Decimal(quantity), unit_price=price)
        )
        total += Decimal(quantity) * price.amount
    return Invoice(
        id=InvoiceId(inv_id),
        supplier_id=po.supplier_id,
        number=number,
        po_id=po.id,
        invoice_date=days.date(),
        currency=po.currency,
        lines=tuple(lines),
        total=money(total.quantize(Decimal("0.01")), po.currency),
    )


def _receipt(
    po: PurchaseOrder, rec_id: str, quantities: dict[int, str], at: datetime
) -> GoodsReceipt:
    return GoodsReceipt(
        id=ReceiptId(rec_id),
        po_id=po.id,
        received_at=at,
        received_by=ActorId("rosa"),
        lines=tuple(
            ReceiptLine(line_no=n, received=Decimal(q)) for n, q in sorted(quantities.items())
        ),
    )


class _Ledger:
    """The demo's invoices: matching against what the store holds, recording results."""

    def __init__(self, w: _World, tell: _Teller) -> None:
        self.w = w
        self.tell = tell
        self.results: list[MatchResult] = []
        self.invoices: dict[str, Invoice] = {}
        self.overrides: list[Override] = []

    def evaluate(self, invoice: Invoice, days: float, record: bool = True) -> MatchResult:
        w = self.w
        po = w.service.get_order(invoice.po_id or "")
        with w.store.unit_of_work() as uow:
            receipts = uow.receipts.for_po(po.id)
            returns = uow.returns.for_po(po.id)
            earlier = [i for i in uow.invoices.for_po(po.id) if i.id != invoice.id]
            theirs = [i for i in uow.invoices.for_supplier(po.supplier_id) if i.id != invoice.id]
        earlier = [i for i in earlier if self._before(i, invoice)]
        theirs = [i for i in theirs if self._before(i, invoice)]
        result = match(
            invoice,
            po,
            receipts=receipts,
            returns=returns,
            earlier=earlier,
            supplier_invoices=theirs,
            policy=w.tolerances,
            supplier=w.suppliers[po.supplier_id],
            overrides=self.overrides,
        )
        self.results.append(result)
        if record:
            # The service runs the same engine on the stored documents and records its result;
            # the command says only which invoice, and which findings Ali accepts and why.
            accept = tuple(
                AcceptFinding(code=o.code.value, invoice_line_no=o.invoice_line_no, reason=o.reason)
                for o in self.overrides
                if o.invoice_id == invoice.id
            )
            w.clock.set(self.tell.day(days))
            w.service.order(po.id, RecordMatch(invoice_id=invoice.id, accept=accept), w.who("ali"))
        return result

    def _before(self, other: Invoice, invoice: Invoice) -> bool:
        order = list(self.invoices)
        return order.index(other.id) < order.index(invoice.id) if other.id in order else False

    def receive(self, invoice: Invoice, days: float) -> MatchResult:
        """Record the invoice on its PO and match it."""
        self.invoices[invoice.id] = invoice
        self.w.clock.set(self.tell.day(days))
        self.w.service.order(
            invoice.po_id or "",
            RecordInvoice(invoice=invoice),
            self.w.who("ali"),
        )
        return self.evaluate(invoice, days)

    def show(self, result: MatchResult) -> None:
        tell = self.tell
        status = result.status.value.replace("_", " ")
        tell.detail(
            f"matching: {status}; payable {tell.money(result.payable)}, held {tell.money(result.held)}"
        )
        for finding in result.findings:
            tell.detail(f"  · {finding.sentence(tell.locale)}")


def run_demo(
    db: str | None = None,
    *,
    locale: str = "en_US",
    out: TextIO | None = None,
    batch_lines: int = 20_000,
) -> DemoSummary:
    """Run the story on the SQLite store at ``db`` (a temporary file when None), printing to
    ``out`` (standard output) with money and dates in ``locale``.

    Raises:
        UnknownLocaleError (babel): ``locale`` is not a locale babel knows.
        StorageError, SchemaVersionError: ``db`` is not a potrack database this version can open.
    """
    out = out or sys.stdout
    if db is None:
        db = os.path.join(tempfile.mkdtemp(prefix="potrack-demo-"), "demo.sqlite")
    w = _World(db)
    tell = _Teller(out, locale)
    svc = w.service
    out.write(f"potrack demo — one quarter of purchasing at a small company (store: {db})\n")

    # -- 1. requisitions and approval ----------------------------------------------------------
    tell.heading("1. Requisitions and approval")
    asks = [
        ("REQ-OPS-1", "olga", [("Cut-resistant gloves", "safety", "200", "6.50", "GLV-9")]),
        (
            "REQ-IT-1",
            "ian",
            [
                ("Laptop 14-inch", "it-hardware", "6", "1250.00", "LAP-14"),
                ("Docking station", "it-hardware", "6", "180.00", "DCK-2"),
            ],
        ),
        ("REQ-MKT-1", "mia", [("Trade-fair booth kit", "marketing", "1", "3900.00", "BTH-1")]),
    ]
    approved: list[Requisition] = []
    for req_id, who, lines in asks:
        req = _requisition(w, req_id, who, lines, tell.day(0))
        w.clock.set(tell.day(0))
        req = svc.create_requisition(req, w.who(who)).document
        w.clock.set(tell.day(0.1))
        req = svc.requisition(req.id, SubmitForApproval(), w.who(who)).document
        assert req.approval is not None
        value = sum((ln.quantity * ln.estimated_unit_price.amount for ln in req.lines), Decimal(0))
        tell.say(
            0,
            f"{w.who(who).name} ({req.department}) asks for {', '.join(ln.description for ln in req.lines)}"
            f" — {tell.money(money(value, 'USD'))}",
        )
        _route_lines(tell, req)
        reject = "postpone until the autumn fair budget is confirmed" if who == "mia" else ""
        req = _decide(w, tell, req, 0.5, reject)
        if not reject:
            approved.append(req)

    # -- 2. purchase orders and numbers ---------------------------------------------------------
    tell.heading("2. Purchase orders")
    counter = itertools.count(1)
    drafts, conversions = convert_requisitions(
        approved, buyer=ActorId("ben"), at=tell.day(1), new_id=lambda i: f"PO-{next(counter)}"
    )
    orders: list[PurchaseOrder] = []
    for draft in drafts:
        draft = attrs.evolve(draft, requester=approved[len(orders)].requester)
        w.clock.set(tell.day(1))
        po = svc.create_order(draft, w.who("ben")).document
        w.clock.set(tell.day(1))
        po = svc.order(po.id, SubmitForApproval(), w.who("ben")).document
        tell.say(
            1,
            f"Ben (buyer) turns the requisitions into PO {po.id} for {w.suppliers[po.supplier_id].name}",
        )
        po = _decide(w, tell, po, 1.2)
        w.clock.set(tell.day(1.3))
        po = svc.order(po.id, Issue(), w.who("ben")).document
        tell.detail(f"issued as {po.number} — {tell.money(po.amount)}")
        orders.append(po)
    for req in approved:
        w.clock.set(tell.day(1.3))
        svc.requisition(req.id, conversions[req.id], w.who("ben"))
    gloves, laptops = orders

    # -- 3. the suppliers answer ---------------------------------------------------------------
    tell.heading("3. Suppliers")
    ack = Acknowledgement(
        po_id=gloves.id,
        revision=gloves.revision,
        at=tell.day(2),
        by=ActorId("acme-sales"),
        supplier_reference="AC-7781",
    )
    w.clock.set(tell.day(2))
    gloves = svc.order(gloves.id, Acknowledge(acknowledgement=ack), w.who("acme-sales")).document
    tell.say(2, f"Acme acknowledges {gloves.number} (their order AC-7781)")
    proposal = ChangeProposal(
        id=ChangeProposalId("CP-1"),
        po_id=laptops.id,
        proposed_by=ActorId("nwo-sales"),
        at=tell.day(2),
        changes=(
            LineChange(
                line_no=1, unit_price=money("1225.00", "USD"), promised_date=tell.day(20).date()
            ),
        ),
        reason="the 14-inch model is back-ordered; a week later, 25 USD cheaper",
    )
    w.clock.set(tell.day(2))
    laptops = svc.order(laptops.id, ProposeChange(proposal=proposal), w.who("nwo-sales")).document
    tell.say(2, f"Northwind proposes a change on {laptops.number}: {proposal.reason}")
    w.clock.set(tell.day(2.5))
    laptops = svc.order(laptops.id, AcceptChange(proposal_id=proposal.id), w.who("ben")).document
    tell.detail(f"Ben accepts: revision {laptops.revision}, new value {tell.money(laptops.amount)}")

    # -- 4. dispatch and receipts ---------------------------------------------------------------
    tell.heading("4. Dispatch and goods receipt")
    notice = DispatchNotice(
        id=DispatchId("ASN-1"),
        po_id=gloves.id,
        carrier="DHL",
        tracking_reference="JD0146000033",
        shipped_at=tell.day(8),
        expected_arrival=tell.day(10).date(),
        lines=(DispatchLine(line_no=1, quantity=Decimal(120)),),
    )
    w.clock.set(tell.day(8))
    gloves = svc.order(gloves.id, RecordDispatch(notice=notice), w.who("acme-sales")).document
    tell.say(
        8,
        f"Acme ships 120 gloves with DHL JD0146000033, arriving {format_date(notice.expected_arrival, locale)}",
    )
    w.clock.set(tell.day(10))
    gloves = svc.order(
        gloves.id,
        ReceiveGoods(receipt=_receipt(gloves, "GR-1", {1: "120"}, tell.day(10))),
        w.who("rosa"),
    ).document
    tell.say(10, "Rosa receives 120 of 200 gloves — a partial delivery")
    refused = False
    try:
        w.clock.set(tell.day(17))
        svc.order(
            gloves.id,
            ReceiveGoods(receipt=_receipt(gloves, "GR-2", {1: "100"}, tell.day(17))),
            w.who("rosa"),
        )
    except TransitionRefusedError as err:
        refused = True
        tell.say(17, "Rosa tries to book 100 more (220 of 200): refused")
        tell.detail(str(err).splitlines()[0])
    w.clock.set(tell.day(17))
    gloves = svc.order(
        gloves.id,
        ReceiveGoods(receipt=_receipt(gloves, "GR-2", {1: "80"}, tell.day(17))),
        w.who("rosa"),
    ).document
    needed = gloves.lines[0].requested_date
    late = (tell.day(17).date() - needed).days if needed else 0
    tell.say(
        17,
        f"She books the 80 that really arrived: the order is complete, {late} days late "
        f"(needed by {format_date(needed, locale) if needed else 'no date'})",
    )

    # -- 5. invoices, matching, holds -----------------------------------------------------------
    tell.heading("5. Invoices and matching (lenient policy: price +5 % / −10 %, quantities exact)")
    ledger = _Ledger(w, tell)
    first = _invoice(gloves, "INV-1", "AC-2026-0412", {1: "120"}, tell.day(11))
    tell.say(11, f"Acme invoices the first 120 gloves ({first.number})")
    ledger.show(ledger.receive(first, 11))
    second = _invoice(gloves, "INV-2", "AC-2026-0519", {1: "80"}, tell.day(18), {1: "7.10"})
    tell.say(18, f"Acme invoices the other 80 at 7.10 instead of 6.50 ({second.number})")
    held = ledger.receive(second, 18)
    ledger.show(held)
    blocking = held.blocking[0]
    ledger.overrides.append(
        Override.grant(
            w.who("ali"),
            blocking,
            second.id,
            "new price agreed by phone with Acme, see mail 2026-03-19",
            tell.day(19),
        )
    )
    tell.say(19, "Ali (AP, may override) accepts the price variance with a reason")
    ledger.show(ledger.evaluate(second, 19))
    early = _invoice(laptops, "INV-3", "NWO-88121", {1: "6", 2: "6"}, tell.day(15), {1: "1225.00"})
    tell.say(15, f"Northwind invoices the laptops before they arrive ({early.number})")
    ledger.show(ledger.receive(early, 15))
    w.clock.set(tell.day(16))
    laptops = svc.order(
        laptops.id, PlaceOnHold(reason="delivery address under review"), w.who("ben")
    ).document
    tell.say(16, "Ben puts the laptop order on hold: the delivery address is under review")
    w.clock.set(tell.day(18))
    laptops = svc.order(laptops.id, ReleaseHold(note="address confirmed"), w.who("ben")).document
    tell.detail("released two days later; the order resumes where it was")
    w.clock.set(tell.day(22))
    laptops = svc.order(
        laptops.id,
        ReceiveGoods(receipt=_receipt(laptops, "GR-3", {1: "6", 2: "6"}, tell.day(22))),
        w.who("rosa"),
    ).document
    tell.say(22, "The laptops and docks arrive; the waiting invoice is matched again")
    ledger.show(ledger.evaluate(early, 22))
    dup = _invoice(laptops, "INV-4", "nwo 88121", {1: "6", 2: "6"}, tell.day(24), {1: "1225.00"})
    tell.say(24, "Northwind sends the same invoice again, numbered “nwo 88121”")
    ledger.show(ledger.receive(dup, 24))

    # -- 6. payment -----------------------------------------------------------------------------
    tell.heading("6. Payment")
    paid = 0
    latest: dict[str, MatchResult] = {}
    for result in ledger.results:
        latest[result.invoice_id] = result
    for n, (inv_id, result) in enumerate(latest.items(), start=1):
        invoice = ledger.invoices[inv_id]
        if result.payable.amount <= 0:
            tell.say(30, f"{invoice.number} is not paid: {result.status.value.replace('_', ' ')}")
            continue
        payment = Payment(
            id=PaymentId(f"PAY-{n}"),
            supplier_id=invoice.supplier_id,
            paid_on=tell.day(30).date(),
            amount=result.payable,
            allocations=(PaymentAllocation(invoice_id=invoice.id, amount=result.payable),),
        )
        w.clock.set(tell.day(30))
        svc.order(invoice.po_id or "", RecordPayment(payment=payment), w.who("tom"))
        paid += 1
        tell.say(30, f"Tom pays {invoice.number}: {tell.money(result.payable)}")
    for po in orders:
        now = svc.get_order(po.id)
        tell.detail(f"{now.number}: {now.state.value.replace('_', ' ')}")

    # -- 7. a longer batch ----------------------------------------------------------------------
    tell.heading(f"7. A month of invoices from the synthetic generator ({batch_lines:,} lines)")
    batch_first_pass, reasons = _batch(batch_lines, w.tolerances, tell)
    if batch_first_pass is not None:
        tell.detail(f"first-pass match rate {batch_first_pass} %; holds by reason:")
        for reason, count in reasons.most_common(5):
            tell.detail(f"  {reason:<28} {count:>6,}")

    # -- 8. KPIs and audit ----------------------------------------------------------------------
    tell.heading("8. KPIs from this quarter's records")
    stored = [svc.get_order(po.id) for po in orders]
    with w.store.unit_of_work() as uow:
        records = list(uow.transitions.all())
        receipts = [r for po in stored for r in uow.receipts.for_po(po.id)]
    facts = orders_from_records(stored, records, receipts, ledger.results)
    for kpi in (
        cycle_times(facts, PO_CREATED, FIRST_RECEIPT),
        on_time_delivery(facts),
        spend(facts, basis="ordered"),
    ):
        out.write(kpi.table(locale) + "\n\n")
    report = verify(w.store)
    tell.heading("9. Audit trail")
    out.write(f"{report}\n")
    out.write(
        f"Keep the anchor {report.head[0]}:{report.head[1][:16]}… to detect a truncated trail.\n"
    )
    out.write(f"The database stays at {db}: try `potrack audit verify {db}`.\n")
    w.store.close()
    return DemoSummary(
        db=db,
        requisitions=len(asks),
        orders=len(orders),
        invoices=len(ledger.invoices),
        paid=paid,
        held=sum(1 for r in latest.values() if r.payable.amount <= 0),
        refused_over_receipt=refused,
        batch_lines=batch_lines,
        batch_first_pass=batch_first_pass,
        audit=report,
    )


def _batch(
    lines: int, policy: TolerancePolicy, tell: _Teller
) -> tuple[Decimal | None, Counter[str]]:
    if lines <= 0:
        return None, Counter()
    orders, stream = Synth(seed=2026).matching_stream(lines)
    matcher = BatchMatcher(orders, policy)
    first: dict[str, bool] = {}
    reasons: Counter[str] = Counter()
    done = 0
    step = max(1, lines // 20)
    shown = 0
    for document in stream:
        for result in matcher.feed(document):
            if result.invoice_id not in first:
                first[result.invoice_id] = result.first_pass
                for finding in result.blocking:
                    reasons[finding.code.value.replace("_", " ")] += 1
        if type(document) is Invoice:
            done += len(document.lines)
            if done - shown >= step:
                shown = done
                tell.progress(min(done, lines), lines)
    tell.progress(lines, lines)
    rate = Decimal(100 * sum(first.values())) / len(first) if first else None
    return (rate.quantize(Decimal("0.01")) if rate is not None else None), reasons
