"""What the dose rules keep between orders (issue 10: speed) changes no finding: a deviation
decided without round() only where rounding cannot matter, what a drug and route as written
make kept per knowledge, and each decision's premedication reminder its own object."""
from __future__ import annotations

import dataclasses
import random

from rxgate.knowledge import load_knowledge
from rxgate.rules import dose

from .conftest import Pharmacy, order_event, rule_ids


def test_a_deviation_surely_within_is_within_when_rounded():
    rng = random.Random(10)
    margin = dose._ROUNDING_MARGIN
    for limit in (0.0, 0.5, 5.0, 10.0, 25.0, 33.3, 99.99, 1e9):
        values = [limit + k * 1e-7 for k in range(-30, 31)]
        values += [limit - margin, limit - margin * (1 + 1e-12), limit - 5e-7, limit - 4.9999e-7]
        values += [rng.uniform(-2 * limit - 1, 2 * limit + 1) for _ in range(2000)]
        for x in values:
            for deviation in (x, -x):
                if -(limit - margin) <= deviation <= limit - margin:
                    rounded = round(deviation, 6)
                    assert -limit <= rounded <= limit, (limit, deviation, rounded)


def test_what_a_route_makes_is_kept_per_knowledge():
    k = load_knowledge()
    fewer = dataclasses.replace(k, routes={s: r for s, r in k.routes.items() if s != "intravenous"},
                                _identities={})
    assert fewer.monographs["isatuximab"] is k.monographs["isatuximab"]
    for knowledge, unknown in ((k, False), (fewer, True), (k, False)):
        pharmacy = Pharmacy()
        pharmacy.processor.knowledge = knowledge
        decision = pharmacy.place(order_event(route="intravenous"))
        assert ("isatuximab.data.route_unknown" in rule_ids(decision)) is unknown


def test_each_decision_has_its_own_premedication_reminder():
    pharmacy = Pharmacy()
    rule = "isatuximab.dose.premedication"
    decisions = [pharmacy.place(order_event(scheduled_for=7 * i, regimen=(1, 1 + 7 * i)))
                 for i in range(3)]
    found = [next(f for f in d.findings if f.rule_id == rule) for d in decisions[1:]]
    assert found[0] is not found[1] and found[0].evidence is not found[1].evidence
    assert found[0].evidence["premedication"] is not found[1].evidence["premedication"]
    found[0].evidence["premedication"].append("changed")
    later = pharmacy.place(order_event(scheduled_for=21, regimen=(1, 22)))
    assert next(f for f in later.findings if f.rule_id == rule).model_dump() == found[1].model_dump()
