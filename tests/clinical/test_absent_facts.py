"""Contraception counselling, absent `lactating` and absent `allergies` (issue 13, part 1), and
messages worded by the severity the monograph gives.

The isatuximab monograph:
- [contraception] (`info`, 5 months after the last dose): for a patient who may become
  pregnant (sex female or unknown, age 12-55 on the scheduled day or unknown: the ages of
  [pregnancy]) and is not pregnant.
- absent `lactating` for a patient who may be breastfeeding (the same ages) -> `data` warning
  `lactation_unknown` (the contract: absent is unknown, not false).
- absent `allergies` -> `data` warning `allergies_missing`; an empty list is "none known".
- a rule whose severity is below warning could not flag the order, so an absent fact it needs
  raises no data finding.
- only a `contraindicated` rule's message says "contraindicated".
"""
from __future__ import annotations

import json
import shutil

import pytest

from rxgate.contract import FileSource
from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.processor import DictHistoryStore, Processor

from .conftest import DROP, NOW, assert_finding, assert_no, decide_one, order_event

CONTRACEPTION = "isatuximab.contraindication.contraception"
LACT = "isatuximab.contraindication.lactation"
LACT_UNKNOWN = "isatuximab.data.lactation_unknown"
PREG = "isatuximab.contraindication.pregnancy"
PREG_UNKNOWN = "isatuximab.data.pregnancy_unknown"
ALLERGY = "isatuximab.contraindication.allergy"
ALLERGIES_MISSING = "isatuximab.data.allergies_missing"

# T0 is 2026-03-02: born 2014-03-02 is 12 that day, 2014-03-03 is 11; 1970-03-03 is 55,
# 1970-03-02 is 56.
AGES = [("2014-03-03", 11, False), ("2014-03-02", 12, True), ("1996-01-01", 30, True),
        ("1970-03-03", 55, True), ("1970-03-02", 56, False)]


@pytest.mark.parametrize("birth_date,age,fires", AGES)
def test_contraception_reminder_by_age(birth_date, age, fires):
    d = decide_one(order_event(patient={"birth_date": birth_date, "sex": "female",
                                        "pregnant": False, "lactating": False}))
    if fires:
        f = assert_finding(d, CONTRACEPTION, category="contraindication", severity="info",
                           evidence={"age_years": age, "months_after_last_dose": 5,
                                     "childbearing_age_from": 12, "childbearing_age_to": 55},
                           message=["contraception", "5 months after the last dose"])
        assert "contraindicated" not in f.message
        assert "childbearing age should take effective contraceptive" in f.reference
    else:
        assert_no(d, CONTRACEPTION)


@pytest.mark.parametrize("patient,fires", [
    ({"sex": "male"}, False),
    ({"sex": "M"}, False),
    ({"sex": DROP}, True),                       # unknown sex
    ({"birth_date": DROP}, True),                # unknown age
    ({"pregnant": True}, False),                 # pregnant: the pregnancy rule's business
    ({"pregnant": DROP}, True),                  # unknown: both the data finding and the reminder
])
def test_contraception_reminder_by_sex_and_pregnancy(patient, fires):
    d = decide_one(order_event(patient={"birth_date": "1996-01-01", "sex": "female",
                                        "pregnant": False, "lactating": False, **patient}))
    (assert_finding(d, CONTRACEPTION, category="contraindication", severity="info")
     if fires else assert_no(d, CONTRACEPTION))


def test_the_example_patient_is_past_childbearing_age_no_reminder():
    assert_no(decide_one(order_event()), CONTRACEPTION)


# --- absent lactating ----------------------------------------------------------------------

@pytest.mark.parametrize("birth_date,age,fires", AGES)
def test_absent_lactating_by_age(birth_date, age, fires):
    d = decide_one(order_event(patient={"birth_date": birth_date, "sex": "female",
                                        "pregnant": False, "lactating": DROP}))
    if fires:
        f = assert_finding(d, LACT_UNKNOWN, category="data", severity="warning",
                           evidence={"age_years": age, "childbearing_age_from": 12,
                                     "childbearing_age_to": 55},
                           message=["Lactation status not given", "contraindicated during lactation"])
        assert d.outcome == "flagged" and f.reference
    else:
        assert_no(d, LACT_UNKNOWN)
    assert_no(d, LACT)


@pytest.mark.parametrize("patient,finding", [
    ({"sex": "male", "lactating": DROP}, None),
    ({"sex": DROP, "lactating": DROP}, LACT_UNKNOWN),
    ({"birth_date": DROP, "lactating": DROP}, LACT_UNKNOWN),
    ({"lactating": False}, None),
    ({"lactating": True}, LACT),
])
def test_absent_lactating_by_sex(patient, finding):
    d = decide_one(order_event(patient={"birth_date": "1996-01-01", "sex": "female",
                                        "pregnant": False, **patient}))
    for rule in (LACT_UNKNOWN, LACT):
        if rule != finding:
            assert_no(d, rule)
    if finding == LACT:
        assert_finding(d, LACT, category="contraindication", severity="contraindicated")
    elif finding:
        assert_finding(d, LACT_UNKNOWN, category="data", severity="warning")


# --- absent allergies ----------------------------------------------------------------------

@pytest.mark.parametrize("allergies,finding", [
    (DROP, ALLERGIES_MISSING), ([], None), (["penicillin"], None), (["Sarclisa"], ALLERGY),
])
def test_absent_allergies_is_not_none_known(allergies, finding):
    d = decide_one(order_event(patient={"allergies": allergies}))
    for rule in (ALLERGIES_MISSING, ALLERGY):
        if rule != finding:
            assert_no(d, rule)
    if finding == ALLERGIES_MISSING:
        f = assert_finding(d, ALLERGIES_MISSING, category="data", severity="warning",
                           message=["No allergies given", "an empty list is"])
        assert f.evidence["drug_names"] == ["isatuximab", "sarclisa", "xacoyi", "isatuximab-irfc"]
    elif finding:
        assert_finding(d, ALLERGY, category="contraindication", severity="contraindicated")


# --- wording follows the monograph's severity ----------------------------------------------

def processor_with(tmp_path, *edits):
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    mono.write_text(text)
    return Processor(load_knowledge(kdir), DictHistoryStore())


def decide_with(processor, event):
    [d] = processor.handle(json.dumps(event).encode(), FileSource(file="t", line=1), NOW).outputs
    return d


LACTATION = '''[lactation]
reference = "isatuximab instructions: precautions (contraindicated for lactating women)"
severity = "contraindicated"'''
PREGNANCY = '''[pregnancy]
reference = "isatuximab instructions: precautions (contraindicated for pregnant women)"
severity = "contraindicated"'''
ALLERGY_SECTION = '''reference = "isatuximab instructions: precautions (infusion reactions; severe reactions: terminate treatment)"
severity = "contraindicated"'''


@pytest.mark.parametrize("severity,phrase", [
    ("major", "is not recommended"), ("warning", "calls for caution"),
])
def test_messages_take_their_wording_from_the_severity(tmp_path, severity, phrase):
    processor = processor_with(
        tmp_path,
        (LACTATION, LACTATION.replace('severity = "contraindicated"', f'severity = "{severity}"')),
        (PREGNANCY, PREGNANCY.replace('severity = "contraindicated"', f'severity = "{severity}"')),
        (ALLERGY_SECTION, ALLERGY_SECTION.replace('severity = "contraindicated"',
                                                  f'severity = "{severity}"')))
    young = {"birth_date": "1996-01-01", "sex": "female"}
    cases = [
        ({**young, "lactating": True, "pregnant": False}, LACT, severity),
        ({**young, "lactating": DROP, "pregnant": False}, LACT_UNKNOWN, "warning"),
        ({**young, "pregnant": True, "lactating": False}, PREG, severity),
        ({**young, "pregnant": DROP, "lactating": False}, PREG_UNKNOWN, "warning"),
        ({"allergies": ["Sarclisa"]}, ALLERGY, severity),
    ]
    for patient, rule, expected in cases:
        d = decide_with(processor, order_event(patient=patient))
        category = "data" if ".data." in rule else "contraindication"
        f = assert_finding(d, rule, category=category, severity=expected, message=[phrase])
        assert "contraindicated" not in f.message, f.message
        assert "do not give" not in f.message


def test_an_info_rule_asks_for_no_absent_fact(tmp_path):
    processor = processor_with(
        tmp_path,
        (LACTATION, LACTATION.replace('severity = "contraindicated"', 'severity = "info"')),
        (ALLERGY_SECTION, ALLERGY_SECTION.replace('severity = "contraindicated"',
                                                  'severity = "info"')))
    d = decide_with(processor, order_event(patient={"birth_date": "1996-01-01", "sex": "female",
                                                    "pregnant": False, "lactating": DROP,
                                                    "allergies": DROP}))
    assert_no(d, LACT_UNKNOWN)
    assert_no(d, ALLERGIES_MISSING)
    d = decide_with(processor, order_event(patient={"lactating": True}))
    f = assert_finding(d, LACT, category="contraindication", severity="info",
                       message=["calls for attention"])
    assert "contraindicated" not in f.message


def test_lactation_may_give_its_own_ages(tmp_path):
    processor = processor_with(tmp_path, (LACTATION, LACTATION + "\nchildbearing_age_from = 15\n"
                                                                  "childbearing_age_to = 50"))
    for birth, fires in (("2011-03-02", True), ("2011-03-03", False),
                         ("1975-03-03", True), ("1975-03-02", False)):
        d = decide_with(processor, order_event(patient={"birth_date": birth, "sex": "female",
                                                        "pregnant": False, "lactating": DROP}))
        (assert_finding(d, LACT_UNKNOWN, category="data", severity="warning",
                        evidence={"childbearing_age_from": 15, "childbearing_age_to": 50})
         if fires else assert_no(d, LACT_UNKNOWN))
