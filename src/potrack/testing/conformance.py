"""The storage conformance kit: the guarantees every :class:`~potrack.typing.Store` must keep.

Run it against your own adapter with pytest by subclassing :class:`StoreContract`::

    from potrack.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore(...)          # a fresh, empty store per check

Every ``test_*`` method is one guarantee.  Without pytest, :func:`run_conformance` runs them all and
returns the failures.  The kit needs neither pytest nor hypothesis at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any

import attrs

from potrack.audit import AuditedStore, verify_rows
from potrack.exceptions import ConflictError, DuplicateError, NotFoundError
from potrack.money import money
from potrack.outbox import OutboxStore
from potrack.records import InvoiceKind, POState, PurchaseOrderId, PurchaseOrderNumber, SupplierId
from potrack.testing.samples import (
    bump,
    sample_invoice,
    sample_payment,
    sample_po,
    sample_po_line,
    sample_receipt,
    sample_requisition,
    sample_return,
    sample_transition,
)
from potrack.typing import Store

__all__ = ["ContractFailure", "StoreContract", "run_conformance"]


class _Boom(Exception):
    """Raised inside a unit of work to force a rollback."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _raises(kind: type[BaseException], action: Callable[[], object], what: str) -> BaseException:
    try:
        action()
    except kind as exc:
        return exc
    except Exception as exc:
        raise AssertionError(
            f"{what}: expected {kind.__name__}, got {type(exc).__name__}: {exc}"
        ) from exc
    raise AssertionError(f"{what}: expected {kind.__name__}, nothing was raised")


@attrs.frozen
class ContractFailure:
    """One guarantee a store broke: the check's name and what went wrong."""

    check: str
    message: str


class StoreContract:
    """The guarantees of a potrack store, as test methods.

    Subclass it in a pytest module and implement :meth:`make_store`.  Override
    :meth:`reopen_store` for durable stores to also check that data survives reopening.
    ``concurrent_workers`` sets how many threads the concurrency checks use.
    """

    concurrent_workers = 4

    def make_store(self) -> Store:
        """A new, empty store for one check."""
        raise NotImplementedError("implement make_store() to return a fresh store")

    def reopen_store(self, store: Store) -> Store | None:
        """The same data opened anew (durable stores), or None to skip that check."""
        return None

    # -- aggregates ------------------------------------------------------------------------------

    def test_aggregate_round_trip(self) -> None:
        """A saved PO and requisition come back equal, in and after the unit of work."""
        store = self.make_store()
        po, req = sample_po(), sample_requisition()
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)
            uow.requisitions.save(req)
            _check(
                uow.purchase_orders.get(po.id) == po, "a PO saved in a unit is not readable in it"
            )
        with store.unit_of_work() as uow:
            _check(
                uow.purchase_orders.get(po.id) == po, "the PO read back differs from the one saved"
            )
            _check(uow.requisitions.get(req.id) == req, "the requisition read back differs")
            _check(
                uow.purchase_orders.get(PurchaseOrderId("nope")) is None,
                "get() of a missing id must return None",
            )
            _raises(
                NotFoundError,
                lambda: uow.purchase_orders.require(PurchaseOrderId("nope")),
                "require() of a missing id",
            )

    def test_versions_advance_by_one(self) -> None:
        """Saving version n+1 over n works; the store then holds n+1."""
        store = self.make_store()
        po = sample_po()
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)
        v2 = bump(po, ship_to="Dock 4")
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(v2)
        with store.unit_of_work() as uow:
            got = uow.purchase_orders.require(po.id)
            _check(
                got.version == 2 and got.ship_to == "Dock 4",
                f"expected version 2, got {got.version}",
            )

    def test_stale_save_conflicts_and_writes_nothing(self) -> None:
        """A save with a stale version raises ConflictError and the whole unit writes nothing."""
        store = self.make_store()
        po = sample_po()
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)
            uow.purchase_orders.save(bump(po))
        stale = bump(po, ship_to="stale")
        try:
            with store.unit_of_work() as uow:
                uow.receipts.add(sample_receipt())
                uow.purchase_orders.save(stale)
        except ConflictError as exc:
            _check(
                exc.expected == 1 and exc.actual == 2,
                f"ConflictError should say expected 1, actual 2; said {exc.expected}, {exc.actual}",
            )
        else:
            raise AssertionError("saving a stale version did not raise ConflictError")
        with store.unit_of_work() as uow:
            got = uow.purchase_orders.require(po.id)
            _check(got.version == 2 and got.ship_to is None, "the stale save changed the PO")
            _check(
                uow.receipts.get(sample_receipt().id) is None,
                "a write made before the conflict landed anyway",
            )

    def test_insert_must_be_version_one_and_new(self) -> None:
        """A new aggregate must have version 1; inserting an existing id conflicts."""
        store = self.make_store()
        _raises(
            ConflictError,
            lambda: self._save_po(store, sample_po(version=3)),
            "saving a new PO at version 3",
        )
        self._save_po(store, sample_po())
        _raises(
            ConflictError,
            lambda: self._save_po(store, sample_po()),
            "inserting the same PO id twice",
        )

    def test_skipping_a_version_conflicts(self) -> None:
        """Saving version 3 over version 1 conflicts."""
        store = self.make_store()
        po = sample_po()
        self._save_po(store, po)
        _raises(
            ConflictError,
            lambda: self._save_po(store, attrs.evolve(po, version=3)),
            "saving version 3 over version 1",
        )

    def test_rollback_writes_nothing(self) -> None:
        """An exception inside a unit of work discards every write of every kind."""
        store = self.make_store()
        try:
            with store.unit_of_work() as uow:
                uow.purchase_orders.save(sample_po())
                uow.requisitions.save(sample_requisition())
                uow.receipts.add(sample_receipt())
                uow.returns.add(sample_return())
                uow.invoices.add(sample_invoice())
                uow.payments.add(sample_payment())
                uow.transitions.append(sample_transition())
                uow.sequences.next_value("PO-")
                raise _Boom
        except _Boom:
            pass
        with store.unit_of_work() as uow:
            leftovers = [
                name
                for name, found in [
                    ("purchase order", uow.purchase_orders.get(PurchaseOrderId("PO-1"))),
                    ("requisition", uow.requisitions.get(sample_requisition().id)),
                    ("receipt", uow.receipts.get(sample_receipt().id)),
                    ("return", uow.returns.get(sample_return().id)),
                    ("invoice", uow.invoices.get(sample_invoice().id)),
                    ("payment", uow.payments.get(sample_payment().id)),
                    ("transition", uow.transitions.for_aggregate("purchase_order", "PO-1") or None),
                ]
                if found is not None
            ]
            _check(not leftovers, f"rolled-back writes were kept: {leftovers}")
            _check(uow.sequences.current("PO-") == 0, "a rolled-back sequence value was consumed")

    def test_rollback_leaves_no_ghost(self) -> None:
        """A document read back after its own save in a unit that then rolls back is not what
        later units see (no cache keeps the rolled-back version), and a later save over another
        writer's change is refused or lands on that change, never on the ghost."""
        store = self.make_store()
        po = sample_po()
        self._save_po(store, po)
        ghost = bump(po, state=POState.CANCELLED)
        try:
            with store.unit_of_work() as uow:
                uow.purchase_orders.save(ghost)
                _check(
                    uow.purchase_orders.require(po.id) == ghost,
                    "a PO saved in a unit is not what the unit reads back",
                )
                raise _Boom
        except _Boom:
            pass
        real = bump(po, state=POState.PENDING_APPROVAL)
        self._save_po(store, real)
        with store.unit_of_work() as uow:
            seen = uow.purchase_orders.require(po.id)
            _check(seen == real, f"a rolled-back version came back: state {seen.state}")
            found = [p.id for p in uow.purchase_orders.find(state=POState.CANCELLED)]
            _check(found == [], f"find(state=cancelled) still finds the rolled-back PO: {found}")

    def test_nested_units_are_savepoints(self) -> None:
        """A unit of work opened inside another (same store, same thread) sees the outer one's
        writes; an exception in it undoes only its own writes; everything lands when the outer
        unit commits, and nothing when it rolls back."""
        store = self.make_store()
        with store.unit_of_work() as outer:
            outer.purchase_orders.save(sample_po("PO-1"))
            with store.unit_of_work() as inner:
                _check(
                    inner.purchase_orders.get(PurchaseOrderId("PO-1")) is not None,
                    "a nested unit does not see the outer unit's writes",
                )
                inner.purchase_orders.save(sample_po("PO-2"))
                inner.sequences.next_value("K")
            try:
                with store.unit_of_work() as inner:
                    inner.purchase_orders.save(sample_po("PO-3"))
                    inner.sequences.next_value("K")
                    raise _Boom
            except _Boom:
                pass
            _check(
                outer.purchase_orders.get(PurchaseOrderId("PO-3")) is None,
                "a failed nested unit's write was kept",
            )
            _check(outer.sequences.current("K") == 1, "a failed nested unit consumed a value")
        try:
            with store.unit_of_work():
                with store.unit_of_work() as inner:
                    inner.purchase_orders.save(sample_po("PO-4"))
                raise _Boom
        except _Boom:
            pass
        with store.unit_of_work() as uow:
            ids = [p.id for p in uow.purchase_orders.all()]
            _check(ids == ["PO-1", "PO-2"], f"after the nested units the store holds {ids}")

    def test_values_are_exact(self) -> None:
        """Prices with four and more decimals, amounts in the trillions, and times to the
        microsecond (with their offset) come back exactly as saved, digit for digit."""
        store = self.make_store()
        at = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        line = sample_po_line(
            quantity=Decimal("123456789.123"),
            unit_price=money("98765432101.12345", "USD"),
        )
        po = sample_po(lines=1, created_at=at)
        po = attrs.evolve(po, lines=(line,))
        invoice = sample_invoice(
            quantity="0.0001",
            price="0.12345678",
            total=money("12345678901234.56", "USD"),  # a total is whole cents; prices need not be
        )
        record = sample_transition(at=at)
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)
            uow.invoices.add(invoice)
            uow.transitions.append(record)
        reopened = self.reopen_store(store) or store
        with reopened.unit_of_work() as uow:
            back = uow.purchase_orders.require(po.id)
            got_invoice = uow.invoices.get(invoice.id)
            (got_record,) = uow.transitions.for_aggregate("purchase_order", "PO-1")
        pairs = [
            ("PO line price", back.lines[0].unit_price.amount, line.unit_price.amount),
            ("PO line quantity", back.lines[0].quantity, line.quantity),
            ("PO amount", back.amount.amount, po.amount.amount),
            ("PO creation time", back.created_at, at),
            (
                "invoice unit price",
                got_invoice and got_invoice.lines[0].unit_price.amount,
                invoice.lines[0].unit_price.amount,
            ),
            (
                "invoice quantity",
                got_invoice and got_invoice.lines[0].quantity,
                invoice.lines[0].quantity,
            ),
            ("invoice total", got_invoice and got_invoice.total.amount, invoice.total.amount),
            ("transition time", got_record.at, at),
        ]
        for what, got, want in pairs:
            same = str(got) == str(want)
            if isinstance(got, datetime) and isinstance(want, datetime):
                same = same and got.utcoffset() == want.utcoffset()
            _check(same, f"{what}: saved {want!s}, read back {got!s}")

    # -- queries ----------------------------------------------------------------------------------

    def test_po_queries(self) -> None:
        """by_number and find() filter by number, supplier, state and creation time."""
        store = self.make_store()
        first = sample_po("PO-1", number=PurchaseOrderNumber("N-0001"), state=POState.ISSUED)
        second = sample_po("PO-2", supplier_id=SupplierId("S-OTHER"))
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(first)
            uow.purchase_orders.save(second)
        with store.unit_of_work() as uow:
            pos = uow.purchase_orders
            _check(pos.by_number("N-0001") == first, "by_number did not find the PO")
            _check(pos.by_number("N-9999") is None, "by_number of an unknown number must be None")
            _check(
                [p.id for p in pos.find(supplier_id=SupplierId("S-OTHER"))] == ["PO-2"],
                "find(supplier_id=...) is wrong",
            )
            _check(
                [p.id for p in pos.find(state=POState.ISSUED)] == ["PO-1"],
                "find(state=...) is wrong",
            )
            _check(
                [p.id for p in pos.find(created_to=first.created_at)] == [],
                "find(created_to=...) must be exclusive",
            )
            _check([p.id for p in pos.all()] == ["PO-1", "PO-2"], "all() must list POs in id order")

    def test_po_numbers_are_unique(self) -> None:
        """A PO number belongs to one PO: saving a second PO with it raises DuplicateError, and
        the unit of work writes nothing."""
        store = self.make_store()
        number = PurchaseOrderNumber("N-0001")
        first = sample_po("PO-1", number=number, state=POState.ISSUED)
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(first)
        second = sample_po("PO-2", number=number, state=POState.ISSUED)
        try:
            with store.unit_of_work() as uow:
                uow.purchase_orders.save(sample_po("PO-3"))
                uow.purchase_orders.save(second)
        except DuplicateError:
            pass
        else:
            _check(False, "a second PO took number N-0001")
        with store.unit_of_work() as uow:
            _check(uow.purchase_orders.by_number(number) == first, "the first holder changed")
            _check(uow.purchase_orders.get(PurchaseOrderId("PO-3")) is None, "half a unit written")
            _check(uow.purchase_orders.get(PurchaseOrderId("PO-2")) is None, "PO-2 was written")

    # -- documents ---------------------------------------------------------------------------------

    def test_documents_round_trip_and_refuse_duplicates(self) -> None:
        """Receipts, returns, invoices and payments come back equal; a second add of an id fails."""
        store = self.make_store()
        docs: list[tuple[str, Any]] = [
            ("receipts", sample_receipt()),
            ("returns", sample_return()),
            ("invoices", sample_invoice()),
            ("payments", sample_payment()),
        ]
        with store.unit_of_work() as uow:
            for name, doc in docs:
                getattr(uow, name).add(doc)
        with store.unit_of_work() as uow:
            for name, doc in docs:
                repo = getattr(uow, name)
                _check(repo.get(doc.id) == doc, f"{name}: the document read back differs")
                _raises(DuplicateError, partial(repo.add, doc), f"{name}: adding an id twice")

    def test_documents_per_po_and_supplier(self) -> None:
        """for_po() and for_supplier() return a PO's or supplier's documents in insertion order."""
        store = self.make_store()
        memo = sample_invoice("CM-1", kind=InvoiceKind.CREDIT_MEMO, credits="INV-1")
        with store.unit_of_work() as uow:
            uow.receipts.add(sample_receipt("GR-2"))
            uow.receipts.add(sample_receipt("GR-1"))
            uow.receipts.add(sample_receipt("GR-3", po_id="PO-2"))
            uow.invoices.add(sample_invoice("INV-1"))
            uow.invoices.add(memo)
            uow.invoices.add(sample_invoice("INV-9", po_id=None, supplier_id="S-OTHER"))
            uow.payments.add(sample_payment())
        with store.unit_of_work() as uow:
            got = [r.id for r in uow.receipts.for_po(PurchaseOrderId("PO-1"))]
            _check(got == ["GR-2", "GR-1"], f"for_po returned {got}, expected ['GR-2', 'GR-1']")
            inv = [i.id for i in uow.invoices.for_po(PurchaseOrderId("PO-1"))]
            _check(inv == ["INV-1", "CM-1"], f"invoices.for_po returned {inv}")
            sup = [i.id for i in uow.invoices.for_supplier(SupplierId("S-ACME"))]
            _check(sup == ["INV-1", "CM-1"], f"invoices.for_supplier returned {sup}")
            _check(uow.invoices.get(memo.id) == memo, "a credit memo read back differs")
            pays = [p.id for p in uow.payments.for_supplier(SupplierId("S-ACME"))]
            _check(pays == ["PAY-1"], f"payments.for_supplier returned {pays}")

    # -- transitions --------------------------------------------------------------------------------

    def test_transition_stream(self) -> None:
        """Records come back in version order, equal; lookup by idempotency key works."""
        store = self.make_store()
        records = [sample_transition(version=v) for v in (1, 2, 3)]
        with store.unit_of_work() as uow:
            uow.transitions.append(records[0])
            uow.transitions.append(sample_transition("PO-2", 1))
        with store.unit_of_work() as uow:
            uow.transitions.append(records[1])
            uow.transitions.append(records[2])
        with store.unit_of_work() as uow:
            got = uow.transitions.for_aggregate("purchase_order", "PO-1")
            _check(list(got) == records, "the transition stream read back differs")
            _check(
                uow.transitions.by_key("purchase_order", "PO-1", "PO-1-k2") == records[1],
                "by_key did not find the record",
            )
            _check(
                uow.transitions.by_key("purchase_order", "PO-1", "missing") is None,
                "by_key of an unknown key must be None",
            )
            everything = [(r.aggregate_id, r.version) for r in uow.transitions.all()]
            _check(
                everything == [("PO-1", 1), ("PO-2", 1), ("PO-1", 2), ("PO-1", 3)],
                f"all() must list records in append order, got {everything}",
            )

    def test_transition_versions_are_unique(self) -> None:
        """Appending a version twice (or skipping one) raises ConflictError and writes nothing."""
        store = self.make_store()
        with store.unit_of_work() as uow:
            uow.transitions.append(sample_transition(version=1))

        def again() -> None:
            with store.unit_of_work() as uow:
                uow.transitions.append(sample_transition(version=2))
                uow.transitions.append(sample_transition(version=2))

        _raises(ConflictError, again, "appending version 2 twice")
        _raises(
            ConflictError,
            lambda: self._append(store, sample_transition(version=5)),
            "appending version 5 after version 1",
        )
        with store.unit_of_work() as uow:
            versions = [r.version for r in uow.transitions.for_aggregate("purchase_order", "PO-1")]
        _check(versions == [1], f"failed appends left records behind: {versions}")

    # -- sequences ----------------------------------------------------------------------------------

    def test_sequences_count_per_key(self) -> None:
        """next_value starts at 1 and counts per key; reserve hands out a fresh block."""
        store = self.make_store()
        with store.unit_of_work() as uow:
            got = [uow.sequences.next_value("A") for _ in range(3)]
            _check(got == [1, 2, 3], f"next_value gave {got}, expected [1, 2, 3]")
            _check(uow.sequences.next_value("B") == 1, "keys must count independently")
        with store.unit_of_work() as uow:
            block = uow.sequences.reserve("A", 10)
            _check(
                list(block) == list(range(4, 14)), f"reserve gave {block}, expected range(4, 14)"
            )
            _check(uow.sequences.next_value("A") == 14, "next_value after a reserve must follow it")
            _check(uow.sequences.current("A") == 14, "current() must be the last value handed out")

    def test_sequences_never_repeat_across_threads(self) -> None:
        """Concurrent units of work never get the same value of a key."""
        store = self.make_store()
        per_worker = 50
        seen: list[int] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(per_worker):
                    with store.unit_of_work() as uow:
                        value = uow.sequences.next_value("T")
                    with lock:
                        seen.append(value)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(self.concurrent_workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _check(not errors, f"workers failed: {errors[:3]}")
        total = per_worker * self.concurrent_workers
        _check(
            sorted(seen) == list(range(1, total + 1)),
            f"values were repeated or skipped: {len(set(seen))} distinct of {len(seen)}",
        )

    # -- durability ----------------------------------------------------------------------------------

    def test_reopen_keeps_everything(self) -> None:
        """(Durable stores) data committed before reopening reads back equal."""
        store = self.make_store()
        po = sample_po()
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)
            uow.invoices.add(sample_invoice())
            uow.transitions.append(sample_transition())
            uow.sequences.next_value("K")
        reopened = self.reopen_store(store)
        if reopened is None:
            return
        with reopened.unit_of_work() as uow:
            _check(uow.purchase_orders.get(po.id) == po, "the PO changed across reopening")
            _check(
                uow.invoices.get(sample_invoice().id) == sample_invoice(),
                "the invoice changed across reopening",
            )
            _check(
                list(uow.transitions.for_aggregate("purchase_order", "PO-1"))
                == [sample_transition()],
                "the transition stream changed across reopening",
            )
            _check(uow.sequences.next_value("K") == 2, "the sequence restarted after reopening")

    # -- audit trail and outbox (stores that keep them) ----------------------------------------------

    def test_audit_trail_chains_committed_records_only(self) -> None:
        """(Stores with an audit trail) every committed record is chained, in commit order; a
        rolled-back one leaves no trace and no gap."""
        store = self.make_store()
        if not isinstance(store, AuditedStore):
            return
        first = sample_transition()
        self._append(store, first)
        try:
            with store.unit_of_work() as uow:
                uow.transitions.append(sample_transition(version=2))
                raise _Boom
        except _Boom:
            pass
        self._append(store, sample_transition(version=2))
        rows = list(store.audit_rows())
        _check([r.position for r in rows] == [1, 2], f"positions {[r.position for r in rows]}")
        _check([r.version for r in rows] == [1, 2], "the trail is not in commit order")
        report = verify_rows(rows)
        _check(report.ok, f"the store's own chain does not verify: {report}")

    def test_outbox_commits_with_the_state(self) -> None:
        """(Stores with an outbox) messages written in a unit of work exist exactly when it
        committed; delivery is recorded per subscriber."""
        store = self.make_store()
        if not isinstance(store, OutboxStore):
            return
        record = sample_transition(domain_events=("comment_added", "po_touched"))
        try:
            with store.unit_of_work() as uow:
                uow.outbox.add(record)  # type: ignore[attr-defined]
                raise _Boom
        except _Boom:
            pass
        _check(store.outbox_pending("s", 10) == [], "a rolled-back message was kept")
        with store.unit_of_work() as uow:
            uow.outbox.add(record)  # type: ignore[attr-defined]
        pending = store.outbox_pending("s", 10)
        _check(
            [p.message.name for p in pending] == list(record.domain_events),
            f"expected {list(record.domain_events)}, got {[p.message.name for p in pending]}",
        )
        first = pending[0].message
        store.outbox_failed("s", first.seq, "boom", first.at)
        again = store.outbox_pending("s", 10)
        _check(again[0].attempts == 1, "a failed delivery was not counted")
        store.outbox_delivered("s", first.seq, first.at)
        _check(
            all(p.message.seq != first.seq for p in store.outbox_pending("s", 10)),
            "a delivered message is still pending",
        )
        _check(len(store.outbox_pending("other", 10)) == len(pending), "subscribers share cursors")

    # -- helpers -------------------------------------------------------------------------------------

    @staticmethod
    def _save_po(store: Store, po: Any) -> None:
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(po)

    @staticmethod
    def _append(store: Store, record: Any) -> None:
        with store.unit_of_work() as uow:
            uow.transitions.append(record)


def _checks() -> Iterator[str]:
    for name in dir(StoreContract):
        if name.startswith("test_"):
            yield name


def run_conformance(
    make_store: Callable[[], Store],
    reopen_store: Callable[[Store], Store | None] | None = None,
) -> list[ContractFailure]:
    """Run every check of :class:`StoreContract` without pytest; return the failures (empty: all pass).

    >>> from potrack.memory import InMemoryStore
    >>> run_conformance(InMemoryStore)
    []
    """

    class _Contract(StoreContract):
        def make_store(self) -> Store:
            return make_store()

        def reopen_store(self, store: Store) -> Store | None:
            return reopen_store(store) if reopen_store else None

    contract = _Contract()
    failures = []
    for name in _checks():
        try:
            getattr(contract, name)()
        except Exception as exc:
            failures.append(ContractFailure(name, f"{type(exc).__name__}: {exc}"))
    return failures
