# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-agent built with meta-rust-bin's prebuilt Rust: the way to build it on kirkstone.
# Preferred over mptcp-agent_git.bb whenever meta-rust-bin is in the build; to use OE-core's
# Rust instead, BBMASK this directory (docs/yocto.md).
require recipes-connectivity/mptcp-agent/mptcp-agent.inc
require mptcp-cargo-bin.inc

DEFAULT_PREFERENCE = "1"
