"""The docs' lifecycle tables and diagrams are generated from the code and must not drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
assert _spec is not None and _spec.loader is not None
gen_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_docs)


def test_generated_blocks_exist() -> None:
    text = (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    for name in gen_docs.BLOCKS:
        assert f"<!-- generated:{name} -->" in text


@pytest.mark.parametrize("page", gen_docs.pages(), ids=lambda p: p.name)
def test_docs_match_the_declared_tables(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert gen_docs.regenerate(text) == text, (
        f"{page} drifted from the lifecycle tables: run python scripts/gen_docs.py"
    )


def test_the_table_lists_every_event_with_its_roles() -> None:
    table = gen_docs.BLOCKS["po-table"]()
    assert "| `receive` (ReceiveGoods) | `issued`, `acknowledged`, `in_fulfilment` |" in table
    assert "an approver of the open step" in table
    diagram = gen_docs.BLOCKS["po-diagram"]()
    assert "approved --> issued: issue" in diagram
    assert "cancelled --> [*]" in diagram
