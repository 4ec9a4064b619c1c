"""Products (issue 13, part 1): one drug, several products; an order is matched to its product
by name, code and route, and "no monograph" is only for an order that matches no drug at all.

Oracle: the monographs (isatuximab: one IV product, Sarclisa, alias isatuximab-irfc;
daratumumab: Darzalex IV 16 mg/kg and Darzalex Faspro SC 1,800 mg flat) and issue 13: "an order
matching a drug but no product of it by route must be flagged, not silently pass".
"""
from __future__ import annotations

import pytest

from .conftest import (
    DROP, assert_finding, assert_no, decide_one, findings_in, order_event, rule_ids,
)
from .dara import FLAT, FLAT_LOW, PER_KG, PER_KG_LOW, PRODUCT_UNKNOWN, ROUTE, dara, sc

NO_MONOGRAPH = "rxgate.data.no_monograph"
ISA_ROUTE = "isatuximab.dose.route"


def amount_rules(decision):
    return [f.rule_id for f in decision.findings if ".dose.per_" in f.rule_id or ".dose.flat" in f.rule_id]


# --- isatuximab: its product's names, codes and route -----------------------------------------

@pytest.mark.parametrize("drug", ["isatuximab", "Sarclisa", "SARCLISA", "xacoyi", "isatuximab-irfc",
                                  "Isatuximab-IRFC", " isatuximab-irfc ",
                                  {"name": "isa", "code": {"system": "rxnorm", "value": "2283218"}},
                                  {"name": "isa", "code": {"system": "atc", "value": "L01FC02"}}])
def test_every_isatuximab_name_and_code_finds_the_iv_product(drug):
    d = decide_one(order_event(drug=drug))
    assert d.drug == "isatuximab"
    assert NO_MONOGRAPH not in rule_ids(d)
    assert_no(d, ISA_ROUTE)
    assert amount_rules(d) == []


@pytest.mark.parametrize("drug", ["isatuximab", "Sarclisa", "isatuximab-irfc"])
@pytest.mark.parametrize("route", ["SC", "subcutaneous", "PO", "IM"])
def test_an_isatuximab_order_by_a_route_of_no_product_is_flagged(drug, route):
    d = decide_one(order_event(drug=drug, route=route, infusion=DROP))
    f = assert_finding(d, ISA_ROUTE, category="dose", severity="major",
                       evidence={"labeled_routes": ["IV"]})
    assert "IV" in f.message
    assert NO_MONOGRAPH not in rule_ids(d)


@pytest.mark.parametrize("drug", ["isatuximab-irfcx", "isatux", "irfc", "sarclisa sc"])
def test_a_name_that_is_no_product_of_any_drug_has_no_monograph(drug):
    d = decide_one(order_event(drug=drug))
    assert_finding(d, NO_MONOGRAPH, category="data", severity="warning", evidence={"drug": drug})


# --- daratumumab: two products, told apart by name and route ----------------------------------

GENERIC = ["daratumumab", "Daratumumab", {"name": "dara", "code": {"system": "ATC", "value": "l01fc01"}}]


@pytest.mark.parametrize("drug", GENERIC + ["Darzalex", "daratumumab iv"])
def test_iv_orders_match_the_iv_product_per_kg(drug):
    d = decide_one(dara(drug=drug, dose=(1120, "mg")))
    assert d.drug == "daratumumab"
    assert amount_rules(d) == [] and ROUTE not in rule_ids(d)
    d = decide_one(dara(drug=drug, dose=(1800, "mg")))  # the SC amount given IV: 25.7 mg/kg
    assert_finding(d, PER_KG, category="dose", severity="major",
                   evidence={"labeled_mg_per_kg": 16, "ordered_mg": 1800})


@pytest.mark.parametrize("drug", GENERIC + ["Darzalex Faspro", "darzalex faspro",
                                            "daratumumab and hyaluronidase",
                                            "daratumumab and hyaluronidase-fihj",
                                            "Daratumumab/Hyaluronidase"])
def test_sc_orders_match_the_sc_product_flat(drug):
    d = decide_one(sc(drug=drug))
    assert d.drug == "daratumumab"
    assert amount_rules(d) == [] and ROUTE not in rule_ids(d)
    d = decide_one(sc(drug=drug, dose=(16, "mg/kg")))  # the IV dose given SC: 1,120 mg flat
    assert_finding(d, FLAT_LOW, category="dose", severity="warning",
                   evidence={"labeled_mg": 1800, "ordered_mg": 1120})


@pytest.mark.parametrize("drug,route,labeled,product", [
    ("Darzalex Faspro", "IV", ["SC"], "Darzalex Faspro"),
    ("daratumumab and hyaluronidase-fihj", "intravenous", ["SC"], "Darzalex Faspro"),
    ("Darzalex", "SC", ["IV"], "Darzalex"),
    ("daratumumab iv", "subcut", ["IV"], "Darzalex"),
])
def test_a_named_product_by_another_products_route_is_flagged(drug, route, labeled, product):
    d = decide_one(dara(drug=drug, route=route, dose=(1800, "mg") if labeled == ["SC"] else (1120, "mg")))
    f = assert_finding(d, ROUTE, category="dose", severity="major",
                       evidence={"labeled_routes": labeled})
    assert f"{product} is given {labeled[0]} only" in f.message
    # the amount is still checked against the named product
    assert amount_rules(d) == []


@pytest.mark.parametrize("route", ["IM", "PO", "intrathecal"])
def test_a_generic_order_by_a_route_of_no_product_is_flagged_and_the_amount_unchecked(route):
    d = decide_one(dara(route=route, dose=(1120, "mg")))
    f = assert_finding(d, ROUTE, category="dose", severity="major",
                       evidence={"labeled_routes": ["IV", "SC"]})
    assert "Darzalex IV" in f.message and "Darzalex Faspro SC" in f.message
    assert_finding(d, PRODUCT_UNKNOWN, category="data", severity="warning",
                   evidence={"products": ["Darzalex", "Darzalex Faspro"]})
    assert amount_rules(d) == []
    assert d.outcome == "flagged"


def test_an_unknown_route_with_two_products_is_a_data_finding_not_a_guess():
    d = decide_one(dara(route="zz", dose=(1120, "mg")))
    assert "daratumumab.data.route_unknown" in rule_ids(d)
    assert_finding(d, PRODUCT_UNKNOWN, category="data", severity="warning")
    assert amount_rules(d) == []


def test_an_unknown_route_of_a_named_product_still_checks_its_amount():
    d = decide_one(dara(drug="Darzalex Faspro", route="zz", dose=(2000, "mg")))
    assert "daratumumab.data.route_unknown" in rule_ids(d)
    assert PRODUCT_UNKNOWN not in rule_ids(d)
    assert_finding(d, FLAT, category="dose", severity="major", evidence={"labeled_mg": 1800})


def test_an_unknown_route_with_one_product_checks_as_before():
    d = decide_one(order_event(route="zz", dose=(1400, "mg")))
    assert "isatuximab.data.route_unknown" in rule_ids(d)
    assert_finding(d, "isatuximab.dose.per_kg", category="dose", severity="major")


def test_products_do_not_make_isatuximab_and_daratumumab_one_drug():
    d = decide_one(order_event(drug="Darzalex Faspro", dose=(1800, "mg"), route="SC", infusion=DROP))
    assert d.drug == "daratumumab"
    assert not [f for f in d.findings if f.rule_id.startswith("isatuximab.")]
    assert findings_in(d, "dose") == [] or all(f.rule_id.startswith("daratumumab.") for f in d.findings)
