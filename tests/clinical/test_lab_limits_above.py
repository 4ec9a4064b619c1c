"""Laboratory limits above as well as below, limits as multiples of the upper limit of normal,
and every spelling of a unit (issue 13, part 1).

The isatuximab monograph: total bilirubin above 1.5 x ULN (ULN 1.2 mg/dL in labs.toml, so
1.8 mg/dL) -> `warning` (moderate/severe hepatic impairment, not studied: US label); ALT or AST
above 3 x ULN (ULN 40 U/L, so 120 U/L) -> `info`; creatinine clearance or eGFR below 15 mL/min
(end-stage renal disease) -> `info`. Bilirubin is required, at most 28 days old: the seed asks
to "confirm the patient's ... liver ... function" before use and the service fails closed, so no
result (or a stale one) is a `data` finding. The `info` limits are not required: no result, no
finding (a rule that could not flag the order asks for no absent fact). Units
match without regard to case or spaces, the micro sign, Greek mu and "u" alike, UCUM beside
the conventional spellings (`10*9/L`, `10^9/l`, `cells/µL`, `g/l`).
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from rxgate.contract import FileSource
from rxgate.knowledge import BUILTIN_DIR, KnowledgeError, load_knowledge
from rxgate.processor import DictHistoryStore, Processor

from .conftest import (
    NOW, assert_finding, assert_no, at, decide_one, lab, order_event, rule_ids,
)

C = "isatuximab.contraindication."
BASE = [lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9), lab("TBILI", 0.6)]
MIN = 1 / (24 * 60)


def with_lab(code, value, unit, taken_at=None):
    """The example's fresh labs, with `code`'s result replaced (or added)."""
    others = [x for x in BASE if x["code"] != code]
    return decide_one(order_event(labs=[*others, lab(code, value, unit, taken_at)]))


# --- above a multiple of the upper limit of normal ------------------------------------------

@pytest.mark.parametrize("value,unit,in_mg_dl,flagged", [
    (1.8, "mg/dL", 1.8, False),           # exactly 1.5 x 1.2: not above
    (1.81, "mg/dL", 1.81, True),
    (1.2, "mg/dL", 1.2, False),
    (30.7, "umol/L", 1.795, False),       # SI, just below 1.8 mg/dL
    (31, "µmol/L", 1.813, True),          # micro sign
    (31, "μmol/l", 1.813, True),          # Greek mu, lower-case l
    (18, "mg/L", 1.8, False),
    (18.2, "mg/L", 1.82, True),
])
def test_bilirubin_above_one_and_a_half_times_uln(value, unit, in_mg_dl, flagged):
    d = with_lab("TBILI", value, unit)
    if flagged:
        f = assert_finding(d, C + "tbili_high", category="contraindication", severity="warning",
                           evidence={"value": value, "unit": unit, "value_in_limit_unit": in_mg_dl,
                                     "limit_above": 1.8, "uln_multiple": 1.5, "limit_uln": 1.2,
                                     "limit_unit": "mg/dL"},
                           message=["total bilirubin", "1.5 x ULN", "1.8 mg/dL"])
        assert "US label" in f.reference
        assert d.outcome == "flagged"
    else:
        assert_no(d, C + "tbili_high")


@pytest.mark.parametrize("value,unit,flagged", [
    (1.8 + 1e-13, "mg/dL", False),        # at the limit to 12 significant digits: at it
    (1.8 - 1e-13, "mg/dL", False),
    (1.8000001, "mg/dL", True),           # a hair above, beyond binary noise: above
    (18.000000000001, "mg/L", False),     # the same after a conversion
    (18.000001, "mg/L", True),
    (0.99999999999999, "10^9/L", False),  # ANC below 1: at it, not below
])
def test_a_value_within_binary_noise_of_a_limit_is_at_it(value, unit, flagged):
    code = "ANC" if unit == "10^9/L" else "TBILI"
    d = with_lab(code, value, unit)
    rule = C + ("anc_low" if code == "ANC" else "tbili_high")
    if flagged:
        assert rule in rule_ids(d)
    else:
        assert_no(d, rule)


@pytest.mark.parametrize("code", ["ALT", "AST"])
@pytest.mark.parametrize("value,unit,flagged", [
    (120, "U/L", False), (120.5, "U/L", True), (119, "IU/L", False), (121, "[IU]/L", True),
    (2, "ukat/L", False), (2.1, "µkat/L", True), (2000, "nkat/L", False), (2100, "nkat/L", True),
])
def test_transaminases_above_three_times_uln_are_info(code, value, unit, flagged):
    d = with_lab(code, value, unit)
    rule = C + code.lower() + "_high"
    if flagged:
        f = assert_finding(d, rule, category="contraindication", severity="info",
                           evidence={"limit_above": 120, "uln_multiple": 3, "limit_uln": 40},
                           message=["3 x ULN"])
        assert "general practice" in f.reference
        assert d.outcome == "approved"  # info alone does not flag the example
    else:
        assert_no(d, rule)


@pytest.mark.parametrize("code,value,unit,flagged", [
    ("CRCL", 15, "mL/min", False), ("CRCL", 14.9, "mL/min", True), ("CRCL", 15, "ml/min", False),
    ("CRCL", 0.25, "mL/s", False), ("CRCL", 0.24, "mL/s", True),
    ("EGFR", 15, "mL/min/1.73m2", False), ("EGFR", 14.9, "mL/min/1.73 m2", True),
    ("EGFR", 14, "mL/min/{1.73_m2}", True), ("EGFR", 16, "mL/min/1.73m²", False),
])
def test_renal_function_below_15_is_info(code, value, unit, flagged):
    d = with_lab(code, value, unit)
    rule = C + code.lower() + "_low"
    if flagged:
        assert_finding(d, rule, category="contraindication", severity="info",
                       evidence={"limit_below": 15, "value": value}, message=["is below 15"])
    else:
        assert_no(d, rule)


def test_optional_liver_and_kidney_labs_absent_raise_nothing():
    d = decide_one(order_event())
    assert d.outcome == "approved"
    for rule in rule_ids(d):
        assert not any(k in rule for k in ("tbili", "alt", "ast", "crcl", "egfr")), rule


# --- bilirubin is required before every dose, at most 28 days old ---------------------------

TBILI_MISSING = "isatuximab.data.tbili_missing"
TBILI_STALE = "isatuximab.data.tbili_stale"


@pytest.mark.parametrize("labs", [
    [lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9)],
    [lab("ANC", 1.8), lab("PLT", 142), lab("HGB", 10.9), lab("ALT", 22, "U/L"), lab("AST", 24, "U/L"),
     lab("CRCL", 78, "mL/min")],                  # other liver/kidney results do not stand in for it
], ids=["no-liver-labs", "alt-ast-crcl-but-no-bilirubin"])
def test_bilirubin_absent_is_a_data_finding_that_flags_the_order(labs):
    d = decide_one(order_event(labs=labs))
    f = assert_finding(d, TBILI_MISSING, category="data", severity="warning",
                       evidence={"lab": "TBILI", "max_age_days": 28, "limit_above": 1.8,
                                 "uln_multiple": 1.5, "limit_unit": "mg/dL"},
                       message=["total bilirubin", "28 days", "1.5 x ULN"])
    assert "before use, confirm the patient's liver function" in f.reference
    assert "project choice" in f.reference
    assert d.outcome == "flagged"
    assert [x.rule_id for x in d.findings if x.severity != "info"] == [TBILI_MISSING]


def test_no_labs_at_all_reports_bilirubin_missing_once():
    d = decide_one(order_event(labs=[]))
    assert rule_ids(d).count(TBILI_MISSING) == 1


@pytest.mark.parametrize("age,stale", [
    (1, False), (27.5, False), (28, False),        # exactly 28 days: not older than the limit
    (28 + MIN, True), (29, True), (90, True),
])
def test_bilirubin_older_than_28_days_is_stale(age, stale):
    d = with_lab("TBILI", 0.6, "mg/dL", taken_at=at(-age))
    if not stale:
        assert_no(d, TBILI_STALE)
        assert d.outcome == "approved", [f.rule_id for f in d.findings]
        return
    f = assert_finding(d, TBILI_STALE, category="data", severity="warning",
                       evidence={"lab": "TBILI", "age_days": round(age, 2), "max_age_days": 28},
                       message=["total bilirubin", "28 days"])
    assert f.evidence["age_days"] > 28
    assert d.outcome == "flagged"


def test_a_stale_high_bilirubin_is_both_stale_and_high():
    """Stale does not hide the value: a 40-day-old 3 mg/dL is stale and above 1.5 x ULN."""
    d = with_lab("TBILI", 3, "mg/dL", taken_at=at(-40))
    assert {TBILI_STALE, C + "tbili_high"} <= set(rule_ids(d))


def test_the_latest_bilirubin_decides_freshness():
    labs = [x for x in BASE if x["code"] != "TBILI"]
    old = lab("TBILI", 0.7, taken_at=at(-60))
    new = lab("TBILI", 0.6, taken_at=at(-20))
    for order in ([old, new], [new, old]):
        d = decide_one(order_event(labs=[*labs, *order]))
        assert_no(d, TBILI_STALE)
        assert d.outcome == "approved"


@pytest.mark.parametrize("value,unit", [
    (0.6, "mg/dL"), (0.6, "mg/dl"), (6, "mg/L"), (10, "µmol/L"), (10, "μmol/L"), (10, "umol/l"),
    (10, "UMOL/L"), (30.7, "umol/L"),            # 30.7 µmol/L = 1.795 mg/dL, just under 1.8
])
def test_bilirubin_in_range_in_any_unit_is_approved(value, unit):
    d = with_lab("TBILI", value, unit)
    assert not [r for r in rule_ids(d) if "tbili" in r], rule_ids(d)
    assert d.outcome == "approved"


@pytest.mark.parametrize("value,unit", [(1.81, "mg/dL"), (31, "µmol/L"), (31, "umol/l"), (100, "umol/L")])
def test_bilirubin_above_the_limit_in_any_unit_is_flagged(value, unit):
    d = with_lab("TBILI", value, unit)
    assert_finding(d, C + "tbili_high", category="contraindication", severity="warning")
    assert d.outcome == "flagged"


def test_bilirubin_in_an_unknown_unit_is_a_data_finding():
    d = with_lab("TBILI", 0.6, "mg/mL")
    assert_finding(d, "isatuximab.data.tbili_unit_unknown", category="data", severity="warning",
                   message=["'mg/mL'", "above 1.5 x ULN (1.8 mg/dL)"])
    assert d.outcome == "flagged"


def test_an_unknown_unit_states_the_limit_above():
    d = with_lab("ALT", 3, "mmol/L")
    assert_finding(d, "isatuximab.data.alt_unit_unknown", category="data", severity="warning",
                   message=["'mmol/L'", "above 3 x ULN (120 U/L)"])


# --- unit spellings: UCUM, case, micro, spaces ---------------------------------------------

@pytest.mark.parametrize("value,unit", [
    (0.9, "10^9/L"), (0.9, "10^9/l"), (0.9, "10*9/L"), (0.9, "10*9/l"), (0.9, "x10^9/L"),
    (0.9, "×10^9/L"), (0.9, "x10*9/L"), (0.9, "10E9/L"), (0.9, "G/L"), (0.9, "Gpt/L"),
    (0.9, "/nL"), (0.9, "10^3/uL"), (0.9, "10*3/uL"), (0.9, "10*3/µL"), (0.9, "10^3/μL"),
    (0.9, "K/uL"), (0.9, " 10^9 / L "), (900, "cells/uL"), (900, "cells/µL"),
    (900, "cells/μL"), (900, "Cells/UL"), (900, "{cells}/uL"), (900, "/uL"), (900, "/µL"),
    (900, "cells/mcL"), (900, "/mm3"), (900, "10*6/L"), (9e8, "/L"),
])
def test_every_spelling_of_a_count_converts(value, unit):
    d = decide_one(order_event(labs=[lab("ANC", value, unit), lab("PLT", 142), lab("HGB", 10.9)]))
    assert_finding(d, C + "anc_low", category="contraindication", severity="major",
                   evidence={"value_in_limit_unit": 0.9, "limit_below": 1})


@pytest.mark.parametrize("value,unit,flagged", [
    (79, "g/l", True), (79, "g/L", True), (80, "G/L", False), (7.9, "G/DL", True),
    (8, "g/dl", False), (7.9, "g/100mL", True),
])
def test_haemoglobin_spellings(value, unit, flagged):
    d = decide_one(order_event(labs=[lab("ANC", 1.8), lab("PLT", 142), lab("HGB", value, unit)]))
    (assert_finding(d, C + "hgb_low", category="contraindication", severity="warning")
     if flagged else assert_no(d, C + "hgb_low"))


def test_every_listed_unit_is_understood_in_any_case_and_micro_spelling():
    k = load_knowledge()
    micro = re.compile(r"u(?=L|mol|kat)")
    checked = 0
    for name, lab_def in k.labs.items():
        for unit, factor in lab_def.factors.items():
            variants = {unit, unit.upper(), unit.lower(), f" {unit} ",
                        micro.sub("µ", unit), micro.sub("μ", unit), micro.sub("μ", unit).upper()}
            for variant in variants:
                assert k.lab_factor(name, variant) == factor, (name, unit, variant)
                checked += 1
    assert checked > 300


# --- the knowledge format ------------------------------------------------------------------

@pytest.fixture
def kdir(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, target)
    return target


def _append(path, text):
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _limit(lab_, body):
    return (f'\n[[lab_limits]]\nlab = "{lab_}"\n{body}\nseverity = "warning"\nrequired = false\n'
            f'reference = "test"\n')


@pytest.mark.parametrize("text,message", [
    (_limit("HGB", "above_uln = 2"), "lab_limits.8.above_uln: lab 'HGB' has no `uln`"),
    (_limit("ALT", ""), "lab_limits.8: Value error, a lab limit needs `below`, `above` or `above_uln`"),
    (_limit("ALT", "above = 100\nabove_uln = 2"), "give `above` or `above_uln`, not both"),
    (_limit("ALT", "below = 10\nabove = 5"), "above (5.0) must not be below below (10.0)"),
    (_limit("ALT", "above_uln = 5"), "lab_limits.8.name: rule name 'alt_high' is also that of lab_limits.3"),
    (_limit("ALT", "above_uln = 0"), "lab_limits.8.above_uln: Input should be greater than 0"),
])
def test_a_malformed_lab_limit_is_refused(kdir, text, message):
    _append(kdir / "drugs" / "isatuximab.toml", text)
    with pytest.raises(KnowledgeError) as e:
        load_knowledge(kdir)
    assert "isatuximab.toml" in str(e.value) and message in str(e.value), str(e.value)


def test_two_named_limits_on_one_lab_each_fire_with_one_unit_finding(kdir):
    """ALT above 3 x ULN is info; a second limit `alt_very_high` above 5 x ULN is warning."""
    _append(kdir / "drugs" / "isatuximab.toml",
            _limit("ALT", 'above_uln = 5\nname = "alt_very_high"'))
    processor = Processor(load_knowledge(kdir), DictHistoryStore())

    def decide(value, unit="U/L"):
        e = order_event(labs=[*BASE, lab("ALT", value, unit)])
        [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
        return d

    ids = rule_ids(decide(150))
    assert C + "alt_high" in ids and C + "alt_very_high" not in ids
    d = decide(201)
    assert_finding(d, C + "alt_very_high", category="contraindication", severity="warning",
                   evidence={"limit_above": 200, "uln_multiple": 5})
    assert_finding(d, C + "alt_high", category="contraindication", severity="info")
    d = decide(201, "furlongs")
    assert rule_ids(d).count("isatuximab.data.alt_unit_unknown") == 1


def test_an_absolute_above_limit_and_a_uln_of_the_sites_own(kdir):
    labs_toml = kdir / "labs.toml"
    labs_toml.write_text(labs_toml.read_text().replace("uln = 1.2", "uln = 1.0"))
    _append(kdir / "drugs" / "isatuximab.toml",
            _limit("PLT", 'above = 1000\nname = "thrombocytosis"'))
    processor = Processor(load_knowledge(kdir), DictHistoryStore())

    def decide(labs):
        e = order_event(labs=labs)
        [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
        return d

    d = decide([lab("ANC", 1.8), lab("PLT", 1000.5), lab("HGB", 10.9), lab("TBILI", 1.55, "mg/dL")])
    assert_finding(d, C + "thrombocytosis", category="contraindication", severity="warning",
                   evidence={"limit_above": 1000}, message=["above 1000 10^9/L"])
    assert_finding(d, C + "tbili_high", category="contraindication", severity="warning",
                   evidence={"limit_above": 1.5, "limit_uln": 1.0})
    d = decide([lab("ANC", 1.8), lab("PLT", 1000), lab("HGB", 10.9), lab("TBILI", 1.5, "mg/dL")])
    assert_no(d, C + "thrombocytosis")
    assert_no(d, C + "tbili_high")


def test_a_limit_on_both_sides_names_each_side(kdir):
    _append(kdir / "drugs" / "isatuximab.toml",
            _limit("WBC", 'below = 2\nabove = 50\nname = "wbc_range"'))
    processor = Processor(load_knowledge(kdir), DictHistoryStore())

    def decide(value):
        e = order_event(labs=[*BASE, lab("WBC", value, "10^9/L")])
        [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
        return d

    for value, rule in ((1.9, "wbc_range_low"), (50.1, "wbc_range_high")):
        d = decide(value)
        assert_finding(d, C + rule, category="contraindication", severity="warning",
                       evidence={"limit_below": 2, "limit_above": 50})
    for value in (2, 50):
        assert not [r for r in rule_ids(decide(value)) if "wbc" in r]
