"""Prometheus metrics of the streaming validator, in their own registry, and the HTTP endpoint.

Names and labels are the wire contract's (Metrics section); dashboards key on them. No label
ever carries a patient or order id: rule ids, categories, severities and kinds only.

    /metrics   Prometheus text
    /livez     200 while the event loop runs (503: restart me)
    /readyz    200 when consuming, the broker reachable, decisions progressing (or nothing to
               do) and no record stalled; else 503 with the reasons, one a line (health.py)
    /healthz   the same as /readyz, for existing probes

The server runs on a daemon thread, so a scrape never waits for the event loop.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .. import package_version
from ..contract import Decision, DeadLetter
from ..decide import CHECKS_FAILED_RULE, NO_MONOGRAPH_RULE
from .health import Health

log = logging.getLogger(__name__)

# read-to-send on a loopback broker is ~1 ms; a slow broker or a long rebalance is seconds
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# the checks of one order on one core: a fraction of a millisecond to a few
CHECK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 1.0)

# (rule id, severity) of the data findings alerts fire on (decide.py gives them these severities)
ALERTED_FINDINGS = ((CHECKS_FAILED_RULE, "major"), (NO_MONOGRAPH_RULE, "warning"))


class Metrics:
    def __init__(self, stall_seconds: float = 30.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Counter("rxgate_orders", "Decisions published, by outcome",
                              ["outcome"], registry=r)
        self.findings = Counter("rxgate_findings", "Findings in published decisions",
                                ["category", "severity", "rule_id"], registry=r)
        self.invalid = Counter("rxgate_invalid", "Dead letters published, by error kind",
                               ["kind"], registry=r)
        self.duplicates = Counter("rxgate_duplicates",
                                  "Order events whose event_id was already seen", registry=r)
        self.decision_seconds = Histogram(
            "rxgate_decision_seconds", "Time from reading an order event to sending its decision",
            buckets=DECISION_BUCKETS, registry=r)
        self.knowledge_info = Gauge("rxgate_knowledge_info",
                                    "The drug knowledge version in use (value 1)", ["version"],
                                    registry=r)
        # beyond the contract
        self.check_seconds = Histogram(
            "rxgate_check_seconds",
            "Time the checks of one order event took (parse, rules, history update), without "
            "its wait in a batch or for the broker (rxgate_decision_seconds includes those)",
            buckets=CHECK_BUCKETS, registry=r)
        self.redelivered = Counter(
            "rxgate_redelivered",
            "Outputs not published again because a read-back showed them already published "
            "(input re-read after a restart or rebalance)", registry=r)
        self.publish_retries = Counter(
            "rxgate_publish_retries", "Publishing attempts that failed and were retried",
            registry=r)
        self.knowledge_refused = Counter(
            "rxgate_knowledge_refused",
            "New contents of RXGATE_KNOWLEDGE_DIR that did not load (the version in use keeps "
            "serving)", registry=r)
        self.offpartition = Counter(
            "rxgate_offpartition",
            "Order events that arrived on another partition of rx.orders.v1 than their "
            "patient's canonical (murmur2) one, forwarded there through the repartition topic "
            "(a producer not using Kafka's default partitioner)", registry=r)
        self.processing_errors = Counter(
            "rxgate_processing_errors",
            "Input records skipped because validating them raised an error (a bug: alert)",
            registry=r)
        self.stalls = Counter(
            "rxgate_stalls",
            "Records whose checks ran longer than RXGATE_STALL_SECONDS (logged with partition "
            "and offset)", registry=r)
        self.consumer_lag = Gauge(
            "rxgate_consumer_lag",
            "Input records not yet handled, per input partition assigned to this worker "
            "(end offset minus the worker's position)", ["topic", "partition"], registry=r)
        self.build_info = Gauge("rxgate_build_info", "The rxgate version running (value 1)",
                                ["version"], registry=r)
        self.build_info.labels(package_version()).set(1)
        # Series the alerts watch exist at 0 from start-up: a counter first exported at 1 has
        # no earlier sample, so increase() over it is 0 and the first event would not alert.
        for outcome in ("approved", "flagged"):
            self.orders.labels(outcome)
        for kind in ("encoding", "json", "schema", "too_large"):
            self.invalid.labels(kind)
        for rule_id, severity in ALERTED_FINDINGS:
            self.findings.labels("data", severity, rule_id)
        # what each output counts on (published() runs for every output)
        self._orders, self._findings, self._invalid = (
            _Series(self.orders), _Series(self.findings), _Series(self.invalid))
        self.healthy = threading.Event()  # consuming: partitions assigned, state recovered
        self.health = Health(self.healthy, stall_seconds)

    def set_knowledge_version(self, version: str) -> None:
        self.knowledge_info.clear()
        self.knowledge_info.labels(version).set(1)

    def published(self, output: Decision | DeadLetter) -> None:
        if isinstance(output, Decision):
            self._orders(output.outcome).inc()
            for f in output.findings:
                self._findings(f.category, f.severity, f.rule_id).inc()
        else:
            self._invalid(output.error.kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Series:
    """metric.labels(*values), kept per label values: the child prometheus_client would look up
    again (under its lock) for every output. Nothing removes a series of these metrics, and
    their label values are few (outcomes, error kinds, rule ids with category and severity)."""

    def __init__(self, metric) -> None:
        self.metric = metric
        self.known: dict[tuple[str, ...], object] = {}

    def __call__(self, *values: str):
        child = self.known.get(values)
        if child is None:
            child = self.known[values] = self.metric.labels(*values)
        return child


class MetricsServer:
    """/metrics, /livez, /readyz and /healthz on a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        handler = _handler_for(metrics)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="rxgate-metrics",
                                       daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> "MetricsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler_for(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/livez":
                live, why = metrics.health.live()
                self._reply(200 if live else 503, f"{why}\n".encode())
            elif path in ("/readyz", "/healthz"):
                ready, reasons = metrics.health.ready()
                body = "ok\n" if ready else "".join(f"{r}\n" for r in reasons)
                self._reply(200 if ready else 503, body.encode())
            else:
                self._reply(404, b"not found: try /metrics, /livez or /readyz\n")

        def _reply(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
