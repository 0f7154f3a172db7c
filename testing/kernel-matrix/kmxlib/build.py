# SPDX-License-Identifier: MIT OR Apache-2.0
"""Configure and build a kernel tree into the cache (out of tree, locked, logged)."""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .common import EXIT_TIMEOUT, FALLBACK_FRAGMENT, die, log
from .cache import CachedSpec, Lock, cache_root, parse_config, source_id


def unpack(src):
    """A tree to build from: the directory itself, or the tarball unpacked once into the cache."""
    if src.is_dir():
        return src
    sid = source_id(src).split(":", 1)[1][:16]
    dest = cache_root() / "src" / sid
    with Lock(cache_root() / "src" / f"{sid}.lock"):
        if (dest / "Makefile").is_file():
            return dest
        tmp = Path(tempfile.mkdtemp(prefix=f"{sid}.", dir=dest.parent))
        log(f"unpacking {src} -> {dest}")
        try:
            subprocess.run(["tar", "-C", str(tmp), "--strip-components=1", "-xf", str(src)], check=True)
            tmp.rename(dest)
        except (subprocess.CalledProcessError, OSError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            die(f"unpacking {src} failed: {e}")
    return dest


def kconfig_symbols(tree):
    syms = set()
    pat = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)
    for root, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d not in (".git", "Documentation", "tools")]
        for name in files:
            if name.startswith("Kconfig"):
                try:
                    syms.update(pat.findall((Path(root) / name).read_text(errors="replace")))
                except OSError:
                    pass
    return {"CONFIG_" + s for s in syms}


def check_config(wanted, got, known):
    """Compare wanted fragment values with the final .config.
    Returns (errors, ignored): errors = known symbols that did not get their value."""
    errors, ignored = [], []
    for sym, want in wanted.items():
        if sym not in known:
            ignored.append(sym)
            continue
        have = got.get(sym, "n")
        ok = have == want or (want == "m" and have == "y")
        if not ok:
            errors.append(f"{sym}: wanted {want}, .config has {have}")
    return errors, ignored


def run_make(tree, out, logf, *targets, jobs=None, timeout=None):
    cmd = ["make", "-C", str(tree), f"O={out}", "ARCH=x86_64"]
    if jobs:
        cmd.append(f"-j{jobs}")
    cmd += list(targets)
    logf.write(f"$ {shlex.join(cmd)}\n")
    logf.flush()
    try:
        r = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return EXIT_TIMEOUT
    return r.returncode


def tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def configure(spec, tree, out, logf):
    """defconfig + kvm_guest.config + fragments, every module built in; returns the check."""
    if run_make(tree, out, logf, "defconfig") != 0:
        return None, ["make defconfig failed"], []
    guest = "kvm_guest.config" if (tree / "kernel/configs/kvm_guest.config").is_file() else "kvmconfig"
    if run_make(tree, out, logf, guest) != 0:
        return None, [f"make {guest} failed"], []
    cfg_path = out / ".config"
    merged = parse_config(cfg_path.read_text())
    wanted = {}
    for f in spec.frags:
        vals = parse_config(f.read_text())
        wanted.update(vals)
        merged.update(vals)
    lines = []
    for sym, val in merged.items():
        lines.append(f"# {sym} is not set" if val == "n" else f"{sym}={val}")
    cfg_path.write_text("\n".join(lines) + "\n")
    if run_make(tree, out, logf, "olddefconfig") != 0:
        return None, ["make olddefconfig failed"], []
    # No modules to carry into the guest: build everything in.
    if "mod2yesconfig" in (tree / "scripts/kconfig/Makefile").read_text():
        if run_make(tree, out, logf, "mod2yesconfig") != 0:
            return None, ["make mod2yesconfig failed"], []
    got = parse_config(cfg_path.read_text())
    errors, ignored = check_config(wanted, got, kconfig_symbols(tree))
    return got, errors, ignored


def build(spec, jobs=None, timeout=7200, force=False):
    kdir = spec.kdir
    if isinstance(spec, CachedSpec):
        if not spec.image.is_file():
            die(f"cached kernel {spec.key} has no bzImage")
        return spec.image
    if spec.image.is_file() and not force:
        return spec.image
    with Lock(cache_root() / "kernels" / f"{spec.key}.lock"):
        if spec.image.is_file() and not force:
            return spec.image
        tree = unpack(spec.source)
        out = cache_root() / "build" / spec.key
        out.mkdir(parents=True, exist_ok=True)
        kdir.mkdir(parents=True, exist_ok=True)
        log(f"building {spec.label} ({spec.source}) key {spec.key}")
        for f in spec.frags:
            log(f"  fragment {f}")
        if spec.frags[0] == FALLBACK_FRAGMENT:
            log("  (kernel-patches/config/*.cfg not present: using the harness's fallback MPTCP fragment)")
        t0 = time.monotonic()
        build_log = kdir / "build.log"
        with open(build_log, "w") as logf:
            got, errors, ignored = configure(spec, tree, out, logf)
            if ignored:
                log(f"  not in this tree's Kconfig, ignored: {' '.join(sorted(ignored))}")
            if got is None or errors:
                for e in errors:
                    log(f"  config: {e}")
                die(f"configuration failed; log: {build_log}\n{tail(build_log, 15)}")
            left_m = sorted(s for s, v in got.items() if v == "m")
            if left_m:
                log(f"  still modules (not usable in the guest): {' '.join(left_m)}")
            t_cfg = time.monotonic() - t0
            rc = run_make(tree, out, logf, "bzImage", jobs=jobs or os.cpu_count(), timeout=timeout)
        if rc != 0:
            die(f"kernel build failed (exit {rc}); log: {build_log}\n{tail(build_log)}")
        release = (out / "include/config/kernel.release").read_text().strip()
        shutil.copy2(out / "arch/x86/boot/bzImage", kdir / "bzImage.tmp")
        shutil.copy2(out / ".config", kdir / "config")
        meta = {
            "key": spec.key,
            "label": spec.label,
            "release": release,
            "source": str(spec.source),
            "tree": str(tree),
            "fragments": [str(f) for f in spec.frags],
            "ignored_symbols": sorted(ignored),
            "inputs": {k: v for k, v in spec.inputs().items() if k != "fragments"},
            "configure_seconds": round(t_cfg, 1),
            "build_seconds": round(time.monotonic() - t0, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (kdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(kdir / "bzImage.tmp", spec.image)
        log(f"built {release} in {meta['build_seconds']:.0f} s -> {spec.image}")
    return spec.image
