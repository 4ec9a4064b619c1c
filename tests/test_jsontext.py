"""The one parse of an input's bytes: limits, and messages that say what is wrong and where."""
from __future__ import annotations

import pytest

from rxgate.jsontext import MAX_DEPTH, JsonTextError, parse


def _error(raw: bytes) -> str:
    with pytest.raises(JsonTextError) as info:
        parse(raw)
    return str(info.value)


@pytest.mark.parametrize("raw,expected", [
    (b'{"a": NaN}', "NaN / Infinity is not a JSON number at line 1 column 7"),
    (b'{"a": [1, -Infinity]}', "NaN / Infinity is not a JSON number at line 1 column 12"),
    (b'{"a": {"b": 1e400}}', "number out of range (beyond what a 64-bit float holds) at a.b"),
    (b'{"a": [0, -2.5E+308]}', "number out of range (beyond what a 64-bit float holds) at a.1"),
    (b'{"a": 1' + b"0" * 400 + b"}", "number out of range (beyond what a 64-bit float holds) at a"),
    (b'{"a": ' + b"9" * 4301 + b"}", "number out of range (beyond what a 64-bit float holds) at line 1 column"),
    (b'{"a": 1, "a": 2}', 'duplicate key "a" at line 1 column'),
    (b'{"a": "\\ud800"}', "lone surrogate is not"),
    (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),
    (b'{"a": 1}\x00', "trailing characters at line 1 column 9"),
    (b"\x0b", "expected value at line 1 column 1"),
    (b"", "EOF while parsing a value"),
])
def test_json_level_problems_are_named_with_their_place(raw, expected):
    assert expected in _error(raw)


@pytest.mark.parametrize("make", [lambda n: b"[" * n + b"]" * n,
                                  lambda n: b'{"a":' * n + b"1" + b"}" * n,
                                  lambda n: b'[{"a":' * (n // 2) + b"1" + b"}]" * (n // 2)])
def test_one_nesting_limit_for_arrays_and_objects(make):
    parse(make(MAX_DEPTH))
    for n in (MAX_DEPTH + 2, 1000, 100_000):
        assert f"nested deeper than {MAX_DEPTH} levels" in _error(make(n))


def test_what_json_allows_is_read():
    assert parse(b'{"a": 1e308, "b": -0.0, "c": 5e-324, "d": "\\ud83d\\ude00", "e": ' + b"9" * 300 + b"}") == {
        "a": 1e308, "b": -0.0, "c": 5e-324, "d": "\U0001F600", "e": int("9" * 300)}
    assert parse(b' \t\r\n{"a": [1, 2]} \r\n') == {"a": [1, 2]}  # JSON whitespace around it


def test_a_key_from_the_input_is_cut_in_a_message():
    msg = _error(b'{"' + b"k" * 5000 + b'": 1e999}')
    assert len(msg) < 300


@pytest.mark.parametrize("number", [b"1e400", b"-1E+309", b"1" + b"0" * 309, b"0.5e309",
                                    b"123456789012e299", b"1" + b"0" * 210 + b"e99",
                                    b"-" + b"9" * 400 + b".5"])
@pytest.mark.parametrize("text", [b"P-001", b"4e123-0e0000"])
def test_a_number_beyond_a_float_is_found_however_it_is_written(number, text):
    # the walk over the values runs only where the text could hold such a number: every
    # spelling of one must make it run, also with no other text that looks like an exponent
    raw = b'{"id": "' + text + b'", "a": [1, {"b": ' + number + b'}]}'
    assert "number out of range (beyond what a 64-bit float holds) at a.1.b" in _error(raw)


@pytest.mark.parametrize("number,value", [(b"1.7976931348623157e308", 1.7976931348623157e308),
                                          (b"1e-400", 0.0), (b"12e299", 1.2e300),
                                          (b"1" + b"0" * 199, 10 ** 199)])
def test_a_large_number_within_a_float_is_read(number, value):
    assert parse(b'{"a": ' + number + b'}') == {"a": value}
