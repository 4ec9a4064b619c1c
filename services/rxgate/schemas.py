"""`rxgate schemas`: the contract's JSON Schemas, generated from the pydantic models.

`schemas/<name>.schema.json` is checked in; `rxgate schemas --check` (and a test) fails when a
file differs from what the models generate now.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import TypeAdapter

from .contract import SCHEMA_MODELS


def generate() -> dict[str, str]:
    files = {}
    for name, model in SCHEMA_MODELS.items():
        schema = TypeAdapter(model).json_schema(by_alias=True, mode="serialization"
                                                if name in ("decision", "invalid", "verified")
                                                else "validation")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"https://rxgate.example/schemas/{name}.schema.json", **schema}
        files[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write_schemas(directory: str) -> int:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    for name, text in generate().items():
        (root / name).write_text(text, encoding="utf-8")
        print(f"wrote {root / name}")
    return 0


def check_schemas(directory: str) -> int:
    """0 when every file matches the models; 1 when one is out of date or missing; 2 when the
    directory itself is not there (run in the repository root, or pass --dir)."""
    root = Path(directory)
    if not root.is_dir():
        print(f"rxgate schemas: there is no schema directory {root.resolve()}: run "
              "`rxgate schemas --check` in the repository root, or pass --dir DIR",
              file=sys.stderr)
        return 2
    failed = 0
    for name, text in generate().items():
        path = root / name
        if not path.is_file():
            print(f"rxgate schemas: {path} is missing; run `rxgate schemas` to write it",
                  file=sys.stderr)
        elif path.read_text(encoding="utf-8") != text:
            print(f"rxgate schemas: {path} is out of date; run `rxgate schemas`",
                  file=sys.stderr)
        else:
            continue
        failed += 1
    return 1 if failed else 0
