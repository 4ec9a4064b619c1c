"""The repository stands alone: the contract doc's facts hold, its links resolve, and nothing
in the repository points at files outside it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DOC = ROOT / "docs" / "contract.md"
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "deploy" / "README.md"]
SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", "build", "dist", ".venv", "node_modules"}


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def _signed32(n: int) -> int:
    return n - 2**32 if n >= 2**31 else n


def test_partitioner_test_vectors_are_kafkas():
    """Each row of the test-vector table is what Kafka's default partitioner (as aiokafka
    implements it) gives, so an integrator can check their client against it."""
    text = _section(CONTRACT_DOC.read_text(encoding="utf-8"),
                    "## Keys and the partitioner producers must use")
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|\s*(-?\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|$",
                      text, re.MULTILINE)
    assert len(rows) >= 5, "the test-vector table is missing"
    assert any(int(h) < 0 for _, h, *_ in rows), "no vector shows the sign handling"
    assert any(not k.isascii() for k, *_ in rows), "no vector shows UTF-8 encoding"
    partitioner = DefaultPartitioner()
    for key, hashed, *partitions in rows:
        data = key.encode("utf-8")
        assert _signed32(murmur2(data)) == int(hashed), key
        for count, expected in zip((4, 6, 12), partitions):
            assert partitioner(data, list(range(count)), list(range(count))) == int(expected), \
                (key, count)


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks hold no links
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc):
    links = _links(doc)
    for link in links:
        target = (doc.parent / link.split("#", 1)[0]).resolve()
        assert target.exists(), f"{doc.name}: link {link} goes nowhere"
        assert target.is_relative_to(ROOT), f"{doc.name}: link {link} leaves the repository"


def test_contract_doc_links_every_schema_and_example():
    linked = {(CONTRACT_DOC.parent / link).resolve() for link in _links(CONTRACT_DOC)}
    wanted = set((ROOT / "schemas").glob("*.schema.json")) | set(
        (ROOT / "docs" / "examples").glob("*.json"))
    assert wanted, "no schemas or examples found"
    assert {p.resolve() for p in wanted} <= linked, sorted(
        str(p.relative_to(ROOT)) for p in wanted if p.resolve() not in linked)


# written in pieces, so that this file does not match itself
OUTSIDE = [".." + "/shared", "shared" + "/contract", "shared" + "/seeds", "/work" + "/"]


def _text_files():
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS or part.endswith(".egg-info") or part.startswith(".")
               and part not in (".ci",) for part in path.relative_to(ROOT).parts):
            continue
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue


def test_nothing_refers_to_files_outside_the_repository():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path, text in _text_files()
             for n, line in enumerate(text.splitlines(), 1)
             if any(marker in line for marker in OUTSIDE)]
    assert not found, "\n".join(found)
