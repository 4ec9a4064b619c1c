"""How fast the core is: `rxgate check` against the standard-library JSON floor, and the
clinical checks against just reading an order.

Offline throughput (issue 10, part 2): the `rxgate check` loop (`check.check_stream`: read a
line, Processor.handle, write each output as a JSON line, here to os.devnull) over a realistic
stream, in orders/s, against the floor of `json.loads` + `json.dumps` of the same lines (and,
for reference, orjson's loads + dumps, where orjson is installed), all measured in the same
run, each figure the median of `--repeat` runs taken in turn. The target is at least 0.45 x
the json floor. Each run is timed by the wall clock and by the process's CPU time; on a
machine shared with other work read the CPU-time ratio (and run it more than once).

Per-event baseline (measured in the same run, same events): reading an order, i.e. the one parse of its
bytes (jiter, with its limits) and the contract validation -- `parse_order_event(raw)`. Also
printed for comparison: the two parses before issue 8 (json.loads, then pydantic's
validate_json), which the one parse replaced.
Measured: Processor.handle (the same, plus dedupe, history and every rule), with patients that
accumulate a realistic history (a dose a week, two co-medications). Prints the per-event times
and the ratio; no threshold is asserted here (machines are noisy), read the ratio.

The streams. `--stream workload` (the default when benchmarks/workload.py is there): the
realistic stream every benchmark of issue 10 shares (many patients on staggered isatuximab
courses, about 20 orders each, with a few percent flagged, cancelled, re-sent and invalid
lines). `--stream weekly` (and always for the per-event part): `--patients` patients
interleaved, each with a dose a week (with labs, an allergy, a condition and two
co-medications), so each patient reaches events/patients doses.

    python benchmarks/bench_processor.py [--events 20000] [--patients 400] [--stream workload|weekly]
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402,F401  (this checkout's services/ first on sys.path)

try:  # a reference figure only (not a dependency of rxgate)
    import orjson
except ImportError:
    orjson = None

from rxgate.check import check_stream
from rxgate.contract import FileSource, OrderEvent, parse_order_event
from pydantic import TypeAdapter
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "order-placed.json"
WORKLOAD = Path(__file__).resolve().parent / "workload.py"  # the shared realistic stream
BASE = {
    "schema": "rx.order/1", "event_type": "order.placed", "occurred_at": "2026-03-02T08:15:00Z",
    "order": {"drug": {"name": "isatuximab"}, "dose": {"value": 700, "unit": "mg"}, "route": "IV",
              "infusion": {"volume_ml": 250, "duration_min": 210}},
    "patient": {"birth_date": "1955-04-12", "sex": "female", "weight_kg": 70, "height_cm": 165,
                "pregnant": False, "lactating": False, "allergies": ["penicillin"],
                "conditions": ["multiple myeloma"],
                "current_medications": [{"name": "pomalidomide"}, {"name": "dexamethasone"}]},
}


def events(n: int, patients: int) -> list[bytes]:
    start = dt.datetime(2026, 1, 5, 9, tzinfo=dt.timezone.utc)
    out = []
    for i in range(n):
        p, k = i % patients, i // patients
        when = start + dt.timedelta(days=7 * k)
        doc = json.loads(json.dumps(BASE))
        doc["event_id"] = f"bench-{i}"
        doc["order"].update(order_id=f"ORD-{i}", scheduled_for=when.isoformat())
        doc["patient"]["patient_id"] = f"P-{p}"
        doc["patient"]["labs"] = [
            {"code": "ANC", "value": 1.8, "unit": "10^9/L", "taken_at": (when - dt.timedelta(days=1)).isoformat()},
            {"code": "PLT", "value": 142, "unit": "10^9/L", "taken_at": (when - dt.timedelta(days=1)).isoformat()},
            {"code": "TBILI", "value": 0.6, "unit": "mg/dL", "taken_at": (when - dt.timedelta(days=1)).isoformat()}]
        out.append(json.dumps(doc).encode())
    return out


def timed(fn, raws) -> float:
    t0 = time.perf_counter()
    for i, raw in enumerate(raws):
        fn(raw, i)
    return (time.perf_counter() - t0) / len(raws)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--patients", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the throughput part (median)")
    ap.add_argument("--stream", choices=("workload", "weekly"), default=None,
                    help="the throughput part's stream (default: workload when there is one)")
    args = ap.parse_args()
    print(f"machine: {harness.machine()}")
    raws = events(args.events, args.patients)
    knowledge = load_knowledge()
    now = dt.datetime.now(dt.timezone.utc)

    def baseline(raw, i):
        raw.decode()
        parse_order_event(raw)

    two_parses = TypeAdapter(OrderEvent)

    def before(raw, i):
        text = raw.decode()
        json.loads(text)
        two_parses.validate_json(text, strict=True)

    processor = Processor(knowledge, DictHistoryStore())

    def full(raw, i):
        processor.handle(raw, FileSource(file="bench", line=i + 1), now)

    # --- offline throughput: `rxgate check` against the JSON floors, same lines, same run ----
    stream = args.stream or ("workload" if WORKLOAD.exists() else "weekly")
    if stream == "workload":
        sys.path.insert(0, str(WORKLOAD.parent))
        from workload import messages

        stream_lines = [m.value for m in messages(args.events)]
    else:
        stream_lines = raws
    lines = b"".join(raw + b"\n" for raw in stream_lines)
    sink = open(os.devnull, "w")

    # each run is timed by the wall clock and by this process's CPU time: on a machine other
    # processes share, the CPU-time figures are the ones that stay put
    def run_check() -> tuple[float, float]:
        stream = io.BytesIO(lines)
        t0, c0 = time.perf_counter(), time.process_time()
        check_stream(stream, "bench", Processor(knowledge, DictHistoryStore()), sink)
        return time.perf_counter() - t0, time.process_time() - c0

    def run_floor(loads, dumps) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for line in io.BytesIO(lines):
            try:
                dumps(loads(line))
            except ValueError:  # an invalid line of the stream
                pass
        return time.perf_counter() - t0, time.process_time() - c0

    run_floor(json.loads, json.dumps)  # warm-up
    checks, floors, orjsons = [], [], []
    for _ in range(args.repeat):
        checks.append(run_check())
        floors.append(run_floor(json.loads, json.dumps))
        if orjson is not None:
            orjsons.append(run_floor(orjson.loads, orjson.dumps))
    n = len(stream_lines)

    def rate(runs, clock: int) -> float:
        return n / statistics.median(r[clock] for r in runs)

    check_rate, floor_rate = rate(checks, 0), rate(floors, 0)
    orjson_rate = rate(orjsons, 0) if orjsons else None
    check_cpu, floor_cpu = rate(checks, 1), rate(floors, 1)

    timed(baseline, raws[:500])  # warm-up
    base = timed(baseline, raws)
    old = timed(before, raws)
    real = timed(full, raws)
    # memory in a separate pass: tracemalloc slows everything it watches
    processor = Processor(knowledge, DictHistoryStore())
    tracemalloc.start()
    timed(full, raws)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    doses = args.events // args.patients
    print(f"events={args.events} patients={args.patients} doses/patient={doses}")
    print(f"baseline (decode+parse+validate): {base * 1e6:8.1f} us/event")
    print(f"  json.loads+validate_json before: {old * 1e6:8.1f} us/event "
          f"(one parse / two parses: {base / old:.2f}x)")
    print(f"processor (all checks + history): {real * 1e6:8.1f} us/event")
    print(f"ratio processor/baseline: {real / base:.2f}x")
    print(f"peak traced memory during processing: {peak / 1e6:.1f} MB "
          f"({peak / args.patients / 1e3:.1f} kB per patient)")
    print(f"offline throughput, median of {args.repeat} runs, the same {n} lines "
          f"(stream {stream}, {len(lines) / n:.0f} bytes a line on average):")
    print(f"  json.loads + json.dumps (the floor): {floor_rate:9,.0f} lines/s")
    if orjson_rate:
        print(f"  orjson.loads + orjson.dumps:         {orjson_rate:9,.0f} lines/s")
    print(f"  rxgate check (check_stream):         {check_rate:9,.0f} orders/s")
    print(f"  by CPU time: json floor {floor_cpu:,.0f} lines/s, rxgate check {check_cpu:,.0f} "
          f"orders/s: {check_cpu / floor_cpu:.3f}x")
    print(f"ratio rxgate check / json floor: {check_rate / floor_rate:.3f}x (target at least "
          f"0.45x)" + (f"; / orjson: {check_rate / orjson_rate:.3f}x" if orjson_rate else ""))


if __name__ == "__main__":
    main()
