"""What the stream benchmarks share: a fresh embedded broker, the topics, preloading the
workload, the subjects (`rxgate worker`, or a baseline loop from loops.py, each its own
process) and one reader that measures them all alike from the records on the output topics.

Every subject reads `rx.orders.v1` and writes the worker's three output topics, so a run is:
fresh broker -> topics -> preload -> start the subject -> read the outputs until all are there.
Phases: start (spawn to the first output seen) and run (first output to the last); the rate
is the outputs of the run phase over its duration, so start-up (interpreter, knowledge,
group join, the worker's read-back) is excluded.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from rxgate.broker import EmbeddedBroker, die_with_parent  # noqa: E402
from rxgate.stream.config import (INVALID_TOPIC, MAX_MESSAGE_BYTES, ORDERS_TOPIC,  # noqa: E402
                                  OUTPUT_TOPICS)
from rxgate.stream.runner import WorkerProcess  # noqa: E402

from workload import Message  # noqa: E402

BENCH = Path(__file__).resolve().parent
WORKER_GROUP = "rxgate-bench"


async def create_topics(bootstrap: str, partitions: int) -> None:
    """rx.orders.v1 and the three output topics, as the worker would create them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        big = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
        await admin.create_topics([
            NewTopic(t, partitions, 1, topic_configs=big if t in (ORDERS_TOPIC, INVALID_TOPIC) else {})
            for t in (ORDERS_TOPIC, *OUTPUT_TOPICS)])
    finally:
        await admin.close()


async def produce(bootstrap: str, messages: Iterable[Message], topic: str = ORDERS_TOPIC) -> int:
    """Send every message (keyed by patient id: aiokafka's murmur2 puts each patient on its
    canonical partition), acks awaited at the end; returns how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                max_request_size=MAX_MESSAGE_BYTES, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    n = 0
    try:
        pending = []
        for m in messages:
            pending.append(await producer.send(topic, m.value, key=m.key))
            n += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n


def prepare(bootstrap: str, partitions: int, messages: Iterable[Message] = ()) -> float:
    """Topics created and the messages preloaded; returns the seconds the preload took."""
    async def go() -> float:
        await create_topics(bootstrap, partitions)
        t0 = time.perf_counter()
        await produce(bootstrap, messages)
        return time.perf_counter() - t0

    return asyncio.run(go())


# --- subjects --------------------------------------------------------------------------------


class Subject:
    """A process under measurement: start(), pids (for CPU and memory), stop()."""

    name = "?"

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def pids(self) -> list[int]:
        return []


class Worker(Subject):
    """`rxgate worker` (this checkout's) as a child process."""

    def __init__(self, broker: EmbeddedBroker, partitions: int, workdir: Path, index: int = 0,
                 group: str = WORKER_GROUP) -> None:
        self.name = "rxgate worker"
        self.process = WorkerProcess(
            broker.url, group=group, partitions=partitions,
            log_path=workdir / f"worker-{index}.log",
            env={"PYTHONPATH": harness.child_env()["PYTHONPATH"]})

    def start(self) -> None:
        self.process.start()

    def wait_healthy(self, timeout: float = 120.0) -> None:
        self.process.wait_healthy(timeout)

    def metrics_text(self) -> str:
        return self.process.metrics_text()

    def stop(self) -> None:
        self.process.stop(timeout=15)

    @property
    def pids(self) -> list[int]:
        p = self.process.process
        return [p.pid] if p is not None and p.poll() is None else []


class Loop(Subject):
    """A baseline loop from loops.py as a child process."""

    def __init__(self, mode: str, broker: EmbeddedBroker, partitions: int, workdir: Path,
                 batch: int = 500) -> None:
        self.name = {"changelog": "loop + Processor + changelog", "processor": "loop + Processor",
                     "passthrough": "passthrough (no checks)"}[mode]
        self.args = [sys.executable, str(BENCH / "loops.py"), mode, "--bootstrap",
                     broker.bootstrap, "--batch", str(batch), "--partitions", str(partitions)]
        self.log_path = workdir / f"loop-{mode}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, env=harness.child_env(), stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    @property
    def pids(self) -> list[int]:
        p = self.process
        return [p.pid] if p is not None and p.poll() is None else []


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Run:
    """What the reader saw of one subject."""

    name: str
    expected: int
    started: float  # monotonic time the subject was spawned
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, outputs)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds during the run phase
    peak_rss_mb: float | None = None  # the subject's VmHWM at the end (MiB)

    @property
    def final(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    @property
    def complete(self) -> bool:
        return self.final >= self.expected

    @property
    def first(self) -> tuple[float, int]:
        """The first sample with an output."""
        return next(((t, c) for t, c in self.samples if c > 0), (float("nan"), 0))

    @property
    def end(self) -> float:
        """When the outputs stopped growing (the sample that first reached the final count)."""
        return next(t for t, c in self.samples if c >= self.final)

    @property
    def start_seconds(self) -> float:
        return self.first[0] - self.started

    @property
    def run_seconds(self) -> float:
        return self.end - self.first[0]

    @property
    def rate(self) -> float:
        t0, c0 = self.first
        return (self.final - c0) / (self.end - t0) if self.end > t0 else float("nan")

    def rate_between(self, a: float, b: float) -> float:
        """Outputs/s between fractions a and b of the run phase's outputs (0.5, 1.0: the
        second half, after any rebalance at the start)."""
        t0, c0 = self.first
        lo, hi = c0 + a * (self.final - c0), c0 + b * (self.final - c0)
        ta = next(t for t, c in self.samples if c >= lo)
        tb = next(t for t, c in self.samples if c >= hi)
        got_a = next(c for t, c in self.samples if c >= lo)
        got_b = next(c for t, c in self.samples if c >= hi)
        return (got_b - got_a) / (tb - ta) if tb > ta else float("nan")

    def thirds(self) -> tuple[float, float]:
        """Outputs/s over the first and the last third of the run phase's outputs."""
        t0, c0 = self.first
        span = (self.final - c0) / 3
        if span <= 0:
            return float("nan"), float("nan")
        ta = next(t for t, c in self.samples if c >= c0 + span)
        tb = next(t for t, c in self.samples if c >= c0 + 2 * span)
        return (span / (ta - t0) if ta > t0 else float("nan"),
                span / (self.end - tb) if self.end > tb else float("nan"))

    def cpu_percent(self, who: str) -> float:
        return 100 * self.cpu.get(who, float("nan")) / self.run_seconds if self.run_seconds else float("nan")


def measure(subjects: list[Subject], broker: EmbeddedBroker, partitions: int, expected: int,
            name: str | None = None, stall: float = 60.0, poll: float = 0.1,
            on_record=None, on_sample=None) -> Run:
    """Start the subjects, read the output topics until `expected` outputs are there (or
    nothing moved for `stall` seconds), stop them; the Run observed.

    The outputs are read, not counted from end offsets: Tansu's ListOffsets(latest) lags (it
    answered 2,415 for 3,000 records on the disk). `on_record(record, now)` sees each one,
    `on_sample(run, subjects)` each sample."""
    async def go() -> Run:
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                                    fetch_max_wait_ms=20)  # the reader adds little latency
        await consumer.start()
        tps = [TopicPartition(t, p) for t in OUTPUT_TOPICS for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        run = Run(name or subjects[0].name, expected, time.monotonic())
        for s in subjects:
            s.start()
        cpu_first: dict[str, float] = {}
        cpu_last: dict[str, float] = {}
        count = 0
        last_change = time.monotonic()
        try:
            while True:
                got = await consumer.getmany(timeout_ms=int(poll * 1000))
                now = time.monotonic()
                new = 0
                for records in got.values():
                    new += len(records)
                    if on_record is not None:
                        for record in records:
                            on_record(record, now)
                if new:
                    count += new
                    last_change = now
                    cpu_last = _cpu(subjects, broker)
                    if not cpu_first:
                        cpu_first = cpu_last
                run.samples.append((now, count))
                if on_sample is not None:
                    on_sample(run, subjects)
                if count >= expected:
                    break
                if now - last_change > stall and (count > 0 or now - run.started > 4 * stall):
                    break
                if not any(s.pids for s in subjects):
                    break  # every subject exited
            run.cpu = {k: cpu_last[k] - cpu_first.get(k, 0.0) for k in cpu_last}
            rss = [harness.proc_status_mb(pid, "VmHWM") for s in subjects for pid in s.pids]
            run.peak_rss_mb = max((r for r in rss if r is not None), default=None)
        finally:
            await consumer.stop()
            for s in subjects:
                s.stop()
        return run

    return asyncio.run(go())


def _cpu(subjects: list[Subject], broker: EmbeddedBroker) -> dict[str, float]:
    out = {"subject": sum(harness.cpu_seconds(pid) or 0.0 for s in subjects for pid in s.pids)}
    if broker.process is not None:
        out["broker"] = harness.cpu_seconds(broker.process.pid) or 0.0
    return out


def fresh_broker(workdir: Path) -> EmbeddedBroker:
    return EmbeddedBroker(log_path=workdir / f"tansu-{time.monotonic_ns()}.log").start()


def workdir(prefix: str = "rxgate-bench-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
