"""Alert rules and the Grafana dashboard key on the contract's metric names and labels only,
and never on a patient or order id."""
from __future__ import annotations

import re

import pytest

from deploy_support import (
    ALERTS_TEST_FILE, CONTRACT_DOC, CONTRACT_LABEL_VALUES, CONTRACT_METRICS, DEPLOY, FORBIDDEN_LABELS,
    STANDARD_METRICS, TARGET_LABELS, WORKER_METRICS, alert_rules, dashboard_targets, grouping_labels,
    label_matchers, load_dashboard, load_yaml, metric_names, template_labels,
)

ALLOWED_METRICS = set(CONTRACT_METRICS) | set(WORKER_METRICS) | STANDARD_METRICS
ALL_LABELS = (set().union(*CONTRACT_METRICS.values(), *WORKER_METRICS.values()) | TARGET_LABELS
              | {"__name__"})

RULES = alert_rules()
DASHBOARD = load_dashboard()
TARGETS = dashboard_targets(DASHBOARD)


def _norm(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


# ------------------------------------------------------------------ the scanner itself


def test_scanner_finds_names_and_ignores_functions_keywords_and_strings():
    expr = ('sum by (rule_id) (rate(rxgate_findings_total{category="data", rule_id=~"a.b{1}"}[5m]'
            ' offset 1h)) / on() group_left sum(rxgate_orders_total) and bogus_metric > 1e3')
    assert metric_names(expr) == {"rxgate_findings_total", "rxgate_orders_total", "bogus_metric"}
    assert grouping_labels(expr) == {"rule_id"}
    assert ("category", "=", "data") in label_matchers(expr)
    assert ("rule_id", "=~", "a.b{1}") in label_matchers(expr)
    assert metric_names('{__name__="patient_total"}') == {"patient_total"}


def _documented_metrics() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """docs/contract.md, section Metrics: (the contract's table, the further metrics' table),
    each exposed series name -> label names (a histogram's _bucket gets `le`)."""
    text = CONTRACT_DOC.read_text(encoding="utf-8")
    assert "\n## Metrics\n" in text, f"{CONTRACT_DOC} has no Metrics section"
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    contract, _, further = section.partition("\n### ")
    return _metric_rows(contract), _metric_rows(further)


def _metric_rows(text: str) -> dict[str, set[str]]:
    rows = re.findall(r"^\|\s*`(rxgate_[a-z_]+)`\s*\|\s*([\w ()]+?)\s*\|\s*(.*?)\s*\|\s*$", text,
                      re.MULTILINE)
    out: dict[str, set[str]] = {}
    for name, kind, labels in rows:
        # "`outcome` (`approved`, `flagged`)", "`category`, `severity`, `rule_id`", "none; ..."
        names = set(re.findall(r"`([a-z_]+)`", labels.split("(", 1)[0].split(";", 1)[0]))
        if kind == "histogram":
            out |= {f"{name}_bucket": names | {"le"}, f"{name}_sum": names,
                    f"{name}_count": names}
        else:
            out[name] = names
    return out


def test_contract_metric_list_matches_the_contract_doc():
    contract, _ = _documented_metrics()
    assert contract, f"no metric table in the Metrics section of {CONTRACT_DOC}"
    assert contract == CONTRACT_METRICS


def test_every_metric_the_worker_serves_is_in_the_contract_doc():
    """An operator or integrator finds every series /metrics shows, with its labels, in
    docs/contract.md (the contract's table or the further metrics after it)."""
    from prometheus_client.metrics import MetricWrapperBase

    from rxgate.stream.metrics import Metrics

    contract, further = _documented_metrics()
    documented = {**further, **contract}
    served: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        # prometheus_client keeps these as attributes; there is no public accessor for a
        # metric's label names before a child exists
        name, kind, labels = metric._name, metric._type, set(metric._labelnames)
        if kind == "counter":
            served[f"{name}_total"] = labels
        elif kind == "histogram":
            served |= {f"{name}_bucket": labels | {"le"}, f"{name}_sum": labels,
                       f"{name}_count": labels}
        else:
            served[name] = labels
    assert served, "found no metrics on rxgate.stream.metrics.Metrics"
    undocumented = {n: sorted(ls) for n, ls in served.items() if documented.get(n) != ls}
    assert not undocumented, (f"served but not in {CONTRACT_DOC.name} (or with other labels): "
                              f"{undocumented}")
    missing = set(CONTRACT_METRICS) - set(served)
    assert not missing, f"the contract's metrics {sorted(missing)} are not served"


# ------------------------------------------------------------------ alert rules


def test_alert_rules_cover_what_on_call_needs():
    names = {r["alert"] for r in RULES}
    assert {"RxgateWorkerDown", "RxgateWorkerTargetMissing", "RxgateInvalidInputRatioHigh",
            "RxgateFlaggedRatioSpike", "RxgateDecisionLatencyHigh",
            "RxgateDecisionsStopped", "RxgateInputsWithoutDecisions",
            "RxgateKnowledgeVersionMismatch", "RxgateChecksFailing", "RxgateProcessingErrors",
            "RxgateConsumerLagHigh"} <= names
    assert len(names) == len(RULES), "duplicate alert names"


def test_knowledge_mismatch_counts_distinct_versions():
    rule = next(r for r in RULES if r["alert"] == "RxgateKnowledgeVersionMismatch")
    assert _norm(rule["expr"]) == _norm("count(count by (version) (rxgate_knowledge_info)) > 1")


def test_latency_alert_uses_the_histogram_p99():
    rule = next(r for r in RULES if r["alert"] == "RxgateDecisionLatencyHigh")
    assert "histogram_quantile(0.99" in _norm(rule["expr"])
    assert "rxgate_decision_seconds_bucket" in rule["expr"]


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_alert_has_severity_and_actionable_annotations(rule):
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["labels"].get("service") == "rxgate"
    ann = rule["annotations"]
    for key in ("summary", "description", "runbook"):
        assert isinstance(ann.get(key), str) and len(ann[key].strip()) > 20, key
    assert f"runbook {rule['alert']}" in ann["runbook"], "runbook hint must name its section"
    assert "for" in rule, "every alert waits before firing"


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_alert_expr_uses_only_contract_metrics(rule):
    used = metric_names(rule["expr"])
    assert used, "an alert must select some metric"
    assert used <= ALLOWED_METRICS, f"not in the contract: {sorted(used - ALLOWED_METRICS)}"


@pytest.mark.parametrize("rule", RULES, ids=[r["alert"] for r in RULES])
def test_alert_labels_are_contract_labels_and_never_ids(rule):
    expr = rule["expr"]
    labels = grouping_labels(expr) | {name for name, _, _ in label_matchers(expr)}
    texts = " ".join(rule["annotations"].values())
    labels |= template_labels(texts)
    assert labels <= ALL_LABELS, f"unknown labels {sorted(labels - ALL_LABELS)}"
    assert not (labels | set(rule["labels"])) & FORBIDDEN_LABELS
    for name, op, value in label_matchers(expr):
        if name in CONTRACT_LABEL_VALUES and op == "=":
            assert value in CONTRACT_LABEL_VALUES[name], f"{name}={value!r} is not in the contract"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    fires, quiet = set(), set()
    for case in load_yaml(ALERTS_TEST_FILE)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in RULES}
    assert names - fires == set(), f"never tested firing: {sorted(names - fires)}"
    assert names - quiet == set(), f"never tested quiet: {sorted(names - quiet)}"


def test_runbooks_exist_in_deploy_readme():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for rule in RULES:
        assert re.search(rf"^#+\s+{rule['alert']}\b", readme, re.MULTILINE), rule["alert"]


# ------------------------------------------------------------------ the dashboard


def test_dashboard_has_targets_and_unique_panel_ids():
    assert DASHBOARD["uid"] and DASHBOARD["title"]
    assert len(TARGETS) >= 12
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p["id"])
            walk(p.get("panels", []))

    walk(DASHBOARD["panels"])
    assert len(ids) == len(set(ids))


def test_dashboard_panels_do_not_overlap():
    boxes = [(p["title"], p["gridPos"]) for p in DASHBOARD["panels"]]
    for i, (ta, a) in enumerate(boxes):
        assert 0 <= a["x"] and a["x"] + a["w"] <= 24, ta
        for tb, b in boxes[i + 1:]:
            overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                       and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
            assert not overlap, f"{ta!r} overlaps {tb!r}"


@pytest.mark.parametrize("title,target", TARGETS, ids=[f"{t}:{x['refId']}" for t, x in TARGETS])
def test_dashboard_expr_uses_only_contract_metrics_and_labels(title, target):
    expr = target["expr"]
    used = metric_names(expr)
    assert used and used <= ALLOWED_METRICS, f"{title}: {sorted(used - ALLOWED_METRICS)}"
    labels = (grouping_labels(expr) | {n for n, _, _ in label_matchers(expr)}
              | template_labels(target.get("legendFormat", "")))
    assert labels <= ALL_LABELS, f"{title}: unknown labels {sorted(labels - ALL_LABELS)}"
    assert not labels & FORBIDDEN_LABELS
    assert target["datasource"]["uid"] == "${datasource}"


def test_dashboard_shows_what_the_brief_asks_for():
    exprs = [_norm(t["expr"]) for _, t in TARGETS]

    def has(*needles):
        return any(all(n in e for n in needles) for e in exprs)

    assert has("sumby(outcome)", "rxgate_orders_total"), "decisions/s by outcome"
    assert has('outcome="flagged"', "/sum(rate(rxgate_orders_total"), "flagged ratio"
    assert has("sumby(category)", "rxgate_findings_total"), "findings by category"
    assert has("sumby(severity)", "rxgate_findings_total"), "findings by severity"
    assert has("topk(", "sumby(rule_id)", "rxgate_findings_total"), "top rule_id"
    assert has("sumby(kind)", "rxgate_invalid_total"), "invalid by kind"
    assert has("rxgate_duplicates_total"), "duplicates"
    assert has("histogram_quantile(0.5,", "rxgate_decision_seconds_bucket"), "latency p50"
    assert has("histogram_quantile(0.99,", "rxgate_decision_seconds_bucket"), "latency p99"
    assert has("by(version)", "rxgate_knowledge_info") or has(
        "version)", "rxgate_knowledge_info"), "knowledge version"


def test_dashboard_variables_and_datasource_provisioning_agree():
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    provisioned = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (ds,) = provisioned["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] == variables["datasource"]["current"]["value"]
    assert ds["url"] == "http://prometheus:9090"
    instance = variables["instance"]
    assert metric_names(instance["query"]["query"].replace("label_values(", "sum(")
                        .replace(", instance)", ")")) <= ALLOWED_METRICS
