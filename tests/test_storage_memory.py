"""The conformance kit passes on the in-memory store and catches deliberately broken stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from potrack.memory import InMemoryStore, _UnitOfWork
from potrack.testing import StoreContract, run_conformance
from potrack.typing import Store


class TestInMemoryStore(StoreContract):
    """Every guarantee of the kit, as pytest tests, on the in-memory store."""

    concurrent_workers = 8

    def make_store(self) -> Store:
        return InMemoryStore()


def test_in_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(InMemoryStore(), Store)
    assert run_conformance(InMemoryStore) == []


class _NoVersionCheck(InMemoryStore):
    """Saves whatever it is given: lost updates go unnoticed."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with super().unit_of_work() as uow:
            repo = uow.purchase_orders
            repo.save = lambda po: repo.pending.__setitem__(po.id, po)  # type: ignore[method-assign]
            yield uow


class _NoRollback(InMemoryStore):
    """Commits even when the unit of work fails: half-written business events."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with self._lock:
            uow = _UnitOfWork(self)
            try:
                yield uow
            finally:
                uow.commit()


class _LosesOrder(InMemoryStore):
    """Returns a PO's documents newest first."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with super().unit_of_work() as uow:
            original = uow.receipts.for_po
            uow.receipts.for_po = lambda po_id: tuple(reversed(original(po_id)))  # type: ignore[method-assign]
            yield uow


def _failed(store_cls: type[InMemoryStore]) -> set[str]:
    return {failure.check for failure in run_conformance(store_cls)}


def test_kit_fails_a_store_without_version_checks() -> None:
    assert _failed(_NoVersionCheck) == {
        "test_insert_must_be_version_one_and_new",
        "test_po_numbers_are_unique",
        "test_skipping_a_version_conflicts",
        "test_stale_save_conflicts_and_writes_nothing",
    }


def test_kit_fails_a_store_that_does_not_roll_back() -> None:
    failed = _failed(_NoRollback)
    assert "test_rollback_writes_nothing" in failed
    assert "test_stale_save_conflicts_and_writes_nothing" in failed


def test_kit_fails_a_store_that_reorders_documents() -> None:
    assert _failed(_LosesOrder) == {"test_documents_per_po_and_supplier"}


def test_failure_messages_say_what_went_wrong() -> None:
    failures = {f.check: f.message for f in run_conformance(_NoVersionCheck)}
    assert failures["test_stale_save_conflicts_and_writes_nothing"] == (
        "AssertionError: saving a stale version did not raise ConflictError"
    )
