"""Contraindication rules (issue 3, section 2, `contraindication`).

"pregnant or lactating is `contraindicated`; an allergy to the drug, under its generic or a trade
name (Sarclisa; the seed also calls it Xacoyi), is `contraindicated`; the latest ANC below 1.0
x10^9/L or the latest platelet count below 50 x10^9/L is `major`; the latest haemoglobin below
8 g/dL is `warning`; an active infection among the conditions is `warning`; no multiple myeloma
among the conditions is `warning` (no labeled indication). Lab units convert (`cells/uL`,
`10^3/uL`, `10^9/L`; `g/dL`, `g/L`)."
"""
from __future__ import annotations

import pytest

from .conftest import (
    assert_finding, assert_no, assert_none_in, at, decide_one, findings_in, lab, order_event,
    rule_ids,
)

PREG = "isatuximab.contraindication.pregnancy"
LACT = "isatuximab.contraindication.lactation"
ALLERGY = "isatuximab.contraindication.allergy"
ANC = "isatuximab.contraindication.anc_low"
PLT = "isatuximab.contraindication.plt_low"
HGB = "isatuximab.contraindication.hgb_low"
INFECTION = "isatuximab.contraindication.active_infection"
NO_INDICATION = "isatuximab.contraindication.no_indication"


def with_labs(*labs_, **kw):
    """The example's fresh labs with some replaced (by code)."""
    base = {"ANC": lab("ANC", 1.8), "PLT": lab("PLT", 142), "HGB": lab("HGB", 10.9),
            "TBILI": lab("TBILI", 0.6)}
    extra = []
    for x in labs_:
        if x["code"] in base and not any(e["code"] == x["code"] for e in extra):
            base[x["code"]] = x
        else:
            extra.append(x)
    return order_event(labs=[*base.values(), *extra], **kw)


def test_the_example_has_no_contraindication():
    assert_none_in(decide_one(order_event()), "contraindication")


# --- pregnancy, lactation ------------------------------------------------------------------

def test_pregnant_is_contraindicated():
    d = decide_one(order_event(patient={"pregnant": True}))
    f = assert_finding(d, PREG, category="contraindication", severity="contraindicated",
                       evidence={"pregnant": True})
    assert "pregnan" in f.message
    assert d.severity == "contraindicated" and d.outcome == "flagged"


def test_lactating_is_contraindicated():
    d = decide_one(order_event(patient={"lactating": True}))
    assert_finding(d, LACT, category="contraindication", severity="contraindicated",
                   evidence={"lactating": True})
    assert d.severity == "contraindicated"


def test_pregnant_and_lactating_false_is_fine():
    d = decide_one(order_event(patient={"pregnant": False, "lactating": False}))
    assert_no(d, PREG)
    assert_no(d, LACT)


# --- allergy -------------------------------------------------------------------------------

@pytest.mark.parametrize("allergy", ["isatuximab", "Isatuximab", "ISATUXIMAB", "Sarclisa", "sarclisa",
                                     "SARCLISA", "Xacoyi", "xacoyi", " Sarclisa "])
def test_allergy_to_the_drug_by_any_name_is_contraindicated(allergy):
    d = decide_one(order_event(patient={"allergies": ["penicillin", allergy]}))
    f = assert_finding(d, ALLERGY, category="contraindication", severity="contraindicated",
                       evidence={"allergy": allergy.strip()})
    assert allergy.strip() in f.message
    assert d.severity == "contraindicated"


@pytest.mark.parametrize("allergies", [["penicillin"], ["daratumumab"], ["sulfa", "latex"], []])
def test_other_allergies_are_not_a_contraindication(allergies):
    d = decide_one(order_event(patient={"allergies": allergies}))
    assert_no(d, ALLERGY)


def test_allergy_when_the_order_uses_the_trade_name():
    d = decide_one(order_event(drug="Sarclisa", patient={"allergies": ["isatuximab"]}))
    assert_finding(d, ALLERGY, category="contraindication", severity="contraindicated")


# --- laboratory limits, both sides, with units ---------------------------------------------

# (lab, rule, severity, limit, value in limit unit)
LAB_CASES = [
    # ANC limit 1.0 x10^9/L
    (lab("ANC", 0.99), ANC, "major", 1, 0.99),
    (lab("ANC", 0.5), ANC, "major", 1, 0.5),
    (lab("ANC", 1.0), None, None, 1, 1.0),
    (lab("ANC", 1.01), None, None, 1, 1.01),
    (lab("ANC", 999, "cells/uL"), ANC, "major", 1, 0.999),
    (lab("ANC", 1000, "cells/uL"), None, None, 1, 1.0),
    (lab("ANC", 0.99, "10^3/uL"), ANC, "major", 1, 0.99),
    (lab("ANC", 1.0, "10^3/uL"), None, None, 1, 1.0),
    (lab("751-8", 0.8, taken_at=at(-1)), ANC, "major", 1, 0.8),  # LOINC code, newer than the example ANC
    # PLT limit 50 x10^9/L
    (lab("PLT", 49), PLT, "major", 50, 49),
    (lab("PLT", 49.9), PLT, "major", 50, 49.9),
    (lab("PLT", 50), None, None, 50, 50),
    (lab("PLT", 49_999, "cells/uL"), PLT, "major", 50, 49.999),
    (lab("PLT", 50_000, "cells/uL"), None, None, 50, 50),
    (lab("PLT", 49, "10^3/uL"), PLT, "major", 50, 49),
    (lab("PLT", 50, "10^3/uL"), None, None, 50, 50),
    # HGB limit 8 g/dL
    (lab("HGB", 7.9), HGB, "warning", 8, 7.9),
    (lab("HGB", 8), None, None, 8, 8),
    (lab("HGB", 79, "g/L"), HGB, "warning", 8, 7.9),
    (lab("HGB", 80, "g/L"), None, None, 8, 8),
    (lab("HGB", 60, "g/L"), HGB, "warning", 8, 6.0),
]


@pytest.mark.parametrize("the_lab,rule,severity,limit,value", LAB_CASES,
                         ids=[f"{c[0]['code']}-{c[0]['value']}{c[0]['unit']}" for c in LAB_CASES])
def test_lab_limits(the_lab, rule, severity, limit, value):
    d = decide_one(with_labs(the_lab, meds=[]))
    lab_rules = [r for r in rule_ids(d) if r in (ANC, PLT, HGB)]
    if rule is None:
        assert lab_rules == [], [f.message for f in d.findings]
        assert_none_in(d, "data")
        return
    assert lab_rules == [rule]
    f = assert_finding(d, rule, category="contraindication", severity=severity,
                       evidence={"value": the_lab["value"], "unit": the_lab["unit"],
                                 "value_in_limit_unit": value, "limit_below": limit})
    assert f"{the_lab['value']:g}" in f.message, f.message
    assert f"{limit:g}" in f.message, f.message
    assert d.severity == severity and d.outcome == "flagged"


@pytest.mark.parametrize("reverse", [False, True])
def test_latest_lab_by_taken_at_whatever_the_list_order(reverse):
    old_good = lab("ANC", 1.8, taken_at=at(-3))
    new_low = lab("ANC", 0.6, taken_at=at(-1))
    labs_ = [old_good, new_low, lab("PLT", 142), lab("HGB", 10.9)]
    if reverse:
        labs_.reverse()
    d = decide_one(order_event(labs=labs_))
    assert_finding(d, ANC, category="contraindication", severity="major",
                   evidence={"value": 0.6, "taken_at": at(-1).replace("Z", "+00:00")})


@pytest.mark.parametrize("reverse", [False, True])
def test_an_older_low_lab_is_superseded_by_a_newer_normal_one(reverse):
    labs_ = [lab("PLT", 20, taken_at=at(-4)), lab("PLT", 90, taken_at=at(-1)),
             lab("ANC", 1.8), lab("HGB", 7.0, taken_at=at(-5)), lab("HGB", 9.5, taken_at=at(-2))]
    if reverse:
        labs_.reverse()
    d = decide_one(order_event(labs=labs_))
    assert_no(d, PLT)
    assert_no(d, HGB)


def test_all_three_labs_low_give_three_findings():
    d = decide_one(order_event(labs=[lab("ANC", 0.4), lab("PLT", 30), lab("HGB", 7.1)]))
    assert sorted((f.rule_id, f.severity) for f in findings_in(d, "contraindication")) == [
        (ANC, "major"), (HGB, "warning"), (PLT, "major")]


# --- infection, indication -----------------------------------------------------------------

@pytest.mark.parametrize("condition", ["pneumonia", "Upper respiratory tract infection", "sepsis",
                                       "COVID-19", "herpes zoster", "urinary tract infection"])
def test_active_infection_is_warning(condition):
    d = decide_one(order_event(meds=[], patient={"conditions": ["multiple myeloma", condition]}))
    f = assert_finding(d, INFECTION, category="contraindication", severity="warning",
                       evidence={"condition": condition})
    assert condition in f.message
    assert d.outcome == "flagged"


@pytest.mark.parametrize("conditions", [["multiple myeloma"], ["Multiple Myeloma", "hypertension"],
                                        ["relapsed/refractory multiple myeloma"], ["MM"],
                                        ["MULTIPLE MYELOMA", "type 2 diabetes"]])
def test_multiple_myeloma_without_infection_is_fine(conditions):
    d = decide_one(order_event(patient={"conditions": conditions}))
    assert_no(d, INFECTION)
    assert_no(d, NO_INDICATION)


@pytest.mark.parametrize("conditions", [["hypertension"], ["breast cancer"], [],
                                        ["non-Hodgkin lymphoma", "pneumonia"]])
def test_no_multiple_myeloma_is_warning(conditions):
    d = decide_one(order_event(meds=[], patient={"conditions": conditions}))
    f = assert_finding(d, NO_INDICATION, category="contraindication", severity="warning",
                       evidence={"conditions": conditions})
    assert "multiple myeloma" in f.message
    assert d.outcome == "flagged"


@pytest.mark.parametrize("allergy", ["isatuximab-irfc", "Isatuximab (infusion reaction)", "sarclisa 20 mg/mL"])
def test_allergy_written_with_more_words_still_names_the_drug(allergy):
    d = decide_one(order_event(patient={"allergies": [allergy]}))
    assert_finding(d, ALLERGY, category="contraindication", severity="contraindicated",
                   evidence={"allergy": allergy})


@pytest.mark.parametrize("condition", ["UTI", "acute bronchitis", "Bacterial sinusitis",
                                       "active hepatitis B infection", "Candidaemia"])
def test_other_common_active_infections_are_warning(condition):
    d = decide_one(order_event(meds=[], patient={"conditions": ["multiple myeloma", condition]}))
    assert_finding(d, INFECTION, category="contraindication", severity="warning",
                   evidence={"condition": condition})


def test_latest_lab_is_judged_by_instant_not_by_local_clock():
    """07:00+09:00 on 1 March is 22:00Z on 28 February: the 01:00Z result is the newer one."""
    labs_ = [lab("ANC", 1.8, taken_at="2026-03-01T01:00:00Z"),
             lab("ANC", 0.5, taken_at="2026-03-01T07:00:00+09:00"),
             lab("PLT", 142)]
    assert_no(decide_one(order_event(labs=labs_)), ANC)
    labs_[0], labs_[1] = (lab("ANC", 0.5, taken_at="2026-03-01T01:00:00Z"),
                          lab("ANC", 1.8, taken_at="2026-03-01T07:00:00+09:00"))
    assert_finding(decide_one(order_event(labs=labs_)), ANC, category="contraindication",
                   severity="major", evidence={"value": 0.5})
