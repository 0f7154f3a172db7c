# SPDX-License-Identifier: MIT OR Apache-2.0
# linux-yocto 5.10 (kirkstone) gets the Linux 5.15 MPTCP stack when DISTRO_FEATURES has "mptcp".
# Without it this append changes nothing: every statement of mptcp_backport.bbclass is bound to the "mptcp" override.
# A vendor 5.10 kernel recipe takes the same one line in its own bbappend (docs/yocto.md).
inherit mptcp_backport
