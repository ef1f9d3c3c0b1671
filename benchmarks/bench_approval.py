"""Approval target: routing 10,000 documents against a 500-rule policy at ≥ 5,000 routes/s."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from benchmarks._harness import Benchmark, Result, rate
from potrack import approval as ap
from potrack.memory import InMemoryDirectory
from potrack.money import money
from potrack.records import Actor, ActorId, PurchaseOrder, PurchaseOrderLine, Supplier

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
BANDS = [
    (Decimal(0), Decimal(1_000)),
    (Decimal(1_000), Decimal(10_000)),
    (Decimal(10_000), Decimal(50_000)),
    (Decimal(50_000), None),
]


def world(rules: int = 500, seed: int = 7) -> tuple[ap.Router, list[PurchaseOrder]]:
    """A 500-rule policy shaped like a real one, its people and 10,000 purchase orders.

    * 20 departments × 4 amount bands (80 rules): the manager; a department head from 1,000;
      finance from 10,000; the CFO from 50,000;
    * 30 categories × 4 bands (120 rules): category specialists (IT, legal, facilities...);
    * 298 cost-centre rules: the cost-centre owner signs above 2,500;
    * non-preferred and blocked suppliers (2 rules): procurement reviews.
    """
    rnd = random.Random(seed)
    departments = [f"D{i:02d}" for i in range(20)]
    categories = [f"CAT{i:02d}" for i in range(30)]
    centres = [f"CC{i:03d}" for i in range(rules - 202)]
    people = [
        Actor(
            id=ActorId(f"emp{i}"),
            name=f"Employee {i}",
            roles=frozenset({"requester"}),
            department=departments[i % 20],
            manager=ActorId(f"mgr{i % 20}"),
        )
        for i in range(400)
    ]
    people += [
        Actor(
            id=ActorId(f"mgr{i}"),
            name=f"Manager {i}",
            roles=frozenset({"approver"}),
            department=departments[i],
        )
        for i in range(20)
    ]
    roles = [
        "head",
        "finance",
        "cfo",
        "procurement",
        *[f"spec{i}" for i in range(30)],
        *[f"owner{c}" for c in centres],
    ]
    people += [
        Actor(id=ActorId(f"{r}-{k}"), name=f"{r} {k}", roles=frozenset({r, "approver"}))
        for r in roles
        for k in range(2)
    ]
    rules_out: list[ap.Rule] = []
    ladder = [None, "head", "finance", "cfo"]
    for dept in departments:
        for band, (lo, hi) in enumerate(BANDS):
            steps = [ap.StepSpec(level=1, approver=ap.Approver.manager(), due_hours=24)]
            steps += [
                ap.StepSpec(level=2 + k, approver=ap.Approver.role(role))
                for k, role in enumerate(ladder[1 : band + 1])
            ]
            rules_out.append(
                ap.Rule(
                    id=f"{dept}-b{band}",
                    departments=frozenset({dept}),
                    amount=ap.AmountRange(minimum=lo, maximum=hi),
                    steps=tuple(steps),
                )
            )
    for i, cat in enumerate(categories):
        for band, (lo, hi) in enumerate(BANDS):
            if band == 0:
                continue
            rules_out.append(
                ap.Rule(
                    id=f"{cat}-b{band}",
                    categories=frozenset({cat}),
                    amount=ap.AmountRange(minimum=lo, maximum=hi),
                    steps=(
                        ap.StepSpec(
                            level=2,
                            approver=ap.Approver.role(f"spec{i}"),
                            mode=ap.StepMode.PARALLEL,
                        ),
                    ),
                )
            )
        rules_out.append(
            ap.Rule(
                id=f"{cat}-any",
                categories=frozenset({cat}),
                amount=ap.AmountRange(minimum=Decimal(250_000)),
                steps=(
                    ap.StepSpec(level=5, approver=ap.Approver.role("cfo"), quorum=ap.Quorum.all()),
                ),
            )
        )
    for c in centres:
        rules_out.append(
            ap.Rule(
                id=f"{c}-owner",
                cost_centres=frozenset({c}),
                amount=ap.AmountRange(minimum=Decimal(2_500)),
                steps=(
                    ap.StepSpec(
                        level=2, approver=ap.Approver.role(f"owner{c}"), mode=ap.StepMode.PARALLEL
                    ),
                ),
            )
        )
    rules_out.append(
        ap.Rule(
            id="non-preferred",
            suppliers=frozenset({ap.SupplierStatus.NOT_PREFERRED}),
            steps=(
                ap.StepSpec(
                    level=2, approver=ap.Approver.role("procurement"), mode=ap.StepMode.PARALLEL
                ),
            ),
        )
    )
    rules_out.append(
        ap.Rule(
            id="blocked",
            suppliers=frozenset({ap.SupplierStatus.BLOCKED}),
            steps=(ap.StepSpec(level=4, approver=ap.Approver.role("cfo")),),
        )
    )
    policy = ap.Policy(name="benchmark-500", base_currency="USD", rules=tuple(rules_out[:rules]))
    suppliers = [
        Supplier(id=f"S{i:03d}", name=f"Supplier {i}", code=f"S{i:03d}", preferred=i % 3 != 0)
        for i in range(100)
    ]
    router = ap.Router(policy, InMemoryDirectory(people), suppliers)
    documents = []
    for n in range(10_000):
        requester = rnd.randrange(400)
        lines = tuple(
            PurchaseOrderLine(
                line_no=k,
                description="item",
                category=rnd.choice(categories),
                quantity=Decimal(rnd.randint(1, 50)),
                uom="EA",
                unit_price=money(str(rnd.choice([5, 20, 80, 300, 1200])), "USD"),
                cost_centre=rnd.choice(centres),
            )
            for k in range(1, rnd.randint(1, 5) + 1)
        )
        documents.append(
            PurchaseOrder(
                id=f"PO{n}",
                supplier_id=f"S{rnd.randrange(100):03d}",
                buyer="buyer",
                requester=ActorId(f"emp{requester}"),
                department=departments[requester % 20],
                currency="USD",
                lines=lines,
                created_at=AT,
            )
        )
    return router, documents


def routing(smoke: bool) -> Result:
    router, documents = world()
    if smoke:
        documents = documents[:2_000]
    steps = sum(len(router.route(d, AT).steps) for d in documents)

    def work() -> int:
        for doc in documents:
            router.route(doc, AT)
        return len(documents)

    samples = rate(work, 3 if smoke else 5)
    return Result(
        "approval: route documents, 500-rule policy",
        "≥ 5,000/s",
        "routes/s",
        samples,
        goal=5_000,
        notes={
            "documents": len(documents),
            "rules": len(router.policy.rules),
            "steps per route": round(steps / len(documents), 2),
        },
    )


BENCHMARKS = [Benchmark("approval: route documents, 500-rule policy", routing)]
