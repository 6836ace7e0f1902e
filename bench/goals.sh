#!/usr/bin/env bash
# brine's performance goals (issue 13), measured in one run, each ratio printed with its goal
# and MET / NOT MET:
#
#   bash bench/goals.sh [OUTDIR]          (OUTDIR caches the inputs; default /tmp/brine-bench)
#   PICKLESCAN_SRC=/path/to/picklescan-checkout bash bench/goals.sh
#
# Environment: PICKLESCAN_SRC (a checkout of mmaitre314/picklescan; without it that ratio is
# skipped), BENCH_QUIET_WAIT=N (wait up to N s for idle CPUs before each group, default 300),
# BENCH_RUNS=N (runs of the fast commands, default 20).
#
# Every number is a hyperfine median (process start included, warm page cache) or a peak RSS
# from /usr/bin/time -v. The two sides of each ratio run interleaved (bench/common.sh hfr).
# Raw exports go to bench/results-goals/; the table goes to stdout and
# to bench/results-goals/goals.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$(mkdir -p "${1:-/tmp/brine-bench}" && cd "${1:-/tmp/brine-bench}" && pwd)
RES=$HERE/results-goals
PY=/usr/bin/python3
RUNS=${BENCH_RUNS:-20}
case "$OUT" in *" "*) echo "goals.sh: OUTDIR must not contain spaces (hyperfine -N splits commands on them)" >&2; exit 2;; esac

# shellcheck source=bench/common.sh
. "$HERE/common.sh"
bench_tools
bench_build
D=$BUILD/bench/decode_only
[ -x "$D" ] || { echo "goals.sh: no $D" >&2; exit 2; }

rm -rf "$RES"
mkdir -p "$RES/rss"
bench_inputs small_1kb.pkl ints_strs_p4.pkl ckpt_1gb_1024.pt tree | tee "$RES/inputs.txt"
cd "$OUT"
# The zip's data.pkl alone, as a file: what scanning the archive is compared with.
$PY - <<'PYEOF'
import zipfile
with zipfile.ZipFile("ckpt_1gb_1024.pt") as z:
    name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    data = z.read(name)
with open("ckpt_1gb_1024.data.pkl.tmp", "wb") as f:
    f.write(data)
import os
os.replace("ckpt_1gb_1024.data.pkl.tmp", "ckpt_1gb_1024.data.pkl")
PYEOF
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc); kernel: $(uname -sr); brine: $($B --version)"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "decode_only ints_strs_p4.pkl: $($D ints_strs_p4.pkl)"
  du -b small_1kb.pkl ints_strs_p4.pkl ckpt_1gb_1024.pt ckpt_1gb_1024.data.pkl
  printf 'tree: %s files, %s bytes\n' "$(find tree -type f | wc -l)" "$(du -sb tree | cut -f1)"
} | tee "$RES/machine.txt"
# Every input must scan clean before anything is timed (hyperfine fails on exit 1/2 anyway).
"$B" scan -q small_1kb.pkl ints_strs_p4.pkl ckpt_1gb_1024.pt ckpt_1gb_1024.data.pkl tree >/dev/null

hf startup --warmup 10 --runs $((RUNS * 5)) \
  -n "brine scan 1KB pickle" "$B scan small_1kb.pkl"

hfr pickle "$RUNS" 2 \
  -n "brine scan 2M-op p4" "$B scan ints_strs_p4.pkl" \
  -n "decode-only 2M-op p4" "$D ints_strs_p4.pkl"

hfr zip "$RUNS" 3 \
  -n "brine scan 1GB zip (1024 tensors)" "$B scan ckpt_1gb_1024.pt" \
  -n "brine scan its data.pkl alone" "$B scan ckpt_1gb_1024.data.pkl"

# Both sides write a fresh file and have it on disk when they return: brine fsyncs before its
# atomic rename; `sync FILE` fsyncs the copy.
hfr sanitize 5 1 --prepare "rm -f $OUT/out.safetensors $OUT/out.copy" \
  -n "brine sanitize 1GB zip -> safetensors" "$B sanitize ckpt_1gb_1024.pt -o $OUT/out.safetensors" \
  -n "cp + sync of the copy" "sh -c 'cp ckpt_1gb_1024.pt $OUT/out.copy && sync $OUT/out.copy'"

hfr tree 10 1 \
  -n "brine scan -j 1 tree" "$B scan -j 1 tree" \
  -n "brine scan -j 2 tree" "$B scan -j 2 tree"

if [ -n "${PICKLESCAN_SRC:-}" ] && [ -f "$PICKLESCAN_SRC/src/picklescan/__main__.py" ]; then
  # Not interleaved with brine: right after a picklescan run (Python, 311 MiB peak RSS) brine's
  # scan of the same pickle took 50-94 ms instead of ~25-40 (fresh pages are slow to come back on
  # this VM, finding 10), which would measure the alternation, not brine.
  hf picklescan --warmup 1 --runs 3 \
    -n "picklescan 2M-op p4" "env PYTHONPATH=$PICKLESCAN_SRC/src $PY -m picklescan --path ints_strs_p4.pkl"
else
  echo "picklescan: not given" | tee "$RES/picklescan.skipped"
fi

log "peak RSS (/usr/bin/time -v)"
rss() {  # rss NAME COMMAND...
  local name=$1; shift
  /usr/bin/time -v -o "$RES/rss/$name.txt" "$@" >/dev/null
  grep -E 'Maximum resident' "$RES/rss/$name.txt" | sed "s/^/$name: /"
}
rss scan-2M-op-p4 "$B" scan ints_strs_p4.pkl
rss scan-1GB-zip "$B" scan ckpt_1gb_1024.pt
rm -f "$OUT/out.safetensors"
rss sanitize-1GB-zip "$B" sanitize ckpt_1gb_1024.pt -o "$OUT/out.safetensors"
rm -f "$OUT"/out.safetensors "$OUT"/out.copy
echo "loadavg at end: $(cat /proc/loadavg)" | tee -a "$RES/machine.txt"

log "goals"
$PY "$HERE/goals.py" "$RES" | tee "$RES/goals.md"
bench_relative_paths
