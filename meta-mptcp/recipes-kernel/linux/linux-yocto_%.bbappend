# SPDX-License-Identifier: MIT OR Apache-2.0
# linux-yocto gets the MPTCP kernel side when DISTRO_FEATURES has "mptcp": on 5.10 (kirkstone,
# PREFERRED_VERSION_linux-yocto = "5.10%") the Linux 5.15 MPTCP backport, on newer versions
# (kirkstone 5.15, scarthgap 6.6) only the config fragment and its check.
# A "_5.10" name would dangle on scarthgap, which has no linux-yocto 5.10 (a parse error).
# Without the feature this append changes nothing: every statement of mptcp_backport.bbclass
# is bound to the "mptcp" override. A vendor kernel recipe takes the same line (docs/yocto.md).
inherit mptcp_backport
