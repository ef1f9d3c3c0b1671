"""SQLite: potrack's embedded default store (standard library ``sqlite3``, WAL mode).

:class:`SQLiteStore` implements every storage Protocol of :mod:`potrack.typing` on one database
file that several threads and processes may share:

* a unit of work is one transaction, started with ``BEGIN IMMEDIATE`` (writers queue for the
  lock, waiting up to ``timeout`` seconds); it commits on normal exit and rolls back on an
  exception, so all of a business event's writes land or none do;
* aggregates carry a version and are saved with ``UPDATE ... WHERE version = n - 1``; anything else
  raises :class:`~potrack.exceptions.ConflictError` and writes nothing;
* sequences are rows updated in the unit's transaction, so values never repeat across processes
  and a rolled-back value is not consumed (gapless);
* documents are stored as JSON through :func:`potrack.serialization.make_converter`, with the
  columns hosts query on (number, supplier, state, creation time) indexed.

Durability: ``synchronous="NORMAL"`` (the default) survives a crashed or killed process — a
transaction is either wholly there or not at all — but an operating-system crash or power loss
may lose the last transactions; pass ``synchronous="FULL"`` to sync every commit to disk.

The schema is versioned (``PRAGMA user_version``) and migrated forward when a database made by an
older potrack is opened; a database made by a newer potrack is refused with
:class:`~potrack.exceptions.SchemaVersionError`.

>>> import tempfile, os
>>> from potrack.testing.samples import sample_po
>>> path = os.path.join(tempfile.mkdtemp(), "po.sqlite")
>>> store = SQLiteStore(path)
>>> with store.unit_of_work() as uow:
...     uow.purchase_orders.save(sample_po())
>>> with SQLiteStore(path).unit_of_work() as uow:
...     uow.purchase_orders.require("PO-1").amount
Money('1050.00', 'USD')
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from potrack.audit import (
    GENESIS,
    HASH_V2,
    AuditRow,
    ChainKey,
    chain_hash,
    content_hash,
    link_hash,
    row_digest,
)
from potrack.events import TransitionRecord
from potrack.exceptions import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    SchemaVersionError,
    StorageError,
)
from potrack.outbox import OutboxMessage, Pending, messages_of
from potrack.records import (
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    Payment,
    POState,
    PurchaseOrder,
    PurchaseOrderId,
    Requisition,
    SupplierId,
)
from potrack.serialization import (
    IncrementalEncoder,
    PotrackConverter,
    dumps,
    loads,
    make_converter,
)

__all__ = ["SCHEMA_VERSION", "SQLiteFile", "SQLiteStore", "open_trail"]

T = TypeVar("T")


def _v2_audit_and_outbox(conn: sqlite3.Connection) -> None:
    """2: the hash-chained audit trail (existing transition records are chained in commit
    order), append-only triggers, the outbox and its deliveries.

    The transition table is rebuilt so that the chain position *is* the rowid: appending a record
    then writes one table page and three index pages, not six.
    """
    conn.execute("ALTER TABLE transitions RENAME TO transitions_v1")
    conn.execute("DROP INDEX transitions_key")
    conn.execute("DROP INDEX transitions_at")
    for statement in _V2_SQL:
        conn.execute(statement)
    prev = GENESIS
    rows = conn.execute(
        "SELECT aggregate, aggregate_id, version, key, event, at_us, record "
        "FROM transitions_v1 ORDER BY seq"
    )
    for position, (aggregate, agg_id, version, key, event, at_us, record) in enumerate(
        rows.fetchall(), start=1
    ):
        digest = content_hash(record)
        link = chain_hash(position, prev, digest)
        conn.execute(
            "INSERT INTO transitions (position, aggregate, aggregate_id, version, key, event, "
            "at_us, record, content_hash, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (position, aggregate, agg_id, version, key, event, at_us, record, digest, prev, link),
        )
        prev = link
    conn.execute("DROP TABLE transitions_v1")
    for statement in _V2_TRIGGERS:
        conn.execute(statement)


_V2_SQL = (
    # No AUTOINCREMENT: nothing is ever deleted (the triggers below), so the rowid is dense and
    # increasing without the extra sqlite_sequence write per insert.
    """CREATE TABLE transitions (
        position INTEGER PRIMARY KEY,
        aggregate TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        key TEXT NOT NULL,
        event TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        record TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        UNIQUE (aggregate, aggregate_id, version)
    )""",
    "CREATE INDEX transitions_key ON transitions(aggregate, aggregate_id, key)",
    "CREATE INDEX transitions_at ON transitions(at_us)",
    """CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        aggregate TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        at_us INTEGER NOT NULL,
        actor TEXT NOT NULL,
        event TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    """CREATE TABLE outbox_deliveries (
        subscriber TEXT NOT NULL,
        seq INTEGER NOT NULL REFERENCES outbox(seq),
        delivered_us INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        retry_us INTEGER,
        PRIMARY KEY (subscriber, seq)
    )""",
)

_V2_TRIGGERS = tuple(
    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} BEGIN SELECT RAISE(ABORT, "
    f"'{what} is append-only: its rows cannot be {done}'); END"
    for table, what in (("transitions", "the audit trail"), ("outbox", "the outbox"))
    for verb, done in (("UPDATE", "changed"), ("DELETE", "deleted"))
)


def _v3_hash_scheme(conn: sqlite3.Connection) -> None:
    """3: each trail row records how it was hashed (``scheme``): rows written before stay
    ``v1`` (the hash covers the record's JSON; verify checks the other columns against it), new
    rows are ``v2`` (the hash covers every column) or keyed (``hmac-sha256:<key id>``)."""
    conn.execute("ALTER TABLE transitions ADD COLUMN scheme TEXT NOT NULL DEFAULT 'v1'")


_MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # 1: aggregates, documents, transition records, sequences
    """
    CREATE TABLE requisitions (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        requester TEXT NOT NULL,
        department TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX requisitions_state ON requisitions(state);
    CREATE TABLE purchase_orders (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        number TEXT,
        supplier_id TEXT NOT NULL,
        state TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX purchase_orders_number ON purchase_orders(number);
    CREATE INDEX purchase_orders_supplier ON purchase_orders(supplier_id, id);
    CREATE INDEX purchase_orders_state ON purchase_orders(state, id);
    CREATE INDEX purchase_orders_created ON purchase_orders(created_us);
    CREATE TABLE documents (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        po_id TEXT,
        supplier_id TEXT,
        doc TEXT NOT NULL,
        UNIQUE (kind, id)
    );
    CREATE INDEX documents_po ON documents(kind, po_id, seq);
    CREATE INDEX documents_supplier ON documents(kind, supplier_id, seq);
    CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        aggregate TEXT NOT NULL,
        aggregate_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        key TEXT NOT NULL,
        event TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        record TEXT NOT NULL,
        UNIQUE (aggregate, aggregate_id, version)
    );
    CREATE INDEX transitions_key ON transitions(aggregate, aggregate_id, key);
    CREATE INDEX transitions_at ON transitions(at_us);
    CREATE TABLE sequences (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    """,
    _v2_audit_and_outbox,
    _v3_hash_scheme,
    # 4: a PO number belongs to one PO (the store refuses a second holder, whoever writes)
    """
    CREATE UNIQUE INDEX purchase_orders_number_unique ON purchase_orders(number)
        WHERE number IS NOT NULL;
    """,
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this potrack writes."""


def _where(*conditions: tuple[str, object]) -> tuple[str, list[object]]:
    """A WHERE clause of the conditions whose value is not None, and its arguments."""
    kept = [(sql, value) for sql, value in conditions if value is not None]
    clause = f"WHERE {' AND '.join(sql for sql, _ in kept)}" if kept else ""
    return clause, [value for _, value in kept]


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Aggregates(Generic[T]):
    def __init__(
        self,
        uow: _UnitOfWork,
        table: str,
        kind: str,
        cls: type[T],
        columns: Callable[[T], dict[str, Any]],
    ) -> None:
        self._uow = uow
        self._table = table
        self._kind = kind
        self._cls = cls
        self._columns = columns

    def _load(self, text: str) -> T:
        return loads(text, self._cls, converter=self._uow.converter)

    def get(self, id: str) -> T | None:
        row = self._uow.conn.execute(
            f"SELECT version, doc FROM {self._table} WHERE id = ?", (id,)
        ).fetchone()
        if row is None:
            return None
        # Documents are immutable and every change bumps the version: a document parsed before
        # at this version is this document (parsing is most of a load's cost).
        key = (self._table, id)
        hit = self._uow.cached(key)
        if hit is not None and hit[0] == row[0]:
            found: T = hit[1]
            return found
        loaded = self._load(row[1])
        # Remembered in the unit only: a version read inside a transaction may be one this unit
        # wrote, which a rollback takes back; the shared cache learns it once the unit commits.
        self._uow.local[key] = (row[0], loaded)
        return loaded

    def require(self, id: str) -> T:
        found = self.get(id)
        if found is None:
            raise NotFoundError(self._kind, id)
        return found

    def _held(self, id: str) -> int | None:
        row = self._uow.conn.execute(
            f"SELECT version FROM {self._table} WHERE id = ?", (id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def save(self, aggregate: T) -> None:
        key: str = aggregate.id  # type: ignore[attr-defined]
        version: int = aggregate.version  # type: ignore[attr-defined]
        columns = self._columns(aggregate)
        doc = self._uow.encoder.encode(f"{self._table}:{key}", aggregate)
        conn = self._uow.conn
        if version == 1:
            names = ["id", "version", *columns, "doc"]
            marks = ", ".join("?" for _ in names)
            try:
                conn.execute(
                    f"INSERT INTO {self._table} ({', '.join(names)}) VALUES ({marks})",
                    (key, version, *columns.values(), doc),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(self._kind, key, 0, self._held(key)) from None
            self._uow.local[(self._table, key)] = (version, aggregate)
            return
        # Set only the indexed columns that changed: SQLite rewrites an index entry for every
        # column named in SET, and those pages are most of what a commit writes.
        hit = self._uow.cached((self._table, key))
        if hit is not None and hit[0] == version - 1:
            before = self._columns(hit[1])
            columns = {name: value for name, value in columns.items() if before[name] != value}
        sets = ", ".join(f"{name} = ?" for name in ["version", *columns, "doc"])
        cursor = conn.execute(
            f"UPDATE {self._table} SET {sets} WHERE id = ? AND version = ?",
            (version, *columns.values(), doc, key, version - 1),
        )
        if cursor.rowcount != 1:
            raise ConflictError(self._kind, key, version - 1, self._held(key))
        self._uow.local[(self._table, key)] = (version, aggregate)

    def all(self) -> Iterator[T]:
        for (text,) in self._uow.conn.execute(f"SELECT doc FROM {self._table} ORDER BY id"):
            yield self._load(text)


class _PurchaseOrders(_Aggregates[PurchaseOrder]):
    def save(self, aggregate: PurchaseOrder) -> None:
        number = aggregate.number
        if number is not None:
            hit = self._uow.cache.get((self._table, aggregate.id))
            known = hit is not None and hit[0] == aggregate.version - 1 and hit[1].number == number
            if not known:
                row = self._uow.conn.execute(
                    "SELECT id FROM purchase_orders WHERE number = ? AND id <> ? LIMIT 1",
                    (number, aggregate.id),
                ).fetchone()
                if row is not None:
                    raise DuplicateError("purchase order number", number, f"held by {row[0]}")
        super().save(aggregate)

    def by_number(self, number: str) -> PurchaseOrder | None:
        row = self._uow.conn.execute(
            "SELECT doc FROM purchase_orders WHERE number = ? ORDER BY id LIMIT 1", (number,)
        ).fetchone()
        return None if row is None else self._load(row[0])

    def find(
        self,
        *,
        supplier_id: SupplierId | None = None,
        state: POState | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[PurchaseOrder]:
        clause, args = _where(
            ("supplier_id = ?", supplier_id),
            ("state = ?", None if state is None else str(state)),
            ("created_us >= ?", None if created_from is None else _micros(created_from)),
            ("created_us < ?", None if created_to is None else _micros(created_to)),
        )
        for (text,) in self._uow.conn.execute(
            f"SELECT doc FROM purchase_orders {clause} ORDER BY id", args
        ):
            yield self._load(text)


class _Documents(Generic[T]):
    def __init__(
        self,
        uow: _UnitOfWork,
        kind: str,
        cls: type[T],
        owners: Callable[[T], tuple[str | None, str | None]],
    ) -> None:
        self._uow = uow
        self._kind = kind
        self._cls = cls
        self._owners = owners

    def _load(self, text: str) -> T:
        return loads(text, self._cls, converter=self._uow.converter)

    def get(self, id: str) -> T | None:
        row = self._uow.conn.execute(
            "SELECT doc FROM documents WHERE kind = ? AND id = ?", (self._kind, id)
        ).fetchone()
        return None if row is None else self._load(row[0])

    def add(self, document: T) -> None:
        key: str = document.id  # type: ignore[attr-defined]
        po_id, supplier_id = self._owners(document)
        try:
            self._uow.conn.execute(
                "INSERT INTO documents (kind, id, po_id, supplier_id, doc) VALUES (?, ?, ?, ?, ?)",
                (
                    self._kind,
                    key,
                    po_id,
                    supplier_id,
                    dumps(document, converter=self._uow.converter),
                ),
            )
        except sqlite3.IntegrityError:
            raise DuplicateError(self._kind, key) from None

    def _where(self, column: str, value: str) -> tuple[T, ...]:
        rows = self._uow.conn.execute(
            f"SELECT doc FROM documents WHERE kind = ? AND {column} = ? ORDER BY seq",
            (self._kind, value),
        )
        return tuple(self._load(text) for (text,) in rows)

    def for_po(self, po_id: PurchaseOrderId) -> tuple[T, ...]:
        return self._where("po_id", po_id)

    def for_supplier(self, supplier_id: SupplierId) -> tuple[T, ...]:
        return self._where("supplier_id", supplier_id)


class _Transitions:
    def __init__(self, uow: _UnitOfWork) -> None:
        self._uow = uow

    def _load(self, text: str) -> TransitionRecord:
        return loads(text, TransitionRecord, converter=self._uow.converter)

    def append(self, record: TransitionRecord) -> None:
        conn = self._uow.conn
        (last,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM transitions "
            "WHERE aggregate = ? AND aggregate_id = ?",
            (record.aggregate, record.aggregate_id),
        ).fetchone()
        if record.version != last + 1:
            raise ConflictError(
                f"{record.aggregate} transition stream",
                record.aggregate_id,
                record.version - 1,
                last,
            )
        text = dumps(record, converter=self._uow.converter)
        head = conn.execute(
            "SELECT position, hash FROM transitions ORDER BY position DESC LIMIT 1"
        ).fetchone()
        position, prev = (1, GENESIS) if head is None else (head[0] + 1, head[1])
        key = self._uow.chain_key
        scheme = HASH_V2 if key is None else key.scheme
        columns = (
            record.aggregate,
            record.aggregate_id,
            record.version,
            record.event.key,
            record.event_name,
            _micros(record.at),
            text,
        )
        digest = row_digest(scheme, *columns)
        link = link_hash(scheme, position, prev, digest, None if key is None else key.secret)
        conn.execute(
            "INSERT INTO transitions (aggregate, aggregate_id, version, key, event, at_us, record, "
            "position, content_hash, prev_hash, hash, scheme) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*columns, position, digest, prev, link, scheme),
        )

    def for_aggregate(self, aggregate: str, aggregate_id: str) -> tuple[TransitionRecord, ...]:
        rows = self._uow.conn.execute(
            "SELECT record FROM transitions WHERE aggregate = ? AND aggregate_id = ? "
            "ORDER BY version",
            (aggregate, aggregate_id),
        )
        return tuple(self._load(text) for (text,) in rows)

    def by_key(self, aggregate: str, aggregate_id: str, key: str) -> TransitionRecord | None:
        row = self._uow.conn.execute(
            "SELECT record FROM transitions WHERE aggregate = ? AND aggregate_id = ? AND key = ? "
            "ORDER BY version LIMIT 1",
            (aggregate, aggregate_id, key),
        ).fetchone()
        return None if row is None else self._load(row[0])

    def all(self) -> Iterator[TransitionRecord]:
        for (text,) in self._uow.conn.execute("SELECT record FROM transitions ORDER BY position"):
            yield self._load(text)


class _Outbox:
    """Outbox messages written in the unit of work's transaction."""

    def __init__(self, uow: _UnitOfWork) -> None:
        self._uow = uow

    def add(self, record: TransitionRecord) -> None:
        self._uow.conn.executemany(
            "INSERT INTO outbox (name, aggregate, aggregate_id, version, at_us, actor, event, data) "
            "VALUES (:name, :aggregate, :aggregate_id, :version, :at_us, :actor, :event, :data)",
            [{**row, "at_us": _micros(row.pop("at"))} for row in messages_of(record)],
        )


class _Sequences:
    def __init__(self, uow: _UnitOfWork) -> None:
        self._uow = uow

    def next_value(self, key: str) -> int:
        return self._bump(key, 1)

    def reserve(self, key: str, count: int) -> range:
        if type(count) is not int or count < 1:
            raise ValueError(f"reserve needs a positive int count, got {count!r}")
        last = self._bump(key, count)
        return range(last - count + 1, last + 1)

    def _bump(self, key: str, by: int) -> int:
        (value,) = self._uow.conn.execute(
            "INSERT INTO sequences (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value RETURNING value",
            (key, by),
        ).fetchone()
        return int(value)

    def current(self, key: str) -> int:
        row = self._uow.conn.execute("SELECT value FROM sequences WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])


def _invoice_owners(doc: Invoice) -> tuple[str | None, str | None]:
    return doc.po_id, doc.supplier_id


_CACHE_SIZE = 4_096
"""Parsed aggregates kept per store and thread, keyed by id and checked against the version."""


class _UnitOfWork:
    def __init__(
        self,
        conn: sqlite3.Connection,
        converter: PotrackConverter,
        cache: dict[tuple[str, str], tuple[int, Any]],
        encoder: IncrementalEncoder,
        chain_key: ChainKey | None = None,
    ) -> None:
        self.conn = conn
        self.chain_key = chain_key
        self.converter = converter
        self.cache = cache
        self.encoder = encoder
        self.local: dict[tuple[str, str], tuple[int, Any]] = {}
        """Aggregates read or saved in this unit: they join ``cache`` only once it commits."""
        self.depth = 0
        """How many nested units (savepoints) are open inside this one."""
        self.requisitions: _Aggregates[Requisition] = _Aggregates(
            self,
            "requisitions",
            "requisition",
            Requisition,
            lambda r: {
                "state": str(r.state),
                "requester": r.requester,
                "department": r.department,
                "created_us": _micros(r.created_at),
            },
        )
        self.purchase_orders = _PurchaseOrders(
            self,
            "purchase_orders",
            "purchase order",
            PurchaseOrder,
            lambda p: {
                "number": p.number,
                "supplier_id": p.supplier_id,
                "state": str(p.state),
                "created_us": _micros(p.created_at),
            },
        )
        self.receipts: _Documents[GoodsReceipt] = _Documents(
            self, "goods receipt", GoodsReceipt, lambda d: (d.po_id, None)
        )
        self.returns: _Documents[GoodsReturn] = _Documents(
            self, "goods return", GoodsReturn, lambda d: (d.po_id, None)
        )
        self.invoices: _Documents[Invoice] = _Documents(self, "invoice", Invoice, _invoice_owners)
        self.payments: _Documents[Payment] = _Documents(
            self, "payment", Payment, lambda d: (None, d.supplier_id)
        )
        self.transitions = _Transitions(self)
        self.sequences = _Sequences(self)
        self.outbox = _Outbox(self)

    def cached(self, key: tuple[str, str]) -> tuple[int, Any] | None:
        """This unit's own copy of an aggregate, else the committed one the thread remembers."""
        hit = self.local.get(key)
        return hit if hit is not None else self.cache.get(key)

    def publish(self) -> None:
        """After COMMIT: what this unit read and wrote is committed, so the thread may keep it."""
        cache = self.cache
        for key, entry in self.local.items():
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[key] = entry
        self.local.clear()


class SQLiteStore:
    """Every storage Protocol on one SQLite file; safe across threads and processes.

    Args:
        path: the database file (created if missing).
        timeout: seconds a unit of work waits for the write lock before failing.
        synchronous: ``"NORMAL"`` (survives process crashes) or ``"FULL"`` (also power loss).
        checkpoint_pages: WAL pages (4 KiB each) after which the committing unit of work
            copies the WAL into the database file (a *checkpoint*, which syncs to disk).  The
            default, 10,000 (about 40 MiB of WAL), checkpoints ten times less often than SQLite's
            own default of 1,000 and lifts write throughput by about a quarter; lower it where
            disk space for the WAL is scarce.
        chain_key: keys the audit trail (HMAC-SHA-256, see :class:`~potrack.audit.ChainKey`):
            records appended through this store carry its key id; rotate by opening the store
            with a new key and keeping the old ones for :func:`~potrack.audit.verify`.

    Raises:
        SchemaVersionError: the file was written by a newer potrack.
        StorageError: the file is not a database potrack can open.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        synchronous: str = "NORMAL",
        converter: PotrackConverter | None = None,
        checkpoint_pages: int = 10_000,
        chain_key: ChainKey | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if isinstance(checkpoint_pages, bool) or not isinstance(checkpoint_pages, int):
            raise TypeError(f"checkpoint_pages must be an int, got {checkpoint_pages!r}")
        self.path = str(Path(path))
        self.timeout = timeout
        self.synchronous = synchronous
        self.checkpoint_pages = checkpoint_pages
        self.converter = converter or make_converter()
        self.chain_key = chain_key
        self._local = threading.local()
        self._migrate()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(self.checkpoint_pages)}")
        except sqlite3.DatabaseError as err:
            raise StorageError(f"{self.path}: cannot open as a SQLite database: {err}") from err
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _migrate(self) -> None:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as err:
            raise StorageError(f"{self.path}: cannot open as a SQLite database: {err}") from err
        try:
            (found,) = conn.execute("PRAGMA user_version").fetchone()
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(self.path, found, SCHEMA_VERSION)
            if (
                found == 0
                and conn.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
            ):
                raise StorageError(f"{self.path}: has tables but is not a potrack database")
            for version in range(found, SCHEMA_VERSION):
                step = _MIGRATIONS[version]
                if callable(step):
                    step(conn)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            self._end(conn, "ROLLBACK")
            raise
        self._end(conn, "COMMIT")

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        (version,) = self._connection().execute("PRAGMA user_version").fetchone()
        return int(version)

    @contextmanager
    def unit_of_work(self) -> Iterator[_UnitOfWork]:
        """One transaction: commits on normal exit, rolls back on an exception.

        A unit opened inside another one in the same thread is a *savepoint* of it, as in
        :class:`~potrack.memory.InMemoryStore`: it sees the outer unit's writes, an exception
        undoes only its own, and its writes land when the outer unit commits (or not at all).

        If COMMIT or ROLLBACK fails in any way the connection is closed (which ends its
        transaction and frees the write lock) and the next unit of work opens a new one.

        Raises:
            StorageError: the write lock could not be had within ``timeout`` seconds, or the
                commit failed (nothing was written).
        """
        conn = self._connection()
        current: _UnitOfWork | None = getattr(self._local, "uow", None)
        if current is not None and current.conn is conn and conn.in_transaction:
            with self._savepoint(current) as nested:
                yield nested
            return
        if conn.in_transaction:
            raise StorageError("a transaction is already open on this thread's connection")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            raise StorageError(f"{self.path}: could not start a unit of work: {err}") from err
        uow = _UnitOfWork(conn, self.converter, self._cache(), self._encoder(), self.chain_key)
        self._local.uow = uow
        try:
            try:
                yield uow
            except BaseException:
                self._end(conn, "ROLLBACK")
                raise
            self._end(conn, "COMMIT")
        finally:
            self._local.uow = None
        uow.publish()

    @property
    def in_unit_of_work(self) -> bool:
        """Whether this thread has a unit of work open on this store."""
        return getattr(self._local, "uow", None) is not None

    @contextmanager
    def _savepoint(self, uow: _UnitOfWork) -> Iterator[_UnitOfWork]:
        uow.depth += 1
        name = f"potrack_{uow.depth}"
        try:
            self._run(uow.conn, f"SAVEPOINT {name}")
            try:
                yield uow
            except BaseException:
                self._run(uow.conn, f"ROLLBACK TO {name}")
                self._run(uow.conn, f"RELEASE {name}")
                uow.local.clear()  # it may hold versions the savepoint took back
                raise
            self._run(uow.conn, f"RELEASE {name}")
        finally:
            uow.depth -= 1

    def _run(self, conn: sqlite3.Connection, sql: str) -> None:
        """A statement that must not fail halfway: on failure, reset the connection."""
        try:
            conn.execute(sql)
        except BaseException as err:
            self._reset(conn)
            if isinstance(err, Exception) and not isinstance(err, StorageError):
                raise StorageError(f"{self.path}: {sql} failed: {err!r}") from err
            raise

    def _end(self, conn: sqlite3.Connection, verb: str) -> None:
        """COMMIT or ROLLBACK; whatever fails, no transaction (and no lock) is left behind."""
        try:
            conn.execute(verb)
        except BaseException as err:
            self._reset(conn)
            if verb == "ROLLBACK":
                return  # closing the connection rolled the transaction back
            if isinstance(err, Exception):
                raise StorageError(
                    f"{self.path}: commit failed, nothing was written: {err!r}"
                ) from err
            raise

    def _reset(self, conn: sqlite3.Connection) -> None:
        """Roll back whatever is open; if even that fails, close the connection (SQLite then
        rolls back and frees the lock) so this thread's next unit of work opens a new one."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not conn.in_transaction:
                return
        except BaseException:  # closing below is the remedy for any failure
            pass
        try:
            conn.close()
        finally:
            self._local.conn = None

    def _encoder(self) -> IncrementalEncoder:
        found: IncrementalEncoder | None = getattr(self._local, "encoder", None)
        if found is None or getattr(self._local, "encoder_pid", None) != os.getpid():
            found = self._local.encoder = IncrementalEncoder(self.converter)
            self._local.encoder_pid = os.getpid()
        return found

    def _cache(self) -> dict[tuple[str, str], tuple[int, Any]]:
        found: dict[tuple[str, str], tuple[int, Any]] | None = getattr(self._local, "cache", None)
        if found is None or getattr(self._local, "cache_pid", None) != os.getpid():
            found = self._local.cache = {}
            self._local.cache_pid = os.getpid()
        return found

    # -- audit trail ----------------------------------------------------------------------------

    def audit_rows(
        self,
        *,
        aggregate_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRow]:
        """The hash-chained trail in position order (one document's, or a period's).

        Reads in one snapshot (a read transaction), so a concurrent writer cannot tear it.
        """
        clause, args = _trail_filter(aggregate_id, since, until)
        yield from _trail_rows(self._connection(), clause, args)

    def read_only_trail(self) -> AbstractContextManager[_ReadOnlyTrail]:
        """This store's file opened read-only, in one snapshot: what :func:`potrack.audit.verify`
        reads (it never changes the file)."""
        return open_trail(self.path)

    # -- outbox -----------------------------------------------------------------------------------

    def outbox_pending(self, subscriber: str, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages ``subscriber`` has not had, in order."""
        rows = (
            self._connection()
            .execute(
                "SELECT o.seq, o.name, o.aggregate, o.aggregate_id, o.version, o.at_us, o.actor, "
                "o.event, o.data, COALESCE(d.attempts, 0), d.retry_us "
                "FROM outbox o LEFT JOIN outbox_deliveries d ON d.subscriber = ? AND d.seq = o.seq "
                "WHERE d.delivered_us IS NULL ORDER BY o.seq LIMIT ?",
                (subscriber, limit),
            )
            .fetchall()
        )
        return [
            Pending(
                OutboxMessage(
                    seq=seq,
                    name=name,
                    aggregate=aggregate,
                    aggregate_id=agg_id,
                    version=version,
                    at=_from_micros(at_us),
                    actor=actor,
                    event=event,
                    data=json.loads(data),
                ),
                attempts,
                None if retry_us is None else _from_micros(retry_us),
            )
            for seq, name, aggregate, agg_id, version, at_us, actor, event, data, attempts, retry_us in rows
        ]

    def _delivery(self, sql: str, args: tuple[Any, ...]) -> None:
        conn = self._connection()
        if conn.in_transaction:
            raise StorageError("record outbox deliveries outside a unit of work")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(sql, args)
        except BaseException:
            self._end(conn, "ROLLBACK")
            raise
        self._end(conn, "COMMIT")

    def outbox_delivered(self, subscriber: str, seq: int, at: datetime) -> None:
        """Record that ``subscriber`` has message ``seq`` (its own small transaction)."""
        self._delivery(
            "INSERT INTO outbox_deliveries (subscriber, seq, delivered_us) VALUES (?, ?, ?) "
            "ON CONFLICT (subscriber, seq) DO UPDATE SET delivered_us = excluded.delivered_us",
            (subscriber, seq, _micros(at)),
        )

    def outbox_failed(self, subscriber: str, seq: int, error: str, retry_at: datetime) -> None:
        """Record a failed delivery: attempts + 1, the error, when to retry."""
        self._delivery(
            "INSERT INTO outbox_deliveries (subscriber, seq, attempts, last_error, retry_us) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (subscriber, seq) DO UPDATE SET "
            "attempts = attempts + 1, last_error = excluded.last_error, retry_us = excluded.retry_us",
            (subscriber, seq, error, _micros(retry_at)),
        )

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


_ROW_SQL = (
    "SELECT position, aggregate, aggregate_id, version, at_us, record, content_hash, prev_hash, "
    "hash, event, key, scheme FROM transitions"
)


def _trail_filter(
    aggregate_id: str | None, since: datetime | None, until: datetime | None
) -> tuple[str, list[object]]:
    """The WHERE clause selecting one document's records, or a period's."""
    return _where(
        ("aggregate_id = ?", aggregate_id),
        ("at_us >= ?", None if since is None else _micros(since)),
        ("at_us < ?", None if until is None else _micros(until)),
    )


def _trail_rows(conn: sqlite3.Connection, clause: str = "", args: Any = ()) -> Iterator[AuditRow]:
    """Trail rows as the cursor yields them (never the whole trail in memory)."""
    cursor = conn.execute(f"{_ROW_SQL} {clause} ORDER BY position", args)
    return _as_rows(cursor)


def _as_rows(cursor: sqlite3.Cursor) -> Iterator[AuditRow]:
    for (
        position,
        aggregate,
        agg_id,
        version,
        at_us,
        record,
        digest,
        prev,
        link,
        event,
        key,
        scheme,
    ) in cursor:
        yield AuditRow(
            position=position,
            aggregate=aggregate,
            aggregate_id=agg_id,
            version=version,
            at=_from_micros(at_us),
            content=record,
            content_hash=digest,
            prev_hash=prev,
            hash=link,
            event=event,
            key=key,
            scheme=scheme,
        )


_ATTACHMENT_KINDS = ("goods receipt", "goods return", "invoice")


class _ReadOnlyTrail:
    """A potrack database opened read-only in one read transaction (see :func:`open_trail`)."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path

    def audit_rows(
        self,
        *,
        aggregate_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRow]:
        """The trail in position order (filtered: a PO's records, or a period's)."""
        clause, args = _trail_filter(aggregate_id, since, until)
        return _trail_rows(self._conn, clause, args)

    def audit_streams(self, aggregate: str) -> Iterator[list[AuditRow]]:
        """Each document's rows (version order), documents in id order."""
        cursor = self._conn.execute(
            f"{_ROW_SQL} WHERE aggregate = ? ORDER BY aggregate_id, version", (aggregate,)
        )
        stream: list[AuditRow] = []
        for row in _as_rows(cursor):
            if stream and stream[0].aggregate_id != row.aggregate_id:
                yield stream
                stream = []
            stream.append(row)
        if stream:
            yield stream

    def stored_documents(self, aggregate: str) -> Iterator[tuple[str, object]]:
        """``(id, JSON)`` of every stored PO or requisition, in id order."""
        table = "purchase_orders" if aggregate == "purchase_order" else "requisitions"
        yield from self._conn.execute(f"SELECT id, doc FROM {table} ORDER BY id")

    def stored_attachments(self, po_id: str) -> list[tuple[str, str, object]]:
        """``(kind, id, JSON)`` of the receipts, returns and invoices stored for a PO."""
        return list(
            self._conn.execute(
                "SELECT kind, id, doc FROM documents WHERE kind IN (?, ?, ?) AND po_id = ? "
                "ORDER BY seq",
                (*_ATTACHMENT_KINDS, po_id),
            )
        )

    def orphan_attachments(self) -> Iterator[tuple[str, str]]:
        """``(kind, id)`` of stored receipts, returns and invoices of POs with no trail."""
        yield from self._conn.execute(
            "SELECT kind, id FROM documents d WHERE kind IN (?, ?, ?) AND NOT EXISTS "
            "(SELECT 1 FROM transitions t WHERE t.aggregate = 'purchase_order' "
            "AND t.aggregate_id = d.po_id)",
            _ATTACHMENT_KINDS,
        )

    def stored_payments(self) -> Iterator[tuple[str, object]]:
        """``(id, JSON)`` of every stored payment."""
        yield from self._conn.execute("SELECT id, doc FROM documents WHERE kind = 'payment'")

    def outbox_messages(self) -> Iterator[OutboxMessage]:
        """The whole outbox in sequence order."""
        for seq, name, aggregate, agg_id, version, at_us, actor, event, data in self._conn.execute(
            "SELECT seq, name, aggregate, aggregate_id, version, at_us, actor, event, data "
            "FROM outbox ORDER BY seq"
        ):
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data
            yield OutboxMessage(
                seq=seq,
                name=name,
                aggregate=aggregate,
                aggregate_id=agg_id,
                version=version,
                at=_from_micros(at_us),
                actor=actor,
                event=event,
                data=parsed,
            )


class SQLiteFile:
    """A potrack SQLite file named for reading only: :func:`potrack.audit.verify` opens it
    read-only (nothing is created, migrated or written; see :func:`open_trail`).

    Raises (when opened):
        StorageError, SchemaVersionError: as :func:`open_trail`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(Path(path))

    def read_only_trail(self) -> AbstractContextManager[_ReadOnlyTrail]:
        """The file opened read-only, in one snapshot."""
        return open_trail(self.path)

    def __repr__(self) -> str:
        return f"SQLiteFile({self.path!r})"


@contextmanager
def open_trail(path: str | os.PathLike[str]) -> Iterator[_ReadOnlyTrail]:
    """Open a potrack database read-only, in one snapshot, to verify or export its trail.

    Nothing is written: no schema is created or migrated, the journal mode is left alone.

    Raises:
        StorageError: no such file, an empty file, not a SQLite database, a SQLite database that
            potrack did not make, or one of an older schema (open it once with
            :class:`SQLiteStore` to migrate it, then verify).
        SchemaVersionError: a database written by a newer potrack.
    """
    where = str(Path(path))
    if not os.path.isfile(where):
        raise StorageError(f"{where}: no such file")
    if os.path.getsize(where) == 0:
        raise StorageError(f"{where}: an empty file, not a potrack database")
    uri = f"{Path(where).resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as err:
        raise StorageError(f"{where}: cannot open read-only: {err}") from err
    try:
        try:
            conn.execute("BEGIN")
            (found,) = conn.execute("PRAGMA user_version").fetchone()
            (tables,) = conn.execute(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
        except sqlite3.DatabaseError as err:
            raise StorageError(f"{where}: not a SQLite database ({err})") from err
        if found == 0:
            what = "has tables but is not" if tables else "is an empty SQLite database, not"
            raise StorageError(f"{where}: {what} a potrack database")
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(where, found, SCHEMA_VERSION)
        if found < SCHEMA_VERSION:
            raise StorageError(
                f"{where}: written by an older potrack (schema version {found}, this one reads "
                f"{SCHEMA_VERSION}); open it once with SQLiteStore to migrate it, then verify"
            )
        yield _ReadOnlyTrail(conn, where)
    finally:
        conn.close()
