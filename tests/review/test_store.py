"""The review store on SQLite and on a real PostgreSQL server: migrations, ingest, the queue,
actions with their outbox, optimistic locking, users, sessions, rate limits, audit."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from rxgate.review.config import REVIEWS_TOPIC, VERIFIED_TOPIC
from rxgate.review.db import current_revision, make_engine, migrate
from rxgate.review.models import Base
from rxgate.review.store import (ActionRefused, Conflict, Filters, LoginRefused, Record, Store,
                                 review_id_for)

from .conftest import PASSWORD, decision, finding, order_event


def test_migrations_up_from_empty_match_the_models(db_url):
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert not set(inspect(engine).get_table_names()) & set(Base.metadata.tables)
        migrate(engine)
        assert current_revision(engine) == "0001"
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
        migrate(engine)  # again: nothing to do, nothing broken
        assert current_revision(engine) == "0001"
    finally:
        engine.dispose()


def test_a_replayed_decision_is_one_entry_and_a_redecision_is_not_a_second(store):
    d = decision()
    assert store.ingest_decision(d) == "decisions"
    assert store.ingest_decision(d) == "duplicates"
    rows, total = store.queue()
    assert total == 1 and rows[0].entry.decisions_seen == 1
    first_version = rows[0].entry.version

    newer = decision(event_id=d["event_id"], knowledge_version="2027.1.0", severity="contraindicated",
                     decided_at="2026-03-02T08:20:00Z",
                     findings=[finding("isatuximab.contraindication.pregnancy", "contraindication",
                                       "contraindicated", "pregnant")])
    assert store.ingest_decision(newer) == "redecisions"
    rows, total = store.queue()
    assert total == 1
    entry = rows[0].entry
    assert entry.decision_id == newer["decision_id"] and entry.decisions_seen == 2
    assert entry.severity == "contraindicated" and entry.worst_message == "pregnant"
    assert entry.version > first_version
    detail = store.detail(d["event_id"])
    assert [x.knowledge_version for x in detail.decisions_for_event] == ["2027.1.0", "2026.11.1"]


def test_ingest_records_positions_and_joins_the_order(store):
    d = decision()
    records = [Record("rx.decisions.flagged.v1", 2, 7, json.dumps(d).encode()),
               Record("rx.orders.v1", 2, 40, json.dumps(order_event(
                   d["event_id"], "2026-03-03T10:00:00Z")).encode()),
               Record("rx.orders.v1", 2, 41, b"not json"),
               Record("rx.decisions.flagged.v1", 2, 8, b"{}")]
    counts = store.ingest(records)
    assert counts["decisions"] == 1 and counts["orders"] == 1 and counts["ignored"] == 2
    assert store.positions() == {("rx.decisions.flagged.v1", 2): 9, ("rx.orders.v1", 2): 42}
    rows, _ = store.queue()
    assert rows[0].entry.scheduled_for == dt.datetime(2026, 3, 3, 10, tzinfo=dt.timezone.utc)
    assert rows[0].order["order"]["dose"] == {"value": 700, "unit": "mg"}
    # the same records again (a restart before the positions were written): no change
    store.ingest(records)
    assert store.queue()[1] == 1


def test_queue_order_filters_and_paging(store, clock):
    def add(severity, due, rule="isatuximab.dose.per_kg", category="dose", drug="isatuximab",
            decided="2026-03-02T08:00:00Z"):
        d = decision(severity=severity, drug=drug, decided_at=decided,
                     findings=[finding(rule, category, severity, f"{severity} {due}")])
        store.ingest_decision(d)
        if due:
            store.ingest_order(order_event(d["event_id"], due))
        return d

    add("warning", "2026-03-02T10:00:00Z")
    add("major", "2026-03-04T10:00:00Z")
    add("major", "2026-03-02T12:00:00Z", rule="isatuximab.interval.duplicate",
        category="interval")
    add("major", None)
    add("contraindicated", "2026-03-09T10:00:00Z", rule="isatuximab.contraindication.pregnancy",
        category="contraindication", decided="2026-03-02T09:20:00Z")
    add("info", "2026-03-02T09:00:00Z", drug="daratumumab")
    rows, total = store.queue()
    assert total == 6
    assert [r.entry.worst_message for r in rows] == [
        "contraindicated 2026-03-09T10:00:00Z", "major 2026-03-02T12:00:00Z",
        "major 2026-03-04T10:00:00Z", "major None", "warning 2026-03-02T10:00:00Z",
        "info 2026-03-02T09:00:00Z"]
    assert store.queue(Filters(severity="major"))[1] == 3
    assert store.queue(Filters(category="interval"))[1] == 1
    assert store.queue(Filters(rule="isatuximab.contraindication.pregnancy"))[1] == 1
    assert store.queue(Filters(drug="Daratumumab"))[1] == 1
    assert store.queue(Filters(waiting_hours=1))[1] == 5  # all but the one decided at 09:20
    page2, total = store.queue(page=2, per_page=4)
    assert total == 6 and [r.entry.severity for r in page2] == ["warning", "info"]
    assert store.facets()["drugs"] == ["daratumumab", "isatuximab"]
    counts, oldest = store.pending_counts()
    assert counts == {"contraindicated": 1, "major": 3, "warning": 1, "info": 1}
    assert oldest == dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc)


def test_an_action_stores_review_outbox_and_audit_together(store):
    d = decision()
    store.ingest_decision(d)
    entry = store.queue()[0][0].entry
    review = store.act(d["event_id"], decision_id=d["decision_id"], version=entry.version,
                       action="override", reason_code="prescriber-confirmed",
                       note="2 x 700 mg split", user_id="RPH-12", client="10.0.0.5")
    assert review.review_id == review_id_for(d["decision_id"])
    assert review.reason == "Confirmed with the prescriber: 2 x 700 mg split"
    rows = store.unsent()
    assert [r.topic for r in rows] == [REVIEWS_TOPIC, VERIFIED_TOPIC]
    assert all(r.key == "P-001" for r in rows)
    sent_review, sent_verified = (json.loads(r.payload) for r in rows)
    assert sent_review["action"] == "override" and sent_review["pharmacist_id"] == "RPH-12"
    assert sent_review["decision_id"] == d["decision_id"] and sent_review["order_id"] == "ORD-1001"
    assert sent_verified["final"] == "approved"
    assert sent_verified["review_id"] == sent_review["review_id"]
    audit = store.audit_rows("action")
    assert len(audit) == 1 and audit[0].user_id == "RPH-12"
    assert audit[0].decision_id == d["decision_id"] and audit[0].at == store.clock()
    assert store.queue()[1] == 0 and store.queue(Filters(status="done"))[1] == 1
    store.mark_sent([rows[0].id])
    assert [r.topic for r in store.unsent()] == [VERIFIED_TOPIC]


@pytest.mark.parametrize("action,code,note,final", [
    ("approve", None, None, "approved"),
    ("reject", "contraindicated", None, "rejected"),
    ("reject", "other", "patient declined", "rejected"),
])
def test_every_action_publishes_its_final_word(store, action, code, note, final):
    d = decision()
    store.ingest_decision(d)
    store.act(d["event_id"], decision_id=d["decision_id"], version=1, action=action,
              reason_code=code, note=note, user_id="RPH-12")
    review, verified = (json.loads(r.payload) for r in store.unsent())
    assert review["action"] == action and verified["final"] == final
    if note:
        assert review["reason"] == note


@pytest.mark.parametrize("action,code,note", [
    ("override", None, "no code"), ("reject", "", None), ("reject", "other", " "),
    ("reject", "prescriber-confirmed", None), ("delete", None, None)])
def test_override_and_reject_need_a_reason(store, action, code, note):
    d = decision()
    store.ingest_decision(d)
    with pytest.raises(ActionRefused):
        store.act(d["event_id"], decision_id=d["decision_id"], version=1, action=action,
                  reason_code=code, note=note, user_id="RPH-12")
    assert store.unsent() == [] and store.queue()[1] == 1


def test_second_actor_gets_a_conflict_naming_who_and_when(store):
    store.add_user("RPH-12", "Ada Lovelace", PASSWORD)
    d = decision()
    store.ingest_decision(d)
    store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="approve",
              reason_code=None, note=None, user_id="RPH-12")
    with pytest.raises(Conflict) as e:
        store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="reject",
                  reason_code="duplicate", note=None, user_id="RPH-13")
    assert e.value.acted_by == "RPH-12" and e.value.acted_at == store.clock()
    assert "Ada Lovelace" in str(e.value) and "2026-03-02 09:30:00 UTC" in str(e.value)
    assert len(store.unsent()) == 2


def test_acting_on_a_decision_replaced_by_a_redecision_is_a_conflict(store):
    d = decision()
    store.ingest_decision(d)
    store.ingest_decision(decision(event_id=d["event_id"], decided_at="2026-03-02T08:30:00Z"))
    with pytest.raises(Conflict, match="re-decided"):
        store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="approve",
                  reason_code=None, note=None, user_id="RPH-12")


def test_concurrent_actors_exactly_one_wins(store):
    d = decision()
    store.ingest_decision(d)
    results: list[str] = []
    barrier = threading.Barrier(6)

    def actor(n: int) -> None:
        barrier.wait()
        try:
            store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="approve",
                      reason_code=None, note=None, user_id=f"RPH-{n}")
            results.append("won")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=actor, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["won"]
    assert len(store.unsent()) == 2 and len(store.audit_rows("action")) == 1


def test_a_restart_loses_nothing(db_url, clock):
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine, clock=clock)
    store.add_user("RPH-12", "Ada", PASSWORD)
    d = decision()
    store.ingest_decision(d)
    store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="approve",
              reason_code=None, note=None, user_id="RPH-12")
    engine.dispose()
    again = Store(make_engine(db_url), clock=clock)
    migrate(again.engine)
    assert again.queue(Filters(status="all"))[1] == 1
    assert len(again.unsent()) == 2
    assert [a.kind for a in again.audit_rows()] == ["user_added", "action"]
    again.engine.dispose()


def test_passwords_are_argon2_hashes_and_sign_in_works(store):
    store.add_user("RPH-12", "Ada", PASSWORD)
    with store.engine.connect() as conn:
        from sqlalchemy import text
        stored = conn.execute(text("select password_hash from users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    token, csrf, user = store.sign_in("RPH-12", PASSWORD, "10.0.0.5")
    assert user.user_id == "RPH-12" and token and csrf and token != csrf
    with pytest.raises(LoginRefused):
        store.sign_in("RPH-12", "wrong password", "10.0.0.5")
    with pytest.raises(LoginRefused):
        store.sign_in("nobody", PASSWORD, "10.0.0.5")
    with pytest.raises(ValueError):
        store.add_user("RPH-13", "Short", "short")
    with pytest.raises(ValueError):
        store.add_user("RPH-12", "Again", PASSWORD)


def test_sessions_expire_after_inactivity(store, clock):
    store.add_user("RPH-12", "Ada", PASSWORD)
    token, _, _ = store.sign_in("RPH-12", PASSWORD, None)
    idle = dt.timedelta(minutes=15)
    clock.advance(minutes=14)
    assert store.session(token, idle) is not None  # activity: the clock restarts
    clock.advance(minutes=14)
    assert store.session(token, idle) is not None
    clock.advance(minutes=16)
    assert store.session(token, idle) is None
    assert store.session(token, idle) is None  # gone for good
    assert store.session("made-up", idle) is None
    assert [a.kind for a in store.audit_rows()][-1] == "session_expired"


def test_sign_in_is_rate_limited_per_account(store, clock):
    store.add_user("RPH-12", "Ada", PASSWORD)
    for _ in range(5):
        with pytest.raises(LoginRefused) as e:
            store.sign_in("RPH-12", "guess", "10.0.0.9", limit=5)
        assert e.value.retry_after is None
    with pytest.raises(LoginRefused) as e:  # even the right password, for now
        store.sign_in("RPH-12", PASSWORD, "10.0.0.9", limit=5)
    assert e.value.retry_after
    clock.advance(minutes=16)
    assert store.sign_in("RPH-12", PASSWORD, "10.0.0.9", limit=5)
    kinds = [a.kind for a in store.audit_rows()]
    assert kinds.count("login_failed") == 5 and kinds[-1] == "login"


def test_a_cancelled_order_is_shown_as_cancelled(store):
    d = decision()
    store.ingest_decision(d)
    store.ingest_order(order_event(d["event_id"]))
    store.ingest_order({"schema": "rx.order/1", "event_id": "cancel-1",
                        "event_type": "order.cancelled", "occurred_at": "2026-03-02T08:50:00Z",
                        "order": {"order_id": "ORD-1001"}, "patient": {"patient_id": "P-001"}})
    assert store.detail(d["event_id"]).order_cancelled_at == dt.datetime(
        2026, 3, 2, 8, 50, tzinfo=dt.timezone.utc)


def test_an_older_or_approved_redecision_does_not_disturb_a_pharmacist(store):
    d = decision(decided_at="2026-03-02T08:15:00Z")
    store.ingest_decision(d)
    store.ingest_decision(decision(event_id=d["event_id"], decided_at="2026-03-01T08:15:00Z"))
    store.ingest_decision(decision(event_id=d["event_id"], outcome="approved", severity="info",
                                   decided_at="2026-03-02T08:16:00Z"))
    entry = store.queue()[0][0].entry
    assert entry.decision_id == d["decision_id"] and entry.decisions_seen == 3
    store.act(d["event_id"], decision_id=d["decision_id"], version=1, action="approve",
              reason_code=None, note=None, user_id="RPH-12")


def test_one_outbox_publisher_per_store(db_url, clock):
    first, second = (Store(make_engine(db_url), clock=clock) for _ in range(2))
    migrate(first.engine)
    try:
        with first.publisher_lock() as held:
            assert held
            with second.publisher_lock() as also:
                assert not also
        with second.publisher_lock() as held:
            assert held
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_paging_through_a_thousand(store):
    records = []
    for n in range(1, 1001):
        d = decision(severity=("major", "warning", "info")[n % 3],
                     decided_at=f"2026-03-01T{n % 24:02d}:00:00Z")
        records.append(Record("rx.decisions.flagged.v1", n % 4, n, json.dumps(d).encode()))
    store.ingest(records)
    rows, total = store.queue(page=1)
    assert total == 1000 and len(rows) == 50
    last, _ = store.queue(page=20)
    assert len(last) == 50 and store.queue(page=21)[0] == []
    seen = [r.entry.event_id for p in (1, 2, 3) for r in store.queue(page=p)[0]]
    assert len(set(seen)) == 150  # pages do not overlap
    ranks = [r.entry.severity_rank for r in store.queue(page=7)[0]]
    assert ranks == sorted(ranks, reverse=True)
