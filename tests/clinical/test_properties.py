"""Property tests (hypothesis) over the clinical rules."""
from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from .conftest import (
    DROP, KNOWLEDGE, NOW, Pharmacy, decide_one, findings_in, lab, order_event, rule_ids,
)
from rxgate.contract import parse_order_event, severity_rank
from rxgate.decide import decide

AMOUNT = {"isatuximab.dose.per_kg", "isatuximab.dose.per_kg_low"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

weights = st.floats(min_value=30, max_value=180, allow_nan=False).map(lambda w: round(w, 1))
heights = st.floats(min_value=120, max_value=210, allow_nan=False).map(lambda h: round(h, 1))
MASS = {"mg": 1.0, "g": 1000.0, "mcg": 0.001}


def decide_fast(event: dict):
    return decide(parse_order_event(json.dumps(event)), [], KNOWLEDGE, decided_at=NOW)


def amount_rules(d) -> set[str]:
    return {f.rule_id for f in d.findings} & AMOUNT


@SETTINGS
@given(weight=weights, factor=st.floats(min_value=0.9, max_value=1.1), unit=st.sampled_from(list(MASS)))
def test_any_mass_dose_within_ten_percent_of_10_mg_per_kg_has_no_dose_finding(weight, factor, unit):
    mg = 10 * weight * factor
    value = mg / MASS[unit]
    # exclude values whose float rounding pushes them past the boundary by more than 1e-9 %
    assume(0.9 - 1e-9 <= value * MASS[unit] / weight / 10 <= 1.1 + 1e-9)
    d = decide_fast(order_event(dose=(value, unit), patient={"weight_kg": weight}))
    assert amount_rules(d) == set(), [f.message for f in d.findings]


@SETTINGS
@given(weight=weights, factor=st.floats(min_value=0.9, max_value=1.1))
def test_any_mg_per_kg_dose_within_ten_percent_has_no_dose_finding(weight, factor):
    d = decide_fast(order_event(dose=(10 * factor, "mg/kg"), patient={"weight_kg": weight}))
    assert amount_rules(d) == set()


@SETTINGS
@given(weight=weights, height=heights, factor=st.floats(min_value=0.9, max_value=1.1))
def test_any_mg_per_m2_dose_within_ten_percent_has_no_dose_finding(weight, height, factor):
    bsa = math.sqrt(height * weight / 3600)
    value = 10 * weight * factor / bsa
    d = decide_fast(order_event(dose=(value, "mg/m2"), patient={"weight_kg": weight, "height_cm": height}))
    assert amount_rules(d) == set()


@SETTINGS
@given(weight=weights, factor=st.floats(min_value=1.1002, max_value=5))
def test_any_dose_more_than_ten_percent_above_is_major(weight, factor):
    d = decide_fast(order_event(dose=(10 * weight * factor, "mg"), patient={"weight_kg": weight}))
    [f] = [f for f in d.findings if f.rule_id in AMOUNT]
    assert (f.rule_id, f.severity) == ("isatuximab.dose.per_kg", "major")
    assert f.evidence["mg_per_kg"] == round(10 * factor, 3) or abs(f.evidence["mg_per_kg"] - 10 * factor) < 1e-3
    assert d.outcome == "flagged"


@SETTINGS
@given(weight=weights, factor=st.floats(min_value=0.01, max_value=0.8998))
def test_any_dose_more_than_ten_percent_below_is_warning(weight, factor):
    d = decide_fast(order_event(dose=(10 * weight * factor, "mg"), patient={"weight_kg": weight}))
    [f] = [f for f in d.findings if f.rule_id in AMOUNT]
    assert (f.rule_id, f.severity) == ("isatuximab.dose.per_kg_low", "warning")
    assert d.outcome == "flagged"


@SETTINGS
@given(weight=weights, height=heights, value=st.floats(min_value=50, max_value=1000))
def test_mg_per_m2_evidence_uses_mosteller(weight, height, value):
    d = decide_fast(order_event(dose=(value, "mg/m2"), patient={"weight_kg": weight, "height_cm": height}))
    bsa = math.sqrt(height * weight / 3600)
    expected_mg_per_kg = value * bsa / weight
    found = [f for f in d.findings if f.rule_id in AMOUNT]
    if abs(expected_mg_per_kg - 10) / 10 <= 0.0999:
        assert found == []
    elif abs(expected_mg_per_kg - 10) / 10 > 0.1001:
        [f] = found
        assert abs(f.evidence["bsa_m2"] - bsa) < 0.0006
        assert abs(f.evidence["ordered_mg"] - value * bsa) < 0.01
        assert f.severity == ("major" if expected_mg_per_kg > 10 else "warning")


# --- fail closed: never approved with a data finding -----------------------------------------

optional = st.booleans()


@st.composite
def incomplete_orders(draw) -> dict:
    patient: dict = {}
    order: dict = {}
    for field in ("weight_kg", "height_cm", "pregnant", "sex", "birth_date", "conditions",
                  "lactating", "allergies"):
        if draw(optional):
            patient[field] = DROP
    kw: dict = {}
    kw["dose"] = draw(st.sampled_from([(700, "mg"), (10, "mg/kg"), (390, "mg/m2"), (700, "units"),
                                       (35, "mL"), (0.7, "g"), (10, "units/kg")]))
    kw["route"] = draw(st.sampled_from(["IV", "iv", "intravenous", "SC", "PO", "weird"]))
    if draw(optional):
        kw["duration_min"] = DROP
    kw["labs"] = draw(st.sampled_from([
        DROP, [], [lab("ANC", 1.8)], [lab("PLT", 142)], [lab("ANC", 1.8), lab("PLT", 142)],
        [lab("ANC", 1.8, "mmol/L"), lab("PLT", 142)],
        [lab("ANC", 1.8, taken_at="2026-02-01T00:00:00Z"), lab("PLT", 142)],
        [lab("ANC", 0.5), lab("PLT", 20), lab("HGB", 7)]]))
    kw["meds"] = draw(st.sampled_from([[], ["pomalidomide"], ["daratumumab"], DROP]))
    kw["regimen"] = draw(st.sampled_from([DROP, (1, 1), (1, 8), (2, 3)]))
    kw["drug"] = draw(st.sampled_from(["isatuximab", "isatuximab", "Sarclisa", "unknownumab"]))
    return order_event(patient=patient, order=order, **kw)


@SETTINGS
@given(event=incomplete_orders())
def test_decisions_are_never_approved_with_a_data_finding(event):
    d = decide_fast(event)
    data = findings_in(d, "data")
    for f in data:
        assert severity_rank(f.severity) >= severity_rank("warning"), f
    if data:
        assert d.outcome == "flagged"
    # and the contract's outcome/severity law holds for every decision
    top = max((severity_rank(f.severity) for f in d.findings), default=0)
    assert severity_rank(d.severity) == top
    assert (d.outcome == "flagged") == (top >= severity_rank("warning"))
    ranks = [severity_rank(f.severity) for f in d.findings]
    assert ranks == sorted(ranks, reverse=True)


# --- interval: a plan kept within tolerance never raises an interval finding -----------------

@settings(max_examples=60, deadline=None)
@given(jitter=st.lists(st.floats(min_value=-0.99, max_value=3), min_size=2, max_size=9))
def test_doses_never_more_than_a_day_short_have_no_interval_finding(jitter):
    """Gaps of required-1 < g <= required+3 days (7 x4, then 14) never give an interval finding."""
    required = [7, 7, 7, 7] + [14] * 10
    day = 0.0
    events = [order_event(scheduled_for=day, regimen=DROP, frequency=DROP)]
    for i, j in enumerate(jitter):
        day += required[i] + j
        events.append(order_event(scheduled_for=day, regimen=DROP, frequency=DROP))
    for d in Pharmacy().run(events):
        assert [f.rule_id for f in findings_in(d, "interval")] == [], [f.message for f in d.findings]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=8), short=st.floats(min_value=1.01, max_value=5))
def test_a_dose_more_than_a_day_short_is_always_major(n, short):
    required = [7, 7, 7, 7] + [14] * 10
    days = [0.0]
    for i in range(n - 1):
        days.append(days[-1] + required[i])
    events = [order_event(scheduled_for=x, regimen=DROP, frequency=DROP) for x in days]
    events.append(order_event(scheduled_for=days[-1] + required[n - 1] - short, regimen=DROP, frequency=DROP))
    *_, last = Pharmacy().run(events)
    f = next(f for f in last.findings if f.rule_id == "isatuximab.interval.too_soon_after_previous")
    assert f.severity == "major"
    assert f.evidence["required_gap_days"] == required[n - 1]
    assert f.evidence["previous_dose_number"] == n
