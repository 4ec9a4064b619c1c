"""The streaming validator's configuration: environment variables, read once at start-up.

| variable | default | meaning |
|---|---|---|
| `RXGATE_BROKER` | `kafka://127.0.0.1:9092` | Kafka bootstrap servers, `kafka://host:port[;host:port...]` |
| `RXGATE_PARTITIONS` | `4` | partitions of every topic the worker creates when missing (orders, decisions, dead letters, the history changelog); existing topics must all have the same count |
| `RXGATE_REPLICATION` | `1` | replication factor of the topics it creates |
| `RXGATE_KNOWLEDGE_DIR` | (built-in knowledge) | directory of drug monographs; watched while the worker runs: a valid new version goes live, a malformed one is refused and the old one keeps serving |
| `RXGATE_KNOWLEDGE_POLL_SECONDS` | `10` | how often the worker looks for a changed `RXGATE_KNOWLEDGE_DIR` |
| `RXGATE_METRICS_PORT` | `9108` | port serving `/metrics` (Prometheus text) and `/healthz` (200 once consuming, else 503); `0` turns it off |
| `RXGATE_METRICS_HOST` | `0.0.0.0` | address the metrics port listens on |
| `RXGATE_GROUP` | `rxgate-validator` | consumer group id; also names the history table's changelog topic (`<group>-patient-history-changelog`) |
| `RXGATE_SEEN_RETENTION_DAYS` | `30` | how long (in event time) a patient's seen `event_id`s are remembered for de-duplication |
| `RXGATE_MAX_SEEN` | `10000` | at most this many seen `event_id`s per patient (oldest forgotten first) |
| `RXGATE_READBACK_MAX` | `100000` | at most this many records read back per output partition when a partition is (re)assigned |
| `RXGATE_BATCH_MAX` | `500` | at most this many input records are handled as one batch: their outputs sent together, the acknowledgements awaited once, each patient's history written once, the position advanced once |
| `RXGATE_BATCH_WAIT_MS` | `5` | a batch closes this many milliseconds after its first record arrived, or when it is full, whichever comes first (`0`: it takes what has arrived and closes at once) |
| `RXGATE_FETCH_WAIT_MS` | `50` | the longest the broker may hold a fetch of the input topics before answering (Kafka's `fetch.max.wait.ms`; faust's own is 1,500 ms): a broker that holds a fetch until this runs out although records have arrived (the embedded Tansu often does) delays records by up to this much |
| `RXGATE_SESSION_TIMEOUT` | `10` | consumer-group session timeout, seconds: how soon a killed worker's partitions move |
| `RXGATE_DATA_DIR` | (a temporary directory) | faust's working directory (created when missing) |
| `RXGATE_LOG_LEVEL` | `info` | `debug`, `info`, `warning` or `error` |
| `RXGATE_LOG_FORMAT` | `text` | `text` (one line per record) or `json` (one JSON object per line, for log collectors); faust's and aiokafka's records included, never terminal colours |
| `RXGATE_STALL_SECONDS` | `30` | a record whose checks run longer than this is logged (partition, offset), counted (`rxgate_stalls_total`) and makes `/readyz` answer 503 while it lasts; `/livez` fails once the event loop has been blocked for twice this |
| `RXGATE_KAFKA_*` | PLAINTEXT | TLS and SASL for every Kafka client: see `rxgate.kafka_security` |

A value that does not parse stops start-up with a message naming the variable.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

from ..kafka_security import KafkaSecurity, KafkaSecurityError

ORDERS_TOPIC = "rx.orders.v1"
APPROVED_TOPIC = "rx.decisions.approved.v1"
FLAGGED_TOPIC = "rx.decisions.flagged.v1"
INVALID_TOPIC = "rx.orders.invalid.v1"
OUTPUT_TOPICS = (APPROVED_TOPIC, FLAGGED_TOPIC, INVALID_TOPIC)
HISTORY_TABLE = "patient-history"

# Inputs over 1 MiB are dead letters, so the broker must carry them to us, and a dead letter
# holds its input whole (JSON-escaped: up to 6 bytes per input byte for control characters).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

_T = TypeVar("_T")


def env_reader(env: Mapping[str, str]) -> Callable[[str, Callable[[str], _T], _T], _T]:
    """get(name, parse, default): the variable parsed, the default when unset or blank, or a
    ConfigError naming the variable and its value."""
    def get(name: str, parse: Callable[[str], _T], default: _T) -> _T:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{name}={raw!r}: {e}") from None

    return get


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    broker: str = "kafka://127.0.0.1:9092"
    partitions: int = 4
    replication: int = 1
    knowledge_dir: str | None = None
    knowledge_poll: float = 10.0
    metrics_port: int = 9108
    metrics_host: str = "0.0.0.0"
    group: str = "rxgate-validator"
    seen_retention: dt.timedelta = dt.timedelta(days=30)
    max_seen: int = 10_000
    readback_max: int = 100_000
    batch_max: int = 500
    batch_wait: float = 0.005  # seconds
    fetch_wait: float = 0.05  # seconds
    session_timeout: float = 10.0
    data_dir: str | None = None
    log_level: str = "info"
    log_format: str = "text"
    stall_seconds: float = 30.0
    kafka: KafkaSecurity = KafkaSecurity()

    @property
    def bootstrap_servers(self) -> list[str]:
        """`host:port` strings for aiokafka."""
        return _parse_broker(self.broker)

    @property
    def changelog_topic(self) -> str:
        return f"{self.group}-{HISTORY_TABLE}-changelog"

    @property
    def repartition_topic(self) -> str:
        """Where events that arrived off their patient's canonical partition are forwarded."""
        return f"{self.group}-orders-repartition"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()

        get = env_reader(env)

        settings = cls(
            broker=get("RXGATE_BROKER", _broker, d.broker),
            partitions=get("RXGATE_PARTITIONS", _int_between(1, 10_000), d.partitions),
            replication=get("RXGATE_REPLICATION", _int_between(1, 100), d.replication),
            knowledge_dir=get("RXGATE_KNOWLEDGE_DIR", _directory, d.knowledge_dir),
            knowledge_poll=get("RXGATE_KNOWLEDGE_POLL_SECONDS", _seconds_between(0.5, 3600),
                               d.knowledge_poll),
            metrics_port=get("RXGATE_METRICS_PORT", _int_between(0, 65535), d.metrics_port),
            metrics_host=get("RXGATE_METRICS_HOST", _host, d.metrics_host),
            group=get("RXGATE_GROUP", _group, d.group),
            seen_retention=get("RXGATE_SEEN_RETENTION_DAYS", _days, d.seen_retention),
            max_seen=get("RXGATE_MAX_SEEN", _int_between(1, 10_000_000), d.max_seen),
            readback_max=get("RXGATE_READBACK_MAX", _int_between(1, 100_000_000), d.readback_max),
            batch_max=get("RXGATE_BATCH_MAX", _int_between(1, 100_000), d.batch_max),
            batch_wait=get("RXGATE_BATCH_WAIT_MS", _milliseconds_between(0, 1000),
                           d.batch_wait),
            fetch_wait=get("RXGATE_FETCH_WAIT_MS", _milliseconds_between(1, 10_000),
                           d.fetch_wait),
            session_timeout=get("RXGATE_SESSION_TIMEOUT", _seconds_between(3, 300),
                                d.session_timeout),
            data_dir=get("RXGATE_DATA_DIR", _data_dir, d.data_dir),
            log_level=get("RXGATE_LOG_LEVEL", _log_level, d.log_level),
            log_format=get("RXGATE_LOG_FORMAT", _log_format, d.log_format),
            stall_seconds=get("RXGATE_STALL_SECONDS", _seconds_between(1, 3600),
                              d.stall_seconds),
            kafka=_kafka_security(env),
        )
        return settings


def _kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    try:
        return KafkaSecurity.from_env(env)
    except KafkaSecurityError as e:
        raise ConfigError(str(e)) from None


def _parse_broker(value: str) -> list[str]:
    if not value.startswith("kafka://"):
        raise ValueError("expected kafka://host:port[;host:port...]")
    servers = [s.strip() for s in re.split(r"[;,]", value[len("kafka://"):]) if s.strip()]
    if not servers:
        raise ValueError("no host:port after kafka://")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{server!r} is not host:port")
    return servers


def _broker(value: str) -> str:
    _parse_broker(value)
    return value


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if not low <= n <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return n

    return parse


def _seconds_between(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            n = float(value)
        except ValueError:
            raise ValueError("expected a number of seconds") from None
        if not low <= n <= high:
            raise ValueError(f"expected {low:g} to {high:g} seconds")
        return n

    return parse


def _milliseconds_between(low: float, high: float) -> Callable[[str], float]:
    """Milliseconds in the variable, seconds in the setting."""
    def parse(value: str) -> float:
        try:
            n = float(value)
        except ValueError:
            raise ValueError("expected a number of milliseconds") from None
        if not low <= n <= high:
            raise ValueError(f"expected {low:g} to {high:g} milliseconds")
        return n / 1000.0

    return parse


def _days(value: str) -> dt.timedelta:
    try:
        n = float(value)
    except ValueError:
        raise ValueError("expected a number of days") from None
    if not 0 < n <= 3650:
        raise ValueError("expected more than 0 and at most 3650 days")
    return dt.timedelta(days=n)


def _directory(value: str) -> str:
    if not os.path.isdir(value):
        raise ValueError("not a directory")
    return value


def _group(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", value):
        raise ValueError("use letters, digits, '.', '_' and '-' only")
    return value


def _log_level(value: str) -> str:
    level = value.lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError("expected debug, info, warning or error")
    return level


def _log_format(value: str) -> str:
    fmt = value.lower()
    if fmt not in ("text", "json"):
        raise ValueError("expected text or json")
    return fmt


def _host(value: str) -> str:
    """An address (or a name that resolves) the metrics server can listen on."""
    try:
        socket.getaddrinfo(value, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise ValueError(f"not an address or a host name this machine resolves ({why})") from None
    return value


def _data_dir(value: str) -> str:
    """A directory the worker can write, or one it can create (its parent is writable)."""
    path = os.path.abspath(value)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError("exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError("is a directory this user cannot write")
        return value
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"cannot be created: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"cannot be created: {parent} is not writable by this user")
    return value
