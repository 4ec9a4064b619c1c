"""Long, realistic isatuximab courses as order events, for history comparisons.

    course(seed, doses=220, same_day_orders=False, replacements=False) -> list[dict]

One patient per seed: the plan (weekly x4, then every two weeks) from a starting point that may
be before the stream (regimen cycle/day on most doses), scheduled times with jitter (hours, a
day, sometimes days too early), extra too-early orders, frequency on some orders, labs fresh
for each dose, co-medication orders (pomalidomide every cycle, rarely daratumumab),
cancellations (most after their order, some overtaking it), re-deliveries (the same event_id
again, or the same order under a new event_id before any cancellation of it), and events
delivered late by up to three places. `occurred_at` is realistic: an order is placed hours to
days before its dose, a cancellation after the placement it cancels.

Two features change decisions on purpose (issue 7, item 2), so they are off by default:
`same_day_orders` (a second active order for a dose's day) and `replacements` (an order id
cancelled and then placed again).
"""
from __future__ import annotations

import datetime as dt
import random

from .conftest import DROP, iso, order_event

START = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.timezone.utc)


def plan_day(slot: int) -> int:
    return 7 * slot if slot < 4 else 28 + 14 * (slot - 4)


def plan_regimen(slot: int) -> tuple[int, int]:
    if slot < 4:
        return 1, 1 + 7 * slot
    return 2 + (slot - 4) // 2, 1 if (slot - 4) % 2 == 0 else 15


def course(seed: int, doses: int = 220, *, same_day_orders: bool = False,
           replacements: bool = False) -> list[dict]:
    rng = random.Random(seed)
    pid = f"P-{seed:04d}"
    first_slot = rng.choice([0, 0, 0, 4, 9])
    with_regimen = rng.random() < 0.7
    stream: list[dict] = []
    n = 0

    def new_id(kind: str) -> str:
        nonlocal n
        n += 1
        return f"{pid}-{kind}{n}"

    def placed(order_id: str, when: dt.datetime, **kw) -> dict:
        occurred = when - dt.timedelta(hours=rng.uniform(1, 96))
        e = order_event(event_id=new_id("E"), order_id=order_id, patient_id=pid,
                        scheduled_for=iso(when), **kw)
        e["occurred_at"] = iso(occurred)
        return e

    def cancel(order_id: str, after: dict) -> dict:
        occurred = dt.datetime.fromisoformat(after["occurred_at"].replace("Z", "+00:00"))
        occurred += dt.timedelta(hours=rng.uniform(0.5, 48))
        return {"schema": "rx.order/1", "event_id": new_id("C"), "event_type": "order.cancelled",
                "occurred_at": iso(occurred), "order": {"order_id": order_id},
                "patient": {"patient_id": pid}}

    for k in range(doses):
        slot = first_slot + k
        jitter = rng.choice([0, 0, 0, 0, 2, -3, 24, -24, -40, -72, -130])
        when = START + dt.timedelta(days=plan_day(slot) - plan_day(first_slot), hours=jitter)
        regimen = plan_regimen(slot) if with_regimen and rng.random() < 0.85 else DROP
        if regimen is not DROP and rng.random() < 0.03:
            regimen = (regimen[0], regimen[1] + 1)  # off plan
        frequency = rng.choice([DROP] * 6 + [(1, 7, "d"), (1, 14, "d"), (1, 2, "wk")])
        oid = new_id("O")
        event = placed(oid, when, regimen=regimen, frequency=frequency)
        r = rng.random()
        if r < 0.04:  # a cancellation that overtakes its order
            stream += [cancel(oid, event), event]
        else:
            stream.append(event)
            if rng.random() < 0.03:  # the same event again
                stream.append(dict(event))
            if rng.random() < 0.02:  # the same order again under a new event id
                stream.append({**event, "event_id": new_id("E")})
            if r > 0.95:  # cancelled after it was placed
                stream.append(cancel(oid, event))
                if replacements and rng.random() < 0.5:  # ... and placed again
                    again = placed(oid, when + dt.timedelta(hours=rng.choice([0, 5, 30])),
                                   regimen=regimen, frequency=DROP)
                    again["occurred_at"] = iso(
                        dt.datetime.fromisoformat(stream[-1]["occurred_at"].replace("Z", "+00:00"))
                        + dt.timedelta(hours=1))
                    stream.append(again)
        if rng.random() < 0.04:  # an extra order a few days later: too soon
            stream.append(placed(new_id("O"), when + dt.timedelta(days=rng.choice([2, 3, 5])),
                                 regimen=DROP, frequency=DROP))
        if same_day_orders and rng.random() < 0.05:
            stream.append(placed(new_id("O"), when + dt.timedelta(hours=rng.choice([-5, 3, 8])),
                                 regimen=DROP, frequency=DROP))
        if slot % 2 == 0 and rng.random() < 0.8:  # pomalidomide with each cycle
            stream.append(placed(new_id("O"), when, drug="pomalidomide", dose=(4, "mg"),
                                 route="PO", regimen=DROP, frequency=DROP, infusion=DROP))
        if rng.random() < 0.01:
            stream.append(placed(new_id("O"), when, drug="daratumumab", dose=(16, "mg/kg"),
                                 regimen=DROP, frequency=DROP))
    return _deliver_late(stream, rng)


def _deliver_late(stream: list[dict], rng: random.Random) -> list[dict]:
    """Move some placements up to three places later, never past an event of the same order."""
    out = list(stream)
    for i in range(len(out) - 1, -1, -1):
        e = out[i]
        if e["event_type"] != "order.placed" or rng.random() > 0.08:
            continue
        j = i
        for _ in range(rng.randint(1, 3)):
            if j + 1 < len(out) and out[j + 1]["order"]["order_id"] != e["order"]["order_id"]:
                out[j], out[j + 1] = out[j + 1], out[j]
                j += 1
    return out


def decisive(decision) -> dict:
    """A decision as JSON, with combination findings reduced to what they decide (rule,
    severity, drug, class): a folded history names another drug's older orders as a count."""
    d = decision.model_dump(mode="json")
    d.pop("decided_at", None)
    for f in d["findings"]:
        if f["category"] == "combination":
            f["message"] = None
            f["evidence"].pop("found_in", None)
    return d
