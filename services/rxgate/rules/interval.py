"""Interval rules: when a dose may be given relative to the patient's other doses of the drug.

Monograph section used: [schedule]. The plan is a list of dosing days per cycle (isatuximab:
cycle 1 on days 1/8/15/22, every later cycle on days 1/15, 28-day cycles). Laid end to end the
plan's dosing days are "slots" 0, 1, 2, ...; the gap a dose requires before the next one is the
distance from its slot to the next slot (isatuximab: 7 days after each of the first four doses,
14 days after the fifth and every later one).

A dose's slot comes from its `regimen` (cycle, day) when that is a dosing day of the plan, so a
plan that started before the stream did is placed correctly; otherwise it is the slot after the
dose before it (or slot 0 for the patient's first dose). All times are `scheduled_for`; a
calendar day is the date as written in `scheduled_for`, in its own offset. Events that arrive
out of order are checked against the doses on both sides.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..contract import Finding
from ..knowledge.models import ScheduleRules
from . import OrderContext, days_between, days_text, num

PERIOD_DAYS = {"h": 1 / 24, "d": 1.0, "wk": 7.0}


class Plan:
    """The monograph's dosing plan: which (cycle, day) pairs are dosing days, and their slots."""

    def __init__(self, rules: ScheduleRules) -> None:
        self.rules = rules

    def days_of(self, cycle: int) -> list[int]:
        chosen = self.rules.cycles[0]
        for entry in self.rules.cycles:
            if entry.from_cycle <= cycle:
                chosen = entry
        return chosen.days

    def slot_of(self, cycle: int, day: int) -> int | None:
        """The slot index of a dosing day, or None if (cycle, day) is not a dosing day."""
        days = self.days_of(cycle)
        if day not in days:
            return None
        return sum(len(self.days_of(c)) for c in range(1, cycle)) + days.index(day)

    def day_number(self, slot: int) -> int:
        """Days since cycle 1 day 1 of the slot (0 for slot 0)."""
        cycle, remaining = 1, slot
        while remaining >= len(self.days_of(cycle)):
            remaining -= len(self.days_of(cycle))
            cycle += 1
        return (cycle - 1) * self.rules.cycle_length_days + self.days_of(cycle)[remaining] - 1

    def gap_after(self, slot: int) -> int:
        """Days required between the dose in `slot` and the next dose."""
        return self.day_number(slot + 1) - self.day_number(slot)

    def describe(self, cycle: int) -> str:
        return f"cycle {cycle}: days {', '.join(str(d) for d in self.days_of(cycle))}"


@dataclass(frozen=True)
class Dose:
    order_id: str | None  # None for the order being checked
    scheduled_for: dt.datetime
    cycle: int | None
    day: int | None

    @property
    def date(self) -> dt.date:
        return self.scheduled_for.date()  # as written, in its own offset


def check(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.schedule
    if rules is None:
        return []
    plan = Plan(rules)
    drug = ctx.monograph.drug
    regimen = ctx.order.regimen
    this = Dose(None, ctx.scheduled_for, regimen.cycle if regimen else None,
                regimen.day if regimen else None)
    others = [Dose(o.order_id, o.scheduled_for, o.cycle, o.day) for o in ctx.same_drug_orders]
    findings: list[Finding] = []

    same_day = sorted((d for d in others if d.date == this.date), key=lambda d: d.scheduled_for)
    for dup in same_day:
        findings.append(ctx.finding(
            "interval", "duplicate", rules.duplicate_severity,
            f"A second {drug} order for {this.date.isoformat()}: order {dup.order_id} is already "
            f"active for that day (scheduled {dup.scheduled_for.isoformat()})",
            {"date": this.date.isoformat(), "other_order_id": dup.order_id,
             "other_scheduled_for": dup.scheduled_for.isoformat()}, rules.reference))

    # One dose per calendar day on the timeline; same-day duplicates are reported above.
    timeline: list[Dose] = []
    for d in sorted([*others, this], key=lambda d: (d.scheduled_for, d.order_id is None)):
        if timeline and timeline[-1].date == d.date:
            if d is this:
                timeline[-1] = this  # keep the order being checked on its own day
            continue
        timeline.append(d)
    slots = _slots(plan, timeline)
    at = timeline.index(this)
    this_slot = slots[at]

    if this.cycle is not None and this.day is not None and plan.slot_of(this.cycle, this.day) is None:
        findings.append(ctx.finding(
            "interval", "off_plan_day", rules.off_plan_severity,
            f"Cycle {this.cycle} day {this.day} is not a dosing day of the {drug} plan "
            f"({plan.describe(this.cycle)}; {rules.cycle_length_days}-day cycles)",
            {"cycle": this.cycle, "day": this.day, "plan_days": plan.days_of(this.cycle),
             "cycle_length_days": rules.cycle_length_days}, rules.reference))

    if at > 0:
        before = timeline[at - 1]
        short = _short_gap(plan, before, slots[at - 1], this)
        if short:
            findings.append(ctx.finding(
                "interval", "too_soon_after_previous", rules.short_gap_severity,
                f"Scheduled {days_text(short['gap_days'])} after the previous {drug} dose (order "
                f"{before.order_id}, {before.scheduled_for.isoformat()}); dose {slots[at - 1] + 1} "
                f"of the plan needs {short['required_gap_days']} days before the next "
                f"(tolerance {short['tolerance_days']} day)",
                {**short, "previous_order_id": before.order_id,
                 "previous_scheduled_for": before.scheduled_for.isoformat(),
                 "previous_dose_number": slots[at - 1] + 1}, rules.reference))
    if at + 1 < len(timeline):
        after = timeline[at + 1]
        short = _short_gap(plan, this, this_slot, after)
        if short:
            findings.append(ctx.finding(
                "interval", "too_close_to_next", rules.short_gap_severity,
                f"Scheduled {days_text(short['gap_days'])} before the patient's next {drug} dose "
                f"(order {after.order_id}, {after.scheduled_for.isoformat()}); as dose "
                f"{this_slot + 1} of the plan it needs {short['required_gap_days']} days before "
                f"the next (tolerance {short['tolerance_days']} day)",
                {**short, "next_order_id": after.order_id,
                 "next_scheduled_for": after.scheduled_for.isoformat(),
                 "dose_number": this_slot + 1}, rules.reference))

    frequency = ctx.order.frequency
    if frequency is not None:
        every_days = frequency.period * PERIOD_DAYS[frequency.period_unit] / frequency.count
        allowed = plan.gap_after(this_slot)
        if every_days < allowed:
            findings.append(ctx.finding(
                "interval", "frequency", rules.frequency_severity,
                f"Frequency {frequency.count} every {num(frequency.period)} {frequency.period_unit} "
                f"(a dose every {num(every_days, 1)} days) is more often than the plan allows at "
                f"dose {this_slot + 1}: one dose every {allowed} days",
                {"dose_every_days": num(every_days, 2), "allowed_every_days": allowed,
                 "dose_number": this_slot + 1}, rules.reference))
    return findings


def _short_gap(plan: Plan, earlier: Dose, earlier_slot: int, later: Dose) -> dict | None:
    """The gap evidence when `later` is more than the tolerance short of what `earlier` needs."""
    required = plan.gap_after(earlier_slot)
    gap = days_between(earlier.scheduled_for, later.scheduled_for)
    if gap >= required - plan.rules.tolerance_days:
        return None
    return {"gap_days": num(gap, 4), "required_gap_days": required,
            "tolerance_days": num(plan.rules.tolerance_days)}


def _slots(plan: Plan, timeline: list[Dose]) -> list[int]:
    """Each dose's slot: from its regimen when that is a dosing day, else the one after the last."""
    slots: list[int] = []
    for d in timeline:
        placed = plan.slot_of(d.cycle, d.day) if d.cycle is not None and d.day is not None else None
        slots.append(placed if placed is not None else (slots[-1] + 1 if slots else 0))
    return slots
