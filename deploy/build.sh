#!/usr/bin/env bash
# docker build with BuildKit when the client has it (only the stages a target needs are built),
# else the classic builder. Builds use the host network (no bridge on these machines).
#
#   bash deploy/build.sh -f deploy/crashed.Dockerfile --target runtime -t crashed:local .
set -euo pipefail
if docker buildx version >/dev/null 2>&1; then
  exec docker buildx build --load --progress plain --network host "$@"
fi
# Docker's own client before 23 (e.g. Debian's docker.io) has BuildKit built in.
for client in $(type -ap docker); do
  version=$("$client" version --format '{{.Client.Version}}' 2>/dev/null || true)
  if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ] 2>/dev/null; then
    DOCKER_BUILDKIT=1 exec "$client" build --progress plain --network host "$@"
  fi
done
echo "build.sh: no BuildKit client (docker buildx); the classic builder builds every stage" >&2
exec docker build --network host "$@"
