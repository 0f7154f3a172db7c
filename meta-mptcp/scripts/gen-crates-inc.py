#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Writes the crate lists of the Yocto layer and the Buildroot tree from Cargo.lock.

Outputs (all generated, never edited by hand):
  meta-mptcp/recipes-connectivity/mptcp-agent/mptcp-crates.inc
      one SRC_URI entry per crate of Cargo.lock: its crates.io download URL with a per-version
      name= and downloadfilename=, and SRC_URI[NAME-VERSION.sha256sum]. Plain https:// entries,
      not crate://, because kirkstone's crate fetcher checks no crate's checksum (it reads none
      from SRC_URI flags, and it breaks on any URL parameter); the wget fetcher of both releases
      checks every one. mptcp-source.inc unpacks them where cargo's vendoring expects them.
      Plus the crates' licences (MPTCP_CRATES_LICENSE, in Yocto syntax).
  recipes/package/mptcp-agent-crates/mptcp-agent-crates.mk and .hash
      the same crates as Buildroot downloads from static.crates.io with their sha256, the
      vendored directory built from them, and the licences.

Licences come from each crate's Cargo.toml `license` field, read from the .crate files in
--crates DIR (e.g. a cargo registry cache filled by `cargo fetch --locked`); without --crates,
the licences already recorded in the .inc (one comment line per crate) are kept.

    meta-mptcp/scripts/gen-crates-inc.py [--crates DIR]   rewrite the outputs from ./Cargo.lock
    meta-mptcp/scripts/gen-crates-inc.py --check          exit 1 and list the differences if stale
"""
import argparse
import re
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "Cargo.lock"
INC = ROOT / "meta-mptcp/recipes-connectivity/mptcp-agent/mptcp-crates.inc"
BR_MK = ROOT / "recipes/package/mptcp-agent-crates/mptcp-agent-crates.mk"
BR_HASH = ROOT / "recipes/package/mptcp-agent-crates/mptcp-agent-crates.hash"
CRATES_IO = ("registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/")
# SPDX names without a file in OE-core's common-licenses: the crate's own file serves instead.
NON_GENERIC = {"Unicode-3.0": ("unicode-ident", "LICENSE-UNICODE")}


class LockError(Exception):
    pass


def lock_crates(lock_path):
    """{(name, version): sha256} of every crates.io package in the lockfile."""
    lock = tomllib.loads(Path(lock_path).read_text())
    crates = {}
    for pkg in lock.get("package", []):
        source = pkg.get("source")
        if source is None:
            continue  # a workspace member
        if source not in CRATES_IO:
            raise LockError(f"{lock_path}: {pkg['name']} {pkg['version']} comes from {source}; "
                            "only crates.io packages can be fetched with crate://")
        if "checksum" not in pkg:
            raise LockError(f"{lock_path}: {pkg['name']} {pkg['version']} has no checksum")
        crates[(pkg["name"], pkg["version"])] = pkg["checksum"]
    return crates


def crate_licences(crates_dir, crates):
    """{(name, version): SPDX expression} from the Cargo.toml inside each .crate file."""
    out = {}
    for name, version in crates:
        path = Path(crates_dir) / f"{name}-{version}.crate"
        with tarfile.open(path) as tar:
            member = tar.extractfile(f"{name}-{version}/Cargo.toml")
            manifest = tomllib.loads(member.read().decode())
        lic = manifest.get("package", {}).get("license")
        if not lic:
            raise LockError(f"{path}: no license field (a license-file crate needs a manual entry)")
        out[(name, version)] = lic
    return out


ENTRY = re.compile(r"https://crates\.io/api/v1/crates/([^/\s]+)/([^/\s]+)/download((?:;[^\s\\\"]+)*)")
FLAG = re.compile(r'(?m)^SRC_URI\[([^\]]+)\.sha256sum\] = "([0-9a-f]{64})"$')
LIC_COMMENT = re.compile(r"(?m)^# licence ([^ ]+) ([^ ]+): (.+)$")


def key_of(name, version):
    """The name= of a crate entry: NAME-VERSION, '+' (build metadata) spelled '_' for linters."""
    return f"{name}-{version}".replace("+", "_")


def inc_crates(inc_path):
    """{(name, version): sha256 or None}, {(name, version): licence}, problems, from a .inc."""
    text = Path(inc_path).read_text()
    crates, problems = {}, []
    sums = dict(FLAG.findall(text))
    for name, version, params in ENTRY.findall(text):
        parm = dict(p.split("=", 1) for p in params.split(";") if "=" in p)
        key = key_of(name, version)
        if parm.get("name") != key or parm.get("downloadfilename") != f"{name}-{version}.crate":
            problems.append(f"crate {name} {version} has no name={key} and downloadfilename={name}-{version}.crate")
        crates[(name, version)] = sums.get(parm.get("name"))
        if crates[(name, version)] is None:
            problems.append(f"crate {name} {version} has no SRC_URI[{key}.sha256sum]")
    licences = {(n, v): lic for n, v, lic in LIC_COMMENT.findall(text)}
    return crates, licences, problems


def spdx_to_yocto(expr):
    """An SPDX expression in OE syntax: OR -> |, AND -> &, "A WITH B" -> OE's combined name."""
    expr = expr.replace("/", " OR ")  # old crates write "MIT/Apache-2.0"
    expr = re.sub(r"(\S+) WITH LLVM-exception", r"\1-with-LLVM-exception", expr)
    expr = re.sub(r"\bOR\b", "|", expr)
    expr = re.sub(r"\bAND\b", "&", expr)
    return re.sub(r"\s+", " ", expr).strip()


def normalise(expr):
    """Sorted alternatives, so that "MIT OR Apache-2.0" and "Apache-2.0 OR MIT" are one term."""
    y = spdx_to_yocto(expr)
    if "&" in y or "(" in y:
        return y
    return " | ".join(sorted(a.strip() for a in y.split("|")))


def yocto_licence(licences):
    terms = sorted({normalise(lic) for lic in licences.values()})
    return " & ".join(t if " " not in t else f"({t})" for t in terms)


def buildroot_licence(licences):
    terms = sorted({normalise(lic).replace(" | ", " or ").replace(" & ", " and ") for lic in licences.values()})
    return ", ".join(terms)


def non_generic(licences):
    """[(SPDX name, crate dir, file)] for licences that OE-core has no generic text of."""
    out = []
    for spdx, (crate, fname) in NON_GENERIC.items():
        if any(spdx in lic for lic in licences.values()):
            versions = [v for (n, v) in licences if n == crate]
            if len(versions) != 1:
                raise LockError(f"{spdx}: expected one {crate} in Cargo.lock, found {versions}")
            out.append((spdx, f"{crate}-{versions[0]}", fname))
    return out


def render_inc(crates, licences, lic_md5):
    keys = sorted(crates)
    lines = [
        "# SPDX-License-Identifier: MIT OR Apache-2.0",
        "# Generated from Cargo.lock by meta-mptcp/scripts/gen-crates-inc.py. Do not edit;",
        "# testing/layers/test_layers.py checks it.",
        "# Every crate has its own name= and SRC_URI[NAME-VERSION.sha256sum]; plain https:// so that",
        "# the fetcher of kirkstone and scarthgap alike checks each one (kirkstone's crate:// checks",
        "# none). mptcp-source.inc unpacks them for cargo (unpack=0 here). Each file name carries",
        "# the crate's own version, not PV:",
        "# nooelint: oelint.vars.downloadfilename",
        'SRC_URI += "\\',
    ]
    lines += [f"    https://crates.io/api/v1/crates/{n}/{v}/download;downloadfilename={n}-{v}.crate;name={key_of(n, v)};unpack=0 \\"
              for n, v in keys]
    lines += ['"', ""]
    lines += [f'SRC_URI[{key_of(n, v)}.sha256sum] = "{crates[(n, v)]}"' for n, v in keys]
    lines += ["", "# The crates' own licences (Cargo.toml `license`), one line per crate:"]
    lines += [f"# licence {n} {v}: {licences[(n, v)]}" for n, v in keys]
    lines += ["", f'MPTCP_CRATES_LICENSE = "{yocto_licence(licences)}"']
    for spdx, cdir, fname in non_generic(licences):
        # OE-core has no generic text: the crate's own file (unpacked by the crate fetcher).
        path = f"${{MPTCP_CRATES_DIR}}/{cdir}/{fname}"
        lines += [f'NO_GENERIC_LICENSE[{spdx}] = "{path}"',
                  f'MPTCP_CRATES_LIC_FILES_CHKSUM = "file://{path};md5={lic_md5[spdx]}"']
    return "\n".join(lines) + "\n"


def render_br_mk(crates, licences):
    keys = sorted(crates)
    first = keys[0]
    lines = [
        "################################################################################",
        "#",
        "# mptcp-agent-crates",
        "#",
        "################################################################################",
        "",
        "# SPDX-License-Identifier: MIT OR Apache-2.0",
        "# Generated from Cargo.lock by meta-mptcp/scripts/gen-crates-inc.py. Do not edit;",
        "# testing/layers/test_layers.py checks it.",
        "# The crates of Cargo.lock, each downloaded from crates.io and checked against its sha256",
        "# (mptcp-agent-crates.hash), unpacked into a directory cargo builds from offline.",
        f"HOST_MPTCP_AGENT_CRATES_VERSION = {len(keys)}",
        f"HOST_MPTCP_AGENT_CRATES_SITE = https://static.crates.io/crates/{first[0]}",
        f"HOST_MPTCP_AGENT_CRATES_SOURCE = {first[0]}-{first[1]}.crate",
        "HOST_MPTCP_AGENT_CRATES_EXTRA_DOWNLOADS = \\",
    ]
    rest = keys[1:]
    for i, (n, v) in enumerate(rest):
        tail = " \\" if i < len(rest) - 1 else ""
        lines.append(f"\thttps://static.crates.io/crates/{n}/{n}-{v}.crate{tail}")
    lines += [
        f"HOST_MPTCP_AGENT_CRATES_LICENSE = {buildroot_licence(licences)}",
        "",
        "# name-version:sha256 of each crate: cargo checks the package sum of a vendored crate.",
        "HOST_MPTCP_AGENT_CRATES_LIST = \\",
    ]
    for i, (n, v) in enumerate(keys):
        tail = " \\" if i < len(keys) - 1 else ""
        lines.append(f"\t{n}-{v}:{crates[(n, v)]}{tail}")
    lines += [
        "",
        "define HOST_MPTCP_AGENT_CRATES_EXTRACT_CMDS",
        "\tmkdir -p $(@D)/vendor",
        "\tfor c in $(HOST_MPTCP_AGENT_CRATES_LIST); do \\",
        "\t\tcrate=$${c%%:*}; \\",
        "\t\t$(TAR) -xzf $(HOST_MPTCP_AGENT_CRATES_DL_DIR)/$$crate.crate -C $(@D)/vendor || exit 1; \\",
        "\t\tprintf '{\"files\":{},\"package\":\"%s\"}' $${c##*:} > $(@D)/vendor/$$crate/.cargo-checksum.json; \\",
        "\tdone",
        "endef",
        "",
        "$(eval $(host-generic-package))",
    ]
    return "\n".join(lines) + "\n"


def render_br_hash(crates):
    lines = ["# SPDX-License-Identifier: MIT OR Apache-2.0",
             "# Generated from Cargo.lock (its checksums) by meta-mptcp/scripts/gen-crates-inc.py."]
    lines += [f"sha256  {crates[k]}  {k[0]}-{k[1]}.crate" for k in sorted(crates)]
    return "\n".join(lines) + "\n"


def outputs(lock_path, licences, lic_md5):
    crates = lock_crates(lock_path)
    return {INC: render_inc(crates, licences, lic_md5), BR_MK: render_br_mk(crates, licences),
            BR_HASH: render_br_hash(crates)}


def recorded_md5(inc_path):
    text = Path(inc_path).read_text() if Path(inc_path).exists() else ""
    out = {}
    for spdx in NON_GENERIC:
        m = re.search(r"NO_GENERIC_LICENSE\[%s\].*\n.*;md5=([0-9a-f]{32})" % re.escape(spdx), text)
        if m:
            out[spdx] = m.group(1)
    return out


def compare(lock_path, inc_path):
    """Differences between the lockfile and the generated files, as readable lines."""
    want = lock_crates(lock_path)
    have, licences, problems = inc_crates(inc_path)
    for key in sorted(set(want) - set(have)):
        problems.append(f"missing from the .inc: {key[0]} {key[1]}")
    for key in sorted(set(have) - set(want)):
        problems.append(f"not in Cargo.lock: {key[0]} {key[1]}")
    for key in sorted(set(want) & set(have)):
        if have[key] is not None and have[key] != want[key]:
            problems.append(f"checksum of {key[0]} {key[1]}: .inc {have[key]}, Cargo.lock {want[key]}")
        if key not in licences:
            problems.append(f"no licence recorded for {key[0]} {key[1]} (run with --crates DIR)")
    if problems:
        return problems
    for path, text in outputs(lock_path, licences, recorded_md5(inc_path)).items():
        if not path.exists() or path.read_text() != text:
            problems.append(f"{path.relative_to(ROOT)} differs from what Cargo.lock gives")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    parser.add_argument("--crates", type=Path, help="directory of NAME-VERSION.crate files (licences)")
    args = parser.parse_args()
    try:
        if args.check:
            problems = compare(LOCK, INC)
            for p in problems:
                print(p)
            if problems:
                print("stale: run meta-mptcp/scripts/gen-crates-inc.py", file=sys.stderr)
                return 1
            print(f"{INC.name} and the Buildroot crate list match Cargo.lock ({len(lock_crates(LOCK))} crates)")
            return 0
        crates = lock_crates(LOCK)
        if args.crates:
            import hashlib
            licences = crate_licences(args.crates, crates)
            lic_md5 = {}
            for spdx, cdir, fname in non_generic(licences):
                with tarfile.open(args.crates / f"{cdir}.crate") as tar:
                    lic_md5[spdx] = hashlib.md5(tar.extractfile(f"{cdir}/{fname}").read()).hexdigest()
        else:
            _, licences, _ = inc_crates(INC)
            lic_md5 = recorded_md5(INC)
            missing = sorted(set(crates) - set(licences))
            if missing:
                print(f"no licence recorded for {missing}: run with --crates DIR", file=sys.stderr)
                return 1
        BR_MK.parent.mkdir(parents=True, exist_ok=True)
        for path, text in outputs(LOCK, licences, lic_md5).items():
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    except LockError as e:
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
