# hazmon services image: `hazmon ingest`, `hazmon api`, `hazmon migrate`, …
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hazmon hazmon
COPY ingest ingest
COPY rules rules
COPY registry registry
COPY api api
COPY notify notify
COPY simulators simulators
RUN pip install --no-cache-dir . && useradd --system hazmon
USER hazmon
ENTRYPOINT ["hazmon"]
