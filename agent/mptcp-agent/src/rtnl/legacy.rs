// SPDX-License-Identifier: MIT OR Apache-2.0
//! The previous rtnetlink path, for the tests: netlink-packet-route's messages and the
//! conversions this module had on them (with the device-type rules shared), and the
//! route/rule messages it sent.

use std::net::IpAddr;

use mptcp_agent_core::{AddrFlags, Address, Family, Link, OperState, Route, Rule};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage},
    route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType, RouteVia,
    },
    rule::{RuleAction, RuleAttribute, RuleMessage},
    AddressFamily,
};

use super::convert::kind_of;

pub fn link_of(m: &LinkMessage) -> Link {
    let flags = m.header.flags;
    let mut name = String::new();
    let mut oper = OperState::Unknown;
    let mut info_kind = None;
    let mut master = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Controller(i) if *i != 0 => master = Some(*i),
            LinkAttribute::OperState(s) => oper = OperState::from_kernel(u8::from(*s)),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        info_kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let kind = kind_of(
        &name,
        info_kind.as_deref(),
        u16::from(m.header.link_layer_type),
    );
    Link {
        ifindex: m.header.index,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        loopback: flags.contains(LinkFlags::Loopback),
        point_to_point: flags.contains(LinkFlags::Pointopoint),
        oper,
        kind,
        info_kind,
        master,
        name,
    }
}

pub fn address_of(m: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(m.header.flags.bits());
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    let addr = local.or(address)?;
    Some(Address {
        ifindex: m.header.index,
        addr,
        prefix_len: m.header.prefix_len,
        flags: AddrFlags(flags),
        scope: u8::from(m.header.scope),
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

pub fn routes_of(m: &RouteMessage) -> Vec<Route> {
    if m.header.kind != RouteType::Unicast {
        return Vec::new();
    }
    let family = match m.header.address_family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return Vec::new(),
    };
    let mut table = u32::from(m.header.table);
    let mut dst = family.any();
    let mut gateway = None;
    let mut ifindex = None;
    let mut metric = 0;
    let mut prefsrc = None;
    let mut hops = Vec::new();
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = ip_of(d).unwrap_or(dst),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            RouteAttribute::Via(RouteVia::Inet(v4)) => gateway = Some(IpAddr::V4(*v4)),
            RouteAttribute::Via(RouteVia::Inet6(v6)) => gateway = Some(IpAddr::V6(*v6)),
            RouteAttribute::Oif(i) => ifindex = Some(*i),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::PrefSource(s) => prefsrc = ip_of(s),
            RouteAttribute::MultiPath(nh) => hops = nh.clone(),
            _ => {}
        }
    }
    let base = Route {
        table,
        dst,
        prefix_len: m.header.destination_prefix_length,
        gateway,
        ifindex,
        protocol: u8::from(m.header.protocol),
        metric,
        scope: u8::from(m.header.scope),
        prefsrc,
    };
    if hops.is_empty() {
        return vec![base];
    }
    hops.iter()
        .map(|h| {
            let mut r = base.clone();
            r.ifindex = Some(h.interface_index);
            for a in &h.attributes {
                match a {
                    RouteAttribute::Gateway(g) => r.gateway = ip_of(g),
                    RouteAttribute::Via(RouteVia::Inet(v4)) => r.gateway = Some(IpAddr::V4(*v4)),
                    RouteAttribute::Via(RouteVia::Inet6(v6)) => r.gateway = Some(IpAddr::V6(*v6)),
                    _ => {}
                }
            }
            r
        })
        .collect()
}

pub fn rule_of(m: &RuleMessage) -> Option<Rule> {
    let family = match m.header.family {
        AddressFamily::Inet => Family::V4,
        AddressFamily::Inet6 => Family::V6,
        _ => return None,
    };
    let mut table = u32::from(m.header.table);
    let mut priority = 0;
    let mut src = None;
    let mut protocol = 0;
    for a in &m.attributes {
        match a {
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Source(ip) => src = Some((*ip, m.header.src_len)),
            RuleAttribute::Protocol(p) => protocol = u8::from(*p),
            _ => {}
        }
    }
    Some(Rule {
        family,
        priority,
        src,
        table,
        protocol,
    })
}

pub fn route_message(r: &Route) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match r.family() {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = r.prefix_len;
    m.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.protocol = RouteProtocol::from(r.protocol);
    m.header.scope = RouteScope::from(r.scope);
    m.header.kind = RouteType::Unicast;
    if r.prefix_len > 0 {
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(r.dst)));
    }
    if let Some(g) = r.gateway {
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(g)));
    }
    if let Some(i) = r.ifindex {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    if let Some(s) = r.prefsrc {
        m.attributes
            .push(RouteAttribute::PrefSource(RouteAddress::from(s)));
    }
    if r.metric != 0 {
        m.attributes.push(RouteAttribute::Priority(r.metric));
    }
    m.attributes.push(RouteAttribute::Table(r.table));
    m
}

pub fn rule_message(r: &Rule) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = match r.family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    m.header.table = u8::try_from(r.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.action = RuleAction::ToTable;
    if let Some((addr, len)) = r.src {
        m.header.src_len = len;
        m.attributes.push(RuleAttribute::Source(addr));
    }
    m.attributes.push(RuleAttribute::Priority(r.priority));
    m.attributes.push(RuleAttribute::Table(r.table));
    if r.protocol != 0 {
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(r.protocol)));
    }
    m
}
