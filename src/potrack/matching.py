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

import decimal
import enum
import re
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import attrs
from moneyed import Money

from potrack._fast import rebuild
from potrack._files import read_settings
from potrack.events import RecordMatch
from potrack.exceptions import NotPermittedError, Problem, ValidationError
from potrack.money import (
    DEFAULT_LOCALE,
    Rounding,
    format_money,
    format_percent,
    format_quantity,
    quantum,
    round_amount,
)
from potrack.records import (
    Actor,
    ActorId,
    GoodsReceipt,
    GoodsReturn,
    Invoice,
    InvoiceId,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineType,
    MatchLevel,
    PurchaseOrder,
    PurchaseOrderLine,
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
    "Tolerance",
    "TolerancePolicy",
    "ToleranceRule",
    "compare_simulations",
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

    def __attrs_post_init__(self) -> None:
        if self.combine not in ("both", "either"):
            raise ValidationError(
                "Tolerance",
                [Problem("combine", f"expected 'both' or 'either', got {self.combine!r}")],
            )

    def _breach(
        self,
        limit: Limit | None,
        value: Decimal | None,
        percent: Decimal | None,
        quantity: Decimal | None,
    ) -> bool:
        if limit is None:
            return False
        return _breached(limit, self.combine == "both", value, percent, quantity)

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


def _breached(
    limit: Limit,
    both: bool,
    value: Decimal | None,
    percent: Decimal | None,
    quantity: Decimal | None,
) -> bool:
    """Whether magnitudes break a limit: each set measure holds or not; ``both`` needs every one
    to hold, otherwise one holding suffices (a limit with no measure set never breaks)."""
    held = failed = 0
    if limit.amount is not None:
        if value is not None and value <= limit.amount:
            held += 1
        else:
            failed += 1
    if limit.percent is not None:
        # No expected value (percent undefined) never passes a percent limit.
        if percent is not None and percent <= limit.percent:
            held += 1
        else:
            failed += 1
    if limit.quantity is not None:
        if quantity is not None and quantity <= limit.quantity:
            held += 1
        else:
            failed += 1
    if not held and not failed:
        return False
    return bool(failed) if both else not held


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
        tolerances: the default tolerances, used where no rule covers a line (per check; a check
            with no tolerance anywhere is not performed).  The default is exact matching.
        rules: scoped rules (see :class:`ToleranceRule`).
        default_level: matching level of lines, POs and suppliers that set none.
        small_difference: header-total differences up to this amount (in the invoice currency)
            are accepted automatically and recorded; beyond it the header tolerance applies.
        before_receipt: ``park`` (an invoice ahead of its goods waits as *awaiting receipt*) or
            ``hold`` (it is *held*, an exception); either way it is released automatically when
            the receipt arrives (see :class:`BatchMatcher`).
        partial_payment: pay the lines that match while others are held (default: any hold holds
            the whole invoice).
        rounding: how payable amounts are rounded to the currency's precision.
        name: for reports.
    """

    tolerances: tuple[Tolerance, ...] = attrs.field(factory=_default_tolerances)
    rules: tuple[ToleranceRule, ...] = ()
    default_level: MatchLevel = MatchLevel.THREE_WAY
    small_difference: Decimal = Decimal("0.00")
    before_receipt: str = "park"
    partial_payment: bool = False
    rounding: Rounding = Rounding.HALF_EVEN
    name: str = "default"

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.before_receipt not in ("hold", "park"):
            problems.append(
                Problem("before_receipt", f"expected 'hold' or 'park', got {self.before_receipt!r}")
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
    nothing was expected); ``value`` the money at stake, in ``currency`` (for a quantity variance:
    its value at the PO price).
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


# -- what a PO asks: its terms, resolved once per PO ----------------------------------------------------


class _LineTerms(NamedTuple):
    """One PO line's terms as matching reads them, with its resolved level and gates.

    Built once per PO, for every line: a tuple, because building a tuple is several times cheaper
    than setting the slots of an object.
    """

    line: PurchaseOrderLine
    line_no: int
    price: Decimal
    price_unit: Decimal
    quantity: Decimal
    uom: str
    tax_rate: Decimal | None
    level: MatchLevel
    needs_receipt: bool
    four_way: bool
    price_tol: _Gate | None
    received_tol: _Gate | None
    ordered_tol: _Gate | None
    accepted_tol: _Gate | None
    amount_tol: _Gate | None
    date_tol: _Gate | None
    received_lower: bool
    """Whether billing less than received is checked at all (usually not)."""
    ordered_lower: bool
    """Whether billing less than ordered is checked at all (usually not)."""

    @property
    def per_unit(self) -> Decimal:
        """The PO price of one unit (the price divided by the price unit)."""
        return self.price if self.price_unit == _ONE else self.price / self.price_unit

    @property
    def amount(self) -> Decimal:
        """The PO line's net amount."""
        return self.quantity * self.per_unit

    @property
    def expected(self) -> date | None:
        """When the goods are expected: the promised date, else the requested one."""
        return self.line.promised_date or self.line.requested_date


_tuple_new = tuple.__new__
_QUANTIZERS: dict[str, Any] = {}


def _quantizer(rounding: Rounding) -> Any:
    """``Context.quantize`` of a private context with ``rounding`` (twice as fast as
    ``Decimal.quantize(..., rounding=...)``, and independent of the thread's context)."""
    mode = rounding._value_  # .value is a Python property; _value_ a plain attribute
    found = _QUANTIZERS.get(mode)
    if found is None:
        found = _QUANTIZERS[mode] = decimal.Context(prec=34, rounding=mode).quantize
    return found


_FOUR_WAY = MatchLevel.FOUR_WAY
_TWO_WAY = MatchLevel.TWO_WAY
_SERVICE = LineType.SERVICE
_CREDIT_MEMO = InvoiceKind.CREDIT_MEMO
_INVOICE = InvoiceKind.INVOICE
_BLOCK = Severity.BLOCK
_WARN = Severity.WARN
_INFO = Severity.INFO
_MATCHED = InvoiceStatus.MATCHED
_WITHIN = InvoiceStatus.MATCHED_WITHIN_TOLERANCE
_HELD = InvoiceStatus.HELD
_AWAITING = InvoiceStatus.AWAITING_RECEIPT
_CODE_PRICE = FindingCode.PRICE
_CODE_QUANTITY_ORDERED = FindingCode.QUANTITY_ORDERED
_CODE_AMOUNT = FindingCode.AMOUNT
_CODE_DATE = FindingCode.DATE
_CODE_QUANTITY_RECEIVED = FindingCode.QUANTITY_RECEIVED
_CODE_QUANTITY_ACCEPTED = FindingCode.QUANTITY_ACCEPTED
_CODE_CURRENCY = FindingCode.CURRENCY
_CODE_TAX = FindingCode.TAX
_CODE_HEADER_TOTAL = FindingCode.HEADER_TOTAL
_CODE_CHARGES = FindingCode.CHARGES


class _Terms(NamedTuple):
    """A PO's terms as matching needs them (a tuple: built once per PO, cheaply)."""

    po: PurchaseOrder
    currency: str
    lines: dict[int, _LineTerms]
    charges: dict[str, Decimal]
    """Agreed charges per charge code."""
    charges_tol: _Gate | None
    tax_tol: _Gate | None
    total_tol: _Gate | None


def _terms(po: PurchaseOrder, supplier: Supplier | None, policy: TolerancePolicy) -> _Terms:
    """The terms of ``po``: each line's price, quantity, level and resolved tolerances."""
    resolver = _RESOLVERS.get(id(policy))
    if resolver is None or resolver.policy is not policy:
        resolver = _resolver(policy)
    default = po.match_level or (supplier.match_level if supplier else None) or policy.default_level
    supplier_id = po.supplier_id
    scoped = resolver.line_checks if resolver.ordered else None
    checks = resolver.default_checks
    lines: dict[int, _LineTerms] = {}
    for ln in po.lines:
        level = ln.match_level or default
        if scoped is not None:
            checks = scoped(ln.item, supplier_id, ln.category)
        lines[ln.line_no] = _tuple_new(
            _LineTerms,
            (
                ln,
                ln.line_no,
                ln.unit_price.amount,
                ln.price_unit,
                ln.quantity,
                ln.uom,
                ln.tax_rate,
                level,
                level is not _TWO_WAY and ln.line_type is not _SERVICE,
                level is _FOUR_WAY,
                *checks,
            ),
        )
    agreed: dict[str, Decimal] = {}
    for charge in po.charges:
        agreed[charge.code] = agreed.get(charge.code, _ZERO) + charge.amount.amount
    return _tuple_new(
        _Terms, (po, po.currency, lines, agreed, *resolver.header_checks(supplier_id))
    )


# -- the ledger: cumulative quantities per PO line ---------------------------------------------------------


# A ledger is what is known of one PO, kept as one plain dict of numbers: per PO line, its
# cumulative quantities and amount (PO unit of measure and currency) under the keys
# ``line_no * _STRIDE + field``; per charge code (a string), the charges billed so far.
#
# A dict holding nothing but numbers is never tracked by the garbage collector.  The batch
# matcher keeps a ledger per PO for the whole run: as objects (an object per PO line) a run of
# a million invoice lines left 1.4 million objects for every full collection to scan again —
# the main reason a long batch slowed down.  Missing keys are zero.
_Ledger = dict[int | str, Decimal]
_RECEIVED, _RETURNED, _ACCEPTED, _REJECTED, _BILLED, _BILLED_AMOUNT = range(6)
_STRIDE = 8  # keys per PO line (line numbers are ≥ 1, so lines never share a key)


def _add(ledger: _Ledger, key: int | str, amount: Decimal) -> None:
    ledger[key] = ledger.get(key, _ZERO) + amount


def _receive(
    ledger: _Ledger, receipt: GoodsReceipt, terms: _Terms, uom: UomConverter | None
) -> None:
    """Add a receipt's quantities (converted to the PO lines' units first, so that a missing
    conversion factor raises before anything is added)."""
    factors = None
    for rl in receipt.lines:
        if rl.uom is not None:
            factors = [_factor(terms, r.line_no, r.uom, uom) for r in receipt.lines]
            break
    get = ledger.get
    for i, rl in enumerate(receipt.lines):
        factor = _ONE if factors is None else factors[i]
        base = rl.line_no * _STRIDE
        key = base + _RECEIVED
        ledger[key] = get(key, _ZERO) + (rl.received if factor is _ONE else rl.received * factor)
        if rl.rejected:
            key = base + _REJECTED
            ledger[key] = get(key, _ZERO) + rl.rejected * factor
        # Uninspected goods count for 3-way; 4-way waits for the inspection.
        if rl.accepted is not None:
            key = base + _ACCEPTED
            ledger[key] = get(key, _ZERO) + (
                rl.accepted if factor is _ONE else rl.accepted * factor
            )


def _give_back(ledger: _Ledger, ret: GoodsReturn) -> None:
    for rl in ret.lines:
        _add(ledger, rl.line_no * _STRIDE + _RETURNED, rl.quantity)


def _bill(ledger: _Ledger, invoice: Invoice, terms: _Terms, uom: UomConverter | None) -> None:
    """Add an invoice (or subtract a credit memo) to the cumulative state."""
    sign = -1 if invoice.kind is _CREDIT_MEMO else 1
    rate = invoice.exchange_rate or _ONE
    known = terms.lines
    for ln in invoice.lines:
        no = ln.po_line_no
        if no is None or no not in known:
            continue
        quantity = ln.quantity if ln.uom is None else ln.quantity * _factor(terms, no, ln.uom, uom)
        amount = _net(ln) if rate is _ONE else _net(ln) * rate
        _add(ledger, no * _STRIDE + _BILLED, quantity * sign)
        _add(ledger, no * _STRIDE + _BILLED_AMOUNT, amount * sign)
    for charge in invoice.charges:
        _add(ledger, charge.code, sign * charge.amount.amount * rate)


def _net(ln: InvoiceLine) -> Decimal:
    if ln.amount is not None:
        return ln.amount.amount
    value = ln.quantity * ln.unit_price.amount
    return value if ln.price_unit == _ONE else value / ln.price_unit


def _factor(terms: _Terms, line_no: int, given: str | None, uom: UomConverter | None) -> Decimal:
    """How many of the PO line's units one ``given`` unit is (1 when the same or unknown line)."""
    if given is None:
        return _ONE
    line = terms.lines.get(line_no)
    if line is None or given == line.uom:
        return _ONE
    factor = uom.factor(given, line.uom, line.line.item) if uom is not None else None
    if factor is None:
        raise ValidationError(
            "unit of measure",
            [
                Problem(
                    f"line {line_no}",
                    f"quantity in {given} but the PO line is in {line.uom}, and no conversion factor "
                    "is known (give a UomConverter)",
                )
            ],
        )
    return factor


# -- matching -----------------------------------------------------------------------------------------------

_DUP_STRIP = re.compile(r"[^0-9A-Z]")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def normalize_invoice_number(number: str) -> str:
    """A supplier invoice number as duplicate detection compares it: upper case, letters and
    digits only, leading zeros of each digit run dropped.

    >>> normalize_invoice_number("inv-00123/a"), normalize_invoice_number("INV 123 A")
    ('INV123A', 'INV123A')
    """
    kept = _DUP_STRIP.sub("", number.upper())
    return _LEADING_ZEROS.sub("", kept) if "0" in kept else kept


_LINE_CHECKS = (
    Check.UNIT_PRICE,
    Check.QUANTITY_RECEIVED,
    Check.QUANTITY_ORDERED,
    Check.QUANTITY_ACCEPTED,
    Check.LINE_AMOUNT,
    Check.DATE,
)


class _Gate:
    """A resolved tolerance and the rule it came from, laid out for the hot path."""

    __slots__ = ("both", "lower", "lower_blocks", "rule", "upper", "upper_blocks")

    def __init__(self, tolerance: Tolerance, rule: str) -> None:
        self.upper = tolerance.upper
        self.lower = tolerance.lower
        self.upper_blocks = tolerance.upper_blocks
        self.lower_blocks = tolerance.lower_blocks
        self.both = tolerance.combine == "both"
        self.rule = rule


class _Resolver:
    """Tolerance resolution with a cache per (item, supplier, category)."""

    def __init__(self, policy: TolerancePolicy) -> None:
        self.policy = policy
        self.cache: dict[tuple[str | None, str, str], dict[Check, _Gate]] = {}
        self.ordered = sorted(policy.rules, key=lambda r: r.rank, reverse=True)
        self.default: dict[Check, _Gate] = {t.check: _Gate(t, "default") for t in policy.tolerances}
        self.default_checks = self._checks(self.default)
        # The line checks' gates in a fixed order, per scope (hashing an Enum member runs
        # Python code: these lookups happen once per scope, not per line).
        self.checks: dict[tuple[str | None, str, str], tuple[_Gate | bool | None, ...]] = {}
        self.headers: dict[str, tuple[_Gate | None, ...]] = {}
        self.default_header = self._header(self.default)

    @staticmethod
    def _checks(found: dict[Check, _Gate]) -> tuple[_Gate | bool | None, ...]:
        gates = tuple(found.get(c) for c in _LINE_CHECKS)
        received, ordered = gates[1], gates[2]
        return (
            *gates,
            received is not None and received.lower is not None,
            ordered is not None and ordered.lower is not None,
        )

    def line_checks(
        self, item: str | None, supplier: str, category: str
    ) -> tuple[_Gate | bool | None, ...]:
        """The line checks' gates, in ``_LINE_CHECKS`` order, then whether the lower sides of
        the received and ordered checks are set (the tail of a :class:`_LineTerms`)."""
        if not self.ordered:
            return self.default_checks
        key = (item, supplier, category)
        found = self.checks.get(key)
        if found is None:
            found = self._checks(self.for_line(item, supplier, category))
            if len(self.checks) < 100_000:
                self.checks[key] = found
        return found

    def header_checks(self, supplier: str) -> tuple[_Gate | None, ...]:
        """The header checks' gates (charges, tax, total) for a supplier's invoices."""
        if not self.ordered:
            return self.default_header
        found = self.headers.get(supplier)
        if found is None:
            found = self._header(self.for_line(None, supplier, ""))
            if len(self.headers) < 100_000:
                self.headers[supplier] = found
        return found

    @staticmethod
    def _header(found: dict[Check, _Gate]) -> tuple[_Gate | None, ...]:
        return (found.get(Check.CHARGES), found.get(Check.TAX), found.get(Check.HEADER_TOTAL))

    def for_line(self, item: str | None, supplier: str, category: str) -> dict[Check, _Gate]:
        if not self.ordered:
            return self.default  # no scoped rules: every line gets the default tolerances
        key = (item, supplier, category)
        found = self.cache.get(key)
        if found is None:
            applying = [r for r in reversed(self.ordered) if r.applies(item, supplier, category)]
            if not applying:
                found = self.default  # shared: never mutated
            else:
                found = dict(self.default)
                for rule in applying:  # least specific first: more specific overwrite
                    for t in rule.tolerances:
                        found[t.check] = _Gate(t, rule.id)
            if len(self.cache) < 100_000:
                self.cache[key] = found
        return found


_RESOLVERS: dict[int, _Resolver] = {}


def _resolver(policy: TolerancePolicy) -> _Resolver:
    found = _RESOLVERS.get(id(policy))
    if found is None or found.policy is not policy:
        if len(_RESOLVERS) > 64:
            _RESOLVERS.clear()
        found = _RESOLVERS[id(policy)] = _Resolver(policy)
    return found


def _pct(variance: Decimal, expected: Decimal) -> Decimal | None:
    return None if expected == 0 else variance * _HUNDRED / expected


def _test(
    findings: list[Finding],
    gate: _Gate | None,
    code: FindingCode,
    expected: Decimal,
    actual: Decimal,
    unit: str,
    *,
    value: Decimal | None = None,
    quantity: Decimal | None = None,
    currency: str = "",
    inv_line: int | None = None,
    po_line: int | None = None,
    awaiting: bool = False,
) -> None:
    """Compare ``actual`` with ``expected`` under a tolerance and record a finding if they differ.

    ``value`` is the money measure of the variance (the variance itself for money checks),
    ``quantity`` the unit measure (for quantity checks and days).
    """
    if gate is None:
        return  # the check is off
    variance = actual - expected
    if not variance:
        return
    upper = variance > 0
    side = gate.upper if upper else gate.lower
    if side is None:
        return  # that side is not checked
    pct = None if not expected else variance * _HUNDRED / expected
    breach = _breached(
        side,
        gate.both,
        abs(value if value is not None else variance),
        None if pct is None else abs(pct),
        None if quantity is None else abs(quantity),
    )
    blocks = gate.upper_blocks if upper else gate.lower_blocks
    severity = (_BLOCK if blocks else _WARN) if breach else _INFO
    findings.append(
        _tuple_new(
            Finding,
            (
                code,
                severity,
                inv_line,
                po_line,
                expected,
                actual,
                unit,
                variance,
                pct,
                value if currency else None,
                currency if value is not None else "",
                _describe(side),
                gate.rule,
                "",
                None,
                awaiting and breach,
            ),
        )
    )


_LIMIT_TEXT: dict[int, tuple[Limit, str]] = {}


def _describe(limit: Limit) -> str:
    # Keyed by identity (hashing a Limit hashes its Decimals); the Limit is kept alongside so
    # its id cannot be reused by another object while cached.
    found = _LIMIT_TEXT.get(id(limit))
    if found is None or found[0] is not limit:
        if len(_LIMIT_TEXT) > 10_000:
            _LIMIT_TEXT.clear()
        found = _LIMIT_TEXT[id(limit)] = (limit, limit.describe())
    return found[1]


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
        earlier: the PO's invoices and credit memos recorded before this one.
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
    policy = policy or TolerancePolicy()
    terms = _terms(po, supplier, policy)
    ledger: _Ledger = {}
    for receipt in receipts:
        if receipt.po_id == po.id:
            _receive(ledger, receipt, terms, uom)
    for ret in returns:
        if ret.po_id == po.id:
            _give_back(ledger, ret)
    for inv in earlier:
        if inv.id != invoice.id and inv.po_id == po.id:
            _bill(ledger, inv, terms, uom)
    return _evaluate(
        invoice, terms, ledger, policy, tuple(overrides), uom, rates, supplier_invoices
    )


_OK = (_MATCHED, _WITHIN)


def _factors(
    invoice: Invoice, terms: _Terms, uom: UomConverter | None
) -> dict[int, Decimal] | None:
    """Per invoice line, the factor to the PO line's unit (None when every line is in it).

    Computed before anything is changed, so that a missing factor changes nothing.
    """
    factors: dict[int, Decimal] | None = None
    for ln in invoice.lines:
        if ln.uom is not None and ln.po_line_no is not None:
            factor = _factor(terms, ln.po_line_no, ln.uom, uom)
            if factor is not _ONE:
                if factors is None:
                    factors = {}
                factors[ln.line_no] = factor
    return factors


def _evaluate(
    invoice: Invoice,
    terms: _Terms,
    ledger: _Ledger,
    policy: TolerancePolicy,
    overrides: tuple[Override, ...],
    uom: UomConverter | None,
    rates: ExchangeRates | None,
    supplier_invoices: Iterable[Invoice],
) -> MatchResult:
    """Match ``invoice`` against what ``ledger`` knows, then add it to the ledger.

    Each line is checked against the cumulative state of its PO line and billed right after,
    so a second invoice line on the same PO line is checked against both.  Nothing is changed
    until every input has been validated.
    """
    po = terms.po
    if invoice.supplier_id != po.supplier_id or (
        invoice.po_id is not None and invoice.po_id != po.id
    ):
        problems = []
        if invoice.po_id is not None and invoice.po_id != po.id:
            problems.append(Problem("po_id", f"the invoice is for {invoice.po_id}, not {po.id}"))
        if invoice.supplier_id != po.supplier_id:
            problems.append(
                Problem(
                    "supplier_id",
                    f"the invoice is from {invoice.supplier_id}, the PO with {po.supplier_id}",
                )
            )
        raise ValidationError(f"invoice {invoice.id}", problems)
    factors = _factors(invoice, terms, uom)  # raises before anything is billed
    credit = invoice.kind is _CREDIT_MEMO
    cur = invoice.currency
    po_cur = terms.currency
    rate: Decimal | None = _ONE
    header: list[Finding] = []
    if cur != po_cur:
        rate = invoice.exchange_rate
        header.append(_currency_finding(invoice, po, rate, rates))
    if supplier_invoices:
        header.extend(_duplicates(invoice, supplier_invoices))
    # Without a rate nothing can be compared; quantities are billed, amounts as stated.
    billing_rate = rate or _ONE

    results: list[LineResult] = []
    blocking: list[Finding] = []
    found: list[Finding] = []  # every line's findings, in order
    invoice_id = invoice.id
    # Totals and tax are compared as the supplier books them: each line amount rounded to the
    # currency's precision (a 3 × 45.5805 line is 136.74 on the invoice).
    exponent = quantum(cur)
    rounded_to = _quantizer(policy.rounding)
    net_total = _ZERO
    taxed = _ZERO
    tax_known = True
    plain = factors is None and billing_rate is _ONE  # no conversion of units or currency
    known = terms.lines
    get = ledger.get
    for ln in invoice.lines:
        start = len(found)
        no = ln.po_line_no
        t = known.get(no)  # type: ignore[arg-type]  # None: no PO line named
        stated = ln.amount
        if stated is not None:
            amount = stated.amount
            rounded = rounded_to(amount, exponent)
            booked = amount
        else:
            amount = ln.quantity * ln.unit_price.amount
            if ln.price_unit != _ONE:
                amount = amount / ln.price_unit
            booked = rounded = rounded_to(amount, exponent)
        net_total += booked
        if t is None:
            found.append(
                Finding(
                    code=FindingCode.UNMATCHED_LINE,
                    severity=_BLOCK,
                    invoice_line_no=ln.line_no,
                    po_line_no=no,
                    detail=(
                        "the line names no PO line"
                        if no is None
                        else f"PO {po.label} has no line {no}"
                    ),
                )
            )
            tax_known = False
            results.append(
                _settle(
                    ln.line_no,
                    no,
                    None,
                    amount,
                    rounded,
                    tuple(found[start:]),
                    blocking,
                    overrides,
                    invoice_id,
                    policy,
                    credit,
                    cur,
                )
            )
            continue
        assert no is not None  # a known PO line
        base = no * _STRIDE
        billed_key = base + _BILLED
        amount_key = base + _BILLED_AMOUNT
        billed = get(billed_key, _ZERO)
        billed_amount = get(amount_key, _ZERO)
        if plain:
            factor = _ONE
            qty = ln.quantity
            amount_po = amount
        else:
            factor = factors.get(ln.line_no, _ONE) if factors else _ONE
            qty = ln.quantity if factor is _ONE else ln.quantity * factor
            amount_po = amount if billing_rate is _ONE else amount * billing_rate
        if credit:
            _credit_checks(found, ln, t, billed, billed_amount, qty, amount_po, po_cur)
            ledger[billed_key] = billed - qty
            ledger[amount_key] = billed_amount - amount_po
        else:
            if rate is not None:
                price = ln.unit_price.amount
                if not plain:
                    if rate is not _ONE:
                        price = price * rate
                    if factor is not _ONE:
                        price = price / factor
                if ln.price_unit != t.price_unit:
                    price = price * t.price_unit / ln.price_unit
                if price != t.price:
                    _test(
                        found,
                        t.price_tol,
                        _CODE_PRICE,
                        t.price,
                        price,
                        po_cur,
                        value=price - t.price,
                        currency=po_cur,
                        inv_line=ln.line_no,
                        po_line=no,
                    )
                billed_after = billed + qty
                if t.needs_receipt:
                    beyond = (
                        billed_after - get(base + _RECEIVED, _ZERO) + get(base + _RETURNED, _ZERO)
                    )
                    if beyond > 0 or t.four_way or (beyond and t.received_lower):
                        _receipt_checks(found, t, ledger, billed_after, ln.line_no, po_cur)
                over = billed_after - t.quantity
                if over and (over > 0 or t.ordered_lower):
                    _test(
                        found,
                        t.ordered_tol,
                        _CODE_QUANTITY_ORDERED,
                        t.quantity,
                        billed_after,
                        t.uom,
                        value=over * t.per_unit,
                        quantity=over,
                        currency=po_cur,
                        inv_line=ln.line_no,
                        po_line=no,
                    )
                if t.amount_tol is not None:
                    _test(
                        found,
                        t.amount_tol,
                        _CODE_AMOUNT,
                        t.amount,
                        billed_amount + amount_po,
                        po_cur,
                        currency=po_cur,
                        inv_line=ln.line_no,
                        po_line=no,
                    )
                if (
                    t.date_tol is not None
                    and t.expected is not None
                    and invoice.invoice_date < t.expected
                ):
                    days = Decimal((t.expected - invoice.invoice_date).days)
                    _test(
                        found,
                        t.date_tol,
                        _CODE_DATE,
                        _ZERO,
                        days,
                        "days",
                        quantity=days,
                        inv_line=ln.line_no,
                        po_line=no,
                    )
            ledger[billed_key] = billed + qty
            ledger[amount_key] = billed_amount + amount_po
        if t.tax_rate:
            taxed += booked * t.tax_rate  # × rate %: divided by 100 once, below (exact)
        if len(found) == start:
            results.append(
                _tuple_new(
                    LineResult,
                    (
                        ln.line_no,
                        no,
                        t.level,
                        _MATCHED,
                        amount,
                        _ZERO if credit else rounded,
                        cur,
                        (),
                    ),
                )
            )
        else:
            results.append(
                _settle(
                    ln.line_no,
                    no,
                    t.level,
                    amount,
                    rounded,
                    tuple(found[start:]),
                    blocking,
                    overrides,
                    invoice_id,
                    policy,
                    credit,
                    cur,
                )
            )

    if invoice.charges:
        if not credit and rate is not None:
            _charges(header, invoice, terms, ledger, terms.charges_tol, rate)
        sign = -billing_rate if credit else billing_rate
        charges_total = _ZERO
        for charge in invoice.charges:
            value = charge.amount.amount
            charges_total += value
            _add(ledger, charge.code, sign * value)
    else:
        charges_total = _ZERO
    tax_check = terms.tax_tol
    if tax_check is not None and tax_known:
        tax = invoice.tax.amount if invoice.tax is not None else None
        if tax is None and any(ln.tax is not None for ln in invoice.lines):
            tax = sum((ln.tax.amount for ln in invoice.lines if ln.tax is not None), _ZERO)
        if tax is not None or taxed:
            expected_tax = rounded_to(taxed / _HUNDRED, exponent)
            _test(header, tax_check, _CODE_TAX, expected_tax, tax or _ZERO, cur, currency=cur)
    total = invoice.total.amount
    computed = net_total + charges_total
    if invoice.tax is not None:
        computed += invoice.tax.amount
    if total != computed:
        diff = total - computed
        if abs(diff) <= policy.small_difference:
            header.append(
                Finding(
                    code=_CODE_HEADER_TOTAL,
                    severity=_INFO,
                    expected=computed,
                    actual=total,
                    unit=cur,
                    variance=diff,
                    variance_percent=_pct(diff, computed),
                    limit=f"{policy.small_difference:f}",
                    rule="small difference",
                    detail=(
                        f"stated total differs from lines + charges + tax by "
                        f"{diff:f} {cur}, within the small-difference allowance"
                    ),
                )
            )
        else:
            _test(
                header,
                terms.total_tol,
                _CODE_HEADER_TOTAL,
                computed,
                total,
                cur,
                currency=cur,
            )
    return _conclude(invoice, po, results, blocking, header, overrides, policy, rounded_to)


_RECEIPT_CODES = (_CODE_QUANTITY_RECEIVED, _CODE_QUANTITY_ACCEPTED)


def _receipt_checks(
    findings: list[Finding],
    t: _LineTerms,
    ledger: _Ledger,
    billed_after: Decimal,
    inv_line: int,
    po_cur: str,
) -> None:
    """The checks that depend on receipts: billed vs received (3-way) and vs accepted (4-way).

    An excess is *awaiting receipt* while the billed quantity is within the order (the goods may
    still come); beyond the order it is over-billing.
    """
    base = t.line_no * _STRIDE
    get = ledger.get
    returned = get(base + _RETURNED, _ZERO)
    over = billed_after - (get(base + _RECEIVED, _ZERO) - returned)
    if over and (over > 0 or t.received_lower):
        _test(
            findings,
            t.received_tol,
            _CODE_QUANTITY_RECEIVED,
            billed_after - over,
            billed_after,
            t.uom,
            value=over * t.per_unit,
            quantity=over,
            currency=po_cur,
            inv_line=inv_line,
            po_line=t.line_no,
            awaiting=over > 0 and billed_after <= t.quantity,
        )
    if t.four_way:
        # Accepted after inspection, less returns beyond what was rejected.
        rejected = get(base + _REJECTED, _ZERO)
        accepted = get(base + _ACCEPTED, _ZERO) - max(_ZERO, returned - rejected)
        if billed_after != accepted:
            over = billed_after - accepted
            _test(
                findings,
                t.accepted_tol,
                _CODE_QUANTITY_ACCEPTED,
                accepted,
                billed_after,
                t.uom,
                value=over * t.per_unit,
                quantity=over,
                currency=po_cur,
                inv_line=inv_line,
                po_line=t.line_no,
                awaiting=over > 0 and billed_after <= t.quantity,
            )


def _recheck(
    invoice: Invoice,
    previous: MatchResult,
    terms: _Terms,
    ledger: _Ledger,
    billed_before: Mapping[int, Decimal],
    policy: TolerancePolicy,
    uom: UomConverter | None,
) -> MatchResult:
    """``previous`` with its receipt-dependent findings computed anew (new goods arrived).

    Only quantities received and accepted change when goods arrive; every other finding of the
    first evaluation stands.  ``billed_before`` is what was billed per PO line before this
    invoice (later invoices do not count against it).
    """
    results: list[LineResult] = []
    blocking: list[Finding] = []
    own: dict[int, Decimal] = {}
    credit = invoice.kind is _CREDIT_MEMO
    cur = invoice.currency
    exponent = quantum(cur)
    rounded_to = _quantizer(policy.rounding)
    # The first evaluation gave one line result per invoice line, in the invoice's order.
    for lr, ln in zip(previous.lines, invoice.lines, strict=True):
        t = terms.lines.get(lr.po_line_no) if lr.po_line_no is not None else None
        if t is None or not t.needs_receipt or credit:
            results.append(lr)
            for f in lr.findings:
                if f.severity is _BLOCK:
                    blocking.append(f)
            continue
        # Findings keep the order the first evaluation gave: price, receipts, then the rest.
        kept: list[Finding] = []
        rest: list[Finding] = []
        for f in lr.findings:
            if f.code is _CODE_PRICE:
                kept.append(f)
            elif f.code not in _RECEIPT_CODES:
                rest.append(f)
        q = ln.quantity * (_factor(terms, t.line_no, ln.uom, uom) if ln.uom else _ONE)
        own[t.line_no] = own.get(t.line_no, _ZERO) + q
        _receipt_checks(
            kept,
            t,
            ledger,
            billed_before.get(t.line_no, _ZERO) + own[t.line_no],
            lr.invoice_line_no,
            terms.currency,
        )
        kept.extend(rest)
        results.append(
            _settle(
                lr.invoice_line_no,
                lr.po_line_no,
                lr.level,
                lr.amount,
                rounded_to(lr.amount, exponent),
                tuple(kept),
                blocking,
                (),
                invoice.id,
                policy,
                credit,
                cur,
            )
        )
    return _conclude(
        invoice, terms.po, results, blocking, list(previous.header), (), policy, rounded_to
    )


def _credit_checks(
    findings: list[Finding],
    ln: InvoiceLine,
    t: _LineTerms,
    billed: Decimal,
    billed_amount: Decimal,
    qty: Decimal,
    amount_po: Decimal,
    po_cur: str,
) -> None:
    """A credit memo may not credit more than was invoiced (net of earlier credits):
    ``billed`` and ``billed_amount`` are the PO line's so far."""
    if qty > billed:
        findings.append(
            Finding(
                code=FindingCode.OVER_CREDIT,
                severity=_BLOCK,
                invoice_line_no=ln.line_no,
                po_line_no=t.line_no,
                expected=billed,
                actual=qty,
                unit=t.uom,
                variance=qty - billed,
                detail=(
                    f"credits {qty.normalize():f} {t.uom} but only "
                    f"{billed.normalize():f} is invoiced and not yet credited"
                ),
            )
        )
    elif amount_po > billed_amount:
        findings.append(
            Finding(
                code=FindingCode.OVER_CREDIT,
                severity=_BLOCK,
                invoice_line_no=ln.line_no,
                po_line_no=t.line_no,
                expected=billed_amount,
                actual=amount_po,
                unit=po_cur,
                variance=amount_po - billed_amount,
                detail=(
                    f"credits {amount_po:f} {po_cur} but only {billed_amount:f} {po_cur} is "
                    "invoiced and not yet credited"
                ),
            )
        )


def _charges(
    header: list[Finding],
    invoice: Invoice,
    terms: _Terms,
    ledger: _Ledger,
    gate: _Gate | None,
    rate: Decimal,
) -> None:
    """Charges billed so far per charge code (this invoice's included) against those agreed."""
    billed: dict[str, Decimal] = {}
    for charge in invoice.charges:
        billed[charge.code] = billed.get(charge.code, _ZERO) + charge.amount.amount * rate
    cur = terms.currency
    for code in sorted(billed) if len(billed) > 1 else billed:
        before = len(header)
        agreed = terms.charges.get(code, _ZERO)
        after = ledger.get(code, _ZERO) + billed[code]
        _test(header, gate, _CODE_CHARGES, agreed, after, cur, currency=cur)
        if len(header) > before:
            f = header[-1]
            pct = (
                f" ({f.variance_percent:+.2f} %)"
                if f.variance_percent is not None
                else " (none agreed)"
            )
            header[-1] = f._replace(
                detail=(
                    f"{code} charges {after:f} {cur} so far against {agreed:f} {cur} agreed{pct}"
                ),
            )


def _currency_finding(
    invoice: Invoice, po: PurchaseOrder, rate: Decimal | None, rates: ExchangeRates | None
) -> Finding:
    if rate is None:
        return Finding(
            code=_CODE_CURRENCY,
            severity=_BLOCK,
            unit=invoice.currency,
            detail=(
                f"the invoice is in {invoice.currency}, the PO in {po.currency}, and "
                "no exchange rate is given, so nothing can be compared"
            ),
        )
    detail = (
        f"the invoice is in {invoice.currency}, the PO in {po.currency}; compared at "
        f"{rate:f} {po.currency} per {invoice.currency}"
    )
    variance = None
    value = None
    if rates is not None:
        reference = rates.rate(invoice.currency, po.currency, po.created_at.date())
        variance = rate - reference
        total = invoice.total.amount
        value = total * variance
        detail += (
            f"; at the PO date's rate {reference:f} the total would be "
            f"{total * reference:f} {po.currency} (rate variance {total * variance:f} "
            f"{po.currency})"
        )
    return Finding(
        code=_CODE_CURRENCY,
        severity=_INFO,
        unit=po.currency,
        expected=None,
        actual=rate,
        variance=variance,
        value=value,
        currency=po.currency if value is not None else "",
        detail=detail,
    )


def _duplicates(invoice: Invoice, others: Iterable[Invoice]) -> list[Finding]:
    if invoice.kind is _CREDIT_MEMO:
        return []
    number = None
    found = []
    for other in others:
        if (
            other.id == invoice.id
            or other.supplier_id != invoice.supplier_id
            or other.kind is _CREDIT_MEMO
        ):
            continue
        if number is None and invoice.number:
            number = normalize_invoice_number(invoice.number)
        if number is not None and other.number and normalize_invoice_number(other.number) == number:
            found.append(
                Finding(
                    code=FindingCode.DUPLICATE,
                    severity=_BLOCK,
                    detail=(
                        f"invoice number {invoice.number!r} duplicates "
                        f"{other.number!r} of {other.id} from the same supplier"
                    ),
                )
            )
        elif (
            (not invoice.number or not other.number)
            and other.invoice_date == invoice.invoice_date
            and other.total == invoice.total
        ):
            found.append(
                Finding(
                    code=FindingCode.DUPLICATE,
                    severity=_BLOCK,
                    detail=(
                        f"same supplier, date {invoice.invoice_date.isoformat()} "
                        f"and total {invoice.total.amount:f} "
                        f"{invoice.currency} as {other.id}"
                    ),
                )
            )
    return found


def _only_waiting(blocking: Sequence[Finding]) -> bool:
    for f in blocking:
        if not f.awaiting_receipt:
            return False
    return bool(blocking)


def _status(
    findings: Sequence[Finding], policy: TolerancePolicy, collect: list[Finding] | None = None
) -> InvoiceStatus:
    """The status the findings give; blocking findings are added to ``collect`` when given."""
    if not findings:
        return _MATCHED
    blocking = waiting = 0
    only_currency = True
    for f in findings:
        severity = f.severity
        if severity is _BLOCK:
            if collect is not None:
                collect.append(f)
            blocking += 1
            if f.awaiting_receipt:
                waiting += 1
        if only_currency and (f.code is not _CODE_CURRENCY or severity is not _INFO):
            only_currency = False
    if blocking:
        if policy.before_receipt == "park" and waiting == blocking:
            return _AWAITING
        return _HELD
    return _MATCHED if only_currency else _WITHIN


def _apply_overrides(
    findings: tuple[Finding, ...], overrides: tuple[Override, ...], invoice_id: str
) -> tuple[Finding, ...]:
    if not overrides or not findings:
        return findings
    out = []
    for f in findings:
        if f.severity is _BLOCK:
            for o in overrides:
                if o.invoice_id == invoice_id and o.covers(f):
                    f = f._replace(severity=_WARN, override=o)
                    break
        out.append(f)
    return tuple(out)


def _settle(
    line_no: int,
    po_line_no: int | None,
    level: MatchLevel | None,
    amount: Decimal,
    rounded: Decimal,
    findings: tuple[Finding, ...],
    blocking: list[Finding],
    overrides: tuple[Override, ...],
    invoice_id: str,
    policy: TolerancePolicy,
    credit: bool,
    currency: str,
) -> LineResult:
    """A line with findings: overrides applied, its status, what may be paid for it (its
    ``rounded`` amount when it matches); its blocking findings are added to ``blocking``."""
    if overrides:
        findings = _apply_overrides(findings, overrides, invoice_id)
    status = _status(findings, policy, blocking)
    payable = rounded if not credit and status in _OK else _ZERO
    return _tuple_new(
        LineResult, (line_no, po_line_no, level, status, amount, payable, currency, findings)
    )


def _conclude(
    invoice: Invoice,
    po: PurchaseOrder,
    lines: list[LineResult],
    blocking: list[Finding],
    header: list[Finding],
    overrides: tuple[Override, ...],
    policy: TolerancePolicy,
    rounded_to: Any,
) -> MatchResult:
    """The invoice's status and what may be paid now, from its settled lines and header findings
    (``rounded_to`` is the policy rounding's quantizer)."""
    cur = invoice.currency
    is_invoice = invoice.kind is _INVOICE
    header_findings = tuple(header)
    only_currency = True
    for lr in lines:
        if lr.findings:
            only_currency = False
            break
    if header_findings:
        if overrides:
            header_findings = _apply_overrides(header_findings, overrides, invoice.id)
        for f in header_findings:
            if f.severity is _BLOCK:
                blocking.append(f)
            if f.code is not _CODE_CURRENCY or f.severity is not _INFO:
                only_currency = False
    if blocking:
        status = _AWAITING if policy.before_receipt == "park" and _only_waiting(blocking) else _HELD
    elif only_currency:
        status = _MATCHED
    else:
        status = _WITHIN
    total = invoice.total.amount
    if not is_invoice:
        payable_value = _ZERO  # a credit memo is not paid; it reduces what is owed
    elif status in _OK:
        payable_value = total
    elif policy.partial_payment and not any(f.severity is _BLOCK for f in header_findings):
        payable_value = min(sum((lr.payable for lr in lines), _ZERO), total)
    else:
        payable_value = _ZERO
    payable_value = rounded_to(payable_value, quantum(cur))
    if payable_value == total:
        pay_now, held = invoice.total, _zero_money(cur)
    elif not payable_value:
        pay_now, held = _zero_money(cur), invoice.total
    else:
        pay_now, held = Money(payable_value, cur), Money(total - payable_value, cur)
    return _tuple_new(
        MatchResult,
        (
            invoice.id,
            po.id,
            invoice.kind,
            status,
            invoice.total,
            pay_now,
            held,
            tuple(lines),
            header_findings,
            policy.name,
        ),
    )


_ZEROS: dict[str, Money] = {}


def _zero_money(currency: str) -> Money:
    """Zero in ``currency``, rounded to its precision (cached: Money values are not mutated)."""
    found = _ZEROS.get(currency)
    if found is None:
        found = _ZEROS[currency] = Money(
            round_amount(_ZERO, currency, Rounding.HALF_EVEN), currency
        )
    return found


# -- batch -------------------------------------------------------------------------------------------------


def _waits_for_goods(result: MatchResult) -> bool:
    """Whether a quantity received or accepted blocks the result (new goods may change it)."""
    for line in result.lines:
        for f in line.findings:
            if f.severity is _BLOCK and f.code in _RECEIPT_CODES:
                return True
    return False


class _Waiting(NamedTuple):
    """An invoice waiting for goods: its last result and what was billed before it."""

    invoice: Invoice
    result: MatchResult
    billed_before: Mapping[int, Decimal]


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
        cache: how many POs' terms to keep.
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
        self.purchase_orders = purchase_orders
        self.policy = policy or TolerancePolicy()
        self.suppliers = suppliers or {}
        self.uom = uom
        self.rates = rates
        self._cache_size = cache
        self._terms: OrderedDict[str, _Terms] = OrderedDict()
        self._ledgers: dict[str, _Ledger] = {}
        self._waiting: dict[str, dict[str, _Waiting]] = {}
        self._numbers: dict[tuple[str, str], tuple[str, str]] = {}
        self._by_date_amount: dict[tuple[str, date, Money], str] = {}
        self.matched_lines = 0

    def _terms_of(self, po_id: str) -> _Terms:
        cache = self._terms
        terms = cache.get(po_id)
        if terms is not None:
            return terms
        po = self.purchase_orders.get(po_id)
        if po is None:
            raise ValidationError("document", [Problem("po_id", f"unknown PO {po_id!r}")])
        terms = cache[po_id] = _terms(po, self.suppliers.get(po.supplier_id), self.policy)
        if len(cache) > self._cache_size:
            cache.popitem(last=False)  # the oldest: POs are busy in the weeks after they are made
        return terms

    def feed(self, document: GoodsReceipt | GoodsReturn | Invoice) -> list[MatchResult]:
        """Take one document; return the match results it produces: one for an invoice, one per
        invoice it releases (or leaves waiting) for a receipt, none for a return.

        Raises:
            ValidationError: a document names an unknown PO, or an invoice names none; or a
                quantity is in a unit without a conversion factor (nothing is changed then).
            TypeError: not a receipt, return or invoice.
        """
        if isinstance(document, Invoice):
            po_id = document.po_id
            if po_id is None:
                raise ValidationError("invoice", [Problem("po_id", f"{document.id} names no PO")])
            ledger = self._ledgers.get(po_id)
            if ledger is None:
                ledger = self._ledgers[po_id] = {}
            return [self._match(document, self._terms_of(po_id), ledger, None)]
        if isinstance(document, GoodsReceipt):
            po_id = document.po_id
            terms = self._terms_of(po_id)
            ledger = self._ledgers.get(po_id)
            if ledger is None:
                ledger = self._ledgers[po_id] = {}
            _receive(ledger, document, terms, self.uom)
            waiting = self._waiting.pop(po_id, None)
            if not waiting:
                return []
            return [self._match(e.invoice, terms, ledger, e) for e in waiting.values()]
        if isinstance(document, GoodsReturn):
            self._terms_of(document.po_id)  # the PO must be known
            _give_back(self._ledgers.setdefault(document.po_id, {}), document)
            return []
        raise TypeError(f"expected a receipt, return or invoice, got {type(document).__name__}")

    def _match(
        self, invoice: Invoice, terms: _Terms, ledger: _Ledger, waiting: _Waiting | None
    ) -> MatchResult:
        po_id = terms.po.id
        self.matched_lines += len(invoice.lines)
        if waiting is not None:
            result = _recheck(
                invoice, waiting.result, terms, ledger, waiting.billed_before, self.policy, self.uom
            )
            if result.status is not _MATCHED and _waits_for_goods(result):
                self._waiting.setdefault(po_id, {})[invoice.id] = _Waiting(
                    invoice, result, waiting.billed_before
                )
            return result
        # Duplicates: the first invoice of the supplier with the same number — or, without
        # a number, the same date and amount.  Only its id and number are kept.
        numbered = unnumbered = None
        first: Invoice | None = None
        if invoice.kind is not _CREDIT_MEMO:
            if invoice.number:
                numbered = (invoice.supplier_id, normalize_invoice_number(invoice.number))
                seen = self._numbers.get(numbered)
                if seen is not None:
                    first = rebuild(invoice, {"id": InvoiceId(seen[0]), "number": seen[1]})
            else:
                unnumbered = (invoice.supplier_id, invoice.invoice_date, invoice.total)
                seen_id = self._by_date_amount.get(unnumbered)
                if seen_id is not None:
                    first = rebuild(invoice, {"id": InvoiceId(seen_id)})
        result = _evaluate(
            invoice,
            terms,
            ledger,
            self.policy,
            (),
            self.uom,
            self.rates,
            () if first is None else (first,),
        )
        if result.status is not _MATCHED and _waits_for_goods(result):
            # Held on quantities received: match it again when a receipt for the PO arrives,
            # against what was billed before it (later invoices do not count against it).
            self._waiting.setdefault(po_id, {})[invoice.id] = _Waiting(
                invoice, result, self._billed_before(invoice, terms, ledger)
            )
        if first is None:  # remembered once matched: an invoice refused changes nothing
            if numbered is not None:
                self._numbers[numbered] = (invoice.id, invoice.number or "")
            elif unnumbered is not None:
                self._by_date_amount[unnumbered] = invoice.id
        return result

    def _billed_before(
        self, invoice: Invoice, terms: _Terms, ledger: _Ledger
    ) -> dict[int, Decimal]:
        """What was billed per PO line before ``invoice`` (which the ledger holds already)."""
        own: dict[int, Decimal] = {}
        for ln in invoice.lines:
            no = ln.po_line_no
            if no is not None and no in terms.lines:
                factor = _factor(terms, no, ln.uom, self.uom) if ln.uom is not None else _ONE
                own[no] = own.get(no, _ZERO) + ln.quantity * factor
        return {no: ledger[no * _STRIDE + _BILLED] - quantity for no, quantity in own.items()}

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
            if result.status in (_MATCHED, _WITHIN):
                released += 1
            continue
        seen.add(result.invoice_id)
        if result.kind is _CREDIT_MEMO:
            continue
        invoices += 1
        lines += len(result.lines)
        line_first += sum(1 for lr in result.lines if lr.status in (_MATCHED, _WITHIN))
        if result.first_pass:
            first += 1
        elif result.status is _AWAITING:
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
