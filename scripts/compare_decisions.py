"""Byte-for-byte comparison of `rxgate check` output between this worktree and a git revision.

    python scripts/compare_decisions.py [--rev main] [--keep DIR]

Builds a large, varied corpus of input lines (deterministic; nothing is downloaded): long
isatuximab courses (tests/clinical/courses.py, all three variants), the offline benchmark's
workload, the clinical perturbations the rules look at (units, routes, infusion, labs and their
units and ages, pregnancy, allergies, conditions, co-medications, codes, trade names, unknown
drugs, regimens off plan), hostile inputs (BOM, NaN/Infinity, huge numbers, duplicate keys,
nesting at and over 200, lone surrogates, not UTF-8, over 1 MiB, not an object, the fuzz
regressions) and thousands of random structural mutations of valid events (a value replaced,
removed or added), which reach most validation errors. Feeds the whole corpus, as one stream,
to `rxgate check` of both revisions (each in its own interpreter, PYTHONPATH pointing at that
revision's services/), with the clock fixed (`decided_at` / `received_at`), and compares the
outputs byte for byte. Prints the number of lines, of outputs per kind and of differences
(with the first few); exit 1 when anything differs.

Used to show that a speed-up (issue 10, part 2) changes no decision and no dead letter. A
script, not a test: after a merge the revision compared against is this code.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((REPO / "docs" / "examples" / "order-placed.json").read_text(encoding="utf-8"))
CANCEL = json.loads((REPO / "docs" / "examples" / "order-cancelled.json").read_text(encoding="utf-8"))

# `rxgate check` with the clock fixed: two clocks, one with microseconds and one without, so
# that both spellings of a time in the output are compared
RUNNER = r"""
import datetime as dt, sys
import rxgate.check as check
times = iter([dt.datetime(2026, 11, 25, 22, 31, 9, 123456, tzinfo=dt.timezone.utc),
              dt.datetime(2026, 11, 25, 22, 31, 10, tzinfo=dt.timezone.utc)] * 10_000_000)
check._now = lambda: next(times)
sys.exit(check.run_check(sys.argv[1]))
"""


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def courses(rng: random.Random) -> list[bytes]:
    sys.path.insert(0, str(REPO))
    from tests.clinical.courses import course

    out = []
    for seed in range(8):
        for flags in ({}, {"same_day_orders": True}, {"replacements": True}):
            out += [json.dumps(e).encode() for e in course(seed + 100 * len(flags), 90, **flags)]
    return out


def bench(n: int) -> list[bytes]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_processor import events

    return events(n, 40)


def _set(doc: dict, path: str, value) -> None:
    *head, last = path.split(".")
    node = doc
    for k in head:
        node = node.setdefault(k, {}) if isinstance(node, dict) else node[int(k)]
    if value is _DROP:
        node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


_DROP = object()
START = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)

# clinical perturbations: (path, values); each event of a patient gets a few of them
PERTURB: list[tuple[str, list]] = [
    ("order.dose", [{"value": 700, "unit": "mg"}, {"value": 0.7, "unit": "g"},
                    {"value": 700000, "unit": "mcg"}, {"value": 10, "unit": "mg/kg"},
                    {"value": 12, "unit": "mg/kg"}, {"value": 8.9, "unit": "mg/kg"},
                    {"value": 11.0014, "unit": "mg/kg"}, {"value": 400, "unit": "mg/m2"},
                    {"value": 5, "unit": "units"}, {"value": 1, "unit": "units/kg"},
                    {"value": 3, "unit": "mL"}, {"value": 1e9, "unit": "mg"},
                    {"value": 770.0001, "unit": "mg"}, {"value": 629.99, "unit": "mg"},
                    {"value": 5e-300, "unit": "mg/m2"}]),
    ("order.route", ["IV", "iv", " intravenous ", "SC", "po", "47625008", "IVPB", "bogus", "IT"]),
    ("order.infusion", [_DROP, {}, {"duration_min": 100}, {"duration_min": 180},
                        {"duration_min": 240.5, "volume_ml": 500},
                        {"volume_ml": 250, "duration_min": 0.01}, {"volume_ml": 0.001,
                                                                   "duration_min": 99999}]),
    ("order.frequency", [_DROP, {"count": 1, "period": 7, "period_unit": "d"},
                         {"count": 2, "period": 1, "period_unit": "wk"},
                         {"count": 1, "period": 336, "period_unit": "h"},
                         {"count": 1000, "period": 0.01, "period_unit": "h"},
                         {"count": 1, "period": 10000, "period_unit": "wk"}]),
    ("order.regimen", [_DROP, {}, {"name": "Isa-Pd"}, {"cycle": 1, "day": 1},
                       {"cycle": 1, "day": 8}, {"cycle": 2, "day": 15}, {"cycle": 3, "day": 2},
                       {"cycle": 1000, "day": 366}, {"cycle": 7}, {"day": 15}]),
    ("order.drug", [{"name": "isatuximab"}, {"name": "ISATUXIMAB "}, {"name": "Sarclisa"},
                    {"name": "xacoyi"}, {"name": "x", "code": {"system": "rxnorm", "value": "2283218"}},
                    {"name": "y", "code": {"system": "ATC", "value": "l01fc02"}},
                    {"name": "isatuximab", "code": {"system": "snomed", "value": "1"}},
                    {"name": "unknowndrug"}, {"name": "pomalidomide"}]),
    ("patient.weight_kg", [_DROP, 70, 70.5, 0.1, 1000, 45]),
    ("patient.height_cm", [_DROP, 165, 10, 300]),
    ("patient.sex", [_DROP, "female", "male", "M", " F ", "unknown"]),
    ("patient.birth_date", [_DROP, "1955-04-12", "2010-01-01", "1990-02-28", "2014-03-02",
                            "1971-03-02", "1900-01-01"]),
    ("patient.pregnant", [_DROP, True, False]),
    ("patient.lactating", [_DROP, True, False]),
    ("patient.allergies", [_DROP, [], ["penicillin"], ["Isatuximab"], ["sarclisa (rash)"],
                           ["isatuximab-irfc", "latex"], ["  SARCLISA  "]]),
    ("patient.conditions", [_DROP, [], ["multiple myeloma"], ["Relapsed Multiple Myeloma"],
                            ["multiple myeloma", "pneumonia"], ["sepsis"], ["hypertension"],
                            ["smouldering myeloma"], ["history of pneumonia", "myeloma"]]),
    ("patient.current_medications", [
        _DROP, [], [{"name": "pomalidomide"}, {"name": "dexamethasone"}],
        [{"name": "Darzalex"}], [{"name": "daratumumab and hyaluronidase"}],
        [{"name": "x", "code": {"system": "atc", "value": "L04AX04"}}],
        [{"name": "somethingmab"}, {"name": "bortezomib"}, {"name": "Revlimid"}],
        [{"name": "elotuzumab", "code": {"system": "atc", "value": "L01FX08"}}]]),
]
LAB_VARIANTS = [
    ("ANC", [1.8, 0.9, 1.0, 999, 950, 0.5], ["10^9/L", "cells/uL", "10*9/l", "/mm3", "mmol/L",
                                             " K/uL "]),
    ("751-8", [1.2, 0.99], ["10^9/L"]),
    ("PLT", [142, 49.9, 50, 42000], ["10^9/L", "cells/uL", "x10^9/L", "furlongs"]),
    ("777-3", [30], ["10^9/L"]),
    ("HGB", [10.9, 7.9, 79, 4.8], ["g/dL", "g/L", "mmol/L", "G/DL"]),
    ("WBC", [3.1], ["10^9/L"]),
    ("unknownlab", [1], ["x"]),
]


def labs_for(rng: random.Random, when: dt.datetime) -> list[dict] | object:
    r = rng.random()
    if r < 0.05:
        return _DROP
    if r < 0.1:
        return []
    out = []
    for code, values, units in LAB_VARIANTS:
        if rng.random() < (0.9 if code in ("ANC", "PLT", "HGB") else 0.2):
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                age = rng.choice([26, 26, 2, 100, 167.9, 168.1, 200, 24 * 30, -5])
                taken = when - dt.timedelta(hours=age, minutes=rng.choice([0, 0, 13]))
                out.append({"code": code, "value": rng.choice(values), "unit": rng.choice(units),
                            "taken_at": iso(taken) if rng.random() < 0.9
                            else taken.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat()})
    return out


def clinical(rng: random.Random, patients: int) -> list[bytes]:
    """Patients with a few orders each, every order perturbed in a few clinical facts."""
    out: list[bytes] = []
    n = 0
    for p in range(patients):
        when = START + dt.timedelta(days=rng.randint(-400, 400), hours=rng.randint(0, 23))
        base = copy.deepcopy(EXAMPLE)
        base["patient"]["patient_id"] = f"CP-{p}"
        for path, values in rng.sample(PERTURB, 5):  # patient-level facts that stay
            if path.startswith("patient."):
                _set(base, path, rng.choice(values))
        orders = []
        for k in range(rng.choice([1, 1, 2, 3, 5, 8, 12])):
            n += 1
            doc = copy.deepcopy(base)
            doc["event_id"] = f"CE-{n}"
            oid = f"CO-{n}"
            doc["order"]["order_id"] = oid
            when = when + dt.timedelta(days=rng.choice([7, 7, 14, 1, 0, 5, 6, 8, -7]),
                                       hours=rng.choice([0, 0, 3, -20]))
            sched = iso(when) if rng.random() < 0.85 else when.astimezone(
                dt.timezone(dt.timedelta(hours=-11))).isoformat()
            doc["order"]["scheduled_for"] = sched
            doc["occurred_at"] = iso(when - dt.timedelta(hours=rng.uniform(0, 72)))
            for path, values in rng.sample(PERTURB, rng.randint(1, 6)):
                _set(doc, path, rng.choice(values))
            doc["patient"]["labs"] = labs_for(rng, when)
            if doc["patient"]["labs"] is _DROP:
                del doc["patient"]["labs"]
            orders.append(doc)
            out.append(json.dumps(doc).encode())
            if rng.random() < 0.1:
                out.append(json.dumps(doc).encode())  # re-delivery
            if rng.random() < 0.08 and orders:
                victim = rng.choice(orders)
                c = copy.deepcopy(CANCEL)
                n += 1
                c["event_id"] = f"CE-{n}"
                c["order"]["order_id"] = victim["order"]["order_id"]
                c["patient"]["patient_id"] = base["patient"]["patient_id"]
                c["occurred_at"] = iso(when)
                out.append(json.dumps(c).encode())
    return out


def hostile() -> list[bytes]:
    good = json.dumps(EXAMPLE)
    compact = json.dumps(EXAMPLE, separators=(",", ":"))
    out = [
        b"\xef\xbb\xbf" + good.encode(),
        good.replace('"value": 700', '"value": NaN').encode(),
        good.replace('"value": 700', '"value": Infinity').encode(),
        good.replace('"value": 700', '"value": -Infinity').encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": NaN').encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": -Infinity').encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": 1e400').encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": -1e400').encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": ' + "9" * 400).encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "x": ' + "9" * 4400).encode(),
        good.replace('"value": 700', '"value": 1e400').encode(),
        good.replace('"value": 700', '"value": 1e308').encode(),
        good.replace('"value": 700', '"value": 5e-324').encode(),
        good.replace('"value": 700', '"value": ' + "1" * 30).encode(),
        good.replace('"source": "his-east"', '"source": "his-east", "source": "x"').encode(),
        good.replace('"value": 700', '"value": 700, "value": 7').encode(),
        good.replace('"his-east"', '"\\ud800"').encode(),
        good.replace('"his-east"', '"\\udc00x"').encode(),
        good.replace('"his-east"', '"\\ud83d\\ude00"').encode(),
        good.replace('"his-east"', '"a\\u0000b"').encode(),
        good.replace('"his-east"', '"a\tb"').encode(),
        good.replace('"ORD-1001"', '"ORD-\u00e9\u4e2d"').encode(),
        good.replace('"P-001"', '" P-001 "').encode(),
        good.encode() + b" x",
        good.encode() + b"  ",
        b"   " + good.encode(),
        good.encode() + b"\r",
        compact.encode(),
        compact[:-1].encode(),
        b"\xff\xfe" + compact.encode(),
        compact.encode().replace(b"his-east", b"his-\xe9ast"),
        b"x" * (1024 * 1024 + 1),
        compact.encode().replace(b"his-east", b"\xc3\xa9" * (600 * 1024)),
        b"[]", b"{}", b'"order"', b"1", b"-0", b"null", b"true", b"1e400", b"NaN",
        b"\t", b" ", b"\x0b", b"\x0c",
        b"[" * 199 + b"]" * 199, b"[" * 200 + b"]" * 200, b"[" * 201 + b"]" * 201,
        b'{"a":' * 199 + b"1" + b"}" * 199, b'{"a":' * 200 + b"1" + b"}" * 200,
        b'{"a":' * 201 + b"1" + b"}" * 201, b"[" * 5000, b'{"a":[' * 150 + b"]}" * 150,
        b'{"schema":"rx.order/1","x":' + b"[" * 199 + b"1" + b"]" * 199 + b"}",
        b'{"x":' + b"[" * 250 + b"]" * 250 + b"}",
        b'{"x": [1e400]}', b'{"x": {"y": [0, -1e999]}}',
    ]
    regressions = REPO / "tests" / "fuzz" / "regressions"
    for path in sorted(regressions.glob("*.bin")):
        out += [line for line in path.read_bytes().split(b"\n") if line]
    return out


# a pool of JSON values a mutation puts somewhere
VALUES = [None, True, False, 0, -1, 1, 2, 1.5, -0.0, 1e9, 1e9 + 1, 1e15, 1e16, 2 ** 31, 2 ** 63,
          -1e15, 1e-320, "", " ", "x", "  x  ", "x" * 256, "x" * 257, " " + "x" * 256 + " ",
          "y" * 1001, [], [1], ["a"], {}, {"a": 1}, "2026-03-02", "2026-03-02T09:00:00",
          "2026-03-02T09:00:00Z", "2026-03-02T09:00:00+05:30", "2026-03-02t09:00:00z",
          "2026-03-02 09:00:00Z", "1899-12-31T23:59:59Z", "2201-01-01T00:00:00Z",
          "2026-02-30T00:00:00Z", "0001-01-01T00:00:00Z", "2026-03-02T09:00:00.123456789Z",
          "2026-03-02T09:00Z", "2026-03-02T09:00:00+25:00", "20260302T090000Z", "1955-04-12",
          "1899-12-31", "2026-3-2", "1700000000", 1700000000, "mg", "mg/kg", "mg/m2",
          "order.placed", "order.cancelled", "rx.order/1", "h", "d", "wk", "IV", "isatuximab",
          "true", "1", "1.5", "NaN"]


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def mutations(rng: random.Random, n: int) -> list[bytes]:
    bases = [EXAMPLE, CANCEL]
    out = []
    for i in range(n):
        doc = copy.deepcopy(rng.choice(bases))
        doc["event_id"] = f"M-{i}"
        doc["patient"]["patient_id"] = f"MP-{i % 97}"
        if "scheduled_for" in doc["order"]:
            doc["order"]["scheduled_for"] = iso(START + dt.timedelta(days=7 * (i // 97)))
        for _ in range(rng.choice([1, 1, 1, 2, 3, 6])):
            where = rng.choice(list(paths(doc))[1:])
            parent = doc
            for k in where[:-1]:
                parent = parent[k]
            r = rng.random()
            if r < 0.25 and isinstance(parent, dict):
                del parent[where[-1]]
            elif r < 0.35 and isinstance(parent, dict):
                parent[rng.choice(["extra", "Event_id", "schema_", "drug", "value"])] = \
                    copy.deepcopy(rng.choice(VALUES))
            else:
                parent[where[-1]] = copy.deepcopy(rng.choice(VALUES))
        out.append(json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode())
    return out


def corpus() -> list[bytes]:
    rng = random.Random(10)
    lines = courses(rng) + bench(3000) + clinical(rng, 900) + hostile() + mutations(rng, 6000)
    # the same stream interleaved differently, again, to reach more history states
    mixed = lines[:]
    rng.shuffle(mixed)
    return lines + mixed[: len(mixed) // 2]


def export(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "services"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "services"


def run(services: Path, path: Path) -> bytes:
    env = {**os.environ, "PYTHONPATH": str(services)}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(path)], env=env,
                          capture_output=True, check=True)
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="main")
    ap.add_argument("--keep", help="write the corpus and both outputs into this directory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep or tmp)
        where.mkdir(parents=True, exist_ok=True)
        lines = corpus()
        path = where / "corpus.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        theirs = run(export(args.rev, Path(tmp) / "rev"), path)
        ours = run(REPO / "services", path)
        if args.keep:
            (where / "theirs.jsonl").write_bytes(theirs)
            (where / "ours.jsonl").write_bytes(ours)
    a, b = theirs.splitlines(), ours.splitlines()
    kinds: Counter = Counter()
    for line in a:
        d = json.loads(line)
        kinds[d["schema"] + (" " + d["outcome"] if "outcome" in d else
                             " " + d["error"]["kind"] if "error" in d else "")] += 1
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    print(f"{len(lines)} input lines; {len(a)} outputs from {args.rev}, {len(b)} from this "
          f"worktree: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"outputs that differ byte for byte: {len(differ) + abs(len(a) - len(b))}")
    for i in differ[:5]:
        print(f"--- output {i + 1}\n{args.rev}: {a[i][:2000].decode()}\nours: {b[i][:2000].decode()}")
    sys.exit(1 if differ or len(a) != len(b) else 0)


if __name__ == "__main__":
    main()
