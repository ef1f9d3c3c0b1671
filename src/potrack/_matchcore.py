"""The matching engine behind :mod:`potrack.matching`: PO terms, the cumulative ledger, the checks,
and the batch state.

Private: the public API (and its documentation) is :mod:`potrack.matching`.  This module is kept
apart so that it can be compiled: when the build finds a C compiler it compiles this module with
mypyc (1.3–1.6 times as fast; see ``docs/benchmarks.md``), and otherwise installs it as plain
Python.  Both behave the same; :func:`potrack.matching.engine` says which one is running.
"""

from __future__ import annotations

import decimal
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs
from moneyed import Money

from potrack import records as _records
from potrack._fast import rebuild
from potrack.exceptions import DuplicateError, NotFoundError, Problem, ValidationError
from potrack.matching import (
    Check,
    Finding,
    FindingCode,
    Limit,
    LineResult,
    MatchResult,
    Override,
    Severity,
    SmallDifference,
    Tolerance,
    TolerancePolicy,
    _default_tolerances,
)
from potrack.money import Rounding, quantum, round_amount
from potrack.records import (
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
    Supplier,
)
from potrack.typing import ExchangeRates, UomConverter

_ZERO: Final = Decimal(0)
# The records' own 1, their default price unit: a price unit that *is* it needs no comparison
# (a Decimal comparison is a Python call; an identity test is a pointer comparison).
_ONE: Final[Decimal] = _records._ONE
_HUNDRED: Final = Decimal(100)
_CENT: Final = Decimal("0.01")  # × 0.01 is ÷ 100, exactly, and cheaper


# -- what a PO asks: its terms, resolved once per PO ----------------------------------------------------


class _LineChecks:
    """The gates a PO line's checks use, resolved for one scope (item, supplier, category).

    Shared by every line of that scope: built once per scope, not per line.
    """

    __slots__ = (
        "accepted_tol",
        "amount_tol",
        "date_tol",
        "off",
        "ordered_lower",
        "ordered_tol",
        "price_tol",
        "received_lower",
        "received_tol",
    )

    def __init__(self, found: dict[Check, _Gate], off: frozenset[Check] = frozenset()) -> None:
        self.off = off
        """The checks turned off for the scope."""
        self.price_tol = found.get(Check.UNIT_PRICE)
        received = self.received_tol = found.get(Check.QUANTITY_RECEIVED)
        ordered = self.ordered_tol = found.get(Check.QUANTITY_ORDERED)
        self.accepted_tol = found.get(Check.QUANTITY_ACCEPTED)
        self.amount_tol = found.get(Check.LINE_AMOUNT)
        self.date_tol = found.get(Check.DATE)
        self.received_lower = received is not None and received.lower is not None
        """Whether billing less than received is checked at all (usually not)."""
        self.ordered_lower = ordered is not None and ordered.lower is not None
        """Whether billing less than ordered is checked at all (usually not)."""


class _LineTerms:
    """One PO line's terms as matching reads them, with its resolved level and gates.

    A plain class with slots: compiled, its construction and attribute reads are native (a
    NamedTuple costs about 1,700 instructions to build through ``tuple.__new__``); in Python,
    slot reads are as fast as a NamedTuple's and building one costs about the same.
    """

    __slots__ = (
        "base",
        "checks",
        "four_way",
        "level",
        "line",
        "line_no",
        "needs_receipt",
        "price",
        "price_places",
        "price_unit",
        "quantity",
        "quantity_places",
        "tax_rate",
        "uom",
    )

    def __init__(self, line: PurchaseOrderLine, level: MatchLevel, checks: _LineChecks) -> None:
        self.set(line, level, checks)

    def set(self, line: PurchaseOrderLine, level: MatchLevel, checks: _LineChecks) -> None:
        """(Re)fill the line's terms: a recycled object is set as a new one is built."""
        self.line = line
        line_no = self.line_no = line.line_no
        self.price = line.unit_price.amount
        self.price_unit = line.price_unit
        self.quantity = line.quantity
        self.uom = line.uom
        self.tax_rate = line.tax_rate
        self.price_places: Decimal | None = None
        """The quantum of the PO price's decimals (see :func:`_places`), once needed."""
        self.quantity_places: Decimal | None = None
        """The same for the quantity."""
        self.level = level
        self.needs_receipt = level is not _TWO_WAY and line.line_type is not _SERVICE
        self.four_way = level is _FOUR_WAY
        self.checks = checks
        self.base = line_no * _LINE
        """Where the line's numbers start in its PO's ledger (see ``_Terms.slot``)."""

    @property
    def per_unit(self) -> Decimal:
        """The PO price of one unit (the price divided by the price unit)."""
        unit = self.price_unit
        return self.price if unit is _ONE or unit == _ONE else self.price / unit

    @property
    def amount(self) -> Decimal:
        """The PO line's net amount."""
        return self.quantity * self.per_unit

    @property
    def expected(self) -> date | None:
        """When the goods are expected: the promised date, else the requested one."""
        return self.line.promised_date or self.line.requested_date


_tuple_new: Final = tuple.__new__
_QUANTA: Final[dict[str, Decimal]] = {}


def _quantum(currency: str) -> Decimal:
    """:func:`potrack.money.quantum`, kept in a plain dict (a compiled lookup; calling the
    ``lru_cache`` wrapper is a generic Python call).  Raises as it does for an unknown code."""
    found = _QUANTA.get(currency)
    if found is None:
        found = _QUANTA[currency] = quantum(currency)
    return found


_QUANTIZERS: Final[dict[str, Any]] = {}


def _quantizer(rounding: Rounding) -> Any:
    """``Context.quantize`` of a private context with ``rounding`` (twice as fast as
    ``Decimal.quantize(..., rounding=...)``, and independent of the thread's context)."""
    mode = rounding._value_  # .value is a Python property; _value_ a plain attribute
    found = _QUANTIZERS.get(mode)
    if found is None:
        found = _QUANTIZERS[mode] = decimal.Context(prec=34, rounding=mode).quantize
    return found


_EVEN: Final = _quantizer(Rounding.HALF_EVEN)
"""How checks round what the supplier books (whatever the policy rounds payables with)."""
_UP: Final = _quantizer(Rounding.HALF_UP)
_FOUR_WAY: Final = MatchLevel.FOUR_WAY
_TWO_WAY: Final = MatchLevel.TWO_WAY
_SERVICE: Final = LineType.SERVICE
_CREDIT_MEMO: Final = InvoiceKind.CREDIT_MEMO
_INVOICE: Final = InvoiceKind.INVOICE
_SUB_DEBIT: Final = InvoiceKind.SUBSEQUENT_DEBIT
_SUB_CREDIT: Final = InvoiceKind.SUBSEQUENT_CREDIT
_BLOCK: Final = Severity.BLOCK
_WARN: Final = Severity.WARN
_INFO: Final = Severity.INFO
_MATCHED: Final = InvoiceStatus.MATCHED
_WITHIN: Final = InvoiceStatus.MATCHED_WITHIN_TOLERANCE
_HELD: Final = InvoiceStatus.HELD
_AWAITING: Final = InvoiceStatus.AWAITING_RECEIPT
_CODE_PRICE: Final = FindingCode.PRICE
_CODE_QUANTITY_ORDERED: Final = FindingCode.QUANTITY_ORDERED
_CODE_AMOUNT: Final = FindingCode.AMOUNT
_CODE_DATE: Final = FindingCode.DATE
_CODE_QUANTITY_RECEIVED: Final = FindingCode.QUANTITY_RECEIVED
_CODE_QUANTITY_ACCEPTED: Final = FindingCode.QUANTITY_ACCEPTED
_CODE_CURRENCY: Final = FindingCode.CURRENCY
_CODE_TAX: Final = FindingCode.TAX
_CODE_HEADER_TOTAL: Final = FindingCode.HEADER_TOTAL
_CODE_CHARGES: Final = FindingCode.CHARGES


class _Terms:
    """A PO's terms as matching needs them, built once per PO."""

    __slots__ = (
        "charges",
        "charges_tol",
        "checks_off",
        "currency",
        "ledger_no",
        "lines",
        "po",
        "po_id",
        "rules",
        "slot",
        "supplier_id",
        "tax_tol",
        "total_tol",
    )

    def __init__(self, po: PurchaseOrder, lines: dict[int, _LineTerms], rules: _Resolver) -> None:
        self.set(po, lines, rules)

    def set(self, po: PurchaseOrder, lines: dict[int, _LineTerms], rules: _Resolver) -> None:
        """(Re)fill the PO's terms: a recycled object is set as a new one is built."""
        self.po = po
        self.po_id: str = po.id
        supplier_id = self.supplier_id = po.supplier_id
        self.currency: str = po.currency
        self.rules = rules
        """The policy's resolved tolerances and settings (terms are built for one policy)."""
        self.lines = lines
        if po.charges:
            agreed: dict[str, Decimal] = {}
            for charge in po.charges:
                agreed[charge.code] = agreed.get(charge.code, _ZERO) + charge.amount.amount
        else:
            agreed = _NO_CHARGES
        self.charges = agreed
        """Agreed charges per charge code."""
        self.charges_tol, self.tax_tol, self.total_tol = rules.header_checks(supplier_id)
        self.checks_off: tuple[str, ...] = rules.checks_off(supplier_id, lines) if rules.off else ()
        """The checks off for the PO's lines or its invoices' headers (reported in results)."""
        self.slot = 0
        """Which of its ledger's POs this is (0 for a ledger of its own)."""
        self.ledger_no = 0
        """Which of the batch matcher's ledgers holds the PO."""

    def place(self, place: int) -> None:
        """Put the PO in the batch matcher's ``place``-th ledger slot (eight to a ledger)."""
        self.ledger_no = place // _SLOTS  # (not divmod: compiled, a generic call and a tuple)
        slot = place % _SLOTS
        if slot != self.slot:
            self.slot = slot
            for t in self.lines.values():
                t.base = t.line_no * _LINE + slot


def _terms(
    po: PurchaseOrder,
    supplier: Supplier | None,
    resolver: _Resolver,
    spare: _Terms | None = None,
    pool: list[_LineTerms] | None = None,
) -> _Terms:
    """The terms of ``po``: each line's price, quantity, level and resolved tolerances.

    ``spare``: terms no longer needed (evicted from the batch matcher's cache), whose objects
    are filled anew rather than new ones allocated; ``pool``: line terms to fill likewise
    (those of ``spare`` join it, what is left stays for the next PO).  A batch loads terms for a
    new PO about every other invoice line while the oldest are dropped.  Freed and allocated in
    step, they never set off the garbage collector; but new objects are in its youngest
    generation when it runs, and they made up two thirds of what each young collection scanned.
    """
    default = (
        po.match_level
        or (supplier.match_level if supplier is not None else None)
        or resolver.default_level
    )
    supplier_id = po.supplier_id
    scoped = bool(resolver.ordered)  # rules by item, supplier or category
    checks = resolver.default_checks
    old: list[_LineTerms] = [] if pool is None else pool
    if spare is None:
        lines: dict[int, _LineTerms] = {}
    else:
        lines = spare.lines
        for t in lines.values():  # (a compiled loop: list.extend of a view is a generic call)
            old.append(t)
        lines.clear()
    for ln in po.lines:
        level = ln.match_level or default
        if scoped:  # (a method call, not a bound method kept: compiled, that is native)
            checks = resolver.line_checks(ln.item, supplier_id, ln.category)
        if old:
            t = old.pop()
            t.set(ln, level, checks)
        else:
            t = _LineTerms(ln, level, checks)
        lines[t.line_no] = t
    if len(old) > _POOL:
        del old[_POOL:]
    if spare is None:
        return _Terms(po, lines, resolver)
    spare.set(po, lines, resolver)
    return spare


_POOL: Final = 64  # line terms kept for the next POs' lines, at most
_NO_CHARGES: Final[dict[str, Decimal]] = {}  # shared by POs without charges: never mutated


# -- the ledger: cumulative quantities per PO line ---------------------------------------------------------


# A ledger holds what is known of up to ``_SLOTS`` POs as one plain dict of numbers: per PO line,
# its cumulative quantities and amount (PO unit of measure and currency) under the keys
# ``line_no * _LINE + field + slot``, where ``slot`` (0 to 7) tells the POs apart; per charge code,
# the charges billed so far under ``_charge_key(slot, code)``.  Missing keys are zero.
#
# A dict holding nothing but numbers is never tracked by the garbage collector, and the keys of
# lines 1 to 3 are Python's cached small integers.  The batch matcher keeps its POs' ledgers for
# the whole run: as objects (an object per PO line) a run of a million invoice lines left 1.4
# million objects for every full collection to scan again.  As a dict per PO, each new PO was
# one more object allocated while matching — most of what set off the collector inside the
# batch.  Eight POs share a dict: over 300,000 lines the young collections inside matching fell
# from 217 to 89.
_Ledger = dict[int | str, Decimal]
_K = TypeVar("_K", int | str, str)  # a ledger's keys, or a charge code's
_SLOTS: Final = 8  # POs per ledger
_RECEIVED: Final = 0
_RETURNED: Final = 1 * _SLOTS
_ACCEPTED: Final = 2 * _SLOTS
_REJECTED: Final = 3 * _SLOTS
_BILLED: Final = 4 * _SLOTS
_BILLED_AMOUNT: Final = 5 * _SLOTS
_LINE: Final = 8 * _SLOTS  # keys per PO line (line numbers are ≥ 1, so lines never share a key)


def _charge_key(slot: int, code: str) -> str:
    """The ledger key of a charge code's amount billed so far."""
    return f"{slot}\x1f{code}"


def _add(ledger: dict[_K, Decimal], key: _K, amount: Decimal) -> None:
    """Add ``amount`` to the number under ``key``; a missing number is zero, so ``amount`` itself
    is kept (a Decimal addition is a Python call: the first of each number is not one)."""
    so_far = ledger.get(key)
    ledger[key] = amount if so_far is None else so_far + amount


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
    slot = terms.slot
    lines = terms.lines
    for i, rl in enumerate(receipt.lines):
        factor = _ONE if factors is None else factors[i]
        t = lines.get(rl.line_no) if factor is not _ONE else None
        base = rl.line_no * _LINE + slot
        received = rl.received
        _add(ledger, base + _RECEIVED, received if t is None else _in_units(received, factor, t))
        rejected = rl.rejected
        if rejected:
            _add(
                ledger, base + _REJECTED, rejected if t is None else _in_units(rejected, factor, t)
            )
        # Uninspected goods count for 3-way; 4-way waits for the inspection.
        accepted = rl.accepted
        if accepted is not None:
            _add(
                ledger, base + _ACCEPTED, accepted if t is None else _in_units(accepted, factor, t)
            )


def _give_back(ledger: _Ledger, ret: GoodsReturn, terms: _Terms) -> None:
    slot = terms.slot
    for rl in ret.lines:
        _add(ledger, rl.line_no * _LINE + slot + _RETURNED, rl.quantity)


def _bill(
    ledger: _Ledger,
    invoice: Invoice,
    terms: _Terms,
    uom: UomConverter | None,
    credited_rate: Decimal | None = None,
) -> None:
    """Add an invoice (or subtract a credit memo) to the cumulative state, as :func:`_evaluate`
    bills it: amounts converted with the invoice's rate only when its currency is not the PO's
    (a rate on an invoice in the PO's currency means nothing) — a memo's at ``credited_rate``,
    the rate of the invoice it credits, when known."""
    kind = invoice.kind
    sign = -1 if kind is _CREDIT_MEMO or kind is _SUB_CREDIT else 1
    subsequent = kind is _SUB_DEBIT or kind is _SUB_CREDIT  # the amount only
    rate = _billing_rate(invoice, terms, credited_rate)
    known = terms.lines
    for ln in invoice.lines:
        no = ln.po_line_no
        if no is None or no not in known:
            continue
        quantity = ln.quantity
        if ln.uom is not None:
            factor = _factor(terms, no, ln.uom, uom)
            if factor is not _ONE:
                quantity = _in_units(quantity, factor, known[no])
        amount = _net(ln) if rate is _ONE else _net(ln) * rate
        base = known[no].base
        if not subsequent:
            _add(ledger, base + _BILLED, quantity * sign)
        _add(ledger, base + _BILLED_AMOUNT, amount * sign)
    for charge in invoice.charges:
        _add(ledger, _charge_key(terms.slot, charge.code), sign * charge.amount.amount * rate)


def _billing_rate(invoice: Invoice, terms: _Terms, credited_rate: Decimal | None = None) -> Decimal:
    """What one unit of the invoice's currency is billed as in the PO's: its rate when the
    currencies differ and it has one (a memo: the rate of the invoice it credits, when known),
    else 1 (as :func:`_evaluate` bills)."""
    if invoice.currency == terms.currency:
        return _ONE
    if credited_rate is not None and invoice.kind is _CREDIT_MEMO:
        return credited_rate
    return invoice.exchange_rate or _ONE


def _rates_of(invoices: Iterable[Invoice], po_currency: str) -> dict[str, Decimal]:
    """The exchange rates of the invoices in another currency than the PO's, by id (what a
    memo crediting one of them reverses at)."""
    return {
        inv.id: inv.exchange_rate
        for inv in invoices
        if inv.exchange_rate is not None and inv.kind is _INVOICE and inv.currency != po_currency
    }


def _credited(invoice: Invoice, rate_of: dict[str, Decimal]) -> Decimal | None:
    """The rate of the invoice a memo credits (None: not a memo, or the invoice's rate is not
    known)."""
    credits = invoice.credits
    if credits is None or not rate_of or invoice.kind is not _CREDIT_MEMO:
        return None
    return rate_of.get(credits)


def _net(ln: InvoiceLine) -> Decimal:
    if ln.amount is not None:
        return ln.amount.amount
    value = ln.quantity * ln.unit_price.amount
    unit = ln.price_unit
    return value if unit is _ONE or unit == _ONE else value / unit


def _places(value: Decimal) -> Decimal:
    """The quantum of the decimals ``value`` is written with (``100.000`` → ``0.001``; a whole
    number, written with an exponent or not, → ``1``)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # (a finite number: the records check it)
    return _ONE if exponent >= 0 else _ONE.scaleb(exponent)


def _price_places(t: _LineTerms) -> Decimal:
    """The quantum of the PO line's price decimals (worked out once per line's terms)."""
    places = t.price_places
    if places is None:
        places = t.price_places = _places(t.price)
    return places


def _at_stake(
    gate: _Gate | None, price: Decimal, quantity: Decimal, t: _LineTerms
) -> Decimal | None:
    """The money a price variance puts at stake on the line (``quantity`` × the variance ÷ the
    price unit) when the gate limits it per line (SAP's PP key); None when it limits the unit
    price, where the variance itself is compared."""
    if gate is None or not gate.per_line:
        return None
    stake = (price - t.price) * quantity
    if t.price_unit is not _ONE and t.price_unit != _ONE:
        stake = stake / t.price_unit
    return stake


def _in_units(quantity: Decimal, factor: Decimal, t: _LineTerms) -> Decimal:
    """``quantity`` of another unit in the PO line's unit (``factor`` of them each), at the
    precision the PO line states its quantity with: 220.46 LB is 100 KG on a line of 100 KG,
    not 99.9989738… (rounded half even)."""
    places = t.quantity_places
    if places is None:
        places = t.quantity_places = _places(t.quantity)
    converted: Decimal = _EVEN(quantity * factor, places)
    return converted


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


def breached(
    limit: Limit,
    both: bool,
    value: Decimal | None,
    percent: Decimal | None,
    quantity: Decimal | None,
) -> bool:
    """Whether magnitudes break a limit: each set measure holds or not; ``both`` needs every one
    to hold, otherwise one holding suffices (a limit with no measure set never breaks).  A
    measure that is None fails the limit on it (no expected value: no percent)."""
    return _Side(limit, False, both).breaks(value, percent, quantity)


def normalize_number(number: str) -> str:
    """:func:`potrack.matching.normalize_invoice_number`: upper case, ASCII letters and digits only,
    and each run of digits without its leading zeros (a run of zeros only keeps one).

    A number with other than ASCII characters is first normalized (NFKC: full-width and
    circled forms become plain ones) and its digits of any script folded to ASCII (``١٢٣`` is
    ``123``), so that look-alikes compare equal.

    One pass over the code points of the upper-cased number; what is kept is taken as slices of
    it between the characters dropped, not character by character (compiled, ``ord(s[i])``
    reads the code point in place, and ``S0087-0000024`` is three slices).  As fast as two
    regular-expression substitutions in Python, four times as fast compiled
    (``tests/test_matching.py`` checks it against the regex definition).
    """
    s = number.upper() if number.isascii() else _fold(number).upper()
    n = len(s)
    out: list[str] = []
    start = 0  # where the part being kept starts
    digits = False  # the last character kept was a digit
    leading = False  # ... and only zeros have been seen in its run so far
    zeros = False  # ... and there were some (dropped, one comes back if the run ends with them)
    i = 0
    while i < n:
        code = ord(s[i])
        if 48 <= code <= 57:  # 0-9
            if not digits:
                digits = leading = True
            if leading:
                if code == 48:
                    if i > start:
                        out.append(s[start:i])
                    start = i + 1
                    zeros = True
                    i += 1
                    continue
                leading = zeros = False
        elif 65 <= code <= 90:  # A-Z
            if leading and zeros:
                if i > start:
                    out.append(s[start:i])
                out.append("0")
                start = i
            digits = leading = zeros = False
        else:  # dropped
            if i > start:
                out.append(s[start:i])
            start = i + 1
        i += 1
    if start < n:
        out.append(s[start:n])
    if leading and zeros:
        out.append("0")
    return out[0] if len(out) == 1 else "".join(out)


def _fold(number: str) -> str:
    """``number`` in NFKC with every decimal digit, of any script, as its ASCII digit."""
    text = unicodedata.normalize("NFKC", number)
    out: list[str] = []
    for ch in text:
        digit = unicodedata.decimal(ch, -1) if not ch.isascii() else -1
        out.append(ch if digit < 0 else chr(48 + digit))
    return "".join(out)


class _Side:
    """One side of a resolved tolerance, laid out for the hot path: its limits as plain fields
    (compiled, reading them is native; reading a :class:`Limit`'s is a Python attribute lookup),
    whether a breach blocks, and the limits in words once a finding needs them."""

    __slots__ = ("amount", "blocks", "both", "limit", "percent", "quantity", "words")

    def __init__(self, limit: Limit, blocks: bool, both: bool) -> None:
        self.limit = limit
        self.amount = limit.amount
        self.percent = limit.percent
        self.quantity = limit.quantity
        self.blocks = blocks
        self.both = both
        self.words: str | None = None

    def text(self) -> str:
        """The limits in words, as findings give them."""
        found = self.words
        if found is None:
            found = self.words = self.limit.describe()
        return found

    def breaks(
        self, value: Decimal | None, percent: Decimal | None, quantity: Decimal | None
    ) -> bool:
        """:func:`breached` for a variance's measures, signed or not (each made a magnitude
        only where this side sets a limit on it)."""
        a = _verdict(self.amount, value)
        p = _verdict(self.percent, percent)  # no expected value, no percent: never passes
        q = _verdict(self.quantity, quantity)
        held = (a > 0) + (p > 0) + (q > 0)
        failed = (a < 0) + (p < 0) + (q < 0)
        if not held and not failed:
            return False
        return bool(failed) if self.both else not held


def _verdict(most: Decimal | None, measure: Decimal | None) -> int:
    """One measure against one limit: 0 when the limit is not set, 1 when the measure's
    magnitude is within it, -1 when it is beyond it or the measure is missing."""
    if most is None:
        return 0
    return 1 if measure is not None and abs(measure) <= most else -1


class _Gate:
    """A resolved tolerance and the rule it came from, laid out for the hot path."""

    __slots__ = ("lower", "per_line", "rule", "upper")

    def __init__(self, tolerance: Tolerance, rule: str) -> None:
        self.per_line = tolerance.price_basis == "line"
        """For the price: whether an amount limit bounds the money at stake on the line."""
        both = tolerance.combine == "both"
        up, down = tolerance.upper, tolerance.lower
        self.upper = None if up is None else _Side(up, tolerance.upper_blocks, both)
        self.lower = None if down is None else _Side(down, tolerance.lower_blocks, both)
        self.rule = rule


_HeaderGates = tuple[_Gate | None, _Gate | None, _Gate | None]  # charges, tax, header total


class _Resolver:
    """Tolerance resolution with a cache per (item, supplier, category).

    Every check starts with the default policy's tolerance (exact, blocking); the policy's
    tolerances replace it per check, then the rules that apply, least specific first; a
    tolerance with ``off`` takes the check out.
    """

    def __init__(self, policy: TolerancePolicy) -> None:
        self.policy = policy
        # The policy's settings the hot path reads, as plain attributes.
        self.rounded_to: Any = _quantizer(policy.rounding)
        self.tax_per_line: bool = policy.tax_rounding == "line"
        # The small difference: one amount either way (compared as such), or limits per side.
        small = policy.small_difference
        self.small_difference: Decimal | None = None
        self.small_upper: _Side | None = None
        self.small_lower: _Side | None = None
        if isinstance(small, SmallDifference):
            self.small_upper = None if small.upper is None else _Side(small.upper, False, True)
            self.small_lower = None if small.lower is None else _Side(small.lower, False, True)
            self.small_difference_text = small.describe()  # the limit, in findings
        else:
            self.small_difference = small
            self.small_difference_text = f"{small:f}"
        self.park: bool = policy.before_receipt == "park"
        self.partial_payment: bool = policy.partial_payment
        self.default_level: MatchLevel = policy.default_level
        self.name: str = policy.name
        self.cache: dict[tuple[str | None, str, str], dict[Check, _Gate]] = {}
        self.ordered = sorted(policy.rules, key=lambda r: r.rank, reverse=True)
        default: dict[Check, _Gate] = {t.check: _Gate(t, "default") for t in _default_tolerances()}
        off: set[Check] = set()
        for t in policy.tolerances:
            _apply(default, off, t, "default")
        self.default = default
        self.default_off = frozenset(off)
        self.off = bool(off) or any(t.off for r in policy.rules for t in r.tolerances)
        """Whether anything turns a check off (else no invoice reports one)."""
        self.offs: dict[tuple[str | None, str, str], frozenset[Check]] = {}
        self.default_checks = _LineChecks(self.default, self.default_off)
        # The line checks' gates per scope (hashing an Enum member runs Python code: these
        # lookups happen once per scope, not per line).
        self.checks: dict[tuple[str | None, str, str], _LineChecks] = {}
        self.headers: dict[str, _HeaderGates] = {}
        self.default_header = self._header(self.default)

    def line_checks(self, item: str | None, supplier: str, category: str) -> _LineChecks:
        """The line checks' gates for a line of this scope."""
        if not self.ordered:
            return self.default_checks
        key = (item, supplier, category)
        found = self.checks.get(key)
        if found is None:
            gates = self.for_line(item, supplier, category)
            found = _LineChecks(gates, self.offs.get(key, self.default_off))
            if len(self.checks) < 100_000:
                self.checks[key] = found
        return found

    def header_checks(self, supplier: str) -> _HeaderGates:
        """The header checks' gates (charges, tax, total) for a supplier's invoices."""
        if not self.ordered:
            return self.default_header
        found = self.headers.get(supplier)
        if found is None:
            found = self._header(self.for_line(None, supplier, ""))
            if len(self.headers) < 100_000:
                self.headers[supplier] = found
        return found

    def checks_off(self, supplier: str, lines: dict[int, _LineTerms]) -> tuple[str, ...]:
        """The checks off for a PO's lines (each line's scope) or its invoices' header (the
        supplier's scope), in :class:`Check` order."""
        off = set(self.default_off)
        if self.ordered:
            self.for_line(None, supplier, "")
            off = set(self.offs.get((None, supplier, ""), self.default_off))
            header = (Check.CHARGES, Check.TAX, Check.HEADER_TOTAL)
            off = {c for c in off if c in header}
        for t in lines.values():
            off |= t.checks.off
        return tuple(c.value for c in Check if c in off)

    @staticmethod
    def _header(found: dict[Check, _Gate]) -> _HeaderGates:
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
                off = set(self.default_off)
                for rule in applying:  # least specific first: more specific overwrite
                    for t in rule.tolerances:
                        _apply(found, off, t, rule.id)
                if off != self.default_off:
                    self.offs[key] = frozenset(off)
            if len(self.cache) < 100_000:
                self.cache[key] = found
        return found


def _apply(gates: dict[Check, _Gate], off: set[Check], tolerance: Tolerance, rule: str) -> None:
    """Let ``tolerance`` decide its check: its gate replaces the one before, or it turns the
    check off."""
    check = tolerance.check
    if tolerance.off:
        gates.pop(check, None)
        off.add(check)
    else:
        gates[check] = _Gate(tolerance, rule)
        off.discard(check)


_RESOLVERS: Final[dict[int, _Resolver]] = {}


def _resolver(policy: TolerancePolicy) -> _Resolver:
    found = _RESOLVERS.get(id(policy))
    if found is None or found.policy is not policy:
        if len(_RESOLVERS) > 64:
            _RESOLVERS.clear()
        found = _RESOLVERS[id(policy)] = _Resolver(policy)
    return found


def _pct(variance: Decimal, expected: Decimal) -> Decimal | None:
    return None if not expected else variance * _HUNDRED / expected


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

    ``value`` is the money measure of the variance (the variance itself for money checks: given
    a ``currency`` and no ``value``), ``quantity`` the unit measure (for quantity checks and days).
    """
    if gate is None:
        return  # the check is off
    variance = actual - expected
    if not variance:
        return
    if value is None and currency:
        value = variance  # a money check: the variance is the money at stake
    upper = variance > _ZERO
    side = gate.upper if upper else gate.lower
    if side is None:
        return  # that side is not checked
    pct = None if not expected else variance * _HUNDRED / expected
    breach = side.breaks(value if value is not None else variance, pct, quantity)
    severity = (_BLOCK if side.blocks else _WARN) if breach else _INFO
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
                currency,  # set for money checks, whose value is then always set
                side.text(),
                gate.rule,
                "",
                None,
                awaiting and breach,
            ),
        )
    )


def match_one(
    invoice: Invoice,
    po: PurchaseOrder,
    receipts: Iterable[GoodsReceipt],
    returns: Iterable[GoodsReturn],
    earlier: Iterable[Invoice],
    supplier_invoices: Iterable[Invoice],
    policy: TolerancePolicy,
    supplier: Supplier | None,
    overrides: tuple[Override, ...],
    uom: UomConverter | None,
    rates: ExchangeRates | None,
) -> MatchResult:
    """:func:`potrack.matching.match` (which documents the arguments and what it raises)."""
    _same_or_refused(invoice, earlier)
    _same_or_refused(invoice, supplier_invoices)
    terms = _terms(po, supplier, _resolver(policy))
    ledger: _Ledger = {}
    for receipt in _once(receipts, "goods receipt"):
        if receipt.po_id == po.id:
            _receive(ledger, receipt, terms, uom)
    for ret in _once(returns, "goods return"):
        if ret.po_id == po.id:
            _give_back(ledger, ret, terms)
    earlier = [inv for inv in earlier if inv.id != invoice.id and inv.po_id == po.id]
    rate_of = _rates_of(earlier, po.currency)
    for inv in earlier:
        _bill(ledger, inv, terms, uom, _credited(inv, rate_of))
    return _evaluate(
        invoice,
        terms,
        ledger,
        overrides,
        uom,
        rates,
        supplier_invoices,
        _credited(invoice, rate_of),
    )


_OK: Final = (_MATCHED, _WITHIN)


_G = TypeVar("_G", GoodsReceipt, GoodsReturn)


def _once(documents: Iterable[_G], kind: str) -> list[_G]:
    """``documents`` with each id (per PO) once: the same document given twice counts once;
    the same id with other content raises."""
    seen: dict[tuple[str, str], _G] = {}
    for doc in documents:
        key = (doc.po_id, doc.id)
        other = seen.get(key)
        if other is None:
            seen[key] = doc
        elif _goods_fingerprint(other) != _goods_fingerprint(doc):
            raise DuplicateError(
                kind,
                doc.id,
                "given twice with different content; a document id names one document",
            )
    return list(seen.values())


def _same_or_refused(invoice: Invoice, others: Iterable[Invoice]) -> None:
    """Raise if ``others`` hold a document with ``invoice``'s id and other content (the same
    document again is fine: matching skips it, so nothing is counted twice)."""
    mine: int | None = None
    for other in others:
        if other.id != invoice.id:
            continue
        if mine is None:
            mine = _fingerprint(invoice)
        if _fingerprint(other) != mine:
            differ = [
                name for name in _INVOICE_FIELDS if getattr(other, name) != getattr(invoice, name)
            ]
            raise _changed(invoice.id, ", ".join(differ))


_INVOICE_FIELDS: Final[tuple[str, ...]] = tuple(a.name for a in attrs.fields(Invoice))


def _changed(invoice_id: str, differ: str) -> DuplicateError:
    where = f" ({differ} differ)" if differ else ""
    return DuplicateError(
        "invoice",
        invoice_id,
        f"seen before with different content{where}; a document id names one document — "
        "correct an invoice with a credit memo or a subsequent debit or credit, or send the "
        "new version under a new id",
    )


def _goods_fingerprint(goods: GoodsReceipt | GoodsReturn) -> int:
    """A hash of what a receipt or return states that matching reads (see
    :func:`_fingerprint`)."""
    if isinstance(goods, GoodsReceipt):
        h = hash(goods.po_id)
        for rl in goods.lines:
            accepted = rl.accepted
            h = hash(
                (
                    h,
                    rl.line_no,
                    str(rl.received),
                    str(rl.rejected),
                    None if accepted is None else str(accepted),
                    rl.uom,
                )
            )
        return h
    h = hash(goods.po_id) + 1
    for tl in goods.lines:
        h = hash((h, tl.line_no, str(tl.quantity)))
    return h


def _fingerprint(invoice: Invoice) -> int:
    """A hash of what an invoice states that matching reads — its parties, date, currency,
    kind, number, rate, what it credits, total, tax, charges and each line's numbers — with
    numbers as written (``10.0`` and ``10.00`` differ: a document sent again is sent as it
    was), so that a document fed again is told from another one with the same id without
    keeping it.  (Numbers as text: hashing a ``Decimal`` with decimals costs a modular inverse,
    its text a few hundred instructions.)  What matching does not read — descriptions, items,
    due and received dates, the reason — does not count."""
    tax = invoice.tax
    rate = invoice.exchange_rate
    h = hash(
        (
            invoice.supplier_id,
            invoice.invoice_date,
            invoice.currency,
            str(invoice.total.amount),
            invoice.kind,
            invoice.number,
            invoice.po_id,
            None if rate is None else str(rate),
            invoice.credits,
            None if tax is None else str(tax.amount),
        )
    )
    for ln in invoice.lines:
        amount = ln.amount
        line_tax = ln.tax
        h = hash(
            (
                h,
                ln.line_no,
                ln.po_line_no,
                str(ln.quantity),
                str(ln.unit_price.amount),
                str(ln.price_unit),
                ln.uom,
                None if amount is None else str(amount.amount),
                None if line_tax is None else str(line_tax.amount),
            )
        )
    for charge in invoice.charges:
        h = hash((h, charge.code, str(charge.amount.amount)))
    return h


def _factors(
    lines: tuple[InvoiceLine, ...], terms: _Terms, uom: UomConverter | None
) -> dict[int, Decimal] | None:
    """Per invoice line, the factor to the PO line's unit (None when every line is in it).

    Computed before anything is changed, so that a missing factor changes nothing.
    """
    factors: dict[int, Decimal] | None = None
    for ln in lines:
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
    overrides: tuple[Override, ...],
    uom: UomConverter | None,
    rates: ExchangeRates | None,
    supplier_invoices: Iterable[Invoice],
    credited_rate: Decimal | None = None,
) -> MatchResult:
    """Match ``invoice`` against what ``ledger`` knows, then add it to the ledger.

    A credit memo in another currency than the PO's reverses at ``credited_rate``, the rate of
    the invoice it credits, when known (the difference to its own rate is a finding).

    Each line is checked against the cumulative state of its PO line and billed right after,
    so a second invoice line on the same PO line is checked against both.  Nothing is changed
    until every input has been validated.
    """
    po = terms.po
    po_id = terms.po_id
    named = invoice.po_id
    if invoice.supplier_id != terms.supplier_id or (named is not None and named != po_id):
        problems = []
        if named is not None and named != po_id:
            problems.append(Problem("po_id", f"the invoice is for {named}, not {po_id}"))
        if invoice.supplier_id != terms.supplier_id:
            problems.append(
                Problem(
                    "supplier_id",
                    f"the invoice is from {invoice.supplier_id}, the PO with {terms.supplier_id}",
                )
            )
        raise ValidationError(f"invoice {invoice.id}", problems)
    invoice_lines = invoice.lines
    factors = _factors(invoice_lines, terms, uom)  # raises before anything is billed
    kind = invoice.kind
    credit = kind is _CREDIT_MEMO
    subsequent = kind is _SUB_DEBIT or kind is _SUB_CREDIT  # a price-only correction
    reduces = credit or kind is _SUB_CREDIT  # not paid: it reduces what is owed
    cur = invoice.currency
    po_cur = terms.currency
    rate: Decimal | None = _ONE
    header: list[Finding] = []
    if cur != po_cur:
        rate = invoice.exchange_rate
        if credited_rate is not None and credit:
            if rate is not None and rate != credited_rate:
                header.append(_rate_difference(invoice, po_cur, rate, credited_rate))
            rate = credited_rate
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
    # currency's precision (a 3 × 45.5805 line is 136.74 on the invoice) — half even, whatever
    # the policy rounds payables with; a tie rounded up instead is the supplier's choice too
    # (see ``_ties``, worked out only when the total differs).
    exponent = _quantum(cur)
    rules = terms.rules
    rounded_to = rules.rounded_to
    to_even = _EVEN
    per_line_tax = rules.tax_per_line
    line_tax = _ZERO  # the tax expected, rounded per line (when the policy says so)
    line_tax_ties = _ZERO
    net_total = _ZERO
    # The tax expected is the sum of each line's booked amount × its PO line's tax rate.  While
    # every line has the same rate (``rate0``) that is ``net_total`` × the rate: one product per
    # invoice, not one per line.  Once a line's rate differs, ``taxed`` holds the sum so far.
    tax_rate0 = _ZERO
    uniform = True
    first = True
    taxed = _ZERO
    tax_known = True
    plain = factors is None and billing_rate is _ONE  # no conversion of units or currency
    known = terms.lines
    for ln in invoice_lines:
        start = len(found)
        no = ln.po_line_no
        line_no = ln.line_no
        quantity = ln.quantity
        price_unit = ln.price_unit
        unit_price = ln.unit_price.amount
        t = known.get(no)  # type: ignore[arg-type]  # None: no PO line named
        stated = ln.amount
        if stated is not None:
            amount = stated.amount
            rounded = rounded_to(amount, exponent)
            booked = amount
        else:
            amount = quantity * unit_price
            if price_unit is not _ONE and price_unit != _ONE:
                amount = amount / price_unit
            booked = to_even(amount, exponent)
            rounded = booked if rounded_to is to_even else rounded_to(amount, exponent)
        net_total += booked
        if t is None:
            found.append(
                Finding(
                    code=FindingCode.UNMATCHED_LINE,
                    severity=_BLOCK,
                    invoice_line_no=line_no,
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
                    line_no,
                    no,
                    None,
                    amount,
                    rounded,
                    tuple(found[start:]),
                    blocking,
                    overrides,
                    invoice_id,
                    rules.park,
                    reduces,
                    cur,
                )
            )
            continue
        assert no is not None  # a known PO line
        base = t.base
        billed_key: int | str = base + _BILLED  # (boxed once for the get and the set)
        amount_key: int | str = base + _BILLED_AMOUNT
        billed = ledger.get(billed_key, _ZERO)
        billed_amount = ledger.get(amount_key, _ZERO)
        if plain:
            factor = _ONE
            qty = quantity
            amount_po = amount
        else:
            factor = factors.get(line_no, _ONE) if factors else _ONE
            qty = quantity if factor is _ONE else _in_units(quantity, factor, t)
            amount_po = amount if billing_rate is _ONE else amount * billing_rate
        if subsequent:
            ledger[amount_key] = _subsequent_checks(
                found, ln, t, billed, billed_amount, amount_po, not reduces, po_cur
            )
        elif credit:
            _credit_checks(found, ln, t, billed, billed_amount, qty, amount_po, po_cur)
            ledger[billed_key] = billed - qty
            ledger[amount_key] = billed_amount - amount_po
        else:
            # (the first invoice of a PO line: nothing billed before it to add to)
            billed_after = qty if billed is _ZERO else billed + qty
            amount_after = amount_po if billed_amount is _ZERO else billed_amount + amount_po
            if rate is not None:
                checks = t.checks
                price = unit_price
                converted = not plain
                if converted:
                    if rate is not _ONE:
                        price = price * rate
                    if factor is not _ONE:
                        price = price / factor
                if price_unit is not t.price_unit and price_unit != t.price_unit:
                    price = price * t.price_unit / price_unit
                    converted = True
                if converted:
                    # Converted, the price is compared (and shown) at the precision of the PO
                    # price: 0.9072 USD/LB is 2.00 USD/KG, not 2.0000337…
                    price = _EVEN(price, _price_places(t))
                if price != t.price:
                    gate = checks.price_tol
                    at_stake = _at_stake(gate, price, qty, t)
                    _test(
                        found,
                        gate,
                        _CODE_PRICE,
                        t.price,
                        price,
                        po_cur,
                        value=at_stake,
                        currency=po_cur,
                        inv_line=line_no,
                        po_line=no,
                    )
                if t.needs_receipt:
                    # Billed beyond the goods kept (its sign is what counts, so a missing
                    # number is skipped rather than added as zero: no receipt, no return).
                    beyond = billed_after
                    got = ledger.get(base + _RECEIVED)
                    if got is not None:
                        beyond = beyond - got
                    got = ledger.get(base + _RETURNED)
                    if got is not None:
                        beyond = beyond + got
                    if beyond > _ZERO or t.four_way or (beyond and checks.received_lower):
                        _receipt_checks(found, t, ledger, billed_after, beyond, line_no, po_cur)
                if billed_after != t.quantity:
                    _ordered_check(found, t, billed_after, line_no, po_cur)
                if checks.amount_tol is not None:
                    _test(
                        found,
                        checks.amount_tol,
                        _CODE_AMOUNT,
                        t.amount,
                        amount_after,
                        po_cur,
                        currency=po_cur,
                        inv_line=line_no,
                        po_line=no,
                    )
                if (
                    checks.date_tol is not None
                    and t.expected is not None
                    and invoice.invoice_date < t.expected
                ):
                    days = Decimal((t.expected - invoice.invoice_date).days)
                    _test(
                        found,
                        checks.date_tol,
                        _CODE_DATE,
                        _ZERO,
                        days,
                        "days",
                        quantity=days,
                        inv_line=line_no,
                        po_line=no,
                    )
            ledger[billed_key] = billed_after
            ledger[amount_key] = amount_after
        tax_rate = t.tax_rate
        if per_line_tax and tax_rate:
            exact_tax = booked * tax_rate * _CENT
            even_tax = to_even(exact_tax, exponent)
            line_tax += even_tax
            if even_tax != exact_tax:
                line_tax_ties += _UP(exact_tax, exponent) - even_tax
        if uniform:
            if first:
                tax_rate0 = tax_rate
                first = False
            elif tax_rate is not tax_rate0 and tax_rate != tax_rate0:
                uniform = False  # the lines before this one all had rate0
                taxed = (net_total - booked) * tax_rate0 + booked * tax_rate
        elif tax_rate:
            taxed += booked * tax_rate
        if len(found) == start:
            results.append(
                _tuple_new(
                    LineResult,
                    (
                        line_no,
                        no,
                        t.level,
                        _MATCHED,
                        amount,
                        _ZERO if reduces else rounded,
                        cur,
                        (),
                    ),
                )
            )
        else:
            results.append(
                _settle(
                    line_no,
                    no,
                    t.level,
                    amount,
                    rounded,
                    tuple(found[start:]),
                    blocking,
                    overrides,
                    invoice_id,
                    rules.park,
                    reduces,
                    cur,
                )
            )

    charges = invoice.charges
    if charges:
        if not reduces and rate is not None:
            _charges(header, invoice, terms, ledger, terms.charges_tol, rate)
        charges_total = _ZERO
        slot = terms.slot
        for charge in charges:
            value = charge.amount.amount
            charges_total += value
            if billing_rate is not _ONE:
                value = value * billing_rate
            _add(ledger, _charge_key(slot, charge.code), -value if reduces else value)
    else:
        charges_total = _ZERO
    # The tax stated: the invoice's, else the sum of its lines' (None: none stated).
    stated_tax = invoice.tax
    tax: Decimal | None = None
    if stated_tax is not None:
        tax = stated_tax.amount
    else:
        for ln in invoice_lines:
            if ln.tax is not None:
                tax = ln.tax.amount if tax is None else tax + ln.tax.amount
    tax_check = terms.tax_tol
    if tax_check is not None and tax_known:
        if uniform and tax_rate0:
            taxed = net_total * tax_rate0
        if tax is not None or taxed:
            exact_tax = taxed * _CENT  # (rates are percents)
            expected_tax = line_tax if per_line_tax else to_even(exact_tax, exponent)
            given = tax or _ZERO
            if given != expected_tax:
                # a tie rounded half up instead is the supplier's choice too
                tax_ties = (
                    line_tax_ties if per_line_tax else _UP(exact_tax, exponent) - expected_tax
                )
                if not (expected_tax < given <= expected_tax + tax_ties):
                    _test(header, tax_check, _CODE_TAX, expected_tax, given, cur, currency=cur)
    invoiced = invoice.total
    total = invoiced.amount
    computed = net_total + charges_total
    if tax is not None:
        computed += tax
    if total != computed and not (computed < total <= computed + _ties(invoice_lines, exponent)):
        diff = total - computed
        allowance = rules.small_difference
        if allowance is not None:
            small = abs(diff) <= allowance
        else:
            side = rules.small_upper if diff > _ZERO else rules.small_lower
            small = side is not None and not side.breaks(diff, _pct(diff, computed), None)
        if small:
            header.append(_small_difference(computed, total, diff, cur, rules))
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
    return _conclude(
        invoice_id,
        po_id,
        kind,
        cur,
        invoiced,
        results,
        bool(found),
        blocking,
        header,
        overrides,
        rules,
        exponent,
        terms.checks_off,
    )


def _ties(lines: tuple[InvoiceLine, ...], exponent: Decimal) -> Decimal:
    """How much more the lines' amounts come to rounded half up than half even (booked): the
    ties, which a supplier may round either way — JPY 1000.5 is 1000 or 1001.  Lines with a
    stated amount are booked as stated."""
    ties = _ZERO
    for ln in lines:
        if ln.amount is None:
            amount = ln.quantity * ln.unit_price.amount
            if ln.price_unit is not _ONE and ln.price_unit != _ONE:
                amount = amount / ln.price_unit
            ties += _UP(amount, exponent) - _EVEN(amount, exponent)
    return ties


def _plain(value: Decimal) -> str:
    """``f"{value:f}"``: the number without an exponent.  ``str`` gives the same text unless it
    uses an exponent (a positive exponent, or below 1E-6), and is four times as fast."""
    text = str(value)
    return text if "E" not in text else f"{value:f}"


def _small_difference(
    computed: Decimal, total: Decimal, diff: Decimal, cur: str, rules: _Resolver
) -> Finding:
    """The information that the stated total differs from the computed one (by ``diff``) within
    the policy's small-difference allowance (a third of the synthetic invoices carry one: built
    directly)."""
    detail = (
        f"stated total differs from lines + charges + tax by {_plain(diff)} {cur}, within the "
        "small-difference allowance"
    )
    # Finding's fields in order: code, severity, invoice and PO line, expected, actual, unit,
    # variance, variance %, value, currency, limit, rule, detail, override, awaiting receipt.
    return _tuple_new(
        Finding,
        (
            _CODE_HEADER_TOTAL,
            _INFO,
            None,
            None,
            computed,
            total,
            cur,
            diff,
            _pct(diff, computed),
            None,
            "",
            rules.small_difference_text,
            "small difference",
            detail,
            None,
            False,
        ),
    )


_RECEIPT_CODES: Final = (_CODE_QUANTITY_RECEIVED, _CODE_QUANTITY_ACCEPTED)


def _ordered_check(
    findings: list[Finding], t: _LineTerms, billed_after: Decimal, inv_line: int, po_cur: str
) -> None:
    """Billed so far against the quantity ordered (a credit memo lowers what is billed); the
    callers skip it when the two are equal."""
    over = billed_after - t.quantity
    if over > _ZERO or t.checks.ordered_lower:
        _test(
            findings,
            t.checks.ordered_tol,
            _CODE_QUANTITY_ORDERED,
            t.quantity,
            billed_after,
            t.uom,
            value=over * t.per_unit,
            quantity=over,
            currency=po_cur,
            inv_line=inv_line,
            po_line=t.line_no,
        )


def _receipt_checks(
    findings: list[Finding],
    t: _LineTerms,
    ledger: _Ledger,
    billed_after: Decimal,
    over: Decimal,
    inv_line: int,
    po_cur: str,
) -> None:
    """The checks that depend on receipts: billed vs received (3-way) and vs accepted (4-way);
    ``over`` is what is billed beyond the goods kept (received less returned), as the caller
    worked it out.

    An excess is *awaiting receipt* while the billed quantity is within the order (the goods may
    still come); beyond the order it is over-billing.
    """
    base = t.base
    checks = t.checks
    if over and (over > _ZERO or checks.received_lower):
        _test(
            findings,
            checks.received_tol,
            _CODE_QUANTITY_RECEIVED,
            billed_after - over,
            billed_after,
            t.uom,
            value=over * t.per_unit,
            quantity=over,
            currency=po_cur,
            inv_line=inv_line,
            po_line=t.line_no,
            awaiting=over > _ZERO and billed_after <= t.quantity,
        )
    if t.four_way:
        # Accepted after inspection, less returns beyond what was rejected.
        returned = ledger.get(base + _RETURNED, _ZERO)
        rejected = ledger.get(base + _REJECTED, _ZERO)
        accepted = ledger.get(base + _ACCEPTED, _ZERO) - max(_ZERO, returned - rejected)
        if billed_after != accepted:
            over = billed_after - accepted
            _test(
                findings,
                checks.accepted_tol,
                _CODE_QUANTITY_ACCEPTED,
                accepted,
                billed_after,
                t.uom,
                value=over * t.per_unit,
                quantity=over,
                currency=po_cur,
                inv_line=inv_line,
                po_line=t.line_no,
                awaiting=over > _ZERO and billed_after <= t.quantity,
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


def _subsequent_checks(
    findings: list[Finding],
    ln: InvoiceLine,
    t: _LineTerms,
    billed: Decimal,
    billed_amount: Decimal,
    amount_po: Decimal,
    debit: bool,
    po_cur: str,
) -> Decimal:
    """A subsequent debit (``debit``) or credit of ``amount_po`` on a PO line with ``billed``
    units invoiced so far for ``billed_amount``: the price it leaves — the amount after it per
    unit invoiced, at the PO price's precision — against the PO price (and the amount against
    the line's, where checked).  A credit may not take away more than was invoiced; with
    nothing invoiced there is nothing to correct.  Returns the amount billed after it.

    100 invoiced at 10.00 and a subsequent debit of 50.00: 1,050.00 for 100, a price of 10.50.
    """
    amount_after = billed_amount + amount_po if debit else billed_amount - amount_po
    what = "subsequent debit" if debit else "subsequent credit"
    if billed <= _ZERO:
        findings.append(
            Finding(
                code=FindingCode.NOTHING_INVOICED,
                severity=_BLOCK,
                invoice_line_no=ln.line_no,
                po_line_no=t.line_no,
                detail=f"a {what} for PO line {t.line_no}, on which nothing is invoiced",
            )
        )
    elif amount_after < _ZERO:
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
                    f"credits {_plain(amount_po)} {po_cur} but only {_plain(billed_amount)} "
                    f"{po_cur} is invoiced and not yet credited"
                ),
            )
        )
    else:
        checks = t.checks
        price = amount_after / billed
        if t.price_unit is not _ONE and t.price_unit != _ONE:
            price = price * t.price_unit
        price = _EVEN(price, _price_places(t))
        gate = checks.price_tol
        if price != t.price and gate is not None:
            at_stake = _at_stake(gate, price, billed, t)
            _test(
                findings,
                gate,
                _CODE_PRICE,
                t.price,
                price,
                po_cur,
                value=at_stake,
                currency=po_cur,
                inv_line=ln.line_no,
                po_line=t.line_no,
            )
        if checks.amount_tol is not None:
            _test(
                findings,
                checks.amount_tol,
                _CODE_AMOUNT,
                t.amount,
                amount_after,
                po_cur,
                currency=po_cur,
                inv_line=ln.line_no,
                po_line=t.line_no,
            )
    return amount_after


_DETAIL: Final = Finding._fields.index("detail")


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
        value = charge.amount.amount
        _add(billed, charge.code, value if rate is _ONE else value * rate)
    cur = terms.currency
    for code in sorted(billed) if len(billed) > 1 else billed:
        before = len(header)
        agreed = terms.charges.get(code, _ZERO)
        after = billed[code]
        so_far = ledger.get(_charge_key(terms.slot, code))
        if so_far is not None:
            after = so_far + after
        _test(header, gate, _CODE_CHARGES, agreed, after, cur, currency=cur)
        if len(header) > before:
            f = header[-1]
            pct = (
                f" ({f.variance_percent:+.2f} %)"
                if f.variance_percent is not None
                else " (none agreed)"
            )
            detail = (
                f"{code} charges {_plain(after)} {cur} so far against {_plain(agreed)} {cur} "
                f"agreed{pct}"
            )
            # f._replace(detail=...), without its Python-level loop over the sixteen fields
            header[-1] = _tuple_new(Finding, (*f[:_DETAIL], detail, *f[_DETAIL + 1 :]))


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


def _rate_difference(memo: Invoice, po_cur: str, own: Decimal, credited: Decimal) -> Finding:
    """A memo stating another rate than the invoice it reverses: it books at the invoice's rate
    (so a full reversal reverses in full), and the difference is an exchange difference."""
    variance = own - credited
    value = memo.total.amount * variance
    return Finding(
        code=_CODE_CURRENCY,
        severity=_INFO,
        unit=po_cur,
        expected=credited,
        actual=own,
        variance=variance,
        variance_percent=_pct(variance, credited),
        value=value,
        currency=po_cur,
        detail=(
            f"the memo states {_plain(own)} {po_cur} per {memo.currency} and reverses "
            f"{memo.credits} at its rate {_plain(credited)}; the exchange difference is "
            f"{_plain(value)} {po_cur}"
        ),
    )


def _duplicates(invoice: Invoice, others: Iterable[Invoice]) -> list[Finding]:
    if invoice.kind is not _INVOICE:
        return []
    number = None
    found = []
    for other in others:
        if (
            other.id == invoice.id
            or other.supplier_id != invoice.supplier_id
            or other.kind is not _INVOICE
        ):
            continue
        if number is None and invoice.number:
            number = normalize_number(invoice.number)
        if number is not None and other.number and normalize_number(other.number) == number:
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
    findings: Sequence[Finding], park: bool, collect: list[Finding] | None = None
) -> InvoiceStatus:
    """The status the findings give (``park``: the policy parks invoices awaiting receipt);
    blocking findings are added to ``collect`` when given."""
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
        if park and waiting == blocking:
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
    park: bool,
    credit: bool,
    currency: str,
) -> LineResult:
    """A line with findings: overrides applied, its status, what may be paid for it (its
    ``rounded`` amount when it matches); its blocking findings are added to ``blocking``."""
    if overrides:
        findings = _apply_overrides(findings, overrides, invoice_id)
    status = _status(findings, park, blocking)
    payable = rounded if not credit and status in _OK else _ZERO
    return _tuple_new(
        LineResult, (line_no, po_line_no, level, status, amount, payable, currency, findings)
    )


def _conclude(
    invoice_id: str,
    po_id: str,
    kind: InvoiceKind,
    cur: str,
    invoiced: Money,
    lines: list[LineResult],
    line_findings: bool,
    blocking: list[Finding],
    header: list[Finding],
    overrides: tuple[Override, ...],
    rules: _Resolver,
    exponent: Decimal,
    checks_off: tuple[str, ...],
) -> MatchResult:
    """The invoice's status and what may be paid now, from its settled lines (``line_findings``:
    whether any has a finding) and header findings (the invoice's id, kind, currency and total
    are passed as read once by the caller; ``rules`` holds the policy's settings, ``exponent``
    is the currency's quantum)."""
    header_findings = tuple(header)
    only_currency = not line_findings
    if header_findings:
        if overrides:
            header_findings = _apply_overrides(header_findings, overrides, invoice_id)
        for f in header_findings:
            if f.severity is _BLOCK:
                blocking.append(f)
            if f.code is not _CODE_CURRENCY or f.severity is not _INFO:
                only_currency = False
    if blocking:
        status = _AWAITING if rules.park and _only_waiting(blocking) else _HELD
    elif only_currency:
        status = _MATCHED
    else:
        status = _WITHIN
    total = invoiced.amount
    if kind is _CREDIT_MEMO or kind is _SUB_CREDIT:
        payable_value = _ZERO  # not paid: it reduces what is owed
    elif status in _OK:
        payable_value = total
    elif rules.partial_payment and not any(f.severity is _BLOCK for f in header_findings):
        payable_value = min(sum((lr.payable for lr in lines), _ZERO), total)
    else:
        payable_value = _ZERO
    if payable_value is not _ZERO:
        payable_value = rules.rounded_to(payable_value, exponent)
    if payable_value == total:
        pay_now, held = invoiced, _zero_money(cur)
    elif not payable_value:
        pay_now, held = _zero_money(cur), invoiced
    else:
        pay_now, held = Money(payable_value, cur), Money(total - payable_value, cur)
    return _tuple_new(
        MatchResult,
        (
            invoice_id,
            po_id,
            kind,
            status,
            invoiced,
            pay_now,
            held,
            tuple(lines),
            header_findings,
            rules.name,
            checks_off,
        ),
    )


_ZEROS: Final[dict[str, Money]] = {}


def _zero_money(currency: str) -> Money:
    """Zero in ``currency``, rounded to its precision (cached: Money values are not mutated)."""
    found = _ZEROS.get(currency)
    if found is None:
        found = _ZEROS[currency] = Money(
            round_amount(_ZERO, currency, Rounding.HALF_EVEN), currency
        )
    return found


# -- batch -------------------------------------------------------------------------------------------------


def _blocked_by(result: MatchResult, codes: tuple[FindingCode, ...]) -> bool:
    """Whether a line finding with one of ``codes`` blocks the result."""
    for line in result.lines:
        for f in line.findings:
            if f.severity is _BLOCK and f.code in codes:
                return True
    return False


def _waits_for_goods(result: MatchResult) -> bool:
    """Whether a quantity received or accepted blocks the result (new goods may change it)."""
    return _blocked_by(result, _RECEIPT_CODES)


_OVER_CREDIT: Final = (FindingCode.OVER_CREDIT, FindingCode.NOTHING_INVOICED)
_CODE_DUPLICATE: Final = FindingCode.DUPLICATE


def _refused(result: MatchResult) -> bool:
    """Whether the batch refuses the document: a duplicate, or a credit memo for more than was
    invoiced, that no override accepted (it changes nothing)."""
    for f in result.header:
        if f.code is _CODE_DUPLICATE and f.severity is _BLOCK:
            return True
    return _blocked_by(result, _OVER_CREDIT)


class _Waiting:
    """An invoice waiting for goods and what was billed before it (see
    :meth:`Engine._billed_before`).  Not its result: that is computed again when asked for
    (:meth:`Engine._again`).  Kept, the results of tens of thousands of waiting invoices — their
    lines, findings and money — were most of what the garbage collector had to scan in a long
    batch, and what set off its full collections."""

    __slots__ = ("billed_before", "invoice")

    def __init__(self, invoice: Invoice, billed_before: _Ledger) -> None:
        self.invoice = invoice
        self.billed_before = billed_before


def _arrival(waiting: tuple[str, _Waiting]) -> tuple[date, str]:
    """Waiting invoices' order (each with its PO's id): oldest first, then by id."""
    invoice = waiting[1].invoice
    return invoice.invoice_date, invoice.id


class Engine:
    """The state and work of a :class:`potrack.matching.BatchMatcher` (which documents it)."""

    def __init__(
        self,
        purchase_orders: Mapping[str, PurchaseOrder],
        policy: TolerancePolicy,
        suppliers: Mapping[str, Supplier],
        uom: UomConverter | None,
        rates: ExchangeRates | None,
        cache: int,
    ) -> None:
        self.purchase_orders = purchase_orders
        self.policy = policy
        self._rules = _resolver(policy)  # the policy resolved, looked up once
        self.suppliers = suppliers
        # A plain dict of suppliers is read natively (compiled); another Mapping through its get.
        self._supplier_dict: dict[str, Supplier] | None = (
            suppliers if type(suppliers) is dict else None
        )
        self.uom = uom
        self.rates = rates
        self._cache_size = cache
        self._terms: dict[str, _Terms] = {}
        # The cached POs' ids in the order they were loaded, as a ring: once it is full, the
        # oldest is at ``_oldest``, and the PO loaded next takes its place.
        self._loaded: list[str] = []
        self._oldest = 0
        self._spare_lines: list[_LineTerms] = []  # from evicted terms, for the next PO's lines
        self._places: dict[str, int] = {}  # PO id → its ledger slot, in order of arrival
        self._ledgers: list[_Ledger] = []
        self._waiting: dict[str, dict[str, _Waiting]] = {}
        # The invoice numbers seen, as strings rather than tuples (over a run, two tuples per
        # invoice would be two more objects for the garbage collector to count).  The key is the
        # normalized number (ASCII letters and digits only) and, after a separator, the supplier;
        # the value is the first invoice's id and number, led by the id's length and a colon.
        self._numbers: dict[str, str] = {}
        self._by_date_amount: dict[tuple[str, date, Money], str] = {}
        # Every invoice and memo fed, by id: its fingerprint (see ``_fingerprint``) times two,
        # plus one if it was counted (a refused duplicate or over-credit was not).  Plain ints:
        # the garbage collector does not track the dict.
        self._documents: dict[str, int] = {}
        # The same for receipts and returns, by kind ("R", "T"), PO and id (ids are the PO's).
        self._goods: dict[str, int] = {}
        # The rates of the invoices counted in another currency than their PO's, by id: a memo
        # crediting one reverses at its rate.
        self._rate_of: dict[str, Decimal] = {}
        self.matched_lines = 0

    def _terms_of(self, po_id: str) -> _Terms:
        cache = self._terms
        terms = cache.get(po_id)
        if terms is not None:
            return terms
        try:  # (not .get: on a Mapping subclass that is one more Python call, to __getitem__)
            po = self.purchase_orders[po_id]
        except KeyError:
            raise ValidationError("document", [Problem("po_id", f"unknown PO {po_id!r}")]) from None
        # Once the cache is full the oldest goes (POs are busy in the weeks after they are made),
        # and its objects are filled with the new PO's terms: nothing outside a feed holds terms.
        loaded = self._loaded
        full = len(loaded) >= self._cache_size
        spare = None
        if full:
            oldest = loaded[self._oldest]
            spare = cache.get(oldest)  # (None if building its successor's terms raised)
            if spare is not None:
                del cache[oldest]
        suppliers = self._supplier_dict
        supplier = (
            suppliers.get(po.supplier_id)
            if suppliers is not None
            else self.suppliers.get(po.supplier_id)
        )
        terms = cache[po_id] = _terms(po, supplier, self._rules, spare, self._spare_lines)
        if full:
            at = self._oldest
            loaded[at] = po_id
            self._oldest = at + 1 if at + 1 < len(loaded) else 0
        else:
            loaded.append(po_id)
        place = self._places.get(po_id)
        if place is None:
            place = self._places[po_id] = len(self._places)
            if place % _SLOTS == 0:
                self._ledgers.append({})
        terms.place(place)
        return terms

    def feed(
        self, document: GoodsReceipt | GoodsReturn | Invoice, overrides: Iterable[Override] = ()
    ) -> list[MatchResult]:
        """:meth:`potrack.matching.BatchMatcher.feed`."""
        # The exact types first (compiled, a pointer comparison; isinstance is a call), then
        # isinstance for subclasses.
        if type(document) is Invoice:
            return self._invoice(document, overrides)
        if type(document) is GoodsReceipt:
            return self._receipt(document)
        if isinstance(document, Invoice):
            return self._invoice(document, overrides)
        if isinstance(document, GoodsReceipt):
            return self._receipt(document)
        if isinstance(document, GoodsReturn):
            key = f"T\x1f{document.po_id}\x1f{document.id}"
            fingerprint = _goods_fingerprint(document)
            if self._seen_goods(key, fingerprint):
                return []  # fed before: counted once
            terms = self._terms_of(document.po_id)
            _give_back(self._ledgers[terms.ledger_no], document, terms)
            self._goods[key] = fingerprint
            return []
        raise TypeError(f"expected a receipt, return or invoice, got {type(document).__name__}")

    def _invoice(self, invoice: Invoice, overrides: Iterable[Override]) -> list[MatchResult]:
        po_id = invoice.po_id
        if po_id is None:
            raise ValidationError("invoice", [Problem("po_id", f"{invoice.id} names no PO")])
        granted = tuple(overrides)
        documents = self._documents
        fingerprint = _fingerprint(invoice) * 2
        seen = documents.get(invoice.id)
        if seen is not None:
            if seen >> 1 != fingerprint >> 1:
                raise _changed(invoice.id, "")
            if seen & 1:  # counted already: its result as it stands, nothing counted again
                return [self._again_fed(invoice, granted)]
        terms = self._terms_of(po_id)
        ledger = self._ledgers[terms.ledger_no]
        result = self._match(invoice, terms, ledger, None, granted)
        counted = not _refused(result)
        documents[invoice.id] = fingerprint + (1 if counted else 0)
        rate = invoice.exchange_rate
        foreign = rate is not None and invoice.currency != terms.currency
        if counted and foreign and rate is not None and invoice.kind is _INVOICE:
            self._rate_of[invoice.id] = rate
        if invoice.credits is None or invoice.kind is not _CREDIT_MEMO:
            return [result]
        return [result, *self._corrected(invoice, result, terms, ledger)]

    def _seen_goods(self, key: str, fingerprint: int) -> bool:
        """Whether a receipt or return (``key``: its kind, PO and id) was fed before with the
        same content; raises if with other content."""
        seen = self._goods.get(key)
        if seen is None:
            return False
        if seen != fingerprint:
            kind, _, goods_id = key.partition("\x1f")
            goods_id = goods_id.partition("\x1f")[2]
            raise DuplicateError(
                "goods receipt" if kind == "R" else "goods return",
                goods_id,
                "seen before with different content; a document id names one document — "
                "record a correction as a new receipt or return",
            )
        return True

    def _receipt(self, receipt: GoodsReceipt) -> list[MatchResult]:
        key = f"R\x1f{receipt.po_id}\x1f{receipt.id}"
        fingerprint = _goods_fingerprint(receipt)
        if self._seen_goods(key, fingerprint):
            return []  # fed before: counted once, and it released what it could then
        po_id = receipt.po_id
        terms = self._terms_of(po_id)
        ledger = self._ledgers[terms.ledger_no]
        _receive(ledger, receipt, terms, self.uom)
        self._goods[key] = fingerprint
        waiting = self._waiting.get(po_id)  # (dict.pop is a generic call when compiled)
        if waiting is None:
            return []
        del self._waiting[po_id]
        return [self._match(e.invoice, terms, ledger, e) for e in waiting.values()]

    def _corrected(
        self, memo: Invoice, result: MatchResult, terms: _Terms, ledger: _Ledger
    ) -> list[MatchResult]:
        """When ``memo`` (matched to ``result``) corrects an invoice waiting for goods: that
        invoice matched again at once, in full, as if the memo had come before it — what the
        memo credits (quantities, amounts, charges) no longer counts against the order or the
        goods.  It waits on if goods still hold it.

        A held memo (over-credit, duplicate) corrects nothing until a person accepts it.
        """
        if result.status not in _OK or not memo.credits:
            return []
        entry = self._unwait(terms.po_id, memo.credits)
        if entry is None:
            return []
        invoice = entry.invoice
        before = dict(entry.billed_before)
        credited: _Ledger = {}
        _bill(credited, memo, terms, self.uom, _credited(memo, self._rate_of))
        for key, value in credited.items():
            if key in before:  # (what the invoice's checks read)
                before[key] += value
        self.matched_lines += len(invoice.lines)
        again = self._again(invoice, before, terms, ledger)
        if again.status is not _MATCHED and _waits_for_goods(again):
            self._wait(terms.po_id, invoice, before)
        return [again]

    def _again(
        self, invoice: Invoice, billed_before: _Ledger, terms: _Terms, ledger: _Ledger
    ) -> MatchResult:
        """``invoice`` (waiting for goods) matched in full against the goods as they are now
        and what was billed before it; ``ledger`` is left as it was."""
        state = ledger.copy()
        state.update(billed_before)
        return _evaluate(invoice, terms, state, (), self.uom, self.rates, ())

    def _again_fed(self, invoice: Invoice, overrides: tuple[Override, ...]) -> MatchResult:
        """An invoice (or memo) counted already, fed again: its result as it stands — against
        what was billed before it if it waits for goods, else against everything but itself —
        with ``overrides`` applied.  Nothing is counted again; an override that settles what
        it waited for ends the wait."""
        po_id = invoice.po_id
        assert po_id is not None  # (the caller checked)
        terms = self._terms_of(po_id)
        ledger = self._ledgers[terms.ledger_no]
        by_id = self._waiting.get(po_id)
        entry = by_id.get(invoice.id) if by_id is not None else None
        if entry is not None:
            state = ledger.copy()
            state.update(entry.billed_before)
        else:
            own: _Ledger = {}
            _bill(own, invoice, terms, self.uom, _credited(invoice, self._rate_of))
            state = ledger.copy()
            for key, value in own.items():
                state[key] = state.get(key, _ZERO) - value
        result = _evaluate(
            invoice,
            terms,
            state,
            overrides,
            self.uom,
            self.rates,
            (),
            _credited(invoice, self._rate_of),
        )
        if entry is not None and (result.status in _OK or not _waits_for_goods(result)):
            self._unwait(po_id, invoice.id)
        return result

    def _match(
        self,
        invoice: Invoice,
        terms: _Terms,
        ledger: _Ledger,
        waiting: _Waiting | None,
        overrides: tuple[Override, ...] = (),
    ) -> MatchResult:
        po_id = terms.po_id
        self.matched_lines += len(invoice.lines)
        if waiting is not None:
            result = self._again(invoice, waiting.billed_before, terms, ledger)
            if result.status is not _MATCHED and _waits_for_goods(result):
                self._wait(po_id, invoice, waiting.billed_before)
            return result
        # Duplicates: the first invoice of the supplier with the same number — or, without
        # a number, the same date and amount.  Only its id and number are kept.
        numbered: str | None = None
        unnumbered = None
        first: Invoice | None = None
        number = invoice.number
        memo = invoice.kind is not _INVOICE  # a memo or a subsequent debit or credit
        if not memo:
            if number:
                numbered = f"{normalize_number(number)}\x1f{invoice.supplier_id}"
                seen = self._numbers.get(numbered)
                if seen is not None:
                    size, _, rest = seen.partition(":")
                    cut = int(size)
                    first = rebuild(invoice, {"id": InvoiceId(rest[:cut]), "number": rest[cut:]})
            else:
                unnumbered = (invoice.supplier_id, invoice.invoice_date, invoice.total)
                seen_id = self._by_date_amount.get(unnumbered)
                if seen_id is not None:
                    first = rebuild(invoice, {"id": InvoiceId(seen_id)})
        # A duplicate, or a credit memo for more than was invoiced, is refused: it changes
        # nothing.  Counted, a refused memo would lower what was billed and let a later invoice
        # for goods never received through; a duplicate would bill the goods twice and hold
        # the next invoice that is fine.  (Held for a variance, an invoice counts: it is a claim
        # waiting for a decision.)  Only these documents need the copy to put back.
        before = ledger.copy() if first is not None or memo else None
        result = _evaluate(
            invoice,
            terms,
            ledger,
            overrides,
            self.uom,
            self.rates,
            () if first is None else (first,),
            _credited(invoice, self._rate_of) if memo else None,
        )
        if before is not None and _refused(result):
            ledger.clear()
            ledger.update(before)
            return result
        if result.status is not _MATCHED and _waits_for_goods(result):
            # Held on quantities received: match it again when a receipt for the PO arrives,
            # against what was billed before it (later invoices do not count against it).
            self._wait(po_id, invoice, self._billed_before(invoice, terms, ledger))
        if first is None:  # remembered once counted: a refused invoice changes nothing
            if numbered is not None:
                own = invoice.id
                self._numbers[numbered] = f"{len(own)}:{own}{number}"
            elif unnumbered is not None:
                self._by_date_amount[unnumbered] = invoice.id
        return result

    def _wait(self, po_id: str, invoice: Invoice, billed_before: _Ledger) -> None:
        """Keep ``invoice`` to match again when goods for its PO arrive."""
        waiting = self._waiting.get(po_id)
        if waiting is None:
            waiting = self._waiting[po_id] = {}
        waiting[invoice.id] = _Waiting(invoice, billed_before)

    def _now(self, po_id: str, entry: _Waiting) -> MatchResult:
        """The result of a waiting invoice as it stands (matched again, not counted in
        ``matched_lines``)."""
        terms = self._terms_of(po_id)
        return self._again(
            entry.invoice, entry.billed_before, terms, self._ledgers[terms.ledger_no]
        )

    def waiting(self) -> list[MatchResult]:
        """:meth:`potrack.matching.BatchMatcher.waiting`."""
        entries = [(po_id, e) for po_id, by_id in self._waiting.items() for e in by_id.values()]
        entries.sort(key=_arrival)
        return [self._now(po_id, e) for po_id, e in entries]

    def withdraw(self, invoice: Invoice) -> MatchResult:
        """:meth:`potrack.matching.BatchMatcher.withdraw`."""
        po_id = invoice.po_id
        by_id = self._waiting.get(po_id) if po_id is not None else None
        entry = by_id.get(invoice.id) if by_id is not None else None
        if po_id is None or entry is None:
            raise NotFoundError("invoice waiting for goods", invoice.id)
        result = self._now(po_id, entry)  # first: if it raises, the invoice waits on
        self._unwait(po_id, invoice.id)
        return result

    def _unwait(self, po_id: str, invoice_id: str) -> _Waiting | None:
        """Take the invoice out of those waiting for goods (None if it is not waiting)."""
        by_id = self._waiting.get(po_id)
        entry = by_id.pop(invoice_id, None) if by_id is not None else None
        if by_id is not None and not by_id:
            del self._waiting[po_id]
        return entry

    def expire(self, before: date) -> list[MatchResult]:
        """:meth:`potrack.matching.BatchMatcher.expire`."""
        gone = [
            (po_id, e)
            for po_id, by_id in self._waiting.items()
            for e in by_id.values()
            if e.invoice.invoice_date < before
        ]
        gone.sort(key=_arrival)
        results = [self._now(po_id, e) for po_id, e in gone]  # first: if one raises, all wait on
        for po_id, e in gone:
            self._unwait(po_id, e.invoice.id)
        return results

    def _billed_before(self, invoice: Invoice, terms: _Terms, ledger: _Ledger) -> _Ledger:
        """What was billed before ``invoice`` (which the ledger holds already), under the
        ledger's keys: the quantity of each PO line it bills; the amount too when line amounts
        are checked, and the charges billed so far of each code it charges.  (What no check of
        this invoice reads is left out: the ledger's own entry stands in for it.)

        Matched again when goods arrive, the invoice is checked against these, not against
        invoices that came after it; a credit memo correcting it is taken off them.
        """
        lines = terms.lines
        before: _Ledger = {}
        rate = _billing_rate(invoice, terms)
        for ln in invoice.lines:
            no = ln.po_line_no
            t = lines.get(no) if no is not None else None
            if t is None:
                continue
            quantity = ln.quantity
            if ln.uom is not None:
                factor = _factor(terms, t.line_no, ln.uom, self.uom)
                if factor is not _ONE:
                    quantity = _in_units(quantity, factor, t)
            key: int | str = t.base + _BILLED  # (boxed once for its three uses)
            before[key] = before.get(key, ledger[key]) - quantity
            if t.checks.amount_tol is not None:
                key = t.base + _BILLED_AMOUNT
                amount = _net(ln) if rate is _ONE else _net(ln) * rate
                before[key] = before.get(key, ledger[key]) - amount
        for charge in invoice.charges:
            code = _charge_key(terms.slot, charge.code)
            before[code] = before.get(code, ledger[code]) - charge.amount.amount * rate
        return before
