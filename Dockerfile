# syntax=docker/dockerfile:1
# The Leitstand image: one build, reused by every process of docker-compose.yml (the worker
# roles critical / telemetry / control, the history sink, `db migrate`, `db prune`, the operator
# console, the demo simulator). Nothing secret is baked in: tokens and passwords arrive as
# environment variables at run time, and .dockerignore keeps .env, .venv and .git out of the build
# context.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp1: LightGBM (the default forecaster) links against GNU OpenMP, which the slim image lacks
# (the one library the worker's wheels need beyond the slim image: tests/unit/test_compose.py).
# SUMO is left out: libsumo and the sumo binaries also want libGL and X11 (several hundred MB of
# Mesa); run `leitstand sumo` outside this image.
# Not version-pinned (hadolint DL3008): Debian replaces a package's version on its mirrors with each
# security update, so a pinned version stops installing; the python:3.11-slim tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# a fixed numeric uid, so orchestrators can check runAsNonRoot and volumes can be chowned to it;
# /var/lib/leitstand/console is where compose mounts the console's accounts (a fresh named volume
# takes the image directory's owner, so the console can write there)
RUN groupadd --system --gid 10001 leitstand \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/leitstand leitstand \
    && mkdir -p /var/lib/leitstand/console \
    && chown -R leitstand:leitstand /var/lib/leitstand

WORKDIR /app

# Dependencies first (a layer that survives code changes): the runtime dependencies of
# pyproject.toml (plus the rocksdb extra for durable tables), every version pinned by
# requirements.lock used as a constraints file, so the image gets exactly the tested versions
# but none of the dev tools that the lock also holds.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['rocksdb']))" > /tmp/runtime.txt \
    && pip install -c requirements.lock -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt

# The code, installed editable without touching the dependencies: the worker serves
# docs/openapi.yaml from the checkout beside the package. Owned by root: the process cannot change it.
COPY . .
RUN pip install --no-deps -e . \
    && python -c "import lightgbm, faust, psycopg, streams.app, streams.db.sink; psycopg.pq.version()"

USER 10001:10001
ENV HOME=/home/leitstand \
    LEITSTAND_WEB_HOST=0.0.0.0 \
    LEITSTAND_DATA_DIR=/var/lib/leitstand/worker \
    LEITSTAND_STATE_DIR=/var/lib/leitstand/state \
    LEITSTAND_CACHE_DIR=/var/lib/leitstand/cache

EXPOSE 6066
# Ready = owns partitions, not rebalancing, hears from the broker (GET /ready, no token).
# The forecasting imports take a few seconds on a small machine, hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=4 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('LEITSTAND_WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["leitstand"]
CMD ["worker"]
