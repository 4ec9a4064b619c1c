"""PatientHistory.to_json / to_record make the changelog record from texts kept from earlier
writes (a speed-up, issue 10): they must give exactly the bytes the stream's faust "json" codec
writes for `{**history.to_dict(), **extra}`, whatever happened to the history since the texts
were kept (orders replaced under the same id, folds, cancellations, seen times re-timed or
forgotten, a history read back from its record), and the record must read back to the history.

Histories are built through the real API (PatientHistory.apply of validated events, fold with
the real knowledge, from_dict of a record), with ids of any characters (non-ASCII, quotes,
control characters, astral ones that JSON writes as surrogate pairs), float weights and doses,
and times at several offsets."""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json

from faust.serializers import codecs
from hypothesis import HealthCheck, event as note, given, settings, strategies as st

from rxgate.contract import validate_order_event
from rxgate.history import ActiveOrder, FoldBounds, PatientHistory

from .clinical.conftest import KNOWLEDGE, T0, cancel_event, order_event

BASE_KEYS = ("active_orders", "seen_events", "cancelled_orders", "newest_event_at", "folded")
DRUGS = [{"name": "isatuximab", "code": {"system": "rxnorm", "value": "2283218"}},
         {"name": "Isatuximab "}, {"name": "daratumumab"}, {"name": "ñovel-drüg ✓"}]
OFFSETS = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=2)),
           dt.timezone(dt.timedelta(hours=-5, minutes=-30)), dt.timezone(dt.timedelta(hours=14))]

# any characters, as the contract reads them (stripped, not empty)
ids = st.builds(lambda first, rest: (first + rest).strip(),
                st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                st.text(st.characters(blacklist_categories=("Cs",)), max_size=7))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8)
marks = st.dictionaries(st.integers(0, 99).map(str), st.integers(-1, 2**40), min_size=1, max_size=4)
extras = st.one_of(
    st.none(), st.just({}),
    st.builds(lambda m: {"_forwarded": m}, marks),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
    st.dictionaries(st.sampled_from(BASE_KEYS), json_values, min_size=1, max_size=2),  # in place
)
times = st.tuples(st.floats(-60, 60, allow_nan=False) | st.floats(-400, 400, allow_nan=False),
                  st.sampled_from(OFFSETS))

place = st.tuples(st.just("place"), st.integers(0, 15), times, st.sampled_from(DRUGS),
                  st.floats(0.1, 1000), st.floats(0.001, 1e9), ids, st.booleans())
cancel = st.tuples(st.just("cancel"), st.integers(0, 15), times, ids)
fold = st.tuples(st.just("fold"), st.integers(1, 3), st.integers(0, 120), st.integers(1, 4))
check = st.tuples(st.just("check"), extras, st.sampled_from(["json", "record", "dict"]))
retime = st.tuples(st.just("retime"), st.integers(0, 50), st.sampled_from(OFFSETS),
                   st.sampled_from([0.0, 0.0, 1.5, -3.0]))
forget = st.tuples(st.just("forget"), st.integers(0, 4))
change = st.tuples(st.just("change"), st.integers(0, 50), st.floats(0.1, 1000))
simple = st.sampled_from([("roundtrip",), ("copy",)])
# a course first (so that histories are as long as real ones: many orders, folds, seen events),
# then any operations
courses = st.tuples(st.integers(0, 40), st.sampled_from(DRUGS), st.floats(0.1, 1000),
                    st.floats(0.001, 1e9), st.integers(1, 14), st.sampled_from([30, 400]))
operations = st.lists(st.one_of(place, place, place, cancel, fold, check, check, retime, forget,
                                change, simple), min_size=1, max_size=60)


def reference(history: PatientHistory, extra: dict | None) -> bytes:
    """The record as the stream wrote it before: to_dict(), extra added, faust's json codec."""
    value = history.to_dict()
    value.update(extra or {})
    return codecs.dumps("json", value)


def fresh(history: PatientHistory) -> PatientHistory:
    """The same history without any kept text (a new object of each of its orders and folds)."""
    return PatientHistory.from_dict(json.loads(json.dumps(history.to_dict())))


def when(t: tuple[float, dt.tzinfo]) -> str:
    days, zone = t
    return (T0 + dt.timedelta(days=days)).astimezone(zone).isoformat()


def assert_record(history: PatientHistory, extra: dict | None, first: str) -> None:
    # the reference from a copy without the history's kept seen texts (so that it builds none of
    # them), then the kept texts are built by whichever is called first: each order is tried
    fields = {f.name: getattr(history, f.name) for f in dataclasses.fields(PatientHistory)}
    want = reference(PatientHistory(**fields), extra)
    merged = {**PatientHistory(**fields).to_dict(), **(extra or {})}
    if first == "json":
        assert history.to_json(extra) == want
    elif first == "record":
        value, data = history.to_record(extra)
        assert data == want and value == merged and list(value) == list(merged)
    else:
        assert codecs.dumps("json", {**history.to_dict(), **(extra or {})}) == want
    assert history.to_json(extra) == want
    value, data = history.to_record(extra)
    assert data == want
    assert list(value) == list(merged) and codecs.dumps("json", value) == want
    assert json.dumps(value) == json.dumps(merged)
    assert history.to_json(extra) == want  # again, from the texts kept now
    # the kept seen texts are those of the events seen now, no more (memory stays bounded)
    assert history._seen_text.keys() == history.seen_events.keys()
    assert reference(history, extra) == want  # to_dict's own kept texts are right too
    assert reference(fresh(history), extra) == want  # and a history read from it writes it
    if not extra or set(extra).isdisjoint(BASE_KEYS):
        stored = json.loads(data)
        for key in extra or {}:
            del stored[key]
        assert PatientHistory.from_dict(stored) == history


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(courses, operations, st.lists(ids, min_size=1, max_size=6), ids)
def test_to_json_is_the_codecs_bytes_of_to_dict_after_any_changes(course, ops, order_ids, tag):
    history = PatientHistory()
    copies: list[PatientHistory] = []
    count, drug, weight, dose, spacing, retention_days = course
    retention = dt.timedelta(days=retention_days)
    for i in range(count):
        day = (i - count) * spacing
        doc = order_event(event_id=f"{tag}-c{i}", order_id=f"{order_ids[i % len(order_ids)]}#c{i}",
                          drug=dict(drug), dose=(dose, "mg"), scheduled_for=day,
                          patient={"weight_kg": weight})
        history.apply(validate_order_event(json.loads(json.dumps(doc))), retention)
        if i % 5 == 4:
            history.fold(KNOWLEDGE)
            assert_record(history, {"_forwarded": {"1": i}}, "record")
    n = 0
    for op in ops:
        kind = op[0]
        n += 1
        if kind == "place":
            _, k, t, drug, weight, dose, event_tag, regimen = op
            doc = order_event(event_id=f"{event_tag}-{tag}-{n}", order_id=f"{order_ids[k % len(order_ids)]}#{k}",
                              drug=dict(drug), dose=(dose, "mg"), scheduled_for=t[0],
                              regimen=(1 + n % 3, 1 + n % 20) if regimen else None,
                              patient={"weight_kg": weight}, set={"occurred_at": when(t)})
            event = validate_order_event(json.loads(json.dumps(doc)))
            if not history.has_seen(event.event_id):
                history.apply(event, retention)
        elif kind == "cancel":
            _, k, t, event_tag = op
            doc = cancel_event(f"{order_ids[k % len(order_ids)]}#{k}", event_id=f"{event_tag}~{n}",
                               occurred_at=when(t))
            event = validate_order_event(json.loads(json.dumps(doc)))
            if not history.has_seen(event.event_id):
                history.apply(event, retention)
        elif kind == "fold":
            _, keep, lookback, max_kept = op
            history.fold(KNOWLEDGE, FoldBounds(keep, dt.timedelta(days=lookback), max_kept))
            history.fold(KNOWLEDGE)
        elif kind == "check":
            assert_record(history, op[1], op[2])
        elif kind == "retime" and history.seen_events:  # an equal time at another offset, or not
            _, k, zone, shift = op
            event_id = list(history.seen_events)[k % len(history.seen_events)]
            at = history.seen_events[event_id]
            history.seen_events[event_id] = (at + dt.timedelta(hours=shift)).astimezone(zone)
        elif kind == "forget" and history.seen_events:  # what apply's bounds do, now
            history._forget_old(dt.timedelta(days=op[1] * 30), max_seen=op[1] + 1)
        elif kind == "change" and history.active_orders:  # the same id, a changed order
            order_id = list(history.active_orders)[op[1] % len(history.active_orders)]
            old = history.active_orders[order_id]
            history.active_orders[order_id] = dataclasses.replace(old, weight_kg=op[2])
        elif kind == "roundtrip":  # the stream's restart: the history read from its record
            history = PatientHistory.from_dict(json.loads(history.to_json()))
        elif kind == "copy":  # a copy (own containers) shares the kept texts: both stay right
            copies.append(history)
            history = copy.copy(history)
            for f in dataclasses.fields(history):
                value = getattr(history, f.name)
                if isinstance(value, dict):
                    setattr(history, f.name, dict(value))
    note(f"folded drugs: {len(history.folded)}")
    note(f"non-ASCII folded: {any(not k.isascii() for k in history.folded)}")
    note(f"cancelled: {min(len(history.cancelled_orders), 2)}")
    note(f"active: {min(len(history.active_orders) // 4 * 4, 12)}")
    note(f"seen: {min(len(history.seen_events) // 4 * 4, 12)}")
    for each in [history, *copies]:
        assert_record(each, {"_forwarded": {"0": n}}, "json")
        assert_record(each, None, "record")


def test_a_kept_text_is_no_part_of_an_order_or_fold_and_a_changed_one_has_its_own():
    history = PatientHistory()
    for day in range(0, 10 * 21, 21):
        history.apply(validate_order_event(json.loads(json.dumps(order_event(scheduled_for=day)))))
        history.fold(KNOWLEDGE, FoldBounds(keep=2, max_kept=2))
    [fold] = history.folded.values()
    order = next(iter(history.active_orders.values()))
    before = (repr(order), hash(order), repr(fold), hash(fold))
    data = history.to_json()
    assert order.json_text() is order.json_text() and fold.json_text() is fold.json_text()
    assert order.json_text() == json.dumps(order.to_dict(), separators=(",", ":"))
    assert "_json" not in {f.name for f in dataclasses.fields(ActiveOrder)}
    assert (repr(order), hash(order), repr(fold), hash(fold)) == before
    assert dataclasses.replace(order) == order and dataclasses.replace(fold) == fold
    heavier = dataclasses.replace(order, weight_kg=123.25)
    assert json.loads(heavier.json_text())["weight_kg"] == 123.25
    history.active_orders[order.order_id] = heavier
    assert history.to_json() != data and history.to_json() == reference(history, None)
    more = dataclasses.replace(fold, count=fold.count + 1)
    assert json.loads(more.json_text())["count"] == fold.count + 1
    history.folded[next(iter(history.folded))] = more
    assert history.to_json() == reference(history, None)


def test_keys_json_writes_as_strings_are_written_so():
    """A history made by hand may have keys that are not str: written as the encoder does."""
    history = PatientHistory.from_dict(json.loads(PatientHistory().to_json()))
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    history.seen_events.update({7: at, None: at, 2.5: at, True: at, "é\"\\\n😀": at})
    history.newest_event_at = at
    extra = {"_forwarded": {"3": 4}, 5: [1.0, float("nan"), float("inf")], None: "x"}
    assert history.to_json(extra) == reference(history, extra)
    assert history.to_record(extra)[1] == reference(history, extra)
