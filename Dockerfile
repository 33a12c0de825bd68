# syntax=docker/dockerfile:1
# The inference service: python -m sentiment_mlops.serve on port 8000, model from the MLflow registry
# (MLFLOW_TRACKING_URI, SENTIMENT_MODEL_URI) or baked in at build time with --build-arg BAKE_MODEL_FROM=<tracking URI>.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY constraints.txt settings.ini setup.py pyproject.toml README.md MANIFEST.in ./
COPY sentiment_mlops ./sentiment_mlops
# runtime dependencies only (no [dev]), pinned by the same constraints as CI
RUN pip install -c constraints.txt . \
 && python -c "import sentiment_mlops.serve"

FROM build AS bake
# Optional offline image: copy one registered version into the model cache at build time.
ARG BAKE_MODEL_FROM=""
ARG MODEL_URI="models:/SentimentAnalysisModel@production"
ENV SENTIMENT_MODEL_CACHE_DIR=/opt/models
RUN mkdir -p /opt/models \
 && if [ -n "$BAKE_MODEL_FROM" ]; then \
      MLFLOW_TRACKING_URI="$BAKE_MODEL_FROM" python -c "from sentiment_mlops.config import Settings; from sentiment_mlops.store import load_model; print(load_model(Settings(), '$MODEL_URI').version)"; \
    fi

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="sentiment_mlops" \
      org.opencontainers.image.description="Three-class sentiment model served from the MLflow registry" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --home-dir /app --create-home app \
 && mkdir -p /app/logs && chown app:app /app/logs && chmod 0700 /app/logs
# (a named volume mounted on /app/logs starts as a copy of this directory: owned by the app user)
COPY --from=build /opt/venv /opt/venv
COPY --from=bake --chown=app:app /opt/models /opt/models
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SENTIMENT_HOST=0.0.0.0 SENTIMENT_PORT=8000 \
    SENTIMENT_MODEL_CACHE_DIR=/opt/models SENTIMENT_LOG_DIR=/app/logs
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# healthy = ready: a model is loaded and answering (/health answers 200 even with no model)
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status != 200)"]
CMD ["python", "-m", "sentiment_mlops.serve"]
