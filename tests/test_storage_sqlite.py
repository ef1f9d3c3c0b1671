"""The SQLite store passes the conformance kit, survives reopening and guards its schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from potrack.exceptions import SchemaVersionError, StorageError
from potrack.sqlite import SCHEMA_VERSION, SQLiteStore
from potrack.testing import StoreContract, run_conformance
from potrack.testing.samples import sample_po
from potrack.typing import Store


class TestSQLiteStore(StoreContract):
    """Every guarantee of the kit on a fresh SQLite file, including reopening it."""

    concurrent_workers = 4

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self._dir = tmp_path
        self._count = 0

    def make_store(self) -> Store:
        self._count += 1
        return SQLiteStore(self._dir / f"store-{self._count}.sqlite")

    def reopen_store(self, store: Store) -> Store | None:
        assert isinstance(store, SQLiteStore)
        return SQLiteStore(store.path)


def test_sqlite_store_passes_without_pytest(tmp_path: Path) -> None:
    paths = iter(range(100))
    assert (
        run_conformance(
            lambda: SQLiteStore(tmp_path / f"s{next(paths)}.sqlite"),
            lambda s: SQLiteStore(s.path),  # type: ignore[attr-defined]
        )
        == []
    )


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    SQLiteStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaVersionError) as info:
        SQLiteStore(path)
    assert info.value.found == SCHEMA_VERSION + 1
    assert "upgrade potrack" in str(info.value)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StorageError, match="not a potrack database"):
        SQLiteStore(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "text.sqlite"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StorageError, match="cannot open"):
        SQLiteStore(path)


def test_nested_unit_of_work_is_a_savepoint(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.sqlite")
    with store.unit_of_work() as outer, store.unit_of_work() as inner:
        assert inner is outer
        inner.purchase_orders.save(sample_po())
    with store.unit_of_work() as uow:
        assert uow.purchase_orders.get("PO-1") is not None


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "v.sqlite")
    assert store.schema_version == SCHEMA_VERSION
    with store.unit_of_work() as uow:
        uow.purchase_orders.save(sample_po())
    assert SQLiteStore(store.path).schema_version == SCHEMA_VERSION
