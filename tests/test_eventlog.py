"""Event logs: the BPI 2019 sample against its README and independent computations, quirks."""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack import metrics as m
from potrack.eventlog import BPI2019, Event, LogFormat, fold_events, read_event_log
from potrack.exceptions import ValidationError
from potrack.records import MatchLevel
from potrack.testing.synth import Synth
from tests.conftest import ROOT

SAMPLE = ROOT.parent / "shared" / "data" / "bpi2019" / "BPI_Challenge_2019_sample.csv"
needs_sample = pytest.mark.skipif(
    not SAMPLE.exists(), reason="../shared/data is not beside the clone"
)


@pytest.fixture(scope="module")
def bpi() -> m.KpiResult:
    return read_event_log(SAMPLE)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def raw() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# -- the BPI sample: its README's figures ---------------------------------------------------------------


@needs_sample
def test_bpi_sample_counts_equal_its_readme(bpi) -> None:  # type: ignore[no-untyped-def]
    assert (len(bpi.cases), bpi.events, len(bpi.activities)) == (1000, 6567, 32)
    assert dict(bpi.flows) == {
        "3-way match, invoice before GR": 879,
        "3-way match, invoice after GR": 63,
        "Consignment": 54,
        "2-way match": 4,
    }
    top = dict(bpi.activities)
    assert (top["Record Goods Receipt"], top["Record Invoice Receipt"], top["Clear Invoice"]) == (
        1382,
        1036,
        799,
    )
    assert bpi.skipped_rows == 0
    levels = Counter(c.match_level for c in bpi.cases)
    assert levels[MatchLevel.THREE_WAY] == 942 and levels[MatchLevel.TWO_WAY] == 4
    assert levels[None] == 54  # consignment


@needs_sample
def test_bpi_quirks_are_reported_not_dropped(bpi, raw) -> None:  # type: ignore[no-untyped-def]
    # Independently: cases whose first receipt is stamped before the PO item's creation.
    created: dict[str, str] = {}
    first_gr: dict[str, str] = {}
    for row in raw:
        case, act, ts = (
            row["case_concept_name"],
            row["event_concept_name"],
            row["event_time_timestamp"],
        )
        if act == "Create Purchase Order Item":
            created[case] = min(created.get(case, ts), ts)
        if act in ("Record Goods Receipt", "Record Service Entry Sheet"):
            first_gr[case] = min(first_gr.get(case, ts), ts)
    early = sum(1 for c, t in first_gr.items() if c in created and t < created[c])
    assert bpi.finding("goods receipt before the order").count == early == 245
    day = sum(1 for r in raw if r["event_concept_name"].startswith("Vendor creates"))
    assert bpi.finding("day-precision stamps").count == day == 929
    assert bpi.finding("payment blocks removed but never set").count == 232 - 1
    assert bpi.finding("repeated goods receipts").count > 0
    assert bpi.finding("unmapped activity") is None  # every activity of the log is mapped
    assert len(bpi.cases) == 1000  # nothing dropped


@needs_sample
def test_bpi_cycle_time_equals_an_independent_computation(bpi, raw) -> None:  # type: ignore[no-untyped-def]
    """PO creation → first receipt, in days, cancelled items and negative intervals left out —
    computed here from the raw rows with nothing but the standard library."""
    per_case: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for row in raw:
        per_case[row["case_concept_name"]][row["event_concept_name"]].append(
            datetime.fromisoformat(row["event_time_timestamp"])
        )
    days = []
    for acts in per_case.values():
        # Cancelled: deleted and not reactivated afterwards ("SRM: Deleted" is no cancellation).
        deleted = max(acts.get("Delete Purchase Order Item", []), default=None)
        back = max(acts.get("Reactivate Purchase Order Item", []), default=None)
        if deleted is not None and (back is None or back < deleted):
            continue
        receipts = acts.get("Record Goods Receipt", []) + acts.get("Record Service Entry Sheet", [])
        if not receipts or "Create Purchase Order Item" not in acts:
            continue
        start, end = min(acts["Create Purchase Order Item"]), min(receipts)
        if end >= start:
            days.append((end - start).total_seconds() / 86_400)
    result = m.cycle_times(bpi.cases, m.PO_CREATED, m.FIRST_RECEIPT)
    assert result.total.count == len(days)
    assert result.total.median == Decimal(repr(round(statistics.median(days), 6))).quantize(
        Decimal("0.01")
    )
    assert result.total.max == Decimal(repr(round(max(days), 6))).quantize(Decimal("0.01"))
    p2p = m.procure_to_pay(bpi.cases)
    assert p2p.total.count > 0 and p2p.total.median > result.total.median


@needs_sample
def test_bpi_has_no_delivery_data_so_on_time_is_no_data(bpi) -> None:  # type: ignore[no-untyped-def]
    on_time = m.on_time_delivery(bpi.cases)
    assert on_time.total.percent is None
    assert dict(on_time.excluded)["no delivery data"] == 1000 - dict(on_time.excluded).get(
        "cancelled", 0
    )


@needs_sample
def test_bpi_standard_kpis_by_spend_area(bpi) -> None:  # type: ignore[no-untyped-def]
    kpis = m.standard_kpis(bpi.cases, group_by=["category"])
    packaging = kpis["PO → first receipt"].value("Packaging")
    assert packaging.count > 100
    rate = kpis["invoice match rate"].total
    assert rate.denominator == sum(
        1 for c in bpi.cases if c.counts[m.INVOICE] and c.mismatched is not None
    )
    assert 0 < rate.percent < 100
    assert kpis["spend by supplier"].total.currency == "EUR"


# -- malformed logs -----------------------------------------------------------------------------------------

MINI = LogFormat(
    name="mini",
    case="case",
    activity="activity",
    timestamp="time",
    supplier="vendor",
    value="worth",
)


def test_unreadable_rows_are_skipped_and_reported_with_their_lines() -> None:
    text = (
        "case,activity,time,vendor,worth\n"
        "A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,V1,100.0\n"
        ",Record Goods Receipt,2019-01-08 10:00:00+00:00,V1,100.0\n"
        "A,Record Goods Receipt,yesterday,V1,100.0\n"
        "A,Record Goods Receipt\n"
        "A,Record Goods Receipt,1948-01-08 10:00:00,V1,100.0\n"
        "B,Create Purchase Order Item,2019-01-09 10:00:00+00:00,V2,lots\n"
    )
    log = read_event_log(io.StringIO(text), MINI)
    assert (log.events, log.skipped_rows) == (3, 3)
    found = {f.kind: f for f in log.quality}
    assert found["no case id"].examples == ("line 3",)
    assert found["unreadable timestamp"].examples == ("line 4: 'yesterday'",)
    assert found["short row"].examples == ("line 5",)
    assert found["implausible timestamp"].count == 1
    # A value is read where it is used (the order's creation): an unreadable one is reported.
    assert found["unreadable value"].examples == ("line 7: 'lots'",)
    assert [c.value for c in log.cases] == [Decimal("100.0"), Decimal(0)]


def test_a_header_without_the_named_columns_is_refused_listing_each() -> None:
    with pytest.raises(ValidationError) as err:
        read_event_log(io.StringIO("case,when\nA,2019-01-01\n"), MINI)
    assert {p.path for p in err.value.problems} == {"activity", "timestamp", "supplier", "value"}


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty"):
        read_event_log(io.StringIO(""), MINI)


def test_read_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    assert Synth(3).write_event_log(path, 20) > 20 * 5
    log = read_event_log(path)
    assert len(log.cases) == 20


# -- the fold -------------------------------------------------------------------------------------------------


def test_csv_and_in_memory_logs_fold_to_the_same_facts() -> None:
    buf = io.StringIO()
    events = Synth(5).write_event_log(buf, 300)
    buf.seek(0)
    from_csv = read_event_log(buf)
    in_memory = fold_events(Synth(5).events(300))
    assert (from_csv.events, in_memory.events) == (events, events)
    assert [c.id for c in from_csv.cases] == [c.id for c in in_memory.cases]
    # The CSV keeps whole seconds; everything else is equal.
    for a, b in zip(from_csv.cases, in_memory.cases, strict=True):
        assert a.counts == b.counts and a.supplier == b.supplier and a.value == b.value
        assert all(
            (x is None and y is None) or abs((x - y).total_seconds()) < 1
            for x, y in zip(a.first, b.first, strict=True)
        )


SMALL_LOG = list(Synth(9).events(40))


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_fold_does_not_depend_on_the_order_of_events(rnd: random.Random) -> None:
    events = SMALL_LOG
    shuffled = events[:]
    rnd.shuffle(shuffled)
    a, b = fold_events(events), fold_events(shuffled)
    by_id = {c.id: c for c in b.cases}
    assert all(c == by_id[c.id] for c in a.cases)
    assert a.quality == b.quality


def test_synthetic_log_has_the_bpi_shape_and_quirks() -> None:
    log = fold_events(Synth(1).events(2000))
    assert 5.0 < log.events / len(log.cases) < 7.5
    before = log.finding("goods receipt before the order")
    assert before is not None and 0.1 < before.count / 2000 < 0.3
    assert dict(log.flows)["3-way match, invoice before GR"] > 1500
    first = m.cycle_times(log.cases, m.PO_CREATED, m.FIRST_RECEIPT).total
    assert Decimal(18) < first.median < Decimal(35)  # calibrated on BPI: about 26 days


def test_events_carry_case_attributes_from_their_first_event() -> None:
    t = datetime(2026, 1, 5, tzinfo=UTC)
    log = fold_events(
        [
            Event(
                "A",
                "Create Purchase Order Item",
                t,
                "S1",
                "steel",
                "ops",
                "C1",
                "2-way match",
                Decimal(5),
            ),
            Event("A", "Record Goods Receipt", t, "S2", "x", "y", "z", "w", Decimal(7)),
        ],
        BPI2019,
    )
    (case,) = log.cases
    assert (case.supplier, case.category, case.match_level, case.value) == (
        "S1",
        "steel",
        MatchLevel.TWO_WAY,
        Decimal(5),
    )
