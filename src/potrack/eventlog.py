"""Procurement event logs into order facts, with the log's quirks reported, not hidden.

An event log is rows of (case, activity, timestamp, attributes): what process-mining tools and ERP
extracts give.  :func:`read_event_log` reads one from CSV, maps its activities to potrack's
:class:`~potrack.metrics.Milestone` s and its matching flows to :class:`~potrack.records.MatchLevel`
s, and folds it into one :class:`~potrack.metrics.OrderFacts` per case in a single pass — ready
for every KPI in :mod:`potrack.metrics`.  :data:`BPI2019` describes the BPI Challenge 2019 log
(van Dongen, 4TU.ResearchData, CC BY 4.0).

Real logs are messy.  Rows that cannot be read (no case, an unreadable timestamp) are skipped
and counted; everything else odd — receipts recorded before their order, day-precision stamps,
repeated receipts and invoices, activities the format does not know, payment blocks removed but
never set — is kept and reported as a :class:`QualityFinding` with examples.

>>> import io
>>> text = '''case,activity,time,vendor
... A,Create Purchase Order Item,2019-01-07 10:00:00+00:00,V1
... A,Record Goods Receipt,2019-01-04 09:00:00+00:00,V1
... A,Record Goods Receipt,2019-01-11 09:00:00+00:00,V1
... B,Create Purchase Order Item,2019-01-08 10:00:00+00:00,V2
... B,Launch rocket,2019-01-09 10:00:00+00:00,V2
... '''
>>> fmt = LogFormat(name="mini", case="case", activity="activity", timestamp="time", supplier="vendor")
>>> log = read_event_log(io.StringIO(text), fmt)
>>> len(log.cases), log.events
(2, 5)
>>> for f in log.quality: print(f.kind, f.count, f.examples)
goods receipt before the order 1 ('A',)
repeated goods receipts 1 ('A',)
unmapped activity 1 ('Launch rocket',)
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple, TextIO

import attrs

from potrack.exceptions import Problem, ValidationError
from potrack.metrics import (
    GOODS_RECEIPT,
    INVOICE,
    INVOICE_CANCELLED,
    PO_CREATED,
    Milestone,
    OrderFacts,
)
from potrack.records import MatchLevel

__all__ = [
    "BPI2019",
    "BPI2019_ACTIVITIES",
    "Event",
    "EventLog",
    "LogFormat",
    "QualityFinding",
    "fold_events",
    "iter_csv_events",
    "merge_logs",
    "read_event_log",
]

_ZERO = Decimal(0)
_COUNT = len(Milestone)
_EXAMPLES = 5

BPI2019_ACTIVITIES: dict[str, Milestone] = {
    "Create Purchase Requisition Item": Milestone.REQUISITION,
    "SRM: Created": Milestone.REQUISITION,
    "Create Purchase Order Item": Milestone.PO_CREATED,
    "Release Purchase Order": Milestone.APPROVED,
    "Release Purchase Requisition": Milestone.OTHER,
    "SRM: Awaiting Approval": Milestone.OTHER,
    "SRM: Complete": Milestone.OTHER,
    "SRM: Document Completed": Milestone.OTHER,
    "SRM: In Transfer to Execution Syst.": Milestone.OTHER,
    "SRM: Ordered": Milestone.ISSUED,
    "SRM: Change was Transmitted": Milestone.CHANGE,
    "SRM: Deleted": Milestone.OTHER,
    "SRM: Transaction Completed": Milestone.OTHER,
    "SRM: Incomplete": Milestone.OTHER,
    "SRM: Held": Milestone.OTHER,
    "SRM: Transfer Failed (E.Sys.)": Milestone.OTHER,
    "Receive Order Confirmation": Milestone.ACKNOWLEDGED,
    "Update Order Confirmation": Milestone.ACKNOWLEDGED,
    "Record Goods Receipt": Milestone.GOODS_RECEIPT,
    "Record Service Entry Sheet": Milestone.GOODS_RECEIPT,
    "Cancel Goods Receipt": Milestone.RECEIPT_CANCELLED,
    "Vendor creates invoice": Milestone.VENDOR_INVOICE,
    "Vendor creates debit memo": Milestone.VENDOR_INVOICE,
    "Record Invoice Receipt": Milestone.INVOICE,
    "Record Subsequent Invoice": Milestone.INVOICE,
    "Cancel Invoice Receipt": Milestone.INVOICE_CANCELLED,
    "Cancel Subsequent Invoice": Milestone.INVOICE_CANCELLED,
    "Set Payment Block": Milestone.PAYMENT_BLOCK,
    "Remove Payment Block": Milestone.PAYMENT_BLOCK,
    "Clear Invoice": Milestone.PAYMENT,
    "Change Quantity": Milestone.CHANGE,
    "Change Price": Milestone.CHANGE,
    "Change Delivery Indicator": Milestone.CHANGE,
    "Change Approval for Purchase Order": Milestone.CHANGE,
    "Change Storage Location": Milestone.OTHER,
    "Change Currency": Milestone.CHANGE,
    "Change payment term": Milestone.CHANGE,
    "Change Final Invoice Indicator": Milestone.OTHER,
    "Change Rejection Indicator": Milestone.OTHER,
    "Block Purchase Order Item": Milestone.OTHER,
    "Reactivate Purchase Order Item": Milestone.REACTIVATED,
    "Delete Purchase Order Item": Milestone.CANCELLED,
}
"""The BPI Challenge 2019 activities (all 42 of the full log) as potrack milestones.

Goods receipts and service entry sheets both count as receipts — but a service entry sheet
recorded at the same instant as a goods receipt of the same case is that receipt, not a second
one (see :attr:`LogFormat.same_receipt`); "Vendor creates invoice" is the supplier's invoice
date (day precision) and "Record Invoice Receipt" the invoice recorded; a cleared invoice is a
payment; quantity, price, delivery, approval, currency and payment-term changes are revisions;
deleting an item cancels the case unless it is reactivated afterwards.  "SRM: Deleted" is *not*
a cancellation: it is the SRM front end's status of a shopping-cart document, and the item goes
on (in the shared sample, its one case is then received, invoiced and paid; on a larger subset
37 of 48).  The evidence, activity by activity, is in ``docs/metrics.md``.
"""

BPI2019_FLOWS: dict[str, MatchLevel | None] = {
    "3-way match, invoice before GR": MatchLevel.THREE_WAY,
    "3-way match, invoice after GR": MatchLevel.THREE_WAY,
    "2-way match": MatchLevel.TWO_WAY,
    "Consignment": None,
}
"""The BPI item categories as matching levels (consignment is not invoiced per receipt)."""


@attrs.frozen
class LogFormat:
    """Where an event log keeps what: column names, the activity and flow mappings.

    Only ``case``, ``activity`` and ``timestamp`` are required; a column left empty is not read.
    ``exceptions`` names the activities that show an invoice went wrong (for the first-pass match
    rate); ``day_precision`` those stamped to the day only (reported, and kept).
    """

    name: str
    case: str
    activity: str
    timestamp: str
    supplier: str = ""
    category: str = ""
    department: str = ""
    company: str = ""
    flow: str = ""
    value: str = ""
    currency: str = ""
    activities: Mapping[str, Milestone] = attrs.field(factory=lambda: dict(BPI2019_ACTIVITIES))
    flows: Mapping[str, MatchLevel | None] = attrs.field(factory=lambda: dict(BPI2019_FLOWS))
    exceptions: Mapping[str, str] = attrs.field(
        factory=lambda: {
            "Set Payment Block": "payment block",
            "Remove Payment Block": "payment block",
            "Cancel Invoice Receipt": "invoice cancelled",
            "Cancel Subsequent Invoice": "invoice cancelled",
        }
    )
    day_precision: frozenset[str] = frozenset(
        {"Vendor creates invoice", "Vendor creates debit memo"}
    )
    same_receipt: frozenset[str] = frozenset({"Record Service Entry Sheet"})
    """Receipt activities that, stamped at the same instant as a goods receipt of the same case,
    record that receipt rather than another one (BPI 2019: 527 of the sample's 529 service entry
    sheets sit on a goods receipt's instant).  At another instant they count as a receipt."""


BPI2019 = LogFormat(
    name="BPI Challenge 2019",
    case="case_concept_name",
    activity="event_concept_name",
    timestamp="event_time_timestamp",
    supplier="case_Vendor",
    category="case_Spend_area_text",
    department="case_Sub_spend_area_text",
    company="case_Company",
    flow="case_Item_Category",
    value="event_Cumulative_net_worth_(EUR)",
    currency="EUR",
)
"""The BPI Challenge 2019 CSV (the 4TU release as exported by pm4py): one case per PO item;
spend area as category and sub spend area as department; net worth in EUR."""


class Event(NamedTuple):
    """One row of an event log (for :func:`fold_events`: logs already in memory)."""

    case: str
    activity: str
    at: datetime
    supplier: str = ""
    category: str = ""
    department: str = ""
    company: str = ""
    flow: str = ""
    value: Decimal | None = None


@attrs.frozen
class QualityFinding:
    """Something odd in a log: what, how often, and a few examples (cases, rows or values)."""

    kind: str
    count: int
    detail: str
    examples: tuple[str, ...] = ()


@attrs.frozen
class EventLog:
    """A log folded into order facts, with its shape and its quirks.

    ``cases`` in the order they first appear; ``activities`` and ``flows`` are counts (most
    frequent first; flows count cases).  Every data row of a CSV is exactly one of: an event
    (``events``), an exact duplicate of an earlier row (``duplicate_rows``: the same text,
    line endings aside, found by a 64-bit hash of each record; dropped), or
    unreadable (``skipped_rows``: no case, no readable timestamp, too short); ``problem_rows``
    counts the events kept with a problem (an unreadable value, an implausible timestamp, unused
    trailing columns missing).  ``quality`` says which, with line numbers.
    """

    format: str
    cases: tuple[OrderFacts, ...]
    events: int
    activities: tuple[tuple[str, int], ...]
    flows: tuple[tuple[str, int], ...]
    quality: tuple[QualityFinding, ...]
    skipped_rows: int = 0
    duplicate_rows: int = 0
    problem_rows: int = 0

    def finding(self, kind: str) -> QualityFinding | None:
        """The quality finding of that kind, if the log has it."""
        return next((f for f in self.quality if f.kind == kind), None)


class _Case:
    """One case being folded (mutable; becomes an OrderFacts at the end)."""

    __slots__ = (
        "category",
        "company",
        "counts",
        "department",
        "exceptions",
        "first",
        "flow",
        "id",
        "last",
        "price_changes",
        "receipts",
        "same_receipts",
        "supplier",
        "value",
    )

    def __init__(self, case: str) -> None:
        self.id = case
        self.first: list[datetime | None] = [None] * _COUNT
        self.last: list[datetime | None] = [None] * _COUNT
        self.counts = [0] * _COUNT
        self.supplier = self.category = self.department = self.company = self.flow = ""
        self.value: Decimal | None = None
        self.exceptions: set[str] | None = None
        self.price_changes: list[datetime] | None = None
        self.receipts: list[datetime] | None = None
        self.same_receipts: list[datetime] | None = None


class _Folder:
    """Folds events into cases, counting what it sees (one pass, one dict lookup per event)."""

    def __init__(self, fmt: LogFormat) -> None:
        self.fmt = fmt
        self.index: dict[str, int] = {a: int(m) for a, m in fmt.activities.items()}
        self.same_receipt = fmt.same_receipt
        self.cases: dict[str, _Case] = {}
        self.activity_counts: Counter[str] = Counter()
        self.unmapped: Counter[str] = Counter()
        self.events = 0
        self.skipped = 0
        self.duplicates = 0
        self.duplicate_examples: list[str] = []
        self.problems: dict[str, list[str]] = defaultdict(list)
        self.problem_counts: Counter[str] = Counter()
        self.kept: dict[str, list[str]] = defaultdict(list)
        self.kept_counts: Counter[str] = Counter()
        self.problem_rows = 0

    def skip(self, kind: str, where: str) -> None:
        self.skipped += 1
        self.problem_counts[kind] += 1
        if len(self.problems[kind]) < _EXAMPLES:
            self.problems[kind].append(where)

    def keep(self, kind: str, where: str) -> None:
        """A row kept with a problem (call once per problem; count the row once yourself)."""
        self.kept_counts[kind] += 1
        if len(self.kept[kind]) < _EXAMPLES:
            self.kept[kind].append(where)

    def duplicate(self, where: str) -> None:
        self.duplicates += 1
        if len(self.duplicate_examples) < _EXAMPLES:
            self.duplicate_examples.append(where)

    def add(self, case_id: str, activity: str, at: datetime) -> _Case:
        self.events += 1
        self.activity_counts[activity] += 1
        case = self.cases.get(case_id)
        if case is None:
            case = self.cases[case_id] = _Case(case_id)
        i = self.index.get(activity)
        if i is None:
            self.unmapped[activity] += 1
            i = 15  # Milestone.OTHER
        first = case.first[i]
        if first is None or at < first:
            case.first[i] = at
        last = case.last[i]
        if last is None or at > last:
            case.last[i] = at
        if i != _RECEIPT:
            case.counts[i] += 1
        elif activity in self.same_receipt:
            # Counted at the end, once every receipt of the case is known (see _extra_receipts).
            if case.same_receipts is None:
                case.same_receipts = []
            case.same_receipts.append(at)
        else:
            case.counts[i] += 1
            if case.receipts is None:
                case.receipts = []
            case.receipts.append(at)
        reason = self.fmt.exceptions.get(activity)
        if reason is not None:
            if case.exceptions is None:
                case.exceptions = set()
            case.exceptions.add(reason)
        elif activity == "Change Price":
            if case.price_changes is None:
                case.price_changes = []
            case.price_changes.append(at)
        return case

    def result(self) -> EventLog:
        fmt = self.fmt
        flows: Counter[str] = Counter()
        facts = []
        before_po: list[str] = []
        invoice_before_po: list[str] = []
        repeated_receipts: list[str] = []
        repeated_invoices: list[str] = []
        no_po: list[str] = []
        counts = Counter[str]()
        for case in self.cases.values():
            if case.same_receipts:
                case.counts[_RECEIPT] += _extra_receipts(case)
            flows[case.flow] += 1
            created = case.first[PO_CREATED]
            received = case.first[GOODS_RECEIPT]
            invoiced_at = case.first[INVOICE]
            if created is None:
                counts["no order creation"] += 1
                _example(no_po, case.id)
            elif received is not None and received < created:
                counts["goods receipt before the order"] += 1
                _example(before_po, case.id)
            if created is not None and invoiced_at is not None and invoiced_at < created:
                counts["invoice before the order"] += 1
                _example(invoice_before_po, case.id)
            if case.counts[GOODS_RECEIPT] > 1:
                counts["repeated goods receipts"] += 1
                _example(repeated_receipts, case.id)
            if case.counts[INVOICE] > 1:
                counts["repeated invoices"] += 1
                _example(repeated_invoices, case.id)
            facts.append(_facts(case, fmt))
        quality: list[QualityFinding] = []

        def add(kind: str, detail: str, examples: list[str]) -> None:
            if counts[kind]:
                # The smallest case ids: the same examples whatever the order of the log.
                shown = tuple(sorted(examples)[:_EXAMPLES])
                quality.append(QualityFinding(kind, counts[kind], detail, shown))

        add(
            "goods receipt before the order",
            "cases whose first receipt is stamped before the order item was created; kept, and "
            "by default left out of cycle times as 'ends before it starts' (negative='keep' "
            "keeps them as negative durations)",
            before_po,
        )
        add(
            "invoice before the order",
            "cases whose first recorded invoice is stamped before the order item was created",
            invoice_before_po,
        )
        add("no order creation", "cases without an order-creation event", no_po)
        add(
            "repeated goods receipts",
            "cases received more than once (partial deliveries; a service entry sheet at the "
            "instant of a goods receipt is that receipt)",
            repeated_receipts,
        )
        add("repeated invoices", "cases invoiced more than once", repeated_invoices)
        day = sum(self.activity_counts[a] for a in fmt.day_precision)
        if day:
            quality.append(
                QualityFinding(
                    "day-precision stamps",
                    day,
                    "events stamped to the day only (at 23:59): their order within the day is "
                    "unknown",
                    tuple(sorted(a for a in fmt.day_precision if self.activity_counts[a])),
                )
            )
        set_block = self.activity_counts["Set Payment Block"]
        removed = self.activity_counts["Remove Payment Block"]
        if removed > set_block:
            quality.append(
                QualityFinding(
                    "payment blocks removed but never set",
                    removed - set_block,
                    f"{removed} removals for {set_block} blocks: the log is incomplete there",
                )
            )
        if self.unmapped:
            quality.append(
                QualityFinding(
                    "unmapped activity",
                    sum(self.unmapped.values()),
                    "events whose activity the format does not map (kept as 'other')",
                    tuple(a for a, _ in self.unmapped.most_common(_EXAMPLES)),
                )
            )
        if self.duplicates:
            quality.append(
                QualityFinding(
                    "duplicate row",
                    self.duplicates,
                    "rows with the same text as an earlier row (line endings aside): dropped",
                    tuple(self.duplicate_examples),
                )
            )
        for kind, n in sorted(self.kept_counts.items()):
            quality.append(
                QualityFinding(kind, n, f"rows kept: {_KEPT[kind]}", tuple(self.kept[kind]))
            )
        for kind, n in sorted(self.problem_counts.items()):
            quality.append(QualityFinding(kind, n, "rows skipped", tuple(self.problems[kind])))
        return EventLog(
            format=fmt.name,
            cases=tuple(facts),
            events=self.events,
            activities=tuple(self.activity_counts.most_common()),
            flows=tuple(flows.most_common()),
            quality=tuple(quality),
            skipped_rows=self.skipped,
            duplicate_rows=self.duplicates,
            problem_rows=self.problem_rows,
        )


_RECEIPT = int(GOODS_RECEIPT)
_KEPT = {
    "implausible timestamp": "stamped before 1990 or after 2100",
    "short row, unused columns missing": "shorter than the header, but every column the "
    "format reads is there",
    "unreadable value": "the value is not a decimal number (the case keeps the value it had)",
}


def _extra_receipts(case: _Case) -> int:
    """Service entry sheets beyond the goods receipts at the same instant (each one a receipt
    of its own); at most as many as sheets, whatever the order the events came in."""
    sheets = Counter(case.same_receipts or ())
    receipts = Counter(case.receipts or ())
    return sum(max(0, n - receipts[t]) for t, n in sheets.items())


def _example(examples: list[str], case: str) -> None:
    examples.append(case)


def _facts(case: _Case, fmt: LogFormat) -> OrderFacts:
    invoices = case.counts[INVOICE] - case.counts[INVOICE_CANCELLED]
    value = case.value if case.value is not None else _ZERO
    mismatched: bool | None = None
    exceptions: tuple[str, ...] = ()
    if case.counts[INVOICE]:
        found = set(case.exceptions or ())
        first_invoice = case.first[INVOICE]
        if (
            case.price_changes
            and first_invoice is not None
            and any(t > first_invoice for t in case.price_changes)
        ):
            found.add("price changed after invoice")
        exceptions = tuple(sorted(found))
        mismatched = bool(found)
    return OrderFacts(
        id=case.id,
        supplier=case.supplier,
        category=case.category,
        department=case.department,
        company=case.company,
        currency=fmt.currency,
        value=value,
        invoiced=value if invoices > 0 else _ZERO,
        match_level=fmt.flows.get(case.flow),
        first=tuple(case.first),
        last=tuple(case.last),
        counts=tuple(case.counts),
        mismatched=mismatched,
        exceptions=exceptions,
    )


_PLAUSIBLE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def fold_events(events: Iterable[Event], fmt: LogFormat = BPI2019) -> EventLog:
    """Fold events already in memory (in any order) into order facts.

    Case attributes are taken from a case's first event that carries them; the order value from
    its order-creation event (else the last value seen).
    """
    folder = _Folder(fmt)
    add = folder.add
    for e in events:
        case = add(e.case, e.activity, e.at)
        if not case.supplier and e.supplier:
            case.supplier, case.category, case.department = e.supplier, e.category, e.department
            case.company, case.flow = e.company, e.flow
        if e.value is not None and (case.value is None or e.activity in _CREATION):
            case.value = e.value
    return folder.result()


_CREATION = frozenset({"Create Purchase Order Item"})


def read_event_log(
    source: str | Path | TextIO | Iterable[str], fmt: LogFormat = BPI2019
) -> EventLog:
    """Read a CSV event log (a path, an open text file, or lines) in one pass.

    Timestamps are ISO 8601 (``2019-01-07 10:00:00+00:00``); a stamp without an offset is taken
    as UTC.  Values are decimal numbers (``7815013.0``).

    Raises:
        ValidationError: the header lacks a column the format names (every missing one listed).
        OSError: the file cannot be read.
    """
    if isinstance(source, str | Path):
        with Path(source).open(newline="", encoding="utf-8") as fh:
            return read_event_log(fh, fmt)
    captured: list[str] = []
    rows = csv.reader(_capturing(source, captured))
    header = next(rows, None)
    if header is None:
        raise ValidationError(f"{fmt.name} log", [Problem("header", "the file is empty")])
    captured.clear()
    columns = {name: i for i, name in enumerate(header)}
    wanted = {
        "case": fmt.case,
        "activity": fmt.activity,
        "timestamp": fmt.timestamp,
        "supplier": fmt.supplier,
        "category": fmt.category,
        "department": fmt.department,
        "company": fmt.company,
        "flow": fmt.flow,
        "value": fmt.value,
    }
    missing = [
        Problem(role, f"no column {name!r} in the header")
        for role, name in wanted.items()
        if name and name not in columns
    ]
    if missing:
        raise ValidationError(f"{fmt.name} log", missing)
    ci, ai, ti = columns[fmt.case], columns[fmt.activity], columns[fmt.timestamp]
    attr_columns = [
        columns[name] if name else None
        for name in (fmt.supplier, fmt.category, fmt.department, fmt.company, fmt.flow)
    ]
    vi = columns[fmt.value] if fmt.value else None
    # Only the columns the format reads must be there; a missing unused one is reported.
    width = max(columns[name] for name in wanted.values() if name) + 1
    full = len(header)
    folder = _Folder(fmt)
    add = folder.add
    stamps: dict[str, datetime] = {}
    values: dict[str, Decimal | None] = {}
    seen: set[int] = set()
    low, high = _PLAUSIBLE
    for line_no, row in enumerate(rows, start=2):
        line = captured[0] if len(captured) == 1 else "".join(captured)
        captured.clear()
        if len(row) < width:
            folder.skip("short row", f"line {line_no}")
            continue
        case_id = row[ci]
        if not case_id:
            folder.skip("no case id", f"line {line_no}")
            continue
        text = row[ti]
        at = stamps.get(text)
        if at is None:
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                folder.skip("unreadable timestamp", f"line {line_no}: {text!r}")
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            if len(stamps) < 2_000_000:
                stamps[text] = at
        # The 64-bit hash of the record's text: one string, about half the instructions of
        # hashing its fields (and a third of a 128-bit digest's time).  A false match among the
        # full BPI log's 1.6 million rows has a chance of about 7 in 100 million (n² / 2⁶⁵); a
        # set of ints costs far less memory than keeping the rows.
        digest = hash(line.rstrip("\r\n"))
        if digest in seen:
            folder.duplicate(f"line {line_no}")
            continue
        seen.add(digest)
        problem = False
        if len(row) < full:
            folder.keep("short row, unused columns missing", f"line {line_no}")
            problem = True
        if not low <= at < high:
            folder.keep("implausible timestamp", f"line {line_no}: {text}")
            problem = True
        activity = row[ai]
        known = case_id in folder.cases
        case = add(case_id, activity, at)
        value: Decimal | None = None
        # A value is read where it is used: the order's creation, else the case's first value.
        if vi is not None and row[vi] and (case.value is None or activity in _CREATION):
            raw = row[vi]
            if raw in values:
                value = values[raw]
            else:
                try:
                    value = Decimal(raw)
                    if not value.is_finite():
                        value = None
                except InvalidOperation:
                    value = None
                if len(values) < 1_000_000:
                    values[raw] = value
            if value is None:
                folder.keep("unreadable value", f"line {line_no}: {raw!r}")
                problem = True
        if problem:
            folder.problem_rows += 1
        if not known:
            case.supplier, case.category, case.department, case.company, case.flow = (
                row[i] if i is not None else "" for i in attr_columns
            )
        if value is not None and (case.value is None or activity in _CREATION):
            case.value = value
    return folder.result()


def _capturing(lines: Iterable[str], captured: list[str]) -> Iterator[str]:
    """The lines, each also appended to ``captured`` (the text of the record being read)."""
    for line in lines:
        captured.append(line)
        yield line


def iter_csv_events(source: TextIO, fmt: LogFormat = BPI2019) -> Iterator[Event]:
    """The rows of a CSV log as :class:`Event` s (unreadable rows are skipped silently; use
    :func:`read_event_log` to have them reported)."""
    for row in csv.DictReader(source):
        try:
            at = datetime.fromisoformat(row[fmt.timestamp])
        except (ValueError, KeyError):
            continue
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        raw = row.get(fmt.value) if fmt.value else None
        try:
            value = Decimal(raw) if raw else None
        except InvalidOperation:
            value = None
        yield Event(
            case=row.get(fmt.case, ""),
            activity=row.get(fmt.activity, ""),
            at=at,
            supplier=row.get(fmt.supplier, "") if fmt.supplier else "",
            category=row.get(fmt.category, "") if fmt.category else "",
            department=row.get(fmt.department, "") if fmt.department else "",
            company=row.get(fmt.company, "") if fmt.company else "",
            flow=row.get(fmt.flow, "") if fmt.flow else "",
            value=value,
        )


_CASE_EXAMPLES = frozenset(
    {
        "goods receipt before the order",
        "invoice before the order",
        "no order creation",
        "repeated goods receipts",
        "repeated invoices",
    }
)


def merge_logs(*logs: EventLog) -> EventLog:
    """One log from logs holding disjoint sets of cases (a log read in parts: per company, per
    year of creation, per extract file), as if it had been read whole.

    Cases are concatenated in the order given; events, activities, flows and row counts add
    up; the quality findings are merged (counts added, the smallest case ids as examples, the
    payment-block finding recomputed from the merged activity counts).  Exact duplicate rows
    are found within each part only.  Every KPI of the merged log equals the KPI of the whole.

    Raises:
        ValidationError: no logs, logs of different formats, or a case in more than one log
            (its events would have to be folded together: read those parts as one).
    """
    if not logs:
        raise ValidationError("merge_logs", [Problem("logs", "give at least one log")])
    formats = sorted({log.format for log in logs})
    seen: set[str] = set()
    shared: list[str] = []
    for log in logs:
        for case in log.cases:
            if case.id in seen:
                shared.append(case.id)
            seen.add(case.id)
    problems = []
    if len(formats) > 1:
        problems.append(Problem("logs", f"one format, got {', '.join(formats)}"))
    if shared:
        problems.append(
            Problem(
                "cases",
                f"{len(shared)} cases in more than one log (e.g. {', '.join(sorted(shared)[:5])}):"
                " read the parts holding a case as one log",
            )
        )
    if problems:
        raise ValidationError("merge_logs", problems)
    activities: Counter[str] = Counter()
    flows: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    details: dict[str, str] = {}
    examples: dict[str, list[str]] = defaultdict(list)
    for log in logs:
        activities.update(dict(log.activities))
        flows.update(dict(log.flows))
        for f in log.quality:
            counts[f.kind] += f.count
            details.setdefault(f.kind, f.detail)
            examples[f.kind].extend(f.examples)
    quality = []
    for kind in counts:
        if kind == "payment blocks removed but never set":
            continue
        shown = examples[kind]
        if kind in _CASE_EXAMPLES:
            shown = sorted(shown)
        elif kind == "unmapped activity":
            shown = [a for a, _ in Counter({a: activities[a] for a in shown}).most_common()]
        elif kind == "day-precision stamps":
            shown = sorted(set(shown))
        quality.append(QualityFinding(kind, counts[kind], details[kind], tuple(shown[:_EXAMPLES])))
    set_block = activities["Set Payment Block"]
    removed = activities["Remove Payment Block"]
    if removed > set_block:
        quality.append(
            QualityFinding(
                "payment blocks removed but never set",
                removed - set_block,
                f"{removed} removals for {set_block} blocks: the log is incomplete there",
            )
        )
    return EventLog(
        format=formats[0],
        cases=tuple(case for log in logs for case in log.cases),
        events=sum(log.events for log in logs),
        activities=tuple(activities.most_common()),
        flows=tuple(flows.most_common()),
        quality=tuple(quality),
        skipped_rows=sum(log.skipped_rows for log in logs),
        duplicate_rows=sum(log.duplicate_rows for log in logs),
        problem_rows=sum(log.problem_rows for log in logs),
    )
