################################################################################
#
# mptcp-backport
#
################################################################################

# SPDX-License-Identifier: MIT OR Apache-2.0
# The backport tool for the build host, from the checkout that holds this tree, with its
# manifest and our kernel patches in share/mptcp-backport (where the tool looks). Used by the
# kernel's transplant hook (external.mk, BR2_MPTCP_TRANSPLANT).
HOST_MPTCP_BACKPORT_VERSION = 0.1.0
HOST_MPTCP_BACKPORT_SITE = $(BR2_EXTERNAL_MPTCP_PATH)/..
HOST_MPTCP_BACKPORT_SITE_METHOD = local
HOST_MPTCP_BACKPORT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /.venv --exclude /recipes --exclude /meta-mptcp
HOST_MPTCP_BACKPORT_LICENSE = MIT or Apache-2.0, $(HOST_MPTCP_AGENT_CRATES_LICENSE)
HOST_MPTCP_BACKPORT_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE
HOST_MPTCP_BACKPORT_DEPENDENCIES = host-rustc host-mptcp-agent-crates

define HOST_MPTCP_BACKPORT_CONFIGURE_CMDS
	printf '%s\n' '[source.crates-io]' 'replace-with = "vendored"' \
		'[source.vendored]' 'directory = "$(HOST_MPTCP_AGENT_CRATES_DIR)/vendor"' \
		>> $(@D)/.cargo/config.toml
endef

define HOST_MPTCP_BACKPORT_BUILD_CMDS
	cd $(@D) && \
	$(HOST_MAKE_ENV) $(HOST_CONFIGURE_OPTS) $(HOST_PKG_CARGO_ENV) \
		cargo build --offline --locked --release -p mptcp-backport
endef

define HOST_MPTCP_BACKPORT_INSTALL_CMDS
	$(INSTALL) -D -m 0755 $(@D)/target/release/mptcp-backport $(HOST_DIR)/bin/mptcp-backport
	mkdir -p $(HOST_DIR)/share/mptcp-backport
	cd $(@D)/kernel-patches && for part in series.toml core fixups config; do \
		if [ -e $$part ]; then cp -R $$part $(HOST_DIR)/share/mptcp-backport/ || exit 1; fi; \
	done
endef

$(eval $(host-generic-package))
