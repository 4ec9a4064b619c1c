"""Plans and regimen lookups are computed once per monograph object (issue 10: speed) and kept
on the object: a reloaded knowledge computes its own, and what is kept changes nothing of the
monograph as data (equality, dumps, repr, copies)."""
from __future__ import annotations

import copy
import pickle

from rxgate.knowledge import load_knowledge
from rxgate.plan import Plan


def _use(knowledge):
    for mono in knowledge.monographs.values():
        for rules in mono.all_regimens:
            mono.plan_for(rules)
        for name in (None, "", "x", *(n for r in mono.all_regimens for n in r.names)):
            mono.regimen_for(name)


def test_one_plan_per_regimen_per_monograph_object():
    k, reloaded = load_knowledge(), load_knowledge()
    _use(k)
    for drug, mono in k.monographs.items():
        for rules in mono.all_regimens:
            plan = mono.plan_for(rules)
            assert plan is mono.plan_for(rules) and plan.rules is rules
            assert plan.split_days == mono.split_days
            assert plan.key == Plan(rules, mono.split_days).key
            other = reloaded.monographs[drug]
            assert other.plan_for(other.all_regimens[mono.all_regimens.index(rules)]) is not plan


def test_regimen_lookup_is_the_same_remembered():
    k = load_knowledge()
    for mono in k.monographs.values():
        names = [None, "", " ", "x", *(n for r in mono.all_regimens for n in r.names),
                 *(n.upper() for r in mono.all_regimens for n in r.names)]
        for _ in range(2):
            for name in names:
                assert mono.regimen_for(name) == mono._regimen_for(name)


def test_what_is_kept_is_not_part_of_the_knowledge():
    used, fresh = load_knowledge(), load_knowledge()
    _use(used)
    assert used == fresh and fresh == used
    for drug, mono in used.monographs.items():
        other = fresh.monographs[drug]
        assert mono == other and not (mono != other)
        assert mono.model_dump_json() == other.model_dump_json() and repr(mono) == repr(other)
        for clone in (copy.deepcopy(mono), pickle.loads(pickle.dumps(mono)), mono.model_copy()):
            assert clone == mono
            for i, rules in enumerate(clone.all_regimens):
                plan = clone.plan_for(rules)
                assert plan.rules is rules
                assert plan.key == mono.plan_for(mono.all_regimens[i]).key
    _use(fresh)
    assert used == fresh
