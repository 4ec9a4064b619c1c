"""interval.check's quiet path (interval._quiet) agrees with the exact path (exact_check).

check() first asks _quiet whether the order is the common quiet one (a named regimen, a dosing
day of the plan, every other dose 72 h or more before it, the latest of them on a dosing day,
gap and frequency as the plan needs), told without building the timeline; only when it cannot
say so does the exact path run. _quiet may decline (the exact path then decides, and may find
nothing); it must never say "nothing" where the exact path finds something. These properties
run both on random timelines: courses laid out along the plan with doses moved by hours or
days (around the 72 h same-date window and the tolerance), out of order in the list, several at
one instant or on one date in other offsets, off-plan days, missing regimens, split first-dose
parts, unknown and unnamed regimens, a folded older history (its newest dose before, among or
after the kept ones, its slots known, unknown or under another plan), times near year 1 and
year 9999, and frequencies at and around the plan's gaps.
"""
from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, event, given, settings, strategies as st

from rxgate.contract import Frequency, Regimen, parse_order_event
from rxgate.history import ActiveOrder, FoldedOrders
from rxgate.knowledge.models import ScheduleRules
from rxgate.plan import SlotRange
from rxgate.rules import OrderContext
from rxgate.rules import interval as I

from .conftest import KNOWLEDGE, order_event

SETTINGS = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
BASES = {  # (drug, route): a parsed event to vary
    ("isatuximab", "IV"): parse_order_event(json.dumps(order_event())),
    ("daratumumab", "IV"): parse_order_event(json.dumps(order_event(drug="daratumumab", route="IV"))),
    ("daratumumab", "SC"): parse_order_event(json.dumps(order_event(drug="daratumumab", route="SC"))),
}
NAMES = {"isatuximab": [None, "Isa-Pd", "whatever"],
         "daratumumab": [None, "", "DRd", "DVd", "D-VMP", "dara-vmp", "no such regimen"]}


def _schedule(length: int, tolerance: float, *cycles: tuple[int, list[int]]) -> ScheduleRules:
    return ScheduleRules(
        reference="test", names=["Test plan"], cycle_length_days=length, tolerance_days=tolerance,
        short_gap_severity="major", duplicate_severity="major", off_plan_severity="warning",
        frequency_severity="major", cycles=[{"from_cycle": c, "days": d} for c, d in cycles])


# plans with gaps shorter than the 72 h same-date window (the knowledge's are 7 days or more):
# daily, every other day with a tolerance, two days then five
SCHEDULES = [
    _schedule(7, 0, (1, [1, 2, 3, 4, 5, 6, 7])),
    _schedule(8, 0.5, (1, [1, 3, 5, 7]), (2, [1, 2, 3, 4, 5, 6, 7, 8])),
    _schedule(7, 0.25, (1, [1, 2])),
]

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m)))
# moves of a dose from its place in the plan: none, hours, around the 72 h window, days
nudges = st.one_of(
    st.just(dt.timedelta(0)),
    st.sampled_from([dt.timedelta(hours=h) for h in (-73, -72, -71, -49, -25, -24, -23, -1, 1, 23, 24,
                                                      25, 47, 71, 72, 73)]),
    st.sampled_from([dt.timedelta(hours=72, microseconds=-1), dt.timedelta(hours=-72, microseconds=1),
                     dt.timedelta(days=-1, seconds=-1), dt.timedelta(days=-1, seconds=1)]),
    st.integers(min_value=-10 * 24 * 60, max_value=10 * 24 * 60).map(lambda m: dt.timedelta(minutes=m)),
)


def cycle_day(plan, slot: int) -> tuple[int, int]:
    i, cycle, r = plan._locate(slot)
    return cycle, plan.days[i][r]


@st.composite
def regimen_of(draw, plan, slot: int, *, for_order: bool):
    """The (cycle, day) a dose names: its slot's, none, an off-plan day, a split part, weird."""
    how = draw(st.sampled_from(["slot"] * 6 + ["none", "off", "split", "other", "weird"]))
    if how == "slot":
        return cycle_day(plan, slot)
    if how == "none":
        return draw(st.sampled_from([(None, None), (1, None), (None, 1)]))
    if how == "off":
        return draw(st.sampled_from([(1, 2), (1, 3), (2, 8), (3, 9), (1, 29)]))
    if how == "split":
        return (1, 2)
    if how == "other":
        return cycle_day(plan, draw(st.integers(0, 30)))
    return draw(st.sampled_from([(0, 1), (-1, 1), (1, 0), (1000, 366)] if for_order
                                else [(0, 1), (-1, 1), (1, 0), (1000, 366), (10 ** 30, 1)]))


def _in(t: dt.datetime, tz) -> dt.datetime:
    """t written in offset tz (as it is where that is past year 9999 or before year 1)."""
    try:
        return t.astimezone(tz)
    except OverflowError:
        return t


@st.composite
def contexts(draw) -> tuple:
    """(a function building a fresh OrderContext, a description): fresh, since an OrderContext
    keeps what it computes."""
    drug, route = draw(st.sampled_from(sorted(BASES)))
    base = BASES[drug, route]
    mono = KNOWLEDGE.monographs[drug]
    if draw(st.integers(0, 3)) == 0:  # the drug with another default plan
        mono = mono.model_copy(update={"schedule": draw(st.sampled_from(SCHEDULES))})
    name = draw(st.sampled_from(NAMES[drug]))
    rules, _ = mono.regimen_for(name)
    plan = mono.plan_for(rules)
    far = draw(st.sampled_from([None] * 12 + ["year1", "year9999"]))
    origin = {None: T0, "year1": dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
              "year9999": dt.datetime(9999, 11, 1, tzinfo=dt.timezone.utc)}[far]

    def when(slot: int, nudge: dt.timedelta, tz) -> dt.datetime | None:
        try:
            return (origin + dt.timedelta(days=plan.day_number(slot)) + nudge).astimezone(tz)
        except OverflowError:
            return None

    # a course along the plan: increasing slots, some repeated (two orders for one dose)
    slots, s = [], draw(st.integers(0, 6))
    for step in draw(st.lists(st.sampled_from([1] * 6 + [0, 2]), min_size=0, max_size=9)):
        slots.append(s)
        s += step
    new_slot = draw(st.one_of(st.just(s), st.integers(0, s + 2)))  # mostly: the next one
    doses = []
    for k, slot in enumerate(slots):
        nudge = draw(st.one_of(st.just(dt.timedelta(0)), nudges)) if draw(st.booleans()) else dt.timedelta(0)
        tz = draw(st.one_of(st.just(dt.timezone.utc), offsets))
        t = when(slot, nudge, tz)
        if t is None:
            continue
        cycle, day = draw(regimen_of(plan, slot, for_order=False))
        doses.append(ActiveOrder(order_id=f"O{k}", event_id=f"E{k}", drug=drug, code_system=None,
                                 code_value=None, scheduled_for=t, cycle=cycle, day=day))
        if draw(st.integers(0, 5)) == 0:  # another order at that instant, maybe in another offset
            cycle, day = draw(regimen_of(plan, slot, for_order=False))
            doses.append(ActiveOrder(
                order_id=f"O{k}b", event_id=f"E{k}b", drug=drug, code_system=None, code_value=None,
                scheduled_for=_in(t, draw(st.one_of(st.just(t.tzinfo), offsets))),
                cycle=cycle, day=day))
    t = when(new_slot, draw(st.one_of(st.just(dt.timedelta(0)), nudges)),
             draw(st.one_of(st.just(dt.timezone.utc), offsets)))
    if t is None:
        t = origin
    if doses and draw(st.integers(0, 9)) == 0:  # at the instant of another dose, in another offset
        t = _in(draw(st.sampled_from(doses)).scheduled_for, draw(offsets))
    cycle, day = draw(regimen_of(plan, new_slot, for_order=True))
    # the oldest doses folded: the newest of them kept in full
    fold = None
    if doses and draw(st.integers(0, 2)) == 0:
        k = draw(st.one_of(st.just(len(doses)), st.integers(1, len(doses))))
        folded, doses = doses[:k], doses[k:]
        last = folded[-1]
        lo = draw(st.integers(0, 8))
        fold = FoldedOrders(
            last=last, count=draw(st.integers(len(folded), len(folded) + 3)),
            first_at=folded[0].scheduled_for,
            slots=draw(st.sampled_from([None, SlotRange(lo, lo), SlotRange(lo, lo + 1), SlotRange(lo, None)])),
            plan_key=draw(st.sampled_from([plan.key, "another plan"])))
        late = draw(st.integers(0, 5))
        if late == 0:  # kept doses older than the folded one (late arrivals)
            doses = draw(st.permutations(doses + folded[:-1]))
        elif late == 1:  # only older ones: the folded dose is the latest
            doses = folded[:-1]
    if draw(st.integers(0, 3)) == 0:
        doses = draw(st.permutations(doses))  # the list out of time order
    frequency = draw(st.one_of(
        st.none(),
        st.sampled_from([(1, 7, "d"), (1, 1, "wk"), (1, 14, "d"), (1, 2, "wk"), (1, 28, "d"),
                         (2, 7, "d"), (1, 6.99, "d"), (1, 168, "h"), (1, 167, "h"), (1, 21, "d")]),
        st.tuples(st.integers(1, 1000), st.floats(min_value=0.01, max_value=10000),
                  st.sampled_from(["h", "d", "wk"])),
    ))
    regimen = (None if cycle is None and day is None and draw(st.booleans())
               else Regimen.model_construct(name=name, cycle=cycle, day=day))
    if frequency is not None:
        frequency = Frequency(count=frequency[0], period=frequency[1], period_unit=frequency[2])
    order = base.order.model_copy(update={"scheduled_for": t, "regimen": regimen,
                                          "frequency": frequency})
    event = base.model_copy(update={"order": order})

    def make() -> OrderContext:
        return OrderContext.of(event, mono, KNOWLEDGE, list(doses), (fold,) if fold else ())

    return make, (drug, route, name, t, cycle, day, doses, fold, frequency)


def dumped(findings) -> list[dict]:
    return [f.model_dump() for f in findings]


@SETTINGS
@given(case=contexts())
def test_check_agrees_with_the_exact_path(case):
    make, _ = case
    exact = dumped(I.exact_check(make()))
    quiet = I._quiet(make())
    event(f"quiet={quiet} exact={'-'.join(sorted(f['rule_id'].split('.')[-1] for f in exact))}")
    if quiet:
        assert exact == []
    assert dumped(I.check(make())) == exact


def test_a_folded_dose_near_year_9999_is_before_the_kept_history():
    """The newest folded dose and a kept dose after it, both 3 days or more before the order,
    the folded one written in an offset where 3 days after it is past year 9999: the exact path
    says the order may be among the folded doses (a `data` finding); the quiet path must not
    tell it quiet. (A daily plan: the gap to the kept dose is long enough.)"""
    mono = KNOWLEDGE.monographs["isatuximab"].model_copy(update={"schedule": SCHEDULES[0]})
    base = BASES["isatuximab", "IV"]
    east, west = dt.timezone(dt.timedelta(hours=20)), dt.timezone(dt.timedelta(hours=-20))
    folded = ActiveOrder(order_id="F", event_id="EF", drug="isatuximab", code_system=None,
                         code_value=None, scheduled_for=dt.datetime(9999, 12, 29, 12, tzinfo=east),
                         cycle=1, day=1)
    kept = ActiveOrder(order_id="K", event_id="EK", drug="isatuximab", code_system=None,
                       code_value=None, scheduled_for=dt.datetime(9999, 12, 29, 13, tzinfo=east),
                       cycle=1, day=2)
    fold = FoldedOrders(last=folded, count=1, first_at=folded.scheduled_for,
                        slots=SlotRange(0, 0), plan_key=None)
    t = dt.datetime(9999, 12, 31, 20, tzinfo=west)  # 4 days after the folded dose
    order = base.order.model_copy(update={
        "scheduled_for": t, "regimen": Regimen(name="Isa-Pd", cycle=1, day=3), "frequency": None})
    event_ = base.model_copy(update={"order": order})
    for others in ([kept], []):
        exact = dumped(I.exact_check(OrderContext.of(event_, mono, KNOWLEDGE, others, (fold,))))
        assert [f["rule_id"] for f in exact] == ["isatuximab.data.dose_before_kept_history"]
        assert not I._quiet(OrderContext.of(event_, mono, KNOWLEDGE, others, (fold,)))
        assert dumped(I.check(OrderContext.of(event_, mono, KNOWLEDGE, others, (fold,)))) == exact


def _order(mono, t: dt.datetime, cycle: int, day: int, name: str | None = None, frequency=None):
    base = BASES[mono.drug, "IV"]
    order = base.order.model_copy(update={
        "scheduled_for": t, "regimen": Regimen(name=name, cycle=cycle, day=day),
        "frequency": frequency})
    return base.model_copy(update={"order": order})


def _dose(oid: str, drug: str, t: dt.datetime, cycle: int | None, day: int | None) -> ActiveOrder:
    return ActiveOrder(order_id=oid, event_id=f"E{oid}", drug=drug, code_system=None,
                       code_value=None, scheduled_for=t, cycle=cycle, day=day)


def _agree(mono, event_, others, folds=()) -> list[dict]:
    exact = dumped(I.exact_check(OrderContext.of(event_, mono, KNOWLEDGE, others, folds)))
    if I._quiet(OrderContext.of(event_, mono, KNOWLEDGE, others, folds)):
        assert exact == []
    assert dumped(I.check(OrderContext.of(event_, mono, KNOWLEDGE, others, folds))) == exact
    return exact


def test_a_same_date_dose_a_full_gap_before_is_a_duplicate():
    """Under a daily plan, a dose 44 h before on the same date (other offsets) is far enough
    for the plan's gap but a duplicate: not quiet."""
    mono = KNOWLEDGE.monographs["isatuximab"].model_copy(update={"schedule": SCHEDULES[0]})
    east, west = dt.timezone(dt.timedelta(hours=12)), dt.timezone(dt.timedelta(hours=-10))
    prev = _dose("P", "isatuximab", dt.datetime(2026, 3, 2, 0, 30, tzinfo=east), 1, 1)
    event_ = _order(mono, dt.datetime(2026, 3, 2, 23, 0, tzinfo=west), 1, 2)
    assert [f["rule_id"].split(".")[-1] for f in _agree(mono, event_, [prev])] == ["duplicate"]


def test_of_doses_at_one_instant_the_last_listed_is_the_one_before():
    """Two orders at one instant (dose 4 and dose 5 of isatuximab): the exact path's stable sort
    makes the later listed one the dose before, whatever the offsets they are written in."""
    mono = KNOWLEDGE.monographs["isatuximab"]
    when = T0 + dt.timedelta(days=28)
    fourth = _dose("A", "isatuximab", when, 1, 22)  # needs 7 days before the next
    fifth = _dose("B", "isatuximab", when.astimezone(dt.timezone(dt.timedelta(hours=5))), 2, 1)  # 14
    event_ = _order(mono, when + dt.timedelta(days=7), 2, 15)
    assert [f["rule_id"].split(".")[-1] for f in _agree(mono, event_, [fourth, fifth])] == \
        ["too_soon_after_previous"]
    assert _agree(mono, event_, [fifth, fourth]) == []


def test_a_gap_from_a_split_part_counts_from_day_1_once():
    """daratumumab's first dose split over days 1 and 2: the next dose's gap counts from day 1."""
    mono = KNOWLEDGE.monographs["daratumumab"]
    part = _dose("S", "daratumumab", T0 + dt.timedelta(days=1), 1, 2)
    for early, findings in ((1, []), (1.5, ["too_soon_after_previous"])):
        event_ = _order(mono, T0 + dt.timedelta(days=7 - early), 1, 8, name="DRd")
        assert [f["rule_id"].split(".")[-1] for f in _agree(mono, event_, [part])] == findings


def test_a_folded_dose_after_the_kept_ones_is_the_one_before():
    """Kept doses older than the newest folded one (arrived late): the folded dose is the one
    before the order, 3 days before it (too soon), though the latest kept one is 10 days before."""
    mono = KNOWLEDGE.monographs["isatuximab"]
    kept = _dose("K", "isatuximab", T0, 1, 1)
    folded = _dose("F", "isatuximab", T0 + dt.timedelta(days=7), 1, 8)
    for slots in (SlotRange(1, 1), SlotRange(0, None), None):
        fold = FoldedOrders(last=folded, count=2, first_at=T0 - dt.timedelta(days=7),
                            slots=slots, plan_key=mono.plan_for(mono.schedule).key)
        event_ = _order(mono, T0 + dt.timedelta(days=10), 1, 15)
        assert "too_soon_after_previous" in [f["rule_id"].split(".")[-1]
                                             for f in _agree(mono, event_, [kept], (fold,))]


PLANS = [KNOWLEDGE.monographs[d].plan_for(r) for d in ("isatuximab", "daratumumab")
         for r in KNOWLEDGE.monographs[d].all_regimens or [KNOWLEDGE.monographs[d].schedule]]
PLANS += [KNOWLEDGE.monographs["daratumumab"].model_copy(update={"schedule": s}).plan_for(s)
          for s in SCHEDULES]


@SETTINGS
@given(plan=st.sampled_from(PLANS),
       cycle=st.one_of(st.integers(-2, 40), st.integers(-10 ** 30, 10 ** 30)),
       day=st.one_of(st.integers(-2, 50), st.integers(-10 ** 6, 10 ** 6)))
def test_plan_placement_is_what_it_stands_for(plan, cycle, day):
    """Plan.placement (memoised) against the plan's own answers, asked twice (the memo)."""
    slot = plan.slot_of(cycle, day)
    want = None if slot is None else (
        slot, plan.max_gap(slot, slot)[0], plan.split_offset(cycle, day) if plan.split_days else 0,
        plan.is_split_part(cycle, day), plan.max_gap(slot, slot)[0] - plan.rules.tolerance_days)
    for _ in range(2):
        got = plan.placement(cycle, day)
        assert (got if got is None else got[:5]) == want
        if got is not None:  # the gap test as the least time it holds from
            least = got[5]
            for gap in (least, least - dt.timedelta(microseconds=1)):
                if dt.timedelta.min < gap < dt.timedelta.max:
                    assert (gap >= least) == (gap.total_seconds() / 86400 + want[2] >= want[4])


@settings(max_examples=1000, deadline=None)
@given(offset=st.one_of(st.just(0), st.integers(-3, 30)),
       least=st.one_of(st.floats(allow_nan=True), st.floats(-40, 40), st.integers(-40, 40)),
       gaps=st.lists(st.one_of(st.timedeltas(), st.integers(-10 ** 6, 10 ** 6)), max_size=8))
def test_least_time_is_the_days_test(offset, least, gaps):
    """least_time of a test of days (as the interval rules' gap test) holds exactly from it on:
    at it, a microsecond before it, and at any time; a test that raises gets `failed`."""
    from rxgate.plan import least_time
    at = least_time(lambda gap: gap.total_seconds() / 86400 + offset >= least, None)
    one = dt.timedelta(microseconds=1)
    for step in [0, -1, 1, *gaps]:
        try:
            gap = step if isinstance(step, dt.timedelta) else at + step * one
        except OverflowError:  # past timedelta's range
            continue
        if dt.timedelta.min < gap < dt.timedelta.max:
            assert (gap >= at) == (gap.total_seconds() / 86400 + offset >= least)
    assert least_time(lambda gap: gap >= None, dt.timedelta.max) == dt.timedelta.max
    assert least_time(lambda gap: gap >= None, dt.timedelta.min) == dt.timedelta.min


def test_quiet_reads_the_regimens_of_its_own_knowledge():
    """_quiet reads the _Regimens its order's knowledge keeps (ctx.kept): an order under another
    knowledge (a reload) or another monograph reads its own."""
    from rxgate.knowledge import load_knowledge
    other = load_knowledge()
    mono = KNOWLEDGE.monographs["isatuximab"]
    event_ = _order(mono, T0, 1, 1, name="Isa-Pd")
    for k, drug in (("a", "isatuximab"), ("b", "isatuximab"), ("a", "daratumumab"),
                    ("a", "isatuximab")):
        knowledge = KNOWLEDGE if k == "a" else other
        m = knowledge.monographs[drug]
        # (daratumumab has several regimens, none named Isa-Pd: the exact path decides)
        ctx = OrderContext.of(event_, m, knowledge, [])
        assert I._quiet(ctx) == (drug == "isatuximab")
        assert ctx.kept["interval"] is knowledge.per_monograph("interval", m, I._Regimens)
