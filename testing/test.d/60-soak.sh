#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Reliability soak of mptcp-agent, short form (CI): in the NetworkManager lab, random link
# flaps (far-side carrier, admin down, nmcli down/up, address change) on one uplink at a
# time with a live MPTCP connection, plus NetworkManager SIGKILL + restart and agent SIGKILL
# + restart rounds; then exact end-state checks (endpoints as configured, stable ids, no
# leaked routes/rules, no stuck subflows, the connection intact, re-sync within 1 s).
# Each check is one test. Cost: ~2.5 min of soak plus building mptcp-bench (debug).
# Long form by hand:  target/release/mptcp-bench soak --seconds 7200 --max-flaps 10000
# Env: SOAK_SECONDS (default 120), SOAK_SEED (default: from the clock; printed),
# SOAK_RESULTS (keep soak.json and the lab logs there; default: a temporary directory).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

skip_or_fail() {
	if [ "${MPTCP_REQUIRE_ROOT_TESTS:-0}" = 1 ]; then
		echo "soak: CANNOT RUN ($*) and MPTCP_REQUIRE_ROOT_TESTS=1" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "soak: SKIPPED ($*)" >&2
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}
[ "$(id -u)" = 0 ] || skip_or_fail "needs root"
[ -d /proc/sys/net/mptcp ] || skip_or_fail "kernel has no MPTCP"
command -v NetworkManager >/dev/null || skip_or_fail "NetworkManager missing (testing/setup.sh)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results=${SOAK_RESULTS:-$out/results}
if ! cargo build --locked -q -p mptcp-agent -p mptcp-bench 2>"$out/build.err"; then
	tail -n 30 "$out/build.err" >&2
	echo "soak: build failed" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
target=${CARGO_TARGET_DIR:-$ROOT/target}
seed=()
[ -n "${SOAK_SEED:-}" ] && seed=(--seed "$SOAK_SEED")
timeout 600 "$target/debug/mptcp-bench" soak --seconds "${SOAK_SECONDS:-120}" --restarts 2 \
	"${seed[@]}" --agent-bin "$target/debug/mptcp-agent" --results "$results" >"$out/soak.out"
rc=$?
cat "$out/soak.out"
if [ $rc != 0 ] && [ -f "$results/logs/agent.log" ]; then
	echo "----- end of the agent's log" >&2
	tail -n 40 "$results/logs/agent.log" >&2
fi
if ! tail -n 1 "$out/soak.out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed'; then
	echo "soak: no result (exit $rc)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
[ $rc = 0 ]
