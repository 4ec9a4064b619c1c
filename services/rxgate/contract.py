"""The wire contract (docs/contract.md) as pydantic v2 models.

Every message that crosses a topic or leaves `rxgate check` is one of these models. Input is
validated strictly (`parse_order_event`, or `validate_order_event` on JSON already parsed by
`rxgate.jsontext`): a string is never coerced into a number or a boolean, a time must be an
RFC 3339 string with an offset, and unknown fields are ignored so that producers may add
optional fields without breaking us.

Bounds: every number and time of an order event has a plausible range (stated in the field's
description, so it is in the JSON Schema too); beyond it the event is a dead letter of kind
`schema` naming the field. The bounds are far outside anything a real order carries; they keep
absurd values (a cycle of 2^31, a weight of 5e-324 kg, a year 0001 time) out of the rules'
arithmetic, where they would overflow. Strings and lists are bounded too, so one producer
cannot grow a patient's history or a lookup cache by megabytes per message.

`rxgate schemas` writes the JSON Schema of each message into `schemas/`; a test fails when the
checked-in files drift from these models.
"""
from __future__ import annotations

import datetime as dt
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

# --- bounds of an order event (documented in each field's description) --------------------

MAX_ID = 256  # ids, names, codes, units: a UUID is 36 characters
MAX_TEXT = 1000  # free text: a condition, an allergy, a regimen name
MAX_LIST = 500  # allergies, conditions, current medications
MAX_LABS = 5000  # laboratory results sent with one order
YEAR_MIN, YEAR_MAX = 1900, 2200  # every time and date of an order event, as written


def _in_years(value: dt.date) -> dt.date:
    if not YEAR_MIN <= value.year <= YEAR_MAX:
        raise PydanticCustomError(
            "year_range", "Year {year} is out of range: times and dates must lie in the years "
                          "{low} to {high}", {"year": value.year, "low": YEAR_MIN, "high": YEAR_MAX})
    return value


def _from_text(adapter: TypeAdapter):
    """Parse an RFC 3339 string the way strict JSON validation does; leave other types to the
    strict type check (which refuses them: a number is never a time).

    The same strings recur (the labs of one order share a time, a patient's birth date is on
    every order), so the values of the last few thousand strings read are kept: a time is
    immutable, and a string that did not parse is never kept (it is parsed, and refused, again).
    """
    validate = adapter.validator.validate_strings
    memo: dict[str, Any] = {}

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        known = memo.get(value)
        if known is not None:
            return known
        try:
            parsed = validate(value, strict=True)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            raise PydanticCustomError(err["type"], err["msg"]) from None
        if len(memo) >= 4096:
            memo.clear()
        memo[value] = parsed
        return parsed

    return BeforeValidator(parse)


_TIME_RANGE = f"; the year must be {YEAR_MIN}..{YEAR_MAX}"
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)]
NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=MAX_TEXT)]
Time = AwareDatetime  # RFC 3339 with an offset; a naive time is a schema error
# the times and dates of an order event: also from already-parsed JSON, and within the years
EventTime = Annotated[AwareDatetime, _from_text(TypeAdapter(AwareDatetime)),
                      AfterValidator(_in_years)]
Date = Annotated[dt.date, _from_text(TypeAdapter(dt.date)), AfterValidator(_in_years)]

DoseUnit = Literal["mg", "g", "mcg", "mg/kg", "mg/m2", "units", "units/kg", "mL"]
Severity = Literal["none", "info", "warning", "major", "contraindicated"]
FindingSeverity = Literal["info", "warning", "major", "contraindicated"]
Category = Literal["dose", "interval", "combination", "contraindication", "data"]
InvalidKind = Literal["encoding", "json", "schema", "too_large"]

SEVERITY_ORDER: tuple[str, ...] = ("none", "info", "warning", "major", "contraindicated")


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity)


class _Input(BaseModel):
    """Inbound messages: strict types, unknown fields ignored (producers may add optional ones)."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- order event (rx.orders.v1) -------------------------------------------------------------


_ID = f"at most {MAX_ID} characters"


class Code(_Input):
    system: Id = Field(description=f"rxnorm, atc, ...; {_ID}")
    value: Id = Field(description=_ID)


class Drug(_Input):
    name: Id = Field(description=f"Generic name, case-insensitive; {_ID}")
    code: Code | None = None


class Dose(_Input):
    value: float = Field(gt=0, le=1e9, description=(
        "The amount in `unit`; greater than 0 and at most 1e9 (above the largest real dose in "
        "any unit: penicillin G, about 2.4e7 units a day)"))
    unit: DoseUnit


class Frequency(_Input):
    count: int = Field(ge=1, le=1000, description="Doses per period; 1..1000")
    period: float = Field(ge=0.01, le=10000, description=(
        "In `period_unit`; 0.01..10000 (10000 h is over a year; 0.01 h is 36 s)"))
    period_unit: Literal["h", "d", "wk"]


class Regimen(_Input):
    name: str | None = Field(default=None, max_length=MAX_TEXT,
                             description=f"at most {MAX_TEXT} characters")
    cycle: int | None = Field(default=None, ge=1, le=1000, description=(
        "Treatment-plan cycle; 1..1000 (1000 cycles of 28 days are 77 years)"))
    day: int | None = Field(default=None, ge=1, le=366, description=(
        "Day of the cycle; 1..366 (no cycle is longer than a year)"))


class Infusion(_Input):
    volume_ml: float | None = Field(default=None, gt=0, le=10000, description=(
        "Greater than 0 and at most 10000 mL (10 L)"))
    duration_min: float | None = Field(default=None, ge=0.01, le=100000, description=(
        "0.01..100000 min (0.6 s, a rapid push, to 69 days, a month-long continuous infusion)"))


class Order(_Input):
    order_id: Id = Field(description=_ID)
    drug: Drug
    dose: Dose
    route: Id = Field(description=f"IV, SC, PO, IM, IT, ... as written; case-insensitive; {_ID}")
    scheduled_for: EventTime = Field(description=f"When this dose is to be given{_TIME_RANGE}")
    frequency: Frequency | None = None
    regimen: Regimen | None = None
    infusion: Infusion | None = None
    prescriber_id: str | None = Field(default=None, max_length=MAX_ID, description=_ID)


class Lab(_Input):
    code: Id = Field(description=f"A LOINC code or ANC, PLT, HGB, ...; {_ID}")
    value: float = Field(ge=-1e15, le=1e15, description=(
        "As reported in `unit`; -1e15..1e15 (covers counts per litre, a platelet count is "
        "about 1e11/L; negative for a base excess)"))
    unit: Id = Field(description=_ID)
    taken_at: EventTime = Field(description=f"When the sample was taken{_TIME_RANGE}")


class Medication(_Input):
    name: Id = Field(description=_ID)
    code: Code | None = None


class Patient(_Input):
    patient_id: Id = Field(description=_ID)
    birth_date: Date | None = Field(default=None, description=f"YYYY-MM-DD{_TIME_RANGE}")
    sex: str | None = Field(default=None, max_length=MAX_ID, description=_ID)
    weight_kg: float | None = Field(default=None, ge=0.1, le=1000, description=(
        "0.1..1000 kg (below the lightest surviving newborn, above the heaviest person recorded)"))
    height_cm: float | None = Field(default=None, ge=10, le=300, description=(
        "10..300 cm (below the smallest newborn, above the tallest person recorded)"))
    pregnant: bool | None = None
    lactating: bool | None = None
    allergies: list[NonEmptyText] | None = Field(default=None, max_length=MAX_LIST, description=(
        f"at most {MAX_LIST} entries of at most {MAX_TEXT} characters"))
    conditions: list[NonEmptyText] | None = Field(default=None, max_length=MAX_LIST, description=(
        f"at most {MAX_LIST} entries of at most {MAX_TEXT} characters"))
    labs: list[Lab] | None = Field(default=None, max_length=MAX_LABS,
                                   description=f"at most {MAX_LABS} results")
    current_medications: list[Medication] | None = Field(
        default=None, max_length=MAX_LIST, description=f"at most {MAX_LIST} entries")


class CancelledOrder(_Input):
    order_id: Id = Field(description=_ID)


class CancelledPatient(_Input):
    patient_id: Id = Field(description=_ID)


class _OrderEventEnvelope(_Input):
    """What every order event carries, whatever its type."""

    schema_: Literal["rx.order/1"] = Field(alias="schema")
    event_id: Id = Field(description=f"Unique per event; the idempotency key; {_ID}")
    occurred_at: EventTime = Field(description=f"When the producer created the event{_TIME_RANGE}")
    source: str | None = Field(default=None, max_length=MAX_ID, description=_ID)


class OrderPlaced(_OrderEventEnvelope):
    event_type: Literal["order.placed"]
    order: Order
    patient: Patient


class OrderCancelled(_OrderEventEnvelope):
    """Needs only order.order_id and patient.patient_id."""

    event_type: Literal["order.cancelled"]
    order: CancelledOrder
    patient: CancelledPatient


OrderEvent = Annotated[Union[OrderPlaced, OrderCancelled], Field(discriminator="event_type")]
_order_event = TypeAdapter(OrderEvent)


def validate_order_event(document: Any) -> OrderPlaced | OrderCancelled:
    """Validate one order event already parsed from JSON (`rxgate.jsontext.parse`); raises
    pydantic.ValidationError. Strict: JSON types only, times as RFC 3339 strings."""
    return _order_event.validate_python(document)


def parse_order_event(text: str | bytes) -> OrderPlaced | OrderCancelled:
    """Parse and validate one order event from its JSON text; raises `JsonTextError` (not
    JSON the service reads) or pydantic.ValidationError (not an order event)."""
    from .jsontext import parse

    return validate_order_event(parse(text.encode("utf-8") if isinstance(text, str) else text))


# the values event_type may take, for messages that lack it
EVENT_TYPES = tuple(typing.get_args(m.model_fields["event_type"].annotation)[0]
                    for m in (OrderPlaced, OrderCancelled))


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """'order.dose.value: Input should be greater than 0; ...' — every path named, dotted."""
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        loc = [str(p) for p in item["loc"]]
        # the discriminated union puts the event type first; a pharmacist's integrator
        # wants the field path as it is in the message
        if loc and loc[0] in ("order.placed", "order.cancelled"):
            loc = loc[1:]
        path = ".".join(loc) or "(message)"
        if item["type"] in ("union_tag_not_found", "union_tag_invalid"):
            # pydantic's "Unable to extract tag using discriminator" says nothing to a producer
            tag = (item.get("ctx") or {}).get("tag")
            got = "is missing" if tag is None else f"is {tag!r}"
            parts.append(f"{'.'.join(loc + ['event_type'])}: {got}; expected one of "
                         + ", ".join(repr(t) for t in EVENT_TYPES))
            continue
        parts.append(f"{path}: {item['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


# --- decision (rx.decisions.approved.v1 / rx.decisions.flagged.v1) ---------------------------


class Finding(_Output):
    rule_id: str
    category: Category
    severity: FindingSeverity
    message: str
    evidence: dict[str, Any]
    reference: str


class Decision(_Output):
    schema_: Literal["rx.decision/1"] = Field(default="rx.decision/1", alias="schema")
    decision_id: str
    event_id: str
    order_id: str
    patient_id: str
    drug: str
    outcome: Literal["approved", "flagged"]
    severity: Severity
    findings: list[Finding]
    knowledge_version: str
    decided_at: Time

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- dead letter (rx.orders.invalid.v1) ------------------------------------------------------


class TopicSource(_Output):
    topic: str
    partition: int
    offset: int
    key: str | None


class FileSource(_Output):
    file: str
    line: int = Field(ge=1)


class InvalidError(_Output):
    kind: InvalidKind
    detail: str


class DeadLetter(_Output):
    schema_: Literal["rx.invalid/1"] = Field(default="rx.invalid/1", alias="schema")
    received_at: Time
    source: TopicSource | FileSource
    error: InvalidError
    payload: str
    payload_encoding: Literal["utf-8", "base64"]
    payload_truncated: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- pharmacist review (rx.reviews.v1, rx.decisions.verified.v1) -----------------------------


class Review(_Input):
    schema_: Literal["rx.review/1"] = Field(alias="schema")
    review_id: NonEmpty
    decision_id: NonEmpty
    event_id: NonEmpty
    order_id: NonEmpty
    patient_id: NonEmpty
    action: Literal["approve", "override", "reject"]
    reason: str | None = None
    pharmacist_id: NonEmpty
    acted_at: Time

    @model_validator(mode="after")
    def _reason_when_overriding_or_rejecting(self) -> "Review":
        if self.action in ("override", "reject") and not (self.reason or "").strip():
            raise ValueError(f"reason is required when action is {self.action!r}")
        return self


class VerifiedDecision(_Output):
    schema_: Literal["rx.verified/1"] = Field(default="rx.verified/1", alias="schema")
    decision_id: str
    event_id: str
    order_id: str
    patient_id: str
    final: Literal["approved", "rejected"]
    review_id: str
    pharmacist_id: str
    verified_at: Time

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# the setters of BaseModel's four slots (what object.__setattr__ finds for them, called
# directly): trusted() fills them
_SET_DICT, _SET_FIELDS_SET, _SET_EXTRA, _SET_PRIVATE = (
    BaseModel.__dict__[slot].__set__ for slot in (
        "__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))


def trusted(model: type[M], values: dict[str, Any], given: set[str] | None = None) -> M:
    """An output model from values the caller has already checked: no validation, nothing
    copied (pydantic's model_construct is slower than validating). `values` must name every
    field of the model (defaults included), `given` those a validated model would count as
    set (default: all); the caller passes only values the model's validation would accept
    unchanged, and validates the model instead in any case of doubt."""
    message = _new(model)
    _SET_DICT(message, values)
    _SET_FIELDS_SET(message, set(values) if given is None else given)
    _SET_EXTRA(message, None)
    _SET_PRIVATE(message, None)
    return message


_new = object.__new__
_set = object.__setattr__
M = typing.TypeVar("M", bound=BaseModel)


def to_json(message: BaseModel) -> str:
    """The wire form: field names as in the contract, absent optionals left out.

    `message.model_dump_json(by_alias=True, exclude_none=True)`, without its Python wrapper
    (which passes every other option at its default): the model's own serializer, so the
    same bytes."""
    return type(message).__pydantic_serializer__.to_json(
        message, by_alias=True, exclude_none=True).decode()


# The JSON Schemas written to schemas/ by `rxgate schemas`.
SCHEMA_MODELS: dict[str, Any] = {
    "order-event": OrderEvent,
    "decision": Decision,
    "invalid": DeadLetter,
    "review": Review,
    "verified": VerifiedDecision,
}
