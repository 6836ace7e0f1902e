#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only) and builds brine into ./build.
#   scripts/setup.sh build   — what `brine` itself needs to build and run
#   scripts/setup.sh test    — plus what the test suites use (torch, numpy, scikit-learn, joblib, dask)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-build}"
build_pkgs=(meson ninja-build pkg-config cmake g++ lld libfmt-dev nlohmann-json3-dev doctest-dev
            nettle-dev libcli11-dev zlib1g-dev libarchive-dev libbz2-dev liblzma-dev libzstd-dev liblz4-dev libprotobuf-dev libonnx-dev libcpp-httplib-dev python3)
test_pkgs=(python3-torch python3-numpy python3-sklearn python3-joblib python3-onnx python3-lz4 zstd p7zip-full
           pre-commit git groff-base   # the pre-commit hook test; the man page render check
           python3-distributed python3-dask)  # contrib/dask's driver and its test (tests/dask_test.py)

pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")
# onnxruntime-node (npm) loads sanitize's ONNX outputs in the tests; ajv (npm) validates report schemas. A machine may already have a
# newer Node.js from elsewhere: Debian's is installed only when there is none.
if [ "$mode" = test ]; then
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  tests/onnxruntime/install.sh >/dev/null
  tests/schemas/install.sh >/dev/null  # ajv: tests/schema_test.py validates SARIF and JSON reports
fi

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
echo "setup: built $(./build/src/brine --version)"
