#!/usr/bin/env bash
# brine benchmarks: brine vs the alternatives on this machine, side by side in one run.
#
#   bash bench/run.sh [OUTDIR]          (OUTDIR caches the inputs; default /tmp/brine-bench)
#
# Environment:
#   PICKLESCAN_SRC=/path/to/picklescan-checkout   also time `python3 -m picklescan --path FILE`
#                                                 (PYTHONPATH=$PICKLESCAN_SRC/src; nothing is vendored)
#   BENCH_COLD=0         skip the cold-page-cache group (it needs root to write /proc/sys/vm/drop_caches)
#   BENCH_QUIET_WAIT=N   before each group, wait up to N seconds (default 300) for the CPUs to be idle
#   BENCH_FAST_RUNS=N    runs of the fast commands (default 30)
#
# Writes bench/results/: hyperfine JSON + markdown exports per group, /usr/bin/time -v logs,
# machine.txt, inputs.txt, sanity.txt, load.txt, and summary.md (ratios; made by summarize.py).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=$(mkdir -p "${1:-/tmp/brine-bench}" && cd "${1:-/tmp/brine-bench}" && pwd)
RES=$HERE/results
PY=/usr/bin/python3
FAST_RUNS=${BENCH_FAST_RUNS:-30}

case "$OUT" in *" "*) echo "run.sh: OUTDIR must not contain spaces (hyperfine -N splits commands on them)" >&2; exit 2;; esac

# shellcheck source=bench/common.sh
. "$HERE/common.sh"
bench_tools
bench_build

rm -rf "$RES"
mkdir -p "$RES/rss"

# ---------------------------------------------------------------- inputs
log "inputs in $OUT"
$PY "$HERE/make_inputs.py" "$OUT" | tee "$RES/inputs.txt"
cd "$OUT"
du -b ckpt_1mb.pt ckpt_100mb.pt ckpt_1gb.pt model_1gb.pt opcodes_p2.pkl opcodes_p4.pkl >>"$RES/inputs.txt"
printf 'tree: %s files, %s bytes\n' "$(find tree -type f | wc -l)" "$(du -sb tree | cut -f1)" >>"$RES/inputs.txt"

# ---------------------------------------------------------------- machine
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "cpu flags (sha_ni, avx2, avx512f): $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'sha_ni|avx2|avx512f' | tr '\n' ' ')"
  echo "mem: $(grep MemTotal /proc/meminfo | sed 's/  */ /g')"
  echo "kernel: $(uname -sr)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "compiler: $(c++ --version | head -1)"
  echo "brine: $($B --version) ($B, meson buildtype=release)"
  echo "hyperfine: $(hyperfine --version)"
  echo "python: $($PY -c 'import sys, torch, numpy; print(sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__)')"
  echo "loadavg at start: $(cat /proc/loadavg)"
} | tee "$RES/machine.txt"

# ---------------------------------------------------------------- sanity
can_drop() { [ "${BENCH_COLD:-1}" != 0 ] && [ "$(id -u)" -eq 0 ] && sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; }
log "sanity: every input scans clean; the 1 GB checkpoints are not read"
{
  echo "\$ brine scan ckpt_1mb.pt ckpt_1gb.pt model_1gb.pt opcodes_p2.pkl opcodes_p4.pkl"
  "$B" scan ckpt_1mb.pt ckpt_1gb.pt model_1gb.pt opcodes_p2.pkl opcodes_p4.pkl
  echo "\$ brine scan -q tree   (lists only files that are not clean)"
  "$B" scan -q tree
  for f in ckpt_1gb.pt model_1gb.pt; do
    if can_drop; then
      echo "\$ echo 3 > /proc/sys/vm/drop_caches; fincore $f; /usr/bin/time -v brine scan $f; fincore $f"
      fincore "$f"
      /usr/bin/time -v "$B" scan "$f" 2>&1 | grep -E 'CLEAN|clean|Elapsed|Maximum resident|page faults|File system inputs'
      fincore "$f"
    else
      echo "\$ /usr/bin/time -v brine scan $f   (page cache not dropped: no root or BENCH_COLD=0)"
      /usr/bin/time -v "$B" scan "$f" 2>&1 | grep -E 'CLEAN|clean|Elapsed|Maximum resident|page faults'
    fi
  done
} 2>&1 | tee "$RES/sanity.txt"
# Fail before measuring if anything is not clean (exit 1/2) -- hyperfine would fail too.
"$B" scan -q ckpt_1mb.pt ckpt_1gb.pt model_1gb.pt opcodes_p2.pkl opcodes_p4.pkl tree gbtree >/dev/null

# ---------------------------------------------------------------- helpers
G="$PY $HERE/py_genops_scan.py"
# hf GROUP ...: common.sh

TL="$PY -c \"import sys, torch; torch.load(sys.argv[1], weights_only=True)\""

# ---------------------------------------------------------------- 1. checkpoints, fast commands
hf checkpoint --warmup 5 --runs "$FAST_RUNS" \
  -n "brine --version (process start only)" "$B --version" \
  -n "brine scan 1MB" "$B scan ckpt_1mb.pt" \
  -n "brine scan 1GB" "$B scan ckpt_1gb.pt" \
  -n "brine scan model-1GB" "$B scan model_1gb.pt" \
  -n "brine json 1MB (sha256)" "$B scan --format json ckpt_1mb.pt" \
  -n "brine json --no-hash 1GB" "$B scan --format json --no-hash ckpt_1gb.pt" \
  -n "python3 start + import zipfile, pickletools" "$PY -c \"import zipfile, pickletools\"" \
  -n "genops 1MB" "$G ckpt_1mb.pt" \
  -n "genops 1GB" "$G ckpt_1gb.pt" \
  -n "genops model-1GB" "$G model_1gb.pt"

# ---------------------------------------------------------------- 1b. the same, interleaved
# hyperfine runs one command's runs back to back; interleaving checks the 1 MB vs 1 GB ratio
# against background load that drifts during the group.
log "interleaved rounds: brine and genops, 1 MB vs 1 GB"
wait_quiet interleaved
$PY "$HERE/interleave.py" --rounds 60 --json "$RES/interleaved.json" \
  "interleaved: brine --version=$B --version" \
  "interleaved: brine scan 1MB=$B scan ckpt_1mb.pt" \
  "interleaved: brine scan 1GB=$B scan ckpt_1gb.pt" \
  "interleaved: brine scan model-1GB=$B scan model_1gb.pt" \
  "interleaved: brine json --no-hash 1GB=$B scan --format json --no-hash ckpt_1gb.pt" \
  "interleaved: genops 1MB=$G ckpt_1mb.pt" \
  "interleaved: genops 1GB=$G ckpt_1gb.pt" \
  "interleaved: genops model-1GB=$G model_1gb.pt" | tee "$RES/interleaved.txt"

# ---------------------------------------------------------------- 2. checkpoints, slow commands
hf checkpoint_slow --warmup 1 --runs 3 \
  -n "brine json 1GB (sha256)" "$B scan --format json ckpt_1gb.pt" \
  -n "brine json model-1GB (sha256)" "$B scan --format json model_1gb.pt" \
  -n "sha256sum 1GB (coreutils)" "sha256sum ckpt_1gb.pt" \
  -n "python3 -c 'import torch'" "$PY -c \"import torch\"" \
  -n "torch.load weights_only 1MB" "$TL ckpt_1mb.pt" \
  -n "torch.load weights_only 1GB" "$TL ckpt_1gb.pt" \
  -n "torch.load weights_only model-1GB" "$TL model_1gb.pt"

# ---------------------------------------------------------------- 3. ~2M-opcode raw pickles
hf opcodes --warmup 1 --runs 10 \
  -n "brine scan 2M-op p2" "$B scan opcodes_p2.pkl" \
  -n "brine scan 2M-op p4" "$B scan opcodes_p4.pkl" \
  -n "genops 2M-op p2" "$G opcodes_p2.pkl" \
  -n "genops 2M-op p4" "$G opcodes_p4.pkl"

# ---------------------------------------------------------------- 4. 10,000 small files
hf tree --warmup 1 --runs 5 \
  -n "brine scan -j 1 tree" "$B scan -j 1 tree" \
  -n "brine scan -j 2 tree" "$B scan -j 2 tree" \
  -n "genops tree" "$G tree"

# ---------------------------------------------------------------- 4b. several GB of checkpoints
hf gbtree --warmup 1 --runs 5 \
  -n "brine scan -j 1 gbtree" "$B scan -j 1 gbtree" \
  -n "brine scan -j 2 gbtree" "$B scan -j 2 gbtree" \
  -n "genops gbtree" "$G gbtree"

# ---------------------------------------------------------------- 5. cold page cache
if can_drop; then
  # drop_caches also evicts the programs and libraries (brine's, python's, torch's): a cold start.
  hf cold --runs 3 --prepare "/bin/sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'" \
    -n "cold: brine scan 1MB" "$B scan ckpt_1mb.pt" \
    -n "cold: brine scan 1GB" "$B scan ckpt_1gb.pt" \
    -n "cold: genops 1GB" "$G ckpt_1gb.pt" \
    -n "cold: torch.load weights_only 1GB" "$TL ckpt_1gb.pt"
else
  log "cold page cache group skipped (needs root and BENCH_COLD!=0)"
fi

# ---------------------------------------------------------------- 6. picklescan (optional)
if [ -n "${PICKLESCAN_SRC:-}" ]; then
  if [ -f "$PICKLESCAN_SRC/src/picklescan/__main__.py" ]; then
    PS="env PYTHONPATH=$PICKLESCAN_SRC/src $PY -m picklescan --path"
    hf picklescan --warmup 1 --runs 3 \
      -n "picklescan 1MB" "$PS ckpt_1mb.pt" \
      -n "picklescan 1GB" "$PS ckpt_1gb.pt" \
      -n "picklescan model-1GB" "$PS model_1gb.pt" \
      -n "picklescan 2M-op p2" "$PS opcodes_p2.pkl" \
      -n "picklescan 2M-op p4" "$PS opcodes_p4.pkl" \
      -n "picklescan tree" "$PS tree"
  else
    echo "PICKLESCAN_SRC=$PICKLESCAN_SRC has no src/picklescan/__main__.py; skipped" | tee "$RES/picklescan.skipped"
  fi
fi

# ---------------------------------------------------------------- 7. sanitize
# Throughput against copying the same file: cp (which may use copy_file_range) and dd with fsync
# (brine fsyncs its output before the atomic rename). The Python alternative loads with torch.
hf sanitize --warmup 1 --runs 5 \
  -n "cp 1GB" "cp ckpt_1gb.pt $OUT/out.copy" \
  -n "dd 1GB conv=fsync" "dd if=ckpt_1gb.pt of=$OUT/out.copy bs=16M conv=fsync status=none" \
  -n "brine sanitize 1GB -> safetensors" "$B sanitize ckpt_1gb.pt -o $OUT/out.safetensors --force" \
  -n "brine sanitize 1GB -> onnx" "$B sanitize ckpt_1gb.pt -o $OUT/out.onnx --force" \
  -n "brine sanitize model-1GB -> safetensors" "$B sanitize model_1gb.pt -o $OUT/out.safetensors --force" \
  -n "brine sanitize 1GB -> safetensors --verify" "$B sanitize ckpt_1gb.pt -o $OUT/out.safetensors --force --verify" \
  -n "torch.load + safetensors layout 1GB (python)" "$PY $HERE/py_convert.py safetensors ckpt_1gb.pt $OUT/out.py.safetensors" \
  -n "torch.load + onnx.save 1GB (python)" "$PY $HERE/py_convert.py onnx ckpt_1gb.pt $OUT/out.py.onnx"
rm -f "$OUT"/out.copy "$OUT"/out.*safetensors "$OUT"/out.*onnx

# ---------------------------------------------------------------- 8. peak RSS
log "peak RSS (/usr/bin/time -v)"
rss() {  # rss NAME COMMAND...
  local name=$1; shift
  /usr/bin/time -v -o "$RES/rss/$name.txt" "$@" >/dev/null
  grep -E 'Maximum resident|Elapsed' "$RES/rss/$name.txt" | sed "s/^/$name: /"
}
rss brine-scan-1MB "$B" scan ckpt_1mb.pt
rss brine-scan-1GB "$B" scan ckpt_1gb.pt
rss brine-scan-model-1GB "$B" scan model_1gb.pt
rss brine-json-1GB "$B" scan --format json ckpt_1gb.pt
rss brine-scan-2M-op-p2 "$B" scan opcodes_p2.pkl
rss brine-scan-2M-op-p4 "$B" scan opcodes_p4.pkl
rss brine-scan-j2-tree "$B" scan -j 2 tree
rss genops-1GB $PY "$HERE/py_genops_scan.py" ckpt_1gb.pt
rss genops-2M-op-p4 $PY "$HERE/py_genops_scan.py" opcodes_p4.pkl
rss torch.load-1GB $PY -c "import sys, torch; torch.load(sys.argv[1], weights_only=True)" ckpt_1gb.pt
# Where brine json's RSS comes from: file-backed pages of the mmap it hashes, or heap?
$PY "$HERE/peak_mem.py" "$B" scan --format json ckpt_1gb.pt | tee "$RES/rss/brine-json-1GB.status.txt"

# sanitize: peak memory must not grow with the model (RssAnon: heap; RssFile: mapped pages).
for spec in "100MB ckpt_100mb.pt safetensors" "1GB ckpt_1gb.pt safetensors" "1GB ckpt_1gb.pt onnx" "model-1GB model_1gb.pt onnx"; do
  set -- $spec
  rss "brine-sanitize-$1-$3" "$B" sanitize "$2" -o "$OUT/out.$3" --force
  $PY "$HERE/peak_mem.py" "$B" sanitize "$2" -o "$OUT/out.$3" --force | tee "$RES/rss/brine-sanitize-$1-$3.status.txt"
done
rss py-convert-100MB-safetensors $PY "$HERE/py_convert.py" safetensors ckpt_100mb.pt "$OUT/out.py.safetensors"
rss py-convert-1GB-safetensors $PY "$HERE/py_convert.py" safetensors ckpt_1gb.pt "$OUT/out.py.safetensors"
rm -f "$OUT"/out.*

echo "loadavg at end: $(cat /proc/loadavg)" | tee -a "$RES/machine.txt"

# ---------------------------------------------------------------- summary
$PY "$HERE/summarize.py" "$RES" "$OUT" | tee "$RES/summary.md"
bench_relative_paths
log "done: $RES"
