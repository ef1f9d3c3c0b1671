"""Cycle times and approval waits."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import attrs

from potrack._metrics.facts import (
    _DAY,
    CANCELLED,
    LAST_PAYMENT,
    PO_CREATED,
    REQUISITION,
    Endpoint,
    Milestone,
    OrderFacts,
    _Point,
)
from potrack._metrics.grouping import (
    _check_grouping,
    _check_negative,
    _excluded,
    _keyer,
    _negative_note,
)
from potrack._metrics.results import (
    KpiResult,
    summarize,
)
from potrack.approval import BusinessCalendar, level_started
from potrack.exceptions import Problem, ValidationError
from potrack.records import (
    ApprovalState,
    Decision,
)

# -- cycle times ------------------------------------------------------------------------------------------


def _business_days(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Working days after ``start``'s day up to and including ``end``'s day (same day: 0).

    Counted arithmetically (whole weeks, then the rest), so a long interval costs no more than a
    short one; holidays are subtracted with a binary search.
    """
    first, last = start.date(), end.date()
    if last <= first:
        return 0.0
    days = (last - first).days
    weeks, rest = divmod(days, 7)
    working = weeks * (7 - len(calendar.weekend))
    day = first
    for _ in range(rest):
        day += timedelta(days=1)
        if day.weekday() not in calendar.weekend:
            working += 1
    if calendar.holidays:
        ordered = _sorted_holidays(calendar)
        lo = bisect.bisect_right(ordered, first)
        hi = bisect.bisect_right(ordered, last)
        working -= sum(1 for h in ordered[lo:hi] if h.weekday() not in calendar.weekend)
    return float(working)


_HOLIDAYS: dict[int, tuple[BusinessCalendar, list[date]]] = {}


def _sorted_holidays(calendar: BusinessCalendar) -> list[date]:
    found = _HOLIDAYS.get(id(calendar))
    if found is None or found[0] is not calendar:
        found = _HOLIDAYS[id(calendar)] = (calendar, sorted(calendar.holidays))
    return found[1]


def _as_endpoint(point: Milestone | Endpoint) -> Endpoint:
    return point if isinstance(point, Endpoint) else Endpoint(point)


def cycle_times(
    orders: Iterable[OrderFacts],
    start: Milestone | Endpoint,
    end: Milestone | Endpoint,
    *,
    unit: str = "days",
    calendar: BusinessCalendar | None = None,
    group_by: Sequence[str] = (),
    period: str = "month",
    include_cancelled: bool = False,
    or_else: Milestone | Endpoint | None = None,
    negative: str = "exclude",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Time from ``start`` to ``end`` per order: count, median, mean, p90, min and max.

    A milestone alone means its first occurrence; ``FIRST_RECEIPT``, ``LAST_RECEIPT``,
    ``FIRST_INVOICE`` and ``LAST_PAYMENT`` name the others.  Orders where either end has not
    happened are left out (``no <end> yet``) — or, for a missing start, ``or_else`` is used when
    given (requisition, else PO creation).  An end *before* the start (an event log's receipt
    recorded before its PO, say) follows ``negative``: ``exclude`` (default) leaves it out as
    ``ends before it starts`` and counts it; ``keep`` keeps the negative duration (what a plain
    dataframe computation gives); ``clip`` counts it as 0.  Either way ``notes`` say how many
    (``negative intervals``) and each summary's ``negatives`` counts those kept or clipped.
    Cancelled orders (not reactivated since) are left out unless asked for.  The period of a
    group is the start's, counted in ``tz`` (None: the start's own offset).

    Example: PO created on 2 March 09:00, first receipt 5 March 09:00 — 3.00 calendar days; with a
    business calendar (Monday–Friday) from Monday 2 to Thursday 5 March — 3 business days.  A
    receipt on 3 March for a PO created on 5 March: left out (``exclude``), −2.00 (``keep``) or
    0.00 (``clip``).

    Raises:
        ValidationError: an unknown dimension, period, unit or ``negative`` option; an order
            mixing naive and aware timestamps.
    """
    if unit not in ("days", "hours"):
        raise ValidationError("cycle_times", [Problem("unit", f"'days' or 'hours', got {unit!r}")])
    if calendar is not None and unit != "days":
        raise ValidationError("cycle_times", [Problem("unit", "business time is counted in days")])
    _check_negative("cycle_times", negative)
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    a, b = _as_endpoint(start), _as_endpoint(end)
    fallback = _as_endpoint(or_else) if or_else is not None else None
    start_first = a.point is _Point.FIRST
    end_first = b.point is _Point.FIRST
    sm, em = a.milestone, b.milestone
    scale = _DAY if unit == "days" else 3600.0
    values: dict[tuple[str, ...], list[float]] = defaultdict(list)
    negatives: dict[tuple[str, ...], int] = defaultdict(int)
    everything: list[float] = []
    skipped: dict[str, int] = defaultdict(int)
    no_start, no_end = f"no {a.label} yet", f"no {b.label} yet"
    cancelled = int(CANCELLED)
    backwards = 0
    for order in orders:
        if not include_cancelled and order.counts[cancelled] and order.cancelled:
            skipped["cancelled"] += 1
            continue
        s = (order.first if start_first else order.last)[sm]
        if s is None and fallback is not None:
            s = fallback.of(order)
        if s is None:
            skipped[no_start] += 1
            continue
        e = (order.first if end_first else order.last)[em]
        if e is None:
            skipped[no_end] += 1
            continue
        try:
            backward = e < s
        except TypeError:
            raise _mixed_zones("cycle_times", order.id, s, e) from None
        if backward:
            backwards += 1
            if negative == "exclude":
                skipped["ends before it starts"] += 1
                continue
            if negative == "clip":
                took = 0.0
            elif calendar is None:
                took = (e - s).total_seconds() / scale
            else:
                took = -_business_days(e, s, calendar)
        elif calendar is None:
            took = (e - s).total_seconds() / scale
        else:
            took = _business_days(s, e, calendar)
        everything.append(took)
        if dims:
            k = key(order, s)
            values[k].append(took)
            if backward:
                negatives[k] += 1
    basis = "business" if calendar is not None else "calendar"
    kept = 0 if negative == "exclude" else backwards
    rows = tuple((k, summarize(v, unit, basis, negatives[k])) for k, v in sorted(values.items()))
    return KpiResult(
        name=f"cycle time: {a.label} → {b.label}",
        definition=f"{b.label} − {a.label} per order, {basis} {unit}",
        group_by=dims,
        rows=rows,
        total=summarize(everything, unit, basis, kept),
        excluded=_excluded(skipped),
        notes=(_negative_note(negative, backwards),),
    )


def _mixed_zones(kpi: str, where: str, *moments: datetime) -> ValidationError:
    shown = ", ".join(t.isoformat() for t in moments)
    return ValidationError(
        kpi,
        [
            Problem(
                where,
                f"mixes naive and aware timestamps ({shown}): give every timestamp a time zone",
            )
        ],
    )


def procure_to_pay(orders: Iterable[OrderFacts], **options: Any) -> KpiResult:
    """Requisition (or, without one, PO creation) to the last payment, per order.

    Takes :func:`cycle_times`'s options.
    """
    result = cycle_times(orders, REQUISITION, LAST_PAYMENT, or_else=PO_CREATED, **options)
    return attrs.evolve(
        result,
        name="cycle time: procure to pay",
        definition="last payment − requisition (or PO creation without one), per order",
    )


def approval_cycle_times(
    states: Iterable[ApprovalState],
    *,
    unit: str = "hours",
    by: str = "step",
    negative: str = "exclude",
) -> KpiResult:
    """How long documents wait for each approval step, per step (``by="step"``, the rule's step
    id) or per approver (``by="approver"``) — where approvals stall.

    A step waits from when its level opened (the route's start, or the last approval that
    completed the levels before it) to its deciding decision.  Steps not decided yet are counted
    as ``still waiting``.  A decision recorded before its level opened (clocks of two systems
    disagreeing) follows ``negative`` exactly as in :func:`cycle_times`: left out and counted
    (``exclude``, the default), kept (``keep``) or counted as 0 (``clip``).

    Raises:
        ValidationError: ``by`` is neither ``step`` nor ``approver``, an unknown unit or
            ``negative`` option.
    """
    if by not in ("step", "approver") or unit not in ("days", "hours"):
        raise ValidationError(
            "approval_cycle_times",
            [
                Problem(
                    "by/unit",
                    f"by 'step' or 'approver', unit 'days' or 'hours'; got {by!r}, {unit!r}",
                )
            ],
        )
    _check_negative("approval_cycle_times", negative)
    scale = _DAY if unit == "days" else 3600.0
    values: dict[tuple[str, ...], list[float]] = defaultdict(list)
    negatives: dict[tuple[str, ...], int] = defaultdict(int)
    everything: list[float] = []
    skipped: dict[str, int] = defaultdict(int)
    backwards = 0
    for state in states:
        decided = {
            d.step_id: d
            for d in state.decisions
            if d.decision in (Decision.APPROVE, Decision.REJECT, Decision.RETURN)
        }
        for step in state.route.steps:
            decision = decided.get(step.step_id)
            if decision is None:
                skipped["still waiting"] += 1
                continue
            opened = level_started(state, step.level)
            took = (decision.at - opened).total_seconds() / scale
            k = (step.step_id if by == "step" else decision.actor,)
            if took < 0:
                backwards += 1
                if negative == "exclude":
                    skipped["ends before it starts"] += 1
                    continue
                negatives[k] += 1
                if negative == "clip":
                    took = 0.0
            everything.append(took)
            values[k].append(took)
    kept = 0 if negative == "exclude" else backwards
    return KpiResult(
        name=f"approval wait per {by}",
        definition=f"decision − level opened, {unit}",
        group_by=(by,),
        rows=tuple(
            (k, summarize(v, unit, negatives=negatives[k])) for k, v in sorted(values.items())
        ),
        total=summarize(everything, unit, negatives=kept),
        excluded=_excluded(skipped),
        notes=(_negative_note(negative, backwards),),
    )
