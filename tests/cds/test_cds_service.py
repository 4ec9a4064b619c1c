"""The CDS Hooks service over HTTP (FastAPI's TestClient): discovery, cards, JWT, prefetch and
the FHIR server, feedback, limits and metrics; the spec's own examples as fixtures."""
from __future__ import annotations

import copy
import json
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm

from rxgate.cds.app import create_app
from rxgate.cds.config import CdsSettings
from rxgate.knowledge import load_knowledge

from .bundles import (bundle, contract_example_resources, medication_request, pregnancy_obs,
                      quantity_obs)
from .conftest import BASE, FIXTURES, ISSUER, fixture, make_token
from .spec_model import validate

SIGN = "/cds-services/rxgate-order-sign"
SELECT = "/cds-services/rxgate-order-select"
VERIFY = "/cds-services/rxgate-medication-verify"


def searchset(resources):
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": copy.deepcopy(r)} for r in resources]}


def hook_request(resources: list[dict], *, hook: str = "order-sign", pid: str = "P-001",
                 prefetch_keys=("patient", "medications", "observations", "conditions", "allergies")) -> dict:
    """An order-sign request: the first resource is the draft order, the rest are prefetched."""
    order, rest = resources[0], resources[1:]
    parts = {
        "patient": next((r for r in rest if r["resourceType"] == "Patient"), None),
        "medications": searchset([r for r in rest if r["resourceType"] == "MedicationRequest"]),
        "observations": searchset([r for r in rest if r["resourceType"] == "Observation"]),
        "conditions": searchset([r for r in rest if r["resourceType"] == "Condition"]),
        "allergies": searchset([r for r in rest if r["resourceType"] == "AllergyIntolerance"]),
    }
    context = {"userId": "PractitionerRole/123", "patientId": pid,
               "draftOrders": bundle([order])}
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{order['id']}"]
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
            "prefetch": {k: v for k, v in parts.items() if k in prefetch_keys}}


def call(client, auth, path, body):
    response = client.post(path, json=body, headers=auth(path.rsplit("/", 1)[-1]))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert validate(doc, "CDSHooksResponse") == []
    return doc["cards"]


def by_rule(cards):
    return {c["source"]["topic"]["code"]: c for c in cards}


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_lists_the_services_with_prefetch_valid_per_the_spec(client):
    doc = client.get("/cds-services").json()
    assert validate(doc, "CDSHooksServices") == []
    hooks = {s["id"]: s["hook"] for s in doc["services"]}
    assert hooks == {"rxgate-order-sign": "order-sign", "rxgate-order-select": "order-select",
                     "rxgate-medication-verify": "medication-verify"}
    prefetch = doc["services"][0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|751-8" in prefetch["observations"]  # ANC, from the knowledge
    assert "http://loinc.org|29463-7" in prefetch["observations"]


def test_the_spec_examples_are_valid_against_the_spec_models():
    assert validate(fixture("spec-discovery-response.json"), "CDSHooksServices") == []
    assert validate(fixture("spec-cards-response.json"), "CDSHooksResponse") == []
    assert validate(fixture("spec-cards-empty.json"), "CDSHooksResponse") == []
    for name in ("spec-feedback-accepted.json", "spec-feedback-overridden.json",
                 "spec-feedback-override-reason.json"):
        assert validate(fixture(name), "CDSHooksFeedback") == []
    for name in ("spec-request-patient-view.json", "spec-order-sign-request-pagination.json"):
        assert validate(fixture(name), "CDSHooksRequest") == []
    # the validator is not vacuous: the spec's autolaunchable example omits the required indicator
    assert validate(fixture("spec-cards-response-2.json"), "CDSHooksResponse") == [
        "cards[0].indicator: required (1..1)"]


# --- cards ------------------------------------------------------------------------------------


def test_findings_become_cards_with_indicator_evidence_source_and_override_reasons(client, auth, knowledge):
    resources = contract_example_resources("P-c1", "M-c1")
    resources[2] = quantity_obs("w1", "P-c1", "29463-7", 70, "kg", "2026-03-01T07:00:00Z")
    resources[0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 1400
    cards = call(client, auth, SIGN, hook_request(resources, pid="P-c1"))
    rules = by_rule(cards)
    dose = rules["isatuximab.dose.per_kg"]
    assert dose["indicator"] == "critical"  # major
    assert len(dose["summary"]) < 140 and dose["summary"].startswith("isatuximab: 1400 mg")
    assert "| ordered_mg | 1400 |" in dose["detail"] and "| weight_kg | 70 |" in dose["detail"]
    assert knowledge.version in dose["source"]["label"]
    assert "usage and dosage" in dose["source"]["label"]
    assert {r["code"] for r in dose["overrideReasons"]} >= {"benefit-outweighs-risk"}
    info = rules["isatuximab.dose.first_dose_premedication"]
    assert info["indicator"] == "info" and "overrideReasons" not in info
    assert len({c["uuid"] for c in cards}) == len(cards)


@pytest.mark.parametrize("severity, indicator", [("contraindicated", "critical"), ("major", "critical"),
                                                 ("warning", "warning"), ("info", "info")])
def test_severity_to_indicator(client, auth, severity, indicator):
    pid = f"P-{severity}"
    resources = contract_example_resources(pid, f"M-{severity}")
    if severity == "contraindicated":
        resources[4] = pregnancy_obs("preg1", pid, True, "2026-03-01T07:00:00Z")
    elif severity == "major":
        resources[5] = quantity_obs("anc1", pid, "751-8", 0.4, "10*9/L", "2026-03-01T07:00:00Z")
    elif severity == "warning":
        resources[7] = quantity_obs("hgb1", pid, "718-7", 70, "g/L", "2026-03-01T07:00:00Z")
    cards = call(client, auth, SIGN, hook_request(resources, pid=pid))
    wanted = {"contraindicated": "isatuximab.contraindication.pregnancy",
              "major": "isatuximab.contraindication.anc_low",
              "warning": "isatuximab.contraindication.hgb_low",
              "info": "isatuximab.combination.immunomodulator"}[severity]
    assert by_rule(cards)[wanted]["indicator"] == indicator


def _quiet_later_dose(pid: str) -> list[dict]:
    resources = contract_example_resources(pid, "M-2")
    resources[0] = medication_request("M-2", pid, start="2026-03-09T09:00:00Z")
    resources[-1] = medication_request("M-1", pid, start="2026-03-02T09:00:00Z", status="active")
    for r in resources:
        if r["resourceType"] == "Observation":
            r["effectiveDateTime"] = "2026-03-08T07:00:00Z"
    return resources


def test_a_clean_later_dose_gets_only_the_premedication_reminder(client, auth):
    pid = "P-quiet"
    cards = call(client, auth, SIGN, hook_request(_quiet_later_dose(pid), pid=pid))
    assert [c["indicator"] for c in cards] == ["info"]
    assert "Premedicate" in cards[0]["summary"]


def test_no_finding_no_card(tmp_path, settings, auth):
    """Without the every-dose premedication section, a clean later dose has no finding: no card."""
    from rxgate.knowledge import BUILTIN_DIR

    kdir = tmp_path / "knowledge"
    shutil.copytree(BUILTIN_DIR, kdir)
    mono = kdir / "drugs" / "isatuximab.toml"
    text = mono.read_text(encoding="utf-8")
    mono.write_text(text[:text.index("[premedication]")] + text[text.index("[schedule]"):],
                    encoding="utf-8")
    pid = "P-quiet"
    with TestClient(create_app(settings, load_knowledge(kdir))) as quiet:
        cards = call(quiet, auth, SIGN, hook_request(_quiet_later_dose(pid), pid=pid))
    assert cards == []


def test_order_select_without_a_dose_checks_the_rest_and_says_what_was_not_checked(client, auth):
    pid = "P-sel"
    resources = contract_example_resources(pid, "M-sel")
    resources[0] = medication_request("M-sel", pid, value=None)
    resources[4] = pregnancy_obs("preg1", pid, True, "2026-03-01T07:00:00Z")
    cards = call(client, auth, SELECT, hook_request(resources, hook="order-select", pid=pid))
    rules = by_rule(cards)
    assert rules["isatuximab.contraindication.pregnancy"]["indicator"] == "critical"
    partial = rules["rxgate.cds.incomplete"]
    assert partial["indicator"] == "warning" and "partly checked" in partial["summary"]
    assert "the dose" in partial["detail"] and "no doseAndRate.doseQuantity" in partial["detail"]
    assert not [r for r in rules if r.startswith("isatuximab.dose.per_kg") or r.endswith("unit_unknown")]


def test_orders_signed_together_count_for_each_other(client, auth):
    pid = "P-two"
    resources = contract_example_resources(pid, "M-isa")[:-1]  # no active pomalidomide
    body = hook_request(resources, pid=pid)
    assert "isatuximab.combination.immunomodulator" not in by_rule(call(client, auth, SIGN, body))
    pom = medication_request("M-pom", pid, drug="pomalidomide", rxnorm=None, value=4, unit="mg",
                             route="26643006", minutes=None, period_days=1)
    body["context"]["draftOrders"]["entry"].append({"resource": pom})
    cards = by_rule(call(client, auth, SIGN, body))
    assert "current medications" in cards["isatuximab.combination.immunomodulator"]["detail"]


def test_an_order_for_another_patient_than_the_context_is_not_checked(client, auth):
    resources = contract_example_resources("P-a", "M-a")
    body = hook_request(resources, pid="P-b")
    [card] = call(client, auth, SIGN, body)
    assert card["source"]["topic"]["code"] == "rxgate.cds.not_checked"
    assert "not the patient in context" in card["detail"]


def test_missing_prefetch_and_no_fhir_server_fails_closed_with_a_card(client, auth):
    resources = contract_example_resources("P-np", "M-np")
    cards = call(client, auth, SIGN, hook_request(resources, pid="P-np", prefetch_keys=()))
    rules = by_rule(cards)
    assert {"isatuximab.data.weight_missing", "isatuximab.data.anc_missing",
            "isatuximab.data.conditions_missing"} <= set(rules)
    assert "prefetch.observations" in rules["rxgate.cds.incomplete"]["detail"]


class _FhirServer:
    """A FHIR server on a loopback socket that answers the prefetch queries from resources."""

    def __init__(self, resources, delay: float = 0.0):
        self.seen: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.seen.append((self.path, self.headers.get("Authorization")))
                time.sleep(delay)
                where = self.path.removeprefix("/fhir/").split("?")[0]
                kind = where.split("/")[0]
                if "/" in where:
                    body = next((r for r in resources if r["resourceType"] == kind), None)
                else:
                    body = searchset([r for r in resources if r["resourceType"] == kind])
                data = json.dumps(body).encode()
                try:
                    self.send_response(200 if body else 404)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # rxgate gave up waiting (the timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_missing_prefetch_is_read_from_the_fhir_server_with_the_access_token(client, auth, caplog):
    caplog.set_level("DEBUG")
    resources = contract_example_resources("P-fs", "M-fs")
    with_prefetch = call(client, auth, SIGN, hook_request(resources, pid="P-fs"))
    with _FhirServer(resources[1:]) as fhir:
        body = hook_request(resources, pid="P-fs", prefetch_keys=("patient",))
        body["fhirServer"] = fhir.url
        body["fhirAuthorization"] = {"access_token": "tok-123", "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "rxgate"}
        fetched = call(client, auth, SIGN, body)
    assert sorted(by_rule(fetched)) == sorted(by_rule(with_prefetch))
    assert {auth_header for _, auth_header in fhir.seen} == {"Bearer tok-123"}
    assert any(path.startswith("/fhir/Observation?patient=P-fs") for path, _ in fhir.seen)
    assert not [r for r in caplog.records if r.levelno >= 20 and "P-fs" in r.getMessage()]


def test_a_referenced_medication_is_read_from_the_fhir_server(client, auth):
    resources = contract_example_resources("P-med", "M-med")
    order = resources[0]
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/isa-20"}
    medication = {"resourceType": "Medication", "id": "isa-20",
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                       "code": "2283218", "display": "isatuximab"}]}}
    body = hook_request(resources, pid="P-med")
    unresolved = by_rule(call(client, auth, SIGN, body))
    assert "rxgate.cds.not_checked" in unresolved  # no FHIR server: the drug cannot be named
    with _FhirServer([medication]) as fhir:
        body = hook_request(resources, pid="P-med")
        body["fhirServer"] = fhir.url
        body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 60,
                                     "scope": "patient/*.read", "subject": "rxgate"}
        cards = by_rule(call(client, auth, SIGN, body))
    assert ("/fhir/Medication/isa-20", "Bearer t") in fhir.seen
    assert "isatuximab.dose.first_dose_premedication" in cards and "rxgate.cds.not_checked" not in cards


def test_a_slow_fhir_server_times_out_and_the_card_says_so(app, auth, settings, knowledge):
    from fastapi.testclient import TestClient
    fast = create_app(CdsSettings(issuers=settings.issuers, audience=BASE, fhir_timeout=0.2), knowledge)
    resources = contract_example_resources("P-slow", "M-slow")
    with _FhirServer(resources[1:], delay=1.0) as fhir, TestClient(fast) as c:
        body = hook_request(resources, pid="P-slow", prefetch_keys=("patient",))
        body["fhirServer"] = fhir.url
        body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 60,
                                     "scope": "patient/*.read", "subject": "rxgate"}
        cards = call(c, auth, SIGN, body)
    rules = by_rule(cards)
    assert "timed out" in rules["rxgate.cds.incomplete"]["detail"]
    assert "isatuximab.data.anc_missing" in rules


# --- the hook library's own examples (R4) -----------------------------------------------------


@pytest.mark.parametrize("name, path, hook", [
    ("library-order-sign-request-r4.json", SIGN, "order-sign"),
    ("library-order-select-request-r4.json", SELECT, "order-select"),
    ("library-medication-verify-request-r4.json", VERIFY, "medication-verify"),
])
def test_the_hook_library_examples_get_cards_that_say_why_they_could_not_be_checked(client, auth, name, path, hook):
    example = fixture(name)
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), **example}
    assert validate(body, "CDSHooksRequest") == []
    cards = call(client, auth, path, body)
    # the examples' MedicationRequest is not valid R4 (dosageInstruction.doseQuantity is STU3's
    # shape; order-select has doseAndRate as an object): never approved silently
    [card] = cards
    assert card["indicator"] == "warning"
    assert "could not be checked" in card["summary"]
    assert "not valid FHIR R4: dosageInstruction.0.doseAndRate" in card["detail"] or \
        "not valid FHIR R4: dosageInstruction.0.doseQuantity" in card["detail"]


def test_the_specs_pagination_example_is_refused_for_its_invalid_id(client, auth):
    body = fixture("spec-order-sign-request-pagination.json")
    # its ids are spelled with U+2011 (non-breaking hyphen), which a FHIR id may not contain
    assert "\u2011" in body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    cards = call(client, auth, SIGN, body)
    [card] = cards
    assert card["indicator"] == "warning" and card["source"]["topic"]["code"] == "rxgate.cds.not_checked"
    assert "not valid FHIR R4: id" in card["detail"]


# --- security --------------------------------------------------------------------------------------


def test_a_token_signed_by_the_ehr_key_is_accepted_and_others_are_refused(client, ehr_key, stranger_key):
    body = hook_request(contract_example_resources("P-jwt", "M-jwt"), pid="P-jwt")

    def post(token):
        return client.post(SIGN, json=body, headers={"Authorization": f"Bearer {token}"} if token else {})

    assert post(make_token(ehr_key)).status_code == 200
    refused = {
        "stranger's key": make_token(stranger_key),
        "expired": make_token(ehr_key, expires_in=-3600),
        "unknown issuer": make_token(ehr_key, iss="https://evil.example.org"),
        "other audience": make_token(ehr_key, aud=f"{BASE}/cds-services/other"),
        "unsigned": jwt.encode({"iss": ISSUER, "aud": f"{BASE}{SIGN}", "exp": int(time.time()) + 60,
                                "iat": int(time.time()), "jti": "x"}, None, algorithm="none"),
        "hmac with the public key": jwt.encode(
            {"iss": ISSUER, "aud": f"{BASE}{SIGN}", "exp": int(time.time()) + 60, "iat": int(time.time()),
             "jti": "x"}, "secret", algorithm="HS256", headers={"kid": "ehr-test-1"}),
        "garbage": "not-a-jwt",
        "none": None,
    }
    for why, token in refused.items():
        response = post(token)
        assert response.status_code == 401, why
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "P-jwt" not in response.text


def test_a_token_is_good_for_one_call(client, ehr_key):
    body = hook_request(contract_example_resources("P-once", "M-once"), pid="P-once")
    headers = {"Authorization": f"Bearer {make_token(ehr_key)}"}
    assert client.post(SIGN, json=body, headers=headers).status_code == 200
    replay = client.post(SIGN, json=body, headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]


def test_jwks_over_http_and_an_unreachable_jwks(jwks_file, knowledge, ehr_key):
    from fastapi.testclient import TestClient

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            data = jwks_file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        body = hook_request(contract_example_resources("P-h", "M-h"), pid="P-h")
        with TestClient(create_app(CdsSettings(issuers={ISSUER: url}, audience=BASE), knowledge)) as c:
            r = c.post(SIGN, json=body, headers={"Authorization": f"Bearer {make_token(ehr_key)}"})
            assert r.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
    gone = create_app(CdsSettings(issuers={ISSUER: url}, audience=BASE, fhir_timeout=0.5), knowledge)
    with TestClient(gone) as c:
        r = c.post(SIGN, json=body, headers={"Authorization": f"Bearer {make_token(ehr_key)}"})
        assert r.status_code == 401 and "keys cannot be read" in r.json()["detail"]


def test_the_specs_example_key_pair_and_token(tmp_path, knowledge):
    """The spec's published ES384 key pair: a token it signs verifies; the spec's own token is expired."""
    from fastapi.testclient import TestClient
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(fixture("spec-jwks.json")))
    payload = fixture("spec-jwt-payload.json")
    app = create_app(CdsSettings(issuers={payload["iss"]: jwks.as_uri()},
                                 audience="https://cds.example.org"), knowledge)
    private = ECAlgorithm.from_jwk(json.dumps(fixture("spec-jwk-private.json")))
    header = fixture("spec-jwt-header.json")
    body = hook_request(contract_example_resources("P-spec", "M-spec"), pid="P-spec")
    with TestClient(app, base_url="https://cds.example.org") as c:
        spec_token = (FIXTURES / "spec-jwt.txt").read_text().strip()
        r = c.post(SIGN, json=body, headers={"Authorization": f"Bearer {spec_token}"})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        fresh = jwt.encode({**payload, "aud": f"https://cds.example.org{SIGN}",
                            "exp": int(time.time()) + 300, "iat": int(time.time())},
                           private, algorithm=header["alg"], headers={"kid": header["kid"], "jku": header["jku"]})
        assert c.post(SIGN, json=body, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_request_size_limit(client, auth):
    big = hook_request(contract_example_resources("P-big", "M-big"), pid="P-big")
    big["context"]["padding"] = "x" * (300 * 1024)
    assert client.post(SIGN, json=big, headers=auth()).status_code == 413


def test_wrong_hook_and_unknown_service(client, auth):
    body = hook_request(contract_example_resources("P-w", "M-w"), pid="P-w")
    body["hook"] = "order-select"  # a hook rxgate serves, but not at this service
    assert client.post(SIGN, json=body, headers=auth()).status_code == 400
    body["hook"] = "patient-view"  # a hook rxgate does not serve
    assert client.post(SIGN, json=body, headers=auth()).status_code == 422
    body["hook"] = "order-sign"
    assert client.post("/cds-services/nope", json=body, headers=auth("nope")).status_code == 404


# --- feedback and metrics ---------------------------------------------------------------------------


def test_feedback_on_a_card_is_taken_once_and_unknown_cards_are_ignored(client, auth, app):
    resources = contract_example_resources("P-fb", "M-fb")
    resources[5] = quantity_obs("anc1", "P-fb", "751-8", 0.4, "10*9/L", "2026-03-01T07:00:00Z")
    cards = call(client, auth, SIGN, hook_request(resources, pid="P-fb"))
    card = by_rule(cards)["isatuximab.contraindication.anc_low"]
    feedback = fixture("spec-feedback-override-reason.json")
    feedback["feedback"][0]["card"] = card["uuid"]
    assert validate(feedback, "CDSHooksFeedback") == []
    for _ in range(2):
        r = client.post(f"{SIGN}/feedback", json=feedback, headers=auth("rxgate-order-sign/feedback"))
        assert r.status_code == 200
    unknown = fixture("spec-feedback-accepted.json")
    assert client.post(f"{SIGN}/feedback", json=unknown, headers=auth()).status_code == 200
    assert client.post(f"{SIGN}/feedback", json=unknown).status_code == 401


def test_metrics_count_requests_cards_and_latency(client, auth):
    resources = contract_example_resources("P-m", "M-m")
    call(client, auth, SIGN, hook_request(resources, pid="P-m"))
    client.post(SIGN, json={}, headers={})
    text = client.get("/metrics").text
    assert 'rxgate_cds_requests_total{hook="order-sign",status="200"}' in text
    assert 'rxgate_cds_requests_total{hook="order-sign",status="401"}' in text
    assert 'rxgate_cds_cards_total{indicator="info"}' in text
    assert 'rxgate_cds_request_seconds_bucket{hook="order-sign",le="0.02"}' in text
    assert "P-m" not in text


def test_no_patient_data_in_the_logs(client, auth, caplog):
    caplog.set_level("DEBUG")
    resources = contract_example_resources("P-secret-77", "M-secret-88")
    call(client, auth, SIGN, hook_request(resources, pid="P-secret-77"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cds order-sign" in logged
    assert "P-secret-77" not in logged and "M-secret-88" not in logged


def test_an_unusable_fhir_server_or_token_is_a_gap_not_an_error(client, auth):
    """Found by the schemathesis run: a non-ASCII access token cannot go in an HTTP header."""
    resources = contract_example_resources("P-u", "M-u")
    for server, token in (("0", "tok"), ("https://fhir.invalid", "t\x80k"), ("http://[::1", "tok")):
        body = hook_request(resources, pid="P-u", prefetch_keys=("patient",))
        body["fhirServer"] = server
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 60,
                                     "scope": "x", "subject": "rxgate"}
        rules = by_rule(call(client, auth, SIGN, body))
        assert "prefetch.observations" in rules["rxgate.cds.incomplete"]["detail"]


def test_a_defect_in_the_checks_is_a_card_not_a_500(client, auth, monkeypatch, caplog):
    import rxgate.cds.app as cds_app

    def broken(request, *args, **kwargs):  # the message quotes the patient, as real ones may
        raise RuntimeError(request["subject"]["reference"])

    monkeypatch.setattr(cds_app, "check_order", broken)
    [card] = call(client, auth, SIGN, hook_request(contract_example_resources("P-defect", "M-d"), pid="P-defect"))
    assert card["indicator"] == "warning" and "could not complete the checks (RuntimeError)" in card["detail"]
    assert "P-defect" not in "\n".join(r.getMessage() for r in caplog.records)
