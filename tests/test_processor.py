"""The sans-I/O processor: classification, dedupe, history, and serialisable state."""
from __future__ import annotations

import datetime as dt
import json

from rxgate.contract import FileSource, TopicSource, parse_order_event
from rxgate.decide import decision_id_for
from rxgate.history import PatientHistory
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor

NOW = dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.timezone.utc)
K = load_knowledge()


def feed(processor, *docs):
    out = []
    for i, d in enumerate(docs, 1):
        raw = d if isinstance(d, bytes) else json.dumps(d).encode()
        out.append(processor.handle(raw, FileSource(file="t", line=i), NOW))
    return out


class JsonRoundTripStore(DictHistoryStore):
    """Stores histories as the faust table does: through to_dict / from_dict and JSON."""

    def get(self, patient_id):
        raw = self.histories.get(patient_id)
        return PatientHistory.from_dict(json.loads(raw)) if raw else None

    def put(self, patient_id, history):
        self.histories[patient_id] = json.dumps(history.to_dict())


def week(doc, n, **order):
    d = json.loads(json.dumps(doc))
    d["event_id"] = f"e-{n}"
    d["order"]["order_id"] = f"ORD-{n}"
    d["order"]["scheduled_for"] = (dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)
                                   + dt.timedelta(days=7 * n)).isoformat()
    d["order"]["regimen"] = None
    d["order"].update(order)
    return d


def test_kinds_and_keys(placed, cancelled):
    p = Processor(K, DictHistoryStore())
    h = feed(p, placed, placed, cancelled, b"[]")
    assert [x.kind for x in h] == ["decision", "duplicate", "cancelled", "invalid"]
    assert [len(x.outputs) for x in h] == [1, 0, 0, 1]
    assert h[0].patient_id == "P-001" and h[3].patient_id is None


def test_topic_origin_is_carried_into_the_dead_letter():
    p = Processor(K, DictHistoryStore())
    origin = TopicSource(topic="rx.orders.v1", partition=2, offset=41, key="P-9")
    (letter,) = p.handle(b"nope", origin, NOW).outputs
    assert letter.source == origin and letter.error.kind == "json"


def test_state_survives_serialisation_exactly(placed):
    """A history that went through JSON (as in a changelog) decides exactly as one in memory."""
    docs = [week(placed, n) for n in range(7)] + [week(placed, 7, scheduled_for="2026-04-20T09:00:00Z")]
    a = [h.outputs[0] for h in feed(Processor(K, DictHistoryStore()), *docs)]
    b = [h.outputs[0] for h in feed(Processor(K, JsonRoundTripStore()), *docs)]
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b]
    # and the stream-wide story is right: weekly for four doses, then every two weeks
    rules = [{f.rule_id for f in x.findings} for x in a]
    assert all("isatuximab.interval.too_soon_after_previous" not in r for r in rules[:5])
    assert "isatuximab.interval.too_soon_after_previous" in rules[5]  # 7 days after the fifth dose


def test_decision_id_is_deterministic_per_event_and_knowledge(placed):
    d1 = feed(Processor(K, DictHistoryStore()), placed)[0].outputs[0]
    d2 = feed(Processor(K, DictHistoryStore()), placed)[0].outputs[0]
    assert d1.decision_id == d2.decision_id == decision_id_for(placed["event_id"], K.version)
    assert decision_id_for(placed["event_id"], "2027.1.1") != d1.decision_id
    assert decision_id_for("other", K.version) != d1.decision_id


def test_cancellation_that_overtakes_its_order_still_wins(placed, cancelled):
    p = Processor(K, DictHistoryStore())
    feed(p, cancelled, placed)  # the cancel of ORD-1001 arrives first
    assert p.store.get("P-001").active_orders == {}
    later = week(placed, 1, scheduled_for="2026-03-03T09:00:00Z")
    (decision,) = feed(p, later)[0].outputs
    assert not any(f.category == "interval" for f in decision.findings)


def test_replaying_an_order_does_not_count_it_twice(placed):
    """A redelivered event with a new event_id but the same order_id replaces, not duplicates."""
    p = Processor(K, DictHistoryStore())
    feed(p, placed)
    again = dict(placed, event_id="e-redelivered")
    (decision,) = feed(p, again)[0].outputs
    assert not any(f.rule_id == "isatuximab.interval.duplicate" for f in decision.findings)
    assert len(p.store.get("P-001").active_orders) == 1


def test_seen_ids_are_bounded_by_event_time_retention(placed):
    p = Processor(K, DictHistoryStore(), seen_retention=dt.timedelta(days=10), max_seen=3)
    docs = []
    for n in range(6):
        d = week(placed, n)
        d["occurred_at"] = d["order"]["scheduled_for"]
        docs.append(d)
    feed(p, *docs)
    history = p.store.get("P-001")
    assert sorted(history.seen_events) == ["e-4", "e-5"]  # 10 days of event time
    assert len(history.active_orders) == 6  # doses are kept: the interval rules count them
    feed(p, *[dict(docs[5], event_id=f"x-{i}") for i in range(5)])
    assert len(p.store.get("P-001").seen_events) == 3  # and never more than max_seen


def test_parse_order_event_is_what_the_processor_uses(placed):
    event = parse_order_event(json.dumps(placed))
    assert event.event_id == placed["event_id"]


def test_a_defect_in_a_rule_still_gives_the_order_one_flagged_decision(placed, monkeypatch):
    from rxgate.rules import interval

    def broken(ctx):
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(interval, "check", broken)
    monkeypatch.setattr("rxgate.decide.RULE_CATEGORIES", (interval,))
    p = Processor(K, DictHistoryStore())
    (handled,) = feed(p, placed)
    (decision,) = handled.outputs
    assert decision.outcome == "flagged" and decision.severity == "major"
    assert [f.rule_id for f in decision.findings] == ["rxgate.data.checks_failed"]
    assert decision.decision_id == decision_id_for(placed["event_id"], K.version)
    assert "P-001" not in decision.findings[0].message  # no patient data in the error text
    # and the order still counts in the patient's history
    assert "ORD-1001" in p.store.get("P-001").active_orders
    assert isinstance(handled.error, ZeroDivisionError)  # for the shell to log
