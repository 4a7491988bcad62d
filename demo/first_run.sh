#!/usr/bin/env bash
# One command on a fresh clone: the first-run demo without Odoo.
#
#   bash demo/first_run.sh [--step]
#
# Makes (or reuses) the virtualenv .venv-ci exactly as `bash .ci/run` does (python3 -m venv,
# then pip install -r requirements-test.txt), then runs demo/first_run.py with it.
# CI_VENV=/path puts the virtualenv elsewhere, as for .ci/run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CI_VENV:-$REPO/.venv-ci}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV ..."
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import googleapiclient, google_auth_httplib2, msal, requests, trustme, cryptography' 2>/dev/null; then
    echo "installing requirements-test.txt into $VENV (once) ..."
    log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install --quiet -r "$REPO/requirements-test.txt" >"$log" 2>&1; then
        grep -v "^WARNING: Location '" "$log" >&2 || true
        echo "pip install -r requirements-test.txt failed (log: $log)" >&2
        exit 1
    fi
fi
exec "$VENV/bin/python" "$REPO/demo/first_run.py" "$@"
