"""`rxgate worker`: the streaming validator, configured by RXGATE_* environment variables.

    RXGATE_BROKER=kafka://127.0.0.1:9092 rxgate worker

Start-up, in order; any failure stops it with a message naming the setting (exit 2), or the
broker (exit 1):
1. read the settings (the table is in `rxgate.stream.config`; TLS/SASL in
   `rxgate.kafka_security`);
2. load the drug knowledge (`RXGATE_KNOWLEDGE_DIR`, else the built-in one);
3. connect once with the TLS/SASL settings: a wrong CA or refused credentials stop it here,
   naming the setting (exit 2);
4. create the topics that are missing, with `RXGATE_PARTITIONS` partitions, and check that
   existing ones have that count (`rxgate.stream.topics`);
5. serve /metrics, /livez, /readyz and /healthz on `RXGATE_METRICS_PORT` (`health.py`);
6. run the faust worker until SIGINT/SIGTERM (`rxgate.stream.app`); a stop that takes longer
   than `health.STOP_GRACE` seconds (the broker gone) ends the process without a clean stop.
"""
from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from .. import package_version
from ..kafka_security import KafkaSecurityError
from ..knowledge import KnowledgeError, load_knowledge
from ..log_repeats import install_repeat_filter
from ..logs import configure_logging, logging_config
from . import logsafe
from .config import ConfigError, Settings
from .health import start_stop_guard
from .metrics import Metrics, MetricsServer
from .topics import TopicError, ensure_topics

log = logging.getLogger("rxgate.worker")


_json_logs = False  # RXGATE_LOG_FORMAT=json: every line on stderr is a JSON object


def _fail(message: str, code: int) -> int:
    if _json_logs:
        log.error("rxgate worker: %s", message)
    else:
        print(f"rxgate worker: {message}", file=sys.stderr, flush=True)
    return code


def main() -> int:
    global _json_logs
    logsafe.install()  # tracebacks in the logs, without messages that may quote patient data
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        # the format may be the bad setting itself; honour it when it reads json
        if os.environ.get("RXGATE_LOG_FORMAT", "").strip().lower() == "json":
            _json_logs = True
            configure_logging("info", "json")
        return _fail(str(e), 2)
    configure_logging(settings.log_level, settings.log_format)
    install_repeat_filter()  # one line for a flood of the same record (a broker gone)
    _json_logs = settings.log_format == "json"
    try:
        knowledge = load_knowledge(settings.knowledge_dir)
    except KnowledgeError as e:
        where = settings.knowledge_dir or "the built-in knowledge"
        return _fail(f"RXGATE_KNOWLEDGE_DIR ({where}) cannot be loaded: {e}", 2)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # faust runs on this loop too
    try:
        loop.run_until_complete(_check_connection(settings))
    except KafkaSecurityError as e:
        loop.close()
        return _fail(str(e), 2)
    try:
        loop.run_until_complete(ensure_topics(settings))
    except TopicError as e:
        loop.close()
        return _fail(str(e), 2 if "RXGATE_PARTITIONS" in str(e) else 1)

    metrics = Metrics(settings.stall_seconds)
    metrics.set_knowledge_version(knowledge.version)
    server = None
    if settings.metrics_port:
        try:
            server = MetricsServer(metrics, settings.metrics_host, settings.metrics_port).start()
        except OSError as e:
            loop.close()
            if isinstance(e, socket.gaierror) or e.errno == errno.EADDRNOTAVAIL:
                return _fail(f"RXGATE_METRICS_HOST={settings.metrics_host} cannot be listened "
                             f"on (not an address of this machine): {e.strerror or e}", 2)
            return _fail(f"RXGATE_METRICS_PORT={settings.metrics_port} cannot be served on "
                         f"{settings.metrics_host}: {e.strerror or e}", 2)

    own_data_dir = settings.data_dir is None
    data_dir = Path(settings.data_dir or tempfile.mkdtemp(prefix="rxgate-worker-"))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if server is not None:
            server.stop()
        loop.close()
        return _fail(f"RXGATE_DATA_DIR={settings.data_dir} cannot be created: "
                     f"{e.strerror or e}", 2)
    # as `rxgate check` does (check.py): the young generation is collected every 50,000
    # allocations, not 700; a batch keeps hundreds of outputs, sends and futures alive until it
    # settles, and the default spent about a fifth of the shell's time re-scanning them
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        return _run_faust(settings, knowledge, metrics, data_dir, server)
    finally:
        if server is not None:
            server.stop()
        if own_data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _check_connection(settings: Settings, timeout: float = 30.0) -> None:
    """Connect once with the TLS/SASL settings, so that a wrong CA or refused credentials
    stop start-up naming the setting. A broker that cannot be reached at all is retried (and
    then reported by ensure_topics)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await settings.kafka.check_broker(settings.bootstrap_servers):
        if loop.time() > deadline:
            return
        await asyncio.sleep(1.0)


def _worker_class():
    import faust

    class Worker(faust.Worker):
        """faust's worker, with rxgate's log summaries and a bounded stop."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            install_repeat_filter(logger)

        async def stop(self) -> None:
            if not getattr(self, "_rxgate_stopping", False):
                self._rxgate_stopping = True
                start_stop_guard()  # SIGTERM stops the worker within seconds, broker or not
            await super().stop()

    return Worker


def _run_faust(settings: Settings, knowledge, metrics: Metrics, data_dir: Path,
               server: MetricsServer | None) -> int:
    from .app import create_app

    _Worker = _worker_class()

    app = create_app(settings, knowledge, metrics, data_dir)
    where = f"http://{settings.metrics_host}:{server.port}/metrics" if server else "off"
    log.info("rxgate worker %s: group %s, broker %s (%s), %d partition(s), knowledge %s, "
             "metrics %s", package_version(), settings.group, settings.broker,
             settings.kafka.describe(), settings.partitions, knowledge.version, where)
    # faust applies this logging config again when it starts (instead of its colouring one)
    worker = _Worker(app, loglevel=settings.log_level.upper(), quiet=True,
                     redirect_stdouts=False,
                     logging_config=logging_config(settings.log_level, settings.log_format))
    try:
        worker.execute_from_commandline()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    return 0
