"""Properties of the knowledge as data (issue 13, part 4).

1. Knowledge files round-trip: TOML -> models -> TOML (tomli_w) -> models gives equal models,
   for the shipped files and for monographs whose numbers and texts hypothesis varies.
2. Every rule id a monograph can emit is produced by some input. The rule ids are read off the
   loaded knowledge by `rxgate.rules.catalog.rule_ids` (its docstring is the table of how each
   is enumerated); the inputs are built from the monograph's own numbers by `SCENARIOS` below,
   one generator per rule name. A monograph section, a `*severity` field or a rule id that the
   catalog or `SCENARIOS` does not cover fails here until someone adds it: that is the point.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import math
import tomllib
import typing
from typing import Any, Callable, Iterator

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from pydantic import BaseModel, ValidationError

from rxgate.contract import FileSource, Infusion, Lab, Patient
from rxgate.history import DEFAULT_FOLD
from rxgate.knowledge import BUILTIN_DIR, Knowledge, lab_limit_names, load_knowledge
from rxgate.knowledge.models import (MAX_WEIGHT_KG, MIN_WEIGHT_KG, DoseRules,
                                     DrugClassTable, InfusionRules, InfusionWindow,
                                     LabDefinition, LabLimit, LabVocabulary, Manifest, Monograph,
                                     Product, RouteVocabulary, slug)
from rxgate.plan import Plan
from rxgate.processor import DictHistoryStore, Processor
from rxgate.rules.catalog import IDENTITY_FIELDS, SECTIONS, infusion_rules_in_use, rule_ids

FILES: dict[str, type[BaseModel]] = {"knowledge.toml": Manifest, "routes.toml": RouteVocabulary,
                                     "labs.toml": LabVocabulary, "drug_classes.toml": DrugClassTable}


def files_of(root) -> list[tuple[str, type[BaseModel]]]:
    return [*FILES.items(), *((f"drugs/{p.name}", Monograph)
                              for p in sorted((root / "drugs").glob("*.toml")))]


def dump(model: BaseModel) -> str:
    """A model as a TOML file: absent (None) values are left out, as a hand-written file does."""
    return tomli_w.dumps(model.model_dump(mode="python", exclude_none=True))


# --- 1. round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("name,model", files_of(BUILTIN_DIR), ids=[n for n, _ in files_of(BUILTIN_DIR)])
def test_each_shipped_file_round_trips(name, model):
    loaded = model.model_validate(tomllib.loads((BUILTIN_DIR / name).read_text(encoding="utf-8")))
    again = model.model_validate(tomllib.loads(dump(loaded)))
    assert again == loaded
    assert dump(again) == dump(loaded)


def test_a_dumped_directory_loads_to_the_same_knowledge(tmp_path):
    target = tmp_path / "dumped"
    (target / "drugs").mkdir(parents=True)
    for name, model in files_of(BUILTIN_DIR):
        loaded = model.model_validate(tomllib.loads((BUILTIN_DIR / name).read_text(encoding="utf-8")))
        (target / name).write_text(dump(loaded), encoding="utf-8")
    assert load_knowledge(target) == load_knowledge(BUILTIN_DIR)


FREE_TEXT = {"reference", "concern", "source", "revision", "description", "label", "premedication",
             "trade_names", "terms", "exact", "excluding", "name"}


def _varied(value: Any, key: str, draw) -> Any:
    """The shipped value, or (drawn) another of its kind: any text for free text, a number
    within a factor of 2 for a float, any key order the dict had."""
    if isinstance(value, dict):
        return {k: _varied(v, k, draw) for k, v in value.items()}
    if isinstance(value, list):
        return [_varied(v, key, draw) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if draw(st.booleans()):
            return value
        lo, hi = sorted((value / 2, value * 2)) if value else (-1.0, 1.0)
        return draw(st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False))
    if isinstance(value, int) and key not in ("from_cycle", "days") and not key.endswith("_days") \
            and not key.startswith("childbearing"):
        if draw(st.booleans()):
            return value
        lo, hi = sorted((value // 2, value * 2)) if value else (-1, 1)
        # an int, or a float where the field takes one (a strict int field refuses a float)
        return draw(st.integers(min_value=lo, max_value=hi)
                    | st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False))
    if isinstance(value, str) and key in FREE_TEXT and draw(st.booleans()):
        return draw(st.text(min_size=1, max_size=30))
    return value


@st.composite
def monographs(draw) -> Monograph:
    path = draw(st.sampled_from(sorted((BUILTIN_DIR / "drugs").glob("*.toml"))))
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    varied = _varied(raw, "", draw)
    try:
        return Monograph.model_validate(varied)
    except ValidationError:
        assume(False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(monographs())
def test_any_valid_monograph_round_trips(mono):
    text = dump(mono)
    again = Monograph.model_validate(tomllib.loads(text))
    assert again == mono
    for a, b in zip(_floats(mono), _floats(again)):
        assert a == b and math.copysign(1, a) == math.copysign(1, b)  # exact, to the bit


def _floats(model: BaseModel) -> Iterator[float]:
    def walk(v):
        if isinstance(v, float):
            yield v
        elif isinstance(v, dict):
            for x in v.values():
                yield from walk(x)
        elif isinstance(v, list):
            for x in v:
                yield from walk(x)
    yield from walk(model.model_dump())


# --- 2. every rule id is produced by some input ------------------------------------------

KNOWLEDGE = load_knowledge(BUILTIN_DIR)
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
WEIGHT, HEIGHT = 70.0, 170.0


def bound(model: type[BaseModel], field: str, kind: str) -> float:
    """A bound the contract puts on a field ('ge' or 'le')."""
    [value] = [getattr(m, kind) for m in model.model_fields[field].metadata if hasattr(m, kind)]
    return value


# the contract's bounds on what an order may say: an input beyond them is refused
MIN_DURATION, MAX_DURATION = bound(Infusion, "duration_min", "ge"), bound(Infusion, "duration_min", "le")
MAX_VOLUME = bound(Infusion, "volume_ml", "le")
MIN_WEIGHT, MAX_WEIGHT = bound(Patient, "weight_kg", "ge"), bound(Patient, "weight_kg", "le")
MAX_LAB = bound(Lab, "value", "le")


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def order_name(mono: Monograph, product: Product) -> str:
    """What an order calls the product: its name, or the drug's for a drug without products."""
    return product.name if mono.products else mono.drug


def amount(rules: DoseRules, scale: float = 1.0) -> dict:
    """The labeled dose (times `scale`) in the unit of the dose form: mg/kg, mg/m2 or mg."""
    return {"value": rules.labeled * scale, "unit": rules.unit}


def dose_place(mono: Monograph, number: int) -> tuple[dict, float]:
    """The regimen (cycle, day) of dose `number` of the default plan, and its day from day 1."""
    assert mono.schedule is not None
    plan = Plan(mono.schedule, mono.split_days)
    slot, cycle, start = number - 1, 1, 0
    while slot >= len(plan.days_of(cycle)):
        slot -= len(plan.days_of(cycle))
        start += plan.length_of(cycle)
        cycle += 1
    day = plan.days_of(cycle)[slot]
    return {"cycle": cycle, "day": day}, start + day - 1


def regimen(mono: Monograph, cycle: int, day: int) -> dict:
    """A regimen of the default plan, named when the monograph's regimens have names."""
    named = mono.schedule is not None and mono.schedule.names
    return {"cycle": cycle, "day": day, **({"name": mono.schedule.names[0]} if named else {})}


def clean_lab_value(limits: list[LabLimit], lab: LabDefinition) -> float:
    """A result within every limit on the lab (in its unit)."""
    lows = [x.below for x in limits if x.below is not None]
    highs = [x.above if x.above is not None else x.above_uln * lab.uln
             for x in limits if x.above is not None or x.above_uln is not None]
    lo, hi = (max(lows) if lows else None), (min(highs) if highs else None)
    if lo is not None and hi is not None:
        return (lo + hi) / 2
    return lo * 2 if lo is not None else hi / 2  # type: ignore[operator]


def infusion_of(rules: InfusionRules | None, route: str, number: int = 1, split: bool = False) -> dict | None:
    """An infusion in the middle of the window of dose `number`, slower than its maximum rate."""
    if rules is None or route not in rules.routes:
        return None
    w = rules.window_for(number, split)
    minutes = (w.min_minutes + w.max_minutes) / 2
    out: dict = {"duration_min": minutes}
    if w.max_rate_ml_per_h is not None:
        out["volume_ml"] = min(w.volume_ml or MAX_VOLUME, w.max_rate_ml_per_h * minutes / 60 / 2)
    elif w.volume_ml is not None:
        out["volume_ml"] = w.volume_ml
    return out


def base(mono: Monograph, k: Knowledge, when: dt.datetime = T0, order_id: str = "O-1") -> dict:
    """An order the monograph's own numbers make clean: the first product by its first route,
    its labeled dose, the first dosing day of the default plan (named, where regimens are),
    an infusion in the middle of its window, every lab within its limits, the indication."""
    product = mono.product_list[0]
    route = mono.routes_of(product)[0]
    infusion = infusion_of(mono.infusion_rules(product), route)
    by_lab: dict[str, list[LabLimit]] = {}
    for limit in mono.lab_limits:
        by_lab.setdefault(limit.lab, []).append(limit)
    labs = [{"code": lab, "value": clean_lab_value(limits, k.labs[lab]), "unit": k.labs[lab].unit,
             "taken_at": iso(when - dt.timedelta(hours=12))} for lab, limits in by_lab.items()]
    return {
        "schema": "rx.order/1", "event_id": f"E-{order_id}-{iso(when)}", "event_type": "order.placed",
        "occurred_at": iso(when - dt.timedelta(hours=1)),
        "order": {"order_id": order_id, "drug": {"name": order_name(mono, product)},
                  "dose": amount(mono.dose_rules(product)),
                  "route": route, "scheduled_for": iso(when),
                  **({"regimen": regimen(mono, 1, mono.schedule.cycles[0].days[0])}
                     if mono.schedule else {}),
                  **({"infusion": infusion} if infusion else {})},
        "patient": {"patient_id": "P-1", "birth_date": "1960-01-01", "sex": "female",
                    "weight_kg": WEIGHT, "height_cm": HEIGHT, "pregnant": False, "lactating": False,
                    "allergies": [], "labs": labs,
                    "conditions": [mono.indication.terms[0]] if mono.indication else [],
                    "current_medications": []},
    }


def edit(event: dict, **changes: Callable[[dict], None]) -> dict:
    e = copy.deepcopy(event)
    for change in changes.values():
        change(e)
    return e


def later(mono: Monograph, k: Knowledge, days: float, order_id: str) -> dict:
    """Another dose, `days` after T0, with no regimen (its place follows the dose before)."""
    e = base(mono, k, T0 + dt.timedelta(days=days), order_id)
    e["order"].pop("regimen", None)
    return e


def _set(path: str, value):
    def change(e):
        *parents, last = path.split(".")
        node = e
        for p in parents:
            node = node[p]
        node[last] = value
    return change


def _drop(path: str):
    def change(e):
        *parents, last = path.split(".")
        node = e
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return change


def _lab(lab: str, **fields):
    def change(e):
        [x] = [x for x in e["patient"]["labs"] if x["code"] == lab]
        x.update(fields)
    return change


def _drop_lab(lab: str):
    def change(e):
        e["patient"]["labs"] = [x for x in e["patient"]["labs"] if x["code"] != lab]
    return change


def _product(mono: Monograph, product: Product, route: str | None = None):
    """The order names `product` (by `route`, else its first), with its labeled dose."""
    def change(e):
        r = route or mono.routes_of(product)[0]
        e["order"]["drug"] = {"name": order_name(mono, product)}
        e["order"]["route"] = r
        e["order"]["dose"] = amount(mono.dose_rules(product))
        e["order"].pop("infusion", None)
        infusion = infusion_of(mono.infusion_rules(product), r)
        if infusion:
            e["order"]["infusion"] = infusion
    return change


def class_candidates(k: Knowledge, drug_class: str, mono: Monograph) -> list[dict]:
    """Current medications that may be of the class: its members and trade names, a made-up
    name with each of its suffixes, a code under each of its ATC prefixes."""
    c = k.classes.classes[drug_class]
    names = [n for m in c.members for n in (m.name, *m.trade_names)]
    names += [f"zyx{s}" for s in c.name_suffixes]
    meds = [{"name": n} for n in names if n.lower() not in mono.names]
    meds += [{"name": "unlisted", "code": {"system": "atc", "value": f"{p}99"}} for p in c.atc_prefixes]
    return meds


Scenario = list[dict]  # one patient's events; the last one's decision is looked at


def scenarios(mono: Monograph, k: Knowledge) -> dict[str, list[Scenario]]:
    """Rule id -> the inputs meant to produce it, each built from the monograph's numbers."""
    b = base(mono, k)
    out: dict[str, list[Scenario]] = {}

    def add(category: str, name: str, *events: dict) -> None:
        out.setdefault(mono.rule_id(category, name), []).append(list(events))

    products = mono.product_list
    # [dose], [[products]]: each product's dose form, over and under (no regimen: not a part
    # of a split first dose), and its split
    add("data", "weight_missing", edit(b, w=_set("patient.weight_kg", None)))
    add("data", "height_missing", edit(b, u=_set("order.dose", {"value": 100, "unit": "mg/m2"}),
                                       h=_set("patient.height_cm", None)))
    add("data", "unit_unknown", edit(b, u=_set("order.dose", {"value": 5, "unit": "units"})))
    add("data", "route_unknown", edit(b, r=_set("order.route", "by-teleport")))
    for product in products:
        d = mono.dose_rules(product)
        on = edit(b, p=_product(mono, product), r=_drop("order.regimen"))
        add("dose", d.form, edit(on, v=_set("order.dose", amount(d, (1 + d.over_limit_percent / 100) * 1.01))))
        add("dose", f"{d.form}_low", edit(on, v=_set("order.dose", amount(d, (1 - d.under_limit_percent / 100) * 0.99))))
        if d.split_first_dose is not None:
            add("dose", "split_first_dose", edit(on, g=_set("order.regimen", regimen(mono, 1, 1)),
                                                 v=_set("order.dose", amount(d, 1 / len(d.split_first_dose.days)))))
        for other in sorted(set(k.routes.values()) - set(mono.routes_of(product))):
            add("dose", "route", edit(b, p=_product(mono, product), r=_set("order.route", other)))
    if len(products) > 1:  # the drug's name and a route that tells no product
        generic = edit(b, n=_set("order.drug", {"name": mono.drug}))
        add("data", "product_unknown", edit(generic, r=_set("order.route", "by-teleport")))
        for other in sorted(set(k.routes.values()) - {r for p in products for r in mono.routes_of(p)}):
            add("data", "product_unknown", edit(generic, r=_set("order.route", other)))
    # [infusion], products' infusions: the window of dose 1, of each later window (placed by
    # the regimen, else after as many earlier doses) and of a part of a split first dose
    for i, rules in infusion_rules_in_use(mono):
        product = products[i]
        route = next((r for r in rules.routes if r in mono.routes_of(product)), rules.routes[0])
        on = edit(b, p=_product(mono, product, route))
        w = rules.window_for(1)
        add("data", "infusion_duration_missing", edit(on, i=_set("order.infusion", {})))
        add("dose", "infusion_too_fast", edit(on, i=_set("order.infusion", {
            "duration_min": max(MIN_DURATION, w.min_minutes / 2)})))
        add("dose", "infusion_too_slow", edit(on, i=_set("order.infusion", {
            "duration_min": min(MAX_DURATION, w.max_minutes * 1.5)})))
        places: list[tuple[Scenario, InfusionWindow]] = []
        for w in rules.windows:
            if mono.schedule is not None:
                place, days = dose_place(mono, w.from_dose)
                e = edit(on, g=_set("order.regimen", regimen(mono, place["cycle"], place["day"])),
                         t=_set("order.scheduled_for", iso(T0 + dt.timedelta(days=days))))
                places.append(([e], w))
            else:
                earlier = [edit(later(mono, k, n, f"O-e{n}"), p=_product(mono, product, route))
                           for n in range(w.from_dose - 1)]
                e = edit(later(mono, k, w.from_dose - 1, "O-w"), p=_product(mono, product, route))
                places.append(([*earlier, e], w))
        d = mono.dose_rules(product)
        if rules.split_window is not None and d.split_first_dose is not None:
            day = d.split_first_dose.days[1]
            e = edit(on, g=_set("order.regimen", regimen(mono, 1, day)),
                     t=_set("order.scheduled_for", iso(T0 + dt.timedelta(days=day - 1))),
                     v=_set("order.dose", amount(d, 1 / len(d.split_first_dose.days))))
            places.append(([e], rules.split_window))
        for events, w in places:
            if w.max_rate_ml_per_h is None:
                continue
            *before, last = events
            minutes = w.min_minutes
            volume = w.max_rate_ml_per_h * minutes / 60 * 1.5
            if volume > MAX_VOLUME:
                volume, minutes = MAX_VOLUME, max(MIN_DURATION, MAX_VOLUME / w.max_rate_ml_per_h * 60 / 1.5)
            add("data", "infusion_volume_missing", *before,
                edit(last, i=_set("order.infusion", {"duration_min": minutes})))
            add("dose", "infusion_rate", *before,
                edit(last, i=_set("order.infusion", {"duration_min": minutes, "volume_ml": volume})))
    # [first_dose]: the patient's first dose of the drug; [premedication]: any dose, a second
    # one where the first gets the first-dose reminder instead, by a route it applies to
    add("dose", "first_dose_premedication", b)
    if mono.premedication is not None:
        route = (mono.premedication.routes or [b["order"]["route"]])[0]
        product = next((p for p in products if route in mono.routes_of(p)), products[0])
        add("dose", "premedication", b, edit(later(mono, k, 30, "O-2"), p=_product(mono, product, route)))
    # [patient]: age, a weight outside the plausible range, a weight changed since the last dose
    if mono.patient is not None:
        pl = mono.patient
        if pl.min_age_years is not None:
            born = T0.date().replace(year=T0.year - (pl.min_age_years - 1))
            add("contraindication", "age_below_minimum", edit(b, a=_set("patient.birth_date", born.isoformat())))
            add("data", "age_unknown", edit(b, a=_set("patient.birth_date", None)))
        per_kg = _set("order.dose", {"value": 1, "unit": "mg/kg"})  # a dose computed on the weight
        if pl.weight_min_kg is not None and pl.weight_max_kg is not None:
            for weight in (min(MAX_WEIGHT, pl.weight_max_kg * 1.5), max(MIN_WEIGHT, pl.weight_min_kg / 2)):
                add("dose", "weight_implausible", edit(b, d=per_kg, w=_set("patient.weight_kg", weight)))
        if pl.weight_change_percent is not None:
            changed = WEIGHT * (1 + pl.weight_change_percent / 100 * 1.5)
            add("dose", "weight_change", edit(b, d=per_kg),
                edit(later(mono, k, 30, "O-2"), d=per_kg, w=_set("patient.weight_kg", changed)))
    # [schedule], [[regimens]]
    if mono.schedule is not None:
        s = mono.schedule
        add("interval", "duplicate", b, edit(b, o=_set("order.order_id", "O-2"),
                                             e=_set("event_id", "E-dup")))
        plan_days = s.cycles[0].days
        off = next(day for day in range(1, s.cycle_length_days + 1)
                   if day not in plan_days and day not in mono.split_days)
        add("interval", "off_plan_day", edit(b, r=_set("order.regimen", regimen(mono, 1, off))))
        soon = max(1.0, (plan_days[1] - plan_days[0] if len(plan_days) > 1 else s.cycle_length_days)
                   - s.tolerance_days - 1)
        add("interval", "too_soon_after_previous", b, later(mono, k, soon, "O-2"))
        add("interval", "too_close_to_next", later(mono, k, soon, "O-2"), b)
        add("interval", "frequency", edit(b, f=_set("order.frequency",
                                                    {"count": 24, "period": 1, "period_unit": "d"})))
        # older doses folded into a count (history.FoldBounds), then a dose before them
        far = DEFAULT_FOLD.lookback.days + 30
        history = [b] + [later(mono, k, far + i * 30, f"O-{i + 2}") for i in range(DEFAULT_FOLD.keep + 1)]
        add("data", "dose_before_kept_history", *history, later(mono, k, -30, "O-late"))
    if mono.regimens:
        add("data", "regimen_unnamed", edit(b, r=_drop("order.regimen.name")))
        add("data", "regimen_unknown", edit(b, r=_set("order.regimen.name", "no such regimen")))
    # [[combinations]]: a current medication of the class; [concurrent]: an order of it that
    # was not renewed for longer than the window
    for combo in mono.combinations:
        for med in class_candidates(k, combo.drug_class, mono):
            add("combination", combo.drug_class, edit(b, m=_set("patient.current_medications", [med])))
    if mono.concurrent is not None:
        stale = T0 - dt.timedelta(days=mono.concurrent.stale_after_days + 1)
        for combo in mono.combinations:
            for med in class_candidates(k, combo.drug_class, mono):
                other = edit(base(mono, k, stale, "O-other"), n=_set("order.drug", med),
                             r=_drop("order.regimen"))
                add("combination", "stale_order", other, b)
    # [pregnancy], [contraception], [lactation], [allergy], [infusion_reaction_history]
    unknown_age = _set("patient.birth_date", None)  # of childbearing potential whatever the ages
    if mono.pregnancy is not None:
        p = mono.pregnancy
        add("contraindication", "pregnancy", edit(b, p=_set("patient.pregnant", True)))
        born = T0.date().replace(year=T0.year - p.childbearing_age_from)
        add("data", "pregnancy_unknown", edit(b, p=_set("patient.pregnant", None),
                                              a=_set("patient.birth_date", born.isoformat())))
        if mono.contraception is not None:
            add("contraindication", "contraception", edit(b, a=_set("patient.birth_date", born.isoformat())))
    if mono.lactation is not None:
        add("contraindication", "lactation", edit(b, l=_set("patient.lactating", True)))
        add("data", "lactation_unknown", edit(b, l=_set("patient.lactating", None), a=unknown_age))
    if mono.allergy is not None:
        for name in mono.names:
            add("contraindication", "allergy", edit(b, a=_set("patient.allergies", [name])))
        add("data", "allergies_missing", edit(b, a=_set("patient.allergies", None)))
    if mono.infusion_reaction_history is not None:
        h = mono.infusion_reaction_history
        for term, severe in zip(h.terms, h.severe):
            add("contraindication", "prior_severe_infusion_reaction", edit(b, c=_set(
                "patient.conditions", [*b["patient"]["conditions"], f"{mono.drug} {term} ({severe})"])))
    # [[lab_limits]]: each side of each limit, in the lab's unit
    for limit in mono.lab_limits:
        lab = k.labs[limit.lab]
        key = slug(limit.lab)
        names = lab_limit_names(limit)
        if "low" in names:
            add("contraindication", names["low"], edit(b, x=_lab(limit.lab, value=limit.below / 2)))
        if "high" in names:
            upper = limit.above if limit.above is not None else limit.above_uln * lab.uln
            add("contraindication", names["high"], edit(b, x=_lab(limit.lab, value=min(MAX_LAB, upper * 2))))
        add("data", f"{key}_unit_unknown", edit(b, x=_lab(limit.lab, unit="furlongs/fortnight")))
        if limit.max_age_days is not None:
            old = T0 - dt.timedelta(days=limit.max_age_days + 1)
            add("data", f"{key}_stale", edit(b, x=_lab(limit.lab, taken_at=iso(old))))
        if limit.required:
            add("data", f"{key}_missing", edit(b, x=_drop_lab(limit.lab)))
    # [infection], [indication]
    if mono.infection is not None:
        for term in [*mono.infection.terms, *mono.infection.exact]:
            add("contraindication", "active_infection",
                edit(b, c=_set("patient.conditions", [*b["patient"]["conditions"], term])))
    if mono.indication is not None:
        add("contraindication", "no_indication", edit(b, c=_set("patient.conditions", ["hypertension"])))
    add("data", "conditions_missing", edit(b, c=_set("patient.conditions", None)))
    return out


def produced(events: Scenario, k: Knowledge) -> set[str]:
    """The rule ids of the last event's decision, the events run through a fresh Processor."""
    processor = Processor(k, DictHistoryStore())
    decision = None
    for n, event in enumerate(events, 1):
        handled = processor.handle(json.dumps(event).encode(), FileSource(file="gen", line=n), T0)
        assert handled.error is None, handled.error
        assert handled.kind == "decision", (handled.kind, handled.outputs)
        decision = handled.outputs[0]
    return {f.rule_id for f in decision.findings}


MONOGRAPHS = sorted(KNOWLEDGE.monographs)


def _severities(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The `*severity` fields of a model and, dotted, of the models inside it."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        if name.endswith("severity"):
            out.add(prefix + name)
        for inner in _flatten(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                out |= _severities(inner, f"{prefix}{name}.")
    return out


def test_the_catalog_covers_every_section_and_severity_of_the_monograph_model():
    """A new monograph section, or a new severity in one (a new finding), needs its rule ids in
    rules/catalog.py and an input in SCENARIOS."""
    sections = set(Monograph.model_fields) - IDENTITY_FIELDS
    assert sections == set(SECTIONS), (
        f"sections the catalog does not know: {sorted(sections - set(SECTIONS))}; "
        f"gone: {sorted(set(SECTIONS) - sections)}")
    for name, info in Monograph.model_fields.items():
        if name in IDENTITY_FIELDS:
            continue
        models = [a for a in _flatten(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        assert models, name
        severities = set().union(*(_severities(m) for m in models))
        assert severities == SECTIONS[name], f"[{name}]: severity fields {sorted(severities)}"


def _flatten(annotation) -> Iterator[Any]:
    args = typing.get_args(annotation)
    if not args:
        yield annotation
    for a in args:
        yield from _flatten(a)


def _every_rule_id_is_produced(mono: Monograph, k: Knowledge) -> None:
    expected = rule_ids(mono)
    by_rule = scenarios(mono, k)
    without = sorted(set(expected) - set(by_rule))
    assert not without, f"rule ids with no input in SCENARIOS: {without}"
    union: set[str] = set()
    for rule_id, inputs in by_rule.items():
        got = [produced(events, k) for events in inputs]
        union |= set().union(*got)
        assert any(rule_id in g for g in got), (
            f"{rule_id} ({expected.get(rule_id)}): none of its {len(inputs)} input(s) produce it; "
            f"they produce {sorted(set().union(*got))}")
    mine = {r for r in union if r.startswith(f"{mono.drug}.")}
    assert set(expected) <= union
    assert mine <= set(expected), f"produced but not in the catalog: {sorted(mine - set(expected))}"


@pytest.mark.parametrize("drug", MONOGRAPHS)
def test_every_rule_id_of_the_monograph_is_produced_by_some_input(drug):
    _every_rule_id_is_produced(KNOWLEDGE.monographs[drug], KNOWLEDGE)


# Optional sections and list entries a monograph may lack that another shipped one has: given
# to it (below), the generator and the catalog must cover them with that monograph's products,
# plan and numbers too.
LISTS_BY_KEY = {"lab_limits": "lab", "combinations": "drug_class"}


def _with_every_section(raw: dict, others: list[dict]) -> dict:
    out = copy.deepcopy(raw)
    for other in others:
        for field, value in other.items():
            if field in IDENTITY_FIELDS or field in ("dose", "products", "schedule", "regimens",
                                                     "infusion"):
                continue  # the monograph's own products, dose and plan
            if field in LISTS_BY_KEY:
                key = LISTS_BY_KEY[field]
                have = {e[key] for e in out.get(field, [])}
                out[field] = [*out.get(field, []), *(copy.deepcopy(e) for e in value if e[key] not in have)]
            elif field not in out:
                out[field] = copy.deepcopy(value)
            elif isinstance(value, dict):  # a key of the section this one leaves out
                out[field] = {**copy.deepcopy(value), **out[field]}
    return out


def _knowledge_with_every_section(tmp_path) -> Knowledge:
    target = tmp_path / "knowledge"
    (target / "drugs").mkdir(parents=True)
    for name, _ in FILES.items():
        (target / name).write_text((BUILTIN_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    raws = {p.name: tomllib.loads(p.read_text(encoding="utf-8"))
            for p in sorted((BUILTIN_DIR / "drugs").glob("*.toml"))}
    for name, raw in raws.items():
        full = _with_every_section(raw, [r for n, r in raws.items() if n != name])
        (target / "drugs" / name).write_text(tomli_w.dumps(full), encoding="utf-8")
    return load_knowledge(target)


@pytest.mark.parametrize("drug", MONOGRAPHS)
def test_every_rule_id_is_produced_when_the_monograph_has_every_section_another_has(drug, tmp_path):
    k = _knowledge_with_every_section(tmp_path)
    mono = k.monographs[drug]
    given = set(Monograph.model_fields) - IDENTITY_FIELDS
    for other in k.monographs.values():
        assert {f for f in given if getattr(other, f)} - {"products", "regimens", "infusion"} <= {
            f for f in given if getattr(mono, f)}, "a section was not carried over"
    _every_rule_id_is_produced(mono, k)


def test_the_knowledge_bounds_that_keep_a_check_able_to_fire_follow_the_contract():
    """A monograph number beyond what an order can say would make its rule dead: the models
    bound them by the contract's limits (an infusion window strictly inside the durations an
    order may give, a weight range that leaves some weight outside it, an upper lab limit a
    result can exceed)."""
    assert (MIN_WEIGHT_KG, MAX_WEIGHT_KG) == (MIN_WEIGHT, MAX_WEIGHT)
    for model in (InfusionRules, InfusionWindow):
        for field in ("min_minutes", "max_minutes"):
            [gt] = [m.gt for m in model.model_fields[field].metadata if hasattr(m, "gt")]
            [lt] = [m.lt for m in model.model_fields[field].metadata if hasattr(m, "lt")]
            assert (gt, lt) == (MIN_DURATION, MAX_DURATION), (model.__name__, field)
    [le] = [m.le for m in LabLimit.model_fields["above"].metadata if hasattr(m, "le")]
    assert le < MAX_LAB
