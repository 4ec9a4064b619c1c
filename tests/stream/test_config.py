"""Start-up refusals: a bad setting is named, a taken port is named, nothing half-starts."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rxgate.broker import EmbeddedBroker, BrokerError
from rxgate.stream.config import ConfigError, Settings

pytestmark = pytest.mark.broker


def run_worker(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", "worker"],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name, value", [
    ("RXGATE_BROKER", "http://127.0.0.1:9092"),
    ("RXGATE_BROKER", "kafka://nohost"),
    ("RXGATE_PARTITIONS", "zero"),
    ("RXGATE_PARTITIONS", "0"),
    ("RXGATE_METRICS_PORT", "70000"),
    ("RXGATE_KNOWLEDGE_DIR", "/nonexistent/knowledge"),
    ("RXGATE_GROUP", "spaces are not allowed"),
    ("RXGATE_SEEN_RETENTION_DAYS", "-1"),
    ("RXGATE_SESSION_TIMEOUT", "1"),
    ("RXGATE_LOG_LEVEL", "chatty"),
    ("RXGATE_LOG_FORMAT", "xml"),
    ("RXGATE_METRICS_HOST", "banana"),
    ("RXGATE_METRICS_HOST", "999.1.1.1"),
    ("RXGATE_DATA_DIR", __file__),  # a file, not a directory
    ("RXGATE_DATA_DIR", __file__ + "/data"),  # under a file: cannot be created
    ("RXGATE_STALL_SECONDS", "0"),
    ("RXGATE_BATCH_MAX", "0"),
    ("RXGATE_BATCH_WAIT_MS", "-1"),
    ("RXGATE_BATCH_WAIT_MS", "soon"),
    ("RXGATE_FETCH_WAIT_MS", "0"),
    ("RXGATE_FETCH_WAIT_MS", "soon"),
    ("RXGATE_KAFKA_SECURITY_PROTOCOL", "TLS"),
    ("RXGATE_KAFKA_SSL_CAFILE", "/etc/hostname"),  # set, but PLAINTEXT uses no TLS
])
def test_a_bad_setting_stops_start_up_naming_it(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
    done = run_worker({name: value})
    assert done.returncode == 2
    assert name in done.stderr
    assert "Traceback" not in done.stderr
    others = set(re.findall(r"RXGATE_[A-Z_]+", done.stderr)) - {name}
    if name.startswith("RXGATE_KAFKA_"):  # a TLS/SASL file only makes sense with a protocol
        others -= {"RXGATE_KAFKA_SECURITY_PROTOCOL"}
    assert not others, f"the message blames {others} for a bad {name}"


def test_a_bad_setting_in_json_log_format_is_one_json_line():
    done = run_worker({"RXGATE_LOG_FORMAT": "json", "RXGATE_PARTITIONS": "zero"})
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR" and "RXGATE_PARTITIONS" in record["message"]


def test_a_missing_data_dir_is_accepted_when_it_can_be_created(tmp_path):
    s = Settings.from_env({"RXGATE_DATA_DIR": str(tmp_path / "a" / "b")})
    assert s.data_dir == str(tmp_path / "a" / "b")


def test_defaults_are_the_documented_ones():
    s = Settings.from_env({})
    assert (s.broker, s.partitions, s.metrics_port, s.group) == (
        "kafka://127.0.0.1:9092", 4, 9108, "rxgate-validator")
    assert s.bootstrap_servers == ["127.0.0.1:9092"]
    assert s.changelog_topic == "rxgate-validator-patient-history-changelog"


def test_topics_with_another_partition_count_stop_start_up(broker, worker):
    done = run_worker({"RXGATE_BROKER": broker.url, "RXGATE_PARTITIONS": "3",
                       "RXGATE_METRICS_PORT": "0", "RXGATE_GROUP": "rxgate-three"})
    assert done.returncode == 2
    assert "RXGATE_PARTITIONS=3" in done.stderr and "rx.orders.v1 has 4" in done.stderr
    # and it created nothing on the way out: another group's changelog is not there
    retry = run_worker({"RXGATE_BROKER": broker.url, "RXGATE_PARTITIONS": "3",
                        "RXGATE_METRICS_PORT": "0", "RXGATE_GROUP": "rxgate-three"})
    assert "rxgate-three-patient-history-changelog has" not in retry.stderr


def test_a_taken_metrics_port_stops_start_up(broker, worker):
    done = run_worker({"RXGATE_BROKER": broker.url, "RXGATE_METRICS_PORT":
                       str(worker.metrics_port), "RXGATE_METRICS_HOST": "127.0.0.1",
                       "RXGATE_GROUP": "rxgate-port-taken"})
    assert done.returncode == 2
    assert f"RXGATE_METRICS_PORT={worker.metrics_port}" in done.stderr


def test_the_broker_refuses_a_taken_port(broker):
    with pytest.raises(BrokerError, match="already in use"):
        EmbeddedBroker(port=broker.port).start()
    done = subprocess.run([sys.executable, "-m", "rxgate.cli", "broker", "--port",
                           str(broker.port)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"port {broker.port}" in done.stderr and "already in use" in done.stderr


def test_the_demo_runs_once_and_exits_cleanly():
    done = subprocess.run([sys.executable, "-m", "rxgate.cli", "demo", "--once"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "5 approved, 5 flagged for pharmacist review, 1 dead letter(s)" in out
    assert "CONTRAINDICATED" not in out and "contraindicated" in out  # P-1003, lactating
    assert "already decided; no second decision" in out
    assert "/metrics" in out and "worker and broker stopped" in out
    # a path it prints still exists after it exits (the worker's log is named only when kept)
    for path in re.findall(r"(/[^\s:;,()]+\.log)\b", out + done.stderr):
        assert Path(path).exists(), f"the demo printed {path}, which is gone"


def test_a_metrics_host_not_of_this_machine_is_blamed_not_the_port(broker):
    done = run_worker({"RXGATE_BROKER": broker.url, "RXGATE_METRICS_HOST": "192.0.2.1",
                       "RXGATE_GROUP": "rxgate-host-not-here"})  # 192.0.2.0/24: TEST-NET-1
    assert done.returncode == 2
    assert "RXGATE_METRICS_HOST=192.0.2.1" in done.stderr
    assert "RXGATE_METRICS_PORT" not in done.stderr
