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
  an escaped quote before a colon, adds to the count), and the models were given `_keys(event)`
  distinct ones (the sum of their fields set). The two are equal only when no object repeats a
  key (and no object is anything but a model).

The schema is the contract's own core schema with unknown keys forbidden, and each time's
"read the RFC 3339 string / year within 1900..2200" validators (Python functions, which strict
JSON validation does not need) replaced by pydantic's own datetime and date parsing with a
range that keeps the written year within 1900..2200 (dates: exactly; times: a day inside, so an
offset cannot move the year; a time in the first or last day takes the exact path). Building
it checks every assumption above (known node types only, every number bounded, no other
function); when one fails, the fast path is off and every input takes the exact path.
tests/test_plain_event.py compares both paths on the fuzz inputs and random mutations.
"""
from __future__ import annotations

import datetime as dt
from operator import attrgetter
from typing import Any

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


def _fast_schema(node: dict, children: dict[type, list[tuple[str, str]]]) -> dict:
    """A copy of the contract's core schema for the fast path (see the module docstring);
    `children` gets, per model class, the fields holding models (and how: `_holds_models`)."""
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
        copy["choices"] = {tag: _fast_schema(choice, children)
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
            name: _fast_schema(field, children) for name, field in fields["fields"].items()}}
        children[node["cls"]] = [
            (name, kind) for name, field in fields["fields"].items()
            for kind in [_holds_models(field["schema"])] if kind is not None]
    elif kind in ("model-field", "nullable", "default"):
        if kind == "model-field" and not isinstance(node.get("validation_alias"), (str, type(None))):
            raise _Unsupported("a field with alias paths")
        copy["schema"] = _fast_schema(node["schema"], children)
    elif kind == "list":
        copy["items_schema"] = _fast_schema(node["items_schema"], children)
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


_MODEL, _MODELS, _FLAT_MODELS = "model", "models", "flat models"


def _holds_models(schema: dict) -> str | None:
    """_MODEL, _MODELS (a list of them), _FLAT_MODELS (a list of models with no model field)
    or None (neither), through default and nullable."""
    while schema["type"] in ("default", "nullable"):
        schema = schema["schema"]
    if schema["type"] == "model":
        return _MODEL
    if schema["type"] == "list" and schema.get("items_schema", {}).get("type") == "model":
        fields = schema["items_schema"]["schema"]["fields"].values()
        return _MODELS if any(_holds_models(f["schema"]) for f in fields) else _FLAT_MODELS
    return None


def _build() -> tuple[SchemaValidator | None, dict[type, tuple[tuple[str, str], ...]]]:
    children: dict[type, list[tuple[str, str]]] = {}
    try:
        schema = _fast_schema(contract._order_event.core_schema, children)
        if schema["type"] != "tagged-union":
            raise _Unsupported("the order event is not a tagged union")
        return _unshared_validator(schema, list(children)), {
            cls: tuple(fields) for cls, fields in children.items()}
    except (_Unsupported, KeyError, TypeError, ValueError):
        return None, {}


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


_VALIDATOR, _CHILDREN = _build()
_validate_json = _VALIDATOR.validate_json if _VALIDATOR is not None else None


_fields_set = attrgetter("__pydantic_fields_set__")


def _keys(model: Any) -> int:
    """How many keys the models were given: the fields set of each, nested ones included."""
    n = len(model.__pydantic_fields_set__)
    values = model.__dict__
    for name, kind in _CHILDREN[type(model)]:
        value = values[name]
        if value is None:
            continue
        if kind is _MODEL:
            n += _keys(value)
        elif kind is _FLAT_MODELS:  # models holding no model: their fields set, summed in C
            n += sum(map(len, map(_fields_set, value)))
        else:
            for item in value:
                n += _keys(item)
    return n


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
        if raw.count(b'":') == _keys(event):
            return event
    except Exception:  # refused (or anything unexpected): the exact path decides
        pass
    return None
