# lorameter: slim, non-root, health-checked. Configure it only with LORAMETER_* variables.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY decoders decoders
COPY ingest ingest
COPY storage storage
COPY api api
COPY lorameter lorameter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /data lorameter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER lorameter
WORKDIR /data
ENV PYTHONUNBUFFERED=1 \
    LORAMETER_API_HOST=0.0.0.0 \
    LORAMETER_API_PORT=8000 \
    LORAMETER_STORE_URL=sqlite:////data/lorameter.db \
    LORAMETER_SPOOL_PATH=/data/spool.db
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('LORAMETER_API_PORT', '8000'), timeout=5)"]
CMD ["lorameter", "run"]
