#!/usr/bin/env bash
# Offline checks of the Salesforce package (salesforce/), as `make salesforce-check` runs them:
#
#   1. installs the Salesforce CLI, the Apex parser and the Metadata API types into
#      salesforce/node_modules at the versions salesforce/package-lock.json locks (npm ci), unless
#      they are installed at those versions already;
#   2. `sf project convert source` converts every package directory into a temporary folder, with
#      the deploy-time string replacements applied (placeholder values), as a deploy would; the
#      Named Credential must come out with the replaced URL;
#   3. scripts/check-package.mjs parses every .cls and .trigger (file:line:column on a syntax
#      error) and checks every *-meta.xml against the Metadata API's types.
#
# No Salesforce org is contacted, nor anything else but the npm registry during the install. The
# CLI's state (config, logs, caches) goes to a temporary HOME, so nothing depends on the caller's.
# What only a real org can check: README.md, "The Salesforce package".
set -euo pipefail
cd "$(dirname "$0")/../salesforce"

need_node_major=20
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "check-salesforce-package: Node.js ${need_node_major} or later and npm are needed" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt "$need_node_major" ]; then
  echo "check-salesforce-package: Node.js ${need_node_major} or later is needed, found $(node --version)" >&2
  exit 1
fi

# 1. Install, unless node_modules already holds what package-lock.json locks.
stamp=node_modules/.dealbridge-install.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -x node_modules/.bin/sf ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  :
else
  echo "check-salesforce-package: installing the Salesforce CLI and the Apex parser (npm ci)" >&2
  started=$(date +%s)
  # --ignore-scripts: none of these packages needs its install scripts to convert or parse.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
  echo "check-salesforce-package: installed in $(( $(date +%s) - started ))s" >&2
fi

# 2. Convert, as a deploy would, with no state outside a temporary folder and no network.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/.local/share" \
  XDG_CACHE_HOME="$work/home/.cache" SF_USE_GENERIC_UNIX_KEYCHAIN=true \
  SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true SF_DISABLE_AUTOUPDATE=true \
  SF_SKIP_NEW_VERSION_CHECK=true SF_HIDE_RELEASE_NOTES=true SF_CONTENT_TYPE=JSON \
  SF_APPLY_REPLACEMENTS_ON_CONVERT=true \
  DEALBRIDGE_INTAKE_URL=https://dealbridge-check.example.com \
  DEALBRIDGE_OUTBOUND_MESSAGE_URL=https://dealbridge-check.example.com/v1/outbound-messages/check-token \
  DEALBRIDGE_OUTBOUND_MESSAGE_USER=dealbridge-check@example.com

dirs=(force-app cpq outbound-message)
args=()
for d in "${dirs[@]}"; do args+=(--source-dir "$d"); done
if ! node_modules/.bin/sf project convert source "${args[@]}" --output-dir "$work/mdapi" --json \
    > "$work/convert.json" 2> "$work/convert.err"; then
  echo "check-salesforce-package: sf project convert source failed:" >&2
  cat "$work/convert.json" "$work/convert.err" >&2
  exit 1
fi
if ! grep -q '<parameterValue>https://dealbridge-check.example.com</parameterValue>' \
    "$work/mdapi/namedCredentials/Dealbridge.namedCredential"; then
  echo "check-salesforce-package: the Named Credential's URL was not replaced from DEALBRIDGE_INTAKE_URL (sfdx-project.json replacements)" >&2
  exit 1
fi
if grep -rq 'invalid</' "$work/mdapi"; then
  echo "check-salesforce-package: a placeholder survived the conversion:" >&2
  grep -rn 'invalid</' "$work/mdapi" >&2
  exit 1
fi
components=$(grep -c '<members>' "$work/mdapi/package.xml")

# 3. Apex syntax and the metadata's shape.
node scripts/check-package.mjs "${dirs[@]}"
echo "check-salesforce-package: sf project convert source: ${components} components converted"
