"""dose's fast paths agree with its rules' exact arithmetic.

dose._weight first asks _same_weight whether every earlier dose of the drug (the active orders
and the newest folded one) gave this order's very weight, with times in this order's zone:
then the change since the previous dose is 0, never flagged, and the previous dose is not
looked for. It may decline (the exact path then decides, and may find nothing); it must never
say "nothing" where the exact path finds something, nor where it raises. These properties run
both on random histories: weights equal to the patient's, near it, beyond the limit, absent,
infinite; times before, at and after the order, in its zone, in other offsets and naive; a
folded older dose or none; events read by the contract's models and by struct_event's structs.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

from hypothesis import HealthCheck, given, settings, strategies as st

from rxgate.contract import parse_order_event
from rxgate.history import ActiveOrder, FoldedOrders
from rxgate.rules import OrderContext
from rxgate.rules import dose as D
from rxgate.struct_event import parse_struct_event

from .conftest import DROP, DRUG, KNOWLEDGE, iso, order_event

SETTINGS = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MONO = KNOWLEDGE.monographs[DRUG]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
WEIGHTS = [70.0, 70.5, 84.0, 56.0, 0.1, 1000.0, 103.4]

zones = st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=2)),
                         dt.timezone(dt.timedelta(hours=-5, minutes=-30)), None])


@st.composite
def earlier(draw, weight: float, i: int) -> ActiveOrder:
    """An order of the drug: this order's weight mostly, another, none or an odd one."""
    w = draw(st.one_of(st.just(weight), st.just(weight), st.sampled_from(WEIGHTS),
                       st.sampled_from([None, math.inf, math.nan, 0.0]),
                       st.floats(min_value=0.1, max_value=1000)))
    at = T0 + dt.timedelta(hours=draw(st.integers(-24 * 60, 48)))
    zone = draw(st.one_of(st.just(dt.timezone.utc), zones))
    at = at.replace(tzinfo=None) if zone is None else at.astimezone(zone)
    return ActiveOrder(order_id=f"ORD-{i}", event_id=f"EVT-{i}", drug=DRUG, code_system=None,
                       code_value=None, scheduled_for=at, cycle=None, day=None,
                       weight_kg=w, dose_value=10.0, dose_unit="mg/kg")


def compact(event: dict) -> str:
    """The event's JSON text as struct_event takes it (no space beside a quote)."""
    return json.dumps(event, separators=(",", ":"))


def context(data, weight: float | None, structs: bool) -> OrderContext:
    text = compact(order_event(scheduled_for=iso(T0),
                               patient={"weight_kg": DROP if weight is None else weight}))
    event = parse_struct_event(text.encode()) if structs else parse_order_event(text)
    assert event is not None
    base = weight if weight is not None else 70.0
    orders = [data.draw(earlier(base, i)) for i in range(data.draw(st.integers(0, 9)))]
    folds = ()
    if data.draw(st.booleans()):
        last = data.draw(earlier(base, 99))
        folds = (FoldedOrders(last=last, count=3, first_at=last.scheduled_for, slots=None,
                              plan_key=None),)
    return OrderContext.of(event, MONO, KNOWLEDGE, orders, folds)


def outcome(f, *args):
    try:
        return [x.model_dump() for x in f(*args)]
    except Exception as e:  # the exact path may raise (naive and aware times): so must _weight
        return type(e)


def exact_weight(ctx: OrderContext, case) -> list:
    """_weight with _same_weight declining every order: the exact path."""
    same, D._same_weight = D._same_weight, lambda ctx, weight: False
    try:
        return D._weight(ctx, case)
    finally:
        D._same_weight = same


@SETTINGS
@given(data=st.data(), weight=st.one_of(st.sampled_from(WEIGHTS), st.none(),
                                        st.floats(min_value=0.1, max_value=1000)),
       structs=st.booleans())
def test_weight_says_what_the_exact_path_says(data, weight, structs):
    ctx = context(data, weight, structs)
    case = D._case_of(ctx)
    assert outcome(D._weight, ctx, case) == outcome(exact_weight, ctx, case)
    if weight is not None and D._same_weight(ctx, weight):
        assert D._weight_change(ctx, case, weight, []) == []


def test_the_same_weight_path_takes_a_usual_course():
    """A course in one zone at one weight: told by _same_weight, without the exact path."""
    event = parse_struct_event(compact(order_event(
        scheduled_for=iso(T0), patient={"weight_kg": 70.0})).encode())
    assert event is not None
    orders = [ActiveOrder(order_id=f"ORD-{i}", event_id=f"EVT-{i}", drug=DRUG, code_system=None,
                          code_value=None, scheduled_for=T0 - dt.timedelta(days=7 * i),
                          weight_kg=70.0, dose_value=10.0, dose_unit="mg/kg")
              for i in range(1, 9)]
    ctx = OrderContext.of(event, MONO, KNOWLEDGE, orders)
    assert D._case_of(ctx).same_weight_quiet and D._same_weight(ctx, 70.0)
    moved = [dataclasses.replace(orders[0], weight_kg=90.0), *orders[1:]]  # the previous dose
    ctx = OrderContext.of(event, MONO, KNOWLEDGE, moved)
    assert not D._same_weight(ctx, 70.0)
    assert [f.rule_id for f in D._weight(ctx, D._case_of(ctx))] == [f"{DRUG}.dose.weight_change"]
