"""Exactly one output per input, without transactions: read back what is already published.

Tansu refuses InitProducerId, so neither idempotent nor transactional producers start on it
and faust's exactly_once guarantee cannot be used. This module, with the order of operations
in `shell.py`, gives the same result on Tansu and on Apache Kafka.

The invariants the worker keeps
-------------------------------
1. **Co-partitioning.** The output of input `rx.orders.v1`/p goes to partition p of its
   output topic (approved, flagged or invalid), chosen explicitly, not by hashing the key.
   All topics have the same partition count (checked at start-up). Producers that key orders
   by patient id put all of a patient's events in one input partition, so all of the
   patient's decisions land in one output partition, in order, as the contract wants. (With
   the default Java/aiokafka partitioner on both sides this is the very partition the key
   hashes to anyway.)
2. **Provenance.** Every output carries a header `rxgate-source: <topic>:<partition>:<offset>`
   naming the input it answers.
3. **Publish, then remember, then commit.** For each batch of inputs the worker (a) hands
   every output to the producer and waits for all of the broker's acknowledgements, (b) then
   writes the histories the batch changed to the faust table (whose changelog is written
   through the same producer), (c) only then advances the partitions' positions past the
   batch. Positions cover an unbroken run of handled inputs from where the partition resumed
   (inputs the consumer fails to deliver are read from the topic and handled in order, see
   `shell.py`); `commits.OffsetCommitter` flushes the producer, then commits them (faust's
   own commits of the input topic are off). So a committed offset always falls between two
   batches, every output of an input below it was acknowledged before any output of an input
   at or above it was sent, and the committed offset never passes an input whose output or
   history write is not durable. (Within a batch, the producer keeps each output partition's
   records in the order they were sent; only a send that fails for good and is sent again
   can land after a later output of the same batch.)

Recovery
--------
After a partition is (re)assigned, the worker re-reads inputs from the committed offset C;
inputs at or after C may already have their output published (the worker died, or lost the
partition, after (a) but before the commit). Before it handles the first of them, it reads
partition p of each output topic backwards from the end, collecting the source offsets
>= C named by the provenance headers (and the event ids of those decisions), and stops at
the first record whose source offset is < C (by 3., everything before it is older). An
input whose offset is in that set, or whose decision's event_id is, is handled as usual --
the history write is idempotent, since history.apply is per event_id -- but its output is
not published again (`rxgate_redelivered_total`).

Two checks, because the history may be *ahead* of the re-read inputs: the table's changelog
holds what was handled after the last commit too. Should a patient's history no longer
remember such an event id (it keeps them for `RXGATE_SEEN_RETENTION_DAYS` of event time only,
which matters when the commits lag far behind, e.g. while the broker refuses them), the
Processor would decide a re-read event again. Such an input is recognised by its offset, and
a re-sent copy of its event (same event_id, later offset) by the event ids of the decisions
read back; neither is published again.

(Before `commits.py`, faust committed the input offsets and on Tansu its commits stalled for
good after a restart: faust dropped some re-fetched records without acknowledging them, and
its ack list kept a gap at its head; see commits.py.)

Why the decision itself is right: the history write of a batch is made only after all of its
outputs are acknowledged, so the history is only ever ahead of inputs whose outputs exist
(those are suppressed above). An input whose output is missing meets the very history it met
the first time, and its decision is the one it would have had: the batch is re-read from its
first input, so the inputs before it in the batch are applied to the history again first.

Limits
------
- At most `RXGATE_READBACK_MAX` records are read back per output partition (default 100,000).
  What needs reading is what was published since the last offset commit: the worker commits
  what it has handled every 2 s (`commits.COMMIT_INTERVAL`), on a rebalance and on a clean
  stop, so that is seconds' worth; the committed offsets reach the end of the input once the
  stream is handled (tests/stream/test_commits.py). Only while commits fail (a broker
  refusing them: logged as warnings) does the window grow with the stream. Reaching the cap
  is logged as a warning; outputs older than it are not checked, so a re-read beyond it could
  publish again. Watch the consumer-group lag (on Tansu, against the fetch high watermark:
  its ListOffsets(latest) answer was seen below the true log end).
- A "zombie" worker that lost its partitions but keeps publishing (e.g. a paused process
  that outlived its session timeout) is not fenced: only transactions fence producers. Run
  with a session timeout well above your worst pause.
- De-duplication of re-published events (the same event_id at a new offset) lasts as long as
  the patient's history remembers the event_id (`RXGATE_SEEN_RETENTION_DAYS`,
  `RXGATE_MAX_SEEN`).
- Records on the output topics without the provenance header (other producers) are ignored.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from .config import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

SOURCE_HEADER = "rxgate-source"
CHUNK = 2_000  # records read per step backwards


def source_header(topic: str, partition: int, offset: int) -> tuple[str, bytes]:
    return SOURCE_HEADER, f"{topic}:{partition}:{offset}".encode()


def parse_source_header(headers) -> tuple[str, int, int] | None:
    """(topic, partition, offset) from a record's headers, or None when absent/malformed."""
    for name, value in headers or ():
        if name == SOURCE_HEADER and value:
            try:
                topic, partition, offset = value.decode().rsplit(":", 2)
                return topic, int(partition), int(offset)
            except ValueError:
                return None
    return None


@dataclass
class Published:
    """Input offsets (>= from_offset) of one input partition whose output is already published."""

    source_topic: str
    partition: int
    from_offset: int
    offsets: set[int] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)  # of the decisions among them
    records_read: int = 0
    capped: bool = False


class OutputReadback:
    """Reads back the tails of the output partitions with a plain (group-less) consumer.

    The consumer is assigned every output partition (and every input partition, for the
    records the group consumer did not deliver: see `OrderShell.handle`) once and keeps them
    all paused but the one being read, so nothing is fetched in between.
    """

    def __init__(self, bootstrap_servers: list[str], source_topics: tuple[str, ...],
                 decision_topics: tuple[str, ...], dead_letter_topic: str, partitions: int,
                 max_records: int, client_kwargs: dict | None = None,
                 changelog_topic: str | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.changelog_topic = changelog_topic  # its ends are learnt here too (`end_of`)
        self.client_kwargs = client_kwargs or {}  # TLS/SASL: rxgate.kafka_security
        self.source_topics = source_topics
        self.output_topics = (*decision_topics, dead_letter_topic)
        self.dead_letter_topic = dead_letter_topic
        self.partitions = partitions
        self.max_records = max_records
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _ensure_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                client_id="rxgate-readback",
                fetch_max_wait_ms=100,  # an empty fetch at a log end answers soon (log_end)
                max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
                **self.client_kwargs,
            )
            await consumer.start()
            try:
                topics = (*self.output_topics, *self.source_topics,
                          *((self.changelog_topic,) if self.changelog_topic else ()))
                everything = [TopicPartition(t, p) for t in topics
                              for p in range(self.partitions)]
                consumer.assign(everything)
                consumer.pause(*everything)
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def end_of(self, topic: str, partition: int) -> int:
        """The offset after the partition's last record (`log_end`)."""
        async with self._lock:
            consumer = await self._ensure_consumer()
            return await log_end(consumer, TopicPartition(topic, partition))

    async def input_start(self, topic: str, partition: int) -> int:
        """The first offset the input partition still holds."""
        async with self._lock:
            consumer = await self._ensure_consumer()
            tp = TopicPartition(topic, partition)
            return (await consumer.beginning_offsets([tp]))[tp]

    async def read_inputs(self, topic: str, partition: int, low: int, high: int) -> list:
        """The input records of the partition with low <= offset < high, in order."""
        async with self._lock:
            consumer = await self._ensure_consumer()
            tp = TopicPartition(topic, partition)
            consumer.resume(tp)
            try:
                return await read_range(consumer, tp, low, high)
            finally:
                consumer.pause(tp)

    async def published_since(self, source_topic: str, partition: int,
                              from_offset: int) -> Published:
        async with self._lock:
            consumer = await self._ensure_consumer()
            found = Published(source_topic, partition, from_offset)
            source = TopicPartition(source_topic, partition)
            if await log_end(consumer, source) <= from_offset:
                # nothing to re-read there, so nothing to look for (this also spares a scan
                # to the read-back cap for an input that never had an output, such as the
                # repartition topic of a deployment whose producers all use murmur2)
                return found
            tps = [TopicPartition(topic, partition) for topic in self.output_topics]
            begins = await consumer.beginning_offsets(tps)
            ends = {tp: await log_end(consumer, tp) for tp in tps}
            for tp in tps:
                if ends[tp] > begins[tp]:
                    consumer.resume(tp)
                    try:
                        await self._scan(consumer, tp, begins[tp], ends[tp], found)
                    finally:
                        consumer.pause(tp)
            return found

    async def _scan(self, consumer: AIOKafkaConsumer, tp: TopicPartition, begin: int,
                    end: int, found: Published) -> None:
        """Backwards from the end, chunk by chunk, until a record older than from_offset."""
        high, read = end, 0
        while high > begin:
            if read >= self.max_records:
                found.capped = True
                log.warning("read-back of %s[%d] stopped after %d records (RXGATE_READBACK_MAX); "
                            "older outputs are not checked", tp.topic, tp.partition, read)
                return
            low = max(begin, high - CHUNK, high - (self.max_records - read))
            reached_older = False
            for record in await read_range(consumer, tp, low, high):
                source = parse_source_header(record.headers)
                if source is None:
                    continue
                topic, partition, offset = source
                if topic != found.source_topic or partition != found.partition:
                    continue
                if offset >= found.from_offset:
                    found.offsets.add(offset)
                    if tp.topic != self.dead_letter_topic:
                        found.event_ids.add(_event_id(record.value))
                else:
                    reached_older = True
            read += high - low
            found.records_read += high - low
            if reached_older:
                return
            high = low


async def log_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The offset after the partition's last record.

    Not ListOffsets(latest) alone: Tansu answers it with the end of the first record of the
    newest batch (10 records sent in one batch: it says 1), so a read-back from there would
    miss the newest outputs and publish them again. Fetches are right: read from just below
    the reported end to an empty fetch at the high watermark (one batch, at most).
    """
    reported = (await consumer.end_offsets([tp]))[tp]
    begin = (await consumer.beginning_offsets([tp]))[tp]
    if reported <= begin:
        return begin  # empty: Tansu's answer is at least 1 past a partition's first record
    end = reported
    consumer.seek(tp, max(begin, reported - 1))
    consumer.resume(tp)
    try:
        for _ in range(1000):
            records = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            if records:
                end = max(end, records[-1].offset + 1)
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater <= end:
                return end  # an empty fetch at the end
    finally:
        consumer.pause(tp)
    raise TimeoutError(f"no fetch answer for {tp.topic}[{tp.partition}] to learn its end")


def _event_id(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"{}").get("event_id", ""))
    except (ValueError, AttributeError):
        return ""


async def read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, low: int, high: int,
                      timeout: float = 30.0):
    """Records of tp with low <= offset < high."""
    consumer.seek(tp, low)
    records = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await consumer.position(tp) < high:
        if loop.time() > deadline:
            raise TimeoutError(f"reading back {tp.topic}[{tp.partition}] {low}..{high} timed out")
        batch = await consumer.getmany(tp, timeout_ms=500)
        for record in batch.get(tp, []):
            if record.offset < high:
                records.append(record)
    return records
