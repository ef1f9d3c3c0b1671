"""The shape of a lifecycle table: rows, the context guards see, the documents a match needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import attrs

from potrack.events import (
    Event,
)
from potrack.records import (
    Actor,
    ActorId,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    POState,
    PurchaseOrder,
)

Guard = Callable[["_Context"], Iterable[str]]
"""A side-effect-free check returning the reasons an event cannot be applied (none: it can)."""


@attrs.frozen(kw_only=True)
class TransitionRule:
    """One row of a lifecycle table.

    ``sources`` are the states the event is allowed in (empty for the creating event);
    ``targets`` the states it may lead to; ``pairs`` the exact (from, to) moves when not every
    source leads to every target (empty: all of them; an event that keeps the state has
    ``targets`` empty and ``stays`` set); ``roles`` the roles that may send it (any one suffices;
    empty: anyone); ``supplier_may`` whether a supplier's users may send it (on their own
    supplier's orders); ``approver`` whether permission comes from the approval route.
    """

    event: type[Event]
    sources: frozenset[Any]
    targets: frozenset[Any]
    roles: frozenset[str] = frozenset()
    supplier_may: bool = False
    approver: bool = False
    guards: tuple[Guard, ...] = ()
    complete: Callable[[_Context], Event] | None = None
    effect: Callable[[Any, Any, ActorId, datetime], tuple[str, ...]]
    settles: bool = False
    """Whether the event can finish the PO (it then closes itself when everything is done)."""
    owner: str | None = None
    """A field naming the document's owner (``requester``): others need ``owner_override`` roles."""
    owner_override: frozenset[str] = frozenset()
    summary: str = ""
    pairs: frozenset[tuple[Any, Any]] = frozenset()
    stays: bool = False

    @property
    def moves(self) -> frozenset[tuple[Any, Any]]:
        """Every (from, to) state pair this event can produce (to == from: state unchanged)."""
        if self.pairs:
            return self.pairs
        if self.stays:
            return frozenset((s, s) for s in self.sources)
        return frozenset((s, t) for s in self.sources for t in self.targets)

    @property
    def results(self) -> frozenset[Any]:
        """Every state the event can leave the document in."""
        return frozenset(t for _, t in self.moves) | self.targets


@attrs.frozen
class _Context:
    """What guards and completers see."""

    doc: Any
    event: Any
    actor: Actor
    at: datetime
    machine: Any
    documents: PODocuments | None = None


@attrs.frozen(kw_only=True)
class PODocuments:
    """The stored documents of one PO that recording a match needs (the engine's inputs).

    ``invoices`` are the PO's invoices and credit memos in the order they were recorded;
    ``supplier_invoices`` the supplier's invoices on any PO in the order they were recorded (for
    duplicate detection).  :class:`~potrack.service.Purchasing` loads them from its store.
    """

    receipts: tuple[GoodsReceipt, ...] = ()
    returns: tuple[GoodsReturn, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    supplier_invoices: tuple[Invoice, ...] = ()


S = POState
ALL_PO_STATES = frozenset(POState)
ACTIVE = frozenset({S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT})
"""States in which goods, invoices and payments may be recorded."""
OPEN_FOR_TALK = frozenset(POState) - {S.CLOSED, S.CANCELLED, S.REJECTED}


def _line_nos(po: PurchaseOrder) -> set[int]:
    return {line.line_no for line in po.lines}


def _unknown_lines(po: PurchaseOrder, numbers: Iterable[int], what: str) -> list[str]:
    known = _line_nos(po)
    return [
        f"{what} names line {n}, which {po.label} does not have (lines: {sorted(known)})"
        for n in numbers
        if n not in known
    ]
