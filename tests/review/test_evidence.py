"""Evidence as a pharmacist reads it: labelled values with units taken from the key names."""
from rxgate.review.evidence import lay_out


def test_units_come_from_the_key_endings():
    rows = lay_out({"ordered_mg": 1620, "weight_kg": 81, "mg_per_kg": 20,
                    "labeled_mg_per_kg": 10, "limit_percent": 10, "duration_min": 120,
                    "min_minutes": 180, "rate_ml_per_h": 125.0, "gap_days": 3.8})
    assert rows == [("Ordered", "1620", "mg"), ("Weight", "81", "kg"),
                    ("Ordered dose per kg", "20", "mg/kg"), ("Labeled", "10", "mg/kg"),
                    ("Limit", "10", "%"), ("Duration", "120", "min"),
                    ("Minimum", "180", "min"), ("Rate", "125", "mL/h"), ("Gap", "3.8", "days")]


def test_a_value_and_its_unit_are_one_row():
    assert lay_out({"ordered_value": 10, "ordered_unit": "mg/kg", "ordered_mg": 700}) == [
        ("Ordered (as written)", "10", "mg/kg"), ("Ordered", "700", "mg")]


def test_lab_limits_carry_the_lab_unit_and_other_values_read_plainly():
    rows = lay_out({"lab": "ANC", "value": 0.7, "unit": "10^9/L", "limit_below": 1.0,
                    "limit_unit": "10^9/L", "pregnant": True, "conditions": ["a", "b"],
                    "taken_at": None})
    assert rows == [("Lab", "ANC", ""), ("Value", "0.7", "10^9/L"),
                    ("Limit below", "1", "10^9/L"), ("Pregnant", "yes", ""),
                    ("Conditions", "a, b", ""), ("Taken at", "(not known)", "")]
