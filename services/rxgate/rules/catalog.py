"""Every rule id a monograph can emit, read off the loaded knowledge: `rule_ids(monograph)`.

A rule id is `<drug>.<category>.<name>` (`Monograph.rule_id`). Which names a monograph can
produce follows from the sections it has and the entries of its lists:

    section             rule ids (<drug>. omitted)                     emitted by
    [dose]              data.weight_missing, data.height_missing,      dose._amount
                        data.unit_unknown, dose.per_kg, dose.per_kg_low
                        data.route_unknown, dose.route                 dose._route
    [infusion]          data.infusion_duration_missing,                dose._infusion
                        dose.infusion_too_fast, dose.infusion_too_slow
    [first_dose]        dose.first_dose_premedication                  dose._first_dose
    [schedule]          interval.duplicate, interval.off_plan_day,     interval.check
                        interval.too_soon_after_previous,
                        interval.too_close_to_next, interval.frequency,
                        data.dose_before_kept_history
    [[combinations]]    combination.<drug_class>, one per entry        combination.check
    [pregnancy]         contraindication.pregnancy,                    contraindication._pregnancy
                        data.pregnancy_unknown
    [lactation]         contraindication.lactation                     contraindication._lactation
    [allergy]           contraindication.allergy                       contraindication._allergy
    [[lab_limits]]      per entry, <lab> lower-case: contraindication.<lab>_low,
                        data.<lab>_unit_unknown, data.<lab>_stale when
                        `max_age_days` is set, data.<lab>_missing when
                        `required`                                     contraindication._labs
    [infection]         contraindication.active_infection,             contraindication._conditions
                        data.conditions_missing
    [indication]        contraindication.no_indication,                contraindication._conditions
                        data.conditions_missing

`SECTIONS` names the monograph fields this table covers; tests/test_knowledge_properties.py
fails for a monograph field (or a `*severity` field of a section) it does not cover, and for
a rule id here that no input produces, so a new check must be listed here and given an input
there. The rules `rxgate.data.no_monograph` and `rxgate.data.checks_failed` belong to no
monograph (decide.py).
"""
from __future__ import annotations

from ..knowledge.models import Monograph

# Monograph fields that hold no check of their own (identity and provenance).
IDENTITY_FIELDS = frozenset({"drug", "trade_names", "codes", "revision", "source"})

# Monograph field -> the `*severity` fields of its model this catalog accounts for.
SECTIONS: dict[str, frozenset[str]] = {
    "dose": frozenset({"over_severity", "under_severity", "route_severity"}),
    "infusion": frozenset({"short_severity", "long_severity"}),
    "first_dose": frozenset({"severity"}),
    "schedule": frozenset({"short_gap_severity", "duplicate_severity", "off_plan_severity",
                           "frequency_severity"}),
    "combinations": frozenset({"severity"}),
    "pregnancy": frozenset({"severity"}),
    "lactation": frozenset({"severity"}),
    "allergy": frozenset({"severity"}),
    "lab_limits": frozenset({"severity"}),
    "infection": frozenset({"severity"}),
    "indication": frozenset({"severity"}),
}


def rule_ids(mono: Monograph) -> dict[str, str]:
    """rule id -> the monograph section (and entry) it comes from, for every rule id `mono` can emit."""
    ids: dict[str, str] = {}

    def add(category: str, name: str, section: str) -> None:
        ids.setdefault(mono.rule_id(category, name), section)

    for name in ("weight_missing", "height_missing", "unit_unknown", "route_unknown"):
        add("data", name, "dose")
    for name in ("per_kg", "per_kg_low", "route"):
        add("dose", name, "dose")
    if mono.infusion is not None:
        add("data", "infusion_duration_missing", "infusion")
        add("dose", "infusion_too_fast", "infusion")
        add("dose", "infusion_too_slow", "infusion")
    if mono.first_dose is not None:
        add("dose", "first_dose_premedication", "first_dose")
    if mono.schedule is not None:
        for name in ("duplicate", "off_plan_day", "too_soon_after_previous", "too_close_to_next",
                     "frequency"):
            add("interval", name, "schedule")
        add("data", "dose_before_kept_history", "schedule")
    for i, combo in enumerate(mono.combinations):
        add("combination", combo.drug_class, f"combinations.{i}")
    if mono.pregnancy is not None:
        add("contraindication", "pregnancy", "pregnancy")
        add("data", "pregnancy_unknown", "pregnancy")
    if mono.lactation is not None:
        add("contraindication", "lactation", "lactation")
    if mono.allergy is not None:
        add("contraindication", "allergy", "allergy")
    for i, limit in enumerate(mono.lab_limits):
        key = limit.lab.lower()
        add("contraindication", f"{key}_low", f"lab_limits.{i}")
        if limit.max_age_days is not None:
            add("data", f"{key}_stale", f"lab_limits.{i}")
        add("data", f"{key}_unit_unknown", f"lab_limits.{i}")
        if limit.required:
            add("data", f"{key}_missing", f"lab_limits.{i}")
    if mono.infection is not None:
        add("contraindication", "active_infection", "infection")
    if mono.indication is not None:
        add("contraindication", "no_indication", "indication")
    if mono.infection is not None or mono.indication is not None:
        add("data", "conditions_missing", "infection" if mono.infection else "indication")
    return ids
