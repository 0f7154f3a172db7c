// SPDX-License-Identifier: MIT OR Apache-2.0
//! Encode/decode tests against hand-built kernel messages, malformed input, and a
//! fixed-seed property test (proptest, shrinking): every decoder must return an error, never panic.

use std::{
    cell::Cell,
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use netlink_attr::{AttrWriter, Attrs};
use netlink_packet_generic::constants::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::{
    event::decode_datagram,
    message::{extack_message, GenlRaw, GenlRawExt},
    uapi::*,
    Capabilities, Cmd, Endpoint, EndpointFlags, EndpointKey, Error, EventFlags, EventKind,
    KernelGeneration, Limits, PmEvent, RawAttr,
};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 2));

fn ep(addr: IpAddr) -> Endpoint {
    Endpoint {
        id: 7,
        addr,
        port: Some(10443),
        flags: EndpointFlags::SIGNAL | EndpointFlags::BACKUP,
        ifindex: Some(3),
        unknown: Vec::new(),
    }
}

/// A GET_ADDR reply's attributes as the kernel builds them (mptcp_nl_fill_addr).
fn kernel_addr_reply(
    addr: IpAddr,
    id: u8,
    flags: u32,
    port: u16,
    ifindex: u32,
    extra: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut nest = AttrWriter::new();
    match addr {
        IpAddr::V4(a) => {
            nest.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET);
            nest.u8(MPTCP_PM_ADDR_ATTR_ID, id);
            nest.u32(MPTCP_PM_ADDR_ATTR_FLAGS, flags);
            nest.bytes(MPTCP_PM_ADDR_ATTR_ADDR4, &a.octets());
        }
        IpAddr::V6(a) => {
            nest.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET6);
            nest.u8(MPTCP_PM_ADDR_ATTR_ID, id);
            nest.u32(MPTCP_PM_ADDR_ATTR_FLAGS, flags);
            nest.bytes(MPTCP_PM_ADDR_ATTR_ADDR6, &a.octets());
        }
    }
    if port != 0 {
        nest.u16(MPTCP_PM_ADDR_ATTR_PORT, port);
    }
    if ifindex != 0 {
        nest.u32(MPTCP_PM_ADDR_ATTR_IF_IDX, ifindex);
    }
    for (k, v) in extra {
        nest.bytes(*k, v);
    }
    let mut top = AttrWriter::new();
    top.nested(MPTCP_PM_ATTR_ADDR, nest);
    top.finish()
}

fn nest_value(buf: &[u8]) -> Vec<u8> {
    let a = Attrs::new(buf, "test").next().unwrap().unwrap();
    assert_eq!(a.kind, MPTCP_PM_ATTR_ADDR);
    assert_ne!(
        a.raw_kind & netlink_packet_core::NLA_F_NESTED,
        0,
        "nest flag set"
    );
    a.value.to_vec()
}

#[test]
fn endpoint_roundtrip_v4_and_v6() {
    for addr in [V4, V6] {
        let e = ep(addr);
        let mut top = AttrWriter::new();
        top.nested(MPTCP_PM_ATTR_ADDR, e.encode());
        let decoded = Endpoint::decode_reply(&top.finish()).unwrap();
        assert_eq!(decoded, e);
    }
}

#[test]
fn endpoint_encode_bytes_v4() {
    let e = Endpoint::new(Ipv4Addr::new(192, 0, 2, 1).into(), EndpointFlags::SUBFLOW);
    let nest = e.encode().finish();
    #[rustfmt::skip]
    let want: Vec<u8> = [
        &[6u8, 0, 1, 0][..], &2u16.to_ne_bytes(), &[0, 0],      // family AF_INET
        &[8, 0, 3, 0], &[192, 0, 2, 1],                          // addr4
        &[8, 0, 6, 0], &2u32.to_ne_bytes(),                      // flags subflow
    ].concat();
    assert_eq!(nest, want, "id 0 is not sent, no port, no ifindex");
}

#[test]
fn endpoint_encode_id_port_ifindex_v6() {
    let nest = ep(V6).encode().finish();
    let mut seen = Vec::new();
    for a in Attrs::new(&nest, "t") {
        let a = a.unwrap();
        seen.push((a.kind, a.value.to_vec()));
    }
    assert_eq!(
        seen,
        vec![
            (MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET6.to_ne_bytes().to_vec()),
            (
                MPTCP_PM_ADDR_ATTR_ADDR6,
                match V6 {
                    IpAddr::V6(a) => a.octets().to_vec(),
                    _ => unreachable!(),
                }
            ),
            (MPTCP_PM_ADDR_ATTR_ID, vec![7]),
            // Port is host byte order on the endpoint API (nla_get_u16 + htons in the kernel).
            (MPTCP_PM_ADDR_ATTR_PORT, 10443u16.to_ne_bytes().to_vec()),
            (MPTCP_PM_ADDR_ATTR_FLAGS, 5u32.to_ne_bytes().to_vec()),
            (MPTCP_PM_ADDR_ATTR_IF_IDX, 3u32.to_ne_bytes().to_vec()),
        ]
    );
}

#[test]
fn endpoint_decode_kernel_reply_each_flag() {
    for (bits, flag) in [
        (1, EndpointFlags::SIGNAL),
        (2, EndpointFlags::SUBFLOW),
        (4, EndpointFlags::BACKUP),
        (8, EndpointFlags::FULLMESH),
        (16, EndpointFlags::IMPLICIT),
        (32, EndpointFlags::LAMINAR),
    ] {
        let buf = kernel_addr_reply(V4, 1, bits, 0, 0, &[]);
        let e = Endpoint::decode_reply(&buf).unwrap();
        assert_eq!(e.flags, flag);
        assert_eq!(e.port, None);
        assert_eq!(e.ifindex, None);
    }
}

#[test]
fn endpoint_keeps_unknown_attrs_and_flag_bits() {
    let buf = kernel_addr_reply(
        V6,
        200,
        0x8000_0002,
        80,
        9,
        &[(42, &[1, 2, 3]), (43 | 0x8000, &[])],
    );
    let e = Endpoint::decode_reply(&buf).unwrap();
    assert_eq!(e.id, 200);
    assert_eq!(e.addr, V6);
    assert_eq!(e.port, Some(80));
    assert_eq!(e.ifindex, Some(9));
    assert!(e.flags.contains(EndpointFlags::SUBFLOW));
    assert_eq!(e.flags.bits(), 0x8000_0002, "unknown bit kept");
    assert_eq!(
        e.flags.names(),
        vec!["subflow".to_string(), "0x80000000".to_string()]
    );
    assert_eq!(
        e.unknown,
        vec![
            RawAttr {
                kind: 42,
                value: vec![1, 2, 3]
            },
            RawAttr {
                kind: 43 | 0x8000,
                value: vec![]
            }
        ]
    );
    assert_eq!(e.unknown[1].number(), 43);
}

#[test]
fn endpoint_malformed_is_error() {
    let good = nest_value(&kernel_addr_reply(V4, 1, 1, 0, 0, &[]));
    // Bad address family.
    let mut w = AttrWriter::new();
    w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, 99);
    w.u8(MPTCP_PM_ADDR_ATTR_ID, 1);
    assert!(
        matches!(Endpoint::decode_nested(&w.finish()), Err(Error::Decode(m)) if m.contains("family 99"))
    );
    // Family without its address, v4 and v6.
    for fam in [AF_INET, AF_INET6] {
        let mut w = AttrWriter::new();
        w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, fam);
        w.u8(MPTCP_PM_ADDR_ATTR_ID, 1);
        assert!(Endpoint::decode_nested(&w.finish()).is_err());
    }
    // AF_INET6 family with a v4 address only.
    let mut w = AttrWriter::new();
    w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET6);
    w.u8(MPTCP_PM_ADDR_ATTR_ID, 1);
    w.bytes(MPTCP_PM_ADDR_ATTR_ADDR4, &[1, 2, 3, 4]);
    assert!(Endpoint::decode_nested(&w.finish()).is_err());
    // No family at all, no id.
    let mut w = AttrWriter::new();
    w.bytes(MPTCP_PM_ADDR_ATTR_ADDR4, &[1, 2, 3, 4]);
    assert!(Endpoint::decode_nested(&w.finish()).is_err());
    let mut w = AttrWriter::new();
    w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET);
    w.bytes(MPTCP_PM_ADDR_ATTR_ADDR4, &[1, 2, 3, 4]);
    assert!(
        matches!(Endpoint::decode_nested(&w.finish()), Err(Error::Decode(m)) if m.contains("id"))
    );
    // Wrong attribute lengths.
    for (kind, len) in [
        (MPTCP_PM_ADDR_ATTR_FAMILY, 4),
        (MPTCP_PM_ADDR_ATTR_ID, 2),
        (MPTCP_PM_ADDR_ATTR_ADDR4, 5),
        (MPTCP_PM_ADDR_ATTR_ADDR6, 4),
        (MPTCP_PM_ADDR_ATTR_PORT, 1),
        (MPTCP_PM_ADDR_ATTR_FLAGS, 2),
        (MPTCP_PM_ADDR_ATTR_IF_IDX, 8),
    ] {
        let mut buf = good.clone();
        let mut w = AttrWriter::new();
        w.bytes(kind, &vec![0u8; len]);
        buf.extend(w.finish());
        assert!(
            Endpoint::decode_nested(&buf).is_err(),
            "attr {kind} len {len}"
        );
    }
    // Truncated headers / lengths beyond the buffer / length below the header size.
    assert!(Endpoint::decode_nested(&good[..2]).is_err());
    assert!(Endpoint::decode_nested(&good[..good.len() - 1]).is_err());
    let mut bad = good.clone();
    bad[0] = 3; // nla_len < 4
    assert!(Endpoint::decode_nested(&bad).is_err());
    let mut bad = good;
    bad[0] = 200; // nla_len beyond the buffer
    assert!(Endpoint::decode_nested(&bad).is_err());
    // A reply without the address nest.
    assert!(Endpoint::decode_reply(&[]).is_err());
}

#[test]
fn endpoint_key_encoding() {
    let by_id = EndpointKey::Id(4).encode(EndpointFlags::BACKUP).finish();
    let parsed: Vec<_> = Attrs::new(&by_id, "t").map(|a| a.unwrap().kind).collect();
    assert_eq!(
        parsed,
        vec![MPTCP_PM_ADDR_ATTR_ID, MPTCP_PM_ADDR_ATTR_FLAGS]
    );
    let by_addr = EndpointKey::Addr {
        addr: V6,
        port: Some(5),
    }
    .encode(EndpointFlags::empty())
    .finish();
    let parsed: Vec<_> = Attrs::new(&by_addr, "t").map(|a| a.unwrap().kind).collect();
    assert_eq!(
        parsed,
        vec![
            MPTCP_PM_ADDR_ATTR_FAMILY,
            MPTCP_PM_ADDR_ATTR_ADDR6,
            MPTCP_PM_ADDR_ATTR_PORT,
            MPTCP_PM_ADDR_ATTR_FLAGS
        ]
    );
}

#[test]
fn limits_roundtrip_and_partial_set() {
    let l = Limits {
        subflows: Some(8),
        add_addr_accepted: Some(3),
    };
    assert_eq!(Limits::decode(&l.encode().finish()).unwrap(), l);
    let only = Limits {
        subflows: Some(1),
        add_addr_accepted: None,
    }
    .encode()
    .finish();
    let kinds: Vec<_> = Attrs::new(&only, "t").map(|a| a.unwrap().kind).collect();
    assert_eq!(
        kinds,
        vec![MPTCP_PM_ATTR_SUBFLOWS],
        "unset limit is not sent"
    );
    // A reply missing a limit, or with a short value, is an error.
    assert!(Limits::decode(&only).is_err());
    let mut w = AttrWriter::new();
    w.u32(MPTCP_PM_ATTR_SUBFLOWS, 1);
    w.u16(MPTCP_PM_ATTR_RCV_ADD_ADDRS, 1);
    assert!(Limits::decode(&w.finish()).is_err());
}

#[test]
fn attribute_errors_are_decode_errors_naming_the_reply() {
    let mut w = AttrWriter::new();
    w.u32(MPTCP_PM_ATTR_SUBFLOWS, 1);
    w.u16(MPTCP_PM_ATTR_RCV_ADD_ADDRS, 1);
    let want = netlink_attr::DecodeError::BadLength {
        what: "GET_LIMITS reply",
        kind: MPTCP_PM_ATTR_RCV_ADD_ADDRS,
        len: 2,
    };
    assert!(matches!(Limits::decode(&w.finish()), Err(Error::Decode(m)) if m == want.to_string()));
    let e = Error::from(netlink_attr::DecodeError::BadAttributes {
        what: "event",
        offset: 4,
    });
    assert!(matches!(e, Error::Decode(_)));
    assert_eq!(
        e.to_string(),
        "malformed netlink message: event: broken attribute list at byte 4"
    );
}

/// An event's attributes as the kernel puts them (ports big-endian).
fn full_event(v6: bool) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.u32(MPTCP_ATTR_TOKEN, 0xdead_beef);
    if v6 {
        w.u16(MPTCP_ATTR_FAMILY, AF_INET6);
        w.bytes(
            MPTCP_ATTR_SADDR6,
            &Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets(),
        );
        w.bytes(
            MPTCP_ATTR_DADDR6,
            &Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets(),
        );
    } else {
        w.u16(MPTCP_ATTR_FAMILY, AF_INET);
        w.bytes(MPTCP_ATTR_SADDR4, &[10, 0, 0, 1]);
        w.bytes(MPTCP_ATTR_DADDR4, &[10, 0, 0, 2]);
    }
    w.u8(MPTCP_ATTR_LOC_ID, 3);
    w.u8(MPTCP_ATTR_REM_ID, 4);
    w.bytes(MPTCP_ATTR_SPORT, &443u16.to_be_bytes());
    w.bytes(MPTCP_ATTR_DPORT, &50000u16.to_be_bytes());
    w.u8(MPTCP_ATTR_BACKUP, 1);
    w.u8(MPTCP_ATTR_ERROR, 104);
    w.u16(MPTCP_ATTR_FLAGS, 0x3);
    w.u32(MPTCP_ATTR_TIMEOUT, 2);
    w.u32(MPTCP_ATTR_IF_IDX, 12);
    w.u32(MPTCP_ATTR_RESET_REASON, 6);
    w.u32(MPTCP_ATTR_RESET_FLAGS, 1);
    w.u8(MPTCP_ATTR_SERVER_SIDE, 1);
    w.bytes(77, &[9, 9]);
    w.finish()
}

#[test]
fn every_event_kind_with_all_attributes() {
    let kinds = [
        (1, EventKind::Created),
        (2, EventKind::Established),
        (3, EventKind::Closed),
        (6, EventKind::Announced),
        (7, EventKind::Removed),
        (10, EventKind::SubEstablished),
        (11, EventKind::SubClosed),
        (13, EventKind::SubPriority),
        (15, EventKind::ListenerCreated),
        (16, EventKind::ListenerClosed),
        (99, EventKind::Other(99)),
    ];
    for v6 in [false, true] {
        let buf = full_event(v6);
        for (n, kind) in kinds {
            assert_eq!(EventKind::from_number(n), kind);
            assert_eq!(kind.number(), n);
            let ev = PmEvent::decode(n, &buf).unwrap();
            assert_eq!(ev.kind, kind);
            assert_eq!(ev.token, Some(0xdead_beef));
            assert_eq!(ev.family, Some(if v6 { AF_INET6 } else { AF_INET }));
            assert_eq!(ev.loc_id, Some(3));
            assert_eq!(ev.rem_id, Some(4));
            if v6 {
                assert_eq!(ev.saddr, Some("fd00::1".parse().unwrap()));
                assert_eq!(ev.daddr, Some("fd00::2".parse().unwrap()));
            } else {
                assert_eq!(ev.saddr, Some("10.0.0.1".parse().unwrap()));
                assert_eq!(ev.daddr, Some("10.0.0.2".parse().unwrap()));
            }
            assert_eq!(ev.sport, Some(443), "sport is big-endian on the wire");
            assert_eq!(ev.dport, Some(50000));
            assert_eq!(ev.backup, Some(true));
            assert_eq!(ev.error, Some(104));
            assert_eq!(
                ev.flags,
                Some(EventFlags::DENY_JOIN_ID0 | EventFlags::SERVER_SIDE)
            );
            assert_eq!(ev.timeout, Some(2));
            assert_eq!(ev.ifindex, Some(12));
            assert_eq!(ev.reset_reason, Some(6));
            assert_eq!(ev.reset_flags, Some(1));
            assert_eq!(ev.server_side, Some(true));
            assert!(ev.is_server_side());
            assert_eq!(
                ev.unknown,
                vec![RawAttr {
                    kind: 77,
                    value: vec![9, 9]
                }]
            );
            let line = ev.to_string();
            assert!(
                line.contains("token=deadbeef") && line.contains("attr77=[09, 09]"),
                "{line}"
            );
        }
    }
}

#[test]
fn event_minimal_and_flags() {
    let mut w = AttrWriter::new();
    w.u32(MPTCP_ATTR_TOKEN, 1);
    let ev = PmEvent::decode(3, &w.finish()).unwrap();
    assert_eq!(ev.kind, EventKind::Closed);
    assert_eq!(ev.token, Some(1));
    assert_eq!(ev.saddr, None);
    assert!(!ev.is_server_side());
    let mut w = AttrWriter::new();
    w.u16(MPTCP_ATTR_FLAGS, 0x8002);
    let ev = PmEvent::decode(1, &w.finish()).unwrap();
    assert!(ev.is_server_side(), "6.18 flag without the old attribute");
    assert_eq!(ev.flags.unwrap().bits(), 0x8002, "unknown bit kept");
}

#[test]
fn event_malformed_is_error() {
    // Address that does not match the family.
    let mut w = AttrWriter::new();
    w.u16(MPTCP_ATTR_FAMILY, AF_INET6);
    w.bytes(MPTCP_ATTR_SADDR4, &[1, 2, 3, 4]);
    assert!(PmEvent::decode(1, &w.finish()).is_err());
    // Unknown family.
    let mut w = AttrWriter::new();
    w.u16(MPTCP_ATTR_FAMILY, 1);
    assert!(PmEvent::decode(1, &w.finish()).is_err());
    // Each attribute with a wrong length.
    for kind in 1..=18u16 {
        let mut w = AttrWriter::new();
        w.bytes(kind, &[0; 3]);
        assert!(PmEvent::decode(10, &w.finish()).is_err(), "attr {kind}");
    }
    let good = full_event(false);
    for cut in 1..good.len() {
        // Cutting inside an attribute is an error; cutting at a boundary is a shorter event.
        let _ = PmEvent::decode(10, &good[..cut]);
    }
    assert!(PmEvent::decode(10, &good[..3]).is_err());
}

fn nlmsg(msg_type: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let len = 16 + payload.len();
    let mut v = Vec::new();
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(&msg_type.to_ne_bytes());
    v.extend_from_slice(&flags.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

#[test]
fn datagram_with_several_events_and_noise() {
    let fam = 28;
    let mut dgram = Vec::new();
    let ev = GenlRaw::new(fam, 1, 1, full_event(false)).payload;
    dgram.extend(nlmsg(fam, 0, &ev));
    dgram.extend(nlmsg(99, 0, &[0; 8])); // another family: skipped
    dgram.extend(nlmsg(fam, 0, &[11, 1])); // genl header truncated: error item
    dgram.extend(nlmsg(fam, 0, &GenlRaw::new(fam, 3, 1, vec![]).payload));
    let mut out = VecDeque::new();
    decode_datagram(fam, &dgram, &mut out);
    let kinds: Vec<_> = out
        .iter()
        .map(|r| r.as_ref().map(|e| e.kind).map_err(|_| ()))
        .collect();
    assert_eq!(
        kinds,
        vec![Ok(EventKind::Created), Err(()), Ok(EventKind::Closed)]
    );
    // Truncated datagram.
    let mut out = VecDeque::new();
    decode_datagram(fam, &dgram[..10], &mut out);
    assert!(matches!(out.pop_front(), Some(Err(Error::Decode(_)))));
    // Overrun marker.
    let mut out = VecDeque::new();
    decode_datagram(
        fam,
        &nlmsg(netlink_packet_core::NLMSG_OVERRUN, 0, &[]),
        &mut out,
    );
    assert!(matches!(out.pop_front(), Some(Err(Error::EventsLost))));
}

/// A GETFAMILY reply like the kernel's ctrl_fill_info.
fn family_reply(ops: &[(u32, u32)], groups: &[(&str, u32)]) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.bytes(CTRL_ATTR_FAMILY_NAME, b"mptcp_pm\0");
    w.u16(CTRL_ATTR_FAMILY_ID, 28);
    w.u32(CTRL_ATTR_VERSION, 1);
    w.u32(CTRL_ATTR_HDRSIZE, 0);
    w.u32(CTRL_ATTR_MAXATTR, 6);
    let mut opsw = AttrWriter::new();
    for (i, (id, flags)) in ops.iter().enumerate() {
        let mut op = AttrWriter::new();
        op.u32(CTRL_ATTR_OP_ID, *id);
        op.u32(CTRL_ATTR_OP_FLAGS, *flags);
        opsw.nested(i as u16 + 1, op);
    }
    w.nested(CTRL_ATTR_OPS, opsw);
    if !groups.is_empty() {
        let mut gw = AttrWriter::new();
        for (i, (name, id)) in groups.iter().enumerate() {
            let mut g = AttrWriter::new();
            let mut n = name.as_bytes().to_vec();
            n.push(0);
            g.bytes(CTRL_ATTR_MCAST_GRP_NAME, &n);
            g.u32(CTRL_ATTR_MCAST_GRP_ID, *id);
            gw.nested(i as u16 + 1, g);
        }
        w.nested(CTRL_ATTR_MCAST_GROUPS, gw);
    }
    w.bytes(200, &[1]); // a future ctrl attribute: ignored
    w.finish()
}

fn ops_upto(last: u32) -> Vec<(u32, u32)> {
    (1..=last)
        .map(|id| (id, GENL_ADMIN_PERM | GENL_CMD_CAP_DO))
        .collect()
}

#[test]
fn capabilities_tell_generations_apart() {
    // 5.10: six commands, only the cmds group, only `enabled`.
    let mut c =
        Capabilities::decode_family(&family_reply(&ops_upto(6), &[("mptcp_pm_cmds", 8)])).unwrap();
    c.sysctls.insert("enabled".into());
    assert_eq!(c.family_id, 28);
    assert_eq!(c.version, 1);
    assert_eq!(c.max_attr, 6);
    assert!(c.supports(Cmd::GetLimits) && !c.supports(Cmd::SetFlags));
    assert!(!c.has_events());
    assert_eq!(c.generation(), KernelGeneration::Mainline510);
    assert_eq!(c.needs_admin(Cmd::AddAddr), Some(true));
    assert_eq!(c.needs_admin(Cmd::SetFlags), None);
    // 5.12–5.18 / 5.10 + backport.
    let groups = [("mptcp_pm_cmds", 8), ("mptcp_pm_events", 9)];
    let c = Capabilities::decode_family(&family_reply(&ops_upto(7), &groups)).unwrap();
    assert_eq!(c.generation(), KernelGeneration::Events512);
    assert_eq!(c.events_group(), Some(9));
    // 5.19+.
    let mut ops = ops_upto(11);
    ops.push((12, 0)); // a future command
    let c = Capabilities::decode_family(&family_reply(&ops, &groups)).unwrap();
    assert_eq!(c.generation(), KernelGeneration::UserspacePm519);
    assert_eq!(c.commands().last(), Some(&Cmd::Other(12)));
    // SET_FLAGS without events (a partial backport) is not counted as 5.12.
    let c = Capabilities::decode_family(&family_reply(&ops_upto(7), &groups[..1])).unwrap();
    assert_eq!(c.generation(), KernelGeneration::Mainline510);
}

#[test]
fn capabilities_malformed_is_error() {
    let good = family_reply(&ops_upto(7), &[("mptcp_pm_events", 9)]);
    // Cutting only padding is tolerated (as the kernel does); cutting into a value is not.
    assert!(Capabilities::decode_family(&good[..good.len() - 2]).is_ok());
    assert!(Capabilities::decode_family(&good[..good.len() - 4]).is_err());
    let mut w = AttrWriter::new();
    w.u32(CTRL_ATTR_VERSION, 1);
    assert!(
        Capabilities::decode_family(&w.finish()).is_err(),
        "no family id"
    );
    let mut w = AttrWriter::new();
    w.bytes(CTRL_ATTR_FAMILY_NAME, b"nl80211\0");
    w.u16(CTRL_ATTR_FAMILY_ID, 28);
    assert!(
        Capabilities::decode_family(&w.finish()).is_err(),
        "other family"
    );
    let mut w = AttrWriter::new();
    w.u16(CTRL_ATTR_FAMILY_ID, 28);
    let mut gw = AttrWriter::new();
    let mut g = AttrWriter::new();
    g.u32(CTRL_ATTR_MCAST_GRP_ID, 9);
    gw.nested(1, g);
    w.nested(CTRL_ATTR_MCAST_GROUPS, gw);
    assert!(
        Capabilities::decode_family(&w.finish()).is_err(),
        "group without a name"
    );
}

#[test]
fn cmd_numbers_roundtrip() {
    for (i, c) in Cmd::KNOWN.iter().enumerate() {
        assert_eq!(usize::from(c.number()), i + 1);
        assert_eq!(Cmd::from_number(c.number()), *c);
    }
    assert_eq!(Cmd::from_number(0), Cmd::Other(0));
    assert_eq!(Cmd::SetFlags.to_string(), "MPTCP_PM_CMD_SET_FLAGS");
}

/// The bytes after the error code of an NLMSG_ERROR with an extack message.
fn error_tail(capped: bool, msg: &str) -> (u16, Vec<u8>) {
    let request_payload = [5u8, 1, 0, 0, 8, 0, 3, 0, 9, 0, 0, 0];
    let mut tail = nlmsg(28, 5, &request_payload);
    if capped {
        tail.truncate(16);
    }
    let mut w = AttrWriter::new();
    let mut m = msg.as_bytes().to_vec();
    m.push(0);
    w.bytes(NLMSGERR_ATTR_MSG, &m);
    w.u32(2, 20); // NLMSGERR_ATTR_OFFS
    tail.extend(w.finish());
    let flags = NLM_F_ACK_TLVS | if capped { NLM_F_CAPPED } else { 0 };
    (flags, tail)
}

#[test]
fn extack_message_capped_and_uncapped() {
    for capped in [true, false] {
        let (flags, tail) = error_tail(capped, "limit greater than maximum (8)");
        assert_eq!(
            extack_message(flags, &tail).as_deref(),
            Some("limit greater than maximum (8)")
        );
    }
    let (flags, tail) = error_tail(true, "x");
    assert_eq!(
        extack_message(flags & !NLM_F_ACK_TLVS, &tail),
        None,
        "no TLVs flag"
    );
    assert_eq!(extack_message(flags, &tail[..8]), None);
    assert_eq!(extack_message(flags, &[0xff; 40]), None);
    // Uncapped with an echoed length that points beyond the buffer.
    let mut bogus = vec![0u8; 20];
    bogus[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(extack_message(NLM_F_ACK_TLVS, &bogus), None);
}

#[test]
fn genl_header_truncated() {
    let raw = GenlRaw {
        kind: 28,
        payload: vec![1, 1],
    };
    assert!(matches!(raw.split(), Err(Error::Decode(_))));
    let raw = GenlRaw::new(28, 6, 1, vec![]);
    assert_eq!(raw.split().unwrap(), (6, &[][..]));
}

/// One change to a well-formed reply: what a broken or hostile kernel could send instead.
/// Positions are [`Index`]es, scaled to the bytes there are when the change is made.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Set(Index, u8),
    /// Attribute length fields are the interesting bytes.
    LengthField(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), select(vec![0u8, 1, 3, 4, 5, 0xff]))
            .prop_map(|(i, b)| Mutation::LengthField(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Remove),
        vec(any::<u8>(), 0..8).prop_map(Mutation::Append),
    ]
}

fn mutate(seed: &[u8], changes: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in changes {
        match m {
            Mutation::Truncate(i) => v.truncate(i.index(v.len() + 1)),
            Mutation::Set(i, b) if !v.is_empty() => {
                let at = i.index(v.len());
                v[at] = *b;
            }
            Mutation::LengthField(i, b) if !v.is_empty() => {
                let at = i.index(v.len()) & !3;
                v[at] = *b;
            }
            Mutation::Insert(i, b) => v.insert(i.index(v.len() + 1), *b),
            Mutation::Remove(i) if !v.is_empty() => {
                v.remove(i.index(v.len()));
            }
            Mutation::Append(bytes) => v.extend_from_slice(bytes),
            _ => {}
        }
    }
    v
}

#[test]
fn mutated_and_truncated_input_never_panics() {
    let groups = [("mptcp_pm_cmds", 8), ("mptcp_pm_events", 9)];
    let seeds: Vec<Vec<u8>> = vec![
        kernel_addr_reply(V4, 1, 3, 80, 2, &[(9, &[1])]),
        kernel_addr_reply(V6, 255, 0x1f, 0, 0, &[]),
        Limits {
            subflows: Some(2),
            add_addr_accepted: Some(8),
        }
        .encode()
        .finish(),
        full_event(false),
        full_event(true),
        family_reply(&ops_upto(11), &groups),
        error_tail(false, "duplicate").1,
    ];
    let mut dgram = Vec::new();
    for kind in [1u8, 10, 11] {
        dgram.extend(nlmsg(
            28,
            0,
            &GenlRaw::new(28, kind, 1, full_event(kind == 10)).payload,
        ));
    }
    // A fixed-seed runner: the same cases on every run; a failure is shrunk and printed.
    let config = Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let decoded = Cell::new(0usize);
    let cases = Cell::new(0usize);
    let input = (
        0..seeds.len(),
        vec(mutation(), 1..=5),
        vec(mutation(), 1..=5),
        any::<u8>(),
        any::<u16>(),
    );
    let outcome = runner.run(&input, |(which, changes, dgram_changes, kind, flags)| {
        let input = mutate(&seeds[which], &changes);
        let mut ok = usize::from(Endpoint::decode_reply(&input).is_ok());
        ok += usize::from(Endpoint::decode_nested(&input).is_ok());
        ok += usize::from(Limits::decode(&input).is_ok());
        ok += usize::from(PmEvent::decode(kind, &input).is_ok());
        ok += usize::from(Capabilities::decode_family(&input).is_ok());
        let _ = extack_message(flags, &input);
        let mut out = VecDeque::new();
        decode_datagram(28, &mutate(&dgram, &dgram_changes), &mut out);
        decode_datagram(28, &input, &mut out);
        decoded.set(decoded.get() + ok);
        cases.set(cases.get() + 1);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("a decoder panicked; smallest input found: {e}");
    }
    let decoded_ok = decoded.get();
    let mut runs = cases.get();
    // Every exact truncation of every seed, too.
    for seed in seeds.iter().chain(std::iter::once(&dgram)) {
        for cut in 0..seed.len() {
            let s = &seed[..cut];
            let _ = Endpoint::decode_reply(s);
            let _ = Endpoint::decode_nested(s);
            let _ = Limits::decode(s);
            let _ = PmEvent::decode(10, s);
            let _ = Capabilities::decode_family(s);
            let _ = extack_message(NLM_F_ACK_TLVS, s);
            decode_datagram(28, s, &mut VecDeque::new());
            runs += 1;
        }
    }
    assert!(runs > 4000);
    // The mutations must not be so destructive that nothing ever decodes.
    assert!(decoded_ok > 100, "only {decoded_ok} mutated inputs decoded");
}

#[test]
fn commands_missing_from_the_family_are_not_sent() {
    // A 5.10 family: no SET_FLAGS, no events group.
    let caps =
        Capabilities::decode_family(&family_reply(&ops_upto(6), &[("mptcp_pm_cmds", 8)])).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pm = crate::PmHandle::with_capabilities(caps).unwrap();
        let err = pm
            .set_endpoint_flags(EndpointKey::Id(1), EndpointFlags::BACKUP)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unsupported {
                    command: Cmd::SetFlags
                }
            ),
            "{err:?}"
        );
        assert!(matches!(pm.subscribe_events(), Err(Error::NoEventsGroup)));
        // Id 0 is refused before sending, too.
        assert!(matches!(
            pm.del_endpoint(0).await,
            Err(Error::InvalidRequest(_))
        ));
    });
}
