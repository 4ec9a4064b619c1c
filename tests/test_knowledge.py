"""Drug knowledge loads whole and valid, or not at all, with a message naming file and field."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from rxgate.knowledge import BUILTIN_DIR, KnowledgeError, load_knowledge

from tests.conftest import EXAMPLES


@pytest.fixture
def kdir(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, target)
    return target


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_builtin_knowledge_loads_with_a_version():
    k = load_knowledge()
    assert k.version == "2026.11.3"
    assert list(k.monographs) == ["daratumumab", "isatuximab"]
    mono = k.monographs["isatuximab"]
    assert mono.dose.labeled_mg_per_kg == 10 and mono.dose.routes == ["IV"]
    assert k.route("Intravenous") == "IV" and k.route("teleport") is None
    assert k.lab("751-8") == "ANC" and k.lab("plt") == "PLT"


def test_env_var_selects_the_knowledge_dir(kdir, monkeypatch):
    _edit(kdir / "knowledge.toml", 'version = "2026.11.3"', 'version = "2027.1.4"')
    monkeypatch.setenv("RXGATE_KNOWLEDGE_DIR", str(kdir))
    assert load_knowledge().version == "2027.1.4"


@pytest.mark.parametrize("file,old,new,expected", [
    ("drugs/isatuximab.toml", "labeled_mg_per_kg = 10", "labeled_mg_per_kg = -10",
     "isatuximab.toml: dose.labeled_mg_per_kg: Input should be greater than 0"),
    ("drugs/isatuximab.toml", 'over_severity = "major"', 'over_severity = "huge"',
     "isatuximab.toml: dose.over_severity"),
    ("drugs/isatuximab.toml", "min_minutes = 180", "min_minutes = 180\nmin_hours = 3",
     "isatuximab.toml: infusion.min_hours: Extra inputs are not permitted"),
    ("drugs/isatuximab.toml", 'drug_class = "anti_cd38"', 'drug_class = "anti_cd99"',
     "isatuximab.toml: combinations.0.drug_class: 'anti_cd99' is not a class"),
    ("drugs/isatuximab.toml", 'lab = "ANC"', 'lab = "NEUT"',
     "isatuximab.toml: lab_limits.0.lab: 'NEUT' is not a lab"),
    ("drugs/isatuximab.toml", 'routes = ["IV"]\nroute_severity', 'routes = ["IVX"]\nroute_severity',
     "isatuximab.toml: dose.routes: 'IVX' is not a route"),
    ("drugs/isatuximab.toml", "days = [1, 8, 15, 22]", "days = [8, 1, 15, 22]",
     "isatuximab.toml: schedule: Value error, cycles (from_cycle 1): days must increase"),
    ("drugs/isatuximab.toml", "lab = \"ANC\"\nbelow = 1.0\nseverity = \"major\"\nrequired = true\nmax_age_days = 7",
     "lab = \"ANC\"\nbelow = 1.0\nseverity = \"major\"\nrequired = true",
     "lab_limits.0.max_age_days: required for a required lab"),
    ("drugs/isatuximab.toml", 'drug = "isatuximab"', 'drug = "isatuximab',
     "isatuximab.toml: not valid TOML"),
    ("knowledge.toml", 'version = "2026.11.3"', 'version = "latest"',
     "knowledge.toml: version: String should match pattern"),
    ("labs.toml", '"g/L" = 0.1', '"g/L" = 0', "labs.toml: labs.HGB: Value error, every factor"),
    ("routes.toml", 'SC  = ["sc"', 'SC  = ["iv"', "routes.toml: routes.SC: 'iv' is also a spelling of IV"),
])
def test_a_malformed_file_stops_loading_naming_file_and_field(kdir, file, old, new, expected):
    _edit(kdir / file, old, new)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir)
    assert expected in str(info.value)


def test_a_missing_file_is_named(kdir):
    (kdir / "labs.toml").unlink()
    with pytest.raises(KnowledgeError, match=r"labs.toml: file is missing"):
        load_knowledge(kdir)


def test_two_drugs_cannot_claim_one_name(kdir):
    text = (kdir / "drugs" / "isatuximab.toml").read_text()
    (kdir / "drugs" / "isatuximab_copy.toml").write_text(
        text.replace('drug = "isatuximab"', 'drug = "isatuximab copy"'))
    with pytest.raises(KnowledgeError, match="'sarclisa' is also claimed by isatuximab"):
        load_knowledge(kdir)


def test_a_second_drug_is_a_new_file_not_new_code(kdir):
    text = (kdir / "drugs" / "isatuximab.toml").read_text()
    text = (text.replace('drug = "isatuximab"', 'drug = "testumab"')
                .replace('trade_names = ["Sarclisa", "Xacoyi"]', 'trade_names = ["Testa"]')
                .replace('name = "Sarclisa"\naliases = ["Xacoyi", "isatuximab-irfc"]', 'name = "Testa"')
                .replace('codes = [{ system = "rxnorm", value = "2283218" }, { system = "atc", value = "L01FC02" }]',
                         "codes = []")
                .replace("labeled_mg_per_kg = 10", "labeled_mg_per_kg = 3"))
    (kdir / "drugs" / "testumab.toml").write_text(text)
    k = load_knowledge(kdir)
    assert sorted(k.monographs) == ["daratumumab", "isatuximab", "testumab"]
    assert k.monograph_for("TESTA").dose.labeled_mg_per_kg == 3


def test_cli_refuses_bad_knowledge_and_writes_no_decision(kdir, tmp_path):
    _edit(kdir / "drugs" / "isatuximab.toml", "labeled_mg_per_kg = 10", 'labeled_mg_per_kg = "ten"')
    orders = tmp_path / "orders.jsonl"
    orders.write_text((EXAMPLES / "order-placed.json").read_text().replace("\n", "") + "\n")
    run = subprocess.run([sys.executable, "-m", "rxgate.cli", "check", "--knowledge-dir", str(kdir), str(orders)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "isatuximab.toml: dose.labeled_mg_per_kg" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "rxgate.cli", "knowledge"], capture_output=True, text=True)
    assert ok.returncode == 0 and "2026.11.3" in ok.stdout


# --- no number in a knowledge file may switch a check off (issue 8) ---------------------------

ISA = "drugs/isatuximab.toml"


@pytest.mark.parametrize("file,old,new,expected", [
    # nan / inf in every kind of float field: each would silently stop a check from firing
    (ISA, "below = 1.0", "below = nan", "isatuximab.toml: lab_limits.0.below: Input should be a finite number"),
    (ISA, "below = 50", "below = -inf", "isatuximab.toml: lab_limits.1.below: Input should be a finite number"),
    (ISA, "over_limit_percent = 10 ", "over_limit_percent = inf ",
     "isatuximab.toml: dose.over_limit_percent: Input should be a finite number"),
    (ISA, "under_limit_percent = 10 ", "under_limit_percent = nan ",
     "isatuximab.toml: dose.under_limit_percent: Input should be a finite number"),
    (ISA, "labeled_mg_per_kg = 10", "labeled_mg_per_kg = inf",
     "isatuximab.toml: dose.labeled_mg_per_kg: Input should be a finite number"),
    (ISA, "tolerance_days = 1", "tolerance_days = inf",
     "isatuximab.toml: schedule.tolerance_days: Input should be a finite number"),
    (ISA, "min_minutes = 180", "min_minutes = nan", "isatuximab.toml: infusion.min_minutes: Input should be a finite number"),
    (ISA, "max_minutes = 240", "max_minutes = +inf", "isatuximab.toml: infusion.max_minutes: Input should be a finite number"),
    (ISA, "max_age_days = 7", "max_age_days = inf", "isatuximab.toml: lab_limits.0.max_age_days: Input should be a finite number"),
    ("labs.toml", '"g/L" = 0.1', '"g/L" = nan', "labs.toml: labs.HGB.factors.g/L: Input should be a finite number"),
    ("labs.toml", '"mmol/L" = 1.611', '"mmol/L" = inf', "labs.toml: labs.HGB.factors.mmol/L: Input should be a finite number"),
    # ranges the wrong way round, and limits that would stop a check from ever firing
    (ISA, "childbearing_age_from = 12", "childbearing_age_from = 60",
     "isatuximab.toml: pregnancy: Value error, childbearing_age_from (60) must not be above childbearing_age_to (55)"),
    (ISA, "min_minutes = 180", "min_minutes = 300",
     "isatuximab.toml: infusion: Value error, max_minutes (240.0) must not be below min_minutes (300.0)"),
    (ISA, "over_limit_percent = 10 ", "over_limit_percent = 1000 ",
     "isatuximab.toml: dose.over_limit_percent: Input should be less than or equal to 100"),
    (ISA, "tolerance_days = 1", "tolerance_days = 7",
     "isatuximab.toml: schedule: Value error, tolerance_days (7.0) must be below the shortest gap of the plan (7 days)"),
    (ISA, "max_age_days = 7", "max_age_days = 100000",
     "isatuximab.toml: lab_limits.0.max_age_days: Input should be less than or equal to 366"),
    (ISA, "labeled_mg_per_kg = 10", "labeled_mg_per_kg = 1e-300",
     "isatuximab.toml: dose: Value error, labeled_mg_per_kg (1e-300) must be at least 1e-6"),
    ("labs.toml", '"mmol/L" = 1.611', '"mmol/L" = 1e300', "labs.toml: labs.HGB: Value error, every factor must be at most 1e12"),
    # limits beyond what an order can say (contract.py): the check could never fire
    (ISA, "max_minutes = 240", "max_minutes = 100000",
     "isatuximab.toml: infusion.max_minutes: Input should be less than 100000"),
    (ISA, "min_minutes = 180", "min_minutes = 0.01",
     "isatuximab.toml: infusion.min_minutes: Input should be greater than 0.01"),
    ("drugs/daratumumab.toml", "volume_ml = 1000, min_minutes = 390, max_minutes = 900",
     "volume_ml = 1000, min_minutes = 390, max_minutes = 100000",
     "daratumumab.toml: infusion.windows.0.max_minutes: Input should be less than 100000"),
    (ISA, "weight_min_kg = 30\nweight_max_kg = 250", "weight_min_kg = 0.1\nweight_max_kg = 1000",
     "isatuximab.toml: patient: Value error, weight_min_kg (0.1) - weight_max_kg (1000.0) takes in every weight"),
    (ISA, 'lab = "CRCL"\nbelow = 15', 'lab = "CRCL"\nabove = 1e20',
     "isatuximab.toml: lab_limits.5.above: Input should be less than or equal to 1000000000000"),
])
def test_a_number_that_would_weaken_a_check_is_refused(kdir, file, old, new, expected):
    _edit(kdir / file, old, new)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir)
    assert expected in str(info.value)
    assert str(kdir / file) in str(info.value)  # the file, by its path


def test_the_shortest_gap_counts_the_turn_of_a_cycle(kdir):
    # cycle 2+ doses on days 1 and 15 of 28-day cycles: gaps 14 and 14; cycle 1 -> 2: 22 -> 29 = 7
    _edit(kdir / ISA, "tolerance_days = 1", "tolerance_days = 6.5")
    assert load_knowledge(kdir).monographs["isatuximab"].schedule.tolerance_days == 6.5


def test_a_gap_of_a_cycle_that_never_repeats_is_not_counted(kdir):
    # cycle 1 only: days 1 and 27; from cycle 2: days 5 and 19 (28-day cycles). Real gaps: 26,
    # 6 (cycle 1 day 27 -> cycle 2 day 5), 14, 14. Cycle 1 never follows itself: no gap of 2.
    _edit(kdir / ISA, "{ from_cycle = 1, days = [1, 8, 15, 22] }", "{ from_cycle = 1, days = [1, 27] }")
    _edit(kdir / ISA, "{ from_cycle = 2, days = [1, 15] }", "{ from_cycle = 2, days = [5, 19] }")
    _edit(kdir / ISA, "tolerance_days = 1", "tolerance_days = 5.5")
    assert load_knowledge(kdir).monographs["isatuximab"].schedule.tolerance_days == 5.5
    _edit(kdir / ISA, "tolerance_days = 5.5", "tolerance_days = 6")
    with pytest.raises(KnowledgeError, match=r"shortest gap of the plan \(6 days\)"):
        load_knowledge(kdir)


# --- products, dose forms, infusion windows, regimens and phases (issue 13) -------------------

DARA = "drugs/daratumumab.toml"


@pytest.mark.parametrize("file,old,new,expected", [
    (DARA, "labeled_mg = 1800", "labeled_mg = 1800\nlabeled_mg_per_kg = 16",
     "daratumumab.toml: products.1.dose: Value error, exactly one of labeled_mg_per_kg, labeled_mg_per_m2, "
     "labeled_mg must be given (got labeled_mg_per_kg, labeled_mg)"),
    (DARA, "labeled_mg_per_kg = 16\n", "",
     "daratumumab.toml: dose: Value error, exactly one of labeled_mg_per_kg, labeled_mg_per_m2, labeled_mg "
     "must be given (got none)"),
    (DARA, "labeled_mg = 1800", "labeled_mg = nan",
     "daratumumab.toml: products.1.dose.labeled_mg: Input should be a finite number"),
    (DARA, "labeled_mg = 1800", "labeled_mg = 0", "daratumumab.toml: products.1.dose.labeled_mg: Input should be greater than 0"),
    (DARA, "labeled_mg = 1800", "labeled_mg_per_m2 = 1e-9",
     "daratumumab.toml: products.1.dose: Value error, labeled_mg_per_m2 (1e-09) must be at least 1e-6"),
    (DARA, 'name = "Darzalex"\naliases = ["daratumumab iv"]\nroutes = ["IV"]',
     'name = "Darzalex"\naliases = ["daratumumab iv"]\nroutes = ["SC"]',
     "daratumumab.toml: (file): Value error, products.0.routes: ['SC'] must be the routes of the product's dose (['IV'])"),
    (DARA, "\n[infusion]\n", '\n[[products]]\nname = "Dara Biosimilar"\n\n[infusion]\n',
     "products: 'Darzalex' and 'Dara Biosimilar' are both given IV"),
    (DARA, 'name = "Darzalex"\n', 'name = "Darzalex"\nstrength_mg = 100\n',
     "daratumumab.toml: products.0.strength_mg: Extra inputs are not permitted"),
    (DARA, "days = [1, 2]\n", "days = [1, 3]\n",
     "daratumumab.toml: dose.split_first_dose: Value error, days [1, 3] must be consecutive days of cycle 1 from day 1"),
    (DARA, "days = [1, 2]\n", "days = [1]\n", "daratumumab.toml: dose.split_first_dose.days: List should have at least 2 items"),
    (DARA, "{ from_dose = 2,", "{ from_dose = 1,",
     "daratumumab.toml: infusion: Value error, windows: from_dose must strictly increase"),
    (DARA, "volume_ml = 1000, min_minutes = 390, max_minutes = 900", "volume_ml = 1000, min_minutes = 390, max_minutes = 300",
     "daratumumab.toml: infusion.windows.0: Value error, max_minutes (300.0) must not be below min_minutes (390.0)"),
    (DARA, "volume_ml = 1000, min_minutes = 390, max_minutes = 900, max_rate_ml_per_h = 200",
     "volume_ml = 1000, min_minutes = 390, max_minutes = 900, max_rate_ml_per_h = inf",
     "daratumumab.toml: infusion.windows.0.max_rate_ml_per_h: Input should be a finite number"),
    (DARA, "volume_ml = 1000, min_minutes = 390, max_minutes = 900, max_rate_ml_per_h = 200",
     "volume_ml = 1000, min_minutes = 390, max_minutes = 900, max_rate_ml_per_h = 0",
     "daratumumab.toml: infusion.windows.0.max_rate_ml_per_h: Input should be greater than 0"),
    (DARA, "min_minutes = 390", "min_minutes = nan", "daratumumab.toml: infusion.windows.0.min_minutes: Input should be a finite number"),
    (DARA, 'names = ["DVd", "D-Vd", "Dara-Vd", "Dara-Bor-Dex"]\n', "",
     "regimens.0.names: each regimen of a drug with several needs names"),
    (DARA, 'names = ["DVd", "D-Vd",', 'names = ["DVd", "d rd",',
     "regimens.0.names: 'd rd' also names another regimen"),
    (DARA, '{ from_cycle = 1, days = [1, 8, 15], label = "weekly, weeks 1-9" }',
     '{ from_cycle = 1, days = [1, 8, 15], cycle_length_days = 14, label = "weekly, weeks 1-9" }',
     "daratumumab.toml: regimens.0: Value error, cycles (from_cycle 1): days must increase, within 1..14"),
    (DARA, '{ from_cycle = 9, days = [1], cycle_length_days = 28,', '{ from_cycle = 9, days = [1], cycle_length_days = 0,',
     "daratumumab.toml: regimens.0.cycles.2.cycle_length_days: Input should be greater than or equal to 1"),
    (DARA, "cycle_length_days = 21\ntolerance_days = 1", "cycle_length_days = 21\ntolerance_days = 7",
     "daratumumab.toml: regimens.0: Value error, tolerance_days (7.0) must be below the shortest gap of the plan (7 days)"),
    (DARA, 'routes = ["SC"]\n\n[products.dose]', 'routes = ["SC"]\n\n[products.infusion]\nreference = "x"\nroutes = ["SCX"]\n'
     'min_minutes = 3\nshort_severity = "info"\nmax_minutes = 5\nlong_severity = "info"\n\n[products.dose]',
     "daratumumab.toml: products.1.infusion.routes: 'SCX' is not a route"),
    (DARA, 'severity = "info"\n\n# The default regimen', 'severity = "info"\nroutes = ["XX"]\n\n# The default regimen',
     "daratumumab.toml: premedication.routes: 'XX' is not a route"),
    (ISA, 'aliases = ["Xacoyi", "isatuximab-irfc"]', 'aliases = ["Xacoyi", "isatuximab-irfc", "Darzalex"]',
     "'darzalex' is also claimed by daratumumab"),
])
def test_a_malformed_product_regimen_or_window_is_refused(kdir, file, old, new, expected):
    _edit(kdir / file, old, new)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir)
    assert expected in str(info.value)
    assert str(kdir / file) in str(info.value)


def test_a_split_day_that_is_also_a_dosing_day_of_cycle_1_is_refused(kdir):
    _edit(kdir / DARA, "days = [1, 2]\n", "days = [1, 2, 3]\n")
    _edit(kdir / DARA, '{ from_cycle = 1, days = [1, 8, 15, 22], label = "weekly, weeks 1-8" }',
          '{ from_cycle = 1, days = [1, 3, 8, 15, 22], label = "weekly, weeks 1-8" }')
    with pytest.raises(KnowledgeError, match=r"daratumumab.toml: .*schedule.cycles: a first dose split over "
                                             r"days \[1, 2, 3\] needs cycle 1 to dose on day 1 and not on days \[2, 3\]"):
        load_knowledge(kdir)


def test_a_product_whose_routes_are_left_out_takes_its_doses(kdir):
    k = load_knowledge(kdir)
    isa = k.monographs["isatuximab"]
    assert [p.routes for p in isa.products] == [[]]
    assert isa.routes_of(isa.products[0]) == ["IV"]


def test_daratumumab_as_the_model_holds_it():
    k = load_knowledge()
    dara = k.monographs["daratumumab"]
    iv, sc = dara.products
    assert (iv.name, dara.dose_rules(iv).form, dara.dose_rules(iv).labeled) == ("Darzalex", "per_kg", 16)
    assert (sc.name, dara.dose_rules(sc).form, dara.dose_rules(sc).labeled) == ("Darzalex Faspro", "flat", 1800)
    assert dara.split_days == (1, 2)
    assert [r.cycle_length_days for r in dara.all_regimens] == [28, 21, 42]
    assert dara.regimen_for("d-vd")[0].names[0] == "DVd"
    assert dara.regimen_for(None)[1] == "unnamed" and dara.regimen_for("xyz")[1] == "unknown"
    assert k.monograph_for("isatuximab-irfc").drug == "isatuximab"
    assert k.monograph_for("Daratumumab and Hyaluronidase-FIHJ").drug == "daratumumab"


def test_per_monograph_tables_are_kept_with_their_knowledge():
    """What a rule precomputes from a monograph is built once per monograph of a knowledge; a
    reloaded knowledge builds its own, and a monograph that is not the knowledge's is not kept."""
    built = []

    def build(knowledge, mono):
        built.append((knowledge, mono))
        return object()

    k = load_knowledge()
    mono = k.monographs["isatuximab"]
    first = k.per_monograph("test", mono, build)
    assert k.per_monograph("test", mono, build) is first and len(built) == 1
    reloaded = load_knowledge()
    assert reloaded.per_monograph("test", reloaded.monographs["isatuximab"], build) is not first
    assert len(built) == 2
    foreign = mono.model_copy()
    assert k.per_monograph("test", foreign, build) is not first
    assert k.per_monograph("test", foreign, build) is not first and len(built) == 4
    assert k.per_monograph("test", mono, build) is first
