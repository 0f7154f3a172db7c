// SPDX-License-Identifier: MIT OR Apache-2.0
//! Numbers from the kernel uapi headers `linux/mptcp.h` and `linux/mptcp_pm.h`
//! (the latter generated from `Documentation/netlink/specs/mptcp_pm.yaml` since 6.7).
//! Written out here because the headers differ per kernel and we must speak to all of them.

pub const MPTCP_PM_NAME: &str = "mptcp_pm";
pub const MPTCP_PM_EV_GRP_NAME: &str = "mptcp_pm_events";
pub const MPTCP_PM_VER: u8 = 1;

// Top-level request attributes (MPTCP_PM_ATTR_*).
pub const MPTCP_PM_ATTR_ADDR: u16 = 1;
pub const MPTCP_PM_ATTR_RCV_ADD_ADDRS: u16 = 2;
pub const MPTCP_PM_ATTR_SUBFLOWS: u16 = 3;

// Attributes nested in MPTCP_PM_ATTR_ADDR (MPTCP_PM_ADDR_ATTR_*).
pub const MPTCP_PM_ADDR_ATTR_FAMILY: u16 = 1;
pub const MPTCP_PM_ADDR_ATTR_ID: u16 = 2;
pub const MPTCP_PM_ADDR_ATTR_ADDR4: u16 = 3;
pub const MPTCP_PM_ADDR_ATTR_ADDR6: u16 = 4;
pub const MPTCP_PM_ADDR_ATTR_PORT: u16 = 5;
pub const MPTCP_PM_ADDR_ATTR_FLAGS: u16 = 6;
pub const MPTCP_PM_ADDR_ATTR_IF_IDX: u16 = 7;

// Event attributes (enum mptcp_event_attr).
pub const MPTCP_ATTR_TOKEN: u16 = 1;
pub const MPTCP_ATTR_FAMILY: u16 = 2;
pub const MPTCP_ATTR_LOC_ID: u16 = 3;
pub const MPTCP_ATTR_REM_ID: u16 = 4;
pub const MPTCP_ATTR_SADDR4: u16 = 5;
pub const MPTCP_ATTR_SADDR6: u16 = 6;
pub const MPTCP_ATTR_DADDR4: u16 = 7;
pub const MPTCP_ATTR_DADDR6: u16 = 8;
pub const MPTCP_ATTR_SPORT: u16 = 9;
pub const MPTCP_ATTR_DPORT: u16 = 10;
pub const MPTCP_ATTR_BACKUP: u16 = 11;
pub const MPTCP_ATTR_ERROR: u16 = 12;
pub const MPTCP_ATTR_FLAGS: u16 = 13;
pub const MPTCP_ATTR_TIMEOUT: u16 = 14;
pub const MPTCP_ATTR_IF_IDX: u16 = 15;
pub const MPTCP_ATTR_RESET_REASON: u16 = 16;
pub const MPTCP_ATTR_RESET_FLAGS: u16 = 17;
pub const MPTCP_ATTR_SERVER_SIDE: u16 = 18;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

// include/uapi/linux/netlink.h: extended ACK TLVs after an NLMSG_ERROR.
pub const NLM_F_CAPPED: u16 = 0x100;
pub const NLM_F_ACK_TLVS: u16 = 0x200;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSG_HDRLEN: usize = 16;

// include/uapi/linux/genetlink.h: per-op flags in CTRL_ATTR_OP_FLAGS.
pub const GENL_ADMIN_PERM: u32 = 0x01;
pub const GENL_CMD_CAP_DO: u32 = 0x02;
pub const GENL_CMD_CAP_DUMP: u32 = 0x04;
pub const GENL_UNS_ADMIN_PERM: u32 = 0x10;
