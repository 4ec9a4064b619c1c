"""contraindication's fast paths agree with its rules' exact arithmetic.

check() keeps, per patient's facts as written (age on the scheduled day, sex, pregnancy,
lactation, allergies, conditions), what every rule but the lab limits says (copies of its
findings go out; test_contraindication_combination_exact_paths.py checks them), and then runs
only the lab limits. contraindication._labs first asks _quiet whether the [[lab_limits]]
rows would say nothing (a pass over the results as written, each value compared with the open
interval clear of every bound of its lab), and only builds the rows' findings when it cannot
say so. _quiet may decline (the rows then decide, and may say nothing); it must never say
"nothing" where a row would speak. These properties check that, with values at binary-noise
distance from the limits (a value written in another unit, times its factor, lands a few ulps
off the limit), results at the edge of their age limit, several results of one lab, unknown
units and codes, and patients whose facts differ in one place from a silent patient's.
"""
from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from rxgate.contract import parse_order_event
from rxgate.rules import OrderContext
from rxgate.rules import contraindication as C

from .conftest import DROP, DRUG, KNOWLEDGE, iso, order_event, parse_time

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MONO = KNOWLEDGE.monographs[DRUG]
TABLES = KNOWLEDGE.per_monograph("contraindication", MONO, C._Tables)
LIMITS = [(row.code, b) for row in TABLES.labs for b in (row.below, row.upper) if b is not None]

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@st.composite
def near(draw, bound: float) -> float:
    """A value at `bound` or a few ulps from it, a relative 1e-13 .. 1e-4 from it, just either
    side of the end of the values clear of it (_clear), or any float."""
    how = draw(st.sampled_from(["ulps", "relative", "clear", "anywhere"]))
    if how == "ulps":
        x = bound
        for _ in range(draw(st.integers(0, 4))):
            x = math.nextafter(x, draw(st.sampled_from([math.inf, -math.inf])))
        return x
    if how == "relative":
        return bound * (1 + draw(st.sampled_from([1, -1])) * 10.0 ** draw(st.integers(-13, -4)))
    if how == "clear":
        side = draw(st.sampled_from([1, -1]))
        x = C._clear(bound, side) if math.isfinite(bound) else bound
        return math.nextafter(x, draw(st.sampled_from([math.inf, -math.inf])))
    return draw(st.floats(allow_nan=True))


@st.composite
def bound_and_value(draw) -> tuple[float, float]:
    bound = draw(st.one_of(finite, st.sampled_from([0.0, -0.0, 5e-324, 1.8, 15.0, 120.0, 1e308])))
    return bound, draw(near(bound))


@SETTINGS
@given(bv=bound_and_value())
@example(bv=(1.8, 1.7999999999999998))
@example(bv=(1.8, 1.8000000000000003))
@example(bv=(0.0, 5e-324))
@example(bv=(0.0, -5e-324))
def test_a_value_past_the_clear_end_of_a_bound_is_within_it_by_the_exact_check(bv):
    bound, raw = bv
    if raw > C._clear(bound, 1):
        assert not C._is_below(raw, bound)
        assert C._within(raw, [(bound, None)])
    if raw < C._clear(bound, -1):
        assert not C._is_above(raw, bound)
        assert C._within(raw, [(None, bound)])


@SETTINGS
@given(data=st.data())
def test_a_value_clear_of_a_lab_groups_bounds_is_within_them(data):
    group = data.draw(st.sampled_from(TABLES.lab_groups))
    bound = data.draw(st.sampled_from([b for pair in group.bounds for b in pair if b is not None]))
    raw = data.draw(near(bound))
    if group.floor < raw < group.ceiling:
        assert C._within(raw, group.bounds)


# --- _labs as a whole: the quiet pass never hides what the rows say ----------------------------

SCHEDULED = "2026-03-02T09:00:00Z"
UNITS = {code: sorted(KNOWLEDGE.lab_units.get(code, {})) for code, _ in LIMITS}
WRITTEN = {code: sorted(w for w, c in KNOWLEDGE.lab_codes.items() if c == code) for code, _ in LIMITS}


@st.composite
def results(draw) -> dict:
    code, bound = draw(st.sampled_from(LIMITS))
    written = draw(st.sampled_from([code, code.lower(), f" {code} ", *WRITTEN[code], "XYZ"]))
    unit = draw(st.sampled_from([*UNITS[code], "furlongs"] if UNITS[code] else ["furlongs"]))
    factor = KNOWLEDGE.lab_factor(code, unit) or 1.0
    value = draw(st.one_of(
        near(bound).map(lambda x: x / factor),  # at the limit in another unit
        st.sampled_from([round(bound / factor, 3), round(bound / factor, 6)]),
        st.floats(min_value=-1e4, max_value=1e4),
    ))
    if not (math.isfinite(value) and -1e15 <= value <= 1e15):  # the contract's range
        value = bound / factor
    age_days = draw(st.one_of(
        st.tuples(st.sampled_from([7, 28, 7 + 1e-6, 28 - 1e-6]),  # at the age limits
                  st.sampled_from([-1e-9, 0.0, 1e-9])).map(sum),
        st.floats(min_value=-3, max_value=40),
    ))
    taken = parse_time(SCHEDULED) - dt.timedelta(days=age_days)
    return {"code": written, "value": value, "unit": unit, "taken_at": iso(taken)}


def context(labs: list[dict]) -> OrderContext:
    event = parse_order_event(json.dumps(order_event(scheduled_for=SCHEDULED, labs=labs)))
    return OrderContext.of(event, MONO, KNOWLEDGE, [])


def dumped(findings) -> list[dict]:
    return [f.model_dump() for f in findings]


USUAL = [  # fresh and within every limit: the quiet pass takes these
    {"code": "ANC", "value": 1.8, "unit": "10^9/L", "taken_at": "2026-03-01T07:00:00Z"},
    {"code": "PLT", "value": 142, "unit": "10^9/L", "taken_at": "2026-03-01T07:00:00Z"},
    {"code": "HGB", "value": 10.9, "unit": "g/dL", "taken_at": "2026-03-01T07:00:00Z"},
    {"code": "TBILI", "value": 0.6, "unit": "mg/dL", "taken_at": "2026-03-01T07:00:00Z"},
]


@SETTINGS
@given(usual=st.lists(st.sampled_from(USUAL), unique_by=lambda x: x["code"]),
       labs=st.lists(results(), max_size=6), data=st.data())
def test_labs_says_what_the_rows_say_of_the_latest_results(usual, labs, data):
    labs = data.draw(st.permutations([*usual, *labs]))
    ctx = context(labs)
    exact = C._lab_findings(ctx, TABLES, C._latest(ctx, TABLES))
    if C._quiet(ctx, TABLES):
        assert exact == []
    assert dumped(C._labs(ctx, TABLES)) == dumped(exact)


def boundary_cases() -> list[tuple[str, float, str, dt.timedelta]]:
    """(lab, value, unit, age) at each limit: the value at the bound, a few ulps and a relative
    1e-9 either side of it, either side of the end of the values clear of it, in every unit;
    and a fresh, clear value at each age limit and a microsecond either side of it."""
    cases = []
    for code, bound in LIMITS:
        for unit in UNITS[code]:
            factor = KNOWLEDGE.lab_factor(code, unit)
            values = {bound, bound * (1 + 1e-9), bound * (1 - 1e-9), C._clear(bound, 1),
                      C._clear(bound, -1)}
            for x in list(values):
                values |= {math.nextafter(x, math.inf), math.nextafter(x, -math.inf)}
            cases += [(code, x / factor, unit, dt.timedelta(days=1)) for x in sorted(values)]
    for group in TABLES.lab_groups:
        if group.max_age_days is None:
            continue
        usual = next((x for x in USUAL if x["code"] == group.code), None)
        if usual is None:
            continue
        limit = dt.timedelta(days=group.max_age_days)
        for age in (limit - dt.timedelta(microseconds=1), limit, limit + dt.timedelta(microseconds=1)):
            cases.append((group.code, usual["value"], usual["unit"], age))
    return cases


@pytest.mark.parametrize("code,value,unit,age", boundary_cases())
def test_labs_at_each_limit_say_what_the_rows_say(code, value, unit, age):
    taken = iso(parse_time(SCHEDULED) - age)
    labs = [*(x for x in USUAL if x["code"] != code),
            {"code": code, "value": value, "unit": unit, "taken_at": taken}]
    ctx = context(labs)
    exact = C._lab_findings(ctx, TABLES, C._latest(ctx, TABLES))
    assert dumped(C._labs(ctx, TABLES)) == dumped(exact)


def test_the_quiet_pass_takes_a_usual_patients_labs():
    ctx = context(USUAL)
    assert C._quiet(ctx, TABLES)
    assert C._labs(ctx, TABLES) == []


# --- check(): the facts memo never silences a rule ----------------------------------------------

SEXES = ["male", "female", "F", " M ", "unknown", None]
ALLERGIES = [None, [], ["isatuximab"], ["penicillin"], ["Sarclisa: severe infusion reaction"],
             ["penicillin", "isatuximab-irfc grade 3 infusion reaction"]]
CONDITIONS = [None, [], ["multiple myeloma"], ["multiple myeloma", "sepsis"],
              ["history of sepsis", "RRMM"], ["MGUS"], ["isatuximab infusion reaction, severe"]]


@st.composite
def patients(draw) -> dict:
    """A patient of whom no rule but the lab limits says anything (a man of 39 with myeloma, no
    allergies), with up to three facts changed."""
    scheduled = parse_time(SCHEDULED)
    # around the birthdays the monograph's ages turn on (adult at 18, childbearing 12 to 55)
    years = draw(st.sampled_from([11, 12, 17, 18, 40, 55, 56]))
    days = draw(st.sampled_from([-1, 0, 1]))
    birth = (scheduled.date().replace(year=scheduled.year - years) + dt.timedelta(days=days))
    usual = {"birth_date": "1986-05-01", "sex": "male", "pregnant": False, "lactating": False,
             "allergies": [], "conditions": ["multiple myeloma"]}
    other = {"birth_date": st.sampled_from([birth.isoformat(), None]),
             "sex": st.sampled_from(SEXES),
             "pregnant": st.sampled_from([True, None]),
             "lactating": st.sampled_from([True, None]),
             "allergies": st.sampled_from(ALLERGIES),
             "conditions": st.sampled_from(CONDITIONS)}
    for field in draw(st.lists(st.sampled_from(sorted(other)), max_size=3, unique=True)):
        usual[field] = draw(other[field])
    return {k: (DROP if v is None else v) for k, v in usual.items()}


def each_rule(ctx: OrderContext) -> list:
    """check() without its memo: every rule in its order."""
    birth = ctx.patient.birth_date
    age = C.age_on(birth, ctx.scheduled_for.date()) if birth else None
    return [*C._age(ctx, age), *C._pregnancy(ctx, age), *C._contraception(ctx, age),
            *C._lactation(ctx, age), *C._allergy(ctx, TABLES), *C._labs(ctx, TABLES),
            *C._conditions(ctx, TABLES)]


@SETTINGS
@given(seen=st.lists(patients(), min_size=1, max_size=6), data=st.data())
def test_check_says_what_each_rule_says_after_any_patients(seen, data):
    for p in [*seen, *data.draw(st.permutations(seen))]:  # each again: a memo's answer
        event = parse_order_event(json.dumps(order_event(scheduled_for=SCHEDULED, patient=p)))
        ctx = OrderContext.of(event, MONO, KNOWLEDGE, [])
        assert dumped(C.check(ctx)) == dumped(each_rule(ctx))
