"""ActiveOrder.from_event / from_dict build the record without the dataclass __init__ (a speed-up,
issue 10): what they build must be exactly what __init__ builds, for new and old stored forms,
and a stored history must read back and write out the same."""
from __future__ import annotations

import dataclasses
import json

from rxgate.contract import validate_order_event
from rxgate.history import ActiveOrder, PatientHistory

from .test_history_weight_compat import OLD_HISTORY, OLD_ORDER
from .conftest import order_event


def _same_as_init(order: ActiveOrder) -> None:
    fields = {f.name: getattr(order, f.name) for f in dataclasses.fields(ActiveOrder)}
    built = ActiveOrder(**fields)
    assert order == built and hash(order) == hash(built) and repr(order) == repr(built)
    assert vars(order) == vars(built) and list(vars(order)) == list(vars(built))
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
