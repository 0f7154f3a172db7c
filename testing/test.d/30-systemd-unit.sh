#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The shipped systemd unit (conf/systemd/mptcp-agent.service):
#  1. `systemd-analyze security --offline=yes` scores it at most 2.0 (issue 4);
#  2. `systemd-analyze verify` finds nothing to complain about (unknown keys, bad values),
#     with ExecStart pointed at an existing binary since none is installed here;
#  3. the settings the agent relies on are there (Type=notify, CAP_NET_ADMIN only, no new
#     privileges, restart on failure, the state directory, SIGHUP for reload).
# Needs systemd-analyze (package systemd, installed by testing/setup.sh). Cost: ~1 s.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$ROOT/conf/systemd/mptcp-agent.service
MAX_EXPOSURE=2.0
pass=0
fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }

if ! command -v systemd-analyze >/dev/null; then
	echo "systemd-analyze not found (testing/setup.sh installs systemd)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. exposure score
out=$(systemd-analyze security --offline=yes "$UNIT" 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -n1)
if [ -z "$score" ]; then
	bad "no 'Overall exposure level' in systemd-analyze security output:"
	printf '%s\n' "$out" | tail -n 5
elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
	ok "systemd-analyze security --offline=yes: exposure $score (<= $MAX_EXPOSURE)"
else
	bad "systemd-analyze security --offline=yes: exposure $score > $MAX_EXPOSURE"
	printf '%s\n' "$out" | grep -E '^✗' | head -n 20
fi

# 2. verify: exit 0 and no diagnostics. The unit's name must stay mptcp-agent.service.
sed 's#^ExecStart=/usr/bin/mptcp-agent#ExecStart=/bin/true#' "$UNIT" >"$work/mptcp-agent.service"
if verr=$(cd "$work" && systemd-analyze verify --man=no ./mptcp-agent.service 2>&1) && [ -z "$verr" ]; then
	ok "systemd-analyze verify: clean"
else
	bad "systemd-analyze verify:"
	printf '%s\n' "$verr"
fi

# 3. what the agent depends on
want=(
	"Type=notify"
	"ExecStart=/usr/bin/mptcp-agent run --config /etc/mptcp-agent/agent.toml"
	"ExecReload=/bin/kill -HUP \$MAINPID"
	"Restart=on-failure"
	"User=mptcp-agent"
	"CapabilityBoundingSet=CAP_NET_ADMIN"
	"AmbientCapabilities=CAP_NET_ADMIN"
	"NoNewPrivileges=yes"
	"StateDirectory=mptcp-agent"
	"RuntimeDirectory=mptcp-agent"
	"RestrictAddressFamilies=AF_NETLINK AF_UNIX"
)
for line in "${want[@]}"; do
	if grep -qxF "$line" "$UNIT"; then
		ok "$line"
	else
		bad "missing: $line"
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
