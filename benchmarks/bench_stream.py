"""Stream throughput: `rxgate worker` against plain aiokafka loops over the same Processor and a
passthrough, on the embedded broker, the same messages on the same partitions, in one run.

N messages of the shared workload (benchmarks/workload.py) are preloaded on `rx.orders.v1`
(--partitions, default 4) of a fresh broker for each subject and repetition; then:

  (a) `rxgate worker`, this checkout's, as a subprocess
  (b) a plain aiokafka loop calling the same Processor, one changelog record per order to a
      compacted topic, acks awaited per batch, offsets committed per batch (loops.py)
  (c) the same loop without the changelog
  (d) a plain consume-and-produce passthrough, no checks

Each writes the worker's output topics; a reader in this process consumes them as they come
(streams.measure). Reported per subject (median of --reps): start (spawn to the first output: interpreter,
knowledge, group join, read-back), run (first output to the last), orders/s over the run phase
(outputs of the run phase / its duration; an order is an input message, outputs/s is scaled by
inputs/outputs of the workload), the first-third and last-third rates (decay), and the CPU
the subject and the broker used during the run phase. Then the ratios worker/(b), worker/(c),
worker/(d). Nothing is asserted.

    python benchmarks/bench_stream.py [--orders 50000] [--partitions 4] [--reps 3]
                                      [--only worker,changelog,processor,passthrough] [--quick]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import streams  # noqa: E402
from workload import Workload  # noqa: E402

SUBJECTS = ("worker", "changelog", "processor", "passthrough")


def one(kind: str, work: Workload, partitions: int, tmp: Path, batch: int) -> streams.Run:
    broker = streams.fresh_broker(tmp)
    try:
        streams.prepare(broker.bootstrap, partitions, work.items)
        expected = len(work.items) if kind == "passthrough" else work.counts.outputs
        subject = (streams.Worker(broker, partitions, tmp) if kind == "worker"
                   else streams.Loop(kind, broker, partitions, tmp, batch))
        return streams.measure([subject], broker, partitions, expected)
    finally:
        broker.stop()


def run(orders: int = 50_000, partitions: int = 4, reps: int = 3,
        only: tuple[str, ...] = SUBJECTS, batch: int = 500, tmp: Path | None = None) -> dict:
    """Measure; `tmp` keeps the logs (default: a new temporary directory, left for a look)."""
    work = Workload(orders)
    tmp = tmp or streams.workdir()
    runs: dict[str, list[streams.Run]] = {k: [] for k in only}
    for _ in range(reps):  # interleaved: a busy moment of the machine hits every subject alike
        for kind in only:
            runs[kind].append(one(kind, work, partitions, tmp, batch))
    return {"work": work, "runs": runs, "tmp": tmp}


def orders_per_second(r: streams.Run, work: Workload, kind: str) -> float:
    """Input orders per second: the passthrough has one output per input, the others one per
    placed order or invalid line."""
    outputs = len(work.items) if kind == "passthrough" else work.counts.outputs
    return r.rate * len(work.items) / outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=500, help="the loops' batch (max records)")
    ap.add_argument("--only", default=",".join(SUBJECTS), help="comma-separated subjects")
    ap.add_argument("--quick", action="store_true", help="10000 orders, 1 repetition")
    ap.add_argument("--stand-in", action="store_true",
                    help="decide with no rule checks (benchmark stand-in): the shell's ceiling")
    args = ap.parse_args()
    if args.quick:
        args.orders, args.reps = 10_000, 1
    only = tuple(k for k in args.only.split(",") if k)
    print(f"machine: {harness.machine()}")
    if args.stand_in:
        print(harness.use_stand_in())
    r = run(args.orders, args.partitions, args.reps, only, args.batch)
    work, runs = r["work"], r["runs"]
    c = work.counts
    print(f"workload: {len(work.items)} messages ({c.placed} placed, {c.cancelled} cancelled, "
          f"{c.duplicate} re-sent, {c.invalid} invalid) -> {c.outputs} outputs; "
          f"{args.partitions} partitions; {args.reps} repetition(s), fresh broker each; logs in {r['tmp']}")
    print(harness.SHARED_NOTE)
    print()
    print(f"{'subject':<30} {'orders/s':>9} {'start s':>8} {'run s':>7} {'1st third':>9} "
          f"{'last third':>10} {'last/1st':>8} {'CPU %':>6} {'broker %':>8}  all reps (orders/s)")
    med: dict[str, float] = {}
    for kind, rs in runs.items():
        rates = [orders_per_second(x, work, kind) for x in rs]
        m = harness.median(rates)
        med[kind] = m
        # the repetition whose rate is the median one, for its phases
        rep = sorted(rs, key=lambda x: orders_per_second(x, work, kind))[len(rs) // 2]
        scale = len(work.items) / (len(work.items) if kind == "passthrough" else c.outputs)
        first, last = (x * scale for x in rep.thirds())
        incomplete = "" if all(x.complete for x in rs) else \
            f"  INCOMPLETE: {[f'{x.final}/{x.expected}' for x in rs]}"
        print(f"{rep.name:<30} {m:>9,.0f} {rep.start_seconds:>8.1f} {rep.run_seconds:>7.1f} "
              f"{first:>9,.0f} {last:>10,.0f} {harness.ratio(last, first):>8} "
              f"{rep.cpu_percent('subject'):>6.0f} {rep.cpu_percent('broker'):>8.0f}  "
              f"{', '.join(f'{x:,.0f}' for x in rates)}{incomplete}")
    print()
    if "worker" in med:
        for kind, label in (("changelog", "(b) loop + Processor + changelog"),
                            ("processor", "(c) loop + Processor"),
                            ("passthrough", "(d) passthrough")):
            if kind in med:
                print(f"worker / {label}: {harness.ratio(med['worker'], med[kind])}")
        w = sorted(runs["worker"], key=lambda x: orders_per_second(x, work, "worker"))[len(runs["worker"]) // 2]
        first, last = w.thirds()
        trend = ("decays" if last < 0.8 * first else "speeds up" if last > 1.2 * first
                 else "flat within 20 %")
        print(f"worker decay (last third / first third of the run): {harness.ratio(last, first)}"
              f" ({trend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
