"""Small, valid sample records for tests, examples and the conformance kit.

Every function returns a fresh record; keyword arguments override the defaults.

>>> po = sample_po()
>>> po.id, po.state.value, po.amount
('PO-1', 'draft', Money('1050.00', 'USD'))
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from potrack.events import AddComment, TransitionRecord
from potrack.money import money
from potrack.records import (
    Actor,
    ActorId,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceLine,
    ItemId,
    Payment,
    PaymentAllocation,
    PaymentId,
    PurchaseOrder,
    PurchaseOrderId,
    PurchaseOrderLine,
    ReceiptId,
    ReceiptLine,
    Requisition,
    RequisitionId,
    RequisitionLine,
    ReturnId,
    ReturnLine,
    Role,
    Supplier,
    SupplierId,
)

__all__ = [
    "T0",
    "sample_actor",
    "sample_invoice",
    "sample_payment",
    "sample_po",
    "sample_po_line",
    "sample_receipt",
    "sample_requisition",
    "sample_return",
    "sample_supplier",
    "sample_transition",
]

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""A fixed Monday morning, so samples are reproducible."""


def sample_supplier(**over: Any) -> Supplier:
    """A preferred supplier, ``S-ACME``."""
    fields: dict[str, Any] = {
        "id": SupplierId("S-ACME"),
        "name": "Acme Tool Works",
        "code": "ACME",
        "preferred": True,
        "currency": "USD",
    }
    fields.update(over)
    return Supplier(**fields)


def sample_actor(actor_id: str = "buyer-1", *roles: str, **over: Any) -> Actor:
    """An actor; roles default to ``buyer``."""
    fields: dict[str, Any] = {
        "id": ActorId(actor_id),
        "name": actor_id.replace("-", " ").title(),
        "roles": frozenset(roles or (Role.BUYER,)),
        "department": "OPS",
    }
    fields.update(over)
    return Actor(**fields)


def sample_po_line(line_no: int = 1, **over: Any) -> PurchaseOrderLine:
    """100 EA of a part at 10.00 USD (line 1) or 10 EA at 5.00 (other lines)."""
    first = line_no == 1
    fields: dict[str, Any] = {
        "line_no": line_no,
        "description": "Hex bolt M8" if first else f"Part {line_no}",
        "category": "hardware",
        "quantity": Decimal(100 if first else 10),
        "uom": "EA",
        "unit_price": money("10.00" if first else "5.00", "USD"),
        "item": f"ITEM-{line_no}",
        "requested_date": date(2026, 1, 20),
    }
    fields.update(over)
    return PurchaseOrderLine(**fields)


def sample_po(po_id: str = "PO-1", *, lines: int = 2, **over: Any) -> PurchaseOrder:
    """A draft PO from ``S-ACME`` with ``lines`` lines (1,050.00 USD for two lines)."""
    fields: dict[str, Any] = {
        "id": PurchaseOrderId(po_id),
        "supplier_id": SupplierId("S-ACME"),
        "buyer": ActorId("buyer-1"),
        "requester": ActorId("req-1"),
        "department": "OPS",
        "currency": "USD",
        "lines": tuple(sample_po_line(n) for n in range(1, lines + 1)),
        "created_at": T0,
    }
    fields.update(over)
    return PurchaseOrder(**fields)


def sample_requisition(req_id: str = "REQ-1", **over: Any) -> Requisition:
    """A draft requisition for 100 bolts at an estimated 10.00 USD."""
    fields: dict[str, Any] = {
        "id": RequisitionId(req_id),
        "requester": ActorId("req-1"),
        "department": "OPS",
        "currency": "USD",
        "lines": (
            RequisitionLine(
                line_no=1,
                description="Hex bolt M8",
                category="hardware",
                quantity=Decimal(100),
                uom="EA",
                estimated_unit_price=money("10.00", "USD"),
                suggested_supplier=SupplierId("S-ACME"),
                item=ItemId("ITEM-1"),
            ),
        ),
        "created_at": T0,
    }
    fields.update(over)
    return Requisition(**fields)


def sample_receipt(
    receipt_id: str = "GR-1", po_id: str = "PO-1", quantity: str = "50", **over: Any
) -> GoodsReceipt:
    """A receipt of ``quantity`` on line 1."""
    fields: dict[str, Any] = {
        "id": ReceiptId(receipt_id),
        "po_id": PurchaseOrderId(po_id),
        "received_at": T0 + timedelta(days=10),
        "received_by": ActorId("recv-1"),
        "lines": (ReceiptLine(line_no=1, received=Decimal(quantity)),),
    }
    fields.update(over)
    return GoodsReceipt(**fields)


def sample_return(return_id: str = "RT-1", po_id: str = "PO-1", **over: Any) -> GoodsReturn:
    """A return of 5 units of line 1."""
    fields: dict[str, Any] = {
        "id": ReturnId(return_id),
        "po_id": PurchaseOrderId(po_id),
        "returned_at": T0 + timedelta(days=12),
        "returned_by": ActorId("recv-1"),
        "lines": (ReturnLine(line_no=1, quantity=Decimal(5), reason="damaged"),),
    }
    fields.update(over)
    return GoodsReturn(**fields)


def sample_invoice(
    invoice_id: str = "INV-1",
    po_id: str | None = "PO-1",
    quantity: str = "50",
    price: str = "10.00",
    **over: Any,
) -> Invoice:
    """An invoice of ``quantity`` × ``price`` USD on PO line 1, total = net (no tax)."""
    qty = Decimal(quantity)
    unit = money(price, "USD")
    fields: dict[str, Any] = {
        "id": InvoiceId(invoice_id),
        "supplier_id": SupplierId("S-ACME"),
        "number": f"A-{invoice_id}",
        "po_id": None if po_id is None else PurchaseOrderId(po_id),
        "invoice_date": date(2026, 1, 16),
        "currency": "USD",
        "lines": (InvoiceLine(line_no=1, po_line_no=1, quantity=qty, unit_price=unit),),
        "total": money(qty * unit.amount, "USD"),
    }
    fields.update(over)
    return Invoice(**fields)


def sample_payment(
    payment_id: str = "PAY-1", invoice_id: str = "INV-1", amount: str = "500.00", **over: Any
) -> Payment:
    """A payment of ``amount`` USD settling one invoice."""
    fields: dict[str, Any] = {
        "id": PaymentId(payment_id),
        "supplier_id": SupplierId("S-ACME"),
        "paid_on": date(2026, 2, 10),
        "amount": money(amount, "USD"),
        "allocations": (
            PaymentAllocation(invoice_id=InvoiceId(invoice_id), amount=money(amount, "USD")),
        ),
    }
    fields.update(over)
    return Payment(**fields)


def sample_transition(
    aggregate_id: str = "PO-1", version: int = 1, **over: Any
) -> TransitionRecord:
    """A comment record at ``version`` of a purchase order's stream."""
    fields: dict[str, Any] = {
        "aggregate": "purchase_order",
        "aggregate_id": aggregate_id,
        "version": version,
        "event": AddComment(text=f"note {version}", key=f"{aggregate_id}-k{version}"),
        "actor": ActorId("buyer-1"),
        "at": T0 + timedelta(minutes=version),
        "from_state": "draft",
        "to_state": "draft",
        "label": aggregate_id,
    }
    fields.update(over)
    return TransitionRecord(**fields)


def bump(po: PurchaseOrder, **changes: Any) -> PurchaseOrder:
    """``po`` with its version increased by one (and any other changes)."""
    return attrs.evolve(po, version=po.version + 1, **changes)
