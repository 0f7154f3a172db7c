# SPDX-License-Identifier: MIT OR Apache-2.0
"""Results of several kernels rendered as one kernel x test-case table."""
from pathlib import Path

from .common import die
from .selftests import result_counts
from .scenarios import apply_expected, load_expected, render_scenarios


def render_table(results):
    """Markdown: one row per (suite, case), one column per kernel."""
    cols = []
    for r in results:
        k = r["kernel"]
        col = f"{k['label']} ({k.get('release', '?')})"
        if col not in cols:
            cols.append(col)
    rows = {}
    order = []
    failures = []
    for r in results:
        k = r["kernel"]
        col = f"{k['label']} ({k.get('release', '?')})"
        for s in r["suites"]:
            for c in s["cases"]:
                key = (s["suite"], c["name"])
                if key not in rows:
                    rows[key] = {}
                    order.append(key)
                mark = {"pass": "pass", "fail": "**FAIL**", "skip": "skip"}[c["status"]]
                if c.get("expected"):
                    mark += " (expected)"
                rows[key][col] = mark
                if c["status"] != "pass":
                    st = c["status"] + (" (expected)" if c.get("expected") else "")
                    failures.append((col, s["suite"], c["name"], st, c.get("detail", "")))
    lines = ["| suite | case | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for key in order:
        cells = [rows[key].get(c, "–") for c in cols]
        name = key[1].replace("|", "\\|")
        lines.append(f"| {key[0]} | {name} | " + " | ".join(cells) + " |")
    summary = ["", "| kernel | suites pass | suites fail | suites skip | cases pass | cases fail | cases skip |",
               "|---|---|---|---|---|---|---|"]
    for col in cols:
        mine = [r for r in results if f"{r['kernel']['label']} ({r['kernel'].get('release', '?')})" == col]
        sc = result_counts(mine)
        cc = {st: sum(1 for r in mine for s in r["suites"] for c in s["cases"] if c["status"] == st)
              for st in ("pass", "fail", "skip")}
        summary.append(f"| {col} | {sc['pass']} | {sc['fail']} | {sc['skip']} | {cc['pass']} | {cc['fail']} | {cc['skip']} |")
    notes = ["", "Failures and skips:", ""]
    for col, suite, name, st, detail in failures:
        d = detail.replace("|", "\\|")
        notes.append(f"- {col} · {suite} · {name}: {st}" + (f" — {d}" if d else ""))
    if not failures:
        notes.append("- none")
    return "\n".join(summary[1:] + [""] + lines + notes) + "\n"


def expect_by_kernel(items, labels):
    """--expect KERNEL=TSV items (repeatable) as {kernel label: {(suite, case): why}}; each
    KERNEL must be one of `labels`."""
    expect = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            die(f"--expect {item!r}: want KERNEL=TSV, e.g. 5.10=testing/kernel-matrix/expected/5.10.223.tsv")
        if not Path(path).is_file():
            die(f"--expect {item!r}: {path} not found")
        expect.setdefault(label, {}).update(load_expected(path))
    unused = set(expect) - set(labels)
    if unused:
        die(f"--expect names no kernel of this run: {', '.join(sorted(unused))} "
            f"(kernels: {', '.join(labels)})")
    return expect


def apply_expected_by_kernel(results, expect):
    """apply_expected per kernel (a kernel without a list: every failing case counts). Returns
    the number of unexpected outcomes."""
    return sum(apply_expected([r], expect.get(r["kernel"]["label"], {})) for r in results)


def render_all(results):
    """The kernel x case table, then the weak-network one if any scenario ran."""
    table = render_table(results)
    weak = render_scenarios(results)
    if weak:
        table += "\nWeak-network scenarios (testing/kernel-matrix/scenarios.py):\n\n" + weak
    return table
