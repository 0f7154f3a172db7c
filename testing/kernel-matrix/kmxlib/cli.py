# SPDX-License-Identifier: MIT OR Apache-2.0
"""kmx: build a kernel tree for a QEMU guest, boot it with virtme-ng, run tests in it.

  kmx build      [SOURCE]            configure + build (cached by a hash of every input)
  kmx run        [SOURCE] -- CMD     boot the cached image, run CMD inside, exit with its code
  kmx selftests  [SOURCE]            the tree's tools/testing/selftests/net/mptcp + KUnit, per case
  kmx libtest    [SOURCE] -- BIN     a Rust test binary (libtest / libtest-mimic) in the guest, per case
  kmx matrix                         every selftest + KUnit + the Rust kernel tests on several kernels, one table
  kmx scenarios  [SOURCE]            weak-network scenarios (netem, link flaps, NAT joins) in the guest
  kmx table      RESULTS.json...     render result files as a kernel x test-case table (markdown)
  kmx key/path/list/clean            cache helpers

SOURCE (--source) is a kernel tarball or an unpacked tree (a BSP tree, a backported tree);
default: Debian bullseye's /usr/src/linux-source-5.10.tar.xz. Python standard library only.
"""
import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

from .common import DEFAULT_SOURCE, die, log
from .cache import CachedSpec, Spec, cache_root, meta_of
from .build import build
from .boot import KernelLogToStderr, install_signal_handlers, run_guest
from .selftests import (
    cargo_test_binary,
    default_binary,
    libtest,
    new_results_dir,
    print_suites,
    result_counts,
    selftests,
)
from .scenarios import apply_expected, load_expected, render_scenarios, scenarios
from .table import apply_expected_by_kernel, expect_by_kernel, render_all


def add_spec_args(p):
    p.add_argument("--source", "-s", help="kernel tarball or tree, or 5.10 / 6.1 (Debian linux-source); "
                                          f"default {DEFAULT_SOURCE} (or $KMX_SOURCE)")
    p.add_argument("--fragment", "-f", action="append", default=[],
                   help="extra config fragment applied last (repeatable)")
    p.add_argument("--label", help="name of this kernel in reports (default: version from the source name)")
    p.add_argument("--kernel", "-k", metavar="KEY", help="use this already built image (`kmx list`) as is")


def add_guest_args(p):
    p.add_argument("--kvm", choices=["auto", "on", "off"], default=os.environ.get("KMX_KVM", "auto"))


def spec_from(args):
    if getattr(args, "kernel", None):
        if args.source or args.fragment:
            die("--kernel names a built image: it excludes --source/--fragment")
        return CachedSpec(args.kernel, args.label)
    return Spec(args.source, args.fragment, args.label)


def strip_dashdash(argv):
    return argv[1:] if argv and argv[0] == "--" else argv


def cmd_build(args):
    spec = spec_from(args)
    t0 = time.monotonic()
    image = build(spec, jobs=args.jobs, timeout=args.timeout, force=args.force)
    m = meta_of(spec)
    log(f"{spec.label}: {m.get('release')} key {spec.key} ({time.monotonic() - t0:.0f} s)")
    print(image)


def cmd_run(args):
    spec = spec_from(args)
    argv = strip_dashdash(args.command)
    if not argv:
        die("run: give a command after --")
    command = argv[0] if len(argv) == 1 else shlex.join(argv)
    image = build(spec)
    t0 = time.monotonic()
    rc = run_guest(image, command, args.timeout, KernelLogToStderr(), memory=args.memory, cpus=args.cpus,
                   rwdirs=args.rwdir, rodirs=args.rodir, kvm=args.kvm)
    log(f"guest command exited {rc} after {time.monotonic() - t0:.1f} s")
    sys.exit(rc)


def cmd_selftests(args):
    spec = spec_from(args)
    r = selftests(spec, args.tests, args.per_test_timeout, host=args.host, kunit=not args.no_kunit,
                  expect_all=not args.allow_missing_features, kvm=args.kvm, retries=args.retries)
    print_suites(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    n = result_counts([r])
    print(f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped")
    sys.exit(1 if n["fail"] else 0)


def cmd_libtest(args):
    spec = spec_from(args)
    argv = strip_dashdash(args.command)
    if not argv:
        die("libtest: give the test binary after --")
    r = libtest(spec, argv, args.timeout, host=args.host, kvm=args.kvm, suite_name=args.suite)
    print_suites(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    s = r["suites"][0]
    sys.exit(0 if s["status"] != "fail" else 1)


def cmd_scenarios(args):
    spec = spec_from(args)
    r = scenarios(spec, args.only, args.timeout, args.budget, args.kvm, args.agent, args.traffic)
    print_suites(r)
    sys.stdout.write("\n" + render_scenarios([r]))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    log(f"results: {r['results_dir']}")
    bad = apply_expected([r], load_expected(args.expect) if args.expect else {})
    print(f"{bad} unexpected result(s)" if bad else "all scenarios as expected")
    sys.exit(1 if bad else 0)


def cmd_matrix(args):
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    specs = [Spec(k, args.fragment, None) for k in kernels]
    expect = expect_by_kernel(args.expect, [spec.label for spec in specs])
    results = []
    # The project's Rust suites that need only a kernel (no NetworkManager, no bus).
    rust = []
    if not args.no_genl:
        rust.append(("mptcp-genl:kernel", cargo_test_binary("mptcp-genl", "kernel")))
    if not args.no_agent:
        rust.append(("mptcp-agent:kernel_only", cargo_test_binary("mptcp-agent", "kernel_only")))
    for spec in specs:
        t0 = time.monotonic()
        build(spec)
        log(f"{spec.label}: image ready ({time.monotonic() - t0:.0f} s)")
        r = selftests(spec, args.tests, args.per_test_timeout, kvm=args.kvm,
                      expect_all=not args.allow_missing_features, retries=args.retries)
        for name, binary in rust:
            g = libtest(spec, [binary], 900, kvm=args.kvm, suite_name=name)
            r["suites"] += g["suites"]
        if args.scenarios:
            w = scenarios(spec, None, 3000, 2400, args.kvm, default_binary("mptcp-agent", ("debug", "release")),
                          default_binary("mptcp-traffic"))
            r["suites"] += w["suites"]
            r["scenarios"] = w["scenarios"]
        print_suites(r)
        results.append(r)
    if args.host and rust:
        host = None
        for name, binary in rust:
            g = libtest(None, [binary], 900, host=True, suite_name=name)
            if host is None:
                host = g
            else:
                host["suites"] += g["suites"]
        print_suites(host)
        results.append(host)
    # Expected failures first, so the table marks them.
    bad = apply_expected_by_kernel(results, expect)
    table = render_all(results)
    out = Path(args.out) if args.out else new_results_dir("matrix", "table") / "matrix.md"
    out.write_text(table)
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1) + "\n")
    log(f"table: {out}")
    n = result_counts(results)
    print(f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped (suites); "
          + (f"{bad} unexpected failing case(s)" if bad else "no unexpected failure"))
    sys.exit(1 if bad else 0)


def cmd_table(args):
    results = []
    for f in args.results:
        data = json.loads(Path(f).read_text())
        results += data if isinstance(data, list) else [data]
    expect = expect_by_kernel(args.expect, list(dict.fromkeys(r["kernel"]["label"] for r in results)))
    with contextlib.redirect_stdout(sys.stderr):
        apply_expected_by_kernel(results, expect)
    sys.stdout.write(render_all(results))


def cmd_key(args):
    spec = spec_from(args)
    print(spec.key)


def cmd_path(args):
    spec = spec_from(args)
    if not spec.image.is_file():
        die(f"not built yet (key {spec.key})", 1)
    print(spec.image)


def cmd_list(args):
    base = cache_root() / "kernels"
    for d in sorted(base.glob("*")) if base.is_dir() else []:
        if not d.is_dir():
            continue
        try:
            m = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            m = {}
        print(f"{d.name}  {m.get('label', '?'):8} {m.get('release', '(incomplete)'):24} "
              f"{m.get('build_seconds', 0):6.0f} s  {m.get('source', '')}")


def cmd_clean(args):
    for key in args.keys:
        if not re.fullmatch(r"[0-9a-f]{16}", key):
            die(f"not a kernel key: {key}")
        for sub in ("kernels", "build"):
            shutil.rmtree(cache_root() / sub / key, ignore_errors=True)
        log(f"removed {key}")


def main():
    ap = argparse.ArgumentParser(prog="kmx", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("build", help="configure and build a kernel (cached)")
    add_spec_args(p)
    p.add_argument("--jobs", "-j", type=int)
    p.add_argument("--timeout", type=int, default=7200, help="build time limit in seconds")
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.set_defaults(fn=cmd_build)

    p = sub.add_parser("run", help="boot the kernel and run a command in it")
    add_spec_args(p)
    add_guest_args(p)
    p.add_argument("--timeout", type=int, default=600, help="whole boot+command limit in seconds")
    p.add_argument("--memory", default="2G")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--rwdir", action="append", default=[], help="host directory the guest may write")
    p.add_argument("--rodir", action="append", default=[],
                   help="host directory to show read-only (needed for paths under /var/cache)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("selftests", help="run the tree's MPTCP selftests (+KUnit) in the guest")
    add_spec_args(p)
    add_guest_args(p)
    p.add_argument("--tests", "-t", default="all", help="comma list, e.g. pm_netlink,diag (default all)")
    p.add_argument("--per-test-timeout", type=int, default=2700,
                   help="seconds per selftest script (6.1 mptcp_join.sh took 1767 s in a TCG guest)")
    p.add_argument("--host", action="store_true", help="run on the host kernel instead (root)")
    p.add_argument("--no-kunit", action="store_true")
    p.add_argument("--allow-missing-features", action="store_true",
                   help="let mptcp_lib.sh skip on missing features instead of failing")
    p.add_argument("--retries", type=int, default=0, help="run a failed script again up to N times")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(fn=cmd_selftests)

    p = sub.add_parser("libtest", help="run a Rust test binary in the guest, per case")
    add_spec_args(p)
    add_guest_args(p)
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--host", action="store_true")
    p.add_argument("--suite", help="suite name in reports")
    p.add_argument("--json")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_libtest)

    p = sub.add_parser("matrix", help="all selftests + KUnit + the Rust kernel tests on several kernels, one table")
    p.add_argument("--kernels", default="5.10,6.1", help="comma list of sources (5.10, 6.1, paths)")
    p.add_argument("--fragment", "-f", action="append", default=[])
    p.add_argument("--tests", "-t", default="all")
    p.add_argument("--per-test-timeout", type=int, default=2700,
                   help="seconds per selftest script (6.1 mptcp_join.sh took 1767 s in a TCG guest)")
    p.add_argument("--no-genl", action="store_true", help="leave out the mptcp-genl root tests")
    p.add_argument("--no-agent", action="store_true", help="leave out the agent's kernel-only tests")
    p.add_argument("--host", action="store_true", help="add a host-kernel column for the Rust kernel tests")
    p.add_argument("--allow-missing-features", action="store_true")
    p.add_argument("--out", help="markdown table file (a .json beside it)")
    p.add_argument("--retries", type=int, default=1, help="run a failed selftest script again up to N times")
    p.add_argument("--scenarios", action="store_true", help="also the weak-network scenarios on each kernel")
    p.add_argument("--expect", action="append", default=[], metavar="KERNEL=TSV",
                   help="expected failures for one kernel of the run, by its label (repeatable), e.g. "
                   "5.10=testing/kernel-matrix/expected/5.10.223.tsv; listed cases must fail and are marked in "
                   "the table; leave it out for a backported tree")
    add_guest_args(p)
    p.set_defaults(fn=cmd_matrix)

    p = sub.add_parser("scenarios", help="weak-network scenarios in the guest: the lab, NetworkManager, the agent")
    add_spec_args(p)
    add_guest_args(p)
    p.add_argument("--only", help="comma list of scenarios "
                   "(testing/kernel-matrix/scenarios.py list)")
    p.add_argument("--timeout", type=int, default=3000, help="whole boot + scenarios limit in seconds")
    p.add_argument("--budget", type=int, default=2400, help="start no scenario after this many seconds")
    p.add_argument("--agent", default=default_binary("mptcp-agent", ("debug", "release")))
    p.add_argument("--traffic", default=default_binary("mptcp-traffic"))
    p.add_argument("--expect", metavar="TSV", help="expected failures (suite, case, why), e.g. "
                   "testing/kernel-matrix/expected/scenarios-5.10.223.tsv for plain 5.10; leave it out for a backported tree")
    p.add_argument("--json")
    p.set_defaults(fn=cmd_scenarios)

    p = sub.add_parser("table", help="render results JSON files as a markdown table")
    p.add_argument("results", nargs="+")
    p.add_argument("--expect", action="append", default=[], metavar="KERNEL=TSV",
                   help="mark the listed cases of that kernel's results as expected failures")
    p.set_defaults(fn=cmd_table)

    for name, fn, h in (("key", cmd_key, "print the cache key"), ("path", cmd_path, "print the cached bzImage")):
        p = sub.add_parser(name, help=h)
        add_spec_args(p)
        p.set_defaults(fn=fn)
    p = sub.add_parser("list", help="list cached kernels")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("clean", help="remove cached kernels by key")
    p.add_argument("keys", nargs="+")
    p.set_defaults(fn=cmd_clean)

    args = ap.parse_args()
    install_signal_handlers()
    args.fn(args)
