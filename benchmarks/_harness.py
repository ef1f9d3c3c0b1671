"""Measuring: medians of several runs, one child process per benchmark, a printed table."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field


@dataclass
class Result:
    """What one benchmark measured (rates: higher is better unless ``lower_is_better``)."""

    name: str
    target: str
    unit: str
    samples: list[float]
    goal: float | None = None
    """The target as a number (None: report only)."""
    lower_is_better: bool = False
    peak_mb: float = 0.0
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ok(self) -> bool | None:
        """Whether the median meets the goal (None when there is no goal)."""
        if self.goal is None:
            return None
        return self.median <= self.goal if self.lower_is_better else self.median >= self.goal


@dataclass
class Benchmark:
    """A named measurement: ``run(smoke)`` returns a Result.

    Full runs repeat the measurement in ``processes`` fresh interpreters and pool the samples:
    on shared machines one process can land on a slower core for its whole life.
    """

    name: str
    run: Callable[[bool], Result]
    processes: int = 3


def rate(work: Callable[[], int], runs: int) -> list[float]:
    """Per-second rates of ``work`` (which returns how many items it processed) over ``runs`` runs."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        count = work()
        samples.append(count / (time.perf_counter() - start))
    return samples


def durations(work: Callable[[], object], runs: int) -> list[float]:
    """Durations in seconds of ``runs`` runs of ``work``."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return samples


def peak_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def run_pooled(module: str, name: str, smoke: bool, processes: int) -> Result:
    """Run a benchmark in ``processes`` fresh interpreters (1 when smoke) and pool the samples."""
    results = [run_in_child(module, name, smoke) for _ in range(1 if smoke else processes)]
    pooled = results[0]
    for extra in results[1:]:
        pooled.samples.extend(extra.samples)
        pooled.peak_mb = max(pooled.peak_mb, extra.peak_mb)
    return pooled


def run_in_child(module: str, name: str, smoke: bool) -> Result:
    """Run one benchmark in a fresh interpreter and read back its Result."""
    args = [sys.executable, "-m", "benchmarks", "--child", module, name]
    if smoke:
        args.append("--smoke")
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"benchmark {name} failed")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(**data)


def emit(result: Result) -> None:
    result.peak_mb = round(peak_mb(), 1)
    print(json.dumps(asdict(result)))


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.3f}"
    if unit in ("s", "ratio"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def table(results: Sequence[Result]) -> str:
    head = ["benchmark", "target", "median", "min–max", "unit", "runs", "peak MiB", "ok"]
    rows = [head]
    for r in results:
        rows.append(
            [
                r.name,
                r.target,
                fmt(r.median, r.unit),
                f"{fmt(min(r.samples), r.unit)}–{fmt(max(r.samples), r.unit)}",
                r.unit,
                str(len(r.samples)),
                f"{r.peak_mb:,.0f}",
                "—" if r.ok is None else ("yes" if r.ok else "NO"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
