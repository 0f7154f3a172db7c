#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# `testing/lab/lab.sh agent` runs mptcp-agent the way the demo and testing/lab/README.md say: in
# the device namespace, on the lab's bus, with the lab's NetworkManager config (not the host's).
# Checks: agent-config adds the lab's conf_paths (and refuses a file with its own), check-config
# accepts the result, `agent --bg run` gives both uplinks their v4 and v6 endpoints, `agent
# status` reaches it over the lab's bus, `stop agent` and `down` leave nothing behind.
# Root only (skipped loudly otherwise; failing with MPTCP_REQUIRE_ROOT_TESTS=1). Cost: ~5 s.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
pass=0 fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

skip_or_fail() {
	if [ "${MPTCP_REQUIRE_ROOT_TESTS:-0}" = 1 ]; then
		echo "lab-agent: CANNOT RUN ($*) and MPTCP_REQUIRE_ROOT_TESTS=1" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "lab-agent: SKIPPED ($*)" >&2
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}
[ "$(id -u)" = 0 ] || skip_or_fail "needs root"
[ -d /proc/sys/net/mptcp ] || skip_or_fail "kernel has no MPTCP"
command -v NetworkManager >/dev/null || skip_or_fail "NetworkManager missing (testing/setup.sh demo)"

out=$(mktemp -d)
if ! cargo build --locked -q -p mptcp-agent 2>"$out/build.err"; then
	tail -n 30 "$out/build.err" >&2
	echo "lab-agent: build failed"; echo "0 passed, 1 failed"; rm -rf "$out"; exit 1
fi
export MPTCP_AGENT=${CARGO_TARGET_DIR:-$ROOT/target}/debug/mptcp-agent
export LAB_PREFIX=tagent$$ LAB_OWNER_PID=$$
export LAB_DIR=/tmp/mptcp-lab/$LAB_PREFIX
LAB=$ROOT/testing/lab/lab.sh
trap '"$LAB" down >/dev/null 2>&1; rm -rf "$out"' EXIT

# NetworkManager's start-up is ~0.3 s idle; 60 s covers a loaded 2-core machine.
if ! "$LAB" up --rate none --timeout 60 2>"$out/up.err"; then
	cat "$out/up.err" >&2
	bad "lab up failed"; echo "$pass passed, $fail failed"; exit 1
fi

cfg=$("$LAB" agent-config 2>&1)
if [ "$cfg" = "$LAB_DIR/agent.toml" ] &&
	grep -qxF "conf_paths = [\"$LAB_DIR/nm/etc/NetworkManager.conf\", \"$LAB_DIR/nm/etc/conf.d\"]" "$cfg" &&
	[ "$(grep -c '^\[networkmanager\]' "$cfg")" = 1 ]; then
	ok "agent-config: conf/agent.toml plus the lab's conf_paths, one [networkmanager] table"
else
	bad "agent-config wrote no lab conf_paths: $cfg"
fi
printf 'schema_version = 1\n[networkmanager]\nconf_paths = ["/etc/NetworkManager"]\n' > "$out/own.toml"
if "$LAB" agent-config "$out/own.toml" >/dev/null 2>&1; then
	bad "agent-config accepted a file with its own conf_paths"
else
	ok "agent-config refuses a file that sets conf_paths itself"
fi
if msg=$("$LAB" agent check-config 2>&1); then
	ok "agent check-config accepts it"
else
	bad "agent check-config: $msg"
fi

if pid=$("$LAB" agent --bg run 2>&1) && [[ $pid =~ ^[0-9]+$ ]]; then
	ok "agent --bg run: pid $pid"
else
	bad "agent --bg run: $pid"
fi
# Idle, the agent's endpoints follow its start within ~20 ms (docs/performance.md); 15 s covers
# a debug build starting on a loaded machine. Refusing the uplinks (host NM config) = none.
want="10.1.0.2 10.2.0.2 2001:db8:1::2 2001:db8:2::2"
end=$((SECONDS + 15)) missing=$want
while [ $SECONDS -lt $end ]; do
	eps=$(ip -n "$LAB_PREFIX-dev" mptcp endpoint show)
	missing=""
	for a in $want; do grep -q "^$a .*subflow" <<<"$eps" || missing="$missing $a"; done
	[ -z "$missing" ] && break
	sleep 0.05
done
if [ -z "$missing" ]; then
	ok "both uplinks have their v4 and v6 subflow endpoints"
else
	bad "no endpoint for$missing within 15 s; endpoints: $(ip -n "$LAB_PREFIX-dev" mptcp endpoint show | tr '\n' ';') agent log:"
	tail -n 20 "$LAB_DIR/log/agent.log"
fi
# 0: every configured link healthy; 5: shown, some configured link refused or degraded.
msg=$(timeout 20 "$LAB" agent status 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 5 ]; then
	ok "agent status over the lab's bus (exit $rc)"
else
	bad "agent status (exit $rc): $msg"
fi
"$LAB" stop agent
# Gone = no /proc entry or a zombie (reparented, not yet reaped).
alive() { local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1; [ "${st%% *}" != Z ]; }
if [ -e "$LAB_DIR/pids/agent.pid" ] || alive "${pid:-0}"; then
	bad "stop agent: pid ${pid:-?} still there"
else
	ok "stop agent"
fi
"$LAB" down
left=$(ip netns list | grep -c "^$LAB_PREFIX-" || true)
if [ "$left" = 0 ] && [ ! -e "$LAB_DIR" ]; then ok "down: no namespace or directory left"; else bad "down left $left namespaces"; fi
trap 'rm -rf "$out"' EXIT

echo "$pass passed, $fail failed"
[ $fail = 0 ]
