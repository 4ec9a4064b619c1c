"""Say it once, then summarise: a logging filter against floods of one repeated message.

With the broker gone, aiokafka and faust log the same error for every reconnect attempt --
dozens of identical lines a second, burying everything else. `RepeatFilter` lets the first
record of a kind through, holds back the same kind for `window` seconds, and adds to the next
one it lets through how many it held back:

    ERROR Unable connect to node with id 0: ...
    ERROR Unable connect to node with id 0: ... (and 58 more like it in the last 60 s, not shown)

A "kind" is the logger, the level and the message template (before its arguments are filled
in), so one template repeating with other arguments counts as one kind. Records of rxgate's
own loggers that carry a traceback are never held back: each names a different record.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

WINDOW = 60.0  # seconds
MAX_KINDS = 1000


class RepeatFilter(logging.Filter):
    def __init__(self, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, int, str], list[float | int]] = {}  # [since, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name.startswith("rxgate"):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(key)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return False
            held = int(seen[1]) if seen is not None else 0
            if seen is None and len(self._kinds) >= MAX_KINDS:
                self._kinds.pop(next(iter(self._kinds)))
            since = seen[0] if seen is not None else now
            self._kinds[key] = [now, 0]
        if held:
            record.msg = (f"{record.msg} (and {held} more like it in the last "
                          f"{now - since:.0f} s, not shown)")
        return True


def install_repeat_filter(logger: logging.Logger | None = None,
                          repeat_filter: RepeatFilter | None = None) -> RepeatFilter:
    """Add one RepeatFilter to every handler of `logger` (default: the root logger), so it
    sees the records of every library that propagate there."""
    logger = logger or logging.getLogger()
    repeat_filter = repeat_filter or RepeatFilter()
    for handler in logger.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(repeat_filter)
    return repeat_filter
