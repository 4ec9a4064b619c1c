"""Plain Kafka clients for the stream tests: publish order events, read every output back.

Synchronous wrappers (each call runs its own event loop), so tests read top to bottom.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from rxgate.stream.config import (APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC, MAX_MESSAGE_BYTES,
                                  ORDERS_TOPIC, OUTPUT_TOPICS)
from rxgate.stream.readback import parse_source_header


@dataclass(frozen=True)
class Out:
    """One record on an output topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    source: tuple[str, int, int] | None  # the rxgate-source header

    @property
    def message(self) -> dict:
        return json.loads(self.value)

    @property
    def is_decision(self) -> bool:
        return self.topic in (APPROVED_TOPIC, FLAGGED_TOPIC)


def publish(bootstrap: str, messages: Iterable[tuple[bytes | None, bytes]],
            topic: str = ORDERS_TOPIC, security: dict | None = None) -> list[tuple[int, int]]:
    """Send (key, value) pairs in order; returns each one's (partition, offset).
    `security`: aiokafka TLS/SASL kwargs (KafkaSecurity.client_kwargs())."""
    async def run() -> list[tuple[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_MESSAGE_BYTES,
                                    linger_ms=5, **(security or {}))
        await producer.start()
        try:
            futures = [await producer.send(topic, value, key=key) for key, value in messages]
            sent = [await f for f in futures]
        finally:
            await producer.stop()
        return [(m.partition, m.offset) for m in sent]

    return asyncio.run(run())


async def log_ends(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                   timeout: float = 30.0) -> dict[TopicPartition, int]:
    """The offset after each partition's last record, learnt by fetching (the consumer must
    be assigned the partitions; their positions move to the ends).

    Not ListOffsets(latest) alone: Tansu answers it with the end of the first record of the
    newest batch (`rxgate.stream.readback.log_end`), and the worker publishes in batches."""
    reported = await consumer.end_offsets(tps)
    begins = await consumer.beginning_offsets(tps)
    ends: dict[TopicPartition, int] = {}
    live = []
    for tp in tps:
        if reported[tp] <= begins[tp]:
            ends[tp] = begins[tp]  # empty: Tansu's answer is at least 1 past a first record
        else:
            consumer.seek(tp, max(begins[tp], reported[tp] - 1))
            live.append(tp)
    deadline = time.monotonic() + timeout
    while live:
        if time.monotonic() > deadline:
            raise AssertionError(f"no fetch answer to learn the ends of {live}")
        await consumer.getmany(*live, timeout_ms=200)
        for tp in list(live):
            highwater = consumer.highwater(tp)
            position = await consumer.position(tp)
            if highwater is not None and position >= highwater:
                ends[tp] = position
                live.remove(tp)
    return ends


def caught_up_consumer(bootstrap: str, security: dict | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                            fetch_max_wait_ms=100, **(security or {}))


def read_outputs(bootstrap: str, until: Callable[[list[Out]], bool] = lambda outs: True,
                 timeout: float = 90.0, partitions: int = 4,
                 security: dict | None = None) -> list[Out]:
    """Every record on the output topics, read from the start until `until(records)` holds.

    A partition is read to its fetch high watermark (not to the ListOffsets answer, which
    Tansu gives below the true end: see `log_ends`)."""
    async def run() -> list[Out]:
        consumer = caught_up_consumer(bootstrap, security)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in OUTPUT_TOPICS for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            outs: list[Out] = []
            deadline = time.monotonic() + timeout
            while True:
                behind = set(tps)
                while behind:
                    batch = await consumer.getmany(timeout_ms=200)
                    for tp, records in batch.items():
                        outs.extend(Out(tp.topic, tp.partition, r.offset, r.key, r.value,
                                        parse_source_header(r.headers)) for r in records)
                    for tp in list(behind):
                        highwater = consumer.highwater(tp)
                        if highwater is not None and await consumer.position(tp) >= highwater:
                            behind.discard(tp)
                    if time.monotonic() > deadline:
                        break
                if until(outs):
                    return outs
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"outputs did not reach the expected state within {timeout:.0f} s "
                        f"({len(outs)} records read)")
                await asyncio.sleep(0.2)
        finally:
            await consumer.stop()

    return asyncio.run(run())


def output_count(bootstrap: str, partitions: int = 4) -> int:
    """How many records the output topics hold (their ends, learnt by fetching)."""
    async def run() -> int:
        consumer = caught_up_consumer(bootstrap, None)
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in OUTPUT_TOPICS for p in range(partitions)]
            consumer.assign(tps)
            return sum((await log_ends(consumer, tps)).values())
        finally:
            await consumer.stop()

    return asyncio.run(run())


def consumed_everything(bootstrap: str, group: str, partitions: int = 4) -> bool:
    """True when the group's committed offsets have reached the end of every input partition."""
    async def run() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        consumer = caught_up_consumer(bootstrap, None)
        await admin.start()
        await consumer.start()
        try:
            tps = [TopicPartition(ORDERS_TOPIC, p) for p in range(partitions)]
            consumer.assign(tps)
            ends = await log_ends(consumer, tps)
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            return all(tp in committed and committed[tp].offset >= ends[tp] for tp in tps)
        finally:
            await consumer.stop()
            await admin.close()

    return asyncio.run(run())


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def decisions_by_event(outs: Iterable[Out]) -> dict[str, list[Out]]:
    found: dict[str, list[Out]] = {}
    for out in outs:
        if out.is_decision:
            found.setdefault(out.message["event_id"], []).append(out)
    return found


def dead_letters(outs: Iterable[Out]) -> list[Out]:
    return [o for o in outs if o.topic == INVALID_TOPIC]


def settle(measure: Callable[[], object], seconds: float, timeout: float = 120.0) -> None:
    """Wait until `measure()` has not changed for `seconds`."""
    deadline = time.monotonic() + timeout
    last, since = measure(), time.monotonic()
    while time.monotonic() - since < seconds:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {timeout:.0f} s")
        time.sleep(0.5)
        now = measure()
        if now != last:
            last, since = now, time.monotonic()


def committed_offsets(bootstrap: str, group: str, partitions: int = 4) -> dict[int, int | None]:
    """The group's committed offset of each input partition (None where it has none)."""
    async def run() -> dict[int, int | None]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            tps = [TopicPartition(ORDERS_TOPIC, p) for p in range(partitions)]
            committed = await admin.list_consumer_group_offsets(group, partitions=tps)
            return {tp.partition: committed[tp].offset if tp in committed else None
                    for tp in tps}
        finally:
            await admin.close()

    return asyncio.run(run())
