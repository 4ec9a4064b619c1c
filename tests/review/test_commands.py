"""`rxgate review migrate` and `add-user` as an operator runs them, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import inspect

from rxgate.review.db import current_revision, make_engine
from rxgate.review.store import Store

from .conftest import PASSWORD


def rxgate(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rxgate.cli", "review", *args], input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RXGATE_REVIEW_DB": db_url})


def test_migrate_and_add_user(db_url):
    done = rxgate(db_url, "migrate")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout and "password" not in done.stdout
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == "0001" and "users" in inspect(engine).get_table_names()
        done = rxgate(db_url, "add-user", "RPH-12", "--name", "Ada Lovelace", "--password-stdin",
                      stdin=PASSWORD + "\n")
        assert done.returncode == 0 and "added RPH-12 (Ada Lovelace)" in done.stdout
        assert Store(engine).sign_in("RPH-12", PASSWORD, None)[2].name == "Ada Lovelace"
        again = rxgate(db_url, "add-user", "RPH-12", "--name", "X", "--password-stdin",
                       stdin=PASSWORD + "\n")
        assert again.returncode == 2 and "exists" in again.stderr
        short = rxgate(db_url, "add-user", "RPH-13", "--name", "X", "--password-stdin",
                       stdin="short\n")
        assert short.returncode == 2 and "at least 10 characters" in short.stderr
        reset = rxgate(db_url, "add-user", "RPH-12", "--name", "Ada L.", "--reset-password",
                       "--password-stdin", stdin="another long password\n")
        assert reset.returncode == 0
        assert Store(engine).sign_in("RPH-12", "another long password", None)[2].name == "Ada L."
    finally:
        engine.dispose()


def test_a_bad_setting_names_itself(tmp_path):
    done = rxgate("mysql://nowhere/db", "migrate")
    assert done.returncode == 2 and "RXGATE_REVIEW_DB" in done.stderr
