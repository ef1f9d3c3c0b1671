"""Code examples in docs/ run as tests: ``>>>`` examples are checked with doctest, and every other
``python`` block runs, in order, in a scratch directory."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = sorted((ROOT / "docs").rglob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_markdown_examples(page: Path) -> doctest.TestResults:
    """Run a Markdown page's ``>>>`` examples; code-fence lines end an example's output."""
    text = re.sub(r"^\s*```.*$", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    test = doctest.DocTestParser().get_doctest(text, {"__name__": "docs"}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_page_examples(page: Path) -> None:
    result = run_markdown_examples(page)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


def _python_blocks(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if ">>>" not in b]


CODE_PAGES = [page for page in PAGES if _python_blocks(page)]


@pytest.mark.parametrize("page", CODE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_page_python_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks run in a scratch directory beside a link to ../shared, so files they write land
    there and paths such as ``../shared/data/...`` still resolve."""
    work = tmp_path / "work"
    work.mkdir()
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    monkeypatch.chdir(work)
    namespace: dict[str, object] = {"__name__": "docs"}
    ran = 0
    for n, block in enumerate(_python_blocks(page)):
        if "../shared/" in block and not shared.is_dir():
            continue
        exec(compile(block, f"{page.name} block {n}", "exec"), namespace)
        ran += 1
    assert ran >= 1
