"""`rxgate` as a newcomer meets it: --version, what every command does, bad arguments named
without a traceback, and messages that say what is wrong rather than something else."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from rxgate.cli import build_parser
from rxgate.schemas import generate

from tests.conftest import ROOT

CONFIG_SOURCE = ROOT / "services" / "rxgate" / "stream" / "config.py"


def rxgate(*args: str, cwd: Path | None = None, stdin: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def subcommands() -> dict:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return dict(sub.choices)


def test_version_comes_from_the_package_metadata():
    done = rxgate("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"rxgate {version('rxgate')}"


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_help_says_what_it_does(command):
    parser = subcommands()[command]
    assert parser.description and len(parser.description) > 60, command
    done = rxgate(command, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert " ".join(parser.description.split()) in text
    # the top-level help lists it with a one-line summary
    top = rxgate("--help").stdout
    assert re.search(rf"^\s+{command}\b", top, re.MULTILINE)


def test_worker_help_lists_every_variable_the_worker_reads_with_its_default():
    read = set(re.findall(r'get\("(RXGATE_[A-Z0-9_]+)"', CONFIG_SOURCE.read_text()))
    assert {"RXGATE_BROKER", "RXGATE_DATA_DIR", "RXGATE_LOG_FORMAT"} <= read
    help_text = rxgate("worker", "--help").stdout
    listed = set(re.findall(r"^  (RXGATE_[A-Z0-9_]+) \[", help_text, re.MULTILINE))
    assert listed == read, f"read but not listed: {sorted(read - listed)}; " \
                           f"listed but not read: {sorted(listed - read)}"
    assert "RXGATE_BROKER [kafka://127.0.0.1:9092]" in help_text
    assert "RXGATE_PARTITIONS [4]" in help_text
    assert "RXGATE_LOG_FORMAT [text]" in help_text


@pytest.mark.parametrize("command", ["broker", "demo"])
@pytest.mark.parametrize("port", ["80000", "0", "-1", "http"])
def test_a_bad_port_is_refused_at_once_naming_the_option(command, port):
    started = time.monotonic()
    done = rxgate(command, "--port", port, timeout=20)
    assert done.returncode == 2
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 15, "refused only after waiting"


def test_schemas_check_outside_the_repository_says_the_files_are_missing(tmp_path):
    done = rxgate("schemas", "--check", cwd=tmp_path)
    assert done.returncode == 2
    assert "no schema directory" in done.stderr and "out of date" not in done.stderr
    assert "--dir" in done.stderr

    partial = tmp_path / "schemas"
    partial.mkdir()
    files = generate()
    kept, dropped = sorted(files)[0], sorted(files)[1]
    (partial / kept).write_text(files[kept], encoding="utf-8")
    done = rxgate("schemas", "--check", cwd=tmp_path)
    assert done.returncode == 1
    assert f"{dropped} is missing" in done.stderr
    assert kept not in done.stderr


def test_a_message_without_event_type_is_a_dead_letter_that_says_so(tmp_path):
    event = {"schema": "rx.order/1", "event_id": "e-1", "occurred_at": "2026-03-01T08:00:00Z"}
    wrong = {**event, "event_id": "e-2", "event_type": "order.updated"}
    done = rxgate("check", "-", stdin=json.dumps(event) + "\n" + json.dumps(wrong) + "\n")
    assert done.returncode == 0, done.stderr
    missing, unknown = [json.loads(line) for line in done.stdout.splitlines()]
    detail = missing["error"]["detail"]
    assert missing["error"]["kind"] == "schema"
    assert "event_type" in detail and "missing" in detail, detail
    assert "'order.placed'" in detail and "'order.cancelled'" in detail, detail
    assert "discriminator" not in detail
    assert "'order.updated'" in unknown["error"]["detail"]
    assert "'order.placed'" in unknown["error"]["detail"]
