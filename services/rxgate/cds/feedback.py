"""Card feedback (CDS Hooks 2.0 `POST /cds-services/{id}/feedback`) -> `rx.reviews.v1`.

- `overridden` -> action `override`, reason: the overrideReason's display (or code) and the
  user's comment ("overridden in the EHR; no reason given" when there is none);
- `accepted` -> action `approve` (the contract's "the flag ... is accepted as is").
Each message also carries the optional fields `source` ("cds-hooks"), `card_uuid`, `rule_id`
and `cds_outcome`. `review_id` is a UUIDv5 of the card uuid and the key is the patient id, so a
consumer can de-duplicate; this process publishes each card's feedback at most once
(idempotent by card uuid) and remembers the last `RXGATE_CDS_CARD_MEMORY` cards it issued.
Feedback on a card this process does not know (expired from memory, another replica) is
answered 200 and not published: the EHR cannot act on an error there.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections import OrderedDict

from ..contract import Review
from .cards import IssuedCard

REVIEWS_TOPIC = "rx.reviews.v1"
REVIEW_NAMESPACE = uuid.UUID("5f3b7a1e-2c4d-5e6f-8a9b-0c1d2e3f4a5b")
log = logging.getLogger("rxgate.cds")


class CardMemory:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cards: OrderedDict[str, IssuedCard] = OrderedDict()
        self._answered: OrderedDict[str, None] = OrderedDict()

    def remember(self, cards: list[IssuedCard]) -> None:
        for card in cards:
            self._cards[card.uuid] = card
        while len(self._cards) > self.capacity:
            self._cards.popitem(last=False)

    def get(self, card_uuid: str) -> IssuedCard | None:
        return self._cards.get(card_uuid)

    def first_answer(self, card_uuid: str) -> bool:
        """True the first time feedback on this card is taken; False after."""
        if card_uuid in self._answered:
            return False
        self._answered[card_uuid] = None
        while len(self._answered) > self.capacity:
            self._answered.popitem(last=False)
        return True

    def forget_answer(self, card_uuid: str) -> None:
        self._answered.pop(card_uuid, None)


def review_message(card: IssuedCard, item: dict, now: dt.datetime, caller_subject: str) -> dict | None:
    """The rx.review/1 message for one feedback item, or None when it cannot be one."""
    outcome = item.get("outcome")
    if card.decision_id is None or outcome not in ("accepted", "overridden"):
        return None
    if outcome == "overridden":
        reason_obj = item.get("overrideReason") or {}
        coding = reason_obj.get("reason") or {}
        words = [str(coding.get("display") or coding.get("code") or "").strip(),
                 str(reason_obj.get("userComment") or "").strip()]
        reason = ": ".join(w for w in words if w) or "overridden in the EHR; no reason given"
        action = "override"
    else:
        reason, action = "card accepted in the EHR", "approve"
    acted_at = item.get("outcomeTimestamp")
    try:
        acted = dt.datetime.fromisoformat(str(acted_at).replace("Z", "+00:00")) if acted_at else now
        if acted.tzinfo is None:
            acted = now
    except ValueError:
        acted = now
    message = {
        "schema": "rx.review/1",
        "review_id": str(uuid.uuid5(REVIEW_NAMESPACE, card.uuid)),
        "decision_id": card.decision_id, "event_id": card.event_id, "order_id": card.order_id,
        "patient_id": card.patient_id, "action": action, "reason": reason,
        "pharmacist_id": card.user_id or caller_subject,
        "acted_at": acted.isoformat().replace("+00:00", "Z"),
        "source": "cds-hooks", "card_uuid": card.uuid, "rule_id": card.rule_id,
        "cds_outcome": outcome,
    }
    Review.model_validate_json(json.dumps(message))  # the contract's own check
    return message


class ReviewPublisher:
    """aiokafka producer for rx.reviews.v1, started on first use."""

    def __init__(self, bootstrap: str | None, client_kwargs: dict | None = None) -> None:
        self.bootstrap = bootstrap
        self.client_kwargs = client_kwargs or {}  # TLS/SASL: rxgate.kafka_security
        self._producer = None
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.bootstrap is not None

    async def publish(self, key: str, message: dict) -> None:
        from aiokafka import AIOKafkaProducer

        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                            **self.client_kwargs)
                await producer.start()
                self._producer = producer
        await self._producer.send_and_wait(REVIEWS_TOPIC, json.dumps(message).encode(), key=key.encode())

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
