# SPDX-License-Identifier: MIT OR Apache-2.0
"""The kernel cache: where it lives, what identifies a source, and the key of one image
(every input that determines it, hashed)."""
import fcntl
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from .common import (
    DEFAULT_SOURCE,
    FALLBACK_FRAGMENT,
    HARNESS_FRAGMENT,
    KNOWN_SOURCES,
    PROJECT_FRAGMENTS,
    RECIPE_VERSION,
    die,
)


def cache_root():
    env = os.environ.get("KMX_CACHE")
    if env:
        return Path(env)
    sys_dir = Path("/var/cache/meta-mptcp")
    try:
        sys_dir.mkdir(parents=True, exist_ok=True)
        if os.access(sys_dir, os.W_OK):
            return sys_dir
    except OSError:
        pass
    return Path.home() / ".cache/meta-mptcp"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    return out.splitlines()[0] if out else "unknown"


class Lock:
    """Exclusive flock on a file, so two kmx processes never build the same thing at once."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = open(self.path, "w")
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.fd.close()


def resolve_source(arg):
    src = arg or os.environ.get("KMX_SOURCE") or DEFAULT_SOURCE
    src = KNOWN_SOURCES.get(src, src)
    p = Path(src).expanduser()
    if not p.exists():
        hint = ""
        if src.startswith("/usr/src/linux-source-"):
            pkg = Path(src).name.split(".tar")[0]
            hint = f" (install the Debian package {pkg})"
        die(f"kernel source {p} not found{hint}")
    return p.resolve()


def source_id(src):
    """A stable identity of the source: tarball hash, or git state, or a file listing."""
    if src.is_file():
        index = cache_root() / "src/index.json"
        st = src.stat()
        stamp = f"{src}:{st.st_size}:{st.st_mtime_ns}"
        try:
            known = json.loads(index.read_text())
        except (OSError, ValueError):
            known = {}
        if stamp not in known:
            known[stamp] = "tar:" + sha256_file(src)
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(json.dumps(known, indent=1))
        return known[stamp]
    h = hashlib.sha256()
    if (src / ".git").exists():
        def git(*a):
            return subprocess.run(["git", "-C", str(src), *a], capture_output=True, check=True).stdout
        h.update(git("rev-parse", "HEAD"))
        h.update(git("diff", "HEAD", "--binary"))
        for name in git("ls-files", "-o", "--exclude-standard", "-z").split(b"\0"):
            if name:
                h.update(name)
                f = src / name.decode(errors="surrogateescape")
                if f.is_file():
                    h.update(sha256_file(f).encode())
        return "git:" + h.hexdigest()
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            p = Path(root) / name
            st = p.lstat()
            h.update(f"{p.relative_to(src)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return "tree:" + h.hexdigest()


def fragments(extra):
    """The MPTCP fragments (project's, or the fallback until they exist), the harness options,
    then the user's own fragments: later assignments win."""
    frags = []
    project = [f for f in PROJECT_FRAGMENTS if f.is_file()]
    if project:
        frags += project
    else:
        frags.append(FALLBACK_FRAGMENT)
    frags.append(HARNESS_FRAGMENT)
    for e in extra or []:
        p = Path(e).resolve()
        if not p.is_file():
            die(f"fragment {e} not found")
        frags.append(p)
    return frags


CONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")


NOT_SET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text):
    """Ordered {CONFIG_X: value}; 'n' for '# CONFIG_X is not set'."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        m = CONFIG_LINE.match(line)
        if m:
            out[m.group(1)] = m.group(2)
            continue
        m = NOT_SET.match(line)
        if m:
            out[m.group(1)] = "n"
    return out


class Spec:
    """Everything that determines one kernel image."""

    def __init__(self, source, extra_fragments=None, label=None):
        self.source = resolve_source(source)
        self.frags = fragments(extra_fragments)
        self.label = label or self.default_label()
        self._key = None

    def default_label(self):
        name = self.source.name
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)", name)
        return m.group(1) if m else name

    def inputs(self):
        return {
            "recipe": RECIPE_VERSION,
            "source": source_id(self.source),
            "fragments": [[f.name, f.read_text()] for f in self.frags],
            "arch": "x86_64",
            "gcc": tool_version(["gcc", "--version"]),
            "ld": tool_version(["ld", "--version"]),
        }

    @property
    def key(self):
        if self._key is None:
            blob = json.dumps(self.inputs(), sort_keys=True).encode()
            self._key = hashlib.sha256(blob).hexdigest()[:16]
        return self._key

    @property
    def kdir(self):
        return cache_root() / "kernels" / self.key

    @property
    def image(self):
        return self.kdir / "bzImage"


def meta_of(spec):
    try:
        return json.loads((spec.kdir / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


class CachedSpec(Spec):
    """An image already in the cache, named by its key (`kmx list`): no rebuild check."""

    def __init__(self, key, label=None):
        self._key = key
        try:
            self.meta = json.loads((cache_root() / "kernels" / key / "meta.json").read_text())
        except (OSError, ValueError):
            die(f"no cached kernel {key} (see `kmx list`)")
        self.source = Path(self.meta["source"])
        self.frags = [Path(f) for f in self.meta.get("fragments", [])]
        self.label = label or self.meta.get("label", key)
