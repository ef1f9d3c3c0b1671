"""The standard KPI set, and order facts from potrack's records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any

from potrack._metrics.delivery import (
    on_time_delivery,
    otif,
    perfect_order_rate,
)
from potrack._metrics.facts import (
    _ZERO,
    APPROVED,
    CANCELLED,
    CHANGE,
    CLOSED,
    FIRST_RECEIPT,
    GOODS_RECEIPT,
    INVOICE,
    INVOICE_CANCELLED,
    ISSUED,
    LAST_RECEIPT,
    PAYMENT,
    PO_CREATED,
    REQUISITION,
    Delivery,
    Milestone,
    OrderFacts,
)
from potrack._metrics.results import (
    KpiResult,
)
from potrack._metrics.spend import (
    _matched_rate_from_orders,
    committed_spend,
    concentration,
    spend,
)
from potrack._metrics.times import (
    cycle_times,
    procure_to_pay,
)
from potrack.exceptions import Problem, ValidationError
from potrack.records import (
    GoodsReceipt,
    Invoice,
    POState,
    PurchaseOrder,
)

# -- the standard set -------------------------------------------------------------------------------------


def standard_kpis(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = (),
    period: str = "month",
    negative: str = "exclude",
    tz: tzinfo | None = None,
) -> dict[str, KpiResult]:
    """The standard KPI set over order facts, in one pass over the input (the facts are kept in
    memory once, as a list, and each KPI walks that list): the cycle times, the perfect-order
    and on-time rates, OTIF, the first-pass match rate, spend and its concentration, committed
    spend.  ``negative`` is the cycle times' rule for ends before starts, ``tz`` the zone of
    the reporting periods (see :func:`cycle_times`).

    Raises:
        ValidationError: mixed currencies, an unknown dimension, period or ``negative`` rule.
    """
    facts = orders if isinstance(orders, list) else list(orders)
    g: dict[str, Any] = {"group_by": group_by, "period": period, "tz": tz}
    c: dict[str, Any] = {**g, "negative": negative}
    out = {
        "requisition → PO": cycle_times(facts, REQUISITION, PO_CREATED, **c),
        "PO → first receipt": cycle_times(facts, PO_CREATED, FIRST_RECEIPT, **c),
        "PO → last receipt": cycle_times(facts, PO_CREATED, LAST_RECEIPT, **c),
        "PO → closed": cycle_times(facts, PO_CREATED, CLOSED, **c),
        "procure to pay": procure_to_pay(facts, **c),
        "perfect-order rate": perfect_order_rate(facts, **g),
        "on-time delivery": on_time_delivery(facts, **g),
        "OTIF": otif(facts, **g),
        "invoice match rate": _matched_rate_from_orders(facts, group_by, period, tz),
        "spend by supplier": spend(facts, group_by=("supplier",), period=period, tz=tz),
        "spend by category": spend(facts, group_by=("category",), period=period, tz=tz),
        "committed spend": committed_spend(facts, group_by=("supplier",), period=period, tz=tz),
    }
    out["supplier concentration"] = concentration(out["spend by supplier"])
    return out


# -- from potrack's own records ---------------------------------------------------------------------------

_RECORD_MILESTONES = {
    "create": PO_CREATED,
    "issue": ISSUED,
    "acknowledge": Milestone.ACKNOWLEDGED,
    "receive": GOODS_RECEIPT,
    "invoice": INVOICE,
    "credit_memo": INVOICE_CANCELLED,
    "pay": PAYMENT,
    "accept_change": CHANGE,
    "revise": CHANGE,
    "cancel": CANCELLED,
}


def orders_from_records(
    purchase_orders: Iterable[PurchaseOrder],
    records: Iterable[Any],
    receipts: Iterable[GoodsReceipt] = (),
    match_results: Iterable[Any] = (),
    requisitions: Mapping[str, datetime] | None = None,
    *,
    tz: tzinfo | None = None,
    invoices: Iterable[Invoice] = (),
) -> list[OrderFacts]:
    """Order facts from potrack's records: the POs (their current state), their transition
    records (milestones), their receipts (deliveries per line) and match results (first-pass
    mismatches).  ``requisitions`` maps requisition ids to their creation time.

    Milestones: ``create`` → PO created (else the PO's ``created_at``); the record moving the PO
    to ``approved`` → approved; ``issue``, ``acknowledge``, ``receive``, ``invoice``,
    ``credit_memo``, ``pay``; accepted changes and revisions → change; ``cancel``; the record
    moving the PO to ``closed``.  Receipts given for a PO are its goods receipts (one per
    receipt, at its ``received_at``) whether or not the PO has a ``receive`` record — documents
    imported from another system have no lifecycle history, and the cycle times and on-time
    rates then read the same receipts.  Likewise ``invoices`` (and credit memos) given for a PO
    without ``invoice`` or ``credit_memo`` records are its invoices, at the start of the day
    they were received (else dated) in ``tz`` (else UTC), and — when the PO's progress shows
    nothing invoiced — their net amounts in the PO's currency are what was invoiced.

    Time zone: a receipt's day (for due dates) is its calendar day in ``tz`` — a site's or a
    supplier's zone — or, with None, in the receipt's own offset (the local day where it was
    recorded: 20:00 −05:00 on 10 March is 10 March).  KPIs take the same ``tz`` for their
    reporting periods: pass the same zone to both.

    Raises:
        ValidationError: a naive requisition time (naive and aware times cannot be compared).
    """
    naive = [
        Problem(f"requisitions.{r}", f"naive datetime {t.isoformat()}: give it a time zone")
        for r, t in (requisitions or {}).items()
        if t.tzinfo is None or t.utcoffset() is None
    ]
    if naive:
        raise ValidationError("orders_from_records", naive)
    times: dict[str, dict[int, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.aggregate != "purchase_order":
            continue
        found = times[record.aggregate_id]
        milestone = _RECORD_MILESTONES.get(record.event_name)
        if milestone is not None:
            found[milestone].append(record.at)
        if (
            record.to_state == POState.APPROVED.value
            and record.from_state != POState.APPROVED.value
        ):
            found[APPROVED].append(record.at)
        if record.to_state == POState.CLOSED.value and record.from_state != POState.CLOSED.value:
            found[CLOSED].append(record.at)
    billed_by_po: dict[str, list[Invoice]] = defaultdict(list)
    for inv in invoices:
        if inv.po_id is not None:
            billed_by_po[inv.po_id].append(inv)
    by_po: dict[str, list[GoodsReceipt]] = defaultdict(list)
    for receipt in receipts:
        by_po[receipt.po_id].append(receipt)
    first_results: dict[str, Any] = {}
    for result in match_results:
        first_results.setdefault(result.invoice_id, result)
    mismatched: dict[str, bool] = {}
    exceptions: dict[str, set[str]] = defaultdict(set)
    for result in first_results.values():
        if result.po_id is None:
            continue
        bad = not result.first_pass
        mismatched[result.po_id] = mismatched.get(result.po_id, False) or bad
        exceptions[result.po_id].update(f.code.value for f in result.blocking)
    out = []
    for po in purchase_orders:
        events = times.get(po.id, {})
        milestones: dict[Milestone, list[datetime]] = {Milestone(k): v for k, v in events.items()}
        if requisitions:
            made = [requisitions[r] for r in po.requisitions if r in requisitions]
            if made:
                milestones[REQUISITION] = made
        milestones.setdefault(PO_CREATED, [po.created_at])
        received = by_po.get(po.id, [])
        if received:
            milestones[GOODS_RECEIPT] = [r.received_at for r in received]
        deliveries = _deliveries(po, received, tz)
        invoiced = sum((p.invoiced_amount - p.credited_amount for p in po.progress), _ZERO)
        billed = [i for i in billed_by_po.get(po.id, ()) if i.currency == po.currency]
        if billed and INVOICE not in milestones and INVOICE_CANCELLED not in milestones:
            # Invoices imported without a lifecycle history: dated to the day only.
            zone = tz or UTC
            for inv in billed:
                day = datetime.combine(inv.received_on or inv.invoice_date, time(0), zone)
                milestones.setdefault(INVOICE_CANCELLED if inv.is_credit else INVOICE, []).append(
                    day
                )
            if not invoiced:
                invoiced = sum(
                    (-i.net_amount.amount if i.is_credit else i.net_amount.amount for i in billed),
                    _ZERO,
                )
        out.append(
            OrderFacts.build(
                po.id,
                events=milestones,
                supplier=po.supplier_id,
                category=po.lines[0].category,
                department=po.department or po.lines[0].department or "",
                company=po.company or "",
                currency=po.currency,
                value=po.amount.amount,
                invoiced=invoiced,
                budget=po.budget or po.lines[0].budget or "",
                match_level=po.match_level,
                mismatched=mismatched.get(po.id),
                exceptions=tuple(sorted(exceptions.get(po.id, ()))),
                deliveries=deliveries,
            )
        )
    return out


def _deliveries(
    po: PurchaseOrder, receipts: Sequence[GoodsReceipt], tz: tzinfo | None
) -> tuple[Delivery, ...]:
    got: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    rejected: dict[int, Decimal] = defaultdict(Decimal)
    for receipt in sorted(receipts, key=lambda r: r.received_at):
        moment = receipt.received_at
        day = (moment if tz is None else moment.astimezone(tz)).date()
        for rl in receipt.lines:
            got[rl.line_no].append((day, rl.received - rl.rejected))
            rejected[rl.line_no] += rl.rejected
    return tuple(
        Delivery(
            order_id=po.id,
            line_no=ln.line_no,
            quantity=ln.quantity,
            requested=ln.requested_date,
            promised=ln.promised_date,
            receipts=tuple(got.get(ln.line_no, ())),
            rejected=rejected.get(ln.line_no, _ZERO),
        )
        for ln in po.lines
    )
