"""`rxgate cds` settings, from RXGATE_CDS_* environment variables, read once at start-up.

| variable | default | meaning |
|---|---|---|
| `RXGATE_CDS_ISSUERS` | (none: every service call is refused) | JSON object: EHR issuer (`iss`) -> its JWK Set URL (`https://...` or `file:///...`) |
| `RXGATE_CDS_AUDIENCE` | (not checked) | this service's base URL as the EHR calls it (`https://cds.example.org`); when set, a token's `aud` must be the URL of the service called |
| `RXGATE_CDS_HOST` / `RXGATE_CDS_PORT` | `127.0.0.1` / `8091` | where uvicorn listens |
| `RXGATE_CDS_MAX_BODY_BYTES` | `4194304` | larger request bodies get 413 |
| `RXGATE_CDS_FHIR_TIMEOUT` | `5` | seconds for each FHIR server read when prefetch is missing |
| `RXGATE_CDS_FHIR_SERVERS` | (any) | comma-separated URL prefixes a request's `fhirServer` must start with before rxgate reads from it |
| `RXGATE_CDS_BROKER` | (none) | Kafka bootstrap (`kafka://host:port[;...]`) for feedback -> `rx.reviews.v1`; unset: feedback is accepted, not published |
| `RXGATE_CDS_CARD_MEMORY` | `100000` | cards remembered for feedback (oldest forgotten first) |
| `RXGATE_KNOWLEDGE_DIR` | (built-in) | drug knowledge |
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

from ..kafka_security import KafkaSecurity, KafkaSecurityError


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class CdsSettings:
    issuers: dict[str, str] = field(default_factory=dict)  # iss -> JWKS URL
    audience: str | None = None
    host: str = "127.0.0.1"
    port: int = 8091
    max_body_bytes: int = 4 * 1024 * 1024
    fhir_timeout: float = 5.0
    fhir_servers: tuple[str, ...] = ()
    broker: str | None = None
    card_memory: int = 100_000
    knowledge_dir: str | None = None
    kafka: KafkaSecurity = field(default_factory=KafkaSecurity)  # RXGATE_KAFKA_*, as the worker's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "CdsSettings":
        env = os.environ if env is None else env
        issuers: dict[str, str] = {}
        raw = env.get("RXGATE_CDS_ISSUERS", "").strip()
        if raw:
            try:
                issuers = json.loads(raw)
            except ValueError as e:
                raise ConfigError(f"RXGATE_CDS_ISSUERS: not JSON: {e}") from None
            if not isinstance(issuers, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and v.startswith(("https://", "http://", "file://"))
                    for k, v in issuers.items()):
                raise ConfigError("RXGATE_CDS_ISSUERS: expected a JSON object of issuer -> JWKS URL")

        def number(name: str, default, kind, minimum):
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise ConfigError(f"{name}: {text!r} is not a number") from None
            if value < minimum:
                raise ConfigError(f"{name}: must be at least {minimum}")
            return value

        broker = env.get("RXGATE_CDS_BROKER", "").strip() or None
        if broker and not broker.startswith("kafka://"):
            raise ConfigError("RXGATE_CDS_BROKER: expected kafka://host:port[;host:port...]")
        return cls(
            issuers=issuers,
            audience=(env.get("RXGATE_CDS_AUDIENCE", "").strip().rstrip("/") or None),
            host=env.get("RXGATE_CDS_HOST", "").strip() or "127.0.0.1",
            port=number("RXGATE_CDS_PORT", 8091, int, 0),
            max_body_bytes=number("RXGATE_CDS_MAX_BODY_BYTES", 4 * 1024 * 1024, int, 1024),
            fhir_timeout=number("RXGATE_CDS_FHIR_TIMEOUT", 5.0, float, 0.1),
            fhir_servers=tuple(p.strip() for p in env.get("RXGATE_CDS_FHIR_SERVERS", "").split(",") if p.strip()),
            broker=broker,
            card_memory=number("RXGATE_CDS_CARD_MEMORY", 100_000, int, 1),
            knowledge_dir=env.get("RXGATE_KNOWLEDGE_DIR") or None,
            kafka=_kafka_security(env),
        )

    @property
    def bootstrap(self) -> str | None:
        return self.broker.removeprefix("kafka://").replace(";", ",") if self.broker else None


def _kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    try:
        return KafkaSecurity.from_env(env)
    except KafkaSecurityError as e:
        raise ConfigError(str(e)) from None
