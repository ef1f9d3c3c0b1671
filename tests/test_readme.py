"""The README's code blocks run, and its set-up commands are the ones CI uses."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_readme_python_blocks_run_in_order(capsys) -> None:  # type: ignore[no-untyped-def]
    namespace: dict[str, object] = {"__name__": "readme"}
    blocks = _blocks("python")
    assert blocks, "the README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "got 2.5 (float)" in out
    assert "which holds version 2" in out
    assert "PO-OPS-2026-00001-36 1" in out
    assert "('route',)" in out
    assert "'level 2: any one role cfo'" in out
    assert "PO-OPS-2026-00001 in_fulfilment partial" in out
    assert "matched_within_tolerance" in out and "(3.00%) above the PO price $60.00" in out
    assert out.rstrip().endswith("26.35")


def test_readme_names_the_two_set_up_commands() -> None:
    commands = re.findall(r"<!-- (\w+)-command -->\n```bash\n(.*?)\n```", README)
    assert [name for name, _ in commands] == ["demo", "test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "test-command" in ci, ".ci/run must run the README's test command"


def test_quickstart_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "refused: invalid PurchaseOrderLine: quantity" in done.stdout
    assert "JSON round trip" in done.stdout
