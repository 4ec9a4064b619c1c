"""The pharmacists' review service (`rxgate review`): a shell around the contract, like stream/.

    config.py     RXGATE_REVIEW_* settings
    kafka.py      the one place Kafka clients are created (security settings plug in here)
    models.py     the store's tables (SQLAlchemy 2); migrations/ holds their Alembic history
    db.py         engine from a URL (SQLite file or postgresql://), migrations up
    store.py      every read and write of the store: ingest, queue, actions + outbox, users,
                  sessions, audit
    ingest.py     consumes rx.orders.v1 and the decision topics into the store
    outbox.py     publishes stored actions to rx.reviews.v1 / rx.decisions.verified.v1, once
    web.py        the page and the JSON API (FastAPI + Jinja2), sign-in, CSRF, headers
    evidence.py   a finding's evidence as labelled numbers with units
    metrics.py    /metrics
    service.py    `rxgate review`: migrations, ingest, outbox and the web server in one process
    users.py      `rxgate review add-user`

The core (contract.py) knows nothing of this package.
"""
