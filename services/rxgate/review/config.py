"""The review service's settings: environment variables, read once at start-up.

| variable | default | meaning |
|---|---|---|
| `RXGATE_REVIEW_DB` | `sqlite:///rxgate-review.sqlite3` | the store: `sqlite:///PATH` (a file) or `postgresql://user@host:port/db` |
| `RXGATE_BROKER` | `kafka://127.0.0.1:9092` | Kafka bootstrap servers, as for the worker |
| `RXGATE_REVIEW_HOST` | `127.0.0.1` | address the web page, API and `/metrics` listen on |
| `RXGATE_REVIEW_PORT` | `8090` | their port |
| `RXGATE_REVIEW_SESSION_IDLE_MINUTES` | `15` | a session ends after this long without a request |
| `RXGATE_REVIEW_SECURE_COOKIES` | `false` | `true` behind HTTPS: cookies are sent over HTTPS only |
| `RXGATE_REVIEW_LOGIN_ATTEMPTS` | `5` | failed sign-ins per account (and per client address) allowed in 15 minutes |
| `RXGATE_REVIEW_READBACK_MAX` | `10000` | at most this many records read back per output partition before publishing unsent actions |
| `RXGATE_REVIEW_PARTITIONS` | `4` | partitions of rx.reviews.v1 / rx.decisions.verified.v1 when the service creates them |
| `RXGATE_REPLICATION` | `1` | their replication factor, as for the worker's topics |
| `RXGATE_LOG_LEVEL` | `info` | `debug`, `info`, `warning` or `error` |

A value that does not parse stops start-up with a message naming the variable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ..stream.config import (ConfigError, _broker, _int_between, _log_level, _parse_broker,
                             env_reader)
from ..kafka_security import KafkaSecurity, KafkaSecurityError

ORDERS_TOPIC = "rx.orders.v1"
APPROVED_TOPIC = "rx.decisions.approved.v1"
FLAGGED_TOPIC = "rx.decisions.flagged.v1"
REVIEWS_TOPIC = "rx.reviews.v1"
VERIFIED_TOPIC = "rx.decisions.verified.v1"
INPUT_TOPICS = (ORDERS_TOPIC, APPROVED_TOPIC, FLAGGED_TOPIC)
OUTPUT_TOPICS = (REVIEWS_TOPIC, VERIFIED_TOPIC)

DEFAULT_DB = "sqlite:///rxgate-review.sqlite3"



@dataclass(frozen=True)
class ReviewSettings:
    db_url: str = DEFAULT_DB
    broker: str = "kafka://127.0.0.1:9092"
    host: str = "127.0.0.1"
    port: int = 8090
    session_idle_minutes: int = 15
    secure_cookies: bool = False
    login_attempts: int = 5
    readback_max: int = 10_000
    partitions: int = 4
    replication: int = 1
    log_level: str = "info"
    # fault injection for the exactly-once tests: "before:SECONDS" or "after:SECONDS" pauses
    # the outbox around a publish (RXGATE_REVIEW_OUTBOX_PAUSE); never set in production
    outbox_pause: tuple[str, float] | None = None
    kafka: KafkaSecurity = KafkaSecurity()  # RXGATE_KAFKA_*, as the worker reads them

    @property
    def bootstrap_servers(self) -> list[str]:
        return _parse_broker(self.broker)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ReviewSettings":
        env = os.environ if env is None else env
        d = cls()

        get = env_reader(env)

        return cls(
            db_url=get("RXGATE_REVIEW_DB", _db_url, d.db_url),
            broker=get("RXGATE_BROKER", _broker, d.broker),
            host=get("RXGATE_REVIEW_HOST", str, d.host),
            port=get("RXGATE_REVIEW_PORT", _int_between(0, 65535), d.port),
            session_idle_minutes=get("RXGATE_REVIEW_SESSION_IDLE_MINUTES",
                                     _int_between(1, 24 * 60), d.session_idle_minutes),
            secure_cookies=get("RXGATE_REVIEW_SECURE_COOKIES", _bool, d.secure_cookies),
            login_attempts=get("RXGATE_REVIEW_LOGIN_ATTEMPTS", _int_between(1, 1000),
                               d.login_attempts),
            readback_max=get("RXGATE_REVIEW_READBACK_MAX", _int_between(1, 100_000_000),
                             d.readback_max),
            partitions=get("RXGATE_REVIEW_PARTITIONS", _int_between(1, 10_000), d.partitions),
            replication=get("RXGATE_REPLICATION", _int_between(1, 100), d.replication),
            log_level=get("RXGATE_LOG_LEVEL", _log_level, d.log_level),
            outbox_pause=get("RXGATE_REVIEW_OUTBOX_PAUSE", _pause, d.outbox_pause),
            kafka=_kafka_security(env),
        )


def _kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    try:
        return KafkaSecurity.from_env(env)
    except KafkaSecurityError as e:
        raise ConfigError(str(e)) from None


def _db_url(value: str) -> str:
    if not (value.startswith("sqlite:///") or value.startswith("postgresql://")
            or value.startswith("postgresql+psycopg://")):
        raise ValueError("expected sqlite:///PATH or postgresql://user@host:port/database")
    return value


def _bool(value: str) -> bool:
    v = value.lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _pause(value: str) -> tuple[str, float]:
    stage, _, seconds = value.partition(":")
    if stage not in ("before", "after"):
        raise ValueError("expected before:SECONDS or after:SECONDS")
    return stage, float(seconds)
