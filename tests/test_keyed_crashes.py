"""Issue 24 — a keyed store killed at every step verifies after each crash.

A child process (``os.fork``) runs a fixed script of business events on a keyed SQLite store
and kills itself (SIGKILL) just before its n-th SQL statement; n runs over every statement the
script executes, so the crash lands before every BEGIN, read, write and COMMIT in turn.  After
each crash the file must pass ``verify`` with the key (chain, columns, documents replayed,
outbox), hold a whole prefix of the script's events, and take new events.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from potrack import audit
from potrack.events import AddComment, SubmitForApproval
from potrack.service import Purchasing
from potrack.sqlite import SQLiteFile, SQLiteStore
from potrack.testing.scenario import Scenario

KEY = audit.ChainKey("crash-test", b"c" * 32)


def _script(path: Path, crash_at: int | None) -> int:
    """Run the events on ``path``; with ``crash_at``, die before that statement.  Returns how
    many statements ran (when it did not die)."""
    s = Scenario()
    store = SQLiteStore(path, chain_key=KEY)
    count = 0

    def step(_: str) -> None:
        nonlocal count
        count += 1
        if crash_at is not None and count == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    store._connection().set_trace_callback(step)
    svc = Purchasing(store, s.lifecycle, numbers=s.numbers, clock=s.clock)
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(id="PO-C"), s.buyer).document
    s.clock.set(s.at(0.1))
    svc.order(po.id, AddComment(text="first"), s.buyer)
    s.clock.set(s.at(0.2))
    svc.order(po.id, SubmitForApproval(), s.buyer)
    with store.unit_of_work():  # two events in one unit: both or neither
        s.clock.set(s.at(0.3))
        svc.order(po.id, AddComment(text="second"), s.buyer)
        s.clock.set(s.at(0.4))
        svc.order(po.id, AddComment(text="third"), s.buyer)
    store._connection().set_trace_callback(None)
    return count


def _in_child(path: Path, crash_at: int | None) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends by SIGKILL or _exit
        try:
            _script(path, crash_at)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.fixture(scope="module")
def statements(tmp_path_factory: pytest.TempPathFactory) -> int:
    path = tmp_path_factory.mktemp("count") / "count.sqlite"
    SQLiteStore(path).close()
    return _script(path, None)


def test_a_keyed_store_killed_at_every_step_verifies(tmp_path: Path, statements: int) -> None:
    assert statements > 40  # the script really has many steps to die at
    seen_versions = set()
    for crash_at in range(1, statements + 1):
        path = tmp_path / f"crash-{crash_at}.sqlite"
        SQLiteStore(path).close()
        status = _in_child(path, crash_at)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, crash_at
        report = audit.verify(SQLiteFile(path), keys=[KEY])
        assert report.ok, f"crash before statement {crash_at}: {report}"
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        versions = [v for (v,) in conn.execute("SELECT version FROM transitions ORDER BY position")]
        conn.close()
        assert versions == list(range(1, len(versions) + 1))
        assert len(versions) != 4, "the two events of one unit landed apart"
        seen_versions.add(len(versions))
        store = SQLiteStore(path, chain_key=KEY)
        if versions:
            s = Scenario()
            s.clock.set(s.at(1))
            Purchasing(store, s.lifecycle, clock=s.clock).order(
                "PO-C", AddComment(text="after"), s.buyer
            )
        store.close()
        after = audit.verify(SQLiteFile(path), keys=[KEY])
        assert after.ok and after.checked == len(versions) + (1 if versions else 0), str(after)
    assert seen_versions == {0, 1, 2, 3}  # a crash before every commit, and none after the last
