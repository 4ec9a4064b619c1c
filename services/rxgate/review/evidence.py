"""A finding's evidence laid out for a pharmacist: labelled values with their units.

Evidence keys follow the rules' naming (`ordered_mg`, `labeled_mg_per_kg`, `gap_days`,
`limit_below` with `limit_unit`, ...): the unit is read from the key's ending.
"""
from __future__ import annotations

from typing import Any

UNIT_SUFFIXES = (  # longest first
    ("_ml_per_h", "mL/h"), ("_mg_per_kg", "mg/kg"), ("_mg_per_m2", "mg/m²"), ("_per_kg", "/kg"), ("_percent", "%"),
    ("_minutes", "min"), ("_min", "min"), ("_days", "days"), ("_hours", "h"),
    ("_years", "years"), ("_mg", "mg"), ("_mcg", "mcg"), ("_kg", "kg"), ("_cm", "cm"),
    ("_ml", "mL"), ("_m2", "m²"), ("_g", "g"),
)
WORDS = {"anc": "ANC", "plt": "platelets", "hgb": "haemoglobin", "iv": "IV", "bsa": "BSA",
         "min": "minimum", "max": "maximum"}
WHOLE_KEYS = {"mg_per_kg": ("Ordered dose per kg", "mg/kg"),
              "mg_per_m2": ("Ordered dose per m²", "mg/m²")}


def label_and_unit(key: str, evidence: dict[str, Any]) -> tuple[str, str]:
    if key in WHOLE_KEYS:
        return WHOLE_KEYS[key]
    unit = ""
    base = key
    for suffix, name in UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            base, unit = key[: -len(suffix)], name
            break
    else:
        if key.startswith("limit") or key == "value_in_limit_unit":
            unit = str(evidence.get("limit_unit") or "")
        elif key == "value" and evidence.get("unit"):
            unit = str(evidence["unit"])
    words = [WORDS.get(w, w) for w in base.split("_") if w]
    text = " ".join(words) or key
    return text[:1].upper() + text[1:], unit


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if value is None:
        return "(not known)"
    return str(value)


def lay_out(evidence: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, value, unit) for each evidence item, unit-only keys folded into their values."""
    rows = []
    for key, value in evidence.items():
        if key in ("limit_unit",) or (key == "unit" and "value" in evidence):
            continue
        if key.endswith("_unit") and f"{key[:-5]}_value" in evidence:
            continue  # shown with its value
        if key.endswith("_value") and f"{key[:-6]}_unit" in evidence:
            label, _ = label_and_unit(key[:-6], evidence)
            rows.append((f"{label} (as written)", format_value(value),
                         str(evidence[f"{key[:-6]}_unit"])))
            continue
        label, unit = label_and_unit(key, evidence)
        rows.append((label, format_value(value), unit))
    return rows
