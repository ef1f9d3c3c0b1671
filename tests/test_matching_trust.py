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
from hypothesis import event, given, settings
from hypothesis import strategies as st

from potrack.exceptions import DuplicateError, ValidationError
from potrack.matching import (
    BatchMatcher,
    Check,
    FindingCode,
    Limit,
    Severity,
    SmallDifference,
    Tolerance,
    TolerancePolicy,
    ToleranceRule,
    lint_tolerance_policy,
    load_tolerance_policy,
    match,
    normalize_invoice_number,
)
from potrack.money import money
from potrack.records import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus
from tests.test_matching import invoice, po, received, refused

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


# -- a check the policy does not mention ------------------------------------------------------------


def test_a_policy_naming_only_a_price_tolerance_still_checks_quantities() -> None:
    """The pattern of a docs example: a price tolerance alone.  500 billed against 100 ordered
    and nothing received is held, not paid in full."""
    pol = TolerancePolicy(tolerances=(Tolerance(Check.UNIT_PRICE, upper=Limit(percent=D(5))),))
    result = match(invoice("500"), po(), policy=pol)
    assert result.status is InvoiceStatus.HELD
    assert result.payable == money("0", "USD")
    assert {f.code for f in result.blocking} == {
        FindingCode.QUANTITY_ORDERED,
        FindingCode.QUANTITY_RECEIVED,
    }
    assert result.checks_off == ()
    # the price rule is the one named: 4 % above passes, the lower side is not checked
    within = match(
        invoice("10", "10.40", total="104.00"), po(), receipts=[received("10")], policy=pol
    )
    assert within.status is InvoiceStatus.MATCHED_WITHIN_TOLERANCE
    below = match(invoice("10", "9.00", total="90.00"), po(), receipts=[received("10")], policy=pol)
    assert below.status is InvoiceStatus.MATCHED  # a side without limits is not compared


def test_a_rule_naming_one_check_keeps_the_others() -> None:
    rule = ToleranceRule(
        id="acme",
        supplier="S-ACME",
        tolerances=(Tolerance(Check.UNIT_PRICE, upper=Limit(percent=D(5))),),
    )
    result = match(invoice("500"), po(), policy=TolerancePolicy(rules=(rule,)))
    assert FindingCode.QUANTITY_ORDERED in {f.code for f in result.blocking}


def test_turning_a_check_off_takes_an_explicit_off_which_results_report() -> None:
    pol = TolerancePolicy(
        tolerances=(
            Tolerance(Check.QUANTITY_ORDERED, off=True),
            Tolerance(Check.QUANTITY_RECEIVED, off=True),
        )
    )
    result = match(invoice("500"), po(), policy=pol)
    assert result.status is InvoiceStatus.MATCHED
    assert result.checks_off == ("quantity_received", "quantity_ordered")
    assert "checks off: quantity_received, quantity_ordered" in result.report()
    warnings = lint_tolerance_policy(pol)
    assert [w.code for w in warnings] == ["check_off", "check_off"]
    assert "quantity_ordered is off" in str(warnings[0])


def test_a_rule_can_turn_a_check_off_for_its_scope_only() -> None:
    rule = ToleranceRule(
        id="acme-qty", item="ITEM-1", tolerances=(Tolerance(Check.QUANTITY_ORDERED, off=True),)
    )
    pol = TolerancePolicy(rules=(rule,))
    two = po(lines=2)
    inv = attrs.evolve(
        invoice("200", total="4000.00"),
        lines=(
            InvoiceLine(line_no=1, po_line_no=1, quantity=D(200), unit_price=money("10.00", "USD")),
            InvoiceLine(line_no=2, po_line_no=2, quantity=D(200), unit_price=money("10.00", "USD")),
        ),
    )
    result = match(
        inv, two, receipts=[received("200"), received("200", line=2, rid="GR-2")], policy=pol
    )
    assert [(f.code, f.invoice_line_no) for f in result.blocking] == [
        (FindingCode.QUANTITY_ORDERED, 2)
    ]
    assert result.checks_off == ("quantity_ordered",)
    assert [str(w) for w in lint_tolerance_policy(pol)] == [
        "check_off: quantity_ordered is off: nothing billed is compared with it [rule acme-qty]"
    ]


def test_off_with_limits_is_refused() -> None:
    with pytest.raises(ValidationError, match="off"):
        Tolerance(Check.TAX, upper=Limit(amount=D(1)), off=True)


def test_a_policy_file_turns_a_check_off_explicitly() -> None:
    pol = load_tolerance_policy(
        "inline.toml",
        text="""
[[tolerances]]
check = "unit_price"
upper = { percent = "5" }

[[tolerances]]
check = "quantity_received"
off = true
""",
    )
    result = match(invoice("10"), po(), policy=pol)  # nothing received
    assert result.status is InvoiceStatus.MATCHED
    assert result.checks_off == ("quantity_received",)
    assert match(invoice("500"), po(), policy=pol).status is InvoiceStatus.HELD  # ordered: on


# -- header total, tax and rounding -----------------------------------------------------------------


def _lines(*specs: tuple[str, str], currency: str = "USD", tax: list[str] | None = None) -> Any:
    return tuple(
        InvoiceLine(
            line_no=i,
            po_line_no=i,
            quantity=D(qty),
            unit_price=money(price, currency),
            tax=None if tax is None else money(tax[i - 1], currency),
        )
        for i, (qty, price) in enumerate(specs, start=1)
    )


def test_the_header_total_counts_tax_stated_per_line() -> None:
    order = po(tax_rate=D(8))
    inv = attrs.evolve(
        invoice("100"), lines=_lines(("100", "10.00"), tax=["80.00"]), total=money("1080.00", "USD")
    )
    result = match(inv, order, receipts=[received("100")])
    assert result.status is InvoiceStatus.MATCHED
    assert result.payable == money("1080.00", "USD")
    wrong = attrs.evolve(inv, total=money("1090.00", "USD"))
    held = match(wrong, order, receipts=[received("100")])
    (f,) = held.blocking
    assert (f.code, f.expected, f.actual) == (FindingCode.HEADER_TOTAL, D("1080.00"), D("1090.00"))


EXACT_TAX = Tolerance(Check.TAX, upper=Limit(amount=D(0)), lower=Limit(amount=D(0)))


@pytest.mark.parametrize(
    ("rounding", "stated", "matched"),
    [
        ("line", "2.40", True),
        ("line", "2.41", False),
        ("invoice", "2.41", True),
        ("invoice", "2.40", False),
    ],
)
def test_tax_is_rounded_per_line_or_per_invoice_as_the_policy_says(
    rounding: str, stated: str, matched: bool
) -> None:
    """Three lines of 10.05 at 8 %: 0.804 each — 0.80 × 3 = 2.40 rounded per line, 2.412 → 2.41
    rounded per invoice."""
    order = po(lines=3, tax_rate=D(8), price="10.05")
    inv = attrs.evolve(
        invoice("1"),
        lines=_lines(("1", "10.05"), ("1", "10.05"), ("1", "10.05")),
        tax=money(stated, "USD"),
        total=money(D("30.15") + D(stated), "USD"),
    )
    receipts = [received("1", line=n, rid=f"GR-{n}") for n in (1, 2, 3)]
    pol = TolerancePolicy(tolerances=(EXACT_TAX,), tax_rounding=rounding)
    result = match(inv, order, receipts=receipts, policy=pol)
    assert (result.status is InvoiceStatus.MATCHED) is matched
    if not matched:
        (f,) = result.findings
        expected = D("2.40") if rounding == "line" else D("2.41")
        assert (f.code, f.expected, f.actual) == (FindingCode.TAX, expected, D(stated))
        assert f.severity is (Severity.BLOCK if f.variance > 0 else Severity.WARN)


def test_tax_rounding_is_per_invoice_or_per_line_only() -> None:
    with pytest.raises(ValidationError, match="tax_rounding"):
        TolerancePolicy(tax_rounding="cent")


def _jpy_po() -> Any:
    from tests.test_matching import po as make

    order = make()
    line = attrs.evolve(order.lines[0], unit_price=money("1000.5", "JPY"), quantity=D(1))
    return attrs.evolve(order, currency="JPY", lines=(line,))


@pytest.mark.parametrize(
    ("stated", "status"),
    [
        ("1001", InvoiceStatus.MATCHED),
        ("1000", InvoiceStatus.MATCHED),
        ("1002", InvoiceStatus.HELD),
        ("999", InvoiceStatus.MATCHED_WITHIN_TOLERANCE),  # below: a lower breach warns
    ],
)
def test_a_tie_rounded_up_or_to_even_is_the_supplier_s_choice(
    stated: str, status: InvoiceStatus
) -> None:
    """JPY 1 × 1000.5: the supplier may book 1001 (half up) or 1000 (half even); the default
    policy holds neither."""
    inv = Invoice(
        id="INV-J",
        supplier_id="S-ACME",
        po_id="PO-1",
        invoice_date=date(2026, 2, 1),
        currency="JPY",
        lines=_lines(("1", "1000.5"), currency="JPY"),
        total=money(stated, "JPY"),
    )
    result = match(inv, _jpy_po(), receipts=[received("1")])
    assert result.status is status
    held = status is InvoiceStatus.HELD
    assert result.payable == (money("0", "JPY") if held else money(stated, "JPY"))


def test_the_payable_rounding_does_not_change_what_the_checks_compare() -> None:
    """3 × 45.5805 = 136.7415, booked 136.74; a policy rounding payables UP still compares the
    total the supplier booked, and pays what was invoiced, never more."""
    from potrack.money import Rounding

    order = po(price="45.5805")
    inv = invoice("3", "45.5805", total="136.74")
    for mode in Rounding:
        result = match(inv, order, receipts=[received("3")], policy=TolerancePolicy(rounding=mode))
        assert result.status is InvoiceStatus.MATCHED, mode
        assert result.payable == money("136.74", "USD")


# -- results are data ---------------------------------------------------------------------------


def test_every_result_of_a_synthetic_stream_round_trips_through_potrack_s_converter() -> None:
    from potrack import dumps, loads
    from potrack.matching import MatchResult
    from potrack.memory import StaticRates
    from potrack.testing.synth import Synth

    orders, stream = Synth(seed=7).matching_stream(3_000)
    rates = StaticRates({("EUR", "USD"): D("1.08"), ("GBP", "USD"): D("1.27")})
    batch = BatchMatcher(orders, TolerancePolicy.lenient(), rates=rates)
    results = list(batch.run(stream))
    assert len({f.code for r in results for f in r.findings}) >= 5
    for result in results:
        text = dumps(result)
        assert loads(text, MatchResult) == result
    finding = next(f for r in results for f in r.findings if f.code is FindingCode.PRICE)
    data = __import__("json").loads(dumps(finding))
    assert {
        "expected",
        "actual",
        "variance",
        "variance_percent",
        "limit",
        "rule",
        "severity",
    } <= set(data)


def test_a_result_with_an_override_round_trips() -> None:
    from potrack import dumps, loads
    from potrack.matching import MatchResult, Override
    from tests.test_matching import AT

    held = match(invoice("100", "10.50", total="1050.00"), po(), receipts=[received("100")])
    grant = Override(
        invoice_id="INV-1",
        code=FindingCode.PRICE,
        invoice_line_no=1,
        by="ctl",
        reason="agreed",
        at=AT,
    )
    accepted = match(
        invoice("100", "10.50", total="1050.00"),
        po(),
        receipts=[received("100")],
        overrides=[grant],
    )
    assert held.status is InvoiceStatus.HELD
    assert loads(dumps(accepted), MatchResult) == accepted
    with pytest.raises(ValidationError, match="unknown keys"):
        loads(dumps(accepted).replace('"held":', '"surprise":1,"held":', 1), MatchResult)


# -- credit memos at a new exchange rate --------------------------------------------------------------


def _eur(qty: str, iid: str, rate: str, **over: Any) -> Invoice:
    line = InvoiceLine(line_no=1, po_line_no=1, quantity=D(qty), unit_price=money("10.00", "EUR"))
    fields: dict[str, Any] = {
        "id": iid,
        "supplier_id": "S-ACME",
        "number": f"N-{iid}",
        "po_id": "PO-1",
        "invoice_date": date(2026, 2, 1),
        "currency": "EUR",
        "lines": (line,),
        "total": money(D(qty) * 10, "EUR"),
        "exchange_rate": D(rate),
    }
    fields.update(over)
    return Invoice(**fields)


def test_a_full_reversal_at_a_new_rate_books_at_the_invoice_s_rate_with_the_difference_reported() -> (
    None
):
    """PO 100 @ 11.00 USD; invoiced 100 @ 10.00 EUR at 1.10 (1,100 USD).  The memo reversing it
    in full a month later states 1.20: at its own rate it would credit 1,200 USD of the 1,100
    invoiced, and be refused as over-credit."""
    order = po(price="11.00")
    billed = _eur("100", "INV-1", "1.10")
    memo = _eur("100", "CM-1", "1.20", kind=InvoiceKind.CREDIT_MEMO, credits="INV-1", number=None)
    result = match(memo, order, receipts=[received("100")], earlier=[billed])
    assert result.status is InvoiceStatus.MATCHED
    rate = [f for f in result.header if f.code is FindingCode.CURRENCY and f.variance is not None]
    assert [(f.expected, f.actual, f.variance, f.value, f.severity) for f in rate] == [
        (D("1.10"), D("1.20"), D("0.10"), D("100.0000"), Severity.INFO)
    ]
    assert "reverses INV-1 at its rate 1.10" in result.report()
    batch = BatchMatcher({"PO-1": order})
    batch.feed(received("100"))
    batch.feed(billed)
    (fed,) = batch.feed(memo)
    assert fed == result
    # the reversal leaves nothing billed: the next invoice for the 100 is matched in full
    (again,) = batch.feed(_eur("100", "INV-2", "1.10"))
    assert again.status is InvoiceStatus.MATCHED
    assert (
        match(
            _eur("100", "INV-2", "1.10"), order, receipts=[received("100")], earlier=[billed, memo]
        )
        == again
    )


def test_a_memo_at_a_new_rate_crediting_more_than_was_invoiced_is_still_refused() -> None:
    order = po(price="11.00")
    billed = _eur("100", "INV-1", "1.10")
    memo = _eur("101", "CM-1", "1.00", kind=InvoiceKind.CREDIT_MEMO, credits="INV-1", number=None)
    result = match(memo, order, receipts=[received("100")], earlier=[billed])
    assert [f.code for f in result.blocking] == [FindingCode.OVER_CREDIT]


# -- units of measure ------------------------------------------------------------------------------


class _Pounds:
    """The exact factor: 1 LB = 0.45359237 KG."""

    def factor(self, from_uom: str, to_uom: str, item: str | None) -> Decimal | None:
        return D("0.45359237") if (from_uom, to_uom) == ("LB", "KG") else None


def _kg_po() -> Any:
    order = po(price="2.00")
    return attrs.evolve(order, lines=(attrs.evolve(order.lines[0], uom="KG"),))


def _pounds(qty: str, price: str) -> Invoice:
    line = InvoiceLine(
        line_no=1, po_line_no=1, quantity=D(qty), unit_price=money(price, "USD"), uom="LB"
    )
    amount = (D(qty) * D(price)).quantize(D("0.01"))
    return attrs.evolve(invoice("1"), lines=(line,), total=money(amount, "USD"))


def test_pounds_against_kilograms_compare_at_the_precision_the_po_line_states() -> None:
    """100 KG at 2.00 USD/kg; billed 220.46 LB at 0.9072 USD/LB: 99.99897… kg at 2.00003…/kg,
    which at the PO line's precision (whole kg, cents) is 100 kg at 2.00."""
    result = match(_pounds("220.46", "0.9072"), _kg_po(), receipts=[received("100")], uom=_Pounds())
    assert result.status is InvoiceStatus.MATCHED
    assert result.payable == money("200.00", "USD")


def test_a_converted_price_variance_is_found_and_renders_at_the_po_line_s_precision() -> None:
    result = match(_pounds("220.46", "0.95"), _kg_po(), receipts=[received("100")], uom=_Pounds())
    (f,) = result.blocking
    assert (f.code, f.expected, f.actual, f.variance) == (
        FindingCode.PRICE,
        D("2.00"),
        D("2.09"),
        D("0.09"),
    )
    assert "price $2.09 is $0.09 (4.50%) above the PO price $2.00" in result.report()


def test_converted_quantities_agree_between_receipts_invoices_and_the_batch() -> None:
    from potrack.records import GoodsReceipt, ReceiptLine
    from tests.test_matching import AT

    gr = GoodsReceipt(
        id="GR-LB",
        po_id="PO-1",
        received_at=AT,
        received_by="recv-1",
        lines=(ReceiptLine(line_no=1, received=D("220.46"), uom="LB"),),
    )
    inv = _pounds("220.46", "0.9072")
    one = match(inv, _kg_po(), receipts=[gr], uom=_Pounds())
    batch = BatchMatcher({"PO-1": _kg_po()}, uom=_Pounds())
    batch.feed(gr)
    (fed,) = batch.feed(inv)
    assert one.status is InvoiceStatus.MATCHED
    assert fed == one


# -- small differences, price limits -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stated", "accepted"),
    [
        ("1001.00", True),  # +1.00 (0.1 %): within the upper 2.00 and 0.5 %
        ("1002.00", True),
        ("1002.01", False),  # beyond the upper amount
        ("999.90", True),  # −0.10: within the lower 0.10
        ("999.89", False),  # beyond the lower amount
    ],
)
def test_a_small_difference_has_its_own_upper_and_lower_limits(stated: str, accepted: bool) -> None:
    """SAP's total-based acceptance: up to 2.00 (and 0.5 %) more than lines + charges + tax is
    accepted as a small difference, but only 0.10 less."""
    allowance = SmallDifference(
        upper=Limit(amount=D("2.00"), percent=D("0.5")), lower=Limit(amount=D("0.10"))
    )
    pol = TolerancePolicy(small_difference=allowance)
    result = match(invoice("100", total=stated), po(), receipts=[received("100")], policy=pol)
    (f,) = result.findings
    assert f.code is FindingCode.HEADER_TOTAL
    assert (f.severity is Severity.INFO) is accepted
    assert (f.rule == "small difference") is accepted


def test_a_small_difference_in_percent_scales_with_the_invoice() -> None:
    pol = TolerancePolicy(small_difference=SmallDifference(upper=Limit(percent=D("0.1"))))
    small = match(invoice("100", total="1001.00"), po(), receipts=[received("100")], policy=pol)
    assert small.status is InvoiceStatus.MATCHED_WITHIN_TOLERANCE
    big = match(invoice("100", total="1001.01"), po(), receipts=[received("100")], policy=pol)
    assert big.status is InvoiceStatus.HELD
    lower = match(invoice("100", total="999.99"), po(), receipts=[received("100")], policy=pol)
    assert [f.severity for f in lower.findings] == [Severity.WARN]  # no lower allowance


def test_a_small_difference_from_a_policy_file() -> None:
    pol = load_tolerance_policy(
        "inline.toml",
        text="""
[policy]
small_difference = { upper = { amount = "2.00" }, lower = { amount = "0.10" } }
""",
    )
    assert pol.small_difference == SmallDifference(
        upper=Limit(amount=D("2.00")), lower=Limit(amount=D("0.10"))
    )
    plain = load_tolerance_policy("inline.toml", text='[policy]\nsmall_difference = "0.05"\n')
    assert plain.small_difference == D("0.05")


def test_a_line_price_limit_bounds_the_money_at_stake_on_the_line() -> None:
    """SAP's PP key, ADempiere: 50.00 of price difference per invoice line, whatever the
    quantity — 1,000 units at 0.04 over (40.00) pass, 2,000 at 0.03 over (60.00) do not."""
    line_limit = Tolerance(Check.UNIT_PRICE, upper=Limit(amount=D("50.00")), price_basis="line")
    pol = TolerancePolicy(tolerances=(line_limit,))
    order = po(qty="5000")
    ok = match(
        invoice("1000", "10.04", total="10040.00"), order, receipts=[received("5000")], policy=pol
    )
    assert ok.status is InvoiceStatus.MATCHED_WITHIN_TOLERANCE
    (f,) = ok.findings
    assert (f.variance, f.value) == (D("0.04"), D("40.00"))
    held = match(
        invoice("2000", "10.03", total="20060.00"), order, receipts=[received("5000")], policy=pol
    )
    (f,) = held.blocking
    assert (f.code, f.variance, f.value) == (FindingCode.PRICE, D("0.03"), D("60.00"))
    per_unit = TolerancePolicy(
        tolerances=(Tolerance(Check.UNIT_PRICE, upper=Limit(amount=D("0.05"))),)
    )
    unit = match(
        invoice("2000", "10.03", total="20060.00"),
        order,
        receipts=[received("5000")],
        policy=per_unit,
    )
    assert unit.status is InvoiceStatus.MATCHED_WITHIN_TOLERANCE


def test_price_basis_is_unit_or_line_and_only_for_the_price() -> None:
    with pytest.raises(ValidationError, match="price_basis"):
        Tolerance(Check.UNIT_PRICE, upper=Limit(amount=D(1)), price_basis="invoice")
    with pytest.raises(ValidationError, match="price_basis"):
        Tolerance(Check.CHARGES, upper=Limit(amount=D(1)), price_basis="line")


# -- the invariant, for any stream ------------------------------------------------------------------

_STEP = st.tuples(
    st.sampled_from(["gr", "inv", "inv", "refeed", "clash", "cm", "dup", "neg"]),
    st.integers(1, 60),  # quantity
    st.integers(1, 2),  # PO line
    st.sampled_from([("USD", None), ("EUR", "1.10"), ("EUR", "1.20"), ("EUR", "0.95")]),
    st.sampled_from(["0", "0.01", "-0.01", "1.00"]),  # price off the PO's (per PO currency unit)
)


def _priced(
    qty: int, line: int, cur: str, rate: str | None, off: str, iid: str, **over: Any
) -> Invoice:
    per_unit = D("10.00") + D(off)
    price = per_unit if rate is None else (per_unit / D(rate)).quantize(D("0.0001"))
    ln = InvoiceLine(line_no=1, po_line_no=line, quantity=D(qty), unit_price=money(price, cur))
    amount = (D(qty) * price).quantize(D("0.01"))
    fields: dict[str, Any] = {
        "id": iid,
        "supplier_id": "S-ACME",
        "number": f"N-{iid}",
        "po_id": "PO-1",
        "invoice_date": date(2026, 2, 1),
        "currency": cur,
        "lines": (ln,),
        "total": money(amount, cur),
        "exchange_rate": None if rate is None else D(rate),
    }
    fields.update(over)
    return Invoice(**fields)


@settings(max_examples=150)
@given(st.lists(_STEP, max_size=25), st.sampled_from(["default", "lenient"]))
def test_no_stream_pays_more_than_was_invoiced_or_received_and_the_batch_equals_match(
    steps: list[tuple[str, int, int, tuple[str, str | None], str]], which: str
) -> None:
    """Receipts, invoices in the PO's currency or another at various rates, the same invoice fed
    again, the same id with other content, memos crediting an earlier invoice at any rate,
    duplicates by number, and negative lines (refused at input).  Whatever the order:

    * every result pays at most what it invoices;
    * per PO line, what is payable (each invoice's latest result, once) never exceeds what was
      invoiced net of accepted credits, in value — and, under exact matching, the quantity
      payable net of credits never exceeds what was received;
    * each result of the batch equals :func:`match` given the documents counted before it.
    """
    from potrack.records import GoodsReceipt

    order = po(lines=2)
    pol = TolerancePolicy() if which == "default" else TolerancePolicy.lenient()
    batch = BatchMatcher({"PO-1": order}, pol)
    receipts: list[GoodsReceipt] = []
    counted: list[Invoice] = []  # invoices and memos the batch counted, in order
    fed: list[Invoice] = []
    latest: dict[str, Any] = {}
    for n, (kind, qty, line, (cur, rate), off) in enumerate(steps):
        bills = [i for i in counted if i.kind is InvoiceKind.INVOICE]
        if kind == "gr":
            doc: Any = received(str(qty), line, rid=f"GR-{n}")
            receipts.append(doc)
            for result in batch.feed(doc):  # released (or still waiting) invoices
                latest[result.invoice_id] = result
            continue
        if kind == "neg":
            with pytest.raises(ValidationError, match="must not be negative"):
                InvoiceLine(
                    line_no=1, po_line_no=line, quantity=D(qty), unit_price=money("-1.00", cur)
                )
            continue
        if kind == "refeed" and fed:
            doc = fed[qty % len(fed)]
        elif kind == "clash" and fed:
            other = fed[qty % len(fed)]
            changed = attrs.evolve(other, total=other.total + money("1.00", other.currency))
            with pytest.raises(DuplicateError):
                batch.feed(changed)
            continue
        elif kind == "cm" and bills:
            target = bills[qty % len(bills)]
            doc = _priced(
                qty,
                line,
                target.currency,
                rate if target.currency != "USD" else None,
                "0",
                f"CM-{n}",
                kind=InvoiceKind.CREDIT_MEMO,
                credits=target.id,
                number=None,
            )
        elif kind == "dup" and bills:
            doc = _priced(
                qty, line, cur, rate, off, f"INV-{n}", number=bills[qty % len(bills)].number
            )
        else:
            doc = _priced(qty, line, cur, rate, off, f"INV-{n}")
        seen = doc.id in {d.id for d in fed}
        again = doc.id in {d.id for d in counted}  # (a refused one fed again is matched anew)
        waiting_before = {r.invoice_id for r in batch.waiting()}
        results = batch.feed(doc)
        first = results[0]
        # the batch equals match(): a new document against what was counted before it; one fed
        # again against everything counted but itself (before it, while it waits for goods)
        if again and doc.id in waiting_before:
            at = next(i for i, d in enumerate(counted) if d.id == doc.id)
            earlier = counted[:at]
        else:
            earlier = [d for d in counted if d.id != doc.id]
        corrected = [r for r in counted if r.credits == doc.id and doc.id in waiting_before]
        expected = match(
            doc,
            order,
            receipts=receipts,
            earlier=earlier + corrected if again else earlier,
            supplier_invoices=[]
            if again
            else [d for d in counted if d.kind is InvoiceKind.INVOICE],
            policy=pol,
        )
        if not (again and corrected):
            assert first == expected
        event(f"{kind}: {first.status.value}{' (fed again)' if again else ''}")
        for result in results:
            assert result.payable <= result.invoiced
            assert result.payable.amount >= 0
            latest[result.invoice_id] = result
        if not seen:
            fed.append(doc)
        if not again and not refused(first):
            counted.append(doc)
    # per PO line: payable ≤ invoiced net of credits (value, PO currency) and, exact, ≤ received
    by_id = {d.id: d for d in counted}
    for line_no in (1, 2):
        payable = invoiced = paid_qty = _ZERO
        for doc in counted:
            rate = D(1) if doc.currency == "USD" else doc.exchange_rate
            if doc.kind is InvoiceKind.CREDIT_MEMO and doc.currency != "USD":
                rate = by_id[doc.credits].exchange_rate if doc.credits in by_id else rate
            for lr, ln in zip(latest[doc.id].lines, doc.lines, strict=True):
                if ln.po_line_no != line_no:
                    continue
                value = ln.net_amount.amount * rate
                if doc.kind is InvoiceKind.CREDIT_MEMO:
                    invoiced -= value
                    payable -= value
                    paid_qty -= ln.quantity
                else:
                    invoiced += value
                    payable += lr.payable * rate
                    if lr.payable:
                        paid_qty += ln.quantity
        assert payable <= invoiced + D("0.01") * len(counted)  # (each line's payable is booked)
        if which == "default":
            got = sum(
                (r.lines[0].received for r in receipts if r.lines[0].line_no == line_no), _ZERO
            )
            assert paid_qty <= got


_ZERO = D(0)


# -- subsequent debits and credits ---------------------------------------------------------------


def _subsequent(kind: InvoiceKind, amount: str, iid: str, per_unit: str = "0.50") -> Invoice:
    """A price-only correction of INV-1 on PO line 1: ``amount`` for 100 units (no quantity is
    billed)."""
    line = InvoiceLine(
        line_no=1,
        po_line_no=1,
        quantity=D(100),
        unit_price=money(per_unit, "USD"),
        amount=money(amount, "USD"),
    )
    return attrs.evolve(
        invoice("1", iid=iid), lines=(line,), total=money(amount, "USD"), kind=kind, credits="INV-1"
    )


def test_a_subsequent_debit_corrects_the_price_without_billing_quantity() -> None:
    """100 invoiced at 10.00 against a PO price of 10.50 (warned, below); a subsequent debit of
    50.00 brings the line to 1,050.00 for 100 units: 10.50, the PO price.  Nothing more is
    billed, so a later invoice for the remaining units is not held for quantity."""
    order = po(price="10.50", qty="200")
    first = invoice("100", "10.00", iid="INV-1")
    debit = _subsequent(InvoiceKind.SUBSEQUENT_DEBIT, "50.00", "SD-1")
    result = match(debit, order, receipts=[received("200")], earlier=[first])
    assert result.status is InvoiceStatus.MATCHED
    assert result.payable == money("50.00", "USD")
    batch = BatchMatcher({"PO-1": order})
    batch.feed(received("200"))
    batch.feed(first)
    assert batch.feed(debit) == [result]
    (rest,) = batch.feed(invoice("100", "10.50", iid="INV-2", total="1050.00"))
    assert rest.status is InvoiceStatus.MATCHED


def test_a_subsequent_debit_beyond_the_price_tolerance_is_held() -> None:
    order = po(price="10.00", qty="100")
    first = invoice("100", "10.00", iid="INV-1")
    debit = _subsequent(InvoiceKind.SUBSEQUENT_DEBIT, "50.00", "SD-1")  # 10.50 a unit now
    result = match(debit, order, receipts=[received("100")], earlier=[first])
    (f,) = result.blocking
    assert (f.code, f.expected, f.actual) == (FindingCode.PRICE, D("10.00"), D("10.50"))
    assert result.payable == money("0", "USD")


def test_a_subsequent_credit_lowers_the_amount_and_is_not_paid() -> None:
    order = po(price="9.50", qty="100")
    first = invoice("100", "10.00", iid="INV-1")  # 0.50 over: held for price
    credit = _subsequent(InvoiceKind.SUBSEQUENT_CREDIT, "50.00", "SC-1")
    result = match(credit, order, receipts=[received("100")], earlier=[first])
    assert result.status is InvoiceStatus.MATCHED
    assert result.payable == money("0", "USD")
    too_much = _subsequent(InvoiceKind.SUBSEQUENT_CREDIT, "1000.01", "SC-2", per_unit="10.00")
    refused_ = match(too_much, order, receipts=[received("100")], earlier=[first])
    assert [f.code for f in refused_.blocking] == [FindingCode.OVER_CREDIT]


def test_a_subsequent_debit_with_nothing_invoiced_is_refused() -> None:
    debit = _subsequent(InvoiceKind.SUBSEQUENT_DEBIT, "50.00", "SD-1")
    result = match(debit, po(), receipts=[received("100")])
    assert [f.code for f in result.blocking] == [FindingCode.NOTHING_INVOICED]
    batch = BatchMatcher({"PO-1": po()})
    batch.feed(received("100"))
    assert batch.feed(debit) == [result]
    (later,) = batch.feed(invoice("100", iid="INV-9", number="Z-9"))
    assert later.status is InvoiceStatus.MATCHED  # the refused debit changed nothing


def test_a_receipt_or_return_fed_again_counts_once_and_other_content_is_refused() -> None:
    from tests.test_matching import returned

    batch = BatchMatcher({"PO-1": po()})
    gr = received("100")
    assert batch.feed(gr) == []
    assert batch.feed(gr) == []  # the same receipt again: nothing more received
    (inv,) = batch.feed(invoice("150"))
    assert inv.status is InvoiceStatus.HELD  # 150 billed of 100 ordered, 100 received
    assert [f.expected for f in inv.findings if f.code is FindingCode.QUANTITY_RECEIVED] == [D(100)]
    with pytest.raises(DuplicateError, match="GR-1"):
        batch.feed(received("120"))
    ret = returned("10")
    batch.feed(ret)
    batch.feed(ret)
    with pytest.raises(DuplicateError, match="RT-1"):
        batch.feed(returned("20"))
    (again,) = batch.feed(invoice("1", iid="INV-2", number="Q-2"))
    received_ = [f.expected for f in again.findings if f.code is FindingCode.QUANTITY_RECEIVED]
    assert received_ == [D(90)]  # 100 received, 10 returned: once each


def test_match_counts_a_receipt_given_twice_once_and_refuses_other_content_under_its_id() -> None:
    result = match(invoice("150"), po(), receipts=[received("100"), received("100")])
    assert [f.expected for f in result.findings if f.code is FindingCode.QUANTITY_RECEIVED] == [
        D(100)
    ]
    with pytest.raises(DuplicateError, match="GR-1"):
        match(invoice("150"), po(), receipts=[received("100"), received("120")])


# -- paying more than was invoiced ----------------------------------------------------------------


@pytest.mark.parametrize("stated", ["3.703", "3.704"])
@pytest.mark.parametrize("partial", [False, True])
def test_kwd_lines_finer_than_the_fils_never_pay_more_than_the_invoice(
    stated: str, partial: bool
) -> None:
    """KWD 3 × 1.2345 = 3.7035: the supplier books 3.703 or 3.704.  Whatever the rounding mode
    or partial payment, what is payable is at most what was invoiced."""
    from potrack.money import Rounding

    order = po()
    line = attrs.evolve(order.lines[0], unit_price=money("1.2345", "KWD"))
    order = attrs.evolve(order, currency="KWD", lines=(line,))
    inv = Invoice(
        id="INV-K",
        supplier_id="S-ACME",
        po_id="PO-1",
        invoice_date=date(2026, 2, 1),
        currency="KWD",
        lines=_lines(("3", "1.2345"), currency="KWD"),
        total=money(stated, "KWD"),
    )
    for mode in Rounding:
        pol = TolerancePolicy(rounding=mode, partial_payment=partial)
        result = match(inv, order, receipts=[received("3")], policy=pol)
        assert result.payable == money(stated, "KWD"), mode
        assert result.payable + result.held == result.invoiced
