"""Grouping, reporting periods and the negative-interval convention."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, tzinfo

from potrack._metrics.facts import (
    OrderFacts,
)
from potrack.exceptions import Problem, ValidationError

# -- grouping ---------------------------------------------------------------------------------------------

DIMENSIONS = ("supplier", "category", "department", "company", "budget", "period")
PERIODS = ("month", "quarter", "year")


def period_of(moment: date | datetime, period: str) -> str:
    """``2026-03``, ``2026-Q1`` or ``2026``.

    >>> period_of(date(2026, 5, 17), "quarter")
    '2026-Q2'
    """
    if period == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if period == "quarter":
        return f"{moment.year:04d}-Q{(moment.month - 1) // 3 + 1}"
    return f"{moment.year:04d}"


def _check_grouping(group_by: Sequence[str], period: str) -> tuple[str, ...]:
    problems = [
        Problem("group_by", f"unknown dimension {g!r}; expected one of {', '.join(DIMENSIONS)}")
        for g in group_by
        if g not in DIMENSIONS
    ]
    if period not in PERIODS:
        problems.append(Problem("period", f"expected one of {', '.join(PERIODS)}, got {period!r}"))
    if problems:
        raise ValidationError("KPI grouping", problems)
    return tuple(group_by)


def _keyer(
    group_by: tuple[str, ...], period: str, tz: tzinfo | None = None
) -> Callable[[OrderFacts, date | datetime | None], tuple[str, ...]]:
    """A function giving an order's group key (``anchor``: the moment its period is taken from).

    A moment's period is its calendar day in ``tz`` (None: in the moment's own offset, the local
    day where it was recorded) — the rule :func:`orders_from_records` uses for receipt days.
    """
    if not group_by:
        return lambda order, anchor: ()
    if len(group_by) == 1 and group_by[0] != "period":
        name = group_by[0]
        return lambda order, anchor: (getattr(order, name) or "(none)",)

    def when(order: OrderFacts, anchor: date | datetime) -> date | datetime:
        if tz is not None and isinstance(anchor, datetime):
            if anchor.tzinfo is None:
                # astimezone() would read it in the machine's zone: refuse instead.
                raise ValidationError(
                    "KPI period",
                    [
                        Problem(
                            order.id,
                            f"naive datetime {anchor.isoformat()} cannot be put in {tz}: "
                            "give every timestamp a time zone",
                        )
                    ],
                )
            return anchor.astimezone(tz)
        return anchor

    def key(order: OrderFacts, anchor: date | datetime | None) -> tuple[str, ...]:
        return tuple(
            (period_of(when(order, anchor), period) if anchor is not None else "no date")
            if g == "period"
            else getattr(order, g) or "(none)"
            for g in group_by
        )

    return key


NEGATIVE = ("exclude", "keep", "clip")
"""What a cycle time does with an end recorded before its start: ``exclude`` (the default: left
out, and counted under ``ends before it starts``), ``keep`` (a negative duration, as a plain
dataframe computation gives) or ``clip`` (counted as 0)."""


def _check_negative(kpi: str, negative: str) -> None:
    if negative not in NEGATIVE:
        raise ValidationError(
            kpi, [Problem("negative", f"'exclude', 'keep' or 'clip', got {negative!r}")]
        )


def _negative_note(negative: str, n: int) -> tuple[str, str]:
    done = {
        "exclude": "left out",
        "keep": "kept as negative durations",
        "clip": "counted as 0",
    }[negative]
    return ("negative intervals", f"{negative}: {n} {done}")


def _excluded(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
