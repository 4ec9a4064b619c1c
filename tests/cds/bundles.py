"""FHIR R4 resources for an isatuximab order, built as an EHR sends them.

`contract_example_bundle()` is the contract's order-placed example (docs/examples/order-placed.json)
said in FHIR: the same patient, order and facts, so its findings must equal the example's.
"""
from __future__ import annotations

import copy

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def patient(pid: str = "P-001", *, gender: str | None = "female", birth: str | None = "1955-04-12") -> dict:
    p = {"resourceType": "Patient", "id": pid}
    if gender:
        p["gender"] = gender
    if birth:
        p["birthDate"] = birth
    return p


def quantity_obs(oid: str, pid: str, loinc: str, value: float, code: str, when: str,
                 unit: str | None = None) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit or code, "system": UCUM, "code": code}}


def pregnancy_obs(oid: str, pid: str, pregnant: bool, when: str) -> dict:
    code, display = ("77386006", "Pregnant") if pregnant else ("60001007", "Not pregnant")
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": code, "display": display}]}}


def condition(cid: str, pid: str, text: str, code: str | None = None) -> dict:
    c = {"resourceType": "Condition", "id": cid,
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        "code": "active"}]},
         "code": {"text": text}, "subject": {"reference": f"Patient/{pid}"}}
    if code:
        c["code"]["coding"] = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}]
    return c


def allergy(aid: str, pid: str, text: str) -> dict:
    return {"resourceType": "AllergyIntolerance", "id": aid,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "code": {"text": text}, "patient": {"reference": f"Patient/{pid}"}}


def medication_request(mid: str, pid: str, *, drug: str = "isatuximab", rxnorm: str | None = "2283218",
                       value: float | None = 700, unit: str = "mg", start: str | None = "2026-03-02T09:00:00Z",
                       route: str | None = "47625008", status: str = "draft", minutes: float | None = 210,
                       period_days: float | None = 7) -> dict:
    concept: dict = {"text": drug}
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm, "display": drug}]
    dosage: dict = {"timing": {"repeat": {}}}
    if start:
        dosage["timing"]["event"] = [start]
    if period_days:
        dosage["timing"]["repeat"].update(frequency=1, period=period_days, periodUnit="d")
    if minutes:
        dosage["timing"]["repeat"].update(duration=minutes, durationUnit="min")
    if not dosage["timing"]["repeat"]:
        del dosage["timing"]["repeat"]
    if route:
        dosage["route"] = {"coding": [{"system": SNOMED, "code": route}]}
    if value is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}]
    return {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
            "medicationCodeableConcept": concept, "subject": {"reference": f"Patient/{pid}"},
            "requester": {"reference": "Practitioner/DR-77"},
            "authoredOn": "2026-03-02T08:15:00Z", "dosageInstruction": [dosage]}


def contract_example_resources(pid: str = "P-001", mid: str = "ORD-1001") -> list[dict]:
    """The contract's order-placed example as FHIR resources (order first)."""
    when = "2026-03-01T07:00:00Z"
    return [
        medication_request(mid, pid),
        patient(pid),
        quantity_obs("w1", pid, "29463-7", 70, "kg", when),
        quantity_obs("h1", pid, "8302-2", 165, "cm", when),
        pregnancy_obs("preg1", pid, False, when),
        quantity_obs("anc1", pid, "751-8", 1.8, "10*9/L", when),
        quantity_obs("plt1", pid, "777-3", 142, "10*3/uL", when),
        quantity_obs("hgb1", pid, "718-7", 10.9, "g/dL", when),
        quantity_obs("bili1", pid, "1975-2", 0.6, "mg/dL", when),
        allergy("al1", pid, "penicillin"),
        condition("c1", pid, "multiple myeloma", "C90.00"),
        medication_request("pom1", pid, drug="pomalidomide", rxnorm=None, value=4, unit="mg",
                           start="2026-03-01T08:00:00Z", route="26643006", status="active",
                           minutes=None, period_days=1),
    ]


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": copy.deepcopy(r)} for r in resources]}


def contract_example_bundle(pid: str = "P-001", mid: str = "ORD-1001") -> dict:
    return bundle(contract_example_resources(pid, mid))
