"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): decisions published
to the embedded broker appear on the page; a pharmacist signs in, opens a flagged order and
overrides it with a reason using the keyboard only; the review and the verified decision appear
on their topics. Saves docs/review-queue.png and docs/review-detail.png (shown in the README).

Chromium is required: without /usr/bin/chromium the test skips on a developer machine and
fails under CI (.ci/run installs it). Playwright never downloads a browser here.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from rxgate.broker import EmbeddedBroker
from rxgate.contract import Decision, FileSource, to_json
from rxgate.knowledge import load_knowledge
from rxgate.processor import DictHistoryStore, Processor
from rxgate.review.config import (APPROVED_TOPIC, FLAGGED_TOPIC, ORDERS_TOPIC, REVIEWS_TOPIC,
                                  VERIFIED_TOPIC)
from rxgate.review.db import make_engine, migrate
from rxgate.review.runner import ReviewProcess
from rxgate.review.store import Store

from .conftest import PASSWORD
from .kafka_io import create_topics, read_topic, wait_for

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "services" / "rxgate" / "examples" / "demo-orders.jsonl"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("chromium is missing but CI is set: .ci/run must install Debian's chromium",
                    pytrace=False)
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def publish_demo_stream(bootstrap: str) -> None:
    """The demo orders and the decisions the worker's Processor gives them, on their topics."""
    import asyncio
    import json

    from aiokafka import AIOKafkaProducer

    processor = Processor(load_knowledge(None), DictHistoryStore())
    now = dt.datetime.now(dt.timezone.utc)
    records = []
    for n, line in enumerate(DEMO.read_bytes().splitlines(), 1):
        try:
            key = json.loads(line)["patient"]["patient_id"].encode()
        except (ValueError, KeyError, TypeError):
            continue
        records.append((ORDERS_TOPIC, key, line))
        for out in processor.handle(line, FileSource(file="demo", line=n), now).outputs:
            if isinstance(out, Decision):
                topic = FLAGGED_TOPIC if out.outcome == "flagged" else APPROVED_TOPIC
                records.append((topic, key, to_json(out).encode()))

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for topic, key, value in records:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    asyncio.run(run())


def tab_to(page, predicate_js: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies the predicate (given `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({predicate_js}); }})()"):
            return
    raise AssertionError(f"Tab never reached an element with {predicate_js}")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def drive_the_browser(pw, chromium_path: str, url: str, docs: Path) -> None:
    browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url + "/queue")
        assert "/login" in page.url
        assert "P-1002" not in page.content()
        # sign in by keyboard (the id field has focus)
        page.keyboard.type("RPH-12")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/queue")

        def five_flagged():
            page.reload()
            return page.locator("table.queue tbody tr").count() == 5
        wait_for(five_flagged, 30, "the five flagged demo orders on the page")
        rows = page.locator("table.queue tbody tr")
        assert "Contraindicated" in rows.nth(0).inner_text()  # most severe first
        assert "ORD-5003" in rows.nth(0).inner_text()
        assert "ORD-5007" in rows.nth(4).inner_text()  # the only warning: last
        assert no_horizontal_scroll(page)
        page.screenshot(path=str(docs / "review-queue.png"))

        # open ORD-5002 (dose above the labeled mg/kg) by keyboard
        tab_to(page, "el.tagName === 'A' && el.textContent.trim() === 'ORD-5002'")
        page.keyboard.press("Enter")
        page.wait_for_url("**/queue/*")
        body = page.inner_text("main")
        for text in ("Why it was flagged", "mg/kg", "The order as placed",
                     "Patient facts the rules used", "Labs"):
            assert text in body, text
        page.screenshot(path=str(docs / "review-detail.png"), full_page=True)

        # override, with a standard reason and a note, by keyboard only
        tab_to(page, "el.name === 'action'")
        assert page.evaluate("document.activeElement.value") == "approve"
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.value") == "override"
        assert page.locator("input[value=override]").is_checked()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "reason_code"
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.value") == "prescriber-confirmed"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "note"
        page.keyboard.type("weight re-measured: 85 kg, dose confirmed with Dr Weiss")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.type") == "submit"
        page.keyboard.press("Enter")
        page.wait_for_url("**/queue?acted=*")
        assert "Recorded: overridden order ORD-5002" in page.inner_text("main")
        assert page.locator("table.queue tbody tr").count() == 4

        # 200 % zoom on a 1280x800 screen: 640x400 CSS pixels; nothing scrolls sideways
        zoomed = browser.new_context(viewport={"width": 640, "height": 400},
                                     device_scale_factor=2)
        zpage = zoomed.new_page()
        zpage.context.add_cookies(page.context.cookies())
        zpage.goto(url + "/queue")
        assert no_horizontal_scroll(zpage)
        zpage.locator("table.queue a", has_text="ORD-5004").click()
        assert no_horizontal_scroll(zpage)
        button = zpage.locator("form.act button[type=submit]")
        button.scroll_into_view_if_needed()
        assert button.is_visible()
        zoomed.close()
    finally:
        browser.close()



def test_a_pharmacist_overrides_by_keyboard_and_kafka_gets_both_messages(tmp_path, chromium_path):
    from playwright.sync_api import sync_playwright

    db = f"sqlite:///{tmp_path / 'review.sqlite3'}"
    engine = make_engine(db)
    migrate(engine)
    Store(engine).add_user("RPH-12", "Ada Lovelace", PASSWORD)
    engine.dispose()
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        create_topics(broker.bootstrap, [ORDERS_TOPIC, APPROVED_TOPIC, FLAGGED_TOPIC,
                                         REVIEWS_TOPIC, VERIFIED_TOPIC])
        publish_demo_stream(broker.bootstrap)
        with ReviewProcess(broker.url, db, log_path=tmp_path / "review.log") as review:
            review.wait_ready()
            # Playwright's sync API runs an event loop in this thread: Kafka is read after it
            with sync_playwright() as pw:
                drive_the_browser(pw, chromium_path, review.url, docs)
            def published():
                return (read_topic(broker.bootstrap, REVIEWS_TOPIC),
                        read_topic(broker.bootstrap, VERIFIED_TOPIC))
            reviews, verified = wait_for(lambda: all(published()) and published(), 30,
                                         "the review and the verified decision on their topics")
    assert len(reviews) == 1 and len(verified) == 1
    key, review_msg, _ = reviews[0]
    assert key == b"P-1002"
    assert review_msg["order_id"] == "ORD-5002" and review_msg["action"] == "override"
    assert review_msg["pharmacist_id"] == "RPH-12"
    assert review_msg["reason"] == ("Confirmed with the prescriber: weight re-measured: 85 kg, "
                                    "dose confirmed with Dr Weiss")
    key, verified_msg, _ = verified[0]
    assert key == b"P-1002" and verified_msg["final"] == "approved"
    assert verified_msg["review_id"] == review_msg["review_id"]
