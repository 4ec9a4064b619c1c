"""`rxgate review` as a child process, for the demo and the tests (like stream/runner.py).

    with ReviewProcess(broker_url, db_url, log_path=...) as review:
        review.wait_ready()      # /healthz: store migrated, Kafka reached
        review.url               # http://127.0.0.1:PORT
        review.kill()            # SIGKILL, as a crash would
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from ..broker import HOST, free_port
from ..child import ChildProcess


class ReviewFailed(RuntimeError):
    """The service exited or did not become ready; the message ends with its log's tail."""


class ReviewProcess(ChildProcess):
    FAILED = ReviewFailed
    STOP_TIMEOUT = 15.0

    def __init__(self, broker_url: str, db_url: str, *, log_path: str | os.PathLike,
                 port: int | None = None, env: dict[str, str] | None = None) -> None:
        super().__init__(log_path)
        self.port = port or free_port()
        self.env = {**os.environ, "RXGATE_BROKER": broker_url, "RXGATE_REVIEW_DB": db_url,
                    "RXGATE_REVIEW_HOST": HOST, "RXGATE_REVIEW_PORT": str(self.port),
                    **(env or {})}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "ReviewProcess":
        self._spawn("review", self.env)
        return self

    def ready(self) -> bool:
        """The store answers and both Kafka clients (ingest, publisher) are connected."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as reply:
                return reply.status == 200 and json.loads(reply.read())["kafka"] == "connected"
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        self._wait_until(self.ready, timeout, "rxgate review's /healthz", poll=0.1)
