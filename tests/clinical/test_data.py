"""Data rules (issue 3, section 2, `data`): the service fails closed.

"Weight missing for a per-kg drug (also when the order is written per kg: the amount to prepare
depends on it); height missing when it is needed for m2; ANC or platelets missing, or the latest
value (by `taken_at`, whatever the list order) taken more than 7 days before `scheduled_for`;
`pregnant` absent while the patient may be pregnant (sex female or unknown, and age on the
scheduled day 12 to 55 inclusive or unknown); `conditions` missing; infusion duration missing for
an IV infusion; a drug with no monograph; a unit or route the knowledge does not cover."
Every `data` finding is at least `warning`, so the decision is `flagged`.
"""
from __future__ import annotations

import re

import pytest

from .conftest import (
    stated_minutes,
    DROP, assert_finding, assert_no, at, decide_one, findings_in, lab, order_event, rule_ids,
)

D = "isatuximab.data."
MIN = 1 / (24 * 60)


def assert_data(decision, name: str, evidence: dict | None = None, message=()):
    f = assert_finding(decision, D + name, category="data", severity="warning",
                       evidence=evidence, message=message)
    assert decision.outcome == "flagged"
    return f


# --- every data case, table-driven ---------------------------------------------------------

DATA_CASES = {
    "weight_missing/mg": (dict(patient={"weight_kg": DROP}), "weight_missing"),
    "weight_missing/g": (dict(dose=(0.7, "g"), patient={"weight_kg": DROP}), "weight_missing"),
    "weight_missing/mg_per_kg": (dict(dose=(10, "mg/kg"), patient={"weight_kg": DROP}), "weight_missing"),
    "weight_missing/mg_per_m2": (dict(dose=(390, "mg/m2"), patient={"weight_kg": DROP}), "weight_missing"),
    "height_missing/mg_per_m2": (dict(dose=(390, "mg/m2"), patient={"height_cm": DROP}), "height_missing"),
    "anc_missing": (dict(labs=[lab("PLT", 142), lab("HGB", 10.9), lab("TBILI", 0.6)]), "anc_missing"),
    "plt_missing": (dict(labs=[lab("ANC", 1.8), lab("HGB", 10.9), lab("TBILI", 0.6)]), "plt_missing"),
    "tbili_missing": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9)]), "tbili_missing"),
    "anc_stale": (dict(labs=[lab("ANC", 1.8, taken_at=at(-8)), lab("PLT", 142), lab("TBILI", 0.6)]),
                  "anc_stale"),
    "plt_stale": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142, taken_at=at(-8)), lab("TBILI", 0.6)]),
                  "plt_stale"),
    "tbili_stale": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("TBILI", 0.6, taken_at=at(-29))]),
                    "tbili_stale"),
    "pregnancy_unknown": (dict(patient={"pregnant": DROP, "birth_date": "1990-05-05"}), "pregnancy_unknown"),
    "conditions_missing": (dict(patient={"conditions": DROP}), "conditions_missing"),
    "infusion_duration_missing": (dict(duration_min=DROP), "infusion_duration_missing"),
    "unit_unknown/units": (dict(dose=(700, "units")), "unit_unknown"),
    "unit_unknown/units_per_kg": (dict(dose=(10, "units/kg")), "unit_unknown"),
    "unit_unknown/mL": (dict(dose=(35, "mL")), "unit_unknown"),
    "route_unknown": (dict(route="into the void"), "route_unknown"),
    "anc_unit_unknown": (dict(labs=[lab("ANC", 1.8, "mmol/L"), lab("PLT", 142), lab("TBILI", 0.6)]),
                         "anc_unit_unknown"),
    "plt_unit_unknown": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142, "%"), lab("TBILI", 0.6)]),
                         "plt_unit_unknown"),
    "hgb_unit_unknown": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9, "g/mL"),
                                    lab("TBILI", 0.6)]), "hgb_unit_unknown"),
    "tbili_unit_unknown": (dict(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("TBILI", 0.6, "mg/mL")]),
                           "tbili_unit_unknown"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_every_data_case_is_at_least_a_warning_and_flags_the_order(case):
    kw, name = DATA_CASES[case]
    d = decide_one(order_event(**kw))
    f = assert_data(d, name)
    assert f.rule_id == f"isatuximab.data.{name}"
    assert f.evidence, f
    assert f.message
    # the example itself has no data finding: the finding is caused by this change alone
    assert [x.rule_id for x in findings_in(d, "data")] == [f.rule_id]


def test_the_example_has_no_data_finding():
    d = decide_one(order_event())
    assert findings_in(d, "data") == []


# --- weight, height ------------------------------------------------------------------------

@pytest.mark.parametrize("dose", [(700, "mg"), (10, "mg/kg"), (0.7, "g"), (700_000, "mcg"), (390, "mg/m2")])
def test_weight_missing_names_the_labeled_per_kg_dose(dose):
    d = decide_one(order_event(dose=dose, patient={"weight_kg": DROP}))
    f = assert_data(d, "weight_missing", evidence={"labeled_mg_per_kg": 10, "ordered_unit": dose[1]})
    assert "10 mg/kg" in f.message and f"{dose[0]:g} {dose[1]}" in f.message


def test_height_missing_only_when_the_dose_is_per_m2():
    assert_no(decide_one(order_event(dose=(700, "mg"), patient={"height_cm": DROP})), D + "height_missing")
    assert_no(decide_one(order_event(dose=(10, "mg/kg"), patient={"height_cm": DROP})), D + "height_missing")
    f = assert_data(decide_one(order_event(dose=(390, "mg/m2"), patient={"height_cm": DROP})),
                    "height_missing", evidence={"ordered_value": 390, "ordered_unit": "mg/m2"})
    assert "390 mg/m2" in f.message


def test_weight_and_height_both_missing_for_mg_per_m2():
    d = decide_one(order_event(dose=(390, "mg/m2"), patient={"height_cm": DROP, "weight_kg": DROP}))
    assert_data(d, "weight_missing")
    assert_data(d, "height_missing")


# --- ANC and PLT missing or stale ----------------------------------------------------------

def test_no_labs_at_all_means_anc_and_plt_missing():
    d = decide_one(order_event(labs=DROP))
    a = assert_data(d, "anc_missing", evidence={"lab": "ANC", "max_age_days": 7, "limit_below": 1})
    p = assert_data(d, "plt_missing", evidence={"lab": "PLT", "max_age_days": 7, "limit_below": 50})
    assert "7 days" in a.message and "1 10^9/L" in a.message, a.message
    assert "7 days" in p.message and "50 10^9/L" in p.message, p.message
    assert D + "hgb_missing" not in rule_ids(d)   # haemoglobin is not required by the spec


def test_hgb_missing_is_not_a_data_finding():
    d = decide_one(order_event(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("TBILI", 0.6)]))
    assert findings_in(d, "data") == []


@pytest.mark.parametrize("code", ["ANC", "PLT"])
@pytest.mark.parametrize("age,stale", [(7, False), (6.5, False), (7 + MIN, True), (8, True), (30, True)])
def test_lab_older_than_seven_days_is_stale(code, age, stale):
    labs_ = {"ANC": lab("ANC", 1.8), "PLT": lab("PLT", 142), "TBILI": lab("TBILI", 0.6)}
    labs_[code] = lab(code, 1.8 if code == "ANC" else 142, taken_at=at(-age))
    d = decide_one(order_event(labs=list(labs_.values())))
    rule = f"{code.lower()}_stale"
    if not stale:
        assert_no(d, D + rule)
        assert findings_in(d, "data") == []
        return
    f = assert_data(d, rule, evidence={"lab": code, "age_days": round(age, 2), "max_age_days": 7})
    assert "7 days" in f.message, f.message
    if age == int(age):
        assert f"taken {age} days" in f.message, f.message


@pytest.mark.parametrize("code", ["ANC", "PLT"])
@pytest.mark.parametrize("hours_over", [1, 2])
def test_stale_message_states_an_age_above_the_limit(code, hours_over):
    """A pharmacist must see why it is stale: the age the message states exceeds 7 days."""
    labs_ = {"ANC": lab("ANC", 1.8), "PLT": lab("PLT", 142)}
    labs_[code] = lab(code, 1.8 if code == "ANC" else 142, taken_at=at(-7, hours=-hours_over))
    d = decide_one(order_event(labs=list(labs_.values())))
    f = assert_data(d, f"{code.lower()}_stale", evidence={"max_age_days": 7})
    assert f.evidence["age_days"] > 7
    stated = stated_minutes(f.message, "taken")
    assert stated == (7 * 24 + hours_over) * 60, f.message
    assert stated > 7 * 24 * 60, f"message states no more than the 7-day limit: {f.message!r}"


def test_stale_is_measured_from_scheduled_for_not_from_the_event_time():
    """Labs 3 days before the event but 10 days before the scheduled dose are stale."""
    e = order_event(scheduled_for=10, labs=[lab("ANC", 1.8, taken_at=at(0)), lab("PLT", 142, taken_at=at(0))])
    e["occurred_at"] = at(3)
    d = decide_one(e)
    assert_data(d, "anc_stale", evidence={"age_days": 10})
    assert_data(d, "plt_stale", evidence={"age_days": 10})


@pytest.mark.parametrize("reverse", [False, True])
def test_staleness_judges_the_latest_value_whatever_the_list_order(reverse):
    labs_ = [lab("ANC", 1.5, taken_at=at(-20)), lab("ANC", 1.8, taken_at=at(-2)),
             lab("PLT", 142, taken_at=at(-2)), lab("PLT", 150, taken_at=at(-40)),
             lab("TBILI", 2.5, taken_at=at(-40)), lab("TBILI", 0.6, taken_at=at(-2))]
    if reverse:
        labs_.reverse()
    d = decide_one(order_event(labs=labs_))
    assert findings_in(d, "data") == []


# --- pregnancy status ----------------------------------------------------------------------

# scheduled_for is 2026-03-02T09:00:00Z unless given.
PREGNANCY_CASES = [
    # sex, birth_date, scheduled_for, flagged, age on the scheduled day
    ("female", "1990-05-05", None, True, 35),
    ("Female", "1990-05-05", None, True, 35),
    (DROP, "1990-05-05", None, True, 35),           # sex unknown
    ("unknown", "1990-05-05", None, True, 35),
    ("female", DROP, None, True, None),              # age unknown
    (DROP, DROP, None, True, None),
    ("male", "1990-05-05", None, False, 35),
    ("Male", DROP, None, False, None),
    ("female", "1955-04-12", None, False, 70),       # the example patient
    ("female", "2014-03-02", None, True, 12),        # 12th birthday on the scheduled day
    ("female", "2014-03-03", None, False, 11),       # turns 12 the day after
    ("female", "1970-03-03", None, True, 55),        # turns 56 the day after
    ("female", "1970-03-02", None, False, 56),       # 56th birthday on the scheduled day
    (DROP, "2014-03-02", None, True, 12),
    (DROP, "1970-03-02", None, False, 56),
    # the scheduled day is the date as written in scheduled_for's own offset
    ("female", "1970-03-02", "2026-03-01T23:30:00-05:00", True, 55),   # 2026-03-02 in UTC
    ("female", "2014-03-02", "2026-03-02T01:00:00+05:00", True, 12),   # 2026-03-01 in UTC
    ("female", "2014-03-02", "2026-03-01T22:00:00-05:00", False, 11),  # 2026-03-02 in UTC
]


@pytest.mark.parametrize("sex,birth,scheduled,flagged,age", PREGNANCY_CASES,
                         ids=[f"{'?' if c[0] is DROP else c[0]}-{'?' if c[1] is DROP else c[1]}-{c[2] or 'T0'}"
                              for c in PREGNANCY_CASES])
def test_pregnancy_status_required_when_the_patient_may_be_pregnant(sex, birth, scheduled, flagged, age):
    kw = {"scheduled_for": scheduled} if scheduled else {}
    d = decide_one(order_event(patient={"pregnant": DROP, "sex": sex, "birth_date": birth}, **kw))
    if not flagged:
        assert_no(d, D + "pregnancy_unknown")
        return
    f = assert_data(d, "pregnancy_unknown",
                    evidence={"age_years": age, "childbearing_age_from": 12, "childbearing_age_to": 55})
    if age is not None:
        assert f"age {age}" in f.message, f.message


@pytest.mark.parametrize("pregnant", [False, True])
def test_pregnancy_status_given_is_not_a_data_finding(pregnant):
    d = decide_one(order_event(patient={"pregnant": pregnant, "birth_date": "1990-05-05"}))
    assert_no(d, D + "pregnancy_unknown")


# --- conditions, unknown drug --------------------------------------------------------------

def test_conditions_missing():
    d = decide_one(order_event(patient={"conditions": DROP}))
    assert_data(d, "conditions_missing")
    assert "isatuximab.contraindication.no_indication" not in rule_ids(d)


def test_empty_conditions_is_not_missing_but_has_no_indication():
    d = decide_one(order_event(patient={"conditions": []}))
    assert_no(d, D + "conditions_missing")
    assert "isatuximab.contraindication.no_indication" in rule_ids(d)


# "Daratumumab" was the known-class example until knowledge 2026.11.3 gave it a monograph
@pytest.mark.parametrize("drug", ["foobarinib", "Elotuzumab", {"name": "xyz", "code": {"system": "rxnorm", "value": "1"}}])
def test_a_drug_with_no_monograph(drug):
    d = decide_one(order_event(drug=drug))
    name = drug if isinstance(drug, str) else drug["name"]
    f = assert_finding(d, "rxgate.data.no_monograph", category="data", severity="warning",
                       evidence={"drug": name}, message=[name])
    assert d.findings == [f]
    assert d.drug == name.lower()
    assert d.outcome == "flagged" and d.severity == "warning"


@pytest.mark.parametrize("drug", ["isatuximab", "ISATUXIMAB", "Sarclisa", "xacoyi",
                                  {"name": "isa", "code": {"system": "rxnorm", "value": "2283218"}},
                                  {"name": "isa", "code": {"system": "ATC", "value": "l01fc02"}}])
def test_the_monograph_is_found_by_any_name_or_code(drug):
    d = decide_one(order_event(drug=drug))
    assert d.drug == "isatuximab"
    assert "rxgate.data.no_monograph" not in rule_ids(d)


def test_all_data_findings_at_once_each_reported():
    d = decide_one(order_event(
        dose=(10, "mg/m2"), route="zz", duration_min=DROP, labs=DROP,
        patient={"weight_kg": DROP, "height_cm": DROP, "pregnant": DROP, "sex": DROP,
                 "birth_date": DROP, "conditions": DROP, "lactating": DROP, "allergies": DROP}))
    names = sorted(f.rule_id.removeprefix(D) for f in findings_in(d, "data"))
    # knowledge v2 added age_unknown (the [patient] age limit), lactation_unknown and
    # allergies_missing (absent is not false), and tbili_missing (bilirubin is required)
    assert names == sorted(["weight_missing", "height_missing", "route_unknown", "anc_missing",
                            "plt_missing", "tbili_missing", "pregnancy_unknown", "conditions_missing",
                            "age_unknown", "lactation_unknown", "allergies_missing"])
    assert all(f.severity in ("warning", "major", "contraindicated") for f in findings_in(d, "data"))
    assert d.outcome == "flagged"
