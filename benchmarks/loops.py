"""The baselines the stream benchmarks hold `rxgate worker` against: plain aiokafka loops.

Benchmark code, not product code. Each runs as its own process, like the worker, reading
`rx.orders.v1` in a consumer group and writing the worker's output topics (same partition as
the input, the same `rxgate-source` header), so one reader measures them all alike:

- `changelog`    the same Processor (rxgate.processor) on each record, its outputs sent, one
                 changelog record per order (the patient's `PatientHistory.to_dict()` as JSON,
                 keyed by patient id) to a compacted topic; acks awaited per batch, then the
                 offsets committed
- `processor`    the same, without the changelog
- `passthrough`  each record's bytes copied to the approved-decisions topic, no checks

Batches are what one `getmany` returns (at most --batch records). Stops on SIGTERM.

    python benchmarks/loops.py MODE --bootstrap HOST:PORT [--group G] [--batch 500]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402,F401  (this checkout's services/ first on sys.path)

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.errors import TopicAlreadyExistsError  # noqa: E402

from rxgate.contract import Decision, TopicSource, to_json  # noqa: E402
from rxgate.stream.config import (APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC,  # noqa: E402
                                  MAX_MESSAGE_BYTES, ORDERS_TOPIC, Settings)
from rxgate.stream.readback import source_header  # noqa: E402

MODES = ("changelog", "processor", "passthrough")
CHANGELOG_TOPIC = "bench-loop-patient-history-changelog"
# the longest the broker may hold a fetch: the worker's default (RXGATE_FETCH_WAIT_MS), so that
# the loops and the worker wait for their input alike (Tansu often holds a fetch until the
# wait runs out: aiokafka's default 500 ms put up to 500 ms into the passthrough's latency)
FETCH_WAIT_MS = round(Settings().fetch_wait * 1000)


class RecordingStore:
    """DictHistoryStore that remembers which patients the last order changed."""

    def __init__(self) -> None:
        self.histories: dict = {}
        self.changed: list[str] = []

    def get(self, patient_id):
        return self.histories.get(patient_id)

    def put(self, patient_id, history) -> None:
        self.histories[patient_id] = history
        self.changed.append(patient_id)


async def ensure_changelog(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if CHANGELOG_TOPIC not in set(await admin.list_topics()):
            try:
                await admin.create_topics([NewTopic(CHANGELOG_TOPIC, partitions, 1,
                                                    topic_configs={"cleanup.policy": "compact"})])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def run(mode: str, bootstrap: str, group: str, batch: int, partitions: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    processor = store = None
    if mode != "passthrough":
        from rxgate.knowledge import load_knowledge
        from rxgate.processor import Processor

        store = RecordingStore()
        processor = Processor(load_knowledge(), store)
    if mode == "changelog":
        await ensure_changelog(bootstrap, partitions)
    consumer = AIOKafkaConsumer(
        ORDERS_TOPIC, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        session_timeout_ms=6000, heartbeat_interval_ms=1000,
        fetch_max_wait_ms=FETCH_WAIT_MS)
    # plain producer: Tansu refuses InitProducerId, so no idempotence; acks from all replicas.
    # Batches of up to 1 MiB per partition, closed after 5 ms: with aiokafka's default 16 KiB
    # (about 14 orders) the passthrough spent 85 % of its time awaiting acks (2,900 -> 11,000
    # records/s on the 2-core machine)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all",
                                max_request_size=MAX_MESSAGE_BYTES, max_batch_size=1024 * 1024,
                                linger_ms=5)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            got = await consumer.getmany(timeout_ms=100, max_records=batch)
            if not got:
                continue
            futures = []
            offsets = {}
            now = dt.datetime.now(dt.timezone.utc)
            for tp, records in got.items():
                for r in records:
                    header = [source_header(tp.topic, tp.partition, r.offset)]
                    if processor is None:
                        futures.append(await producer.send(APPROVED_TOPIC, r.value, key=r.key,
                                                           partition=tp.partition, headers=header))
                        continue
                    key_text = r.key.decode("utf-8", "backslashreplace") if r.key is not None else None
                    store.changed.clear()
                    handled = processor.handle(
                        r.value or b"", TopicSource(topic=tp.topic, partition=tp.partition,
                                                    offset=r.offset, key=key_text), now)
                    for output in handled.outputs:
                        if isinstance(output, Decision):
                            topic = APPROVED_TOPIC if output.outcome == "approved" else FLAGGED_TOPIC
                            key = output.patient_id.encode()
                        else:
                            topic, key = INVALID_TOPIC, r.key
                        futures.append(await producer.send(topic, to_json(output).encode(), key=key,
                                                           partition=tp.partition, headers=header))
                    if mode == "changelog":
                        for pid in store.changed:
                            value = json.dumps(store.histories[pid].to_dict()).encode()
                            futures.append(await producer.send(CHANGELOG_TOPIC, value, key=pid.encode(),
                                                               partition=tp.partition))
                offsets[tp] = records[-1].offset + 1
            await asyncio.gather(*futures)  # the batch's acks, then its offsets
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", default="bench-loop")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args()
    asyncio.run(run(args.mode, args.bootstrap, args.group, args.batch, args.partitions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
