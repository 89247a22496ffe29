#!/usr/bin/env bash
# Install gitlab-ci-local (npm) under <repo>/.tools/node_modules, once.
#
# Idempotent: exits at once when the pinned version is already installed. 4.56.x is the newest
# line that runs on Node 20 here. The e2e test tests/e2e/test_gitlab_ci_rules.py uses it to
# evaluate .gitlab-ci.yml's rules; it only evaluates (--list-json), so no Docker is needed.
set -euo pipefail

VERSION="${GITLAB_CI_LOCAL_VERSION:-4.56.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${CRASHED_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/node_modules/.bin/gitlab-ci-local"
PACKAGE_JSON="$TOOLS/node_modules/gitlab-ci-local/package.json"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install_gitlab_ci_local: node and npm are required (Node >= 18)" >&2
    exit 1
fi

installed=""
if [[ -x "$BIN" && -f "$PACKAGE_JSON" ]]; then
    installed="$(node -p "require('$PACKAGE_JSON').version" 2>/dev/null || true)"
fi
if [[ "$installed" == "$VERSION" ]]; then
    echo "gitlab-ci-local $VERSION already installed in $TOOLS"
    exit 0
fi

mkdir -p "$TOOLS"
if [[ ! -f "$TOOLS/package.json" ]]; then
    printf '{\n  "name": "crashed-tools",\n  "private": true\n}\n' >"$TOOLS/package.json"
fi
npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
    --save-exact "gitlab-ci-local@$VERSION"
"$BIN" --version
