# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Plans, exports, applies and verifies the Linux 5.15 MPTCP backport onto 5.10 kernels"
DESCRIPTION = "mptcp-backport, built for the build host. mptcp-backport.bbclass runs it to export \
the backport series from a linux-stable clone at build time (MPTCP_BACKPORT_LINUX_STABLE_SRCREV)."
SECTION = "devel"

require recipes-connectivity/mptcp-agent/mptcp-common.inc

CARGO_SRC_DIR = "kernel-patches/mptcp-backport"

inherit native
