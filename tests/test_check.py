"""`rxgate check` on real files and standard input, as a user runs it."""
from __future__ import annotations

import base64
import io
import json
import select
import subprocess
import sys

import pytest

from tests.conftest import CONFORMANCE as CONFORM, example


def rxgate(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", *args], input=stdin,
                          capture_output=True, timeout=120)


def lines(out: bytes) -> list[dict]:
    return [json.loads(line) for line in out.decode().splitlines()]


def jsonl(*docs) -> bytes:
    return b"".join((d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n" for d in docs)


def test_contract_conformance_smoke_stream():
    run = subprocess.run([sys.executable, str(CONFORM / "conform.py"), str(CONFORM / "smoke.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert run.stdout.strip().endswith("conformance: 0 breaches"), run.stdout
    assert run.returncode == 0


def test_conformance_script_reports_a_breach(tmp_path):
    """The script can fail: an output whose outcome disagrees with its findings and a placed
    event with no decision are both reported."""
    good = rxgate("check", str(CONFORM / "smoke.jsonl"))
    out = lines(good.stdout)
    first = next(o for o in out if o.get("event_id") == "smoke-1")
    first["outcome"] = "flagged" if first["outcome"] == "approved" else "approved"
    broken = [first] + [o for o in out if o.get("event_id") not in ("smoke-1", "smoke-2")]
    output = tmp_path / "output.jsonl"
    output.write_text("".join(json.dumps(o) + "\n" for o in broken), encoding="utf-8")
    run = subprocess.run([sys.executable, str(CONFORM / "conform.py"),
                          str(CONFORM / "smoke.jsonl"), str(output)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "outcome" in run.stdout and "event smoke-2: 0 decisions, want 1" in run.stdout
    assert run.stdout.strip().endswith("conformance: 2 breaches"), run.stdout


def test_smoke_stream_decisions(tmp_path):
    run = rxgate("check", str(CONFORM / "smoke.jsonl"))
    assert run.returncode == 0, run.stderr
    out = lines(run.stdout)
    kinds = [(o["schema"], o.get("event_id")) for o in out]
    assert kinds == [("rx.decision/1", "smoke-1"), ("rx.decision/1", "smoke-2"),
                     ("rx.invalid/1", None), ("rx.decision/1", "smoke-3")]
    assert out[0]["outcome"] == "approved"
    assert out[1]["outcome"] == "flagged" and out[1]["findings"][0]["rule_id"] == "isatuximab.dose.per_kg"
    assert out[2]["source"] == {"file": str(CONFORM / "smoke.jsonl"), "line": 4}
    assert out[3]["findings"][0]["rule_id"] == "rxgate.data.no_monograph"


def test_reads_standard_input_and_names_it(placed):
    run = rxgate("check", "-", stdin=jsonl(placed, b"not json"))
    assert run.returncode == 0
    decision, letter = lines(run.stdout)
    assert decision["event_id"] == placed["event_id"]
    assert letter["source"] == {"file": "-", "line": 2} and letter["error"]["kind"] == "json"


def test_every_kind_of_bad_line_becomes_a_dead_letter_and_nothing_stops(tmp_path, placed):
    bad_utf8 = b'{"schema": "rx.order/1", "event_id": "\xff\xfe"}'
    huge = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    no_dose = json.loads(json.dumps(placed))
    no_dose["event_id"] = "e-no-dose"
    no_dose["order"]["dose"]["value"] = 0
    last = dict(placed, event_id="e-last")
    path = tmp_path / "orders.jsonl"
    path.write_bytes(jsonl(bad_utf8, b"[1, 2, 3]", b"{oops", no_dose, huge, b"", b"   ", last))
    run = rxgate("check", str(path))
    assert run.returncode == 0, run.stderr
    out = lines(run.stdout)
    # the empty line 6 is no input; a line of spaces is (a json dead letter, as in the stream)
    assert [o.get("error", {}).get("kind") for o in out] == [
        "encoding", "schema", "json", "schema", "too_large", "json", None]
    enc, arr, js, schema, large, spaces, decision = out
    assert spaces["payload"] == "   " and spaces["source"]["line"] == 7
    assert base64.b64decode(enc["payload"]) == bad_utf8 and enc["payload_encoding"] == "base64"
    assert arr["payload"] == "[1, 2, 3]" and "expected a JSON object" in arr["error"]["detail"]
    assert js["payload"] == "{oops"
    assert "order.dose.value: Input should be greater than 0" in schema["error"]["detail"]
    assert json.loads(schema["payload"])["event_id"] == "e-no-dose"  # the whole original line
    assert large["payload_truncated"] is True and len(large["payload"].encode()) == 64 * 1024
    assert large["source"]["line"] == 5
    assert decision["event_id"] == "e-last" and decision["schema"] == "rx.decision/1"


def test_cancellation_and_duplicates_write_nothing_but_shape_history(placed, cancelled):
    second = json.loads(json.dumps(placed))
    second.update(event_id="e-2")
    second["order"].update(order_id="ORD-1002", scheduled_for="2026-03-05T09:00:00Z")
    cancel_first = dict(cancelled)  # cancels ORD-1001
    third = json.loads(json.dumps(second))
    third["event_id"] = "e-3"
    third["order"]["order_id"] = "ORD-1003"
    # ORD-1001 (day 1), ORD-1002 (day 4: too soon), cancel ORD-1001, repeat of ORD-1002's event,
    # ORD-1003 on day 4 again: a duplicate of ORD-1002's day, but no longer too soon after ORD-1001
    run = rxgate("check", "-", stdin=jsonl(placed, second, cancel_first, second, third))
    out = lines(run.stdout)
    assert [o["event_id"] for o in out] == [placed["event_id"], "e-2", "e-3"]
    rules = lambda o: {f["rule_id"] for f in o["findings"]}
    assert "isatuximab.interval.too_soon_after_previous" in rules(out[1])
    assert "isatuximab.interval.too_soon_after_previous" not in rules(out[2])
    assert "isatuximab.interval.duplicate" in rules(out[2])


def test_missing_file_is_a_clear_error():
    run = rxgate("check", "/nonexistent/orders.jsonl")
    assert run.returncode == 2 and run.stdout == b""
    assert b"cannot open /nonexistent/orders.jsonl" in run.stderr


def test_same_input_same_decisions_apart_from_decided_at(tmp_path):
    first = lines(rxgate("check", str(CONFORM / "smoke.jsonl")).stdout)
    again = lines(rxgate("check", str(CONFORM / "smoke.jsonl")).stdout)
    strip = lambda os: [{k: v for k, v in o.items() if k not in ("decided_at", "received_at")} for o in os]
    assert strip(first) == strip(again)


def test_the_contract_example_gives_the_expected_decision():
    run = rxgate("check", "-", stdin=jsonl(example("order-placed.json")))
    (decision,) = lines(run.stdout)
    assert decision["outcome"] == "approved" and decision["severity"] == "info"
    assert {f["rule_id"] for f in decision["findings"]} == {
        "isatuximab.dose.first_dose_premedication", "isatuximab.combination.immunomodulator"}
    assert decision["knowledge_version"] == "2026.11.3"


def test_a_reader_that_goes_away_is_not_an_error(tmp_path):
    """`rxgate check big.jsonl | head -1`: no traceback, the Unix exit code for SIGPIPE."""
    smoke = (CONFORM / "smoke.jsonl").read_bytes()
    big = tmp_path / "big.jsonl"
    big.write_bytes(smoke * 400)
    proc = subprocess.Popen([sys.executable, "-m", "rxgate.cli", "check", str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert json.loads(first)["schema"] == "rx.decision/1"
    assert b"Traceback" not in err


def test_a_dead_letter_keeps_the_line_exactly_but_its_one_terminator(tmp_path, placed):
    """One "\\n" or one "\\r\\n" ends a line; every other byte, a "\\r" too, is the input's."""
    ok = json.dumps(placed).encode()
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"{oops\r\n" + b"{oops\r\r\n" + b"\r\n" + b"\n" + b"\x0b\n" + b"\x0c\r\n"
                     + b" \t \n" + b"{oops\r\r\r\n" + ok + b"\r\n" + b"{last\r")
    run = rxgate("check", str(path))
    assert run.returncode == 0, run.stderr
    out = lines(run.stdout)
    letters = [(o["source"]["line"], o["payload"]) for o in out if o["schema"] == "rx.invalid/1"]
    assert letters == [(1, "{oops"), (2, "{oops\r"), (5, "\x0b"), (6, "\x0c"), (7, " \t "),
                       (8, "{oops\r\r"), (10, "{last\r")]  # lines 3 and 4 are empty: no input
    assert [o["event_id"] for o in out if o["schema"] == "rx.decision/1"] == [placed["event_id"]]
    assert all(o["error"]["kind"] == "json" for o in out if o["schema"] == "rx.invalid/1")


def test_hostile_lines_never_stop_the_file(tmp_path, placed):
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    year1 = json.loads(json.dumps(placed))
    year1["occurred_at"] = "0001-01-01T00:00:00Z"
    big_cycle = json.loads(json.dumps(placed))
    big_cycle["order"]["regimen"]["cycle"] = 2**31
    last = dict(placed, event_id="e-last")
    path = tmp_path / "orders.jsonl"
    path.write_bytes(jsonl(deep, b"[" * 5000 + b"]" * 5000, year1, big_cycle, last))
    run = rxgate("check", str(path))
    assert run.returncode == 0 and run.stderr == b"", run.stderr
    out = lines(run.stdout)
    assert [o.get("error", {}).get("kind") for o in out] == ["json", "json", "schema", "schema", None]
    assert out[-1]["event_id"] == "e-last"


# --- lines read in batches (check._line_batches): what is there to read, parsed, applied and
# written together, with the same outputs as one line at a time ---------------------------


def _one_at_a_time(data: bytes) -> list[dict]:
    """The outputs of the lines handled one by one through Processor.handle (the reference)."""
    import datetime as dt

    from rxgate.check import line_content
    from rxgate.contract import FileSource, to_json
    from rxgate.knowledge import load_knowledge
    from rxgate.processor import DictHistoryStore, Processor

    processor = Processor(load_knowledge(), DictHistoryStore())
    out = []
    for n, raw in enumerate(io.BytesIO(data), 1):
        raw = line_content(raw)
        if raw:
            handled = processor.handle(raw, FileSource(file="in", line=n),
                                       dt.datetime.now(dt.timezone.utc))
            out += [json.loads(to_json(o)) for o in handled.outputs]
    return out


class _Trickle(io.RawIOBase):
    """A reader whose read1 gives a few bytes at a time (a slow pipe): lines split anywhere."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.at, self.sizes, self.calls = data, 0, sizes, 0

    def read1(self, n: int = -1) -> bytes:
        size = min(n, self.sizes[self.calls % len(self.sizes)])
        self.calls += 1
        piece = self.data[self.at:self.at + size]
        self.at += len(piece)
        return piece


def _without_times(outputs: list[dict]) -> list[dict]:
    return [{k: v for k, v in o.items() if k not in ("decided_at", "received_at", "decision_id")}
            for o in outputs]


@pytest.mark.parametrize("reader", ["file", "trickle", "iterable"])
def test_lines_read_in_batches_give_what_one_at_a_time_gives(placed, cancelled, reader):
    """CRLF lines, a "\\r" kept before a CRLF, empty lines, a line longer than a read (and than
    the size limit), a last line without a line feed: every output and line number as the
    line-by-line reference gives them, however the input arrives."""
    from rxgate.check import _CHUNK, check_stream
    from rxgate.knowledge import load_knowledge
    from rxgate.processor import MAX_INPUT_BYTES, DictHistoryStore, Processor

    events = []
    for i in range(60):
        p = json.loads(json.dumps(placed))
        p["event_id"] = f"e-{i}"
        p["order"]["order_id"] = f"o-{i % 7}"
        p["patient"]["patient_id"] = f"p-{i % 3}"
        events.append(json.dumps(p, separators=(",", ":")).encode())
    data = b"\n".join(events[:20]) + b"\r\n\r\n\n" + b"{oops\r\r\n" \
        + b'{"long":"' + b"x" * (2 * _CHUNK) + b'"}\n' + b"y" * (MAX_INPUT_BYTES + 10) + b"\n" \
        + json.dumps(cancelled).encode() + b"\n" + b"\r\n".join(events[20:]) + b"\n{last\r"
    if reader == "file":
        source = io.BytesIO(data)
    elif reader == "trickle":
        source = _Trickle(data, [1, 7, 300, 5000, 2, 90_000])
    else:
        source = iter(io.BytesIO(data).readlines())
    sink = io.StringIO()
    read = check_stream(source, "in", Processor(load_knowledge(), DictHistoryStore()), sink)
    got = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert read == data.count(b"\n") + 1
    assert _without_times(got) == _without_times(_one_at_a_time(data))
    letters = [(o["source"]["line"], o["error"]["kind"]) for o in got if o["schema"] == "rx.invalid/1"]
    assert letters == [(23, "json"), (24, "schema"), (25, "too_large"), (67, "json")]
    assert sum(o["schema"] == "rx.decision/1" for o in got) == 60


def test_a_line_written_to_a_pipe_is_answered_before_the_next_is_written(placed):
    """`rxgate check -` as a co-process: each line's decision comes out while standard input
    stays open (lines are batched only as far as they have arrived)."""
    proc = subprocess.Popen([sys.executable, "-m", "rxgate.cli", "check", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for i in range(3):
            proc.stdin.write(json.dumps(dict(placed, event_id=f"pipe-{i}")).encode() + b"\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no answer to line {i + 1} while the input stays open"
            assert json.loads(proc.stdout.readline())["event_id"] == f"pipe-{i}"
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
