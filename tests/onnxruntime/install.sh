#!/usr/bin/env bash
# Installs onnxruntime-node (version pinned in package.json / package-lock.json) into
# tests/onnxruntime/node_modules for tests/sanitize_test.py. Does nothing when it is already there.
#
# ONNXRUNTIME_NODE_INSTALL=skip stops the package's postinstall from downloading CUDA bits from
# api.nuget.org; the CPU library (bin/napi-v*/linux/x64/libonnxruntime.so.1) is in the npm tarball.
# Needs node and npm (Debian: apt-get install nodejs npm) and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"

binding_present() {
  [ -f node_modules/onnxruntime-node/package.json ] && [ -f node_modules/onnxruntime-common/package.json ]
}

if [ -d node_modules ] && binding_present; then
  exit 0
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install.sh: '$tool' not found (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

export ONNXRUNTIME_NODE_INSTALL=skip
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

if ! binding_present; then
  echo "install.sh: onnxruntime-node is still missing from $(pwd)/node_modules" >&2
  exit 1
fi
node -e "require('onnxruntime-node')" || { echo "install.sh: onnxruntime-node does not load" >&2; exit 1; }
echo "install.sh: onnxruntime-node $(node -p "require('onnxruntime-node/package.json').version") installed in $(pwd)/node_modules"
