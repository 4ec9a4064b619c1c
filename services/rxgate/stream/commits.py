"""Offset commits of `rx.orders.v1`, made by rxgate rather than by faust's ack bookkeeping.

faust commits an input offset once its own list of acknowledged offsets is gap-free up to
it. On Tansu that list can stay gapped for good: right after a (re)assignment faust's fetcher
delivers records while its recovery is still seeking the partition to the committed offset;
the seek then makes the consumer fetch the same records again, and faust drops the ones
below what it delivered last (`_drain_messages`: "DROPPED MESSAGE"). Those offsets are
neither acknowledged nor counted as a gap, so `Consumer._new_offset` finds
`min(acked) - committed > 1` on every commit and the group's offset stays where the
assignment found it (faust-streaming #312, robinhood/faust #625 are cousins of this).

So the source topic is declared with `acks=False` (faust neither tracks nor commits it) and
`OffsetCommitter` commits, every `COMMIT_INTERVAL` seconds and when partitions are revoked or
the worker stops, what `OrderShell.positions()` reports: per partition, the offset after
the last record handled in an unbroken run from where the partition resumed. It flushes the
producer first, so every output and history write behind a committed offset is durable.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 2.0  # seconds


class GroupOffsets:
    """Reads the group's committed offsets of the input topic (an admin client of its own)."""

    def __init__(self, bootstrap_servers: list[str], group: str,
                 client_kwargs: dict | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_kwargs = client_kwargs or {}  # TLS/SASL: rxgate.kafka_security
        self.group = group
        self._admin: AIOKafkaAdminClient | None = None

    async def committed(self, topic: str, partition: int) -> int | None:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers,
                                        client_id="rxgate-offsets", **self.client_kwargs)
            await admin.start()
            self._admin = admin
        tp = TopicPartition(topic, partition)
        found = await self._admin.list_consumer_group_offsets(self.group, partitions=[tp])
        offset = found[tp].offset if tp in found else -1
        return offset if offset >= 0 else None

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()


class OffsetCommitter:
    """Commits the shell's handled positions after flushing the producer.

    positions: () -> {(topic, partition): next offset}, what has been handled (OrderShell)
    flush:     awaits the producer's flush (outputs and changelog writes acknowledged)
    commit:    {(topic, partition): offset} -> True when the group took the commit
    """

    def __init__(self, positions: Callable[[], dict[tuple[str, int], int]],
                 flush: Callable[[], Awaitable[None]],
                 commit: Callable[[dict[tuple[str, int], int]], Awaitable[bool]]) -> None:
        self.positions = positions
        self.flush = flush
        self.commit_offsets = commit
        self._committed: dict[tuple[str, int], int] = {}  # what this worker committed last, per partition
        self._lock = asyncio.Lock()

    async def commit(self) -> bool:
        async with self._lock:
            # the snapshot comes first: everything it covers was sent before the flush below
            offsets = {p: o for p, o in self.positions().items()
                       if self._committed.get(p) != o}
            if not offsets:
                return False
            await self.flush()
            if not await self.commit_offsets(offsets):
                return False
            self._committed.update(offsets)
            log.debug("committed %s", offsets)
            return True

    def forget(self) -> None:
        """On a rebalance: the partitions' committed offsets are no longer ours to know."""
        self._committed.clear()
