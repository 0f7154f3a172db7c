#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Set-up of a Debian 12 machine for meta-mptcp, by purpose. Idempotent: installs only what is missing.
#
#   testing/setup.sh demo    what ./testing/demo.sh needs: NetworkManager, D-Bus, iproute2 (ip
#                            mptcp, tc, ss), nftables, python3, a C linker for the Rust build.
#                            Nothing of the kernel matrix, no apt source added.
#   testing/setup.sh test    what ./testing/test.sh needs (the default when no mode is given): the
#                            demo's packages plus mptcpd, iperf3, kernel build tools, QEMU,
#                            busybox-static, iptables, linux-source-5.10 (from Debian bullseye) and
#                            a Python venv (.venv) with oelint-adv and virtme-ng.
#   testing/setup.sh plan [demo|test]   print what the mode would install and why; change nothing.
#
# Each mode prints every package group, why it is needed and what is missing.
# Host packages are never upgraded: packages are installed with --no-install-recommends, apt's plan
# is simulated first (apt-get -s), and every installed package apt would upgrade is kept at its
# installed version (pkg=VERSION), as is every new package built from the same source (perl next to
# perl-base) when the archive has that version; auto/manual marks are restored afterwards. If the
# missing packages still cannot be installed without an upgrade, setup refuses, with apt's reason
# and the packages; SETUP_ALLOW_UPGRADES=1 lets apt upgrade them.
# linux-source-5.10 comes from Debian bullseye: an existing bullseye source in any file apt reads
# (sources.list, sources.list.d/*.list, sources.list.d/*.sources) is used as it is; only without
# one does setup add its own (pinned to priority 100, so nothing else comes from bullseye).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
APT_ETC=${SETUP_APT_ETC:-/etc/apt}            # overridable for testing/test.d/04-setup-sources.sh
OUR_LIST=$APT_ETC/sources.list.d/meta-mptcp-bullseye.sources
OUR_PIN=$APT_ETC/preferences.d/meta-mptcp-bullseye

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

# Package groups: "mode|why|packages". demo groups are part of test too.
GROUPS_=(
  "demo|the lab: NetworkManager on a private D-Bus in network namespaces (unshare, setsid, sysctl)|network-manager dbus-daemon dbus-bin util-linux procps"
  "demo|MPTCP endpoints and limits (ip mptcp), subflow resets (ss -K), link shaping (tc)|iproute2"
  "demo|the lab's CGNAT-like masquerade|nftables"
  "demo|the demo's throughput table and the testing/test.d checks|python3"
  "demo|linking the Rust build (cargo calls cc)|gcc libc6-dev"
  "test|lab tests: mptcpd beside the agent, iperf3 through mptcpize, ping|mptcpd mptcpd-plugins mptcpize iperf3 iputils-ping"
  "test|checks: the Python venv for oelint-adv and virtme-ng; git for kmx's source identity|python3-venv python3-pip git"
  "test|testing/test.d/30-systemd-unit.sh: systemd-analyze verify/security of the shipped unit|systemd"
  "test|kernel-patches: mptcp-backport verify (kconfig, compile net/mptcp/) and apply (GNU patch)|make flex bison bc libelf-dev libssl-dev pkg-config patch xz-utils"
  "test|kernel matrix: build kernels and boot them under QEMU with virtme-ng|build-essential cpio kmod rsync qemu-system-x86 busybox-static ethtool"
  "test|kernel matrix: the 6.1 selftests mptcp_sockopt.sh and mptcp_join.sh need iptables|iptables"
  "test|the real 5.10 tree (Debian bullseye) for mptcp-backport verify and the 5.10 QEMU guest|linux-source-5.10"
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# --- apt sources -------------------------------------------------------------------------------

# Print every file apt reads that enables Debian bullseye's main component (one-line or deb822
# format; commented lines, disabled stanzas and bullseye-updates/-security do not count).
bullseye_sources() {
  local f
  for f in "$APT_ETC/sources.list" "$APT_ETC"/sources.list.d/*.list "$APT_ETC"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case $f in
      *.sources)
        # deb822: blank-line separated stanzas; field names are case-insensitive.
        awk 'BEGIN { RS = "" }
          { types = suites = comps = ""; enabled = "yes"
            n = split($0, l, "\n")
            for (i = 1; i <= n; i++) {
              if (l[i] ~ /^[ \t]*#/) continue
              if (match(l[i], /^[A-Za-z-]+:/)) {
                k = tolower(substr(l[i], 1, RLENGTH - 1)); v = " " substr(l[i], RLENGTH + 1) " "
                gsub(/[ \t]+/, " ", v)
                if (k == "types") types = v; else if (k == "suites") suites = v
                else if (k == "components") comps = v; else if (k == "enabled") enabled = tolower(v)
              }
            }
            if (types ~ / deb / && suites ~ / bullseye / && comps ~ / main / && enabled !~ / no /) found = 1
          }
          END { exit !found }' "$f" && echo "$f"
        ;;
      *)
        # deb [options] URI SUITE COMPONENT...
        awk '{ sub(/#.*/, "") }
          $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == "bullseye") for (j = i + 2; j <= NF; j++) if ($j == "main") found = 1 }
          END { exit !found }' "$f" && echo "$f"
        ;;
    esac
  done
  return 0
}

# Make sure exactly one bullseye source is configured: the machine's own if it has one (ours is
# then removed, so apt never warns "configured multiple times"), ours otherwise.
ensure_bullseye() {
  local others uri
  others=$(bullseye_sources | grep -vxF "$OUR_LIST" || true)
  if [ -n "$others" ]; then
    if [ -e "$OUR_LIST" ]; then
      rm -f "$OUR_LIST"
      say "removed $OUR_LIST: bullseye is already configured in $(echo $others)"
    else
      say "bullseye source: $(echo $others) (already configured; nothing added)"
    fi
  elif [ -e "$OUR_LIST" ]; then
    say "bullseye source: $OUR_LIST (added by an earlier run)"
  else
    # Reuse the Debian mirror this machine already uses.
    uri=$( (grep -rhoE '(URIs:[[:space:]]*|^deb[[:space:]]+)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
            "$APT_ETC/sources.list" "$APT_ETC/sources.list.d/" 2>/dev/null || true) | grep -oE 'https?://[^[:space:]]+' | head -n1)
    [ -n "$uri" ] || die "no Debian mirror found in $APT_ETC/sources.list*; add a bullseye source for linux-source-5.10 yourself"
    printf '# Added by meta-mptcp testing/setup.sh for linux-source-5.10 (pinned low in %s).\nTypes: deb\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$OUR_PIN" "$uri" > "$OUR_LIST"
    say "added $OUR_LIST (bullseye from $uri) for linux-source-5.10"
  fi
  # Pinned low whoever configured the source: only packages we name explicitly come from bullseye.
  if [ ! -e "$OUR_PIN" ]; then
    printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > "$OUR_PIN"
    say "added $OUR_PIN (bullseye at priority 100: nothing upgrades from it)"
  fi
}

# An earlier run's source next to the machine's own bullseye source: remove ours.
drop_duplicate_bullseye() {
  [ -e "$OUR_LIST" ] || return 0
  [ -n "$(bullseye_sources | grep -vxF "$OUR_LIST" || true)" ] || return 0
  ensure_bullseye
}

# --- installing without upgrading ----------------------------------------------------------------

# apt's plan for `install "$@"`: its "Inst PKG [OLD] (NEW ...)" lines ([OLD] only for an upgrade of
# an installed package). When apt has no plan, its own explanation goes to stderr.
apt_plan() {
  local out
  if ! out=$(LC_ALL=C apt-get install -s --no-install-recommends "$@" 2>&1); then
    printf '%s\n' "$out" | grep -vE '^(Reading|Building|NOTE:|This is only|Some packages could)' >&2
    return 1
  fi
  printf '%s\n' "$out" | awk '$1 == "Inst"'
}
version_available() { # pkg version
  apt-cache madison "$1" 2>/dev/null | awk -F'|' -v v="$2" '{ gsub(/ /, "", $2) } $2 == v { f = 1 } END { exit !f }'
}

apt_install() { # packages...
  local plan ups holds=() autos=() p v s n
  plan=$(apt_plan "$@") || die "apt cannot install: $* (apt's reason above)"
  ups=$(awk '$3 ~ /^\[/ { print $2 }' <<<"$plan")
  if [ -n "$ups" ] && [ "${SETUP_ALLOW_UPGRADES:-0}" != 1 ]; then
    say "apt would upgrade installed $(echo $ups); keeping them at their installed versions"
    local -A held_src=()
    for p in $ups; do
      v=$(dpkg-query -W -f='${Version}' "$p")
      holds+=("$p=$v")
      held_src[$(dpkg-query -W -f='${source:Package}' "$p")]=$v
      apt-mark showauto "$p" | grep -q . && autos+=("$p")
    done
    # A new package built from the same source as a held one (perl next to perl-base, zlib1g-dev
    # next to zlib1g) must match its version: ask for that version when the archive has it.
    # One apt-cache call for all new packages: "PACKAGE SOURCE" per line.
    while read -r n s; do
      v=${held_src[$s]:-}
      [ -n "$v" ] && version_available "$n" "$v" || continue
      holds+=("$n=$v")
      case " $* " in *" $n "*) ;; *) autos+=("$n");; esac   # a dependency, not asked for
    done < <(awk '$3 !~ /^\[/ { print $2 }' <<<"$plan" | xargs -r apt-cache show --no-all-versions 2>/dev/null |
             awk '/^Package:/ { p = $2; s = $2 } /^Source:/ { s = $2 } /^$/ && p { print p, s; p = "" } END { if (p) print p, s }')
    plan=$(apt_plan "$@" "${holds[@]}") ||
      die "$* cannot be installed without upgrading installed packages ($(echo $ups)): apt's reason above.
  Upgrade them yourself (apt-get install --only-upgrade PKG...) or run again with SETUP_ALLOW_UPGRADES=1."
    ups=$(awk '$3 ~ /^\[/ { print $2 }' <<<"$plan")
    [ -z "$ups" ] || die "apt would still upgrade $(echo $ups); refusing (SETUP_ALLOW_UPGRADES=1 allows it)"
    say "with ${holds[*]}: no installed package is upgraded"
  fi
  if [ "${DRY:-0}" = 1 ]; then
    say "would run: apt-get install --no-install-recommends $* ${holds[*]}"
    say "apt's plan: $(grep -c . <<<"$plan") new packages, 0 upgrades"
    return 0
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" "${holds[@]}"
  # Naming a package marks it manual: those that were automatic, or are only dependencies, go back.
  [ ${#autos[@]} -eq 0 ] || apt-mark auto "${autos[@]}" >/dev/null
}

# --- main ----------------------------------------------------------------------------------------

main() {
  local mode=${1:-test} plan=0
  if [ "$mode" = plan ]; then plan=1; mode=${2:-test}; fi
  case $mode in demo|test) ;; *) die "usage: testing/setup.sh [demo|test|plan [demo|test]]";; esac

  local g gmode why pkgs p miss need=()
  say "mode '$mode': package groups (why | packages | missing)"
  for g in "${GROUPS_[@]}"; do
    IFS='|' read -r gmode why pkgs <<<"$g"
    [ "$mode" = test ] || [ "$gmode" = demo ] || continue
    miss=()
    for p in $pkgs; do installed "$p" || miss+=("$p"); done
    printf '  %-5s %s\n        %s | missing: %s\n' "$gmode" "$why" "$pkgs" "${miss[*]:-none}" >&2
    need+=("${miss[@]}")
  done
  [ "$mode" = test ] && say "Python venv $ROOT/.venv with $(grep -v '^#' "$ROOT/testing/requirements.txt" | tr '\n' ' ')(layer checks, kernel matrix)"
  if [ $plan = 1 ]; then
    say "plan only: would install ${need[*]:-nothing}"
    # apt's own plan for them, with the packages kept at their versions (apt's lists as they are;
    # linux-source-5.10 needs the bullseye source, which plan does not add).
    [ ${#need[@]} -eq 0 ] || DRY=1 apt_install "${need[@]}"
    return 0
  fi

  if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "need root to install: ${need[*]}"
    say "installing ${need[*]} (--no-install-recommends, no upgrades of installed packages)"
    # policy-rc.d keeps postinst scripts from starting NetworkManager/mptcpd on the host.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    case " ${need[*]} " in
      *" linux-source-5.10 "*) ensure_bullseye ;;
      *) drop_duplicate_bullseye ;;
    esac
    apt-get update -q
    apt_install "${need[@]}"
  else
    drop_duplicate_bullseye
  fi

  if [ "$mode" = test ]; then
    # Python tools for layer checks (oelint-adv) and the kernel matrix (virtme-ng) in a project venv.
    local venv=$ROOT/.venv
    if [ ! -x "$venv/bin/oelint-adv" ] || [ ! -x "$venv/bin/vng" ]; then
      say "creating/completing $venv from testing/requirements.txt"
      [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/testing/requirements.txt"
    fi
  fi

  if ! command -v cargo >/dev/null; then
    local why="install Rust >= 1.75 (for example with rustup); Debian 12's own rustc is older"
    [ "$mode" = test ] && die "cargo not found: $why"
    say "warning: cargo not found: the demo builds mptcp-agent unless target/release has it; $why"
  fi
  say "ok ($mode)"
}

# Sourced by the tests for its functions; run otherwise.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
