"""The review page for `rxgate demo`: a store in the demo's work directory, a demo pharmacist
with a fresh random password, and `rxgate review` as a child process on the demo's broker."""
from __future__ import annotations

import secrets
from pathlib import Path

from ..broker import port_is_free
from .db import make_engine, migrate
from .runner import ReviewProcess
from .store import Store

DEMO_USER = "RPH-DEMO"
DEMO_NAME = "Demo Pharmacist"
PREFERRED_PORT = 8090


def start_review_page(broker_url: str, work_dir: Path) -> tuple[ReviewProcess, str]:
    """A running, ready review service and the demo pharmacist's password."""
    db_url = f"sqlite:///{work_dir / 'review.sqlite3'}"
    engine = make_engine(db_url)
    try:
        migrate(engine)
        password = secrets.token_urlsafe(12)
        Store(engine).add_user(DEMO_USER, DEMO_NAME, password)
    finally:
        engine.dispose()
    review = ReviewProcess(broker_url, db_url, log_path=work_dir / "review.log",
                           port=PREFERRED_PORT if port_is_free(PREFERRED_PORT) else None,
                           env={"RXGATE_LOG_LEVEL": "warning"})
    review.start()
    try:
        review.wait_ready()
    except BaseException:
        review.stop()
        raise
    return review, password
