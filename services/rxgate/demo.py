"""`rxgate demo [--once] [--port N]`: the whole pipeline on this machine, in one command.

Starts the embedded broker (Tansu, in memory) and a worker (`rxgate worker` as a child
process), publishes the sample stream `examples/demo-orders.jsonl` -- seven patients on
isatuximab: approved and flagged orders, a line cut off mid-message, an order sent twice, a
postponed order cancelled and placed again, a drug the knowledge has no monograph for -- and
prints each decision as it comes back from the decision topics, the way a pharmacist reads
it. With `--once` it stops after the stream (exit 0); otherwise it keeps showing decisions for
whatever else is published to rx.orders.v1 until Ctrl-C.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import signal
import sys
import tempfile
import textwrap
from pathlib import Path

from .broker import BrokerError, EmbeddedBroker
from .contract import FileSource
from .knowledge import KnowledgeError, load_knowledge
from .processor import DictHistoryStore, Processor
from .stream.config import APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC, ORDERS_TOPIC
from .stream.readback import parse_source_header
from .stream.runner import WorkerFailed, WorkerProcess

DEMO_ORDERS = Path(__file__).parent / "examples" / "demo-orders.jsonl"
PARTITIONS = 4
PUBLISH_PAUSE = 0.15  # seconds between sample events, so the stream reads like one
WAIT_FOR_OUTPUTS = 60.0


def main(once: bool = False, port: int | None = None) -> int:
    # Ctrl-C and SIGTERM both stop the demo in order (worker first, then the broker), also
    # when a launcher started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    lines = [line for line in DEMO_ORDERS.read_bytes().splitlines() if line.strip()]
    try:
        plan = _plan(lines)
    except KnowledgeError as e:
        print(f"rxgate demo: the drug knowledge cannot be loaded: {e}", file=sys.stderr)
        return 2
    print("rxgate demo: starting the embedded Kafka-protocol broker (Tansu, in memory) ...",
          flush=True)
    try:
        broker = EmbeddedBroker(port=port).start()
    except BrokerError as e:
        print(f"rxgate demo: {e}", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="rxgate-demo-"))
    worker = WorkerProcess(broker.url, group="rxgate-demo", partitions=PARTITIONS,
                           log_path=work_dir / "worker.log",
                           env={"RXGATE_LOG_LEVEL": "warning"})
    failed = False
    review = None  # the pharmacists' page (not with --once: it would be gone at once)
    try:
        print(f"  broker   {broker.bootstrap}  (RXGATE_BROKER={broker.url})")
        print("rxgate demo: starting the validator (rxgate worker) ...", flush=True)
        worker.start()
        worker.wait_healthy()
        # the worker's log lives in a temporary directory removed on a clean exit: it is
        # named only when something went wrong, and then kept
        print(f"  metrics  {worker.metrics_url}   health {worker.health_url}", flush=True)
        if not once:
            from .review.demo_page import DEMO_USER, start_review_page

            review, password = start_review_page(broker.url, work_dir)
            print(f"  review   {review.url}/   pharmacist page: sign in as {DEMO_USER}, "
                  f"password {password}", flush=True)
        print(flush=True)
        complete = asyncio.run(_run(broker, worker, lines, plan, once))
        if not complete:
            failed = True
            return 1
        return 0
    except KeyboardInterrupt:
        print("\nrxgate demo: stopping (Ctrl-C)", flush=True)
        return 0
    except WorkerFailed as e:
        failed = True
        print(f"rxgate demo: the worker failed: {e}", file=sys.stderr)
        return 1
    finally:
        if review is not None:
            review.stop()
        worker.stop()
        broker.stop()
        if failed:
            print(f"rxgate demo: the worker's log is kept: {worker.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        print("rxgate demo: worker and broker stopped.", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _plan(lines: list[bytes]) -> list[str]:
    """What each sample line gives -- 'decision', 'invalid', 'cancelled' or 'duplicate' --
    by the same Processor, offline, so the demo knows what to wait for."""
    processor = Processor(load_knowledge(None), DictHistoryStore())
    now = dt.datetime.now(dt.timezone.utc)
    return [processor.handle(line, FileSource(file="demo", line=n), now).kind
            for n, line in enumerate(lines, 1)]


async def _run(broker: EmbeddedBroker, worker: WorkerProcess, lines: list[bytes],
               plan: list[str], once: bool) -> bool:
    """Publish the sample stream and show its outputs; False when some did not arrive."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    events = [_parse(line) for line in lines]
    orders = {e["event_id"]: e for e in events if e and "event_id" in e}
    topics = (APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t in topics for p in range(PARTITIONS)])
        print(f"Publishing {len(lines)} order events to {ORDERS_TOPIC}; the decisions, in the "
              "order the events were sent:\n", flush=True)
        placed_at: list[tuple[int, int]] = []  # (partition, offset) of each line
        publishing = asyncio.create_task(_publish(producer, lines, placed_at))
        arrived: dict[tuple[int, int], tuple[str, object]] = {}
        counts = {"approved": 0, "flagged": 0, "invalid": 0}
        shown = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_OUTPUTS
        while shown < len(lines) and loop.time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for record in records:
                    arrived[_source(record)] = (tp.topic, record)
            # show in publication order: a line's output once it is there, notes for the rest
            while shown < len(lines) and shown < len(placed_at):
                kind = plan[shown]
                if kind in ("decision", "invalid"):
                    if placed_at[shown] not in arrived:
                        break
                    topic, record = arrived.pop(placed_at[shown])
                    counts[_show(topic, record, orders)] += 1
                else:
                    _note(kind, events[shown])
                shown += 1
        await publishing
        if shown < len(lines):
            print(f"rxgate demo: the outputs of {len(lines) - shown} event(s) did not arrive "
                  f"within {WAIT_FOR_OUTPUTS:.0f} s", file=sys.stderr)
        print(f"{counts['approved']} approved, {counts['flagged']} flagged for pharmacist review, "
              f"{counts['invalid']} dead letter(s) on {INVALID_TOPIC}.")
        _show_metrics(worker)
        if once or shown < len(lines):
            return shown == len(lines)
        print(f"\nStill running. Publish more order events to {ORDERS_TOPIC} on "
              f"{broker.bootstrap} (keyed by patient id) to see their decisions here; "
              "Ctrl-C stops.", flush=True)
        while True:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if _source(record) not in placed_at:
                        _show(tp.topic, record, orders)
    finally:
        await producer.stop()
        await consumer.stop()


async def _publish(producer, lines: list[bytes], placed_at: list[tuple[int, int]]) -> None:
    for line in lines:
        sent = await producer.send_and_wait(ORDERS_TOPIC, line, key=_patient_key(line))
        placed_at.append((sent.partition, sent.offset))
        await asyncio.sleep(PUBLISH_PAUSE)


def _source(record) -> tuple[int, int] | None:
    found = parse_source_header(record.headers)
    return (found[1], found[2]) if found else None


def _parse(line: bytes) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _note(kind: str, event: dict | None) -> None:
    """The events that publish nothing, said so (they are in the stream all the same)."""
    event = event or {}
    patient = (event.get("patient") or {}).get("patient_id", "?")
    order = (event.get("order") or {}).get("order_id", "?")
    if kind == "cancelled":
        print(f"  (cancelled)                  {patient}  order {order} is cancelled: it no "
              "longer counts for interval and combination checks\n")
    else:
        print(f"  (sent again)                 {patient}  order {order}: event "
              f"{event.get('event_id', '?')} was already decided; no second decision\n")


def _patient_key(line: bytes) -> bytes | None:
    """The patient id, as the pharmacy systems key their events; None when unreadable."""
    try:
        return json.loads(line)["patient"]["patient_id"].encode("utf-8")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _show(topic: str, record, orders: dict[str, dict]) -> str:
    """Print one output for a pharmacist; returns 'approved', 'flagged' or 'invalid'."""
    message = json.loads(record.value)
    if topic == INVALID_TOPIC:
        src, err = message["source"], message["error"]
        print(f"  UNREADABLE  {err['kind']:<16} key {src.get('key') or '-'}: "
              f"{ORDERS_TOPIC} partition {src['partition']} offset {src['offset']}")
        print(_wrap(f"{err['detail']} -- the whole message is on {INVALID_TOPIC}", "      "))
        print(flush=True)
        return "invalid"
    print(f"  {message['outcome'].upper():<10}  {message['severity']:<16} "
          f"{message['patient_id']}  {_order_line(message, orders.get(message['event_id']))}")
    for finding in message["findings"]:
        print(_wrap(f"{finding['severity']:<15}  {finding['category']:<16}  "
                    f"{finding['message']}", "      - ", "        " + " " * 34))
    print(flush=True)
    return message["outcome"]


def _order_line(decision: dict, event: dict | None) -> str:
    text = f"{decision['drug']}, order {decision['order_id']}"
    if event:
        order = event["order"]
        dose = order["dose"]
        text = (f"{decision['drug']} {dose['value']:g} {dose['unit']} {order['route']}"
                f"{_regimen(order.get('regimen'))}, due {order['scheduled_for']}, "
                f"order {decision['order_id']}")
    return text


def _regimen(regimen: dict | None) -> str:
    if not regimen or not regimen.get("cycle"):
        return ""
    return f" (cycle {regimen['cycle']} day {regimen.get('day', '?')})"


def _wrap(text: str, first: str, rest: str = "      ") -> str:
    return textwrap.fill(text, width=110, initial_indent=first, subsequent_indent=rest)


def _show_metrics(worker: WorkerProcess) -> None:
    try:
        text = worker.metrics_text()
    except OSError as e:
        print(f"(metrics not readable: {e})")
        return
    wanted = ("rxgate_orders_total", "rxgate_invalid_total", "rxgate_duplicates_total",
              "rxgate_knowledge_info", "rxgate_decision_seconds_count")
    shown = [line for line in text.splitlines()
             if line.startswith(wanted) and not line.rstrip().endswith(" 0.0")]
    print(f"\nMetrics (Prometheus text) at {worker.metrics_url}, for example:")
    for line in shown:
        print(f"  {line}")
