"""`rxgate worker` as a child process, for the demo and the tests.

    with WorkerProcess(broker_url, group="rxgate-demo", log_path=...) as worker:
        worker.wait_healthy()          # /healthz answers 200: partitions assigned, state recovered
        worker.metrics_url             # http://127.0.0.1:PORT/metrics
        worker.kill()                  # SIGKILL, as a crash would
        worker.start()                 # a new process, same settings

The child runs in its own session (Ctrl-C in the terminal reaches the parent only, which then
stops the worker in order) and, on Linux, dies with its parent. Unless `env` names an
RXGATE_DATA_DIR, each start gets a fresh data directory beside the log, so a killed worker
leaves nothing outside the caller's directory.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from ..broker import HOST, die_with_parent, free_port


class WorkerFailed(RuntimeError):
    """The worker exited or did not become healthy; the message ends with its log's tail."""


class WorkerProcess:
    def __init__(self, broker_url: str, *, group: str = "rxgate-validator", partitions: int = 4,
                 log_path: str | os.PathLike, metrics_port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.metrics_port = metrics_port or free_port()
        self.log_path = Path(log_path)
        self.env = {
            **os.environ,
            "RXGATE_BROKER": broker_url,
            "RXGATE_GROUP": group,
            "RXGATE_PARTITIONS": str(partitions),
            "RXGATE_METRICS_PORT": str(self.metrics_port),
            "RXGATE_METRICS_HOST": HOST,
            "RXGATE_SESSION_TIMEOUT": "6",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    @property
    def health_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/healthz"

    def start(self) -> "WorkerProcess":
        env = dict(self.env)
        if not env.get("RXGATE_DATA_DIR"):
            env["RXGATE_DATA_DIR"] = tempfile.mkdtemp(prefix="worker-data-",
                                                      dir=self.log_path.parent)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rxgate.cli", "worker"], env=env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise WorkerFailed(f"the worker exited with status {code}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise WorkerFailed(f"the worker was not healthy within {timeout:.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.2)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as reply:
            return reply.read().decode("utf-8")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no goodbye, no commit, no flush -- a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (faust stops in order); SIGKILL after `timeout`."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close()
        return proc.returncode if proc is not None else None

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "WorkerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
