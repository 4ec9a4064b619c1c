"""Dose rules: the amount, the route, the way it is given (infusion duration, premedication).

Monograph sections used: [dose], [infusion], [first_dose], [patient] (the weight a per-kg
dose is computed on: plausible, and not changed beyond a threshold since the previous dose).
"""
from __future__ import annotations

import math

from ..contract import Finding
from . import OrderContext, beyond, num

# Units that convert to a mass in mg (the factor), per unit of body size.
MASS_UNITS = {"mg": 1.0, "g": 1000.0, "mcg": 0.001}


def mosteller_bsa_m2(weight_kg: float, height_cm: float) -> float:
    """Body-surface area (Mosteller): sqrt(height_cm * weight_kg / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def check(ctx: OrderContext) -> list[Finding]:
    route = ctx.knowledge.route(ctx.order.route)
    return [*_amount(ctx), *_weight(ctx), *_route(ctx, route), *_infusion(ctx, route),
            *_first_dose(ctx)]


def _weight(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.patient
    weight = ctx.patient.weight_kg
    if rules is None or weight is None:
        return []  # a missing weight is _amount's data finding
    findings: list[Finding] = []
    if rules.weight_min_kg is not None and rules.weight_max_kg is not None and not (
            rules.weight_min_kg <= weight <= rules.weight_max_kg):
        findings.append(ctx.finding(
            "dose", "weight_implausible", rules.weight_severity,
            f"Weight {num(weight)} kg is outside {num(rules.weight_min_kg)}-"
            f"{num(rules.weight_max_kg)} kg, implausible for a patient given {ctx.monograph.drug}: "
            f"confirm the weight (and its unit) before the dose is prepared",
            {"weight_kg": num(weight), "weight_min_kg": num(rules.weight_min_kg),
             "weight_max_kg": num(rules.weight_max_kg)},
            rules.weight_reference or rules.reference))
    if rules.weight_change_percent is None:
        return findings
    earlier = [o for o in ctx.same_drug_orders if o.scheduled_for < ctx.scheduled_for]
    fold = ctx.same_drug_fold
    if fold is not None and fold.last.scheduled_for < ctx.scheduled_for:
        earlier.append(fold.last)
    # the latest earlier dose that gave a weight: one order without a weight between two
    # does not hide a jump
    earlier = [o for o in earlier if o.weight_kg is not None]
    if not earlier:
        return findings  # a first dose, or no earlier order gave a weight (or kept one)
    previous = max(earlier, key=lambda o: o.scheduled_for)
    change = round((weight - previous.weight_kg) / previous.weight_kg * 100, 6)
    if abs(change) > rules.weight_change_percent:
        direction = "above" if change > 0 else "below"
        findings.append(ctx.finding(
            "dose", "weight_change", rules.weight_change_severity,
            f"Weight {num(weight)} kg is {beyond(abs(change), rules.weight_change_percent)} % "
            f"{direction} the {num(previous.weight_kg)} kg of the previous {ctx.monograph.drug} "
            f"dose (order {previous.order_id}, {previous.scheduled_for.date().isoformat()}); more "
            f"than {num(rules.weight_change_percent)} % is flagged: confirm the weight (kg, not "
            f"lb) before a per-kg dose is prepared",
            {"weight_kg": num(weight), "previous_weight_kg": num(previous.weight_kg),
             "previous_order_id": previous.order_id,
             "previous_scheduled_for": previous.scheduled_for.isoformat(),
             "change_percent": num(change, 2), "limit_percent": num(rules.weight_change_percent)},
            rules.weight_change_reference or rules.reference))
    return findings


def _amount(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.dose
    drug = ctx.monograph.drug
    dose = ctx.order.dose
    weight = ctx.patient.weight_kg
    height = ctx.patient.height_cm
    findings: list[Finding] = []
    evidence: dict = {"ordered_value": num(dose.value, 4), "ordered_unit": dose.unit}

    if weight is None:
        findings.append(ctx.missing(
            "weight_missing",
            f"No weight: {drug} is dosed per kg ({num(rules.labeled_mg_per_kg)} mg/kg), so the "
            f"{num(dose.value, 4)} {dose.unit} order cannot be checked or prepared without it",
            {**evidence, "labeled_mg_per_kg": num(rules.labeled_mg_per_kg)}, rules.reference))

    if dose.unit in MASS_UNITS:
        ordered_mg = dose.value * MASS_UNITS[dose.unit]
        if weight is None:
            return findings
        mg_per_kg = ordered_mg / weight
        converted = "" if dose.unit == "mg" else f" ({num(ordered_mg, 4)} mg)"
        stated = (f"{num(dose.value, 4)} {dose.unit}{converted} is {mg_per_kg:.1f} mg/kg "
                  f"for {num(weight)} kg")
        evidence.update(ordered_mg=num(ordered_mg, 4), weight_kg=num(weight))
    elif dose.unit == "mg/kg":
        mg_per_kg = dose.value
        stated = f"{num(dose.value, 4)} mg/kg ordered"
        if weight is not None:
            evidence.update(ordered_mg=num(dose.value * weight, 4), weight_kg=num(weight))
    elif dose.unit == "mg/m2":
        if height is None:
            findings.append(ctx.missing(
                "height_missing",
                f"No height: a dose of {num(dose.value, 4)} mg/m2 needs the body-surface area "
                f"(Mosteller, from height and weight) to compare with the labeled "
                f"{num(rules.labeled_mg_per_kg)} mg/kg",
                evidence, rules.reference))
        if weight is None or height is None:
            return findings
        bsa = mosteller_bsa_m2(weight, height)
        ordered_mg = dose.value * bsa
        mg_per_kg = ordered_mg / weight
        stated = (f"{num(dose.value, 4)} mg/m2 x {bsa:.2f} m2 (Mosteller, {num(height)} cm, "
                  f"{num(weight)} kg) = {num(ordered_mg, 1)} mg, which is {mg_per_kg:.1f} mg/kg")
        evidence.update(bsa_m2=num(bsa, 3), height_cm=num(height), weight_kg=num(weight),
                        ordered_mg=num(ordered_mg, 2))
    else:
        findings.append(ctx.missing(
            "unit_unknown",
            f"A dose in {dose.unit} cannot be converted to mg/kg, the unit {drug} is labeled in "
            f"({num(rules.labeled_mg_per_kg)} mg/kg): confirm the amount in mg",
            {**evidence, "labeled_mg_per_kg": num(rules.labeled_mg_per_kg)}, rules.reference))
        return findings

    labeled = rules.labeled_mg_per_kg
    deviation = round((mg_per_kg - labeled) / labeled * 100, 6)
    evidence.update(mg_per_kg=num(mg_per_kg, 4), labeled_mg_per_kg=num(labeled),
                    deviation_percent=num(deviation, 4))
    if deviation > rules.over_limit_percent:
        findings.append(ctx.finding(
            "dose", "per_kg", rules.over_severity,
            f"{stated}; the labeled dose is {num(labeled)} mg/kg "
            f"({beyond(deviation, rules.over_limit_percent)} % above; more than {num(rules.over_limit_percent)} % is flagged)",
            {**evidence, "limit_percent": num(rules.over_limit_percent)}, rules.reference))
    elif -deviation > rules.under_limit_percent:
        findings.append(ctx.finding(
            "dose", "per_kg_low", rules.under_severity,
            f"{stated}; the labeled dose is {num(labeled)} mg/kg "
            f"({beyond(-deviation, rules.under_limit_percent)} % below; more than {num(rules.under_limit_percent)} % is flagged)",
            {**evidence, "limit_percent": num(rules.under_limit_percent)}, rules.reference))
    return findings


def _route(ctx: OrderContext, route: str | None) -> list[Finding]:
    rules = ctx.monograph.dose
    written = ctx.order.route
    if route is None:
        return [ctx.missing(
            "route_unknown",
            f"Route {written!r} is not one the knowledge recognises; {ctx.monograph.drug} is "
            f"labeled {'/'.join(rules.routes)}",
            {"ordered_route": written, "labeled_routes": rules.routes}, rules.reference)]
    if route not in rules.routes:
        return [ctx.finding(
            "dose", "route", rules.route_severity,
            f"Route {route} ordered; {ctx.monograph.drug} is given {'/'.join(rules.routes)} only",
            {"ordered_route": route, "labeled_routes": rules.routes}, rules.reference)]
    return []


def _infusion(ctx: OrderContext, route: str | None) -> list[Finding]:
    rules = ctx.monograph.infusion
    if rules is None or route not in rules.routes:
        return []
    infusion = ctx.order.infusion
    minutes = infusion.duration_min if infusion else None
    window = f"{num(rules.min_minutes / 60)}-{num(rules.max_minutes / 60)} hours"
    if minutes is None:
        return [ctx.missing(
            "infusion_duration_missing",
            f"No infusion duration for a {route} infusion: the label asks for {window} "
            f"({num(rules.min_minutes)}-{num(rules.max_minutes)} min)",
            {"min_minutes": num(rules.min_minutes), "max_minutes": num(rules.max_minutes)},
            rules.reference)]
    evidence = {"duration_min": num(minutes), "min_minutes": num(rules.min_minutes),
                "max_minutes": num(rules.max_minutes)}
    if infusion and infusion.volume_ml is not None:
        evidence["volume_ml"] = num(infusion.volume_ml)
        evidence["rate_ml_per_h"] = num(infusion.volume_ml / minutes * 60, 1)
    if minutes < rules.min_minutes:
        return [ctx.finding(
            "dose", "infusion_too_fast", rules.short_severity,
            f"Infusion over {num(minutes)} min is faster than labeled: complete it in {window} "
            f"(at least {num(rules.min_minutes)} min)", evidence, rules.reference)]
    if minutes > rules.max_minutes:
        return [ctx.finding(
            "dose", "infusion_too_slow", rules.long_severity,
            f"Infusion over {num(minutes)} min is longer than the labeled {window} "
            f"({num(rules.max_minutes)} min)", evidence, rules.reference)]
    return []


def _first_dose(ctx: OrderContext) -> list[Finding]:
    rules = ctx.monograph.first_dose
    if rules is None:
        return []
    earlier = [o for o in ctx.same_drug_orders if o.scheduled_for < ctx.scheduled_for]
    fold = ctx.same_drug_fold  # older doses, kept as a count: the earliest is first_at
    if fold is not None and fold.first_at < ctx.scheduled_for:
        earlier.append(fold.last)
    regimen = ctx.order.regimen
    placed_in_plan = regimen is not None and regimen.cycle is not None and regimen.day is not None
    if earlier or (placed_in_plan and (regimen.cycle, regimen.day) != (1, 1)):
        return []
    evidence: dict = {"earlier_active_doses": 0}
    if placed_in_plan:
        evidence.update(cycle=regimen.cycle, day=regimen.day)
    return [ctx.finding(
        "dose", "first_dose_premedication", rules.severity,
        f"First {ctx.monograph.drug} dose for this patient: premedicate with "
        f"{', '.join(rules.premedication[:-1])} and {rules.premedication[-1]}, and watch for "
        f"infusion reactions", evidence, rules.reference)]
