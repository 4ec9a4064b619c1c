"""Contraindication rules: facts about the patient that argue against giving the dose now.

Monograph sections used: [pregnancy], [contraception], [lactation], [allergy],
[infusion_reaction_history], [[lab_limits]], [infection], [indication], [patient] (age).
Absent is not false: where a fact the check needs is missing or stale, a `data` finding says so
and the order cannot pass. A message's wording follows the severity the monograph gives
(`concern`): only a `contraindicated` rule says "contraindicated".
"""
from __future__ import annotations

import datetime as dt
import functools
import re

from ..contract import Finding, Lab, severity_rank
from ..knowledge import lab_limit_names
from ..knowledge.models import slug
from . import OrderContext, days_between, days_text, num

MALE = {"male", "m"}

# how a message states a concern of each severity (never "contraindicated" unless it is)
CONCERN = {
    "contraindicated": "is contraindicated",
    "major": "is not recommended",
    "warning": "calls for caution",
    "info": "calls for attention",
}


def concern(severity: str) -> str:
    return CONCERN[severity]


def check(ctx: OrderContext) -> list[Finding]:
    return [*_age(ctx), *_pregnancy(ctx), *_contraception(ctx), *_lactation(ctx),
            *_allergy(ctx), *_labs(ctx), *_conditions(ctx)]


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _age_years(ctx: OrderContext) -> int | None:
    p = ctx.patient
    return age_on(p.birth_date, ctx.scheduled_for.date()) if p.birth_date else None


def _of_childbearing_potential(ctx: OrderContext, age_from: int | None, age_to: int | None) -> bool:
    """Sex female or unknown, and age on the scheduled day within the bounds or unknown."""
    sex = (ctx.patient.sex or "").strip().lower()
    age = _age_years(ctx)
    return sex not in MALE and (age is None or age_from is None or age_to is None
                                or age_from <= age <= age_to)


def _age(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.patient
    if rules is None or rules.min_age_years is None:
        return []
    reference = rules.age_reference or rules.reference
    age = _age_years(ctx)
    if age is None:
        if severity_rank(rules.age_severity) < severity_rank("warning"):
            return []  # a rule that could not flag the order asks for no absent fact
        return [ctx.missing(
            "age_unknown",
            f"No birth date: {ctx.monograph.drug} is labeled for patients aged "
            f"{rules.min_age_years} and over, so the age must be known",
            {"min_age_years": rules.min_age_years}, reference)]
    if age < rules.min_age_years:
        return [ctx.finding(
            "contraindication", "age_below_minimum", rules.age_severity,
            f"Patient is {age} on the scheduled day: the safety and effectiveness of "
            f"{ctx.monograph.drug} below {rules.min_age_years} years have not been established",
            {"age_years": age, "min_age_years": rules.min_age_years,
             "birth_date": ctx.patient.birth_date.isoformat()}, reference)]
    return []


def _pregnancy(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.pregnancy
    if rules is None:
        return []
    p = ctx.patient
    if p.pregnant:
        return [ctx.finding("contraindication", "pregnancy", rules.severity,
                            f"Patient is pregnant: {ctx.monograph.drug} {concern(rules.severity)} "
                            f"in pregnancy", {"pregnant": True}, rules.reference)]
    if p.pregnant is None:
        age = _age_years(ctx)
        if _of_childbearing_potential(ctx, rules.childbearing_age_from, rules.childbearing_age_to):
            return [ctx.missing(
                "pregnancy_unknown",
                f"Pregnancy status not given for a patient who may be pregnant (sex "
                f"{p.sex or 'unknown'}, age {age if age is not None else 'unknown'} on the scheduled "
                f"day): {ctx.monograph.drug} {concern(rules.severity)} in pregnancy",
                {"sex": p.sex, "age_years": age,
                 "childbearing_age_from": rules.childbearing_age_from,
                 "childbearing_age_to": rules.childbearing_age_to}, rules.reference)]
    return []


def _contraception(ctx: OrderContext) -> list[Finding]:
    rules, pregnancy = ctx.monograph.contraception, ctx.monograph.pregnancy
    if rules is None or pregnancy is None or ctx.patient.pregnant:
        return []
    if not _of_childbearing_potential(ctx, pregnancy.childbearing_age_from,
                                      pregnancy.childbearing_age_to):
        return []
    age = _age_years(ctx)
    after = rules.months_after_last_dose
    until = (f" and for {num(after)} month{'s' if after != 1 else ''} after the last dose"
             if after else "")
    return [ctx.finding(
        "contraindication", "contraception", rules.severity,
        f"A patient who may become pregnant (sex {ctx.patient.sex or 'unknown'}, age "
        f"{age if age is not None else 'unknown'}): counsel effective contraception during "
        f"{ctx.monograph.drug} treatment{until}",
        {"sex": ctx.patient.sex, "age_years": age,
         "childbearing_age_from": pregnancy.childbearing_age_from,
         "childbearing_age_to": pregnancy.childbearing_age_to,
         "months_after_last_dose": num(after)}, rules.reference)]


def _lactation(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.lactation
    if rules is None:
        return []
    p = ctx.patient
    if p.lactating:
        return [ctx.finding("contraindication", "lactation", rules.severity,
                            f"Patient is breastfeeding: {ctx.monograph.drug} "
                            f"{concern(rules.severity)} during lactation",
                            {"lactating": True}, rules.reference)]
    if p.lactating is not None or severity_rank(rules.severity) < severity_rank("warning"):
        return []  # known, or a rule that could not flag the order anyway
    age_from, age_to = rules.childbearing_age_from, rules.childbearing_age_to
    if age_from is None and ctx.monograph.pregnancy is not None:
        age_from = ctx.monograph.pregnancy.childbearing_age_from
        age_to = ctx.monograph.pregnancy.childbearing_age_to
    if not _of_childbearing_potential(ctx, age_from, age_to):
        return []
    age = _age_years(ctx)
    return [ctx.missing(
        "lactation_unknown",
        f"Lactation status not given for a patient who may be breastfeeding (sex "
        f"{p.sex or 'unknown'}, age {age if age is not None else 'unknown'} on the scheduled "
        f"day): {ctx.monograph.drug} {concern(rules.severity)} during lactation",
        {"sex": p.sex, "age_years": age, "childbearing_age_from": age_from,
         "childbearing_age_to": age_to}, rules.reference)]


def _names_the_drug(entry: str, names: list[str]) -> bool:
    """The entry names the drug: one of its names, as a whole word or words ("isatuximab-irfc
    reaction" names "isatuximab" and "isatuximab-irfc"; "nonisatuximab" names neither)."""
    written = entry.strip().lower()
    return written in names or any(_whole_word(n).search(written) for n in names if n)


@functools.lru_cache(maxsize=4096)
def _whole_word(name: str) -> re.Pattern[str]:
    """`name` as a whole word or words (compiled once per name: names come from the knowledge)."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])")


@functools.lru_cache(maxsize=4096)
def _word_start(phrase: str) -> re.Pattern[str]:
    """`phrase` (lower-cased) at the start of a word (compiled once per knowledge phrase)."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(phrase.lower())}")


def _allergy(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.allergy
    reaction = _reaction_history(ctx)
    if rules is None:
        return reaction
    names = ctx.monograph.names
    allergies = ctx.patient.allergies
    if allergies is None:
        if severity_rank(rules.severity) < severity_rank("warning"):
            return reaction
        return [*reaction, ctx.missing(
            "allergies_missing",
            f"No allergies given (absent is not 'none known'; an empty list is): an allergy to "
            f"{ctx.monograph.drug} {concern(rules.severity)}",
            {"drug_names": names}, rules.reference)]
    findings = []
    for allergy in allergies:
        if _names_the_drug(allergy, names):
            findings.append(ctx.finding(
                "contraindication", "allergy", rules.severity,
                f"Patient is allergic to {allergy!r} ({ctx.monograph.drug}): "
                + ("do not give" if rules.severity == "contraindicated"
                   else f"giving it {concern(rules.severity)}"),
                {"allergy": allergy, "drug_names": names}, rules.reference))
    return [*reaction, *findings]


def _reaction_history(ctx: OrderContext) -> list[Finding]:
    """A prior severe infusion reaction to the drug among the conditions or allergies; an
    allergy entry the [allergy] rule reports (it names the drug) is left to that rule, unless
    that rule's severity is below this one's (a milder allergy rule must not soften a severe
    reaction recorded among the allergies)."""
    rules = ctx.monograph.infusion_reaction_history
    if rules is None:
        return []
    names = ctx.monograph.names
    entries = [("conditions", c) for c in ctx.patient.conditions or []]
    allergy = ctx.monograph.allergy
    if allergy is None or severity_rank(allergy.severity) < severity_rank(rules.severity):
        entries += [("allergies", a) for a in ctx.patient.allergies or []]
    findings = []
    terms = [t.lower() for t in rules.terms]
    severe = [t.lower() for t in rules.severe]
    for where, entry in entries:
        text = entry.strip().lower()
        if (_names_the_drug(entry, names) and any(t in text for t in terms)
                and any(t in text for t in severe)):
            findings.append(ctx.finding(
                "contraindication", "prior_severe_infusion_reaction", rules.severity,
                f"A prior severe infusion reaction to {ctx.monograph.drug} is recorded among the "
                f"{where} ({entry!r}): giving it again {concern(rules.severity)}",
                {"found_in": where, "entry": entry, "drug_names": names}, rules.reference))
    return findings


def _exact(x: float) -> float:
    """x to 12 significant digits: a product of decimal numbers without binary noise
    (1.5 x 1.2 is 1.8, not 1.7999999999999998; 18 mg/L x 0.1 is 1.8), so that a value at a
    limit compares as at it."""
    return float(f"{x:.12g}")


def _upper(limit, lab) -> float | None:
    """The limit's upper bound in the lab's unit: `above`, or `above_uln` x the lab's ULN."""
    if limit.above is not None:
        return limit.above
    return _exact(limit.above_uln * lab.uln) if limit.above_uln is not None else None


# per knowledge object (a lab limit, a list of terms), what is computed from it alone: keyed by
# id() and kept with the object itself, so a reloaded knowledge never reuses another's entry
_PER_KNOWLEDGE: dict[tuple[str, int, int], tuple[object, object, object]] = {}


def _memo(kind: str, a: object, b: object, compute):
    key = (kind, id(a), id(b))
    hit = _PER_KNOWLEDGE.get(key)
    if hit is not None and hit[0] is a and hit[1] is b:
        return hit[2]
    value = compute()
    if len(_PER_KNOWLEDGE) > 4096:
        _PER_KNOWLEDGE.clear()
    _PER_KNOWLEDGE[key] = (a, b, value)
    return value


def _limit_text(limit, lab) -> tuple[str | None, str | None, dict]:
    """('below 1 10^9/L', 'above 3 x ULN (120 U/L)') as far as given, and the evidence (read
    only: callers copy it)."""
    return _memo("limit_text", limit, lab, lambda: _compute_limit_text(limit, lab))


def _compute_limit_text(limit, lab) -> tuple[str | None, str | None, dict]:
    low = high = None
    evidence: dict = {}
    if limit.below is not None:
        low = f"below {num(limit.below)} {lab.unit}"
        evidence["limit_below"] = num(limit.below)
    upper = _upper(limit, lab)
    if upper is not None:
        evidence["limit_above"] = num(upper, 3)
        if limit.above_uln is not None:
            high = f"above {num(limit.above_uln)} x ULN ({num(upper, 3)} {lab.unit})"
            evidence.update(uln_multiple=num(limit.above_uln), limit_uln=num(lab.uln, 3))
        else:
            high = f"above {num(upper)} {lab.unit}"
    evidence["limit_unit"] = lab.unit
    return low, high, evidence


def _labs(ctx: OrderContext) -> list[Finding]:
    findings: list[Finding] = []
    emitted: set[str] = set()  # two limits on one lab: one missing/stale/unit finding
    knowledge = ctx.knowledge

    def add(f: Finding) -> None:
        if f.rule_id not in emitted:
            emitted.add(f.rule_id)
            findings.append(f)

    for limit in ctx.monograph.lab_limits:
        lab = knowledge.labs[limit.lab]
        key = slug(limit.lab)
        low_text, high_text, limit_evidence = _limit_text(limit, lab)
        limit_text = " or ".join(t for t in (low_text, high_text) if t)
        results = [x for x in ctx.patient.labs or [] if knowledge.lab(x.code) == limit.lab]
        if not results:
            if limit.required:
                add(ctx.missing(
                    f"{key}_missing",
                    f"No {lab.name} ({limit.lab}) result: it is needed before every dose "
                    f"(within {num(limit.max_age_days)} days; limit {limit_text})",
                    {"lab": limit.lab, "max_age_days": num(limit.max_age_days), **limit_evidence},
                    limit.reference))
            continue
        latest: Lab = max(results, key=lambda x: x.taken_at)
        age_days = days_between(latest.taken_at, ctx.scheduled_for)
        base = {"lab": limit.lab, "value": num(latest.value, 3), "unit": latest.unit,
                "taken_at": latest.taken_at.isoformat()}
        if limit.max_age_days is not None and age_days > limit.max_age_days:
            add(ctx.missing(
                f"{key}_stale",
                f"The latest {lab.name} ({limit.lab}) was taken {days_text(age_days)} before the "
                f"scheduled dose; it must be at most {days_text(limit.max_age_days)} old",
                {**base, "age_days": num(age_days, 4), "max_age_days": num(limit.max_age_days)},
                limit.reference))
        factor = knowledge.lab_factor(limit.lab, latest.unit)
        if factor is None:
            add(ctx.missing(
                f"{key}_unit_unknown",
                f"{lab.name} ({limit.lab}) reported in {latest.unit!r}, a unit the knowledge cannot "
                f"convert to {lab.unit}: compare with the limit ({limit_text}) by hand",
                {**base, "known_units": sorted(lab.factors)}, limit.reference))
            continue
        value = _exact(latest.value * factor)
        converted = "" if latest.unit.strip() == lab.unit else f" = {num(value, 3)} {lab.unit}"
        stated = (f"Latest {lab.name} {num(latest.value, 3)} {latest.unit}{converted} "
                  f"({latest.taken_at.date().isoformat()})")
        evidence = {**base, "value_in_limit_unit": num(value, 3), **limit_evidence}
        names = lab_limit_names(limit)
        if limit.below is not None and value < limit.below:
            add(ctx.finding("contraindication", names["low"], limit.severity,
                            f"{stated} is {low_text}", evidence, limit.reference))
        upper = _upper(limit, lab)
        if upper is not None and value > upper:
            times = ""
            if limit.above_uln is not None:
                times = f" ({num(value / lab.uln, 2)} x ULN {num(lab.uln, 3)} {lab.unit})"
                evidence["value_uln_multiple"] = num(value / lab.uln, 3)
            add(ctx.finding("contraindication", names["high"], limit.severity,
                            f"{stated}{times} is {high_text}", evidence, limit.reference))
    return findings


# words that undo an exclusion written at most two words before it: "not resolved", "despite
# PJP prophylaxis" (a term written as "unresolved" is no exclusion at all: an exclusion starts
# a word)
NEGATIONS = ("not", "non", "never", "no longer", "not yet", "despite", "failed", "failing")
_NEGATED = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(n) for n in NEGATIONS)
                      + r")(?:[^a-z0-9]+[a-z0-9]+){0,2}[^a-z0-9]*$")


def _excluded(c: str, excluding: list[str]) -> bool:
    """An exclusion phrase at the start of a word and not negated right before it."""
    for x in excluding:
        for m in _word_start(x).finditer(c):
            if not _NEGATED.search(c[:m.start()]):
                return True
    return False


def _matches(condition: str, terms: list[str], exact: list[str], excluding: list[str]) -> bool:
    """Case does not matter on either side: a monograph may write "Sepsis" or "UTI"."""
    c = condition.strip().lower()
    if _excluded(c, excluding):
        return False
    exact_lower, terms_lower = _memo("terms", exact, terms, lambda: (
        frozenset(e.lower() for e in exact), tuple(t.lower() for t in terms)))
    return c in exact_lower or any(t in c for t in terms_lower)


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
