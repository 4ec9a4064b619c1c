"""Every series an alert selects by exact labels exists from the worker's start-up, at 0, so
increase() counts its first event (a counter first exported at 1 has no earlier sample)."""
from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy_support import alert_rules, label_matchers

# exported only once a worker owns a partition (one series per partition)
PER_ASSIGNMENT = {"rxgate_consumer_lag"}
_SELECTOR = re.compile(r"\b(rxgate_[a-z_]+)\s*(\{[^{}]*\})?")


def exported_at_start() -> dict[str, list[tuple[dict, float]]]:
    metrics_module = pytest.importorskip("rxgate.stream.metrics")
    metrics = metrics_module.Metrics()
    metrics.set_knowledge_version("test")  # as the worker does before it serves /metrics
    samples: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def selectors() -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for rule in alert_rules():
        for name, braces in _SELECTOR.findall(rule["expr"]):
            exact = {k: v for k, op, v in label_matchers(braces or "{}") if op == "="
                     and k not in ("job", "instance")}
            if (rule["alert"], name, exact) not in out:
                out.append((rule["alert"], name, exact))
    return out


@pytest.mark.parametrize("alert,name,labels", selectors(),
                         ids=[f"{a}:{n}{sorted(l.items())}" for a, n, l in selectors()])
def test_alert_series_exist_at_start_up(alert, name, labels):
    if name in PER_ASSIGNMENT:
        pytest.skip(f"{name} appears when a partition is assigned")
    samples = exported_at_start()
    assert name in samples, f"{alert} selects {name}, which the worker does not export at start"
    matching = [(l, v) for l, v in samples[name] if labels.items() <= l.items()]
    assert matching, f"{alert} selects {name}{labels}: no such series at start-up"
    if name.endswith("_total"):
        assert all(v == 0 for _, v in matching)


def test_checks_failed_and_no_monograph_exist_with_their_labels():
    from rxgate.decide import CHECKS_FAILED_RULE, NO_MONOGRAPH_RULE

    findings = exported_at_start()["rxgate_findings_total"]
    assert ({"category": "data", "severity": "major", "rule_id": CHECKS_FAILED_RULE}, 0.0) in findings
    assert ({"category": "data", "severity": "warning", "rule_id": NO_MONOGRAPH_RULE}, 0.0) in findings
    kinds = {l["kind"] for l, _ in exported_at_start()["rxgate_invalid_total"]}
    assert kinds == {"encoding", "json", "schema", "too_large"}
    assert exported_at_start()["rxgate_processing_errors_total"] == [({}, 0.0)]


def test_build_info_carries_the_version():
    from importlib.metadata import version

    assert exported_at_start()["rxgate_build_info"] == [({"version": version("rxgate")}, 1.0)]
