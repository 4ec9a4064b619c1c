"""Clinical-rule test kit: an order-event builder and a real `Processor` to run events through.

The oracle for every expectation in tests/clinical is issue 3, section 2 (the clinical rules and
their boundaries) and the wire contract (docs/contract.md). Tests never recompute a
rule the way the code does; they state the numbers the spec implies.

    order_event(...)      the contract's order.placed example with fields overridden
    cancel_event(...)     an order.cancelled event
    lab(code, value, unit, taken_at)
    at(days, hours=...)   an RFC 3339 time relative to the example's scheduled_for
    Pharmacy()            a real Processor + DictHistoryStore; .place(event) -> Decision
    run_events(events)    every event through one Processor, in order, as production does
    the_finding(decision, rule_id) / rule_ids(decision) / assert_finding(...)
"""
from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import pytest

from rxgate.contract import Decision, FileSource, Finding, severity_rank
from rxgate.knowledge import load_knowledge
from rxgate.history import PatientHistory
from rxgate.processor import DictHistoryStore, Handled, Processor

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FILE = ROOT / "docs" / "examples" / "order-placed.json"
EXAMPLE: dict = json.loads(EXAMPLE_FILE.read_text(encoding="utf-8"))

KNOWLEDGE = load_knowledge()
DRUG = "isatuximab"

# The example's dose time; every relative time in the suite counts from here.
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 3, 2, 8, 15, 0, 12000, tzinfo=dt.timezone.utc)  # decided_at only

KEEP: Any = object()  # "leave the example's value"
DROP: Any = object()  # "remove the field"

_ids = itertools.count(1)


def rid(prefix: str = "R") -> str:
    return f"{prefix}-{next(_ids):05d}"


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    """RFC 3339 time `days`/`hours`/`minutes` after T0 (2026-03-02T09:00:00Z)."""
    return iso(T0 + dt.timedelta(days=days, hours=hours, minutes=minutes))


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def lab(code: str, value: float, unit: str | None = None, taken_at: str | None = None) -> dict:
    if unit is None:
        unit = {"HGB": "g/dL", "TBILI": "mg/dL"}.get(code, "10^9/L")
    return {"code": code, "value": value, "unit": unit, "taken_at": taken_at or at(-1, hours=-2)}


def fresh_labs(scheduled_for: str, anc=1.8, plt=142, hgb=10.9, tbili=0.6) -> list[dict]:
    """The example's four labs, taken 26 h before `scheduled_for` (as in the example)."""
    taken = iso(parse_time(scheduled_for) - dt.timedelta(hours=26))
    return [lab("ANC", anc, taken_at=taken), lab("PLT", plt, taken_at=taken),
            lab("HGB", hgb, taken_at=taken), lab("TBILI", tbili, "mg/dL", taken_at=taken)]


def _set(doc: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    if value is DROP:
        node.pop(last, None)
    else:
        node[last] = value


def order_event(
    *,
    event_id: str | None = None,
    order_id: str | None = None,
    patient_id: str = "P-001",
    drug: Any = KEEP,  # a name (str) or a full drug dict
    dose: Any = KEEP,  # (value, unit) or a dict
    route: Any = KEEP,
    scheduled_for: Any = KEEP,  # str, or days after T0 (number)
    regimen: Any = KEEP,  # (cycle, day), dict, or DROP
    frequency: Any = KEEP,  # (count, period, unit), dict, or DROP
    duration_min: Any = KEEP,  # number or DROP (drops only the duration)
    infusion: Any = KEEP,
    labs: Any = KEEP,  # list, or DROP; by default rebased to 26 h before scheduled_for
    meds: Any = KEEP,  # list of names/dicts for current_medications, or DROP
    patient: dict | None = None,  # patient fields to set (DROP removes)
    order: dict | None = None,  # order fields to set (DROP removes)
    set: dict | None = None,  # dotted paths to set (DROP removes)
) -> dict:
    """The contract's order.placed example with fields overridden; unique ids by default."""
    e = copy.deepcopy(EXAMPLE)
    e["event_id"] = event_id or rid("EVT")
    o, p = e["order"], e["patient"]
    o["order_id"] = order_id or rid("ORD")
    p["patient_id"] = patient_id
    if drug is not KEEP:
        o["drug"] = {"name": drug} if isinstance(drug, str) else drug
    if dose is not KEEP:
        o["dose"] = {"value": dose[0], "unit": dose[1]} if isinstance(dose, tuple) else dose
    if route is not KEEP:
        o["route"] = route
    if scheduled_for is not KEEP:
        o["scheduled_for"] = at(scheduled_for) if isinstance(scheduled_for, (int, float)) else scheduled_for
        e["occurred_at"] = iso(parse_time(o["scheduled_for"]) - dt.timedelta(minutes=45))
        if labs is KEEP:
            labs = fresh_labs(o["scheduled_for"])
    for key, value in (("regimen", regimen), ("frequency", frequency), ("infusion", infusion)):
        if value is KEEP:
            continue
        if value is DROP or value is None:
            o.pop(key, None)
        elif key == "regimen" and isinstance(value, tuple):
            o[key] = {"name": "Isa-Pd", "cycle": value[0], "day": value[1]}
        elif key == "frequency" and isinstance(value, tuple):
            o[key] = {"count": value[0], "period": value[1], "period_unit": value[2]}
        else:
            o[key] = value
    if duration_min is not KEEP:
        inf = o.setdefault("infusion", {})
        if duration_min is DROP:
            inf.pop("duration_min", None)
        else:
            inf["duration_min"] = duration_min
    if labs is not KEEP:
        if labs is DROP:
            p.pop("labs", None)
        else:
            p["labs"] = labs
    if meds is not KEEP:
        if meds is DROP:
            p.pop("current_medications", None)
        else:
            p["current_medications"] = [{"name": m} if isinstance(m, str) else m for m in meds]
    for key, value in (patient or {}).items():
        _set(p, key, value)
    for key, value in (order or {}).items():
        _set(o, key, value)
    for key, value in (set or {}).items():
        _set(e, key, value)
    return e


def cancel_event(order_id: str, *, patient_id: str = "P-001", event_id: str | None = None,
                 occurred_at: str | None = None) -> dict:
    return {"schema": "rx.order/1", "event_id": event_id or rid("CXL"),
            "event_type": "order.cancelled", "occurred_at": occurred_at or at(0, hours=1),
            "order": {"order_id": order_id}, "patient": {"patient_id": patient_id}}


class JsonHistoryStore:
    """Keeps each history as JSON text of `PatientHistory.to_dict()`, as the stream's faust table
    does, so every read is a fresh `from_dict` (offsets, cancellations must survive the trip)."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    def get(self, patient_id: str) -> PatientHistory | None:
        row = self.rows.get(patient_id)
        return PatientHistory.from_dict(json.loads(row)) if row is not None else None

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.rows[patient_id] = json.dumps(history.to_dict())


class Pharmacy:
    """One real Processor with a history store: events in, as in production.

    `store="dict"` is `DictHistoryStore` (rxgate check); `store="json"` round-trips the history
    through JSON like the stream's table."""

    def __init__(self, store: str = "dict") -> None:
        backing = DictHistoryStore() if store == "dict" else JsonHistoryStore()
        self.processor = Processor(KNOWLEDGE, backing)
        self.line = 0

    def send(self, event: dict | bytes | str) -> Handled:
        self.line += 1
        raw = event if isinstance(event, bytes) else (
            event if isinstance(event, str) else json.dumps(event)).encode("utf-8")
        return self.processor.handle(raw, FileSource(file="tests/clinical", line=self.line), NOW)

    def place(self, event: dict) -> Decision:
        handled = self.send(event)
        assert handled.kind == "decision", (handled.kind, handled.outputs)
        [decision] = handled.outputs
        assert isinstance(decision, Decision)
        return decision

    def place_beyond_bounds(self, event: dict, **nested: dict) -> Decision:
        """Place an event whose `order.<field>` values lie beyond the contract's bounds: the
        event is parsed as given, then `order.<field>` is replaced without validation (the
        rules must stay safe for any value a model can hold, whatever the schema allows)."""
        self.line += 1
        parsed = self.processor.parse(json.dumps(event).encode("utf-8"),
                                      FileSource(file="tests/clinical", line=self.line), NOW)
        assert not isinstance(parsed, Handled), parsed
        order = parsed.order
        for name, values in nested.items():
            order = order.model_copy(update={name: getattr(order, name).model_copy(update=values)})
        handled = self.processor.apply(parsed.model_copy(update={"order": order}), NOW)
        [decision] = handled.outputs
        return decision

    def cancel(self, order_id: str, **kw) -> None:
        handled = self.send(cancel_event(order_id, **kw))
        assert handled.kind == "cancelled" and handled.outputs == [], handled

    def run(self, events: Iterable[dict]) -> list[Decision | None]:
        out: list[Decision | None] = []
        for e in events:
            h = self.send(e)
            assert h.kind in ("decision", "cancelled"), (h.kind, h.outputs)
            out.append(h.outputs[0] if h.outputs else None)
        return out


def run_events(events: Iterable[dict]) -> list[Decision | None]:
    """Run events through one fresh Processor in order; a decision (or None) per event."""
    return Pharmacy().run(events)


def decide_one(event: dict) -> Decision:
    """One event through a fresh Processor (no history)."""
    return Pharmacy().place(event)


# --- assertions ----------------------------------------------------------------------------

def rule_ids(decision: Decision) -> list[str]:
    return [f.rule_id for f in decision.findings]


def findings_in(decision: Decision, category: str) -> list[Finding]:
    return [f for f in decision.findings if f.category == category]


def the_finding(decision: Decision, rule_id: str) -> Finding:
    hits = [f for f in decision.findings if f.rule_id == rule_id]
    assert len(hits) == 1, f"expected one {rule_id}, got {rule_ids(decision)}: " + "; ".join(
        f"{f.rule_id} {f.severity}: {f.message}" for f in decision.findings)
    return hits[0]


def assert_no(decision: Decision, rule_id: str) -> None:
    assert rule_id not in rule_ids(decision), [
        (f.rule_id, f.severity, f.message) for f in decision.findings if f.rule_id == rule_id]


def assert_none_in(decision: Decision, category: str) -> None:
    assert findings_in(decision, category) == [], [
        (f.rule_id, f.severity, f.message) for f in findings_in(decision, category)]


def stated_minutes(message: str, after: str) -> int:
    """The duration a message states right after `after`, e.g. '7 days 1 h' -> minutes."""
    m = re.search(re.escape(after) + r" (\d+) days?(?: (\d+) h)?(?: (\d+) min)?", message)
    assert m, f"no duration after {after!r} in {message!r}"
    d, h, mins = (int(g) if g else 0 for g in m.groups())
    return (d * 24 + h) * 60 + mins


def _close(a: Any, b: Any) -> bool:
    if isinstance(b, float) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-3)
    return a == b


def assert_finding(decision: Decision, rule_id: str, *, category: str, severity: str,
                   evidence: dict | None = None, message: Iterable[str] = ()) -> Finding:
    """Exactly one finding `rule_id` with this category/severity, these evidence values (floats
    to 0.1 %), and a message naming each of `message`; the decision's outcome agrees."""
    f = the_finding(decision, rule_id)
    assert f.category == category, f
    assert f.severity == severity, f
    assert f.reference, f
    for key, want in (evidence or {}).items():
        assert key in f.evidence, f"evidence lacks {key!r}: {f.evidence}"
        assert _close(f.evidence[key], want), f"evidence {key}={f.evidence[key]!r}, expected {want!r}"
    for part in message:
        assert part in f.message, f"{part!r} not in message {f.message!r}"
    assert severity_rank(decision.severity) >= severity_rank(severity)
    if severity_rank(severity) >= severity_rank("warning"):
        assert decision.outcome == "flagged"
    return f


@pytest.fixture
def pharmacy() -> Pharmacy:
    return Pharmacy()
