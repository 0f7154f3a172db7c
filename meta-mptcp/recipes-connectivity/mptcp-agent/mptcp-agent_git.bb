# SPDX-License-Identifier: MIT OR Apache-2.0
SUMMARY = "MPTCP endpoint agent for devices with several uplinks"
DESCRIPTION = "mptcp-agent keeps the kernel's MPTCP endpoints, limits, sysctls and policy routes \
in step with the uplinks it follows through NetworkManager (D-Bus) and rtnetlink. It serves \
io.github.meta_mptcp.Agent1 on the system bus and reads /etc/mptcp-agent/agent.toml."
SECTION = "net"

require mptcp-common.inc

CARGO_SRC_DIR = "agent/mptcp-agent"

# cargo-update-recipe-crates (bitbake -c update_crates) exists from OE-core 4.1 (langdale) on;
# tools/gen-crates-inc.py writes the same .inc on any release.
inherit ${@'cargo-update-recipe-crates' if bb.utils.which(d.getVar('BBPATH'), 'classes-recipe/cargo-update-recipe-crates.bbclass') else ''}
inherit features_check systemd useradd

REQUIRED_DISTRO_FEATURES = "systemd"

# NetworkManager integration: PACKAGECONFIG[networkmanager] in
# dynamic-layers/networking-layer (only parsed when meta-networking is in the build).
PACKAGECONFIG ??= ""

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --user-group --no-create-home --home-dir ${localstatedir}/lib/mptcp-agent \
                       --shell ${base_sbindir}/nologin mptcp-agent"
# Members of mptcp-admin may call the agent's methods (conf/dbus/io.github.meta_mptcp.Agent1.conf).
GROUPADD_PARAM:${PN} = "--system mptcp-admin"

SYSTEMD_SERVICE:${PN} = "mptcp-agent.service"

# Unit, bus policy and default config come from the same commit as the binary (conf/ in the repository).
do_install:append() {
	install -D -m 0644 ${S}/conf/systemd/mptcp-agent.service ${D}${systemd_system_unitdir}/mptcp-agent.service
	install -D -m 0644 ${S}/conf/dbus/io.github.meta_mptcp.Agent1.conf \
		${D}${datadir}/dbus-1/system.d/io.github.meta_mptcp.Agent1.conf
	install -D -m 0644 ${S}/conf/agent.toml ${D}${sysconfdir}/mptcp-agent/agent.toml
}

FILES:${PN} += "${datadir}/dbus-1/system.d/io.github.meta_mptcp.Agent1.conf"
CONFFILES:${PN} = "${sysconfdir}/mptcp-agent/agent.toml"

RDEPENDS:${PN} += "dbus"
