"""FHIR R4 -> rx.order/1 (rxgate.fhir), on the FHIR R4 specification's own examples and on
isatuximab orders built like an EHR sends them; UCUM units on every path."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from rxgate.contract import parse_order_event
from rxgate.fhir import FhirError, PatientRecord, map_order, orders_from_bundle, parse_resource
from rxgate.processor import DictHistoryStore, Processor
from rxgate.contract import FileSource

from .bundles import (bundle, condition, contract_example_bundle, contract_example_resources,
                      medication_request, patient, quantity_obs)
from .conftest import fixture

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)


def decide(knowledge, event: dict, active: list[dict] = ()):
    processor = Processor(knowledge, DictHistoryStore())
    origin = FileSource(file="test", line=1)
    for a in active:
        processor.handle(json.dumps(a).encode(), origin, NOW)
    [decision] = processor.handle(json.dumps(event).encode(), origin, NOW).outputs
    return decision


def rule_ids(decision) -> set[str]:
    return {f.rule_id for f in decision.findings}


# --- the FHIR R4 (4.0.1) specification's MedicationRequest examples -------------------------

R4_EXAMPLES = ["0301", "0302", "0309", "0314", "0316", "0317", "0319", "0320"]


@pytest.mark.parametrize("n", R4_EXAMPLES)
def test_every_r4_example_is_valid_r4(n):
    resource = fixture(f"fhir-r4-medicationrequest{n}.json")
    assert parse_resource(resource).get_resource_type() == "MedicationRequest"


@pytest.mark.parametrize("n, dose, route, scheduled, frequency, gap", [
    ("0309", {"value": 1000, "unit": "mg/m2"}, "26643006", "2016-01-22T00:00:00Z",
     {"count": 1, "period": 2, "period_unit": "d"}, None),
    ("0316", {"value": 1.8, "unit": "mg/kg"}, "255560000", None,
     {"count": 1, "period": 3, "period_unit": "wk"}, "order.scheduled_for"),
    ("0319", {"value": 4.5, "unit": "g"}, "47625008", None,
     {"count": 1, "period": 6, "period_unit": "h"}, "order.scheduled_for"),
    ("0314", {"value": 75, "unit": "mcg"}, "26643006", None,
     {"count": 1, "period": 1, "period_unit": "d"}, "order.scheduled_for"),
    ("0320", {"value": 20, "unit": "units"}, "263887005", None,
     {"count": 3, "period": 1, "period_unit": "d"}, "order.scheduled_for"),
    ("0302", None, "26643006", None, {"count": 1, "period": 1, "period_unit": "d"}, "order.dose"),
    ("0301", None, "26643006", None, {"count": 1, "period": 4, "period_unit": "h"}, "order.dose"),
])
def test_r4_examples_map_dose_route_time_and_frequency(n, dose, route, scheduled, frequency, gap):
    resource = fixture(f"fhir-r4-medicationrequest{n}.json")
    fo = map_order(resource, PatientRecord(), now=NOW)
    order = fo.event["order"]
    assert order.get("dose") == dose
    assert order.get("route") == route
    assert order.get("scheduled_for") == scheduled
    assert order.get("frequency") == frequency
    assert order["drug"]["name"]  # from the contained Medication or the concept
    assert fo.event["patient"]["patient_id"] == "pat1"
    if gap:
        assert gap in fo.missing and any(g.field == gap for g in fo.gaps)
    else:
        assert fo.missing == []


def test_0320_insulin_dose_in_ucum_units(knowledge):
    resource = fixture("fhir-r4-medicationrequest0320.json")
    q = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert q["code"] == "U"
    assert map_order(resource, PatientRecord(), now=NOW).event["order"]["dose"]["unit"] == "units"


def test_the_range_dose_example_is_not_read_as_one_amount():
    fo = map_order(fixture("fhir-r4-medicationrequest0301.json"), PatientRecord(), now=NOW)
    assert [g.detail for g in fo.gaps if g.field == "order.dose"] == [
        "the dose is a range (doseRange): give one amount"]


def test_r4_observation_example_weight_in_pounds_becomes_kg():
    obs = fixture("fhir-r4-observation-example.json")
    pat = fixture("fhir-r4-patient-example.json")
    mr = medication_request("m1", "example")
    fo = map_order(mr, PatientRecord(patient=pat, observations=[obs]), now=NOW)
    p = fo.event["patient"]
    assert p["weight_kg"] == pytest.approx(185 * 0.45359237)
    assert p["birth_date"] == "1974-12-25" and p["sex"] == "male"


# --- the contract example said in FHIR ------------------------------------------------------


def test_contract_example_in_fhir_is_a_valid_event_with_every_fact(knowledge):
    [fo] = orders_from_bundle(contract_example_bundle(), now=NOW)
    event = parse_order_event(json.dumps(fo.event))  # the contract's own parser
    assert event.order.dose.value == 700 and event.order.dose.unit == "mg"
    assert knowledge.route(event.order.route) == "IV"
    p = event.patient
    assert (p.weight_kg, p.height_cm, p.pregnant, p.sex) == (70, 165, False, "female")
    assert p.lactating is None  # FHIR said nothing: absent, not false
    assert {(l.code, l.unit) for l in p.labs} == {("751-8", "10*9/L"), ("777-3", "10*3/uL"),
                                                  ("718-7", "g/dL"), ("1975-2", "mg/dL")}
    assert [a.event_id for a in map(lambda e: parse_order_event(json.dumps(e)), fo.active_orders)] == [
        "fhir:MedicationRequest/pom1"]
    decision = decide(knowledge, fo.event, fo.active_orders)
    # UCUM lab units are understood: no unit finding, the counts are compared
    assert not [r for r in rule_ids(decision) if r.endswith("_unit_unknown")]
    assert decision.outcome == "approved"
    assert rule_ids(decision) == {"isatuximab.dose.first_dose_premedication",
                                  "isatuximab.combination.immunomodulator"}


def test_absent_stays_absent_and_the_rules_say_what_is_missing(knowledge):
    mr = medication_request("m1", "p9")
    fo = map_order(mr, PatientRecord(), now=NOW)  # no patient, no observations, no conditions
    p = fo.event["patient"]
    assert set(p) == {"patient_id"}
    ids = rule_ids(decide(knowledge, fo.event))
    assert {"isatuximab.data.weight_missing", "isatuximab.data.anc_missing",
            "isatuximab.data.plt_missing", "isatuximab.data.pregnancy_unknown",
            "isatuximab.data.conditions_missing"} <= ids


def test_a_pregnancy_observation_of_pregnant_is_a_contraindication(knowledge):
    resources = contract_example_resources("p2", "m2")
    resources[4] = {**resources[4], "valueCodeableConcept": {"coding": [
        {"system": "http://snomed.info/sct", "code": "77386006", "display": "Pregnant"}]}}
    [fo] = orders_from_bundle(bundle(resources), now=NOW)
    assert fo.event["patient"]["pregnant"] is True
    d = decide(knowledge, fo.event, fo.active_orders)
    assert d.severity == "contraindicated" and "isatuximab.contraindication.pregnancy" in rule_ids(d)


def test_a_date_without_time_is_that_calendar_day():
    mr = medication_request("m1", "p1", start="2026-03-09")
    assert map_order(mr, PatientRecord(), now=NOW).event["order"]["scheduled_for"] == "2026-03-09T00:00:00Z"
    obs = quantity_obs("o1", "p1", "751-8", 1.5, "10*9/L", "2026-03-08")
    fo = map_order(mr, PatientRecord(observations=[obs]), now=NOW)
    assert fo.event["patient"]["labs"][0]["taken_at"] == "2026-03-08T00:00:00Z"


def test_partial_dates_place_nothing():
    mr = medication_request("m1", "p1", start="2026-03")
    obs = quantity_obs("o1", "p1", "751-8", 1.5, "10*9/L", "2026")
    fo = map_order(mr, PatientRecord(observations=[obs], patient=patient("p1", birth="1955")), now=NOW)
    assert "order.scheduled_for" in fo.missing
    assert fo.event["patient"]["labs"] == [] and "birth_date" not in fo.event["patient"]
    assert {g.field for g in fo.gaps} >= {"patient.labs", "patient.birth_date", "order.scheduled_for"}


def test_another_patients_resources_are_not_used():
    mr = medication_request("m1", "p1")
    fo = map_order(mr, PatientRecord(patient=patient("p2"),
                                     observations=[quantity_obs("w", "p2", "29463-7", 70, "kg", "2026-03-01")],
                                     conditions=[condition("c", "p2", "multiple myeloma")]), now=NOW)
    p = fo.event["patient"]
    assert "weight_kg" not in p and "sex" not in p and p["conditions"] == []


def test_an_invalid_request_is_refused_with_the_field_named():
    bad = medication_request("m1", "p1")
    bad["status"] = 42
    with pytest.raises(FhirError, match="status"):
        map_order(bad, PatientRecord(), now=NOW)


# --- UCUM on the Kafka / rxgate check path ------------------------------------------------------


@pytest.mark.parametrize("unit, value, low", [("10*9/L", 0.5, True), ("10*9/l", 0.5, True),
                                              ("10*3/uL", 1.5, False), ("{cells}/uL", 500, True),
                                              ("/uL", 1500, False), ("10^9/L", 0.9, True)])
def test_ucum_lab_units_on_the_event_path(knowledge, placed, unit, value, low):
    placed["patient"]["labs"][0].update(unit=unit, value=value)
    d = decide(knowledge, placed)
    assert not [r for r in rule_ids(d) if r.endswith("_unit_unknown")]
    assert ("isatuximab.contraindication.anc_low" in rule_ids(d)) is low


def test_haemoglobin_in_g_per_l_converts(knowledge, placed):
    placed["patient"]["labs"][2].update(unit="g/L", value=75)
    d = decide(knowledge, placed)
    [f] = [f for f in d.findings if f.rule_id == "isatuximab.contraindication.hgb_low"]
    assert f.evidence["value_in_limit_unit"] == 7.5


# --- rxgate check --fhir --------------------------------------------------------------------------


def rxgate(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_check_fhir_reads_a_pretty_bundle_and_json_lines(tmp_path, knowledge):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(contract_example_bundle(), indent=2))
    run = rxgate("check", "--fhir", str(one))
    assert run.returncode == 0, run.stderr
    [decision] = [json.loads(l) for l in run.stdout.decode().splitlines()]
    assert decision["event_id"] == "fhir:MedicationRequest/ORD-1001"
    assert decision["outcome"] == "approved"

    no_dose = contract_example_bundle("P-2", "M-2")
    del no_dose["entry"][0]["resource"]["dosageInstruction"][0]["doseAndRate"]
    lines = tmp_path / "many.jsonl"
    lines.write_text("\n".join([json.dumps(contract_example_bundle("P-3", "M-3")), json.dumps(no_dose),
                                "not json", json.dumps({"resourceType": "Patient"})]) + "\n")
    run = rxgate("check", "--fhir", str(lines))
    assert run.returncode == 0, run.stderr
    out = [json.loads(l) for l in run.stdout.decode().splitlines()]
    assert [o["schema"] for o in out] == ["rx.decision/1", "rx.invalid/1", "rx.invalid/1", "rx.invalid/1"]
    assert out[1]["source"] == {"file": str(lines), "line": 2}
    assert "order.dose" in out[1]["error"]["detail"]
    assert out[2]["error"]["kind"] == "json" and out[3]["error"]["kind"] == "schema"


def test_two_lab_unit_spellings_that_differ_only_in_case_must_agree(tmp_path):
    import shutil

    from rxgate.knowledge import BUILTIN_DIR, KnowledgeError, load_knowledge

    kdir = tmp_path / "k"
    shutil.copytree(BUILTIN_DIR, kdir)
    labs = kdir / "labs.toml"
    text = labs.read_text()
    labs.write_text(text.replace('"10^9/L" = 1.0, "10^3/uL"', '"10^9/L" = 1.0, "10^9/l" = 1000.0, "10^3/uL"', 1))
    with pytest.raises(KnowledgeError, match="differs only in case"):
        load_knowledge(kdir)
