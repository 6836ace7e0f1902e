#!/usr/bin/env python3
"""brine as a pre-commit hook, end to end: a throwaway git repository whose .pre-commit-config.yaml
points at a committed copy of this repository's .pre-commit-hooks.yaml, `pre-commit install`, and
real `git commit`s. The brine under test is put first on PATH (language: system). Nothing is
downloaded: PRE_COMMIT_HOME is a temporary directory, the hook repository is a local path, and
proxies point at a closed port.

Checkpoints are corpus files copied under names that say nothing (weights.dat, checkpoint.bak,
blob): the hook must judge them by content.

Usage: precommit_test.py BRINE REPO_ROOT      Ends with the line "N passed, N failed".
Fails when pre-commit or git is not installed (scripts/setup.sh test installs both).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

BRINE = os.path.abspath(sys.argv[1])
ROOT = sys.argv[2]
CORPUS = os.path.join(ROOT, "corpus")
CLEAN = os.path.join(CORPUS, "benign", "torch_state_dict_mlp.pth")               # clean
UNAPPROVED = os.path.join(CORPUS, "benign", "torch_full_model_mlp.pth")          # unapproved without a pack
MALICIOUS = os.path.join(CORPUS, "malicious", "tech_torchzip_payload_in_data_pkl.pt")  # os.system in data.pkl
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def env_for(tmp):
    env = dict(os.environ)
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir, exist_ok=True)
    link = os.path.join(bindir, "brine")
    if not os.path.exists(link):
        os.symlink(BRINE, link)
    env.update({
        "PATH": bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
        "PRE_COMMIT_HOME": os.path.join(tmp, "pre-commit-home"),
        "HOME": tmp,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "brine test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "brine test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
        # Anything that tried the network would fail fast.
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "PIP_NO_INDEX": "1", "NO_COLOR": "1",
    })
    env.pop("PRE_COMMIT", None)
    return env


def run(cmd, cwd, env, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}:\n{out}")
    return p.returncode, out


class Sandbox:
    """A hook repository holding this repo's .pre-commit-hooks.yaml, and a project that uses it."""

    def __init__(self, tmp, args=None):
        self.tmp, self.env = tmp, env_for(tmp)
        hooks = os.path.join(tmp, "hook-repo")
        os.makedirs(hooks)
        shutil.copy(os.path.join(ROOT, ".pre-commit-hooks.yaml"), hooks)
        run(["git", "init", "-q", "-b", "main"], hooks, self.env)
        run(["git", "add", ".pre-commit-hooks.yaml"], hooks, self.env)
        run(["git", "commit", "-q", "-m", "hooks"], hooks, self.env)
        self.hooks, self.rev = hooks, run(["git", "rev-parse", "HEAD"], hooks, self.env)[1].strip()
        self.project = os.path.join(tmp, "project")
        os.makedirs(self.project)
        run(["git", "init", "-q", "-b", "main"], self.project, self.env)
        self.configure(args)
        self.add("README.md", b"# a project\n")
        run(["git", "commit", "-q", "-m", "init", "--no-verify"], self.project, self.env)
        run(["pre-commit", "install"], self.project, self.env)

    def configure(self, args):
        text = f"repos:\n- repo: {self.hooks}\n  rev: {self.rev}\n  hooks:\n  - id: brine\n"
        if args is not None:
            text += "    args: [" + ", ".join(f"'{a}'" for a in args) + "]\n"
        self.add(".pre-commit-config.yaml", text.encode())

    def add(self, name, data=None, copy_of=None):
        path = os.path.join(self.project, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if copy_of:
            shutil.copy(copy_of, path)
        else:
            with open(path, "wb") as f:
                f.write(data)
        run(["git", "add", "--", name], self.project, self.env)

    def head(self):
        return run(["git", "rev-parse", "HEAD"], self.project, self.env)[1].strip()

    def commit(self, message="change"):
        """(committed?, output of the commit and its hook)."""
        before = self.head()
        rc, out = run(["git", "commit", "-m", message], self.project, self.env, check=False)
        committed = self.head() != before
        assert committed == (rc == 0), out
        return committed, out


def sandbox(args=None):
    tmp = tempfile.mkdtemp(prefix="brine-precommit-")
    return tmp, Sandbox(tmp, args)


@test
def clean_checkpoint_and_other_files_pass():
    tmp, s = sandbox()
    try:
        s.add("models/weights.dat", copy_of=CLEAN)
        s.add("notes.txt", b"not a checkpoint\n")
        s.add("empty", b"")
        s.add("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64))
        s.add("paper.pdf", b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
        s.add("src/tool.py", b"import os\nprint(os.getcwd())\n")
        ok, out = s.commit()
        assert ok, out
        assert "brine" in out and "Passed" in out, out
    finally:
        shutil.rmtree(tmp)


@test
def malicious_checkpoint_is_blocked_and_shown():
    tmp, s = sandbox()
    try:
        s.add("models/weights.dat", copy_of=CLEAN)
        s.add("checkpoint.bak", copy_of=MALICIOUS)
        ok, out = s.commit()
        assert not ok, out
        assert "Failed" in out, out
        assert "checkpoint.bak: MALICIOUS" in out and "os.system" in out, out
        # Only what fails is printed (plus the summary line).
        assert "weights.dat" not in out and "README" not in out, out
        assert "2 files: 1 clean, 0 unapproved, 1 malicious, 0 errors" in out, out
    finally:
        shutil.rmtree(tmp)


@test
def unapproved_fails_by_default_and_passes_with_fail_on_malicious():
    tmp, s = sandbox()
    try:
        s.add("blob", copy_of=UNAPPROVED)
        ok, out = s.commit()
        assert not ok and "blob: UNAPPROVED" in out, out
        s.configure(["--fail-on", "malicious", "--"])
        ok, out = s.commit()
        assert ok, out
        # --fail-on malicious still blocks a malicious file.
        s.add("more/state", copy_of=MALICIOUS)
        ok, out = s.commit()
        assert not ok and "more/state: MALICIOUS" in out, out
    finally:
        shutil.rmtree(tmp)


@test
def unreadable_checkpoint_is_blocked():
    tmp, s = sandbox(["--fail-on", "malicious", "--"])
    try:
        s.add("broken.pt", b"\x80\x02]q\x00(K\x01")  # a pickle cut short: an error, whatever --fail-on says
        ok, out = s.commit()
        assert not ok and "broken.pt: ERROR" in out, out
    finally:
        shutil.rmtree(tmp)


@test
def file_names_are_never_options():
    # Staged files named like brine options must be scanned, not obeyed: `--help` would exit 0,
    # `--fail-on=malicious` would let an unapproved file through.
    tmp, s = sandbox()
    try:
        s.add("--help", copy_of=MALICIOUS)
        s.add("--fail-on=malicious", b"x\n")
        s.add("model", copy_of=UNAPPROVED)
        ok, out = s.commit()
        assert not ok, out
        assert "--help: MALICIOUS" in out and "model: UNAPPROVED" in out, out
    finally:
        shutil.rmtree(tmp)


@test
def try_repo_on_this_repository():
    # `pre-commit try-repo` runs the hook straight from this repository (its working tree, as
    # pre-commit copies it), on the files named: how a user tries the hook before adopting it.
    tmp = tempfile.mkdtemp(prefix="brine-tryrepo-")
    try:
        env = env_for(tmp)
        project = os.path.join(tmp, "project")
        os.makedirs(project)
        run(["git", "init", "-q", "-b", "main"], project, env)
        shutil.copy(MALICIOUS, os.path.join(project, "weights.bin"))
        shutil.copy(CLEAN, os.path.join(project, "ok.data"))
        run(["git", "add", "."], project, env)
        rc, out = run(["pre-commit", "try-repo", os.path.abspath(ROOT), "brine", "--files", "weights.bin", "ok.data"],
                      project, env, check=False)
        assert rc != 0 and "weights.bin: MALICIOUS" in out and "ok.data" not in out.split("weights.bin")[-1], out
        rc, out = run(["pre-commit", "try-repo", os.path.abspath(ROOT), "brine", "--files", "ok.data"], project, env, check=False)
        assert rc == 0 and "Passed" in out, out
    finally:
        shutil.rmtree(tmp)


def main():
    for tool in ("pre-commit", "git"):
        if shutil.which(tool) is None:
            # A skipped integration test is a failure: scripts/setup.sh test installs both.
            print(f"FAIL {tool} is not installed (scripts/setup.sh test installs it)")
            print("0 passed, 1 failed")
            return 1
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
