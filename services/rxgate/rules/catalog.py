"""Every rule id a monograph can emit, read off the loaded knowledge: `rule_ids(monograph)`.

A rule id is `<drug>.<category>.<name>` (`Monograph.rule_id`). Which names a monograph can
produce follows from the sections it has, the entries of its lists and, for the dose and the
infusion, the products an order can be matched to (`Monograph.product_list`: a product's own
[dose]/[infusion], else the drug's):

    section               rule ids (<drug>. omitted)                     emitted by
    [dose], [[products]]  data.weight_missing, data.height_missing,      dose._in_form/_per_kg
                          data.unit_unknown
                          dose.<form>, dose.<form>_low, one pair per     dose._deviation
                          dose form of a product (per_kg, per_m2, flat)
                          dose.split_first_dose when a product's dose    dose._amount
                          has split_first_dose
                          data.product_unknown with several products     dose._amount
                          data.route_unknown, dose.route                 dose._route
    [infusion], products' data.infusion_duration_missing,                dose._infusion
    [products.infusion]   dose.infusion_too_fast, dose.infusion_too_slow
                          when a product is given by it;
                          data.infusion_volume_missing,
                          dose.infusion_rate when a window it uses has
                          max_rate_ml_per_h
    [first_dose]          dose.first_dose_premedication                  dose._first_dose
    [premedication]       dose.premedication                             dose._premedication
    [schedule],           interval.duplicate, interval.off_plan_day,     interval.exact_check
    [[regimens]]          interval.too_soon_after_previous,
                          interval.too_close_to_next, interval.frequency,
                          data.dose_before_kept_history;
                          data.regimen_unnamed, data.regimen_unknown     interval._regimen_finding
                          with [[regimens]]
    [[combinations]]      combination.<drug_class>, one per entry        combination.check
    [concurrent]          combination.stale_order, with [[combinations]] combination.check
    [pregnancy]           contraindication.pregnancy,                    contraindication._pregnancy
                          data.pregnancy_unknown
    [contraception]       contraindication.contraception                 contraindication._contraception
    [lactation]           contraindication.lactation; data.lactation_    contraindication._lactation
                          unknown when its severity is at least warning
    [allergy]             contraindication.allergy; data.allergies_      contraindication._allergy
                          missing when its severity is at least warning
    [infusion_reaction_   contraindication.prior_severe_infusion_        contraindication._reaction_history
     history]             reaction
    [[lab_limits]]        per entry (knowledge.lab_limit_names):         contraindication._labs
                          contraindication.<lab>_low / <lab>_high (or
                          `name`, `name`_low/_high), and, <lab> as a
                          slug: data.<lab>_unit_unknown, data.<lab>_stale
                          when `max_age_days` is set, data.<lab>_missing
                          when `required`
    [infection]           contraindication.active_infection,             contraindication._conditions
                          data.conditions_missing
    [indication]          contraindication.no_indication,                contraindication._conditions
                          data.conditions_missing
    [patient]             contraindication.age_below_minimum and, when   contraindication._age
                          age_severity is at least warning,
                          data.age_unknown (min_age_years);
                          dose.weight_implausible (weight_min_kg/max),   dose._weight
                          dose.weight_change (weight_change_percent)

`SECTIONS` names the monograph fields this table covers, each with the `*severity` fields of
its model and of the models inside it (dotted: `split_first_dose.severity`);
tests/test_knowledge_properties.py fails for a monograph field or a `*severity` field it does
not cover, for a rule id here that no input built from the monograph's numbers produces, and
for a rule id an input produces that is not here, so a new check must be listed here and given
an input there. The rules `rxgate.data.no_monograph` and `rxgate.data.checks_failed` belong to
no monograph (decide.py).
"""
from __future__ import annotations

from ..contract import severity_rank
from ..knowledge import STALE_ORDER_RULE, lab_limit_names
from ..knowledge.models import InfusionRules, Monograph, slug

# Monograph fields that hold no check of their own (identity and provenance).
IDENTITY_FIELDS = frozenset({"drug", "trade_names", "codes", "revision", "source"})

_DOSE = frozenset({"over_severity", "under_severity", "route_severity", "split_first_dose.severity"})
_INFUSION = frozenset({"short_severity", "long_severity", "rate_severity"})
_SCHEDULE = frozenset({"short_gap_severity", "duplicate_severity", "off_plan_severity",
                       "frequency_severity"})

# Monograph field -> the `*severity` fields of its model (and, dotted, of the models inside
# it) this catalog accounts for.
SECTIONS: dict[str, frozenset[str]] = {
    "dose": _DOSE,
    "products": frozenset({*(f"dose.{s}" for s in _DOSE), *(f"infusion.{s}" for s in _INFUSION)}),
    "infusion": _INFUSION,
    "first_dose": frozenset({"severity"}),
    "premedication": frozenset({"severity"}),
    "schedule": _SCHEDULE,
    "regimens": _SCHEDULE,
    "combinations": frozenset({"severity"}),
    "concurrent": frozenset({"stale_severity"}),
    "pregnancy": frozenset({"severity"}),
    "contraception": frozenset({"severity"}),
    "lactation": frozenset({"severity"}),
    "allergy": frozenset({"severity"}),
    "infusion_reaction_history": frozenset({"severity"}),
    "lab_limits": frozenset({"severity"}),
    "infection": frozenset({"severity"}),
    "indication": frozenset({"severity"}),
    "patient": frozenset({"age_severity", "weight_severity", "weight_change_severity"}),
}


def _flags(severity: str) -> bool:
    """A rule of this severity asks for an absent fact (data finding) only if it could flag."""
    return severity_rank(severity) >= severity_rank("warning")


def infusion_rules_in_use(mono: Monograph) -> list[tuple[int, InfusionRules]]:
    """(index in `product_list`, rules) of each product's infusion rules, first product first;
    the drug's [infusion] is in use only for a product without its own."""
    out: list[tuple[int, InfusionRules]] = []
    for i, product in enumerate(mono.product_list):
        rules = mono.infusion_rules(product)
        if rules is not None and all(rules is not r for _, r in out):
            out.append((i, rules))
    return out


def rule_ids(mono: Monograph) -> dict[str, str]:
    """rule id -> the monograph section (and entry) it comes from, for every rule id `mono` can emit."""
    ids: dict[str, str] = {}

    def add(category: str, name: str, section: str) -> None:
        ids.setdefault(mono.rule_id(category, name), section)

    products = mono.product_list
    for name in ("weight_missing", "height_missing", "unit_unknown", "route_unknown"):
        add("data", name, "dose")
    add("dose", "route", "dose")
    if len(products) > 1:
        add("data", "product_unknown", "products")
    for i, product in enumerate(products):
        dose = mono.dose_rules(product)
        where = f"products.{i}.dose" if product.dose is not None else "dose"
        add("dose", dose.form, where)
        add("dose", f"{dose.form}_low", where)
        if dose.split_first_dose is not None:
            add("dose", "split_first_dose", f"{where}.split_first_dose")
    for i, rules in infusion_rules_in_use(mono):
        where = f"products.{i}.infusion" if products[i].infusion is not None else "infusion"
        add("data", "infusion_duration_missing", where)
        add("dose", "infusion_too_fast", where)
        add("dose", "infusion_too_slow", where)
        split = any(mono.dose_rules(p).split_first_dose is not None for p in products
                    if mono.infusion_rules(p) is rules)
        windows = [*rules.windows, *([rules.split_window] if split and rules.split_window else [])]
        if any(w.max_rate_ml_per_h is not None for w in windows):
            add("data", "infusion_volume_missing", where)
            add("dose", "infusion_rate", where)
    if mono.first_dose is not None:
        add("dose", "first_dose_premedication", "first_dose")
    if mono.premedication is not None:
        add("dose", "premedication", "premedication")
    if mono.patient is not None:
        p = mono.patient
        if p.min_age_years is not None:
            add("contraindication", "age_below_minimum", "patient")
            if _flags(p.age_severity):
                add("data", "age_unknown", "patient")
        if p.weight_min_kg is not None:
            add("dose", "weight_implausible", "patient")
        if p.weight_change_percent is not None:
            add("dose", "weight_change", "patient")
    if mono.schedule is not None:
        for name in ("duplicate", "off_plan_day", "too_soon_after_previous", "too_close_to_next",
                     "frequency"):
            add("interval", name, "schedule")
        add("data", "dose_before_kept_history", "schedule")
    if mono.regimens:
        add("data", "regimen_unnamed", "regimens")
        add("data", "regimen_unknown", "regimens")
    for i, combo in enumerate(mono.combinations):
        add("combination", combo.drug_class, f"combinations.{i}")
    if mono.concurrent is not None and mono.combinations:
        add("combination", STALE_ORDER_RULE, "concurrent")
    if mono.pregnancy is not None:
        add("contraindication", "pregnancy", "pregnancy")
        add("data", "pregnancy_unknown", "pregnancy")
        if mono.contraception is not None:
            add("contraindication", "contraception", "contraception")
    if mono.lactation is not None:
        add("contraindication", "lactation", "lactation")
        if _flags(mono.lactation.severity):
            add("data", "lactation_unknown", "lactation")
    if mono.allergy is not None:
        add("contraindication", "allergy", "allergy")
        if _flags(mono.allergy.severity):
            add("data", "allergies_missing", "allergy")
    if mono.infusion_reaction_history is not None:
        add("contraindication", "prior_severe_infusion_reaction", "infusion_reaction_history")
    for i, limit in enumerate(mono.lab_limits):
        key = slug(limit.lab)
        for name in lab_limit_names(limit).values():
            add("contraindication", name, f"lab_limits.{i}")
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
