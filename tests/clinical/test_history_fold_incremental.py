"""PatientHistory.fold() right after a fold for the same knowledge and bounds looks only at the
drugs of the orders placed since (a speed-up, issue 10). Whatever the events in between
(placements, re-deliveries, re-placements, cancellations before and after their order, times
out of order, several drugs and trade names of one, a history read back from its record, another
knowledge, other bounds), the history must be exactly what the long way (every drug) makes."""
from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from rxgate.contract import validate_order_event
from rxgate.history import FoldBounds, PatientHistory
from rxgate.knowledge import load_knowledge
from rxgate.plan import SlotRange

from .conftest import KNOWLEDGE, T0, cancel_event, iso, order_event

OTHER_KNOWLEDGE = load_knowledge()  # equal, but another object: its names are resolved anew
DRUGS = ["isatuximab", "Sarclisa", "daratumumab", "Darzalex", "dexamethasone", "pomalidomide"]
ORDER_IDS = [f"ORD-{i}" for i in range(12)]
BOUNDS = [FoldBounds(keep=1, lookback=dt.timedelta(days=3), max_kept=2),
          FoldBounds(keep=2, lookback=dt.timedelta(days=10), max_kept=3),
          FoldBounds(keep=3, lookback=dt.timedelta(days=40), max_kept=8),
          FoldBounds(keep=2, lookback=dt.timedelta(days=10), max_kept=3)]  # equal to [1], not it

_events: dict = {}


def _placed(order_id: str, drug: str, day: int, late: int, n: int):
    key = ("p", order_id, drug, day, late, n)
    if key not in _events:
        doc = order_event(order_id=order_id, drug=drug, scheduled_for=day, event_id=f"E-{key}")
        # occurred at most days before (or, late, after) the dose: events out of time order
        doc["occurred_at"] = iso(T0 + dt.timedelta(days=day - late, minutes=n))
        _events[key] = validate_order_event(json.loads(json.dumps(doc)))
    return _events[key]


def _cancelled(order_id: str, day: int, n: int):
    key = ("c", order_id, day, n)
    if key not in _events:
        doc = cancel_event(order_id, event_id=f"C-{key}",
                           occurred_at=iso(T0 + dt.timedelta(days=day, minutes=n)))
        _events[key] = validate_order_event(json.loads(json.dumps(doc)))
    return _events[key]


# place/cancel: then fold as the processor does, or not (several placements before the next
# fold); fold: with one of BOUNDS or the default of the run (-1), and this or another knowledge
step = st.one_of(
    st.tuples(st.just("place"), st.sampled_from(ORDER_IDS), st.sampled_from(DRUGS),
              st.integers(0, 60), st.integers(-3, 5), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("cancel"), st.sampled_from(ORDER_IDS), st.integers(0, 60), st.integers(0, 3),
              st.booleans()),
    st.tuples(st.just("fold"), st.sampled_from([-1, -1, 0, 1, 2, 3]), st.booleans()),
    st.tuples(st.just("reload")),
)


def _record(history: PatientHistory) -> str:
    return json.dumps(history.to_dict())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60), st.sampled_from(BOUNDS[:3]))
def test_a_fold_of_the_placed_drugs_only_is_the_fold_of_every_drug(steps, default_bounds):
    fast, slow = PatientHistory(), PatientHistory()
    for s in steps:
        if s[0] == "place":
            _, order_id, drug, day, late, n, fold_after = s
            event = _placed(order_id, drug, day, late, n)
        elif s[0] == "cancel":
            _, order_id, day, n, fold_after = s
            event = _cancelled(order_id, day, n)
        elif s[0] == "reload":  # a history read back from its record knows no fold yet
            fast = PatientHistory.from_dict(json.loads(_record(fast)))
            slow = PatientHistory.from_dict(json.loads(_record(slow)))
            continue
        else:
            _, which, other = s
            knowledge = OTHER_KNOWLEDGE if other else KNOWLEDGE
            bounds = default_bounds if which < 0 else BOUNDS[which]
            fast.fold(knowledge, bounds)
            slow._folded_for = None  # the long way, every time
            slow.fold(knowledge, bounds)
            assert slow == fast and _record(slow) == _record(fast)
            continue
        if event.event_id in fast.seen_events:
            continue  # (the processor does not apply an event it has seen)
        fast.apply(event)
        slow.apply(event)
        assert slow == fast
        if not fold_after:
            continue
        fast.fold(KNOWLEDGE, default_bounds)
        slow._folded_for = None
        slow.fold(KNOWLEDGE, default_bounds)
        assert slow == fast and _record(slow) == _record(fast)
        assert list(slow.folded) == list(fast.folded)
        assert list(slow.active_orders) == list(fast.active_orders)
        for fold in fast.folded.values():  # its slots as SlotRange.__init__ makes them
            if fold.slots is not None:
                made = SlotRange(fold.slots.lo, fold.slots.hi)
                assert fold.slots == made and hash(fold.slots) == hash(made)
                assert vars(fold.slots) == vars(made) and repr(fold.slots) == repr(made)


def test_a_history_that_is_not_folded_for_long_keeps_no_list_of_its_placements():
    history = PatientHistory()
    history.fold(KNOWLEDGE)
    for day in range(70):
        history.apply(_placed(f"ORD-L{day}", "isatuximab", day, 0, 0))
    assert history._folded_for is None  # the next fold takes the long way
    history.fold(KNOWLEDGE)
    assert len(history.active_orders) == 64 and history._folded_for[4] == []  # max_kept
