#!/usr/bin/env bash
# Installs Ajv, ajv-draft-04 and ajv-formats (versions pinned in package.json / package-lock.json)
# into tests/schemas/node_modules for tests/schema_test.py. Does nothing when they are already there.
# Needs node and npm (Debian: apt-get install nodejs npm) and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

present() {
  [ -f node_modules/ajv/package.json ] && [ -f node_modules/ajv-draft-04/package.json ] && [ -f node_modules/ajv-formats/package.json ]
}

if present; then
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install.sh: '$tool' not found (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

if ! present; then
  echo "install.sh: ajv is still missing from $(pwd)/node_modules" >&2
  exit 1
fi
node -e "require('ajv'); require('ajv-draft-04'); require('ajv-formats')" || { echo "install.sh: ajv does not load" >&2; exit 1; }
echo "install.sh: ajv $(node -p "require('ajv/package.json').version") installed in $(pwd)/node_modules"
