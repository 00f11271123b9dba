#!/usr/bin/env bash
# `make deploy` (after `make build`): deploys template.yaml with the binaries in dist/lambda, as
# the architecture `make build` recorded in dist/lambda/architecture, which it passes as the
# FunctionArchitecture parameter. Nothing is built here and `sam build` is never run: the
# functions' CodeUris are the dist/lambda/<binary>/ directories themselves.
#
# The first deploy is guided (`sam deploy --guided`), and so is any with GUIDED=1; its answers
# are saved in samconfig.toml. Later deploys take the saved answers without asking (the change
# set is still shown for confirmation, confirm_changeset in samconfig.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "deploy: error: $*" >&2
  exit 1
}

case "${GUIDED:-}" in
  "" | 1) ;;
  *) die "GUIDED is '$GUIDED'; set GUIDED=1 for a guided deploy, or leave it unset" ;;
esac

SAM_DIR=.venv-sam
[ -x "$SAM_DIR/bin/sam" ] || die "$SAM_DIR/bin/sam not found: run make venv (scripts/bootstrap-venv.sh)"
export SAM_CLI_TELEMETRY=0
export PATH="$PWD/$SAM_DIR/bin:$PATH"

# Every function's bootstrap is there and of the recorded architecture (or this stops).
arch=$(scripts/build-functions.sh --check)

# A command-line --parameter-overrides replaces the saved ones, so they are passed again, with
# FunctionArchitecture last: the later value of a parameter wins.
saved_file=$(mktemp)
trap 'rm -f "$saved_file"' EXIT
"$SAM_DIR/bin/python" scripts/saved-parameter-overrides.py samconfig.toml >"$saved_file"
mapfile -d '' saved <"$saved_file"
overrides=("${saved[@]}" "FunctionArchitecture=$arch")

if [ "${GUIDED:-}" = 1 ] || [ "${#saved[@]}" -eq 0 ]; then
  guided=(--guided)
else
  guided=()
fi
if [ "${#guided[@]}" -gt 0 ]; then
  echo "deploy: guided: answer Parameter FunctionArchitecture with $arch (the default offered):" \
    "the binaries in dist/lambda are $arch, and any other answer gives the stack functions that" \
    "cannot start" >&2
fi

echo "deploy: deploying the $arch binaries in dist/lambda (FunctionArchitecture=$arch)" >&2
# --template-file: this template, never a .aws-sam/build/template.yaml left by an old sam build.
sam deploy --template-file template.yaml "${guided[@]}" --parameter-overrides "${overrides[@]}"
