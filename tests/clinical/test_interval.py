"""Interval rules (issue 3, section 2, `interval`), run through a real Processor so history builds.

"once a week for four weeks, then once every two weeks (28-day cycles: cycle 1 on days
1/8/15/22, later cycles on days 1/15 — so the gap after each of the patient's first four doses is
7 days, and 14 days after the fifth and every later dose). A dose scheduled more than a day short
of the gap that the dose before it requires, or short of the gap that it itself requires before
the next dose, is `major`; a second active order for the same calendar day is a duplicate,
`major`. When `regimen` is given, its cycle and day place the dose in the plan (it may start
before the stream did): a day outside the plan is `warning`. A `frequency` more often than the
phase allows is `major`. ... (a calendar day is the date as written in `scheduled_for`, in its own
offset); an event that arrives out of order is checked against the doses on both sides of it,
with the same one-day tolerance; an order is active from the moment it is placed, whatever its
decision, until it is cancelled."
"""
from __future__ import annotations

import pytest

from .conftest import (
    stated_minutes,
    DROP, Pharmacy, assert_finding, assert_no, assert_none_in, at, order_event, rule_ids,
    run_events,
)

PREV = "isatuximab.interval.too_soon_after_previous"
NEXT = "isatuximab.interval.too_close_to_next"
DUP = "isatuximab.interval.duplicate"
OFF = "isatuximab.interval.off_plan_day"
FREQ = "isatuximab.interval.frequency"

MIN = 1 / (24 * 60)  # one minute, in days


def dose(day: float | str, order_id: str | None = None, regimen=DROP, frequency=DROP, **kw) -> dict:
    """An isatuximab order scheduled `day` days after T0 (no regimen/frequency unless given)."""
    return order_event(scheduled_for=day, order_id=order_id, regimen=regimen,
                       frequency=frequency, **kw)


def interval_ids(decision) -> list[str]:
    return [f.rule_id for f in decision.findings if f.category == "interval"]


# --- the plan without a regimen: 7, 7, 7, 7, then 14 ---------------------------------------

def test_a_full_plan_on_time_has_no_interval_findings():
    # cycle 1: days 1/8/15/22; cycle 2: 1/15; cycle 3: 1/15 (day numbers since C1D1)
    days = [0, 7, 14, 21, 28, 42, 56, 70]
    decisions = run_events(dose(d) for d in days)
    for d in decisions:
        assert interval_ids(d) == [], (d.order_id, [f.message for f in d.findings])


@pytest.mark.parametrize("n_before,gap,required,flag", [
    # after dose 1..4 the next needs 7 days; exactly one day short (6 d) passes, more fails
    (1, 7, 7, False),
    (1, 6, 7, False),
    (1, 6 - MIN, 7, True),
    (1, 5, 7, True),
    (2, 6, 7, False),
    (2, 6 - MIN, 7, True),
    (3, 6 - MIN, 7, True),
    (4, 6, 7, False),          # dose 4 (C1D22) -> dose 5 (C2D1): 7 days
    (4, 6 - MIN, 7, True),
    # after dose 5 and later the next needs 14 days
    (5, 14, 14, False),
    (5, 13, 14, False),
    (5, 13 - MIN, 14, True),
    (5, 7, 14, True),
    (6, 13, 14, False),
    (6, 13 - MIN, 14, True),
    (7, 12, 14, True),
])
def test_gap_after_the_previous_dose(n_before, gap, required, flag):
    days = [0, 7, 14, 21, 28, 42, 56][:n_before]
    *earlier, last = run_events([dose(d, order_id=f"ORD-{i}") for i, d in enumerate(days, 1)]
                                + [dose(days[-1] + gap, order_id="ORD-NEW")])
    assert all(interval_ids(d) == [] for d in earlier)
    if not flag:
        assert interval_ids(last) == [], [f.message for f in last.findings]
        return
    f = assert_finding(last, PREV, category="interval", severity="major",
                       evidence={"gap_days": round(gap, 2), "required_gap_days": required,
                                 "tolerance_days": 1, "previous_order_id": f"ORD-{n_before}",
                                 "previous_dose_number": n_before})
    assert f.evidence["previous_scheduled_for"].startswith(at(days[-1])[:16])
    assert stated_minutes(f.message, "Scheduled") == round(gap * 24 * 60), f.message
    assert f"{required} days" in f.message
    assert last.outcome == "flagged" and last.severity == "major"


def test_a_long_break_is_not_an_interval_finding():
    decisions = run_events([dose(0), dose(7), dose(60), dose(200)])
    assert [interval_ids(d) for d in decisions] == [[], [], [], []]


# --- out-of-order arrival: checked against the next dose too -------------------------------

@pytest.mark.parametrize("new_day,flag_next,gap_next", [
    (7, False, 7),
    (8, False, 6),            # exactly one day short of the 7 it requires: tolerated
    (8 + MIN, True, 6 - MIN),
    (10, True, 4),
    (13, True, 1),
])
def test_out_of_order_dose_is_checked_against_the_next_dose(new_day, flag_next, gap_next):
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-1"))
    p.place(dose(14, order_id="ORD-3"))
    late = p.place(dose(new_day, order_id="ORD-2"))
    assert_no(late, PREV)      # at least 7 days after ORD-1
    if not flag_next:
        assert interval_ids(late) == [], [f.message for f in late.findings]
        return
    f = assert_finding(late, NEXT, category="interval", severity="major",
                       evidence={"gap_days": round(gap_next, 2), "required_gap_days": 7,
                                 "tolerance_days": 1, "next_order_id": "ORD-3"})
    assert "7 days" in f.message and "ORD-3" in f.message


def test_out_of_order_dose_in_the_two_weekly_phase_needs_14_days_before_the_next():
    """Stream: C3D1 (day 0) and C4D1 (day 28); C3D15 arrives late. It needs 14 days before C4D1."""
    for day, flagged in ((14, False), (15, False), (15 + MIN, True), (20, True)):
        p = Pharmacy()
        p.place(dose(0, order_id="ORD-C3D1", regimen=(3, 1)))
        p.place(dose(28, order_id="ORD-C4D1", regimen=(4, 1)))
        late = p.place(dose(day, order_id="ORD-C3D15", regimen=(3, 15)))
        assert_no(late, PREV)
        if not flagged:
            assert interval_ids(late) == [], (day, [f.message for f in late.findings])
        else:
            assert_finding(late, NEXT, category="interval", severity="major",
                           evidence={"gap_days": round(28 - day, 2), "required_gap_days": 14,
                                     "next_order_id": "ORD-C4D1", "dose_number": 8})


def test_out_of_order_dose_checked_against_both_sides():
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-1"))
    p.place(dose(6, order_id="ORD-3"))   # 6 days after ORD-1: tolerated
    mid = p.place(dose(3, order_id="ORD-2"))
    assert_finding(mid, PREV, category="interval", severity="major",
                   evidence={"gap_days": 3, "required_gap_days": 7, "previous_order_id": "ORD-1"})
    assert_finding(mid, NEXT, category="interval", severity="major",
                   evidence={"gap_days": 3, "required_gap_days": 7, "next_order_id": "ORD-3"})


# --- same calendar day: duplicates ---------------------------------------------------------

def test_second_order_for_the_same_day_is_a_duplicate():
    first, second = run_events([dose(0, order_id="ORD-A"), dose(at(0, hours=5), order_id="ORD-B")])
    assert DUP not in rule_ids(first)
    f = assert_finding(second, DUP, category="interval", severity="major",
                       evidence={"date": "2026-03-02", "other_order_id": "ORD-A"})
    assert "2026-03-02" in f.message and "ORD-A" in f.message
    assert second.severity == "major"


def test_exactly_the_same_time_is_a_duplicate():
    _, second = run_events([dose(0, order_id="ORD-A"), dose(0, order_id="ORD-B")])
    assert_finding(second, DUP, category="interval", severity="major",
                   evidence={"date": "2026-03-02", "other_order_id": "ORD-A"})


def test_same_utc_day_but_different_local_dates_is_not_a_duplicate():
    """A is 2026-03-02 in -05:00 and B is 2026-03-03 in +00:00; both fall on 2026-03-03 UTC."""
    a = order_event(order_id="ORD-A", regimen=DROP, frequency=DROP,
                    scheduled_for="2026-03-02T22:00:00-05:00")   # 2026-03-03T03:00Z
    b = order_event(order_id="ORD-B", regimen=DROP, frequency=DROP,
                    scheduled_for="2026-03-03T05:00:00+00:00")   # 2026-03-03T05:00Z
    _, second = run_events([a, b])
    assert_no(second, DUP)
    # still far too soon: 2 hours after the previous dose
    assert_finding(second, PREV, category="interval", severity="major",
                   evidence={"gap_days": 0.0833, "required_gap_days": 7, "previous_order_id": "ORD-A"})


def test_same_local_date_but_different_utc_days_is_a_duplicate():
    """A is 2026-03-02 in +02:00 (2026-03-01 UTC); B is 2026-03-02 in -02:00 (2026-03-03 UTC)."""
    a = order_event(order_id="ORD-A", regimen=DROP, frequency=DROP,
                    scheduled_for="2026-03-02T00:30:00+02:00")   # 2026-03-01T22:30Z
    b = order_event(order_id="ORD-B", regimen=DROP, frequency=DROP,
                    scheduled_for="2026-03-02T23:30:00-02:00")   # 2026-03-03T01:30Z
    _, second = run_events([a, b])
    assert_finding(second, DUP, category="interval", severity="major",
                   evidence={"date": "2026-03-02", "other_order_id": "ORD-A"})


def test_duplicate_under_the_trade_name_is_the_same_drug():
    _, second = run_events([dose(0, order_id="ORD-A"), dose(0, order_id="ORD-B", drug="Sarclisa")])
    assert second.drug == "isatuximab"
    assert_finding(second, DUP, category="interval", severity="major",
                   evidence={"other_order_id": "ORD-A"})


def test_another_drug_on_the_same_day_is_not_a_duplicate():
    p = Pharmacy()
    p.place(order_event(scheduled_for=0, drug="dexamethasone", dose=(40, "mg"), route="PO"))
    d = p.place(dose(0))
    assert interval_ids(d) == []


def test_another_patients_dose_on_the_same_day_does_not_count():
    p = Pharmacy()
    p.place(dose(0, patient_id="P-002"))
    d = p.place(dose(0, patient_id="P-001"))
    assert interval_ids(d) == []


# --- regimen: plan days and placement ------------------------------------------------------

@pytest.mark.parametrize("cycle,day", [(1, 1), (1, 8), (1, 15), (1, 22), (2, 1), (2, 15),
                                       (3, 1), (3, 15), (12, 15)])
def test_regimen_day_in_the_plan_is_fine(cycle, day):
    d = Pharmacy().place(dose(0, regimen=(cycle, day)))
    assert_no(d, OFF)


@pytest.mark.parametrize("cycle,day,plan_days", [
    (1, 2, [1, 8, 15, 22]), (1, 29, [1, 8, 15, 22]), (1, 14, [1, 8, 15, 22]),
    (2, 8, [1, 15]), (2, 22, [1, 15]), (3, 22, [1, 15]), (7, 2, [1, 15]),
])
def test_regimen_day_outside_the_plan_is_warning(cycle, day, plan_days):
    d = Pharmacy().place(dose(0, regimen=(cycle, day), meds=[]))
    f = assert_finding(d, OFF, category="interval", severity="warning",
                       evidence={"cycle": cycle, "day": day, "plan_days": plan_days,
                                 "cycle_length_days": 28})
    assert f"ycle {cycle}" in f.message and f"day {day}" in f.message
    assert ", ".join(map(str, plan_days)) in f.message, f.message
    assert d.outcome == "flagged"


@pytest.mark.parametrize("second,gap,flag", [
    ((3, 15), 14, False),
    ((3, 15), 13, False),
    ((3, 15), 13 - MIN, True),
    ((3, 15), 7, True),
    (None, 7, True),       # no regimen: the dose after C3D1 still needs 14 days
    (None, 14, False),
])
def test_regimen_places_a_plan_that_started_before_the_stream(second, gap, flag):
    """First streamed dose is C3D1: the next needs 14 days, not the 7 of a patient's first dose."""
    first, nxt = run_events([dose(0, order_id="ORD-C3D1", regimen=(3, 1)),
                             dose(gap, order_id="ORD-NEXT", regimen=second if second else DROP)])
    assert interval_ids(first) == []
    if not flag:
        assert interval_ids(nxt) == [], [f.message for f in nxt.findings]
        return
    assert_finding(nxt, PREV, category="interval", severity="major",
                   evidence={"gap_days": round(gap, 2), "required_gap_days": 14,
                             "previous_order_id": "ORD-C3D1", "previous_dose_number": 7})


def test_regimen_in_cycle_2_started_before_the_stream():
    _, nxt = run_events([dose(0, order_id="ORD-C2D1", regimen=(2, 1)),
                         dose(7, order_id="ORD-C2D8?", regimen=DROP)])
    assert_finding(nxt, PREV, category="interval", severity="major",
                   evidence={"gap_days": 7, "required_gap_days": 14, "previous_dose_number": 5})


def test_regimen_c1d22_to_c2d1_is_a_weekly_gap():
    decisions = run_events([dose(0, regimen=(1, 22)), dose(7, regimen=(2, 1))])
    assert [interval_ids(d) for d in decisions] == [[], []]


def test_cycle_1_weekly_doses_placed_by_regimen():
    decisions = run_events([dose(7 * i, regimen=(1, 1 + 7 * i)) for i in range(4)]
                           + [dose(28, regimen=(2, 1)), dose(42, regimen=(2, 15))])
    assert [interval_ids(d) for d in decisions] == [[]] * 6


# --- frequency ----------------------------------------------------------------------------

@pytest.mark.parametrize("freq", [(1, 7, "d"), (1, 1, "wk"), (1, 168, "h"), (1, 14, "d"),
                                  (2, 14, "d"), (1, 2, "wk")])
def test_weekly_or_less_often_is_fine_in_cycle_1(freq):
    d = Pharmacy().place(dose(0, regimen=(1, 1), frequency=freq))
    assert_no(d, FREQ)


@pytest.mark.parametrize("freq,every", [((2, 7, "d"), 3.5), ((1, 6, "d"), 6.0), ((1, 24, "h"), 1.0),
                                        ((1, 167, "h"), 6.96), ((3, 1, "wk"), 2.33), ((1, 1, "d"), 1.0)])
def test_more_often_than_weekly_is_major_in_cycle_1(freq, every):
    d = Pharmacy().place(dose(0, regimen=(1, 1), frequency=freq))
    f = assert_finding(d, FREQ, category="interval", severity="major",
                       evidence={"dose_every_days": every, "allowed_every_days": 7})
    assert "7 days" in f.message


@pytest.mark.parametrize("freq,every,flag", [
    ((1, 7, "d"), 7.0, True),
    ((1, 1, "wk"), 7.0, True),
    ((1, 168, "h"), 7.0, True),
    ((1, 13, "d"), 13.0, True),
    ((1, 14, "d"), 14.0, False),
    ((1, 2, "wk"), 14.0, False),
    ((1, 336, "h"), 14.0, False),
    ((1, 4, "wk"), 28.0, False),
])
def test_frequency_in_the_two_weekly_phase(freq, every, flag):
    d = Pharmacy().place(dose(0, regimen=(3, 1), frequency=freq))
    if not flag:
        assert_no(d, FREQ)
        return
    assert_finding(d, FREQ, category="interval", severity="major",
                   evidence={"dose_every_days": every, "allowed_every_days": 14})


def test_weekly_frequency_at_the_fifth_streamed_dose_is_major():
    decisions = run_events([dose(7 * i, frequency=(1, 7, "d")) for i in range(5)])
    assert [FREQ in rule_ids(d) for d in decisions] == [False, False, False, False, True]
    assert_finding(decisions[-1], FREQ, category="interval", severity="major",
                   evidence={"dose_every_days": 7, "allowed_every_days": 14, "dose_number": 5})


# --- cancellation and activity -------------------------------------------------------------

def test_cancellation_removes_the_order_from_the_interval_check():
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-A"))
    with_a = Pharmacy()
    with_a.place(dose(0, order_id="ORD-A"))
    assert PREV in rule_ids(with_a.place(dose(3, order_id="ORD-B")))
    p.cancel("ORD-A")
    d = p.place(dose(3, order_id="ORD-B"))
    assert interval_ids(d) == [], [f.message for f in d.findings]


def test_cancelled_same_day_order_is_not_a_duplicate():
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-A"))
    p.cancel("ORD-A")
    d = p.place(dose(0, order_id="ORD-B"))
    assert_no(d, DUP)


def test_cancelling_another_order_does_not_remove_this_one():
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-A"))
    p.cancel("ORD-ZZZ")
    d = p.place(dose(3, order_id="ORD-B"))
    assert_finding(d, PREV, category="interval", severity="major", evidence={"previous_order_id": "ORD-A"})


@pytest.mark.parametrize("first_kw", [
    {"route": "SC"},                               # flagged major
    {"patient": {"pregnant": True}},               # contraindicated
    {"dose": (700, "units")},                      # data finding
    {"dose": (1400, "mg")},                        # dose major
    {},                                            # approved
])
def test_an_order_is_active_whatever_its_decision(first_kw):
    p = Pharmacy()
    p.place(dose(0, order_id="ORD-A", **first_kw))
    d = p.place(dose(2, order_id="ORD-B"))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"gap_days": 2, "required_gap_days": 7, "previous_order_id": "ORD-A"})


def test_first_dose_has_no_interval_findings():
    d = Pharmacy().place(dose(0, frequency=(1, 7, "d"), regimen=(1, 1)))
    assert_none_in(d, "interval")


# --- the same scenarios with history stored as JSON, as the stream's table keeps it ----------

@pytest.mark.parametrize("store", ["dict", "json"])
def test_local_date_duplicates_survive_history_serialisation(store):
    p = Pharmacy(store)
    p.place(order_event(order_id="ORD-A", regimen=DROP, scheduled_for="2026-03-02T00:30:00+02:00"))
    d = p.place(order_event(order_id="ORD-B", regimen=DROP, scheduled_for="2026-03-02T23:30:00-02:00"))
    assert_finding(d, DUP, category="interval", severity="major",
                   evidence={"date": "2026-03-02", "other_order_id": "ORD-A"})
    q = Pharmacy(store)
    q.place(order_event(order_id="ORD-A", regimen=DROP, scheduled_for="2026-03-02T22:00:00-05:00"))
    e = q.place(order_event(order_id="ORD-B", regimen=DROP, scheduled_for="2026-03-03T05:00:00+00:00"))
    assert_no(e, DUP)


@pytest.mark.parametrize("store", ["dict", "json"])
def test_regimen_placement_and_cancellation_survive_history_serialisation(store):
    p = Pharmacy(store)
    p.place(dose(0, order_id="ORD-C3D1", regimen=(3, 1)))
    d = p.place(dose(7, order_id="ORD-C3D8", regimen=DROP))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"required_gap_days": 14, "previous_dose_number": 7})
    p.cancel("ORD-C3D8")
    p.cancel("ORD-C3D1")
    d2 = p.place(dose(9, order_id="ORD-X"))
    assert interval_ids(d2) == []


def test_out_of_order_dose_before_the_first_one():
    p = Pharmacy()
    p.place(dose(7, order_id="ORD-LATER"))
    ok = p.place(dose(0, order_id="ORD-EARLY-OK"))
    assert interval_ids(ok) == []
    q = Pharmacy()
    q.place(dose(7, order_id="ORD-LATER"))
    bad = q.place(dose(3, order_id="ORD-EARLY"))
    assert_finding(bad, NEXT, category="interval", severity="major",
                   evidence={"gap_days": 4, "required_gap_days": 7, "next_order_id": "ORD-LATER",
                             "dose_number": 1})


@pytest.mark.parametrize("freq,every_text,allowed", [((2, 7, "d"), "3.5 days", 7), ((1, 24, "h"), "1 days", 7)])
def test_frequency_message_names_both_numbers(freq, every_text, allowed):
    d = Pharmacy().place(dose(0, regimen=(1, 1), frequency=freq))
    f = assert_finding(d, FREQ, category="interval", severity="major")
    assert every_text in f.message and f"{allowed} days" in f.message, f.message
