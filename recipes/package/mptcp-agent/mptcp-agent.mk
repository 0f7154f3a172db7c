################################################################################
#
# mptcp-agent
#
################################################################################

# SPDX-License-Identifier: MIT OR Apache-2.0
# The release commit of the meta-mptcp repository, the same as MPTCP_SRCREV in
# meta-mptcp (tools/test.d checks that they agree). For local work use
# MPTCP_AGENT_OVERRIDE_SRCDIR (docs/buildroot.md).
MPTCP_AGENT_VERSION = 159935c6e6b957a8006ed7f0af9f644c266aaaf8
MPTCP_AGENT_SITE = https://github.com/meta-mptcp/meta-mptcp.git
MPTCP_AGENT_SITE_METHOD = git
# One Cargo workspace: build the agent's crate with the workspace's Cargo.lock.
MPTCP_AGENT_SUBDIR = agent/mptcp-agent
MPTCP_AGENT_LICENSE = MIT or Apache-2.0
MPTCP_AGENT_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE

# Unit, bus policy and default config come from the same commit as the binary (conf/).
define MPTCP_AGENT_INSTALL_CONF
	$(INSTALL) -D -m 0644 $(@D)/conf/agent.toml \
		$(TARGET_DIR)/etc/mptcp-agent/agent.toml
	$(INSTALL) -D -m 0644 $(@D)/conf/dbus/io.github.meta_mptcp.Agent1.conf \
		$(TARGET_DIR)/usr/share/dbus-1/system.d/io.github.meta_mptcp.Agent1.conf
endef
MPTCP_AGENT_POST_INSTALL_TARGET_HOOKS += MPTCP_AGENT_INSTALL_CONF

ifeq ($(BR2_PACKAGE_NETWORK_MANAGER),y)
define MPTCP_AGENT_INSTALL_NM_CONF
	$(INSTALL) -D -m 0644 $(@D)/conf/networkmanager/90-mptcp-agent.conf \
		$(TARGET_DIR)/etc/NetworkManager/conf.d/90-mptcp-agent.conf
endef
MPTCP_AGENT_POST_INSTALL_TARGET_HOOKS += MPTCP_AGENT_INSTALL_NM_CONF
endif

define MPTCP_AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/conf/systemd/mptcp-agent.service \
		$(TARGET_DIR)/usr/lib/systemd/system/mptcp-agent.service
endef

# The bus policy names the agent's user and the optional admin group.
define MPTCP_AGENT_USERS
	mptcp-agent -1 mptcp-agent -1 * /var/lib/mptcp-agent - - MPTCP endpoint agent
	- - mptcp-admin -1 * - - - May call the MPTCP agent's methods
endef

$(eval $(cargo-package))
