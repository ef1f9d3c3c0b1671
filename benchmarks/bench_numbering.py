"""Numbering targets: ≥ 100,000 numbers formatted per second in memory; ≥ 2,000 committed
allocations per second with 4 processes contending on one SQLite file (fast mode); gapless too."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from datetime import date
from pathlib import Path

from benchmarks._harness import Benchmark, Result, rate
from potrack.numbering import (
    BlockAllocator,
    GaplessAllocator,
    NumberingContext,
    NumberingScheme,
)
from potrack.sqlite import SQLiteStore

PATTERN = "PO-{dept}-{yyyy}-{seq:06}-{check:mod97}"
CTX = NumberingContext(on=date(2026, 11, 24), department="OPS")


def formatting(smoke: bool) -> Result:
    scheme = NumberingScheme(PATTERN)
    n = 20_000 if smoke else 200_000

    def work() -> int:
        fmt = scheme.format
        for i in range(1, n + 1):
            fmt(CTX, i)
        return n

    samples = rate(work, 3 if smoke else 7)
    return Result(
        "numbering: format in memory",
        "≥ 100,000/s",
        "numbers/s",
        samples,
        goal=100_000,
        notes={"pattern": PATTERN},
    )


def _worker(path: str, mode: str, count: int, start_at: float) -> float:
    store = SQLiteStore(path, timeout=120)
    scheme = NumberingScheme(PATTERN)
    while time.time() < start_at:
        time.sleep(0.001)
    begin = time.perf_counter()
    if mode == "fast":
        fast = BlockAllocator(scheme, store, block_size=100)
        for _ in range(count):
            fast.allocate(CTX)
    else:
        gapless = GaplessAllocator(scheme)
        for _ in range(count):
            with store.unit_of_work() as uow:
                gapless.allocate(CTX, uow)
    return time.perf_counter() - begin


def _contended(mode: str, smoke: bool) -> list[float]:
    per_process = 1_000 if smoke else 5_000
    samples = []
    ctx = multiprocessing.get_context("spawn")
    for _ in range(2 if smoke else 5):
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "numbers.sqlite")
            SQLiteStore(path)
            with ctx.Pool(4) as pool:
                start_at = time.time() + 1.0  # let every process start before the clock runs
                spans = pool.starmap(_worker, [(path, mode, per_process, start_at)] * 4)
            samples.append(4 * per_process / max(spans))
    return samples


def sqlite_fast(smoke: bool) -> Result:
    samples = _contended("fast", smoke)
    return Result(
        "numbering: SQLite 4 processes, fast",
        "≥ 2,000/s",
        "numbers/s",
        samples,
        goal=2_000,
        notes={"block_size": 100},
    )


def sqlite_gapless(smoke: bool) -> Result:
    samples = _contended("gapless", smoke)
    return Result(
        "numbering: SQLite 4 processes, gapless",
        "report",
        "numbers/s",
        samples,
        notes={"one transaction per number": True},
    )


BENCHMARKS = [
    Benchmark("numbering: format in memory", formatting),
    Benchmark("numbering: SQLite 4 processes, fast", sqlite_fast, processes=1),
    Benchmark("numbering: SQLite 4 processes, gapless", sqlite_gapless, processes=1),
]
