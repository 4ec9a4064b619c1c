"""decide(event, active_orders, knowledge, decided_at, folds) -> Decision: the whole clinical verdict.

Runs every rule category of the drug's monograph, orders the findings (most severe first) and
derives `outcome` and `severity` exactly as the contract says. Pure: no I/O, no clock (the
caller passes `decided_at`), no globals. `decision_id` is a UUIDv5 of the event id and the
knowledge version, so replaying the same events with the same knowledge gives the same ids.
"""
from __future__ import annotations

import datetime as dt
import uuid
from hashlib import sha1
from typing import Any, Sequence

import msgspec
from pydantic import BaseModel

from .contract import (_SET_DICT, _SET_EXTRA, _SET_FIELDS_SET, _SET_PRIVATE, Decision, Finding,
                       OrderPlaced, SEVERITY_ORDER, severity_rank)
from .history import ActiveOrder, FoldedOrders
from .knowledge import Knowledge
from .rules import OrderContext, combination, contraindication, dose, interval

RULE_CATEGORIES = (dose, interval, combination, contraindication)
CATEGORY_ORDER = ("contraindication", "dose", "interval", "combination", "data")

# Fixed namespace for decision ids (uuid5(NAMESPACE, "<event_id>|<knowledge_version>")).
DECISION_NAMESPACE = uuid.UUID("3b0e3c9a-8f1d-5d2e-9c77-6a2f0e4b1d55")
NO_MONOGRAPH_RULE = "rxgate.data.no_monograph"
CHECKS_FAILED_RULE = "rxgate.data.checks_failed"


_new = object.__new__
_NAMESPACE_BYTES = DECISION_NAMESPACE.bytes
_NAMESPACE_SHA1 = sha1(_NAMESPACE_BYTES)  # never updated itself: decision_id_for copies it
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}
_CATEGORY_RANK = {c: i for i, c in enumerate(CATEGORY_ORDER)}
_FLAGGED_FROM = SEVERITY_ORDER.index("warning")
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def decision_id_for(event_id: str, knowledge_version: str) -> str:
    """uuid.uuid5(DECISION_NAMESPACE, "<event_id>|<knowledge_version>"), spelled out (RFC 4122:
    SHA-1 of namespace and name, version 5, variant 10) without the UUID object around it."""
    h = _NAMESPACE_SHA1.copy()  # the namespace hashed once: the name added to a copy
    h.update(f"{event_id}|{knowledge_version}".encode())
    h = h.hexdigest()
    # version 5 in the 13th hex digit; variant 10 in the two high bits of the 17th
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _order_key(f: Finding) -> tuple[int, int, str]:
    """Most severe first, then by category (CATEGORY_ORDER), then rule id; an unknown severity
    or category raises ValueError as SEVERITY_ORDER.index / CATEGORY_ORDER.index would.
    (The fields read from the finding's __dict__: a pydantic model's attribute read is several
    times slower, its class defining __getattr__; a Finding has no computed or private field.)"""
    if type(f) is Finding:
        values = f.__dict__
        severity = _SEVERITY_RANK.get(values["severity"])
        category = _CATEGORY_RANK.get(values["category"])
        if severity is not None and category is not None:
            return (-severity, category, values["rule_id"])
    return (-severity_rank(f.severity), CATEGORY_ORDER.index(f.category), f.rule_id)


def decide(event: OrderPlaced, active_orders: list[ActiveOrder], knowledge: Knowledge,
           decided_at: dt.datetime, folds: Sequence[FoldedOrders] = ()) -> Decision:
    drug = event.order.drug
    code = drug.code
    monograph = knowledge.monograph_for(drug.name, code.system if code else None,
                                        code.value if code else None)
    if monograph is None:
        findings = [Finding(
            rule_id=NO_MONOGRAPH_RULE, category="data", severity="warning",
            message=(f"No monograph for {drug.name!r} in knowledge {knowledge.version}: "
                     f"nothing about this order could be checked"),
            evidence={"drug": drug.name, "code": _fields(drug.code) if drug.code else None,
                      "known_drugs": sorted(knowledge.monographs)},
            reference=f"rxgate knowledge {knowledge.version}")]
        drug_name = drug.name.strip().lower()
    else:
        ctx = OrderContext.of(event, monograph, knowledge, active_orders, tuple(folds))
        findings = []
        for category in RULE_CATEGORIES:
            findings += category.check(ctx)
        drug_name = ctx.drug_name  # monograph.drug
    # most severe first (_order_key): most often the rules give their findings in that order
    # already, so their keys (_order_key's, inline) are compared first, and the findings are
    # sorted only when one is out of order, or is not a Finding of a known severity and
    # category (the sort then checks it: ValueError for an unknown one; for one finding,
    # _order_key alone)
    in_order = True
    key = None
    for f in findings:
        if type(f) is Finding:
            held = f.__dict__
            severity = _SEVERITY_RANK.get(held["severity"])
            category = _CATEGORY_RANK.get(held["category"])
            if severity is not None and category is not None:
                previous, key = key, (-severity, category, held["rule_id"])
                if previous is None or not key < previous:
                    continue
        in_order = False
        break
    # the first finding's severity is the highest (every severity is known: checked above, or
    # by the sort); all_findings: all(type(f) is Finding for f in findings)
    if in_order:  # (a Finding's field read from its __dict__, as in _order_key)
        severity = findings[0].__dict__["severity"] if findings else "none"
        all_findings = True
    else:
        if len(findings) > 1:
            findings.sort(key=_order_key)
        else:
            _order_key(findings[0])
        severity = findings[0].severity
        all_findings = True  # (a loop in this frame, not a generator)
        for f in findings:
            if type(f) is not Finding:
                all_findings = False
                break
    values = {
        "schema_": "rx.decision/1",
        "decision_id": decision_id_for(event.event_id, knowledge.version),
        "event_id": event.event_id,
        "order_id": event.order.order_id,
        "patient_id": event.patient.patient_id,
        "drug": drug_name,
        "outcome": "flagged" if _SEVERITY_RANK[severity] >= _FLAGGED_FROM else "approved",
        "severity": severity,
        "findings": findings,
        "knowledge_version": knowledge.version,
        "decided_at": decided_at,
    }
    if (type(drug_name) is str and type(knowledge.version) is str
            and type(values["event_id"]) is str and type(values["order_id"]) is str
            and type(values["patient_id"]) is str
            and type(decided_at) is dt.datetime and decided_at.utcoffset() is not None
            and all_findings):
        # what validation would give (the event's ids are validated strings, findings are
        # Findings, the time is aware): the values as they are (the list is this call's own);
        # trusted(Decision, values, given), inline
        decision = _new(Decision)
        _SET_DICT(decision, values)
        _SET_FIELDS_SET(decision, set(_GIVEN))
        _SET_EXTRA(decision, None)
        _SET_PRIVATE(decision, None)
        return decision
    del values["schema_"]
    return Decision(**values)


_GIVEN = frozenset(Decision.model_fields) - {"schema_"}


def _fields(value: BaseModel | msgspec.Struct) -> dict[str, Any]:
    """A part of the event (a contract model, or its struct_event struct) as a dict of its
    fields, in their order: the model's model_dump()."""
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.asdict(value)
    return value.model_dump()


def checks_failed(event: OrderPlaced, knowledge_version: str, decided_at: dt.datetime,
                  error: Exception) -> Decision:
    """The decision when the checks themselves failed (a defect): flagged for a pharmacist.

    The order still gets its one decision, so nothing is lost and nothing is approved unchecked;
    dashboards and alerts watch rule id `rxgate.data.checks_failed`.
    """
    finding = Finding(
        rule_id=CHECKS_FAILED_RULE, category="data", severity="major",
        message=("rxgate could not complete the checks for this order (an internal error: "
                 f"{type(error).__name__}); review it by hand"),
        evidence={"error": type(error).__name__},
        reference=f"rxgate knowledge {knowledge_version}")
    return Decision(
        decision_id=decision_id_for(event.event_id, knowledge_version),
        event_id=event.event_id, order_id=event.order.order_id,
        patient_id=event.patient.patient_id, drug=event.order.drug.name.strip().lower(),
        outcome="flagged", severity="major", findings=[finding],
        knowledge_version=knowledge_version, decided_at=decided_at)
