"""Every Protocol and type alias potrack's extension points use, in one place.

Host applications implement these to plug potrack into their own storage, directory of people,
budgets, exchange rates and notification channels.  potrack ships reference implementations:
:mod:`potrack.memory` (in memory) and :mod:`potrack.sqlite` (embedded SQLite).

The storage guarantees every adapter must keep are spelled out on each Protocol and checked by
the conformance kit in :mod:`potrack.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from moneyed import Money

from potrack.events import Event, TransitionRecord
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

__all__ = [
    "AccessPolicy",
    "AggregateRepository",
    "BudgetProvider",
    "Directory",
    "DocumentRepository",
    "ExchangeRates",
    "InvoiceRepository",
    "Notifier",
    "PODocumentRepository",
    "PaymentRepository",
    "PurchaseOrderRepository",
    "SequenceStore",
    "Store",
    "TransitionLog",
    "UnitOfWork",
    "UomConverter",
]

K = TypeVar("K", contravariant=True)
A = TypeVar("A")


class AggregateRepository(Protocol[K, A]):
    """**Protocol:** versioned aggregates (requisitions, purchase orders).

    Guarantees:

    * ``save`` of an aggregate with ``version == 1`` inserts it; the id must be new.
    * ``save`` of version *n > 1* replaces the stored version *n - 1*; if the store holds anything
      else (a newer version, or nothing) it raises :class:`~potrack.exceptions.ConflictError` and
      writes nothing.
    * What ``get`` returns equals what was saved (``==``), within and after the unit of work.
    """

    def get(self, id: K) -> A | None:
        """The aggregate with ``id``, or None."""
        ...

    def require(self, id: K) -> A:
        """The aggregate with ``id``; raises :class:`~potrack.exceptions.NotFoundError`."""
        ...

    def save(self, aggregate: A) -> None:
        """Insert (version 1) or replace the previous version; raises ConflictError otherwise."""
        ...

    def all(self) -> Iterator[A]:
        """Every stored aggregate, in id order."""
        ...


class PurchaseOrderRepository(AggregateRepository[PurchaseOrderId, PurchaseOrder], Protocol):
    """**Protocol:** purchase orders, with the queries hosts need (indexed in real stores)."""

    def by_number(self, number: str) -> PurchaseOrder | None:
        """The PO with that number (any revision), or None."""
        ...

    def find(
        self,
        *,
        supplier_id: SupplierId | None = None,
        state: POState | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Iterator[PurchaseOrder]:
        """POs matching every given criterion (``created_to`` exclusive), in id order."""
        ...


D = TypeVar("D")


class DocumentRepository(Protocol[K, D]):
    """**Protocol:** immutable documents (receipts, returns, payments).

    ``add`` raises :class:`~potrack.exceptions.DuplicateError` for an existing id; documents are
    never changed once added.
    """

    def get(self, id: K) -> D | None:
        """The document with ``id``, or None."""
        ...

    def add(self, document: D) -> None:
        """Store a new document; raises DuplicateError if the id exists."""
        ...


class PODocumentRepository(DocumentRepository[K, D], Protocol):
    """**Protocol:** documents that belong to one purchase order (receipts, returns, invoices)."""

    def for_po(self, po_id: PurchaseOrderId) -> tuple[D, ...]:
        """Every document of one PO, in the order they were added."""
        ...


class PaymentRepository(DocumentRepository[PaymentId, Payment], Protocol):
    """**Protocol:** payments."""

    def for_supplier(self, supplier_id: SupplierId) -> tuple[Payment, ...]:
        """Every payment to one supplier, in the order they were added."""
        ...


class InvoiceRepository(PODocumentRepository[InvoiceId, Invoice], Protocol):
    """**Protocol:** invoices and credit memos, with the lookups duplicate detection needs."""

    def for_supplier(self, supplier_id: SupplierId) -> tuple[Invoice, ...]:
        """Every invoice and credit memo of one supplier, in the order they were added."""
        ...


class TransitionLog(Protocol):
    """**Protocol:** the append-only stream of transition records (the audit trail).

    Guarantees: records of one aggregate come back in version order; appending a second record
    with the same (aggregate, id, version) raises :class:`~potrack.exceptions.ConflictError`;
    records are never changed or deleted.
    """

    def append(self, record: TransitionRecord) -> None:
        """Add a record; raises ConflictError if its version is already recorded."""
        ...

    def for_aggregate(self, aggregate: str, aggregate_id: str) -> tuple[TransitionRecord, ...]:
        """Every record of one aggregate, in version order."""
        ...

    def by_key(self, aggregate: str, aggregate_id: str, key: str) -> TransitionRecord | None:
        """The record of the event with idempotency ``key`` on that aggregate, or None."""
        ...

    def all(self) -> Iterator[TransitionRecord]:
        """Every record, in the order they were appended."""
        ...


class SequenceStore(Protocol):
    """**Protocol:** named counters for document numbers.

    Guarantees: within one store, no value of a key is ever handed out twice, across threads and
    (for stores that say so) processes.  ``next_value`` is *gapless*: the value is consumed only if
    the unit of work commits.  ``reserve`` hands out a block and may leave gaps if the reserved
    values are not all used.
    """

    def next_value(self, key: str) -> int:
        """The next value of counter ``key`` (1 first); consumed only if the unit commits."""
        ...

    def reserve(self, key: str, count: int) -> range:
        """Reserve ``count`` consecutive values of ``key`` and return them."""
        ...

    def current(self, key: str) -> int:
        """The last value handed out for ``key`` (0 if none)."""
        ...


class UnitOfWork(Protocol):
    """**Protocol:** a group of writes that land together or not at all.

    Obtained from :meth:`Store.unit_of_work` as a context manager: leaving the block normally
    commits every write made through the repositories; leaving it with an exception writes
    nothing.  Reads see the unit's own pending writes.
    """

    @property
    def requisitions(self) -> AggregateRepository[RequisitionId, Requisition]:
        """Requisitions."""
        ...

    @property
    def purchase_orders(self) -> PurchaseOrderRepository:
        """Purchase orders (with their revisions inside)."""
        ...

    @property
    def receipts(self) -> PODocumentRepository[ReceiptId, GoodsReceipt]:
        """Goods receipts."""
        ...

    @property
    def returns(self) -> PODocumentRepository[ReturnId, GoodsReturn]:
        """Returns to suppliers."""
        ...

    @property
    def invoices(self) -> InvoiceRepository:
        """Invoices and credit memos."""
        ...

    @property
    def payments(self) -> PaymentRepository:
        """Payments."""
        ...

    @property
    def transitions(self) -> TransitionLog:
        """The transition records (audit trail)."""
        ...

    @property
    def sequences(self) -> SequenceStore:
        """Number sequences."""
        ...


@runtime_checkable
class Store(Protocol):
    """**Protocol:** where potrack keeps everything; hands out units of work."""

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        """A new unit of work; commit on normal exit, roll back on exception.

        Opened inside another unit of the same store in the same thread, it is a *savepoint*:
        it sees the outer unit's writes, an exception undoes only its own, and its writes land
        when the outer unit commits.  A rolled-back unit leaves nothing behind, in the store or
        in any cache.
        """
        ...


# -- host services -------------------------------------------------------------------------------


class Directory(Protocol):
    """**Protocol:** the host's directory of people, roles and delegations."""

    def actor(self, actor_id: ActorId) -> Actor | None:
        """The person with that id, or None."""
        ...

    def holders(self, role: str) -> tuple[ActorId, ...]:
        """Everyone holding ``role``, in a stable order."""
        ...

    def roles(self) -> frozenset[str]:
        """Every role the directory knows (policy loading checks roles against it)."""
        ...

    def departments(self) -> frozenset[DepartmentId]:
        """Every department the directory knows."""
        ...

    def delegations(self, delegator: ActorId, at: datetime) -> tuple[Delegation, ...]:
        """Delegations from ``delegator`` in force at ``at``."""
        ...


class AccessPolicy(Protocol):
    """**Protocol:** who may act on which document, beyond the roles the lifecycle table names.

    The lifecycle asks it before every command, with the acting actor as the host's directory
    describes them, the document acted on (``None`` only when it is being created: then the new
    document is ``target``), the command, and the roles the lifecycle table allows for it.  It
    returns every reason to refuse (none: allowed).  It must be side-effect free.
    :class:`potrack.lifecycle.DepartmentAccess` is the default.
    """

    def problems(
        self,
        actor: Actor,
        target: PurchaseOrder | Requisition,
        event: Event,
        allowed_roles: frozenset[str],
    ) -> list[str]:
        """Reasons ``actor`` may not send ``event`` on ``target`` (empty: allowed)."""
        ...


class BudgetProvider(Protocol):
    """**Protocol:** budget availability, implemented by the host's finance system."""

    def available(self, budget: BudgetId, on: date) -> Money | None:
        """What is left of the budget on that day, or None when the budget is unknown."""
        ...


class ExchangeRates(Protocol):
    """**Protocol:** exchange rates the host provides (potrack never fetches rates)."""

    def rate(self, from_currency: str, to_currency: str, on: date) -> Decimal:
        """How many ``to_currency`` one ``from_currency`` buys on that day.

        Raises :class:`~potrack.exceptions.NotFoundError` when no rate is known.
        """
        ...


class Notifier(Protocol):
    """**Protocol:** delivers reminders and escalations (e-mail, chat... implemented by the host)."""

    def send(self, recipient: ActorId, subject: str, body: str) -> None:
        """Deliver one message."""
        ...


class UomConverter(Protocol):
    """**Protocol:** unit-of-measure conversion factors the host provides."""

    def factor(self, from_uom: str, to_uom: str, item: str | None) -> Decimal | None:
        """How many ``to_uom`` one ``from_uom`` is (for ``item`` if item-specific), or None."""
        ...


InvoiceKey = tuple[SupplierId, str]
"""(supplier, normalized invoice number): what duplicate detection compares."""
