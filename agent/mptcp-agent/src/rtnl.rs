// SPDX-License-Identifier: MIT OR Apache-2.0
//! rtnetlink adapter: the multicast monitor and initial dump of links, addresses, routes
//! and rules (as core [`Event`]s), and the route/rule ops of the executor.
//!
//! Its own small rtnetlink client on netlink-proto, as `mptcp-genl` is for generic
//! netlink: it reads only the messages and fields the agent uses, which keeps the binary
//! small (docs/performance.md, footprint).

mod conn;
mod convert;
mod message;
mod ops;
mod wire;

#[cfg(test)]
mod kernel_diff;
#[cfg(test)]
mod legacy;
#[cfg(test)]
mod tests;

use futures::StreamExt;
use mptcp_agent_core::{Event, KernelSnapshot};
use netlink_sys::{AsyncSocket, SocketAddr};
use tokio::sync::mpsc::Sender;

pub use conn::{Handle, Messages};
pub use ops::{add_route, add_rule, del_route, del_rule, reset_neighbours};

use self::{
    convert::{address_of, link_of, routes_of, rule_of},
    message::{AddrMsg, LinkMsg, Message, RouteMsg, RtnlRaw, RuleMsg},
    wire::*,
};
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

/// An rtnetlink connection subscribed to link, address, route and rule changes. The
/// connection task is spawned on the current runtime. Multicast messages queue up in the
/// returned receiver until [`monitor`] consumes them, so nothing is lost between
/// subscribing and dumping.
pub fn connect() -> Result<(Handle, Messages)> {
    let (mut conn, handle, messages) =
        conn::new_connection().context("opening an rtnetlink socket")?;
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
    let links = handle
        .dump(RTM_GETLINK, AF_UNSPEC, LinkMsg::parse)
        .await
        .context("dumping links")?;
    snap.links = links.iter().map(link_of).collect();
    let addrs = handle
        .dump(RTM_GETADDR, AF_UNSPEC, AddrMsg::parse)
        .await
        .context("dumping addresses")?;
    snap.addresses = addrs.iter().filter_map(address_of).collect();
    for family in [AF_INET, AF_INET6] {
        // rtm_table RT_TABLE_UNSPEC: every table.
        let routes = handle
            .dump(RTM_GETROUTE, family, RouteMsg::parse)
            .await
            .context("dumping routes")?;
        snap.routes.extend(routes.iter().flat_map(routes_of));
    }
    for family in [AF_INET, AF_INET6] {
        let rules = handle
            .dump(RTM_GETRULE, family, RuleMsg::parse)
            .await
            .context("dumping rules")?;
        snap.rules.extend(rules.iter().filter_map(rule_of));
    }
    Ok(snap)
}

fn events_of(msg: netlink_packet_core::NetlinkMessage<RtnlRaw>) -> Vec<Event> {
    use netlink_packet_core::NetlinkPayload;
    let NetlinkPayload::InnerMessage(raw) = msg.payload else {
        return Vec::new();
    };
    let m = match Message::parse(raw.kind, &raw.payload) {
        Ok(m) => m,
        Err(e) => {
            // netlink-proto dropped what netlink-packet-route could not decode, too.
            log::error!("rtnetlink: skipping a message: {e}");
            return Vec::new();
        }
    };
    match m {
        // A bridge reports its ports' state with AF_BRIDGE link messages: partial (no link
        // kind), and a DELLINK there means the port left the bridge, not that the link is
        // gone. The link's own (AF_UNSPEC) messages say everything the agent needs.
        Message::NewLink(m) | Message::DelLink(m) if m.family == AF_BRIDGE => Vec::new(),
        Message::NewLink(m) => vec![Event::LinkChanged(link_of(&m))],
        Message::DelLink(m) => vec![Event::LinkRemoved { ifindex: m.index }],
        Message::NewAddress(m) => address_of(&m)
            .into_iter()
            .map(Event::AddressAdded)
            .collect(),
        Message::DelAddress(m) => address_of(&m)
            .into_iter()
            .map(Event::AddressRemoved)
            .collect(),
        Message::NewRoute(m) => routes_of(&m).into_iter().map(Event::RouteAdded).collect(),
        Message::DelRoute(m) => routes_of(&m).into_iter().map(Event::RouteRemoved).collect(),
        Message::NewRule(m) => rule_of(&m).into_iter().map(Event::RuleAdded).collect(),
        Message::DelRule(m) => rule_of(&m).into_iter().map(Event::RuleRemoved).collect(),
        Message::NewNeighbour(_) | Message::Other(_) => Vec::new(),
    }
}
