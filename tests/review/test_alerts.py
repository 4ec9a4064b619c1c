"""The review service's alert rules and dashboard: promtool loads and unit-tests them, a broken
rule fails its unit tests, the dashboard's PromQL parses, and nothing keys on an id.

promtool comes from Debian's `prometheus` package: skipped without it on a developer machine,
failing under CI (the CI environment variable set), like tests/deploy.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "review_alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "review_alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rxgate-review.json"
IDS = ("patient", "order", "event_id", "decision_id", "review_id", "pharmacist", "user")


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("promtool is missing but CI is set: .ci/run installs it", pytrace=False)
    pytest.skip("promtool not installed (Debian package prometheus)")


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rules_load_and_their_unit_tests_pass(promtool):
    r = run([promtool, "check", "rules", RULES.name], RULES.parent)
    assert r.returncode == 0 and "SUCCESS: 4 rules found" in r.stdout, r.stdout + r.stderr
    r = run([promtool, "test", "rules", RULE_TESTS.name], RULES.parent)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_alert_has_a_unit_test_and_no_id_label():
    rules = [x for g in yaml.safe_load(RULES.read_text())["groups"] for x in g["rules"]]
    tested = {a["alertname"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for a in t.get("alert_rule_test", [])}
    assert {r["alert"] for r in rules} == tested
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning")
        assert not any(i in r["expr"] for i in IDS)


@pytest.mark.parametrize("alert,change", [
    ("RxgateReviewQueueAging", {"for": "0m"}),
    ("RxgateReviewOutboxStuck", {"expr": "sum by (job) (rxgate_review_outbox_unsent) > 0"}),
    ("RxgateReviewQueueGrowing", {"expr": "max by (job) (sum without (severity) "
                                          "(rxgate_review_queue_depth)) > 25"}),
])
def test_unit_tests_catch_a_broken_rule(promtool, tmp_path, alert, change):
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == alert:
                rule.update(change)
    (tmp_path / RULES.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    r = run([promtool, "test", "rules", RULE_TESTS.name], tmp_path)
    assert r.returncode != 0 and alert in r.stdout + r.stderr


def test_dashboard_queries_parse_and_cover_the_review_metrics(promtool, tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    row = dashboard["panels"][0]
    assert row["type"] == "row" and row["title"] == "Pharmacist review"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for metric in ("rxgate_review_queue_depth", "rxgate_review_oldest_pending_seconds",
                   "rxgate_review_actions_total", "rxgate_review_decision_to_action_seconds",
                   "rxgate_review_outbox_unsent"):
        assert any(metric in e for e in exprs), metric
    records = []
    for i, expr in enumerate(exprs):
        for var, value in (("$__rate_interval", "5m"), ("$instance", ".*")):
            expr = expr.replace(var, value)
        assert "$" not in expr and not any(i in expr for i in IDS)
        records.append({"record": f"dashboard:panel_{i}", "expr": expr})
    (tmp_path / "d.yml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": records}]}))
    r = run([promtool, "check", "rules", "d.yml"], tmp_path)
    assert r.returncode == 0 and re.search(rf"SUCCESS: {len(records)} rules found", r.stdout)
