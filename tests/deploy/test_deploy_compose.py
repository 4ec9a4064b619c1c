"""docker-compose.yml and the Dockerfile, checked by parsing (Docker does not run here)."""
from __future__ import annotations

import base64
import re
import shlex

import pytest

from deploy_support import (
    COMPOSE_FILE, DOCKERFILE, PROMETHEUS_CONFIG, REQUIRED_WORKER_ENV, ROOT, load_yaml,
    worker_env_names,
)

COMPOSE = load_yaml(COMPOSE_FILE)
SERVICES = COMPOSE["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)}"""
    out = {}
    for item in value.split(","):
        name, rest = item.split("://", 1)
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def short_volumes(service: dict) -> list[tuple[str, str, str]]:
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out.append((v["source"], v["target"], "ro" if v.get("read_only") else "rw"))
        else:
            parts = v.split(":")
            out.append((parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"))
    return out


KAFKA = env_of(SERVICES["kafka"])
WORKER = env_of(SERVICES["worker"])
METRICS_PORT = int(WORKER["RXGATE_METRICS_PORT"])


# ------------------------------------------------------------------ services and images


def test_services_present():
    assert {"kafka", "worker", "prometheus", "grafana"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    service = SERVICES[name]
    image = service.get("image")
    if "build" in service:
        assert image is None or not image.endswith(":latest")
        return
    assert image, f"{name} has neither image nor build"
    repo, sep, tag = image.rpartition(":")
    assert sep and repo and tag and tag != "latest" and re.search(r"\d", tag), image


def test_kafka_is_the_apache_image():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")


# ------------------------------------------------------------------ Kafka in KRaft mode


def test_kafka_kraft_single_node_roles_and_quorum():
    roles = {r.strip() for r in KAFKA["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in KAFKA
    node_id = KAFKA["KAFKA_NODE_ID"]
    voters = KAFKA["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1
    vid, hostport = voters[0].split("@")
    assert vid == node_id
    host, port = hostport.rsplit(":", 1)
    assert host in {"kafka", SERVICES["kafka"].get("hostname")}
    ctrl = KAFKA["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listeners(KAFKA["KAFKA_LISTENERS"])[ctrl][1] == int(port)


def test_kafka_listeners_are_consistent():
    listen = listeners(KAFKA["KAFKA_LISTENERS"])
    advertised = listeners(KAFKA["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in KAFKA["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    ctrl = KAFKA["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listen) <= set(protocols), "every listener needs a security protocol"
    assert ctrl in listen and ctrl not in advertised, "the controller listener is internal"
    assert set(advertised) <= set(listen)
    for name, (_, port) in advertised.items():
        assert listen[name][1] == port, f"{name} advertises a port it does not listen on"
    assert KAFKA["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # the listener other containers use advertises the service name, not localhost
    in_network = [n for n, (h, _) in advertised.items() if h == "kafka"]
    assert in_network, "no listener is advertised as kafka:<port> for other containers"
    # a host listener, if any, is published
    for name, (host, port) in advertised.items():
        if host == "localhost":
            assert any(str(p).split(":")[-1] == str(port) for p in SERVICES["kafka"]["ports"])


def test_kafka_single_node_replication_and_cluster_id():
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert KAFKA[key] == "1", key
    cluster_id = KAFKA["CLUSTER_ID"]
    raw = base64.urlsafe_b64decode(cluster_id + "==")
    assert len(cluster_id) == 22 and len(raw) == 16, "CLUSTER_ID must be a base64 UUID"


def test_worker_reaches_kafka_through_its_advertised_listener():
    broker = WORKER["RXGATE_BROKER"]
    assert broker == "kafka://kafka:9092"
    host, port = broker[len("kafka://"):].rsplit(":", 1)
    advertised = listeners(KAFKA["KAFKA_ADVERTISED_LISTENERS"]).values()
    assert (host, int(port)) in advertised


def test_topics_are_created_with_the_worker_partition_count():
    assert KAFKA.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"
    assert KAFKA.get("KAFKA_NUM_PARTITIONS") == WORKER["RXGATE_PARTITIONS"]
    assert int(WORKER["RXGATE_PARTITIONS"]) >= 1
    assert WORKER.get("RXGATE_REPLICATION", "1") == "1", "a single broker holds one replica"


# ------------------------------------------------------------------ the worker


def test_worker_env_uses_exactly_the_worker_names():
    rx = {k for k in WORKER if k.startswith("RXGATE_")}
    assert REQUIRED_WORKER_ENV <= rx
    known = worker_env_names()
    assert REQUIRED_WORKER_ENV <= known, "the worker must read the names the issue fixes"
    assert rx <= known, f"unknown to the worker: {sorted(rx - known)}"
    assert set(WORKER) == rx, "the worker gets no other environment"


def test_worker_env_values_are_accepted_by_the_worker():
    config = pytest.importorskip("rxgate.stream.config")
    env = dict(WORKER)
    # the image carries the knowledge at RXGATE_KNOWLEDGE_DIR: copied from this directory
    assert env["RXGATE_KNOWLEDGE_DIR"] == "/opt/rxgate/knowledge"
    env["RXGATE_KNOWLEDGE_DIR"] = str(ROOT / "services" / "rxgate" / "knowledge" / "data")
    settings = config.Settings.from_env(env)
    assert settings.metrics_port == METRICS_PORT
    assert settings.bootstrap_servers == ["kafka:9092"]
    assert settings.metrics_host == "0.0.0.0"


def test_worker_build_command_ports_and_dependencies():
    worker = SERVICES["worker"]
    build = worker["build"]
    context = ROOT / build["context"]
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert worker.get("command") in (None, ["worker"])
    published = [str(p) for p in worker["ports"]]
    assert f"${{RXGATE_BIND:-127.0.0.1}}:{METRICS_PORT}:{METRICS_PORT}" in published
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_worker_healthcheck_hits_healthz_on_the_metrics_port():
    test = SERVICES["worker"]["healthcheck"]["test"]
    text = " ".join(test) if isinstance(test, list) else test
    assert f"127.0.0.1:{METRICS_PORT}/healthz" in text
    assert test[0] in ("CMD", "CMD-SHELL")
    assert "curl" not in text and "wget" not in text, "python:3.11-slim has neither"


def test_kafka_has_a_healthcheck_the_worker_waits_for():
    test = " ".join(SERVICES["kafka"]["healthcheck"]["test"])
    assert "/opt/kafka/bin/" in test and "kafka:9092" in test


# ------------------------------------------------------------------ Prometheus and Grafana


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_point_into_the_repo(name):
    named = set(COMPOSE.get("volumes") or {})
    for source, target, mode in short_volumes(SERVICES[name]):
        if source.startswith((".", "/")):
            path = (ROOT / source).resolve()
            assert path.exists(), f"{name}: {source} does not exist"
            assert str(path).startswith(str(ROOT)), f"{name}: {source} leaves the repo"
            assert mode == "ro", f"{name}: config mounts are read-only"
        else:
            assert source in named, f"{name}: volume {source} is not declared"


def test_prometheus_mounts_its_config_and_scrapes_the_worker():
    prom = SERVICES["prometheus"]
    mounts = {t: s for s, t, _ in short_volumes(prom)}
    assert (ROOT / mounts["/etc/prometheus"]).resolve() == PROMETHEUS_CONFIG.parent
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml", "review_alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "rxgate"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"worker:{METRICS_PORT}"]
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_provisioning_and_dashboard_paths_line_up():
    graf = SERVICES["grafana"]
    mounts = {t: (ROOT / s).resolve() for s, t, _ in short_volumes(graf) if s.startswith(".")}
    prov = mounts["/etc/grafana/provisioning"]
    assert (prov / "datasources" / "prometheus.yml").exists()
    provider = load_yaml(prov / "dashboards" / "rxgate.yml")["providers"][0]
    dash_dir = provider["options"]["path"]
    assert dash_dir in mounts, "the provider reads a directory that is not mounted"
    assert (mounts[dash_dir] / "rxgate.json").exists()
    home = env_of(graf).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home == f"{dash_dir}/rxgate.json"


def test_no_id_labels_in_compose():
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"patient_id|order_id", text)


# ------------------------------------------------------------------ the Dockerfile

DOCKER_LINES = [ln for ln in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]


def instructions(name: str) -> list[str]:
    return [ln.split(None, 1)[1] for ln in DOCKER_LINES if ln.split(None, 1)[0].upper() == name]


def test_dockerfile_base_install_entrypoint():
    froms = [f.split()[0] for f in instructions("FROM")]
    # a full Python version and the Debian release: a rebuild cannot move to another base
    assert froms and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", f) for f in froms), froms
    assert len(set(froms)) == 1, "build and run stages use the same base"
    runs = " ".join(instructions("RUN"))
    assert re.search(r"pip (install|wheel)\b.*\s\.(\s|$)", runs), "installs the repo with pip"
    assert "pip install" in runs
    assert instructions("ENTRYPOINT") == ['["rxgate"]']
    assert instructions("CMD") == ['["worker"]']


def test_dockerfile_runs_as_non_root():
    users = instructions("USER")
    assert users, "no USER: the worker would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid lets Kubernetes verify runAsNonRoot"


def test_dockerfile_port_env_and_healthcheck_match_compose():
    assert instructions("EXPOSE") == [str(METRICS_PORT)]
    env = " ".join(instructions("ENV"))
    assert f"RXGATE_METRICS_PORT={METRICS_PORT}" in env
    names = set(re.findall(r"\b(RXGATE_[A-Z_]+)=", env))
    assert names <= worker_env_names()
    health = " ".join(instructions("HEALTHCHECK"))
    assert "/healthz" in health and "RXGATE_METRICS_PORT" in health


def test_dockerfile_copies_exist_and_pass_dockerignore():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore starts from nothing and allows what the build needs"
    allowed = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for copy in instructions("COPY"):
        args = [a for a in shlex.split(copy) if not a.startswith("--")]
        if any(a.startswith("--from") for a in shlex.split(copy)):
            continue
        for src in args[:-1]:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repo"
            assert any(src == a or src.startswith(a + "/") for a in allowed), \
                f"COPY {src}: excluded by .dockerignore"


def test_dockerfile_knowledge_dir_is_the_repo_knowledge():
    copies = [shlex.split(c) for c in instructions("COPY")]
    knowledge = [c for c in copies if c[-1] == "/opt/rxgate/knowledge"]
    assert knowledge and knowledge[0][-2] == "services/rxgate/knowledge/data"
    assert (ROOT / "services/rxgate/knowledge/data/knowledge.toml").exists()
