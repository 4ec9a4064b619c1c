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

from rxgate.contract import FileSource
from rxgate.history import DEFAULT_FOLD
from rxgate.knowledge import BUILTIN_DIR, Knowledge, load_knowledge
from rxgate.knowledge.models import (DrugClassTable, LabVocabulary, Manifest, Monograph,
                                     RouteVocabulary)
from rxgate.processor import DictHistoryStore, Processor
from rxgate.rules.catalog import IDENTITY_FIELDS, SECTIONS, rule_ids

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
    if isinstance(value, float) or (isinstance(value, int) and key not in ("from_cycle", "days")
                                    and not key.endswith("_days") and not key.startswith("childbearing")):
        if draw(st.booleans()):
            return value
        lo, hi = sorted((value / 2, value * 2)) if value else (-1.0, 1.0)
        return draw(st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False))
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


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def first_day(mono: Monograph) -> tuple[int, int] | None:
    return (1, mono.schedule.cycles[0].days[0]) if mono.schedule else None


def base(mono: Monograph, k: Knowledge, when: dt.datetime = T0, order_id: str = "O-1") -> dict:
    """An order the monograph's own numbers make clean: the labeled dose, a labeled route,
    an infusion in the middle of its window, every lab at twice its limit, the indication."""
    route = mono.dose.routes[0]
    infusion = None
    if mono.infusion is not None and route in mono.infusion.routes:
        infusion = {"duration_min": (mono.infusion.min_minutes + mono.infusion.max_minutes) / 2}
    labs = [{"code": limit.lab, "value": limit.below * 2 if limit.below > 0 else limit.below + 1,
             "unit": k.labs[limit.lab].unit, "taken_at": iso(when - dt.timedelta(hours=12))}
            for limit in mono.lab_limits]
    day = first_day(mono)
    return {
        "schema": "rx.order/1", "event_id": f"E-{order_id}-{iso(when)}", "event_type": "order.placed",
        "occurred_at": iso(when - dt.timedelta(hours=1)),
        "order": {"order_id": order_id, "drug": {"name": mono.drug},
                  "dose": {"value": mono.dose.labeled_mg_per_kg * WEIGHT, "unit": "mg"},
                  "route": route, "scheduled_for": iso(when),
                  **({"regimen": {"cycle": day[0], "day": day[1]}} if day else {}),
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


def _lab(lab: str, **fields):
    def change(e):
        [x] = [x for x in e["patient"]["labs"] if x["code"] == lab]
        x.update(fields)
    return change


def _drop_lab(lab: str):
    def change(e):
        e["patient"]["labs"] = [x for x in e["patient"]["labs"] if x["code"] != lab]
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
    d = mono.dose
    labeled_mg = d.labeled_mg_per_kg * WEIGHT
    out: dict[str, list[Scenario]] = {}

    def add(category: str, name: str, *events: dict) -> None:
        out.setdefault(mono.rule_id(category, name), []).append(list(events))

    # [dose]
    add("data", "weight_missing", edit(b, w=_set("patient.weight_kg", None)))
    add("data", "height_missing", edit(b, u=_set("order.dose", {"value": 100, "unit": "mg/m2"}),
                                       h=_set("patient.height_cm", None)))
    add("data", "unit_unknown", edit(b, u=_set("order.dose", {"value": 5, "unit": "units"})))
    add("dose", "per_kg", edit(b, v=_set("order.dose.value",
                                         labeled_mg * (1 + d.over_limit_percent / 100) * 1.01)))
    add("dose", "per_kg_low", edit(b, v=_set("order.dose.value",
                                             labeled_mg * (1 - d.under_limit_percent / 100) * 0.99)))
    add("data", "route_unknown", edit(b, r=_set("order.route", "by-teleport")))
    for other in sorted(set(k.routes.values()) - set(d.routes)):
        add("dose", "route", edit(b, r=_set("order.route", other)))
    # [infusion]
    if mono.infusion is not None:
        inf = mono.infusion
        on = edit(b, r=_set("order.route", inf.routes[0]))
        add("data", "infusion_duration_missing", edit(on, i=_set("order.infusion", None)))
        add("dose", "infusion_too_fast", edit(on, i=_set("order.infusion", {"duration_min": inf.min_minutes / 2})))
        add("dose", "infusion_too_slow", edit(on, i=_set("order.infusion", {"duration_min": inf.max_minutes * 1.5})))
    # [first_dose]: the patient's first dose of the drug
    add("dose", "first_dose_premedication", b)
    # [schedule]
    if mono.schedule is not None:
        s = mono.schedule
        add("interval", "duplicate", b, edit(b, o=_set("order.order_id", "O-2"),
                                             e=_set("event_id", "E-dup")))
        plan_days = s.cycles[0].days
        off = next(day for day in range(1, s.cycle_length_days + 1) if day not in plan_days)
        add("interval", "off_plan_day", edit(b, r=_set("order.regimen", {"cycle": 1, "day": off})))
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
    # [[combinations]]
    for combo in mono.combinations:
        for med in class_candidates(k, combo.drug_class, mono):
            add("combination", combo.drug_class, edit(b, m=_set("patient.current_medications", [med])))
    # [pregnancy], [lactation], [allergy]
    if mono.pregnancy is not None:
        p = mono.pregnancy
        add("contraindication", "pregnancy", edit(b, p=_set("patient.pregnant", True)))
        born = T0.date().replace(year=T0.year - p.childbearing_age_from)
        add("data", "pregnancy_unknown", edit(b, p=_set("patient.pregnant", None),
                                              a=_set("patient.birth_date", born.isoformat())))
    if mono.lactation is not None:
        add("contraindication", "lactation", edit(b, l=_set("patient.lactating", True)))
    if mono.allergy is not None:
        for name in mono.names:
            add("contraindication", "allergy", edit(b, a=_set("patient.allergies", [name])))
    # [[lab_limits]]
    for limit in mono.lab_limits:
        key = limit.lab.lower()
        low = limit.below / 2 if limit.below > 0 else limit.below - 1
        add("contraindication", f"{key}_low", edit(b, x=_lab(limit.lab, value=low)))
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
        severities = {f for m in models for f in m.model_fields if f.endswith("severity")}
        assert severities == SECTIONS[name], f"[{name}]: severity fields {sorted(severities)}"


def _flatten(annotation) -> Iterator[Any]:
    args = typing.get_args(annotation)
    if not args:
        yield annotation
    for a in args:
        yield from _flatten(a)


@pytest.mark.parametrize("drug", MONOGRAPHS)
def test_every_rule_id_of_the_monograph_is_produced_by_some_input(drug):
    mono = KNOWLEDGE.monographs[drug]
    expected = rule_ids(mono)
    by_rule = scenarios(mono, KNOWLEDGE)
    without = sorted(set(expected) - set(by_rule))
    assert not without, f"rule ids with no input in SCENARIOS: {without}"
    union: set[str] = set()
    for rule_id, inputs in by_rule.items():
        got = [produced(events, KNOWLEDGE) for events in inputs]
        union |= set().union(*got)
        assert any(rule_id in g for g in got), (
            f"{rule_id} ({expected.get(rule_id)}): none of its {len(inputs)} input(s) produce it; "
            f"they produce {sorted(set().union(*got))}")
    mine = {r for r in union if r.startswith(f"{mono.drug}.")}
    assert set(expected) <= union
    assert mine <= set(expected), f"produced but not in the catalog: {sorted(mine - set(expected))}"

