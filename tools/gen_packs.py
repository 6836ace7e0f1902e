#!/usr/bin/env python3
"""Writes rules/packs/sklearn.json and rules/packs/torch-full-model.json from the library versions
installed by Debian (python3-sklearn, python3-torch, python3-scipy; torchvision and omegaconf are
used only when installed). Run with Debian's /usr/bin/python3:

    /usr/bin/python3 tools/gen_packs.py BRINE

A pack approves an exact list of module.qualname globals -- never a module prefix -- because a
module approves everything importable through it (re-exports of os, subprocess, functools.partial,
joblib.load ...). For each pack:

  1. the classes: every class reachable from a public module of the library that subclasses the
     library's base class (sklearn BaseEstimator, torch nn.Module), named where it is defined
     (cls.__module__ + cls.__qualname__, which is what pickle writes);
  2. real pickles: the classes are instantiated and fitted on tiny data where possible and pickled
     with every protocol; the helper globals those pickles import (find_class events, recorded by
     an Unpickler subclass on our own pickles) and the uses brine sees for them are added -- but
     only for globals of the library's own namespaces that no deny entry covers;
  3. state rules: a class's BUILD state is a dict (vars(self)) with non-dunder keys; every global
     or call inside it must be approved for `state-value`, which only the classes and helpers
     found in real states get;
  4. re-exports: every name importable from an approved module that is really another module's
     object (a module, or a class/function whose __module__ differs) is mapped to its canonical
     name, so brine judges -- and denies -- the object itself.
The library versions are recorded in each pack ("versions").
"""
import collections
import copyreg
import importlib
import io
import json
import os
import pickle
import pkgutil
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def public_modules(package, skip=("tests", "externals", "conftest", "setup"), private=False):
    pkg = importlib.import_module(package)
    out = [package]
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        parts = info.name.split(".")
        if any((p.startswith("_") and not private) or p in skip for p in parts[1:]):
            continue
        out.append(info.name)
    mods = []
    for name in out:
        try:
            mods.append(importlib.import_module(name))
        except Exception:
            pass
    return mods


def canonical_of(obj):
    """module.qualname where obj is defined, if that name really resolves to obj."""
    if isinstance(obj, type(os)):
        return obj.__name__
    mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(mod, str) or not isinstance(qual, str) or "<" in qual:
        return None
    try:
        target = importlib.import_module(mod)
        for part in qual.split("."):
            target = getattr(target, part)
    except Exception:
        return None
    return f"{mod}.{qual}" if target is obj else None


def reexports(modules):
    table = {}
    for m in modules:
        for name in dir(m):
            if name.startswith("__"):
                continue
            try:
                obj = getattr(m, name)
            except Exception:
                continue
            if not (isinstance(obj, (type, type(os))) or callable(obj)):
                continue
            canon = canonical_of(obj)
            here = f"{m.__name__}.{name}"
            if canon and canon != here:
                table[here] = canon
    return table


def classes_under(modules, base, prefix):
    found = {}
    for m in modules:
        for name in dir(m):
            obj = getattr(m, name, None)
            if isinstance(obj, type) and issubclass(obj, base) and obj.__module__.startswith(prefix):
                canon = canonical_of(obj)
                if canon:
                    found[canon] = obj
    return found


class Recorder(pickle.Unpickler):
    """Records the globals our own pickles import (only ever run on pickles made here)."""

    def __init__(self, data, seen):
        super().__init__(io.BytesIO(data))
        self.seen = seen

    def find_class(self, module, name):
        self.seen.add(f"{module}.{name}")
        return super().find_class(module, name)


def brine_findings(brine, files, pack_path):
    out = []
    for i in range(0, len(files), 200):
        proc = subprocess.run([brine, "scan", "--format", "json", "--no-hash", "--rules", pack_path] + files[i:i + 200],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
        report = json.loads(proc.stdout)
        for f in report["files"]:
            out.extend((f["path"], x) for x in f["findings"])
    return out


def denied(name, deny):
    for d in deny:
        t = d.get("global") or d.get("module")
        if name == t or name.startswith(t + "."):
            return True
    return False


def derive(brine, pack, samples, allowed_ns, deny, hand_callables, max_rounds=6):
    """Adds the uses brine reports missing, for globals of the allowed namespaces, until none."""
    by_name = {e["global"]: e for e in pack["allow"]}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, data in enumerate(samples):
            p = os.path.join(tmp, f"s{i}.pkl")
            with open(p, "wb") as f:
                f.write(data)
            files.append(p)
        pack_path = os.path.join(tmp, "pack.json")
        for _ in range(max_rounds):
            with open(pack_path, "w") as f:
                json.dump(pack, f)
            changed = False
            leftovers = collections.Counter()
            for path, x in brine_findings(brine, files, pack_path):
                g, uses = x.get("global"), [u.strip() for u in (x.get("use") or "").split(",") if u.strip()]
                if x["rule"] != "unapproved-global" or not g:
                    if x.get("impact") not in (None, "clean"):
                        leftovers[(x["rule"], g)] += 1
                    continue
                if denied(g, deny) or not any(g.startswith(ns) for ns in allowed_ns):
                    leftovers[(x["rule"], g, tuple(uses))] += 1
                    continue
                # calls need a hand-written ARGSPEC: never grant a bare "call"
                if "call" in uses and g not in hand_callables:
                    leftovers[(x["rule"], g, tuple(uses))] += 1
                    uses = [u for u in uses if u != "call"]
                if not uses:
                    continue
                e = by_name.get(g)
                if e is None:
                    e = {"global": g, "use": [], "note": "helper global found in real pickles"}
                    if "build" in uses:
                        e["state"] = {"shapes": ["dict", "slots"], "keys": "*"}
                    by_name[g] = e
                    pack["allow"].append(e)
                for u in uses:
                    if u not in e["use"]:
                        e["use"].append(u)
                        changed = True
                        if u == "build" and "state" not in e:
                            e["state"] = {"shapes": ["dict", "slots"], "keys": "*"}
                        if u == "instantiate" and "args" not in e and e["global"] not in hand_callables:
                            e["args"] = {"max": 0}
            if not changed:
                break
        with open(pack_path, "w") as f:
            json.dump(pack, f)
        verdicts = collections.Counter()
        for i in range(0, len(files), 200):
            proc = subprocess.run([brine, "scan", "--format", "json", "--no-hash", "--rules", pack_path] + files[i:i + 200],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900)
            verdicts.update(f["verdict"] for f in json.loads(proc.stdout)["files"])
        print(f"  sample pickles by verdict with the pack: {dict(verdicts)}", file=sys.stderr)
        for k, n in sorted(leftovers.items(), key=str):
            print(f"  not granted ({n}x): {k}", file=sys.stderr)


def pickles_of(objs):
    out = []
    for o in objs:
        for proto in (2, 4, 5):
            try:
                out.append(pickle.dumps(o, protocol=proto))
            except Exception:
                pass
    return out


def record(samples):
    seen = set()
    for data in samples:
        try:
            Recorder(data, seen).load()
        except Exception:
            pass
    return seen


# ---------------------------------------------------------------- sklearn

def sklearn_samples():
    import numpy as np
    from sklearn.utils import all_estimators
    rng = np.random.RandomState(0)
    X = rng.rand(40, 4)
    y = (X[:, 0] > 0.5).astype(int)
    yr = X[:, 1] * 3.0
    import signal

    def timeout(signum, frame):
        raise TimeoutError

    signal.signal(signal.SIGALRM, timeout)
    objs = []
    for name, cls in all_estimators():
        try:
            est = cls()
        except Exception:
            continue
        objs.append(est)  # unfitted too
        for target in (y, yr, None):
            try:
                signal.alarm(5)
                try:
                    fitted = cls().fit(X, target) if target is not None else cls().fit(X)
                finally:
                    signal.alarm(0)
                objs.append(fitted)
                break
            except BaseException:
                continue
    # the corpus's examples (corpus/make_benign.py), with a RandomState and a pipeline
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    objs.append(KMeans(n_clusters=2, n_init=2, random_state=np.random.RandomState(0)).fit(X))
    objs.append(Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(X, y))
    return pickles_of(objs)


def sklearn_pack(brine, deny):
    import numpy
    import scipy
    import sklearn
    from sklearn.base import BaseEstimator
    mods = public_modules("sklearn")
    classes = classes_under(mods, BaseEstimator, "sklearn.")
    old = json.load(open(os.path.join(ROOT, "tools/packs_hand/sklearn.json")))
    hand = {e["global"]: e for e in old["allow"]}
    allow = []
    for name in sorted(classes):
        allow.append({"global": name, "use": ["instantiate", "build", "state-value"], "args": {"max": 0},
                      "state": {"shapes": ["dict"], "keys": "*"},
                      "note": "estimator: cls.__new__(cls) then __setstate__(vars(self)); nested estimators are state values"})
    for name, e in hand.items():
        if name in classes:
            continue
        e = dict(e)
        if "build" in e["use"] and "state" not in e:
            e["state"] = {"shapes": ["dict", "slots", "tuple", "other"], "keys": "*", "tuple": {"rest": {"type": "any"}}}
        if e["use"] == ["reference"]:
            e["use"] = ["reference", "state-value"]
        allow.append(e)
    # Cython classes rebuilt by their module's newObj(cls) (cls.__new__(cls)) and a tuple
    # __setstate__ (the trees' arrays and metric): the factory may only instantiate the classes
    # defined in its own module; PyFuncDistance (which holds a user function) is left out.
    for modname, bases in [("sklearn.neighbors._kd_tree", ("KDTree",)), ("sklearn.neighbors._ball_tree", ("BallTree",)),
                           ("sklearn.metrics._dist_metrics", None)]:
        mod = importlib.import_module(modname)
        names = [f"{modname}.{n}" for n in dir(mod) if isinstance(getattr(mod, n), type) and getattr(mod, n).__module__ == modname
                 and (bases is None or n in bases) and not n.startswith("PyFunc") and n not in ("BinaryTree", "NeighborsHeap", "NodeHeap")
                 and (bases is not None or n.endswith("Distance") or n.endswith("Distance32"))]
        allow.append({"global": f"{modname}.newObj", "use": ["call"], "result": "arg0",
                      "args": {"min": 1, "max": 1, "items": [{"type": "global", "names": names, "use": ["instantiate"]}]},
                      "note": "Cython newObj(cls): cls.__new__(cls), then BUILD with the tuple state"})
        for n in names:
            allow.append({"global": n, "use": ["instantiate", "build", "state-value"],
                          "state": {"shapes": ["tuple", "dict"], "keys": "*", "tuple": {"rest": {"type": "any"}}},
                          "note": "Cython class: tuple __setstate__ whose globals and calls the state walk judges"})
    pack = {"schema": "brine-rules/1", "name": "sklearn",
            "description": "scikit-learn estimators pickled with pickle or joblib: the exact estimator classes of the "
                           "installed scikit-learn (tools/gen_packs.py), the helper globals their real pickles use, "
                           "state rules, and the re-exports of every approved module.",
            "versions": {"sklearn": sklearn.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__},
            "allow": allow}
    samples = sklearn_samples()
    print(f"sklearn: {len(classes)} estimator classes, {len(samples)} sample pickles", file=sys.stderr)
    derive(brine, pack, samples, ("sklearn.", "scipy.sparse.", "numpy."), deny, set(hand))
    approved_modules = {e["global"].rsplit(".", 1)[0] for e in pack["allow"]}
    # re-exports from every sklearn module, private ones too: a pickle may name any of them
    all_mods = {m.__name__: m for m in public_modules("sklearn", private=True)}
    for name in approved_modules:
        try:
            all_mods.setdefault(name, importlib.import_module(name))
        except Exception:
            pass
    pack["reexports"] = dict(sorted(reexports(all_mods.values()).items()))
    return pack


# ---------------------------------------------------------------- torch

def torch_samples():
    import torch
    import torch.nn as nn
    objs = []
    mods = public_modules("torch.nn.modules")
    for name, cls in sorted(classes_under(mods, nn.Module, "torch.nn.").items()):
        for args in ((), (4,), (4, 4), (4, 4, 3)):
            try:
                objs.append(cls(*args))
                break
            except Exception:
                continue
    objs.append(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.25),
                              nn.Flatten(), nn.Linear(64, 3)))
    objs.append(nn.TransformerEncoderLayer(8, 2, activation=nn.functional.gelu))
    objs.append(nn.DataParallel(nn.Linear(2, 2)))
    out = []
    for o in objs:
        for proto in (2, 4):
            buf = io.BytesIO()
            try:
                torch.save(o, buf, pickle_protocol=proto)
                out.append(buf.getvalue())
            except Exception:
                pass
    return out


def torch_pack(brine, deny):
    import torch
    import torch.nn as nn
    mods = public_modules("torch.nn.modules") + public_modules("torch.nn.parallel")
    classes = classes_under(mods, nn.Module, "torch.nn.")
    mods += public_modules("torch.nn", private=True)
    allow = []
    for name in sorted(classes):
        allow.append({"global": name, "use": ["instantiate", "build", "state-value"], "args": {"max": 0},
                      "state": {"shapes": ["dict"], "keys": "*"},
                      "note": "nn.Module: cls.__new__(cls) then Module.__setstate__ (self.__dict__.update(state)); submodules are state values"})
    funcs = {}
    import torch.nn.functional as F
    for name in dir(F):
        obj = getattr(F, name)
        if name.startswith("_") or not callable(obj) or isinstance(obj, type):
            continue
        canon = canonical_of(obj)
        if canon and (canon.startswith("torch.nn.functional.") or canon.startswith("torch._C._nn.")):
            funcs[canon] = True
    for name in sorted(funcs):
        allow.append({"global": name, "use": ["reference", "state-value"],
                      "note": "functional stored as a module attribute (activation=F.gelu)"})
    for p in ["torch.nn.parameter.Parameter", "torch.nn.parameter.UninitializedParameter", "torch.nn.parameter.UninitializedBuffer"]:
        allow.append({"global": p, "use": ["instantiate", "build"], "args": {"max": 0},
                      "state": {"shapes": ["dict", "slots"], "keys": "*"}, "note": "Parameters pickled without _rebuild_parameter"})
    allow.append({"global": "builtins.object", "use": ["reference"], "note": "base argument of copyreg._reconstructor"})
    allow.append({"global": "copyreg._reconstructor", "use": ["call"], "result": "arg0",
                  "args": {"min": 3, "max": 3, "items": [{"type": "global", "use": ["instantiate"]},
                                                         {"type": "global", "names": ["builtins.object"]}, {"type": "none"}]},
                  "note": "protocol 0/1 object reconstruction: copyreg._reconstructor(cls, object, None); cls must be approved to instantiate"})
    versions = {"torch": torch.__version__}
    try:
        import torchvision  # noqa: F401  (Debian 12 has no python3-torchvision: its entries are dropped)
        versions["torchvision"] = torchvision.__version__
    except ImportError:
        pass
    pack = {"schema": "brine-rules/1", "name": "torch-full-model",
            "description": "Whole nn.Module pickles (torch.save(model)): the exact torch.nn module classes of the installed "
                           "torch (tools/gen_packs.py), given their __dict__ by BUILD, with the helper globals real pickles use.",
            "versions": versions, "allow": allow}
    samples = torch_samples()
    print(f"torch: {len(classes)} module classes, {len(samples)} sample pickles", file=sys.stderr)
    derive(brine, pack, samples, ("torch.nn.", "torch._utils.", "collections.OrderedDict", "builtins.set", "torch.Size",
                                      "torch.utils.hooks.RemovableHandle"),
           deny, {"copyreg._reconstructor"})
    for e in pack["allow"]:
        if e["global"] == "torch.utils.hooks.RemovableHandle":
            # torch/utils/hooks.py RemovableHandle.__getstate__: (hooks_dict or None, id) or
            # (hooks_dict, id, extra_dicts); the hooks themselves are functions the walk judges
            e["state"] = {"shapes": ["tuple"], "tuple": {"min": 2, "max": 3, "items": [
                {"type": "one_of", "options": [{"type": "none"}, {"type": "call", "names": ["collections.OrderedDict"]}, {"type": "dict"}]},
                {"type": "int"}, {"type": "tuple"}]}}
    approved_modules = {e["global"].rsplit(".", 1)[0] for e in pack["allow"]}
    for name in approved_modules:
        try:
            mods.append(importlib.import_module(name))
        except Exception:
            pass
    table = reexports(mods)
    pack["reexports"] = dict(sorted((k, v) for k, v in table.items() if k.startswith("torch.nn.")))
    return pack


def main():
    brine = sys.argv[1]
    deny = json.load(open(os.path.join(ROOT, "rules/denylist.json")))["deny"]
    which = sys.argv[2:] or ["sklearn", "torch-full-model"]
    for name in which:
        pack = sklearn_pack(brine, deny) if name == "sklearn" else torch_pack(brine, deny)
        with open(os.path.join(ROOT, f"rules/packs/{name}.json"), "w") as f:
            json.dump(pack, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
