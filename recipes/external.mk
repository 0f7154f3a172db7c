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
