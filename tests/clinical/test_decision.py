"""The decision as a whole (issue 3, sections 2-3; contract "Decision").

"`outcome`: `flagged` when any finding has severity `warning` or higher, else `approved`.
`severity`: the highest finding's severity, `none` when there is no finding.
Order: none < info < warning < major < contraindicated." "`decision_id` is derived
deterministically from `event_id` and the knowledge version, so a replay gives the same ids."
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid

import pytest

from .conftest import (
    DROP, KNOWLEDGE, NOW, Pharmacy, cancel_event, decide_one, lab, order_event, rule_ids,
)
from rxgate.contract import FileSource, OrderPlaced, parse_order_event
from rxgate.decide import decide
from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.processor import DictHistoryStore, Processor

RANK = {"none": 0, "info": 1, "warning": 2, "major": 3, "contraindicated": 4}


def clean(**kw) -> dict:
    """An order with one info finding only, the every-dose premedication reminder: no
    co-medication, and not placed at C1D1 (no first-dose reminder)."""
    return order_event(meds=[], regimen=(1, 8), **kw)


PREMED = "isatuximab.dose.premedication"  # before every later infusion (US label)

# (changes, expected severity, expected outcome, expected rule ids in order)
CASES = {
    "info only": (dict(), "info", "approved", [PREMED]),
    "two infos": (dict(meds=["pomalidomide"]), "info", "approved",
                  [PREMED, "isatuximab.combination.immunomodulator"]),
    "first dose infos": (dict(meds=["lenalidomide"], regimen=(1, 1)), "info", "approved",
                         ["isatuximab.dose.first_dose_premedication",
                          "isatuximab.combination.immunomodulator"]),
    "warning": (dict(patient={"conditions": ["hypertension"]}), "warning", "flagged",
                ["isatuximab.contraindication.no_indication", PREMED]),
    "data warning": (dict(patient={"conditions": DROP}), "warning", "flagged",
                     ["isatuximab.data.conditions_missing", PREMED]),
    "major": (dict(route="SC"), "major", "flagged", ["isatuximab.dose.route", PREMED]),
    "contraindicated": (dict(patient={"pregnant": True}), "contraindicated", "flagged",
                        ["isatuximab.contraindication.pregnancy", PREMED]),
}


def test_no_finding_is_severity_none(tmp_path):
    """Every isatuximab dose now carries a premedication reminder; without that section in the
    monograph, a clean later dose has no finding at all: severity `none`, approved."""
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text(encoding="utf-8")
    start = text.index("[premedication]")
    end = text.index("[schedule]")
    mono.write_text(text[:start] + text[end:], encoding="utf-8")
    processor = Processor(load_knowledge(kdir), DictHistoryStore())
    [d] = processor.handle(json.dumps(clean()).encode(), FileSource(file="t", line=1), NOW).outputs
    assert d.findings == []
    assert d.severity == "none" and d.outcome == "approved"


@pytest.mark.parametrize("case", list(CASES))
def test_outcome_and_severity(case):
    kw, severity, outcome, rules = CASES[case]
    base = dict(meds=[], regimen=(1, 8))
    base.update(kw)
    d = decide_one(order_event(**base))
    assert rule_ids(d) == rules
    assert d.severity == severity
    assert d.outcome == outcome


def test_severity_is_the_maximum_and_findings_are_most_severe_first():
    d = decide_one(order_event(
        route="SC",                                                 # major (dose)
        meds=["pomalidomide", "elotuzumab"],                        # info, warning (combination)
        labs=[lab("ANC", 1.5), lab("PLT", 100), lab("HGB", 7.5)],   # warning (contraindication)
        patient={"lactating": True, "conditions": DROP},            # contraindicated, data warning
    ))
    severities = [f.severity for f in d.findings]
    assert severities == sorted(severities, key=lambda s: -RANK[s]), severities
    assert severities[0] == "contraindicated"
    assert severities[-1] == "info"
    assert set(severities) == {"contraindicated", "major", "warning", "info"}
    assert d.severity == "contraindicated" and d.outcome == "flagged"


@pytest.mark.parametrize("meds,severity", [(["pomalidomide"], "info"), (["elotuzumab"], "warning"),
                                           (["daratumumab"], "major"),
                                           (["pomalidomide", "daratumumab", "elotuzumab"], "major")])
def test_severity_is_the_highest_finding(meds, severity):
    d = decide_one(clean(set={"patient.current_medications": [{"name": m} for m in meds]}))
    assert d.severity == severity
    assert d.outcome == ("approved" if severity == "info" else "flagged")
    assert d.findings[0].severity == severity


def test_decision_carries_the_order_identity_and_knowledge_version():
    e = clean(event_id="EVT-ID-1", order_id="ORD-ID-1", patient_id="P-ID-1")
    d = decide_one(e)
    assert (d.event_id, d.order_id, d.patient_id, d.drug) == ("EVT-ID-1", "ORD-ID-1", "P-ID-1", "isatuximab")
    assert d.knowledge_version == KNOWLEDGE.version == "2026.11.3"
    assert d.decided_at == NOW
    out = json.loads(d.model_dump_json(by_alias=True))
    assert out["schema"] == "rx.decision/1"
    assert set(out) == {"schema", "decision_id", "event_id", "order_id", "patient_id", "drug",
                        "outcome", "severity", "findings", "knowledge_version", "decided_at"}


def test_every_finding_has_a_reference_and_a_drug_first_rule_id():
    d = decide_one(order_event(route="SC", dose=(1400, "mg"), duration_min=60,
                               meds=["daratumumab"], patient={"pregnant": True, "allergies": ["Sarclisa"]}))
    assert len(d.findings) >= 6
    for f in d.findings:
        assert f.rule_id.startswith(f"isatuximab.{f.category}."), f.rule_id
        assert f.reference.startswith("isatuximab instructions"), f.reference
        assert f.evidence and f.message


# --- decision_id ----------------------------------------------------------------------------

def test_decision_id_is_deterministic_across_fresh_processors():
    e = order_event(event_id="EVT-DET-1")
    a = Pharmacy().place(e)
    b = Pharmacy().place(e)
    assert a.decision_id == b.decision_id
    assert uuid.UUID(a.decision_id)


def test_decision_id_is_the_same_whatever_the_clock():
    event = OrderPlaced.model_validate_json(json.dumps(order_event(event_id="EVT-DET-2")))
    t1 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    t2 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    a = decide(event, [], KNOWLEDGE, decided_at=t1)
    b = decide(event, [], KNOWLEDGE, decided_at=t2)
    assert a.decision_id == b.decision_id
    assert a.decided_at == t1 and b.decided_at == t2
    assert a.model_dump(exclude={"decided_at"}) == b.model_dump(exclude={"decided_at"})


def test_decision_id_differs_with_event_id():
    ids = {Pharmacy().place(order_event(event_id=f"EVT-{i}")).decision_id for i in range(5)}
    assert len(ids) == 5


def test_replaying_a_stream_gives_identical_decisions():
    events = [order_event(scheduled_for=d, regimen=None, event_id=f"EVT-R{d}", order_id=f"ORD-R{d}")
              for d in (0, 7, 10, 14)]
    events.insert(2, cancel_event("ORD-R7", event_id="EVT-RC"))
    first = [x.model_dump() if x else None for x in Pharmacy().run(events)]
    second = [x.model_dump() if x else None for x in Pharmacy().run(events)]
    assert first == second
    assert first[2] is None


def test_same_event_twice_in_one_stream_is_one_decision():
    p = Pharmacy()
    e = order_event(event_id="EVT-TWICE")
    assert p.send(e).kind == "decision"
    again = p.send(e)
    assert again.kind == "duplicate" and again.outputs == []


def test_a_cancellation_writes_nothing():
    p = Pharmacy()
    h = p.send(cancel_event("ORD-NONE"))
    assert h.kind == "cancelled" and h.outputs == []


def test_decide_is_pure_and_matches_the_processor():
    """decide() with the same active orders gives what the Processor gave."""
    e = order_event(event_id="EVT-PURE")
    via_processor = Pharmacy().place(e)
    event = parse_order_event(json.dumps(e))
    direct = decide(event, [], KNOWLEDGE, decided_at=NOW)
    assert direct.model_dump() == via_processor.model_dump()


def test_decision_id_differs_with_the_knowledge_version():
    import dataclasses
    other = dataclasses.replace(KNOWLEDGE, version="2099.1.1")
    event = parse_order_event(json.dumps(order_event(event_id="EVT-KV")))
    a = decide(event, [], KNOWLEDGE, decided_at=NOW)
    b = decide(event, [], other, decided_at=NOW)
    assert a.decision_id != b.decision_id
    assert b.knowledge_version == "2099.1.1"
    assert a.findings == b.findings
