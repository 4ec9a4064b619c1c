"""What writing a patient's changelog record costs: the stream's encoding before and after
PatientHistory.to_record (issue 10).

Runs the Processor over the shared workload and, after every event that changed a patient's
history, makes that patient's record as the worker does at a batch's seal, timing only that:

  old        value = to_dict(); value["_forwarded"] = marks; faust codecs.dumps("json", value)
  record     value, data = to_record({"_forwarded": marks})   (what the worker's seal does)

One variant per pass over the workload (so each sees the kept texts a worker would: its own
earlier writes), passes interleaved over rounds; prints the median over rounds of the mean
microseconds per record, and checks every variant's bytes against the old ones once.

    python benchmarks/bench_record_encode.py [--lines 20000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402,F401  (this checkout's services/ first on sys.path)

from faust.serializers import codecs  # noqa: E402

from rxgate.contract import FileSource  # noqa: E402
from rxgate.knowledge import load_knowledge  # noqa: E402
from rxgate.processor import DictHistoryStore, Processor  # noqa: E402
from workload import Workload  # noqa: E402

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def old(history, marks):
    value = history.to_dict()
    value["_forwarded"] = marks
    return value, codecs.dumps("json", value)


def record(history, marks):
    return history.to_record({"_forwarded": marks})


VARIANTS = {"old": old, "record": record}


def one_pass(lines: list[bytes], knowledge, encode, check: bool) -> tuple[int, int, int]:
    """(records made, their total ns, total bytes) over one Processor run of the lines."""
    store = DictHistoryStore()
    processor = Processor(knowledge, store)
    origin = FileSource(file="bench", line=1)
    clock = time.perf_counter_ns
    count = total = size = 0
    for n, line in enumerate(lines):
        handled = processor.handle(line, origin, NOW)
        if handled.kind not in ("decision", "cancelled") or handled.patient_id is None:
            continue
        history = store.histories[handled.patient_id]
        marks = {str(n % 8): n}
        start = clock()
        value, data = encode(history, marks)
        total += clock() - start
        count += 1
        size += len(data)
        if check:
            want = codecs.dumps("json", {**history.to_dict(), "_forwarded": marks})
            assert data == want, "bytes differ from faust's codec"
            assert codecs.dumps("json", value) == want
    return count, total, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    names = list(VARIANTS)
    lines = Workload(args.lines).lines
    knowledge = load_knowledge()
    print(harness.machine())
    for name in names:  # every variant's bytes are faust's, once
        one_pass(lines[: min(len(lines), 3000)], knowledge, VARIANTS[name], check=True)
    per_record: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotated: none always first
        for name in order:
            count, total, size = one_pass(lines, knowledge, VARIANTS[name], check=False)
            per_record[name].append(total / count / 1000)
        print(f"round {r + 1}: " + ", ".join(f"{n} {per_record[n][-1]:.2f}" for n in names)
              + f" us/record ({count} records, {size / count:.0f} bytes each)")
    base = statistics.median(per_record["old"])
    for name in names:
        m = statistics.median(per_record[name])
        print(f"{name:10s} median {m:6.2f} us/record  ({m / base:.2f} of old; "
              f"rounds {min(per_record[name]):.2f}..{max(per_record[name]):.2f})")


if __name__ == "__main__":
    main()
