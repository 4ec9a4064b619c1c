"""Combination rules: another drug the patient has whose use with this one is a known concern.

Monograph section used: [[combinations]], in order; the first (most severe) class rule a drug
matches is the one reported for it. "Another drug" is any active order of a different drug and
every entry of `patient.current_medications`; the same drug is the interval rules' business.
Drug classes live in knowledge/data/drug_classes.toml; names match case-insensitively, codes
where given.
"""
from __future__ import annotations

from ..contract import Finding
from ..contract import severity_rank
from . import OrderContext


def check(ctx: OrderContext) -> list[Finding]:
    knowledge = ctx.knowledge
    drug = ctx.monograph.drug
    rules = sorted(ctx.monograph.combinations, key=lambda r: -severity_rank(r.severity))

    # other drug (canonical name) -> (its classes, where the patient has it)
    others: dict[str, tuple[frozenset[str], list[str]]] = {}

    def note(name: str, system: str | None, value: str | None, where: str) -> None:
        ident = knowledge.identify(name, system, value)
        if ident.name == drug:
            return
        classes, places = others.setdefault(ident.name, (ident.classes, []))
        if where not in places:
            places.append(where)

    for order in ctx.active_orders:
        note(order.drug, order.code_system, order.code_value, f"active order {order.order_id}")
    for fold in ctx.folds:  # older orders, kept as a count per drug
        last = fold.last
        note(last.drug, last.code_system, last.code_value,
             f"active order {last.order_id}" if fold.count == 1 else
             f"{fold.count} older active orders, up to order {last.order_id}")
    for med in ctx.patient.current_medications or []:
        note(med.name, med.code.system if med.code else None, med.code.value if med.code else None,
             "current medications")

    findings: list[Finding] = []
    for other, (classes, places) in sorted(others.items()):
        for rule in rules:
            if rule.drug_class in classes:
                label = knowledge.class_label(rule.drug_class)
                findings.append(ctx.finding(
                    "combination", rule.drug_class, rule.severity,
                    f"{other} ({'; '.join(places)}) is {_article(label)} {label}: {rule.concern}",
                    {"other_drug": other, "drug_class": rule.drug_class, "found_in": places},
                    rule.reference))
                break
    return findings


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"
