# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Multipath TCP on a NetworkManager device"
DESCRIPTION = "packagegroup-mptcp plus NetworkManager, and the conf.d snippet that \
leaves the MPTCP endpoints to mptcp-agent (NetworkManager 1.40 and newer manage \
endpoints themselves otherwise)."
# A packagegroup has no sources: its own metadata licence, nothing from the agent recipe.
LICENSE = "MIT"

inherit packagegroup

require recipes-connectivity/mptcp-agent/mptcp-rust.inc

RDEPENDS:${PN} = "\
    mptcp-agent-networkmanager \
    networkmanager \
    packagegroup-mptcp \
"

SKIP_RECIPE[packagegroup-mptcp-networkmanager] = "${@mptcp_rust_skip(d)}"
