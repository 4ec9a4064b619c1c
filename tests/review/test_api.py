"""The page and the JSON API over HTTP (in-process ASGI client): sign-in, CSRF, every action,
the 409 race, signed-out refusal, security headers, metrics."""
from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from rxgate.review.config import ReviewSettings
from rxgate.review.metrics import ReviewMetrics
from rxgate.review.web import create_app

from .conftest import PASSWORD, decision, order_event


@pytest.fixture
def app_store(tmp_path, clock):
    from rxgate.review.db import make_engine, migrate
    from rxgate.review.store import Store

    engine = make_engine(f"sqlite:///{tmp_path / 'review.sqlite3'}")
    migrate(engine)
    store = Store(engine, clock=clock)
    store.add_user("RPH-12", "Ada Lovelace", PASSWORD)
    store.add_user("RPH-13", "Grace Hopper", PASSWORD)
    pokes: list[int] = []
    app = create_app(ReviewSettings(login_attempts=3), store, ReviewMetrics(store),
                     poke_outbox=lambda: pokes.append(1))
    app.state.pokes = pokes
    yield app, store
    engine.dispose()


@pytest.fixture
def app(app_store):
    return app_store[0]


@pytest.fixture
def store(app_store):
    return app_store[1]


@pytest.fixture
def flagged(store):
    d = decision()
    store.ingest_decision(d)
    store.ingest_order(order_event(d["event_id"]))
    return d


def api_client(app, user="RPH-12") -> tuple[TestClient, str]:
    c = TestClient(app, base_url="http://testserver")
    r = c.post("/api/login", json={"user_id": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf_token"]


def page_client(app, user="RPH-12") -> TestClient:
    c = TestClient(app, base_url="http://testserver")
    form = c.get("/login")
    assert form.status_code == 200
    r = c.post("/login", data={"user_id": user, "password": PASSWORD,
                               "csrf": hidden(form.text, "csrf"), "next": "/queue"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue", r.text
    return c


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no hidden {name} in the page"
    return html.unescape(m.group(1))


def test_signed_out_callers_see_no_patient_data(app, flagged):
    c = TestClient(app)
    event = flagged["event_id"]
    assert c.get("/", follow_redirects=False).headers["location"] == "/queue"
    for path in ("/queue", f"/queue/{event}", "/queue?status=all"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    for path in ("/api/queue", f"/api/queue/{event}"):
        r = c.get(path)
        assert r.status_code == 401
    r = c.post(f"/api/queue/{event}/action", json={"decision_id": flagged["decision_id"],
                                                   "version": 1, "action": "approve"})
    assert r.status_code == 401
    r = c.post(f"/queue/{event}", data={"action": "approve"}, follow_redirects=False)
    assert r.status_code == 303
    login = c.get("/login")
    for body in (login.text, c.get("/metrics").text):
        assert "P-001" not in body and "ORD-1001" not in body


def test_sign_in_form_rejects_a_missing_or_foreign_csrf_token(app):
    c = TestClient(app)
    c.get("/login")
    for token in (None, "forged"):
        data = {"user_id": "RPH-12", "password": PASSWORD}
        if token:
            data["csrf"] = token
        r = c.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "rxgate_review_session" not in r.cookies


def test_queue_and_detail_pages_show_what_a_pharmacist_needs(app, store, flagged):
    earlier = decision(order_id="ORD-0999", outcome="approved", severity="info",
                       knowledge_version="2026.10.2", decided_at="2026-02-23T08:00:00Z")
    store.ingest_decision(earlier)
    c = page_client(app)
    q = c.get("/queue")
    assert q.status_code == 200
    for text in ("ORD-1001", "P-001", "isatuximab 700 mg IV", "2026-03-02 09:00 UTC",
                 "1400 mg is 20.0 mg/kg for 70 kg"):
        assert text in q.text
    d = c.get(f"/queue/{flagged['event_id']}")
    assert d.status_code == 200
    for text in ("Ordered", "1400", "mg/kg", "isatuximab instructions: usage and dosage",
                 "70 kg", "ANC", "1.8 10^9/L", "2026-03-01 07:00 UTC", "pomalidomide",
                 "multiple myeloma", "penicillin", "Confirmed with the prescriber",
                 "Isa-Pd cycle 1 day 1", "ORD-0999", "2026-02-23 08:00 UTC", "2026.10.2"):
        assert text in d.text, text


@pytest.mark.parametrize("action,reason_code,note,final", [
    ("approve", "", "", "approved"),
    ("override", "prescriber-confirmed", "2 x 700 mg", "approved"),
    ("reject", "dose-or-schedule-wrong", "", "rejected"),
])
def test_every_action_from_the_page(app, store, flagged, action, reason_code, note, final):
    c = page_client(app)
    page = c.get(f"/queue/{flagged['event_id']}").text
    r = c.post(f"/queue/{flagged['event_id']}", follow_redirects=False, data={
        "csrf": hidden(page, "csrf"), "decision_id": hidden(page, "decision_id"),
        "version": hidden(page, "version"), "action": action, "reason_code": reason_code,
        "note": note})
    assert r.status_code == 303, r.text
    assert c.get(r.headers["location"]).text.count("Recorded:") == 1
    review, verified = (__import__("json").loads(o.payload) for o in store.unsent())
    assert review["action"] == action and verified["final"] == final
    assert review["pharmacist_id"] == "RPH-12"
    assert app.state.pokes


def test_page_action_without_a_reason_is_refused_with_a_message(app, store, flagged):
    c = page_client(app)
    page = c.get(f"/queue/{flagged['event_id']}").text
    r = c.post(f"/queue/{flagged['event_id']}", data={
        "csrf": hidden(page, "csrf"), "decision_id": hidden(page, "decision_id"),
        "version": hidden(page, "version"), "action": "override", "reason_code": ""})
    assert r.status_code == 422 and "a reason is required to override" in r.text
    assert store.unsent() == []


@pytest.mark.parametrize("token", [None, "forged"])
def test_page_action_without_the_csrf_token_is_refused(app, store, flagged, token):
    c = page_client(app)
    page = c.get(f"/queue/{flagged['event_id']}").text
    data = {"decision_id": hidden(page, "decision_id"), "version": hidden(page, "version"),
            "action": "approve"}
    if token:
        data["csrf"] = token
    r = c.post(f"/queue/{flagged['event_id']}", data=data, follow_redirects=False)
    assert r.status_code == 403
    assert store.unsent() == [] and store.queue()[1] == 1


def test_every_action_through_the_api(app, store):
    c, csrf = api_client(app)
    for action, code in (("approve", None), ("override", "clinically-justified"),
                         ("reject", "duplicate")):
        d = decision()
        store.ingest_decision(d)
        entry = c.get(f"/api/queue/{d['event_id']}").json()
        assert entry["decision"]["findings"][0]["evidence"]["ordered_mg"] == 1400
        r = c.post(f"/api/queue/{d['event_id']}/action", headers={"X-CSRF-Token": csrf},
                   json={"decision_id": entry["decision_id"], "version": entry["version"],
                         "action": action, "reason_code": code})
        assert r.status_code == 200, r.text
        assert r.json()["action"] == action and r.json()["pharmacist_id"] == "RPH-12"
    assert len(store.unsent()) == 6
    d = decision()
    store.ingest_decision(d)
    r = c.post(f"/api/queue/{d['event_id']}/action", headers={"X-CSRF-Token": csrf},
               json={"decision_id": d["decision_id"], "version": 1, "action": "reject"})
    assert r.status_code == 422 and "reason is required" in r.json()["error"]
    queue = c.get("/api/queue").json()
    assert queue["total"] == 1 and queue["entries"][0]["event_id"] == d["event_id"]


def test_the_second_pharmacist_gets_409_naming_who_acted_and_when(app, store, flagged):
    ada, ada_csrf = api_client(app, "RPH-12")
    grace, grace_csrf = api_client(app, "RPH-13")
    seen_by_ada = ada.get(f"/api/queue/{flagged['event_id']}").json()
    seen_by_grace = grace.get(f"/api/queue/{flagged['event_id']}").json()
    assert seen_by_ada["version"] == seen_by_grace["version"]
    body = {"decision_id": flagged["decision_id"], "version": seen_by_ada["version"]}
    first = ada.post(f"/api/queue/{flagged['event_id']}/action",
                     headers={"X-CSRF-Token": ada_csrf}, json={**body, "action": "approve"})
    assert first.status_code == 200
    second = grace.post(f"/api/queue/{flagged['event_id']}/action",
                        headers={"X-CSRF-Token": grace_csrf},
                        json={**body, "action": "reject", "reason_code": "duplicate"})
    assert second.status_code == 409
    info = second.json()
    assert info["acted_by"] == "RPH-12" and info["acted_by_name"] == "Ada Lovelace"
    assert info["acted_at"].startswith("2026-03-02T09:30:00")
    assert "Ada Lovelace (RPH-12) already approved this order at 2026-03-02 09:30:00 UTC" \
        in info["error"]
    assert len(store.unsent()) == 2  # one action's messages only
    # on the page too
    page = page_client(app, "RPH-13")
    stale = page.post(f"/queue/{flagged['event_id']}", data={
        "csrf": hidden(page.get("/queue").text, "csrf"), "action": "reject",
        "reason_code": "duplicate", **{k: str(v) for k, v in body.items()}})
    assert stale.status_code == 409
    assert "Ada Lovelace (RPH-12) already approved this order" in html.unescape(stale.text)


def test_api_writes_need_the_csrf_header_of_their_own_session(app, store, flagged):
    ada, _ = api_client(app, "RPH-12")
    _, grace_csrf = api_client(app, "RPH-13")
    body = {"decision_id": flagged["decision_id"], "version": 1, "action": "approve"}
    for headers in ({}, {"X-CSRF-Token": grace_csrf}, {"X-CSRF-Token": ""}):
        r = ada.post(f"/api/queue/{flagged['event_id']}/action", headers=headers, json=body)
        assert r.status_code == 403
    assert store.unsent() == []


def test_security_headers(app, flagged):
    c = page_client(app)
    for path in ("/login", "/queue", f"/queue/{flagged['event_id']}", "/api/queue"):
        h = c.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert h["x-frame-options"] == "DENY"
        assert h["cache-control"] == "no-store"
    page = c.get(f"/queue/{flagged['event_id']}").text
    assert "<script" not in page and " style=" not in page and "onclick" not in page
    cookie = c.cookies.jar
    session = [k for k in cookie if k.name == "rxgate_review_session"][0]
    assert session.has_nonstandard_attr("HttpOnly")


def test_sessions_end_after_inactivity_and_on_sign_out(app, clock, flagged):
    c = page_client(app)
    clock.advance(minutes=10)
    assert c.get("/queue", follow_redirects=False).status_code == 200
    clock.advance(minutes=16)
    assert c.get("/queue", follow_redirects=False).status_code == 303
    c = page_client(app)
    csrf = hidden(c.get("/queue").text, "csrf")
    assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert c.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert c.get("/api/queue").status_code == 401


def test_sign_in_is_rate_limited(app):
    c = TestClient(app)
    for _ in range(3):
        assert c.post("/api/login", json={"user_id": "RPH-12", "password": "x"}).status_code \
            == 401
    r = c.post("/api/login", json={"user_id": "RPH-12", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    form = c.get("/login")
    r = c.post("/login", data={"user_id": "RPH-12", "password": PASSWORD,
                               "csrf": hidden(form.text, "csrf")}, follow_redirects=False)
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text


def test_no_open_redirect_after_sign_in(app):
    c = TestClient(app)
    form = c.get("/login?next=//evil.example/x")
    assert hidden(form.text, "next") == "/queue"
    r = c.post("/login", follow_redirects=False, data={
        "user_id": "RPH-12", "password": PASSWORD, "csrf": hidden(form.text, "csrf"),
        "next": "https://evil.example/"})
    assert r.headers["location"] == "/queue"


def test_detail_without_the_order_event_still_explains_the_flag(app, store):
    d = decision()
    store.ingest_decision(d)
    c = page_client(app)
    page = c.get(f"/queue/{d['event_id']}")
    assert page.status_code == 200
    assert "has not been read by the review service" in page.text
    assert "1400 mg is 20.0 mg/kg for 70 kg" in page.text


def test_metrics_count_actions_by_kind_and_reason_without_ids(app, store, clock, flagged):
    c, csrf = api_client(app)
    clock.advance(minutes=5)
    r = c.post(f"/api/queue/{flagged['event_id']}/action", headers={"X-CSRF-Token": csrf},
               json={"decision_id": flagged["decision_id"], "version": 1, "action": "override",
                     "reason_code": "prescriber-confirmed", "note": "P-001 is fine"})
    assert r.status_code == 200
    store.ingest_decision(decision(severity="contraindicated"))
    text = c.get("/metrics").text
    assert 'rxgate_review_actions_total{action="override",reason="prescriber-confirmed"} 1.0' \
        in text
    assert 'rxgate_review_queue_depth{severity="contraindicated"} 1.0' in text
    assert 'rxgate_review_queue_depth{severity="major"} 0.0' in text
    assert "rxgate_review_decision_to_action_seconds_count 1.0" in text
    # 08:15:00.012 to 09:35: in the (3600, 7200] bucket
    assert 'rxgate_review_decision_to_action_seconds_bucket{le="3600.0"} 0.0' in text
    assert 'rxgate_review_decision_to_action_seconds_bucket{le="7200.0"} 1.0' in text
    oldest = float(re.search(r"^rxgate_review_oldest_pending_seconds (\S+)$", text, re.M)[1])
    assert oldest == pytest.approx(4800, abs=1)  # decided 08:15:00.012, now 09:35
    for secret in ("P-001", "ORD-1001", "RPH-12", flagged["decision_id"], flagged["event_id"]):
        assert secret not in text


def test_api_posts_must_be_json(app, flagged):
    c = TestClient(app)
    r = c.post("/api/login", content=f'{{"user_id": "RPH-12", "password": "{PASSWORD}"}}',
               headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "rxgate_review_session" not in r.cookies
    c, csrf = api_client(app)
    r = c.post(f"/api/queue/{flagged['event_id']}/action", headers={
        "X-CSRF-Token": csrf, "content-type": "text/plain"},
        content='{"decision_id": "x", "version": 1, "action": "approve"}')
    assert r.status_code == 415


def test_health_reports_the_store_and_kafka(app):
    r = TestClient(app).get("/healthz")
    assert r.status_code == 200 and r.json() == {"store": "ok", "kafka": "connected"}


def test_text_from_the_stream_is_escaped(app, store):
    d = decision(findings=[{"rule_id": "x.y", "category": "dose", "severity": "major",
                            "message": "<script>alert(1)</script>",
                            "evidence": {"note": "<img src=x onerror=alert(1)>"},
                            "reference": "<b>ref</b>"}])
    store.ingest_decision(d)
    c = page_client(app)
    for path in ("/queue", f"/queue/{d['event_id']}"):
        page = c.get(path).text
        assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
