"""The imperative shell around the Processor: one input record in, its output published.

faust-free on purpose (the agent in `app.py` only feeds it records), so the order of
operations that exactly-once rests on is in one place:

    1. first record of a partition since (re)assignment -> find where the partition resumes
       (the group's committed offset) and read back what is published from there on
    2. Processor.handle(bytes, TopicSource, now)        -> Decision | DeadLetter | nothing
    3. publish the output to partition p of its topic, wait for the broker's ack
       (skipped when the read-back shows it already published)
    4. write the patient's history to the table (changelog)
    5. advance the partition's position past the input; `commits.OffsetCommitter` commits
       positions after flushing the producer

Each partition is handled as one unbroken run of offsets from where it resumed: a record
below the position is a re-delivery and is skipped; records the consumer did not deliver
(a jump past the position) are read from the input topic and handled first, in order.

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
from ..processor import TRUNCATED_PAYLOAD_BYTES, Processor
from .config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC
from .metrics import Metrics
from .readback import OutputReadback, source_header

log = logging.getLogger(__name__)

# (topic, key, value, partition, headers) -> awaits the broker's acknowledgement
Send = Callable[[str, bytes | None, bytes, int, list[tuple[str, bytes]]], Awaitable[object]]
# partition -> the group's committed offset of the input partition, or None
Committed = Callable[[int], Awaitable["int | None"]]

FILL_CHUNK = 2_000  # undelivered input records read per step


class TableHistoryStore:
    """The Processor's HistoryStore over a faust table of `PatientHistory.to_dict()` values.

    Writes are held back until `commit()`: the shell writes a patient's history only after
    the output of the input that changed it is acknowledged (see readback.py).
    """

    def __init__(self, table: MutableMapping[str, dict]) -> None:
        self.table = table
        self.pending: dict[str, PatientHistory] = {}

    def get(self, patient_id: str) -> PatientHistory | None:
        if patient_id in self.pending:
            return self.pending[patient_id]
        stored = self.table.get(patient_id)
        return PatientHistory.from_dict(stored) if stored else None

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.pending[patient_id] = history

    def commit(self) -> None:
        for patient_id, history in self.pending.items():
            self.table[patient_id] = history.to_dict()
        self.pending.clear()

    def discard(self) -> None:
        self.pending.clear()


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
                 committed: Committed) -> None:
        self.processor = processor
        self.store = store
        self.send = send
        self.readback = readback
        self.metrics = metrics
        self.source_topic = source_topic
        self.committed = committed
        # partition -> the offset expected next; every input before it (from where the
        # partition resumed) is handled: its output acknowledged, its history written
        self._next_offset: dict[int, int] = {}
        self._published: dict[int, _Window] = {}  # partition -> what the read-back found
        self._epoch = 0  # bumped on every rebalance: a handle() that spans one records nothing

    def forget_positions(self) -> None:
        """On a rebalance: every partition's next record triggers a read-back."""
        self._epoch += 1
        self._next_offset.clear()
        self._published.clear()

    def positions(self) -> dict[int, int]:
        """Partition -> the offset after the inputs handled so far: safe to commit once the
        producer is flushed."""
        return dict(self._next_offset)

    async def handle(self, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, read_at: float | None = None) -> None:
        read_at = time.monotonic() if read_at is None else read_at
        epoch = self._epoch
        # broker trouble (read-back, publishing) is retried until it passes: skipping would
        # lose an output. A failure of the Processor itself would fail again on every retry:
        # that record is logged, counted and skipped.
        expected = self._next_offset.get(partition)
        if expected is None:
            expected = await _retrying("read back the outputs", self._resume, partition, epoch)
        if offset < expected:
            log.debug("%s[%d]@%d is already handled; skipped", self.source_topic, partition,
                      offset)
            return
        if offset > expected:
            # the consumer skipped records (faust drops some right after an assignment)
            log.info("partition %d: offsets %d..%d were not delivered; reading them from %s",
                     partition, expected, offset - 1, self.source_topic)
        while expected < offset:
            high = min(offset, expected + FILL_CHUNK)
            records = await _retrying("read undelivered inputs", self.readback.read_inputs,
                                      partition, expected, high)
            for record in records:
                await self._handle_one(partition, record.offset, record.key, record.value,
                                       time.monotonic(), epoch)
            self._advance(partition, high, epoch)  # offsets the log does not hold are passed
            expected = high
        await self._handle_one(partition, offset, key, value, read_at, epoch)

    def _advance(self, partition: int, next_offset: int, epoch: int) -> None:
        if epoch == self._epoch:
            self._next_offset[partition] = next_offset

    async def _handle_one(self, partition: int, offset: int, key: bytes | None,
                          value: bytes | None, read_at: float, epoch: int) -> None:
        window = self._window(partition, offset)
        origin = TopicSource(topic=self.source_topic, partition=partition, offset=offset,
                             key=key.decode("utf-8", "backslashreplace") if key is not None
                             else None)
        try:
            handled = self.processor.handle(value or b"", origin,
                                            dt.datetime.now(dt.timezone.utc))
        except Exception:
            self.store.discard()
            self._advance(partition, offset + 1, epoch)
            self.metrics.processing_errors.inc()
            log.exception("could not handle %s[%d]@%d; skipped it, going on with the next",
                          self.source_topic, partition, offset)
            return
        if handled.kind == "duplicate":
            self.metrics.duplicates.inc()
        if handled.error is not None:
            # the order is still decided (flagged rxgate.data.checks_failed); the defect is logged
            log.error("could not complete the checks for %s[%d]@%d; published it flagged "
                      "rxgate.data.checks_failed", self.source_topic, partition, offset,
                      exc_info=handled.error)
        for output in handled.outputs:
            if window is not None and window.covers(offset, output):
                self.metrics.redelivered.inc()
                continue
            if isinstance(output, Decision):
                topic = APPROVED_TOPIC if output.outcome == "approved" else FLAGGED_TOPIC
                out_key = output.patient_id.encode("utf-8")
            else:
                topic, out_key = INVALID_TOPIC, key  # the input's key bytes as they came
            header = [source_header(self.source_topic, partition, offset)]
            sent = await self._publish(topic, out_key, output, partition, header)
            self.metrics.published(sent)
            if isinstance(sent, Decision):
                self.metrics.decision_seconds.observe(time.monotonic() - read_at)
        self.store.commit()
        self._advance(partition, offset + 1, epoch)

    async def _resume(self, partition: int, epoch: int) -> int:
        """First record since (re)assignment: where does the partition resume, and what did
        earlier runs publish from there on?"""
        committed = await self.committed(partition)
        start = await self.readback.input_start(partition)
        if committed is not None:
            start = max(start, committed)  # a committed offset below the log start: earliest
        found = await self.readback.published_since(partition, start)
        if epoch == self._epoch:
            self._published[partition] = _Window(found.offsets, found.event_ids,
                                                 max(found.offsets, default=-1))
            self._next_offset[partition] = start
        log.info("partition %d: resuming at offset %d; %d output(s) from there on are "
                 "already published (%d record(s) read back)", partition, start,
                 len(found.offsets), found.records_read)
        return start

    def _window(self, partition: int, offset: int) -> "_Window | None":
        """The read-back window that covers this record, or None past it."""
        window = self._published.get(partition)
        if window is not None and offset > window.newest:
            del self._published[partition]  # past the re-read window
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
