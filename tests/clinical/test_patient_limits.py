"""Patient limits (issue 13, part 1): age, weight plausibility, weight change since the
previous dose of the drug.

The isatuximab monograph's [patient] section: a patient under 18 on the scheduled day is
outside the labeled population (US label: safety and effectiveness in pediatric patients not
established) -> `warning`; no birth date -> `data`; a weight outside 30-250 kg -> `warning`;
a weight more than 10 % above or below the weight given with the patient's previous dose of
the drug (70 -> 154 kg: pounds entered as kilograms) -> `warning`. A first dose, or a previous
dose whose order gave no weight (a history stored before weights were kept), compares nothing.
"""
from __future__ import annotations

import datetime as dt

import pytest

from .conftest import (
    DROP, T0, Pharmacy, assert_finding, assert_no, decide_one, order_event, rule_ids,
)

AGE = "isatuximab.contraindication.age_below_minimum"
AGE_UNKNOWN = "isatuximab.data.age_unknown"
IMPLAUSIBLE = "isatuximab.dose.weight_implausible"
CHANGE = "isatuximab.dose.weight_change"

# T0 (the example's dose) is 2026-03-02: born 2008-03-02 is 18 that day, a day later 17.


@pytest.mark.parametrize("birth_date,age,flagged", [
    ("2008-03-03", 17, True),   # turns 18 the day after the dose
    ("2008-03-02", 18, False),  # 18th birthday on the scheduled day
    ("2008-03-01", 18, False),
    ("2012-06-30", 13, True),
    ("1955-04-12", 70, False),  # the example
])
def test_age_boundary(birth_date, age, flagged):
    d = decide_one(order_event(patient={"birth_date": birth_date, "pregnant": False,
                                        "lactating": False}))
    if flagged:
        f = assert_finding(d, AGE, category="contraindication", severity="warning",
                           evidence={"age_years": age, "min_age_years": 18},
                           message=[f"is {age}", "18 years", "not been established"])
        assert "contraindicated" not in f.message
        assert "US label" in f.reference
    else:
        assert_no(d, AGE)
    assert_no(d, AGE_UNKNOWN)


def test_no_birth_date_is_a_data_finding():
    d = decide_one(order_event(patient={"birth_date": DROP}))
    assert_finding(d, AGE_UNKNOWN, category="data", severity="warning",
                   evidence={"min_age_years": 18}, message=["No birth date", "18"])
    assert_no(d, AGE)


# --- weight plausibility -----------------------------------------------------------------

@pytest.mark.parametrize("weight,flagged", [
    (29.9, True), (30, False), (30.1, False), (70, False), (249.9, False), (250, False),
    (250.1, True), (0.7, True), (700, True),
])
def test_weight_plausibility_boundary(weight, flagged):
    d = decide_one(order_event(dose=(10, "mg/kg"), patient={"weight_kg": weight}))
    if flagged:
        assert_finding(d, IMPLAUSIBLE, category="dose", severity="warning",
                       evidence={"weight_kg": weight, "weight_min_kg": 30, "weight_max_kg": 250},
                       message=[f"{weight:g} kg", "30-250 kg", "confirm the weight"])
    else:
        assert_no(d, IMPLAUSIBLE)


def test_no_weight_is_only_the_dose_data_finding():
    d = decide_one(order_event(patient={"weight_kg": DROP}))
    assert "isatuximab.data.weight_missing" in rule_ids(d)
    assert_no(d, IMPLAUSIBLE)
    assert_no(d, CHANGE)


# --- weight change since the previous dose --------------------------------------------------

def two_doses(first_weight, second_weight, *, gap_days=7, store="dict"):
    pharmacy = Pharmacy(store)
    first = order_event(scheduled_for=0, regimen=(1, 1), dose=(10, "mg/kg"),
                        patient={"weight_kg": first_weight} if first_weight is not None
                        else {"weight_kg": DROP})
    second = order_event(scheduled_for=gap_days, regimen=(1, 8), dose=(10, "mg/kg"),
                         patient={"weight_kg": second_weight})
    d1 = pharmacy.place(first)
    return d1, pharmacy.place(second), first


@pytest.mark.parametrize("before,after,change,flagged", [
    (70, 77, 10, False),        # exactly 10 % above: not more than 10 %
    (70, 77.01, 10.01, True),
    (70, 63, -10, False),       # exactly 10 % below
    (70, 62.99, -10.01, True),
    (70, 70, 0, False),
    (70, 154, 120, True),       # pounds for kilograms
    (154, 70, -54.55, True),    # and back
    (80, 87.9, 9.88, False),
])
def test_weight_change_boundary(before, after, change, flagged):
    d1, d2, first = two_doses(before, after)
    assert_no(d1, CHANGE)  # a first dose compares nothing
    if flagged:
        f = assert_finding(d2, CHANGE, category="dose", severity="warning",
                           evidence={"weight_kg": after, "previous_weight_kg": before,
                                     "change_percent": change, "limit_percent": 10,
                                     "previous_order_id": first["order"]["order_id"]},
                           message=[f"{after:g} kg", f"{before:g} kg", "above" if change > 0
                                    else "below", "kg, not lb"])
        assert "general oncology practice" in f.reference
    else:
        assert_no(d2, CHANGE)


def test_weight_change_is_kept_through_a_json_history():
    _, d2, _ = two_doses(70, 154, store="json")
    assert_finding(d2, CHANGE, category="dose", severity="warning",
                   evidence={"previous_weight_kg": 70, "weight_kg": 154})


def test_a_previous_dose_without_a_weight_compares_nothing():
    _, d2, _ = two_doses(None, 154)
    assert_no(d2, CHANGE)


def test_an_order_without_a_weight_between_two_does_not_hide_a_jump():
    """70 kg, then a dose whose order gave no weight, then 154 kg: compared with the 70 kg."""
    pharmacy = Pharmacy()
    first = order_event(scheduled_for=0, regimen=(1, 1), patient={"weight_kg": 70})
    pharmacy.place(first)
    pharmacy.place(order_event(scheduled_for=7, regimen=(1, 8), dose=(700, "mg"),
                               patient={"weight_kg": DROP}))
    d = pharmacy.place(order_event(scheduled_for=14, regimen=(1, 15), patient={"weight_kg": 154}))
    assert_finding(d, CHANGE, category="dose", severity="warning",
                   evidence={"previous_weight_kg": 70, "weight_kg": 154,
                             "previous_order_id": first["order"]["order_id"]})


def test_the_previous_dose_is_the_latest_earlier_one_not_a_later_one():
    pharmacy = Pharmacy()
    pharmacy.place(order_event(scheduled_for=0, regimen=(1, 1), patient={"weight_kg": 70}))
    pharmacy.place(order_event(scheduled_for=14, regimen=(1, 15), patient={"weight_kg": 100}))
    # placed late, scheduled between the two: compared with day 0 (70 kg), not day 14
    d = pharmacy.place(order_event(scheduled_for=7, regimen=(1, 8), patient={"weight_kg": 72}))
    assert_no(d, CHANGE)
    d = pharmacy.place(order_event(scheduled_for=21, regimen=(1, 22), patient={"weight_kg": 72}))
    assert_finding(d, CHANGE, category="dose", severity="warning",
                   evidence={"previous_weight_kg": 100, "weight_kg": 72, "change_percent": -28})


def test_a_cancelled_previous_dose_is_not_compared():
    pharmacy = Pharmacy()
    first = order_event(scheduled_for=0, regimen=(1, 1), patient={"weight_kg": 70})
    pharmacy.place(first)
    pharmacy.cancel(first["order"]["order_id"])
    d = pharmacy.place(order_event(scheduled_for=7, regimen=(1, 8), patient={"weight_kg": 154}))
    assert_no(d, CHANGE)


def test_the_previous_dose_may_be_a_folded_one():
    """After many doses the older ones are folded; the newest folded one keeps its weight."""
    pharmacy = Pharmacy(store="json")
    day = 0
    for i in range(1, 30):
        pharmacy.place(order_event(scheduled_for=day, regimen=DROP, frequency=DROP,
                                   patient={"weight_kg": 70}))
        day += 7 if i < 4 else 14
    history = pharmacy.processor.store.get("P-001")
    assert history.folded, "the course should be long enough to fold"
    # a dose placed late, scheduled right after the newest folded one and before every kept one
    folded_last = next(iter(history.folded.values())).last
    assert folded_last.weight_kg == 70
    kept = sorted(o.scheduled_for for o in history.active_orders.values())
    assert folded_last.scheduled_for < kept[0]
    between = (folded_last.scheduled_for - T0).total_seconds() / 86400 + 1
    assert folded_last.scheduled_for + dt.timedelta(days=1) < kept[0]
    d = pharmacy.place(order_event(scheduled_for=between, regimen=DROP, frequency=DROP,
                                   patient={"weight_kg": 154}))
    assert_finding(d, CHANGE, category="dose", severity="warning",
                   evidence={"previous_weight_kg": 70, "weight_kg": 154,
                             "previous_order_id": folded_last.order_id})


@pytest.mark.parametrize("weight,flagged", [(70, False), (154, True)])
def test_only_the_previous_dose_is_compared_whatever_the_later_ones_gave(weight, flagged):
    """70 kg on day 0, 154 kg on day 14, then a dose placed for day 7: compared with the
    70 kg of day 0 (the previous dose), not with the later 154 kg, which differs from it."""
    pharmacy = Pharmacy()
    first = order_event(scheduled_for=0, regimen=(1, 1), patient={"weight_kg": 70})
    pharmacy.place(first)
    pharmacy.place(order_event(scheduled_for=14, regimen=(1, 15), patient={"weight_kg": 154}))
    d = pharmacy.place(order_event(scheduled_for=7, regimen=(1, 8), patient={"weight_kg": weight}))
    if flagged:
        assert_finding(d, CHANGE, category="dose", severity="warning",
                       evidence={"previous_weight_kg": 70, "weight_kg": weight,
                                 "previous_order_id": first["order"]["order_id"]})
    else:
        assert_no(d, CHANGE)
