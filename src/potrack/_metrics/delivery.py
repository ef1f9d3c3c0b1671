"""Delivery and order-accuracy KPIs: on-time, OTIF, perfect orders, rejections."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta, tzinfo
from decimal import Decimal

from potrack._metrics.facts import (
    _HUNDRED,
    _ZERO,
    CHANGE,
    GOODS_RECEIPT,
    PO_CREATED,
    Delivery,
    OrderFacts,
)
from potrack._metrics.grouping import (
    _check_grouping,
    _excluded,
    _keyer,
)
from potrack._metrics.results import (
    KpiResult,
    Rate,
)
from potrack.exceptions import Problem, ValidationError

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
