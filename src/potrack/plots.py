"""Plots for the few KPIs people prefer to see (``pip install 'potrack[plot]'``: matplotlib).

The core never imports matplotlib; this module imports it when a function is called, and each
function returns the matplotlib ``Figure`` (drawn on a non-interactive backend unless the host
chose one), so a notebook shows it and a script saves it with ``fig.savefig(path)``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Any

from potrack.exceptions import Problem, ValidationError
from potrack.metrics import (
    Endpoint,
    KpiResult,
    Milestone,
    OrderFacts,
    Rate,
    SpendShare,
    cycle_times,
)

__all__ = ["cycle_time_distribution", "on_time_trend", "spend_concentration"]


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as err:
        raise ImportError("potrack.plots needs matplotlib: pip install 'potrack[plot]'") from err
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # headless unless the host picked a backend already
    return importlib.import_module("matplotlib.pyplot")


def cycle_time_distribution(
    orders: Iterable[OrderFacts],
    start: Milestone | Endpoint,
    end: Milestone | Endpoint,
    *,
    bins: int = 40,
    unit: str = "days",
) -> Any:
    """A histogram of a cycle time, with the median and the 90th percentile marked.

    Raises:
        ImportError: matplotlib is not installed.
        ValidationError: as :func:`~potrack.metrics.cycle_times`.
    """
    plt = _pyplot()
    facts = list(orders)
    result = cycle_times(facts, start, end, unit=unit)
    values = _durations(facts, start, end, unit)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(values, bins=bins, color="#4472c4")
    summary = result.total
    if summary.median is not None:
        ax.axvline(
            float(summary.median), color="black", linestyle="--", label=f"median {summary.median}"
        )
        ax.axvline(float(summary.p90), color="#c00000", linestyle=":", label=f"p90 {summary.p90}")
        ax.legend()
    ax.set_title(result.name)
    ax.set_xlabel(unit)
    ax.set_ylabel("orders")
    fig.tight_layout()
    return fig


def _durations(
    facts: list[OrderFacts], start: Milestone | Endpoint, end: Milestone | Endpoint, unit: str
) -> list[float]:
    a = start if isinstance(start, Endpoint) else Endpoint(start)
    b = end if isinstance(end, Endpoint) else Endpoint(end)
    scale = 86_400.0 if unit == "days" else 3600.0
    out = []
    for order in facts:
        s, e = a.of(order), b.of(order)
        if s is not None and e is not None and e >= s and not order.cancelled:
            out.append((e - s).total_seconds() / scale)
    return out


def on_time_trend(result: KpiResult) -> Any:
    """A rate per period as a line (an on-time, OTIF or match-rate result grouped by period);
    periods with no data are left as gaps.

    Raises:
        ImportError: matplotlib is not installed.
        ValidationError: the result is not a rate grouped by period alone.
    """
    if result.group_by != ("period",) or not isinstance(result.total, Rate):
        raise ValidationError(
            "on_time_trend", [Problem("result", "a rate KPI grouped by period alone")]
        )
    plt = _pyplot()
    periods = [key[0] for key, _ in result.rows]
    values = [
        float(v.percent) if isinstance(v, Rate) and v.percent is not None else float("nan")
        for _, v in result.rows
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(periods, values, marker="o", color="#4472c4")
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(result.name)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def spend_concentration(result: KpiResult, top: int = 15) -> Any:
    """The suppliers' spend shares, largest first, with the cumulative share (a Pareto chart).

    Raises:
        ImportError: matplotlib is not installed.
        ValidationError: the result is not a spend result grouped by supplier alone.
    """
    if result.group_by != ("supplier",) or not isinstance(result.total, SpendShare):
        raise ValidationError(
            "spend_concentration", [Problem("result", "a spend KPI grouped by supplier alone")]
        )
    plt = _pyplot()
    rows = [(key[0], v) for key, v in result.rows if isinstance(v, SpendShare)][:top]
    names = [name for name, _ in rows]
    shares = [float(v.share or 0) for _, v in rows]
    running = []
    total = 0.0
    for share in shares:
        total += share
        running.append(total)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, shares, color="#4472c4")
    ax.plot(names, running, color="#c00000", marker=".")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of spend")
    ax.set_title(f"{result.name}: top {len(rows)} suppliers")
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig
