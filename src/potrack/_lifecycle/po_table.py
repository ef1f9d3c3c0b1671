"""The purchase-order lifecycle table: one row per event."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from potrack._lifecycle.decide import (
    _c_accept,
    _c_decide,
    _c_issue,
    _c_match,
    _c_receive,
    _c_revise,
    _c_side,
    _c_submit,
)
from potrack._lifecycle.effects import (
    _e_accept,
    _e_ack,
    _e_cancel,
    _e_comment,
    _e_create,
    _e_credit,
    _e_decide,
    _e_decline,
    _e_dispatch,
    _e_edit,
    _e_flag,
    _e_hold,
    _e_inspect,
    _e_invoice,
    _e_issue,
    _e_match,
    _e_pay,
    _e_propose,
    _e_reassign,
    _e_receive,
    _e_release,
    _e_reopen,
    _e_resolve,
    _e_return,
    _e_revise,
    _e_short_close,
    _e_submit,
    _e_supplier_reject,
)
from potrack._lifecycle.guards import (
    _g_ack,
    _g_cancel,
    _g_create,
    _g_credit,
    _g_decision,
    _g_dispatch,
    _g_edit,
    _g_inspect,
    _g_invoice,
    _g_issue,
    _g_issue_exists,
    _g_match,
    _g_new_issue,
    _g_pay,
    _g_pending_change,
    _g_proposal,
    _g_reassign,
    _g_receive,
    _g_return,
    _g_revise,
    _g_short_close,
    _g_submit_po,
)
from potrack._lifecycle.table import ACTIVE, OPEN_FOR_TALK, S, TransitionRule
from potrack.events import (
    AcceptChange,
    Acknowledge,
    AddComment,
    Cancel,
    CreatePurchaseOrder,
    DeclineChange,
    EditDraft,
    Event,
    FlagIssue,
    Issue,
    PlaceOnHold,
    ProposeChange,
    ReassignStep,
    ReceiveGoods,
    RecordCreditMemo,
    RecordDecision,
    RecordDispatch,
    RecordInspection,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    ReleaseHold,
    Reopen,
    ResolveIssue,
    ReturnGoods,
    ReviseOrder,
    ShortClose,
    SubmitForApproval,
    SupplierReject,
)
from potrack.records import (
    Role,
)

# -- the PO table -------------------------------------------------------------------------------------------

_INTERNAL = frozenset(
    {
        Role.BUYER,
        Role.REQUESTER,
        Role.APPROVER,
        Role.RECEIVER,
        Role.INSPECTOR,
        Role.AP_CLERK,
        Role.TREASURER,
        Role.ADMIN,
        Role.SUPPLIER,
    }
)
_FULFILMENT = frozenset(
    {
        (S.ISSUED, S.IN_FULFILMENT),
        (S.ACKNOWLEDGED, S.IN_FULFILMENT),
        (S.IN_FULFILMENT, S.IN_FULFILMENT),
        (S.IN_FULFILMENT, S.CLOSED),
    }
)
"""A receipt or invoice starts fulfilment; with everything done, the PO closes itself."""
_REVISIONS = frozenset(
    {
        (src, tgt)
        for src in (S.ISSUED, S.ACKNOWLEDGED, S.SUPPLIER_REJECTED, S.IN_FULFILMENT)
        for tgt in (S.PENDING_APPROVAL, S.APPROVED)
    }
    | {
        (S.ISSUED, S.ISSUED),
        (S.ACKNOWLEDGED, S.ISSUED),
        (S.SUPPLIER_REJECTED, S.ISSUED),
        (S.IN_FULFILMENT, S.IN_FULFILMENT),
    }
)
_HOLDABLE = frozenset(
    {
        S.PENDING_APPROVAL,
        S.APPROVED,
        S.ISSUED,
        S.ACKNOWLEDGED,
        S.CHANGE_PROPOSED,
        S.SUPPLIER_REJECTED,
        S.IN_FULFILMENT,
    }
)


def _rule(
    event: type[Event], sources: Iterable[Any], targets: Iterable[Any], effect: Any, **kw: Any
) -> TransitionRule:
    return TransitionRule(
        event=event, sources=frozenset(sources), targets=frozenset(targets), effect=effect, **kw
    )


PO_TRANSITIONS: tuple[TransitionRule, ...] = (
    _rule(
        CreatePurchaseOrder,
        (),
        {S.DRAFT},
        _e_create,
        roles=frozenset({Role.BUYER}),
        guards=(_g_create,),
        summary="a buyer creates the PO as a draft",
    ),
    _rule(
        EditDraft,
        {S.DRAFT},
        {S.DRAFT},
        _e_edit,
        roles=frozenset({Role.BUYER}),
        guards=(_g_edit,),
        summary="change the draft's lines or terms",
    ),
    _rule(
        SubmitForApproval,
        {S.DRAFT},
        {S.PENDING_APPROVAL, S.APPROVED},
        _e_submit,
        roles=frozenset({Role.BUYER}),
        guards=(_g_submit_po,),
        complete=_c_submit,
        summary="route it through the approval policy (approved at once if the route is empty)",
    ),
    _rule(
        RecordDecision,
        {S.PENDING_APPROVAL},
        {S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.DRAFT},
        _e_decide,
        approver=True,
        guards=(_g_decision,),
        complete=_c_decide,
        summary="an approver of the open step approves, rejects, returns or comments",
    ),
    _rule(
        ReassignStep,
        {S.PENDING_APPROVAL},
        {S.PENDING_APPROVAL},
        _e_reassign,
        roles=frozenset({Role.ADMIN, Role.BUYER}),
        guards=(_g_reassign,),
        summary="hand an open step to another approver",
    ),
    _rule(
        Issue,
        {S.APPROVED},
        {S.ISSUED},
        _e_issue,
        roles=frozenset({Role.BUYER}),
        guards=(_g_issue,),
        complete=_c_issue,
        summary="send it to the supplier; the number is assigned here; refused until the "
        "approval route is complete",
    ),
    _rule(
        Acknowledge,
        {S.ISSUED, S.IN_FULFILMENT},
        {S.ACKNOWLEDGED, S.IN_FULFILMENT},
        _e_ack,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        guards=(_g_ack,),
        summary="the supplier accepts the current revision",
        pairs=frozenset({(S.ISSUED, S.ACKNOWLEDGED), (S.IN_FULFILMENT, S.IN_FULFILMENT)}),
    ),
    _rule(
        SupplierReject,
        {S.ISSUED},
        {S.SUPPLIER_REJECTED},
        _e_supplier_reject,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        summary="the supplier refuses the PO",
    ),
    _rule(
        ProposeChange,
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT},
        {S.CHANGE_PROPOSED},
        _e_propose,
        roles=frozenset({Role.SUPPLIER, Role.BUYER}),
        supplier_may=True,
        guards=(_g_proposal,),
        summary="the supplier proposes other quantities, prices or dates",
    ),
    _rule(
        AcceptChange,
        {S.CHANGE_PROPOSED},
        {S.ACKNOWLEDGED, S.IN_FULFILMENT, S.PENDING_APPROVAL, S.APPROVED},
        _e_accept,
        roles=frozenset({Role.BUYER}),
        guards=(_g_pending_change,),
        complete=_c_accept,
        summary="a new revision; back through approval if the value rises beyond the threshold",
    ),
    _rule(
        DeclineChange,
        {S.CHANGE_PROPOSED},
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT},
        _e_decline,
        roles=frozenset({Role.BUYER}),
        guards=(_g_pending_change,),
        summary="the PO stays as it was",
    ),
    _rule(
        ReviseOrder,
        {S.ISSUED, S.ACKNOWLEDGED, S.IN_FULFILMENT, S.SUPPLIER_REJECTED},
        {S.ISSUED, S.IN_FULFILMENT, S.PENDING_APPROVAL, S.APPROVED},
        _e_revise,
        roles=frozenset({Role.BUYER}),
        guards=(_g_revise,),
        complete=_c_revise,
        summary="a buyer's change order: a new revision, re-approved if it raises the value",
        pairs=_REVISIONS,
    ),
    _rule(
        RecordDispatch,
        ACTIVE,
        {S.IN_FULFILMENT},
        _e_dispatch,
        roles=frozenset({Role.SUPPLIER, Role.BUYER, Role.RECEIVER}),
        supplier_may=True,
        guards=(_g_dispatch,),
        summary="carrier, tracking reference and expected arrival",
        pairs=frozenset((s, S.IN_FULFILMENT) for s in ACTIVE),
    ),
    _rule(
        ReceiveGoods,
        ACTIVE,
        {S.IN_FULFILMENT, S.CLOSED},
        _e_receive,
        roles=frozenset({Role.RECEIVER}),
        guards=(_g_receive,),
        complete=_c_receive,
        settles=True,
        summary="partial or full; over-receipt beyond the allowance needs the "
        "bypass role and is recorded",
        pairs=_FULFILMENT,
    ),
    _rule(
        RecordInspection,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_inspect,
        roles=frozenset({Role.INSPECTOR, Role.RECEIVER}),
        guards=(_g_inspect,),
        settles=True,
        summary="accepted and rejected quantities of received goods",
    ),
    _rule(
        ReturnGoods,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_return,
        roles=frozenset({Role.RECEIVER}),
        guards=(_g_return,),
        settles=True,
        summary="goods sent back to the supplier",
    ),
    _rule(
        RecordInvoice,
        ACTIVE,
        {S.IN_FULFILMENT, S.CLOSED},
        _e_invoice,
        roles=frozenset({Role.AP_CLERK}),
        guards=(_g_invoice,),
        settles=True,
        summary="a supplier invoice (matching is potrack.matching's job)",
        pairs=_FULFILMENT,
    ),
    _rule(
        RecordCreditMemo,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_credit,
        roles=frozenset({Role.AP_CLERK}),
        guards=(_g_credit,),
        settles=True,
        summary="a credit memo; never more than was invoiced",
    ),
    _rule(
        RecordMatch,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_match,
        roles=frozenset({Role.AP_CLERK, Role.SYSTEM}),
        guards=(_g_match,),
        complete=_c_match,
        settles=True,
        summary="match one invoice with the engine and record the outcome (the library computes it)",
    ),
    _rule(
        RecordPayment,
        {S.IN_FULFILMENT},
        {S.IN_FULFILMENT, S.CLOSED},
        _e_pay,
        roles=frozenset({Role.TREASURER}),
        guards=(_g_pay,),
        settles=True,
        summary="partial or full; only what matching made payable, net of credit memos",
    ),
    _rule(
        PlaceOnHold,
        _HOLDABLE,
        {S.ON_HOLD},
        _e_hold,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="everything but comments is refused until released",
    ),
    _rule(
        ReleaseHold,
        {S.ON_HOLD},
        _HOLDABLE,
        _e_release,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="resume where it was",
    ),
    _rule(
        ShortClose,
        ACTIVE,
        {S.CLOSED},
        _e_short_close,
        roles=frozenset({Role.BUYER}),
        guards=(_g_short_close,),
        summary="close while something is still open, with a reason; refused while a matched "
        "invoice is unpaid",
    ),
    _rule(
        Cancel,
        {
            S.DRAFT,
            S.PENDING_APPROVAL,
            S.APPROVED,
            S.ISSUED,
            S.ACKNOWLEDGED,
            S.SUPPLIER_REJECTED,
            S.CHANGE_PROPOSED,
        },
        {S.CANCELLED},
        _e_cancel,
        roles=frozenset({Role.BUYER}),
        guards=(_g_cancel,),
        summary="only while nothing is received or invoiced",
    ),
    _rule(
        Reopen,
        {S.CLOSED},
        {S.IN_FULFILMENT},
        _e_reopen,
        roles=frozenset({Role.BUYER, Role.ADMIN}),
        summary="reopen a closed PO (a late credit memo, a correction)",
    ),
    _rule(
        AddComment,
        OPEN_FOR_TALK,
        (),
        _e_comment,
        roles=_INTERNAL,
        supplier_may=True,
        complete=_c_side,
        summary="two-way communication with the supplier",
        stays=True,
    ),
    _rule(
        FlagIssue,
        OPEN_FOR_TALK,
        (),
        _e_flag,
        roles=_INTERNAL,
        supplier_may=True,
        guards=(_g_new_issue,),
        complete=_c_side,
        summary="raise a problem on the PO",
        stays=True,
    ),
    _rule(
        ResolveIssue,
        OPEN_FOR_TALK,
        (),
        _e_resolve,
        roles=_INTERNAL,
        supplier_may=True,
        guards=(_g_issue_exists,),
        summary="close a flagged problem",
        stays=True,
    ),
)
"""The purchase-order lifecycle, one row per event."""

PO_TERMINAL = frozenset({S.CANCELLED, S.REJECTED})
PO_FINAL = frozenset({S.CLOSED})
"""Final states accept nothing but their reopen events."""
PO_REOPEN = frozenset({Reopen})
