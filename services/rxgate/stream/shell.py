"""The imperative shell around the Processor: one input record in, its output published.

faust-free on purpose (the agent in `app.py` only feeds it records), so the order of
operations that exactly-once rests on is in one place:

    1. first record of an input partition since (re)assignment -> find where it resumes
       (the group's committed offset) and read back what is published from there on
    2. Processor.parse(bytes, TopicSource, now)         -> an event, or a DeadLetter
    3. an event on `rx.orders.v1`/p whose patient's canonical partition is c != p
       (partitioning.py) is forwarded unchanged to the repartition topic's partition c,
       with its provenance header, and the broker's ack awaited; nothing else happens to it
       here: it is checked when it arrives there (`rxgate_offpartition_total`)
    4. Processor.apply(event, now)                        -> Decision | nothing
    5. publish the output to partition p of its topic, wait for the broker's ack
       (skipped when the read-back shows it already published)
    6. write the patient's history to the table (changelog)
    7. advance the input partition's position past the record; `commits.OffsetCommitter`
       commits positions after flushing the producer

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
partition and offset (never a patient or order id) and counted, and the next record follows.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, MutableMapping

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from ..contract import DeadLetter, Decision, TopicSource, to_json
from ..history import PatientHistory
from ..processor import TRUNCATED_PAYLOAD_BYTES, Handled, Processor
from .config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC
from .metrics import Metrics
from .partitioning import canonical_partition
from .readback import OutputReadback, parse_source_header, source_header

log = logging.getLogger(__name__)

# (topic, key, value, partition, headers) -> awaits the broker's acknowledgement
Send = Callable[[str, bytes | None, bytes, int, list[tuple[str, bytes]]], Awaitable[object]]
# (topic, partition) -> the group's committed offset of the input partition, or None
Committed = Callable[[str, int], Awaitable["int | None"]]
# an input partition: (topic, partition)
Input = tuple[str, int]
# the key, in a patient's table value, of the forwarded offsets it has applied
FORWARDED = "_forwarded"

FILL_CHUNK = 2_000  # undelivered input records read per step


class TableHistoryStore:
    """The Processor's HistoryStore over a faust table of `PatientHistory.to_dict()` values.

    Writes are held back until `commit()`: the shell writes a patient's history only after
    the output of the input that changed it is acknowledged (see readback.py). Beside the
    history, a patient's value keeps `_forwarded`: source partition -> the highest offset of
    `rx.orders.v1` whose forwarded copy this patient's history has applied.
    """

    def __init__(self, table: MutableMapping[str, dict]) -> None:
        self.table = table
        self.pending: dict[str, PatientHistory] = {}
        self.pending_marks: dict[str, dict[str, int]] = {}

    def get(self, patient_id: str) -> PatientHistory | None:
        if patient_id in self.pending:
            return self.pending[patient_id]
        stored = self.table.get(patient_id)
        if not stored:
            return None
        return PatientHistory.from_dict({k: v for k, v in stored.items() if k != FORWARDED})

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.pending[patient_id] = history

    def forwarded_upto(self, patient_id: str, source_partition: int) -> int:
        """The highest forwarded offset from that source partition applied for the patient."""
        marks = self.pending_marks.get(patient_id)
        if marks is None:
            marks = (self.table.get(patient_id) or {}).get(FORWARDED) or {}
        return int(marks.get(str(source_partition), -1))

    def mark_forwarded(self, patient_id: str, source_partition: int, offset: int) -> None:
        marks = self.pending_marks.get(patient_id)
        if marks is None:
            marks = dict((self.table.get(patient_id) or {}).get(FORWARDED) or {})
            self.pending_marks[patient_id] = marks
        marks[str(source_partition)] = offset

    def commit(self) -> None:
        for patient_id in {*self.pending, *self.pending_marks}:
            if patient_id in self.pending:
                value = self.pending[patient_id].to_dict()
            else:
                value = dict(self.table.get(patient_id) or {})
            marks = self.pending_marks.get(patient_id)
            if marks is None:
                marks = (self.table.get(patient_id) or {}).get(FORWARDED)
            if marks:
                value[FORWARDED] = marks
            self.table[patient_id] = value
        self.pending.clear()
        self.pending_marks.clear()

    def discard(self) -> None:
        self.pending.clear()
        self.pending_marks.clear()


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
        self._published: dict[Input, _Window] = {}  # input partition -> what the read-back found
        self._epoch = 0  # bumped on every rebalance: a handle() that spans one records nothing
        self._owned: set[Input] | None = None  # None: not told (a shell driven without faust)

    def forget_positions(self, owned: "set[Input] | None" = None) -> None:
        """On a rebalance: every partition's next record triggers a read-back.

        `owned` is the input partitions assigned now (an empty set while a rebalance is under
        way). A record of a partition this worker does not own is not handled: the consumer
        may still deliver records it fetched before the partitions were revoked, and handling
        them would race the new owner and publish twice."""
        self._epoch += 1
        self._next_offset.clear()
        self._published.clear()
        self._owned = None if owned is None else set(owned)

    def _current(self, epoch: int, tp: Input) -> bool:
        """Still the same assignment, and the partition is ours."""
        return epoch == self._epoch and (self._owned is None or tp in self._owned)

    def positions(self) -> dict[Input, int]:
        """(topic, partition) -> the offset after the inputs handled so far: safe to commit
        once the producer is flushed."""
        return dict(self._next_offset)

    async def handle(self, topic: str, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, headers=None, read_at: float | None = None) -> None:
        read_at = time.monotonic() if read_at is None else read_at
        epoch = self._epoch
        tp = (topic, partition)
        # broker trouble (read-back, publishing) is retried until it passes: skipping would
        # lose an output. A failure of the Processor itself would fail again on every retry:
        # that record is logged, counted and skipped.
        if not self._current(epoch, tp):
            return  # revoked, or a rebalance under way: the partition's owner handles it
        expected = self._next_offset.get(tp)
        if expected is None:
            expected = await _retrying("read back the outputs", self._resume, tp, epoch)
            if not self._current(epoch, tp):
                return  # a rebalance while reading back: that window is not ours to use
        if offset < expected:
            log.debug("%s[%d]@%d is already handled; skipped", topic, partition, offset)
            return
        if offset > expected:
            # the consumer skipped records (faust drops some right after an assignment)
            log.info("%s[%d]: offsets %d..%d were not delivered; reading them from the topic",
                     topic, partition, expected, offset - 1)
        while expected < offset:
            high = min(offset, expected + FILL_CHUNK)
            records = await _retrying("read undelivered inputs", self.readback.read_inputs,
                                      topic, partition, expected, high)
            for record in records:
                if not self._current(epoch, tp):
                    return
                await self._handle_one(tp, record.offset, record.key, record.value,
                                       record.headers, time.monotonic(), epoch)
            self._advance(tp, high, epoch)  # offsets the log does not hold are passed
            expected = high
        if self._current(epoch, tp):
            await self._handle_one(tp, offset, key, value, headers, read_at, epoch)

    def _advance(self, tp: Input, next_offset: int, epoch: int) -> None:
        if epoch == self._epoch:
            self._next_offset[tp] = next_offset

    async def _handle_one(self, tp: Input, offset: int, key: bytes | None,
                          value: bytes | None, headers, read_at: float, epoch: int) -> None:
        topic, partition = tp
        window = self._window(tp, offset)
        origin = TopicSource(topic=topic, partition=partition, offset=offset,
                             key=key.decode("utf-8", "backslashreplace") if key is not None
                             else None)
        forwarded_from = None
        if topic == self.repartition_topic:
            forwarded_from = parse_source_header(_header_pairs(headers))
            if forwarded_from is not None:
                # a dead letter names the record the producer sent, not the internal hop
                origin = TopicSource(topic=forwarded_from[0], partition=forwarded_from[1],
                                     offset=forwarded_from[2], key=origin.key)
        try:
            now = dt.datetime.now(dt.timezone.utc)
            parsed = self.processor.parse(value or b"", origin, now)
            if isinstance(parsed, Handled):
                handled = parsed
            else:
                patient_id = parsed.patient.patient_id
                home = canonical_partition(patient_id, self.partitions)
                if topic == self.source_topic and home != partition:
                    await self._forward(tp, offset, key, value or b"", home)
                    self._advance(tp, offset + 1, epoch)
                    return
                if forwarded_from is not None:
                    source_partition, source_offset = forwarded_from[1], forwarded_from[2]
                    if self.store.forwarded_upto(patient_id, source_partition) >= source_offset:
                        # a forward re-sent after a crash: its first copy is applied already
                        self.metrics.redelivered.inc()
                        self._advance(tp, offset + 1, epoch)
                        return
                    self.store.mark_forwarded(patient_id, source_partition, source_offset)
                handled = self.processor.apply(parsed, now)
        except asyncio.CancelledError:
            self.store.discard()
            raise
        except Exception:
            self.store.discard()
            self._advance(tp, offset + 1, epoch)
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
        if not self._current(epoch, tp):
            self.store.discard()  # lost the partition meanwhile: its owner handles the record
            return
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
            sent = await self._publish(out_topic, out_key, output, partition, header)
            self.metrics.published(sent)
            if isinstance(sent, Decision):
                self.metrics.decision_seconds.observe(time.monotonic() - read_at)
        self.store.commit()
        self._advance(tp, offset + 1, epoch)

    async def _forward(self, tp: Input, offset: int, key: bytes | None, value: bytes,
                       home: int) -> None:
        """Send an event that arrived off its patient's partition on to that partition."""
        header = [source_header(tp[0], tp[1], offset)]
        delay = 0.1
        while True:
            try:
                await self.send(self.repartition_topic, key, value, home, header)
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.metrics.publish_retries.inc()
                log.warning("forwarding to %s[%d] failed (%r); retrying in %.1f s",
                            self.repartition_topic, home, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.metrics.offpartition.inc()

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
                       partition: int, headers: list[tuple[str, bytes]]) -> Decision | DeadLetter:
        """Publish and wait for the ack; retry until it lands. Returns what was published."""
        delay = 0.1
        while True:
            try:
                await self.send(topic, key, to_json(output).encode("utf-8"), partition, headers)
                return output
            except asyncio.CancelledError:
                raise
            except Exception as e:
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
