"""Functions run in worker processes by the concurrency tests (importable under ``spawn``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from potrack.numbering import BlockAllocator, GaplessAllocator, NumberingContext, NumberingScheme
from potrack.sqlite import SQLiteStore

PATTERN = "PO-{dept}-{yyyy}-{seq:06}-{check:mod97}"


class _Boom(Exception):
    pass


def allocate_numbers(path: str, mode: str, count: int, worker: int) -> list[str]:
    """Allocate ``count`` numbers on the SQLite file at ``path``; gapless mode also rolls back every
    tenth unit of work after taking a number, which must not leave a gap."""
    store = SQLiteStore(path, timeout=120)
    scheme = NumberingScheme(PATTERN)
    ctx = NumberingContext(on=date(2026, 11, 24), department="OPS")
    numbers: list[str] = []
    if mode == "gapless":
        allocator = GaplessAllocator(scheme)
        i = 0
        while len(numbers) < count:
            i += 1
            try:
                with store.unit_of_work() as uow:
                    number = allocator.allocate(ctx, uow)
                    if i % 10 == 0:
                        raise _Boom
            except _Boom:
                continue
            numbers.append(number)
    else:
        fast = BlockAllocator(scheme, store, block_size=100)
        numbers = [fast.allocate(ctx) for _ in range(count)]
    store.close()
    return numbers


# -- storage faults ----------------------------------------------------------------------------------


def parallel_policy() -> Any:
    """One level, two parallel steps: the manager and the CFO approve at the same time."""
    from potrack import approval as ap

    return ap.Policy(
        name="parallel",
        base_currency="USD",
        rules=(
            ap.Rule(
                id="both",
                steps=(
                    ap.StepSpec(
                        level=1, approver=ap.Approver.role("approver"), mode=ap.StepMode.PARALLEL
                    ),
                    ap.StepSpec(
                        level=1, approver=ap.Approver.role("cfo"), mode=ap.StepMode.PARALLEL
                    ),
                ),
            ),
        ),
    )


def approve_at_once(path: str, po_id: str, who: str, barrier: Any, results: Any) -> None:
    """Load the PO, wait for the other approver, then approve what was loaded (expected version):
    one process wins; the other gets ConflictError, reloads and approves again."""
    from potrack import approval as ap
    from potrack.events import RecordDecision
    from potrack.exceptions import ConflictError
    from potrack.records import Decision
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario(policy=parallel_policy())
    store = SQLiteStore(path, timeout=60)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    actor = s.actor(who)
    outcome = []
    for attempt in range(5):
        po = svc.get_order(po_id)
        assert po.approval is not None
        # the CFO also holds the approver role: each takes the step only they (or fewest) fill
        step = min(
            (
                st
                for st in ap.active_steps(po.approval)
                if who in ap.step_candidates(po.approval, st)
            ),
            key=lambda st: len(ap.step_candidates(po.approval, st)),
        )
        decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
        if attempt == 0:
            barrier.wait()
        try:
            s.clock.set(s.at(1))
            svc.order(
                po_id,
                decision,
                actor,
                expected_version=po.version,
            )
        except ConflictError:
            outcome.append("conflict")
            continue
        outcome.append("stored")
        break
    store.close()
    results.put((who, outcome))


def write_events(path: str, worker: int, events: int) -> list[str]:
    """Create POs and comment on them until ``events`` events are stored; the POs' ids."""
    from potrack.events import AddComment
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario()
    store = SQLiteStore(path, timeout=120)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    ids = []
    done = 0
    i = 0
    while done < events:
        s.clock.set(s.at(0))
        po = svc.create_order(s.po_document(id=f"W{worker}-{i:04d}"), s.buyer).document
        ids.append(po.id)
        done += 1
        for n in range(min(9, events - done)):
            s.clock.set(s.at(1 + n))
            svc.order(po.id, AddComment(text=f"note {n}"), s.buyer)
            done += 1
        i += 1
    store.close()
    return ids


def die_mid_unit_of_work(path: str) -> None:
    """Write a PO, its transition record and its outbox messages in one unit of work, report
    that the writes are done, and wait to be killed before committing."""
    import sys
    import time

    from potrack.testing.scenario import Scenario

    s = Scenario()
    store = SQLiteStore(path, timeout=60)
    applied = s.lifecycle.create(s.po_document(id="PO-KILLED"), s.buyer, s.at(0))
    with store.unit_of_work() as uow:
        uow.purchase_orders.save(applied.document)
        uow.transitions.append(applied.record)
        uow.outbox.add(applied.record)
        sys.stdout.write("written\n")
        sys.stdout.flush()
        time.sleep(60)  # killed here, before the commit


def commit_forever(path: str) -> None:
    """Commit comment events on one PO as fast as possible until killed."""
    import sys

    from potrack.events import AddComment
    from potrack.service import Purchasing
    from potrack.testing.scenario import Scenario

    s = Scenario()
    store = SQLiteStore(path, timeout=60)
    svc = Purchasing(store, s.lifecycle, clock=s.clock)
    s.clock.set(s.at(0))
    po = svc.create_order(s.po_document(id="PO-BUSY"), s.buyer).document
    n = 0
    while True:
        s.clock.set(s.at(1))
        svc.order(po.id, AddComment(text=f"note {n}"), s.buyer)
        n += 1
        if n == 20:
            sys.stdout.write("busy\n")
            sys.stdout.flush()


if __name__ == "__main__":
    import sys

    {"die": die_mid_unit_of_work, "busy": commit_forever}[sys.argv[1]](sys.argv[2])
