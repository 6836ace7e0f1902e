#!/usr/bin/env bash
# Digests of every sanitize output brine writes for the files under the given folders, so a
# change to the output path can be checked byte for byte against the code before it:
#
#   bash bench/sanitize_digests.sh BRINE OUT.txt corpus tests/data   # before the change
#   bash bench/sanitize_digests.sh BRINE NEW.txt corpus tests/data   # after it; then diff the two
#
# For each input and each of safetensors, ONNX (inline) and ONNX with external data, and with
# and without --salvage, one line: input, mode, exit status, sha256 of the output (and of its
# .data side file), or "-" when nothing was written.
set -uo pipefail
B=$1; OUT=$2; shift 2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
digest() { [ -f "$1" ] && sha256sum <"$1" | cut -c1-64 || echo -; }
: >"$OUT"
find "$@" -type f ! -name '*.json' ! -name '*.py' ! -name '*.md' | LC_ALL=C sort | while read -r f; do
  for mode in "safetensors" "verify-safetensors" "onnx" "onnx-external" "verify-onnx-external" "salvage-safetensors"; do
    rm -f "$TMP"/o.*
    case $mode in
      safetensors) "$B" sanitize "$f" -o "$TMP/o.safetensors" >/dev/null 2>&1; rc=$?; o=$TMP/o.safetensors ;;
      verify-safetensors) "$B" sanitize --verify "$f" -o "$TMP/o.safetensors" >/dev/null 2>&1; rc=$?; o=$TMP/o.safetensors ;;
      verify-onnx-external) "$B" sanitize --verify "$f" -o "$TMP/o.onnx" --external-data >/dev/null 2>&1; rc=$?; o=$TMP/o.onnx ;;
      onnx) "$B" sanitize "$f" -o "$TMP/o.onnx" >/dev/null 2>&1; rc=$?; o=$TMP/o.onnx ;;
      onnx-external) "$B" sanitize "$f" -o "$TMP/o.onnx" --external-data >/dev/null 2>&1; rc=$?; o=$TMP/o.onnx ;;
      salvage-safetensors) "$B" sanitize --salvage "$f" -o "$TMP/o.safetensors" >/dev/null 2>&1; rc=$?; o=$TMP/o.safetensors ;;
    esac
    echo "$f $mode rc=$rc $(digest "$o") $(digest "$o.data")" >>"$OUT"
  done
done
echo "$(wc -l <"$OUT") lines, $(grep -vc ' - -$' "$OUT") with output: $OUT"
