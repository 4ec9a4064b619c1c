"""Create the worker's topics when missing; refuse to start when their partition counts differ.

All of them -- orders, the internal repartition topic, the three outputs and the history
changelog -- get `RXGATE_PARTITIONS` partitions: faust needs the changelog co-partitioned with
its sources, exactly-once needs each output co-partitioned with the input (see readback.py),
and a patient's canonical partition (partitioning.py) must mean the same on every topic.
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from .config import MAX_MESSAGE_BYTES, ORDERS_TOPIC, INVALID_TOPIC, OUTPUT_TOPICS, Settings

log = logging.getLogger(__name__)


class TopicError(RuntimeError):
    """The topics cannot be used as they are; the message says what to change."""


def wanted_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """topic -> the configs it is created with."""
    big = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    topics: dict[str, dict[str, str]] = {t: {} for t in OUTPUT_TOPICS}
    topics[ORDERS_TOPIC] = big  # inputs over 1 MiB must reach us to become dead letters
    topics[INVALID_TOPIC] = big  # a dead letter carries its input
    topics[settings.changelog_topic] = {"cleanup.policy": "compact"}
    topics[settings.repartition_topic] = big  # forwarded orders, unchanged (see shell.py)
    return topics


async def ensure_topics(settings: Settings, connect_timeout: float = 30.0) -> list[str]:
    """Create what is missing; returns the names created. Raises TopicError."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                client_id="rxgate-admin", **settings.kafka.client_kwargs())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if loop.time() > deadline:
                raise TopicError(
                    f"cannot reach the broker at RXGATE_BROKER={settings.broker} "
                    f"(tried for {connect_timeout:.0f} s)") from None
            await asyncio.sleep(1.0)
    try:
        wanted = wanted_topics(settings)
        existing = [t for t in wanted if t in set(await admin.list_topics())]
        # refuse before creating anything: a half-created set would stay behind
        _check_counts(settings, await _partition_counts(admin, existing) if existing else {})
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics([
                    NewTopic(t, settings.partitions, settings.replication,
                             topic_configs=wanted[t]) for t in missing])
            except TopicAlreadyExistsError:
                pass  # another worker was quicker
            log.info("created topics %s with %d partition(s)", ", ".join(missing),
                     settings.partitions)
        _check_counts(settings, await _partition_counts(admin, list(wanted)))
        return missing
    except KafkaError as e:
        raise TopicError(f"cannot set up the topics on RXGATE_BROKER={settings.broker}: {e!r}")
    finally:
        await admin.close()


def _check_counts(settings: Settings, counts: dict[str, int]) -> None:
    wrong = {t: n for t, n in counts.items() if n != settings.partitions}
    if wrong:
        listed = ", ".join(f"{t} has {n}" for t, n in sorted(wrong.items()))
        raise TopicError(
            f"RXGATE_PARTITIONS={settings.partitions}, but {listed}: the orders, decision, "
            "dead-letter and changelog topics must all have the same partition count; set "
            "RXGATE_PARTITIONS to match or re-create the topics")


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str],
                            attempts: int = 20) -> dict[str, int]:
    """Partition count of each topic (a just-created topic may take a moment to show)."""
    for attempt in range(attempts):
        described = await admin.describe_topics(topics)
        counts = {d["topic"]: len(d["partitions"]) for d in described if not d["error_code"]}
        if len(counts) == len(topics) and all(counts.values()):
            return counts
        await asyncio.sleep(0.25)
    missing = sorted(set(topics) - set(counts))
    raise TopicError(f"topics {', '.join(missing)} do not show up on the broker")
