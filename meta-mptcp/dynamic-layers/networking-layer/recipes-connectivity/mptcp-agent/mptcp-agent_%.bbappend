# SPDX-License-Identifier: MIT OR Apache-2.0
# NetworkManager integration, parsed only when meta-networking (which has NetworkManager) is present.
# PACKAGECONFIG:append:pn-mptcp-agent = " networkmanager" makes the agent depend on NetworkManager
# and installs a conf.d snippet that leaves the MPTCP endpoints to the agent
# (conf/networkmanager/90-mptcp-agent.conf). Without it the agent still follows NetworkManager
# when it finds it on the bus, and runs in kernel-only mode when not.
PACKAGECONFIG[networkmanager] = ",,,networkmanager"

do_install:append() {
	if ${@bb.utils.contains('PACKAGECONFIG', 'networkmanager', 'true', 'false', d)}; then
		install -D -m 0644 ${S}/conf/networkmanager/90-mptcp-agent.conf \
			${D}${sysconfdir}/NetworkManager/conf.d/90-mptcp-agent.conf
	fi
}

FILES:${PN} += "${sysconfdir}/NetworkManager/conf.d/90-mptcp-agent.conf"
CONFFILES:${PN} += "${@bb.utils.contains('PACKAGECONFIG', 'networkmanager', '${sysconfdir}/NetworkManager/conf.d/90-mptcp-agent.conf', '', d)}"
