"""The imperative shell around the Processor: one input record in, its output published.

faust-free on purpose (the agent in `app.py` only feeds it records), so the order of
operations that exactly-once rests on is in one place:

    1. first record of a partition since (re)assignment -> read back what is published
    2. Processor.handle(bytes, TopicSource, now)        -> Decision | DeadLetter | nothing
    3. publish the output to partition p of its topic, wait for the broker's ack
       (skipped when the read-back shows it already published)
    4. write the patient's history to the table (changelog)
    5. return -> faust acks the input; it commits offsets after flushing the producer

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
                 readback: OutputReadback, metrics: Metrics, source_topic: str) -> None:
        self.processor = processor
        self.store = store
        self.send = send
        self.readback = readback
        self.metrics = metrics
        self.source_topic = source_topic
        self._next_offset: dict[int, int] = {}  # partition -> the offset expected next
        self._published: dict[int, _Window] = {}  # partition -> what the read-back found

    def forget_positions(self) -> None:
        """On a rebalance: every partition's next record triggers a read-back."""
        self._next_offset.clear()
        self._published.clear()

    async def handle(self, partition: int, offset: int, key: bytes | None,
                     value: bytes | None, read_at: float | None = None) -> None:
        read_at = time.monotonic() if read_at is None else read_at
        # broker trouble (read-back, publishing) is retried until it passes: skipping would
        # lose an output. A failure of the Processor itself would fail again on every retry:
        # that record is logged, counted and skipped.
        window = await _retrying("read back the outputs", self._already_published,
                                 partition, offset)
        origin = TopicSource(topic=self.source_topic, partition=partition, offset=offset,
                             key=key.decode("utf-8", "backslashreplace") if key is not None
                             else None)
        try:
            handled = self.processor.handle(value or b"", origin,
                                            dt.datetime.now(dt.timezone.utc))
        except Exception:
            self.store.discard()
            self._next_offset[partition] = offset + 1
            self.metrics.processing_errors.inc()
            log.exception("could not handle %s[%d]@%d; skipped it, going on with the next",
                          self.source_topic, partition, offset)
            return
        if handled.kind == "duplicate":
            self.metrics.duplicates.inc()
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
        self._next_offset[partition] = offset + 1

    async def _already_published(self, partition: int, offset: int) -> "_Window | None":
        """The read-back window that covers this record, or None past it."""
        if self._next_offset.get(partition) != offset:
            # first record since (re)assignment, or a jump: what did earlier runs publish?
            found = await self.readback.published_since(partition, offset)
            self._published[partition] = _Window(found.offsets, found.event_ids,
                                                 max(found.offsets, default=-1))
            log.info("partition %d: resuming at offset %d; %d output(s) from there on are "
                     "already published (%d record(s) read back)", partition, offset,
                     len(found.offsets), found.records_read)
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
