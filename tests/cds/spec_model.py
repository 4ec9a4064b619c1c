"""A validator for CDS Hooks JSON, driven by the specification's own logical models.

The HL7 CDS Hooks 2.0 specification defines its request, response, discovery and feedback
bodies as FHIR logical models written in FSH (fixtures/spec-CDSHooks*.fsh, copied verbatim from
HL7/cds-hooks). This reads each element line (`* path min..max type "short" "definition"`) and
checks a JSON document against it: required elements present, single elements not arrays,
repeating elements arrays, primitive types, and the card indicator's allowed values as the
model's definition states them. Nothing here restates the spec by hand.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ELEMENT = re.compile(r'^\* ([A-Za-z][\w.]*) (\d+)\.\.(\d+|\*) (\S+)(?: "(.*?)")?(?: "(.*)")?\s*$')
JSON_NAME = "http://hl7.org/fhir/tools/StructureDefinition/json-name"
STRINGS = {"string", "markdown", "code", "id", "url", "uri", "uuid", "instant", "dateTime"}


@dataclass
class Element:
    path: str
    min: int
    max: str
    type: str
    definition: str
    json_name: str | None = None


def load_model(name: str) -> list[Element]:
    """Elements of fixtures/spec-<name>.fsh, in order."""
    elements: dict[str, Element] = {}
    pending_json_name: str | None = None
    for line in (FIXTURES / f"spec-{name}.fsh").read_text(encoding="utf-8").splitlines():
        m = ELEMENT.match(line)
        if m:
            path, lo, hi, kind, short, definition = m.groups()
            elements[path] = Element(path, int(lo), hi, kind, (definition or short or ""))
            continue
        if JSON_NAME in line:
            pending_json_name = line.split(" ")[1]
            continue
        vm = re.match(r'^\* ([\w.]+) \^extension\[=\]\.valueString = "(.*)"', line)
        if vm and pending_json_name == vm.group(1) and vm.group(1) in elements:
            elements[vm.group(1)].json_name = vm.group(2)
            pending_json_name = None
    return list(elements.values())


def _allowed_values(element: Element) -> list[str] | None:
    m = re.search(r"Allowed values(?:, in order of increasing urgency,)? are: ([^.]+)\.", element.definition)
    if not m or element.type != "code":
        return None
    return [v.strip() for v in re.split(r",| and ", m.group(1)) if v.strip()]


def validate(doc: dict, name: str) -> list[str]:
    """Problems found in `doc` against the spec's logical model `name` ([] when valid)."""
    elements = load_model(name)
    problems: list[str] = []

    def children(prefix: str) -> list[Element]:
        depth = prefix.count(".") + 1 if prefix else 0
        return [e for e in elements if (e.path.startswith(prefix + ".") if prefix else True)
                and e.path.count(".") == depth]

    def check(obj: dict, prefix: str, where: str) -> None:
        for e in children(prefix):
            key = e.json_name or e.path.rsplit(".", 1)[-1]
            here = f"{where}.{key}" if where else key
            if key not in obj or obj[key] is None:
                if e.min >= 1:
                    problems.append(f"{here}: required ({e.min}..{e.max})")
                continue
            value = obj[key]
            if e.max == "*":
                if not isinstance(value, list):
                    if e.type == "Base" and isinstance(value, dict):  # a JSON object of key/value
                        continue
                    problems.append(f"{here}: must be an array")
                    continue
                items = value
            else:
                if isinstance(value, list):
                    problems.append(f"{here}: must not be an array")
                    continue
                items = [value]
            for i, item in enumerate(items):
                at = f"{here}[{i}]" if e.max == "*" else here
                if e.type in STRINGS:
                    if not isinstance(item, str):
                        problems.append(f"{at}: must be a string ({e.type})")
                    elif e.type == "uuid":
                        try:
                            uuid.UUID(item.removeprefix("urn:uuid:"))
                        except ValueError:
                            problems.append(f"{at}: not a uuid")
                    allowed = _allowed_values(e)
                    if allowed and item not in allowed:
                        problems.append(f"{at}: {item!r} is not one of {allowed}")
                elif e.type == "boolean" and not isinstance(item, bool):
                    problems.append(f"{at}: must be a boolean")
                elif e.type == "integer" and (not isinstance(item, int) or isinstance(item, bool)):
                    problems.append(f"{at}: must be an integer")
                elif e.type in ("Coding",) and not isinstance(item, dict):
                    problems.append(f"{at}: must be an object (Coding)")
                elif e.type.startswith("http://hl7.org/fhir/tools/StructureDefinition/CDSHooksElement"):
                    if not isinstance(item, dict):
                        problems.append(f"{at}: must be an object")
                    else:
                        check(item, e.path, at)

    if not isinstance(doc, dict):
        return ["(document): must be a JSON object"]
    check(doc, "", "")
    return problems
