"""Each action reaches Kafka exactly once (store on SQLite and on PostgreSQL), also when `rxgate review` is killed (SIGKILL, a real
child process) between storing an action and publishing it, and between the broker's ack and
marking the outbox row sent."""
from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from rxgate.broker import EmbeddedBroker
from rxgate.contract import Review, VerifiedDecision
from rxgate.review.config import FLAGGED_TOPIC, REVIEWS_TOPIC, VERIFIED_TOPIC
from rxgate.review.db import make_engine, migrate
from rxgate.review.runner import ReviewProcess
from rxgate.review.store import Store

from .conftest import PASSWORD, decision
from .kafka_io import create_topics, publish, read_topic, wait_for

pytestmark = pytest.mark.broker


def sign_in(url: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=10)
    r = c.post("/api/login", json={"user_id": "RPH-12", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf_token"]


def act(c: httpx.Client, csrf: str, event_id: str, **body) -> None:
    entry = c.get(f"/api/queue/{event_id}").json()
    r = c.post(f"/api/queue/{event_id}/action", headers={"X-CSRF-Token": csrf},
               json={"decision_id": entry["decision_id"], "version": entry["version"], **body})
    assert r.status_code == 200, r.text


def test_killed_between_store_and_publish_each_action_reaches_kafka_once(tmp_path, db_url):
    db = db_url  # SQLite in a file, and the PostgreSQL server
    engine = make_engine(db)
    migrate(engine)
    store = Store(engine)
    store.add_user("RPH-12", "Ada Lovelace", PASSWORD)
    a = decision(patient_id="P-A")
    b = decision(patient_id="P-B")
    log = tmp_path / "review.log"
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        create_topics(broker.bootstrap, [FLAGGED_TOPIC, REVIEWS_TOPIC, VERIFIED_TOPIC])
        publish(broker.bootstrap, FLAGGED_TOPIC, [a, b])

        # 1. acked by the broker, killed before the outbox row is marked sent
        review = ReviewProcess(broker.url, db, log_path=log,
                               env={"RXGATE_REVIEW_OUTBOX_PAUSE": "after:60"})
        try:
            review.start()
            review.wait_ready()
            c, csrf = sign_in(review.url)
            wait_for(lambda: c.get("/api/queue").json()["total"] == 2, 30, "both decisions")
            act(c, csrf, a["event_id"], action="override", reason_code="prescriber-confirmed",
                note="split dose")
            wait_for(lambda: read_topic(broker.bootstrap, REVIEWS_TOPIC), 30,
                     "the review on its topic")
        finally:
            review.kill()
        assert len(store.unsent()) == 2  # the acknowledged review is not marked sent

        # 2. stored, killed before publishing (the action on b is only in the store)
        review = ReviewProcess(broker.url, db, log_path=log,
                               env={"RXGATE_REVIEW_OUTBOX_PAUSE": "before:60"})
        try:
            review.start()
            review.wait_ready()
            c, csrf = sign_in(review.url)
            act(c, csrf, b["event_id"], action="reject", reason_code="duplicate")
            wait_for(lambda: "pausing" in review.log_tail(5), 30, "the paused publisher")
        finally:
            review.kill()
        assert "read-back: 1 outbox message(s) already on their topic" in log.read_text()
        assert len(read_topic(broker.bootstrap, VERIFIED_TOPIC)) == 0
        assert len(store.unsent()) == 3

        # 3. a plain restart publishes what is left, once
        review = ReviewProcess(broker.url, db, log_path=log)
        try:
            review.start()
            review.wait_ready()
            wait_for(lambda: not store.unsent(), 30, "the outbox to drain")
        finally:
            review.stop()
        reviews = read_topic(broker.bootstrap, REVIEWS_TOPIC)
        verified = read_topic(broker.bootstrap, VERIFIED_TOPIC)
    engine.dispose()

    assert Counter(m["decision_id"] for _, m, _ in reviews) == {
        a["decision_id"]: 1, b["decision_id"]: 1}
    assert Counter(m["decision_id"] for _, m, _ in verified) == {
        a["decision_id"]: 1, b["decision_id"]: 1}
    by_decision = {m["decision_id"]: (k, m) for k, m, _ in reviews}
    assert by_decision[a["decision_id"]][0] == b"P-A"
    assert by_decision[a["decision_id"]][1]["action"] == "override"
    assert by_decision[b["decision_id"]][1]["action"] == "reject"
    finals = {m["decision_id"]: (k, m["final"]) for k, m, _ in verified}
    assert finals == {a["decision_id"]: (b"P-A", "approved"),
                      b["decision_id"]: (b"P-B", "rejected")}
    for _, m, _ in reviews:  # the contract's messages, exactly
        Review.model_validate_json(json.dumps(m))
    for _, m, _ in verified:
        VerifiedDecision.model_validate_json(json.dumps(m))
