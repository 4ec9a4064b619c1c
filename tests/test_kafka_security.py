"""RXGATE_KAFKA_*: a bad setting is refused naming its variable; good ones reach every client."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from rxgate.kafka_security import KafkaSecurity, KafkaSecurityError
from rxgate.stream.config import ConfigError, Settings

from .stream.proxy import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def env_for(**values: str) -> dict[str, str]:
    return {f"RXGATE_KAFKA_{k.upper()}": v for k, v in values.items()}


def test_plaintext_by_default_changes_no_client():
    security = KafkaSecurity.from_env({})
    assert security.protocol == "PLAINTEXT"
    assert security.client_kwargs() == {}
    assert security.faust_credentials() is None


def test_ssl_builds_a_verifying_context_from_the_ca(pki):
    security = KafkaSecurity.from_env(env_for(security_protocol="ssl", ssl_cafile=str(pki.ca)))
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SSL"
    context = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName",
                                                                 "rxgate test ca"),),)]
    # faust hands its consumer and producer exactly these settings
    assert credentials_to_aiokafka_auth(security.faust_credentials()) == kwargs


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_with_a_password_file(pki, tmp_path, mechanism):
    secret = tmp_path / "password"
    secret.write_text("s3cret with spaces\n")
    security = KafkaSecurity.from_env(env_for(
        security_protocol="SASL_SSL", ssl_cafile=str(pki.ca), sasl_mechanism=mechanism,
        sasl_username="rxgate", sasl_password_file=str(secret)))
    kwargs = security.client_kwargs()
    assert kwargs == {"security_protocol": "SASL_SSL", "ssl_context": kwargs["ssl_context"],
                      "sasl_mechanism": mechanism, "sasl_plain_username": "rxgate",
                      "sasl_plain_password": "s3cret with spaces"}
    assert credentials_to_aiokafka_auth(security.faust_credentials()) == kwargs
    assert "s3cret" not in repr(security) and "s3cret" not in security.describe()


def test_sasl_plaintext_with_the_password_in_the_environment():
    security = KafkaSecurity.from_env(env_for(security_protocol="SASL_PLAINTEXT",
                                              sasl_username="u", sasl_password="p"))
    assert security.client_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u", "sasl_plain_password": "p"}
    assert credentials_to_aiokafka_auth(security.faust_credentials()) == {
        **security.client_kwargs(), "ssl_context": None}


def test_a_client_certificate_is_loaded(tmp_path, pki):
    security = KafkaSecurity.from_env(env_for(
        security_protocol="SSL", ssl_cafile=str(pki.ca), ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key)))
    assert security.ssl_context is not None and security.certfile == str(pki.server_cert)


def bad_settings(pki, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return [
        ("RXGATE_KAFKA_SECURITY_PROTOCOL", env_for(security_protocol="TLS")),
        ("RXGATE_KAFKA_SSL_CAFILE", env_for(security_protocol="SSL",
                                            ssl_cafile="/nonexistent/ca.pem")),
        ("RXGATE_KAFKA_SSL_CAFILE", env_for(security_protocol="SSL", ssl_cafile=str(garbage))),
        ("RXGATE_KAFKA_SSL_CAFILE", env_for(ssl_cafile=str(pki.ca))),  # PLAINTEXT: unused
        ("RXGATE_KAFKA_SSL_KEYFILE", env_for(security_protocol="SSL",
                                             ssl_certfile=str(pki.server_cert))),
        ("RXGATE_KAFKA_SSL_CERTFILE", env_for(security_protocol="SSL",
                                              ssl_certfile=str(pki.ca),  # not its key
                                              ssl_keyfile=str(pki.server_key))),
        ("RXGATE_KAFKA_SSL_CHECK_HOSTNAME", env_for(security_protocol="SSL",
                                                    ssl_check_hostname="maybe")),
        ("RXGATE_KAFKA_SASL_MECHANISM", env_for(security_protocol="SASL_SSL",
                                                sasl_mechanism="GSSAPI", sasl_username="u",
                                                sasl_password="p")),
        ("RXGATE_KAFKA_SASL_USERNAME", env_for(security_protocol="SASL_SSL",
                                               sasl_password="p")),
        ("RXGATE_KAFKA_SASL_PASSWORD", env_for(security_protocol="SASL_SSL",
                                               sasl_username="u")),
        ("RXGATE_KAFKA_SASL_PASSWORD_FILE", env_for(security_protocol="SASL_SSL",
                                                    sasl_username="u", sasl_password="p",
                                                    sasl_password_file=str(empty))),
        ("RXGATE_KAFKA_SASL_PASSWORD_FILE", env_for(security_protocol="SASL_SSL",
                                                    sasl_username="u",
                                                    sasl_password_file=str(empty))),
        ("RXGATE_KAFKA_SASL_PASSWORD_FILE", env_for(security_protocol="SASL_SSL",
                                                    sasl_username="u",
                                                    sasl_password_file="/nonexistent/pw")),
        ("RXGATE_KAFKA_SASL_USERNAME", env_for(security_protocol="SSL", sasl_username="u")),
    ]


def test_every_bad_setting_is_refused_naming_its_variable(pki, tmp_path):
    for name, env in bad_settings(pki, tmp_path):
        with pytest.raises(KafkaSecurityError, match=name):
            KafkaSecurity.from_env(env)
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(env)


def test_the_worker_refuses_a_bad_setting_before_connecting(pki):
    done = subprocess.run([sys.executable, "-m", "rxgate.cli", "worker"],
                          env={**os.environ, "RXGATE_KAFKA_SECURITY_PROTOCOL": "SSL",
                               "RXGATE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem",
                               "RXGATE_METRICS_PORT": "0"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "RXGATE_KAFKA_SSL_CAFILE=/nonexistent/ca.pem: no such file" in done.stderr
