"""The shape of the drug knowledge files, validated on load (pydantic, unknown keys refused).

No knowledge file may switch a check off by its numbers: every float must be finite (TOML's
`nan` and `inf` are refused everywhere), ranges must be ordered (min <= max), and the limits a
check compares with are bounded so that it can still fire (an over-dose limit of at most
100 %, a lab result at most a year old, a schedule tolerance shorter than every gap of the
plan). The loader names the file and the field of any refusal.

A monograph may list products (names, aliases, codes, routes, each with its own dose form: per
kg, per m2 or flat, and infusion window), infusion windows per dose number with a maximum
rate, premedication before every dose, and several regimens whose phases may have their own
cycle length; docs/knowledge.md describes the format.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .memo import memoised

if TYPE_CHECKING:
    from ..plan import Plan

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


class SplitFirstDose(_Strict):
    """The first dose may be given in equal parts on consecutive days of cycle 1 (daratumumab
    IV: 8 mg/kg on day 1 and 8 mg/kg on day 2). Each part is the labeled dose / len(days)."""
    reference: str
    days: list[int] = Field(min_length=2, max_length=7)  # days of cycle 1, the first is the plan's day 1
    severity: FindingSeverity = "info"  # the reminder that the other part(s) are due

    @model_validator(mode="after")
    def _days_follow(self) -> "SplitFirstDose":
        if self.days[0] != 1 or self.days != list(range(1, len(self.days) + 1)):
            raise ValueError(f"days {self.days} must be consecutive days of cycle 1 from day 1")
        return self


DOSE_FORMS = ("labeled_mg_per_kg", "labeled_mg_per_m2", "labeled_mg")


class DoseRules(_Strict):
    reference: str
    # exactly one dose form: per kg (the amount compared in mg/kg), per m2 of body-surface area
    # (Mosteller), or flat (mg whatever the patient's size: a subcutaneous 1,800 mg product)
    labeled_mg_per_kg: float | None = Field(default=None, gt=0, le=1e4)  # at least 1e-6 (1 ng/kg): see below
    labeled_mg_per_m2: float | None = Field(default=None, gt=0, le=1e5)
    labeled_mg: float | None = Field(default=None, gt=0, le=1e6)
    # at most 100: a dose twice the labeled one is always flagged
    over_limit_percent: float = Field(ge=0, le=100)
    over_severity: FindingSeverity
    under_limit_percent: float = Field(ge=0, lt=100)
    under_severity: FindingSeverity
    routes: list[str] = Field(min_length=1)
    route_severity: FindingSeverity
    split_first_dose: SplitFirstDose | None = None

    @model_validator(mode="after")
    def _labeled_dose_computable(self) -> "DoseRules":
        given = [f for f in DOSE_FORMS if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of {', '.join(DOSE_FORMS)} must be given (got "
                             f"{', '.join(given) or 'none'})")
        # the deviation from the labeled dose divides by it: a vanishing one would overflow
        if self.labeled < 1e-6:
            raise ValueError(f"{self.form_field} ({self.labeled}) must be at least 1e-6")
        return self

    # computed once per object (functools.cached_property keeps the value in the instance's
    # __dict__, which pydantic's ==, hash and model_dump leave out): the fields are frozen

    @functools.cached_property
    def form_field(self) -> str:
        return next(f for f in DOSE_FORMS if getattr(self, f) is not None)

    @functools.cached_property
    def form(self) -> Literal["per_kg", "per_m2", "flat"]:
        return {"labeled_mg_per_kg": "per_kg", "labeled_mg_per_m2": "per_m2",
                "labeled_mg": "flat"}[self.form_field]  # type: ignore[return-value]

    @functools.cached_property
    def labeled(self) -> float:
        return getattr(self, self.form_field)

    @functools.cached_property
    def unit(self) -> str:
        return {"per_kg": "mg/kg", "per_m2": "mg/m2", "flat": "mg"}[self.form]


class InfusionWindow(_Strict):
    """The infusion of dose `from_dose` of the plan and later (until the next window): how long
    it may take, and how fast it may run where the monograph gives a maximum rate."""
    from_dose: int = Field(ge=1, le=1000)
    # within the durations an order may give (0.01..100000 min, contract.py), strictly: a
    # window that took in every one of them could never find an infusion too fast or too slow
    min_minutes: float = Field(gt=0.01, lt=100000)
    max_minutes: float = Field(gt=0.01, lt=100000)
    max_rate_ml_per_h: float | None = Field(default=None, gt=0, le=100000)
    volume_ml: float | None = Field(default=None, gt=0, le=10000)  # the labeled volume, shown
    label: str = ""  # "first infusion", "second infusion", ...

    @model_validator(mode="after")
    def _ordered(self) -> "InfusionWindow":
        if self.max_minutes < self.min_minutes:
            raise ValueError(f"max_minutes ({self.max_minutes}) must not be below min_minutes "
                             f"({self.min_minutes})")
        return self


class InfusionRules(_Strict):
    reference: str
    routes: list[str] = Field(min_length=1)
    # strictly within an order's 0.01..100000 min (contract.py), as for a window
    min_minutes: float = Field(gt=0.01, lt=100000)
    short_severity: FindingSeverity
    max_minutes: float = Field(gt=0.01, lt=100000)
    long_severity: FindingSeverity
    # a window per dose number (first infusion longer, later ones shorter); a dose before the
    # first window's from_dose, or with no windows, uses min_minutes/max_minutes above
    windows: list[InfusionWindow] = []
    # each part of a split first dose (see [dose] split_first_dose), when it differs from dose 1
    split_window: InfusionWindow | None = None
    rate_severity: FindingSeverity = "warning"

    @model_validator(mode="after")
    def _ordered(self) -> "InfusionRules":
        if self.max_minutes < self.min_minutes:
            raise ValueError(f"max_minutes ({self.max_minutes}) must not be below min_minutes "
                             f"({self.min_minutes})")
        starts = [w.from_dose for w in self.windows]
        if starts != sorted(set(starts)):
            raise ValueError("windows: from_dose must strictly increase")
        return self

    def window_for(self, dose_number: int, split_part: bool = False) -> InfusionWindow:
        """The window of a dose of the plan (1 = first), or of a part of a split first dose."""
        if split_part and self.split_window is not None:
            return self.split_window
        chosen = None
        for w in self.windows:
            if w.from_dose <= dose_number:
                chosen = w
        if chosen is None:
            return self.default_window
        return chosen

    @functools.cached_property
    def default_window(self) -> InfusionWindow:
        """The window of a dose before the first of `windows` (or of every dose without them)."""
        return InfusionWindow(from_dose=1, min_minutes=self.min_minutes,
                              max_minutes=self.max_minutes)


class FirstDoseRules(_Strict):
    reference: str
    premedication: list[str] = Field(min_length=1)
    severity: FindingSeverity

    @functools.cached_property
    def listed(self) -> str:
        """The premedications as the first-dose reminder lists them ("a, b and c")."""
        return f"{', '.join(self.premedication[:-1])} and {self.premedication[-1]}"


class PremedicationRules(_Strict):
    """Premedication before every dose (not only the first), where the monograph says so."""
    reference: str
    premedication: list[str] = Field(min_length=1)
    severity: FindingSeverity
    routes: list[str] = []  # the routes it applies to; empty: every route

    @functools.cached_property
    def listed(self) -> str:
        """The premedications as the reminder lists them ("a", or "a, b and c")."""
        meds = self.premedication
        return meds[0] if len(meds) == 1 else f"{', '.join(meds[:-1])} and {meds[-1]}"


class CycleDays(_Strict):
    from_cycle: int = Field(ge=1, le=1000)  # the contract's regimen.cycle is at most 1000
    days: list[int] = Field(min_length=1)
    # a phase may have its own cycle length (daratumumab with bortezomib: 21-day cycles, then
    # 28-day cycles from cycle 9); default: the schedule's cycle_length_days
    cycle_length_days: int | None = Field(default=None, ge=1, le=366)
    label: str = ""  # "weekly, weeks 1-8"


class ScheduleRules(_Strict):
    reference: str
    # the names an order's regimen.name may use for this regimen (case-insensitive); required
    # for a monograph with several regimens ([schedule] is the default one)
    names: list[str] = []
    cycle_length_days: int = Field(ge=1, le=366)
    # shorter than every gap of the plan (checked below), else the short-gap check never fires
    tolerance_days: float = Field(ge=0)
    short_gap_severity: FindingSeverity
    duplicate_severity: FindingSeverity
    off_plan_severity: FindingSeverity
    frequency_severity: FindingSeverity
    cycles: list[CycleDays] = Field(min_length=1)

    def length_of(self, entry: CycleDays) -> int:
        return entry.cycle_length_days or self.cycle_length_days

    @model_validator(mode="after")
    def _plan_is_well_formed(self) -> "ScheduleRules":
        if self.cycles[0].from_cycle != 1:
            raise ValueError("cycles: the first entry must start at from_cycle = 1")
        starts = [c.from_cycle for c in self.cycles]
        if starts != sorted(set(starts)):
            raise ValueError("cycles: from_cycle must strictly increase")
        for c in self.cycles:
            length = self.length_of(c)
            if c.days != sorted(set(c.days)) or c.days[0] < 1 or c.days[-1] > length:
                raise ValueError(
                    f"cycles (from_cycle {c.from_cycle}): days must increase, within 1..{length}")
        shortest = min(_gaps(self.cycles, [self.length_of(c) for c in self.cycles]))
        if self.tolerance_days >= shortest:
            raise ValueError(
                f"tolerance_days ({self.tolerance_days}) must be below the shortest gap of the "
                f"plan ({shortest} days), or the short-gap check could never fire")
        return self


def _gaps(cycles: list[CycleDays], lengths: list[int]) -> list[int]:
    """Every gap between consecutive dosing days of the plan, across cycle ends too."""
    gaps = []
    for i, entry in enumerate(cycles):
        length = lengths[i]
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
    # at most 1e12: a result (at most 1e15 by the contract, in the lab's unit) can exceed it
    above: float | None = Field(default=None, gt=0, le=1e12)
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


# the weights a patient may have by the contract (contract.Patient.weight_kg)
MIN_WEIGHT_KG, MAX_WEIGHT_KG = 0.1, 1000.0


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
        if self.weight_min_kg is not None and self.weight_max_kg is not None \
                and self.weight_min_kg <= MIN_WEIGHT_KG and self.weight_max_kg >= MAX_WEIGHT_KG:
            raise ValueError(f"weight_min_kg ({self.weight_min_kg}) - weight_max_kg "
                             f"({self.weight_max_kg}) takes in every weight an order may give "
                             f"({MIN_WEIGHT_KG}-{MAX_WEIGHT_KG} kg): the check could never fire")
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


class Product(_Strict):
    """One product of a drug: a formulation with its own names, codes, routes and dose form
    (daratumumab: Darzalex IV per kg, Darzalex Faspro SC flat). Its `dose` and `infusion`, when
    given, replace the monograph's [dose] and [infusion] for orders matched to it."""
    name: str = Field(min_length=1)  # the trade name, as a pharmacist says it
    aliases: list[str] = []  # other names: a US suffix name (isatuximab-irfc), a generic name
    codes: list[CodeRef] = []
    # the routes it is given by; empty: the routes of its dose (its own, else the drug's [dose])
    routes: list[str] = []
    dose: DoseRules | None = None
    infusion: InfusionRules | None = None

    @property
    def names(self) -> list[str]:
        return list(self.name_tuple)

    @functools.cached_property
    def name_tuple(self) -> tuple[str, ...]:
        """`names`, computed once (the fields are frozen)."""
        return (self.name.lower(), *(a.lower() for a in self.aliases))


@dataclass(frozen=True)
class ProductMatch:
    """The product an order is matched to (by name, code and route), and how well.

    `product` is None when the order cannot be matched to one product (several fit and the
    route does not tell them apart); `route_matched` is False when the order's route is not one
    of the products the order names (or, named generically, of any product of the drug)."""
    product: Product | None
    route_matched: bool
    candidates: tuple[Product, ...]
    named: bool  # the order names a product (trade name, alias or product code), not the drug
    labeled_routes: tuple[str, ...]  # the routes of the candidates

    @property
    def routes(self) -> list[str]:
        return list(self.labeled_routes)


def _fold_name(text: str) -> str:
    return text.strip().lower()


def _regimen_key(text: str) -> str:
    """A regimen name folded for matching: 'D-Rd', 'DRd' and 'd rd' are one name."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


def same_code(sys_a: str, val_a: str, sys_b: str | None, val_b: str | None) -> bool:
    return (sys_b is not None and val_b is not None
            and sys_a.strip().lower() == sys_b.strip().lower()
            and val_a.strip().upper() == val_b.strip().upper())


RegimenStatus = Literal["only", "named", "unnamed", "unknown"]


class Monograph(_Strict):
    drug: str = Field(pattern=r"^[a-z][a-z0-9 -]*$")
    trade_names: list[str] = []
    codes: list[CodeRef] = []
    revision: str
    source: str
    # A section a drug's monograph does not have is a check that does not apply to it.
    dose: DoseRules
    # the drug's products; none: one product with the drug's names, codes and [dose]
    products: list[Product] = []
    infusion: InfusionRules | None = None
    first_dose: FirstDoseRules | None = None
    premedication: PremedicationRules | None = None
    schedule: ScheduleRules | None = None  # the default regimen
    regimens: list[ScheduleRules] = []  # further regimens, selected by the order's regimen.name
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

    @model_validator(mode="after")
    def _products_and_regimens(self) -> "Monograph":
        for i, p in enumerate(self.products):
            dose = p.dose or self.dose
            if p.routes and sorted(set(dose.routes)) != sorted(set(p.routes)):
                raise ValueError(f"products.{i}.routes: {p.routes} must be the routes of the "
                                 f"product's dose ({dose.routes})")
        seen: dict[str, str] = {}
        for p in self.products:
            for r in self.routes_of(p):
                if r in seen:
                    raise ValueError(f"products: {seen[r]!r} and {p.name!r} are both given {r}: an "
                                     f"order naming the drug could not be matched to one of them")
                seen[r] = p.name
        splits = {tuple(d.split_first_dose.days) for d in [self.dose, *(p.dose for p in self.products if p.dose)]
                  if d.split_first_dose is not None}
        if len(splits) > 1:
            raise ValueError(f"split_first_dose: every product's split must use the same days (got {sorted(splits)})")
        for i, reg in enumerate(self.all_regimens):
            where = "schedule" if i == 0 else f"regimens.{i - 1}"
            for days in splits:
                first = reg.cycles[0].days
                if first[0] != 1 or any(d in first for d in days[1:]):
                    raise ValueError(f"{where}.cycles: a first dose split over days {list(days)} needs "
                                     f"cycle 1 to dose on day 1 and not on days {list(days[1:])}")
        if self.regimens:
            if self.schedule is None:
                raise ValueError("regimens: a monograph with regimens needs [schedule], the default")
            keys: dict[str, int] = {}
            for i, reg in enumerate([self.schedule, *self.regimens]):
                where = "schedule" if i == 0 else f"regimens.{i - 1}"
                if not reg.names:
                    raise ValueError(f"{where}.names: each regimen of a drug with several needs names")
                for n in reg.names:
                    k = _regimen_key(n)
                    if not k:
                        raise ValueError(f"{where}.names: {n!r} has no letter or digit")
                    if keys.get(k, i) != i:
                        raise ValueError(f"{where}.names: {n!r} also names another regimen")
                    keys[k] = i
        return self

    def rule_id(self, category: str, name: str) -> str:
        return f"{self.drug}.{category}.{name}"

    @property
    def names(self) -> list[str]:
        """Generic, trade and product names, lower-case: what an allergy or an order may call it."""
        return list(self.name_tuple)

    @functools.cached_property
    def name_tuple(self) -> tuple[str, ...]:
        """`names`, computed once per monograph (the fields are frozen)."""
        out = [self.drug, *(t.lower() for t in self.trade_names)]
        for p in self.products:
            out += [n for n in p.name_tuple if n not in out]
        return tuple(out)

    @property
    def all_codes(self) -> list[CodeRef]:
        """The drug's codes and its products' codes."""
        return [*self.codes, *(c for p in self.products for c in p.codes)]

    def routes_of(self, product: Product) -> list[str]:
        return list(product.routes) or list(self.dose_rules(product).routes)

    @functools.cached_property
    def product_list(self) -> tuple[Product, ...]:
        """The products; a monograph without [[products]] has one, the drug itself (one object
        per monograph: computed once, the fields are frozen)."""
        if self.products:
            return tuple(self.products)
        return (Product(name=self.drug, routes=list(self.dose.routes)),)

    @functools.cached_property
    def product_match_memo(self) -> dict:
        """match_product() by its arguments as written (a ProductMatch is immutable); bounded
        like the Knowledge's memos (cleared at 10,000 entries)."""
        return {}

    def match_product(self, name: str, code_system: str | None, code_value: str | None,
                      route: str | None) -> ProductMatch:
        """The product of an order of this drug: by name or code first, then by route."""
        return memoised(self.product_match_memo, (name, code_system, code_value, route),
                        self._match_product, name, code_system, code_value, route)

    def _match_product(self, name: str, code_system: str | None, code_value: str | None,
                       route: str | None) -> ProductMatch:
        products = self.product_list
        written = _fold_name(name)
        named = tuple(p for p in self.products if written in p.name_tuple or any(
            same_code(c.system, c.value, code_system, code_value) for c in p.codes))
        candidates = named or products
        routes = tuple(sorted({r for p in candidates for r in self.routes_of(p)}))
        if route is not None:
            fitting = [p for p in candidates if route in self.routes_of(p)]
            if fitting:
                return ProductMatch(fitting[0], True, candidates, bool(named), routes)
        only = candidates[0] if len(candidates) == 1 else None
        return ProductMatch(only, route is None, candidates, bool(named), routes)

    def dose_rules(self, product: Product | None) -> DoseRules:
        return product.dose if product is not None and product.dose is not None else self.dose

    def infusion_rules(self, product: Product | None) -> InfusionRules | None:
        if product is not None and product.infusion is not None:
            return product.infusion
        return self.infusion

    @functools.cached_property
    def split_days(self) -> tuple[int, ...]:
        """Days of cycle 1 over which a product's first dose may be split (all agree), or ()."""
        for d in [self.dose, *(p.dose for p in self.products if p.dose)]:
            if d.split_first_dose is not None:
                return tuple(d.split_first_dose.days)
        return ()

    @property
    def all_regimens(self) -> list[ScheduleRules]:
        return [self.schedule, *self.regimens] if self.schedule else []

    def regimen_for(self, name: str | None) -> tuple[ScheduleRules | None, RegimenStatus]:
        """The regimen an order's regimen.name selects; with several and none (or an unknown
        one) named, the default ([schedule]) and a status saying so."""
        if not self.regimens:
            return self.schedule, "only"  # (None when there is no [schedule] either)
        if type(name) is not str and name is not None:
            return self._regimen_for(name)
        kept = _kept(self)
        memo = kept.get("regimen_for")
        if memo is None:
            memo = kept["regimen_for"] = {}
        return memoised(memo, name, self._regimen_for, name, limit=1000)  # names as written

    def _regimen_for(self, name: str | None) -> tuple[ScheduleRules | None, RegimenStatus]:
        if self.schedule is None:
            return None, "only"
        if not self.regimens:
            return self.schedule, "only"
        if name is None or not _regimen_key(name):
            return self.schedule, "unnamed"
        key = _regimen_key(name)
        for reg in self.all_regimens:
            if any(_regimen_key(n) == key for n in reg.names):
                return reg, "named"
        return self.schedule, "unknown"


    def plan_for(self, rules: ScheduleRules) -> "Plan":
        """The dosing plan (plan.Plan) of one of this monograph's regimens, built once per
        monograph object (a reloaded knowledge has new objects, so never another's plan)."""
        box = self.__dict__.get(_KEPT)  # _kept(self), inline: once or twice per order
        if box is not None and box.owner is self:
            hit = box.get(("plan", id(rules)))
            if hit is not None and hit[0] is rules:
                return hit[1]
        from ..plan import Plan  # plan.py reads these models: imported when first needed
        plan = Plan(rules, self.split_days)
        kept = _kept(self)
        if len(kept) >= 64:  # only this monograph's few regimens, unless given others
            kept.clear()
        kept[("plan", id(rules))] = (rules, plan)
        return plan


class _Kept(dict):
    """What is computed from a (frozen) knowledge object alone, kept on the object itself (see
    _kept). Never part of the object's equality: any two compare equal (pydantic compares
    __dict__ first), and a copy (model_copy shares it, deepcopy and pickle empty it) is not the
    owner's, so the copy computes its own."""

    __slots__ = ("owner",)

    def __init__(self, owner: object) -> None:
        super().__init__()
        self.owner = owner

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Kept)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, _Kept)

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict) -> "_Kept":
        return _Kept(None)

    def __reduce__(self):
        return (_Kept, (None,))


def _kept(model: BaseModel) -> _Kept:
    """The values computed from `model` alone: in its __dict__ under a name that is not a field,
    which pydantic's equality (see _Kept), hashing, dumps and repr leave out."""
    box = model.__dict__.get(_KEPT)
    if box is None or box.owner is not model:
        box = model.__dict__[_KEPT] = _Kept(model)
    return box


_KEPT = "_rxgate_kept"


@functools.lru_cache(maxsize=4096)
def slug(text: str) -> str:
    """A rule-id-safe lower-case token: 'ANC' -> 'anc'. (Memoised: rule names are few.)"""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
