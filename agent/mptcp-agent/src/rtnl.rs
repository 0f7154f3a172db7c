// SPDX-License-Identifier: MIT OR Apache-2.0
//! rtnetlink adapter: the multicast monitor and initial dump of links, addresses, routes
//! and rules (as core [`Event`]s), and the route/rule ops of the executor.

use std::net::IpAddr;

use futures::{channel::mpsc::UnboundedReceiver, StreamExt, TryStreamExt};
use mptcp_agent_core::{
    AddrFlags, Address, DeviceType, Event, Family, KernelSnapshot, Link, OpError, OpErrorKind,
    OperState, Route, Rule,
};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType, LinkMessage, State},
    neighbour::{NeighbourMessage, NeighbourState},
    route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
        RouteType, RouteVia,
    },
    rule::{RuleAction, RuleAttribute, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, IpVersion};
use tokio::sync::mpsc::Sender;

use crate::error::{Context, Error, Result};

// rtnetlink multicast groups (RTNLGRP_*), as bits for bind().
const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV4_RULE: u32 = 8;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_IPV6_RULE: u32 = 19;

const fn group_bit(group: u32) -> u32 {
    1 << (group - 1)
}

/// Socket receive buffer for the monitor: a burst of route changes must not overflow it.
const MONITOR_RCVBUF: usize = 4 << 20;

type Messages = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// An rtnetlink connection subscribed to link, address, route and rule changes. The
/// connection task is spawned on the current runtime. Multicast messages queue up in the
/// returned receiver until [`monitor`] consumes them, so nothing is lost between
/// subscribing and dumping.
pub fn connect() -> Result<(Handle, Messages)> {
    let (mut conn, handle, messages) =
        rtnetlink::new_connection().context("opening an rtnetlink socket")?;
    let groups = [
        RTNLGRP_LINK,
        RTNLGRP_IPV4_IFADDR,
        RTNLGRP_IPV6_IFADDR,
        RTNLGRP_IPV4_ROUTE,
        RTNLGRP_IPV6_ROUTE,
        RTNLGRP_IPV4_RULE,
        RTNLGRP_IPV6_RULE,
    ]
    .iter()
    .fold(0, |acc, g| acc | group_bit(*g));
    let sock = conn.socket_mut().socket_mut();
    sock.bind(&SocketAddr::new(0, groups))
        .context("subscribing to rtnetlink groups")?;
    if let Err(e) = sock.set_rx_buf_sz(MONITOR_RCVBUF) {
        log::debug!("rtnetlink: could not enlarge the receive buffer: {e}");
    }
    tokio::spawn(conn);
    Ok((handle, messages))
}

/// Dump everything once, then forward changes until the socket closes.
pub async fn monitor<T: From<Event>>(
    handle: Handle,
    mut messages: Messages,
    tx: Sender<T>,
) -> Result<()> {
    let snapshot = dump(&handle).await?;
    if tx
        .send(Event::KernelSnapshot(snapshot).into())
        .await
        .is_err()
    {
        return Ok(());
    }
    while let Some((msg, _)) = messages.next().await {
        for ev in events_of(msg) {
            if tx.send(ev.into()).await.is_err() {
                return Ok(());
            }
        }
    }
    Err(Error::msg("the rtnetlink monitor socket closed"))
}

/// Full dump of links, addresses, routes (every table) and rules.
pub async fn dump(handle: &Handle) -> Result<KernelSnapshot> {
    let mut snap = KernelSnapshot::default();
    let mut links = handle.link().get().execute();
    while let Some(m) = links.try_next().await.context("dumping links")? {
        snap.links.push(link_of(&m));
    }
    let mut addrs = handle.address().get().execute();
    while let Some(m) = addrs.try_next().await.context("dumping addresses")? {
        snap.addresses.extend(address_of(&m));
    }
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        let mut routes = handle.route().get(msg).execute();
        while let Some(m) = routes.try_next().await.context("dumping routes")? {
            snap.routes.extend(routes_of(&m));
        }
    }
    for v in [IpVersion::V4, IpVersion::V6] {
        let mut rules = handle.rule().get(v).execute();
        while let Some(m) = rules.try_next().await.context("dumping rules")? {
            snap.rules.extend(rule_of(&m));
        }
    }
    Ok(snap)
}

fn events_of(msg: NetlinkMessage<RouteNetlinkMessage>) -> Vec<Event> {
    use netlink_packet_core::NetlinkPayload;
    let NetlinkPayload::InnerMessage(inner) = msg.payload else {
        return Vec::new();
    };
    match inner {
        // A bridge reports its ports' state with AF_BRIDGE link messages: partial (no link
        // kind), and a DELLINK there means the port left the bridge, not that the link is
        // gone. The link's own (AF_UNSPEC) messages say everything the agent needs.
        RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m)
            if m.header.interface_family == AddressFamily::Bridge =>
        {
            Vec::new()
        }
        RouteNetlinkMessage::NewLink(m) => vec![Event::LinkChanged(link_of(&m))],
        RouteNetlinkMessage::DelLink(m) => vec![Event::LinkRemoved {
            ifindex: m.header.index,
        }],
        RouteNetlinkMessage::NewAddress(m) => address_of(&m)
            .into_iter()
            .map(Event::AddressAdded)
            .collect(),
        RouteNetlinkMessage::DelAddress(m) => address_of(&m)
            .into_iter()
            .map(Event::AddressRemoved)
            .collect(),
        RouteNetlinkMessage::NewRoute(m) => {
            routes_of(&m).into_iter().map(Event::RouteAdded).collect()
        }
        RouteNetlinkMessage::DelRoute(m) => {
            routes_of(&m).into_iter().map(Event::RouteRemoved).collect()
        }
        RouteNetlinkMessage::NewRule(m) => rule_of(&m).into_iter().map(Event::RuleAdded).collect(),
        RouteNetlinkMessage::DelRule(m) => {
            rule_of(&m).into_iter().map(Event::RuleRemoved).collect()
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// netlink → model

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
            LinkAttribute::OperState(s) => oper = oper_of(*s),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        info_kind = Some(k.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let kind = kind_of(&name, info_kind.as_ref(), m.header.link_layer_type);
    Link {
        ifindex: m.header.index,
        up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        loopback: flags.contains(LinkFlags::Loopback),
        point_to_point: flags.contains(LinkFlags::Pointopoint),
        oper,
        kind,
        // InfoKind's Display is the kernel's own name ("wireguard", "ip6tnl", …).
        info_kind: info_kind.as_ref().map(|k| k.to_string()),
        master,
        name,
    }
}

fn oper_of(s: State) -> OperState {
    match s {
        State::Unknown => OperState::Unknown,
        State::NotPresent => OperState::NotPresent,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Testing => OperState::Testing,
        State::Dormant => OperState::Dormant,
        State::Up => OperState::Up,
        _ => OperState::Unknown,
    }
}

/// Device type without NetworkManager: the link kind, the link layer type, and sysfs
/// `DEVTYPE` (wlan, wwan) for real hardware.
fn kind_of(name: &str, kind: Option<&InfoKind>, lltype: LinkLayerType) -> Option<DeviceType> {
    if let Some(k) = kind {
        let t = match k {
            InfoKind::Veth => Some(DeviceType::Veth),
            InfoKind::Bridge => Some(DeviceType::Bridge),
            InfoKind::Bond => Some(DeviceType::Bond),
            InfoKind::Vlan => Some(DeviceType::Vlan),
            InfoKind::Tun => Some(DeviceType::Tun),
            InfoKind::Dummy => Some(DeviceType::Dummy),
            InfoKind::Vxlan => Some(DeviceType::Vxlan),
            InfoKind::MacVlan => Some(DeviceType::Macvlan),
            InfoKind::Wireguard => Some(DeviceType::Wireguard),
            _ => None,
        };
        if t.is_some() {
            return t;
        }
    }
    match lltype {
        LinkLayerType::Loopback => return Some(DeviceType::Loopback),
        LinkLayerType::Ppp => return Some(DeviceType::Ppp),
        _ => {}
    }
    // Bounded, tiny read; names with '/' cannot occur (the kernel refuses them).
    if !name.is_empty() && !name.contains('/') {
        if let Ok(uevent) = std::fs::read_to_string(format!("/sys/class/net/{name}/uevent")) {
            for line in uevent.lines() {
                match line {
                    "DEVTYPE=wlan" => return Some(DeviceType::Wifi),
                    "DEVTYPE=wwan" => return Some(DeviceType::Modem),
                    _ => {}
                }
            }
        }
    }
    match lltype {
        LinkLayerType::Ether => Some(DeviceType::Ethernet),
        LinkLayerType::Rawip | LinkLayerType::None => Some(DeviceType::Generic),
        _ => None,
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
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
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

/// Unicast routes, one per next hop.
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

// ---------------------------------------------------------------------------------------
// model → netlink (executor)

fn route_message(r: &Route) -> RouteMessage {
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

fn rule_message(r: &Rule) -> RuleMessage {
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

/// errno of an rtnetlink error, if the kernel sent one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// An rtnetlink error as the core's op failure; `context` goes before its text.
fn op_error(e: &rtnetlink::Error, context: &str) -> OpError {
    use rtnetlink::Error as E;
    let kind = match e {
        E::NetlinkError(_) => OpErrorKind::Rejected,
        E::UnexpectedMessage(_)
        | E::InvalidHardwareAddress(_)
        | E::InvalidIp(_)
        | E::InvalidAddress(..) => OpErrorKind::Malformed,
        E::InvalidNla(_) => OpErrorKind::Invalid,
        E::RequestFailed | E::NamespaceError(_) => OpErrorKind::Io,
    };
    OpError::new(kind, errno(e), format!("{context}{e}"))
}

/// Delete the link's INCOMPLETE and FAILED neighbour entries of one family, so that the
/// next packet probes at once (see `Op::ResetNeighbours`). Entries that are gone already
/// are fine.
pub async fn reset_neighbours(
    handle: &Handle,
    ifindex: u32,
    family: Family,
) -> Result<(), OpError> {
    let version = match family {
        Family::V4 => IpVersion::V4,
        Family::V6 => IpVersion::V6,
    };
    let entries: Vec<NeighbourMessage> = handle
        .neighbours()
        .get()
        .set_family(version)
        .execute()
        .try_filter(|m| {
            futures::future::ready(
                m.header.ifindex == ifindex
                    && matches!(
                        m.header.state,
                        NeighbourState::Incomplete | NeighbourState::Failed
                    ),
            )
        })
        .try_collect()
        .await
        .map_err(|e| op_error(&e, "neighbour dump: "))?;
    for m in entries {
        match handle.neighbours().del(m).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::ENOENT) => {}
            Err(e) => return Err(op_error(&e, "neighbour delete: ")),
        }
    }
    Ok(())
}

pub async fn add_route(handle: &Handle, r: &Route) -> Result<(), OpError> {
    match handle.route().add(route_message(r)).execute().await {
        Ok(()) => Ok(()),
        // Already there (e.g. added before a restart): that is the wanted state.
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(op_error(&e, "")),
    }
}

pub async fn del_route(handle: &Handle, r: &Route) -> Result<(), OpError> {
    match handle.route().del(route_message(r)).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ESRCH) => Ok(()),
        Err(e) => Err(op_error(&e, "")),
    }
}

pub async fn add_rule(handle: &Handle, r: &Rule) -> Result<(), OpError> {
    let mut req = handle.rule().add();
    *req.message_mut() = rule_message(r);
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(op_error(&e, "")),
    }
}

pub async fn del_rule(handle: &Handle, r: &Rule) -> Result<(), OpError> {
    match handle.rule().del(rule_message(r)).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(op_error(&e, "")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn route_roundtrip_through_netlink_message() {
        let r = Route {
            table: 1003,
            dst: IpAddr::V4(Ipv4Addr::new(10, 2, 0, 0)),
            prefix_len: 24,
            gateway: None,
            ifindex: Some(3),
            protocol: 77,
            metric: 0,
            scope: 253,
            prefsrc: Some(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2))),
        };
        let back = routes_of(&route_message(&r));
        assert_eq!(back, vec![r]);
        let d = Route {
            table: 1003,
            dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix_len: 0,
            gateway: Some("fe80::1".parse().unwrap()),
            ifindex: Some(3),
            protocol: 77,
            metric: 0,
            scope: 0,
            prefsrc: None,
        };
        assert_eq!(routes_of(&route_message(&d)), vec![d]);
    }

    #[test]
    fn rule_roundtrip_through_netlink_message() {
        let r = Rule {
            family: Family::V4,
            priority: 1000,
            src: Some((IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2)), 32)),
            table: 1003,
            protocol: 77,
        };
        assert_eq!(rule_of(&rule_message(&r)), Some(r));
    }

    #[test]
    fn link_kind_master_and_bridge_port_reports() {
        use netlink_packet_core::{NetlinkHeader, NetlinkPayload};
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.attributes.push(LinkAttribute::IfName("ctrv0".into()));
        m.attributes.push(LinkAttribute::Controller(5));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Veth,
            )]));
        let l = link_of(&m);
        assert_eq!((l.info_kind.as_deref(), l.master), (Some("veth"), Some(5)));
        let wrap = |m: RouteNetlinkMessage| {
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(m))
        };
        assert!(matches!(
            &events_of(wrap(RouteNetlinkMessage::NewLink(m.clone())))[..],
            [Event::LinkChanged(l)] if l.info_kind.as_deref() == Some("veth")
        ));
        // The bridge's own report of its port: partial, and its DELLINK means "left the
        // bridge". Neither may replace or remove the link.
        m.header.interface_family = AddressFamily::Bridge;
        m.attributes
            .retain(|a| !matches!(a, LinkAttribute::LinkInfo(_)));
        assert!(events_of(wrap(RouteNetlinkMessage::NewLink(m.clone()))).is_empty());
        assert!(events_of(wrap(RouteNetlinkMessage::DelLink(m))).is_empty());
    }

    #[test]
    fn non_unicast_routes_are_skipped() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.kind = RouteType::Local;
        assert!(routes_of(&m).is_empty());
    }
}
