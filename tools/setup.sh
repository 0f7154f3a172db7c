#!/bin/bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# One-time (idempotent) set-up of a Debian 12 machine for meta-mptcp's demo and tests.
# Installs Debian packages and a Python venv (.venv) with the PyPI tools the checks use.
# Run as root. Safe to run again: it only installs what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PKGS=(
  # lab: real NetworkManager and mptcpd in network namespaces, traffic, capture
  network-manager mptcpd mptcpd-plugins mptcpize iperf3 iputils-ping nftables tcpdump
  iproute2 dbus-daemon dbus-bin procps util-linux bc
  # builds and checks
  git python3-venv python3-pip pkg-config
  # tools/test.d/30-systemd-unit.sh: systemd-analyze security/verify of the shipped unit
  systemd
  # kernel-patches: `mptcp-backport verify` runs the 5.10 tree's kconfig and compiles net/mptcp/,
  # `apply` uses GNU patch on plain trees
  make gcc libc6-dev flex bison libelf-dev libssl-dev patch xz-utils
)

# Debian bullseye (5.10 LTS) sources, pinned low so only packages we name come from it:
# linux-source-5.10 is the real 5.10 tree for `mptcp-backport verify` and the 5.10 QEMU guest.
add_bullseye() {
  local list=/etc/apt/sources.list.d/meta-mptcp-bullseye.sources uri
  [ -e "$list" ] && return 0
  # Reuse the Debian mirror this machine already uses.
  uri=$( (grep -rhoE '(URIs:[[:space:]]*|^deb[[:space:]]+)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
          /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true) | grep -oE 'https?://[^[:space:]]+' | head -n1)
  [ -n "$uri" ] || { echo "setup: no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" > "$list"
  printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n' > /etc/apt/preferences.d/meta-mptcp-bullseye
}
PKGS+=(linux-source-5.10)
# kernel-matrix: build kernels (5.10 / 6.1 / a BSP tree) and boot them under QEMU with virtme-ng
PKGS+=(build-essential flex bison bc libelf-dev libssl-dev cpio kmod xz-utils rsync qemu-system-x86 busybox-static ethtool)
# iptables: the 6.1 selftests mptcp_sockopt.sh and mptcp_join.sh skip (or fail) without it
PKGS+=(iptables)

need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: need root to install: ${need[*]}" >&2; exit 1; }
  echo "setup: installing ${need[*]}" >&2
  # policy-rc.d keeps postinst scripts from starting NetworkManager/mptcpd on the host.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  add_bullseye
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Python tools for layer checks (oelint-adv) in a project-local venv.
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/oelint-adv" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tools/requirements.txt"
fi

# kernel-matrix: virtme-ng (vng) joined requirements.txt after the venv may already exist.
if [ ! -x "$VENV/bin/vng" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tools/requirements.txt"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found (install Rust >= 1.75)" >&2; exit 1; }
echo "setup: ok" >&2
