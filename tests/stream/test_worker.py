"""The streaming validator over real sockets: one Tansu broker, one `rxgate worker` process.

Every test publishes its own patients' events (fresh ids) and reads the output topics back.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rxgate.contract import TopicSource, to_json
from rxgate.stream.config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC, ORDERS_TOPIC

from .conftest import now
from .kafka import dead_letters, decisions_by_event, publish, read_outputs
from .orders import SCHEDULE, T0, cancelled, new_patient_id, on_schedule, placed, wire

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "order-placed.json"
DEMO = ROOT / "services" / "rxgate" / "examples" / "demo-orders.jsonl"


def without_decided_at(message: dict) -> dict:
    assert dt.datetime.fromisoformat(message["decided_at"]).tzinfo is not None
    return {k: v for k, v in message.items() if k != "decided_at"}


def decided(*event_ids: str):
    return lambda outs: all(e in decisions_by_event(outs) for e in event_ids)


def test_contract_example_gives_the_processors_decision_on_its_topic(broker, worker, processor):
    raw = EXAMPLE.read_bytes()
    event_id = json.loads(raw)["event_id"]
    [(partition, offset)] = publish(broker.bootstrap, [(b"P-001", raw)])

    outs = read_outputs(broker.bootstrap, until=decided(event_id))

    [out] = decisions_by_event(outs)[event_id]
    origin = TopicSource(topic=ORDERS_TOPIC, partition=partition, offset=offset, key="P-001")
    [expected] = processor.handle(raw, origin, now()).outputs
    assert out.topic == (FLAGGED_TOPIC if expected.outcome == "flagged" else APPROVED_TOPIC)
    assert without_decided_at(out.message) == without_decided_at(json.loads(to_json(expected)))
    assert out.key == b"P-001"
    assert out.partition == partition
    assert out.source == (ORDERS_TOPIC, partition, offset)


def test_unreadable_inputs_become_dead_letters_and_the_stream_goes_on(broker, worker):
    pid = new_patient_id()
    key = pid.encode()
    zero_dose = placed(pid, "O-zero", T0, mg=0)
    unknown_drug = placed(pid, "O-unknown", T0, drug="unobtainium")
    valid = placed(pid, "O-valid", on_schedule(1, 8), cycle=1, day=8)
    huge = b'{"schema": "rx.order/1", "padding": "' + b"x" * (1024 * 1024 + 100) + b'"}'
    bad = [
        (key, b"\xff\xfe\x00 not UTF-8", "encoding"),
        (None, b'{"schema": "rx.order/1", "event_id": "abc" "event_type": }', "json"),
        (b"\xc3\x28-odd-key", b"[1, 2, 3]", "schema"),
        (*wire(zero_dose), "schema"),
        (key, huge, "too_large"),
    ]
    positions = publish(broker.bootstrap,
                        [(k, v) for k, v, _ in bad] + [wire(unknown_drug), wire(valid)])

    def letter_at(outs, position):
        return [o for o in dead_letters(outs)
                if (o.message["source"]["partition"], o.message["source"]["offset"]) == position]

    outs = read_outputs(broker.bootstrap, until=lambda outs: (
        decided(unknown_drug["event_id"], valid["event_id"])(outs)
        and all(letter_at(outs, p) for p in positions[:len(bad)])))

    for (in_key, value, kind), (partition, offset) in zip(bad, positions):
        [letter] = letter_at(outs, (partition, offset))
        message = letter.message
        assert message["schema"] == "rx.invalid/1"
        assert message["error"]["kind"] == kind
        assert message["source"] == {
            "topic": ORDERS_TOPIC, "partition": partition, "offset": offset,
            **({"key": in_key.decode("utf-8", "backslashreplace")} if in_key is not None else {})}
        assert letter.key == in_key  # the input's key bytes, as they came
        assert letter.partition == partition
        if kind == "too_large":
            assert message["payload_truncated"] is True
            assert message["payload"] == huge[:64 * 1024].decode()
        elif message["payload_encoding"] == "base64":
            assert base64.b64decode(message["payload"]) == value
        else:
            assert message["payload"] == value.decode()
    [zero] = letter_at(outs, positions[3])
    assert "order.dose.value" in zero.message["error"]["detail"]

    [unknown] = decisions_by_event(outs)[unknown_drug["event_id"]]
    assert unknown.topic == FLAGGED_TOPIC
    assert [f["category"] for f in unknown.message["findings"]] == ["data"]
    assert decisions_by_event(outs)[valid["event_id"]][0].message["order_id"] == "O-valid"


def test_the_same_event_published_twice_gives_one_decision(broker, worker):
    pid = new_patient_id()
    first = placed(pid, "O-1", on_schedule(1, 1))
    later = placed(pid, "O-2", on_schedule(1, 8), cycle=1, day=8)
    publish(broker.bootstrap, [wire(first), wire(first), wire(later), wire(first)])

    outs = read_outputs(broker.bootstrap, until=decided(first["event_id"], later["event_id"]))

    assert len(decisions_by_event(outs)[first["event_id"]]) == 1
    assert len(decisions_by_event(outs)[later["event_id"]]) == 1
    assert not [o for o in outs if o.key == pid.encode() and o.topic == INVALID_TOPIC]


def test_a_cancelled_order_no_longer_counts_for_the_interval_check(broker, worker):
    kept, cancelling = new_patient_id(), new_patient_id()
    events, second = [], {}
    for pid in (kept, cancelling):
        events.append(placed(pid, f"{pid}-first", T0))
        if pid == cancelling:
            events.append(cancelled(pid, f"{pid}-first", T0 - dt.timedelta(hours=2)))
        # postponed three days: cycle 1 day 1 again
        second[pid] = placed(pid, f"{pid}-second", T0 + dt.timedelta(days=3))
        events.append(second[pid])
    publish(broker.bootstrap, [wire(e) for e in events])

    outs = read_outputs(broker.bootstrap,
                        until=decided(*(e["event_id"] for e in second.values())))

    def interval_findings(pid):
        [out] = decisions_by_event(outs)[second[pid]["event_id"]]
        return out, [f for f in out.message["findings"] if f["category"] == "interval"]

    out, findings = interval_findings(kept)
    assert out.topic == FLAGGED_TOPIC
    assert any(f["evidence"].get("previous_order_id", "") == f"{kept}-first"
               or f"{kept}-first" in f["message"] for f in findings), findings
    out, findings = interval_findings(cancelling)
    assert findings == []
    assert not any(f"{cancelling}-first" in json.dumps(f) for f in out.message["findings"])


def test_each_patients_decisions_keep_their_order_and_partition(broker, worker, processor):
    patients = [new_patient_id("ORDER") for _ in range(24)]
    events = [placed(pid, f"{pid}-C{c}D{d}", on_schedule(c, d), cycle=c, day=d)
              for c, d in SCHEDULE[:4] for pid in patients]  # interleaved across patients
    positions = publish(broker.bootstrap, [wire(e) for e in events])
    partition_of = {e["patient"]["patient_id"]: p for e, (p, _) in zip(events, positions)}
    assert len(set(partition_of.values())) > 1, "the patients should spread over partitions"

    outs = read_outputs(broker.bootstrap, until=decided(*(e["event_id"] for e in events)))

    ours = [o for o in outs if o.is_decision and o.message["patient_id"] in partition_of]
    assert len(ours) == len(events)
    for out in ours:  # a patient's decisions share the partition of the patient's orders
        assert out.partition == partition_of[out.message["patient_id"]]
    for topic in (APPROVED_TOPIC, FLAGGED_TOPIC):
        for partition in set(partition_of.values()):
            sources = [o.source[2] for o in ours if o.topic == topic and o.partition == partition]
            assert sources == sorted(sources)
    # handled in order: only day 1 of cycle 1 is each patient's first dose, and every
    # decision is the one the Processor makes over the events in publication order
    by_event = decisions_by_event(ours)
    for event, (partition, offset) in zip(events, positions):
        origin = TopicSource(topic=ORDERS_TOPIC, partition=partition, offset=offset,
                             key=event["patient"]["patient_id"])
        [expected] = processor.handle(wire(event)[1], origin, now()).outputs
        [out] = by_event[event["event_id"]]
        assert without_decided_at(out.message) == without_decided_at(json.loads(to_json(expected)))
        first_dose = any(f["rule_id"].endswith("first_dose_premedication")
                         for f in out.message["findings"])
        assert first_dose == event["order"]["order_id"].endswith("-C1D1")


def test_rxgate_check_and_the_stream_give_the_same_decisions(broker, worker):
    checked = subprocess.run([sys.executable, "-m", "rxgate.cli", "check", str(DEMO)],
                             capture_output=True, check=True, timeout=120)
    expected = [json.loads(line) for line in checked.stdout.decode().splitlines()]
    assert len(expected) >= 8
    lines = [line for line in DEMO.read_bytes().splitlines() if line.strip()]

    def key(line: bytes) -> bytes | None:
        try:
            return json.loads(line)["patient"]["patient_id"].encode()
        except (ValueError, KeyError):
            return None

    positions = publish(broker.bootstrap, [(key(line), line) for line in lines])
    want_decisions = {m["event_id"]: m for m in expected if m["schema"] == "rx.decision/1"}
    want_letters = [m for m in expected if m["schema"] == "rx.invalid/1"]
    ours = set(positions)

    def our_letters(outs):
        return [o.message for o in dead_letters(outs)
                if (o.message["source"]["partition"], o.message["source"]["offset"]) in ours]

    outs = read_outputs(broker.bootstrap, until=lambda outs: (
        decided(*want_decisions)(outs) and len(our_letters(outs)) >= len(want_letters)))

    got = decisions_by_event(outs)
    for event_id, want in want_decisions.items():
        [out] = got[event_id]
        assert without_decided_at(out.message) == without_decided_at(want)
    letters = our_letters(outs)
    assert len(letters) == len(want_letters)
    for letter, want in zip(letters, want_letters):
        assert want["source"]["file"] == str(DEMO)
        assert letter["source"]["topic"] == ORDERS_TOPIC
        for field in ("error", "payload", "payload_encoding"):
            assert letter[field] == want[field]


def test_batches_over_many_patients_and_partitions_decide_as_rxgate_check(broker, worker,
                                                                         tmp_path):
    """Hundreds of events published at once reach the worker in batches that span patients
    and partitions; every decision is the one `rxgate check` makes one event at a time."""
    patients = [new_patient_id("BATCH") for _ in range(80)]
    lines = []
    for k, (c, d) in enumerate(SCHEDULE[:5]):
        for i, pid in enumerate(patients):
            event = placed(pid, f"{pid}-C{c}D{d}", on_schedule(c, d), cycle=c, day=d,
                           mg=1400 if (i + k) % 11 == 0 else 700)
            lines.append(wire(event))
            if i % 13 == 5:
                lines.append(wire(event))  # sent twice: one decision
    course = tmp_path / "course.jsonl"
    course.write_bytes(b"\n".join(v for _, v in lines) + b"\n")
    checked = subprocess.run([sys.executable, "-m", "rxgate.cli", "check", str(course)],
                             capture_output=True, timeout=300)
    expected = {m["event_id"]: m for m in map(json.loads, checked.stdout.decode().splitlines())}
    assert len(expected) == len(patients) * 5
    assert {m["outcome"] for m in expected.values()} == {"approved", "flagged"}

    positions = publish(broker.bootstrap, lines)
    assert len({p for p, _ in positions}) > 1
    outs = read_outputs(broker.bootstrap, until=decided(*expected), timeout=180)

    got = decisions_by_event(outs)
    for event_id, want in expected.items():
        [out] = got[event_id]
        assert without_decided_at(out.message) == without_decided_at(want)


def test_a_lone_record_is_decided_without_waiting_for_a_full_batch(broker, worker):
    """A batch closes a few milliseconds after its first record (RXGATE_BATCH_WAIT_MS), not
    only when RXGATE_BATCH_MAX records have come: one event alone is decided. (The bound is a
    liveness check, not a timing benchmark: benchmarks/ measures latency.)"""
    event = placed(new_patient_id("LONE"), "O-lone", T0)
    publish(broker.bootstrap, [wire(event)])
    read_outputs(broker.bootstrap, until=decided(event["event_id"]), timeout=5)


def test_metrics_carry_the_contract_names_and_no_ids(broker, worker):
    text = worker.metrics_text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    wanted = {
        "rxgate_orders": ("counter", {"outcome"}),
        "rxgate_findings": ("counter", {"category", "severity", "rule_id"}),
        "rxgate_invalid": ("counter", {"kind"}),
        "rxgate_duplicates": ("counter", set()),
        "rxgate_decision_seconds": ("histogram", set()),
        "rxgate_knowledge_info": ("gauge", {"version"}),
    }
    for name, (kind, labels) in wanted.items():
        family = families[name]
        assert family.type == kind, name
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == labels, (name, sample)
    orders = {s.labels["outcome"]: s.value for s in families["rxgate_orders"].samples
              if s.name == "rxgate_orders_total"}
    assert orders["approved"] >= 1 and orders["flagged"] >= 1  # the tests above ran
    assert [s.value for s in families["rxgate_knowledge_info"].samples] == [1.0]
    count = [s.value for s in families["rxgate_decision_seconds"].samples
             if s.name == "rxgate_decision_seconds_count"]
    assert count and count[0] >= sum(orders.values())
    label_values = [v for f in families.values() for s in f.samples for v in s.labels.values()]
    assert not [v for v in label_values if re.search(r"P-\d|ORDER-|O-\w|ORD-", v)]
    assert worker.healthy()
