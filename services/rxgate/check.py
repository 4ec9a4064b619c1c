"""`rxgate check FILE|-`: the offline shell over the same Processor the stream uses.

Reads order events as JSON Lines (bytes, so a line that is not UTF-8 still becomes a dead letter
with its original bytes), writes one JSON line per output to standard output, never stops on a
bad line. Exit 0 when the whole input was read; 2 with a message when it cannot be opened or the
knowledge cannot be loaded.
"""
from __future__ import annotations

import datetime as dt
import sys
import traceback
from typing import BinaryIO, TextIO

from .contract import FileSource, to_json
from .knowledge import KnowledgeError, load_knowledge
from .processor import DictHistoryStore, Processor


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_stream(lines: BinaryIO, name: str, processor: Processor, out: TextIO) -> int:
    """Feed every line to the processor; returns the number of lines read."""
    n = 0
    for n, raw in enumerate(lines, 1):
        raw = raw.rstrip(b"\r\n") if raw.endswith(b"\n") else raw
        if not raw.strip():
            continue
        handled = processor.handle(raw, FileSource(file=name, line=n), _now())
        if handled.error is not None:
            trace = "".join(traceback.format_exception(handled.error))
            print(f"rxgate check: {name}:{n}: could not complete the checks; the order is "
                  f"flagged rxgate.data.checks_failed\n{trace}", file=sys.stderr)
        for output in handled.outputs:
            out.write(to_json(output) + "\n")
    out.flush()
    return n


def run_check(path: str, *, knowledge_dir: str | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        knowledge = load_knowledge(knowledge_dir)
    except KnowledgeError as e:
        print(f"rxgate check: knowledge cannot be loaded: {e}", file=sys.stderr)
        return 2
    processor = Processor(knowledge, DictHistoryStore())
    if path == "-":
        check_stream(sys.stdin.buffer, "-", processor, out)
        return 0
    try:
        handle = open(path, "rb")
    except OSError as e:
        print(f"rxgate check: cannot open {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    with handle:
        check_stream(handle, path, processor, out)
    return 0
