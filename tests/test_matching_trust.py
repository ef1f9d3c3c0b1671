"""Matching gives the right answer on every invoice an AP department actually sees (issue 25).

Attack tests: each tries to get money paid that should not be, or an answer that is wrong, and
asserts the correct outcome.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pytest

from potrack.exceptions import DuplicateError
from potrack.matching import (
    BatchMatcher,
    FindingCode,
    InvoiceStatus,
    match,
    normalize_invoice_number,
)
from potrack.money import money
from potrack.records import InvoiceKind
from tests.test_matching import invoice, po, received

D = Decimal


# -- a document id seen before --------------------------------------------------------------------


def test_refeeding_the_same_invoice_gives_the_same_result_and_counts_it_once() -> None:
    batch = BatchMatcher({"PO-1": po()})
    batch.feed(received("100"))
    (first,) = batch.feed(invoice("60", iid="INV-1", number="A-1"))
    (again,) = batch.feed(invoice("60", iid="INV-1", number="A-1"))
    assert first.status is InvoiceStatus.MATCHED
    assert again == first
    (second,) = batch.feed(invoice("40", iid="INV-2", number="A-2"))
    assert second.status is InvoiceStatus.MATCHED  # 60 + 40 billed, not 60 + 60 + 40
    assert second.payable == money("400.00", "USD")


def test_refeeding_an_invoice_with_other_content_is_refused_and_changes_nothing() -> None:
    batch = BatchMatcher({"PO-1": po()})
    batch.feed(received("100"))
    batch.feed(invoice("100", iid="INV-1"))
    with pytest.raises(DuplicateError, match="INV-1") as info:
        batch.feed(invoice("110", iid="INV-1"))
    assert "different content" in str(info.value)
    (memo,) = batch.feed(invoice("100", iid="CM-1", kind=InvoiceKind.CREDIT_MEMO, number=None))
    assert memo.status is InvoiceStatus.MATCHED  # the ledger still holds the 100 of INV-1 only
    (later,) = batch.feed(invoice("100", iid="INV-3", number="B-3"))
    assert later.status is InvoiceStatus.MATCHED
    assert later.payable == money("1000.00", "USD")


def test_the_same_id_with_other_content_among_earlier_documents_is_refused_by_match() -> None:
    first = invoice("100", iid="INV-1")
    with pytest.raises(DuplicateError, match="INV-1"):
        match(invoice("110", iid="INV-1"), po(), receipts=[received("100")], earlier=[first])
    with pytest.raises(DuplicateError, match="INV-1"):
        match(invoice("110", iid="INV-1"), po(), supplier_invoices=[first])
    same = match(invoice("100", iid="INV-1"), po(), receipts=[received("100")], earlier=[first])
    assert same.status is InvoiceStatus.MATCHED


def test_a_refused_duplicate_fed_again_is_refused_again() -> None:
    batch = BatchMatcher({"PO-1": po()})
    batch.feed(received("100"))
    batch.feed(invoice("50", iid="INV-1", number="A-1"))
    (dup,) = batch.feed(invoice("50", iid="INV-2", number="a1"))
    (dup_again,) = batch.feed(invoice("50", iid="INV-2", number="a1"))
    assert [f.code for f in dup.blocking] == [FindingCode.DUPLICATE]
    assert dup_again == dup
    (rest,) = batch.feed(invoice("50", iid="INV-3", number="A-3"))
    assert rest.status is InvoiceStatus.MATCHED


@pytest.mark.parametrize(
    ("number", "look_alike"),
    [
        ("INV-123", "ＩＮＶ－１２３"),  # full-width letters and digits
        ("INV-123", "INV-١٢٣"),  # Arabic-Indic digits
        ("INV-123", "INV-१२३"),  # Devanagari digits
        ("INV-123", "INV-①②③"),  # circled digits (NFKC)
        ("2024-7", "２０２４／７"),
    ],
)
def test_look_alike_invoice_numbers_are_duplicates(number: str, look_alike: str) -> None:
    assert normalize_invoice_number(look_alike) == normalize_invoice_number(number)
    first = invoice("10", iid="INV-1", number=number)
    result = match(
        invoice("10", iid="INV-2", number=look_alike),
        po(),
        receipts=[received("100")],
        supplier_invoices=[first],
        earlier=[first],
    )
    assert [f.code for f in result.blocking] == [FindingCode.DUPLICATE]


def _any(**over: Any) -> Any:
    return attrs.evolve(invoice("10"), **over)


def test_refeeding_a_held_invoice_with_an_override_accepts_it_and_counts_nothing_twice() -> None:
    from potrack.matching import Override

    batch = BatchMatcher({"PO-1": po()})
    batch.feed(received("100"))
    (held,) = batch.feed(invoice("100", price="10.50", iid="INV-1", total="1050.00"))
    assert held.status is InvoiceStatus.HELD
    (price,) = held.blocking
    grant = Override(
        invoice_id="INV-1",
        code=price.code,
        invoice_line_no=1,
        by="ap-lead",
        reason="price increase agreed by phone",
        at=_at(),
        accepted_variance=price.variance,
    )
    (accepted,) = batch.feed(
        invoice("100", price="10.50", iid="INV-1", total="1050.00"), overrides=[grant]
    )
    assert accepted.status is InvoiceStatus.MATCHED_WITHIN_TOLERANCE
    assert accepted.payable == money("1050.00", "USD")
    (more,) = batch.feed(invoice("1", iid="INV-2", number="X-2"))
    assert FindingCode.QUANTITY_ORDERED in [f.code for f in more.blocking]  # 101 of 100


def _at() -> Any:
    from tests.test_matching import AT

    return AT


def test_an_invoice_fed_for_another_po_under_a_known_id_is_refused() -> None:
    batch = BatchMatcher({"PO-1": po(), "PO-2": po(id="PO-2")})
    batch.feed(invoice("10", iid="INV-1"))
    with pytest.raises(DuplicateError):
        batch.feed(invoice("10", iid="INV-1", po_id="PO-2"))
    assert date(2026, 2, 1) == invoice("10").invoice_date
