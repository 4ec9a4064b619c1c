"""One hook request -> the orders it carries -> FHIR mapping -> event bytes -> Processor.

Each request is decided on a history of its own (a fresh in-memory store holding the patient's
other active orders from the record), never on a history shared between requests or patients.

A draft order may lack what the contract requires (order-select: no dose yet; no route; no
time). Then the checks that do not need the missing fact are run on the order with a stand-in
value, every finding that read the stand-in is dropped, and a card says what was not checked:
- no dose: stand-in 1 `units` (a unit no amount rule converts); findings carrying the ordered
  amount (`ordered_value` in their evidence) are dropped;
- no route: stand-in `(not stated)` (no known route, so the infusion check does not run);
  findings carrying `ordered_route` are dropped;
- no time: stand-in "now" (the request's time; lab ages are counted to it); `interval`
  findings are dropped.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field

from ..contract import Decision, FileSource, Finding
from ..fhir import FhirError, FhirOrder, Gap, PatientRecord, map_order
from ..knowledge import Knowledge
from ..processor import DictHistoryStore, Processor

STAND_IN_ROUTE = "(not stated)"


@dataclass
class Checked:
    """The outcome for one ordered MedicationRequest."""

    request: str  # "MedicationRequest/<id>"
    drug: str | None = None
    decision: Decision | None = None
    findings: list[Finding] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)  # what could not be checked, and why
    gaps: list[Gap] = field(default_factory=list)  # facts FHIR did not give
    problem: str | None = None  # the order could not be checked at all
    order_event: dict | None = None


def target_requests(hook: str, context: dict) -> tuple[list[dict], list[dict], list[str]]:
    """(orders to check, the other draft orders, problems) for a hook's context."""
    problems: list[str] = []
    if hook in ("order-sign", "order-select"):
        bundle = context.get("draftOrders")
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        drafts = [e["resource"] for e in entries or [] if isinstance(e, dict)
                  and isinstance(e.get("resource"), dict)
                  and e["resource"].get("resourceType") == "MedicationRequest"]
        if hook == "order-select":
            selections = context.get("selections") or []
            chosen = [d for d in drafts if f"MedicationRequest/{d.get('id')}" in selections]
            return chosen, drafts, problems
        return drafts, drafts, problems
    if hook == "medication-verify":
        med = context.get("medication")
        if med is None and isinstance(context.get("order"), dict):
            order = context["order"]
            med = order.get("resource", order)
        if isinstance(med, dict) and med.get("resourceType") == "MedicationRequest":
            return [med], [], problems
        problems.append("context.medication is not a MedicationRequest")
    return [], [], problems


def check_order(request: dict, record: PatientRecord, knowledge: Knowledge, *,
                now: dt.datetime, hook: str, other_drafts: list[dict],
                patient_id: str | None = None) -> Checked:
    ref = f"MedicationRequest/{request.get('id', '(no id)')}"
    try:
        fo = map_order(request, record, now=now, other_drafts=other_drafts)
    except FhirError as e:
        return Checked(ref, problem=str(e))
    subject = fo.event["patient"]["patient_id"]
    if patient_id is not None and subject != patient_id:
        return Checked(fo.request, problem="its subject is not the patient in context (context.patientId)")
    checked = Checked(fo.request, gaps=list(fo.gaps))
    drug = fo.event["order"].get("drug")
    checked.drug = drug["name"] if drug else None
    if drug is None:
        checked.problem = "; ".join(g.detail for g in fo.gaps if g.field == "order.drug") or "no medication"
        return checked
    event, dropped = _with_stand_ins(fo, now, checked)
    checked.order_event = event

    processor = Processor(knowledge, DictHistoryStore())
    origin = FileSource(file=f"cds-hooks:{hook}", line=1)
    for active in fo.active_orders:
        processor.handle(json.dumps(active).encode(), origin, now)
    handled = processor.handle(json.dumps(event).encode(), origin, now)
    output = handled.outputs[0] if handled.outputs else None
    if not isinstance(output, Decision):
        checked.problem = (f"the order cannot be read as rx.order/1: {output.error.detail}"
                           if output is not None else "the order was not decided")
        return checked
    checked.decision = output
    checked.findings = [f for f in output.findings if not dropped(f)]
    return checked


def _with_stand_ins(fo: FhirOrder, now: dt.datetime, checked: Checked):
    event = copy.deepcopy(fo.event)
    order = event["order"]
    tests = []
    reasons = {g.field: g.detail for g in fo.gaps}
    if "dose" not in order:
        order["dose"] = {"value": 1, "unit": "units"}
        tests.append(lambda f: "ordered_value" in f.evidence)
        weight = event["patient"].get("weight_kg")
        checked.not_checked.append(
            f"the dose ({reasons.get('order.dose', 'not given')}); "
            + (f"weight on record {weight} kg" if weight is not None else "no weight on record either"))
    if "route" not in order:
        order["route"] = STAND_IN_ROUTE
        tests.append(lambda f: "ordered_route" in f.evidence)
        checked.not_checked.append(f"the route and the infusion duration "
                                   f"({reasons.get('order.route', 'not given')})")
    if "scheduled_for" not in order:
        order["scheduled_for"] = now.isoformat()
        tests.append(lambda f: f.category == "interval")
        checked.not_checked.append(f"the interval to the patient's other doses "
                                   f"({reasons.get('order.scheduled_for', 'no time given')}); "
                                   f"lab ages are counted to now")
    return event, (lambda f: any(t(f) for t in tests))
