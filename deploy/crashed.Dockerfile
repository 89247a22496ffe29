# The one image: every pipeline step (`crashed pipelines crashed_pipeline run-op …`) and the
# inference service (`crashed inference start-prod`) run it.
#
#   docker build -f deploy/crashed.Dockerfile -t crashed .              # runtime (last stage)
#   docker build -f deploy/crashed.Dockerfile --target ci -t crashed-ci .  # + test tools, for CI
#
# Dependencies are pinned by deploy/requirements.lock (regenerate with deploy/lock.sh); the
# package itself is built as a wheel and installed without resolving anything else.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --system --gid 10001 crashed \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/crashed --create-home \
       --shell /usr/sbin/nologin crashed

# -- build: the pinned dependencies, then the crashed wheel, into /opt/venv ---------------------
FROM base AS build
WORKDIR /src
COPY deploy/requirements.lock deploy/requirements.lock
RUN python -m venv /opt/venv \
    && pip install --no-deps --require-virtualenv -r deploy/requirements.lock
COPY setup.py pyproject.toml ./
COPY src/ src/
# src/crashed/deploy_assets/* are symlinks into k8s/: the wheel gets the files' content.
COPY k8s/ k8s/
RUN pip wheel --no-deps --wheel-dir /dist . \
    && pip install --no-deps /dist/crashed-*.whl \
    && pip check \
    && python -m compileall -q /opt/venv/lib \
    && crashed --help >/dev/null

# -- ci: the runtime plus the test tools; `make test` runs here (target it explicitly) -----------
FROM base AS ci
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git rsync \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY deploy/requirements-test.lock /tmp/requirements-test.lock
RUN pip install --no-deps -r /tmp/requirements-test.lock && pip check

# -- runtime (default target): non-root, read-only-root-filesystem friendly ---------------------
FROM base AS runtime
COPY --from=build /opt/venv /opt/venv
# HOME (and CRASHED_HOME's artifact cache below it) is the only writable path besides /tmp;
# Kubernetes mounts emptyDirs on both (k8s/deployment.yaml).
ENV HOME=/home/crashed \
    CRASHED_HOME=/home/crashed/.crashed
WORKDIR /home/crashed
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["crashed"]
CMD ["inference", "start-prod", "--bind", "0.0.0.0:8000"]
