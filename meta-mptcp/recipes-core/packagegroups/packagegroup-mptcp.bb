# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "Multipath TCP on the device: mptcp-agent and the tools to inspect MPTCP"
DESCRIPTION = "Install with IMAGE_INSTALL:append = \" packagegroup-mptcp\" and DISTRO_FEATURES:append = \" mptcp\" \
(the latter gives a 5.10 kernel the MPTCP backport)."

inherit packagegroup features_check

# Same conditions as mptcp-agent, so that world builds skip both together.
REQUIRED_DISTRO_FEATURES = "systemd"
require recipes-connectivity/mptcp-agent/mptcp-rust.inc

RDEPENDS:${PN} = " \
    mptcp-agent \
    iproute2-ip \
"
