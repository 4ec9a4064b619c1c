"""No patient id, order id, prescriber id or birth date reaches the worker's logs or /metrics.

A real worker on a broker of its own reads a fuzz-ish corpus whose every identifier is
distinctive: valid orders, duplicates, cancellations, every kind of dead letter (the ids inside
the payloads and in the record keys), fuzz mutations of those, and two injected defects whose
exception messages carry the identifiers (the worst case: Python's own errors quote values):
one in a rule (the order is published flagged rxgate.data.checks_failed, the traceback logged
at ERROR) and one in the history (the record is skipped, logged at ERROR with its traceback).
The defects are injected through a `sitecustomize` on the worker's PYTHONPATH, so the worker
itself is the unchanged `rxgate worker`. Then /metrics is scraped and the worker's whole
stdout/stderr (INFO and ERROR) is searched for every identifier.
"""
from __future__ import annotations

import json
import os
import random
import re
import textwrap
import uuid

import pytest

from rxgate.contract import FileSource
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor
from rxgate.stream.runner import WorkerProcess

from .conftest import now
from .kafka import publish, read_outputs
from .orders import T0, cancelled, on_schedule, placed

pytestmark = pytest.mark.broker

RULE_DEFECT = "defect-in-rule"  # patient.sex values that trigger the injected defects
HISTORY_DEFECT = "defect-in-history"

SITECUSTOMIZE = textwrap.dedent(f'''
    """Injected into the privacy test's worker: defects whose messages quote identifiers."""
    from rxgate.history import PatientHistory
    from rxgate.rules import dose

    _check, _apply = dose.check, PatientHistory.apply

    def _leaky_message(event):
        p, o = event.patient, event.order
        return (f"patient {{p.patient_id}} order {{o.order_id}} prescriber {{o.prescriber_id}} "
                f"born {{p.birth_date}} {{p.birth_date!r}}")

    def check(ctx):
        if ctx.patient.sex == {RULE_DEFECT!r}:
            raise ValueError("a defect in a rule: " + _leaky_message(ctx.event))
        return _check(ctx)

    def apply(self, event, *args, **kw):
        if getattr(getattr(event, "patient", None), "sex", None) == {HISTORY_DEFECT!r}:
            raise KeyError("a defect in the history: " + _leaky_message(event))
        return _apply(self, event, *args, **kw)

    dose.check = check
    PatientHistory.apply = apply
''')


def identity(n: int) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8].upper()
    return {"patient": f"ZPAT{tag}{n:03d}", "order": f"ZORD{tag}{n:03d}",
            "prescriber": f"ZDOC{tag}{n:03d}",
            "birth": f"19{31 + n % 60:02d}-{1 + n % 12:02d}-{1 + n % 27:02d}"}


def event_for(ids: dict[str, str], n: int, *, sex: str = "female") -> dict:
    doc = placed(ids["patient"], ids["order"], on_schedule(1 + n % 3, 1), cycle=1 + n % 3, day=1)
    doc["order"]["prescriber_id"] = ids["prescriber"]
    doc["patient"]["birth_date"] = ids["birth"]
    doc["patient"]["sex"] = sex
    return doc


def corpus(rng: random.Random) -> tuple[list[tuple[bytes, bytes]], list[dict], int]:
    """(key, value) records, the identities in them, and how many hit the history defect."""
    records, people, history_defects = [], [], 0
    for n in range(40):
        ids = identity(n)
        people.append(ids)
        key = ids["patient"].encode()
        doc = event_for(ids, n)
        raw = json.dumps(doc).encode()
        records += [(key, raw), (key, raw)]  # a decision, then a duplicate
        bad = json.loads(raw)
        bad["order"]["dose"]["value"] = 0
        records.append((key, json.dumps(bad).encode()))  # schema
        big = json.loads(raw)
        big["order"]["regimen"]["cycle"] = 2**31
        big["event_id"] = str(uuid.uuid4())
        records.append((key, json.dumps(big).encode()))  # schema: a bound
        records.append((key, raw[: rng.randrange(10, len(raw) - 1)]))  # json: truncated
        records.append((key, raw[:-1] + b', "x": NaN}'))  # json: NaN
        records.append((key, raw[:-1] + b', "order": {}}'))  # json: duplicate key
        records.append((key, b"\xff" + raw))  # encoding
        records.append((key, raw[:-1] + b', "pad": "' + b"x" * (1024 * 1024) + b'"}'))  # too_large
        for _ in range(3):  # fuzz: byte mutations of the order
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(data))
                data[at: at + rng.randint(0, 3)] = bytes([rng.randrange(256)])
            records.append((key, bytes(data)))
        if n % 4 == 0:
            records.append((key, json.dumps(cancelled(ids["patient"], ids["order"], T0)).encode()))
        if n % 5 == 0:
            defect = event_for(ids, n, sex=RULE_DEFECT)
            defect["event_id"] = str(uuid.uuid4())
            records.append((key, json.dumps(defect).encode()))  # checks_failed, traceback logged
        if n % 5 == 1:
            defect = event_for(ids, n, sex=HISTORY_DEFECT)
            defect["event_id"] = str(uuid.uuid4())
            records.append((key, json.dumps(defect).encode()))  # skipped, traceback logged
            history_defects += 1
    return records, people, history_defects


def expected_outputs(records: list[tuple[bytes, bytes]]) -> int:
    processor = Processor(load_knowledge(None), DictHistoryStore())
    return sum(len(processor.handle(value, FileSource(file="corpus", line=n), now()).outputs)
               for n, (_, value) in enumerate(records, 1))


def forms(ids: dict[str, str]) -> list[str]:
    """Every way an identifier could be written: as is, and a date also as Python writes it."""
    y, m, d = (int(x) for x in ids["birth"].split("-"))
    return [ids["patient"], ids["order"], ids["prescriber"], ids["birth"],
            f"{y}, {m}, {d}", f"{y:04d}{m:02d}{d:02d}"]


def test_no_identifier_reaches_the_logs_or_the_metrics(fresh_broker, tmp_path):
    records, people, history_defects = corpus(random.Random(5))
    want = expected_outputs(records) - history_defects  # a history defect skips its record
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"PYTHONPATH": os.pathsep.join([str(inject), os.environ.get("PYTHONPATH", "")]),
           "RXGATE_LOG_LEVEL": "info"}
    log = tmp_path / "worker.log"
    with WorkerProcess(fresh_broker.url, group="rxgate-privacy", partitions=4, log_path=log,
                       env=env) as worker:
        worker.wait_healthy()
        publish(fresh_broker.bootstrap, records)
        outs = read_outputs(fresh_broker.bootstrap, until=lambda outs: len(outs) >= want,
                            timeout=180)
        metrics = worker.metrics_text()
        worker.stop()
    logs = log.read_text(encoding="utf-8", errors="replace")

    # the run did go through every path whose logging is under test
    assert len(outs) == want
    assert "rxgate.data.checks_failed" in metrics
    assert re.search(r'rxgate_processing_errors_total [1-9]', metrics), metrics
    for kind in ("encoding", "json", "schema", "too_large"):
        assert re.search(rf'rxgate_invalid_total{{kind="{kind}"}} [1-9]', metrics), kind
    assert logs.count("Traceback (most recent call last)") >= 2, logs[-3000:]
    assert "ValueError" in logs and "KeyError" in logs
    assert " INFO " in logs and " ERROR " in logs  # both levels were captured (rxgate.logs text format)

    leaks = [(form, where) for ids in people for form in forms(ids)
             for where, text in (("logs", logs), ("/metrics", metrics)) if form in text]
    assert not leaks, f"identifiers found: {leaks[:10]}"
