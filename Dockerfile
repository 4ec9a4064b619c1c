# rxgate worker image: the streaming validator (`rxgate worker`), configured by RXGATE_* env.
#   docker build -t rxgate:0.1.0 .
#   docker run --rm -e RXGATE_BROKER=kafka://kafka:9092 -p 9108:9108 rxgate:0.1.0
# Other subcommands run through the same entrypoint: `docker run --rm -i rxgate:0.1.0 check -`.

# The base image is pinned to a full Python version and Debian release; bump it deliberately.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the package build needs (see .dockerignore): metadata, readme, sources.
COPY pyproject.toml README.md ./
COPY services ./services
# rxgate's own wheel only; its dependencies come from requirements.lock in the next stage
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RXGATE_KNOWLEDGE_DIR=/opt/rxgate/knowledge \
    RXGATE_METRICS_HOST=0.0.0.0 \
    RXGATE_METRICS_PORT=9108 \
    RXGATE_DATA_DIR=/var/lib/rxgate
# Dependencies exactly as locked, each file checked against its sha256 (requirements.lock,
# made by scripts/lock), so two builds install the same packages; then rxgate without
# dependencies, so nothing unlocked slips in.
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
 && pip install --no-index --no-deps /wheels/rxgate-*.whl \
 && pip check \
 && groupadd --system --gid 10001 rxgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rxgate \
            --no-create-home --shell /usr/sbin/nologin rxgate \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/rxgate
# The drug knowledge, outside site-packages so an operator can mount a newer set over it
# (read-only) without rebuilding the image; rxgate_knowledge_info{version} shows which one runs.
COPY --chown=root:root services/rxgate/knowledge/data /opt/rxgate/knowledge

# faust's working directory (RXGATE_DATA_DIR): the only path the worker writes.
WORKDIR /var/lib/rxgate
USER 10001:10001
EXPOSE 9108
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RXGATE_METRICS_PORT', '9108'), timeout=4)"]
ENTRYPOINT ["rxgate"]
CMD ["worker"]
