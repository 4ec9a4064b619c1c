"""interval._same_day, which looks only at the doses less than 72 h from the order being checked,
agrees with a scan of the whole timeline: the other doses on the order's calendar date (as
written, in each time's own offset), in time, and the nearest dose on another date on each side.
Times in offsets up to +-23:59 (two times of one local date up to 71:58 apart), times exactly
72 h apart, many doses at one instant, and times near year 1 and year 9999 (where the 72 h
window cannot be computed).
"""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings, strategies as st

from rxgate.rules.interval import Dose, _same_day

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m)))


@st.composite
def timelines(draw) -> tuple[list[Dose], int]:
    base = draw(st.sampled_from([
        dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone.utc),
        dt.datetime(1, 1, 2, 3, tzinfo=dt.timezone.utc),          # t - 72 h overflows
        dt.datetime(9999, 12, 30, 20, tzinfo=dt.timezone.utc),    # t + 72 h overflows
    ]))
    step = st.one_of(
        st.integers(min_value=-6 * 24 * 60, max_value=6 * 24 * 60).map(lambda m: dt.timedelta(minutes=m)),
        st.sampled_from([dt.timedelta(hours=72), -dt.timedelta(hours=72), dt.timedelta(0),
                         dt.timedelta(hours=72, microseconds=-1), dt.timedelta(hours=-72, microseconds=1)]),
    )
    # a local time on the base's date or a day either side, in any offset: two times of one
    # date up to 71:58 apart
    local = st.tuples(st.integers(-1, 1), st.sampled_from([
        dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 0)]), offsets)
    times = []
    for delta in draw(st.lists(st.one_of(step, local), min_size=1, max_size=12)):
        tz = draw(offsets)
        try:
            if isinstance(delta, tuple):
                days, clock, tz = delta
                t = dt.datetime.combine(base.date() + dt.timedelta(days=days), clock, tz)
            else:
                t = (base + delta).astimezone(tz)
        except OverflowError:
            continue
        times.append(t)
    if not times:
        times = [base]
    doses = [Dose(f"O{i}", t, None, None) for i, t in enumerate(times)]
    at = draw(st.integers(min_value=0, max_value=len(doses) - 1))
    this = doses[at]
    timeline = [*doses[:at], *doses[at + 1:], this]  # the order checked last among equals
    timeline.sort(key=lambda d: d.scheduled_for)
    return timeline, timeline.index(this)


def whole_scan(timeline: list[Dose], at: int) -> tuple[list[Dose], int, int]:
    date = timeline[at].scheduled_for.date()
    same = [d for i, d in enumerate(timeline) if i != at and d.scheduled_for.date() == date]
    prev_at = at - 1
    while prev_at >= 0 and timeline[prev_at].scheduled_for.date() == date:
        prev_at -= 1
    next_at = at + 1
    while next_at < len(timeline) and timeline[next_at].scheduled_for.date() == date:
        next_at += 1
    return same, prev_at, next_at


@SETTINGS
@given(case=timelines())
def test_same_day_agrees_with_a_scan_of_the_whole_timeline(case):
    timeline, at = case
    this = timeline[at]
    assert _same_day(timeline, at, this.scheduled_for, this.scheduled_for.date()) == \
        whole_scan(timeline, at)
