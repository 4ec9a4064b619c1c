"""The benchmark harness in its smallest modes: that it measures what it says it measures.

No timing is asserted (benchmarks print figures; machines are noisy): these check that the
shared workload is what its counts say, that the offline benchmark and `rxgate check` write
one output per placed order or invalid line, that the memory benchmark's child reports its
checkpoints, that the /metrics histogram is read right, and that the stream harness sees every
output of the worker and of a baseline loop on a real broker.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def bench(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def test_the_workload_is_the_same_every_time_and_its_kinds_are_what_the_processor_does():
    import datetime as dt

    from rxgate.contract import FileSource
    from rxgate.knowledge import load_knowledge
    from rxgate.processor import DictHistoryStore, Processor

    workload = bench("workload")
    first, again = workload.Workload(600), workload.Workload(600)
    assert first.lines == again.lines
    assert workload.Workload(600, seed=2).lines != first.lines
    c = first.counts
    assert c.total == 600 and c.placed > 500 and c.invalid and c.cancelled and c.duplicate
    processor = Processor(load_knowledge(), DictHistoryStore())
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    want = {"placed": "decision", "invalid": "invalid", "cancelled": "cancelled",
            "duplicate": "duplicate"}
    flagged = 0
    for i, m in enumerate(first.items):
        handled = processor.handle(m.value, FileSource(file="w", line=i + 1), now)
        assert handled.kind == want[m.kind], (i, m.kind, handled.kind)
        flagged += handled.kind == "decision" and handled.outputs[0].outcome == "flagged"
    assert 0 < flagged < 0.2 * c.placed  # a few percent flagged, most approved


def test_offline_benchmark_counts_every_output_of_the_core_and_of_the_cli():
    offline = bench("bench_offline")
    r = offline.run(orders=200, rounds=1, cli=True, pin=False)
    c = r["counts"]
    assert r["outputs"] == c.outputs and r["decisions"] == c.placed
    assert r["cli"]["outputs"] == c.outputs and r["cli"]["decisions"] == c.placed
    assert set(r["rate"]) >= {"rxgate check core", "json.loads+json.dumps", "pydantic parse only"}
    assert all(v > 0 for v in r["rate"].values())


def test_record_encoding_benchmark_times_every_changed_history_and_checks_its_bytes():
    from rxgate.knowledge import load_knowledge

    encode = bench("bench_record_encode")
    lines = bench("workload").Workload(300).lines
    for name, variant in encode.VARIANTS.items():  # check=True: each record against faust's
        count, total_ns, size = encode.one_pass(lines, load_knowledge(), variant, check=True)
        assert 250 < count <= 300 and total_ns > 0 and size > 300 * count, name


def test_memory_benchmark_reports_each_checkpoint_with_every_patient():
    memory = bench("bench_memory")
    rows = memory.offline([100, 300], patients=20)
    tail = rows.pop()
    assert [r["orders"] for r in rows] == [0, 100, 300]
    assert rows[-1]["histories"] == 20 and all(r["rss"] > 0 and r["hwm"] >= r["rss"] for r in rows)
    workload = bench("workload")
    assert tail["outputs"] == workload.Counts.of(m.kind for m in workload.messages(300, 20)).outputs


def test_histogram_quantile_interpolates_within_the_bucket_like_prometheus():
    latency = bench("bench_latency")
    text = "\n".join([
        "# TYPE rxgate_decision_seconds histogram",
        'rxgate_decision_seconds_bucket{le="0.001"} 0.0',
        'rxgate_decision_seconds_bucket{le="0.01"} 50.0',
        'rxgate_decision_seconds_bucket{le="0.1"} 100.0',
        'rxgate_decision_seconds_bucket{le="+Inf"} 100.0',
        "rxgate_decision_seconds_count 100.0",
    ])
    p50, n = latency.histogram_quantile(text, "rxgate_decision_seconds", 0.5)
    p99, _ = latency.histogram_quantile(text, "rxgate_decision_seconds", 0.99)
    assert n == 100 and p50 == pytest.approx(0.01)
    assert p99 == pytest.approx(0.01 + 0.09 * 49 / 50)


@pytest.mark.broker
def test_stream_benchmark_sees_every_output_of_the_worker_and_of_the_baselines(tmp_path):
    stream = bench("bench_stream")
    r = stream.run(orders=150, partitions=2, reps=1, only=("worker", "changelog", "passthrough"),
                   tmp=tmp_path)
    work, runs = r["work"], r["runs"]
    for kind, (run,) in runs.items():
        want = len(work.items) if kind == "passthrough" else work.counts.outputs
        assert run.expected == want and run.final == want, (kind, run.final, want)
        assert run.start_seconds > 0  # a rate needs two reads with outputs: not at this size
