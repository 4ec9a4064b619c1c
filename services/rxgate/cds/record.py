"""The patient's record for one hook request: prefetch first, else the EHR's FHIR server.

Each prefetch key of the discovery document is one part of the record. A key the EHR did not
send (or sent as null, or as an OperationOutcome) is read from `fhirServer` with the request's
`fhirAuthorization` (httpx, with a timeout). When neither gives it, that part stays absent: the
rules then raise their `data` findings, and the gap is said on a card (fail closed).
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import httpx

from ..fhir import Gap, PatientRecord
from ..knowledge import Knowledge

PREFETCH_KINDS = {
    "patient": "Patient",
    "medications": "MedicationRequest",
    "observations": "Observation",
    "conditions": "Condition",
    "allergies": "AllergyIntolerance",
}
TOKEN = re.compile(r"^[\x21-\x7e]{1,8192}$")  # RFC 6750 b64token, loosely
FACT_LOINC = ["29463-7", "3141-9", "8302-2", "3137-7", "82810-3"]


def prefetch_templates(knowledge: Knowledge) -> dict[str, str]:
    """The discovery document's prefetch: the resources every rule of every monograph reads."""
    loinc = list(FACT_LOINC)
    for mono in knowledge.monographs.values():
        for limit in mono.lab_limits:
            loinc += [c for c in knowledge.labs[limit.lab].codes if "-" in c and c not in loinc]
    codes = ",".join(f"http://loinc.org|{c}" for c in loinc)
    return {
        "patient": "Patient/{{context.patientId}}",
        "medications": "MedicationRequest?patient={{context.patientId}}&status=active,on-hold"
                       "&_include=MedicationRequest:medication",
        "observations": f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date&_count=200",
        "conditions": "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}&clinical-status=active",
    }


@dataclass
class Gathered:
    record: PatientRecord
    gaps: list[Gap] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # prefetch keys read from the FHIR server


def _resources(value: Any, kind: str) -> list[dict] | None:
    """A prefetch value as a list of resources of `kind`; None when it is not usable."""
    if not isinstance(value, dict):
        return None
    if value.get("resourceType") == kind:
        return [value]
    if value.get("resourceType") == "Bundle":
        out = []
        for entry in value.get("entry") or []:
            r = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(r, dict) and r.get("resourceType") == kind:
                out.append(r)
            elif isinstance(r, dict) and r.get("resourceType") == "Medication" and r.get("id"):
                out.append(r)  # _include'd medications
        return out
    return None


async def gather_record(patient_id: str, prefetch: dict | None, fhir_server: str | None,
                        authorization: dict | None, templates: dict[str, str],
                        timeout: float, medications: Iterable[str] = ()) -> Gathered:
    """The record; `medications` are 'Medication/<id>' references the orders need, read from the
    FHIR server when the prefetch does not hold them."""
    prefetch = prefetch or {}
    parts: dict[str, list[dict] | None] = {}
    missing = []
    for key, kind in PREFETCH_KINDS.items():
        parts[key] = _resources(prefetch.get(key), kind)
        if parts[key] is None:
            missing.append(key)
    gathered = Gathered(PatientRecord())
    token = (authorization or {}).get("access_token")
    if not isinstance(token, str) or not TOKEN.match(token):
        token = None  # not a bearer token an HTTP header can carry
    if not isinstance(fhir_server, str) or not fhir_server.startswith(("https://", "http://")):
        fhir_server = None
    if missing:
        if not fhir_server or not token:
            for key in missing:
                gathered.gaps.append(Gap(f"prefetch.{key}",
                                         "not prefetched, and no fhirServer/fhirAuthorization to read it"))
        else:
            async with httpx.AsyncClient(timeout=timeout, headers={
                    "Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}) as client:
                results = await asyncio.gather(*(
                    _read(client, fhir_server, templates[key].replace("{{context.patientId}}", patient_id))
                    for key in missing))
            for key, (value, problem) in zip(missing, results):
                parts[key] = _resources(value, PREFETCH_KINDS[key]) if problem is None else None
                if parts[key] is None:
                    gathered.gaps.append(Gap(f"prefetch.{key}",
                                             f"not prefetched, and the FHIR server read failed: "
                                             f"{problem or 'not a FHIR resource or Bundle'}"))
                else:
                    gathered.fetched.append(key)
    record = gathered.record
    patients = parts["patient"]
    record.patient = patients[0] if patients else None
    meds = parts["medications"]
    if meds is not None:
        record.medications = {f"Medication/{r['id']}": r for r in meds if r.get("resourceType") == "Medication"}
        record.medication_requests = [r for r in meds if r.get("resourceType") == "MedicationRequest"]
    wanted = sorted({m for m in medications if m not in record.medications})
    if wanted and fhir_server and token:
        async with httpx.AsyncClient(timeout=timeout, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}) as client:
            results = await asyncio.gather(*(_read(client, fhir_server, ref) for ref in wanted))
        for ref, (value, problem) in zip(wanted, results):
            if isinstance(value, dict) and value.get("resourceType") == "Medication":
                record.medications[ref] = value
                gathered.fetched.append(ref.split("/")[0])
            else:
                gathered.gaps.append(Gap("order.drug", f"{ref} could not be read from the FHIR "
                                                       f"server: {problem or 'not a Medication'}"))
    record.observations = parts["observations"]
    record.conditions = parts["conditions"]
    record.allergies = parts["allergies"]
    return gathered


async def _read(client: httpx.AsyncClient, base: str, query: str) -> tuple[Any, str | None]:
    url = f"{base.rstrip('/')}/{query}"
    try:
        response = await client.get(url)
    except httpx.TimeoutException:
        return None, "timed out"
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as e:  # unreachable, a malformed URL
        return None, type(e).__name__
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        return response.json(), None
    except ValueError:
        return None, "not JSON"
