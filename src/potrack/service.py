"""The host's entry point: apply commands to stored documents, atomically.

:class:`Purchasing` loads a document from a :class:`~potrack.typing.Store`, applies the command
through the lifecycle, and in **one unit of work** saves the new version, appends the transition
record, stores the documents the command carries (receipts, returns, invoices, payments),
allocates the PO number at issue and queues the domain events in the outbox.  A retried command
(same idempotency key) returns the first result from the transition log and changes nothing.

**Callers state intent; the library decides.**  The time of every transition comes from the
service's clock (the system's UTC clock unless a host injects one, as tests do), never from the
caller; the acting person is looked up in the directory by id; PO numbers come from the
allocator.  A command carrying a value the library decides is refused
(:class:`~potrack.exceptions.DecidedFieldError`).

>>> from potrack.testing.scenario import Scenario
>>> from potrack.events import SubmitForApproval
>>> s = Scenario()
>>> svc = Purchasing(s.store, s.lifecycle, numbers=s.numbers, clock=s.clock)
>>> po = svc.create_order(s.po_document(), s.buyer).document
>>> s.clock.set(s.at(1))
>>> applied = svc.order(po.id, SubmitForApproval(), "buyer-1")
>>> applied.document.state.value, applied.record.at == s.at(1)
('pending_approval', True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs

from potrack.events import (
    Event,
    Issue,
    ReceiveGoods,
    RecordCreditMemo,
    RecordInspection,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    ReturnGoods,
    TransitionRecord,
)
from potrack.exceptions import ConfigurationError, ConflictError, DecidedFieldError, PotrackError
from potrack.lifecycle import Applied, PODocuments, PurchaseOrderLifecycle, RequisitionLifecycle
from potrack.numbering import BlockAllocator, GaplessAllocator, NumberingContext
from potrack.records import (
    Actor,
    ActorId,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderNumber,
    Requisition,
    RequisitionId,
)
from potrack.typing import Store, UnitOfWork

__all__ = ["Purchasing", "retry_on_conflict", "utc_now"]

T = TypeVar("T")

_DOCUMENT_EVENTS = (ReceiveGoods, RecordInspection, ReturnGoods, RecordInvoice, RecordCreditMemo)
"""Events carrying a document of many lines: applied before the writing unit of work opens."""


def utc_now() -> datetime:
    """The system clock in UTC: :class:`Purchasing`'s default clock."""
    return datetime.now(UTC)


def retry_on_conflict(action: Callable[[], T], attempts: int = 5, pause: float = 0.01) -> T:
    """Run ``action``; when it raises :class:`ConflictError`, run it again (up to ``attempts``).

    ``action`` must reload what it changes (every :class:`Purchasing` method does), so a retry
    applies the event to the newer version.  Waits ``pause`` × attempt seconds between tries.

    Raises:
        ConflictError: still conflicting after the last attempt.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except ConflictError:
            if attempt == attempts:
                raise
            time.sleep(pause * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


class Purchasing:
    """Applies commands to the documents in a store, one unit of work per command.

    Args:
        store: where documents live.
        lifecycle: the PO lifecycle (with its router, directory, suppliers and numbering scheme).
        requisitions: the requisition lifecycle (optional).
        numbers: allocates PO numbers at issue (gapless inside the unit of work, or from blocks);
            with one, an ``Issue`` command may not name its own number.
        clock: the time every transition is recorded at (default :func:`utc_now`); it must give
            timezone-aware times.  Tests inject :class:`potrack.testing.ManualClock`.
    """

    def __init__(
        self,
        store: Store,
        lifecycle: PurchaseOrderLifecycle,
        requisitions: RequisitionLifecycle | None = None,
        numbers: GaplessAllocator | BlockAllocator | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.requisitions = requisitions or RequisitionLifecycle(
            router=lifecycle.router, access=lifecycle.access
        )
        self.numbers = numbers
        self.clock = clock or utc_now

    def now(self) -> datetime:
        """The service's time (from its clock).

        Raises:
            ConfigurationError: the clock gave a naive time.
        """
        at = self.clock()
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise ConfigurationError(
                f"the service's clock must give timezone-aware datetimes, got {at!r}"
            )
        return at

    # -- purchase orders ---------------------------------------------------------------------------

    def create_order(self, po: PurchaseOrder, actor: Actor | ActorId) -> Applied[PurchaseOrder]:
        """Create and store a draft PO.

        Raises:
            NotPermittedError, TransitionRefusedError: as the lifecycle raises.
            ConflictError: a PO with that id exists.
        """
        applied = self.lifecycle.create(po, actor, self.now())
        with self.store.unit_of_work() as uow:
            self._store(uow, applied, None)
        return applied

    def order(
        self,
        po_id: str,
        command: Event,
        actor: Actor | ActorId,
        *,
        expected_version: int | None = None,
    ) -> Applied[PurchaseOrder]:
        """Apply ``command`` to the stored PO ``po_id`` and store the result atomically.

        ``actor`` is the acting person's id (or their :class:`Actor`, which must agree with the
        directory).  ``expected_version`` is the version the actor saw (a screen shown earlier):
        if the PO changed since, the command is refused with :class:`ConflictError` rather than
        applied to a document the actor has not seen — optimistic concurrency end to end.

        Raises:
            NotFoundError: no PO with that id.
            NotPermittedError, TransitionRefusedError: the lifecycle refuses the command (nothing
                is written); :class:`DecidedFieldError` when it carries a value the library
                decides.
            ConflictError: someone else changed the PO meanwhile, or it is not at
                ``expected_version`` (nothing is written; see :func:`retry_on_conflict`).
            DuplicateError: the number given at issue is held by another PO.
            NumberOverflowError, MissingFieldError: the number cannot be allocated at issue.
        """
        if isinstance(command, Issue) and command.number is not None and self.numbers is not None:
            who = actor if isinstance(actor, str) else actor.id
            raise DecidedFieldError(po_id, "-", command.verb, ("number",), who)
        at = self.now()
        early_number = self._number_before(po_id, command, at)
        early = self._applied_before(po_id, command, actor, at)
        with self.store.unit_of_work() as uow:
            po = uow.purchase_orders.require(PurchaseOrderId(po_id))
            first = uow.transitions.by_key("purchase_order", po.id, command.key)
            if first is not None:
                return Applied(po, first, duplicate=True, first_version=first.version)
            if expected_version is not None and po.version != expected_version:
                raise ConflictError("purchase order", po.id, expected_version, po.version)
            event = command
            if isinstance(event, Issue) and event.number is None and po.number is None:
                number = early_number or self._number_in(uow, po, at)
                if number is not None:
                    event = attrs.evolve(event, number=PurchaseOrderNumber(number))
            if early is not None and early[0] == po.version:
                applied = early[1]  # applied to this very version before the unit opened
            else:
                documents = self._documents(uow, po) if isinstance(event, RecordMatch) else None
                applied = self.lifecycle.apply(po, event, actor, at, documents=documents)
            self._store(uow, applied, event)
        return applied

    def _applied_before(
        self, po_id: str, event: Event, actor: Actor | ActorId, at: datetime
    ) -> tuple[int, Applied[PurchaseOrder]] | None:
        """A goods or invoice event applied (guards and effects: linear in its lines, but long
        for a document of thousands) before the writing unit of work opens, to the PO as read
        then; the writing unit uses it if the PO is still at that version."""
        if not isinstance(event, _DOCUMENT_EVENTS):
            return None
        with self.store.unit_of_work() as uow:
            po = uow.purchase_orders.require(PurchaseOrderId(po_id))
        try:
            return po.version, self.lifecycle.apply(po, event, actor, at)
        except PotrackError:
            return None  # refused (or a duplicate): the writing unit says so, in order

    @staticmethod
    def _documents(uow: UnitOfWork, po: PurchaseOrder) -> PODocuments:
        """The stored documents the matching engine needs to match an invoice of ``po``."""
        return PODocuments(
            receipts=uow.receipts.for_po(po.id),
            returns=uow.returns.for_po(po.id),
            invoices=uow.invoices.for_po(po.id),
            supplier_invoices=uow.invoices.for_supplier(po.supplier_id),
        )

    def _number_before(self, po_id: str, event: Event, at: datetime) -> str | None:
        """Fast (block) numbers are taken before the unit of work opens (they may leave gaps)."""
        if not isinstance(event, Issue) or event.number is not None:
            return None
        if not isinstance(self.numbers, BlockAllocator):
            return None
        with self.store.unit_of_work() as uow:
            po = uow.purchase_orders.require(PurchaseOrderId(po_id))
        if po.number is not None:
            return None
        return self.numbers.allocate(self._context(po, at))

    def _number_in(self, uow: UnitOfWork, po: PurchaseOrder, at: datetime) -> str | None:
        if isinstance(self.numbers, GaplessAllocator):
            return self.numbers.allocate(self._context(po, at), uow)
        return None

    def _context(self, po: PurchaseOrder, at: datetime) -> NumberingContext:
        supplier = self.lifecycle.suppliers.supplier(po.supplier_id)
        return NumberingContext.for_order(po, at.date(), supplier)

    def _store(self, uow: UnitOfWork, applied: Applied[Any], event: Event | None) -> None:
        document = applied.document
        record = applied.record
        assert record is not None
        if isinstance(document, PurchaseOrder):
            uow.purchase_orders.save(document)
        else:
            uow.requisitions.save(document)
        uow.transitions.append(record)
        stored = record.event
        if isinstance(stored, ReceiveGoods):
            uow.receipts.add(stored.receipt)
        elif isinstance(stored, ReturnGoods):
            uow.returns.add(stored.goods_return)
        elif isinstance(stored, RecordInvoice):
            uow.invoices.add(stored.invoice)
        elif isinstance(stored, RecordCreditMemo):
            uow.invoices.add(stored.memo)
        elif isinstance(stored, RecordPayment) and uow.payments.get(stored.payment.id) is None:
            uow.payments.add(stored.payment)  # one payment may settle invoices of several POs
        outbox = getattr(uow, "outbox", None)
        if outbox is not None and record.domain_events:
            outbox.add(record)

    # -- requisitions -----------------------------------------------------------------------------

    def create_requisition(
        self, requisition: Requisition, actor: Actor | ActorId
    ) -> Applied[Requisition]:
        """Create and store a draft requisition (raises as :meth:`create_order`)."""
        applied = self.requisitions.create(requisition, actor, self.now())
        with self.store.unit_of_work() as uow:
            self._store(uow, applied, None)
        return applied

    def requisition(
        self, req_id: str, command: Event, actor: Actor | ActorId
    ) -> Applied[Requisition]:
        """Apply ``command`` to the stored requisition ``req_id`` (raises as :meth:`order`)."""
        at = self.now()
        event = command
        with self.store.unit_of_work() as uow:
            req = uow.requisitions.require(RequisitionId(req_id))
            first = uow.transitions.by_key("requisition", req.id, event.key)
            if first is not None:
                return Applied(req, first, duplicate=True, first_version=first.version)
            applied = self.requisitions.apply(req, event, actor, at)
            self._store(uow, applied, event)
        return applied

    # -- reading ---------------------------------------------------------------------------------

    def history(self, po_id: str) -> tuple[TransitionRecord, ...]:
        """Every transition record of a PO, in version order (its audit trail)."""
        with self.store.unit_of_work() as uow:
            return uow.transitions.for_aggregate("purchase_order", po_id)

    def get_order(self, po_id: str) -> PurchaseOrder:
        """The stored PO (raises NotFoundError)."""
        with self.store.unit_of_work() as uow:
            return uow.purchase_orders.require(PurchaseOrderId(po_id))
