################################################################################
#
# mptcp-agent
#
################################################################################

# SPDX-License-Identifier: MIT OR Apache-2.0
# Built from the checkout that holds this BR2_EXTERNAL tree: the agent of the same commit as
# the tree (uncommitted changes included). The crates come from host-mptcp-agent-crates,
# generated from the workspace's Cargo.lock with every crate's sha256.
MPTCP_AGENT_VERSION = 0.1.0
MPTCP_AGENT_SITE = $(BR2_EXTERNAL_MPTCP_PATH)/..
MPTCP_AGENT_SITE_METHOD = local
# The checkout's build outputs and tool environments are no part of the source.
MPTCP_AGENT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /.venv --exclude /recipes --exclude /meta-mptcp
MPTCP_AGENT_LICENSE = MIT or Apache-2.0, $(HOST_MPTCP_AGENT_CRATES_LICENSE)
MPTCP_AGENT_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE
MPTCP_AGENT_DEPENDENCIES = host-rustc host-mptcp-agent-crates

# Cargo takes every crate from the vendored directory, offline.
define MPTCP_AGENT_CONFIGURE_CMDS
	printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' \
		'[source.vendored]' 'directory = "$(HOST_MPTCP_AGENT_CRATES_DIR)/vendor"' \
		>> $(@D)/.cargo/config.toml
endef

# The build script also writes the man pages and bash/zsh/fish completions, on the host, from
# the CLI definition, into MPTCP_AGENT_GEN_DIR.
define MPTCP_AGENT_BUILD_CMDS
	cd $(@D) && \
	$(TARGET_MAKE_ENV) $(TARGET_CONFIGURE_OPTS) $(PKG_CARGO_ENV) \
		MPTCP_AGENT_GEN_DIR=$(@D)/mptcp-agent-gen \
		cargo build --offline --locked --release -p mptcp-agent
endef

# Unit or init script, bus policy and default config come from the same tree as the binary.
define MPTCP_AGENT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/$(RUSTC_TARGET_NAME)/release/mptcp-agent \
		$(TARGET_DIR)/usr/bin/mptcp-agent
	$(INSTALL) -D -m 0644 $(@D)/conf/agent.toml \
		$(TARGET_DIR)/etc/mptcp-agent/agent.toml
	$(INSTALL) -D -m 0644 $(@D)/conf/dbus/io.github.meta_mptcp.Agent1.conf \
		$(TARGET_DIR)/usr/share/dbus-1/system.d/io.github.meta_mptcp.Agent1.conf
	$(INSTALL) -d $(TARGET_DIR)/usr/share/man/man1
	$(INSTALL) -m 0644 $(@D)/mptcp-agent-gen/share/man/man1/*.1 \
		$(TARGET_DIR)/usr/share/man/man1/
	$(INSTALL) -D -m 0644 $(@D)/mptcp-agent-gen/share/bash-completion/completions/mptcp-agent \
		$(TARGET_DIR)/usr/share/bash-completion/completions/mptcp-agent
	$(INSTALL) -D -m 0644 $(@D)/mptcp-agent-gen/share/zsh/site-functions/_mptcp-agent \
		$(TARGET_DIR)/usr/share/zsh/site-functions/_mptcp-agent
	$(INSTALL) -D -m 0644 $(@D)/mptcp-agent-gen/share/fish/vendor_completions.d/mptcp-agent.fish \
		$(TARGET_DIR)/usr/share/fish/vendor_completions.d/mptcp-agent.fish
endef

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

define MPTCP_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(MPTCP_AGENT_PKGDIR)/S95mptcp-agent \
		$(TARGET_DIR)/etc/init.d/S95mptcp-agent
endef

# The bus policy names the agent's user and the optional admin group.
define MPTCP_AGENT_USERS
	mptcp-agent -1 mptcp-agent -1 * /var/lib/mptcp-agent - - MPTCP endpoint agent
	- - mptcp-admin -1 * - - - May call the MPTCP agent's methods
endef

$(eval $(generic-package))
