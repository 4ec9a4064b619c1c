"""The contraindication and combination rules' shortcuts give what their exact paths give.

- contraindication.check() reads the patient's age as age_on on the scheduled day's date
  (whatever the offset the time is written with): check() against each rule run in turn, with
  ages on and around birthdays (29 February too) and times near midnight in several offsets.
- contraindication.check() keeps, per patient's facts as written, what every rule but the lab
  limits says (and whether _age says anything: it is asked again) and gives out copies: check()
  against each rule run in turn, each patient seen again, every finding a new object whose
  evidence (and its lists) is its own.
- contraindication._quiet computes a result's age once per time object the results share (the
  parser keeps one per string): _quiet against the same pass computing every result's age,
  with results sharing a time, written at one instant in two offsets, or near the age limits.
- combination._medications_only keeps, per list of current medications as written, the
  findings ctx.finding made and gives out again() copies: against _check_all (the exact path,
  which builds every finding), each list seen again, read by the contract's models or by
  struct_event's structs (whose items are the key as they are), and every finding a new
  object whose evidence is its own.
- Knowledge.per_monograph keeps a value per kind and monograph object of the knowledge.
"""
from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from rxgate.contract import parse_order_event
from rxgate.knowledge import load_knowledge
from rxgate.rules import OrderContext
from rxgate.rules import combination as B
from rxgate.rules import contraindication as C
from rxgate.struct_event import parse_struct_event

from .conftest import DROP, DRUG, KNOWLEDGE, iso, order_event, parse_time

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MONO = KNOWLEDGE.monographs[DRUG]
TABLES = KNOWLEDGE.per_monograph("contraindication", MONO, C._Tables)
COMBINATIONS = KNOWLEDGE.per_monograph("combination", MONO, B._Table)
SCHEDULED = "2026-03-02T09:00:00Z"


def dumped(findings) -> list[dict]:
    return [f.model_dump() for f in findings]


def context(event: dict, mono=MONO, structs: bool = False) -> OrderContext:
    """The event read by the contract's models, or (`structs`) by struct_event's structs."""
    if structs:
        read = parse_struct_event(json.dumps(event, separators=(",", ":")).encode())
        assert read is not None
    else:
        read = parse_order_event(json.dumps(event))
    return OrderContext.of(read, mono, KNOWLEDGE, [])


# --- check(): the age on the scheduled day ----------------------------------------------------

OFFSETS = ["Z", "+00:00", "-05:00", "+09:30", "+14:00", "-12:00"]


@st.composite
def scheduled_times(draw) -> str:
    """A time near midnight (local) in some offset: its date differs from the UTC date."""
    day = draw(st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 12, 31)))
    clock = draw(st.sampled_from(["00:00:00", "00:30:00", "09:00:00", "23:59:59", "23:30:00"]))
    return f"{day.isoformat()}T{clock}{draw(st.sampled_from(OFFSETS))}"


@st.composite
def births(draw, scheduled: str) -> str | None:
    """A birth date on or around a birthday the scheduled day falls on, 29 February, or any."""
    local = dt.datetime.fromisoformat(scheduled.replace("Z", "+00:00")).date()
    years = draw(st.sampled_from([11, 12, 17, 18, 40, 55, 56]))
    how = draw(st.sampled_from(["birthday", "leap", "any", "none"]))
    if how == "none":
        return None
    if how == "leap":
        return dt.date(draw(st.sampled_from([1972, 1996, 2008, 2012])), 2, 29).isoformat()
    if how == "any":
        return draw(st.dates(min_value=dt.date(1920, 1, 1), max_value=local)).isoformat()
    try:
        birth = local.replace(year=local.year - years)
    except ValueError:  # 29 February
        birth = local.replace(year=local.year - years, day=28)
    return (birth + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1])))).isoformat()


def each_rule(ctx: OrderContext) -> list:
    """check() without its memo and with age_on: every rule in its order."""
    birth = ctx.patient.birth_date
    age = C.age_on(birth, ctx.scheduled_for.date()) if birth else None
    return [*C._age(ctx, age), *C._pregnancy(ctx, age), *C._contraception(ctx, age),
            *C._lactation(ctx, age), *C._allergy(ctx, TABLES), *C._labs(ctx, TABLES),
            *C._conditions(ctx, TABLES)]


@SETTINGS
@given(data=st.data())
def test_check_reads_the_age_on_the_scheduled_day_as_age_on_does(data):
    for _ in range(3):
        scheduled = data.draw(scheduled_times())
        birth = data.draw(births(scheduled))
        patient = {"birth_date": DROP if birth is None else birth,
                   "sex": data.draw(st.sampled_from(["male", "female", DROP])),
                   "pregnant": data.draw(st.sampled_from([False, DROP])),
                   "lactating": data.draw(st.sampled_from([False, DROP]))}
        ctx = context(order_event(scheduled_for=scheduled, patient=patient))
        assert dumped(C.check(ctx)) == dumped(each_rule(ctx))


# --- check(): what the rules say kept per facts, given out as new findings ---------------------

SEXES = ["male", "female", "F", " M ", "unknown", DROP]
ALLERGIES = [DROP, [], ["isatuximab"], ["penicillin"], ["Sarclisa: severe infusion reaction"],
             ["penicillin", "isatuximab-irfc grade 3 infusion reaction", "Sarclisa"]]
CONDITIONS = [DROP, [], ["multiple myeloma"], ["multiple myeloma", "sepsis"],
              ["history of sepsis", "RRMM"], ["MGUS"], ["isatuximab infusion reaction, severe"]]
# births of one age on the scheduled day (2026-03-02) but for the day: _age's evidence names it
BIRTHS = [DROP, "2010-01-01", "2010-02-01", "2009-03-03", "1986-05-01", "1986-06-01",
          "2014-03-02", "1971-03-03", "1971-03-02"]


@st.composite
def any_patients(draw) -> dict:
    return {"birth_date": draw(st.sampled_from(BIRTHS)), "sex": draw(st.sampled_from(SEXES)),
            "pregnant": draw(st.sampled_from([True, False, DROP])),
            "lactating": draw(st.sampled_from([True, False, DROP])),
            "allergies": draw(st.sampled_from(ALLERGIES)),
            "conditions": draw(st.sampled_from(CONDITIONS))}


@SETTINGS
@given(seen=st.lists(any_patients(), min_size=1, max_size=6), data=st.data())
def test_check_gives_what_each_rule_says_as_new_findings_each_time(seen, data):
    for mono in (MONO, KNOWLEDGE.monographs["daratumumab"]):
        tables = KNOWLEDGE.per_monograph("contraindication", mono, C._Tables)
        for p in [*seen, *data.draw(st.permutations(seen))]:  # each again: the memo's answer
            ctx = context(order_event(scheduled_for=SCHEDULED, patient=p), mono)
            birth = ctx.patient.birth_date
            age = C.age_on(birth, ctx.scheduled_for.date()) if birth else None
            exact = [*C._age(ctx, age), *C._pregnancy(ctx, age), *C._contraception(ctx, age),
                     *C._lactation(ctx, age), *C._allergy(ctx, tables), *C._labs(ctx, tables),
                     *C._conditions(ctx, tables)]
            first, second = C.check(ctx), C.check(ctx)
            assert dumped(first) == dumped(exact) == dumped(second)
            for a, b in zip(first, second):
                assert a is not b and a.evidence is not b.evidence
                for key, value in a.evidence.items():
                    if isinstance(value, (list, dict)):
                        assert value is not b.evidence[key]
                        value.append("changed") if isinstance(value, list) else value.clear()
                a.evidence["added"] = True  # a finding's evidence is its own
            assert dumped(C.check(ctx)) == dumped(exact)


# --- _quiet: one age per shared time object ------------------------------------------------------

def quiet_each_age(ctx: OrderContext, tables) -> bool:
    """_quiet as it was: every result's age computed from its own time."""
    knowledge = ctx.knowledge
    seen = 0
    for x in ctx.patient.labs or ():
        group = tables.group_of(knowledge, x.code)
        if group is None:
            continue
        seen |= group.bit
        factor = knowledge.lab_factor(group.code, x.unit)
        if factor is None:
            return False
        limit = group.max_age_days
        if limit is not None and (ctx.scheduled_for - x.taken_at).total_seconds() / 86400 > limit:
            return False
        raw = x.value * factor
        if not group.floor < raw < group.ceiling and not C._within(raw, group.bounds):
            return False
    return seen & tables.required_bits == tables.required_bits


LIMIT_AGES = sorted({g.max_age_days for g in TABLES.lab_groups if g.max_age_days is not None})


@st.composite
def times(draw) -> str:
    """A result's time: at one of a few instants (shared by several results, as one string or
    the same instant in another offset), an age limit or a microsecond either side of it."""
    scheduled = parse_time(SCHEDULED)
    age = draw(st.one_of(
        st.sampled_from([dt.timedelta(hours=26), dt.timedelta(days=3)]),
        st.tuples(st.sampled_from(LIMIT_AGES), st.sampled_from([-1, 0, 1])).map(
            lambda a: dt.timedelta(days=a[0], microseconds=a[1]))))
    taken = scheduled - age
    if draw(st.booleans()):
        return iso(taken)
    return taken.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()


USUAL = {"ANC": (1.8, "10^9/L"), "PLT": (142, "10^9/L"), "HGB": (10.9, "g/dL"),
         "TBILI": (0.6, "mg/dL"), "CRCL": (103, "mL/min"), "WBC": (8.4, "10^9/L")}


@st.composite
def lab_lists(draw) -> list[dict]:
    shared = draw(st.lists(times(), min_size=1, max_size=3))
    labs = []
    for code in draw(st.lists(st.sampled_from(sorted(USUAL)), max_size=8)):
        value, unit = USUAL[code]
        if draw(st.integers(0, 5)) == 0:
            value = draw(st.floats(min_value=0, max_value=1e4))
        taken = draw(st.one_of(st.sampled_from(shared), times()))
        labs.append({"code": code, "value": value, "unit": unit, "taken_at": taken})
    return labs


@SETTINGS
@given(labs=lab_lists())
def test_quiet_with_one_age_per_shared_time_is_quiet_with_every_age(labs):
    ctx = context(order_event(scheduled_for=SCHEDULED, labs=labs))
    quiet = C._quiet(ctx, TABLES)
    assert quiet == quiet_each_age(ctx, TABLES)
    if quiet:
        assert C._lab_findings(ctx, TABLES, C._latest(ctx, TABLES)) == []
    assert dumped(C._labs(ctx, TABLES)) == dumped(
        C._lab_findings(ctx, TABLES, C._latest(ctx, TABLES)))


# --- combination: the current medications' findings kept and copied ------------------------------

NAMES = ["daratumumab", "Darzalex", "pomalidomide", "Revlimid", "dexamethasone", "acyclovir",
         "apixaban", "nivolumab", "Study drug 7", "isatuximab", "Sarclisa", "bortezomib",
         "elotuzumab", "unknownmab"]
CODES = [None, ("atc", "L01FC01"), ("ATC", "l01fx08"), ("atc", "L04AX04"), ("rxnorm", "2283218"),
         ("atc", "L01XG01")]


@st.composite
def medications(draw) -> list[dict]:
    meds = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=5)):
        code = draw(st.sampled_from(CODES))
        meds.append({"name": name} if code is None else
                    {"name": name, "code": {"system": code[0], "value": code[1]}})
    return meds


@SETTINGS
@given(lists=st.lists(medications(), min_size=1, max_size=4), data=st.data())
def test_medications_only_gives_what_the_exact_path_gives_as_new_findings(lists, data):
    for mono in (MONO, KNOWLEDGE.monographs["daratumumab"]):
        table = KNOWLEDGE.per_monograph("combination", mono, B._Table)
        for meds in [*lists, *data.draw(st.permutations(lists))]:  # each again: the memo's
            # read by models or by structs (their memo keys differ), in any order
            ctx = context(order_event(scheduled_for=SCHEDULED, meds=meds or DROP), mono,
                          structs=data.draw(st.booleans()))
            exact = B._check_all(ctx, table)
            first, again = B.check(ctx), B.check(ctx)
            assert dumped(first) == dumped(exact) == dumped(again)
            for a, b in zip(first, again):
                assert a is not b and a.evidence is not b.evidence
                assert a.evidence["found_in"] is not b.evidence["found_in"]
                assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
                assert a.__pydantic_fields_set__ is not b.__pydantic_fields_set__
                a.evidence["found_in"].append("changed")  # a finding's evidence is its own
                a.evidence["other_drug"] = "changed"
            assert dumped(B.check(ctx)) == dumped(exact)


# --- per_monograph ---------------------------------------------------------------------------------

def test_per_monograph_keeps_one_value_per_kind_and_monograph_object():
    k = load_knowledge()
    built = []

    def build(knowledge, mono):
        built.append(mono.drug)
        return object()

    kept = {(kind, drug): k.per_monograph(kind, mono, build)
            for kind in ("a", "b") for drug, mono in k.monographs.items()}
    for _ in range(2):
        for (kind, drug), value in kept.items():
            assert k.per_monograph(kind, k.monographs[drug], build) is value
    assert len(built) == len(kept)
    foreign = k.monographs[DRUG].model_copy()  # not the knowledge's: built every time
    assert k.per_monograph("a", foreign, build) is not kept[("a", DRUG)]
    assert k.per_monograph("a", foreign, build) is not kept[("a", DRUG)]
    assert len(built) == len(kept) + 2


# --- check(): the age read from the year kept per birth date ------------------------------------

@st.composite
def birth_dates(draw) -> dt.date:
    """Any date, 29 February, or one near year 1 or year 9999 (a birthday there may not be a date)."""
    return draw(st.one_of(
        st.dates(),
        st.sampled_from([1972, 1996, 2000, 2008, 4, 9996]).map(lambda y: dt.date(y, 2, 29)),
        st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(2, 12, 31)),
        st.dates(min_value=dt.date(9998, 1, 1), max_value=dt.date(9999, 12, 31))))


@settings(max_examples=1000, deadline=None)
@given(birth=birth_dates(), days=st.lists(st.one_of(st.dates(), birth_dates()), min_size=1,
                                          max_size=6))
def test_the_year_kept_per_birth_date_is_age_on(birth, days):
    one = dt.timedelta(days=1)
    for day in days:
        start, end, age = C._ages.get(birth, (None, None, None))
        if start is not None and start <= day < end:  # what check() reads as the age
            assert age == C.age_on(birth, day)
        assert C._age_on(birth, day) == C.age_on(birth, day)
        start, end, age = C._ages.get(birth, (None, None, None))
        if start is None:
            continue
        # age_on is `age` from the first day of the year kept to its last, and not beyond
        for d in (start, end - one):
            assert C.age_on(birth, d) == age
        assert start == dt.date.min or C.age_on(birth, start - one) == age - 1
        assert C.age_on(birth, end) == age + 1


def test_check_reads_the_tables_of_its_own_knowledge():
    """check() reads the tables its order's knowledge keeps (ctx.kept): an order under another
    knowledge (a reload) reads that knowledge's; a monograph that is not the knowledge's own
    has its tables built for it, nothing kept."""
    other = load_knowledge()
    ctx = context(order_event(scheduled_for=SCHEDULED))
    reloaded = OrderContext.of(ctx.event, other.monographs[DRUG], other, [])
    for c, k in ((ctx, KNOWLEDGE), (reloaded, other), (ctx, KNOWLEDGE)):
        assert dumped(C.check(c)) == dumped(each_rule(c))
        assert c.kept["contraindication"] is k.per_monograph(
            "contraindication", k.monographs[DRUG], C._Tables)
    stranger = KNOWLEDGE.monographs[DRUG].model_copy()
    foreign = OrderContext.of(ctx.event, stranger, KNOWLEDGE, [])
    assert dumped(C.check(foreign)) == dumped(each_rule(foreign))
    assert foreign.kept == {} and KNOWLEDGE.kept_for(stranger) == {}
