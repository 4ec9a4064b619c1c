"""Fixtures for the stream tests: a real Tansu broker on a free loopback port, real workers.

- `broker`        one broker for the session (in memory)
- `worker`        one `rxgate worker` child process on it for the session; tests keep apart by
                  using their own patient ids (and so their own events)
- `fresh_broker`  a broker of a test's own, for tests that stop, restart or kill workers
- `processor`     the very Processor `rxgate check` uses, for expected decisions

No test here skips for want of the broker: it comes with `pip install -e '.[dev]'`.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rxgate.broker import EmbeddedBroker
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor
from rxgate.stream.runner import WorkerProcess

PARTITIONS = 4
GROUP = "rxgate-stream-tests"


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture(scope="session")
def worker(broker, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with WorkerProcess(broker.url, group=GROUP, partitions=PARTITIONS, log_path=log) as w:
        w.wait_healthy()
        yield w


@pytest.fixture
def fresh_broker(tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as running:
        yield running


@pytest.fixture
def processor() -> Processor:
    return Processor(load_knowledge(None), DictHistoryStore())


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


