"""Fixtures for the review service tests.

- `store`     a migrated store, once on SQLite (a file) and once on the real PostgreSQL server
              (127.0.0.1:5432, database `test`, a schema of the test's own)
- `pg_url`    that PostgreSQL URL; skipped when no server answers, but FAILS under CI
- `decision`, `order_event`  builders from the contract's examples

The PostgreSQL tests need the server running (.ci/run starts it); nothing here skips under CI.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest

from rxgate.review.db import make_engine, migrate
from rxgate.review.store import Store

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "contract" / "examples"
PG_USERS = ("postgres", "root")
PASSWORD = "correct horse battery staple"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def pg_base_url() -> str | None:
    """A postgresql:// URL to the `test` database that answers, or None."""
    import psycopg

    for user in PG_USERS:
        url = f"postgresql://{user}@127.0.0.1:5432/test"
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("select 1")
            return url
        except psycopg.Error:
            continue
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    url = pg_base_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 (database test) but CI is "
                        "set: the store would go untested on PostgreSQL. .ci/run starts it.",
                        pytrace=False)
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (database test)")
    return url


@pytest.fixture
def pg_url(pg_server):
    """A schema of this test's own in database `test`, dropped afterwards."""
    import psycopg

    schema = f"review_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    try:
        yield f"{pg_server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'drop schema "{schema}" cascade')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite3'}"
    return request.getfixturevalue("pg_url")


class Clock:
    """A settable clock for the store (sessions, rate limits, waiting times)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db_url, clock) -> Store:
    engine = make_engine(db_url)
    migrate(engine)
    yield Store(engine, clock=clock)
    engine.dispose()


def decision(**changes) -> dict:
    """The contract's flagged decision with changes; a fresh decision and event id by default."""
    d = copy.deepcopy(_example("decision-flagged.json"))
    d["event_id"] = changes.pop("event_id", str(uuid.uuid4()))
    d["decision_id"] = changes.pop("decision_id", str(uuid.uuid4()))
    d.update(changes)
    return d


def finding(rule_id: str, category: str, severity: str, message: str = "a finding",
            evidence: dict | None = None) -> dict:
    return {"rule_id": rule_id, "category": category, "severity": severity, "message": message,
            "evidence": evidence or {}, "reference": "test reference"}


def order_event(event_id: str, scheduled_for: str = "2026-03-02T09:00:00Z", **patient) -> dict:
    e = copy.deepcopy(_example("order-placed.json"))
    e["event_id"] = event_id
    e["order"]["scheduled_for"] = scheduled_for
    e["patient"].update(patient)
    return e
