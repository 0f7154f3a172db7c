# SPDX-License-Identifier: MIT OR Apache-2.0
"""A small model of BitBake's metadata language, enough to evaluate meta-mptcp's class and
bbappends without a Yocto checkout (CI has none): statements, override-qualified names,
:append/:prepend/:remove, weak defaults, flags, shell/python functions and `def` blocks.

It does not expand ${...} or run inline python: the gating proof compares the unexpanded
values BitBake would finalize, which is exactly what an override can or cannot change.
Real BitBake was used by hand to confirm the same result (docs/yocto.md, issue notes)."""

import re
from dataclasses import dataclass, field
from pathlib import Path

FUNC_RE = re.compile(r"^(?P<py>python\s+|fakeroot\s+)*(?P<name>[\w.\-+{}$:]+)?\s*\(\s*\)\s*\{\s*$")
DEF_RE = re.compile(r"^def\s+(?P<name>\w+)\s*\(")
ASSIGN_RE = re.compile(
    r"^(?:export\s+)?(?P<var>[A-Za-z0-9_\-.${}/+~:]+?)(?:\[(?P<flag>[A-Za-z0-9_\-.+${}/~]+)\])?"
    r"\s*(?P<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*(?P<q>[\"'])(?P<value>.*)(?P=q)\s*$",
    re.S,
)
DIRECTIVE_RE = re.compile(r"^(?P<kw>inherit|require|include|addtask|deltask|EXPORT_FUNCTIONS|addhandler)\b\s*(?P<rest>.*)$")
OPS = ("append", "prepend", "remove")


@dataclass
class Statement:
    kind: str  # assign | func | def | directive
    name: str = ""  # variable/function name as written, with its :overrides
    op: str = ""
    flag: str = ""
    value: str = ""
    python: bool = False
    keyword: str = ""
    origin: str = ""
    line: int = 0


def split_name(name):
    """'SRC_URI:append:mptcp' -> ('SRC_URI', 'append', ('mptcp',)). The operation (if any) and
    the overrides that must all be active for the statement to apply."""
    parts = name.split(":")
    base, rest = parts[0], parts[1:]
    op = next((p for p in rest if p in OPS), "")
    return base, op, tuple(p for p in rest if p not in OPS)


def parse(path):
    """The statements of one metadata file, in order."""
    lines = Path(path).read_text().split("\n")
    out, i = [], 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = DEF_RE.match(line)
        if m:
            body = [line]
            while i < len(lines) and (not lines[i].strip() or lines[i][:1] in " \t"):
                body.append(lines[i])
                i += 1
            out.append(Statement("def", name=m.group("name"), value="\n".join(body).rstrip() + "\n",
                                 python=True, origin=str(path), line=lineno))
            continue
        m = FUNC_RE.match(line)
        if m:
            body = []
            while i < len(lines) and not re.match(r"^\}\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            i += 1
            name = m.group("name") or "__anonymous"
            out.append(Statement("func", name=name, value="\n".join(body) + "\n",
                                 python=bool(m.group("py") and "python" in m.group("py")),
                                 origin=str(path), line=lineno))
            continue
        m = DIRECTIVE_RE.match(stripped)
        if m:
            out.append(Statement("directive", keyword=m.group("kw"), value=m.group("rest"),
                                 origin=str(path), line=lineno))
            continue
        text = stripped
        while text.endswith("\\") and i < len(lines):
            text = text[:-1] + lines[i]
            i += 1
        m = ASSIGN_RE.match(text)
        if not m:
            raise SyntaxError("%s:%d: not understood: %s" % (path, lineno, stripped))
        out.append(Statement("assign", name=m.group("var"), op=m.group("op"), flag=m.group("flag") or "",
                             value=m.group("value"), origin=str(path), line=lineno))
    return out


@dataclass
class Data:
    """Variables and functions as BitBake keeps them before finalization: plain values,
    override-qualified values, pending :append/:prepend/:remove, flags, `def` functions."""
    values: dict = field(default_factory=dict)  # "NAME" or "NAME:ov1:ov2" -> value
    defaults: dict = field(default_factory=dict)  # ??= weak defaults
    pending: dict = field(default_factory=dict)  # base -> [(op, value, overrides)]
    flags: dict = field(default_factory=dict)  # (name, flag) -> value
    python: set = field(default_factory=set)  # names of python functions
    defs: dict = field(default_factory=dict)  # def name -> source
    inherited: list = field(default_factory=list)
    tasks: list = field(default_factory=list)

    def apply(self, stmt, load_class=None):
        if stmt.kind == "def":
            self.defs[stmt.name] = stmt.value
            return
        if stmt.kind == "directive":
            if stmt.keyword == "inherit":
                for cls in stmt.value.split():
                    if "${" in cls:
                        raise ValueError("%s:%d: inherit of an expression is not modelled" % (stmt.origin, stmt.line))
                    if cls not in self.inherited:
                        self.inherited.append(cls)
                        for s in (load_class(cls) if load_class else []):
                            self.apply(s, load_class)
            elif stmt.keyword in ("addtask", "deltask"):
                self.tasks.append((stmt.keyword, stmt.value))
            return
        base, op, overrides = split_name(stmt.name)
        if stmt.kind == "func":
            if stmt.python:
                self.python.add(base)
            if op:
                self.pending.setdefault(base, []).append((op, stmt.value, overrides))
            else:
                self.values[stmt.name] = stmt.value
            return
        if stmt.flag:
            key = (stmt.name, stmt.flag)
            old = self.flags.get(key)
            self.flags[key] = combine(old, stmt.op, stmt.value)
            return
        if op:
            # ":=" would expand now; values stay unexpanded here, so it acts like "=".
            if stmt.op not in ("=", ":=", "+="):
                raise ValueError("%s:%d: %s with %s is not modelled" % (stmt.origin, stmt.line, stmt.name, stmt.op))
            value = " " + stmt.value if stmt.op == "+=" else stmt.value
            self.pending.setdefault(base, []).append((op, value, overrides))
            return
        if stmt.op == "??=":
            self.defaults.setdefault(stmt.name, stmt.value)
            return
        self.values[stmt.name] = combine(self.values.get(stmt.name), stmt.op, stmt.value)

    def finalize(self, overrides):
        """{name: value} after overrides, as bitbake -e would show them (unexpanded)."""
        active = list(overrides)
        names = {split_name(k)[0] for k in list(self.values) + list(self.defaults) + list(self.pending)}
        result = {}
        for base in sorted(names):
            value = self.values.get(base, self.defaults.get(base))
            best = -1
            for key in list(self.values) + list(self.defaults):
                b, op, ovs = split_name(key)
                if b != base or op or not ovs or not all(o in active for o in ovs):
                    continue
                rank = max(active.index(o) for o in ovs)
                if rank >= best:
                    best, value = rank, self.values.get(key, self.defaults.get(key))
            for op, val, ovs in self.pending.get(base, []):
                if not all(o in active for o in ovs):
                    continue
                if value is None:
                    value = ""
                if op == "append":
                    value = value + val
                elif op == "prepend":
                    value = val + value
                else:
                    value = " ".join(w for w in value.split() if w not in val.split())
            if value is not None:
                result[base] = value
        return result


def combine(old, op, value):
    old = old or ""
    if op in ("=", ":="):
        return value
    if op == "?=":
        return old if old else value
    if op == "+=":
        return (old + " " + value) if old else value
    if op == "=+":
        return (value + " " + old) if old else value
    if op == ".=":
        return old + value
    if op == "=.":
        return value + old
    raise ValueError("operator %s" % op)


def evaluate(files, classes_dir=None):
    """Parse and apply files in order (a recipe, then its bbappends); classes come from
    classes_dir. Returns the Data before finalization."""
    data = Data()

    def load_class(name):
        path = Path(classes_dir) / ("%s.bbclass" % name) if classes_dir else None
        return parse(path) if path and path.exists() else []

    for f in files:
        for stmt in parse(f):
            data.apply(stmt, load_class)
    return data
