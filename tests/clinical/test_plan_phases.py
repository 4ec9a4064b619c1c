"""Regimens and phases (issue 13, part 1): the cycle length belongs to the regimen (28- and
21-day regimens of one drug), phases span any number of cycles and may have their own cycle
length, and the order's regimen.name selects the regimen.

Oracle: the daratumumab monograph, citing the US label (DARZALEX 2.2):
  DRd (default; also DPd, DKd, monotherapy): 28-day cycles; weekly weeks 1-8 (cycles 1-2, days
      1/8/15/22), every 2 weeks weeks 9-24 (cycles 3-6, days 1/15), every 4 weeks from week 25
      (cycle 7 on, day 1);
  DVd: 21-day cycles; weekly weeks 1-9 (cycles 1-3, days 1/8/15), every 3 weeks weeks 10-24
      (cycles 4-8, day 1), every 4 weeks from week 25 (28-day cycles from cycle 9, day 1);
  D-VMP: 42-day cycles; weekly weeks 1-6 (cycle 1), every 3 weeks weeks 7-54 (cycles 2-9, days
      1/22), every 4 weeks from week 55 (28-day cycles from cycle 10).
Tolerance 1 day. A drug with several regimens and an order that names none (or one it does not
know) gets a `data` finding; the checks then use the default regimen (DRd) and say so.
"""
from __future__ import annotations

import pytest

from rxgate.plan import Plan

from .conftest import DROP, KNOWLEDGE, Pharmacy, assert_finding, assert_no, decide_one, order_event, rule_ids
from .dara import (
    FREQUENCY, OFF_PLAN, REGIMEN_UNKNOWN, REGIMEN_UNNAMED, TOO_CLOSE, TOO_SOON, dara, sc,
)

MONO = KNOWLEDGE.monographs["daratumumab"]


def plan_named(name: str) -> Plan:
    rules, status = MONO.regimen_for(name)
    assert status == "named"
    return Plan(rules, MONO.split_days)


# A plan walked the obvious way: phase by phase, cycle by cycle, each with its own length.
PHASES = {  # name -> [(first cycle, days, cycle length)]
    "DRd": [(1, [1, 8, 15, 22], 28), (3, [1, 15], 28), (7, [1], 28)],
    "DVd": [(1, [1, 8, 15], 21), (4, [1], 21), (9, [1], 28)],
    "D-VMP": [(1, [1, 8, 15, 22, 29, 36], 42), (2, [1, 22], 42), (10, [1], 28)],
}


def walk(name: str, cycles: int) -> list[tuple[int, int, int]]:
    """(cycle, day, days since cycle 1 day 1) of every dose of the first `cycles` cycles."""
    out, start = [], 0
    for cycle in range(1, cycles + 1):
        first, days, length = [p for p in PHASES[name] if p[0] <= cycle][-1]
        out += [(cycle, d, start + d - 1) for d in days]
        start += length
    return out


@pytest.mark.parametrize("name", list(PHASES))
def test_plan_arithmetic_matches_walking_the_phases(name):
    plan = plan_named(name)
    doses = walk(name, 30)
    for slot, (cycle, day, since) in enumerate(doses):
        assert plan.slot_of(cycle, day) == slot, (cycle, day)
        assert plan.day_number(slot) == since, (slot, cycle, day)
        if slot + 1 < len(doses):
            assert plan.gap_after(slot) == doses[slot + 1][2] - since
    for cycle in range(1, 30):
        length = [p for p in PHASES[name] if p[0] <= cycle][-1][2]
        assert plan.length_of(cycle) == length
        for day in range(1, length + 1):
            if (cycle, day) not in {(c, d) for c, d, _ in doses} and not (cycle, day) == (1, 2):
                assert plan.slot_of(cycle, day) is None, (cycle, day)


@pytest.mark.parametrize("name,weeks", [("DRd", [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15, 17, 19, 21, 23, 25, 29]),
                                        ("DVd", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 16, 19, 22, 25, 29]),
                                        ("D-VMP", [1, 2, 3, 4, 5, 6, 7, 10, 13, 16])])
def test_the_label_weeks(name, weeks):
    plan = plan_named(name)
    assert [plan.day_number(s) // 7 + 1 for s in range(len(weeks))] == weeks
    assert all(plan.day_number(s) % 7 == 0 for s in range(len(weeks)))


def test_the_d_vmp_every_4_weeks_phase_starts_at_week_55():
    plan = plan_named("D-VMP")
    slot = plan.slot_of(10, 1)
    assert plan.day_number(slot) == 54 * 7 and plan.gap_after(slot - 1) == 21 and plan.gap_after(slot) == 28


# --- the regimen the order names -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["DRd", "d-rd", "D RD", "Dara-Rd", "DPd", "DKd", "monotherapy",
                                  "DVd", "D-Vd", "dara-vd", "D-VMP", "dvmp"])
def test_a_known_regimen_name_selects_its_plan_without_a_data_finding(name):
    d = decide_one(dara(regimen=(name, 1, 1)))
    assert_no(d, REGIMEN_UNNAMED)
    assert_no(d, REGIMEN_UNKNOWN)
    assert_no(d, OFF_PLAN)


@pytest.mark.parametrize("regimen", [DROP, {"cycle": 1, "day": 1}, {"name": "", "cycle": 1, "day": 1},
                                     {"name": " - ", "cycle": 1, "day": 1}])
def test_no_regimen_name_is_a_data_finding_and_the_default_is_used(regimen):
    d = decide_one(dara(regimen=regimen))
    f = assert_finding(d, REGIMEN_UNNAMED, category="data", severity="warning",
                       evidence={"used_regimen": "DRd"}, message=["DRd", "DVd", "21-day", "28-day"])
    assert [r["cycle_length_days"] for r in f.evidence["regimens"]] == [28, 21, 42]
    assert d.outcome == "flagged"


@pytest.mark.parametrize("name", ["Isa-Pd", "DRd cycle 3", "VRd"])
def test_an_unknown_regimen_name_is_a_data_finding(name):
    d = decide_one(dara(regimen=(name, 1, 1)))
    assert_finding(d, REGIMEN_UNKNOWN, category="data", severity="warning",
                   evidence={"regimen_name": name, "used_regimen": "DRd"}, message=[repr(name)])


@pytest.mark.parametrize("regimen", [DROP, {"cycle": 1, "day": 1}, {"name": "DVd", "cycle": 1, "day": 1}])
def test_a_drug_with_one_regimen_needs_no_name(regimen):
    d = decide_one(order_event(regimen=regimen))
    assert not [r for r in rule_ids(d) if "regimen_" in r]


def test_the_sc_product_follows_the_same_regimens():
    d = decide_one(sc(regimen=("DVd", 4, 8)))
    assert_finding(d, OFF_PLAN, category="interval", severity="warning",
                   evidence={"cycle_length_days": 21, "plan_days": [1]})


# --- off-plan days per phase ----------------------------------------------------------------------

@pytest.mark.parametrize("name,cycle,day,on_plan,length", [
    ("DRd", 2, 22, True, 28), ("DRd", 3, 8, False, 28), ("DRd", 6, 15, True, 28),
    ("DRd", 7, 15, False, 28), ("DRd", 40, 1, True, 28),
    ("DVd", 3, 15, True, 21), ("DVd", 3, 22, False, 21), ("DVd", 4, 8, False, 21),
    ("DVd", 8, 1, True, 21), ("DVd", 9, 1, True, 28), ("DVd", 9, 22, False, 28),
    ("D-VMP", 1, 36, True, 42), ("D-VMP", 2, 8, False, 42), ("D-VMP", 9, 22, True, 42),
    ("D-VMP", 10, 22, False, 28),
])
def test_off_plan_days_follow_the_phase(name, cycle, day, on_plan, length):
    d = decide_one(dara(regimen=(name, cycle, day), volume_ml=500, duration_min=240))
    if on_plan:
        assert_no(d, OFF_PLAN)
    else:
        assert_finding(d, OFF_PLAN, category="interval", severity="warning",
                       evidence={"cycle": cycle, "day": day, "cycle_length_days": length},
                       message=[f"{length}-day cycles"])


# --- gaps per phase: each boundary on both sides ------------------------------------------------

GAPS = [  # regimen, (cycle, day) of the earlier dose, (cycle, day) of the next, required gap
    ("DRd", (1, 8), (1, 15), 7),
    ("DRd", (2, 22), (3, 1), 7),
    ("DRd", (3, 1), (3, 15), 14),
    ("DRd", (6, 15), (7, 1), 14),
    ("DRd", (7, 1), (8, 1), 28),
    ("DVd", (3, 15), (4, 1), 7),
    ("DVd", (4, 1), (5, 1), 21),
    ("DVd", (8, 1), (9, 1), 21),
    ("DVd", (9, 1), (10, 1), 28),
    ("D-VMP", (1, 36), (2, 1), 7),
    ("D-VMP", (2, 1), (2, 22), 21),
    ("D-VMP", (9, 22), (10, 1), 21),
    ("D-VMP", (10, 1), (11, 1), 28),
]


@pytest.mark.parametrize("name,earlier,later,required", GAPS, ids=[f"{g[0]}-c{g[1][0]}d{g[1][1]}" for g in GAPS])
def test_gap_within_tolerance_passes_and_just_below_is_major(name, earlier, later, required):
    p = Pharmacy()
    p.place(dara(regimen=(name, *earlier), scheduled_for=0, volume_ml=500, duration_min=240))
    ok = p.place(dara(regimen=(name, *later), scheduled_for=required - 1, volume_ml=500, duration_min=240))
    assert_no(ok, TOO_SOON)
    p = Pharmacy()
    p.place(dara(regimen=(name, *earlier), scheduled_for=0, volume_ml=500, duration_min=240))
    short = p.place(dara(regimen=(name, *later), scheduled_for=required - 1.01, volume_ml=500,
                         duration_min=240))
    assert_finding(short, TOO_SOON, category="interval", severity="major",
                   evidence={"required_gap_days": required, "tolerance_days": 1})


def test_the_regimen_decides_the_gap():
    """Cycle 4 day 1, then 14 days later: every 2 weeks under DRd; too soon (and off plan) under DVd."""
    for name, flagged in (("DRd", False), ("DVd", True)):
        p = Pharmacy()
        p.place(dara(regimen=(name, 4, 1), scheduled_for=0, volume_ml=500, duration_min=240))
        d = p.place(dara(regimen=(name, 4, 15), scheduled_for=14, volume_ml=500, duration_min=240))
        assert (TOO_SOON in rule_ids(d)) == flagged, (name, rule_ids(d))
        assert (OFF_PLAN in rule_ids(d)) == flagged


@pytest.mark.parametrize("name,cycle,every,flagged", [("DRd", 3, 14, False), ("DRd", 3, 13.9, True),
                                                     ("DVd", 4, 21, False), ("DVd", 4, 14, True),
                                                     ("DVd", 9, 27, True), ("DVd", 9, 28, False)])
def test_frequency_per_phase(name, cycle, every, flagged):
    d = decide_one(dara(regimen=(name, cycle, 1), frequency={"count": 1, "period": every, "period_unit": "d"},
                        volume_ml=500, duration_min=240))
    assert (FREQUENCY in rule_ids(d)) == flagged, rule_ids(d)


# --- the split first dose in the plan -------------------------------------------------------------

def test_the_halves_of_a_split_first_dose_are_one_dose_of_the_plan():
    p = Pharmacy()
    p.place(dara(dose=(8, "mg/kg"), scheduled_for=0, volume_ml=500, duration_min=300))
    day2 = p.place(dara(dose=(8, "mg/kg"), regimen=("DRd", 1, 2), scheduled_for=1, volume_ml=500,
                        duration_min=300))
    for rule in (TOO_SOON, OFF_PLAN):
        assert_no(day2, rule)
    # week 2 counts from day 1: 7 days after day 1 is 6 after day 2
    week2 = p.place(dara(regimen=("DRd", 1, 8), scheduled_for=7, volume_ml=500, duration_min=240))
    assert_no(week2, TOO_SOON)


@pytest.mark.parametrize("at,flagged", [(6, False), (5.99, True)])
def test_the_gap_after_a_split_counts_from_its_day_1(at, flagged):
    p = Pharmacy()
    p.place(dara(dose=(8, "mg/kg"), scheduled_for=0, volume_ml=500, duration_min=300))
    p.place(dara(dose=(8, "mg/kg"), regimen=("DRd", 1, 2), scheduled_for=1, volume_ml=500, duration_min=300))
    d = p.place(dara(regimen=("DRd", 1, 8), scheduled_for=at, volume_ml=500, duration_min=240))
    assert (TOO_SOON in rule_ids(d)) == flagged
    if flagged:
        f = assert_finding(d, TOO_SOON, category="interval", severity="major",
                           evidence={"required_gap_days": 7, "gap_days": at - 1})
        assert f.evidence["gap_from_split_dose_day_1_days"] == pytest.approx(at)


def test_a_day_2_part_arriving_first_is_checked_against_day_1_later():
    p = Pharmacy()
    p.place(dara(dose=(8, "mg/kg"), regimen=("DRd", 1, 2), scheduled_for=1, volume_ml=500, duration_min=300))
    d = p.place(dara(dose=(8, "mg/kg"), scheduled_for=0, volume_ml=500, duration_min=300))
    assert_no(d, TOO_CLOSE)


def test_a_product_without_a_split_on_cycle_1_day_2_is_off_plan_and_too_soon():
    p = Pharmacy()
    p.place(sc(scheduled_for=0))
    d = p.place(sc(regimen=("DRd", 1, 2), scheduled_for=1))
    assert_finding(d, OFF_PLAN, category="interval", severity="warning",
                   evidence={"cycle": 1, "day": 2, "split_days": [1, 2]}, message=["Darzalex Faspro"])
    assert_finding(d, TOO_SOON, category="interval", severity="major", evidence={"required_gap_days": 7})


def test_isatuximab_cycle_1_day_2_is_still_off_plan():
    d = decide_one(order_event(regimen=(1, 2)))
    assert_finding(d, "isatuximab.interval.off_plan_day", category="interval", severity="warning")


# --- a whole course, each regimen, through the history (folded, and as JSON) ----------------------

@pytest.mark.parametrize("store", ["dict", "json"])
@pytest.mark.parametrize("name,cycles", [("DRd", 24), ("DVd", 30), ("D-VMP", 20)])
def test_a_whole_course_on_plan_has_no_interval_finding(store, name, cycles):
    p = Pharmacy(store)
    doses = walk(name, cycles)
    for n, (cycle, day, since) in enumerate(doses):
        volume, minutes = (1000, 420) if n == 0 else (500, 240)
        d = p.place(dara(regimen=(name, cycle, day), scheduled_for=since, volume_ml=volume,
                         duration_min=minutes))
        bad = [f for f in d.findings if f.category in ("interval", "data") or f.severity != "info"]
        assert bad == [], (n, cycle, day, [(f.rule_id, f.message) for f in bad])
    assert len(doses) > 30
    assert p.processor.store.get("P-001").folded  # long enough that older doses were folded
