"""Every Kafka client of the review service is made here, so connection and security settings
(TLS/SASL) are decided in one place."""
from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from ..stream.config import MAX_MESSAGE_BYTES
from .config import ReviewSettings


def client_options(settings: ReviewSettings) -> dict[str, Any]:
    """Options every client gets: bootstrap servers and the RXGATE_KAFKA_* TLS/SASL settings."""
    return {"bootstrap_servers": settings.bootstrap_servers, **settings.kafka.client_kwargs()}


def make_consumer(settings: ReviewSettings, client_id: str) -> AIOKafkaConsumer:
    """A group-less consumer: the service assigns partitions itself and keeps its positions
    in the store."""
    return AIOKafkaConsumer(**client_options(settings), group_id=None, client_id=client_id,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                            fetch_max_bytes=4 * MAX_MESSAGE_BYTES)


def make_producer(settings: ReviewSettings) -> AIOKafkaProducer:
    # acks from all in-sync replicas; no idempotence or transactions (Tansu refuses
    # InitProducerId): exactly-once comes from the outbox and its read-back (outbox.py)
    return AIOKafkaProducer(**client_options(settings), client_id="rxgate-review",
                            acks="all", enable_idempotence=False, linger_ms=0)


def make_admin(settings: ReviewSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), client_id="rxgate-review-admin")
