"""The served OpenAPI document, fuzzed by schemathesis (property-based, bounded): no input may
make the service answer 5xx, and every answer must fit the document. Each call carries a valid
EHR token, so the fuzzing reaches the hook handlers, not only the 401 gate."""
from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import schemathesis
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from jwt.algorithms import RSAAlgorithm
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from rxgate.cds.app import create_app
from rxgate.cds.config import CdsSettings
from rxgate.knowledge import load_knowledge

from .conftest import BASE, ISSUER, KID, make_token

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_JWKS_DIR = tempfile.mkdtemp(prefix="rxgate-cds-fuzz-")
atexit.register(shutil.rmtree, _JWKS_DIR, ignore_errors=True)  # leave nothing in /tmp
_JWKS = Path(_JWKS_DIR) / "jwks.json"
_JWKS.write_text(json.dumps({"keys": [{**json.loads(RSAAlgorithm.to_jwk(_KEY.public_key())), "kid": KID}]}))
APP = create_app(CdsSettings(issuers={ISSUER: _JWKS.as_uri()}, audience=BASE, max_body_bytes=64 * 1024),
                 load_knowledge(None))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def test_the_openapi_document_is_served():
    with TestClient(APP) as c:
        doc = c.get("/openapi.json").json()
    assert {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback"} <= set(doc["paths"])


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case):
    token = make_token(_KEY, aud=f"{BASE}{case.formatted_path}")
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                           checks=[not_a_server_error, response_schema_conformance])

