"""History facts (issue 13, part 1): a prior severe infusion reaction to the drug, conditions
that look like infections but are not active, and stale orders of another drug.

The isatuximab monograph:
- [infusion_reaction_history]: a condition naming the drug (generic or trade name) with an
  infusion-reaction term and a severity term ("severe", "grade 3", "anaphylaxis", ...) ->
  `major` ("in the case of severe reactions, termination of treatment should be considered").
  An allergy entry naming the drug is the allergy rule's (contraindicated), reported once.
- [infection] `excluding`: "history of", "h/o", "resolved", "prophyla", "vaccin", "previous ",
  "prior ", "past " make a condition not an active infection -- where the phrase starts a word
  and no negation ("not", "despite", ...) stands at most two words before it.
- [concurrent]: an active order of another drug scheduled more than 42 days before this dose,
  not renewed since, is stale: an `info` finding, and no combination finding for it.
"""
from __future__ import annotations

import json
import shutil

import pytest

from rxgate.contract import FileSource
from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.processor import DictHistoryStore, Processor

from .conftest import (
    NOW, Pharmacy, assert_finding, assert_no, decide_one, order_event, rule_ids,
)

REACTION = "isatuximab.contraindication.prior_severe_infusion_reaction"
ALLERGY = "isatuximab.contraindication.allergy"
INFECTION = "isatuximab.contraindication.active_infection"
STALE = "isatuximab.combination.stale_order"
ANTI_CD38 = "isatuximab.combination.anti_cd38"
IMID = "isatuximab.combination.immunomodulator"


# --- prior severe infusion reaction --------------------------------------------------------

@pytest.mark.parametrize("condition,fires", [
    ("severe infusion reaction to isatuximab (2025)", True),
    ("Grade 3 infusion-related reaction to Sarclisa", True),
    ("grade IV infusion related reaction, isatuximab", True),
    ("Anaphylaxis to isatuximab", True),
    ("history of severe infusion reaction to isatuximab", True),   # history is the point
    ("severe isatuximab-irfc infusion reaction", True),
    ("life-threatening IRR on Xacoyi", True),
    ("grade 1 infusion reaction to isatuximab", False),            # not severe
    ("infusion reaction to isatuximab", False),
    ("severe infusion reaction to rituximab", False),              # another drug
    ("severe infusion reaction", False),                            # no drug named
    ("severe anaemia", False),
])
def test_prior_severe_infusion_reaction_among_conditions(condition, fires):
    d = decide_one(order_event(patient={"conditions": ["multiple myeloma", condition]}))
    if fires:
        f = assert_finding(d, REACTION, category="contraindication", severity="major",
                           evidence={"found_in": "conditions", "entry": condition},
                           message=[condition, "is not recommended"])
        assert "contraindicated" not in f.message  # the monograph says major
        assert "severe reactions" in f.reference
    else:
        assert_no(d, REACTION)


def test_an_allergy_entry_naming_the_drug_is_reported_once_by_the_allergy_rule():
    d = decide_one(order_event(patient={"allergies": ["isatuximab (severe infusion reaction)"]}))
    assert_finding(d, ALLERGY, category="contraindication", severity="contraindicated")
    assert_no(d, REACTION)


@pytest.mark.parametrize("allergy_severity,reaction_reported", [
    ("info", True), ("warning", True), ("major", False), ("contraindicated", False),
])
def test_a_milder_allergy_rule_does_not_soften_a_severe_reaction_among_the_allergies(
        tmp_path, allergy_severity, reaction_reported):
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text()
    old = 'severe reactions: terminate treatment)"\nseverity = "contraindicated"'
    assert old in text
    mono.write_text(text.replace(old, old.replace('"contraindicated"', f'"{allergy_severity}"')))
    processor = Processor(load_knowledge(kdir), DictHistoryStore())
    e = order_event(patient={"allergies": ["isatuximab: grade 4 infusion reaction"]})
    [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
    assert_finding(d, ALLERGY, category="contraindication", severity=allergy_severity)
    if reaction_reported:
        assert_finding(d, REACTION, category="contraindication", severity="major",
                       evidence={"found_in": "allergies"})
    else:
        assert_no(d, REACTION)


def test_without_an_allergy_section_the_reaction_rule_reads_the_allergies(tmp_path):
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text()
    start = text.index("[allergy]")
    end = text.index("[[lab_limits]]")
    mono.write_text(text[:start] + text[end:])
    processor = Processor(load_knowledge(kdir), DictHistoryStore())
    e = order_event(patient={"allergies": ["Sarclisa: grade 4 infusion reaction"]})
    [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
    assert_finding(d, REACTION, category="contraindication", severity="major",
                   evidence={"found_in": "allergies"})
    assert_no(d, ALLERGY)


# --- infections that are not active ---------------------------------------------------------

@pytest.mark.parametrize("condition,active", [
    ("pneumonia", True),
    ("history of pneumonia", False),
    ("H/O sepsis", False),
    ("resolved COVID-19", False),
    ("COVID-19, resolved", False),
    ("pneumocystis prophylaxis", False),
    ("antiviral prophylactic therapy (herpes zoster)", False),
    ("influenza vaccination 2025", False),
    ("previous cellulitis", False),
    ("prior tuberculosis, treated", False),
    ("past shingles", False),
    ("gram-negative sepsis", True),        # "negative" does not exclude
    ("active herpes zoster", True),
    ("UTI", True),
    ("flu", True),
    ("Pasteurella cellulitis", True),      # "past " needs its space
    # an exclusion starts a word and is not negated right before it
    ("unresolved pneumonia", True),
    ("pneumonia, not resolved", True),
    ("sepsis - not yet resolved", True),
    ("Pneumonia despite PJP prophylaxis", True),
    ("cellulitis, failed prior antibiotics", True),
    ("pneumonia (Resolved)", False),
    ("non-resolved sepsis", True),
])
def test_an_infection_that_is_not_active_is_excluded_by_data(condition, active):
    d = decide_one(order_event(patient={"conditions": ["multiple myeloma", condition]}))
    if active:
        assert_finding(d, INFECTION, category="contraindication", severity="warning",
                       evidence={"condition": condition})
    else:
        assert_no(d, INFECTION)


# --- stale orders of another drug -----------------------------------------------------------

def other_then_this(other_days: float, *, drug="daratumumab", meds=None, renewals=()):
    """An order of `drug` scheduled `other_days` before this isatuximab dose (T0)."""
    pharmacy = Pharmacy()
    other = order_event(drug=drug, scheduled_for=-other_days, regimen=None, frequency=None,
                        duration_min=None)
    pharmacy.place(other)
    for days in renewals:
        pharmacy.place(order_event(drug=drug, scheduled_for=-days, regimen=None, frequency=None))
    kw = {"meds": meds} if meds is not None else {}
    return pharmacy.place(order_event(**kw)), other


@pytest.mark.parametrize("days_before,stale", [
    (1, False), (41.99, False), (42, False), (42 + 1 / 1440, True), (43, True), (200, True),
])
def test_another_drugs_order_beyond_42_days_is_stale_not_concurrent(days_before, stale):
    d, other = other_then_this(days_before)
    if stale:
        f = assert_finding(d, STALE, category="combination", severity="info",
                           evidence={"other_drug": "daratumumab", "stale_after_days": 42,
                                     "found_in": [f"active order {other['order']['order_id']}"]},
                           message=["daratumumab", "not renewed", "stale"])
        assert f.evidence["age_days"] > 42
        assert "general practice" in f.reference
        assert_no(d, ANTI_CD38)
        assert d.outcome == "approved"
    else:
        assert_finding(d, ANTI_CD38, category="combination", severity="major")
        assert_no(d, STALE)


def test_a_renewed_order_is_concurrent_again():
    d, _ = other_then_this(100, renewals=(30,))
    assert_finding(d, ANTI_CD38, category="combination", severity="major")
    assert_no(d, STALE)


def test_a_current_medication_is_never_stale():
    d, _ = other_then_this(100, meds=["pomalidomide", "daratumumab"])
    f = assert_finding(d, ANTI_CD38, category="combination", severity="major")
    assert "current medications" in f.evidence["found_in"]
    assert_no(d, STALE)


def test_a_stale_order_of_a_drug_without_a_combination_concern_says_nothing():
    d, _ = other_then_this(100, drug="ondansetron")
    assert_no(d, STALE)
    assert [r for r in rule_ids(d) if ".combination." in r] == [IMID]  # pomalidomide, current


def test_a_stale_order_in_the_future_is_not_stale():
    d, _ = other_then_this(-100)  # scheduled 100 days after this dose
    assert_finding(d, ANTI_CD38, category="combination", severity="major")


# --- the monograph's words match whatever their case ---------------------------------------

def test_terms_written_in_capitals_in_a_monograph_still_match(tmp_path):
    """A monograph may write "Sepsis", "UTI" or "IRR": a condition in any case matches them, and
    an exclusion in capitals still excludes."""
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text()
    for old, new in (('"sepsis", "septic"', '"SEPSIS", "septic"'),
                     ('exact = ["uti",', 'exact = ["UTI",'),
                     ('excluding = ["history of"', 'excluding = ["History Of"'),
                     ('"infusion-associated reaction", "irr"',
                      '"infusion-associated reaction", "IRR"'),
                     ('"grade 3", "grade 4"', '"Grade 3", "GRADE 4"')):
        assert old in text, old
        text = text.replace(old, new, 1)
    mono.write_text(text)
    processor = Processor(load_knowledge(kdir), DictHistoryStore())

    def decide(condition):
        e = order_event(patient={"conditions": ["multiple myeloma", condition]})
        [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
        return d

    for condition in ("Sepsis", "uti"):
        assert_finding(decide(condition), INFECTION, category="contraindication",
                       severity="warning", evidence={"condition": condition})
    assert_no(decide("history of sepsis"), INFECTION)
    assert_finding(decide("grade 4 irr to isatuximab"), REACTION, category="contraindication",
                   severity="major")


def test_a_hyphenated_name_of_the_drug_is_a_name(tmp_path):
    """A trade name written with a hyphen (one word for a split on non-letters) is matched as
    a whole; a longer word that contains a name is not the drug."""
    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text()
    old = 'trade_names = ["Sarclisa", "Xacoyi"]'
    assert old in text
    mono.write_text(text.replace(old, 'trade_names = ["Sarclisa", "Xacoyi", "Isa-Brand"]'))
    processor = Processor(load_knowledge(kdir), DictHistoryStore())
    for condition, fires in (("severe infusion reaction to Isa-Brand", True),
                             ("Isa-Brand: grade 4 IRR", True),
                             ("severe infusion reaction to isa-brandx", False),
                             ("severe infusion reaction to nonxacoyi", False)):
        e = order_event(patient={"conditions": ["multiple myeloma", condition]})
        [d] = processor.handle(json.dumps(e).encode(), FileSource(file="t", line=1), NOW).outputs
        (assert_finding(d, REACTION, category="contraindication", severity="major")
         if fires else assert_no(d, REACTION))
