"""The ``potrack`` command: every sub-command's output, exit status and one-line errors."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from potrack.cli import main
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    status, text = run("demo", "--db", str(db), "--batch", "1000")
    assert status == 0
    return db, text


def test_demo_tells_the_whole_story(demo_db: tuple[Path, str]) -> None:
    _, text = demo_db
    for phrase in (
        "Olga Petrova (OPS) asks for",
        "route level 2: any one role cfo → carla",
        "✗ Marc Dubois rejects",
        "issued as PO-OPS-2026-0001",
        "issued as PO-IT-2026-0001",
        "Acme acknowledges",
        "Ben accepts: revision 1",
        "DHL JD0146000033",
        "a partial delivery",
        "beyond the 5 % allowance",
        "price $7.10 is $0.60 (9.23%) above the PO price $6.50",
        "matching: awaiting receipt",
        "on hold",
        "duplicates 'NWO-88121'",
        "Tom pays NWO-88121: $8,430.00",
        "nwo 88121 is not paid: held",
        "1,000/1,000 invoice lines",
        "first-pass match rate",
        "on-time delivery",
        "audit trail intact: 43 records",
    ):
        assert phrase in text, phrase
    assert "accepted by ali (new price agreed by phone" in text


def test_demo_speaks_the_locale(tmp_path: Path) -> None:
    status, text = run(
        "demo", "--db", str(tmp_path / "d.sqlite"), "--batch", "0", "--locale", "de_DE"
    )
    assert status == 0
    assert "1.300,00\u00a0$" in text and "02.03.2026" in text  # babel: a no-break space


def test_audit_verify_passes_then_finds_the_edit(demo_db: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = demo_db
    status, text = run("audit", "verify", str(db))
    assert status == 0 and "audit trail intact: 43 records" in text
    anchor = text.split("anchor to keep: ")[1].strip()
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("DROP TRIGGER transitions_no_update")
        conn.execute("UPDATE transitions SET record = record || ' ' WHERE position = 5")
    status, text = run("audit", "verify", str(copy), "--anchor", anchor)
    assert status == 1
    assert "broken at position 5: edited" in text


def test_match_prints_findings_and_fails_on_holds() -> None:
    status, text = run(
        "match", str(EXAMPLES / "invoices.json"), "--policy", str(EXAMPLES / "tolerances.toml")
    )
    assert status == 1
    assert "INV-100 (PO PO-1): matched — payable $500.00" in text
    assert "price $13.75 is $1.25 (10.00%) above the PO price $12.50; limit 5 %" in text
    assert "3 invoices, 2 held (policy example-lenient)" in text


def test_match_json_for_machines() -> None:
    status, text = run(
        "match",
        str(EXAMPLES / "invoices.json"),
        "--policy",
        str(EXAMPLES / "tolerances.toml"),
        "--format",
        "json",
    )
    data = json.loads(text)
    assert status == 1
    assert [(r["invoice"], r["status"], r["payable"]) for r in data["results"]] == [
        ("INV-100", "matched", "500.00"),
        ("INV-101", "held", "0.00"),
        ("INV-102", "held", "0.00"),
    ]
    assert {f["code"] for f in data["results"][2]["findings"]} >= {"duplicate"}


def test_kpi_on_the_bpi_sample(shared_data: Path) -> None:
    log = shared_data / "bpi2019" / "BPI_Challenge_2019_sample.csv"
    status, text = run("kpi", str(log))
    assert status == 0
    assert "1,000 cases, 6,567 events" in text
    assert "  701 |  25.89 | 64.85 | 184.17 |" in text
    assert "negative intervals: exclude: 244 left out" in text
    status, text = run("kpi", str(log), "--format", "json")
    data = json.loads(text)
    assert data["cases"] == 1000 and data["flows"]["2-way match"] == 4
    rate = data["kpis"]["invoice match rate"][-1]
    assert rate["percent"] == "72.44"


def test_policy_lint(tmp_path: Path) -> None:
    assert run("policy", "lint", str(EXAMPLES / "policy.toml")) == (
        0,
        f"{EXAMPLES / 'policy.toml'}: 6 rules, 0 findings\n",
    )
    gap = tmp_path / "gap.toml"
    gap.write_text(
        '[policy]\nname = "gap"\nbase_currency = "USD"\n'
        '[[rules]]\nid = "small"\namount = { max = "1000" }\n'
        '[[rules.steps]]\nlevel = 1\napprover = { role = "approver" }\n'
        '[[rules]]\nid = "big"\namount = { min = "5000" }\n'
        '[[rules.steps]]\nlevel = 1\napprover = { role = "cfo" }\n',
        encoding="utf-8",
    )
    status, text = run("policy", "lint", str(gap))
    assert status == 1
    assert "1,000.00 USD" in text and "5,000.00 USD" in text


def test_number_samples_and_parse() -> None:
    status, text = run(
        "number", "PO-{dept}-{yyyy}-{seq:05}", "--sample", "--count", "2", "--date", "2026-05-01"
    )
    assert (status, text) == (0, "PO-OPS-2026-00001\nPO-OPS-2026-00002\n")
    status, text = run("number", "PO-{dept}-{yyyy}-{seq:05}", "--parse", "PO-IT-2026-00042")
    assert status == 0 and "counter: 42 (scope 'PO-IT-2026-')" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["number", "PO-{dept", "--sample"], "unclosed '{' at position 3"),
        (["number", "PO-{seq:05}", "--parse", "XX"], "'XX' is not a valid document number"),
        (["audit", "verify", "missing.sqlite"], "missing.sqlite: no such file"),
        (["demo", "--locale", "xx_YY"], "unknown locale 'xx_YY'"),
        (["kpi", "missing.csv"], "missing.csv: no such file"),
        (["match", "x.json", "--policy", "y.toml"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*argv)[0] == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_policy_file_lists_problems_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run(
        "match", str(EXAMPLES / "invoices.json"), "--policy", str(EXAMPLES / "policy.toml")
    )
    err = capsys.readouterr().err
    assert status == 2
    assert "base_currency: unknown setting" in err and "more (--debug shows everything)" in err
    assert err.count("\n") == 1


def test_debug_shows_the_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "potrack.cli", "--debug", "number", "PO-{dept", "--sample"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "Traceback" in done.stderr and "PatternError" in done.stderr


@pytest.mark.parametrize("command", ["demo", "kpi", "match", "number"])
def test_every_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["policy", "lint", "--help"], ["audit", "verify", "--help"]])
def test_nested_commands_have_help_with_examples(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert "examples:" in capsys.readouterr().out


def test_match_json_gives_each_result_in_full_and_it_loads_back() -> None:
    from potrack import loads
    from potrack.matching import MatchResult

    status, text = run(
        "match",
        str(EXAMPLES / "invoices.json"),
        "--policy",
        str(EXAMPLES / "tolerances.toml"),
        "--format",
        "json",
    )
    assert status == 1
    data = json.loads(text)
    held = data["results"][1]
    (price,) = [f for f in held["findings"] if f["code"] == "price"]
    assert {k: price[k] for k in ("expected", "actual", "variance", "variance_percent")} == {
        "expected": "12.50",
        "actual": "13.75",
        "variance": "1.25",
        "variance_percent": "10",
    }
    assert (price["limit"], price["rule"], price["blocking"], price["severity"]) == (
        "5 %",
        "default",
        True,
        "block",
    )
    result = loads(json.dumps(held["match"]), MatchResult)
    assert result.invoice_id == held["invoice"]
    assert result.findings[0].variance == Decimal("1.25")
    assert data["warnings"] == []
