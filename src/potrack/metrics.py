"""Procurement KPIs: cycle times, perfect orders, on-time delivery, match rates, spend.

Every KPI reads :class:`OrderFacts` — one per purchase order (or per order item, for an event
log) — in one streaming pass, and returns a :class:`KpiResult`: the numbers per group, the sample
size behind each, the definition used, and what was left out and why.  Facts come from potrack's
own records (:func:`orders_from_records`) or from a procurement event log
(:mod:`potrack.eventlog`, with an importer for the BPI Challenge 2019 format).

>>> from datetime import datetime, UTC
>>> def at(day): return datetime(2026, 3, day, 9, tzinfo=UTC)
>>> orders = [
...     OrderFacts.build("PO-1", supplier="ACME", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(5), at(9)]}),
...     OrderFacts.build("PO-2", supplier="ACME", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(4)]}),
...     OrderFacts.build("PO-3", supplier="Bolt", events={PO_CREATED: [at(3)]}),
... ]
>>> result = cycle_times(orders, PO_CREATED, FIRST_RECEIPT)
>>> result.total.count, result.total.median, result.excluded
(2, Decimal('2.50'), (('no first goods receipt yet', 1),))

Statistics: the median and the 90th percentile interpolate linearly between the two nearest
ranks (as ``statistics.quantiles(method="inclusive")`` and numpy's default); durations are in
calendar days (or hours) unless a :class:`~potrack.approval.BusinessCalendar` is given; rates
with nothing to measure are *no data* (``None``), never 0 %.
"""

from __future__ import annotations

import bisect
import enum
import importlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
import babel.numbers
from moneyed import Money

from potrack.approval import BusinessCalendar, level_started
from potrack.exceptions import Problem, ValidationError
from potrack.money import DEFAULT_LOCALE
from potrack.records import (
    ApprovalState,
    Decision,
    GoodsReceipt,
    Invoice,
    MatchLevel,
    POState,
    PurchaseOrder,
)

__all__ = [
    "APPROVED",
    "CANCELLED",
    "CHANGE",
    "CLOSED",
    "FIRST_INVOICE",
    "FIRST_RECEIPT",
    "GOODS_RECEIPT",
    "INVOICE",
    "INVOICE_CANCELLED",
    "ISSUED",
    "LAST_RECEIPT",
    "PAYMENT",
    "PAYMENT_BLOCK",
    "PO_CREATED",
    "REACTIVATED",
    "REQUISITION",
    "Comparison",
    "Delivery",
    "KpiResult",
    "Milestone",
    "OrderFacts",
    "Rate",
    "Scorecard",
    "ScorecardResult",
    "SpendShare",
    "Summary",
    "SupplierScore",
    "approval_cycle_times",
    "committed_spend",
    "compare",
    "concentration",
    "cycle_times",
    "invoice_match_rate",
    "invoice_price_variance",
    "maverick_share",
    "on_time_delivery",
    "order_accuracy",
    "orders_from_records",
    "otif",
    "perfect_order_rate",
    "procure_to_pay",
    "purchase_price_variance",
    "rejection_rate",
    "spend",
    "standard_kpis",
    "summarize",
]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_DAY = 86_400.0


class Milestone(enum.IntEnum):
    """What happened to an order, as the KPIs see it (an index into :class:`OrderFacts`)."""

    REQUISITION = 0
    PO_CREATED = 1
    APPROVED = 2
    ISSUED = 3
    ACKNOWLEDGED = 4
    GOODS_RECEIPT = 5
    RECEIPT_CANCELLED = 6
    VENDOR_INVOICE = 7
    """The supplier's invoice date."""
    INVOICE = 8
    """An invoice recorded."""
    INVOICE_CANCELLED = 9
    PAYMENT_BLOCK = 10
    PAYMENT = 11
    CHANGE = 12
    """A change to the order after it was made (quantity, price, dates: a revision)."""
    CANCELLED = 13
    CLOSED = 14
    OTHER = 15
    REACTIVATED = 16
    """A cancelled (deleted) order or item made live again: a later reactivation undoes a
    cancellation (BPI 2019: 4 of the sample's 29 deleted items were reactivated, then received
    and paid)."""

    @property
    def label(self) -> str:
        """``goods receipt``, ``PO created``..."""
        return _LABELS.get(self.name, self.name.lower().replace("_", " "))


_LABELS = {
    "PO_CREATED": "PO created",
    "INVOICE": "invoice recorded",
    "VENDOR_INVOICE": "invoice date",
}
_REPEATING = frozenset(
    {"GOODS_RECEIPT", "INVOICE", "VENDOR_INVOICE", "PAYMENT", "CHANGE", "PAYMENT_BLOCK", "OTHER"}
)


REQUISITION = Milestone.REQUISITION
PO_CREATED = Milestone.PO_CREATED
APPROVED = Milestone.APPROVED
ISSUED = Milestone.ISSUED
GOODS_RECEIPT = Milestone.GOODS_RECEIPT
INVOICE = Milestone.INVOICE
INVOICE_CANCELLED = Milestone.INVOICE_CANCELLED
PAYMENT_BLOCK = Milestone.PAYMENT_BLOCK
PAYMENT = Milestone.PAYMENT
CHANGE = Milestone.CHANGE
CANCELLED = Milestone.CANCELLED
CLOSED = Milestone.CLOSED
REACTIVATED = Milestone.REACTIVATED
_COUNT = len(Milestone)


class _Point(enum.Enum):
    """Which occurrence of a milestone a cycle time starts or ends at."""

    FIRST = "first"
    LAST = "last"


@attrs.frozen
class Endpoint:
    """A milestone's first or last occurrence (``FIRST_RECEIPT``, ``LAST_RECEIPT``...)."""

    milestone: Milestone
    point: _Point = _Point.FIRST

    @property
    def label(self) -> str:
        """``first goods receipt``, ``last payment``, ``PO created``..."""
        if self.milestone.name in _REPEATING:
            return f"{self.point.value} {self.milestone.label}"
        return self.milestone.label

    def of(self, order: OrderFacts) -> datetime | None:
        """When it happened to ``order`` (None: not yet, or unknown)."""
        return (order.first if self.point is _Point.FIRST else order.last)[self.milestone]


FIRST_RECEIPT = Endpoint(GOODS_RECEIPT, _Point.FIRST)
LAST_RECEIPT = Endpoint(GOODS_RECEIPT, _Point.LAST)
FIRST_INVOICE = Endpoint(INVOICE, _Point.FIRST)
LAST_PAYMENT = Endpoint(PAYMENT, _Point.LAST)


# -- facts ------------------------------------------------------------------------------------------------


@attrs.frozen
class Delivery:
    """One order line's delivery: what was ordered for when, and what arrived when.

    ``receipts`` are (day received, quantity *accepted* into stock) in the order they happened;
    ``rejected`` is the quantity rejected at those receipts, already left out of ``receipts``
    (so the quantity received is the receipts' sum plus ``rejected``).  The days are calendar
    days where the goods arrived (see :func:`orders_from_records`' ``tz``).
    """

    order_id: str
    line_no: int
    quantity: Decimal
    requested: date | None
    promised: date | None
    receipts: tuple[tuple[date, Decimal], ...] = ()
    rejected: Decimal = _ZERO


@attrs.frozen
class OrderFacts:
    """What the KPIs need to know about one order (or one order item of an event log).

    ``first``, ``last`` and ``counts`` are indexed by :class:`Milestone`: when it first and last
    happened (None: never, or unknown) and how often.  ``value`` is the order's net value in
    ``currency``; ``invoiced`` what was invoiced net of credit memos; ``mismatched`` whether an
    invoice failed its first match (None: unknown); ``deliveries`` one per line when the source
    knows quantities and due dates (an event log usually does not).
    """

    id: str
    supplier: str = ""
    category: str = ""
    department: str = ""
    company: str = ""
    currency: str = ""
    value: Decimal = _ZERO
    invoiced: Decimal = _ZERO
    budget: str = ""
    match_level: MatchLevel | None = None
    first: tuple[datetime | None, ...] = (None,) * _COUNT
    last: tuple[datetime | None, ...] = (None,) * _COUNT
    counts: tuple[int, ...] = (0,) * _COUNT
    mismatched: bool | None = None
    exceptions: tuple[str, ...] = ()
    """Why invoices were held (finding codes), for exception counts."""
    deliveries: tuple[Delivery, ...] = ()
    has_po: bool = True

    @classmethod
    def build(
        cls,
        id: str,
        events: Mapping[Milestone, Sequence[datetime]] | None = None,
        **fields: Any,
    ) -> OrderFacts:
        """Facts from the times each milestone happened (a convenience for hosts and tests).

        >>> from datetime import datetime, UTC
        >>> o = OrderFacts.build("PO-1", events={PO_CREATED: [datetime(2026, 3, 2, tzinfo=UTC)]})
        >>> o.first[PO_CREATED].day, o.counts[GOODS_RECEIPT]
        (2, 0)
        """
        first: list[datetime | None] = [None] * _COUNT
        last: list[datetime | None] = [None] * _COUNT
        counts = [0] * _COUNT
        naive = [
            Problem(f"events.{Milestone(milestone).name}", f"naive datetime {t.isoformat()}")
            for milestone, times in (events or {}).items()
            for t in times
            if t.tzinfo is None or t.utcoffset() is None
        ]
        if naive:
            raise ValidationError(
                f"OrderFacts {id}",
                [Problem(p.path, p.message + ": give every timestamp a time zone") for p in naive],
            )
        for milestone, times in (events or {}).items():
            if times:
                first[milestone] = min(times)
                last[milestone] = max(times)
                counts[milestone] = len(times)
        return cls(id=id, first=tuple(first), last=tuple(last), counts=tuple(counts), **fields)

    @property
    def cancelled(self) -> bool:
        """Cancelled, and not reactivated after its last cancellation."""
        return self.counts[CANCELLED] > 0 and not _reactivated(self)

    def dimension(self, name: str) -> str:
        """The order's supplier, category, department or company."""
        value: str = getattr(self, name)
        return value


def _reactivated(order: OrderFacts) -> bool:
    back, gone = order.last[REACTIVATED], order.last[CANCELLED]
    return back is not None and gone is not None and back > gone


# -- statistics -------------------------------------------------------------------------------------------


@attrs.frozen
class Summary:
    """A distribution of durations: how many, and the median, mean, 90th percentile and extremes.

    ``unit`` is ``days`` or ``hours``; ``basis`` ``calendar`` or ``business``.  Values are rounded
    to 0.01 (half-even).  With no observations every statistic is None.  ``negatives`` counts the
    observations that ended before they started and were kept (``negative="keep"``) or counted
    as 0 (``negative="clip"``).
    """

    count: int
    median: Decimal | None
    mean: Decimal | None
    p90: Decimal | None
    min: Decimal | None
    max: Decimal | None
    unit: str = "days"
    basis: str = "calendar"
    negatives: int = 0

    def to_row(self) -> dict[str, object]:
        return {
            "count": self.count,
            "median": self.median,
            "mean": self.mean,
            "p90": self.p90,
            "min": self.min,
            "max": self.max,
            "unit": self.unit,
            "negatives": self.negatives,
        }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks of sorted data (numpy's default).

    >>> _quantile([1.0, 2.0, 3.0, 4.0], 0.5), _quantile([1.0, 2.0, 3.0, 4.0], 0.9)
    (2.5, 3.7)
    """
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _dec(value: float) -> Decimal:
    return Decimal(repr(round(value, 6))).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def summarize(
    values: Iterable[float],
    unit: str = "days",
    basis: str = "calendar",
    negatives: int | None = None,
) -> Summary:
    """The :class:`Summary` of some durations (already in ``unit``); ``negatives`` defaults to
    the number of values below 0.

    >>> summarize([1, 2, 3, 4, 10])
    Summary(count=5, median=Decimal('3.00'), mean=Decimal('4.00'), p90=Decimal('7.60'), min=Decimal('1.00'), max=Decimal('10.00'), unit='days', basis='calendar', negatives=0)
    """
    ordered = sorted(values)
    if negatives is None:
        negatives = bisect.bisect_left(ordered, 0.0)
    if not ordered:
        return Summary(0, None, None, None, None, None, unit, basis, negatives)
    return Summary(
        len(ordered),
        _dec(_quantile(ordered, 0.5)),
        _dec(math.fsum(ordered) / len(ordered)),
        _dec(_quantile(ordered, 0.9)),
        _dec(ordered[0]),
        _dec(ordered[-1]),
        unit,
        basis,
        negatives,
    )


@attrs.frozen
class Rate:
    """``numerator`` of ``denominator`` (counts, quantities or amounts), as a percent.

    ``percent`` is None when there was nothing to measure: *no data*, not 0 %.

    >>> Rate.of(17, 20).percent, Rate.of(0, 0).percent
    (Decimal('85.00'), None)
    """

    numerator: Decimal
    denominator: Decimal
    percent: Decimal | None

    @classmethod
    def of(cls, numerator: Decimal | int, denominator: Decimal | int) -> Rate:
        num, den = Decimal(numerator), Decimal(denominator)
        pct = None if not den else (num * _HUNDRED / den).quantize(_CENT, ROUND_HALF_EVEN)
        return cls(num, den, pct)

    def to_row(self) -> dict[str, object]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": self.percent,
        }


@attrs.frozen
class SpendShare:
    """An amount and its share of the whole (percent, two decimals)."""

    amount: Decimal
    currency: str
    share: Decimal | None
    count: int = 0

    def to_row(self) -> dict[str, object]:
        return {
            "amount": self.amount,
            "currency": self.currency,
            "share": self.share,
            "count": self.count,
        }


Value = Summary | Rate | SpendShare


@attrs.frozen
class KpiResult:
    """One KPI: its values per group, the definition used, and what was left out and why.

    ``rows`` pairs each group (a tuple of dimension values, in ``group_by`` order; ``()`` for the
    whole) with its value; ``total`` is the value over every group.  ``excluded`` counts the
    orders (or lines, or invoices) not measured, by reason.
    """

    name: str
    definition: str
    group_by: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], Value], ...]
    total: Any
    excluded: tuple[tuple[str, int], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def no_data(self) -> str:
        """Why the total measures nothing (``no data: 3 left out (no delivery data 3)``), or ``""``
        when it measures something: a KPI with nothing to measure says so and why."""
        total = self.total
        empty = (
            (isinstance(total, Summary) and total.count == 0)
            or (isinstance(total, Rate) and total.percent is None)
            or (isinstance(total, SpendShare) and total.share is None)
        )
        if not empty:
            return ""
        left = sum(n for _, n in self.excluded)
        if not left:
            return "no data: nothing to measure"
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.excluded)
        return f"no data: {left} left out ({reasons})"

    def value(self, *group: str) -> Any:
        """The value of one group (the total with no arguments).

        Raises:
            KeyError: no such group.
        """
        if not group:
            return self.total
        for key, value in self.rows:
            if key == group:
                return value
        raise KeyError(group)

    def to_rows(self) -> list[dict[str, object]]:
        """One dict per group (and one for the total, group ``*``): the group's dimensions, then
        the value's fields — ready for ``csv.DictWriter`` or a dataframe."""
        out = []
        for key, value in (*self.rows, (("*",) * len(self.group_by), self.total)):
            row: dict[str, object] = {"kpi": self.name}
            row.update(zip(self.group_by, key, strict=True))
            row.update(value.to_row())
            out.append(row)
        return out

    def to_dataframe(self, library: str = "pandas") -> Any:
        """The rows as a pandas or polars DataFrame (install ``potrack[dataframe]``).

        Raises:
            ImportError: the library is not installed (the message names the extra).
            ValueError: a library other than pandas or polars.
        """
        return to_dataframe(self.to_rows(), library)

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        """The result as a text table with numbers in ``locale``, then what was left out and the
        notes (the conventions that explain a figure), one line each."""
        rows = [{k: v for k, v in row.items() if k != "kpi"} for row in self.to_rows()]
        lines = [text_table(rows, locale, title=f"{self.name} — {self.definition}")]
        if self.excluded:
            left = ", ".join(
                f"{reason} {babel.numbers.format_decimal(n, locale=locale)}"
                for reason, n in self.excluded
            )
            lines.append(f"left out: {left}")
        lines.extend(f"{name}: {text}" for name, text in self.notes)
        return "\n".join(lines)


def to_dataframe(rows: Sequence[Mapping[str, object]], library: str = "pandas") -> Any:
    """Rows as a pandas or polars DataFrame; the core never imports either on its own.

    Decimals become floats there (dataframes have no exact decimal type in common use); keep the
    rows for exact work.

    Raises:
        ImportError: the library is not installed.
        ValueError: a library other than pandas or polars.
    """
    converted = [
        {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows
    ]
    if library not in ("pandas", "polars"):
        raise ValueError(f"library must be 'pandas' or 'polars', got {library!r}")
    try:
        module = importlib.import_module(library)
    except ImportError as err:
        raise ImportError(
            f"to_dataframe needs {library}: pip install 'potrack[dataframe]'"
        ) from err
    return module.DataFrame(converted)


def _cell(value: object, locale: str) -> str:
    if value is None:
        return "no data"
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel.numbers.format_decimal(value, format=pattern, locale=locale)
    if isinstance(value, int):
        return babel.numbers.format_decimal(value, locale=locale)
    return str(value)


def text_table(
    rows: Sequence[Mapping[str, object]], locale: str = DEFAULT_LOCALE, title: str = ""
) -> str:
    """Rows as an aligned text table, numbers formatted for ``locale`` (None shows *no data*).

    >>> print(text_table([{"supplier": "ACME", "percent": Decimal("85.5")}], "de_DE"))
    supplier | percent
    ---------+--------
    ACME     |    85,5
    """
    if not rows:
        return (title + "\n" if title else "") + "(no rows)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c), locale) for c in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(c), Decimal | int) or row.get(c) is None for row in rows)
        for c in columns
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]

    def fmt(values: Sequence[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [title] if title else []
    lines.append(fmt(columns))
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(fmt(line) for line in cells)
    return "\n".join(lines)


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

    def when(anchor: date | datetime) -> date | datetime:
        if tz is not None and isinstance(anchor, datetime):
            return anchor.astimezone(tz)
        return anchor

    def key(order: OrderFacts, anchor: date | datetime | None) -> tuple[str, ...]:
        return tuple(
            (period_of(when(anchor), period) if anchor is not None else "no date")
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


# -- delivery ---------------------------------------------------------------------------------------------


def _due(delivery: Delivery, basis: str) -> date | None:
    if basis == "promised":
        return delivery.promised or delivery.requested
    return delivery.requested


def _check_delivery_options(basis: str, weighting: str, early_days: int, late_days: int) -> None:
    problems = []
    if basis not in ("requested", "promised"):
        problems.append(Problem("basis", f"'requested' or 'promised', got {basis!r}"))
    if weighting not in ("line", "quantity", "date"):
        problems.append(Problem("weighting", f"'line', 'quantity' or 'date', got {weighting!r}"))
    if early_days < 0 or late_days < 0:
        problems.append(Problem("early_days/late_days", "windows are zero or more days"))
    if problems:
        raise ValidationError("on-time delivery", problems)


def on_time_delivery(
    orders: Iterable[OrderFacts],
    *,
    basis: str = "requested",
    early_days: int | None = None,
    late_days: int = 0,
    weighting: str = "line",
    group_by: Sequence[str] = (),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Deliveries on time ÷ deliveries, per supplier or any grouping.

    ``basis``: due on the requested date, or on the promised one (falling back to requested).
    The window is ``[due − early_days, due + late_days]``; ``early_days=None`` accepts any early
    delivery.  ``weighting="line"`` (ERPNext): a line is on time when it was *complete* within the
    window — a partial receipt is never on time.  ``weighting="quantity"`` (Odoo): the quantity
    received within the window ÷ the quantity ordered.  ``weighting="date"`` (on time by date
    only, SAP's delivery-date score): a line is on time when its *first* receipt, whatever the
    quantity, fell within the window; completeness is OTIF's business.  Lines without a due date,
    and orders without delivery data, are *no data* (excluded and counted); with nothing left the
    rate is None, never 0 %.  The period is the due date's.  Receipt days are calendar days where
    the goods arrived (see :func:`orders_from_records`' ``tz``).

    Example: 100 due on 10 March, 60 on 9 March and 40 on 12 March — line-based: late (complete
    on the 12th); quantity-weighted: 60 %; by date only: on time (first receipt on the 9th).

    Raises:
        ValidationError: an unknown basis, weighting, window, dimension or period.
    """
    _check_delivery_options(basis, weighting, early_days or 0, late_days)
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    late = timedelta(days=late_days)
    early = None if early_days is None else timedelta(days=early_days)
    for order in orders:
        if order.cancelled:
            skipped["cancelled"] += 1
            continue
        if not order.deliveries:
            skipped["no delivery data"] += 1
            continue
        for d in order.deliveries:
            due = _due(d, basis)
            if due is None:
                skipped["no due date"] += 1
                continue
            lo = None if early is None else due - early
            hi = due + late
            k = key(order, due)
            if weighting == "line":
                done = _completed_on(d)
                ok = done is not None and done <= hi and (lo is None or done >= lo)
                nums[k] += 1 if ok else 0
                dens[k] += 1
            elif weighting == "date":
                came = min((day for day, _ in d.receipts), default=None)
                ok = came is not None and came <= hi and (lo is None or came >= lo)
                nums[k] += 1 if ok else 0
                dens[k] += 1
            else:
                inside = sum(
                    (q for day, q in d.receipts if day <= hi and (lo is None or day >= lo)),
                    _ZERO,
                )
                nums[k] += min(inside, d.quantity)
                dens[k] += d.quantity
    return _rate_result(
        f"on-time delivery ({weighting}-based, {basis} date)",
        _window_text(early_days, late_days),
        dims,
        nums,
        dens,
        skipped,
    )


def _window_text(early_days: int | None, late_days: int) -> str:
    early = "any day early" if early_days is None else f"up to {early_days} days early"
    return f"delivered within the window ({early}, up to {late_days} days late) ÷ due"


def _completed_on(d: Delivery) -> date | None:
    """The day the line's received quantity reached the ordered quantity (None: never)."""
    total = _ZERO
    for day, quantity in sorted(d.receipts):
        total += quantity
        if total >= d.quantity:
            return day
    return None


def otif(
    orders: Iterable[OrderFacts],
    *,
    level: str = "line",
    basis: str = "requested",
    early_days: int | None = None,
    late_days: int = 0,
    in_full_tolerance: Decimal = _ZERO,
    group_by: Sequence[str] = (),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """On time *and* in full, per line or per order (``level``), on the same line.

    A line is OTIF when the quantity accepted within the window (a :class:`Delivery`'s
    receipts, rejected quantity already left out) reaches the ordered quantity less
    ``in_full_tolerance`` percent.

    Example: 100 ordered, 100 received on time of which 6 rejected — 94 accepted: OTIF with a
    10 % tolerance (94 ≥ 90), not with 5 % (94 < 95).  An order is OTIF when every line is.
    Orders without delivery data are *no data*.  The period is the (earliest) due date's.

    Raises:
        ValidationError: an unknown level, basis, window, dimension or period.
    """
    if level not in ("line", "order"):
        raise ValidationError("otif", [Problem("level", f"'line' or 'order', got {level!r}")])
    _check_delivery_options(basis, "line", early_days or 0, late_days)
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    keep = (_HUNDRED - in_full_tolerance) / _HUNDRED
    for order in orders:
        if order.cancelled:
            skipped["cancelled"] += 1
            continue
        if not order.deliveries:
            skipped["no delivery data"] += 1
            continue
        verdicts: list[tuple[date, bool]] = []
        for d in order.deliveries:
            due = _due(d, basis)
            if due is None:
                skipped["no due date"] += 1
                continue
            hi = due + timedelta(days=late_days)
            lo = None if early_days is None else due - timedelta(days=early_days)
            inside = sum(
                (q for day, q in d.receipts if day <= hi and (lo is None or day >= lo)), _ZERO
            )
            verdicts.append((due, inside >= d.quantity * keep))
        if not verdicts:
            continue
        if level == "line":
            for due, ok in verdicts:
                k = key(order, due)
                nums[k] += 1 if ok else 0
                dens[k] += 1
        else:
            k = key(order, min(due for due, _ in verdicts))
            nums[k] += 1 if all(ok for _, ok in verdicts) else 0
            dens[k] += 1
    return _rate_result(
        f"OTIF per {level} ({basis} date)",
        _window_text(early_days, late_days).replace("delivered", "delivered in full"),
        dims,
        nums,
        dens,
        skipped,
    )


def _rate_result(
    name: str,
    definition: str,
    dims: tuple[str, ...],
    nums: Mapping[tuple[str, ...], Decimal],
    dens: Mapping[tuple[str, ...], Decimal],
    skipped: Mapping[str, int],
) -> KpiResult:
    rows = tuple((k, Rate.of(nums[k], dens[k])) for k in sorted(dens))
    total = Rate.of(sum(nums.values(), _ZERO), sum(dens.values(), _ZERO))
    grouped = rows if dims else ()
    return KpiResult(name, definition, dims, grouped, total, _excluded(skipped))


# -- order accuracy -----------------------------------------------------------------------------------------

PERFECT_CRITERIA = ("no_revision", "no_mismatch", "no_rejection", "on_time_in_full")


def perfect_order_rate(
    orders: Iterable[OrderFacts],
    *,
    criteria: Sequence[str] = PERFECT_CRITERIA,
    basis: str = "requested",
    late_days: int = 0,
    group_by: Sequence[str] = (),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Orders that went right on every count ÷ orders (cancelled orders excluded).

    Criteria (all by default): ``no_revision`` (no change after the order was made),
    ``no_mismatch`` (every invoice matched on its first pass), ``no_rejection`` (nothing
    rejected at receipt) and ``on_time_in_full`` (every line complete by its due date + the late
    window).  An order is perfect only if every line is.  An order lacking the data for a criterion
    (an event log has no quantities, a PO never matched) is *no data* for the rate — excluded and
    counted — rather than guessed.  The period is the PO's creation.

    Raises:
        ValidationError: an unknown criterion, dimension or period.
    """
    unknown = [c for c in criteria if c not in PERFECT_CRITERIA]
    if unknown or not criteria:
        raise ValidationError(
            "perfect_order_rate",
            [
                Problem(
                    "criteria", f"choose from {', '.join(PERFECT_CRITERIA)}; got {list(criteria)}"
                )
            ],
        )
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.cancelled:
            skipped["cancelled"] += 1
            continue
        perfect = True
        missing = ""
        for criterion in criteria:
            if criterion == "no_revision":
                perfect = perfect and not order.counts[CHANGE]
            elif criterion == "no_mismatch":
                if order.mismatched is None:
                    missing = "no match data"
                    break
                perfect = perfect and not order.mismatched
            elif criterion == "no_rejection":
                if not order.deliveries and not order.counts[GOODS_RECEIPT]:
                    missing = "no receipt data"
                    break
                perfect = perfect and not any(d.rejected for d in order.deliveries)
            else:
                if not order.deliveries:
                    missing = "no delivery data"
                    break
                for d in order.deliveries:
                    due = _due(d, basis)
                    done = _completed_on(d)
                    if due is None:
                        missing = "no due date"
                        break
                    if done is None or done > due + timedelta(days=late_days):
                        perfect = False
                if missing:
                    break
        if missing:
            skipped[missing] += 1
            continue
        k = key(order, order.first[PO_CREATED])
        nums[k] += 1 if perfect else 0
        dens[k] += 1
    return _rate_result(
        "perfect-order rate",
        "orders with " + ", ".join(c.replace("_", " ") for c in criteria) + " ÷ orders",
        dims,
        nums,
        dens,
        skipped,
    )


def _received(d: Delivery) -> Decimal:
    """The quantity received on a line: accepted plus rejected."""
    return sum((q for _, q in d.receipts), _ZERO) + d.rejected


def rejection_rate(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = (),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Quantity rejected at receipt ÷ quantity received (accepted + rejected), over every line.

    Orders without delivery data and orders with nothing received yet are *no data* (excluded
    and counted); cancelled orders are left out.  The period is the PO's creation.

    Example: 100 received with 6 rejected on one line, 50 received and none rejected on another,
    100 on a second order — 6 ÷ 250 = 2.40 %.

    Raises:
        ValidationError: an unknown dimension or period.
    """
    return _accuracy(orders, group_by, period, tz, per="quantity")


def order_accuracy(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = (),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Orders received without any rejection ÷ orders received (anything received on any line).

    Orders without delivery data and orders with nothing received yet are *no data* (excluded
    and counted); cancelled orders are left out.  The period is the PO's creation.

    Example: one order with 6 of 100 rejected, one received in full without rejection, one not
    received yet — 1 ÷ 2 = 50 %, one left out as ``nothing received``.

    Raises:
        ValidationError: an unknown dimension or period.
    """
    return _accuracy(orders, group_by, period, tz, per="order")


def _accuracy(
    orders: Iterable[OrderFacts],
    group_by: Sequence[str],
    period: str,
    tz: tzinfo | None,
    per: str,
) -> KpiResult:
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    for order in orders:
        if order.cancelled:
            skipped["cancelled"] += 1
            continue
        if not order.deliveries:
            skipped["no delivery data"] += 1
            continue
        received = sum((_received(d) for d in order.deliveries), _ZERO)
        if not received:
            skipped["nothing received"] += 1
            continue
        rejected = sum((d.rejected for d in order.deliveries), _ZERO)
        k = key(order, order.first[PO_CREATED])
        if per == "quantity":
            nums[k] += rejected
            dens[k] += received
        else:
            nums[k] += 0 if rejected else 1
            dens[k] += 1
    if per == "quantity":
        name, definition = "rejection rate", "quantity rejected ÷ quantity received"
    else:
        name, definition = "order accuracy", "orders received without rejection ÷ orders received"
    return _rate_result(name, definition, dims, nums, dens, skipped)


# -- invoices ---------------------------------------------------------------------------------------------


def invoice_match_rate(
    results: Iterable[Any],
    *,
    per: str = "invoice",
    group_by: Sequence[str] = (),
    suppliers: Mapping[str, str] | None = None,
) -> KpiResult:
    """Invoices (or lines, ``per="line"``) matched on their *first* evaluation ÷ all, from
    :class:`~potrack.matching.MatchResult` s in the order they were produced.

    Later results for the same invoice (a release when goods arrive, a re-evaluation after an
    override) do not change its first pass; the *touchless* rate counts invoices that ended
    matched without any override (automatic releases included) and is in ``notes``; the exceptions
    by reason (blocking finding codes at first evaluation) are in ``notes`` too.  ``group_by``
    may be ``("supplier",)``, with ``suppliers`` mapping invoice ids to suppliers.

    Raises:
        ValidationError: ``per`` is neither ``invoice`` nor ``line``, or a grouping other than
            supplier.
    """
    if per not in ("invoice", "line") or any(g != "supplier" for g in group_by):
        raise ValidationError(
            "invoice_match_rate",
            [
                Problem(
                    "per/group_by",
                    f"per 'invoice' or 'line', group by supplier; got {per!r}, {list(group_by)!r}",
                )
            ],
        )
    dims = tuple(group_by)
    firsts: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for result in results:
        if result.kind.value != "invoice":
            continue
        firsts.setdefault(result.invoice_id, result)
        last[result.invoice_id] = result
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    reasons: dict[str, int] = defaultdict(int)
    touchless = 0
    for invoice_id, first in firsts.items():
        k = ((suppliers or {}).get(invoice_id, "(none)"),) if dims else ()
        if per == "invoice":
            nums[k] += 1 if first.first_pass else 0
            dens[k] += 1
        else:
            for line in first.lines:
                nums[k] += 1 if line.status.value in ("matched", "matched_within_tolerance") else 0
                dens[k] += 1
        for code in sorted({f.code.value for f in first.blocking}):
            reasons[code] += 1
        final = last[invoice_id]
        if final.first_pass:
            touchless += 1
    result = _rate_result(
        f"invoice match rate (first pass, per {per})",
        f"{per}s matched exactly or within tolerance when first matched ÷ {per}s",
        dims,
        nums,
        dens,
        {},
    )
    notes = (
        ("touchless rate %", str(Rate.of(touchless, len(firsts)).percent)),
        *((f"exceptions: {code}", str(n)) for code, n in _excluded(reasons)),
    )
    return attrs.evolve(result, notes=notes)


def _matched_rate_from_orders(
    orders: Iterable[OrderFacts], group_by: Sequence[str], period: str, tz: tzinfo | None = None
) -> KpiResult:
    """The first-pass match rate from order facts (event logs): orders with invoices whose
    invoices all passed ÷ orders with invoices; exceptions by reason in ``notes``."""
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    reasons: dict[str, int] = defaultdict(int)
    for order in orders:
        if not order.counts[INVOICE]:
            skipped["no invoice"] += 1
            continue
        if order.mismatched is None:
            skipped["no match data"] += 1
            continue
        k = key(order, order.first[INVOICE])
        nums[k] += 0 if order.mismatched else 1
        dens[k] += 1
        for reason in order.exceptions:
            reasons[reason] += 1
    result = _rate_result(
        "invoice match rate (first pass, per order)",
        "orders whose invoices all passed without an exception ÷ orders invoiced",
        dims,
        nums,
        dens,
        skipped,
    )
    return attrs.evolve(
        result, notes=tuple((f"exceptions: {r}", str(n)) for r, n in _excluded(reasons))
    )


def invoice_price_variance(
    invoices: Iterable[Invoice], purchase_orders: Mapping[str, PurchaseOrder]
) -> KpiResult:
    """(invoice price − PO price) ÷ PO price, per supplier, weighted by the invoiced quantity.

    **Sign convention**: positive means the supplier billed *more* than agreed (unfavourable);
    amounts are ``(invoice − PO price) × quantity`` in the PO currency, per unit after price
    units.  Credit memos and invoices without a PO or in another currency are left out (counted).

    Example: PO price 10.00, 100 billed at 10.20 — variance +20.00, +2.00 %.
    """
    amounts: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    bases: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    currency = ""
    for inv in invoices:
        if inv.kind.value != "invoice":
            skipped["credit memo"] += 1
            continue
        po = purchase_orders.get(inv.po_id) if inv.po_id else None
        if po is None:
            skipped["no PO"] += 1
            continue
        if inv.currency != po.currency or (currency and po.currency != currency):
            skipped["other currency"] += 1
            continue
        currency = po.currency
        for ln in inv.lines:
            pl = po.line(ln.po_line_no) if ln.po_line_no is not None else None
            if pl is None:
                skipped["line not on the PO"] += 1
                continue
            agreed = pl.unit_price.amount / pl.price_unit
            billed = ln.unit_price.amount / ln.price_unit
            amounts[(po.supplier_id,)] += (billed - agreed) * ln.quantity
            bases[(po.supplier_id,)] += agreed * ln.quantity
    return _variance_result(
        "invoice price variance",
        "(invoice − PO price) × quantity; share = ÷ PO value billed; positive = billed above the PO",
        ("supplier",),
        amounts,
        bases,
        currency,
        skipped,
    )


def purchase_price_variance(
    purchase_orders: Iterable[PurchaseOrder],
    standard_prices: Mapping[str, Money] | Mapping[str | tuple[str, str], Money],
    *,
    group_by: Sequence[str] = ("supplier",),
) -> KpiResult:
    """(PO price − standard price) × quantity ordered, per supplier (or item category).

    **Sign convention**: positive means buying *above* standard (unfavourable).  Lines without
    an item or a standard price, and lines in another currency than the standard, are left out.

    ``standard_prices`` maps an item to its standard price, and may map ``(item, supplier)`` to
    a supplier's own standard (AdventureWorks' ProductVendor, SAP's purchasing info record): a
    line takes its supplier's standard when there is one, else the item's.

    Example: standard 45.00, ordered 100 at 45.5805 — PPV +58.05, +1.29 %.  With a standard of
    9.00 for the item but 10.50 for supplier ACME, 100 bought from ACME at 10.00: −50.00.

    Raises:
        ValidationError: a grouping other than supplier or category.
    """
    if any(g not in ("supplier", "category") for g in group_by):
        raise ValidationError(
            "purchase_price_variance",
            [Problem("group_by", f"supplier and/or category, got {list(group_by)!r}")],
        )
    dims = tuple(group_by)
    prices: Mapping[Any, Money] = standard_prices
    amounts: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    bases: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    skipped: dict[str, int] = defaultdict(int)
    currency = ""
    for po in purchase_orders:
        for ln in po.lines:
            standard = (
                prices.get((ln.item, po.supplier_id)) or prices.get(ln.item) if ln.item else None
            )
            if standard is None:
                skipped["no standard price"] += 1
                continue
            if standard.currency.code != po.currency:
                skipped["other currency"] += 1
                continue
            currency = po.currency
            k = tuple(po.supplier_id if g == "supplier" else ln.category for g in dims)
            paid = ln.unit_price.amount / ln.price_unit
            amounts[k] += (paid - standard.amount) * ln.quantity
            bases[k] += standard.amount * ln.quantity
    return _variance_result(
        "purchase price variance",
        "(PO price − standard) × quantity; share = ÷ standard value; positive = above standard",
        dims,
        amounts,
        bases,
        currency,
        skipped,
    )


def _variance_result(
    name: str,
    definition: str,
    dims: tuple[str, ...],
    amounts: Mapping[tuple[str, ...], Decimal],
    bases: Mapping[tuple[str, ...], Decimal],
    currency: str,
    skipped: Mapping[str, int],
) -> KpiResult:
    """A price variance per group: the amount, and its share of the group's base value."""
    rows = tuple(
        (k, SpendShare(amounts[k].quantize(_CENT), currency, _pct(amounts[k], bases[k])))
        for k in sorted(bases)
    )
    total_amount = sum(amounts.values(), _ZERO)
    total = SpendShare(
        total_amount.quantize(_CENT), currency, _pct(total_amount, sum(bases.values(), _ZERO))
    )
    return KpiResult(name, definition, dims, rows, total, _excluded(skipped))


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * _HUNDRED / whole).quantize(_CENT, ROUND_HALF_EVEN)


# -- spend ------------------------------------------------------------------------------------------------


def _one_currency(orders: Iterable[OrderFacts]) -> Iterable[tuple[OrderFacts, str]]:
    """Orders with their currency, refusing a mix (convert first: amounts are never mixed)."""
    seen = ""
    for order in orders:
        if order.currency and seen and order.currency != seen:
            raise ValidationError(
                "spend",
                [
                    Problem(
                        order.id,
                        f"currency {order.currency} among {seen} orders: convert the facts to one "
                        "currency first (amounts in different currencies are never added)",
                    )
                ],
            )
        seen = seen or order.currency
        yield order, seen


def _shares(
    name: str,
    definition: str,
    dims: tuple[str, ...],
    amounts: Mapping[tuple[str, ...], Decimal],
    counts: Mapping[tuple[str, ...], int],
    currency: str,
    skipped: Mapping[str, int],
) -> KpiResult:
    whole = sum(amounts.values(), _ZERO)
    ordered = sorted(amounts, key=lambda k: (-amounts[k], k))
    rows = tuple(
        (k, SpendShare(amounts[k].quantize(_CENT), currency, _pct(amounts[k], whole), counts[k]))
        for k in ordered
    )
    total = SpendShare(
        whole.quantize(_CENT), currency, _HUNDRED if whole else None, sum(counts.values())
    )
    return KpiResult(name, definition, dims, rows, total, _excluded(skipped))


def spend(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = ("supplier",),
    period: str = "month",
    basis: str = "invoiced",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Spend per group, largest first, with each group's share.

    ``basis="invoiced"`` (default) counts what was invoiced net of credit memos; ``"ordered"``
    the order value.  Cancelled orders count for what was invoiced on them.  The period is the
    first invoice's (``invoiced``) or the PO's creation (``ordered``).

    Raises:
        ValidationError: mixed currencies, an unknown basis, dimension or period.
    """
    if basis not in ("invoiced", "ordered"):
        raise ValidationError(
            "spend", [Problem("basis", f"'invoiced' or 'ordered', got {basis!r}")]
        )
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    amounts: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    currency = ""
    for order, seen in _one_currency(orders):
        currency = seen
        value = order.invoiced if basis == "invoiced" else order.value
        if basis == "ordered" and order.cancelled:
            continue
        if not value:
            continue
        anchor = order.first[INVOICE] if basis == "invoiced" else order.first[PO_CREATED]
        k = key(order, anchor)
        amounts[k] += value
        counts[k] += 1
    return _shares(
        f"spend by {', '.join(dims) or 'all'} ({basis})",
        f"{basis} value per group; share of the total",
        dims,
        amounts,
        counts,
        currency,
        {},
    )


def committed_spend(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = ("supplier",),
    period: str = "month",
    tz: tzinfo | None = None,
) -> KpiResult:
    """Open commitments: order value not yet invoiced, for orders neither cancelled nor closed.

    Per order ``max(0, value − invoiced)`` — an over-invoiced order commits nothing more.  Group
    by ``budget``, ``department``, ``supplier``...; the period is the PO's creation.

    Raises:
        ValidationError: mixed currencies, an unknown dimension or period.
    """
    dims = _check_grouping(group_by, period)
    key = _keyer(dims, period, tz)
    amounts: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    skipped: dict[str, int] = defaultdict(int)
    currency = ""
    for order, seen in _one_currency(orders):
        currency = seen
        if order.cancelled or order.counts[CLOSED]:
            skipped["cancelled or closed"] += 1
            continue
        open_value = order.value - order.invoiced
        if open_value <= 0:
            skipped["fully invoiced"] += 1
            continue
        k = key(order, order.first[PO_CREATED])
        amounts[k] += open_value
        counts[k] += 1
    return _shares(
        f"committed spend by {', '.join(dims) or 'all'}",
        "order value not yet invoiced, open orders",
        dims,
        amounts,
        counts,
        currency,
        skipped,
    )


def maverick_share(orders: Iterable[OrderFacts], *, group_by: Sequence[str] = ()) -> KpiResult:
    """Spend on invoices without a PO ÷ all invoiced spend (facts with ``has_po=False`` are
    non-PO invoices).

    Raises:
        ValidationError: mixed currencies, an unknown dimension.
    """
    dims = _check_grouping(group_by, "month")
    key = _keyer(dims, "month")
    nums: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    dens: dict[tuple[str, ...], Decimal] = defaultdict(Decimal)
    for order, _ in _one_currency(orders):
        if not order.invoiced:
            continue
        k = key(order, order.first[INVOICE])
        dens[k] += order.invoiced
        if not order.has_po:
            nums[k] += order.invoiced
    return _rate_result(
        "maverick (non-PO) spend share",
        "invoiced without a PO ÷ all invoiced",
        dims,
        nums,
        dens,
        {},
    )


def concentration(spend_result: KpiResult, top: int = 5) -> KpiResult:
    """Supplier concentration from a :func:`spend` result grouped by supplier: the top ``top``
    suppliers' share and the Herfindahl–Hirschman index (sum of squared percent shares, 0 to
    10,000; above 2,500 is usually called highly concentrated).

    Example: shares 50 %, 30 %, 20 % — HHI 2,500 + 900 + 400 = 3,800; top-2 share 80 %.

    Spend without a supplier (the ``(none)`` group) is not a supplier: it is left out of the
    shares and counted under ``no supplier``; with no supplier spend at all the HHI is
    ``no data`` and the top share None — never 10,000 and "1 supplier".

    Raises:
        ValidationError: the spend result is not grouped by supplier alone, or ``top`` < 1.
    """
    if spend_result.group_by != ("supplier",) or top < 1:
        raise ValidationError(
            "concentration",
            [Problem("spend_result", "a spend result grouped by supplier alone, and top ≥ 1")],
        )
    values: list[SpendShare] = []
    unattributed = 0
    for key, v in spend_result.rows:
        if not isinstance(v, SpendShare):
            continue
        if key == ("(none)",):
            unattributed += v.count
        else:
            values.append(v)
    whole = sum((v.amount for v in values), _ZERO)
    shares = [v.amount * _HUNDRED / whole for v in values] if whole else []
    hhi = sum((s * s for s in shares), _ZERO).quantize(_CENT) if shares else None
    top_share = sum(shares[:top], _ZERO).quantize(_CENT) if shares else None
    rows = (
        (
            ("top",),
            SpendShare(
                sum((v.amount for v in values[:top]), _ZERO),
                spend_result.total.currency,
                top_share,
                min(top, len(shares)),
            ),
        ),
    )
    return KpiResult(
        f"supplier concentration (top {top})",
        "top-N share of spend; HHI = Σ (percent share)²",
        ("measure",),
        rows,
        SpendShare(whole, spend_result.total.currency, _HUNDRED if whole else None, len(shares)),
        excluded=(("no supplier", unattributed),) if unattributed else (),
        notes=(("HHI", "no data" if hhi is None else f"{hhi:f}"), ("suppliers", str(len(shares)))),
    )


# -- vendor scorecard -------------------------------------------------------------------------------------

DEFAULT_BANDS = (
    (Decimal(0), "Very Poor"),
    (Decimal(30), "Poor"),
    (Decimal(50), "Average"),
    (Decimal(80), "Excellent"),
)


@attrs.frozen
class SupplierScore:
    """One supplier's score for one period, with the evidence behind it.

    ``score`` is None (standing ``no data``) when no weighted criterion had a value; ``missing``
    names the weighted criteria without a value (scored per the card's ``missing`` rule); ``n``
    is the smallest sample size behind the criteria given as :class:`Rate` s (None: unknown) —
    a 100 % on-time rate over 2 deliveries is weak evidence, and the card says so.
    """

    supplier: str
    period: str
    score: Decimal | None
    standing: str
    n: int | None = None
    missing: tuple[str, ...] = ()


@attrs.frozen
class ScorecardResult:
    """Each supplier's weighted score (0–100, two decimals) and standing, per period."""

    scores: tuple[SupplierScore, ...]

    @property
    def rows(self) -> tuple[tuple[str, str, Decimal | None, str], ...]:
        """(supplier, period, score, standing) — the scores without their evidence."""
        return tuple((r.supplier, r.period, r.score, r.standing) for r in self.scores)

    def to_rows(self) -> list[dict[str, object]]:
        return [
            {
                "supplier": r.supplier,
                "period": r.period,
                "score": r.score,
                "standing": r.standing,
                "n": r.n,
                "missing": ", ".join(r.missing),
            }
            for r in self.scores
        ]

    def trend(self, supplier: str) -> tuple[tuple[str, Decimal | None], ...]:
        """A supplier's score per period, oldest first."""
        return tuple((r.period, r.score) for r in self.scores if r.supplier == supplier)

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        return text_table(self.to_rows(), locale, title="vendor scorecard")


Criterion = Decimal | Rate | None
"""A criterion's value: a score from 0 to 100, a :class:`Rate` (its percent, and its
denominator as the sample size), or None (no data)."""

SCORECARD_MISSING = ("zero", "reweight")


@attrs.frozen
class Scorecard:
    """Weighted criteria mapped to standings.

    ``weights`` per criterion must sum to exactly 100; ``bands`` are (lowest score, standing),
    ascending from 0.  Criterion values are scores from 0 to 100 (an on-time rate, a match rate,
    a quality score the host computes), :class:`Rate` s or None.  A supplier lacking a criterion
    (absent, None, or a rate with no data) has it listed in ``missing`` and, by ``missing=``,
    scores 0 on it (``zero``, the default: a supplier earns its score) or has the other weights
    scaled up to 100 (``reweight``).  A supplier with no criterion at all has no score.

    >>> card = Scorecard({"on_time": Decimal(60), "quality": Decimal(40)})
    >>> card.score({"ACME": {"on_time": Decimal(90), "quality": Decimal(70)}}).rows
    (('ACME', '', Decimal('82.00'), 'Excellent'),)
    >>> card.score({"ACME": {"on_time": Decimal(90)}}).scores[0].missing
    ('quality',)

    Example (``reweight``): on-time 90 with weight 60, quality missing — 90 × 60 ÷ 60 = 90.00;
    with ``zero`` it is 90 × 60 ÷ 100 = 54.00.

    Raises:
        ValidationError: weights not summing to 100, a negative weight, bands not starting at 0
            or not ascending.
    """

    weights: Mapping[str, Decimal]
    bands: tuple[tuple[Decimal, str], ...] = DEFAULT_BANDS

    def __attrs_post_init__(self) -> None:
        problems = []
        total = sum(self.weights.values(), _ZERO)
        if total != _HUNDRED:
            problems.append(Problem("weights", f"must sum to 100, they sum to {total}"))
        problems += [
            Problem(f"weights.{k}", f"must not be negative, got {w}")
            for k, w in self.weights.items()
            if w < 0
        ]
        lows = [low for low, _ in self.bands]
        if not lows or lows[0] != 0 or lows != sorted(set(lows)):
            problems.append(Problem("bands", "must start at 0 and ascend strictly"))
        if problems:
            raise ValidationError("Scorecard", problems)

    def standing(self, score: Decimal | None) -> str:
        if score is None:
            return "no data"
        found = self.bands[0][1]
        for low, name in self.bands:
            if score >= low:
                found = name
        return found

    def score(
        self,
        values: Mapping[str, Mapping[str, Criterion]],
        period: str = "",
        *,
        missing: str = "zero",
    ) -> ScorecardResult:
        """Scores for one period: ``values`` maps supplier → criterion → 0–100, Rate or None.

        Raises:
            ValidationError: a value outside 0–100, a criterion without a weight, an unknown
                ``missing`` rule.
        """
        problems = []
        if missing not in SCORECARD_MISSING:
            problems.append(Problem("missing", f"'zero' or 'reweight', got {missing!r}"))
        rows = []
        for supplier in sorted(values):
            criteria = values[supplier]
            given: dict[str, Decimal] = {}
            sizes: list[int] = []
            for name, raw in criteria.items():
                value = raw.percent if isinstance(raw, Rate) else raw
                if isinstance(raw, Rate):
                    sizes.append(int(raw.denominator))
                if name not in self.weights:
                    problems.append(Problem(f"{supplier}.{name}", "criterion has no weight"))
                elif value is not None and not 0 <= value <= 100:
                    problems.append(Problem(f"{supplier}.{name}", f"{value} is outside 0–100"))
                elif value is not None:
                    given[name] = value
            absent = tuple(name for name in self.weights if name not in given)
            weight = sum((w for name, w in self.weights.items() if name in given), _ZERO)
            score: Decimal | None = None
            if given and weight:
                points = sum((given[name] * self.weights[name] for name in given), _ZERO)
                scale = weight if missing == "reweight" else _HUNDRED
                score = (points / scale).quantize(_CENT, ROUND_HALF_EVEN)
            rows.append(
                SupplierScore(
                    supplier,
                    period,
                    score,
                    self.standing(score),
                    min(sizes) if sizes else None,
                    absent,
                )
            )
        if problems:
            raise ValidationError("Scorecard.score", problems)
        return ScorecardResult(tuple(rows))

    def over_periods(
        self,
        values: Mapping[str, Mapping[str, Mapping[str, Criterion]]],
        *,
        missing: str = "zero",
    ) -> ScorecardResult:
        """Scores per period (``values``: period → supplier → criterion → value), for trends."""
        rows: list[SupplierScore] = []
        for period in sorted(values):
            rows.extend(self.score(values[period], period, missing=missing).scores)
        rows.sort(key=lambda r: (r.supplier, r.period))
        return ScorecardResult(tuple(rows))


# -- comparison -------------------------------------------------------------------------------------------


@attrs.frozen
class Comparison:
    """A KPI before and after (the article's baseline): per group, the headline number of each
    and the change — percentage points for rates, the same unit for medians and amounts."""

    name: str
    measure: str
    group_by: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], Decimal | None, Decimal | None, Decimal | None], ...]

    def to_rows(self) -> list[dict[str, object]]:
        out = []
        for key, before, after, change in self.rows:
            row: dict[str, object] = {"kpi": self.name}
            row.update(zip(self.group_by, key, strict=True))
            row.update(
                {f"{self.measure} before": before, f"{self.measure} after": after, "change": change}
            )
            out.append(row)
        return out

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        return text_table(self.to_rows(), locale, title=f"{self.name}: before → after")


def _headline(value: Any) -> tuple[str, Decimal | None]:
    if isinstance(value, Summary):
        return "median", value.median
    if isinstance(value, Rate):
        return "percent", value.percent
    return "amount", value.amount


def compare(before: KpiResult, after: KpiResult) -> Comparison:
    """Two results of the same KPI side by side, per group and overall (``*``).

    Raises:
        ValidationError: the results are of different KPIs or groupings.
    """
    if before.name != after.name or before.group_by != after.group_by:
        raise ValidationError(
            "compare",
            [
                Problem(
                    "results",
                    f"{before.name!r} by {before.group_by} vs {after.name!r} by {after.group_by}",
                )
            ],
        )
    a = dict(before.rows)
    b = dict(after.rows)
    measure, _ = _headline(before.total)
    rows = []
    for key in sorted(set(a) | set(b)):
        x = _headline(a[key])[1] if key in a else None
        y = _headline(b[key])[1] if key in b else None
        rows.append((key, x, y, None if x is None or y is None else y - x))
    x, y = _headline(before.total)[1], _headline(after.total)[1]
    rows.append((("*",) * len(before.group_by), x, y, None if x is None or y is None else y - x))
    return Comparison(before.name, measure, before.group_by, tuple(rows))


# -- the standard set -------------------------------------------------------------------------------------


def standard_kpis(
    orders: Iterable[OrderFacts],
    *,
    group_by: Sequence[str] = (),
    period: str = "month",
    negative: str = "exclude",
    tz: tzinfo | None = None,
) -> dict[str, KpiResult]:
    """The standard KPI set over order facts, in one pass over the input (the facts are kept in
    memory once, as a list, and each KPI walks that list): the cycle times, the perfect-order
    and on-time rates, OTIF, the first-pass match rate, spend and its concentration, committed
    spend.  ``negative`` is the cycle times' rule for ends before starts, ``tz`` the zone of
    the reporting periods (see :func:`cycle_times`).

    Raises:
        ValidationError: mixed currencies, an unknown dimension, period or ``negative`` rule.
    """
    facts = orders if isinstance(orders, list) else list(orders)
    g: dict[str, Any] = {"group_by": group_by, "period": period, "tz": tz}
    c: dict[str, Any] = {**g, "negative": negative}
    out = {
        "requisition → PO": cycle_times(facts, REQUISITION, PO_CREATED, **c),
        "PO → first receipt": cycle_times(facts, PO_CREATED, FIRST_RECEIPT, **c),
        "PO → last receipt": cycle_times(facts, PO_CREATED, LAST_RECEIPT, **c),
        "PO → closed": cycle_times(facts, PO_CREATED, CLOSED, **c),
        "procure to pay": procure_to_pay(facts, **c),
        "perfect-order rate": perfect_order_rate(facts, **g),
        "on-time delivery": on_time_delivery(facts, **g),
        "OTIF": otif(facts, **g),
        "invoice match rate": _matched_rate_from_orders(facts, group_by, period, tz),
        "spend by supplier": spend(facts, group_by=("supplier",), period=period, tz=tz),
        "spend by category": spend(facts, group_by=("category",), period=period, tz=tz),
        "committed spend": committed_spend(facts, group_by=("supplier",), period=period, tz=tz),
    }
    out["supplier concentration"] = concentration(out["spend by supplier"])
    return out


# -- from potrack's own records ---------------------------------------------------------------------------

_RECORD_MILESTONES = {
    "create": PO_CREATED,
    "issue": ISSUED,
    "acknowledge": Milestone.ACKNOWLEDGED,
    "receive": GOODS_RECEIPT,
    "invoice": INVOICE,
    "credit_memo": INVOICE_CANCELLED,
    "pay": PAYMENT,
    "accept_change": CHANGE,
    "revise": CHANGE,
    "cancel": CANCELLED,
}


def orders_from_records(
    purchase_orders: Iterable[PurchaseOrder],
    records: Iterable[Any],
    receipts: Iterable[GoodsReceipt] = (),
    match_results: Iterable[Any] = (),
    requisitions: Mapping[str, datetime] | None = None,
    *,
    tz: tzinfo | None = None,
) -> list[OrderFacts]:
    """Order facts from potrack's records: the POs (their current state), their transition
    records (milestones), their receipts (deliveries per line) and match results (first-pass
    mismatches).  ``requisitions`` maps requisition ids to their creation time.

    Milestones: ``create`` → PO created (else the PO's ``created_at``); the record moving the PO
    to ``approved`` → approved; ``issue``, ``acknowledge``, ``receive``, ``invoice``,
    ``credit_memo``, ``pay``; accepted changes and revisions → change; ``cancel``; the record
    moving the PO to ``closed``.  Receipts given for a PO are its goods receipts (one per
    receipt, at its ``received_at``) whether or not the PO has a ``receive`` record — documents
    imported from another system have no lifecycle history, and the cycle times and on-time
    rates then read the same receipts.

    Time zone: a receipt's day (for due dates) is its calendar day in ``tz`` — a site's or a
    supplier's zone — or, with None, in the receipt's own offset (the local day where it was
    recorded: 20:00 −05:00 on 10 March is 10 March).  KPIs take the same ``tz`` for their
    reporting periods: pass the same zone to both.

    Raises:
        ValidationError: a naive requisition time (naive and aware times cannot be compared).
    """
    naive = [
        Problem(f"requisitions.{r}", f"naive datetime {t.isoformat()}: give it a time zone")
        for r, t in (requisitions or {}).items()
        if t.tzinfo is None or t.utcoffset() is None
    ]
    if naive:
        raise ValidationError("orders_from_records", naive)
    times: dict[str, dict[int, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.aggregate != "purchase_order":
            continue
        found = times[record.aggregate_id]
        milestone = _RECORD_MILESTONES.get(record.event_name)
        if milestone is not None:
            found[milestone].append(record.at)
        if (
            record.to_state == POState.APPROVED.value
            and record.from_state != POState.APPROVED.value
        ):
            found[APPROVED].append(record.at)
        if record.to_state == POState.CLOSED.value and record.from_state != POState.CLOSED.value:
            found[CLOSED].append(record.at)
    by_po: dict[str, list[GoodsReceipt]] = defaultdict(list)
    for receipt in receipts:
        by_po[receipt.po_id].append(receipt)
    first_results: dict[str, Any] = {}
    for result in match_results:
        first_results.setdefault(result.invoice_id, result)
    mismatched: dict[str, bool] = {}
    exceptions: dict[str, set[str]] = defaultdict(set)
    for result in first_results.values():
        if result.po_id is None:
            continue
        bad = not result.first_pass
        mismatched[result.po_id] = mismatched.get(result.po_id, False) or bad
        exceptions[result.po_id].update(f.code.value for f in result.blocking)
    out = []
    for po in purchase_orders:
        events = times.get(po.id, {})
        milestones: dict[Milestone, list[datetime]] = {Milestone(k): v for k, v in events.items()}
        if requisitions:
            made = [requisitions[r] for r in po.requisitions if r in requisitions]
            if made:
                milestones[REQUISITION] = made
        milestones.setdefault(PO_CREATED, [po.created_at])
        received = by_po.get(po.id, [])
        if received:
            milestones[GOODS_RECEIPT] = [r.received_at for r in received]
        deliveries = _deliveries(po, received, tz)
        invoiced = sum((p.invoiced_amount - p.credited_amount for p in po.progress), _ZERO)
        out.append(
            OrderFacts.build(
                po.id,
                events=milestones,
                supplier=po.supplier_id,
                category=po.lines[0].category,
                department=po.department or po.lines[0].department or "",
                company=po.company or "",
                currency=po.currency,
                value=po.amount.amount,
                invoiced=invoiced,
                budget=po.budget or po.lines[0].budget or "",
                match_level=po.match_level,
                mismatched=mismatched.get(po.id),
                exceptions=tuple(sorted(exceptions.get(po.id, ()))),
                deliveries=deliveries,
            )
        )
    return out


def _deliveries(
    po: PurchaseOrder, receipts: Sequence[GoodsReceipt], tz: tzinfo | None
) -> tuple[Delivery, ...]:
    got: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    rejected: dict[int, Decimal] = defaultdict(Decimal)
    for receipt in sorted(receipts, key=lambda r: r.received_at):
        moment = receipt.received_at
        day = (moment if tz is None else moment.astimezone(tz)).date()
        for rl in receipt.lines:
            got[rl.line_no].append((day, rl.received - rl.rejected))
            rejected[rl.line_no] += rl.rejected
    return tuple(
        Delivery(
            order_id=po.id,
            line_no=ln.line_no,
            quantity=ln.quantity,
            requested=ln.requested_date,
            promised=ln.promised_date,
            receipts=tuple(got.get(ln.line_no, ())),
            rejected=rejected.get(ln.line_no, _ZERO),
        )
        for ln in po.lines
    )
