#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Symbol sizes of an unstripped binary by crate, cargo-bloat style (docs/performance.md, footprint).

Usage: testing/bloat-by-crate.py BINARY [N]   (build with CARGO_PROFILE_RELEASE_STRIP=false)
"""
import collections
import re
import subprocess
import sys

# <T as Trait>::f goes to T's crate unless T is a std type (then a generic argument's, else
# the trait's); a std generic (drop_in_place<T>, Vec<T>) to the crate of its first type argument.
STD = {"core", "alloc", "std"}
def crate_of(path):
    path = re.sub(r"^(?:&|\*|mut |const |dyn |\(|\[)+", "", path)
    m = re.match(r"([A-Za-z_]\w*)::", path)
    return m.group(1) if m else None
def attribute(n):
    m = re.match(r"^<(.+?) as ([\w:]+)", n)
    if m:
        a, b = crate_of(m.group(1)), crate_of(m.group(2))
        if a and a not in STD: return a
        # std type: look for a generic argument of ours
        g = re.search(r"<\s*([A-Za-z_]\w*)::", m.group(1))
        if g and g.group(1) not in STD: return g.group(1)
        return b or a or "?"
    c = crate_of(n)
    if c in STD:
        g = re.search(r"<\s*(?:&|\*|mut |const |dyn |\()*([A-Za-z_]\w*)::", n)
        if g and g.group(1) not in STD: return g.group(1)
    return c or "[no path: C, linker]"
out = subprocess.run(["nm", "-C", "-S", "--size-sort", sys.argv[1]], capture_output=True, text=True).stdout
tot = collections.Counter(); total = 0
for line in out.splitlines():
    parts = line.split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTrRdD": continue
    size = int(parts[1], 16); total += size
    tot[attribute(parts[3])] += size
print("total attributed", total)
for c, s in tot.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 40):
    print(f"{s:9d} {100*s/total:5.1f}% {c}")
