// SPDX-License-Identifier: MIT OR Apache-2.0
//! rtnetlink messages ↔ the core's model.

use mptcp_agent_core::{AddrFlags, Address, DeviceType, Family, Link, OperState, Route, Rule};

use super::{
    message::{AddrMsg, LinkMsg, RouteMsg, RtnlRaw, RuleMsg},
    wire::*,
};

// ---------------------------------------------------------------------------------------
// netlink → model

pub fn link_of(m: &LinkMsg) -> Link {
    Link {
        ifindex: m.index,
        up: m.flags & IFF_UP != 0,
        lower_up: m.flags & IFF_LOWER_UP != 0,
        loopback: m.flags & IFF_LOOPBACK != 0,
        point_to_point: m.flags & IFF_POINTOPOINT != 0,
        oper: m.oper.map_or(OperState::Unknown, OperState::from_kernel),
        kind: kind_of(&m.name, m.kind.as_deref(), m.link_type),
        // The kernel's own name ("wireguard", "ip6tnl", …).
        info_kind: m.kind.clone(),
        master: m.master.filter(|i| *i != 0),
        name: m.name.clone(),
    }
}

/// Device type without NetworkManager: the link kind, the link layer type (ARPHRD_*),
/// and sysfs `DEVTYPE` (wlan, wwan) for real hardware.
pub(super) fn kind_of(name: &str, kind: Option<&str>, lltype: u16) -> Option<DeviceType> {
    let t = match kind {
        Some("veth") => Some(DeviceType::Veth),
        Some("bridge") => Some(DeviceType::Bridge),
        Some("bond") => Some(DeviceType::Bond),
        Some("vlan") => Some(DeviceType::Vlan),
        Some("tun") => Some(DeviceType::Tun),
        Some("dummy") => Some(DeviceType::Dummy),
        Some("vxlan") => Some(DeviceType::Vxlan),
        Some("macvlan") => Some(DeviceType::Macvlan),
        Some("wireguard") => Some(DeviceType::Wireguard),
        _ => None,
    };
    if t.is_some() {
        return t;
    }
    match lltype {
        ARPHRD_LOOPBACK => return Some(DeviceType::Loopback),
        ARPHRD_PPP => return Some(DeviceType::Ppp),
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
        ARPHRD_ETHER => Some(DeviceType::Ethernet),
        ARPHRD_RAWIP | ARPHRD_NONE => Some(DeviceType::Generic),
        _ => None,
    }
}

pub fn address_of(m: &AddrMsg) -> Option<Address> {
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    let addr = m.local.or(m.address)?;
    Some(Address {
        ifindex: m.index,
        addr,
        prefix_len: m.prefix_len,
        flags: AddrFlags(m.ext_flags.unwrap_or(u32::from(m.flags))),
        scope: m.scope,
    })
}

/// Unicast routes, one per next hop.
pub fn routes_of(m: &RouteMsg) -> Vec<Route> {
    if !m.is_ip_unicast() {
        return Vec::new();
    }
    let family = if m.family == AF_INET {
        Family::V4
    } else {
        Family::V6
    };
    let base = Route {
        table: m.table_attr.unwrap_or(u32::from(m.table)),
        dst: m.dst.unwrap_or(family.any()),
        prefix_len: m.dst_len,
        gateway: m.gateway,
        ifindex: m.oif,
        protocol: m.protocol,
        metric: m.priority.unwrap_or(0),
        scope: m.scope,
        prefsrc: m.prefsrc,
    };
    if m.hops.is_empty() {
        return vec![base];
    }
    m.hops
        .iter()
        .map(|h| Route {
            ifindex: Some(h.ifindex),
            gateway: h.gateway.or(base.gateway),
            ..base.clone()
        })
        .collect()
}

pub fn rule_of(m: &RuleMsg) -> Option<Rule> {
    let family = match m.family {
        AF_INET => Family::V4,
        AF_INET6 => Family::V6,
        _ => return None,
    };
    Some(Rule {
        family,
        priority: m.priority.unwrap_or(0),
        src: m.src.map(|ip| (ip, m.src_len)),
        table: m.table_attr.unwrap_or(u32::from(m.table)),
        protocol: m.protocol.unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------
// model → netlink (executor)

fn family_of(f: Family) -> u8 {
    match f {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    }
}

/// RTM_NEWROUTE / RTM_DELROUTE payload for `r`: the bytes netlink-packet-route 0.25
/// emitted for the same route (tested), so the kernel sees no change.
pub fn route_request(kind: u16, r: &Route) -> RtnlRaw {
    let mut h = [0u8; RTMSG_LEN];
    h[0] = family_of(r.family());
    h[1] = r.prefix_len;
    h[4] = u8::try_from(r.table).unwrap_or(RT_TABLE_UNSPEC);
    h[5] = r.protocol;
    h[6] = r.scope;
    h[7] = RTN_UNICAST;
    let mut w = AttrWriter::with_header(&h);
    if r.prefix_len > 0 {
        w.ip(RTA_DST, r.dst);
    }
    if let Some(g) = r.gateway {
        w.ip(RTA_GATEWAY, g);
    }
    if let Some(i) = r.ifindex {
        w.u32(RTA_OIF, i);
    }
    if let Some(s) = r.prefsrc {
        w.ip(RTA_PREFSRC, s);
    }
    if r.metric != 0 {
        w.u32(RTA_PRIORITY, r.metric);
    }
    w.u32(RTA_TABLE, r.table);
    RtnlRaw {
        kind,
        payload: w.finish(),
    }
}

/// RTM_NEWRULE / RTM_DELRULE payload for `r` (same bytes as netlink-packet-route 0.25).
pub fn rule_request(kind: u16, r: &Rule) -> RtnlRaw {
    let mut h = [0u8; FIB_RULE_HDR_LEN];
    h[0] = family_of(r.family);
    h[4] = u8::try_from(r.table).unwrap_or(RT_TABLE_UNSPEC);
    h[7] = FR_ACT_TO_TBL;
    if let Some((_, len)) = r.src {
        h[2] = len;
    }
    let mut w = AttrWriter::with_header(&h);
    if let Some((addr, _)) = r.src {
        w.ip(FRA_SRC, addr);
    }
    w.u32(FRA_PRIORITY, r.priority);
    w.u32(FRA_TABLE, r.table);
    if r.protocol != 0 {
        w.u8(FRA_PROTOCOL, r.protocol);
    }
    RtnlRaw {
        kind,
        payload: w.finish(),
    }
}
