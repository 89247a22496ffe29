# The BigQuery emulator (local-bigquery, Python 3.13) as an image: GitLab's `test` job runs it
# as a service, and `make test-containers` beside the `ci` image, like GitLab does.
#
#   make image-bigquery   # docker build -f deploy/bigquery-emulator.Dockerfile -t crashed-bigquery:local .
#
# PYTHON_IMAGE is python:3.13-slim where Docker Hub answers, else the local Debian trixie base
# (deploy/base-image.sh 3.13: trixie's python3 is 3.13). Pins: tests/servers/bigquery/requirements.txt.
# The server listens on 0.0.0.0:$BIGQUERY_EMULATOR_PORT; extract jobs write gs://bucket/path to
# $GCS_LOCAL_ROOT/bucket/path, a folder the job shares (GitLab: under $CI_PROJECT_DIR).
ARG PYTHON_IMAGE=python:3.13-slim
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIGQUERY_EMULATOR_PORT=9050
COPY tests/servers/bigquery/requirements.txt /opt/bigquery/requirements.txt
RUN python -c 'import sys; assert sys.version_info[:2] == (3, 13), sys.version' \
    && python -m venv /opt/bigquery/venv \
    && /opt/bigquery/venv/bin/pip install --no-deps -r /opt/bigquery/requirements.txt \
    && /opt/bigquery/venv/bin/pip check
COPY tests/servers/bigquery/launch.py /opt/bigquery/launch.py
RUN /opt/bigquery/venv/bin/python /opt/bigquery/launch.py --install-extensions
WORKDIR /tmp
EXPOSE 9050
ENTRYPOINT ["/bin/sh", "-c", "exec /opt/bigquery/venv/bin/python /opt/bigquery/launch.py --host 0.0.0.0 --port \"$BIGQUERY_EMULATOR_PORT\" --grpc-port 0 --data-dir /tmp/bigquery \"$@\"", "launch"]
