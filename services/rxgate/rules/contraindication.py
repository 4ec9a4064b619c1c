"""Contraindication rules: facts about the patient that argue against giving the dose now.

Monograph sections used: [pregnancy], [contraception], [lactation], [allergy],
[infusion_reaction_history], [[lab_limits]], [infection], [indication], [patient] (age).
Absent is not false: where a fact the check needs is missing or stale, a `data` finding says so
and the order cannot pass. A message's wording follows the severity the monograph gives
(`concern`): only a `contraindicated` rule says "contraindicated".
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import re
from typing import Hashable, TypeVar

from ..contract import Finding, Lab, severity_rank
from ..knowledge import lab_limit_names
from ..knowledge.memo import memoised
from ..knowledge.models import slug
from ..plan import least_time
from . import OrderContext, again, days_between, days_text, num

MALE = {"male", "m"}
T = TypeVar("T")

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
    # (the event is the contract's models or struct_event's structs: read by attribute)
    patient = ctx.patient
    birth = patient.birth_date
    if birth:  # the age, once per order: age_on(birth, the scheduled day), see _age_on
        day = ctx.scheduled_for.date()
        try:
            start, end, age = _ages[birth]
            if not start <= day < end:
                age = _age_on(birth, day)
        except (KeyError, TypeError):
            age = _age_on(birth, day)
    else:
        age = None
    try:  # _tables(ctx), kept read first
        tables = ctx.kept["contraindication"]
    except KeyError:
        tables = _tables(ctx)
    # every rule but the lab limits reads only these facts (and the monograph): what they say
    # is kept per facts as written (most patients' orders repeat them; most say nothing)
    allergies, conditions = patient.allergies, patient.conditions
    facts = (age, patient.sex, patient.pregnant, patient.lactating,
             None if allergies is None else tuple(allergies),
             None if conditions is None else tuple(conditions))
    said = tables.said.get(facts)
    if said is _SILENT:  # most orders: _labs, its quiet pass first
        if not tables.lab_groups or _quiet(ctx, tables):
            return []
        return _lab_findings(ctx, tables, _latest(ctx, tables))
    if said is None:
        return _say_and_remember(ctx, tables, age, facts)
    age_said, rest, more = said
    return [*(_age(ctx, age) if age_said else ()), *_again(rest), *_labs(ctx, tables),
            *_again(more)]


# tables.said's value for facts of which every rule but the lab limits says nothing
_SILENT = object()


def _say_and_remember(ctx: OrderContext, tables: _Tables, age: int | None,
                      facts: tuple) -> list[Finding]:
    """check() without its memo, keeping what the rules said of these facts (tables.said):
    whether _age said anything (its evidence has the birth date, which the facts do not: it
    is asked again), and the findings of the other rules, given out as copies (_again)."""
    said = _age(ctx, age)
    rest = (*_pregnancy(ctx, age), *_contraception(ctx, age), *_lactation(ctx, age),
            *_allergy(ctx, tables))
    labs, more = _labs(ctx, tables), tuple(_conditions(ctx, tables))
    _remember(tables.said, facts,
              (bool(said), rest, more) if said or rest or more else _SILENT)
    return [*said, *_again(rest), *labs, *_again(more)]


def _again(findings: tuple[Finding, ...]) -> list[Finding]:
    """Each of `findings` (kept by tables.said) again, a new finding with an evidence of its
    own: the rules' evidence holds scalars and lists of strings (a new list on every call),
    copied one level down. The same values as the rules give of the same facts (again())."""
    return [again(f, {k: v.copy() if type(v) is list else v
                      for k, v in f.__dict__["evidence"].items()}) for f in findings]


def age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# a birth date (a date, as written: the parsers keep one object per recent string, so its hash
# is computed once) -> (start, end, age): age_on(birth, day) is age for every day with
# start <= day < end, the year from one birthday to the next; bounded (_remember)
_ages: dict = {}


def _age_on(birth: dt.date, day: dt.date) -> int:
    """age_on(birth, day), keeping the year of that age in _ages for a birth date (a date, not a
    subclass) where both its birthdays are dates."""
    age = age_on(birth, day)
    if type(birth) is dt.date and type(day) is dt.date:
        try:
            start, end = _birthday(birth, birth.year + age), _birthday(birth, birth.year + age + 1)
        except (ValueError, OverflowError):  # a birthday before year 1 or after year 9999
            return age
        _remember(_ages, birth, (start, end, age))
    return age


def _birthday(birth: dt.date, year: int) -> dt.date:
    """The first day of `year` on which age_on counts the year of `birth` as passed: the birth
    date's month and day, or for 29 February in a year without one, 1 March."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return dt.date(year, 3, 1)
    return dt.date(year, birth.month, birth.day)


def _of_childbearing_potential(ctx: OrderContext, age: int | None, age_from: int | None,
                               age_to: int | None) -> bool:
    """Sex female or unknown, and age on the scheduled day within the bounds or unknown."""
    sex = (ctx.patient.sex or "").strip().lower()
    return sex not in MALE and (age is None or age_from is None or age_to is None
                                or age_from <= age <= age_to)


_WARNING = severity_rank("warning")


def _age(ctx: OrderContext, age: int | None) -> list[Finding]:
    rules = ctx.monograph.patient
    if rules is None or rules.min_age_years is None:
        return []
    reference = rules.age_reference or rules.reference
    if age is None:
        if severity_rank(rules.age_severity) < _WARNING:
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


def _pregnancy(ctx: OrderContext, age: int | None) -> list[Finding]:
    rules = ctx.monograph.pregnancy
    if rules is None:
        return []
    p = ctx.patient
    if p.pregnant:
        return [ctx.finding("contraindication", "pregnancy", rules.severity,
                            f"Patient is pregnant: {ctx.monograph.drug} {concern(rules.severity)} "
                            f"in pregnancy", {"pregnant": True}, rules.reference)]
    if p.pregnant is None:
        if _of_childbearing_potential(ctx, age, rules.childbearing_age_from,
                                      rules.childbearing_age_to):
            return [ctx.missing(
                "pregnancy_unknown",
                f"Pregnancy status not given for a patient who may be pregnant (sex "
                f"{p.sex or 'unknown'}, age {age if age is not None else 'unknown'} on the scheduled "
                f"day): {ctx.monograph.drug} {concern(rules.severity)} in pregnancy",
                {"sex": p.sex, "age_years": age,
                 "childbearing_age_from": rules.childbearing_age_from,
                 "childbearing_age_to": rules.childbearing_age_to}, rules.reference)]
    return []


def _contraception(ctx: OrderContext, age: int | None) -> list[Finding]:
    rules, pregnancy = ctx.monograph.contraception, ctx.monograph.pregnancy
    if rules is None or pregnancy is None or ctx.patient.pregnant:
        return []
    if not _of_childbearing_potential(ctx, age, pregnancy.childbearing_age_from,
                                      pregnancy.childbearing_age_to):
        return []
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


def _lactation(ctx: OrderContext, age: int | None) -> list[Finding]:
    rules = ctx.monograph.lactation
    if rules is None:
        return []
    p = ctx.patient
    if p.lactating:
        return [ctx.finding("contraindication", "lactation", rules.severity,
                            f"Patient is breastfeeding: {ctx.monograph.drug} "
                            f"{concern(rules.severity)} during lactation",
                            {"lactating": True}, rules.reference)]
    if p.lactating is not None or severity_rank(rules.severity) < _WARNING:
        return []  # known, or a rule that could not flag the order anyway
    age_from, age_to = rules.childbearing_age_from, rules.childbearing_age_to
    if age_from is None and ctx.monograph.pregnancy is not None:
        age_from = ctx.monograph.pregnancy.childbearing_age_from
        age_to = ctx.monograph.pregnancy.childbearing_age_to
    if not _of_childbearing_potential(ctx, age, age_from, age_to):
        return []
    return [ctx.missing(
        "lactation_unknown",
        f"Lactation status not given for a patient who may be breastfeeding (sex "
        f"{p.sex or 'unknown'}, age {age if age is not None else 'unknown'} on the scheduled "
        f"day): {ctx.monograph.drug} {concern(rules.severity)} during lactation",
        {"sex": p.sex, "age_years": age, "childbearing_age_from": age_from,
         "childbearing_age_to": age_to}, rules.reference)]


@functools.lru_cache(maxsize=4096)
def _whole_word(name: str) -> re.Pattern[str]:
    """`name` as a whole word or words (compiled once per name: names come from the knowledge)."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])")


@functools.lru_cache(maxsize=4096)
def _word_start(phrase: str) -> re.Pattern[str]:
    """`phrase` (lower-cased) at the start of a word (compiled once per knowledge phrase)."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(phrase.lower())}")


# --- what the rules below compute from a monograph alone, once per monograph of a knowledge ---

# a memo of a pure result per input as written (a condition, an allergy, a patient's facts):
# patients repeat theirs on every order; bounded (cleared when it holds this many entries)
MEMO_LIMIT = 10_000


def _remember(memo: dict, key: Hashable, value: T) -> T:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


class _LabRow:
    """One [[lab_limits]] entry with everything that depends on the knowledge alone."""

    __slots__ = ("limit", "lab", "code", "key", "low_text", "high_text", "limit_text",
                 "evidence", "upper", "low_name", "high_name", "below", "max_age_days",
                 "missing", "missing_evidence")

    def __init__(self, limit, lab) -> None:
        self.limit, self.lab, self.code = limit, lab, limit.lab
        self.key = slug(limit.lab)
        self.low_text, self.high_text, self.evidence = _limit_text(limit, lab)
        self.limit_text = " or ".join(t for t in (self.low_text, self.high_text) if t)
        self.upper = _upper(limit, lab)
        names = lab_limit_names(limit)
        self.low_name, self.high_name = names.get("low"), names.get("high")
        self.below, self.max_age_days = limit.below, limit.max_age_days
        # the message and evidence of the `<lab>_missing` finding (nothing of the patient's)
        self.missing = (f"No {lab.name} ({limit.lab}) result: it is needed before every dose "
                        f"(within {num(limit.max_age_days)} days; limit {self.limit_text})"
                        if limit.required else None)
        self.missing_evidence = ({"lab": limit.lab, "max_age_days": num(limit.max_age_days),
                                  **self.evidence} if limit.required else None)


class _LabGroup:
    """The [[lab_limits]] rows on one lab, as _labs' quiet path reads them: whether a missing
    result says something, the youngest age limit (a result older than it is stale for some
    row), each row's bounds, the open interval of values clear of every bound (see _clear) and
    the factor of each unit as written (knowledge.lab_factor, bounded memo)."""

    __slots__ = ("code", "bit", "missing", "max_age_days", "stale_from", "bounds", "floor",
                 "ceiling", "factors")

    def __init__(self, code: str, bit: int, rows: list[_LabRow]) -> None:
        self.code, self.bit = code, bit  # bit: the group's in a set of groups as an int
        self.missing = any(r.missing is not None for r in rows)
        ages = [r.max_age_days for r in rows if r.max_age_days is not None]
        self.max_age_days = limit = min(ages) if ages else None
        # the same limit as a time: a result taken `age` before the dose (a timedelta) is
        # older than it, (age.total_seconds() / 86400 > limit), exactly when age >= stale_from
        # (should the test raise: every result stale, so _quiet declines)
        self.stale_from = None if limit is None else least_time(
            lambda age: age.total_seconds() / 86400 > limit, dt.timedelta.min)
        self.bounds = tuple((r.below, r.upper) for r in rows)
        self.floor = max((_clear(r.below, 1) for r in rows if r.below is not None),
                         default=-math.inf)
        self.ceiling = min((_clear(r.upper, -1) for r in rows if r.upper is not None),
                           default=math.inf)
        self.factors: dict[str, float | None] = {}


# how far (relative) a value must be from a bound for the fast path to call it clear of the
# bound: far beyond the 1e-9 within which the exact comparison uses _exact(), and beyond the
# at most 1e-11 by which _exact moves a value
CLEAR = 1e-6


def _clear(bound: float, side: int) -> float:
    """The end of the values clear of `bound` on one side (1: above a `below` bound, -1: below
    an `upper` one): a value strictly past it compares as within the bound (_within) whatever
    the binary noise. An infinite or NaN bound is never clear (the exact check decides)."""
    if not math.isfinite(bound):
        return math.inf if side > 0 else -math.inf
    return bound + side * CLEAR * abs(bound)


# _exact(raw) compared with a limit (raw: a value times its unit's factor): raw itself where it
# is not within 1e-9 of it (_exact moves a value by at most 1e-11 of it), else _exact(raw)
def _is_below(raw: float, below: float) -> bool:
    return raw < below if abs(raw - below) > 1e-9 * abs(raw) else _exact(raw) < below


def _is_above(raw: float, upper: float) -> bool:
    return raw > upper if abs(raw - upper) > 1e-9 * abs(raw) else _exact(raw) > upper


def _within(raw: float, bounds) -> bool:
    """The exact check: `raw` is neither below a `below` nor above an `upper` of `bounds`."""
    for below, upper in bounds:
        if below is not None and _is_below(raw, below):
            return False
        if upper is not None and _is_above(raw, upper):
            return False
    return True


class _Tables:
    """A monograph's contraindication tables (Knowledge.per_monograph)."""

    def __init__(self, knowledge, mono) -> None:
        self.names = mono.names
        self.name_set = frozenset(self.names)
        self.name_patterns = tuple(_whole_word(n) for n in self.names if n)
        self.labs = tuple(_LabRow(limit, knowledge.labs[limit.lab]) for limit in mono.lab_limits)
        # per lab a limit is on (first-row order): what _labs' quiet path checks (_LabGroup)
        self.lab_groups = tuple(_LabGroup(code, 1 << i, [r for r in self.labs if r.code == code])
                                for i, code in enumerate(dict.fromkeys(r.code for r in self.labs)))
        self.required_bits = sum(g.bit for g in self.lab_groups if g.missing)
        self.group_of_lab = {g.code: g for g in self.lab_groups}
        # a lab code as written -> its group (None: a lab no limit is on), bounded memo
        self.lab_index: dict[str, _LabGroup | None] = {}
        self.names_memo: dict[str, bool] = {}  # allergy or condition as written -> names the drug
        reaction = mono.infusion_reaction_history
        self.reaction_memo: dict[str, bool] = {}  # entry as written -> a severe reaction
        self.reaction_terms = tuple(t.lower() for t in reaction.terms) if reaction else ()
        self.reaction_severe = tuple(t.lower() for t in reaction.severe) if reaction else ()
        allergy = mono.allergy
        # allergy entries are reaction-history entries unless the [allergy] rule reports them
        # at least as severely
        self.reaction_in_allergies = reaction is not None and (
            allergy is None or severity_rank(allergy.severity) < severity_rank(reaction.severity))
        self.infection = _Terms(mono.infection) if mono.infection else None
        self.indication = _Terms(mono.indication) if mono.indication else None
        # a patient's conditions as written -> _conditions_verdict (bounded like the memos above)
        self.conditions_memo: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
        # the facts check() keys on -> what every rule but the lab limits says of them:
        # _SILENT (nothing), else (whether _age says anything, the findings of the rules after
        # it and before the lab limits, those of _conditions) (_say_and_remember)
        self.said: dict[tuple, object] = {}

    def group_of(self, knowledge, written: str) -> _LabGroup | None:
        """The group of the lab a result's code as written names (None: no limit is on it)."""
        return self.group_of_lab.get(knowledge.lab(written))

    def names_the_drug(self, entry: str) -> bool:
        """The entry names the drug: one of its names, as a whole word or words
        ("isatuximab-irfc reaction" names "isatuximab" and "isatuximab-irfc"; "nonisatuximab"
        names neither). Memoised per entry as written."""
        try:
            return self.names_memo[entry]
        except KeyError:
            written = entry.strip().lower()
            return _remember(self.names_memo, entry, written in self.name_set or any(
                p.search(written) for p in self.name_patterns))

    def severe_reaction(self, entry: str) -> bool:
        """The entry records a severe infusion reaction to the drug, memoised per entry."""
        try:
            return self.reaction_memo[entry]
        except KeyError:
            text = entry.strip().lower()
            return _remember(self.reaction_memo, entry, (
                self.names_the_drug(entry) and any(t in text for t in self.reaction_terms)
                and any(t in text for t in self.reaction_severe)))


class _Terms:
    """A [infection] or [indication] section lowered once, with a memo per condition text."""

    __slots__ = ("exact", "terms", "excluding", "memo")

    def __init__(self, rules) -> None:
        self.exact = frozenset(e.lower() for e in rules.exact)
        self.terms = tuple(t.lower() for t in rules.terms)
        self.excluding = tuple(_word_start(x) for x in rules.excluding)
        self.memo: dict[str, bool] = {}

    def matches(self, condition: str) -> bool:
        try:
            return self.memo[condition]
        except KeyError:
            return _remember(self.memo, condition, _matches(
                condition, self.terms, self.exact, self.excluding))


def _tables(ctx: OrderContext) -> _Tables:
    return ctx.knowledge.per_monograph("contraindication", ctx.monograph, _Tables)


def _allergy(ctx: OrderContext, tables: _Tables) -> list[Finding]:
    rules = ctx.monograph.allergy
    reaction = _reaction_history(ctx, tables)
    if rules is None:
        return reaction
    allergies = ctx.patient.allergies
    if allergies is None:
        if severity_rank(rules.severity) < _WARNING:
            return reaction
        return [*reaction, ctx.missing(
            "allergies_missing",
            f"No allergies given (absent is not 'none known'; an empty list is): an allergy to "
            f"{ctx.monograph.drug} {concern(rules.severity)}",
            {"drug_names": ctx.monograph.names}, rules.reference)]
    if not allergies:
        return reaction
    findings = []
    names = None
    for allergy in allergies:
        if tables.names_the_drug(allergy):
            if names is None:
                names = ctx.monograph.names
            findings.append(ctx.finding(
                "contraindication", "allergy", rules.severity,
                f"Patient is allergic to {allergy!r} ({ctx.monograph.drug}): "
                + ("do not give" if rules.severity == "contraindicated"
                   else f"giving it {concern(rules.severity)}"),
                {"allergy": allergy, "drug_names": names}, rules.reference))
    return [*reaction, *findings]


def _reaction_history(ctx: OrderContext, tables: _Tables) -> list[Finding]:
    """A prior severe infusion reaction to the drug among the conditions or allergies; an
    allergy entry the [allergy] rule reports (it names the drug) is left to that rule, unless
    that rule's severity is below this one's (a milder allergy rule must not soften a severe
    reaction recorded among the allergies)."""
    rules = ctx.monograph.infusion_reaction_history
    if rules is None:
        return []
    patient = ctx.patient
    conditions = patient.conditions or ()
    allergies = (patient.allergies or ()) if tables.reaction_in_allergies else ()
    if not conditions and not allergies:
        return []
    findings = []
    names = None
    for where, entries in (("conditions", conditions), ("allergies", allergies)):
        for entry in entries:
            if tables.severe_reaction(entry):
                if names is None:
                    names = ctx.monograph.names
                findings.append(ctx.finding(
                    "contraindication", "prior_severe_infusion_reaction", rules.severity,
                    f"A prior severe infusion reaction to {ctx.monograph.drug} is recorded among "
                    f"the {where} ({entry!r}): giving it again {concern(rules.severity)}",
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


def _limit_text(limit, lab) -> tuple[str | None, str | None, dict]:
    """('below 1 10^9/L', 'above 3 x ULN (120 U/L)') as far as given, and the evidence (read
    only: callers copy it)."""
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


def _labs(ctx: OrderContext, tables: _Tables) -> list[Finding]:
    if not tables.lab_groups or _quiet(ctx, tables):
        return []
    return _lab_findings(ctx, tables, _latest(ctx, tables))


def _latest(ctx: OrderContext, tables: _Tables) -> dict[str, Lab]:
    """The latest result of each lab a limit is on (the first of equally recent ones)."""
    latest: dict[str, Lab] = {}
    for x in ctx.patient.labs or ():
        group = memoised(tables.lab_index, x.code, tables.group_of, ctx.knowledge, x.code)
        if group is not None:
            held = latest.get(group.code)
            if held is None or x.taken_at > held.taken_at:
                latest[group.code] = x
    return latest


def _lab_findings(ctx: OrderContext, tables: _Tables, latest: dict[str, Lab]) -> list[Finding]:
    """What the [[lab_limits]] rows say of the latest results (`latest`, per lab code)."""
    rows = tables.labs
    knowledge = ctx.knowledge
    findings: list[Finding] = []
    emitted: set[str] = set()  # two limits on one lab: one missing/stale/unit finding
    # per lab: (age in days, factor to the lab's unit, the value times it before _exact)
    measured: dict[str, tuple[float, float | None, float]] = {}
    scheduled_for = ctx.scheduled_for

    def add(f: Finding) -> None:
        if f.rule_id not in emitted:
            emitted.add(f.rule_id)
            findings.append(f)

    for row in rows:
        result = latest.get(row.code)
        if result is None:
            if row.missing is not None:
                add(ctx.missing(f"{row.key}_missing", row.missing, dict(row.missing_evidence),
                                row.limit.reference))
            continue
        m = measured.get(row.code)
        if m is None:
            factor = knowledge.lab_factor(row.code, result.unit)
            m = measured[row.code] = (
                (scheduled_for - result.taken_at).total_seconds() / 86400,  # days_between
                factor, 0.0 if factor is None else result.value * factor)
        age_days, factor, raw = m
        stale = row.max_age_days is not None and age_days > row.max_age_days
        if factor is None:
            low = high = False
        else:
            low = row.below is not None and _is_below(raw, row.below)
            high = row.upper is not None and _is_above(raw, row.upper)
        if not (stale or factor is None or low or high):
            continue  # nothing to say: no text built
        value = None if factor is None else _exact(raw)
        limit, lab = row.limit, row.lab
        base = {"lab": limit.lab, "value": num(result.value, 3), "unit": result.unit,
                "taken_at": result.taken_at.isoformat()}
        if stale:
            add(ctx.missing(
                f"{row.key}_stale",
                f"The latest {lab.name} ({limit.lab}) was taken {days_text(age_days)} before the "
                f"scheduled dose; it must be at most {days_text(limit.max_age_days)} old",
                {**base, "age_days": num(age_days, 4), "max_age_days": num(limit.max_age_days)},
                limit.reference))
        if factor is None:
            add(ctx.missing(
                f"{row.key}_unit_unknown",
                f"{lab.name} ({limit.lab}) reported in {result.unit!r}, a unit the knowledge cannot "
                f"convert to {lab.unit}: compare with the limit ({row.limit_text}) by hand",
                {**base, "known_units": sorted(lab.factors)}, limit.reference))
            continue
        if not (low or high):
            continue
        converted = "" if result.unit.strip() == lab.unit else f" = {num(value, 3)} {lab.unit}"
        stated = (f"Latest {lab.name} {num(result.value, 3)} {result.unit}{converted} "
                  f"({result.taken_at.date().isoformat()})")
        evidence = {**base, "value_in_limit_unit": num(value, 3), **row.evidence}
        if low:
            add(ctx.finding("contraindication", row.low_name, limit.severity,
                            f"{stated} is {row.low_text}", evidence, limit.reference))
        if high:
            times = ""
            if limit.above_uln is not None:
                times = f" ({num(value / lab.uln, 2)} x ULN {num(lab.uln, 3)} {lab.unit})"
                evidence["value_uln_multiple"] = num(value / lab.uln, 3)
            add(ctx.finding("contraindication", row.high_name, limit.severity,
                            f"{stated}{times} is {row.high_text}", evidence, limit.reference))
    return findings


def _quiet(ctx: OrderContext, tables: _Tables) -> bool:
    """True when the rows would say nothing: a result of every lab where one is required, and
    every result of a lab a limit is on (so the latest too) fresh, in a known unit and within
    its limits, checked with the rows' arithmetic. False: let the rows say what they say
    (they may say nothing)."""
    knowledge = ctx.knowledge
    scheduled_for = ctx.scheduled_for
    index = tables.lab_index
    seen = 0  # the bits of the labs given a result (_LabGroup.bit)
    # the last result's time and its age (a timedelta): the results of an order mostly share
    # one time object (the parser keeps one per string), whose age is then computed once
    taken = age = None
    for x in ctx.patient.labs or ():  # (read by attribute: see check())
        try:
            group = index[x.code]
        except KeyError:
            group = memoised(index, x.code, tables.group_of, knowledge, x.code)
        if group is None:
            continue
        seen |= group.bit
        try:
            factor = group.factors[x.unit]
        except KeyError:
            factor = memoised(group.factors, x.unit, knowledge.lab_factor, group.code, x.unit)
        if factor is None:
            return False
        limit = group.stale_from  # (the age in days over group.max_age_days, as a time)
        if limit is not None:
            at = x.taken_at
            if at is not taken:
                taken, age = at, scheduled_for - at
            if age >= limit:
                return False
        raw = x.value * factor
        # clear of every bound (most values), else the exact check
        if not group.floor < raw < group.ceiling and not _within(raw, group.bounds):
            return False
    required = tables.required_bits
    return seen & required == required


# words that undo an exclusion written at most two words before it: "not resolved", "despite
# PJP prophylaxis" (a term written as "unresolved" is no exclusion at all: an exclusion starts
# a word)
NEGATIONS = ("not", "non", "never", "no longer", "not yet", "despite", "failed", "failing")
_NEGATED = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(n) for n in NEGATIONS)
                      + r")(?:[^a-z0-9]+[a-z0-9]+){0,2}[^a-z0-9]*$")


def _excluded(c: str, excluding) -> bool:
    """An exclusion phrase (a compiled _word_start pattern) at the start of a word and not
    negated right before it."""
    for pattern in excluding:
        for m in pattern.finditer(c):
            if not _NEGATED.search(c[:m.start()]):
                return True
    return False


def _matches(condition: str, terms_lower, exact_lower, excluding) -> bool:
    """Case does not matter on either side: a monograph may write "Sepsis" or "UTI" (the
    terms come lowered, see _Terms)."""
    c = condition.strip().lower()
    if _excluded(c, excluding):
        return False
    return c in exact_lower or any(t in c for t in terms_lower)


def _conditions(ctx: OrderContext, tables: _Tables) -> list[Finding]:
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
    key = tuple(conditions)
    verdict = tables.conditions_memo.get(key)
    if verdict is None:
        verdict = _remember(tables.conditions_memo, key, _conditions_verdict(tables, conditions))
    infected, indicated = verdict
    findings: list[Finding] = []
    if infection is not None:
        for condition in infected:
            findings.append(ctx.finding(
                "contraindication", "active_infection", infection.severity,
                f"Active infection among the conditions ({condition!r}): weigh the infection risk "
                f"of {ctx.monograph.drug} before giving", {"condition": condition},
                infection.reference))
    if indication is not None:
        if not indicated:
            findings.append(ctx.finding(
                "contraindication", "no_indication", indication.severity,
                f"No labeled indication among the conditions ({', '.join(conditions) or 'none listed'}): "
                f"{ctx.monograph.drug} is indicated for {indication.terms[0]}",
                {"conditions": list(conditions)}, indication.reference))
    return findings


def _conditions_verdict(tables: _Tables, conditions: list[str]) -> tuple[tuple[str, ...], bool]:
    """_conditions' reading of a list of conditions as written: those that are an active
    infection (in order; none without an [infection] section) and whether one is a labeled
    indication (True without an [indication] section)."""
    infected = tables.infection.matches if tables.infection is not None else None
    indicated = tables.indication.matches if tables.indication is not None else None
    return (tuple(c for c in conditions if infected(c)) if infected else (),
            any(indicated(c) for c in conditions) if indicated else True)
