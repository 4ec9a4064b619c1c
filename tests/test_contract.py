"""The pydantic models accept exactly the wire contract."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rxgate.contract import (
    DeadLetter,
    Decision,
    OrderCancelled,
    OrderPlaced,
    Review,
    VerifiedDecision,
    describe_validation_error,
    parse_order_event,
    to_json,
)

from tests.conftest import EXAMPLES, example


def test_every_contract_example_parses():
    placed = parse_order_event((EXAMPLES / "order-placed.json").read_text())
    assert isinstance(placed, OrderPlaced)
    assert placed.order.dose.value == 700 and placed.order.dose.unit == "mg"
    assert placed.patient.labs[0].code == "ANC"
    cancelled = parse_order_event((EXAMPLES / "order-cancelled.json").read_text())
    assert isinstance(cancelled, OrderCancelled) and cancelled.order.order_id == "ORD-1001"
    decision = Decision.model_validate_json((EXAMPLES / "decision-flagged.json").read_text())
    assert decision.findings[0].evidence["ordered_mg"] == 1400
    letter = DeadLetter.model_validate_json((EXAMPLES / "invalid.json").read_text())
    assert letter.source.partition == 3 and letter.error.kind == "json"


@pytest.mark.parametrize("name,model", [("decision-flagged.json", Decision), ("invalid.json", DeadLetter)])
def test_outputs_round_trip_to_the_same_json(name, model):
    original = example(name)
    again = json.loads(to_json(model.model_validate(original)))
    # times may be written with another fraction format; everything else is byte-for-byte data
    for key in ("decided_at", "received_at"):
        if key in original:
            assert again.pop(key).startswith(original.pop(key)[:19])
    assert again == original


def _error(doc: dict) -> str:
    with pytest.raises(ValidationError) as info:
        parse_order_event(json.dumps(doc))
    return describe_validation_error(info.value)


def test_missing_required_field_names_its_path(placed):
    del placed["order"]["drug"]
    assert "order.drug: Field required" in _error(placed)


def test_non_positive_dose_names_its_path(placed):
    placed["order"]["dose"]["value"] = 0
    assert "order.dose.value: Input should be greater than 0" in _error(placed)
    placed["order"]["dose"]["value"] = -5
    assert "order.dose.value" in _error(placed)


def test_unknown_dose_unit_names_its_path(placed):
    placed["order"]["dose"]["unit"] = "tablets"
    msg = _error(placed)
    assert msg.startswith("order.dose.unit:") and "'mg/kg'" in msg


@pytest.mark.parametrize("field", [("order", "scheduled_for"), ("occurred_at",)])
def test_time_without_offset_is_a_schema_error(placed, field):
    target = placed
    for part in field[:-1]:
        target = target[part]
    target[field[-1]] = "2026-03-02T09:00:00"
    assert f"{'.'.join(field)}: Input should have timezone info" in _error(placed)


def test_wrong_schema_value_names_the_field(placed):
    placed["schema"] = "rx.order/2"
    assert _error(placed).startswith("schema:")


def test_unknown_event_type_is_rejected(placed):
    placed["event_type"] = "order.amended"
    assert "event_type" in _error(placed)


def test_strings_are_never_coerced_into_numbers_or_booleans(placed):
    placed["patient"]["weight_kg"] = "70"
    placed["patient"]["pregnant"] = "false"
    msg = _error(placed)
    assert "patient.weight_kg" in msg and "patient.pregnant" in msg


def test_unix_timestamp_is_not_a_time(placed):
    placed["order"]["scheduled_for"] = 1772442000
    assert "order.scheduled_for" in _error(placed)


def test_cancellation_needs_only_order_id_and_patient_id(cancelled):
    event = parse_order_event(json.dumps(cancelled))
    assert event.patient.patient_id == "P-001"
    del cancelled["patient"]["patient_id"]
    assert "patient.patient_id: Field required" in _error(cancelled)


def test_producers_may_add_optional_fields(placed):
    placed["producer_trace"] = "abc"
    placed["order"]["dose"]["note"] = "split"
    assert parse_order_event(json.dumps(placed)).order.dose.value == 700


def test_empty_identifiers_are_rejected(placed):
    placed["patient"]["patient_id"] = "  "
    assert "patient.patient_id" in _error(placed)


def _review(**overrides) -> dict:
    doc = {"schema": "rx.review/1", "review_id": "r-1", "decision_id": "d-1", "event_id": "e-1",
           "order_id": "ORD-1001", "patient_id": "P-001", "action": "override",
           "reason": "dose confirmed with prescriber", "pharmacist_id": "RPH-12",
           "acted_at": "2026-03-02T08:40:00Z"}
    doc.update(overrides)
    return doc


def test_review_needs_a_reason_to_override_or_reject():
    assert Review.model_validate_json(json.dumps(_review())).action == "override"
    assert Review.model_validate_json(json.dumps(_review(action="approve", reason=None))).action == "approve"
    for action in ("override", "reject"):
        with pytest.raises(ValidationError, match="reason is required"):
            Review.model_validate_json(json.dumps(_review(action=action, reason="")))
    with pytest.raises(ValidationError):
        Review.model_validate_json(json.dumps(_review(action="maybe")))


def test_verified_decision_fields():
    v = VerifiedDecision(decision_id="d-1", event_id="e-1", order_id="ORD-1001", patient_id="P-001",
                         final="rejected", review_id="r-1", pharmacist_id="RPH-12",
                         verified_at="2026-03-02T08:41:00Z")
    out = json.loads(to_json(v))
    assert out["schema"] == "rx.verified/1" and out["final"] == "rejected"
    with pytest.raises(ValidationError):
        VerifiedDecision(**{**out, "final": "maybe"})


SCHEMA_MODEL = {"rx.order/1": parse_order_event,
                "rx.decision/1": Decision.model_validate_json,
                "rx.invalid/1": DeadLetter.model_validate_json,
                "rx.review/1": Review.model_validate_json,
                "rx.verified/1": VerifiedDecision.model_validate_json}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_each_contract_example_is_valid_for_the_model_of_its_schema(path):
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text)["schema"]
    assert schema in SCHEMA_MODEL, f"{path.name}: no model for schema {schema!r}"
    parsed = SCHEMA_MODEL[schema](text)
    # nothing in the example is silently dropped: every top-level field is a model field
    dumped = json.loads(to_json(parsed)) if hasattr(parsed, "model_dump_json") else None
    if dumped is not None:
        assert set(json.loads(text)) <= set(dumped) | {"payload_truncated"}
