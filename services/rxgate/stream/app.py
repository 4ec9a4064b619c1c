"""The faust app: one agent over `rx.orders.v1` and the repartition topic, one table of
patient histories.

Raw bytes in (no faust serializer on the input topics): the consumer (consumer.py) hands the
input records of each fetch straight to the batches (`batches.py`: `RXGATE_BATCH_MAX` records
or `RXGATE_BATCH_WAIT_MS` after the first, whichever comes first), not one by one through
faust's conductor and the agent's stream; the agent subscribes faust to the input topics and
runs the loop that hands each batch to `OrderShell.submit`, which runs the Processor and
publishes the outputs (see shell.py for the order of steps). The table
`patient-history` (changelog `<RXGATE_GROUP>-patient-history-changelog`) holds each patient's
`PatientHistory.to_dict()`, keyed by patient id, so a restarted worker, or one that takes over
a partition, recovers the histories before it handles anything.

Offsets of the source topic are committed by `commits.OffsetCommitter`, not by faust (the
topic has `acks=False`): see commits.py for why.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import faust
from faust.serializers import codecs
from faust.types import TP

from ..knowledge import Knowledge
from ..processor import Processor
from .config import (APPROVED_TOPIC, FLAGGED_TOPIC, HISTORY_TABLE, INVALID_TOPIC,
                     MAX_MESSAGE_BYTES, ORDERS_TOPIC, Settings)
from .commits import COMMIT_INTERVAL, GroupOffsets, OffsetCommitter
from .knowledge_reload import KnowledgeWatcher
from . import consumer, health
from .metrics import Metrics
from .readback import OutputReadback
from .batches import Batches, handle_batches
from .shell import InputRecord, OrderShell, TableHistoryStore
from .watchdog import StallWatchdog, WatchedProcessor

log = logging.getLogger(__name__)

PRODUCER_BATCH_BYTES = 1024 * 1024  # per partition, per produce request
PRODUCER_LINGER_SECONDS = 0.005


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
        # faust's default is 16 KiB: a batch's outputs then go out as many small produce
        # requests (the benchmark loops use 1 MiB)
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # faust's default linger is 0: each output then leaves as its own produce request as
        # soon as it is handed over; a batch's acks are awaited together anyway, so a few
        # milliseconds gather them into one request per partition (the loops use 5 ms too)
        producer_linger=PRODUCER_LINGER_SECONDS,
        producer_acks=-1,
        broker_credentials=settings.kafka.faust_credentials(),  # TLS/SASL, None: PLAINTEXT
    )
    inputs = (ORDERS_TOPIC, settings.repartition_topic)
    batches: Batches[InputRecord] = Batches(settings.batch_max, settings.batch_wait)
    consumer.install(app, settings.fetch_wait, inputs, batches)
    # acks=False: faust neither tracks nor commits this topic's offsets; OffsetCommitter does
    # rx.orders.v1 and the internal repartition topic, co-subscribed: partition p of both is
    # assigned to one worker, the owner of every patient whose canonical partition is p
    orders = app.topic(ORDERS_TOPIC, settings.repartition_topic, key_serializer="raw",
                       value_serializer="raw", partitions=settings.partitions, acks=False)
    histories = app.Table(HISTORY_TABLE, default=None, partitions=settings.partitions,
                          schema=faust.Schema(key_serializer="json", value_serializer="json"),
                          extra_topic_configs={"cleanup.policy": "compact"})

    changelog = settings.changelog_topic

    def _send(topic: str, value: bytes, *, key: bytes | None, partition: int,
              headers: list[tuple[str, bytes]] | None = None):
        # aiokafka's send on faust's producer (the same producer, flushed by
        # app.producer.flush), without faust's wrapper around it: for a plain send with
        # headers as pairs the pinned faust's Producer.send adds only a typing.Mapping
        # isinstance check and a sensor call per record (a few % of the worker). Errors are
        # aiokafka's KafkaError (faust wraps them in ProducerSendError; the shell handles any)
        return app.producer._ensure_producer().send(topic, value, key=key, partition=partition,
                                                    headers=headers)

    async def write_history(patient_id: str, value: dict, partition: int, data: bytes):
        # what `histories[patient_id] = value` does inside a stream, with the changelog
        # partition named (the input partition the patient's events are applied on) rather
        # than taken from faust's current event (a batch is handled outside the agent's
        # iteration), and handed straight to the producer rather than to faust's send buffer;
        # returns what awaits the broker's ack (sent again until it lands)
        # (`data` is the value as the table's json codec writes it: shell.py seals both)
        histories.data[patient_id] = value
        key = codecs.dumps("json", patient_id)
        ack = await _send(changelog, data, key=key, partition=partition)
        return _landed(ack, key, data, partition)

    async def _landed(ack, key: bytes, data: bytes, partition: int) -> None:
        delay = 0.1
        while True:
            try:
                await ack
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                metrics.publish_retries.inc()
                log.warning("writing a history to %s[%d] failed (%r); retrying in %.1f s",
                            changelog, partition, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                ack = await _send(changelog, data, key=key, partition=partition)

    store = TableHistoryStore(histories, write_history)
    processor = Processor(knowledge, store, seen_retention=settings.seen_retention,
                          max_seen=settings.max_seen)
    watchdog = StallWatchdog(settings.stall_seconds,
                             on_stall=lambda stall: metrics.stalls.inc()).start()
    core = processor  # what a knowledge reload swaps into
    processor = WatchedProcessor(processor, watchdog)  # a record's checks running too long
    readback = OutputReadback(settings.bootstrap_servers,
                              (ORDERS_TOPIC, settings.repartition_topic),
                              (APPROVED_TOPIC, FLAGGED_TOPIC), INVALID_TOPIC,
                              settings.partitions, settings.readback_max,
                              client_kwargs=settings.kafka.client_kwargs(),
                              changelog_topic=settings.changelog_topic)
    _true_changelog_ends(app, readback, settings.changelog_topic)

    async def send(topic: str, key: bytes | None, value: bytes, partition: int,
                   headers: list[tuple[str, bytes]]):
        # handed to the producer; the future of the broker's acknowledgement is returned
        return await _send(topic, value, key=key, partition=partition, headers=headers)

    group_offsets = GroupOffsets(settings.bootstrap_servers, settings.group,
                                 client_kwargs=settings.kafka.client_kwargs())
    shell = OrderShell(processor, store, send, readback, metrics, ORDERS_TOPIC,
                       group_offsets.committed, settings.repartition_topic, settings.partitions)

    async def commit(offsets: dict[tuple[str, int], int]) -> bool:
        assigned = app.consumer.assignment()
        tps = {TP(t, p): o for (t, p), o in offsets.items() if TP(t, p) in assigned}
        return bool(tps) and await app.consumer._commit(tps)

    committer = OffsetCommitter(shell.positions, app.producer.flush, commit)
    health.install(app, settings, metrics, shell, group_offsets, watchdog, ORDERS_TOPIC)

    async def commit_handled(when: str) -> None:
        try:
            await committer.commit()
        except Exception as e:  # the next commit (or the next owner's read-back) covers it
            log.warning("could not commit offsets %s (%r)", when, e)

    def failed(size: int) -> None:
        # the shell resumes every partition from its position with a read-back: the batch's
        # records (and those decided after it) are read again, nothing is published twice
        metrics.processing_errors.inc()
        log.exception("could not handle a batch of %d record(s); they are read again "
                      "from the topic when the next record of their partition comes", size)

    @app.agent(orders, name="validate-orders")
    async def validate_orders(stream):
        # the consumer hands the input records to `batches` itself (consumer.py): the agent
        # has faust subscribe the input topics and runs the batches' handler; a record faust
        # delivered itself would be batched here all the same
        handler = asyncio.ensure_future(handle_batches(batches, shell.submit, failed))
        try:
            async for event in stream.events():
                message = event.message
                await batches.put(InputRecord(message.topic, message.partition,
                                              message.offset, message.key, message.value,
                                              message.headers, time.monotonic()))
        finally:
            handler.cancel()
            try:
                await handler
            except (asyncio.CancelledError, Exception):
                pass
            await readback.stop()
            await group_offsets.stop()

    @app.timer(COMMIT_INTERVAL)
    async def commit_offsets() -> None:
        await commit_handled("on schedule")

    if settings.knowledge_dir is not None:
        watcher = KnowledgeWatcher(settings.knowledge_dir, knowledge)

        @app.timer(settings.knowledge_poll)
        async def reload_knowledge() -> None:
            loaded, error = watcher.poll()
            if error is not None:
                metrics.knowledge_refused.inc()
                log.error("RXGATE_KNOWLEDGE_DIR changed but cannot be loaded; knowledge %s "
                          "keeps serving: %s", core.knowledge.version, error)
            elif loaded is not None:
                log.info("RXGATE_KNOWLEDGE_DIR changed: knowledge %s replaces %s",
                         loaded.version, core.knowledge.version)
                core.knowledge = loaded  # between records: each is decided by one version
                metrics.set_knowledge_version(loaded.version)

    @app.on_partitions_assigned.connect
    async def on_assigned(*args, **kwargs) -> None:
        # faust sends the whole new assignment (a set of TPs) with the signal
        assigned = next((a for a in (*args, *kwargs.values()) if isinstance(a, (set, frozenset))),
                        None)
        if assigned is None:
            assigned = app.consumer.assignment()
        shell.forget_positions(owned={(tp.topic, tp.partition) for tp in assigned
                                      if tp.topic in inputs})
        committer.forget()

    @app.on_partitions_revoked.connect
    async def on_revoked(*args, **kwargs) -> None:
        batches.clear()  # read again from the committed offsets, by their next owner
        await commit_handled("before a rebalance")
        shell.forget_positions(owned=set())  # nothing is ours until the next assignment
        committer.forget()
        # a batch under way stops at its next record; what it already handed to the producer
        # lands before the partitions move, so that their next owner's read-back sees it
        try:
            await asyncio.wait_for(shell.sent(), timeout=settings.session_timeout)
            await app.producer.flush()
        except Exception as e:
            log.warning("could not flush the outputs before a rebalance (%r)", e)

    @app.on_rebalance_complete.connect
    async def on_rebalance_complete(*args, **kwargs) -> None:
        if not metrics.healthy.is_set():
            log.info("consuming %s", ORDERS_TOPIC)
        metrics.healthy.set()

    @app.on_before_shutdown.connect
    async def on_shutdown(*args, **kwargs) -> None:
        metrics.healthy.clear()
        await commit_handled("on shutdown")

    app.rxgate_shell = shell  # for introspection in tests
    return app


def _true_changelog_ends(app: faust.App, readback: OutputReadback, changelog: str) -> None:
    """faust recovers a table by reading its changelog up to the consumer's highwaters, which
    are ListOffsets(latest) answers. Tansu answers that with the end of the first record of
    the newest record batch, and a batch's history writes go out together: recovery would
    stop short of the newest histories (and, where a standby had read further, refuse to
    start with a ConsistencyError). So the changelog's ends are learnt by fetching
    (`readback.log_end`), as the read-back does for the output topics."""
    consumer = app.consumer
    reported = consumer.highwaters

    async def highwaters(*tps: TP):
        found = dict(await reported(*tps))
        for tp in tps:
            if tp.topic == changelog:
                end = await readback.end_of(tp.topic, tp.partition)
                found[tp] = max(found.get(tp) or 0, end)
        return found

    consumer.highwaters = highwaters
