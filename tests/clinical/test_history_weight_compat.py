"""A history stored before active orders kept the patient's weight still loads (the stream's
changelog holds such JSON); its orders have no weight, so the weight-change check compares
nothing against them, and the first order placed after the upgrade is compared from then on.
"""
from __future__ import annotations

import json

import pytest

from rxgate.history import ActiveOrder, PatientHistory

from .conftest import Pharmacy, assert_finding, assert_no, iso, order_event, T0

CHANGE = "isatuximab.dose.weight_change"

# What a history looked like in the changelog before `weight_kg` (knowledge 2026.11.2 and
# earlier): an active order and a folded one, neither with a weight.
OLD_ORDER = {"order_id": "ORD-OLD-2", "event_id": "EVT-OLD-2", "drug": "isatuximab",
             "code_system": "rxnorm", "code_value": "2283218",
             "scheduled_for": "2026-02-23T09:00:00+00:00", "cycle": None, "day": None}
OLD_HISTORY = {
    "active_orders": [OLD_ORDER],
    "seen_events": {"EVT-OLD-2": "2026-02-23T08:15:00+00:00"},
    "cancelled_orders": {},
    "newest_event_at": "2026-02-23T08:15:00+00:00",
    "folded": {"isatuximab": {
        "last": {**OLD_ORDER, "order_id": "ORD-OLD-1", "event_id": "EVT-OLD-1",
                 "scheduled_for": "2026-02-16T09:00:00+00:00"},
        "count": 1, "first_at": "2026-02-16T09:00:00+00:00", "slots": None, "plan_key": None}},
}


def test_an_old_history_loads_without_weights_and_writes_none():
    h = PatientHistory.from_dict(json.loads(json.dumps(OLD_HISTORY)))
    [order] = h.active_orders.values()
    assert order.weight_kg is None and h.folded["isatuximab"].last.weight_kg is None
    d = h.to_dict()
    assert "weight_kg" not in d["active_orders"][0]
    assert "weight_kg" not in d["folded"]["isatuximab"]["last"]
    assert PatientHistory.from_dict(d) == h


def test_a_weight_round_trips():
    o = ActiveOrder.from_dict({**OLD_ORDER, "weight_kg": 70.5})
    assert o.weight_kg == 70.5
    assert o.to_dict()["weight_kg"] == 70.5
    assert ActiveOrder.from_dict(json.loads(json.dumps(o.to_dict()))) == o


@pytest.mark.parametrize("stored", ["70", None, True, -5, 0, 1e9, float("nan"), [70]])
def test_a_damaged_stored_weight_is_no_weight(stored):
    assert ActiveOrder.from_dict({**OLD_ORDER, "weight_kg": stored}).weight_kg is None


def test_after_the_upgrade_the_first_order_compares_nothing_then_the_next_compares():
    pharmacy = Pharmacy(store="json")
    pharmacy.processor.store.rows["P-001"] = json.dumps(OLD_HISTORY)
    # the previous dose (2026-02-23) has no stored weight: 154 kg cannot be compared
    d = pharmacy.place(order_event(scheduled_for=iso(T0), regimen=None, frequency=None,
                                   patient={"weight_kg": 154}))
    assert_no(d, CHANGE)
    history = json.loads(pharmacy.processor.store.rows["P-001"])
    stored = {o["order_id"]: o.get("weight_kg") for o in history["active_orders"]}
    assert stored["ORD-OLD-2"] is None and 154 in stored.values()
    # the next dose is compared with the 154 kg of the one just placed
    d = pharmacy.place(order_event(scheduled_for=14, regimen=None, frequency=None,
                                   patient={"weight_kg": 70}))
    assert_finding(d, CHANGE, category="dose", severity="warning",
                   evidence={"previous_weight_kg": 154, "weight_kg": 70})
