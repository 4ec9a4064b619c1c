"""Chaos: 20,000+ orders while workers are killed, join and leave, and the knowledge breaks.

Half the patients are published with confluent-kafka (librdkafka's CRC32 partitioner: their
events go through the repartition topic), half with aiokafka (murmur2). During the stream the
first worker is killed with SIGKILL three times and restarted, a second worker joins and later
is killed, and the mounted knowledge directory is replaced by a malformed one during a rolling
restart: the running worker refuses it (logged, counted) and keeps serving the old version, a
restarted worker refuses to start on it. Afterwards every placed event has exactly one
decision, equal to `rxgate check`'s, and every unreadable input exactly one dead letter.
"""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import pytest

from rxgate.contract import FileSource, to_json
from rxgate.knowledge import BUILTIN_DIR
from rxgate.stream.runner import WorkerFailed, WorkerProcess

from .conftest import PARTITIONS, now
from .kafka import (dead_letters, decisions_by_event, output_count, publish, read_outputs, settle,
                    wait_for)
from .test_partitioners import publish_librdkafka
from .test_restart import kill_test_stream

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def metric(worker: WorkerProcess, name: str) -> float:
    try:
        text = worker.metrics_text()
    except OSError:
        return -1.0
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_chaos_kills_joins_and_a_broken_knowledge_roll(fresh_broker, tmp_path, processor):
    group = "rxgate-chaos"
    stream = kill_test_stream(patients=2000)
    placed_ids = {json.loads(v)["event_id"] for _, v in stream
                  if v.startswith(b"{") and b'"order.placed"' in v}
    assert len(placed_ids) >= 20_000
    expected = [o for n, (_, value) in enumerate(stream, 1)
                for o in processor.handle(value, FileSource(file="chaos", line=n), now()).outputs]
    expected_decisions = {d.event_id: json.loads(to_json(d)) for d in expected
                          if d.__class__.__name__ == "Decision"}
    invalid_inputs = len(expected) - len(expected_decisions)
    # one producer per patient keeps each patient's events in order; unreadable lines (no
    # key) go with aiokafka
    by_librdkafka = [(k, v) for k, v in stream if k is not None and k[-1] % 2 == 0]
    by_aiokafka = [(k, v) for k, v in stream if k is None or k[-1] % 2 == 1]

    knowledge = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, knowledge)
    monograph = knowledge / "drugs" / "isatuximab.toml"
    good = monograph.read_text(encoding="utf-8")
    env = {"RXGATE_KNOWLEDGE_DIR": str(knowledge), "RXGATE_KNOWLEDGE_POLL_SECONDS": "1"}
    a = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                      log_path=tmp_path / "worker-a.log", env=env)
    b = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                      log_path=tmp_path / "worker-b.log", env=env)
    total = len(expected)

    def reach(share: float) -> None:
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= share * total, timeout=400,
                 what=f"{share:.0%} of the outputs", poll=0.1)

    try:
        a.start()
        a.wait_healthy()
        publish_librdkafka(fresh_broker.bootstrap, by_librdkafka)
        positions = publish(fresh_broker.bootstrap, by_aiokafka)
        reach(0.12)
        a.kill()
        a.start()
        a.wait_healthy()
        reach(0.25)
        b.start()  # a second worker joins
        b.wait_healthy()
        reach(0.40)
        a.kill()
        a.start()
        a.wait_healthy()
        reach(0.50)
        # a rolling restart onto a malformed knowledge directory
        monograph.write_text(good.replace("[dose]", "[dose]\nlabeled_mg_per_kg_typo = nan\n", 1),
                             encoding="utf-8")
        wait_for(lambda: metric(b, "rxgate_knowledge_refused_total") >= 1, 30,
                 "the running worker to refuse the malformed knowledge")
        a.stop()
        a.start()
        a.process.wait(timeout=120)
        assert a.process.returncode == 2, a.log_tail()
        assert "RXGATE_KNOWLEDGE_DIR" in a.log_tail()
        a.stop()
        reach(0.60)  # the old version keeps serving on the other worker
        monograph.write_text(good, encoding="utf-8")
        a.start()
        a.wait_healthy()
        reach(0.70)
        b.kill()  # the second worker leaves the hard way
        reach(0.80)
        a.kill()
        a.start()
        a.wait_healthy()
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= total, timeout=400,
                 what="every input's output")
        settle(lambda: output_count(fresh_broker.bootstrap), seconds=8)
        refused_logged = "cannot be loaded" in (tmp_path / "worker-b.log").read_text()
    except WorkerFailed:
        raise
    finally:
        a.stop()
        b.stop()

    assert refused_logged
    outs = read_outputs(fresh_broker.bootstrap)
    decisions = decisions_by_event(outs)
    missing = placed_ids - set(decisions)
    twice = {e: [(o.topic, o.partition, o.offset, o.source) for o in d]
             for e, d in decisions.items() if len(d) > 1}
    assert not missing, f"{len(missing)} placed events without a decision"
    assert not twice, f"{len(twice)} events with more than one decision: {list(twice.values())[:3]}"
    mismatched = []
    for event_id, [out] in decisions.items():
        got = {k: v for k, v in out.message.items() if k != "decided_at"}
        want = {k: v for k, v in expected_decisions[event_id].items() if k != "decided_at"}
        if got != want:
            mismatched.append((event_id, got.get("findings"), want.get("findings")))
    assert not mismatched, f"{len(mismatched)} decisions differ from rxgate check's: {mismatched[:2]}"
    letters = Counter((o.message["source"]["partition"], o.message["source"]["offset"])
                      for o in dead_letters(outs))
    assert len(letters) == invalid_inputs and set(letters.values()) == {1}
    garbage = {p for p, (_, v) in zip(positions, by_aiokafka) if b"cut off" in v}
    assert set(letters) == garbage
