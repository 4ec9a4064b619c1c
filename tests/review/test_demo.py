"""`rxgate demo` (without --once) serves the review page: the printed address and demo password
sign in, and the demo stream's five flagged orders are in the queue."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

pytestmark = pytest.mark.broker


def test_the_demo_prints_the_review_page_and_its_flagged_orders_are_there():
    proc = subprocess.Popen([sys.executable, "-m", "rxgate.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        found = None
        while found is None and time.monotonic() < deadline and proc.poll() is None:
            found = next((m for m in (re.search(r"review\s+(http://\S+?)/\s.*sign in as "
                                                r"(\S+), password (\S+)", line)
                                      for line in list(lines)) if m), None)
            time.sleep(0.2)
        assert found, "".join(lines)[-3000:]
        url, user, password = found.groups()
        c = httpx.Client(base_url=url, timeout=10)
        assert c.get("/api/queue").status_code == 401
        r = c.post("/api/login", json={"user_id": user, "password": password})
        assert r.status_code == 200, r.text
        while time.monotonic() < deadline and c.get("/api/queue").json()["total"] < 5:
            time.sleep(0.3)
        queue = c.get("/api/queue").json()
        assert queue["total"] == 5
        assert {e["order_id"] for e in queue["entries"]} == {
            "ORD-5002", "ORD-5003", "ORD-5004", "ORD-5016", "ORD-5007"}
        assert queue["entries"][0]["severity"] == "contraindicated"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(5)
    assert proc.returncode == 0, "".join(lines)[-3000:]
    assert "worker and broker stopped" in "".join(lines)
