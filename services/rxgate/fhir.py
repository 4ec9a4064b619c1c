"""FHIR R4 -> `rx.order/1`: a MedicationRequest and the patient's record become order events.

A shell-side adapter (the core never imports it): `rxgate check --fhir` and `rxgate cds` turn
FHIR resources into the very JSON the stream reads and hand those bytes to the one `Processor`,
so the stream, the offline check and the EHR cannot disagree about an order.

    orders_from_bundle(bundle, now=...)  -> [FhirOrder]   (rxgate check --fhir)
    map_order(request, record, now=...)  -> FhirOrder     (rxgate cds)

Every resource is parsed and validated with `fhir.resources` (its R4B models: the package has
no pydantic-2 R4 models; R4B 4.3.0 reads the R4 4.0.1 MedicationRequest, Patient, Observation,
Condition, AllergyIntolerance, Medication and Bundle unchanged). A resource that is not valid is
not used; the gap says which and why.

What maps where (absent stays absent: a fact FHIR does not give is left out of the event, never
set to false, so the rules raise their `data` findings):

- MedicationRequest -> order: id (order_id), medication[x] (contained or referenced Medication;
  RxNorm/ATC code), dosageInstruction[0].doseAndRate[].doseQuantity (UCUM -> the contract's
  dose units), .route (SNOMED CT code, else text), .timing.event[0] or
  .timing.repeat.boundsPeriod.start (scheduled_for), .timing.repeat frequency/period/periodUnit
  (frequency), .timing.repeat.duration (infusion duration), requester (prescriber_id).
- Patient -> birth_date, sex (gender; `unknown` stays absent).
- Observation (final, amended, corrected, preliminary) by LOINC: body weight 29463-7/3141-9,
  height 8302-2/3137-7, pregnancy status 82810-3, and every other quantity result as a lab
  (code = LOINC; the knowledge knows which LOINC codes are ANC, platelets, haemoglobin ...).
- Condition (active/recurrence/relapse, not refuted) -> conditions; AllergyIntolerance (active,
  not refuted) -> allergies; the patient's other MedicationRequests -> active-order events when
  complete, else current_medications.

A FHIR date without a time (`2026-03-02`) becomes midnight UTC of that date
(`2026-03-02T00:00:00Z`): the contract's calendar day is the date as written, so the day stays
the one written. A partial date (`2026`, `2026-03`) cannot place a dose or a result: absent.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from pydantic import ValidationError

from fhir.resources.R4B import get_fhir_model_class

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
ICD10 = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")

WEIGHT_LOINC = {"29463-7", "3141-9"}
HEIGHT_LOINC = {"8302-2", "3137-7"}
PREGNANCY_LOINC = "82810-3"
# Answers to 82810-3 (SNOMED CT and LOINC answer codes): True pregnant, False not pregnant.
PREGNANCY_ANSWERS = {"77386006": True, "LA15173-0": True,
                     "60001007": False, "LA26683-5": False}

# UCUM (and common written) dose units -> the contract's order.dose.unit; case-insensitive.
DOSE_UNITS = {
    "mg": "mg", "g": "g", "ug": "mcg", "mcg": "mcg", "µg": "mcg", "μg": "mcg",
    "mg/kg": "mg/kg", "mg/m2": "mg/m2", "mg/m^2": "mg/m2", "mg/[m2]": "mg/m2",
    "[iu]": "units", "u": "units", "unit": "units", "units": "units",
    "[iu]/kg": "units/kg", "u/kg": "units/kg", "units/kg": "units/kg",
    "ml": "mL",
}
WEIGHT_TO_KG = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237}
HEIGHT_TO_CM = {"cm": 1.0, "m": 100.0, "mm": 0.1, "[in_i]": 2.54, "in": 2.54}
# timing periodUnit -> (contract period_unit, multiplier). A month counts as 28 days and a year
# as 365: the shorter reading makes a frequency look more often, never less.
PERIOD_UNITS = {"s": ("h", 1 / 3600), "min": ("h", 1 / 60), "h": ("h", 1.0), "d": ("d", 1.0),
                "wk": ("wk", 1.0), "mo": ("d", 28.0), "a": ("d", 365.0)}
DURATION_TO_MIN = {"s": 1 / 60, "min": 1.0, "h": 60.0, "d": 1440.0}

RESULT_STATUSES = {"final", "amended", "corrected", "preliminary"}
ACTIVE_CLINICAL = {"active", "recurrence", "relapse"}
NOT_TRUE = {"refuted", "entered-in-error"}
ACTIVE_ORDER_STATUSES = {"active", "on-hold"}

FHIR_EVENT_NAMESPACE = uuid.UUID("9d7c4f52-3a41-5b6e-8f0d-2c1e7a9b4d63")


class FhirError(ValueError):
    """The input cannot be read as FHIR R4 at all (not a Bundle, no MedicationRequest ...)."""


@dataclass(frozen=True)
class Gap:
    """A fact FHIR did not give (or gave in a form rxgate cannot use): `field` of the event."""

    field: str
    detail: str


@dataclass
class FhirOrder:
    """One MedicationRequest as an `rx.order/1` order.placed event, with what it lacks."""

    request: str  # "MedicationRequest/<id>"
    event: dict  # may lack order.dose / order.route / order.scheduled_for / order.drug: see gaps
    active_orders: list[dict] = field(default_factory=list)  # complete events, to apply first
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Required event fields that are absent ('order.dose', ...): the event is incomplete."""
        order = self.event["order"]
        return [f"order.{k}" for k in ("drug", "dose", "route", "scheduled_for") if k not in order]

    def event_bytes(self) -> bytes:
        return json.dumps(self.event, separators=(",", ":")).encode()


@dataclass
class PatientRecord:
    """The patient's resources; a list that is None was not provided at all (absent)."""

    patient: dict | None = None
    observations: list[dict] | None = None
    conditions: list[dict] | None = None
    allergies: list[dict] | None = None
    medication_requests: list[dict] | None = None  # the patient's other orders
    medications: dict[str, dict] = field(default_factory=dict)  # "Medication/<id>" -> resource


# --- parsing -------------------------------------------------------------------------------


def parse_resource(resource: Any):
    """A validated fhir.resources model of a resource dict; raises FhirError naming what is wrong."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirError("not a FHIR resource (no resourceType)")
    kind = resource["resourceType"]
    try:
        model = get_fhir_model_class(kind)
    except ValueError:
        raise FhirError(f"{kind}: not a FHIR R4 resource type") from None
    try:
        return model.model_validate(resource)
    except ValidationError as e:
        raise FhirError(f"{_ref(resource)} is not valid FHIR R4: {_describe(e)}") from None


def _describe(error: ValidationError, limit: int = 3) -> str:
    parts = [f"{'.'.join(str(p) for p in item['loc']) or '(resource)'}: {item['msg']}"
             for item in error.errors(include_url=False)[:limit]]
    if error.error_count() > limit:
        parts.append(f"... and {error.error_count() - limit} more")
    return "; ".join(parts)


def _ref(resource: dict) -> str:
    return f"{resource.get('resourceType', '?')}/{resource.get('id', '(no id)')}"


def bundle_resources(bundle: Any) -> list[dict]:
    """The resources of a Bundle (validated as a Bundle shell: entries are checked one by one)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError("expected a FHIR Bundle (resourceType 'Bundle')")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError("Bundle.entry: expected a list")
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def record_from_resources(resources: Iterable[dict]) -> PatientRecord:
    """Group a bundle's resources; a kind with no resource at all stays absent (None)."""
    record = PatientRecord()
    for r in resources:
        kind = r.get("resourceType")
        if kind == "Patient" and record.patient is None:
            record.patient = r
        elif kind == "Observation":
            record.observations = (record.observations or []) + [r]
        elif kind == "Condition":
            record.conditions = (record.conditions or []) + [r]
        elif kind == "AllergyIntolerance":
            record.allergies = (record.allergies or []) + [r]
        elif kind == "MedicationRequest":
            record.medication_requests = (record.medication_requests or []) + [r]
        elif kind == "Medication" and r.get("id"):
            record.medications[f"Medication/{r['id']}"] = r
    return record


def orders_from_bundle(bundle: Any, *, now: dt.datetime) -> list[FhirOrder]:
    """The orders to check in one Bundle (offline use).

    The MedicationRequests with status `draft` are the orders to check (what an EHR is about to
    sign); when there is none, the Bundle's first MedicationRequest is. The others with status
    active or on-hold are the patient's active orders.
    """
    resources = bundle_resources(bundle)
    record = record_from_resources(resources)
    requests = record.medication_requests or []
    if not requests:
        raise FhirError("the Bundle has no MedicationRequest")
    to_check = [r for r in requests if r.get("status") == "draft"] or requests[:1]
    out = []
    for request in to_check:
        others = [r for r in requests if r is not request]
        out.append(map_order(request, PatientRecord(
            patient=record.patient, observations=record.observations,
            conditions=record.conditions, allergies=record.allergies,
            medication_requests=others, medications=record.medications), now=now))
    return out


# --- mapping -------------------------------------------------------------------------------


def map_order(request: dict, record: PatientRecord, *, now: dt.datetime,
              other_drafts: Iterable[dict] = ()) -> FhirOrder:
    """One MedicationRequest (dict) plus the patient's record -> a FhirOrder.

    Raises FhirError when the request itself is not a valid MedicationRequest or names no patient.
    `other_drafts` are orders signed together with this one: they count as the patient's orders.
    """
    mr = parse_resource(request)
    if mr.get_resource_type() != "MedicationRequest":
        raise FhirError(f"{_ref(request)}: expected a MedicationRequest")
    gaps: list[Gap] = []
    other_drafts = list(other_drafts)
    patient_id = _reference_id(mr.subject.reference if mr.subject else None, "Patient")
    if not patient_id:
        raise FhirError(f"{_ref(request)}: subject does not reference a Patient")

    order, drug_gaps = _order(mr, request, record, now)
    gaps += drug_gaps
    patient = _patient(patient_id, record, gaps)
    event = {
        "schema": "rx.order/1",
        "event_id": _event_id(request),
        "event_type": "order.placed",
        "occurred_at": _iso(mr.authoredOn) if _is_instant(mr.authoredOn) else _iso(now),
        "source": "fhir",
        "order": order,
        "patient": patient,
    }

    active: list[dict] = []
    meds: list[dict] = list(patient.get("current_medications", []))
    others = [*(record.medication_requests or []),
              *(d for d in other_drafts if d is not request)]
    for other in others:
        if other is request or (other.get("id") and other.get("id") == request.get("id")):
            continue
        status = other.get("status")
        if status not in ACTIVE_ORDER_STATUSES and other not in other_drafts:
            continue
        try:
            omr = parse_resource(other)
        except FhirError as e:
            gaps.append(Gap("patient.current_medications", f"{e}: not counted"))
            continue
        other_patient = _reference_id(omr.subject.reference if omr.subject else None, "Patient")
        if other_patient != patient_id:
            gaps.append(Gap("patient.current_medications",
                            f"{_ref(other)} is for another patient: not counted"))
            continue
        o_order, _ = _order(omr, other, record, now)
        if "drug" not in o_order:
            gaps.append(Gap("patient.current_medications",
                            f"{_ref(other)}: its medication cannot be named: not counted"))
            continue
        complete = all(k in o_order for k in ("dose", "route", "scheduled_for"))
        if complete and other not in other_drafts:
            active.append({
                "schema": "rx.order/1", "event_id": _event_id(other), "event_type": "order.placed",
                "occurred_at": _iso(omr.authoredOn) if _is_instant(omr.authoredOn) else event["occurred_at"],
                "source": "fhir", "order": o_order,
                "patient": {"patient_id": patient_id},
            })
        else:
            med = {"name": o_order["drug"]["name"]}
            if "code" in o_order["drug"]:
                med["code"] = o_order["drug"]["code"]
            if med not in meds:
                meds.append(med)
            if other not in other_drafts:
                gaps.append(Gap("active_orders",
                                f"{_ref(other)} has no complete dose, route and time: it counts for "
                                f"combination checks, not for interval checks"))
    if meds:
        patient["current_medications"] = meds
    return FhirOrder(request=_ref(request), event=event, active_orders=active, gaps=gaps)


def _order(mr, raw: dict, record: PatientRecord, now: dt.datetime) -> tuple[dict, list[Gap]]:
    gaps: list[Gap] = []
    order: dict = {"order_id": mr.id or _event_id(raw)}
    drug = _drug(mr, record, gaps)
    if drug:
        order["drug"] = drug
    dosages = sorted(mr.dosageInstruction or [], key=lambda d: d.sequence or 0)
    if not dosages:
        gaps.append(Gap("order.dose", "no dosageInstruction"))
        return order, gaps
    if len(dosages) > 1:
        gaps.append(Gap("order", f"{len(dosages)} dosage instructions: only the first is checked"))
    dosage = dosages[0]

    dose = _dose(dosage, gaps)
    if dose:
        order["dose"] = dose
    route = _route(dosage.route)
    if route:
        order["route"] = route
    else:
        gaps.append(Gap("order.route", "dosageInstruction.route is missing"))

    timing = dosage.timing
    repeat = timing.repeat if timing else None
    start = None
    if timing and timing.event:
        start = min((e for e in timing.event if _is_placed(e)), default=None, key=_sort_key)
    if start is None and repeat and repeat.boundsPeriod and _is_placed(repeat.boundsPeriod.start):
        start = repeat.boundsPeriod.start
    if start is not None:
        order["scheduled_for"] = _iso(start)
    else:
        gaps.append(Gap("order.scheduled_for",
                        "no administration time (dosageInstruction.timing.event or "
                        "timing.repeat.boundsPeriod.start, to the day)"))

    if repeat and repeat.period is not None and repeat.periodUnit in PERIOD_UNITS:
        unit, factor = PERIOD_UNITS[repeat.periodUnit]
        period = float(repeat.period) * factor
        if period > 0:
            order["frequency"] = {"count": int(repeat.frequency or 1), "period": _number(period),
                                  "period_unit": unit}
    if repeat and repeat.duration is not None and repeat.durationUnit in DURATION_TO_MIN:
        minutes = float(repeat.duration) * DURATION_TO_MIN[repeat.durationUnit]
        if minutes > 0:
            order["infusion"] = {"duration_min": _number(minutes)}
    if mr.requester and mr.requester.reference:
        order["prescriber_id"] = mr.requester.reference
    return order, gaps


def _drug(mr, record: PatientRecord, gaps: list[Gap]) -> dict | None:
    concept = mr.medicationCodeableConcept
    if concept is None and mr.medicationReference is not None:
        ref = mr.medicationReference.reference or ""
        med = None
        if ref.startswith("#"):
            med = next((c for c in (mr.contained or [])
                        if c.get_resource_type() == "Medication" and c.id == ref[1:]), None)
        elif ref:
            raw = record.medications.get(_relative(ref))
            if raw is not None:
                try:
                    med = parse_resource(raw)
                except FhirError as e:
                    gaps.append(Gap("order.drug", str(e)))
        if med is not None:
            concept = med.code
        elif mr.medicationReference.display:
            return {"name": mr.medicationReference.display}
        else:
            gaps.append(Gap("order.drug", f"medicationReference {ref!r} cannot be resolved"))
            return None
    if concept is None:
        gaps.append(Gap("order.drug", "no medication"))
        return None
    name = concept.text or next((c.display for c in concept.coding or [] if c.display), None)
    code = None
    for system, label in ((RXNORM, "rxnorm"), (ATC, "atc")):
        coding = next((c for c in concept.coding or [] if c.system == system and c.code), None)
        if coding:
            code = {"system": label, "value": coding.code}
            break
    if not name:
        name = f"{code['system']} {code['value']}" if code else None
    if not name or not name.strip():
        gaps.append(Gap("order.drug", "the medication has neither a name nor a code"))
        return None
    drug = {"name": name}
    if code:
        drug["code"] = code
    return drug


def _dose(dosage, gaps: list[Gap]) -> dict | None:
    rates = dosage.doseAndRate or []
    ordered = [r for r in rates if r.type and any(c.code == "ordered" for c in r.type.coding or [])]
    chosen = next((r for r in [*ordered, *rates] if r.doseQuantity is not None), None)
    if chosen is None:
        if any(r.doseRange is not None for r in rates):
            gaps.append(Gap("order.dose", "the dose is a range (doseRange): give one amount"))
        else:
            gaps.append(Gap("order.dose", "no doseAndRate.doseQuantity"))
        return None
    q = chosen.doseQuantity
    if q.comparator:
        gaps.append(Gap("order.dose", f"the dose has a comparator ({q.comparator})"))
        return None
    written = _unit(q)
    unit = DOSE_UNITS.get((written or "").strip().lower())
    if q.value is None or unit is None or float(q.value) <= 0:
        gaps.append(Gap("order.dose", f"dose {q.value} {written or '(no unit)'}: not an amount "
                                      f"rxgate reads (mg, g, ug, mg/kg, mg/m2, [iU], [iU]/kg, mL)"))
        return None
    return {"value": _number(float(q.value)), "unit": unit}


def _route(concept) -> str | None:
    if concept is None:
        return None
    snomed = next((c.code for c in concept.coding or [] if c.system == SNOMED and c.code), None)
    if snomed:
        return snomed  # routes.toml lists SNOMED CT route codes as spellings
    if concept.text and concept.text.strip():
        return concept.text.strip()
    return next((c.display or c.code for c in concept.coding or [] if c.display or c.code), None)


def _patient(patient_id: str, record: PatientRecord, gaps: list[Gap]) -> dict:
    out: dict = {"patient_id": patient_id}
    if record.patient is not None:
        try:
            p = parse_resource(record.patient)
        except FhirError as e:
            gaps.append(Gap("patient", str(e)))
            p = None
        if p is not None and p.id and p.id != patient_id:
            gaps.append(Gap("patient", f"Patient/{p.id} is not the order's subject: not used"))
            p = None
        if p is not None:
            if isinstance(p.birthDate, dt.date):
                out["birth_date"] = p.birthDate.isoformat()
            elif p.birthDate:
                gaps.append(Gap("patient.birth_date", f"partial birthDate {p.birthDate!r}"))
            if p.gender in ("male", "female", "other"):
                out["sex"] = p.gender
    else:
        gaps.append(Gap("patient", "no Patient resource: birth date and sex unknown"))

    if record.observations is not None:
        _observations(patient_id, record.observations, out, gaps)
    if record.conditions is not None:
        out["conditions"] = _conditions(patient_id, record.conditions, gaps)
    if record.allergies is not None:
        out["allergies"] = _allergies(patient_id, record.allergies, gaps)
    return out


def _for_patient(model, patient_id: str, raw: dict, gaps: list[Gap], where: str) -> bool:
    subject = getattr(model, "subject", None) or getattr(model, "patient", None)
    ref = subject.reference if subject is not None else None
    if ref is not None and _reference_id(ref, "Patient") != patient_id:
        gaps.append(Gap(where, f"{_ref(raw)} is for another patient: not used"))
        return False
    return True


def _observations(patient_id: str, observations: list[dict], out: dict, gaps: list[Gap]) -> None:
    labs: list[dict] = []
    weight = height = pregnancy = None  # (taken_at, value)
    for raw in observations:
        try:
            obs = parse_resource(raw)
        except FhirError as e:
            gaps.append(Gap("patient.labs", f"{e}: not used"))
            continue
        if obs.status not in RESULT_STATUSES or not _for_patient(obs, patient_id, raw, gaps, "patient.labs"):
            continue
        loinc = [c.code for c in (obs.code.coding or []) if c.system == LOINC and c.code]
        if not loinc:
            continue
        when = obs.effectiveDateTime or obs.effectiveInstant or (
            obs.effectivePeriod.start if obs.effectivePeriod else None) or obs.issued
        if not _is_placed(when):
            gaps.append(Gap("patient.labs", f"{_ref(raw)} (LOINC {loinc[0]}) has no usable time: not used"))
            continue
        taken = _iso(when)
        if PREGNANCY_LOINC in loinc:
            concept = obs.valueCodeableConcept
            answer = next((PREGNANCY_ANSWERS[c.code] for c in (concept.coding or []) if concept
                           and c.code in PREGNANCY_ANSWERS), None) if concept else None
            if answer is not None and (pregnancy is None or _at(taken) > _at(pregnancy[0])):
                pregnancy = (taken, answer)
            continue
        q = obs.valueQuantity
        if q is None or q.value is None:
            continue
        if q.comparator:
            gaps.append(Gap("patient.labs", f"{_ref(raw)} (LOINC {loinc[0]}) is {q.comparator} "
                                            f"{q.value}: not an exact value, not used"))
            continue
        unit = _unit(q)
        if WEIGHT_LOINC & set(loinc) or HEIGHT_LOINC & set(loinc):
            is_weight = bool(WEIGHT_LOINC & set(loinc))
            table = WEIGHT_TO_KG if is_weight else HEIGHT_TO_CM
            factor = table.get((unit or "").strip().lower())
            name = "patient.weight_kg" if is_weight else "patient.height_cm"
            if factor is None or float(q.value) <= 0:
                gaps.append(Gap(name, f"{_ref(raw)}: {q.value} {unit or '(no unit)'} not understood"))
                continue
            value = (taken, _number(float(q.value) * factor))
            if is_weight and (weight is None or _at(taken) > _at(weight[0])):
                weight = value
            elif not is_weight and (height is None or _at(taken) > _at(height[0])):
                height = value
            continue
        if not unit:
            gaps.append(Gap("patient.labs", f"{_ref(raw)} (LOINC {loinc[0]}) has no unit: not used"))
            continue
        labs.append({"code": loinc[0], "value": _number(float(q.value)), "unit": unit,
                     "taken_at": taken})
    out["labs"] = labs
    if weight:
        out["weight_kg"] = weight[1]
    if height:
        out["height_cm"] = height[1]
    if pregnancy:
        out["pregnant"] = pregnancy[1]


def _conditions(patient_id: str, conditions: list[dict], gaps: list[Gap]) -> list[str]:
    names: list[str] = []
    for raw in conditions:
        try:
            c = parse_resource(raw)
        except FhirError as e:
            gaps.append(Gap("patient.conditions", f"{e}: not used"))
            continue
        if not _for_patient(c, patient_id, raw, gaps, "patient.conditions"):
            continue
        if not _status_ok(c.clinicalStatus, c.verificationStatus):
            continue
        for name in _concept_names(c.code, extra_codes=ICD10):
            if name not in names:
                names.append(name)
    return names


def _allergies(patient_id: str, allergies: list[dict], gaps: list[Gap]) -> list[str]:
    names: list[str] = []
    for raw in allergies:
        try:
            a = parse_resource(raw)
        except FhirError as e:
            gaps.append(Gap("patient.allergies", f"{e}: not used"))
            continue
        if not _for_patient(a, patient_id, raw, gaps, "patient.allergies"):
            continue
        if not _status_ok(a.clinicalStatus, a.verificationStatus):
            continue
        concepts = [a.code, *(r.substance for r in a.reaction or [])]
        for concept in concepts:
            for name in _concept_names(concept):
                if name not in names:
                    names.append(name)
    return names


def _status_ok(clinical, verification) -> bool:
    clinical_codes = {c.code for c in (clinical.coding or [])} if clinical else set()
    verification_codes = {c.code for c in (verification.coding or [])} if verification else set()
    if clinical_codes and not clinical_codes & ACTIVE_CLINICAL:
        return False
    return not verification_codes & NOT_TRUE


def _concept_names(concept, extra_codes: tuple[str, ...] = ()) -> list[str]:
    if concept is None:
        return []
    names = []
    if concept.text and concept.text.strip():
        names.append(concept.text.strip())
    for c in concept.coding or []:
        if c.display and c.display.strip() and c.display.strip() not in names:
            names.append(c.display.strip())
    if not names:
        names += [c.code for c in concept.coding or [] if c.code]
    names += [c.code for c in concept.coding or [] if c.system in extra_codes and c.code
              and c.code not in names]
    return names


def medication_reference(request: dict) -> str | None:
    """'Medication/<id>' when a MedicationRequest (dict) names its Medication by a reference
    that is not contained in it; else None."""
    ref = (request.get("medicationReference") or {}).get("reference") if isinstance(request, dict) else None
    if not isinstance(ref, str) or not ref or ref.startswith("#"):
        return None
    rel = _relative(ref)
    return rel if rel.startswith("Medication/") else None


# --- small helpers -------------------------------------------------------------------------


def _unit(quantity) -> str | None:
    """The UCUM code when the quantity is coded in UCUM, else the unit as written."""
    if quantity.system == UCUM and quantity.code:
        return quantity.code
    return quantity.unit or quantity.code


def _reference_id(reference: str | None, kind: str) -> str | None:
    if not reference:
        return None
    rel = _relative(reference)
    prefix = f"{kind}/"
    return rel[len(prefix):].split("/_history/")[0] if rel.startswith(prefix) else None


def _relative(reference: str) -> str:
    """'https://ehr/fhir/Patient/1' -> 'Patient/1'."""
    parts = reference.rstrip("/").split("/")
    for i in range(len(parts) - 1):
        if parts[i][:1].isupper() and i + 1 < len(parts):
            return "/".join(parts[i:])
    return reference


def _event_id(resource: dict) -> str:
    """A stable event id: the resource's reference (and version), else a hash of its content."""
    if resource.get("id"):
        version = (resource.get("meta") or {}).get("versionId")
        return f"fhir:{_ref(resource)}" + (f"/_history/{version}" if version else "")
    digest = hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()
    return f"fhir:{uuid.uuid5(FHIR_EVENT_NAMESPACE, digest)}"


def _is_placed(value) -> bool:
    """A full date or an instant (a partial date cannot place a dose or a result)."""
    return isinstance(value, (dt.date, dt.datetime)) and (
        not isinstance(value, dt.datetime) or value.tzinfo is not None)


def _is_instant(value) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return f"{value.isoformat()}T00:00:00Z"  # a calendar day as written: midnight UTC of it


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _sort_key(value) -> dt.datetime:
    return _at(_iso(value))


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 6)


__all__ = ["FhirError", "FhirOrder", "Gap", "PatientRecord", "map_order", "orders_from_bundle",
           "medication_reference",
           "bundle_resources", "record_from_resources", "parse_resource"]
