"""The worker's consumer hands the input topics' records of a fetch straight to the batches
(rxgate.stream.consumer), without a broker: faust's consumer with its fetch replaced.

It must hand over only what faust itself would deliver: nothing while the flow is stopped (a
rebalance), of an older generation, or of a paused partition (a table recovery), and leave
every other topic's records to faust. The broker-backed tests (test_restart.py,
test_chaos.py, test_worker.py) run it in a real worker."""
from __future__ import annotations

import asyncio

import faust
from aiokafka.structs import ConsumerRecord, TopicPartition

from rxgate.stream import consumer
from rxgate.stream.batches import Batches

INPUTS = ("in", "in-repartition")
OTHER = TopicPartition("app-table-changelog", 0)


def records(topic: str, partition: int, offsets: range) -> list[ConsumerRecord]:
    return [ConsumerRecord(topic, partition, o, 0, 0, b"k%d" % o, b"v%d" % o, None, 2, 2, ())
            for o in offsets]


def worker_consumer(batches: Batches, fetched: dict, active=None):
    """faust's consumer as the worker installs it, `fetched` what its next fetch returns;
    flow on, flow control resumed, every fetched partition active unless `active` says."""
    app = faust.App("consumer-tests", broker="kafka://127.0.0.1:1", store="memory://",
                    autodiscover=False, web_enabled=False)
    consumer.install(app, 0.05, INPUTS, batches)
    c = app.consumer

    async def getmany(active_partitions, timeout):
        return dict(fetched)

    c._getmany = getmany
    c._set_active_tps(set(fetched) if active is None else active)
    app.flow_control.resume()
    return app, c


def offsets(batch) -> list[tuple[str, int, int]]:
    return [(r.topic, r.partition, r.offset) for r in batch]


def test_a_fetch_s_input_records_go_to_the_batches_in_order_and_the_rest_to_faust():
    async def run():
        batches = Batches(max_records=4, wait=0.0)
        fetched = {TopicPartition("in", 1): records("in", 1, range(10, 16)),
                   OTHER: records(OTHER.topic, 0, range(3)),
                   TopicPartition("in-repartition", 1): records("in-repartition", 1, range(2))}
        _, c = worker_consumer(batches, fetched)
        fetch = asyncio.ensure_future(c._wait_next_records(1.0))
        await asyncio.sleep(0.01)
        assert not fetch.done() and len(batches) == 4  # full: the rest waits for room
        got = [await batches.next() for _ in range(2)]
        left_to_faust, _ = await asyncio.wait_for(fetch, 5)
        assert len(batches) == 0
        return got, left_to_faust

    got, left_to_faust = asyncio.run(run())
    handed = [o for b in got for o in offsets(b)]
    assert handed == ([("in", 1, o) for o in range(10, 16)]
                      + [("in-repartition", 1, o) for o in range(2)])
    assert got[0][0].key == b"k10" and got[0][0].value == b"v10" and got[0][0].headers == ()
    assert list(left_to_faust) == [OTHER] and len(left_to_faust[OTHER]) == 3


def test_records_of_a_paused_partition_are_not_handed_over():
    # faust pauses the input partitions while it recovers the tables: a record decided then
    # would meet a history not yet recovered
    async def run():
        batches = Batches(max_records=100, wait=0.0)
        paused, active = TopicPartition("in", 0), TopicPartition("in", 1)
        fetched = {paused: records("in", 0, range(3)), active: records("in", 1, range(3))}
        _, c = worker_consumer(batches, fetched, active={active})
        await asyncio.wait_for(c._wait_next_records(1.0), 5)
        return await batches.next()

    assert offsets(asyncio.run(run())) == [("in", 1, o) for o in range(3)]


def test_a_rebalance_while_the_batches_are_full_drops_the_rest_of_the_fetch():
    async def run():
        batches = Batches(max_records=2, wait=0.0)
        fetched = {TopicPartition("in", 0): records("in", 0, range(6))}
        _, c = worker_consumer(batches, fetched)
        fetch = asyncio.ensure_future(c._wait_next_records(1.0))
        await asyncio.sleep(0.01)
        assert len(batches) == 2 and not fetch.done()
        c.stop_flow()  # a rebalance starts ...
        await asyncio.wait_for(fetch, 5)  # ... the hand-over gives up waiting for room
        dropped = batches.clear()  # what the app does on revocation
        c.resume_flow()
        await asyncio.sleep(0.01)
        return dropped, len(batches)

    assert asyncio.run(run()) == (2, 0)


def test_records_fetched_before_a_recovery_wait_for_the_flow_and_are_dropped_if_paused():
    # on start faust's flow control stays suspended until the tables are recovered (or are
    # being recovered, with the input partitions paused)
    async def run():
        batches = Batches(max_records=100, wait=0.0)
        tp = TopicPartition("in", 0)
        app, c = worker_consumer(batches, {tp: records("in", 0, range(3))})
        app.flow_control.suspend()
        fetch = asyncio.ensure_future(c._wait_next_records(1.0))
        await asyncio.sleep(0.01)
        assert not fetch.done() and len(batches) == 0
        c.pause_partitions({tp})
        app.flow_control.resume()  # reading the changelogs
        await asyncio.wait_for(fetch, 5)
        return len(batches)

    assert asyncio.run(run()) == 0


def test_records_of_an_older_generation_are_not_handed_over():
    async def run():
        batches = Batches(max_records=2, wait=0.0)
        app, c = worker_consumer(batches, {TopicPartition("in", 0): records("in", 0, range(4))})
        fetch = asyncio.ensure_future(c._wait_next_records(1.0))
        await asyncio.sleep(0.01)
        app.consumer_generation_id += 1  # a rebalance came and went meanwhile
        first = await batches.next()
        await asyncio.wait_for(fetch, 5)
        return offsets(first), len(batches)

    assert asyncio.run(run()) == ([("in", 0, 0), ("in", 0, 1)], 0)


def test_batches_take_a_hand_over_at_once_and_clear_drops_it():
    async def run():
        batches: Batches[int] = Batches(max_records=3, wait=0.0)
        batches.extend(range(5))  # a hand-over is queued whole
        first = await batches.next()
        assert len(batches) == 2 and batches.has_room()
        second = await batches.next()
        batches.extend(range(7))
        assert batches.clear() == 7 and batches.has_room()
        batches.extend([9])
        return first, second, await batches.next()

    assert asyncio.run(run()) == ([0, 1, 2], [3, 4], [9])
