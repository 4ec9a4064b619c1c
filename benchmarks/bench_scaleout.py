"""Scale-out: one `rxgate worker` against two in the same group, on 8 partitions, in one run.

N messages of the shared workload (benchmarks/workload.py) are preloaded on `rx.orders.v1` with
--partitions (default 8) of a fresh broker for each case and repetition; then one worker, or
two started together in the same consumer group, handle them (streams.measure reads the
outputs as they come). Reported per case (median of --reps): orders/s over the run phase
(first output to last: start-up excluded, the two workers' initial rebalance included) and
over its second half (after any rebalance), the CPU of the workers and of the broker; then
the ratio two/one. The broker is one process on the same machine: with fewer cores than the
workers and the broker need, a second worker adds no CPU to share (printed as a note).

    python benchmarks/bench_scaleout.py [--orders 20000] [--partitions 8] [--reps 1] [--quick]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import streams  # noqa: E402
from workload import Workload  # noqa: E402


def decided(text: str) -> float:
    """Decisions a worker published, from its /metrics (rxgate_orders_total, both outcomes)."""
    return sum(float(m.group(1)) for m in re.finditer(r"^rxgate_orders_total{[^}]*} (\S+)$", text, re.M))


def one(workers: int, work: Workload, partitions: int, tmp: Path) -> streams.Run:
    broker = streams.fresh_broker(tmp)
    shares: list[float] = []

    def at_end(run: streams.Run, subjects) -> None:
        if run.samples[-1][1] >= run.expected and not shares:
            for s in subjects:
                try:
                    shares.append(decided(s.metrics_text()))
                except OSError:
                    shares.append(float("nan"))

    try:
        streams.prepare(broker.bootstrap, partitions, work.items)
        subjects = [streams.Worker(broker, partitions, tmp, index=i) for i in range(workers)]
        run = streams.measure(subjects, broker, partitions, work.counts.outputs,
                              name=f"{workers} worker(s)", on_sample=at_end)
        run.shares = shares
        return run
    finally:
        broker.stop()


def run(orders: int = 20_000, partitions: int = 8, reps: int = 1) -> dict:
    work = Workload(orders)
    tmp = streams.workdir()
    runs: dict[int, list[streams.Run]] = {1: [], 2: []}
    for _ in range(reps):
        for n in (1, 2):
            runs[n].append(one(n, work, partitions, tmp))
    return {"work": work, "runs": runs, "tmp": tmp}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="6000 orders, 1 repetition")
    args = ap.parse_args()
    if args.quick:
        args.orders, args.reps = 6_000, 1
    print(f"machine: {harness.machine()}")
    r = run(args.orders, args.partitions, args.reps)
    work, runs = r["work"], r["runs"]
    scale = len(work.items) / work.counts.outputs  # outputs/s -> input orders/s
    print(f"workload: {len(work.items)} messages -> {work.counts.outputs} outputs; "
          f"{args.partitions} partitions; {args.reps} repetition(s), fresh broker each; logs in {r['tmp']}")
    print(harness.SHARED_NOTE)
    print()
    med, half = {}, {}
    for n, rs in runs.items():
        rates = [x.rate * scale for x in rs]
        halves = [x.rate_between(0.5, 1.0) * scale for x in rs]
        med[n], half[n] = harness.median(rates), harness.median(halves)
        rep = sorted(rs, key=lambda x: x.rate)[len(rs) // 2]
        incomplete = "" if all(x.complete for x in rs) else \
            f"  INCOMPLETE: {[f'{x.final}/{x.expected}' for x in rs]}"
        print(f"{n} worker(s): {med[n]:>7,.0f} orders/s over the run, {half[n]:>7,.0f} over its "
              f"second half; start {rep.start_seconds:.1f} s, run {rep.run_seconds:.1f} s; "
              f"CPU workers {rep.cpu_percent('subject'):.0f} %, broker "
              f"{rep.cpu_percent('broker'):.0f} %; decisions per worker "
              f"{', '.join(f'{x:,.0f}' for x in getattr(rep, 'shares', []))}{incomplete}")
    cores = os.cpu_count() or 1
    print()
    print(f"os.cpu_count() = {cores} ({len(os.sched_getaffinity(0))} usable)")
    if cores < 4:
        print(f"note: fewer than 4 cores ({cores}) for two workers, the broker and this reader: "
              "once a worker is CPU-bound, a second one has no core of its own, so the ratio "
              "shows what sharing these cores gives, not the design's scale-out; a worker that "
              "waits on the broker (low CPU %) can still gain from a second")
    print(f"two workers / one worker: {harness.ratio(med[2], med[1])} over the run, "
          f"{harness.ratio(half[2], half[1])} over its second half")
    return 0


if __name__ == "__main__":
    sys.exit(main())
