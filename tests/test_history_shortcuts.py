"""PatientHistory's shortcuts (issue 10) against the full computations they stand for.

`ActiveOrder.from_event` and `_fold` store each field into the new object's dict themselves;
`fold` takes the orders as one group when all are of one drug resolved for the knowledge (the
order just placed resolved first), sorts each group in place and subtracts its lookback inline;
`_forget_old` picks the seen ids to forget by a loop in its own frame. The reference below is
the code before those shortcuts (the dataclasses' __init__, a generic grouping loop, a copy
sorted, comprehensions). Random courses of placements, re-deliveries, cancellations (before and
after their orders) and duplicates, folds under three knowledge objects (one that reads every
drug as another) and several bounds, retentions and seen limits go through both; the histories
must be equal, in the same dict order (of their fields too), and write the same record.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from rxgate.contract import OrderCancelled, validate_order_event
from rxgate.history import (
    ActiveOrder,
    CancelRecord,
    FoldBounds,
    FoldedOrders,
    PatientHistory,
    canonical_drug,
)
from rxgate.knowledge import load_knowledge
from rxgate.plan import SlotRange, chain_at
from rxgate.struct_event import parse_struct_event

from .clinical.conftest import DROP, KNOWLEDGE, T0, cancel_event, order_event

def _minus(t: dt.datetime, span: dt.timedelta) -> dt.datetime | None:
    """t - span, or None when that is before year 1 (as the full computations had it)."""
    try:
        return t - span
    except OverflowError:
        return None


OTHER_KNOWLEDGE = load_knowledge()  # equal, but another object: every order resolved again


class Lumping:
    """A knowledge that reads every drug as isatuximab (the real one's plan): orders resolved
    under another knowledge must be resolved again, not grouped by the name they had."""

    monographs = KNOWLEDGE.monographs

    @staticmethod
    def canonical_name(name, code_system=None, code_value=None) -> str:
        return "isatuximab"


LUMPING = Lumping()
DRUGS = [{"name": "isatuximab", "code": {"system": "rxnorm", "value": "2283218"}},
         {"name": "Isatuximab "}, {"name": "isatuximab"}, {"name": "daratumumab"},
         {"name": "bendamustine"}, {"name": "no-such-drug"}]
OFFSETS = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=2)),
           dt.timezone(dt.timedelta(hours=-5, minutes=-30))]
BOUNDS = [FoldBounds(), FoldBounds(keep=2, lookback=dt.timedelta(days=10), max_kept=3),
          FoldBounds(keep=1, lookback=dt.timedelta(days=0), max_kept=0),
          FoldBounds(keep=3, lookback=dt.timedelta(days=400), max_kept=5)]


# --- the full computations, as they were before the shortcuts --------------------------------

def ref_from_event(event, after_cancel: CancelRecord | None) -> ActiveOrder:
    order = event.order
    code, regimen = order.drug.code, order.regimen
    return ActiveOrder(
        order_id=order.order_id, event_id=event.event_id, drug=order.drug.name.strip().lower(),
        code_system=code.system if code else None, code_value=code.value if code else None,
        scheduled_for=order.scheduled_for, cycle=regimen.cycle if regimen else None,
        day=regimen.day if regimen else None,
        after_cancel_event_id=after_cancel.event_id if after_cancel else None,
        after_cancel_at=after_cancel.at if after_cancel else None,
        weight_kg=event.patient.weight_kg, dose_value=order.dose.value,
        dose_unit=order.dose.unit)


def ref_forget_old(h: PatientHistory, retention: dt.timedelta, max_seen: int) -> None:
    horizon = _minus(h.newest_event_at, retention)
    seen, cancelled = h.seen_events, h.cancelled_orders
    if horizon is not None:
        for key in [k for k, at in seen.items() if at < horizon]:
            del seen[key]
        if cancelled:
            for key in [k for k, v in cancelled.items() if v.at < horizon]:
                del cancelled[key]
    if len(seen) > max_seen:
        for key, _ in sorted(seen.items(), key=lambda kv: kv[1])[: len(seen) - max_seen]:
            del seen[key]
    if len(cancelled) > max_seen:
        for key, _ in sorted(cancelled.items(), key=lambda kv: kv[1].at)[
                : len(cancelled) - max_seen]:
            del cancelled[key]


def ref_apply(h: PatientHistory, event, retention: dt.timedelta, max_seen: int) -> None:
    at = event.occurred_at
    h.seen_events[event.event_id] = at
    if h.newest_event_at is None or at > h.newest_event_at:
        h.newest_event_at = at
    if isinstance(event, OrderCancelled) or type(event).__name__ == "OrderCancelled":
        h._cancel(event)
    else:
        h._place(event)
    ref_forget_old(h, retention, max_seen)


def ref_fold(h: PatientHistory, knowledge, bounds: FoldBounds) -> None:
    keep, lookback, max_kept = bounds.keep, bounds.lookback, max(bounds.max_kept, bounds.keep)
    if len(h.active_orders) <= keep:
        if not h.folded:
            return
        try:
            newest_folded = max(f.last.scheduled_for for f in h.folded.values())
            if all(o.scheduled_for >= newest_folded for o in h.active_orders.values()):
                return
        except TypeError:
            pass
    groups: dict[str, list[ActiveOrder]] = {}
    for o in h.active_orders.values():
        groups.setdefault(canonical_drug(o, knowledge), []).append(o)
    for drug, orders in groups.items():
        prior = h.folded.get(drug)
        if len(orders) <= keep and prior is None:
            continue
        in_time = sorted(orders, key=lambda o: o.scheduled_for)
        size = len(in_time)
        horizon = _minus(in_time[-1].scheduled_for, lookback)
        n = 0
        while size - n > keep and (
                size - n > max_kept
                or (horizon is not None and in_time[n].scheduled_for < horizon)):
            n += 1
        if prior is not None:
            last_at = prior.last.scheduled_for
            while n < size and in_time[n].scheduled_for < last_at:
                n += 1
        if n == 0:
            continue
        ref__fold(h, knowledge, drug, prior, in_time[:n])


def ref__fold(h: PatientHistory, knowledge, drug: str, prior: FoldedOrders | None,
              orders: list[ActiveOrder]) -> None:
    monograph = knowledge.monographs.get(drug)
    plan = monograph.plan_for(monograph.schedule) if monograph and monograph.schedule else None
    doses = sorted([prior.last, *orders] if prior else orders, key=lambda o: o.scheduled_for)
    slots = None
    if plan is not None:
        slots = SlotRange(*chain_at(plan, doses, len(doses) - 1,
                                    anchor=prior.last if prior else None,
                                    anchor_slots=prior.slots_under(plan) if prior else None))
    first_at = min(o.scheduled_for for o in orders)
    h.folded[drug] = FoldedOrders(
        last=doses[-1], count=(prior.count if prior else 0) + len(orders),
        first_at=min(first_at, prior.first_at) if prior else first_at, slots=slots,
        plan_key=plan.key if plan else None)
    for o in orders:
        del h.active_orders[o.order_id]


# --- random courses ---------------------------------------------------------------------------

# whole days mostly (ties in time, times right at a horizon), any time sometimes
times = st.tuples(st.integers(-30, 30) | st.floats(-200, 200, allow_nan=False),
                  st.sampled_from(OFFSETS))
place = st.tuples(st.just("place"), st.integers(0, 12), times, times, st.sampled_from(DRUGS),
                  st.booleans())
cancel = st.tuples(st.just("cancel"), st.integers(0, 14), times)
fold = st.tuples(st.just("fold"), st.sampled_from(BOUNDS),
                 st.sampled_from([KNOWLEDGE, KNOWLEDGE, OTHER_KNOWLEDGE, LUMPING]))
again = st.tuples(st.just("again"), st.integers(0, 30))  # an event delivered again
operations = st.lists(st.one_of(place, place, place, place, cancel, fold, fold, again),
                      min_size=1, max_size=80)


def when(t: tuple[float, dt.tzinfo]) -> str:
    days, zone = t
    return (T0 + dt.timedelta(days=days)).astimezone(zone).isoformat()


def event_of(doc: dict, as_struct: bool):
    """The event as the Processor reads it: a msgspec struct when the bytes are plainly safe
    (and asked for), else the contract's model."""
    if as_struct:
        event = parse_struct_event(json.dumps(doc, separators=(",", ":")).encode())
        if event is not None:
            return event
    return validate_order_event(json.loads(json.dumps(doc)))


def held(order: ActiveOrder) -> list[tuple[str, type, object]]:
    """Every value an order holds (its fields in order, then what it keeps: an ActiveOrder
    has slots, no __dict__), with its type."""
    names = [f.name for f in dataclasses.fields(ActiveOrder)] + list(ActiveOrder.__slots__)
    return [(name, type(getattr(order, name)), getattr(order, name)) for name in names]


def assert_same(fast: PatientHistory, slow: PatientHistory) -> None:
    assert fast == slow
    for mine, theirs in zip(fast.folded.values(), slow.folded.values()):
        assert list(vars(mine).items())[:5] == list(vars(theirs).items())[:5]
        assert (list(vars(mine.slots).items()) == list(vars(theirs.slots).items())
                if theirs.slots else mine.slots is None)
    for name in ("active_orders", "seen_events", "cancelled_orders", "folded"):
        assert list(getattr(fast, name)) == list(getattr(slow, name))
    assert fast.to_dict() == slow.to_dict()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.sampled_from([dt.timedelta(days=30), dt.timedelta(days=3),
                                    dt.timedelta(0), dt.timedelta.max]),
       st.sampled_from([10_000, 4, 1]), st.booleans())
def test_apply_and_fold_are_the_full_computations(ops, retention, max_seen, as_struct):
    fast, slow = PatientHistory(), PatientHistory()
    sent: list = []
    for n, op in enumerate(ops):
        kind = op[0]
        if kind == "fold":
            _, bounds, knowledge = op
            fast.fold(knowledge, bounds)
            ref_fold(slow, knowledge, bounds)
        else:
            if kind == "place":
                _, k, occurred, scheduled, drug, regimen = op
                doc = order_event(event_id=f"E{n}", order_id=f"O{k}", drug=dict(drug),
                                  scheduled_for=when(scheduled),
                                  regimen=(1 + n % 3, 1 + n % 20) if regimen else DROP)
                doc["occurred_at"] = when(occurred)
            elif kind == "cancel":
                _, k, occurred = op
                doc = cancel_event(f"O{k}", event_id=f"C{n}", occurred_at=when(occurred))
            else:
                if not sent:
                    continue
                doc = sent[op[1] % len(sent)]
            sent.append(doc)
            event = event_of(doc, as_struct)
            if doc["event_type"] == "order.placed":
                for record in (None, CancelRecord(T0, f"C{n}", False)):
                    made = ActiveOrder.from_event(event, record)
                    want = ref_from_event(event, record)
                    assert made == want and held(made) == held(want)
            if event.event_id in fast.seen_events:  # as the Processor: a duplicate is dropped
                assert event.event_id in slow.seen_events
                continue
            fast.apply(event, retention, max_seen)
            ref_apply(slow, event, retention, max_seen)
        assert_same(fast, slow)


def test_a_fold_resolves_every_order_of_a_mixed_history():
    """Orders resolved under another knowledge, or of several drugs: the general grouping."""
    fast, slow = PatientHistory(), PatientHistory()
    for i, drug in enumerate(DRUGS * 4):
        doc = order_event(event_id=f"E{i}", order_id=f"O{i}", drug=dict(drug),
                          scheduled_for=when((i * 7.0, dt.timezone.utc)))
        doc["occurred_at"] = doc["order"]["scheduled_for"]
        for h in (fast, slow):
            h.apply(event_of(doc, True))
        if i % 5 == 4:
            knowledge = (KNOWLEDGE, OTHER_KNOWLEDGE, LUMPING)[i % 3]
            fast.fold(knowledge, BOUNDS[1])
            ref_fold(slow, knowledge, BOUNDS[1])
            assert_same(fast, slow)
    assert fast.folded


def test_a_cancel_record_is_forgotten_by_its_time():
    h = PatientHistory(cancelled_orders={"a": CancelRecord(T0, "x", True),
                                         "b": CancelRecord(T0 + dt.timedelta(days=40), "y", False)},
                       seen_events={"x": T0, "y": T0 + dt.timedelta(days=40)},
                       newest_event_at=T0 + dt.timedelta(days=40))
    h._forget_old(dt.timedelta(days=30), 10)
    assert list(h.cancelled_orders) == ["b"] and list(h.seen_events) == ["y"]
