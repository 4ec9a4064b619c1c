"""One order, three paths: FHIR through the CDS service, `rxgate check --fhir`, and the stream
(the FHIR-mapped events published to rx.orders.v1 on the embedded broker and decided by a real
`rxgate worker`): the same findings. And card feedback reaches rx.reviews.v1 exactly once."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastapi.testclient import TestClient

from rxgate.broker import EmbeddedBroker
from rxgate.cds.app import create_app
from rxgate.cds.config import CdsSettings
from rxgate.fhir import orders_from_bundle
from rxgate.stream.runner import WorkerProcess
from tests.stream.kafka import decisions_by_event, publish, read_outputs

from .bundles import bundle, contract_example_resources, quantity_obs
from .conftest import BASE, make_token
from .test_cds_service import SIGN, by_rule, hook_request

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log") as running:
        yield running


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with WorkerProcess(broker.url, group="rxgate-cds-tests", partitions=4, log_path=log) as w:
        w.wait_healthy()
        yield w


def order_resources(pid: str) -> list[dict]:
    """A flagged isatuximab order: 1400 mg for 70 kg, low platelets, pomalidomide active."""
    resources = contract_example_resources(pid, f"{pid}-ord")
    resources[0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 1400
    resources[6] = quantity_obs("plt1", pid, "777-3", 40, "10*3/uL", "2026-03-01T07:00:00Z")
    return resources


def findings(decision: dict) -> list[tuple]:
    return sorted((f["rule_id"], f["severity"], json.dumps(f["evidence"], sort_keys=True))
                  for f in decision["findings"])


def test_fhir_check_and_stream_give_the_same_findings(broker, worker, tmp_path, settings, knowledge, ehr_key):
    pid = f"P-{uuid.uuid4().hex[:8]}"
    resources = order_resources(pid)
    fhir_bundle = bundle(resources)

    # 1. rxgate check --fhir
    path = tmp_path / "order.json"
    path.write_text(json.dumps(fhir_bundle))
    run = subprocess.run([sys.executable, "-m", "rxgate.cli", "check", "--fhir", str(path)],
                         capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    [checked] = [json.loads(line) for line in run.stdout.decode().splitlines()]

    # 2. the stream: the same FHIR mapped to events, published to rx.orders.v1
    [fo] = orders_from_bundle(fhir_bundle, now=dt.datetime.now(dt.timezone.utc))
    events = [*fo.active_orders, fo.event]
    publish(broker.bootstrap, [(pid.encode(), json.dumps(e).encode()) for e in events])
    outs = read_outputs(broker.bootstrap, until=lambda o: fo.event["event_id"] in decisions_by_event(o))
    [streamed] = decisions_by_event(outs)[fo.event["event_id"]]

    # 3. the CDS service
    with TestClient(create_app(settings, knowledge)) as client:
        r = client.post(SIGN, json=hook_request(resources, pid=pid),
                        headers={"Authorization": f"Bearer {make_token(ehr_key)}"})
        assert r.status_code == 200
        cards = by_rule(r.json()["cards"])

    assert findings(streamed.message) == findings(checked)
    assert checked["outcome"] == "flagged"
    assert {"isatuximab.dose.per_kg", "isatuximab.contraindication.plt_low"} <= {f["rule_id"] for f in checked["findings"]}
    assert set(cards) == {f["rule_id"] for f in checked["findings"]}
    for f in checked["findings"]:
        for key, value in f["evidence"].items():
            if not isinstance(value, (list, dict)):
                assert f"| {key} | {value} |" in cards[f["rule_id"]]["detail"]


def _reviews(bootstrap: str, timeout: float = 30.0, expect: int = 1) -> list[dict]:
    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic("rx.reviews.v1") or {0}
            tps = [TopicPartition("rx.reviews.v1", p) for p in parts]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found, deadline = [], time.monotonic() + timeout
            while time.monotonic() < deadline:
                ends = await consumer.end_offsets(tps)
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                        found += [(r.key, json.loads(r.value)) for r in records]
                if len(found) >= expect:
                    await asyncio.sleep(1.0)  # a duplicate would arrive now
                    ends = await consumer.end_offsets(tps)
                    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                            found += [(r.key, json.loads(r.value)) for r in records]
                    return found
                await asyncio.sleep(0.2)
            return found
        finally:
            await consumer.stop()
    return asyncio.run(run())


def test_feedback_becomes_one_review_per_card(broker, settings, knowledge, ehr_key):
    async def create_topic():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("rx.reviews.v1", num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
    asyncio.run(create_topic())

    pid = f"P-{uuid.uuid4().hex[:8]}"
    with_broker = CdsSettings(issuers=settings.issuers, audience=BASE, broker=f"kafka://{broker.bootstrap}")
    with TestClient(create_app(with_broker, knowledge)) as client:
        r = client.post(SIGN, json=hook_request(order_resources(pid), pid=pid),
                        headers={"Authorization": f"Bearer {make_token(ehr_key)}"})
        card = by_rule(r.json()["cards"])["isatuximab.dose.per_kg"]
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                                  "overrideReason": {"reason": {"code": "confirmed-with-prescriber",
                                                                "system": "https://rxgate.dev/cds/override-reason",
                                                                "display": "Confirmed with the prescriber"},
                                                     "userComment": "2 x 700 mg split"},
                                  "outcomeTimestamp": "2026-03-02T08:40:00Z"}]}
        for _ in range(3):  # the EHR retries (a fresh token each call): still one message
            token = make_token(ehr_key, service="rxgate-order-sign/feedback")
            assert client.post(f"{SIGN}/feedback", json=feedback,
                               headers={"Authorization": f"Bearer {token}"}).status_code == 200
    reviews = [(k, m) for k, m in _reviews(broker.bootstrap) if m["patient_id"] == pid]
    [(key, review)] = reviews
    assert key == pid.encode()
    assert review["action"] == "override" and review["card_uuid"] == card["uuid"]
    assert review["reason"] == "Confirmed with the prescriber: 2 x 700 mg split"
    assert review["pharmacist_id"] == "PractitionerRole/123"
    assert review["order_id"] == f"{pid}-ord" and review["acted_at"] == "2026-03-02T08:40:00Z"
