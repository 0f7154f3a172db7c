# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-backport(-native) built by OE-core's Rust; see mptcp-agent_git.bb for kirkstone.
require mptcp-backport.inc

inherit cargo

SKIP_RECIPE[mptcp-backport] = "${@mptcp_rust_too_old(d)}"
SKIP_RECIPE[mptcp-backport-native] = "${@mptcp_rust_too_old(d)}"
