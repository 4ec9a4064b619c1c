"""Combination rules: another drug the patient has whose use with this one is a known concern.

Monograph section used: [[combinations]], in order; the first (most severe) class rule a drug
matches is the one reported for it. "Another drug" is any active order of a different drug and
every entry of `patient.current_medications`; the same drug is the interval rules' business.
Drug classes live in knowledge/data/drug_classes.toml; names match case-insensitively, codes
where given.

Monograph section [concurrent]: an active order of another drug scheduled more than
`stale_after_days` before this dose, with no later order of that drug (it has not been renewed),
is stale: it does not count as concurrent therapy, and, where it would have been a combination
concern, a `stale_order` finding (info by default) says so. A current medication is never stale: the patient's record says it is current.
"""
from __future__ import annotations

import datetime as dt

from ..contract import Finding
from ..contract import severity_rank
from ..knowledge import STALE_ORDER_RULE
from . import OrderContext, beyond, days_between, days_text, num


def check(ctx: OrderContext) -> list[Finding]:
    knowledge = ctx.knowledge
    drug = ctx.monograph.drug
    rules = sorted(ctx.monograph.combinations, key=lambda r: -severity_rank(r.severity))

    # other drug (canonical name) -> (its classes, where the patient has it)
    others: dict[str, tuple[frozenset[str], list[str]]] = {}
    # other drug -> the newest scheduled_for of its active orders (None: a current medication)
    newest: dict[str, dt.datetime | None] = {}

    def note(name: str, system: str | None, value: str | None, where: str,
             scheduled_for: dt.datetime | None = None) -> None:
        ident = knowledge.identify(name, system, value)
        if ident.name == drug:
            return
        classes, places = others.setdefault(ident.name, (ident.classes, []))
        if where not in places:
            places.append(where)
        if ident.name not in newest or scheduled_for is None:
            newest[ident.name] = scheduled_for
        elif newest[ident.name] is not None:
            newest[ident.name] = max(newest[ident.name], scheduled_for)

    for order in ctx.active_orders:
        note(order.drug, order.code_system, order.code_value, f"active order {order.order_id}",
             order.scheduled_for)
    for fold in ctx.folds:  # older orders, kept as a count per drug
        last = fold.last
        note(last.drug, last.code_system, last.code_value,
             f"active order {last.order_id}" if fold.count == 1 else
             f"{fold.count} older active orders, up to order {last.order_id}", last.scheduled_for)
    for med in ctx.patient.current_medications or []:
        note(med.name, med.code.system if med.code else None, med.code.value if med.code else None,
             "current medications")

    findings: list[Finding] = []
    concurrent = ctx.monograph.concurrent
    if concurrent is not None:
        for other in sorted(others):
            last = newest[other]
            if last is None:
                continue
            age = days_between(last, ctx.scheduled_for)
            if age > concurrent.stale_after_days:
                if not any(r.drug_class in others[other][0] for r in rules):
                    del others[other]  # no combination concern: nothing to report either way
                    continue
                places = others.pop(other)[1]
                findings.append(ctx.finding(
                    "combination", STALE_ORDER_RULE, concurrent.stale_severity,
                    f"{other} ({'; '.join(places)}) was last scheduled {days_text(age)} before this "
                    f"dose and not renewed since (more than {num(concurrent.stale_after_days)} days): "
                    f"taken to be stale, not concurrent therapy; discontinue or renew the order",
                    {"other_drug": other, "found_in": places, "last_scheduled_for": last.isoformat(),
                     "age_days": beyond(age, concurrent.stale_after_days, 2),
                     "stale_after_days": num(concurrent.stale_after_days)},
                    concurrent.reference))
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
