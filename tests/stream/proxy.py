"""A TCP or TLS-terminating proxy (socat) in front of the embedded broker, and a test PKI.

    pki = make_pki(tmp_path)                        # CA, server cert for 127.0.0.1, a stranger CA
    with Proxy(listen_port, broker.port, pki=pki):  # TLS on listen_port -> plain TCP to Tansu
        ...

Tansu advertises the proxy's port (EmbeddedBroker(advertised_port=...)), so clients that
connect to the addresses in metadata come through the proxy too. Stopping the proxy (and
starting it again on the same port) is how the tests take the broker away and bring it back
without losing Tansu's in-memory topics.

socat comes from Debian's package `socat` (.ci/run installs it), the certificates from the
`openssl` command line; both are made in the test's own temporary directory.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rxgate.broker import HOST, die_with_parent, port_is_free


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the broker's certificate is signed by
    server_cert: Path
    server_key: Path
    stranger_ca: Path  # a CA that signed nothing here: verification against it fails


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key.name, "-out", cert.name, "-days", "2",
             "-subj", f"/CN=rxgate test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca(directory, "ca")
    stranger, _ = _make_ca(directory, "stranger-ca")
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
             cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", ca.name, "-CAkey", ca_key.name,
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
             cwd=directory)
    return Pki(ca, directory / "server.pem", directory / "server.key", stranger)


class Proxy:
    """socat listening on `port` (TLS when `pki` is given), forwarding to the broker."""

    def __init__(self, port: int, target_port: int, *, pki: Pki | None = None,
                 log_path: Path | None = None) -> None:
        if shutil.which("socat") is None or shutil.which("openssl") is None:
            if os.environ.get("CI"):  # CI must run these: .ci/run installs both
                raise RuntimeError("socat or openssl is missing: apt-get install socat openssl")
            pytest.skip("socat/openssl not installed (apt-get install socat openssl; .ci/run "
                        "does); required when CI is set")
        self.port = port
        self.target_port = target_port
        self.pki = pki
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15.0) -> "Proxy":
        if self.pki is not None:
            listen = (f"OPENSSL-LISTEN:{self.port},bind={HOST},reuseaddr,fork,"
                      f"cert={self.pki.server_cert},key={self.pki.server_key},verify=0")
        else:
            listen = f"TCP-LISTEN:{self.port},bind={HOST},reuseaddr,fork"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                ["socat", listen, f"TCP:{HOST}:{self.target_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=die_with_parent)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while port_is_free(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"socat exited with status {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"socat did not listen on {self.port} in {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stops listening and drops every connection through it (socat's children too)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            import os
            import signal

            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the forked children too
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
