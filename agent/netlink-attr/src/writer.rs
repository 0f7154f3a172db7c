// SPDX-License-Identifier: MIT OR Apache-2.0
//! Building attribute lists the way netlink-packet-route and iproute2 emit them.

use std::net::IpAddr;

use netlink_packet_core::NLA_F_NESTED;

/// Appends attributes to a buffer: native-endian header, the value, zero padding to 4 bytes.
#[derive(Debug, Default)]
pub struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer whose buffer starts with a fixed header (rtnetlink's ifinfomsg, rtmsg, ...).
    /// Padding counts from the buffer's start: netlink headers are multiples of 4 bytes.
    pub fn with_header(header: &[u8]) -> Self {
        AttrWriter {
            buf: header.to_vec(),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        // Values here are addresses, integers and nests of a few of them. Were one ever
        // too long, the saturated length makes the kernel reject the message.
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        let padded = (self.buf.len() + 3) & !3;
        self.buf.resize(padded, 0);
        self
    }

    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.bytes(kind, &[v])
    }

    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.bytes(kind, &v.to_ne_bytes())
    }

    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.bytes(kind, &v.to_ne_bytes())
    }

    /// 4 bytes for IPv4, 16 for IPv6.
    pub fn ip(&mut self, kind: u16, ip: IpAddr) -> &mut Self {
        match ip {
            IpAddr::V4(v4) => self.bytes(kind, &v4.octets()),
            IpAddr::V6(v6) => self.bytes(kind, &v6.octets()),
        }
    }

    /// A nested attribute (`NLA_F_NESTED` set, as iproute2 does).
    pub fn nested(&mut self, kind: u16, inner: AttrWriter) -> &mut Self {
        self.bytes(kind | NLA_F_NESTED, &inner.finish())
    }
}
