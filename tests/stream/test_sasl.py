"""SASL against a real broker: Tansu with `--authentication` (SCRAM), also behind TLS.

This Tansu build keeps users in memory and cannot create one while authentication is required,
so no login can succeed here: the tests check that every way of getting SASL wrong stops
start-up naming the setting, over the real SASL handshake. (The settings that reach the
clients when it is right are checked in tests/test_kafka_security.py.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rxgate.broker import HOST, die_with_parent, free_port, port_is_free, tansu_binary

from .proxy import Proxy, make_pki

pytestmark = pytest.mark.broker


@pytest.fixture
def sasl_broker(tmp_path):
    """The port of a Tansu broker that requires SASL authentication."""
    port = free_port()
    listener = f"tcp://{HOST}:{port}"
    with open(tmp_path / "tansu.log", "wb") as log:
        process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", listener, "--advertised-listener-url",
             listener, "--authentication"], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 30
        while port_is_free(port):
            assert process.poll() is None, (tmp_path / "tansu.log").read_text()
            assert time.monotonic() < deadline, "Tansu did not listen"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def run_worker(env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", "worker"],
                          env={**os.environ, "RXGATE_METRICS_PORT": "0", **env},
                          capture_output=True, text=True, timeout=timeout)


def test_refused_scram_credentials_stop_start_up_naming_them(sasl_broker, tmp_path):
    password = tmp_path / "password"
    password.write_text("not-the-password\n")
    done = run_worker({"RXGATE_BROKER": f"kafka://{HOST}:{sasl_broker}",
                       "RXGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                       "RXGATE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                       "RXGATE_KAFKA_SASL_USERNAME": "rxgate",
                       "RXGATE_KAFKA_SASL_PASSWORD_FILE": str(password)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refused RXGATE_KAFKA_SASL_USERNAME=rxgate with the password from " \
           "RXGATE_KAFKA_SASL_PASSWORD_FILE" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout


def test_sasl_ssl_through_tls_reaches_the_scram_exchange(sasl_broker, tmp_path):
    pki = make_pki(tmp_path / "pki")
    with Proxy(free_port(), sasl_broker, pki=pki) as proxy:
        done = run_worker({"RXGATE_BROKER": f"kafka://{HOST}:{proxy.port}",
                           "RXGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                           "RXGATE_KAFKA_SSL_CAFILE": str(pki.ca),
                           "RXGATE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                           "RXGATE_KAFKA_SASL_USERNAME": "rxgate",
                           "RXGATE_KAFKA_SASL_PASSWORD": "wrong"})
    assert done.returncode == 2, done.stderr[-2000:]
    # TLS passed (no CA complaint); the SASL exchange itself refused the user
    assert "RXGATE_KAFKA_SSL_CAFILE" not in done.stderr
    assert "refused RXGATE_KAFKA_SASL_USERNAME=rxgate" in done.stderr


def test_plaintext_against_a_broker_requiring_sasl_says_so(sasl_broker):
    done = run_worker({"RXGATE_BROKER": f"kafka://{HOST}:{sasl_broker}"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "RXGATE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in done.stderr
    assert "require SASL" in done.stderr


def test_sasl_against_a_broker_without_it_names_the_mechanism(tmp_path):
    from rxgate.broker import EmbeddedBroker

    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        done = run_worker({"RXGATE_BROKER": broker.url,
                           "RXGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                           "RXGATE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                           "RXGATE_KAFKA_SASL_USERNAME": "rxgate",
                           "RXGATE_KAFKA_SASL_PASSWORD": "x"})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "RXGATE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512: the broker" in done.stderr
    assert "does not offer it" in done.stderr
