"""Shared fixtures: the contract examples and an event builder."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"  # the contract's example messages (docs/contract.md)
CONFORMANCE = DOCS / "conformance"  # the conformance script and its smoke stream


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture
def placed() -> dict:
    """A fresh copy of the contract's order.placed example, to modify."""
    return copy.deepcopy(example("order-placed.json"))


@pytest.fixture
def cancelled() -> dict:
    return copy.deepcopy(example("order-cancelled.json"))
