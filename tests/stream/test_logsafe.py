"""Tracebacks in the worker's log keep frames and types, never an exception's message."""
from __future__ import annotations

import io
import logging

from rxgate.stream import logsafe


def _log_exception(exc_factory) -> str:
    logsafe.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("rxgate.test.logsafe")
    logger.addHandler(handler)
    try:
        try:
            exc_factory()
        except Exception:
            logger.exception("could not handle rx.orders.v1[%d]@%d", 3, 41)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_defect_is_logged_with_its_frames_but_not_its_message():
    patient = {"patient_id": "P-" + "SECRET-1", "birth_date": "19" + "55-04-12"}

    def defect():  # the source lines hold no data; the messages do
        try:
            {}[patient["patient_id"]]
        except KeyError as e:
            raise ValueError(f"born {patient['birth_date']}") from e

    text = _log_exception(defect)
    assert "could not handle rx.orders.v1[3]@41" in text
    assert "Traceback (most recent call last)" in text and "in defect" in text
    assert "KeyError: " + logsafe.WITHHELD in text and "ValueError: " + logsafe.WITHHELD in text
    assert "direct cause" in text
    assert "SECRET" not in text and "1955" not in text


def test_broker_and_network_errors_keep_their_messages():
    def network():
        raise ConnectionRefusedError(111, "Connect call failed ('10.1.2.3', 9092)")

    assert "Connect call failed ('10.1.2.3', 9092)" in _log_exception(network)
