"""The audit trail: every transition record in a hash chain, verified and exported for auditors.

A store that keeps an audit trail (both shipped stores do) gives each transition record a
*position* (1, 2, 3... across the whole store, in commit order), the SHA-256 of its content (the
record's JSON as stored), the hash of the record before it, and its own hash::

    hash = sha256(f"{position}:{prev_hash}:{content_hash}")

so changing, removing, inserting or moving any record breaks the chain where it happened.
:func:`verify` walks the chain and reports the first break and what it looks like:

* ``edited`` — a record's content no longer matches its hash (or was re-hashed, so the next
  record no longer links to it);
* ``deleted`` — a record is missing (a gap in positions; the next record links to a hash no
  record has);
* ``inserted`` — a record sits where none was committed (the next record links past it);
* ``reordered`` — a record appears before one it links to;
* ``truncated`` / ``rewritten`` — against an *anchor*: a (position, hash) pair kept outside the
  database (printed by ``potrack audit verify``, written to a ticket or a log), which also catches
  the removal of the newest records and a chain recomputed from scratch, which no chain can
  catch on its own.

The SQLite store also refuses ``UPDATE`` and ``DELETE`` on the trail with triggers; the chain is
what still tells when someone went around them.

>>> from potrack.events import SubmitForApproval
>>> from potrack.service import Purchasing
>>> from potrack.testing.scenario import Scenario
>>> s = Scenario()
>>> svc = Purchasing(s.store, s.lifecycle, numbers=s.numbers, clock=s.clock)
>>> s.clock.set(s.at(0))
>>> po = svc.create_order(s.po_document(), s.buyer).document
>>> s.clock.set(s.at(1))
>>> _ = svc.order(po.id, SubmitForApproval(), s.buyer)
>>> report = verify(s.store)
>>> report.ok, report.checked
(True, 2)
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

import attrs

from potrack.exceptions import Problem, ValidationError

__all__ = [
    "GENESIS",
    "AuditReport",
    "AuditRow",
    "AuditedStore",
    "chain_hash",
    "content_hash",
    "export_csv",
    "export_jsonl",
    "verify",
    "verify_rows",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""


def content_hash(content: str) -> str:
    """SHA-256 of a record's stored content, hex.

    >>> content_hash("{}")[:12]
    '44136fa355b3'
    """
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def chain_hash(position: int, prev_hash: str, content_digest: str) -> str:
    """The hash of a record at ``position``, linking it to the one before."""
    return hashlib.sha256(f"{position}:{prev_hash}:{content_digest}".encode()).hexdigest()


@attrs.frozen
class AuditRow:
    """One record of the trail as stored: where it is, what it says, and its hashes."""

    position: int
    aggregate: str
    aggregate_id: str
    version: int
    at: datetime
    content: str
    """The transition record's JSON, as stored."""
    content_hash: str
    prev_hash: str
    hash: str

    @property
    def record(self) -> dict[str, Any]:
        """The record's JSON, parsed."""
        parsed: dict[str, Any] = json.loads(self.content)
        return parsed


@runtime_checkable
class AuditedStore(Protocol):
    """A store that keeps the hash-chained audit trail."""

    def audit_rows(
        self,
        *,
        aggregate_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRow]:
        """The trail in position order (filtered: a PO's records, or a period's)."""
        ...


@attrs.frozen
class AuditReport:
    """What :func:`verify` found: ``ok``, how many records it checked, the chain's head
    (position, hash) to keep as an anchor, and the first problem (kind, position, detail)."""

    ok: bool
    checked: int
    head: tuple[int, str]
    problem: str | None = None
    position: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} records, head {self.head[0]}:{self.head[1]}"
        return f"audit trail broken at position {self.position}: {self.problem} — {self.detail}"


def _broken(
    kind: str, position: int, detail: str, checked: int, head: tuple[int, str]
) -> AuditReport:
    return AuditReport(False, checked, head, kind, position, detail)


def verify_rows(rows: Iterable[AuditRow], anchor: tuple[int, str] | None = None) -> AuditReport:
    """Check a whole trail (rows in position order) and report the first break.

    ``anchor`` is a (position, hash) pair recorded earlier; the record at that position must
    still carry that hash.
    """
    chain = list(rows)
    by_hash = {row.hash: i for i, row in enumerate(chain)}
    expected_prev = GENESIS
    expected_position = 1
    head = (0, GENESIS)
    for i, row in enumerate(chain):
        if row.prev_hash != expected_prev:
            j = by_hash.get(row.prev_hash)
            if j is not None and j > i:
                return _broken(
                    "reordered",
                    row.position,
                    f"it links to the record at position {chain[j].position}, which comes after it",
                    i,
                    head,
                )
            if j is not None and j < i - 1:
                intruder = chain[j + 1]
                return _broken(
                    "inserted",
                    intruder.position,
                    f"the record after it (position {row.position}) links to position "
                    f"{chain[j].position}: it was not in the chain",
                    j + 1,
                    head,
                )
            if row.position != expected_position:
                return _broken(
                    "deleted",
                    expected_position,
                    f"positions jump from {expected_position - 1} to {row.position}",
                    i,
                    head,
                )
            if i > 0:
                return _broken(
                    "edited",
                    chain[i - 1].position,
                    f"it was re-hashed: the next record (position {row.position}) no longer "
                    "links to it",
                    i - 1,
                    head,
                )
            return _broken(
                "inserted", row.position, "the first record does not start the chain", i, head
            )
        if row.position != expected_position:
            kind = "deleted" if row.position > expected_position else "inserted"
            return _broken(
                kind,
                expected_position,
                f"expected position {expected_position}, found {row.position}",
                i,
                head,
            )
        digest = content_hash(row.content)
        if digest != row.content_hash:
            return _broken(
                "edited",
                row.position,
                f"{row.aggregate} {row.aggregate_id} v{row.version}: its content no longer "
                "matches its hash",
                i,
                head,
            )
        if chain_hash(row.position, row.prev_hash, row.content_hash) != row.hash:
            return _broken(
                "edited",
                row.position,
                f"{row.aggregate} {row.aggregate_id} v{row.version}: its hash does not follow "
                "from its content and position",
                i,
                head,
            )
        expected_prev = row.hash
        expected_position += 1
        head = (row.position, row.hash)
    if anchor is not None:
        position, anchored = anchor
        if position > head[0]:
            return _broken(
                "truncated",
                head[0] + 1,
                f"the anchor names position {position}; the trail ends at {head[0]}",
                len(chain),
                head,
            )
        if position >= 1 and chain[position - 1].hash != anchored:
            return _broken(
                "rewritten",
                position,
                "the record at the anchor's position carries another hash: the chain was "
                "recomputed",
                len(chain),
                head,
            )
    return AuditReport(True, len(chain), head)


def verify(store: AuditedStore, anchor: tuple[int, str] | None = None) -> AuditReport:
    """Verify a store's whole audit trail (see :func:`verify_rows`).

    Raises:
        ValidationError: the store keeps no audit trail.
    """
    if not isinstance(store, AuditedStore):
        raise ValidationError(
            "verify", [Problem("store", f"{type(store).__name__} keeps no audit trail")]
        )
    return verify_rows(store.audit_rows(), anchor)


_CSV_COLUMNS = [
    "position",
    "at",
    "aggregate",
    "aggregate_id",
    "version",
    "event",
    "actor",
    "from_state",
    "to_state",
    "label",
    "domain_events",
    "hash",
    "prev_hash",
]


def _rows(
    store: AuditedStore, aggregate_id: str | None, since: datetime | None, until: datetime | None
) -> Iterator[AuditRow]:
    if not isinstance(store, AuditedStore):
        raise ValidationError(
            "export", [Problem("store", f"{type(store).__name__} keeps no audit trail")]
        )
    return store.audit_rows(aggregate_id=aggregate_id, since=since, until=until)


def export_jsonl(
    store: AuditedStore,
    target: str | Path | TextIO,
    *,
    aggregate_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the trail — one PO's (``aggregate_id``) or a period's (``since`` ≤ at < ``until``)
    — as JSON Lines: ``{"position", "hash", "prev_hash", "content_hash", "record"}`` per line,
    the record exactly as stored.  Returns how many records were written.

    Raises:
        ValidationError: the store keeps no audit trail.
        OSError: the file cannot be written.
    """
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8") as fh:
            return export_jsonl(store, fh, aggregate_id=aggregate_id, since=since, until=until)
    count = 0
    for row in _rows(store, aggregate_id, since, until):
        line = {
            "position": row.position,
            "hash": row.hash,
            "prev_hash": row.prev_hash,
            "content_hash": row.content_hash,
            "record": row.record,
        }
        target.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def export_csv(
    store: AuditedStore,
    target: str | Path | TextIO,
    *,
    aggregate_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Write the trail as CSV, one row per record: position, time, document, version, event,
    actor, states, label, domain events and hashes.  Returns how many records were written.

    Raises:
        ValidationError: the store keeps no audit trail.
        OSError: the file cannot be written.
    """
    if isinstance(target, str | Path):
        with Path(target).open("w", encoding="utf-8", newline="") as fh:
            return export_csv(store, fh, aggregate_id=aggregate_id, since=since, until=until)
    writer = csv.writer(target)
    writer.writerow(_CSV_COLUMNS)
    count = 0
    for row in _rows(store, aggregate_id, since, until):
        record = row.record
        event = record.get("event", {})
        writer.writerow(
            [
                row.position,
                row.at.isoformat(),
                row.aggregate,
                row.aggregate_id,
                row.version,
                event.get("type", "") if isinstance(event, dict) else "",
                record.get("actor", ""),
                record.get("from_state") or "",
                record.get("to_state", ""),
                record.get("label", ""),
                " ".join(record.get("domain_events", ())),
                row.hash,
                row.prev_hash,
            ]
        )
        count += 1
    return count
