#!/usr/bin/env python3
"""contrib/dask/brine_dask.py against one `brine scan --format jsonl` of the same tree (docs/scaling.md).

    dask_test.py BRINE SOURCE_ROOT

The tree: the benign and malicious corpus samples (all but the one whose expected verdict is
`error`), 80 generated benign pickles and 3 text files, listed in a shuffled LIST (~300 entries).
Every brine run goes through a small wrapper (written below) that can stall or kill itself on a
chosen shard, so the failures land where the test wants them, not where timing puts them.

  A. The driver's own LocalCluster, 2 worker processes, shards of 20. The first attempt of shard 4
     stalls in the wrapper (shards 0-3 are done or running by then); the test then SIGKILLs the
     worker process running it (the wrapper's parent, a child of the driver). Asserts: the kill
     happened, the driver saw that worker die and resubmitted shard 4, and the output equals the
     single scan's: the same file lines byte for byte, every entry exactly once, in LIST order, the
     same summary (but `seconds`), the same exit status (1).
  B. A LocalCluster this test starts, used through --scheduler; brine is killed on every attempt of
     shard 2 (--retries 2). Asserts: 3 attempts, then shard 2's 20 entries are `error` lines
     (rule io:shard-failed), every other line equals the single scan's, exit status 2.
  C. The same cluster on the clean files only: identical output, exit status 0.
  D. --merge (no Dask) over the shards scanned one `brine scan` each: the single scan's lines and
     summary; with one shard's output cut in half: that shard named on stderr and left out, exit 2.

Exit 77 (skipped) when Debian's python3-distributed is not installed.
"""

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHARD = 20
SLOW_SHARD = 4
POISON_SHARD = 2
RUN_TIMEOUT = 90  # seconds for one driver run: far above the ~10 s it takes; it stops a hung run

WRAPPER = r'''#!/usr/bin/python3
# brine, with two faults a test can place: BRINE_TEST_POISON names a LIST entry whose shard makes
# brine die (SIGKILL) on every attempt; BRINE_TEST_SLOW names an entry whose shard stalls on its
# first attempt, after writing "PID PARENT-PID" to BRINE_TEST_FLAG, until its parent (the Dask
# worker) is gone or 30 s have passed.
import os, signal, subprocess, sys, time
listing = sys.stdin.buffer.read()
entries = listing.split(b"\0")
poison = os.environ.get("BRINE_TEST_POISON", "").encode()
slow = os.environ.get("BRINE_TEST_SLOW", "").encode()
flag = os.environ.get("BRINE_TEST_FLAG", "")
if poison and poison in entries:
    os.kill(os.getpid(), signal.SIGKILL)
if slow and slow in entries and flag and not os.path.exists(flag):
    parent = os.getppid()
    with open(flag + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {parent}\n")
    os.rename(flag + ".tmp", flag)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.05)
    sys.exit(3)
sys.exit(subprocess.run([os.environ["BRINE_REAL"], *sys.argv[1:]], input=listing).returncode)
'''

failures = []
checks = 0


def check(ok, message):
    global checks
    checks += 1
    if not ok:
        failures.append(message)
        print(f"FAIL: {message}", flush=True)
    return ok


def build_tree(root, source_root):
    """Copies the corpus samples, generates benign pickles and text files; returns (entries, clean entries)."""
    entries, clean = [], []
    for kind in ("benign", "malicious"):
        with open(os.path.join(source_root, "corpus", kind, "manifest.json")) as f:
            samples = json.load(f)["samples"]
        for s in samples:
            if s["expect"] == "error":  # keeps run A's exit status 1, not 2
                continue
            rel = os.path.join("tree", s["path"])
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            shutil.copyfile(os.path.join(source_root, "corpus", s["path"]), os.path.join(root, rel))
            entries.append(rel)
            if s["expect"] == "clean":
                clean.append(rel)
    os.makedirs(os.path.join(root, "tree", "generated"))
    for i in range(80):
        rel = f"tree/generated/g{i:03d}.pkl"
        with open(os.path.join(root, rel), "wb") as f:
            f.write(pickle.dumps({"i": i, "values": list(range(i % 7)), "name": f"n{i}", "f": i / 3},
                                 protocol=i % 6))
        entries.append(rel)
        clean.append(rel)
    os.makedirs(os.path.join(root, "tree", "notes"))
    for i in range(3):
        rel = f"tree/notes/readme{i}.txt"
        with open(os.path.join(root, rel), "w") as f:
            f.write("not a model\n")
        entries.append(rel)
    random.Random(12).shuffle(entries)
    random.Random(13).shuffle(clean)
    return entries, clean


def write_list(root, name, entries):
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write("".join(e + "\n" for e in entries))
    return path


def single_scan(brine, root, list_path, extra):
    done = subprocess.run([brine, "scan", "--format", "jsonl", *extra, "--files-from", list_path],
                          cwd=root, capture_output=True, timeout=RUN_TIMEOUT)
    return done.returncode, done.stdout


def split(out):
    """(file lines as bytes, parsed file objects, the summary object) of a JSONL report."""
    lines = out.rstrip(b"\n").split(b"\n")
    return lines[:-1], [json.loads(line) for line in lines[:-1]], json.loads(lines[-1])


def comparable(summary_line):
    s = dict(summary_line)
    s["summary"] = {k: v for k, v in s["summary"].items() if k != "seconds"}
    s["skipped"] = sorted(s.get("skipped", []), key=lambda x: x["path"])
    return s


def compare(label, entries, single, driver, replaced=()):
    """The driver's output against the single scan's: the same lines (bar the entries in `replaced`,
    which must be io:shard-failed error lines), each entry once, in LIST order, the same summary."""
    s_lines, s_files, s_summary = split(single)
    d_lines, d_files, d_summary = split(driver)
    # A failed shard's entries are all error lines, even one the scan would have skipped.
    skipped = {x["path"] for x in s_summary["skipped"]} - set(replaced)
    expected_paths = [e for e in entries if e not in skipped]
    check([f["path"] for f in d_files] == expected_paths,
          f"{label}: the file lines are not the LIST entries (less the skipped ones), once each, in LIST order")
    check([x["path"] for x in d_summary["skipped"]] == [e for e in entries if e in skipped],
          f"{label}: the skipped list is not in LIST order")
    keep = [line for line, f in zip(d_lines, d_files) if f["path"] not in replaced]
    want = [line for line, f in zip(s_lines, s_files) if f["path"] not in replaced]
    check(sorted(keep) == sorted(want), f"{label}: file lines differ from the single scan's")
    # brine's own fields, no more, no fewer (docs/schemas/scan-report.schema.json lists them all)
    file_keys = set(s_files[0])
    finding_keys = set(next((x for f in s_files for x in f["findings"]), {}))
    for f in d_files:
        if f["path"] in replaced:
            check(f["verdict"] == "error" and [x["rule"] for x in f["findings"]] == ["io:shard-failed"],
                  f"{label}: {f['path']} is not an io:shard-failed error line")
            check(set(f) == file_keys and set(f["findings"][0]) == finding_keys,
                  f"{label}: {f['path']}: the error line's fields are not a brine file line's")
    expected_summary = comparable(s_summary)
    if replaced:
        counts = expected_summary["summary"]
        for f in s_files:
            if f["path"] in replaced:
                counts[f["verdict"]] -= 1
                counts["error"] += 1
        lost = [x for x in expected_summary["skipped"] if x["path"] in replaced]
        expected_summary["skipped"] = [x for x in expected_summary["skipped"] if x["path"] not in replaced]
        counts["skipped"] -= len(lost)
        counts["files"] += len(lost)
        counts["error"] += len(lost)
    check(comparable(d_summary) == expected_summary,
          f"{label}: summary differs: {comparable(d_summary)} vs {expected_summary}")
    check(d_summary["summary"]["seconds"] >= 0, f"{label}: no seconds in the summary")
    return len(d_files)


def run_driver(source_root, root, args, env, timeout=RUN_TIMEOUT):
    out_path, err_path = os.path.join(root, "driver.out"), os.path.join(root, "driver.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(["/usr/bin/python3", os.path.join(source_root, "contrib", "dask", "brine_dask.py"), *args],
                                cwd=root, env=env, stdout=out, stderr=err, start_new_session=True)
    return proc, out_path, err_path


def finish(proc, out_path, err_path, timeout=RUN_TIMEOUT):
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its LocalCluster's workers: its own session
        proc.wait()
        status = None
    with open(out_path, "rb") as f:
        out = f.read()
    with open(err_path, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    return status, out, err


def wait_for(path, timeout, proc):
    """Whether `path` appears within `timeout` seconds while `proc` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        if proc.poll() is not None:
            return os.path.exists(path)
        time.sleep(0.05)
    return False


def run_a(brine, source_root, root, wrapper, entries, single):
    """Driver's own LocalCluster; the worker running shard SLOW_SHARD's first attempt is SIGKILLed."""
    flag = os.path.join(root, "slow.flag")
    env = dict(os.environ, BRINE_REAL=brine, BRINE_TEST_SLOW=entries[SLOW_SHARD * SHARD], BRINE_TEST_FLAG=flag)
    list_path = write_list(root, "list-a.txt", entries)
    started = time.monotonic()
    proc, out_path, err_path = run_driver(source_root, root,
                                          [list_path, "--workers", "2", "--brine", wrapper, "--shard-size", str(SHARD),
                                           "--", "--skip-unrecognized"], env)
    killed, stalled_pid = False, None
    if check(wait_for(flag, 60, proc), f"A: shard {SLOW_SHARD} never started"):
        print(f"A: shard {SLOW_SHARD} stalled after {time.monotonic() - started:.1f} s", flush=True)
        with open(flag) as f:
            stalled_pid, worker_pid = map(int, f.read().split())
        with open(f"/proc/{worker_pid}/stat") as f:
            worker_parent = int(f.read().rsplit(")", 1)[1].split()[1])
        # The wrapper's parent is the Dask worker process, a child of the driver (its Nanny).
        if check(worker_parent == proc.pid, f"A: process {worker_pid} is not a worker of the driver {proc.pid}"):
            os.kill(worker_pid, signal.SIGKILL)
            killed = True
            print(f"A: killed worker {worker_pid} after {time.monotonic() - started:.1f} s", flush=True)
    status, out, err = finish(proc, out_path, err_path)
    if stalled_pid is not None:
        # The stalled wrapper exits by itself once orphaned (or after 30 s); should it still be
        # there, end it, after making sure the pid was not reused.
        try:
            with open(f"/proc/{stalled_pid}/cmdline", "rb") as f:
                if wrapper.encode() in f.read():
                    os.kill(stalled_pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass
    print(f"A: driver exit {status} in {time.monotonic() - started:.1f} s; stderr:\n{err}", flush=True)
    check(killed, "A: no worker was killed")
    check(f"shard {SLOW_SHARD} (entries {SLOW_SHARD * SHARD}-{SLOW_SHARD * SHARD + SHARD - 1}) attempt 1 failed "
          f"(the worker running it died); resubmitting (attempt 2 of 4)" in err,
          f"A: the driver did not resubmit shard {SLOW_SHARD} after its worker died")
    check("failed after" not in err, "A: a shard failed every attempt")
    check(status == single[0] == 1, f"A: exit status {status}, single scan {single[0]} (both should be 1)")
    if out:
        n = compare("A", entries, single[1], out)
        print(f"A: {n} file lines compared", flush=True)
    else:
        check(False, "A: no output")


def run_bc(brine, source_root, root, wrapper, entries, single, clean, single_clean):
    """A LocalCluster owned by this test, through --scheduler: a shard that always fails; a clean run."""
    poison = entries[POISON_SHARD * SHARD]
    os.environ.update(BRINE_REAL=brine, BRINE_TEST_POISON=poison)  # the workers inherit it
    from distributed import LocalCluster
    import logging
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR)
    try:
        env = dict(os.environ)
        list_path = write_list(root, "list-b.txt", entries)
        proc, out_path, err_path = run_driver(source_root, root,
                                              [list_path, "--scheduler", cluster.scheduler_address, "--brine", wrapper,
                                               "--shard-size", str(SHARD), "--retries", "2", "--", "--skip-unrecognized"],
                                              env)
        status, out, err = finish(proc, out_path, err_path)
        print(f"B: driver exit {status}; stderr:\n{err}", flush=True)
        described = f"shard {POISON_SHARD} (entries {POISON_SHARD * SHARD}-{POISON_SHARD * SHARD + SHARD - 1})"
        check(err.count(f"{described} attempt ") == 2 and f"{described} failed after 3 attempts" in err,
              f"B: shard {POISON_SHARD} was not tried exactly 3 times")
        check("brine killed by signal 9" in err, "B: the reason (brine killed) is not reported")
        check(status == 2, f"B: exit status {status}, want 2")
        poisoned = set(entries[POISON_SHARD * SHARD:(POISON_SHARD + 1) * SHARD])
        if check(bool(out), "B: no output"):
            n = compare("B", entries, single[1], out, replaced=poisoned)
            print(f"B: {n} file lines compared, {len(poisoned)} replaced by error lines", flush=True)

        list_path = write_list(root, "list-c.txt", clean)
        proc, out_path, err_path = run_driver(source_root, root,
                                              [list_path, "--scheduler", cluster.scheduler_address, "--brine", brine,
                                               "--shard-size", str(SHARD)], env)
        status, out, err = finish(proc, out_path, err_path)
        print(f"C: driver exit {status}; stderr:\n{err}", flush=True)
        check(status == single_clean[0] == 0, f"C: exit status {status}, single scan {single_clean[0]} (both should be 0)")
        if check(bool(out), "C: no output"):
            n = compare("C", clean, single_clean[1], out)
            print(f"C: {n} file lines compared", flush=True)
    finally:
        cluster.close()


def run_d(brine, source_root, root, entries, single):
    """--merge over shards scanned one by one (the Indexed Job of docs/scaling.md), and with one cut short."""
    outputs = []
    for i in range(0, len(entries), SHARD):
        shard = write_list(root, f"shard-{i // SHARD:05d}", entries[i:i + SHARD])
        done = subprocess.run([brine, "scan", "--format", "jsonl", "--skip-unrecognized", "--files-from", shard],
                              cwd=root, capture_output=True, timeout=RUN_TIMEOUT)
        outputs.append(shard + ".jsonl")
        with open(outputs[-1], "wb") as f:
            f.write(done.stdout)
    driver = os.path.join(source_root, "contrib", "dask", "brine_dask.py")
    done = subprocess.run(["/usr/bin/python3", driver, "--merge", *outputs], cwd=root, capture_output=True,
                          timeout=RUN_TIMEOUT)
    check(done.returncode == single[0], f"D: --merge exit {done.returncode}, single scan {single[0]}")
    s_lines, _, s_summary = split(single[1])
    d_lines, _, d_summary = split(done.stdout)
    check(sorted(d_lines) == sorted(s_lines), "D: --merge file lines differ from the single scan's")
    check(comparable(d_summary) == comparable(s_summary), "D: --merge summary differs")
    # Shard 2 cut short (as if its pod died mid-write): named on stderr, left out, exit 2.
    with open(outputs[2], "rb") as f:
        whole = f.read()
    with open(outputs[2], "wb") as f:
        f.write(whole[:len(whole) // 2])
    done = subprocess.run(["/usr/bin/python3", driver, "--merge", *outputs], cwd=root, capture_output=True,
                          timeout=RUN_TIMEOUT)
    d_lines, d_files, d_summary = split(done.stdout)
    check(done.returncode == 2, f"D: --merge with a cut shard exit {done.returncode}, want 2")
    check(f"{outputs[2]}: not a complete brine report" in done.stderr.decode(), "D: the cut shard is not named")
    check(not {f["path"] for f in d_files} & set(entries[2 * SHARD:3 * SHARD]), "D: lines of the cut shard were kept")
    print(f"D: --merge of {len(outputs)} shards checked", flush=True)


def main():
    brine, source_root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("SKIP: python3-distributed is not installed (scripts/setup.sh test)")
        return 77
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="brine-dask-test-") as root:
        entries, clean = build_tree(root, source_root)
        wrapper = os.path.join(root, "brine-wrapper")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        os.chmod(wrapper, 0o755)
        single = single_scan(brine, root, write_list(root, "list.txt", entries), ["--skip-unrecognized"])
        single_clean = single_scan(brine, root, write_list(root, "clean.txt", clean), [])
        print(f"{len(entries)} entries ({len(clean)} clean); single scan exit {single[0]}", flush=True)
        run_d(brine, source_root, root, entries, single)
        run_a(brine, source_root, root, wrapper, entries, single)
        run_bc(brine, source_root, root, wrapper, entries, single, clean, single_clean)
    print(f"{time.monotonic() - started:.1f} s")
    print(f"{checks - len(failures)} passed, {len(failures)} failed")  # scripts/count_tests.py reads this line
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
