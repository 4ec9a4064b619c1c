"""The sans-I/O processor: raw bytes of one input message in, the messages to publish out.

`rxgate check`, the faust agent and the tests all drive this one object, so the offline check
and the stream cannot disagree about an order. It knows nothing of Kafka, files or the clock:
the caller says where the bytes came from (`origin`) and what time it is (`now`, used only for
`decided_at` / `received_at`), and keeps the patients' histories behind `HistoryStore`.

    handle(raw, origin, now) -> Handled(outputs=[Decision | DeadLetter], kind=...)

- not UTF-8 / not JSON / not an object / fails the schema / over 1 MiB -> one DeadLetter
- an event_id already seen for this patient                            -> nothing (duplicate)
- order.cancelled                                                      -> nothing; history updated
- order.placed                                                         -> one Decision; history updated
"""
from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Literal, Protocol

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
    parse_order_event,
)
from .decide import checks_failed, decide
from .history import DEFAULT_FOLD, DEFAULT_MAX_SEEN, DEFAULT_RETENTION, FoldBounds, PatientHistory
from .knowledge import Knowledge

MAX_INPUT_BYTES = 1024 * 1024  # larger inputs are dead letters of kind too_large
TRUNCATED_PAYLOAD_BYTES = 64 * 1024

Origin = TopicSource | FileSource
Output = Decision | DeadLetter
OrderEvent = OrderPlaced | OrderCancelled
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


@dataclass
class Handled:
    kind: HandledKind
    outputs: list[Output] = field(default_factory=list)
    patient_id: str | None = None  # the key to publish under, when the input had a valid one
    # a defect in the checks (the order was still decided: flagged, rxgate.data.checks_failed);
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

    def handle(self, raw: bytes, origin: Origin, now: dt.datetime) -> Handled:
        """One input, start to end: `parse`, then `apply` when it is an event."""
        parsed = self.parse(raw, origin, now)
        if isinstance(parsed, Handled):
            return parsed
        return self.apply(parsed, now)

    def parse(self, raw: bytes, origin: Origin, now: dt.datetime) -> OrderEvent | Handled:
        """The event the bytes hold, or a Handled with its one dead letter. Touches no history.

        Shells that must know the patient before the history is touched (the stream routes
        an event to its patient's partition first) call this, then `apply`.
        """
        if len(raw) > MAX_INPUT_BYTES:
            return self._dead(raw[:TRUNCATED_PAYLOAD_BYTES], origin, now, "too_large",
                              f"input is {len(raw)} bytes; the limit is {MAX_INPUT_BYTES}",
                              truncated=True)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return self._dead(raw, origin, now, "encoding", f"not UTF-8: {e}")
        try:
            parsed = json.loads(text)
        except ValueError as e:
            return self._dead(raw, origin, now, "json", str(e))
        if not isinstance(parsed, dict):
            return self._dead(raw, origin, now, "schema",
                              f"(message): expected a JSON object, got {type(parsed).__name__}")
        try:
            return parse_order_event(text)
        except ValidationError as e:
            return self._dead(raw, origin, now, "schema", describe_validation_error(e))

    def apply(self, event: OrderEvent, now: dt.datetime) -> Handled:
        """Check a parsed event against its patient's history and record it there."""
        patient_id = event.patient.patient_id
        history = self.store.get(patient_id) or PatientHistory()
        if history.has_seen(event.event_id):
            return Handled("duplicate", patient_id=patient_id)

        outputs: list[Output] = []
        error: Exception | None = None
        if isinstance(event, OrderPlaced):
            active = history.others_than(event.order.order_id)
            try:
                outputs.append(decide(event, active, self.knowledge, decided_at=now,
                                      folds=history.folds()))
            except Exception as e:  # a defect in a rule must not lose the order: fail closed
                outputs.append(checks_failed(event, self.knowledge.version, now, e))
                error = e
        history.apply(event, retention=self.seen_retention, max_seen=self.max_seen)
        if self.fold is not None:
            history.fold(self.knowledge, self.fold)  # bounded: older doses kept as a count per drug
        self.store.put(patient_id, history)
        kind: HandledKind = "decision" if outputs else "cancelled"
        return Handled(kind, outputs, patient_id=patient_id, error=error)

    @staticmethod
    def _dead(raw: bytes, origin: Origin, now: dt.datetime, kind: str, detail: str,
              truncated: bool = False) -> Handled:
        payload, encoding = _payload_text(raw, truncated)
        letter = DeadLetter(
            received_at=now,
            source=origin,
            error=InvalidError(kind=kind, detail=detail),
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
