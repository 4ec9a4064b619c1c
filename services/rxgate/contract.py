"""The wire contract (../shared/contract/README.md) as pydantic v2 models.

Every message that crosses a topic or leaves `rxgate check` is one of these models. Input is
validated strictly from JSON text (`parse_order_event`): a string is never coerced into a
number or a boolean, a time must carry an offset, and unknown fields are ignored so that
producers may add optional fields without breaking us.

`rxgate schemas` writes the JSON Schema of each message into `schemas/`; a test fails when the
checked-in files drift from these models.
"""
from __future__ import annotations

import datetime as dt
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Time = AwareDatetime  # RFC 3339 with an offset; a naive time is a schema error

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


class Code(_Input):
    system: NonEmpty
    value: NonEmpty


class Drug(_Input):
    name: NonEmpty = Field(description="Generic name, case-insensitive")
    code: Code | None = None


class Dose(_Input):
    value: float = Field(gt=0)
    unit: DoseUnit


class Frequency(_Input):
    count: int = Field(ge=1)
    period: float = Field(gt=0)
    period_unit: Literal["h", "d", "wk"]


class Regimen(_Input):
    name: str | None = None
    cycle: int | None = Field(default=None, ge=1)
    day: int | None = Field(default=None, ge=1)


class Infusion(_Input):
    volume_ml: float | None = Field(default=None, gt=0)
    duration_min: float | None = Field(default=None, gt=0)


class Order(_Input):
    order_id: NonEmpty
    drug: Drug
    dose: Dose
    route: NonEmpty = Field(description="IV, SC, PO, IM, IT, ... as written; case-insensitive")
    scheduled_for: Time
    frequency: Frequency | None = None
    regimen: Regimen | None = None
    infusion: Infusion | None = None
    prescriber_id: str | None = None


class Lab(_Input):
    code: NonEmpty
    value: float
    unit: NonEmpty
    taken_at: Time


class Medication(_Input):
    name: NonEmpty
    code: Code | None = None


class Patient(_Input):
    patient_id: NonEmpty
    birth_date: dt.date | None = None
    sex: str | None = None
    weight_kg: float | None = Field(default=None, gt=0)
    height_cm: float | None = Field(default=None, gt=0)
    pregnant: bool | None = None
    lactating: bool | None = None
    allergies: list[NonEmpty] | None = None
    conditions: list[NonEmpty] | None = None
    labs: list[Lab] | None = None
    current_medications: list[Medication] | None = None


class CancelledOrder(_Input):
    order_id: NonEmpty


class CancelledPatient(_Input):
    patient_id: NonEmpty


class _OrderEventEnvelope(_Input):
    """What every order event carries, whatever its type."""

    schema_: Literal["rx.order/1"] = Field(alias="schema")
    event_id: NonEmpty = Field(description="Unique per event; the idempotency key")
    occurred_at: Time
    source: str | None = None


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


def parse_order_event(text: str) -> OrderPlaced | OrderCancelled:
    """Validate one order event from its JSON text; raises pydantic.ValidationError."""
    return _order_event.validate_json(text, strict=True)


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


def to_json(message: BaseModel) -> str:
    """The wire form: field names as in the contract, absent optionals left out."""
    return message.model_dump_json(by_alias=True, exclude_none=True)


# The JSON Schemas written to schemas/ by `rxgate schemas`.
SCHEMA_MODELS: dict[str, Any] = {
    "order-event": OrderEvent,
    "decision": Decision,
    "invalid": DeadLetter,
    "review": Review,
    "verified": VerifiedDecision,
}
