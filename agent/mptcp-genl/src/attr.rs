// SPDX-License-Identifier: MIT OR Apache-2.0
//! Netlink attribute (TLV) reading and writing with exact length checks: a kernel
//! reply of the wrong shape becomes [`Error::Decode`], never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NlaBuffer, NlasIterator, NLA_F_NESTED, NLA_TYPE_MASK};

use crate::{Error, Result};

/// An attribute this crate does not interpret, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttr {
    /// Attribute type as on the wire, including the `NLA_F_NESTED` /
    /// `NLA_F_NET_BYTEORDER` bits.
    pub kind: u16,
    /// Value without header or padding.
    pub value: Vec<u8>,
}

impl RawAttr {
    /// Type number without the flag bits.
    pub fn number(&self) -> u16 {
        self.kind & NLA_TYPE_MASK
    }
}

/// One attribute seen while iterating a buffer.
pub(crate) struct Attr<'a> {
    pub number: u16,
    pub raw_kind: u16,
    pub value: &'a [u8],
}

impl Attr<'_> {
    pub fn keep(&self) -> RawAttr {
        RawAttr {
            kind: self.raw_kind,
            value: self.value.to_vec(),
        }
    }
}

/// Iterate the attributes of `buf`, failing on the first malformed header.
pub(crate) fn attrs<'a>(
    buf: &'a [u8],
    what: &'static str,
) -> impl Iterator<Item = Result<Attr<'a>>> + 'a {
    NlasIterator::new(buf).map(move |nla| {
        let nla: NlaBuffer<&[u8]> = nla.map_err(|e| Error::decode(format!("{what}: {e}")))?;
        let raw = raw_kind(&nla);
        // new_checked guarantees 4 <= length <= buffer length.
        let len = usize::from(nla.length());
        let whole: &'a [u8] = nla.into_inner();
        Ok(Attr {
            number: raw & NLA_TYPE_MASK,
            raw_kind: raw,
            value: whole.get(4..len).unwrap_or(&[]),
        })
    })
}

fn raw_kind(nla: &NlaBuffer<&[u8]>) -> u16 {
    let mut kind = nla.kind();
    if nla.nested_flag() {
        kind |= NLA_F_NESTED;
    }
    if nla.network_byte_order_flag() {
        kind |= netlink_packet_core::NLA_F_NET_BYTEORDER;
    }
    kind
}

fn exact<'a, const N: usize>(value: &'a [u8], what: &str) -> Result<&'a [u8; N]> {
    value
        .try_into()
        .map_err(|_| Error::decode(format!("{what}: expected {N} bytes, got {}", value.len())))
}

pub(crate) fn get_u8(value: &[u8], what: &str) -> Result<u8> {
    Ok(exact::<1>(value, what)?[0])
}

pub(crate) fn get_u16(value: &[u8], what: &str) -> Result<u16> {
    Ok(u16::from_ne_bytes(*exact::<2>(value, what)?))
}

pub(crate) fn get_be16(value: &[u8], what: &str) -> Result<u16> {
    Ok(u16::from_be_bytes(*exact::<2>(value, what)?))
}

pub(crate) fn get_u32(value: &[u8], what: &str) -> Result<u32> {
    Ok(u32::from_ne_bytes(*exact::<4>(value, what)?))
}

pub(crate) fn get_v4(value: &[u8], what: &str) -> Result<IpAddr> {
    Ok(IpAddr::V4(Ipv4Addr::from(*exact::<4>(value, what)?)))
}

pub(crate) fn get_v6(value: &[u8], what: &str) -> Result<IpAddr> {
    Ok(IpAddr::V6(Ipv6Addr::from(*exact::<16>(value, what)?)))
}

/// NUL-terminated (or not) string attribute.
pub(crate) fn get_string(value: &[u8], what: &str) -> Result<String> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8(value[..end].to_vec())
        .map_err(|_| Error::decode(format!("{what}: not UTF-8")))
}

/// Appends attributes to a buffer, 4-byte aligned.
#[derive(Debug, Default)]
pub(crate) struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        // Attribute values we emit are a few bytes; a nest holds at most seven of them.
        let len16 = u16::try_from(len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
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

    /// A nested attribute (`NLA_F_NESTED` set, as iproute2 does).
    pub fn nested(&mut self, kind: u16, inner: AttrWriter) -> &mut Self {
        self.bytes(kind | NLA_F_NESTED, &inner.finish())
    }
}
