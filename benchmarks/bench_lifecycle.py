"""Lifecycle target: replaying transition records at ≥ 200,000 transitions per second on one core;
memory per PO reported."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from benchmarks._harness import Benchmark, Result, rate
from potrack import approval as ap
from potrack.events import (
    AddComment,
    Issue,
    ReceiveGoods,
    RecordDecision,
    RecordDispatch,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    SubmitForApproval,
)
from potrack.lifecycle import replay
from potrack.records import (
    Decision,
    DispatchNotice,
    PurchaseOrder,
)
from potrack.serialization import dumps, loads
from potrack.testing.scenario import Scenario


def build_streams(count: int) -> list[list[Any]]:
    """``count`` POs driven from creation to close through the live lifecycle (records kept).

    Each PO has 3 lines: submission, one or two approvals, issue, a dispatch notice, a comment,
    two receipts per line, an invoice, its match and its payment per line — 20 to 21 records.
    """
    s = Scenario()
    return [_drive(s, i) for i in range(count)]


class _Driver:
    """Applies events to one PO and keeps its records."""

    def __init__(self, s: Scenario, po: Any, first: Any) -> None:
        self.s = s
        self.po = po
        self.records = [first]

    def go(self, event: Any, actor: Any, day: float) -> None:
        done = self.s.applied(self.po, event, actor, day)
        self.po = done.document
        self.records.append(done.record)


def _drive(s: Scenario, i: int) -> list[Any]:
    amount = "60.00" if i % 4 == 0 else "10.00"  # a quarter need the CFO too
    applied = s.lifecycle.create(s.po_document(lines=3, amount=amount), s.buyer, s.at(0))
    d = _Driver(s, applied.document, applied.record)
    d.go(SubmitForApproval(), s.buyer, 0.1)
    while ap.active_steps(d.po.approval):
        step = ap.active_steps(d.po.approval)[0]
        who = ap.step_candidates(d.po.approval, step)[0]
        decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
        d.go(decision, s.actor(who), 0.2)
    d.go(Issue(number=f"PO-OPS-2026-{i + 1:05d}"), s.buyer, 0.3)
    d.go(
        RecordDispatch(
            notice=DispatchNotice(
                id=f"ASN-{i}",
                po_id=d.po.id,
                carrier="DHL",
                tracking_reference=f"T{i}",
                shipped_at=s.at(2),
                expected_arrival=s.at(9).date(),
            )
        ),
        s.supplier_user,
        2,
    )
    d.go(AddComment(text="shipping today"), s.supplier_user, 2)
    for line in (1, 2, 3):
        d.go(ReceiveGoods(receipt=s.receipt(d.po, "40", line)), s.receiver, 9)
        d.go(ReceiveGoods(receipt=s.receipt(d.po, "60", line)), s.receiver, 10)
    for line in (1, 2, 3):
        inv = s.invoice(d.po, "100", None, line)
        d.go(RecordInvoice(invoice=inv), s.clerk, 12)
        d.go(
            RecordMatch(invoice_id=inv.id),
            s.clerk,
            12,
        )
        d.go(RecordPayment(payment=s.payment(d.po, inv.id, str(inv.total.amount))), s.treasurer, 40)
    assert d.po.state.value == "closed"
    return d.records


def _grown(make: Any) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = make()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del kept
    return float(sum(stat.size_diff for stat in after.compare_to(before, "filename")))


def replay_rate(smoke: bool) -> Result:
    streams = build_streams(150 if smoke else 2_000)
    total = sum(len(r) for r in streams)

    def work() -> int:
        for records in streams:
            replay(records)
        return total

    work()  # warm up caches (generated builders, enum lookups)
    samples = rate(work, 3 if smoke else 5)
    # Memory: a PO loaded on its own (from JSON, sharing nothing), and what replay adds on top of
    # the records it was built from (immutable parts are shared with them).
    texts = [dumps(replay(r)) for r in streams[:200]]
    standalone = _grown(lambda: [loads(t, PurchaseOrder) for t in texts]) / len(texts)
    per_po = _grown(lambda: [replay(r) for r in streams[:200]]) / 200
    return Result(
        "lifecycle: replay transition records",
        "≥ 200,000/s",
        "transitions/s",
        samples,
        goal=200_000,
        notes={
            "POs": len(streams),
            "records": total,
            "records per PO": round(total / len(streams), 1),
            "memory per closed PO loaded alone (KiB)": round(standalone / 1024, 1),
            "memory replay adds per PO beyond its records (KiB)": round(per_po / 1024, 1),
        },
    )


BENCHMARKS = [Benchmark("lifecycle: replay transition records", replay_rate)]
