#!/usr/bin/env bash
# Load benchmark of `brine serve` (issue: the registry gatekeeper), side by side in one run with
# what a registry does today: picklescan started once per uploaded file.
#
#   bash bench/serve/run.sh [OUTDIR]     (OUTDIR caches the mix; default /tmp/brine-bench)
#   PICKLESCAN_SRC=/path/to/picklescan   also run the anchor (a checkout of mmaitre314/picklescan)
#   SERVE_BENCH_SECONDS=N                wrk duration per connection count (default 20)
#
# For 1, 8 and 64 connections: a fresh `brine serve --workers $(nproc)` on loopback, `wrk` POSTing
# the mix round-robin (bench/serve/post_mix.lua), then the server's peak RSS (VmHWM). Writes
# bench/results/serve/: wrk-C.json, rss-C.txt, picklescan.txt, brine-cli.txt and summary.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$(mkdir -p "${1:-/tmp/brine-bench}" && cd "${1:-/tmp/brine-bench}" && pwd)
RES=$ROOT/bench/results/serve
PY=/usr/bin/python3
BUILD=$ROOT/build-release
B=$BUILD/src/brine
SECONDS_PER_RUN=${SERVE_BENCH_SECONDS:-20}

log() { printf '\n== %s\n' "$*"; }
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=disabled
fi
ninja -C "$BUILD" >/dev/null

rm -rf "$RES"
mkdir -p "$RES"
MIX=$OUT/serve-mix
$PY "$HERE/make_mix.py" "$MIX" >"$RES/mix.txt"
(cd "$MIX" && ls -l --time-style=+ | awk 'NR>1 {print $5, $NF}') >"$RES/mix-sizes.txt"
FILES=$(wc -l <"$RES/mix.txt")
{ nproc; uname -r; "$B" --version; wrk --version 2>&1 | head -1 || true; } >"$RES/machine.txt"

for c in 1 8 64; do
  log "brine serve, $c connection(s), ${SECONDS_PER_RUN}s"
  errf=$(mktemp)
  "$B" serve --listen 127.0.0.1:0 --workers "$(nproc)" --queue 256 --connections 128 --access-log none 2>"$errf" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$errf" && break; sleep 0.05; done
  port=$(grep -o ':[0-9]*$' "$errf" | tr -d :)
  threads=$(( c < 2 ? c : 2 ))
  wrk -t "$threads" -c "$c" -d "${SECONDS_PER_RUN}s" --latency -s "$HERE/post_mix.lua" "http://127.0.0.1:$port" -- "$RES/mix.txt" \
    | tee "$RES/wrk-$c.txt" | grep '^{' >"$RES/wrk-$c.json"
  grep VmHWM "/proc/$pid/status" | awk '{print $2}' >"$RES/rss-$c.txt"
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$errf"
  cat "$RES/wrk-$c.json"
done

# The anchors: one process per uploaded file, the mix ROUNDS times over.
ROUNDS=3
per_file() {  # per_file LABEL COMMAND... : runs COMMAND FILE for every file of the mix, ROUNDS times
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  for _ in $(seq $ROUNDS); do
    while read -r f; do "$@" "$f" >/dev/null 2>&1 || true; done <"$RES/mix.txt"
  done
  end=$(date +%s.%N)
  echo "$label $(( ROUNDS * FILES )) $(echo "$end - $start" | bc)" | tee -a "$RES/anchors.txt"
}
: >"$RES/anchors.txt"
log "anchor: brine scan started per file"
per_file brine-cli "$B" scan
if [ -n "${PICKLESCAN_SRC:-}" ]; then
  log "anchor: picklescan started per file ($PICKLESCAN_SRC)"
  export PYTHONPATH=$PICKLESCAN_SRC/src
  per_file picklescan $PY -m picklescan --path
fi

$PY "$HERE/summarize.py" "$RES" | tee "$RES/summary.md"
