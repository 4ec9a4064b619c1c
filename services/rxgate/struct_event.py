"""An order event decoded by msgspec into plain structs, when the bytes are plainly safe.

    parse_struct_event(raw: bytes) -> an event struct | None

The fastest of the Processor's three ways to read an input, tried first (the next ones are
`plain_event.parse_plain_event`, pydantic-core straight from the bytes, and the exact path,
`jsontext.parse` then `contract.validate_order_event`). msgspec decodes the bytes straight into
`msgspec.Struct` classes made, when this module is imported, from the contract's own models (its
core schema): the same fields under the same names, with the same bounds. The rules, the
history and decide() read an event only through those names, so a struct event and a contract
model event of the same values give the same decision (tests/test_struct_event.py holds the two
paths to that, byte for byte, on the fuzz inputs, random mutations and a realistic stream).

`None` means "take the next way", which then gives every dead letter its reason as before: this
path never refuses anything itself. It only has to accept nothing the exact path would refuse,
and build what the exact path would build. It accepts only when all of this holds:

- the text is ASCII, starts with `{` and ends with `}` (no byte order mark, nothing around it);
- no backslash (so no escape: every string is its bytes between two quotes, and holds no
  quote) and no space beside a quote. A control byte inside a string is not JSON (msgspec
  refuses it; between tokens tab, line feed and carriage return are white space to both
  parsers), so the only white space a string can hold is a space, and none starts or ends
  one: stripping it (as the contract does to its ids and texts) changes nothing;
- no number that msgspec and jiter could read apart (see `_SHORT`);
- msgspec accepts it against the structs, which forbid *unknown* keys (such events take the
  next way, which ignores them). Every number field is bounded far inside a 64-bit float (no
  NaN, Infinity or huge number); every object is one struct, so nothing is deeper than the
  contract's own 5 levels; each time and date is read by the contract's own validator of that
  field (with its memo of recent strings, so the very same objects) and checked for its years;
- no duplicate key: `raw.count(b'"')` is twice the strings of the text (each key and each
  string value is two quotes; no string holds one), and the generated counter `_COUNTERS`
  gives the strings of the event as msgspec would write it back: every key but those left at
  their default (None), every string value (a time is one). The text has at least as many as
  the event, and as many only when no object repeats a key and no key was given as null.

Building the structs checks every assumption (known schema nodes only, every number bounded,
only the contract's own time and date validators); when one fails, this path is off and every
input takes the next way.
"""
from __future__ import annotations

import operator
from typing import Annotated, Any, Callable, Literal, Optional, Union

import msgspec
import msgspec.inspect as mi
from pydantic_core import SchemaValidator

from . import contract
from .jsontext import _FOLD_NUMBERS, _LONG_RUN

_NUMBER_LIMIT = 1e300  # every number field must be bounded within this on both sides
# msgspec and jiter read numbers alike but for some of over 4300 characters: jiter refuses an
# integer part of more than 4300 digits, which msgspec reads; msgspec reads an exponent of
# 100000 or more brought back into range by as many zeros (0.000...018e100000) as 0. A text
# that could hold such a number (over 4096 bytes, with a run of 200 digits: every digit made 0
# by jsontext's own folding) takes the next way.
_SHORT = 4096
_MEMO_SIZE = 4096  # times and dates read, kept per string as the contract's reader keeps them


class _Unsupported(Exception):
    """The contract's schema holds something this path does not reason about."""


class _TimeMarker(type):
    """The class of a time field's marker: a class msgspec does not know, so it hands the
    field's JSON value to its decode hook, `operator.getitem`: `marker[value]` is the value
    read (see `_Memo`). msgspec then checks that the result is an instance of the marker. The
    result is a time or a date (the contract's validator gives nothing else), and every time
    and date is true: the check is `operator.truth`, a C function (abc's register would run
    Python code on every check). The marker keeps, as class attributes, its field's validator
    (`validate`) and the times it has read (`memo`)."""

    __instancecheck__ = operator.truth
    memo: _Memo
    validate: Callable[[str], Any]


class _Memo(dict):
    """A time field's times and dates read, per string, as the contract's reader keeps them;
    a string not yet kept is read by the field's validator when looked up. Its `__getitem__`
    is its marker's `__class_getitem__`, so `marker[value]` is a dict lookup in C, and Python
    code runs only for a string not yet kept (a hook in Python cost a frame per time read:
    about 2,700 instructions an order). A list or an object is not hashable: TypeError, which
    msgspec refuses as it refuses the ValueError below."""

    __slots__ = ("validate",)

    def __missing__(self, value: Any) -> Any:
        # (only strings are kept, and no other JSON value equals one: nothing else is found)
        if type(value) is not str:
            raise ValueError("not a string")  # a number is never a time
        known = self.validate(value)  # raises ValidationError (a ValueError) when refused
        if len(self) >= _MEMO_SIZE:
            self.clear()
        self[value] = known
        return known


# every time node's marker (msgspec's hook is told the field's type, not the field), to itself
_TIME_READERS: dict[type, _TimeMarker] = {}


def _struct_type(node: dict, structs: dict[type, type]) -> Any:
    """The msgspec type for a node of the contract's core schema (see the module docstring)."""
    kind = node.get("type")
    if kind == "model":
        return _struct(node, structs)
    if kind == "nullable":
        return Optional[_struct_type(node["schema"], structs)]
    if kind == "list":
        if node.get("min_length") is not None or node.get("strict") is False:
            raise _Unsupported("a list with a minimum length")
        item = _struct_type(node["items_schema"], structs)
        limit = node.get("max_length")
        return Annotated[list[item], msgspec.Meta(max_length=limit)] if limit is not None \
            else list[item]
    if kind == "str":
        if node.get("pattern") is not None or node.get("to_lower") or node.get("to_upper") \
                or node.get("coerce_numbers_to_str"):
            raise _Unsupported("a string with a pattern or a case rule")
        meta = {k: node[k] for k in ("min_length", "max_length") if node.get(k) is not None}
        return Annotated[str, msgspec.Meta(**meta)] if meta else str
    if kind in ("int", "float"):
        if node.get("multiple_of") is not None or node.get("allow_inf_nan"):
            raise _Unsupported("a number with a step or infinities")
        bounds = {k: node[k] for k in ("ge", "gt", "le", "lt") if node.get(k) is not None}
        low = bounds.get("ge", bounds.get("gt"))
        high = bounds.get("le", bounds.get("lt"))
        if low is None or high is None or not -_NUMBER_LIMIT <= low <= high <= _NUMBER_LIMIT:
            raise _Unsupported("a number field without bounds")
        return Annotated[int if kind == "int" else float, msgspec.Meta(**bounds)]
    if kind == "bool":
        return bool
    if kind == "literal":
        expected = node["expected"]
        if not expected or not all(type(v) is str for v in expected):
            raise _Unsupported("a literal of anything but strings")
        return Literal[tuple(expected)]
    if kind == "function-after" and node["function"]["function"] is contract._in_years:
        inner = node["schema"]
        if inner.get("type") != "function-before" \
                or inner["schema"].get("type") not in ("datetime", "date"):
            raise _Unsupported("a year check not around a time or date reader")
        # the contract's own validator of this node: its text reader (with its memo) and its
        # year check, strict as its model is
        memo = _Memo()
        memo.validate = SchemaValidator(node).validate_python
        marker = _TimeMarker(f"_Time{len(_TIME_READERS)}", (), {
            "memo": memo, "validate": memo.validate, "__class_getitem__": memo.__getitem__})
        _TIME_READERS[marker] = marker
        return marker
    raise _Unsupported(f"schema node {kind!r}")


def _struct(node: dict, structs: dict[type, type], tag: str | None = None) -> type:
    """The msgspec Struct of a model node: its fields, optional ones defaulting to None."""
    cls = node["cls"]
    if tag is None and cls in structs:
        return structs[cls]
    config = node.get("config") or {}
    fields = node["schema"]
    if config.get("extra_fields_behavior") not in (None, "ignore", "forbid") \
            or not config.get("strict") or node.get("custom_init") or node.get("root_model") \
            or node.get("post_init") or fields.get("type") != "model-fields" \
            or fields.get("computed_fields") or fields.get("extras_schema") \
            or fields.get("model_validator"):
        raise _Unsupported(f"model {cls.__name__}")
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    rename: dict[str, str] = {}
    for name, field in fields["fields"].items():
        if field.get("type") != "model-field" or not name.isidentifier() or name.startswith("_"):
            raise _Unsupported(f"field {name!r}")
        alias = field.get("validation_alias")
        if alias is not None:
            if not isinstance(alias, str):
                raise _Unsupported("a field with alias paths")
            rename[name] = alias
        schema = field["schema"]
        if name == "event_type" and tag is not None:
            continue  # msgspec's tag field
        if schema["type"] == "default":
            if schema.get("default") is not None or "default_factory" in schema:
                raise _Unsupported(f"field {name!r} defaults to something but None")
            schema = schema["schema"]
            if schema["type"] != "nullable":
                raise _Unsupported(f"field {name!r} defaults to None but may not be None")
            defaults[name] = None
        annotations[name] = _struct_type(schema, structs)
    # gc=False: the garbage collector does not track the structs (none of its work per struct
    # made, and fewer collections). Only a reference cycle would need it, and a struct holds
    # none: it is frozen, made by the decoder only, and its fields hold strings, numbers,
    # times, other structs and lists of those (the walk above knows no other node)
    made = msgspec.defstruct(
        cls.__name__, [(n, t, defaults[n]) if n in defaults else (n, t)
                       for n, t in annotations.items()],
        module=__name__, kw_only=True, frozen=True, forbid_unknown_fields=True,
        omit_defaults=True, gc=False, rename=rename or None,
        tag_field="event_type" if tag else None, tag=tag)
    if tag is None:
        structs[cls] = made
    return made


def _build() -> tuple[msgspec.json.Decoder | None, dict[type, type],
                      dict[type, Callable[[Any], int]]]:
    structs: dict[type, type] = {}
    try:
        schema = contract._order_event.core_schema
        if schema.get("type") != "tagged-union" or schema.get("discriminator") != "event_type":
            raise _Unsupported("the order event is not a union tagged by event_type")
        events: dict[type, type] = {}
        for tag, choice in schema["choices"].items():
            if choice.get("type") != "model" or not isinstance(tag, str):
                raise _Unsupported("a choice that is not a model")
            field = choice["schema"]["fields"].get("event_type")
            if field is None or field["schema"] != {"type": "literal", "expected": [tag]}:
                raise _Unsupported("a choice whose event_type is not its tag")
            events[choice["cls"]] = _struct(choice, structs, tag)
        decoder = msgspec.json.Decoder(Union[tuple(events.values())], dec_hook=operator.getitem)
        counters = {struct: _string_counter(struct) for struct in events.values()}
        return decoder, events, counters
    except (_Unsupported, KeyError, TypeError, ValueError, SyntaxError):
        _TIME_READERS.clear()
        return None, {}, {}


# --- the strings (keys and string values) of an event, counted from its structs -------------

_STRINGS = (mi.StrType, mi.LiteralType, mi.CustomType)  # written as a JSON string (a time is)
_NUMBERS = (mi.IntType, mi.FloatType, mi.BoolType)


def _unwrapped(t: mi.Type) -> tuple[mi.Type, bool]:
    """The type inside `X | None`, and whether None was allowed."""
    if isinstance(t, mi.UnionType):
        others = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if len(others) != 1 or len(others) == len(t.types):
            raise _Unsupported("a union of anything but one type and None")
        return others[0], True
    return t, False


def _fixed(t: mi.Type) -> int | None:
    """The strings a field of this (non-None) type adds, key included, when that is one
    number; else None."""
    if isinstance(t, _STRINGS):
        if isinstance(t, mi.LiteralType) and not all(type(v) is str for v in t.values):
            raise _Unsupported("a literal of anything but strings")
        return 2
    if isinstance(t, _NUMBERS):
        return 1
    if isinstance(t, mi.StructType):
        inside = 2 if t.tag_field is not None else 0
        for f in t.fields:
            if not f.required:
                return None
            inner, may_be_none = _unwrapped(f.type)
            fixed = _fixed(inner)
            if fixed is None or may_be_none:
                return None
            inside += fixed
        return 1 + inside
    if isinstance(t, mi.ListType):
        return None
    raise _Unsupported(f"a field of type {type(t).__name__}")


def _count_lines(t: mi.StructType, value: str, indent: str, lines: list[str],
                 names: list[int]) -> int:
    """Appends to `lines` the statements correcting `n` for the struct `value` names (an
    expression): a field left at None takes off the strings it would add, a list adds its
    items'. Returns the strings of the struct with every field set and every list empty, its
    own key left out. (Counting down from every field set: an event mostly sets its optional
    fields, and then only the test of each runs.)"""
    full = 2 if t.tag_field is not None else 0  # the tag's key and its value
    for f in t.fields:
        if not f.name.isidentifier():
            raise _Unsupported(f"a field {f.name!r}")
        inner_t, may_be_none = _unwrapped(f.type)
        if may_be_none and f.default is not None:
            raise _Unsupported(f"a field {f.name!r} that may be None with another default")
        fixed = _fixed(inner_t)
        if fixed is not None:
            if may_be_none:
                lines.append(f"{indent}if {value}.{f.name} is None:\n")
                lines.append(f"{indent}    n -= {fixed}\n")
            full += fixed
            continue
        names[0] += 1
        var = f"v{names[0]}"
        inner = indent + "    " if may_be_none else indent
        lines.append(f"{indent}{var} = {value}.{f.name}\n")
        present: list[str] = []  # the statements for when the field is set
        if isinstance(inner_t, mi.StructType):
            most = 1 + _count_lines(inner_t, var, inner, present, names)
        else:
            most = 1  # a list: its key
            item = inner_t.item_type
            if isinstance(_unwrapped(item)[0], _STRINGS) and not _unwrapped(item)[1]:
                present.append(f"{inner}n += len({var})\n")
            elif isinstance(item, _NUMBERS):
                pass
            elif isinstance(item, mi.StructType) and (each := _fixed(item)) is not None:
                present.append(f"{inner}n += {each - 1} * len({var})\n")
            elif isinstance(item, mi.StructType):
                names[0] += 1
                one = f"v{names[0]}"
                inside: list[str] = []
                each = _count_lines(item, one, inner + "    ", inside, names)
                present.append(f"{inner}n += {each} * len({var})\n")
                present.append(f"{inner}for {one} in {var}:\n")
                present.extend(inside)
            else:
                raise _Unsupported(f"a list of {type(item).__name__}")
        full += most
        if may_be_none:
            lines.append(f"{indent}if {var} is None:\n")
            lines.append(f"{indent}    n -= {most}\n")
            if present:
                lines.append(f"{indent}else:\n")
        lines.extend(present)
    return full


def _string_counter(struct: type) -> Callable[[Any], int]:
    """A function of an event of this struct returning the strings its JSON text, as msgspec
    would write it back, holds: keys and string values (a time is one), the fields left at
    None left out. The walk written out for this struct's tree (attribute reads, no recursion);
    its text is kept on it, as `source`, for a reader."""
    lines: list[str] = []
    constant = _count_lines(mi.type_info(struct), "e", "    ", lines, [0])
    source = "def count(e):\n    n = %d\n%s    return n\n" % (constant, "".join(lines))
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<struct_event string counter of {struct.__name__}>", "exec"),
         namespace)
    count = namespace["count"]
    count.source = source
    return count


# EVENT_STRUCTS: contract model class -> its struct; _COUNTERS: event struct -> its counter
_DECODER, EVENT_STRUCTS, _COUNTERS = _build()
OrderPlacedStruct = EVENT_STRUCTS.get(contract.OrderPlaced)
OrderCancelledStruct = EVENT_STRUCTS.get(contract.OrderCancelled)
# the struct of an order.placed event, or a class no event is (for `type(event) is` tests)
PLACED_STRUCT = OrderPlacedStruct if OrderPlacedStruct is not None else type(None)
_decode = _DECODER.decode if _DECODER is not None else None


def parse_struct_event(raw: bytes) -> Any:
    """The event `raw` holds, as structs, when the bytes are plainly safe (module docstring);
    else None: the caller takes the next way. `raw` must be at most the input size limit."""
    # (partition, not find or `in`: bytes.find parses its arguments as a tuple, several
    # hundred instructions a call; partition takes one, and returns `raw` itself when it holds
    # no backslash. bytes.__contains__ first tries its argument as an integer, and raises and
    # clears a TypeError for it: a few thousand instructions)
    try:
        if (_decode is None or raw[0] != 123 or raw[-1] != 125 or not raw.isascii()  # { }
                or raw.partition(b"\\")[1]):
            return None
    except IndexError:  # (empty)
        return None
    if len(raw) <= _SHORT:
        # a space beside a quote: each space's neighbours, one partition per space (it copies
        # what follows the space: on a short text only, so at most _SHORT bytes a space).
        # `rest` is never empty (the text ends with `}`); `head` is when two spaces meet.
        head, space, rest = raw.partition(b" ")
        while space:
            if rest[0] == 34 or (head and head[-1] == 34):
                return None
            head, space, rest = rest.partition(b" ")
    else:
        if raw.translate(_FOLD_NUMBERS).find(_LONG_RUN) >= 0:
            return None
        at = raw.find(b" ")  # (a find per space: one search for a two-byte text costs several)
        while at >= 0:
            if raw[at - 1] == 34 or raw[at + 1] == 34:  # a space beside a quote
                return None
            at = raw.find(b" ", at + 1)
    try:
        event = _decode(raw)
        if raw.count(b'"') == 2 * _COUNTERS[type(event)](event):
            return event
    except Exception:  # refused (or anything unexpected): the next way decides
        pass
    return None
