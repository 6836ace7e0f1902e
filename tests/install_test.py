#!/usr/bin/env python3
"""`meson install` into a temporary DESTDIR: the binary, the man page and bash completion generated
from the binary's own --help (dist/meson.build), and the rule files. Checks that the man page renders
and lists every option every subcommand's --help lists, and that the completion script parses and
completes.

Usage: install_test.py MESON BUILD_ROOT SOURCE_ROOT BRINE   Ends with the line "N passed, N failed".
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

MESON, BUILD, SOURCE, BRINE = sys.argv[1:5]
sys.path.insert(0, os.path.join(SOURCE, "tools"))
import cli_help  # noqa: E402

TESTS = []
DEST = tempfile.mkdtemp(prefix="brine-install-")


def test(fn):
    TESTS.append(fn)
    return fn


def options():
    data = json.loads(subprocess.run([MESON, "introspect", BUILD, "--buildoptions"], check=True,
                                     capture_output=True, text=True).stdout)
    return {o["name"]: o["value"] for o in data}


OPT = options()


def installed(*parts):
    """The DESTDIR path of a file installed under prefix/parts."""
    rel = os.path.join(OPT["prefix"], *parts).lstrip("/")
    return os.path.join(DEST, rel)


MAN = installed(OPT["mandir"], "man1", "brine.1")
COMPLETION = installed(OPT["datadir"], "bash-completion", "completions", "brine")


def install():
    p = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild", "--destdir", DEST],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


@test
def binary_is_installed_and_runs():
    exe = installed(OPT["bindir"], "brine")
    assert os.access(exe, os.X_OK), exe
    out = subprocess.run([exe, "--version"], check=True, capture_output=True, text=True).stdout
    assert out == subprocess.run([BRINE, "--version"], check=True, capture_output=True, text=True).stdout


@test
def installed_brine_serve_reaches_the_serve_program():
    # `brine serve` execs brine-serve from the prefix's libexec folder; that program, not brine,
    # reports a --listen it cannot use (brine only checks the option's syntax).
    helper = installed(OPT["libexecdir"], "brine-serve")
    assert os.access(helper, os.X_OK), helper
    exe = installed(OPT["bindir"], "brine")
    p = subprocess.run([exe, "serve", "--listen", "no-port-here", "--no-default-rules"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "--listen wants HOST:PORT" in p.stderr, (p.returncode, p.stderr)
    # Without it, brine says what is missing instead of failing obscurely.
    os.rename(helper, helper + ".moved")
    try:
        p = subprocess.run([exe, "serve"], capture_output=True, text=True, timeout=60)
    finally:
        os.rename(helper + ".moved", helper)
    assert p.returncode == 2 and "brine-serve" in p.stderr, (p.returncode, p.stderr)


@test
def rule_files_are_installed_as_shipped():
    rules = os.path.join(SOURCE, "rules")
    shipped = sorted(glob.glob(os.path.join(rules, "*.json")) + glob.glob(os.path.join(rules, "packs", "*.json")))
    assert len(shipped) >= 4, shipped
    for src in shipped:
        dst = installed(OPT["datadir"], "brine", "rules", os.path.relpath(src, rules))
        with open(src, "rb") as a, open(dst, "rb") as b:
            assert a.read() == b.read(), dst


def render(page):
    env = dict(os.environ, MANWIDTH="300", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    if shutil.which("man"):
        p = subprocess.run(["man", "-l", page], env=env, capture_output=True, text=True)
    else:
        p = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", page], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return re.sub(r".\x08", "", p.stdout)  # any overstrike left


@test
def man_page_renders_and_lists_every_option():
    assert os.path.isfile(MAN), MAN
    warnings = subprocess.run(["groff", "-man", "-ww", "-z", MAN], capture_output=True, text=True)
    assert warnings.returncode == 0 and warnings.stderr == "", warnings.stderr
    text = render(MAN)
    top, subs, version = cli_help.read_cli(BRINE)
    assert text.startswith("BRINE(1)") and "NAME" in text and "SYNOPSIS" in text, text[:500]
    assert version in text
    assert set(subs) >= {"scan", "disasm", "inspect", "sanitize", "rules"}, subs
    words = set(re.findall(r"[\w.\-]+", text))
    for sub, h in subs.items():
        assert "brine " + sub in text, sub
        for item in h.options():
            for flag in item.flags:  # as ASCII hyphens: what a reader types
                assert flag in words, (sub, flag)
    # The page is the binary's help, not a copy: the description of --fail-on is there verbatim.
    fail_on = [i for i in subs["scan"].options() if "--fail-on" in i.flags]
    assert fail_on and " ".join(fail_on[0].description.split()) in " ".join(text.split())


def complete(line):
    """What the installed completion offers for `line` (the word at its end)."""
    script = f"""
source {COMPLETION!r}
line={line!r}
read -ra COMP_WORDS <<<"$line"
[[ $line == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
$(complete -p brine | sed -E 's/.* -F ([^ ]+) .*/\\1/')
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, cwd=DEST)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.split("\n") if w]


@test
def bash_completion_parses_and_completes():
    assert os.path.isfile(COMPLETION), COMPLETION
    p = subprocess.run(["bash", "-n", COMPLETION], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["bash", "--norc", "-c", f"source {COMPLETION!r} && complete -p brine"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip().endswith(" brine") and "-F " in p.stdout, p.stdout + p.stderr
    assert complete("brine sc") == ["scan"]
    assert complete("brine di") == ["disasm"]
    assert set(complete("brine ")) >= {"scan", "disasm", "inspect", "sanitize", "rules"}
    assert complete("brine scan --fail") == ["--fail-on"]
    assert complete("brine scan --skip") == ["--skip-unrecognized"]
    assert sorted(complete("brine scan --fail-on ")) == ["malicious", "unapproved"]
    assert complete("brine scan -f t") == ["text"]
    assert {"sklearn", "torch-full-model", "training-checkpoint"} <= set(complete("brine scan --rules "))
    assert complete("brine scan --max-opcodes ") == []
    assert complete("brine sanitize x.pt --to o") == ["onnx"]


def main():
    passed = failed = 0
    try:
        install()
        for t in TESTS:
            try:
                t()
                passed += 1
                print(f"ok   {t.__name__}")
            except Exception:
                failed += 1
                print(f"FAIL {t.__name__}")
                traceback.print_exc()
    finally:
        shutil.rmtree(DEST, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
