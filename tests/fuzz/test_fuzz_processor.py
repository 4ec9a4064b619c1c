"""The fuzz suite over the Processor: every input ends as one output holding its bytes.

Deterministic sweeps (every field of the contract examples replaced by each wrong type, each
boundary and extreme value, each raw token JSON text can carry; nesting, duplicate keys, control
characters, over-size payloads) and hypothesis over random and mutated bytes. Together well over
10,000 inputs per run, each within harness.PER_INPUT_SECONDS; the invariants are in harness.py.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st

from .harness import (
    CANCELLED, CANCELLED_BYTES, DELETE, EXTREMES, PLACED, PLACED_BYTES, RAW_TOKENS, SEEDS,
    SPLICES, WRONG_TYPES, appended, check_input, fresh_processor, nested, paths, replaced, with_raw_token,
)
from rxgate.jsontext import MAX_DEPTH
from rxgate.processor import MAX_INPUT_BYTES, TRUNCATED_PAYLOAD_BYTES

FUZZ = dict(deadline=None, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.filter_too_much])


def _kinds(handled_list):
    kinds = {}
    for h in handled_list:
        key = h.outputs[0].error.kind if h.kind == "invalid" else h.kind
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


# --- deterministic sweeps -------------------------------------------------------------------

def test_every_field_replaced_by_each_wrong_type_and_extreme_value():
    results = []
    for doc in (PLACED, CANCELLED):
        for path in paths(doc):
            for value in [*WRONG_TYPES, *EXTREMES, DELETE]:
                raw = json.dumps(replaced(doc, path, value)).encode()
                results.append(check_input(fresh_processor(), raw))
    assert len(results) > 5000
    kinds = _kinds(results)
    # the sweep reaches every outcome: decisions (values within bounds), schema dead letters,
    # cancellations, and json ones (the lone surrogate "\ud800")
    assert {"decision", "schema", "cancelled", "json"} <= set(kinds), kinds


def test_every_field_and_every_object_given_each_raw_json_token():
    results = []
    for doc in (PLACED, CANCELLED):
        for path in paths(doc):
            for token in RAW_TOKENS:
                results.append(check_input(fresh_processor(), with_raw_token(doc, path, token)))
        for path in [(), *(p for p in paths(doc) if isinstance(_at(doc, p), dict))]:
            for token in RAW_TOKENS:  # a key the schema ignores, on every object
                raw = with_raw_token(replaced_at(doc, path, "zz_unknown", None),
                                     (*path, "zz_unknown"), token)
                results.append(check_input(fresh_processor(), raw))
    assert len(results) > 1500
    # NaN, Infinity, numbers beyond a double, duplicate keys, lone surrogates: json, wherever
    by_token = {}
    for h, token in zip(results, [t for _ in range(len(results) // len(RAW_TOKENS)) for t in RAW_TOKENS]):
        by_token.setdefault(token, set()).add(h.outputs[0].error.kind if h.kind == "invalid" else h.kind)
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1" + b"0" * 400,
                  b"9" * 4300, b"9" * 4301, b'{"a": 1, "a": 1}', b'"\\ud800"'):
        assert by_token[token] == {"json"}, (token[:20], by_token[token])


def test_every_truncation_of_the_examples():
    for seed in (PLACED_BYTES, CANCELLED_BYTES):
        for n in range(len(seed)):
            h = check_input(fresh_processor(), seed[:n])
            assert h.kind == "invalid" and h.outputs[0].error.kind == "json", (n, h)


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


def replaced_at(doc, path, key, value):
    copy = json.loads(json.dumps(doc))
    _at(copy, path)[key] = value
    return copy


def test_nesting_on_both_sides_of_the_limit():
    for depth in (1, 2, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2,
                  980, 1000, 5000, 100_000, 400_000):
        for kind in ("[", "{"):
            alone = check_input(fresh_processor(), nested(depth, kind))
            inside = check_input(fresh_processor(), appended(PLACED_BYTES, nested(depth, kind)))
            unclosed = check_input(fresh_processor(), nested(depth, kind)[:depth])
            if len(nested(depth, kind)) > MAX_INPUT_BYTES:
                assert {h.outputs[0].error.kind for h in (alone, inside)} == {"too_large"}
                continue
            too_deep = [h.outputs[0].error for h in (alone, inside) if h.kind == "invalid"
                        and "nested deeper" in h.outputs[0].error.detail]
            # the order event is one level: nesting inside it counts from 2
            assert len(too_deep) == (depth > MAX_DEPTH) + (depth + 1 > MAX_DEPTH), (depth, kind)
            assert all(e.kind == "json" for e in too_deep)
            assert alone.kind == "invalid" and unclosed.kind == "invalid"
            assert inside.kind == ("decision" if depth + 1 <= MAX_DEPTH else "invalid")


def test_control_characters_bom_and_duplicate_keys_in_every_position():
    results = []
    for seed in SEEDS:
        for splice in SPLICES:
            for at in sorted({0, 1, len(seed) // 3, len(seed) // 2, len(seed) - 1, len(seed)}):
                results.append(check_input(fresh_processor(), seed[:at] + splice + seed[at:]))
    for key in (b"schema", b"event_id", b"event_type", b"order", b"patient", b"occurred_at"):
        results.append(check_input(fresh_processor(), appended(PLACED_BYTES, b'"x"', key)))
    assert len(results) > 500


def test_payloads_over_one_mebibyte_keep_their_head():
    cases = [
        appended(PLACED_BYTES, b'"' + b"x" * MAX_INPUT_BYTES + b'"'),
        b"\xff" * (MAX_INPUT_BYTES + 1),
        # a multi-byte character split at the 64 KiB cut
        b'"' + b"a" * (TRUNCATED_PAYLOAD_BYTES - 2) + "€".encode() * (MAX_INPUT_BYTES // 3) + b'"',
        b"[" * (MAX_INPUT_BYTES + 1),
        appended(PLACED_BYTES, b'"' + b"x" * (MAX_INPUT_BYTES - len(PLACED_BYTES) - 12) + b'"'),
    ]
    for raw in cases:
        h = check_input(fresh_processor(), raw)
        letter = h.outputs[0] if h.outputs else None
        if len(raw) > MAX_INPUT_BYTES:
            assert letter.error.kind == "too_large" and letter.payload_truncated is True
        else:
            assert h.kind == "decision", letter  # exactly 1 MiB is still read


# --- hypothesis: random and mutated bytes ---------------------------------------------------

@settings(max_examples=2500, **FUZZ)
@given(st.binary(max_size=3000))
def test_random_bytes(raw):
    check_input(fresh_processor(), raw)


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "splice", "delete", "truncate", "repeat", "byte"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "splice":
            data[at:at] = draw(st.sampled_from(SPLICES))
        elif op == "delete":
            del data[at: at + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at: at + draw(st.integers(1, 60))]
    return bytes(data)


@settings(max_examples=3000, **FUZZ)
@given(mutated())
def test_mutated_contract_examples(raw):
    check_input(fresh_processor(), raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@st.composite
def structurally_varied(draw):
    doc = draw(st.sampled_from([PLACED, CANCELLED]))
    for _ in range(draw(st.integers(1, 3))):
        place = draw(st.sampled_from(paths(doc)))
        doc = replaced(doc, place, draw(json_values))  # NaN/inf floats become NaN/Infinity tokens
    return json.dumps(doc).encode()


@settings(max_examples=1500, **FUZZ)
@given(structurally_varied())
def test_contract_examples_with_random_json_in_random_places(raw):
    check_input(fresh_processor(), raw)


@settings(max_examples=300, **FUZZ)
@given(st.lists(st.one_of(mutated(), structurally_varied(),
                          st.sampled_from([*SEEDS, json.dumps(CANCELLED).encode()])), max_size=8))
def test_sequences_through_one_processor_keep_one_output_per_input(raws):
    processor = fresh_processor()  # history builds up: duplicates and cancellations happen
    for raw in raws:
        check_input(processor, raw)
