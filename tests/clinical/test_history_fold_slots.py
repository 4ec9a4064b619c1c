"""PatientHistory._fold builds a fold's SlotRange without the frozen dataclass's __init__ (a
speed-up, issue 10): what it builds must be exactly what SlotRange(lo, hi) builds."""
from __future__ import annotations

import json

from rxgate.contract import validate_order_event
from rxgate.history import FoldBounds, PatientHistory
from rxgate.plan import SlotRange

from .conftest import KNOWLEDGE, order_event


def test_a_folds_slots_are_what_init_builds():
    history = PatientHistory()
    seen = 0
    for i, day in enumerate([0, 7, 14, 21, 28, 35, 42, 56, 63, 70, 77, 84, 98, 112]):
        doc = order_event(order_id=f"ORD-{i}", drug="isatuximab", scheduled_for=day,
                          regimen=(1 + day // 28, 1 + day % 28))
        history.apply(validate_order_event(json.loads(json.dumps(doc))))
        history.fold(KNOWLEDGE, FoldBounds(keep=2, max_kept=3))
        for fold in history.folded.values():
            assert fold.slots is not None
            made = SlotRange(fold.slots.lo, fold.slots.hi)
            assert fold.slots == made and hash(fold.slots) == hash(made)
            assert repr(fold.slots) == repr(made) and vars(fold.slots) == vars(made)
            assert list(vars(fold.slots)) == list(vars(made))
            seen += 1
    assert seen > 5
    again = PatientHistory.from_dict(json.loads(json.dumps(history.to_dict())))
    assert again == history and again.to_dict() == history.to_dict()
