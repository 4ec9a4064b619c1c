"""Batches in the stream shell, without a broker: the order of steps exactly-once rests on.

`OrderShell` is faust-free, so these tests drive it with a producer and a read-back of their
own (an in-memory log of output partitions, acks under the test's control) and the very
Processor and knowledge `rxgate check` uses. The broker-backed tests (test_restart.py,
test_commits.py, test_chaos.py) run the same code in a real worker.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass

import pytest
from faust.serializers import codecs

from rxgate.contract import FileSource, to_json
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor
from rxgate.stream.batches import Batches
from rxgate.stream.config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC, ORDERS_TOPIC
from rxgate.stream.metrics import Metrics
from rxgate.stream.partitioning import canonical_partition
from rxgate.stream.readback import Published, parse_source_header
from rxgate.stream.shell import InputRecord, OrderShell, TableHistoryStore

from .orders import SCHEDULE, T0, new_patient_id, on_schedule, placed, wire

PARTITIONS = 4
REPARTITION = "batch-tests-orders-repartition"
KNOWLEDGE = load_knowledge(None)


@dataclass
class Sent:
    topic: str
    partition: int
    key: bytes | None
    value: bytes
    headers: list


class FakeBroker:
    """Output partitions in memory. A send lands in the log when it is acknowledged; `hold`
    keeps every send after the first `hold` waiting for `release()` (or for ever: a worker
    killed there)."""

    def __init__(self) -> None:
        self.log: list[Sent] = []
        self.steps: list[tuple] = []  # ("ack", topic, partition) / ("write", patient, partition)
        self.hold: int | None = None
        self.acked = 0
        self.held: list[tuple[asyncio.Future, Sent]] = []
        self.holding = asyncio.Event()  # set once a send is held back

    async def send(self, topic, key, value, partition, headers):
        ack = asyncio.get_running_loop().create_future()
        sent = Sent(topic, partition, key, value, headers)
        if self.hold is not None and self.acked >= self.hold:
            self.held.append((ack, sent))
            self.holding.set()
            return ack
        self._land(ack, sent)
        return ack

    def _land(self, ack: asyncio.Future, sent: Sent) -> None:
        self.acked += 1
        self.log.append(sent)
        self.steps.append(("ack", sent.topic, sent.partition))
        ack.set_result(None)

    def release(self) -> None:
        self.hold = None
        held, self.held = self.held, []
        for ack, sent in held:
            self._land(ack, sent)

    def decisions(self) -> list[dict]:
        return [json.loads(s.value) for s in self.log if s.topic in (APPROVED_TOPIC, FLAGGED_TOPIC)]


class FakeReadback:
    """What `OutputReadback` answers, from the FakeBroker's log and the input records."""

    def __init__(self, broker: FakeBroker, inputs: dict[tuple[str, int], list[InputRecord]]):
        self.broker = broker
        self.inputs = inputs

    async def input_start(self, topic, partition):
        return 0

    async def read_inputs(self, topic, partition, low, high):
        return [r for r in self.inputs.get((topic, partition), []) if low <= r.offset < high]

    async def published_since(self, topic, partition, from_offset):
        found = Published(topic, partition, from_offset)
        for sent in self.broker.log:
            source = parse_source_header(sent.headers)
            if source and source[:2] == (topic, partition) and source[2] >= from_offset:
                found.offsets.add(source[2])
                if sent.topic in (APPROVED_TOPIC, FLAGGED_TOPIC):
                    found.event_ids.add(json.loads(sent.value)["event_id"])
        return found


def make_shell(broker: FakeBroker, table: dict, inputs, committed: dict | None = None):
    async def write(patient_id, value, partition, data):
        # the changelog record sealed with the value: what faust's json codec writes for it
        assert data == codecs.dumps("json", value)
        broker.steps.append(("write", patient_id, partition))
        table[patient_id] = value

    async def committed_offset(topic, partition):
        return (committed or {}).get((topic, partition))

    store = TableHistoryStore(table, write)
    processor = Processor(KNOWLEDGE, store)
    return OrderShell(processor, store, broker.send, FakeReadback(broker, inputs),
                      Metrics(), ORDERS_TOPIC, committed_offset, REPARTITION, PARTITIONS)


def course(patients: int) -> list[tuple[bytes, bytes]]:
    """Doses of several patients, interleaved in time order; some overdosed, one sent twice."""
    ids = [new_patient_id("BATCH") for _ in range(patients)]
    stream = []
    for k, (cycle, day) in enumerate(SCHEDULE[:4]):
        for i, pid in enumerate(ids):
            event = placed(pid, f"{pid}-{k}", on_schedule(cycle, day) + dt.timedelta(hours=i % 5),
                           cycle=cycle, day=day, mg=1400 if (i + k) % 7 == 0 else 700)
            stream.append(wire(event))
            if i % 9 == 4:
                stream.append(wire(event))  # a producer's retry: a duplicate
    return stream


def on_partitions(stream, off_partition: int = 0) -> dict[tuple[str, int], list[InputRecord]]:
    """The records as the input partitions hold them: each patient on its canonical
    partition, except every `off_partition`-th record, which a CRC32 producer put elsewhere."""
    inputs: dict[tuple[str, int], list[InputRecord]] = {}
    for n, (key, value) in enumerate(stream):
        partition = canonical_partition(key.decode(), PARTITIONS)
        if off_partition and n % off_partition == 0:
            partition = (partition + 1) % PARTITIONS
        records = inputs.setdefault((ORDERS_TOPIC, partition), [])
        records.append(InputRecord(ORDERS_TOPIC, partition, len(records), key, value))
    return inputs


def interleaved(inputs) -> list[InputRecord]:
    """The partitions' records as a consumer hands them over: partitions interleaved, each
    in offset order."""
    queues = [list(records) for records in inputs.values()]
    out = []
    while any(queues):
        for q in queues:
            out.extend(q[:3])
            del q[:3]
    return out


def expected_decisions(stream) -> dict[str, dict]:
    """`rxgate check` on the same events, one at a time."""
    processor = Processor(KNOWLEDGE, DictHistoryStore())
    now = dt.datetime.now(dt.timezone.utc)
    found = {}
    for n, (_, value) in enumerate(stream, 1):
        for output in processor.handle(value, FileSource(file="batch", line=n), now).outputs:
            found[output.event_id] = json.loads(to_json(output))
    return found


def without_decided_at(decision: dict) -> dict:
    return {k: v for k, v in decision.items() if k != "decided_at"}


async def forward_repartitioned(shell: OrderShell, broker: FakeBroker, inputs) -> None:
    """Deliver what was forwarded to the repartition topic, as the consumer would."""
    forwarded: dict[tuple[str, int], list[InputRecord]] = {}
    for sent in broker.log:
        if sent.topic == REPARTITION:
            records = forwarded.setdefault((REPARTITION, sent.partition), [])
            records.append(InputRecord(REPARTITION, sent.partition, len(records), sent.key,
                                       sent.value, sent.headers))
    inputs.update(forwarded)
    for records in forwarded.values():
        await shell.handle_batch(records)


def test_a_batch_over_several_patients_and_partitions_decides_as_one_at_a_time():
    stream = course(patients=30)
    inputs = on_partitions(stream)
    assert len(inputs) == PARTITIONS
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    records = interleaved(inputs)

    async def run():
        for start in range(0, len(records), 50):
            broker.steps.append(("batch",))
            await shell.handle_batch(records[start:start + 50])

    asyncio.run(run())

    want = expected_decisions(stream)
    got = broker.decisions()
    assert len(got) == len({d["event_id"] for d in got}) == len(want)  # duplicates: no output
    for decision in got:
        assert without_decided_at(decision) == without_decided_at(want[decision["event_id"]])
    assert {d["outcome"] for d in got} == {"approved", "flagged"}
    # per patient, the decisions are in the order of the patient's events
    order = [json.loads(v)["event_id"] for _, v in stream]
    for pid in {d["patient_id"] for d in got}:
        mine = [d["event_id"] for d in got if d["patient_id"] == pid]
        assert mine == sorted(mine, key=order.index)
    # every input partition's position is past its last record
    assert shell.positions() == {tp: len(rs) for tp, rs in inputs.items()}
    # per batch: every ack before any history write, each history written once
    batches, current = [], None
    for step in broker.steps:
        if step == ("batch",):
            current = []
            batches.append(current)
        else:
            current.append(step)
    for steps in batches:
        kinds = [s[0] for s in steps]
        assert kinds == sorted(kinds)  # "ack"s, then "write"s
        writes = [s[1] for s in steps if s[0] == "write"]
        assert len(writes) == len(set(writes))
        for _, patient, partition in (s for s in steps if s[0] == "write"):
            assert partition == canonical_partition(patient, PARTITIONS)
    assert sum(1 for s in broker.steps if s[0] == "write") < len(stream)


def test_off_partition_events_in_a_batch_are_forwarded_and_decided_once():
    stream = course(patients=12)
    inputs = on_partitions(stream, off_partition=3)
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)

    async def run():
        await shell.handle_batch(interleaved(inputs))
        await forward_repartitioned(shell, broker, inputs)

    asyncio.run(run())
    got = broker.decisions()
    want = expected_decisions(stream)
    assert sorted(d["event_id"] for d in got) == sorted(want)
    forwarded = [s for s in broker.log if s.topic == REPARTITION]
    assert forwarded and all(s.partition == canonical_partition(s.key.decode(), PARTITIONS)
                             for s in forwarded)


def test_killed_in_the_middle_of_a_batch_the_restart_decides_each_event_once():
    stream = course(patients=20)
    inputs = on_partitions(stream)
    records = interleaved(inputs)
    broker, table = FakeBroker(), {}
    broker.hold = 17  # 17 outputs acknowledged, then the worker dies

    async def killed():
        shell = make_shell(broker, table, inputs)
        batch = asyncio.ensure_future(shell.handle_batch(records))
        await broker.holding.wait()
        await asyncio.sleep(0.01)
        assert not batch.done()  # waiting for acks: no history written, no position moved
        assert not table and set(shell.positions().values()) == {0}
        batch.cancel()  # SIGKILL: nothing after this point happens
        with pytest.raises(asyncio.CancelledError):
            await batch

    asyncio.run(killed())
    assert len(broker.decisions()) == 17

    broker.hold = None
    restarted = make_shell(broker, table, inputs)  # a new process; nothing was committed
    asyncio.run(restarted.handle_batch(records))

    want = expected_decisions(stream)
    got = broker.decisions()
    ids = [d["event_id"] for d in got]
    assert len(ids) == len(set(ids)), "an event was decided twice"
    assert set(ids) == set(want)
    for decision in got:
        assert without_decided_at(decision) == without_decided_at(want[decision["event_id"]])
    assert restarted.metrics.redelivered._value.get() == 17


def test_a_rebalance_during_a_batch_drops_it_and_its_records_are_read_again():
    stream = course(patients=10)
    inputs = on_partitions(stream)
    records = interleaved(inputs)
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    broker.hold = 5

    async def run():
        batch = asyncio.ensure_future(shell.handle_batch(records))
        await broker.holding.wait()
        # the partitions are revoked and assigned again while the acks are awaited
        shell.forget_positions(owned=set(inputs))
        broker.release()
        await batch
        assert not table and shell.positions() == {}  # the batch is dropped whole
        assert len(broker.decisions()) > 5  # though its outputs are published
        await shell.handle_batch(records)  # the records come again from the committed offset

    asyncio.run(run())
    ids = [d["event_id"] for d in broker.decisions()]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected_decisions(stream))
    assert shell.positions() == {tp: len(rs) for tp, rs in inputs.items()}
    assert table


def test_records_of_a_revoked_partition_in_a_batch_are_left_to_its_new_owner():
    # patient ids are random: draw until every partition holds records, so that the kept
    # partitions have records to handle and the revoked ones records to leave alone
    for _ in range(100):
        stream = course(patients=10)
        inputs = on_partitions(stream)
        if len(inputs) == PARTITIONS:
            break
    assert len(inputs) == PARTITIONS
    records = interleaved(inputs)
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    kept = {(ORDERS_TOPIC, 0), (ORDERS_TOPIC, 1)}
    shell.forget_positions(owned=kept)  # partitions 2 and 3 went to another worker
    asyncio.run(shell.handle_batch(records))
    assert shell.positions() == {tp: len(inputs[tp]) for tp in kept}
    assert {s.partition for s in broker.log} == {0, 1}
    assert {p for _, _, p in (s for s in broker.steps if s[0] == "write")} == {0, 1}


def test_a_batch_closes_on_time_with_a_single_record_and_on_size_when_full():
    async def run():
        batches: Batches[int] = Batches(max_records=3, wait=0.005)
        await batches.put(1)
        lone = await asyncio.wait_for(batches.next(), timeout=5)  # liveness, not a benchmark

        async def feed():
            for n in range(2, 7):
                await batches.put(n)  # waits while three are queued

        feeder = asyncio.ensure_future(feed())
        await asyncio.sleep(0)
        full = await asyncio.wait_for(batches.next(), timeout=5)
        rest = await asyncio.wait_for(batches.next(), timeout=5)
        await feeder
        return lone, full, rest

    lone, full, rest = asyncio.run(run())
    assert lone == [1]
    assert full == [2, 3, 4]
    assert rest == [5, 6]


def test_a_failing_record_in_a_batch_loses_nothing_of_the_others(monkeypatch):
    stream = course(patients=6)
    inputs = on_partitions(stream)
    records = interleaved(inputs)
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    ids = [json.loads(r.value)["event_id"] for r in records]
    middle = next(r for r in records[len(records) // 2:]
                  if ids.count(json.loads(r.value)["event_id"]) == 1)  # not sent twice
    victim = json.loads(middle.value)["event_id"]
    real_apply = shell.processor.apply

    def apply(event, now):
        handled = real_apply(event, now)
        if event.event_id == victim:
            raise RuntimeError("a defect after the history was changed")
        return handled

    monkeypatch.setattr(shell.processor, "apply", apply)
    asyncio.run(shell.handle_batch(records))
    got = {d["event_id"] for d in broker.decisions()}
    want = set(expected_decisions(stream))
    assert got == want - {victim}
    assert shell.metrics.processing_errors._value.get() == 1
    # the victim's patient's history does not hold the failed event, but holds the others
    patient = json.loads(middle.value)["patient"]["patient_id"]
    seen = json.dumps(table[patient])
    assert victim not in seen
    others = {json.loads(v)["event_id"] for k, v in stream if k == patient.encode()} - {victim}
    assert others and all(e in seen for e in others)


def test_batch_settings_read_from_the_environment():
    from rxgate.stream.config import Settings

    assert (Settings.from_env({}).batch_max, Settings.from_env({}).batch_wait) == (500, 0.005)
    settings = Settings.from_env({"RXGATE_BATCH_MAX": "64", "RXGATE_BATCH_WAIT_MS": "0"})
    assert (settings.batch_max, settings.batch_wait) == (64, 0.0)
    assert Settings.from_env({"RXGATE_BATCH_WAIT_MS": "2.5"}).batch_wait == 0.0025
    assert Settings.from_env({}).fetch_wait == 0.05
    assert Settings.from_env({"RXGATE_FETCH_WAIT_MS": "200"}).fetch_wait == 0.2


def test_the_next_batch_is_decided_while_the_one_before_awaits_its_acks():
    """Pipelined batches (what the worker's loop does): batch 2 is decided against batch 1's
    histories while batch 1's acknowledgements are held; nothing is written, no position
    moves, until batch 1's acks land; then batch 1 settles before batch 2, each history
    after its outputs' acks."""
    stream = course(patients=12)
    inputs = on_partitions(stream)
    records = interleaved(inputs)
    half = len(records) // 2
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    broker.hold = 3

    async def run():
        first = await shell.submit(records[:half])
        await broker.holding.wait()
        second = await shell.submit(records[half:])  # decided now, against batch 1's state
        await asyncio.sleep(0.01)
        assert not first.done() and not second.done()
        assert not table and set(shell.positions().values()) == {0}
        assert not [s for s in broker.steps if s[0] == "write"]
        broker.release()
        assert await first and await second

    asyncio.run(run())
    want = expected_decisions(stream)
    got = broker.decisions()
    ids = [d["event_id"] for d in got]
    assert len(ids) == len(set(ids)) and set(ids) == set(want)
    for decision in got:
        assert without_decided_at(decision) == without_decided_at(want[decision["event_id"]])
    assert shell.positions() == {tp: len(rs) for tp, rs in inputs.items()}
    # every write comes after every ack of the outputs it stands behind (here: all of them)
    steps = broker.steps
    last_output_ack = max(n for n, s in enumerate(steps) if s[0] == "ack")
    assert all(n > last_output_ack for n, s in enumerate(steps) if s[0] == "write")
    assert table


@pytest.mark.parametrize("in_flight, hold", [(2, 9), (3, 5)])
def test_killed_with_batches_in_flight_the_restart_decides_each_event_once(in_flight, hold):
    """Two batches in flight, or three (what the worker's loop allows: SETTLING_MAX), the
    first `hold` outputs acknowledged, then SIGKILL: nothing written, nothing committed; the
    restart decides every event once."""
    stream = course(patients=12)
    inputs = on_partitions(stream)
    records = interleaved(inputs)
    size = -(-len(records) // in_flight)
    broker, table = FakeBroker(), {}
    broker.hold = hold

    async def killed():
        shell = make_shell(broker, table, inputs)
        settling = [await shell.submit(records[n:n + size])
                    for n in range(0, len(records), size)]
        assert len(settling) == in_flight
        await asyncio.sleep(0.01)
        assert not table and set(shell.positions().values()) == {0}
        for batch in settling:
            batch.cancel()  # SIGKILL: nothing after this point happens

    asyncio.run(killed())
    assert len(broker.decisions()) == hold
    broker.hold = None
    restarted = make_shell(broker, table, inputs)  # nothing was committed
    asyncio.run(restarted.handle_batch(records))
    want = expected_decisions(stream)
    ids = [d["event_id"] for d in broker.decisions()]
    assert len(ids) == len(set(ids)) and set(ids) == set(want)


def test_a_written_history_is_read_again_without_decoding_only_while_its_value_is_the_newest():
    from rxgate.history import PatientHistory

    table: dict = {}
    store = TableHistoryStore(table)
    history = PatientHistory()
    history.seen_events["e1"] = T0
    store.put("p", history)
    asyncio.run(store.commit())
    assert store.get("p") is history  # the history that was written: not decoded again
    history.seen_events["e2"] = T0  # the Processor changes it in place ...
    assert list(table["p"]["seen_events"]) == ["e1"]  # ... the written value stays as written
    # handed out once: not put back (a duplicate, a record rolled back), it is decoded again
    again = store.get("p")
    assert again is not history and list(again.seen_events) == ["e1"]
    store.put("p", again)
    asyncio.run(store.commit())
    assert store.get("p") is again
    store.put("p", again)
    asyncio.run(store.commit())
    table["p"] = json.loads(json.dumps(table["p"]))  # another value (a table recovery)
    assert store.get("p") is not again
    store.put("p", again)
    store.seal()
    store.discard()  # a dropped batch: never written
    assert store.get("p") is not again


def test_each_published_output_is_counted_once_by_outcome_finding_and_error_kind():
    """Metrics.published keeps each labelled series it counts on (a speed-up, issue 10): the
    counts are still those of the outputs, series by series, over several batches."""
    stream = course(patients=12)
    stream.insert(5, (b"P-BROKEN", b"{not json"))
    stream.insert(9, (b"P-BROKEN", b'{"event_type": "order.placed"}'))
    inputs = on_partitions(stream)
    broker, table = FakeBroker(), {}
    shell = make_shell(broker, table, inputs)
    records = interleaved(inputs)

    async def run():
        for start in range(0, len(records), 7):
            await shell.handle_batch(records[start:start + 7])

    asyncio.run(run())
    decisions = broker.decisions()
    letters = [json.loads(s.value) for s in broker.log if s.topic == INVALID_TOPIC]
    value = shell.metrics.registry.get_sample_value
    for outcome in ("approved", "flagged"):
        want = sum(1 for d in decisions if d["outcome"] == outcome)
        assert value("rxgate_orders_total", {"outcome": outcome}) == want > 0
    findings: dict[tuple, int] = {}
    for d in decisions:
        for f in d["findings"]:
            key = (f["category"], f["severity"], f["rule_id"])
            findings[key] = findings.get(key, 0) + 1
    assert findings
    for (category, severity, rule_id), n in findings.items():
        assert value("rxgate_findings_total", {"category": category, "severity": severity,
                                               "rule_id": rule_id}) == n
    kinds = [letter["error"]["kind"] for letter in letters]
    assert sorted(kinds) == ["json", "schema"]
    for kind in ("encoding", "json", "schema", "too_large"):
        assert value("rxgate_invalid_total", {"kind": kind}) == kinds.count(kind)


def test_the_loop_keeps_at_most_three_batches_settling_and_waits_only_for_the_oldest():
    """handle_batches (the worker's loop): batches 2 and 3 are decided while batch 1 settles;
    at three settling it takes nothing more until the oldest has settled (a later one settling
    first does not let it on); a batch whose settling failed is reported with its size, and
    the loop goes on; stopped, it cancels what is still settling."""
    from rxgate.stream.batches import handle_batches

    async def run():
        loop = asyncio.get_running_loop()
        batches: Batches[int] = Batches(2, 0.0)
        submitted: list[list[int]] = []
        settles: list[asyncio.Future] = []
        failures: list[int] = []

        async def submit(batch):
            submitted.append(list(batch))
            settles.append(loop.create_future())
            return settles[-1]

        async def produce():
            for n in range(12):
                await batches.put(n)

        feeder = asyncio.ensure_future(produce())
        handler = asyncio.ensure_future(handle_batches(batches, submit, failures.append))
        for _ in range(20):
            await asyncio.sleep(0)
        assert submitted == [[0, 1], [2, 3], [4, 5]]  # three settling: no fourth yet
        settles[2].set_result(True)  # the newest settles first: still three to wait for
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(submitted) == 3
        settles[0].set_exception(RuntimeError("acks lost"))  # the oldest fails
        for _ in range(20):
            await asyncio.sleep(0)
        assert failures == [2]
        # one place free: batch 4 is decided (batch 3, settled behind the unsettled batch 2,
        # is let go with it: in the shell a batch settles only after the one before it)
        assert submitted[3:] == [[6, 7]]
        settles[1].set_result(True)
        for _ in range(20):
            await asyncio.sleep(0)
        assert submitted[4:] == [[8, 9], [10, 11]]  # batches 2 and 3 let go: two places
        handler.cancel()
        await asyncio.gather(handler, return_exceptions=True)
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        assert all(settle.cancelled() for settle in settles[3:])

    asyncio.run(run())
