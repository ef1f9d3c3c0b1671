"""Metrics: each KPI on hand-built examples with known answers, the edge conventions, records."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potrack import metrics as m
from potrack.approval import BusinessCalendar
from potrack.events import (
    AcceptChange,
    ProposeChange,
    ReceiveGoods,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
)
from potrack.exceptions import ValidationError
from potrack.matching import BatchMatcher, Check, Limit, Tolerance, TolerancePolicy
from potrack.metrics import (
    CANCELLED,
    CHANGE,
    CLOSED,
    FIRST_RECEIPT,
    GOODS_RECEIPT,
    INVOICE,
    LAST_PAYMENT,
    LAST_RECEIPT,
    PAYMENT,
    PO_CREATED,
    REQUISITION,
    Delivery,
    OrderFacts,
    Rate,
    Scorecard,
)
from potrack.money import money
from potrack.records import (
    ApprovalDecision,
    ApprovalState,
    ChangeProposal,
    Decision,
    LineChange,
    Route,
    RouteStep,
)
from potrack.testing.scenario import Scenario

D = Decimal


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def order(oid: str, **kw: Any) -> OrderFacts:
    events = kw.pop("events", {})
    return OrderFacts.build(oid, events=events, **kw)


# -- statistics -----------------------------------------------------------------------------------------


def test_summary_of_known_durations() -> None:
    s = m.summarize([1, 2, 3, 4, 10])
    assert (s.count, s.median, s.mean, s.p90, s.min, s.max) == (
        5,
        D("3.00"),
        D("4.00"),
        D("7.60"),  # 4 + 0.6 × (10 − 4): linear between ranks 4 and 5
        D("1.00"),
        D("10.00"),
    )
    empty = m.summarize([])
    assert (empty.count, empty.median, empty.p90) == (0, None, None)


@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=60))
def test_median_and_p90_agree_with_the_standard_library(values: list[int]) -> None:
    s = m.summarize(values)
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert s.median == D(repr(statistics.median(values))).quantize(D("0.01"))
    assert abs(s.p90 - D(repr(deciles[8]))) <= D("0.01")  # type: ignore[operator]
    assert s.min <= s.median <= s.p90 <= s.max  # type: ignore[operator]


def test_rates_say_no_data_rather_than_zero() -> None:
    assert Rate.of(0, 0).percent is None
    assert Rate.of(0, 4).percent == D("0.00")
    assert Rate.of(1, 3).percent == D("33.33")


# -- cycle times ----------------------------------------------------------------------------------------


ORDERS = [
    order("PO-1", supplier="ACME", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(5), at(9)]}),
    order("PO-2", supplier="ACME", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(4)]}),
    order("PO-3", supplier="Bolt", events={PO_CREATED: [at(3)], GOODS_RECEIPT: [at(13)]}),
    order("PO-4", supplier="Bolt", events={PO_CREATED: [at(3)]}),
    order("PO-5", supplier="Bolt", events={PO_CREATED: [at(10)], GOODS_RECEIPT: [at(8)]}),
    order("PO-6", supplier="Bolt", events={PO_CREATED: [at(2)], CANCELLED: [at(3)]}),
]


def test_cycle_time_first_and_last_receipt_with_exclusions_counted() -> None:
    first = m.cycle_times(ORDERS, PO_CREATED, FIRST_RECEIPT)
    assert (first.total.count, first.total.median, first.total.max) == (3, D("3.00"), D("10.00"))
    assert dict(first.excluded) == {
        "no first goods receipt yet": 1,
        "ends before it starts": 1,  # PO-5: a receipt stamped before its order
        "cancelled": 1,
    }
    last = m.cycle_times(ORDERS, PO_CREATED, LAST_RECEIPT)
    assert last.total.median == D("7.00")  # 2, 7, 10


def test_cycle_time_in_hours_and_grouped_by_supplier() -> None:
    result = m.cycle_times(ORDERS, PO_CREATED, FIRST_RECEIPT, unit="hours", group_by=["supplier"])
    assert result.value("ACME").median == D("60.00")  # 48 h and 72 h
    assert result.value("Bolt").count == 1
    assert result.total.unit == "hours"
    with pytest.raises(KeyError):
        result.value("Nobody")


def test_cycle_time_in_business_days_skips_weekends_and_holidays() -> None:
    friday_to_monday = order("A", events={PO_CREATED: [at(6)], GOODS_RECEIPT: [at(9)]})
    two_weeks = order("B", events={PO_CREATED: [at(2)], GOODS_RECEIPT: [at(16)]})
    plain = m.cycle_times(
        [friday_to_monday, two_weeks], PO_CREATED, FIRST_RECEIPT, calendar=BusinessCalendar()
    )
    assert sorted([plain.total.min, plain.total.max]) == [D("1.00"), D("10.00")]
    holiday = BusinessCalendar(holidays=frozenset({date(2026, 3, 9), date(2026, 3, 7)}))
    fewer = m.cycle_times([friday_to_monday], PO_CREATED, FIRST_RECEIPT, calendar=holiday)
    assert fewer.total.max == D("0.00")  # Monday the 9th is a holiday; the 7th was a Saturday
    assert fewer.total.basis == "business"


def test_cycle_time_grouped_by_period_uses_the_start() -> None:
    orders = [
        order("A", events={PO_CREATED: [at(30, month=1)], GOODS_RECEIPT: [at(2, month=2)]}),
        order("B", events={PO_CREATED: [at(2, month=2)], GOODS_RECEIPT: [at(3, month=2)]}),
    ]
    by_month = m.cycle_times(orders, PO_CREATED, FIRST_RECEIPT, group_by=["period"])
    assert [k for k, _ in by_month.rows] == [("2026-01",), ("2026-02",)]
    by_quarter = m.cycle_times(
        orders, PO_CREATED, FIRST_RECEIPT, group_by=["period"], period="quarter"
    )
    assert by_quarter.value("2026-Q1").count == 2


def test_procure_to_pay_starts_at_the_requisition_or_else_the_order() -> None:
    orders = [
        order("A", events={REQUISITION: [at(1)], PO_CREATED: [at(2)], PAYMENT: [at(20), at(31)]}),
        order("B", events={PO_CREATED: [at(10)], PAYMENT: [at(20)]}),
    ]
    result = m.procure_to_pay(orders)
    assert sorted([result.total.min, result.total.max]) == [D("10.00"), D("30.00")]
    direct = m.cycle_times(orders, REQUISITION, LAST_PAYMENT)
    assert direct.total.count == 1


def test_bad_grouping_and_units_are_refused_with_every_problem() -> None:
    with pytest.raises(ValidationError) as err:
        m.cycle_times(ORDERS, PO_CREATED, FIRST_RECEIPT, group_by=["colour", "size"], period="week")
    assert len(err.value.problems) == 3
    with pytest.raises(ValidationError):
        m.cycle_times(ORDERS, PO_CREATED, FIRST_RECEIPT, unit="minutes")


def test_approval_waits_per_step_and_per_approver() -> None:
    route = Route(
        steps=(
            RouteStep(
                step_id="mgr",
                level=1,
                approver_kind="role",
                approver_ref="approver",
                candidates=("mgr-1",),
            ),
            RouteStep(
                step_id="cfo",
                level=2,
                approver_kind="role",
                approver_ref="cfo",
                candidates=("cfo-1",),
            ),
        )
    )
    state = ApprovalState(
        route=route,
        started_at=at(2, 9),
        decisions=(
            ApprovalDecision(step_id="mgr", actor="mgr-1", decision=Decision.APPROVE, at=at(2, 13)),
            ApprovalDecision(step_id="cfo", actor="cfo-1", decision=Decision.COMMENT, at=at(3, 9)),
            ApprovalDecision(step_id="cfo", actor="cfo-1", decision=Decision.APPROVE, at=at(4, 13)),
        ),
    )
    pending = ApprovalState(route=route, started_at=at(5), decisions=())
    per_step = m.approval_cycle_times([state, pending])
    assert per_step.value("mgr").median == D("4.00")
    assert per_step.value("cfo").median == D("48.00")  # from the manager's approval, not the start
    assert dict(per_step.excluded) == {"still waiting": 2}
    per_person = m.approval_cycle_times([state], by="approver", unit="days")
    assert per_person.value("cfo-1").median == D("2.00")


# -- delivery ---------------------------------------------------------------------------------------------


def delivered(
    *receipts: tuple[int, str],
    qty: str = "100",
    due: int = 10,
    promised: int | None = None,
    rejected: str = "0",
) -> Delivery:
    return Delivery(
        order_id="PO",
        line_no=1,
        quantity=D(qty),
        requested=date(2026, 3, due),
        promised=None if promised is None else date(2026, 3, promised),
        receipts=tuple((date(2026, 3, d), D(q)) for d, q in receipts),
        rejected=D(rejected),
    )


def with_lines(oid: str, *lines: Delivery, **kw: Any) -> OrderFacts:
    return order(oid, deliveries=lines, **kw)


def test_partial_delivery_is_never_on_time_line_based_but_counts_by_quantity() -> None:
    orders = [with_lines("A", delivered((9, "60"), (12, "40")))]
    assert m.on_time_delivery(orders).total.percent == D("0.00")
    assert m.on_time_delivery(orders, weighting="quantity").total.percent == D("60.00")
    assert m.on_time_delivery(orders, late_days=2).total.percent == D("100.00")


def test_early_deliveries_by_window() -> None:
    orders = [with_lines("A", delivered((5, "100")))]
    assert m.on_time_delivery(orders).total.percent == D("100.00")  # any day early is fine
    assert m.on_time_delivery(orders, early_days=2).total.percent == D("0.00")
    assert m.on_time_delivery(orders, early_days=5).total.percent == D("100.00")


def test_promised_date_basis_falls_back_to_requested() -> None:
    late_but_promised = with_lines("A", delivered((14, "100"), promised=15))
    no_promise = with_lines("B", delivered((9, "100")))
    assert m.on_time_delivery([late_but_promised, no_promise]).total.percent == D("50.00")
    assert m.on_time_delivery([late_but_promised, no_promise], basis="promised").total.percent == D(
        "100.00"
    )


def test_no_delivery_data_is_no_data_not_zero_and_cancelled_orders_are_excluded() -> None:
    result = m.on_time_delivery(
        [order("A"), with_lines("B", delivered((9, "100")), events={CANCELLED: [at(3)]})]
    )
    assert result.total.percent is None
    assert dict(result.excluded) == {"no delivery data": 1, "cancelled": 1}


def test_on_time_by_supplier() -> None:
    orders = [
        with_lines("A", delivered((9, "100")), supplier="ACME"),
        with_lines("B", delivered((11, "100")), supplier="ACME"),
        with_lines("C", delivered((10, "100")), supplier="Bolt"),
    ]
    result = m.on_time_delivery(orders, group_by=["supplier"])
    assert result.value("ACME").percent == D("50.00")
    assert result.value("Bolt").percent == D("100.00")
    assert result.total.percent == D("66.67")


def test_otif_per_line_and_per_order() -> None:
    good = delivered((9, "100"))
    short = delivered((9, "95"))
    rejected = delivered((9, "90"), rejected="10")  # 100 received, 90 accepted
    orders = [with_lines("A", good, good), with_lines("B", good, short), with_lines("C", rejected)]
    assert m.otif(orders).total.percent == D("60.00")  # 3 of 5 lines
    assert m.otif(orders, level="order").total.percent == D("33.33")
    assert m.otif(orders, in_full_tolerance=D(5)).total.percent == D(
        "80.00"
    )  # 95 of 100 is in full


def test_perfect_orders_need_every_criterion_and_report_missing_data() -> None:
    perfect = with_lines("A", delivered((9, "100")), mismatched=False)
    revised = with_lines("B", delivered((9, "100")), mismatched=False, events={CHANGE: [at(3)]})
    mismatched = with_lines("C", delivered((9, "100")), mismatched=True)
    late = with_lines("D", delivered((12, "100")), mismatched=False)
    rejected = with_lines("E", delivered((9, "100"), rejected="1"), mismatched=False)
    unknown = with_lines("F", delivered((9, "100")))  # never matched: no data
    cancelled = with_lines(
        "G", delivered((9, "100")), mismatched=False, events={CANCELLED: [at(3)]}
    )
    result = m.perfect_order_rate(
        [perfect, revised, mismatched, late, rejected, unknown, cancelled]
    )
    assert (result.total.numerator, result.total.denominator) == (D(1), D(5))
    assert dict(result.excluded) == {"no match data": 1, "cancelled": 1}
    some = m.perfect_order_rate([perfect, revised, late], criteria=["no_revision"])
    assert some.total.percent == D("66.67")
    with pytest.raises(ValidationError):
        m.perfect_order_rate([perfect], criteria=["smiles"])


# -- invoices ---------------------------------------------------------------------------------------------


def test_first_pass_match_rate_touchless_rate_and_exceptions_from_match_results() -> None:
    s = Scenario()
    po = s.issued_po(amount="10.00", quantity="100", lines=2)
    exact = TolerancePolicy(
        tolerances=(
            Tolerance(Check.UNIT_PRICE, upper=Limit(amount=D(0))),
            Tolerance(Check.QUANTITY_RECEIVED, upper=Limit(amount=D(0))),
        )
    )
    batch = BatchMatcher({po.id: po}, exact)
    results = []
    results += batch.feed(s.receipt(po, "50", 1))
    ok = s.invoice(po, "50", line=1)
    early = s.invoice(po, "40", line=2)  # ahead of its goods: waits, then released
    dear = s.invoice(po, "10", "10.50", line=1)  # 5 % too dear: held
    for inv in (ok, early, dear):
        results += batch.feed(inv)
    results += batch.feed(s.receipt(po, "60", 1))
    results += batch.feed(s.receipt(po, "40", 2))
    rate = m.invoice_match_rate(results)
    assert (rate.total.numerator, rate.total.denominator) == (D(1), D(3))
    notes = dict(rate.notes)
    assert notes["touchless rate %"] == "66.67"  # the early one released itself
    assert (
        notes["exceptions: quantity_received"] == "2"
    )  # the early one, and the dear one (60 of 50)
    assert notes["exceptions: price"] == "1"
    suppliers = {r.invoice_id: "ACME" for r in results}
    by_supplier = m.invoice_match_rate(results, group_by=["supplier"], suppliers=suppliers)
    assert by_supplier.value("ACME").percent == D("33.33")


def test_invoice_price_variance_sign_and_weighting() -> None:
    s = Scenario()
    po = s.issued_po(amount="10.00", quantity="100")
    inv = s.invoice(po, "100", "10.20")
    result = m.invoice_price_variance([inv], {po.id: po})
    assert (result.total.amount, result.total.share) == (D("20.00"), D("2.00"))


def test_purchase_price_variance_against_standard_prices() -> None:
    s = Scenario()
    po = s.issued_po(amount="45.5805", quantity="100")
    item = po.lines[0].item
    assert item is not None
    result = m.purchase_price_variance([po], {item: money("45.00", "USD")})
    assert (result.total.amount, result.total.share) == (D("58.05"), D("1.29"))
    skipped = m.purchase_price_variance([po], {})
    assert dict(skipped.excluded) == {"no standard price": 1}


# -- spend ------------------------------------------------------------------------------------------------


SPEND = [
    order(
        "A",
        supplier="ACME",
        category="steel",
        currency="EUR",
        value=D(600),
        invoiced=D(500),
        events={INVOICE: [at(3)]},
    ),
    order(
        "B",
        supplier="Bolt",
        category="steel",
        currency="EUR",
        value=D(300),
        invoiced=D(300),
        events={INVOICE: [at(3)]},
    ),
    order(
        "C",
        supplier="Cask",
        category="paint",
        currency="EUR",
        value=D(200),
        invoiced=D(200),
        events={INVOICE: [at(3)]},
    ),
]


def test_spend_shares_and_concentration() -> None:
    by_supplier = m.spend(SPEND)
    assert [(k[0], v.share) for k, v in by_supplier.rows] == [
        ("ACME", D("50.00")),
        ("Bolt", D("30.00")),
        ("Cask", D("20.00")),
    ]
    conc = m.concentration(by_supplier, top=2)
    assert dict(conc.notes)["HHI"] == "3800.00"  # 50² + 30² + 20²
    assert conc.value("top").share == D("80.00")
    assert m.spend(SPEND, group_by=["category"]).value("steel").amount == D("800.00")
    assert m.spend(SPEND, basis="ordered").total.amount == D("1100.00")


def test_spend_refuses_mixed_currencies() -> None:
    with pytest.raises(ValidationError, match="convert the facts to one currency"):
        m.spend([*SPEND, order("D", currency="USD", invoiced=D(1))])


def test_committed_spend_is_open_value_of_open_orders() -> None:
    orders = [
        order("A", budget="B1", currency="EUR", value=D(1000), invoiced=D(400)),
        order("B", budget="B1", currency="EUR", value=D(100), invoiced=D(150)),  # over-invoiced
        order(
            "C", budget="B2", currency="EUR", value=D(50), invoiced=D(0), events={CLOSED: [at(9)]}
        ),
        order("D", budget="B2", currency="EUR", value=D(70), invoiced=D(0)),
    ]
    result = m.committed_spend(orders, group_by=["budget"])
    assert result.value("B1").amount == D("600.00")
    assert result.value("B2").amount == D("70.00")
    assert dict(result.excluded) == {"fully invoiced": 1, "cancelled or closed": 1}


def test_maverick_share_counts_invoices_without_a_po() -> None:
    orders = [
        order("A", currency="EUR", invoiced=D(900)),
        order("INV-9", currency="EUR", invoiced=D(100), has_po=False),
    ]
    assert m.maverick_share(orders).total.percent == D("10.00")


# -- scorecard and comparison -------------------------------------------------------------------------------


def test_scorecard_weights_must_sum_to_100() -> None:
    with pytest.raises(ValidationError, match="must sum to 100"):
        Scorecard({"on_time": D(60), "quality": D(30)})
    with pytest.raises(ValidationError, match="start at 0"):
        Scorecard({"q": D(100)}, bands=((D(10), "x"),))


def test_scorecard_standings_and_trend() -> None:
    card = Scorecard({"on_time": D(50), "quality": D(30), "price": D(20)})
    result = card.over_periods(
        {
            "2026-Q1": {"ACME": {"on_time": D(40), "quality": D(20), "price": D(10)}},
            "2026-Q2": {"ACME": {"on_time": D(90), "quality": D(80), "price": D(70)}},
        }
    )
    assert result.rows == (
        ("ACME", "2026-Q1", D("28.00"), "Very Poor"),
        ("ACME", "2026-Q2", D("83.00"), "Excellent"),
    )
    assert result.trend("ACME") == (("2026-Q1", D("28.00")), ("2026-Q2", D("83.00")))
    with pytest.raises(ValidationError, match="outside 0–100"):
        card.score({"ACME": {"on_time": D(120)}})


def test_before_and_after_comparison() -> None:
    before = m.cycle_times(ORDERS[:2], PO_CREATED, FIRST_RECEIPT, group_by=["supplier"])
    after = m.cycle_times(ORDERS[2:3], PO_CREATED, FIRST_RECEIPT, group_by=["supplier"])
    diff = m.compare(before, after)
    rows = {r[0]: r[1:] for r in diff.rows}
    assert rows[("ACME",)] == (D("2.50"), None, None)
    assert rows[("*",)] == (D("2.50"), D("10.00"), D("7.50"))
    with pytest.raises(ValidationError):
        m.compare(before, m.on_time_delivery([]))


# -- outputs ---------------------------------------------------------------------------------------------


def test_rows_tables_and_dataframes() -> None:
    result = m.cycle_times(ORDERS, PO_CREATED, FIRST_RECEIPT, group_by=["supplier"])
    rows = result.to_rows()
    assert [r["supplier"] for r in rows] == ["ACME", "Bolt", "*"]
    assert rows[0]["median"] == D("2.50")
    table = result.table("de_DE")
    assert "ACME" in table and "2,50" in table
    pd = pytest.importorskip("pandas")
    frame = result.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert frame.loc[frame["supplier"] == "ACME", "median"].item() == 2.5
    pl = pytest.importorskip("polars")
    assert result.to_dataframe("polars").height == 3
    assert pl is not None
    with pytest.raises(ValueError, match="pandas' or 'polars"):
        result.to_dataframe("excel")


def test_no_data_shows_as_no_data_in_tables() -> None:
    table = m.on_time_delivery([order("A")]).table()
    assert "no data" in table


def test_plots_draw_the_kpis() -> None:
    pytest.importorskip("matplotlib")
    from potrack import plots

    fig = plots.cycle_time_distribution(ORDERS, PO_CREATED, FIRST_RECEIPT)
    assert fig.axes[0].get_title().startswith("cycle time: PO created")
    trend = m.on_time_delivery(
        [with_lines("A", delivered((9, "100"))), with_lines("B", delivered((12, "100")))],
        group_by=["period"],
    )
    assert len(plots.on_time_trend(trend).axes[0].lines) == 1
    pareto = plots.spend_concentration(m.spend(SPEND))
    assert len(pareto.axes[0].patches) == 3
    with pytest.raises(ValidationError):
        plots.on_time_trend(m.spend(SPEND))


# -- from potrack's records ----------------------------------------------------------------------------------


def test_orders_from_records_give_the_lifecycle_milestones_and_deliveries() -> None:
    s = Scenario()
    records = []
    draft = s.lifecycle.create(
        s.po_document(lines=1, quantity="100", amount="10.00"),
        s.buyer,
        s.at(0),
    )
    records.append(draft.record)

    def go(po: Any, event: Any, actor: Any, day: float) -> Any:
        done = s.applied(po, event, actor, day)
        records.append(done.record)
        return done.document

    from potrack.approval import active_steps, step_candidates
    from potrack.events import Issue, RecordDecision, SubmitForApproval

    po = go(draft.document, SubmitForApproval(), s.buyer, 0.5)
    while active_steps(po.approval):
        step = active_steps(po.approval)[0]
        who = step_candidates(po.approval, step)[0]
        decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
        po = go(po, decision, s.actor(who), 1)
    po = go(po, Issue(number=s.number_for(po)), s.buyer, 2)
    receipts = [s.receipt(po, "60", days=8), s.receipt(po, "40", days=12)]
    for r, day in zip(receipts, (8, 12), strict=True):
        po = go(po, ReceiveGoods(receipt=r), s.receiver, day)
    inv = s.invoice(po, "100")
    po = go(po, RecordInvoice(invoice=inv), s.clerk, 13)
    po = go(
        po,
        RecordMatch(invoice_id=inv.id),
        s.clerk,
        13,
    )
    po = go(po, RecordPayment(payment=s.payment(po, inv.id, "1000.00")), s.treasurer, 40)
    assert po.state.value == "closed"

    (facts,) = m.orders_from_records([po], records, receipts)
    assert facts.first[PO_CREATED] == s.at(0)
    assert facts.first[m.APPROVED] == s.at(1)
    assert facts.first[m.ISSUED] == s.at(2)
    assert facts.counts[GOODS_RECEIPT] == 2
    assert facts.last[CLOSED] == s.at(40)
    assert facts.invoiced == D("1000.00")
    (line,) = facts.deliveries
    assert line.receipts == ((s.at(8).date(), D(60)), (s.at(12).date(), D(40)))
    assert m.cycle_times([facts], PO_CREATED, CLOSED).total.median == D("40.00")
    # Complete on day 12; the scenario's lines are requested for day 14: on time.
    assert line.requested == s.at(14).date()
    assert m.on_time_delivery([facts]).total.percent == D("100.00")
    assert m.committed_spend([facts]).total.amount == D("0.00")


def test_a_change_order_is_a_revision_for_the_perfect_order_rate() -> None:
    s = Scenario()
    po = s.issued_po(amount="10.00", quantity="100")
    proposal = ChangeProposal(
        id="CP-1",
        po_id=po.id,
        proposed_by="acme-sales",
        at=s.at(1),
        changes=(LineChange(line_no=1, quantity=D(90)),),
        reason="short of stock",
    )
    changed = s.lifecycle.apply(po, ProposeChange(proposal=proposal), s.supplier_user, s.at(1))
    accepted = s.lifecycle.apply(
        changed.document, AcceptChange(proposal_id="CP-1"), s.buyer, s.at(2)
    )
    (facts,) = m.orders_from_records([accepted.document], [changed.record, accepted.record])
    assert facts.counts[CHANGE] == 1
    result = m.perfect_order_rate([facts], criteria=["no_revision"])
    assert result.total.percent == D("0.00")
