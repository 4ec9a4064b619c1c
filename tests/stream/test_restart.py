"""State and exactly-once across worker restarts: a clean stop, and SIGKILL mid-stream."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter

from aiokafka import TopicPartition

import pytest

from rxgate.contract import FileSource, to_json
from rxgate.stream.runner import WorkerProcess

from .conftest import PARTITIONS, now
from .kafka import (caught_up_consumer, committed_offsets, dead_letters, decisions_by_event,
                    log_ends, output_count, publish, read_outputs, settle, wait_for)
from .orders import SCHEDULE, T0, cancelled, new_patient_id, on_schedule, placed, wire

pytestmark = pytest.mark.broker


def test_a_restarted_worker_remembers_its_patients(fresh_broker, tmp_path):
    worker = WorkerProcess(fresh_broker.url, group="rxgate-restart", partitions=PARTITIONS,
                           log_path=tmp_path / "worker.log")
    pid = new_patient_id()
    first = placed(pid, "O-first", T0)
    too_soon = placed(pid, "O-too-soon", T0 + dt.timedelta(days=3), cycle=1, day=8)
    with worker:
        worker.wait_healthy()
        publish(fresh_broker.bootstrap, [wire(first)])
        read_outputs(fresh_broker.bootstrap, until=lambda o: first["event_id"] in
                     decisions_by_event(o))
    assert worker.process.returncode == 0, worker.log_tail()

    with worker:
        worker.wait_healthy()
        # the history of O-first is only in the table's changelog now
        publish(fresh_broker.bootstrap, [wire(first), wire(too_soon)])
        outs = read_outputs(fresh_broker.bootstrap, until=lambda o: too_soon["event_id"] in
                            decisions_by_event(o))
    decisions = decisions_by_event(outs)
    assert len(decisions[first["event_id"]]) == 1  # the re-sent event is known after restart
    [late] = decisions[too_soon["event_id"]]
    interval = [f for f in late.message["findings"] if f["category"] == "interval"]
    assert interval and "O-first" in json.dumps(interval), late.message["findings"]


def kill_test_stream(patients: int = 520) -> list[tuple[bytes | None, bytes]]:
    """>= 5,000 order events in time order: 10 doses per patient, some overdosed (flagged),
    some sent twice, some cancelled, and now and then a line that is not JSON."""
    ids = [new_patient_id("KILL") for _ in range(patients)]
    stream: list[tuple[bytes | None, bytes]] = []
    for k, (cycle, day) in enumerate(SCHEDULE):
        for i, pid in enumerate(ids):
            event = placed(pid, f"{pid}-{k}", on_schedule(cycle, day) + dt.timedelta(hours=i % 9),
                           cycle=cycle, day=day, mg=1400 if (i + k) % 17 == 0 else 700)
            stream.append(wire(event))
            if i % 50 == 7:
                stream.append(wire(event))  # the same event again
            if i % 40 == 3 and k == 5:
                gone = cancelled(pid, f"{pid}-{k}",
                                 on_schedule(cycle, day) - dt.timedelta(hours=3))
                stream.append((pid.encode(), json.dumps(gone).encode()))
        stream.append((None, b'{"schema": "rx.order/1", "event_id": "cut off'))
    return stream


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_decision_and_duplicates_none(fresh_broker, tmp_path,
                                                                   processor):
    group = "rxgate-kill"
    stream = kill_test_stream()
    placed_ids = {json.loads(v)["event_id"] for _, v in stream
                  if v.startswith(b"{") and b'"order.placed"' in v}
    assert len(placed_ids) >= 5000
    # what the offline check makes of the same events, in the same order
    expected = [o for n, (_, value) in enumerate(stream, 1)
                for o in processor.handle(value, FileSource(file="kill", line=n), now()).outputs]
    expected_decisions = {d.event_id: json.loads(to_json(d)) for d in expected
                          if d.__class__.__name__ == "Decision"}
    assert set(expected_decisions) == placed_ids
    invalid_inputs = len(expected) - len(expected_decisions)

    worker = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                           log_path=tmp_path / "worker.log")
    worker.start()
    try:
        worker.wait_healthy()
        positions = publish(fresh_broker.bootstrap, stream)
        for share in (1 / 3, 2 / 3):
            wait_for(lambda: output_count(fresh_broker.bootstrap) >= share * len(expected),
                     timeout=300, what=f"{share:.0%} of the outputs", poll=0.05)
            worker.kill()  # mid-stream: outputs in flight, offsets not committed
            worker.start()
            worker.wait_healthy()
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= len(expected), timeout=300,
                 what="every input's output")
        # anything published twice would be published by now: the worker has nothing to do
        wait_for(lambda: "rxgate_decision_seconds_count" in worker.metrics_text(), 30, "metrics")
        settle(lambda: output_count(fresh_broker.bootstrap), seconds=8)
        metrics = worker.metrics_text()
    finally:
        worker.stop()

    outs = read_outputs(fresh_broker.bootstrap)
    decisions = decisions_by_event(outs)
    twice = {e: [(o.topic, o.partition, o.offset, o.source) for o in d]
             for e, d in decisions.items() if len(d) > 1}
    missing = placed_ids - set(decisions)
    assert not missing, f"{len(missing)} placed events without a decision"
    assert not twice, (f"{len(twice)} events with more than one decision, e.g. "
                       f"{list(twice.values())[:3]}\n{worker.log_tail(60)}")
    assert set(decisions) == placed_ids
    for event_id, [out] in decisions.items():
        got = {k: v for k, v in out.message.items() if k != "decided_at"}
        want = {k: v for k, v in expected_decisions[event_id].items() if k != "decided_at"}
        assert got == want  # the histories survived both kills
    letters = Counter((o.message["source"]["partition"], o.message["source"]["offset"])
                      for o in dead_letters(outs))
    assert len(letters) == invalid_inputs and set(letters.values()) == {1}
    invalid_positions = {p for p, (_, v) in zip(positions, stream) if b"cut off" in v}
    assert set(letters) == invalid_positions
    print(f"\n{len(stream)} inputs, {len(decisions)} decisions, {len(letters)} dead letters; "
          + " ".join(line for line in metrics.splitlines()
                     if line.startswith(("rxgate_redelivered_total", "rxgate_duplicates_total"))))


def _changelog_records(bootstrap: str, group: str) -> int:
    async def run() -> int:
        consumer = caught_up_consumer(bootstrap, None)
        await consumer.start()
        try:
            tps = [TopicPartition(f"{group}-patient-history-changelog", p)
                   for p in range(PARTITIONS)]
            consumer.assign(tps)
            return sum((await log_ends(consumer, tps)).values())
        finally:
            await consumer.stop()

    return asyncio.run(run())


def test_sigkill_in_the_middle_of_a_batch_decides_each_event_once(fresh_broker, tmp_path,
                                                                   processor):
    """One large batch (RXGATE_BATCH_MAX, RXGATE_BATCH_WAIT_MS): the worker is killed once
    some of its outputs are published, before the batch's histories are written and its
    offsets committed; after the restart every event has exactly one decision, the one the
    offline check makes."""
    group = "rxgate-kill-batch"
    stream = kill_test_stream(patients=200)
    expected = [o for n, (_, value) in enumerate(stream, 1)
                for o in processor.handle(value, FileSource(file="batch", line=n), now()).outputs]
    want = {d.event_id: json.loads(to_json(d)) for d in expected
            if d.__class__.__name__ == "Decision"}
    env = {"RXGATE_BATCH_MAX": str(len(stream)), "RXGATE_BATCH_WAIT_MS": "1000"}
    worker = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                           log_path=tmp_path / "worker.log", env=env)
    worker.start()
    try:
        worker.wait_healthy()
        publish(fresh_broker.bootstrap, stream)
        wait_for(lambda: output_count(fresh_broker.bootstrap) > 0, timeout=300,
                 what="the first outputs of the batch", poll=0.02)
        worker.kill()
        published = output_count(fresh_broker.bootstrap)
        # the kill came in the middle of the batch: some outputs sent, no history written,
        # no offset committed
        assert 0 < published < len(expected), published
        assert _changelog_records(fresh_broker.bootstrap, group) == 0
        committed = committed_offsets(fresh_broker.bootstrap, group).values()
        assert all(offset is None or offset <= 0 for offset in committed), committed
        worker.start()
        worker.wait_healthy()
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= len(expected), timeout=300,
                 what="every input's output")
        settle(lambda: output_count(fresh_broker.bootstrap), seconds=5)
    finally:
        worker.stop()
    outs = read_outputs(fresh_broker.bootstrap)
    decisions = decisions_by_event(outs)
    assert set(decisions) == set(want)
    twice = [e for e, d in decisions.items() if len(d) > 1]
    assert not twice, f"{len(twice)} events decided twice\n{worker.log_tail(40)}"
    for event_id, [out] in decisions.items():
        got = {k: v for k, v in out.message.items() if k != "decided_at"}
        assert got == {k: v for k, v in want[event_id].items() if k != "decided_at"}
    assert len(dead_letters(outs)) == len(expected) - len(want)
