"""ActiveOrder.from_event / from_dict build the record without the dataclass __init__ (a speed-up,
issue 10): what they build must be exactly what __init__ builds, for new and old stored forms,
and a stored history must read back and write out the same."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import json

from rxgate.contract import validate_order_event
from rxgate.history import ActiveOrder, PatientHistory

from .test_history_weight_compat import OLD_HISTORY, OLD_ORDER
from .conftest import order_event


def _slot_values(order: ActiveOrder) -> list[tuple[str, object]]:
    """Every value an order holds, by name: its fields in order, then what it keeps (an
    ActiveOrder has slots, no __dict__: what vars() would give)."""
    names = [f.name for f in dataclasses.fields(ActiveOrder)] + list(ActiveOrder.__slots__)
    return [(name, getattr(order, name)) for name in names]


def _same_as_init(order: ActiveOrder) -> None:
    fields = {f.name: getattr(order, f.name) for f in dataclasses.fields(ActiveOrder)}
    built = ActiveOrder(**fields)
    assert order == built and hash(order) == hash(built) and repr(order) == repr(built)
    assert _slot_values(order) == _slot_values(built)
    assert [type(v) for _, v in _slot_values(order)] == [type(v) for _, v in _slot_values(built)]
    assert not hasattr(order, "__dict__") and not hasattr(built, "__dict__")
    assert dataclasses.replace(order) == order


def test_from_event_is_what_init_builds():
    for kw in ({}, {"regimen": (1, 8)}):
        event = validate_order_event(json.loads(json.dumps(order_event(scheduled_for=3, **kw))))
        order = ActiveOrder.from_event(event)
        _same_as_init(order)
        assert ActiveOrder.from_dict(order.to_dict()) == order


def test_from_dict_reads_every_stored_form_as_init_would():
    forms = [OLD_ORDER,
             {**OLD_ORDER, "weight_kg": 70.5, "dose": [700, "mg"]},
             {**OLD_ORDER, "after_cancel_event_id": "E-C", "after_cancel_at": "2026-02-20T09:00:00+00:00",
              "dose": [True, "mg"], "weight_kg": 5000, "cycle": 2, "day": 15}]
    for form in forms:
        order = ActiveOrder.from_dict(json.loads(json.dumps(form)))
        _same_as_init(order)
        assert ActiveOrder.from_dict(order.to_dict()) == order


def test_a_stored_history_writes_out_as_read():
    once = PatientHistory.from_dict(json.loads(json.dumps(OLD_HISTORY))).to_dict()
    twice = PatientHistory.from_dict(json.loads(json.dumps(once))).to_dict()
    assert once == twice and json.dumps(once) == json.dumps(twice)


def _reference_weight(value):  # history._weight as first written
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.1 <= value <= 1000 else None


def _reference_dose(value):  # history._dose as first written
    if (isinstance(value, list) and len(value) == 2 and not isinstance(value[0], bool)
            and isinstance(value[0], (int, float)) and math.isfinite(value[0]) and value[0] >= 0
            and isinstance(value[1], str) and value[1]):
        return float(value[0]), value[1]
    return None, None


def test_stored_weights_and_doses_read_as_before_even_damaged():
    nan, inf = float("nan"), float("inf")
    weights = [70.0, 70, 0.1, 0.05, 1000.0, 1000.5, 0.0, -3.0, nan, inf, -inf, True, "70", None, [70.0]]
    doses = [[700.0, "mg"], [700, "mg"], [0.0, "mg"], [-1.0, "mg"], [nan, "mg"], [inf, "mg"],
             [700.0, ""], [700.0, 5], [True, "mg"], ["700", "mg"], [700.0], [700.0, "mg", 1],
             None, "700 mg", {"value": 700.0}]
    for weight in weights:
        for dose in doses:
            form = {**OLD_ORDER, "weight_kg": weight, "dose": dose}
            order = ActiveOrder.from_dict(form)
            want_weight = _reference_weight(weight)
            assert (order.weight_kg, type(order.weight_kg)) == (want_weight, type(want_weight))
            want_value, want_unit = _reference_dose(dose)
            assert (order.dose_value, type(order.dose_value), order.dose_unit) == (
                want_value, type(want_value), want_unit), dose
            _same_as_init(order)


class _Names:
    """A stand-in knowledge: canonical_name() gives a fixed name and counts the calls."""

    def __init__(self, name):
        self.name, self.calls = name, 0

    def canonical_name(self, name, code_system=None, code_value=None):
        self.calls += 1
        return self.name


def test_canonical_drug_is_resolved_once_per_knowledge_and_is_no_part_of_the_record():
    from rxgate.history import canonical_drug
    order = ActiveOrder.from_dict(json.loads(json.dumps(OLD_ORDER)))
    before = (order.to_dict(), repr(order), hash(order))
    first, reloaded = _Names("a"), _Names("b")
    assert canonical_drug(order, first) == "a" and canonical_drug(order, first) == "a"
    assert first.calls == 1
    assert canonical_drug(order, reloaded) == "b" and reloaded.calls == 1  # a new knowledge: again
    assert canonical_drug(order, first) == "a" and first.calls == 2
    assert (order.to_dict(), repr(order), hash(order)) == before
    assert order == ActiveOrder.from_dict(order.to_dict()) and dataclasses.replace(order) == order
    assert json.dumps(order.to_dict()) == json.dumps(ActiveOrder.from_dict(OLD_ORDER).to_dict())


def test_a_fold_builds_what_init_builds():
    from rxgate.history import FoldBounds, FoldedOrders
    from rxgate.knowledge import load_knowledge
    knowledge = load_knowledge()
    history = PatientHistory()
    for day in range(0, 12 * 21, 21):
        event = validate_order_event(json.loads(json.dumps(order_event(scheduled_for=day))))
        history.apply(event)
        history.fold(knowledge, FoldBounds(keep=2, max_kept=2))
    assert history.folded
    for folded in history.folded.values():
        fields = {f.name: getattr(folded, f.name) for f in dataclasses.fields(FoldedOrders)}
        built = FoldedOrders(**fields)
        assert folded == built and hash(folded) == hash(built) and repr(folded) == repr(built)
        assert vars(folded) == vars(built) and list(vars(folded)) == list(vars(built))
        assert folded.count == 10 and folded.first_at < folded.last.scheduled_for


def test_an_orders_record_is_built_once_and_is_no_part_of_the_order():
    """ActiveOrder.to_dict() is kept on the order once built (a speed-up, issue 10: a history
    is written after every batch): the same dict again, what a fresh build gives, and an order
    made from it (replace, from_dict) builds its own."""
    order = ActiveOrder.from_dict(json.loads(json.dumps(OLD_ORDER)))
    fresh = ActiveOrder.from_dict(json.loads(json.dumps(OLD_ORDER)))
    first = order.to_dict()
    assert order.to_dict() is first
    assert json.dumps(first) == json.dumps(fresh.to_dict())
    assert order == fresh and hash(order) == hash(fresh) and repr(order) == repr(fresh)
    later = order.scheduled_for + dt.timedelta(days=1)
    moved = dataclasses.replace(order, scheduled_for=later, weight_kg=80.0)
    assert moved.to_dict() is not first
    assert (moved.to_dict()["scheduled_for"], moved.to_dict()["weight_kg"]) == (
        later.isoformat(), 80.0)
    assert ActiveOrder.from_dict(moved.to_dict()) == moved
    assert json.dumps(order.to_dict()) == json.dumps(fresh.to_dict())  # untouched by moved
    history = PatientHistory.from_dict(json.loads(json.dumps(OLD_HISTORY)))
    once = json.dumps(history.to_dict())
    assert json.dumps(history.to_dict()) == once
    assert json.dumps(PatientHistory.from_dict(json.loads(once)).to_dict()) == once


def test_a_historys_seen_times_are_written_as_they_are_now():
    """PatientHistory.to_dict() reuses the texts of seen times it wrote before (a speed-up,
    issue 10) only for the very same time objects: a time replaced by an equal one written
    differently (another offset), a new event and a forgotten one show in the next record."""
    history = PatientHistory.from_dict(json.loads(json.dumps(OLD_HISTORY)))

    def fresh() -> str:  # what a history that never wrote a record writes
        fields = {f.name: getattr(history, f.name) for f in dataclasses.fields(PatientHistory)}
        return json.dumps(PatientHistory(**fields).to_dict())

    assert json.dumps(history.to_dict()) == fresh()
    [(event_id, at)] = list(history.seen_events.items())[:1]
    elsewhere = at.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert elsewhere == at and elsewhere.isoformat() != at.isoformat()
    history.seen_events[event_id] = elsewhere
    history.seen_events["EV-NEW"] = at + dt.timedelta(days=1)
    record = history.to_dict()
    assert record["seen_events"][event_id] == elsewhere.isoformat()
    assert record["seen_events"]["EV-NEW"] == (at + dt.timedelta(days=1)).isoformat()
    assert json.dumps(record) == fresh()
    del history.seen_events[event_id]
    assert event_id not in history.to_dict()["seen_events"]
    assert json.dumps(history.to_dict()) == fresh()
    assert history == PatientHistory.from_dict(json.loads(fresh()))


def test_a_folds_record_is_built_once_and_a_changed_fold_builds_its_own():
    history = PatientHistory.from_dict(json.loads(json.dumps(OLD_HISTORY)))
    [fold] = history.folded.values()
    first = fold.to_dict()
    assert fold.to_dict() is first and first["last"] is fold.last.to_dict()
    assert json.dumps(first) == json.dumps(OLD_HISTORY["folded"]["isatuximab"])
    more = dataclasses.replace(fold, count=fold.count + 1)
    assert more.to_dict() is not first and more.to_dict()["count"] == fold.count + 1
    assert first["count"] == fold.count


def test_an_order_copies_and_pickles_as_its_fields_and_makes_its_kept_values_again():
    """An ActiveOrder keeps its values in slots (a speed-up, issue 10): copy, deepcopy and
    pickle give an equal order with every field, and what it keeps (the canonical drug, the
    record, its JSON text) is made again, not carried (a copy may meet another knowledge)."""
    import copy
    import pickle

    from rxgate.history import canonical_drug
    from rxgate.knowledge import load_knowledge

    order = ActiveOrder.from_dict(json.loads(json.dumps({**OLD_ORDER, "weight_kg": 70.5})))
    canonical_drug(order, load_knowledge())
    text = order.json_text()
    assert order._canonical[1] == "isatuximab" and order._record is not None
    for made in (copy.copy(order), copy.deepcopy(order), pickle.loads(pickle.dumps(order))):
        assert made == order and made is not order and repr(made) == repr(order)
        assert _slot_values(made)[:-3] == _slot_values(order)[:-3]
        assert (made._canonical, made._record, made._json) == ((None, None), None, None)
        assert made.json_text() == text
    try:
        order.weight_kg = 80.0
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("an order is frozen")
