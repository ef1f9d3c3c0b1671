"""Every KPI against the same figure computed independently, with pandas, on real data.

The BPI Challenge 2019 sample (B.F. van Dongen, 4TU.ResearchData, CC BY 4.0) for the event-log
KPIs, and Microsoft's AdventureWorks purchasing tables (MIT) for the quantity KPIs; each under
every convention the KPI offers.  The pandas side reads the raw CSV itself and shares no code
with potrack: only the definitions (written out in each test) are the same.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from potrack import metrics as m
from potrack.eventlog import read_event_log
from potrack.money import money
from potrack.records import GoodsReceipt, PurchaseOrder, PurchaseOrderLine, ReceiptLine
from tests.conftest import ROOT

pd = pytest.importorskip("pandas")

DATA = ROOT.parent / "shared" / "data"
BPI = DATA / "bpi2019" / "BPI_Challenge_2019_sample.csv"
AW = DATA / "adventureworks"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the clone")

CENT = Decimal("0.01")
CASE, ACT, TS = "case_concept_name", "event_concept_name", "event_time_timestamp"
RECEIPTS = ("Record Goods Receipt", "Record Service Entry Sheet")


def dec(x: float) -> Decimal:
    """A float statistic as potrack reports it: rounded to 6 places, then to cents half-even."""
    return Decimal(repr(round(float(x), 6))).quantize(CENT, ROUND_HALF_EVEN)


def pct(num: Any, den: Any) -> Decimal | None:
    num, den = Decimal(str(num)), Decimal(str(den))
    return None if not den else (num * 100 / den).quantize(CENT, ROUND_HALF_EVEN)


def stats(days: Any) -> tuple[Any, ...]:
    """(n, median, mean, p90, min, max, negatives) of a pandas Series of days."""
    s = days.dropna()
    return (
        len(s),
        dec(s.median()),
        dec(s.mean()),
        dec(s.quantile(0.9)),
        dec(s.min()),
        dec(s.max()),
        int((s < 0).sum()),
    )


def summary(result: m.KpiResult) -> tuple[Any, ...]:
    t = result.total
    return (t.count, t.median, t.mean, t.p90, t.min, t.max, t.negatives)


# -- BPI 2019: the event log ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log() -> Any:
    return read_event_log(BPI)


@pytest.fixture(scope="module")
def events() -> Any:
    df = pd.read_csv(BPI, dtype=str)
    df["t"] = pd.to_datetime(df[TS], utc=True)
    df["worth"] = df["event_Cumulative_net_worth_(EUR)"].map(Decimal)
    return df


@pytest.fixture(scope="module")
def first(events: Any) -> Any:
    """The first occurrence of each activity per case (a case × activity table)."""
    return events.groupby([CASE, ACT])["t"].min().unstack()


@pytest.fixture(scope="module")
def cancelled(events: Any) -> Any:
    """Cases deleted and not reactivated afterwards (``SRM: Deleted`` is not a deletion)."""
    last = events.groupby([CASE, ACT])["t"].max().unstack()
    deleted = last["Delete Purchase Order Item"]
    back = last["Reactivate Purchase Order Item"]
    return set(last.index[deleted.notna() & ~(back > deleted)])


def _days(end: Any, start: Any) -> Any:
    return (end - start).dt.total_seconds() / 86_400


def test_first_receipt_with_keep_equals_a_plain_first_occurrence_computation(
    log: Any, first: Any
) -> None:
    """The issue's pandas user: PO → first goods receipt over every case, negatives kept."""
    days = _days(first[list(RECEIPTS)].min(axis=1), first["Create Purchase Order Item"])
    expected = stats(days)
    assert expected[0] == 946 and expected[1] == Decimal("7.94") and expected[6] == 245
    result = m.cycle_times(
        log.cases, m.PO_CREATED, m.FIRST_RECEIPT, negative="keep", include_cancelled=True
    )
    assert summary(result) == expected


@pytest.mark.parametrize("negative", ["exclude", "keep", "clip"])
@pytest.mark.parametrize(
    ("start", "end", "start_acts", "end_acts", "last_end"),
    [
        (m.PO_CREATED, m.FIRST_RECEIPT, ["Create Purchase Order Item"], RECEIPTS, False),
        (m.PO_CREATED, m.LAST_RECEIPT, ["Create Purchase Order Item"], RECEIPTS, True),
        (
            m.REQUISITION,
            m.PO_CREATED,
            ["Create Purchase Requisition Item", "SRM: Created"],
            ["Create Purchase Order Item"],
            False,
        ),
        (
            m.PO_CREATED,
            m.FIRST_INVOICE,
            ["Create Purchase Order Item"],
            ["Record Invoice Receipt", "Record Subsequent Invoice"],
            False,
        ),
    ],
)
def test_cycle_times_under_each_convention(
    log: Any,
    events: Any,
    cancelled: Any,
    negative: str,
    start: Any,
    end: Any,
    start_acts: list[str],
    end_acts: Any,
    last_end: bool,
) -> None:
    live = events[~events[CASE].isin(cancelled)]
    begin = live[live[ACT].isin(start_acts)].groupby(CASE)["t"].min()
    ends = live[live[ACT].isin(list(end_acts))].groupby(CASE)["t"]
    stop = ends.max() if last_end else ends.min()
    days = _days(stop, begin).dropna()
    if negative == "exclude":
        days = days[days >= 0]
    elif negative == "clip":
        days = days.clip(lower=0)
    n, med, mean, p90, lo, hi, _ = stats(days)
    negatives = 0 if negative == "exclude" else int((_days(stop, begin).dropna() < 0).sum())
    result = m.cycle_times(log.cases, start, end, negative=negative)
    assert summary(result) == (n, med, mean, p90, lo, hi, negatives)
    assert dict(result.excluded).get("cancelled", 0) == len(cancelled)


@pytest.mark.parametrize("negative", ["exclude", "keep", "clip"])
def test_procure_to_pay_under_each_convention(
    log: Any, events: Any, cancelled: Any, negative: str
) -> None:
    live = events[~events[CASE].isin(cancelled)]
    req = live[live[ACT].isin(["Create Purchase Requisition Item", "SRM: Created"])]
    po = live[live[ACT] == "Create Purchase Order Item"].groupby(CASE)["t"].min()
    begin = req.groupby(CASE)["t"].min().combine_first(po)
    paid = live[live[ACT] == "Clear Invoice"].groupby(CASE)["t"].max()
    days = _days(paid, begin).dropna()
    kept = {"exclude": days[days >= 0], "keep": days, "clip": days.clip(lower=0)}[negative]
    expected = stats(kept)[:6]
    assert summary(m.procure_to_pay(log.cases, negative=negative))[:6] == expected


@pytest.mark.parametrize("zone", [None, "UTC", "America/New_York", "Asia/Tokyo"])
def test_cycle_time_periods_in_each_zone(log: Any, first: Any, cancelled: Any, zone: str) -> None:
    created = first["Create Purchase Order Item"]
    days = _days(first[list(RECEIPTS)].min(axis=1), created)
    keep = days.notna() & (days >= 0) & ~days.index.isin(cancelled)
    local = created[keep] if zone is None else created[keep].dt.tz_convert(zone)
    months = local.dt.strftime("%Y-%m")
    expected = {(k,): len(v) for k, v in days[keep].groupby(months)}
    tz = None if zone is None else ZoneInfo(zone)
    result = m.cycle_times(log.cases, m.PO_CREATED, m.FIRST_RECEIPT, group_by=["period"], tz=tz)
    assert {k: v.count for k, v in result.rows} == expected


def test_repeated_receipts_and_cancellations_equal_the_log(log: Any, events: Any) -> None:
    gr = events[events[ACT] == "Record Goods Receipt"].groupby([CASE, "t"]).size()
    ses = events[events[ACT] == "Record Service Entry Sheet"].groupby([CASE, "t"]).size()
    both = pd.concat([gr.rename("gr"), ses.rename("ses")], axis=1).fillna(0)
    # A sheet at a goods receipt's instant is that receipt; sheets beyond them are receipts.
    per_case = (both["gr"] + (both["ses"] - both["gr"]).clip(lower=0)).groupby(level=0).sum()
    assert log.finding("repeated goods receipts").count == int((per_case > 1).sum())
    counts = {c.id: c.counts[m.GOODS_RECEIPT] for c in log.cases}
    assert all(counts[case] == n for case, n in per_case.items())
    srm = set(events[events[ACT] == "SRM: Deleted"][CASE])
    assert srm and not any(c.cancelled for c in log.cases if c.id in srm)


@pytest.fixture(scope="module")
def values(events: Any, cancelled: Any) -> Any:
    """Per case: supplier, spend area, order value (its creation event's), invoiced, open."""
    created = events[events[ACT] == "Create Purchase Order Item"].groupby(CASE).first()
    invoices = events[events[ACT].isin(["Record Invoice Receipt", "Record Subsequent Invoice"])]
    cancels = events[events[ACT].isin(["Cancel Invoice Receipt", "Cancel Subsequent Invoice"])]
    net = invoices.groupby(CASE).size().sub(cancels.groupby(CASE).size(), fill_value=0)
    out = pd.DataFrame(
        {
            "supplier": created["case_Vendor"],
            "area": created["case_Spend_area_text"].fillna("(none)"),
            "value": created["worth"],
        }
    )
    out["invoiced"] = [v if net.get(c, 0) > 0 else Decimal(0) for c, v in out["value"].items()]
    out["cancelled"] = out.index.isin(cancelled)
    return out


@pytest.mark.parametrize("basis", ["invoiced", "ordered"])
@pytest.mark.parametrize("by", ["supplier", "area"])
def test_spend_and_concentration(log: Any, values: Any, basis: str, by: str) -> None:
    rows = values if basis == "invoiced" else values[~values["cancelled"]]
    column = "invoiced" if basis == "invoiced" else "value"
    amounts = rows.groupby(by)[column].apply(lambda s: sum(s, Decimal(0)))
    amounts = amounts[amounts != 0]
    dim = "supplier" if by == "supplier" else "category"
    result = m.spend(log.cases, group_by=(dim,), basis=basis)
    assert {k[0]: v.amount for k, v in result.rows} == {
        k: v.quantize(CENT) for k, v in amounts.items()
    }
    whole = sum(amounts, Decimal(0))
    assert result.total.amount == whole.quantize(CENT)
    if by == "supplier":
        shares = sorted((v * 100 / whole for v in amounts), reverse=True)
        hhi = sum((s * s for s in shares), Decimal(0)).quantize(CENT)
        conc = m.concentration(result, top=3)
        assert dict(conc.notes)["HHI"] == f"{hhi:f}"
        assert conc.value("top").share == sum(shares[:3], Decimal(0)).quantize(CENT)


def test_committed_spend(log: Any, values: Any) -> None:
    open_ = values[~values["cancelled"]]
    left = (open_["value"] - open_["invoiced"]).map(lambda v: max(v, Decimal(0)))
    per_supplier = left[left > 0].groupby(open_["supplier"]).apply(lambda s: sum(s, Decimal(0)))
    result = m.committed_spend(log.cases)
    assert {k[0]: v.amount for k, v in result.rows} == {
        k: v.quantize(CENT) for k, v in per_supplier.items()
    }


def test_first_pass_match_rate_per_order(log: Any, events: Any, first: Any) -> None:
    recorded = first.reindex(columns=["Record Invoice Receipt", "Record Subsequent Invoice"])
    invoiced = recorded.min(axis=1).dropna()
    held = set(
        events[
            events[ACT].isin(
                [
                    "Set Payment Block",
                    "Remove Payment Block",
                    "Cancel Invoice Receipt",
                    "Cancel Subsequent Invoice",
                ]
            )
        ][CASE]
    )
    price = events[events[ACT] == "Change Price"].groupby(CASE)["t"].max()
    late_price = {c for c, t in price.items() if c in invoiced.index and t > invoiced[c]}
    bad = (held | late_price) & set(invoiced.index)
    rate = m.standard_kpis(log.cases)["invoice match rate"].total
    assert (rate.numerator, rate.denominator) == (len(invoiced) - len(bad), len(invoiced))


def test_quantity_kpis_on_the_event_log_are_no_data(log: Any) -> None:
    for kpi in (m.on_time_delivery, m.otif, m.rejection_rate, m.order_accuracy):
        result = kpi(log.cases)
        assert result.total.percent is None
        cancelled = sum(1 for c in log.cases if c.cancelled)
        assert result.no_data == (
            f"no data: 1000 left out (no delivery data {1000 - cancelled}, cancelled {cancelled})"
        )


# -- AdventureWorks: the purchasing tables ----------------------------------------------------------------


def _day(text: str) -> date:
    return date.fromisoformat(text[:10])


@pytest.fixture(scope="module")
def aw() -> Any:
    """Order lines joined to their headers; ``received`` is the line's ModifiedDate (the tables
    have no receipt date), ``ok`` the accepted quantity."""
    lines = pd.read_csv(AW / "PurchaseOrderDetail.csv", dtype=str)
    heads = pd.read_csv(AW / "PurchaseOrderHeader.csv", dtype=str)
    df = lines.merge(heads, on="PurchaseOrderID", suffixes=("", "_h"))
    for col in ("OrderQty", "ReceivedQty", "RejectedQty", "UnitPrice"):
        df[col] = df[col].map(Decimal)
    df["due"] = df["DueDate"].map(_day)
    df["received"] = df["ModifiedDate"].map(_day)
    df["ok"] = df["ReceivedQty"] - df["RejectedQty"]
    df["cancelled"] = df["Status"] == "3"  # rejected orders
    return df


@pytest.fixture(scope="module")
def aw_orders(aw: Any) -> tuple[list[PurchaseOrder], list[GoodsReceipt]]:
    """The tables as potrack records: one PO per header, one receipt per PO and receipt day."""
    pos, receipts = [], []
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in aw.to_dict("records"):
        grouped.setdefault(row["PurchaseOrderID"], []).append(row)
    for po_id, rows in grouped.items():
        head = rows[0]
        lines = tuple(
            PurchaseOrderLine(
                line_no=n,
                description=f"product {r['ProductID']}",
                category="purchasing",
                quantity=r["OrderQty"],
                uom="EA",
                unit_price=money(r["UnitPrice"], "USD"),
                item=r["ProductID"],
                requested_date=r["due"],
            )
            for n, r in enumerate(rows, start=1)
        )
        created = datetime.combine(_day(head["OrderDate"]), time(9), UTC)
        po = PurchaseOrder(
            id=po_id,
            supplier_id=head["VendorID"],
            buyer=f"emp-{head['EmployeeID']}",
            currency="USD",
            lines=lines,
            created_at=created,
        )
        pos.append(po)
        by_day: dict[date, list[ReceiptLine]] = {}
        for n, r in enumerate(rows, start=1):
            by_day.setdefault(r["received"], []).append(
                ReceiptLine(line_no=n, received=r["ReceivedQty"], rejected=r["RejectedQty"])
            )
        receipts += [
            GoodsReceipt(
                id=f"GR-{po_id}-{day}",
                po_id=po_id,
                received_at=datetime.combine(day, time(12), UTC),
                received_by="dock",
                lines=tuple(got),
            )
            for day, got in by_day.items()
        ]
    return pos, receipts


@pytest.fixture(scope="module")
def aw_facts(aw: Any, aw_orders: Any) -> list[m.OrderFacts]:
    pos, receipts = aw_orders
    facts = m.orders_from_records(pos, [], receipts)
    rejected = set(aw[aw["cancelled"]]["PurchaseOrderID"])
    # A rejected order is a cancelled one (the tables have no cancellation date: its creation).
    return [
        m.OrderFacts.build(
            f.id,
            events={
                m.PO_CREATED: [f.first[m.PO_CREATED]],
                m.GOODS_RECEIPT: [f.first[m.GOODS_RECEIPT]],
                **({m.CANCELLED: [f.first[m.PO_CREATED]]} if f.id in rejected else {}),
            },
            supplier=f.supplier,
            currency=f.currency,
            value=f.value,
            deliveries=f.deliveries,
        )
        for f in facts
    ]


@pytest.fixture(scope="module")
def live(aw: Any) -> Any:
    return aw[~aw["cancelled"]]


@pytest.mark.parametrize("tolerance", [Decimal(0), Decimal(5), Decimal(10)])
@pytest.mark.parametrize(("early", "late"), [(None, 0), (3, 0), (None, 7), (0, 2)])
def test_otif_per_line_and_per_order(
    aw_facts: Any, live: Any, tolerance: Decimal, early: int | None, late: int
) -> None:
    gap = (live["received"] - live["due"]).map(lambda d: d.days)
    on_time = (gap <= late) & (True if early is None else gap >= -early)
    in_full = live["ok"] >= live["OrderQty"] * (100 - tolerance) / 100
    ok = on_time & in_full
    line = m.otif(aw_facts, in_full_tolerance=tolerance, early_days=early, late_days=late)
    assert line.total.percent == pct(int(ok.sum()), len(ok))
    per_order = ok.groupby(live["PurchaseOrderID"]).all()
    order = m.otif(
        aw_facts, level="order", in_full_tolerance=tolerance, early_days=early, late_days=late
    )
    assert order.total.percent == pct(int(per_order.sum()), len(per_order))


def test_otif_rejections_are_not_subtracted_twice(aw_facts: Any, live: Any) -> None:
    """Lines received on time and in full within 10 %, with some rejected: subtracting the
    rejected quantity again (the old defect) turned 149 of them into failures."""
    on_time = live["received"] <= live["due"]
    limit = live["OrderQty"] * Decimal("0.9")
    right = on_time & (live["ok"] >= limit)
    twice = on_time & (live["ok"] - live["RejectedQty"] >= limit)
    assert int((right & ~twice).sum()) == 149
    result = m.otif(aw_facts, in_full_tolerance=Decimal(10))
    assert (result.total.numerator, result.total.denominator) == (int(right.sum()), len(live))


@pytest.mark.parametrize("weighting", ["line", "quantity", "date"])
@pytest.mark.parametrize(("early", "late"), [(None, 0), (2, 0), (None, 5)])
def test_on_time_delivery(
    aw_facts: Any, live: Any, weighting: str, early: int | None, late: int
) -> None:
    gap = (live["received"] - live["due"]).map(lambda d: d.days)
    inside = (gap <= late) & (True if early is None else gap >= -early)
    if weighting == "line":
        num, den = int((inside & (live["ok"] >= live["OrderQty"])).sum()), len(live)
    elif weighting == "date":
        num, den = int(inside.sum()), len(live)
    else:
        got = [
            min(q, o) if i else Decimal(0)
            for q, o, i in zip(live["ok"], live["OrderQty"], inside, strict=True)
        ]
        num, den = sum(got, Decimal(0)), sum(live["OrderQty"], Decimal(0))
    result = m.on_time_delivery(aw_facts, weighting=weighting, early_days=early, late_days=late)
    assert result.total.percent == pct(num, den)
    rejected_orders = aw_facts_cancelled(aw_facts)
    assert dict(result.excluded) == {"cancelled": rejected_orders}


def aw_facts_cancelled(facts: list[m.OrderFacts]) -> int:
    return sum(1 for f in facts if f.cancelled)


def test_rejected_orders_are_the_cancelled_ones(aw: Any, aw_facts: Any) -> None:
    assert aw_facts_cancelled(aw_facts) == aw[aw["cancelled"]]["PurchaseOrderID"].nunique() == 86


def test_rejection_rate_and_order_accuracy(aw_facts: Any, live: Any) -> None:
    rate = m.rejection_rate(aw_facts)
    rejected, received = sum(live["RejectedQty"], Decimal(0)), sum(live["ReceivedQty"], Decimal(0))
    assert (rate.total.numerator, rate.total.denominator) == (rejected, received)
    clean = live.groupby("PurchaseOrderID")["RejectedQty"].apply(lambda s: not any(s))
    accuracy = m.order_accuracy(aw_facts, group_by=["supplier"])
    assert (accuracy.total.numerator, accuracy.total.denominator) == (int(clean.sum()), len(clean))
    per_vendor = clean.groupby(live.groupby("PurchaseOrderID")["VendorID"].first())
    assert {k[0]: v.percent for k, v in accuracy.rows} == {
        v: pct(int(s.sum()), len(s)) for v, s in per_vendor
    }


def test_cycle_time_order_to_receipt(aw_facts: Any, live: Any) -> None:
    first = live.groupby("PurchaseOrderID").agg(o=("OrderDate", "first"), r=("received", "min"))
    days = [
        (datetime.combine(r, time(12)) - datetime.combine(_day(o), time(9))).total_seconds()
        / 86_400
        for o, r in zip(first["o"], first["r"], strict=True)
    ]
    result = m.cycle_times(aw_facts, m.PO_CREATED, m.FIRST_RECEIPT, negative="keep")
    assert summary(result) == stats(pd.Series(days))


@pytest.fixture(scope="module")
def standards() -> Any:
    pv = pd.read_csv(AW / "ProductVendor.csv", dtype=str)
    pv["StandardPrice"] = pv["StandardPrice"].map(Decimal)
    return pv


@pytest.mark.parametrize("specific", [False, True])
def test_purchase_price_variance(aw: Any, aw_orders: Any, standards: Any, specific: bool) -> None:
    """Against the item's lowest vendor standard, or each vendor's own where it has one."""
    lowest = standards.groupby("ProductID")["StandardPrice"].min()
    own = {
        (p, v): s
        for p, v, s in zip(
            standards["ProductID"],
            standards["BusinessEntityID"],
            standards["StandardPrice"],
            strict=False,
        )
    }
    differing = standards.groupby("ProductID")["StandardPrice"].nunique()
    assert (len(differing), int((differing > 1).sum())) == (265, 139)
    amount, base, left = Decimal(0), Decimal(0), 0
    for p, v, price, qty in zip(
        aw["ProductID"], aw["VendorID"], aw["UnitPrice"], aw["OrderQty"], strict=True
    ):
        std = own.get((p, v)) if specific else None
        std = std if std is not None else lowest.get(p)
        if std is None:
            left += 1
            continue
        amount += (price - std) * qty
        base += std * qty
    prices: dict[Any, Any] = {p: money(s, "USD") for p, s in lowest.items()}
    if specific:
        prices.update({k: money(s, "USD") for k, s in own.items()})
    result = m.purchase_price_variance(aw_orders[0], prices)
    assert result.total.amount == amount.quantize(CENT)
    assert result.total.share == pct(amount, base)
    assert dict(result.excluded).get("no standard price", 0) == left
    assert result.total.count == len(aw) - left  # the sample size: lines measured


def test_ordered_spend_by_supplier(aw_facts: Any, live: Any) -> None:
    value = live["UnitPrice"] * live["OrderQty"]
    per_vendor = value.groupby(live["VendorID"]).apply(lambda s: sum(s, Decimal(0)))
    result = m.spend(aw_facts, basis="ordered")
    assert {k[0]: v.amount for k, v in result.rows} == {
        k: v.quantize(CENT) for k, v in per_vendor.items()
    }


@pytest.mark.parametrize("late", [0, 3])
@pytest.mark.parametrize(
    "criteria",
    [("no_rejection",), ("on_time_in_full",), ("no_revision", "no_rejection", "on_time_in_full")],
)
def test_perfect_order_rate(aw_facts: Any, live: Any, late: int, criteria: tuple[str, ...]) -> None:
    clean = live["RejectedQty"] == 0
    gap = (live["received"] - live["due"]).map(lambda d: d.days)
    full = (live["ok"] >= live["OrderQty"]) & (gap <= late)
    good = (clean if "no_rejection" in criteria else True) & (
        full if "on_time_in_full" in criteria else True
    )
    per_order = good.groupby(live["PurchaseOrderID"]).all()
    result = m.perfect_order_rate(aw_facts, criteria=criteria, late_days=late)
    assert (result.total.numerator, result.total.denominator) == (
        int(per_order.sum()),
        len(per_order),
    )


@pytest.mark.parametrize("period", ["month", "quarter", "year"])
def test_otif_by_supplier_and_due_period(aw_facts: Any, live: Any, period: str) -> None:
    ok = (live["received"] <= live["due"]) & (live["ok"] >= live["OrderQty"])
    due = live["due"]
    label = {
        "month": due.map(lambda d: f"{d.year:04d}-{d.month:02d}"),
        "quarter": due.map(lambda d: f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"),
        "year": due.map(lambda d: f"{d.year:04d}"),
    }[period]
    expected = {
        (vendor, when): pct(int(s.sum()), len(s))
        for (vendor, when), s in ok.groupby([live["VendorID"], label])
    }
    result = m.otif(aw_facts, group_by=["supplier", "period"], period=period)
    assert {k: v.percent for k, v in result.rows} == expected


def test_the_documented_bpi_mapping_is_the_mapping_and_the_sample(log: Any) -> None:
    """docs/metrics.md lists every BPI activity with its milestone and its count in the sample."""
    from potrack.eventlog import BPI2019_ACTIVITIES

    page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    table = page[page.index("| activity | milestone | events in the sample | why |") :]
    documented = {}
    for row in table.splitlines()[2:]:
        if not row.startswith("|"):
            break
        activity, milestone, count = (cell.strip() for cell in row.strip("|").split("|")[:3])
        documented[activity] = (milestone.strip("`"), int(count.replace(",", "")))
    counts = dict(log.activities)
    assert documented == {a: (m_.name, counts.get(a, 0)) for a, m_ in BPI2019_ACTIVITIES.items()}
