"""Metrics target: 1,600,000 events (the full BPI 2019 log's size, generated synthetically)
through the standard KPI set in under 10 seconds on one core, linear in the number of events;
peak memory reported.

Two pipelines are measured: events already in memory (:func:`potrack.eventlog.fold_events`,
the target) and the same log read from a BPI-format CSV file (:func:`read_event_log`: CSV parsing
included).  Generating the log is not timed.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from typing import Any

from benchmarks._harness import Benchmark, Result, peak_mb
from potrack.eventlog import fold_events, read_event_log
from potrack.metrics import standard_kpis
from potrack.testing.synth import Synth

EVENTS_PER_CASE = 5.72  # what Synth.events produces on average


def _cases(events: int) -> int:
    return max(10, round(events / EVENTS_PER_CASE))


def in_memory(full_events: int, runs: int) -> Any:
    def run(smoke: bool) -> Result:
        target = max(20_000, full_events // 32) if smoke else full_events
        events = list(Synth(seed=4).events(_cases(target)))
        gc.collect()
        base = peak_mb()
        samples = []
        cases = 0
        for _ in range(2 if smoke else runs):
            start = time.perf_counter()
            log = fold_events(events)
            kpis = standard_kpis(log.cases)
            samples.append(time.perf_counter() - start)
            cases = len(log.cases)
            del log, kpis
            gc.collect()
        return Result(
            f"metrics: {full_events:,} events in memory → standard KPIs",
            "< 10 s" if full_events >= 1_600_000 else "report (linearity)",
            "s",
            samples,
            goal=10.0 if full_events >= 1_600_000 else None,
            lower_is_better=True,
            notes={
                "events": len(events),
                "cases": cases,
                "events/s": round(len(events) / min(samples)),
                "MiB holding the events": round(base),
            },
        )

    return run


def from_csv(full_events: int) -> Any:
    def run(smoke: bool) -> Result:
        target = max(20_000, full_events // 32) if smoke else full_events
        fd, path = tempfile.mkstemp(suffix=".csv")
        os.close(fd)
        try:
            written = Synth(seed=4).write_event_log(path, _cases(target))
            size = os.path.getsize(path) / 2**20
            gc.collect()
            samples = []
            for _ in range(2 if smoke else 3):
                start = time.perf_counter()
                log = read_event_log(path)
                standard_kpis(log.cases)
                samples.append(time.perf_counter() - start)
                del log
                gc.collect()
        finally:
            os.unlink(path)
        return Result(
            f"metrics: {full_events:,}-event CSV → standard KPIs",
            "report",
            "s",
            samples,
            lower_is_better=True,
            notes={
                "events": written,
                "CSV MiB": round(size),
                "events/s": round(written / min(samples)),
            },
        )

    return run


BENCHMARKS = [
    Benchmark("metrics: 160,000 events in memory → standard KPIs", in_memory(160_000, 5)),
    Benchmark(
        "metrics: 1,600,000 events in memory → standard KPIs", in_memory(1_600_000, 3), processes=1
    ),
    Benchmark("metrics: 1,600,000-event CSV → standard KPIs", from_csv(1_600_000), processes=1),
]
