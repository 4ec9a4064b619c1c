"""Combination rules (issue 3, section 2, `combination`).

"another anti-CD38 antibody (e.g. daratumumab) active or in `current_medications` is `major`
(duplicate therapy); another monoclonal antibody (the class table, and any other name ending in
-mab) is `warning` (cumulative toxicity); an immunomodulator (lenalidomide, pomalidomide,
thalidomide) is `info` (labeled combination; watch blood counts). Names match case-insensitively,
and by code where one is given."
"""
from __future__ import annotations

import pytest

from .conftest import (
    Pharmacy, assert_finding, assert_none_in, decide_one, findings_in, order_event,
)

CD38 = "isatuximab.combination.anti_cd38"
MAB = "isatuximab.combination.monoclonal_antibody"
IMID = "isatuximab.combination.immunomodulator"


def atc(value: str) -> dict:
    return {"system": "atc", "value": value}


# (current medication entry, rule, severity, canonical other drug)
MEDS = [
    ({"name": "daratumumab"}, CD38, "major", "daratumumab"),
    ({"name": "DARATUMUMAB"}, CD38, "major", "daratumumab"),
    ({"name": "Darzalex"}, CD38, "major", "daratumumab"),
    ({"name": "darzalex faspro"}, CD38, "major", "daratumumab"),
    ({"name": "daratumumab and hyaluronidase"}, CD38, "major", "daratumumab"),
    ({"name": "Dara (hospital brand)", "code": atc("L01FC01")}, CD38, "major", "daratumumab"),
    ({"name": "elotuzumab"}, MAB, "warning", "elotuzumab"),
    ({"name": "Empliciti"}, MAB, "warning", "elotuzumab"),
    ({"name": "Teclistamab"}, MAB, "warning", "teclistamab"),
    ({"name": "RITUXIMAB"}, MAB, "warning", "rituximab"),
    ({"name": "Blenrep"}, MAB, "warning", "belantamab mafodotin"),
    ({"name": "pembrolizumab"}, MAB, "warning", "pembrolizumab"),   # any other -mab
    ({"name": "Nivolumab"}, MAB, "warning", "nivolumab"),
    ({"name": "Study drug 7", "code": atc("L01FX08")}, MAB, "warning", "elotuzumab"),
    ({"name": "lenalidomide"}, IMID, "info", "lenalidomide"),
    ({"name": "Pomalidomide"}, IMID, "info", "pomalidomide"),
    ({"name": "THALIDOMIDE"}, IMID, "info", "thalidomide"),
    ({"name": "Revlimid"}, IMID, "info", "lenalidomide"),
    ({"name": "Imnovid"}, IMID, "info", "pomalidomide"),
    ({"name": "Len", "code": atc("L04AX04")}, IMID, "info", "lenalidomide"),
]


@pytest.mark.parametrize("med,rule,severity,other", MEDS, ids=[m[0]["name"] for m in MEDS])
def test_current_medication_combination(med, rule, severity, other):
    d = decide_one(order_event(meds=[med]))
    f = assert_finding(d, rule, category="combination", severity=severity,
                       evidence={"other_drug": other, "found_in": ["current medications"]})
    assert other in f.message
    assert len(findings_in(d, "combination")) == 1, [x.message for x in findings_in(d, "combination")]
    if severity == "info":
        assert d.outcome == "approved"
    else:
        assert d.outcome == "flagged" and d.severity == severity


@pytest.mark.parametrize("med", ["dexamethasone", "bortezomib", "carfilzomib", "acyclovir",
                                 "aspirin", "isatuximab", "Sarclisa"])
def test_no_combination_finding_for_other_drugs_or_itself(med):
    d = decide_one(order_event(meds=[med]))
    assert_none_in(d, "combination")


def test_daratumumab_as_an_active_order_is_major():
    p = Pharmacy()
    dara = p.place(order_event(order_id="ORD-DARA", drug="daratumumab", dose=(1800, "mg"),
                               route="SC", scheduled_for=-3))
    assert dara.drug == "daratumumab"
    d = p.place(order_event(meds=[]))
    f = assert_finding(d, CD38, category="combination", severity="major",
                       evidence={"other_drug": "daratumumab", "drug_class": "anti_cd38",
                                 "found_in": ["active order ORD-DARA"]})
    assert "ORD-DARA" in f.message
    assert d.severity == "major"


def test_daratumumab_active_order_by_atc_code():
    p = Pharmacy()
    p.place(order_event(order_id="ORD-X", drug={"name": "anti-CD38 (trial)", "code": atc("L01FC01")},
                        dose=(16, "mg/kg"), scheduled_for=-3))
    d = p.place(order_event(meds=[]))
    assert_finding(d, CD38, category="combination", severity="major",
                   evidence={"found_in": ["active order ORD-X"]})


def test_an_unknown_anti_cd38_by_atc_class_prefix():
    d = decide_one(order_event(meds=[{"name": "New anti-CD38", "code": atc("L01FC99")}]))
    assert_finding(d, CD38, category="combination", severity="major")


def test_a_monoclonal_antibody_as_an_active_order_is_warning():
    p = Pharmacy()
    p.place(order_event(order_id="ORD-ELO", drug="Elotuzumab", dose=(10, "mg/kg"), scheduled_for=-1))
    d = p.place(order_event(meds=[]))
    assert_finding(d, MAB, category="combination", severity="warning",
                   evidence={"other_drug": "elotuzumab", "found_in": ["active order ORD-ELO"]})


def test_an_immunomodulator_as_an_active_order_is_info():
    p = Pharmacy()
    p.place(order_event(order_id="ORD-LEN", drug="lenalidomide", dose=(25, "mg"), route="PO",
                        scheduled_for=-1))
    d = p.place(order_event(meds=[]))
    assert_finding(d, IMID, category="combination", severity="info",
                   evidence={"other_drug": "lenalidomide", "found_in": ["active order ORD-LEN"]})


def test_a_drug_in_both_active_orders_and_current_medications_is_reported_once():
    p = Pharmacy()
    p.place(order_event(order_id="ORD-DARA", drug="daratumumab", dose=(16, "mg/kg"), scheduled_for=-2))
    d = p.place(order_event(meds=["Darzalex", "daratumumab"]))
    f = assert_finding(d, CD38, category="combination", severity="major",
                       evidence={"other_drug": "daratumumab"})
    assert sorted(f.evidence["found_in"]) == ["active order ORD-DARA", "current medications"]
    assert len(findings_in(d, "combination")) == 1
    assert MAB not in [x.rule_id for x in d.findings]  # daratumumab is also a mAb: one finding only


def test_daratumumab_is_reported_as_anti_cd38_not_also_as_a_monoclonal_antibody():
    d = decide_one(order_event(meds=["daratumumab"]))
    assert [f.rule_id for f in findings_in(d, "combination")] == [CD38]


def test_several_other_drugs_each_get_their_finding():
    d = decide_one(order_event(meds=["daratumumab", "elotuzumab", "pomalidomide", "dexamethasone"]))
    got = sorted((f.evidence["other_drug"], f.rule_id, f.severity) for f in findings_in(d, "combination"))
    assert got == [("daratumumab", CD38, "major"), ("elotuzumab", MAB, "warning"),
                   ("pomalidomide", IMID, "info")]
    assert d.severity == "major"


def test_a_cancelled_daratumumab_order_no_longer_counts():
    p = Pharmacy()
    p.place(order_event(order_id="ORD-DARA", drug="daratumumab", dose=(16, "mg/kg"), scheduled_for=-2))
    p.cancel("ORD-DARA")
    d = p.place(order_event(meds=[]))
    assert_none_in(d, "combination")


def test_an_active_daratumumab_order_counts_whatever_its_decision():
    """The daratumumab order itself is flagged (an isatuximab-dosed order: 700 mg is far below
    its 16 mg/kg, and the example names the Isa-Pd regimen): still active."""
    p = Pharmacy()
    dara = p.place(order_event(order_id="ORD-DARA", drug="daratumumab", scheduled_for=-2))
    assert dara.outcome == "flagged"
    d = p.place(order_event(meds=[]))
    assert_finding(d, CD38, category="combination", severity="major")


def test_another_patients_daratumumab_does_not_count():
    p = Pharmacy()
    p.place(order_event(drug="daratumumab", patient_id="P-999", scheduled_for=-2))
    d = p.place(order_event(meds=[]))
    assert_none_in(d, "combination")
