"""Contraindication rules: facts about the patient that argue against giving the dose now.

Monograph sections used: [pregnancy], [lactation], [allergy], [[lab_limits]], [infection],
[indication]. Absent is not false: where a fact the check needs is missing or stale, a `data`
finding says so and the order cannot pass.
"""
from __future__ import annotations

import datetime as dt
import re

from ..contract import Finding, Lab
from . import OrderContext, days_between, days_text, num

MALE = {"male", "m"}


def check(ctx: OrderContext) -> list[Finding]:
    return [*_pregnancy(ctx), *_lactation(ctx), *_allergy(ctx), *_labs(ctx), *_conditions(ctx)]


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _pregnancy(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.pregnancy
    if rules is None:
        return []
    p = ctx.patient
    if p.pregnant:
        return [ctx.finding("contraindication", "pregnancy", rules.severity,
                            f"Patient is pregnant: {ctx.monograph.drug} is contraindicated in pregnancy",
                            {"pregnant": True}, rules.reference)]
    if p.pregnant is None:
        sex = (p.sex or "").strip().lower()
        age = age_on(p.birth_date, ctx.scheduled_for.date()) if p.birth_date else None
        could_be_pregnant = sex not in MALE and (
            age is None or rules.childbearing_age_from <= age <= rules.childbearing_age_to)
        if could_be_pregnant:
            return [ctx.missing(
                "pregnancy_unknown",
                f"Pregnancy status not given for a patient who may be pregnant (sex "
                f"{p.sex or 'unknown'}, age {age if age is not None else 'unknown'} on the scheduled "
                f"day): {ctx.monograph.drug} is contraindicated in pregnancy",
                {"sex": p.sex, "age_years": age,
                 "childbearing_age_from": rules.childbearing_age_from,
                 "childbearing_age_to": rules.childbearing_age_to}, rules.reference)]
    return []


def _lactation(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.lactation
    if rules is None or not ctx.patient.lactating:
        return []
    return [ctx.finding("contraindication", "lactation", rules.severity,
                        f"Patient is breastfeeding: {ctx.monograph.drug} is contraindicated during lactation",
                        {"lactating": True}, rules.reference)]


def _allergy(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.allergy
    if rules is None:
        return []
    names = ctx.monograph.names
    findings = []
    for allergy in ctx.patient.allergies or []:
        written = allergy.strip().lower()
        words = re.split(r"[^a-z0-9]+", written)
        if written in names or any(n in words for n in names if " " not in n):
            findings.append(ctx.finding(
                "contraindication", "allergy", rules.severity,
                f"Patient is allergic to {allergy!r} ({ctx.monograph.drug}): do not give",
                {"allergy": allergy, "drug_names": names}, rules.reference))
    return findings


def _labs(ctx: OrderContext) -> list[Finding]:
    findings: list[Finding] = []
    knowledge = ctx.knowledge
    for limit in ctx.monograph.lab_limits:
        lab = knowledge.labs[limit.lab]
        key = limit.lab.lower()
        results = [x for x in ctx.patient.labs or [] if knowledge.lab(x.code) == limit.lab]
        if not results:
            if limit.required:
                findings.append(ctx.missing(
                    f"{key}_missing",
                    f"No {lab.name} ({limit.lab}) result: it is needed before every dose "
                    f"(within {num(limit.max_age_days)} days; limit {num(limit.below)} {lab.unit})",
                    {"lab": limit.lab, "max_age_days": num(limit.max_age_days),
                     "limit_below": num(limit.below), "limit_unit": lab.unit}, limit.reference))
            continue
        latest: Lab = max(results, key=lambda x: x.taken_at)
        age_days = days_between(latest.taken_at, ctx.scheduled_for)
        base = {"lab": limit.lab, "value": num(latest.value, 3), "unit": latest.unit,
                "taken_at": latest.taken_at.isoformat()}
        if limit.max_age_days is not None and age_days > limit.max_age_days:
            findings.append(ctx.missing(
                f"{key}_stale",
                f"The latest {lab.name} ({limit.lab}) was taken {days_text(age_days)} before the "
                f"scheduled dose; it must be at most {days_text(limit.max_age_days)} old",
                {**base, "age_days": num(age_days, 4), "max_age_days": num(limit.max_age_days)},
                limit.reference))
        factor = knowledge.lab_factor(limit.lab, latest.unit)
        if factor is None:
            findings.append(ctx.missing(
                f"{key}_unit_unknown",
                f"{lab.name} ({limit.lab}) reported in {latest.unit!r}, a unit the knowledge cannot "
                f"convert to {lab.unit}: compare with the limit ({num(limit.below)} {lab.unit}) by hand",
                {**base, "known_units": sorted(lab.factors)}, limit.reference))
            continue
        value = latest.value * factor
        if value < limit.below:
            converted = "" if latest.unit.strip() == lab.unit else f" = {num(value, 3)} {lab.unit}"
            findings.append(ctx.finding(
                "contraindication", f"{key}_low", limit.severity,
                f"Latest {lab.name} {num(latest.value, 3)} {latest.unit}{converted} "
                f"({latest.taken_at.date().isoformat()}) is below {num(limit.below)} {lab.unit}",
                {**base, "value_in_limit_unit": num(value, 3), "limit_below": num(limit.below),
                 "limit_unit": lab.unit}, limit.reference))
    return findings


def _matches(condition: str, terms: list[str], exact: list[str], excluding: list[str]) -> bool:
    c = condition.strip().lower()
    if any(x in c for x in excluding):
        return False
    return c in exact or any(t in c for t in terms)


def _conditions(ctx: OrderContext) -> list[Finding]:
    infection, indication = ctx.monograph.infection, ctx.monograph.indication
    if infection is None and indication is None:
        return []
    conditions = ctx.patient.conditions
    if conditions is None:
        needed = [r for r in (indication, infection) if r is not None]
        return [ctx.missing(
            "conditions_missing",
            "No conditions given: the indication and active-infection checks cannot pass without them",
            {"needed_for": [n for n, r in (("indication", indication), ("infection", infection)) if r]},
            needed[0].reference)]
    findings: list[Finding] = []
    if infection is not None:
        for condition in conditions:
            if _matches(condition, infection.terms, infection.exact, infection.excluding):
                findings.append(ctx.finding(
                    "contraindication", "active_infection", infection.severity,
                    f"Active infection among the conditions ({condition!r}): weigh the infection risk "
                    f"of {ctx.monograph.drug} before giving", {"condition": condition},
                    infection.reference))
    if indication is not None and not any(
            _matches(c, indication.terms, indication.exact, indication.excluding) for c in conditions):
        findings.append(ctx.finding(
            "contraindication", "no_indication", indication.severity,
            f"No labeled indication among the conditions ({', '.join(conditions) or 'none listed'}): "
            f"{ctx.monograph.drug} is indicated for {indication.terms[0]}",
            {"conditions": list(conditions)}, indication.reference))
    return findings
