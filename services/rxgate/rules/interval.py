"""Interval rules: when a dose may be given relative to the patient's other doses of the drug.

Monograph sections used: [schedule] (the default regimen) and [[regimens]]: the order's
regimen.name selects the regimen; a drug with several and an order naming none (or an unknown
one) gets a `data` finding and the default is used. A phase may have its own cycle length
(plan.py), and the parts of a split first dose (cycle 1 days 1, 2, ...: [dose]
split_first_dose) are one dose of the plan. The plan is a list of dosing days per cycle (isatuximab:
cycle 1 on days 1/8/15/22, every later cycle on days 1/15, 28-day cycles). Laid end to end the
plan's dosing days are "slots" 0, 1, 2, ...; the gap a dose requires before the next one is the
distance from its slot to the next slot (isatuximab: 7 days after each of the first four doses,
14 days after the fifth and every later one). The arithmetic is in plan.py.

A dose's slot comes from its `regimen` (cycle, day) when that is a dosing day of the plan, so a
plan that started before the stream did is placed correctly; otherwise it follows the dose
before it (slot 0 for the patient's first dose). Every active order counts as a dose, whatever
its decision; when same-day orders make the count a reading (one dose per order, or one per
calendar day), the slot is a range and the larger gap it can require is used (plan.py).
All times are `scheduled_for`; a calendar day is the date as written in `scheduled_for`, in
its own offset. A dose is checked against the nearest active dose on each side of it in time
on another calendar day (a second order for the same day is a duplicate; every order of a
neighbouring day counts, not just one per day), so events that arrive out of order are checked
against the doses on both sides.

The patient's older orders may be folded (history.FoldedOrders): the newest folded dose is
still known in full, with its slot, so a dose in order is checked exactly. A dose scheduled
before that (or within 3 days after it, where a same-day order may be folded) arrived too late
to be checked against every neighbour: it gets a `data` finding, and is checked against what
is known.
"""
from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from operator import attrgetter

from ..contract import Finding
from ..knowledge.memo import memoised
from ..plan import Plan, chain_at
from . import OrderContext, days_between, days_text, num

PERIOD_DAYS = {"h": 1 / 24, "d": 1.0, "wk": 7.0}
EXACT_PERIOD_DAYS = {"h": Fraction(1, 24), "d": Fraction(1), "wk": Fraction(7)}
# Two times with the same local date are less than 72 h apart (offsets are within +-24 h).
SAME_DATE_SPAN = dt.timedelta(days=3)


class Dose:
    """The order being checked (or the newest folded dose) as a dose of the plan; the patient's
    other active orders are read as they are (an ActiveOrder has the same fields, offset aside)."""

    __slots__ = ("order_id", "scheduled_for", "cycle", "day", "offset")

    def __init__(self, order_id: str | None, scheduled_for: dt.datetime, cycle: int | None,
                 day: int | None, offset: int = 0) -> None:
        self.order_id = order_id  # None for the order being checked
        self.scheduled_for = scheduled_for
        self.cycle = cycle
        self.day = day
        self.offset = offset  # a later part of a split first dose: days after the dose's day 1

    @property
    def date(self) -> dt.date:
        return self.scheduled_for.date()  # as written, in its own offset


_scheduled_for = attrgetter("scheduled_for")


class _Regimens:
    """A monograph's regimen and its plan per regimen name as written (Knowledge.per_monograph):
    (rules, status) as Monograph.regimen_for gives them, and Monograph.plan_for(rules); and what
    _quiet reads of an order's regimen (name, cycle, day) as written (placed_of)."""

    def __init__(self, knowledge, mono) -> None:
        self.mono = mono
        self.by_name: dict[str | None, tuple] = {}  # bounded (memoised)
        self.placed: dict[tuple, object] = {}  # (name, cycle, day) -> placed_of; bounded (memoised)

    def of(self, name: str | None) -> tuple:
        rules, status = self.mono.regimen_for(name)
        return rules, status, None if rules is None else self.mono.plan_for(rules)

    def placed_of(self, name, cycle, day) -> object:
        """What _quiet needs of an order's regimen: True when the regimen has no plan (no
        interval rule applies); None when _quiet cannot tell the order quiet from the regimen
        alone (an unnamed or unknown regimen, no cycle or day, a day off the plan or a later
        part of a split first dose); else (the plan, plan.placement(cycle, day))."""
        rules, status, plan = (self.of(name) if type(name) is not str and name is not None
                               else _regimen_of(self, name))
        if rules is None:
            return True
        if status == "unnamed" or status == "unknown":
            return None
        if cycle is None or day is None:
            return None
        placed = plan.placement(cycle, day)
        if placed is None or placed[3]:  # off the plan, or a later part of a split first dose
            return None
        return plan, placed



def _regimen_of(regimens: _Regimens, name: str | None) -> tuple:
    try:
        return regimens.by_name[name]
    except KeyError:
        return memoised(regimens.by_name, name, regimens.of, name, limit=1000)


def _regimen(ctx: OrderContext, name: str | None) -> tuple:
    """(rules, status, plan) of the regimen an order names (plan None when rules is)."""
    regimens = ctx.knowledge.per_monograph("interval", ctx.monograph, _Regimens)
    if type(name) is not str and name is not None:
        return regimens.of(name)
    return _regimen_of(regimens, name)


def check(ctx: OrderContext) -> list[Finding]:
    if _quiet(ctx):  # most orders: nothing to find, told without the timeline
        return []
    return exact_check(ctx)


def _quiet(ctx: OrderContext) -> bool:
    """True only when exact_check(ctx) finds nothing; False when that is not certain (the exact
    path then decides). Told without building and sorting the timeline, for the common order:
    named (or the only) regimen, on a dosing day of the plan and not a later part of a split
    first dose; every other active dose (the newest folded one included) 72 h or more before it,
    the latest of them not the folded one but on a dosing day of the plan itself; gap to it and
    frequency as the plan needs. Then the exact path's timeline ends [..., before, this], with
    `before` the latest other dose (the last of equals: the stable sort keeps list order, the
    folded one first), no dose on this order's date (less than 72 h from it) nor after it, both
    doses in their own slots, and no finding is made: no duplicate, no off-plan day, no next
    dose; the kept-history test (_before_end_of: near year 9999 it holds whatever the times),
    the gap and the frequency tests below are the exact path's (_short_gap with offset 0 for
    this order, max_gap of one slot: Plan.placement). Times that do not compare (naive and
    aware) or overflow are left to the exact path. What the order's regimen alone tells is kept
    per (name, cycle, day) as written (_Regimens.placed_of); the dose before is placed by the
    plan's memo of Plan.placement, read first.
    The event is the contract's models or struct_event's structs: its fields are read by
    attribute."""
    order = ctx.order
    regimen = order.regimen
    if regimen is None:
        return False
    try:  # ctx.knowledge.per_monograph("interval", ctx.monograph, _Regimens), kept read first
        regimens = ctx.kept["interval"]
    except KeyError:
        regimens = ctx.knowledge.per_monograph("interval", ctx.monograph, _Regimens)
    name, cycle, day = regimen.name, regimen.cycle, regimen.day
    # the regimen's part (_Regimens.placed_of), kept per (name, cycle, day) as written when
    # they are a text (or None) and two ints: keys that compare equal only when they are equal
    if type(cycle) is int and type(day) is int and (type(name) is str or name is None):
        key = (name, cycle, day)
        try:
            got = regimens.placed[key]
        except KeyError:
            got = memoised(regimens.placed, key, regimens.placed_of, name, cycle, day,
                           limit=10_000)
    else:
        got = regimens.placed_of(name, cycle, day)
    if got is None:
        return False
    if got is True:
        return True  # no plan: no interval rule applies
    plan, placed = got
    t = ctx.scheduled_for
    others = ctx.same_drug_orders
    # (most orders: no older orders folded, told without the context's cached property)
    fold = ctx.same_drug_fold if ctx.folds else None
    try:
        if others:
            # the last of the latest: max(reversed(others), key=_scheduled_for) (which keeps
            # the first it meets of equal ones), as a loop (cheaper for a few doses; it compares
            # each dose with the latest before it alike, so raises alike)
            before = others[0]
            latest = before.scheduled_for
            for other in others:
                when = other.scheduled_for
                if when >= latest:
                    before, latest = other, when
            if not latest <= t - SAME_DATE_SPAN:
                return False  # a dose within 72 h (maybe on this date) or after this one
            if fold:
                if fold.last.scheduled_for > latest:
                    return False  # the folded dose is the one before: its slots are a chain's
                # _before_end_of inline (its OverflowError, near year 9999, is a decline too)
                if t < fold.last.scheduled_for + SAME_DATE_SPAN:
                    return False
            c, d = before.cycle, before.day
            if type(c) is int and type(d) is int:
                try:  # plan.placement(c, d), its memo read first
                    was = plan._placements[(c, d)]
                except KeyError:
                    was = plan.placement(c, d)
            else:
                if c is None or d is None:
                    return False
                was = plan.placement(c, d)
            if was is None:
                return False  # off the plan: it follows the doses before it (a chain)
            # _short_gap(plan, before, its offset, (slot, slot), this, 0): gap + offset - 0,
            # with the gap in days (days_between); Plan.placement gives the test as the least
            # time it holds from (was[5]: least_time)
            if not t - latest >= was[5]:  # (t - latest).total_seconds() / 86400 + was[2] >= was[4]
                return False
        elif fold:
            return False  # the folded dose is the one before: its slots are a chain's
    except (TypeError, OverflowError):  # times that do not compare, or t near year 1
        return False
    frequency = order.frequency
    if frequency is not None:
        try:  # _every_days, its first line (the rest where that raises)
            every = frequency.period * PERIOD_DAYS[frequency.period_unit] / frequency.count
        except (OverflowError, ZeroDivisionError):
            every = _every_days(frequency.count, frequency.period, frequency.period_unit)
        if not every >= placed[1]:
            return False
    return True


def exact_check(ctx: OrderContext) -> list[Finding]:
    """The interval rules, the exact path: every order check() does not tell quiet."""
    regimen = ctx.order.regimen
    monograph = ctx.monograph
    rules, status, plan = _regimen(ctx, regimen.name if regimen else None)
    if rules is None:
        return []
    findings: list[Finding] = (_regimen_finding(ctx, rules, status)
                               if status == "unnamed" or status == "unknown" else [])
    drug = monograph.drug
    cycle, day = (regimen.cycle, regimen.day) if regimen else (None, None)
    if plan.split_days and plan.is_split_part(cycle, day):
        product = ctx.product_match.product
        if product is None or monograph.dose_rules(product).split_first_dose is None:
            # this product's dose is not given split: the day is off the plan, and the dose
            # follows the one before it (its gap to day 1 is checked)
            findings.append(ctx.finding(
                "interval", "off_plan_day", rules.off_plan_severity,
                f"Cycle {cycle} day {day} is a dosing day of the {drug} plan only for a first dose "
                f"given split, which {product.name if product else 'this order'} is not "
                f"({plan.describe(1)})",
                {"cycle": cycle, "day": day, "plan_days": plan.days_of(1),
                 "split_days": list(plan.split_days),
                 "cycle_length_days": plan.length_of(1)}, rules.reference))
            cycle = day = None
    scheduled_for = ctx.scheduled_for
    this = Dose(None, scheduled_for, cycle, day,
                plan.split_offset(cycle, day) if plan.split_days else 0)
    this_date = scheduled_for.date()
    # the other active doses as they are (an ActiveOrder reads like a Dose; its offset, if it is
    # a split part, is computed where a gap is measured)
    others = ctx.same_drug_orders
    fold = ctx.same_drug_fold
    anchor = (Dose(fold.last.order_id, fold.last.scheduled_for, fold.last.cycle, fold.last.day,
                   _offset(plan, fold.last))
              if fold else None)

    # Every active dose on the timeline, in time; the order being checked after any other at
    # the same instant, the newest folded dose (if any) before them (a stable sort of the list
    # in that order: plan.sorted_doses with ranks 0, 1, 2).
    timeline = [anchor, *others, this] if anchor else [*others, this]
    timeline.sort(key=_scheduled_for)
    at = len(timeline) - 1
    while timeline[at] is not this:
        at -= 1
    # the other doses of this calendar day (in time: the stable sort keeps their order), and the
    # nearest dose on each side on another day (-1 / len(timeline): none)
    same_day, prev_at, next_at = _same_day(timeline, at, scheduled_for, this_date)
    for dup in same_day:
        findings.append(ctx.finding(
            "interval", "duplicate", rules.duplicate_severity,
            f"A second {drug} order for {this_date.isoformat()}: order {dup.order_id} is already "
            f"active for that day (scheduled {dup.scheduled_for.isoformat()})",
            {"date": this_date.isoformat(), "other_order_id": dup.order_id,
             "other_scheduled_for": dup.scheduled_for.isoformat()}, rules.reference))

    # on a dosing day of the plan, the dose is in its slot (chain_at's first step), else it
    # follows the doses before it
    placed = plan.slot_of(cycle, day) if cycle is not None and day is not None else None
    this_slots = (placed, placed) if placed is not None else _slots_at(plan, timeline, at, anchor, fold)

    if fold is not None and anchor is not None and _before_end_of(scheduled_for, anchor.scheduled_for):
        findings.append(ctx.missing(
            "dose_before_kept_history",
            f"Scheduled {scheduled_for.isoformat()}, among or before the patient's older "
            f"{drug} doses ({fold.count} order(s) up to {anchor.scheduled_for.isoformat()}), "
            f"which rxgate keeps only as a count: the gaps to them cannot all be checked",
            {"scheduled_for": scheduled_for.isoformat(), "folded_orders": fold.count,
             "folded_up_to": anchor.scheduled_for.isoformat()}, rules.reference))

    if cycle is not None and day is not None and placed is None:
        findings.append(ctx.finding(
            "interval", "off_plan_day", rules.off_plan_severity,
            f"Cycle {this.cycle} day {this.day} is not a dosing day of the {drug} plan "
            f"({plan.describe(this.cycle)}; {plan.length_of(this.cycle)}-day cycles)",
            {"cycle": this.cycle, "day": this.day, "plan_days": plan.days_of(this.cycle),
             "cycle_length_days": plan.length_of(this.cycle)}, rules.reference))

    # The nearest active dose on each side in time, on another calendar day: an order for the
    # same day is a duplicate (above), not a gap; every order of a neighbouring day counts.
    if prev_at >= 0:
        before = timeline[prev_at]
        before_slots = _slots_at(plan, timeline, prev_at, anchor, fold)
        short = _short_gap(plan, before, _offset(plan, before), before_slots, this, this.offset)
        if short:
            number = short.pop("dose_number")
            findings.append(ctx.finding(
                "interval", "too_soon_after_previous", rules.short_gap_severity,
                f"Scheduled {days_text(short['gap_days'])} after the previous {drug} dose (order "
                f"{before.order_id}, {before.scheduled_for.isoformat()}); dose {_text(number)} "
                f"of the plan needs {short['required_gap_days']} days before the next "
                f"(tolerance {short['tolerance_days']} day){_uncertain(before_slots)}",
                {**short, "previous_order_id": before.order_id,
                 "previous_scheduled_for": before.scheduled_for.isoformat(),
                 "previous_dose_number": _evidence(number),
                 **_range_evidence("previous_dose_numbers", before_slots)}, rules.reference))
    if next_at < len(timeline):
        after = timeline[next_at]
        short = _short_gap(plan, this, this.offset, this_slots, after, _offset(plan, after))
        if short:
            number = short.pop("dose_number")
            findings.append(ctx.finding(
                "interval", "too_close_to_next", rules.short_gap_severity,
                f"Scheduled {days_text(short['gap_days'])} before the patient's next {drug} dose "
                f"(order {after.order_id}, {after.scheduled_for.isoformat()}); as dose "
                f"{_text(number)} of the plan it needs {short['required_gap_days']} days before "
                f"the next (tolerance {short['tolerance_days']} day){_uncertain(this_slots)}",
                {**short, "next_order_id": after.order_id,
                 "next_scheduled_for": after.scheduled_for.isoformat(),
                 "dose_number": _evidence(number),
                 **_range_evidence("dose_numbers", this_slots)}, rules.reference))

    frequency = ctx.order.frequency
    if frequency is not None:
        every_days = _every_days(frequency.count, frequency.period, frequency.period_unit)
        allowed, slot = plan.max_gap(this_slots[0], this_slots[1])
        if not every_days >= allowed:  # NaN included: fail closed
            shown = _shown(every_days)
            findings.append(ctx.finding(
                "interval", "frequency", rules.frequency_severity,
                f"Frequency {_text(frequency.count)} every {_text(num(frequency.period))} "
                f"{frequency.period_unit} (a dose every "
                f"{'?' if shown is None else num(shown, 1)} days) is more often than the plan "
                f"allows at dose {_text(slot + 1)}: one dose every {allowed} days"
                f"{_uncertain(this_slots)}",
                {"dose_every_days": None if shown is None else num(shown, 2),
                 "allowed_every_days": allowed, "dose_number": _evidence(slot + 1),
                 **_range_evidence("dose_numbers", this_slots)}, rules.reference))
    return findings


def _slots_at(plan: Plan, timeline: list, i: int, anchor: Dose | None,
              fold) -> tuple[int, int | None]:
    """chain_at(plan, timeline, i, anchor=anchor, anchor_slots=<fold's slots under plan>), its
    most common answer first: a dose (not the anchor) on a dosing day of the plan is in its slot."""
    d = timeline[i]
    if d is not anchor and d.cycle is not None and d.day is not None:
        placed = plan.slot_of(d.cycle, d.day)
        if placed is not None:
            return placed, placed
    return chain_at(plan, timeline, i, anchor=anchor,
                    anchor_slots=fold.slots_under(plan) if fold else None)


def _same_day(timeline: list, at: int, t: dt.datetime,
              date: dt.date) -> tuple[list, int, int]:
    """The doses of `timeline` (sorted in time) other than timeline[at] (at `t`, on `date`)
    on `date`, in timeline order; the index of the nearest one before `at` on another date
    (-1: none), and after it (len(timeline): none). Only doses less than SAME_DATE_SPAN from
    `t` can share its date, so the scan stops at the first one as far."""
    try:
        earliest = t - SAME_DATE_SPAN
    except OverflowError:  # t near year 1: every earlier time is within the span
        earliest = None
    try:
        latest = t + SAME_DATE_SPAN
    except OverflowError:  # t near year 9999
        latest = None
    same: list = []
    prev_at = -1
    j = at - 1
    while j >= 0:
        when = timeline[j].scheduled_for
        if earliest is not None and when <= earliest:
            if prev_at < 0:
                prev_at = j
            break
        if when.date() == date:
            same.append(timeline[j])
        elif prev_at < 0:
            prev_at = j
        j -= 1
    same.reverse()
    n = len(timeline)
    next_at = n
    j = at + 1
    while j < n:
        when = timeline[j].scheduled_for
        if latest is not None and when >= latest:
            if next_at == n:
                next_at = j
            break
        if when.date() == date:
            same.append(timeline[j])
        elif next_at == n:
            next_at = j
        j += 1
    return same, prev_at, next_at


def _offset(plan: Plan, dose) -> int:
    """A dose's offset (a later part of a split first dose: days after the dose's day 1; 0
    under a plan with no split days)."""
    if type(dose) is Dose:
        return dose.offset
    return plan.split_offset(dose.cycle, dose.day) if plan.split_days else 0


def _short_gap(plan: Plan, earlier, earlier_offset: int, earlier_slots: tuple[int, int | None],
               later, later_offset: int) -> dict | None:
    """The gap evidence when `later` is more than the tolerance short of what `earlier` needs."""
    lo, hi = earlier_slots
    required, slot = plan.max_gap(lo, hi)
    gap = days_between(earlier.scheduled_for, later.scheduled_for)
    if later_offset and lo == hi == 0:
        # the parts of a split first dose: one dose of the plan, on consecutive days
        required, slot, counted = later_offset - earlier_offset, 0, gap
    else:
        # a part of a split first dose counts its gap from the dose's day 1
        counted = gap + earlier_offset - later_offset
    if counted >= required - plan.rules.tolerance_days:
        return None
    evidence = {"gap_days": num(gap, 4), "required_gap_days": required,
                "tolerance_days": num(plan.rules.tolerance_days), "dose_number": slot + 1}
    if counted != gap:
        evidence["gap_from_split_dose_day_1_days"] = num(counted, 4)
    return evidence


def _regimen_finding(ctx: OrderContext, rules, status: str) -> list[Finding]:
    """A `data` finding when a drug has several regimens and the order does not say which: the
    checks use the default regimen ([schedule]) and say so, but the order is not approved on it."""
    if status not in ("unnamed", "unknown"):
        return []
    mono = ctx.monograph
    regimen = ctx.order.regimen
    known = [{"names": r.names, "cycle_length_days": r.cycle_length_days}
             for r in mono.all_regimens]
    written = regimen.name if regimen else None
    said = ("names no regimen" if status == "unnamed"
            else f"names regimen {written!r}, which is none of them")
    return [ctx.missing(
        f"regimen_{status}",
        f"{mono.drug} has {len(known)} regimens with different plans "
        f"({'; '.join(f'{r.names[0]}: {r.cycle_length_days}-day cycles' for r in mono.all_regimens)}) "
        f"and the order {said}: the interval checks used the default, {rules.names[0]}; name the "
        f"regimen in regimen.name",
        {"regimen_name": written, "used_regimen": rules.names[0], "regimens": known},
        rules.reference)]


def _before_end_of(t: dt.datetime, folded_up_to: dt.datetime) -> bool:
    """Whether `t` is before, or may share a calendar day with, the newest folded dose."""
    try:
        return t < folded_up_to + SAME_DATE_SPAN
    except OverflowError:  # folded_up_to near year 9999: so is everything after it
        return True


def _uncertain(slots: tuple[int, int | None]) -> str:
    if slots[0] == slots[1]:
        return ""
    return ("; its place in the plan is uncertain (same-day orders, or older doses kept only as "
            "a count), so the strictest reading is used")


def _range_evidence(key: str, slots: tuple[int, int | None]) -> dict:
    lo, hi = slots
    if lo == hi:
        return {}
    return {key: [_evidence(lo + 1), None if hi is None else _evidence(hi + 1)]}


BIG = 10 ** 18


def _evidence(n: int) -> int | str:
    """An integer for evidence: as is, or as text when too large for JSON consumers."""
    return n if -BIG < n < BIG else _text(n)


def _text(n: int | float) -> str:
    """A number as text, never failing on a huge int (str() refuses over 4,300 digits)."""
    if isinstance(n, int) and not -BIG < n < BIG:
        digits = n.bit_length() * 0.30103
        return f"about 10^{int(digits)}"
    return str(n)


def _every_days(count: int, period: float, unit: str) -> float | Fraction:
    """Days between doses for a frequency, as main computed it, exact when floats overflow."""
    try:
        return period * PERIOD_DAYS[unit] / count
    except (OverflowError, ZeroDivisionError):
        if not math.isfinite(period):
            return period
        return Fraction(period) * EXACT_PERIOD_DAYS[unit] / count if count else float("nan")


def _shown(x: float | Fraction) -> float | None:
    try:
        f = float(x)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None
