"""Every record round-trips through JSON exactly; malformed input lists every problem with its path."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potrack.events import ReceiveGoods, TransitionRecord
from potrack.exceptions import ValidationError
from potrack.money import money
from potrack.records import Invoice, PurchaseOrder, PurchaseOrderLine
from potrack.serialization import IncrementalEncoder, dumps, loads, make_converter
from potrack.testing.samples import sample_invoice, sample_po, sample_receipt, sample_transition
from tests.strategies import RECORD_TYPES, records

CONVERTER = make_converter()


def _name(cls: type[Any]) -> str:
    return cls.__name__


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=_name)
@settings(max_examples=15)
@given(data=st.data())
def test_every_record_round_trips_through_json_exactly(cls: type[Any], data: st.DataObject) -> None:
    record = data.draw(records(cls))
    text = dumps(record, converter=CONVERTER)
    back = loads(text, cls, converter=CONVERTER)
    assert back == record
    # Exactly: Decimal exponents survive (1.10 stays 1.10), so the text is stable too.
    assert dumps(back, converter=CONVERTER) == text


def _leaves(data: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "type":  # an event's tag: corrupting it breaks the whole event
                continue
            found.extend(_leaves(value, f"{path}.{key}" if path else key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found.extend(_leaves(value, f"{path}[{i}]"))
    elif data is not None:
        found.append((path, data))
    return found


def _corrupt(data: Any) -> Any:
    """Every leaf replaced with a value of a wrong kind (a float for strings, a bool for ints...)."""
    if isinstance(data, dict):
        return {k: (v if k == "type" else _corrupt(v)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_corrupt(v) for v in data]
    if isinstance(data, bool):
        return "yes"
    if isinstance(data, int):
        return 12.5
    if isinstance(data, str):
        return 12.5
    return data


def _depth(path: str) -> int:
    return path.count(".") + path.count("[")


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=_name)
@settings(max_examples=5)
@given(data=st.data())
def test_malformed_input_lists_every_problem_with_its_path(
    cls: type[Any], data: st.DataObject
) -> None:
    record = data.draw(records(cls))
    good = CONVERTER.unstructure(record)
    leaves = _leaves(good)
    if not leaves:
        return
    with pytest.raises(ValidationError) as info:
        CONVERTER.structure(_corrupt(good), cls)
    problems = info.value.problems
    for leaf, _ in leaves:
        located = [
            p
            for p in problems
            if (leaf == p.path or leaf.startswith((p.path + ".", p.path + "[")))
            and _depth(p.path) >= _depth(leaf) - 1
        ]
        assert located, f"no problem reported at or just above {leaf!r}: {problems}"


def test_float_amount_error_names_path_value_and_type() -> None:
    data = CONVERTER.unstructure(sample_po(lines=3))
    data["lines"][2]["unit_price"]["amount"] = 12.5
    with pytest.raises(ValidationError) as info:
        CONVERTER.structure(data, PurchaseOrder)
    assert [str(p) for p in info.value.problems] == [
        "lines[2].unit_price: amount: expected a decimal string, got 12.5 (float)"
    ]


def test_several_problems_are_reported_together() -> None:
    data = CONVERTER.unstructure(sample_po())
    data["lines"][0]["quantity"] = 10.0
    data["lines"][1]["line_no"] = "2"
    del data["supplier_id"]
    data["colour"] = "blue"
    data["created_at"] = "2026-01-05T09:00:00"  # no offset
    with pytest.raises(ValidationError) as info:
        CONVERTER.structure(data, PurchaseOrder)
    paths = sorted(p.path for p in info.value.problems)
    assert paths == ["", "created_at", "lines[0].quantity", "lines[1].line_no", "supplier_id"]
    text = str(info.value)
    assert "5 problems" in text
    assert "lines[0].quantity: expected a decimal string, got 10.0 (float)" in text
    assert "lines[1].line_no: expected an integer, got '2' (str)" in text
    assert "supplier_id: required field missing" in text
    assert "unknown keys ['colour']" in text
    assert "created_at: expected a date-time with a UTC offset" in text


def test_cross_field_rules_are_reported_at_their_path() -> None:
    data = CONVERTER.unstructure(sample_po())
    data["lines"][1]["line_no"] = 1
    data["lines"][1]["unit_price"]["currency"] = "EUR"
    with pytest.raises(ValidationError) as info:
        CONVERTER.structure(data, PurchaseOrder)
    messages = {str(p) for p in info.value.problems}
    assert "lines: line numbers must be unique; repeated: [1]" in messages
    assert "lines[1].unit_price: currency EUR differs from the document's USD" in messages


def test_decimal_exponent_survives() -> None:
    line = attrs.evolve(
        sample_po().lines[0], unit_price=money("1.10", "USD"), quantity=Decimal("3.000")
    )
    back = loads(dumps(line), PurchaseOrderLine)
    assert str(back.unit_price.amount) == "1.10"
    assert str(back.quantity) == "3.000"


def test_json_shape_is_readable() -> None:
    data = json.loads(dumps(sample_invoice()))
    assert data["total"] == {"amount": "500.00", "currency": "USD"}
    assert data["invoice_date"] == "2026-01-16"
    assert data["kind"] == "invoice"


def test_events_are_tagged_with_their_type() -> None:
    record = attrs.evolve(
        sample_transition(), event=ReceiveGoods(receipt=sample_receipt(), key="k")
    )
    data = json.loads(dumps(record))
    assert data["event"]["type"] == "ReceiveGoods"
    assert data["event"]["key"] == "k"
    assert loads(dumps(record), TransitionRecord) == record


def test_unknown_event_type_is_a_clear_problem() -> None:
    data = CONVERTER.unstructure(sample_transition())
    data["event"]["type"] = "Teleport"
    with pytest.raises(ValidationError, match="unknown event type 'Teleport'"):
        CONVERTER.structure(data, TransitionRecord)


def test_not_json_at_all() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        loads("{nope", Invoice)


def test_converters_are_independent() -> None:
    # make_converter never touches cattrs' global converter.
    import cattrs

    assert cattrs.global_converter.unstructure(Decimal("1.5")) == Decimal("1.5")
    assert make_converter() is not make_converter()


def _successor(old: Any, other: Any, data: st.DataObject) -> Any:
    """A new version of ``old`` as the lifecycle makes them: some fields taken from ``other``, the
    rest shared (the same objects); tuple fields keep a prefix of ``old``'s and go on with
    ``other``'s elements, as a PO does when a comment or a receipt is appended."""
    changes: dict[str, Any] = {}
    for field in attrs.fields(type(old)):
        mine, theirs = getattr(old, field.name), getattr(other, field.name)
        how = data.draw(st.sampled_from(["keep", "replace", "extend"]), label=field.name)
        if how == "replace":
            changes[field.name] = theirs
        elif how == "extend" and isinstance(mine, tuple) and isinstance(theirs, tuple):
            cut = data.draw(st.integers(0, len(mine)), label=f"{field.name} prefix")
            changes[field.name] = mine[:cut] + theirs
    try:
        return attrs.evolve(old, **changes)
    except (ValidationError, ValueError, TypeError):
        return attrs.evolve(old)  # a mix the records refuse: a fresh copy sharing every part


@pytest.mark.parametrize("cls", [PurchaseOrder, Invoice, TransitionRecord], ids=_name)
@settings(max_examples=25)
@given(data=st.data())
def test_incremental_encoder_gives_exactly_the_text_of_dumps(
    cls: type[Any], data: st.DataObject
) -> None:
    encoder = IncrementalEncoder(CONVERTER, size=8)  # small: entries are evicted along the way
    first = data.draw(records(cls))
    versions = [first]
    for _ in range(data.draw(st.integers(1, 4), label="versions")):
        versions.append(_successor(versions[-1], data.draw(records(cls)), data))
    for record in versions:
        # two documents interleaved under different keys, as a store saves them
        assert encoder.encode("a", record) == dumps(record, converter=CONVERTER)
        assert encoder.encode("b", first) == dumps(first, converter=CONVERTER)
