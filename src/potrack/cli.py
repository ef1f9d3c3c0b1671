"""The ``potrack`` command: the demo, KPIs from event logs, matching from files, policy lint,
audit verification and number samples (standard library ``argparse``; no extra dependency).

Exit status: 0 done; 1 the command found something (holds, a broken audit trail, lint errors);
2 bad input (a one-line message on standard error; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from potrack import __version__
from potrack.exceptions import PotrackError

__all__ = ["main"]

_EPILOG = {
    "demo": """
        examples:
          potrack demo                        # a temporary database, English
          potrack demo --db q1.sqlite --locale de_DE
          potrack demo --batch 0              # skip the synthetic batch
    """,
    "kpi": """
        examples:
          potrack kpi ../shared/data/bpi2019/BPI_Challenge_2019_sample.csv
          potrack kpi log.csv --group-by supplier --period quarter --locale de_DE
          potrack kpi log.csv --format json > kpis.json
    """,
    "match": """
        INVOICES.json holds {"purchase_orders": [...], "documents": [...]}: POs as potrack
        writes them (potrack.dumps), and receipts, returns and invoices in the order they
        happened, each as {"receipt": {...}}, {"return": {...}} or {"invoice": {...}}.

        examples:
          potrack match examples/invoices.json --policy examples/tolerances.toml
          potrack match invoices.json --policy tolerances.toml --format json | jq .
        exit status 1 when any invoice ends held (useful in pipelines).
    """,
    "lint": """
        examples:
          potrack policy lint examples/policy.toml
        exit status 1 when the linter finds something.
    """,
    "verify": """
        examples:
          potrack audit verify purchasing.sqlite
          potrack audit verify purchasing.sqlite --anchor 1042:9f2c...e1
          potrack audit verify purchasing.sqlite --key 2026-q4=/etc/potrack/chain-2026-q4.key
        opens the file read-only (never changes it); replays every document from its trail.
        exit status 1 when the trail is broken or a document or message differs from it;
        2 for a file that is not a potrack database of this schema version.
    """,
    "number": """
        examples:
          potrack number 'PO-{dept}-{yyyy}-{seq:05}' --sample
          potrack number 'PO-{initials}-{yy}{seq:04}{check:mod97}' --sample --count 3 \\
              --supplier 'Acme Tool Works' --date 2026-12-31
          potrack number 'PO-{dept}-{yyyy}-{seq:05}' --parse PO-OPS-2026-00042
    """,
}


class _Refused(Exception):
    """Bad input detected by the command itself (a one-line message)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="potrack",
        description="Purchase-order tracking: lifecycle, approval, numbering, matching, KPIs.",
        epilog="Run 'potrack COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"potrack {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def sub(
        group: Any, name: str, helptext: str, epilog: str, run: Callable[..., int]
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(
            name,
            help=helptext,
            description=helptext,
            epilog=textwrap.dedent(epilog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS: `potrack --debug CMD` must not be reset by the sub-command's own default
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        p.set_defaults(run=run)
        return p

    demo = sub(
        commands,
        "demo",
        "run a complete procurement scenario on the SQLite store and explain each step",
        _EPILOG["demo"],
        _demo,
    )
    demo.add_argument("--db", help="database file to use (default: a temporary file)")
    demo.add_argument("--locale", default="en_US", help="money and dates format (default en_US)")
    demo.add_argument(
        "--batch", type=int, default=20_000, help="synthetic invoice lines to match (default 20000)"
    )

    kpi = sub(
        commands,
        "kpi",
        "KPIs from a BPI Challenge 2019-format event log (CSV)",
        _EPILOG["kpi"],
        _kpi,
    )
    kpi.add_argument("log", metavar="LOG.csv")
    kpi.add_argument("--group-by", nargs="*", default=[], metavar="DIM", help="supplier, ...")
    kpi.add_argument("--period", default="month", help="month, quarter or year")
    kpi.add_argument("--locale", default="en_US")
    kpi.add_argument("--format", choices=("text", "json"), default="text")

    match = sub(
        commands,
        "match",
        "match invoices from a JSON file against their POs and receipts",
        _EPILOG["match"],
        _match,
    )
    match.add_argument("invoices", metavar="INVOICES.json")
    match.add_argument("--policy", required=True, metavar="POLICY.toml", help="tolerance policy")
    match.add_argument("--locale", default="en_US")
    match.add_argument("--format", choices=("text", "json"), default="text")

    policy = commands.add_parser("policy", help="approval policy tools")
    lint = sub(
        policy.add_subparsers(dest="action", metavar="ACTION", required=True),
        "lint",
        "check an approval policy: overlaps, gaps, rules that never fire, unknown roles",
        _EPILOG["lint"],
        _lint,
    )
    lint.add_argument("policy", metavar="POLICY.toml")

    audit = commands.add_parser("audit", help="audit trail tools")
    verify = sub(
        audit.add_subparsers(dest="action", metavar="ACTION", required=True),
        "verify",
        "verify the hash-chained audit trail of a potrack SQLite database",
        _EPILOG["verify"],
        _verify,
    )
    verify.add_argument("db", metavar="DB")
    verify.add_argument("--anchor", help="POSITION:HASH kept from an earlier verification")
    verify.add_argument(
        "--key",
        action="append",
        metavar="KEY_ID=FILE",
        help="a chain key: its id and a file holding its secret (repeat for rotated keys); "
        "every record must then be keyed",
    )
    verify.add_argument(
        "--keyed-from",
        type=int,
        default=1,
        metavar="POSITION",
        help="with --key: the first position that must be keyed (default 1)",
    )

    number = sub(
        commands,
        "number",
        "try a numbering pattern: sample numbers, or parse one",
        _EPILOG["number"],
        _number,
    )
    number.add_argument("pattern", metavar="PATTERN")
    number.add_argument("--sample", action="store_true", help="show sample numbers")
    number.add_argument("--count", type=int, default=5, help="how many samples (default 5)")
    number.add_argument("--parse", metavar="NUMBER", help="parse and validate a number")
    number.add_argument("--dept", default="OPS")
    number.add_argument("--supplier", default="Acme Tool Works", help="supplier name")
    number.add_argument("--supplier-code", default="ACME")
    number.add_argument("--company", default="HQ")
    number.add_argument("--site", default="MAIN")
    number.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    return parser


# -- commands ----------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from babel import Locale, UnknownLocaleError

    from potrack.demo import run_demo

    try:
        Locale.parse(args.locale)
    except (UnknownLocaleError, ValueError):
        raise _Refused(f"unknown locale {args.locale!r}; try en_US, de_DE, fr_FR") from None
    if args.batch < 0:
        raise _Refused(f"--batch must be 0 or more, got {args.batch}")
    summary = run_demo(args.db, locale=args.locale, out=out, batch_lines=args.batch)
    return 0 if summary.audit.ok else 1


def _kpi(args: argparse.Namespace, out: TextIO) -> int:
    from potrack.eventlog import read_event_log
    from potrack.metrics import standard_kpis

    path = _existing(args.log)
    log = read_event_log(path)
    kpis = standard_kpis(list(log.cases), group_by=tuple(args.group_by), period=args.period)
    if args.format == "json":
        payload = {
            "log": str(path),
            "cases": len(log.cases),
            "events": log.events,
            "flows": dict(log.flows),
            "quality": {f.kind: f.count for f in log.quality},
            "kpis": {name: result.to_rows() for name, result in kpis.items()},
        }
        json.dump(payload, out, indent=2, default=str, ensure_ascii=False)
        out.write("\n")
        return 0
    out.write(f"{path}: {len(log.cases):,} cases, {log.events:,} events ({log.format})\n")
    out.write("flows: " + ", ".join(f"{k} {v:,}" for k, v in log.flows) + "\n")
    for finding in log.quality:
        out.write(f"data quality: {finding.kind}: {finding.count:,}\n")
    for result in kpis.values():
        out.write("\n" + result.table(args.locale) + "\n")
    return 0


def _match(args: argparse.Namespace, out: TextIO) -> int:
    from potrack.matching import (
        BatchMatcher,
        MatchResult,
        lint_tolerance_policy,
        load_tolerance_policy,
    )
    from potrack.money import format_money
    from potrack.records import GoodsReceipt, GoodsReturn, Invoice, PurchaseOrder
    from potrack.serialization import make_converter

    policy = load_tolerance_policy(_existing(args.policy))
    path = _existing(args.invoices)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise _Refused(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, dict) or "purchase_orders" not in data or "documents" not in data:
        raise _Refused(f"{path}: expected an object with 'purchase_orders' and 'documents'")
    conv = make_converter()
    orders = {
        po.id: po for po in (conv.structure(raw, PurchaseOrder) for raw in data["purchase_orders"])
    }
    kinds: dict[str, type[Any]] = {
        "receipt": GoodsReceipt,
        "return": GoodsReturn,
        "invoice": Invoice,
    }
    matcher = BatchMatcher(orders, policy)
    latest: dict[str, MatchResult] = {}
    for n, item in enumerate(data["documents"]):
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in kinds:
            raise _Refused(
                f"{path}: documents[{n}]: expected {{'receipt'|'return'|'invoice': {{...}}}}"
            )
        ((kind, raw),) = item.items()
        for result in matcher.feed(conv.structure(raw, kinds[kind])):
            latest[result.invoice_id] = result
    held = [r for r in latest.values() if r.held.amount > 0]
    warnings = [str(w) for w in lint_tolerance_policy(policy)]
    if args.format == "json":
        # Each result in full (``match``: what potrack.loads(..., MatchResult) reads back), and
        # each finding as data — expected, actual, variance and its percent, limit, rule,
        # whether it blocks — with its sentence.
        rows = [
            {
                "invoice": r.invoice_id,
                "po": r.po_id,
                "status": r.status.value,
                "payable": str(r.payable.amount),
                "held": str(r.held.amount),
                "currency": str(r.payable.currency),
                "checks_off": list(r.checks_off),
                "findings": [
                    {
                        **conv.unstructure(f),
                        "line": f.invoice_line_no,
                        "blocking": f.blocking,
                        "text": f.sentence(args.locale),
                    }
                    for f in r.findings
                ],
                "match": conv.unstructure(r),
            }
            for r in latest.values()
        ]
        report = {"policy": policy.name, "warnings": warnings, "results": rows}
        json.dump(report, out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        for warning in warnings:
            out.write(f"warning: {warning}\n")
        for r in latest.values():
            out.write(
                f"{r.invoice_id} (PO {r.po_id}): {r.status.value.replace('_', ' ')} — payable "
                f"{format_money(r.payable, args.locale)}, held {format_money(r.held, args.locale)}\n"
            )
            for f in r.findings:
                out.write(f"  · {f.sentence(args.locale)}\n")
        out.write(f"{len(latest)} invoices, {len(held)} held (policy {policy.name})\n")
    return 1 if held else 0


def _lint(args: argparse.Namespace, out: TextIO) -> int:
    from potrack.approval import lint_policy, load_policy

    path = _existing(args.policy)
    policy = load_policy(path)
    findings = lint_policy(policy)
    for finding in findings:
        out.write(f"{finding}\n")
    out.write(f"{path}: {len(policy.rules)} rules, {len(findings)} findings\n")
    return 1 if findings else 0


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    from potrack.audit import ChainKey, parse_anchor, verify
    from potrack.sqlite import SQLiteFile

    path = _existing(args.db)
    anchor = None if args.anchor is None else parse_anchor(args.anchor)
    keys = None
    if args.key:
        keys = []
        for spec in args.key:
            key_id, sep, key_file = spec.partition("=")
            if not sep or not key_id or not key_file:
                raise _Refused(f"--key must be KEY_ID=FILE, got {spec!r}")
            # The secret exactly as the host gives it to ChainKey; one trailing newline (an
            # editor's) is not part of it.
            secret = _existing(key_file).read_bytes().removesuffix(b"\n")
            keys.append(ChainKey(key_id, secret))
    report = verify(SQLiteFile(path), anchor, keys=keys, keyed_from=args.keyed_from)
    out.write(f"{path}: {report}\n")
    if report.ok:
        out.write(f"anchor to keep: {report.head[0]}:{report.head[1]}\n")
    return 0 if report.ok else 1


def _number(args: argparse.Namespace, out: TextIO) -> int:
    from potrack.memory import InMemoryStore
    from potrack.numbering import GaplessAllocator, NumberingContext, NumberingScheme
    from potrack.records import Supplier, SupplierId

    scheme = NumberingScheme(args.pattern)
    if args.parse:
        parsed = scheme.parse(args.parse)
        out.write(f"{args.parse}: valid\n")
        for name, value in parsed.values:
            out.write(f"  {name}: {value}\n")
        out.write(f"  counter: {parsed.counter} (scope {parsed.scope!r})\n")
        if parsed.check is not None:
            out.write(f"  check: {parsed.check}\n")
        if parsed.revision is not None:
            out.write(f"  revision: {parsed.revision}\n")
        return 0
    if not args.sample:
        raise _Refused("say --sample to see sample numbers or --parse NUMBER to read one")
    if args.count < 1:
        raise _Refused(f"--count must be at least 1, got {args.count}")
    day = args.date or datetime.now(UTC).date()
    supplier = Supplier(
        id=SupplierId(args.supplier_code), name=args.supplier, code=args.supplier_code
    )
    context = NumberingContext(
        on=day,
        department=args.dept,
        company=args.company,
        site=args.site,
        supplier_code=supplier.code,
        supplier_initials=supplier.initials,
    )
    allocator = GaplessAllocator(scheme)
    store = InMemoryStore()
    for _ in range(args.count):
        with store.unit_of_work() as uow:
            out.write(allocator.allocate(context, uow) + "\n")
    return 0


# -- plumbing ----------------------------------------------------------------------------------------


def _existing(name: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise _Refused(f"{name}: no such file")
    return path


def _one_line(err: BaseException) -> str:
    """The error as one line: its lines joined, a pattern echo with its ``^`` marker dropped."""
    text = str(err).strip() or type(err).__name__
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    kept: list[str] = []
    for line in lines:
        if set(line.strip()) == {"^"}:
            if kept:
                kept.pop()  # the echoed text the marker points into
            continue
        kept.append(line.strip().lstrip("- "))
    if len(kept) > 4:  # a long list of problems: the first few, and how many more
        kept = [*kept[:4], f"and {len(kept) - 4} more (--debug shows everything)"]
    return "; ".join(kept).replace(":;", ":")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``potrack`` command; returns the exit status.

    Raises:
        SystemExit: only from ``--help``/``--version`` and argument errors (argparse's way).
    """
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        status: int = args.run(args, out)
    except KeyboardInterrupt:
        sys.stderr.write("potrack: interrupted\n")
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        sys.stderr.close()
        return 0
    except (PotrackError, _Refused, OSError, ValueError, KeyError) as err:
        if args.debug:
            raise
        sys.stderr.write(f"potrack {args.command}: error: {_one_line(err)}\n")
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
