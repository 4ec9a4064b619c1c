"""Shared helpers for the deploy tests: repo paths, the contract's metric names, the worker's
environment variable names, and a small PromQL scanner (metric and label names).

The scanner is not a PromQL parser: syntax is checked by promtool (test_deploy_promtool.py);
this only pulls out the names an expression depends on, which is what the contract governs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DOC = ROOT / "docs" / "contract.md"  # the wire contract, with its Metrics section
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_DIR = DEPLOY / "prometheus"
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST_FILE = PROMETHEUS_DIR / "alerts_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = DEPLOY / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "rxgate.json"
K8S_DIR = DEPLOY / "k8s"
WORKER_CONFIG = ROOT / "services" / "rxgate" / "stream" / "config.py"

# The contract's Metrics table (docs/contract.md, section Metrics, the first table): name ->
# allowed label names (a histogram adds `le` to _bucket).
CONTRACT_METRICS: dict[str, set[str]] = {
    "rxgate_orders_total": {"outcome"},
    "rxgate_findings_total": {"category", "severity", "rule_id"},
    "rxgate_invalid_total": {"kind"},
    "rxgate_duplicates_total": set(),
    "rxgate_decision_seconds_bucket": {"le"},
    "rxgate_decision_seconds_sum": set(),
    "rxgate_decision_seconds_count": set(),
    "rxgate_knowledge_info": {"version"},
}
# Beyond the contract: the worker's own operational metrics (stream/metrics.py) alerts may use.
WORKER_METRICS: dict[str, set[str]] = {
    "rxgate_processing_errors_total": set(),
    "rxgate_consumer_lag": {"partition"},
    "rxgate_build_info": {"version"},
    "rxgate_knowledge_refused_total": set(),
    "rxgate_stalls_total": set(),
}
# Series Prometheus itself makes for every scrape target.
STANDARD_METRICS = {"up"}
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Enumerated label values in the contract.
CONTRACT_LABEL_VALUES: dict[str, set[str]] = {
    "outcome": {"approved", "flagged"},
    "kind": {"encoding", "json", "schema", "too_large"},
    "category": {"dose", "interval", "combination", "contraindication", "data"},
    "severity": {"info", "warning", "major", "contraindicated"},
}
# Per-order or per-person identifiers: never a label, anywhere.
FORBIDDEN_LABELS = {"patient_id", "order_id", "event_id", "decision_id", "review_id",
                    "prescriber_id", "pharmacist_id", "patient", "order"}

# The names the streaming-validator issue fixes ("operators script against these names").
REQUIRED_WORKER_ENV = {"RXGATE_BROKER", "RXGATE_PARTITIONS", "RXGATE_KNOWLEDGE_DIR",
                       "RXGATE_METRICS_PORT", "RXGATE_GROUP"}


def worker_env_names() -> set[str]:
    """Every RXGATE_* variable the worker reads: the table in the worker's config module, plus
    the five the issue fixes (in case that module is not there yet)."""
    names = set(REQUIRED_WORKER_ENV)
    for config in (WORKER_CONFIG, WORKER_CONFIG.parents[1] / "kafka_security.py"):
        if config.exists():
            names |= set(re.findall(r"^\|\s*`(RXGATE_[A-Z0-9_]+)`\s*\|", config.read_text(),
                                    re.MULTILINE))
    return names


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def load_dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


def alert_rules() -> list[dict]:
    return [r for g in load_yaml(ALERTS_FILE)["groups"] for r in g["rules"] if "alert" in r]


def dashboard_targets(dashboard: dict) -> list[tuple[str, dict]]:
    """(panel title, target) for every query target, rows' nested panels included."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t))
            walk(p.get("panels", []))

    walk(dashboard["panels"])
    return out


# ------------------------------------------------------------------ PromQL scanning

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "offset", "bool", "inf", "nan", "atan2", "start", "end"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'[^\']*\')\s*')


def _blank_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (by bare name or by {__name__="..."})."""
    names = {m for _, op, m in label_matchers(expr) if _ == "__name__" and op == "="}
    s = _blank_strings(expr)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = _GROUPING.sub(" ", s)
    for name, call in _IDENT.findall(s):
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def label_matchers(expr: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) of every selector matcher."""
    out = []
    # matchers are found on the raw text: blank nothing, but skip braces inside strings
    stripped = _STRING.sub(lambda m: m.group(0).replace("{", "(").replace("}", ")"), expr)
    for m in _MATCHERS.finditer(stripped):
        body_start = m.start(1)
        body = expr[body_start:body_start + len(m.group(1))]
        for part in _split_matchers(body):
            mm = _MATCHER.fullmatch(part)
            if not mm:
                raise ValueError(f"cannot read label matcher {part!r} in {expr!r}")
            out.append((mm.group(1), mm.group(2), mm.group(3)[1:-1]))
    return out


def _split_matchers(body: str) -> list[str]:
    parts, cur, quote = [], "", None
    for ch in body:
        if quote:
            cur += ch
            if ch == quote and not cur.endswith("\\" + quote):
                quote = None
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p for p in parts if p.strip()]


def grouping_labels(expr: str) -> set[str]:
    """Label names in by/without/on/ignoring/group_left/group_right clauses."""
    s = _blank_strings(expr)
    out = set()
    for _, body in _GROUPING.findall(s):
        out |= {x.strip() for x in body.split(",") if x.strip()}
    return out


def template_labels(text: str) -> set[str]:
    """Label names a Grafana legend ({{name}}) or alert template ($labels.name) refers to."""
    return (set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", text))
            | set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text)))
