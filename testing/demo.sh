#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The demo: a device with two uplinks (wlan0, and wwan0 behind a CGNAT-like NAT) and real
# NetworkManager, all in network namespaces; mptcp-agent keeps the MPTCP endpoints right while
# an MPTCP upload runs and the wwan0 link fails and returns, and a subflow is reset.
# Run as root on Debian 12:   ./testing/demo.sh
# It installs what it needs (testing/setup.sh demo: nothing of the kernel matrix), builds the agent
# (cargo shows its progress; prebuilt release binaries newer than every source are used as they
# are), says before each step what it proves, and ends with a summary checked against the
# agent's own log. Everything it starts is removed at the end (also on Ctrl-C or failure).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces, NetworkManager)" >&2; exit 1; }
[ -d /proc/sys/net/mptcp ] || { echo "demo: this kernel has no MPTCP (/proc/sys/net/mptcp)" >&2; exit 1; }

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
proves() { printf '   proves: %s\n' "$*"; }
now_ms() { date +%s%3N; }
T0=$(now_ms)

bold "what this demo shows (about 30 s once built)"
cat <<'TXT'
   A device with two uplinks, wlan0 and wwan0 (wwan0 behind a NAT), runs real NetworkManager with
   its own MPTCP handling off, and mptcp-agent. While a 24 s MPTCP upload runs:
   1. the agent gives both uplinks an MPTCP endpoint as soon as it starts;
   2. wwan0 loses carrier: the agent withdraws its endpoint at once (NetworkManager would wait 6 s);
   3. the carrier returns: the endpoint and a subflow over wwan0 come back;
   4. the server resets the wwan0 subflow: the agent has the kernel open a new one;
   5. the upload arrives intact, byte for byte; the summary is checked against the agent's log.
TXT

bold "set-up: Debian packages the demo needs (testing/setup.sh demo)"
bash testing/setup.sh demo

# --- binaries: prebuilt release binaries when they are newer than every source, else a build ---
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
sources_newer_than() { # binary: prints the first source file changed after it
  find agent testing/lab Cargo.toml Cargo.lock -type f -newer "$1" -not -path '*/target/*' 2>/dev/null | head -n1
}
BIN=""
if [ -x "$TARGET/release/mptcp-agent" ] && [ -x "$TARGET/release/mptcp-traffic" ]; then
  stale=$(sources_newer_than "$TARGET/release/mptcp-agent"; sources_newer_than "$TARGET/release/mptcp-traffic")
  if [ -z "$stale" ]; then
    BIN=$TARGET/release
    bold "using the prebuilt release binaries in $BIN (newer than every source file)"
  else
    echo "demo: not using $TARGET/release: $(echo "$stale" | head -n1) is newer" >&2
  fi
fi
if [ -z "$BIN" ]; then
  command -v cargo >/dev/null || { echo "demo: cargo not found: install Rust >= 1.75 (for example with rustup)" >&2; exit 1; }
  if [ -x "$TARGET/debug/mptcp-agent" ]; then
    bold "building mptcp-agent and the lab's traffic tool (debug; only what changed is rebuilt)"
  else
    bold "building mptcp-agent and the lab's traffic tool (first build: 4 min on an idle 2-core machine, 15 min on a busy one; cargo lists each crate)"
  fi
  b0=$(now_ms)
  cargo build --locked -p mptcp-agent -p mptcp-lab --bins
  echo "   built in $(( ($(now_ms) - b0) / 1000 )) s"
  BIN=$TARGET/debug
fi
export MPTCP_AGENT=$BIN/mptcp-agent

# Its own lab (prefix "demo" unless LAB_PREFIX says otherwise), so it can run beside others.
export LAB_PREFIX=${LAB_PREFIX:-demo}
export LAB_DIR=/tmp/mptcp-lab/$LAB_PREFIX
LAB="$ROOT/testing/lab/lab.sh"
"$LAB" down >/dev/null 2>&1 || true
trap '"$LAB" down >/dev/null 2>&1 || true' EXIT

bold "lab up: device (NetworkManager 1.42, its own MPTCP off), router, NAT box, MPTCP server"
proves "NetworkManager configures both uplinks; without the agent nothing gives them MPTCP endpoints"
"$LAB" up --timeout 30 >/dev/null
# shellcheck disable=SC1090
. <("$LAB" env)
DEV=$LAB_DEV_NS
"$LAB" nmcli device status | grep -E 'DEVICE|wlan0|wwan0' | sed 's/^/  /'
# The table of a new namespace starts empty, and NetworkManager's MPTCP handling is off: the
# table is printed as it is, "(none)" only when it is empty.
echo "endpoints before the agent starts:"
before=$(ip -n "$DEV" mptcp endpoint show)
if [ -n "$before" ]; then sed 's/^/  /' <<<"$before"; else echo "  (none)"; fi
echo "limits before the agent starts: $(ip -n "$DEV" mptcp limits show | tr '\n' ' ')"

ep_of() { ip -n "$DEV" mptcp endpoint show | grep -c "dev $1" || true; }
wait_until() { # timeout_ms cmd... ; prints elapsed ms, or "no (>N ms)"
  local t0 limit=$1; shift; t0=$(now_ms)
  until "$@"; do
    [ $(( $(now_ms) - t0 )) -lt "$limit" ] || { echo "no (>$limit ms)"; return 1; }
    sleep 0.005
  done
  echo $(( $(now_ms) - t0 ))
}
has_ep() { [ "$(ep_of "$1")" -gt 0 ]; }
no_ep() { [ "$(ep_of "$1")" -eq 0 ]; }
wwan_subflows() { ip netns exec "$DEV" ss -tnH state established "( sport != :22 )" 2>/dev/null | grep -c "$LAB_WWAN0_ADDR4" || true; }
has_wwan_subflow() { [ "$(wwan_subflows)" -gt 0 ]; }
# The agent's log is cut into one piece per step: its line count when each step starts.
AGENT_LOG=$LAB_DIR/log/agent.log
mark() { if [ -e "$AGENT_LOG" ]; then wc -l < "$AGENT_LOG"; else echo 0; fi; }
declare -A MARK

bold "1. starting mptcp-agent in the device namespace (testing/lab/lab.sh agent: conf/agent.toml + the lab's NetworkManager config)"
proves "the agent adds a subflow endpoint for each uplink's addresses and sets the MPTCP limits"
"$LAB" agent-config >/dev/null
"$LAB" agent check-config
"$LAB" spawn dev monitor ip -ts mptcp monitor >/dev/null
MARK[start]=$(mark)
t0=$(now_ms)
"$LAB" agent --bg run >/dev/null
START_WLAN=$(wait_until 5000 has_ep wlan0) || true; START_WWAN=$(wait_until 5000 has_ep wwan0) || true
START_MS=$(( $(now_ms) - t0 ))
echo "endpoints on both uplinks $START_MS ms after start (includes process start-up):"
ip -n "$DEV" mptcp endpoint show | sed 's/^/  /'
echo "limits: $(ip -n "$DEV" mptcp limits show | tr '\n' ' ')"

bold "MPTCP upload device -> server for 24 s (server on $LAB_SERVER_ADDR4, receiver-side figures)"
proves "the connection uses both uplinks: a subflow joins over wwan0, through the NAT"
"$LAB" spawn srv traffic-server "$BIN/mptcp-traffic" server --listen "$LAB_SERVER_ADDR4:5000" --once --allow-stalls >/dev/null
sleep 0.3
"$LAB" spawn dev traffic-client "$BIN/mptcp-traffic" client --connect "$LAB_SERVER_ADDR4:5000" --seconds 24 --allow-stalls >/dev/null
JOIN_MS=$(wait_until 3000 has_wwan_subflow) || true
echo "subflow over wwan0 after $JOIN_MS ms"
sleep 5

bold "2. t=5 s: wwan0 loses carrier (cut from the far side)"
proves "the agent withdraws wwan0's endpoint at once, so the kernel stops sending on a dead path"
MARK[cut]=$(mark)
"$LAB" carrier wwan0 off
WITHDRAW_MS=$(wait_until 3000 no_ep wwan0) || true
echo "wwan0 endpoint withdrawn after $WITHDRAW_MS ms (NetworkManager alone would wait its 6 s carrier-wait)"
sleep 6

bold "3. t=11 s: carrier back"
proves "the endpoint returns with the carrier, and the kernel opens a new subflow over wwan0"
MARK[back]=$(mark)
t_on=$(now_ms)
"$LAB" carrier wwan0 on
BACK_MS=$(wait_until 5000 has_ep wwan0) || true
# Both counted from the carrier's return.
if wait_until 5000 has_wwan_subflow >/dev/null; then SUBFLOW_MS=$(( $(now_ms) - t_on )); else SUBFLOW_MS="no (>5000 ms)"; fi
echo "wwan0 endpoint back after $BACK_MS ms; subflow over wwan0 after $SUBFLOW_MS ms (both from the carrier's return)"
sleep 5

bold "4. t=16 s: the server resets the wwan0 subflow (ss -K)"
proves "the agent sees the subflow die and has the kernel re-create it (the kernel alone never does)"
MARK[reset]=$(mark)
"$LAB" kill-subflows-of wwan0 >/dev/null
sleep 0.05
RESET_MS=$(wait_until 5000 has_wwan_subflow) || true
echo "subflow over wwan0 re-established after $RESET_MS ms"

bold "5. waiting for the transfer to finish"
proves "every byte arrived, in order, checked against its expected value at its offset"
for _ in $(seq 150); do grep -q '"event":"result"' "$LAB_DIR/log/traffic-server.log" 2>/dev/null && break; sleep 0.2; done
MARK[end]=$(mark)
echo "per-second throughput at the receiver (Mbit/s; 2 x 20 Mbit/s uplinks):"
RESULT=$(python3 - "$LAB_DIR/log/traffic-server.log" <<'PY'
import json, sys
res = None
for line in open(sys.argv[1]):
    try: ev = json.loads(line)
    except ValueError: continue
    if ev.get("event") == "interval":
        m = ev["mbps"]; print(f"  {ev['start']:5.0f}s {m:6.1f} " + "#" * int(m), file=sys.stderr)
    elif ev.get("event") == "result":
        res = ev
if res is None:
    print("NONE 0 - 0 0")
else:
    print("INTACT" if res["ok"] else "FAILED", res["bytes"], res["checksum"], res["mbps"], res["stalled_intervals"])
PY
)
read -r VERDICT BYTES CHECKSUM MBPS STALLS <<<"$RESULT"

bold "MPTCP events seen in the device namespace"
grep -E 'SF_ESTABLISHED|SF_CLOSED|ESTABLISHED|CLOSED' "$LAB_DIR/log/monitor.log" | sed 's/^/  /' | head -20 || true
bold "what the agent decided (its log)"
grep -vE '^\s*$' "$AGENT_LOG" | tail -25 | sed 's/^/  /'

# --- summary, checked against the agent's log ------------------------------------------------
# Endpoint operations the agent logged between two marks for an uplink's addresses: "adds deletes".
# The agent logs each operation as "WHY: endpoint add|re-add|delete ADDR id N FLAGS ..." before it
# applies it (and "... FAILED: ..." when it fails: not counted).
ops() { # from to uplink|all
  local addrs
  case $3 in
    wlan0) addrs="$LAB_WLAN0_ADDR4 $LAB_WLAN0_ADDR6" ;;
    wwan0) addrs="$LAB_WWAN0_ADDR4 $LAB_WWAN0_ADDR6" ;;
    *) addrs="" ;;
  esac
  sed -n "$(( $1 + 1 )),$2p" "$AGENT_LOG" | awk -v addrs="$addrs" '
    BEGIN { n = split(addrs, A, " ") }
    /FAILED/ { next }
    match($0, /endpoint (add|re-add|delete) [^ ]+ id /) {
      split(substr($0, RSTART, RLENGTH), w, " "); mine = (n == 0)
      for (i = 1; i <= n; i++) if (w[3] == A[i]) mine = 1
      if (!mine) next
      if (w[2] == "delete") d++; else a++
    }
    END { printf "%d %d\n", a, d }'
}
read -r s_wl_a s_wl_d <<<"$(ops "${MARK[start]}" "${MARK[cut]}" wlan0)"
read -r s_ww_a s_ww_d <<<"$(ops "${MARK[start]}" "${MARK[cut]}" wwan0)"
read -r c_a c_d <<<"$(ops "${MARK[cut]}" "${MARK[back]}" wwan0)"
read -r b_a b_d <<<"$(ops "${MARK[back]}" "${MARK[reset]}" wwan0)"
read -r r_a r_d <<<"$(ops "${MARK[reset]}" "${MARK[end]}" wwan0)"
read -r w_a w_d <<<"$(ops "${MARK[cut]}" "${MARK[end]}" wlan0)"
read -r all_a all_d <<<"$(ops 0 "${MARK[end]}" all)"

bad=0
row() { # what measured log ok
  local flag="ok"; [ "$4" = 1 ] || { flag="MISMATCH"; bad=$((bad + 1)); }
  printf '  %-44s %-22s %-40s %s\n' "$1" "$2" "$3" "$flag"
}
num() { [[ $1 =~ ^[0-9]+$ ]]; }
bold "summary (demo's own measurement | the agent's log | consistent?)"
printf '  %-44s %-22s %-40s %s\n' "step" "measured" "agent log: endpoint adds/deletes" ""
row "start: endpoints on wlan0 and wwan0" "$START_MS ms" "wlan0 +$s_wl_a/-$s_wl_d, wwan0 +$s_ww_a/-$s_ww_d" \
  "$( num "$START_WLAN" && num "$START_WWAN" && [ "$s_wl_a" -ge 1 ] && [ "$s_ww_a" -ge 1 ] && echo 1)"
row "withdraw: carrier cut -> endpoint gone" "$WITHDRAW_MS ms" "wwan0 +$c_a/-$c_d" \
  "$( num "$WITHDRAW_MS" && [ "$c_d" -ge 1 ] && [ "$c_a" = 0 ] && echo 1)"
row "back: carrier -> endpoint / subflow" "$BACK_MS / $SUBFLOW_MS ms" "wwan0 +$b_a/-$b_d" \
  "$( num "$BACK_MS" && num "$SUBFLOW_MS" && [ "$b_a" -ge 1 ] && echo 1)"
row "reset: ss -K -> new subflow over wwan0" "$RESET_MS ms" "wwan0 +$r_a/-$r_d (re-add)" \
  "$( num "$RESET_MS" && [ "$r_a" -ge 1 ] && echo 1)"
row "transfer intact" "$VERDICT, $BYTES bytes" "-" "$( [ "$VERDICT" = INTACT ] && echo 1)"
if [ "$STALLS" = 0 ]; then
  printf '  %-44s %-22s %-40s %s\n' "stalls (seconds with no data)" "0" "-" "ok"
else
  printf '  %-44s %-22s %-40s %s\n' "stalls (seconds with no data)" "$STALLS" "-" "note: a loaded machine?"
fi
row "churn: wlan0 touched after the start" "-" "wlan0 +$w_a/-$w_d" "$( [ "$w_a" = 0 ] && [ "$w_d" = 0 ] && echo 1)"
# Every endpoint operation of the log falls into one of the steps above; the steps need at least
# +4 (start), -2 (cut), +2 (back), +1 (re-add): the rest is churn.
steps_a=$((s_wl_a + s_ww_a + c_a + b_a + r_a + w_a)) steps_d=$((s_wl_d + s_ww_d + c_d + b_d + r_d + w_d))
row "churn: all endpoint operations in the log" "-" "+$all_a/-$all_d ($(( all_a + all_d - 9 )) beyond the 9 needed)" \
  "$( [ "$all_a" = "$steps_a" ] && [ "$all_d" = "$steps_d" ] && echo 1)"
# The lab's directory goes with the lab: keep its logs where the build output is.
KEEP=$TARGET/demo-logs
rm -rf "$KEEP"; mkdir -p "$KEEP"; cp "$LAB_DIR"/log/*.log "$LAB_DIR/agent.toml" "$KEEP"/
echo "  (counted: the 'endpoint add|re-add|delete' lines of the agent's log between the steps;"
echo "   the logs are kept in $KEEP: agent.log, monitor.log, nm.log, traffic-*.log)"

bold "cleaning up"
"$LAB" down >/dev/null
trap - EXIT
echo "lab removed; namespaces left: $(ip netns list | grep -c "^$LAB_PREFIX-" || true); demo took $(( ($(now_ms) - T0) / 1000 )) s"
[ $bad = 0 ] || { echo "demo: $bad summary rows do not hold (see above)" >&2; exit 1; }
