"""Clinical rules, one module per category. Each is a pure function `check(ctx) -> list[Finding]`.

    dose.py              amount (flat, per kg, per m2), route, infusion duration, first-dose premedication
    interval.py          gaps between doses, the regimen plan (cycle/day), frequency, same-day duplicates
    combination.py       other drugs the patient has (active orders, current medications)
    contraindication.py  pregnancy, lactation, allergy, laboratory limits, infection, indication

A `data` finding (a fact the check needs is missing, stale or unknown) is raised by the rule
that needs the fact, so the reason sits next to the check that could not pass.
All numbers and limits come from the drug's monograph (knowledge/data/drugs/<drug>.toml).
"""
from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass, field
from typing import Any

from ..contract import (_SET_DICT, _SET_EXTRA, _SET_FIELDS_SET, _SET_PRIVATE, Category, Finding,
                        FindingSeverity, Order, OrderPlaced, Patient)
from ..history import ActiveOrder, FoldedOrders, canonical_drug
from ..knowledge import Knowledge
from ..knowledge.models import Monograph, ProductMatch

_CATEGORIES = frozenset(typing.get_args(Category))
_SEVERITIES = frozenset(typing.get_args(FindingSeverity))
_new = object.__new__
_set = object.__setattr__
_FINDING_FIELDS = frozenset(Finding.model_fields)  # all given: a finding's fields set


class cached_property:  # noqa: N801 (functools' name: a drop-in)
    """functools.cached_property without its lock (3.11's takes one on every first read): the
    value is computed on first read and kept in the instance's __dict__ (an OrderContext is
    per order, never shared between threads)."""

    def __init__(self, func):
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


@dataclass(frozen=True)
class OrderContext:
    """Everything a rule may look at for one placed order; nothing else."""

    event: OrderPlaced
    monograph: Monograph
    knowledge: Knowledge
    active_orders: list[ActiveOrder]  # the patient's other active orders (not this one)
    # the patient's older active orders, folded per drug (history.FoldedOrders)
    folds: tuple[FoldedOrders, ...] = ()
    # read many times per order by the rules: set with the fields above, plain instance values
    # (a class attribute of the name, such as a cached property, would make every read of it
    # the interpreter's generic attribute look-up, several times slower)
    order: Order = field(init=False, repr=False, compare=False)
    patient: Patient = field(init=False, repr=False, compare=False)
    scheduled_for: dt.datetime = field(init=False, repr=False, compare=False)
    # the monograph's drug (its canonical name): a monograph's attributes are a pydantic
    # model's, each read several times slower than an instance value
    drug_name: str = field(init=False, repr=False, compare=False)
    # the patient's other active orders of this drug (by name or code), in their order
    same_drug_orders: list[ActiveOrder] = field(init=False, repr=False, compare=False)
    # the rules' tables of the monograph kept by the knowledge, by kind (Knowledge.kept_for):
    # a rule reads its own there first, else asks knowledge.per_monograph (which keeps it)
    kept: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order = self.event.order
        _set(self, "order", order)
        _set(self, "patient", self.event.patient)
        _set(self, "scheduled_for", order.scheduled_for)
        _set(self, "drug_name", self.monograph.drug)
        _set(self, "same_drug_orders", _same_drug_orders(self.active_orders, self.drug_name,
                                                         self.knowledge))
        _set(self, "kept", self.knowledge.kept_for(self.monograph))

    @classmethod
    def of(cls, event: OrderPlaced, monograph: Monograph, knowledge: Knowledge,
           active_orders: list[ActiveOrder], folds: tuple[FoldedOrders, ...] = ()) -> OrderContext:
        """OrderContext(event, monograph, knowledge, active_orders, folds), without the frozen
        dataclass's __init__ (one object.__setattr__ per field): decide() builds one per order.
        The fields set after __init__ (__post_init__) are set here alike (the instance's dict
        given whole, as a dict display: no keyword arguments to collect and copy)."""
        ctx = _new(cls)
        order = event.order
        drug = monograph.drug
        _set(ctx, "__dict__", {
            "event": event, "monograph": monograph, "knowledge": knowledge,
            "active_orders": active_orders, "folds": folds, "order": order,
            "patient": event.patient, "scheduled_for": order.scheduled_for, "drug_name": drug,
            # read by the dose, interval and combination rules of every order
            "same_drug_orders": _same_drug_orders(active_orders, drug, knowledge),
            "kept": knowledge.kept_for(monograph)})
        return ctx

    @cached_property
    def product_match(self) -> ProductMatch:
        """The product of the monograph this order is matched to, by name, code and route."""
        drug = self.order.drug
        return self.monograph.match_product(
            drug.name, drug.code.system if drug.code else None,
            drug.code.value if drug.code else None, self.knowledge.route(self.order.route))

    @cached_property
    def same_drug_fold(self) -> FoldedOrders | None:
        """The patient's folded older orders of this drug, if any (one record; should a change
        of knowledge make several folds the same drug, they merge with an unknown slot)."""
        folds = self.folds
        if not folds:
            return None  # most orders: no older orders folded
        knowledge, drug = self.knowledge, self.monograph.drug
        if len(folds) == 1:  # the rest: one drug's
            return folds[0] if canonical_drug(folds[0].last, knowledge) == drug else None
        mine = [f for f in folds if canonical_drug(f.last, knowledge) == drug]
        if len(mine) <= 1:
            return mine[0] if mine else None
        last = max(mine, key=lambda f: f.last.scheduled_for).last
        return FoldedOrders(last=last, count=sum(f.count for f in mine),
                            first_at=min(f.first_at for f in mine), slots=None, plan_key=None)

    def finding(self, category: str, name: str, severity: str, message: str,
                evidence: dict[str, Any], reference: str) -> Finding:
        rule_id = self.monograph.rule_id(category, name)
        if (type(category) is str and category in _CATEGORIES and type(severity) is str
                and severity in _SEVERITIES and type(rule_id) is str and type(message) is str
                and type(evidence) is dict and type(reference) is str):
            # what validation would give: every value as it is, evidence copied (one level);
            # trusted(Finding, values), inline (two findings per order)
            finding = _new(Finding)
            _SET_DICT(finding, {"rule_id": rule_id, "category": category, "severity": severity,
                                "message": message, "evidence": dict(evidence),
                                "reference": reference})
            _SET_FIELDS_SET(finding, set(_FINDING_FIELDS))
            _SET_EXTRA(finding, None)
            _SET_PRIVATE(finding, None)
            return finding
        return Finding(
            rule_id=rule_id,
            category=category,
            severity=severity,
            message=message,
            evidence=evidence,
            reference=reference,
        )

    def missing(self, name: str, message: str, evidence: dict[str, Any], reference: str) -> Finding:
        """A `data` finding: the service fails closed, so it is always at least a warning."""
        return self.finding("data", name, "warning", message, evidence, reference)


def _same_drug_orders(orders: list[ActiveOrder], drug: str,
                      knowledge: Knowledge) -> list[ActiveOrder]:
    """The orders of `drug` (canonical name under `knowledge`), in their order."""
    for o in orders:
        known, name = o._canonical
        if known is not knowledge or name != drug:
            break
    else:  # most often: all of them, each resolved for this knowledge already
        return list(orders)
    same = []
    for o in orders:
        known, name = o._canonical  # resolved for this knowledge already, or resolve it
        if known is not knowledge:
            name = canonical_drug(o, knowledge)
        if name == drug:
            same.append(o)
    return same


def again(finding: Finding, evidence: dict[str, Any]) -> Finding:
    """`finding` (one ctx.finding made) with this evidence instead, its other values as they
    are: what ctx.finding gives for them again, without checking or building them again (a
    rule whose finding differs from order to order only in its evidence keeps the first).
    `evidence` is a dict of the caller's own, made for this finding: it is kept, not copied.
    (trusted(Finding, values, given), inline: one finding or two per order)"""
    made = _new(Finding)
    _SET_DICT(made, {**finding.__dict__, "evidence": evidence})
    _SET_FIELDS_SET(made, set(finding.__pydantic_fields_set__))
    _SET_EXTRA(made, None)
    _SET_PRIVATE(made, None)
    return made


def num(x: float, places: int = 2) -> float | int:
    """A number as a pharmacist reads it: 70.0 -> 70, 20.0001 -> 20.0."""
    if type(x) is float and x.is_integer():
        return int(x)  # what the lines below give it, without round() (most numbers are whole)
    r = round(x, places)
    i = int(r)
    return i if r == i else r


def days_between(earlier: dt.datetime, later: dt.datetime) -> float:
    return (later - earlier).total_seconds() / 86400


def beyond(x: float, limit: float, places: int = 1) -> float | int:
    """x rounded for display, with just enough places that it does not look equal to the limit.

    A value flagged for being over 10 % must not read "10.0 % above": 10.0014 reads "10.001".
    """
    for p in range(places, 7):
        if round(x, p) != round(limit, p):
            return num(x, p)
    return num(x, 6)


def days_text(days: float) -> str:
    """A duration as a pharmacist reads it: '7 days', '7 days 1 h', '6 days 23 h 59 min'."""
    minutes = round(abs(days) * 24 * 60)
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    parts = [f"{d} day{'s' if d != 1 else ''}"]
    if h or m:
        parts.append(f"{h} h")
    if m:
        parts.append(f"{m} min")
    return ("-" if days < 0 else "") + " ".join(parts)
