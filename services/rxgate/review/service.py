"""`rxgate review`: migrations, then the ingest, the outbox publisher and the web server in one
asyncio process. SIGTERM / Ctrl-C stop it in order (uvicorn's handlers)."""
from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn
from sqlalchemy.engine import make_url

from ..stream.config import ConfigError
from .config import ReviewSettings
from .db import engine_url, make_engine, migrate
from .ingest import Ingest
from .metrics import ReviewMetrics
from .outbox import OutboxPublisher
from .store import Store
from .web import create_app

log = logging.getLogger("rxgate.review")


def describe_db(url: str) -> str:
    """The store's URL without its password, for logs."""
    return make_url(engine_url(url)).render_as_string(hide_password=True)


def open_store(settings: ReviewSettings) -> Store:
    engine = make_engine(settings.db_url)
    migrate(engine)
    return Store(engine)


async def serve(settings: ReviewSettings, store: Store, announce=None) -> None:
    metrics = ReviewMetrics(store)
    ingest = Ingest(settings, store, metrics)
    outbox = OutboxPublisher(settings, store, metrics)
    loop = asyncio.get_running_loop()
    app = create_app(settings, store, metrics,
                     poke_outbox=lambda: loop.call_soon_threadsafe(outbox.poke),
                     ready=lambda: ingest.connected.is_set() and outbox.ready.is_set())
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                           log_level="warning", access_log=False,
                                           lifespan="off", server_header=False))
    tasks = [asyncio.create_task(ingest.run(), name="ingest"),
             asyncio.create_task(outbox.run(), name="outbox")]

    async def say_when_started() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        if announce:
            announce()

    tasks.append(asyncio.create_task(say_when_started()))
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> int:
    try:
        settings = ReviewSettings.from_env()
    except ConfigError as e:
        print(f"rxgate review: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        store = open_store(settings)
    except Exception as e:  # unreachable server, bad credentials, unwritable file
        print(f"rxgate review: cannot open the store {describe_db(settings.db_url)}: {e}",
              file=sys.stderr)
        return 2

    def announce() -> None:
        print(f"rxgate review: serving http://{settings.host}:{settings.port}/ "
              f"(store {describe_db(settings.db_url)}, broker {settings.broker})", flush=True)

    try:
        asyncio.run(serve(settings, store, announce))
    except KeyboardInterrupt:
        pass
    return 0
