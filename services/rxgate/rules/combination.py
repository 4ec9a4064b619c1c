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
from ..knowledge.models import CombinationRule
from ..struct_event import OrderPlacedStruct
from . import OrderContext, again, beyond, days_between, days_text, num


class _Table:
    """A monograph's [[combinations]] ordered by severity (most severe first, stable), with the
    label each is reported with, and per set of drug classes the rule it reports (memo)."""

    def __init__(self, knowledge, mono) -> None:
        self.rules = tuple(sorted(mono.combinations, key=lambda r: -severity_rank(r.severity)))
        self.labels = {r.drug_class: knowledge.class_label(r.drug_class) for r in self.rules}
        self.first: dict[frozenset[str], CombinationRule | None] = {frozenset(): None}
        # current medications as written (an order with no other drug active) -> what they
        # report: (finding, other drug, drug class) per finding, in order (bounded like `first`;
        # see _medications_report)
        self.meds_only: dict[tuple, tuple[tuple[Finding, str, str], ...]] = {}

    def rule_for(self, classes: frozenset[str]) -> CombinationRule | None:
        """The first (most severe) rule one of `classes` matches; None: no concern."""
        try:
            return self.first[classes]
        except KeyError:
            found = next((r for r in self.rules if r.drug_class in classes), None)
            if len(self.first) > 10_000:
                self.first.clear()
            self.first[classes] = found
            return found


def check(ctx: OrderContext) -> list[Finding]:
    knowledge = ctx.knowledge
    drug = ctx.drug_name
    try:  # knowledge.per_monograph("combination", ctx.monograph, _Table), kept read first
        table = ctx.kept["combination"]
    except KeyError:
        table = knowledge.per_monograph("combination", ctx.monograph, _Table)
    # (the same drug is the interval rules' business; most often every active order is of it,
    # as ctx.same_drug_orders, shared with them, says, and so is every folded older order):
    # no other drug with an active order, the current medications alone
    if len(ctx.same_drug_orders) == len(ctx.active_orders):
        identities = knowledge._identities  # identify()'s memo, read first
        for fold in ctx.folds:
            last = fold.last
            key = (last.drug, last.code_system, last.code_value)
            ident = identities.get(key)
            if ident is None:
                ident = knowledge.identify(*key)
            if ident.name != drug:
                break
        else:
            return _medications_only(ctx, table)
    return _check_all(ctx, table)


def _medications_only(ctx: OrderContext, table: _Table) -> list[Finding]:
    """check() when no other drug has an active order: what the current medications report
    depends on them as written alone (memo per list as written; no stale order)."""
    # (the event is the contract's models or struct_event's structs: read by attribute)
    meds = ctx.patient.current_medications
    if not meds:
        return []
    if type(ctx.event) is OrderPlacedStruct:
        # struct_event's structs are frozen: hashable, and equal exactly when their fields
        # (a medication's name and code, a code's system and value) are; never equal to the
        # key below, made of strings and tuples
        key = tuple(meds)
    else:
        key = []
        for m in meds:  # (m.name, m.code.system, m.code.value) if m.code else m.name
            code = m.code
            if code:
                key.append((m.name, code.system, code.value))
            else:
                key.append(m.name)
        key = tuple(key)
    reported = table.meds_only.get(key)
    if reported is None:
        reported = _medications_report(ctx, table, meds)
        if len(table.meds_only) > 10_000:
            table.meds_only.clear()
        table.meds_only[key] = reported
    # each finding is the one ctx.finding made for this list the first time, again with an
    # evidence of its own (again(): the same values as ctx.finding would give them, the
    # evidence a new dict with a new list, as ctx.finding's copy of the one below would be)
    # (a loop in this frame: a comprehension is a function made and called on every order)
    findings = []
    for made, other, drug_class in reported:
        findings.append(again(made, {"other_drug": other, "drug_class": drug_class,
                                     "found_in": ["current medications"]}))
    return findings


def _check_all(ctx: OrderContext, table: _Table) -> list[Finding]:
    """check() when some other drug has an active order."""
    knowledge = ctx.knowledge
    drug = ctx.monograph.drug
    identify = knowledge.identify

    # other drug (canonical name) -> (its classes, where the patient has it)
    others: dict[str, tuple[frozenset[str], list[str]]] = {}
    # other drug -> the newest scheduled_for of its active orders (None: a current medication)
    newest: dict[str, dt.datetime | None] = {}

    def note(ident, where: str, scheduled_for: dt.datetime | None) -> None:
        other = ident.name
        known = others.get(other)
        if known is None:
            others[other] = (ident.classes, [where])
            newest[other] = scheduled_for
            return
        places = known[1]
        if where not in places:
            places.append(where)
        if scheduled_for is None:
            newest[other] = None
        else:
            held = newest[other]
            if held is not None:
                newest[other] = max(held, scheduled_for)

    # (the same drug is the interval rules' business: skipped before its place is written;
    # most often every active order is of it, as ctx.same_drug_orders, shared with them, says)
    active = ctx.active_orders
    if len(ctx.same_drug_orders) != len(active):
        for order in active:
            ident = identify(order.drug, order.code_system, order.code_value)
            if ident.name != drug:
                note(ident, f"active order {order.order_id}", order.scheduled_for)
    for fold in ctx.folds:  # older orders, kept as a count per drug
        last = fold.last
        ident = identify(last.drug, last.code_system, last.code_value)
        if ident.name != drug:
            note(ident, f"active order {last.order_id}" if fold.count == 1 else
                 f"{fold.count} older active orders, up to order {last.order_id}",
                 last.scheduled_for)
    dated = bool(others)  # some other drug has an active order (else none can be stale)
    _note_medications(others, newest, ctx.event.patient.current_medications or (), knowledge, drug)
    if not others:
        return []

    rule_for = table.rule_for
    findings: list[Finding] = []
    concurrent = ctx.monograph.concurrent
    if concurrent is not None and dated:
        scheduled_for = ctx.scheduled_for
        for other in sorted(others):
            last = newest[other]
            if last is None:
                continue
            age = days_between(last, scheduled_for)
            if age > concurrent.stale_after_days:
                if rule_for(others[other][0]) is None:
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
    first = table.first
    for other, (classes, places) in sorted(others.items()):
        rule = first[classes] if classes in first else rule_for(classes)
        if rule is not None:
            label = table.labels[rule.drug_class]
            findings.append(ctx.finding(
                "combination", rule.drug_class, rule.severity,
                f"{other} ({'; '.join(places)}) is {_article(label)} {label}: {rule.concern}",
                {"other_drug": other, "drug_class": rule.drug_class, "found_in": places},
                rule.reference))
    return findings


def _note_medications(others: dict, newest: dict, meds, knowledge, drug: str) -> None:
    """check()'s note(ident, "current medications", None) for each current medication."""
    identify = knowledge.identify
    identities = knowledge._identities  # identify()'s memo, read first
    for med in meds:
        code = med.code
        key = (med.name, code.system, code.value) if code else (med.name, None, None)
        ident = identities.get(key)
        if ident is None:
            ident = identify(*key)
        other = ident.name
        if other != drug:  # note(ident, "current medications", None), inline: the most common
            known = others.get(other)
            if known is None:
                others[other] = (ident.classes, ["current medications"])
            elif "current medications" not in known[1]:
                known[1].append("current medications")
            newest[other] = None


def _medications_report(ctx: OrderContext, table: _Table,
                        meds) -> tuple[tuple[Finding, str, str], ...]:
    """What check() reports when the patient's only other drugs are current medications:
    (the finding ctx.finding makes, other drug, drug class) per finding, in check()'s order (no
    stale order: none is dated; every drug found in the current medications alone). The
    findings are kept by _medications_only, never given out: it gives out copies (again())."""
    others: dict[str, tuple[frozenset[str], list[str]]] = {}
    _note_medications(others, {}, meds, ctx.knowledge, ctx.monograph.drug)
    reported = []
    for other, (classes, places) in sorted(others.items()):
        rule = table.rule_for(classes)
        if rule is not None:
            label = table.labels[rule.drug_class]
            made = ctx.finding(
                "combination", rule.drug_class, rule.severity,
                f"{other} ({'; '.join(places)}) is {_article(label)} {label}: {rule.concern}",
                {"other_drug": other, "drug_class": rule.drug_class,
                 "found_in": ["current medications"]},
                rule.reference)
            reported.append((made, other, rule.drug_class))
    return tuple(reported)


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"
