#!/usr/bin/python3
"""Split a command's peak RSS into anonymous memory (heap, stacks) and file-backed pages.

    /usr/bin/python3 bench/peak_mem.py COMMAND [ARG...]

getrusage/`time -v` report one max RSS, which counts the pages of an mmap'd input file that the
process touched (page-cache pages, shared and reclaimable) the same as its heap. This polls
/proc/PID/status every millisecond and prints the largest RssAnon, RssFile and VmRSS seen
(polling can miss a short spike; VmHWM is the kernel's exact peak of VmRSS).
"""
import subprocess
import sys
import time

FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    peak = dict.fromkeys(FIELDS, 0)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    path = f"/proc/{p.pid}/status"
    while p.poll() is None:
        try:
            with open(path) as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in peak:
                        peak[key] = max(peak[key], int(rest.split()[0]))
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.001)
    elapsed = time.monotonic() - t0
    print(f"$ {' '.join(argv)}")
    print(f"exit {p.returncode}, {elapsed:.2f} s; peaks seen (KiB): " +
          ", ".join(f"{k} {v:,}" for k, v in peak.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
