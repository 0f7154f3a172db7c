# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-agent built with meta-rust-bin's prebuilt Rust: the way to build it on kirkstone.
# Preferred over recipes-connectivity/mptcp-agent/mptcp-agent_0.1.0.bb whenever meta-rust-bin is in
# the build; to use OE-core's Rust instead, BBMASK this directory (docs/yocto.md).
require recipes-connectivity/mptcp-agent/mptcp-agent.inc
require mptcp-cargo-bin.inc

DEFAULT_PREFERENCE = "1"

SKIP_RECIPE[mptcp-agent] = "${@mptcp_source_error(d)}"
