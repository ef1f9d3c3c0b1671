"""KPIs do not depend on the order of the events, nor on reading a log in parts and merging."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack import metrics as m
from potrack.eventlog import fold_events, merge_logs
from potrack.exceptions import ValidationError
from potrack.metrics import Delivery, OrderFacts
from potrack.testing.synth import Synth

LOG = list(Synth(11).events(150))
CONVENTIONS = ("exclude", "keep", "clip")


def kpis(cases: Any, negative: str) -> dict[str, m.KpiResult]:
    facts = list(cases)
    out = m.standard_kpis(facts, group_by=["supplier"], negative=negative)
    out["by period"] = m.cycle_times(
        facts, m.PO_CREATED, m.FIRST_RECEIPT, group_by=["period"], negative=negative
    )
    return out


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(CONVENTIONS))
def test_kpis_do_not_depend_on_the_order_of_events(rnd: random.Random, negative: str) -> None:
    shuffled = LOG[:]
    rnd.shuffle(shuffled)
    assert kpis(fold_events(shuffled).cases, negative) == kpis(fold_events(LOG).cases, negative)


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(CONVENTIONS))
def test_kpis_of_a_log_read_in_two_parts_and_merged_equal_the_whole(
    rnd: random.Random, negative: str
) -> None:
    part_of = {case: rnd.random() < 0.5 for case in {e.case for e in LOG}}
    first = fold_events([e for e in LOG if part_of[e.case]])
    second = fold_events([e for e in LOG if not part_of[e.case]])
    whole = fold_events(LOG)
    merged = merge_logs(first, second)
    assert kpis(merged.cases, negative) == kpis(whole.cases, negative)
    assert merged.events == whole.events
    assert dict(merged.activities) == dict(whole.activities)
    assert {f.kind: (f.count, f.examples) for f in merged.quality} == {
        f.kind: (f.count, f.examples) for f in whole.quality
    }


def test_merging_refuses_a_case_in_both_parts() -> None:
    case = LOG[0].case
    mine = [e for e in LOG if e.case == case]
    assert len(mine) > 1
    with pytest.raises(ValidationError, match="1 cases in more than one log"):
        merge_logs(fold_events(mine[:1]), fold_events(LOG[1:]))


# -- quantity KPIs: shuffled facts, and rates over two halves add up ---------------------------------------

quantities = st.integers(min_value=0, max_value=120).map(Decimal)


@st.composite
def deliveries(draw: Any) -> Delivery:
    ordered = draw(st.integers(min_value=1, max_value=100))
    due = date(2026, 3, 1) + timedelta(days=draw(st.integers(min_value=0, max_value=60)))
    receipts = draw(
        st.lists(
            st.tuples(st.integers(min_value=-10, max_value=10), quantities), min_size=0, max_size=3
        )
    )
    return Delivery(
        order_id="PO",
        line_no=1,
        quantity=Decimal(ordered),
        requested=due,
        promised=None,
        receipts=tuple((due + timedelta(days=d), q) for d, q in receipts),
        rejected=draw(quantities),
    )


@st.composite
def orders(draw: Any) -> list[OrderFacts]:
    n = draw(st.integers(min_value=1, max_value=12))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        OrderFacts.build(
            f"PO-{i}",
            events={m.PO_CREATED: [start + timedelta(days=draw(st.integers(0, 120)))]},
            supplier=draw(st.sampled_from(["ACME", "Bolt", ""])),
            deliveries=tuple(draw(st.lists(deliveries(), min_size=0, max_size=3))),
        )
        for i in range(n)
    ]


RATE_KPIS = {
    "otif": lambda f: m.otif(f, in_full_tolerance=Decimal(5)),
    "otif per order": lambda f: m.otif(f, level="order"),
    "on time": m.on_time_delivery,
    "on time by quantity": lambda f: m.on_time_delivery(f, weighting="quantity"),
    "on time by date": lambda f: m.on_time_delivery(f, weighting="date", early_days=3),
    "rejection rate": m.rejection_rate,
    "order accuracy": m.order_accuracy,
}


@settings(max_examples=60, deadline=None)
@given(orders(), st.randoms(use_true_random=False))
def test_rate_kpis_are_order_free_and_add_up_over_parts(
    facts: list[OrderFacts], rnd: random.Random
) -> None:
    shuffled = facts[:]
    rnd.shuffle(shuffled)
    cut = rnd.randint(0, len(facts))
    for name, kpi in RATE_KPIS.items():
        whole = kpi(facts)
        assert kpi(shuffled) == whole, name
        a, b = kpi(shuffled[:cut]).total, kpi(shuffled[cut:]).total
        merged = m.Rate.of(a.numerator + b.numerator, a.denominator + b.denominator)
        assert merged == whole.total, name
