"""Findings -> CDS Hooks 2.0 cards.

One card per finding; `indicator` from the finding's severity (contraindicated, major:
critical; warning: warning; info: info). A card's `detail` is Markdown: the message, the
evidence the rule compared (a table), rule, category, reference and knowledge version. Cards
that can be overridden (warning and critical) list `overrideReasons`. An order that could not
be checked whole gets a warning card saying what was not checked and why (fail closed).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..contract import Finding
from .evaluate import Checked

INDICATOR = {"contraindicated": "critical", "major": "critical", "warning": "warning", "info": "info"}
OVERRIDE_SYSTEM = "https://rxgate.dev/cds/override-reason"
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": "benefit-outweighs-risk", "display": "Benefit outweighs risk for this patient"},
    {"system": OVERRIDE_SYSTEM, "code": "confirmed-with-prescriber", "display": "Confirmed with the prescriber"},
    {"system": OVERRIDE_SYSTEM, "code": "record-out-of-date", "display": "The patient's record in the EHR is incomplete or out of date"},
    {"system": OVERRIDE_SYSTEM, "code": "not-applicable", "display": "Does not apply to this patient"},
]
RULE_SYSTEM = "https://rxgate.dev/rule-id"
SUMMARY_MAX = 139


@dataclass(frozen=True)
class IssuedCard:
    """What feedback on a card needs to become an rx.reviews.v1 message."""

    uuid: str
    service: str
    indicator: str
    rule_id: str
    decision_id: str | None
    event_id: str | None
    order_id: str | None
    patient_id: str
    user_id: str | None


def summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[:SUMMARY_MAX - 1].rstrip() + "…"


def _cell(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def finding_detail(finding: Finding, checked: Checked, version: str) -> str:
    lines = [finding.message, "", "| evidence | value |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in finding.evidence.items()]
    lines += ["", f"- **rule**: `{finding.rule_id}` ({finding.category}, {finding.severity})",
              f"- **reference**: {finding.reference}",
              f"- **knowledge**: rxgate {version}",
              f"- **order**: {checked.request}"]
    if checked.not_checked:
        lines.append("- **not checked**: " + "; ".join(checked.not_checked))
    return "\n".join(lines)


def cards_for(checked: Checked, version: str, *, service: str, patient_id: str,
              user_id: str | None) -> tuple[list[dict], list[IssuedCard]]:
    cards: list[dict] = []
    issued: list[IssuedCard] = []
    decision = checked.decision
    label = f"rxgate (knowledge {version})"

    def add(card: dict, severity: str, rule_id: str) -> None:
        card_id = str(uuid.uuid4())
        indicator = INDICATOR[severity]
        body = {"uuid": card_id, **card, "indicator": indicator}
        if indicator != "info":
            body["overrideReasons"] = OVERRIDE_REASONS
        cards.append(body)
        issued.append(IssuedCard(
            uuid=card_id, service=service, indicator=indicator, rule_id=rule_id,
            decision_id=decision.decision_id if decision else None,
            event_id=decision.event_id if decision else None,
            order_id=decision.order_id if decision else None,
            patient_id=patient_id, user_id=user_id))

    drug = checked.drug or "this order"
    for f in checked.findings:
        add({"summary": summary(f"{drug}: {f.message}"),
             "detail": finding_detail(f, checked, version),
             "source": {"label": f"{label}: {f.reference}",
                        "topic": {"system": RULE_SYSTEM, "code": f.rule_id, "display": f.category}}},
            f.severity, f.rule_id)
    if checked.problem is not None:
        detail = [f"rxgate could not check {checked.request}: {checked.problem}.", "",
                  "Nothing about this order was checked; review it by hand."]
        add({"summary": summary(f"{drug}: could not be checked by rxgate"),
             "detail": "\n".join(detail),
             "source": {"label": label,
                        "topic": {"system": RULE_SYSTEM, "code": "rxgate.cds.not_checked", "display": "data"}}},
            "warning", "rxgate.cds.not_checked")
    elif checked.not_checked or checked.gaps:
        detail = []
        if checked.not_checked:
            detail += ["**Not checked** (the order does not say):", ""]
            detail += [f"- {n}" for n in checked.not_checked]
            detail.append("")
        if checked.gaps:
            detail += ["**What FHIR did not give** (absent facts were not assumed):", ""]
            detail += [f"- `{g.field}`: {g.detail}" for g in checked.gaps]
        what = "partly checked" if checked.not_checked else "checked on an incomplete record"
        add({"summary": summary(f"{drug}: {what}; see what rxgate could not use"),
             "detail": "\n".join(detail),
             "source": {"label": label,
                        "topic": {"system": RULE_SYSTEM, "code": "rxgate.cds.incomplete", "display": "data"}}},
            "warning", "rxgate.cds.incomplete")
    return cards, issued
