"""A watchdog over the checks of one record: a record whose checks run too long is reported.

The Processor is synchronous: a record whose checks take minutes blocks the event loop, and
with it every partition of the worker, the heartbeat and the broker probe. Nothing on the loop
can notice, so the watchdog runs on a thread of its own. `WatchedProcessor` wraps the
Processor the shell calls and tells the watchdog which record (partition, offset -- never a
patient or order id) is being checked and since when; the thread looks every second and,
once a record has been checked for longer than the bound (`RXGATE_STALL_SECONDS`):

- logs a warning naming the topic, partition and offset, once per record;
- counts it (`rxgate_stalls_total`);
- makes `/readyz` answer 503 naming the record, for as long as the checks go on; when they end
  it logs how long they took and readiness returns.

Publishing a decision while the broker is away is not a stall of this kind: the loop is free
then, `/readyz` reports the broker, and `rxgate_publish_retries_total` counts the attempts.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stall:
    topic: str
    partition: int
    offset: int
    seconds: float

    def describe(self) -> str:
        return (f"the checks of {self.topic}[{self.partition}]@{self.offset} have run for "
                f"{self.seconds:.0f} s")


class StallWatchdog:
    """`begin()`/`end()` from the event loop; a daemon thread compares against the bound.

    on_stall(stall) is called once per record when it passes the bound (on the watchdog's
    thread); on_clear() when that record's checks end.
    """

    def __init__(self, bound: float, on_stall: Callable[[Stall], None] = lambda s: None,
                 on_clear: Callable[[], None] = lambda: None, *, poll: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bound = bound
        self.on_stall = on_stall
        self.on_clear = on_clear
        self.poll = poll if poll is not None else min(1.0, bound / 4)
        self.clock = clock
        self._lock = threading.Lock()
        self._current: tuple[str, int, int, float] | None = None  # topic, partition, offset, t0
        self._reported: tuple[str, int, int, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rxgate-watchdog", daemon=True)

    def start(self) -> "StallWatchdog":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def begin(self, topic: str, partition: int, offset: int) -> None:
        with self._lock:
            self._current = (topic, partition, offset, self.clock())

    def end(self) -> None:
        with self._lock:
            current, self._current = self._current, None
            reported = self._reported is not None and self._reported == current
            if reported:
                self._reported = None
        if reported and current is not None:
            topic, partition, offset, started = current
            log.warning("the checks of %s[%d]@%d ended after %.1f s (over RXGATE_STALL_SECONDS="
                        "%g)", topic, partition, offset, self.clock() - started, self.bound)
            self.on_clear()

    def current(self) -> Stall | None:
        """The record being checked for longer than the bound, if any."""
        with self._lock:
            current = self._current
        if current is None:
            return None
        topic, partition, offset, started = current
        seconds = self.clock() - started
        return Stall(topic, partition, offset, seconds) if seconds > self.bound else None

    def check(self) -> Stall | None:
        """One look (the thread calls it every `poll` seconds): reports a new stall once."""
        stall = self.current()
        if stall is None:
            return None
        with self._lock:
            current = self._current
            if current is None or self._reported == current:
                return stall  # already reported (or just ended)
            self._reported = current
        log.warning("%s, over RXGATE_STALL_SECONDS=%g: every partition of this worker waits "
                    "for it; /readyz answers 503 until they end", stall.describe(), self.bound)
        self.on_stall(stall)
        return stall

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.check()
            except Exception:  # the watchdog itself must not die
                log.exception("the stall watchdog failed to check")


class WatchedProcessor:
    """The Processor, with each `handle()` watched by a StallWatchdog (same interface)."""

    def __init__(self, processor, watchdog: StallWatchdog) -> None:
        self.processor = processor
        self.watchdog = watchdog

    def handle(self, data, origin, now):
        self.watchdog.begin(origin.topic, origin.partition, origin.offset)
        try:
            return self.processor.handle(data, origin, now)
        finally:
            self.watchdog.end()

    def parse(self, data, origin, now):
        self._origin = origin  # apply() comes next, for the same record
        self.watchdog.begin(origin.topic, origin.partition, origin.offset)
        try:
            return self.processor.parse(data, origin, now)
        finally:
            self.watchdog.end()

    def apply(self, event, now):
        origin = self._origin
        self.watchdog.begin(origin.topic, origin.partition, origin.offset)
        try:
            return self.processor.apply(event, now)
        finally:
            self.watchdog.end()

    def __getattr__(self, name: str):
        return getattr(self.processor, name)
