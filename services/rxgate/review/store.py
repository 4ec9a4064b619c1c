"""Every read and write of the review store. One transaction per call; no SQL strings.

Idempotence: a decision is stored once per `decision_id`; the queue has one entry per order
event (`event_id`), so a later decision for the same event (another knowledge version) is a
re-decision of that entry, not a second one. Each read record advances the stored position of
its partition in the same transaction, so a restart resumes exactly where the store stands.

Exactly-once output: an action updates its entry (optimistic lock on `version`), writes the
review, two outbox rows (the review, then the verified decision) and an audit row in ONE
transaction; outbox.py publishes the rows and marks them sent after the broker's ack.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError
from sqlalchemy import Engine, and_, delete, exists, func, select, update
from sqlalchemy.orm import Session as DBSession, sessionmaker

from ..contract import (Decision, Review, VerifiedDecision, parse_order_event, severity_rank,
                        to_json)
from .config import APPROVED_TOPIC, FLAGGED_TOPIC, ORDERS_TOPIC, REVIEWS_TOPIC, VERIFIED_TOPIC
from .models import (Audit, ConsumerPosition, DecisionRow, Entry, FindingRow, OrderEvent,
                     Outbox, ReviewRow, Session, User)

REVIEW_NAMESPACE = uuid.UUID("5b0e7f5c-9c7e-4d0e-9a51-7d8f6a0c2b11")

APPROVE, OVERRIDE, REJECT = "approve", "override", "reject"
ACTIONS = (APPROVE, OVERRIDE, REJECT)
STATUS_OF = {APPROVE: "approved", OVERRIDE: "overridden", REJECT: "rejected"}
FINAL_OF = {APPROVE: "approved", OVERRIDE: "approved", REJECT: "rejected"}
OTHER = "other"
REASONS: dict[str, dict[str, str]] = {
    OVERRIDE: {
        "prescriber-confirmed": "Confirmed with the prescriber",
        "clinically-justified": "Clinically justified for this patient",
        "data-outdated": "The finding rests on outdated or wrong patient data",
        OTHER: "Other (explain in the note)",
    },
    REJECT: {
        "dose-or-schedule-wrong": "Dose or schedule wrong: the prescriber must re-order",
        "contraindicated": "Contraindicated for this patient",
        "duplicate": "Duplicate order",
        "awaiting-data": "Awaiting labs or patient data",
        OTHER: "Other (explain in the note)",
    },
}
LOGIN_WINDOW = dt.timedelta(minutes=15)
PAGE_SIZE = 50

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ActionRefused(ValueError):
    """The action is malformed (unknown action, missing reason): 422."""


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    """Someone acted first, or the decision changed since it was shown: 409."""

    def __init__(self, message: str, acted_by: str | None = None, acted_by_name: str | None = None,
                 acted_at: dt.datetime | None = None, action: str | None = None) -> None:
        super().__init__(message)
        self.acted_by, self.acted_by_name = acted_by, acted_by_name
        self.acted_at, self.action = acted_at, action


class LoginRefused(PermissionError):
    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Filters:
    severity: str | None = None
    category: str | None = None
    drug: str | None = None
    rule: str | None = None
    waiting_hours: float | None = None  # waited at least this long
    status: str = "pending"  # pending, done or all


@dataclass
class QueueRow:
    entry: Entry
    order: dict | None  # the order.placed event, when read


@dataclass
class Detail:
    entry: Entry
    decision: dict
    order: dict | None
    order_cancelled_at: dt.datetime | None
    decisions_for_event: list[DecisionRow]  # all decisions of this order event, newest first
    earlier: list[DecisionRow]  # the patient's decisions for the same drug, other orders
    review: ReviewRow | None
    acted_by_name: str | None


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def review_id_for(decision_id: str) -> str:
    """One decision, one review id: a second action could never be told apart otherwise."""
    return str(uuid.uuid5(REVIEW_NAMESPACE, decision_id))


class Store:
    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def tx(self) -> DBSession:
        return self._sessions.begin()

    # --- ingest --------------------------------------------------------------------------

    def positions(self) -> dict[tuple[str, int], int]:
        with self._sessions() as s:
            return {(p.topic, p.partition): p.next_offset
                    for p in s.scalars(select(ConsumerPosition))}

    def ingest(self, records: Iterable[Record]) -> dict[str, int]:
        """Store what the records carry and advance their partitions' positions, atomically.
        Returns counts: decisions (new), redecisions, duplicates, orders, ignored."""
        counts = {"decisions": 0, "redecisions": 0, "duplicates": 0, "orders": 0, "ignored": 0}
        now = self.clock()
        with self.tx() as s:
            ends: dict[tuple[str, int], int] = {}
            for r in records:
                if r.topic == ORDERS_TOPIC:
                    counts["orders" if self._ingest_order(s, r.value, now) else "ignored"] += 1
                elif r.topic in (FLAGGED_TOPIC, APPROVED_TOPIC):
                    counts[self._ingest_decision(s, r.value, now)] += 1
                key = (r.topic, r.partition)
                ends[key] = max(ends.get(key, 0), r.offset + 1)
            for (topic, partition), end in ends.items():
                pos = s.get(ConsumerPosition, (topic, partition))
                if pos is None:
                    s.add(ConsumerPosition(topic=topic, partition=partition, next_offset=end))
                elif end > pos.next_offset:
                    pos.next_offset = end
        return counts

    def ingest_decision(self, decision: Decision | dict | str) -> str:
        """One decision outside the consumer (tests, tools); returns what became of it."""
        text = decision if isinstance(decision, str) else (
            to_json(decision) if isinstance(decision, Decision) else json.dumps(decision))
        with self.tx() as s:
            return self._ingest_decision(s, text.encode(), self.clock())

    def ingest_order(self, event: dict | str) -> bool:
        text = event if isinstance(event, str) else json.dumps(event)
        with self.tx() as s:
            return self._ingest_order(s, text.encode(), self.clock())

    def _ingest_order(self, s: DBSession, value: bytes | None, now: dt.datetime) -> bool:
        try:
            event = parse_order_event((value or b"").decode("utf-8"))
        except (ValidationError, UnicodeDecodeError, ValueError):
            return False  # the worker dead-letters it; nothing for the queue
        if event.event_type == "order.cancelled":
            s.execute(update(OrderEvent)
                      .where(OrderEvent.order_id == event.order.order_id,
                             OrderEvent.patient_id == event.patient.patient_id,
                             OrderEvent.cancelled_at.is_(None))
                      .values(cancelled_at=event.occurred_at))
            return True
        if s.get(OrderEvent, event.event_id) is not None:
            return True
        s.add(OrderEvent(event_id=event.event_id, order_id=event.order.order_id,
                         patient_id=event.patient.patient_id,
                         scheduled_for=event.order.scheduled_for,
                         payload=value.decode("utf-8"), received_at=now))
        s.execute(update(Entry).where(Entry.event_id == event.event_id)
                  .values(scheduled_for=event.order.scheduled_for))
        return True

    def _ingest_decision(self, s: DBSession, value: bytes | None, now: dt.datetime) -> str:
        try:
            raw = json.loads(value or b"")
            known = {f.alias or name for name, f in Decision.model_fields.items()}
            decision = Decision.model_validate({k: v for k, v in raw.items() if k in known})
        except (ValueError, ValidationError, AttributeError, TypeError):
            return "ignored"
        if s.get(DecisionRow, decision.decision_id) is not None:
            return "duplicates"
        s.add(DecisionRow(decision_id=decision.decision_id, event_id=decision.event_id,
                          order_id=decision.order_id, patient_id=decision.patient_id,
                          drug=decision.drug, outcome=decision.outcome,
                          severity=decision.severity,
                          knowledge_version=decision.knowledge_version,
                          decided_at=decision.decided_at, payload=to_json(decision),
                          received_at=now))
        for f in decision.findings:
            s.add(FindingRow(decision_id=decision.decision_id, rule_id=f.rule_id,
                             category=f.category, severity=f.severity))
        s.flush()
        entry = s.get(Entry, decision.event_id)
        if entry is None:
            if decision.outcome != "flagged":
                return "decisions"
            order = s.get(OrderEvent, decision.event_id)
            s.add(Entry(event_id=decision.event_id, decision_id=decision.decision_id,
                        order_id=decision.order_id, patient_id=decision.patient_id,
                        drug=decision.drug, severity=decision.severity,
                        severity_rank=severity_rank(decision.severity),
                        worst_message=_worst_message(decision),
                        scheduled_for=order.scheduled_for if order else None,
                        first_decided_at=decision.decided_at, decided_at=decision.decided_at,
                        decisions_seen=1, status="pending", version=1))
            return "decisions"
        # a re-decision of an order event already in the queue (another knowledge version)
        entry.decisions_seen += 1
        if (entry.status == "pending" and decision.outcome == "flagged"
                and decision.decided_at >= entry.decided_at):
            entry.decision_id = decision.decision_id
            entry.severity = decision.severity
            entry.severity_rank = severity_rank(decision.severity)
            entry.worst_message = _worst_message(decision)
            entry.decided_at = decision.decided_at
            entry.version += 1  # a pharmacist looking at the older decision must look again
        return "redecisions"

    # --- the queue -----------------------------------------------------------------------

    def _filtered(self, f: Filters):
        q = select(Entry)
        if f.status == "pending":
            q = q.where(Entry.status == "pending")
        elif f.status == "done":
            q = q.where(Entry.status != "pending")
        if f.severity:
            q = q.where(Entry.severity == f.severity)
        if f.drug:
            q = q.where(func.lower(Entry.drug) == f.drug.lower())
        for column, value in ((FindingRow.category, f.category), (FindingRow.rule_id, f.rule)):
            if value:
                q = q.where(exists().where(and_(FindingRow.decision_id == Entry.decision_id,
                                                column == value)))
        if f.waiting_hours:
            q = q.where(Entry.first_decided_at
                        <= self.clock() - dt.timedelta(hours=f.waiting_hours))
        return q

    def queue(self, f: Filters = Filters(), page: int = 1,
              per_page: int = PAGE_SIZE) -> tuple[list[QueueRow], int]:
        """Most severe first; within a severity the dose due soonest (unknown due times last)."""
        with self._sessions() as s:
            q = self._filtered(f)
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            q = (q.add_columns(OrderEvent.payload)
                 .outerjoin(OrderEvent, OrderEvent.event_id == Entry.event_id)
                 .order_by(Entry.severity_rank.desc(), Entry.scheduled_for.is_(None),
                           Entry.scheduled_for, Entry.first_decided_at, Entry.event_id)
                 .limit(per_page).offset(max(page - 1, 0) * per_page))
            rows = [QueueRow(entry, json.loads(payload) if payload else None)
                    for entry, payload in s.execute(q)]
            return rows, total or 0

    def facets(self) -> dict[str, list[str]]:
        """Values the filters offer: the drugs and rules present among pending entries."""
        with self._sessions() as s:
            drugs = s.scalars(select(Entry.drug).where(Entry.status == "pending")
                              .distinct().order_by(Entry.drug)).all()
            rules = s.scalars(select(FindingRow.rule_id)
                              .join(Entry, Entry.decision_id == FindingRow.decision_id)
                              .where(Entry.status == "pending")
                              .distinct().order_by(FindingRow.rule_id)).all()
            return {"drugs": list(drugs), "rules": list(rules)}

    def detail(self, event_id: str) -> Detail:
        with self._sessions() as s:
            entry = s.get(Entry, event_id)
            if entry is None:
                raise NotFound(event_id)
            decision = s.get(DecisionRow, entry.decision_id)
            order = s.get(OrderEvent, event_id)
            for_event = s.scalars(select(DecisionRow).where(DecisionRow.event_id == event_id)
                                  .order_by(DecisionRow.decided_at.desc())).all()
            earlier = s.scalars(select(DecisionRow)
                                .where(DecisionRow.patient_id == entry.patient_id,
                                       func.lower(DecisionRow.drug) == entry.drug.lower(),
                                       DecisionRow.event_id != event_id)
                                .order_by(DecisionRow.decided_at.desc()).limit(50)).all()
            review = s.scalar(select(ReviewRow).where(ReviewRow.event_id == event_id))
            name = None
            if entry.acted_by:
                user = s.get(User, entry.acted_by)
                name = user.name if user else None
            return Detail(entry, json.loads(decision.payload),
                          json.loads(order.payload) if order else None,
                          order.cancelled_at if order else None, list(for_event), list(earlier),
                          review, name)

    def pending_counts(self) -> tuple[dict[str, int], dt.datetime | None]:
        """Pending entries by severity, and when the longest-waiting one entered the queue."""
        with self._sessions() as s:
            counts = dict(s.execute(select(Entry.severity, func.count())
                                    .where(Entry.status == "pending")
                                    .group_by(Entry.severity)).all())
            oldest = s.scalar(select(func.min(Entry.first_decided_at))
                              .where(Entry.status == "pending"))
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=dt.timezone.utc)
            return counts, oldest

    # --- actions -------------------------------------------------------------------------

    def act(self, event_id: str, *, decision_id: str, version: int, action: str,
            reason_code: str | None, note: str | None, user_id: str,
            client: str | None = None) -> ReviewRow:
        """Record a pharmacist's action and its two outbox messages, or raise Conflict."""
        action = (action or "").strip().lower()
        if action not in ACTIONS:
            raise ActionRefused(f"unknown action {action!r}: approve, override or reject")
        note = (note or "").strip() or None
        reason = _reason(action, (reason_code or "").strip() or None, note)
        now = self.clock()
        with self.tx() as s:
            entry = s.get(Entry, event_id)
            if entry is None:
                raise NotFound(event_id)
            changed = s.execute(
                update(Entry)
                .where(Entry.event_id == event_id, Entry.version == version,
                       Entry.decision_id == decision_id, Entry.status == "pending")
                .values(status=STATUS_OF[action], version=Entry.version + 1,
                        review_id=review_id_for(decision_id), acted_by=user_id, acted_at=now)
                .execution_options(synchronize_session=False)).rowcount
            if changed != 1:
                s.rollback()
                raise self._conflict(event_id)
            decision = s.get(DecisionRow, decision_id)
            review = Review.model_validate({
                "schema": "rx.review/1", "review_id": review_id_for(decision_id),
                "decision_id": decision_id, "event_id": decision.event_id,
                "order_id": decision.order_id, "patient_id": decision.patient_id,
                "action": action, "reason": reason, "pharmacist_id": user_id,
                "acted_at": now}, strict=False)
            verified = VerifiedDecision(
                decision_id=decision_id, event_id=decision.event_id, order_id=decision.order_id,
                patient_id=decision.patient_id, final=FINAL_OF[action],
                review_id=review.review_id, pharmacist_id=user_id, verified_at=now)
            row = ReviewRow(review_id=review.review_id, decision_id=decision_id,
                            event_id=decision.event_id, action=action,
                            reason_code=reason_code if action != APPROVE else None,
                            reason=reason, pharmacist_id=user_id, acted_at=now)
            s.add(row)
            for topic, message in ((REVIEWS_TOPIC, review), (VERIFIED_TOPIC, verified)):
                s.add(Outbox(review_id=review.review_id, topic=topic, key=decision.patient_id,
                             payload=to_json(message), created_at=now))
            s.add(Audit(at=now, kind="action", user_id=user_id, client=client,
                        decision_id=decision_id, event_id=decision.event_id,
                        detail=json.dumps({"action": action, "reason": reason,
                                           "review_id": review.review_id})))
        return row

    def _conflict(self, event_id: str) -> Conflict:
        with self._sessions() as s:
            entry = s.get(Entry, event_id)
            if entry.status != "pending":
                user = s.get(User, entry.acted_by) if entry.acted_by else None
                name = user.name if user else entry.acted_by
                when = entry.acted_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                return Conflict(f"{name} ({entry.acted_by}) already {entry.status} this order "
                                f"at {when}.", entry.acted_by, name, entry.acted_at,
                                entry.status)
            return Conflict("This order was re-decided (or changed) after you opened it; "
                            "review the current decision and act again.")

    def action_kinds(self, review_id: str) -> tuple[str, str | None, dt.datetime]:
        """(action, reason code, decided_at of the decision acted on): for the metrics."""
        with self._sessions() as s:
            review = s.get(ReviewRow, review_id)
            decision = s.get(DecisionRow, review.decision_id)
            return review.action, review.reason_code, decision.decided_at

    # --- outbox --------------------------------------------------------------------------

    def unsent(self, limit: int = 100) -> list[Outbox]:
        with self._sessions() as s:
            return list(s.scalars(select(Outbox).where(Outbox.sent_at.is_(None))
                                  .order_by(Outbox.id).limit(limit)))

    def mark_sent(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            with self.tx() as s:
                s.execute(update(Outbox).where(Outbox.id.in_(ids), Outbox.sent_at.is_(None))
                          .values(sent_at=self.clock()))

    @contextlib.contextmanager
    def publisher_lock(self) -> Iterator[bool]:
        """Whether this process may publish the outbox: True for one holder per store at a
        time, held until the block ends or the process dies."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                # one key per schema: stores in other schemas of the database do not contend
                schema = conn.execute(select(func.current_schema())).scalar() or ""
                key = int.from_bytes(hashlib.sha256(
                    f"rxgate-review-outbox:{schema}".encode()).digest()[:8], "big", signed=True)
                held = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar())
                conn.commit()
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(select(func.pg_advisory_unlock(key)))
                        conn.commit()
            return
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield True
            return
        with open(f"{database}.publisher.lock", "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def outbox_backlog(self) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(Outbox)
                            .where(Outbox.sent_at.is_(None))) or 0

    # --- users, sessions, audit ----------------------------------------------------------

    def add_user(self, user_id: str, name: str, password: str, replace: bool = False) -> None:
        user_id, name = user_id.strip(), name.strip()
        if not user_id or not name:
            raise ValueError("a user id and a name are needed")
        if len(password) < 10:
            raise ValueError("the password must have at least 10 characters")
        now = self.clock()
        with self.tx() as s:
            user = s.get(User, user_id)
            if user is not None and not replace:
                raise ValueError(f"user {user_id} exists (use --reset-password to change it)")
            if user is None:
                user = User(user_id=user_id, created_at=now, active=True)
                s.add(user)
            user.name, user.password_hash, user.active = name, _hasher.hash(password), True
            s.execute(delete(Session).where(Session.user_id == user_id))
            s.add(Audit(at=now, kind="user_password_set" if replace else "user_added",
                        user_id=user_id))

    def sign_in(self, user_id: str, password: str, client: str | None,
                limit: int = 5) -> tuple[str, str, User]:
        """(session token, csrf token, user), or LoginRefused (wrong, or rate-limited)."""
        now = self.clock()
        user_id = (user_id or "").strip()
        since = now - LOGIN_WINDOW
        with self._sessions() as s:
            by_user = s.scalar(select(func.count()).select_from(Audit).where(
                Audit.kind == "login_failed", Audit.user_id == user_id, Audit.at > since))
            by_client = s.scalar(select(func.count()).select_from(Audit).where(
                Audit.kind == "login_failed", Audit.client == client, Audit.at > since))
            if by_user >= limit or (client and by_client >= 4 * limit):
                raise LoginRefused("Too many failed sign-ins; wait 15 minutes or ask an "
                                   "administrator.", retry_after=int(LOGIN_WINDOW.total_seconds()))
            user = s.get(User, user_id)
        ok = False
        try:
            ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
        except (VerificationError, InvalidHashError):
            ok = False
        ok = ok and user is not None and user.active
        with self.tx() as s:
            if not ok:
                s.add(Audit(at=now, kind="login_failed", user_id=user_id[:64], client=client))
            else:
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                s.add(Session(token_hash=hash_token(token), user_id=user.user_id,
                              csrf_token=csrf, created_at=now, last_seen_at=now))
                s.add(Audit(at=now, kind="login", user_id=user.user_id, client=client))
                if _hasher.check_needs_rehash(user.password_hash):
                    s.execute(update(User).where(User.user_id == user.user_id)
                              .values(password_hash=_hasher.hash(password)))
        if not ok:
            raise LoginRefused("Unknown user or wrong password.")
        return token, csrf, user

    def session(self, token: str | None, idle: dt.timedelta) -> tuple[Session, User] | None:
        """The live session of a cookie, touched; None when unknown or idle too long."""
        if not token:
            return None
        now = self.clock()
        with self.tx() as s:
            found = s.get(Session, hash_token(token))
            if found is None:
                return None
            if now - found.last_seen_at > idle:
                s.delete(found)
                s.add(Audit(at=now, kind="session_expired", user_id=found.user_id))
                # and every other session idle as long (abandoned without signing out)
                s.execute(delete(Session).where(Session.last_seen_at < now - idle))
                return None
            user = s.get(User, found.user_id)
            if user is None or not user.active:
                return None
            found.last_seen_at = now
            return found, user

    def sign_out(self, token: str | None, client: str | None = None) -> None:
        if not token:
            return
        with self.tx() as s:
            found = s.get(Session, hash_token(token))
            if found is not None:
                s.add(Audit(at=self.clock(), kind="logout", user_id=found.user_id,
                            client=client))
                s.delete(found)

    def audit_rows(self, kind: str | None = None) -> list[Audit]:
        with self._sessions() as s:
            q = select(Audit).order_by(Audit.id)
            if kind:
                q = q.where(Audit.kind == kind)
            return list(s.scalars(q))


def _worst_message(decision: Decision) -> str:
    if not decision.findings:
        return "(no findings)"
    worst = max(decision.findings, key=lambda f: severity_rank(f.severity))
    return worst.message


def _reason(action: str, code: str | None, note: str | None) -> str | None:
    """The reason as published: the standard reason's words, then the pharmacist's note."""
    if action == APPROVE:
        return note
    reasons = REASONS[action]
    if code is None:
        raise ActionRefused(f"a reason is required to {action}: choose one of "
                            + ", ".join(reasons))
    if code not in reasons:
        raise ActionRefused(f"unknown reason {code!r} for {action}: " + ", ".join(reasons))
    if code == OTHER:
        if not note:
            raise ActionRefused("explain the reason in the note when choosing 'other'")
        return note
    return f"{reasons[code]}: {note}" if note else reasons[code]


def reason_code_of(code: str | None) -> str:
    """A metric label value: a standard reason code, 'none' or 'other' (never free text)."""
    if not code:
        return "none"
    for reasons in REASONS.values():
        if code in reasons:
            return code
    return OTHER
