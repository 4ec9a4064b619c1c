"""`rxgate knowledge check DIR` and `rxgate knowledge diff OLD_DIR NEW_DIR EVENTS`: rolling out
a new knowledge version.

`check` loads a knowledge directory as the worker does (all or nothing) and prints one line:
the version, the drugs and how many rule ids the monographs can emit (`rules.catalog`). Exit 0
when it loads, 2 with the file and field at fault when it does not. Nothing is started: it is
the CI step of a knowledge repository.

`diff` replays the same order events (the input of `rxgate check`: JSON Lines, `-` for
standard input, the same line rules) through two Processors, one per knowledge version, each
with its own fresh history store and the same `now` for both on every line, and reports the
decisions that would change:

- outcomes: approved -> flagged, flagged -> approved;
- severity: up or down (and each transition, e.g. `none->major`);
- per rule id: the decisions in which a finding of that rule is added, removed or changed
  (the same rule id in both, but another severity, message, evidence or reference);

each with its count and its first examples (`--examples N`, default 5) as line number and
`event_id`: never a patient, order or prescriber id, never a message or an evidence value (they
can quote the patient's conditions, allergies and labs); `rxgate check` on the line shows all.
`--json` prints the same as one JSON object.

Exit codes (so a pipeline can gate a roll-out on a sign-off):
  0  no decision changes over these events
  1  some decision changes (the report says which)
  2  an error: a knowledge directory does not load, the events cannot be read, or they hold no
     placed order (a diff over nothing proves nothing)

The same version with a different content is reported loudly: decisions carry the version and
their ids derive from it, so two contents under one version are indistinguishable downstream.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from .check import line_content
from .contract import Decision, Finding, FileSource, severity_rank
from .knowledge import Knowledge, KnowledgeError, load_knowledge
from .processor import DictHistoryStore, Processor

DEFAULT_EXAMPLES = 5
OUTCOME_CHANGES = ("approved->flagged", "flagged->approved")
FINDING_CHANGES = ("added", "removed", "changed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- rxgate knowledge check DIR ------------------------------------------------------------


def run_knowledge_check(directory: str, out: TextIO | None = None) -> int:
    from .rules.catalog import rule_ids

    out = out or sys.stdout
    try:
        k = load_knowledge(directory)
    except KnowledgeError as e:
        print(f"rxgate knowledge check: {e}", file=sys.stderr)
        return 2
    rules = sum(len(rule_ids(m)) for m in k.monographs.values())
    out.write(f"knowledge {k.version}: {len(k.monographs)} drug(s) ({', '.join(sorted(k.monographs))}), "
              f"{rules} rule ids: OK\n")
    return 0


# --- rxgate knowledge diff OLD NEW EVENTS ---------------------------------------------------


@dataclass
class Tally:
    """A count and the first few examples of one kind of change."""

    limit: int
    count: int = 0
    examples: list[dict] = field(default_factory=list)

    def add(self, example: dict) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(example)

    def to_dict(self) -> dict:
        return {"count": self.count, "examples": self.examples}


@dataclass
class Report:
    old_dir: str
    new_dir: str
    old_version: str
    new_version: str
    events: str
    same_knowledge: bool
    examples: int
    lines: int = 0
    decisions: int = 0
    dead_letters: int = 0
    not_decided: int = 0  # cancellations and repeated event ids: no output under either
    changed_decisions: int = 0
    outcomes: dict[str, Tally] = field(default_factory=dict)
    severity: dict[str, Tally] = field(default_factory=dict)
    transitions: dict[str, int] = field(default_factory=dict)
    rules: dict[str, dict[str, Tally]] = field(default_factory=dict)
    defects: list[int] = field(default_factory=list)  # lines where a rule raised (either side)

    def __post_init__(self) -> None:
        self.outcomes = {k: Tally(self.examples) for k in OUTCOME_CHANGES}
        self.severity = {k: Tally(self.examples) for k in ("up", "down")}

    @property
    def same_version(self) -> bool:
        return self.old_version == self.new_version

    def rule(self, rule_id: str) -> dict[str, Tally]:
        return self.rules.setdefault(rule_id, {k: Tally(self.examples) for k in FINDING_CHANGES})

    def to_dict(self) -> dict:
        return {
            "old": {"dir": self.old_dir, "version": self.old_version},
            "new": {"dir": self.new_dir, "version": self.new_version},
            "events": self.events,
            "same_version": self.same_version,
            "same_knowledge": self.same_knowledge,
            "lines": self.lines,
            "decisions": self.decisions,
            "dead_letters": self.dead_letters,
            "not_decided": self.not_decided,
            "changed_decisions": self.changed_decisions,
            "outcomes": {k: t.to_dict() for k, t in self.outcomes.items()},
            "severity": {**{k: t.to_dict() for k, t in self.severity.items()},
                         "transitions": dict(sorted(self.transitions.items()))},
            "rules": {rid: {k: t.to_dict() for k, t in kinds.items()}
                      for rid, kinds in sorted(self.rules.items())},
            "defect_lines": self.defects,
        }


def _by_rule(findings: list[Finding], version: str) -> dict[str, list[Finding]]:
    """Findings per rule id, each with its knowledge version in the message and reference
    replaced by `<version>` (rxgate's own findings quote it): a version bump alone changes
    nothing."""
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if version in f.message or version in f.reference:
            f = f.model_copy(update={"message": f.message.replace(version, "<version>"),
                                     "reference": f.reference.replace(version, "<version>")})
        out.setdefault(f.rule_id, []).append(f)
    return out


def _what_differs(old: list[Finding], new: list[Finding]) -> list[str]:
    """Names of what differs between the findings of one rule id: 'severity', 'message',
    'reference', 'evidence.<key>', 'count' -- names only, never values."""
    parts: set[str] = set()
    if len(old) != len(new):
        parts.add("count")
    for a, b in zip(old, new):
        for name in ("severity", "message", "reference"):
            if getattr(a, name) != getattr(b, name):
                parts.add(name)
        for key in sorted(set(a.evidence) | set(b.evidence)):
            if a.evidence.get(key, _MISSING) != b.evidence.get(key, _MISSING):
                parts.add(f"evidence.{key}")
    return sorted(parts)


_MISSING = object()


def _compare(report: Report, line: int, old: Decision, new: Decision) -> None:
    where = {"line": line, "event_id": old.event_id}
    changed = False
    if old.outcome != new.outcome:
        report.outcomes[f"{old.outcome}->{new.outcome}"].add(where)
        changed = True
    if old.severity != new.severity:
        up = severity_rank(new.severity) > severity_rank(old.severity)
        report.severity["up" if up else "down"].add(
            {**where, "old": old.severity, "new": new.severity})
        step = f"{old.severity}->{new.severity}"
        report.transitions[step] = report.transitions.get(step, 0) + 1
        changed = True
    before = _by_rule(old.findings, old.knowledge_version)
    after = _by_rule(new.findings, new.knowledge_version)
    for rule_id in sorted(set(before) | set(after)):
        a, b = before.get(rule_id, []), after.get(rule_id, [])
        if not a:
            report.rule(rule_id)["added"].add({**where, "severity": b[0].severity})
        elif not b:
            report.rule(rule_id)["removed"].add({**where, "severity": a[0].severity})
        elif [f.model_dump() for f in a] != [f.model_dump() for f in b]:
            report.rule(rule_id)["changed"].add(
                {**where, "old_severity": a[0].severity, "new_severity": b[0].severity,
                 "differs": _what_differs(a, b)})
        else:
            continue
        changed = True
    if changed:
        report.changed_decisions += 1


def diff_stream(lines: BinaryIO, name: str, old: Processor, new: Processor,
                report: Report) -> None:
    for n, raw in enumerate(lines, 1):
        report.lines = n
        raw = line_content(raw)
        if not raw:
            continue
        now = _now()
        handled = []
        for side, processor in (("old", old), ("new", new)):
            try:
                h = processor.handle(raw, FileSource(file=name, line=n), now)
            except Exception:  # a defect: say so, and go on with the next line
                print(f"rxgate knowledge diff: {name}:{n}: the {side} knowledge could not handle "
                      f"this line (a defect in rxgate)\n{traceback.format_exc()}", file=sys.stderr)
                h = None
            else:
                if h.error is not None:
                    print(f"rxgate knowledge diff: {name}:{n}: the checks under the {side} "
                          f"knowledge failed (a defect in rxgate): the order is flagged "
                          f"rxgate.data.checks_failed\n"
                          + "".join(traceback.format_exception(h.error)), file=sys.stderr)
            handled.append(h)
        h_old, h_new = handled
        if h_old is None or h_new is None or h_old.error or h_new.error:
            report.defects.append(n)
        if h_old is None or h_new is None:
            continue
        d_old = [o for o in h_old.outputs if isinstance(o, Decision)]
        d_new = [o for o in h_new.outputs if isinstance(o, Decision)]
        if d_old and d_new:
            report.decisions += 1
            _compare(report, n, d_old[0], d_new[0])
        elif d_old or d_new:  # parsing does not depend on the knowledge: a defect if it does
            report.defects.append(n)
        elif h_old.kind == "invalid":
            report.dead_letters += 1
        else:
            report.not_decided += 1


def _load(which: str, directory: str) -> Knowledge | None:
    try:
        return load_knowledge(directory)
    except KnowledgeError as e:
        print(f"rxgate knowledge diff: the {which} knowledge cannot be loaded: {e}",
              file=sys.stderr)
        return None


def run_knowledge_diff(old_dir: str, new_dir: str, events: str, *, as_json: bool = False,
                       examples: int = DEFAULT_EXAMPLES, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    old_k, new_k = _load("old", old_dir), _load("new", new_dir)
    if old_k is None or new_k is None:
        return 2
    report = Report(old_dir, new_dir, old_k.version, new_k.version, events,
                    same_knowledge=old_k == new_k, examples=examples)
    old_p = Processor(old_k, DictHistoryStore())
    new_p = Processor(new_k, DictHistoryStore())
    if events == "-":
        diff_stream(sys.stdin.buffer, "-", old_p, new_p, report)
    else:
        try:
            handle = open(events, "rb")
        except OSError as e:
            print(f"rxgate knowledge diff: cannot open {events}: {e.strerror or e}", file=sys.stderr)
            return 2
        with handle:
            diff_stream(handle, events, old_p, new_p, report)
    if report.same_version and not report.same_knowledge:
        print(f"rxgate knowledge diff: both directories say version {report.new_version} but "
              f"their content differs: bump `version` in {new_dir}/knowledge.toml (decisions "
              f"carry it, and their decision_id derives from it)", file=sys.stderr)
    out.write(json.dumps(report.to_dict(), indent=2) + "\n" if as_json else render(report))
    out.flush()
    if report.decisions == 0:
        print(f"rxgate knowledge diff: {events} holds no placed order that both versions "
              f"decided: nothing was compared", file=sys.stderr)
        return 2
    return 1 if report.changed_decisions else 0


# --- the text report ---------------------------------------------------------------------


def _where(examples: list[dict]) -> str:
    return ", ".join(f"line {e['line']} ({e['event_id']})" for e in examples)


def render(r: Report) -> str:
    lines = [f"knowledge diff: {r.old_version} ({r.old_dir}) -> {r.new_version} ({r.new_dir})",
             f"events: {r.events}: {r.lines} line(s), {r.decisions} decision(s) compared, "
             f"{r.dead_letters} dead letter(s), {r.not_decided} without a decision "
             f"(cancellations, repeated event ids)"]
    if r.same_version and not r.same_knowledge:
        lines.append(f"WARNING: the same version {r.new_version} with a different content: "
                     f"bump the version of the new knowledge")
    elif r.same_knowledge:
        lines.append("the two knowledge directories load to the same knowledge")
    if r.defects:
        lines.append(f"WARNING: a defect in rxgate on line(s) {', '.join(map(str, r.defects[:20]))}"
                     f" (see standard error)")
    share = f" ({100 * r.changed_decisions / r.decisions:.1f} %)" if r.decisions else ""
    lines.append(f"{r.changed_decisions} decision(s) change{share}")
    if not r.changed_decisions:
        if not r.same_knowledge:
            lines.append("the knowledge differs, but no decision over these events changes")
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.append("outcome")
    for key, tally in r.outcomes.items():
        lines.append(f"  {key.replace('->', ' -> '):<22}{tally.count:>7}"
                     + (f"   e.g. {_where(tally.examples)}" if tally.examples else ""))
    lines.append("severity")
    for key, tally in r.severity.items():
        steps = [f"{s.replace('->', ' -> ')}: {c}" for s, c in sorted(r.transitions.items())
                 if (severity_rank(s.split('->')[1]) > severity_rank(s.split('->')[0])) == (key == "up")]
        lines.append(f"  {key:<22}{tally.count:>7}" + (f"   ({'; '.join(steps)})" if steps else ""))
        if tally.examples:
            lines.append(f"  {'':<29}   e.g. {_where(tally.examples)}")
    if r.rules:
        width = max(len(rid) for rid in r.rules) + 2
        lines.append("")
        lines.append(f"{'rule id':<{width}}{'added':>8}{'removed':>9}{'changed':>9}")
        for rid, kinds in sorted(r.rules.items()):
            lines.append(f"{rid:<{width}}" + "".join(
                f"{kinds[k].count:>{8 if k == 'added' else 9}}" for k in FINDING_CHANGES))
        for rid, kinds in sorted(r.rules.items()):
            for k in FINDING_CHANGES:
                t = kinds[k]
                if not t.examples:
                    continue
                if k == "changed":
                    shown = ", ".join(
                        f"line {e['line']} ({e['event_id']}): {', '.join(e['differs'])}"
                        + (f" {e['old_severity']} -> {e['new_severity']}"
                           if e["old_severity"] != e["new_severity"] else "")
                        for e in t.examples)
                else:
                    shown = _where(t.examples)
                lines.append(f"  {rid} {k}: {shown}")
    return "\n".join(lines) + "\n"
