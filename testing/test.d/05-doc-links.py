#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""The docs stand on their own: in every Markdown file of the repository (docs/, the READMEs, ...)
- every relative link [text](target) resolves to a file or directory, and its #anchor to a heading;
- every repository path named in the text (`testing/test.sh`, testing/lab/README.md, kernel-patches/series.toml,
  a glob like testing/test.d/*) exists;
- every document named by file name (backport-guide.md) exists somewhere in the repository;
- no path names a top-level folder that moved under testing/ (lab/, bench/, kernel-matrix/, tools/):
  the check above only sees paths that start with a folder that exists;
- nothing points at material a reader does not have (section signs, "the field report", issue numbers).
No root, no network. Cost: < 1 s."""
import re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
                       cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
all_files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
basenames = {Path(f).name for f in all_files}
TOP = sorted({f.split("/")[0] for f in all_files if "/" in f}, key=len, reverse=True)

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# A path that starts with one of the repository's top-level directories, not inside a longer path
# (/etc/NetworkManager/conf.d) or a word (my-lab/).
PATH = re.compile(r"(?<![\w/.~$@{-])(?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./*+-]*")
# The old top-level folders (now testing/..., meta-mptcp/scripts/): a path starting with one is
# stale unless it resolves from the document's own directory (lab/README.md in testing/).
MOVED = re.compile(r"(?<![\w/.~$@{-])(?:tools|lab|bench|kernel-matrix)/[\w./*+-]*")
MDNAME = re.compile(r"(?<![\w/.-])[\w.-]+\.md\b")
BANNED = [
    (re.compile(r"§"), "a section sign (a section of a document outside the repository)"),
    (re.compile(r"\bseed-mptcp|\bseed §", re.I), "the seed document (not in the repository)"),
    (re.compile(r"\bfield report\b", re.I), "the field report (not in the repository)"),
    (re.compile(r"\bissue (goal|\d+)\b", re.I), "an issue (not in the repository)"),
]
# Paths that are not ours to check: build output, and paths inside a Linux tree (its tools/).
RUNTIME = ("target/", ".venv/", "tools/testing/")
# Reports the tools write (kmx table > table.md, --out matrix.md; mptcp-bench's table.md).
GENERATED = {"table.md", "matrix.md"}


def slug(heading):
    """GitHub's anchor for a heading."""
    s = re.sub(r"`|\*\*|\*|_(?=\w)|(?<=\w)_", "", heading.strip().lower())
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(md):
    out, seen = set(), {}
    in_code = False
    for line in md.read_text(errors="replace").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not in_code:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def exists(rel):
    rel = rel.rstrip("/")
    if any(ch in rel for ch in "*?["):
        return any(ROOT.glob(rel))
    return (ROOT / rel).exists()


fails, links, paths, names = [], 0, 0, 0
for f in files:
    md = ROOT / f
    text = md.read_text(errors="replace")
    for no, line in enumerate(text.splitlines(), 1):
        where = f"{f}:{no}"
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http(s), mailto: resolvable outside
            links += 1
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            if not dest.exists():
                fails.append(f"{where}: link to {target}: {path} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                fails.append(f"{where}: link to {target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
        for m in PATH.finditer(line):
            p = m.group(0).rstrip(".,:;)*")
            if p.startswith(RUNTIME) or "/" not in p:
                continue
            paths += 1
            # Named from the repository root, from the document's directory, or relative to a
            # component (conf/layer.conf of the layer meta-mptcp/).
            if not exists(p) and not (md.parent / p).exists() and \
                    not any(a.endswith("/" + p.rstrip("/")) for a in all_files):
                fails.append(f"{where}: names {p}, which is not in the repository")
        for m in MOVED.finditer(line):
            p = m.group(0).rstrip(".,:;)*")
            if p.startswith(RUNTIME) or exists(p) or (md.parent / p).exists():
                continue
            fails.append(f"{where}: names {p}, a folder that moved (testing/, meta-mptcp/scripts/)")
        for m in MDNAME.finditer(line):
            names += 1
            if m.group(0) not in basenames | GENERATED:
                fails.append(f"{where}: names {m.group(0)}, which is not in the repository")
        for rx, why in BANNED:
            if rx.search(line):
                fails.append(f"{where}: refers to {why}: {line.strip()[:100]}")

for x in fails:
    print("FAIL", x)
print(f"checked {len(files)} Markdown files: {links} relative links, {paths} repository paths, "
      f"{names} document names; {len(fails)} problems")
sys.exit(1 if fails else 0)
