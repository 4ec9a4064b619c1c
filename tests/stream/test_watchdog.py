"""The stall watchdog on a real thread, a Processor call that really blocks, and the real
HTTP endpoints: the stall is logged with partition and offset, counted, and /readyz says so."""
from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

from rxgate.contract import TopicSource
from rxgate.stream.health import Health
from rxgate.stream.metrics import Metrics, MetricsServer
from rxgate.stream.watchdog import StallWatchdog, WatchedProcessor


class BlockingProcessor:
    """Stands in for a Processor whose checks block the calling thread until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def handle(self, data, origin, now):
        self.calls += 1
        if data == b"slow":
            assert self.release.wait(30), "never released"
        return "handled"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def served():
    metrics = Metrics(stall_seconds=0.5)
    watchdog = StallWatchdog(0.5, on_stall=lambda s: metrics.stalls.inc(), poll=0.05).start()
    metrics.health.stall = watchdog.current
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    yield metrics, watchdog, f"http://127.0.0.1:{server.port}"
    server.stop()
    watchdog.stop()


def origin(partition: int, offset: int) -> TopicSource:
    return TopicSource(topic="rx.orders.v1", partition=partition, offset=offset,
                       key="P-SECRET-PATIENT")


def test_a_blocked_record_is_logged_counted_and_makes_readyz_fail(served, caplog):
    metrics, watchdog, base = served
    metrics.healthy.set()
    metrics.health.broker_reached()
    assert get(base + "/readyz") == (200, "ok\n")
    processor = WatchedProcessor(BlockingProcessor(), watchdog)
    caplog.set_level(logging.INFO)

    done = threading.Thread(target=processor.handle, args=(b"slow", origin(2, 7), None))
    done.start()  # the checks block this thread as they would block the event loop
    try:
        wait_until(lambda: get(base + "/readyz")[0] == 503)
        status, body = get(base + "/readyz")
        assert "stalled: the checks of rx.orders.v1[2]@7 have run for" in body
        wait_until(lambda: metrics.registry.get_sample_value("rxgate_stalls_total") == 1)
        time.sleep(0.3)  # still the same stall: counted once
        assert metrics.registry.get_sample_value("rxgate_stalls_total") == 1
        assert get(base + "/livez")[0] == 200  # the event loop is another matter (heartbeat)
    finally:
        processor.processor.release.set()
        done.join(10)
    wait_until(lambda: get(base + "/readyz") == (200, "ok\n"))
    messages = [r.getMessage() for r in caplog.records if r.name == "rxgate.stream.watchdog"]
    assert any("rx.orders.v1[2]@7" in m and "RXGATE_STALL_SECONDS=0.5" in m
               for m in messages), messages
    assert any("ended after" in m for m in messages), messages
    assert not any("P-SECRET-PATIENT" in r.getMessage() for r in caplog.records)
    assert "P-SECRET-PATIENT" not in metrics.render().decode()


def test_quick_records_are_not_stalls(served):
    metrics, watchdog, base = served
    processor = WatchedProcessor(BlockingProcessor(), watchdog)
    for offset in range(50):
        assert processor.handle(b"quick", origin(0, offset), None) == "handled"
    time.sleep(0.7)
    assert watchdog.current() is None
    assert metrics.registry.get_sample_value("rxgate_stalls_total") == 0


def test_a_second_stall_is_counted_again(served):
    metrics, watchdog, _ = served
    for offset in (1, 2):
        processor = WatchedProcessor(BlockingProcessor(), watchdog)
        processor.processor.release.clear()
        t = threading.Thread(target=processor.handle, args=(b"slow", origin(1, offset), None))
        t.start()
        wait_until(lambda: metrics.registry.get_sample_value("rxgate_stalls_total") == offset)
        processor.processor.release.set()
        t.join(10)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_livez_fails_when_the_event_loop_stops_beating():
    clock = Clock()
    health = Health(threading.Event(), stall_seconds=30, clock=clock)
    assert health.live() == (True, "ok: the event loop ran 0.0 s ago")
    clock.now = 59
    assert health.live()[0]
    clock.now = 61
    live, why = health.live()
    assert not live and "has not run for 61 s" in why
    health.beat()
    assert health.live()[0]


def test_readyz_reasons():
    clock = Clock()
    consuming = threading.Event()
    health = Health(consuming, stall_seconds=30, clock=clock)
    ready, reasons = health.ready()
    assert not ready and reasons[0].startswith("not consuming")
    assert "broker not reached (never)" in reasons[1]
    consuming.set()
    health.broker_reached()
    assert health.ready() == (True, [])
    clock.now = 11  # no successful probe for 11 s
    health.broker_failed("no answer within 5 s")
    assert health.ready() == (False, ["broker not reached (not for 11 s): no answer within 5 s"])
    health.broker_reached()
    health.progress(waiting=40, advanced=False)  # records wait...
    clock.now = 40
    health.broker_reached()
    assert health.ready()[0]  # ...not for long yet
    clock.now = 42
    health.broker_reached()
    ready, reasons = health.ready()
    assert not ready and reasons == ["no progress: 40 record(s) wait and none was handled "
                                     "for 31 s"]  # since the probe at 11 s
    health.progress(waiting=39, advanced=True)
    assert health.ready()[0]
    health.progress(waiting=0, advanced=False)  # nothing to do is not being stuck
    clock.now = 100
    health.broker_reached()
    assert health.ready()[0]
