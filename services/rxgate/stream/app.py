"""The faust app: one agent over `rx.orders.v1`, one table of patient histories.

The agent is a thin shell: raw bytes in (no faust serializer on the source topic), each record
handed to `OrderShell.handle`, which runs the Processor and publishes its output. The table
`patient-history` (changelog `<RXGATE_GROUP>-patient-history-changelog`) holds each patient's
`PatientHistory.to_dict()`, keyed by patient id, so a restarted worker, or one that takes over
a partition, recovers the histories before it handles anything.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import faust

from ..knowledge import Knowledge
from ..processor import Processor
from .config import (APPROVED_TOPIC, FLAGGED_TOPIC, HISTORY_TABLE, INVALID_TOPIC,
                     MAX_MESSAGE_BYTES, ORDERS_TOPIC, Settings)
from .metrics import Metrics
from .readback import OutputReadback
from .shell import OrderShell, TableHistoryStore

log = logging.getLogger(__name__)


def create_app(settings: Settings, knowledge: Knowledge, metrics: Metrics,
               data_dir: Path) -> faust.App:
    session = settings.session_timeout
    app = faust.App(
        settings.group,
        broker=settings.broker,
        store="memory://",
        datadir=str(data_dir),
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session,
        broker_rebalance_timeout=session,
        broker_heartbeat_interval=max(0.5, min(3.0, session / 5)),
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        producer_acks=-1,
    )
    orders = app.topic(ORDERS_TOPIC, key_serializer="raw", value_serializer="raw",
                       partitions=settings.partitions)
    histories = app.Table(HISTORY_TABLE, default=None, partitions=settings.partitions,
                          schema=faust.Schema(key_serializer="json", value_serializer="json"),
                          extra_topic_configs={"cleanup.policy": "compact"})
    store = TableHistoryStore(histories)
    processor = Processor(knowledge, store, seen_retention=settings.seen_retention,
                          max_seen=settings.max_seen)
    readback = OutputReadback(settings.bootstrap_servers, ORDERS_TOPIC,
                              (APPROVED_TOPIC, FLAGGED_TOPIC), INVALID_TOPIC,
                              settings.partitions, settings.readback_max)

    async def send(topic: str, key: bytes | None, value: bytes, partition: int,
                   headers: list[tuple[str, bytes]]) -> object:
        delivery = await app.producer.send(topic, key, value, partition=partition,
                                           timestamp=None, headers=headers)
        return await delivery  # the broker's acknowledgement

    shell = OrderShell(processor, store, send, readback, metrics, ORDERS_TOPIC)

    @app.agent(orders, name="validate-orders")
    async def validate_orders(stream):
        try:
            async for event in stream.events():
                read_at = time.monotonic()
                message = event.message
                await shell.handle(message.partition, message.offset, message.key,
                                   message.value, read_at)
        finally:
            await readback.stop()

    @app.on_partitions_assigned.connect
    async def on_assigned(*args, **kwargs) -> None:
        shell.forget_positions()

    @app.on_partitions_revoked.connect
    async def on_revoked(*args, **kwargs) -> None:
        shell.forget_positions()

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(*args, **kwargs) -> None:
        if not metrics.healthy.is_set():
            log.info("consuming %s", ORDERS_TOPIC)
        metrics.healthy.set()

    @app.on_before_shutdown.connect
    async def on_shutdown(*args, **kwargs) -> None:
        metrics.healthy.clear()

    app.rxgate_shell = shell  # for introspection in tests
    return app
