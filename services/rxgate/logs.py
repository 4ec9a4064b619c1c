"""Log records on standard error, as text lines or as JSON lines, never with terminal colours.

    configure_logging("info", "json")   # RXGATE_LOG_LEVEL, RXGATE_LOG_FORMAT

One handler on the root logger, so rxgate's own records and those of faust, mode and aiokafka
(and Python warnings) all come out the same way:

- `text`: `2026-11-25 19:52:01,123 INFO rxgate.worker: message`, one line per record (a
  traceback follows its record on the next lines);
- `json`: one JSON object per line (python-json-logger): `timestamp` (ISO 8601, UTC), `level`,
  `logger`, `message`, plus `exc_info` (the traceback as one string) and any `extra` fields.

faust colours its records when it thinks it writes to a terminal, and judges that by standard
output, so `rxgate worker 2>worker.log` in a terminal would put escape codes in the file. Here
no formatter colours, and terminal escape sequences are removed from every message.

`logging_config(...)` is the dictConfig the worker hands to faust, which applies it again when
it starts (faust's own default would install its colouring handler).
"""
from __future__ import annotations

import logging
import logging.config
import re
import sys
import threading

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# ESC [ ... final byte (CSI: colours, cursor moves), ESC ] ... BEL/ST (OSC), ESC + intermediate
# bytes + a final byte (charset switches such as ESC ( 0), and any ESC left over
_TERMINAL_CODES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]|\x1b")
# faust draws its tables with the terminal's line-drawing charset (ESC ( 0 ... ESC ( B) when
# standard output is a terminal: those letters become ASCII box characters
_LINE_DRAWING = re.compile(r"\x1b\(0(.*?)\x1b\(B", re.DOTALL)
_LINE_CHARS = str.maketrans("lkmjtuvwnqx", "+++++++++-|")


def strip_terminal_codes(text: str) -> str:
    text = _LINE_DRAWING.sub(lambda m: m.group(1).translate(_LINE_CHARS), text)
    return _TERMINAL_CODES.sub("", text)


class NoTerminalCodes(logging.Filter):
    """Formats the message once and removes terminal escape sequences from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format in someone's log call: keep it as it is
            return True
        if "\x1b" in message:
            message = strip_terminal_codes(message)
        record.msg, record.args = message, None
        return True


def logging_config(level: str = "info", fmt: str = "text") -> dict:
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
        }
    elif fmt == "text":
        formatter = {"format": TEXT_FORMAT}
    else:
        raise ValueError(f"unknown log format {fmt!r}: expected text or json")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_terminal_codes": {"()": f"{__name__}.NoTerminalCodes"}},
        "formatters": {"rxgate": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "rxgate",
                "filters": ["no_terminal_codes"],
            },
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure_logging(level: str = "info", fmt: str = "text") -> dict:
    """Apply `logging_config(level, fmt)`; returns it (for faust.Worker(logging_config=...))."""
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    if fmt == "json":
        # an uncaught exception is a record too, not a bare traceback among the JSON lines
        sys.excepthook = _log_uncaught
        threading.excepthook = lambda args: _log_uncaught(
            args.exc_type, args.exc_value, args.exc_traceback)
    return config


def _log_uncaught(exc_type, exc_value, exc_traceback) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc_value, exc_traceback)
        return
    logging.getLogger("rxgate").critical("uncaught exception, stopping",
                                         exc_info=(exc_type, exc_value, exc_traceback))
