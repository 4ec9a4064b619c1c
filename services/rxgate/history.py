"""A patient's history as the validator keeps it: active orders, folded old doses, seen event
ids, cancellations.

One `PatientHistory` per patient id. It is plain data (JSON-serialisable through `to_dict` /
`from_dict`), so that `rxgate check` can keep it in a dict and the stream in a faust table
backed by a changelog topic. Everything here is a pure function of the events applied, in the
order applied; time comes from the events, never from the clock.

Order lifecycle (by event sequence, i.e. the order events arrive in):
- `order.placed` makes the order active: a new order, a re-delivery of an active one (replaces
  it), or a re-placement of a cancelled one (active again from this placement);
- `order.cancelled` of an active order ends it, until it is placed again;
- `order.cancelled` of an order not (yet) known is *pending*: the first placement of that id
  to arrive is the one it overtook, and is cancelled on arrival (cancel-before-order). Only
  when the history has folded doses (it no longer knows every old order id, so the cancelled
  id may be one of them) does event time decide: a placement that occurred after the pending
  cancellation is a re-placement and active (the fail-closed reading: an order that may be
  active counts);
- a cancellation older (by `occurred_at`) than the one that ended the previous placement of
  an order, or a re-delivery of that very cancellation, does not end the re-placed order.

Bounds (so memory, per-order cost and changelog record size stay flat on an endless course):
- seen event ids are kept for `retention` of event time (the newest `occurred_at` the patient
  has had), and at most `max_seen` of them; cancellation records likewise;
- `fold(knowledge, bounds)` keeps, per drug, the newest `keep` active orders and every one scheduled
  within `lookback` of that drug's newest (at most `max_kept`); older ones are folded into one
  `FoldedOrders` per drug: how many, the newest of them in full, and its slot range in the
  drug's plan, which is all the rules need of them (the exact dose count for the phase, the
  previous dose and its gap for a dose in order, the drug for the combination rules).
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field, replace
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from .contract import OrderCancelled, OrderPlaced
from .plan import Plan, SlotRange, chain_at
from .struct_event import PLACED_STRUCT as _PLACED_STRUCT, OrderCancelledStruct

# a cancellation: the contract's model, or its struct (struct_event)
_CANCELLED = tuple(c for c in (OrderCancelled, OrderCancelledStruct) if c is not None)

if TYPE_CHECKING:
    from .knowledge import Knowledge

# JSON text as the stream's changelog codec writes it (faust's "json" codec: json.dumps with
# separators (",", ":"), ensure_ascii on; its encoder's `default` is never reached by plain
# data), without importing faust here. The C encoder json.dumps would make, made once and called
# directly: json.dumps with separators makes an encoder, and JSONEncoder.encode a C encoder, on
# every call, about half the cost of encoding an order. (No check for circular containers: the
# history's values are trees; one that is not recurses until RecursionError.)
_json_str = json.encoder.encode_basestring_ascii  # a str as a JSON string (TypeError: not one)
if json.encoder.c_make_encoder is not None:
    _json_chunks = json.encoder.c_make_encoder(
        None, json.JSONEncoder().default, _json_str, None, ":", ",", False, False, True)

    def _json_text(value) -> str:
        return "".join(_json_chunks(value, 0))
else:  # a Python without the C accelerator
    _json_text = json.JSONEncoder(separators=(",", ":")).encode

DEFAULT_RETENTION = dt.timedelta(days=30)
DEFAULT_MAX_SEEN = 10_000


@dataclass(frozen=True)
class FoldBounds:
    """How much of each drug's active orders a history keeps in full (the rest is folded)."""

    keep: int = 8                                            # the newest, always
    lookback: dt.timedelta = dt.timedelta(days=90)           # all within this of the newest ...
    max_kept: int = 64                                       # ... but never more than this


DEFAULT_FOLD = FoldBounds()

_parse = dt.datetime.fromisoformat
_scheduled_for = attrgetter("scheduled_for")
_value = itemgetter(1)


def _value_at(item: tuple) -> dt.datetime:
    return item[1].at


@dataclass(frozen=True, slots=True)
class _ActiveOrderFields:
    """ActiveOrder's fields (see ActiveOrder): a frozen dataclass with slots, so an order is
    one object with its values in it, not an object, its dict and the dict's values. The
    rules read every active order of the patient on every order, and those orders were last
    touched a whole round of the other patients ago: most of the cost of reading them was the
    cache lines they span (benchmarks/README.md, seventh session: the first read of eight
    orders' drug cost 5.3 microseconds with dicts, 0.7 read again at once; 1.4 with slots)."""

    order_id: str
    event_id: str
    drug: str  # lower-case generic name as ordered
    code_system: str | None
    code_value: str | None
    scheduled_for: dt.datetime
    cycle: int | None = None
    day: int | None = None
    # a re-placement: the cancellation that ended this order's previous placement
    after_cancel_event_id: str | None = None
    after_cancel_at: dt.datetime | None = None
    # the patient's weight given with this order (the weight a per-kg dose was computed on);
    # None when the order gave none, or the history was stored before weights were kept
    weight_kg: float | None = None
    # the dose as ordered (value, unit): whether an earlier part of a first dose was given whole
    # or split; None when the history was stored before doses were kept
    dose_value: float | None = None
    dose_unit: str | None = None


class ActiveOrder(_ActiveOrderFields):
    """An order that counts for interval and combination checks until it is cancelled.

    Three values kept with it that are not fields (no part of eq, hash, repr, to_dict,
    replace() or dataclasses.fields()): `_canonical`, the order's canonical drug as
    (knowledge, name) for the knowledge it was resolved with ((None, None) until then;
    canonical_drug()); `_record`, its to_dict() once built; `_json`, its json_text() once
    built. An order is never changed in place (frozen; a changed order is a new one), so they
    stay right."""

    __slots__ = ("_canonical", "_record", "_json")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _unset_kept(self)

    def __getstate__(self) -> tuple:
        """The fields' values (copy and pickle): the kept values are made again."""
        return tuple([getattr(self, name) for name in _ACTIVE_ORDER_FIELDS])

    def __setstate__(self, state: tuple) -> None:
        _filled(self, state)

    @classmethod
    def from_event(cls, event: OrderPlaced, after_cancel: "CancelRecord | None" = None) -> "ActiveOrder":
        if cls is not ActiveOrder:  # a subclass: through its own __init__, the same values
            built = ActiveOrder.from_event(event, after_cancel)
            return cls(**{name: getattr(built, name) for name in _ACTIVE_ORDER_FIELDS})
        return _from_event(event, after_cancel)

    def to_dict(self) -> dict:
        """The order as a history record stores it: built once per order (it is frozen), the
        same dict every time after (read it, never change it)."""
        d = self._record
        if d is not None:
            return d
        d = {
            "order_id": self.order_id,
            "event_id": self.event_id,
            "drug": self.drug,
            "code_system": self.code_system,
            "code_value": self.code_value,
            "scheduled_for": self.scheduled_for.isoformat(),
            "cycle": self.cycle,
            "day": self.day,
        }
        if self.after_cancel_at is not None:
            d["after_cancel_event_id"] = self.after_cancel_event_id
            d["after_cancel_at"] = self.after_cancel_at.isoformat()
        if self.weight_kg is not None:
            d["weight_kg"] = self.weight_kg
        if self.dose_value is not None and self.dose_unit is not None:
            d["dose"] = [self.dose_value, self.dose_unit]
        _SET_RECORD(self, d)
        return d

    def json_text(self) -> str:
        """to_dict() as the changelog's JSON text: encoded once per order (it is frozen), the
        same text after, so a history's record reuses it rather than encoding every order
        again on every write."""
        text = self._json
        if text is None:
            text = _json_text(self.to_dict())
            _SET_JSON(self, text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "ActiveOrder":
        at = d.get("after_cancel_at")
        values = {
            "order_id": d["order_id"], "event_id": d["event_id"], "drug": d["drug"],
            "code_system": d.get("code_system"), "code_value": d.get("code_value"),
            "scheduled_for": _parse(d["scheduled_for"]), "cycle": d.get("cycle"),
            "day": d.get("day"), "after_cancel_event_id": d.get("after_cancel_event_id"),
            "after_cancel_at": _parse(at) if at else None,
            "weight_kg": _weight(d.get("weight_kg")), "dose_value": None, "dose_unit": None}
        dose = d.get("dose")
        if dose is not None:
            values.update(_dose(dose))
        return _built(cls, values)


_ACTIVE_ORDER_FIELDS = tuple(ActiveOrder.__dataclass_fields__)
# each slot's setter (what object.__setattr__ finds for it, called directly): the frozen
# dataclass's own __setattr__ refuses every field
_FIELD_SETTERS = tuple(_ActiveOrderFields.__dict__[name].__set__ for name in _ACTIVE_ORDER_FIELDS)
(_SET_ORDER_ID, _SET_EVENT_ID, _SET_DRUG, _SET_CODE_SYSTEM, _SET_CODE_VALUE, _SET_SCHEDULED_FOR,
 _SET_CYCLE, _SET_DAY, _SET_AFTER_CANCEL_EVENT_ID, _SET_AFTER_CANCEL_AT, _SET_WEIGHT_KG,
 _SET_DOSE_VALUE, _SET_DOSE_UNIT) = _FIELD_SETTERS
_SET_CANONICAL, _SET_RECORD, _SET_JSON = (
    ActiveOrder.__dict__[name].__set__ for name in ActiveOrder.__slots__)
_UNRESOLVED = (None, None)  # an order's _canonical until canonical_drug() resolves it
_new_object = object.__new__


def _unset_kept(order: ActiveOrder) -> None:
    """The values an order keeps, unset: as a new order has them."""
    _SET_CANONICAL(order, _UNRESOLVED)
    _SET_RECORD(order, None)
    _SET_JSON(order, None)


def _filled(order: ActiveOrder, values) -> ActiveOrder:
    """`order` with every field's value (all of them, in field order) stored into its slot,
    as ActiveOrder.__init__ stores them, and the kept values unset."""
    for setter, value in zip(_FIELD_SETTERS, values, strict=True):
        setter(order, value)
    _unset_kept(order)
    return order


def _from_event(event: OrderPlaced, after_cancel: CancelRecord | None) -> ActiveOrder:
    """ActiveOrder.from_event(event, after_cancel), called by _place without the classmethod
    (a bound method made per order): ActiveOrder(...) as _built() makes it, without the dict
    of values in between (each value stored into its slot: no keyword arguments to collect):
    every field, in order, and the kept values unset (ActiveOrder.__init__ does no more)."""
    order = event.order
    drug = order.drug
    code = drug.code
    regimen = order.regimen
    dose = order.dose
    built = _new_object(ActiveOrder)
    _SET_ORDER_ID(built, order.order_id)
    _SET_EVENT_ID(built, event.event_id)
    _SET_DRUG(built, drug.name.strip().lower())
    _SET_CODE_SYSTEM(built, code.system if code else None)
    _SET_CODE_VALUE(built, code.value if code else None)
    _SET_SCHEDULED_FOR(built, order.scheduled_for)
    _SET_CYCLE(built, regimen.cycle if regimen else None)
    _SET_DAY(built, regimen.day if regimen else None)
    _SET_AFTER_CANCEL_EVENT_ID(built, after_cancel.event_id if after_cancel else None)
    _SET_AFTER_CANCEL_AT(built, after_cancel.at if after_cancel else None)
    _SET_WEIGHT_KG(built, event.patient.weight_kg)
    _SET_DOSE_VALUE(built, dose.value)
    _SET_DOSE_UNIT(built, dose.unit)
    _SET_CANONICAL(built, _UNRESOLVED)  # _unset_kept(built), inline: once per order
    _SET_RECORD(built, None)
    _SET_JSON(built, None)
    return built


def _built(cls: type[ActiveOrder], values: dict) -> ActiveOrder:
    """cls(**values), without the dataclass __init__'s one frozen assignment per field (most of
    the cost of reading an order into, or a stored history out of, the history): the values,
    which name every field in order, are stored into its slots as __init__ would store them
    (ActiveOrder has no __post_init__ or validation)."""
    if cls is not ActiveOrder:
        return cls(**values)
    assert tuple(values) == _ACTIVE_ORDER_FIELDS, "every field, in order"
    return _filled(_new_object(cls), values.values())


def canonical_drug(order: ActiveOrder, knowledge: "Knowledge") -> str:
    """knowledge.canonical_name(order.drug, order.code_system, order.code_value), resolved once
    per order and knowledge (a reloaded knowledge, a new object, resolves it again)."""
    known, name = order._canonical
    if known is knowledge:
        return name
    name = knowledge.canonical_name(order.drug, order.code_system, order.code_value)
    # one (knowledge, name) pair for every order of the drug: the rules read each active
    # order's pair on every order, and one object shared by all is already in the CPU's cache
    key = (id(knowledge), name)
    pair = _CANONICAL_PAIRS.get(key)
    if pair is None or pair[0] is not knowledge:
        if len(_CANONICAL_PAIRS) >= 10_000:  # bounded: the drugs of a knowledge or a few
            _CANONICAL_PAIRS.clear()
        pair = _CANONICAL_PAIRS[key] = (knowledge, name)
    _SET_CANONICAL(order, pair)
    return name


# (knowledge id, canonical name) -> (knowledge, name): the one pair canonical_drug() keeps in
# every order it resolves to that drug (the knowledge in the pair: its id names no other
# object while the pair is kept)
_CANONICAL_PAIRS: dict[tuple[int, str], tuple["Knowledge", str]] = {}


def _weight(value) -> float | None:
    """A stored weight, or None: absent (a history stored before weights were kept) or not a
    finite number within the contract's bounds (a damaged record is not a weight to compare)."""
    if type(value) is float:  # as stored (a float, or NaN/inf from a damaged record)
        return value if 0.1 <= value <= 1000 else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0.1 <= value <= 1000 else None


def _dose(value) -> dict:
    """A stored dose as the fields dose_value/dose_unit, or neither: absent (a history stored
    before doses were kept) or damaged (not a finite non-negative number and a unit)."""
    if type(value) is list and len(value) == 2 and type(value[0]) is float and type(value[1]) is str:
        amount, unit = value  # as stored: the checks below, for a float and a str
        if unit and amount >= 0 and math.isfinite(amount):
            return {"dose_value": amount, "dose_unit": unit}
        return {}
    if (isinstance(value, list) and len(value) == 2 and not isinstance(value[0], bool)
            and isinstance(value[0], (int, float)) and math.isfinite(value[0]) and value[0] >= 0
            and isinstance(value[1], str) and value[1]):
        return {"dose_value": float(value[0]), "dose_unit": value[1]}
    return {}


@dataclass(frozen=True)
class CancelRecord:
    """A cancellation of an order id: applied to an active order, or pending (overtook it)."""

    at: dt.datetime  # occurred_at
    event_id: str | None
    pending: bool

    def to_dict(self) -> dict:
        return {"at": self.at.isoformat(), "event_id": self.event_id, "pending": self.pending}

    @classmethod
    def from_dict(cls, d: dict | str) -> "CancelRecord":
        if isinstance(d, str):
            # the first format kept only the time; whether the order had been active is not
            # known. Read as applied: a later placement of the id is then active (the reading
            # that can only add findings, never remove one).
            return cls(at=_parse(d), event_id=None, pending=False)
        return cls(at=_parse(d["at"]), event_id=d.get("event_id"), pending=bool(d.get("pending")))


@dataclass(frozen=True)
class FoldedOrders:
    """One drug's active orders older than the kept ones, folded: all the rules need of them.

    `last` is the newest of them in full (the previous dose of the oldest kept one); `slots` its
    range in the drug's plan as computed under the plan with fingerprint `plan_key` (None: the
    drug had no plan when folded); `count` how many orders are folded; `first_at` the earliest
    scheduled_for among them. A cancellation of a folded order is not known to be one (its id
    is no longer kept): the count stays, so it keeps counting as a dose.
    """

    last: ActiveOrder
    count: int
    first_at: dt.datetime
    slots: SlotRange | None
    plan_key: str | None

    def slots_under(self, plan: Plan) -> SlotRange:
        """`last`'s slot range under `plan`: as folded when the plan is the same, else unknown."""
        if self.slots is None or self.plan_key != plan.key:
            return SlotRange.UNKNOWN
        return self.slots

    def to_dict(self) -> dict:
        """Built once (it is frozen) and the same dict after, as ActiveOrder.to_dict()."""
        d = self._record
        if d is None:
            d = self.__dict__["_record"] = {
                "last": self.last.to_dict(), "count": self.count,
                "first_at": self.first_at.isoformat(),
                "slots": [self.slots.lo, self.slots.hi] if self.slots else None,
                "plan_key": self.plan_key}
        return d

    def json_text(self) -> str:
        """to_dict() as JSON text, made once (as ActiveOrder.json_text()): `last`'s own kept
        text and the rest encoded (a fold is made again at every order folded into it, and
        `last` was an active order whose text is kept already)."""
        text = self._json
        if text is None:
            d = self.to_dict()
            rest = _json_text({"count": d["count"], "first_at": d["first_at"], "slots": d["slots"],
                               "plan_key": d["plan_key"]})
            text = self.__dict__["_json"] = '{"last":' + self.last.json_text() + "," + rest[1:]
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "FoldedOrders":
        slots = d.get("slots")
        return cls(last=ActiveOrder.from_dict(d["last"]), count=int(d["count"]),
                   first_at=_parse(d["first_at"]),
                   slots=SlotRange(slots[0], slots[1]) if slots else None,
                   plan_key=d.get("plan_key"))


FoldedOrders._record = None  # its to_dict() once built; not a field (as ActiveOrder's)
FoldedOrders._json = None  # its json_text() once built; not a field


@dataclass
class PatientHistory:
    active_orders: dict[str, ActiveOrder] = field(default_factory=dict)  # by order_id
    seen_events: dict[str, dt.datetime] = field(default_factory=dict)  # event_id -> occurred_at
    cancelled_orders: dict[str, CancelRecord] = field(default_factory=dict)  # by order_id
    newest_event_at: dt.datetime | None = None
    folded: dict[str, FoldedOrders] = field(default_factory=dict)  # by canonical drug name

    # --- queries -------------------------------------------------------------------------

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_events

    def others_than(self, order_id: str) -> list[ActiveOrder]:
        """The active orders a new order is checked against: all but itself."""
        active = self.active_orders
        if order_id not in active:  # (keyed by order_id: no other holds it either)
            return list(active.values())
        return [o for o in active.values() if o.order_id != order_id]

    def folds(self) -> list[FoldedOrders]:
        return list(self.folded.values())

    # --- updates -------------------------------------------------------------------------

    def apply(
        self,
        event: OrderPlaced | OrderCancelled,
        retention: dt.timedelta = DEFAULT_RETENTION,
        max_seen: int = DEFAULT_MAX_SEEN,
    ) -> None:
        """Record an event (see the module docstring for the order lifecycle)."""
        at = event.occurred_at
        self.seen_events[event.event_id] = at
        if self.newest_event_at is None or at > self.newest_event_at:
            self.newest_event_at = at
        if type(event) is not _PLACED_STRUCT and isinstance(event, _CANCELLED):
            self._cancel(event)  # (an order.placed struct, most events, is not one: no isinstance)
        else:
            self._place(event)
        self._forget_old(retention, max_seen)

    def _cancel(self, event: OrderCancelled) -> None:
        order_id, at = event.order.order_id, event.occurred_at
        active = self.active_orders.get(order_id)
        if active is not None:
            if active.after_cancel_at is not None and (
                    event.event_id == active.after_cancel_event_id or at < active.after_cancel_at):
                return  # the cancellation of the previous placement, again or late: not this one
            del self.active_orders[order_id]
            self.cancelled_orders[order_id] = CancelRecord(at, event.event_id, pending=False)
            return
        known = self.cancelled_orders.get(order_id)
        pending = known.pending if known is not None else True
        newest = max(known.at, at) if known is not None else at
        self.cancelled_orders[order_id] = CancelRecord(newest, event.event_id, pending)

    def _place(self, event: OrderPlaced) -> None:
        order_id = event.order.order_id
        record = self.cancelled_orders.get(order_id)
        if record is not None and record.pending:
            self.cancelled_orders[order_id] = replace(record, pending=False)
            if not self.folded or event.occurred_at <= record.at:
                self.active_orders.pop(order_id, None)
                return  # the placement this cancellation overtook: cancelled on arrival
            # history folded: the cancellation may be of a forgotten earlier placement, and
            # this one occurred after it, so it is a re-placement (active)
        elif record is None and order_id in self.active_orders:
            # a re-delivery or re-placement of an active order keeps what ended the one before
            prior = self.active_orders[order_id]
            if prior.after_cancel_at is not None:
                record = CancelRecord(prior.after_cancel_at, prior.after_cancel_event_id, False)
        self.active_orders[order_id] = _from_event(event, record)  # = ActiveOrder.from_event

    def _forget_old(self, retention: dt.timedelta, max_seen: int) -> None:
        assert self.newest_event_at is not None
        try:
            horizon = self.newest_event_at - retention
        except OverflowError:
            horizon = None  # before year 1: nothing is that old
        seen, cancelled = self.seen_events, self.cancelled_orders
        if horizon is not None:
            # the keys seen before the horizon, by a loop in this frame (a comprehension is a
            # function made and called on every event)
            old = []
            for key, at in seen.items():
                if at < horizon:
                    old.append(key)
            for key in old:
                del seen[key]
            if cancelled:
                for key in [k for k, v in cancelled.items() if v.at < horizon]:
                    del cancelled[key]
        if len(seen) > max_seen:
            for key, _ in sorted(seen.items(), key=_value)[: len(seen) - max_seen]:
                del seen[key]
        if len(cancelled) > max_seen:
            for key, _ in sorted(cancelled.items(), key=_value_at)[: len(cancelled) - max_seen]:
                del cancelled[key]

    def fold(self, knowledge: "Knowledge", bounds: FoldBounds = DEFAULT_FOLD) -> None:
        """Fold each drug's old active orders (see the module docstring); a no-op for short
        histories. Needs the knowledge: orders group by canonical drug, and the folded dose's
        slot comes from the drug's plan."""
        keep = bounds.keep
        if len(self.active_orders) <= keep:
            if not self.folded:
                return  # no drug has more than `keep` orders, and none has folded ones
            # no drug has more than `keep` orders: only a kept order before its drug's newest
            # folded one (it came in late) is to fold; none is when no order is before any
            try:
                newest_folded = max(f.last.scheduled_for for f in self.folded.values())
                if all(o.scheduled_for >= newest_folded for o in self.active_orders.values()):
                    return
            except TypeError:  # times that do not compare (a damaged record): the long way
                pass
        orders = list(self.active_orders.values())
        if not orders:
            return
        # most often every order is of one drug, resolved for this knowledge already but the
        # last (the one just placed): one group, in the orders' own order, as the loop makes it
        last = orders[-1]
        known, name = last._canonical  # canonical_drug(last, knowledge), its usual case inline
        if known is not knowledge:
            name = canonical_drug(last, knowledge)
        for o in orders:
            known, drug = o._canonical
            if known is not knowledge or drug != name:
                groups = self._by_drug(orders, knowledge)
                break
        else:
            groups = {name: orders}
        lookback, max_kept = bounds.lookback, max(bounds.max_kept, keep)
        folded = self.folded
        for drug, orders in groups.items():
            prior = folded.get(drug)
            size = len(orders)
            if size <= keep and prior is None:
                continue
            orders.sort(key=_scheduled_for)  # in time (= sorted_doses((o, 1) for o in orders))
            try:
                horizon = orders[-1].scheduled_for - lookback
            except OverflowError:
                horizon = None  # before year 1: nothing is that old
            n = 0  # fold the first n kept orders (in time)
            while size - n > keep and (
                    size - n > max_kept
                    or (horizon is not None and orders[n].scheduled_for < horizon)):
                n += 1
            if prior is not None:  # kept orders before the folded `last` came in late: fold them
                last_at = prior.last.scheduled_for
                while n < size and orders[n].scheduled_for < last_at:
                    n += 1
            if n == 0:
                continue
            self._fold(knowledge, drug, prior, orders[:n])

    @staticmethod
    def _by_drug(orders: list[ActiveOrder],
                 knowledge: "Knowledge") -> dict[str, list[ActiveOrder]]:
        """The orders by canonical drug under `knowledge`, each group in the orders' order."""
        groups: dict[str, list[ActiveOrder]] = {}
        for o in orders:
            known, name = o._canonical  # resolved for this knowledge already, or resolve it
            if known is not knowledge:
                name = canonical_drug(o, knowledge)
            group = groups.get(name)
            if group is None:
                groups[name] = [o]
            else:
                group.append(o)
        return groups

    def _fold(self, knowledge: "Knowledge", drug: str, prior: FoldedOrders | None,
              orders: list[ActiveOrder]) -> None:
        monograph = knowledge.monographs.get(drug)
        plan = monograph.plan_for(monograph.schedule) if monograph and monograph.schedule else None
        # in time, the folded `last` first at the same instant (= sorted_doses with ranks 0, 1)
        if prior is None:
            doses = orders  # (fold() passes them in time, a list of its own)
        else:
            doses = [prior.last, *orders]
            doses.sort(key=_scheduled_for)
        slots: SlotRange | None = None
        if plan is not None:
            # chain_at(plan, doses, len(doses) - 1, anchor=..., anchor_slots=...), its first
            # step inline: most often the newest dose folded is on a dosing day of the plan,
            # its range its own slot, whatever the doses before it (nor the anchor's slots)
            newest = doses[-1]
            cycle, day = newest.cycle, newest.day
            placed = (plan.slot_of(cycle, day)
                      if cycle is not None and day is not None and (
                          prior is None or newest is not prior.last) else None)
            if placed is not None:
                lo = hi = placed
            else:
                lo, hi = chain_at(plan, doses, len(doses) - 1,
                                  anchor=prior.last if prior else None,
                                  anchor_slots=prior.slots_under(plan) if prior else None)
            # SlotRange(lo, hi), without the frozen dataclass's __init__ (as FoldedOrders below)
            slots = _new_object(SlotRange)
            values = slots.__dict__
            values["lo"] = lo
            values["hi"] = hi
        first_at = orders[0].scheduled_for  # = min(...): fold() passes them in time
        # FoldedOrders(last=..., count=..., first_at=..., slots=..., plan_key=...), without the
        # frozen dataclass's __init__ (one object.__setattr__ per field): every field, in order,
        # stored into its dict (as ActiveOrder.from_event)
        folded = _new_object(FoldedOrders)
        values = folded.__dict__
        values["last"] = doses[-1]
        values["count"] = (prior.count if prior else 0) + len(orders)
        values["first_at"] = min(first_at, prior.first_at) if prior else first_at
        values["slots"] = slots
        values["plan_key"] = plan.key if plan else None
        self.folded[drug] = folded
        for o in orders:
            del self.active_orders[o.order_id]

    # --- serialisation (faust tables store JSON) ------------------------------------------

    def to_dict(self) -> dict:
        return self._as_dict(self._seen_parts()[0])

    def _as_dict(self, seen_texts: dict[str, str]) -> dict:
        """to_dict() with the seen events' texts given (new containers: the history changes
        on, the dict does not; each order's and fold's own dict is kept, never changed)."""
        d = {
            "active_orders": [o._record or o.to_dict() for o in self.active_orders.values()],
            "seen_events": seen_texts,
            "cancelled_orders": {k: v.to_dict() for k, v in self.cancelled_orders.items()},
            "newest_event_at": self._newest_text() if self.newest_event_at else None,
        }
        if self.folded:
            d["folded"] = {k: v.to_dict() for k, v in self.folded.items()}
        return d

    def to_json(self, extra: dict | None = None) -> bytes:
        """The changelog record of `{**self.to_dict(), **extra}`: the very bytes the stream's
        faust "json" codec writes for it (see to_record)."""
        return self.to_record(extra)[1]

    def to_record(self, extra: dict | None = None) -> tuple[dict, bytes]:
        """`{**self.to_dict(), **extra}` and its changelog record, in one pass over the
        history: what the stream's table keeps and what its changelog gets (the very bytes the
        stream's faust "json" codec writes for that dict). The bytes are made from texts kept
        from earlier writes (each order's and fold's JSON text, each seen event's), so a write
        encodes only what changed since the last one. `extra` holds plain JSON values (str,
        int, float, bool, None, lists, dicts with str keys), as the codec's encoder would
        write them without its `default`."""
        texts, members = self._seen_parts()
        d = self._as_dict(texts)
        if extra:
            d.update(extra)
            if not _BASE_KEYS.isdisjoint(extra):
                return d, _json_text(d).encode()  # a key of the history's, written in its place
        cancelled, newest = d["cancelled_orders"], d["newest_event_at"]
        parts = ['{"active_orders":[',
                 ",".join([o._json or o.json_text() for o in self.active_orders.values()]),
                 '],"seen_events":{', ",".join(members), '},"cancelled_orders":',
                 _json_text(cancelled) if cancelled else "{}", ',"newest_event_at":',
                 _json_str(newest) if newest is not None else "null"]
        if self.folded:
            parts.append(',"folded":{')
            parts.append(",".join([_json_key(k) + ":" + (f._json or f.json_text())
                                   for k, f in self.folded.items()]))
            parts.append("}")
        parts.append("," + _json_text(extra)[1:] if extra else "}")
        return d, "".join(parts).encode()

    def _newest_text(self) -> str:
        """newest_event_at.isoformat(), the kept text of the last seen event's time when that is
        the newest (it usually is: the event just applied), as written after the seen ones."""
        newest = self.newest_event_at
        seen = self.seen_events
        if seen and self._seen_text:
            entry = self._seen_text.get(next(reversed(seen)))
            if entry is not None and entry[0] is newest:
                return entry[1]
        return newest.isoformat()

    def _seen_parts(self) -> tuple[dict[str, str], list[str]]:
        """seen_events as to_dict writes them (event id -> occurred_at.isoformat()) and as
        to_record writes them (each '"event id":"time"' member). Both are kept per event
        (event id -> (the time, its text, its member)) and reused while the time is that very
        object: a history is written after every batch that changes it, and formatting its
        seen times again was most of the cost."""
        known = self._seen_text
        if known is None:
            known = self.__dict__["_seen_text"] = {}
        seen = self.seen_events
        texts: dict[str, str] = {}
        members: list[str] = []
        for event_id, at in seen.items():
            entry = known.get(event_id)
            if entry is None or entry[0] is not at:
                text = at.isoformat()
                entry = known[event_id] = (at, text, _json_key(event_id) + ":" + _json_str(text))
            texts[event_id] = entry[1]
            members.append(entry[2])
        if len(known) > len(seen):
            self._forget_seen_texts()
        return texts, members

    def _forget_seen_texts(self) -> None:
        """Keep the texts of seen events only (every one has its text when this is called: the
        kept ones are more than the seen ones only when some are no longer seen)."""
        known = self._seen_text
        self.__dict__["_seen_text"] = {k: known[k] for k in self.seen_events}

    @classmethod
    def from_dict(cls, d: dict) -> "PatientHistory":
        """Reads this format and the first one (histories already in changelogs)."""
        orders = [ActiveOrder.from_dict(o) for o in d.get("active_orders", [])]
        return cls(
            active_orders={o.order_id: o for o in orders},
            seen_events={k: _parse(v) for k, v in d.get("seen_events", {}).items()},
            cancelled_orders={k: CancelRecord.from_dict(v)
                              for k, v in d.get("cancelled_orders", {}).items()},
            newest_event_at=_parse(d["newest_event_at"]) if d.get("newest_event_at") else None,
            folded={k: FoldedOrders.from_dict(v) for k, v in d.get("folded", {}).items()},
        )


# the texts of seen times written so far (see _seen_parts()), in the instance's __dict__: not a
# field (no part of eq, repr, to_dict or replace()). Each entry is a function of its event id
# and time object alone, so a copy of the history that shares the dict stays right
PatientHistory._seen_text = None


def record_bytes(value: dict) -> bytes:
    """A plain JSON value (str keys; str, int, float, bool, None, lists, dicts) as a changelog
    record: the bytes the stream table's faust "json" codec writes for it."""
    return _json_text(value).encode()


# the keys of to_dict(): an `extra` one of them is written in its place, not after the others
_BASE_KEYS = frozenset(("active_orders", "seen_events", "cancelled_orders", "newest_event_at",
                        "folded"))


def _json_key(key) -> str:
    """A dict key as the JSON encoder writes it: a str as a JSON string; an int, float, bool
    or None as the string of its JSON text (TypeError for any other, as the encoder)."""
    if type(key) is str:
        return _json_str(key)
    return _json_text({key: 0})[1:-3]
