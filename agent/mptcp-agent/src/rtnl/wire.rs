// SPDX-License-Identifier: MIT OR Apache-2.0
//! rtnetlink wire format: the numbers of the uapi headers the agent uses (linux/rtnetlink.h,
//! if_link.h, if_addr.h, fib_rules.h, neighbour.h); fixed-header reads and attributes come
//! from netlink-attr.

// Message types (RTM_*).
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_GETNEIGH: u16 = 30;
pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const RTM_GETRULE: u16 = 34;

pub const AF_UNSPEC: u8 = 0;
pub const AF_BRIDGE: u8 = 7;

// struct ifinfomsg: family, pad, type (u16), index (i32), flags, change (u32).
pub const IFINFOMSG_LEN: usize = 16;
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_POINTOPOINT: u32 = 0x10;
pub const IFF_LOWER_UP: u32 = 0x1_0000;
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_INFO_KIND: u16 = 1;
// ARPHRD_* link layer types.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_PPP: u16 = 512;
pub const ARPHRD_RAWIP: u16 = 519;
pub const ARPHRD_LOOPBACK: u16 = 772;
pub const ARPHRD_NONE: u16 = 0xfffe;

// struct ifaddrmsg: family, prefixlen, flags, scope (u8), index (u32).
pub const IFADDRMSG_LEN: usize = 8;
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_FLAGS: u16 = 8;

// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type (u8), flags (u32).
pub const RTMSG_LEN: usize = 12;
pub const RTN_UNICAST: u8 = 1;
pub const RT_TABLE_UNSPEC: u8 = 0;
pub const RTA_DST: u16 = 1;
pub const RTA_OIF: u16 = 4;
pub const RTA_GATEWAY: u16 = 5;
pub const RTA_PRIORITY: u16 = 6;
pub const RTA_PREFSRC: u16 = 7;
pub const RTA_MULTIPATH: u16 = 9;
pub const RTA_TABLE: u16 = 15;
pub const RTA_VIA: u16 = 18;
// struct rtnexthop: len (u16), flags, hops (u8), ifindex (i32), then attributes.
pub const RTNEXTHOP_LEN: usize = 8;

// struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action (u8), flags (u32).
pub const FIB_RULE_HDR_LEN: usize = 12;
pub const FR_ACT_TO_TBL: u8 = 1;
pub const FRA_SRC: u16 = 2;
pub const FRA_PRIORITY: u16 = 6;
pub const FRA_TABLE: u16 = 15;
pub const FRA_PROTOCOL: u16 = 21;

// struct ndmsg: family, pad1 (u8), pad2 (u16), ifindex (i32), state (u16), flags, type (u8).
pub const NDMSG_LEN: usize = 12;
pub const NDA_DST: u16 = 1;
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_FAILED: u16 = 0x20;

// Attribute reading and writing, shared with mptcp-genl.
pub use netlink_attr::{
    header, ip_of_len, u16_at, u32_at, Attr, AttrWriter, Attrs, DecodeError, AF_INET, AF_INET6,
};
