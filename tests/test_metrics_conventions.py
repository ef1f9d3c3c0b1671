"""KPI conventions and the defects of issue 26: each test states a case today's code got wrong."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from potrack import metrics as m
from potrack.eventlog import BPI2019, Event, LogFormat, fold_events, read_event_log
from potrack.exceptions import ValidationError
from potrack.metrics import (
    FIRST_RECEIPT,
    GOODS_RECEIPT,
    PO_CREATED,
    Delivery,
    OrderFacts,
    Scorecard,
)
from potrack.money import money
from potrack.records import (
    ApprovalDecision,
    ApprovalState,
    Decision,
    GoodsReceipt,
    ReceiptLine,
    Route,
    RouteStep,
)
from potrack.testing.scenario import Scenario

D = Decimal


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def line(
    *receipts: tuple[int, str], qty: str = "100", due: int = 10, rejected: str = "0"
) -> Delivery:
    return Delivery(
        order_id="PO",
        line_no=1,
        quantity=D(qty),
        requested=date(2026, 3, due),
        promised=None,
        receipts=tuple((date(2026, 3, d), D(q)) for d, q in receipts),
        rejected=D(rejected),
    )


# -- OTIF -------------------------------------------------------------------------------------------------


def test_otif_does_not_subtract_rejected_quantity_twice() -> None:
    # 100 ordered, 100 received of which 6 rejected: the receipt holds the 94 accepted.
    facts = [OrderFacts.build("PO-1", deliveries=(line((9, "94"), rejected="6"),))]
    assert m.otif(facts, in_full_tolerance=D(10)).total.percent == D("100.00")
    assert m.otif(facts, in_full_tolerance=D(5)).total.percent == D("0.00")


# -- negative intervals -----------------------------------------------------------------------------------

BACKWARDS = [
    OrderFacts.build("A", events={PO_CREATED: [at(5)], GOODS_RECEIPT: [at(3)]}),  # −2 days
    OrderFacts.build("B", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(6)]}),  # 4 days
    OrderFacts.build("C", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(3)]}),  # 1 day
]


def test_negative_intervals_are_excluded_and_counted_by_default() -> None:
    result = m.cycle_times(BACKWARDS, PO_CREATED, FIRST_RECEIPT)
    assert (result.total.count, result.total.median, result.total.negatives) == (2, D("2.50"), 0)
    assert dict(result.excluded) == {"ends before it starts": 1}
    assert dict(result.notes)["negative intervals"] == "exclude: 1 left out"


def test_negative_intervals_kept_or_clipped_on_request() -> None:
    kept = m.cycle_times(BACKWARDS, PO_CREATED, FIRST_RECEIPT, negative="keep")
    assert (kept.total.count, kept.total.median, kept.total.min) == (3, D("1.00"), D("-2.00"))
    assert kept.total.negatives == 1 and kept.excluded == ()
    assert dict(kept.notes)["negative intervals"] == "keep: 1 kept as negative durations"
    clipped = m.cycle_times(BACKWARDS, PO_CREATED, FIRST_RECEIPT, negative="clip")
    assert (clipped.total.count, clipped.total.min, clipped.total.negatives) == (3, D("0.00"), 1)
    assert dict(clipped.notes)["negative intervals"] == "clip: 1 counted as 0"
    p2p = m.procure_to_pay(BACKWARDS, negative="keep")
    assert p2p.excluded == (("no last payment yet", 3),)


def test_an_unknown_negative_option_is_refused() -> None:
    with pytest.raises(ValidationError, match="'exclude', 'keep' or 'clip'"):
        m.cycle_times(BACKWARDS, PO_CREATED, FIRST_RECEIPT, negative="drop")


def _approval_decided_before_it_opened() -> ApprovalState:
    route = Route(
        steps=(
            RouteStep(
                step_id="mgr",
                level=1,
                approver_kind="role",
                approver_ref="approver",
                candidates=("mgr-1",),
            ),
        )
    )
    # Decided an hour before the route started: a clock skew between systems.
    return ApprovalState(
        route=route,
        started_at=at(2, 10),
        decisions=(
            ApprovalDecision(step_id="mgr", actor="mgr-1", decision=Decision.APPROVE, at=at(2, 9)),
        ),
    )


def test_approval_waits_treat_negative_waits_like_cycle_times() -> None:
    state = _approval_decided_before_it_opened()
    default = m.approval_cycle_times([state])
    assert default.total.count == 0 and dict(default.excluded) == {"ends before it starts": 1}
    assert m.approval_cycle_times([state], negative="keep").total.median == D("-1.00")
    clipped = m.approval_cycle_times([state], negative="clip").total
    assert (clipped.median, clipped.negatives) == (D("0.00"), 1)


# -- no data is not a number ------------------------------------------------------------------------------


def test_concentration_without_suppliers_is_no_data() -> None:
    facts = [OrderFacts.build(f"PO-{i}", currency="EUR", invoiced=D(100)) for i in range(3)]
    result = m.concentration(m.spend(facts, group_by=("supplier",)))
    notes = dict(result.notes)
    assert (notes["HHI"], notes["suppliers"]) == ("no data", "0")
    assert result.value("top").share is None
    assert dict(result.excluded) == {"no supplier": 3}
    assert "no supplier" in result.no_data


def test_concentration_leaves_out_spend_without_a_supplier() -> None:
    facts = [
        OrderFacts.build("PO-1", supplier="ACME", currency="EUR", invoiced=D(60)),
        OrderFacts.build("PO-2", supplier="Bolt", currency="EUR", invoiced=D(40)),
        OrderFacts.build("PO-3", currency="EUR", invoiced=D(100)),
    ]
    result = m.concentration(m.spend(facts, group_by=("supplier",)), top=1)
    assert dict(result.notes)["HHI"] == "5200.00"  # 60² + 40², of the spend with a supplier
    assert result.value("top").share == D("60.00")
    assert dict(result.excluded) == {"no supplier": 1}


def test_scorecard_flags_missing_criteria_and_accepts_none() -> None:
    card = Scorecard({"on_time": D(60), "quality": D(40)})
    result = card.score(
        {
            "ACME": {"on_time": D(90), "quality": None},
            "Bolt": {"on_time": m.Rate.of(7, 10)},
            "Core": {},
        }
    )
    rows = {r.supplier: r for r in result.scores}
    assert rows["ACME"].missing == ("quality",) and rows["ACME"].score == D("54.00")
    assert rows["Bolt"].missing == ("quality",) and rows["Bolt"].n == 10
    assert rows["Bolt"].score == D("42.00")
    assert rows["Core"].score is None and rows["Core"].standing == "no data"
    reweighted = card.score({"ACME": {"on_time": D(90), "quality": None}}, missing="reweight")
    assert reweighted.scores[0].score == D("90.00")
    # The old four-column rows stay as they were for existing callers.
    assert result.rows[0] == ("ACME", "", D("54.00"), "Average")


def test_a_match_rate_over_no_invoices_is_no_data_in_its_notes_too() -> None:
    result = m.invoice_match_rate([])
    assert result.total.percent is None
    assert dict(result.notes)["touchless rate %"] == "no data"
    assert result.no_data == "no data: nothing to measure"


def test_kpi_results_say_why_they_have_no_data() -> None:
    result = m.on_time_delivery([OrderFacts.build("PO-1")])
    assert result.total.percent is None
    assert result.no_data == "no data: 1 left out (no delivery data 1)"
    measured = m.on_time_delivery([OrderFacts.build("PO-1", deliveries=(line((9, "100")),))])
    assert measured.no_data == ""


# -- time zones -------------------------------------------------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


def _late_evening_receipt(s: Scenario) -> tuple[Any, GoodsReceipt]:
    po = s.issued_po(quantity="100")
    evening = datetime(2026, 3, 10, 20, tzinfo=timezone(timedelta(hours=-5)))
    receipt = GoodsReceipt(
        id="GR-TZ",
        po_id=po.id,
        received_at=evening,
        received_by="receiver",
        lines=(ReceiptLine(line_no=1, received=D(100)),),
    )
    return po, receipt


def test_a_receipt_day_is_its_local_day_not_utc() -> None:
    s = Scenario()
    po, receipt = _late_evening_receipt(s)
    po = m_evolve_due(po, date(2026, 3, 10))
    (facts,) = m.orders_from_records([po], [], [receipt])
    assert facts.deliveries[0].receipts[0][0] == date(2026, 3, 10)
    assert m.on_time_delivery([facts]).total.percent == D("100.00")
    (in_utc,) = m.orders_from_records([po], [], [receipt], tz=UTC)
    assert m.on_time_delivery([in_utc]).total.percent == D("0.00")


def m_evolve_due(po: Any, due: date) -> Any:
    import attrs

    return attrs.evolve(po, lines=tuple(attrs.evolve(ln, requested_date=due) for ln in po.lines))


def test_periods_follow_the_same_zone_rule_as_due_dates() -> None:
    evening = datetime(2026, 3, 31, 20, tzinfo=timezone(timedelta(hours=-5)))  # 1 April in UTC
    facts = [
        OrderFacts.build(
            "PO-1", events={PO_CREATED: [evening], GOODS_RECEIPT: [evening + timedelta(days=1)]}
        )
    ]
    local = m.cycle_times(facts, PO_CREATED, FIRST_RECEIPT, group_by=["period"])
    assert [k for k, _ in local.rows] == [("2026-03",)]
    utc = m.cycle_times(facts, PO_CREATED, FIRST_RECEIPT, group_by=["period"], tz=UTC)
    assert [k for k, _ in utc.rows] == [("2026-04",)]
    ny = m.cycle_times(facts, PO_CREATED, FIRST_RECEIPT, group_by=["period"], tz=NEW_YORK)
    assert [k for k, _ in ny.rows] == [("2026-03",)]


def test_naive_and_aware_timestamps_are_refused_with_a_typed_error() -> None:
    with pytest.raises(ValidationError, match="naive"):
        OrderFacts.build("PO-1", events={PO_CREATED: [datetime(2026, 3, 2, 9)]})
    mixed = OrderFacts(
        "PO-2",
        first=tuple(
            datetime(2026, 3, 2) if i == PO_CREATED else at(5) if i == GOODS_RECEIPT else None
            for i in range(len(m.Milestone))
        ),
        last=(None,) * len(m.Milestone),
        counts=(0,) * len(m.Milestone),
    )
    with pytest.raises(ValidationError, match="PO-2"):
        m.cycle_times([mixed], PO_CREATED, FIRST_RECEIPT)
    s = Scenario()
    po = s.issued_po()
    with pytest.raises(ValidationError, match="naive"):
        m.orders_from_records([po], [], requisitions={"PR-1": datetime(2026, 3, 1)})


def test_a_naive_moment_is_never_read_in_the_machine_zone() -> None:
    naive = OrderFacts(
        "PO-3",
        first=tuple(
            datetime(2026, 3, 31, 23) if i in (PO_CREATED, GOODS_RECEIPT) else None
            for i in range(len(m.Milestone))
        ),
        last=(None,) * len(m.Milestone),
        counts=(0,) * len(m.Milestone),
    )
    with pytest.raises(ValidationError, match="PO-3"):
        m.cycle_times([naive], PO_CREATED, FIRST_RECEIPT, group_by=["period"], tz=NEW_YORK)


# -- records without lifecycle history --------------------------------------------------------------------


def test_orders_from_records_use_receipts_imported_without_history() -> None:
    s = Scenario()
    po = s.issued_po(quantity="100")
    receipt = s.receipt(po, "100", days=4)
    (facts,) = m.orders_from_records([po], [], [receipt])
    assert facts.counts[GOODS_RECEIPT] == 1 and facts.first[GOODS_RECEIPT] == s.at(4)
    result = m.cycle_times([facts], PO_CREATED, FIRST_RECEIPT)
    assert result.total.count == 1 and result.excluded == ()
    assert m.on_time_delivery([facts]).total.percent == D("100.00")


def test_orders_from_records_use_invoices_imported_without_history() -> None:
    s = Scenario()
    po = s.issued_po(amount="10.00", quantity="100")
    invoice = s.invoice(po, "60")  # dated day 12 of the scenario
    (facts,) = m.orders_from_records([po], [], [s.receipt(po, "100", days=4)], invoices=[invoice])
    assert facts.counts[m.INVOICE] == 1
    assert facts.first[m.INVOICE] == datetime.combine(s.at(12).date(), datetime.min.time(), UTC)
    assert facts.invoiced == D("600.00")
    assert m.committed_spend([facts]).total.amount == D("400.00")
    billed = datetime.combine(s.at(12).date(), datetime.min.time(), UTC)
    days = D((billed - s.at(4)).total_seconds()) / D(86_400)
    assert m.cycle_times([facts], FIRST_RECEIPT, m.FIRST_INVOICE).total.median == days.quantize(
        D("0.01")
    )


# -- the BPI mapping --------------------------------------------------------------------------------------

MINI = LogFormat(name="mini", case="case", activity="activity", timestamp="time", value="worth")


def _read(text: str, fmt: LogFormat = MINI) -> Any:
    return read_event_log(io.StringIO(text), fmt)


def test_srm_deleted_is_not_a_cancellation() -> None:
    log = _read(
        "case,activity,time,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "A,SRM: Deleted,2019-01-08 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
    )
    (case,) = log.cases
    assert not case.cancelled
    assert m.cycle_times(log.cases, PO_CREATED, FIRST_RECEIPT).total.count == 1
    assert m.committed_spend(log.cases).total.amount == D("100.00")


def test_a_deleted_item_reactivated_later_is_not_cancelled() -> None:
    log = _read(
        "case,activity,time,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "A,Delete Purchase Order Item,2019-01-08 10:00:00+00:00,100\n"
        "A,Reactivate Purchase Order Item,2019-01-09 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
        "B,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "B,Reactivate Purchase Order Item,2019-01-08 10:00:00+00:00,100\n"
        "B,Delete Purchase Order Item,2019-01-09 10:00:00+00:00,100\n"
    )
    a, b = log.cases
    assert (a.cancelled, b.cancelled) == (False, True)


def test_a_service_entry_sheet_with_its_goods_receipt_is_one_receipt() -> None:
    log = _read(
        "case,activity,time,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
        "A,Record Service Entry Sheet,2019-01-11 10:00:00+00:00,100\n"
        "B,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "B,Record Service Entry Sheet,2019-01-10 10:00:00+00:00,100\n"
        "B,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
    )
    a, b = log.cases
    assert (a.counts[GOODS_RECEIPT], b.counts[GOODS_RECEIPT]) == (1, 2)
    repeated = log.finding("repeated goods receipts")
    assert repeated is not None and (repeated.count, repeated.examples) == (1, ("B",))


def test_the_service_entry_rule_does_not_depend_on_the_order_of_events() -> None:
    t = datetime(2019, 1, 11, 10, tzinfo=UTC)
    events = [
        Event("A", "Record Service Entry Sheet", t),
        Event("A", "Record Goods Receipt", t),
        Event("A", "Record Service Entry Sheet", t + timedelta(days=1)),
    ]
    counts = {
        fold_events(order, BPI2019).cases[0].counts[GOODS_RECEIPT]
        for order in (events, events[::-1], events[1:] + events[:1])
    }
    assert counts == {2}


# -- the importer's row accounting ------------------------------------------------------------------------


def test_exact_duplicate_rows_are_dropped_and_reported() -> None:
    log = _read(
        "case,activity,time,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
        "A,Record Goods Receipt,2019-01-11 10:00:00+00:00,100\n"
    )
    assert (log.events, log.duplicate_rows, log.skipped_rows, log.problem_rows) == (2, 2, 0, 0)
    dup = log.finding("duplicate row")
    assert dup is not None and dup.examples == ("line 4", "line 5")
    assert log.cases[0].counts[GOODS_RECEIPT] == 1


def test_duplicates_are_found_whatever_the_line_endings_and_quoting() -> None:
    log = _read(
        "case,activity,time,worth\r\n"
        'A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,"1,00"\r\n'
        'A,"Record Goods\nReceipt",2019-01-11 10:00:00+00:00,100\r\n'
        'A,"Record Goods\nReceipt",2019-01-11 10:00:00+00:00,100\r\n'
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\r\n"
        'A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,"1,00"'
    )
    # Two rows repeat an earlier one (one spans two lines, one ends the file without a newline);
    # a row differing in one field is no duplicate.
    assert (log.events, log.duplicate_rows) == (3, 2)
    assert log.finding("duplicate row").examples == ("line 4", "line 6")


def test_a_row_lacking_only_an_unused_trailing_column_is_kept() -> None:
    log = _read(
        "case,activity,time,worth,note\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,100\n"
        "A,Record Goods Receipt\n"
    )
    assert (log.events, log.skipped_rows, log.problem_rows) == (1, 1, 1)
    kept = log.finding("short row, unused columns missing")
    assert kept is not None and kept.examples == ("line 2",) and "kept" in kept.detail
    skipped = log.finding("short row")
    assert skipped is not None and skipped.examples == ("line 3",) and "skipped" in skipped.detail


def test_rows_kept_with_an_unreadable_value_are_not_reported_as_skipped() -> None:
    log = _read(
        "case,activity,time,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,lots\n"
        "A,Record Goods Receipt,2019-01-08 10:00:00+00:00,n/a\n"
    )
    assert (log.events, log.skipped_rows, log.problem_rows) == (2, 0, 2)
    found = log.finding("unreadable value")
    assert found is not None and found.count == 2 and found.detail.startswith("rows kept")


# -- new KPIs ---------------------------------------------------------------------------------------------


def test_rejection_rate_and_order_accuracy() -> None:
    facts = [
        OrderFacts.build(
            "A", deliveries=(line((9, "94"), rejected="6"), line((9, "50"), qty="50"))
        ),
        OrderFacts.build("B", deliveries=(line((9, "100")),)),
        OrderFacts.build("C", deliveries=(line(),)),  # nothing received yet
    ]
    rejected = m.rejection_rate(facts)
    assert (rejected.total.numerator, rejected.total.denominator) == (D(6), D(250))
    assert rejected.total.percent == D("2.40")
    accuracy = m.order_accuracy(facts)
    assert (accuracy.total.numerator, accuracy.total.denominator) == (D(1), D(2))
    assert dict(accuracy.excluded) == {"nothing received": 1}


def test_on_time_by_date_only_ignores_the_quantity() -> None:
    facts = [OrderFacts.build("A", deliveries=(line((9, "60"), (12, "40")),))]
    assert m.on_time_delivery(facts).total.percent == D("0.00")
    assert m.on_time_delivery(facts, weighting="date").total.percent == D("100.00")
    late_start = [OrderFacts.build("B", deliveries=(line((11, "100")),))]
    assert m.on_time_delivery(late_start, weighting="date").total.percent == D("0.00")


def test_purchase_price_variance_with_supplier_specific_standards() -> None:
    s = Scenario()
    po = s.issued_po(amount="10.00", quantity="100", supplier="S-ACME")
    item = po.lines[0].item
    assert item
    general = {item: money("9.00", po.currency)}
    specific = {item: money("9.00", po.currency), (item, "S-ACME"): money("10.50", po.currency)}
    assert m.purchase_price_variance([po], general).total.amount == D("100.00")
    assert m.purchase_price_variance([po], specific).total.amount == D("-50.00")
