"""Honest health: /livez, /readyz and lag while the broker goes away and comes back.

The worker reaches Tansu through a plain TCP proxy (socat) whose port Tansu advertises, so
stopping the proxy takes the broker away from the worker -- every connection drops, new ones
are refused -- while Tansu keeps its in-memory topics, and starting the proxy again on the
same port brings it back.
"""
from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, Gauge

from rxgate.broker import EmbeddedBroker, free_port
from rxgate.stream.config import ORDERS_TOPIC, Settings
from rxgate.stream.health import BrokerProbe, Health
from rxgate.stream.runner import WorkerProcess
from rxgate.stream.topics import ensure_topics

from .kafka import decisions_by_event, publish, read_outputs
from .orders import T0, new_patient_id, placed, wire
from .proxy import Proxy

pytestmark = pytest.mark.broker


def get(url: str) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return None, repr(e)


def wait_status(url: str, status: int, timeout: float) -> float:
    """Seconds until `url` answered `status`."""
    start = time.monotonic()
    while get(url)[0] != status:
        assert time.monotonic() - start < timeout, \
            f"{url} did not answer {status} within {timeout:.0f} s: {get(url)}"
        time.sleep(0.25)
    return time.monotonic() - start


def live_and_beating(base: str) -> bool:
    """/livez answers 200 and the event loop's heartbeat is fresh (not just the grace)."""
    status, body = get(base + "/livez")
    ago = re.fullmatch(r"ok: the event loop ran (\S+) s ago\n", body)
    return status == 200 and ago is not None and float(ago.group(1)) < 5


def lags(worker: WorkerProcess) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^rxgate_consumer_lag\{partition="(\d+)",topic="rx.orders.v1"\} (\S+)$',
        worker.metrics_text(), re.MULTILINE)}


def decide(bootstrap: str, n: int) -> None:
    events = [placed(new_patient_id(), f"O-{i}", T0) for i in range(n)]
    publish(bootstrap, [wire(e) for e in events])
    wanted = {e["event_id"] for e in events}
    read_outputs(bootstrap, until=lambda outs: wanted <= set(decisions_by_event(outs)),
                 timeout=120)


@pytest.fixture
def proxied(tmp_path):
    """(the Tansu broker, the proxy in front of it, the proxy's bootstrap address)."""
    port = free_port()
    with EmbeddedBroker(log_path=tmp_path / "tansu.log", advertised_port=port) as broker:
        proxy = Proxy(port, broker.port, log_path=tmp_path / "socat.log").start()
        try:
            yield broker, proxy, f"127.0.0.1:{port}"
        finally:
            proxy.stop()


def test_readiness_follows_the_broker_and_sigterm_stops_within_10_s(proxied, tmp_path):
    broker, proxy, bootstrap = proxied
    log_path = tmp_path / "worker.log"
    with WorkerProcess(f"kafka://{bootstrap}", group="rxgate-health", log_path=log_path,
                       env={"RXGATE_LOG_LEVEL": "info"}) as worker:
        base = worker.health_url.rsplit("/", 1)[0]
        worker.wait_healthy(180)
        wait_status(base + "/readyz", 200, 30)
        assert live_and_beating(base)

        decide(bootstrap, 12)
        deadline = time.monotonic() + 60  # every partition reported, all caught up
        while not (set(lags(worker)) == {"0", "1", "2", "3"}
                   and not any(lags(worker).values())):
            assert time.monotonic() < deadline, lags(worker)
            time.sleep(0.5)

        # the broker goes away: not ready within 15 s, still alive
        proxy.stop()
        outage_starts = len(log_path.read_text().splitlines())
        took = wait_status(base + "/readyz", 503, 15)
        status, body = get(base + "/readyz")
        assert status == 503 and "broker not reached" in body, body
        assert live_and_beating(base)  # a broker outage is no reason to restart
        assert get(worker.health_url)[0] == 503  # /healthz is /readyz
        time.sleep(max(0.0, 20 - took))

        # the log said so once and did not flood: no message more than 3 times in 20 s
        during = log_path.read_text().splitlines()[outage_starts:]
        # text log lines: "2026-11-25 20:17:50,071 LEVEL logger: message" (rxgate.logs)
        messages = Counter(re.sub(r"^\d{4}-\d\d-\d\d [\d:,]+ ", "", line) for line in during
                           if re.match(r"\d{4}-\d\d-\d\d ", line))
        assert sum("cannot be reached" in m for m in messages) == 1, during
        flood = {m: n for m, n in messages.items() if n > 3}
        assert not flood, flood
        assert len(during) < 100, len(during)

        # it comes back: ready again, and deciding
        proxy.start()
        wait_status(base + "/readyz", 200, 120)
        assert "the broker answers again" in log_path.read_text()
        decide(bootstrap, 4)

        # gone again, then SIGTERM: stopped within 10 s all the same
        proxy.stop()
        wait_status(base + "/readyz", 503, 15)
        started = time.monotonic()
        worker.stop(timeout=30)
        stopped_in = time.monotonic() - started
        assert stopped_in < 10, f"took {stopped_in:.1f} s\n{worker.log_tail()}"


def test_the_lag_gauge_counts_what_waits_per_assigned_partition(fresh_broker):
    broker = fresh_broker
    asyncio.run(ensure_topics(Settings(broker=broker.url)))
    sent = publish(broker.bootstrap, [(f"lag-{i}".encode(), b"{}") for i in range(40)])
    ends: dict[int, int] = {}
    for partition, offset in sent:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    registry = CollectorRegistry()
    gauge = Gauge("rxgate_consumer_lag", "lag", ["topic", "partition"], registry=registry)
    health = Health(threading.Event(), stall_seconds=30)
    partitions = sorted(ends)
    handled = {partitions[0]: ends[partitions[0]] - 3}  # three records wait there
    assigned = {partitions[0], partitions[1]}

    async def committed(partition: int) -> int | None:
        return ends[partition] - 5 if partition == partitions[1] else None

    probe = BrokerProbe(health, gauge, [broker.bootstrap], ORDERS_TOPIC, 4,
                        assigned=lambda: assigned, positions=lambda: dict(handled),
                        committed=committed)

    async def run() -> None:
        try:
            await probe.run_once()
            value = lambda p: registry.get_sample_value(  # noqa: E731
                "rxgate_consumer_lag", {"topic": ORDERS_TOPIC, "partition": str(p)})
            assert value(partitions[0]) == 3
            assert value(partitions[1]) == 5  # from the group's committed offset
            assert value(partitions[2]) is None  # not ours
            assert health.ready()[1] == ["not consuming: starting, rebalancing or stopping"]
            assigned.discard(partitions[1])  # revoked: its series goes
            await probe.run_once()
            assert value(partitions[1]) is None and value(partitions[0]) == 3
        finally:
            await probe.stop()

    asyncio.run(run())
