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

from potrack._metrics.delivery import (
    PERFECT_CRITERIA,
    on_time_delivery,
    order_accuracy,
    otif,
    perfect_order_rate,
    rejection_rate,
)
from potrack._metrics.facts import (
    APPROVED,
    CANCELLED,
    CHANGE,
    CLOSED,
    FIRST_INVOICE,
    FIRST_RECEIPT,
    GOODS_RECEIPT,
    INVOICE,
    INVOICE_CANCELLED,
    ISSUED,
    LAST_PAYMENT,
    LAST_RECEIPT,
    PAYMENT,
    PAYMENT_BLOCK,
    PO_CREATED,
    REACTIVATED,
    REQUISITION,
    Delivery,
    Endpoint,
    Milestone,
    OrderFacts,
)
from potrack._metrics.grouping import (
    DIMENSIONS,
    NEGATIVE,
    PERIODS,
    period_of,
)
from potrack._metrics.results import (
    KpiResult,
    Rate,
    SpendShare,
    Summary,
    Value,
    summarize,
    text_table,
    to_dataframe,
)
from potrack._metrics.scorecard import (
    DEFAULT_BANDS,
    SCORECARD_MISSING,
    Comparison,
    Criterion,
    Scorecard,
    ScorecardResult,
    SupplierScore,
    compare,
)
from potrack._metrics.sources import (
    orders_from_records,
    standard_kpis,
)
from potrack._metrics.spend import (
    committed_spend,
    concentration,
    invoice_match_rate,
    invoice_price_variance,
    maverick_share,
    purchase_price_variance,
    spend,
)
from potrack._metrics.times import (
    approval_cycle_times,
    cycle_times,
    procure_to_pay,
)

__all__ = [
    "APPROVED",
    "CANCELLED",
    "CHANGE",
    "CLOSED",
    "DEFAULT_BANDS",
    "DIMENSIONS",
    "FIRST_INVOICE",
    "FIRST_RECEIPT",
    "GOODS_RECEIPT",
    "INVOICE",
    "INVOICE_CANCELLED",
    "ISSUED",
    "LAST_PAYMENT",
    "LAST_RECEIPT",
    "NEGATIVE",
    "PAYMENT",
    "PAYMENT_BLOCK",
    "PERFECT_CRITERIA",
    "PERIODS",
    "PO_CREATED",
    "REACTIVATED",
    "REQUISITION",
    "SCORECARD_MISSING",
    "Comparison",
    "Criterion",
    "Delivery",
    "Endpoint",
    "KpiResult",
    "Milestone",
    "OrderFacts",
    "Rate",
    "Scorecard",
    "ScorecardResult",
    "SpendShare",
    "Summary",
    "SupplierScore",
    "Value",
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
    "period_of",
    "procure_to_pay",
    "purchase_price_variance",
    "rejection_rate",
    "spend",
    "standard_kpis",
    "summarize",
    "text_table",
    "to_dataframe",
]
