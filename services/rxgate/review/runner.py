"""`rxgate review` as a child process, for the demo and the tests (like stream/runner.py).

    with ReviewProcess(broker_url, db_url, log_path=...) as review:
        review.wait_ready()      # /healthz: store migrated, Kafka reached
        review.url               # http://127.0.0.1:PORT
        review.kill()            # SIGKILL, as a crash would
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from ..broker import HOST, die_with_parent, free_port


class ReviewFailed(RuntimeError):
    """The service exited or did not become ready; the message ends with its log's tail."""


class ReviewProcess:
    def __init__(self, broker_url: str, db_url: str, *, log_path: str | os.PathLike,
                 port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.log_path = Path(log_path)
        self.env = {**os.environ, "RXGATE_BROKER": broker_url, "RXGATE_REVIEW_DB": db_url,
                    "RXGATE_REVIEW_HOST": HOST, "RXGATE_REVIEW_PORT": str(self.port),
                    **(env or {})}
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> "ReviewProcess":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rxgate.cli", "review"], env=self.env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent)
        return self

    def ready(self) -> bool:
        """The store answers and both Kafka clients (ingest, publisher) are connected."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as reply:
                return reply.status == 200 and json.loads(reply.read())["kafka"] == "connected"
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise ReviewFailed(f"rxgate review exited with status {code}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ReviewFailed(f"rxgate review was not ready within {timeout:.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close()

    def stop(self, timeout: float = 15.0) -> int | None:
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

    def __enter__(self) -> "ReviewProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
