"""Issue 24 — the stores never lie: rolled-back work leaves nothing behind, a failed COMMIT or
ROLLBACK releases the lock, nested units of work are savepoints on both stores, and the block
allocator never repeats a number across ``fork``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack.exceptions import StorageError
from potrack.memory import InMemoryStore
from potrack.numbering import BlockAllocator, NumberingContext, NumberingScheme
from potrack.records import POState
from potrack.sqlite import SQLiteStore
from potrack.testing.samples import sample_po
from potrack.typing import Store


class _Boom(Exception):
    pass


def _rolled_back(store: Store, body: Callable[[Any], object]) -> None:
    """Run ``body`` in a unit of work of ``store`` that then fails (and so rolls back)."""
    with pytest.raises(_Boom), store.unit_of_work() as uow:  # noqa: PT012
        body(uow)
        raise _Boom


def test_rolled_back_read_back_is_no_ghost_and_no_lost_update(tmp_path: Path) -> None:
    path = tmp_path / "ghost.sqlite"
    mine, theirs = SQLiteStore(path), SQLiteStore(path)
    po = sample_po()
    with mine.unit_of_work() as uow:
        uow.purchase_orders.save(po)
    ghost = attrs.evolve(po, version=2, state=POState.CANCELLED)

    def save_and_read_back(uow: Any) -> None:
        uow.purchase_orders.save(ghost)
        assert uow.purchase_orders.require(po.id).state == POState.CANCELLED

    _rolled_back(mine, save_and_read_back)
    real = attrs.evolve(po, version=2, state=POState.PENDING_APPROVAL)
    with theirs.unit_of_work() as uow:
        uow.purchase_orders.save(real)
    with mine.unit_of_work() as uow:
        seen = uow.purchase_orders.require(po.id)
        assert seen.state == POState.PENDING_APPROVAL
        uow.purchase_orders.save(attrs.evolve(seen, version=3, buyer="buyer-2"))
    conn = sqlite3.connect(path)
    state, doc = conn.execute("SELECT state, doc FROM purchase_orders").fetchone()
    assert state == "pending_approval"
    assert '"pending_approval"' in doc


class _FailingConnection:
    """A connection whose next COMMIT (and, if asked, ROLLBACK) raises a given error, once."""

    def __init__(self, real: sqlite3.Connection, fail: dict[str, BaseException]) -> None:
        self._real = real
        self._fail = fail

    def execute(self, sql: str, *args: Any) -> Any:
        error = self._fail.pop(sql, None)
        if error is not None:
            raise error
        return self._real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize(
    "fail",
    [
        {"COMMIT": sqlite3.IntegrityError("FOREIGN KEY constraint failed")},
        {"COMMIT": sqlite3.DatabaseError("disk I/O error")},
        {"COMMIT": MemoryError()},
        {"COMMIT": sqlite3.OperationalError("busy"), "ROLLBACK": sqlite3.OperationalError("x")},
        {"ROLLBACK": sqlite3.DatabaseError("cannot rollback")},
    ],
    ids=[
        "integrity-at-commit",
        "database-error",
        "memory-error",
        "rollback-fails",
        "rollback-only",
    ],
)
def test_failed_commit_or_rollback_releases_the_lock(
    tmp_path: Path, fail: dict[str, BaseException]
) -> None:
    path = tmp_path / "lock.sqlite"
    store = SQLiteStore(path)
    real = store._connection()
    store._local.conn = _FailingConnection(real, fail)
    if "COMMIT" in fail:
        with pytest.raises(StorageError, match="commit failed"), store.unit_of_work() as uow:
            uow.purchase_orders.save(sample_po("PO-1"))
    else:
        _rolled_back(store, lambda uow: uow.purchase_orders.save(sample_po("PO-1")))
    other = SQLiteStore(path, timeout=0.5)
    with other.unit_of_work() as uow:  # the lock is free
        uow.purchase_orders.save(sample_po("PO-2"))
    with store.unit_of_work() as uow:  # and the failed store's next unit works
        uow.purchase_orders.save(sample_po("PO-3"))
        assert uow.purchase_orders.get("PO-1") is None
    with other.unit_of_work() as uow:
        assert {p.id for p in uow.purchase_orders.all()} == {"PO-2", "PO-3"}


def _stores(tmp_path: Path) -> list[Store]:
    return [InMemoryStore(), SQLiteStore(tmp_path / "nest.sqlite")]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_nested_unit_of_work_is_a_savepoint_on_both_stores(tmp_path: Path, kind: str) -> None:
    store: Store = InMemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "n.sqlite")
    with store.unit_of_work() as outer:
        outer.purchase_orders.save(sample_po("PO-1"))
        with store.unit_of_work() as inner:
            assert inner.purchase_orders.get("PO-1") is not None  # sees the outer's writes
            inner.purchase_orders.save(sample_po("PO-2"))
            assert inner.sequences.next_value("k") == 1

        def inner_work(inner: Any) -> None:
            inner.purchase_orders.save(sample_po("PO-3"))
            inner.sequences.next_value("k")

        _rolled_back(store, inner_work)
        assert outer.purchase_orders.get("PO-3") is None  # the failed inner unit is undone
        assert outer.sequences.current("k") == 1
    with store.unit_of_work() as uow:
        assert sorted(p.id for p in uow.purchase_orders.all()) == ["PO-1", "PO-2"]

    def nested(outer: Any) -> None:
        with store.unit_of_work() as inner:
            inner.purchase_orders.save(sample_po("PO-4"))

    _rolled_back(store, nested)
    with store.unit_of_work() as uow:  # the outer rollback takes the inner unit with it
        assert uow.purchase_orders.get("PO-4") is None


_CTX = NumberingContext(on=date(2026, 12, 3), department="OPS")


def test_block_allocator_never_repeats_a_number_across_fork(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fork.sqlite")
    allocator = BlockAllocator(NumberingScheme("PO-{yyyy}-{seq:06}"), store, block_size=50)
    first = allocator.allocate(_CTX)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            numbers = [allocator.allocate(_CTX) for _ in range(10)]
            os.write(write, " ".join(numbers).encode())
        finally:
            os._exit(0)
    os.close(write)
    mine = [allocator.allocate(_CTX) for _ in range(10)]
    os.waitpid(pid, 0)
    with os.fdopen(read) as fh:
        theirs = fh.read().split()
    assert len(theirs) == 10
    every = [first, *mine, *theirs]
    assert len(set(every)) == 21, sorted(every)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_block_allocator_refuses_to_reserve_inside_an_open_unit(tmp_path: Path, kind: str) -> None:
    store: Store = InMemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "b.sqlite")
    allocator = BlockAllocator(NumberingScheme("PO-{yyyy}-{seq:06}"), store, block_size=5)

    def inside(uow: Any) -> None:
        with pytest.raises(StorageError, match="unit of work of its own"):
            allocator.allocate(_CTX)

    _rolled_back(store, inside)
    numbers = [allocator.allocate(_CTX) for _ in range(6)]
    assert numbers[0] == "PO-2026-000001" and len(set(numbers)) == 6


def _issued(svc: Any, s: Any, lines: int) -> Any:
    from potrack import approval as ap
    from potrack.events import Issue, RecordDecision, SubmitForApproval
    from potrack.records import Decision

    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(lines=lines, quantity="10"), s.buyer).document
    s.clock.set(s.at(0.1))
    po = svc.order(po.id, SubmitForApproval(), s.buyer).document
    while po.approval is not None and ap.active_steps(po.approval):
        for step in ap.active_steps(po.approval):
            who = ap.step_candidates(po.approval, step)[0]
            decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
            actor = s.directory.actor(who)
            s.clock.set(s.at(0.2))
            po = svc.order(po.id, decision, actor).document
    s.clock.set(s.at(0.3))
    return svc.order(po.id, Issue(), s.buyer).document


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_receipt_applied_before_the_unit_opens_is_redone_if_the_po_moved_meanwhile(
    tmp_path: Path, kind: str
) -> None:
    from decimal import Decimal

    from potrack.audit import verify
    from potrack.events import AddComment, ReceiveGoods
    from potrack.records import GoodsReceipt, ReceiptId, ReceiptLine
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario()
    store: Store = InMemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "r.sqlite")

    class Racing(Purchasing):
        def _applied_before(self, *args: Any) -> Any:
            early = super()._applied_before(*args)
            s.clock.set(s.at(4))
            Purchasing(store, s.lifecycle, clock=s.clock).order(
                po.id, AddComment(text="meanwhile"), s.buyer
            )
            return early

    po = _issued(Purchasing(store, s.lifecycle, numbers=s.numbers, clock=s.clock), s, lines=300)
    receipt = GoodsReceipt(
        id=ReceiptId("GR-1"),
        po_id=po.id,
        received_at=s.at(5),
        received_by=s.receiver.id,
        lines=tuple(
            ReceiptLine(line_no=n, received=Decimal(n % 7 + 1), rejected=Decimal(0))
            for n in range(300, 0, -1)
        ),
    )
    s.clock.set(s.at(5))
    applied = Racing(store, s.lifecycle).order(po.id, ReceiveGoods(receipt=receipt), s.receiver)
    after = applied.document
    assert after.version == po.version + 2
    assert [c.text for c in after.comments] == ["meanwhile"]
    assert sum(p.received for p in after.progress) == sum(n % 7 + 1 for n in range(1, 301))
    assert after.line_progress(300).received == Decimal(300 % 7 + 1)
    assert verify(store).ok


@pytest.mark.parametrize("lossy", ["prices", "times"])
def test_the_conformance_kit_fails_a_store_that_rounds(tmp_path: Path, lossy: str) -> None:
    from datetime import datetime
    from decimal import Decimal

    from moneyed import Money

    from potrack.serialization import make_converter
    from potrack.testing import run_conformance

    converter = make_converter()
    if lossy == "prices":
        exact = converter.get_unstructure_hook(Money)
        converter.register_unstructure_hook(
            Money, lambda m: exact(Money(m.amount.quantize(Decimal("0.01")), m.currency))
        )
    else:
        converter.register_unstructure_hook(
            datetime, lambda t: t.replace(microsecond=0).isoformat()
        )
    paths = iter(range(100))
    failures = run_conformance(
        lambda: SQLiteStore(tmp_path / f"{next(paths)}.sqlite", converter=converter),
        lambda store: SQLiteStore(store.path, converter=converter),  # type: ignore[attr-defined]
    )
    assert [f.check for f in failures] == ["test_values_are_exact"]
    want = "98765432101.12" if lossy == "prices" else "2026-03-04 05:06:07+05:30"
    assert want in failures[0].message


_Step = Any  # ("save", n) | ("next",) | ("nest", ok: bool, [steps])
_steps = st.recursive(
    st.one_of(
        st.tuples(st.just("save"), st.integers(1, 6)),
        st.tuples(st.just("next")),
    ),
    lambda inner: st.tuples(st.just("nest"), st.booleans(), st.lists(inner, max_size=4)),
    max_leaves=12,
)


def _run(store: Store, steps: list[_Step], ok: bool) -> list[str]:
    """Run ``steps`` in a unit of work of ``store`` that commits if ``ok``; what each step saw."""
    seen: list[str] = []

    def body(uow: Any, program: list[_Step]) -> None:
        for step in program:
            if step[0] == "save":
                po_id = f"PO-{step[1]}"
                found = uow.purchase_orders.get(po_id)
                po = (
                    sample_po(po_id)
                    if found is None
                    else attrs.evolve(found, version=found.version + 1)
                )
                uow.purchase_orders.save(po)
                seen.append(f"{po_id}@{po.version}")
            elif step[0] == "next":
                seen.append(f"seq {uow.sequences.next_value('K')}")
            else:
                try:
                    with store.unit_of_work() as inner:
                        body(inner, step[2])
                        if not step[1]:
                            raise _Boom
                except _Boom:
                    seen.append("rolled back")

    try:
        with store.unit_of_work() as uow:
            body(uow, steps)
            if not ok:
                raise _Boom
    except _Boom:
        pass
    with store.unit_of_work() as uow:
        seen.append(" ".join(f"{p.id}@{p.version}" for p in uow.purchase_orders.all()))
        seen.append(f"seq {uow.sequences.current('K')}")
    return seen


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(_steps, max_size=5), st.booleans()), min_size=1, max_size=3))
def test_nested_units_behave_the_same_on_both_stores(program: list[Any]) -> None:
    import tempfile

    memory = InMemoryStore()
    sqlite = SQLiteStore(Path(tempfile.mkdtemp()) / "same.sqlite")
    for steps, ok in program:
        assert _run(memory, steps, ok) == _run(sqlite, steps, ok)
    sqlite.close()
