"""Receiving target: recording one goods receipt is linear in its lines (issue 24 measured
2k / 8k / 32k / 100k receipt lines at 0.05 / 0.78 / 14.3 / 144 s, quadratic, inside the write
transaction).

Each row records one receipt of every line of an issued PO through
:class:`~potrack.service.Purchasing` on SQLite, timed from the call to its return (loading the
PO, the guards, applying it before the writing unit opens, saving, appending, committing), and
reports lines per second: a linear cost gives the same rate at every size.
"""

from __future__ import annotations

import os
import tempfile
import time
from decimal import Decimal
from typing import Any

from benchmarks._harness import Benchmark, Result
from potrack import approval as ap
from potrack.events import Issue, ReceiveGoods, RecordDecision, SubmitForApproval
from potrack.records import Decision, GoodsReceipt, ReceiptId, ReceiptLine
from potrack.service import Purchasing
from potrack.sqlite import SQLiteStore
from potrack.testing.scenario import Scenario


def receive_once(lines: int) -> float:
    """Seconds to record one receipt of ``lines`` lines on an issued PO of that many lines."""
    s = Scenario()
    store = SQLiteStore(os.path.join(tempfile.mkdtemp(), "receive.sqlite"))
    svc = Purchasing(store, s.lifecycle, numbers=s.numbers, clock=s.clock)
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(lines=lines, quantity="10"), s.buyer).document
    s.clock.set(s.at(0.1))
    po = svc.order(po.id, SubmitForApproval(), s.buyer).document
    while po.approval is not None and ap.active_steps(po.approval):
        for step in ap.active_steps(po.approval):
            who = ap.step_candidates(po.approval, step)[0]
            actor = s.directory.actor(who)
            assert actor is not None
            decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
            s.clock.set(s.at(0.2))
            po = svc.order(po.id, decision, actor).document
    s.clock.set(s.at(0.3))
    po = svc.order(po.id, Issue(), s.buyer).document
    receipt = GoodsReceipt(
        id=ReceiptId("GR-1"),
        po_id=po.id,
        received_at=s.at(5),
        received_by=s.receiver.id,
        lines=tuple(
            ReceiptLine(line_no=n, received=Decimal(10), rejected=Decimal(0))
            for n in range(1, lines + 1)
        ),
    )
    start = time.perf_counter()
    s.clock.set(s.at(5))
    svc.order(po.id, ReceiveGoods(receipt=receipt), s.receiver)
    took = time.perf_counter() - start
    store.close()
    return took


def receiving(lines: int) -> Any:
    def run(smoke: bool) -> Result:
        size = min(lines, 500) if smoke else lines
        samples = [size / receive_once(size) for _ in range(1 if smoke else 3)]
        return Result(
            f"receiving: one receipt of {lines:,} lines",
            "linear (same rate at every size)",
            "lines/s",
            samples,
            notes={"lines": size},
        )

    return run


BENCHMARKS = [
    Benchmark("receiving: one receipt of 2,000 lines", receiving(2_000), processes=1),
    Benchmark("receiving: one receipt of 32,000 lines", receiving(32_000), processes=1),
    Benchmark("receiving: one receipt of 100,000 lines", receiving(100_000), processes=1),
]
