"""One history per patient whatever partitioner the producer uses (librdkafka's CRC32 vs murmur2).

A patient's doses are published alternately with confluent-kafka (librdkafka's default
partitioner, `consistent_random`: CRC32 of the key) and with aiokafka (murmur2, as Kafka's Java
client), to patients for whom the two disagree, with two workers in one group and one of them
restarted between doses. Every dose that comes too soon after the previous one must be flagged,
whichever client sent either dose, and every placed event must get exactly one decision.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import zlib

import pytest
from confluent_kafka import Producer

from rxgate.stream.partitioning import canonical_partition
from rxgate.stream.runner import WorkerProcess

from .conftest import PARTITIONS
from .kafka import decisions_by_event, publish, read_outputs
from .orders import T0, new_patient_id, placed, wire

pytestmark = pytest.mark.broker

TOO_SOON = "isatuximab.interval.too_soon_after_previous"


def publish_librdkafka(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """Send with confluent-kafka's default partitioner; returns key -> partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "enable.idempotence": False})  # Tansu refuses InitProducerId
    partitions: dict[bytes, int] = {}
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            partitions[msg.key()] = msg.partition()

    for key, value in messages:
        producer.produce("rx.orders.v1", value=value, key=key, on_delivery=delivered)
    assert producer.flush(60) == 0, "confluent-kafka did not deliver everything"
    assert not errors, errors
    return partitions


def disagreeing_patients(count: int) -> list[str]:
    """Patient ids for which CRC32 (librdkafka) and murmur2 pick different partitions."""
    found: list[str] = []
    while len(found) < count:
        pid = new_patient_id("PART")
        if zlib.crc32(pid.encode()) % PARTITIONS != canonical_partition(pid, PARTITIONS):
            found.append(pid)
    return found


def offpartition_total(worker: WorkerProcess) -> float:
    match = re.search(r"^rxgate_offpartition_total (\S+)$", worker.metrics_text(), re.M)
    return float(match.group(1)) if match else 0.0


def test_any_partitioner_one_history_two_workers_and_a_restart(fresh_broker, tmp_path):
    bootstrap = fresh_broker.bootstrap
    patients = disagreeing_patients(6)
    # dose k of each patient: (days after T0, client, expected too soon?)
    plan = [(0, "librdkafka", False),    # first dose
            (2, "aiokafka", True),       # 2 days after dose 1: needs 7 (tolerance 1)
            (7, "librdkafka", True),     # 5 days after dose 2 (a flagged dose still counts)
            (10, "aiokafka", True),      # 3 days after dose 3
            (17, "librdkafka", False)]   # 7 days after dose 4: on time
    events: dict[tuple[str, int], dict] = {}
    group = "rxgate-partitioners"
    a = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                      log_path=tmp_path / "worker-a.log")
    b = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                      log_path=tmp_path / "worker-b.log")
    with a, b:
        a.wait_healthy()
        b.wait_healthy()
        for k, (days, client, _) in enumerate(plan):
            batch = []
            for pid in patients:
                event = placed(pid, f"{pid}-{k}", T0 + dt.timedelta(days=days), cycle=1, day=1)
                del event["order"]["regimen"]  # the history alone places the dose
                del event["order"]["frequency"]
                events[(pid, k)] = event
                batch.append(wire(event))
            if client == "librdkafka":
                landed = publish_librdkafka(bootstrap, batch)
                assert all(landed[pid.encode()] != canonical_partition(pid, PARTITIONS)
                           for pid in patients), "the partitioners agreed"
            else:
                landed = [p for p, _ in publish(bootstrap, batch)]
                assert landed == [canonical_partition(pid, PARTITIONS) for pid in patients]
            ids = {events[(pid, k)]["event_id"] for pid in patients}
            read_outputs(bootstrap, until=lambda o: ids <= set(decisions_by_event(o)),
                         timeout=120)
            if k == 1:  # a worker restarted between doses: its partitions move and come back
                a.stop()
                a.start()
                a.wait_healthy()
        forwarded = offpartition_total(a) + offpartition_total(b)

    outs = read_outputs(bootstrap)
    decisions = decisions_by_event(outs)
    every_placed = {e["event_id"] for e in events.values()}
    assert set(decisions) == every_placed
    twice = {e: len(d) for e, d in decisions.items() if len(d) > 1}
    assert not twice, f"events with more than one decision: {twice}"
    wrong = []
    for (pid, k), event in sorted(events.items()):
        [out] = decisions[event["event_id"]]
        message = out.message
        rules = {f["rule_id"] for f in message["findings"]}
        too_soon = plan[k][2]
        assert out.partition == canonical_partition(pid, PARTITIONS)  # one home per patient
        if too_soon and (TOO_SOON not in rules or message["outcome"] != "flagged"):
            wrong.append(f"dose {k} ({plan[k][0]} d, {plan[k][1]}) of {pid}: "
                         f"{message['outcome']} {sorted(rules)}")
        if not too_soon and TOO_SOON in rules:
            wrong.append(f"dose {k} of {pid} flagged too soon: "
                         f"{json.dumps(message['findings'])}")
    assert not wrong, "\n".join(wrong)
    # doses 3 and 5 went through the repartition topic after the restart (counters restart)
    assert forwarded >= len(patients) * 2, forwarded
