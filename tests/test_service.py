"""The Purchasing service: atomic event application on a store, idempotency, numbering."""

from __future__ import annotations

from pathlib import Path

import pytest

from potrack.events import Issue, ReceiveGoods, RecordInvoice, SubmitForApproval
from potrack.exceptions import ConflictError, NotFoundError, TransitionRefusedError
from potrack.lifecycle import replay
from potrack.memory import InMemoryStore
from potrack.numbering import BlockAllocator, find_gaps
from potrack.records import POState
from potrack.service import Purchasing, retry_on_conflict
from potrack.sqlite import SQLiteStore
from potrack.testing.scenario import Scenario


@pytest.fixture(params=["memory", "sqlite"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Scenario, Purchasing]:
    s = Scenario()
    store = InMemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "p.sqlite")
    return s, Purchasing(store, s.lifecycle, s.requisitions, numbers=s.numbers, clock=s.clock)


def approved(s: Scenario, svc: Purchasing) -> str:
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(), s.buyer).document
    s.clock.set(s.at(0.1))
    svc.order(po.id, SubmitForApproval(), s.buyer)
    stored = svc.get_order(po.id)
    for step_event in _approvals(s, stored):
        s.clock.set(s.at(0.2))
        svc.order(po.id, step_event[0], step_event[1])
    return po.id


def _approvals(s: Scenario, po):  # type: ignore[no-untyped-def]
    from potrack import approval as ap
    from potrack.events import RecordDecision
    from potrack.records import Decision

    out = []
    for step in ap.active_steps(po.approval):
        who = ap.step_candidates(po.approval, step)[0]
        out.append(
            (
                RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE),
                s.actor(who),
            )
        )
    return out


def test_issue_allocates_the_number_in_the_same_unit_of_work(world) -> None:  # type: ignore[no-untyped-def]
    s, svc = world
    po_id = approved(s, svc)
    s.clock.set(s.at(1))
    issued = svc.order(po_id, Issue(), s.buyer).document
    assert issued.number == "PO-OPS-2026-00001"
    assert svc.history(po_id)[-1].event.number == "PO-OPS-2026-00001"
    with svc.store.unit_of_work() as uow:
        assert uow.purchase_orders.by_number("PO-OPS-2026-00001").id == po_id


def test_documents_and_records_land_together_and_replay(world) -> None:  # type: ignore[no-untyped-def]
    s, svc = world
    po_id = approved(s, svc)
    s.clock.set(s.at(1))
    po = svc.order(po_id, Issue(), s.buyer).document
    receipt = s.receipt(po, "40")
    s.clock.set(s.at(2))
    svc.order(po_id, ReceiveGoods(receipt=receipt), s.receiver)
    inv = s.invoice(po, "40")
    s.clock.set(s.at(3))
    svc.order(po_id, RecordInvoice(invoice=inv), s.clerk)
    with svc.store.unit_of_work() as uow:
        assert uow.receipts.for_po(po.id) == (receipt,)
        assert uow.invoices.for_po(po.id) == (inv,)
    assert replay(svc.history(po_id)) == svc.get_order(po_id)


def test_a_retried_event_is_recorded_once(world) -> None:  # type: ignore[no-untyped-def]
    s, svc = world
    po_id = approved(s, svc)
    s.clock.set(s.at(1))
    po = svc.order(po_id, Issue(), s.buyer).document
    event = ReceiveGoods(receipt=s.receipt(po, "40"))
    s.clock.set(s.at(2))
    first = svc.order(po_id, event, s.receiver)
    s.clock.set(s.at(3))
    again = svc.order(po_id, event, s.receiver)
    assert again.duplicate
    assert again.record == first.record
    assert svc.get_order(po_id).line_progress(1).received == 40
    with svc.store.unit_of_work() as uow:
        assert len(uow.receipts.for_po(po.id)) == 1


def test_a_refused_event_writes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    s, svc = world
    po_id = approved(s, svc)
    before = svc.get_order(po_id)
    s.clock.set(s.at(1))
    with pytest.raises(TransitionRefusedError):
        svc.order(po_id, ReceiveGoods(receipt=s.receipt(before, "1")), s.receiver)
    assert svc.get_order(po_id) == before
    s.clock.set(s.at(1))
    with pytest.raises(NotFoundError):
        svc.order("PO-NOPE", SubmitForApproval(), s.buyer)


def test_block_numbers_are_taken_before_the_unit_of_work() -> None:
    s = Scenario()
    store = InMemoryStore()
    svc = Purchasing(
        store, s.lifecycle, numbers=BlockAllocator(s.scheme, store, block_size=10), clock=s.clock
    )
    numbers = []
    for _ in range(3):
        po_id = approved(s, svc)
        s.clock.set(s.at(1))
        numbers.append(svc.order(po_id, Issue(), s.buyer).document.number)
    assert numbers == ["PO-OPS-2026-00001", "PO-OPS-2026-00002", "PO-OPS-2026-00003"]
    assert find_gaps(s.scheme, numbers, last=10)[0].first == 4


def test_retry_on_conflict_retries_then_gives_up() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConflictError("purchase order", "PO-1", 1, 2)
        return "done"

    assert retry_on_conflict(flaky, pause=0) == "done"
    assert len(calls) == 3
    with pytest.raises(ConflictError):
        retry_on_conflict(lambda: (_ for _ in ()).throw(ConflictError("x", "y", 1, 2)), 2, 0)


def test_state_after_issue(world) -> None:  # type: ignore[no-untyped-def]
    s, svc = world
    po_id = approved(s, svc)
    assert svc.get_order(po_id).state is POState.APPROVED
