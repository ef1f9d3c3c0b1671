"""Regenerate the parts of docs/ that are derived from code (the lifecycle tables and diagrams).

Run ``python scripts/gen_docs.py`` after changing a lifecycle table; ``tests/test_docs_generated.py``
fails while the docs drift from the code.  Generated blocks sit between
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from potrack.lifecycle import (
    PO_FINAL,
    PO_TERMINAL,
    PO_TRANSITIONS,
    REQ_TERMINAL,
    REQUISITION_TRANSITIONS,
    transition_diagram_mermaid,
    transition_table_markdown,
)
from potrack.records import POState, RequisitionState

ROOT = Path(__file__).resolve().parent.parent

BLOCKS: dict[str, Callable[[], str]] = {
    "po-table": lambda: transition_table_markdown(PO_TRANSITIONS, list(POState)),
    "po-diagram": lambda: (
        "```mermaid\n"
        + transition_diagram_mermaid(PO_TRANSITIONS, POState.DRAFT, PO_TERMINAL | PO_FINAL)
        + "\n```"
    ),
    "requisition-table": lambda: transition_table_markdown(
        REQUISITION_TRANSITIONS, list(RequisitionState)
    ),
    "requisition-diagram": lambda: (
        "```mermaid\n"
        + transition_diagram_mermaid(REQUISITION_TRANSITIONS, RequisitionState.DRAFT, REQ_TERMINAL)
        + "\n```"
    ),
}


def regenerate(text: str) -> str:
    """``text`` with every generated block rendered afresh."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}")
        return f"<!-- generated:{name} -->\n{BLOCKS[name]()}\n<!-- /generated:{name} -->"

    return re.sub(
        r"<!-- generated:([\w-]+) -->\n.*?\n<!-- /generated:\1 -->", fill, text, flags=re.DOTALL
    )


def pages() -> list[Path]:
    return sorted(p for p in (ROOT / "docs").rglob("*.md") if "<!-- generated:" in p.read_text())


def main() -> int:
    for page in pages():
        old = page.read_text(encoding="utf-8")
        new = regenerate(old)
        if new != old:
            page.write_text(new, encoding="utf-8")
            print(f"updated {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
