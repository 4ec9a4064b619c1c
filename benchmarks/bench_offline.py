"""`rxgate check` throughput on one core against the JSON floors, measured in the same run.

The same lines (benchmarks/workload.py: a realistic stream of many patients' courses, with
cancellations, re-sends, invalid lines, a few percent flagged) go through:

- rxgate check's core: `check.check_stream` over the lines, the real Processor and the real
  JSON writing of every output (to a sink that only counts lines);
- floor `json`: `json.loads` + `json.dumps` of each line (the standard library);
- floor `orjson`: `orjson.loads` + `orjson.dumps` (when installed);
- floor `pydantic`: the contract's pydantic model parsing each line, nothing else
  (`TypeAdapter(OrderEvent).validate_json`, strict; an invalid line raises and is caught).

Rounds are interleaved (so a busy moment of a shared machine hits every subject alike); the
median round of each is reported. The process is pinned to one core. Then the real CLI,
`rxgate check FILE` in a subprocess (pinned to one core too), once over the same lines:
its wall time with and without the interpreter's and knowledge's start-up (an empty file's
run). The decisions and dead letters written are counted against what the workload holds.

    python benchmarks/bench_offline.py [--orders 20000] [--rounds 3] [--no-cli] [--quick]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  (puts this checkout's services/ first on sys.path)
from workload import Workload  # noqa: E402


class CountingSink(io.TextIOBase):
    """A text output that counts the lines written to it and keeps nothing."""

    def __init__(self) -> None:
        self.lines = 0
        self.decisions = 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        # (a write may hold several outputs: check_stream writes a batch's at once; the text
        # cannot stand inside a dead letter's payload, whose quotes are escaped)
        self.decisions += s.count('{"schema":"rx.decision/1"')
        return len(s)


def core_run(lines: list[bytes]):
    """One pass of rxgate check's core over the lines; returns (seconds, sink)."""
    from rxgate.check import check_stream
    from rxgate.knowledge import load_knowledge
    from rxgate.processor import DictHistoryStore, Processor

    processor = Processor(load_knowledge(), DictHistoryStore())
    data = io.BytesIO(b"".join(line + b"\n" for line in lines))
    sink = CountingSink()
    t0 = time.perf_counter()
    check_stream(data, "bench.jsonl", processor, sink)
    return time.perf_counter() - t0, sink


def floors(lines: list[bytes]) -> dict[str, callable]:
    """name -> a function timing one pass over the lines."""
    from pydantic import TypeAdapter, ValidationError

    from rxgate.contract import OrderEvent

    def stdlib() -> float:
        loads, dumps = json.loads, json.dumps
        t0 = time.perf_counter()
        for line in lines:
            try:
                dumps(loads(line))
            except ValueError:
                pass
        return time.perf_counter() - t0

    adapter = TypeAdapter(OrderEvent)

    def pydantic() -> float:
        validate = adapter.validate_json
        t0 = time.perf_counter()
        for line in lines:
            try:
                validate(line, strict=True)
            except ValidationError:
                pass
        return time.perf_counter() - t0

    out = {"json.loads+json.dumps": stdlib}
    try:
        import orjson
    except ImportError:
        orjson = None
    if orjson is not None:
        def fast() -> float:
            loads, dumps = orjson.loads, orjson.dumps
            t0 = time.perf_counter()
            for line in lines:
                try:
                    dumps(loads(line))
                except orjson.JSONDecodeError:
                    pass
            return time.perf_counter() - t0

        out["orjson loads+dumps"] = fast
    out["pydantic parse only"] = pydantic
    return out


def cli_run(path: Path, pin: bool = True) -> tuple[float, int, int]:
    """`python -m rxgate.cli check FILE` once: (wall seconds, output lines, decisions)."""
    out = path.with_suffix(".out")
    cpus = sorted(os.sched_getaffinity(0))

    def one_core() -> None:
        if pin and len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[0]})

    with open(out, "wb") as f:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rxgate.cli", "check", str(path)], stdout=f,
                       check=True, env=harness.child_env(), preexec_fn=one_core)
        wall = time.perf_counter() - t0
    lines = decisions = 0
    with open(out, "rb") as f:
        for line in f:
            lines += 1
            decisions += line.startswith(b'{"schema":"rx.decision/1"')
    out.unlink()
    return wall, lines, decisions


def run(orders: int = 20_000, rounds: int = 3, cli: bool = True, pin: bool = True) -> dict:
    """Measure; returns the figures (also what tests/test_benchmarks.py checks)."""
    note = harness.pin_one_core() if pin else "not pinned"
    work = Workload(orders)
    lines = work.lines
    subjects = {"rxgate check core": lambda: core_run(lines)[0], **floors(lines)}
    times: dict[str, list[float]] = {name: [] for name in subjects}
    _, sink = core_run(lines[: min(len(lines), 500)])  # warm-up (imports, knowledge, caches)
    for _ in range(rounds):
        for name, fn in subjects.items():
            times[name].append(fn())
    _, sink = core_run(lines)  # the outputs of one full pass, counted
    result = {
        "orders": len(lines), "counts": work.counts, "note": note,
        "rate": {name: len(lines) / harness.median(ts) for name, ts in times.items()},
        "outputs": sink.lines, "decisions": sink.decisions,
    }
    if cli:
        with tempfile.TemporaryDirectory(prefix="rxgate-bench-") as tmp:
            path = Path(tmp) / "orders.jsonl"
            work.write_jsonl(path)
            empty = Path(tmp) / "empty.jsonl"
            empty.write_bytes(b"")
            startup, _, _ = cli_run(empty, pin)
            wall, out_lines, decisions = cli_run(path, pin)
        result["cli"] = {"wall": wall, "startup": startup, "outputs": out_lines,
                         "decisions": decisions}
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=20_000, help="input lines (default 20000)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median reported")
    ap.add_argument("--no-cli", action="store_true", help="skip the `rxgate check FILE` run")
    ap.add_argument("--quick", action="store_true", help="5000 orders, 1 round")
    args = ap.parse_args()
    if args.quick:
        args.orders, args.rounds = 5_000, 1
    print(f"machine: {harness.machine()}")
    r = run(args.orders, args.rounds, cli=not args.no_cli)
    c = r["counts"]
    print(f"workload: {r['orders']} lines: {c.placed} placed, {c.cancelled} cancelled, "
          f"{c.duplicate} re-sent, {c.invalid} invalid; expected outputs {c.outputs}, "
          f"written {r['outputs']} ({r['decisions']} decisions)")
    if r["outputs"] != c.outputs:
        print("WARNING: the outputs written differ from the workload's count")
    print(f"{r['note']}; median of {args.rounds} interleaved round(s); {harness.SHARED_NOTE}")
    rate = r["rate"]
    core = rate["rxgate check core"]
    floor = rate["json.loads+json.dumps"]
    print()
    print(f"{'subject':<26} {'orders/s':>10} {'core / subject':>15}")
    for name, value in rate.items():
        print(f"{name:<26} {value:>10,.0f} {harness.ratio(core, value):>15}")
    if "cli" in r:
        cli = r["cli"]
        run_s = max(cli["wall"] - cli["startup"], 1e-9)
        print(f"`rxgate check FILE` (subprocess, one core): {r['orders'] / cli['wall']:,.0f} orders/s "
              f"wall ({cli['wall']:.2f} s incl. {cli['startup']:.2f} s start-up); "
              f"{r['orders'] / run_s:,.0f} orders/s without start-up; "
              f"{cli['outputs']} outputs ({cli['decisions']} decisions)")
    print(f"core vs the stdlib JSON floor: {core / floor:.3f} x ({core:,.0f} vs {floor:,.0f} orders/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
