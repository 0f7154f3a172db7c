# SPDX-License-Identifier: MIT OR Apache-2.0
"""The weak-network scenarios (testing/kernel-matrix/scenarios.py) in the guest, judged against
their criteria and the expected failures."""
import json
import shlex
import sys
import time
from pathlib import Path

from .common import SCENARIO_RUNNER, SCENARIO_SUITE, die
from .build import build
from .boot import run_guest
from .selftests import new_results_dir, suite_status


def scenarios(spec, only, timeout, budget, kvm, agent, traffic):
    """testing/kernel-matrix/scenarios.py in the guest (netem exists only there): the project lab
    with NetworkManager and the agent, weak-network scenarios, one case per scenario."""
    for b in (agent, traffic):
        if not Path(b).is_file():
            die(f"{b} not found: cargo build -p mptcp-agent -p mptcp-lab (release for mptcp-traffic: "
                "the receiver checks every byte, slow in a debug build under TCG)")
    out = new_results_dir(spec.label, "scenarios")
    # The host's Debian python3 (the guest sees the host's root filesystem).
    py = "/usr/bin/python3" if Path("/usr/bin/python3").is_file() else sys.executable
    runner = [py, str(SCENARIO_RUNNER), "run", "--out", str(out), "--budget", str(budget),
              "--agent", str(Path(agent).resolve()), "--traffic", str(Path(traffic).resolve())]
    if only:
        runner += ["--only", only]
    q = lambda name: shlex.quote(str(out / name))  # noqa: E731
    inner = ("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; "
             f"uname -r > {q('uname')}; {shlex.join(runner)} > {q('runner.log')} 2>&1; "
             f"rc=$?; echo $rc > {q('rc')}; exit $rc")
    t0 = time.monotonic()
    image = build(spec)
    with open(out / "console.log", "wb") as f:
        rc = run_guest(image, inner, timeout, f, rwdirs=[out], kvm=kvm, results=out)
    secs = time.monotonic() - t0
    release = (out / "uname").read_text().strip() if (out / "uname").is_file() else "?"
    try:
        raw = json.loads((out / "scenarios.json").read_text())
    except (OSError, ValueError):
        raw = {"scenarios": [], "error": f"no scenarios.json (guest exit {rc}); see {out}"}
    cases = []
    for sc in raw.get("scenarios", []):
        cases.append({"name": sc["name"], "status": sc.get("status", "fail"), "checks": len(CRITERIA_NAMES),
                      "detail": "; ".join(sc.get("reasons", []))[:400]})
    if raw.get("error"):
        cases.append({"name": "(harness)", "status": "fail", "checks": 0, "detail": raw["error"][:300]})
    if not cases:
        cases = [{"name": "(no scenario ran)", "status": "fail", "checks": 0, "detail": f"exit {rc}; see {out}"}]
    suite = {"suite": SCENARIO_SUITE, "rc": rc, "seconds": round(secs, 1), "cases": cases,
             "status": suite_status(rc, cases)}
    result = {"kernel": {"label": spec.label, "release": release, "key": spec.key},
              "results_dir": str(out), "suites": [suite], "scenarios": raw.get("scenarios", []),
              "scenario_criteria": raw.get("criteria")}
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


# An expected-failures reason starting with this accepts a pass too (see apply_expected).
UNSTABLE = "unstable on "


CRITERIA_NAMES = ("intact", "max_gap_ms", "restore_s", "failed_joins", "goodput_vs_tcp")


def load_expected(path):
    """{(suite, case): why} from a tab-separated expected-failures file."""
    expected = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            suite, case, why = line.split("\t", 2)
            expected[(suite, case)] = why
    return expected


def apply_expected(results, expected):
    """Cases listed in `expected` must fail: they count as passed with their reason printed. Any
    other failure fails, and so does a listed case that passed (the list is stale). Returns the
    number of unexpected outcomes. A reason starting with UNSTABLE accepts either outcome (a
    measurement near its limit on that kernel)."""
    bad = 0
    for r in results:
        for s in r["suites"]:
            for c in s["cases"]:
                why = expected.get((s["suite"], c["name"]))
                if why is None:
                    if c["status"] == "fail":
                        bad += 1
                    continue
                if why.startswith(UNSTABLE):
                    print(f"ok    {c['status']} (either accepted): {s['suite']} {c['name']}: {why}")
                elif c["status"] == "fail":
                    c["expected"] = why
                    print(f"ok    expected failure: {s['suite']} {c['name']}: {why}")
                else:
                    print(f"FAIL  {s['suite']} {c['name']} was expected to fail ({why}) but is {c['status']}: "
                          "the expected list is stale")
                    bad += 1
    return bad


def fmt_s(x):
    return "never" if x is None else f"{x:.1f} s"


def render_scenarios(results):
    """Markdown: one row per (scenario, kernel) with the weak-network metrics."""
    rows = []
    for r in results:
        k = r["kernel"]
        col = f"{k['label']} ({k.get('release', '?')})"
        for sc in r.get("scenarios", []):
            m = sc.get("metrics")
            if not m:
                rows.append((sc["name"], col, "–", "–", "–", "–", "–", "–", sc.get("status", "?")))
                continue
            rest = [x["restore_s"] for x in m.get("restores", [])]
            restore = "–" if not rest else ", ".join(fmt_s(x) for x in rest)
            gap = "–" if m.get("max_gap_ms") is None else f"{m['max_gap_ms'] / 1000:.1f} s"
            share = "–" if m.get("wwan0_share") is None else f"{100 * m['wwan0_share']:.0f} %"
            ratio = "" if m.get("goodput_vs_tcp") is None else f" ({m['goodput_vs_tcp']:.2f} × TCP)"
            verdict = "pass" if sc.get("status") == "pass" else "**FAIL**"
            rows.append((sc["name"], col, f"{m['intact']}/{m['transfers']}",
                         f"{m['stall_seconds']} ({m['stalled_transfers']} transfers)", gap, restore,
                         f"{m['failed_joins']}/{m['transfers']}", f"{m.get('mbps_mean', 0):.1f}{ratio} · {share}",
                         verdict))
    if not rows:
        return ""
    order = []
    for name, *_ in rows:
        if name not in order:
            order.append(name)
    rows.sort(key=lambda x: order.index(x[0]))
    lines = ["| scenario | kernel | intact | stall seconds (> 1 s) | longest gap | restored link carries data after "
             "| failed joins | Mbit/s (× plain TCP on wlan0) · wwan0 share | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
