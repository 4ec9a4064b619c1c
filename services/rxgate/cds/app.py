"""The CDS Hooks 2.0 service (FastAPI; `rxgate cds` serves it with uvicorn).

    GET  /cds-services                      discovery: services and their prefetch templates
    POST /cds-services/{id}                 a hook call -> {"cards": [...]}  (JWT required)
    POST /cds-services/{id}/feedback        card outcomes -> rx.reviews.v1   (JWT required)
    GET  /metrics, /healthz, /openapi.json

Services: `rxgate-order-sign` (order-sign), `rxgate-order-select` (order-select: the selected
draft orders, which may lack a dose) and `rxgate-medication-verify` (medication-verify, the
pharmacist-verification hook of the CDS Hooks hook library, maturity 1: context.medication, or
context.order.resource as the library's example sends it). Logs carry the hook, counts and
timings only, never a patient, order or user id.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from ..fhir import medication_reference
from ..knowledge import Knowledge, load_knowledge
from .auth import Caller, TokenVerifier, Unauthorized
from .cards import cards_for
from .config import CdsSettings
from .evaluate import Checked, check_order, target_requests
from .feedback import CardMemory, ReviewPublisher, review_message
from .record import gather_record, prefetch_templates

log = logging.getLogger("rxgate.cds")

SERVICES = {
    "rxgate-order-sign": ("order-sign", "rxgate: medication order check at signing",
                          "Checks medication orders about to be signed against rxgate's drug monographs: "
                          "dose, route, infusion, interval, combinations and contraindications."),
    "rxgate-order-select": ("order-select", "rxgate: medication order check at selection",
                            "Checks the selected draft medication orders with what they already say; "
                            "says what could not be checked yet (a dose not entered, for example)."),
    "rxgate-medication-verify": ("medication-verify", "rxgate: pharmacist verification",
                                 "Checks a signed medication order as a pharmacist verifies it."),
}


# --- request and response models (the OpenAPI document) ------------------------------------

# documented as the three ids (so fuzzers and integrators see them); any other id is a 404
ServiceId = Annotated[str, PathParam(json_schema_extra={"enum": list(SERVICES)})]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FhirAuthorization(_Open):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class HookContext(_Open):
    userId: str | None = None
    patientId: str = Field(min_length=1)
    encounterId: str | None = None
    draftOrders: dict[str, Any] | None = None
    selections: list[str] | None = None
    medication: dict[str, Any] | None = None


class HookRequest(_Open):
    hook: Literal["order-sign", "order-select", "medication-verify"]
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class Coding(BaseModel):
    system: str | None = None
    code: str
    display: str | None = None


class Source(BaseModel):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Card(BaseModel):
    uuid: str
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    overrideReasons: list[Coding] | None = None


class CardsResponse(BaseModel):
    cards: list[Card]


class ServiceDescription(BaseModel):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]


class Discovery(BaseModel):
    services: list[ServiceDescription]


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = None


class FeedbackItem(_Open):
    card: str = Field(min_length=1)
    outcome: Literal["accepted", "overridden"]
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str | None = None


class Feedback(BaseModel):
    feedback: list[FeedbackItem] = Field(max_length=1000)


# --- the ASGI guard: body size limit and request metrics -------------------------------------


class Guard:
    """Refuses bodies over the limit (413) and counts every request by hook and status."""

    def __init__(self, app, *, limit: int, metrics: "Metrics") -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        hook = _hook_label(path)
        started = time.perf_counter()
        status = {"code": 500}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                status["code"] = 413
                response = JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)
                return await response(scope, receive, send)
            seen = 0

            async def limited_receive():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > self.limit:
                        raise _TooLarge()
                return message

            try:
                await self.app(scope, limited_receive, counting_send)
            except _TooLarge:
                status["code"] = 413
                await JSONResponse({"detail": f"request body over {self.limit} bytes"}, 413)(
                    scope, receive, send)
        finally:
            if hook is not None:
                self.metrics.requests.labels(hook=hook, status=str(status["code"])).inc()
                self.metrics.latency.labels(hook=hook).observe(time.perf_counter() - started)


class _TooLarge(Exception):
    pass


def _hook_label(path: str) -> str | None:
    if not path.startswith("/cds-services"):
        return None
    parts = path.strip("/").split("/")
    if len(parts) == 1:
        return "discovery"
    service = SERVICES.get(parts[1])
    name = service[0] if service else "unknown"
    return f"{name}/feedback" if len(parts) == 3 and parts[2] == "feedback" else name


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rxgate_cds_requests_total", "CDS Hooks requests by hook and HTTP status",
                                ["hook", "status"], registry=self.registry)
        self.cards = Counter("rxgate_cds_cards_total", "Cards returned, by indicator",
                             ["indicator"], registry=self.registry)
        self.latency = Histogram("rxgate_cds_request_seconds", "Service time of CDS Hooks requests",
                                 ["hook"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.feedback = Counter("rxgate_cds_feedback_total", "Card feedback items, by outcome and whether published",
                                ["outcome", "published"], registry=self.registry)


# --- the app -----------------------------------------------------------------------------------


def create_app(settings: CdsSettings | None = None, knowledge: Knowledge | None = None) -> FastAPI:
    settings = settings or CdsSettings.from_env()
    knowledge = knowledge or load_knowledge(settings.knowledge_dir)
    # httpx logs every URL it reads at INFO, and FHIR search URLs name the patient
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    verifier = TokenVerifier(settings.issuers, settings.audience, timeout=settings.fhir_timeout)
    templates = prefetch_templates(knowledge)
    memory = CardMemory(settings.card_memory)
    publisher = ReviewPublisher(settings.bootstrap, settings.kafka.client_kwargs())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await publisher.close()

    app = FastAPI(title="rxgate CDS Hooks service", version=knowledge.version, lifespan=lifespan,
                  description="CDS Hooks 2.0 services over rxgate's medication order checks.")
    app.state.memory = memory
    app.state.publisher = publisher
    app.state.metrics = metrics
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(Guard, limit=settings.max_body_bytes, metrics=metrics)

    def caller(request: Request) -> Caller:
        url = None
        if settings.audience:
            path = request.url.path.rstrip("/")
            url = [f"{settings.audience}{path}"]
            if path.endswith("/feedback"):
                url.append(f"{settings.audience}{path.removesuffix('/feedback')}")
        try:
            return verifier.verify(request.headers.get("authorization"), url)
        except Unauthorized as e:
            raise HTTPException(401, str(e), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    @app.get("/cds-services", response_model=Discovery)
    def discovery() -> dict:
        return {"services": [{"hook": hook, "title": title, "description": description, "id": sid,
                              "prefetch": templates}
                             for sid, (hook, title, description) in SERVICES.items()]}

    @app.post("/cds-services/{service_id}", response_model=CardsResponse, response_model_exclude_none=True,
              responses={401: {"description": "no valid EHR token"}, 404: {"description": "no such service"},
                         400: {"description": "the request does not fit the service's hook"},
                         413: {"description": "request body too large"}})
    async def service(service_id: ServiceId, body: HookRequest, who: Caller = Depends(caller)) -> dict:
        if service_id not in SERVICES:
            raise HTTPException(404, "no such service")
        hook = SERVICES[service_id][0]
        if body.hook != hook:
            raise HTTPException(400, f"this service answers the {hook} hook")
        context = body.context.model_dump(exclude_none=True)
        patient_id = body.context.patientId.strip()
        if not patient_id:
            raise HTTPException(400, "context.patientId is required")
        now = dt.datetime.now(dt.timezone.utc)
        requests, drafts, problems = target_requests(hook, context)
        fhir_server = body.fhirServer
        if fhir_server and settings.fhir_servers and not fhir_server.startswith(settings.fhir_servers):
            fhir_server = None
        gathered = await gather_record(
            patient_id, body.prefetch, fhir_server,
            body.fhirAuthorization.model_dump() if body.fhirAuthorization else None,
            templates, settings.fhir_timeout,
            medications=[m for m in map(medication_reference, [*requests, *drafts]) if m])
        user_id = body.context.userId
        cards: list[dict] = []
        for request in requests:
            try:
                checked = check_order(request, gathered.record, knowledge, now=now, hook=hook,
                                      other_drafts=drafts, patient_id=patient_id)
            except Exception as e:  # a defect: the order still gets a card, never a silent pass
                # the frames only: an exception's message may quote patient data
                log.error("cds %s: the checks failed (%s)\n%s", hook, type(e).__name__,
                          "".join(traceback.format_tb(e.__traceback__)))
                checked = Checked(f"MedicationRequest/{request.get('id', '(no id)')}",
                                  problem=f"rxgate could not complete the checks ({type(e).__name__})")
            checked.gaps = [*gathered.gaps, *checked.gaps]
            made, issued = cards_for(checked, knowledge.version, service=service_id,
                                     patient_id=patient_id, user_id=user_id)
            cards += made
            memory.remember(issued)
        for problem in problems:
            made, issued = cards_for(Checked("the order", problem=problem), knowledge.version,
                                     service=service_id, patient_id=patient_id, user_id=user_id)
            cards += made
            memory.remember(issued)
        for card in cards:
            metrics.cards.labels(indicator=card["indicator"]).inc()
        log.info("cds %s: %d medication order(s), %d card(s), %d prefetch part(s) read from the FHIR server",
                 hook, len(requests), len(cards), len(gathered.fetched))
        return {"cards": cards}

    @app.post("/cds-services/{service_id}/feedback",
              responses={401: {"description": "no valid EHR token"}, 404: {"description": "no such service"},
                         503: {"description": "the review topic cannot be written now; retry"}})
    async def feedback(service_id: ServiceId, body: Feedback, who: Caller = Depends(caller)) -> dict:
        if service_id not in SERVICES:
            raise HTTPException(404, "no such service")
        now = dt.datetime.now(dt.timezone.utc)
        for item in body.feedback:
            card = memory.get(item.card)
            message = (review_message(card, item.model_dump(exclude_none=True), now, who.subject)
                       if card is not None and card.service == service_id else None)
            published = False
            if message is not None and publisher.enabled and memory.first_answer(item.card):
                try:
                    await publisher.publish(card.patient_id, message)
                    published = True
                except Exception as e:  # the broker is down: let the EHR retry
                    memory.forget_answer(item.card)
                    log.warning("cds feedback: rx.reviews.v1 not written (%s)", type(e).__name__)
                    raise HTTPException(503, "feedback cannot be recorded now; retry") from None
            metrics.feedback.labels(outcome=item.outcome, published=str(published).lower()).inc()
        return {}

    @app.get("/metrics", include_in_schema=False)
    def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok", "knowledge_version": knowledge.version}

    return app


def main() -> int:
    import sys

    import uvicorn

    from ..knowledge import KnowledgeError
    from .config import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = CdsSettings.from_env()
        app = create_app(settings)
    except (ConfigError, KnowledgeError) as e:
        print(f"rxgate cds: {e}", file=sys.stderr)
        return 2
    if not settings.issuers:
        log.warning("RXGATE_CDS_ISSUERS is not set: every service call will get 401")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0
