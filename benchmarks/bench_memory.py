"""Memory against the number of orders, offline and in the stream: flat once histories are bounded.

The patients are fixed (--patients), so a longer run means longer courses, not more people:
each history saturates after about ten orders (the newest doses kept in full, older ones folded
into a count, seen event ids kept for 30 days of event time), and from then on memory should
not grow with the number of orders.

- offline: `rxgate check`'s core (check.check_stream, the real Processor and JSON writing) in a
  subprocess over the workload (benchmarks/workload.py, generated lazily so the input holds no
  memory), VmRSS and VmHWM (peak) read from /proc/self/status at checkpoints, default 100,000
  and 1,000,000 orders; also the histories' total JSON size;
- stream: the orders preloaded on the embedded broker, `rxgate worker` as a subprocess, its
  VmRSS / VmHWM sampled from /proc/<pid>/status as its outputs pass checkpoints. The default
  million orders take as long as the worker needs for them (at 500 orders/s, over half an
  hour); --stream 20000,100000 is a shorter look.

Growth is reported between the first checkpoint after saturation and the last one, with the
per-patient figures; nothing is asserted.

    python benchmarks/bench_memory.py [--offline 100000,1000000] [--stream 100000,1000000]
                                      [--patients 2000] [--stream-patients 500] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from workload import Counts, messages  # noqa: E402


def _status() -> dict[str, float]:
    pid = os.getpid()
    return {"rss": harness.proc_status_mb(pid, "VmRSS"), "hwm": harness.proc_status_mb(pid, "VmHWM")}


def offline_child(checkpoints: list[int], patients: int) -> None:
    """In the subprocess: handle the workload, print one JSON line per checkpoint."""
    from rxgate.check import check_stream
    from rxgate.knowledge import load_knowledge
    from rxgate.processor import DictHistoryStore, Processor

    from bench_offline import CountingSink

    store = DictHistoryStore()
    processor = Processor(load_knowledge(), store)
    sink = CountingSink()
    print(json.dumps({"orders": 0, **_status(), "histories": 0, "seconds": 0.0}), flush=True)
    t0 = time.perf_counter()
    marks = sorted(checkpoints)

    def report(n: int) -> None:
        print(json.dumps({"orders": n, **_status(), "histories": len(store.histories),
                          "seconds": time.perf_counter() - t0}), flush=True)

    def lines():
        """The workload's lines; memory is read when a checkpoint's lines are all handled
        (check_stream handles a line before it pulls the next)."""
        n = 0
        for m in messages(marks[-1], patients=patients):
            if n in marks:
                report(n)
            yield m.value + b"\n"
            n += 1
        report(n)

    check_stream(lines(), "bench", processor, sink)
    size = sum(len(json.dumps(h.to_dict())) for h in store.histories.values())
    print(json.dumps({"history_json_bytes": size, "outputs": sink.lines}), flush=True)


def offline(checkpoints: list[int], patients: int) -> list[dict]:
    proc = subprocess.run([sys.executable, __file__, "--offline-child",
                           ",".join(map(str, checkpoints)), "--patients", str(patients)],
                          env=harness.child_env(), capture_output=True, text=True, check=True)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def stream(checkpoints: list[int], patients: int, partitions: int) -> tuple[list[dict], Counts]:
    import streams

    marks = sorted(checkpoints)
    counts = Counts()
    out_marks: dict[int, int] = {}  # outputs -> the input count whose prefix yields them

    def items():  # lazily: a million messages are not held here, only on the broker
        for i, m in enumerate(messages(marks[-1], patients=patients), 1):
            counts.add(m.kind)
            if i in marks:
                out_marks[counts.outputs] = i
            yield m

    tmp = streams.workdir()
    broker = streams.fresh_broker(tmp)
    rows: list[dict] = []
    try:
        streams.prepare(broker.bootstrap, partitions, items())
        worker = streams.Worker(broker, partitions, tmp)
        pending = sorted(out_marks)

        def sample(run: "streams.Run", subjects) -> None:
            count = run.samples[-1][1] if run.samples else 0
            while pending and count >= pending[0]:
                pid = subjects[0].pids[0] if subjects[0].pids else None
                if pid is None:
                    return
                rows.append({"orders": out_marks[pending.pop(0)],
                             "rss": harness.proc_status_mb(pid, "VmRSS"),
                             "hwm": harness.proc_status_mb(pid, "VmHWM"),
                             "broker_rss": harness.proc_status_mb(broker.process.pid, "VmRSS")})

        run = streams.measure([worker], broker, partitions, counts.outputs, on_sample=sample)
        if not run.complete:
            rows.append({"incomplete": f"{run.final}/{run.expected} outputs"})
    finally:
        broker.stop()
    return rows, counts


def growth(rows: list[dict], patients: int) -> str:
    base = next((r for r in rows if r.get("orders") == 0), None)
    rows = [r for r in rows if r.get("orders")]
    if len(rows) < 2:
        return "(one checkpoint: no growth to report)"
    a, b = rows[0], rows[-1]
    per_order = (b["rss"] - a["rss"]) * 1024 / max(1, b["orders"] - a["orders"])
    per_patient = (f"; {(b['rss'] - base['rss']) * 1024 / patients:.1f} KiB RSS per patient over "
                   f"the {base['rss']:.0f} MiB before any order") if base else ""
    return (f"RSS {a['rss']:.1f} -> {b['rss']:.1f} MiB from {a['orders']:,} to {b['orders']:,} "
            f"orders: x{b['rss'] / a['rss']:.3f} for x{b['orders'] / a['orders']:.0f} the orders "
            f"({per_order:.3f} KiB per further order{per_patient})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--offline", default="100000,1000000", help="checkpoints (orders)")
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--stream", default="100000,1000000", help="checkpoints (orders); '' skips")
    ap.add_argument("--stream-patients", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--quick", action="store_true",
                    help="offline 20,000 and 100,000 orders (1000 patients); stream 5,000 and "
                         "15,000 (200 patients)")
    ap.add_argument("--offline-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.offline_child:
        offline_child([int(x) for x in args.offline_child.split(",")], args.patients)
        return 0
    if args.quick:
        args.offline, args.patients = "20000,100000", 1000
        args.stream, args.stream_patients = "5000,15000", 200
    print(f"machine: {harness.machine()}")
    off_marks = sorted({int(x) for x in args.offline.split(",") if x})
    report = []
    if off_marks:
        rows = offline(off_marks, args.patients)
        tail = rows.pop() if "history_json_bytes" in rows[-1] else {}
        report.append(("offline (rxgate check core, subprocess)", rows, args.patients))
        if tail:
            report.append(("offline histories", tail, args.patients))
    stream_marks = sorted({int(x) for x in args.stream.split(",") if x})
    if stream_marks:
        rows, _ = stream(stream_marks, args.stream_patients, args.partitions)
        report.append(("stream (rxgate worker, subprocess)", rows, args.stream_patients))
    print(harness.SHARED_NOTE)
    print()
    for name, rows, patients in report:
        if isinstance(rows, dict):
            print(f"{name}: {rows['history_json_bytes'] / patients / 1024:.1f} KiB of history JSON "
                  f"per patient at the end ({rows['outputs']:,} outputs written)")
            continue
        print(f"{name}, {patients} patients:")
        for r in rows:
            if "incomplete" in r:
                print(f"  INCOMPLETE: {r['incomplete']}")
                continue
            extra = f"  broker RSS {r['broker_rss']:.0f} MiB" if r.get("broker_rss") else ""
            hist = f"  histories {r['histories']}" if "histories" in r else ""
            print(f"  after {r['orders']:>9,} orders: RSS {r['rss']:7.1f} MiB  peak (VmHWM) "
                  f"{r['hwm']:7.1f} MiB{hist}{extra}")
        print(f"  {growth(rows, patients)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
