"""Order events for the stream tests, built like a hospital information system sends them."""
from __future__ import annotations

import datetime as dt
import json
import uuid

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def new_patient_id(prefix: str = "P") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def placed(patient_id: str, order_id: str, scheduled_for: dt.datetime, *, mg: float = 700,
           weight_kg: float = 70, cycle: int = 1, day: int = 1, drug: str = "isatuximab",
           event_id: str | None = None, anc: float = 1.8, minutes: float = 210) -> dict:
    taken = iso(scheduled_for - dt.timedelta(days=1))
    return {
        "schema": "rx.order/1",
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": "order.placed",
        "occurred_at": iso(scheduled_for - dt.timedelta(hours=1)),
        "source": "his-test",
        "order": {
            "order_id": order_id,
            "drug": {"name": drug},
            "dose": {"value": mg, "unit": "mg"},
            "route": "IV",
            "scheduled_for": iso(scheduled_for),
            "frequency": {"count": 1, "period": 7 if cycle == 1 else 14, "period_unit": "d"},
            "regimen": {"name": "Isa-Pd", "cycle": cycle, "day": day},
            "infusion": {"volume_ml": 250, "duration_min": minutes},
            "prescriber_id": "DR-77",
        },
        "patient": {
            "patient_id": patient_id,
            "birth_date": "1955-04-12",
            "sex": "female",
            "weight_kg": weight_kg,
            "height_cm": 165,
            "pregnant": False,
            "lactating": False,
            "allergies": [],
            "conditions": ["multiple myeloma"],
            "labs": [{"code": "ANC", "value": anc, "unit": "10^9/L", "taken_at": taken},
                     {"code": "PLT", "value": 142, "unit": "10^9/L", "taken_at": taken},
                     {"code": "HGB", "value": 10.9, "unit": "g/dL", "taken_at": taken},
                     {"code": "TBILI", "value": 0.6, "unit": "mg/dL", "taken_at": taken}],
            "current_medications": [{"name": "dexamethasone"}],
        },
    }


def cancelled(patient_id: str, order_id: str, at: dt.datetime,
              event_id: str | None = None) -> dict:
    return {
        "schema": "rx.order/1",
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": "order.cancelled",
        "occurred_at": iso(at),
        "order": {"order_id": order_id},
        "patient": {"patient_id": patient_id},
    }


def wire(event: dict) -> tuple[bytes, bytes]:
    """(key, value) as a producer sends it: keyed by patient id, compact JSON."""
    return (event["patient"]["patient_id"].encode("utf-8"),
            json.dumps(event, separators=(",", ":")).encode("utf-8"))


# Cycle 1: days 1, 8, 15, 22; later cycles: days 1 and 15 (cycles of 28 days).
SCHEDULE = [(1, 1), (1, 8), (1, 15), (1, 22), (2, 1), (2, 15), (3, 1), (3, 15), (4, 1), (4, 15)]


def on_schedule(cycle: int, day: int, start: dt.datetime = T0) -> dt.datetime:
    return start + dt.timedelta(days=28 * (cycle - 1) + day - 1)
