"""decide()'s order of findings: most severe first, then by category (CATEGORY_ORDER), then
rule id, stable; the findings are sorted only when the rules did not give them in that order,
which decide() checks first (the same list either way), and an unknown severity or category
still raises as the sort's key does (the processor then makes checks_failed)."""
from __future__ import annotations

import itertools

import pytest

import rxgate.decide as D
from rxgate.contract import Finding, validate_order_event

from .conftest import KNOWLEDGE, T0, order_event


def finding(severity: str, category: str, rule: str, note: str = "") -> Finding:
    return Finding(rule_id=f"x.{category}.{rule}", category=category, severity=severity,
                   message=f"{rule}{note}", evidence={"note": note}, reference="test")


class _Rule:
    def __init__(self, findings):
        self.findings = findings

    def check(self, ctx):
        return list(self.findings)


def decided(monkeypatch, *per_rule):
    monkeypatch.setattr(D, "RULE_CATEGORIES", tuple(_Rule(f) for f in per_rule))
    return D.decide(validate_order_event(order_event()), [], KNOWLEDGE, T0)


def reference_order(findings):
    return sorted(findings, key=lambda f: (-D.severity_rank(f.severity),
                                           D.CATEGORY_ORDER.index(f.category), f.rule_id))


FINDINGS = [finding("info", "dose", "a"), finding("info", "combination", "b"),
            finding("major", "contraindication", "c"), finding("info", "dose", "a", " again"),
            finding("warning", "data", "d"), finding("info", "interval", "e")]


@pytest.mark.parametrize("picked", [p for n in range(5) for p in itertools.permutations(
    range(len(FINDINGS)), n)][::7])
def test_findings_in_the_sorted_order_whatever_order_the_rules_give(monkeypatch, picked):
    given = [FINDINGS[i] for i in picked]
    d = decided(monkeypatch, given)
    expected = reference_order(given)
    assert [id(f) for f in d.findings] == [id(f) for f in expected]  # stable: ties kept
    assert d.severity == (expected[0].severity if expected else "none")
    assert d.outcome == ("flagged" if d.severity in ("warning", "major", "critical")
                         else "approved")


@pytest.mark.parametrize("at", [0, 1])
def test_an_unknown_category_raises(monkeypatch, at):
    odd = Finding.model_construct(rule_id="x.odd", category="odd", severity="info", message="",
                                  evidence={}, reference="")
    given = [finding("info", "dose", "a")]
    given.insert(at, odd)
    with pytest.raises(ValueError):
        decided(monkeypatch, given)
    with pytest.raises(ValueError):
        decided(monkeypatch, [odd])
