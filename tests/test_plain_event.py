"""The one-pass read of plainly safe bytes (`rxgate.plain_event`) against the exact path.

Whatever the input, when `parse_plain_event` returns an event, the exact path
(`jsontext.parse`, then `contract.validate_order_event`) must accept the same bytes and build
the same event: same classes, same fields set, same values of the same types. When it returns
None the Processor takes the exact path, so a refusal is always safe; the tests also make sure
the fast path is taken for the realistic streams (else it would buy nothing).

Inputs: the fuzz suite's sweeps and hypothesis strategies (tests/fuzz), its regressions, the
held-out comparison's corpus (scripts/compare_decisions.py: clinical variants, hostile lines,
random structural mutations), the benchmark's workload, and mutations aimed at this path's own
reasoning: duplicate keys in every object and every spelling, unknown keys, spaces and
escapes, times at the edges of the years, numbers spelled every way.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import BaseModel, ValidationError

from rxgate import plain_event
from rxgate.contract import validate_order_event
from rxgate.jsontext import parse as parse_json
from rxgate.plain_event import parse_plain_event

from tests.fuzz.harness import (
    CANCELLED, DELETE, EXTREMES, PLACED, RAW_TOKENS, REGRESSIONS, SEEDS, SPLICES, WRONG_TYPES,
    appended, nested, paths, replaced, with_raw_token,
)
from tests.fuzz.test_fuzz_processor import mutated, structurally_varied

REPO = Path(__file__).resolve().parents[1]
FUZZ = dict(deadline=None, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much])


def canonical(value: Any) -> Any:
    """Everything that tells two events apart, types included (1 == 1.0 == True in Python)."""
    if isinstance(value, BaseModel):
        return (type(value).__qualname__, sorted(value.__pydantic_fields_set__),
                value.__pydantic_extra__, value.__pydantic_private__,
                [(k, canonical(v)) for k, v in value.__dict__.items()])
    if isinstance(value, list):
        return ["list", *map(canonical, value)]
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dt.datetime):
        return ("datetime", value.isoformat(), type(value.tzinfo).__qualname__,
                value.utcoffset(), value.fold)
    if isinstance(value, dt.date):
        return ("date", value.isoformat())
    return (type(value).__qualname__, value)


def exact(raw: bytes) -> Any:
    """The exact path's event, or None when it refuses the bytes."""
    try:
        raw.decode("utf-8")
        return validate_order_event(parse_json(raw))
    except Exception:
        return None


def keys_given(value: Any) -> int:
    """The sum of the fields set of every model in `value`, found by walking every value."""
    if isinstance(value, BaseModel):
        return len(value.__pydantic_fields_set__) + sum(map(keys_given, value.__dict__.values()))
    if isinstance(value, list):
        return sum(map(keys_given, value))
    return 0


def same(raw: bytes) -> bool:
    """Asserts the fast path agrees with the exact one; True when it took the bytes."""
    fast = parse_plain_event(raw) if _utf8(raw) else None
    if fast is None:
        return False
    slow = exact(raw)
    assert slow is not None, f"accepted by the fast path only: {raw[:300]!r}"
    assert canonical(fast) == canonical(slow), raw[:300]
    assert plain_event._KEYS[type(fast)](fast) == keys_given(fast), raw[:300]
    return True


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def compact(doc: Any) -> bytes:
    """Without spaces, and without \\u escapes (a lone surrogate: bytes that are not UTF-8)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def spaced(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_the_fast_path_is_built_from_the_contract():
    assert plain_event._VALIDATOR is not None  # else every input takes the exact path
    for seed in SEEDS:
        assert same(seed) or b"\n" in seed


def test_the_fast_schema_is_the_one_pydantic_built():
    # unknown keys refused: pydantic built the fast schema, not the contract's own validators
    # (which it reuses for a complete model class: that would be correct, but slower)
    with pytest.raises(ValidationError):
        plain_event._VALIDATOR.validate_json(compact({**PLACED, "zz_new": 1}))
    for cls in plain_event._CLASSES:  # marked incomplete only while it was built
        assert cls.__dict__["__pydantic_complete__"] is True
    assert validate_order_event({**PLACED, "zz_new": 1}).event_id == PLACED["event_id"]


@pytest.mark.parametrize("raw", [
    *(compact(PLACED).replace(b'"ORD-1001"', b'"ORD-' + bytes([b]) + b'1001"')
      for b in (0, 1, 8, 0x0B, 0x0C, 0x1F, 0x7F)),
    compact(PLACED) + b"}", compact(PLACED) + b" ", b" " + compact(PLACED),
    compact(PLACED)[:-1] + b" }", compact(PLACED) + b"x}", compact(PLACED) + b"{}",
    b"\xef\xbb\xbf" + compact(PLACED), compact(PLACED).replace(b'{"schema"', b'{ "schema"'),
    compact(PLACED).replace(b'"schema":', b'"schema" :'), compact(PLACED)[:-1] + b"\n}",
])
def test_control_characters_and_bytes_around_the_object(raw):
    same(raw)


def test_the_benchmark_workload_and_the_held_out_corpus_agree_and_mostly_take_the_fast_path():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from workload import Workload
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    lines = Workload(3000).lines
    taken = sum(map(same, lines))
    valid = sum(exact(line) is not None for line in lines)
    assert taken >= 0.97 * valid, (taken, valid)

    spec = importlib.util.spec_from_file_location("compare_decisions",
                                                  REPO / "scripts" / "compare_decisions.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    lines = compare.corpus()
    assert len(lines) > 5000
    taken = sum(map(same, lines))
    assert taken > 1000, taken


def test_every_field_replaced_by_each_wrong_type_and_extreme_value():
    taken = 0
    for doc in (PLACED, CANCELLED):
        for path in paths(doc):
            for value in [*WRONG_TYPES, *EXTREMES, DELETE]:
                changed = replaced(doc, path, value)
                for raw in (compact(changed), spaced(changed), json.dumps(changed).encode()):
                    taken += same(raw)
    assert taken > 1000


def test_every_field_given_each_raw_json_token_and_each_splice():
    for doc in (PLACED, CANCELLED):
        for path in paths(doc):
            for token in RAW_TOKENS:
                raw = with_raw_token(doc, path, token)
                same(raw)
                same(raw.replace(b'": ', b'":').replace(b", ", b","))
    for seed in SEEDS:
        for splice in SPLICES:
            for at in range(0, len(seed) + 1, 7):
                same(seed[:at] + splice + seed[at:])
    for depth in (1, 2, 5, 199, 200, 201):
        for kind in ("[", "{"):
            same(appended(compact(PLACED), nested(depth, kind)))
    for path in sorted(REGRESSIONS.glob("*.bin")):
        same(path.read_bytes())


def _objects(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """The path of every object in the document, the root's () included."""
    found = [prefix] if isinstance(doc, dict) else []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        found += _objects(value, (*prefix, key))
    return found


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _with_duplicate(doc: dict, path: tuple, key: str, value: Any, first: bool) -> bytes:
    """The compact text of `doc` with `key` written twice in the object at `path`: once with
    `value`, once with the value it has (the repeated one first or last)."""
    marker = "\u0001DUP\u0001"
    copy = json.loads(json.dumps(doc))
    target = _at(copy, path)
    items = list(target.items())
    target.clear()
    for k, v in items:
        if k == key and first:
            target[marker] = None
        target[k] = v
        if k == key and not first:
            target[marker] = None
    raw = compact(copy)
    return raw.replace(json.dumps(marker).encode() + b":null",
                       json.dumps(key).encode() + b":" + compact(value), 1)


def test_a_duplicate_key_in_any_object_is_never_taken():
    for doc in (PLACED, CANCELLED):
        for path in _objects(doc):
            for key, value in list(_at(doc, path).items()):
                for other in (value, None, "x", 1, 2.5, True, [], {}):
                    for first in (True, False):
                        raw = _with_duplicate(doc, path, key, other, first)
                        assert exact(raw) is None  # jsontext refuses it: "duplicate key"
                        assert parse_plain_event(raw) is None, raw
                        # a string starting with a colon must not hide the extra key
                        hidden = raw.replace(b'"event_id":"', b'"event_id":":', 1)
                        assert parse_plain_event(hidden) is None, hidden


def test_strings_starting_with_a_colon_and_spaces_in_the_text():
    doc = json.loads(json.dumps(PLACED))
    doc["source"] = ":his"
    doc["patient"]["conditions"] = [":a", ": b", "c :", 'd ":']
    for raw in (compact(doc), spaced(doc), json.dumps(doc, indent=1).encode()):
        assert not same(raw)  # more colons after quotes than keys: the exact path reads it
        assert exact(raw) is not None
    doc["source"] = "his"
    doc["patient"]["conditions"] = ["a b", " c", "d ", "e\u00e9", "f: g", "h,i"]
    assert same(compact(doc)) and same(spaced(doc))
    assert not same(compact(doc).replace(b'"source":', b'"source" :'))


def test_escapes_are_read_alike_and_an_escaped_duplicate_key_is_never_taken():
    doc = json.loads(json.dumps(PLACED))
    doc["patient"]["conditions"] = ["Sj\u00f6gren", "a\"b", 'c":d', "e\\f", "g/h", "\u00e9" * 300,
                                    "\U0001F600", "\u0000x", " \u00a0y"]
    doc["source"] = "his\u2028east"
    for raw in (json.dumps(doc).encode(), compact(doc), json.dumps(doc).encode().replace(b"/", b"\\/")):
        same(raw)
    plain = json.dumps(PLACED).encode()
    assert same(plain.replace(b'"/', b'"\\/').replace(b"/", b"\\/"))  # a producer escaping "/"
    assert same(plain.replace(b'"schema"', b'"sch\\u0065ma"'))  # a key spelled with an escape
    assert same(plain.replace(b'"route": "IV"', b'"route": "\\u0049V"'))
    for key in (b"schema", b"event_id", b"order", b"patient"):
        spelled = b'"' + key[:2] + b"\\u%04x" % key[2] + key[3:] + b'"'
        raw = appended(plain, b'"x"', key).replace(b'"' + key + b'": "x"', spelled + b': "x"')
        assert exact(raw) is None and parse_plain_event(raw) is None, raw[-80:]
    for escape in (b"\\ud800", b"\\udc00\\ud800", b"\\uD83D\\uDE00", b"\\ud83d\\ude00"):
        raw = plain.replace(b'"IV"', b'"I' + escape + b'V"')
        assert parse_plain_event(raw) is None  # surrogate escapes: the exact path reads them
        same(raw)


def test_unknown_keys_take_the_exact_path():
    for doc in (PLACED, CANCELLED):
        for path in _objects(doc):
            raw = compact(replaced(doc, (*path, "zz_new"), 1) if path else {**doc, "zz_new": 1})
            assert parse_plain_event(raw) is None
            assert exact(raw) is not None


@pytest.mark.parametrize("field", [("occurred_at",), ("order", "scheduled_for"),
                                   ("patient", "labs", 0, "taken_at"), ("patient", "birth_date")])
def test_times_and_dates_at_the_edges_of_the_years(field):
    values = ["1900-01-01", "1899-12-31", "2200-12-31", "2201-01-01", "1955-02-29", "1956-02-29",
              "2025-01-05T08:00:00Z", "1970-04-15T00:00:00Z", "1970-04-15T00:00:00+01:00",
              "2025-01-05", "20250105", "2025-01-05T08:00:00.1234567Z", "2025-01-05T08:00:60Z",
              "2025-01-05T24:00:00Z", "2025-01-05T08:00Z", "2025-01-05t08:00:00z",
              "2025-01-05 08:00:00Z", "2025-01-05T08:00:00+25:00", "2025-01-05T08:00:00+2359",
              "2025-01-05T08:00:00-00:00", "2025-01-05T08:00:00.5+05:30", "1772442000",
              1772442000, 1772442000.5, 0, "", "now", "today"]
    for year, day in ((1900, "01-01"), (1900, "01-02"), (1900, "01-03"), (1899, "12-31"),
                      (2200, "12-30"), (2200, "12-31"), (2201, "01-01")):
        for time in ("00:00:00", "00:30:00", "23:59:59", "12:00:00"):
            for offset in ("Z", "+23:59", "-23:59", "+01:00", "-01:00", "+00:00"):
                values.append(f"{year}-{day}T{time}{offset}")
    for doc in (PLACED, CANCELLED):
        try:
            _at(doc, field[:-1])[field[-1]]
        except (KeyError, IndexError, TypeError):
            continue
        for value in values:
            changed = replaced(doc, field, value)
            same(compact(changed))
            same(spaced(changed))


NUMBER_FIELDS = [("order", "dose", "value"), ("order", "frequency", "count"),
                 ("order", "frequency", "period"), ("order", "regimen", "cycle"),
                 ("order", "regimen", "day"), ("order", "infusion", "volume_ml"),
                 ("order", "infusion", "duration_min"), ("patient", "weight_kg"),
                 ("patient", "height_cm"), ("patient", "labs", 0, "value")]
SPELLINGS = [b"1", b"1.0", b"1.5", b"-0", b"-0.0", b"0", b"1e2", b"1E2", b"1e+2", b"1.0e2",
             b"100.000", b"2.0", b"366", b"366.0", b"1000", b"1000.0", b"1001", b"0.01",
             b"0.009999999999999999", b"0.1", b"0.30000000000000004", b"4.08", b"110.8",
             b"1234567890123456789012345678901234567890e-30", b"0.000000000000000000001e21",
             b"999999999.99999999999", b"1000000000.0000000001", b"1e9", b"1e15", b"-1e15",
             b"1e-7", b"123456789012345678", b"9007199254740993", b"1.7976931348623157e308",
             b"5e-324", b"1e400", b"NaN", b"Infinity", b"-Infinity", b"01", b".5", b"1.", b"+1",
             b"true", b"null", b'"1"', b"[1]", b"{}"]


def test_numbers_spelled_every_way_in_every_number_field():
    for field in NUMBER_FIELDS:
        for spelling in SPELLINGS:
            raw = with_raw_token(PLACED, field, spelling)
            same(raw)
            same(raw.replace(b'": ', b'":').replace(b", ", b","))


@settings(max_examples=1500, **FUZZ)
@given(st.sampled_from(NUMBER_FIELDS),
       st.floats(min_value=-2e15, max_value=2e15, allow_nan=False) | st.integers(-10**17, 10**17),
       st.sampled_from(["repr", "e", "g17", "f20"]))
def test_random_numbers_read_alike(field, number, form):
    if isinstance(number, float) and form != "repr":
        text = {"e": f"{number:.17e}", "g17": f"{number:.17g}", "f20": f"{number:.20f}"}[form]
    else:
        text = repr(number)
    same(with_raw_token(PLACED, field, text.encode()))


@settings(max_examples=1000, **FUZZ)
@given(mutated())
def test_mutated_contract_examples(raw):
    same(raw)
    same(raw.replace(b'": ', b'":').replace(b", ", b","))


@settings(max_examples=1000, **FUZZ)
@given(structurally_varied())
def test_contract_examples_with_random_json_in_random_places(raw):
    same(raw)
    same(raw.replace(b'": ', b'":').replace(b", ", b","))


def test_random_structural_mutations_of_the_workload():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from workload import Workload
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    mutate_at_random(Workload(400).lines, [], same, lambda raw: parse_plain_event(raw) is None)


def mutate_at_random(lines: list[bytes], more_values: list[Any], same: Any, refused: Any) -> None:
    """Valid lines with 1 to 3 values replaced or removed at random (`same` checks each against
    the exact path), and some with a key written twice somewhere (`refused` must say so)."""
    rng = random.Random(10)
    lines = [line for line in lines if exact(line) is not None]
    values = [None, True, 0, 1, -1, 1.5, 1e9, 1e16, "", " x ", "x" * 257, [], [{}], {},
              "2025-01-05T08:00:00Z", "1899-12-31", ["a"], [{"name": "x"}], *more_values]
    taken = 0
    for _ in range(4000):
        doc = json.loads(rng.choice(lines))
        for _ in range(rng.randint(1, 3)):
            place = rng.choice(paths(doc))
            choice = rng.random()
            if choice < 0.6:
                doc = replaced(doc, place, rng.choice(values))
            elif choice < 0.8:
                doc = replaced(doc, place, DELETE)
        raw = compact(doc)
        taken += same(raw)
        if rng.random() < 0.3:  # a key written twice, somewhere
            path = rng.choice(_objects(doc))
            target = _at(doc, path)
            if target:
                key = rng.choice(list(target))
                dup = _with_duplicate(doc, path, key, rng.choice(values), rng.random() < 0.5)
                assert refused(dup), dup
    assert taken > 500


def test_the_key_counters_count_what_a_walk_over_the_fields_sets_counts():
    # the counters are written from the fast schema; here they meet events the exact path
    # built, with every optional part given, null or absent
    for doc in (PLACED, CANCELLED):
        for path in paths(doc):
            for value in (None, DELETE, [], [{"name": "x", "code": {"system": "a", "value": "b"}}],
                          {"system": "a", "value": "b"}):
                event = exact(compact(replaced(doc, path, value)))
                if event is not None:
                    assert plain_event._KEYS[type(event)](event) == keys_given(event), path
