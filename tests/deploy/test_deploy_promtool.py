"""promtool: the Prometheus config and rules load, the alert unit tests pass, the dashboard's
PromQL parses -- and a broken rule makes the unit tests fail.

promtool comes from Debian's `prometheus` package. Without it these tests skip on a developer
machine, but fail under CI (the CI environment variable set): CI must install it.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy_support import (
    ALERTS_FILE, ALERTS_TEST_FILE, PROMETHEUS_CONFIG, ROOT, dashboard_targets, load_dashboard,
    load_yaml,
)

INSTALL_HINT = "apt-get update && apt-get install -y --no-install-recommends prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"promtool is missing but CI={os.environ['CI']!r}: the alert rules would go "
                    f"untested. Install it in .ci/run: `{INSTALL_HINT}`", pytrace=False)
    pytest.skip(f"promtool not installed (install: {INSTALL_HINT}); required when CI is set")


def run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_promtool_check_config(promtool):
    r = run([promtool, "check", "config", str(PROMETHEUS_CONFIG.relative_to(ROOT))])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr
    assert "2 rule files found" in r.stdout + r.stderr


def test_promtool_check_rules(promtool):
    r = run([promtool, "check", "rules", str(ALERTS_FILE.relative_to(ROOT))])
    assert r.returncode == 0, r.stdout + r.stderr
    n = len([x for g in load_yaml(ALERTS_FILE)["groups"] for x in g["rules"]])
    assert f"SUCCESS: {n} rules found" in r.stdout + r.stderr


def test_promtool_alert_unit_tests(promtool):
    r = run([promtool, "test", "rules", str(ALERTS_TEST_FILE.relative_to(ROOT))])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_alert_unit_tests_catch_a_broken_rule(promtool, tmp_path):
    """WorkerDown without its `for: 2m` would page on a single failed scrape; the unit tests
    must notice (and must pass on the real rule, so the failure is the mutation's)."""
    tests = load_yaml(ALERTS_TEST_FILE)
    tests["tests"] = [t for t in tests["tests"] if t["name"].startswith("worker down")]
    assert tests["tests"]
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))

    rules = load_yaml(ALERTS_FILE)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    ok = run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    broken = copy.deepcopy(rules)
    for group in broken["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "RxgateWorkerDown":
                rule["for"] = "0m"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(broken, sort_keys=False))
    bad = run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert bad.returncode != 0
    assert "RxgateWorkerDown" in bad.stdout + bad.stderr


def test_dashboard_promql_parses(promtool, tmp_path):
    """Every dashboard query, with Grafana's variables filled in, is valid PromQL."""
    substitutions = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m",
                     "$instance": ".*"}
    records = []
    for i, (title, target) in enumerate(dashboard_targets(load_dashboard())):
        expr = target["expr"]
        for var, value in substitutions.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"{title}: unknown Grafana variable in {expr!r}"
        records.append({"record": f"dashboard:panel_{i}", "expr": expr})
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    r = run([promtool, "check", "rules", str(rules)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(rf"SUCCESS: {len(records)} rules found", r.stdout + r.stderr)


@pytest.mark.parametrize("alert,tests_prefix", [
    ("RxgateChecksFailing", "checks failing"),
    ("RxgateProcessingErrors", "processing errors"),
])
def test_counter_alerts_fire_for_a_series_born_above_zero(promtool, tmp_path, alert, tests_prefix):
    """The unit tests start these counters absent, as a worker does when it starts; a rule
    with increase() alone misses a series whose first sample is already 1, and the tests must
    catch that (they pass on the real rule, so the failure is the mutation's)."""
    tests = load_yaml(ALERTS_TEST_FILE)
    tests["tests"] = [t for t in tests["tests"] if t["name"].startswith(tests_prefix)]
    assert len(tests["tests"]) >= 2
    first_values = [s["values"].split()[0] for t in tests["tests"] for s in t["input_series"]]
    assert any(v.startswith("_") for v in first_values), "no test starts its series absent"
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))

    rules = load_yaml(ALERTS_FILE)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    ok = run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    broken = copy.deepcopy(rules)
    for group in broken["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = rule["expr"].split(" or", 1)[0].strip()
                assert rule["expr"].startswith("sum(increase(") and rule["expr"].endswith("> 0")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(broken, sort_keys=False))
    bad = run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert bad.returncode != 0, "increase() alone passed the tests"
    assert alert in bad.stdout + bad.stderr
