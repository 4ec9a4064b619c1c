"""A bounded history decides exactly as an unbounded one, on long realistic courses.

Issue 7, item 3: the history keeps, per drug, the newest orders in full and folds the older
ones into a count with the newest folded dose and its plan slot (history.FoldedOrders). The
oracle here is the same Processor with folding switched off (`fold=None`: every active order
kept, as before issue 7). Decisions must be the same, finding for finding, except that a
combination finding names another drug's folded orders as a count rather than one by one.
tests/clinical/compare_with_main.py runs the same courses against the main branch.
"""
from __future__ import annotations

import json

import pytest

from rxgate.contract import FileSource
from rxgate.processor import DictHistoryStore, Processor

from .conftest import KNOWLEDGE, NOW, JsonHistoryStore
from .courses import course, decisive

VARIANTS = {
    "plain": {},
    "same_day_orders": {"same_day_orders": True},
    "replacements": {"replacements": True},
}


def run(processor: Processor, events: list[dict]) -> list:
    out = []
    for i, e in enumerate(events, 1):
        h = processor.handle(json.dumps(e).encode(), FileSource(file="course", line=i), NOW)
        assert h.error is None, h.error
        out.append((h.kind, [decisive(o) for o in h.outputs]))
    return out


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", [0, 1, 7])  # 0, 7: no regimen (slots chain on)
def test_bounded_history_decides_as_the_unbounded_one(variant, seed):
    events = course(seed, 220, **VARIANTS[variant])
    unbounded = Processor(KNOWLEDGE, DictHistoryStore(), fold=None)
    bounded = Processor(KNOWLEDGE, JsonHistoryStore())  # through JSON, as the stream's table
    a, b = run(unbounded, events), run(bounded, events)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, (i, events[i]["event_id"], x, y)
    flagged = sum(o["outcome"] == "flagged" for _, outs in a for o in outs)
    assert flagged > 20  # the courses do exercise the interval rules

    # the count is exact: every active isatuximab order is kept or folded, none lost
    pid = events[0]["patient"]["patient_id"]
    full = unbounded.store.get(pid)
    small = bounded.store.get(pid)
    isa = [o for o in full.active_orders.values() if o.drug == "isatuximab"]
    kept = [o for o in small.active_orders.values() if o.drug == "isatuximab"]
    assert len(isa) > 150
    assert small.folded["isatuximab"].count + len(kept) == len(isa)
    assert len(kept) <= 64 and len(small.active_orders) < 64
    assert len(json.dumps(small.to_dict())) < 25_000 < len(json.dumps(full.to_dict()))
