"""The shape of the drug knowledge files, validated on load (pydantic, unknown keys refused)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FindingSeverity = Literal["info", "warning", "major", "contraindicated"]
AtLeastWarning = Literal["warning", "major", "contraindicated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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
    factors: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _canonical_unit_converts(self) -> "LabDefinition":
        if self.factors.get(self.unit) != 1.0:
            raise ValueError(f"factors must map the canonical unit {self.unit!r} to 1.0")
        if any(f <= 0 for f in self.factors.values()):
            raise ValueError("every factor must be greater than 0")
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
    labeled_mg_per_kg: float = Field(gt=0)
    over_limit_percent: float = Field(ge=0)
    over_severity: FindingSeverity
    under_limit_percent: float = Field(ge=0, lt=100)
    under_severity: FindingSeverity
    routes: list[str] = Field(min_length=1)
    route_severity: FindingSeverity


class InfusionRules(_Strict):
    reference: str
    routes: list[str] = Field(min_length=1)
    min_minutes: float = Field(gt=0)
    short_severity: FindingSeverity
    max_minutes: float = Field(gt=0)
    long_severity: FindingSeverity

    @model_validator(mode="after")
    def _ordered(self) -> "InfusionRules":
        if self.max_minutes < self.min_minutes:
            raise ValueError("max_minutes must not be below min_minutes")
        return self


class FirstDoseRules(_Strict):
    reference: str
    premedication: list[str] = Field(min_length=1)
    severity: FindingSeverity


class CycleDays(_Strict):
    from_cycle: int = Field(ge=1)
    days: list[int] = Field(min_length=1)


class ScheduleRules(_Strict):
    reference: str
    cycle_length_days: int = Field(ge=1)
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
        return self


class CombinationRule(_Strict):
    drug_class: str
    severity: FindingSeverity
    concern: str
    reference: str


class PregnancyRules(_Strict):
    reference: str
    severity: FindingSeverity
    childbearing_age_from: int = Field(ge=0)
    childbearing_age_to: int = Field(ge=0)


class SimpleRule(_Strict):
    reference: str
    severity: FindingSeverity


class LabLimit(_Strict):
    lab: str
    below: float
    severity: FindingSeverity
    required: bool
    max_age_days: float | None = Field(default=None, gt=0)
    reference: str


class ConditionTerms(_Strict):
    reference: str
    severity: FindingSeverity
    terms: list[str] = Field(min_length=1)
    exact: list[str] = []
    excluding: list[str] = []


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
    lactation: SimpleRule | None = None
    allergy: SimpleRule | None = None
    lab_limits: list[LabLimit] = []
    infection: ConditionTerms | None = None
    indication: ConditionTerms | None = None

    def rule_id(self, category: str, name: str) -> str:
        return f"{self.drug}.{category}.{name}"

    @property
    def names(self) -> list[str]:
        """Generic and trade names, lower-case: what an allergy or an order may call it."""
        return [self.drug, *(t.lower() for t in self.trade_names)]


def slug(text: str) -> str:
    """A rule-id-safe lower-case token: 'ANC' -> 'anc'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
