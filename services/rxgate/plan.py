"""A monograph's dosing plan as arithmetic, and the slot chain of a patient's doses.

The plan ([schedule] of a monograph) lists the dosing days of each cycle; an entry holds from
its `from_cycle` until the next entry, the last one for ever. Laid end to end its dosing days
are "slots" 0, 1, 2, ... (isatuximab: slots 0-3 are cycle 1 days 1/8/15/22, slots 4-5 cycle 2
days 1/15, ...). Every question here is answered by arithmetic on the entries (a bisect and a
divmod), never by walking cycles, so any cycle or slot number, however large (Python ints),
takes the same bounded time.

The slot chain (`chain`) places a patient's doses of one drug in the plan. A dose whose
regimen (cycle, day) is a dosing day of the plan sits in that slot. Any other dose follows the
dose before it in time, and how many slots it moves on is a reading, not a fact, when the two
share a calendar day:

- `hi` counts every active order as a dose (two orders on one day are two doses);
- `lo` counts a calendar day once (the second order of a day takes the slot of the first).

A dose's slot is therefore a range [lo, hi] (equal unless same-day orders came before it) and
the checks use the largest gap any slot of the range requires (`Plan.max_gap`): whichever way
the duplicates are counted, the stricter reading wins. `hi` may be None, "unbounded", when the
doses before a dose are not known one by one (see history.FoldedOrders).
"""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Protocol, Sequence

from .knowledge.memo import memoised
from .knowledge.models import ScheduleRules

MEMO_LIMIT = 10_000  # answers a Plan keeps (cleared when full: inputs as written are unbounded)


class Plan:
    """The monograph's dosing plan: which (cycle, day) pairs are dosing days, and their slots."""

    def __init__(self, rules: ScheduleRules, split_days: Sequence[int] = ()) -> None:
        self.rules = rules
        self.length = rules.cycle_length_days
        self.starts = [c.from_cycle for c in rules.cycles]  # first cycle of each entry
        self.days = [list(c.days) for c in rules.cycles]
        self.lengths = [rules.length_of(c) for c in rules.cycles]  # cycle length of each entry
        # days of cycle 1 on which parts of a split first dose are given (slot 0), e.g. (1, 2)
        self.split_days = tuple(split_days)
        # first slot of each entry: entry i holds (starts[i+1] - starts[i]) cycles of days[i];
        # first day (0-based, since cycle 1 day 1) of each entry's first cycle
        self.first_slots = [0]
        self.first_days = [0]
        for i in range(len(self.starts) - 1):
            self.first_slots.append(
                self.first_slots[-1] + (self.starts[i + 1] - self.starts[i]) * len(self.days[i]))
            self.first_days.append(
                self.first_days[-1] + (self.starts[i + 1] - self.starts[i]) * self.lengths[i])
        # answers already given (a plan is immutable once built): slot_of by (cycle, day) and
        # max_gap by (lo, hi), for int arguments only, bounded like the knowledge's memos
        self._slots: dict = {}
        self._max_gaps: dict = {}
        self._placements: dict = {}  # (read first by interval._quiet, for int arguments)
        self._key: str | None = None

    @property
    def key(self) -> str:
        """A fingerprint of the plan: slots computed under one plan are valid under the same key."""
        if self._key is None:
            self._key = self._fingerprint()
        return self._key

    def _fingerprint(self) -> str:
        key = f"{self.length}|" + ";".join(
            f"{s}:{','.join(map(str, d))}" + (f"/{n}" if n != self.length else "")
            for s, d, n in zip(self.starts, self.days, self.lengths))
        return key + (f"|split {','.join(map(str, self.split_days))}" if self.split_days else "")

    def _entry_of_cycle(self, cycle: int) -> int:
        return max(bisect.bisect_right(self.starts, cycle) - 1, 0)

    def days_of(self, cycle: int) -> list[int]:
        return self.days[self._entry_of_cycle(cycle)]

    def length_of(self, cycle: int) -> int:
        """The length in days of a cycle (phases may have their own)."""
        return self.lengths[self._entry_of_cycle(cycle)]

    def is_split_part(self, cycle: int | None, day: int | None) -> bool:
        """Whether (cycle, day) is a later part of a split first dose (cycle 1 day 2, ...)."""
        return cycle == 1 and day is not None and day != 1 and day in self.split_days

    def split_offset(self, cycle: int | None, day: int | None) -> int:
        """Days a split part is given after day 1 of its dose (0 for any other dose)."""
        return day - 1 if self.is_split_part(cycle, day) else 0  # type: ignore[operator]

    def slot_of(self, cycle: int, day: int) -> int | None:
        """The slot of a dosing day, or None if (cycle, day) is not a dosing day of the plan."""
        if type(cycle) is int and type(day) is int:
            key = (cycle, day)
            try:
                return self._slots[key]  # memoised()'s first step, inline: most calls
            except KeyError:
                return memoised(self._slots, key, self._slot_of, cycle, day, limit=MEMO_LIMIT)
        return self._slot_of(cycle, day)

    def placement(self, cycle: int, day: int) -> tuple[int, int, int, bool, float,
                                                        dt.timedelta] | None:
        """For (cycle, day) on a dosing day of the plan: (its slot, the gap required after it
        (max_gap(slot, slot)[0]), split_offset(cycle, day) (0 under a plan with no split days),
        is_split_part(cycle, day), that gap less rules.tolerance_days, and the least time
        `gap` with gap.total_seconds() / 86400 + that offset >= that gap less the tolerance
        (least_time: the same test as a comparison of times)), what the interval rules ask of
        a dose in its slot; None off the plan. Memoised for int
        arguments (a plan is immutable: the answer depends on nothing but (cycle, day))."""
        if type(cycle) is not int or type(day) is not int:
            return self._placement(cycle, day)
        key = (cycle, day)
        try:
            return self._placements[key]
        except KeyError:
            return memoised(self._placements, key, self._placement, cycle, day, limit=MEMO_LIMIT)

    def _placement(self, cycle: int, day: int) -> tuple[int, int, int, bool, float,
                                                         dt.timedelta] | None:
        slot = self.slot_of(cycle, day)
        if slot is None:
            return None
        required = self.max_gap(slot, slot)[0]
        offset = self.split_offset(cycle, day) if self.split_days else 0
        least = required - self.rules.tolerance_days
        return (slot, required, offset, self.is_split_part(cycle, day), least,
                # (should the test raise: a time no gap reaches, so _quiet declines)
                least_time(lambda gap: gap.total_seconds() / 86400 + offset >= least,
                           dt.timedelta.max))

    def _slot_of(self, cycle: int, day: int) -> int | None:
        if cycle < 1:
            return None
        if self.is_split_part(cycle, day):
            return 0
        i = self._entry_of_cycle(cycle)
        days = self.days[i]
        if day not in days:
            return None
        return self.first_slots[i] + (cycle - self.starts[i]) * len(days) + days.index(day)

    def _locate(self, slot: int) -> tuple[int, int, int]:
        """(entry, cycle, index of the day within the cycle) of a slot >= 0."""
        i = bisect.bisect_right(self.first_slots, slot) - 1
        k, r = divmod(slot - self.first_slots[i], len(self.days[i]))
        return i, self.starts[i] + k, r

    def day_number(self, slot: int) -> int:
        """Days since cycle 1 day 1 of the slot (0 for slot 0)."""
        i, cycle, r = self._locate(slot)
        return self.first_days[i] + (cycle - self.starts[i]) * self.lengths[i] + self.days[i][r] - 1

    def gap_after(self, slot: int) -> int:
        """Days required between the dose in `slot` and the next dose."""
        return self.day_number(slot + 1) - self.day_number(slot)

    def max_gap(self, lo: int, hi: int | None) -> tuple[int, int]:
        """(the largest gap_after of any slot in [lo, hi], the lowest slot that requires it).

        hi None is unbounded. Within one entry the gaps repeat with the cycle (the gap after a
        slot depends only on its day's place in the cycle, except after the entry's very last
        slot), so at most one cycle's worth of slots per entry is looked at, plus that last slot.
        """
        if type(lo) is int and (hi is None or type(hi) is int):
            key = (lo, hi)
            try:
                return self._max_gaps[key]  # memoised()'s first step, inline: most calls
            except KeyError:
                return memoised(self._max_gaps, key, self._max_gap, lo, hi, limit=MEMO_LIMIT)
        return self._max_gap(lo, hi)

    def _max_gap(self, lo: int, hi: int | None) -> tuple[int, int]:
        candidates: list[int] = []
        for i, first in enumerate(self.first_slots):
            last = self.first_slots[i + 1] - 1 if i + 1 < len(self.first_slots) else None
            a = max(lo, first)
            b = last if hi is None else (hi if last is None else min(hi, last))
            if b is not None and a > b:
                continue
            if last is not None and a > last:
                continue
            n = len(self.days[i])
            end = a + n - 1 if b is None else min(a + n - 1, b)
            candidates.extend(range(a, end + 1))
            if last is not None and b is not None and b == last and last > end:
                candidates.append(last)
        best_gap, best_slot = -1, lo
        for s in candidates:  # ascending: ties keep the lowest slot
            g = self.gap_after(s)
            if g > best_gap:
                best_gap, best_slot = g, s
        return best_gap, best_slot

    @property
    def longest_gap(self) -> int:
        return self.max_gap(0, None)[0]

    def describe(self, cycle: int) -> str:
        i = self._entry_of_cycle(cycle)
        label = self.rules.cycles[i].label
        return (f"cycle {cycle}: days {', '.join(str(d) for d in self.days[i])}"
                + (f", {label}" if label else ""))


# timedelta's range in microseconds
_MIN_US = -999_999_999 * 86_400 * 10 ** 6
_MAX_US = (999_999_999 * 86_400 + 86_399) * 10 ** 6 + 999_999


def least_time(holds: Callable[[dt.timedelta], bool], failed: dt.timedelta) -> dt.timedelta:
    """The least time t (a timedelta, to the microsecond) for which holds(t), where holds is
    False up to some time and True from it on (a test of the form f(t) >= x or f(t) > x, with
    f made of t.total_seconds() and float arithmetic that keeps order, as the rules' tests of
    days are): `holds(t)` is then `t >= least_time(holds, ...)`, a comparison of times. When
    holds is True for no time, a time no difference of two datetimes reaches (timedelta.max);
    when it raises, `failed`: the caller's choice of the answer that makes its fast path
    decline (its exact path then decides)."""
    lo, hi = _MIN_US, _MAX_US
    try:
        if not holds(dt.timedelta(microseconds=hi)):
            return dt.timedelta.max
        if holds(dt.timedelta(microseconds=lo)):
            return dt.timedelta.min
        while hi - lo > 1:  # holds(hi), not holds(lo)
            mid = (lo + hi) // 2
            if holds(dt.timedelta(microseconds=mid)):
                hi = mid
            else:
                lo = mid
    except Exception:  # (a bound that does not compare, say)
        return failed
    return dt.timedelta(microseconds=hi)


@dataclass(frozen=True)
class SlotRange:
    lo: int
    hi: int | None  # None: unbounded (the doses before are not all known)

    def next(self, same_day: bool) -> "SlotRange":
        return SlotRange(self.lo if same_day else self.lo + 1, None if self.hi is None else self.hi + 1)

    def widened(self, extra: int) -> "SlotRange":
        return SlotRange(self.lo, None if self.hi is None else self.hi + extra)

    UNKNOWN: ClassVar["SlotRange"]  # set below: nothing known


SlotRange.UNKNOWN = SlotRange(0, None)


class DoseLike(Protocol):
    scheduled_for: dt.datetime
    cycle: int | None
    day: int | None


def chain(plan: Plan, doses: Sequence[DoseLike], *, anchor: DoseLike | None = None,
          anchor_slots: SlotRange | None = None, earlier_unknown: bool = False) -> list[SlotRange]:
    """The slot range of each of `doses` (sorted in time; `anchor`, if given, is one of them).

    `anchor` is a dose whose range is already known (`anchor_slots`: the newest folded dose),
    with the doses before it not known one by one; doses of `doses` before the anchor came in
    late and each may push it one slot on (hence `widened`). `earlier_unknown`: there were
    doses before all of these that are not known (a first dose then starts UNKNOWN, not at 0).
    """
    ranges: list[SlotRange] = []
    before_anchor = 0
    seen_anchor = anchor is None
    prev: DoseLike | None = None
    for d in doses:
        if d is anchor:
            assert anchor_slots is not None
            r = anchor_slots.widened(before_anchor)
            seen_anchor = True
        else:
            placed = (plan.slot_of(d.cycle, d.day)
                      if d.cycle is not None and d.day is not None else None)
            if placed is not None:
                r = SlotRange(placed, placed)
            elif prev is None:
                r = SlotRange.UNKNOWN if (earlier_unknown or anchor is not None) else SlotRange(0, 0)
            else:
                r = ranges[-1].next(same_day=prev.scheduled_for.date() == d.scheduled_for.date())
            if not seen_anchor:
                before_anchor += 1
        ranges.append(r)
        prev = d
    return ranges


def chain_at(plan: Plan, doses: Sequence[DoseLike], i: int, *, anchor: DoseLike | None = None,
             anchor_slots: SlotRange | None = None,
             earlier_unknown: bool = False) -> tuple[int, int | None]:
    """`chain(plan, doses, ...)[i]` as a (lo, hi) pair, without placing every dose: a dose on a
    dosing day of the plan, the anchor and the first dose have ranges that do not depend on the
    doses before them, so only the doses back to the nearest such one are looked at."""
    j = i
    while True:  # back to a dose whose range stands on its own
        d = doses[j]
        if d is anchor:
            assert anchor_slots is not None
            # widened by the doses before the anchor (all of doses[:j]: the anchor is there once)
            lo, hi = anchor_slots.lo, None if anchor_slots.hi is None else anchor_slots.hi + j
            break
        cycle, day = d.cycle, d.day
        placed = plan.slot_of(cycle, day) if cycle is not None and day is not None else None
        if placed is not None:
            lo = hi = placed
            break
        if j == 0:
            if earlier_unknown or anchor is not None:
                lo, hi = SlotRange.UNKNOWN.lo, SlotRange.UNKNOWN.hi
            else:
                lo = hi = 0
            break
        j -= 1
    if j < i:  # then on, each following the one before it (SlotRange.next)
        date = doses[j].scheduled_for.date()
        for k in range(j + 1, i + 1):
            prev_date, date = date, doses[k].scheduled_for.date()
            if prev_date != date:
                lo += 1
            if hi is not None:
                hi += 1
    return lo, hi


def sort_key(d: DoseLike, rank: int) -> tuple[dt.datetime, int]:
    """Doses in time; at the same instant the folded anchor first (0), kept doses (1), the new (2)."""
    return (d.scheduled_for, rank)


def sorted_doses(items: Iterable[tuple[DoseLike, int]]) -> list[DoseLike]:
    return [d for d, _ in sorted(items, key=lambda dr: sort_key(*dr))]
