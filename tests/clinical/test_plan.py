"""The dosing plan as arithmetic (issue 8): same answers as walking the plan cycle by cycle,
for any cycle in bounded time.

The reference below walks the plan the obvious way (the way rxgate did before issue 8); it is
only run on small cycles. Huge cycles run in a thread with a generous join timeout: the test
fails only if the code walks (cycle 10^6 took 1.5 s, 2^31 about 50 minutes), never on timing.
"""
from __future__ import annotations

import json
import threading

import pytest

from rxgate.contract import to_json
from rxgate.knowledge.models import ScheduleRules
from rxgate.plan import Plan

from .conftest import DROP, KNOWLEDGE, Pharmacy, assert_finding, order_event, rule_ids

ISA = Plan(KNOWLEDGE.monographs["isatuximab"].schedule)
THREE = Plan(ScheduleRules(
    reference="test", cycle_length_days=21, tolerance_days=0.5, short_gap_severity="major",
    duplicate_severity="major", off_plan_severity="warning", frequency_severity="major",
    cycles=[{"from_cycle": 1, "days": [1, 2, 8, 15]}, {"from_cycle": 3, "days": [1, 8]},
            {"from_cycle": 6, "days": [21]}]))


def walk_days_of(plan: Plan, cycle: int) -> list[int]:
    chosen = plan.rules.cycles[0]
    for entry in plan.rules.cycles:
        if entry.from_cycle <= cycle:
            chosen = entry
    return chosen.days


def walk_slot_of(plan: Plan, cycle: int, day: int) -> int | None:
    days = walk_days_of(plan, cycle)
    if day not in days:
        return None
    return sum(len(walk_days_of(plan, c)) for c in range(1, cycle)) + days.index(day)


def walk_day_number(plan: Plan, slot: int) -> int:
    cycle, remaining = 1, slot
    while remaining >= len(walk_days_of(plan, cycle)):
        remaining -= len(walk_days_of(plan, cycle))
        cycle += 1
    return (cycle - 1) * plan.rules.cycle_length_days + walk_days_of(plan, cycle)[remaining] - 1


def walk_gap(plan: Plan, slot: int) -> int:
    return walk_day_number(plan, slot + 1) - walk_day_number(plan, slot)


@pytest.mark.parametrize("plan", [ISA, THREE], ids=["isatuximab", "three-entry"])
def test_arithmetic_matches_walking_the_plan(plan):
    for cycle in range(1, 12):
        for day in range(1, plan.rules.cycle_length_days + 2):
            assert plan.slot_of(cycle, day) == walk_slot_of(plan, cycle, day), (cycle, day)
        assert plan.days_of(cycle) == walk_days_of(plan, cycle)
    gaps = [walk_gap(plan, s) for s in range(80)]
    assert [plan.day_number(s) for s in range(80)] == [walk_day_number(plan, s) for s in range(80)]
    assert [plan.gap_after(s) for s in range(80)] == gaps
    for lo in range(40):
        for hi in range(lo, 40):
            want = max(gaps[lo:hi + 1])
            assert plan.max_gap(lo, hi) == (want, lo + gaps[lo:hi + 1].index(want)), (lo, hi)
        want = max(gaps[lo:])
        assert plan.max_gap(lo, None) == (want, lo + gaps[lo:].index(want)), lo


def test_isatuximab_plan_gaps():
    assert [ISA.gap_after(s) for s in range(8)] == [7, 7, 7, 7, 14, 14, 14, 14]
    assert ISA.longest_gap == 14
    assert ISA.max_gap(2, 3) == (7, 2) and ISA.max_gap(3, 4) == (14, 4) and ISA.max_gap(0, None) == (14, 4)


def within(seconds: float, fn):
    """fn() in a thread; its result, or a failure if it has not returned in `seconds`."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s: the plan is walked"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("cycle", [10 ** 6, 2 ** 31, 2 ** 63, 10 ** 400])
def test_a_huge_cycle_is_arithmetic(cycle):
    def compute():
        slot = ISA.slot_of(cycle, 15)
        return slot, ISA.day_number(slot), ISA.gap_after(slot), ISA.max_gap(slot - 3, None), \
            THREE.slot_of(cycle, 21), ISA.slot_of(cycle, 8)

    slot, day_number, gap, widest, three, off = within(10, compute)
    assert slot == 4 + (cycle - 2) * 2 + 1
    assert day_number == (cycle - 1) * 28 + 14
    assert gap == 14 and widest == (14, slot - 3)
    assert three == 2 * 4 + 3 * 2 + (cycle - 6)
    assert off is None


@pytest.mark.parametrize("cycle,day", [(2 ** 63, 15), (10 ** 400, 1), (10 ** 6, 8)])
def test_an_order_with_a_huge_cycle_gets_a_decision(cycle, day):
    def decide_two():
        p = Pharmacy()
        # beyond the contract's bound (cycle <= 1000): the plan must not walk even so
        first = p.place_beyond_bounds(order_event(scheduled_for=0, regimen=(1, day),
                                                  frequency=DROP, order_id="ORD-HUGE"),
                                      regimen={"cycle": cycle})
        nxt = p.place(order_event(scheduled_for=7, regimen=DROP, frequency=(1, 7, "d")))
        return first, nxt

    first, nxt = within(10, decide_two)
    for d in (first, nxt):
        assert "rxgate.data.checks_failed" not in rule_ids(d), [f.message for f in d.findings]
        json.loads(to_json(d))  # serialisable
    if day == 8:  # not a dosing day after cycle 1
        assert "isatuximab.interval.off_plan_day" in rule_ids(first)
    else:
        assert "isatuximab.interval.off_plan_day" not in rule_ids(first)
        # a dose a week after a dose deep in the two-weekly phase is too soon
        assert_finding(nxt, "isatuximab.interval.too_soon_after_previous", category="interval",
                       severity="major", evidence={"required_gap_days": 14})
        assert_finding(nxt, "isatuximab.interval.frequency", category="interval", severity="major",
                       evidence={"allowed_every_days": 14})


@pytest.mark.parametrize("count,period,unit,every", [
    (10 ** 400, 1, "d", 0), (1, 1e308, "wk", None), (3, 5e-324, "h", 0),
])
def test_extreme_frequencies_get_a_finding_not_a_defect(count, period, unit, every):
    # beyond the contract's bounds (count <= 1000, period 0.01..10000): safe even so
    d = Pharmacy().place_beyond_bounds(
        order_event(scheduled_for=0, regimen=(1, 1),
                    frequency={"count": 1, "period": 1, "period_unit": unit}),
        frequency={"count": count, "period": period})
    assert "rxgate.data.checks_failed" not in rule_ids(d)
    json.loads(to_json(d))
    if every is None:  # once in 1e308 weeks: not more often than the plan allows
        assert "isatuximab.interval.frequency" not in rule_ids(d)
    else:
        assert_finding(d, "isatuximab.interval.frequency", category="interval", severity="major",
                       evidence={"dose_every_days": every, "allowed_every_days": 7})


def test_chain_at_is_the_chain_at_that_dose():
    """plan.chain_at (what the checks use: only the doses back to the nearest one whose range
    stands on its own) gives what plan.chain gives for every dose, on random timelines with
    same-day doses, doses off the plan, split parts and a folded anchor."""
    import datetime as dt
    import random

    from rxgate.plan import SlotRange, chain, chain_at

    class D:
        def __init__(self, scheduled_for, cycle, day):
            self.scheduled_for, self.cycle, self.day = scheduled_for, cycle, day

    split = Plan(KNOWLEDGE.monographs["isatuximab"].schedule, (1, 2))
    rng = random.Random(20261126)
    start = dt.datetime(2025, 1, 6, 9, tzinfo=dt.timezone.utc)
    for _ in range(3000):
        plan = rng.choice([ISA, THREE, split])
        n = rng.randint(1, 9)
        hours = sorted(rng.choice([0, 5, 24, 24 * 7, 24 * 14]) for _ in range(n))
        t, doses = start, []
        for h in hours:
            t = t + dt.timedelta(hours=h)
            placed = rng.random() < 0.5
            doses.append(D(t, rng.randint(1, 8) if placed else rng.choice([None, 3]),
                           rng.choice([1, 2, 8, 15, 22]) if placed else rng.choice([None, 4])))
        anchor = anchor_slots = None
        earlier_unknown = rng.random() < 0.2
        if rng.random() < 0.5:
            anchor = rng.choice(doses)
            lo = rng.randint(0, 12)
            anchor_slots = rng.choice([SlotRange(lo, lo), SlotRange(lo, lo + 2), SlotRange(lo, None)])
        want = chain(plan, doses, anchor=anchor, anchor_slots=anchor_slots,
                     earlier_unknown=earlier_unknown)
        for i, r in enumerate(want):
            assert chain_at(plan, doses, i, anchor=anchor, anchor_slots=anchor_slots,
                            earlier_unknown=earlier_unknown) == (r.lo, r.hi)
