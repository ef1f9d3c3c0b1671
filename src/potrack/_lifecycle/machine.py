"""The machine that applies commands to documents through a declared table, and replays facts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

from potrack import approval
from potrack._lifecycle.table import PODocuments, S, TransitionRule, _Context
from potrack.approval import Router
from potrack.events import (
    Event,
    ReassignStep,
    RecordDecision,
    TransitionRecord,
)
from potrack.exceptions import (
    DecidedFieldError,
    NotPermittedError,
    ReplayError,
    TransitionRefusedError,
)
from potrack.records import (
    Actor,
    ActorId,
    ApprovalDecision,
    ClosureKind,
    Decision,
    PurchaseOrder,
    Reassignment,
    Requisition,
)
from potrack.typing import AccessPolicy, Directory

D = TypeVar("D", PurchaseOrder, Requisition)


@attrs.frozen
class Applied(Generic[D]):
    """The result of applying an event.

    ``document`` is the new document; ``record`` the transition record to store with it (None when
    the event was a duplicate: its key was applied before, at version ``first_version`` — nothing
    changed, and a host returns the first result from its transition log).
    """

    document: D
    record: TransitionRecord | None
    duplicate: bool = False
    first_version: int | None = None


def _describe_state(doc: Any) -> str:
    state = doc.state
    if isinstance(doc, PurchaseOrder):
        if state is S.ON_HOLD and doc.hold is not None:
            return (
                f"the PO is on hold since {doc.hold.since.date().isoformat()} ({doc.hold.reason})"
            )
        if state is S.CLOSED and doc.closure is not None:
            kind = "short-closed" if doc.closure.kind is ClosureKind.SHORT else "closed"
            return f"the PO is {kind} since {doc.closure.at.date().isoformat()}"
        words = {
            S.DRAFT: "a draft",
            S.PENDING_APPROVAL: "pending approval",
            S.IN_FULFILMENT: "in fulfilment",
            S.CHANGE_PROPOSED: "waiting on a change proposal",
            S.SUPPLIER_REJECTED: "rejected by the supplier",
        }
        return f"the PO is {words.get(state, state.value.replace('_', ' '))}"
    return f"the requisition is {state.value.replace('_', ' ')}"


class _Machine(Generic[D]):
    """Applies events to one kind of document through its declared table."""

    aggregate: str
    table: tuple[TransitionRule, ...]
    terminal: frozenset[Any]
    final: frozenset[Any]
    reopen: frozenset[type[Event]]

    def __init__(self) -> None:
        self._rows: dict[type[Event], TransitionRule] = {}
        for row in self.table:
            self._rows[row.event] = row
        self._plan = {r.event: (r.effect, r.settles, not r.sources) for r in self.table}

    # roles the host may override per event name
    role_overrides: Mapping[str, frozenset[str]] = {}
    router: Router | None = None
    directory: Directory | None = None

    def row(self, event: Event) -> TransitionRule:
        found = self._rows.get(type(event))
        if found is None:
            raise TransitionRefusedError(
                "document",
                "-",
                event.verb,
                [f"{type(event).__name__} is not a {self.aggregate} event"],
            )
        return found

    def _roles(self, row: TransitionRule) -> frozenset[str]:
        return self.role_overrides.get(row.event.name, row.roles)

    def _builder(self, doc: D) -> Any:
        raise NotImplementedError

    def _permission(self, doc: Any, row: TransitionRule, actor: Actor, event: Event) -> list[str]:
        reasons: list[str] = []
        if actor.is_supplier_user:
            if not row.supplier_may:
                reasons.append(
                    f"{actor.id} works for supplier {actor.supplier_id}; supplier users "
                    "may only acknowledge, reject, propose changes, send dispatch "
                    "notices and comment"
                )
            elif getattr(doc, "supplier_id", None) != actor.supplier_id:
                reasons.append(
                    f"{actor.id} works for supplier {actor.supplier_id}, but this PO is "
                    f"with {getattr(doc, 'supplier_id', None)}"
                )
            return reasons
        if row.approver:
            state = doc.approval
            decision = getattr(event, "decision", None)
            if state is not None and decision is not None:
                not_permitted, _, _ = approval.decision_problems(
                    state, decision, actor, self.directory
                )
                reasons.extend(not_permitted)
                buyer = getattr(doc, "buyer", None)
                if decision.decision is Decision.APPROVE and actor.id == buyer:
                    reasons.append(
                        f"{actor.id} is the buyer of this document and may not approve it"
                    )
            return reasons
        roles = self._roles(row)
        if roles and not (actor.roles & roles):
            reasons.append(
                f"{actor.id} holds none of the roles allowed to {row.event.verb} "
                f"({', '.join(sorted(roles))})"
            )
        if row.owner is not None and doc is not None:
            owner = getattr(doc, row.owner)
            if owner != actor.id and not (actor.roles & row.owner_override):
                reasons.append(
                    f"only {owner} (the {row.owner}) or someone holding "
                    f"{', '.join(sorted(row.owner_override))} may {row.event.verb}"
                )
        return reasons

    def _actor(self, actor: Actor | ActorId, label: str, state: str, verb: str) -> Actor:
        """The acting person as the host's directory describes them.

        With a directory, an id is looked up, and an :class:`Actor` whose roles, department,
        manager or supplier differ from the directory's is refused: the directory is the truth.
        Without one, the host vouches for the ``Actor`` it passes.
        """
        directory = self.directory
        if isinstance(actor, str):
            known = directory.actor(ActorId(actor)) if directory is not None else None
            if known is None:
                where = (
                    "the directory" if directory is not None else "a lifecycle without a directory"
                )
                raise NotPermittedError(
                    label, state, verb, [f"{actor} is not known to {where}"], actor
                )
            return known
        if not isinstance(actor, Actor):
            raise NotPermittedError(
                label, state, verb, [f"expected an Actor or an actor id, got {actor!r}"], "?"
            )
        if directory is None:
            return actor
        known = directory.actor(actor.id)
        if known is None:
            raise NotPermittedError(
                label, state, verb, [f"{actor.id} is not in the directory"], actor.id
            )
        claims = []
        for name in ("roles", "department", "manager", "supplier_id"):
            said, truth = getattr(actor, name), getattr(known, name)
            if said != truth:
                claims.append(f"{name} {_claim(said)} (the directory says {_claim(truth)})")
        if claims:
            raise NotPermittedError(
                label,
                state,
                verb,
                [f"the Actor given for {actor.id} claims " + ", ".join(claims)],
                actor.id,
            )
        return known

    access: AccessPolicy

    def _apply(
        self,
        doc: D | None,
        event: Event,
        actor: Actor | ActorId,
        at: datetime,
        documents: PODocuments | None = None,
    ) -> Applied[D]:
        if not isinstance(event, Event):
            raise TransitionRefusedError(
                "document", "-", "apply an event", [f"expected an event, got {event!r}"]
            )
        row = self.row(event)
        creating = not row.sources
        if creating:
            if doc is not None:
                raise TransitionRefusedError(
                    _label(doc), str(doc.state), event.verb, ["the document already exists"]
                )
            target = getattr(event, "po", None) or getattr(event, "requisition", None)
            current: Any = target
        else:
            if doc is None:
                raise TransitionRefusedError(
                    "document", "-", event.verb, ["there is no document yet; create it first"]
                )
            current = doc
            for key, version in doc.applied_keys:
                if key == event.key:
                    return Applied(doc, None, duplicate=True, first_version=version)
        label = _label(current)
        state_name = str(current.state)
        actor = self._actor(actor, label, state_name, event.verb)
        sent = event.sent_facts()
        if sent:
            raise DecidedFieldError(label, state_name, event.verb, sent, actor.id)
        if not creating and current.state not in row.sources:
            raise TransitionRefusedError(
                label, state_name, event.verb, [_describe_state(current)], actor.id
            )
        event = _prepare(event, actor, at)
        context = _Context(current, event, actor, at, self, documents)
        not_permitted = self._permission(current, row, actor, event)
        if not not_permitted:
            not_permitted = self.access.problems(actor, current, event, self._roles(row))
        if not_permitted:
            raise NotPermittedError(label, state_name, event.verb, not_permitted, actor.id)
        reasons = [reason for guard in row.guards for reason in guard(context)]
        if reasons:
            raise TransitionRefusedError(label, state_name, event.verb, reasons, actor.id)
        if row.complete is not None:
            try:
                event = row.complete(context)
            except approval.RoutingError as err:
                raise TransitionRefusedError(
                    label, state_name, event.verb, [str(p) for p in err.problems], actor.id
                ) from err
            except TransitionRefusedError as err:
                if err.actor is None:
                    raise TransitionRefusedError(
                        err.document, err.state, err.event, err.reasons, actor.id
                    ) from err
                raise
        builder = self._builder(current)
        if creating:
            builder.version = 0
            builder.applied = []
        from_state = None if creating else current.state
        domain = self._step(builder, row, event, actor.id, at)
        new_doc = builder.freeze()
        record = TransitionRecord(
            aggregate=self.aggregate,
            aggregate_id=new_doc.id,
            version=new_doc.version,
            event=event,
            actor=actor.id,
            at=at,
            from_state=None if from_state is None else str(from_state),
            to_state=str(new_doc.state),
            label=_label(new_doc),
            domain_events=domain,
        )
        return Applied(new_doc, record)

    def _step(
        self,
        b: Any,
        row: TransitionRule,
        event: Event,
        actor: ActorId,
        at: datetime,
        recorded_to: str | None = None,
    ) -> tuple[str, ...]:
        domain = row.effect(b, event, actor, at)
        version = b.version = b.version + 1
        b.applied.append((event.key, version))
        if row.settles:
            # Live, the machine decides whether the document is done; replaying, the record says
            # so — replay never depends on the configuration.
            closed = self.closed_state
            done = (
                self._done(b)
                if recorded_to is None
                else recorded_to == closed and b.state != closed
            )
            if done:
                domain = domain + self._close(b, actor, at)
        return domain

    closed_state: Any = None

    def _done(self, b: Any) -> bool:
        return False

    def _close(self, b: Any, actor: ActorId, at: datetime) -> tuple[str, ...]:
        return ()

    def replay_records(self, records: Iterable[TransitionRecord]) -> D:
        """Rebuild a document from its transition records (see :func:`replay`)."""
        builder: Any = None
        expected = 1
        plan = self._plan
        closed = self.closed_state
        applied: list[tuple[str, int]] = []
        # The loop does what _step does, inlined: replay is the hot path (every rebuild of a
        # document from its records goes through it).
        for record in records:
            event = record.event
            step = plan.get(type(event))
            if step is None:
                raise ReplayError(f"{type(event).__name__} is not a {self.aggregate} event")
            effect, settles, creates = step
            if builder is None:
                if not creates:
                    raise ReplayError("the first transition record must create the document")
                doc = getattr(event, "po", None) or getattr(event, "requisition", None)
                builder = self._builder(doc)  # type: ignore[arg-type]
                builder.applied = applied
            if record.version != expected:
                raise ReplayError(
                    f"transition records skip from version {expected - 1} to {record.version}"
                )
            effect(builder, event, record.actor, record.at)
            applied.append((event.key, expected))
            if settles and record.to_state == closed and builder.state != closed:
                self._close(builder, record.actor, record.at)
            expected += 1
        if builder is not None:
            builder.version = expected - 1
        if builder is None:
            raise ReplayError("no transition records to replay")
        result: D = builder.freeze()
        return result


def _label(doc: Any) -> str:
    return str(getattr(doc, "number", None) or doc.id)


def _claim(value: Any) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(value)) + "}" if value else "{}"
    return "none" if value is None else str(value)


def _prepare(event: Event, actor: Actor, at: datetime) -> Event:
    """Turn a decision or reassignment command into the record the library keeps: signed by the
    acting actor, at the library's time (on whose behalf a delegate acts is decided later)."""
    if isinstance(event, RecordDecision):
        if event.step_id is None or event.verdict is None:
            return event  # refused by the guard, with its reason
        decision = ApprovalDecision(
            step_id=event.step_id,
            actor=actor.id,
            decision=event.verdict,
            at=at,
            reason=event.reason,
        )
        return attrs.evolve(event, decision=decision)
    if isinstance(event, ReassignStep):
        if event.step_id is None or event.to_actor is None or not event.reason:
            return event
        move = Reassignment(
            step_id=event.step_id,
            from_actor=event.from_actor,
            to_actor=event.to_actor,
            by=actor.id,
            at=at,
            reason=event.reason,
        )
        return attrs.evolve(event, reassignment=move)
    return event
