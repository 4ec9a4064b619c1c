"""Issue 7, item 2: two interval defects that approved a too-early dose, and their kin.

Rule text (issue 3): "a second active order for the same calendar day is a duplicate ... an
event that arrives out of order is checked against the doses on both sides of it ... an order
is active from the moment it is placed, whatever its decision, until it is cancelled."
Issue 7: "A dose is checked against the nearest active dose on each side, in time, not against
one dose per day"; an order id cancelled and placed again "is active from its new placement
until cancelled again. A cancellation that arrives before its order must still cancel that
order when it arrives."
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from rxgate.contract import parse_order_event
from rxgate.history import PatientHistory

from .conftest import (
    DROP, KNOWLEDGE, Pharmacy, assert_finding, assert_no, at, cancel_event, order_event,
    rule_ids,
)

PREV = "isatuximab.interval.too_soon_after_previous"
NEXT = "isatuximab.interval.too_close_to_next"
DUP = "isatuximab.interval.duplicate"
FIRST = "isatuximab.dose.first_dose_premedication"
LATE = "isatuximab.data.dose_before_kept_history"


def dose(day: float | str, order_id: str | None = None, regimen=DROP, **kw) -> dict:
    return order_event(scheduled_for=day, order_id=order_id, regimen=regimen, frequency=DROP, **kw)


def interval_ids(decision) -> list[str]:
    return [f.rule_id for f in decision.findings if f.category == "interval"]


# --- two active orders on one calendar day -------------------------------------------------

@pytest.mark.parametrize("store", ["dict", "json"])
def test_a_later_dose_is_measured_from_the_later_of_two_same_day_orders(store):
    p = Pharmacy(store)
    p.place(dose(0, "ORD-A"))                       # day 0, 09:00
    dup = p.place(dose(at(0, hours=11), "ORD-B"))   # day 0, 20:00: a duplicate, still active
    assert DUP in rule_ids(dup)
    # 6 days 5 h after ORD-A (tolerated) but 5 days 18 h after ORD-B: too soon
    d = p.place(dose(at(6, hours=5), "ORD-C"))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"previous_order_id": "ORD-B", "gap_days": 5.75, "required_gap_days": 7})
    assert d.outcome == "flagged"


def test_same_day_orders_arriving_in_reverse_order():
    p = Pharmacy()
    p.place(dose(at(0, hours=11), "ORD-B"))   # the later one arrives first
    p.place(dose(0, "ORD-A"))
    d = p.place(dose(at(6, hours=5), "ORD-C"))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"previous_order_id": "ORD-B", "gap_days": 5.75})


def test_a_late_dose_is_measured_to_the_earlier_of_two_next_day_orders():
    p = Pharmacy()
    p.place(dose(0, "ORD-A"))
    p.place(dose(at(13, hours=-8), "ORD-C1"))   # day 13 01:00
    p.place(dose(at(13, hours=10), "ORD-C2"))   # day 13 19:00
    late = p.place(dose(at(7), "ORD-B"))        # 5 days 16 h before ORD-C1
    assert_finding(late, NEXT, category="interval", severity="major",
                   evidence={"next_order_id": "ORD-C1", "required_gap_days": 7})


def test_a_same_day_duplicate_stays_a_duplicate_not_a_gap():
    p = Pharmacy()
    p.place(dose(0, "ORD-A"))
    d = p.place(dose(at(0, hours=5), "ORD-B"))
    assert_finding(d, DUP, category="interval", severity="major", evidence={"other_order_id": "ORD-A"})
    assert_no(d, PREV)
    assert_no(d, NEXT)


def test_same_day_orders_count_as_doses_for_the_phase_the_stricter_reading():
    """Days 0 (twice), 7, 14, 21: counting every active order, day 21 is dose 5, which needs 14
    days before the next; counting the day once it is dose 4 (7 days). The stricter wins."""
    p = Pharmacy()
    for day, oid in ((0, "ORD-1"), (at(0, hours=3), "ORD-1B"), (7, "ORD-2"), (14, "ORD-3"),
                     (21, "ORD-4")):
        p.place(dose(day, oid))
    d = p.place(dose(28, "ORD-5"))
    f = assert_finding(d, PREV, category="interval", severity="major",
                       evidence={"previous_order_id": "ORD-4", "required_gap_days": 14,
                                 "previous_dose_number": 5, "previous_dose_numbers": [4, 5]})
    assert "strictest reading" in f.message
    # once the duplicate is cancelled, day 28 is the plan's weekly step again
    p.cancel("ORD-1B")
    d2 = p.place(dose(28, "ORD-5bis"))
    assert interval_ids(d2) == [DUP]  # ORD-5 is still active on day 28


# --- an order id cancelled and placed again ------------------------------------------------

@pytest.mark.parametrize("store", ["dict", "json"])
def test_a_re_placed_order_is_active_again(store):
    p = Pharmacy(store)
    p.place(dose(0, "ORD-A"))
    p.cancel("ORD-A")
    again = p.place(dose(0, "ORD-A"))           # a new order.placed event, same order id
    assert FIRST in rule_ids(again)              # nothing else active: its first dose
    d = p.place(dose(3, "ORD-B"))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"previous_order_id": "ORD-A", "gap_days": 3})
    assert_no(d, FIRST)                          # not the patient's first dose


def test_a_re_placed_order_counts_until_cancelled_again():
    p = Pharmacy()
    p.place(dose(0, "ORD-A"))
    p.cancel("ORD-A")
    p.place(dose(1, "ORD-A"))
    p.cancel("ORD-A")
    d = p.place(dose(3, "ORD-B"))
    assert interval_ids(d) == []
    assert FIRST in rule_ids(d)


def test_a_cancellation_that_overtakes_its_order_still_cancels_it():
    p = Pharmacy()
    p.cancel("ORD-A")                            # arrives before its order
    p.place(dose(0, "ORD-A"))                    # cancelled on arrival
    d = p.place(dose(3, "ORD-B"))
    assert interval_ids(d) == []
    # ... and a later placement of the id is a re-placement: active
    p.place(dose(0, "ORD-A"))
    d2 = p.place(dose(1, "ORD-C"))
    assert_finding(d2, PREV, category="interval", severity="major",
                   evidence={"previous_order_id": "ORD-A", "gap_days": 1})


def event(doc: dict):
    return parse_order_event(json.dumps(doc))


def test_an_old_cancellation_arriving_after_a_re_placement_does_not_end_it():
    """P1, C1, P2 (re-placed), then C1 again (its id forgotten, e.g. past the seen-id retention)
    or an older cancellation: neither ends P2."""
    h = PatientHistory()
    c1 = cancel_event("ORD-A", event_id="C1", occurred_at=at(0, hours=2))
    h.apply(event(dose(0, "ORD-A")))
    h.apply(event(c1))
    h.apply(event(dose(0, "ORD-A")))
    h.seen_events.clear()                                    # the id is forgotten
    h.apply(event(c1))                                       # re-delivered
    assert "ORD-A" in h.active_orders
    h.apply(event(cancel_event("ORD-A", occurred_at=at(0, hours=1))))  # older than C1
    assert "ORD-A" in h.active_orders
    h.apply(event(cancel_event("ORD-A", occurred_at=at(0, hours=3))))  # a new cancellation
    assert "ORD-A" not in h.active_orders


def test_a_second_cancellation_of_a_cancelled_order_does_not_wait_for_a_re_placement():
    h = PatientHistory()
    h.apply(event(dose(0, "ORD-A")))
    h.apply(event(cancel_event("ORD-A")))
    h.apply(event(cancel_event("ORD-A")))       # a repeat under a new event id
    h.apply(event(dose(0, "ORD-A")))            # re-placed: active, not swallowed by the repeat
    assert "ORD-A" in h.active_orders


def test_histories_in_the_first_format_are_read():
    """A changelog record written before issue 7 (cancellations as bare times) still loads; its
    cancelled ids are read as applied, so a re-placement of one is active."""
    old = {"active_orders": [{"order_id": "ORD-A", "event_id": "E-A", "drug": "isatuximab",
                              "code_system": None, "code_value": None,
                              "scheduled_for": "2026-03-02T09:00:00+00:00", "cycle": 1, "day": 1}],
           "seen_events": {"E-A": "2026-03-02T08:15:00+00:00", "C-B": "2026-03-02T10:00:00+00:00"},
           "cancelled_orders": {"ORD-B": "2026-03-02T10:00:00+00:00"},
           "newest_event_at": "2026-03-02T10:00:00+00:00"}
    h = PatientHistory.from_dict(old)
    assert h.has_seen("E-A") and list(h.active_orders) == ["ORD-A"]
    h.apply(event(dose(1, "ORD-B")))
    assert set(h.active_orders) == {"ORD-A", "ORD-B"}
    assert PatientHistory.from_dict(json.loads(json.dumps(h.to_dict()))).to_dict() == h.to_dict()


# --- event times at the ends of the calendar ------------------------------------------------

# The contract bounds event years to 1900..2200 (year 0001 and 9999 are schema dead letters:
# tests/fuzz); these are the ends of what it accepts.
@pytest.mark.parametrize("occurred", ["1900-01-01T00:00:00Z", "1900-01-01T00:00:00+23:00",
                                      "2200-12-31T23:59:59Z"])
def test_event_times_at_the_ends_of_the_calendar_are_handled(occurred):
    p = Pharmacy("json")
    first = p.place(dose(0, "ORD-A", set={"occurred_at": occurred}))
    assert "rxgate.data.checks_failed" not in rule_ids(first)
    p.cancel("ORD-X", occurred_at=occurred)
    d = p.place(dose(2, "ORD-B", set={"occurred_at": occurred}))
    assert_finding(d, PREV, category="interval", severity="major", evidence={"previous_order_id": "ORD-A"})


@pytest.mark.parametrize("when", ["1900-01-03T00:00:00Z", "2200-12-31T12:00:00Z",
                                  "2200-12-31T23:59:59-23:59"])
def test_scheduled_times_at_the_ends_of_the_calendar_are_handled(when):
    p = Pharmacy("json")
    for i in range(40):  # enough for the history to fold
        p.place(dose(14 * i, f"ORD-{i}"))
    d = p.place(dose(when, "ORD-EDGE"))
    assert "rxgate.data.checks_failed" not in rule_ids(d), [f.message for f in d.findings]
    d2 = p.place(dose(14 * 40, "ORD-40"))
    assert "rxgate.data.checks_failed" not in rule_ids(d2)


# --- a folded (bounded) history --------------------------------------------------------------

def long_course(p: Pharmacy, n: int = 40) -> None:
    """n doses on the plan's days: 0, 7, 14, 21, 28, then every 14 days."""
    days = [7 * i for i in range(4)] + [28 + 14 * i for i in range(n - 4)]
    for i, day in enumerate(days):
        assert interval_ids(p.place(dose(day, f"ORD-{i}"))) == []
    return days


def test_a_long_course_stays_in_the_two_weekly_phase_after_folding():
    p = Pharmacy("json")
    days = long_course(p)
    history = p.processor.store.get("P-001")
    assert history.folded["isatuximab"].count + len(history.active_orders) == len(days)
    d = p.place(dose(days[-1] + 7, "ORD-SOON"))
    assert_finding(d, PREV, category="interval", severity="major",
                   evidence={"required_gap_days": 14, "previous_dose_number": len(days)})
    assert_no(d, FIRST)


def test_a_dose_scheduled_among_folded_doses_is_flagged_for_review():
    p = Pharmacy()
    days = long_course(p)
    late = p.place(dose(days[3] + 3, "ORD-LATE"))   # arrives long after: among folded doses
    f = assert_finding(late, LATE, category="data", severity="warning")
    assert f.evidence["folded_orders"] > 0
    assert late.outcome == "flagged"


def test_a_cancellation_of_a_folded_order_keeps_it_counted():
    """Its id is no longer kept, so it cannot be told from an unknown id: the dose still counts
    (for a plan whose gaps never shrink, the stricter reading)."""
    p = Pharmacy()
    days = long_course(p)
    folded = p.processor.store.get("P-001").folded["isatuximab"].count
    p.cancel("ORD-0")
    assert p.processor.store.get("P-001").folded["isatuximab"].count == folded
    d = p.place(dose(days[-1] + 14, "ORD-NEXT"))
    assert interval_ids(d) == []


def test_a_re_placement_of_a_folded_order_after_its_cancellation_is_active():
    """The history no longer knows ORD-0 was placed, so its cancellation looks like one that
    overtook its order; the new placement occurred after the cancellation: active."""
    p = Pharmacy()
    days = long_course(p)
    when = days[-1] + 14
    p.cancel("ORD-0", occurred_at=at(when, hours=-3))
    p.place(dose(when, "ORD-0"))  # occurred 45 min before `when`: after the cancellation
    d = p.place(dose(when + 3, "ORD-NEXT"))
    assert_finding(d, PREV, category="interval", severity="major", evidence={"previous_order_id": "ORD-0"})


def test_another_drugs_folded_orders_still_count_for_the_combination_rules():
    p = Pharmacy()
    for i in range(30):
        p.place(order_event(scheduled_for=14 * i, drug="daratumumab", dose=(16, "mg/kg"),
                            regimen=DROP, frequency=DROP, order_id=f"DARA-{i}"))
    assert "daratumumab" in p.processor.store.get("P-001").folded
    d = p.place(dose(14 * 30 + 1, "ORD-ISA"))
    f = assert_finding(d, "isatuximab.combination.anti_cd38", category="combination", severity="major")
    assert any("older active orders" in place for place in f.evidence["found_in"])
    assert KNOWLEDGE.identify("daratumumab").name == f.evidence["other_drug"]


def test_record_size_is_flat_in_the_number_of_doses():
    sizes = {}
    for n in (10, 60, 200):
        p = Pharmacy("json")
        long_course(p, n)
        sizes[n] = len(p.processor.store.rows["P-001"])
    assert sizes[200] < 1.5 * sizes[10], sizes
    assert sizes[200] <= 1.05 * sizes[60], sizes


def test_a_long_history_in_the_first_format_is_folded_on_its_next_event():
    """A changelog record from before issue 7 holds every active order; the next event folds
    it, and the decision is the one the whole history gives."""
    from rxgate.processor import Processor

    whole = Pharmacy()
    whole.processor = Processor(KNOWLEDGE, whole.processor.store, fold=None)
    days = long_course(whole)
    whole.cancel("ORD-3")
    record = whole.processor.store.get("P-001").to_dict()
    assert "folded" not in record and len(record["active_orders"]) == len(days) - 1
    record["cancelled_orders"] = {k: v["at"] for k, v in record["cancelled_orders"].items()}
    bounded = Pharmacy("json")
    bounded.processor.store.rows["P-001"] = json.dumps(record)
    nxt = dose(days[-1] + 10, "ORD-NEXT")
    want = whole.place(nxt)
    got = bounded.place(nxt)
    assert got.model_dump() == want.model_dump()
    assert PREV in rule_ids(got)
    history = bounded.processor.store.get("P-001")
    assert history.folded["isatuximab"].count + len(history.active_orders) == len(days)
