"""An order event read straight from its bytes in one pass, when the bytes are plainly safe.

    parse_plain_event(raw: bytes) -> OrderPlaced | OrderCancelled | None

The Processor's exact path parses the bytes with `jsontext.parse` (jiter, with the limits the
hostile-input rules ask for) and validates the values with `contract.validate_order_event`:
two passes and a dict in between. This is one pass: pydantic-core validates the bytes directly
(`validate_json`) against the very same models, so the objects are the same classes with the
same values. It is tried first; `None` means "take the exact path", which then gives every
dead letter its reason as before. So this path never refuses anything itself: it only has to
accept nothing the exact path would refuse, and build what the exact path would build.

It accepts only when all of this holds (each is cheap, or the validation itself):

- the text starts with `{` and ends with `}`: no byte order mark, no leading or trailing bytes;
- no `\\ud` or `\\uD` (so no surrogate escape, lone or paired; other escapes are read alike by
  jiter and by pydantic-core, whose JSON parser jiter is);
- no tab, line feed or carriage return, and no space right before a `:` (so every key's closing
  quote is followed by its colon);
- the bytes are a valid order event of the contract with *no field the contract does not name*
  (the schema below forbids unknown keys; such events take the exact path, which ignores them).
  Then every JSON object is one model, every number sits in a field with bounds far inside a
  64-bit float (so no NaN, Infinity or huge number), and nothing is deeper than 5 levels;
- no duplicate key: with the above, `raw.count(b'":')` is at least the number of keys in the
  text (each key's closing quote is followed by its colon; a string starting with a colon, or
  an escaped quote before a colon, adds to the count), and the models were given
  `_KEYS[type(event)](event)` distinct ones (the sum of their fields set). The two are equal
  only when no object repeats a key (and no object is anything but a model).

The schema is the contract's own core schema with unknown keys forbidden, and each time's
"read the RFC 3339 string / year within 1900..2200" validators (Python functions, which strict
JSON validation does not need) replaced by pydantic's own datetime and date parsing with a
range that keeps the written year within 1900..2200 (dates: exactly; times: a day inside, so an
offset cannot move the year; a time in the first or last day takes the exact path). Building
it checks every assumption above (known node types only, every number bounded, no other
function); when one fails, the fast path is off and every input takes the exact path.
tests/test_plain_event.py compares both paths on the fuzz inputs and random mutations.

The sum of the fields set is computed by one function per event class, written from the fast
schema when it is built (`_key_counter`): the models' tree unrolled (attribute reads, no
recursion, no look-up of what each class holds), and a model whose every field is required
(so its fields set is all its fields) counted as that constant, a list of them as the constant
times its length. The test compares it with a plain walk over the fields sets.
"""
from __future__ import annotations

import datetime as dt
from operator import attrgetter
from typing import Any, Callable

from pydantic_core import SchemaValidator

from . import contract
from .contract import OrderCancelled, OrderPlaced

_UTC = dt.timezone.utc
# a time strictly inside these instants has its year, as written with any offset (less than a
# day), within YEAR_MIN..YEAR_MAX
_TIME_LOW = dt.datetime(contract.YEAR_MIN, 1, 2, tzinfo=_UTC)
_TIME_HIGH = dt.datetime(contract.YEAR_MAX, 12, 31, tzinfo=_UTC)
_DATE_LOW = dt.date(contract.YEAR_MIN, 1, 1)
_DATE_HIGH = dt.date(contract.YEAR_MAX, 12, 31)
_NUMBER_LIMIT = 1e300  # every number field must be bounded within this on both sides

_LEAVES = {"str", "int", "float", "bool", "literal", "datetime", "date"}


class _Unsupported(Exception):
    """The contract's schema holds something this path does not reason about."""


def _fast_schema(node: dict, classes: list[type]) -> dict:
    """A copy of the contract's core schema for the fast path (see the module docstring);
    `classes` gets the class of every model node."""
    kind = node.get("type")
    copy = dict(node)
    if kind == "function-after" and node["function"]["function"] is contract._in_years:
        inner = node["schema"]
        if inner.get("type") != "function-before" or not isinstance(inner.get("schema"), dict):
            raise _Unsupported("a year check not around a text reader")
        base = dict(inner["schema"])
        if {"gt", "ge", "lt", "le", "strict"} & set(base):
            raise _Unsupported("a time with its own bounds")
        # strict as the text reader is: a time only from a string, never from a number
        if base.get("type") == "datetime" and base.get("tz_constraint") == "aware":
            base.update(gt=_TIME_LOW, lt=_TIME_HIGH, strict=True)
        elif base.get("type") == "date":
            base.update(ge=_DATE_LOW, le=_DATE_HIGH, strict=True)
        else:
            raise _Unsupported(f"a year check around {base.get('type')}")
        return base
    if kind == "tagged-union":
        copy["choices"] = {tag: _fast_schema(choice, classes)
                           for tag, choice in node["choices"].items()}
    elif kind == "model":
        config = dict(node.get("config") or {})
        fields = node["schema"]
        if config.get("extra_fields_behavior") not in (None, "ignore", "forbid") \
                or node.get("custom_init") or node.get("root_model") or node.get("post_init") \
                or fields.get("type") != "model-fields" or fields.get("computed_fields") \
                or fields.get("extras_schema") or fields.get("model_validator"):
            raise _Unsupported(f"model {node.get('cls')}")
        config["extra_fields_behavior"] = "forbid"
        copy["config"] = config
        copy["schema"] = {**fields, "extra_behavior": "forbid", "fields": {
            name: _fast_schema(field, classes) for name, field in fields["fields"].items()}}
        classes.append(node["cls"])
    elif kind in ("model-field", "nullable", "default"):
        if kind == "model-field" and not isinstance(node.get("validation_alias"), (str, type(None))):
            raise _Unsupported("a field with alias paths")
        copy["schema"] = _fast_schema(node["schema"], classes)
    elif kind == "list":
        copy["items_schema"] = _fast_schema(node["items_schema"], classes)
    elif kind in ("int", "float"):
        low = node.get("ge", node.get("gt"))
        high = node.get("le", node.get("lt"))
        if low is None or high is None or not -_NUMBER_LIMIT <= low <= high <= _NUMBER_LIMIT:
            raise _Unsupported("a number field without bounds")
    elif kind == "str":
        if node.get("pattern") is not None:
            raise _Unsupported("a string pattern")  # not reasoned about; none in the contract
    elif kind not in _LEAVES:
        raise _Unsupported(f"schema node {kind!r}")
    return copy


def _build() -> tuple[SchemaValidator | None, dict[type, Callable[[Any], int]], tuple[type, ...]]:
    classes: list[type] = []
    try:
        schema = _fast_schema(contract._order_event.core_schema, classes)
        if schema["type"] != "tagged-union":
            raise _Unsupported("the order event is not a tagged union")
        counters = {choice["cls"]: _key_counter(choice) for choice in schema["choices"].values()}
        return _unshared_validator(schema, classes), counters, tuple(dict.fromkeys(classes))
    except (_Unsupported, KeyError, TypeError, ValueError, SyntaxError):
        return None, {}, ()


def _unshared_validator(schema: dict, classes: list[type]) -> SchemaValidator:
    """The validator of `schema` itself. pydantic-core builds a `model` node whose class is
    complete from the class's own validator (`__pydantic_validator__`, the contract's), not
    from the node; so each class is marked incomplete while this one is built, and restored
    at once. Should a pydantic release stop honouring the mark, the contract's validators are
    used: slower (tests/test_plain_event.py says so), still the same events."""
    saved = [(cls, cls.__dict__.get("__pydantic_complete__")) for cls in classes]
    try:
        for cls, _ in saved:
            type.__setattr__(cls, "__pydantic_complete__", False)
        return SchemaValidator(schema)
    finally:
        for cls, complete in saved:
            type.__setattr__(cls, "__pydantic_complete__", complete)


# --- the number of keys the models of an event were given ----------------------------------


def _unwrapped(schema: dict) -> tuple[dict, bool]:
    """The schema inside `default` and `nullable`, and whether the value may be None. A field
    holding models must not default to anything but None (a model the text does not hold)."""
    may_be_none = False
    defaults = False
    while schema["type"] in ("default", "nullable"):
        may_be_none = may_be_none or schema["type"] == "nullable"
        defaults = defaults or (schema["type"] == "default" and (
            schema.get("default") is not None or "default_factory" in schema))
        schema = schema["schema"]
    if defaults and (schema["type"] == "model" or _model_items(schema) is not None):
        raise _Unsupported("a field holding models with a default other than None")
    return schema, may_be_none


def _model_items(schema: dict) -> dict | None:
    """The model node of a list of models, else None."""
    if schema["type"] == "list" and schema["items_schema"]["type"] == "model":
        return schema["items_schema"]
    return None


def _fixed_keys(model: dict) -> int | None:
    """The keys every object read as this model has, models inside included, when that is one
    number: every field required (no default: its fields set is all its fields) and not None,
    every field holding a model holding a fixed number, none a list of models. Else None."""
    keys = 0
    for field in model["schema"]["fields"].values():
        schema = field["schema"]
        if schema["type"] in ("default", "nullable"):
            return None
        if schema["type"] == "model":
            inside = _fixed_keys(schema)
            if inside is None:
                return None
            keys += inside
        elif _model_items(schema) is not None:
            return None
        keys += 1
    return keys


def _key_counter(model: dict) -> Callable[[Any], int]:
    """A function of a `model` event returning the sum of the fields set of its models (nested
    ones included): a walk over the fields sets written out for this model's tree, which the
    fast schema fixes (the contract's models do not hold themselves). Its text is kept on it,
    as `source`, for a reader."""
    lines: list[str] = []
    fixed = _count_lines(model, "m", 1, lines, [0])
    source = "def count(m):\n    n = %d\n%s    return n\n" % (fixed, "".join(lines))
    namespace: dict[str, Any] = {"_fields_set": _fields_set}
    exec(compile(source, f"<plain_event key counter of {model['cls'].__name__}>", "exec"),
         namespace)
    count = namespace["count"]
    count.source = source
    return count


def _count_lines(model: dict, value: str, depth: int, lines: list[str], names: list[int]) -> int:
    """Appends to `lines` the statements adding to `n` the keys of the model `value` names
    (an expression) and of the models inside it; returns the part that is a constant."""
    fixed = _fixed_keys(model)
    if fixed is not None:
        return fixed
    cls = model["cls"]
    indent = "    " * depth
    lines.append(f"{indent}n += len({value}.__pydantic_fields_set__)\n")
    constant = 0
    for name, field in model["schema"]["fields"].items():
        schema, may_be_none = _unwrapped(field["schema"])
        items = _model_items(schema)
        if schema["type"] != "model" and items is None:
            continue
        if not name.isidentifier() or any(name in vars(k) for k in cls.__mro__):
            raise _Unsupported(f"a field {name!r} not read as an attribute")
        if schema["type"] == "model" and (fixed := _fixed_keys(schema)) is not None:
            if not may_be_none:
                constant += fixed
                continue
            lines.append(f"{indent}if {value}.{name} is not None:\n")
            lines.append(f"{indent}    n += {fixed}\n")
            continue
        names[0] += 1
        var = f"v{names[0]}"
        inner = indent
        lines.append(f"{indent}{var} = {value}.{name}\n")
        if may_be_none:
            lines.append(f"{indent}if {var} is not None:\n")
            inner += "    "
        if schema["type"] == "model":
            inside = _count_lines(schema, var, len(inner) // 4, lines, names)
            if inside:
                lines.append(f"{inner}n += {inside}\n")
        elif (fixed := _fixed_keys(items)) is not None:
            lines.append(f"{inner}n += {fixed} * len({var})\n")
        elif not any(_holds_a_model(f["schema"]) for f in items["schema"]["fields"].values()):
            # models holding no model: their fields set, summed in C
            lines.append(f"{inner}n += sum(map(len, map(_fields_set, {var})))\n")
        else:
            names[0] += 1
            item = f"v{names[0]}"
            lines.append(f"{inner}for {item} in {var}:\n")
            inside = _count_lines(items, item, len(inner) // 4 + 1, lines, names)
            if inside:
                lines.append(f"{inner}    n += {inside}\n")
    return constant


def _holds_a_model(schema: dict) -> bool:
    schema, _ = _unwrapped(schema)
    return schema["type"] == "model" or _model_items(schema) is not None


_fields_set = attrgetter("__pydantic_fields_set__")
_VALIDATOR, _KEYS, _CLASSES = _build()
_validate_json = _VALIDATOR.validate_json if _VALIDATOR is not None else None


def parse_plain_event(raw: bytes) -> OrderPlaced | OrderCancelled | None:
    """The event `raw` holds, when the bytes are plainly safe (module docstring); else None:
    the caller takes the exact path (`jsontext.parse` and `contract.validate_order_event`).
    `raw` must already be known to be UTF-8 and at most the input size limit."""
    if (_validate_json is None or raw[:1] != b"{" or raw[-1:] != b"}"
            or b"\n" in raw or b"\r" in raw or b"\t" in raw or b" :" in raw
            or (b"\\" in raw and (b"\\ud" in raw or b"\\uD" in raw))):
        return None
    try:
        event = _validate_json(raw)
        if raw.count(b'":') == _KEYS[type(event)](event):
            return event
    except Exception:  # refused (or anything unexpected): the exact path decides
        pass
    return None
