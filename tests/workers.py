"""Functions run in worker processes by the concurrency tests (importable under ``spawn``)."""

from __future__ import annotations

from datetime import date

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
