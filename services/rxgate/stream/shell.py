"""The imperative shell around the Processor: a batch of input records in, their outputs
published.

faust-free on purpose (`consumer.py` hands the input records to the batches a fetch at a
time, and the agent in `app.py` feeds it batches), so the order of operations that
exactly-once rests on is in one place. For a batch (`handle_batch`; up to `RXGATE_BATCH_MAX`
records, closed `RXGATE_BATCH_WAIT_MS` after its first):

    1. first record of an input partition since (re)assignment -> find where it resumes
       (the group's committed offset) and read back what is published from there on
    then record by record, per input partition in offset order, nothing awaited but the
    producer taking the records:
    2. Processor.parse(bytes, TopicSource, now)         -> an event, or a DeadLetter
    3. an event on `rx.orders.v1`/p whose patient's canonical partition is c != p
       (partitioning.py) is forwarded unchanged to the repartition topic's partition c,
       with its provenance header; nothing else happens to it here: it is checked when it
       arrives there (`rxgate_offpartition_total`)
    4. Processor.apply(event, now)                        -> Decision | nothing; the history
       is changed in memory only (`TableHistoryStore.pending`), so the batch's next event
       of the same patient meets it
    5. the output is handed to the producer for partition p of its topic (skipped when the
       read-back shows it already published)
    then, once for the whole batch:
    6. await every acknowledgement (a send that failed is sent again until it lands)
    7. write each history the batch changed to the table (changelog), once per patient,
       and await those acknowledgements too
    8. advance each input partition's position past the batch; `commits.OffsetCommitter`
       commits positions after flushing the producer

A rebalance before step 8 drops the batch: no history is written and no position moves, so
its records are handled again from the committed offset (by this worker or the partition's
new owner), and the read-back keeps what step 5 already published from being published again.

Inputs are `rx.orders.v1` and the repartition topic; partition p of both is assigned to one
worker together (faust co-partitions co-subscribed topics), so every event of a patient is
checked by the owner of the patient's canonical partition against one history. A forward
re-sent after a crash (the orders offset was not yet committed) is recognised at the
canonical partition by its provenance: the patient's history remembers, per source
partition, the last forwarded offset it applied (`TableHistoryStore.forwarded_upto`).

Each input partition is handled as one unbroken run of offsets from where it resumed: a
record below the position is a re-delivery and is skipped; records the consumer did not
deliver (a jump past the position) are read from the input topic and handled first, in order.

See `readback.py` for why this yields one output per input across kills and restarts.
Nothing raised while handling one record stops the stream: a failure is logged with its
partition and offset (never a patient or order id) and counted, its changes to the patient's
history are undone, and the next record follows.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, MutableMapping, Sequence

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from ..contract import DeadLetter, Decision, TopicSource, to_json
from ..history import PatientHistory, record_bytes
from ..processor import TRUNCATED_PAYLOAD_BYTES, Handled, Processor
from .config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC
from .metrics import Metrics
from .partitioning import canonical_partition
from .readback import OutputReadback, parse_source_header, source_header

log = logging.getLogger(__name__)

# (topic, key, value, partition, headers) -> hands the record to the producer and returns an
# awaitable of the broker's acknowledgement (so that a batch's sends are pipelined)
Send = Callable[[str, bytes | None, bytes, int, list[tuple[str, bytes]]],
                Awaitable[Awaitable[object]]]
# (topic, partition) -> the group's committed offset of the input partition, or None
Committed = Callable[[str, int], Awaitable["int | None"]]
# an input partition: (topic, partition)
Input = tuple[str, int]
# the key, in a patient's table value, of the forwarded offsets it has applied
FORWARDED = "_forwarded"

FILL_CHUNK = 2_000  # undelivered input records read per step
YIELD_EVERY = 32  # records decided between two turns of the event loop within a batch
DECODED_MAX = 20_000  # histories kept decoded beside the values they were sealed as


class TableHistoryStore:
    """The Processor's HistoryStore over a faust table of `PatientHistory.to_dict()` values.

    Writes are held back until `commit()`: the shell writes the histories a batch changed only
    after the outputs of the batch are acknowledged (see readback.py), once per patient per
    batch. Beside the history, a patient's value keeps `_forwarded`: source partition -> the
    highest offset of `rx.orders.v1` whose forwarded copy this patient's history has applied.

    `write(patient_id, value, partition, data)` stores a value and hands its changelog record
    `data` (the bytes of the table's JSON codec for it) to the producer for the
    table's changelog partition (the input partition the patient's events are applied on: the
    shell sets `partition` before each record); without it, values are assigned to `table`.
    """

    def __init__(self, table: MutableMapping[str, dict],
                 write: Callable[[str, dict, int, bytes], Awaitable["Awaitable[None] | None"]]
                 | None = None) -> None:
        self.table = table
        self.write = write
        self.partition = 0  # the input partition of the record being applied (set by the shell)
        self.pending: dict[str, PatientHistory] = {}
        self.pending_marks: dict[str, dict[str, int]] = {}
        self.pending_partition: dict[str, int] = {}
        # batches decided but not yet written, oldest first: patient -> (value, partition,
        # its changelog bytes); the next batch is decided against them while their outputs'
        # acks are awaited
        self.sealed: list[dict[str, tuple[dict, int, bytes]]] = []
        # patient -> (value, the history it was sealed from): a history the worker wrote is
        # not decoded again while its value is still the newest one (checked by identity);
        # handed out once (the Processor changes it in place), sealed again afterwards
        self._decoded: dict[str, tuple[dict, PatientHistory]] = {}

    def _stored(self, patient_id: str) -> dict | None:
        """The patient's newest value: in a sealed batch not yet written, else the table."""
        for layer in reversed(self.sealed):
            if patient_id in layer:
                return layer[patient_id][0]
        return self.table.get(patient_id)

    def get(self, patient_id: str) -> PatientHistory | None:
        if patient_id in self.pending:
            return self.pending[patient_id]
        stored = self._stored(patient_id)
        if not stored:
            return None
        decoded = self._decoded.pop(patient_id, None)
        if decoded is not None and decoded[0] is stored:
            return decoded[1]
        return PatientHistory.from_dict({k: v for k, v in stored.items() if k != FORWARDED})

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.pending[patient_id] = history
        self.pending_partition[patient_id] = self.partition

    def forwarded_upto(self, patient_id: str, source_partition: int) -> int:
        """The highest forwarded offset from that source partition applied for the patient."""
        marks = self.pending_marks.get(patient_id)
        if marks is None:
            marks = (self._stored(patient_id) or {}).get(FORWARDED) or {}
        return int(marks.get(str(source_partition), -1))

    def mark_forwarded(self, patient_id: str, source_partition: int, offset: int) -> None:
        marks = self.pending_marks.get(patient_id)
        if marks is None:
            marks = dict((self._stored(patient_id) or {}).get(FORWARDED) or {})
            self.pending_marks[patient_id] = marks
            self.pending_partition[patient_id] = self.partition
        marks[str(source_partition)] = offset

    def savepoint(self, patient_id: str) -> tuple:
        """What `rollback` needs to undo one record's changes to the patient's pending state
        (a history changed earlier in the batch is copied; one read from the table is not)."""
        history = self.pending.get(patient_id)
        marks = self.pending_marks.get(patient_id)
        return (history.to_dict() if history is not None else None,
                dict(marks) if marks is not None else None,
                self.pending_partition.get(patient_id))

    def rollback(self, patient_id: str, savepoint: tuple) -> None:
        history, marks, partition = savepoint
        if history is None:
            self.pending.pop(patient_id, None)
        else:
            self.pending[patient_id] = PatientHistory.from_dict(history)
        if marks is None:
            self.pending_marks.pop(patient_id, None)
        else:
            self.pending_marks[patient_id] = marks
        if partition is None:
            self.pending_partition.pop(patient_id, None)
        else:
            self.pending_partition[patient_id] = partition

    def seal(self) -> dict[str, tuple[dict, int, bytes]]:
        """The batch's changed histories as the values to write (patient -> (value, changelog
        partition, the value's changelog bytes)), held in `sealed` until `write_sealed`: the
        next batch reads them, and changes copies of them, while the outputs they stand behind
        are being acknowledged."""
        layer: dict[str, tuple[dict, int, bytes]] = {}
        decoded = self._decoded
        for patient_id in {*self.pending, *self.pending_marks}:
            history = self.pending.get(patient_id)
            marks = self.pending_marks.get(patient_id)
            if marks is None:
                marks = (self._stored(patient_id) or {}).get(FORWARDED)
            if history is not None:
                # the value (new containers: the history changes on, the value not) and its
                # changelog bytes, made from the texts the history kept of earlier writes
                value, data = history.to_record({FORWARDED: marks} if marks else None)
                decoded[patient_id] = (value, history)
                if len(decoded) > DECODED_MAX:
                    del decoded[next(iter(decoded))]  # the least recently sealed
            else:
                value = dict(self._stored(patient_id) or {})
                if marks:
                    value[FORWARDED] = marks
                data = record_bytes(value)
            layer[patient_id] = (value, self.pending_partition[patient_id], data)
        self.pending.clear()
        self.pending_marks.clear()
        self.pending_partition.clear()
        if layer:
            self.sealed.append(layer)
        return layer

    async def write_sealed(self, layer: dict[str, tuple[dict, int, bytes]]
                           ) -> list[Awaitable[None]]:
        """Hand a sealed batch's histories to `write` (the table); returns what awaits their
        acks. Sealed batches are written in the order they were sealed."""
        landed: list[Awaitable[None]] = []
        try:
            for patient_id, (value, partition, data) in layer.items():
                if self.write is None:
                    self.table[patient_id] = value
                else:
                    ack = await self.write(patient_id, value, partition, data)
                    if ack is not None:
                        landed.append(ack)
        finally:
            self._unseal(layer)
        return landed

    async def commit(self) -> list[Awaitable[None]]:
        """Hand every pending history to `write`; returns what awaits their acks."""
        return await self.write_sealed(self.seal())

    def _unseal(self, layer: dict) -> None:
        for n, sealed in enumerate(self.sealed):
            if sealed is layer:
                del self.sealed[n]
                return

    def discard(self) -> None:
        """Forget what is not written: the pending changes and every sealed batch."""
        self.pending.clear()
        self.pending_marks.clear()
        self.pending_partition.clear()
        self.sealed.clear()
        self._decoded.clear()


@dataclass(slots=True)
class InputRecord:
    """One record of an input partition, as the consumer delivered it (slots: a batch holds
    hundreds, and fewer objects per record is less work for the garbage collector)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: object = None
    read_at: float = 0.0  # time.monotonic() when it was read (rxgate_decision_seconds)


@dataclass(slots=True)
class _Send:
    """One record handed to the producer; `output` is None for a forward (slots: as
    InputRecord)."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int
    headers: list[tuple[str, bytes]]
    output: Decision | DeadLetter | None
    read_at: float
    ack: "asyncio.Future | None" = None
    error: Exception | None = None
    acked_at: float | None = None  # time.monotonic() when the broker's ack came

    def _acked(self, ack: "asyncio.Future") -> None:
        self.acked_at = time.monotonic()


@dataclass(slots=True)
class _Origin:
    """Where a record was read, as the Processor's origin: called (it is callable) only for a
    dead letter, to build its TopicSource; the stall watchdog reads topic, partition and
    offset. Validating a TopicSource for every record cost more than a dead letter's share."""

    topic: str
    partition: int
    offset: int
    key: bytes | None

    def __call__(self) -> TopicSource:
        return TopicSource(topic=self.topic, partition=self.partition, offset=self.offset,
                           key=_key_text(self.key))


def _key_text(key: bytes | None) -> str | None:
    """A record key as a dead letter names it."""
    return key.decode("utf-8", "backslashreplace") if key is not None else None


@dataclass
class _Window:
    """What a read-back found published for input offsets >= where the partition resumed."""

    offsets: set[int]  # input offsets whose output is on an output topic
    event_ids: set[str]  # event ids of the decisions among those outputs
    newest: int  # the highest of the offsets: past it, the window is closed

    def covers(self, offset: int, output: Decision | DeadLetter) -> bool:
        if offset in self.offsets:
            return True
        return isinstance(output, Decision) and output.event_id in self.event_ids


class OrderShell:
    def __init__(self, processor: Processor, store: TableHistoryStore, send: Send,
                 readback: OutputReadback, metrics: Metrics, source_topic: str,
                 committed: Committed, repartition_topic: str, partitions: int) -> None:
        self.processor = processor
        self.store = store
        self.send = send
        self.readback = readback
        self.metrics = metrics
        self.source_topic = source_topic
        self.repartition_topic = repartition_topic
        self.partitions = partitions
        self.committed = committed
        # input partition -> the offset expected next; every input before it (from where the
        # partition resumed) is handled: its output acknowledged, its history written
        self._next_offset: dict[Input, int] = {}
        # input partition -> the offset the next batch decides from: past `_next_offset` by
        # the batches decided whose outputs and histories are still being acknowledged
        self._decided: dict[Input, int] = {}
        self._published: dict[Input, _Window] = {}  # input partition -> what the read-back found
        self._epoch = 0  # bumped on every rebalance: a handle() that spans one records nothing
        self._owned: set[Input] | None = None  # None: not told (a shell driven without faust)
        self._sending = 0  # batches whose records are being decided and handed to the producer
        self._sent = asyncio.Event()  # set while none is
        self._sent.set()
        # the last batch handed on to be settled (acks, histories, positions) and its epoch:
        # batches settle one after the other, in the order they were decided
        self._tail: "asyncio.Future[bool] | None" = None
        self._tail_epoch = 0

    def forget_positions(self, owned: "set[Input] | None" = None) -> None:
        """On a rebalance: every partition's next record triggers a read-back.

        `owned` is the input partitions assigned now (an empty set while a rebalance is under
        way). A record of a partition this worker does not own is not handled: the consumer
        may still deliver records it fetched before the partitions were revoked, and handling
        them would race the new owner and publish twice."""
        self._epoch += 1
        self._next_offset.clear()
        self._decided.clear()
        self._published.clear()
        self._owned = None if owned is None else set(owned)

    def _reset(self) -> None:
        """After a batch failed: as after a rebalance (same partitions), every partition's
        next record resumes from its position with a read-back, and what was decided after
        the failed batch is dropped unwritten."""
        self._epoch += 1
        self._next_offset.clear()
        self._decided.clear()
        self._published.clear()
        self.store.discard()

    async def sent(self) -> None:
        """Wait until no batch is handing records to the producer. After `forget_positions`
        a batch stops at its next record, so once this returns (and the producer is flushed)
        nothing of the old assignment is sent any more: the partitions' next owner reads
        back every output this worker published for them."""
        await self._sent.wait()

    def _current(self, epoch: int, tp: Input) -> bool:
        """Still the same assignment, and the partition is ours."""
        return epoch == self._epoch and (self._owned is None or tp in self._owned)

    def positions(self) -> dict[Input, int]:
        """(topic, partition) -> the offset after the inputs handled so far: safe to commit
        once the producer is flushed."""
        return dict(self._next_offset)

    async def handle(self, topic: str, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, headers=None, read_at: float | None = None) -> None:
        """One record: a batch of one."""
        await self.handle_batch([InputRecord(topic, partition, offset, key, value, headers,
                                             time.monotonic() if read_at is None else read_at)])

    async def handle_batch(self, records: Sequence["InputRecord"]) -> None:
        """Records as the consumer delivered them (in offset order per input partition):
        `submit`, then wait until the batch is settled."""
        await (await self.submit(records))

    async def submit(self, records: Sequence["InputRecord"]) -> "asyncio.Future[bool]":
        """Decide a batch and hand its outputs to the producer; returns what completes once
        the batch is settled (True) or dropped (False). The caller may submit the next batch
        meanwhile: it is decided against this batch's histories (held in the store, sealed,
        until written) while this batch's acknowledgements are awaited, and it settles only
        after this one (`_settle`).

        The batch is decided record by record (per partition, in offset order), its outputs
        sent without waiting; then every acknowledgement is awaited, then the histories the
        batch changed are written (once per patient), then the positions advance past the
        batch. A rebalance before that last step drops the whole batch: its histories are
        not written and its positions stay, so its records are read again from the committed
        offset, by this worker or the partition's new owner, and the read-back keeps what was
        already published from being published again."""
        if self._tail is not None and self._tail_epoch != self._epoch:
            await asyncio.wait([self._tail])  # an earlier assignment's batch is dropped first
        epoch = self._epoch
        by_input: dict[Input, list[InputRecord]] = {}
        for record in records:
            by_input.setdefault((record.topic, record.partition), []).append(record)
        work: list[tuple[Input, InputRecord]] = []
        ends: dict[Input, int] = {}  # input partition -> its position once the work is done
        for tp, delivered in by_input.items():
            # broker trouble (read-back, publishing) is retried until it passes: skipping would
            # lose an output. A failure of the Processor itself would fail again on every
            # retry: that record is logged, counted and skipped.
            if not self._current(epoch, tp):
                continue  # revoked, or a rebalance under way: the partition's owner handles it
            expected = self._decided.get(tp)
            if expected is None:
                expected = await _retrying("read back the outputs", self._resume, tp, epoch)
                if not self._current(epoch, tp):
                    return _done(False)  # a rebalance while reading back: nothing is ours
            for record in delivered:
                if record.offset < expected:
                    log.debug("%s[%d]@%d is already handled; skipped", tp[0], tp[1],
                              record.offset)
                    continue
                if record.offset > expected:
                    # the consumer skipped records (faust drops some right after an
                    # assignment): what this batch holds so far goes first, then the
                    # undelivered records, read from the topic in chunks, in order
                    log.info("%s[%d]: offsets %d..%d were not delivered; reading them from "
                             "the topic", tp[0], tp[1], expected, record.offset - 1)
                    if not await (await self._run(work, ends, epoch)):
                        return _done(False)
                    work, ends = [], {}
                    while expected < record.offset:
                        high = min(record.offset, expected + FILL_CHUNK)
                        filled = await _retrying("read undelivered inputs",
                                                 self.readback.read_inputs, tp[0], tp[1],
                                                 expected, high)
                        now = time.monotonic()
                        chunk = [(tp, InputRecord(tp[0], tp[1], r.offset, r.key, r.value,
                                                  r.headers, now)) for r in filled]
                        # offsets the log does not hold are passed
                        if not await (await self._run(chunk, {tp: high}, epoch)):
                            return _done(False)
                        expected = high
                work.append((tp, record))
                expected = record.offset + 1
                ends[tp] = expected
        return await self._run(work, ends, epoch)

    async def _run(self, work: list[tuple[Input, "InputRecord"]], ends: dict[Input, int],
                   epoch: int) -> "asyncio.Future[bool]":
        """Decide the records and hand their outputs to the producer; the rest (acks,
        histories, positions) is `_settle`, chained after the batch before. Returns what
        completes with its result: False when a rebalance came in between (nothing recorded)."""
        sends: list[_Send] = []
        self._sending += 1
        self._sent.clear()
        try:
            for n, (tp, record) in enumerate(work, 1):
                if epoch != self._epoch:
                    break
                await self._decide(tp, record, epoch, sends)
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # the producer sends what is decided meanwhile
            layer = self.store.seal()  # written once its outputs are acknowledged
        except BaseException:
            self._reset()  # the batches decided before this one are dropped too
            _abandon(sends)
            raise
        finally:
            self._sending -= 1
            if not self._sending:
                self._sent.set()
        if epoch == self._epoch:
            self._decided.update(ends)
        before = self._tail if self._tail_epoch == epoch else None
        settled = asyncio.ensure_future(self._settle(before, sends, layer, ends, epoch))
        self._tail, self._tail_epoch = settled, epoch
        return settled

    async def _settle(self, before: "asyncio.Future[bool] | None", sends: list["_Send"],
                      layer: dict, ends: dict[Input, int], epoch: int) -> bool:
        """Await every ack of the batch, then write its histories and await theirs, then
        advance its positions; after the batch decided before it is settled."""
        try:
            if before is not None:
                await asyncio.wait([before])  # its histories go first
                if before.cancelled() or before.exception() is not None or not before.result():
                    # this batch was decided against that one's histories: dropped with it
                    if epoch == self._epoch:
                        self._reset()
                    return False
            for send in sends:
                await self._acknowledged(send, epoch)
            if epoch != self._epoch or any(not self._current(epoch, tp) for tp in ends):
                # lost a partition meanwhile: its owner (or this worker, after the
                # assignment) reads the batch again; the read-back covers what was published
                self.store.discard()
                return False
            # each changed history once, after every output is acknowledged; a rebalance
            # while the writes are handed to the producer changes nothing: they are the
            # histories of acknowledged outputs (what a worker killed here would leave), and
            # the positions stay unless the partitions are still ours
            for landed in await self.store.write_sealed(layer):
                await landed  # the histories are durable before the positions pass the batch
            if epoch != self._epoch:
                return False
            self._next_offset.update(ends)
            return True
        except asyncio.CancelledError:
            _abandon(sends)
            raise
        except Exception:
            _abandon(sends)
            if epoch == self._epoch:
                self._reset()
            raise

    async def _decide(self, tp: Input, record: "InputRecord", epoch: int,
                      sends: list["_Send"]) -> None:
        """Decide one record; its outputs (or its forward) are sent, not yet awaited."""
        topic, partition = tp
        offset, key, value = record.offset, record.key, record.value
        window = self._window(tp, offset)
        # a TopicSource is built only for a dead letter (the Processor calls the origin then)
        origin: "TopicSource | _Origin" = _Origin(topic, partition, offset, key)
        forwarded_from = None
        if topic == self.repartition_topic:
            forwarded_from = parse_source_header(_header_pairs(record.headers))
            if forwarded_from is not None:
                # a dead letter names the record the producer sent, not the internal hop
                origin = TopicSource(topic=forwarded_from[0], partition=forwarded_from[1],
                                     offset=forwarded_from[2], key=_key_text(key))
        patient_id = None
        savepoint = None
        started = time.perf_counter()
        try:
            now = dt.datetime.now(dt.timezone.utc)
            parsed = self.processor.parse(value or b"", origin, now)
            if isinstance(parsed, Handled):
                handled = parsed
            else:
                patient_id = parsed.patient.patient_id
                home = canonical_partition(patient_id, self.partitions)
                if topic == self.source_topic and home != partition:
                    header = [source_header(topic, partition, offset)]
                    sends.append(await self._enqueue(_Send(
                        self.repartition_topic, key, value or b"", home, header, None,
                        record.read_at)))
                    return
                savepoint = self.store.savepoint(patient_id)
                self.store.partition = partition
                if forwarded_from is not None:
                    source_partition, source_offset = forwarded_from[1], forwarded_from[2]
                    if self.store.forwarded_upto(patient_id, source_partition) >= source_offset:
                        # a forward re-sent after a crash: its first copy is applied already
                        self.metrics.redelivered.inc()
                        return
                    self.store.mark_forwarded(patient_id, source_partition, source_offset)
                handled = self.processor.apply(parsed, now)
                if handled.kind == "decision":
                    self.metrics.check_seconds.observe(time.perf_counter() - started)
        except asyncio.CancelledError:
            raise
        except Exception:
            if savepoint is not None:
                self.store.rollback(patient_id, savepoint)  # the batch's other records stay
            self.metrics.processing_errors.inc()
            log.exception("could not handle %s[%d]@%d; skipped it, going on with the next",
                          topic, partition, offset)
            return
        if handled.kind == "duplicate":
            self.metrics.duplicates.inc()
        if handled.error is not None:
            # the input still gets its one output (a decision flagged rxgate.data.checks_failed,
            # or a dead letter when validation itself failed); the defect is logged
            what = ("a dead letter" if handled.kind == "invalid"
                    else "it flagged rxgate.data.checks_failed")
            log.error("could not complete the checks for %s[%d]@%d; published %s",
                      topic, partition, offset, what, exc_info=handled.error)
        for output in handled.outputs:
            if window is not None and window.covers(offset, output):
                self.metrics.redelivered.inc()
                continue
            if isinstance(output, Decision):
                out_topic = APPROVED_TOPIC if output.outcome == "approved" else FLAGGED_TOPIC
                out_key = output.patient_id.encode("utf-8")
            else:
                out_topic, out_key = INVALID_TOPIC, key  # the input's key bytes as they came
            header = [source_header(topic, partition, offset)]
            sends.append(await self._enqueue(_Send(
                out_topic, out_key, to_json(output).encode("utf-8"), partition, header, output,
                record.read_at)))

    async def _enqueue(self, send: "_Send") -> "_Send":
        """Hand the record to the producer; its acknowledgement is awaited later."""
        try:
            send.ack = asyncio.ensure_future(
                await self.send(send.topic, send.key, send.value, send.partition, send.headers))
            if send.output is not None:
                send.ack.add_done_callback(send._acked)  # rxgate_decision_seconds ends there
        except asyncio.CancelledError:
            raise
        except Exception as e:  # retried, in order, when the batch's acks are awaited
            send.error = e
        return send

    async def _acknowledged(self, send: "_Send", epoch: int) -> None:
        """Wait for the broker's ack of one send; one that failed is sent again until it
        lands (while the partition is still ours)."""
        if send.ack is not None:
            try:
                await send.ack
                send.error = None
            except asyncio.CancelledError:
                raise
            except Exception as e:
                send.error = e
        if send.error is not None:
            send.acked_at = None  # sent again below: the decision is sent when that lands
            if epoch != self._epoch:
                return  # the batch is dropped: its records are read again, by the owner
            if send.output is None:
                await self._forward(send)
            else:
                send.output = await self._publish(send.topic, send.key, send.output,
                                                  send.partition, send.headers, send.error)
        if send.output is None:
            self.metrics.offpartition.inc()
            return
        self.metrics.published(send.output)
        if isinstance(send.output, Decision):
            # up to the broker's ack of the decision, not to when this batch got to it (it
            # settles after the batch before it)
            sent_at = send.acked_at if send.acked_at is not None else time.monotonic()
            self.metrics.decision_seconds.observe(sent_at - send.read_at)

    async def _forward(self, send: "_Send") -> None:
        """Send an event that arrived off its patient's partition on to that partition,
        until it lands."""
        delay = 0.1
        while True:
            try:
                await (await self.send(send.topic, send.key, send.value, send.partition,
                                      send.headers))
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.metrics.publish_retries.inc()
                log.warning("forwarding to %s[%d] failed (%r); retrying in %.1f s",
                            send.topic, send.partition, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _resume(self, tp: Input, epoch: int) -> int:
        """First record since (re)assignment: where does the partition resume, and what did
        earlier runs publish from there on?"""
        topic, partition = tp
        committed = await self.committed(topic, partition)
        start = await self.readback.input_start(topic, partition)
        if committed is not None:
            start = max(start, committed)  # a committed offset below the log start: earliest
        found = await self.readback.published_since(topic, partition, start)
        if epoch == self._epoch:
            self._published[tp] = _Window(found.offsets, found.event_ids,
                                          max(found.offsets, default=-1))
            self._next_offset[tp] = start
            self._decided[tp] = start
        log.info("%s[%d]: resuming at offset %d; %d output(s) from there on are "
                 "already published (%d record(s) read back)", topic, partition, start,
                 len(found.offsets), found.records_read)
        return start

    def _window(self, tp: Input, offset: int) -> "_Window | None":
        """The read-back window that covers this record, or None past it."""
        window = self._published.get(tp)
        if window is not None and offset > window.newest:
            del self._published[tp]  # past the re-read window
            return None
        return window

    async def _publish(self, topic: str, key: bytes | None, output: Decision | DeadLetter,
                       partition: int, headers: list[tuple[str, bytes]],
                       error: Exception | None = None) -> Decision | DeadLetter:
        """Publish and wait for the ack; retry until it lands. Returns what was published.
        `error`: how the first attempt (already made) failed."""
        delay = 0.1
        while True:
            if error is None:
                try:
                    await (await self.send(topic, key, to_json(output).encode("utf-8"),
                                           partition, headers))
                    return output
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    error = e
            e, error = error, None
            cause = e if isinstance(e, KafkaError) else e.__cause__
            if (isinstance(cause, MessageSizeTooLargeError)
                    and isinstance(output, DeadLetter) and not output.payload_truncated):
                log.warning("a dead letter for %s[%d] is too large for the broker; "
                            "publishing it with its payload cut to 64 KiB",
                            self.source_topic, partition)
                output = truncated(output)
                continue
            self.metrics.publish_retries.inc()
            log.warning("publishing to %s[%d] failed (%r); retrying in %.1f s",
                        topic, partition, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _done(result: bool) -> "asyncio.Future[bool]":
    done = asyncio.get_running_loop().create_future()
    done.set_result(result)
    return done


def _abandon(sends: list["_Send"]) -> None:
    """Sends whose acks are no longer awaited (the batch is given up): their outcome is not
    needed, and a failure is not reported as never retrieved."""
    for send in sends:
        if send.ack is not None:
            send.ack.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _retrying(what: str, step, *args):
    delay = 0.2
    while True:
        try:
            return await step(*args)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("could not %s (%r); retrying in %.1f s", what, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def truncated(letter: DeadLetter) -> DeadLetter:
    """The dead letter with its payload cut to (about) the first 64 KiB of the input."""
    if letter.payload_encoding == "base64":
        payload = letter.payload[: (TRUNCATED_PAYLOAD_BYTES // 3) * 4]
    else:
        payload = letter.payload.encode("utf-8")[:TRUNCATED_PAYLOAD_BYTES].decode(
            "utf-8", "ignore")
    return letter.model_copy(update={"payload": payload, "payload_truncated": True})


def _header_pairs(headers) -> list[tuple[str, bytes]]:
    """Record headers as (name, value) pairs, whether they came as pairs or a mapping."""
    if not headers:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)
