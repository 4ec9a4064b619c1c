"""The worker over real TLS: socat terminates TLS in front of Tansu, with a CA the test makes.

Tansu advertises the proxy's port, so every client -- the worker's faust consumer and
producer, its admin, read-back, offsets and health clients, and this test's own -- must come
through TLS: a client left on PLAINTEXT could not reach the broker at all.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rxgate.broker import EmbeddedBroker, free_port
from rxgate.kafka_security import KafkaSecurity
from rxgate.stream.runner import WorkerProcess

from .kafka import decisions_by_event, publish, read_outputs
from .orders import T0, new_patient_id, placed, wire
from .proxy import Proxy, make_pki

pytestmark = pytest.mark.broker


@pytest.fixture
def tls_broker(tmp_path):
    """(bootstrap of the TLS proxy, the PKI)."""
    pki = make_pki(tmp_path / "pki")
    proxy_port = free_port()
    with EmbeddedBroker(log_path=tmp_path / "tansu.log", advertised_port=proxy_port) as broker:
        with Proxy(proxy_port, broker.port, pki=pki, log_path=tmp_path / "socat.log"):
            yield f"127.0.0.1:{proxy_port}", pki


def tls_env(pki, cafile=None) -> dict[str, str]:
    return {"RXGATE_KAFKA_SECURITY_PROTOCOL": "SSL",
            "RXGATE_KAFKA_SSL_CAFILE": str(cafile or pki.ca)}


def run_worker(env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", "worker"],
                          env={**os.environ, "RXGATE_METRICS_PORT": "0", **env},
                          capture_output=True, text=True, timeout=timeout)


def test_the_worker_decides_orders_through_tls(tls_broker, tmp_path):
    bootstrap, pki = tls_broker
    security = KafkaSecurity.from_env(tls_env(pki)).client_kwargs()
    with WorkerProcess(f"kafka://{bootstrap}", group="rxgate-tls", log_path=tmp_path / "w.log",
                       env=tls_env(pki)) as worker:
        worker.wait_healthy(180)
        events = [placed(new_patient_id(), f"O-{i}", T0) for i in range(8)]
        publish(bootstrap, [wire(e) for e in events], security=security)
        wanted = {e["event_id"] for e in events}
        outs = read_outputs(bootstrap, security=security, timeout=120,
                            until=lambda outs: wanted <= set(decisions_by_event(outs)))
        found = decisions_by_event(outs)
        assert all(len(found[e]) == 1 for e in wanted)
        assert "(SSL, CA " in worker.log_tail(400)  # the banner says how it connects
        assert worker.stop() == 0


def test_a_wrong_ca_stops_start_up_naming_the_setting(tls_broker):
    bootstrap, pki = tls_broker
    done = run_worker({"RXGATE_BROKER": f"kafka://{bootstrap}",
                       **tls_env(pki, cafile=pki.stranger_ca)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"RXGATE_KAFKA_SSL_CAFILE={pki.stranger_ca}" in done.stderr
    assert "certificate verify failed" in done.stderr
    assert "Traceback" not in done.stderr


def test_plaintext_against_a_tls_broker_stops_start_up_naming_the_protocol(tls_broker):
    bootstrap, _ = tls_broker
    done = run_worker({"RXGATE_BROKER": f"kafka://{bootstrap}"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "RXGATE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in done.stderr
    assert "Traceback" not in done.stderr


def test_tls_against_a_plaintext_broker_stops_start_up_naming_the_protocol(tmp_path):
    pki = make_pki(tmp_path / "pki")
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        done = run_worker({"RXGATE_BROKER": broker.url, **tls_env(pki)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "RXGATE_KAFKA_SECURITY_PROTOCOL=SSL" in done.stderr
    assert "TLS handshake" in done.stderr
