"""`rxgate knowledge check DIR` and `rxgate knowledge diff OLD NEW EVENTS`, run as an operator
runs them: real knowledge directories on disk, real event files, `python -m rxgate.cli`."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys

import pytest

from rxgate.knowledge import BUILTIN_DIR, load_knowledge
from rxgate.rules.catalog import rule_ids

from tests.conftest import example

ANC_RULE = "isatuximab.contraindication.anc_low"


def rxgate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def old_dir(tmp_path):
    target = tmp_path / "old"
    shutil.copytree(BUILTIN_DIR, target)
    return target


@pytest.fixture
def new_dir(tmp_path):
    """The shipped knowledge with one number changed (ANC limit 1.0 -> 1.5) and a new version."""
    target = tmp_path / "new"
    shutil.copytree(BUILTIN_DIR, target)
    _edit(target / "drugs" / "isatuximab.toml", 'lab = "ANC"\nbelow = 1.0', 'lab = "ANC"\nbelow = 1.5')
    version = load_knowledge(BUILTIN_DIR).version
    _edit(target / "knowledge.toml", f'version = "{version}"', 'version = "2099.1.1"')
    return target


def order(patient_id: str, event_id: str, anc: float) -> dict:
    e = copy.deepcopy(example("order-placed.json"))
    e["event_id"] = event_id
    e["patient"]["patient_id"] = patient_id
    e["order"]["order_id"] = f"ORD-{event_id}"
    [lab] = [x for x in e["patient"]["labs"] if x["code"] == "ANC"]
    lab["value"] = anc
    return e


@pytest.fixture
def events(tmp_path):
    """Line 1: ANC 0.8 (below both limits), 2: garbage, 3: blank, 4: ANC 1.2 (between them),
    5: ANC 1.8 (above both), 6: a cancellation, 7: line 1 again (a repeated event id)."""
    low, mid, high = (order("PAT-SECRET-1", "ev-low", 0.8), order("PAT-SECRET-2", "ev-mid", 1.2),
                      order("PAT-SECRET-3", "ev-high", 1.8))
    cancel = copy.deepcopy(example("order-cancelled.json"))
    cancel["patient"]["patient_id"] = "PAT-SECRET-3"
    lines = [json.dumps(low), "{not json", "", json.dumps(mid), json.dumps(high),
             json.dumps(cancel), json.dumps(low)]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- knowledge check ------------------------------------------------------------------------


def test_check_prints_version_drugs_and_rule_count_and_exits_0(old_dir):
    done = rxgate("knowledge", "check", str(old_dir))
    assert done.returncode == 0, done.stderr
    k = load_knowledge(old_dir)
    count = sum(len(rule_ids(m)) for m in k.monographs.values())
    assert count > 20
    [line] = done.stdout.splitlines()
    assert line == (f"knowledge {k.version}: {len(k.monographs)} drug(s) "
                    f"({', '.join(sorted(k.monographs))}), {count} rule ids: OK")
    assert done.stderr == ""


@pytest.mark.parametrize("file,old,new,field", [
    ("drugs/isatuximab.toml", "labeled_mg_per_kg = 10", 'labeled_mg_per_kg = "ten"',
     "dose.labeled_mg_per_kg"),
    ("drugs/isatuximab.toml", "below = 1.0", "below = nan", "lab_limits.0.below"),
    ("labs.toml", '"g/L" = 0.1', '"g/L" = 0', "labs.HGB"),
    ("knowledge.toml", "version = ", "version == ", "not valid TOML"),
    ("knowledge.toml", "version = ", "version = 2026 #", "version: Input should be a valid string"),
])
def test_check_of_a_malformed_directory_exits_2_naming_file_and_field(old_dir, file, old, new, field):
    _edit(old_dir / file, old, new)
    done = rxgate("knowledge", "check", str(old_dir))
    assert done.returncode == 2
    assert done.stdout == ""
    assert str(old_dir / file) in done.stderr and field in done.stderr
    assert "Traceback" not in done.stderr


def test_check_of_a_missing_directory_or_file_exits_2(tmp_path, old_dir):
    done = rxgate("knowledge", "check", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "knowledge directory does not exist" in done.stderr
    (old_dir / "routes.toml").unlink()
    done = rxgate("knowledge", "check", str(old_dir))
    assert done.returncode == 2 and f"{old_dir / 'routes.toml'}: file is missing" in done.stderr


def test_knowledge_without_an_action_still_prints_the_version():
    done = rxgate("knowledge")
    assert done.returncode == 0 and load_knowledge(BUILTIN_DIR).version in done.stdout


# --- knowledge diff -------------------------------------------------------------------------


def test_diff_of_one_changed_limit_shows_exactly_that_change(old_dir, new_dir, events):
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["old"]["version"] == load_knowledge(BUILTIN_DIR).version
    assert report["new"]["version"] == "2099.1.1"
    assert (report["same_version"], report["same_knowledge"]) == (False, False)
    assert (report["lines"], report["decisions"], report["dead_letters"], report["not_decided"]) \
        == (7, 3, 1, 2)
    assert report["changed_decisions"] == 2
    # ANC 1.2: approved (info) before, flagged major now
    assert report["outcomes"] == {
        "approved->flagged": {"count": 1, "examples": [{"line": 4, "event_id": "ev-mid"}]},
        "flagged->approved": {"count": 0, "examples": []}}
    assert report["severity"] == {
        "up": {"count": 1, "examples": [{"line": 4, "event_id": "ev-mid", "old": "info",
                                         "new": "major"}]},
        "down": {"count": 0, "examples": []},
        "transitions": {"info->major": 1}}
    # ANC 0.8: flagged under both, the finding now quotes the new limit; ANC 1.8: unchanged
    assert report["rules"] == {ANC_RULE: {
        "added": {"count": 1, "examples": [{"line": 4, "event_id": "ev-mid", "severity": "major"}]},
        "removed": {"count": 0, "examples": []},
        "changed": {"count": 1, "examples": [{
            "line": 1, "event_id": "ev-low", "old_severity": "major", "new_severity": "major",
            "differs": ["evidence.limit_below", "message"]}]}}}
    assert report["defect_lines"] == []
    assert "PAT-SECRET" not in done.stdout and "ORD-ev" not in done.stdout


def test_diff_the_other_way_round_shows_the_reverse(old_dir, new_dir, events):
    done = rxgate("knowledge", "diff", str(new_dir), str(old_dir), str(events), "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["outcomes"]["flagged->approved"]["count"] == 1
    assert report["outcomes"]["approved->flagged"]["count"] == 0
    assert report["severity"]["down"]["examples"] == [
        {"line": 4, "event_id": "ev-mid", "old": "major", "new": "info"}]
    assert report["severity"]["transitions"] == {"major->info": 1}
    assert {k: v["count"] for k, v in report["rules"][ANC_RULE].items()} == \
        {"added": 0, "removed": 1, "changed": 1}


def test_diff_text_report_for_the_informatics_lead(old_dir, new_dir, events):
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events))
    assert done.returncode == 1, done.stderr
    text = done.stdout
    assert "-> 2099.1.1" in text
    assert "2 decision(s) change (66.7 %)" in text
    assert re.search(r"approved -> flagged\s+1\s+e\.g\. line 4 \(ev-mid\)", text)
    assert re.search(r"flagged -> approved\s+0\s*$", text, re.M)
    assert re.search(r"up\s+1\s+\(info -> major: 1\)", text)
    assert re.search(rf"^{re.escape(ANC_RULE)}\s+1\s+0\s+1$", text, re.M)
    assert f"{ANC_RULE} changed: line 1 (ev-low): evidence.limit_below, message" in text
    assert "PAT-SECRET" not in text


def test_diff_examples_are_bounded_by_the_option(old_dir, new_dir, events):
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events), "--json",
                  "--examples", "0")
    report = json.loads(done.stdout)
    assert report["outcomes"]["approved->flagged"] == {"count": 1, "examples": []}
    assert rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events),
                  "--examples", "-1").returncode == 2


def test_diff_without_a_change_exits_0_even_across_a_version_bump(old_dir, new_dir, tmp_path):
    _edit(new_dir / "drugs" / "isatuximab.toml", "below = 1.5", "below = 1.0")
    events = tmp_path / "high.jsonl"
    events.write_text(json.dumps(order("P-1", "ev-1", 1.8)) + "\n", encoding="utf-8")
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 decision(s) change" in done.stdout
    same = rxgate("knowledge", "diff", str(old_dir), str(old_dir), "-",
                  stdin=events.read_text(encoding="utf-8"))
    assert same.returncode == 0 and "load to the same knowledge" in same.stdout


def test_diff_under_one_version_with_another_content_warns(old_dir, tmp_path, events):
    changed = tmp_path / "same-version"
    shutil.copytree(old_dir, changed)
    _edit(changed / "drugs" / "isatuximab.toml", "below = 1.0", "below = 1.5")
    done = rxgate("knowledge", "diff", str(old_dir), str(changed), str(events))
    assert done.returncode == 1
    assert "bump `version`" in done.stderr and "WARNING: the same version" in done.stdout


def test_diff_with_a_malformed_new_version_exits_2_naming_it(old_dir, new_dir, events):
    _edit(new_dir / "drugs" / "isatuximab.toml", "below = 1.5", "below = -inf")
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events))
    assert done.returncode == 2 and done.stdout == ""
    assert "the new knowledge cannot be loaded" in done.stderr
    assert f"{new_dir / 'drugs' / 'isatuximab.toml'}: lab_limits.0.below" in done.stderr


def test_diff_over_no_placed_order_or_no_file_exits_2(old_dir, new_dir, tmp_path):
    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text("{not json\n" + json.dumps(example("order-cancelled.json")) + "\n")
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(nothing))
    assert done.returncode == 2 and "nothing was compared" in done.stderr
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "cannot open" in done.stderr


def test_each_version_keeps_its_own_history(old_dir, new_dir, tmp_path):
    """Two doses a week apart in cycle 2 (the plan wants 14 days): both versions flag the second
    the same way, so the histories are per version and the diff sees no change."""
    first = order("P-9", "ev-a", 1.8)
    first["order"]["regimen"].update(cycle=2, day=1)
    first["order"]["scheduled_for"] = "2026-04-01T09:00:00Z"
    second = copy.deepcopy(first)
    second.update(event_id="ev-b")
    second["order"].update(order_id="ORD-b", scheduled_for="2026-04-08T09:00:00Z")
    events = tmp_path / "two.jsonl"
    events.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n", encoding="utf-8")
    check = rxgate("check", "--knowledge-dir", str(new_dir), str(events))
    decided = [json.loads(x) for x in check.stdout.splitlines()]
    assert any(f["rule_id"].endswith("interval.too_soon_after_previous")
               for f in decided[1]["findings"])
    done = rxgate("knowledge", "diff", str(old_dir), str(new_dir), str(events), "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["decisions"] == 2


@pytest.mark.parametrize("action", ["check", "diff"])
def test_each_knowledge_action_says_what_it_does(action):
    from rxgate.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    (actions,) = [a for a in sub.choices["knowledge"]._actions
                  if a.__class__.__name__ == "_SubParsersAction"]
    description = actions.choices[action].description
    done = rxgate("knowledge", action, "--help")
    assert done.returncode == 0, done.stderr
    assert " ".join(description.split()) in " ".join(done.stdout.split())
    assert re.search(rf"^\s+{action}\b", rxgate("knowledge", "--help").stdout, re.M)
