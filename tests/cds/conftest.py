"""Fixtures for the CDS Hooks tests: a test EHR key pair (and a stranger's), a JWKS file, the app.

Tokens are real RS384 JWTs signed with real keys; the app verifies them against the JWKS file
configured as the EHR issuer's key set, exactly as it would a JWKS URL.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from rxgate.cds.app import create_app
from rxgate.cds.config import CdsSettings
from rxgate.knowledge import load_knowledge

ISSUER = "https://ehr.example.org"
KID = "ehr-test-1"
BASE = "http://testserver"
FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ehr_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def stranger_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def jwks_file(ehr_key, tmp_path_factory) -> Path:
    jwk = json.loads(RSAAlgorithm.to_jwk(ehr_key.public_key()))
    jwk.update(kid=KID, use="sig", alg="RS384")
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


@pytest.fixture(scope="session")
def knowledge():
    return load_knowledge(None)


def make_token(key, *, service: str = "rxgate-order-sign", iss: str = ISSUER, kid: str = KID,
               expires_in: int = 300, alg: str = "RS384", aud: str | None = None, **claims) -> str:
    now = int(time.time())
    payload = {"iss": iss, "sub": "ehr-client-1", "aud": aud or f"{BASE}/cds-services/{service}",
               "exp": now + expires_in, "iat": now, "jti": str(uuid.uuid4()), **claims}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="session")
def settings(jwks_file) -> CdsSettings:
    return CdsSettings(issuers={ISSUER: jwks_file.as_uri()}, audience=BASE, fhir_timeout=2.0,
                       max_body_bytes=256 * 1024)


@pytest.fixture(scope="session")
def app(settings, knowledge):
    return create_app(settings, knowledge)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth(ehr_key):
    def headers(service: str = "rxgate-order-sign") -> dict:
        return {"Authorization": f"Bearer {make_token(ehr_key, service=service)}"}
    return headers
