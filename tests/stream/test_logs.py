"""The worker's log: RXGATE_LOG_FORMAT=json gives one JSON object per line (rxgate's records,
faust's and aiokafka's alike), and a log file never holds terminal escape codes, even when
faust thinks it writes to a terminal (standard output a terminal, standard error a file)."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

import pytest

from rxgate import package_version
from rxgate.broker import HOST, die_with_parent, free_port
from rxgate.stream.runner import WorkerProcess

from .kafka import publish, read_outputs
from .orders import T0, new_patient_id, placed, wire

pytestmark = pytest.mark.broker

ESC = b"\x1b"


def test_json_logs_one_object_per_line_from_rxgate_faust_and_aiokafka(fresh_broker, tmp_path):
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(fresh_broker.url, group="rxgate-json-logs", log_path=log_path,
                           env={"RXGATE_LOG_FORMAT": "json", "RXGATE_LOG_LEVEL": "info"})
    with worker:
        worker.wait_healthy()
        pid = new_patient_id()
        event = placed(pid, "O-json-log", T0)
        publish(fresh_broker.bootstrap, [wire(event), (pid.encode(), b"{not json")])
        read_outputs(fresh_broker.bootstrap, until=lambda outs: len(outs) >= 2)
        assert "rxgate_build_info{version=" in worker.metrics_text()
    assert worker.process.returncode == 0, worker.log_tail()

    raw = log_path.read_bytes()
    assert raw, "the worker logged nothing"
    assert ESC not in raw
    records = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {n} of the worker's output is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "logger", "message"} <= set(record), line
        assert "\x1b" not in record["message"], line  # escaped by JSON, still a colour code
        records.append(record)
    loggers = {r["logger"].split(".")[0] for r in records}
    assert {"rxgate", "aiokafka"} <= loggers, loggers
    assert loggers & {"faust", "mode"}, loggers
    assert any("consuming rx.orders.v1" in r["message"] for r in records)
    # the start-up line names the version; no patient id at INFO
    assert any(r["logger"] == "rxgate.worker" and package_version() in r["message"]
               for r in records)
    assert not [r for r in records if pid in r["message"] and r["level"] == "INFO"]


def test_text_logs_have_no_colour_when_stdout_is_a_terminal(fresh_broker, tmp_path):
    """`rxgate worker 2>worker.log` typed in a terminal: faust would colour its records
    (it looks at standard output); the file must hold plain text."""
    log_path = tmp_path / "worker.log"
    port = free_port()
    env = {**os.environ, "RXGATE_BROKER": fresh_broker.url, "RXGATE_GROUP": "rxgate-tty",
           "RXGATE_METRICS_PORT": str(port), "RXGATE_METRICS_HOST": HOST,
           "RXGATE_DATA_DIR": str(tmp_path / "not" / "yet" / "there"),  # created at start
           "RXGATE_LOG_LEVEL": "info"}
    env.pop("NO_COLOR", None)
    controller, terminal = pty.openpty()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rxgate.cli", "worker"], env=env,
                                stdin=subprocess.DEVNULL, stdout=terminal, stderr=log,
                                start_new_session=True, preexec_fn=die_with_parent)
    os.close(terminal)
    try:
        deadline = time.monotonic() + 120
        while b"consuming rx.orders.v1" not in log_path.read_bytes():
            assert proc.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
        os.close(controller)
    raw = log_path.read_bytes()
    assert (tmp_path / "not" / "yet" / "there").is_dir()
    assert b" INFO " in raw and b"aiokafka" in raw
    assert b"Highwater" in raw  # faust's table, drawn for a terminal: in plain ASCII here
    assert ESC not in raw, [ln for ln in raw.splitlines() if ESC in ln][:5]
