#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The demo: a device with two uplinks (wlan0, and wwan0 behind a CGNAT-like NAT) and real
# NetworkManager, all in network namespaces; mptcp-agent keeps the MPTCP endpoints right while
# an MPTCP upload runs and the wwan0 link fails and returns, and a subflow is reset.
# Run as root on Debian 12:   ./tools/demo.sh
# Everything it starts is removed at the end (also on Ctrl-C or failure).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces, NetworkManager)" >&2; exit 1; }
[ -d /proc/sys/net/mptcp ] || { echo "demo: this kernel has no MPTCP (/proc/sys/net/mptcp)" >&2; exit 1; }

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now_ms() { date +%s%3N; }

bash tools/setup.sh
bold "building mptcp-agent and the lab tools"
cargo build -q --locked -p mptcp-agent -p mptcp-lab --bins
BIN=$ROOT/target/debug

export LAB_PREFIX=demo LAB_DIR=/tmp/mptcp-lab/demo
LAB="$ROOT/lab/lab.sh"
"$LAB" down >/dev/null 2>&1 || true
trap '"$LAB" down >/dev/null 2>&1 || true' EXIT

bold "lab up: device (NetworkManager 1.42, its own MPTCP off), router, NAT box, MPTCP server"
"$LAB" up --timeout 30 >/dev/null
# shellcheck disable=SC1090
. <("$LAB" env)
DEV=$LAB_DEV_NS
"$LAB" nmcli device status | grep -E 'DEVICE|wlan0|wwan0'
echo "endpoints before the agent starts (NetworkManager's own MPTCP is off):"
ip -n "$DEV" mptcp endpoint show | sed 's/^/  /'; echo "  (none)"

ep_of() { ip -n "$DEV" mptcp endpoint show | grep -c "dev $1" || true; }
wait_until() { # timeout_ms cmd... ; prints elapsed ms
  local t0 limit=$1; shift; t0=$(now_ms)
  until "$@"; do
    [ $(( $(now_ms) - t0 )) -lt "$limit" ] || { echo "timeout"; return 1; }
    sleep 0.005
  done
  echo $(( $(now_ms) - t0 ))
}
has_ep() { [ "$(ep_of "$1")" -gt 0 ]; }
no_ep() { [ "$(ep_of "$1")" -eq 0 ]; }
wwan_subflows() { ip netns exec "$DEV" ss -tnH state established "( sport != :22 )" 2>/dev/null | grep -c "$LAB_WWAN0_ADDR4" || true; }
has_wwan_subflow() { [ "$(wwan_subflows)" -gt 0 ]; }

bold "starting mptcp-agent in the device namespace (config: conf/agent.toml)"
# The shipped default config, told where this lab's NetworkManager keeps its configuration
# (the agent reads it to check that NetworkManager's own MPTCP handling is off).
sed "s|^\[networkmanager\]|&\nconf_paths = [\"$LAB_DIR/nm/etc/NetworkManager.conf\", \"$LAB_DIR/nm/etc/conf.d\"]|" \
  conf/agent.toml > "$LAB_DIR/agent.toml"
chmod 0644 "$LAB_DIR/agent.toml"
"$BIN/mptcp-agent" check-config "$LAB_DIR/agent.toml"
"$LAB" spawn dev monitor ip -ts mptcp monitor >/dev/null
t0=$(now_ms)
RUST_LOG=${RUST_LOG:-info,netlink_packet_route=error} "$LAB" spawn dev agent env RUST_LOG="${RUST_LOG:-info,netlink_packet_route=error}" \
  "$BIN/mptcp-agent" run --config "$LAB_DIR/agent.toml" --state-dir "$LAB_DIR/agent-state" >/dev/null
wait_until 5000 has_ep wlan0 >/dev/null; wait_until 5000 has_ep wwan0 >/dev/null
echo "endpoints on both uplinks $(( $(now_ms) - t0 )) ms after start (includes process start-up):"
ip -n "$DEV" mptcp endpoint show | sed 's/^/  /'
echo "limits: $(ip -n "$DEV" mptcp limits show)"

bold "MPTCP upload device -> server for 24 s (server on $LAB_SERVER_ADDR4, receiver-side figures)"
"$LAB" spawn srv traffic-server "$BIN/mptcp-traffic" server --listen "$LAB_SERVER_ADDR4:5000" --once --allow-stalls >/dev/null
sleep 0.3
"$LAB" spawn dev traffic-client "$BIN/mptcp-traffic" client --connect "$LAB_SERVER_ADDR4:5000" --seconds 24 --allow-stalls >/dev/null
wait_until 3000 has_wwan_subflow >/dev/null || true
sleep 5

bold "t=5 s: wwan0 loses carrier (cut from the far side)"
"$LAB" carrier wwan0 off
echo "wwan0 endpoint withdrawn after $(wait_until 3000 no_ep wwan0) ms (NetworkManager alone would wait its 6 s carrier-wait)"
sleep 6

bold "t=11 s: carrier back"
"$LAB" carrier wwan0 on
echo "wwan0 endpoint back after $(wait_until 5000 has_ep wwan0) ms; subflow over wwan0 after $(wait_until 5000 has_wwan_subflow) ms"
sleep 5

bold "t=16 s: the server resets the wwan0 subflow (ss -K); the kernel alone never re-creates it"
"$LAB" kill-subflows-of wwan0 >/dev/null
sleep 0.05
echo "subflow over wwan0 re-established after $(wait_until 5000 has_wwan_subflow) ms"

bold "waiting for the transfer to finish"
for _ in $(seq 150); do "$LAB" srv true >/dev/null 2>&1; grep -q '"event":"result"' "$LAB_DIR/log/traffic-server.log" 2>/dev/null && break; sleep 0.2; done
echo "per-second throughput at the receiver (Mbit/s; 2 x 20 Mbit/s uplinks):"
python3 - "$LAB_DIR/log/traffic-server.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try: ev = json.loads(line)
    except ValueError: continue
    if ev.get("event") == "interval":
        m = ev["mbps"]; print(f"  {ev['start']:5.0f}s {m:6.1f} " + "#" * int(m))
    elif ev.get("event") == "result":
        print(f"  result: {'INTACT' if ev['ok'] else 'FAILED'}, {ev['bytes']} bytes, checksum {ev['checksum']}, "
              f"average {ev['mbps']} Mbit/s, stalled seconds {ev['stalled_intervals']}")
PY

bold "MPTCP events seen in the device namespace"
grep -E 'SF_ESTABLISHED|SF_CLOSED|ESTABLISHED|CLOSED' "$LAB_DIR/log/monitor.log" | sed 's/^/  /' | head -20 || true
bold "what the agent decided (its log)"
grep -vE '^\s*$' "$LAB_DIR/log/agent.log" | tail -25 | sed 's/^/  /'
bold "cleaning up"
"$LAB" down >/dev/null
trap - EXIT
echo "lab removed; namespaces left: $(ip netns list | grep -c '^demo-' || true)"
