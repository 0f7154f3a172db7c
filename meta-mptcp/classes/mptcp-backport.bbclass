# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Inherit from a kernel recipe or bbappend to give it the Linux 5.15 MPTCP stack:
#
#     inherit mptcp-backport
#
# This class is only a gate. Unless DISTRO_FEATURES contains "mptcp" it inherits nothing,
# so the kernel recipe parses exactly as without it (tools/layers proves that in CI).
# With the feature on, mptcp-backport-enabled.bbclass does the work: on a 5.10 kernel it
# applies the backport series and our fixups; on any kernel it adds the MPTCP config
# fragment and checks after do_configure that the options reached .config.
# Variables: docs/yocto-variables.md.

inherit ${@bb.utils.contains('DISTRO_FEATURES', 'mptcp', 'mptcp-backport-enabled', '', d)}
