"""The image installs exactly the locked packages: requirements.lock pins every runtime
dependency of pyproject.toml (and theirs) with sha256 hashes, and the Dockerfile installs it with
--require-hashes, then rxgate itself with --no-deps. Regenerate the lock with `scripts/lock`."""
from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deploy_support import DOCKERFILE, ROOT

LOCK_FILE = ROOT / "requirements.lock"
HINT = "run scripts/lock to regenerate requirements.lock"


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its hashes), from requirements.lock."""
    text = LOCK_FILE.read_text(encoding="utf-8")
    pins: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if m:
            pins[canonicalize_name(m.group(1))] = (
                Version(m.group(2)), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_the_lock_pins_every_runtime_dependency_within_its_range():
    pins = locked()
    assert len(pins) > len(runtime_requirements()), "the lock holds the transitive dependencies too"
    for req in runtime_requirements():
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.11",
                                                               "sys_platform": "linux"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency in pyproject.toml but not locked: {HINT}"
        version = pins[name][0]
        assert req.specifier.contains(version, prereleases=True), \
            f"requirements.lock pins {req.name}=={version}, outside {req.specifier}: {HINT}"


def test_every_locked_package_is_pinned_exactly_with_hashes():
    text = LOCK_FILE.read_text(encoding="utf-8")
    requirement_lines = [ln for ln in text.splitlines()
                         if ln and not ln.startswith((" ", "#", "\t"))]
    assert requirement_lines
    for line in requirement_lines:
        assert re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\$", line), \
            f"not an exact pin followed by hashes: {line!r}"
    for name, (_, hashes) in locked().items():
        assert hashes, f"{name} has no --hash in requirements.lock: {HINT}"
    assert "rxgate" not in locked(), "rxgate itself is installed from the build, not the lock"
    assert "--find-links" not in text and "--index-url" not in text, "no machine-local sources"


def _docker_runs() -> str:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return " ".join(ln for ln in text.splitlines() if ln.strip().startswith("RUN"))


def test_the_image_installs_the_lock_with_hashes_then_rxgate_without_dependencies():
    runs = _docker_runs()
    lock_install = re.search(r"pip install ([^&]*)-r \S*requirements\.lock", runs)
    assert lock_install, "the Dockerfile does not install requirements.lock"
    assert "--require-hashes" in lock_install.group(1)
    own = re.search(r"pip install ([^&]*)(/wheels/rxgate-\S*\.whl|\s\.)(\s|$)", runs)
    assert own, "the Dockerfile does not install rxgate itself"
    assert "--no-deps" in own.group(1), "rxgate must not pull dependencies past the lock"
    assert runs.index("requirements.lock") < runs.index(own.group(0)), \
        "the locked dependencies are installed first"
    # the lock reaches the build: .dockerignore lets it through
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!requirements.lock" in ignore


def test_the_lock_command_is_there():
    script = ROOT / "scripts" / "lock"
    assert script.is_file() and script.stat().st_mode & 0o111, "scripts/lock is executable"
    text = script.read_text(encoding="utf-8")
    assert "--generate-hashes" in text and "requirements.lock" in text
