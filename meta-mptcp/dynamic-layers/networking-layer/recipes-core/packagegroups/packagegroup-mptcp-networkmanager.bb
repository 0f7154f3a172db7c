# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Multipath TCP on a NetworkManager device"
DESCRIPTION = "packagegroup-mptcp plus NetworkManager, and the conf.d snippet that \
leaves the MPTCP endpoints to mptcp-agent (NetworkManager 1.40 and newer manage \
endpoints themselves otherwise)."

inherit packagegroup features_check

REQUIRED_DISTRO_FEATURES = "systemd"

require recipes-connectivity/mptcp-agent/mptcp-common.inc

RDEPENDS:${PN} = "\
    mptcp-agent-networkmanager \
    networkmanager \
    packagegroup-mptcp \
"

SKIP_RECIPE[packagegroup-mptcp-networkmanager] = "${@'' if 'rust-bin-layer' in d.getVar('BBFILE_COLLECTIONS').split() else mptcp_rust_too_old(d)}"
