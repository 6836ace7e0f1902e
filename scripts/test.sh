#!/usr/bin/env bash
# Runs every test suite (unit, malformed, corpus, differential, e2e) after the same set-up, and
# ends with one line "N passed, N failed" summed over all suites. Skipped tests count as failed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
meson_rc=$?
/usr/bin/python3 scripts/count_tests.py build/meson-logs/testlog.json
count_rc=$?
[ $meson_rc -ne 0 ] && exit $meson_rc
exit $count_rc
