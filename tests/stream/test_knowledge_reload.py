"""A knowledge directory mounted from a Kubernetes ConfigMap, updated the way the kubelet does it.

The kubelet's atomic writer puts each version of a ConfigMap volume in a fresh hidden directory
`..<timestamp>`, points the symlink `..data` at it with one rename, and the visible names are
symlinks through `..data` (`knowledge.toml -> ..data/knowledge.toml`, and, for the items placed
under `drugs/`, `drugs -> ..data/drugs`). `ConfigMapDir` below does the same steps, so the
watcher and a real worker see an update exactly as in a pod.
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
from pathlib import Path

import pytest

from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.stream import knowledge_reload
from rxgate.stream.knowledge_reload import KnowledgeWatcher, fingerprint
from rxgate.stream.runner import WorkerProcess

from .kafka import decisions_by_event, publish, read_outputs, wait_for
from .orders import T0, new_patient_id, placed, wire

VERSION = load_knowledge(BUILTIN_DIR).version


def shipped_files() -> dict[str, str]:
    """relative path -> text of every file of the built-in knowledge."""
    return {str(p.relative_to(BUILTIN_DIR)): p.read_text(encoding="utf-8")
            for p in sorted(BUILTIN_DIR.rglob("*.toml"))}


def with_version(files: dict[str, str], version: str, anc_below: str = "1.0") -> dict[str, str]:
    out = dict(files)
    out["knowledge.toml"] = out["knowledge.toml"].replace(f'"{VERSION}"', f'"{version}"')
    out["drugs/isatuximab.toml"] = out["drugs/isatuximab.toml"].replace(
        'lab = "ANC"\nbelow = 1.0', f'lab = "ANC"\nbelow = {anc_below}')
    return out


class ConfigMapDir:
    """A directory updated as the kubelet updates a ConfigMap volume (AtomicWriter)."""

    _stamps = itertools.count(1)

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        root.mkdir()
        self.update(files)

    def update(self, files: dict[str, str]) -> None:
        old = (self.root / "..data").resolve() if (self.root / "..data").is_symlink() else None
        stamp = self.root / f"..2026_11_25_23_00_00.{next(self._stamps):06d}"
        for rel, text in files.items():
            (stamp / rel).parent.mkdir(parents=True, exist_ok=True)
            (stamp / rel).write_text(text, encoding="utf-8")
        tmp = self.root / "..data_tmp"
        os.symlink(stamp.name, tmp)
        os.rename(tmp, self.root / "..data")  # the one atomic step
        for top in {rel.split("/")[0] for rel in files}:
            link = self.root / top
            if not link.is_symlink():
                os.symlink(f"..data/{top}", link)
        for link in self.root.iterdir():  # names no longer in the payload go
            if not link.name.startswith("..") and link.name not in {r.split("/")[0] for r in files}:
                link.unlink()
        if old is not None:
            shutil.rmtree(old)


@pytest.fixture
def mounted(tmp_path) -> ConfigMapDir:
    return ConfigMapDir(tmp_path / "knowledge", shipped_files())


def test_the_configmap_layout_loads_as_a_knowledge_directory(mounted):
    assert (mounted.root / "knowledge.toml").is_symlink() and (mounted.root / "drugs").is_symlink()
    assert load_knowledge(mounted.root) == load_knowledge(BUILTIN_DIR)


def test_a_symlink_swap_to_a_new_version_goes_live(mounted):
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    assert watcher.poll() == (None, None)
    mounted.update(with_version(shipped_files(), "2099.1.1", anc_below="1.5"))
    loaded, error = watcher.poll()
    assert error is None and loaded is not None
    assert loaded.version == "2099.1.1"
    assert loaded.monographs["isatuximab"].lab_limits[0].below == 1.5
    assert watcher.current is loaded
    assert watcher.poll() == (None, None)


def test_a_swap_to_a_malformed_version_is_refused_once_and_the_old_keeps_serving(mounted):
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    serving = watcher.current
    broken = with_version(shipped_files(), "2099.1.2", anc_below="nan")
    mounted.update(broken)
    loaded, error = watcher.poll()
    assert loaded is None
    assert f"{mounted.root / 'drugs' / 'isatuximab.toml'}: lab_limits.0.below" in error
    assert watcher.current is serving
    assert watcher.poll() == (None, None), "the same refused content is reported once"
    mounted.update(with_version(shipped_files(), "2099.1.3"))
    loaded, error = watcher.poll()
    assert error is None and loaded.version == "2099.1.3"


def test_a_new_monograph_file_under_drugs_is_seen(mounted):
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    files = with_version(shipped_files(), "2099.1.4")
    files["drugs/testumab.toml"] = (
        files["drugs/isatuximab.toml"].replace('drug = "isatuximab"', 'drug = "testumab"')
        .replace('trade_names = ["Sarclisa", "Xacoyi"]', 'trade_names = []')
        .replace('name = "Sarclisa"\naliases = ["Xacoyi", "isatuximab-irfc"]', 'name = "Testa"')
        .replace('codes = [{ system = "rxnorm", value = "2283218" }, { system = "atc", value = "L01FC02" }]',
                 "codes = []"))
    mounted.update(files)
    loaded, error = watcher.poll()
    assert error is None, error
    assert sorted(loaded.monographs) == ["daratumumab", "isatuximab", "testumab"]


def test_a_swap_to_the_same_content_is_no_change(mounted):
    before = fingerprint(mounted.root)
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    mounted.update(shipped_files())  # a new ..<timestamp> directory, the same files
    assert fingerprint(mounted.root) == before
    assert watcher.poll() == (None, None)


def test_a_change_that_loads_to_the_knowledge_in_use_is_no_change(mounted):
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    files = shipped_files()
    files["labs.toml"] += "\n# a comment: the same knowledge\n"
    mounted.update(files)
    assert watcher.poll() == (None, None)


def test_a_load_that_races_a_swap_is_thrown_away_and_retried(mounted, monkeypatch):
    watcher = KnowledgeWatcher(mounted.root, load_knowledge(mounted.root))
    mounted.update(with_version(shipped_files(), "2099.2.1"))
    real_load = knowledge_reload.load_knowledge
    swapped = []

    def load_then_swap(directory):
        loaded = real_load(directory)
        if not swapped:  # the kubelet swaps again while the worker reads
            mounted.update(with_version(shipped_files(), "2099.2.2"))
            swapped.append(True)
        return loaded

    monkeypatch.setattr(knowledge_reload, "load_knowledge", load_then_swap)
    assert watcher.poll() == (None, None)
    assert watcher.current.version == VERSION
    loaded, error = watcher.poll()
    assert error is None and loaded.version == "2099.2.2"


def test_a_plain_directory_whose_drugs_is_a_symlink_elsewhere_is_watched(tmp_path):
    elsewhere = tmp_path / "monographs"
    shutil.copytree(BUILTIN_DIR / "drugs", elsewhere)
    root = tmp_path / "knowledge"
    root.mkdir()
    for p in BUILTIN_DIR.glob("*.toml"):
        shutil.copy(p, root / p.name)
    os.symlink(elsewhere, root / "drugs")
    watcher = KnowledgeWatcher(root, load_knowledge(root))
    mono = elsewhere / "isatuximab.toml"
    mono.write_text(mono.read_text().replace("below = 1.0", "below = 1.25", 1))
    loaded, error = watcher.poll()
    assert error is None and loaded.monographs["isatuximab"].lab_limits[0].below == 1.25


# --- a real worker on a ConfigMap-style directory ---------------------------------------------


def metric_lines(worker: WorkerProcess, name: str) -> list[str]:
    return [line for line in worker.metrics_text().splitlines() if line.startswith(name)]


@pytest.mark.broker
def test_a_worker_rolls_a_configmap_update_and_refuses_a_malformed_one(fresh_broker, tmp_path):
    """The README's roll-out, confirmed the three ways it says: the log line, the
    knowledge_version on decisions and rxgate_knowledge_info; a malformed update is refused
    (log, rxgate_knowledge_refused_total) and the version in use keeps deciding."""
    mounted = ConfigMapDir(tmp_path / "knowledge", shipped_files())
    log = tmp_path / "worker.log"
    env = {"RXGATE_KNOWLEDGE_DIR": str(mounted.root), "RXGATE_KNOWLEDGE_POLL_SECONDS": "1"}

    def decide(anc: float) -> dict:
        event = placed(new_patient_id(), "O-1", T0, anc=anc)
        publish(fresh_broker.bootstrap, [wire(event)])
        outs = read_outputs(fresh_broker.bootstrap,
                            until=lambda outs: event["event_id"] in decisions_by_event(outs))
        [out] = decisions_by_event(outs)[event["event_id"]]
        return out.message

    with WorkerProcess(fresh_broker.url, log_path=log, env=env) as worker:
        worker.wait_healthy()
        first = decide(anc=1.2)
        assert first["knowledge_version"] == VERSION
        assert not any(f["rule_id"].endswith("anc_low") for f in first["findings"])

        mounted.update(with_version(shipped_files(), "2099.1.1", anc_below="1.5"))
        wait_for(lambda: metric_lines(worker, "rxgate_knowledge_info") ==
                 ['rxgate_knowledge_info{version="2099.1.1"} 1.0'], 30, "the new version's metric")
        assert re.search(rf"RXGATE_KNOWLEDGE_DIR changed: knowledge 2099\.1\.1 replaces "
                         rf"{re.escape(VERSION)}", log.read_text())
        second = decide(anc=1.2)
        assert second["knowledge_version"] == "2099.1.1"
        assert any(f["rule_id"] == "isatuximab.contraindication.anc_low" for f in second["findings"])

        mounted.update(with_version(shipped_files(), "2099.1.2", anc_below="-inf"))
        wait_for(lambda: metric_lines(worker, "rxgate_knowledge_refused_total") ==
                 ["rxgate_knowledge_refused_total 1.0"], 30, "the refusal to be counted")
        assert "cannot be loaded; knowledge 2099.1.1 keeps serving" in log.read_text()
        assert "isatuximab.toml: lab_limits.0.below" in log.read_text()
        third = decide(anc=1.2)
        assert third["knowledge_version"] == "2099.1.1"
        assert metric_lines(worker, "rxgate_knowledge_info") == \
            ['rxgate_knowledge_info{version="2099.1.1"} 1.0']
