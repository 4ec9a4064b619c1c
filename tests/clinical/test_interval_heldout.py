"""Held-out interval tests, written from the rule TEXT only (not from the rule code).

The specification, quoted:

issue 3, section 2, `interval`: "once a week for four weeks, then once every two weeks (28-day
cycles: cycle 1 on days 1/8/15/22, later cycles on days 1/15 -- so the gap after each of the
patient's first four doses is 7 days, and 14 days after the fifth and every later dose). A dose
scheduled more than a day short of the gap that the dose before it requires, or short of the gap
that it itself requires before the next dose, is `major`; a second active order for the same
calendar day is a duplicate, `major`. When `regimen` is given, its cycle and day place the dose
in the plan (it may start before the stream did): a day outside the plan is `warning`. A
`frequency` more often than the phase allows is `major`. Use `scheduled_for`, never the wall
clock (a calendar day is the date as written in `scheduled_for`, in its own offset); an event
that arrives out of order is checked against the doses on both sides of it, with the same one-day
tolerance; an order is active from the moment it is placed, whatever its decision, until it is
cancelled."

issue 3, `dose`: "A first dose for the patient (no earlier active dose, and `regimen`, if given,
at cycle 1 day 1) gets an `info` finding to premedicate".

issue 7, item 2: "A dose is checked against the nearest active dose on each side, in time, not
against one dose per day"; an order id cancelled and placed again "is active from its new
placement until cancelled again"; "A cancellation that arrives before its order must still
cancel that order when it arrives."

Contract: `order.cancelled` -- "the order with this `order.order_id` no longer counts for interval
and combination checks".

Readings chosen where the text leaves room (see also the report):
- A gap is elapsed time between the two `scheduled_for` instants (offsets honoured); "more than a
  day short" of 7 days means a gap below 6 days is `major`, exactly 6 days is not. Around 14: 13
  days passes, anything less is `major`.
- The one-day tolerance applies on both sides ("with the same one-day tolerance").
- "The patient's first four doses" are the patient's active doses ordered by `scheduled_for`; when
  `regimen` is given, its cycle/day says which dose of the plan it is (cycle 1 days 1/8/15/22 are
  doses 1-4, any later cycle is past the fourth).
- "Earlier" for the first-dose finding means scheduled earlier (not arrived earlier).
- A `frequency` has no tolerance: any dose interval shorter than the phase's gap is `major`.

Every event is otherwise valid (the example patient: 70 kg, 700 mg, IV over 210 min, fresh labs);
`regimen` and `frequency` are dropped unless a row is about them, so only interval rules speak.
"""
from __future__ import annotations

import pytest

from .conftest import (
    DROP, Pharmacy, assert_finding, assert_no, cancel_event, findings_in, order_event, rule_ids,
    the_finding,
)

TOO_SOON = "isatuximab.interval.too_soon_after_previous"
TOO_CLOSE = "isatuximab.interval.too_close_to_next"
DUPLICATE = "isatuximab.interval.duplicate"
OFF_PLAN = "isatuximab.interval.off_plan_day"
FREQUENCY = "isatuximab.interval.frequency"
PREMED = "isatuximab.dose.first_dose_premedication"
GAP_RULES = (TOO_SOON, TOO_CLOSE)
INTERVAL_RULES = (TOO_SOON, TOO_CLOSE, DUPLICATE, OFF_PLAN, FREQUENCY)


# --- builders --------------------------------------------------------------------------------

def dose(when, oid: str | None = None, *, regimen=DROP, frequency=DROP, patient_id="P-001",
         **kw) -> dict:
    """An otherwise valid isatuximab order.placed event; `when` is days after T0
    (2026-03-02T09:00:00Z) or an RFC 3339 string."""
    return order_event(scheduled_for=when, order_id=oid, regimen=regimen, frequency=frequency,
                       patient_id=patient_id, **kw)


def cancel(oid: str, patient_id: str = "P-001") -> dict:
    return cancel_event(oid, patient_id=patient_id)


def doses(*days: float) -> list[dict]:
    return [dose(d) for d in days]


def run(steps: list[dict], store: str = "dict"):
    """Every step through one real Processor, in order; the decisions (None for a cancellation)."""
    return Pharmacy(store=store).run(steps)


def last_decision(steps: list[dict], store: str = "dict"):
    out = run(steps, store)
    assert out[-1] is not None, "the last step must be a placed order"
    return out[-1]


def assert_clean(decision) -> None:
    """Not flagged for interval: no interval finding at all, and (everything else being valid)
    the order is approved."""
    assert findings_in(decision, "interval") == [], [
        (f.rule_id, f.severity, f.message) for f in findings_in(decision, "interval")]
    for r in INTERVAL_RULES:
        assert_no(decision, r)
    assert decision.outcome == "approved", [(f.rule_id, f.severity, f.message) for f in decision.findings]


def assert_gap(decision, rule: str) -> None:
    """Flagged `major` by exactly this side's gap rule (the other side is not blamed)."""
    assert_finding(decision, rule, category="interval", severity="major")
    other = TOO_CLOSE if rule == TOO_SOON else TOO_SOON
    assert_no(decision, other)
    assert decision.outcome == "flagged"
    assert decision.severity == "major"


def expect(decision, want: str | None) -> None:
    if want is None:
        assert_clean(decision)
    else:
        assert_gap(decision, want)


# --- 1. the gap after each dose: 7 days after doses 1-4, 14 after the 5th and later ------------
# (earlier doses in days after T0, spaced as the plan spaces them; the new dose; expected rule)

WEEKLY = [0, 7, 14, 21]          # doses 1-4
FIFTH = WEEKLY + [28]            # dose 5 on day 28 (7 days after dose 4)
SIXTH = FIFTH + [41]             # dose 6, 13 days after dose 5
LATER = FIFTH + [42, 56, 70]     # doses 6-8 every 14 days

GAPS = [
    pytest.param([0], 7, None, id="after-dose1-7d-exact-plan-ok"),
    pytest.param([0], 6, None, id="after-dose1-6.00d-exactly-one-day-short-ok"),
    pytest.param([0], 5.99, TOO_SOON, id="after-dose1-5.99d-more-than-a-day-short-major"),
    pytest.param([0], 2, TOO_SOON, id="after-dose1-2d-major"),
    pytest.param([0], "2026-03-08T09:01:00Z", None, id="after-dose1-6d-0h01m-ok"),
    pytest.param([0], "2026-03-08T08:59:00Z", TOO_SOON, id="after-dose1-5d-23h59m-major"),
    pytest.param([0], "2026-03-08T08:59:59Z", TOO_SOON, id="after-dose1-5d-23h59m59s-major"),
    pytest.param([0, 7], 13, None, id="after-dose2-6d-ok"),
    pytest.param([0, 7], 12.99, TOO_SOON, id="after-dose2-5.99d-major"),
    pytest.param([0, 7, 14], 20, None, id="after-dose3-6d-ok"),
    pytest.param([0, 7, 14], 19.99, TOO_SOON, id="after-dose3-5.99d-major"),
    pytest.param(WEEKLY, 27, None, id="after-dose4-6d-ok-still-weekly"),
    pytest.param(WEEKLY, 26.99, TOO_SOON, id="after-dose4-5.99d-major"),
    pytest.param(WEEKLY, 28, None, id="after-dose4-7d-ok"),
    pytest.param(FIFTH, 42, None, id="after-dose5-14d-exact-plan-ok"),
    pytest.param(FIFTH, 41, None, id="after-dose5-13.00d-exactly-one-day-short-ok"),
    pytest.param(FIFTH, 40.99, TOO_SOON, id="after-dose5-12.99d-major"),
    pytest.param(FIFTH, "2026-04-12T09:00:00Z", None, id="after-dose5-13d-0h-as-time-ok"),
    pytest.param(FIFTH, "2026-04-12T08:59:00Z", TOO_SOON, id="after-dose5-12d-23h59m-major"),
    pytest.param(FIFTH, 35, TOO_SOON, id="after-dose5-weekly-7d-major"),
    pytest.param(FIFTH, 34, TOO_SOON, id="after-dose5-6d-major"),
    pytest.param(SIXTH, 54, None, id="after-dose6-13d-ok"),
    pytest.param(SIXTH, 53.99, TOO_SOON, id="after-dose6-12.99d-major"),
    pytest.param(LATER, 83, None, id="after-dose8-13d-ok"),
    pytest.param(LATER, 82.99, TOO_SOON, id="after-dose8-12.99d-major"),
    pytest.param(LATER, 77, TOO_SOON, id="after-dose8-weekly-major"),
]


@pytest.mark.parametrize("earlier,new,want", GAPS)
def test_gap_after_each_dose(earlier, new, want):
    expect(last_decision(doses(*earlier) + [dose(new)]), want)


# --- 2. times with minutes and different UTC offsets: the gap is between instants -----------------

OFFSETS = [
    # previous dose, new dose, expected
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T04:00:00-05:00", None,
                 id="prev-Z-new-minus5-exactly-6d-ok"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T03:59:00-05:00", TOO_SOON,
                 id="prev-Z-new-minus5-one-minute-under-6d-major"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T18:30:00+09:30", None,
                 id="prev-Z-new-plus0930-exactly-6d-ok"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T18:29:00+09:30", TOO_SOON,
                 id="prev-Z-new-plus0930-one-minute-under-6d-major"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T09:59:00+01:00", TOO_SOON,
                 id="prev-Z-new-plus1-wall-clock-later-but-instant-under-6d-major"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-08T05:01:00-04:00", None,
                 id="prev-Z-new-minus4-6d-0h01m-ok"),
    pytest.param("2026-03-02T04:00:00-05:00", "2026-03-08T09:00:00Z", None,
                 id="prev-minus5-new-Z-exactly-6d-ok"),
    pytest.param("2026-03-02T04:00:00-05:00", "2026-03-08T08:59:00Z", TOO_SOON,
                 id="prev-minus5-new-Z-under-6d-major"),
    pytest.param("2026-03-02T23:30:00-05:00", "2026-03-09T04:30:00Z", None,
                 id="prev-late-evening-minus5-new-Z-exactly-6d-ok"),
    pytest.param("2026-03-02T23:30:00-05:00", "2026-03-08T23:00:00-05:00", TOO_SOON,
                 id="same-offset-6-calendar-days-but-5d23h30m-major"),
    pytest.param("2026-03-02T23:30:00-05:00", "2026-03-08T23:30:00-05:00", None,
                 id="same-offset-exactly-6d-ok"),
]


@pytest.mark.parametrize("prev,new,want", OFFSETS)
def test_gap_uses_instants_across_offsets(prev, new, want):
    expect(last_decision([dose(prev), dose(new)]), want)


def test_gap_after_fifth_dose_written_in_other_offsets():
    """Dose 5 written at +05:30 (09:00Z on day 28): 13 days later written at -05:00 is fine,
    one minute less is `major`."""
    fifth = "2026-03-30T14:30:00+05:30"
    expect(last_decision(doses(*WEEKLY) + [dose(fifth), dose("2026-04-12T04:00:00-05:00")]), None)
    expect(last_decision(doses(*WEEKLY) + [dose(fifth), dose("2026-04-12T03:59:00-05:00")]),
           TOO_SOON)


# --- 3. out of order: checked against the doses on BOTH sides, same tolerance -----------------------
# (doses already placed, in arrival order; the new dose; expected rule)

OUT_OF_ORDER = [
    pytest.param([0, 14], 7, None, id="between-7d-each-side-ok"),
    pytest.param([0, 14], 8, None, id="between-6.00d-to-next-ok"),
    pytest.param([0, 14], 8.01, TOO_CLOSE, id="between-5.99d-to-next-major"),
    pytest.param([0, 14], 6, None, id="between-6.00d-after-previous-ok"),
    pytest.param([0, 14], 5.99, TOO_SOON, id="between-5.99d-after-previous-major"),
    pytest.param([14, 0], 8.01, TOO_CLOSE, id="between-arrived-reversed-5.99d-to-next-major"),
    pytest.param([14, 0], 5.99, TOO_SOON, id="between-arrived-reversed-5.99d-after-prev-major"),
    pytest.param([7], 1, None, id="before-only-dose-6.00d-ok"),
    pytest.param([7], 1.01, TOO_CLOSE, id="before-only-dose-5.99d-major"),
    pytest.param([7], "2026-03-03T04:00:00-05:00", None, id="before-only-dose-offset-6.00d-ok"),
    pytest.param([7], "2026-03-03T04:01:00-05:00", TOO_CLOSE,
                 id="before-only-dose-offset-5d23h59m-major"),
    # nearest later dose, not the first-arrived later dose
    pytest.param([30, 9], 3, None, id="nearest-next-of-two-6.00d-ok"),
    pytest.param([30, 9], 3.01, TOO_CLOSE, id="nearest-next-of-two-5.99d-major"),
    # nearest earlier dose, not the first-arrived earlier dose
    pytest.param([6, 0], 12, None, id="nearest-previous-of-two-6.00d-ok"),
    pytest.param([6, 0], 11.99, TOO_SOON, id="nearest-previous-of-two-5.99d-major"),
    # 14-day phase on both sides: doses 1-5 plus a later dose on day 56
    pytest.param(FIFTH + [56], 42, None, id="phase2-between-14d-each-side-ok"),
    pytest.param(FIFTH + [56], 41, None, id="phase2-between-13d-after-prev-ok"),
    pytest.param(FIFTH + [56], 40.99, TOO_SOON, id="phase2-between-12.99d-after-prev-major"),
    pytest.param(FIFTH + [56], 43, None, id="phase2-between-13d-to-next-ok"),
    pytest.param(FIFTH + [56], 43.01, TOO_CLOSE, id="phase2-between-12.99d-to-next-major"),
]


@pytest.mark.parametrize("placed,new,want", OUT_OF_ORDER)
def test_out_of_order_checked_on_both_sides(placed, new, want):
    expect(last_decision(doses(*placed) + [dose(new)]), want)


# --- 4. "short of the gap that it itself requires before the next dose" ------------------------
# The late event is the patient's 5th dose (four weekly doses before it), so IT requires 14 days
# before the next dose, although the dose before it (the 4th) requires only 7.

OWN_GAP = [
    # (earlier doses, the later dose already placed, the late event, expected)
    pytest.param(WEEKLY, 41, 28, None, id="fifth-dose-13.00d-before-next-ok"),
    pytest.param(WEEKLY, 40.99, 28, TOO_CLOSE, id="fifth-dose-12.99d-before-next-major"),
    pytest.param(WEEKLY, 40, 28, TOO_CLOSE,
                 id="fifth-dose-12d-before-next-major-though-7d-would-pass"),
    pytest.param(WEEKLY, 40, 27, None, id="fifth-dose-6d-after-4th-and-13d-before-next-ok"),
    pytest.param(WEEKLY, 35, 28, TOO_CLOSE, id="fifth-dose-weekly-before-next-major"),
    # the 4th dose itself requires 7 before the next: 6 days is fine, 5.99 is not
    pytest.param([0, 7, 14], 27, 21, None, id="fourth-dose-6.00d-before-next-ok"),
    pytest.param([0, 7, 14], 26.99, 21, TOO_CLOSE, id="fourth-dose-5.99d-before-next-major"),
]


@pytest.mark.parametrize("earlier,next_day,new,want", OWN_GAP)
def test_gap_the_dose_itself_requires_before_the_next(earlier, next_day, new, want):
    expect(last_decision(doses(*earlier) + [dose(next_day), dose(new)]), want)


# --- 5. regimen places the dose in the plan (which may start before the stream did) --------------
# (first seen dose's cycle/day; the next dose's cycle/day; days between; expected)

REGIMEN_GAPS = [
    pytest.param((3, 1), (3, 15), 14, None, id="first-seen-C3D1-then-14d-ok"),
    pytest.param((3, 1), (3, 15), 13, None, id="first-seen-C3D1-then-13d-ok"),
    pytest.param((3, 1), (3, 15), 12.99, TOO_SOON, id="first-seen-C3D1-then-12.99d-major"),
    pytest.param((3, 1), (3, 8), 7, TOO_SOON, id="first-seen-C3D1-then-weekly-major"),
    pytest.param((2, 1), (2, 15), 13, None, id="first-seen-C2D1-then-13d-ok"),
    pytest.param((2, 1), (2, 15), 12.99, TOO_SOON, id="first-seen-C2D1-then-12.99d-major"),
    pytest.param((2, 15), (3, 1), 13, None, id="first-seen-C2D15-then-13d-ok"),
    pytest.param((2, 15), (3, 1), 12.99, TOO_SOON, id="first-seen-C2D15-then-12.99d-major"),
    pytest.param((1, 22), (2, 1), 6, None, id="first-seen-C1D22-dose4-then-6d-ok"),
    pytest.param((1, 22), (2, 1), 5.99, TOO_SOON, id="first-seen-C1D22-dose4-then-5.99d-major"),
    pytest.param((1, 15), (1, 22), 6, None, id="first-seen-C1D15-then-6d-ok"),
    pytest.param((1, 15), (1, 22), 5.99, TOO_SOON, id="first-seen-C1D15-then-5.99d-major"),
    pytest.param((1, 1), (1, 8), 6, None, id="C1D1-then-6d-ok"),
    pytest.param((1, 1), (1, 8), 5.99, TOO_SOON, id="C1D1-then-5.99d-major"),
    pytest.param(DROP, DROP, 12.99, None, id="control-no-regimen-dose1-then-12.99d-ok"),
]


@pytest.mark.parametrize("first,second,days,want", REGIMEN_GAPS)
def test_regimen_places_the_dose_in_the_plan(first, second, days, want):
    expect(last_decision([dose(0, regimen=first), dose(days, regimen=second)]), want)


ON_PLAN = [(1, 1), (1, 8), (1, 15), (1, 22), (2, 1), (2, 15), (3, 1), (7, 15)]
OFF_PLAN_DAYS = [(1, 2), (1, 7), (1, 9), (1, 28), (1, 29), (2, 8), (2, 22), (3, 2), (3, 14),
                 (7, 16)]


@pytest.mark.parametrize("cycle,day", ON_PLAN, ids=[f"C{c}D{d}-on-plan-ok" for c, d in ON_PLAN])
def test_regimen_day_on_plan(cycle, day):
    assert_clean(last_decision([dose(0, regimen=(cycle, day))]))


@pytest.mark.parametrize("cycle,day", OFF_PLAN_DAYS,
                         ids=[f"C{c}D{d}-off-plan-warning" for c, d in OFF_PLAN_DAYS])
def test_regimen_day_outside_the_plan_is_warning(cycle, day):
    d = last_decision([dose(0, regimen=(cycle, day))])
    assert_finding(d, OFF_PLAN, category="interval", severity="warning")
    assert d.outcome == "flagged"
    assert d.severity == "warning", rule_ids(d)


# --- 6. frequency more often than the phase allows is major --------------------------------------
# (earlier doses; the new dose's day and regimen; its frequency (count, period, unit); flagged)

PHASE2 = WEEKLY  # four earlier doses: the new dose on day 28 is the 5th

FREQUENCIES = [
    pytest.param([], 0, DROP, (1, 7, "d"), False, id="phase1-1-per-7d-ok"),
    pytest.param([], 0, DROP, (1, 1, "wk"), False, id="phase1-1-per-wk-ok"),
    pytest.param([], 0, DROP, (4, 4, "wk"), False, id="phase1-4-per-4wk-ok"),
    pytest.param([], 0, DROP, (1, 168, "h"), False, id="phase1-1-per-168h-ok"),
    pytest.param([], 0, DROP, (1, 14, "d"), False, id="phase1-less-often-1-per-14d-ok"),
    pytest.param([], 0, DROP, (1, 167, "h"), True, id="phase1-1-per-167h-major"),
    pytest.param([], 0, DROP, (1, 6, "d"), True, id="phase1-1-per-6d-major"),
    pytest.param([], 0, DROP, (2, 1, "wk"), True, id="phase1-2-per-wk-major"),
    pytest.param([], 0, DROP, (1, 24, "h"), True, id="phase1-daily-in-hours-major"),
    pytest.param([0, 7, 14], 21, DROP, (1, 7, "d"), False, id="dose4-weekly-ok"),
    pytest.param(PHASE2, 28, DROP, (1, 14, "d"), False, id="phase2-1-per-14d-ok"),
    pytest.param(PHASE2, 28, DROP, (1, 2, "wk"), False, id="phase2-1-per-2wk-ok"),
    pytest.param(PHASE2, 28, DROP, (2, 4, "wk"), False, id="phase2-2-per-4wk-ok"),
    pytest.param(PHASE2, 28, DROP, (2, 28, "d"), False, id="phase2-2-per-28d-ok"),
    pytest.param(PHASE2, 28, DROP, (1, 336, "h"), False, id="phase2-1-per-336h-ok"),
    pytest.param(PHASE2, 28, DROP, (1, 7, "d"), True, id="phase2-weekly-7d-major"),
    pytest.param(PHASE2, 28, DROP, (1, 1, "wk"), True, id="phase2-1-per-wk-major"),
    pytest.param(PHASE2, 28, DROP, (1, 13, "d"), True, id="phase2-1-per-13d-major"),
    pytest.param(PHASE2, 28, DROP, (2, 3, "wk"), True, id="phase2-2-per-3wk-major"),
    pytest.param(PHASE2, 28, DROP, (3, 28, "d"), True, id="phase2-3-per-28d-major"),
    pytest.param(PHASE2, 28, DROP, (1, 335, "h"), True, id="phase2-1-per-335h-major"),
    pytest.param(FIFTH, 42, DROP, (1, 7, "d"), True, id="dose6-weekly-major"),
    pytest.param(FIFTH, 42, DROP, (1, 14, "d"), False, id="dose6-every-14d-ok"),
    pytest.param([], 0, (2, 1), (1, 7, "d"), True, id="regimen-C2D1-first-seen-weekly-major"),
    pytest.param([], 0, (2, 1), (1, 14, "d"), False, id="regimen-C2D1-first-seen-14d-ok"),
    pytest.param([], 0, (3, 15), (1, 1, "wk"), True, id="regimen-C3D15-weekly-major"),
    pytest.param([], 0, (1, 22), (1, 7, "d"), False, id="regimen-C1D22-weekly-ok"),
    pytest.param([], 0, (1, 1), (1, 7, "d"), False, id="regimen-C1D1-weekly-ok"),
]


@pytest.mark.parametrize("earlier,day,regimen,frequency,flagged", FREQUENCIES)
def test_frequency_against_the_phase(earlier, day, regimen, frequency, flagged):
    d = last_decision(doses(*earlier) + [dose(day, regimen=regimen, frequency=frequency)])
    if flagged:
        assert_finding(d, FREQUENCY, category="interval", severity="major")
        assert d.outcome == "flagged"
    else:
        assert_clean(d)


# --- 7. duplicates: a second active order for the same calendar day, as written -----------------
# (the active order's scheduled_for; the new one's; duplicate?; the gap rule that must fire when
#  not a duplicate -- the two are hours apart)

DUPLICATES = [
    pytest.param("2026-03-02T09:00:00Z", "2026-03-02T20:00:00Z", True, None,
                 id="same-utc-day-later-hour-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-02T00:00:00Z", True, None,
                 id="same-utc-day-earlier-hour-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-02T23:59:00Z", True, None,
                 id="same-utc-day-23h59-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-02T09:00:00Z", True, None,
                 id="same-instant-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-03T00:00:00Z", False, TOO_SOON,
                 id="next-utc-day-midnight-not-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-02T23:30:00-05:00", True, None,
                 id="written-0302-at-minus5-is-0303-utc-duplicate-of-0302"),
    pytest.param("2026-03-03T09:00:00Z", "2026-03-02T23:30:00-05:00", False, TOO_CLOSE,
                 id="written-0302-at-minus5-same-utc-day-as-0303-not-duplicate"),
    pytest.param("2026-03-02T09:00:00Z", "2026-03-03T00:30:00+01:00", False, TOO_SOON,
                 id="written-0303-at-plus1-same-utc-day-as-0302-not-duplicate"),
    pytest.param("2026-03-03T09:00:00Z", "2026-03-03T00:30:00+01:00", True, None,
                 id="written-0303-at-plus1-is-0302-utc-duplicate-of-0303"),
    pytest.param("2026-03-02T01:00:00+09:00", "2026-03-02T23:00:00-05:00", True, None,
                 id="both-written-0302-36h-apart-in-utc-duplicate"),
    pytest.param("2026-03-02T23:30:00-05:00", "2026-03-03T00:30:00-05:00", False, TOO_SOON,
                 id="same-offset-different-written-days-1h-apart-not-duplicate"),
]


@pytest.mark.parametrize("active,new,is_duplicate,gap_rule", DUPLICATES)
def test_duplicate_by_calendar_day_as_written(active, new, is_duplicate, gap_rule):
    d = last_decision([dose(active), dose(new)])
    if is_duplicate:
        assert_finding(d, DUPLICATE, category="interval", severity="major")
        assert d.outcome == "flagged"
    else:
        assert_no(d, DUPLICATE)
        assert_finding(d, gap_rule, category="interval", severity="major")


def test_no_duplicate_of_a_cancelled_order():
    d = last_decision([dose(0, "ORD-A"), cancel("ORD-A"), dose(0.4)])
    assert_clean(d)


# --- 8. issue 7.2 and cancellations: which orders are active ----------------------------------
# Each scenario runs on both history stores (in memory, and round-tripped through JSON as the
# stream's table does), and states the rule expected on the LAST event.
# A/B: two orders on day 0 (09:00Z and 20:00Z).

A_0900 = 0
B_2000 = "2026-03-02T20:00:00Z"

SCENARIOS = [
    # two active orders on one calendar day: the later one counts (nearest in time)
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"),
                          dose("2026-03-08T14:00:00Z")], TOO_SOON,
                 id="two-orders-one-day-next-5d18h-after-the-later-major"),
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"),
                          dose("2026-03-08T20:00:00Z")], None,
                 id="two-orders-one-day-next-6.00d-after-the-later-ok"),
    pytest.param(lambda: [dose(B_2000, "ORD-B"), dose(A_0900, "ORD-A"),
                          dose("2026-03-08T14:00:00Z")], TOO_SOON,
                 id="two-orders-one-day-later-placed-first-next-too-soon-major"),
    pytest.param(lambda: [dose("2026-03-09T20:00:00Z", "ORD-X"),
                          dose("2026-03-09T02:00:00Z", "ORD-Y"),
                          dose("2026-03-03T09:00:00Z")], TOO_CLOSE,
                 id="two-later-orders-one-day-earlier-one-placed-second-5d17h-before-major"),
    pytest.param(lambda: [dose("2026-03-09T02:00:00Z", "ORD-Y"),
                          dose("2026-03-09T20:00:00Z", "ORD-X"),
                          dose("2026-03-03T09:00:00Z")], TOO_CLOSE,
                 id="two-later-orders-one-day-earlier-one-placed-first-5d17h-before-major"),
    pytest.param(lambda: [dose("2026-03-09T20:00:00Z", "ORD-X"),
                          dose("2026-03-09T02:00:00Z", "ORD-Y"),
                          dose("2026-03-03T02:00:00Z")], None,
                 id="two-later-orders-one-day-6.00d-before-the-earlier-ok"),
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"), cancel("ORD-A"),
                          dose("2026-03-08T14:00:00Z")], TOO_SOON,
                 id="two-orders-one-day-first-cancelled-second-still-counts-major"),
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"), cancel("ORD-B"),
                          dose("2026-03-08T07:00:00Z")], TOO_SOON,
                 id="two-orders-one-day-second-cancelled-first-still-counts-major"),
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"), cancel("ORD-B"),
                          dose("2026-03-08T14:00:00Z")], None,
                 id="two-orders-one-day-second-cancelled-6d5h-after-first-ok"),
    pytest.param(lambda: [dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"), cancel("ORD-A"),
                          cancel("ORD-B"), dose(2)], None,
                 id="two-orders-one-day-both-cancelled-ok"),
    # an order is active whatever its decision
    pytest.param(lambda: [dose(0), dose(7, route="SC"), dose(9)], TOO_SOON,
                 id="previous-flagged-for-route-still-counts-major"),
    pytest.param(lambda: [dose(0), dose(7, route="SC"), dose(13)], None,
                 id="previous-flagged-for-route-6d-later-ok"),
    pytest.param(lambda: [dose(0), dose(7, dose=(1400, "mg")), dose(9)], TOO_SOON,
                 id="previous-flagged-for-overdose-still-counts-major"),
    pytest.param(lambda: [dose(0), dose(2), dose(4)], TOO_SOON,
                 id="previous-flagged-too-soon-still-counts-major"),
    pytest.param(lambda: [dose(0), dose(2), dose(8)], None,
                 id="previous-flagged-too-soon-6d-later-ok"),
    # cancelled, then placed again under the same order id
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), dose(2)], TOO_SOON,
                 id="cancelled-then-replaced-counts-again-major"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(10, "ORD-X"), dose(12)],
                 TOO_SOON, id="replaced-at-new-time-counts-at-new-time-major"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(10, "ORD-X"), dose(2)],
                 None, id="replaced-at-new-time-old-time-does-not-count-ok"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), cancel("ORD-X"),
                          dose(2)], None, id="replaced-then-cancelled-again-ok"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), cancel("ORD-X"),
                          dose(0, "ORD-X"), dose(2)], TOO_SOON,
                 id="replaced-twice-counts-major"),
    # a cancellation that arrives before its order
    pytest.param(lambda: [cancel("ORD-X"), dose(0, "ORD-X"), dose(2)], None,
                 id="cancel-before-order-order-never-counts-ok"),
    pytest.param(lambda: [cancel("ORD-X"), dose(0, "ORD-X"), dose(0, "ORD-X"), dose(2)], TOO_SOON,
                 id="cancel-before-order-then-placed-again-counts-major"),
    pytest.param(lambda: [cancel("ORD-X", patient_id="P-002"), dose(0, "ORD-X"), dose(2)],
                 TOO_SOON, id="early-cancel-for-another-patient-does-not-cancel-major"),
    # cancellation removes a dose from the interval check
    pytest.param(lambda: [dose(0, "ORD-A"), cancel("ORD-A"), dose(2)], None,
                 id="cancelled-previous-2d-before-ok"),
    pytest.param(lambda: [dose(7, "ORD-A"), cancel("ORD-A"), dose(2)], None,
                 id="cancelled-next-5d-after-ok"),
    pytest.param(lambda: [dose(0), dose(7, "ORD-B"), cancel("ORD-B"), dose(9)], None,
                 id="cancelled-nearest-previous-next-nearest-9d-ok"),
    pytest.param(lambda: [dose(0), cancel("ORD-NOPE"), dose(2)], TOO_SOON,
                 id="cancel-of-unknown-order-changes-nothing-major"),
    pytest.param(lambda: [dose(0, "ORD-A"), cancel("ORD-A", patient_id="P-002"), dose(2)],
                 TOO_SOON, id="cancel-for-another-patient-changes-nothing-major"),
    # a cancelled dose does not count toward the four weekly doses
    pytest.param(lambda: doses(*FIFTH) + [dose(34)], TOO_SOON,
                 id="control-dose5-on-day28-then-6d-major"),
    pytest.param(lambda: [dose(0), dose(7, "ORD-W2"), dose(14), dose(21), dose(28),
                          cancel("ORD-W2"), dose(34)], None,
                 id="one-of-five-cancelled-day28-is-dose4-then-6d-ok"),
]


@pytest.mark.parametrize("store", ["dict", "json"])
@pytest.mark.parametrize("steps,want", SCENARIOS)
def test_active_orders(steps, want, store):
    expect(last_decision(steps(), store), want)


def test_two_orders_one_day_premise_second_is_flagged_duplicate():
    """The premise of issue 7.2's first scenario: the second order of the day is a duplicate
    (and so flagged), yet it is active."""
    out = run([dose(A_0900, "ORD-A"), dose(B_2000, "ORD-B"), dose("2026-03-08T14:00:00Z")])
    assert_finding(out[1], DUPLICATE, category="interval", severity="major")
    assert_gap(out[2], TOO_SOON)
    # the dose it is measured from is the later order of the day (shape learned from a decision)
    assert the_finding(out[2], TOO_SOON).evidence["previous_order_id"] == "ORD-B"


@pytest.mark.parametrize("store", ["dict", "json"])
def test_replaced_order_is_a_duplicate_source_again(store):
    d = last_decision([dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), dose(B_2000)], store)
    assert_finding(d, DUPLICATE, category="interval", severity="major")


@pytest.mark.parametrize("store", ["dict", "json"])
def test_replacement_is_not_a_duplicate_of_its_cancelled_self(store):
    assert_clean(last_decision([dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X")], store))


@pytest.mark.parametrize("store", ["dict", "json"])
def test_order_cancelled_before_it_arrived_is_no_duplicate_source(store):
    assert_no(last_decision([cancel("ORD-X"), dose(0, "ORD-X"), dose(B_2000)], store), DUPLICATE)


# --- 9. the first-dose info finding -----------------------------------------------------------

FIRST_DOSE = [
    pytest.param(lambda: [dose(0)], True, id="no-history-no-regimen-first"),
    pytest.param(lambda: [dose(0, regimen=(1, 1))], True, id="no-history-C1D1-first"),
    pytest.param(lambda: [dose(0, regimen=(3, 1))], False,
                 id="no-history-C3D1-plan-started-before-stream-not-first"),
    pytest.param(lambda: [dose(0, regimen=(1, 8))], False, id="no-history-C1D8-not-first"),
    pytest.param(lambda: [dose(0), dose(7)], False, id="earlier-active-dose-not-first"),
    pytest.param(lambda: [dose(0, "ORD-A"), cancel("ORD-A"), dose(7)], True,
                 id="earlier-dose-cancelled-first"),
    pytest.param(lambda: [dose(7), dose(0)], True,
                 id="only-later-scheduled-dose-arrived-before-first"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X")], True,
                 id="replacement-of-the-only-cancelled-dose-first"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), dose(7)], False,
                 id="after-cancelled-then-replaced-order-not-first"),
    pytest.param(lambda: [dose(0, "ORD-X"), cancel("ORD-X"), dose(0, "ORD-X"), dose(2)], False,
                 id="2d-after-cancelled-then-replaced-order-not-first"),
    pytest.param(lambda: [cancel("ORD-X"), dose(0, "ORD-X"), dose(7)], True,
                 id="after-order-cancelled-before-it-arrived-first"),
    pytest.param(lambda: [dose(0, route="SC"), dose(7)], False,
                 id="after-flagged-dose-not-first"),
]


@pytest.mark.parametrize("store", ["dict", "json"])
@pytest.mark.parametrize("steps,first", FIRST_DOSE)
def test_first_dose_info(steps, first, store):
    d = last_decision(steps(), store)
    if first:
        assert_finding(d, PREMED, category="dose", severity="info")
    else:
        assert_no(d, PREMED)
