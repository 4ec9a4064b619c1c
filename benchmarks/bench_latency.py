"""Produce-to-decision latency at a fixed offered rate: `rxgate worker` against a plain
passthrough on the same broker, in one run.

For each subject (fresh broker, topics created, the subject started and warmed up: its first
--warmup orders decided), this process sends the workload's orders (benchmarks/workload.py)
at --rate per second for --seconds, each send's time kept by the offset the broker gave it,
and reads the output topics as they come: an output's latency is the time it was read here
minus the time its input (named by the output's `rxgate-source` header) was sent. Both clocks
are this process's monotonic clock. After the last send it waits up to --drain seconds for the
rest; an input without an output by then is counted as not decided, with an infinite latency
(so a p99 over them reads "inf").

Also scraped from the worker's /metrics at the end: its own `rxgate_decision_seconds`
histogram (read to send, the wait in a batch and for the broker included) and
`rxgate_check_seconds` (the checks of one order alone), whose p99s are estimated by linear
interpolation within the bucket (as Prometheus's histogram_quantile does).

Prints, per subject: offered and achieved rates, p50 / p99 / max produce-to-output, how many
were still outstanding when sending stopped; the broker's own send-to-acknowledgement time of
this process's sends in each run (the least any read-to-ack time can be on this broker); then the
ratio worker p99 / passthrough p99.

    python benchmarks/bench_latency.py [--rate 500] [--seconds 60] [--drain 120] [--quick]
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import streams  # noqa: E402
from workload import Workload  # noqa: E402

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from rxgate.stream.config import MAX_MESSAGE_BYTES, ORDERS_TOPIC, OUTPUT_TOPICS  # noqa: E402
from rxgate.stream.readback import parse_source_header  # noqa: E402


@dataclass
class Result:
    name: str
    sent: int = 0
    send_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outstanding_at_end_of_sending: int = 0
    metrics_p99: float | None = None
    metrics_count: float | None = None
    check_p99: float | None = None  # the worker's rxgate_check_seconds (the checks alone)
    # this process's own send-to-acknowledgement time of each input it sent (linger 0): what
    # the broker alone takes to acknowledge one record at this rate, the floor of any
    # subject's read-to-ack time (rxgate_decision_seconds) on this broker
    acks: list[float] = field(default_factory=list)
    expected: int = 0  # outputs the inputs sent should yield

    @property
    def offered(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else float("nan")


def histogram_quantile(text: str, name: str, q: float) -> tuple[float | None, float | None]:
    """(q-quantile estimate, count) of a Prometheus histogram in exposition text."""
    buckets = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M):
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)),
                        float(m.group(2))))
    if not buckets:
        return None, None
    buckets.sort()
    total = buckets[-1][1]
    if total == 0:
        return None, 0
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le, total  # beyond the last finite bucket: its bound, at least
            inside = count - prev_count
            return prev_le + (le - prev_le) * ((rank - prev_count) / inside if inside else 1), total
        prev_le, prev_count = le, count
    return None, total


async def offered_load(subject: streams.Subject, broker, work: Workload, partitions: int,
                       warmup: int, rate: float, seconds: float, drain: float) -> Result:
    result = Result(subject.name)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                                fetch_max_wait_ms=20)  # the reader adds little latency
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False,
                                max_request_size=MAX_MESSAGE_BYTES, linger_ms=0)
    await consumer.start()
    await producer.start()
    tps = [TopicPartition(t, p) for t in OUTPUT_TOPICS for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    sent_at: dict[tuple[int, int], float] = {}  # (input partition, offset) -> send time
    measured = work.items[warmup:]
    expected_warm = sum(1 for m in work.items[:warmup] if m.kind in ("placed", "invalid"))
    passthrough = isinstance(subject, streams.Loop)  # one output per input
    if passthrough:
        expected_warm = warmup
    got = {"warm": 0, "measured": 0}
    stop_reading = asyncio.Event()

    async def read() -> None:
        while not stop_reading.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    source = parse_source_header(r.headers)
                    t = sent_at.get((source[1], source[2])) if source else None
                    if t is None:
                        got["warm"] += 1
                    else:
                        got["measured"] += 1
                        result.latencies.append(now - t)

    reader = asyncio.create_task(read())
    try:
        subject.start()
        for m in work.items[:warmup]:
            await producer.send(ORDERS_TOPIC, m.value, key=m.key)
        await producer.flush()
        deadline = time.monotonic() + 180
        while got["warm"] < expected_warm:
            if time.monotonic() > deadline or not subject.pids:
                raise RuntimeError(f"{subject.name}: warm-up not decided ({got['warm']}/{expected_warm})")
            await asyncio.sleep(0.05)

        def keep(t: float):
            def done(fut) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    md = fut.result()
                    sent_at[(md.partition, md.offset)] = t
                    result.acks.append(time.monotonic() - t)
            return done

        t0 = time.monotonic()
        sent = 0
        for i, m in enumerate(measured):
            due = t0 + i / rate
            if due - time.monotonic() > 0.001:
                await asyncio.sleep(due - time.monotonic())
            t = time.monotonic()
            if t - t0 >= seconds:
                break
            fut = await producer.send(ORDERS_TOPIC, m.value, key=m.key)
            fut.add_done_callback(keep(t))
            sent += 1
        await producer.flush()
        expected = sent if passthrough else sum(
            1 for m in measured[:sent] if m.kind in ("placed", "invalid"))
        result.sent = len(sent_at)
        result.send_seconds = time.monotonic() - t0
        result.expected = expected
        result.outstanding_at_end_of_sending = expected - got["measured"]
        deadline = time.monotonic() + drain
        while got["measured"] < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if isinstance(subject, streams.Worker):
            try:
                text = subject.metrics_text()
                result.metrics_p99, result.metrics_count = histogram_quantile(
                    text, "rxgate_decision_seconds", 0.99)
                result.check_p99, _ = histogram_quantile(text, "rxgate_check_seconds", 0.99)
            except OSError:
                pass
    finally:
        stop_reading.set()
        await reader
        await consumer.stop()
        await producer.stop()
        subject.stop()
    return result


def one(kind: str, work: Workload, partitions: int, tmp: Path, args) -> Result:
    broker = streams.fresh_broker(tmp)
    try:
        streams.prepare(broker.bootstrap, partitions)
        subject = (streams.Worker(broker, partitions, tmp) if kind == "worker"
                   else streams.Loop("passthrough", broker, partitions, tmp))
        return asyncio.run(offered_load(subject, broker, work, partitions, args.warmup,
                                        args.rate, args.seconds, args.drain))
    finally:
        broker.stop()


def latencies(r: Result) -> list[float]:
    """The measured latencies, and an infinite one for each input not decided by the end of
    the drain (so a subject that falls behind cannot look fast by what it never answered)."""
    return r.latencies + [float("inf")] * max(0, r.expected - len(r.latencies))


def ms(x: float) -> str:
    return f"{x * 1e3:>8.1f} ms" if x != float("inf") else "     inf   "


def line(r: Result) -> str:
    xs = latencies(r)
    missing = r.expected - len(r.latencies)
    return (f"{r.name:<26} offered {r.offered:>6,.0f}/s  p50 {ms(harness.percentile(xs, .5))}"
            f"  p99 {ms(harness.percentile(xs, .99))}  max {ms(max(xs, default=float('nan')))}"
            f"  outstanding when sending stopped {r.outstanding_at_end_of_sending}"
            f"{f'  NOT DECIDED within the drain: {missing} (inf)' if missing else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500.0, help="orders per second offered")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to offer them")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the rest")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=50, help="orders decided before measuring")
    ap.add_argument("--quick", action="store_true", help="20 s, drain 60 s")
    ap.add_argument("--stand-in", action="store_true",
                    help="decide with no rule checks (benchmark stand-in): the shell's ceiling")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.drain = 20.0, 60.0
    print(f"machine: {harness.machine()}")
    if args.stand_in:
        print(harness.use_stand_in())
    work = Workload(args.warmup + int(args.rate * args.seconds) + 1)
    tmp = streams.workdir()
    results = {kind: one(kind, work, args.partitions, tmp, args)
               for kind in ("passthrough", "worker")}
    print(f"offered {args.rate:g} orders/s for {args.seconds:g} s on {args.partitions} partitions "
          f"(fresh broker each; logs in {tmp}); {harness.SHARED_NOTE}")
    print()
    for r in results.values():
        print(line(r))
    w = results["worker"]
    if w.metrics_p99 is not None:
        print(f"worker's own rxgate_decision_seconds: p99 ~ {w.metrics_p99 * 1e3:.1f} ms "
              f"(over {w.metrics_count:.0f} decisions, bucket-interpolated; read to sent, "
              f"the wait in a batch and for the broker included)")
    if w.check_p99 is not None:
        print(f"worker's own rxgate_check_seconds (the checks of one order alone): "
              f"p99 ~ {w.check_p99 * 1e3:.1f} ms")
    for r in results.values():
        if r.acks:
            print(f"the broker's own acknowledgement of this benchmark's sends during the "
                  f"{r.name} run (send to ack, linger 0): p50 {harness.percentile(r.acks, .5) * 1e3:.1f} ms, "
                  f"p99 {harness.percentile(r.acks, .99) * 1e3:.1f} ms")
    wp99 = harness.percentile(latencies(w), .99)
    pp99 = harness.percentile(latencies(results["passthrough"]), .99)
    print(f"worker p99 / passthrough p99: {harness.ratio(wp99, pp99)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
