"""The sans-I/O processor: classification, dedupe, history, and serialisable state."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest

from rxgate.contract import FileSource, TopicSource, parse_order_event
from rxgate.decide import DECISION_NAMESPACE, decision_id_for
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


def test_an_origin_given_as_a_function_is_made_only_for_a_dead_letter(placed):
    made = []

    def origin():
        made.append(FileSource(file="t", line=len(made) + 1))
        return made[-1]

    p = Processor(K, DictHistoryStore())
    assert p.handle(json.dumps(placed).encode(), origin, NOW).kind == "decision"
    assert made == []  # an order: no source made
    for raw in (b"{", b"\xff", json.dumps({**placed, "schema": 1}).encode()):
        [letter] = p.handle(raw, origin, NOW).outputs
        assert letter.source is made[-1]
    assert [m.line for m in made] == [1, 2, 3]


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


@pytest.mark.parametrize("event_id", ["0b6f8a8e-2f0c-4a8e-9a3e-3f1f2f8b1c01", "e", "é|中 ", "x" * 256])
def test_decision_id_is_the_uuid5_the_contract_names(event_id):
    # docs/contract.md: a UUIDv5 of event_id and knowledge_version (rxgate.decide spells it out)
    expected = uuid.uuid5(DECISION_NAMESPACE, f"{event_id}|{K.version}")
    assert decision_id_for(event_id, K.version) == str(expected)
    assert uuid.UUID(decision_id_for(event_id, K.version)).version == 5


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


# --- hostile single inputs (issue 8): one output each, the right kind, never checks_failed ----

def _with(doc, path, value):
    d = json.loads(json.dumps(doc))
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(d).encode()


def _appended(doc, extra: bytes) -> bytes:
    """The document with `"x": <extra>` added at its end (a field the schema ignores)."""
    return json.dumps(doc).encode()[:-1] + b', "x": ' + extra + b"}"


HOSTILE = [
    # (name, build(placed) -> bytes, kind, text in error.detail)
    ("cycle 2^31", lambda d: _with(d, ["order", "regimen", "cycle"], 2**31), "schema",
     "order.regimen.cycle: Input should be less than or equal to 1000"),
    ("day 10^6", lambda d: _with(d, ["order", "regimen", "day"], 10**6), "schema",
     "order.regimen.day: Input should be less than or equal to 366"),
    ("occurred_at year 1", lambda d: _with(d, ["occurred_at"], "0001-01-01T00:00:00Z"), "schema",
     "occurred_at: Year 1 is out of range"),
    ("scheduled_for year 9999", lambda d: _with(d, ["order", "scheduled_for"], "9999-12-31T23:59:59-23:59"),
     "schema", "order.scheduled_for: Year 9999 is out of range"),
    ("taken_at year 1", lambda d: _with(d, ["patient", "labs", 0, "taken_at"], "0001-01-01T00:00:00+23:59"),
     "schema", "patient.labs.0.taken_at: Year 1 is out of range"),
    ("birth_date year 1", lambda d: _with(d, ["patient", "birth_date"], "0001-01-01"), "schema",
     "patient.birth_date: Year 1 is out of range"),
    ("frequency.count 10^400", lambda d: _with(d, ["order", "frequency", "count"], 10**400), "json",
     "number out of range (beyond what a 64-bit float holds) at order.frequency.count"),
    ("frequency.count 10^6", lambda d: _with(d, ["order", "frequency", "count"], 10**6), "schema",
     "order.frequency.count: Input should be less than or equal to 1000"),
    ("weight 5e-324", lambda d: _with(d, ["patient", "weight_kg"], 5e-324), "schema",
     "patient.weight_kg: Input should be greater than or equal to 0.1"),
    ("duration 5e-324", lambda d: _with(d, ["order", "infusion", "duration_min"], 5e-324), "schema",
     "order.infusion.duration_min: Input should be greater than or equal to 0.01"),
    ("dose 1e308 g", lambda d: _with(d, ["order", "dose"], {"value": 1e308, "unit": "g"}), "schema",
     "order.dose.value: Input should be less than or equal to 1000000000"),
    ("NaN ignored", lambda d: _appended(d, b"NaN"), "json", "NaN / Infinity is not a JSON number"),
    ("Infinity ignored", lambda d: _appended(d, b"[-Infinity]"), "json", "NaN / Infinity is not a JSON number"),
    ("1e400 ignored", lambda d: _appended(d, b'{"y": 1e400}'), "json",
     "number out of range (beyond what a 64-bit float holds) at x.y"),
    ("1e400 in a field", lambda d: json.dumps(d).replace('"weight_kg": 70', '"weight_kg": 1e400').encode(),
     "json", "number out of range (beyond what a 64-bit float holds) at patient.weight_kg"),
    ("4300-digit integer ignored", lambda d: _appended(d, b"7" * 4300), "json", "number out of range"),
    ("4301-digit integer ignored", lambda d: _appended(d, b"7" * 4301), "json", "number out of range"),
    ("nested 980", lambda d: _appended(d, b"[" * 980 + b"]" * 980), "json", "nested deeper than 200 levels"),
    ("nested 100000", lambda d: _appended(d, b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "json",
     "nested deeper than 200 levels"),
    ("duplicate key", lambda d: json.dumps(d).encode()[:-1] + b', "event_id": "other"}', "json",
     'duplicate key "event_id"'),
    ("lone surrogate", lambda d: _appended(d, b'"\\udc00"'), "json", "lone surrogate is not"),
    ("BOM", lambda d: b"\xef\xbb\xbf" + json.dumps(d).encode(), "json", "byte order mark"),
    ("patient id of 300 characters", lambda d: _with(d, ["patient", "patient_id"], "P" * 300), "schema",
     "patient.patient_id: String should have at most 256 characters"),
]


@pytest.mark.parametrize("name,build,kind,detail", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_input_is_one_dead_letter_of_the_right_kind(placed, name, build, kind, detail):
    raw = build(placed)
    p = Processor(K, DictHistoryStore())
    started = time.monotonic()
    handled = p.handle(raw, FileSource(file="t", line=1), NOW)
    assert time.monotonic() - started < 1.0
    (letter,) = handled.outputs
    assert handled.kind == "invalid" and handled.error is None
    assert (letter.error.kind, detail in letter.error.detail) == (kind, True), letter.error.detail
    assert letter.payload.encode("utf-8") == raw  # the original bytes, exactly


@pytest.mark.parametrize("path,value", [
    (["order", "regimen", "cycle"], 1000), (["order", "regimen", "day"], 366),
    (["order", "frequency", "count"], 1000), (["order", "frequency", "period"], 0.01),
    (["order", "frequency", "period"], 10000), (["patient", "weight_kg"], 0.1),
    (["patient", "weight_kg"], 1000), (["patient", "height_cm"], 10), (["patient", "height_cm"], 300),
    (["order", "dose", "value"], 1e9), (["order", "dose", "value"], 5e-324),
    (["order", "infusion", "duration_min"], 0.01), (["order", "infusion", "duration_min"], 100000),
    (["order", "infusion", "volume_ml"], 10000), (["order", "infusion", "volume_ml"], 5e-324),
    (["patient", "labs", 0, "value"], 1e15), (["patient", "labs", 0, "value"], -1e15),
    (["occurred_at"], "1900-01-01T00:00:00+23:59"), (["order", "scheduled_for"], "2200-12-31T23:59:59-23:59"),
    (["patient", "birth_date"], "1900-01-01"), (["patient", "birth_date"], "2200-12-31"),
])
def test_every_value_on_a_bound_is_decided_without_a_defect(placed, path, value):
    """The rules' arithmetic holds at every bound: no overflow into rxgate.data.checks_failed."""
    for unit in ("mg", "g", "mcg", "mg/kg", "mg/m2", "units"):
        doc = json.loads(_with(placed, path, value))
        doc["order"]["dose"]["unit"] = unit
        handled = Processor(K, DictHistoryStore()).handle(json.dumps(doc).encode(),
                                                          FileSource(file="t", line=1), NOW)
        (decision,) = handled.outputs
        assert handled.error is None, repr(handled.error)
        assert "rxgate.data.checks_failed" not in {f.rule_id for f in decision.findings}


def test_parse_then_apply_is_handle(placed):
    p, q = Processor(K, DictHistoryStore()), Processor(K, DictHistoryStore())
    raw = json.dumps(placed).encode()
    origin = FileSource(file="t", line=1)
    event = p.parse(raw, origin, NOW)
    assert event.event_id == placed["event_id"]
    assert p.apply(event, NOW).outputs == q.handle(raw, origin, NOW).outputs
    bad = p.parse(b"{", origin, NOW)
    assert bad.kind == "invalid" and bad.outputs[0].error.kind == "json"


def test_a_defect_in_validation_is_a_dead_letter_not_a_lost_input(placed, monkeypatch):
    def broken(document):
        raise RecursionError("a defect")

    monkeypatch.setattr("rxgate.processor.validate_order_event", broken)
    # the exact path's validation (plainly safe bytes are otherwise read in one pass)
    monkeypatch.setattr("rxgate.processor.parse_plain_event", lambda raw: None)
    raw = json.dumps(placed).encode()
    handled = Processor(K, DictHistoryStore()).handle(raw, FileSource(file="t", line=1), NOW)
    (letter,) = handled.outputs
    assert handled.kind == "invalid" and isinstance(handled.error, RecursionError)
    assert letter.payload.encode() == raw and "RecursionError" in letter.error.detail


def test_a_defect_in_the_one_pass_read_leaves_the_input_to_the_exact_path(placed, monkeypatch):
    raw = json.dumps(placed).encode()
    origin = FileSource(file="t", line=1)
    expected = Processor(K, DictHistoryStore()).handle(raw, origin, NOW).outputs

    def broken(raw):
        raise RecursionError("a defect")

    monkeypatch.setattr("rxgate.plain_event._validate_json", broken)
    handled = Processor(K, DictHistoryStore()).handle(raw, origin, NOW)
    assert handled.kind == "decision" and handled.error is None
    assert handled.outputs == expected
