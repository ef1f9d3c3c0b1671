"""SQLite under faults: killed processes, racing approvers, several writers on one file."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from potrack import audit
from potrack.events import SubmitForApproval
from potrack.outbox import Dispatcher
from potrack.records import POState
from potrack.service import Purchasing
from potrack.sqlite import SQLiteStore
from potrack.testing.scenario import Scenario
from tests import workers
from tests.conftest import ROOT


def _spawn(mode: str, path: Path, ready: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.workers", mode, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == ready
    return proc


def test_a_process_killed_in_a_unit_of_work_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "po.sqlite"
    SQLiteStore(path).close()
    proc = _spawn("die", path, "written")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    store = SQLiteStore(path)
    with store.unit_of_work() as uow:
        assert uow.purchase_orders.get("PO-KILLED") is None
        assert list(uow.transitions.all()) == []
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
    assert audit.verify(store).ok


def test_a_process_killed_while_committing_leaves_whole_events(tmp_path: Path) -> None:
    path = tmp_path / "po.sqlite"
    SQLiteStore(path).close()
    proc = _spawn("busy", path, "busy")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    store = SQLiteStore(path)
    with store.unit_of_work() as uow:
        po = uow.purchase_orders.require("PO-BUSY")
        records = uow.transitions.for_aggregate("purchase_order", "PO-BUSY")
    # The stored PO is exactly the last committed record's version: no half event.
    assert [r.version for r in records] == list(range(1, po.version + 1))
    assert len(po.comments) == po.version - 1
    report = audit.verify(store)
    assert report.ok and report.checked == po.version
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (po.version,)


def test_two_processes_approving_at_once_one_wins_the_other_retries(tmp_path: Path) -> None:
    path = tmp_path / "po.sqlite"
    s = Scenario(policy=workers.parallel_policy())
    store = SQLiteStore(path)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(), s.buyer).document
    s.clock.set(s.at(0.5))
    po = svc.order(po.id, SubmitForApproval(), s.buyer).document
    assert po.approval is not None and len(po.approval.route.steps) == 2
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=workers.approve_at_once, args=(str(path), po.id, who, barrier, results))
        for who in ("mgr-1", "cfo-1")
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    # One stored at once; the other met the conflict, reloaded and stored on its next try.
    assert sorted(map(tuple, outcomes.values())) == [("conflict", "stored"), ("stored",)]
    final = svc.get_order(po.id)
    assert final.state is POState.APPROVED
    assert final.approval is not None
    assert sorted(d.actor for d in final.approval.decisions) == ["cfo-1", "mgr-1"]
    history = svc.history(po.id)
    assert [r.version for r in history] == [1, 2, 3, 4]
    assert Counter(r.event_name for r in history)["decide"] == 2


def test_four_processes_store_every_event_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "po.sqlite"
    SQLiteStore(path).close()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        ids = [
            po_id
            for chunk in pool.map(workers.write_events, [str(path)] * 4, range(4), [1_000] * 4)
            for po_id in chunk
        ]
    store = SQLiteStore(path)
    with store.unit_of_work() as uow:
        records = list(uow.transitions.all())
        versions = {po_id: uow.purchase_orders.require(po_id).version for po_id in ids}
    assert len(records) == 4_000
    assert len({(r.aggregate_id, r.version) for r in records}) == 4_000
    assert len({r.key for r in records}) == 4_000
    assert sum(versions.values()) == 4_000
    per_po: dict[str, list[int]] = {}
    for r in records:
        per_po.setdefault(r.aggregate_id, []).append(r.version)
    assert all(v == list(range(1, versions[k] + 1)) for k, v in per_po.items())
    report = audit.verify(store)
    assert report.ok and report.checked == 4_000
    delivered: list[str] = []
    Dispatcher(store, {"count": lambda m: delivered.append(m.key)}).dispatch(limit=10_000)
    assert len(delivered) == len(set(delivered)) == 4_000  # one domain event per record here
