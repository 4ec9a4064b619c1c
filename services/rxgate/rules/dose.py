"""Dose rules: the amount, the route, the way it is given (infusion duration, premedication).

Monograph sections used: [dose], [infusion], [first_dose], [patient] (the weight a per-kg
dose is computed on: plausible, and not changed beyond a threshold since the previous dose).
"""
from __future__ import annotations

import math

from ..contract import Finding
from ..history import ActiveOrder
from ..knowledge import Knowledge
from ..knowledge.memo import memoised
from ..knowledge.models import DoseRules, Monograph, ProductMatch
from . import OrderContext, again, beyond, num

# Units that convert to a mass in mg (the factor), per unit of body size.
MASS_UNITS = {"mg": 1.0, "g": 1000.0, "mcg": 0.001}


def mosteller_bsa_m2(weight_kg: float, height_cm: float) -> float:
    """Body-surface area (Mosteller): sqrt(height_cm * weight_kg / 3600)."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def check(ctx: OrderContext) -> list[Finding]:
    case = _case_of(ctx)
    # the amount, weight, route, infusion, first-dose and premedication findings, in this
    # order; most orders have none but the premedication reminder, so each list is added only
    # when it has findings (_amount's list is a new one of its own: the one returned)
    findings, split_part = _amount(ctx, case)
    first = _first_dose(ctx, case)
    if case.patient is not None:
        weight = _weight(ctx, case)
        if weight:
            findings += weight
    if not case.route_ok:
        findings += _route(ctx, case.route, case.match)
    if case.infusion is not None:
        infusion = _infusion(ctx, case, split_part)
        if infusion:
            findings += infusion
    if first:
        findings += first
    elif case.premedication is not None:
        findings.append(_premedication(ctx, case))
    return findings


# round(x, 6) is within 5e-7 of x (and x itself where a float's spacing is wider): a deviation
# at least this far inside a limit is inside it rounded too, and needs no round()
_ROUNDING_MARGIN = 1e-6


class _Case:
    """What the dose rules make of an order's drug and route as written, whatever else the
    order says: the canonical route, the product matched and its dose rules, whether the route
    is the product's, the infusion rules that apply (None: none for this route) and their
    window when it does not depend on the dose number, whether a flat dose (which needs no
    weight) is ordered, the premedication that applies (None: none for this route), and the
    monograph's sections and limits the rules read for every order. Worked out once per
    monograph of a knowledge (_case_of): orders write their drug and route one of a few ways."""

    __slots__ = ("route", "match", "rules", "route_ok", "infusion", "per_dose", "window",
                 "window_limits", "flat", "premedication", "premedication_list",
                 "premedication_finding", "first_dose", "form", "labeled", "unsplit",
                 "surely_within", "patient", "weight_range", "weight_change",
                 "surely_same_weight", "same_weight_quiet")

    def __init__(self, knowledge: Knowledge, monograph: Monograph, name: str,
                 code_system: str | None, code_value: str | None, written_route: str) -> None:
        route = self.route = knowledge.route(written_route)
        match = self.match = monograph.match_product(name, code_system, code_value, route)
        product = match.product
        rules = self.rules = None if product is None else monograph.dose_rules(product)
        self.route_ok = route is not None and match.route_matched
        infusion = monograph.infusion_rules(product)
        if infusion is not None and route not in infusion.routes:
            infusion = None
        self.infusion = infusion
        self.per_dose = infusion is not None and (
            bool(infusion.windows) or infusion.split_window is not None)
        # rules.window_for(1) without windows, and its limits (min, max minutes, max rate)
        window = self.window = None if infusion is None or self.per_dose else infusion.default_window
        self.window_limits = None if window is None else (
            window.min_minutes, window.max_minutes, window.max_rate_ml_per_h)
        self.flat = rules is not None and rules.form == "flat"
        premedication = monograph.premedication
        if premedication is not None and premedication.routes and route not in premedication.routes:
            premedication = None
        self.premedication = premedication
        # its list, as a tuple of its own (a pydantic model's attribute: slower to read)
        self.premedication_list = None if premedication is None \
            else tuple(premedication.premedication)
        self.premedication_finding: Finding | None = None  # the first one made (_premedication)
        self.first_dose = monograph.first_dose
        # the amount (_amount): the form and labeled dose, whether the first dose may be split,
        # the deviations (percent, unrounded) surely within the tolerances when rounded
        self.form = None if rules is None else rules.form
        self.labeled = None if rules is None else rules.labeled
        self.unsplit = rules is not None and rules.split_first_dose is None
        self.surely_within = None if rules is None else (
            _ROUNDING_MARGIN - rules.under_limit_percent,
            rules.over_limit_percent - _ROUNDING_MARGIN)
        # the weight (_weight): the plausible range (None: not both ends given), the change
        # flagged and the changes (percent, unrounded) surely not beyond it when rounded
        patient = self.patient = monograph.patient
        self.weight_range = None if patient is None or patient.weight_min_kg is None \
            or patient.weight_max_kg is None else (patient.weight_min_kg, patient.weight_max_kg)
        self.weight_change = None if patient is None else patient.weight_change_percent
        self.surely_same_weight = None if self.weight_change is None \
            else self.weight_change - _ROUNDING_MARGIN
        # a change of 0 % (an earlier dose of the same weight) is surely not flagged
        self.same_weight_quiet = self.surely_same_weight is not None \
            and self.surely_same_weight >= 0


def _cases(knowledge: Knowledge, monograph: Monograph) -> dict:
    return {}  # _Case by the drug and route as written, bounded by memoised()


def _case_of(ctx: OrderContext) -> _Case:
    order = ctx.order
    drug = order.drug
    code = drug.code
    key = (drug.name, code.system, code.value, order.route) if code is not None \
        else (drug.name, None, None, order.route)
    try:  # ctx.knowledge.per_monograph("dose", ctx.monograph, _cases), kept read first
        cases = ctx.kept["dose"]
    except KeyError:
        cases = ctx.knowledge.per_monograph("dose", ctx.monograph, _cases)
    case = cases.get(key)
    if case is None:
        case = memoised(cases, key, _Case, ctx.knowledge, ctx.monograph, *key)
    return case


def _weight(ctx: OrderContext, case: _Case) -> list[Finding]:
    """The weight a per-kg or per-m2 dose is computed on (a flat dose does not use it)."""
    rules = case.patient
    if rules is None:
        return []
    if case.flat and ctx.order.dose.unit not in ("mg/kg", "mg/m2"):
        return []
    weight = ctx.patient.weight_kg
    if weight is None:
        return []  # a missing weight is _amount's data finding
    findings: list[Finding] = []
    plausible = case.weight_range
    if plausible is not None and not (plausible[0] <= weight <= plausible[1]):
        findings.append(ctx.finding(
            "dose", "weight_implausible", rules.weight_severity,
            f"Weight {num(weight)} kg is outside {num(rules.weight_min_kg)}-"
            f"{num(rules.weight_max_kg)} kg, implausible for a patient given {ctx.monograph.drug}: "
            f"confirm the weight (and its unit) before the dose is prepared",
            {"weight_kg": num(weight), "weight_min_kg": num(rules.weight_min_kg),
             "weight_max_kg": num(rules.weight_max_kg)},
            rules.weight_reference or rules.reference))
    if case.weight_change is None:
        return findings
    if case.same_weight_quiet and weight > 0:
        # most often every earlier order of the drug (active or folded) gave this same weight,
        # or none: whichever is the previous dose, its change is 0 %, not flagged (the limit is
        # not negative); any other weight, the long way
        for o in ctx.same_drug_orders:
            other = o.weight_kg
            if other is not None and other != weight:
                break
        else:
            for fold in ctx.folds:  # (the drug's fold is one of them, if any)
                other = fold.last.weight_kg
                if other is not None and other != weight:
                    break
            else:
                return findings
    # the latest earlier dose that gave a weight (the first of equally late ones, in the
    # order of the active orders, then the fold's last): one order without a weight between
    # two does not hide a jump
    now = ctx.scheduled_for
    previous = latest = None
    for o in ctx.same_drug_orders:
        if o.weight_kg is not None:
            at = o.scheduled_for
            if at < now and (latest is None or at > latest):
                previous, latest = o, at
    fold = ctx.same_drug_fold
    if fold is not None:
        o = fold.last
        if o.weight_kg is not None:
            at = o.scheduled_for
            if at < now and (latest is None or at > latest):
                previous = o
    if previous is None:
        return findings  # a first dose, or no earlier order gave a weight (or kept one)
    change = (weight - previous.weight_kg) / previous.weight_kg * 100
    surely = case.surely_same_weight
    if -surely <= change <= surely:
        return findings
    change = round(change, 6)
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


def _split_day(ctx: OrderContext, rules: DoseRules) -> int | None:
    """The day of cycle 1 on which this order's regimen places a part of a split first dose."""
    split = rules.split_first_dose
    regimen = ctx.order.regimen
    if split is None or regimen is None or regimen.cycle != 1 or regimen.day not in split.days:
        return None
    return regimen.day


def _amount(ctx: OrderContext, case: _Case) -> tuple[list[Finding], bool]:
    """The amount findings, and whether the order is a part of a split first dose."""
    rules = case.rules
    if rules is None:  # no product
        match = case.match
        listed = "; ".join(f"{p.name} ({'/'.join(ctx.monograph.routes_of(p))}, "
                           f"{num(ctx.monograph.dose_rules(p).labeled)} {ctx.monograph.dose_rules(p).unit})"
                           for p in match.candidates)
        return [ctx.missing(
            "product_unknown",
            f"The order does not say which {ctx.monograph.drug} product it is ({listed}): the "
            f"amount cannot be compared with a labeled dose; name the product or a route of it",
            {"ordered_route": ctx.order.route, "products": [p.name for p in match.candidates]},
            ctx.monograph.dose.reference)], False
    value = _value_in_form(ctx, case.form)
    if value is not None and case.unsplit:  # the common case: every fact given, no split
        labeled = case.labeled
        deviation = (value - labeled) / labeled * 100
        low, high = case.surely_within
        if low <= deviation <= high or _within(rules, value, labeled):
            return [], False
    reading = _in_form(ctx, rules) if value is None else _Reading(value, "", None, [], ctx, rules)
    findings = reading.missing
    if reading.value is None:
        return findings, False
    labeled = rules.labeled
    split_day = _split_day(ctx, rules)
    split = rules.split_first_dose
    if split_day is not None and split is not None:
        parts = len(split.days)
        part = labeled / parts
        if split_day != 1:  # a later part: compared with one part only
            deviation = _deviation(ctx, rules, reading, part, split_part=(split_day, parts))
            mixed = [] if deviation else _whole_and_split(ctx, rules, reading, split_day, as_part=True)
            return findings + deviation + mixed, True
        whole = _deviation(ctx, rules, reading, labeled)
        if not whole:  # the whole first dose on day 1: is a part of a split ordered too?
            return findings + _whole_and_split(ctx, rules, reading, split_day, as_part=False), False
        if _deviation(ctx, rules, reading, part, split_part=(1, parts)):
            return findings + whole, False
        return findings + _whole_and_split(ctx, rules, reading, split_day, as_part=True) + [ctx.finding(
            "dose", "split_first_dose", split.severity,
            f"{reading.stated}: part 1 of {parts} of a first dose given split "
            f"({num(part, 4)} {rules.unit} on each of cycle 1 days "
            f"{', '.join(map(str, split.days))}); the other part{'s are' if parts > 2 else ' is'} "
            f"due on day{'s' if parts > 2 else ''} {', '.join(map(str, split.days[1:]))}",
            {**reading.evidence, f"labeled_{_key(rules)}": num(labeled),
             f"part_{_key(rules)}": num(part, 4), "parts": parts,
             "split_days": list(split.days)}, split.reference)], True
    return findings + _deviation(ctx, rules, reading, labeled), False


def _within(rules: DoseRules, value: float, labeled: float) -> bool:
    """`value` is within the dose's tolerances of `labeled` (the arithmetic of _deviation)."""
    deviation = round((value - labeled) / labeled * 100, 6)
    return -rules.under_limit_percent <= deviation <= rules.over_limit_percent


def _stored_in_form(rules: DoseRules, order: ActiveOrder, height_cm: float | None) -> float | None:
    """An earlier order's dose in the unit of the dose form, from what the history kept (its
    dose and the weight given with it; the height is this order's); None when that is not
    enough (a history kept before doses were, a unit that does not convert)."""
    value, unit, weight = order.dose_value, order.dose_unit, order.weight_kg
    if value is None or unit is None:
        return None
    if unit in MASS_UNITS:
        mg = value * MASS_UNITS[unit]
    elif unit == "mg/kg" and rules.form == "per_kg":
        return value
    elif unit == "mg/m2" and rules.form == "per_m2":
        return value
    elif unit == "mg/kg" and weight is not None:
        mg = value * weight
    elif unit == "mg/m2" and weight is not None and height_cm is not None:
        mg = value * mosteller_bsa_m2(weight, height_cm)
    else:
        return None
    if rules.form == "flat":
        return mg
    if weight is None:
        return None
    if rules.form == "per_kg":
        return mg / weight
    return None if height_cm is None else mg / mosteller_bsa_m2(weight, height_cm)


def _whole_and_split(ctx: OrderContext, rules: DoseRules, reading: _Reading, split_day: int,
                     as_part: bool) -> list[Finding]:
    """A first dose ordered both whole and split: this order is a part of a split first dose
    (`as_part`) and another active order of the drug on a split day of cycle 1 is the whole
    first dose, or this order is the whole first dose and another is a part. Either way the
    patient would get more than the labeled first dose (whole 16 mg/kg on day 1, then 8 mg/kg
    on day 2); nothing is reported when the other order's amount is not known."""
    split = rules.split_first_dose
    assert split is not None and reading.value is not None
    parts = len(split.days)
    part = rules.labeled / parts
    others = [o for o in ctx.same_drug_orders
              if o.cycle == 1 and o.day in split.days and o.day != split_day]
    for other in sorted(others, key=lambda o: o.scheduled_for):
        value = _stored_in_form(rules, other, ctx.patient.height_cm)
        if value is None:
            continue
        other_whole = _within(rules, value, rules.labeled)
        other_part = not other_whole and _within(rules, value, part)
        if not ((as_part and other_whole) or (not as_part and other_part)):
            continue
        total = reading.value + value
        this_as = f"part {split_day} of {parts} of a first dose given split" if as_part \
            else "the whole first dose"
        other_as = "the whole first dose" if other_whole else "a part of a first dose given split"
        return [ctx.finding(
            "dose", "split_and_whole_first_dose", rules.over_severity,
            f"{reading.stated}: {this_as} (cycle 1 day {split_day}), but order {other.order_id} "
            f"(cycle 1 day {other.day}) is {other_as} ({num(value, 4)} {rules.unit}): together "
            f"{num(total, 4)} {rules.unit}, {beyond(total / rules.labeled * 100, 100)} % of the "
            f"labeled first dose of {num(rules.labeled)} {rules.unit}; a first dose is given "
            f"whole on day 1 or split over days {', '.join(map(str, split.days))}, not both",
            {**reading.evidence, _key(rules): num(reading.value, 4),
             "other_order_id": other.order_id, "other_day": other.day,
             f"other_{_key(rules)}": num(value, 4), f"total_{_key(rules)}": num(total, 4),
             f"labeled_{_key(rules)}": num(rules.labeled), f"part_{_key(rules)}": num(part, 4),
             "split_days": list(split.days)}, split.reference)]
    return []


_KEYS = {"per_kg": "mg_per_kg", "per_m2": "mg_per_m2", "flat": "mg"}


def _key(rules: DoseRules) -> str:
    return _KEYS[rules.form]


class _Reading:
    """The ordered amount in the unit of the product's dose form (None: cannot be computed),
    how it reads (`stated`) and its `evidence`, and the data findings of the facts it lacked.

    A reading made from the value alone (_value_in_form, with `ctx` and `rules`) describes
    itself (by _in_form) only when a finding quotes it: most orders are within the dose."""
    __slots__ = ("value", "missing", "_stated", "_evidence", "_ctx", "_rules")

    def __init__(self, value: float | None, stated: str, evidence: dict | None,
                 missing: list[Finding], ctx: OrderContext | None = None,
                 rules: DoseRules | None = None) -> None:
        self.value = value
        self.missing = missing
        self._stated = stated
        self._evidence = evidence
        self._ctx = ctx
        self._rules = rules

    def _describe(self) -> None:
        full = _in_form(self._ctx, self._rules)  # type: ignore[arg-type]
        assert full.value == self.value and not full.missing
        self._stated, self._evidence, self._ctx = full._stated, full._evidence, None

    @property
    def stated(self) -> str:
        if self._ctx is not None:
            self._describe()
        return self._stated

    @property
    def evidence(self) -> dict:
        if self._ctx is not None:
            self._describe()
        return self._evidence  # type: ignore[return-value]


def _value_in_form(ctx: OrderContext, form: str) -> float | None:
    """The ordered amount in the unit of the dose form when every fact it needs is given and
    the unit converts (the arithmetic of _in_form, step for step), else None."""
    dose = ctx.order.dose
    unit = dose.unit
    patient = ctx.patient
    weight = patient.weight_kg
    value = None
    if form == "per_kg":
        if weight is not None:
            if unit in MASS_UNITS:
                value = dose.value * MASS_UNITS[unit] / weight
            elif unit == "mg/kg":
                value = dose.value
            elif unit == "mg/m2" and patient.height_cm is not None:
                value = dose.value * mosteller_bsa_m2(weight, patient.height_cm) / weight
    elif form == "flat":
        if unit in MASS_UNITS:
            value = dose.value * MASS_UNITS[unit]
        elif unit == "mg/kg" and weight is not None:
            value = dose.value * weight
        elif unit == "mg/m2" and weight is not None and patient.height_cm is not None:
            value = dose.value * mosteller_bsa_m2(weight, patient.height_cm)
    elif weight is not None and patient.height_cm is not None:  # per m2
        height = patient.height_cm
        if unit in MASS_UNITS:
            mg = dose.value * MASS_UNITS[unit]
        elif unit == "mg/kg":
            mg = dose.value * weight
        elif unit == "mg/m2":
            mg = dose.value * mosteller_bsa_m2(weight, height)
        else:
            return None
        value = mg / mosteller_bsa_m2(weight, height)
    return value


def _in_form(ctx: OrderContext, rules: DoseRules) -> _Reading:
    """The reading with its description and data findings, the arithmetic spelled out (the
    value alone, when every fact is given: _value_in_form)."""
    if rules.form == "per_kg":
        return _per_kg(ctx, rules)
    dose = ctx.order.dose
    weight = ctx.patient.weight_kg
    height = ctx.patient.height_cm
    drug = ctx.monograph.drug
    labeled = f"{num(rules.labeled)} {rules.unit}"
    evidence: dict = {"ordered_value": num(dose.value, 4), "ordered_unit": dose.unit}
    missing: list[Finding] = []
    needs_weight = dose.unit == "mg/kg" or dose.unit == "mg/m2" or rules.form == "per_m2"
    needs_height = dose.unit == "mg/m2" or rules.form == "per_m2"
    if dose.unit not in MASS_UNITS and dose.unit not in ("mg/kg", "mg/m2"):
        missing.append(ctx.missing(
            "unit_unknown",
            f"A dose in {dose.unit} cannot be converted to {rules.unit}, the unit {drug} is "
            f"labeled in ({labeled}): confirm the amount in mg",
            {**evidence, f"labeled_{_key(rules)}": num(rules.labeled)}, rules.reference))
        return _Reading(None, "", evidence, missing)
    if needs_weight and weight is None:
        missing.append(ctx.missing(
            "weight_missing",
            f"No weight: a dose of {num(dose.value, 4)} {dose.unit} cannot be compared with the "
            f"labeled {labeled} without it",
            {**evidence, f"labeled_{_key(rules)}": num(rules.labeled)}, rules.reference))
    if needs_height and height is None:
        missing.append(ctx.missing(
            "height_missing",
            f"No height: a dose of {num(dose.value, 4)} {dose.unit} needs the body-surface area "
            f"(Mosteller, from height and weight) to compare with the labeled {labeled}",
            evidence, rules.reference))
    if missing:
        return _Reading(None, "", evidence, missing)
    if dose.unit in MASS_UNITS:
        mg = dose.value * MASS_UNITS[dose.unit]
        stated = f"{num(dose.value, 4)} {dose.unit}" + ("" if dose.unit == "mg" else f" ({num(mg, 4)} mg)")
    elif dose.unit == "mg/kg":
        mg = dose.value * weight  # type: ignore[operator]
        stated = f"{num(dose.value, 4)} mg/kg x {num(weight)} kg = {num(mg, 1)} mg"
        evidence["weight_kg"] = num(weight)  # type: ignore[arg-type]
    else:
        bsa = mosteller_bsa_m2(weight, height)  # type: ignore[arg-type]
        mg = dose.value * bsa
        stated = (f"{num(dose.value, 4)} mg/m2 x {bsa:.2f} m2 (Mosteller, {num(height)} cm, "  # type: ignore[arg-type]
                  f"{num(weight)} kg) = {num(mg, 1)} mg")  # type: ignore[arg-type]
        evidence.update(bsa_m2=num(bsa, 3), height_cm=num(height), weight_kg=num(weight))  # type: ignore[arg-type]
    evidence["ordered_mg"] = num(mg, 4)
    if rules.form == "flat":
        return _Reading(mg, stated, evidence, [])
    bsa = mosteller_bsa_m2(weight, height)  # type: ignore[arg-type]
    per_m2 = mg / bsa
    if dose.unit != "mg/m2":
        stated += f", which is {per_m2:.1f} mg/m2 for {bsa:.2f} m2 (Mosteller, {num(height)} cm, {num(weight)} kg)"  # type: ignore[arg-type]
        evidence.update(bsa_m2=num(bsa, 3), height_cm=num(height), weight_kg=num(weight))  # type: ignore[arg-type]
    evidence["mg_per_m2"] = num(per_m2, 4)
    return _Reading(per_m2, stated, evidence, [])


def _deviation(ctx: OrderContext, rules: DoseRules, reading: _Reading, labeled: float,
               split_part: tuple[int, int] | None = None) -> list[Finding]:
    """The over/under finding for `reading` against `labeled` (in the dose form's unit)."""
    assert reading.value is not None
    deviation = round((reading.value - labeled) / labeled * 100, 6)
    if not (deviation > rules.over_limit_percent or -deviation > rules.under_limit_percent):
        return []  # within the tolerances: nothing to describe
    key = _key(rules)
    name = {"per_kg": "per_kg", "per_m2": "per_m2", "flat": "flat"}[rules.form]
    evidence = dict(reading.evidence)
    if rules.form == "per_kg":
        evidence["mg_per_kg"] = num(reading.value, 4)
    evidence.update({f"labeled_{key}": num(labeled, 4), "deviation_percent": num(deviation, 4)})
    what = f"the labeled dose is {num(labeled, 4)} {rules.unit}"
    if split_part is not None:
        which, parts = split_part
        what = (f"part {which} of {parts} of a first dose given split is {num(labeled, 4)} "
                f"{rules.unit} (the whole dose {num(rules.labeled)} {rules.unit})")
        evidence.update(split_part=which, parts=parts, labeled_whole=num(rules.labeled))
    if deviation > rules.over_limit_percent:
        return [ctx.finding(
            "dose", name, rules.over_severity,
            f"{reading.stated}; {what} ({beyond(deviation, rules.over_limit_percent)} % above; "
            f"more than {num(rules.over_limit_percent)} % is flagged)",
            {**evidence, "limit_percent": num(rules.over_limit_percent)}, rules.reference)]
    if -deviation > rules.under_limit_percent:
        return [ctx.finding(
            "dose", f"{name}_low", rules.under_severity,
            f"{reading.stated}; {what} ({beyond(-deviation, rules.under_limit_percent)} % below; "
            f"more than {num(rules.under_limit_percent)} % is flagged)",
            {**evidence, "limit_percent": num(rules.under_limit_percent)}, rules.reference)]
    return []


def _per_kg(ctx: OrderContext, rules: DoseRules) -> _Reading:
    drug = ctx.monograph.drug
    dose = ctx.order.dose
    weight = ctx.patient.weight_kg
    height = ctx.patient.height_cm
    findings: list[Finding] = []
    labeled = rules.labeled
    evidence: dict = {"ordered_value": num(dose.value, 4), "ordered_unit": dose.unit}

    if weight is None:
        findings.append(ctx.missing(
            "weight_missing",
            f"No weight: {drug} is dosed per kg ({num(labeled)} mg/kg), so the "
            f"{num(dose.value, 4)} {dose.unit} order cannot be checked or prepared without it",
            {**evidence, "labeled_mg_per_kg": num(labeled)}, rules.reference))

    if dose.unit in MASS_UNITS:
        ordered_mg = dose.value * MASS_UNITS[dose.unit]
        if weight is None:
            return _Reading(None, "", evidence, findings)
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
                f"{num(labeled)} mg/kg",
                evidence, rules.reference))
        if weight is None or height is None:
            return _Reading(None, "", evidence, findings)
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
            f"({num(labeled)} mg/kg): confirm the amount in mg",
            {**evidence, "labeled_mg_per_kg": num(labeled)}, rules.reference))
        return _Reading(None, "", evidence, findings)
    return _Reading(mg_per_kg, stated, evidence, findings)


def _route(ctx: OrderContext, route: str | None, match: ProductMatch) -> list[Finding]:
    if route is not None and match.route_matched:
        return []
    rules = ctx.monograph.dose_rules(match.product)
    written = ctx.order.route
    labeled = match.routes
    who = match.candidates[0].name if match.named and len(match.candidates) == 1 else ctx.monograph.drug
    if route is None:
        return [ctx.missing(
            "route_unknown",
            f"Route {written!r} is not one the knowledge recognises; {who} is "
            f"labeled {'/'.join(labeled)}",
            {"ordered_route": written, "labeled_routes": labeled}, rules.reference)]
    if not match.route_matched:
        return [ctx.finding(
            "dose", "route", rules.route_severity,
            f"Route {route} ordered; {who} is given {'/'.join(labeled)} only"
            + (" (" + ", ".join(p.name + " " + "/".join(ctx.monograph.routes_of(p))
                                for p in match.candidates) + ")"
               if len(match.candidates) > 1 else ""),
            {"ordered_route": route, "labeled_routes": labeled}, rules.reference)]
    return []


def _dose_number(ctx: OrderContext) -> tuple[int, str]:
    """The number of this dose in the patient's course (1 = first) and how it is known: from
    the regimen's cycle/day when that is a dosing day of the plan, else by counting the
    patient's earlier doses of the drug on distinct days (the lower count: the stricter window)."""
    regimen = ctx.order.regimen
    rules, _ = ctx.monograph.regimen_for(regimen.name if regimen else None)
    if rules is not None and regimen is not None and regimen.cycle is not None and regimen.day is not None:
        slot = ctx.monograph.plan_for(rules).slot_of(regimen.cycle, regimen.day)
        if slot is not None:
            return slot + 1, "regimen"
    split = ctx.monograph.split_days
    days = {o.scheduled_for.date() for o in ctx.same_drug_orders
            if o.scheduled_for < ctx.scheduled_for
            and not (o.cycle == 1 and o.day is not None and o.day != 1 and o.day in split)}
    count = len(days)
    fold = ctx.same_drug_fold
    if fold is not None and fold.first_at < ctx.scheduled_for:
        count += 1  # at least one earlier dose: the folded doses may share days, fail closed low
    return count + 1, "count"


def _infusion(ctx: OrderContext, case: _Case, split_part: bool) -> list[Finding]:
    """The infusion's duration and rate (only for an order whose route has infusion rules)."""
    rules = case.infusion
    assert rules is not None
    route = case.route
    infusion = ctx.order.infusion
    minutes = infusion.duration_min if infusion else None
    volume = infusion.volume_ml if infusion else None
    per_dose = case.per_dose
    if per_dose:
        number, known_by = _dose_number(ctx)
        window = rules.window_for(number, split_part)
        lo, hi, max_rate = window.min_minutes, window.max_minutes, window.max_rate_ml_per_h
    else:
        number, known_by, window = 1, "", case.window
        lo, hi, max_rate = case.window_limits
    if minutes is not None and not (minutes < lo) and not (minutes > hi) and (
            max_rate is None or (volume is not None and not (volume / minutes * 60 > max_rate))):
        return []  # within the window (and its rate): nothing to describe
    which = ""
    extra: dict = {}
    if per_dose:
        which = (f" for the {window.label or f'infusion of dose {window.from_dose} on'}"
                 + (" (a part of a split first dose)" if split_part and rules.split_window else "")
                 + f", dose {number} by the {'regimen' if known_by == 'regimen' else 'count of earlier doses'}")
        extra = {"dose_number": number, "dose_number_from": known_by, "split_part": split_part}
        if window.volume_ml is not None:
            extra["labeled_volume_ml"] = num(window.volume_ml)
    lo, hi = window.min_minutes, window.max_minutes
    span = f"{num(lo / 60)}-{num(hi / 60)} hours"
    if minutes is None:
        return [ctx.missing(
            "infusion_duration_missing",
            f"No infusion duration for a {route} infusion: the label asks for {span} "
            f"({num(lo)}-{num(hi)} min){which}",
            {"min_minutes": num(lo), "max_minutes": num(hi), **extra},
            rules.reference)]
    evidence = {"duration_min": num(minutes), "min_minutes": num(lo), "max_minutes": num(hi), **extra}
    if volume is not None:
        evidence["volume_ml"] = num(volume)
        evidence["rate_ml_per_h"] = num(volume / minutes * 60, 1)
    findings: list[Finding] = []
    if minutes < lo:
        findings.append(ctx.finding(
            "dose", "infusion_too_fast", rules.short_severity,
            f"Infusion over {num(minutes)} min is faster than labeled: complete it in {span} "
            f"(at least {num(lo)} min){which}", evidence, rules.reference))
    elif minutes > hi:
        findings.append(ctx.finding(
            "dose", "infusion_too_slow", rules.long_severity,
            f"Infusion over {num(minutes)} min is longer than the labeled {span} "
            f"({num(hi)} min){which}", evidence, rules.reference))
    if window.max_rate_ml_per_h is not None:
        max_rate = window.max_rate_ml_per_h
        if volume is None:
            findings.append(ctx.missing(
                "infusion_volume_missing",
                f"No infusion volume: the rate cannot be compared with the labeled maximum of "
                f"{num(max_rate)} mL/h{which}",
                {**evidence, "max_rate_ml_per_h": num(max_rate)}, rules.reference))
        else:
            rate = volume / minutes * 60
            if rate > max_rate:
                findings.append(ctx.finding(
                    "dose", "infusion_rate", rules.rate_severity,
                    f"{num(volume)} mL over {num(minutes)} min runs at {beyond(rate, max_rate)} mL/h "
                    f"on average, above the labeled maximum of {num(max_rate)} mL/h{which}",
                    {**evidence, "rate_ml_per_h": beyond(rate, max_rate),
                     "max_rate_ml_per_h": num(max_rate)}, rules.reference))
    return findings


def _premedication(ctx: OrderContext, case: _Case) -> Finding:
    """The premedication reminder (only for an order whose route has premedication): the same
    for every order of the case but its evidence, a new one each time."""
    rules = case.premedication
    assert rules is not None
    evidence = {"premedication": list(case.premedication_list), "ordered_route": case.route}
    made = case.premedication_finding
    if made is None:
        made = case.premedication_finding = ctx.finding(
            "dose", "premedication", rules.severity,
            f"Premedicate before every {ctx.monograph.drug} dose, this one too: {rules.listed}",
            evidence, rules.reference)
    return again(made, evidence)


def _first_dose(ctx: OrderContext, case: _Case) -> list[Finding]:
    rules = case.first_dose
    if rules is None:
        return []
    now = ctx.scheduled_for
    for o in ctx.same_drug_orders:
        if o.scheduled_for < now:
            return []  # an earlier active dose
    fold = ctx.same_drug_fold  # older doses, kept as a count: the earliest is first_at
    if fold is not None and fold.first_at < now:
        return []
    regimen = ctx.order.regimen
    placed_in_plan = regimen is not None and regimen.cycle is not None and regimen.day is not None
    if placed_in_plan and (regimen.cycle, regimen.day) != (1, 1):
        return []
    evidence: dict = {"earlier_active_doses": 0}
    if placed_in_plan:
        evidence.update(cycle=regimen.cycle, day=regimen.day)
    return [ctx.finding(
        "dose", "first_dose_premedication", rules.severity,
        f"First {ctx.monograph.drug} dose for this patient: premedicate with "
        f"{rules.listed}, and watch for infusion reactions", evidence, rules.reference)]
