"""The knowledge sections of issue 13's patient checks ([patient], [contraception],
[lactation] ages, [infusion_reaction_history], [concurrent], lab `uln`) refuse what would
weaken or confuse a check, naming file and field."""
from __future__ import annotations

import shutil

import pytest

from rxgate.knowledge import BUILTIN_DIR, KnowledgeError, load_knowledge

ISA = "drugs/isatuximab.toml"


@pytest.fixture
def kdir(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, target)
    return target


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file,old,new,expected", [
    (ISA, "weight_min_kg = 30", "weight_min_kg = 300",
     "isatuximab.toml: patient: Value error, weight_min_kg (300.0) must not be above weight_max_kg (250.0)"),
    (ISA, "weight_max_kg = 250\n", "",
     "isatuximab.toml: patient: Value error, give both weight_min_kg and weight_max_kg"),
    (ISA, "weight_change_percent = 10", "weight_change_percent = 150",
     "isatuximab.toml: patient.weight_change_percent: Input should be less than or equal to 100"),
    (ISA, "weight_change_percent = 10", "weight_change_percent = nan",
     "isatuximab.toml: patient.weight_change_percent: Input should be a finite number"),
    (ISA, "min_age_years = 18", "min_age_years = 0",
     "isatuximab.toml: patient.min_age_years: Input should be greater than or equal to 1"),
    (ISA, 'age_severity = "warning"', 'age_severity = "serious"', "isatuximab.toml: patient.age_severity"),
    (ISA, "min_age_years = 18", "min_age_years = 18\nmax_age_years = 99",
     "isatuximab.toml: patient.max_age_years: Extra inputs are not permitted"),
    (ISA, "stale_after_days = 42", "stale_after_days = 0",
     "isatuximab.toml: concurrent.stale_after_days: Input should be greater than 0"),
    (ISA, "stale_after_days = 42", "stale_after_days = inf",
     "isatuximab.toml: concurrent.stale_after_days: Input should be a finite number"),
    (ISA, "months_after_last_dose = 5", "months_after_last_dose = -1",
     "isatuximab.toml: contraception.months_after_last_dose: Input should be greater than or equal to 0"),
    (ISA, 'severe = ["severe"', 'severe = []\nsevere_as_was = ["severe"',
     "isatuximab.toml: infusion_reaction_history.severe: List should have at least 1 item"),
    (ISA, 'severity = "contraindicated"\n# `lactating`', 'severity = "contraindicated"\nchildbearing_age_from = 12\n# `lactating`',
     "isatuximab.toml: lactation: Value error, give both childbearing_age_from and childbearing_age_to"),
    ("labs.toml", "uln = 40", "uln = 0", "labs.toml: labs.ALT.uln: Input should be greater than 0"),
    # a blank phrase would exclude every condition (switching the infection check off)
    (ISA, 'excluding = ["history of", "h/o"', 'excluding = ["", "history of", "h/o"',
     "isatuximab.toml: infection.excluding.0: String should match pattern"),
    (ISA, 'excluding = ["history of", "h/o"', 'excluding = ["  ", "history of", "h/o"',
     "isatuximab.toml: infection.excluding.0: String should match pattern"),
    (ISA, 'exact = ["uti",', 'exact = [" ", "uti",',
     "isatuximab.toml: infection.exact.0: String should match pattern"),
    (ISA, 'severe = ["severe"', 'severe = ["", "severe"',
     "isatuximab.toml: infusion_reaction_history.severe.0: String should match pattern"),
    # a limit that no result could cross
    (ISA, "lab = \"CRCL\"\nbelow = 15", "lab = \"CRCL\"\nbelow = 0",
     "isatuximab.toml: lab_limits.5.below: Input should be greater than 0"),
    (ISA, "lab = \"ALT\"\nabove_uln = 3", "lab = \"ALT\"\nabove = -1",
     "isatuximab.toml: lab_limits.3.above: Input should be greater than 0"),
])
def test_a_malformed_patient_section_is_refused(kdir, file, old, new, expected):
    _edit(kdir / file, old, new)
    with pytest.raises(KnowledgeError) as e:
        load_knowledge(kdir)
    assert expected in str(e.value), str(e.value)


def test_contraception_needs_the_pregnancy_ages(kdir):
    mono = kdir / ISA
    text = mono.read_text(encoding="utf-8")
    start, end = text.index("[pregnancy]"), text.index("[contraception]")
    mono.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(KnowledgeError, match=r"isatuximab.toml: contraception: needs a \[pregnancy\]"):
        load_knowledge(kdir)


def test_the_stale_order_rule_name_cannot_be_a_drug_class(kdir):
    _edit(kdir / "drug_classes.toml", "[classes.corticosteroid]", "[classes.stale_order]")
    with pytest.raises(KnowledgeError, match="concurrent: the rule name 'stale_order' is also a drug class"):
        load_knowledge(kdir)


def test_two_units_folding_alike_must_agree(kdir):
    _edit(kdir / "labs.toml", '"mg/L" = 0.1,', '"mg/L" = 0.1, "MG/l" = 1.0,')
    with pytest.raises(KnowledgeError, match="labs.TBILI.factors: 'MG/l' differs only in case"):
        load_knowledge(kdir)


def test_a_monograph_without_the_new_sections_still_loads(kdir):
    """Every new section is optional: a monograph written for the first format is valid."""
    mono = kdir / ISA
    text = mono.read_text(encoding="utf-8")
    for section in ("[contraception]", "[patient]", "[infusion_reaction_history]", "[concurrent]"):
        start = text.index(section)
        following = [text.index(s, start + 1) for s in ("\n[", "\n[[") if s in text[start + 1:]]
        text = text[:start] + (text[min(following) + 1:] if following else "")
    mono.write_text(text, encoding="utf-8")
    k = load_knowledge(kdir)
    m = k.monographs["isatuximab"]
    assert m.patient is None and m.contraception is None and m.concurrent is None
    assert m.infusion_reaction_history is None
