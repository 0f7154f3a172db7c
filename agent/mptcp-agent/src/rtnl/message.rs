// SPDX-License-Identifier: MIT OR Apache-2.0
//! The rtnetlink messages the agent reads (links, addresses, routes, rules, neighbours),
//! with only the fields it uses, and the carrier type netlink-proto moves them in.

use std::net::IpAddr;

use super::wire::*;

/// An rtnetlink message as netlink-proto carries it: RTM_* type and payload bytes. It never
/// fails to deserialize; the agent parses it with [`Message::parse`] and sees a malformed
/// message as a [`DecodeError`].
pub type RtnlRaw = netlink_attr::RawMessage;

/// A parsed rtnetlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    NewLink(LinkMsg),
    DelLink(LinkMsg),
    NewAddress(AddrMsg),
    DelAddress(AddrMsg),
    NewRoute(RouteMsg),
    DelRoute(RouteMsg),
    NewRule(RuleMsg),
    DelRule(RuleMsg),
    NewNeighbour(NeighMsg),
    /// A message type the agent does not read (its payload is not looked at).
    Other(u16),
}

impl Message {
    pub fn parse(kind: u16, payload: &[u8]) -> Result<Message, DecodeError> {
        Ok(match kind {
            RTM_NEWLINK => Message::NewLink(LinkMsg::parse(payload)?),
            RTM_DELLINK => Message::DelLink(LinkMsg::parse(payload)?),
            RTM_NEWADDR => Message::NewAddress(AddrMsg::parse(payload)?),
            RTM_DELADDR => Message::DelAddress(AddrMsg::parse(payload)?),
            RTM_NEWROUTE => Message::NewRoute(RouteMsg::parse(payload)?),
            RTM_DELROUTE => Message::DelRoute(RouteMsg::parse(payload)?),
            RTM_NEWRULE => Message::NewRule(RuleMsg::parse(payload)?),
            RTM_DELRULE => Message::DelRule(RuleMsg::parse(payload)?),
            RTM_NEWNEIGH => Message::NewNeighbour(NeighMsg::parse(payload)?),
            other => Message::Other(other),
        })
    }
}

/// RTM_NEWLINK / RTM_DELLINK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkMsg {
    pub family: u8,
    /// ARPHRD_*.
    pub link_type: u16,
    pub index: u32,
    /// IFF_*.
    pub flags: u32,
    /// IFLA_IFNAME; empty when absent.
    pub name: String,
    /// IFLA_MASTER (0: none).
    pub master: Option<u32>,
    /// IFLA_OPERSTATE (IF_OPER_*).
    pub oper: Option<u8>,
    /// IFLA_INFO_KIND inside IFLA_LINKINFO: "veth", "wireguard", ...
    pub kind: Option<String>,
}

impl LinkMsg {
    pub fn parse(payload: &[u8]) -> Result<LinkMsg, DecodeError> {
        let (h, attrs) = header(payload, IFINFOMSG_LEN, "link message")?;
        let mut m = LinkMsg {
            family: h[0],
            link_type: u16_at(h, 2),
            index: u32_at(h, 4),
            flags: u32_at(h, 8),
            ..LinkMsg::default()
        };
        for a in attrs {
            let a = a?;
            match a.kind {
                IFLA_IFNAME => m.name = a.string()?,
                IFLA_MASTER => m.master = Some(a.u32()?),
                IFLA_OPERSTATE => m.oper = Some(a.u8()?),
                IFLA_LINKINFO => {
                    for i in a.nested() {
                        let i = i?;
                        if i.kind == IFLA_INFO_KIND {
                            m.kind = Some(i.string()?);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(m)
    }
}

/// RTM_NEWADDR / RTM_DELADDR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrMsg {
    pub family: u8,
    pub prefix_len: u8,
    /// ifa_flags (the low 8 bits of IFA_F_*).
    pub flags: u8,
    pub scope: u8,
    pub index: u32,
    /// IFA_ADDRESS: on point-to-point links the peer.
    pub address: Option<IpAddr>,
    /// IFA_LOCAL.
    pub local: Option<IpAddr>,
    /// IFA_FLAGS: all 32 bits.
    pub ext_flags: Option<u32>,
}

impl AddrMsg {
    pub fn parse(payload: &[u8]) -> Result<AddrMsg, DecodeError> {
        let (h, attrs) = header(payload, IFADDRMSG_LEN, "address message")?;
        let mut m = AddrMsg {
            family: h[0],
            prefix_len: h[1],
            flags: h[2],
            scope: h[3],
            index: u32_at(h, 4),
            ..AddrMsg::default()
        };
        for a in attrs {
            let a = a?;
            match a.kind {
                IFA_ADDRESS => m.address = Some(a.ip()?),
                IFA_LOCAL => m.local = Some(a.ip()?),
                IFA_FLAGS => m.ext_flags = Some(a.u32()?),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// RTM_NEWROUTE / RTM_DELROUTE. Attributes are read only for IPv4/IPv6 unicast routes,
/// the only ones the agent uses; later attributes override earlier ones, as in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMsg {
    pub family: u8,
    pub dst_len: u8,
    /// rtm_table: the table when it fits 8 bits.
    pub table: u8,
    pub protocol: u8,
    pub scope: u8,
    /// RTN_*.
    pub kind: u8,
    /// RTA_TABLE.
    pub table_attr: Option<u32>,
    pub dst: Option<IpAddr>,
    /// RTA_GATEWAY, or RTA_VIA (an IPv6 next hop of an IPv4 route).
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub priority: Option<u32>,
    pub prefsrc: Option<IpAddr>,
    /// RTA_MULTIPATH.
    pub hops: Vec<NextHop>,
}

/// One next hop of RTA_MULTIPATH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextHop {
    pub ifindex: u32,
    /// Its own RTA_GATEWAY / RTA_VIA; without one the route's.
    pub gateway: Option<IpAddr>,
}

impl RouteMsg {
    pub fn parse(payload: &[u8]) -> Result<RouteMsg, DecodeError> {
        let (h, attrs) = header(payload, RTMSG_LEN, "route message")?;
        let mut m = RouteMsg {
            family: h[0],
            dst_len: h[1],
            table: h[4],
            protocol: h[5],
            scope: h[6],
            kind: h[7],
            ..RouteMsg::default()
        };
        if !m.is_ip_unicast() {
            return Ok(m);
        }
        for a in attrs {
            let a = a?;
            match a.kind {
                RTA_TABLE => m.table_attr = Some(a.u32()?),
                RTA_DST => m.dst = Some(a.ip_of_family(m.family)?),
                RTA_GATEWAY => m.gateway = Some(a.ip_of_family(m.family)?),
                RTA_VIA => m.gateway = via(&a)?.or(m.gateway),
                RTA_OIF => m.oif = Some(a.u32()?),
                RTA_PRIORITY => m.priority = Some(a.u32()?),
                RTA_PREFSRC => m.prefsrc = Some(a.ip_of_family(m.family)?),
                RTA_MULTIPATH => m.hops = next_hops(a.value, m.family)?,
                _ => {}
            }
        }
        Ok(m)
    }

    pub fn is_ip_unicast(&self) -> bool {
        self.kind == RTN_UNICAST && matches!(self.family, AF_INET | AF_INET6)
    }
}

/// RTA_VIA (struct rtvia: family u16, address): the address when it is IPv4 or IPv6.
fn via(a: &Attr) -> Result<Option<IpAddr>, DecodeError> {
    let bad = || DecodeError::BadLength {
        what: "route message",
        kind: RTA_VIA,
        len: a.value.len(),
    };
    if a.value.len() < 2 {
        return Err(bad());
    }
    let addr = &a.value[2..];
    match (u16_at(a.value, 0), addr.len()) {
        (f, 4) if f == u16::from(AF_INET) => Ok(ip_of_len(addr)),
        (f, 16) if f == u16::from(AF_INET6) => Ok(ip_of_len(addr)),
        (f, _) if f == u16::from(AF_INET) || f == u16::from(AF_INET6) => Err(bad()),
        _ => Ok(None),
    }
}

fn next_hops(mut buf: &[u8], family: u8) -> Result<Vec<NextHop>, DecodeError> {
    let mut hops = Vec::new();
    while !buf.is_empty() {
        let len = if buf.len() >= RTNEXTHOP_LEN {
            usize::from(u16_at(buf, 0))
        } else {
            0
        };
        if len < RTNEXTHOP_LEN || len > buf.len() {
            return Err(DecodeError::BadLength {
                what: "route next hop",
                kind: RTA_MULTIPATH,
                len: buf.len(),
            });
        }
        let mut hop = NextHop {
            ifindex: u32_at(buf, 4),
            gateway: None,
        };
        for a in Attrs::new(&buf[RTNEXTHOP_LEN..len], "route next hop") {
            let a = a?;
            match a.kind {
                RTA_GATEWAY => hop.gateway = Some(a.ip_of_family(family)?),
                RTA_VIA => hop.gateway = via(&a)?.or(hop.gateway),
                _ => {}
            }
        }
        hops.push(hop);
        buf = buf.get((len + 3) & !3..).unwrap_or_default();
    }
    Ok(hops)
}

/// RTM_NEWRULE / RTM_DELRULE. Attributes are read only for IPv4/IPv6 rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleMsg {
    pub family: u8,
    pub src_len: u8,
    pub table: u8,
    /// FRA_TABLE.
    pub table_attr: Option<u32>,
    pub priority: Option<u32>,
    pub src: Option<IpAddr>,
    pub protocol: Option<u8>,
}

impl RuleMsg {
    pub fn parse(payload: &[u8]) -> Result<RuleMsg, DecodeError> {
        let (h, attrs) = header(payload, FIB_RULE_HDR_LEN, "rule message")?;
        let mut m = RuleMsg {
            family: h[0],
            src_len: h[2],
            table: h[4],
            ..RuleMsg::default()
        };
        if !matches!(m.family, AF_INET | AF_INET6) {
            return Ok(m);
        }
        for a in attrs {
            let a = a?;
            match a.kind {
                FRA_TABLE => m.table_attr = Some(a.u32()?),
                FRA_PRIORITY => m.priority = Some(a.u32()?),
                FRA_SRC => m.src = Some(a.ip()?),
                FRA_PROTOCOL => m.protocol = Some(a.u8()?),
                _ => {}
            }
        }
        Ok(m)
    }
}

/// RTM_NEWNEIGH: what it takes to delete the entry again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighMsg {
    pub family: u8,
    pub ifindex: u32,
    /// NUD_*.
    pub state: u16,
    /// NTF_*.
    pub flags: u8,
    pub kind: u8,
    /// NDA_DST as sent.
    pub dst: Option<Vec<u8>>,
}

impl NeighMsg {
    pub fn parse(payload: &[u8]) -> Result<NeighMsg, DecodeError> {
        let (h, attrs) = header(payload, NDMSG_LEN, "neighbour message")?;
        let mut m = NeighMsg {
            family: h[0],
            ifindex: u32_at(h, 4),
            state: u16_at(h, 8),
            flags: h[10],
            kind: h[11],
            dst: None,
        };
        for a in attrs {
            let a = a?;
            if a.kind == NDA_DST {
                m.dst = Some(a.value.to_vec());
            }
        }
        Ok(m)
    }

    /// RTM_DELNEIGH for this entry: its header and destination.
    pub fn delete_request(&self) -> RtnlRaw {
        let mut h = [0u8; NDMSG_LEN];
        h[0] = self.family;
        h[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
        h[8..10].copy_from_slice(&self.state.to_ne_bytes());
        h[10] = self.flags;
        h[11] = self.kind;
        let mut w = AttrWriter::with_header(&h);
        if let Some(dst) = &self.dst {
            w.bytes(NDA_DST, dst);
        }
        RtnlRaw {
            kind: RTM_DELNEIGH,
            payload: w.finish(),
        }
    }
}

/// A dump request: the family's fixed header, all zero but the address family.
pub fn dump_request(kind: u16, family: u8) -> RtnlRaw {
    let len = match kind {
        RTM_GETLINK => IFINFOMSG_LEN,
        RTM_GETADDR => IFADDRMSG_LEN,
        RTM_GETROUTE => RTMSG_LEN,
        RTM_GETRULE => FIB_RULE_HDR_LEN,
        // RTM_GETNEIGH
        _ => NDMSG_LEN,
    };
    let mut payload = vec![0u8; len];
    payload[0] = family;
    RtnlRaw { kind, payload }
}
