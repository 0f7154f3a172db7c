#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes meta-mptcp's crates .inc (crate:// SRC_URI entries and their sha256sums) from Cargo.lock.

The output has the layout of OE-core's `bitbake -c update_crates`, so either tool may regenerate
it, but this one runs without a Yocto build (kirkstone has no update_crates task at all).

    tools/gen-crates-inc.py            rewrite the .inc from ./Cargo.lock
    tools/gen-crates-inc.py --check    exit 1 and list the differences if the .inc is stale
"""
import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "Cargo.lock"
INC = ROOT / "meta-mptcp/recipes-connectivity/mptcp-agent/mptcp-agent-crates.inc"
CRATES_IO = ("registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/")


def lock_crates(lock_path):
    """{(name, version): sha256} of every crates.io package in the lockfile."""
    lock = tomllib.loads(Path(lock_path).read_text())
    crates = {}
    for pkg in lock.get("package", []):
        source = pkg.get("source")
        if source is None:
            continue  # a workspace member
        if source not in CRATES_IO:
            sys.exit(f"{lock_path}: {pkg['name']} {pkg['version']} comes from {source}; "
                     "only crates.io packages can be fetched with crate://")
        if "checksum" not in pkg:
            sys.exit(f"{lock_path}: {pkg['name']} {pkg['version']} has no checksum")
        crates[(pkg["name"], pkg["version"])] = pkg["checksum"]
    return crates


def inc_crates(inc_path):
    """{(name, version): sha256} of a crates .inc, and the problems found reading it."""
    text = Path(inc_path).read_text()
    uris = re.findall(r"crate://crates\.io/([^/\s]+)/([^\s\\\"]+)", text)
    sums = dict(re.findall(r'SRC_URI\[([^\]]+)\.sha256sum\]\s*=\s*"([0-9a-f]{64})"', text))
    crates, problems = {}, []
    for name, version in uris:
        key = f"{name}-{version}"
        if key not in sums:
            problems.append(f"crate://crates.io/{name}/{version} has no SRC_URI[{key}.sha256sum]")
        crates[(name, version)] = sums.get(key)
    extra = set(sums) - {f"{n}-{v}" for n, v in uris}
    problems += [f"SRC_URI[{k}.sha256sum] belongs to no crate:// entry" for k in sorted(extra)]
    return crates, problems


def render(crates):
    keys = sorted(crates)
    lines = [
        "# SPDX-License-Identifier: MIT OR Apache-2.0",
        "# Generated from Cargo.lock by tools/gen-crates-inc.py (same layout as",
        "# `bitbake -c update_crates mptcp-agent`). Do not edit; tools/test.d checks it against Cargo.lock.",
        "",
        'SRC_URI += "\\',
    ]
    lines += [f"    crate://crates.io/{name}/{version} \\" for name, version in keys]
    lines += ['"', ""]
    lines += [f'SRC_URI[{name}-{version}.sha256sum] = "{crates[(name, version)]}"' for name, version in keys]
    return "\n".join(lines) + "\n"


def compare(lock_path, inc_path):
    """Differences between the lockfile and the .inc, as readable lines (empty when in sync)."""
    want = lock_crates(lock_path)
    have, problems = inc_crates(inc_path)
    for key in sorted(set(want) - set(have)):
        problems.append(f"missing from the .inc: {key[0]} {key[1]}")
    for key in sorted(set(have) - set(want)):
        problems.append(f"not in Cargo.lock: {key[0]} {key[1]}")
    for key in sorted(set(want) & set(have)):
        if have[key] is not None and have[key] != want[key]:
            problems.append(f"checksum of {key[0]} {key[1]}: .inc {have[key]}, Cargo.lock {want[key]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    parser.add_argument("--lock", default=LOCK, type=Path)
    parser.add_argument("--inc", default=INC, type=Path)
    args = parser.parse_args()
    if args.check:
        problems = compare(args.lock, args.inc)
        for p in problems:
            print(p)
        if problems:
            print(f"{args.inc} is stale: run tools/gen-crates-inc.py", file=sys.stderr)
            return 1
        print(f"{args.inc.name} matches {args.lock.name} ({len(lock_crates(args.lock))} crates)")
        return 0
    args.inc.write_text(render(lock_crates(args.lock)))
    print(f"wrote {args.inc} ({len(lock_crates(args.lock))} crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
