#!/usr/bin/env python3
"""brine's machine-readable reports against their schemas, and SARIF against the JSON report.

* `brine scan --format sarif corpus/` is valid against the OASIS SARIF 2.1.0 schema
  (tests/schemas/sarif-2.1.0.json), and says what the JSON report of the same scan says: one rule
  per rule id, every result's ruleId a rule, byteOffset = the finding's offset, levels, member
  logical locations, clean files without results, error-level results for malicious and broken
  files, and fingerprints as docs/sarif.md defines them (recomputed here), stable across runs.
* `brine scan --format json` (with and without --no-hash) is valid against
  docs/schemas/scan-report.schema.json; `--format jsonl`, when `brine scan --help` lists it, line
  by line against docs/schemas/scan-report-line.schema.json (otherwise a NOTE line, not a pass).

Validation runs Ajv (tests/schemas/validate.js; installed by tests/schemas/install.sh, which
scripts/setup.sh test runs). A missing node or Ajv fails the cases that need it: nothing is skipped.

Usage: schema_test.py BRINE REPO_ROOT      Ends with the line "N passed, N failed".
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import urllib.parse

BRINE = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
SCHEMAS = os.path.join(ROOT, "tests", "schemas")
SARIF_SCHEMA = os.path.join(SCHEMAS, "sarif-2.1.0.json")
REPORT_SCHEMA = os.path.join(ROOT, "docs", "schemas", "scan-report.schema.json")
LINE_SCHEMA = os.path.join(ROOT, "docs", "schemas", "scan-report-line.schema.json")
VALIDATE = os.path.join(SCHEMAS, "validate.js")

OS_SYSTEM = b"cos\nsystem\n(S'echo brine-test'\ntR."
LEVEL = {"malicious": "error", "error": "error", "unapproved": "warning"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
TESTS = []
NOTES = []  # cases that did not run: printed as NOTE lines, counted neither way
WORK = tempfile.mkdtemp(prefix="brine-schema-test-")


def test(fn):
    TESTS.append(fn)
    return fn


def brine(*args, cwd=ROOT):
    p = subprocess.run([BRINE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, timeout=600)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def ajv(*args):
    """Runs validate.js; raises with its output when a document is invalid."""
    node = shutil.which("node")
    assert node, "node is not installed (Debian: apt-get install nodejs npm)"
    assert os.path.isdir(os.path.join(SCHEMAS, "node_modules", "ajv")), f"ajv is not installed (run {SCHEMAS}/install.sh)"
    p = subprocess.run([node, VALIDATE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out[-4000:]
    assert "valid: " in out, out
    return out


_cache = {}


def corpus_run(fmt, *extra):
    """`brine scan --format FMT corpus/` from the repository root (paths relative), cached."""
    key = (fmt, *extra)
    if key not in _cache:
        out_path = os.path.join(WORK, f"corpus-{len(_cache)}.{fmt}")
        rc, _, err = brine("scan", "--format", fmt, *extra, "-o", out_path, "corpus/")
        assert rc in (1, 2), f"exit {rc}: {err}"  # the corpus has malicious and (2) error samples
        with open(out_path, encoding="utf-8") as f:
            text = f.read()
        _cache[key] = (out_path, text, rc)
    return _cache[key][:2]


def corpus_rc(fmt):
    corpus_run(fmt)
    return _cache[(fmt,)][2]


def sarif_doc():
    return json.loads(corpus_run("sarif")[1])


def json_doc():
    return json.loads(corpus_run("json")[1])


def artifact_path(location):
    uri = location["uri"]
    if uri.startswith("file://"):
        assert "uriBaseId" not in location
        return urllib.parse.unquote(uri[len("file://"):], errors="surrogateescape")
    assert location.get("uriBaseId") == "%SRCROOT%", location
    return urllib.parse.unquote(uri, errors="surrogateescape")


def fingerprint(sha256, path, rule, global_, member, offset):
    """docs/sarif.md, "Fingerprint", written independently of src/report/fingerprint.cpp."""
    tuple_ = b"brine-finding/1\n"
    for field in (sha256 if sha256 else "path:" + path, rule, global_ or "", member or "", str(offset)):
        data = field.encode("utf-8", "surrogateescape")
        tuple_ += str(len(data)).encode() + b":" + data + b"\n"
    return hashlib.sha256(tuple_).hexdigest()


def timed_out(findings, results):
    """The SARIF and the JSON report come from two scans. A file that hit a resource limit (the
    per-file time limit on a loaded machine, e.g. for a decompression bomb) may get other findings
    in the other scan: such a file is compared only when both scans agree on its rules."""
    limited = any(x["rule"].startswith("limit:") for x in findings) or any(r["ruleId"].startswith("limit:") for r in results)
    return limited and [x["rule"] for x in findings] != [r["ruleId"] for r in results]


def results_by_path(run):
    by_path = {}
    for r in run["results"]:
        loc = r["locations"][0]["physicalLocation"]["artifactLocation"]
        by_path.setdefault(artifact_path(loc), []).append(r)
    return by_path


# ----------------------------------------------------------------------------------- SARIF --

@test
def sarif_of_the_corpus_is_valid_sarif_2_1_0():
    with open(SARIF_SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"  # validate.js picks ajv-draft-04
    ajv(SARIF_SCHEMA, corpus_run("sarif")[0])
    doc = sarif_doc()
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    driver = doc["runs"][0]["tool"]["driver"]
    rc, version, _ = brine("--version")
    assert driver["name"] == "brine" and version.split()[1] == driver["version"], (driver["version"], version)
    assert driver["informationUri"]


@test
def validator_rejects_what_the_schema_forbids():
    # The validation above means something: a level SARIF does not have and a result without a message fail.
    doc = sarif_doc()
    doc["runs"][0]["results"][0]["level"] = "fatal"
    del doc["runs"][0]["results"][1]["message"]
    bad = os.path.join(WORK, "bad.sarif")
    with open(bad, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    try:
        ajv(SARIF_SCHEMA, bad)
    except AssertionError as e:
        assert "level" in str(e) and "message" in str(e), e
    else:
        raise AssertionError("an invalid SARIF document passed")


@test
def one_rule_per_rule_id_and_every_result_names_one():
    run = sarif_doc()["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(ids) == len(set(ids)), "duplicate rule ids"
    assert ids == sorted(ids)
    used = {r["ruleId"] for r in run["results"]}
    assert used == set(ids), (used ^ set(ids))
    for r in run["results"]:
        assert ids[r["ruleIndex"]] == r["ruleId"], r["ruleId"]
    for rule in run["tool"]["driver"]["rules"]:
        for key in ("shortDescription", "fullDescription", "help"):
            assert rule[key]["text"], (rule["id"], key)
        assert rule["defaultConfiguration"]["level"] in ("error", "warning"), rule
        assert rule["properties"]["security-severity"] == SECURITY_SEVERITY[rule["properties"]["severity"]], rule
        assert "security" in rule["properties"]["tags"]
    # Deny rules describe the deny entry (rules/denylist.json), not a generic text.
    deny_os = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "deny:os")
    assert "shell commands" in deny_os["fullDescription"]["text"], deny_os
    assert deny_os["properties"]["security-severity"] == "9.5" and deny_os["defaultConfiguration"]["level"] == "error"


@test
def results_say_what_the_json_report_says():
    run = sarif_doc()["runs"][0]
    report = json_doc()
    by_path = results_by_path(run)
    artifacts = {artifact_path(a["location"]): a for a in run["artifacts"]}
    assert len(artifacts) == len(report["files"]) == run["properties"]["summary"]["files"]
    checked = timed = 0
    for f in report["files"]:
        art = artifacts[f["path"]]
        assert art["length"] == f["size"]
        if f["sha256"]:
            assert art["hashes"]["sha-256"] == f["sha256"]
        findings = [x for x in f["findings"] if x["impact"] != "clean"]  # informational: not results
        results = by_path.get(f["path"], [])
        if timed_out(findings, results):
            timed += 1
            continue
        assert len(results) == len(findings), (f["path"], len(results), len(findings))
        if f["verdict"] == "clean":
            assert not results, f["path"]
        for x, r in zip(findings, results):
            loc = r["locations"][0]
            region = loc["physicalLocation"]["region"]
            assert r["ruleId"] == x["rule"], (f["path"], r["ruleId"], x["rule"])
            assert region["byteOffset"] == x["offset"] and region["byteLength"] == 1, (f["path"], region, x)
            assert r["level"] == LEVEL[x["impact"]], (f["path"], r["level"], x["impact"])
            assert x["message"] in r["message"]["text"]
            if x["global"]:
                assert x["global"] in r["message"]["text"]
            if x["call"]:
                assert x["call"] in r["message"]["text"]
            if x["member"]:
                (logical,) = loc["logicalLocations"]
                assert logical["fullyQualifiedName"] == x["member"] and logical["kind"] == "member"
            else:
                assert "logicalLocations" not in loc
            assert run["artifacts"][loc["physicalLocation"]["artifactLocation"]["index"]] is art
            checked += 1
    assert checked >= 300 and timed <= 3, (checked, timed)


@test
def fingerprints_follow_their_definition_and_are_unique():
    run = sarif_doc()["runs"][0]
    report = json_doc()
    by_path = results_by_path(run)
    seen = {}
    for f in report["files"]:
        findings = [x for x in f["findings"] if x["impact"] != "clean"]
        if timed_out(findings, by_path.get(f["path"], [])):
            continue
        for x, r in zip(findings, by_path.get(f["path"], [])):
            fp = r["partialFingerprints"]["brineFinding/v1"]
            if "\ufffd" not in (x["global"] or "") + (x["member"] or "") + x["rule"]:
                assert fp == fingerprint(f["sha256"], f["path"], x["rule"], x["global"], x["member"], x["offset"]), (f["path"], x)
            # Identical files in two places share their fingerprints by design (the path is not in it).
            key = (f["sha256"], x["rule"], x["global"], x["member"], x["offset"])
            assert seen.setdefault(fp, key) == key, (fp, key, seen[fp])
    assert len(seen) >= 300


@test
def fingerprints_are_stable_across_runs_and_differ_with_the_offset():
    first = {}
    for path, results in results_by_path(sarif_doc()["runs"][0]).items():
        if path.startswith("corpus/malicious/"):
            first[path] = [r["partialFingerprints"]["brineFinding/v1"] for r in results]
    out = os.path.join(WORK, "malicious.sarif")
    rc, _, err = brine("scan", "--format", "sarif", "-o", out, "corpus/malicious")
    assert rc in (1, 2), err
    with open(out, encoding="utf-8") as f:
        second = {p: [r["partialFingerprints"]["brineFinding/v1"] for r in rs]
                  for p, rs in results_by_path(json.load(f)["runs"][0]).items()}
    assert len(first) >= 100 and first == second
    # The same payload one byte further on: the file and the offset differ, so does the fingerprint;
    # the same bytes under another name keep it.
    d = tempfile.mkdtemp(dir=WORK)
    with open(os.path.join(d, "a.pkl"), "wb") as f:
        f.write(OS_SYSTEM)
    with open(os.path.join(d, "b.pkl"), "wb") as f:
        f.write(b"(" + OS_SYSTEM[:-1] + b"0.")  # MARK ... POP: the call one byte later
    with open(os.path.join(d, "c.pkl"), "wb") as f:
        f.write(OS_SYSTEM)
    rc, out, err = brine("scan", "--format", "sarif", "a.pkl", "b.pkl", "c.pkl", cwd=d)
    assert rc == 1, err
    res = results_by_path(json.loads(out)["runs"][0])
    a = {r["ruleId"]: r for r in res["a.pkl"]}
    b = {r["ruleId"]: r for r in res["b.pkl"]}
    c = {r["ruleId"]: r for r in res["c.pkl"]}
    assert a["deny:os"]["locations"][0]["physicalLocation"]["region"]["byteOffset"] + 1 == \
        b["deny:os"]["locations"][0]["physicalLocation"]["region"]["byteOffset"]
    assert a["deny:os"]["partialFingerprints"] != b["deny:os"]["partialFingerprints"]
    assert a["deny:os"]["partialFingerprints"] == c["deny:os"]["partialFingerprints"]


@test
def malicious_and_broken_files_are_error_results():
    run = sarif_doc()["runs"][0]
    by_path = results_by_path(run)
    report = {f["path"]: f for f in json_doc()["files"]}
    mal = [p for p, f in report.items() if p.startswith("corpus/malicious/") and f["verdict"] == "malicious"]
    assert len(mal) >= 100
    for p in mal:
        assert any(r["level"] == "error" for r in by_path[p]), p
    errors = [p for p, f in report.items() if f["verdict"] == "error"]
    assert errors
    for p in errors:
        assert any(r["level"] == "error" and r["properties"]["impact"] == "error" for r in by_path[p]), p
    unapproved = [p for p, f in report.items() if f["verdict"] == "unapproved"]
    assert unapproved
    for p in unapproved:
        levels = {r["level"] for r in by_path[p]}
        assert levels == {"warning"}, (p, levels)


@test
def invocation_and_skipped_files():
    run = sarif_doc()["runs"][0]
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is True and inv["exitCode"] == corpus_rc("sarif") == 2
    report = json_doc()
    skipped = [n for n in inv["toolExecutionNotifications"] if n["message"]["text"].startswith("skipped: ")]
    assert len(skipped) == len(report["skipped"]) == run["properties"]["summary"]["skipped"]
    for n, s in zip(skipped, report["skipped"]):
        assert n["level"] == "note"
        assert artifact_path(n["locations"][0]["physicalLocation"]["artifactLocation"]) == s["path"]
        assert n["message"]["text"] == "skipped: " + s["reason"]


@test
def clean_scan_has_no_results_and_exit_0():
    d = tempfile.mkdtemp(dir=WORK)
    with open(os.path.join(d, "ok.pkl"), "wb") as f:
        f.write(b"\x80\x04K\x01.")
    rc, out, err = brine("scan", "--format", "sarif", "ok.pkl", cwd=d)
    assert rc == 0, err
    run = json.loads(out)["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0]["exitCode"] == 0 and len(run["artifacts"]) == 1


@test
def hostile_names_and_strings_stay_valid():
    # A path with a space, '#', '%', '?' and a byte that is not UTF-8, an absolute path, and a global
    # whose name is not UTF-8: the document is still valid SARIF and the URIs decode to the paths.
    d = tempfile.mkdtemp(dir=WORK)
    name = b"we ird#%?\xff.pkl"
    with open(os.path.join(d.encode(), name), "wb") as f:
        f.write(OS_SYSTEM)
    with open(os.path.join(d, "bad_utf8.pkl"), "wb") as f:
        f.write(b"c\xff\xfemod\nna\xc3\x28me\n.")
    p = subprocess.run([BRINE, "scan", "--format", "sarif", name, os.path.join(d, "bad_utf8.pkl")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=d, timeout=120)
    assert p.returncode in (1, 2), p.stderr
    out = os.path.join(WORK, "hostile.sarif")
    with open(out, "wb") as f:
        f.write(p.stdout)
    ajv(SARIF_SCHEMA, out)
    run = json.loads(p.stdout.decode("utf-8"))["runs"][0]
    uris = [a["location"] for a in run["artifacts"]]
    assert uris[0]["uri"] == "we%20ird%23%25%3F%FF.pkl" and uris[0]["uriBaseId"] == "%SRCROOT%", uris[0]
    assert artifact_path(uris[0]).encode("utf-8", "surrogateescape") == name
    assert uris[1]["uri"].startswith("file:///") and artifact_path(uris[1]) == os.path.join(d, "bad_utf8.pkl")
    assert len(results_by_path(run)) == 2


# ----------------------------------------------------------------------------- JSON / JSONL --

@test
def json_report_of_the_corpus_is_valid():
    ajv(REPORT_SCHEMA, corpus_run("json")[0])
    # --no-hash (sha256 null) over the quick part of the corpus (corpus/containers' bombs take a minute).
    out = os.path.join(WORK, "nohash.json")
    rc, _, err = brine("scan", "--format", "json", "--no-hash", "-o", out, "corpus/malicious", "corpus/benign")
    assert rc in (1, 2), err
    ajv(REPORT_SCHEMA, out)
    with open(out, encoding="utf-8") as f:
        files = json.load(f)["files"]
    assert len(files) >= 150 and all(f["sha256"] is None for f in files)


@test
def json_report_schema_is_strict():
    # Every field is listed (additionalProperties false): a field the schema does not know fails.
    doc = json_doc()
    doc["files"][0]["findings"].append(dict(doc["files"][1]["findings"][0] if doc["files"][1]["findings"] else
                                            {"rule": "x", "severity": "low", "impact": "clean", "global": None, "use": None,
                                             "call": None, "member": None, "offset": 0, "opcode": None, "message": "",
                                             "count": 1}, extra=1))
    doc["files"][2]["verdict"] = "fine"
    bad = os.path.join(WORK, "bad.json")
    with open(bad, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    try:
        ajv(REPORT_SCHEMA, bad)
    except AssertionError as e:
        assert "additional" in str(e) and "verdict" in str(e), e
    else:
        raise AssertionError("an invalid report passed")


class NotRun(Exception):
    """A case whose subject does not exist in this build: a NOTE line, neither a pass nor a failure."""


@test
def line_schema_accepts_the_json_report_as_lines():
    # The JSON report's files and summary, one per line, are what --format jsonl writes.
    doc = json_doc()
    built = os.path.join(WORK, "built.jsonl")
    with open(built, "w", encoding="utf-8") as f:
        for x in doc["files"]:
            f.write(json.dumps(x) + "\n")
        f.write(json.dumps({"brine_version": doc["brine_version"], "summary": doc["summary"], "skipped": doc["skipped"]}) + "\n")
    ajv("--lines", "--ref", REPORT_SCHEMA, LINE_SCHEMA, built)
    with open(built, "a", encoding="utf-8") as f:
        f.write(json.dumps({"summary": doc["summary"], "files": []}) + "\n")
    try:
        ajv("--lines", "--ref", REPORT_SCHEMA, LINE_SCHEMA, built)
    except AssertionError as e:
        assert f"{built}:{len(doc['files']) + 2}" in str(e), e
    else:
        raise AssertionError("an invalid line passed")


@test
def jsonl_output_is_valid():
    rc, out, _ = brine("scan", "--help")
    assert rc == 0
    if "jsonl" not in out:
        raise NotRun("`brine scan --help` does not list jsonl: --format jsonl output not validated")
    path, text = corpus_run("jsonl")
    ajv("--lines", "--ref", REPORT_SCHEMA, LINE_SCHEMA, path)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "summary" in lines[-1] and all("summary" not in x for x in lines[:-1])
    # Lines come in completion order (-j): the same files as the JSON report, in any order.
    assert sorted(x["path"] for x in lines[:-1]) == sorted(f["path"] for f in json_doc()["files"])


def main():
    passed = failed = 0
    try:
        for t in TESTS:
            try:
                t()
                passed += 1
                print(f"ok   {t.__name__}")
            except NotRun as e:
                NOTES.append(f"NOTE {t.__name__}: not run: {e}")
            except Exception:
                failed += 1
                print(f"FAIL {t.__name__}")
                traceback.print_exc()
        for n in NOTES:
            print(n)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
