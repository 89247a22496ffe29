#!/usr/bin/env bash
# Print the Python base image to build on, building a local one when the official image
# cannot be pulled (no Docker Hub). Never push a local base: it trusts this host's extra CAs.
#
#   bash deploy/base-image.sh 3.11   # python:3.11-slim, else local/python:3.11 (Debian bookworm)
#   bash deploy/base-image.sh 3.13   # python:3.13-slim, else local/python:3.13 (Debian trixie),
#                                    # for the BigQuery emulator image
#
# $CRASHED_PYTHON_IMAGE (when set) is printed as is. The local base is mmdebstrap
# --variant=minbase with python3 + venv + ca-certificates, and the host's
# /usr/local/share/ca-certificates copied in and trusted (HTTPS may be intercepted by a
# TLS-inspecting proxy; pip and apt inside the image must trust it). An existing local tag is
# reused unless CRASHED_BASE_REBUILD=1. The image name goes to stdout, progress to stderr.
set -euo pipefail

VERSION=${1:-3.11}
case "$VERSION" in
  3.11) SUITE=bookworm ;;
  3.13) SUITE=trixie ;;
  *) echo "base-image: unsupported Python $VERSION (3.11 or 3.13)" >&2; exit 2 ;;
esac
OFFICIAL=python:$VERSION-slim
TAG=local/python:$VERSION
MIRROR=${CRASHED_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -n "${CRASHED_PYTHON_IMAGE:-}" ]; then
  echo "$CRASHED_PYTHON_IMAGE"
  exit 0
fi
if docker image inspect "$OFFICIAL" >/dev/null 2>&1 ||
  timeout 120 docker pull -q "$OFFICIAL" >/dev/null 2>&1; then
  echo "$OFFICIAL"
  exit 0
fi
echo "base-image: $OFFICIAL cannot be pulled; using a local Debian $SUITE base ($TAG)" >&2
if docker image inspect "$TAG" >/dev/null 2>&1 && [ "${CRASHED_BASE_REBUILD:-0}" != 1 ]; then
  echo "$TAG"
  exit 0
fi
command -v mmdebstrap >/dev/null || {
  echo "base-image: mmdebstrap is missing (apt-get install mmdebstrap, or deploy/docker-daemon.sh start)" >&2
  exit 1
}

hooks=()
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  hooks+=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share/'
    --customize-hook='chroot "$1" update-ca-certificates')
fi

start=$(date +%s)
echo "base-image: building $TAG from Debian $SUITE with mmdebstrap" >&2
# Also drop apt lists, docs and locales the image never reads (minbase keeps them).
mmdebstrap --variant=minbase --quiet \
  --include=python3,python3-venv,python-is-python3,ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  "${hooks[@]}" \
  --customize-hook='chroot "$1" apt-get clean' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  "$SUITE" - "$MIRROR" |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$TAG" >/dev/null
echo "base-image: $TAG built in $(($(date +%s) - start))s" \
  "($(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
echo "$TAG"
