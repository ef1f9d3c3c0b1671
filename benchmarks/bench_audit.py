"""Audit target: ``verify`` checks a trail of 200,000 records within 150 MiB peak memory (flat
with the trail's length), and reports its time and peak memory at 10k, 100k and 1M records.

The trail is built once per size in a separate process (so the measuring process's peak memory
is the verification's own): POs of ten records each (the creation and nine comments), committed
500 events to a transaction (the service's units of work nest in one outer unit).  ``verify``
then checks the chain, every record's columns, the outbox, and replays every PO against its
stored row.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from typing import Any

from benchmarks._harness import Benchmark, Result, peak_mb
from potrack.audit import verify
from potrack.events import AddComment
from potrack.service import Purchasing
from potrack.sqlite import SQLiteFile, SQLiteStore
from potrack.testing.scenario import Scenario

PER_PO = 10
BATCH = 500


def build(path: str, records: int) -> None:
    """A store at ``path`` with ``records`` trail records (POs of ten records each)."""
    s = Scenario()
    store = SQLiteStore(path)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    done = 0
    po = 0
    while done < records:
        with store.unit_of_work():
            for _ in range(BATCH // PER_PO):
                if done >= records:
                    break
                po += 1
                s.clock.set(s.at(0))
                po_id = svc.create_order(s.po_document(id=f"B-{po}"), s.buyer).document.id
                done += 1
                for n in range(PER_PO - 1):
                    if done >= records:
                        break
                    s.clock.set(s.at(1 + n))
                    svc.order(po_id, AddComment(text=f"note {n}"), s.buyer)
                    done += 1
    store.close()


def _trail(records: int) -> str:
    """The path of a built trail of ``records`` records (built once, kept for later runs)."""
    directory = os.path.join(tempfile.gettempdir(), "potrack-bench-audit")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"trail-{records}.sqlite")
    if not os.path.exists(path):
        partial = f"{path}.building"
        for stale in (partial, f"{partial}-wal", f"{partial}-shm"):
            if os.path.exists(stale):
                os.unlink(stale)
        ctx = multiprocessing.get_context("spawn")
        worker = ctx.Process(target=build, args=(partial, records))
        worker.start()
        worker.join()
        os.rename(partial, path)
    return path


def verify_at(records: int, goal_mb: float | None = None) -> Any:
    def run(smoke: bool) -> Result:
        size = 2_000 if smoke else records
        path = _trail(size)
        start = time.perf_counter()
        report = verify(SQLiteFile(path))
        took = time.perf_counter() - start
        if not report.ok or report.checked != size:
            raise RuntimeError(f"{path}: {report}")
        peak = peak_mb()
        if goal_mb is not None:
            return Result(
                f"audit: verify peak memory, {records:,} records",
                f"< {goal_mb:,.0f} MiB",
                "MiB",
                [peak],
                goal=goal_mb,
                lower_is_better=True,
                notes={"seconds": round(took, 1), "records": size},
            )
        return Result(
            f"audit: verify {records:,} records",
            "report",
            "s",
            [took],
            lower_is_better=True,
            notes={
                "records/s": round(size / took),
                "documents replayed": report.documents,
                "peak MiB": round(peak, 1),
            },
        )

    return run


BENCHMARKS = [
    Benchmark("audit: verify 10,000 records", verify_at(10_000), processes=1),
    Benchmark("audit: verify 100,000 records", verify_at(100_000), processes=1),
    Benchmark("audit: verify peak memory, 200,000 records", verify_at(200_000, 150), processes=1),
    Benchmark("audit: verify 1,000,000 records", verify_at(1_000_000), processes=1),
]
