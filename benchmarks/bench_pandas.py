"""Baselines: the same work written directly in pandas, on the same data, in the same run.

**Matching.**  A batch of invoices against their POs and receipts (the synthetic stream the
matching benchmark uses, lenient policy).  The pandas version is what a competent analyst writes:
cumulative invoiced and received quantities per PO line (``groupby().cumsum()`` and
``merge_asof`` on the document sequence), price variance against the +5 % limit, quantity against
ordered and received (service lines and two-way lines: ordered only), charges against +25 %, the header total against a 0.05 small difference,
duplicates by normalized number; an invoice passes first time when nothing blocks and its goods
have arrived.  It does less than potrack (no units of measure, tax check, returns' timing on
waiting invoices, release of held invoices, explanations) and uses floats for money; the
agreement of the two first-pass verdicts is reported.

**KPIs.**  The standard KPI set over a BPI-shaped event log (the events already in memory, as in
the metrics benchmark): cycle times (requisition → PO, PO → first and last receipt, PO → closed,
procure to pay: count, median, mean, p90, min, max), the first-pass match rate by the log's
convention, spend by supplier and by category, supplier concentration (top 5, HHI) and committed
spend, in pandas from ``DataFrame.from_records``.  Delivery KPIs have no data in a log without due
dates, in both.

The ratio is potrack's time ÷ pandas' time for the same work (below 1: potrack is faster).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from benchmarks._harness import Benchmark, Result
from potrack.eventlog import BPI2019_ACTIVITIES, Event, fold_events
from potrack.matching import BatchMatcher, TolerancePolicy
from potrack.metrics import Milestone, standard_kpis
from potrack.records import (
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceKind,
    LineType,
    MatchLevel,
)
from potrack.testing.synth import Synth

# -- matching ---------------------------------------------------------------------------------------


def _matching_data(lines: int) -> tuple[dict[str, Any], list[Any]]:
    orders, stream = Synth(seed=11).matching_stream(lines)
    documents = list(stream)
    pos = {d.po_id: orders[d.po_id] for d in documents}
    return pos, documents


def _potrack_first_pass(pos: dict[str, Any], documents: list[Any]) -> tuple[float, dict[str, bool]]:
    matcher = BatchMatcher(pos, TolerancePolicy.lenient())
    verdicts: dict[str, bool] = {}
    feed = matcher.feed
    start = time.perf_counter()
    for document in documents:
        for result in feed(document):
            if result.kind is InvoiceKind.INVOICE and result.invoice_id not in verdicts:
                verdicts[result.invoice_id] = result.first_pass
    return time.perf_counter() - start, verdicts


def _frames(pos: dict[str, Any], documents: list[Any]) -> dict[str, Any]:
    """The records as the tables an analyst would start from (an ERP export)."""
    import pandas as pd

    po_lines: list[tuple[Any, ...]] = []
    ordered_charges: list[tuple[Any, ...]] = []
    invoiced_charges: list[tuple[Any, ...]] = []
    inv_lines: list[tuple[Any, ...]] = []
    headers: list[tuple[Any, ...]] = []
    moves: list[tuple[Any, ...]] = []
    for po in pos.values():
        for ln in po.lines:
            level = ln.match_level or po.match_level
            po_lines.append(
                (
                    po.id,
                    ln.line_no,
                    float(ln.quantity),
                    float(ln.unit_price.amount / ln.price_unit),
                    level is MatchLevel.TWO_WAY or ln.line_type is LineType.SERVICE,
                )
            )
        for c in po.charges:
            ordered_charges.append((po.id, c.code, float(c.amount.amount)))
    for seq, d in enumerate(documents):
        if type(d) is Invoice:
            sign = -1.0 if d.kind is InvoiceKind.CREDIT_MEMO else 1.0
            net = 0.0
            for il in d.lines:
                amount = float(il.quantity * il.unit_price.amount / il.price_unit)
                net += amount
                inv_lines.append(
                    (
                        seq,
                        d.id,
                        d.po_id,
                        il.po_line_no,
                        sign * float(il.quantity),
                        float(il.unit_price.amount / il.price_unit),
                        d.kind is InvoiceKind.INVOICE,
                    )
                )
            charges = sum(float(c.amount.amount) for c in d.charges)
            tax = float(d.tax.amount) if d.tax is not None else 0.0
            headers.append(
                (
                    seq,
                    d.id,
                    d.po_id,
                    d.supplier_id,
                    d.number or "",
                    d.kind is InvoiceKind.INVOICE,
                    float(d.total.amount),
                    net + charges + tax,
                )
            )
            for c in d.charges:
                invoiced_charges.append((d.po_id, c.code, float(c.amount.amount), d.id))
        elif type(d) is GoodsReceipt:
            for rl in d.lines:
                moves.append((seq, d.po_id, rl.line_no, float(rl.received)))
        elif type(d) is GoodsReturn:
            for rl in d.lines:
                moves.append((seq, d.po_id, rl.line_no, -float(rl.quantity)))
    return {
        "po_lines": pd.DataFrame(
            po_lines, columns=["po_id", "line_no", "ordered", "po_price", "two_way"]
        ),
        "po_charges": pd.DataFrame(ordered_charges, columns=["po_id", "code", "ordered_amount"]),
        "inv_charges": pd.DataFrame(
            invoiced_charges, columns=["po_id", "code", "amount", "invoice_id"]
        ),
        "inv_lines": pd.DataFrame(
            inv_lines,
            columns=["seq", "invoice_id", "po_id", "line_no", "qty", "price", "is_invoice"],
        ),
        "headers": pd.DataFrame(
            headers,
            columns=[
                "seq",
                "invoice_id",
                "po_id",
                "supplier",
                "number",
                "is_invoice",
                "total",
                "computed",
            ],
        ),
        "moves": pd.DataFrame(moves, columns=["seq", "po_id", "line_no", "qty"]),
    }


def pandas_first_pass(f: dict[str, Any]) -> Any:
    """The analyst's first-pass match in pandas: a boolean Series per invoice id."""
    import pandas as pd

    inv = f["inv_lines"].sort_values("seq", kind="stable")
    inv["cum_invoiced"] = inv.groupby(["po_id", "line_no"])["qty"].cumsum()
    moves = f["moves"].sort_values("seq", kind="stable")
    moves["cum_received"] = moves.groupby(["po_id", "line_no"])["qty"].cumsum()
    m = pd.merge_asof(
        inv,
        moves[["seq", "po_id", "line_no", "cum_received"]],
        on="seq",
        by=["po_id", "line_no"],
        direction="backward",
    )
    m["cum_received"] = m["cum_received"].fillna(0.0)
    m = m.merge(f["po_lines"], on=["po_id", "line_no"], how="left")
    eps = 1e-9
    price_block = (m["price"] - m["po_price"]) / m["po_price"] * 100 > 5 + eps
    ordered_block = m["cum_invoiced"] > m["ordered"] + eps
    three_way = ~m["two_way"]
    waiting = three_way & (m["cum_received"] <= eps)
    received_block = three_way & (m["cum_invoiced"] > m["cum_received"] + eps)
    m["bad"] = m["is_invoice"] & (price_block | ordered_block | received_block | waiting)
    line_bad = m.groupby("invoice_id")["bad"].any()

    h = f["headers"].set_index("invoice_id")
    header_bad = (h["total"] - h["computed"]).abs() > 0.05 + eps
    norm = h["number"].str.lower().str.replace(r"[^0-9a-z]", "", regex=True)
    duplicate = pd.DataFrame({"supplier": h["supplier"], "norm": norm}).duplicated()
    charges = f["inv_charges"].merge(f["po_charges"], on=["po_id", "code"], how="left")
    charges["bad"] = charges["amount"] > charges["ordered_amount"].fillna(0.0) * 1.25 + eps
    charge_bad = charges.groupby("invoice_id")["bad"].any()

    bad = line_bad.reindex(h.index, fill_value=False) | header_bad | duplicate.to_numpy()
    bad = bad | charge_bad.reindex(h.index, fill_value=False)
    return ~bad[h["is_invoice"]]


def matching_baseline(full_lines: int) -> Any:
    def run(smoke: bool) -> Result:
        lines = max(3_000, full_lines // 20) if smoke else full_lines
        pos, documents = _matching_data(lines)
        billed = sum(len(d.lines) for d in documents if type(d) is Invoice)
        start = time.perf_counter()
        frames = _frames(pos, documents)
        frames_s = time.perf_counter() - start
        ratios, ours, theirs = [], [], []
        verdicts: dict[str, bool] = {}
        passed: Any = None
        for _ in range(2 if smoke else 5):
            gc.collect()
            took, verdicts = _potrack_first_pass(pos, documents)
            ours.append(took)
            gc.collect()
            start = time.perf_counter()
            passed = pandas_first_pass({k: v.copy() for k, v in frames.items()})
            theirs.append(time.perf_counter() - start)
            ratios.append(ours[-1] / theirs[-1])
        agree = sum(1 for inv, ok in passed.items() if verdicts.get(inv) == bool(ok))
        return Result(
            f"baseline: matching batch, {full_lines:,} invoice lines, potrack ÷ pandas time",
            "report (lower is better)",
            "ratio",
            ratios,
            lower_is_better=True,
            notes={
                "invoice lines": billed,
                "potrack median s": round(sorted(ours)[len(ours) // 2], 3),
                "pandas median s": round(sorted(theirs)[len(theirs) // 2], 3),
                "pandas building its frames from the records s": round(frames_s, 3),
                "first pass potrack %": round(100 * sum(verdicts.values()) / len(verdicts), 2),
                "first pass pandas %": round(100 * float(passed.mean()), 2),
                "verdicts agreeing %": round(100 * agree / len(passed), 2),
            },
        )

    return run


# -- KPIs -------------------------------------------------------------------------------------------

_EXCEPTIONS = ("Set Payment Block", "Remove Payment Block", "Cancel Invoice Receipt")
_EXCEPTIONS += ("Cancel Subsequent Invoice",)


def _summary(days: Any) -> dict[str, float]:
    d = days.dropna()
    d = d[d >= 0]
    if d.empty:
        return {"count": 0}
    return {
        "count": int(d.size),
        "median": round(float(d.median()), 2),
        "mean": round(float(d.mean()), 2),
        "p90": round(float(d.quantile(0.9)), 2),
        "min": round(float(d.min()), 2),
        "max": round(float(d.max()), 2),
    }


def pandas_kpis(events: list[Event]) -> dict[str, Any]:
    """The standard KPI set, as an analyst writes it in pandas."""
    import pandas as pd

    df = pd.DataFrame.from_records(events, columns=list(Event._fields))
    codes = {a: int(m) for a, m in BPI2019_ACTIVITIES.items()}
    df["m"] = df["activity"].map(codes).fillna(int(Milestone.OTHER)).astype("int8")
    grouped = df.groupby(["case", "m"], sort=False)["at"]
    first = grouped.min().unstack()
    last = grouped.max().unstack()
    counts = df.groupby(["case", "m"], sort=False).size().unstack(fill_value=0)
    stamp = df["at"].dtype
    for code in Milestone:
        if int(code) not in counts.columns:  # a milestone the log never has (closing, say)
            counts[int(code)] = 0
            for frame in (first, last):
                frame[int(code)] = pd.Series(pd.NaT, index=frame.index, dtype=stamp)
    cases = df.groupby("case", sort=False)[["supplier", "category", "flow"]].first()
    created = df[df["activity"] == "Create Purchase Order Item"]
    value = created.groupby("case", sort=False)["value"].first().astype(float)
    value = value.reindex(cases.index).fillna(0.0)
    live = counts[int(Milestone.CANCELLED)] == 0

    def days(end: Any, start: Any) -> Any:
        return ((end - start).dt.total_seconds() / 86_400)[live]

    po = first[int(Milestone.PO_CREATED)]
    receipt = int(Milestone.GOODS_RECEIPT)
    out: dict[str, Any] = {
        "requisition → PO": _summary(days(po, first[int(Milestone.REQUISITION)])),
        "PO → first receipt": _summary(days(first[receipt], po)),
        "PO → last receipt": _summary(days(last[receipt], po)),
        "PO → closed": _summary(days(first[int(Milestone.CLOSED)], po)),
        "procure to pay": _summary(
            days(
                last[int(Milestone.PAYMENT)],
                first[int(Milestone.REQUISITION)].fillna(po),
            )
        ),
    }
    invoiced = counts[int(Milestone.INVOICE)] > 0
    flagged = df[df["activity"].isin(_EXCEPTIONS)]["case"].unique()
    changes = df[df["activity"] == "Change Price"].groupby("case")["at"].max()
    late_change = changes > first[int(Milestone.INVOICE)].reindex(changes.index)
    bad = pd.Series(False, index=counts.index)
    bad[bad.index.isin(flagged)] = True
    bad[late_change[late_change].index] = True
    out["invoice match rate"] = round(100 * float((~bad[invoiced]).mean()), 2)

    net_invoiced = counts[int(Milestone.INVOICE)] - counts[int(Milestone.INVOICE_CANCELLED)]
    spent = value.where(net_invoiced.reindex(value.index) > 0, 0.0)
    by_supplier = spent[spent > 0].groupby(cases["supplier"]).sum().sort_values(ascending=False)
    by_category = spent[spent > 0].groupby(cases["category"]).sum().sort_values(ascending=False)
    shares = by_supplier / by_supplier.sum() * 100
    out["spend by supplier"] = by_supplier
    out["spend by category"] = by_category
    out["supplier concentration"] = {
        "top 5 %": round(float(shares.iloc[:5].sum()), 2),
        "HHI": round(float((shares**2).sum()), 2),
    }
    open_value = (value - spent).clip(lower=0)
    is_open = live & (counts[int(Milestone.CLOSED)] == 0)
    committed = open_value[is_open.reindex(open_value.index) & (open_value > 0)]
    out["committed spend"] = committed.groupby(cases["supplier"]).sum()
    return out


def _agreement(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    checks = []
    mine = ours["PO → first receipt"].total
    checks.append(abs(float(mine.median) - theirs["PO → first receipt"]["median"]) < 0.011)
    checks.append(mine.count == theirs["PO → first receipt"]["count"])
    rate = ours["invoice match rate"].total.percent
    checks.append(abs(float(rate) - theirs["invoice match rate"]) < 0.011)
    top = ours["spend by supplier"].rows[0][1].amount
    checks.append(abs(float(top) - float(theirs["spend by supplier"].iloc[0])) < 1)
    return f"{sum(checks)} of {len(checks)}"


def kpi_baseline(full_events: int) -> Any:
    def run(smoke: bool) -> Result:
        target = max(30_000, full_events // 40) if smoke else full_events
        events = list(Synth(seed=4).events(round(target / 5.78)))
        ratios, ours_s, theirs_s = [], [], []
        ours: dict[str, Any] = {}
        theirs: dict[str, Any] = {}
        for _ in range(2 if smoke else 3):
            gc.collect()
            start = time.perf_counter()
            ours = standard_kpis(fold_events(events).cases)
            ours_s.append(time.perf_counter() - start)
            gc.collect()
            start = time.perf_counter()
            theirs = pandas_kpis(events)
            theirs_s.append(time.perf_counter() - start)
            ratios.append(ours_s[-1] / theirs_s[-1])
        return Result(
            f"baseline: KPI set, {full_events:,} events, potrack ÷ pandas time",
            "report (lower is better)",
            "ratio",
            ratios,
            lower_is_better=True,
            notes={
                "events": len(events),
                "potrack median s": round(sorted(ours_s)[len(ours_s) // 2], 2),
                "pandas median s": round(sorted(theirs_s)[len(theirs_s) // 2], 2),
                "results agreeing": _agreement(ours, theirs),
            },
        )

    return run


BENCHMARKS = [
    Benchmark(
        "baseline: matching batch, 100,000 invoice lines, potrack ÷ pandas time",
        matching_baseline(100_000),
        processes=1,
    ),
    Benchmark(
        "baseline: KPI set, 1,600,000 events, potrack ÷ pandas time",
        kpi_baseline(1_600_000),
        processes=1,
    ),
]
