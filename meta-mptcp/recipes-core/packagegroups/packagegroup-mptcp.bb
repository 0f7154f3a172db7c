# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Multipath TCP on the device: mptcp-agent and ip(8) to inspect it"
DESCRIPTION = "mptcp-agent with its unit or init script, bus policy and configuration, \
and ip(8) from iproute2 to inspect MPTCP endpoints. Add mptcp to DISTRO_FEATURES as well \
to give a 5.10 kernel the MPTCP backport."
# A packagegroup has no sources: its own metadata licence, nothing from the agent recipe.
LICENSE = "MIT"

inherit packagegroup

require recipes-connectivity/mptcp-agent/mptcp-rust.inc

RDEPENDS:${PN} = "\
    iproute2-ip \
    mptcp-agent \
"

# Skipped together with the agent (a world build then skips both).
SKIP_RECIPE[packagegroup-mptcp] = "${@mptcp_rust_skip(d)}"
