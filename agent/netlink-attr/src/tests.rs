// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading, writing and the raw message, against hand-built bytes and netlink-packet-core.

use std::net::IpAddr;

use netlink_packet_core::{
    DefaultNla, Emitable, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NLA_F_NET_BYTEORDER,
};

use super::*;

fn one(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.bytes(kind, value);
    w.finish()
}

fn first(buf: &[u8]) -> Attr<'_> {
    Attrs::new(buf, "t").next().unwrap().unwrap()
}

#[test]
fn writer_pads_like_netlink_packet_core() {
    for (kind, len) in [
        (1u16, 0usize),
        (2, 1),
        (3, 2),
        (4, 3),
        (5, 4),
        (6, 5),
        (7, 16),
    ] {
        let value: Vec<u8> = (1..=len as u8).collect();
        let nla = DefaultNla::new(kind | NLA_F_NESTED, value.clone());
        let mut want = vec![0xaa; nla.buffer_len()];
        nla.emit(&mut want);
        assert_eq!(
            one(kind | NLA_F_NESTED, &value),
            want,
            "value of {len} bytes"
        );
        assert_eq!(want.len() % 4, 0);
    }
}

#[test]
fn writer_typed_values_header_and_nest() {
    let mut inner = AttrWriter::new();
    inner.u8(1, 7).u16(2, 0x0102);
    let mut w = AttrWriter::with_header(&[9, 9, 9, 9]);
    w.u32(3, 0x0a0b_0c0d)
        .ip(4, "10.0.0.1".parse().unwrap())
        .ip(5, "2001:db8::1".parse().unwrap())
        .nested(6, inner);
    let b = w.finish();
    assert_eq!(&b[..4], &[9, 9, 9, 9], "the header is kept as is");
    let got: Vec<(u16, u16, Vec<u8>)> = Attrs::new(&b[4..], "t")
        .map(|a| a.map(|a| (a.kind, a.raw_kind, a.value.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    let mut nest = 5u16.to_ne_bytes().to_vec();
    nest.extend(1u16.to_ne_bytes());
    nest.extend([7, 0, 0, 0]);
    nest.extend(6u16.to_ne_bytes());
    nest.extend(2u16.to_ne_bytes());
    nest.extend(0x0102u16.to_ne_bytes());
    nest.extend([0, 0]);
    assert_eq!(
        got,
        vec![
            (3, 3, 0x0a0b_0c0du32.to_ne_bytes().to_vec()),
            (4, 4, vec![10, 0, 0, 1]),
            (
                5,
                5,
                "2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets()
                    .to_vec()
            ),
            (6, 6 | NLA_F_NESTED, nest),
        ]
    );
}

#[test]
fn flag_bits_are_not_part_of_the_kind_but_are_kept() {
    let b = one(5 | NLA_F_NESTED | NLA_F_NET_BYTEORDER, &[1, 2]);
    let a = first(&b);
    assert_eq!(a.kind, 5);
    assert_eq!(a.raw_kind, 5 | NLA_F_NESTED | NLA_F_NET_BYTEORDER);
    let kept = a.keep();
    assert_eq!(kept.value, vec![1, 2]);
    assert_eq!(kept.number(), 5);
    assert_eq!(kept.kind, a.raw_kind);
}

#[test]
fn getters_take_exact_lengths() {
    let bad = |kind: u16, len: usize| DecodeError::BadLength {
        what: "t",
        kind,
        len,
    };
    let b = one(1, &[7]);
    assert_eq!(first(&b).u8(), Ok(7));
    assert_eq!(first(&b).u16(), Err(bad(1, 1)));
    let b = one(2, &0x1234u16.to_ne_bytes());
    assert_eq!(first(&b).u16(), Ok(0x1234));
    assert_eq!(first(&b).u8(), Err(bad(2, 2)));
    let b = one(3, &[0x01, 0xbb]);
    assert_eq!(first(&b).be16(), Ok(443));
    let b = one(4, &7u32.to_ne_bytes());
    assert_eq!(first(&b).u32(), Ok(7));
    assert_eq!(first(&b).be16(), Err(bad(4, 4)));
    assert_eq!(first(&b).v6(), Err(bad(4, 4)));
    assert_eq!(first(&one(4, &[1, 2, 3])).u32(), Err(bad(4, 3)));
    assert_eq!(first(&one(4, &[0; 8])).u32(), Err(bad(4, 8)));
}

#[test]
fn addresses_by_length_and_by_family() {
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let v6: IpAddr = "2001:db8::2".parse().unwrap();
    let mut w = AttrWriter::new();
    w.ip(1, v4).ip(2, v6).bytes(3, &[1, 2, 3, 4, 5]);
    let b = w.finish();
    let a: Vec<Attr> = Attrs::new(&b, "t").map(Result::unwrap).collect();
    assert_eq!(
        (a[0].ip(), a[0].v4(), a[0].ip_of_family(AF_INET)),
        (Ok(v4), Ok(v4), Ok(v4))
    );
    assert_eq!(
        (a[1].ip(), a[1].v6(), a[1].ip_of_family(AF_INET6)),
        (Ok(v6), Ok(v6), Ok(v6))
    );
    let bad = |kind: u16, len: usize| {
        Err(DecodeError::BadLength {
            what: "t",
            kind,
            len,
        })
    };
    assert_eq!(a[0].ip_of_family(AF_INET6), bad(1, 4));
    assert_eq!(a[1].ip_of_family(AF_INET), bad(2, 16));
    assert_eq!(a[0].ip_of_family(7), bad(1, 4), "not an IP family");
    assert_eq!(a[2].ip(), bad(3, 5));
    assert_eq!(ip_of_len(&[0; 3]), None);
}

#[test]
fn strings_and_c_strings() {
    let s = |v: &[u8]| {
        let b = one(9, v);
        let a = first(&b);
        (a.string(), a.c_string())
    };
    let ok = |x: &str| Ok(x.to_string());
    assert_eq!(s(b"eth0\0"), (ok("eth0"), ok("eth0")));
    assert_eq!(s(b"eth0"), (ok("eth0"), ok("eth0")), "no NUL");
    assert_eq!(s(b""), (ok(""), ok("")));
    // string() drops one trailing NUL only; c_string() stops at the first.
    assert_eq!(s(b"a\0b\0"), (ok("a\0b"), ok("a")));
    let not_utf8 = Err(DecodeError::NotUtf8 { what: "t", kind: 9 });
    assert_eq!(s(&[0xff, 0xfe, 0]), (not_utf8.clone(), not_utf8));
}

#[test]
fn broken_lists_end_in_one_error_at_their_offset() {
    let mut good = AttrWriter::new();
    good.u8(1, 1).u32(2, 2);
    let good = good.finish();
    let broken = |offset| DecodeError::BadAttributes { what: "t", offset };
    let read = |b: &[u8]| {
        Attrs::new(b, "t")
            .map(|a| a.map(|a| a.kind))
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&good), vec![Ok(1), Ok(2)]);
    assert_eq!(read(&[]), vec![]);
    // A header cut short, a length below the header size, one beyond the buffer.
    assert_eq!(read(&good[..2]), vec![Err(broken(0))]);
    assert_eq!(read(&good[..10]), vec![Ok(1), Err(broken(8))]);
    let mut b = good.clone();
    b[8] = 3;
    assert_eq!(read(&b), vec![Ok(1), Err(broken(8))]);
    let mut b = good.clone();
    b[0] = 200;
    assert_eq!(read(&b), vec![Err(broken(0))]);
    assert_eq!(read(&good[..13]), vec![Ok(1), Err(broken(8))]);
    // The last attribute's padding may be missing, as the kernel allows.
    let unpadded = &one(1, &[5])[..5];
    assert_eq!(read(unpadded), vec![Ok(1)]);
}

#[test]
fn nested_attributes_keep_the_context() {
    let mut inner = AttrWriter::new();
    inner.bytes(1, &[1, 2, 3]);
    let mut w = AttrWriter::new();
    w.nested(2, inner);
    let b = w.finish();
    let outer = Attrs::new(&b, "link message").next().unwrap().unwrap();
    let a = outer.nested().next().unwrap().unwrap();
    assert_eq!(
        a.u32(),
        Err(DecodeError::BadLength {
            what: "link message",
            kind: 1,
            len: 3
        })
    );
}

#[test]
fn fixed_headers() {
    let mut w = AttrWriter::with_header(&[1, 0, 2, 0, 3, 0, 0, 0]);
    w.u8(4, 4);
    let b = w.finish();
    let (h, attrs) = header(&b, 8, "m").unwrap();
    assert_eq!((u16_at(h, 0), u16_at(h, 2), u32_at(h, 4)), (1, 2, 3));
    assert_eq!(attrs.map(|a| a.unwrap().kind).collect::<Vec<_>>(), vec![4]);
    assert_eq!(split_header(&b, 8, "m").unwrap().1, &b[8..]);
    assert!(header(&b[..8], 8, "m").unwrap().1.next().is_none());
    let truncated = DecodeError::Truncated {
        what: "m",
        len: 7,
        need: 8,
    };
    assert_eq!(split_header(&b[..7], 8, "m").err(), Some(truncated.clone()));
    assert_eq!(header(&b[..7], 8, "m").err(), Some(truncated));
}

#[test]
fn errors_say_what_and_where() {
    let e = DecodeError::BadLength {
        what: "route message",
        kind: 5,
        len: 3,
    };
    assert_eq!(
        e.to_string(),
        "route message: attribute 5 has a bad length (3 bytes)"
    );
    let e = DecodeError::BadAttributes {
        what: "event",
        offset: 8,
    };
    assert_eq!(e.to_string(), "event: broken attribute list at byte 8");
}

#[test]
fn raw_messages_round_trip_through_netlink_packet_core() {
    let msg = RawMessage {
        kind: 28,
        payload: vec![3, 1, 0, 0, 8, 0, 1, 0, 1, 2, 3, 4],
    };
    let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg.clone()));
    nl.finalize();
    let mut bytes = vec![0; nl.buffer_len()];
    nl.serialize(&mut bytes);
    assert_eq!(bytes.len(), 16 + msg.payload.len());
    assert_eq!(
        u16_at(&bytes, 4),
        28,
        "the kind is the netlink message type"
    );
    assert_eq!(&bytes[16..], &msg.payload[..]);
    let buf = NetlinkBuffer::new_checked(&bytes[..]).unwrap();
    let mut header = NetlinkHeader::default();
    header.message_type = 28;
    assert_eq!(RawMessage::deserialize(&header, buf.payload()), Ok(msg));
    // Any payload is kept: the client, not netlink-proto, decides it is malformed.
    let odd = RawMessage::deserialize(&header, &[1]).unwrap();
    assert_eq!(odd.payload, vec![1]);
}
