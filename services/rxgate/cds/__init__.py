"""`rxgate cds`: a CDS Hooks 2.0 service over the one Processor (FastAPI, served by uvicorn).

    config.py      RXGATE_CDS_* settings
    auth.py        the EHR's JWT bearer token, verified against configured issuers and their JWKS
    record.py      the patient's record from prefetch, else from the FHIR server (httpx)
    evaluate.py    a hook request -> FHIR mapping -> event bytes -> Processor -> findings
    cards.py       findings (and what could not be checked) -> CDS Hooks cards
    feedback.py    card outcomes -> rx.reviews.v1, once per card
    app.py         the FastAPI app: discovery, services, feedback, metrics, limits
"""
