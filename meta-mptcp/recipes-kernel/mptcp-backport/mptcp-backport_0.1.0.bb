# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-backport(-native) built by OE-core's Rust; see mptcp-agent_0.1.0.bb for kirkstone.
require mptcp-backport.inc

inherit cargo

SKIP_RECIPE[mptcp-backport] = "${@mptcp_source_error(d) or mptcp_oe_rust_skip(d)}"
SKIP_RECIPE[mptcp-backport-native] = "${@mptcp_source_error(d) or mptcp_oe_rust_skip(d)}"
