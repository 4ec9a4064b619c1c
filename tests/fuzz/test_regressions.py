"""Every input a fuzz run (or an attacker, issue 8) found failing, replayed on every run."""
from __future__ import annotations

import pytest

from .harness import REGRESSIONS, check_input, fresh_processor

FILES = sorted(REGRESSIONS.glob("*.bin"))


def test_there_are_regression_examples():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_regression_example(path):
    check_input(fresh_processor(), path.read_bytes(), save=False)
