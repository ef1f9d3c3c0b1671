"""The outbox: domain events committed with the state that produced them, delivered at least once.

When :class:`~potrack.service.Purchasing` stores a transition, the store writes one outbox message
per domain event of the record (``po_created``, ``goods_received``, ``invoice_matched``...) *in the
same transaction*: if the state is committed, so are its messages, and nothing is lost between
commit and publish.  A :class:`Dispatcher` then hands the messages to the host's subscribers:

* **at least once** — a message is marked delivered to a subscriber only after the subscriber
  returned; if the process dies in between, it is delivered again (subscribers should be
  idempotent: ``message.key`` is stable);
* **in order per document** — a subscriber never gets a PO's message before that PO's earlier
  ones;
* **failures are retried later without blocking the others** — a subscriber that raises gets the
  message again after a back-off (doubling from ``retry_after`` up to ``max_backoff``); meanwhile
  that document's later messages wait *for that subscriber only*; other documents and other
  subscribers go on.

>>> from potrack.events import SubmitForApproval
>>> from potrack.service import Purchasing
>>> from potrack.testing.scenario import Scenario
>>> s = Scenario()
>>> svc = Purchasing(s.store, s.lifecycle, numbers=s.numbers, clock=s.clock)
>>> s.clock.set(s.at(0))
>>> po = svc.create_order(s.po_document(), s.buyer).document
>>> s.clock.set(s.at(1))
>>> _ = svc.order(po.id, SubmitForApproval(), s.buyer)
>>> seen = []
>>> report = Dispatcher(s.store, {"erp": lambda m: seen.append(m.name)}).dispatch()
>>> seen, report.delivered
(['po_created', 'submitted'], 2)
>>> Dispatcher(s.store, {"erp": seen.append}).dispatch().delivered   # nothing twice
0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import attrs

from potrack.events import TransitionRecord
from potrack.exceptions import Problem, ValidationError

__all__ = [
    "DispatchReport",
    "Dispatcher",
    "OutboxMessage",
    "OutboxStore",
    "Pending",
    "messages_of",
]


@attrs.frozen
class OutboxMessage:
    """One domain event to publish: what happened, to which document, when, by whom.

    ``seq`` orders messages across the store; ``key`` is stable (document, version, name) for
    idempotent subscribers; ``data`` carries the record's states and label.
    """

    seq: int
    name: str
    aggregate: str
    aggregate_id: str
    version: int
    at: datetime
    actor: str
    event: str
    data: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def key(self) -> str:
        return f"{self.aggregate}/{self.aggregate_id}/{self.version}/{self.name}"


def messages_of(record: TransitionRecord) -> list[dict[str, Any]]:
    """The outbox rows a transition record produces (one per domain event), without ``seq``."""
    data = json.dumps(
        {
            "label": record.label,
            "from_state": record.from_state or "",
            "to_state": record.to_state,
        },
        sort_keys=True,
    )
    return [
        {
            "name": name,
            "aggregate": record.aggregate,
            "aggregate_id": record.aggregate_id,
            "version": record.version,
            "at": record.at,
            "actor": record.actor,
            "event": record.event_name,
            "data": data,
        }
        for name in record.domain_events
    ]


@attrs.frozen
class Pending:
    """A message not yet delivered to a subscriber, with its delivery attempts so far."""

    message: OutboxMessage
    attempts: int = 0
    retry_at: datetime | None = None


@runtime_checkable
class OutboxStore(Protocol):
    """A store that keeps an outbox (both shipped stores do)."""

    def outbox_pending(self, subscriber: str, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages not yet delivered to ``subscriber``, in ``seq`` order."""
        ...

    def outbox_delivered(self, subscriber: str, seq: int, at: datetime) -> None:
        """Record that ``subscriber`` has message ``seq``."""
        ...

    def outbox_failed(self, subscriber: str, seq: int, error: str, retry_at: datetime) -> None:
        """Record a failed delivery: one more attempt, the error, when to try again."""
        ...


@attrs.frozen
class DispatchReport:
    """What one :meth:`Dispatcher.dispatch` did."""

    delivered: int
    failed: int
    waiting: int
    """Messages held back: retry time not reached, or an earlier message of the same document
    failed for that subscriber."""
    errors: tuple[tuple[str, int, str], ...] = ()
    """(subscriber, seq, error) of this run's failures."""


def _now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Delivers outbox messages to subscribers (see the module docs for the guarantees).

    Args:
        store: an :class:`OutboxStore`.
        subscribers: name → callable taking an :class:`OutboxMessage`.  The name is the delivery
            cursor: a new name receives every message from the first.
        retry_after: the first back-off after a failure (doubling per attempt).
        max_backoff: the longest back-off.
        clock: the time source (tests pass a fake clock).

    Raises:
        ValidationError: the store keeps no outbox, or no subscribers were given.
    """

    def __init__(
        self,
        store: Any,
        subscribers: Mapping[str, Callable[[OutboxMessage], object]],
        *,
        retry_after: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = _now,
    ) -> None:
        problems = []
        if not isinstance(store, OutboxStore):
            problems.append(Problem("store", f"{type(store).__name__} keeps no outbox"))
        if not subscribers:
            problems.append(Problem("subscribers", "give at least one subscriber"))
        if problems:
            raise ValidationError("Dispatcher", problems)
        self.store: OutboxStore = store
        self.subscribers = dict(subscribers)
        self.retry_after = retry_after
        self.max_backoff = max_backoff
        self.clock = clock

    def _backoff(self, attempts: int) -> timedelta:
        grown: timedelta = self.retry_after * (2 ** max(0, attempts - 1))
        return min(grown, self.max_backoff)

    def dispatch(self, limit: int = 1_000) -> DispatchReport:
        """One pass: for each subscriber, deliver up to ``limit`` of its pending messages."""
        delivered = failed = waiting = 0
        errors: list[tuple[str, int, str]] = []
        for name, subscriber in self.subscribers.items():
            blocked: set[tuple[str, str]] = set()
            now = self.clock()
            for pending in self.store.outbox_pending(name, limit):
                message = pending.message
                document = (message.aggregate, message.aggregate_id)
                if document in blocked or (pending.retry_at is not None and pending.retry_at > now):
                    blocked.add(document)  # keep the document's order for this subscriber
                    waiting += 1
                    continue
                try:
                    subscriber(message)
                except Exception as err:
                    text = f"{type(err).__name__}: {err}"
                    retry = now + self._backoff(pending.attempts + 1)
                    self.store.outbox_failed(name, message.seq, text, retry)
                    blocked.add(document)
                    failed += 1
                    errors.append((name, message.seq, text))
                    continue
                self.store.outbox_delivered(name, message.seq, self.clock())
                delivered += 1
        return DispatchReport(delivered, failed, waiting, tuple(errors))

    def drain(self, limit: int = 1_000, rounds: int = 1_000) -> Iterator[DispatchReport]:
        """Dispatch until a pass delivers nothing (at most ``rounds`` passes)."""
        for _ in range(rounds):
            report = self.dispatch(limit)
            yield report
            if not report.delivered:
                return
