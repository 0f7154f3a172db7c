#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""The workspace promises Rust 1.75 (Yocto scarthgap). Check that promise against Cargo.lock:
the lockfile is in a format cargo 1.75 reads (version 3), and every package that is built for
a Linux target declares a rust-version no newer than ours."""
import json, subprocess, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"]
passed = failed = 0

def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    passed += ok
    failed += not ok

def ver(s):
    return tuple(int(x) for x in s.split(".")[:3]) + (0,) * (3 - len(s.split(".")[:3]))

manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
msrv = manifest["workspace"]["package"]["rust-version"]
lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
check(lock.get("version") == 3, f"Cargo.lock version {lock.get('version')} == 3 (cargo {msrv} reads v3, not v4)")
check(manifest["workspace"].get("resolver") == "2", "workspace resolver is \"2\" (cargo 1.75 cannot parse \"3\")")

meta = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--locked"],
    cwd=ROOT, check=True, capture_output=True, text=True).stdout)
by_id = {p["id"]: p for p in meta["packages"]}
used = set()
for t in TARGETS:
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--workspace", "-e", "normal,build,dev", "--target", t,
         "--prefix", "none", "--format", "{p}"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            used.add((parts[0], parts[1].lstrip("v")))
too_new = []
for p in by_id.values():
    if (p["name"], p["version"]) in used and p.get("rust_version") and ver(p["rust_version"]) > ver(msrv):
        too_new.append(f'{p["name"]} {p["version"]} needs {p["rust_version"]}')
check(not too_new, f"{len(used)} packages built for Linux declare rust-version <= {msrv}"
      + ("" if not too_new else ": " + "; ".join(sorted(too_new))))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
