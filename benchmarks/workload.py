"""The realistic order stream every benchmark uses: the same messages offline and on the broker.

    for m in messages(n, patients=None, seed=1):   # Message(key, value, kind), in event-time order
        ...
    Counts.of(kind for each message)               # what the stream should yield

Many patients, each on an isatuximab course by the plan (weekly for cycle 1, then every two
weeks, cycles of 28 days, regimen on each order), patients starting on staggered days, the
stream ordered by scheduled time across patients as a hospital information system would send
it. Per patient, fixed: age, sex, weight (10 mg/kg dose, rounded), allergies, conditions and
co-medications (Isa-Pd or Isa-Kd, plus a few common ones); per order: ANC/PLT/HGB/TBILI taken the day
before (sometimes also WBC and creatinine clearance).

Mixed in, at fixed rates (seeded, so every run and every benchmark sees the same messages):
- a low neutrophil count, an overdose, a short infusion, a daratumumab co-medication, an order
  of a drug with no monograph: the flagged ones (a few percent in all);
- cancellations (an order cancelled a few messages after it was placed);
- re-sent events (the same bytes again: a duplicate, no output);
- invalid lines (not JSON, a field missing, a number sent as a string): dead letters.

Kinds: "placed" (one decision), "cancelled" (no output), "duplicate" (no output),
"invalid" (one dead letter). `Counts.outputs` is what a shell publishes for the stream.

Runnable alone to write a JSON Lines file:  python benchmarks/workload.py N > orders.jsonl
"""
from __future__ import annotations

import datetime as dt
import heapq
import json
import random
import sys
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator

T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.timezone.utc)
ORDERS_PER_PATIENT = 20  # default patients = n / this: about eight months of a course each

# rates per message (of the order.placed ones where it says so)
P_CANCEL = 0.02       # a placed order is cancelled a few messages later
P_DUPLICATE = 0.005   # a placed event is re-sent (same bytes)
P_INVALID = 0.005     # an invalid line instead of an order
P_LOW_ANC = 0.01      # ANC below the limit: flagged (major)
P_OVERDOSE = 0.005    # 25 % over 10 mg/kg: flagged (major)
P_SHORT = 0.005       # a 90-minute infusion: flagged (warning)
P_OTHER_DRUG = 0.003  # a drug without a monograph: flagged (data warning)
P_DARA = 0.003        # patients with daratumumab among their medications: always flagged

EXTRA_MEDS = ["acyclovir", "aspirin", "pantoprazole", "ondansetron", "allopurinol",
              "cotrimoxazole", "zoledronic acid", "apixaban", "metformin", "amlodipine"]
ALLERGIES = ["penicillin", "sulfonamides", "iodine contrast", "latex"]
CONDITIONS = ["hypertension", "type 2 diabetes", "chronic kidney disease stage 2",
              "atrial fibrillation", "osteoporosis"]
OTHER_DRUGS = ["bendamustine", "melphalan", "cyclophosphamide"]


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    kind: str  # placed | cancelled | duplicate | invalid


@dataclass
class Counts:
    placed: int = 0
    cancelled: int = 0
    duplicate: int = 0
    invalid: int = 0

    @property
    def total(self) -> int:
        return self.placed + self.cancelled + self.duplicate + self.invalid

    @property
    def outputs(self) -> int:
        """Records a shell publishes: one decision per placed order, one dead letter per
        invalid line; nothing for a cancellation or a duplicate."""
        return self.placed + self.invalid

    def add(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)

    @classmethod
    def of(cls, kinds: Iterable[str]) -> "Counts":
        counts = cls()
        for kind in kinds:
            counts.add(kind)
        return counts


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def slot(k: int) -> tuple[int, int, int]:
    """(days from the course start, cycle, day) of the k-th dose (0-based) of the plan."""
    if k < 4:
        return 7 * k, 1, 1 + 7 * k
    cycle, second = 2 + (k - 4) // 2, (k - 4) % 2
    day = 15 if second else 1
    return 28 * (cycle - 1) + day - 1, cycle, day


@dataclass
class _Patient:
    pid: str
    start: dt.datetime
    birth: str
    sex: str
    weight: float
    height: int
    allergies: list[str]
    conditions: list[str]
    meds: list[dict]
    regimen: str
    doses: int = 0
    labs_extra: bool = False


def _patient(i: int, rng: random.Random) -> _Patient:
    regimen = "Isa-Pd" if rng.random() < 0.7 else "Isa-Kd"
    meds = [{"name": "pomalidomide" if regimen == "Isa-Pd" else "carfilzomib"},
            {"name": "dexamethasone"}]
    meds += [{"name": m} for m in rng.sample(EXTRA_MEDS, rng.randint(0, 4))]
    if rng.random() < P_DARA:
        meds.append({"name": "daratumumab"})
    return _Patient(
        pid=f"P-{i:07d}",
        start=T0 + dt.timedelta(days=rng.randrange(0, 56), hours=rng.randrange(0, 9)),
        birth=f"{rng.randint(1938, 1975)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        sex=rng.choice(("female", "male")),
        weight=round(rng.uniform(48, 115), 1),
        height=rng.randint(150, 192),
        allergies=rng.sample(ALLERGIES, 1) if rng.random() < 0.2 else [],
        conditions=["multiple myeloma"] + rng.sample(CONDITIONS, rng.randint(0, 2)),
        meds=meds,
        regimen=regimen,
        labs_extra=rng.random() < 0.3,
    )


def _event_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _placed(p: _Patient, when: dt.datetime, cycle: int, day: int, rng: random.Random) -> dict:
    taken = iso(when - dt.timedelta(days=1, hours=rng.randrange(0, 6)))
    anc = round(rng.uniform(0.4, 0.95), 2) if rng.random() < P_LOW_ANC else round(rng.uniform(1.3, 4.5), 2)
    labs = [{"code": "ANC", "value": anc, "unit": "10^9/L", "taken_at": taken},
            {"code": "PLT", "value": rng.randint(80, 320), "unit": "10^9/L", "taken_at": taken},
            {"code": "HGB", "value": round(rng.uniform(9.0, 14.5), 1), "unit": "g/dL",
             "taken_at": taken},
            {"code": "TBILI", "value": 0.6, "unit": "mg/dL", "taken_at": taken}]
    if p.labs_extra:
        labs += [{"code": "WBC", "value": round(rng.uniform(3.5, 9.0), 1), "unit": "10^9/L",
                  "taken_at": taken},
                 {"code": "CRCL", "value": rng.randint(45, 110), "unit": "mL/min", "taken_at": taken}]
    mg = round(10 * p.weight / 10) * 10
    if rng.random() < P_OVERDOSE:
        mg = round(mg * 1.25)
    minutes = 90 if rng.random() < P_SHORT else rng.choice((180, 195, 210, 225, 240))
    drug = rng.choice(OTHER_DRUGS) if rng.random() < P_OTHER_DRUG else "isatuximab"
    return {
        "schema": "rx.order/1",
        "event_id": _event_id(rng),
        "event_type": "order.placed",
        "occurred_at": iso(when - dt.timedelta(hours=rng.randint(2, 30))),
        "source": "his-bench",
        "order": {
            "order_id": f"ORD-{p.pid[2:]}-{p.doses:04d}",
            "drug": {"name": drug},
            "dose": {"value": mg, "unit": "mg"},
            "route": "IV",
            "scheduled_for": iso(when),
            "frequency": {"count": 1, "period": 7 if cycle == 1 else 14, "period_unit": "d"},
            "regimen": {"name": p.regimen, "cycle": cycle, "day": day},
            "infusion": {"volume_ml": 250, "duration_min": minutes},
            "prescriber_id": f"DR-{rng.randint(1, 60):03d}",
        },
        "patient": {
            "patient_id": p.pid, "birth_date": p.birth, "sex": p.sex, "weight_kg": p.weight,
            "height_cm": p.height, "pregnant": False, "lactating": False,
            "allergies": p.allergies, "conditions": p.conditions, "labs": labs,
            "current_medications": p.meds,
        },
    }


def _cancelled(placed: dict, rng: random.Random) -> dict:
    at = dt.datetime.fromisoformat(placed["occurred_at"]) + dt.timedelta(hours=rng.randint(1, 12))
    return {"schema": "rx.order/1", "event_id": _event_id(rng), "event_type": "order.cancelled",
            "occurred_at": iso(at), "order": {"order_id": placed["order"]["order_id"]},
            "patient": {"patient_id": placed["patient"]["patient_id"]}}


def _invalid(placed: dict, rng: random.Random) -> bytes:
    roll = rng.randrange(3)
    if roll == 0:  # cut off mid-line: not JSON
        text = json.dumps(placed, separators=(",", ":"))
        return text[: rng.randint(20, len(text) - 20)].encode()
    doc = json.loads(json.dumps(placed))
    if roll == 1:  # a required field missing
        del doc["order"]["dose"]
    else:  # a number sent as a string: strict types refuse it
        doc["patient"]["weight_kg"] = str(doc["patient"]["weight_kg"])
    return json.dumps(doc, separators=(",", ":")).encode()


def _wire(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def messages(n: int, patients: int | None = None, seed: int = 1) -> Iterator[Message]:
    """n messages in event-time order (lazily: a million fit in no memory to speak of)."""
    rng = random.Random(seed)
    patients = patients or max(1, n // ORDERS_PER_PATIENT)
    heap: list[tuple[dt.datetime, int]] = []
    people: list[_Patient] = []
    for i in range(patients):
        p = _patient(i, rng)
        people.append(p)
        heap.append((p.start, i))
    heapq.heapify(heap)
    later: list[tuple[int, int, Message]] = []  # (emit at, tiebreak, message): cancels, re-sends
    emitted = 0
    while emitted < n:
        if later and later[0][0] <= emitted:
            yield heapq.heappop(later)[2]
            emitted += 1
            continue
        when, i = heapq.heappop(heap)
        p = people[i]
        _, cycle, day = slot(p.doses)
        doc = _placed(p, when, cycle, day, rng)
        p.doses += 1
        days, _, _ = slot(p.doses)
        heapq.heappush(heap, (p.start + dt.timedelta(days=days), i))
        key = p.pid.encode()
        if rng.random() < P_INVALID:
            yield Message(key, _invalid(doc, rng), "invalid")
            emitted += 1
            continue
        value = _wire(doc)
        yield Message(key, value, "placed")
        emitted += 1
        if rng.random() < P_CANCEL:
            heapq.heappush(later, (emitted + rng.randint(1, 20), emitted, Message(
                key, _wire(_cancelled(doc, rng)), "cancelled")))
        if rng.random() < P_DUPLICATE:
            heapq.heappush(later, (emitted + rng.randint(1, 50), -emitted,
                                   Message(key, value, "duplicate")))


@dataclass
class Workload:
    """n messages materialised, with their counts (for the benchmarks that need them twice)."""

    n: int
    patients: int | None = None
    seed: int = 1
    items: list[Message] = field(init=False)
    counts: Counts = field(init=False)

    def __post_init__(self) -> None:
        self.items = list(messages(self.n, self.patients, self.seed))
        self.counts = Counts.of(m.kind for m in self.items)

    @property
    def lines(self) -> list[bytes]:
        return [m.value for m in self.items]

    def write_jsonl(self, path) -> None:
        with open(path, "wb") as f:
            for m in self.items:
                f.write(m.value + b"\n")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for m in messages(count):
        sys.stdout.buffer.write(m.value + b"\n")
