"""Dose rules (issue 3, section 2, `dose`).

"labeled 10 mg/kg IV. Convert any ordered unit that can be converted (mg, g, mcg, mg/kg; mg/m2
through the Mosteller body-surface area from weight and height) and compare in mg/kg; more than
10 % above is `major`, more than 10 % below is `warning`. Route other than IV is `major`. An
infusion shorter than 3 hours is `warning` (labeled 3-4 h). A first dose for the patient (no
earlier active dose, and `regimen`, if given, at cycle 1 day 1) gets an `info` finding ..."

The example patient weighs 70 kg and is 165 cm tall: the labeled dose is 700 mg.
"""
from __future__ import annotations

import math

import pytest

from .conftest import (
    DROP, assert_finding, assert_no, assert_none_in, decide_one, findings_in, order_event,
    rule_ids,
)

HIGH = "isatuximab.dose.per_kg"
LOW = "isatuximab.dose.per_kg_low"
ROUTE = "isatuximab.dose.route"
FAST = "isatuximab.dose.infusion_too_fast"
SLOW = "isatuximab.dose.infusion_too_slow"
PREMED = "isatuximab.dose.first_dose_premedication"
DOSE_AMOUNT_RULES = (HIGH, LOW)


def amount_findings(decision):
    return [f for f in decision.findings if f.rule_id in DOSE_AMOUNT_RULES]


# --- the amount: every convertible unit, both sides of +10 % and -10 % -----------------------

# (value, unit, expected mg/kg) for a 70 kg patient, all within [-10 %, +10 %] inclusive.
WITHIN = [
    (700, "mg", 10.0),
    (770, "mg", 11.0),        # exactly +10 %: not "more than"
    (630, "mg", 9.0),         # exactly -10 %
    (0.7, "g", 10.0),
    (0.77, "g", 11.0),
    (0.63, "g", 9.0),
    (700_000, "mcg", 10.0),
    (770_000, "mcg", 11.0),
    (630_000, "mcg", 9.0),
    (10, "mg/kg", 10.0),
    (11, "mg/kg", 11.0),
    (9, "mg/kg", 9.0),
    (10.5, "mg/kg", 10.5),
    (735, "mg", 10.5),
]


@pytest.mark.parametrize("value,unit,mg_per_kg", WITHIN, ids=[f"{v}{u}" for v, u, _ in WITHIN])
def test_dose_within_ten_percent_is_not_flagged(value, unit, mg_per_kg):
    d = decide_one(order_event(dose=(value, unit)))
    assert amount_findings(d) == [], [(f.rule_id, f.message) for f in amount_findings(d)]
    assert_none_in(d, "data")


# (value, unit, ordered mg, mg/kg, deviation %) just above +10 % -> major.
ABOVE = [
    (771, "mg", 771, 11.014, 10.1),
    (770.07, "mg", 770.07, 11.001, 10.0),   # +10.01 %: more than 10 % even if it rounds to 10.0
    (1400, "mg", 1400, 20.0, 100.0),
    (0.771, "g", 771, 11.014, 10.1),
    (1.4, "g", 1400, 20.0, 100.0),
    (771_000, "mcg", 771, 11.014, 10.1),
    (11.01, "mg/kg", 770.7, 11.01, 10.1),
    (12, "mg/kg", 840, 12.0, 20.0),
]


@pytest.mark.parametrize("value,unit,mg,mg_per_kg,dev", ABOVE, ids=[f"{v}{u}" for v, u, *_ in ABOVE])
def test_dose_more_than_ten_percent_above_is_major(value, unit, mg, mg_per_kg, dev):
    d = decide_one(order_event(dose=(value, unit)))
    f = assert_finding(d, HIGH, category="dose", severity="major",
                       evidence={"ordered_mg": float(mg), "mg_per_kg": mg_per_kg,
                                 "labeled_mg_per_kg": 10},
                       message=["10 mg/kg"])
    assert f.evidence["deviation_percent"] == pytest.approx(dev, abs=0.051)
    assert f.evidence["deviation_percent"] > 0
    assert LOW not in rule_ids(d)
    assert d.severity == "major" and d.outcome == "flagged"
    if unit != "mg/kg":
        assert f.evidence["weight_kg"] == 70
        assert "70 kg" in f.message
        assert f"{mg_per_kg:.1f} mg/kg" in f.message


def test_dose_message_matches_contract_example():
    """The contract's own example: 1400 mg for 70 kg is 20.0 mg/kg, labeled 10 mg/kg."""
    d = decide_one(order_event(dose=(1400, "mg")))
    f = assert_finding(d, HIGH, category="dose", severity="major",
                       evidence={"ordered_mg": 1400, "weight_kg": 70, "labeled_mg_per_kg": 10},
                       message=["1400 mg", "20.0 mg/kg", "70 kg", "10 mg/kg"])
    assert f.reference == "isatuximab instructions: usage and dosage"


# (value, unit, ordered mg, mg/kg, deviation %) just below -10 % -> warning.
BELOW = [
    (629, "mg", 629, 8.986, -10.1),
    (629.93, "mg", 629.93, 8.999, -10.0),  # -10.01 %
    (350, "mg", 350, 5.0, -50.0),
    (0.629, "g", 629, 8.986, -10.1),
    (629_000, "mcg", 629, 8.986, -10.1),
    (8.99, "mg/kg", 629.3, 8.99, -10.1),
    (5, "mg/kg", 350, 5.0, -50.0),
]


@pytest.mark.parametrize("value,unit,mg,mg_per_kg,dev", BELOW, ids=[f"{v}{u}" for v, u, *_ in BELOW])
def test_dose_more_than_ten_percent_below_is_warning(value, unit, mg, mg_per_kg, dev):
    d = decide_one(order_event(dose=(value, unit), meds=[]))
    f = assert_finding(d, LOW, category="dose", severity="warning",
                       evidence={"ordered_mg": float(mg), "mg_per_kg": mg_per_kg,
                                 "labeled_mg_per_kg": 10},
                       message=["10 mg/kg"])
    assert f.evidence["deviation_percent"] == pytest.approx(dev, abs=0.051)
    assert HIGH not in rule_ids(d)
    assert d.severity == "warning" and d.outcome == "flagged"


def test_flat_dose_is_compared_per_kg_of_this_patient():
    """700 mg is exactly labeled for 70 kg but 20 % above for a 58.33 kg patient."""
    assert amount_findings(decide_one(order_event(dose=(700, "mg")))) == []
    d = decide_one(order_event(dose=(700, "mg"), patient={"weight_kg": 50}))
    assert_finding(d, HIGH, category="dose", severity="major",
                   evidence={"ordered_mg": 700, "weight_kg": 50, "mg_per_kg": 14.0},
                   message=["700 mg", "14.0 mg/kg", "50 kg"])
    d = decide_one(order_event(dose=(700, "mg"), patient={"weight_kg": 100}))
    assert_finding(d, LOW, category="dose", severity="warning",
                   evidence={"ordered_mg": 700, "weight_kg": 100, "mg_per_kg": 7.0},
                   message=["7.0 mg/kg", "100 kg"])


# --- mg/m2 through Mosteller ---------------------------------------------------------------

def mosteller(h_cm: float, w_kg: float) -> float:
    return math.sqrt(h_cm * w_kg / 3600)


# 180 cm x 80 kg -> BSA exactly 2.0 m2; 400 mg/m2 = 800 mg = 10 mg/kg.
M2_CASES = [
    # value mg/m2, expected rule (None = no amount finding), ordered mg, mg/kg
    (400, None, 800, 10.0),
    (440, None, 880, 11.0),     # exactly +10 %
    (360, None, 720, 9.0),      # exactly -10 %
    (441, HIGH, 882, 11.025),
    (450, HIGH, 900, 11.25),
    (359, LOW, 718, 8.975),
    (350, LOW, 700, 8.75),
]


@pytest.mark.parametrize("value,rule,mg,mg_per_kg", M2_CASES, ids=[str(c[0]) for c in M2_CASES])
def test_mg_per_m2_converts_through_mosteller(value, rule, mg, mg_per_kg):
    d = decide_one(order_event(dose=(value, "mg/m2"), patient={"weight_kg": 80, "height_cm": 180}))
    if rule is None:
        assert amount_findings(d) == [], [f.message for f in amount_findings(d)]
        return
    f = assert_finding(d, rule, category="dose", severity="major" if rule == HIGH else "warning",
                       evidence={"bsa_m2": 2.0, "ordered_mg": float(mg), "mg_per_kg": mg_per_kg,
                                 "height_cm": 180, "weight_kg": 80, "labeled_mg_per_kg": 10})
    for part in (f"{value} mg/m2", "2.00 m2", "Mosteller", "180 cm", "80 kg", f"{mg_per_kg:.1f} mg/kg"):
        assert part in f.message, (part, f.message)


@pytest.mark.parametrize("factor,rule", [(1.0, None), (1.1, None), (0.9, None),
                                         (1.105, HIGH), (0.895, LOW)])
def test_mg_per_m2_with_an_irrational_bsa(factor, rule):
    """The example patient: 165 cm, 70 kg, BSA = sqrt(165*70/3600) = 1.7912 m2."""
    bsa = mosteller(165, 70)
    value = 10 * 70 / bsa * factor  # full precision: the boundary cases sit exactly on ±10 %
    d = decide_one(order_event(dose=(value, "mg/m2")))
    if rule is None:
        assert amount_findings(d) == []
        return
    f = the_rule = assert_finding(d, rule, category="dose",
                                  severity="major" if rule == HIGH else "warning",
                                  evidence={"bsa_m2": round(bsa, 3), "weight_kg": 70, "height_cm": 165})
    assert the_rule.evidence["ordered_mg"] == pytest.approx(value * bsa, abs=0.01)
    assert f.evidence["mg_per_kg"] == pytest.approx(10 * factor, abs=0.001)
    assert "1.79 m2" in f.message


# --- route ---------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["IV", "iv", "Iv", "intravenous", "Intravenous", "INTRAVENOUS", " IV "])
def test_iv_route_in_any_case_is_accepted(route):
    d = decide_one(order_event(route=route))
    assert_no(d, ROUTE)
    assert "isatuximab.data.route_unknown" not in rule_ids(d)


@pytest.mark.parametrize("route,canonical", [("SC", "SC"), ("sc", "SC"), ("subcutaneous", "SC"),
                                             ("PO", "PO"), ("oral", "PO"), ("IM", "IM"), ("IT", "IT")])
def test_non_iv_route_is_major(route, canonical):
    d = decide_one(order_event(route=route))
    assert_finding(d, ROUTE, category="dose", severity="major",
                   evidence={"ordered_route": canonical, "labeled_routes": ["IV"]},
                   message=[canonical, "IV"])
    assert d.outcome == "flagged" and d.severity == "major"


@pytest.mark.parametrize("route", ["XYZ", "intravenous push??", "drip"])
def test_unknown_route_is_a_data_finding(route):
    d = decide_one(order_event(route=route))
    assert_finding(d, "isatuximab.data.route_unknown", category="data", severity="warning",
                   evidence={"ordered_route": route}, message=[route])
    assert_no(d, ROUTE)
    assert d.outcome == "flagged"


# --- units that cannot be converted --------------------------------------------------------

@pytest.mark.parametrize("unit", ["units", "units/kg", "mL"])
def test_unconvertible_unit_is_a_data_finding(unit):
    d = decide_one(order_event(dose=(700, unit)))
    assert_finding(d, "isatuximab.data.unit_unknown", category="data", severity="warning",
                   evidence={"ordered_value": 700, "ordered_unit": unit}, message=[unit])
    assert amount_findings(d) == []
    assert d.outcome == "flagged"


# --- infusion duration ---------------------------------------------------------------------

@pytest.mark.parametrize("minutes", [180, 181, 210, 239, 240])
def test_infusion_within_three_to_four_hours_is_not_flagged(minutes):
    d = decide_one(order_event(duration_min=minutes))
    assert_no(d, FAST)
    assert_no(d, SLOW)
    assert "isatuximab.data.infusion_duration_missing" not in rule_ids(d)


@pytest.mark.parametrize("minutes", [179, 179.5, 120, 60])
def test_infusion_shorter_than_three_hours_is_warning(minutes):
    d = decide_one(order_event(duration_min=minutes, meds=[]))
    f = assert_finding(d, FAST, category="dose", severity="warning",
                       evidence={"duration_min": minutes, "min_minutes": 180})
    assert f"{minutes:g} min" in f.message and "180" in f.message
    assert d.severity == "warning"


def test_infusion_rate_is_in_the_evidence():
    d = decide_one(order_event(duration_min=120))  # 250 mL over 2 h
    assert_finding(d, FAST, category="dose", severity="warning",
                   evidence={"duration_min": 120, "volume_ml": 250, "rate_ml_per_h": 125})


def test_infusion_longer_than_four_hours_is_at_most_info():
    d = decide_one(order_event(duration_min=300, meds=[]))
    assert_no(d, FAST)
    assert all(f.severity == "info" for f in findings_in(d, "dose")), d.findings


@pytest.mark.parametrize("how", ["duration", "infusion"])
def test_missing_infusion_duration_for_iv_is_a_data_finding(how):
    kw = {"duration_min": DROP} if how == "duration" else {"infusion": DROP}
    d = decide_one(order_event(**kw))
    assert_finding(d, "isatuximab.data.infusion_duration_missing", category="data",
                   severity="warning", evidence={"min_minutes": 180, "max_minutes": 240})
    assert d.outcome == "flagged"


def test_missing_infusion_duration_is_not_asked_for_a_non_iv_route():
    d = decide_one(order_event(route="SC", infusion=DROP))
    assert "isatuximab.data.infusion_duration_missing" not in rule_ids(d)
    assert_no(d, FAST)


# --- first dose: premedication -------------------------------------------------------------

def test_first_dose_at_cycle_1_day_1_gets_premedication_info():
    d = decide_one(order_event(regimen=(1, 1), meds=[]))
    f = assert_finding(d, PREMED, category="dose", severity="info",
                       evidence={"earlier_active_doses": 0, "cycle": 1, "day": 1})
    for word in ("glucocorticoid", "antihistamine", "antipyretic", "infusion reaction"):
        assert word in f.message
    assert d.outcome == "approved" and d.severity == "info" and d.findings == [f]


def test_first_dose_without_regimen_gets_premedication_info():
    d = decide_one(order_event(regimen=DROP))
    assert_finding(d, PREMED, category="dose", severity="info", evidence={"earlier_active_doses": 0})


@pytest.mark.parametrize("cycle,day", [(1, 8), (1, 15), (2, 1), (3, 15)])
def test_first_streamed_dose_later_in_the_plan_gets_no_premedication(cycle, day):
    d = decide_one(order_event(regimen=(cycle, day)))
    assert_no(d, PREMED)


def test_no_premedication_when_an_earlier_active_dose_exists(pharmacy):
    first = pharmacy.place(order_event(scheduled_for=0, regimen=DROP))
    assert PREMED in rule_ids(first)
    second = pharmacy.place(order_event(scheduled_for=7, regimen=DROP))
    assert_no(second, PREMED)


def test_no_premedication_for_a_second_dose_even_if_labeled_c1d1(pharmacy):
    pharmacy.place(order_event(scheduled_for=0, regimen=(1, 1)))
    second = pharmacy.place(order_event(scheduled_for=7, regimen=(1, 1)))
    assert_no(second, PREMED)


def test_premedication_again_when_the_earlier_dose_was_cancelled(pharmacy):
    pharmacy.place(order_event(scheduled_for=0, order_id="ORD-A", regimen=DROP))
    pharmacy.cancel("ORD-A")
    d = pharmacy.place(order_event(scheduled_for=7, regimen=DROP))
    assert_finding(d, PREMED, category="dose", severity="info", evidence={"earlier_active_doses": 0})


def test_premedication_for_a_dose_earlier_than_every_active_one(pharmacy):
    """An out-of-order arrival scheduled before the only active dose is the first dose."""
    pharmacy.place(order_event(scheduled_for=7, regimen=DROP))
    d = pharmacy.place(order_event(scheduled_for=0, regimen=DROP))
    assert_finding(d, PREMED, category="dose", severity="info")


EVERY = "isatuximab.dose.premedication"


@pytest.mark.parametrize("cycle,day", [(1, 8), (1, 22), (2, 1), (3, 15), (40, 1)])
def test_every_later_dose_gets_the_every_dose_premedication_reminder(cycle, day):
    """Before every infusion, not only the first (issue 13): the instructions name the first
    dose and are silent on later ones; the US label premedicates before each infusion."""
    d = decide_one(order_event(regimen=(cycle, day), meds=[], frequency=DROP))
    f = assert_finding(d, EVERY, category="dose", severity="info",
                       evidence={"premedication": ["a glucocorticoid", "an antihistamine",
                                                   "an antipyretic/analgesic"]},
                       message=["every isatuximab dose"])
    assert f.reference.startswith("isatuximab instructions") and "US label (Sarclisa)" in f.reference
    assert_no(d, PREMED)
    assert d.outcome == "approved" and d.findings == [f]


def test_the_first_dose_gets_the_first_dose_reminder_only(pharmacy):
    first = pharmacy.place(order_event(scheduled_for=0, regimen=DROP))
    assert PREMED in rule_ids(first) and EVERY not in rule_ids(first)
    second = pharmacy.place(order_event(scheduled_for=7, regimen=DROP))
    assert EVERY in rule_ids(second) and PREMED not in rule_ids(second)


def test_other_drug_orders_do_not_count_as_an_earlier_dose(pharmacy):
    pharmacy.place(order_event(scheduled_for=-7, drug="dexamethasone", dose=(20, "mg"), route="PO"))
    d = pharmacy.place(order_event(scheduled_for=0, regimen=DROP))
    assert_finding(d, PREMED, category="dose", severity="info")
