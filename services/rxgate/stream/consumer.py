"""The worker's Kafka consumer: faust's aiokafka consumer (group membership, rebalances, table
recovery, its fetcher thread), with two changes, installed by `install`.

**The input topics' records skip faust's per-record path.** faust hands each fetched record,
one at a time, to its conductor (`Consumer._drain_messages`: per record an await on the
callback raced against the suspended flow, four tasks; then the channel's decoding into an
event, its queue, the agent's stream), which cost the worker about a quarter of its CPU. The
worker needs none of it for `rx.orders.v1` and the repartition topic: it takes raw bytes and
tracks and commits their offsets itself (commits.py). So the records of those topics are taken
out of each fetch (`_wait_next_records`, which faust's `getmany` calls) and handed to the
batches (batches.py) a fetch at a time, as `InputRecord`s; the rest of the fetch (a table's
changelog during recovery) goes on through faust unchanged. The agent over the input topics
stays: faust subscribes them because of it, and co-partitions and assigns them together.

A partition's records are handed over only while faust would deliver them itself, checked as
they are queued (after any wait for room in the batches, the back-pressure):

- the flow is on (faust stops it when a rebalance starts, and its flow control is resumed
  only once the tables are recovered or being recovered);
- the consumer generation is the one they were fetched in;
- the partition is active, not paused (faust pauses the input partitions while it recovers
  the tables: no record is decided before its patients' histories are recovered).

What is not handed over is dropped, as faust drops it: the partitions resume from the
committed offsets after the rebalance or recovery (faust seeks there), and the shell reads
anything it did not get from the topic (shell.py). On revocation the app also clears what
the batches hold (app.py), and the shell leaves alone any record of a partition it no longer
owns (its epochs): records of revoked partitions are never handled after the revocation.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Collection, Sequence

import faust
from faust.transport.drivers import aiokafka as driver

from .batches import Batches
from .shell import InputRecord

log = logging.getLogger(__name__)


def install(app: faust.App, fetch_wait: float, inputs: Collection[str],
            batches: Batches[InputRecord]) -> None:
    """Make `app` create its consumer with the bounded fetch wait, handing the records of the
    `inputs` topics to `batches`."""
    inputs = frozenset(inputs)
    thread = _bounded_fetch_wait(fetch_wait)

    class Consumer(driver.Consumer):
        def _new_consumer_thread(self):
            return thread(self, loop=self.loop, beacon=self.beacon)

        async def _wait_next_records(self, timeout: float):
            records, active = await super()._wait_next_records(timeout)
            if records:
                mine = [tp for tp in records if tp.topic in inputs]
                if mine:
                    records = dict(records)
                    await self._hand_over([(tp, records.pop(tp)) for tp in mine])
            return records, active

        async def _hand_over(self, fetched: list[tuple[Any, Sequence[Any]]]) -> None:
            """The input partitions' records of one fetch, to the batches, while faust would
            deliver them (module docstring); the rest of them is dropped."""
            generation = self.app.consumer_generation_id
            size = batches.max_records
            for tp, records in fetched:
                for start in range(0, len(records), size):
                    if not await self._admitted(generation):
                        return  # a rebalance, or stopping: read again from the committed offsets
                    if tp not in self._get_active_partitions():
                        break  # paused (a recovery): resumed from the committed offset
                    read_at = time.monotonic()  # taken in (rxgate_decision_seconds starts)
                    batches.extend([InputRecord(r.topic, r.partition, r.offset, r.key, r.value,
                                                r.headers, read_at)
                                    for r in records[start:start + size]])

        async def _admitted(self, generation: int) -> bool:
            """Wait for room in the batches and for faust's flow control, as faust's drain
            waits for its conductor; False: the flow stopped or the generation changed."""
            flow_control = self.app.flow_control
            while True:
                if (self.should_stop or not self.flow_active
                        or self.app.consumer_generation_id != generation):
                    return False
                if not flow_control.is_active():
                    await self.wait_first(flow_control.acquire(), self.suspend_flow)
                elif not batches.has_room():
                    await self.wait_first(batches.room(), self.suspend_flow)
                else:
                    return True

    app.transport.Consumer = Consumer


def _bounded_fetch_wait(seconds: float) -> type:
    """faust creates its consumer with `fetch_max_wait_ms=1500`, not a setting. A broker that
    holds a fetch until that runs out although records have arrived (the embedded Tansu often
    does) then delays records by up to 1.5 s, and at a steady rate the worker sees its input in
    bursts: produce-to-decision 1.4 s at the median with 500 orders/s offered. So the
    worker's consumer asks for `RXGATE_FETCH_WAIT_MS` instead (Kafka answers a fetch as soon
    as a record is there either way: a shorter wait costs only more empty fetches when idle).
    Returns the consumer thread class that does so.
    """
    wait_ms = max(1, round(seconds * 1000))

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport):
            consumer = super()._create_worker_consumer(transport)
            if hasattr(consumer, "_fetch_max_wait_ms"):  # read when the consumer starts
                consumer._fetch_max_wait_ms = wait_ms
            else:  # another aiokafka: faust's wait stays
                log.warning("cannot set the consumer's fetch wait (RXGATE_FETCH_WAIT_MS) on "
                            "this aiokafka; faust's 1,500 ms stays")
            return consumer

    return ConsumerThread
