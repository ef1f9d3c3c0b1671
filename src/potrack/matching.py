"""Matching: tolerance-aware two-, three- and four-way matching that explains every finding.

Given a purchase order, its receipts and returns, the invoices and credit memos recorded so far and
a new invoice, :func:`match` decides what may be paid now, what is held and why:

>>> from potrack.testing.scenario import Scenario
>>> s = Scenario()
>>> po = s.issued_po()                                   # 100 EA at 10.00 USD
>>> receipts = [s.receipt(po, "50")]
>>> result = match(s.invoice(po, "80"), po, receipts=receipts, policy=TolerancePolicy())
>>> result.status.value, result.payable, result.held
('awaiting_receipt', Money('0.00', 'USD'), Money('800.00', 'USD'))
>>> print(result.findings[0].sentence())
Invoice line 1 (PO line 1): 80 billed so far against 50 received, 30 more (worth $300.00); limit 0 (rule default) — awaiting the goods receipt.

Matching is **cumulative** per PO line — all invoices so far against all receipts so far, receipts
net of returns, invoices net of credit memos — and **exact**: Decimal throughout, the same inputs
always give the same result.

Levels (per line: the line's, else the PO's, else the supplier's, else the policy's default):

* ``2-way``: unit price, quantity billed vs ordered, line amount;
* ``3-way``: adds quantity billed vs received;
* ``4-way``: adds quantity billed vs accepted after inspection.

Tolerances
----------
A :class:`Tolerance` sets upper and/or lower limits for one :class:`Check`.  Each limit is an
``amount`` (money, or the money value of a quantity variance), a ``percent`` and/or a ``quantity``
(units, or days for the date check).  Boundaries are **inclusive**: 5 % on a price of 10.00 fails
only above 10.50.  An unset limit means that side is not checked; zero means exact.  With several
limits on one side, ``combine="both"`` requires every one to hold (the stricter wins, as SAP and
Dynamics do) and ``"either"`` lets any one suffice (Ariba's *Or*).  By default an upper breach
blocks and a lower breach only warns (SAP).

>>> t = Tolerance(Check.UNIT_PRICE, upper=Limit(percent=Decimal(5)))
>>> t.upper_breach(Decimal("0.05"), Decimal("5.00"), None)   # 1.05 on 1.00: 5 % exactly passes
False
>>> t.upper_breach(Decimal("0.10"), Decimal("10.00"), None)  # 1.10 on 1.00 fails
True

Rules resolve by hierarchy — item + supplier > item > supplier > category > the policy's default —
and every finding names the rule that applied.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import attrs
from moneyed import Money

from potrack._files import read_settings
from potrack.approval import LintFinding
from potrack.events import RecordMatch
from potrack.exceptions import (
    InvalidValueError,
    NotPermittedError,
    Problem,
    ValidationError,
)
from potrack.money import (
    DEFAULT_LOCALE,
    Rounding,
    format_money,
    format_percent,
    format_quantity,
)
from potrack.records import (
    Actor,
    ActorId,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceKind,
    InvoiceStatus,
    MatchLevel,
    PurchaseOrder,
    Role,
    Supplier,
)
from potrack.serialization import make_converter
from potrack.typing import ExchangeRates, UomConverter

__all__ = [
    "BatchMatcher",
    "Check",
    "Finding",
    "FindingCode",
    "Limit",
    "LineResult",
    "MatchResult",
    "MatchSimulation",
    "Override",
    "Severity",
    "SmallDifference",
    "Tolerance",
    "TolerancePolicy",
    "ToleranceRule",
    "compare_simulations",
    "engine",
    "lint_tolerance_policy",
    "load_tolerance_policy",
    "match",
    "normalize_invoice_number",
    "simulate_policy",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


class Check(enum.StrEnum):
    """What a tolerance compares."""

    UNIT_PRICE = "unit_price"
    """Invoice unit price vs PO unit price (per the PO's price unit and unit of measure)."""
    QUANTITY_RECEIVED = "quantity_received"
    """Cumulative billed quantity vs cumulative received quantity net of returns (3-/4-way)."""
    QUANTITY_ORDERED = "quantity_ordered"
    """Cumulative billed quantity vs ordered quantity."""
    QUANTITY_ACCEPTED = "quantity_accepted"
    """Cumulative billed quantity vs accepted quantity after inspection (4-way)."""
    LINE_AMOUNT = "line_amount"
    """Cumulative billed amount vs the PO line's amount."""
    HEADER_TOTAL = "header_total"
    """The invoice's stated total vs lines + charges + tax."""
    CHARGES = "charges"
    """Cumulative charges per charge code vs the charges agreed on the PO."""
    TAX = "tax"
    """The invoice's tax vs the tax the PO's rates give on what is billed."""
    DATE = "date"
    """Days the invoice is dated before the line's expected delivery."""


class FindingCode(enum.StrEnum):
    """What a finding is about."""

    PRICE = "price"
    QUANTITY_RECEIVED = "quantity_received"
    QUANTITY_ORDERED = "quantity_ordered"
    QUANTITY_ACCEPTED = "quantity_accepted"
    AMOUNT = "amount"
    HEADER_TOTAL = "header_total"
    CHARGES = "charges"
    TAX = "tax"
    CURRENCY = "currency"
    DATE = "date"
    UNMATCHED_LINE = "unmatched_line"
    DUPLICATE = "duplicate"
    OVER_CREDIT = "over_credit"
    NOTHING_INVOICED = "nothing_invoiced"
    """A subsequent debit or credit for a PO line with nothing invoiced to correct."""


_CODE_OF_CHECK = {
    Check.UNIT_PRICE: FindingCode.PRICE,
    Check.QUANTITY_RECEIVED: FindingCode.QUANTITY_RECEIVED,
    Check.QUANTITY_ORDERED: FindingCode.QUANTITY_ORDERED,
    Check.QUANTITY_ACCEPTED: FindingCode.QUANTITY_ACCEPTED,
    Check.LINE_AMOUNT: FindingCode.AMOUNT,
    Check.HEADER_TOTAL: FindingCode.HEADER_TOTAL,
    Check.CHARGES: FindingCode.CHARGES,
    Check.TAX: FindingCode.TAX,
    Check.DATE: FindingCode.DATE,
}


class Severity(enum.StrEnum):
    """How much a finding matters: it blocks payment, warns, or only informs."""

    BLOCK = "block"
    WARN = "warn"
    INFO = "info"


# -- tolerances --------------------------------------------------------------------------------------


@attrs.frozen
class Limit:
    """One side's limits: ``amount`` (money; for quantity checks the money value of the variance),
    ``percent`` (of the expected value) and ``quantity`` (units; days for the date check).

    ``None`` leaves that measure unchecked; ``0`` means no variance at all.
    """

    amount: Decimal | None = None
    percent: Decimal | None = None
    quantity: Decimal | None = None

    def describe(self) -> str:
        """``5 %``, ``300.00``, ``5 % and 10.00``..."""
        parts = []
        if self.percent is not None:
            parts.append(f"{self.percent.normalize():f} %")
        if self.amount is not None:
            parts.append(f"{self.amount:f}")
        if self.quantity is not None:
            parts.append(f"{self.quantity.normalize():f} units")
        return ", ".join(parts) or "none"


@attrs.frozen
class Tolerance:
    """Upper and lower limits for one check, how they combine, and whether a breach blocks.

    Billing 110 and 111 against 100 ordered with a 10 % upper limit (magnitudes: value, percent,
    quantity):

    >>> t = Tolerance(Check.QUANTITY_ORDERED, upper=Limit(percent=Decimal(10)))
    >>> t.upper_breach(Decimal(100), Decimal(10), Decimal(10))
    False
    >>> t.upper_breach(Decimal(110), Decimal(11), Decimal(11))
    True
    """

    check: Check
    upper: Limit | None = None
    lower: Limit | None = None
    combine: str = "both"
    """``both``: every set limit must hold; ``either``: one holding suffices."""
    upper_blocks: bool = True
    lower_blocks: bool = False
    off: bool = False
    """Turn the check off (no limits then): the only way to skip a check the default policy
    performs.  Results list the checks off (:attr:`MatchResult.checks_off`) and
    :func:`lint_tolerance_policy` warns about each."""
    price_basis: str = "unit"
    """For the unit price: ``unit`` (an ``amount`` limit bounds the variance per unit, the
    default) or ``line`` (it bounds the money at stake on the invoice line: the variance per
    unit × the quantity billed, as SAP's *PP* key and ADempiere do).  With 50.00 per line,
    1,000 units at 0.04 over (40.00) pass; 2,000 at 0.03 over (60.00) do not.  Percent limits
    are the same either way."""

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.combine not in ("both", "either"):
            problems.append(
                Problem("combine", f"expected 'both' or 'either', got {self.combine!r}")
            )
        if self.off and (self.upper is not None or self.lower is not None):
            problems.append(
                Problem("off", "a check turned off has no limits; give either off or limits")
            )
        if self.price_basis not in ("unit", "line"):
            problems.append(
                Problem("price_basis", f"expected 'unit' or 'line', got {self.price_basis!r}")
            )
        elif self.price_basis == "line" and self.check is not Check.UNIT_PRICE:
            problems.append(Problem("price_basis", "'line' is for the unit_price check only"))
        if problems:
            raise ValidationError("Tolerance", problems)

    def _breach(
        self,
        limit: Limit | None,
        value: Decimal | None,
        percent: Decimal | None,
        quantity: Decimal | None,
    ) -> bool:
        if limit is None:
            return False
        from potrack._matchcore import breached  # the engine's (compiled when built so)

        return breached(limit, self.combine == "both", value, percent, quantity)

    def upper_breach(
        self, value: Decimal | None, percent: Decimal | None, quantity: Decimal | None
    ) -> bool:
        """Whether a positive variance (magnitudes given) breaks the upper limits."""
        return self._breach(self.upper, value, percent, quantity)

    def lower_breach(
        self, value: Decimal | None, percent: Decimal | None, quantity: Decimal | None
    ) -> bool:
        """Whether a negative variance (magnitudes given) breaks the lower limits."""
        return self._breach(self.lower, value, percent, quantity)


@attrs.frozen
class SmallDifference:
    """How far an invoice's stated total may differ from lines + charges + tax and be accepted
    automatically, as a recorded small difference: ``upper`` when it states more, ``lower``
    when it states less, each with an ``amount`` (invoice currency) and/or a ``percent`` (of
    lines + charges + tax; with both, both must hold).  A side without a limit accepts nothing.

    Up to 2.00 and 0.5 % more, 0.10 less: on 1,000.00, a total of 1,002.00 or 999.90 is a
    small difference; 1,002.01 or 999.89 goes to the header-total tolerance.

    >>> SmallDifference(upper=Limit(amount=Decimal("2.00"), percent=Decimal("0.5")),
    ...                 lower=Limit(amount=Decimal("0.10"))).describe()
    '+0.5 %, 2.00 / -0.10'
    """

    upper: Limit | None = None
    lower: Limit | None = None

    def __attrs_post_init__(self) -> None:
        problems = [
            Problem(f"{side}.quantity", "a small difference is money: give an amount or a percent")
            for side, limit in (("upper", self.upper), ("lower", self.lower))
            if limit is not None and limit.quantity is not None
        ]
        if problems:
            raise ValidationError("SmallDifference", problems)

    def describe(self) -> str:
        """``+2.00 / -0.10``: the limits as findings give them."""
        up = self.upper.describe() if self.upper is not None else "none"
        down = self.lower.describe() if self.lower is not None else "none"
        return f"+{up} / -{down}"


@attrs.frozen
class ToleranceRule:
    """Tolerances for a scope: an item, a supplier, a category or a combination.

    Resolution per check: item + supplier, then item, then supplier, then category, then the
    policy's default tolerances.
    """

    id: str
    tolerances: tuple[Tolerance, ...]
    item: str | None = None
    supplier: str | None = None
    category: str | None = None

    @property
    def rank(self) -> tuple[bool, bool, bool]:
        """How specific the rule is (higher wins)."""
        return (self.item is not None, self.supplier is not None, self.category is not None)

    def applies(self, item: str | None, supplier: str, category: str) -> bool:
        """Whether the rule's scope covers a line."""
        return (
            (self.item is None or self.item == item)
            and (self.supplier is None or self.supplier == supplier)
            and (self.category is None or self.category == category)
        )


def _default_tolerances() -> tuple[Tolerance, ...]:
    return (
        Tolerance(Check.UNIT_PRICE, upper=Limit(amount=_ZERO), lower=Limit(amount=_ZERO)),
        Tolerance(Check.QUANTITY_RECEIVED, upper=Limit(amount=_ZERO)),
        Tolerance(Check.QUANTITY_ORDERED, upper=Limit(amount=_ZERO)),
        Tolerance(Check.QUANTITY_ACCEPTED, upper=Limit(amount=_ZERO)),
        Tolerance(Check.CHARGES, upper=Limit(amount=_ZERO)),
        Tolerance(Check.HEADER_TOTAL, upper=Limit(amount=_ZERO), lower=Limit(amount=_ZERO)),
    )


@attrs.frozen(kw_only=True)
class TolerancePolicy:
    """Everything that decides a match.

    Args:
        tolerances: the default tolerances, used where no rule covers a line, per check.  A
            check not named keeps the default policy's tolerance: unit price, quantities
            (received, ordered, accepted), charges and the header total are exact and blocking
            unless a tolerance names them — naming a price tolerance changes the price rule only.
            ``Tolerance(check, off=True)`` turns a check off (results report it, the linter
            warns).  Tax, line amount and date are checked only where a tolerance names them.
        rules: scoped rules (see :class:`ToleranceRule`).
        default_level: matching level of lines, POs and suppliers that set none.
        small_difference: header-total differences up to this amount (in the invoice currency)
            either way are accepted automatically and recorded; beyond it the header tolerance
            applies.  A :class:`SmallDifference` sets the upper and lower sides apart, each
            with an amount and/or a percent.
        before_receipt: ``park`` (an invoice ahead of its goods waits as *awaiting receipt*) or
            ``hold`` (it is *held*, an exception); either way it is released automatically when
            the receipt arrives (see :class:`BatchMatcher`).
        partial_payment: pay the lines that match while others are held (default: any hold holds
            the whole invoice).
        rounding: how payable amounts are rounded to the currency's precision (what the checks
            compare is not: they compare amounts as the supplier books them, each line rounded
            half even — or, for a tie, half up: JPY 1000.5 booked as 1000 or 1001 both match).
        tax_rounding: how the tax expected is rounded: ``invoice`` (the default: the lines'
            tax summed, then rounded once) or ``line`` (each line's tax rounded, then summed).
            Three lines of 10.05 at 8 % expect 2.41 per invoice (2.412) and 2.40 per line
            (0.80 each).
        name: for reports.
    """

    tolerances: tuple[Tolerance, ...] = attrs.field(factory=_default_tolerances)
    rules: tuple[ToleranceRule, ...] = ()
    default_level: MatchLevel = MatchLevel.THREE_WAY
    small_difference: Decimal | SmallDifference = Decimal("0.00")
    before_receipt: str = "park"
    partial_payment: bool = False
    rounding: Rounding = Rounding.HALF_EVEN
    tax_rounding: str = "invoice"
    name: str = "default"

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.before_receipt not in ("hold", "park"):
            problems.append(
                Problem("before_receipt", f"expected 'hold' or 'park', got {self.before_receipt!r}")
            )
        if isinstance(self.small_difference, Decimal) and not self.small_difference >= 0:
            problems.append(
                Problem("small_difference", "expected an amount of 0 or more, or limits")
            )
        if self.tax_rounding not in ("invoice", "line"):
            problems.append(
                Problem(
                    "tax_rounding",
                    f"expected 'invoice' or 'line', got {self.tax_rounding!r}",
                )
            )
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            problems.append(Problem("rules", "rule ids must be unique"))
        if problems:
            raise ValidationError("TolerancePolicy", problems)

    @classmethod
    def lenient(cls) -> TolerancePolicy:
        """Common practice: price +5 % / −10 % (lower warns), quantities exact, charges +25 %,
        tax ± 1.00, header ± 0.05 accepted as a small difference."""
        return cls(
            tolerances=(
                Tolerance(
                    Check.UNIT_PRICE,
                    upper=Limit(percent=Decimal(5)),
                    lower=Limit(percent=Decimal(10)),
                ),
                Tolerance(Check.QUANTITY_RECEIVED, upper=Limit(amount=_ZERO)),
                Tolerance(Check.QUANTITY_ORDERED, upper=Limit(amount=_ZERO)),
                Tolerance(Check.QUANTITY_ACCEPTED, upper=Limit(amount=_ZERO)),
                Tolerance(Check.CHARGES, upper=Limit(percent=Decimal(25))),
                Tolerance(Check.TAX, upper=Limit(amount=_ONE), lower=Limit(amount=_ONE)),
                Tolerance(Check.HEADER_TOTAL, upper=Limit(amount=_ZERO), lower=Limit(amount=_ZERO)),
            ),
            small_difference=Decimal("0.05"),
            name="lenient",
        )


def load_tolerance_policy(
    source: str | Path, *, text: str | None = None, format: str | None = None
) -> TolerancePolicy:
    """Load a :class:`TolerancePolicy` from a TOML or JSON file (or from ``text``).

    The file's shape follows the classes: an optional ``[policy]`` table (``name``,
    ``small_difference``, ``before_receipt``, ``default_level``, ``partial_payment``,
    ``rounding``), ``[[tolerances]]`` (the defaults) and ``[[rules]]`` with their own
    ``[[rules.tolerances]]``.  Amounts and percents are strings, so they stay exact::

        [policy]
        name = "lenient"
        small_difference = "0.05"

        [[tolerances]]
        check = "unit_price"
        upper = { percent = "5" }
        lower = { percent = "10" }

        [[rules]]
        id = "acme-freight"
        supplier = "S-ACME"
        [[rules.tolerances]]
        check = "charges"
        upper = { percent = "40" }

    >>> p = load_tolerance_policy("inline.toml", text='''
    ... [[tolerances]]
    ... check = "unit_price"
    ... upper = { percent = "5" }
    ... ''')
    >>> p.tolerances[0].check is Check.UNIT_PRICE, p.tolerances[0].upper.percent
    (True, Decimal('5'))

    Raises:
        ValidationError: listing every problem (an unknown check, a float where an exact number
            is expected, an unknown key...) with its path.
        OSError: the file cannot be read.
    """
    name, _, _, raw = read_settings(source, text, format)
    if not isinstance(raw, dict):
        raise ValidationError(name, [Problem("", "expected a table of settings")])
    data = dict(raw.pop("policy", {}) or {})
    data.update(raw)
    problems: list[Problem] = []
    known = {f.name for f in attrs.fields(TolerancePolicy)}
    problems.extend(
        Problem(key, f"unknown setting; expected one of {sorted(known)}")
        for key in data
        if key not in known
    )
    checks = {c.value for c in Check}

    def check_list(items: object, path: str) -> None:
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get("check") if isinstance(item, dict) else None
            if value not in checks:
                problems.append(
                    Problem(
                        f"{path}[{i}].check",
                        f"{value!r} is not a check; expected one of {sorted(checks)}",
                    )
                )

    check_list(data.get("tolerances"), "tolerances")
    for i, rule in enumerate(data.get("rules") or []):
        if isinstance(rule, dict):
            check_list(rule.get("tolerances"), f"rules[{i}].tolerances")
    if problems:
        raise ValidationError(name, problems)
    policy: TolerancePolicy = make_converter().structure(data, TolerancePolicy)

    def typed(tolerances: tuple[Tolerance, ...]) -> tuple[Tolerance, ...]:
        return tuple(attrs.evolve(t, check=Check(t.check)) for t in tolerances)

    return attrs.evolve(
        policy,
        tolerances=typed(policy.tolerances),
        rules=tuple(attrs.evolve(r, tolerances=typed(r.tolerances)) for r in policy.rules),
    )


def lint_tolerance_policy(policy: TolerancePolicy) -> list[LintFinding]:
    """What is questionable in a tolerance policy: each check it turns off (``check_off``),
    where — the policy's defaults or a rule.

    >>> lint_tolerance_policy(TolerancePolicy(tolerances=(Tolerance(Check.TAX, off=True),)))
    [LintFinding(code='check_off', message='tax is off: nothing billed is compared with it', locations=('default',))]
    """
    scopes = [("default", policy.tolerances)]
    scopes += [(f"rule {r.id}", r.tolerances) for r in policy.rules]
    return [
        LintFinding(
            code="check_off",
            message=f"{t.check.value} is off: nothing billed is compared with it",
            locations=(where,),
        )
        for where, tolerances in scopes
        for t in tolerances
        if t.off
    ]


# -- overrides ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Override:
    """An authorized person accepting one out-of-tolerance finding, with a reason.

    ``accepted_variance`` is the variance accepted; if a later evaluation finds a larger one, the
    override no longer covers it.  Build one with :meth:`grant`, which checks the role.
    """

    invoice_id: InvoiceId
    code: FindingCode
    invoice_line_no: int | None
    by: ActorId
    reason: str
    at: datetime
    accepted_variance: Decimal | None = None

    @classmethod
    def grant(
        cls, actor: Actor, finding: Finding, invoice_id: str, reason: str, at: datetime
    ) -> Override:
        """Accept ``finding`` on ``invoice_id``.

        Raises:
            NotPermittedError: the actor does not hold the ``match_override`` role.
            ValidationError: the reason is empty.
        """
        if not actor.has_role(Role.MATCH_OVERRIDE):
            raise NotPermittedError(
                invoice_id,
                finding.code.value,
                "override a matching finding",
                [f"{actor.id} does not hold the {Role.MATCH_OVERRIDE.value} role"],
                actor.id,
            )
        if not reason.strip():
            raise ValidationError(
                "Override", [Problem("reason", "an override needs a reason a reviewer can read")]
            )
        return cls(
            invoice_id=InvoiceId(invoice_id),
            code=finding.code,
            invoice_line_no=finding.invoice_line_no,
            by=actor.id,
            reason=reason,
            at=at,
            accepted_variance=None if finding.variance is None else abs(finding.variance),
        )

    def covers(self, finding: Finding) -> bool:
        """Whether this override accepts ``finding``."""
        if finding.code is not self.code or finding.invoice_line_no != self.invoice_line_no:
            return False
        if self.accepted_variance is None or finding.variance is None:
            return True
        return abs(finding.variance) <= self.accepted_variance


# -- results ------------------------------------------------------------------------------------------


class Finding(NamedTuple):
    """One thing matching found, with everything a clerk needs to decide.

    (Findings and line results are immutable NamedTuples rather than attrs classes: a batch run
    builds millions of them, and a tuple is built five times faster.)

    ``expected`` and ``actual`` are in ``unit`` (a currency code, a unit of measure, or ``days``);
    ``variance`` is actual − expected and ``variance_percent`` its percent of expected (None when
    nothing was expected); ``value`` the money at stake, in ``currency`` (for a money check — price,
    line amount, charges, tax, header total — the variance itself; for a quantity variance, its
    value at the PO price; none for the date check).
    """

    code: FindingCode
    severity: Severity
    invoice_line_no: int | None = None
    po_line_no: int | None = None
    expected: Decimal | None = None
    actual: Decimal | None = None
    unit: str = ""
    variance: Decimal | None = None
    variance_percent: Decimal | None = None
    value: Decimal | None = None
    currency: str = ""
    limit: str | None = None
    rule: str | None = None
    detail: str = ""
    override: Override | None = None
    awaiting_receipt: bool = False

    @property
    def blocking(self) -> bool:
        """Whether the finding holds payment."""
        return self.severity is Severity.BLOCK

    def sentence(self, locale: str = DEFAULT_LOCALE) -> str:
        """The finding as one sentence a clerk understands, with numbers in ``locale``."""
        where = ""
        if self.invoice_line_no is not None:
            where = f"Invoice line {self.invoice_line_no}"
            if self.po_line_no is not None:
                where += f" (PO line {self.po_line_no})"
            where += ": "
        elif self.code not in (FindingCode.DUPLICATE,):
            where = "Invoice: "
        body = self.detail or self._describe(locale)
        if self.override is not None:
            outcome = f"accepted by {self.override.by} ({self.override.reason})"
        elif self.awaiting_receipt and self.severity is not Severity.INFO:
            outcome = "awaiting the goods receipt"
        elif self.severity is Severity.BLOCK:
            outcome = "held"
        elif self.severity is Severity.WARN:
            outcome = "warning only"
        else:
            outcome = "recorded"
        rule = f" (rule {self.rule})" if self.rule else ""
        limit = f"; limit {self.limit}{rule}" if self.limit is not None else ""
        return f"{where}{body}{limit} — {outcome}."

    def _num(self, value: Decimal, locale: str) -> str:
        if self.unit and len(self.unit) == 3 and self.unit.isupper() and self.unit.isalpha():
            return format_money(Money(value, self.unit), locale, exact=True)
        if self.unit == "days":
            return format_quantity(value, locale) + " days"
        return format_quantity(value, locale)

    def _describe(self, locale: str) -> str:
        exp = self.expected
        act = self.actual
        var = self.variance
        pct = (
            f" ({format_percent(self.variance_percent, locale)})"
            if self.variance_percent is not None
            else ""
        )
        if exp is None or act is None or var is None:
            return self.code.value.replace("_", " ")
        more = "more" if var > 0 else "less"
        worth = (
            f" (worth {format_money(Money(abs(self.value), self.currency), locale)})"
            if self.value is not None and self.currency
            else ""
        )
        labels = {
            FindingCode.PRICE: ("price", "the PO price"),
            FindingCode.AMOUNT: ("billed amount", "the PO line amount"),
            FindingCode.HEADER_TOTAL: ("stated total", "lines + charges + tax"),
            FindingCode.TAX: ("tax", "the expected tax"),
            FindingCode.CHARGES: ("charges", "the agreed charges"),
        }
        if self.code in labels:
            what, against = labels[self.code]
            direction = "above" if var > 0 else "below"
            return (
                f"{what} {self._num(act, locale)} is {self._num(abs(var), locale)}{pct} "
                f"{direction} {against} {self._num(exp, locale)}"
            )
        if self.code is FindingCode.DATE:
            return f"invoiced {format_quantity(abs(var), locale)} days before the expected delivery"
        against = {
            FindingCode.QUANTITY_RECEIVED: "received",
            FindingCode.QUANTITY_ORDERED: "ordered",
            FindingCode.QUANTITY_ACCEPTED: "accepted",
        }.get(self.code, "expected")
        return (
            f"{self._num(act, locale)} billed so far against {self._num(exp, locale)} "
            f"{against}, {self._num(abs(var), locale)} {more}{worth}"
        )


def abs_money(value: Money | None) -> Money:
    """The absolute value of an amount (zero for None is not allowed: callers check)."""
    assert value is not None
    return Money(abs(value.amount), value.currency.code)


class LineResult(NamedTuple):
    """The outcome for one invoice line; amounts are exact Decimals in ``currency`` (the
    invoice's)."""

    invoice_line_no: int
    po_line_no: int | None
    level: MatchLevel | None
    status: InvoiceStatus
    amount: Decimal
    """The line's net amount."""
    payable: Decimal
    """What may be paid for the line now, rounded to the currency's precision."""
    currency: str
    findings: tuple[Finding, ...]


class MatchResult(NamedTuple):
    """The outcome for one invoice: its status, what may be paid now, and every finding.

    ``invoiced = payable + held`` always; amounts are in the invoice currency, ``payable`` rounded
    to its precision with the policy's rounding mode.  (An immutable NamedTuple, like
    :class:`Finding` and :class:`LineResult`: a batch run builds one per invoice.)
    """

    invoice_id: InvoiceId
    po_id: str | None
    kind: InvoiceKind
    status: InvoiceStatus
    invoiced: Money
    payable: Money
    held: Money
    lines: tuple[LineResult, ...]
    header: tuple[Finding, ...]
    policy: str
    checks_off: tuple[str, ...] = ()
    """The checks the policy turned off for this invoice's lines or header (``Tolerance(check,
    off=True)``), in :class:`Check` order: what was not compared."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding: lines first, in line order, then the invoice's own."""
        return tuple(f for line in self.lines for f in line.findings) + self.header

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The findings that hold payment."""
        return tuple(f for f in self.findings if f.blocking)

    @property
    def first_pass(self) -> bool:
        """Matched (within tolerance or exactly) without any override."""
        return self.status in (
            InvoiceStatus.MATCHED,
            InvoiceStatus.MATCHED_WITHIN_TOLERANCE,
        ) and not any(f.override for f in self.findings)

    def report(self, locale: str = DEFAULT_LOCALE) -> str:
        """Every finding as a sentence, one per line, with the outcome first."""
        head = (
            f"{self.invoice_id}: {self.status.value.replace('_', ' ')} — payable "
            f"{format_money(self.payable, locale)}, held {format_money(self.held, locale)}"
        )
        if self.checks_off:
            head += f" (checks off: {', '.join(self.checks_off)})"
        return "\n".join([head, *(f"  - {f.sentence(locale)}" for f in self.findings)])

    def to_event(self, po_currency: str | None = None) -> RecordMatch:
        """The :class:`~potrack.events.RecordMatch` event recording this result on the PO."""
        return RecordMatch(
            invoice_id=self.invoice_id,
            status=self.status,
            payable=self.payable,
            findings=tuple(f.sentence() for f in self.findings),
            overrides=tuple(
                f"{f.code.value} on line {f.invoice_line_no} accepted by "
                f"{f.override.by}: {f.override.reason}"
                for f in self.findings
                if f.override
            ),
        )


def normalize_invoice_number(number: str) -> str:
    """A supplier invoice number as duplicate detection compares it: upper case, letters and
    digits only, leading zeros of each digit run dropped.

    >>> normalize_invoice_number("inv-00123/a"), normalize_invoice_number("INV 123 A")
    ('INV123A', 'INV123A')
    """
    from potrack._matchcore import normalize_number  # the engine's (compiled when built so)

    return normalize_number(number)


def match(
    invoice: Invoice,
    po: PurchaseOrder,
    *,
    receipts: Iterable[GoodsReceipt] = (),
    returns: Iterable[GoodsReturn] = (),
    earlier: Iterable[Invoice] = (),
    supplier_invoices: Iterable[Invoice] = (),
    policy: TolerancePolicy | None = None,
    supplier: Supplier | None = None,
    overrides: Iterable[Override] = (),
    uom: UomConverter | None = None,
    rates: ExchangeRates | None = None,
) -> MatchResult:
    """Match one invoice (or credit memo) against its PO, cumulatively.

    Args:
        invoice: the invoice or credit memo to match.
        po: its purchase order (the terms: lines, prices, price units, agreed charges, tax rates).
        receipts, returns: every receipt and return of the PO so far.
        earlier: the PO's invoices and credit memos recorded before this one — not those
            refused as duplicates or for crediting more than was invoiced, which change
            nothing (:class:`BatchMatcher` leaves them out itself).
        supplier_invoices: the supplier's other invoices (any PO), for duplicate detection.
        policy: tolerances (default: exact matching).
        supplier: the supplier (its default match level).
        overrides: accepted findings (see :meth:`Override.grant`).
        uom: conversion factors when documents use other units of measure than the PO line.
        rates: the host's exchange rates, to report the rate variance of foreign invoices.

    Raises:
        ValidationError: the invoice is for another PO or supplier, or a quantity is in a unit
            without a conversion factor.
    """
    from potrack._matchcore import match_one  # the engine (compiled when the build could)

    return match_one(
        invoice,
        po,
        receipts,
        returns,
        earlier,
        supplier_invoices,
        policy or TolerancePolicy(),
        supplier,
        tuple(overrides),
        uom,
        rates,
    )


def engine() -> str:
    """Which matching engine this installation runs: ``"compiled"`` (the engine module built
    with mypyc, when the build found a C compiler) or ``"python"``; both give the same results.

    >>> engine() in ("compiled", "python")
    True
    """
    from potrack import _matchcore

    return "python" if _matchcore.__file__.endswith(".py") else "compiled"


# -- batch -----------------------------------------------------------------------------------------


class BatchMatcher:
    """Matches a stream of documents in date order, carrying cumulative state along.

    Feed it receipts, returns, invoices and credit memos in the order they happened
    (:meth:`feed`); every invoice is matched when it arrives, against everything before it.  An
    invoice held only because its goods had not arrived is matched again when a receipt for its
    PO arrives, and the new result is yielded too — so holds release themselves.

    The documents are not kept: per PO only the cumulative quantities of its lines (a few numbers
    per line), the invoices still waiting for goods, and the invoice numbers seen per supplier
    (for duplicates).  PO terms are looked up in ``purchase_orders`` and cached (the ``cache``
    most recently loaded; an evicted PO is simply loaded again).

    Args:
        purchase_orders: a mapping from PO id to PO (a database-backed mapping works).
        policy: the tolerances.
        suppliers: supplier records by id (their default match level), optional.
        uom: unit-of-measure conversion factors, optional.
        rates: exchange rates, to report rate variances, optional.
        cache: how many POs' terms to keep (at least 1).

    Raises:
        ValidationError: ``cache`` is not a whole number of at least 1.
    """

    def __init__(
        self,
        purchase_orders: Mapping[str, PurchaseOrder],
        policy: TolerancePolicy | None = None,
        suppliers: Mapping[str, Supplier] | None = None,
        uom: UomConverter | None = None,
        rates: ExchangeRates | None = None,
        cache: int = 2_000,
    ) -> None:
        from potrack._matchcore import Engine  # compiled when the build could

        if type(cache) is not int or cache < 1:
            raise ValidationError(
                "BatchMatcher",
                [Problem("cache", f"must be a whole number of POs, at least 1; got {cache!r}")],
            )
        self._engine = Engine(
            purchase_orders, policy or TolerancePolicy(), suppliers or {}, uom, rates, cache
        )
        # The engine's feed, bound on the instance: ``matcher.feed(document)`` calls the engine
        # (compiled, where the build could) directly, not through the method below, which is
        # one Python call per document.  The method stays for its signature and documentation,
        # and a subclass that overrides it keeps its own.
        if type(self).feed is BatchMatcher.feed:
            self.feed = self._engine.feed  # type: ignore[method-assign]

    # Read-only views of what the engine holds (one copy of the state, not two).
    @property
    def purchase_orders(self) -> Mapping[str, PurchaseOrder]:
        return self._engine.purchase_orders

    @property
    def policy(self) -> TolerancePolicy:
        return self._engine.policy

    @property
    def suppliers(self) -> Mapping[str, Supplier]:
        return self._engine.suppliers

    @property
    def uom(self) -> UomConverter | None:
        return self._engine.uom

    @property
    def rates(self) -> ExchangeRates | None:
        return self._engine.rates

    @property
    def matched_lines(self) -> int:
        """Invoice lines matched so far, re-evaluations of waiting invoices included."""
        return self._engine.matched_lines

    def feed(
        self, document: GoodsReceipt | GoodsReturn | Invoice, overrides: Iterable[Override] = ()
    ) -> list[MatchResult]:
        """Take one document; return the match results it produces: one for an invoice, one per
        invoice it releases (or leaves waiting) for a receipt, none for a return.

        ``overrides`` (see :meth:`Override.grant`) apply to an invoice's findings.  An invoice
        or memo fed again — the same id and the same content — is matched again as it stands
        (against what was billed before it while it waits for goods, else against everything
        but itself), with the overrides given now, and nothing is counted twice: feeding a held
        invoice again with an override is how a person's decision reaches the batch.  The same
        id with other content raises :class:`~potrack.exceptions.DuplicateError` and changes
        nothing.

        >>> from potrack.testing.scenario import Scenario
        >>> s = Scenario()
        >>> po = s.issued_po(amount="10.00", quantity="100")
        >>> batch = BatchMatcher({po.id: po})
        >>> _ = batch.feed(s.receipt(po, "100"))
        >>> inv = s.invoice(po, "60")
        >>> batch.feed(inv) == batch.feed(inv)               # fed twice: one result, counted once
        True
        >>> batch.feed(s.invoice(po, "40"))[0].status.value  # 60 + 40 of 100
        'matched'

        An accepted
        credit memo that corrects an invoice waiting for goods (``credits`` names it) gives two:
        its own, then the invoice's, matched again in full as if the memo had come before it:
        what the memo credits (quantities, amounts, charges) no longer counts.

        An invoice held for a variance counts in what is billed (it is a claim awaiting a
        decision); one refused — a duplicate, or a credit memo for more than was invoiced —
        changes nothing: it is not counted, does not wait for goods and corrects nothing.

        Raises:
            ValidationError: a document names an unknown PO, or an invoice names none; or a
                quantity is in a unit without a conversion factor (nothing is changed then).
            DuplicateError: an invoice id fed before, with other content (nothing is changed).
            TypeError: not a receipt, return or invoice.
        """
        return self._engine.feed(document, overrides)

    def waiting(self) -> list[MatchResult]:
        """The results of the invoices waiting for goods as they stand, oldest invoice first
        (then by id).

        An invoice waits while a missing receipt or inspection holds it; each receipt for its
        PO matches it again (:meth:`feed` returns the new result) until goods no longer hold it.
        The matcher keeps no result for a waiting invoice: each is computed when asked for,
        against the goods as they are now — a :class:`~potrack.records.GoodsReturn` fed since
        the last receipt counts — and against what was billed before the invoice.  Asking
        changes nothing (nor :attr:`matched_lines`).

        Raises:
            ValidationError: a waiting invoice's PO is no longer in ``purchase_orders``.
        """
        return self._engine.waiting()

    def withdraw(self, invoice: Invoice) -> MatchResult:
        """Stop waiting for goods for ``invoice`` and return its result as it stands (see
        :meth:`waiting`).

        For an invoice settled another way — an override accepted with :func:`match`, a
        cancellation outside the stream — so that later receipts do not match it again and no
        result contradicts the settlement.

        Raises:
            NotFoundError: ``invoice`` is not waiting (never held for goods, released already,
                withdrawn or expired).
            ValidationError: its PO is no longer in ``purchase_orders`` (it waits on).
            InvalidValueError: ``invoice`` is not an :class:`~potrack.records.Invoice`.
        """
        if not isinstance(invoice, Invoice):
            raise InvalidValueError("invoice", invoice, "an Invoice", "withdraw")
        return self._engine.withdraw(invoice)

    def expire(self, before: date) -> list[MatchResult]:
        """Stop waiting for goods for every invoice dated before ``before``; return their
        results as they stand (see :meth:`waiting`), oldest invoice first.

        A long stream keeps every invoice whose goods never come (the synthetic 1,000,000-line
        stream ends with about 41,000): a host that gives up on goods after, say, a year calls
        ``expire(today - timedelta(days=365))`` now and then, and sends the results to a clerk.
        An expired invoice is not matched again when a late receipt comes; match it with
        :func:`match` then.

        >>> from potrack.testing.scenario import Scenario
        >>> s = Scenario()
        >>> po = s.issued_po(amount="10.00", quantity="100")
        >>> batch = BatchMatcher({po.id: po})
        >>> batch.feed(s.invoice(po, "100"))[0].status.value
        'awaiting_receipt'
        >>> len(batch.waiting()), batch.expire(date.max)[0].status.value
        (1, 'awaiting_receipt')
        >>> len(batch.waiting()), len(batch.feed(s.receipt(po, "100")))  # a late receipt
        (0, 0)

        Raises:
            InvalidValueError: ``before`` is not a date (a datetime is refused too: invoices
                are dated by day).
            ValidationError: a PO of one of them is no longer in ``purchase_orders`` (then
                every one waits on).
        """
        if type(before) is not date:
            raise InvalidValueError("before", before, "a date (not a datetime)", "expire")
        return self._engine.expire(before)

    def run(
        self, documents: Iterable[GoodsReceipt | GoodsReturn | Invoice]
    ) -> Iterator[MatchResult]:
        """Feed every document in order and yield every result.

        Raises:
            ValidationError, TypeError: as :meth:`feed`.
        """
        feed = self.feed
        for document in documents:
            yield from feed(document)


# -- policy simulation -----------------------------------------------------------------------------------


@attrs.frozen
class MatchSimulation:
    """A tolerance policy run over historical invoices.

    ``first_pass_rate`` is the share of invoices matched (exactly or within tolerance) when first
    matched, ``line_first_pass_rate`` the same per line; ``holds_by_reason`` counts invoices held
    (or awaiting receipt) at first matching by finding code; ``released`` those awaiting receipt
    that matched later in the stream.
    """

    policy: str
    invoices: int
    lines: int
    first_pass: int
    line_first_pass: int
    held: int
    awaiting_receipt: int
    released: int
    holds_by_reason: tuple[tuple[str, int], ...]
    payable: Decimal
    held_amount: Decimal

    @property
    def first_pass_rate(self) -> Decimal | None:
        """First-pass match rate per invoice (None for no invoices)."""
        return None if not self.invoices else Decimal(self.first_pass) * _HUNDRED / self.invoices

    @property
    def line_first_pass_rate(self) -> Decimal | None:
        """First-pass match rate per invoice line."""
        return None if not self.lines else Decimal(self.line_first_pass) * _HUNDRED / self.lines


_PASSED = (InvoiceStatus.MATCHED, InvoiceStatus.MATCHED_WITHIN_TOLERANCE)


def simulate_policy(
    documents: Iterable[GoodsReceipt | GoodsReturn | Invoice],
    purchase_orders: Mapping[str, PurchaseOrder],
    policy: TolerancePolicy,
    suppliers: Mapping[str, Supplier] | None = None,
) -> MatchSimulation:
    """Run ``policy`` over a stream of historical documents in date order (see
    :class:`BatchMatcher`) and report the first-pass match rate and holds by reason."""
    batch = BatchMatcher(purchase_orders, policy, suppliers)
    seen: set[str] = set()
    invoices = lines = first = line_first = held = awaiting = released = 0
    reasons: dict[str, int] = defaultdict(int)
    payable = held_amount = _ZERO
    for result in batch.run(documents):
        if result.invoice_id in seen:
            if result.status in _PASSED:
                released += 1
            continue
        seen.add(result.invoice_id)
        if result.kind is not InvoiceKind.INVOICE:
            continue
        invoices += 1
        lines += len(result.lines)
        line_first += sum(1 for lr in result.lines if lr.status in _PASSED)
        if result.first_pass:
            first += 1
        elif result.status is InvoiceStatus.AWAITING_RECEIPT:
            awaiting += 1
        else:
            held += 1
        for code in {f.code.value for f in result.blocking}:
            reasons[code] += 1
        payable += result.payable.amount
        held_amount += result.held.amount
    return MatchSimulation(
        policy=policy.name,
        invoices=invoices,
        lines=lines,
        first_pass=first,
        line_first_pass=line_first,
        held=held,
        awaiting_receipt=awaiting,
        released=released,
        holds_by_reason=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        payable=payable,
        held_amount=held_amount,
    )


def compare_simulations(a: MatchSimulation, b: MatchSimulation) -> str:
    """Two policy simulations side by side, as a small text table."""
    rows = [
        ("", a.policy, b.policy),
        ("first-pass rate (invoices)", _rate(a.first_pass_rate), _rate(b.first_pass_rate)),
        ("first-pass rate (lines)", _rate(a.line_first_pass_rate), _rate(b.line_first_pass_rate)),
        ("held", str(a.held), str(b.held)),
        ("awaiting receipt", str(a.awaiting_receipt), str(b.awaiting_receipt)),
    ]
    reasons = sorted({r for r, _ in a.holds_by_reason} | {r for r, _ in b.holds_by_reason})
    da, db = dict(a.holds_by_reason), dict(b.holds_by_reason)
    rows += [(f"held for {r}", str(da.get(r, 0)), str(db.get(r, 0))) for r in reasons]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]:>{width[2]}}" for r in rows)


def _rate(value: Decimal | None) -> str:
    return "no data" if value is None else f"{value:.1f} %"
