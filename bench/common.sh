# Shared by bench/run.sh and bench/goals.sh (sourced, not run): tools, the release build, the
# inputs, and waiting for idle CPUs. Expects HERE (bench/), ROOT, OUT, RES and PY to be set.
BUILD=$ROOT/build-release
B=$BUILD/src/brine
QUIET_WAIT=${BENCH_QUIET_WAIT:-300}

log() { printf '\n== %s\n' "$*"; }

# The records in RES name the repo's and OUTDIR's files relative to them, not by this machine's
# paths (the exports keep the commands as run: hyperfine JSON, /usr/bin/time logs, summaries).
bench_relative_paths() {
  grep -rlIF -e "$ROOT" -e "$OUT" "$RES" | while IFS= read -r f; do
    sed -i "s|$ROOT/||g; s|$OUT/||g; s|$ROOT|.|g; s|$OUT|OUTDIR|g" "$f"
  done
}

need_pkg() {  # need_pkg COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 (for $1)"
  if [ "$(id -u)" -ne 0 ]; then echo "bench: $1 is missing; apt-get install $2" >&2; exit 2; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

bench_tools() {
  need_pkg hyperfine hyperfine
  [ -x /usr/bin/time ] || need_pkg /usr/bin/time time
  command -v fincore >/dev/null 2>&1 || need_pkg fincore util-linux
  $PY -c 'import torch, numpy' || { echo "bench: $PY needs torch and numpy" >&2; exit 2; }
}

bench_build() {  # the release tree, tests off (the benchmark binary must not depend on them)
  if [ ! -f "$BUILD/build.ninja" ]; then
    log "meson setup $BUILD (release)"
    meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=disabled
  fi
  log "ninja -C $BUILD"
  ninja -C "$BUILD"
  [ -x "$B" ] || { echo "bench: no $B" >&2; exit 2; }
}

bench_inputs() {  # bench_inputs [NAME...]: generate (or keep) the inputs in OUT
  log "inputs in $OUT"
  if [ $# -gt 0 ]; then
    $PY "$HERE/make_inputs.py" "$OUT" --only "$@"
  else
    $PY "$HERE/make_inputs.py" "$OUT"
  fi
}

cpu_busy_pct() {  # busy share of all CPUs over one second, from /proc/stat
  local _c u n s i w q sq st t1 i1 t2 i2
  read -r _c u n s i w q sq st _ </proc/stat; t1=$((u + n + s + i + w + q + sq + st)); i1=$((i + w))
  sleep 1
  read -r _c u n s i w q sq st _ </proc/stat; t2=$((u + n + s + i + w + q + sq + st)); i2=$((i + w))
  echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}
wait_quiet() {  # others may be compiling on this machine: wait (bounded) for idle CPUs, and log it
  local group=$1 waited=0 busy
  busy=$(cpu_busy_pct)
  while [ "$busy" -gt 10 ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    sleep 4; waited=$((waited + 5)); busy=$(cpu_busy_pct)
  done
  echo "$group: cpu busy ${busy}% before start (waited ${waited}s); loadavg $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES/load.txt"
}
hfr() {  # hfr GROUP ROUNDS WARMUP hyperfine-args...: the commands interleaved, A B A B ...
  # ROUNDS hyperfine runs of one run per command (WARMUP warm-up runs in the first only), merged
  # by merge_rounds.py into $RES/GROUP.json. For ratios: hyperfine alone runs all of A before B,
  # and on a shared host a slow minute then lands on one side only.
  local group=$1 rounds=$2 warmup=$3 i
  shift 3
  log "hyperfine, $rounds interleaved rounds: $group"
  wait_quiet "$group"
  rm -rf "$RES/$group.rounds"
  mkdir -p "$RES/$group.rounds"
  for i in $(seq -w 1 "$rounds"); do
    hyperfine -N --style none --runs 1 --warmup "$([ "$i" -eq 1 ] && echo "$warmup" || echo 0)" \
      --export-json "$RES/$group.rounds/$i.json" "$@" >/dev/null
  done
  $PY "$HERE/merge_rounds.py" "$RES/$group.rounds" "$RES/$group.json" | tee "$RES/$group.txt"
  rm -r "$RES/$group.rounds"  # every run's time is in the merged export
  echo "$group: loadavg after $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES/load.txt"
}

hf() {  # hf GROUP hyperfine-args...   (always -N: no intermediate shell)
  local group=$1; shift
  log "hyperfine: $group"
  wait_quiet "$group"
  hyperfine -N --style basic --export-json "$RES/$group.json" --export-markdown "$RES/$group.md" "$@" \
    2>&1 | tee "$RES/$group.txt"
  echo "$group: loadavg after $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$RES/load.txt"
}
