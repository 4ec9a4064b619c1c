"""The shape of the drug knowledge files, validated on load (pydantic, unknown keys refused).

No knowledge file may switch a check off by its numbers: every float must be finite (TOML's
`nan` and `inf` are refused everywhere), ranges must be ordered (min <= max), and the limits a
check compares with are bounded so that it can still fire (an over-dose limit of at most
100 %, a lab result at most a year old, a schedule tolerance shorter than every gap of the
plan). The loader names the file and the field of any refusal.
"""
from __future__ import annotations

import re
from typing import Literal

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

FindingSeverity = Literal["info", "warning", "major", "contraindicated"]
AtLeastWarning = Literal["warning", "major", "contraindicated"]


class _Strict(BaseModel):
    # allow_inf_nan=False: every float field (also dict values) refuses nan, inf and -inf
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class CodeRef(_Strict):
    system: str = Field(min_length=1)
    value: str = Field(min_length=1)


# --- knowledge.toml, routes.toml, labs.toml, drug_classes.toml ---------------------------------


class Manifest(_Strict):
    version: str = Field(pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    description: str = ""


class RouteVocabulary(_Strict):
    routes: dict[str, list[str]] = Field(min_length=1)


class LabDefinition(_Strict):
    name: str
    codes: list[str] = Field(min_length=1)
    unit: str
    # the upper limit of normal in `unit`, for limits written as a multiple of it
    # (`above_uln` of a monograph's lab limit); a site whose laboratory reports another
    # reference range sets its own here
    uln: float | None = Field(default=None, gt=0, le=1e12)
    # value_in_unit = reported * factor; at most 1e12 (cells/L to 10^9/L is 1e-9, the other
    # way 1e9) so that a reported value (at most 1e15 by the contract) cannot overflow
    factors: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _canonical_unit_converts(self) -> "LabDefinition":
        if self.factors.get(self.unit) != 1.0:
            raise ValueError(f"factors must map the canonical unit {self.unit!r} to 1.0")
        if any(f <= 0 for f in self.factors.values()):
            raise ValueError("every factor must be greater than 0")
        if any(f > 1e12 for f in self.factors.values()):
            raise ValueError("every factor must be at most 1e12")
        return self


class LabVocabulary(_Strict):
    labs: dict[str, LabDefinition] = Field(min_length=1)


class ClassMember(_Strict):
    name: str = Field(min_length=1)
    trade_names: list[str] = []
    codes: list[CodeRef] = []


class DrugClass(_Strict):
    label: str
    members: list[ClassMember] = []
    atc_prefixes: list[str] = []
    name_suffixes: list[str] = []


class DrugClassTable(_Strict):
    classes: dict[str, DrugClass] = Field(min_length=1)


# --- one monograph per drug (drugs/<drug>.toml) ---------------------------------------------


class DoseRules(_Strict):
    reference: str
    labeled_mg_per_kg: float = Field(gt=0, le=1e4)  # at least 1e-6 (1 ng/kg): see below
    # at most 100: a dose twice the labeled one is always flagged
    over_limit_percent: float = Field(ge=0, le=100)
    over_severity: FindingSeverity
    under_limit_percent: float = Field(ge=0, lt=100)
    under_severity: FindingSeverity
    routes: list[str] = Field(min_length=1)
    route_severity: FindingSeverity

    @model_validator(mode="after")
    def _labeled_dose_computable(self) -> "DoseRules":
        # the deviation from the labeled dose divides by it: a vanishing one would overflow
        if self.labeled_mg_per_kg < 1e-6:
            raise ValueError(f"labeled_mg_per_kg ({self.labeled_mg_per_kg}) must be at least 1e-6")
        return self


class InfusionRules(_Strict):
    reference: str
    routes: list[str] = Field(min_length=1)
    min_minutes: float = Field(gt=0, le=100000)
    short_severity: FindingSeverity
    max_minutes: float = Field(gt=0, le=100000)
    long_severity: FindingSeverity

    @model_validator(mode="after")
    def _ordered(self) -> "InfusionRules":
        if self.max_minutes < self.min_minutes:
            raise ValueError(f"max_minutes ({self.max_minutes}) must not be below min_minutes "
                             f"({self.min_minutes})")
        return self


class FirstDoseRules(_Strict):
    reference: str
    premedication: list[str] = Field(min_length=1)
    severity: FindingSeverity


class CycleDays(_Strict):
    from_cycle: int = Field(ge=1, le=1000)  # the contract's regimen.cycle is at most 1000
    days: list[int] = Field(min_length=1)


class ScheduleRules(_Strict):
    reference: str
    cycle_length_days: int = Field(ge=1, le=366)
    # shorter than every gap of the plan (checked below), else the short-gap check never fires
    tolerance_days: float = Field(ge=0)
    short_gap_severity: FindingSeverity
    duplicate_severity: FindingSeverity
    off_plan_severity: FindingSeverity
    frequency_severity: FindingSeverity
    cycles: list[CycleDays] = Field(min_length=1)

    @model_validator(mode="after")
    def _plan_is_well_formed(self) -> "ScheduleRules":
        if self.cycles[0].from_cycle != 1:
            raise ValueError("cycles: the first entry must start at from_cycle = 1")
        starts = [c.from_cycle for c in self.cycles]
        if starts != sorted(set(starts)):
            raise ValueError("cycles: from_cycle must strictly increase")
        for c in self.cycles:
            if c.days != sorted(set(c.days)) or c.days[0] < 1 or c.days[-1] > self.cycle_length_days:
                raise ValueError(
                    f"cycles (from_cycle {c.from_cycle}): days must increase, within 1..{self.cycle_length_days}")
        shortest = min(_gaps(self.cycles, self.cycle_length_days))
        if self.tolerance_days >= shortest:
            raise ValueError(
                f"tolerance_days ({self.tolerance_days}) must be below the shortest gap of the "
                f"plan ({shortest} days), or the short-gap check could never fire")
        return self


def _gaps(cycles: list[CycleDays], length: int) -> list[int]:
    """Every gap between consecutive dosing days of the plan, across cycle ends too."""
    gaps = []
    for i, entry in enumerate(cycles):
        gaps += [b - a for a, b in zip(entry.days, entry.days[1:])]
        following = cycles[i + 1] if i + 1 < len(cycles) else None
        if following is None or following.from_cycle > entry.from_cycle + 1:
            gaps.append(length - entry.days[-1] + entry.days[0])  # into a cycle of this entry
        if following is not None:
            gaps.append(length - entry.days[-1] + following.days[0])  # into the next entry
    return gaps


class CombinationRule(_Strict):
    drug_class: str
    severity: FindingSeverity
    concern: str
    reference: str


class PregnancyRules(_Strict):
    reference: str
    severity: FindingSeverity
    childbearing_age_from: int = Field(ge=0, le=150)
    childbearing_age_to: int = Field(ge=0, le=150)

    @model_validator(mode="after")
    def _ordered(self) -> "PregnancyRules":
        if self.childbearing_age_from > self.childbearing_age_to:
            raise ValueError(f"childbearing_age_from ({self.childbearing_age_from}) must not be "
                             f"above childbearing_age_to ({self.childbearing_age_to})")
        return self


class SimpleRule(_Strict):
    reference: str
    severity: FindingSeverity


class LabLimit(_Strict):
    lab: str
    # the result is beyond the limit when below `below`, above `above`, or above `above_uln`
    # times the lab's upper limit of normal (labs.toml `uln`); at least one of them is given
    # positive: a result (never negative) below 0 or above a limit <= 0 is no check at all
    below: float | None = Field(default=None, gt=0)
    above: float | None = Field(default=None, gt=0)
    above_uln: float | None = Field(default=None, gt=0, le=1000)
    severity: FindingSeverity
    required: bool
    # at most a year: a limit that accepts older results would stop asking for a recent one
    max_age_days: float | None = Field(default=None, gt=0, le=366)
    reference: str
    # the rule name of the finding (<drug>.contraindication.<name>); default <lab>_low for a
    # `below` limit, <lab>_high for an `above` one. Two limits on one lab need names.
    name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")

    @model_validator(mode="after")
    def _some_limit(self) -> "LabLimit":
        if self.below is None and self.above is None and self.above_uln is None:
            raise ValueError("a lab limit needs `below`, `above` or `above_uln`")
        if self.above is not None and self.above_uln is not None:
            raise ValueError("give `above` or `above_uln`, not both")
        if self.below is not None and self.above is not None and self.above < self.below:
            raise ValueError(f"above ({self.above}) must not be below below ({self.below})")
        return self


# a word or phrase matched inside free text: never blank (a blank exclusion would exclude every
# condition and switch the check off; a blank term would match everything)
Phrase = Annotated[str, StringConstraints(pattern=r"\S")]


class ConditionTerms(_Strict):
    reference: str
    severity: FindingSeverity
    terms: list[Phrase] = Field(min_length=1)
    exact: list[Phrase] = []
    excluding: list[Phrase] = []


class LactationRules(SimpleRule):
    # `lactating` must be known for a patient who may be breastfeeding: sex female or unknown,
    # and age on the scheduled day within these bounds (inclusive) or unknown. Absent bounds:
    # those of [pregnancy]; without either, any age.
    childbearing_age_from: int | None = Field(default=None, ge=0, le=150)
    childbearing_age_to: int | None = Field(default=None, ge=0, le=150)

    @model_validator(mode="after")
    def _ordered(self) -> "LactationRules":
        if (self.childbearing_age_from is None) != (self.childbearing_age_to is None):
            raise ValueError("give both childbearing_age_from and childbearing_age_to, or neither")
        if self.childbearing_age_from is not None and self.childbearing_age_to is not None \
                and self.childbearing_age_from > self.childbearing_age_to:
            raise ValueError(f"childbearing_age_from ({self.childbearing_age_from}) must not be "
                             f"above childbearing_age_to ({self.childbearing_age_to})")
        return self


class ContraceptionRules(_Strict):
    """A reminder to counsel a patient who may become pregnant (the ages of [pregnancy])."""

    reference: str
    severity: FindingSeverity
    # how long after the last dose contraception must continue (0: only during treatment)
    months_after_last_dose: float = Field(ge=0, le=120)


class PatientLimits(_Strict):
    """Limits on the patient: age, and the weight a per-kg dose is computed on."""

    reference: str
    # a patient younger than this (years, on the scheduled day) is outside the labeled
    # population; a missing birth date is a `data` finding
    min_age_years: int | None = Field(default=None, ge=1, le=150)
    age_severity: FindingSeverity = "warning"
    age_reference: str | None = None  # default: `reference`
    # a weight outside [weight_min_kg, weight_max_kg] is implausible for the labeled population
    weight_min_kg: float | None = Field(default=None, gt=0, le=1000)
    weight_max_kg: float | None = Field(default=None, gt=0, le=1000)
    weight_severity: FindingSeverity = "warning"
    weight_reference: str | None = None
    # a weight that changed by more than this percentage since the patient's previous dose of
    # the drug (70 -> 154 kg: pounds for kilograms); at most 100 so that a doubling is flagged
    weight_change_percent: float | None = Field(default=None, gt=0, le=100)
    weight_change_severity: FindingSeverity = "warning"
    weight_change_reference: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "PatientLimits":
        if (self.weight_min_kg is None) != (self.weight_max_kg is None):
            raise ValueError("give both weight_min_kg and weight_max_kg, or neither")
        if self.weight_min_kg is not None and self.weight_max_kg is not None \
                and self.weight_min_kg > self.weight_max_kg:
            raise ValueError(f"weight_min_kg ({self.weight_min_kg}) must not be above "
                             f"weight_max_kg ({self.weight_max_kg})")
        return self


class ReactionHistory(_Strict):
    """A prior severe infusion reaction to the drug, recorded among conditions or allergies:
    an entry naming the drug (generic or trade name) with one of `terms` and one of `severe`."""

    reference: str
    severity: FindingSeverity
    terms: list[Phrase] = Field(min_length=1)
    severe: list[Phrase] = Field(min_length=1)


class ConcurrentOrders(_Strict):
    """When another drug's active order counts as concurrent therapy for [[combinations]]."""

    reference: str
    # an active order of another drug scheduled more than this many days before this dose and
    # not renewed since is stale: reported (stale_severity), not counted as concurrent therapy
    stale_after_days: float = Field(gt=0, le=3660)
    stale_severity: FindingSeverity = "info"


class Monograph(_Strict):
    drug: str = Field(pattern=r"^[a-z][a-z0-9 -]*$")
    trade_names: list[str] = []
    codes: list[CodeRef] = []
    revision: str
    source: str
    # A section a drug's monograph does not have is a check that does not apply to it.
    dose: DoseRules
    infusion: InfusionRules | None = None
    first_dose: FirstDoseRules | None = None
    schedule: ScheduleRules | None = None
    combinations: list[CombinationRule] = []
    pregnancy: PregnancyRules | None = None
    lactation: LactationRules | None = None
    allergy: SimpleRule | None = None
    lab_limits: list[LabLimit] = []
    infection: ConditionTerms | None = None
    indication: ConditionTerms | None = None
    contraception: ContraceptionRules | None = None
    patient: PatientLimits | None = None
    infusion_reaction_history: ReactionHistory | None = None
    concurrent: ConcurrentOrders | None = None

    def rule_id(self, category: str, name: str) -> str:
        return f"{self.drug}.{category}.{name}"

    @property
    def names(self) -> list[str]:
        """Generic and trade names, lower-case: what an allergy or an order may call it."""
        return [self.drug, *(t.lower() for t in self.trade_names)]


def slug(text: str) -> str:
    """A rule-id-safe lower-case token: 'ANC' -> 'anc'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
