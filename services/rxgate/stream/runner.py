"""`rxgate worker` as a child process, for the demo and the tests.

    with WorkerProcess(broker_url, group="rxgate-demo", log_path=...) as worker:
        worker.wait_healthy()          # /healthz answers 200: partitions assigned, state recovered
        worker.metrics_url             # http://127.0.0.1:PORT/metrics
        worker.kill()                  # SIGKILL, as a crash would
        worker.start()                 # a new process, same settings

The process lifecycle (own session, dies with its parent, stop in order) is
`rxgate.child.ChildProcess`'s. Unless `env` names an
RXGATE_DATA_DIR, each start gets a fresh data directory beside the log, so a killed worker
leaves nothing outside the caller's directory.
"""
from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request

from ..broker import HOST, free_port
from ..child import ChildProcess


class WorkerFailed(RuntimeError):
    """The worker exited or did not become healthy; the message ends with its log's tail."""


class WorkerProcess(ChildProcess):
    FAILED = WorkerFailed

    def __init__(self, broker_url: str, *, group: str = "rxgate-validator", partitions: int = 4,
                 log_path: str | os.PathLike, metrics_port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(log_path)
        self.metrics_port = metrics_port or free_port()
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
        self._spawn("worker", env)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float = 120.0) -> None:
        self._wait_until(self.healthy, timeout, "the worker's /healthz")

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as reply:
            return reply.read().decode("utf-8")
