#!/usr/bin/env bash
# Creates (or refreshes) the project's Python virtualenv in .venv with the tools the tests need.
# Idempotent: does nothing when the installed requirements match scripts/requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
REQ=scripts/requirements-dev.txt
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bootstrap-venv: $PYTHON not found; install Python 3.9 or later" >&2
  exit 1
fi

echo "bootstrap-venv: installing $(grep -cv '^\s*\(#\|$\)' "$REQ") Python requirement(s) into $VENV" >&2
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
