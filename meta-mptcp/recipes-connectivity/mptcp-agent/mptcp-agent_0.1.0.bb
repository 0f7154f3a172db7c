# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-agent built by OE-core's Rust (scarthgap: 1.75). On kirkstone (Rust 1.59) this recipe
# skips itself; the meta-rust-bin variant in dynamic-layers/rust-bin-layer builds it instead.
require mptcp-agent.inc

inherit cargo

SKIP_RECIPE[mptcp-agent] = "${@mptcp_source_error(d) or mptcp_oe_rust_skip(d)}"
