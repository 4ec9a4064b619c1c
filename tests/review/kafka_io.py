"""Plain Kafka I/O for the review tests: create topics, publish, read a topic whole."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 4


def create_topics(bootstrap: str, topics: list[str], partitions: int = PARTITIONS) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
        finally:
            await admin.close()

    asyncio.run(run())


def publish(bootstrap: str, topic: str, messages: list[dict], key: str = "patient_id") -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for m in messages:
                k = m.get(key) or (m.get("patient") or {}).get("patient_id")
                await producer.send_and_wait(topic, json.dumps(m).encode(), key=k.encode())
        finally:
            await producer.stop()

    asyncio.run(run())


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict, list]]:
    """Every record of the topic: (key, message, headers)."""
    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out = []
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    out.extend((r.key, json.loads(r.value), list(r.headers or ()))
                               for r in records if r.offset < ends[tp])
            return out
        finally:
            await consumer.stop()

    return asyncio.run(run())


def wait_for(condition: Callable[[], object], timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
