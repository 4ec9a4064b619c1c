"""`rxgate check FILE|-`: the offline shell over the same Processor the stream uses.

Reads order events as JSON Lines (bytes, so a line that is not UTF-8 still becomes a dead letter
with its original bytes), writes one JSON line per output to standard output, never stops on a
bad line. Exit 0 when the whole input was read; 2 with a message when it cannot be opened or the
knowledge cannot be loaded.

A line is the bytes up to a line feed. Its terminator is removed and nothing else: one "\n",
or one "\r\n" (a CRLF file); a "\r" before that, or at the end of a last line without "\n",
is part of the line and stays in its dead letter. A line is handled exactly as the stream
handles a record with those bytes, with one exception: an empty line (no byte before its
terminator) is not an input and is skipped. A line of spaces, tabs, vertical tabs or form
feeds is an input: a dead letter of kind json, as in the stream.
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


def line_content(line: bytes) -> bytes:
    """The line without its terminator: one "\r\n" or one "\n", nothing more."""
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def check_stream(lines: BinaryIO, name: str, processor: Processor, out: TextIO) -> int:
    """Feed every line to the processor; returns the number of lines read."""
    n = 0
    for n, raw in enumerate(lines, 1):
        raw = line_content(raw)
        if not raw:
            continue
        try:
            handled = processor.handle(raw, FileSource(file=name, line=n), _now())
        except Exception:  # a defect: say so, and go on with the next line
            print(f"rxgate check: {name}:{n}: could not handle this line (a defect in rxgate); "
                  f"no output for it\n{traceback.format_exc()}", file=sys.stderr)
            continue
        if handled.error is not None:
            trace = "".join(traceback.format_exception(handled.error))
            what = ("the order is flagged rxgate.data.checks_failed" if handled.kind == "decision"
                    else "it is written as a dead letter")
            print(f"rxgate check: {name}:{n}: could not complete the checks (a defect in "
                  f"rxgate); {what}\n{trace}", file=sys.stderr)
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
