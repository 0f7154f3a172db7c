# SPDX-License-Identifier: MIT OR Apache-2.0
include $(sort $(wildcard $(BR2_EXTERNAL_MPTCP_PATH)/package/*/*.mk))

# The kernel side needs no package: BR2_LINUX_KERNEL_PATCH points at the exported
# backport series and BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES at kernel-patches/config.
# This hook checks that the fragments' options reached the final .config.
ifeq ($(BR2_MPTCP_KERNEL_CHECK),y)
define MPTCP_LINUX_CHECK_CONFIG
	$(BR2_EXTERNAL_MPTCP_PATH)/scripts/check-kernel-config $(LINUX_DIR)/.config \
		$(call qstrip,$(BR2_MPTCP_KERNEL_CHECK_FRAGMENTS))
endef
LINUX_POST_CONFIGURE_HOOKS += MPTCP_LINUX_CHECK_CONFIG
endif

# Transplant mode: the MPTCP files of a 5.15.y tarball, downloaded with the kernel (its hash
# in the kernel's .hash file when BR2_DOWNLOAD_FORCE_CHECK_HASHES is set) and checked against
# BR2_MPTCP_TRANSPLANT_SHA256 by the tool, copied into the patched 5.10 tree with our core
# patches and fixups, after the kernel's own patches.
ifeq ($(BR2_MPTCP_TRANSPLANT),y)
MPTCP_TRANSPLANT_URL = $(call qstrip,$(BR2_MPTCP_TRANSPLANT_URL))
LINUX_EXTRA_DOWNLOADS += $(MPTCP_TRANSPLANT_URL)
LINUX_DEPENDENCIES += host-mptcp-backport
define MPTCP_LINUX_TRANSPLANT
	$(HOST_DIR)/bin/mptcp-backport \
		--manifest $(HOST_DIR)/share/mptcp-backport/series.toml \
		transplant --tree $(LINUX_DIR) \
		--source $(LINUX_DL_DIR)/$(notdir $(MPTCP_TRANSPLANT_URL)) \
		--sha256 $(call qstrip,$(BR2_MPTCP_TRANSPLANT_SHA256))
endef
LINUX_POST_PATCH_HOOKS += MPTCP_LINUX_TRANSPLANT
endif
