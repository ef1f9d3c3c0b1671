"""Storage target: at least 2,000 business events per second committed on one SQLite file (one
event = the PO's new version + its transition record, chained into the audit trail, + its outbox
messages, in one transaction), with 1 and with 4 writer processes.

Each event goes through :class:`~potrack.service.Purchasing` as a host would: load the PO, check
the idempotency key, apply the event through the lifecycle, save, append, commit.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks._harness import Benchmark, Result
from potrack.audit import ChainKey
from potrack.events import AddComment
from potrack.service import Purchasing
from potrack.sqlite import SQLiteStore
from potrack.testing.scenario import Scenario

_KEY = b"benchmark chain key, 32 bytes.."


def _writer(
    path: str, worker: int, orders: int, per_order: int, start_at: float, keyed: bool = False
) -> tuple[int, float]:
    """Create ``orders`` POs (untimed), then wait for the common start and comment on them;
    returns (events, seconds)."""
    s = Scenario()
    key = ChainKey("bench", _KEY) if keyed else None
    store = SQLiteStore(path, timeout=120, chain_key=key)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    ids = [
        svc.create_order(s.po_document(id=f"B{worker}-{i}"), s.buyer).document.id
        for i in range(orders)
    ]
    while time.time() < start_at:
        time.sleep(0.001)
    s.clock.set(s.at(1))
    begin = time.perf_counter()
    events = 0
    for n in range(per_order):
        for po_id in ids:
            svc.order(po_id, AddComment(text=f"note {n}"), s.buyer)
            events += 1
    took = time.perf_counter() - begin
    store.close()
    return events, took


def throughput(writers: int, keyed: bool = False) -> Any:
    def run(smoke: bool) -> Result:
        orders, per_order = (10, 10) if smoke else (50, 40)
        samples = []
        total = 0
        for _ in range(1 if smoke else 3):
            directory = tempfile.mkdtemp()
            path = os.path.join(directory, "bench.sqlite")
            SQLiteStore(path).close()
            start_at = time.time() + (1.0 if writers == 1 else 4.0)
            if writers == 1:
                results = [_writer(path, 0, orders, per_order, start_at, keyed)]
            else:
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(writers, mp_context=ctx) as pool:
                    futures = [
                        pool.submit(_writer, path, w, orders, per_order, start_at, keyed)
                        for w in range(writers)
                    ]
                    results = [f.result() for f in futures]
            events = sum(e for e, _ in results)
            wall = max(t for _, t in results)  # all start together: the slowest ends the run
            samples.append(events / wall)
            total = events
            os.unlink(path)
        return Result(
            f"storage: SQLite events committed, {'keyed chain, ' if keyed else ''}"
            f"{writers} writer{'s' if writers > 1 else ''}",
            "≥ 2,000/s",
            "events/s",
            samples,
            goal=2_000,
            notes={"events per run": total, "synchronous": "NORMAL (WAL)"},
        )

    return run


BENCHMARKS = [
    Benchmark("storage: SQLite events committed, 1 writer", throughput(1)),
    Benchmark("storage: SQLite events committed, 4 writers", throughput(4), processes=1),
    Benchmark("storage: SQLite events committed, keyed chain, 1 writer", throughput(1, True)),
    Benchmark(
        "storage: SQLite events committed, keyed chain, 4 writers",
        throughput(4, True),
        processes=1,
    ),
]
