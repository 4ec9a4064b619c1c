"""Reads rx.orders.v1 and the decision topics into the store.

A group-less consumer assigned every partition of the three topics; where to resume is the
store's (positions are written in the same transaction as what was read), so nothing is lost or
doubled by a restart and several instances may share one store. Topics that do not exist yet
(the worker creates them) are picked up when they appear.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from .config import INPUT_TOPICS, ReviewSettings
from .kafka import make_consumer
from .metrics import ReviewMetrics
from .store import Record, Store

log = logging.getLogger(__name__)
REDISCOVER_SECONDS = 10.0  # once every input topic is there
WAIT_FOR_TOPICS_SECONDS = 1.0  # while some are still missing


class Ingest:
    def __init__(self, settings: ReviewSettings, store: Store, metrics: ReviewMetrics) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.connected = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as e:
                self.connected.clear()
                log.warning("reading the decision topics failed (%r); retrying in 2 s", e)
                await asyncio.sleep(2.0)
            except Exception:  # the store failed (a restart of PostgreSQL, a full disk, ...)
                self.connected.clear()
                log.exception("storing what was read failed; retrying in 5 s from the store's "
                              "positions")
                await asyncio.sleep(5.0)

    async def _consume(self) -> None:
        consumer = make_consumer(self.settings, "rxgate-review-ingest")
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            loop = asyncio.get_running_loop()
            next_discovery = 0.0
            self.connected.set()
            while True:
                if loop.time() >= next_discovery:
                    wanted = await self._partitions(consumer)
                    if wanted != assigned:
                        consumer.assign(sorted(wanted))
                        positions = await asyncio.to_thread(self.store.positions)
                        for tp in wanted:
                            position = positions.get((tp.topic, tp.partition))
                            if position is None:
                                await consumer.seek_to_beginning(tp)
                            else:
                                consumer.seek(tp, position)
                        log.info("reading %d partition(s) of %s", len(wanted),
                                 ", ".join(sorted({tp.topic for tp in wanted})))
                        assigned = wanted
                    complete = {tp.topic for tp in wanted} == set(INPUT_TOPICS)
                    next_discovery = loop.time() + (REDISCOVER_SECONDS if complete
                                                    else WAIT_FOR_TOPICS_SECONDS)
                if not assigned:
                    await asyncio.sleep(0.5)
                    continue
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                records = [Record(tp.topic, tp.partition, r.offset, r.value)
                           for tp, rs in batch.items() for r in rs]
                if records:
                    counts = await asyncio.to_thread(self.store.ingest, records)
                    for result in ("decisions", "redecisions", "duplicates", "ignored"):
                        if counts.get(result):
                            self.metrics.ingested.labels(result).inc(counts[result])
        finally:
            await consumer.stop()

    async def _partitions(self, consumer) -> set[TopicPartition]:
        existing = await consumer.topics()
        found = set()
        for topic in INPUT_TOPICS:
            if topic in existing:
                found |= {TopicPartition(topic, p)
                          for p in consumer.partitions_for_topic(topic) or ()}
        return found
