"""In-memory reference implementations of potrack's Protocols.

:class:`InMemoryStore` keeps everything in dictionaries.  It is thread-safe: a unit of work holds the
store's lock from start to end, so units are serializable and sequences never hand out a value twice.
It is what tests, notebooks and examples use; :mod:`potrack.sqlite` is the durable one.

>>> from potrack.memory import InMemoryStore
>>> store = InMemoryStore()
>>> with store.unit_of_work() as uow:
...     uow.sequences.next_value("PO-2026-")
1
>>> with store.unit_of_work() as uow:
...     uow.sequences.next_value("PO-2026-")
2
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from moneyed import Money

from potrack.audit import GENESIS, AuditRow, ChainKey, seal
from potrack.events import TransitionRecord
from potrack.exceptions import ConflictError, DuplicateError, NotFoundError
from potrack.outbox import OutboxMessage, Pending, messages_of
from potrack.records import (
    Actor,
    ActorId,
    BudgetId,
    Delegation,
    DepartmentId,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    Payment,
    PaymentId,
    POState,
    PurchaseOrder,
    PurchaseOrderId,
    ReceiptId,
    Requisition,
    RequisitionId,
    ReturnId,
    SupplierId,
)
from potrack.serialization import dumps, make_converter

__all__ = [
    "InMemoryBudgets",
    "InMemoryDirectory",
    "InMemoryStore",
    "StaticRates",
]

K = TypeVar("K")
A = TypeVar("A")


class _Aggregates(Generic[K, A]):
    def __init__(self, kind: str, committed: dict[K, A]) -> None:
        self._kind = kind
        self._committed = committed
        self.pending: dict[K, A] = {}

    def get(self, id: K) -> A | None:
        if id in self.pending:
            return self.pending[id]
        return self._committed.get(id)

    def require(self, id: K) -> A:
        found = self.get(id)
        if found is None:
            raise NotFoundError(self._kind, id)
        return found

    def save(self, aggregate: A) -> None:
        key: K = aggregate.id  # type: ignore[attr-defined]
        version: int = aggregate.version  # type: ignore[attr-defined]
        current = self.get(key)
        held: int | None = None if current is None else current.version  # type: ignore[attr-defined]
        if held != (version - 1 if version > 1 else None):
            raise ConflictError(self._kind, key, version - 1, held)
        self.pending[key] = aggregate

    def _merged(self) -> dict[K, A]:
        merged = dict(self._committed)
        merged.update(self.pending)
        return merged

    def all(self) -> Iterator[A]:
        merged = self._merged()
        for key in sorted(merged):  # type: ignore[type-var]
            yield merged[key]

    def commit(self) -> None:
        self._committed.update(self.pending)


class _PurchaseOrders(_Aggregates[PurchaseOrderId, PurchaseOrder]):
    def __init__(
        self,
        kind: str,
        committed: dict[PurchaseOrderId, PurchaseOrder],
        numbers: dict[str, PurchaseOrderId],
    ) -> None:
        super().__init__(kind, committed)
        self._numbers = numbers

    def _holder(self, number: str) -> PurchaseOrderId | None:
        for po in self.pending.values():
            if po.number == number:
                return po.id
        held = self._numbers.get(number)
        if held is not None and held not in self.pending:
            return held
        return None

    def save(self, aggregate: PurchaseOrder) -> None:
        number = aggregate.number
        if number is not None:
            holder = self._holder(number)
            if holder is not None and holder != aggregate.id:
                raise DuplicateError("purchase order number", number, f"held by {holder}")
        super().save(aggregate)

    def commit(self) -> None:
        super().commit()
        for po in self.pending.values():
            if po.number is not None:
                self._numbers[po.number] = po.id

    def by_number(self, number: str) -> PurchaseOrder | None:
        holder = self._holder(number)
        return None if holder is None else self.get(holder)

    def find(
        self,
        *,
        supplier_id: SupplierId | None = None,
        state: POState | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[PurchaseOrder]:
        for po in self.all():
            if supplier_id is not None and po.supplier_id != supplier_id:
                continue
            if state is not None and po.state != state:
                continue
            if created_from is not None and po.created_at < created_from:
                continue
            if created_to is not None and po.created_at >= created_to:
                continue
            yield po


D = TypeVar("D")


class _Documents(Generic[K, D]):
    def __init__(self, kind: str, committed: dict[K, D], owner_of: Callable[[D], Any]) -> None:
        self._kind = kind
        self._committed = committed
        self._owner_of = owner_of
        self.pending: dict[K, D] = {}

    def get(self, id: K) -> D | None:
        if id in self.pending:
            return self.pending[id]
        return self._committed.get(id)

    def add(self, document: D) -> None:
        key: K = document.id  # type: ignore[attr-defined]
        if self.get(key) is not None:
            raise DuplicateError(self._kind, key)
        self.pending[key] = document

    def _values(self) -> Iterator[D]:
        yield from self._committed.values()
        yield from self.pending.values()

    def _owned_by(self, owner: object) -> tuple[D, ...]:
        return tuple(doc for doc in self._values() if self._owner_of(doc) == owner)

    def for_po(self, po_id: PurchaseOrderId) -> tuple[D, ...]:
        return self._owned_by(po_id)

    def commit(self) -> None:
        self._committed.update(self.pending)


class _Invoices(_Documents[InvoiceId, Invoice]):
    def for_supplier(self, supplier_id: SupplierId) -> tuple[Invoice, ...]:
        return tuple(doc for doc in self._values() if doc.supplier_id == supplier_id)


class _Payments(_Documents[PaymentId, Payment]):
    def for_supplier(self, supplier_id: SupplierId) -> tuple[Payment, ...]:
        return self._owned_by(supplier_id)


class _Transitions:
    def __init__(
        self,
        committed: list[TransitionRecord],
        index: dict[tuple[str, str], list[TransitionRecord]],
        audit: _Audit,
    ) -> None:
        self._committed = committed
        self._index = index
        self._audit = audit
        self.pending: list[TransitionRecord] = []

    def _stream(self, aggregate: str, aggregate_id: str) -> list[TransitionRecord]:
        stream = list(self._index.get((aggregate, aggregate_id), ()))
        stream.extend(
            r for r in self.pending if r.aggregate == aggregate and r.aggregate_id == aggregate_id
        )
        return stream

    def append(self, record: TransitionRecord) -> None:
        stream = self._stream(record.aggregate, record.aggregate_id)
        last = stream[-1].version if stream else 0
        if record.version != last + 1:
            raise ConflictError(
                f"{record.aggregate} transition stream",
                record.aggregate_id,
                record.version - 1,
                last,
            )
        self.pending.append(record)
        self._audit.add(record)

    def for_aggregate(self, aggregate: str, aggregate_id: str) -> tuple[TransitionRecord, ...]:
        return tuple(self._stream(aggregate, aggregate_id))

    def by_key(self, aggregate: str, aggregate_id: str, key: str) -> TransitionRecord | None:
        for record in self._stream(aggregate, aggregate_id):
            if record.event.key == key:
                return record
        return None

    def all(self) -> Iterator[TransitionRecord]:
        yield from self._committed
        yield from self.pending

    def commit(self) -> None:
        for record in self.pending:
            self._committed.append(record)
            self._index.setdefault((record.aggregate, record.aggregate_id), []).append(record)


class _Audit:
    """The store's hash-chained trail: records are chained when their unit of work commits."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.pending: list[tuple[TransitionRecord, str]] = []

    def add(self, record: TransitionRecord) -> None:
        self.pending.append((record, dumps(record, converter=self._store._converter)))

    def commit(self) -> None:
        trail = self._store._audit
        key = self._store.chain_key
        for record, text in self.pending:
            row = AuditRow(
                position=len(trail) + 1,
                aggregate=record.aggregate,
                aggregate_id=record.aggregate_id,
                version=record.version,
                at=record.at,
                content=text,
                content_hash="",
                prev_hash=trail[-1].hash if trail else GENESIS,
                hash="",
                event=record.event_name,
                key=record.key,
            )
            trail.append(seal(row, key=key))


class _Outbox:
    """Outbox messages, given their sequence numbers when the unit of work commits."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self.pending: list[dict[str, Any]] = []

    def add(self, record: TransitionRecord) -> None:
        self.pending.extend(messages_of(record))

    def commit(self) -> None:
        box = self._store._outbox
        for row in self.pending:
            data = json.loads(row.pop("data"))
            box.append(OutboxMessage(seq=len(box) + 1, data=data, **row))


class _Sequences:
    def __init__(self, committed: dict[str, int]) -> None:
        self._committed = committed
        self.pending: dict[str, int] = {}

    def current(self, key: str) -> int:
        return self.pending.get(key, self._committed.get(key, 0))

    def next_value(self, key: str) -> int:
        value = self.current(key) + 1
        self.pending[key] = value
        return value

    def reserve(self, key: str, count: int) -> range:
        if type(count) is not int or count < 1:
            raise ValueError(f"reserve needs a positive int count, got {count!r}")
        start = self.current(key) + 1
        self.pending[key] = start + count - 1
        return range(start, start + count)

    def commit(self) -> None:
        self._committed.update(self.pending)


class _UnitOfWork:
    def __init__(self, store: InMemoryStore) -> None:
        self.requisitions: _Aggregates[RequisitionId, Requisition] = _Aggregates(
            "requisition", store._requisitions
        )
        self.purchase_orders = _PurchaseOrders(
            "purchase order", store._purchase_orders, store._po_numbers
        )
        self.receipts: _Documents[ReceiptId, GoodsReceipt] = _Documents(
            "goods receipt", store._receipts, lambda d: d.po_id
        )
        self.returns: _Documents[ReturnId, GoodsReturn] = _Documents(
            "goods return", store._returns, lambda d: d.po_id
        )
        self.invoices = _Invoices("invoice", store._invoices, lambda d: d.po_id)
        self.payments = _Payments("payment", store._payments, lambda d: d.supplier_id)
        self.audit = _Audit(store)
        self.transitions = _Transitions(store._transitions, store._transition_index, self.audit)
        self.sequences = _Sequences(store._sequences)
        self.outbox = _Outbox(store)

    def _parts(self) -> tuple[Any, ...]:
        return (
            self.requisitions,
            self.purchase_orders,
            self.receipts,
            self.returns,
            self.invoices,
            self.payments,
            self.transitions,
            self.sequences,
            self.audit,
            self.outbox,
        )

    def savepoint(self) -> list[Any]:
        """What every part holds so far, to go back to (a nested unit of work)."""
        return [part.pending.copy() for part in self._parts()]

    def restore(self, mark: list[Any]) -> None:
        """Forget everything written since :meth:`savepoint`."""
        for part, pending in zip(self._parts(), mark, strict=True):
            part.pending = pending

    def commit(self) -> None:
        for part in self._parts():
            part.commit()


class InMemoryStore:
    """Every storage Protocol in memory; thread-safe, serializable units of work.

    Nothing survives the process.  A unit of work opened inside another one in the same thread is
    a *savepoint* of it, as on :class:`~potrack.sqlite.SQLiteStore`: it sees the outer unit's
    writes, an exception undoes only its own, and its writes land when the outer unit commits.
    """

    def __init__(self, *, chain_key: ChainKey | None = None) -> None:
        self.chain_key = chain_key
        """Keys the audit trail's hashes (HMAC-SHA-256) when given; see :class:`ChainKey`."""
        self._lock = threading.RLock()
        self._open: _UnitOfWork | None = None
        self._requisitions: dict[RequisitionId, Requisition] = {}
        self._purchase_orders: dict[PurchaseOrderId, PurchaseOrder] = {}
        self._po_numbers: dict[str, PurchaseOrderId] = {}
        self._receipts: dict[ReceiptId, GoodsReceipt] = {}
        self._returns: dict[ReturnId, GoodsReturn] = {}
        self._invoices: dict[InvoiceId, Invoice] = {}
        self._payments: dict[PaymentId, Payment] = {}
        self._transitions: list[TransitionRecord] = []
        self._transition_index: dict[tuple[str, str], list[TransitionRecord]] = {}
        self._sequences: dict[str, int] = {}
        self._converter = make_converter()
        self._audit: list[AuditRow] = []
        self._outbox: list[OutboxMessage] = []
        self._deliveries: dict[
            tuple[str, int], tuple[datetime | None, int, str, datetime | None]
        ] = {}

    @contextmanager
    def unit_of_work(self) -> Iterator[_UnitOfWork]:
        """A unit of work holding the store's lock; commits on normal exit, else writes nothing."""
        with self._lock:
            outer = self._open  # only the thread holding the lock gets here
            if outer is not None:
                mark = outer.savepoint()
                try:
                    yield outer
                except BaseException:
                    outer.restore(mark)
                    raise
                return
            uow = self._open = _UnitOfWork(self)
            try:
                yield uow
                uow.commit()
            finally:
                self._open = None

    @property
    def in_unit_of_work(self) -> bool:
        """Whether this thread has a unit of work open on this store."""
        if not self._lock.acquire(blocking=False):
            return False  # another thread holds it
        try:
            return self._open is not None
        finally:
            self._lock.release()

    def audit_rows(
        self,
        *,
        aggregate_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRow]:
        """The hash-chained trail in position order (one document's, or a period's)."""
        with self._lock:
            rows = list(self._audit)
        for row in rows:
            if aggregate_id is not None and row.aggregate_id != aggregate_id:
                continue
            if (since is not None and row.at < since) or (until is not None and row.at >= until):
                continue
            yield row

    # -- what potrack.audit.verify reads (TrailSource) ---------------------------------------

    def audit_streams(self, aggregate: str) -> Iterator[list[AuditRow]]:
        """Each document's trail rows (version order), documents in id order."""
        streams: dict[str, list[AuditRow]] = {}
        for row in self.audit_rows():
            if row.aggregate == aggregate:
                streams.setdefault(row.aggregate_id, []).append(row)
        for key in sorted(streams):
            yield sorted(streams[key], key=lambda row: row.version)

    def stored_documents(self, aggregate: str) -> Iterator[tuple[str, object]]:
        """``(id, document)`` of every stored PO or requisition, in id order."""
        with self._lock:
            held: Any = (
                self._purchase_orders if aggregate == "purchase_order" else self._requisitions
            )
            found: dict[str, Any] = dict(held)
        for key in sorted(found):
            yield key, found[key]

    def stored_attachments(self, po_id: str) -> list[tuple[str, str, object]]:
        """``(kind, id, document)`` of the receipts, returns and invoices stored for a PO."""
        with self._lock:
            return [
                (kind, doc.id, doc)
                for kind, docs in self._attachment_kinds()
                for doc in docs.values()
                if doc.po_id == po_id
            ]

    def _attachment_kinds(self) -> list[tuple[str, dict[Any, Any]]]:
        return [
            ("goods receipt", self._receipts),
            ("goods return", self._returns),
            ("invoice", self._invoices),
        ]

    def orphan_attachments(self) -> Iterator[tuple[str, str]]:
        """``(kind, id)`` of stored receipts, returns and invoices of POs with no trail."""
        with self._lock:
            traced = {row.aggregate_id for row in self._audit if row.aggregate == "purchase_order"}
            orphans = [
                (kind, doc.id)
                for kind, docs in self._attachment_kinds()
                for doc in docs.values()
                if doc.po_id not in traced
            ]
        yield from orphans

    def stored_payments(self) -> Iterator[tuple[str, object]]:
        """``(id, payment)`` of every stored payment."""
        with self._lock:
            found = list(self._payments.items())
        yield from found

    def outbox_messages(self) -> Iterator[OutboxMessage]:
        """The whole outbox in sequence order."""
        with self._lock:
            found = list(self._outbox)
        yield from found

    def outbox_pending(self, subscriber: str, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages ``subscriber`` has not had, in order."""
        out = []
        with self._lock:
            for message in self._outbox:
                done, attempts, _, retry = self._deliveries.get(
                    (subscriber, message.seq), (None, 0, "", None)
                )
                if done is None:
                    out.append(Pending(message, attempts, retry))
                    if len(out) >= limit:
                        break
        return out

    def outbox_delivered(self, subscriber: str, seq: int, at: datetime) -> None:
        """Record that ``subscriber`` has message ``seq``."""
        with self._lock:
            _, attempts, error, retry = self._deliveries.get((subscriber, seq), (None, 0, "", None))
            self._deliveries[(subscriber, seq)] = (at, attempts, error, retry)

    def outbox_failed(self, subscriber: str, seq: int, error: str, retry_at: datetime) -> None:
        """Record a failed delivery: attempts + 1, the error, when to retry."""
        with self._lock:
            _, attempts, _, _ = self._deliveries.get((subscriber, seq), (None, 0, "", None))
            self._deliveries[(subscriber, seq)] = (None, attempts + 1, error, retry_at)


class InMemoryDirectory:
    """A :class:`~potrack.typing.Directory` over a list of actors and delegations.

    ``extra_roles`` and ``extra_departments`` declare roles and departments nobody holds yet
    (policy loading accepts them).
    """

    def __init__(
        self,
        actors: list[Actor] | tuple[Actor, ...] = (),
        delegations: list[Delegation] | tuple[Delegation, ...] = (),
        extra_roles: frozenset[str] = frozenset(),
        extra_departments: frozenset[str] = frozenset(),
    ) -> None:
        self._actors = {a.id: a for a in actors}
        self._holders: dict[str, tuple[ActorId, ...]] = {}
        self._delegations = tuple(delegations)
        self._extra_roles = frozenset(extra_roles)
        self._extra_departments = frozenset(extra_departments)

    def actor(self, actor_id: ActorId) -> Actor | None:
        """The actor with that id, or None."""
        return self._actors.get(actor_id)

    def holders(self, role: str) -> tuple[ActorId, ...]:
        """Everyone holding ``role``, sorted by id."""
        found = self._holders.get(role)
        if found is None:
            found = self._holders[role] = tuple(
                sorted(a.id for a in self._actors.values() if role in a.roles)
            )
        return found

    def roles(self) -> frozenset[str]:
        """Every role held by someone, plus the declared extra roles."""
        held = {role for a in self._actors.values() for role in a.roles}
        return frozenset(held) | self._extra_roles

    def departments(self) -> frozenset[DepartmentId]:
        """Every department someone belongs to, plus the declared extra ones."""
        found = {a.department for a in self._actors.values() if a.department}
        return frozenset(DepartmentId(d) for d in found | self._extra_departments)

    def delegations(self, delegator: ActorId, at: datetime) -> tuple[Delegation, ...]:
        """Delegations from ``delegator`` in force at ``at``."""
        return tuple(d for d in self._delegations if d.delegator == delegator and d.covers(at))

    def with_actor(self, actor: Actor) -> InMemoryDirectory:
        """A copy with ``actor`` added or replaced."""
        actors = dict(self._actors)
        actors[actor.id] = actor
        return InMemoryDirectory(
            tuple(actors.values()), self._delegations, self._extra_roles, self._extra_departments
        )


class InMemoryBudgets:
    """A :class:`~potrack.typing.BudgetProvider` over fixed remaining amounts."""

    def __init__(self, remaining: dict[BudgetId, Money] | None = None) -> None:
        self._remaining = dict(remaining or {})

    def available(self, budget: BudgetId, on: date) -> Money | None:
        """What is left of ``budget`` (the day is ignored), or None if unknown."""
        return self._remaining.get(budget)


class StaticRates:
    """An :class:`~potrack.typing.ExchangeRates` from a fixed table ``{(from, to): rate}``.

    The inverse of each rate is derived when only one direction is given.

    >>> rates = StaticRates({("EUR", "USD"): Decimal("1.25")})
    >>> rates.rate("USD", "EUR", date(2026, 1, 1))
    Decimal('0.8')
    """

    def __init__(self, rates: dict[tuple[str, str], Decimal]) -> None:
        self._rates = dict(rates)

    def rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """The rate, its inverse, or 1 for the same currency; NotFoundError otherwise."""
        if from_currency == to_currency:
            return Decimal(1)
        if (from_currency, to_currency) in self._rates:
            return self._rates[(from_currency, to_currency)]
        if (to_currency, from_currency) in self._rates:
            return Decimal(1) / self._rates[(to_currency, from_currency)]
        raise NotFoundError("exchange rate", f"{from_currency}->{to_currency}")
