"""Held-out clinical boundary tables for issue 13 (knowledge v2), written from the TEXT only.

Sources, and nothing else: the issue text (issue 13, part 1 and part 2), the
isatuximab seed text (docs/sources/isatuximab-instructions.txt), the wire contract
(docs/contract.md, docs/examples/) and the US labels of isatuximab-irfc (SARCLISA, IV only) and
daratumumab (DARZALEX, IV; DARZALEX FASPRO, daratumumab and hyaluronidase-fihj, SC). The rule
code, the monograph TOML and the other clinical tests were NOT read: these rows are meant to
catch what a reading shared with the implementation would miss.

The issue, quoted where a row sits on its words:

  "dose forms: per kg, per m2 and flat doses (a subcutaneous product of 1,400 mg or 1,800 mg
  flat), selected by product and route; a split first dose (half on day 1, half on day 2)"
  "an order is matched to its product by name, code and route; "no monograph" only when nothing
  matches" -- aliases "such as the US suffix name `isatuximab-irfc`"
  "infusion: a window per dose number (first infusion longer, later ones shorter, a maximum rate
  in mL/h where the monograph gives one)"
  "cycle length per regimen (28- and 21-day regimens both exist for the same drug), phases ...
  (daratumumab: weekly weeks 1-8, every 2 weeks weeks 9-24, every 4 weeks after), premedication
  reminders for every infusion where the monograph says so, not only the first"
  "laboratory limits with `above` as well as `below` (liver: bilirubin, ALT/AST as multiples of
  the upper limit of normal; renal: creatinine clearance) ... UCUM spellings and case variants
  of every unit understood (`10*9/L`, `10^9/l`, `cells/µL`, `g/l`)"
  "age (a patient under 18: safety not established), weight plausibility and weight change since
  the patient's previous dose of the drug beyond a monograph threshold (... 70 to 154 kg ...)"
  "a prior severe infusion reaction to the drug recorded among conditions or allergies;
  conditions that look like infections but are not active ("history of", "resolved",
  "prophylaxis") excluded by data; an active order of another drug that has not been renewed for
  longer than a monograph-set window counts as stale (an info finding says so), not as
  concurrent therapy"
  "contraception counselling for patients who may become pregnant, and data findings for an
  absent `lactating` (for a patient who may be breastfeeding) and absent `allergies` ...;
  messages take their wording from the severity the monograph gives, never a hard-coded
  "contraindicated"."
  "isatuximab and daratumumab together are duplicate anti-CD38 therapy in both directions."

How a row is written: an order event in the contract's shape (docs/examples/order-placed.json)
built from a BASELINE valid order of each product, with deltas; one or more events run in order
through one real `Processor(load_knowledge(), DictHistoryStore())`; the LAST event's decision is
checked. Expected findings are described by category, minimum severity and (where sensible)
words one of which the rule_id should contain -- never an exact rule id, which the implementers
choose. Where the text leaves a number to the monograph the row is placed far from it, and the
threshold this file expects is written in ASSUMPTIONS (see also tests/clinical/HELDOUT_NOTES.md).

Baselines (all valid, expected `approved` with only info findings):
  isatuximab  IV 700 mg (10 mg/kg x 70 kg), 250 mL over 210 min, Isa-Pd C1D1
  daratumumab IV 1120 mg (16 mg/kg x 70 kg), 1000 mL over 420 min (first), DRd C1D1
  daratumumab SC 1800 mg flat "daratumumab and hyaluronidase", no infusion block, DRd C1D1
  patient: the contract's example (female, born 1955-04-12, 70 kg, not pregnant, not lactating,
  allergic to penicillin, multiple myeloma), with a full lab panel 26 h before the dose:
  ANC 1.8 10^9/L, PLT 142 10^9/L, HGB 10.9 g/dL, TBILI 0.6 mg/dL, ALT 22 U/L, AST 24 U/L,
  CRCL 78 mL/min.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from rxgate.contract import FileSource, severity_rank
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor

# --- what this file assumes where the issue leaves the number to the monograph ---------------

ASSUMPTIONS: dict[str, str] = {
    "A01_isatuximab_iv_only": (
        "SARCLISA (isatuximab-irfc) is labelled 'injection, for intravenous use' only in the US; "
        "the 1,400 mg flat SC dose in the issue is read as an example of a flat SC product, not "
        "an isatuximab SC product. An isatuximab order by SC route is therefore an SC order of an "
        "IV-only product: flagged (dose or data, >= warning). If the lead ships an isatuximab SC "
        "1,400 mg product, rows marked A01 flip."),
    "A02_generic_name_plus_route_selects_product": (
        "An order named just 'daratumumab' with route SC is matched to the SC product "
        "(daratumumab and hyaluronidase, 1,800 mg flat) -- 'matched to its product by name, code "
        "and route'. A trade name that names one formulation (DARZALEX = IV, DARZALEX FASPRO = "
        "SC) given by the other route is flagged (dose or data, >= warning)."),
    "A03_aliases": (
        "Names matched case-insensitively: 'Sarclisa', 'isatuximab-irfc' (issue), 'Darzalex', "
        "'Darzalex Faspro', 'daratumumab and hyaluronidase' (issue/brief) and the US proper name "
        "'daratumumab and hyaluronidase-fihj' (DARZALEX FASPRO label title)."),
    "A04_codes": (
        "RxNorm 2283218 = isatuximab (the contract's example). ATC L01FC02 = isatuximab, "
        "L01FC01 = daratumumab (WHO ATC, L01FC 'CD38 inhibitors'). A code alone (unknown name) "
        "matches the monograph."),
    "A05_dose_tolerance": (
        "Dose rows are far from any tolerance: exact and +-0 % pass; >= 25 % over, and 37.5 % "
        "under (daratumumab 10 mg/kg, the isatuximab dose), are flagged `dose` >= warning. "
        "Underdosing by 37 % is assumed flagged (the existing per-kg rule compares to the "
        "labelled dose)."),
    "A06_split_first_dose": (
        "DARZALEX label 2.1/2.4: the first 16 mg/kg dose may be split, 8 mg/kg on day 1 and day 2 "
        "of cycle 1 (each 500 mL). 8 mg/kg at C1D1, and again at C1D2 after it, pass; 8 mg/kg at "
        "any other plan day, a full dose on day 2 after a half, a half on day 2 after a full dose, "
        "or the second half on day 3 are flagged (dose or interval, >= warning). Isatuximab has "
        "no split dose."),
    "A07_infusion_windows": (
        "Label infusion tables. Isatuximab 250 mL: first infusion max 150 mL/h (~3 h 20 min), "
        "second max 200 mL/h (~1 h 53 min), subsequent 200 mL/h (75 min). The seed's 3-4 h "
        "(210 min) stays valid for every dose (existing decisions unchanged). Daratumumab IV: "
        "first 1000 mL (~7 h: 420 min passes), second 500 mL (~4 h: 240 min passes), subsequent "
        "500 mL (~3.25 h: 210 min passes), split halves 500 mL (~4 h); max 200 mL/h for all. "
        "Rate = volume_ml / duration_min * 60; exactly the max passes, above it is flagged "
        "`dose` >= warning. A dose's number: the patient's active doses before it, or, with a "
        "regimen, its place in the plan (C1D1 first, C1D8 second), as issue 3 did for the "
        "first-dose premedication. 700 mL over 210 min (200 mL/h) assumes no volume check. "
        "Reconciled (R6): isatuximab keeps the seed's 3-4 h for every dose and has no maximum "
        "rate; the daratumumab windows and rate stand as written."),
    "A08_missing_infusion_facts": (
        "Fail closed: an infusion order of a product with a maximum rate and no volume_ml is a "
        "`data` finding (>= warning); no duration_min likewise (contract). An SC injection needs "
        "no infusion block. Reconciled (R7): isatuximab has no maximum rate, so no volume."),
    "A09_regimen_names": (
        "Regimen names the daratumumab monograph knows: 'DRd' (28-day cycles: weekly C1-2, q2w "
        "C3-6 days 1/15, q4w C7+ day 1) and 'DVd' (21-day cycles: weekly C1-3 days 1/8/15, q3w "
        "C4-8 day 1). Isatuximab: 'Isa-Pd', 'Isa-Kd' (28-day; C1 weekly, C2+ days 1/15). An "
        "unknown regimen name for a drug with cycles of different lengths cannot place the day: "
        "flagged (interval or data, >= warning)."),
    "A10_interval_tolerance": (
        "The issue-3 interval semantics carry over to daratumumab: a gap more than a day short "
        "of the phase's gap is `interval` major; a plan day outside the regimen is `interval` "
        "warning; a frequency more often than the phase allows is `interval` major. Rows sit "
        "whole phases away from the tolerance."),
    "A11_premedication": (
        "Both US labels say premedicate before EVERY infusion/injection (SARCLISA 2.2, DARZALEX "
        "2.3, DARZALEX FASPRO 2.3): an info `dose` finding whose rule_id contains 'premed' on "
        "every dose, first or not, IV or SC. For isatuximab later doses this departs from the "
        "seed text (first dose only); rows marked A11 may be reconciled either way. Reconciled "
        "(R8): the isatuximab monograph premedicates every later dose (US label)."),
    "A12_lab_limits": (
        "Liver/renal limits exist for both drugs (seed: 'confirm ... liver and kidney function'; "
        "neither US label adjusts for mild impairment and neither studied severe). Expected: "
        "bilirubin above 1.5 x ULN and ALT/AST above 3 x ULN flagged; CrCl below 15-30 mL/min "
        "flagged; ULN taken from the monograph (the contract has no reference range). Rows: "
        "TBILI 0.6 mg/dL / 10 umol/L, ALT 22, AST 24, CRCL 78 pass; TBILI 6 mg/dL / 100 umol/L, "
        "ALT 600, AST 600, CRCL 10 flagged `contraindication` >= warning. HGB has a lower limit "
        "above 5 g/dL (50 g/L flagged), ANC a lower limit above 0.3 x 10^9/L, PLT above 10."),
    "A13_missing_lab": (
        "Fail closed: with a liver/renal limit in the monograph, no TBILI, no ALT or no CRCL in "
        "the order is a `data` finding >= warning."),
    "A14_age": (
        "Age on the date of scheduled_for (2026-03-02): born 2008-03-03 is 17 y 364 d (flagged), "
        "born 2008-03-02 is 18 exactly (passes). Category contraindication or dose, >= warning. "
        "No birth_date: `data` >= warning (the age check lacks its fact)."),
    "A15_weight": (
        "Plausible adult weight range contains 50-154 kg and excludes 0.5 kg and 700 kg "
        "(`data` or `dose`, >= warning, rule_id has 'weight'). Weight change threshold (monograph) "
        "is between 2 % and 50 %: 70 -> 71 kg passes, 70 -> 154 kg and 154 -> 70 kg are flagged. "
        "A flat SC dose needs no weight: no weight is no finding for DARZALEX FASPRO."),
    "A16_infusion_reaction": (
        "A prior severe infusion reaction to THIS drug (generic or trade name) in conditions or "
        "allergies is `contraindication` >= warning (SARCLISA/DARZALEX: permanently discontinue "
        "for grade 4 / life-threatening reactions). A severe reaction to another drug "
        "(rituximab) is not a finding about this drug."),
    "A17_infection_terms": (
        "'pneumonia' and 'sepsis' are active-infection terms; 'history of pneumonia', "
        "'History of Sepsis', 'resolved sepsis', 'sepsis, resolved', 'pneumonia (resolved)', "
        "'PJP prophylaxis', 'pneumocystis pneumonia prophylaxis' are not active infections."),
    "A18_stale_window": (
        "The stale window for another drug's active order is longer than daratumumab's longest "
        "dosing gap (28 days: else real q4w therapy would look stale) and shorter than a year: an "
        "order scheduled 7 days (or 3) before is concurrent, 365 days before and not renewed is "
        "stale: an info finding (category combination or interval, rule_id with 'stale') and no "
        "combination finding >= warning."),
    "A19_anti_cd38_severity": (
        "Duplicate anti-CD38 therapy (isatuximab with daratumumab, either as an active order or in "
        "current_medications, by any of its names or its ATC code) is `combination` >= major."),
    "A20_childbearing": (
        "'May become pregnant' / 'may be breastfeeding': sex not male and age in the childbearing "
        "range, which contains 30 and excludes 70 (the contract's childbearing-age rule). "
        "Contraception counselling is an info finding (contraindication or dose category, rule_id "
        "with 'contracep'). Absent lactating for such a patient: `data` >= warning ('lactat' or "
        "'breast'). Absent allergies: `data` >= warning ('allerg'); an empty list is known-none."),
    "A21_daratumumab_pregnancy": (
        "DARZALEX has no contraindication but hypersensitivity; pregnancy is embryo-fetal "
        "toxicity (W&P): pregnant daratumumab patient flagged `contraindication` >= major, and a "
        "finding below `contraindicated` never says 'contraindicated'."),
}

# --- the event builder ---------------------------------------------------------------------

EXAMPLE: dict = json.loads((Path(__file__).resolve().parents[2] / "docs" / "examples"
                            / "order-placed.json").read_text(encoding="utf-8"))
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.timezone.utc)
PID = "P-HO2-001"
DROP: Any = object()

CYCLE_DAYS = {"Isa-Pd": 28, "Isa-Kd": 28, "DRd": 28, "DVd": 21}

PRODUCTS: dict[str, dict] = {
    "isa": {"drug": {"name": "isatuximab", "code": {"system": "rxnorm", "value": "2283218"}},
            "dose": (700, "mg"), "route": "IV", "regimen": "Isa-Pd",
            "meds": ["pomalidomide", "dexamethasone"],
            "infusion": {1: (250, 210), 2: (250, 210), 3: (250, 210)}},
    "dara_iv": {"drug": {"name": "daratumumab"}, "dose": (1120, "mg"), "route": "IV",
                "regimen": "DRd", "meds": ["lenalidomide", "dexamethasone"],
                "infusion": {1: (1000, 420), 2: (500, 240), 3: (500, 210)}},
    "dara_sc": {"drug": {"name": "daratumumab and hyaluronidase"}, "dose": (1800, "mg"),
                "route": "SC", "regimen": "DRd", "meds": ["lenalidomide", "dexamethasone"],
                "infusion": None},
}

BASE_LABS: dict[str, tuple[float, str]] = {
    "ANC": (1.8, "10^9/L"), "PLT": (142, "10^9/L"), "HGB": (10.9, "g/dL"),
    "TBILI": (0.6, "mg/dL"), "ALT": (22, "U/L"), "AST": (24, "U/L"), "CRCL": (78, "mL/min"),
}

_seq = iter(range(1, 10**9))


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def when(day: float | str) -> str:
    return day if isinstance(day, str) else iso(T0 + dt.timedelta(days=day))


def plan_position(cycle: int, day: int) -> int:
    """Infusion number implied by the plan: C1D1 first, C1D8 second, anything later subsequent."""
    if (cycle, day) == (1, 1):
        return 1
    if (cycle, day) == (1, 8):
        return 2
    return 3


def _set(doc: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    if value is DROP:
        node.pop(last, None)
    else:
        node[last] = value


def order(kind: str = "isa", day: float | str = 0, *, regimen: Any = (1, 1), n: int | None = None,
          pid: str = PID, oid: str | None = None, labs: dict | None = None,
          d: dict | None = None) -> dict:
    """An order.placed event of product `kind` on `day` (days after 2026-03-02T09:00Z).

    regimen: (cycle, day) with the product's default regimen name, (name, cycle, day), or None.
    n: the infusion number (picks the baseline infusion); default from the plan position.
    labs: {code: (value, unit) | DROP} over the baseline panel (taken 26 h before the dose).
    d: {dotted.path: value | DROP} applied last, on the whole event."""
    p = PRODUCTS[kind]
    e = copy.deepcopy(EXAMPLE)
    k = next(_seq)
    e["event_id"] = f"EVT-HO2-{k:06d}"
    sched = when(day)
    t = dt.datetime.fromisoformat(sched.replace("Z", "+00:00"))
    e["occurred_at"] = iso(t - dt.timedelta(minutes=45))
    o, pt = e["order"], e["patient"]
    o["order_id"] = oid or f"ORD-HO2-{k:06d}"
    o["drug"] = copy.deepcopy(p["drug"])
    o["dose"] = {"value": p["dose"][0], "unit": p["dose"][1]}
    o["route"] = p["route"]
    o["scheduled_for"] = sched
    o.pop("frequency", None)
    if regimen is None:
        o.pop("regimen", None)
        pos = 1
    else:
        name, cyc, dy = regimen if len(regimen) == 3 else (p["regimen"], *regimen)
        o["regimen"] = {"name": name, "cycle": cyc, "day": dy}
        pos = plan_position(cyc, dy)
    number = min(n or pos, 3)
    if p["infusion"] is None:
        o.pop("infusion", None)
    else:
        vol, mins = p["infusion"][number]
        o["infusion"] = {"volume_ml": vol, "duration_min": mins}
    pt["patient_id"] = pid
    taken = iso(t - dt.timedelta(hours=26))
    panel = dict(BASE_LABS)
    panel.update(labs or {})
    pt["labs"] = [{"code": c, "value": v[0], "unit": v[1], "taken_at": taken}
                  for c, v in panel.items() if v is not DROP]
    pt["current_medications"] = [{"name": m} for m in p["meds"]]
    for path, value in (d or {}).items():
        _set(e, path, value)
    return e


def cancel(oid: str, pid: str = PID) -> dict:
    k = next(_seq)
    return {"schema": "rx.order/1", "event_id": f"CXL-HO2-{k:06d}",
            "event_type": "order.cancelled", "occurred_at": iso(T0),
            "order": {"order_id": oid}, "patient": {"patient_id": pid}}


def course(kind: str, regimen: str, days: list[float], *, last: dict | None = None) -> list[dict]:
    """Doses of one patient on `days` (days after C1D1), each placed in the plan by `regimen`'s
    cycle length, each with the infusion of its number; `last` deltas on the last event."""
    length = CYCLE_DAYS[regimen]
    return [order(kind, day, regimen=(regimen, int(day) // length + 1, int(day) % length + 1),
                  n=i + 1, d=(last if i == len(days) - 1 else None))
            for i, day in enumerate(days)]


# --- running and checking -------------------------------------------------------------------

KNOWLEDGE = load_knowledge()


def run(events: list[dict]):
    """Every event through one real Processor, in order; the decision of each placed event."""
    processor = Processor(KNOWLEDGE, DictHistoryStore())
    out = []
    for line, e in enumerate(events, 1):
        handled = processor.handle(json.dumps(e).encode("utf-8"),
                                   FileSource(file="test_knowledge_v2_heldout", line=line), NOW)
        assert handled.kind in ("decision", "cancelled"), (line, handled.kind, handled.outputs)
        out.append(handled.outputs[0] if handled.outputs else None)
    return out


@dataclass(frozen=True)
class Want:
    """A finding: one of `category`, at least `severity`, rule_id containing one of `words`."""
    category: str | tuple[str, ...]
    severity: str
    words: tuple[str, ...] = ()

    def matches(self, f) -> bool:
        cats = (self.category,) if isinstance(self.category, str) else self.category
        return (f.category in cats
                and severity_rank(f.severity) >= severity_rank(self.severity)
                and (not self.words or any(w in f.rule_id.lower() for w in self.words)))


def show(decision) -> list:
    return [(f.rule_id, f.category, f.severity, f.message) for f in decision.findings]


def check(decision, outcome: str, wants=(), absent=(), drug: str | None = None) -> None:
    assert decision is not None, "the last step must be a placed order"
    assert decision.outcome == outcome, (decision.outcome, show(decision))
    if outcome == "approved":
        assert all(severity_rank(f.severity) < severity_rank("warning")
                   for f in decision.findings), show(decision)
    for w in wants:
        hits = [f for f in decision.findings if w.matches(f)]
        assert hits, (f"no finding like {w}", show(decision))
        for f in hits:
            assert f.reference.strip(), f"{f.rule_id} cites no reference"
    if NO_MONOGRAPH not in wants:  # a row about a drug: its monograph must be found
        absent = (*absent, NO_MONOGRAPH)
    for w in absent:
        hits = [f for f in decision.findings if w.matches(f)]
        assert not hits, (f"unexpected finding like {w}", show(decision))
    if drug is not None:
        assert decision.drug == drug, decision.drug


def R(id_: str, description: str, steps: Callable[[], list[dict]], outcome: str, *wants: Want,
      absent: tuple[Want, ...] = (), drug: str | None = None):
    """One row: id, what it means, the events (built lazily), expected outcome and findings."""
    return pytest.param(description, steps, outcome, wants, absent, drug, id=id_)


def one(kind: str = "isa", **kw) -> Callable[[], list[dict]]:
    return lambda: [order(kind, **kw)]


# finding shapes used by many rows
PREMED = Want("dose", "info", ("premed",))
DOSE = Want("dose", "warning")
ROUTE = Want(("dose", "data"), "warning")
NO_MONOGRAPH = Want("data", "warning", ("monograph",))
INFUSION = Want("dose", "warning", ("rate", "infusion", "duration"))
INTERVAL = Want("interval", "warning")
INTERVAL_MAJOR = Want("interval", "major")
SPLIT = Want(("dose", "interval"), "warning")
DATA = Want("data", "warning")
CI = "contraindication"
LIVER = Want(CI, "warning", ("bili", "alt", "ast", "liver", "hepat", "lab", "uln"))
RENAL = Want(CI, "warning", ("crcl", "renal", "creatinine", "kidney", "lab"))
# reconciled (tests/clinical/HELDOUT_NOTES.md R1-R3): the isatuximab monograph's severities
TBILI_ANY = Want(CI, "info", ("tbili", "bili"))
ALT_ANY = Want(CI, "info", ("alt",))
AST_ANY = Want(CI, "info", ("ast",))
CRCL_ANY = Want(CI, "info", ("crcl",))
ALT_INFO, AST_INFO, CRCL_INFO = ALT_ANY, AST_ANY, CRCL_ANY
ANC_LOW = Want(CI, "warning", ("anc", "neutro", "lab"))
PLT_LOW = Want(CI, "warning", ("plt", "platelet", "thrombo", "lab"))
HGB_LOW = Want(CI, "warning", ("hgb", "hemoglobin", "haemoglobin", "anemia", "anaemia", "lab"))
UNIT = Want("data", "warning", ("unit", "lab"))
AGE = Want((CI, "dose"), "warning", ("age", "pediatric", "paediatric", "child", "minor", "adult"))
AGE_DATA = Want("data", "warning", ("age", "birth"))
WEIGHT = Want(("data", "dose"), "warning", ("weight",))
IRR = Want(CI, "warning", ("infusion", "reaction", "irr"))
IRR_OR_ALLERGY = Want(CI, "warning", ("infusion", "reaction", "irr", "allerg", "hypersens"))
INFECTION = Want(CI, "warning", ("infect", "pneumonia", "sepsis"))
STALE = Want(("combination", "interval"), "info", ("stale",))
CD38 = Want("combination", "major", ("cd38", "duplic", "anti"))
COMBINATION_ANY = Want("combination", "warning")
CONTRACEPTION = Want((CI, "dose"), "info", ("contracep",))
LACTATION_DATA = Want("data", "warning", ("lactat", "breast"))
ALLERGY_DATA = Want("data", "warning", ("allerg",))
PREGNANCY = Want(CI, "major", ("pregnan", "fetal", "foetal"))
LACTATION = Want(CI, "warning", ("lactat", "breast"))

MALE = {"patient.sex": "male"}
FEMALE_30 = {"patient.birth_date": "1995-06-01"}
DARA_16 = {"order.dose.value": 16, "order.dose.unit": "mg/kg"}
HALF = {"order.dose.value": 560}  # 8 mg/kg x 70 kg
HALF_INF = {"order.infusion": {"volume_ml": 500, "duration_min": 240}}


def split(*steps: tuple[float, int, int, dict]) -> Callable[[], list[dict]]:
    """Daratumumab IV doses (day, cycle, plan day, deltas) for the split-first-dose rows."""
    return lambda: [order("dara_iv", day, regimen=(cyc, dy), d=dict(HALF_INF, **delta))
                    for day, cyc, dy, delta in steps]


def isa_course(*deltas: dict) -> Callable[[], list[dict]]:
    """Isatuximab doses on days 0, 7, 14, ... (Isa-Pd C1 days 1, 8, 15, 22), deltas per dose."""
    return lambda: [order("isa", 7 * i, regimen=(1, 1 + 7 * i), n=i + 1, d=delta)
                    for i, delta in enumerate(deltas)]


def inf(volume: float, minutes: float) -> dict:
    return {"order.infusion.volume_ml": volume, "order.infusion.duration_min": minutes}


# === 1. products, names, codes, routes, dose forms ===========================================

PRODUCT_ROWS = [
    # isatuximab, IV per kg
    R("isa-baseline-700mg-iv-approved", "the baseline isatuximab order", one("isa"), "approved",
      PREMED, drug="isatuximab"),
    R("isa-trade-name-Sarclisa-approved", "matched by trade name, no code",
      one("isa", d={"order.drug": {"name": "Sarclisa"}}), "approved", drug="isatuximab"),
    R("isa-trade-name-SARCLISA-uppercase-approved", "names are case-insensitive",
      one("isa", d={"order.drug": {"name": "SARCLISA"}}), "approved", drug="isatuximab"),
    R("isa-alias-isatuximab-irfc-approved", "the US suffix name from the issue",
      one("isa", d={"order.drug": {"name": "isatuximab-irfc"}}), "approved", drug="isatuximab"),
    R("isa-alias-Isatuximab-IRFC-mixed-case-approved", "alias, case-insensitive",
      one("isa", d={"order.drug": {"name": "Isatuximab-IRFC"}}), "approved", drug="isatuximab"),
    R("isa-rxnorm-code-only-unknown-name-approved", "A04: RxNorm 2283218 matches by code",
      one("isa", d={"order.drug": {"name": "ISA 500MG/25ML VIAL",
                                   "code": {"system": "rxnorm", "value": "2283218"}}}),
      "approved", drug="isatuximab"),
    R("isa-atc-code-only-unknown-name-approved", "A04: ATC L01FC02 matches by code",
      one("isa", d={"order.drug": {"name": "anti-CD38 infusion (isa)",
                                   "code": {"system": "atc", "value": "L01FC02"}}}),
      "approved", drug="isatuximab"),
    R("isa-name-matches-code-unknown-still-monograph", "name matches: never 'no monograph'",
      one("isa", d={"order.drug": {"name": "isatuximab",
                                   "code": {"system": "rxnorm", "value": "99999999"}}}),
      "approved", absent=(NO_MONOGRAPH,), drug="isatuximab"),
    R("nothing-matches-name-no-code-no-monograph", "'no monograph' when nothing matches",
      one("isa", d={"order.drug": {"name": "zz-unknownmab"}}), "flagged", NO_MONOGRAPH,
      drug="zz-unknownmab"),
    R("nothing-matches-name-or-code-no-monograph", "unknown name and unknown code",
      one("isa", d={"order.drug": {"name": "zz-unknownmab",
                                   "code": {"system": "rxnorm", "value": "99999999"}}}),
      "flagged", NO_MONOGRAPH, drug="zz-unknownmab"),
    R("isa-per-kg-unit-10mg-per-kg-approved", "per-kg dose ordered in mg/kg",
      one("isa", d={"order.dose.value": 10, "order.dose.unit": "mg/kg"}), "approved"),
    R("isa-0.7-g-approved", "700 mg written in grams",
      one("isa", d={"order.dose.value": 0.7, "order.dose.unit": "g"}), "approved"),
    R("isa-1120mg-16mg-per-kg-daratumumab-dose-flagged", "A05: the daratumumab per-kg dose",
      one("isa", d={"order.dose.value": 1120}), "flagged", DOSE),
    R("isa-1400mg-20mg-per-kg-flagged", "twice the labelled dose (contract example)",
      one("isa", d={"order.dose.value": 1400}), "flagged", DOSE),
    R("isa-sc-route-iv-only-product-flagged", "A01: SC order of an IV-only product",
      one("isa", d={"order.route": "SC"}), "flagged", ROUTE),
    R("isa-Sarclisa-sc-1400mg-flat-flagged", "A01: no isatuximab SC product in the US label",
      one("isa", d={"order.drug": {"name": "Sarclisa"}, "order.route": "SC",
                    "order.dose.value": 1400, "order.infusion": DROP}), "flagged", ROUTE),
    R("isa-350mg-half-dose-c1d1-no-split-flagged", "A06: isatuximab has no split first dose",
      one("isa", d={"order.dose.value": 350}), "flagged", DOSE),
    # daratumumab IV, per kg
    R("dara-iv-baseline-1120mg-16mg-per-kg-approved", "the baseline daratumumab IV order",
      one("dara_iv"), "approved", PREMED, drug="daratumumab"),
    R("dara-iv-trade-name-Darzalex-approved", "trade name of the IV product",
      one("dara_iv", d={"order.drug": {"name": "Darzalex"}}), "approved", drug="daratumumab"),
    R("dara-iv-trade-name-DARZALEX-uppercase-approved", "case-insensitive",
      one("dara_iv", d={"order.drug": {"name": "DARZALEX"}}), "approved", drug="daratumumab"),
    R("dara-iv-16-mg-per-kg-unit-approved", "per-kg dose ordered in mg/kg",
      one("dara_iv", d=DARA_16), "approved"),
    R("dara-iv-1.12-g-approved", "1120 mg written in grams",
      one("dara_iv", d={"order.dose.value": 1.12, "order.dose.unit": "g"}), "approved"),
    R("dara-iv-atc-code-only-unknown-name-approved", "A04: ATC L01FC01 matches by code",
      one("dara_iv", d={"order.drug": {"name": "anti-CD38 infusion (dara)",
                                       "code": {"system": "atc", "value": "L01FC01"}}}),
      "approved", drug="daratumumab"),
    R("dara-iv-1400mg-20mg-per-kg-flagged", "A05: 25 % over 16 mg/kg",
      one("dara_iv", d={"order.dose.value": 1400}), "flagged", DOSE),
    R("dara-iv-700mg-10mg-per-kg-isatuximab-dose-flagged", "A05: 37.5 % under 16 mg/kg",
      one("dara_iv", d={"order.dose.value": 700}), "flagged", DOSE),
    R("dara-iv-1800mg-sc-flat-dose-given-iv-flagged", "the SC flat dose on the IV product",
      one("dara_iv", d={"order.dose.value": 1800}), "flagged", DOSE),
    R("dara-iv-no-weight-data", "a per-kg dose needs the weight",
      one("dara_iv", d={"patient.weight_kg": DROP}), "flagged",
      Want("data", "warning", ("weight",))),
    R("dara-Darzalex-sc-route-iv-only-product-flagged", "A02: DARZALEX is the IV product",
      one("dara_iv", d={"order.drug": {"name": "Darzalex"}, "order.route": "SC",
                        "order.dose.value": 1800, "order.infusion": DROP}), "flagged", ROUTE),
    # daratumumab SC, flat 1,800 mg
    R("dara-sc-baseline-1800mg-flat-approved", "daratumumab and hyaluronidase SC 1,800 mg",
      one("dara_sc"), "approved", PREMED, drug="daratumumab"),
    R("dara-sc-proper-name-fihj-approved", "A03: the US proper name",
      one("dara_sc", d={"order.drug": {"name": "daratumumab and hyaluronidase-fihj"}}),
      "approved", drug="daratumumab"),
    R("dara-sc-Darzalex-Faspro-approved", "trade name of the SC product",
      one("dara_sc", d={"order.drug": {"name": "Darzalex Faspro"}}), "approved",
      drug="daratumumab"),
    R("dara-sc-DARZALEX-FASPRO-uppercase-approved", "case-insensitive",
      one("dara_sc", d={"order.drug": {"name": "DARZALEX FASPRO"}}), "approved",
      drug="daratumumab"),
    R("dara-sc-generic-name-sc-route-selects-sc-product", "A02: name + route pick the product",
      one("dara_sc", d={"order.drug": {"name": "daratumumab"}}), "approved", drug="daratumumab"),
    R("dara-sc-1.8-g-approved", "1800 mg written in grams",
      one("dara_sc", d={"order.dose.value": 1.8, "order.dose.unit": "g"}), "approved"),
    R("dara-sc-flat-dose-40kg-approved", "flat: not scaled by weight (would be 45 mg/kg)",
      one("dara_sc", d={"patient.weight_kg": 40}), "approved"),
    R("dara-sc-flat-dose-150kg-approved", "flat: not scaled by weight (would be 12 mg/kg)",
      one("dara_sc", d={"patient.weight_kg": 150}), "approved"),
    R("dara-sc-flat-dose-no-weight-approved", "A15: a flat dose needs no weight",
      one("dara_sc", d={"patient.weight_kg": DROP}), "approved"),
    R("dara-sc-1120mg-iv-per-kg-dose-given-sc-flagged", "the IV dose on the SC product",
      one("dara_sc", d={"order.dose.value": 1120}), "flagged", DOSE),
    R("dara-sc-3600mg-double-flat-flagged", "twice the flat dose",
      one("dara_sc", d={"order.dose.value": 3600}), "flagged", DOSE),
    R("dara-sc-16-mg-per-kg-on-flat-product-flagged", "a per-kg order of a flat product",
      one("dara_sc", d=DARA_16), "flagged", Want(("dose", "data"), "warning")),
    R("dara-Darzalex-Faspro-iv-route-flagged", "A02: DARZALEX FASPRO is SC only",
      one("dara_sc", d={"order.drug": {"name": "Darzalex Faspro"}, "order.route": "IV",
                        "order.infusion": {"volume_ml": 500, "duration_min": 210}}),
      "flagged", ROUTE),
    R("dara-and-hyaluronidase-iv-route-flagged", "A02: the SC product given IV",
      one("dara_sc", d={"order.route": "IV",
                        "order.infusion": {"volume_ml": 500, "duration_min": 210}}),
      "flagged", ROUTE),
]


# === 2. the split first dose (daratumumab IV, 8 mg/kg on days 1 and 2) ========================

SPLIT_ROWS = [
    R("split-day1-8mg-per-kg-c1d1-approved", "first half on C1D1",
      split((0, 1, 1, HALF)), "approved"),
    R("split-day2-8mg-per-kg-c1d2-after-day1-approved", "second half a day later: no interval",
      split((0, 1, 1, HALF), (1, 1, 2, HALF)), "approved", absent=(INTERVAL,)),
    R("split-then-week2-16mg-per-kg-c1d8-approved", "week 2 full dose 6 days after day 2",
      split((0, 1, 1, HALF), (1, 1, 2, HALF), (7, 1, 8, {})), "approved"),
    R("split-then-week3-c1d15-approved", "week 3 as usual",
      split((0, 1, 1, HALF), (1, 1, 2, HALF), (7, 1, 8, {}),
            (14, 1, 15, {"order.infusion": {"volume_ml": 500, "duration_min": 210}})),
      "approved"),
    R("split-half-day1-then-full-day2-flagged", "day 2 must be the other half",
      split((0, 1, 1, HALF), (1, 1, 2, {})), "flagged", SPLIT),
    R("split-full-day1-then-half-day2-flagged", "no second half after a full first dose",
      lambda: [order("dara_iv", 0), order("dara_iv", 1, regimen=(1, 2), d=dict(HALF_INF, **HALF))],
      "flagged", SPLIT),
    R("split-full-day1-then-full-day2-flagged", "two full doses a day apart",
      lambda: [order("dara_iv", 0), order("dara_iv", 1, regimen=(1, 2), d=HALF_INF)],
      "flagged", SPLIT),
    R("split-second-half-on-day3-flagged", "the halves are days 1 and 2",
      split((0, 1, 1, HALF), (2, 1, 3, HALF)), "flagged", SPLIT),
    R("split-half-dose-at-c1d8-flagged", "8 mg/kg on a non-split day",
      split((7, 1, 8, HALF)), "flagged", DOSE),
    R("split-half-dose-at-c2d1-flagged", "8 mg/kg in cycle 2",
      split((28, 2, 1, HALF)), "flagged", DOSE),
    R("split-third-half-at-c1d8-flagged", "after both halves, week 2 is a full dose",
      split((0, 1, 1, HALF), (1, 1, 2, HALF), (7, 1, 8, HALF)), "flagged", DOSE),
    R("isa-no-split-350mg-day1-and-day2-flagged", "A06: isatuximab has no split",
      lambda: [order("isa", 0, d={"order.dose.value": 350}),
               order("isa", 1, regimen=(1, 2), d={"order.dose.value": 350})],
      "flagged", SPLIT),
]


# === 3. infusion window per dose number and maximum rate ======================================

INFUSION_ROWS = [
    R("isa-dose1-250ml-210min-71mlh-approved", "seed 3-4 h, under 150 mL/h",
      one("isa"), "approved"),
    R("isa-dose1-250ml-75min-200mlh-over-first-max-flagged", "A07: first infusion max 150 mL/h",
      one("isa", d=inf(250, 75)), "flagged", INFUSION),
    R("isa-dose1-250ml-60min-250mlh-flagged", "far over any rate",
      one("isa", d=inf(250, 60)), "flagged", INFUSION),
    R("isa-dose2-250ml-210min-approved", "slow second infusion",
      isa_course({}, {}), "approved"),
    R("isa-dose2-250ml-60min-250mlh-flagged", "A07: second infusion max 200 mL/h",
      isa_course({}, inf(250, 60)), "flagged", INFUSION),
    # the seed's 3-4 h holds for every isatuximab dose: the label's 75 min is too fast (R6)
    R("isa-dose3-250ml-75min-below-seed-3h-flagged", "R6: the seed window, not the label's",
      isa_course({}, {}, inf(250, 75)), "flagged", INFUSION),
    R("isa-dose3-250ml-180min-seed-minimum-approved", "R6: exactly 3 h",
      isa_course({}, {}, inf(250, 180)), "approved", absent=(INFUSION,)),
    R("isa-dose3-250ml-179min-below-seed-minimum-flagged", "R6: just under 3 h",
      isa_course({}, {}, inf(250, 179)), "flagged", INFUSION),
    R("isa-dose3-250ml-74min-202.7mlh-flagged", "A07: just over 200 mL/h",
      isa_course({}, {}, inf(250, 74)), "flagged", INFUSION),
    R("isa-dose3-250ml-210min-approved", "seed 3-4 h valid for later doses",
      isa_course({}, {}, {}), "approved"),
    # the isatuximab monograph gives no maximum rate (the seed has none): no volume is needed (R7)
    R("isa-no-volume-no-max-rate-approved", "R7: nothing compares the volume",
      one("isa", d={"order.infusion.volume_ml": DROP}), "approved",
      absent=(Want("data", "info", ("volume",)),)),
    R("dara-iv-dose1-1000ml-420min-approved", "A07: ~7 h first infusion",
      one("dara_iv"), "approved"),
    R("dara-iv-dose1-500ml-210min-subsequent-style-flagged", "first infusion is longer",
      one("dara_iv", d=inf(500, 210)), "flagged", INFUSION),
    R("dara-iv-dose1-1000ml-240min-250mlh-flagged", "over 200 mL/h",
      one("dara_iv", d=inf(1000, 240)), "flagged", INFUSION),
    R("dara-iv-dose2-500ml-240min-approved", "A07: ~4 h second infusion",
      lambda: course("dara_iv", "DRd", [0, 7]), "approved"),
    R("dara-iv-dose3-500ml-210min-approved", "A07: ~3.25 h subsequent infusion",
      lambda: course("dara_iv", "DRd", [0, 7, 14]), "approved"),
    R("dara-iv-dose3-500ml-120min-250mlh-flagged", "over 200 mL/h",
      lambda: course("dara_iv", "DRd", [0, 7, 14], last=inf(500, 120)), "flagged", INFUSION),
    R("dara-iv-dose3-700ml-210min-exactly-200mlh-approved", "A07: exactly the max rate",
      lambda: course("dara_iv", "DRd", [0, 7, 14], last=inf(700, 210)), "approved"),
    R("dara-iv-dose3-701ml-210min-200.3mlh-flagged", "A07: just over the max rate",
      lambda: course("dara_iv", "DRd", [0, 7, 14], last=inf(701, 210)), "flagged", INFUSION),
    R("dara-iv-no-volume-data", "A08: rate needs the volume",
      one("dara_iv", d={"order.infusion.volume_ml": DROP}), "flagged", DATA),
    R("dara-iv-no-duration-data", "contract: an infusion needs duration_min",
      one("dara_iv", d={"order.infusion.duration_min": DROP}), "flagged", DATA),
    R("dara-sc-no-infusion-block-approved", "A08: an SC injection is no infusion",
      one("dara_sc"), "approved", absent=(DATA,)),
]


# === 4. the plan: regimen by name, cycle length, phases =======================================

W8 = [7 * i for i in range(8)]            # weeks 1-8: days 0..49
W9 = [7 * i for i in range(9)]            # weeks 1-9: days 0..56
Q2 = W8 + [56 + 14 * i for i in range(8)]  # + weeks 9, 11, ..., 23 (days 56..154)

PLAN_ROWS = [
    # DRd, 28-day cycles: weekly weeks 1-8, every 2 weeks weeks 9-24, every 4 weeks after
    R("DRd-dose2-7d-approved", "weekly phase", lambda: course("dara_iv", "DRd", [0, 7]),
      "approved"),
    R("DRd-dose2-3d-flagged", "3 days in the weekly phase",
      lambda: course("dara_iv", "DRd", [0, 3]), "flagged", INTERVAL_MAJOR),
    R("DRd-dose9-week9-7d-after-week8-approved", "C3D1 starts the 2-weekly phase",
      lambda: course("dara_iv", "DRd", W8 + [56]), "approved"),
    R("DRd-dose10-7d-after-week9-flagged", "week 10 (C3D8) is inside the 2-weekly phase",
      lambda: course("dara_iv", "DRd", W9 + [63]), "flagged", INTERVAL_MAJOR),
    R("DRd-dose10-week11-14d-approved", "C3D15",
      lambda: course("dara_iv", "DRd", W9 + [70]), "approved"),
    R("DRd-dose17-week25-14d-after-week23-approved", "C7D1 ends the 2-weekly phase",
      lambda: course("dara_iv", "DRd", Q2 + [168]), "approved"),
    R("DRd-dose18-week27-14d-flagged", "C7D15: every 4 weeks after week 24",
      lambda: course("dara_iv", "DRd", Q2 + [168, 182]), "flagged", INTERVAL_MAJOR),
    R("DRd-dose18-week29-28d-approved", "C8D1",
      lambda: course("dara_iv", "DRd", Q2 + [168, 196]), "approved"),
    # DVd, 21-day cycles: weekly weeks 1-9, every 3 weeks weeks 10-24
    R("DVd-dose9-week9-approved", "C3D15 weekly",
      lambda: course("dara_iv", "DVd", W8 + [56]), "approved"),
    R("DVd-dose10-week10-7d-after-week9-approved", "C4D1: same days as the DRd row that fails",
      lambda: course("dara_iv", "DVd", W9 + [63]), "approved"),
    R("DVd-dose11-7d-after-week10-flagged", "C4D8 inside the 3-weekly phase",
      lambda: course("dara_iv", "DVd", W9 + [63, 70]), "flagged", INTERVAL_MAJOR),
    R("DVd-dose11-14d-after-week10-flagged", "C4D15: 14 d in the 3-weekly phase",
      lambda: course("dara_iv", "DVd", W9 + [63, 77]), "flagged", INTERVAL_MAJOR),
    R("DVd-dose11-week13-21d-approved", "C5D1",
      lambda: course("dara_iv", "DVd", W9 + [63, 84]), "approved"),
    # plan days of single orders (the plan started before the stream)
    R("DRd-c1d22-on-plan-approved", "28-day cycle has a day 22", one("dara_iv", regimen=(1, 22)),
      "approved"),
    R("DVd-c1d22-outside-21-day-cycle-flagged", "a 21-day cycle has no day 22",
      one("dara_iv", regimen=("DVd", 1, 22)), "flagged", Want(("interval", "data"), "warning")),
    R("DVd-c1d15-on-plan-approved", "weekly cycle 1", one("dara_iv", regimen=("DVd", 1, 15)),
      "approved"),
    R("DRd-c3d8-off-plan-flagged", "cycle 3 is days 1 and 15", one("dara_iv", regimen=(3, 8)),
      "flagged", INTERVAL),
    R("DVd-c3d8-on-plan-approved", "cycle 3 of DVd is weekly",
      one("dara_iv", regimen=("DVd", 3, 8)), "approved"),
    R("DRd-c3d15-on-plan-approved", "", one("dara_iv", regimen=(3, 15)), "approved"),
    R("DVd-c4d8-off-plan-flagged", "cycles 4-8 of DVd are day 1 only",
      one("dara_iv", regimen=("DVd", 4, 8)), "flagged", INTERVAL),
    R("DVd-c4d1-on-plan-approved", "", one("dara_iv", regimen=("DVd", 4, 1)), "approved"),
    R("DRd-c7d15-off-plan-flagged", "cycle 7+ is day 1 only", one("dara_iv", regimen=(7, 15)),
      "flagged", INTERVAL),
    R("DRd-c7d1-on-plan-approved", "", one("dara_iv", regimen=(7, 1)), "approved"),
    R("dara-unknown-regimen-name-flagged", "A09: an unknown regimen cannot place the day",
      one("dara_iv", regimen=("ZZ-unknown", 1, 22)), "flagged",
      Want(("interval", "data"), "warning")),
    R("Isa-Pd-c1d22-on-plan-approved", "", one("isa", regimen=(1, 22)), "approved"),
    R("Isa-Pd-c2d8-off-plan-flagged", "cycle 2+ is days 1 and 15", one("isa", regimen=(2, 8)),
      "flagged", INTERVAL),
    R("Isa-Kd-c2d15-on-plan-approved", "28-day Isa-Kd", one("isa", regimen=("Isa-Kd", 2, 15)),
      "approved"),
    R("Isa-Kd-c2d8-off-plan-flagged", "", one("isa", regimen=("Isa-Kd", 2, 8)), "flagged",
      INTERVAL),
]


def freq(count: int, period: float, unit: str) -> dict:
    return {"order.frequency": {"count": count, "period": period, "period_unit": unit}}


FREQUENCY_ROWS = [
    R("DRd-c1d8-1-per-7d-approved", "weekly phase", one("dara_iv", regimen=(1, 8),
                                                       d=freq(1, 7, "d")), "approved"),
    R("DRd-c3d1-1-per-7d-flagged", "2-weekly phase", one("dara_iv", regimen=(3, 1),
                                                        d=freq(1, 7, "d")), "flagged",
      INTERVAL_MAJOR),
    R("DRd-c3d1-1-per-14d-approved", "", one("dara_iv", regimen=(3, 1), d=freq(1, 14, "d")),
      "approved"),
    R("DRd-c7d1-1-per-14d-flagged", "4-weekly phase", one("dara_iv", regimen=(7, 1),
                                                         d=freq(1, 14, "d")), "flagged",
      INTERVAL_MAJOR),
    R("DRd-c7d1-1-per-28d-approved", "", one("dara_iv", regimen=(7, 1), d=freq(1, 28, "d")),
      "approved"),
    R("DRd-c7d1-1-per-4wk-approved", "", one("dara_iv", regimen=(7, 1), d=freq(1, 4, "wk")),
      "approved"),
    R("DVd-c2d1-1-per-7d-approved", "weekly weeks 1-9",
      one("dara_iv", regimen=("DVd", 2, 1), d=freq(1, 7, "d")), "approved"),
    R("DVd-c4d1-1-per-21d-approved", "3-weekly weeks 10-24",
      one("dara_iv", regimen=("DVd", 4, 1), d=freq(1, 21, "d")), "approved"),
    R("DVd-c4d1-1-per-3wk-approved", "",
      one("dara_iv", regimen=("DVd", 4, 1), d=freq(1, 3, "wk")), "approved"),
    R("DVd-c4d1-1-per-14d-flagged", "more often than every 3 weeks",
      one("dara_iv", regimen=("DVd", 4, 1), d=freq(1, 14, "d")), "flagged", INTERVAL_MAJOR),
]


# === 5. premedication before every infusion =====================================================

PREMED_ROWS = [
    R("isa-dose1-premed-info", "first infusion", one("isa"), "approved", PREMED),
    R("isa-dose3-premed-info", "A11: the US label premedicates every infusion",
      isa_course({}, {}, {}), "approved", PREMED),
    R("dara-iv-dose1-premed-info", "", one("dara_iv"), "approved", PREMED),
    R("dara-iv-dose3-premed-info", "every infusion",
      lambda: course("dara_iv", "DRd", [0, 7, 14]), "approved", PREMED),
    R("dara-iv-c7d1-premed-info", "late in the plan", one("dara_iv", regimen=(7, 1)),
      "approved", PREMED),
    R("dara-sc-dose1-premed-info", "SC too", one("dara_sc"), "approved", PREMED),
    R("dara-sc-dose2-premed-info", "every SC dose",
      lambda: course("dara_sc", "DRd", [0, 7]), "approved", PREMED),
]


# === 6. laboratory limits and units ============================================================

MICRO, MU = "\u00b5", "\u03bc"

LAB_ROWS = [
    # unit spellings of the existing labs: same values as the baseline, approved
    R("anc-10*9/L-ucum-approved", "", one("isa", labs={"ANC": (1.8, "10*9/L")}), "approved",
      absent=(UNIT,)),
    R("anc-10^9/l-lowercase-approved", "", one("isa", labs={"ANC": (1.8, "10^9/l")}),
      "approved", absent=(UNIT,)),
    R("anc-1800-cells/uL-approved", "", one("isa", labs={"ANC": (1800, "cells/uL")}),
      "approved", absent=(UNIT,)),
    R("anc-1800-cells/micro-sign-L-approved", "U+00B5 as in the issue",
      one("isa", labs={"ANC": (1800, f"cells/{MICRO}L")}), "approved", absent=(UNIT,)),
    R("anc-1800-cells/greek-mu-L-approved", "U+03BC",
      one("isa", labs={"ANC": (1800, f"cells/{MU}L")}), "approved", absent=(UNIT,)),
    R("anc-1.8-10*3/uL-approved", "10^3/uL = 10^9/L",
      one("isa", labs={"ANC": (1.8, "10*3/uL")}), "approved", absent=(UNIT,)),
    R("anc-0.3-10*9/L-flagged", "", one("isa", labs={"ANC": (0.3, "10*9/L")}), "flagged",
      ANC_LOW),
    R("anc-0.3-10^9/l-flagged", "", one("isa", labs={"ANC": (0.3, "10^9/l")}), "flagged",
      ANC_LOW),
    R("anc-300-cells/micro-sign-L-flagged", "",
      one("isa", labs={"ANC": (300, f"cells/{MICRO}L")}), "flagged", ANC_LOW),
    R("anc-300-cells/uL-flagged", "", one("isa", labs={"ANC": (300, "cells/uL")}), "flagged",
      ANC_LOW),
    R("plt-142-10*9/L-approved", "", one("isa", labs={"PLT": (142, "10*9/L")}), "approved"),
    R("plt-142-10^9/l-approved", "", one("isa", labs={"PLT": (142, "10^9/l")}), "approved"),
    R("plt-10-10*9/L-flagged", "", one("isa", labs={"PLT": (10, "10*9/L")}), "flagged",
      PLT_LOW),
    R("plt-10000-cells/micro-sign-L-flagged", "",
      one("isa", labs={"PLT": (10000, f"cells/{MICRO}L")}), "flagged", PLT_LOW),
    R("hgb-109-g/l-approved", "", one("isa", labs={"HGB": (109, "g/l")}), "approved",
      absent=(UNIT,)),
    R("hgb-109-g/L-approved", "", one("isa", labs={"HGB": (109, "g/L")}), "approved"),
    R("hgb-10.9-g/dl-lowercase-approved", "", one("isa", labs={"HGB": (10.9, "g/dl")}),
      "approved"),
    R("hgb-50-g/l-is-5-g/dL-flagged", "A12: g/l not read as g/dL",
      one("isa", labs={"HGB": (50, "g/l")}), "flagged", HGB_LOW),
    # liver: above the upper limit of normal
    R("tbili-0.6-mg/dL-approved", "", one("isa"), "approved"),
    R("tbili-10-umol/L-approved", "", one("isa", labs={"TBILI": (10, "umol/L")}), "approved",
      absent=(UNIT,)),
    R("tbili-10-micro-mol/L-approved", "",
      one("isa", labs={"TBILI": (10, f"{MICRO}mol/L")}), "approved", absent=(UNIT,)),
    R("tbili-0.6-mg/dl-lowercase-approved", "", one("isa", labs={"TBILI": (0.6, "mg/dl")}),
      "approved", absent=(UNIT,)),
    R("tbili-6-mg/dL-5xULN-flagged", "A12", one("isa", labs={"TBILI": (6, "mg/dL")}),
      "flagged", LIVER),
    R("tbili-100-umol/L-flagged", "A12", one("isa", labs={"TBILI": (100, "umol/L")}),
      "flagged", LIVER),
    R("tbili-100-micro-mol/L-flagged", "A12",
      one("isa", labs={"TBILI": (100, f"{MICRO}mol/L")}), "flagged", LIVER),
    # bilirubin on its limit, 1.5 x ULN (1.2 mg/dL) = 1.8 mg/dL, both sides (reconciled, R1)
    R("tbili-1.8-mg/dL-at-1.5xULN-approved", "R1", one("isa", labs={"TBILI": (1.8, "mg/dL")}),
      "approved", absent=(TBILI_ANY,)),
    R("tbili-1.81-mg/dL-above-1.5xULN-flagged", "R1",
      one("isa", labs={"TBILI": (1.81, "mg/dL")}), "flagged", LIVER),
    # ALT/AST above 3 x ULN (40 U/L) = 120 U/L: an info finding, the order passes (reconciled, R2)
    R("alt-120-U/L-at-3xULN-approved", "R2", one("isa", labs={"ALT": (120, "U/L")}),
      "approved", absent=(ALT_ANY,)),
    R("alt-121-U/L-above-3xULN-info", "R2", one("isa", labs={"ALT": (121, "U/L")}),
      "approved", ALT_INFO),
    R("alt-600-U/L-info", "R2", one("isa", labs={"ALT": (600, "U/L")}), "approved", ALT_INFO),
    R("alt-600-u/l-lowercase-info", "R2", one("isa", labs={"ALT": (600, "u/l")}), "approved",
      ALT_INFO),
    R("ast-120-U/L-at-3xULN-approved", "R2", one("isa", labs={"AST": (120, "U/L")}),
      "approved", absent=(AST_ANY,)),
    R("ast-121-U/L-above-3xULN-info", "R2", one("isa", labs={"AST": (121, "U/L")}),
      "approved", AST_INFO),
    R("ast-600-U/L-info", "R2", one("isa", labs={"AST": (600, "U/L")}), "approved", AST_INFO),
    R("alt-22-u/l-lowercase-approved", "", one("isa", labs={"ALT": (22, "u/l")}), "approved",
      absent=(UNIT,)),
    R("alt-unknown-unit-mmHg-data", "contract: unconvertible unit is data",
      one("isa", labs={"ALT": (22, "mmHg")}), "flagged", DATA),
    # renal: below
    R("crcl-78-mL/min-approved", "", one("isa"), "approved"),
    R("crcl-78-ml/min-lowercase-approved", "", one("isa", labs={"CRCL": (78, "ml/min")}),
      "approved", absent=(UNIT,)),
    # below 15 mL/min: an info finding, the order passes (reconciled, R3)
    R("crcl-15-mL/min-at-limit-approved", "R3", one("isa", labs={"CRCL": (15, "mL/min")}),
      "approved", absent=(CRCL_ANY,)),
    R("crcl-14.9-mL/min-below-limit-info", "R3", one("isa", labs={"CRCL": (14.9, "mL/min")}),
      "approved", CRCL_INFO),
    R("crcl-10-mL/min-info", "R3", one("isa", labs={"CRCL": (10, "mL/min")}), "approved",
      CRCL_INFO),
    R("crcl-10-ml/min-lowercase-info", "R3", one("isa", labs={"CRCL": (10, "ml/min")}),
      "approved", CRCL_INFO),
    # absent liver/renal labs (reconciled, R4): bilirubin, a `warning` limit on the liver function
    # the seed says to confirm before use, is required (fail closed); the `info` limits ALT and
    # CRCL are not. A result that is given is checked (the rows above)
    R("tbili-absent-data", "R4", one("isa", labs={"TBILI": DROP}), "flagged",
      Want("data", "warning", ("tbili",))),
    R("alt-absent-no-data-finding", "R4", one("isa", labs={"ALT": DROP}), "approved",
      absent=(Want("data", "info", ("alt",)),)),
    R("crcl-absent-no-data-finding", "R4", one("isa", labs={"CRCL": DROP}), "approved",
      absent=(Want("data", "info", ("crcl",)),)),
    # daratumumab: the same limits
    # a bilirubin is required for daratumumab too, and ALT/CRCL are not (R12)
    R("dara-tbili-absent-data", "R12", one("dara_iv", labs={"TBILI": DROP}), "flagged",
      Want("data", "warning", ("tbili",))),
    R("dara-sc-tbili-absent-data", "R12", one("dara_sc", labs={"TBILI": DROP}), "flagged",
      Want("data", "warning", ("tbili",))),
    R("dara-alt-absent-no-data-finding", "R12", one("dara_iv", labs={"ALT": DROP}), "approved",
      absent=(Want("data", "info", ("alt",)),)),
    R("dara-crcl-absent-no-data-finding", "R12", one("dara_iv", labs={"CRCL": DROP}),
      "approved", absent=(Want("data", "info", ("crcl",)),)),
    R("dara-tbili-6-mg/dL-flagged", "A12", one("dara_iv", labs={"TBILI": (6, "mg/dL")}),
      "flagged", LIVER),
    # the isatuximab limits and severities (R1-R3), on the boundary both sides (R9)
    R("dara-tbili-1.8-mg/dL-at-1.5xULN-approved", "R9",
      one("dara_iv", labs={"TBILI": (1.8, "mg/dL")}), "approved", absent=(TBILI_ANY,)),
    R("dara-tbili-1.81-mg/dL-above-1.5xULN-flagged", "R9",
      one("dara_iv", labs={"TBILI": (1.81, "mg/dL")}), "flagged", LIVER),
    R("dara-alt-120-U/L-at-3xULN-approved", "R9", one("dara_iv", labs={"ALT": (120, "U/L")}),
      "approved", absent=(ALT_ANY,)),
    R("dara-alt-121-U/L-above-3xULN-info", "R9", one("dara_iv", labs={"ALT": (121, "U/L")}),
      "approved", ALT_INFO),
    R("dara-crcl-15-mL/min-at-limit-approved", "R9",
      one("dara_iv", labs={"CRCL": (15, "mL/min")}), "approved", absent=(CRCL_ANY,)),
    R("dara-crcl-14.9-mL/min-below-limit-info", "R9",
      one("dara_iv", labs={"CRCL": (14.9, "mL/min")}), "approved", CRCL_INFO),
    R("dara-crcl-10-info", "R9", one("dara_iv", labs={"CRCL": (10, "mL/min")}), "approved",
      CRCL_INFO),
    R("dara-anc-0.3-10*9/L-flagged", "", one("dara_iv", labs={"ANC": (0.3, "10*9/L")}),
      "flagged", ANC_LOW),
    R("dara-anc-1800-cells/micro-sign-L-approved", "",
      one("dara_iv", labs={"ANC": (1800, f"cells/{MICRO}L")}), "approved"),
]


# === 7. patient limits: age, weight plausibility, weight change ================================

def weights(kind: str, kg: list[float], mg: list[float], pids: list[str] | None = None):
    return lambda: [order(kind, 7 * i, regimen=(1, 1 + 7 * i), n=i + 1,
                          pid=(pids[i] if pids else PID),
                          d={"patient.weight_kg": w, "order.dose.value": m})
                    for i, (w, m) in enumerate(zip(kg, mg))]


PATIENT_ROWS = [
    R("age-17y364d-flagged", "A14: born 2008-03-03, dose on 2026-03-02",
      one("isa", d=dict(MALE, **{"patient.birth_date": "2008-03-03"})), "flagged", AGE),
    R("age-18y-exactly-approved", "A14: 18th birthday on the dose day",
      one("isa", d=dict(MALE, **{"patient.birth_date": "2008-03-02"})), "approved",
      absent=(AGE,)),
    R("age-18y1d-approved", "", one("isa", d=dict(MALE, **{"patient.birth_date": "2008-03-01"})),
      "approved"),
    R("age-15y-flagged", "", one("isa", d=dict(MALE, **{"patient.birth_date": "2010-06-01"})),
      "flagged", AGE),
    R("dara-age-17y364d-flagged", "",
      one("dara_iv", d=dict(MALE, **{"patient.birth_date": "2008-03-03"})), "flagged", AGE),
    R("dara-age-18y-exactly-approved", "",
      one("dara_iv", d=dict(MALE, **{"patient.birth_date": "2008-03-02"})), "approved"),
    R("age-unknown-no-birth-date-data", "A14: the age check lacks its fact",
      one("isa", d=dict(MALE, **{"patient.birth_date": DROP})), "flagged", AGE_DATA),
    # plausibility (the dose is consistent with the weight, so only plausibility can fire)
    R("weight-0.5kg-5mg-implausible-flagged", "A15", one("isa", d={"patient.weight_kg": 0.5,
                                                                   "order.dose.value": 5}),
      "flagged", WEIGHT),
    R("weight-700kg-7000mg-implausible-flagged", "A15",
      one("isa", d={"patient.weight_kg": 700, "order.dose.value": 7000}), "flagged", WEIGHT),
    R("weight-50kg-500mg-approved", "", one("isa", d={"patient.weight_kg": 50,
                                                     "order.dose.value": 500}), "approved"),
    R("weight-120kg-1200mg-approved", "", one("isa", d={"patient.weight_kg": 120,
                                                       "order.dose.value": 1200}), "approved"),
    R("weight-154kg-1540mg-first-dose-approved", "154 kg is a plausible weight",
      one("isa", d={"patient.weight_kg": 154, "order.dose.value": 1540}), "approved"),
    R("dara-weight-700kg-11200mg-implausible-flagged", "A15",
      one("dara_iv", d={"patient.weight_kg": 700, "order.dose.value": 11200}), "flagged",
      WEIGHT),
    # change since the previous dose of the drug
    R("weight-change-70-to-71kg-approved", "A15", weights("isa", [70, 71], [700, 710]),
      "approved", absent=(WEIGHT,)),
    R("weight-change-70-to-154kg-pounds-slip-flagged", "the issue's classic slip",
      weights("isa", [70, 154], [700, 1540]), "flagged", WEIGHT),
    R("weight-change-154-to-70kg-flagged", "the reverse jump",
      weights("isa", [154, 70], [1540, 700]), "flagged", WEIGHT),
    R("weight-change-other-patient-70-then-154-approved", "another patient's previous dose",
      weights("isa", [70, 154], [700, 1540], pids=["P-HO2-A", "P-HO2-B"]), "approved"),
    R("dara-weight-change-70-to-154kg-flagged", "",
      lambda: [order("dara_iv", 0),
               order("dara_iv", 7, regimen=(1, 8), d={"patient.weight_kg": 154,
                                                      "order.dose.value": 2464})],
      "flagged", WEIGHT),
    R("dara-weight-change-70-to-71kg-approved", "",
      lambda: [order("dara_iv", 0),
               order("dara_iv", 7, regimen=(1, 8), d={"patient.weight_kg": 71,
                                                      "order.dose.value": 1136})],
      "approved"),
]


# === 8. history facts: severe infusion reaction, inactive infections, stale orders =============

def conditions(kind: str, *extra: str, **kw):
    return one(kind, d={"patient.conditions": ["multiple myeloma", *extra]}, **kw)


HISTORY_ROWS = [
    R("irr-condition-severe-infusion-reaction-to-isatuximab-flagged", "A16",
      conditions("isa", "severe infusion reaction to isatuximab"), "flagged", IRR),
    R("irr-condition-grade-4-infusion-reaction-to-Sarclisa-flagged", "A16: trade name",
      conditions("isa", "grade 4 infusion-related reaction to Sarclisa"), "flagged", IRR),
    R("irr-allergy-isatuximab-severe-infusion-reaction-flagged", "A16: among allergies",
      one("isa", d={"patient.allergies": ["penicillin",
                                          "isatuximab - severe infusion reaction"]}),
      "flagged", IRR_OR_ALLERGY),
    R("irr-dara-condition-severe-infusion-reaction-to-Darzalex-flagged", "A16",
      conditions("dara_iv", "severe infusion reaction to Darzalex"), "flagged", IRR),
    R("irr-dara-condition-life-threatening-reaction-to-daratumumab-flagged", "A16",
      conditions("dara_iv", "life-threatening infusion reaction to daratumumab"), "flagged", IRR),
    R("irr-to-another-drug-rituximab-approved", "A16: to the drug, not any drug",
      conditions("isa", "severe infusion reaction to rituximab"), "approved", absent=(IRR,)),
    # infection-like but inactive
    R("infection-pneumonia-active-flagged", "control: pneumonia is an infection term",
      conditions("isa", "pneumonia"), "flagged", INFECTION),
    R("infection-sepsis-active-flagged", "control", conditions("isa", "sepsis"), "flagged",
      INFECTION),
    R("infection-history-of-pneumonia-approved", "A17",
      conditions("isa", "history of pneumonia"), "approved", absent=(INFECTION,)),
    R("infection-History-Of-Sepsis-case-approved", "A17",
      conditions("isa", "History Of Sepsis"), "approved", absent=(INFECTION,)),
    R("infection-resolved-sepsis-approved", "A17", conditions("isa", "resolved sepsis"),
      "approved", absent=(INFECTION,)),
    R("infection-sepsis-comma-resolved-approved", "A17", conditions("isa", "sepsis, resolved"),
      "approved", absent=(INFECTION,)),
    R("infection-pneumonia-paren-resolved-approved", "A17",
      conditions("isa", "pneumonia (resolved)"), "approved", absent=(INFECTION,)),
    R("infection-PJP-prophylaxis-approved", "A17", conditions("isa", "PJP prophylaxis"),
      "approved", absent=(INFECTION,)),
    R("infection-pneumocystis-pneumonia-prophylaxis-approved", "A17",
      conditions("isa", "pneumocystis pneumonia prophylaxis"), "approved",
      absent=(INFECTION,)),
    R("infection-history-plus-active-flagged", "an inactive entry does not hide an active one",
      conditions("isa", "history of pneumonia", "sepsis"), "flagged", INFECTION),
    R("dara-infection-pneumonia-flagged", "", conditions("dara_iv", "pneumonia"), "flagged",
      INFECTION),
    R("dara-infection-history-of-pneumonia-approved", "A17",
      conditions("dara_iv", "history of pneumonia"), "approved", absent=(INFECTION,)),
    # stale other-drug orders (A18)
    R("stale-dara-order-365d-ago-isa-info-not-concurrent", "A18: stale, info",
      lambda: [order("dara_iv", -365), order("isa", 0)], "approved", STALE,
      absent=(COMBINATION_ANY,)),
    R("stale-isa-order-365d-ago-dara-info-not-concurrent", "A18: the other direction",
      lambda: [order("isa", -365), order("dara_iv", 0)], "approved", STALE,
      absent=(COMBINATION_ANY,)),
    R("concurrent-dara-order-3d-ago-isa-flagged", "A18: recent, concurrent",
      lambda: [order("dara_iv", -3), order("isa", 0)], "flagged", CD38, absent=(STALE,)),
    R("renewed-dara-order-7d-ago-isa-flagged", "A18: renewed 7 days ago",
      lambda: [order("dara_iv", -365), order("dara_iv", -7, regimen=(7, 1)), order("isa", 0)],
      "flagged", CD38),
    R("cancelled-old-dara-order-no-stale-info", "cancelled: not active at all",
      lambda: [order("dara_iv", -365, oid="ORD-HO2-OLD"), cancel("ORD-HO2-OLD"),
               order("isa", 0)], "approved", absent=(STALE, COMBINATION_ANY)),
]


# === 9. duplicate anti-CD38 therapy, both directions ==========================================

def meds(kind: str, *items: Any):
    base = PRODUCTS[kind]["meds"]
    return one(kind, d={"patient.current_medications":
                        [{"name": m} for m in base] + [i if isinstance(i, dict) else {"name": i}
                                                       for i in items]})


CD38_ROWS = [
    R("isa-with-meds-daratumumab-flagged", "", meds("isa", "daratumumab"), "flagged", CD38),
    R("isa-with-meds-Darzalex-flagged", "trade name", meds("isa", "Darzalex"), "flagged", CD38),
    R("isa-with-meds-Darzalex-Faspro-flagged", "SC trade name", meds("isa", "Darzalex Faspro"),
      "flagged", CD38),
    R("isa-with-meds-dara-and-hyaluronidase-fihj-flagged", "A03",
      meds("isa", "daratumumab and hyaluronidase-fihj"), "flagged", CD38),
    R("isa-with-meds-atc-L01FC01-flagged", "A04: by code",
      meds("isa", {"name": "CD38 antibody (outside)", "code": {"system": "atc",
                                                               "value": "L01FC01"}}),
      "flagged", CD38),
    R("dara-iv-with-meds-isatuximab-flagged", "the other direction",
      meds("dara_iv", "isatuximab"), "flagged", CD38),
    R("dara-iv-with-meds-Sarclisa-flagged", "", meds("dara_iv", "Sarclisa"), "flagged", CD38),
    R("dara-iv-with-meds-isatuximab-irfc-flagged", "", meds("dara_iv", "isatuximab-irfc"),
      "flagged", CD38),
    R("dara-iv-with-meds-rxnorm-2283218-flagged", "A04: by code",
      meds("dara_iv", {"name": "CD38 antibody (outside)",
                       "code": {"system": "rxnorm", "value": "2283218"}}), "flagged", CD38),
    R("dara-sc-with-meds-isatuximab-flagged", "the SC product too",
      meds("dara_sc", "isatuximab"), "flagged", CD38),
    R("isa-order-then-dara-order-flagged", "active order, isa first",
      lambda: [order("isa", 0), order("dara_iv", 7, regimen=(1, 8))], "flagged", CD38),
    R("dara-order-then-isa-order-flagged", "active order, dara first",
      lambda: [order("dara_iv", 0), order("isa", 7, regimen=(1, 8))], "flagged", CD38),
    R("dara-sc-order-then-isa-order-flagged", "",
      lambda: [order("dara_sc", 0), order("isa", 7, regimen=(1, 8))], "flagged", CD38),
    R("isa-order-cancelled-then-dara-approved", "cancelled orders do not count",
      lambda: [order("isa", 0, oid="ORD-HO2-ISA"), cancel("ORD-HO2-ISA"),
               order("dara_iv", 7)], "approved", absent=(COMBINATION_ANY,)),
    R("isa-baseline-meds-pomalidomide-dexamethasone-approved", "control", one("isa"),
      "approved", absent=(COMBINATION_ANY,)),
]


# === 10. contraception, absent lactating / allergies ==========================================

COUNSEL_ROWS = [
    R("female-30-contraception-info", "A20", one("isa", d=FEMALE_30), "approved",
      CONTRACEPTION),
    R("dara-female-30-contraception-info", "A20", one("dara_iv", d=FEMALE_30), "approved",
      CONTRACEPTION),
    R("sex-absent-30-contraception-info", "contract: no sex may be pregnant",
      one("isa", d=dict(FEMALE_30, **{"patient.sex": DROP})), "approved", CONTRACEPTION),
    R("male-30-no-contraception", "", one("isa", d=dict(FEMALE_30, **MALE)), "approved",
      absent=(CONTRACEPTION,)),
    R("female-70-no-contraception", "past childbearing age", one("isa"), "approved",
      absent=(CONTRACEPTION,)),
    R("female-30-lactating-absent-data", "A20", one("isa", d=dict(FEMALE_30, **{
        "patient.lactating": DROP})), "flagged", LACTATION_DATA),
    R("dara-female-30-lactating-absent-data", "A20", one("dara_iv", d=dict(FEMALE_30, **{
        "patient.lactating": DROP})), "flagged", LACTATION_DATA),
    R("female-30-lactating-null-data", "contract: null is absent",
      one("isa", d=dict(FEMALE_30, **{"patient.lactating": None})), "flagged", LACTATION_DATA),
    R("male-30-lactating-absent-approved", "", one("isa", d=dict(FEMALE_30, **MALE, **{
        "patient.lactating": DROP})), "approved", absent=(LACTATION_DATA,)),
    R("female-70-lactating-absent-approved", "A20: not of childbearing age",
      one("isa", d={"patient.lactating": DROP}), "approved", absent=(LACTATION_DATA,)),
    R("allergies-absent-data", "", one("isa", d={"patient.allergies": DROP}), "flagged",
      ALLERGY_DATA),
    R("allergies-null-data", "", one("isa", d={"patient.allergies": None}), "flagged",
      ALLERGY_DATA),
    R("allergies-empty-list-approved", "known none", one("isa", d={"patient.allergies": []}),
      "approved", absent=(ALLERGY_DATA,)),
    R("dara-allergies-absent-data", "", one("dara_sc", d={"patient.allergies": DROP}),
      "flagged", ALLERGY_DATA),
    R("dara-pregnant-flagged", "A21", one("dara_iv", d=dict(FEMALE_30, **{
        "patient.pregnant": True})), "flagged", PREGNANCY),
    R("dara-lactating-flagged", "A21", one("dara_iv", d=dict(FEMALE_30, **{
        "patient.lactating": True})), "flagged", LACTATION),
]


ALL_ROWS = (PRODUCT_ROWS + SPLIT_ROWS + INFUSION_ROWS + PLAN_ROWS + FREQUENCY_ROWS
            + PREMED_ROWS + LAB_ROWS + PATIENT_ROWS + HISTORY_ROWS + CD38_ROWS + COUNSEL_ROWS)


@pytest.mark.parametrize("description,steps,outcome,wants,absent,drug", ALL_ROWS)
def test_row(description, steps, outcome, wants, absent, drug):
    decisions = run(steps())
    check(decisions[-1], outcome, wants, absent, drug)


# === 11. messages worded from the severity, never a hard-coded "contraindicated" ================

WORDING = [
    pytest.param(one("dara_iv", d=dict(FEMALE_30, **{"patient.pregnant": True})),
                 id="dara-pregnant"),
    pytest.param(one("dara_iv", d=dict(FEMALE_30, **{"patient.lactating": True})),
                 id="dara-lactating"),
    pytest.param(one("isa", d=dict(MALE, **{"patient.birth_date": "2008-03-03"})),
                 id="isa-age-17"),
    pytest.param(one("isa", labs={"ANC": (0.3, "10*9/L")}), id="isa-anc-low"),
    pytest.param(one("isa", labs={"TBILI": (6, "mg/dL")}), id="isa-bilirubin-high"),
    pytest.param(one("dara_iv", labs={"CRCL": (10, "mL/min"), "TBILI": (6, "mg/dL")}),
                 id="dara-crcl-low-bilirubin-high"),  # R10: CrCl alone is info, approved
    pytest.param(conditions("isa", "pneumonia"), id="isa-pneumonia"),
    pytest.param(conditions("dara_iv", "severe infusion reaction to daratumumab"),
                 id="dara-severe-irr"),
    pytest.param(meds("isa", "daratumumab"), id="isa-with-daratumumab"),
    pytest.param(weights("isa", [70, 154], [700, 1540]), id="isa-weight-jump"),
    pytest.param(one("dara_sc", d={"order.route": "IV"}), id="dara-sc-given-iv"),
]


@pytest.mark.parametrize("steps", WORDING)
def test_message_wording_follows_severity(steps):
    d = run(steps())[-1]
    assert d.outcome == "flagged", show(d)
    assert not any(NO_MONOGRAPH.matches(f) for f in d.findings), show(d)
    for f in d.findings:
        if f.severity != "contraindicated":
            assert "contraindicat" not in f.message.lower(), (f.rule_id, f.severity, f.message)

