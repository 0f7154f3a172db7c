#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# CI-sized real-kernel check: build (cached) and boot Debian bullseye's 5.10 kernel with our core
# series (kernel-patches/core) under QEMU
# (testing/kernel-matrix/kmx), and run inside it the mptcp-genl root tests, the agent's kernel-only
# tests (mptcp-agent tests/kernel_only.rs), the MPTCP selftests pm_netlink.sh (per case) and
# the KUnit MPTCP tests; the two Rust suites also run on the host kernel for the table.
# Counts are test cases; the table goes to $KMX_TABLE (default: the results directory under
# the kmx cache). KMX_CI_SELFTESTS picks the
# selftest subset (default pm_netlink; diag.sh uses 100 ms socket timeouts that an emulated
# guest misses on a loaded host, so it runs in the full matrix only).
# KMX_SOURCE may be a tarball or an unpacked tree (e.g. one made by `mptcp-backport transplant`);
# KMX_EXPECTED names the expected-failure list (default: plain 5.10.223's below; `none` = every
# case must pass, which is the bar for a backported kernel).
# Cost measured (TCG, host loaded by other builds): 469 s warm; a cold build of 5.10 + the core
# series took 1,352 s at load 8-12 (docs/kernel-matrix.md).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KMX=$ROOT/testing/kernel-matrix/kmx
SOURCE=${KMX_SOURCE:-/usr/src/linux-source-5.10.tar.xz}
SERIES_DIR=$ROOT/kernel-patches/core
EXPECTED=${KMX_EXPECTED:-$ROOT/testing/kernel-matrix/expected/5.10.223.tsv}
[ "$EXPECTED" = none ] && EXPECTED=/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail_setup() {
	echo "kernel-5.10: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}
[ -e "$SOURCE" ] || fail_setup "$SOURCE missing (testing/setup.sh installs linux-source-5.10)"
[ -x "$ROOT/.venv/bin/vng" ] || fail_setup "virtme-ng missing (testing/setup.sh installs it into .venv)"
command -v qemu-system-x86_64 >/dev/null || fail_setup "qemu-system-x86_64 missing (testing/setup.sh)"
if [ "$(id -u)" != 0 ]; then
	# Same rule as the Rust root tests: skipped loudly, or failed when they are required.
	[ "${MPTCP_REQUIRE_ROOT_TESTS:-0}" = 1 ] && fail_setup "needs root (MPTCP_REQUIRE_ROOT_TESTS=1)"
	echo "*** kernel-5.10: SKIPPED, needs root ***" >&2
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
fi

# The tree kmx builds: the tarball unpacked once into the kmx cache with the core series applied,
# in a directory named after the hash of the tarball and of every patch in the series (a changed
# patch gives a new tree, hence a new kmx cache key). With 5.10's own MPTCP kept, 5.10 + the core
# series must behave as plain 5.10 (same expected list): that proves the core changes break
# nothing. KMX_CORE_SERIES=0 builds the plain tarball instead (or KMX_SOURCE as given, above).
core_tree() {
	local cache=${KMX_CACHE:-/var/cache/meta-mptcp} key tree tmp p
	# Contents and patch names only: a clone anywhere (CI's clean clone) finds the same tree.
	key=$( { sha256sum <"$SOURCE" | cut -d' ' -f1; grep -v '^#' "$SERIES_DIR/series" | while read -r p; do
		[ -n "$p" ] && echo "$p $(sha256sum <"$SERIES_DIR/$p" | cut -d' ' -f1)"; done; } | sha256sum | cut -c1-16)
	tree=$cache/src/linux-5.10-core-$key
	if [ ! -f "$tree/.core-series-applied" ]; then
		mkdir -p "$cache/src" || return 1
		tmp=$(mktemp -d "$cache/src/core-tmp.XXXXXX") || return 1
		tar -C "$tmp" --strip-components=1 -xf "$SOURCE" || { rm -rf "$tmp"; return 1; }
		while read -r p; do
			case $p in '' | '#'*) continue ;; esac
			if ! patch -d "$tmp" -p1 -s -N --no-backup-if-mismatch -F0 <"$SERIES_DIR/$p" >"$work/patch.out" 2>&1; then
				echo "kernel-5.10: $p does not apply to $SOURCE:" >&2
				cat "$work/patch.out" >&2
				rm -rf "$tmp"
				return 1
			fi
		done <"$SERIES_DIR/series"
		touch "$tmp/.core-series-applied"
		rm -rf "$tree" && mv "$tmp" "$tree" || return 1
	fi
	echo "$tree"
}

t0=$(date +%s)
# A KMX_SOURCE given by the caller (e.g. a backported tree) is built as it is, unless KMX_CORE_SERIES=1.
core_default=1
[ -n "${KMX_SOURCE:-}" ] && core_default=0
if [ "${KMX_CORE_SERIES:-$core_default}" = 1 ]; then
	tree=$(core_tree) || fail_setup "could not prepare 5.10 + kernel-patches/core/series"
	echo "kernel-5.10: tree $tree (5.10 + $(grep -cv '^#' "$SERIES_DIR/series") core patches)" >&2
	export KMX_SOURCE=$tree
else
	export KMX_SOURCE=$SOURCE
fi
"$KMX" build >"$work/build.out" 2>"$work/build.err" || { cat "$work/build.err" >&2; fail_setup "kernel build failed"; }
t_build=$(($(date +%s) - t0))
echo "kernel-5.10: image $(cat "$work/build.out") ready in ${t_build}s" >&2

# Rust root tests: built on the host, the same binary runs in the guest and on the host (the
# guest sees the host's root filesystem, so the agent binary the test starts is there too).
test_binary() { # package test-target
	(cd "$ROOT" && cargo test -p "$1" --test "$2" --no-run --message-format=json 2>"$work/cargo.err" |
		python3 -c 'import json,sys
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]: print(m["executable"])' "$2" | tail -n1)
}
genl=$(test_binary mptcp-genl kernel)
[ -n "$genl" ] || { tail -20 "$work/cargo.err" >&2; fail_setup "cargo test -p mptcp-genl --test kernel --no-run failed"; }
agent=$(test_binary mptcp-agent kernel_only)
[ -n "$agent" ] || { tail -20 "$work/cargo.err" >&2; fail_setup "cargo test -p mptcp-agent --test kernel_only --no-run failed"; }

"$KMX" libtest --suite mptcp-genl:kernel --json "$work/genl-5.10.json" -- "$genl"
"$KMX" libtest --suite mptcp-agent:kernel_only --json "$work/agent-5.10.json" -- "$agent"
"$KMX" selftests --tests "${KMX_CI_SELFTESTS:-pm_netlink}" --per-test-timeout 600 --retries 1 --json "$work/selftests-5.10.json"
"$KMX" libtest --host --suite mptcp-genl:kernel --json "$work/genl-host.json" -- "$genl"
"$KMX" libtest --host --suite mptcp-agent:kernel_only --json "$work/agent-host.json" -- "$agent"

table=${KMX_TABLE:-$work/table.md}
"$KMX" table "$work"/genl-5.10.json "$work"/agent-5.10.json "$work"/selftests-5.10.json "$work"/genl-host.json "$work"/agent-host.json > "$table"
cat "$table"
[ -n "${KMX_TABLE:-}" ] || cp "$table" "$(dirname "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results_dir"])' "$work/selftests-5.10.json")")/table-5.10-host.md"
echo "kernel-5.10: total $(($(date +%s) - t0))s (build ${t_build}s)" >&2

# Counted per test case, over all result files. On plain 5.10 the cases listed in
# testing/kernel-matrix/expected/5.10.223.tsv must fail (5.10 lacks what they test): they count
# as passed with their reason printed; any other failure, or a listed case that passes, is a failure.
python3 - "$EXPECTED" "$work"/genl-5.10.json "$work"/agent-5.10.json "$work"/selftests-5.10.json "$work"/genl-host.json "$work"/agent-host.json <<'EOF'
import json, sys
expected = {}
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        suite, case, why = line.rstrip("\n").split("\t", 2)
        expected[(suite, case)] = why
n = {"pass": 0, "fail": 0, "skip": 0}
for f in sys.argv[2:]:
    guest = "host" not in f.rsplit("/", 1)[-1]
    try:
        r = json.load(open(f))
    except (OSError, ValueError):
        print(f"FAIL  no results in {f}")
        n["fail"] += 1
        continue
    for s in r["suites"]:
        for c in s["cases"]:
            why = expected.get((s["suite"], c["name"])) if guest else None
            if why is None:
                n[c["status"]] += 1
            elif c["status"] == "fail":
                print(f"ok    expected failure on 5.10: {s['suite']} {c['name']}: {why}")
                n["pass"] += 1
            else:
                print(f"FAIL  {s['suite']} {c['name']} was expected to fail on 5.10 ({why}) but is {c['status']}: update {sys.argv[1]}")
                n["fail"] += 1
print(f"{n['pass']} passed, {n['fail']} failed, {n['skip']} skipped")
sys.exit(1 if n["fail"] else 0)
EOF
