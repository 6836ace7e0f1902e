#!/usr/bin/env bash
# Runs every test suite after the same set-up as scripts/run.sh, then the unit, corpus,
# fuzz-replay, inspect-vs-CPython and serve suites and a sampled malformed pass (every 32nd cut and flip
# point; the full pass takes over 8 minutes there) again in an AddressSanitizer + UBSan build,
# and ends with one line "N passed, N failed" summed over all of them. Skipped tests count as failed.
#   BRINE_NO_SANITIZER_BUILD=1 scripts/test.sh    skips the sanitizer build (local iterations only)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
meson_rc=$?
logs=(build/meson-logs/testlog.json)

asan_rc=0
if [ "${BRINE_NO_SANITIZER_BUILD:-0}" != 1 ]; then
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false >/dev/null || exit 1
  fi
  ninja -C build-asan >/dev/null || exit 1
  # Any UBSan report fails the test that caused it; leaks are reported by ASan at exit.
  BRINE_SANITIZER_BUILD=1 BRINE_MALFORMED_STRIDE=32 ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite corpus --suite fuzz \
      --suite inspect --suite malformed --suite serve
  asan_rc=$?
  logs+=(build-asan/meson-logs/testlog.json)
fi

/usr/bin/python3 scripts/count_tests.py "${logs[@]}"
count_rc=$?
[ $meson_rc -ne 0 ] && exit $meson_rc
[ $asan_rc -ne 0 ] && exit $asan_rc
exit $count_rc
