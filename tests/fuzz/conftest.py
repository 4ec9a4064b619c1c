"""Reports how many inputs the fuzz tests checked in this run."""
from __future__ import annotations

from . import harness


def pytest_terminal_summary(terminalreporter):
    if harness.inputs_checked:
        terminalreporter.write_line(
            f"fuzz: {harness.inputs_checked} inputs checked through the Processor, each within "
            f"{harness.PER_INPUT_SECONDS} s")
