#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# meta-mptcp lab: a device with two uplinks, real NetworkManager and (optionally) mptcpd,
# all inside network namespaces, with a private system D-Bus. Run as root.
#
#   PREFIX-dev  (NetworkManager, mptcpd, the agent)         PREFIX-rtr (router)           PREFIX-srv
#   wlan0 10.1.0.2/24  2001:db8:1::2/64 ------------------- rwlan .1.1 / :1::1
#                                                           rsrv  .9.1 / :9::1 ---------- eth0 10.9.0.2/24
#   wwan0 10.2.0.2/24  2001:db8:2::2/64 --- PREFIX-nat ---- rnat  .20.1 / :20::1              2001:db8:9::2/64
#         nwwan 10.2.0.1 / 2001:db8:2::1,  nup 10.20.0.2 / 2001:db8:20::2,
#         nftables masquerade (v4 and v6) out of nup: CGNAT-like, the server sees 10.20.0.2
#
# The device's addresses, gateways and routes come from NetworkManager keyfiles (static v4+v6,
# route metrics 600 wlan0 / 700 wwan0). Both uplinks are tbf-shaped in both directions.
# IPv6 uses the documentation prefix 2001:db8::/32 rather than ULA (fd00::/8) because
# NetworkManager's own MPTCP handling skips ULA addresses.
#
# Environment:
#   LAB_PREFIX   namespace prefix (default "lab"; [a-z0-9], at most 12 chars). Labs with
#                different prefixes run side by side.
#   LAB_DIR      state directory (default /tmp/mptcp-lab/$LAB_PREFIX): bus socket, NM state
#                and config, logs, pid files. Deleted by `down`.
#   LAB_OWNER_PID  optional: pid of the process that owns this lab (the Rust API sets it);
#                `sweep` removes labs whose owner is gone.
#
# Commands:
#   up [options]            build everything; on failure everything is removed again
#       --nm-mptcp on|off     NetworkManager's own MPTCP endpoint handling (default off:
#                             global connection.mptcp-flags=0x1)
#       --mptcpd              also start mptcpd (addr_adv plugin, subflow endpoints)
#       --carrier-wait MS     NM's carrier-wait-timeout (default 6000, NM's default)
#       --no-default IF       IF gets no default route (ipv4/ipv6.never-default); repeatable
#       --rate RATE|none      tbf rate per uplink and direction (default 20mbit)
#       --iperf3              start `mptcpize run iperf3 -s -p 5201` on the server
#       --timeout S           bound for NM startup + activation (default 30)
#   down                    stop every process the lab started (by pid), delete the
#                           namespaces and LAB_DIR
#   status                  namespaces, NM devices, addresses, routes, endpoints, processes
#   env                     KEY=VALUE description of this lab (names, addresses, bus)
#   nmcli ARGS...           nmcli against the lab's private system bus
#   dev|rtr|nat|srv CMD...  run CMD in that namespace (dev: with DBUS_SYSTEM_BUS_ADDRESS)
#   carrier IF on|off       cut/restore IF's carrier from the far side (peer admin state)
#   link IF up|down         set IF admin up/down on the device side
#   conn IF up|down         nmcli connection up/down uplink-IF
#   kill-subflows FILTER... `ss -K` in the server namespace with an ss filter
#   kill-subflows-of IF     `ss -K` for every TCP socket of IF's path (as the server sees it)
#   nm-start | nm-stop | nm-restart | nm-kill    NetworkManager (nm-kill = SIGKILL)
#   mptcpd-start | mptcpd-stop
#   spawn dev|rtr|nat|srv NAME CMD...   background process, logged to LAB_DIR/log/NAME.log,
#                           stopped by `stop NAME` or `down`
#   stop NAME               stop a process started with spawn (or nm, dbus, mptcpd, iperf3, agent)
#   agent-config [FILE]     write LAB_DIR/agent.toml: FILE (default conf/agent.toml, as shipped) plus
#                           networkmanager.conf_paths naming this lab's NetworkManager config (not the
#                           host's /etc/NetworkManager); prints the path
#   agent [--bg] [SUBCOMMAND ARGS...]   mptcp-agent in the device namespace on the lab's bus.
#                           `run` (the default) gets --config LAB_DIR/agent.toml (agent-config writes it
#                           if missing) and --state-dir LAB_DIR/agent-state unless given; `check-config`
#                           without a file checks LAB_DIR/agent.toml. --bg: in the background as process
#                           "agent" (log LAB_DIR/log/agent.log; `stop agent` or `down` ends it), prints
#                           its pid. Binary: $MPTCP_AGENT, else the newer of target/release and
#                           target/debug in this repository, else mptcp-agent on PATH.
#   sweep                   `down` every lab under /tmp/mptcp-lab whose LAB_OWNER_PID is gone
set -euo pipefail

P=${LAB_PREFIX:-lab}
LAB_ROOT=/tmp/mptcp-lab
LAB=${LAB_DIR:-$LAB_ROOT/$P}
DEV=$P-dev RTR=$P-rtr NAT=$P-nat SRV=$P-srv
BUS_SOCKET=$LAB/dbus/system_bus_socket
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$BUS_SOCKET
MARKER=.mptcp-lab
UPLINKS="wlan0 wwan0"

# Address plan. The server sees wwan0's traffic from the NAT box's address (SEEN).
declare -A ADDR4=([wlan0]=10.1.0.2 [wwan0]=10.2.0.2) GW4=([wlan0]=10.1.0.1 [wwan0]=10.2.0.1)
declare -A ADDR6=([wlan0]=2001:db8:1::2 [wwan0]=2001:db8:2::2) GW6=([wlan0]=2001:db8:1::1 [wwan0]=2001:db8:2::1)
declare -A SEEN4=([wlan0]=10.1.0.2 [wwan0]=10.20.0.2) SEEN6=([wlan0]=2001:db8:1::2 [wwan0]=2001:db8:20::2)
declare -A METRIC=([wlan0]=600 [wwan0]=700)
declare -A PEER_NS=([wlan0]=$RTR [wwan0]=$NAT) PEER_IF=([wlan0]=rwlan [wwan0]=nwwan)
SRV4=10.9.0.2 SRV6=2001:db8:9::2

log() { echo "[lab $P] $*" >&2; }
die() { echo "[lab $P] error: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

check_names() {
  [[ $P =~ ^[a-z0-9]{1,12}$ ]] || die "LAB_PREFIX '$P' must be 1-12 chars of [a-z0-9]"
  # sun_path holds 107 bytes
  [ ${#BUS_SOCKET} -lt 100 ] || die "LAB_DIR too long for a unix socket path: $BUS_SOCKET"
  # absolute and shell-word safe, so unquoted expansions below cannot split or glob
  [[ $LAB =~ ^/[A-Za-z0-9._/-]+$ ]] || die "LAB_DIR '$LAB' must be an absolute path of [A-Za-z0-9._/-]"
}

valid_uplink() { case " $UPLINKS " in *" $1 "*) ;; *) die "unknown uplink '$1' (have: $UPLINKS)";; esac; }
ns_of() {
  case $1 in dev) echo $DEV;; rtr) echo $RTR;; nat) echo $NAT;; srv) echo $SRV;;
    *) die "unknown namespace '$1' (dev|rtr|nat|srv)";; esac
}

# --- processes: pid files hold "PID STARTTIME" so a recycled pid is never signalled -----------

starttime() { # field 22 of /proc/PID/stat (after the parenthesised comm)
  local s; s=$(cat /proc/$1/stat 2>/dev/null) || return 1
  s=${s##*) }; set -- $s; echo "${20}"
}
proc_state() { local s; s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }; echo "${s%% *}"; }
# The process recorded in pid file $1 is still running (zombies count as gone).
recorded_alive() {
  local f=$1 pid st
  [ -f "$f" ] || return 1
  read -r pid st < "$f" || return 1
  [ "$(starttime "$pid" 2>/dev/null)" = "$st" ] || return 1
  [ "$(proc_state "$pid")" != Z ]
}
record_pid() { # name pid
  mkdir -p "$LAB/pids"
  echo "$2 $(starttime "$2" || echo 0)" > "$LAB/pids/$1.pid"
}
pid_of() { local pid st; read -r pid st < "$LAB/pids/$1.pid"; echo "$pid"; }

# Stop the process group led by a recorded pid: SIGTERM (or $2), then SIGKILL after 5 s.
stop_recorded() {
  local name=$1 sig=${2:-TERM} f=$LAB/pids/$1.pid pid
  [ -f "$f" ] || return 0
  if recorded_alive "$f"; then
    pid=$(pid_of "$name")
    kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
    local end=$((SECONDS + 5))
    while recorded_alive "$f" && [ $SECONDS -lt $end ]; do sleep 0.02; done
    if recorded_alive "$f"; then
      log "$name (pid $pid) ignored SIG$sig for 5 s; SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      end=$((SECONDS + 5))
      while recorded_alive "$f" && [ $SECONDS -lt $end ]; do sleep 0.02; done
    fi
    recorded_alive "$f" && log "WARNING: $name (pid $pid) still alive"
  fi
  rm -f "$f"
}

# Start "$@" in the background as its own process group (setsid execs: same pid), record it.
start_bg() { # name logfile cmd...
  local name=$1 logf=$2; shift 2
  setsid "$@" < /dev/null >> "$logf" 2>&1 &
  record_pid "$name" $!
}

# --- topology ---------------------------------------------------------------------------------

topo_up() {
  local ns
  for ns in $DEV $RTR $NAT $SRV; do
    ip netns add $ns
    ip -n $ns link set lo up
    # No DAD: NM's v6 activation and the tests would wait ~2 s for it on every link.
    ip netns exec $ns sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
    # Explicit, so the lab does not inherit the host's setting (NM only ever loosens it).
    ip netns exec $ns sysctl -qw net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.rp_filter=0
  done
  ip -n $DEV link add wlan0 type veth peer name rwlan netns $RTR
  ip -n $DEV link add wwan0 type veth peer name nwwan netns $NAT
  ip -n $NAT link add nup type veth peer name rnat netns $RTR
  ip -n $RTR link add rsrv type veth peer name eth0 netns $SRV

  ip -n $RTR addr add 10.1.0.1/24 dev rwlan;  ip -n $RTR addr add 2001:db8:1::1/64 dev rwlan
  ip -n $RTR addr add 10.20.0.1/24 dev rnat;  ip -n $RTR addr add 2001:db8:20::1/64 dev rnat
  ip -n $RTR addr add 10.9.0.1/24 dev rsrv;   ip -n $RTR addr add 2001:db8:9::1/64 dev rsrv
  for l in rwlan rnat rsrv; do ip -n $RTR link set $l up; done
  ip netns exec $RTR sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

  ip -n $NAT addr add 10.2.0.1/24 dev nwwan;  ip -n $NAT addr add 2001:db8:2::1/64 dev nwwan
  ip -n $NAT addr add 10.20.0.2/24 dev nup;   ip -n $NAT addr add 2001:db8:20::2/64 dev nup
  ip -n $NAT link set nwwan up; ip -n $NAT link set nup up
  ip -n $NAT route add default via 10.20.0.1
  ip -n $NAT -6 route add default via 2001:db8:20::1
  ip netns exec $NAT sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  ip netns exec $NAT nft -f - <<'NFT'
table inet lab_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "nup" masquerade
  }
}
NFT

  ip -n $SRV addr add $SRV4/24 dev eth0; ip -n $SRV addr add $SRV6/64 dev eth0
  ip -n $SRV link set eth0 up
  ip -n $SRV route add default via 10.9.0.1
  ip -n $SRV -6 route add default via 2001:db8:9::1
  # The server accepts joins on its one address and ADD_ADDRs.
  ip -n $SRV mptcp limits set subflow 8 add_addr_accepted 8

  # The device side (wlan0, wwan0) stays down: NetworkManager brings it up from its profiles.
  if [ "$rate" != none ]; then
    local d
    for d in wlan0 wwan0; do ip netns exec $DEV tc qdisc replace dev $d root tbf rate $rate burst 32kb latency 50ms; done
    # far-side egress, so downloads are limited too
    ip netns exec $RTR tc qdisc replace dev rwlan root tbf rate $rate burst 32kb latency 50ms
    ip netns exec $NAT tc qdisc replace dev nwwan root tbf rate $rate burst 32kb latency 50ms
  fi
}

# --- private bus + NetworkManager ---------------------------------------------------------------

write_config() {
  mkdir -p $LAB/dbus $LAB/nm/etc/conf.d $LAB/nm/etc/system-connections $LAB/nm/run $LAB/nm/varlib $LAB/log
  cat > $LAB/dbus/system.conf <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$BUS_SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
XML
  cat > $LAB/nm/etc/NetworkManager.conf <<CONF
[main]
plugins=keyfile
no-auto-default=*
auth-polkit=false
dns=none
rc-manager=unmanaged
hostname-mode=none
systemd-resolved=false
dhcp=internal

[keyfile]
path=/etc/NetworkManager/system-connections
unmanaged-devices=*,except:interface-name:wlan0,except:interface-name:wwan0

[device-lab-uplinks]
match-device=interface-name:wlan0;interface-name:wwan0
managed=1
carrier-wait-timeout=$carrier_wait

[logging]
level=INFO
domains=DEFAULT,DEVICE:DEBUG,IP4:DEBUG,IP6:DEBUG
CONF
  if [ "$nm_mptcp" = off ]; then
    # Global default of connection.mptcp-flags. Numeric only: the word "disabled" is
    # silently ignored in NetworkManager.conf. 0x1 = disabled.
    printf '[connection-lab-mptcp]\nconnection.mptcp-flags=0x1\n' > $LAB/nm/etc/conf.d/50-mptcp.conf
  fi
  local ifc
  for ifc in $UPLINKS; do
    local never=false gw4="gateway=${GW4[$ifc]}" gw6="gateway=${GW6[$ifc]}"
    case " $no_default " in *" $ifc "*) never=true;; esac
    cat > $LAB/nm/etc/system-connections/uplink-$ifc.nmconnection <<KF
[connection]
id=uplink-$ifc
uuid=$(cat /proc/sys/kernel/random/uuid)
type=ethernet
interface-name=$ifc
autoconnect=true

[ethernet]

[ipv4]
method=manual
address1=${ADDR4[$ifc]}/24
$gw4
never-default=$never
route-metric=${METRIC[$ifc]}

[ipv6]
method=manual
address1=${ADDR6[$ifc]}/64
$gw6
never-default=$never
route-metric=${METRIC[$ifc]}
addr-gen-mode=eui64
ip6-privacy=0
KF
    chmod 600 $LAB/nm/etc/system-connections/uplink-$ifc.nmconnection
  done
}

start_bus() {
  rm -f $BUS_SOCKET
  start_bg dbus $LAB/log/dbus.log ip netns exec $DEV \
    dbus-daemon --config-file=$LAB/dbus/system.conf --nofork --nopidfile
  local end=$((SECONDS + 5))
  until [ -S $BUS_SOCKET ]; do
    [ $SECONDS -lt $end ] || die "dbus-daemon socket did not appear within 5 s (see $LAB/log/dbus.log)"
    recorded_alive $LAB/pids/dbus.pid || die "dbus-daemon exited: $(tail -n 5 $LAB/log/dbus.log)"
    sleep 0.02
  done
}

nm_running() { recorded_alive $LAB/pids/nm.pid; }

# NetworkManager in its own mount namespace: /sys read-only (per-mount flag; otherwise NM waits
# for a udev that is not running and leaves the devices unmanaged) and the lab's directories
# over its compiled-in /run, /var/lib/NetworkManager and /etc/NetworkManager. `mount -n`: no
# /run/mount bookkeeping, which could land on the host's /run before the bind is in place.
start_nm() {
  nm_running && die "NetworkManager already running (pid $(pid_of nm))"
  local t0; t0=$(now)
  echo "=== NetworkManager start $(date -Is)" >> $LAB/log/nm.log
  start_bg nm $LAB/log/nm.log ip netns exec $DEV unshare --mount --propagation private sh -c "
    mount -n -o remount,bind,ro /sys &&
    mount -n --bind '$LAB/nm/run' /run &&
    mount -n --bind '$LAB/nm/varlib' /var/lib/NetworkManager &&
    mount -n --bind '$LAB/nm/etc' /etc/NetworkManager &&
    exec NetworkManager --debug --config=/etc/NetworkManager/NetworkManager.conf \
      --config-dir=/etc/NetworkManager/conf.d --system-config-dir=/etc/NetworkManager/conf.d"
  wait_nm_ready "${startup_timeout:-30}"
  NM_STARTUP_S=$(elapsed "$t0")
  log "NetworkManager pid $(pid_of nm): startup complete, uplinks activated after ${NM_STARTUP_S} s"
}

# Startup complete, then every uplink's profile activated.
wait_nm_ready() {
  local timeout=$1 end=$((SECONDS + $1))
  until nm-online -s -q -t 0 2>/dev/null; do
    nm_running || die "NetworkManager exited: $(tail -n 5 $LAB/log/nm.log)"
    [ $SECONDS -lt $end ] || die "NetworkManager startup not complete after $timeout s (see $LAB/log/nm.log)"
    sleep 0.02
  done
  local ifc
  for ifc in $UPLINKS; do
    until [ "$(nmcli -g GENERAL.STATE connection show uplink-$ifc 2>/dev/null)" = activated ]; do
      [ $SECONDS -lt $end ] || die "uplink-$ifc not activated after $timeout s (see $LAB/log/nm.log)"
      sleep 0.02
    done
  done
}

# dbus-daemon releases a dead owner's name only once it reads the hangup: a NetworkManager started
# before that exits with "Service already taken". A stop ends when the name is free.
nm_name_owned() {
  local r
  r=$(dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.NetworkManager 2>/dev/null) || return 1
  [[ $r == *true* ]]
}
stop_nm() {
  stop_recorded nm "${1:-TERM}"
  local end=$((SECONDS + 5))
  while nm_name_owned; do
    [ $SECONDS -lt $end ] ||
      die "org.freedesktop.NetworkManager still owned on the lab bus 5 s after NetworkManager exited"
    sleep 0.02
  done
}

mptcpd_plugin_dir() {
  local d
  for d in /usr/lib/*/mptcpd /usr/lib/mptcpd /usr/lib64/mptcpd; do
    [ -e "$d/addr_adv.so" ] && { echo "$d"; return; }
  done
  die "mptcpd plugins not found (install mptcpd-plugins)"
}

start_mptcpd() {
  recorded_alive $LAB/pids/mptcpd.pid && die "mptcpd already running"
  local bin=/usr/libexec/mptcpd
  [ -x $bin ] || bin=$(command -v mptcpd) || die "mptcpd not installed"
  local off; off=$(stat -c %s $LAB/log/mptcpd.log 2>/dev/null || echo 0)
  start_bg mptcpd $LAB/log/mptcpd.log ip netns exec $DEV $bin --log=stderr \
    --plugin-dir="$(mptcpd_plugin_dir)" --path-manager=addr_adv --addr-flags=subflow \
    --notify-flags=existing,skip_link_local,skip_loopback
  # ready once this run has initialised its plugin (bounded); its endpoints follow within ms
  local end=$((SECONDS + 5))
  until tail -c +$((off + 1)) $LAB/log/mptcpd.log | grep -q "address advertiser path manager initialized"; do
    recorded_alive $LAB/pids/mptcpd.pid || die "mptcpd exited: $(tail -n 5 $LAB/log/mptcpd.log)"
    [ $SECONDS -lt $end ] || break
    sleep 0.02
  done
  log "mptcpd pid $(pid_of mptcpd)"
}

# --- env description -------------------------------------------------------------------------------

write_env() {
  local f=$LAB/lab.env ifc U
  {
    echo "LAB_PREFIX=$P"
    echo "LAB_DIR=$LAB"
    echo "LAB_OWNER_PID=${LAB_OWNER_PID:-}"
    echo "LAB_OWNER_START=$( [ -n "${LAB_OWNER_PID:-}" ] && starttime "$LAB_OWNER_PID" || true)"
    # A QEMU guest that shares this /tmp (virtme-ng) runs another kernel: its pids say
    # nothing about our labs, so sweep only labs of this boot.
    echo "LAB_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)"
    echo "LAB_DEV_NS=$DEV"
    echo "LAB_RTR_NS=$RTR"
    echo "LAB_NAT_NS=$NAT"
    echo "LAB_SRV_NS=$SRV"
    echo "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"
    echo "LAB_SERVER_ADDR4=$SRV4"
    echo "LAB_SERVER_ADDR6=$SRV6"
    echo "LAB_UPLINKS=\"$UPLINKS\""
    echo "LAB_NM_MPTCP=$nm_mptcp"
    echo "LAB_CARRIER_WAIT_MS=$carrier_wait"
    echo "LAB_RATE=$rate"
    for ifc in $UPLINKS; do
      U=${ifc^^}
      local def=true
      case " $no_default " in *" $ifc "*) def=false;; esac
      echo "LAB_${U}_CONNECTION=uplink-$ifc"
      echo "LAB_${U}_ADDR4=${ADDR4[$ifc]}"
      echo "LAB_${U}_GW4=${GW4[$ifc]}"
      echo "LAB_${U}_ADDR6=${ADDR6[$ifc]}"
      echo "LAB_${U}_GW6=${GW6[$ifc]}"
      echo "LAB_${U}_SEEN4=${SEEN4[$ifc]}"
      echo "LAB_${U}_SEEN6=${SEEN6[$ifc]}"
      echo "LAB_${U}_METRIC=${METRIC[$ifc]}"
      echo "LAB_${U}_DEFAULT_ROUTE=$def"
      echo "LAB_${U}_PEER_NS=${PEER_NS[$ifc]}"
      echo "LAB_${U}_PEER_IF=${PEER_IF[$ifc]}"
    done
  } > $f
}

# --- the agent -----------------------------------------------------------------------------------

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

agent_bin() {
  if [ -n "${MPTCP_AGENT:-}" ]; then
    [ -x "$MPTCP_AGENT" ] || die "MPTCP_AGENT=$MPTCP_AGENT is not an executable"
    echo "$MPTCP_AGENT"; return
  fi
  local t=${CARGO_TARGET_DIR:-$REPO/target} best="" b
  for b in "$t/release/mptcp-agent" "$t/debug/mptcp-agent"; do
    [ -x "$b" ] || continue
    if [ -z "$best" ] || [ "$b" -nt "$best" ]; then best=$b; fi
  done
  [ -n "$best" ] || best=$(command -v mptcp-agent) ||
    die "mptcp-agent not found: build it (cargo build -p mptcp-agent) or set MPTCP_AGENT=PATH"
  echo "$best"
}

# The agent's config for this lab: the given file plus the lab's NetworkManager config paths,
# so that the agent checks the lab's NetworkManager (its own MPTCP off), not the host's.
agent_config() { # [FILE]
  local src=${1:-$REPO/conf/agent.toml} out=$LAB/agent.toml
  [ -r "$src" ] || die "agent-config: cannot read $src"
  grep -qE '^[[:space:]]*conf_paths[[:space:]]*=' "$src" &&
    die "agent-config: $src sets networkmanager.conf_paths itself; remove it, the lab supplies its own"
  awk -v paths="conf_paths = [\"$LAB/nm/etc/NetworkManager.conf\", \"$LAB/nm/etc/conf.d\"]" '
    { print } /^[[:space:]]*\[networkmanager\][[:space:]]*(#.*)?$/ && !done { print paths; done = 1 }
    END { if (!done) { print ""; print "[networkmanager]"; print paths } }' "$src" > "$out.tmp"
  # check-config refuses group/world-writable files; the agent reads it as root.
  chmod 0644 "$out.tmp"
  mv -f "$out.tmp" "$out"
  echo "$out"
}

agent() {
  local bg=0 bin
  if [ "${1:-}" = --bg ]; then bg=1; shift; fi
  [ $# -gt 0 ] || set -- run
  bin=$(agent_bin)
  local sub=$1; shift
  local args=("$sub")
  case $sub in
    run)
      case " $* " in *" --config "*|*" -c "*|*" --config="*) ;;
        *) [ -e "$LAB/agent.toml" ] || agent_config >/dev/null; args+=(--config "$LAB/agent.toml");; esac
      case " $* " in *" --state-dir"*) ;; *) args+=(--state-dir "$LAB/agent-state");; esac ;;
    check-config)
      if [ $# -eq 0 ]; then [ -e "$LAB/agent.toml" ] || agent_config >/dev/null; args+=("$LAB/agent.toml"); fi ;;
  esac
  args+=("$@")
  local env=(env "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS" "RUST_LOG=${RUST_LOG:-info}")
  if [ $bg = 1 ]; then
    recorded_alive $LAB/pids/agent.pid && die "agent already running (pid $(pid_of agent))"
    echo "=== $bin ${args[*]} $(date -Is)" >> $LAB/log/agent.log
    start_bg agent $LAB/log/agent.log ip netns exec $DEV "${env[@]}" "$bin" "${args[@]}"
    pid_of agent
  else
    exec ip netns exec $DEV "${env[@]}" "$bin" "${args[@]}"
  fi
}

# --- up / down -----------------------------------------------------------------------------------

lab_exists() {
  [ -e "$LAB/$MARKER" ] && return 0
  local ns
  for ns in $DEV $RTR $NAT $SRV; do [ -e /run/netns/$ns ] && return 0; done
  return 1
}

up() {
  nm_mptcp=off; with_mptcpd=0; carrier_wait=6000; no_default=""; rate=20mbit; iperf3=0
  startup_timeout=30
  while [ $# -gt 0 ]; do
    case $1 in
      --nm-mptcp) [[ ${2:-} =~ ^(on|off)$ ]] || die "--nm-mptcp on|off"; nm_mptcp=$2; shift 2;;
      --mptcpd) with_mptcpd=1; shift;;
      --carrier-wait) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--carrier-wait MS"; carrier_wait=$2; shift 2;;
      --no-default) valid_uplink "${2:-}"; no_default="$no_default $2"; shift 2;;
      --rate) [[ ${2:-} =~ ^([0-9]+[kmg]?bit|none)$ ]] || die "--rate RATE (e.g. 20mbit) or none"; rate=$2; shift 2;;
      --iperf3) iperf3=1; shift;;
      --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout SECONDS"; startup_timeout=$2; shift 2;;
      *) die "unknown option to up: $1";;
    esac
  done
  [ "$(id -u)" = 0 ] || die "must run as root"
  lab_exists && die "lab '$P' already exists (namespaces or $LAB); run: LAB_PREFIX=$P $0 down"
  local t0; t0=$(now)
  mkdir -p "$LAB"
  touch "$LAB/$MARKER"
  # From here on, any failure tears the lab down again.
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed (exit $rc); cleaning up"; dump_logs; down; fi' EXIT
  mkdir -p $LAB/log $LAB/pids
  topo_up
  write_config
  write_env
  start_bus
  start_nm
  [ $with_mptcpd = 1 ] && start_mptcpd
  if [ $iperf3 = 1 ]; then
    start_bg iperf3 $LAB/log/iperf3.log ip netns exec $SRV mptcpize run iperf3 -s -p 5201
  fi
  {
    echo "LAB_NM_STARTUP_S=$NM_STARTUP_S"
    echo "LAB_UP_S=$(elapsed "$t0")"
  } >> $LAB/lab.env
  trap - EXIT
  log "up in $(elapsed "$t0") s (NetworkManager ${NM_STARTUP_S} s); DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"
}

dump_logs() {
  local f
  for f in $LAB/log/*.log; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f" >&2
    tail -n 15 "$f" >&2
  done
}

# Pids of this script and its ancestors: never signalled, even if (e.g. a test thread's
# setns) they appear inside a lab namespace.
ancestors() {
  local p=$$
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    echo $p
    p=$(awk '{ sub(/.*\) /, ""); print $2 }' /proc/$p/stat 2>/dev/null) || break
  done
}

down() {
  local name ns pid
  if [ -d "$LAB" ] && [ ! -e "$LAB/$MARKER" ]; then
    die "$LAB exists but is not a lab directory (no $MARKER); not touching it"
  fi
  # Dependants first: the bus goes last so NetworkManager can shut down cleanly.
  for name in iperf3 mptcpd; do stop_recorded $name; done
  if [ -d "$LAB/pids" ]; then
    for f in "$LAB"/pids/*.pid; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .pid)
      case $name in nm|dbus) ;; *) stop_recorded "$name";; esac
    done
  fi
  stop_recorded nm
  stop_recorded dbus
  # Anything still running inside the lab's namespaces was started by a user of the lab
  # (a test's client, say): stop it by pid, or the namespace would outlive `ip netns del`.
  local keep; keep=" $(ancestors | tr '\n' ' ') "
  for ns in $DEV $RTR $NAT $SRV; do
    [ -e /run/netns/$ns ] || continue
    for pid in $(ip netns pids $ns 2>/dev/null); do
      case $keep in *" $pid "*) continue;; esac
      log "killing leftover pid $pid ($(cat /proc/$pid/comm 2>/dev/null)) in $ns"
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  for ns in $DEV $RTR $NAT $SRV; do
    if [ -e /run/netns/$ns ]; then
      ip netns del $ns || log "WARNING: could not delete netns $ns"
    fi
  done
  if [ -d "$LAB" ]; then rm -rf "$LAB"; fi
  rmdir $LAB_ROOT 2>/dev/null || true
}

# Remove labs whose owning process has gone (e.g. a test runner killed with SIGKILL).
sweep() {
  local d
  for d in $LAB_ROOT/*/; do
    [ -e "$d/$MARKER" ] && [ -f "$d/lab.env" ] || continue
    local owner start prefix
    owner=$(sed -n 's/^LAB_OWNER_PID=//p' "$d/lab.env")
    start=$(sed -n 's/^LAB_OWNER_START=//p' "$d/lab.env")
    prefix=$(sed -n 's/^LAB_PREFIX=//p' "$d/lab.env")
    [ -n "$owner" ] && [ -n "$prefix" ] || continue
    [ "$(sed -n 's/^LAB_BOOT_ID=//p' "$d/lab.env")" = "$(cat /proc/sys/kernel/random/boot_id)" ] || continue
    if [ "$(starttime "$owner" 2>/dev/null)" != "$start" ]; then
      log "sweeping lab '$prefix' (owner pid $owner is gone)"
      LAB_PREFIX=$prefix LAB_DIR=${d%/} "$0" down || true
    fi
  done
}

status() {
  echo "== lab $P ($LAB)"
  echo "== namespaces"; ip netns list | grep "^$P-" || true
  echo "== processes"
  local f
  for f in "$LAB"/pids/*.pid; do
    [ -e "$f" ] || continue
    if recorded_alive "$f"; then echo "$(basename "$f" .pid) $(cut -d' ' -f1 "$f") running"; else echo "$(basename "$f" .pid) exited"; fi
  done
  echo "== nmcli device"; nmcli device 2>&1 || true
  echo "== $DEV addresses"; ip -n $DEV -br addr
  echo "== $DEV routes"; ip -n $DEV route; ip -n $DEV -6 route | grep -v '^fe80' || true
  echo "== $DEV mptcp endpoints"; ip -n $DEV mptcp endpoint show
  echo "== $DEV mptcp limits"; ip -n $DEV mptcp limits show
}

need_lab() { [ -e "$LAB/$MARKER" ] || die "lab '$P' is not up ($LAB missing)"; }

# Wait (bounded) until `ip -n NS link show DEV` does / does not contain a flag.
wait_flag() { # ns dev flag present|absent
  local end=$((SECONDS + 5)) flags
  while :; do
    flags=$(ip -n $1 -o link show dev $2 | sed -n 's/.*<\([^>]*\)>.*/\1/p')
    case ",$flags," in *",$3,"*) [ $4 = present ] && return 0;; *) [ $4 = absent ] && return 0;; esac
    [ $SECONDS -lt $end ] || die "$2 in $1: flag $3 not $4 after 5 s (flags $flags)"
    sleep 0.01
  done
}

cmd=${1:-}; shift || true
check_names
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  sweep) sweep ;;
  status) need_lab; status ;;
  env) need_lab; cat $LAB/lab.env ;;
  nmcli) need_lab; exec nmcli "$@" ;;
  dev) need_lab; exec ip netns exec $DEV env DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS "$@" ;;
  rtr|nat|srv) need_lab; exec ip netns exec "$(ns_of $cmd)" "$@" ;;
  carrier)
    need_lab; valid_uplink "${1:-}"
    ifc=$1
    case ${2:-} in
      off) ip -n ${PEER_NS[$ifc]} link set ${PEER_IF[$ifc]} down; wait_flag $DEV $ifc LOWER_UP absent ;;
      on) ip -n ${PEER_NS[$ifc]} link set ${PEER_IF[$ifc]} up; wait_flag $DEV $ifc NO-CARRIER absent ;;
      *) die "carrier IF on|off" ;;
    esac ;;
  link)
    need_lab; valid_uplink "${1:-}"
    case ${2:-} in
      up|down) ip -n $DEV link set "$1" "$2" ;;
      *) die "link IF up|down" ;;
    esac ;;
  conn)
    need_lab; valid_uplink "${1:-}"
    case ${2:-} in
      up|down) nmcli --wait 10 connection "$2" "uplink-$1" > /dev/null ;;
      *) die "conn IF up|down" ;;
    esac ;;
  kill-subflows)
    need_lab; [ $# -gt 0 ] || die "kill-subflows needs an ss filter (e.g. dst 10.20.0.2)"
    ip netns exec $SRV ss -K -t -n "$@" ;;
  kill-subflows-of)
    need_lab; valid_uplink "${1:-}"
    ip netns exec $SRV ss -K -t -n "( dst ${SEEN4[$1]} or dst [${SEEN6[$1]}] )" ;;
  nm-start) need_lab; startup_timeout=${1:-30}; start_nm ;;
  nm-stop) need_lab; stop_nm ;;
  nm-kill) need_lab; stop_nm KILL ;;
  nm-restart) need_lab; startup_timeout=${1:-30}; stop_nm; start_nm ;;
  mptcpd-start) need_lab; start_mptcpd ;;
  mptcpd-stop) need_lab; stop_recorded mptcpd ;;
  spawn)
    need_lab; [ $# -ge 3 ] || die "spawn dev|rtr|nat|srv NAME CMD..."
    ns=$(ns_of "$1"); name=$2; shift 2
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad process name '$name'"
    recorded_alive $LAB/pids/$name.pid && die "$name already running"
    if [ "$ns" = $DEV ]; then
      start_bg "$name" $LAB/log/$name.log ip netns exec $ns env DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS "$@"
    else
      start_bg "$name" $LAB/log/$name.log ip netns exec $ns "$@"
    fi
    pid_of "$name" ;;
  stop) need_lab; [ -n "${1:-}" ] || die "stop NAME"; stop_recorded "$1" ;;
  agent-config) need_lab; agent_config "$@" ;;
  agent) need_lab; agent "$@" ;;
  ""|-h|--help|help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (try: $0 help)" ;;
esac
