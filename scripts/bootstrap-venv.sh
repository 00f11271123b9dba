#!/usr/bin/env bash
# Creates (or refreshes) the project's Python virtualenvs:
#   .venv      the tools the tests and lints need (scripts/requirements-dev.txt)
#   .venv-sam  the AWS SAM CLI (scripts/requirements-sam.txt), apart because its pins clash with moto's
# Idempotent: a virtualenv whose installed requirements match its requirements file is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# ensure_venv DIR REQUIREMENTS: (re)install DIR from REQUIREMENTS unless its stamp matches.
ensure_venv() {
  local venv=$1 req=$2
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)

  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi

  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "bootstrap-venv: $PYTHON not found; install Python 3.10 or later" >&2
    exit 1
  fi

  echo "bootstrap-venv: installing $(grep -cv '^\s*\(#\|$\)' "$req") Python requirement(s) into $venv" >&2
  rm -f "$stamp"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

ensure_venv .venv scripts/requirements-dev.txt
ensure_venv .venv-sam scripts/requirements-sam.txt
