"""Publishes the outbox: each stored action reaches rx.reviews.v1, then rx.decisions.verified.v1,
exactly once, keyed by patient id.

Why exactly once, without Kafka transactions (Tansu refuses InitProducerId):
1. An action and its outbox rows are one store transaction (store.Store.act): no action without
   its messages, no message without its action.
2. Rows are published one at a time in id order; a row is marked sent only after the broker has
   acknowledged it. Each record carries a header `rxgate-outbox: <row id>`.
3. So after a crash, a publish that timed out, or any publishing error, the only rows whose
   fate is unknown are unsent rows. Before publishing any of them, the publisher reads the
   output topics back from the end, partition by partition, down to the first record whose
   outbox id is older than the oldest unsent row, and marks as sent every unsent row whose
   (topic, review_id) it finds there. The rest are published.

4. One publisher per store: several services may share a store (and serve the page), but only
   the one holding the store's publisher lock (a PostgreSQL advisory lock held by a
   connection, or an exclusive lock on a file next to the SQLite database) publishes; the
   others stand by and take over when it goes (the lock dies with its holder).

Limit: at most RXGATE_REVIEW_READBACK_MAX records are read back per partition (what was
published since the oldest unsent row: a handful, unless Kafka was unreachable for long).
"""
from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from .config import OUTPUT_TOPICS, ReviewSettings
from .kafka import make_admin, make_consumer, make_producer
from .metrics import ReviewMetrics
from .store import Store

log = logging.getLogger(__name__)
OUTBOX_HEADER = "rxgate-outbox"
CHUNK = 500


class OutboxPublisher:
    def __init__(self, settings: ReviewSettings, store: Store, metrics: ReviewMetrics) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()
        self._standing_by = False

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self._publish_forever()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as e:
                self.ready.clear()
                log.warning("the outbox publisher lost the broker (%r); retrying in 2 s", e)
                await asyncio.sleep(2.0)
            except Exception:  # the store failed; unsent rows stay unsent, read back first
                self.ready.clear()
                log.exception("the outbox publisher failed; retrying in 5 s")
                await asyncio.sleep(5.0)

    async def _publish_forever(self) -> None:
        with self.store.publisher_lock() as held:
            if not held:
                # another service publishes this store's outbox; stand by (serve the page)
                self.ready.set()
                if not self._standing_by:
                    log.info("another rxgate review publishes this store's outbox; standing by")
                self._standing_by = True
                await asyncio.sleep(1.0)
                return
            if self._standing_by:
                log.info("this service now publishes the store's outbox")
            self._standing_by = False
            await self._publish_holding_the_lock()

    async def _publish_holding_the_lock(self) -> None:
        await ensure_output_topics(self.settings)
        producer = make_producer(self.settings)
        await producer.start()
        try:
            need_readback = True
            self.ready.set()
            while True:
                rows = await asyncio.to_thread(self.store.unsent)
                if not rows:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if need_readback:
                    found = await self.already_published(rows)
                    if found:
                        log.info("read-back: %d outbox message(s) already on their topic; "
                                 "not sending them again", len(found))
                        await asyncio.to_thread(self.store.mark_sent, found)
                        self.metrics.readback_found.inc(len(found))
                    need_readback = False
                    continue
                for row in rows:
                    await self._pause("before")
                    try:
                        await producer.send_and_wait(
                            row.topic, row.payload.encode("utf-8"), key=row.key.encode("utf-8"),
                            headers=[(OUTBOX_HEADER, str(row.id).encode())])
                    except KafkaError as e:
                        # acknowledged or not? unknown: read back before trying again
                        need_readback = True
                        self.metrics.publish_failures.inc()
                        log.warning("publishing outbox row %d to %s failed (%r); will read back "
                                    "and retry", row.id, row.topic, e)
                        await asyncio.sleep(1.0)
                        break
                    await self._pause("after")
                    await asyncio.to_thread(self.store.mark_sent, [row.id])
                    self.metrics.published.labels(row.topic).inc()
        finally:
            await producer.stop()

    async def _pause(self, stage: str) -> None:
        pause = self.settings.outbox_pause
        if pause and pause[0] == stage:
            log.warning("RXGATE_REVIEW_OUTBOX_PAUSE: pausing %.1f s %s a publish", pause[1], stage)
            await asyncio.sleep(pause[1])

    async def already_published(self, rows) -> list[int]:
        """Ids of the given unsent rows whose message is already on its topic."""
        lowest = min(row.id for row in rows)
        wanted = {(row.topic, row.review_id): row.id for row in rows}
        consumer = make_consumer(self.settings, "rxgate-review-readback")
        await consumer.start()
        found: list[int] = []
        try:
            existing = await consumer.topics()
            tps = [TopicPartition(t, p) for t in OUTPUT_TOPICS if t in existing
                   for p in consumer.partitions_for_topic(t) or ()]
            if not tps:
                return []
            consumer.assign(tps)
            begins = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.pause(*tps)
                consumer.resume(tp)
                high, read = ends[tp], 0
                while high > begins[tp] and read < self.settings.readback_max:
                    low = max(begins[tp], high - CHUNK)
                    older = False
                    for record in await _read_range(consumer, tp, low, high):
                        row_id = _outbox_id(record.headers)
                        if row_id is None:
                            continue
                        if row_id < lowest:
                            older = True
                            continue
                        try:
                            review_id = json.loads(record.value)["review_id"]
                        except (ValueError, KeyError, TypeError):
                            continue
                        if (tp.topic, review_id) in wanted:
                            found.append(wanted[(tp.topic, review_id)])
                    read += high - low
                    if older:
                        break
                    high = low
                if read >= self.settings.readback_max:
                    log.warning("outbox read-back of %s[%d] stopped after %d records "
                                "(RXGATE_REVIEW_READBACK_MAX)", tp.topic, tp.partition, read)
        finally:
            await consumer.stop()
        return sorted(set(found))


def _outbox_id(headers) -> int | None:
    for name, value in headers or ():
        if name == OUTBOX_HEADER:
            try:
                return int(value.decode())
            except (ValueError, AttributeError):
                return None
    return None


async def _read_range(consumer, tp: TopicPartition, low: int, high: int, timeout: float = 30.0):
    consumer.seek(tp, low)
    records = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await consumer.position(tp) < high:
        if loop.time() > deadline:
            raise KafkaError(f"reading back {tp.topic}[{tp.partition}] {low}..{high} timed out")
        batch = await consumer.getmany(tp, timeout_ms=500)
        records.extend(r for r in batch.get(tp, []) if r.offset < high)
    return records


async def ensure_output_topics(settings: ReviewSettings) -> None:
    """Create rx.reviews.v1 and rx.decisions.verified.v1 when missing."""
    admin = make_admin(settings)
    await admin.start()
    try:
        missing = [t for t in OUTPUT_TOPICS if t not in set(await admin.list_topics())]
        if missing:
            try:
                await admin.create_topics([NewTopic(t, settings.partitions, settings.replication) for t in missing])
                log.info("created %s with %d partition(s)", ", ".join(missing),
                         settings.partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
