"""The domain records of purchase-to-pay: immutable, validated at construction, exact.

Every record is a frozen attrs class; change one with :func:`attrs.evolve`.  Collections inside
records are tuples or frozensets.  Money is py-moneyed :class:`~moneyed.Money` with a Decimal amount,
quantities are :class:`~decimal.Decimal`; a float, a bool, NaN or infinity where money or a quantity
is expected raises :class:`~potrack.exceptions.InvalidNumberError` naming the field and the value.

Identifiers are distinct types (``SupplierId``, ``PurchaseOrderId``...) so a type checker catches a
supplier id passed where a PO id is expected; at run time they are plain strings.

>>> from decimal import Decimal
>>> from potrack.money import money
>>> line = PurchaseOrderLine(line_no=1, description="Chain ring", category="bike-parts",
...                          quantity=Decimal("3"), uom="EA", unit_price=money("45.5805", "USD"))
>>> line.amount
Money('136.7415', 'USD')
>>> PurchaseOrderLine(line_no=1, description="Chain ring", category="bike-parts",
...                   quantity=2.5, uom="EA", unit_price=money("45.5805", "USD"))
Traceback (most recent call last):
...
potrack.exceptions.InvalidNumberError: invalid PurchaseOrderLine: quantity: expected a Decimal, an int or a decimal string, got 2.5 (float)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NewType

import attrs
from moneyed import Money

from potrack import _fields as f
from potrack.exceptions import CurrencyMismatchError
from potrack.money import currency_precision, extended_amount, sum_money, zero

__all__ = [
    "NET_30",
    "Acknowledgement",
    "Actor",
    "ActorId",
    "ApprovalDecision",
    "ApprovalState",
    "ApproverKind",
    "Budget",
    "BudgetId",
    "ChangeProposal",
    "ChangeProposalId",
    "Charge",
    "Closure",
    "ClosureKind",
    "Comment",
    "Conversion",
    "CostCentreId",
    "Decision",
    "Delegation",
    "DepartmentId",
    "DispatchId",
    "DispatchLine",
    "DispatchNotice",
    "FieldChange",
    "FlaggedIssue",
    "GoodsReceipt",
    "GoodsReturn",
    "Hold",
    "Invoice",
    "InvoiceId",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceProgress",
    "InvoiceStatus",
    "ItemId",
    "LineChange",
    "LineProgress",
    "LineType",
    "MatchLevel",
    "POState",
    "Payment",
    "PaymentAllocation",
    "PaymentId",
    "PaymentTerms",
    "PurchaseOrder",
    "PurchaseOrderId",
    "PurchaseOrderLine",
    "PurchaseOrderNumber",
    "Quorum",
    "Reassignment",
    "ReceiptId",
    "ReceiptLine",
    "Requisition",
    "RequisitionId",
    "RequisitionLine",
    "RequisitionState",
    "ReturnId",
    "ReturnLine",
    "Revision",
    "Role",
    "Route",
    "RouteStep",
    "StepMode",
    "Supplier",
    "SupplierId",
]

# -- identifiers -------------------------------------------------------------------------------

SupplierId = NewType("SupplierId", str)
ActorId = NewType("ActorId", str)
DepartmentId = NewType("DepartmentId", str)
CostCentreId = NewType("CostCentreId", str)
BudgetId = NewType("BudgetId", str)
ItemId = NewType("ItemId", str)
RequisitionId = NewType("RequisitionId", str)
PurchaseOrderId = NewType("PurchaseOrderId", str)
PurchaseOrderNumber = NewType("PurchaseOrderNumber", str)
ReceiptId = NewType("ReceiptId", str)
ReturnId = NewType("ReturnId", str)
DispatchId = NewType("DispatchId", str)
InvoiceId = NewType("InvoiceId", str)
PaymentId = NewType("PaymentId", str)
ChangeProposalId = NewType("ChangeProposalId", str)

_ONE = Decimal(1)
_ZERO = Decimal(0)


def _key_pairs(value: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple((str(key), int(version)) for key, version in value)


# -- enumerations -------------------------------------------------------------------------------


class Role(enum.StrEnum):
    """The roles potrack's rules refer to.  Hosts may use any other strings for their own roles."""

    REQUESTER = "requester"
    BUYER = "buyer"
    APPROVER = "approver"
    RECEIVER = "receiver"
    INSPECTOR = "inspector"
    AP_CLERK = "ap_clerk"
    TREASURER = "treasurer"
    SUPPLIER = "supplier"
    ADMIN = "admin"
    OVER_RECEIPT_BYPASS = "over_receipt_bypass"
    """May receive beyond the over-receipt allowance; the override is recorded."""
    MATCH_OVERRIDE = "match_override"
    """May accept an out-of-tolerance invoice line with a reason; the override is recorded."""
    SYSTEM = "system"
    """The engine itself (automatic closing, matching jobs)."""


class MatchLevel(enum.StrEnum):
    """How many documents an invoice line is matched against.

    * ``2-way``: invoice vs PO (billed quantity ≤ ordered, price ≤ PO price);
    * ``3-way``: adds billed quantity ≤ received quantity;
    * ``4-way``: adds billed quantity ≤ accepted quantity (after inspection).
    """

    TWO_WAY = "2-way"
    THREE_WAY = "3-way"
    FOUR_WAY = "4-way"


class LineType(enum.StrEnum):
    """What a line buys.  Service lines never wait for a goods receipt."""

    GOODS = "goods"
    SERVICE = "service"
    CONSIGNMENT = "consignment"


class RequisitionState(enum.StrEnum):
    """Where a requisition stands (see :mod:`potrack.lifecycle` for the transitions)."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    CONVERTED = "converted"
    CANCELLED = "cancelled"


class POState(enum.StrEnum):
    """Lifecycle state of a purchase order (progress — received, billed... — is derived apart)."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"
    ACKNOWLEDGED = "acknowledged"
    CHANGE_PROPOSED = "change_proposed"
    SUPPLIER_REJECTED = "supplier_rejected"
    IN_FULFILMENT = "in_fulfilment"
    ON_HOLD = "on_hold"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class ClosureKind(enum.StrEnum):
    """How a PO was closed: everything done, or short-closed by a buyer while something was open."""

    COMPLETE = "complete"
    SHORT = "short"


class InvoiceKind(enum.StrEnum):
    """An invoice adds to what is billed; a credit memo takes away.  A subsequent debit or
    credit corrects the price of what was invoiced: it adds to (or takes away from) the amount
    billed, not the quantity."""

    INVOICE = "invoice"
    CREDIT_MEMO = "credit_memo"
    SUBSEQUENT_DEBIT = "subsequent_debit"
    SUBSEQUENT_CREDIT = "subsequent_credit"


class InvoiceStatus(enum.StrEnum):
    """Match outcome of an invoice as the PO knows it."""

    PENDING = "pending"
    """Recorded, not yet matched."""
    MATCHED = "matched"
    MATCHED_WITHIN_TOLERANCE = "matched_within_tolerance"
    HELD = "held"
    AWAITING_RECEIPT = "awaiting_receipt"


class Decision(enum.StrEnum):
    """What an approver decided on a step."""

    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"
    """Return for changes: the document goes back to its author."""
    COMMENT = "comment"


class ApproverKind(enum.StrEnum):
    """How a route step names its approvers."""

    ROLE = "role"
    USER = "user"
    MANAGER = "manager"
    """The requester's manager (resolved through the host's Directory)."""
    SECOND_MANAGER = "second_manager"
    """The requester's manager's manager."""


class StepMode(enum.StrEnum):
    """How the steps of one approval level run."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"


# -- parties --------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PaymentTerms:
    """Payment terms: net days, with an optional early-payment discount.

    ``2/10 net 30``: 2 % off when paid within 10 days, otherwise due in 30.

    >>> terms = PaymentTerms(code="2/10N30", net_days=30, discount_days=10,
    ...                      discount_percent=Decimal("2"))
    >>> terms.due_date(date(2026, 11, 1))
    datetime.date(2026, 12, 1)
    >>> terms.discount_deadline(date(2026, 11, 1))
    datetime.date(2026, 11, 11)
    """

    code: str = f.text()
    net_days: int = f.integer(minimum=0)
    discount_days: int | None = f.optional_int(minimum=0)
    discount_percent: Decimal | None = f.optional_decimal(non_negative=True)

    def __attrs_post_init__(self) -> None:
        f.collect(
            "PaymentTerms",
            [
                (
                    (self.discount_days is None) == (self.discount_percent is None),
                    "discount_days",
                    "discount_days and discount_percent go together (both set or both None)",
                ),
                (
                    self.discount_days is None
                    or (
                        type(self.discount_days) is int and 0 <= self.discount_days <= self.net_days
                    ),
                    "discount_days",
                    f"must be an int between 0 and net_days ({self.net_days}), "
                    f"got {self.discount_days!r}",
                ),
            ],
        )

    def due_date(self, invoice_date: date) -> date:
        """The day the invoice is due (invoice date + net days)."""
        return invoice_date + timedelta(days=self.net_days)

    def discount_deadline(self, invoice_date: date) -> date | None:
        """The last day the discount may be taken, if the terms have one."""
        if self.discount_days is None:
            return None
        return invoice_date + timedelta(days=self.discount_days)


NET_30 = PaymentTerms(code="NET30", net_days=30)


def _initials(name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", name)
    return "".join(w[0] for w in words).upper()[:4] or "X"


@attrs.frozen(kw_only=True)
class Supplier:
    """A supplier (vendor).

    ``code`` is a short stable code used in document numbers; ``initials`` default to the first
    letters of the name's words (``"Acme Tool Works"`` → ``ATW``).  A ``blocked`` supplier gets no
    new orders; a ``preferred`` one is where routine spend should go.
    """

    id: SupplierId = f.text()
    name: str = f.text()
    code: str = f.text()
    preferred: bool = f.flag()
    blocked: bool = f.flag()
    blocked_reason: str | None = f.text(optional=True)
    payment_terms: PaymentTerms = f.record(PaymentTerms, default=NET_30)
    currency: str | None = f.currency(optional=True)
    country: str | None = f.text(optional=True)
    tax_id: str | None = f.text(optional=True)
    email: str | None = f.text(optional=True)
    match_level: MatchLevel | None = f.enum_field(MatchLevel, optional=True)
    """Default matching level for this supplier's lines (falls back to the policy's)."""
    initials_override: str | None = f.text(optional=True)

    @property
    def initials(self) -> str:
        """Initials for document numbers.

        >>> Supplier(id="S1", name="Acme Tool Works", code="ACME").initials
        'ATW'
        """
        return self.initials_override or _initials(self.name)


@attrs.frozen(kw_only=True)
class Actor:
    """A person (or system) acting on documents.

    ``roles`` are what the rules check; ``supplier_id`` marks a supplier's user, who may act only on
    that supplier's orders.  ``manager`` is used by approval routes relative to a requester.
    """

    id: ActorId = f.text()
    name: str = f.text()
    roles: frozenset[str] = f.frozenset_of_str()
    department: DepartmentId | None = f.text(optional=True)
    manager: ActorId | None = f.text(optional=True)
    supplier_id: SupplierId | None = f.text(optional=True)
    email: str | None = f.text(optional=True)

    def has_role(self, role: str) -> bool:
        """Whether the actor holds ``role``."""
        return role in self.roles

    @property
    def is_supplier_user(self) -> bool:
        """Whether the actor works for a supplier."""
        return self.supplier_id is not None


@attrs.frozen(kw_only=True)
class Delegation:
    """``delegator`` lets ``delegate`` decide in their place from ``start`` to ``end`` (inclusive).

    Delegations come from the host's Directory; a decision taken under one records it.
    """

    delegator: ActorId = f.text()
    delegate: ActorId = f.text()
    start: datetime = f.timestamp()
    end: datetime = f.timestamp()
    reason: str | None = f.text(optional=True)

    def covers(self, at: datetime) -> bool:
        """Whether the delegation is in force at ``at``."""
        return self.start <= at <= self.end


@attrs.frozen(kw_only=True)
class Budget:
    """A budget envelope, e.g. a department's purchasing budget for a year."""

    id: BudgetId = f.text()
    name: str = f.text()
    amount: Money = f.money()
    department: DepartmentId | None = f.text(optional=True)
    start: date | None = f.day(optional=True)
    end: date | None = f.day(optional=True)


# -- requisitions ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RequisitionLine:
    """One thing an employee asks to buy.  The price is an estimate."""

    line_no: int = f.integer(minimum=1)
    description: str = f.text()
    category: str = f.text()
    quantity: Decimal = f.decimal(positive=True)
    uom: str = f.text()
    estimated_unit_price: Money = f.money()
    price_unit: Decimal = f.decimal(positive=True, default=_ONE)
    item: ItemId | None = f.text(optional=True)
    suggested_supplier: SupplierId | None = f.text(optional=True)
    needed_by: date | None = f.day(optional=True)
    cost_centre: CostCentreId | None = f.text(optional=True)
    budget: BudgetId | None = f.text(optional=True)
    line_type: LineType = f.enum_field(LineType, default=LineType.GOODS)

    @property
    def estimated_amount(self) -> Money:
        """Quantity × estimated unit price ÷ price unit, exact."""
        return extended_amount(self.quantity, self.estimated_unit_price, self.price_unit)


@attrs.frozen(kw_only=True)
class Conversion:
    """Requisition line ``line_no`` became line ``po_line_no`` of PO ``po_id``."""

    line_no: int = f.integer(minimum=1)
    po_id: PurchaseOrderId = f.text()
    po_line_no: int = f.integer(minimum=1)


# -- approval records ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Quorum:
    """How many of a step's approvers must approve: ``any`` (1), ``all``, or N of M.

    >>> Quorum.any().needed(3), Quorum.all().needed(3), Quorum.of(2).needed(3)
    (1, 3, 2)
    """

    count: int | None = f.optional_int(minimum=1, default=1)
    """How many must approve; ``None`` means all of them."""

    @classmethod
    def any(cls) -> Quorum:
        """Any one approver suffices."""
        return cls(count=1)

    @classmethod
    def all(cls) -> Quorum:
        """Every approver must approve."""
        return cls(count=None)

    @classmethod
    def of(cls, n: int) -> Quorum:
        """N approvers must approve."""
        return cls(count=n)

    def needed(self, candidates: int) -> int:
        """Approvals needed given ``candidates`` eligible approvers."""
        if self.count is None:
            return candidates
        return min(self.count, candidates)

    def describe(self) -> str:
        """``any one``, ``all`` or ``2 of``."""
        if self.count is None:
            return "all"
        return "any one" if self.count == 1 else f"{self.count} of"


@attrs.frozen(kw_only=True)
class RouteStep:
    """One step of an approval route, with the rules that put it there (``because``)."""

    step_id: str = f.text()
    level: int = f.integer(minimum=1)
    mode: StepMode = f.enum_field(StepMode, default=StepMode.SEQUENTIAL)
    approver_kind: ApproverKind = f.enum_field(ApproverKind)
    approver_ref: str = f.text()
    """The role, user id, or ``manager`` this step was declared with."""
    candidates: tuple[ActorId, ...] = f.tuple_of_str()
    """Who may decide, resolved when the route was made."""
    quorum: Quorum = f.record(Quorum, default=Quorum())
    due_hours: int | None = f.optional_int()
    due_business_days: int | None = f.optional_int()
    escalate_to: str | None = f.text(optional=True)
    """Role (or ``manager``) to escalate to when the step is overdue."""
    because: tuple[str, ...] = f.tuple_of_str()
    """One sentence per rule that produced this step."""
    rules: tuple[str, ...] = f.tuple_of_str()
    """Ids of the rules that produced this step."""

    def describe(self) -> str:
        """``level 2: any one of role cfo``."""
        who = {
            ApproverKind.ROLE: f"role {self.approver_ref}",
            ApproverKind.USER: f"user {self.approver_ref}",
            ApproverKind.MANAGER: "the requester's manager",
            ApproverKind.SECOND_MANAGER: "the requester's manager's manager",
        }[self.approver_kind]
        return f"level {self.level}: {self.quorum.describe()} {who}"


@attrs.frozen(kw_only=True)
class Route:
    """The approval route of one document: its steps and the policy flags raised on it."""

    steps: tuple[RouteStep, ...] = f.tuple_of(RouteStep)
    flags: tuple[str, ...] = f.tuple_of_str()
    """Policy flags with their reasons, e.g. ``non_preferred_supplier: ACME is not preferred``."""
    policy: str | None = f.text(optional=True)
    """Name/version of the policy that produced it."""
    amount_base: Money | None = f.money(optional=True)
    """The document amount in the policy's base currency, as routed."""
    allow_same_approver: bool = f.flag()
    """Whether one person may fill several steps of this route."""

    def step(self, step_id: str) -> RouteStep | None:
        """The step with ``step_id``, or None."""
        for step in self.steps:
            if step.step_id == step_id:
                return step
        return None


@attrs.frozen(kw_only=True)
class ApprovalDecision:
    """A decision (or a comment) recorded on one route step."""

    step_id: str = f.text()
    actor: ActorId = f.text()
    decision: Decision = f.enum_field(Decision)
    at: datetime = f.timestamp()
    reason: str | None = f.text(optional=True)
    on_behalf_of: ActorId | None = f.text(optional=True)
    """Set when a delegate decided in the named approver's place."""


@attrs.frozen(kw_only=True)
class Reassignment:
    """A step handed from one approver to another by someone allowed to."""

    step_id: str = f.text()
    from_actor: ActorId | None = f.text(optional=True)
    to_actor: ActorId = f.text()
    by: ActorId = f.text()
    at: datetime = f.timestamp()
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class ApprovalState:
    """A route and everything decided on it so far."""

    route: Route = f.record(Route)
    started_at: datetime = f.timestamp()
    decisions: tuple[ApprovalDecision, ...] = f.tuple_of(ApprovalDecision)
    reassignments: tuple[Reassignment, ...] = f.tuple_of(Reassignment)
    requester: ActorId | None = f.text(optional=True)


# -- requisition aggregate ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Requisition:
    """An internal request to buy; becomes one or more purchase orders once approved.

    ``state``, ``version``, ``approval`` and ``conversions`` are kept by :mod:`potrack.lifecycle`.
    """

    id: RequisitionId = f.text()
    requester: ActorId = f.text()
    department: DepartmentId = f.text()
    currency: str = f.currency()
    lines: tuple[RequisitionLine, ...] = f.tuple_of(RequisitionLine, default_empty=False)
    created_at: datetime = f.timestamp()
    cost_centre: CostCentreId | None = f.text(optional=True)
    needed_by: date | None = f.day(optional=True)
    justification: str | None = f.text(optional=True)
    budget: BudgetId | None = f.text(optional=True)
    company: str | None = f.text(optional=True)
    site: str | None = f.text(optional=True)
    state: RequisitionState = f.enum_field(RequisitionState, default=RequisitionState.DRAFT)
    version: int = f.integer(minimum=1, default=1)
    approval: ApprovalState | None = f.record(ApprovalState, optional=True)
    conversions: tuple[Conversion, ...] = f.tuple_of(Conversion)
    applied_keys: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=_key_pairs)

    def __attrs_post_init__(self) -> None:
        _check_lines("Requisition", self.currency, self.lines, "estimated_unit_price")

    @property
    def amount(self) -> Money:
        """Estimated total (exact)."""
        return sum_money((line.estimated_amount for line in self.lines), self.currency)

    def line(self, line_no: int) -> RequisitionLine | None:
        """The line with ``line_no``, or None."""
        for line in self.lines:
            if line.line_no == line_no:
                return line
        return None


def _check_lines(subject: str, currency: str, lines: tuple[object, ...], price_field: str) -> None:
    numbers = [getattr(line, "line_no") for line in lines]  # noqa: B009
    dupes = f.unique(numbers)
    checks: list[tuple[bool, str, str]] = [
        (bool(lines), "lines", "a document needs at least one line"),
        (not dupes, "lines", f"line numbers must be unique; repeated: {dupes}"),
    ]
    for i, line in enumerate(lines):
        price: Money = getattr(line, price_field)
        code = price.currency.code
        checks.append(
            (
                code == currency,
                f"lines[{i}].{price_field}",
                f"currency {code} differs from the document's {currency}",
            )
        )
    f.collect(subject, checks)


# -- purchase orders -----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PurchaseOrderLine:
    """One ordered item or service.

    ``unit_price`` is per ``price_unit`` units of ``uom`` (a price per 100 has ``price_unit=100``)
    and may carry more decimals than the currency.  ``tax_rate`` is a percent (``8`` for 8 %).
    ``match_level`` overrides the PO's, supplier's and policy's default.
    ``over_receipt_allowance`` (percent of ordered) overrides the lifecycle's per-item default.
    """

    line_no: int = f.integer(minimum=1)
    description: str = f.text()
    category: str = f.text()
    quantity: Decimal = f.decimal(positive=True)
    uom: str = f.text()
    unit_price: Money = f.money()
    price_unit: Decimal = f.decimal(positive=True, default=_ONE)
    item: ItemId | None = f.text(optional=True)
    tax_rate: Decimal = f.decimal(non_negative=True, default=_ZERO)
    requested_date: date | None = f.day(optional=True)
    promised_date: date | None = f.day(optional=True)
    cost_centre: CostCentreId | None = f.text(optional=True)
    department: DepartmentId | None = f.text(optional=True)
    budget: BudgetId | None = f.text(optional=True)
    line_type: LineType = f.enum_field(LineType, default=LineType.GOODS)
    match_level: MatchLevel | None = f.enum_field(MatchLevel, optional=True)
    over_receipt_allowance: Decimal | None = f.optional_decimal(non_negative=True)
    requisition: RequisitionId | None = f.text(optional=True)
    requisition_line: int | None = f.optional_int()

    def __attrs_post_init__(self) -> None:
        price = self.unit_price.amount
        f.collect(
            type(self).__name__,
            [
                (
                    price >= 0,
                    "unit_price",
                    f"must not be negative, got {price} {self.unit_price.currency.code}; a "
                    "reduction is a revision of the price, or a credit memo once invoiced",
                )
            ],
        )

    @property
    def amount(self) -> Money:
        """Quantity × unit price ÷ price unit, exact (rounded only where booked)."""
        return extended_amount(self.quantity, self.unit_price, self.price_unit)

    @property
    def tax_amount(self) -> Money:
        """Amount × tax rate ÷ 100, exact.

        >>> from potrack.money import money
        >>> PurchaseOrderLine(line_no=1, description="x", category="c", quantity=Decimal(2),
        ...     uom="EA", unit_price=money("10.00", "EUR"), tax_rate=Decimal(19)).tax_amount
        Money('3.80', 'EUR')
        """
        return Money(self.amount.amount * self.tax_rate / 100, self.unit_price.currency.code)

    @property
    def expected_date(self) -> date | None:
        """The date delivery is expected: promised if known, else requested."""
        return self.promised_date or self.requested_date


@attrs.frozen(kw_only=True)
class Hold:
    """Why and since when a PO is on hold, and the state it resumes to."""

    reason: str = f.text()
    since: datetime = f.timestamp()
    by: ActorId = f.text()
    resume_to: POState = f.enum_field(POState)


@attrs.frozen(kw_only=True)
class Closure:
    """How and why a PO was closed."""

    kind: ClosureKind = f.enum_field(ClosureKind)
    at: datetime = f.timestamp()
    by: ActorId = f.text()
    reason: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class Comment:
    """A comment from the buyer's side or the supplier's side."""

    at: datetime = f.timestamp()
    by: ActorId = f.text()
    text: str = f.text()
    from_supplier: bool = f.flag()


@attrs.frozen(kw_only=True)
class FlaggedIssue:
    """A problem raised on a PO (damaged goods, wrong address...) until it is resolved."""

    issue_id: str = f.text()
    at: datetime = f.timestamp()
    by: ActorId = f.text()
    text: str = f.text()
    from_supplier: bool = f.flag()
    resolved_at: datetime | None = f.timestamp(optional=True)
    resolved_by: ActorId | None = f.text(optional=True)
    resolution: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class FieldChange:
    """One changed value in a revision (``line_no`` None for the header)."""

    field: str = f.text()
    old: str = f.text(required=False)
    new: str = f.text(required=False)
    line_no: int | None = f.optional_int()


@attrs.frozen(kw_only=True)
class Revision:
    """A PO revision: what changed, why, and the value before and after."""

    number: int = f.integer(minimum=1)
    at: datetime = f.timestamp()
    by: ActorId = f.text()
    reason: str = f.text()
    changes: tuple[FieldChange, ...] = f.tuple_of(FieldChange)
    value_before: Money = f.money()
    value_after: Money = f.money()
    source: str = f.text()
    """``supplier proposal`` or ``change order``."""
    reapproval: bool = f.flag()
    """Whether the revision sent the PO back through approval."""


@attrs.frozen(kw_only=True)
class LineChange:
    """A change to one PO line: any of quantity, unit price and promised date."""

    line_no: int = f.integer(minimum=1)
    quantity: Decimal | None = f.optional_decimal(positive=True)
    unit_price: Money | None = f.money(optional=True)
    promised_date: date | None = f.day(optional=True)

    def __attrs_post_init__(self) -> None:
        f.collect(
            "LineChange",
            [
                (
                    not (
                        self.quantity is None
                        and self.unit_price is None
                        and self.promised_date is None
                    ),
                    "",
                    f"line {self.line_no}: a change names at least one of quantity, unit_price "
                    "or promised_date",
                )
            ],
        )


@attrs.frozen(kw_only=True)
class ChangeProposal:
    """A supplier's proposal to change quantities, prices or delivery dates of a PO."""

    id: ChangeProposalId = f.text()
    po_id: PurchaseOrderId = f.text()
    proposed_by: ActorId = f.text()
    at: datetime = f.timestamp()
    changes: tuple[LineChange, ...] = f.tuple_of(LineChange, default_empty=False)
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class Acknowledgement:
    """The supplier's acceptance of a PO revision, with any promised dates."""

    po_id: PurchaseOrderId = f.text()
    revision: int = f.integer(minimum=0)
    at: datetime = f.timestamp()
    by: ActorId = f.text()
    supplier_reference: str | None = f.text(optional=True)
    promised_dates: tuple[tuple[int, date], ...] = attrs.field(default=(), converter=tuple)
    """(line_no, promised date) pairs."""
    note: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class DispatchLine:
    """Quantity of one PO line in a shipment."""

    line_no: int = f.integer(minimum=1)
    quantity: Decimal = f.decimal(positive=True)


@attrs.frozen(kw_only=True)
class DispatchNotice:
    """An advance shipping notice: carrier, tracking reference and expected arrival."""

    id: DispatchId = f.text()
    po_id: PurchaseOrderId = f.text()
    carrier: str = f.text()
    tracking_reference: str = f.text()
    shipped_at: datetime = f.timestamp()
    expected_arrival: date = f.day()
    lines: tuple[DispatchLine, ...] = f.tuple_of(DispatchLine)
    """Empty means the whole open order."""
    note: str | None = f.text(optional=True)


@attrs.frozen(kw_only=True)
class ReceiptLine:
    """Received quantity of one PO line and, once inspected, how much was accepted or rejected.

    ``accepted`` is ``None`` while inspection is pending (four-way matching waits for it); once set,
    ``accepted + rejected`` must equal ``received``.
    """

    line_no: int = f.integer(minimum=1)
    received: Decimal = f.decimal(positive=True)
    rejected: Decimal = f.decimal(non_negative=True, default=_ZERO)
    accepted: Decimal | None = f.optional_decimal(non_negative=True)
    uom: str | None = f.text(optional=True)
    """Unit of measure as received; ``None`` means the PO line's."""
    reason: str | None = f.text(optional=True)

    def __attrs_post_init__(self) -> None:
        f.collect(
            "ReceiptLine",
            [
                (
                    self.rejected <= self.received,
                    "rejected",
                    f"line {self.line_no}: rejected {self.rejected} exceeds received {self.received}",
                ),
                (
                    self.accepted is None or self.accepted + self.rejected == self.received,
                    "accepted",
                    f"line {self.line_no}: accepted {self.accepted} + rejected {self.rejected} "
                    f"must equal received {self.received}",
                ),
            ],
        )


@attrs.frozen(kw_only=True)
class GoodsReceipt:
    """Goods (or a service) received against a PO, possibly for several lines."""

    id: ReceiptId = f.text()
    po_id: PurchaseOrderId = f.text()
    received_at: datetime = f.timestamp()
    received_by: ActorId = f.text()
    lines: tuple[ReceiptLine, ...] = f.tuple_of(ReceiptLine, default_empty=False)
    delivery_note: str | None = f.text(optional=True)
    dispatch_id: DispatchId | None = f.text(optional=True)

    def __attrs_post_init__(self) -> None:
        dupes = f.unique(line.line_no for line in self.lines)
        f.collect(
            "GoodsReceipt",
            [
                (bool(self.lines), "lines", "a receipt needs at least one line"),
                (not dupes, "lines", f"a PO line appears more than once: {dupes}"),
            ],
        )


@attrs.frozen(kw_only=True)
class ReturnLine:
    """Quantity of one PO line sent back to the supplier."""

    line_no: int = f.integer(minimum=1)
    quantity: Decimal = f.decimal(positive=True)
    reason: str = f.text()


@attrs.frozen(kw_only=True)
class GoodsReturn:
    """Goods returned to the supplier.  Reduces the received quantity (rejected goods go first)."""

    id: ReturnId = f.text()
    po_id: PurchaseOrderId = f.text()
    returned_at: datetime = f.timestamp()
    returned_by: ActorId = f.text()
    lines: tuple[ReturnLine, ...] = f.tuple_of(ReturnLine, default_empty=False)
    rma: str | None = f.text(optional=True)
    """The supplier's return authorization, if any."""


# -- invoices and payments -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class InvoiceLine:
    """One billed line.  ``po_line_no`` links it to the PO line it bills (``None``: unmatched).

    ``amount`` is the line amount the supplier stated; when ``None`` it is quantity × unit price ÷
    price unit.  ``tax`` is the tax the supplier charged on this line, if stated per line.
    """

    line_no: int = f.integer(minimum=1)
    quantity: Decimal = f.decimal(positive=True)
    unit_price: Money = f.money()
    description: str = f.text(required=False, default="")
    po_line_no: int | None = f.optional_int()
    price_unit: Decimal = f.decimal(positive=True, default=_ONE)
    uom: str | None = f.text(optional=True)
    item: ItemId | None = f.text(optional=True)
    amount: Money | None = f.money(optional=True)
    tax: Money | None = f.money(optional=True)

    def __attrs_post_init__(self) -> None:
        amount, tax = self.amount, self.tax
        if (
            self.unit_price.amount < 0
            or (amount is not None and amount.amount < 0)
            or (tax is not None and tax.amount < 0)
        ):  # (the messages only when something is wrong: lines are built by the million)
            f.collect(
                type(self).__name__,
                [
                    (
                        value is None or value.amount >= 0,
                        name,
                        f"must not be negative, got {value.amount if value else ''} "
                        f"{value.currency.code if value else ''}; a reduction is a credit memo "
                        "or a subsequent credit",
                    )
                    for name, value in (
                        ("unit_price", self.unit_price),
                        ("amount", amount),
                        ("tax", tax),
                    )
                ],
            )

    @property
    def net_amount(self) -> Money:
        """The stated amount, or quantity × unit price ÷ price unit."""
        if self.amount is not None:
            return self.amount
        return extended_amount(self.quantity, self.unit_price, self.price_unit)


@attrs.frozen(kw_only=True)
class Charge:
    """A charge on an invoice other than goods: freight, expedite, insurance, handling...

    ``code`` identifies the kind for tolerance rules; ``po_line_no`` allocates it to a line.
    """

    code: str = f.text()
    amount: Money = f.money()
    description: str | None = f.text(optional=True)
    po_line_no: int | None = f.optional_int()


@attrs.frozen(kw_only=True)
class Invoice:
    """A supplier's invoice or credit memo (``kind``), in the supplier's currency.

    ``exchange_rate`` converts the invoice currency to the PO currency (1 invoice unit = rate PO
    units) when they differ.  ``total`` is the gross total the supplier stated (lines + charges +
    tax); matching compares it with the computed total.  A credit memo names the invoice it corrects
    in ``credits``; its lines are quantities and amounts credited (positive numbers).
    """

    id: InvoiceId = f.text()
    supplier_id: SupplierId = f.text()
    invoice_date: date = f.day()
    currency: str = f.currency()
    lines: tuple[InvoiceLine, ...] = f.tuple_of(InvoiceLine)
    total: Money = f.money()
    kind: InvoiceKind = f.enum_field(InvoiceKind, default=InvoiceKind.INVOICE)
    number: str | None = f.text(optional=True)
    """The supplier's own invoice number (what duplicate detection compares)."""
    po_id: PurchaseOrderId | None = f.text(optional=True)
    received_on: date | None = f.day(optional=True)
    due_date: date | None = f.day(optional=True)
    exchange_rate: Decimal | None = f.optional_decimal(positive=True)
    charges: tuple[Charge, ...] = f.tuple_of(Charge)
    tax: Money | None = f.money(optional=True)
    credits: InvoiceId | None = f.text(optional=True)
    reason: str | None = f.text(optional=True)

    def __attrs_post_init__(self) -> None:
        checks: list[tuple[bool, str, str]] = [
            (
                not f.unique(line.line_no for line in self.lines),
                "lines",
                "invoice line numbers must be unique",
            ),
            (
                self.total.currency.code == self.currency,
                "total",
                f"currency {self.total.currency.code} differs from the invoice's {self.currency}",
            ),
            (
                self.tax is None or self.tax.currency.code == self.currency,
                "tax",
                f"tax currency differs from the invoice's {self.currency}",
            ),
            (
                self.credits is None or self.kind is not InvoiceKind.INVOICE,
                "credits",
                "only a credit memo or a subsequent debit or credit corrects another invoice",
            ),
        ]
        # What is booked — the total, the tax, the charges — is a whole number of the currency's
        # minor units: 100.005 USD cannot be paid (rounded, the payable amount could exceed it).
        booked: list[tuple[str, Money | None]] = [("total", self.total), ("tax", self.tax)]
        booked += [(f"charges[{i}].amount", c.amount) for i, c in enumerate(self.charges)]
        booked += [(f"lines[{i}].tax", ln.tax) for i, ln in enumerate(self.lines)]
        for path, stated in booked:
            if stated is not None and stated.currency.code == self.currency:
                fine = _whole_minor_units(stated)
                if not fine:
                    checks.append(_minor_units(path, stated))
        if self.total.amount < 0:
            checks.append(
                (
                    False,
                    "total",
                    f"must not be negative, got {self.total.amount} {self.currency}; a "
                    "reduction is a credit memo (its amounts are positive)",
                )
            )
        for i, line in enumerate(self.lines):
            for name in ("unit_price", "amount", "tax"):
                value: Money | None = getattr(line, name)
                if value is not None:
                    checks.append(
                        (
                            value.currency.code == self.currency,
                            f"lines[{i}].{name}",
                            f"currency {value.currency.code} differs from the invoice's "
                            f"{self.currency}",
                        )
                    )
        for i, charge in enumerate(self.charges):
            checks.append(
                (
                    charge.amount.currency.code == self.currency,
                    f"charges[{i}].amount",
                    f"currency {charge.amount.currency.code} differs from the invoice's "
                    f"{self.currency}",
                )
            )
        f.collect(type(self).__name__, checks)

    @classmethod
    def credit_memo(cls, **fields: object) -> Invoice:
        """A credit memo: an :class:`Invoice` with ``kind=InvoiceKind.CREDIT_MEMO``.

        Its lines are the quantities and amounts credited, as positive numbers.
        """
        return cls(kind=InvoiceKind.CREDIT_MEMO, **fields)  # type: ignore[arg-type]

    @property
    def is_credit(self) -> bool:
        """Whether this is a credit memo."""
        return self.kind is InvoiceKind.CREDIT_MEMO

    @property
    def net_amount(self) -> Money:
        """Sum of the line amounts (exact)."""
        return sum_money((line.net_amount for line in self.lines), self.currency)

    @property
    def charges_amount(self) -> Money:
        """Sum of the charges (exact)."""
        return sum_money((c.amount for c in self.charges), self.currency)

    @property
    def computed_total(self) -> Money:
        """Lines + charges + tax: what the stated ``total`` should be."""
        tax = self.tax if self.tax is not None else zero(self.currency)
        return self.net_amount + self.charges_amount + tax

    def line(self, line_no: int) -> InvoiceLine | None:
        """The invoice line with ``line_no``, or None."""
        for line in self.lines:
            if line.line_no == line_no:
                return line
        return None


@attrs.frozen(kw_only=True)
class PaymentAllocation:
    """The part of a payment that settles one invoice: always a positive amount (what is owed
    back is a credit memo or a refund, never a negative allocation)."""

    invoice_id: InvoiceId = f.text()
    amount: Money = f.money()

    def __attrs_post_init__(self) -> None:
        f.collect(
            type(self).__name__,
            [
                (
                    self.amount.amount > 0,
                    "amount",
                    f"an allocation must be positive, got {self.amount.amount} "
                    f"{self.amount.currency.code} for {self.invoice_id}",
                )
            ],
        )


@attrs.frozen(kw_only=True)
class Payment:
    """A payment to a supplier, allocated to one or more invoices."""

    id: PaymentId = f.text()
    supplier_id: SupplierId = f.text()
    paid_on: date = f.day()
    amount: Money = f.money()
    allocations: tuple[PaymentAllocation, ...] = f.tuple_of(PaymentAllocation, default_empty=False)
    method: str = f.text(default="transfer")
    reference: str | None = f.text(optional=True)

    def __attrs_post_init__(self) -> None:
        code = self.amount.currency.code
        checks: list[tuple[bool, str, str]] = [
            (
                self.amount.amount > 0,
                "amount",
                f"a payment must be positive, got {self.amount.amount}",
            )
        ]
        same = all(a.amount.currency.code == code for a in self.allocations)
        checks.append((same, "allocations", f"every allocation must be in {code}"))
        if same and self.allocations:
            allocated = sum_money((a.amount for a in self.allocations), code)
            checks.append(
                (
                    allocated == self.amount,
                    "allocations",
                    f"allocations add up to {allocated.amount}, not the payment's {self.amount.amount}",
                )
            )
        f.collect("Payment", checks)


# -- PO progress (kept by the lifecycle) --------------------------------------------------------


@attrs.frozen(kw_only=True)
class LineProgress:
    """Cumulative quantities and amounts of one PO line, derived from the recorded events.

    Amounts are exact Decimals in the PO currency.  ``received`` counts every receipt, ``returned``
    every return; net received is their difference.  ``accepted`` counts inspected-and-accepted
    quantity, ``pending_inspection`` what awaits inspection.
    """

    line_no: int
    received: Decimal = _ZERO
    accepted: Decimal = _ZERO
    rejected: Decimal = _ZERO
    pending_inspection: Decimal = _ZERO
    returned: Decimal = _ZERO
    invoiced: Decimal = _ZERO
    invoiced_amount: Decimal = _ZERO
    credited: Decimal = _ZERO
    credited_amount: Decimal = _ZERO
    over_receipt_overrides: int = 0

    @property
    def net_received(self) -> Decimal:
        """Received minus returned."""
        return self.received - self.returned

    @property
    def net_accepted(self) -> Decimal:
        """Accepted minus returns beyond what was rejected (rejected goods are returned first)."""
        return self.accepted - max(_ZERO, self.returned - self.rejected)

    @property
    def net_invoiced(self) -> Decimal:
        """Invoiced minus credited quantity."""
        return self.invoiced - self.credited

    @property
    def net_invoiced_amount(self) -> Decimal:
        """Invoiced minus credited amount."""
        return self.invoiced_amount - self.credited_amount


@attrs.frozen(kw_only=True)
class InvoiceProgress:
    """An invoice or credit memo as the PO tracks it: its match status and what is paid."""

    invoice_id: InvoiceId
    kind: InvoiceKind
    amount: Decimal
    """Gross amount in the PO currency (credit memos positive)."""
    status: InvoiceStatus = InvoiceStatus.PENDING
    payable: Decimal = _ZERO
    """What may be paid now, per the latest match."""
    paid: Decimal = _ZERO
    number: str | None = None
    rate: Decimal = _ONE
    """Exchange rate from the invoice's currency to the PO's (1 when they are the same)."""


@attrs.frozen(kw_only=True)
class PurchaseOrder:
    """A purchase order with its lines, its lifecycle state and its derived progress.

    The document terms (supplier, lines, currency...) are set at creation and changed only by
    revisions; ``state``, ``version`` and everything below ``lines`` are kept by
    :mod:`potrack.lifecycle` from recorded events — never set them by hand.
    """

    id: PurchaseOrderId = f.text()
    supplier_id: SupplierId = f.text()
    buyer: ActorId = f.text()
    currency: str = f.currency()
    lines: tuple[PurchaseOrderLine, ...] = f.tuple_of(PurchaseOrderLine, default_empty=False)
    created_at: datetime = f.timestamp()
    requester: ActorId | None = f.text(optional=True)
    department: DepartmentId | None = f.text(optional=True)
    cost_centre: CostCentreId | None = f.text(optional=True)
    budget: BudgetId | None = f.text(optional=True)
    company: str | None = f.text(optional=True)
    site: str | None = f.text(optional=True)
    payment_terms: PaymentTerms | None = f.record(PaymentTerms, optional=True)
    ship_to: str | None = f.text(optional=True)
    incoterms: str | None = f.text(optional=True)
    match_level: MatchLevel | None = f.enum_field(MatchLevel, optional=True)
    requisitions: tuple[RequisitionId, ...] = f.tuple_of_str()
    charges: tuple[Charge, ...] = f.tuple_of(Charge)
    """Charges agreed with the supplier (freight, expedite...), what invoiced charges are matched to."""
    # -- kept by the lifecycle --
    number: PurchaseOrderNumber | None = f.text(optional=True)
    revision: int = f.integer(minimum=0, default=0)
    state: POState = f.enum_field(POState, default=POState.DRAFT)
    version: int = f.integer(minimum=1, default=1)
    approval: ApprovalState | None = f.record(ApprovalState, optional=True)
    approved_value: Money | None = f.money(optional=True)
    """The order value when its approval route last completed: the baseline every change order is
    compared with for re-approval (cumulatively, not revision by revision)."""
    issued_at: datetime | None = f.timestamp(optional=True)
    acknowledgement: Acknowledgement | None = f.record(Acknowledgement, optional=True)
    pending_change: ChangeProposal | None = f.record(ChangeProposal, optional=True)
    resume_to: POState | None = f.enum_field(POState, optional=True)
    """The state a pending change proposal returns to when declined or accepted."""
    revisions: tuple[Revision, ...] = f.tuple_of(Revision)
    hold: Hold | None = f.record(Hold, optional=True)
    closure: Closure | None = f.record(Closure, optional=True)
    dispatches: tuple[DispatchNotice, ...] = f.tuple_of(DispatchNotice)
    progress: tuple[LineProgress, ...] = f.tuple_of(LineProgress)
    invoices: tuple[InvoiceProgress, ...] = f.tuple_of(InvoiceProgress)
    receipts: tuple[ReceiptId, ...] = f.tuple_of_str()
    returns: tuple[ReturnId, ...] = f.tuple_of_str()
    payments: tuple[PaymentId, ...] = f.tuple_of_str()
    comments: tuple[Comment, ...] = f.tuple_of(Comment)
    issues: tuple[FlaggedIssue, ...] = f.tuple_of(FlaggedIssue)
    applied_keys: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=_key_pairs)
    """Idempotency keys applied so far, with the version each produced."""

    def __attrs_post_init__(self) -> None:
        _check_lines("PurchaseOrder", self.currency, self.lines, "unit_price")

    @property
    def label(self) -> str:
        """The PO number once issued, else its id (what messages show)."""
        return self.number or self.id

    @property
    def amount(self) -> Money:
        """Net order value: the sum of line amounts, exact."""
        total = sum((line.amount.amount for line in self.lines), _ZERO)
        return Money(total, self.currency)

    @property
    def tax_amount(self) -> Money:
        """Tax on the order value, exact."""
        total = sum((line.tax_amount.amount for line in self.lines), _ZERO)
        return Money(total, self.currency)

    def line(self, line_no: int) -> PurchaseOrderLine | None:
        """The line with ``line_no``, or None."""
        for line in self.lines:
            if line.line_no == line_no:
                return line
        return None

    def line_progress(self, line_no: int) -> LineProgress:
        """Progress of line ``line_no`` (all zero if nothing happened yet)."""
        for progress in self.progress:
            if progress.line_no == line_no:
                return progress
        return LineProgress(line_no=line_no)

    def invoice(self, invoice_id: str) -> InvoiceProgress | None:
        """Progress of an invoice recorded on this PO, or None."""
        for inv in self.invoices:
            if inv.invoice_id == invoice_id:
                return inv
        return None


def _minor_units(path: str, value: Money) -> tuple[bool, str, str]:
    """Whether ``value`` is a whole number of its currency's minor units (trailing zeros do not
    count: ``50.020`` USD is 50.02), as a check for :func:`potrack._fields.collect`.

    >>> _minor_units("total", Money("100.005", "USD"))[0], _minor_units("total", Money("50.020", "USD"))[0]
    (False, True)
    """
    code = value.currency.code
    places = currency_precision(code)
    ok = _whole_minor_units(value)
    unit = Decimal(1).scaleb(-places)
    return (
        ok,
        path,
        f"{value.amount} {code} is not a whole number of {code}'s minor unit ({unit}); "
        "state the amount as booked, rounded to the currency",
    )


def _whole_minor_units(value: Money) -> bool:
    """Whether ``value`` is a whole number of its currency's minor units (see
    :func:`_minor_units`)."""
    _, digits, exponent = value.amount.as_tuple()
    assert isinstance(exponent, int)  # a finite amount (the field checked it)
    finer = -exponent - currency_precision(value.currency.code)  # digits beyond the minor unit
    return finer <= 0 or all(d == 0 for d in digits[len(digits) - finer :])


def ensure_currency(expected: str, amount: Money, field: str) -> None:
    """Raise :class:`CurrencyMismatchError` unless ``amount`` is in ``expected``."""
    if amount.currency.code != expected:
        raise CurrencyMismatchError(expected, amount.currency.code, field)
