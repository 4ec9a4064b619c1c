"""Daratumumab order events for the rule tables (knowledge/data/drugs/daratumumab.toml).

The example patient weighs 70 kg and is 165 cm tall: 16 mg/kg IV is 1,120 mg; the SC product
(Darzalex Faspro) is 1,800 mg flat. `dara(...)` is the contract example re-written as a
daratumumab order: IV, 16 mg/kg, regimen DRd at cycle 1 day 1, 1000 mL over 7 hours.
"""
from __future__ import annotations

from typing import Any

from .conftest import DROP, KEEP, order_event

D = "daratumumab."
PER_KG, PER_KG_LOW = D + "dose.per_kg", D + "dose.per_kg_low"
FLAT, FLAT_LOW = D + "dose.flat", D + "dose.flat_low"
ROUTE = D + "dose.route"
SPLIT = D + "dose.split_first_dose"
FAST, SLOW, RATE = D + "dose.infusion_too_fast", D + "dose.infusion_too_slow", D + "dose.infusion_rate"
PREMED_FIRST, PREMED = D + "dose.first_dose_premedication", D + "dose.premedication"
PRODUCT_UNKNOWN = D + "data.product_unknown"
VOLUME_MISSING = D + "data.infusion_volume_missing"
DURATION_MISSING = D + "data.infusion_duration_missing"
REGIMEN_UNNAMED, REGIMEN_UNKNOWN = D + "data.regimen_unnamed", D + "data.regimen_unknown"
OFF_PLAN, TOO_SOON, TOO_CLOSE = (D + "interval.off_plan_day", D + "interval.too_soon_after_previous",
                                 D + "interval.too_close_to_next")
DUPLICATE, FREQUENCY = D + "interval.duplicate", D + "interval.frequency"
CD38, MAB = D + "combination.anti_cd38", D + "combination.monoclonal_antibody"


def dara(*, drug: Any = "daratumumab", dose: Any = (16, "mg/kg"), route: str = "IV",
         regimen: Any = ("DRd", 1, 1), volume_ml: Any = 1000, duration_min: Any = 420,
         **kw) -> dict:
    """A daratumumab order; regimen (name, cycle, day), a dict, or DROP; volume/duration DROP-able."""
    if isinstance(regimen, tuple):
        name, cycle, day = regimen
        regimen = {k: v for k, v in (("name", name), ("cycle", cycle), ("day", day)) if v is not None}
    infusion: Any = {}
    if volume_ml is not DROP:
        infusion["volume_ml"] = volume_ml
    if duration_min is not DROP:
        infusion["duration_min"] = duration_min
    if route.upper() != "IV" and "infusion" not in kw:
        infusion = DROP
    kw.setdefault("infusion", infusion if infusion else DROP)
    kw.setdefault("frequency", DROP)
    return order_event(drug=drug, dose=dose, route=route, regimen=regimen, **kw)


def sc(**kw) -> dict:
    """The SC product by generic name: 1,800 mg flat."""
    kw.setdefault("dose", (1800, "mg"))
    return dara(route="SC", **kw)


__all__ = ["dara", "sc", "DROP", "KEEP"]
