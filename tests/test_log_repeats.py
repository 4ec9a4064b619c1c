"""A flood of one repeated log message becomes one line, then one summary a minute."""
from __future__ import annotations

import logging
import sys

from rxgate.log_repeats import RepeatFilter, install_repeat_filter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def logger_with(filter_: RepeatFilter, name: str = "aiokafka.test") -> tuple[logging.Logger,
                                                                                Collect]:
    root = logging.getLogger(f"rxgate-test-root-{id(filter_)}")
    root.propagate = False
    handler = Collect()
    root.addHandler(handler)
    install_repeat_filter(root, filter_)
    install_repeat_filter(root, filter_)  # twice: still one filter
    assert len(handler.filters) == 1
    child = logging.getLogger(f"{root.name}.{name}")  # a library's logger propagating up
    child.setLevel(logging.DEBUG)
    return child, handler


def test_one_line_then_a_summary_per_window():
    clock = Clock()
    log, out = logger_with(RepeatFilter(window=60, clock=clock))
    for second in range(150):  # 60 identical errors a second for 150 s
        for _ in range(60):
            log.error("Unable connect to %r: %s", "127.0.0.1:9092", "refused")
        clock.now += 1
    assert len(out.lines) == 3  # at 0 s, 60 s and 120 s
    assert out.lines[0] == "Unable connect to '127.0.0.1:9092': refused"
    assert out.lines[1].endswith("(and 3599 more like it in the last 60 s, not shown)")
    assert out.lines[2].endswith("(and 3599 more like it in the last 60 s, not shown)")


def test_other_messages_and_levels_pass():
    clock = Clock()
    log, out = logger_with(RepeatFilter(window=60, clock=clock))
    log.error("broker gone: %s", 1)
    log.warning("broker gone: %s", 2)
    log.error("another thing")
    log.error("broker gone: %s", 3)  # held back
    assert out.lines == ["broker gone: 1", "broker gone: 2", "another thing"]


def test_rxgate_records_with_a_traceback_are_never_held_back():
    filter_ = RepeatFilter(window=60, clock=Clock())
    for offset in range(5):  # each names another record
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.LogRecord("rxgate.stream.shell", logging.ERROR, __file__, 1,
                                       "could not handle %s[%d]@%d",
                                       ("rx.orders.v1", 0, offset), sys.exc_info())
        assert filter_.filter(record)
    # the same template from a library, with a traceback, is held back after the first
    library = [logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "failed %d", (n,),
                                 None) for n in range(3)]
    assert [filter_.filter(r) for r in library] == [True, False, False]
