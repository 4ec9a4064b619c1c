"""Dose forms and product sections that no shipped monograph uses yet (issue 13, part 1): a
per-m2 dose and a product's own infusion window, exercised through a real Processor on a copy
of the built-in knowledge edited the way a pharmacist would edit it.

Oracle: the edited numbers. The example patient is 70 kg and 165 cm: Mosteller
sqrt(165 * 70 / 3600) = 1.7912 m2, so 375 mg/m2 is 671.7 mg.
"""
from __future__ import annotations

import json
import shutil

import pytest

from rxgate.contract import FileSource
from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.processor import DictHistoryStore, Processor

from .conftest import DROP, NOW, assert_finding, assert_no, order_event, rule_ids
from .dara import dara, sc

BSA = 1.79118


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    kdir = tmp_path_factory.mktemp("knowledge") / "k"
    shutil.copytree(BUILTIN_DIR, kdir)
    _edit(kdir / "drugs" / "isatuximab.toml", "labeled_mg_per_kg = 10", "labeled_mg_per_m2 = 375")
    _edit(kdir / "drugs" / "daratumumab.toml", 'routes = ["SC"]\n\n[products.dose]',
          'routes = ["SC"]\n\n[products.infusion]\nreference = "edited: inject over 3-5 minutes"\n'
          'routes = ["SC"]\nmin_minutes = 3\nshort_severity = "warning"\nmax_minutes = 5\n'
          'long_severity = "info"\n\n[products.dose]')
    _edit(kdir / "drugs" / "daratumumab.toml", 'name = "Darzalex Faspro"\n',
          'name = "Darzalex Faspro"\ncodes = [{ system = "local", value = "DARA-SC-1800" }]\n')
    return load_knowledge(kdir)


def decide(knowledge, event):
    handled = Processor(knowledge, DictHistoryStore()).handle(
        json.dumps(event).encode(), FileSource(file="t", line=1), NOW)
    [decision] = handled.outputs
    return decision


PER_M2, PER_M2_LOW = "isatuximab.dose.per_m2", "isatuximab.dose.per_m2_low"


@pytest.mark.parametrize("value,unit", [(375, "mg/m2"), (412.5, "mg/m2"), (337.5, "mg/m2"),
                                        (671.7, "mg"), (0.6717, "g"), (9.6, "mg/kg")])
def test_per_m2_within_ten_percent(edited, value, unit):
    d = decide(edited, order_event(dose=(value, unit)))
    assert PER_M2 not in rule_ids(d) and PER_M2_LOW not in rule_ids(d), d.findings
    assert "isatuximab.dose.per_kg" not in rule_ids(d)


@pytest.mark.parametrize("value,unit,per_m2", [(412.6, "mg/m2", 412.6), (740, "mg", 740 / BSA),
                                               (11, "mg/kg", 770 / BSA)])
def test_per_m2_more_than_ten_percent_above_is_major(edited, value, unit, per_m2):
    d = decide(edited, order_event(dose=(value, unit)))
    f = assert_finding(d, PER_M2, category="dose", severity="major",
                       evidence={"labeled_mg_per_m2": 375, "mg_per_m2": per_m2, "bsa_m2": 1.791},
                       message=["375 mg/m2"])
    assert f.evidence["deviation_percent"] > 10


@pytest.mark.parametrize("value,unit", [(337.4, "mg/m2"), (600, "mg")])
def test_per_m2_more_than_ten_percent_below_is_warning(edited, value, unit):
    d = decide(edited, order_event(dose=(value, unit)))
    assert_finding(d, PER_M2_LOW, category="dose", severity="warning", evidence={"labeled_mg_per_m2": 375})


@pytest.mark.parametrize("drop", ["height_cm", "weight_kg"])
def test_per_m2_needs_height_and_weight_even_for_a_dose_in_mg(edited, drop):
    d = decide(edited, order_event(dose=(700, "mg"), patient={drop: DROP}))
    rule = "isatuximab.data.height_missing" if drop == "height_cm" else "isatuximab.data.weight_missing"
    assert_finding(d, rule, category="data", severity="warning")
    assert PER_M2 not in rule_ids(d) and PER_M2_LOW not in rule_ids(d)


@pytest.mark.parametrize("minutes,rule,severity", [(3, None, None), (5, None, None),
                                                   (2.9, "daratumumab.dose.infusion_too_fast", "warning"),
                                                   (5.1, "daratumumab.dose.infusion_too_slow", "info")])
def test_a_products_own_infusion_window(edited, minutes, rule, severity):
    d = decide(edited, sc(infusion={"duration_min": minutes}))
    for r in ("daratumumab.dose.infusion_too_fast", "daratumumab.dose.infusion_too_slow"):
        if r != rule:
            assert_no(d, r)
    if rule:
        assert_finding(d, rule, category="dose", severity=severity, evidence={"min_minutes": 3, "max_minutes": 5})


def test_a_products_own_window_asks_for_the_duration(edited):
    d = decide(edited, sc())
    assert_finding(d, "daratumumab.data.infusion_duration_missing", category="data", severity="warning",
                   evidence={"min_minutes": 3, "max_minutes": 5})
    # the IV product keeps the drug's windows
    d = decide(edited, order_event(drug="daratumumab", dose=(16, "mg/kg"), infusion={"volume_ml": 1000, "duration_min": 420},
                                   regimen={"name": "DRd", "cycle": 1, "day": 1}))
    assert "daratumumab.dose.infusion_too_fast" not in rule_ids(d)


@pytest.mark.parametrize("route,flagged", [("SC", False), ("IV", True)])
def test_a_product_code_names_the_product(edited, route, flagged):
    drug = {"name": "dara (pharmacy item)", "code": {"system": "LOCAL", "value": "dara-sc-1800"}}
    d = decide(edited, dara(drug=drug, route=route, dose=(1800, "mg"), infusion={"duration_min": 4}))
    assert d.drug == "daratumumab"
    assert ("daratumumab.dose.route" in rule_ids(d)) == flagged
    if flagged:
        assert_finding(d, "daratumumab.dose.route", category="dose", severity="major",
                       evidence={"labeled_routes": ["SC"]}, message=["Darzalex Faspro is given SC only"])
    # matched to the SC product: its flat dose, whatever the route
    assert "daratumumab.dose.flat" not in rule_ids(d) and "daratumumab.dose.per_kg" not in rule_ids(d)
