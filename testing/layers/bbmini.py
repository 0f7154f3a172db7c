# SPDX-License-Identifier: MIT OR Apache-2.0
"""BitBake's override semantics on top of oelint-parser's statements, enough to evaluate
meta-mptcp's class and bbappends without a Yocto checkout (CI has none): override-qualified
names, :append/:prepend/:remove, weak defaults, flags, shell/python functions and `def` blocks.
oelint-parser (the parser under oelint-adv) splits the files into statements; it does not
finalize overrides, so that part stays here.

It does not expand ${...} or run inline python: the gating proof compares the unexpanded
values BitBake would finalize, which is exactly what an override can or cannot change.
Real BitBake was used by hand to confirm the same result (docs/yocto.md, issue notes)."""

import re
from dataclasses import dataclass, field
from pathlib import Path

from oelint_parser.cls_stash import Stash

OPS = ("append", "prepend", "remove")
ASSIGN_OPS = ("??=", "?=", ":=", "+=", "=+", ".=", "=.", "=")
# `python () {` has no name; BitBake calls it this.
ANONYMOUS = "__anonymous"


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


def _value(item, op):
    """The assigned value as written (oelint-parser's own value has inline python replaced by a
    placeholder): the text after the operator, continuations joined, quotes removed."""
    text = item.RealRaw.replace("\\\n", "").strip()
    value = text.partition(op)[2].strip()
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[1:-1]
    raise SyntaxError("%s:%d: not understood: %s" % (item.Origin, item.InFileLine, text))


def _statement(item, path):
    kind, line = type(item).__name__, item.InFileLine
    if kind in ("Comment", "Item") and not item.RealRaw.strip():
        return None
    if kind == "Comment":
        return None
    if kind == "Variable":
        # The name as written: oelint-parser reads an old-style `_override` suffix as an
        # override, BitBake (and this model) since honister does not.
        name = item.RealRaw.partition(item.VarOp)[0].strip()
        return Statement("assign", name=name, op=item.VarOp.strip(), value=_value(item, item.VarOp),
                         origin=path, line=line)
    if kind == "Export":  # `export NAME = "value"`: oelint-parser keeps no operator for it
        rest = item.RealRaw.strip()[len("export "):].strip()[len(item.Name):].lstrip()
        op = next((o for o in ASSIGN_OPS if rest.startswith(o)), None)
        if op is None:
            raise SyntaxError("%s:%d: not understood: %s" % (path, line, item.RealRaw.strip()))
        return Statement("assign", name=item.Name, op=op, value=_value(item, op), origin=path, line=line)
    if kind == "FlagAssignment":
        return Statement("assign", name=item.VarName, op=item.VarOp.strip(), flag=item.Flag,
                         value=_value(item, item.VarOp), origin=path, line=line)
    if kind == "Function":
        lines = item.RealRaw.rstrip("\n").split("\n")
        end = max(i for i, text in enumerate(lines) if re.match(r"^\}\s*$", text))
        name = ":".join([item.FuncName or ANONYMOUS] + list(item.SubItems))
        return Statement("func", name=name, value="\n".join(lines[1:end]) + "\n", python=item.IsPython,
                         origin=path, line=line)
    if kind == "PythonBlock":
        return Statement("def", name=item.FuncName, value=item.RealRaw.rstrip() + "\n", python=True,
                         origin=path, line=line)
    if kind in ("Inherit", "Include", "AddTask", "DelTask"):
        keyword, _, rest = item.RealRaw.strip().partition(" ")
        return Statement("directive", keyword=keyword, value=rest.strip(), origin=path, line=line)
    raise SyntaxError("%s:%d: not understood: %s" % (path, line, item.RealRaw.strip()))


def parse(path):
    """The statements of one metadata file, in order, as oelint-parser (the parser under
    oelint-adv) reads them; only this file's, not those of what it inherits or requires."""
    path = str(Path(path).resolve())
    stash = Stash(quiet=True)
    stash.AddFile(path)
    stash.Finalize()
    items = [i for i in stash.GetItemsFor(filename=path) if i.Origin == path]
    return [s for s in (_statement(i, path) for i in sorted(items, key=lambda i: i.InFileLine)) if s]


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
