// SPDX-License-Identifier: MIT OR Apache-2.0
//! The rtnetlink client's messages: byte-for-byte what netlink-packet-route sent, read as
//! netlink-packet-route read them, captured kernel messages, and malformed input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mptcp_agent_core::{Event, Family, Route, Rule};
use netlink_packet_core::{
    Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable, ParseableParametrized,
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{InfoKind, LinkAttribute, LinkInfo, LinkLayerType, LinkMessage, State},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    route::{
        RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteScope, RouteType, RouteVia,
    },
    rule::{RuleAttribute, RuleMessage},
    AddressFamily, RouteNetlinkMessage,
};
use proptest::{collection::vec, option, prelude::*, sample::select, test_runner::RngSeed};

use super::{
    conn::request,
    convert::{address_of, link_of, route_request, routes_of, rule_of, rule_request},
    events_of, legacy,
    message::*,
    ops::ADD,
    wire::*,
};

fn bytes_of(m: NetlinkMessage<RtnlRaw>) -> Vec<u8> {
    let mut b = vec![0; m.buffer_len()];
    m.serialize(&mut b);
    b
}

/// What rtnetlink 0.18 put on the wire for `m` with `flags`.
fn old_bytes(m: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
    let mut nl = NetlinkMessage::from(m);
    nl.header.flags = flags;
    nl.finalize();
    let mut b = vec![0; nl.buffer_len()];
    nl.serialize(&mut b);
    b
}

fn emit<T: Emitable>(m: &T) -> Vec<u8> {
    let mut b = vec![0; m.buffer_len()];
    m.emit(&mut b);
    b
}

fn ip(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<[u8; 16]>().prop_map(IpAddr::from).boxed()
    } else {
        any::<[u8; 4]>().prop_map(IpAddr::from).boxed()
    }
}

/// Tables below and above 256 (RTA_TABLE only), metrics zero (left out) or not.
fn route() -> impl Strategy<Value = Route> {
    any::<bool>().prop_flat_map(|v6| {
        (
            (
                prop_oneof![0u32..300, any::<u32>()],
                ip(v6),
                0u8..=if v6 { 128 } else { 32 },
            ),
            (option::of(ip(v6)), option::of(any::<u32>()), any::<u8>()),
            (
                prop_oneof![Just(0u32), any::<u32>()],
                any::<u8>(),
                option::of(ip(v6)),
            ),
        )
            .prop_map(
                |(
                    (table, dst, prefix_len),
                    (gateway, ifindex, protocol),
                    (metric, scope, prefsrc),
                )| {
                    Route {
                        table,
                        dst,
                        prefix_len,
                        gateway,
                        ifindex,
                        protocol,
                        metric,
                        scope,
                        prefsrc,
                    }
                },
            )
    })
}

fn rule() -> impl Strategy<Value = Rule> {
    any::<bool>().prop_flat_map(|v6| {
        (
            option::of((ip(v6), 0u8..=128)),
            any::<u32>(),
            prop_oneof![0u32..300, any::<u32>()],
            prop_oneof![Just(0u8), any::<u8>()],
        )
            .prop_map(move |(src, priority, table, protocol)| Rule {
                family: if v6 { Family::V6 } else { Family::V4 },
                priority,
                src,
                table,
                protocol,
            })
    })
}

const DO: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// An add and a delete as rtnetlink 0.18 sent them and as the ops send them.
fn same_changes(old: [RouteNetlinkMessage; 2], new: [RtnlRaw; 2]) -> Result<(), TestCaseError> {
    let [old_add, old_del] = old;
    let [new_add, new_del] = new;
    let add = old_bytes(old_add, DO | NLM_F_EXCL | NLM_F_CREATE);
    prop_assert_eq!(bytes_of(request(new_add, DO | ADD)), add);
    let del = old_bytes(old_del, DO);
    prop_assert_eq!(bytes_of(request(new_del, DO)), del);
    Ok(())
}

/// The same cases on every run (as src/ota/bad_input.rs); a failure is shrunk and
/// printed, no regression file is written.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x7274_6e6c),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn route_changes_are_the_bytes_netlink_packet_route_sent(r in route()) {
        let m = legacy::route_message(&r);
        same_changes(
            [RouteNetlinkMessage::NewRoute(m.clone()), RouteNetlinkMessage::DelRoute(m)],
            [route_request(RTM_NEWROUTE, &r), route_request(RTM_DELROUTE, &r)],
        )?;
    }

    #[test]
    fn rule_changes_are_the_bytes_netlink_packet_route_sent(r in rule()) {
        let m = legacy::rule_message(&r);
        same_changes(
            [RouteNetlinkMessage::NewRule(m.clone()), RouteNetlinkMessage::DelRule(m)],
            [rule_request(RTM_NEWRULE, &r), rule_request(RTM_DELRULE, &r)],
        )?;
    }

    /// What the agent sends, it reads back as the same route / rule.
    #[test]
    fn requests_read_back(r in route(), u in rule()) {
        let m = RouteMsg::parse(&route_request(RTM_NEWROUTE, &r).payload).unwrap();
        let mut want = r.clone();
        if want.prefix_len == 0 {
            // No RTA_DST is sent for a default route.
            want.dst = want.family().any();
        }
        prop_assert_eq!(routes_of(&m), vec![want]);
        let m = RuleMsg::parse(&rule_request(RTM_NEWRULE, &u).payload).unwrap();
        prop_assert_eq!(rule_of(&m), Some(u));
    }
}

#[test]
fn dump_requests_are_the_bytes_rtnetlink_sent() {
    let dump = NLM_F_REQUEST | NLM_F_DUMP;
    let new = |kind, family| bytes_of(request(dump_request(kind, family), dump));
    assert_eq!(
        new(RTM_GETLINK, AF_UNSPEC),
        old_bytes(RouteNetlinkMessage::GetLink(LinkMessage::default()), dump)
    );
    assert_eq!(
        new(RTM_GETADDR, AF_UNSPEC),
        old_bytes(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            dump
        )
    );
    for (af, family) in [
        (AF_INET, AddressFamily::Inet),
        (AF_INET6, AddressFamily::Inet6),
    ] {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        assert_eq!(
            new(RTM_GETROUTE, af),
            old_bytes(RouteNetlinkMessage::GetRoute(m), dump)
        );
        let mut m = RuleMessage::default();
        m.header.family = family;
        assert_eq!(
            new(RTM_GETRULE, af),
            old_bytes(RouteNetlinkMessage::GetRule(m), dump)
        );
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        assert_eq!(
            new(RTM_GETNEIGH, af),
            old_bytes(RouteNetlinkMessage::GetNeighbour(m), dump)
        );
    }
}

#[test]
fn a_stuck_neighbour_is_deleted_by_its_header_and_destination() {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet6;
    m.header.ifindex = 7;
    m.header.state = NeighbourState::Failed;
    let dst: Ipv6Addr = "fe80::1".parse().unwrap();
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(dst)));
    m.attributes.push(NeighbourAttribute::Probes(3));
    let ours = NeighMsg::parse(&emit(&m)).unwrap();
    assert_eq!((ours.ifindex, ours.state), (7, NUD_FAILED));
    let del = ours.delete_request();
    assert_eq!(del.kind, RTM_DELNEIGH);
    let back = NeighbourMessage::parse(
        &netlink_packet_route::neighbour::NeighbourMessageBuffer::new(&del.payload),
    )
    .unwrap();
    assert_eq!(back.header, m.header);
    assert_eq!(back.attributes, m.attributes[..1]);
}

// ---------------------------------------------------------------------------------------
// Reading: what netlink-packet-route read, on messages it emits.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z][a-z0-9.-]{0,14}"]
}

fn link_message() -> impl Strategy<Value = LinkMessage> {
    let attr = prop_oneof![
        name().prop_map(LinkAttribute::IfName),
        any::<u32>().prop_map(LinkAttribute::Controller),
        any::<u8>().prop_map(|s| LinkAttribute::OperState(State::from(s))),
        select(vec![
            InfoKind::Veth,
            InfoKind::Bridge,
            InfoKind::Wireguard,
            InfoKind::MacVlan,
            InfoKind::Dummy,
            InfoKind::Tun,
            InfoKind::Other("ip6tnl".into()),
            InfoKind::Other("x".into()),
        ])
        .prop_map(|k| LinkAttribute::LinkInfo(vec![LinkInfo::Kind(k)])),
        any::<u32>().prop_map(LinkAttribute::Mtu),
        any::<[u8; 6]>().prop_map(|a| LinkAttribute::Address(a.to_vec())),
        any::<u32>().prop_map(LinkAttribute::Group),
    ];
    (
        (
            select(vec![AddressFamily::Unspec, AddressFamily::Bridge]),
            any::<u32>(),
            any::<u32>(),
        ),
        select(vec![1u16, 512, 519, 772, 0xfffe, 65534, 776, 0]),
        vec(attr, 0..8),
    )
        .prop_map(|((family, index, flags), lltype, attributes)| {
            let mut m = LinkMessage::default();
            m.header.interface_family = family;
            m.header.index = index;
            m.header.flags = netlink_packet_route::link::LinkFlags::from_bits_retain(flags);
            m.header.link_layer_type = LinkLayerType::from(lltype);
            m.attributes = attributes;
            m
        })
}

fn address_message() -> impl Strategy<Value = AddressMessage> {
    any::<bool>().prop_flat_map(|v6| {
        let attr = prop_oneof![
            ip(v6).prop_map(AddressAttribute::Local),
            ip(v6).prop_map(AddressAttribute::Address),
            any::<u32>().prop_map(|f| AddressAttribute::Flags(
                netlink_packet_route::address::AddressFlags::from_bits_retain(f)
            )),
            name().prop_map(AddressAttribute::Label),
        ];
        (
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>()),
            vec(attr, 0..5),
        )
            .prop_map(move |((prefix_len, flags, scope, index), attributes)| {
                let mut m = AddressMessage::default();
                m.header.family = if v6 {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                };
                m.header.prefix_len = prefix_len;
                m.header.flags =
                    netlink_packet_route::address::AddressHeaderFlags::from_bits_retain(flags);
                m.header.scope = netlink_packet_route::address::AddressScope::from(scope);
                m.header.index = index;
                m.attributes = attributes;
                m
            })
    })
}

fn route_address(v6: bool) -> BoxedStrategy<RouteAddress> {
    ip(v6).prop_map(RouteAddress::from).boxed()
}

fn via() -> impl Strategy<Value = RouteVia> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| RouteVia::Inet(a.into())),
        any::<[u8; 16]>().prop_map(|a| RouteVia::Inet6(a.into())),
    ]
}

fn route_message() -> impl Strategy<Value = RouteMessage> {
    any::<bool>().prop_flat_map(|v6| {
        let hop = (
            any::<u32>(),
            vec(
                prop_oneof![
                    route_address(v6).prop_map(RouteAttribute::Gateway),
                    via().prop_map(RouteAttribute::Via)
                ],
                0..2,
            ),
        )
            .prop_map(|(ifindex, attributes)| {
                let mut h = RouteNextHop::default();
                h.interface_index = ifindex;
                h.attributes = attributes;
                h
            });
        let attr = prop_oneof![
            any::<u32>().prop_map(RouteAttribute::Table),
            route_address(v6).prop_map(RouteAttribute::Destination),
            route_address(v6).prop_map(RouteAttribute::Gateway),
            via().prop_map(RouteAttribute::Via),
            any::<u32>().prop_map(RouteAttribute::Oif),
            any::<u32>().prop_map(RouteAttribute::Priority),
            route_address(v6).prop_map(RouteAttribute::PrefSource),
            vec(hop, 1..3).prop_map(RouteAttribute::MultiPath),
            any::<u32>().prop_map(RouteAttribute::Mark),
            any::<u32>().prop_map(RouteAttribute::Iif),
        ];
        (
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()),
            select(vec![
                RouteType::Unicast,
                RouteType::Local,
                RouteType::Broadcast,
            ]),
            vec(attr, 0..8),
        )
            .prop_map(
                move |((dst_len, table, protocol, scope), kind, attributes)| {
                    let mut m = RouteMessage::default();
                    m.header.address_family = if v6 {
                        AddressFamily::Inet6
                    } else {
                        AddressFamily::Inet
                    };
                    m.header.destination_prefix_length = dst_len;
                    m.header.table = table;
                    m.header.protocol = protocol.into();
                    m.header.scope = RouteScope::from(scope);
                    m.header.kind = kind;
                    m.attributes = attributes;
                    m
                },
            )
    })
}

fn rule_message() -> impl Strategy<Value = RuleMessage> {
    (any::<bool>(), any::<u8>(), any::<u8>()).prop_flat_map(|(v6, src_len, table)| {
        let attr = prop_oneof![
            any::<u32>().prop_map(RuleAttribute::Table),
            any::<u32>().prop_map(RuleAttribute::Priority),
            ip(v6).prop_map(RuleAttribute::Source),
            ip(v6).prop_map(RuleAttribute::Destination),
            any::<u8>().prop_map(|p| RuleAttribute::Protocol(p.into())),
            any::<u32>().prop_map(RuleAttribute::FwMark),
            name().prop_map(RuleAttribute::Iifname),
        ];
        vec(attr, 0..6).prop_map(move |attributes| {
            let mut m = RuleMessage::default();
            m.header.family = if v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            };
            m.header.src_len = src_len;
            m.header.table = table;
            m.attributes = attributes;
            m
        })
    })
}

/// `b` (of message type `kind`) says the same through netlink-packet-route and the
/// conversions this module had on it, and through ours.
fn same_reading(kind: u16, b: &[u8]) -> Result<(), TestCaseError> {
    let ours = Message::parse(kind, b).unwrap();
    let buf = netlink_packet_route::RouteNetlinkMessageBuffer::new(&b);
    let old = RouteNetlinkMessage::parse_with_param(&buf, kind).unwrap();
    match (ours, old) {
        (Message::NewLink(m), RouteNetlinkMessage::NewLink(o)) => {
            prop_assert_eq!(link_of(&m), legacy::link_of(&o))
        }
        (Message::NewAddress(m), RouteNetlinkMessage::NewAddress(o)) => {
            prop_assert_eq!(address_of(&m), legacy::address_of(&o))
        }
        (Message::NewRoute(m), RouteNetlinkMessage::NewRoute(o)) => {
            prop_assert_eq!(routes_of(&m), legacy::routes_of(&o))
        }
        (Message::NewRule(m), RouteNetlinkMessage::NewRule(o)) => {
            prop_assert_eq!(rule_of(&m), legacy::rule_of(&o))
        }
        other => prop_assert!(false, "{other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn links_read_as_netlink_packet_route_read_them(m in link_message()) {
        same_reading(RTM_NEWLINK, &emit(&m))?;
    }

    #[test]
    fn addresses_read_as_netlink_packet_route_read_them(m in address_message()) {
        same_reading(RTM_NEWADDR, &emit(&m))?;
    }

    #[test]
    fn routes_read_as_netlink_packet_route_read_them(m in route_message()) {
        same_reading(RTM_NEWROUTE, &emit(&m))?;
    }

    #[test]
    fn rules_read_as_netlink_packet_route_read_them(m in rule_message()) {
        same_reading(RTM_NEWRULE, &emit(&m))?;
    }
}

// ---------------------------------------------------------------------------------------
// Captured kernel messages (6.x, x86_64), and malformed ones.

/// lo (1452 bytes).
const LINK_LO: &[u8] = &[
    0, 0, 4, 3, 1, 0, 0, 0, 73, 0, 1, 0, 0, 0, 0, 0, 7, 0, 3, 0, 108, 111, 0, 0, 8, 0, 13, 0, 232,
    3, 0, 0, 5, 0, 16, 0, 0, 0, 0, 0, 5, 0, 17, 0, 0, 0, 0, 0, 5, 0, 67, 0, 1, 0, 0, 0, 8, 0, 4, 0,
    0, 0, 1, 0, 8, 0, 50, 0, 0, 0, 0, 0, 8, 0, 51, 0, 0, 0, 0, 0, 8, 0, 27, 0, 0, 0, 0, 0, 8, 0,
    30, 0, 0, 0, 0, 0, 8, 0, 61, 0, 0, 0, 0, 0, 8, 0, 31, 0, 1, 0, 0, 0, 8, 0, 40, 0, 255, 255, 0,
    0, 8, 0, 41, 0, 0, 0, 1, 0, 8, 0, 58, 0, 0, 0, 1, 0, 8, 0, 63, 0, 0, 0, 1, 0, 8, 0, 64, 0, 0,
    0, 1, 0, 8, 0, 59, 0, 248, 255, 7, 0, 8, 0, 60, 0, 255, 255, 0, 0, 8, 0, 66, 0, 0, 0, 0, 0, 8,
    0, 32, 0, 1, 0, 0, 0, 5, 0, 33, 0, 1, 0, 0, 0, 8, 0, 35, 0, 0, 0, 0, 0, 8, 0, 47, 0, 0, 0, 0,
    0, 8, 0, 48, 0, 0, 0, 0, 0, 6, 0, 68, 0, 0, 0, 0, 0, 6, 0, 69, 0, 0, 0, 0, 0, 5, 0, 39, 0, 0,
    0, 0, 0, 10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 204, 0, 23,
    0, 29, 148, 6, 0, 0, 0, 0, 0, 29, 148, 6, 0, 0, 0, 0, 0, 141, 101, 223, 67, 3, 0, 0, 0, 141,
    101, 223, 67, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 7, 0, 29, 148, 6, 0, 29, 148, 6, 0,
    141, 101, 223, 67, 141, 101, 223, 67, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0,
    43, 0, 5, 0, 2, 0, 0, 0, 0, 0, 12, 0, 6, 0, 110, 111, 113, 117, 101, 117, 101, 0, 48, 3, 26, 0,
    140, 0, 2, 0, 136, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 39, 0, 0, 232, 3, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 160, 2, 10, 0, 8, 0, 1, 0, 0, 0, 0, 128, 20, 0,
    5, 0, 255, 255, 0, 0, 22, 0, 0, 0, 56, 65, 0, 0, 232, 3, 0, 0, 244, 0, 2, 0, 0, 0, 0, 0, 64, 0,
    0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 160, 15,
    0, 0, 232, 3, 0, 0, 255, 255, 255, 255, 128, 58, 9, 0, 128, 81, 1, 0, 3, 0, 0, 0, 88, 2, 0, 0,
    16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 96, 234, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0,
    0, 16, 39, 0, 0, 232, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 238, 54, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0,
    0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 52, 1, 3, 0, 38, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 128, 1, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 6, 0, 7, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 8, 0, 0, 0, 0, 0, 36, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 62, 128, 4, 0, 65, 128,
];

/// ifb0: kind "ifb", down (1468 bytes).
const LINK_IFB: &[u8] = &[
    0, 0, 1, 0, 2, 0, 0, 0, 130, 0, 0, 0, 0, 0, 0, 0, 9, 0, 3, 0, 105, 102, 98, 48, 0, 0, 0, 0, 8,
    0, 13, 0, 32, 0, 0, 0, 5, 0, 16, 0, 2, 0, 0, 0, 5, 0, 17, 0, 0, 0, 0, 0, 5, 0, 67, 0, 0, 0, 0,
    0, 8, 0, 4, 0, 220, 5, 0, 0, 8, 0, 50, 0, 0, 0, 0, 0, 8, 0, 51, 0, 0, 0, 0, 0, 8, 0, 27, 0, 0,
    0, 0, 0, 8, 0, 30, 0, 0, 0, 0, 0, 8, 0, 61, 0, 0, 0, 0, 0, 8, 0, 31, 0, 1, 0, 0, 0, 8, 0, 40,
    0, 255, 255, 0, 0, 8, 0, 41, 0, 0, 0, 1, 0, 8, 0, 58, 0, 0, 0, 1, 0, 8, 0, 63, 0, 0, 0, 1, 0,
    8, 0, 64, 0, 0, 0, 1, 0, 8, 0, 59, 0, 248, 255, 7, 0, 8, 0, 60, 0, 255, 255, 0, 0, 8, 0, 66, 0,
    0, 0, 0, 0, 8, 0, 32, 0, 1, 0, 0, 0, 5, 0, 33, 0, 1, 0, 0, 0, 8, 0, 35, 0, 0, 0, 0, 0, 8, 0,
    47, 0, 0, 0, 0, 0, 8, 0, 48, 0, 0, 0, 0, 0, 6, 0, 68, 0, 0, 0, 0, 0, 6, 0, 69, 0, 0, 0, 0, 0,
    5, 0, 39, 0, 0, 0, 0, 0, 10, 0, 1, 0, 114, 58, 199, 202, 245, 138, 0, 0, 10, 0, 2, 0, 255, 255,
    255, 255, 255, 255, 0, 0, 204, 0, 23, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 7, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 43, 0,
    5, 0, 2, 0, 0, 0, 0, 0, 12, 0, 18, 0, 8, 0, 1, 0, 105, 102, 98, 0, 9, 0, 6, 0, 110, 111, 111,
    112, 0, 0, 0, 0, 48, 3, 26, 0, 140, 0, 2, 0, 136, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 39, 0,
    0, 232, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 160, 2, 10, 0, 8,
    0, 1, 0, 0, 0, 0, 0, 20, 0, 5, 0, 255, 255, 0, 0, 19, 0, 0, 0, 144, 63, 0, 0, 232, 3, 0, 0,
    244, 0, 2, 0, 0, 0, 0, 0, 64, 0, 0, 0, 220, 5, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0,
    0, 0, 255, 255, 255, 255, 160, 15, 0, 0, 232, 3, 0, 0, 0, 0, 0, 0, 128, 58, 9, 0, 128, 81, 1,
    0, 3, 0, 0, 0, 88, 2, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 96,
    234, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255,
    255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 16, 39, 0, 0, 232, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 128, 238, 54, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 255, 255, 255, 255, 1, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 52, 1, 3, 0, 38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    60, 0, 6, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0,
    7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 8, 0, 0, 0, 0, 0, 36, 0, 14, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4,
    0, 62, 128, 4, 0, 65, 128,
];

/// eth0 (1496 bytes).
const LINK_ETH: &[u8] = &[
    0, 0, 1, 0, 4, 0, 0, 0, 67, 16, 1, 0, 0, 0, 0, 0, 9, 0, 3, 0, 101, 116, 104, 48, 0, 0, 0, 0, 8,
    0, 13, 0, 232, 3, 0, 0, 5, 0, 16, 0, 6, 0, 0, 0, 5, 0, 17, 0, 0, 0, 0, 0, 5, 0, 67, 0, 0, 0, 0,
    0, 8, 0, 4, 0, 120, 5, 0, 0, 8, 0, 50, 0, 68, 0, 0, 0, 8, 0, 51, 0, 255, 255, 0, 0, 8, 0, 27,
    0, 0, 0, 0, 0, 8, 0, 30, 0, 0, 0, 0, 0, 8, 0, 61, 0, 0, 0, 0, 0, 8, 0, 31, 0, 1, 0, 0, 0, 8, 0,
    40, 0, 255, 255, 0, 0, 8, 0, 41, 0, 0, 0, 1, 0, 8, 0, 58, 0, 0, 0, 1, 0, 8, 0, 63, 0, 0, 0, 1,
    0, 8, 0, 64, 0, 0, 0, 1, 0, 8, 0, 59, 0, 0, 0, 1, 0, 8, 0, 60, 0, 255, 255, 0, 0, 8, 0, 66, 0,
    0, 0, 0, 0, 8, 0, 32, 0, 1, 0, 0, 0, 5, 0, 33, 0, 1, 0, 0, 0, 8, 0, 35, 0, 2, 0, 0, 0, 8, 0,
    47, 0, 1, 0, 0, 0, 8, 0, 48, 0, 1, 0, 0, 0, 6, 0, 68, 0, 12, 0, 0, 0, 6, 0, 69, 0, 0, 0, 0, 0,
    5, 0, 39, 0, 0, 0, 0, 0, 10, 0, 1, 0, 2, 252, 0, 0, 0, 1, 0, 0, 10, 0, 2, 0, 255, 255, 255,
    255, 255, 255, 0, 0, 204, 0, 23, 0, 57, 45, 0, 0, 0, 0, 0, 0, 156, 26, 0, 0, 0, 0, 0, 0, 47,
    61, 91, 25, 0, 0, 0, 0, 77, 214, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 7, 0, 57,
    45, 0, 0, 156, 26, 0, 0, 47, 61, 91, 25, 77, 214, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 12, 0, 43, 0, 5, 0, 2, 0, 0, 0, 0, 0, 10, 0, 54, 0, 2, 252, 0, 0, 0, 1, 0, 0, 15, 0,
    6, 0, 112, 102, 105, 102, 111, 95, 102, 97, 115, 116, 0, 0, 48, 3, 26, 0, 140, 0, 2, 0, 136, 0,
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 39, 0, 0, 232, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 1, 0, 0, 0, 160, 2, 10, 0, 8, 0, 1, 0, 0, 0, 0, 128, 20, 0, 5, 0, 255, 255, 0, 0,
    22, 0, 0, 0, 208, 120, 0, 0, 232, 3, 0, 0, 244, 0, 2, 0, 0, 0, 0, 0, 64, 0, 0, 0, 120, 5, 0, 0,
    0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 160, 15, 0, 0, 232, 3, 0,
    0, 0, 0, 0, 0, 128, 58, 9, 0, 128, 81, 1, 0, 3, 0, 0, 0, 88, 2, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0,
    1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 96, 234, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 39, 0, 0, 232, 3, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 238, 54, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 255,
    255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 52, 1, 3, 0, 38, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 0, 0, 0,
    0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 120, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 6, 0, 7, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    5, 0, 8, 0, 0, 0, 0, 0, 36, 0, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 56, 0, 118, 105, 114, 116, 105, 111, 50, 0, 11,
    0, 57, 0, 118, 105, 114, 116, 105, 111, 0, 0, 4, 0, 62, 128, 4, 0, 65, 128,
];

/// 192.0.2.2/24 on eth0 (72 bytes).
const ADDR_V4: &[u8] = &[
    2, 24, 128, 0, 4, 0, 0, 0, 8, 0, 1, 0, 192, 0, 2, 2, 8, 0, 2, 0, 192, 0, 2, 2, 8, 0, 4, 0, 192,
    0, 2, 255, 9, 0, 3, 0, 101, 116, 104, 48, 0, 0, 0, 0, 8, 0, 8, 0, 128, 0, 0, 0, 20, 0, 6, 0,
    255, 255, 255, 255, 255, 255, 255, 255, 22, 0, 0, 0, 22, 0, 0, 0,
];

/// fd00::2/64 on eth0 (56 bytes).
const ADDR_V6: &[u8] = &[
    10, 64, 130, 0, 4, 0, 0, 0, 20, 0, 1, 0, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 20,
    0, 6, 0, 255, 255, 255, 255, 255, 255, 255, 255, 22, 0, 0, 0, 22, 0, 0, 0, 8, 0, 8, 0, 130, 0,
    0, 0,
];

/// default via 192.0.2.1 dev eth0 (36 bytes).
const ROUTE_DEFAULT: &[u8] = &[
    2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0, 8, 0, 15, 0, 254, 0, 0, 0, 8, 0, 5, 0, 192, 0, 2, 1, 8,
    0, 4, 0, 4, 0, 0, 0,
];

/// default via fd00::1 dev eth0 metric 1024 (100 bytes).
const ROUTE6_DEFAULT: &[u8] = &[
    10, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0, 8, 0, 15, 0, 254, 0, 0, 0, 8, 0, 6, 0, 0, 4, 0, 0, 20,
    0, 5, 0, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 8, 0, 4, 0, 4, 0, 0, 0, 36, 0, 12,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 5, 0, 20, 0, 0, 0, 0, 0,
];

/// 32766: from all lookup main (44 bytes).
const RULE_MAIN: &[u8] = &[
    2, 0, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0, 8, 0, 15, 0, 254, 0, 0, 0, 8, 0, 14, 0, 255, 255, 255,
    255, 5, 0, 21, 0, 2, 0, 0, 0, 8, 0, 6, 0, 254, 127, 0, 0,
];

fn wrap(kind: u16, payload: &[u8]) -> NetlinkMessage<RtnlRaw> {
    NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(RtnlRaw {
            kind,
            payload: payload.to_vec(),
        }),
    )
}

#[test]
fn link_kind_master_and_bridge_port_reports() {
    let mut m = LinkMessage::default();
    m.header.index = 7;
    m.attributes.push(LinkAttribute::IfName("ctrv0".into()));
    m.attributes.push(LinkAttribute::Controller(5));
    m.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Veth,
        )]));
    let l = link_of(&LinkMsg::parse(&emit(&m)).unwrap());
    assert_eq!((l.info_kind.as_deref(), l.master), (Some("veth"), Some(5)));
    assert!(matches!(
        &events_of(wrap(RTM_NEWLINK, &emit(&m)))[..],
        [Event::LinkChanged(l)] if l.info_kind.as_deref() == Some("veth")
    ));
    // The bridge's own report of its port: partial, and its DELLINK means "left the
    // bridge". Neither may replace or remove the link.
    m.header.interface_family = AddressFamily::Bridge;
    m.attributes
        .retain(|a| !matches!(a, LinkAttribute::LinkInfo(_)));
    assert!(events_of(wrap(RTM_NEWLINK, &emit(&m))).is_empty());
    assert!(events_of(wrap(RTM_DELLINK, &emit(&m))).is_empty());
    m.header.interface_family = AddressFamily::Unspec;
    assert_eq!(
        events_of(wrap(RTM_DELLINK, &emit(&m))),
        vec![Event::LinkRemoved { ifindex: 7 }]
    );
}

#[test]
fn the_nested_flag_is_not_part_of_the_type() {
    const NLA_F_NESTED: u16 = 0x8000;
    let mut info = AttrWriter::default();
    info.bytes(IFLA_INFO_KIND, b"veth\0");
    let mut w = AttrWriter::with_header(&[0; IFINFOMSG_LEN]);
    w.bytes(IFLA_LINKINFO | NLA_F_NESTED, &info.finish());
    let m = LinkMsg::parse(&w.finish()).unwrap();
    assert_eq!(m.kind.as_deref(), Some("veth"));
}

#[test]
fn non_unicast_routes_are_skipped_unread() {
    let mut h = [0u8; RTMSG_LEN];
    h[0] = AF_INET;
    h[7] = 2; // RTN_LOCAL
    let mut w = AttrWriter::with_header(&h);
    // An RTA_DST no IPv4 route has: not read, so no error.
    w.bytes(RTA_DST, &[1, 2, 3]);
    let m = RouteMsg::parse(&w.finish()).unwrap();
    assert!(routes_of(&m).is_empty());
}

#[test]
fn malformed_messages_are_typed_errors() {
    // Shorter than the fixed header.
    assert_eq!(
        LinkMsg::parse(&[0; 15]),
        Err(DecodeError::Truncated {
            what: "link message",
            len: 15,
            need: 16
        })
    );
    let attrs = |header_len: usize, kind: u16, value: &[u8]| {
        let mut w = AttrWriter::with_header(&vec![0u8; header_len]);
        w.bytes(kind, value);
        w.finish()
    };
    // An attribute whose length field says 2 (shorter than its own header).
    let mut b = attrs(IFADDRMSG_LEN, IFA_LOCAL, &[10, 0, 0, 1]);
    b[IFADDRMSG_LEN] = 2;
    assert_eq!(
        AddrMsg::parse(&b),
        Err(DecodeError::BadAttributes {
            what: "address message",
            offset: 0
        })
    );
    // ... or longer than what is left.
    b[IFADDRMSG_LEN] = 9;
    assert!(matches!(
        AddrMsg::parse(&b),
        Err(DecodeError::BadAttributes { .. })
    ));
    // A 5-byte address.
    assert_eq!(
        AddrMsg::parse(&attrs(IFADDRMSG_LEN, IFA_ADDRESS, &[1, 2, 3, 4, 5])),
        Err(DecodeError::BadLength {
            what: "address message",
            kind: IFA_ADDRESS,
            len: 5
        })
    );
    assert_eq!(
        LinkMsg::parse(&attrs(IFINFOMSG_LEN, IFLA_IFNAME, &[0xff, 0xfe, 0])),
        Err(DecodeError::NotUtf8 {
            what: "link message",
            kind: IFLA_IFNAME
        })
    );
    assert!(matches!(
        LinkMsg::parse(&attrs(IFINFOMSG_LEN, IFLA_MASTER, &[1, 0])),
        Err(DecodeError::BadLength {
            kind: IFLA_MASTER,
            ..
        })
    ));
    // An IPv6 destination in an IPv4 unicast route.
    let mut r = attrs(RTMSG_LEN, RTA_DST, &[0; 16]);
    r[0] = AF_INET;
    r[7] = RTN_UNICAST;
    assert!(matches!(
        RouteMsg::parse(&r),
        Err(DecodeError::BadLength {
            kind: RTA_DST,
            len: 16,
            ..
        })
    ));
    // A next hop shorter than struct rtnexthop.
    let mut r = attrs(RTMSG_LEN, RTA_MULTIPATH, &[4, 0, 0, 0]);
    r[0] = AF_INET;
    r[7] = RTN_UNICAST;
    assert!(matches!(
        RouteMsg::parse(&r),
        Err(DecodeError::BadLength {
            kind: RTA_MULTIPATH,
            ..
        })
    ));
    // A rule's protocol is one byte.
    let mut u = attrs(FIB_RULE_HDR_LEN, FRA_PROTOCOL, &[1, 2]);
    u[0] = AF_INET;
    assert!(matches!(
        RuleMsg::parse(&u),
        Err(DecodeError::BadLength {
            kind: FRA_PROTOCOL,
            ..
        })
    ));
    // The monitor skips such a message.
    assert!(events_of(wrap(RTM_NEWRULE, &u)).is_empty());
}

/// (message type, fixed header length, bytes) of every captured message.
const CAPTURED: [(u16, usize, &[u8]); 8] = [
    (RTM_NEWLINK, IFINFOMSG_LEN, LINK_LO),
    (RTM_NEWLINK, IFINFOMSG_LEN, LINK_IFB),
    (RTM_NEWLINK, IFINFOMSG_LEN, LINK_ETH),
    (RTM_NEWADDR, IFADDRMSG_LEN, ADDR_V4),
    (RTM_NEWADDR, IFADDRMSG_LEN, ADDR_V6),
    (RTM_NEWROUTE, RTMSG_LEN, ROUTE_DEFAULT),
    (RTM_NEWROUTE, RTMSG_LEN, ROUTE6_DEFAULT),
    (RTM_NEWRULE, FIB_RULE_HDR_LEN, RULE_MAIN),
];

/// Where the message may end: after its header and after each top-level attribute (or in
/// the padding behind it, which a last attribute need not have).
fn boundaries(header_len: usize, b: &[u8]) -> Vec<usize> {
    let mut at = vec![header_len];
    for a in Attrs::new(&b[header_len..], "fixture") {
        let a = a.unwrap();
        let end = a.value.as_ptr() as usize - b.as_ptr() as usize + a.value.len();
        at.extend(end..=(end + 3) & !3);
    }
    at
}

#[test]
fn captured_messages_read_as_netlink_packet_route_read_them() {
    for (kind, _, b) in CAPTURED {
        same_reading(kind, b).unwrap();
    }
}

#[test]
fn truncated_captured_messages_are_errors() {
    for (kind, header_len, b) in CAPTURED {
        let ends = boundaries(header_len, b);
        for cut in 0..b.len() {
            let got = Message::parse(kind, &b[..cut]);
            if cut < header_len {
                assert!(
                    matches!(got, Err(DecodeError::Truncated { need, .. }) if need == header_len),
                    "{kind} cut at {cut}: {got:?}"
                );
            } else if !ends.contains(&cut) {
                assert!(
                    got.is_err(),
                    "{kind} cut at {cut} inside an attribute: {got:?}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// Any bytes: a message or an error, never a panic, and the monitor survives them.
    #[test]
    fn arbitrary_bytes_never_panic(
        kind in select(vec![RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR, RTM_NEWROUTE,
                            RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE, RTM_NEWNEIGH, 99]),
        b in vec(any::<u8>(), 0..96),
    ) {
        let _ = Message::parse(kind, &b);
        let _ = events_of(wrap(kind, &b));
    }

    /// Captured messages with bytes changed: the same.
    #[test]
    fn damaged_captured_messages_never_panic(
        which in 0..CAPTURED.len(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (kind, _, b) = CAPTURED[which];
        let mut b = b.to_vec();
        for (at, v) in edits {
            let i = at.index(b.len());
            b[i] = v;
        }
        let _ = events_of(wrap(kind, &b));
    }
}

#[test]
fn captured_messages_say_what_ip_said() {
    let link = |b| match Message::parse(RTM_NEWLINK, b).unwrap() {
        Message::NewLink(m) => link_of(&m),
        other => panic!("{other:?}"),
    };
    let lo = link(LINK_LO);
    assert_eq!(
        (lo.ifindex, lo.name.as_str(), lo.loopback, lo.up),
        (1, "lo", true, true)
    );
    assert_eq!(lo.kind, Some(mptcp_agent_core::DeviceType::Loopback));
    let ifb = link(LINK_IFB);
    assert_eq!(
        (ifb.name.as_str(), ifb.info_kind.as_deref(), ifb.up),
        ("ifb0", Some("ifb"), false)
    );
    let eth = link(LINK_ETH);
    assert_eq!(
        (eth.ifindex, eth.name.as_str(), eth.up, eth.lower_up),
        (4, "eth0", true, true)
    );
    assert_eq!(eth.oper, mptcp_agent_core::OperState::Up);

    let a = AddrMsg::parse(ADDR_V4).unwrap();
    let a = address_of(&a).unwrap();
    assert_eq!(
        (a.ifindex, a.addr, a.prefix_len),
        (4, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 24)
    );
    let a = address_of(&AddrMsg::parse(ADDR_V6).unwrap()).unwrap();
    assert_eq!((a.addr, a.prefix_len), ("fd00::2".parse().unwrap(), 64));

    let r = routes_of(&RouteMsg::parse(ROUTE_DEFAULT).unwrap());
    assert_eq!(
        r,
        vec![Route {
            table: 254,
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
            gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            ifindex: Some(4),
            protocol: 3,
            metric: 0,
            scope: 0,
            prefsrc: None,
        }]
    );
    let r = routes_of(&RouteMsg::parse(ROUTE6_DEFAULT).unwrap());
    assert_eq!(
        (r[0].gateway, r[0].metric, r[0].table),
        (Some("fd00::1".parse().unwrap()), 1024, 254)
    );
    let u = rule_of(&RuleMsg::parse(RULE_MAIN).unwrap()).unwrap();
    assert_eq!(
        (u.priority, u.table, u.protocol, u.src),
        (32766, 254, 2, None)
    );
}
