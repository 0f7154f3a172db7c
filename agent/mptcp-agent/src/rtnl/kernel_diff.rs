// SPDX-License-Identifier: MIT OR Apache-2.0
//! This client against the previous stack (rtnetlink 0.18 on netlink-packet-route 0.25) on
//! the host's kernel: both dump the current namespace (read-only) and must give the same
//! snapshot, and the same stuck-neighbour candidates.

use futures::TryStreamExt;
use mptcp_agent_core::KernelSnapshot;
use netlink_packet_route::{
    neighbour::NeighbourAttribute,
    route::{RouteHeader, RouteMessage},
    AddressFamily,
};
use rtnetlink::IpVersion;

use super::{legacy, message::NeighMsg, wire::*};

async fn old_dump(handle: &rtnetlink::Handle) -> KernelSnapshot {
    let mut snap = KernelSnapshot::default();
    let mut links = handle.link().get().execute();
    while let Some(m) = links.try_next().await.unwrap() {
        snap.links.push(legacy::link_of(&m));
    }
    let mut addrs = handle.address().get().execute();
    while let Some(m) = addrs.try_next().await.unwrap() {
        snap.addresses.extend(legacy::address_of(&m));
    }
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        let mut routes = handle.route().get(msg).execute();
        while let Some(m) = routes.try_next().await.unwrap() {
            snap.routes.extend(legacy::routes_of(&m));
        }
    }
    for v in [IpVersion::V4, IpVersion::V6] {
        let mut rules = handle.rule().get(v).execute();
        while let Some(m) = rules.try_next().await.unwrap() {
            snap.rules.extend(legacy::rule_of(&m));
        }
    }
    snap
}

/// (family, ifindex, state, destination) of every neighbour entry.
type Neighbours = Vec<(u8, u32, u16, Option<Vec<u8>>)>;

async fn old_neighbours(handle: &rtnetlink::Handle, v: IpVersion) -> Neighbours {
    let msgs: Vec<_> = handle
        .neighbours()
        .get()
        .set_family(v)
        .execute()
        .try_collect()
        .await
        .unwrap();
    msgs.iter()
        .map(|m| {
            let dst = m.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(d) => {
                    let mut b = vec![0; netlink_packet_core::Emitable::buffer_len(d)];
                    netlink_packet_core::Emitable::emit(d, &mut b);
                    Some(b)
                }
                _ => None,
            });
            (
                u8::from(m.header.family),
                m.header.ifindex,
                u16::from(m.header.state),
                dst,
            )
        })
        .collect()
}

async fn new_neighbours(handle: &super::Handle, family: u8) -> Neighbours {
    let msgs = handle
        .dump(RTM_GETNEIGH, family, NeighMsg::parse)
        .await
        .unwrap();
    msgs.into_iter()
        .map(|m| (m.family, m.ifindex, m.state, m.dst))
        .collect()
}

#[tokio::test]
async fn the_host_reads_the_same_as_through_netlink_packet_route() {
    let (conn, old, _) = rtnetlink::new_connection().unwrap();
    tokio::spawn(conn);
    // connect() as the daemon does: subscribed, with the large receive buffer.
    let (new, _messages) = super::connect().unwrap();
    // Other work on this host may change it meanwhile: compare only between two equal
    // old dumps.
    for _ in 0..10 {
        let before = old_dump(&old).await;
        let got = super::dump(&new).await.unwrap();
        let neigh_before = old_neighbours(&old, IpVersion::V4).await;
        let neigh_got = new_neighbours(&new, AF_INET).await;
        let neigh6_before = old_neighbours(&old, IpVersion::V6).await;
        let neigh6_got = new_neighbours(&new, AF_INET6).await;
        let after = old_dump(&old).await;
        if before != after
            || neigh_before != old_neighbours(&old, IpVersion::V4).await
            || neigh6_before != old_neighbours(&old, IpVersion::V6).await
        {
            continue;
        }
        // At least the loopback link, its address and the default rules.
        assert!(
            !got.links.is_empty() && !got.addresses.is_empty(),
            "{got:?}"
        );
        assert!(!got.rules.is_empty(), "{got:?}");
        assert_eq!(got, before);
        assert_eq!(neigh_got, neigh_before);
        assert_eq!(neigh6_got, neigh6_before);
        return;
    }
    panic!("the host's links, addresses, routes or rules kept changing during the dumps");
}
