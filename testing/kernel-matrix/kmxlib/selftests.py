# SPDX-License-Identifier: MIT OR Apache-2.0
"""Running the tree's MPTCP selftests, KUnit and Rust test binaries in the guest, and
parsing their output case by case."""
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from .common import GUEST_RUNNER, GUEST_SCRIPT, REPO, SELFTEST_REL, die, log
from .cache import Lock, cache_root, source_id
from .build import build, unpack
from .boot import run_bounded, run_guest


STATUS = {"ok": "pass", "pass": "pass", "fail": "fail", "skip": "skip", "failed": "fail"}


TOKEN = re.compile(r"\[\s*(OK|ok|FAIL|fail|SKIP|skip|Ok)\s*\]")


def norm_name(text):
    text = re.sub(r"\(duration\s+\d+ms\)", "", text)
    # simult_flows.sh: "balanced bwidth 5221 max 5005" (measured and allowed ms).
    # Glued to the name when it fills its column ("reverse direction11255 max 11921").
    text = re.sub(r"\s*\d+ max \d+(?=\s|$)", "", text)
    text = re.sub(r"\s+", " ", text).strip(" -:")
    return text


def parse_selftest(text):
    """Per-case results from a kselftest MPTCP script's output. Each line carrying a
    [ OK ]/[FAIL]/[SKIP] token is a check; mptcp_join-style numbered headers ("01 name")
    group the check lines that follow them into one case."""
    cases = []
    current = None
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        line = raw.rstrip()
        header = re.match(r"^\s*(\d{2,3})\s+(\S.*)$", line)
        tokens = [STATUS[t.lower()] for t in TOKEN.findall(line)]
        if header and not line.lstrip().startswith(("[", "#")):
            head = TOKEN.split(header.group(2))[0]
            name = header.group(1) + " " + re.split(r"\s{2,}", head.strip())[0]
            current = {"name": norm_name(name), "status": "pass", "checks": 0, "detail": []}
            cases.append(current)
            if not tokens:
                continue
        if not tokens:
            if current and current["status"] == "fail" and len(current["detail"]) < 6 and line.strip():
                current["detail"].append(line.strip())
            continue
        if current is None or not (header or raw[:1].isspace()):
            name = norm_name(TOKEN.split(line)[0])
            if not name and i > 0 and not TOKEN.search(lines[i - 1]):
                # mptcp_connect.sh: messages broke the case's line and "(duration …) [ FAIL ]"
                # follows on its own; the name starts the first line after the last result.
                j = i - 1
                while j > 0 and i - j < 5 and lines[j - 1].strip() and not TOKEN.search(lines[j - 1]):
                    j -= 1
                name = norm_name(lines[j].split("\t")[0])
            current = {"name": name or f"line {i + 1}", "status": "pass", "checks": 0, "detail": []}
            cases.append(current)
        current["checks"] += len(tokens)
        if "fail" in tokens:
            current["status"] = "fail"
            current["detail"].append(norm_name(line))
        elif "skip" in tokens and current["status"] == "pass":
            current["status"] = "skip"
    # Same name twice (a check repeated in a loop): number them so table rows stay distinct.
    seen = {}
    for c in cases:
        n = seen.get(c["name"], 0) + 1
        seen[c["name"]] = n
        if n > 1:
            c["name"] = f"{c['name']} #{n}"
        c["detail"] = " | ".join(c["detail"])[:300]
    return cases


def parse_ktap(text):
    """KUnit results from dmesg: nested 'ok N - name' / 'not ok N - name # SKIP'."""
    cases = []
    suite_stack = []
    for raw in text.splitlines():
        line = re.sub(r"^\[\s*[\d.]+\]\s*", "", raw)
        m = re.match(r"^(\s*)# Subtest: (\S+)", line)
        if m:
            suite_stack.append((len(m.group(1)), m.group(2)))
            continue
        # "ok 1 - name" (TAP, 5.10) or "ok 1 name" (KTAP version 1, 5.18+ and 6.1).
        m = re.match(r"^(\s*)(not ok|ok) \d+ (?:- )?(\S+)(.*)$", line)
        if not m:
            continue
        indent, verdict, name, rest = len(m.group(1)), m.group(2), m.group(3), m.group(4)
        status = "pass" if verdict == "ok" else "fail"
        if "# SKIP" in rest:
            status = "skip"
        while suite_stack and suite_stack[-1][0] >= indent and suite_stack[-1][1] == name:
            suite_stack.pop()
            break
        else:
            suite = suite_stack[-1][1] if suite_stack else ""
            cases.append({"name": f"{suite}.{name}" if suite else name, "status": status,
                          "checks": 1, "detail": rest.strip()})
    return cases


def parse_libtest(text):
    """libtest / libtest-mimic lines: 'test NAME ... ok|FAILED|ignored'."""
    cases = []
    by_name = {}
    for line in text.splitlines():
        m = re.match(r"^test (\S+)\s+\.\.\.\s+(ok|FAILED|ignored)\b(.*)$", line.strip())
        if m:
            st = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}[m.group(2)]
            c = {"name": m.group(1), "status": st, "checks": 1, "detail": m.group(3).strip(" ,")}
            cases.append(c)
            by_name[m.group(1)] = c
    # Failure bodies: "---- NAME stdout ----" (libtest) or "---- NAME ----" (libtest-mimic).
    for m in re.finditer(r"^---- (\S+)(?: stdout)? ----\n(.*?)(?=^---- |\n\nfailures:|\Z)", text, re.M | re.S):
        c = by_name.get(m.group(1))
        if c is not None:
            c["detail"] = " ".join(m.group(2).split())[:300]
    return cases


# Kernel reports that mean a bug, whatever the test's verdict: WARN_ON and lockdep ("WARNING:
# CPU:", "WARNING: possible circular locking dependency detected", "WARNING: suspicious RCU
# usage"), KASAN and might_sleep ("BUG: KASAN: ...", "BUG: sleeping function called from
# invalid context"), UBSAN, oopses and hung tasks.
SPLAT = re.compile(r"\b(?:WARNING|BUG|UBSAN): |kernel BUG at |general protection fault|Kernel panic"
                   r"|INFO: task \S+ blocked for more than|Oops: ")


def find_splats(text):
    """The kernel log's report lines (timestamps removed), in order."""
    return [re.sub(r"^\[\s*[\d.]+\]\s*", "", line).strip()
            for line in text.splitlines() if SPLAT.search(line)]


def kernel_log_suite(out, segments, name="kernel:log"):
    """One case per piece of the guest's kernel log (boot, each script, the end): a report in
    it fails the case, its first lines as the detail. Pieces the guest did not write are left
    out (it crashed, which fails the script already)."""
    cases = []
    for seg in segments:
        f = out / f"{seg}.kmsg"
        if not f.is_file():
            continue
        found = find_splats(f.read_text(errors="replace"))
        cases.append({"name": f"{seg}: no WARN/lockdep/KASAN/BUG report", "status": "fail" if found else "pass",
                      "checks": 1, "detail": " | ".join(found[:3])[:300]})
    return {"suite": name, "rc": 0, "seconds": 0, "cases": cases, "status": suite_status(0, cases)}


def suite_status(rc, cases):
    if rc == 4 and not any(c["status"] == "fail" for c in cases):
        return "skip"
    if rc != 0 or any(c["status"] == "fail" for c in cases):
        return "fail"
    return "pass"


def print_suites(result):
    k = result["kernel"]
    print(f"== {k['label']} ({k.get('release', '?')}) ==")
    for s in result["suites"]:
        counts = {st: sum(1 for c in s["cases"] if c["status"] == st) for st in ("pass", "fail", "skip")}
        print(f"{s['status'].upper():4}  {s['suite']:<34} {s.get('seconds', 0):>6.0f} s  "
              f"{len(s['cases'])} cases: {counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skip"
              + (f"  (exit {s['rc']})" if s.get("rc") not in (0, None) else ""))
        for c in s["cases"]:
            if c["status"] != "pass":
                print(f"      {c['status']}: {c['name']}" + (f" -- {c['detail']}" if c.get("detail") else ""))


def result_counts(results):
    n = {"pass": 0, "fail": 0, "skip": 0}
    for r in results:
        for s in r["suites"]:
            n[s["status"]] += 1
    return n


def selftest_files(tree):
    d = tree / SELFTEST_REL
    if not (d / "Makefile").is_file():
        die(f"{d} not found: is {tree} a kernel tree with MPTCP selftests?")
    mk = (d / "Makefile").read_text().replace("\\\n", " ")

    def var(name):
        vals = []
        for m in re.finditer(rf"^{name}\s*[:+]?=\s*(.*)$", mk, re.M):
            vals += m.group(1).split()
        return vals

    return var("TEST_PROGS"), var("TEST_GEN_FILES") + var("TEST_GEN_PROGS")


def prepare_selftests(spec):
    """Copy the tree's MPTCP selftests out of the tree (a user's tree stays untouched) and
    build their helpers with the host's gcc against the system headers."""
    tree = unpack(spec.source)
    progs, gen = selftest_files(tree)
    sid = hashlib.sha256(source_id(spec.source).encode()).hexdigest()[:16]
    root = cache_root() / "selftests" / sid
    dest = root / SELFTEST_REL
    with Lock(cache_root() / "selftests" / f"{sid}.lock"):
        if not (root / ".built").is_file():
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(tree / SELFTEST_REL, dest)
            for f in (tree / "tools/testing/selftests").glob("*"):
                if f.is_file() and (f.name == "lib.mk" or f.name.startswith("kselftest")):
                    shutil.copy2(f, root / "tools/testing/selftests" / f.name)
            # lib.mk includes it for ARCH detection.
            if (tree / "scripts/subarch.include").is_file():
                (root / "scripts").mkdir(exist_ok=True)
                shutil.copy2(tree / "scripts/subarch.include", root / "scripts/subarch.include")
            # Named targets only: 'all' would run headers_install into the tree (KSFT_KHDR_INSTALL).
            r = subprocess.run(["make", "-C", str(dest), *gen], capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                die(f"building selftest helpers failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
            (root / ".built").write_text("\n".join(gen) + "\n")
    return dest, progs


def pick_tests(progs, wanted):
    if not wanted or wanted == "all":
        return progs
    out = []
    for w in wanted.split(","):
        w = w.strip()
        name = w if w.endswith(".sh") else w + ".sh"
        if name not in progs:
            die(f"{name} is not in this tree's TEST_PROGS ({' '.join(progs)})")
        out.append(name)
    return out


def new_results_dir(label, what):
    # One process may start two runs within a second (the host suites take under one):
    # the second gets a suffix.
    # The directory reaches the guest's command line (virtme-ng mounts it): a label's spaces or
    # slashes would split or nest it, so they become '-'.
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "-", label).strip("-") or "kernel"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{what}-{os.getpid()}"
    root = cache_root() / "results"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        d = root / (base if n == 1 else f"{base}-{n}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    die(f"no free results directory for {base} under {root}")


def selftests(spec, tests, per_test_timeout, host=False, kunit=True, expect_all=True, kvm="auto", retries=0):
    """Run the chosen selftests; a failed script is run again (a fresh boot) up to `retries`
    times: the diag/connect scripts use 100 ms socket timeouts that an emulated (TCG) guest on
    a loaded host can miss. A suite that passed only on a retry says so in its cases' detail."""
    result = selftests_once(spec, tests, per_test_timeout, host, kunit, expect_all, kvm)
    for attempt in range(1, retries + 1):
        failed = [s["suite"].split(":", 1)[1] for s in result["suites"]
                  if s["status"] == "fail" and s["suite"].startswith("selftest:")]
        if not failed:
            break
        log(f"retry {attempt}/{retries}: {' '.join(failed)}")
        again = selftests_once(spec, ",".join(failed), per_test_timeout, host, False, expect_all, kvm)
        for new in again["suites"]:
            if new["suite"] == "kernel:log":
                # A report is a bug even when the retry is clean: keep both attempts' cases.
                log_suite = next((s for s in result["suites"] if s["suite"] == "kernel:log"), None)
                for c in new["cases"]:
                    c["name"] = f"{c['name']} (retry {attempt})"
                if log_suite is None:
                    result["suites"].append(new)
                else:
                    log_suite["cases"] += new["cases"]
                    log_suite["status"] = suite_status(0, log_suite["cases"])
                continue
            for i, old in enumerate(result["suites"]):
                if old["suite"] == new["suite"]:
                    first = [c["name"] for c in old["cases"] if c["status"] == "fail"]
                    new["retried"] = attempt
                    if new["status"] == "pass":
                        for c in new["cases"]:
                            if c["name"] in first:
                                c["detail"] = f"failed on attempt 1, passed on retry {attempt} (timing)"
                    result["suites"][i] = new
    return result


def selftests_once(spec, tests, per_test_timeout, host, kunit, expect_all, kvm):
    stdir, progs = prepare_selftests(spec)
    chosen = pick_tests(progs, tests)
    label = "host" if host else spec.label
    out = new_results_dir(label, "selftests")
    runner_args = [str(GUEST_RUNNER), str(stdir), str(out), str(per_test_timeout), "1" if expect_all else "0",
                   "host" if host else "guest"]
    runner_args += chosen
    total_timeout = per_test_timeout * len(chosen) + 180
    t0 = time.monotonic()
    if host and os.geteuid() != 0:
        die("selftests on the host need root")
    image = None if host else build(spec)
    with open(out / "console.log", "wb") as console:
        if host:
            rc = run_bounded(["bash", *runner_args], total_timeout, console)
        else:
            rc = run_guest(image, shlex.join(["bash", *runner_args]), total_timeout, console, rwdirs=[out],
                           rodirs=[stdir], kvm=kvm, results=out)
    wall = time.monotonic() - t0
    release = (out / "uname").read_text().strip() if (out / "uname").is_file() else "?"
    result = {"kernel": {"label": label, "release": release, "key": None if host else spec.key},
              "source": str(spec.source), "wall_seconds": round(wall, 1), "results_dir": str(out),
              "suites": []}
    if rc != 0:
        log(f"guest exited {rc}; console: {out / 'console.log'}")
    for t in chosen:
        logf, rcf = out / f"{t}.log", out / f"{t}.rc"
        text = logf.read_text(errors="replace") if logf.is_file() else ""
        trc = int(rcf.read_text().split()[0]) if rcf.is_file() else -1
        secs = float(rcf.read_text().split()[1]) if rcf.is_file() and len(rcf.read_text().split()) > 1 else 0.0
        cases = parse_selftest(text)
        suite = {"suite": f"selftest:{t}", "rc": trc, "seconds": secs, "cases": cases,
                 "status": suite_status(trc, cases)}
        if trc == -1:
            suite["status"] = "fail"
            suite["cases"].append({"name": "(did not finish)", "status": "fail", "checks": 0,
                                   "detail": "no exit code: guest crashed or timed out"})
        result["suites"].append(suite)
    if kunit and not host:
        dm = out / "dmesg.log"
        cases = parse_ktap(dm.read_text(errors="replace")) if dm.is_file() else []
        if not cases:
            cases = [{"name": "(no KUnit MPTCP results in dmesg)", "status": "fail", "checks": 0,
                      "detail": "CONFIG_MPTCP_KUNIT_TEST(S) not built in?"}]
        mptcp = [c for c in cases if "mptcp" in c["name"]]
        result["suites"].append({"suite": "kunit:mptcp", "rc": 0, "seconds": 0, "cases": mptcp or cases,
                                 "status": suite_status(0, mptcp or cases)})
    if not host:
        log_suite = kernel_log_suite(out, ["boot", *chosen, "end"])
        if log_suite["cases"]:
            result["suites"].append(log_suite)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def libtest(spec, argv, timeout, host=False, kvm="auto", suite_name=None, env=None):
    binary = Path(argv[0]).resolve()
    if not binary.is_file():
        die(f"{binary} not found")
    label = "host" if host else spec.label
    out = new_results_dir(label, "libtest")
    envs = ["env", "MPTCP_REQUIRE_ROOT_TESTS=1", *(env or [])]
    q = lambda name: shlex.quote(str(out / name))  # noqa: E731
    # stdout and stderr to separate files: over the guest's serial line they interleave
    # mid-line, which would break the "test NAME ... ok" lines. In the guest, the kernel log
    # before and during the run, for kernel_log_suite.
    run = [f"{shlex.join([*envs, str(binary), *argv[1:]])} > {q('stdout.log')} 2> {q('stderr.log')}",
           "rc=$?", f"echo $rc > {q('rc')}"]
    if not host:
        run = [f"dmesg -c > {q('boot.kmsg')} 2>&1", *run, f"dmesg -c > {q('run.kmsg')} 2>&1"]
    lines = [f"uname -r > {q('uname')}", *run]
    # The steps go in a script in the results directory: on the kernel command line (where
    # virtme-ng puts the guest's command) they could pass 5.10's 2,048 bytes with a long label,
    # which cuts off the init path and panics the guest.
    (out / GUEST_SCRIPT).write_text("\n".join([*lines, "exit $rc"]) + "\n")
    inner = f"bash {q(GUEST_SCRIPT)}"
    t0 = time.monotonic()
    image = None if host else build(spec)
    with open(out / "console.log", "wb") as f:
        if host:
            rc = run_bounded(["bash", "-c", inner], timeout, f)
        else:
            rc = run_guest(image, inner, timeout, f, rwdirs=[out], kvm=kvm, results=out)
    secs = time.monotonic() - t0
    text = (out / "stdout.log").read_text(errors="replace") if (out / "stdout.log").is_file() else ""
    cases = parse_libtest(text)
    release = (out / "uname").read_text().strip() if (out / "uname").is_file() else "?"
    status = suite_status(rc, cases)
    if not cases:
        status = "fail"
        cases = [{"name": "(no test ran)", "status": "fail", "checks": 0, "detail": f"exit {rc}; see {out}"}]
    suite = {"suite": suite_name or binary.name, "rc": rc, "seconds": round(secs, 1), "cases": cases, "status": status}
    result = {"kernel": {"label": label, "release": release, "key": None if host else spec.key},
              "results_dir": str(out), "suites": [suite]}
    if not host:
        log_suite = kernel_log_suite(out, ["boot", "run"], f"kernel:log:{suite['suite']}")
        if log_suite["cases"]:
            result["suites"].append(log_suite)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def default_binary(name, prefer=("release", "debug")):
    for profile in prefer:
        p = REPO / "target" / profile / name
        if p.is_file():
            return str(p)
    return str(REPO / "target" / prefer[-1] / name)


def cargo_test_binary(package, test_target):
    """Build (not run) a cargo integration test and return its executable."""
    r = subprocess.run(["cargo", "test", "-p", package, "--test", test_target, "--no-run",
                        "--message-format=json"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    exe = None
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg.get("target", {}).get("name") == test_target:
            exe = msg["executable"]
    if r.returncode != 0 or not exe:
        die(f"cargo test -p {package} --test {test_target} --no-run failed:\n{r.stderr[-3000:]}")
    return exe
