#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Runs every test of the project: set-up, format and lint, the Rust tests (unit, root tests
# against the real kernel in throwaway namespaces, lab tests with real NetworkManager), then
# every check in testing/test.d/ (MSRV, licences, layers, kernel series, the 5.10 QEMU guest).
#
# Run as root on Debian 12:   ./testing/test.sh
# Root-only tests are required to run when root (MPTCP_REQUIRE_ROOT_TESTS=1): a machine that
# cannot run them fails instead of passing silently. Set MPTCP_REQUIRE_ROOT_TESTS=0 to let
# them be reported as skipped. Pass names of testing/test.d scripts to run only those checks.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ "$(id -u)" = 0 ]; then
  export MPTCP_REQUIRE_ROOT_TESTS=${MPTCP_REQUIRE_ROOT_TESTS:-1}
else
  echo "*** not root: root and lab tests will be SKIPPED (reported as ignored). Run as root for the full suite. ***" >&2
  export MPTCP_REQUIRE_ROOT_TESTS=${MPTCP_REQUIRE_ROOT_TESTS:-0}
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export RUST_BACKTRACE=1

run_t0=$SECONDS
started=$(date -u +%H:%M:%S)
results=()  # "STATUS|SECONDS|NAME"
failed=0
step() { # name command...
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name" >&2
  if "$@"; then
    results+=("ok|$((SECONDS - t0))|$name")
  else
    results+=("FAIL|$((SECONDS - t0))|$name")
    failed=$((failed + 1))
  fi
}

if ! step "testing/setup.sh test" bash testing/setup.sh test; then
  echo "testing/setup.sh test failed" >&2
  exit 1
fi

# Netns/veth left behind by a test are a bug: record what exists before, compare after.
netns_before=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)

step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test (unit + root + lab)" cargo test --workspace --locked --no-fail-fast

for t in testing/test.d/*; do
  [ -x "$t" ] || continue
  if [ $# -gt 0 ]; then
    keep=0; for want in "$@"; do case "$(basename "$t")" in *"$want"*) keep=1;; esac; done
    [ $keep = 1 ] || continue
  fi
  step "$(basename "$t")" "$t"
done

netns_after=$(ip netns list 2>/dev/null | awk '{print $1}' | sort)
leaked=$(comm -13 <(echo "$netns_before") <(echo "$netns_after") | grep -v '^$' || true)
if [ -n "$leaked" ]; then
  results+=("FAIL|0|no leftover network namespaces: $(echo $leaked)")
  failed=$((failed + 1))
  for ns in $leaked; do ip netns del "$ns" 2>/dev/null || true; done
else
  results+=("ok|0|no leftover network namespaces")
fi

# One row per step with its wall time, then the whole run's (the steps run one after another).
wall=$((SECONDS - run_t0))
echo
echo "=== summary (started $started UTC, $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-6s %8s  %s\n' "result" "seconds" "step"
for r in "${results[@]}"; do
  IFS='|' read -r st secs name <<<"$r"
  printf '%-6s %8s  %s\n' "$st" "$secs" "$name"
done
printf '%-6s %8s  %s\n' "" "$wall" "total wall time ($((wall / 60)) min $((wall % 60)) s)"
total=${#results[@]}
echo "steps: $((total - failed)) passed, $failed failed"
[ $failed = 0 ]
