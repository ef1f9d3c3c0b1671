"""Invoice, price-variance and spend KPIs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
from moneyed import Money

from potrack._metrics.delivery import (
    _rate_result,
)
from potrack._metrics.facts import (
    _CENT,
    _HUNDRED,
    _ZERO,
    CLOSED,
    INVOICE,
    PO_CREATED,
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
    SpendShare,
)
from potrack.exceptions import Problem, ValidationError
from potrack.records import (
    Invoice,
    PurchaseOrder,
)

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
        ("touchless rate %", _note(Rate.of(touchless, len(firsts)).percent)),
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
    lines: dict[tuple[str, ...], int] = defaultdict(int)
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
            lines[(po.supplier_id,)] += 1
    return _variance_result(
        "invoice price variance",
        "(invoice − PO price) × quantity; share = ÷ PO value billed; positive = billed above the PO",
        ("supplier",),
        amounts,
        bases,
        lines,
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
    lines: dict[tuple[str, ...], int] = defaultdict(int)
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
            lines[k] += 1
    return _variance_result(
        "purchase price variance",
        "(PO price − standard) × quantity; share = ÷ standard value; positive = above standard",
        dims,
        amounts,
        bases,
        lines,
        currency,
        skipped,
    )


def _variance_result(
    name: str,
    definition: str,
    dims: tuple[str, ...],
    amounts: Mapping[tuple[str, ...], Decimal],
    bases: Mapping[tuple[str, ...], Decimal],
    lines: Mapping[tuple[str, ...], int],
    currency: str,
    skipped: Mapping[str, int],
) -> KpiResult:
    """A price variance per group: the amount, its share of the group's base value, and the
    number of lines measured (the sample size)."""
    rows = tuple(
        (
            k,
            SpendShare(amounts[k].quantize(_CENT), currency, _pct(amounts[k], bases[k]), lines[k]),
        )
        for k in sorted(bases)
    )
    total_amount = sum(amounts.values(), _ZERO)
    total = SpendShare(
        total_amount.quantize(_CENT),
        currency,
        _pct(total_amount, sum(bases.values(), _ZERO)),
        sum(lines.values()),
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


def _note(value: Decimal | None) -> str:
    """A number for ``notes``: *no data* when there was nothing to measure, never ``None``."""
    return "no data" if value is None else f"{value:f}"
