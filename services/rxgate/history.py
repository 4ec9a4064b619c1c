"""A patient's history as the validator keeps it: active orders, seen event ids, cancellations.

One `PatientHistory` per patient id. It is plain data (JSON-serialisable through
`to_dict` / `from_dict`), so that `rxgate check` can keep it in a dict and the stream in a faust
table backed by a changelog topic. Everything here is a pure function of the events applied,
in the order applied; time comes from the events, never from the clock.

Bounds (so memory stays flat on an endless stream):
- seen event ids are kept for `retention` of event time (the newest `occurred_at` the patient
  has had), and at most `max_seen` of them;
- cancelled order ids (kept so a cancellation that overtakes its order still wins) likewise.
Active orders are kept until cancelled: the interval rules count a patient's doses.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .contract import OrderCancelled, OrderPlaced

DEFAULT_RETENTION = dt.timedelta(days=30)
DEFAULT_MAX_SEEN = 10_000


@dataclass(frozen=True)
class ActiveOrder:
    """An order that counts for interval and combination checks until it is cancelled."""

    order_id: str
    event_id: str
    drug: str  # lower-case generic name as ordered
    code_system: str | None
    code_value: str | None
    scheduled_for: dt.datetime
    cycle: int | None = None
    day: int | None = None

    @classmethod
    def from_event(cls, event: OrderPlaced) -> "ActiveOrder":
        order = event.order
        code = order.drug.code
        regimen = order.regimen
        return cls(
            order_id=order.order_id,
            event_id=event.event_id,
            drug=order.drug.name.strip().lower(),
            code_system=code.system if code else None,
            code_value=code.value if code else None,
            scheduled_for=order.scheduled_for,
            cycle=regimen.cycle if regimen else None,
            day=regimen.day if regimen else None,
        )

    def to_dict(self) -> dict:
        return {
            "order_id": self.order_id,
            "event_id": self.event_id,
            "drug": self.drug,
            "code_system": self.code_system,
            "code_value": self.code_value,
            "scheduled_for": self.scheduled_for.isoformat(),
            "cycle": self.cycle,
            "day": self.day,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ActiveOrder":
        return cls(**{**d, "scheduled_for": dt.datetime.fromisoformat(d["scheduled_for"])})


@dataclass
class PatientHistory:
    active_orders: dict[str, ActiveOrder] = field(default_factory=dict)  # by order_id
    seen_events: dict[str, dt.datetime] = field(default_factory=dict)  # event_id -> occurred_at
    cancelled_orders: dict[str, dt.datetime] = field(default_factory=dict)  # order_id -> occurred_at
    newest_event_at: dt.datetime | None = None

    # --- queries -------------------------------------------------------------------------

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_events

    def others_than(self, order_id: str) -> list[ActiveOrder]:
        """The active orders a new order is checked against: all but itself."""
        return [o for o in self.active_orders.values() if o.order_id != order_id]

    # --- updates -------------------------------------------------------------------------

    def apply(
        self,
        event: OrderPlaced | OrderCancelled,
        *,
        retention: dt.timedelta = DEFAULT_RETENTION,
        max_seen: int = DEFAULT_MAX_SEEN,
    ) -> None:
        """Record an event: placed orders become active unless already cancelled."""
        at = event.occurred_at
        self.seen_events[event.event_id] = at
        if self.newest_event_at is None or at > self.newest_event_at:
            self.newest_event_at = at
        order_id = event.order.order_id
        if isinstance(event, OrderCancelled):
            self.active_orders.pop(order_id, None)
            self.cancelled_orders[order_id] = at
        elif order_id not in self.cancelled_orders:
            self.active_orders[order_id] = ActiveOrder.from_event(event)
        self._forget_old(retention, max_seen)

    def _forget_old(self, retention: dt.timedelta, max_seen: int) -> None:
        assert self.newest_event_at is not None
        horizon = self.newest_event_at - retention
        for book in (self.seen_events, self.cancelled_orders):
            for key in [k for k, at in book.items() if at < horizon]:
                del book[key]
            if len(book) > max_seen:
                for key, _ in sorted(book.items(), key=lambda kv: kv[1])[: len(book) - max_seen]:
                    del book[key]

    # --- serialisation (faust tables store JSON) ------------------------------------------

    def to_dict(self) -> dict:
        return {
            "active_orders": [o.to_dict() for o in self.active_orders.values()],
            "seen_events": {k: v.isoformat() for k, v in self.seen_events.items()},
            "cancelled_orders": {k: v.isoformat() for k, v in self.cancelled_orders.items()},
            "newest_event_at": self.newest_event_at.isoformat() if self.newest_event_at else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PatientHistory":
        parse = dt.datetime.fromisoformat
        orders = [ActiveOrder.from_dict(o) for o in d.get("active_orders", [])]
        return cls(
            active_orders={o.order_id: o for o in orders},
            seen_events={k: parse(v) for k, v in d.get("seen_events", {}).items()},
            cancelled_orders={k: parse(v) for k, v in d.get("cancelled_orders", {}).items()},
            newest_event_at=parse(d["newest_event_at"]) if d.get("newest_event_at") else None,
        )
