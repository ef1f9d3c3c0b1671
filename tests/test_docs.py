"""Code examples in docs/ run as tests (``>>>`` examples, checked with doctest)."""

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
