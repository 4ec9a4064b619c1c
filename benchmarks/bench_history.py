"""Per-order cost and changelog record size against the length of a patient's course.

For 10, 100 and 1,000 earlier isatuximab doses (the plan's days: weekly x4, then every two
weeks, regimen on each order), builds one patient's history through the Processor, then times
one more order many times, each time from that same stored history. The history store keeps
JSON text as the stream's faust table does (json + from_dict on read, to_dict + json on write),
so the cost includes (de)serialising the record. Record size is len(json.dumps(to_dict())).

Two histories: the bounded one (default: older doses folded per drug, issue 7) and, for
contrast, `fold=None` (every active order kept in full, as before issue 7). Ratios are against
the 10-dose case of the same history, measured in this run; nothing is asserted (machines are
noisy), read the ratios.

    python benchmarks/bench_history.py [--reps 100] [--rounds 7]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402,F401  (this checkout's services/ first on sys.path)

from rxgate.contract import FileSource
from rxgate.history import PatientHistory
from rxgate.knowledge import load_knowledge
from rxgate.processor import Processor

START = dt.datetime(2020, 1, 6, 9, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
COUNTS = (10, 100, 1000)


class JsonStore:
    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    def get(self, patient_id: str) -> PatientHistory | None:
        row = self.rows.get(patient_id)
        return PatientHistory.from_dict(json.loads(row)) if row is not None else None

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.rows[patient_id] = json.dumps(history.to_dict())


def slot_day(slot: int) -> tuple[int, tuple[int, int]]:
    if slot < 4:
        return 7 * slot, (1, 1 + 7 * slot)
    return 28 + 14 * (slot - 4), (2 + (slot - 4) // 2, 1 if (slot - 4) % 2 == 0 else 15)


def order(slot: int, n: int) -> bytes:
    days, (cycle, day) = slot_day(slot)
    when = START + dt.timedelta(days=days)
    taken = (when - dt.timedelta(days=1)).isoformat()
    return json.dumps({
        "schema": "rx.order/1", "event_id": f"E-{n}", "event_type": "order.placed",
        "occurred_at": (when - dt.timedelta(hours=20)).isoformat(),
        "order": {"order_id": f"O-{n}", "drug": {"name": "isatuximab"},
                  "dose": {"value": 700, "unit": "mg"}, "route": "IV",
                  "infusion": {"volume_ml": 250, "duration_min": 210},
                  "scheduled_for": when.isoformat(),
                  "regimen": {"name": "Isa-Pd", "cycle": cycle, "day": day}},
        "patient": {"patient_id": "P-1", "birth_date": "1955-04-12", "sex": "female",
                    "weight_kg": 70, "height_cm": 165, "pregnant": False, "lactating": False,
                    "allergies": [], "conditions": ["multiple myeloma"],
                    "current_medications": [{"name": "pomalidomide"}, {"name": "dexamethasone"}],
                    "labs": [{"code": "ANC", "value": 1.8, "unit": "10^9/L", "taken_at": taken},
                             {"code": "PLT", "value": 142, "unit": "10^9/L", "taken_at": taken},
                             {"code": "TBILI", "value": 0.6, "unit": "mg/dL", "taken_at": taken}]},
    }).encode()


def build(processor: Processor, store: JsonStore, earlier: int) -> str:
    """The stored record of one patient after `earlier` doses."""
    store.rows.clear()
    for k in range(earlier):
        processor.handle(order(k, k), FileSource(file="bench", line=k + 1), NOW)
    return store.rows["P-1"]


def batch(processor: Processor, store: JsonStore, row: str, nxt: bytes, reps: int) -> float:
    """Mean seconds per order: `nxt` handled `reps` times, each time from the same record."""
    total = 0.0
    for _ in range(reps):
        store.rows["P-1"] = row
        t0 = time.perf_counter()
        handled = processor.handle(nxt, FileSource(file="bench", line=1), NOW)
        total += time.perf_counter() - t0
        assert handled.kind == "decision"
    return total / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=100, help="orders per batch")
    ap.add_argument("--rounds", type=int, default=7, help="batches per size, interleaved")
    args = ap.parse_args()
    print(f"machine: {harness.machine()}")
    knowledge = load_knowledge()
    for label, kw in (("bounded (default)", {}), ("fold=None (every order kept)", {"fold": None})):
        store = JsonStore()
        processor = Processor(knowledge, store, **kw)
        rows = {n: build(processor, store, n) for n in COUNTS}
        times: dict[int, list[float]] = {n: [] for n in COUNTS}
        for _ in range(args.rounds):  # interleaved, so a busy moment hits every size alike
            for n in COUNTS:
                times[n].append(batch(processor, store, rows[n], order(n, n), args.reps))
        cost = {n: min(ts) for n, ts in times.items()}  # the least disturbed batch (shared CPUs)
        size = {n: len(rows[n]) for n in COUNTS}
        base = COUNTS[0]
        print(f"{label}  (best of {args.rounds} interleaved batches of {args.reps} orders)")
        print(f"  {'earlier doses':>13} {'us/order':>10} {'x 10-dose':>9} {'record bytes':>13} {'x 10-dose':>9}")
        for n in COUNTS:
            print(f"  {n:>13} {cost[n] * 1e6:>10.1f} {cost[n] / cost[base]:>9.2f} {size[n]:>13} "
                  f"{size[n] / size[base]:>9.2f}")


if __name__ == "__main__":
    main()
