"""The sans-I/O processor: raw bytes of one input message in, the messages to publish out.

`rxgate check`, the faust agent and the tests all drive this one object, so the offline check
and the stream cannot disagree about an order. It knows nothing of Kafka, files or the clock:
the caller says where the bytes came from (`origin`) and what time it is (`now`, used only for
`decided_at` / `received_at`), and keeps the patients' histories behind `HistoryStore`.

    handle(raw, origin, now) -> Handled(outputs=[Decision | DeadLetter], kind=...)
                              =  apply(parse(raw, origin, now), now)

`origin` may also be a function of no arguments giving it: it is called only when the input is a
dead letter (the offline check builds no source for the lines that are orders).

The bytes are parsed once (`jsontext.parse`, with its depth and number limits) and the JSON
values validated once against the contract models (with their bounds); bytes that are plainly
safe are read straight from the bytes in one pass instead, to the same event: by msgspec into
structs of the same fields (`struct_event.parse_struct_event`: ASCII, no escape, no unknown or
duplicate key, no space beside a quote), else by pydantic-core into the models
(`plain_event.parse_plain_event`):

- over 1 MiB                                  -> DeadLetter kind too_large
- not UTF-8                                   -> DeadLetter kind encoding
- not JSON the service reads (syntax, nesting over 200, NaN/Infinity, a number beyond a
  64-bit float anywhere, a duplicate key, a BOM, a lone surrogate)  -> DeadLetter kind json
- JSON, but not an object or not an order event (a field missing, a wrong type, a value
  beyond its bound)                           -> DeadLetter kind schema
- an event_id already seen for this patient                            -> nothing (duplicate)
- order.cancelled                                                      -> nothing; history updated
- order.placed                                                         -> one Decision; history updated
"""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

from pydantic import ValidationError

from .contract import (
    DeadLetter,
    Decision,
    FileSource,
    InvalidError,
    OrderCancelled,
    OrderPlaced,
    TopicSource,
    describe_validation_error,
    validate_order_event,
)
from .decide import checks_failed, decide
from .history import DEFAULT_FOLD, DEFAULT_MAX_SEEN, DEFAULT_RETENTION, FoldBounds, PatientHistory
from .jsontext import JsonTextError, parse as parse_json
from .knowledge import Knowledge
from .plain_event import parse_plain_event
from .struct_event import PLACED_STRUCT as _PLACED_STRUCT, parse_struct_event

MAX_INPUT_BYTES = 1024 * 1024  # larger inputs are dead letters of kind too_large
TRUNCATED_PAYLOAD_BYTES = 64 * 1024
MAX_DETAIL_CHARS = 1000  # a dead letter's error.detail (it may quote keys from the input)
_new_object = object.__new__
_JSON_TYPE = {dict: "an object", list: "an array", str: "a string", int: "a number",
              float: "a number", bool: "true or false", type(None): "null"}

Origin = TopicSource | FileSource
OriginOrMaker = Origin | Callable[[], Origin]  # the origin, or a function giving it (when needed)
Output = Decision | DeadLetter
OrderEvent = OrderPlaced | OrderCancelled  # (or their struct_event structs: the same fields)
HandledKind = Literal["decision", "invalid", "cancelled", "duplicate"]


class HistoryStore(Protocol):
    """Where patients' histories live: a dict offline, a faust table in the stream."""

    def get(self, patient_id: str) -> PatientHistory | None: ...

    def put(self, patient_id: str, history: PatientHistory) -> None: ...


class DictHistoryStore:
    """In-memory store for `rxgate check` and tests."""

    def __init__(self) -> None:
        self.histories: dict[str, PatientHistory] = {}

    def get(self, patient_id: str) -> PatientHistory | None:
        return self.histories.get(patient_id)

    def put(self, patient_id: str, history: PatientHistory) -> None:
        self.histories[patient_id] = history


@dataclass(slots=True)  # (slots: cheaper to make, once per input)
class Handled:
    kind: HandledKind
    outputs: list[Output] = field(default_factory=list)
    patient_id: str | None = None  # the key to publish under, when the input had a valid one
    # a defect in rxgate (kind "decision": the order was still decided, flagged
    # rxgate.data.checks_failed; kind "invalid": validation failed, the input is a dead letter);
    # the shell logs it with its traceback
    error: Exception | None = None


class Processor:
    def __init__(
        self,
        knowledge: Knowledge,
        store: HistoryStore,
        *,
        seen_retention: dt.timedelta = DEFAULT_RETENTION,
        max_seen: int = DEFAULT_MAX_SEEN,
        fold: FoldBounds | None = DEFAULT_FOLD,  # None: keep every active order in full
    ) -> None:
        self.knowledge = knowledge
        self.fold = fold
        self.store = store
        self.seen_retention = seen_retention
        self.max_seen = max_seen

    def handle(self, raw: bytes, origin: OriginOrMaker, now: dt.datetime) -> Handled:
        """One input, start to end: `parse`, then `apply` when it is an event."""
        parsed = self.parse(raw, origin, now)
        if isinstance(parsed, Handled):
            return parsed
        return self.apply(parsed, now)

    def parse(self, raw: bytes, origin: OriginOrMaker, now: dt.datetime) -> OrderEvent | Handled:
        """The event the bytes hold, or a Handled with its one dead letter. Touches no history.

        Shells that must know the patient before the history is touched (the stream routes
        an event to its patient's partition first) call this, then `apply`.
        """
        if len(raw) > MAX_INPUT_BYTES:
            return self._dead(raw[:TRUNCATED_PAYLOAD_BYTES], origin, now, "too_large",
                              f"input is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES}",
                              truncated=True)
        # one pass, when the bytes are plainly safe: into msgspec structs (ASCII, no escape, no
        # space beside a quote, no unknown key), else into the contract's models
        event = parse_struct_event(raw)  # (first: ASCII, which it needs, is UTF-8)
        if event is not None:
            return event
        if not raw.isascii():  # ASCII is UTF-8 (a check without a copy)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return self._dead(raw, origin, now, "encoding", f"not UTF-8: {e}")
        event = parse_plain_event(raw)
        if event is not None:
            return event
        try:
            document = parse_json(raw)
        except JsonTextError as e:
            return self._dead(raw, origin, now, "json", str(e))
        if not isinstance(document, dict):
            return self._dead(raw, origin, now, "schema",
                              f"(message): expected a JSON object, got "
                              f"{_JSON_TYPE.get(type(document), type(document).__name__)}")
        try:
            return validate_order_event(document)
        except ValidationError as e:
            return self._dead(raw, origin, now, "schema", describe_validation_error(e))
        except Exception as e:  # a defect in validation must not lose the input: keep it whole
            dead = self._dead(raw, origin, now, "schema",
                              f"could not be validated: {type(e).__name__} (a defect in "
                              f"rxgate); kept here whole for a replay")
            dead.error = e
            return dead

    def apply(self, event: OrderEvent, now: dt.datetime) -> Handled:
        """Check a parsed event against its patient's history and record it there."""
        patient_id = event.patient.patient_id
        store = self.store
        # the in-memory store's get/put are its dict's (not a subclass: it may do more)
        histories = store.histories if type(store) is DictHistoryStore else None
        history = (histories.get(patient_id) if histories is not None
                   else store.get(patient_id)) or PatientHistory()
        if event.event_id in history.seen_events:  # = history.has_seen(event.event_id)
            return Handled("duplicate", [], patient_id)

        outputs: list[Output] = []
        error: Exception | None = None
        if type(event) is _PLACED_STRUCT or isinstance(event, OrderPlaced):
            order_id = event.order.order_id
            active = history.active_orders  # history.others_than(order_id), its usual case inline
            active = (list(active.values()) if order_id not in active
                      else history.others_than(order_id))
            folded = history.folded
            try:
                # the folds as a tuple (what decide keeps of them: tuple() of it is itself), ()
                # while there are none, most histories (positional arguments: cheaper to call)
                outputs.append(decide(event, active, self.knowledge, now,
                                      tuple(folded.values()) if folded else ()))
            except Exception as e:  # a defect in a rule must not lose the order: fail closed
                outputs.append(checks_failed(event, self.knowledge.version, now, e))
                error = e
        history.apply(event, self.seen_retention, self.max_seen)
        bounds = self.fold
        # bounded: older doses kept as a count per drug; fold() does nothing while no drug has
        # more than `keep` orders and none has folded ones (its own first test, asked here first)
        if bounds is not None and (history.folded or len(history.active_orders) > bounds.keep):
            history.fold(self.knowledge, bounds)
        if histories is not None:
            histories[patient_id] = history
        else:
            store.put(patient_id, history)
        # Handled(kind, outputs, patient_id, error), without calling its __init__ (a Python
        # function): every field set
        handled = _new_object(Handled)
        handled.kind = "decision" if outputs else "cancelled"
        handled.outputs = outputs
        handled.patient_id = patient_id
        handled.error = error
        return handled

    @staticmethod
    def _dead(raw: bytes, origin: OriginOrMaker, now: dt.datetime, kind: str, detail: str,
              truncated: bool = False) -> Handled:
        payload, encoding = _payload_text(raw, truncated)
        letter = DeadLetter(
            received_at=now,
            source=origin() if callable(origin) else origin,  # (a model is not callable)
            error=InvalidError(kind=kind, detail=_cut(detail)),
            payload=payload,
            payload_encoding=encoding,
            payload_truncated=True if truncated else None,
        )
        return Handled("invalid", [letter])


def _payload_text(raw: bytes, truncated: bool) -> tuple[str, Literal["utf-8", "base64"]]:
    """The original bytes as UTF-8 text, or base64 when they are not UTF-8.

    A payload cut at 64 KiB may end inside a multi-byte character: that tail is not evidence
    of bad encoding, so up to three trailing bytes are dropped before falling back to base64.
    """
    tries = range(4) if truncated else range(1)
    for cut in tries:
        try:
            return (raw[: len(raw) - cut] if cut else raw).decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            continue
    return base64.b64encode(raw).decode("ascii"), "base64"


def _cut(detail: str) -> str:
    if len(detail) <= MAX_DETAIL_CHARS:
        return detail
    return detail[: MAX_DETAIL_CHARS - 30] + f"... ({len(detail)} characters in all)"
