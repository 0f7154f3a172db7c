#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Runs the real do_fetch, do_unpack and do_populate_lic of the layer's recipes, offline, in a
temporary WORKDIR, with BitBake's own code (tinfoil), and prints the licence files each gets.

Quicker than `bitbake -c populate_lic` (no full parse, nothing built), and the same task code.
Needs a Yocto build environment (source oe-init-build-env; meta-mptcp in bblayers.conf), so CI
cannot run it; docs/yocto.md records its results on kirkstone and scarthgap.

    testing/layers/lic-check.py --mirror CRATES_DIR RECIPE [RECIPE...]

RECIPE is a file name stem (mptcp-agent, packagegroup-mptcp, ...); a file under
dynamic-layers/ is taken only when no other has that name or with --dynamic."""

import argparse
import os
import sys
import tempfile


def find_recipe(layers, name, dynamic):
    found = []
    for layer in layers:
        for root, _, files in os.walk(layer):
            for f in files:
                if f.endswith(".bb") and (f == name + ".bb" or f.startswith(name + "_")):
                    found.append(os.path.join(root, f))
    plain = [f for f in found if "dynamic-layers" not in f]
    dyn = [f for f in found if "dynamic-layers" in f]
    pick = (dyn or plain) if dynamic else (plain or dyn)
    return pick[0] if pick else None


def load_functions(d):
    """What BitBake's parser does for tasks in its own process: OE's modules (from each layer's
    lib/) and the recipe's `def` functions in the namespace python tasks run in (tinfoil parses
    in the server, whose namespace this process does not share)."""
    import importlib
    import textwrap
    import bb.utils
    for path in (d.getVar("BBPATH") or "").split(":"):
        lib = os.path.join(path, "lib")
        if os.path.isdir(lib) and lib not in sys.path:
            sys.path.insert(0, lib)
    # kirkstone lists them in OE_IMPORTS; scarthgap's oe package names its own in BBIMPORTS.
    oe = importlib.import_module("oe")
    mods = (d.getVar("OE_IMPORTS") or "").split() + ["oe.%s" % m for m in getattr(oe, "BBIMPORTS", [])]
    for mod in mods + ["os", "sys", "time"]:
        importlib.import_module(mod)
        top = mod.split(".")[0]
        bb.utils._context[top] = sys.modules[top]
    for key in d.keys():
        if d.getVarFlag(key, "func", False) and d.getVarFlag(key, "python", False):
            body = textwrap.dedent((d.getVar(key, False) or "").strip("\n"))
            if body.startswith("def "):
                try:
                    exec(body, bb.utils._context)
                except Exception as e:  # a body that is not a plain def (rare); not ours
                    print("note: %s not loaded (%s)" % (key, type(e).__name__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", required=True, help="directory of NAME-VERSION.crate files")
    parser.add_argument("--dynamic", action="store_true", help="prefer the dynamic-layers variant")
    parser.add_argument("recipes", nargs="+")
    args = parser.parse_args()

    import bb.build
    import bb.tinfoil

    failed = 0
    with bb.tinfoil.Tinfoil() as tinfoil:
        tinfoil.prepare(config_only=True)
        layers = tinfoil.config_data.getVar("BBLAYERS").split()
        for name in args.recipes:
            path = find_recipe(layers, name, args.dynamic)
            if not path:
                print("FAIL  %s: no recipe in BBLAYERS" % name)
                failed += 1
                continue
            d = tinfoil.parse_recipe_file(path, appends=False)  # the layer has no appends of them
            load_functions(d)
            with tempfile.TemporaryDirectory() as tmp:
                for var, sub in (("WORKDIR", "work"), ("DL_DIR", "downloads"), ("T", "work/temp"),
                                 ("LICSSTATEDIR", "work/license-destdir")):
                    d.setVar(var, os.path.join(tmp, sub))
                    os.makedirs(os.path.join(tmp, sub), exist_ok=True)
                d.setVar("PREMIRRORS", "https://crates.io/api/v1/crates/.* file://%s/"
                         % os.path.abspath(args.mirror))
                d.setVar("BB_NO_NETWORK", "1")
                try:
                    # Only the tasks the recipe has (packagegroups delete fetch and unpack).
                    for task in ("do_fetch", "do_unpack"):
                        if d.getVarFlag(task, "task", False) and (d.getVar("SRC_URI") or "").split():
                            bb.build.exec_func(task, d)
                    # With its pre- and postfuncs, as exec_task runs it: insane.bbclass checks
                    # LIC_FILES_CHKSUM in a postfunc of do_populate_lic.
                    for flag in ("prefuncs", None, "postfuncs"):
                        funcs = (d.getVarFlag("do_populate_lic", flag) or "").split() if flag else ["do_populate_lic"]
                        for func in funcs:
                            if not func.startswith("sstate_"):  # sstate bookkeeping needs a real task
                                bb.build.exec_func(func, d)
                    import oe.qa
                    oe.qa.exit_if_errors(d)
                except Exception as e:  # a task failure of any kind is this recipe's result
                    print("FAIL  %s (%s): %s" % (name, os.path.relpath(path), e))
                    failed += 1
                    continue
                dest = os.path.join(tmp, "work/license-destdir", d.getVar("LICENSE_DEPLOY_PATHCOMPONENT") or "",
                                    d.getVar("PN"))
                files = sorted(os.listdir(dest)) if os.path.isdir(dest) else []
                print("ok    %s (%s): LICENSE = %s" % (name, os.path.relpath(path), d.getVar("LICENSE")))
                print("      licence files: %s" % ", ".join(files))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
