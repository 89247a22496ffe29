#!/usr/bin/env bash
# Install the local-bigquery emulator into .venv-bigquery (Python 3.13, its own venv).
#
#   bash tests/servers/bigquery/setup.sh      # idempotent: exits at once when already installed
#
# Python 3.13 is $BIGQUERY_EMULATOR_PYTHON when set, else the pyenv install these machines carry,
# else python3.13 on PATH. Exit code 78 means "no Python 3.13 here" (tests skip on it).
# Start the emulator with:  .venv-bigquery/bin/python tests/servers/bigquery/launch.py --port P
# With BIGQUERY_EMULATOR_URL set (an emulator already runs, e.g. a CI service) it does nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${BIGQUERY_EMULATOR_VENV:-$repo/.venv-bigquery}"
requirements="$here/requirements.txt"
stamp="$venv/.crashed-requirements.sha256"

find_python() {
    local candidate candidates
    if [ -n "${BIGQUERY_EMULATOR_PYTHON:-}" ]; then
        candidates=("$BIGQUERY_EMULATOR_PYTHON") # explicit choice: nothing else
    else
        candidates=("${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13
            /root/.pyenv/versions/3.13*/bin/python3.13 "$(command -v python3.13 || true)")
    fi
    for candidate in "${candidates[@]}"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

installed_ok() {
    # The stamp is written only after a complete install; the spec check catches a gutted venv.
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sha256sum "$requirements" | cut -d' ' -f1)" ] &&
        "$venv/bin/python" -c '
import importlib.util as u, sys
names = ["duckdb", "local_bigquery"] + [f"duckdb_extension_{n}" for n in ("icu", "ducklake", "httpfs", "spatial")]
sys.exit(any(u.find_spec(n) is None for n in names))' 2>/dev/null
}

if [ -n "${BIGQUERY_EMULATOR_URL:-}" ]; then
    echo "setup.sh: BIGQUERY_EMULATOR_URL=$BIGQUERY_EMULATOR_URL is used; nothing to install" >&2
    exit 0
fi

# Serialise concurrent runs (parallel test sessions) on one lock per venv path.
lock="${TMPDIR:-/tmp}/crashed-bigquery-venv-$(echo "$venv" | sha256sum | cut -c1-16).lock"
exec 9>"$lock"
flock 9

if installed_ok; then
    exit 0
fi

if ! python="$(find_python)"; then
    echo "setup.sh: no Python 3.13 found (set BIGQUERY_EMULATOR_PYTHON); local-bigquery needs it" >&2
    exit 78
fi

start=$(date +%s)
echo "setup.sh: installing local-bigquery into $venv with $python" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$requirements" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
if ! "$venv/bin/python" -c 'import local_bigquery, duckdb; assert duckdb.__version__ == "1.5.5"'; then
    echo "setup.sh: install into $venv failed" >&2
    exit 1
fi
"$venv/bin/python" -m pip check --disable-pip-version-check >&2
"$venv/bin/python" "$here/launch.py" --install-extensions
sha256sum "$requirements" | cut -d' ' -f1 >"$stamp"
echo "setup.sh: local-bigquery installed in $(($(date +%s) - start))s" >&2
