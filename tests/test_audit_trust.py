"""Issue 24 — the audit trail proves the documents: verify replays every document from its
trail, the hash covers every column, a keyed chain resists re-hashing and forged appends, and
``potrack audit verify`` never changes the file it checks.

The tamper matrix: every kind of edit × (no anchor, head anchor, keyed chain), with the verdict
each must get (docs/storage.md shows it as a table)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack import audit
from potrack.cli import main
from potrack.demo import run_demo
from potrack.events import TransitionRecord
from potrack.exceptions import StorageError, ValidationError
from potrack.lifecycle import replay
from potrack.serialization import dumps, loads
from potrack.sqlite import SQLiteFile, SQLiteStore

KEY = audit.ChainKey("2026-q4", b"k" * 32)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's quarter: 43 records, 2 POs, 3 requisitions, receipts, invoices, payments."""
    db = tmp_path_factory.mktemp("trust") / "demo.sqlite"
    run_demo(str(db), out=io.StringIO(), batch_lines=0)
    SQLiteStore(db).close()  # checkpointed: the file alone holds it
    return db


@pytest.fixture(scope="module")
def keyed_demo(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same quarter, its trail keyed from the first record (as a store opened with
    ``chain_key=KEY`` from the start writes it)."""
    db = tmp_path_factory.mktemp("trust-keyed") / "keyed.sqlite"
    shutil.copy(demo, db)
    with _Raw(db) as conn:
        prev = audit.GENESIS
        for row in _rows(conn):
            sealed = audit.seal(row, prev_hash=prev, key=KEY)
            _write_row(conn, sealed)
            prev = sealed.hash
    return db


@pytest.fixture
def db(demo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.sqlite"
    shutil.copy(demo, copy)
    return copy


# -- a forger's tools: raw SQL around the triggers -----------------------------------------------


class _Raw:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN")
        for trigger in ("no_update", "no_delete"):
            for table in ("transitions", "outbox"):
                self.conn.execute(f"DROP TRIGGER IF EXISTS {table}_{trigger}")
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def _rows(conn: sqlite3.Connection) -> list[audit.AuditRow]:
    from potrack.sqlite import _ROW_SQL, _as_rows

    return list(_as_rows(conn.execute(f"{_ROW_SQL} ORDER BY position")))


def _write_row(conn: sqlite3.Connection, row: audit.AuditRow) -> None:
    conn.execute(
        "UPDATE transitions SET record = ?, at_us = ?, event = ?, content_hash = ?, "
        "prev_hash = ?, hash = ?, scheme = ? WHERE position = ?",
        (
            row.content,
            audit.micros(row.at),
            row.event,
            row.content_hash,
            row.prev_hash,
            row.hash,
            row.scheme,
            row.position,
        ),
    )


def _reseal_from(conn: sqlite3.Connection, position: int) -> None:
    """Re-hash every row from ``position`` on, as a forger without the key can (v2)."""
    rows = _rows(conn)
    prev = rows[position - 2].hash if position > 1 else audit.GENESIS
    for row in rows[position - 1 :]:
        sealed = audit.seal(row, prev_hash=prev)
        _write_row(conn, sealed)
        prev = sealed.hash


def _resync(conn: sqlite3.Connection, po_id: str) -> None:
    """Make the stored PO what its (tampered) trail replays to: a careful forger's last step."""
    records = [
        loads(text, TransitionRecord)
        for (text,) in conn.execute(
            "SELECT record FROM transitions WHERE aggregate_id = ? ORDER BY version", (po_id,)
        )
    ]
    po = replay(records)
    conn.execute(
        "UPDATE purchase_orders SET doc = ?, version = ?, state = ? WHERE id = ?",
        (dumps(po), po.version, str(po.state), po_id),
    )


def _comment_position(conn: sqlite3.Connection) -> int:
    (position,) = conn.execute(
        "SELECT MIN(position) FROM transitions WHERE event = 'comment'"
    ).fetchone()
    return int(position)


def edit_record(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE transitions SET record = replace(record, '\"po_', '\"po_') || ' ' WHERE position = 20"
    )


def edit_time(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE transitions SET at_us = at_us - 86400000000 WHERE position = 20")


def edit_event_name(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE transitions SET event = 'decide' WHERE position = 20")


def edit_aggregate_id(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE transitions SET aggregate_id = 'PO-9' WHERE position = 20")


def delete_middle(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM transitions WHERE position = 20")


def rewrite_and_rehash(conn: sqlite3.Connection) -> None:
    """Change who approved a requisition, re-hash the rest of the chain, fix the document."""
    position = 3
    (record,) = conn.execute(
        "SELECT record FROM transitions WHERE position = ?", (position,)
    ).fetchone()
    data = json.loads(record)
    data["actor"] = "mallory"
    conn.execute(
        "UPDATE transitions SET record = ? WHERE position = ?",
        (json.dumps(data, sort_keys=True, separators=(",", ":")), position),
    )
    _reseal_from(conn, position)
    req_id = data["aggregate_id"]
    from potrack.lifecycle import replay_requisition

    records = [
        loads(text, TransitionRecord)
        for (text,) in conn.execute(
            "SELECT record FROM transitions WHERE aggregate_id = ? ORDER BY version", (req_id,)
        )
    ]
    req = replay_requisition(records)
    conn.execute("UPDATE requisitions SET doc = ? WHERE id = ?", (dumps(req), req_id))
    conn.execute(
        "UPDATE outbox SET actor = 'mallory' WHERE aggregate_id = ? AND version = ?",
        (req_id, data["version"]),
    )


def forged_append(conn: sqlite3.Connection) -> None:
    """Append a correctly chained record (a comment on PO-2), its document and its outbox row,
    as the library would have written them — but without the chain key."""
    rows = _rows(conn)
    last = [r for r in rows if r.aggregate_id == "PO-2"][-1]
    data = json.loads(last.content)
    data.update(
        version=last.version + 1,
        actor="mallory",
        event={"type": "AddComment", "key": "forged-1", "text": "approved offline"},
        from_state=data["to_state"],
        domain_events=["comment_added"],
    )
    record = loads(json.dumps(data), TransitionRecord)
    text = dumps(record)
    row = audit.AuditRow(
        position=rows[-1].position + 1,
        aggregate="purchase_order",
        aggregate_id="PO-2",
        version=record.version,
        at=record.at,
        content=text,
        content_hash="",
        prev_hash=rows[-1].hash,
        hash="",
        event="comment",
        key="forged-1",
    )
    row = audit.seal(row)
    conn.execute(
        "INSERT INTO transitions (position, aggregate, aggregate_id, version, key, event, at_us, "
        "record, content_hash, prev_hash, hash, scheme) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            row.position,
            row.aggregate,
            row.aggregate_id,
            row.version,
            row.key,
            row.event,
            audit.micros(row.at),
            row.content,
            row.content_hash,
            row.prev_hash,
            row.hash,
            row.scheme,
        ),
    )
    from potrack.outbox import messages_of

    for message in messages_of(record):
        conn.execute(
            "INSERT INTO outbox (name, aggregate, aggregate_id, version, at_us, actor, event, data) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (
                message["name"],
                message["aggregate"],
                message["aggregate_id"],
                message["version"],
                audit.micros(message["at"]),
                message["actor"],
                message["event"],
                message["data"],
            ),
        )
    _resync(conn, "PO-2")


def truncate_tail(conn: sqlite3.Connection) -> None:
    """Drop the newest record, its outbox messages, and roll its document back."""
    (position, agg_id, version) = conn.execute(
        "SELECT position, aggregate_id, version FROM transitions ORDER BY position DESC LIMIT 1"
    ).fetchone()
    (text,) = conn.execute(
        "SELECT record FROM transitions WHERE position = ?", (position,)
    ).fetchone()
    event = json.loads(text)["event"]
    for field, kind in (
        ("payment", "payment"),
        ("receipt", "goods receipt"),
        ("invoice", "invoice"),
    ):
        if field in event:
            conn.execute(
                "DELETE FROM documents WHERE kind = ? AND id = ?", (kind, event[field]["id"])
            )
    conn.execute("DELETE FROM transitions WHERE position = ?", (position,))
    conn.execute("DELETE FROM outbox WHERE aggregate_id = ? AND version = ?", (agg_id, version))
    _resync(conn, agg_id)


def edit_po_row(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE purchase_orders SET doc = replace(doc, '\"6.50\"', '\"5.50\"') WHERE id = 'PO-1'"
    )


def forged_save(conn: sqlite3.Connection) -> None:
    """Bump a PO's version and set it approved, with no transition record (a save around the
    lifecycle)."""
    (doc,) = conn.execute("SELECT doc FROM purchase_orders WHERE id = 'PO-2'").fetchone()
    data = json.loads(doc)
    data["version"] += 1
    data["state"] = "approved"
    conn.execute(
        "UPDATE purchase_orders SET doc = ?, version = version + 1, state = 'approved' WHERE id = 'PO-2'",
        (json.dumps(data),),
    )


def edit_invoice_row(conn: sqlite3.Connection) -> None:
    (seq, doc) = conn.execute(
        "SELECT seq, doc FROM documents WHERE kind = 'invoice' LIMIT 1"
    ).fetchone()
    data = json.loads(doc)
    data["number"] = "FORGED-1"
    conn.execute("UPDATE documents SET doc = ? WHERE seq = ?", (json.dumps(data), seq))


def edit_outbox(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE outbox SET name = 'po_cancelled' WHERE seq = 7")


def delete_outbox(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM outbox WHERE seq = 7")


Edit = Callable[[sqlite3.Connection], None]

# Each edit, and the verdict (the first finding's kind, or None: not detected) without an
# anchor, with the head anchor taken before the edit, and on a keyed chain with the key.
MATRIX: list[tuple[Edit, str | None, str | None, str | None]] = [
    (edit_record, "edited", "edited", "edited"),
    (edit_time, "edited", "edited", "edited"),
    (edit_event_name, "edited", "edited", "edited"),
    (edit_aggregate_id, "edited", "edited", "edited"),
    (delete_middle, "deleted", "deleted", "deleted"),
    # the rewrite changes who approved: the approval facts no longer hold, even without an anchor
    (rewrite_and_rehash, "approval not proven", "rewritten", "unkeyed"),
    (forged_append, None, None, "unkeyed"),
    (truncate_tail, None, "truncated", None),
    (edit_po_row, "document differs", "document differs", "document differs"),
    (forged_save, "document differs", "document differs", "document differs"),
    (edit_invoice_row, "attachment differs", "attachment differs", "attachment differs"),
    (edit_outbox, "outbox edited", "outbox edited", "outbox edited"),
    (delete_outbox, "outbox missing", "outbox missing", "outbox missing"),
]


def _verdict(report: audit.AuditReport) -> str | None:
    return None if report.ok else report.problem


@pytest.mark.parametrize(
    ("edit", "plain", "anchored", "keyed"), MATRIX, ids=[m[0].__name__ for m in MATRIX]
)
def test_tamper_matrix(
    edit: Edit,
    plain: str | None,
    anchored: str | None,
    keyed: str | None,
    demo: Path,
    keyed_demo: Path,
    tmp_path: Path,
) -> None:
    for source, mode in ((demo, "plain"), (keyed_demo, "keyed")):
        copy = tmp_path / f"{mode}.sqlite"
        shutil.copy(source, copy)
        keys = [KEY] if mode == "keyed" else None
        before = audit.verify(SQLiteFile(copy), keys=keys)
        assert before.ok, str(before)
        with _Raw(copy) as conn:
            edit(conn)
        if mode == "plain":
            assert _verdict(audit.verify(SQLiteFile(copy))) == plain, str(
                audit.verify(SQLiteFile(copy))
            )
            got = _verdict(audit.verify(SQLiteFile(copy), before.head))
            assert got == anchored, str(audit.verify(SQLiteFile(copy), before.head))
        else:
            assert _verdict(audit.verify(SQLiteFile(copy), keys=keys)) == keyed, str(
                audit.verify(SQLiteFile(copy), keys=keys)
            )


def test_every_differing_document_is_reported_not_just_the_first(db: Path) -> None:
    with _Raw(db) as conn:
        forged_save(conn)
        edit_po_row(conn)
        edit_invoice_row(conn)
    report = audit.verify(SQLiteFile(db))
    assert not report.ok and report.found == 3
    subjects = sorted(f.subject for f in report.findings)
    assert subjects[1:] == ["purchase_order PO-1", "purchase_order PO-2"]
    assert subjects[0].startswith("invoice ")
    po2 = next(f for f in report.findings if f.subject == "purchase_order PO-2")
    assert "state approved (replay: in_fulfilment)" in po2.detail


def test_a_document_saved_with_no_trail_at_all_is_reported(db: Path) -> None:
    with _Raw(db) as conn:
        conn.execute(
            "INSERT INTO purchase_orders SELECT 'PO-3', version, NULL, supplier_id, 'approved', "
            "created_us, replace(doc, '\"PO-2\"', '\"PO-3\"') FROM purchase_orders WHERE id = 'PO-2'"
        )
    report = audit.verify(SQLiteFile(db))
    assert [(f.kind, f.subject) for f in report.findings] == [
        ("document without trail", "purchase_order PO-3")
    ]


def test_a_keyed_chain_names_its_key_and_verifies_across_rotation(tmp_path: Path) -> None:
    from potrack.events import AddComment
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    path = tmp_path / "rotate.sqlite"
    old, new = KEY, audit.ChainKey("2027-q1", b"n" * 32)
    s = Scenario()
    svc = Purchasing(
        SQLiteStore(path, chain_key=old), s.lifecycle, numbers=s.numbers, clock=s.clock
    )
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(), s.buyer).document
    svc = Purchasing(
        SQLiteStore(path, chain_key=new), s.lifecycle, numbers=s.numbers, clock=s.clock
    )
    s.clock.set(s.at(1))
    svc.order(po.id, AddComment(text="after rotation"), s.buyer)
    rows = list(SQLiteStore(path).audit_rows())
    assert [r.scheme for r in rows] == ["hmac-sha256:2026-q4", "hmac-sha256:2027-q1"]
    assert audit.verify(SQLiteFile(path), keys=[old, new]).ok
    missing = audit.verify(SQLiteFile(path), keys=[new])
    assert (missing.problem, missing.position) == ("unknown key", 1)
    wrong = audit.verify(SQLiteFile(path), keys={"2026-q4": b"x" * 32, "2027-q1": new.secret})
    assert (wrong.problem, wrong.position) == ("forged", 1)
    unchecked = audit.verify(SQLiteFile(path))
    assert unchecked.ok and unchecked.unchecked_keys == ("2026-q4", "2027-q1")
    assert "NOT checked" in str(unchecked)


def test_chain_keys_are_checked_and_never_printed() -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        audit.ChainKey("k", b"short")
    with pytest.raises(ValidationError, match="letters"):
        audit.ChainKey("a:b", b"k" * 32)
    assert "kkkk" not in repr(KEY) and "kkkk" not in str(KEY)


# -- anchors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0:" + "0" * 64,
        "0:anything",
        "5:abc",
        "5:" + "g" * 64,
        " 5:" + "a" * 64,
        "-1:" + "a" * 64,
        "5",
    ],
)
def test_malformed_anchors_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="POSITION:HASH"):
        audit.parse_anchor(text)


def test_an_upper_case_anchor_is_the_same_digest(demo: Path) -> None:
    head = audit.verify(SQLiteFile(demo)).head
    upper = f"{head[0]}:{head[1].upper()}"
    assert audit.verify(SQLiteFile(demo), upper).ok
    status, text = _cli("audit", "verify", str(demo), "--anchor", upper)
    assert status == 0 and "intact" in text


# -- verify never writes --------------------------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stderr(io.StringIO()) as err:
        status = main(list(argv), out=out)
    return status, out.getvalue() + err.getvalue()


def _fingerprint(path: Path) -> dict[str, str]:
    """The database file and its write-ahead log (if any), and their digests.  (SQLite's
    shared-memory index, ``-shm``, is no part of the database: a read-only reader of a WAL
    database maps it, and an empty ``-wal`` may appear beside it.)"""
    found = {}
    for p in sorted(path.parent.iterdir()):
        if p.name == path.name or (p.name == f"{path.name}-wal" and p.stat().st_size):
            found[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def test_verify_opens_read_only_and_changes_nothing(db: Path) -> None:
    before = _fingerprint(db)
    assert _cli("audit", "verify", str(db))[0] == 0
    assert audit.verify(SQLiteFile(db)).ok and audit.verify(SQLiteFile(str(db))).ok
    assert _fingerprint(db) == before


def test_an_empty_file_is_reported_and_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    status, text = _cli("audit", "verify", str(path))
    assert status == 2 and "empty file, not a potrack database" in text
    assert path.stat().st_size == 0 and _fingerprint(path) == {
        "empty.sqlite": hashlib.sha256(b"").hexdigest()
    }


def test_a_foreign_database_keeps_its_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    before = _fingerprint(path)
    status, text = _cli("audit", "verify", str(path))
    assert status == 2 and "not a potrack database" in text
    assert _fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.sqlite"]
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_an_older_schema_is_reported_not_migrated(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 2")
    before = _fingerprint(db)
    status, text = _cli("audit", "verify", str(db))
    assert status == 2 and "older potrack (schema version 2" in text
    assert _fingerprint(db) == before
    with pytest.raises(StorageError, match="older potrack"):
        audit.verify(SQLiteFile(db))


def test_a_text_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("hello " * 1000)
    status, text = _cli("audit", "verify", str(path))
    assert status == 2 and "not a SQLite database" in text


def test_verify_of_a_store_object_reads_a_snapshot_read_only(db: Path) -> None:
    store = SQLiteStore(db)
    before = _fingerprint(db)
    assert audit.verify(store).ok
    assert _fingerprint(db) == before


def _memory_chain() -> list[audit.AuditRow]:
    from potrack.events import AddComment
    from potrack.memory import InMemoryStore
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario()
    store = InMemoryStore()
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    for i in range(3):
        s.clock.set(s.at(i))
        po = svc.create_order(s.po_document(), s.buyer).document
        s.clock.set(s.at(i + 0.5))
        svc.order(po.id, AddComment(text="note"), s.buyer)
    return list(store.audit_rows())


MEMORY_CHAIN = _memory_chain()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_an_edit_of_any_column_of_any_record_is_found_where_it_happened(
    data: st.DataObject,
) -> None:
    from datetime import timedelta

    rows = MEMORY_CHAIN
    i = data.draw(st.integers(0, len(rows) - 1))
    column = data.draw(
        st.sampled_from(["aggregate", "aggregate_id", "version", "at", "event", "key", "content"])
    )
    row = rows[i]
    changed = {
        "aggregate": "requisition",
        "aggregate_id": row.aggregate_id + "X",
        "version": row.version + 1,
        "at": row.at + timedelta(microseconds=data.draw(st.integers(1, 10**12))),
        "event": "decide",
        "key": row.key + "0",
        "content": row.content.replace("note", "NOTE") + " ",
    }[column]
    tampered = [*rows[:i], attrs.evolve(row, **{column: changed}), *rows[i + 1 :]]
    report = audit.verify_rows(tampered)
    assert (report.ok, report.problem, report.position) == (False, "edited", i + 1)
    anchored = audit.verify_rows(tampered, rows and (rows[-1].position, rows[-1].hash))
    assert (anchored.problem, anchored.position) == ("edited", i + 1)


def test_cli_verifies_a_keyed_chain_with_key_files(keyed_demo: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "chain.key"
    key_file.write_bytes(KEY.secret + b"\n")
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"w" * 32)
    status, text = _cli("audit", "verify", str(keyed_demo), "--key", f"{KEY.id}={key_file}")
    assert status == 0 and "intact: 43 records" in text and "NOT checked" not in text
    status, text = _cli("audit", "verify", str(keyed_demo), "--key", f"{KEY.id}={wrong}")
    assert status == 1 and "broken at position 1: forged" in text
    status, text = _cli("audit", "verify", str(keyed_demo))
    assert status == 0 and "keyed links NOT checked (no key given for 2026-q4)" in text
    status, text = _cli("audit", "verify", str(keyed_demo), "--key", "no-equals-sign")
    assert status == 2 and "KEY_ID=FILE" in text


def test_the_memory_store_keys_its_chain_too() -> None:
    from potrack.events import AddComment
    from potrack.memory import InMemoryStore
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario()
    store = InMemoryStore(chain_key=KEY)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    po = svc.create_order(s.po_document(), s.buyer).document
    s.clock.set(s.at(1))
    svc.order(po.id, AddComment(text="keyed"), s.buyer)
    rows = list(store.audit_rows())
    assert {r.scheme for r in rows} == {"hmac-sha256:2026-q4"}
    assert audit.verify(store, keys=[KEY]).ok
    assert audit.verify(store).unchecked_keys == ("2026-q4",)
    forged = [*rows[:1], audit.seal(rows[1])]  # re-sealed without the key
    report = audit.verify_rows(forged, keys=[KEY])
    assert (report.problem, report.position) == ("unkeyed", 2)


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        ("DELETE FROM outbox WHERE seq = 7", [("outbox missing", "outbox")]),
        ("UPDATE outbox SET actor = 'mallory' WHERE seq = 7", [("outbox edited", "outbox 7")]),
        (
            "INSERT INTO outbox (name, aggregate, aggregate_id, version, at_us, actor, event, data) "
            "SELECT 'po_cancelled', aggregate, aggregate_id, version, at_us, actor, event, data "
            "FROM outbox WHERE seq = 45",
            [("outbox inserted", "outbox 46")],
        ),
    ],
    ids=["deleted", "edited", "appended"],
)
def test_one_outbox_edit_is_one_finding(db: Path, edit: str, found: list[tuple[str, str]]) -> None:
    with _Raw(db) as conn:
        conn.execute(edit)
    report = audit.verify(SQLiteFile(db))
    assert [(f.kind, f.subject) for f in report.findings] == found
