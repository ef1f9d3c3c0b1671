"""Synthetic procurement histories at any scale: seeded, lazy, byte-for-byte reproducible.

:class:`Synth` generates suppliers (each with a lead-time, reliability, price-drift and
invoice-accuracy profile), departments and requesters, and for each purchase order index a complete
history: the order (several lines, units of measure, price units, requested dates), its
requisition and approvals, dispatch notice, partial / late / early / rejected / returned
receipts, invoices with price and quantity variances, charges, duplicates, credit memos,
invoices ahead of their goods, and payments.  The same seed gives the same data, and nothing is generated before it is asked for:

>>> synth = Synth(seed=7)
>>> h = synth.history(0)
>>> h.po.id, len(h.po.lines), h.po.currency
('PO-0000000', 5, 'EUR')
>>> tuple(type(d).__name__ for _, d in h.documents)
('GoodsReceipt', 'Invoice', 'Payment')
>>> synth.history(0) == h
True

Calibration (documented, with the measured figures, in docs/synthetic.md), loosely from the BPI
Challenge 2019 sample (1,000 cases): matching flows 88 % three-way with the invoice before the
goods receipt, 6 % three-way with the invoice after it, 5 % consignment, 1 % two-way (rounded up
from 0.4 % so it shows); the invoice recorded before the first goods receipt in about 23 % of
orders; PO → first receipt median about 10 days for the records (supplier lead times; the event
log of :meth:`Synth.events` follows the BPI sample's long tail instead); receipt → invoice median
about 6 days; invoice → payment about 31 days; order values log-normal, median about 640 EUR;
about 8 % of orders get a quantity change and 5 % a price change; about 4 % get a credit memo and
2 % a duplicate invoice.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import math
import random
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import attrs
from moneyed import Money

from potrack.eventlog import Event
from potrack.records import (
    Actor,
    ActorId,
    Charge,
    DepartmentId,
    DispatchId,
    DispatchLine,
    DispatchNotice,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceKind,
    InvoiceLine,
    ItemId,
    LineType,
    MatchLevel,
    Payment,
    PaymentAllocation,
    PaymentId,
    PaymentTerms,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderLine,
    ReceiptId,
    ReceiptLine,
    Requisition,
    RequisitionId,
    RequisitionLine,
    ReturnId,
    ReturnLine,
    Role,
    Supplier,
    SupplierId,
)

__all__ = ["BPI_COLUMNS", "History", "LazyOrders", "SupplierProfile", "Synth"]

_CENT = Decimal("0.01")
_ZERO = Decimal(0)

CATEGORIES = (
    ("Packaging", "packaging", "EA"),
    ("Sales", "marketing-services", "H"),
    ("Logistics", "freight-services", "EA"),
    ("Trading & End Products", "trading", "EA"),
    ("Marketing", "marketing-services", "H"),
    ("Additives", "additives", "KG"),
    ("Latex & Monomers", "latex", "KG"),
    ("CAPEX & SOCS", "capex", "EA"),
    ("Solvents", "solvents", "L"),
    ("Pigments & Colorants", "pigments", "KG"),
)
"""(BPI spend area, potrack category, unit of measure), weighted like the BPI sample below."""
_CATEGORY_WEIGHTS = (2214, 1537, 761, 536, 498, 375, 149, 137, 79, 64)
DEPARTMENTS = ("OPS", "FIN", "MKT", "RND", "LOG", "SAL", "IT", "HR")

FLOWS = (
    ("3-way match, invoice before GR", 88),
    ("3-way match, invoice after GR", 6),
    ("Consignment", 5),
    ("2-way match", 1),
)


@attrs.frozen
class SupplierProfile:
    """How a synthetic supplier behaves."""

    lead_days: int
    """Median days from order to delivery."""
    on_time: float
    """Probability a delivery arrives by the requested date."""
    price_drift: float
    """Typical relative difference between invoiced and ordered prices."""
    accuracy: float
    """Probability an invoice is exactly right."""


@attrs.frozen
class History:
    """One purchase order's synthetic history: the order, its requisition, and its documents in
    date order (each with the moment it happened)."""

    po: PurchaseOrder
    requisition: Requisition | None
    flow: str
    documents: tuple[tuple[datetime, Any], ...]
    changes: tuple[tuple[datetime, str], ...]
    """Quantity or price changes made to the order (for event logs)."""
    approved_at: datetime
    approvals: tuple[tuple[datetime, ActorId, int], ...] = ()
    """Who approved the order, when, at which level: the requester's manager (level 1) and,
    from 5,000 in order value, the CFO (level 2), the last at ``approved_at``."""


class Synth:
    """A seeded generator of procurement data.

    Args:
        seed: the seed; everything derives from it and from each PO's index.
        start: the first order's date.
        orders_per_day: how fast orders are created (sets the calendar span of a run).
        currency: the company currency.
        suppliers: how many suppliers.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        start: date = date(2026, 1, 5),
        orders_per_day: float = 40.0,
        currency: str = "EUR",
        suppliers: int = 120,
    ) -> None:
        self.seed = seed
        self.start = datetime.combine(start, time(8), tzinfo=UTC)
        self.orders_per_day = orders_per_day
        self.currency = currency
        rnd = random.Random(f"{seed}:suppliers")
        self.suppliers: tuple[Supplier, ...] = tuple(
            Supplier(
                id=SupplierId(f"S{n:04d}"),
                name=f"Supplier {n:04d}",
                code=f"S{n:04d}",
                preferred=rnd.random() < 0.6,
                blocked=False,
                payment_terms=PaymentTerms(code="NET30", net_days=rnd.choice((30, 45, 60))),
                currency=currency,
            )
            for n in range(suppliers)
        )
        self.profiles: tuple[SupplierProfile, ...] = tuple(
            SupplierProfile(
                lead_days=max(1, int(rnd.lognormvariate(math.log(8), 0.6))),
                on_time=min(0.99, max(0.4, rnd.gauss(0.8, 0.12))),
                price_drift=abs(rnd.gauss(0, 0.03)),
                accuracy=min(0.99, max(0.5, rnd.gauss(0.88, 0.08))),
            )
            for _ in range(suppliers)
        )
        # Suppliers are chosen with a skew, as real spend concentrates on a few.
        self._weights = [1 / (k + 1) ** 0.8 for k in range(suppliers)]
        self.people: tuple[Actor, ...] = (
            tuple(
                Actor(
                    id=ActorId(f"user_{n:03d}"),
                    name=f"User {n:03d}",
                    roles=frozenset({Role.REQUESTER}),
                    department=DepartmentId(DEPARTMENTS[n % 8]),
                    manager=ActorId(f"mgr_{n % 8}"),
                )
                for n in range(80)
            )
            + tuple(
                Actor(
                    id=ActorId(f"mgr_{n}"),
                    name=f"Manager {n}",
                    roles=frozenset({Role.APPROVER}),
                    department=DepartmentId(DEPARTMENTS[n]),
                )
                for n in range(8)
            )
            + (
                Actor(
                    id=ActorId("cfo"),
                    name="Chief Financial Officer",
                    roles=frozenset({Role.APPROVER, "cfo"}),
                    department=DepartmentId("FIN"),
                ),
            )
        )

    # -- one history ---------------------------------------------------------------------------

    def _rnd(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}:{index}")

    def created_at(self, index: int) -> datetime:
        """When order ``index`` is created (orders arrive steadily, in working hours)."""
        day = int(index / self.orders_per_day)
        offset = (index % max(1, int(self.orders_per_day))) / max(1.0, self.orders_per_day)
        return self.start + timedelta(days=day, hours=offset * 9)

    def history(self, index: int) -> History:
        """The complete history of purchase order ``index`` (deterministic)."""
        rnd = self._rnd(index)
        supplier_no = rnd.choices(range(len(self.suppliers)), self._weights)[0]
        supplier = self.suppliers[supplier_no]
        profile = self.profiles[supplier_no]
        created = self.created_at(index)
        flow = rnd.choices([f for f, _ in FLOWS], [w for _, w in FLOWS])[0]
        po_id = PurchaseOrderId(f"PO-{index:07d}")
        cur = self.currency
        n_lines = rnd.choices((1, 2, 3, 4, 5), (30, 30, 20, 12, 8))[0]
        area_no = rnd.choices(range(len(CATEGORIES)), _CATEGORY_WEIGHTS)[0]
        _, category, uom = CATEGORIES[area_no]
        requester = self.people[rnd.randrange(80)]
        target = Decimal(str(round(rnd.lognormvariate(math.log(620), 1.3), 2)))
        lines = []
        for n in range(1, n_lines + 1):
            qty = Decimal(rnd.choice((1, 2, 5, 10, 20, 25, 50, 100, 250, 1000)))
            price_unit = Decimal(100) if qty >= 250 and rnd.random() < 0.5 else Decimal(1)
            unit = (target / n_lines / qty * price_unit).quantize(Decimal("0.0001"))
            unit = max(unit, Decimal("0.0100"))
            line_type = (
                LineType.SERVICE
                if uom == "H"
                else (LineType.CONSIGNMENT if flow == "Consignment" else LineType.GOODS)
            )
            lines.append(
                PurchaseOrderLine(
                    line_no=n,
                    description=f"{category} item {rnd.randrange(5000):04d}",
                    category=category,
                    quantity=qty,
                    uom=uom,
                    unit_price=Money(unit, cur),
                    price_unit=price_unit,
                    item=ItemId(f"I{area_no}{rnd.randrange(400):03d}"),
                    tax_rate=Decimal(19) if rnd.random() < 0.7 else Decimal(7),
                    requested_date=(
                        created + timedelta(days=profile.lead_days + rnd.randint(0, 7))
                    ).date(),
                    line_type=line_type,
                    match_level=MatchLevel.TWO_WAY if flow == "2-way match" else None,
                    department=requester.department,
                )
            )
        charges: tuple[Charge, ...] = ()
        if rnd.random() < 0.3:
            charges = (
                Charge(
                    code="freight",
                    amount=Money((target * Decimal("0.03")).quantize(_CENT) + 5, cur),
                ),
            )
        requisition = None
        if rnd.random() < 0.18:
            requisition = Requisition(
                id=RequisitionId(f"REQ-{index:07d}"),
                requester=requester.id,
                department=requester.department or DepartmentId("OPS"),
                currency=cur,
                lines=tuple(
                    RequisitionLine(
                        line_no=ln.line_no,
                        description=ln.description,
                        category=ln.category,
                        quantity=ln.quantity,
                        uom=ln.uom,
                        estimated_unit_price=ln.unit_price,
                        price_unit=ln.price_unit,
                        item=ln.item,
                        suggested_supplier=supplier.id,
                    )
                    for ln in lines
                ),
                created_at=created - timedelta(days=rnd.randint(1, 10)),
            )
        po = PurchaseOrder(
            id=po_id,
            supplier_id=supplier.id,
            buyer=ActorId("buyer_1"),
            requester=requester.id,
            department=requester.department,
            currency=cur,
            lines=tuple(lines),
            created_at=created,
            payment_terms=supplier.payment_terms,
            charges=charges,
            match_level=MatchLevel.TWO_WAY if flow == "2-way match" else MatchLevel.THREE_WAY,
            requisitions=(requisition.id,) if requisition else (),
        )
        approved = created + timedelta(hours=rnd.choice((1, 3, 8, 24, 48, 96)))
        manager = requester.manager or ActorId("mgr_0")
        approvals: tuple[tuple[datetime, ActorId, int], ...]
        if po.amount.amount >= 5000:
            # a generator of its own: the order's other draws stay as they were
            share = random.Random(f"{self.seed}:{index}:approval").uniform(0.2, 0.8)
            waited = (approved - created) * share
            approvals = ((created + waited, manager, 1), (approved, ActorId("cfo"), 2))
        else:
            approvals = ((approved, manager, 1),)
        docs, changes = self._documents(rnd, po, supplier, profile, flow, approved, index)
        return History(
            po=po,
            requisition=requisition,
            flow=flow,
            documents=docs,
            changes=changes,
            approved_at=approved,
            approvals=approvals,
        )

    def _documents(
        self,
        rnd: random.Random,
        po: PurchaseOrder,
        supplier: Supplier,
        profile: SupplierProfile,
        flow: str,
        approved: datetime,
        index: int,
    ) -> tuple[tuple[tuple[datetime, Any], ...], tuple[tuple[datetime, str], ...]]:
        docs: list[tuple[datetime, Any]] = []
        changes: list[tuple[datetime, str]] = []
        cur = po.currency
        lead = timedelta(days=max(1, rnd.lognormvariate(math.log(profile.lead_days), 0.9)))
        if rnd.random() < 0.08:
            changes.append((approved + timedelta(days=rnd.randint(0, 5)), "Change Quantity"))
        if rnd.random() < 0.05:
            changes.append((approved + timedelta(days=rnd.randint(0, 5)), "Change Price"))
        late = rnd.random() > profile.on_time
        first_receipt = (
            approved + lead + (timedelta(days=rnd.randint(1, 20)) if late else timedelta(0))
        )
        # shipped two days before arrival, but never before the order was approved
        shipped = max(approved + timedelta(hours=1), first_receipt - timedelta(days=2))
        if rnd.random() < 0.6:
            docs.append(
                (
                    shipped,
                    DispatchNotice(
                        id=DispatchId(f"ASN-{index:07d}"),
                        po_id=po.id,
                        carrier=rnd.choice(("DHL", "UPS", "DSV")),
                        tracking_reference=f"T{index:09d}",
                        shipped_at=shipped,
                        expected_arrival=(
                            first_receipt + timedelta(days=rnd.choice((-1, 0, 0, 1)))
                        ).date(),
                        lines=tuple(
                            DispatchLine(line_no=ln.line_no, quantity=ln.quantity)
                            for ln in po.lines
                        ),
                    ),
                )
            )
        # Receipts: one, or a partial delivery followed by the rest; some rejected and returned.
        receipt_no = 0
        received_total: dict[int, Decimal] = {ln.line_no: _ZERO for ln in po.lines}
        waves = 2 if rnd.random() < 0.2 else 1
        for wave in range(waves):
            when = first_receipt + timedelta(days=wave * rnd.randint(3, 25))
            rlines = []
            for ln in po.lines:
                if waves == 2 and wave == 0:
                    qty = (ln.quantity / 2).quantize(Decimal(1)) or ln.quantity
                else:
                    qty = ln.quantity - received_total[ln.line_no]
                if ln.line_type is LineType.SERVICE and rnd.random() < 0.5:
                    continue
                if qty <= 0:
                    continue
                rejected = _ZERO
                if rnd.random() < 0.03:
                    rejected = max(_ZERO, (qty * Decimal("0.1")).quantize(Decimal(1)))
                received_total[ln.line_no] += qty
                rlines.append(
                    ReceiptLine(
                        line_no=ln.line_no, received=qty, rejected=rejected, accepted=qty - rejected
                    )
                )
            if rlines:
                receipt_no += 1
                docs.append(
                    (
                        when,
                        GoodsReceipt(
                            id=ReceiptId(f"GR-{index:07d}-{receipt_no}"),
                            po_id=po.id,
                            received_at=when,
                            received_by=ActorId("user_wh"),
                            lines=tuple(rlines),
                        ),
                    )
                )
                bad = [rl for rl in rlines if rl.rejected > 0]
                if bad:
                    docs.append(
                        (
                            when + timedelta(days=3),
                            GoodsReturn(
                                id=ReturnId(f"RT-{index:07d}-{receipt_no}"),
                                po_id=po.id,
                                returned_at=when + timedelta(days=3),
                                returned_by=ActorId("user_wh"),
                                lines=tuple(
                                    ReturnLine(
                                        line_no=rl.line_no, quantity=rl.rejected, reason="damaged"
                                    )
                                    for rl in bad
                                ),
                            ),
                        )
                    )
        # Invoices: before or after the goods, accurate or not; sometimes duplicated or cancelled.
        # "Invoice before GR" in the BPI log is a setting (no GR-based invoice verification), not
        # the order things happen: there the invoice is recorded before the first receipt in
        # about 30 % of cases.
        ahead = flow != "3-way match, invoice after GR" and rnd.random() < 0.33
        if ahead:
            invoiced_at = (
                approved + lead * rnd.uniform(0.3, 1.0) + timedelta(days=rnd.choice((0, 1, 3)))
            )
        else:
            invoiced_at = first_receipt + timedelta(
                days=max(1, rnd.lognormvariate(math.log(7), 1.0))
            )
        lines = []
        for n, ln in enumerate(po.lines, start=1):
            price = ln.unit_price.amount
            qty = ln.quantity
            if rnd.random() > profile.accuracy:
                kind = rnd.random()
                if kind < 0.6:
                    drift = Decimal(str(round(rnd.gauss(0, max(profile.price_drift, 0.01)), 4)))
                    price = max(
                        (price * (1 + drift)).quantize(Decimal("0.0001")), Decimal("0.0001")
                    )
                elif kind < 0.9:
                    qty = qty + max(Decimal(1), (qty * Decimal("0.05")).quantize(Decimal(1)))
            lines.append(
                InvoiceLine(
                    line_no=n,
                    po_line_no=ln.line_no,
                    quantity=qty,
                    unit_price=Money(price, cur),
                    price_unit=ln.price_unit,
                )
            )
        charges = tuple(
            Charge(
                code=c.code,
                amount=Money(
                    c.amount.amount
                    if rnd.random() < 0.8
                    else (c.amount.amount * Decimal("1.4")).quantize(_CENT),
                    cur,
                ),
            )
            for c in po.charges
        )
        net = sum((_amount(il) for il in lines), _ZERO)
        tax = sum(
            (_amount(il) * pl.tax_rate / 100 for il, pl in zip(lines, po.lines, strict=True)), _ZERO
        ).quantize(_CENT)
        total = (net + sum((c.amount.amount for c in charges), _ZERO) + tax).quantize(_CENT)
        if rnd.random() < 0.02:
            total += Decimal("0.02")  # rounding noise a small-difference rule absorbs
        invoice = Invoice(
            id=InvoiceId(f"INV-{index:07d}-1"),
            supplier_id=po.supplier_id,
            number=f"{supplier.code}-{index:07d}",
            po_id=po.id,
            invoice_date=(invoiced_at - timedelta(days=1)).date(),
            currency=cur,
            lines=tuple(lines),
            charges=charges,
            tax=Money(tax, cur),
            total=Money(total, cur),
            received_on=invoiced_at.date(),
        )
        docs.append((invoiced_at, invoice))
        if rnd.random() < 0.03:
            dup = attrs.evolve(
                invoice,
                id=InvoiceId(f"INV-{index:07d}-D"),
                number=invoice.number.lower().replace("-", " ") if invoice.number else None,
            )
            docs.append((invoiced_at + timedelta(days=rnd.randint(2, 20)), dup))
        if rnd.random() < 0.04:
            memo_lines = tuple(
                attrs.evolve(il, quantity=max(Decimal(1), (il.quantity / 10).quantize(Decimal(1))))
                for il in lines[:1]
            )
            memo_total = sum((_amount(il) for il in memo_lines), _ZERO).quantize(_CENT)
            docs.append(
                (
                    invoiced_at + timedelta(days=rnd.randint(5, 40)),
                    Invoice(
                        id=InvoiceId(f"CM-{index:07d}"),
                        supplier_id=po.supplier_id,
                        number=f"CN-{index:07d}",
                        po_id=po.id,
                        kind=InvoiceKind.CREDIT_MEMO,
                        credits=invoice.id,
                        invoice_date=(invoiced_at + timedelta(days=10)).date(),
                        currency=cur,
                        lines=memo_lines,
                        total=Money(memo_total, cur),
                        reason="price correction",
                    ),
                )
            )
        paid_at = max(invoiced_at, first_receipt) + timedelta(
            days=max(1, rnd.lognormvariate(math.log(30), 0.6))
        )
        docs.append(
            (
                paid_at,
                Payment(
                    id=PaymentId(f"PAY-{index:07d}"),
                    supplier_id=po.supplier_id,
                    paid_on=paid_at.date(),
                    amount=Money(total, cur),
                    allocations=(
                        PaymentAllocation(invoice_id=invoice.id, amount=Money(total, cur)),
                    ),
                ),
            )
        )
        docs.sort(key=lambda pair: (pair[0], _ORDER[type(pair[1]).__name__]))
        return tuple(docs), tuple(sorted(changes))

    # -- many histories --------------------------------------------------------------------------

    def histories(self, count: int, first: int = 0) -> Iterator[History]:
        """Histories of orders ``first`` … ``first + count - 1``, generated one at a time."""
        for index in range(first, first + count):
            yield self.history(index)

    def documents(
        self, count: int, orders: LazyOrders | None = None
    ) -> Iterator[tuple[datetime, Any]]:
        """Every document of ``count`` orders, merged in date order, lazily.

        Only the documents of orders whose histories are still open are held: a history's
        documents are released once the creation clock has passed them.  With ``orders``, each
        generated PO is also handed to that mapping, so looking it up later costs nothing.
        """
        heap: list[tuple[datetime, int, int, Any]] = []
        serial = 0
        for h in self.histories(count):
            if orders is not None:
                orders.remember(h.po)
            now = h.po.created_at
            while heap and heap[0][0] <= now:
                when, _, _, doc = heapq.heappop(heap)
                yield when, doc
            for when, doc in h.documents:
                serial += 1
                heapq.heappush(heap, (when, _ORDER[type(doc).__name__], serial, doc))
        while heap:
            when, _, _, doc = heapq.heappop(heap)
            yield when, doc

    def matching_stream(self, invoice_lines: int) -> tuple[LazyOrders, Iterator[Any]]:
        """POs and a date-ordered stream of receipts, returns and invoices holding about
        ``invoice_lines`` invoice lines (for :class:`~potrack.matching.BatchMatcher`)."""
        count = max(1, round(invoice_lines / 2.45))
        kinds = (GoodsReceipt, GoodsReturn, Invoice)
        orders = LazyOrders(self)
        stream = (doc for _, doc in self.documents(count, orders) if isinstance(doc, kinds))
        return orders, stream

    def order(self, po_id: str) -> PurchaseOrder:
        """The purchase order with that id (regenerated from its index)."""
        return self.history(int(po_id.rsplit("-", 1)[1])).po

    # -- event logs ------------------------------------------------------------------------------

    def event_rows(self, cases: int) -> Iterator[dict[str, str]]:
        """Rows of a BPI Challenge 2019-shaped event log for ``cases`` order items, lazily."""
        event_id = 0
        for h in self.histories(cases):
            for line in h.po.lines[:1]:  # one case per order item, as the BPI log
                for when, activity, worth in _activities(h, line):
                    event_id += 1
                    yield _bpi_row(h, line, when, activity, worth, event_id)

    def events(self, cases: int) -> Iterator[Event]:
        """A BPI 2019-shaped event log of ``cases`` order items, generated directly as
        :class:`~potrack.eventlog.Event` s (no records are built: fast enough for millions).

        About 5.8 events per case (the BPI sample has 6.6): a requisition for 18 % of cases,
        the order, a confirmation for 13 %, quantity (8 %) and price (5 %) changes, one to three
        receipts (PO → first receipt log-normal, median about 26 days with p90 about 185, as in
        the sample; 20 % stamped *before* the order, the BPI log's quirk), the supplier's invoice
        (day precision, 23:59) and its recording (receipt → invoice median about 12 days),
        repeated invoices for 5 %, payment blocks removed on 23 %, cancelled invoices 4 %,
        clearing 80 % (invoice → payment median about 55 days), deleted items 3 %; no delay
        beyond 400 days.  Reproducible from the seed; cases are emitted one after another, each
        in time order.  The calibration table is in docs/synthetic.md.
        """
        rnd = random.Random(f"{self.seed}:events")
        start = self.start
        suppliers = [s.id for s in self.suppliers]
        weights = list(itertools.accumulate(self._weights))
        flows = [f for f, _ in FLOWS]
        flow_weights = list(itertools.accumulate(w for _, w in FLOWS))
        areas = [a for a, _, _ in CATEGORIES]
        area_weights = list(itertools.accumulate(_CATEGORY_WEIGHTS))
        day = timedelta(days=1)
        choices = rnd.choices
        rand = rnd.random
        lognorm = rnd.lognormvariate
        for index in range(cases):
            case = f"42{index:08d}_00001"
            supplier = choices(suppliers, cum_weights=weights)[0]
            flow = choices(flows, cum_weights=flow_weights)[0]
            area = choices(areas, cum_weights=area_weights)[0]
            value = Decimal(int(lognorm(6.4, 1.2)) + 1)
            created = start + timedelta(seconds=index * 86_400 / self.orders_per_day)
            out: list[tuple[datetime, str]] = []
            if rand() < 0.18:
                out.append(
                    (created - timedelta(hours=rand() * 48), "Create Purchase Requisition Item")
                )
            out.append((created, "Create Purchase Order Item"))
            if rand() < 0.13:
                out.append((created + timedelta(hours=rand() * 72), "Receive Order Confirmation"))
            if rand() < 0.08:
                out.append((created + timedelta(days=rand() * 10), "Change Quantity"))
            if rand() < 0.05:
                out.append((created + timedelta(days=rand() * 30), "Change Price"))
            deleted = rand() < 0.03
            if deleted:
                out.append((created + timedelta(days=1 + rand() * 5), "Delete Purchase Order Item"))
            else:
                received = created + timedelta(days=min(400.0, lognorm(3.26, 1.45)))
                if rand() < 0.2:
                    received = created - timedelta(days=1 + rand() * 30)
                n = 1 if rand() < 0.85 else 2 + int(rand() * 2)
                for k in range(n):
                    out.append((received + k * 7 * day, "Record Goods Receipt"))
                invoiced = received + timedelta(days=min(300.0, lognorm(2.5, 1.4)))
                if flow == "3-way match, invoice before GR" and rand() < 0.3:
                    invoiced = received - timedelta(days=1 + rand() * 5)
                bills = 1 if rand() < 0.95 else 2
                for k in range(bills):
                    at = invoiced + k * 14 * day
                    stamp = datetime.combine(at.date() - day, time(23, 59), tzinfo=UTC)
                    out.append((stamp, "Vendor creates invoice"))
                    out.append((at, "Record Invoice Receipt"))
                if rand() < 0.04:
                    out.append((invoiced + 2 * day, "Cancel Invoice Receipt"))
                if rand() < 0.23:
                    out.append((invoiced + 3 * day, "Remove Payment Block"))
                if rand() < 0.8:
                    out.append(
                        (invoiced + timedelta(days=min(300.0, lognorm(4.0, 0.9))), "Clear Invoice")
                    )
            out.sort()
            for at, activity in out:
                yield Event(case, activity, at, supplier, area, area, "companyID_0000", flow, value)

    def write_event_log(
        self, target: str | Path | TextIO, cases: int, *, from_histories: bool = False
    ) -> int:
        """Write a BPI 2019-format CSV event log of ``cases`` cases; returns the number of events.

        By default the rows come from :meth:`events` (fast: millions of events in a minute);
        with ``from_histories`` from :meth:`event_rows`, consistent with :meth:`history`'s
        documents (slower: every record is built).
        """
        if isinstance(target, str | Path):
            with Path(target).open("w", newline="", encoding="utf-8") as fh:
                return self.write_event_log(fh, cases, from_histories=from_histories)
        writer = csv.writer(target)
        writer.writerow(BPI_COLUMNS)
        count = 0
        if from_histories:
            for row in self.event_rows(cases):
                writer.writerow([row[c] for c in BPI_COLUMNS])
                count += 1
            return count
        for event in self.events(cases):
            count += 1
            writer.writerow(_event_row(event, count))
        return count


def _event_row(e: Event, event_id: int) -> list[str]:
    """An event as a BPI 2019 CSV row (columns in :data:`BPI_COLUMNS` order)."""
    stamp = _stamp(e.at)
    document, item = e.case.split("_")
    user = "NONE" if e.activity.startswith("Vendor creates") else "user_001"
    return [
        str(event_id),
        e.category,
        e.company,
        "Standard PO",
        e.department,
        document,
        "Purchase order",
        e.supplier,
        "Standard",
        e.flow,
        "NPR",
        "sourceSystemID_0000",
        e.supplier.lower(),
        str(e.flow == "3-way match, invoice after GR"),
        str(int(item)),
        e.case,
        str(e.flow != "2-way match"),
        user,
        user,
        e.activity,
        f"{e.value:.1f}" if e.value is not None else "",
        stamp,
        e.case,
        e.activity,
        stamp,
        str(event_id),
        str(int(document[2:])),
    ]


_ORDER = {"DispatchNotice": 0, "GoodsReceipt": 1, "GoodsReturn": 2, "Invoice": 3, "Payment": 4}


def _amount(line: InvoiceLine) -> Decimal:
    value = line.quantity * line.unit_price.amount
    return value if line.price_unit == 1 else value / line.price_unit


class LazyOrders(Mapping[str, PurchaseOrder]):
    """A read-only mapping of PO id → PO that regenerates orders on demand (with a small cache),
    so a million-line matching run never holds every order."""

    def __init__(self, synth: Synth, cache: int = 50_000) -> None:
        self.synth = synth
        self._cache: OrderedDict[str, PurchaseOrder] = OrderedDict()
        self._size = cache

    def __getitem__(self, po_id: str) -> PurchaseOrder:
        found = self._cache.get(po_id)
        if found is not None:
            self._cache.move_to_end(po_id)
            return found
        try:
            po = self.synth.order(po_id)
        except (ValueError, IndexError):
            raise KeyError(po_id) from None
        self._cache[po_id] = po
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return po

    def remember(self, po: PurchaseOrder) -> None:
        """Keep ``po`` (just generated) so that looking it up does not generate it again."""
        self._cache[po.id] = po
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a LazyOrders mapping cannot be listed; look orders up by id")

    def __len__(self) -> int:
        return len(self._cache)


# -- BPI 2019 shape --------------------------------------------------------------------------------

BPI_COLUMNS = [
    "eventID",
    "case_Spend_area_text",
    "case_Company",
    "case_Document_Type",
    "case_Sub_spend_area_text",
    "case_Purchasing_Document",
    "case_Purch._Doc._Category_name",
    "case_Vendor",
    "case_Item_Type",
    "case_Item_Category",
    "case_Spend_classification_text",
    "case_Source",
    "case_Name",
    "case_GR-Based_Inv._Verif.",
    "case_Item",
    "case_concept_name",
    "case_Goods_Receipt",
    "event_User",
    "event_org_resource",
    "event_concept_name",
    "event_Cumulative_net_worth_(EUR)",
    "event_time_timestamp",
    "case:concept:name",
    "concept:name",
    "time:timestamp",
    "@@index",
    "@@case_index",
]
"""The columns of the BPI Challenge 2019 sample, in its order."""

_SPEND_AREA = {cat: area for area, cat, _ in CATEGORIES}


def _activities(h: History, line: PurchaseOrderLine) -> list[tuple[datetime, str, Decimal]]:
    worth = line.amount.amount.quantize(_CENT)
    out: list[tuple[datetime, str, Decimal]] = []
    if h.requisition is not None:
        out.append((h.requisition.created_at, "Create Purchase Requisition Item", worth))
    out.append((h.po.created_at, "Create Purchase Order Item", worth))
    for when, activity in h.changes:
        out.append((when, activity, worth))
    for when, doc in h.documents:
        if isinstance(doc, GoodsReceipt) and any(rl.line_no == line.line_no for rl in doc.lines):
            name = (
                "Record Service Entry Sheet"
                if line.line_type is LineType.SERVICE
                else "Record Goods Receipt"
            )
            out.append((when, name, worth))
        elif isinstance(doc, Invoice) and doc.kind is InvoiceKind.INVOICE:
            out.append(
                (
                    datetime.combine(doc.invoice_date, time(23, 59), tzinfo=UTC),
                    "Vendor creates invoice",
                    worth,
                )
            )
            out.append((when, "Record Invoice Receipt", worth))
        elif isinstance(doc, Invoice):
            out.append((when, "Cancel Invoice Receipt", worth))
        elif isinstance(doc, Payment):
            out.append((when, "Clear Invoice", worth))
    out.sort(key=lambda item: item[0])
    return out


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S+00:00")


def _bpi_row(
    h: History,
    line: PurchaseOrderLine,
    when: datetime,
    activity: str,
    worth: Decimal,
    event_id: int,
) -> dict[str, str]:
    case = f"{h.po.id.replace('PO-', '42')}_{line.line_no:05d}"
    area = _SPEND_AREA.get(line.category, "Other")
    stamp = _stamp(when)
    return {
        "eventID": str(event_id),
        "case_Spend_area_text": area,
        "case_Company": "companyID_0000",
        "case_Document_Type": "Standard PO",
        "case_Sub_spend_area_text": line.category,
        "case_Purchasing_Document": h.po.id.replace("PO-", "42"),
        "case_Purch._Doc._Category_name": "Purchase order",
        "case_Vendor": h.po.supplier_id,
        "case_Item_Type": "Service" if line.line_type is LineType.SERVICE else "Standard",
        "case_Item_Category": h.flow,
        "case_Spend_classification_text": "NPR",
        "case_Source": "sourceSystemID_0000",
        "case_Name": h.po.supplier_id.lower(),
        "case_GR-Based_Inv._Verif.": str(h.flow == "3-way match, invoice after GR"),
        "case_Item": str(line.line_no),
        "case_concept_name": case,
        "case_Goods_Receipt": str(h.flow != "2-way match"),
        "event_User": "NONE" if activity == "Vendor creates invoice" else "user_001",
        "event_org_resource": "NONE" if activity == "Vendor creates invoice" else "user_001",
        "event_concept_name": activity,
        "event_Cumulative_net_worth_(EUR)": f"{worth:.1f}",
        "event_time_timestamp": stamp,
        "case:concept:name": case,
        "concept:name": activity,
        "time:timestamp": stamp,
        "@@index": str(event_id),
        "@@case_index": str(h.po.id[-7:].lstrip("0") or "0"),
    }
