"""Daratumumab, the second monograph (issue 13, part 2), at the depth of the isatuximab rule
tables: written as data only (knowledge/data/drugs/daratumumab.toml), no drug name in code.

Oracle: the US labels as the monograph cites them. The example patient weighs 70 kg (16 mg/kg
is 1,120 mg) and is 165 cm tall. IV infusion windows per dose number: first 390-900 min, second
240-900 min, later 195-900 min, each at most 200 mL/h; each half of a split first dose 240-900
min. SC: 1,800 mg flat, no infusion. Patient sections: under 18 a warning; a per-kg dose's weight
30-250 kg and within 10 % of the previous dose's; contraception counselled for 3 months after the
last dose (ages 12-55); bilirubin above 1.5 x ULN a warning, ALT/AST above 3 x ULN and CrCl/eGFR
below 15 info; an isatuximab order not renewed for more than 42 days is stale.
"""
from __future__ import annotations

import pytest

from rxgate.contract import validate_order_event
from rxgate.history import ActiveOrder

from .conftest import (
    DROP, Pharmacy, assert_finding, at, assert_no, assert_none_in, decide_one, findings_in, lab,
    order_event, rule_ids,
)
from .dara import (
    CD38, DURATION_MISSING, FAST, FLAT, FLAT_LOW, MAB, PER_KG, PER_KG_LOW, PREMED, PREMED_FIRST,
    RATE, SLOW, SPLIT, TOO_SOON, VOLUME_MISSING, D, dara, sc,
)


def amount(decision):
    return [f for f in decision.findings if f.rule_id in (PER_KG, PER_KG_LOW, FLAT, FLAT_LOW)]


# --- IV amount: 16 mg/kg, both sides of +10 % and -10 % --------------------------------------

@pytest.mark.parametrize("value,unit", [(1120, "mg"), (1232, "mg"), (1008, "mg"), (1.12, "g"),
                                        (1_120_000, "mcg"), (16, "mg/kg"), (17.6, "mg/kg"),
                                        (14.4, "mg/kg")])
def test_iv_within_ten_percent_of_16_mg_per_kg(value, unit):
    d = decide_one(dara(dose=(value, unit)))
    assert amount(d) == [], [f.message for f in amount(d)]
    assert_none_in(d, "data")


@pytest.mark.parametrize("value,unit,mg_per_kg", [(1233, "mg", 17.614), (17.61, "mg/kg", 17.61),
                                                  (1.3, "g", 18.571), (2240, "mg", 32.0)])
def test_iv_more_than_ten_percent_above_is_major(value, unit, mg_per_kg):
    d = decide_one(dara(dose=(value, unit)))
    f = assert_finding(d, PER_KG, category="dose", severity="major",
                       evidence={"mg_per_kg": mg_per_kg, "labeled_mg_per_kg": 16, "limit_percent": 10},
                       message=["16 mg/kg", "70 kg" if unit != "mg/kg" else "mg/kg"])
    assert f.evidence["deviation_percent"] > 10


@pytest.mark.parametrize("value,unit,mg_per_kg", [(1007, "mg", 14.386), (14.39, "mg/kg", 14.39),
                                                  (700, "mg", 10.0)])
def test_iv_more_than_ten_percent_below_is_warning(value, unit, mg_per_kg):
    d = decide_one(dara(dose=(value, unit), regimen=("DRd", 1, 8)))  # not a split-able day
    assert_finding(d, PER_KG_LOW, category="dose", severity="warning",
                   evidence={"mg_per_kg": mg_per_kg, "labeled_mg_per_kg": 16})


def test_iv_without_weight_is_a_data_finding():
    d = decide_one(dara(dose=(1120, "mg"), patient={"weight_kg": DROP}))
    assert_finding(d, D + "data.weight_missing", category="data", severity="warning",
                   evidence={"labeled_mg_per_kg": 16}, message=["16 mg/kg"])


# --- SC amount: 1,800 mg flat, whatever the weight -------------------------------------------

@pytest.mark.parametrize("value,unit", [(1800, "mg"), (1980, "mg"), (1620, "mg"), (1.8, "g"),
                                        (1_800_000, "mcg")])
@pytest.mark.parametrize("weight", [40, 70, 150])
def test_sc_within_ten_percent_of_1800_mg_flat(value, unit, weight):
    d = decide_one(sc(dose=(value, unit), patient={"weight_kg": weight}))
    assert amount(d) == [], [f.message for f in amount(d)]


@pytest.mark.parametrize("value,unit,mg", [(1981, "mg", 1981), (1980.2, "mg", 1980.2), (2.0, "g", 2000),
                                           (3600, "mg", 3600)])
def test_sc_more_than_ten_percent_above_1800_is_major(value, unit, mg):
    d = decide_one(sc(dose=(value, unit)))
    f = assert_finding(d, FLAT, category="dose", severity="major",
                       evidence={"ordered_mg": mg, "labeled_mg": 1800, "limit_percent": 10},
                       message=["1800 mg"])
    assert f.evidence["deviation_percent"] > 10


@pytest.mark.parametrize("value,unit,mg", [(1619, "mg", 1619), (1.4, "g", 1400), (1400, "mg", 1400)])
def test_sc_more_than_ten_percent_below_1800_is_warning(value, unit, mg):
    d = decide_one(sc(dose=(value, unit)))
    assert_finding(d, FLAT_LOW, category="dose", severity="warning",
                   evidence={"ordered_mg": mg, "labeled_mg": 1800})


def test_sc_flat_dose_needs_no_weight_in_mg_but_does_in_mg_per_kg():
    d = decide_one(sc(patient={"weight_kg": DROP}))
    assert D + "data.weight_missing" not in rule_ids(d)
    assert amount(d) == []
    d = decide_one(sc(dose=(25.7, "mg/kg"), patient={"weight_kg": DROP}))
    assert_finding(d, D + "data.weight_missing", category="data", severity="warning",
                   evidence={"labeled_mg": 1800})


@pytest.mark.parametrize("value,flagged", [(25.7, False), (28.3, True), (23.1, True)])
def test_sc_ordered_per_kg_is_converted_to_mg(value, flagged):
    d = decide_one(sc(dose=(value, "mg/kg")))  # 70 kg: 1799, 1981, 1617 mg
    assert bool(amount(d)) == flagged
    if flagged:
        assert amount(d)[0].evidence["ordered_mg"] == pytest.approx(value * 70, abs=0.01)


def test_sc_ordered_per_m2_converts_through_the_body_surface_area():
    # 70 kg, 165 cm: Mosteller 1.7912 m2; 1005 mg/m2 is 1800.1 mg
    d = decide_one(sc(dose=(1005, "mg/m2")))
    assert amount(d) == []
    d = decide_one(sc(dose=(1200, "mg/m2")))
    f = assert_finding(d, FLAT, category="dose", severity="major", evidence={"bsa_m2": 1.79})
    assert f.evidence["ordered_mg"] == pytest.approx(1200 * 1.79118, abs=0.05)


@pytest.mark.parametrize("unit", ["mL", "units"])
def test_sc_in_a_unit_that_is_no_mass_is_a_data_finding(unit):
    d = decide_one(sc(dose=(15, unit)))
    assert_finding(d, D + "data.unit_unknown", category="data", severity="warning",
                   evidence={"ordered_unit": unit, "labeled_mg": 1800}, message=["1800 mg"])


# --- a first dose given split: 8 mg/kg on cycle 1 days 1 and 2 -------------------------------

@pytest.mark.parametrize("value", [8, 8.8, 7.2, 560])
def test_half_the_dose_on_cycle_1_day_1_is_the_first_part_of_a_split(value):
    unit = "mg" if value > 100 else "mg/kg"
    d = decide_one(dara(dose=(value, unit), volume_ml=500, duration_min=300))
    f = assert_finding(d, SPLIT, category="dose", severity="info",
                       evidence={"parts": 2, "split_days": [1, 2], "part_mg_per_kg": 8},
                       message=["day 2"])
    assert amount(d) == []
    assert f.reference.startswith("US label")


@pytest.mark.parametrize("value,rule,severity", [(7.1, PER_KG_LOW, "warning"), (8.9, PER_KG_LOW, "warning"),
                                                 (14.3, PER_KG_LOW, "warning"), (17.7, PER_KG, "major")])
def test_a_day_1_dose_that_is_neither_whole_nor_half_is_compared_with_the_whole(value, rule, severity):
    d = decide_one(dara(dose=(value, "mg/kg")))
    assert_finding(d, rule, category="dose", severity=severity, evidence={"labeled_mg_per_kg": 16})
    assert_no(d, SPLIT)


@pytest.mark.parametrize("value,rule", [(8, None), (8.8, None), (7.2, None), (8.81, PER_KG),
                                        (16, PER_KG), (7.19, PER_KG_LOW)])
def test_cycle_1_day_2_is_compared_with_one_half(pharmacy, value, rule):
    pharmacy.place(dara(dose=(8, "mg/kg"), scheduled_for=0, volume_ml=500, duration_min=300))
    d = pharmacy.place(dara(dose=(value, "mg/kg"), scheduled_for=1, regimen=("DRd", 1, 2),
                            volume_ml=500, duration_min=300))
    if rule is None:
        assert amount(d) == []
    else:
        f = assert_finding(d, rule, category="dose", severity="major" if rule == PER_KG else "warning",
                           evidence={"labeled_mg_per_kg": 8, "split_part": 2, "parts": 2,
                                     "labeled_whole": 16})
        assert "part 2 of 2" in f.message
    assert TOO_SOON not in rule_ids(d) and D + "interval.off_plan_day" not in rule_ids(d)


def test_the_sc_product_is_never_split():
    d = decide_one(sc(dose=(900, "mg")))
    assert_finding(d, FLAT_LOW, category="dose", severity="warning", evidence={"labeled_mg": 1800})
    assert_no(d, SPLIT)


def test_a_split_is_only_read_from_the_regimen():
    """Without a regimen placing it on cycle 1 day 1 or 2, a half dose is an under-dose."""
    d = decide_one(dara(dose=(8, "mg/kg"), regimen=DROP))
    assert_finding(d, PER_KG_LOW, category="dose", severity="warning")
    assert_no(d, SPLIT)


MIXED = D + "dose.split_and_whole_first_dose"


def day_1_then_day_2(pharmacy, first, second, *, second_first=False, cancel_first=False,
                     first_unit="mg/kg"):
    """Cycle 1 day 1 (`first` mg/kg) and day 2 (`second` mg/kg); the decision of the later placed."""
    one = dara(dose=(first, first_unit), scheduled_for=0, volume_ml=500, duration_min=300)
    two = dara(dose=(second, "mg/kg"), scheduled_for=1, regimen=("DRd", 1, 2), volume_ml=500,
               duration_min=300)
    events = [two, one] if second_first else [one, two]
    pharmacy.place(events[0])
    if cancel_first:
        pharmacy.cancel(events[0]["order"]["order_id"])
    return pharmacy.place(events[1]), events[0]


@pytest.mark.parametrize("first,flagged", [(16, True), (14.4, True), (17.6, True),  # whole (+-10 %)
                                           (14.39, False), (8, False), (8.8, False)])
def test_a_part_on_day_2_after_the_whole_first_dose_on_day_1_is_major(pharmacy, first, flagged):
    d, earlier = day_1_then_day_2(pharmacy, first, 8)
    if flagged:
        f = assert_finding(d, MIXED, category="dose", severity="major",
                           evidence={"other_order_id": earlier["order"]["order_id"], "other_day": 1,
                                     "other_mg_per_kg": first, "total_mg_per_kg": first + 8,
                                     "labeled_mg_per_kg": 16, "part_mg_per_kg": 8},
                           message=["part 2 of 2", "the whole first dose", "not both"])
        assert f.reference.startswith("US label")
    else:
        assert_no(d, MIXED)


def test_the_whole_first_dose_on_day_1_after_a_part_on_day_2_is_major(pharmacy):
    """Out of order: day 2's 8 mg/kg arrives first, then the whole 16 mg/kg for day 1."""
    d, earlier = day_1_then_day_2(pharmacy, 16, 8, second_first=True)
    assert_finding(d, MIXED, category="dose", severity="major",
                   evidence={"other_order_id": earlier["order"]["order_id"], "other_day": 2,
                             "total_mg_per_kg": 24},
                   message=["the whole first dose", "a part of a first dose given split"])
    assert amount(d) == []


def test_two_halves_and_a_cancelled_whole_dose_are_no_mix(pharmacy):
    d, _ = day_1_then_day_2(pharmacy, 8, 8)
    assert_no(d, MIXED)
    d, _ = day_1_then_day_2(Pharmacy(), 16, 8, cancel_first=True)
    assert_no(d, MIXED)


def test_the_earlier_dose_survives_a_json_history_and_an_old_history_compares_nothing():
    d, _ = day_1_then_day_2(Pharmacy(store="json"), 1120, 8, first_unit="mg")  # 1120 mg for 70 kg: 16 mg/kg
    assert_finding(d, MIXED, category="dose", severity="major", evidence={"other_mg_per_kg": 16})
    order = ActiveOrder.from_event(validate_order_event(dara()))
    assert order.to_dict()["dose"] == [16, "mg/kg"]
    assert ActiveOrder.from_dict(order.to_dict()) == order
    old = {k: v for k, v in order.to_dict().items() if k != "dose"}
    assert ActiveOrder.from_dict(old).dose_value is None
    for damaged in ([16], ["16", "mg"], [float("nan"), "mg"], [-1, "mg"], [True, "mg"], [16, ""]):
        assert ActiveOrder.from_dict({**old, "dose": damaged}).dose_value is None


# --- IV infusion: a window per dose number, and the maximum rate ------------------------------

WINDOWS = [  # (regimen day of cycle 1, split part, minimum minutes, label words)
    (1, False, 390, "first infusion"),
    (8, False, 240, "second infusion"),
    (15, False, 195, "subsequent infusions"),
]


@pytest.mark.parametrize("day,split,lo,words", WINDOWS)
def test_each_dose_number_has_its_own_shortest_infusion(day, split, lo, words):
    volume = 1000 if day == 1 else 500
    ok = decide_one(dara(regimen=("DRd", 1, day), volume_ml=volume, duration_min=lo))
    assert_no(ok, FAST)
    short = decide_one(dara(regimen=("DRd", 1, day), volume_ml=volume, duration_min=lo - 0.5))
    f = assert_finding(short, FAST, category="dose", severity="warning",
                       evidence={"min_minutes": lo, "max_minutes": 900, "duration_min": lo - 0.5,
                                 "dose_number": {1: 1, 8: 2, 15: 3}[day], "dose_number_from": "regimen"},
                       message=[words, f"at least {lo} min"])
    assert f.reference.startswith("US label")


@pytest.mark.parametrize("cycle,day", [(1, 22), (2, 1), (3, 15), (7, 1), (40, 1)])
def test_every_later_infusion_uses_the_subsequent_window(cycle, day):
    d = decide_one(dara(regimen=("DRd", cycle, day), volume_ml=500, duration_min=195))
    assert_no(d, FAST)
    d = decide_one(dara(regimen=("DRd", cycle, day), volume_ml=500, duration_min=194))
    assert_finding(d, FAST, category="dose", severity="warning", evidence={"min_minutes": 195})


def test_each_half_of_a_split_first_dose_has_the_500_ml_window(pharmacy):
    d = decide_one(dara(dose=(8, "mg/kg"), volume_ml=500, duration_min=240))
    assert_no(d, FAST)
    d = decide_one(dara(dose=(8, "mg/kg"), volume_ml=500, duration_min=239))
    assert_finding(d, FAST, category="dose", severity="warning",
                   evidence={"min_minutes": 240, "split_part": True, "labeled_volume_ml": 500},
                   message=["half of a split first dose"])
    # the whole first dose in one infusion keeps the long window
    d = decide_one(dara(dose=(16, "mg/kg"), volume_ml=1000, duration_min=239))
    assert_finding(d, FAST, category="dose", severity="warning", evidence={"min_minutes": 390})


@pytest.mark.parametrize("minutes,slow", [(900, False), (900.5, True), (1440, True)])
def test_an_infusion_longer_than_15_hours_is_info(minutes, slow):
    d = decide_one(dara(regimen=("DRd", 1, 15), volume_ml=500, duration_min=minutes))
    if slow:
        assert_finding(d, SLOW, category="dose", severity="info", evidence={"max_minutes": 900})
    else:
        assert_no(d, SLOW)


@pytest.mark.parametrize("volume,minutes,flagged", [
    (1000, 420, False),   # 142.9 mL/h
    (1000, 300, True),    # 200 mL/h: at the maximum, not above it -- but too fast for dose 1
    (1000, 299, True),
])
def test_first_infusion_rate_and_window(volume, minutes, flagged):
    d = decide_one(dara(volume_ml=volume, duration_min=minutes))
    assert (FAST in rule_ids(d)) == flagged
    if minutes >= 300:
        assert_no(d, RATE)


@pytest.mark.parametrize("volume,minutes,rate", [(1000, 300, None), (1000, 299.9, 200.03),
                                                 (800, 195, 246.15), (660, 198, None),
                                                 (661, 198, 200.3)])
def test_the_average_rate_above_200_ml_per_h_is_a_warning(volume, minutes, rate):
    d = decide_one(dara(regimen=("DRd", 2, 1), volume_ml=volume, duration_min=minutes))
    if rate is None:
        assert_no(d, RATE)
    else:
        f = assert_finding(d, RATE, category="dose", severity="warning",
                           evidence={"rate_ml_per_h": rate, "max_rate_ml_per_h": 200,
                                     "volume_ml": volume, "duration_min": minutes},
                           message=["200 mL/h"])
        assert f.evidence["rate_ml_per_h"] > 200


def test_no_volume_means_the_rate_cannot_be_checked():
    d = decide_one(dara(volume_ml=DROP))
    assert_finding(d, VOLUME_MISSING, category="data", severity="warning",
                   evidence={"max_rate_ml_per_h": 200})


def test_no_duration_is_a_data_finding_with_the_window_of_the_dose():
    d = decide_one(dara(regimen=("DRd", 1, 8), duration_min=DROP, volume_ml=500))
    assert_finding(d, DURATION_MISSING, category="data", severity="warning",
                   evidence={"min_minutes": 240, "max_minutes": 900, "dose_number": 2})


def test_the_sc_product_asks_for_no_infusion():
    d = decide_one(sc())
    for rule in (FAST, SLOW, RATE, VOLUME_MISSING, DURATION_MISSING):
        assert_no(d, rule)


def test_without_a_regimen_the_dose_number_is_counted(pharmacy):
    first = pharmacy.place(dara(regimen=DROP, scheduled_for=0, duration_min=389, volume_ml=1000))
    assert_finding(first, FAST, category="dose", severity="warning",
                   evidence={"dose_number": 1, "dose_number_from": "count", "min_minutes": 390})
    second = pharmacy.place(dara(regimen=DROP, scheduled_for=7, duration_min=239, volume_ml=500))
    assert_finding(second, FAST, category="dose", severity="warning",
                   evidence={"dose_number": 2, "dose_number_from": "count", "min_minutes": 240})
    third = pharmacy.place(dara(regimen=DROP, scheduled_for=14, duration_min=195, volume_ml=500))
    assert_no(third, FAST)


def test_a_counted_dose_number_counts_a_day_once(pharmacy):
    """Two orders on one earlier day count as one dose: the stricter (earlier) window."""
    pharmacy.place(dara(regimen=DROP, scheduled_for=0))
    pharmacy.place(dara(regimen=DROP, scheduled_for=0.1))
    d = pharmacy.place(dara(regimen=DROP, scheduled_for=7, duration_min=239, volume_ml=500))
    assert_finding(d, FAST, category="dose", severity="warning", evidence={"dose_number": 2})


# --- premedication before every dose -----------------------------------------------------------

def test_the_first_dose_gets_the_first_dose_reminder_only():
    d = decide_one(dara())
    f = assert_finding(d, PREMED_FIRST, category="dose", severity="info")
    for word in ("corticosteroid", "antipyretic", "antihistamine"):
        assert word in f.message
    assert_no(d, PREMED)


@pytest.mark.parametrize("cycle,day", [(1, 8), (2, 15), (7, 1), (30, 1)])
@pytest.mark.parametrize("route", ["IV", "SC"])
def test_every_later_dose_gets_the_premedication_reminder(cycle, day, route):
    event = (dara(regimen=("DRd", cycle, day), volume_ml=500, duration_min=240) if route == "IV"
             else sc(regimen=("DRd", cycle, day)))
    d = decide_one(event)
    f = assert_finding(d, PREMED, category="dose", severity="info",
                       evidence={"premedication": ["a corticosteroid", "an antipyretic", "an antihistamine"]},
                       message=["every daratumumab dose"])
    assert "DARZALEX 2.3" in f.reference
    assert_no(d, PREMED_FIRST)


def test_isatuximab_premedicates_every_dose_too_with_its_own_reference():
    d = decide_one(order_event(regimen=(1, 8)))
    f = assert_finding(d, "isatuximab.dose.premedication", category="dose", severity="info")
    assert "glucocorticoid" in f.message and "DARZALEX" not in f.reference


# --- combinations: duplicate anti-CD38 therapy in both directions -------------------------------

@pytest.mark.parametrize("med", ["isatuximab", "Sarclisa", "isatuximab-irfc", "Xacoyi"])
def test_isatuximab_with_daratumumab_is_duplicate_anti_cd38(med):
    d = decide_one(dara(meds=[med]))
    assert_finding(d, CD38, category="combination", severity="major",
                   evidence={"other_drug": "isatuximab", "drug_class": "anti_cd38"})
    assert_no(d, MAB)


@pytest.mark.parametrize("med", ["daratumumab", "Darzalex", "Darzalex Faspro",
                                 "daratumumab and hyaluronidase-fihj"])
def test_daratumumab_with_isatuximab_is_duplicate_anti_cd38(med):
    d = decide_one(order_event(meds=[med]))
    assert_finding(d, "isatuximab.combination.anti_cd38", category="combination", severity="major",
                   evidence={"other_drug": "daratumumab"})


def test_active_orders_of_each_other_are_duplicate_therapy_both_ways():
    p = Pharmacy()
    isa = p.place(order_event(order_id="ORD-ISA", scheduled_for=-3, meds=[]))
    assert "isatuximab.combination.anti_cd38" not in rule_ids(isa)
    d = p.place(dara(meds=[], order_id="ORD-DARA"))
    assert_finding(d, CD38, category="combination", severity="major",
                   evidence={"found_in": ["active order ORD-ISA"]})
    again = p.place(order_event(scheduled_for=4, meds=[]))
    assert_finding(again, "isatuximab.combination.anti_cd38", category="combination",
                   severity="major", evidence={"found_in": ["active order ORD-DARA"]})


@pytest.mark.parametrize("med,rule,severity", [
    ("elotuzumab", MAB, "warning"), ("lenalidomide", D + "combination.immunomodulator", "info"),
    ("bortezomib", D + "combination.proteasome_inhibitor", "info"),
    ("Kyprolis", D + "combination.proteasome_inhibitor", "info")])
def test_other_classes(med, rule, severity):
    d = decide_one(dara(meds=[med]))
    assert_finding(d, rule, category="combination", severity=severity)


def test_daratumumab_itself_is_no_combination():
    d = decide_one(dara(meds=["Darzalex", "daratumumab"]))
    assert_none_in(d, "combination")


# --- contraindications ---------------------------------------------------------------------------

def test_pregnancy_is_major():
    d = decide_one(dara(patient={"pregnant": True, "birth_date": "1990-01-01"}))
    assert_finding(d, D + "contraindication.pregnancy", category="contraindication", severity="major")


def test_lactation_is_warning():
    d = decide_one(dara(patient={"lactating": True}))
    assert_finding(d, D + "contraindication.lactation", category="contraindication", severity="warning")


@pytest.mark.parametrize("allergy", ["daratumumab", "Darzalex", "darzalex faspro"])
def test_an_allergy_to_any_of_its_names_is_contraindicated(allergy):
    d = decide_one(dara(patient={"allergies": [allergy]}))
    assert_finding(d, D + "contraindication.allergy", category="contraindication",
                   severity="contraindicated")


@pytest.mark.parametrize("code,value,flagged", [("ANC", 1.0, False), ("ANC", 0.99, True),
                                                ("PLT", 50, False), ("PLT", 49, True)])
def test_blood_count_limits(code, value, flagged):
    labs = [lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9)]
    labs = [lab(code, value) if x["code"] == code else x for x in labs]
    d = decide_one(dara(labs=labs))
    rule = D + f"contraindication.{code.lower()}_low"
    assert (rule in rule_ids(d)) == flagged, rule_ids(d)


@pytest.mark.parametrize("condition,flagged", [("multiple myeloma", False), ("AL amyloidosis", False),
                                               ("smoldering myeloma", True), ("MGUS", True)])
def test_indication(condition, flagged):
    d = decide_one(dara(patient={"conditions": [condition]}))
    assert (D + "contraindication.no_indication" in rule_ids(d)) == flagged, rule_ids(d)


@pytest.mark.parametrize("condition", ["hepatitis B reactivation", "pneumonia"])
def test_infection_is_warning(condition):
    d = decide_one(dara(patient={"conditions": ["multiple myeloma", condition]}))
    assert_finding(d, D + "contraindication.active_infection", category="contraindication", severity="warning")


def test_every_finding_cites_its_source():
    d = decide_one(dara(dose=(30, "mg/kg"), volume_ml=1000, duration_min=100, meds=["isatuximab"],
                        patient={"lactating": True}))
    assert len(d.findings) >= 5
    for f in d.findings:
        assert f.rule_id.startswith("daratumumab.")
        assert f.reference.startswith("US label"), f


# --- the patient sections: age, weight, contraception, lactation, reaction history, liver and
# renal limits, inactive infections, stale orders (isatuximab's severities and general-practice
# numbers where the label gives none; each reference says where it comes from) ---------------

AGE, AGE_UNKNOWN = D + "contraindication.age_below_minimum", D + "data.age_unknown"
IMPLAUSIBLE, CHANGE = D + "dose.weight_implausible", D + "dose.weight_change"
CONTRACEPTION, LACTATION_UNKNOWN = D + "contraindication.contraception", D + "data.lactation_unknown"
REACTION = D + "contraindication.prior_severe_infusion_reaction"
INFECTION, STALE = D + "contraindication.active_infection", D + "combination.stale_order"


@pytest.mark.parametrize("birth_date,age,flagged", [
    ("2008-03-03", 17, True),   # 18 the day after the dose (2026-03-02)
    ("2008-03-02", 18, False),  # 18th birthday on the scheduled day
    ("1955-04-12", 70, False),
])
def test_age_below_18_is_a_warning(birth_date, age, flagged):
    d = decide_one(dara(patient={"birth_date": birth_date}))
    if flagged:
        f = assert_finding(d, AGE, category="contraindication", severity="warning",
                           evidence={"age_years": age, "min_age_years": 18},
                           message=["18 years", "not been established"])
        assert "DARZALEX 8.4" in f.reference
        assert "contraindicated" not in f.message
    else:
        assert_no(d, AGE)
    assert_no(d, AGE_UNKNOWN)


def test_no_birth_date_is_a_data_finding():
    d = decide_one(dara(patient={"birth_date": DROP}))
    assert_finding(d, AGE_UNKNOWN, category="data", severity="warning", evidence={"min_age_years": 18})


@pytest.mark.parametrize("weight,flagged", [(29.9, True), (30, False), (250, False), (250.1, True),
                                            (700, True)])
def test_the_weight_of_a_per_kg_dose_must_be_plausible(weight, flagged):
    d = decide_one(dara(patient={"weight_kg": weight}))  # 16 mg/kg: consistent with any weight
    if flagged:
        f = assert_finding(d, IMPLAUSIBLE, category="dose", severity="warning",
                           evidence={"weight_kg": weight, "weight_min_kg": 30, "weight_max_kg": 250})
        assert f.reference.startswith("US label") and "general practice" in f.reference
    else:
        assert_no(d, IMPLAUSIBLE)


@pytest.mark.parametrize("weight", [20, 700])
def test_a_flat_sc_dose_computes_nothing_on_the_weight(weight):
    d = decide_one(sc(patient={"weight_kg": weight}))
    assert_no(d, IMPLAUSIBLE)
    assert amount(d) == []


@pytest.mark.parametrize("before,after,change,flagged", [
    (70, 77, 10, False), (70, 77.01, 10.01, True), (70, 63, -10, False), (70, 62.99, -10.01, True),
    (70, 154, 120, True),
])
def test_a_weight_change_of_more_than_10_percent_since_the_previous_dose(pharmacy, before, after,
                                                                         change, flagged):
    first = dara(scheduled_for=0, patient={"weight_kg": before})
    pharmacy.place(first)
    d = pharmacy.place(dara(scheduled_for=7, regimen=("DRd", 1, 8), volume_ml=500, duration_min=240,
                            patient={"weight_kg": after}))
    if flagged:
        f = assert_finding(d, CHANGE, category="dose", severity="warning",
                           evidence={"weight_kg": after, "previous_weight_kg": before,
                                     "change_percent": change, "limit_percent": 10,
                                     "previous_order_id": first["order"]["order_id"]})
        assert "general oncology practice" in f.reference
    else:
        assert_no(d, CHANGE)


@pytest.mark.parametrize("birth_date,sex,age,counselled", [
    ("1995-06-01", "female", 30, True),
    ("2014-03-02", "female", 12, True),   # the childbearing ages of [pregnancy]: 12-55 inclusive
    ("2014-03-03", "female", 11, False),
    ("1970-03-03", "female", 55, True),
    ("1970-03-02", "female", 56, False),
    ("1995-06-01", None, 30, True),       # sex unknown: may become pregnant
    ("1995-06-01", "male", 30, False),
    ("1955-04-12", "female", 70, False),
])
def test_contraception_is_counselled_for_3_months_after_the_last_dose(birth_date, sex, age, counselled):
    d = decide_one(dara(patient={"birth_date": birth_date, "sex": sex if sex else DROP}))
    if counselled:
        f = assert_finding(d, CONTRACEPTION, category="contraindication", severity="info",
                           evidence={"months_after_last_dose": 3, "childbearing_age_from": 12,
                                     "childbearing_age_to": 55, "age_years": age},
                           message=["3 months after the last dose"])
        assert "DARZALEX 8.3" in f.reference
        if age >= 18:
            assert d.outcome == "approved"
    else:
        assert_no(d, CONTRACEPTION)


def test_a_pregnant_patient_gets_the_pregnancy_finding_not_the_counselling():
    d = decide_one(dara(patient={"birth_date": "1995-06-01", "pregnant": True}))
    assert_no(d, CONTRACEPTION)
    assert_finding(d, D + "contraindication.pregnancy", category="contraindication", severity="major")


@pytest.mark.parametrize("birth_date,age,asked", [("2014-03-02", 12, True), ("2014-03-03", 11, False),
                                                  ("1970-03-03", 55, True), ("1970-03-02", 56, False),
                                                  ("1995-06-01", 30, True)])
def test_lactation_status_must_be_known_in_the_childbearing_ages(birth_date, age, asked):
    d = decide_one(dara(patient={"birth_date": birth_date, "lactating": DROP}))
    if asked:
        assert_finding(d, LACTATION_UNKNOWN, category="data", severity="warning",
                       evidence={"age_years": age, "childbearing_age_from": 12, "childbearing_age_to": 55})
    else:
        assert_no(d, LACTATION_UNKNOWN)
    male = decide_one(dara(patient={"birth_date": birth_date, "lactating": DROP, "sex": "male"}))
    assert_no(male, LACTATION_UNKNOWN)


@pytest.mark.parametrize("condition,fires", [
    ("severe infusion reaction to Darzalex", True),
    ("life-threatening infusion reaction to daratumumab", True),
    ("grade 4 administration-related reaction to Darzalex Faspro", True),
    ("anaphylaxis to daratumumab and hyaluronidase-fihj", True),
    ("grade 1 infusion reaction to daratumumab", False),
    ("infusion reaction to Darzalex", False),
    ("severe infusion reaction to rituximab", False),
    ("severe infusion reaction to isatuximab", False),  # another drug's monograph says so
])
def test_prior_severe_infusion_reaction_is_major(condition, fires):
    d = decide_one(dara(patient={"conditions": ["multiple myeloma", condition]}))
    if fires:
        f = assert_finding(d, REACTION, category="contraindication", severity="major",
                           evidence={"found_in": "conditions", "entry": condition},
                           message=["is not recommended"])
        assert "contraindicated" not in f.message
        assert "DARZALEX 5.1" in f.reference
    else:
        assert_no(d, REACTION)


def test_a_reaction_among_the_allergies_is_the_allergy_rule_s():
    d = decide_one(dara(patient={"allergies": ["daratumumab: grade 4 infusion reaction"]}))
    assert_finding(d, D + "contraindication.allergy", category="contraindication",
                   severity="contraindicated")
    assert_no(d, REACTION)


LIMITS = [  # (lab, value, unit, rule, severity or None)
    ("TBILI", 1.8, "mg/dL", "tbili_high", None),        # 1.5 x ULN 1.2 mg/dL
    ("TBILI", 1.81, "mg/dL", "tbili_high", "warning"),
    ("TBILI", 30.77, "umol/L", "tbili_high", None),     # 1.7994 mg/dL
    ("TBILI", 30.8, "umol/L", "tbili_high", "warning"),  # 1.8012 mg/dL
    ("TBILI", 100, "umol/L", "tbili_high", "warning"),
    ("ALT", 120, "U/L", "alt_high", None),              # 3 x ULN 40 U/L
    ("ALT", 121, "U/L", "alt_high", "info"),
    ("AST", 120, "U/L", "ast_high", None),
    ("AST", 121, "U/L", "ast_high", "info"),
    ("CRCL", 15, "mL/min", "crcl_low", None),
    ("CRCL", 14.9, "mL/min", "crcl_low", "info"),
    ("EGFR", 15, "mL/min/1.73m2", "egfr_low", None),
    ("EGFR", 14.9, "mL/min/1.73m2", "egfr_low", "info"),
]


def panel(*extra: dict, tbili: bool = True) -> list[dict]:
    """The blood counts, a normal bilirubin (unless left out or given in `extra`), and `extra`."""
    codes = {x["code"] for x in extra}
    base = [lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9)]
    if tbili and "TBILI" not in codes:
        base.append(lab("TBILI", 0.6, "mg/dL"))
    return base + list(extra)


@pytest.mark.parametrize("code,value,unit,rule,severity", LIMITS)
def test_liver_and_renal_limits(code, value, unit, rule, severity):
    d = decide_one(dara(labs=panel(lab(code, value, unit))))
    if severity is None:
        assert_no(d, D + "contraindication." + rule)
    else:
        f = assert_finding(d, D + "contraindication." + rule, category="contraindication",
                           severity=severity, evidence={"lab": code})
        assert "DARZALEX 12.3" in f.reference
        assert "contraindicated" not in f.message
        assert d.outcome == ("flagged" if severity == "warning" else "approved")
    assert_none_in(d, "data")


def test_alt_ast_and_renal_results_are_not_required():
    """Their limits are info: a rule that could not flag the order asks for no absent fact."""
    d = decide_one(dara(labs=panel()))
    assert_none_in(d, "data")
    assert d.outcome == "approved"


def test_a_bilirubin_is_required():
    d = decide_one(dara(labs=panel(tbili=False)))
    f = assert_finding(d, D + "data.tbili_missing", category="data", severity="warning",
                       evidence={"lab": "TBILI", "max_age_days": 28})
    assert "project choice" in f.reference


@pytest.mark.parametrize("taken,stale", [(at(-28), False), (at(-28, minutes=-1), True)])
def test_a_bilirubin_at_most_28_days_old(taken, stale):
    d = decide_one(dara(labs=panel(lab("TBILI", 0.6, "mg/dL", taken_at=taken))))
    if stale:
        assert_finding(d, D + "data.tbili_stale", category="data", severity="warning",
                       evidence={"max_age_days": 28})
    else:
        assert_none_in(d, "data")


@pytest.mark.parametrize("condition,active", [
    ("pneumonia", True), ("history of pneumonia", False), ("resolved sepsis", False),
    ("sepsis, resolved", False), ("HBV prophylaxis (entecavir)", False),
    ("pneumocystis pneumonia prophylaxis", False), ("pneumonia, not resolved", True),
    ("hepatitis B", True),
])
def test_an_infection_that_is_not_active_is_excluded(condition, active):
    d = decide_one(dara(patient={"conditions": ["multiple myeloma", condition]}))
    if active:
        assert_finding(d, INFECTION, category="contraindication", severity="warning",
                       evidence={"condition": condition})
    else:
        assert_no(d, INFECTION)


@pytest.mark.parametrize("days_before,stale", [(3, False), (42, False), (42 + 1 / 1440, True),
                                               (365, True)])
def test_an_isatuximab_order_not_renewed_for_more_than_42_days_is_stale(pharmacy, days_before, stale):
    isa = order_event(scheduled_for=-days_before, regimen=DROP, frequency=DROP)
    pharmacy.place(isa)
    d = pharmacy.place(dara())
    if stale:
        f = assert_finding(d, STALE, category="combination", severity="info",
                           evidence={"other_drug": "isatuximab", "stale_after_days": 42,
                                     "found_in": [f"active order {isa['order']['order_id']}"]},
                           message=["isatuximab", "not renewed", "stale"])
        assert f.evidence["age_days"] > 42 and "general practice" in f.reference
        assert_no(d, CD38)
        assert d.outcome == "approved"
    else:
        assert_finding(d, CD38, category="combination", severity="major")
        assert_no(d, STALE)
