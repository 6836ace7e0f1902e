#!/usr/bin/env python3
"""End-to-end tests of the brine command line: help, exit codes, report formats, directories,
stdin, rule packs and --allow, limits, disasm, inspect, and rule-file errors.

Usage: e2e_test.py BRINE REPO_ROOT      Ends with the line "N passed, N failed".
"""
import json
import re
import os
import subprocess
import sys
import tempfile
import traceback

BRINE = sys.argv[1]
ROOT = sys.argv[2]
CORPUS = os.path.join(ROOT, "corpus")
BENIGN = os.path.join(CORPUS, "benign")
MALICIOUS = os.path.join(CORPUS, "malicious")

OS_SYSTEM = b"cos\nsystem\n(S'echo brine-test'\ntR."
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def brine(*args, stdin=None):
    p = subprocess.run([BRINE, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write(dirpath, name, data):
    path = os.path.join(dirpath, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


@test
def help_is_complete():
    rc, out, _ = brine("--help")
    assert rc == 0
    for word in ("scan", "disasm", "rules", "Exit codes"):
        assert word in out, word
    rc, out, _ = brine("scan", "--help")
    assert rc == 0
    for flag in ("--format", "--output", "--rules", "--allow", "--no-default-rules", "--quiet", "--verbose", "--jobs",
                 "--no-hash", "--follow-symlinks", "--include", "--exclude", "--max-container-depth", "--max-archive-entries",
                 "--max-compression-ratio", "--max-total-decompressed", "--max-nested-depth", "--max-opcodes", "--max-stack", "--max-nesting", "--max-memo",
                 "--max-values", "--max-value-bytes", "--max-string", "--max-pickles", "--max-member-bytes", "--timeout"):
        assert flag in out, flag
    rc, out, _ = brine("--version")
    assert rc == 0 and out.startswith("brine ")


@test
def exit_codes():
    with tempfile.TemporaryDirectory() as d:
        clean = write(d, "clean.pkl", b"\x80\x02}q\x00.")
        bad = write(d, "payload.bin", OS_SYSTEM)
        unapproved = write(d, "u.pkl", b"cevil_pkg\nrun\n(tR.")
        broken = write(d, "broken.pt", b"\x80\x02]q\x00(K\x01")
        assert brine("scan", clean)[0] == 0
        assert brine("scan", bad)[0] == 1
        assert brine("scan", unapproved)[0] == 1
        assert brine("scan", broken)[0] == 2
        assert brine("scan", clean, bad, broken)[0] == 2          # an error always exits 2
        assert brine("scan", clean, unapproved)[0] == 1
        assert brine("scan", "--fail-on", "malicious", clean, unapproved)[0] == 0
        assert brine("scan", "--fail-on", "malicious", clean, bad)[0] == 1
        assert brine("scan", "--fail-on", "malicious", unapproved, broken)[0] == 2
        assert brine("scan", "--fail-on", "malicious", unapproved)[0] == 0
        assert brine("scan", "--fail-on", "malicious", bad, unapproved)[0] == 1
        assert brine("scan", "--fail-on", "malicious", broken, unapproved)[0] == 2
        assert brine("scan", "--fail-on", "unapproved", unapproved)[0] == 1
        assert brine("scan", "--fail-on", "nonsense", clean)[0] == 2
        # a PNG reads as NEWFALSE then PERSID: no loader has a persistent_load there, so it is not a pickle
        png = write(d, "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01")
        assert brine("scan", "--skip-unrecognized", png, clean)[0] == 0
        text = write(d, "README", b"# not a checkpoint\n")
        assert brine("scan", text)[0] == 2                         # a named file is reported...
        rc, out, _ = brine("scan", "--skip-unrecognized", "-v", text, clean)
        assert rc == 0 and "skipped" in out and "1 file:" in out, out  # ...unless the caller says skip
        assert brine("scan", "--skip-unrecognized", text, bad)[0] == 1
        assert brine("scan", "--no-such-flag", clean)[0] == 2      # bad usage
        assert brine("scan")[0] == 2                               # no path


@test
def unreadable_file_is_an_error_and_the_scan_goes_on():
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "payload.pkl", OS_SYSTEM)
        rc, out, _ = brine("scan", "--format", "json", os.path.join(d, "missing.pkl"), bad)
        report = json.loads(out)
        verdicts = {os.path.basename(f["path"]): f["verdict"] for f in report["files"]}
        assert verdicts == {"missing.pkl": "error", "payload.pkl": "malicious"}, verdicts
        assert rc == 2                                             # an error always exits 2


@test
def json_report_shape():
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "payload.pkl", OS_SYSTEM)
        rc, out, _ = brine("scan", "--format", "json", bad)
        doc = json.loads(out)
        f = doc["files"][0]
        assert set(("path", "size", "sha256", "container", "verdict", "findings")) <= set(f)
        assert len(f["sha256"]) == 64 and f["size"] == len(OS_SYSTEM)
        x = f["findings"][0]
        assert set(("rule", "severity", "global", "use", "call", "member", "offset", "message")) <= set(x)
        assert x["global"] == "os.system" and x["call"] == "os.system('echo brine-test')"
        assert x["rule"] == "deny:os" and x["severity"] == "critical" and x["offset"] == 32
        assert doc["summary"]["malicious"] == 1 and doc["summary"]["files"] == 1
        rc, out, _ = brine("scan", "--format", "json", "--no-hash", bad)
        assert json.loads(out)["files"][0]["sha256"] is None


@test
def text_report_and_output_file():
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "payload.pkl", OS_SYSTEM)
        clean = write(d, "clean.pkl", b"N.")
        rc, out, _ = brine("scan", bad, clean)
        assert "MALICIOUS" in out and "os.system('echo brine-test')" in out and "CLEAN" in out
        rc, out, _ = brine("scan", "-q", bad, clean)
        assert "CLEAN" not in out and "MALICIOUS" in out
        target = os.path.join(d, "report.json")
        rc, out, _ = brine("scan", "--format", "json", "-o", target, bad)
        assert out == "" and json.load(open(target))["files"][0]["verdict"] == "malicious"


@test
def directories_are_walked_by_content_and_sorted():
    with tempfile.TemporaryDirectory() as d:
        write(d, "b/model.txt", OS_SYSTEM)          # a pickle named .txt is still a pickle
        write(d, "a/weights.pt", b"\x80\x02}q\x00.")
        write(d, "README.md", b"# not a pickle\n")  # skipped, not reported
        os.symlink(os.path.join(d, "b", "model.txt"), os.path.join(d, "link.pkl"))
        rc, out, _ = brine("scan", "--format", "json", d)
        doc = json.loads(out)
        paths = [os.path.relpath(f["path"], d) for f in doc["files"]]
        # sorted; a link to a file is scanned as that file, under its own path
        assert paths == ["a/weights.pt", "b/model.txt", "link.pkl"], paths
        assert doc["summary"]["skipped"] == 1 and doc["skipped"][0]["path"].endswith("README.md")
        rc, out, _ = brine("scan", "--format", "json", "--follow-symlinks", d)
        assert len(json.loads(out)["files"]) == 3
        # the same verdicts whatever the number of jobs
        one = json.loads(brine("scan", "--format", "json", "--no-hash", "-j", "1", CORPUS)[1])
        two = json.loads(brine("scan", "--format", "json", "--no-hash", "-j", "2", CORPUS)[1])
        assert [(f["path"], f["verdict"]) for f in one["files"]] == [(f["path"], f["verdict"]) for f in two["files"]]


@test
def walking_while_scanning_gives_the_serial_walks_output():
    # Threads scan while the walk goes on (cli/parallel_walk.hpp). "a-c/..." sorts before "a/...",
    # though "a" is walked first by name: files come in path order, walk errors (on stderr) and
    # skips in the depth-first name order they always had, whatever the number of jobs.
    with tempfile.TemporaryDirectory() as d:
        for rel in ("a/m.pkl", "a-c/x/n.pkl", "a-c/x-y.pkl", "a-c.pkl", "a.b/o.pkl", "a b/p.pkl", "a0.pkl", "e/f/bad.pkl"):
            write(d, rel, OS_SYSTEM if "bad" in rel else b"\x80\x02}q\x00.")
        for i in range(150):
            write(d, f"many/{i % 5}/f{i:03}.pkl", b"\x80\x02}q\x00.")
        write(d, "README.md", b"# not a pickle\n")
        os.symlink("nowhere", os.path.join(d, "dangling.pkl"))
        os.mkfifo(os.path.join(d, "fifo.pkl"))
        # directories nested past PATH_MAX cannot be opened: walk errors, "deep" before "deep-x"
        for top in ("deep-x", "deep"):
            fd = os.open(d, os.O_RDONLY)
            for name in [top] + ["d" * 250] * 17:
                os.mkdir(name, dir_fd=fd)
                nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            os.close(fd)
        runs = {}
        for j in ("1", "2", "4"):
            for fmt in ("text", "json", "sarif"):
                rc, out, err = brine("scan", "-v", "-f", fmt, "-j", j, d, os.path.join(d, "a0.pkl"))
                runs[(j, fmt)] = (rc, re.sub(r'"seconds": [0-9.e+-]+| in [0-9.]+s\n', "", out), err)
        for (j, fmt), run in runs.items():
            assert run == runs[("1", fmt)], (j, fmt)
        rc, out, err = runs[("2", "text")]
        assert rc == 2, rc
        errors = [line for line in err.splitlines() if line.startswith("brine: ")]
        assert len(errors) == 2 and "/deep/" in errors[0] and "/deep-x/" in errors[1], err
        paths = [line.split(": ")[0] for line in out.splitlines() if line.startswith(d)]
        rel = [os.path.relpath(p, d) for p in paths]
        assert rel[:7] == ["a b/p.pkl", "a-c.pkl", "a-c/x-y.pkl", "a-c/x/n.pkl", "a.b/o.pkl", "a/m.pkl", "a0.pkl"], rel
        assert rel[-1] == "a0.pkl" and len(rel) == 8 + 150 + 1, rel  # the named file, after the walk
        assert rel[:-1] == sorted(rel[:-1])
        assert "dangling.pkl: symbolic link to nothing readable" in out and "fifo.pkl: a FIFO" in out


@test
def include_and_exclude_globs():
    with tempfile.TemporaryDirectory() as d:
        write(d, "models/a.pt", OS_SYSTEM)
        write(d, "models/b.bin", OS_SYSTEM)
        write(d, "cache/c.pt", OS_SYSTEM)
        def names(*args):
            doc = json.loads(brine("scan", "--format", "json", "--no-hash", *args, d)[1])
            return sorted(os.path.relpath(f["path"], d) for f in doc["files"])
        assert names() == ["cache/c.pt", "models/a.pt", "models/b.bin"]
        assert names("--include", "*.pt") == ["cache/c.pt", "models/a.pt"]
        assert names("--exclude", "cache") == ["models/a.pt", "models/b.bin"]            # prunes the directory
        assert names("--include", "models/*", "--exclude", "*.bin") == ["models/a.pt"]
        explicit = write(d, "x.bin", OS_SYSTEM)                                          # named files are always scanned
        rc, out, _ = brine("scan", "--format", "json", "--include", "*.pt", explicit)
        assert len(json.loads(out)["files"]) == 1


@test
def stdin():
    rc, out, _ = brine("scan", "-", stdin=OS_SYSTEM)
    assert rc == 1 and "MALICIOUS" in out


@test
def packs_and_allow():
    ckpt = os.path.join(BENIGN, "torch_training_checkpoint.ckpt")
    assert brine("scan", ckpt)[0] == 1
    assert brine("scan", "--rules", "training-checkpoint", ckpt)[0] == 0
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "custom.pkl", b"\x80\x02cmylib.layers\nBlock\n)\x81}b.")
        assert brine("scan", p)[0] == 1
        assert brine("scan", "--allow", "mylib.layers.Block:instantiate,build", p)[0] == 0
        assert brine("scan", "--allow", "mylib.layers.Block:instantiate", p)[0] == 1   # build not granted
        # a user rule file, loaded by path
        rules = write(d, "mine.json", json.dumps({"schema": "brine-rules/1", "allow": [
            {"global": "mylib.layers.Block", "use": ["instantiate", "build"]}]}).encode())
        assert brine("scan", "--rules", rules, p)[0] == 0
        # the denylist cannot be allowed away
        bad = write(d, "payload.pkl", OS_SYSTEM)
        assert brine("scan", "--allow", "os.system", bad)[0] == 1


@test
def bad_rule_file_names_file_and_line():
    with tempfile.TemporaryDirectory() as d:
        rules = write(d, "bad.json", b'{\n "schema": "brine-rules/1",\n "allow": [\n  {"global": "a.b", "use": ["cal"]}\n ]\n}\n')
        rc, _, err = brine("scan", "--rules", rules, write(d, "x.pkl", b"N."))
        assert rc == 2
        assert f"{rules}:4:" in err and "unknown use" in err, err
        rc, _, err = brine("scan", "--rules", "no-such-pack", write(d, "y.pkl", b"N."))
        assert rc == 2 and "not a built-in pack" in err


@test
def limits_are_flags_and_findings():
    f = os.path.join(BENIGN, "pickle_builtin_p2.pkl")
    rc, out, _ = brine("scan", "--format", "json", "--max-opcodes", "10", f)
    doc = json.loads(out)
    assert rc == 2 and doc["files"][0]["verdict"] == "error"
    assert any(x["rule"] == "limit:max-opcodes" for x in doc["files"][0]["findings"])
    rc, out, _ = brine("scan", "--format", "json", "--max-nesting", "2", f)
    assert any(x["rule"] == "limit:max-nesting" for x in json.loads(out)["files"][0]["findings"])


@test
def disasm():
    rc, out, _ = brine("disasm", os.path.join(BENIGN, "torch_state_dict_cnn.pt"))
    assert rc == 0
    assert "pickle at offset 0 in torch_state_dict_cnn/data.pkl" in out
    assert "GLOBAL" in out and "'torch._utils _rebuild_tensor_v2'" in out
    rc, out, _ = brine("disasm", "--json", os.path.join(BENIGN, "torchscript_mlp.pt"))
    doc = json.loads(out)
    members = [p["member"] for p in doc]
    assert any(m.endswith("data.pkl") for m in members) and any(m.endswith("constants.pkl") for m in members)
    with tempfile.TemporaryDirectory() as d:
        rc, out, _ = brine("disasm", write(d, "t.pkl", b"\x80\x02K\x01"))
        assert rc == 2 and "error" in out


@test
def disasm_lists_the_scans_pickles():
    """disasm lists what the scan executes: the decompressed pickle of a gzip wrapper under the
    member name the scan's findings use, and joblib's array data as a jump, not as opcodes."""
    import gzip
    with tempfile.TemporaryDirectory() as d:
        path = write(d, "p.pkl.gz", gzip.compress(OS_SYSTEM))
        rc, out, _ = brine("disasm", "--json", path)
        doc = json.loads(out)
        assert rc == 0, rc
        assert [e["member"] for e in doc] == ["[gzip]"], doc
        assert [i["op"] for i in doc[0]["instructions"]] == ["GLOBAL", "MARK", "STRING", "TUPLE", "REDUCE", "STOP"]
        assert doc[0]["end"] == len(OS_SYSTEM) and "error" not in doc[0]
        rc, out, _ = brine("disasm", path)
        assert "--- pickle at offset 0 in [gzip] ---" in out and "'os system'" in out, out
        # the scan's verdict and findings follow the listings, with the same member name
        assert "=== scan of" in out and ": malicious (gzip" in out and "deny:os [gzip] @" in out, out

        # a joblib file: the float64 array's bytes are read by joblib itself, between BUILD and STOP
        jl = os.path.join(d, "w.joblib")
        subprocess.run(["/usr/bin/python3", "-c", "import sys, joblib, numpy; "
                        "joblib.dump({'w': numpy.arange(64, dtype=numpy.float64) * 1.5}, sys.argv[1])", jl],
                       check=True, timeout=120)
        rc, out, _ = brine("disasm", "--json", jl)
        doc = json.loads(out)
        assert rc == 0, rc
        streams = [e for e in doc if "instructions" in e]
        assert len(streams) == 1 and streams[0]["member"] == "" and "error" not in streams[0], doc
        jumps = streams[0]["jumps"]
        assert len(jumps) == 1 and jumps[0]["to"] - jumps[0]["from"] >= 64 * 8, jumps
        assert not any(jumps[0]["from"] <= i["offset"] < jumps[0]["to"] for i in streams[0]["instructions"])
        assert streams[0]["instructions"][-1]["op"] == "STOP"
        with open(jl, "rb") as f:
            assert streams[0]["end"] == len(f.read())
        rc, out, _ = brine("disasm", jl)
        assert f"raw array data [{jumps[0]['from']}, {jumps[0]['to']}) read by joblib" in out, out
        assert ": clean (" in out, out

        # a pickle the VM cannot execute: the listing ends at the refused opcode, exit 2
        rc, out, _ = brine("disasm", "--json", write(d, "u.pkl", b"\x80\x02a."))
        doc = json.loads(out)
        assert rc == 2 and doc[0]["error_kind"] == "execute" and doc[0]["instructions"][-1]["op"] == "APPEND", doc


@test
def inspect():
    rc, out, _ = brine("--help")
    assert "inspect" in out
    rc, out, _ = brine("inspect", "--help")
    for flag in ("--json", "--max-output", "--rules", "--allow", "--max-opcodes", "--timeout"):
        assert flag in out, flag
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "payload.bin", OS_SYSTEM)
        rc, out, _ = brine("inspect", bad)
        assert rc == 1, rc                                        # the scan's exit status
        assert "import os  # -> os.system" in out, out
        assert "_v1 = os.system('echo brine-test')" in out, out
        assert "result = _v1" in out and "MALICIOUS" in out and "deny:os" in out, out
        rc, out, _ = brine("inspect", "--json", bad, os.path.join(BENIGN, "torch_state_dict_mlp_legacy.pt"))
        assert rc == 1
        doc = json.loads(out)
        assert [len(f["pickles"]) for f in doc["files"]] == [1, 5]
        assert [f["report"]["verdict"] for f in doc["files"]] == ["malicious", "clean"]
        run = doc["files"][0]["pickles"][0]
        assert run["root"]["t"] == "object" and run["root"]["callable"]["name"] == "system"
        assert run["root"]["args"]["items"][0] == {"t": "str8", "hex": b"echo brine-test".hex()}
        assert [e["event"] for e in run["events"]] == ["global", "call"]
        assert doc["truncated"] is False
        # a small --max-output elides, keeps the JSON valid and says so
        rc, out, err = brine("inspect", "--json", "--max-output", "2000", os.path.join(BENIGN, "torch_state_dict_cnn.pt"))
        assert rc == 0, rc
        doc = json.loads(out)
        assert doc["truncated"] is True and "max-output" in err
        assert '"elided"' in out and len(out) < 20000, len(out)
        rc, out, _ = brine("inspect", write(d, "t.pkl", b"\x80\x02K\x01"))
        assert rc == 2 and "did not reach STOP" in out, out


@test
def symlinked_snapshot_is_scanned_file_by_file():
    # A Hugging Face cache snapshot is a folder of links into a blob store: each link to a file is
    # scanned as that file; nothing is skipped silently, loops and odd files are listed with why.
    with tempfile.TemporaryDirectory() as d:
        payload = write(d, "blobs/1111", OS_SYSTEM)
        with open(os.path.join(BENIGN, "torch_parameter.pt"), "rb") as f:
            write(d, "blobs/2222", f.read())
        snap = os.path.join(d, "snapshots", "abc")
        os.makedirs(os.path.join(snap, "sub"))
        os.symlink("../../blobs/1111", os.path.join(snap, "pytorch_model.bin"))
        os.symlink("../../../blobs/2222", os.path.join(snap, "sub", "model.pt"))
        os.symlink("../nowhere", os.path.join(snap, "dangling"))
        os.symlink("..", os.path.join(snap, "sub", "loop"))
        os.mkfifo(os.path.join(snap, "fifo"))
        write(snap, "README.md", b"# a model card\n")
        rc, out, _ = brine("scan", "--format", "json", "--no-hash", snap)
        doc = json.loads(out)
        assert rc == 1, rc
        verdicts = {os.path.relpath(f["path"], snap): f["verdict"] for f in doc["files"]}
        assert verdicts == {"pytorch_model.bin": "malicious", "sub/model.pt": "clean"}, verdicts
        skipped = {os.path.relpath(s["path"], snap): s["reason"] for s in doc["skipped"]}
        assert set(skipped) == {"dangling", "fifo", "README.md", "sub/loop"}, skipped
        assert "FIFO" in skipped["fifo"] and "not followed" in skipped["sub/loop"], skipped
        assert doc["summary"]["skipped"] == 4
        rc, out, _ = brine("scan", "-v", "--follow-symlinks", snap)
        assert "directory loop" in out and "skipped " in out, out
        assert out.count("MALICIOUS") == 1, out  # the loop is not walked again
        # A FIFO or device named on the command line is refused at once, never read until it ends.
        rc, out, _ = brine("scan", os.path.join(snap, "fifo"), "/dev/zero")
        assert rc == 2 and out.count("refused") == 2, out


@test
def limit_values_the_code_cannot_honour_are_refused():
    # value references and depths are 32-bit; the deadline must not overflow
    for flag, value in (("--max-values", "5000000000"), ("--max-nesting", "4294967296"), ("--timeout", "1e300")):
        rc, _, err = brine("scan", flag, value, os.path.join(BENIGN, "torch_parameter.pt"))
        assert rc == 2 and flag in err, (flag, rc, err)
    rc, _, _ = brine("scan", "--max-values", "1000000", os.path.join(BENIGN, "torch_parameter.pt"))
    assert rc == 0


@test
def rules_command():
    rc, out, _ = brine("rules")
    assert rc == 0 and "torch-full-model" in out and "sklearn" in out and "training-checkpoint" in out
    rc, out, _ = brine("rules", "--show", "default")
    assert rc == 0 and json.loads(out)["name"] == "default"


@test
def rules_tooling():
    rc, out, _ = brine("rules", "list")
    lines = out.splitlines()
    assert rc == 0 and any(l.startswith("allow global collections.OrderedDict ") and "from=rules/default.json:" in l for l in lines)
    assert any(l.startswith("deny  module os ") and "from=rules/denylist.json:" in l for l in lines)
    rc, out, _ = brine("rules", "list", "--rules", "sklearn", "--allow", "mylib.Net:build", "--json")
    doc = json.loads(out)
    files = {e["file"] for e in doc["entries"]}
    assert rc == 0 and {"rules/default.json", "rules/denylist.json", "rules/packs/sklearn.json", "--allow"} <= files
    rc, out, _ = brine("rules", "explain", "collections.OrderedDict")
    assert rc == 0 and out.startswith("collections.OrderedDict: allowed\n") and "rules/default.json:" in out
    rc, out, _ = brine("rules", "explain", "--json", "__builtin__.eval")
    doc = json.loads(out)
    assert rc == 1 and doc["status"] == "denied" and doc["chain"][0]["to"] == "builtins.eval", doc
    rc, out, _ = brine("rules", "explain", "mylib.Net")
    assert rc == 1 and "unlisted" in out
    rc, out, _ = brine("rules", "explain", "mylib.Net", "--allow", "mylib.Net:instantiate")
    assert rc == 0 and "uses granted: instantiate" in out
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "bad.json", b'{"schema": "brine-rules/1",\n "allow": [{"global": "a.b", "use": "cal"},\n  {"global": "x", "use": "call"}]}')
        rc, out, _ = brine("rules", "check", bad)
        assert rc == 2 and f"{bad}:2:37: unknown use" in out and f"{bad}:3:14:" in out and "2 problems" in out, out
        good = write(d, "good.json", b'{"schema": "brine-rules/1", "allow": [{"global": "a.b", "use": "call"}]}')
        rc, out, _ = brine("rules", "check", good)
        assert rc == 0 and out.endswith(": valid\n"), out


@test
def whole_corpus_main_job():
    # What the README's main command runs: every sample gets a verdict, nothing crashes.
    rc, out, _ = brine("scan", "--format", "json", "--no-hash", CORPUS)
    doc = json.loads(out)
    # 2: the corpus holds malformed samples (errors), and an error always exits 2.
    assert doc["summary"]["files"] >= 200 and doc["summary"]["error"] > 0 and rc == 2
    assert all(f["verdict"] in ("clean", "unapproved", "malicious", "error") for f in doc["files"])


@test
def jsonl_and_files_from():
    with tempfile.TemporaryDirectory() as d:
        clean = write(d, "clean.pkl", b"\x80\x02}q\x00.")
        bad = write(d, "odd name\nwith newline.bin", OS_SYSTEM)
        listed = write(d, "list0", (clean + "\0" + bad + "\0").encode())
        rc, out, _ = brine("scan", "--format", "jsonl", "--files-from", listed)
        lines = [json.loads(x) for x in out.splitlines()]
        assert rc == 1 and len(lines) == 3, (rc, out)
        assert {x["path"]: x["verdict"] for x in lines[:2]} == {clean: "clean", bad: "malicious"}
        assert all(len(x["sha256"]) == 64 for x in lines[:2])
        assert lines[2]["summary"]["files"] == 2 and lines[2]["summary"]["malicious"] == 1
        # newline-separated (no NUL in the list), from stdin, plus a path on the command line
        rc, out, _ = brine("scan", "--format", "jsonl", "--files-from", "-", clean, stdin=(clean + "\n\n" + clean + "\n").encode())
        lines = [json.loads(x) for x in out.splitlines()]
        assert rc == 0 and lines[-1]["summary"]["files"] == 3, out
        rc, _, err = brine("scan", "--files-from", os.path.join(d, "missing-list"))
        assert rc == 2 and "files-from" in err


@test
def baseline_suppresses_exactly_what_it_recorded():
    with tempfile.TemporaryDirectory() as d:
        bad = write(d, "payload.bin", OS_SYSTEM)
        other = write(d, "other.pkl", b"cevil_pkg\nrun\n(tR.")
        base = os.path.join(d, "brine-baseline.json")
        rc, _, err = brine("baseline", bad, "-o", base)
        assert rc == 0 and "1 finding" in err, err
        doc = json.load(open(base))
        assert doc["brine_baseline"] == 1 and doc["findings"][0]["rule"] == "deny:os" and len(doc["findings"][0]["sha256"]) == 64
        # the baseline's fingerprint is the SARIF result's partialFingerprints value for that finding
        rc, out, _ = brine("scan", "--format", "sarif", bad)
        sarif_fp = {r["ruleId"]: r["partialFingerprints"]["brineFinding/v1"] for r in json.loads(out)["runs"][0]["results"]}
        assert sarif_fp["deny:os"] == doc["findings"][0]["fingerprint"], (sarif_fp, doc)
        rc, out, _ = brine("scan", "--baseline", base, bad)
        assert rc == 0 and "CLEAN" in out and "1 finding accepted by the baseline" in out, out
        rc, out, _ = brine("scan", "--format", "json", "--baseline", base, bad)
        assert json.loads(out)["summary"]["suppressed"] == 1 and json.loads(out)["files"][0]["suppressed"] == 1
        # the same bytes under another name: still the accepted file
        moved = write(d, "renamed.dat", OS_SYSTEM)
        assert brine("scan", "--baseline", base, moved)[0] == 0
        # another file at the recorded path, or the same file changed: reported again
        write(d, "payload.bin", OS_SYSTEM.replace(b"echo brine-test", b"echo brine-tesT"))
        rc, out, _ = brine("scan", "--baseline", base, bad)
        assert rc == 1 and "MALICIOUS" in out, out
        assert brine("scan", "--baseline", base, other)[0] == 1
        # a new finding in an accepted file is reported (bytes after STOP change the sha256 too, so
        # build the case from the baseline itself: drop the entry's offset match)
        doc["findings"][0]["offset"] += 1
        json.dump(doc, open(base, "w"))
        assert brine("scan", "--baseline", base, moved)[0] == 1
        # errors are never accepted
        broken = write(d, "broken.pt", b"\x80\x02]q\x00(K\x01")
        rc, _, err = brine("baseline", broken, "-o", base)
        assert rc == 2 and "not accepted" in err
        # a malformed baseline is refused
        write(d, "bad.json", b"{}")
        rc, _, err = brine("scan", "--baseline", os.path.join(d, "bad.json"), moved)
        assert rc == 2 and "brine_baseline" in err, err


@test
def sanitize_refuses_outputs_over_max_output_bytes():
    # Overlapping views of one 16 KiB storage: the file holds ~150 KB, its tensors name ~16 MB.
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "views.pt")
        code = ("import sys, torch\n"
                "t = torch.arange(4096, dtype=torch.float32)\n"
                "torch.save({f'v{i}': t[i:i + 2048] for i in range(2000)}, sys.argv[1])\n")
        subprocess.run(["/usr/bin/python3", "-c", code, src], check=True, timeout=300)
        out = os.path.join(tmp, "out.safetensors")
        rc, _, err = brine("sanitize", src, "-o", out, "--max-output-bytes", "1000000")
        assert rc == 2, (rc, err)
        assert "max-output-bytes" in err and "16384000 bytes" in err, err
        assert not os.path.exists(out)
        rc, _, err = brine("sanitize", src, "-o", out)  # the default: 8x the input, at least 1 GiB
        assert rc == 0, err
        assert os.path.getsize(out) > 16_000_000


@test
def cli_reference_is_generated_from_the_help():
    # docs/cli-reference.md is tools/gen_cli_reference.py's output for this binary: regenerate it
    # (python3 tools/gen_cli_reference.py build/src/brine docs/cli-reference.md) when a flag changes.
    gen = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_cli_reference.py"), BRINE],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert gen.returncode == 0, gen.stderr
    with open(os.path.join(ROOT, "docs", "cli-reference.md"), encoding="utf-8") as f:
        assert gen.stdout.decode() == f.read(), "docs/cli-reference.md is stale: regenerate it"


def main():
    passed = failed = 0
    for t in TESTS:
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
