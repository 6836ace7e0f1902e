#!/usr/bin/env python3
"""Tests of `brine serve` on loopback: the same verdicts and bytes as the command line, and the
abuse a registry's upload endpoint meets (truncated, slow, over-size and unauthenticated uploads,
a load of 1,000 requests with a /metrics hammer, SIGTERM during uploads). Every server started
here must exit 0 on SIGTERM, stay under an RSS bound, and leave no temp files.

Usage: serve_test.py BRINE REPO_ROOT      Ends with the line "N passed, N failed".
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

BRINE = os.path.abspath(sys.argv[1])
ROOT = sys.argv[2]
CORPUS = os.path.join(ROOT, "corpus")
TESTS = []
# Peak RSS a server in these tests may reach. Uploads go to disk and ordinary files scan in a few
# MB; what a scan may hold is bounded by the scan limits, the largest being decompression (the
# corpus's 100 MB-of-zeros files are decompressed in memory; its nested bombs stop at 64 MiB).
# So the bound is 256 MiB plus, for servers that scan the whole corpus, 256 MiB per worker.
RSS_BOUND_KB = 256 * 1024
BOMB_RSS_KB = 256 * 1024
# AddressSanitizer's shadow memory and quarantine (256 MiB by default) are not the service's:
# the sanitizer pass of scripts/test.sh checks memory errors, the normal build checks the bound.
UNDER_SANITIZER = os.environ.get("BRINE_SANITIZER_BUILD") == "1"


def test(fn):
    TESTS.append(fn)
    return fn


def corpus_files():
    files = []
    for sub in sorted(os.listdir(CORPUS)):
        manifest = os.path.join(CORPUS, sub, "manifest.json")
        if not os.path.isfile(manifest):
            continue
        with open(manifest, encoding="utf-8") as f:
            for s in json.load(f)["samples"]:
                path = os.path.join("corpus", s["path"])
                if os.path.isfile(os.path.join(ROOT, path)):
                    files.append(path)
    return sorted(set(files))


class Server:
    """A `brine serve` on a free loopback port, with its own temp dir and access log."""

    def __init__(self, *args, rss_bound_kb=RSS_BOUND_KB):
        self.rss_bound_kb = rss_bound_kb
        self.tmp = tempfile.mkdtemp(prefix="brine-serve-test.")
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        self.log = os.path.join(self.tmp, "access.jsonl")
        self.proc = subprocess.Popen([BRINE, "serve", "--listen", "127.0.0.1:0", "--temp-dir", self.spool,
                                      "--access-log", self.log, *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        line = self.proc.stderr.readline().decode()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert m, f"no listening line: {line!r}"
        self.port = int(m.group(1))
        self.stderr_rest = b""

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def peak_rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=30):
        """SIGTERM; checks the exit, the RSS bound and that no temp file is left."""
        rss = self.peak_rss_kb()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.stderr_rest = self.proc.stderr.read()
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the server did not stop within %ds of SIGTERM" % timeout)
        assert rc == 0, f"exit {rc}: {self.stderr_rest.decode(errors='replace')}"
        left = os.listdir(self.spool)
        assert left == [], f"temp files left: {left}"
        if not UNDER_SANITIZER:
            assert rss < self.rss_bound_kb, f"peak RSS {rss} kB >= {self.rss_bound_kb} kB"
        return rss

    def access_log(self, until=None, timeout=10):
        """The access log's entries; with `until`, waits (bounded) until they satisfy it: a line
        is written once the answer is out, so a client can see its answer first."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log, encoding="utf-8") as f:
                entries = [json.loads(line) for line in f if line.endswith("\n")]
            if until is None or until(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        try:
            if kind is None:
                self.stop()
            elif self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def post(conn, path, body, headers=None):
    conn.request("POST", path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read(), r


def get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read()


def read_file(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def cli_reports(paths):
    """The CLI's JSON report of each path (scan --format jsonl), by path."""
    p = subprocess.run([BRINE, "scan", "--format", "jsonl", "--files-from", "-"], input="\n".join(paths).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, timeout=600)
    reports = {}
    for line in p.stdout.decode().splitlines():
        d = json.loads(line)
        if "path" in d:
            reports[d["path"]] = d
    assert set(reports) == set(paths), "the CLI did not report every file"
    return reports


def comparable(report):
    d = dict(report)
    d.pop("seconds", None)
    return d


def raw_request(port, data, read=True, timeout=30):
    """Sends bytes on a fresh connection, half-closes, returns the status code (or None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed before all of it was sent
        if not read:
            return None
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        m = re.match(rb"HTTP/1\.1 (\d+)", reply)
        return int(m.group(1)) if m else None
    finally:
        s.close()


@test
def every_corpus_file_gets_the_cli_verdict():
    files = corpus_files()
    assert len(files) > 300, len(files)
    expected = cli_reports(files)
    with Server("--workers", "2", rss_bound_kb=RSS_BOUND_KB + 2 * BOMB_RSS_KB) as srv:
        def one(chunk):
            conn = srv.conn()
            got = {}
            for rel in chunk:
                data = read_file(rel)
                status, body, r = post(conn, "/v1/scan?name=" + urllib.parse.quote(rel), data)
                assert status == 200, (rel, status, body[:200])
                doc = json.loads(body)
                assert len(doc["files"]) == 1
                got[rel] = doc["files"][0]
                assert doc["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
                assert r.getheader("X-Brine-Verdict") == doc["files"][0]["verdict"]
            conn.close()
            return got
        chunks = [files[i::4] for i in range(4)]
        got = {}
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            for part in ex.map(one, chunks):
                got.update(part)
        for rel in files:
            assert comparable(got[rel]) == comparable(expected[rel]), rel
        verdicts = {got[r]["verdict"] for r in files}
        assert {"clean", "malicious", "unapproved", "error"} <= verdicts, verdicts
        log = srv.access_log(until=lambda log: sum(1 for e in log if e["path"] == "/v1/scan") >= len(files))
        scans = [e for e in log if e["path"] == "/v1/scan"]
        assert len(scans) == len(files)
        assert all(e["status"] == 200 and e["verdict"] and len(e["sha256"]) == 64 for e in scans)
        print(f"     {len(files)} corpus files; peak RSS {srv.peak_rss_kb()} kB")


def cli_sanitize(rel, fmt, tmp, *extra):
    out = os.path.join(tmp, "cli." + fmt)
    if os.path.exists(out):
        os.unlink(out)
    p = subprocess.run([BRINE, "sanitize", rel, "-o", out, *extra], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        return None
    with open(out, "rb") as f:
        return f.read()


@test
def sanitize_gives_the_cli_bytes():
    candidates = [f for f in corpus_files() if f.startswith("corpus/benign/")]
    tmp = tempfile.mkdtemp()
    converted = refused = 0
    try:
        with Server() as srv:
            conn = srv.conn()
            for rel in candidates:
                data = read_file(rel)
                for fmt in ("safetensors", "onnx"):
                    want = cli_sanitize(rel, fmt, tmp)
                    q = urllib.parse.urlencode({"name": rel, "to": fmt})
                    status, body, r = post(conn, "/v1/sanitize?" + q, data)
                    if want is None:
                        assert status == 422, (rel, fmt, status)
                        report = json.loads(body)
                        assert report["error"], rel
                        refused += 1
                    else:
                        assert status == 200, (rel, fmt, status, body[:300])
                        assert r.getheader("Content-Type") == "application/octet-stream"
                        assert body == want, (rel, fmt, "bytes differ from the CLI's")
                        converted += 1
            # A payload file: refused with the JSON report; with salvage=1 its approved tensors, as the CLI writes them.
            mal = "corpus/malicious/torch_zip_extra_pickle_member.pt"
            if not os.path.exists(os.path.join(ROOT, mal)):
                mal = next(f for f in corpus_files() if f.startswith("corpus/malicious/") and f.endswith(".pt"))
            status, body, r = post(conn, "/v1/sanitize?name=x.pt", read_file(mal))
            assert status == 422 and r.getheader("X-Brine-Verdict") == "malicious", (status, body[:200])
            assert json.loads(body)["verdict"] == "malicious"
            want = cli_sanitize(mal, "safetensors", tmp, "--salvage")
            status, body, _ = post(conn, "/v1/sanitize?salvage=1&name=x.pt", read_file(mal))
            if want is None:
                assert status == 422
            else:
                assert status == 200 and body == want
            conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert converted >= 20 and refused >= 1, (converted, refused)


@test
def truncated_and_malformed_requests_get_400():
    with Server() as srv:
        body = b"\x80\x04K\x01."
        # The body stops after 5 of the 1,000 bytes it promised.
        status = raw_request(srv.port, b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + body)
        assert status == 400, status
        assert raw_request(srv.port, b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n") == 400
        assert raw_request(srv.port, b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                           + body) == 400
        assert raw_request(srv.port, b"NOT-HTTP\r\n\r\n") == 400
        assert raw_request(srv.port, b"POST /v1/scan?rules=../../etc/passwd HTTP/1.1\r\nContent-Length: 5\r\n\r\n" + body) == 400
        assert raw_request(srv.port, b"GET /nope HTTP/1.1\r\n\r\n") == 404
        # A client that goes away mid-body.
        raw_request(srv.port, b"POST /v1/scan HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000, read=False)
        status, _ = get(srv.conn(), "/healthz")
        assert status == 200
        codes = sorted(e["status"] for e in srv.access_log(until=lambda log: [e["status"] for e in log].count(400) >= 5))
        assert codes.count(400) >= 5, codes


@test
def over_size_bodies_get_413_unread():
    with Server("--max-body", "4096") as srv:
        t0 = time.monotonic()
        # Announced too big: refused before a byte of the body is read (none is sent).
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
        assert time.monotonic() - t0 < 5
        # Chunked, over the limit as it arrives.
        chunk = b"1000\r\n" + b"a" * 4096 + b"\r\n"
        status = raw_request(srv.port, b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + chunk * 3 + b"0\r\n\r\n")
        assert status == 413, status
        # At the limit: scanned.
        status, body, _ = post(srv.conn(), "/v1/scan", b"\x80\x04K\x01." + b"\x00" * (4096 - 6))
        assert status == 200, status
        # A body where none is taken.
        assert raw_request(srv.port, b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde") == 413


@test
def slow_clients_are_cut_off_at_the_request_timeout():
    with Server("--request-timeout", "2", "--connections", "4") as srv:
        def loris(head_only):
            """Sends a request a byte a second (its headers, or its body); returns how long the
            server kept reading and what it answered."""
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            t0 = time.monotonic()
            msg = (b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40 if head_only else
                   b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            try:
                if not head_only:
                    s.sendall(msg)
                    msg = b"b" * 40
                for i in range(len(msg)):
                    s.sendall(msg[i:i + 1])
                    time.sleep(1)
            except OSError:
                pass  # the server closed the connection
            reply = b""
            try:
                s.settimeout(5)
                reply = s.recv(4096)
            except OSError:
                pass
            s.close()
            return time.monotonic() - t0, reply

        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            slow = [ex.submit(loris, True), ex.submit(loris, False)]
            time.sleep(1.5)
            # Served while the slow ones hold their slots.
            status, _, _ = post(srv.conn(), "/v1/scan", b"\x80\x04K\x01.")
            assert status == 200
            for f in slow:
                took, reply = f.result(timeout=30)
                assert took < 8, f"a slow client held its connection {took:.1f}s with a 2s request time-out"
                assert reply == b"" or reply.startswith(b"HTTP/1.1 408") or reply.startswith(b"HTTP/1.1 400"), reply[:80]
        timed_out = [e for e in srv.access_log(until=lambda log: sum(1 for e in log if e.get("timed_out")) >= 2)
                     if e.get("timed_out")]
        assert timed_out, f"no request was logged as timed out: {srv.access_log()}"


@test
def a_token_is_required_when_configured():
    tmp = tempfile.mkdtemp()
    try:
        token_file = os.path.join(tmp, "token")
        with open(token_file, "w") as f:
            f.write("s3cret-token\n")
        with Server("--token-file", token_file) as srv:
            conn = srv.conn()
            status, body, r = post(conn, "/v1/scan", b"\x80\x04K\x01.")
            assert status == 401 and r.getheader("WWW-Authenticate") == "Bearer", status
            conn = srv.conn()
            status, _, _ = post(conn, "/v1/scan", b"\x80\x04K\x01.", {"Authorization": "Bearer s3cret-tokeN"})
            assert status == 401
            conn = srv.conn()
            status, _, _ = post(conn, "/v1/scan", b"\x80\x04K\x01.", {"Authorization": "Bearer s3cret-token"})
            assert status == 200
            assert get(srv.conn(), "/metrics")[0] == 401
            assert get(srv.conn(), "/metrics", {"Authorization": "Bearer s3cret-token"})[0] == 200
            assert get(srv.conn(), "/healthz")[0] == 200
            assert get(srv.conn(), "/readyz")[0] == 200
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def metric(text, name, labels=""):
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def check_exposition(text):
    """Every sample line is `name{labels} number`; histogram buckets never decrease."""
    last = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"# (HELP|TYPE) brine_\w+ .+", line), line
            continue
        m = re.match(r'(brine_\w+)(\{[^}]*\})? (\S+)$', line)
        assert m, line
        float(m.group(3))
        if m.group(1).endswith("_bucket"):
            key = re.sub(r',?le="[^"]*"', "", m.group(2))
            v = float(m.group(3))
            assert v >= last.get(key, 0), line
            last[key] = v


@test
def a_thousand_mixed_requests_with_a_metrics_hammer():
    files = [f for f in corpus_files() if f.startswith(("corpus/benign/", "corpus/malicious/"))]
    expected = {rel: r["verdict"] for rel, r in cli_reports(files).items()}
    bodies = {rel: read_file(rel) for rel in files}
    plan = [files[i % len(files)] for i in range(1000)]
    stop = threading.Event()
    scrapes = []

    with Server("--workers", "2", "--queue", "64") as srv:
        def hammer():
            conn = srv.conn()
            while not stop.is_set():
                status, body = get(conn, "/metrics")
                assert status == 200
                scrapes.append(body.decode())

        def client(part):
            conn = srv.conn()
            n = 0
            for rel in part:
                status, body, _ = post(conn, "/v1/scan?name=" + urllib.parse.quote(rel), bodies[rel])
                assert status == 200, (rel, status, body[:200])
                assert json.loads(body)["files"][0]["verdict"] == expected[rel], rel
                n += 1
            return n

        h = threading.Thread(target=hammer)
        h.start()
        t0 = time.monotonic()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                done = sum(ex.map(client, [plan[i::8] for i in range(8)]))
        finally:
            stop.set()
            h.join(timeout=30)
        took = time.monotonic() - t0
        assert done == 1000
        assert len(scrapes) >= 10, len(scrapes)
        status, body = get(srv.conn(), "/metrics")
        text = body.decode()
        check_exposition(text)
        check_exposition(scrapes[len(scrapes) // 2])
        assert metric(text, "brine_http_requests_total", '{endpoint="scan",code="200"}') == 1000
        assert metric(text, "brine_http_request_duration_seconds_count", '{endpoint="scan"}') == 1000
        verdicts = sum(metric(text, "brine_verdicts_total", '{verdict="%s"}' % v) for v in
                       ("clean", "unapproved", "malicious", "error"))
        assert verdicts == 1000, verdicts
        assert metric(text, "brine_in_flight_requests") == 0
        assert metric(text, "brine_queue_depth") == 0
        assert metric(text, "brine_temp_bytes") == 0
        rss = srv.peak_rss_kb()
        print(f"     1000 requests in {took:.1f}s with {len(scrapes)} scrapes; peak RSS {rss} kB")


def slow_pickle(n):
    """A pickle whose scan takes a while: a list of n small ints, appended one by one."""
    return b"\x80\x04]\x94" + b"K\x01a" * n + b"."


@test
def a_full_queue_answers_429():
    big = slow_pickle(1_000_000)
    with Server("--workers", "1", "--queue", "0") as srv:
        results = []

        def busy():
            status, _, _ = post(srv.conn(), "/v1/scan", big)
            results.append(status)

        t = threading.Thread(target=busy)
        t.start()
        # Wait until the one worker is taken, then ask again.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, body = get(srv.conn(), "/metrics")
            if metric(body.decode(), "brine_workers_busy") == 1:
                break
            time.sleep(0.01)
        status, body, r = post(srv.conn(), "/v1/scan", b"\x80\x04K\x01.")
        t.join(timeout=60)
        assert status == 429 and r.getheader("Retry-After"), (status, body)
        assert results == [200]


@test
def sigterm_drains_uploads_in_progress():
    rel = "corpus/benign/torch_training_checkpoint.ckpt"
    payload = read_file(rel)
    want = cli_reports([rel])[rel]["verdict"]
    srv = Server("--workers", "2")
    outcomes = []
    lock = threading.Lock()

    def upload(i):
        # Sends the body in pieces over about a second, so SIGTERM lands mid-upload.
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        except OSError as e:
            with lock:
                outcomes.append(("refused", str(e)))
            return
        try:
            s.sendall(b"POST /v1/scan?name=c.ckpt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(payload))
            step = max(1, len(payload) // 10)
            for k in range(0, len(payload), step):
                s.sendall(payload[k:k + step])
                time.sleep(0.1)
            reply = b""
            s.settimeout(30)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            head, _, body = reply.partition(b"\r\n\r\n")
            status = int(head.split()[1])
            with lock:
                outcomes.append((status, body))
        except OSError as e:
            with lock:
                outcomes.append(("error", str(e)))
        finally:
            s.close()

    try:
        threads = [threading.Thread(target=upload, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.4)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        late = [threading.Thread(target=upload, args=(100 + i,)) for i in range(3)]
        for t in late:
            t.start()
        for t in threads + late:
            t.join(timeout=60)
        rc = srv.proc.wait(timeout=30)
        assert rc == 0, rc
        assert os.listdir(srv.spool) == []
        first = outcomes[:]
        assert len(first) == 9, first
        answered = [o for o in first if o[0] == 200]
        assert len(answered) >= 6, f"uploads in progress at SIGTERM were not all answered: {first}"
        for status, body in answered:
            assert json.loads(body)["files"][0]["verdict"] == want
        for o in first:
            # Late ones: refused at connect, or a clear 503; never a broken answer.
            assert o[0] in (200, 503, "refused"), o
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
        shutil.rmtree(srv.tmp, ignore_errors=True)


@test
def probes_and_draining():
    with Server() as srv:
        assert get(srv.conn(), "/healthz") == (200, b"ok\n")
        assert get(srv.conn(), "/readyz") == (200, b"ready\n")
        status, body = get(srv.conn(), "/metrics")
        assert status == 200
        check_exposition(body.decode())
        assert metric(body.decode(), "brine_draining") == 0


def main():
    passed = failed = 0
    only = os.environ.get("SERVE_TEST")
    for t in TESTS:
        if only and only not in t.__name__:
            continue
        t0 = time.monotonic()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
