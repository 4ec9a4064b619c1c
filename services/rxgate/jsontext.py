"""One parse of an input's bytes into JSON values, with limits, or a clear `JsonTextError`.

    parse(raw: bytes) -> dict | list | str | int | float | bool | None   # raises JsonTextError

The parser is jiter (the Rust JSON parser inside pydantic), which offers the limits the
service needs and never recurses on the Python stack:

- nesting deeper than MAX_DEPTH (200) arrays/objects         -> "nested deeper than 200 levels"
- `NaN`, `Infinity`, `-Infinity` anywhere (they are not JSON) -> "NaN / Infinity is not a JSON number"
- a number a 64-bit float cannot hold (1e400, a 400-digit integer, anywhere, also in a field
  the schema ignores)                                          -> "number out of range"
- the same key twice in one object (producers' parsers disagree on which one counts, so the
  service would not know which dose or patient it checked)    -> "duplicate key"
- a lone surrogate escape (`"\\ud800"`: no character), a control character inside a string,
  a byte order mark, trailing data, anything else that is not RFC 8259 JSON.

Every message says what is wrong and where (line and column as jiter counts them, or the path
to the value). A `JsonTextError` is a dead letter of kind `json` in the Processor: a problem
with the JSON text itself, never with the order's fields.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Any

import jiter

MAX_DEPTH = 200  # arrays/objects nested in each other; an order event needs 4
_FLOAT_MAX = sys.float_info.max
_BOM = b"\xef\xbb\xbf"
_POSITION = re.compile(r"at line (\d+) column (\d+)$")
_NON_FINITE = re.compile(rb"-?(NaN|Infinity)")
# What any JSON number beyond a 64-bit float (about 1.8e308) must contain: an exponent of at
# least three digits, or a run of at least 200 digits (with an exponent of at most 99, the
# integer part needs 210 digits). Where the text has neither, no number can be out of range
# and the walk over the parsed values is skipped; where it has one (also inside a string, or a
# small number such as 1e-300), the walk decides. Looked for in the text with every digit
# made 0, E made e and + made - (C-speed byte searches; a regular expression is slower).
_FOLD_NUMBERS = bytes.maketrans(b"0123456789E+", b"0000000000e-")
_LONG_RUN = b"0" * 200


class JsonTextError(ValueError):
    """The bytes are not JSON the service reads; the message says what and where."""


def parse(raw: bytes) -> Any:
    """The JSON value of `raw` (UTF-8 bytes); raises JsonTextError."""
    if raw.startswith(_BOM):
        raise JsonTextError("starts with a byte order mark (BOM, EF BB BF): JSON text must not")
    try:
        value = jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True,
                                cache_mode="keys")
    except ValueError as e:
        raise JsonTextError(_explain(str(e), raw)) from None
    # jiter has refused everything else; its nesting limit is 200 objects but 201 arrays, so
    # the walk that states the limit exactly runs only where there are enough brackets
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH or (
            _may_hold_a_huge_number(raw) and _has_huge_number(value)):
        _check_values(value)
    return value


def _may_hold_a_huge_number(raw: bytes) -> bool:
    """False when no number in the text can be beyond a 64-bit float (see _FOLD_NUMBERS)."""
    folded = raw.translate(_FOLD_NUMBERS)
    return b"e000" in folded or b"e-000" in folded or _LONG_RUN in folded


def _has_huge_number(value: Any) -> bool:
    """A fast look for a number beyond a 64-bit float (jiter reads 1e400 as inf)."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        node = pop()
        kind = type(node)
        if kind is dict:
            extend(node.values())
        elif kind is list:
            extend(node)
        elif kind is float:
            if node - node != 0.0:  # inf - inf is nan
                return True
        elif kind is int and (node > _FLOAT_MAX or node < -_FLOAT_MAX):
            return True
    return False


def _explain(message: str, raw: bytes) -> str:
    """jiter's message, made plain where it is cryptic."""
    if message.startswith("recursion limit exceeded"):
        return f"nested deeper than {MAX_DEPTH} levels (arrays/objects) {_where(message)}".strip()
    if message.startswith("number out of range"):
        return (f"number out of range (beyond what a 64-bit float holds) {_where(message)}").strip()
    if message.startswith("Detected duplicate key"):
        return message.replace("Detected duplicate key", "duplicate key", 1)
    if message.startswith(("expected value", "invalid number")):
        at = _offset(message, raw)  # at the N of NaN, or just after the - of -Infinity
        if at is not None and any(_NON_FINITE.match(raw, i) for i in (at, at - 1) if i >= 0):
            return f"NaN / Infinity is not a JSON number {_where(message)}".strip()
    if message.startswith("unexpected end of hex escape") or "surrogate" in message:
        return f"{message} (a \\u escape must be a whole character; a lone surrogate is not)"
    return message


def _where(message: str) -> str:
    m = _POSITION.search(message)
    return f"at line {m.group(1)} column {m.group(2)}" if m else ""


def _offset(message: str, raw: bytes) -> int | None:
    """Byte offset of jiter's (line, column), column counted from 1 in bytes of the line."""
    m = _POSITION.search(message)
    if not m:
        return None
    line, column = int(m.group(1)), int(m.group(2))
    start = 0
    for _ in range(line - 1):
        start = raw.find(b"\n", start) + 1
        if start == 0:
            return None
    return start + column - 1


def _check_values(value: Any) -> None:
    """Depth and number range over the parsed tree, iteratively (no recursion). The path to a
    value is kept as a linked crumb (parent, key) and spelled out only for an error."""
    stack: list[tuple[Any, int, Any]] = [(value, 0, None)]
    while stack:
        node, depth, crumb = stack.pop()
        if isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise JsonTextError(f"nested deeper than {MAX_DEPTH} levels (arrays/objects) "
                                    f"at {_path(crumb)}")
            stack.extend((v, depth + 1, (crumb, k)) for k, v in node.items())
        elif isinstance(node, list):
            if depth >= MAX_DEPTH:
                raise JsonTextError(f"nested deeper than {MAX_DEPTH} levels (arrays/objects) "
                                    f"at {_path(crumb)}")
            stack.extend((v, depth + 1, (crumb, i)) for i, v in enumerate(node))
        elif isinstance(node, float):
            if not math.isfinite(node):  # only an overflowing literal gets here: 1e400
                raise JsonTextError(f"number out of range (beyond what a 64-bit float holds) "
                                    f"at {_path(crumb)}")
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > _FLOAT_MAX:
            raise JsonTextError(f"number out of range (beyond what a 64-bit float holds) "
                                f"at {_path(crumb)}")


def _path(crumb: Any, limit: int = 200) -> str:
    """'order.dose.value', 'patient.labs.0.value'; '(document)' for the top level. Keys come
    from the input: each is cut to 40 characters, the whole path to `limit`."""
    parts = []
    while crumb is not None:
        crumb, key = crumb
        key = str(key)
        parts.append(key if len(key) <= 40 else key[:40] + "...")
    text = ".".join(reversed(parts)) or "(document)"
    return text if len(text) <= limit else "(...)" + text[-limit:]
