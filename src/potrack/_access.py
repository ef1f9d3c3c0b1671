"""The default access policy: who may act on which document (see :class:`DepartmentAccess`)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from potrack.events import Event, RecordDecision
from potrack.records import Actor, PurchaseOrder, Requisition, Role

__all__ = ["DepartmentAccess"]

_SHARED_SERVICES = frozenset(
    {
        Role.ADMIN,
        Role.SYSTEM,
        Role.RECEIVER,
        Role.INSPECTOR,
        Role.AP_CLERK,
        Role.TREASURER,
    }
)


@attrs.frozen
class DepartmentAccess:
    """Buyers act on their own department's documents; shared services act on every department's.

    * A supplier's user acts only on their own supplier's POs (the lifecycle checks that too).
    * An approval decision is governed by the route alone: an approver acts only on the steps
      assigned to them (or delegated to them), whatever their department.
    * Anyone else acts on a document of a department only if they belong to it — unless the role
      that lets them send this command is one of ``any_department`` (by default admin, system,
      receiving, inspection, accounts payable and treasury: the shared services that work for
      every department), or their department buys for the document's (``buys_for``: a central
      purchasing department, ``{"PUR": frozenset({"*"})}`` for every department).

    >>> from potrack.testing.scenario import Scenario
    >>> from potrack.events import Cancel
    >>> s = Scenario()
    >>> po = s.draft_po()  # an OPS order
    >>> it_buyer = attrs.evolve(s.buyer2, department="IT")
    >>> DepartmentAccess().problems(it_buyer, po, Cancel(reason="x"), frozenset({"buyer"}))
    ['buyer-2 (department IT) may not cancel on PO-1, which belongs to department OPS; only its own department, or a role that serves every department (admin, ap_clerk, inspector, receiver, system, treasurer), may']
    """

    any_department: frozenset[str] = _SHARED_SERVICES
    buys_for: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    def problems(
        self,
        actor: Actor,
        target: PurchaseOrder | Requisition,
        event: Event,
        allowed_roles: frozenset[str],
    ) -> list[str]:
        """Reasons ``actor`` may not send ``event`` on ``target`` (empty: allowed)."""
        if actor.is_supplier_user:
            supplier = getattr(target, "supplier_id", None)
            if supplier != actor.supplier_id:
                return [
                    f"{actor.id} works for supplier {actor.supplier_id}, but "
                    f"{_label(target)} is with {supplier}"
                ]
            return []
        if isinstance(event, RecordDecision):
            return []
        department = target.department
        if department is None or actor.department == department:
            return []
        granting = actor.roles & allowed_roles if allowed_roles else actor.roles
        if granting & self.any_department:
            return []
        served = self.buys_for.get(actor.department or "", frozenset())
        if department in served or "*" in served:
            return []
        theirs = actor.department or "none"
        shared = ", ".join(sorted(self.any_department))
        return [
            f"{actor.id} (department {theirs}) may not {event.verb} on {_label(target)}, which "
            f"belongs to department {department}; only its own department, or a role that serves "
            f"every department ({shared}), may"
        ]


def _label(doc: PurchaseOrder | Requisition) -> str:
    return str(getattr(doc, "number", None) or doc.id)
