"""Numbering: the pattern language, parsing, check digits, scopes and allocation without repeats."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack.exceptions import (
    MissingFieldError,
    NumberFormatError,
    NumberingError,
    NumberOverflowError,
    PatternError,
)
from potrack.memory import InMemoryStore
from potrack.numbering import (
    BlockAllocator,
    Gap,
    GaplessAllocator,
    NumberingContext,
    NumberingScheme,
    all_parts_scope,
    find_gaps,
    global_scope,
    luhn_check_digit,
    mod97_check_digits,
)
from potrack.records import Supplier
from potrack.sqlite import SQLiteStore
from potrack.testing.samples import sample_po
from tests import workers

DAY = date(2026, 11, 24)
CTX = NumberingContext(
    on=DAY,
    department="OPS",
    company="ACME",
    site="B2",
    supplier_code="FAST",
    supplier_initials="FT",
)


# -- the pattern language ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "counter", "expected"),
    [
        ("PO-{dept}-{yyyy}-{seq:05}", 12, "PO-OPS-2026-00012"),
        ("PO{yy}{mm}{dd}-{seq:03}", 7, "PO261124-007"),
        ("{company}/{site}/{seq:04}", 1, "ACME/B2/0001"),
        ("{supplier}-{initials}-{seq:02}", 3, "FAST-FT-03"),
        ("PO-{date:%Y%m}-{seq:04}", 9, "PO-202611-0009"),
        ("W{date:%G}-{ww}-{seq:03}", 1, "W2026-48-001"),
        ("Q{q}-{seq:03}", 2, "Q4-002"),
        ("D{date:%j}-{seq:03}", 2, "D328-002"),
        ("{{PO}}-{seq:02}", 5, "{PO}-05"),
    ],
)
def test_patterns_format_as_documented(pattern: str, counter: int, expected: str) -> None:
    assert NumberingScheme(pattern).format(CTX, counter) == expected


@pytest.mark.parametrize(
    ("first_month", "on", "fy"),
    [
        (1, date(2026, 11, 24), "2026"),
        (10, date(2026, 9, 30), "2026"),
        (10, date(2026, 10, 1), "2027"),
        (4, date(2027, 3, 31), "2027"),
        (4, date(2027, 4, 1), "2028"),
    ],
)
def test_fiscal_year_is_named_by_the_year_it_ends_in(first_month: int, on: date, fy: str) -> None:
    scheme = NumberingScheme("FY{fy}-{fyy}-{seq:03}", fiscal_year_start=first_month)
    assert scheme.format(NumberingContext(on=on), 1) == f"FY{fy}-{fy[2:]}-001"


def test_iso_week_year_differs_from_calendar_year_at_the_boundary() -> None:
    scheme = NumberingScheme("{date:%G}W{ww}-{seq:02}")
    # 2027-01-01 is a Friday in ISO week 53 of 2026.
    assert scheme.format(NumberingContext(on=date(2027, 1, 1)), 1) == "2026W53-01"


@pytest.mark.parametrize(
    ("pattern", "position", "fragment"),
    [
        ("PO-{dept", 3, "unclosed '{'"),
        ("PO}-{seq:03}", 2, "unmatched '}'"),
        ("PO-{seq}", 7, "a counter needs a width"),
        ("PO-{seq:0}", 8, "a counter needs a width"),
        ("PO-{dept}", 9, "the pattern has no counter"),
        ("{seq:02}-{seq:02}", 9, "a second counter"),
        ("{check:luhn}{seq:02}", 0, "a check before the counter"),
        ("{seq:02}{check:crc}", 15, "unknown check algorithm 'crc'"),
        ("{seq:02}-{colour}", 10, "unknown token {colour}"),
        ("{date:%Y%Q}-{seq:02}", 8, "unsupported date directive %Q"),
        ("PO-{dept}{seq:04}", 9, "not followed by a separator"),
        ("PO-{dept}X{seq:04}", 9, "not followed by a separator"),
        ("PO-{Dept}-{seq:04}", 4, "invalid token name 'Dept'"),
        ("PO-{yyyy:2}-{seq:04}", 9, "takes no argument"),
    ],
)
def test_pattern_errors_name_position_and_expectation(
    pattern: str, position: int, fragment: str
) -> None:
    with pytest.raises(PatternError) as info:
        NumberingScheme(pattern)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert info.value.expected
    assert str(info.value).splitlines()[-1] == " " * (position + 2) + "^"


def test_missing_field_is_a_clear_error() -> None:
    with pytest.raises(MissingFieldError, match=r"needs \{site\}"):
        NumberingScheme("{site}-{seq:03}").format(NumberingContext(on=DAY), 1)


def test_forbidden_characters_are_refused_or_sanitized() -> None:
    ctx = NumberingContext(on=DAY, department="R&D lab")
    with pytest.raises(NumberingError, match=r"forbids \(' &'\)"):
        NumberingScheme("{dept}-{seq:03}").format(ctx, 1)
    assert NumberingScheme("{dept}-{seq:03}", sanitize=True).format(ctx, 1) == "RDLAB-001"
    assert NumberingScheme("{dept}-{seq:03}").format(attrs.evolve(ctx, department="ops"), 1) == (
        "OPS-001"
    )
    with pytest.raises(NumberingError, match="allowed: A-Z and 0-9"):
        NumberingScheme("{dept}-{seq:03}", sanitize=True).format(
            attrs.evolve(ctx, department="&&"), 1
        )


def test_context_from_a_purchase_order() -> None:
    supplier = Supplier(id="S-ACME", name="Acme Tool Works", code="ACME")
    ctx = NumberingContext.for_order(sample_po(), DAY, supplier)
    assert NumberingScheme("PO-{dept}-{initials}-{seq:04}").format(ctx, 1) == "PO-OPS-ATW-0001"


def test_counter_overflow_is_an_error_not_a_silent_widening() -> None:
    scheme = NumberingScheme("PO-{seq:03}")
    assert scheme.format(CTX, 999) == "PO-999"
    with pytest.raises(NumberOverflowError) as info:
        scheme.format(CTX, 1000)
    assert (info.value.value, info.value.width, info.value.scope) == (1000, 3, "PO-")


def test_revisions_get_a_suffix_and_parse_back() -> None:
    scheme = NumberingScheme("PO-{yyyy}-{seq:05}")
    assert scheme.revision("PO-2026-00012", 1) == "PO-2026-00012-R1"
    assert scheme.revision("PO-2026-00012-R1", 2) == "PO-2026-00012-R2"
    parsed = scheme.parse("PO-2026-00012-R2")
    assert (parsed.number, parsed.revision, parsed.counter) == ("PO-2026-00012", 2, 12)
    custom = NumberingScheme("PO-{seq:03}", revision_format="/rev{n}")
    assert custom.revision("PO-001", 3) == "PO-001/rev3"
    with pytest.raises(PatternError):
        NumberingScheme("PO-{seq:03}", revision_format="-R")


# -- custom tokens --------------------------------------------------------------------------------


@attrs.frozen
class RegionToken:
    """A custom token: the region of the site, two letters."""

    regex: str = "[A-Z]{2}"
    fixed_width: bool = True

    def render(self, context: NumberingContext, argument: str | None) -> str:
        return {"B2": "EU", "NY": "US"}[context.site or ""]


def test_custom_tokens_are_registered_on_a_scheme_not_globally() -> None:
    scheme = NumberingScheme("PO-{region}{seq:04}", tokens={"region": RegionToken()})
    assert scheme.format(CTX, 1) == "PO-EU0001"
    assert scheme.parse("PO-EU0001").value("region") == "EU"
    with pytest.raises(PatternError, match="unknown token"):
        NumberingScheme("PO-{region}{seq:04}")  # another scheme does not see it
    plain = NumberingScheme("{seq:04}-{owner}", tokens={"owner": lambda c: "TEAM7"})
    assert plain.format(CTX, 2) == "0002-TEAM7"
    later = NumberingScheme("{seq:04}").with_token("owner", lambda c: "X")
    assert later.pattern == "{seq:04}"


def test_custom_token_output_is_checked_against_its_regex() -> None:
    scheme = NumberingScheme("{seq:02}-{bad}", tokens={"bad": lambda c: "no-way"})
    with pytest.raises(NumberingError, match="does not match its regex"):
        scheme.format(CTX, 1)


def test_custom_token_names_cannot_shadow_builtins() -> None:
    with pytest.raises(ValueError, match="taken by a built-in"):
        NumberingScheme("{seq:02}", tokens={"dept": lambda c: "X"})


# -- check digits and validation --------------------------------------------------------------------


def test_check_digit_algorithms() -> None:
    # The classic Luhn example: 7992739871 has check digit 3.
    assert luhn_check_digit("7992739871") == "3"
    # IBAN-style MOD 97-10: the digits followed by the check are 1 modulo 97.
    check = mod97_check_digits("PO-OPS-2026-00012")
    assert int("2524" + "242528" + "202600012" + check) % 97 == 1  # P=25 O=24 S=28


def test_validate_detects_a_changed_digit_and_a_bad_shape() -> None:
    scheme = NumberingScheme("PO-{yyyy}-{seq:05}-{check:mod97}")
    number = scheme.format(CTX, 12)
    scheme.validate(number)
    tampered = number[:-4] + ("9" if number[-4] != "9" else "8") + number[-3:]
    assert not scheme.is_valid(tampered)
    with pytest.raises(NumberFormatError, match="check digits"):
        scheme.validate(tampered)
    with pytest.raises(NumberFormatError, match="does not fit the pattern"):
        scheme.validate("PO-2026-12-00")


# -- property tests --------------------------------------------------------------------------------

codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
contexts = st.builds(
    NumberingContext,
    on=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    department=codes,
    company=codes,
    site=codes,
    supplier_code=codes,
    supplier_initials=codes,
)
patterns = st.sampled_from(
    [
        "PO-{dept}-{yyyy}-{seq:05}",
        "PO-{dept}-{yyyy}-{seq:05}-{check:mod97}",
        "{company}/{site}/{fy}/{seq:06}{check:luhn}",
        "{yy}{mm}{dd}{seq:04}-{supplier}-{initials}",
        "{date:%G}W{ww}Q{q}-{seq:03}-{check:luhn}",
        "X{seq:08}{check:mod97}",
    ]
)


@given(pattern=patterns, ctx=contexts, counter=st.integers(1, 999))
def test_parse_gives_back_what_format_put_in(
    pattern: str, ctx: NumberingContext, counter: int
) -> None:
    scheme = NumberingScheme(pattern, fiscal_year_start=7)
    number = scheme.format(ctx, counter)
    parsed = scheme.parse(number)
    assert parsed.counter == counter
    assert parsed.values == scheme.resolve(ctx).values
    assert parsed.scope == scheme.scope(ctx)
    assert parsed.number == number
    assert scheme.is_valid(number)
    assert scheme.parse(scheme.revision(number, 3)).revision == 3


@given(
    ctx=contexts,
    counter=st.integers(1, 99999),
    position=st.integers(0, 40),
    digit=st.sampled_from("0123456789"),
)
def test_changing_any_digit_fails_validation(
    ctx: NumberingContext, counter: int, position: int, digit: str
) -> None:
    for pattern in ("PO-{dept}-{yyyy}-{seq:05}-{check:mod97}", "{dept}-{seq:05}{check:luhn}"):
        scheme = NumberingScheme(pattern)
        number = scheme.format(ctx, counter)
        digits = [i for i, ch in enumerate(number) if ch.isdigit()]
        i = digits[position % len(digits)]
        if number[i] == digit:
            continue
        changed = number[:i] + digit + number[i + 1 :]
        assert not scheme.is_valid(changed), (number, changed)


@given(ctx=contexts, counters=st.lists(st.integers(1, 99999), min_size=2, max_size=20, unique=True))
def test_numbers_in_one_scope_sort_in_issue_order(
    ctx: NumberingContext, counters: list[int]
) -> None:
    scheme = NumberingScheme("PO-{dept}-{yyyy}-{seq:05}-{check:luhn}")
    numbers = {scheme.format(ctx, c): c for c in counters}
    assert [numbers[n] for n in sorted(numbers)] == sorted(counters)


# -- scopes ------------------------------------------------------------------------------------------


def test_year_before_the_counter_restarts_it_every_year() -> None:
    scheme = NumberingScheme("PO-{yyyy}-{seq:04}")
    store = InMemoryStore()
    alloc = GaplessAllocator(scheme)
    got = []
    for on in (date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1), date(2027, 1, 2)):
        with store.unit_of_work() as uow:
            got.append(alloc.allocate(NumberingContext(on=on), uow))
    assert got == ["PO-2026-0001", "PO-2026-0002", "PO-2027-0001", "PO-2027-0002"]


def test_scope_rule_is_overridable() -> None:
    ops, fin = (NumberingContext(on=DAY, department=d) for d in ("OPS", "FIN"))
    after = NumberingScheme("{seq:04}-{dept}")
    assert after.scope(ops) == after.scope(fin) == ""  # the prefix rule: one shared counter
    by_parts = NumberingScheme("{seq:04}-{dept}", scope=all_parts_scope)
    assert by_parts.scope(ops) == "dept=OPS"
    assert by_parts.scope(fin) == "dept=FIN"
    shared = NumberingScheme("PO-{dept}-{seq:04}", scope=global_scope)
    assert shared.scope(ops) == shared.scope(fin) == ""
    assert shared.sequence_key(ops) == "po:"


# -- allocation ---------------------------------------------------------------------------------------


def test_gapless_numbers_are_consumed_only_on_commit() -> None:
    scheme = NumberingScheme("PO-{seq:04}")
    store = InMemoryStore()
    alloc = GaplessAllocator(scheme)
    with store.unit_of_work() as uow:
        assert alloc.allocate(CTX, uow) == "PO-0001"
    taken = []

    def fail_after_taking_a_number() -> None:
        with store.unit_of_work() as uow:
            taken.append(alloc.allocate(CTX, uow))
            raise RuntimeError("the document could not be saved")

    with pytest.raises(RuntimeError):
        fail_after_taking_a_number()
    assert taken == ["PO-0002"]
    with store.unit_of_work() as uow:
        assert alloc.allocate(CTX, uow) == "PO-0002"
    with pytest.raises(ValueError, match="inside the document's unit of work"):
        alloc.allocate(CTX)


def test_block_allocator_leaves_gaps_that_the_audit_reports() -> None:
    scheme = NumberingScheme("PO-{seq:05}")
    store = InMemoryStore()
    first = BlockAllocator(scheme, store, block_size=10)
    numbers = [first.allocate(CTX) for _ in range(3)]
    second = BlockAllocator(scheme, store, block_size=10)  # another "process"
    numbers += [second.allocate(CTX) for _ in range(2)]
    assert numbers == ["PO-00001", "PO-00002", "PO-00003", "PO-00011", "PO-00012"]
    assert find_gaps(scheme, numbers) == (Gap("PO-", 4, 10),)
    assert find_gaps(scheme, numbers, last=15) == (Gap("PO-", 4, 10), Gap("PO-", 13, 15))
    assert find_gaps(scheme, numbers, first=None)[0].size == 7


def test_eight_threads_in_memory_never_repeat_and_gapless_never_skips() -> None:
    scheme = NumberingScheme("PO-{dept}-{yyyy}-{seq:06}")
    for make in (lambda s: GaplessAllocator(scheme), lambda s: BlockAllocator(scheme, s, 64)):
        store = InMemoryStore()
        allocator = make(store)
        results: list[list[str]] = [[] for _ in range(8)]

        def work(out: list[str], alloc=allocator, st=store) -> None:  # type: ignore[no-untyped-def]
            for _ in range(10_000):
                if alloc.gapless:
                    with st.unit_of_work() as uow:
                        out.append(alloc.allocate(CTX, uow))
                else:
                    out.append(alloc.allocate(CTX))

        threads = [threading.Thread(target=work, args=(out,)) for out in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        numbers = [n for out in results for n in out]
        assert len(numbers) == 80_000
        assert len(set(numbers)) == 80_000, Counter(numbers).most_common(3)
        gaps = find_gaps(scheme, numbers)
        if allocator.gapless:
            assert gaps == ()
        else:
            # Eight threads share one process's blocks: only the last block's tail is unused.
            assert sum(g.size for g in gaps) == 0


@pytest.mark.parametrize("mode", ["gapless", "fast"])
def test_four_processes_on_one_sqlite_file_never_repeat(tmp_path: Path, mode: str) -> None:
    path = str(tmp_path / "numbers.sqlite")
    SQLiteStore(path)  # create the schema before the workers race
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(workers.allocate_numbers, [(path, mode, 5_000, w) for w in range(4)])
    numbers = [n for out in results for n in out]
    assert len(numbers) == 20_000
    assert len(set(numbers)) == 20_000
    scheme = NumberingScheme(workers.PATTERN)
    assert all(scheme.is_valid(n) for n in numbers)
    gaps = find_gaps(scheme, numbers)
    if mode == "gapless":
        assert gaps == ()
        with SQLiteStore(path).unit_of_work() as uow:
            assert uow.sequences.current(scheme.sequence_key(CTX)) == 20_000
    else:
        # Each process reserved blocks of 100 and used 5,000 = 50 blocks exactly: no leftovers.
        assert gaps == ()


@settings(max_examples=30)
@given(st.lists(st.sampled_from(["OPS", "FIN", "IT"]), min_size=1, max_size=40))
def test_allocated_numbers_never_repeat(departments: list[str]) -> None:
    scheme = NumberingScheme("{dept}-{seq:04}-{check:luhn}")
    store = InMemoryStore()
    alloc = GaplessAllocator(scheme)
    numbers = []
    for dept in departments:
        with store.unit_of_work() as uow:
            numbers.append(alloc.allocate(NumberingContext(on=DAY, department=dept), uow))
    assert len(set(numbers)) == len(numbers)
    assert find_gaps(scheme, numbers) == ()
