// SPDX-License-Identifier: MIT OR Apache-2.0
//! rtnetlink wire format: the numbers of the uapi headers the agent uses (linux/rtnetlink.h,
//! if_link.h, if_addr.h, fib_rules.h, neighbour.h), fixed-header reads and attributes.

use std::net::IpAddr;

use netlink_packet_core::NLA_TYPE_MASK;

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
pub const AF_INET: u8 = 2;
pub const AF_BRIDGE: u8 = 7;
pub const AF_INET6: u8 = 10;

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

/// A kernel message the agent cannot read. Only the fields the agent uses are checked;
/// attributes it does not use are skipped unread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: fixed header truncated ({len} of {need} bytes)")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what}: attribute {kind} has a bad length ({len} bytes)")]
    BadLength {
        what: &'static str,
        kind: u16,
        len: usize,
    },
    #[error("{what}: attribute {kind} is not UTF-8")]
    NotUtf8 { what: &'static str, kind: u16 },
    /// The attribute stream itself is broken (an attribute longer than what is left, or
    /// shorter than its own header).
    #[error("{what}: broken attribute list at byte {offset}")]
    BadAttributes { what: &'static str, offset: usize },
}

/// One attribute: its type (without the NESTED / NET_BYTEORDER bits) and value.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub kind: u16,
    pub value: &'a [u8],
    what: &'static str,
}

impl<'a> Attr<'a> {
    fn bad_length(&self) -> DecodeError {
        DecodeError::BadLength {
            what: self.what,
            kind: self.kind,
            len: self.value.len(),
        }
    }

    pub fn u8(&self) -> Result<u8, DecodeError> {
        match self.value {
            [b] => Ok(*b),
            _ => Err(self.bad_length()),
        }
    }

    pub fn u32(&self) -> Result<u32, DecodeError> {
        <[u8; 4]>::try_from(self.value)
            .map(u32::from_ne_bytes)
            .map_err(|_| self.bad_length())
    }

    /// An address whose family its length tells (4 or 16 bytes).
    pub fn ip(&self) -> Result<IpAddr, DecodeError> {
        ip_of_len(self.value).ok_or_else(|| self.bad_length())
    }

    /// An address of the message's family: AF_INET needs 4 bytes, AF_INET6 16.
    pub fn ip_of_family(&self, family: u8) -> Result<IpAddr, DecodeError> {
        match (family, self.value.len()) {
            (AF_INET, 4) | (AF_INET6, 16) => self.ip(),
            _ => Err(self.bad_length()),
        }
    }

    /// A string; one trailing NUL (the kernel always sends it) is not part of it.
    pub fn string(&self) -> Result<String, DecodeError> {
        let v = self.value.strip_suffix(&[0]).unwrap_or(self.value);
        String::from_utf8(v.to_vec()).map_err(|_| DecodeError::NotUtf8 {
            what: self.what,
            kind: self.kind,
        })
    }

    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value, self.what)
    }
}

pub fn ip_of_len(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
    }
}

/// Iterator over an attribute list; a broken list ends in one error.
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Attrs { buf, pos: 0, what }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        let len = if rest.len() >= 4 {
            usize::from(u16_at(rest, 0))
        } else {
            0
        };
        if len < 4 || len > rest.len() {
            let offset = self.pos;
            self.pos = self.buf.len();
            return Some(Err(DecodeError::BadAttributes {
                what: self.what,
                offset,
            }));
        }
        self.pos += (len + 3) & !3;
        Some(Ok(Attr {
            kind: u16_at(rest, 2) & NLA_TYPE_MASK,
            value: &rest[4..len],
            what: self.what,
        }))
    }
}

/// The fixed header at the start of `payload`, or a [`DecodeError::Truncated`].
pub fn header<'a>(
    payload: &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<(&'a [u8], Attrs<'a>), DecodeError> {
    if payload.len() < len {
        return Err(DecodeError::Truncated {
            what,
            len: payload.len(),
            need: len,
        });
    }
    let (h, rest) = payload.split_at(len);
    Ok((h, Attrs::new(rest, what)))
}

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Builds an attribute list the way netlink-packet-route emits one: native-endian
/// header, the value, zero padding to 4 bytes.
#[derive(Debug, Default)]
pub struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    /// A writer whose buffer starts with a fixed header.
    pub fn with_header(header: &[u8]) -> Self {
        AttrWriter {
            buf: header.to_vec(),
        }
    }

    pub fn bytes(&mut self, kind: u16, value: &[u8]) {
        // Values here are addresses and integers; a u16 length always fits.
        let len = (4 + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        let padded = (self.buf.len() + 3) & !3;
        self.buf.resize(padded, 0);
    }

    pub fn u8(&mut self, kind: u16, v: u8) {
        self.bytes(kind, &[v]);
    }

    pub fn u32(&mut self, kind: u16, v: u32) {
        self.bytes(kind, &v.to_ne_bytes());
    }

    pub fn ip(&mut self, kind: u16, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => self.bytes(kind, &v4.octets()),
            IpAddr::V6(v6) => self.bytes(kind, &v6.octets()),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
