#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Every source, build and packaging file the project writes carries an SPDX licence line
near its top (patches carry Upstream-Status instead; docs and data files are exempt)."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".rs", ".sh", ".py", ".toml", ".bb", ".bbappend", ".bbclass", ".inc", ".mk",
            ".service", ".cfg", ".scc", ".yml", ".yaml", ".xml"}
NAMES = {"Config.in", "Makefile", "external.desc", "run"}
EXEMPT_DIRS = ("tests/data/", "testdata/", "fixtures/")

files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                       cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
missing = []
checked = 0
for f in files:
    p = ROOT / f
    if not p.is_file() or any(d in f for d in EXEMPT_DIRS) or f == "Cargo.lock":
        continue
    if p.suffix not in SUFFIXES and p.name not in NAMES:
        continue
    checked += 1
    head = p.read_text(errors="replace").splitlines()[:8]
    if not any("SPDX-License-Identifier:" in line for line in head):
        missing.append(f)
for f in missing:
    print(f"FAIL no SPDX-License-Identifier in the first lines of {f}")
print(f"checked {checked} files")
print(f"{checked - len(missing)} passed, {len(missing)} failed")
sys.exit(1 if missing else 0)
