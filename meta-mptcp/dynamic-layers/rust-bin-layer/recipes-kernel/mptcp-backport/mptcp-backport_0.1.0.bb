# SPDX-License-Identifier: MIT OR Apache-2.0
# mptcp-backport(-native) built with meta-rust-bin's prebuilt Rust; see the mptcp-agent variant.
require recipes-kernel/mptcp-backport/mptcp-backport.inc
require dynamic-layers/rust-bin-layer/recipes-connectivity/mptcp-agent/mptcp-cargo-bin.inc

DEFAULT_PREFERENCE = "1"

SKIP_RECIPE[mptcp-backport] = "${@mptcp_source_error(d)}"
SKIP_RECIPE[mptcp-backport-native] = "${@mptcp_source_error(d)}"
