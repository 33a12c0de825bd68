# syntax=docker/dockerfile:1
# Two images from one file:
#   runtime (default): python -m sentiment_mlops.serve on port 8000, model from the MLflow registry
#     (MLFLOW_TRACKING_URI, SENTIMENT_MODEL_URI) or baked in at build time with --build-arg BAKE_MODEL_FROM=<tracking URI>.
#   train (--target train): training, evaluation and the notebooks' tools, run on a project mounted at /app, e.g.
#     docker run --rm -v "$(pwd):/app" IMAGE python -m sentiment_mlops.train
# Where pip needs a private CA bundle, pass it as a build secret (never a layer): --secret id=ca,src=/path/to/ca.crt

FROM python:3.11-slim AS base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt settings.ini ./
# settings.ini's dependency lists, one requirement a line, pinned by the same constraints as CI
RUN python -c "import configparser; c = configparser.ConfigParser(delimiters=['=']); c.read('settings.ini'); d = c['DEFAULT']; \
open('serve.txt', 'w').write('\n'.join(d['serve_requirements'].split())); \
open('train.txt', 'w').write('\n'.join(d['requirements'].split() + d['notebook_requirements'].split()))"

FROM base AS serve-deps
# the inference service's dependencies only (no scikit-learn, matplotlib, pandera or MLflow's server)
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install -c constraints.txt -r serve.txt

FROM serve-deps AS build
COPY setup.py pyproject.toml README.md MANIFEST.in ./
COPY sentiment_mlops ./sentiment_mlops
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install --no-deps . \
 && python -c "import sentiment_mlops.serve" \
 && pip uninstall -q -y pip setuptools \
 && find /opt/venv -depth -type d -name tests -path '*/site-packages/*/tests' -exec rm -rf {} +

FROM build AS bake
# Optional offline image: copy one registered version into the model cache at build time.
ARG BAKE_MODEL_FROM=""
ARG MODEL_URI="models:/SentimentAnalysisModel@production"
ENV SENTIMENT_MODEL_CACHE_DIR=/opt/models
RUN mkdir -p /opt/models \
 && if [ -n "$BAKE_MODEL_FROM" ]; then \
      MLFLOW_TRACKING_URI="$BAKE_MODEL_FROM" python -c "from sentiment_mlops.config import Settings; from sentiment_mlops.store import load_model; print(load_model(Settings(), '$MODEL_URI').version)"; \
    fi

FROM base AS train
# Training runs as the owner of the mounted project (see docker-entrypoint-train.sh), never as root.
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install -c constraints.txt -r serve.txt -r train.txt
COPY setup.py pyproject.toml README.md MANIFEST.in ./
COPY sentiment_mlops ./sentiment_mlops
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install --no-deps . && python -c "import sentiment_mlops.train"
COPY scripts/docker-entrypoint-train.sh /usr/local/bin/train-entrypoint
ENV HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
ENTRYPOINT ["train-entrypoint"]
CMD ["python", "-m", "sentiment_mlops.train"]

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
