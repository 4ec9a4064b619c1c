"""A child process with a log file: what the test and demo runners of each shell share.

`stream.runner.WorkerProcess` (`rxgate worker`) and `review.runner.ReviewProcess`
(`rxgate review`) start their command with `_spawn`, wait with `_wait_until`, and are stopped
in order (SIGTERM, then SIGKILL after a timeout) or killed as a crash would. The child runs in
its own session (Ctrl-C in a terminal reaches the parent only, which then stops the child in
order) and, on Linux, dies with its parent.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable

from .broker import die_with_parent


class ChildProcess:
    STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL in stop()
    FAILED: type[RuntimeError] = RuntimeError  # raised by _wait_until, with the log's tail

    def __init__(self, log_path: str | os.PathLike) -> None:
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def _spawn(self, command: str, env: dict[str, str]) -> None:
        """`rxgate COMMAND` with this environment, its output appended to the log."""
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rxgate.cli", command], env=env,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent)

    def _wait_until(self, check: Callable[[], bool], timeout: float, what: str,
                    poll: float = 0.2) -> None:
        """Until check() holds; FAILED when the child exits or `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while not check():
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise self.FAILED(f"{what}: the process exited with status {code}\n"
                                  f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise self.FAILED(f"{what}: not within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(poll)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no goodbye, no commit, no flush -- a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close()

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM and wait (the child stops in order); SIGKILL after `timeout`."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.STOP_TIMEOUT if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close()
        return proc.returncode if proc is not None else None

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def start(self) -> "ChildProcess":
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
