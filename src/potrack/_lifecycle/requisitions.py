"""The requisition lifecycle table, its guards and effects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from potrack._lifecycle.decide import _c_decide, _c_submit
from potrack._lifecycle.effects import _e_cancel, _e_decide, _e_reassign, _e_submit
from potrack._lifecycle.guards import _g_decision, _g_reassign, _try
from potrack._lifecycle.po_table import _rule
from potrack._lifecycle.progress import _Req
from potrack._lifecycle.table import TransitionRule, _Context
from potrack.events import (
    Cancel,
    ConvertToOrders,
    CreateRequisition,
    EditRequisition,
    ReassignStep,
    RecordDecision,
    SubmitForApproval,
)
from potrack.records import (
    ActorId,
    Requisition,
    RequisitionState,
    Role,
)

# -- requisitions -------------------------------------------------------------------------------------------

R = RequisitionState


def _g_create_req(c: _Context) -> Iterable[str]:
    req: Requisition = c.event.requisition
    if req.state is not R.DRAFT or req.version != 1 or req.approval or req.conversions:
        yield "a new requisition starts as a draft at version 1 with no history"


def _g_edit_req(c: _Context) -> Iterable[str]:
    e: EditRequisition = c.event
    if e.lines is not None:
        yield from _try(lambda: attrs.evolve(c.doc, lines=e.lines))


def _g_submit_req(c: _Context) -> Iterable[str]:
    if c.machine.router is None and c.event.route is None:
        yield "no approval router is configured, so the requisition cannot be routed"


def _g_convert(c: _Context) -> Iterable[str]:
    req: Requisition = c.doc
    known = {line.line_no for line in req.lines}
    done = {cv.line_no for cv in req.conversions}
    for cv in c.event.conversions:
        if cv.line_no not in known:
            yield f"requisition {req.id} has no line {cv.line_no}"
        elif cv.line_no in done:
            yield f"line {cv.line_no} is already converted"


def _e_create_req(b: _Req, e: CreateRequisition, actor: ActorId, at: datetime) -> tuple[str, ...]:
    return ("requisition_created",)


def _e_edit_req(b: _Req, e: EditRequisition, actor: ActorId, at: datetime) -> tuple[str, ...]:
    if e.lines is not None:
        b.set(lines=e.lines)
    if e.justification is not None:
        b.set(justification=e.justification)
    if b.state is R.RETURNED:
        b.state = R.DRAFT
    return ()


def _e_submit_req(b: _Req, e: SubmitForApproval, actor: ActorId, at: datetime) -> tuple[str, ...]:
    return _e_submit(b, e, actor, at)


def _e_convert(b: _Req, e: ConvertToOrders, actor: ActorId, at: datetime) -> tuple[str, ...]:
    conversions = (*b.get("conversions"), *e.conversions)
    b.set(conversions=conversions)
    lines = {line.line_no for line in b.get("lines")}
    if lines <= {cv.line_no for cv in conversions}:
        b.state = R.CONVERTED
        return ("requisition_converted",)
    return ("requisition_partly_converted",)


REQUISITION_TRANSITIONS: tuple[TransitionRule, ...] = (
    _rule(
        CreateRequisition,
        (),
        {R.DRAFT},
        _e_create_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_create_req,),
        summary="an employee asks to buy",
    ),
    _rule(
        EditRequisition,
        {R.DRAFT, R.RETURNED},
        {R.DRAFT},
        _e_edit_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_edit_req,),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        summary="change lines or justification (a returned requisition becomes a draft again)",
    ),
    _rule(
        SubmitForApproval,
        {R.DRAFT, R.RETURNED},
        {R.PENDING_APPROVAL, R.APPROVED},
        _e_submit_req,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        guards=(_g_submit_req,),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        complete=_c_submit,
        summary="route it through the approval policy",
    ),
    _rule(
        RecordDecision,
        {R.PENDING_APPROVAL},
        {R.PENDING_APPROVAL, R.APPROVED, R.REJECTED, R.RETURNED},
        _e_decide,
        approver=True,
        guards=(_g_decision,),
        complete=_c_decide,
        summary="an approver approves, rejects, returns for changes or comments",
    ),
    _rule(
        ReassignStep,
        {R.PENDING_APPROVAL},
        {R.PENDING_APPROVAL},
        _e_reassign,
        roles=frozenset({Role.ADMIN, Role.BUYER}),
        guards=(_g_reassign,),
        summary="hand an open step to another approver",
    ),
    _rule(
        ConvertToOrders,
        {R.APPROVED},
        {R.APPROVED, R.CONVERTED},
        _e_convert,
        roles=frozenset({Role.BUYER}),
        guards=(_g_convert,),
        summary="lines become PO lines (split across suppliers or merged); converted when all are",
    ),
    _rule(
        Cancel,
        {R.DRAFT, R.PENDING_APPROVAL, R.APPROVED, R.RETURNED},
        {R.CANCELLED},
        _e_cancel,
        roles=frozenset({Role.REQUESTER, Role.BUYER}),
        owner="requester",
        owner_override=frozenset({Role.BUYER, Role.ADMIN}),
        summary="withdraw the request",
    ),
)
"""The requisition lifecycle, one row per event."""

REQ_TERMINAL = frozenset({R.REJECTED, R.CONVERTED, R.CANCELLED})


# -- applying ------------------------------------------------------------------------------------------------
