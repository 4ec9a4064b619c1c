"""deploy/k8s: valid, namespace-agnostic manifests that agree with each other and the worker."""
from __future__ import annotations

import re

import pytest

from deploy_support import (
    COMPOSE_FILE, FORBIDDEN_LABELS, K8S_DIR, REQUIRED_WORKER_ENV, load_yaml, load_yaml_all,
    worker_env_names,
)

MANIFEST_FILES = sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
DOCS = [(p.name, d) for p in MANIFEST_FILES for d in load_yaml_all(p)]


def one(kind: str) -> dict:
    found = [d for _, d in DOCS if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


CONFIGMAP = one("ConfigMap")
DEPLOYMENT = one("Deployment")
SERVICE = one("Service")
PDB = one("PodDisruptionBudget")
POD = DEPLOYMENT["spec"]["template"]
(CONTAINER,) = POD["spec"]["containers"]
PORTS = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
METRICS_PORT = int(CONFIGMAP["data"]["RXGATE_METRICS_PORT"])


def resolve_port(port) -> int:
    return PORTS[port] if isinstance(port, str) else port


def test_manifests_parse_and_are_namespace_agnostic():
    assert len(MANIFEST_FILES) >= 4
    for name, doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind"), name
        assert doc["metadata"].get("name"), name
        assert "namespace" not in doc["metadata"], f"{name}: hard-codes a namespace"
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFEST_FILES]
    assert "namespace" not in kustomization


def test_api_versions():
    assert DEPLOYMENT["apiVersion"] == "apps/v1"
    assert PDB["apiVersion"] == "policy/v1"
    assert CONFIGMAP["apiVersion"] == SERVICE["apiVersion"] == "v1"


def test_configmap_has_exactly_worker_env_names_as_strings():
    data = CONFIGMAP["data"]
    assert REQUIRED_WORKER_ENV <= set(data)
    assert set(data) <= worker_env_names(), f"unknown: {sorted(set(data) - worker_env_names())}"
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    assert data["RXGATE_BROKER"].startswith("kafka://")
    assert int(data["RXGATE_PARTITIONS"]) >= DEPLOYMENT["spec"]["replicas"], \
        "a replica beyond the partition count would sit idle"


def test_configmap_agrees_with_compose_where_it_should():
    compose_env = load_yaml(COMPOSE_FILE)["services"]["worker"]["environment"]
    for key in ("RXGATE_KNOWLEDGE_DIR", "RXGATE_METRICS_PORT", "RXGATE_GROUP", "RXGATE_DATA_DIR",
                "RXGATE_PARTITIONS"):
        assert str(compose_env[key]) == CONFIGMAP["data"][key], key


def test_deployment_uses_the_configmap_and_only_worker_env():
    refs = [e["configMapRef"]["name"] for e in CONTAINER.get("envFrom", []) if "configMapRef" in e]
    assert refs == [CONFIGMAP["metadata"]["name"]]
    extra = {e["name"] for e in CONTAINER.get("env", [])}
    assert extra <= worker_env_names()
    assert CONTAINER.get("args", ["worker"]) == ["worker"]
    assert "command" not in CONTAINER, "the image's entrypoint is rxgate"


def test_deployment_replicas_selector_and_labels():
    spec = DEPLOYMENT["spec"]
    assert spec["replicas"] == 2
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= POD["metadata"]["labels"].items()
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("probe, path", [("livenessProbe", "/livez"),
                                         ("readinessProbe", "/readyz"),
                                         ("startupProbe", "/livez")])
def test_probes_hit_livez_and_readyz_on_the_metrics_port(probe, path):
    get = CONTAINER[probe]["httpGet"]
    assert get["path"] == path
    assert resolve_port(get["port"]) == METRICS_PORT


def test_the_worker_serves_the_probed_paths():
    import urllib.error
    import urllib.request

    from rxgate.stream.metrics import Metrics, MetricsServer

    server = MetricsServer(Metrics(), "127.0.0.1", 0).start()
    try:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            url = f"http://127.0.0.1:{server.port}{CONTAINER[probe]['httpGet']['path']}"
            try:
                status = urllib.request.urlopen(url, timeout=5).status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status in (200, 503), (probe, status)  # served (not 404)
    finally:
        server.stop()


def test_liveness_is_more_patient_than_readiness():
    live, ready = CONTAINER["livenessProbe"], CONTAINER["readinessProbe"]
    assert (live["periodSeconds"] * live["failureThreshold"]
            > ready["periodSeconds"] * ready["failureThreshold"])
    start = CONTAINER["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 90, "the topics check takes time"


def test_the_termination_grace_covers_the_workers_bounded_stop():
    from rxgate.stream.health import STOP_GRACE

    assert POD["spec"]["terminationGracePeriodSeconds"] > STOP_GRACE + 2


def test_prometheus_scrape_annotations_match_the_port():
    ann = POD["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == METRICS_PORT
    assert ann["prometheus.io/path"] == "/metrics"
    assert PORTS["metrics"] == METRICS_PORT


def test_resources_requests_and_limits():
    res = CONTAINER["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res[kind]), kind


def test_runs_as_non_root_with_a_locked_down_container():
    pod_sec = POD["spec"]["securityContext"]
    assert pod_sec["runAsNonRoot"] is True
    assert pod_sec["runAsUser"] != 0
    sec = CONTAINER["securityContext"]
    assert sec["allowPrivilegeEscalation"] is False
    assert sec["readOnlyRootFilesystem"] is True
    assert sec["capabilities"]["drop"] == ["ALL"]
    # with a read-only root, the data dir the worker writes must be a volume
    mounts = {m["mountPath"] for m in CONTAINER["volumeMounts"]}
    assert CONFIGMAP["data"]["RXGATE_DATA_DIR"] in mounts
    assert "/tmp" in mounts


def test_the_knowledge_configmap_is_mounted_as_the_knowledge_directory(tmp_path):
    """The ConfigMap rxgate-knowledge mounted (whole, read-only, no subPath: a subPath mount is
    never updated) at RXGATE_KNOWLEDGE_DIR; its items rebuild the shipped knowledge directory
    from the flat keys `kubectl create configmap --from-file=K/ --from-file=K/drugs/` makes."""
    from rxgate.knowledge import BUILTIN_DIR, load_knowledge

    [mount] = [m for m in CONTAINER["volumeMounts"]
               if m["mountPath"] == CONFIGMAP["data"]["RXGATE_KNOWLEDGE_DIR"]]
    assert mount.get("readOnly") is True and "subPath" not in mount
    [volume] = [v for v in POD["spec"]["volumes"] if v["name"] == mount["name"]]
    source = volume["configMap"]
    assert source["name"] == "rxgate-knowledge" and not source.get("optional")
    items = {i["path"]: i["key"] for i in source["items"]}
    shipped = sorted(str(p.relative_to(BUILTIN_DIR)) for p in BUILTIN_DIR.rglob("*.toml"))
    assert sorted(items) == shipped, "every knowledge file needs an item (a new drug: add one)"
    assert all(key == path.rsplit("/", 1)[-1] for path, key in items.items())
    assert len(set(items.values())) == len(items), "two files would share one ConfigMap key"
    mounted = tmp_path / "knowledge"
    for path, key in items.items():
        (mounted / path).parent.mkdir(parents=True, exist_ok=True)
        [file] = [p for p in BUILTIN_DIR.rglob(key)]
        (mounted / path).write_bytes(file.read_bytes())
    assert load_knowledge(mounted) == load_knowledge(BUILTIN_DIR)


def test_dockerfile_uid_matches_run_as_user():
    dockerfile = (K8S_DIR.parents[1] / "Dockerfile").read_text()
    user = re.findall(r"^USER\s+(\d+)", dockerfile, re.MULTILINE)[-1]
    assert int(user) == POD["spec"]["securityContext"]["runAsUser"]


def test_service_selects_the_pods_and_exposes_metrics():
    assert SERVICE["spec"]["selector"].items() <= POD["metadata"]["labels"].items()
    (port,) = SERVICE["spec"]["ports"]
    assert port["name"] == "metrics"
    assert resolve_port(port["targetPort"]) == METRICS_PORT


def test_pdb_keeps_one_worker():
    spec = PDB["spec"]
    assert spec["selector"]["matchLabels"].items() <= POD["metadata"]["labels"].items()
    assert 1 <= spec["minAvailable"] < DEPLOYMENT["spec"]["replicas"]


def test_no_id_labels_anywhere():
    for name, doc in DOCS:
        labels = dict(doc["metadata"].get("labels", {}))
        if doc["kind"] == "Deployment":
            labels.update(POD["metadata"]["labels"])
        assert not {k.split("/")[-1] for k in labels} & FORBIDDEN_LABELS, name


@pytest.mark.parametrize("name,doc", DOCS, ids=[f"{n}:{d['kind']}" for n, d in DOCS])
def test_schema_valid(name, doc):
    """Strict schema validation when kubernetes-validate is installed (optional)."""
    kv = pytest.importorskip("kubernetes_validate")
    kv.validate(doc, kv.latest_version(), strict=True)
