"""What the worker tells an orchestrator: /livez, /readyz (and /healthz), consumer lag.

    /livez    200 while the process is responsive: the event loop ran within the last
              2 x RXGATE_STALL_SECONDS (a heartbeat it sets every second). 503 means restart me.
    /readyz   200 when all of these hold, else 503 with one reason per line:
              - consuming: the group's partitions are assigned (not starting, not mid-rebalance,
                not stopping);
              - the broker is reachable: a probe from the event loop (list the input's end
                offsets, every 3 s, 5 s timeout) succeeded within the last 10 s;
              - decisions progress or there is nothing to do: records wait (lag > 0) only if
                some were handled within the last RXGATE_STALL_SECONDS;
              - no record's checks have run longer than RXGATE_STALL_SECONDS (watchdog.py).
    /healthz  the same as /readyz (kept for existing probes).

So readiness goes false within about 10 s of losing the broker, and returns with the first
probe that reaches it again. Losing the broker is logged once (a warning) and its return once
(with how long it was gone); the clients' own repeated errors are summarised by
`rxgate.log_repeats`.

The probe also sets `rxgate_consumer_lag{topic,partition}` for the partitions assigned to this
worker: the input's end offset minus the next offset the worker handles (its own position, or
the group's committed offset before it handled anything). No patient or order id in labels.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 1.0  # seconds between the event loop's heartbeats
PROBE_INTERVAL = 3.0  # seconds between broker probes
PROBE_TIMEOUT = 5.0  # a probe that takes longer fails
BROKER_GRACE = 10.0  # not ready when no probe succeeded for this long


class Health:
    """Thread-safe state behind the endpoints: set from the loop, the watchdog and the probe,
    read from the HTTP server's threads."""

    def __init__(self, consuming: threading.Event, stall_seconds: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.consuming = consuming
        self.stall_seconds = stall_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._beat = clock()
        self._broker_ok_at: float | None = None
        self._broker_error: str | None = None
        self._waiting_since: float | None = None  # records wait and none was handled since
        self._waiting: int = 0
        self.stall: Callable[[], object | None] = lambda: None  # the watchdog's current()

    # --- set from the event loop ---------------------------------------------------------
    def beat(self) -> None:
        with self._lock:
            self._beat = self.clock()

    def broker_reached(self) -> None:
        with self._lock:
            self._broker_ok_at = self.clock()
            self._broker_error = None

    def broker_failed(self, error: str) -> None:
        with self._lock:
            self._broker_error = error

    def progress(self, waiting: int, advanced: bool) -> None:
        """After a probe: `waiting` records are not handled yet; `advanced` when the worker
        handled some since the previous probe."""
        with self._lock:
            self._waiting = waiting
            if waiting <= 0 or advanced:
                self._waiting_since = None
            elif self._waiting_since is None:
                self._waiting_since = self.clock()

    # --- read by the HTTP server -----------------------------------------------------------
    def live(self) -> tuple[bool, str]:
        with self._lock:
            quiet = self.clock() - self._beat
        bound = 2 * self.stall_seconds
        if quiet > bound:
            return False, (f"the event loop has not run for {quiet:.0f} s (bound {bound:g} s, "
                           "2 x RXGATE_STALL_SECONDS)")
        return True, f"ok: the event loop ran {quiet:.1f} s ago"

    def ready(self) -> tuple[bool, list[str]]:
        reasons: list[str] = []
        now = self.clock()
        if not self.consuming.is_set():
            reasons.append("not consuming: starting, rebalancing or stopping")
        with self._lock:
            ok_at, error = self._broker_ok_at, self._broker_error
            waiting_since, waiting = self._waiting_since, self._waiting
        if ok_at is None or now - ok_at > BROKER_GRACE:
            since = "never" if ok_at is None else f"not for {now - ok_at:.0f} s"
            reasons.append(f"broker not reached ({since})" + (f": {error}" if error else ""))
        if waiting_since is not None and now - waiting_since > self.stall_seconds:
            reasons.append(f"no progress: {waiting} record(s) wait and none was handled for "
                           f"{now - waiting_since:.0f} s")
        stall = self.stall()
        if stall is not None:
            reasons.append(f"stalled: {stall.describe()}")  # type: ignore[attr-defined]
        return not reasons, reasons


class BrokerProbe:
    """From the event loop, every PROBE_INTERVAL: can the broker be reached, and how far
    behind are this worker's partitions?

    assigned:  () -> input partitions assigned to this worker
    positions: () -> {partition: next offset to handle} (the shell's)
    committed: partition -> awaits the group's committed offset or None
    """

    def __init__(self, health: Health, lag_gauge, bootstrap_servers: list[str], topic: str,
                 partitions: int, assigned: Callable[[], Iterable[int]],
                 positions: Callable[[], dict[int, int]],
                 committed: Callable[[int], Awaitable[int | None]],
                 client_kwargs: dict | None = None) -> None:
        self.health = health
        self.lag_gauge = lag_gauge
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.assigned = assigned
        self.positions = positions
        self.committed = committed
        self.client_kwargs = client_kwargs or {}
        self._consumer = None
        self._down_since: float | None = None
        self._last_positions: dict[int, int] = {}
        self._labelled: set[int] = set()
        self._highwater: dict[int, int] = {}  # partition -> the log end, as last seen

    async def run_once(self) -> None:
        try:
            ends, begins = await asyncio.wait_for(self._offsets(), PROBE_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            error = ("no answer within " f"{PROBE_TIMEOUT:g} s" if isinstance(
                e, asyncio.TimeoutError) else repr(e))
            self.health.broker_failed(error)
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("the broker at %s cannot be reached (%s); /readyz answers 503 "
                            "until it can", ",".join(self.bootstrap_servers), error)
            if isinstance(e, asyncio.TimeoutError):
                await self._reset()  # start afresh: a client stuck mid-request helps nobody
            return
        self.health.broker_reached()
        if self._down_since is not None:
            log.warning("the broker answers again, after %.0f s", time.monotonic() -
                        self._down_since)
            self._down_since = None
        await self._update_lag(ends, begins)

    async def _offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers,
                                        group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="latest", client_id="rxgate-health",
                                        request_timeout_ms=int(PROBE_TIMEOUT * 1000),
                                        fetch_max_wait_ms=200, **self.client_kwargs)
            try:
                await consumer.start()
                consumer.assign(tps)
                consumer.pause(*tps)  # fetched only during a probe
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
        consumer = self._consumer
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        # Tansu answers ListOffsets(latest) below the true log end; a fetch's high watermark
        # is right there. Fetch the last known record of each partition to learn it.
        for tp in tps:
            known = max(ends[tp], self._highwater.get(tp.partition, 0))
            consumer.seek(tp, max(known - 1, begins[tp]))
        consumer.resume(*tps)
        try:
            await consumer.getmany(*tps, timeout_ms=1000)
        finally:
            consumer.pause(*tps)
        for tp in tps:
            self._highwater[tp.partition] = max(ends[tp], consumer.highwater(tp) or 0,
                                                self._highwater.get(tp.partition, 0))
        return dict(self._highwater), {tp.partition: o for tp, o in begins.items()}

    async def _update_lag(self, ends: dict[int, int], begins: dict[int, int]) -> None:
        assigned = set(self.assigned())
        positions = self.positions()
        waiting = 0
        for partition in sorted(assigned):
            position = positions.get(partition)
            if position is None:
                try:
                    position = await asyncio.wait_for(self.committed(partition), PROBE_TIMEOUT)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    position = None
                if position is None:
                    position = begins.get(partition, 0)
            lag = max(0, ends.get(partition, 0) - position)
            waiting += lag
            self.lag_gauge.labels(self.topic, str(partition)).set(lag)
        for partition in self._labelled - assigned:  # revoked: its lag is another's to tell
            try:
                self.lag_gauge.remove(self.topic, str(partition))
            except KeyError:
                pass
        self._labelled = assigned
        advanced = any(positions.get(p, -1) > self._last_positions.get(p, -1)
                       for p in positions)
        self._last_positions = positions
        self.health.progress(waiting, advanced)

    async def _reset(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 2.0)
            except Exception:
                pass

    async def stop(self) -> None:
        await self._reset()


STOP_GRACE = 7.0  # seconds from the start of a stop to a forced exit


def start_stop_guard(grace: float = STOP_GRACE) -> threading.Timer:
    """Called when a stop begins: exit the process after `grace` seconds if it is still
    stopping.

    A clean stop waits for the consumer to leave the group, the producer's flush and the last
    commit; with the broker gone each waits for its own timeout, and orchestrators wait only
    so long (Kubernetes: terminationGracePeriodSeconds) before SIGKILL. Nothing is lost by
    exiting: uncommitted inputs are re-read by the partition's next owner, and the read-back
    keeps it from publishing their outputs twice."""
    import os

    def force_exit() -> None:
        log.error("stopping took longer than %g s (is the broker unreachable?); exiting "
                  "without a clean stop: the next owner re-reads from the committed offsets",
                  grace)
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                pass
        os._exit(1)

    timer = threading.Timer(grace, force_exit)
    timer.daemon = True
    timer.start()
    return timer


def install(app, settings, metrics, shell, group_offsets, watchdog, topic: str) -> BrokerProbe:
    """Wire the heartbeat, the broker probe and the watchdog into the app."""

    health = metrics.health
    health.stall = watchdog.current
    probe = BrokerProbe(
        health, metrics.consumer_lag, settings.bootstrap_servers, topic, settings.partitions,
        assigned=lambda: [tp.partition for tp in app.consumer.assignment() if tp.topic == topic],
        # the shell keys positions by (topic, partition): rx.orders.v1 and the repartition topic
        positions=lambda: {p: o for (t, p), o in shell.positions().items() if t == topic},
        committed=lambda partition: group_offsets.committed(topic, partition),
        client_kwargs=settings.kafka.client_kwargs())

    # The heartbeat is a plain callback on the loop, not a faust timer: faust starts its
    # timers and tasks only once table recovery completes, which may take minutes, and the
    # loop is responsive all that while.
    loop = asyncio.get_event_loop()

    def heartbeat() -> None:
        health.beat()
        loop.call_later(HEARTBEAT_INTERVAL, heartbeat)

    loop.call_soon(heartbeat)

    @app.task
    async def probe_broker() -> None:
        while True:  # not a timer: a probe may take PROBE_TIMEOUT, longer than the interval
            try:
                await probe.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug here must not stop the worker; readiness lapses
                log.warning("the health probe failed (%r)", e)
            await asyncio.sleep(PROBE_INTERVAL)

    @app.on_partitions_revoked.connect
    async def rebalancing(*args, **kwargs) -> None:
        metrics.healthy.clear()  # ready again when the rebalance completes

    @app.on_before_shutdown.connect
    async def stopping(*args, **kwargs) -> None:
        metrics.healthy.clear()
        watchdog.stop()
        try:
            await asyncio.wait_for(probe.stop(), 2.0)
        except Exception:
            pass

    return probe
