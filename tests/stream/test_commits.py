"""Committed offsets keep up with the stream, across a restart.

The read-back window after a restart (readback.py) is what was published since the last
commit, so the group's committed offsets must reach the end of the input once everything is
handled -- also after a worker was killed mid-stream and its successor resumed.

The end of each input partition is taken from the offsets the broker gave the published
records, not from ListOffsets: Tansu answers ListOffsets(latest) below the true log end.
"""
from __future__ import annotations

import time

import pytest

from rxgate.contract import FileSource
from rxgate.stream.runner import WorkerProcess

from .conftest import PARTITIONS, now
from .kafka import committed_offsets, output_count, publish, wait_for
from .test_restart import kill_test_stream

pytestmark = pytest.mark.broker


def test_committed_offsets_reach_the_end_after_a_restart(fresh_broker, tmp_path, processor):
    group = "rxgate-commits"
    stream = kill_test_stream(patients=300)
    outputs = sum(len(processor.handle(value, FileSource(file="commits", line=n), now()).outputs)
                  for n, (_, value) in enumerate(stream, 1))
    worker = WorkerProcess(fresh_broker.url, group=group, partitions=PARTITIONS,
                           log_path=tmp_path / "worker.log")
    worker.start()
    try:
        worker.wait_healthy()
        positions = publish(fresh_broker.bootstrap, stream)
        ends = {p: 1 + max(o for q, o in positions if q == p) for p in range(PARTITIONS)}
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= outputs / 2, timeout=300,
                 what="half of the outputs", poll=0.05)
        worker.kill()  # mid-stream: its successor resumes from the last commit
        worker.start()
        worker.wait_healthy()
        wait_for(lambda: output_count(fresh_broker.bootstrap) >= outputs, timeout=300,
                 what="every input's output")
        last: dict[int, int | None] = {}

        def caught_up() -> bool:
            last.update(committed_offsets(fresh_broker.bootstrap, group))
            return last == ends

        deadline = time.monotonic() + 60
        while not caught_up() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert last == ends, (f"committed offsets {last} did not reach the log ends {ends} "
                              f"within 60 s of the last output\n{worker.log_tail(30)}")
        assert output_count(fresh_broker.bootstrap) == outputs  # nothing published twice
    finally:
        worker.stop()
