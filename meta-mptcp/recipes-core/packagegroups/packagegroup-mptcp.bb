# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Multipath TCP on the device: mptcp-agent and ip(8) to inspect it"
DESCRIPTION = "mptcp-agent with its unit, bus policy and configuration, and ip(8) \
from iproute2 to inspect MPTCP endpoints. Add mptcp to DISTRO_FEATURES as well to \
give a 5.10 kernel the MPTCP backport."

inherit packagegroup features_check

# Same conditions as mptcp-agent, so that world builds skip both together.
REQUIRED_DISTRO_FEATURES = "systemd"

require recipes-connectivity/mptcp-agent/mptcp-common.inc

RDEPENDS:${PN} = "\
    iproute2-ip \
    mptcp-agent \
"

SKIP_RECIPE[packagegroup-mptcp] = "${@'' if 'rust-bin-layer' in d.getVar('BBFILE_COLLECTIONS').split() else mptcp_rust_too_old(d)}"
