"""Tracebacks in the worker's logs without exception messages that may quote patient data.

A defect's exception message can hold whatever value the code was looking at (Python's own
errors quote it: `KeyError: 'P-001'`, `invalid literal for int(): '1955-04-12'`). The worker
logs defects with their tracebacks, so every log record that carries an exception gets the
traceback pre-formatted with each message withheld: the frames (file, line, function, source
line), the exception types and the chain stay, which is what an on-call engineer needs to find
the defect; the input itself is in the dead letter or the decision, where it belongs.

Messages of the broker and network layers (aiokafka, faust, mode, OSError and friends) are
kept: they name hosts and topics, never an order, and an operator needs them.

    install()    once per process, before logging starts: wraps the LogRecord factory
"""
from __future__ import annotations

import asyncio
import logging
import traceback
from types import TracebackType

WITHHELD = "(message withheld from the log: it may quote patient data)"
_INFRA_MODULES = ("aiokafka", "kafka", "faust", "mode", "ssl", "asyncio", "concurrent")
_installed = False


def install() -> None:
    """Every log record with exc_info gets its traceback formatted by `redacted_traceback`."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_traceback(record.exc_info[1])
            record.exc_info = None  # formatters print exc_text as it is
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def redacted_traceback(exc: BaseException) -> str:
    return "".join(_format(exc, set())).rstrip("\n")


def _format(exc: BaseException, seen: set[int]) -> list[str]:
    seen.add(id(exc))
    lines: list[str] = []
    if exc.__cause__ is not None and id(exc.__cause__) not in seen:
        lines += _format(exc.__cause__, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif (exc.__context__ is not None and not exc.__suppress_context__
          and id(exc.__context__) not in seen):
        lines += _format(exc.__context__, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    tb: TracebackType | None = exc.__traceback__
    if tb is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_list(traceback.extract_tb(tb))
    lines.append(f"{_name(type(exc))}: {_message(exc)}\n")
    return lines


def _name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, (OSError, asyncio.TimeoutError)) or \
            type(exc).__module__.split(".")[0] in _INFRA_MODULES:
        try:
            return str(exc)
        except Exception:
            return WITHHELD
    return WITHHELD
