#!/bin/sh
# A long loader-oracle campaign: tests/loader_oracle.py over fresh seeds of the structure-aware
# generator (tests/oracle_gen.py), one run of COUNT variants per seed, until MINUTES have passed.
# Every run's summary line goes to LOGDIR/campaign.log with its seed and UTC times; the smallest
# failing input of every (check, class) is kept under LOGDIR/cases-<seed>/.
#
#   fuzz/oracle_campaign.sh BRINE MINUTES FIRST_SEED LOGDIR [COUNT]
#
# Run it from the repository root (or a worktree of the commit being judged) with a copy of the
# brine binary, so that rebuilding the work tree does not change the program mid-campaign.
set -u
brine=$1 minutes=$2 seed=$3 logdir=$4 count=${5:-3000}
mkdir -p "$logdir"
end=$(( $(date +%s) + minutes * 60 ))
log="$logdir/campaign.log"
echo "campaign start $(date -u +%FT%TZ) brine=$brine commit=$(git rev-parse --short HEAD 2>/dev/null) count=$count" >>"$log"
while [ "$(date +%s)" -lt "$end" ]; do
  start=$(date -u +%T)
  out="$logdir/run-$seed.txt"
  /usr/bin/python3 tests/loader_oracle.py "$brine" . --seed "$seed" --count "$count" --no-corpus --no-fresh \
      --save-cases "$logdir/cases-$seed" >"$out" 2>&1
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
  notes=$(grep -c '^NOTE ' "$out")
  echo "seed $seed $start-$(date -u +%T) ${summary:-no summary (see $out)}; $notes NOTE" >>"$log"
  seed=$((seed + 1))
done
echo "campaign end $(date -u +%FT%TZ)" >>"$log"
