"""schemas/ is generated from the models and must not drift."""
from __future__ import annotations

import json
import subprocess
import sys

from rxgate.schemas import generate

from tests.conftest import ROOT


def test_checked_in_schemas_match_the_models():
    files = generate()
    for name, text in files.items():
        path = ROOT / "schemas" / name
        assert path.is_file(), f"{path} missing: run `rxgate schemas`"
        assert path.read_text(encoding="utf-8") == text, f"{path} drifted: run `rxgate schemas`"
    assert sorted(p.name for p in (ROOT / "schemas").glob("*.json")) == sorted(files)


def test_schemas_check_command_fails_on_drift(tmp_path):
    out = subprocess.run([sys.executable, "-m", "rxgate.cli", "schemas", "--dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0
    check = [sys.executable, "-m", "rxgate.cli", "schemas", "--check", "--dir", str(tmp_path)]
    assert subprocess.run(check, capture_output=True).returncode == 0
    doc = json.loads((tmp_path / "decision.schema.json").read_text())
    doc["title"] = "tampered"
    (tmp_path / "decision.schema.json").write_text(json.dumps(doc))
    drift = subprocess.run(check, capture_output=True, text=True)
    assert drift.returncode == 1 and "decision.schema.json is out of date" in drift.stderr


def test_order_schema_requires_what_the_contract_requires():
    schema = json.loads(generate()["order-event.schema.json"])
    placed = schema["$defs"]["OrderPlaced"]
    assert set(placed["required"]) == {"schema", "event_id", "event_type", "occurred_at", "order", "patient"}
    order = schema["$defs"]["Order"]
    assert set(order["required"]) == {"order_id", "drug", "dose", "route", "scheduled_for"}
    assert schema["$defs"]["Dose"]["properties"]["unit"]["enum"] == [
        "mg", "g", "mcg", "mg/kg", "mg/m2", "units", "units/kg", "mL"]
