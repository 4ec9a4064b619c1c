"""What every fuzz input must satisfy, and the inputs the fuzz tests build from.

    check_input(processor, raw) -> Handled       # asserts the invariants below

For every input, however broken:
- the Processor returns (never raises) within PER_INPUT_SECONDS: a bound against hangs, not a
  benchmark;
- exactly one output, or none for the two documented cases: a cancellation and a repeated
  `event_id` (a duplicate);
- a dead letter holds the original bytes exactly (its payload decoded from UTF-8 or base64;
  over 1 MiB: the first 64 KiB, cut back to a whole UTF-8 character at most 3 bytes short);
- a decision is for the event in the input, and is never `rxgate.data.checks_failed`: an input
  the contract accepts must not hit a defect in the rules (Handled.error is None);
- every output serialises to JSON that its own model reads back (what the shells publish).

An input that breaks one of these is written to tests/fuzz/regressions/ (named by its hash) on
hypothesis' final, shrunk replay, and `test_regressions.py` replays every file there for ever.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from rxgate.contract import DeadLetter, Decision, FileSource, OrderCancelled, to_json
from rxgate.decide import CHECKS_FAILED_RULE
from rxgate.knowledge import load_knowledge
from rxgate.processor import (
    MAX_INPUT_BYTES,
    TRUNCATED_PAYLOAD_BYTES,
    DictHistoryStore,
    Handled,
    Processor,
)

from tests.conftest import EXAMPLES

PER_INPUT_SECONDS = 1.0
REGRESSIONS = Path(__file__).parent / "regressions"
NOW = dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.timezone.utc)
KNOWLEDGE = load_knowledge()
ORIGIN = FileSource(file="fuzz", line=1)

PLACED: dict = json.loads((EXAMPLES / "order-placed.json").read_text(encoding="utf-8"))
CANCELLED: dict = json.loads((EXAMPLES / "order-cancelled.json").read_text(encoding="utf-8"))
PLACED_BYTES = json.dumps(PLACED).encode()
CANCELLED_BYTES = json.dumps(CANCELLED).encode()
# the examples as they are on disk (indented, several lines) and in compact form
SEEDS = [PLACED_BYTES, CANCELLED_BYTES, (EXAMPLES / "order-placed.json").read_bytes(),
         json.dumps(PLACED, separators=(",", ":")).encode()]

inputs_checked = 0  # reported at the end of the run (conftest.py)


def fresh_processor() -> Processor:
    return Processor(KNOWLEDGE, DictHistoryStore())


def check_input(processor: Processor, raw: bytes, *, save: bool = True) -> Handled:
    global inputs_checked
    inputs_checked += 1
    try:
        return _check(processor, raw)
    except BaseException:
        if save and _final_replay():
            keep_regression(raw)
        raise


def _check(processor: Processor, raw: bytes) -> Handled:
    started = time.perf_counter()
    handled = processor.handle(raw, ORIGIN, NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < PER_INPUT_SECONDS, f"took {elapsed:.2f} s (bound {PER_INPUT_SECONDS} s)"
    assert handled.error is None, f"a defect in rxgate: {handled.error!r}"
    if handled.kind in ("cancelled", "duplicate"):
        assert handled.outputs == []
        if handled.kind == "cancelled":
            assert isinstance(processor.parse(raw, ORIGIN, NOW), OrderCancelled)
        return handled
    assert len(handled.outputs) == 1, handled
    (output,) = handled.outputs
    if handled.kind == "invalid":
        assert isinstance(output, DeadLetter)
        assert original_bytes(output) == expected_payload(raw)
        assert output.source == ORIGIN
        assert DeadLetter.model_validate_json(to_json(output)) == output
    else:
        assert handled.kind == "decision" and isinstance(output, Decision)
        assert CHECKS_FAILED_RULE not in {f.rule_id for f in output.findings}
        event = processor.parse(raw, ORIGIN, NOW)
        assert output.event_id == event.event_id and output.order_id == event.order.order_id
        assert Decision.model_validate_json(to_json(output)).model_dump() == output.model_dump()
    return handled


def original_bytes(letter: DeadLetter) -> bytes:
    if letter.payload_encoding == "base64":
        return base64.b64decode(letter.payload, validate=True)
    return letter.payload.encode("utf-8")


def expected_payload(raw: bytes) -> bytes:
    """What a dead letter of `raw` must hold: all of it, or the head of an over-size input."""
    if len(raw) <= MAX_INPUT_BYTES:
        return raw
    head = raw[:TRUNCATED_PAYLOAD_BYTES]
    for cut in range(4):  # the processor drops a split character's tail, at most 3 bytes
        try:
            (head[: len(head) - cut] if cut else head).decode("utf-8")
            return head[: len(head) - cut] if cut else head
        except UnicodeDecodeError:
            continue
    return head


def keep_regression(raw: bytes) -> Path:
    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"found-{hashlib.sha256(raw).hexdigest()[:16]}.bin"
    path.write_bytes(raw)
    return path


def _final_replay() -> bool:
    """True on hypothesis' last replay of a (shrunk) failing input, and outside hypothesis."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:
        return True


# --- building inputs ---------------------------------------------------------------------


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document: objects, lists and leaves, the root excluded."""
    found = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for key, value in items:
        here = (*prefix, key)
        found.append(here)
        found += paths(value, here)
    return found


def replaced(doc: Any, path: tuple, value: Any) -> Any:
    """A deep copy of `doc` with the value at `path` replaced (or deleted for DELETE)."""
    copy = json.loads(json.dumps(doc))
    target = copy
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copy


DELETE = object()
RAW = "\u0001RAW\u0001"  # a string placeholder replaced by a raw JSON token in the bytes


def with_raw_token(doc: Any, path: tuple, token: bytes) -> bytes:
    """The document with the value at `path` written as `token` (NaN, 1e400, ...)."""
    return json.dumps(replaced(doc, path, RAW)).encode().replace(
        json.dumps(RAW).encode(), token, 1)


# wrong types for every field
WRONG_TYPES: list[Any] = [None, True, False, 0, 1, -1, 1.5, -0.0, "", " ", "x", "70", "true",
                          [], [1], ["x"], {}, {"a": 1}]
# boundary and extreme values (the contract's bounds and beyond them)
EXTREMES: list[Any] = [
    2**31, 2**63, -(2**63), 10**30, 10**300, 1e308, -1e308, 5e-324, -5e-324, 1e-300, 0.0,
    0.01, 0.0099, 0.1, 0.0999, 1, 366, 367, 1000, 1001, 10000, 10000.5, 100000, 100001,
    1e9, 1e9 * (1 + 1e-15), 1e15, -1e15, 1.0000001e15,
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+23:59", "2200-12-31T23:59:59-23:59", "2201-01-01T00:00:00Z",
    "2026-03-02T09:00:00", "2026-02-30T09:00:00Z", "1955-02-29", "0001-01-01", "9999-12-31",
    "1772442000", "x" * 256, "x" * 257, "x" * 1001, "\u0000", "\u000b", "\u000c", "\r", "\ud800",
    "\U0001F600" * 300, "é" * 257, ["x"] * 501, [{}] * 3,
]
RAW_TOKENS: list[bytes] = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400",
                           b"1" + b"0" * 400, b"9" * 4300, b"9" * 4301, b"-0", b"1E+2",
                           b"[" * 300 + b"]" * 300, b'{"a": 1, "a": 1}', b'"\\ud800"',
                           b'"\\udc00\\ud800"', b'"\\u0000"', b"nul", b"tru", b"01", b".5"]

# bytes worth splicing into an input
SPLICES: list[bytes] = [b"\x00", b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\t", b" ", b"\xef\xbb\xbf",
                        b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b'"', b"\\", b"{", b"}",
                        b"[", b"]", b",", b":", b"NaN", b"Infinity", b"1e400", b"-", b"\\ud800",
                        b"\\u0000", b'"schema": "rx.order/1", ', b'"event_id": "dup", ']


def nested(depth: int, kind: str = "[") -> bytes:
    if kind == "[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def appended(doc_bytes: bytes, extra: bytes, key: bytes = b"x") -> bytes:
    """`extra` as the value of one more key at the end of a JSON object."""
    return doc_bytes.rstrip()[:-1] + b', "' + key + b'": ' + extra + b"}"
