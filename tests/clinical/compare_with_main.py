"""Compare decisions of this worktree's core with another git revision's (default: main).

    python -m tests.clinical.compare_with_main [--rev main] [--seeds 12] [--doses 220]

Generates long courses (tests/clinical/courses.py), runs every event through both revisions'
Processor (each in its own interpreter, PYTHONPATH pointing at that revision's services/) and
prints, per course variant, how many decisions differ and in which rule ids. Variants:

    plain            out-of-order, cancellations (also overtaking), re-deliveries, co-medication
    same_day_orders  + a second active order for some doses' days      (issue 7 item 2: differs)
    replacements     + order ids cancelled and placed again             (issue 7 item 2: differs)

A script, not a test: after a merge the revision compared against is this code.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from io import BytesIO
from pathlib import Path

from .courses import course

REPO = Path(__file__).resolve().parents[2]

RUNNER = r"""
import datetime as dt, json, sys
from rxgate.contract import FileSource
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
p = Processor(load_knowledge(), DictHistoryStore())
for i, line in enumerate(sys.stdin.buffer, 1):
    h = p.handle(line.rstrip(b"\n"), FileSource(file="course", line=i), NOW)
    outs = [o.model_dump(mode="json") for o in h.outputs]
    for o in outs:
        o.pop("decided_at", None)
    print(json.dumps({"kind": h.kind, "outputs": outs}))
"""


def export(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(REPO), "archive", rev, "services"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "services"


def run(services: Path, events: list[dict]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(services)}
    stdin = "".join(json.dumps(e) + "\n" for e in events)
    out = subprocess.run([sys.executable, "-c", RUNNER], input=stdin, text=True, env=env,
                         check=True, capture_output=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def normalised(result: dict) -> tuple[dict, bool]:
    """The result with combination findings reduced to what they decide (rule, severity, drug,
    class), and whether their text or places differed from that: a folded history names older
    orders of another drug as a count ("97 older active orders, up to order X"), not one by one."""
    out = json.loads(json.dumps(result))
    for o in out["outputs"]:
        for f in o.get("findings", []):
            if f["category"] == "combination":
                f["message"] = None
                f["evidence"].pop("found_in", None)
    return out, out != result


def rules(result: dict) -> set[str]:
    return {f["rule_id"] for o in result["outputs"] for f in o.get("findings", [])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="main")
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--doses", type=int, default=220)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        theirs = export(args.rev, Path(tmp))
        ours = REPO / "services"
        for variant in ("plain", "same_day_orders", "replacements"):
            flags = {"same_day_orders": variant == "same_day_orders",
                     "replacements": variant == "replacements"}
            events = decisions = differ = places = 0
            outcome_changes: Counter = Counter()
            rule_changes: Counter = Counter()
            other_changes: Counter = Counter()
            for seed in range(args.seeds):
                stream = course(seed, args.doses, **flags)
                a, b = run(theirs, stream), run(ours, stream)
                assert len(a) == len(b) == len(stream)
                events += len(stream)
                for x, y in zip(a, b):
                    decisions += x["kind"] == "decision"
                    if x == y:
                        continue
                    (x, _), (y, _) = normalised(x), normalised(y)
                    if x == y:
                        places += 1
                        continue
                    differ += 1
                    ox = [o.get("outcome") for o in x["outputs"]]
                    oy = [o.get("outcome") for o in y["outputs"]]
                    if ox != oy:
                        outcome_changes[f"{ox} -> {oy}"] += 1
                    gained, lost = rules(y) - rules(x), rules(x) - rules(y)
                    for r in gained:
                        rule_changes[f"+ {r}"] += 1
                    for r in lost:
                        rule_changes[f"- {r}"] += 1
                    if not gained and not lost:
                        before = [g for p in x["outputs"] for g in p.get("findings", [])]
                        for f in (f for o in y["outputs"] for f in o.get("findings", [])):
                            if f in before:
                                continue
                            old = next(g for g in before if g["rule_id"] == f["rule_id"])
                            keys = sorted(k for k in {*f["evidence"], *old["evidence"]}
                                          if f["evidence"].get(k) != old["evidence"].get(k))
                            other_changes[f"{f['rule_id']} evidence {keys}"] += 1
            print(f"{variant}: {args.seeds} courses x {args.doses} doses, {events} events, "
                  f"{decisions} decisions; differ from {args.rev}: {places} only in how a "
                  f"combination finding names older orders of the other drug, {differ} otherwise")
            for label, counter in (("outcome", outcome_changes), ("rule ids", rule_changes),
                                   ("same rule ids, other text/evidence", other_changes)):
                for k, v in sorted(counter.items()):
                    print(f"    {label}: {k}: {v}")


if __name__ == "__main__":
    main()
