"""potrack in one screen: exact money, immutable records, JSON, storage with optimistic locking.

Run: python examples/quickstart.py
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs

from potrack import ConflictError, InMemoryStore, InvalidNumberError, Rounding, dumps, loads, money
from potrack.money import format_money, round_money
from potrack.records import PurchaseOrder, PurchaseOrderLine


def main() -> None:
    line = PurchaseOrderLine(
        line_no=1,
        description="Chain ring",
        category="bike-parts",
        quantity=Decimal("3"),
        uom="EA",
        unit_price=money("45.5805", "USD"),
    )
    po = PurchaseOrder(
        id="PO-1",
        supplier_id="S-ACME",
        buyer="ana",
        currency="USD",
        lines=(line,),
        created_at=datetime(2026, 11, 24, 9, tzinfo=UTC),
    )
    print(
        f"PO {po.id}: {len(po.lines)} line, exact value {po.amount.amount} USD, "
        f"booked {format_money(round_money(po.amount, Rounding.HALF_UP), 'en_US')} "
        f"(de_DE: {format_money(po.amount, 'de_DE')})"
    )

    try:
        PurchaseOrderLine(
            line_no=2,
            description="Bolt",
            category="hardware",
            quantity=2.5,
            uom="EA",
            unit_price=money("0.10", "USD"),
        )
    except InvalidNumberError as err:
        print(f"refused: {err}")

    text = dumps(po)
    assert loads(text, PurchaseOrder) == po
    print(f"JSON round trip: {len(text)} characters, identical record back")

    store = InMemoryStore()
    with store.unit_of_work() as uow:
        uow.purchase_orders.save(po)
    with store.unit_of_work() as uow:
        uow.purchase_orders.save(attrs.evolve(po, version=2, ship_to="Dock 4"))
    try:
        with store.unit_of_work() as uow:
            uow.purchase_orders.save(attrs.evolve(po, version=2, ship_to="Dock 9"))
    except ConflictError as err:
        print(f"refused: {err}")


if __name__ == "__main__":
    main()
