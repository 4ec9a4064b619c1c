"""`rxgate check FILE|-`: the offline shell over the same Processor the stream uses.

`rxgate check --fhir FILE|-` reads FHIR R4 Bundles instead (one Bundle, or JSON Lines of them),
maps each order with `rxgate.fhir` and hands the event bytes to the same Processor.

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
import gc
import json
import sys
import traceback
from typing import BinaryIO, Iterator, TextIO

from .contract import DeadLetter, FileSource, InvalidError, OrderEvent, to_json, trusted
from .knowledge import KnowledgeError, load_knowledge
from .processor import (MAX_INPUT_BYTES, TRUNCATED_PAYLOAD_BYTES, DictHistoryStore, Handled,
                        Processor, _payload_text)


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
    """Feed every line to the processor; returns the number of lines read.

    While it runs, the garbage collector looks at young objects every 50,000 allocations
    instead of every 700: an order makes a few hundred short-lived objects and the patients'
    histories are long-lived, so the default spends a fifth of the time re-scanning them.
    """
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        return _check_lines(lines, name, processor, out)
    finally:
        gc.set_threshold(*threshold)


# what is read at a time (read1: at most this, and only what is there now)
_CHUNK = 1 << 14


def _line_batches(lines: BinaryIO) -> Iterator[list[bytes]]:
    """The input's lines in batches: each batch the lines whose terminator is there to read
    now (read1 of an open file or standard input: at most one read, which waits only while
    nothing is there, so a line written to a pipe is answered before the next is written),
    a line's terminator already removed (line_content). Anything without read1 (an iterable of
    lines) gives one line at a time, handled before the next is pulled."""
    read1 = getattr(lines, "read1", None)
    if read1 is None:
        for raw in lines:
            yield [line_content(raw)]
        return
    pending: list[bytes] = []  # the pieces of a line not ended yet (joined once, when it is)
    while True:
        chunk = read1(_CHUNK)
        if not chunk:
            if pending:  # a last line without a line feed: kept as it is (a "\r" stays)
                yield [b"".join(pending)]
            return
        parts = chunk.split(b"\n")
        rest = parts.pop()  # after the chunk's last line feed: the start of a line
        if parts:
            if pending:
                pending.append(parts[0])
                parts[0] = b"".join(pending)
                pending = []
            for i, raw in enumerate(parts):
                if raw[-1:] == b"\r":  # one "\r" before the line feed: a CRLF line's end
                    parts[i] = raw[:-1]
            yield parts
        if rest:
            pending.append(rest)


def _check_lines(lines: BinaryIO, name: str, processor: Processor, out: TextIO) -> int:
    """Each batch of lines (_line_batches) in three passes, each line's work in its order:
    parse every line, apply every event to its patient's history, write every output. The
    same outputs in the same order as a line at a time (parsing touches no history), each
    pass's code kept hot in the processor's caches: about 3 % fewer cycles in callgrind's
    cache model, within the noise of wall-clock runs on the development machine."""
    n = 0
    write = out.write
    parse, apply = processor.parse, processor.apply
    plain_name = type(name) is str
    for batch in _line_batches(lines):
        parsed: list[tuple[int, OrderEvent | Handled, dt.datetime]] = []
        for raw in batch:
            n += 1
            if not raw:
                continue
            try:
                # the origin as validation would give it (a name and a line number >= 1),
                # made only for a dead letter (the Processor calls it then)
                origin = (lambda n=n: trusted(FileSource, {"file": name, "line": n})) \
                    if plain_name else FileSource(file=name, line=n)
                now = _now()  # the time of the line's decision or dead letter
                parsed.append((n, parse(raw, origin, now), now))
            except Exception:
                _defect(name, n)
        texts: list[str] = []
        for at, event, now in parsed:
            if type(event) is Handled:
                handled = event
            else:
                try:
                    handled = apply(event, now)
                except Exception:
                    _defect(name, at)
                    continue
            if handled.error is not None:
                trace = "".join(traceback.format_exception(handled.error))
                what = ("the order is flagged rxgate.data.checks_failed"
                        if handled.kind == "decision" else "it is written as a dead letter")
                print(f"rxgate check: {name}:{at}: could not complete the checks (a defect in "
                      f"rxgate); {what}\n{trace}", file=sys.stderr)
            for output in handled.outputs:
                texts.append(to_json(output))
        if texts:
            texts.append("")  # a line feed after the last one too
            write("\n".join(texts))
    out.flush()
    return n


def _defect(name: str, n: int) -> None:
    """A line the processor could not handle (a defect): said with its traceback; no output."""
    print(f"rxgate check: {name}:{n}: could not handle this line (a defect in rxgate); "
          f"no output for it\n{traceback.format_exc()}", file=sys.stderr)


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


# --- `rxgate check --fhir FILE`: FHIR R4 Bundles through the same Processor -----------------


def _fhir_documents(data: bytes) -> list[tuple[int, bytes]]:
    """(line number, bytes) of each Bundle: the whole file when it is one JSON document (a
    pretty-printed Bundle), else one per non-blank line (JSON Lines)."""
    try:
        json.loads(data)
        return [(1, data)] if data.strip() else []
    except ValueError:
        pass
    docs = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if raw.strip():
            docs.append((n, raw))
    return docs


def _fhir_dead_letter(raw: bytes, name: str, line: int, kind: str, detail: str) -> DeadLetter:
    truncated = len(raw) > MAX_INPUT_BYTES
    payload, encoding = _payload_text(raw[:TRUNCATED_PAYLOAD_BYTES] if truncated else raw, truncated)
    return DeadLetter(received_at=_now(), source=FileSource(file=name, line=line),
                      error=InvalidError(kind=kind, detail=detail), payload=payload,
                      payload_encoding=encoding, payload_truncated=True if truncated else None)


def check_fhir_document(raw: bytes, name: str, line: int, processor: Processor,
                        out: TextIO) -> None:
    """One Bundle: each order it holds gets the decision the stream would give its event.

    The patient's other active orders are applied to the history first (their decisions are not
    written); an order that lacks a fact the contract requires (dose, route, time, drug) cannot
    be decided and is written as a dead letter naming what FHIR did not give.
    """
    from .fhir import FhirError, orders_from_bundle

    now = _now()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        out.write(to_json(_fhir_dead_letter(raw, name, line, "encoding", f"not UTF-8: {e}")) + "\n")
        return
    try:
        bundle = json.loads(text)
    except ValueError as e:
        out.write(to_json(_fhir_dead_letter(raw, name, line, "json", str(e))) + "\n")
        return
    try:
        orders = orders_from_bundle(bundle, now=now)
    except FhirError as e:
        out.write(to_json(_fhir_dead_letter(raw, name, line, "schema", str(e))) + "\n")
        return
    except Exception as e:  # a defect in the mapping: say so, and go on with the next Bundle
        print(f"rxgate check: {name}:{line}: the FHIR mapping failed\n"
              + "".join(traceback.format_exception(e)), file=sys.stderr)
        out.write(to_json(_fhir_dead_letter(
            raw, name, line, "schema", f"the Bundle could not be mapped ({type(e).__name__})")) + "\n")
        return
    origin = FileSource(file=name, line=line)
    for order in orders:
        for gap in order.gaps:
            print(f"rxgate check: {name}:{line}: {order.request}: {gap.field}: {gap.detail}",
                  file=sys.stderr)
        if order.missing:
            detail = "; ".join(f"{g.field}: {g.detail}" for g in order.gaps
                               if g.field in order.missing)
            out.write(to_json(_fhir_dead_letter(
                raw, name, line, "schema",
                f"{order.request}: cannot be checked: {detail or ', '.join(order.missing)}")) + "\n")
            continue
        for active in order.active_orders:
            processor.handle(json.dumps(active).encode(), origin, now)
        handled = processor.handle(order.event_bytes(), origin, now)
        if handled.error is not None:
            trace = "".join(traceback.format_exception(handled.error))
            print(f"rxgate check: {name}:{line}: could not complete the checks; the order is "
                  f"flagged rxgate.data.checks_failed\n{trace}", file=sys.stderr)
        for output in handled.outputs:
            out.write(to_json(output) + "\n")


def run_check_fhir(path: str, *, knowledge_dir: str | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        knowledge = load_knowledge(knowledge_dir)
    except KnowledgeError as e:
        print(f"rxgate check: knowledge cannot be loaded: {e}", file=sys.stderr)
        return 2
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    except OSError as e:
        print(f"rxgate check: cannot open {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    processor = Processor(knowledge, DictHistoryStore())
    for line, raw in _fhir_documents(data):
        check_fhir_document(raw, path, line, processor, out)
    out.flush()
    return 0
