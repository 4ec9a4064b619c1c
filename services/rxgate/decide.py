"""decide(event, active_orders, knowledge, decided_at, folds) -> Decision: the whole clinical verdict.

Runs every rule category of the drug's monograph, orders the findings (most severe first) and
derives `outcome` and `severity` exactly as the contract says. Pure: no I/O, no clock (the
caller passes `decided_at`), no globals. `decision_id` is a UUIDv5 of the event id and the
knowledge version, so replaying the same events with the same knowledge gives the same ids.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Sequence

from .contract import Decision, Finding, OrderPlaced, SEVERITY_ORDER, severity_rank
from .history import ActiveOrder, FoldedOrders
from .knowledge import Knowledge
from .rules import OrderContext, combination, contraindication, dose, interval

RULE_CATEGORIES = (dose, interval, combination, contraindication)
CATEGORY_ORDER = ("contraindication", "dose", "interval", "combination", "data")

# Fixed namespace for decision ids (uuid5(NAMESPACE, "<event_id>|<knowledge_version>")).
DECISION_NAMESPACE = uuid.UUID("3b0e3c9a-8f1d-5d2e-9c77-6a2f0e4b1d55")
NO_MONOGRAPH_RULE = "rxgate.data.no_monograph"
CHECKS_FAILED_RULE = "rxgate.data.checks_failed"


def decision_id_for(event_id: str, knowledge_version: str) -> str:
    return str(uuid.uuid5(DECISION_NAMESPACE, f"{event_id}|{knowledge_version}"))


def decide(event: OrderPlaced, active_orders: list[ActiveOrder], knowledge: Knowledge,
           *, decided_at: dt.datetime, folds: Sequence[FoldedOrders] = ()) -> Decision:
    drug = event.order.drug
    monograph = knowledge.monograph_for(drug.name, drug.code.system if drug.code else None,
                                        drug.code.value if drug.code else None)
    if monograph is None:
        findings = [Finding(
            rule_id=NO_MONOGRAPH_RULE, category="data", severity="warning",
            message=(f"No monograph for {drug.name!r} in knowledge {knowledge.version}: "
                     f"nothing about this order could be checked"),
            evidence={"drug": drug.name, "code": drug.code.model_dump() if drug.code else None,
                      "known_drugs": sorted(knowledge.monographs)},
            reference=f"rxgate knowledge {knowledge.version}")]
        drug_name = drug.name.strip().lower()
    else:
        ctx = OrderContext(event, monograph, knowledge, active_orders, tuple(folds))
        findings = [f for category in RULE_CATEGORIES for f in category.check(ctx)]
        drug_name = monograph.drug
    findings.sort(key=lambda f: (-severity_rank(f.severity), CATEGORY_ORDER.index(f.category), f.rule_id))
    severity = max((f.severity for f in findings), key=severity_rank, default="none")
    return Decision(
        decision_id=decision_id_for(event.event_id, knowledge.version),
        event_id=event.event_id,
        order_id=event.order.order_id,
        patient_id=event.patient.patient_id,
        drug=drug_name,
        outcome="flagged" if severity_rank(severity) >= SEVERITY_ORDER.index("warning") else "approved",
        severity=severity,
        findings=findings,
        knowledge_version=knowledge.version,
        decided_at=decided_at,
    )


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
