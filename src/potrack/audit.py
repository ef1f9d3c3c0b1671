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
import hmac
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

import attrs

from potrack.events import TransitionRecord
from potrack.exceptions import PotrackError, Problem, ValidationError
from potrack.outbox import OutboxMessage

__all__ = [
    "GENESIS",
    "HASH_V1",
    "HASH_V2",
    "KEYED",
    "AuditReport",
    "AuditRow",
    "AuditedStore",
    "ChainKey",
    "Finding",
    "TrailFile",
    "TrailSource",
    "chain_hash",
    "content_hash",
    "export_csv",
    "export_jsonl",
    "link_hash",
    "micros",
    "parse_anchor",
    "row_digest",
    "seal",
    "verify",
    "verify_rows",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""

HASH_V1 = "v1"
"""Records written before potrack 0.x's issue 24: the hash covers the record's JSON only."""

HASH_V2 = "v2"
"""The hash covers every stored column (see :func:`row_digest`)."""

KEYED = "hmac-sha256"
"""Prefix of a keyed scheme: ``hmac-sha256:<key id>`` (see :class:`ChainKey`)."""

_ANCHOR = re.compile(r"([1-9][0-9]{0,18}):([0-9a-fA-F]{64})")


def content_hash(content: str) -> str:
    """SHA-256 of a record's stored content, hex (the digest of a ``v1`` record).

    >>> content_hash("{}")[:12]
    '44136fa355b3'
    """
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def chain_hash(position: int, prev_hash: str, content_digest: str) -> str:
    """The hash of a ``v1`` record at ``position``, linking it to the one before."""
    return hashlib.sha256(f"{position}:{prev_hash}:{content_digest}".encode()).hexdigest()


def micros(at: datetime) -> int:
    """Microseconds since 1970-01-01 UTC: how a trail stores a record's time.

    >>> from datetime import UTC
    >>> micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    delta = at.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen(repr=False)
class ChainKey:
    """A host-held secret that keys the chain: each record's hash becomes an HMAC-SHA-256.

    Without the key, nobody can re-hash an edited record or append a record that verifies, even
    with write access to the database; only :func:`verify` with the key can check the chain.
    ``id`` is stored with every record it keyed, so keys can be rotated: give the store a new
    key (with a new id) and keep the old ones for verification.  Truncating the newest records
    still needs an anchor to be seen.

    >>> key = ChainKey("2026-q4", bytes(range(32)))
    >>> key
    ChainKey('2026-q4')
    """

    id: str
    secret: bytes

    def __attrs_post_init__(self) -> None:
        problems = []
        if not isinstance(self.id, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.id):
            problems.append(
                Problem("id", f"{self.id!r}: want 1-64 letters, digits, '.', '_' or '-'")
            )
        if not isinstance(self.secret, bytes) or len(self.secret) < 16:
            problems.append(Problem("secret", "want bytes, at least 16 of them (32 random ones)"))
        if problems:
            raise ValidationError("chain key", problems)

    @property
    def scheme(self) -> str:
        """The scheme recorded with each record this key seals."""
        return f"{KEYED}:{self.id}"

    def __repr__(self) -> str:
        return f"ChainKey({self.id!r})"


def row_digest(
    scheme: str,
    aggregate: str,
    aggregate_id: str,
    version: int,
    key: str,
    event: str,
    at_us: int,
    content: str,
) -> str:
    """SHA-256 of everything a trail row stores: its columns and the record's JSON.

    A ``v1`` row's digest covers the JSON only (:func:`content_hash`); :func:`verify` then checks
    the other columns against the JSON instead.
    """
    if scheme == HASH_V1:
        return content_hash(content)
    text = json.dumps(
        [scheme, aggregate, aggregate_id, version, key, event, at_us, content],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_hash(
    scheme: str, position: int, prev_hash: str, digest: str, secret: bytes | None = None
) -> str:
    """The hash linking a row to the one before: SHA-256, or HMAC-SHA-256 for a keyed scheme."""
    if scheme == HASH_V1:
        return chain_hash(position, prev_hash, digest)
    message = f"{scheme}:{position}:{prev_hash}:{digest}".encode()
    if scheme.startswith(f"{KEYED}:"):
        if secret is None:
            raise ValueError(f"{scheme}: the key is needed to compute this hash")
        return hmac.new(secret, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def parse_anchor(text: str | tuple[int, str]) -> tuple[int, str]:
    """An anchor ``POSITION:HASH`` (position 1 or more, 64 hex digits, either case).

    >>> position, digest = parse_anchor("12:" + "AB" * 32)
    >>> position, digest == "ab" * 32
    (12, True)

    Raises:
        ValidationError: anything else (``0:...``, a short hash, spaces...).
    """
    if isinstance(text, tuple):
        if len(text) != 2 or not isinstance(text[0], int) or isinstance(text[0], bool):
            raise ValidationError("anchor", [Problem("anchor", f"{text!r}: want (position, hash)")])
        text = f"{text[0]}:{text[1]}"
    found = _ANCHOR.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValidationError(
            "anchor",
            [Problem("anchor", f"{text!r}: want POSITION:HASH, position 1 or more, 64 hex digits")],
        )
    return int(found[1]), found[2].lower()


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
    event: str = ""
    """The event's name column (``submit``, ``receive``...)."""
    key: str = ""
    """The event's idempotency key column."""
    scheme: str = HASH_V1
    """How the row was hashed: ``v1``, ``v2`` or ``hmac-sha256:<key id>``."""

    @property
    def record(self) -> dict[str, Any]:
        """The record's JSON, parsed."""
        parsed: dict[str, Any] = json.loads(self.content)
        return parsed

    def digest(self) -> str:
        """The content digest this row's scheme gives its stored columns."""
        return row_digest(
            self.scheme,
            self.aggregate,
            self.aggregate_id,
            self.version,
            self.key,
            self.event,
            micros(self.at),
            self.content,
        )


def seal(
    row: AuditRow,
    *,
    position: int | None = None,
    prev_hash: str | None = None,
    key: ChainKey | None = None,
) -> AuditRow:
    """``row`` hashed at ``position`` after ``prev_hash``: ``v2``, or keyed with ``key``.

    Stores use it to append; tests use it to forge (without the key, a keyed chain's forgeries
    do not verify).
    """
    position = row.position if position is None else position
    prev = row.prev_hash if prev_hash is None else prev_hash
    scheme = HASH_V2 if key is None else key.scheme
    row = attrs.evolve(row, position=position, prev_hash=prev, scheme=scheme)
    digest = row.digest()
    link = link_hash(scheme, position, prev, digest, None if key is None else key.secret)
    return attrs.evolve(row, content_hash=digest, hash=link)


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


@runtime_checkable
class TrailSource(AuditedStore, Protocol):
    """**Protocol:** a store :func:`verify` can check whole: the trail, and the documents and
    outbox that must follow from it (both shipped stores, read in one snapshot)."""

    def audit_streams(self, aggregate: str) -> Iterator[list[AuditRow]]:
        """Each document's rows (version order), documents in id order."""
        ...

    def stored_documents(self, aggregate: str) -> Iterator[tuple[str, object]]:
        """``(id, document)`` of every stored PO or requisition, in id order; the document as a
        record or as its stored JSON."""
        ...

    def stored_attachments(self, po_id: str) -> list[tuple[str, str, object]]:
        """``(kind, id, document)`` of the receipts, returns and invoices stored for a PO."""
        ...

    def orphan_attachments(self) -> Iterator[tuple[str, str]]:
        """``(kind, id)`` of stored receipts, returns and invoices of POs with no trail."""
        ...

    def stored_payments(self) -> Iterator[tuple[str, object]]:
        """``(id, payment)`` of every stored payment."""
        ...

    def outbox_messages(self) -> Iterator[OutboxMessage]:
        """The whole outbox in sequence order."""
        ...


@runtime_checkable
class TrailFile(Protocol):
    """**Protocol:** a database :func:`verify` opens read-only itself (a SQLite store, or
    :class:`potrack.sqlite.SQLiteFile`)."""

    def read_only_trail(self) -> AbstractContextManager[TrailSource]:
        """The database opened read-only, in one snapshot."""
        ...


@attrs.frozen
class Finding:
    """One thing :func:`verify` found: its kind, the trail position (if any), which document or
    message, and what it looks like."""

    kind: str
    position: int | None
    detail: str
    subject: str = ""

    def __str__(self) -> str:
        where = f"position {self.position}" if self.position is not None else self.subject
        return f"{where}: {self.kind} — {self.detail}"


_MAX_FINDINGS = 1_000
"""Findings kept in a report (the count goes on): memory stays flat on a ruined store."""


@attrs.frozen
class AuditReport:
    """What :func:`verify` found: ``ok``, how many records it checked, the chain's head
    (position, hash) to keep as an anchor, and the first problem (kind, position, detail).

    ``findings`` lists every problem (the first chain break, then each record whose columns
    disagree with its JSON, each document that differs from its replay, each outbox message
    that differs from its record); ``documents`` counts the documents replayed and compared;
    ``unchecked_keys`` names key ids whose records' links could not be checked (no key given).
    """

    ok: bool
    checked: int
    head: tuple[int, str]
    problem: str | None = None
    position: int | None = None
    detail: str = ""
    findings: tuple[Finding, ...] = ()
    found: int = 0
    """How many problems there were (``findings`` keeps the first 1,000)."""
    documents: int = 0
    unchecked_keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.ok:
            text = f"audit trail intact: {self.checked} records, head {self.head[0]}:{self.head[1]}"
            if self.documents:
                text += f"; {self.documents} documents match their replay"
            if self.unchecked_keys:
                text += (
                    f"; keyed links NOT checked (no key given for {', '.join(self.unchecked_keys)})"
                )
            return text
        first = (
            f"audit trail broken at position {self.position}: {self.problem} — {self.detail}"
            if self.position is not None
            else f"audit check failed: {self.problem} — {self.detail}"
        )
        lines = [first, *(f"  {finding}" for finding in self.findings[1:])]
        if self.found > len(self.findings):
            lines.append(f"  ... and {self.found - len(self.findings)} more")
        return "\n".join(lines)


class _Findings:
    def __init__(self) -> None:
        self.kept: list[Finding] = []
        self.count = 0

    def add(self, kind: str, position: int | None, detail: str, subject: str = "") -> None:
        self.count += 1
        if len(self.kept) < _MAX_FINDINGS:
            self.kept.append(Finding(kind, position, detail, subject))


_WINDOW = 64
"""Rows of look-behind and look-ahead used to tell an insertion or a swap from an edit."""


class _Chain:
    """Walks the chain in position order with bounded memory (a window of recent hashes)."""

    def __init__(
        self,
        findings: _Findings,
        keys: Mapping[str, bytes] | None,
        keyed_from: int,
    ) -> None:
        self.findings = findings
        self.keys = keys
        self.keyed_from = keyed_from
        self.expected_prev = GENESIS
        self.expected_position = 1
        self.head = (0, GENESIS)
        self.checked = 0
        self.broken = False
        self.recent: deque[tuple[int, str, int]] = deque(maxlen=_WINDOW)
        self.unchecked: set[str] = set()
        self.newest_scheme = HASH_V1

    def _break(self, kind: str, position: int, detail: str) -> None:
        self.broken = True
        self.findings.add(kind, position, detail)

    def walk(self, rows: Iterator[AuditRow], on_row: Callable[[AuditRow], None]) -> None:
        ahead: deque[AuditRow] = deque()
        index = 0
        while True:
            if ahead:
                row = ahead.popleft()
            else:
                row = next(rows, None)  # type: ignore[assignment]
                if row is None:
                    return
            on_row(row)
            if not self.broken:
                self._link(row, index, rows, ahead)
            index += 1

    def _link(
        self, row: AuditRow, i: int, rows: Iterator[AuditRow], ahead: deque[AuditRow]
    ) -> None:
        if row.prev_hash != self.expected_prev:
            while len(ahead) < _WINDOW:
                nxt = next(rows, None)
                if nxt is None:
                    break
                ahead.append(nxt)
            later = next((r for r in ahead if r.hash == row.prev_hash), None)
            if later is not None:
                self._break(
                    "reordered",
                    row.position,
                    f"it links to the record at position {later.position}, which comes after it",
                )
                return
            earlier = next((r for r in self.recent if r[1] == row.prev_hash), None)
            if earlier is not None and earlier[2] < i - 1:
                intruder = next(r for r in self.recent if r[2] == earlier[2] + 1)
                self.checked = earlier[2] + 1
                self._break(
                    "inserted",
                    intruder[0],
                    f"the record after it (position {row.position}) links to position "
                    f"{earlier[0]}: it was not in the chain",
                )
                return
            if row.position != self.expected_position:
                self._break(
                    "deleted",
                    self.expected_position,
                    f"positions jump from {self.expected_position - 1} to {row.position}",
                )
                return
            if i > 0:
                self.checked = i - 1
                self._break(
                    "edited",
                    self.head[0],
                    f"it was re-hashed: the next record (position {row.position}) no longer "
                    "links to it",
                )
                return
            self._break("inserted", row.position, "the first record does not start the chain")
            return
        if row.position != self.expected_position:
            kind = "deleted" if row.position > self.expected_position else "inserted"
            self._break(
                kind,
                self.expected_position,
                f"expected position {self.expected_position}, found {row.position}",
            )
            return
        what = f"{row.aggregate} {row.aggregate_id} v{row.version}"
        if row.digest() != row.content_hash:
            self._break("edited", row.position, f"{what}: its content no longer matches its hash")
            return
        if not self._scheme_allowed(row, what):
            return
        secret = None
        if row.scheme.startswith(f"{KEYED}:"):
            key_id = row.scheme.partition(":")[2]
            secret = None if self.keys is None else self.keys.get(key_id)
            if secret is None and self.keys is None:
                self.unchecked.add(key_id)
        if row.scheme.startswith(f"{KEYED}:") and secret is None:
            pass  # without keys, only the links between rows (prev_hash) are checked
        elif (
            link_hash(row.scheme, row.position, row.prev_hash, row.content_hash, secret) != row.hash
        ):
            keyed = secret is not None
            self._break(
                "forged" if keyed else "edited",
                row.position,
                f"{what}: its {'keyed ' if keyed else ''}hash does not follow from its content "
                "and position" + (" (written without the key)" if keyed else ""),
            )
            return
        self.recent.append((row.position, row.hash, i))
        self.expected_prev = row.hash
        self.expected_position += 1
        self.head = (row.position, row.hash)
        self.checked = i + 1

    def _scheme_allowed(self, row: AuditRow, what: str) -> bool:
        scheme = row.scheme
        keyed = scheme.startswith(f"{KEYED}:")
        if scheme not in (HASH_V1, HASH_V2) and not keyed:
            self._break("edited", row.position, f"{what}: unknown hash scheme {scheme!r}")
            return False
        rank = {HASH_V1: 0, HASH_V2: 1}.get(scheme, 2)
        if self.keys is not None:
            if not keyed and row.position >= self.keyed_from:
                self._break(
                    "unkeyed",
                    row.position,
                    f"{what}: not keyed, but every record from position {self.keyed_from} must "
                    "be (forged or rewritten without the key)",
                )
                return False
            if keyed and scheme.partition(":")[2] not in self.keys:
                self._break(
                    "unknown key",
                    row.position,
                    f"{what}: keyed with {scheme.partition(':')[2]!r}, which is not among the "
                    f"keys given ({', '.join(sorted(self.keys))})",
                )
                return False
        if rank < {HASH_V1: 0, HASH_V2: 1}.get(self.newest_scheme, 2):
            self._break(
                "downgraded",
                row.position,
                f"{what}: hashed {scheme} after records hashed {self.newest_scheme}",
            )
            return False
        self.newest_scheme = scheme
        return True

    def close(self, anchor: tuple[int, str] | None, anchored_hash: str | None) -> None:
        if anchor is None or self.broken:
            return
        position, anchored = anchor
        if position > self.head[0]:
            self._break(
                "truncated",
                self.head[0] + 1,
                f"the anchor names position {position}; the trail ends at {self.head[0]}",
            )
        elif anchored_hash != anchored:
            self._break(
                "rewritten",
                position,
                "the record at the anchor's position carries another hash: the chain was "
                "recomputed",
            )


_EVENT_NAMES: dict[str, str] = {}


def _event_name(type_name: str) -> str:
    if not _EVENT_NAMES:
        from potrack.events import EVENT_TYPES

        _EVENT_NAMES.update({cls.__name__: cls.name for cls in EVENT_TYPES})
    return _EVENT_NAMES.get(type_name, "?")


def _columns_disagree(row: AuditRow, record: dict[str, Any]) -> list[str]:
    """The stored columns whose value is not what the record's JSON says."""
    event = record.get("event")
    event = event if isinstance(event, dict) else {}
    try:
        at = micros(datetime.fromisoformat(str(record.get("at"))))
    except (ValueError, TypeError):
        at = None
    said = {
        "aggregate": record.get("aggregate"),
        "aggregate_id": record.get("aggregate_id"),
        "version": record.get("version"),
        "at": at,
        "event": _event_name(str(event.get("type"))),
        "key": event.get("key"),
    }
    stored = {
        "aggregate": row.aggregate,
        "aggregate_id": row.aggregate_id,
        "version": row.version,
        "at": micros(row.at),
        "event": row.event or said["event"],
        "key": row.key or said["key"],
    }
    return [name for name, value in said.items() if stored[name] != value]


def _expected_messages(record: dict[str, Any], row: AuditRow) -> list[tuple[Any, ...]]:
    data = {
        "label": record.get("label"),
        "from_state": record.get("from_state") or "",
        "to_state": record.get("to_state"),
    }
    event = record.get("event")
    name = _event_name(str(event.get("type"))) if isinstance(event, dict) else "?"
    return [
        (
            domain_event,
            row.aggregate,
            row.aggregate_id,
            row.version,
            micros(row.at),
            record.get("actor"),
            name,
            data,
        )
        for domain_event in record.get("domain_events") or ()
    ]


def _message_tuple(message: OutboxMessage) -> tuple[Any, ...]:
    return (
        message.name,
        message.aggregate,
        message.aggregate_id,
        message.version,
        micros(message.at),
        message.actor,
        message.event,
        message.data,
    )


class _OutboxCheck:
    """Walks the outbox beside the trail: each record's messages, in order.  One message of
    look-ahead tells a deleted or an inserted message from an edited one (no cascade of
    findings after one deletion)."""

    def __init__(self, messages: Iterable[OutboxMessage], findings: _Findings) -> None:
        self.messages = iter(messages)
        self.findings = findings
        self.queue: list[OutboxMessage] = []
        self.started = False
        self.held: tuple[tuple[Any, ...], int] | None = None
        """An expected message not yet placed: missing, or the current one's edited form."""

    def _peek(self, i: int = 0) -> OutboxMessage | None:
        while len(self.queue) <= i:
            message = next(self.messages, None)
            if message is None:
                return None
            self.queue.append(message)
        return self.queue[i]

    def _take(self) -> None:
        self.queue.pop(0)

    def _edited(self, message: OutboxMessage, position: int) -> None:
        self.findings.add(
            "outbox edited",
            None,
            f"message {message.seq} differs from what the record at position {position} wrote",
            f"outbox {message.seq}",
        )

    def _missing(self, expected: tuple[Any, ...], position: int) -> None:
        self.findings.add(
            "outbox missing", None, f"no message {expected[0]} for position {position}", "outbox"
        )

    def check(self, record: dict[str, Any], row: AuditRow) -> None:
        for expected in _expected_messages(record, row):
            message = self._peek()
            # Records from before the outbox existed (schema 1) wrote no messages: the outbox
            # starts at the first record whose message it holds.
            if (
                not self.started
                and row.scheme == HASH_V1
                and (message is None or _message_tuple(message) != expected)
            ):
                continue
            self.started = True
            self._place(expected, row.position)

    def _place(self, expected: tuple[Any, ...], position: int) -> None:
        message = self._peek()
        if self.held is not None:
            held, held_at = self.held
            self.held = None
            if message is not None and _message_tuple(message) == expected:
                self._missing(held, held_at)  # the held one was deleted
                self._take()
                return
            if message is not None:
                self._edited(message, held_at)
                self._take()
            else:
                self._missing(held, held_at)
            message = self._peek()
        if message is None:
            self._missing(expected, position)
        elif _message_tuple(message) == expected:
            self._take()
        else:
            after = self._peek(1)
            if after is not None and _message_tuple(after) == expected:
                self.findings.add(
                    "outbox inserted",
                    None,
                    "no record wrote this message",
                    f"outbox {message.seq}",
                )
                self._take()
                self._take()
            else:
                self.held = (expected, position)

    def close(self) -> None:
        if self.held is not None:
            held, held_at = self.held
            self.held = None
            message = self._peek()
            if message is None:
                self._missing(held, held_at)
            else:
                self._edited(message, held_at)
                self._take()
        while (message := self._peek()) is not None:
            self.findings.add(
                "outbox inserted", None, "no record wrote this message", f"outbox {message.seq}"
            )
            self._take()


def verify_rows(
    rows: Iterable[AuditRow],
    anchor: tuple[int, str] | str | None = None,
    *,
    keys: Mapping[str, bytes] | Iterable[ChainKey] | None = None,
    keyed_from: int = 1,
) -> AuditReport:
    """Check a whole trail (rows in position order) and report the first break.

    ``anchor`` is a (position, hash) pair recorded earlier; the record at that position must
    still carry that hash.  Memory stays flat with the trail's length.
    """
    return _verify(iter(rows), None, anchor, keys, keyed_from)


def verify(
    store: AuditedStore | TrailFile,
    anchor: tuple[int, str] | str | None = None,
    *,
    keys: Mapping[str, bytes] | Iterable[ChainKey] | None = None,
    keyed_from: int = 1,
) -> AuditReport:
    """Verify a store's audit trail and that the stored documents and outbox follow from it.

    * the chain (see the module's docstring), and against ``anchor`` if given;
    * each record's stored columns (time, event name, document, version, key) against its JSON;
    * with ``keys`` (a :class:`ChainKey` list or ``{key id: secret}``): every record from
      position ``keyed_from`` on must be keyed with one of them, and its HMAC must verify;
    * every stored PO and requisition against the replay of its records (a save that went
      around the lifecycle, an edited row), and the receipts, returns, invoices and payments
      against the events that carried them;
    * the outbox against the records that wrote it.

    A SQLite store, or a file named with :class:`potrack.sqlite.SQLiteFile`, is opened
    read-only (:class:`TrailFile`): verifying never changes it.

    >>> import tempfile, os
    >>> from potrack.sqlite import SQLiteFile, SQLiteStore
    >>> path = os.path.join(tempfile.mkdtemp(), "po.sqlite")
    >>> SQLiteStore(path).close()
    >>> verify(SQLiteFile(path)).ok
    True

    Raises:
        ValidationError: the store keeps no audit trail, or the anchor is malformed.
        StorageError: the file is not a potrack database of this schema version (empty, foreign,
            older or newer).
    """
    if isinstance(store, TrailFile):
        with store.read_only_trail() as opened:
            return verify(opened, anchor, keys=keys, keyed_from=keyed_from)
    if not isinstance(store, AuditedStore):
        raise ValidationError(
            "verify", [Problem("store", f"{type(store).__name__} keeps no audit trail")]
        )
    source = store if isinstance(store, TrailSource) else None
    return _verify(store.audit_rows(), source, anchor, keys, keyed_from)


def _verify(
    rows: Iterator[AuditRow],
    source: TrailSource | None,
    anchor: tuple[int, str] | str | None,
    keys: Mapping[str, bytes] | Iterable[ChainKey] | None,
    keyed_from: int,
) -> AuditReport:
    anchored = None if anchor is None else parse_anchor(anchor)
    ring: dict[str, bytes] | None = None
    if keys is not None:
        ring = dict(keys) if isinstance(keys, Mapping) else {key.id: key.secret for key in keys}
    findings = _Findings()
    chain = _Chain(findings, ring, keyed_from)
    outbox = _OutboxCheck(source.outbox_messages(), findings) if source is not None else None
    anchored_hash: list[str] = []

    def on_row(row: AuditRow) -> None:
        if anchored is not None and row.position == anchored[0]:
            anchored_hash.append(row.hash)
        try:
            record = row.record
        except ValueError:
            findings.add("unreadable", row.position, "the record is not JSON")
            return
        wrong = _columns_disagree(row, record)
        if wrong:
            findings.add(
                "uncovered",
                row.position,
                f"the stored {', '.join(wrong)} disagree(s) with the record's content",
            )
        if outbox is not None:
            outbox.check(record, row)

    chain.walk(rows, on_row)
    chain.close(anchored, anchored_hash[0] if anchored_hash else None)
    if outbox is not None:
        outbox.close()
    documents = 0 if source is None else _check_documents(source, findings)
    if findings.count:
        first = findings.kept[0]
        # A chain break comes first: the report's headline is where the chain broke.
        breaks = [f for f in findings.kept if f.kind not in _NOT_BREAKS]
        if breaks:
            first = breaks[0]
        return AuditReport(
            False,
            chain.checked,
            chain.head,
            first.kind,
            first.position,
            first.detail if not first.subject else f"{first.subject}: {first.detail}",
            (first, *(f for f in findings.kept if f is not first)),
            findings.count,
            documents,
            tuple(sorted(chain.unchecked)),
        )
    return AuditReport(
        True,
        chain.checked,
        chain.head,
        documents=documents,
        unchecked_keys=tuple(sorted(chain.unchecked)),
    )


_NOT_BREAKS = frozenset(
    {
        "uncovered",
        "unreadable",
        "outbox missing",
        "outbox edited",
        "outbox inserted",
        "document differs",
        "document without trail",
        "document missing",
        "attachment differs",
        "attachment missing",
        "attachment without trail",
    }
)


def _check_documents(source: TrailSource, findings: _Findings) -> int:
    """Replay every document from its trail and compare it with what is stored."""
    from potrack._trail_rules import approval_problems
    from potrack.lifecycle import replay, replay_requisition
    from potrack.records import Payment, PurchaseOrder, Requisition
    from potrack.serialization import loads, make_converter

    converter = make_converter()
    payments: dict[str, Any] = {}
    checked = 0
    for aggregate, cls, rebuild in (
        ("purchase_order", PurchaseOrder, replay),
        ("requisition", Requisition, replay_requisition),
    ):
        stored = iter(source.stored_documents(aggregate))
        current = next(stored, None)
        for stream in source.audit_streams(aggregate):
            doc_id = stream[0].aggregate_id
            while current is not None and current[0] < doc_id:
                findings.add(
                    "document without trail",
                    None,
                    "stored, but no transition record made it (saved around the lifecycle)",
                    f"{aggregate} {current[0]}",
                )
                current = next(stored, None)
            subject = f"{aggregate} {doc_id}"
            try:
                records = [
                    loads(row.content, TransitionRecord, converter=converter) for row in stream
                ]
                replayed = rebuild(records)
            except PotrackError as err:
                findings.add("document differs", None, f"its trail does not replay: {err}", subject)
                records = []
                replayed = None
            for problem in approval_problems(records):
                findings.add("approval not proven", None, problem, subject)
            if current is None or current[0] != doc_id:
                findings.add("document missing", None, "its trail has no stored document", subject)
            elif replayed is not None:
                checked += 1
                _compare(current[1], replayed, cls, converter, subject, "document", findings)
            if current is not None and current[0] == doc_id:
                current = next(stored, None)
            if aggregate == "purchase_order" and records:
                _check_attachments(source, doc_id, records, payments, converter, findings)
        while current is not None:
            findings.add(
                "document without trail",
                None,
                "stored, but no transition record made it (saved around the lifecycle)",
                f"{aggregate} {current[0]}",
            )
            current = next(stored, None)
    for kind, doc_id in source.orphan_attachments():
        findings.add("attachment without trail", None, "no event carried it", f"{kind} {doc_id}")
    for pay_id, stored_payment in source.stored_payments():
        expected = payments.pop(pay_id, None)
        subject = f"payment {pay_id}"
        if expected is None:
            findings.add("attachment without trail", None, "no event carried it", subject)
        else:
            _compare(stored_payment, expected, Payment, converter, subject, "attachment", findings)
    for pay_id in payments:
        findings.add(
            "attachment missing", None, "carried by an event, not stored", f"payment {pay_id}"
        )
    return checked


def _check_attachments(
    source: TrailSource,
    po_id: str,
    records: list[TransitionRecord],
    payments: dict[str, Any],
    converter: Any,
    findings: _Findings,
) -> None:
    from potrack.events import (
        ReceiveGoods,
        RecordCreditMemo,
        RecordInvoice,
        RecordPayment,
        ReturnGoods,
    )

    expected: dict[tuple[str, str], Any] = {}
    for record in records:
        event = record.event
        if isinstance(event, ReceiveGoods):
            expected["goods receipt", event.receipt.id] = event.receipt
        elif isinstance(event, ReturnGoods):
            expected["goods return", event.goods_return.id] = event.goods_return
        elif isinstance(event, RecordInvoice):
            expected["invoice", event.invoice.id] = event.invoice
        elif isinstance(event, RecordCreditMemo):
            expected["invoice", event.memo.id] = event.memo
        elif isinstance(event, RecordPayment):
            payments.setdefault(event.payment.id, event.payment)
    for kind, doc_id, stored in source.stored_attachments(po_id):
        subject = f"{kind} {doc_id}"
        want = expected.pop((kind, doc_id), None)
        if want is None:
            findings.add(
                "attachment without trail", None, f"of {po_id}: no event carried it", subject
            )
        else:
            _compare(stored, want, type(want), converter, subject, "attachment", findings)
    for kind, doc_id in expected:
        findings.add(
            "attachment missing",
            None,
            f"carried by an event of {po_id}, not stored",
            f"{kind} {doc_id}",
        )


def _compare(
    stored: object,
    replayed: Any,
    cls: type[Any],
    converter: Any,
    subject: str,
    what: str,
    findings: _Findings,
) -> None:
    from potrack.serialization import loads

    if isinstance(stored, str):
        try:
            stored = loads(stored, cls, converter=converter)
        except PotrackError as err:
            findings.add(f"{what} differs", None, f"the stored row does not parse: {err}", subject)
            return
    if stored == replayed:
        return
    fields = [
        f.name for f in attrs.fields(cls) if getattr(stored, f.name) != getattr(replayed, f.name)
    ]
    shown = []
    for name in fields[:4]:
        shown.append(
            f"{name} {_short(getattr(stored, name))} (replay: {_short(getattr(replayed, name))})"
        )
    findings.add(
        f"{what} differs", None, "stored ≠ replay of its trail: " + "; ".join(shown), subject
    )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
