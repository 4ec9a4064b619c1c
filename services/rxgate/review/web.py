"""The pharmacists' page and JSON API (FastAPI, Jinja2 templates, no JavaScript).

Pages                                   API (JSON; cookie session, X-CSRF-Token on POST)
  GET  /login, POST /login                POST /api/login {user_id, password} -> {csrf_token}
  POST /logout                            POST /api/logout
  GET  /queue?severity&category&drug&     GET  /api/queue?... (same filters, page)
       rule&waiting&status&page           GET  /api/queue/{event_id}
  GET  /queue/{event_id}                  POST /api/queue/{event_id}/action
  POST /queue/{event_id}                       {decision_id, version, action, reason_code, note}
  GET  /metrics, /healthz (store; Kafka)       200 review | 409 someone acted | 422 | 403 | 401

Security: sessions are random tokens (only their SHA-256 is stored) in an HttpOnly SameSite=Strict
cookie and end after RXGATE_REVIEW_SESSION_IDLE_MINUTES without a request; every form carries a
CSRF token (per session; a double-submit cookie for the sign-in form) and every API POST the
X-CSRF-Token header; failed sign-ins are rate-limited; nothing but /login, /static, /healthz and
/metrics answers a signed-out caller. Every response carries a Content-Security-Policy without
inline scripts, X-Frame-Options DENY and, for pages and API, Cache-Control: no-store.
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import math
import secrets
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import select

from ..contract import SEVERITY_ORDER, severity_rank
from .config import ReviewSettings
from .evidence import lay_out
from .metrics import ReviewMetrics
from .store import (PAGE_SIZE, REASONS, ActionRefused, Conflict, Detail, Filters,
                    LoginRefused, NotFound, Store)

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "rxgate_review_session"
LOGIN_CSRF_COOKIE = "rxgate_review_login_csrf"
CATEGORIES = ("dose", "interval", "combination", "contraindication", "data")
FLAGGED_SEVERITIES = tuple(reversed(SEVERITY_ORDER[1:]))  # most severe first
WAITING = {"": "any time", "1": "1 hour or more", "4": "4 hours or more",
           "24": "a day or more"}
STATUSES = {"pending": "waiting for review", "done": "reviewed", "all": "all"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")
PUBLIC = ("/login", "/static/", "/healthz", "/metrics", "/api/login")


def create_app(settings: ReviewSettings, store: Store, metrics: ReviewMetrics,
               poke_outbox: Callable[[], None] = lambda: None,
               ready: Callable[[], bool] = lambda: True) -> FastAPI:
    app = FastAPI(title="rxgate review", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(when=_when, waited=_waited, evidence=lay_out,
                                 severity_label=_severity_label,
                                 by_severity=_by_severity)
    templates.env.globals.update(reasons=REASONS, severities=FLAGGED_SEVERITIES,
                                 categories=CATEGORIES, waiting=WAITING, statuses=STATUSES)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    idle = dt.timedelta(minutes=settings.session_idle_minutes)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        h = response.headers
        h["Content-Security-Policy"] = CSP
        h["X-Frame-Options"] = "DENY"
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
            h["Pragma"] = "no-cache"
        return response

    def client(request: Request) -> str | None:
        return request.client.host if request.client else None

    def signed_in(request: Request):
        return store.session(request.cookies.get(SESSION_COOKIE), idle)

    def set_session_cookie(response: Response, token: str) -> None:
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.secure_cookies, path="/")

    def render(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    # --- health and metrics --------------------------------------------------------------

    @app.get("/healthz")
    def healthz():
        """200 while the store answers: pharmacists can work (actions wait in the outbox while
        Kafka is away; RxgateReviewOutboxStuck alerts). `kafka` says whether both the ingest
        and the publisher are connected."""
        kafka = "connected" if ready() else "connecting"
        try:
            with store.engine.connect() as conn:
                conn.execute(select(1))
        except Exception:
            return JSONResponse({"store": "unreachable", "kafka": kafka}, status_code=503)
        return JSONResponse({"store": "ok", "kafka": kafka})

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # --- sign-in -------------------------------------------------------------------------

    @app.get("/")
    def root():
        return RedirectResponse("/queue", status_code=303)

    def login_page(request: Request, message: str | None = None, status: int = 200,
                   user_id: str = "", next_url: str = "/queue") -> HTMLResponse:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = render(request, "login.html", {"csrf": token, "message": message,
                                                  "user_id": user_id, "next": next_url,
                                                  "user": None}, status)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=settings.secure_cookies, path="/login")
        return response

    @app.get("/login")
    def login_form(request: Request, next: str = "/queue"):
        return login_page(request, next_url=_safe_next(next))

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        user_id = str(form.get("user_id", ""))
        next_url = _safe_next(str(form.get("next", "/queue")))
        if not _same(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
            return login_page(request, "The sign-in form expired; please sign in again.", 403,
                              user_id, next_url)
        try:
            token, _, user = await run_in_threadpool(
                store.sign_in, user_id, str(form.get("password", "")), client(request),
                settings.login_attempts)
        except LoginRefused as e:
            metrics.login_failures.inc()
            response = login_page(request, str(e), 429 if e.retry_after else 401, user_id,
                                  next_url)
            if e.retry_after:
                response.headers["Retry-After"] = str(e.retry_after)
            return response
        response = RedirectResponse(next_url, status_code=303)
        set_session_cookie(response, token)
        return response

    @app.post("/logout")
    async def logout(request: Request):
        found = signed_in(request)
        form = await request.form()
        if found is not None:
            if not _same(found[0].csrf_token, form.get("csrf")):
                return PlainTextResponse("CSRF token missing or wrong", status_code=403)
            store.sign_out(request.cookies.get(SESSION_COOKIE), client(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- pages ---------------------------------------------------------------------------

    @app.get("/queue")
    def queue_page(request: Request):
        found = signed_in(request)
        if found is None:
            return to_login(request)
        session, user = found
        filters, page, chosen = _filters(request)
        rows, total = store.queue(filters, page)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        acted = None
        if request.query_params.get("acted"):
            try:
                acted = store.detail(request.query_params["acted"])
            except NotFound:
                acted = None
        query = {k: v for k, v in chosen.items() if v}
        return render(request, "queue.html", {
            "user": user, "csrf": session.csrf_token, "rows": rows, "total": total,
            "page": page, "pages": pages, "chosen": chosen, "facets": store.facets(),
            "now": store.clock(), "acted": acted,
            "prev_url": "/queue?" + urlencode({**query, "page": page - 1}) if page > 1 else None,
            "next_url": "/queue?" + urlencode({**query, "page": page + 1}) if page < pages
            else None})

    def detail_page(request: Request, user, csrf: str, event_id: str, status: int = 200,
                    message: str | None = None, conflict: Conflict | None = None,
                    form: dict | None = None) -> HTMLResponse:
        detail = store.detail(event_id)
        return render(request, "detail.html", {
            "user": user, "csrf": csrf, "d": detail, "e": detail.entry, "now": store.clock(),
            "message": message, "conflict": conflict, "form": form or {},
            "age": _age(detail.order)}, status)

    @app.get("/queue/{event_id}")
    def detail_view(request: Request, event_id: str):
        found = signed_in(request)
        if found is None:
            return to_login(request)
        try:
            return detail_page(request, found[1], found[0].csrf_token, event_id)
        except NotFound:
            return PlainTextResponse("No such queue entry", status_code=404)

    @app.post("/queue/{event_id}")
    async def act_from_page(request: Request, event_id: str):
        found = signed_in(request)
        if found is None:
            return to_login(request)
        session, user = found
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not _same(session.csrf_token, form.get("csrf")):
            return PlainTextResponse("CSRF token missing or wrong: reload the page and try "
                                     "again", status_code=403)
        try:
            version = int(form.get("version", ""))
        except ValueError:
            version = -1
        try:
            review = await run_in_threadpool(
                lambda: store.act(event_id, decision_id=form.get("decision_id", ""),
                               version=version, action=form.get("action", ""),
                               reason_code=form.get("reason_code"), note=form.get("note"),
                               user_id=user.user_id, client=client(request)))
        except NotFound:
            return PlainTextResponse("No such queue entry", status_code=404)
        except ActionRefused as e:
            return detail_page(request, user, session.csrf_token, event_id, 422, str(e),
                               form=form)
        except Conflict as e:
            metrics.conflicts.inc()
            return detail_page(request, user, session.csrf_token, event_id, 409, str(e),
                               conflict=e)
        _count(review)
        return RedirectResponse("/queue?" + urlencode({"acted": event_id}), status_code=303)

    def _count(review) -> None:
        action, code, decided_at = store.action_kinds(review.review_id)
        metrics.action_taken(action, code, decided_at, review.acted_at)
        poke_outbox()

    # --- API -----------------------------------------------------------------------------

    def api_user(request: Request, write: bool):
        found = signed_in(request)
        if found is None:
            return None, JSONResponse({"error": "sign in first"}, status_code=401)
        if write and not _same(found[0].csrf_token, request.headers.get("x-csrf-token")):
            return None, JSONResponse({"error": "X-CSRF-Token header missing or wrong"},
                                      status_code=403)
        return found, None

    @app.post("/api/login")
    async def api_login(request: Request):
        if not _is_json(request):  # a cross-site form cannot send application/json
            return JSONResponse({"error": "send application/json"}, status_code=415)
        try:
            body = await request.json()
            user_id, password = str(body["user_id"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {\"user_id\": ..., \"password\": ...}"},
                                status_code=422)
        try:
            token, csrf, user = await run_in_threadpool(
                store.sign_in, user_id, password, client(request), settings.login_attempts)
        except LoginRefused as e:
            metrics.login_failures.inc()
            headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
            return JSONResponse({"error": str(e)}, status_code=429 if e.retry_after else 401,
                                headers=headers)
        response = JSONResponse({"user_id": user.user_id, "name": user.name,
                                 "csrf_token": csrf})
        set_session_cookie(response, token)
        return response

    @app.post("/api/logout")
    def api_logout(request: Request):
        found, refused = api_user(request, write=True)
        if refused:
            return refused
        store.sign_out(request.cookies.get(SESSION_COOKIE), client(request))
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/api/queue")
    def api_queue(request: Request):
        found, refused = api_user(request, write=False)
        if refused:
            return refused
        filters, page, _ = _filters(request)
        rows, total = store.queue(filters, page)
        return {"total": total, "page": page, "per_page": PAGE_SIZE,
                "entries": [_entry_json(r.entry, r.order, store.clock()) for r in rows]}

    @app.get("/api/queue/{event_id}")
    def api_detail(request: Request, event_id: str):
        found, refused = api_user(request, write=False)
        if refused:
            return refused
        try:
            d = store.detail(event_id)
        except NotFound:
            return JSONResponse({"error": "no such queue entry"}, status_code=404)
        return _detail_json(d, store.clock())

    @app.post("/api/queue/{event_id}/action")
    async def api_act(request: Request, event_id: str):
        found, refused = api_user(request, write=True)
        if refused:
            return refused
        user = found[1]
        if not _is_json(request):
            return JSONResponse({"error": "send application/json"}, status_code=415)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError
            version = int(body.get("version"))
        except (ValueError, TypeError):
            return JSONResponse({"error": "expected a JSON object with decision_id, version, "
                                 "action, reason_code, note"}, status_code=422)
        try:
            review = await run_in_threadpool(
                lambda: store.act(event_id, decision_id=str(body.get("decision_id", "")),
                               version=version, action=str(body.get("action", "")),
                               reason_code=body.get("reason_code"), note=body.get("note"),
                               user_id=user.user_id, client=client(request)))
        except NotFound:
            return JSONResponse({"error": "no such queue entry"}, status_code=404)
        except ActionRefused as e:
            return JSONResponse({"error": str(e)}, status_code=422)
        except Conflict as e:
            metrics.conflicts.inc()
            return JSONResponse({"error": str(e), "acted_by": e.acted_by,
                                 "acted_by_name": e.acted_by_name,
                                 "acted_at": e.acted_at.isoformat() if e.acted_at else None,
                                 "action": e.action}, status_code=409)
        _count(review)
        return {"review_id": review.review_id, "decision_id": review.decision_id,
                "action": review.action, "reason": review.reason,
                "pharmacist_id": review.pharmacist_id, "acted_at": review.acted_at.isoformat()}

    return app


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def _same(expected: str | None, given: Any) -> bool:
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected, given)


def _safe_next(target: str) -> str:
    """Only a path on this site (no //host, no scheme): an open redirect otherwise."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


def _filters(request: Request) -> tuple[Filters, int, dict[str, str]]:
    q = request.query_params
    chosen = {k: (q.get(k) or "").strip() for k in
              ("severity", "category", "drug", "rule", "waiting", "status")}
    if chosen["severity"] not in FLAGGED_SEVERITIES:
        chosen["severity"] = ""
    if chosen["category"] not in CATEGORIES:
        chosen["category"] = ""
    if chosen["waiting"] not in WAITING:
        chosen["waiting"] = ""
    if chosen["status"] not in STATUSES:
        chosen["status"] = "pending"
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    f = Filters(severity=chosen["severity"] or None, category=chosen["category"] or None,
                drug=chosen["drug"] or None, rule=chosen["rule"] or None,
                waiting_hours=float(chosen["waiting"]) if chosen["waiting"] else None,
                status=chosen["status"])
    return f, page, chosen


def _entry_json(e, order: dict | None, now: dt.datetime) -> dict:
    o = (order or {}).get("order") or {}
    return {"event_id": e.event_id, "decision_id": e.decision_id, "version": e.version,
            "order_id": e.order_id, "patient_id": e.patient_id, "drug": e.drug,
            "dose": o.get("dose"), "route": o.get("route"),
            "scheduled_for": e.scheduled_for.isoformat() if e.scheduled_for else None,
            "severity": e.severity, "worst_finding": e.worst_message,
            "waiting_seconds": int((now - e.first_decided_at).total_seconds()),
            "redecided": e.decisions_seen > 1, "status": e.status, "acted_by": e.acted_by,
            "acted_at": e.acted_at.isoformat() if e.acted_at else None}


def _detail_json(d: Detail, now: dt.datetime) -> dict:
    return {**_entry_json(d.entry, d.order, now), "decision": d.decision,
            "order_event": d.order,
            "order_cancelled_at": d.order_cancelled_at.isoformat() if d.order_cancelled_at
            else None,
            "decisions_for_this_order": [
                {"decision_id": x.decision_id, "outcome": x.outcome, "severity": x.severity,
                 "knowledge_version": x.knowledge_version, "decided_at": x.decided_at.isoformat()}
                for x in d.decisions_for_event],
            "earlier_decisions_same_drug": [
                {"decision_id": x.decision_id, "order_id": x.order_id, "outcome": x.outcome,
                 "severity": x.severity, "decided_at": x.decided_at.isoformat()}
                for x in d.earlier],
            "review": None if d.review is None else {
                "review_id": d.review.review_id, "action": d.review.action,
                "reason": d.review.reason, "pharmacist_id": d.review.pharmacist_id,
                "acted_at": d.review.acted_at.isoformat()}}


def _when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "not known"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _waited(since: dt.datetime, now: dt.datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} days {hours % 24} h"


def _severity_label(severity: str) -> str:
    return {"contraindicated": "Contraindicated", "major": "Major", "warning": "Warning",
            "info": "Info", "none": "None"}.get(severity, severity)


def _age(event: dict | None) -> int | None:
    """The patient's age in whole years on the day the dose is due."""
    try:
        born = dt.date.fromisoformat(event["patient"]["birth_date"])
        due = dt.datetime.fromisoformat(
            event["order"]["scheduled_for"].replace("Z", "+00:00")).date()
    except (TypeError, KeyError, ValueError):
        return None
    return due.year - born.year - ((due.month, due.day) < (born.month, born.day))


def _by_severity(findings: list[dict]) -> list[dict]:
    return sorted(findings, key=lambda f: -severity_rank(f.get("severity", "info")))
