"""The same fuzz corpus through `rxgate check` (a real subprocess on a real file) and through
the Processor gives the same outputs, in the same order (times and `source` aside).

The corpus is built deterministically (a seeded random) from the fuzz harness' inputs: valid
orders that build up patients' histories (duplicates, cancellations), every kind of broken
line, raw JSON tokens, nesting, control bytes, an over-size line. A line of the file is one
input: inputs holding a line feed cannot be a line and are left out, as is the empty input
(an empty line is not an input); an input ending in "\\r" is written with a "\\r\\n" ending, so
`rxgate check` must keep that "\\r".
"""
from __future__ import annotations

import json
import random
import subprocess
import sys

from .harness import (
    CANCELLED, EXTREMES, PLACED, PLACED_BYTES, RAW_TOKENS, SEEDS, SPLICES, WRONG_TYPES,
    appended, check_input, fresh_processor, nested, paths, replaced, with_raw_token,
)
from rxgate.contract import FileSource, to_json
from rxgate.processor import MAX_INPUT_BYTES

TIMES = ("decided_at", "received_at", "source")


def corpus(seed: int = 8, size: int = 3000) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    placed_paths, cancelled_paths = paths(PLACED), paths(CANCELLED)
    while len(out) < size:
        pick = rng.random()
        if pick < 0.25:  # a valid order for one of a few patients, some events repeated
            doc = json.loads(PLACED_BYTES)
            n = rng.randrange(400)
            doc["event_id"] = f"e-{n}"
            doc["patient"]["patient_id"] = f"P-{n % 7}"
            doc["order"]["order_id"] = f"O-{n % 50}"
            doc["order"]["scheduled_for"] = f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}T09:00:00Z"
            raw = json.dumps(doc).encode()
        elif pick < 0.30:
            doc = json.loads(json.dumps(CANCELLED))
            n = rng.randrange(400)
            doc["event_id"] = f"c-{n}"
            doc["patient"]["patient_id"] = f"P-{n % 7}"
            doc["order"]["order_id"] = f"O-{n % 50}"
            raw = json.dumps(doc).encode()
        elif pick < 0.55:
            doc, where = rng.choice([(PLACED, placed_paths), (CANCELLED, cancelled_paths)])
            raw = json.dumps(replaced(doc, rng.choice(where), rng.choice(WRONG_TYPES + EXTREMES))).encode()
        elif pick < 0.65:
            raw = with_raw_token(PLACED, rng.choice(placed_paths), rng.choice(RAW_TOKENS))
        elif pick < 0.85:
            data = bytearray(rng.choice(SEEDS))
            for _ in range(rng.randint(1, 5)):
                at = rng.randrange(len(data) + 1)
                if rng.random() < 0.5:
                    data[at:at] = rng.choice(SPLICES)
                else:
                    del data[at: at + rng.randint(1, 30)]
            raw = bytes(data)
        elif pick < 0.95:
            raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        else:
            raw = rng.choice([appended(PLACED_BYTES, nested(rng.choice([150, 199, 200, 5000]))),
                              b"\x0b", b"\x0c", b" ", b"\t", b"\x00", b"\r", b"{oops\r\r",
                              b"\xef\xbb\xbf" + PLACED_BYTES])
        if raw and b"\n" not in raw:
            out.append(raw)
    out.append(appended(PLACED_BYTES, b'"' + b"y" * MAX_INPUT_BYTES + b'"'))  # too large
    return out


def test_rxgate_check_and_the_processor_agree_on_a_fuzz_corpus(tmp_path):
    inputs = corpus()
    rng = random.Random(1)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"".join(raw + (b"\r\n" if raw.endswith(b"\r") or rng.random() < 0.3 else b"\n")
                              for raw in inputs))

    run = subprocess.run([sys.executable, "-m", "rxgate.cli", "check", str(path)],
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr == b"", run.stderr[-2000:]  # no defect reported on any line
    from_check = [json.loads(line) for line in run.stdout.decode("utf-8").splitlines()]

    processor = fresh_processor()
    from_processor = []
    for n, raw in enumerate(inputs, 1):
        handled = check_input(processor, raw, save=False)  # the fuzz invariants, in sequence
        from_processor += [json.loads(to_json(o)) for o in handled.outputs]
        assert all(o.source == FileSource(file="fuzz", line=1) for o in handled.outputs
                   if hasattr(o, "payload"))

    strip = lambda outs: [{k: v for k, v in o.items() if k not in TIMES} for o in outs]
    assert len(from_check) == len(from_processor)
    assert strip(from_check) == strip(from_processor)
    # and check's dead letters name their lines, in order
    lines = [o["source"]["line"] for o in from_check if o["schema"] == "rx.invalid/1"]
    assert lines == sorted(lines) and all(o["source"]["file"] == str(path)
                                          for o in from_check if o["schema"] == "rx.invalid/1")
    kinds = {o["error"]["kind"] for o in from_check if o["schema"] == "rx.invalid/1"}
    assert kinds == {"encoding", "json", "schema", "too_large"}
    assert sum(o["schema"] == "rx.decision/1" for o in from_check) > 300
