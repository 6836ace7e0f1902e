#!/usr/bin/python3
"""brine-dask: scan a list of files on a Dask distributed cluster, shard by shard.

    brine_dask.py LIST [--workers N | --scheduler ADDR] [--brine PATH] [--shard-size K]
                       [--retries R] [--fail-on unapproved|malicious] [-- BRINE-SCAN-ARGS...]
    brine_dask.py --merge [--fail-on unapproved|malicious] SHARD.jsonl...

LIST holds paths as `brine scan --files-from` reads them (NUL-separated if it holds a NUL, else one
per line; `-` reads stdin). The list is cut into shards of K consecutive entries; each shard is one
Dask task that runs `brine scan BRINE-SCAN-ARGS --format jsonl --files-from -` on a worker (the map
step) and returns its JSONL. The driver writes brine's file lines unchanged, in LIST order, then one
summary line of the same shape as brine's (docs/scaling.md says exactly how it is computed).

A shard whose attempt fails (the worker died, brine died or timed out, its output is incomplete) is
resubmitted, at most R times; a shard that still fails becomes one `error` line per entry
(rule `io:shard-failed`), never a silent gap. Exit status as brine scan's: 0 all clean, 1 findings
(see --fail-on), 2 an error verdict, a failed shard, or bad usage.

Paths must resolve on the workers: relative paths are taken against the driver's working directory,
which the workers must also have (a LocalCluster does). Needs Debian's python3-distributed.

--merge joins the JSONL of shards scanned elsewhere (a Kubernetes Indexed Job: docs/scaling.md) into
one report, without Dask.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid

PROG = "brine-dask"
VERDICTS = ("clean", "unapproved", "malicious", "error")
# The driver owns these brine scan options; passing them through would break the merge.
OWNED_OPTIONS = ("-f", "--format", "-o", "--output", "--files-from", "--emit-safe-globals")


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Worker side: these two functions are shipped to the workers (cloudpickle, by value).

def run_shard(brine, scan_args, cwd, entries, timeout):
    """One brine scan of one shard. Returns (exit status, stdout, last 2000 bytes of stderr)."""
    cmd = [brine, "scan", *scan_args, "--format", "jsonl", "--files-from", "-"]
    listing = b"".join(entry + b"\0" for entry in entries)  # NUL-separated: any byte but NUL is a path byte
    done = subprocess.run(cmd, input=listing, capture_output=True, cwd=cwd, timeout=timeout)
    return done.returncode, done.stdout, done.stderr[-2000:]


def run_probe(brine, scan_args, cwd):
    """brine scan of /dev/null with the user's arguments: shows they are accepted, and the version."""
    cmd = [brine, "scan", *scan_args, "--format", "jsonl", "/dev/null"]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, cwd=cwd, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        return None, b"", f"{type(e).__name__}: {e}".encode()
    return done.returncode, done.stdout, done.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Driver side.

class ShardError(Exception):
    """An attempt whose result cannot be trusted (it is retried like a dead worker)."""


def read_list(source):
    """The entries of LIST exactly as `brine scan --files-from` splits them (src/cli/main.cpp)."""
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(source, "rb") as f:
            data = f.read()
    sep = b"\0" if b"\0" in data else b"\n"
    entries = []
    for entry in data.split(sep):
        if sep == b"\n" and entry.endswith(b"\r"):
            entry = entry[:-1]
        if entry:
            entries.append(entry)
    return entries


def shown(entry):
    """An entry as brine's JSON shows it: bytes that are not UTF-8 become U+FFFD."""
    return entry.decode("utf-8", "replace")


def dumps(value):
    """JSON as brine writes it: sorted keys, no spaces, non-ASCII kept, control characters escaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def one_line(text, limit=300):
    """Text from a subprocess, fit for one log line: whitespace runs become one space, other
    characters that are not printable (escape sequences, bidi controls) are shown as \\x.. escapes."""
    text = re.sub(r"\s+", " ", text).strip()
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def stderr_tail(err):
    """': <brine's last stderr text, on one line>', or nothing when it wrote none."""
    text = one_line(err.decode("utf-8", "replace"))
    return f": {text}" if text else ""


def read_report(out, context=""):
    """A complete `brine scan --format jsonl` output: (raw file lines, file objects, summary line).
    Anything but a complete, self-consistent report raises ShardError (context ends its message)."""
    if not out.endswith(b"\n"):
        raise ShardError(f"brine's output is cut short{context}")
    lines = out[:-1].split(b"\n")
    try:
        objects = [json.loads(line) for line in lines]
    except ValueError as e:
        raise ShardError(f"a line is not JSON: {e}") from None
    if not objects or not isinstance(objects[-1], dict) or "summary" not in objects[-1]:
        raise ShardError(f"no summary line{context}")
    last, files = objects[-1], objects[:-1]
    if not all(isinstance(f, dict) and isinstance(f.get("path"), str) and f.get("verdict") in VERDICTS
               for f in files):
        raise ShardError("a file line has no path or verdict")
    summary, skipped = last["summary"], last.get("skipped", [])
    counts = {v: sum(f["verdict"] == v for f in files) for v in VERDICTS}
    if (summary.get("files") != len(files) or summary.get("skipped") != len(skipped)
            or any(summary.get(v) != counts[v] for v in VERDICTS)
            or summary.get("suppressed") != sum(f.get("suppressed", 0) for f in files)):
        raise ShardError("the summary line does not match the file lines")
    return lines[:-1], files, last


class Shard:
    def __init__(self, index, first, entries):
        self.index = index
        self.first = first  # position of entries[0] in LIST
        self.entries = entries
        self.attempts = 0

    def describe(self):
        return f"shard {self.index} (entries {self.first}-{self.first + len(self.entries) - 1})"

    def order_key(self, path):
        """Sort key placing a reported path at the entry that produced it: the entry itself, or the
        directory entry whose walk found it; a path listed twice is reported twice, so its n-th line
        goes to its n-th entry. Paths no entry explains (none expected) go last, by path."""
        candidates = [i for i, e in enumerate(self._shown) if e == path or path.startswith(e.rstrip("/") + "/")]
        seen = self._seen.get(path, 0)
        self._seen[path] = seen + 1
        position = candidates[min(seen, len(candidates) - 1)] if candidates else len(self.entries)
        return position, path

    def parse(self, status, out, err):
        """brine's JSONL for this shard: file lines (raw bytes, in entry order), skipped list, version.
        Anything but a complete, self-consistent report raises ShardError."""
        if status not in (0, 1, 2):
            what = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
            raise ShardError(f"brine {what}{stderr_tail(err)}")
        lines, files, last = read_report(out, f" (exit {status}){stderr_tail(err)}")
        skipped = last.get("skipped", [])
        self._shown = [shown(e) for e in self.entries]
        self._seen = {}
        keyed = sorted(zip((self.order_key(f["path"]) for f in files), range(len(files))))
        self._seen = {}
        skipped = [s for _, s in sorted(((self.order_key(s["path"]), i), s) for i, s in enumerate(skipped))]
        file_lines = [(lines[i], files[i]) for _, i in keyed]
        return file_lines, skipped, last.get("brine_version"), status

    def error_lines(self, reason):
        """The shard could not be scanned: one `error` line per entry, so no file goes unreported."""
        message = f"not scanned: {self.describe()} failed {self.attempts} times (last: {reason})"
        lines = []
        for entry in self.entries:
            obj = {"path": shown(entry), "size": 0, "sha256": None, "container": "unreadable",
                   "verdict": "error", "pickles": 0, "opcodes": 0, "suppressed": 0, "members": [],
                   "findings": [{"rule": "io:shard-failed", "severity": "high", "impact": "error",
                                 "global": None, "use": None, "call": None, "member": None, "offset": 0,
                                 "opcode": None, "message": message, "count": 1}]}
            lines.append((dumps(obj).encode("utf-8", "replace"), obj))
        return lines


class OrderedWriter:
    """Writes each shard's lines once every earlier shard is written: LIST order, streamed."""

    def __init__(self, out):
        self.out = out
        self.pending = {}
        self.next = 0
        self.counts = dict.fromkeys(VERDICTS, 0)
        self.files = 0
        self.suppressed = 0
        self.skipped = []

    def add(self, index, file_lines, skipped):
        self.pending[index] = (file_lines, skipped)
        while self.next in self.pending:
            file_lines, skipped = self.pending.pop(self.next)
            for raw, obj in file_lines:
                self.out.write(raw + b"\n")
                self.counts[obj["verdict"]] += 1
                self.suppressed += obj.get("suppressed", 0)
                self.files += 1
            self.skipped.extend(skipped)
            self.next += 1
        self.out.flush()

    def summary_line(self, version, seconds):
        summary = {"files": self.files, **self.counts, "skipped": len(self.skipped),
                   "suppressed": self.suppressed, "seconds": round(seconds, 6)}
        return dumps({"brine_version": version, "skipped": self.skipped, "summary": summary}).encode()


def why(exc):
    from distributed.scheduler import KilledWorker
    if isinstance(exc, KilledWorker):
        return "the worker running it died"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"brine did not finish within {exc.timeout:g} s"
    if isinstance(exc, ShardError):
        return str(exc)
    return one_line(f"{type(exc).__name__}: {exc}")


def parse_args(argv):
    scan_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, scan_args = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(
        prog="brine_dask.py",
        usage="%(prog)s [options] LIST [-- BRINE-SCAN-ARGS...]\n       %(prog)s --merge [--fail-on V] SHARD.jsonl...",
        description="Scan the files listed in LIST with brine on a Dask cluster; prints brine scan's JSONL "
                    "(file lines in LIST order, then a summary line). Arguments after -- go to every brine scan.",
        epilog="Exit status: 0 all clean, 1 some file unapproved or malicious (--fail-on), 2 an error verdict, "
               "a shard that failed every attempt, or bad usage. --merge joins shard outputs scanned elsewhere "
               "(brine_dask.py --merge --help). docs/scaling.md.")
    p.add_argument("list", metavar="LIST", help="file of paths (NUL- or newline-separated); - reads stdin")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the LocalCluster started when no --scheduler is given "
                        "(default: the number of CPUs); each runs one brine at a time")
    p.add_argument("--scheduler", metavar="ADDR", help="use this running Dask scheduler (e.g. tcp://host:8786)")
    p.add_argument("--brine", default="brine", metavar="PATH",
                   help="brine on the workers (default: brine on their PATH; relative to the driver's directory)")
    p.add_argument("--shard-size", type=int, default=64, metavar="K", help="LIST entries per shard (default 64)")
    p.add_argument("--retries", type=int, default=3, metavar="R",
                   help="resubmissions of a failed shard before its entries become error lines (default 3)")
    p.add_argument("--shard-timeout", type=float, default=3600, metavar="S",
                   help="seconds one brine run of a shard may take before it is killed and retried (default 3600)")
    p.add_argument("--fail-on", choices=("unapproved", "malicious"), default=None,
                   help="passed to brine scan: the least severe verdict that makes the exit status 1")
    args = p.parse_args(argv)
    if args.shard_size < 1 or args.retries < 0 or args.shard_timeout <= 0:
        p.error("--shard-size must be at least 1, --retries at least 0, --shard-timeout positive")
    if args.workers is not None and (args.workers < 1 or args.scheduler):
        p.error("--workers must be at least 1, and applies only without --scheduler")
    for token in scan_args:
        name = token.split("=", 1)[0]
        if name in OWNED_OPTIONS or (re.match(r"-[a-zA-Z]*[fo]", token) and not token.startswith("--")):
            p.error(f"{token}: the driver sets brine's --format, --output and --files-from itself")
    if args.fail_on:
        scan_args = ["--fail-on", args.fail_on, *scan_args]
    return args, scan_args


def start_cluster(args):
    import dask
    from distributed import Client, LocalCluster
    if args.scheduler:
        client = Client(args.scheduler)
        if not client.scheduler_info()["workers"]:
            log("waiting for a worker to join the cluster")
            client.wait_for_workers(1, timeout=600)
        return client, None
    # A worker's death fails its tasks at once (KilledWorker) instead of the scheduler re-running them
    # silently: the driver does the resubmitting, counts it, and bounds it (--retries).
    dask.config.set({"distributed.scheduler.allowed-failures": 0})
    cluster = LocalCluster(n_workers=args.workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def probe(client, brine, scan_args, cwd):
    """Every current worker runs brine once: a missing brine or an argument brine rejects stops the
    run here instead of turning every shard into error lines. Returns the brine version, or None."""
    versions = set()
    for worker, (status, out, err) in client.run(run_probe, brine, scan_args, cwd).items():
        detail = one_line(err.decode("utf-8", "replace"))
        try:
            last = json.loads(out.splitlines()[-1]) if out.strip() else {}
        except ValueError:
            last = {}
        if status not in (0, 1, 2) or "summary" not in last:
            log(f"brine does not run on worker {worker}: {detail or f'exit status {status}'}")
            return None
        if last["summary"].get("files") != 1:
            log("the arguments after -- name paths to scan; put every path in LIST")
            return None
        versions.add(last.get("brine_version"))
    if len(versions) != 1:
        log(f"the workers run different brine versions: {sorted(map(str, versions))}")
        return None
    return versions.pop()


def merge(argv):
    """--merge: the outputs of separate `brine scan --format jsonl` runs (one per shard, e.g. the
    indices of a Kubernetes Indexed Job) as one report, in the order given."""
    p = argparse.ArgumentParser(
        prog="brine_dask.py --merge",
        description="Merge the JSONL outputs of several brine scan --format jsonl runs into one: their file lines "
                    "in the order given, then one summary line.",
        epilog="Exit status: 0 all clean, 1 some file unapproved or malicious (--fail-on), 2 an error verdict, "
               "or an output that is not a complete brine report (named on stderr; rerun that shard).")
    p.add_argument("reports", nargs="+", metavar="SHARD.jsonl")
    p.add_argument("--fail-on", choices=("unapproved", "malicious"), default="unapproved",
                   help="the least severe verdict that makes the exit status 1 (default unapproved)")
    args = p.parse_args(argv)
    writer = OrderedWriter(sys.stdout.buffer)
    versions, seconds, incomplete = set(), 0.0, 0
    for path in args.reports:
        try:
            with open(path, "rb") as f:
                lines, files, last = read_report(f.read())
        except (OSError, ShardError) as e:
            log(f"{path}: not a complete brine report ({e.strerror if isinstance(e, OSError) else e}); "
                "its files are left out: rerun that shard")
            incomplete += 1
            continue
        writer.add(writer.next, list(zip(lines, files)), last.get("skipped", []))
        versions.add(last.get("brine_version"))
        seconds += last["summary"].get("seconds", 0)
    if len(versions) > 1:
        log(f"the reports come from different brine versions: {sorted(map(str, versions))}")
    writer.out.write(writer.summary_line(sorted(map(str, versions))[0] if versions else "unknown", seconds) + b"\n")
    writer.out.flush()
    if incomplete or len(versions) != 1 or writer.counts["error"]:
        return 2
    if writer.counts["malicious"] or (args.fail_on == "unapproved" and writer.counts["unapproved"]):
        return 1
    return 0


def main(argv):
    if argv[:1] == ["--merge"]:
        return merge(argv[1:])
    args, scan_args = parse_args(argv)
    try:
        entries = read_list(args.list)
    except OSError as e:
        log(f"cannot read {args.list}: {e.strerror}")
        return 2
    if not entries:
        log("nothing to scan (LIST is empty)")
        return 2
    if b"-" in entries:
        log("LIST names '-' (standard input), which a shard cannot scan")
        return 2
    started = time.monotonic()
    cwd = os.getcwd()
    shards = [Shard(i, first, entries[first:first + args.shard_size])
              for i, first in enumerate(range(0, len(entries), args.shard_size))]

    from distributed import as_completed
    client, cluster = start_cluster(args)
    try:
        version = probe(client, args.brine, scan_args, cwd)
        if version is None:
            return 2
        token = uuid.uuid4().hex[:8]  # task keys unique on a shared scheduler
        running = {}  # task key -> shard

        def submit(shard):
            shard.attempts += 1
            future = client.submit(run_shard, args.brine, scan_args, cwd, shard.entries, args.shard_timeout,
                                   key=f"brine-shard-{shard.index}-attempt-{shard.attempts}-{token}", pure=False)
            running[future.key] = shard
            return future

        writer = OrderedWriter(sys.stdout.buffer)
        status = 0
        resubmitted = failed = 0
        versions = {version}
        pending = as_completed([submit(s) for s in shards])
        for future in pending:
            shard = running.pop(future.key)
            try:
                file_lines, skipped, shard_version, shard_status = shard.parse(*future.result())
            except Exception as e:  # noqa: BLE001 - every way an attempt can fail is retried the same way
                reason = why(e)
                if shard.attempts <= args.retries:
                    resubmitted += 1
                    log(f"{shard.describe()} attempt {shard.attempts} failed ({reason}); "
                        f"resubmitting (attempt {shard.attempts + 1} of {args.retries + 1})")
                    pending.add(submit(shard))
                else:
                    failed += 1
                    log(f"{shard.describe()} failed after {shard.attempts} attempts ({reason}); "
                        f"its {len(shard.entries)} entries are reported as errors")
                    writer.add(shard.index, shard.error_lines(reason), [])
                    status = 2
                continue
            finally:
                future.release()
            versions.add(shard_version)
            status = max(status, shard_status)
            writer.add(shard.index, file_lines, skipped)
        if len(versions) != 1:
            log(f"shards were scanned by different brine versions: {sorted(map(str, versions))}")
            status = 2
        writer.out.write(writer.summary_line(version, time.monotonic() - started) + b"\n")
        writer.out.flush()
        log(f"{len(shards)} shards of up to {args.shard_size} entries; {resubmitted} resubmissions; "
            f"{failed} shards failed; {time.monotonic() - started:.1f} s")
        return status
    finally:
        # Closing a client of a busy scheduler can leave an internal 0.1 s wait's TimeoutError
        # unretrieved, which asyncio prints at exit; everything is written by now.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, as brine does.
        sys.stderr.close()
        sys.exit(2)
