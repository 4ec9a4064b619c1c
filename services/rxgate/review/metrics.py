"""The review service's Prometheus metrics (served on its own port, at /metrics).

Queue depth and age are read from the store at scrape time, so they are right after a restart
and across several instances sharing one store. No label carries a patient, order, decision or
user id: severities, actions, standard reason codes and topics only.
"""
from __future__ import annotations

import datetime as dt
import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..contract import SEVERITY_ORDER
from .store import ACTIONS, REASONS, Store, reason_code_of

log = logging.getLogger(__name__)

# a pharmacist acts within minutes to a working day
ACTION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600)
FLAGGED_SEVERITIES = SEVERITY_ORDER[1:]


class _QueueCollector:
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):
        depth = GaugeMetricFamily("rxgate_review_queue_depth",
                                  "Flagged decisions waiting for a pharmacist, by severity",
                                  labels=["severity"])
        oldest = GaugeMetricFamily("rxgate_review_oldest_pending_seconds",
                                   "How long the longest-waiting flagged decision has waited "
                                   "(0 when the queue is empty)")
        unsent = GaugeMetricFamily("rxgate_review_outbox_unsent",
                                   "Stored actions' messages not yet acknowledged by Kafka")
        up = GaugeMetricFamily("rxgate_review_store_up", "1 when the store answered this scrape")
        try:
            counts, first = self.store.pending_counts()
            backlog = self.store.outbox_backlog()
        except Exception:  # a scrape must answer even when the store does not
            log.warning("the store did not answer the metrics scrape", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        for severity in FLAGGED_SEVERITIES:
            depth.add_metric([severity], counts.get(severity, 0))
        age = 0.0
        if first is not None:
            age = max(0.0, (self.store.clock() - first).total_seconds())
        oldest.add_metric([], age)
        unsent.add_metric([], backlog)
        up.add_metric([], 1)
        yield from (depth, oldest, unsent, up)


class ReviewMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.actions = Counter("rxgate_review_actions", "Pharmacist actions, by kind and reason",
                               ["action", "reason"], registry=r)
        self.decision_to_action = Histogram(
            "rxgate_review_decision_to_action_seconds",
            "Time from the decision (decided_at) to the pharmacist's action",
            buckets=ACTION_BUCKETS, registry=r)
        self.published = Counter("rxgate_review_published",
                                 "Messages published from the outbox and acknowledged", ["topic"],
                                 registry=r)
        self.readback_found = Counter(
            "rxgate_review_readback_found",
            "Outbox messages found already on their topic by the read-back (not sent again)",
            registry=r)
        self.publish_failures = Counter("rxgate_review_publish_failures",
                                        "Outbox publishing attempts that failed (retried)",
                                        registry=r)
        self.ingested = Counter("rxgate_review_decisions_ingested",
                                "Decisions read into the store, by what became of them",
                                ["result"], registry=r)
        self.conflicts = Counter("rxgate_review_conflicts",
                                 "Actions refused because someone acted first (409)", registry=r)
        self.login_failures = Counter("rxgate_review_login_failures",
                                      "Refused sign-ins (wrong password or rate-limited)",
                                      registry=r)
        r.register(_QueueCollector(store))
        for action in ACTIONS:
            for code in (["none"] if action == "approve" else list(REASONS[action])):
                self.actions.labels(action, code)
        for result in ("decisions", "redecisions", "duplicates", "ignored"):
            self.ingested.labels(result)

    def action_taken(self, action: str, reason_code: str | None, decided_at: dt.datetime,
                     acted_at: dt.datetime) -> None:
        self.actions.labels(action, reason_code_of(reason_code)).inc()
        self.decision_to_action.observe(max(0.0, (acted_at - decided_at).total_seconds()))
