"""The synthetic generator: reproducible byte for byte, lazy, varied, and calibrated on BPI 2019."""

from __future__ import annotations

import hashlib
import io
import statistics
import tracemalloc
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack import metrics as m
from potrack.eventlog import fold_events, read_event_log
from potrack.records import DispatchNotice, GoodsReceipt, GoodsReturn, Invoice, InvoiceKind, Payment
from potrack.serialization import dumps
from potrack.testing.synth import Synth

BPI_SAMPLE = "bpi2019/BPI_Challenge_2019_sample.csv"


def _digest(synth: Synth, orders: int) -> str:
    h = hashlib.sha256()
    for history in synth.histories(orders):
        h.update(dumps(history.po).encode())
        for when, doc in history.documents:
            h.update(when.isoformat().encode() + dumps(doc).encode())
    return h.hexdigest()


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32))
def test_same_seed_same_data_byte_for_byte(seed: int) -> None:
    assert _digest(Synth(seed), 25) == _digest(Synth(seed), 25)
    assert _digest(Synth(seed), 25) != _digest(Synth(seed + 1), 25)


def test_event_logs_are_reproducible_to_the_byte() -> None:
    first, second = io.StringIO(), io.StringIO()
    assert Synth(4).write_event_log(first, 200) == Synth(4).write_event_log(second, 200)
    assert first.getvalue() == second.getvalue()
    other = io.StringIO()
    Synth(5).write_event_log(other, 200)
    assert other.getvalue() != first.getvalue()


def test_histories_are_random_access() -> None:
    synth = Synth(3)
    streamed = list(synth.histories(30))
    assert synth.history(17) == streamed[17]
    assert synth.order("PO-0000021") == streamed[21].po


def test_a_million_invoice_lines_are_never_held_at_once() -> None:
    """Asking for a 1,000,000-line stream generates nothing up front; pulling from it holds only
    the open histories (a few MiB), not the whole run."""
    tracemalloc.start()
    try:
        _orders, stream = Synth(8).matching_stream(1_000_000)
        after_setup = tracemalloc.get_traced_memory()[0]
        pulled = sum(1 for _ in zip(range(3_000), stream, strict=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pulled == 3_000
    assert after_setup < 1_000_000
    assert peak < 40_000_000  # the whole run would be gigabytes


def test_histories_carry_every_kind_of_document_and_quirk() -> None:
    histories = list(Synth(11).histories(1_500))
    kinds = Counter(type(doc).__name__ for h in histories for _, doc in h.documents)
    assert {"DispatchNotice", "GoodsReceipt", "GoodsReturn", "Invoice", "Payment"} <= set(kinds)
    receipts = [d for h in histories for _, d in h.documents if isinstance(d, GoodsReceipt)]
    invoices = [d for h in histories for _, d in h.documents if isinstance(d, Invoice)]
    assert any(line.rejected > 0 for r in receipts for line in r.lines)
    assert any(len(r.lines) < 2 for r in receipts) and any(len(r.lines) > 1 for r in receipts)
    assert any(i.kind is InvoiceKind.CREDIT_MEMO for i in invoices)
    assert any(i.id.endswith("-D") for i in invoices)  # duplicates with a reformatted number
    assert any(i.charges for i in invoices)
    assert {line.price_unit for h in histories for line in h.po.lines} == {Decimal(1), Decimal(100)}
    assert len({line.uom for h in histories for line in h.po.lines}) >= 4
    assert sum(1 for h in histories if h.requisition is not None) > 150
    assert sum(1 for h in histories if h.changes) > 100
    ahead = 0
    for h in histories:
        first_receipt = next((w for w, d in h.documents if isinstance(d, GoodsReceipt)), None)
        first_invoice = next((w for w, d in h.documents if isinstance(d, Invoice)), None)
        if first_receipt and first_invoice and first_invoice < first_receipt:
            ahead += 1
    assert 0.15 < ahead / len(histories) < 0.35
    # documents of a history are in time order, and each refers to its own PO
    for h in histories[:200]:
        moments = [w for w, _ in h.documents]
        assert moments == sorted(moments)
        for _, doc in h.documents:
            if isinstance(doc, GoodsReceipt | GoodsReturn | DispatchNotice | Invoice):
                assert doc.po_id == h.po.id
            elif isinstance(doc, Payment):
                assert doc.supplier_id == h.po.supplier_id


def test_documents_stream_is_in_date_order() -> None:
    moments = [when for when, _ in Synth(2).documents(400)]
    assert moments == sorted(moments)
    assert len(moments) > 400 * 3


def test_event_log_is_calibrated_on_the_bpi_sample(shared_data: Path) -> None:
    """The synthetic event log's shape follows the real sample: flows within 3 points, events per
    case within 15 %, PO → first receipt median and p90 within 30 %, first-pass match rate
    within 5 points."""
    real = read_event_log(shared_data / BPI_SAMPLE)
    synthetic = fold_events(Synth(1).events(len(real.cases)))
    real_flows, synthetic_flows = dict(real.flows), dict(synthetic.flows)
    for flow, count in real_flows.items():
        assert abs(synthetic_flows.get(flow, 0) - count) / len(real.cases) <= 0.03, flow
    ratio = (synthetic.events / len(synthetic.cases)) / (real.events / len(real.cases))
    assert 0.85 <= ratio <= 1.15
    first = [
        m.cycle_times(list(log.cases), m.PO_CREATED, m.FIRST_RECEIPT).total
        for log in (real, synthetic)
    ]
    assert abs(first[1].median / first[0].median - 1) <= Decimal("0.3")
    assert abs(first[1].p90 / first[0].p90 - 1) <= Decimal("0.3")
    rates = [
        m.standard_kpis(list(log.cases))["invoice match rate"].total.percent
        for log in (real, synthetic)
    ]
    assert abs(rates[1] - rates[0]) <= 5
    real_quirks = {f.kind for f in real.quality}
    assert real_quirks <= {f.kind for f in synthetic.quality}


def test_record_delays_are_plausible() -> None:
    delays = []
    for h in Synth(6).histories(800):
        receipt = next((w for w, d in h.documents if isinstance(d, GoodsReceipt)), None)
        if receipt is not None:
            delays.append((receipt - h.po.created_at).total_seconds() / 86_400)
    assert 5 < statistics.median(delays) < 16
    assert min(delays) > 0


@pytest.mark.parametrize("cases", [1, 7])
def test_event_counts_match_what_is_written(cases: int) -> None:
    buffer = io.StringIO()
    written = Synth(2).write_event_log(buffer, cases)
    assert written == len(list(Synth(2).events(cases)))
    assert buffer.getvalue().count("\n") == written + 1  # the header


def test_approvals_follow_the_policy_of_the_synthetic_company() -> None:
    synth = Synth(12)
    people = {p.id: p for p in synth.people}
    big = small = 0
    for h in synth.histories(600):
        levels = [level for _, _, level in h.approvals]
        moments = [when for when, _, _ in h.approvals]
        assert moments == sorted(moments) and moments[-1] == h.approved_at
        assert h.po.created_at <= moments[0]
        requester = people[h.po.requester]
        assert h.approvals[0][1] == requester.manager  # the requester's manager signs first
        if h.po.amount.amount >= 5000:
            assert levels == [1, 2] and h.approvals[1][1] == "cfo"
            big += 1
        else:
            assert levels == [1]
            small += 1
    assert big > 10 and small > 300
