#!/usr/bin/env python3
"""Check what `rxgate check` writes against the wire contract's rules (not its clinical content).

Usage: conform.py INPUT.jsonl [OUTPUT.jsonl]   (without OUTPUT it runs `rxgate check INPUT`)
Prints one line per breach and 'conformance: N breaches' last; exit 0 only with none.

`rxgate check` is run with this Python (`python -m rxgate.cli`) when it can import rxgate, so
the code checked is the one on its path (PYTHONPATH included); otherwise `rxgate` from PATH.
The rules checked are those of docs/contract.md; the smoke stream is smoke.jsonl beside this file.
"""
import importlib.util, json, subprocess, sys


def rxgate_command() -> list[str]:
    if importlib.util.find_spec("rxgate") is not None:
        return [sys.executable, "-m", "rxgate.cli"]
    return ["rxgate"]


SEVERITY = ["none", "info", "warning", "major", "contraindicated"]
CATEGORIES = {"dose", "interval", "combination", "contraindication", "data"}
DECISION_FIELDS = {"schema", "decision_id", "event_id", "order_id", "patient_id", "drug", "outcome",
                   "severity", "findings", "knowledge_version", "decided_at"}
FINDING_FIELDS = {"rule_id", "category", "severity", "message", "evidence", "reference"}


def main() -> int:
    src = sys.argv[1]
    if len(sys.argv) > 2:
        out = open(sys.argv[2], encoding="utf-8").read()
    else:
        out = subprocess.run([*rxgate_command(), "check", src], capture_output=True, text=True,
                             timeout=120).stdout
    breaches = []
    placed, seen, unreadable = [], set(), 0
    for raw in open(src, encoding="utf-8", errors="replace"):
        if not raw.strip():
            continue
        try:
            e = json.loads(raw)
        except ValueError:
            unreadable += 1
            continue
        if not isinstance(e, dict):
            unreadable += 1
            continue
        if isinstance(e, dict) and e.get("event_type") == "order.placed" and e.get("event_id") not in seen:
            seen.add(e.get("event_id"))
            placed.append(e["event_id"])
    decisions, dead = {}, 0
    for n, line in enumerate(out.splitlines(), 1):
        try:
            o = json.loads(line)
        except ValueError:
            breaches.append(f"output line {n} is not JSON")
            continue
        if o.get("schema") == "rx.invalid/1":
            dead += 1
            if o.get("error", {}).get("kind") not in {"encoding", "json", "schema", "too_large"}:
                breaches.append(f"line {n}: dead letter error.kind {o.get('error')}")
            if "payload" not in o:
                breaches.append(f"line {n}: dead letter without payload")
            continue
        if o.get("schema") != "rx.decision/1":
            breaches.append(f"line {n}: unknown schema {o.get('schema')!r}")
            continue
        missing = DECISION_FIELDS - o.keys()
        if missing:
            breaches.append(f"line {n}: decision lacks {sorted(missing)}")
        decisions.setdefault(o.get("event_id"), []).append(o)
        worst = "none"
        for f in o.get("findings", []):
            fm = FINDING_FIELDS - f.keys()
            if fm:
                breaches.append(f"line {n}: finding lacks {sorted(fm)}")
            if f.get("category") not in CATEGORIES:
                breaches.append(f"line {n}: category {f.get('category')!r}")
            if f.get("severity") not in SEVERITY[1:]:
                breaches.append(f"line {n}: finding severity {f.get('severity')!r}")
                continue
            if f.get("category") == "data" and SEVERITY.index(f["severity"]) < 2:
                breaches.append(f"line {n}: data finding below warning")
            if SEVERITY.index(f["severity"]) > SEVERITY.index(worst):
                worst = f["severity"]
        if o.get("severity") != worst:
            breaches.append(f"line {n}: severity {o.get('severity')!r}, highest finding {worst!r}")
        want = "flagged" if SEVERITY.index(worst) >= 2 else "approved"
        if o.get("outcome") != want:
            breaches.append(f"line {n}: outcome {o.get('outcome')!r}, findings say {want!r}")
    for eid in placed:
        k = len(decisions.get(eid, []))
        if k != 1:
            breaches.append(f"event {eid}: {k} decisions, want 1")
    if dead < unreadable:
        breaches.append(f"{unreadable} unreadable input lines, {dead} dead letters")
    for b in breaches:
        print(b)
    print(f"conformance: {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
