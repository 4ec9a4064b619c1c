"""How rxgate's Kafka clients connect: TLS and SASL settings, read once from the environment.

One place for every Kafka client a shell creates (the faust app's consumer and producer, the
admin clients, the read-back and health consumers; the review service too), so no client can
be left on PLAINTEXT by mistake.

| variable | default | meaning |
|---|---|---|
| `RXGATE_KAFKA_SECURITY_PROTOCOL` | `PLAINTEXT` | `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` |
| `RXGATE_KAFKA_SSL_CAFILE` | (the system's trust store) | PEM file of the CA certificate(s) the broker's certificate must chain to |
| `RXGATE_KAFKA_SSL_CERTFILE` | (none) | PEM client certificate, for brokers that require one (mutual TLS); with `RXGATE_KAFKA_SSL_KEYFILE` |
| `RXGATE_KAFKA_SSL_KEYFILE` | (none) | PEM private key of that certificate (unencrypted) |
| `RXGATE_KAFKA_SSL_CHECK_HOSTNAME` | `true` | `false` accepts a broker certificate issued for another host name (still signed by the CA) |
| `RXGATE_KAFKA_SASL_MECHANISM` | `PLAIN` | `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` |
| `RXGATE_KAFKA_SASL_USERNAME` | (none) | SASL user name (required with `SASL_*`) |
| `RXGATE_KAFKA_SASL_PASSWORD` | (none) | SASL password |
| `RXGATE_KAFKA_SASL_PASSWORD_FILE` | (none) | file holding the SASL password (one trailing newline is ignored); use this or `RXGATE_KAFKA_SASL_PASSWORD`, not both |

A setting that does not fit the protocol (a CA file with `PLAINTEXT`, a password with `SSL`)
is refused rather than ignored: an operator who set a CA file but forgot the protocol would
otherwise connect unencrypted. Every refusal names the variable.

`check_broker()` connects once at start-up, so a wrong CA, a broker that does not speak TLS,
or refused credentials stop start-up with a message naming the setting instead of an endless
retry loop in the client's log.
"""
from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from typing import Any, Mapping

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

PROTOCOL = "RXGATE_KAFKA_SECURITY_PROTOCOL"
CAFILE = "RXGATE_KAFKA_SSL_CAFILE"
CERTFILE = "RXGATE_KAFKA_SSL_CERTFILE"
KEYFILE = "RXGATE_KAFKA_SSL_KEYFILE"
CHECK_HOSTNAME = "RXGATE_KAFKA_SSL_CHECK_HOSTNAME"
MECHANISM = "RXGATE_KAFKA_SASL_MECHANISM"
USERNAME = "RXGATE_KAFKA_SASL_USERNAME"
PASSWORD = "RXGATE_KAFKA_SASL_PASSWORD"
PASSWORD_FILE = "RXGATE_KAFKA_SASL_PASSWORD_FILE"

SSL_VARIABLES = (CAFILE, CERTFILE, KEYFILE, CHECK_HOSTNAME)
SASL_VARIABLES = (MECHANISM, USERNAME, PASSWORD, PASSWORD_FILE)


class KafkaSecurityError(ValueError):
    """A security setting is wrong, or the broker refused it; the message names the variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = None
    password_source: str = PASSWORD  # which variable the password came from (for messages)
    ssl_context: ssl.SSLContext | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def __repr__(self) -> str:  # never the password
        return (f"KafkaSecurity(protocol={self.protocol!r}, cafile={self.cafile!r}, "
                f"certfile={self.certfile!r}, mechanism={self.mechanism!r}, "
                f"username={self.username!r})")

    def describe(self) -> str:
        """One line for the start-up banner (no secrets)."""
        parts = [self.protocol]
        if self.uses_tls:
            parts.append(f"CA {self.cafile or 'system trust store'}")
            if self.certfile:
                parts.append(f"client certificate {self.certfile}")
        if self.uses_sasl:
            parts.append(f"SASL {self.mechanism} as {self.username}")
        return ", ".join(parts)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "KafkaSecurity":
        env = os.environ if env is None else env

        def value(name: str) -> str | None:
            raw = env.get(name)
            return None if raw is None or raw.strip() == "" else raw.strip()

        protocol = (value(PROTOCOL) or "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"{PROTOCOL}={env.get(PROTOCOL)!r}: expected "
                                     f"{', '.join(PROTOCOLS)}")
        tls = protocol in ("SSL", "SASL_SSL")
        sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        for name in SSL_VARIABLES if not tls else ():
            if value(name) is not None:
                raise KafkaSecurityError(
                    f"{name} is set but {PROTOCOL}={protocol} does not use TLS; set {PROTOCOL} "
                    "to SSL or SASL_SSL, or unset it")
        for name in SASL_VARIABLES if not sasl else ():
            if value(name) is not None:
                raise KafkaSecurityError(
                    f"{name} is set but {PROTOCOL}={protocol} does not use SASL; set {PROTOCOL} "
                    "to SASL_SSL or SASL_PLAINTEXT, or unset it")
        fields: dict[str, Any] = {"protocol": protocol}
        if tls:
            cafile, certfile, keyfile = value(CAFILE), value(CERTFILE), value(KEYFILE)
            check = value(CHECK_HOSTNAME) or "true"
            if check.lower() not in ("true", "false"):
                raise KafkaSecurityError(f"{CHECK_HOSTNAME}={check!r}: expected true or false")
            fields.update(cafile=cafile, certfile=certfile, keyfile=keyfile,
                          check_hostname=check.lower() == "true")
            fields["ssl_context"] = build_ssl_context(cafile, certfile, keyfile,
                                                      fields["check_hostname"])
        if sasl:
            mechanism = (value(MECHANISM) or "PLAIN").upper()
            if mechanism not in MECHANISMS:
                raise KafkaSecurityError(f"{MECHANISM}={env.get(MECHANISM)!r}: expected "
                                         f"{', '.join(MECHANISMS)}")
            username = value(USERNAME)
            if username is None:
                raise KafkaSecurityError(f"{USERNAME} is required with {PROTOCOL}={protocol}")
            password, source = _password(env.get(PASSWORD), value(PASSWORD_FILE))
            fields.update(mechanism=mechanism, username=username, password=password,
                          password_source=source)
        return cls(**fields)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (consumer, producer, admin)."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password)
        return kwargs

    def faust_credentials(self):
        """The faust App's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         ssl_context=self.ssl_context,
                                         mechanism=self.mechanism)
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context)
        return None

    async def check_broker(self, servers: list[str], timeout: float = 10.0) -> bool:
        """Connect to the bootstrap servers once with these settings (TLS handshake, API
        versions, SASL). True when one of them accepted; False when none could be reached
        at all (the caller retries). Raises KafkaSecurityError when a broker answered but
        refused the settings."""
        from aiokafka.conn import create_conn
        from aiokafka.errors import KafkaError
        from aiokafka.protocol.metadata import MetadataRequest

        refusal: KafkaSecurityError | None = None
        for server in servers:
            host, _, port = server.rpartition(":")
            try:
                conn = await asyncio.wait_for(
                    create_conn(host, int(port), client_id="rxgate-connect-check",
                                request_timeout_ms=int(timeout * 1000), **self.client_kwargs()),
                    timeout)
            except ssl.SSLCertVerificationError as e:
                refusal = self._verify_failed(server, e)
            except ssl.SSLError as e:
                refusal = KafkaSecurityError(
                    f"{PROTOCOL}={self.protocol}: the TLS handshake with the broker at {server} "
                    f"failed ({e.reason or e}); does it listen for TLS on that port? "
                    + (f"Does it want the client certificate in {CERTFILE}?"
                       if not self.certfile else f"Does it accept {CERTFILE}={self.certfile}?"))
            except asyncio.TimeoutError:  # before OSError, its base class
                if self.uses_tls and await _speaks_plaintext(host, int(port)):
                    refusal = KafkaSecurityError(
                        f"{PROTOCOL}={self.protocol}: the broker at {server} did not complete "
                        "a TLS handshake: it answers plain Kafka requests on that port (a "
                        "PLAINTEXT listener); use its TLS listener, or PLAINTEXT")
                continue  # else a slow or paused broker: the caller retries
            except (ConnectionRefusedError, OSError) as e:
                if isinstance(e, ConnectionResetError) and self.protocol == "PLAINTEXT":
                    refusal = _plaintext_refused(server)
                continue  # unreachable: not a security matter
            except KafkaError as e:
                refusal = self._kafka_refused(server, e)
            except Exception as e:  # e.g. aiokafka's SCRAM code meeting an error reply
                if not self.uses_sasl:
                    raise
                refusal = self._sasl_refused(server, e)
            else:
                try:  # connected: may it ask for anything? (SASL-only brokers hang up here)
                    await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
                except asyncio.TimeoutError:  # before OSError, its base class
                    continue
                except (KafkaError, OSError) as e:
                    refusal = KafkaSecurityError(
                        f"{PROTOCOL}={self.protocol}: the broker at {server} closed the "
                        f"connection on a Metadata request ({e!r}); does it require SASL "
                        f"authentication? Then set {PROTOCOL} to SASL_SSL or SASL_PLAINTEXT"
                        if not self.uses_sasl else
                        f"the broker at {server} refused a Metadata request after "
                        f"authenticating {USERNAME}={self.username} ({e!r})")
                    continue
                finally:
                    conn.close()
                return True
        if refusal is not None:
            raise refusal
        return False

    def _verify_failed(self, server: str, e: ssl.SSLCertVerificationError) -> KafkaSecurityError:
        detail = e.verify_message or e.reason or str(e)
        if e.verify_code == 62 or "hostname" in str(detail).lower():  # hostname mismatch
            return KafkaSecurityError(
                f"the certificate of the broker at {server} is not issued for that host name "
                f"(certificate verify failed: {detail}); connect by the name on the "
                f"certificate, or set {CHECK_HOSTNAME}=false")
        where = self.cafile if self.cafile else "(unset: the system's trust store)"
        return KafkaSecurityError(
            f"{CAFILE}={where}: the certificate of the broker at {server} does not verify "
            f"against it (certificate verify failed: {detail})")

    def _sasl_refused(self, server: str, e: Exception) -> KafkaSecurityError:
        if isinstance(e, KeyError):  # aiokafka's SCRAM client reading an error reply
            why = "the broker ended the SCRAM exchange without a proof: unknown user or wrong " \
                  "password"
        else:
            why = f"{type(e).__name__}: {e}"
        return KafkaSecurityError(
            f"the broker at {server} refused {USERNAME}={self.username} with the password from "
            f"{self.password_source} ({MECHANISM}={self.mechanism}): {why}")

    def _kafka_refused(self, server: str, e: Exception) -> KafkaSecurityError:
        from aiokafka.errors import (AuthenticationFailedError, IllegalSaslStateError,
                                     KafkaConnectionError, UnsupportedSaslMechanismError)

        if isinstance(e, UnsupportedSaslMechanismError):
            return KafkaSecurityError(
                f"{MECHANISM}={self.mechanism}: the broker at {server} does not offer it ({e})")
        if isinstance(e, (AuthenticationFailedError, IllegalSaslStateError)):
            return self._sasl_refused(server, e)
        if self.protocol == "PLAINTEXT":
            return _plaintext_refused(server)
        if self.uses_sasl and isinstance(e, KafkaConnectionError):
            return KafkaSecurityError(
                f"the broker at {server} closed the connection during SASL authentication "
                f"({MECHANISM}={self.mechanism}, {USERNAME}={self.username}): does it offer "
                "that mechanism, and are the user name and password right?")
        return KafkaSecurityError(f"{PROTOCOL}={self.protocol}: connecting to the broker at "
                                  f"{server} failed: {e!r}")


async def _speaks_plaintext(host: str, port: int) -> bool:
    from .broker import kafka_metadata_ok  # a plain Metadata request, standard library only

    return await asyncio.to_thread(kafka_metadata_ok, host, port, 2.0)


def _plaintext_refused(server: str, what: str = "closed the connection") -> KafkaSecurityError:
    return KafkaSecurityError(
        f"{PROTOCOL}=PLAINTEXT: the broker at {server} {what} before answering; if it requires "
        f"TLS or SASL, set {PROTOCOL} (SSL, SASL_SSL, SASL_PLAINTEXT)")


def build_ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None,
                      check_hostname: bool = True) -> ssl.SSLContext:
    """A client-side TLS context (TLS 1.2 or later, the broker's certificate verified)."""
    for name, path in ((CAFILE, cafile), (CERTFILE, certfile), (KEYFILE, keyfile)):
        if path is not None and not os.path.isfile(path):
            raise KafkaSecurityError(f"{name}={path}: no such file")
    if (certfile is None) != (keyfile is None):
        given, missing = (CERTFILE, KEYFILE) if keyfile is None else (KEYFILE, CERTFILE)
        raise KafkaSecurityError(f"{given} is set but {missing} is not: a client certificate "
                                 "needs both")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except ssl.SSLError as e:
        raise KafkaSecurityError(f"{CAFILE}={cafile}: not a PEM CA certificate ({e.reason or e})"
                                 ) from None
    except OSError as e:
        raise KafkaSecurityError(f"{CAFILE}={cafile}: cannot be read ({e.strerror or e})") \
            from None
    if cafile is not None and not context.get_ca_certs():
        raise KafkaSecurityError(f"{CAFILE}={cafile}: holds no CA certificate")
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except ssl.SSLError as e:
            raise KafkaSecurityError(
                f"{CERTFILE}={certfile} / {KEYFILE}={keyfile}: not a PEM certificate and its "
                f"unencrypted private key, or they do not match ({e.reason or e})") from None
        except OSError as e:
            raise KafkaSecurityError(f"{CERTFILE}={certfile} / {KEYFILE}={keyfile}: cannot be "
                                     f"read ({e.strerror or e})") from None
    return context


def _password(direct: str | None, path: str | None) -> tuple[str, str]:
    if direct is not None and direct != "" and path is not None:
        raise KafkaSecurityError(f"both {PASSWORD} and {PASSWORD_FILE} are set; use one")
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise KafkaSecurityError(f"{PASSWORD_FILE}={path}: cannot be read "
                                     f"({e.strerror or e})") from None
        except UnicodeDecodeError:
            raise KafkaSecurityError(f"{PASSWORD_FILE}={path}: not UTF-8 text") from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise KafkaSecurityError(f"{PASSWORD_FILE}={path}: the file is empty")
        return text, PASSWORD_FILE
    if not direct:
        raise KafkaSecurityError(f"{PASSWORD} or {PASSWORD_FILE} is required with SASL")
    return direct, PASSWORD
