// SPDX-License-Identifier: MIT OR Apache-2.0
//! Netlink attributes (TLVs) for the agent's two netlink clients, rtnetlink
//! (mptcp-agent's `rtnl`) and generic netlink (mptcp-genl): reading with exact length
//! checks on netlink-packet-core's [`NlasIterator`], typed getters, a writer with
//! nesting, fixed-header reads, and the raw message netlink-proto carries for both.
//! A message of the wrong shape is a typed [`DecodeError`], never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NlaBuffer, NlasIterator, NLA_F_NET_BYTEORDER};

pub use netlink_packet_core::{NLA_F_NESTED, NLA_TYPE_MASK};

mod raw;
mod writer;

pub use raw::RawMessage;
pub use writer::AttrWriter;

/// Address families (linux/socket.h) as the one-byte family fields carry them.
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// A netlink message the reader cannot use. `what` names the message or nest being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what}: fixed header truncated ({len} of {need} bytes)")]
    Truncated {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what}: attribute {kind} has a bad length ({len} bytes)")]
    BadLength {
        what: &'static str,
        kind: u16,
        len: usize,
    },
    #[error("{what}: attribute {kind} is not UTF-8")]
    NotUtf8 { what: &'static str, kind: u16 },
    /// The attribute stream itself is broken (an attribute longer than what is left, or
    /// shorter than its own header).
    #[error("{what}: broken attribute list at byte {offset}")]
    BadAttributes { what: &'static str, offset: usize },
}

/// One attribute: its type and value, and the context errors about it name.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    /// Type without the `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER` bits.
    pub kind: u16,
    /// Type as on the wire, flag bits included.
    pub raw_kind: u16,
    /// Value without header or padding.
    pub value: &'a [u8],
    what: &'static str,
}

impl<'a> Attr<'a> {
    fn bad_length(&self) -> DecodeError {
        DecodeError::BadLength {
            what: self.what,
            kind: self.kind,
            len: self.value.len(),
        }
    }

    fn exact<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.value).map_err(|_| self.bad_length())
    }

    pub fn u8(&self) -> Result<u8, DecodeError> {
        self.exact::<1>().map(|[b]| b)
    }

    pub fn u16(&self) -> Result<u16, DecodeError> {
        self.exact().map(u16::from_ne_bytes)
    }

    /// A big-endian u16 (ports).
    pub fn be16(&self) -> Result<u16, DecodeError> {
        self.exact().map(u16::from_be_bytes)
    }

    pub fn u32(&self) -> Result<u32, DecodeError> {
        self.exact().map(u32::from_ne_bytes)
    }

    /// Exactly 4 bytes.
    pub fn v4(&self) -> Result<IpAddr, DecodeError> {
        self.exact().map(|b| IpAddr::V4(Ipv4Addr::from(b)))
    }

    /// Exactly 16 bytes.
    pub fn v6(&self) -> Result<IpAddr, DecodeError> {
        self.exact().map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    }

    /// An address whose family its length tells (4 or 16 bytes).
    pub fn ip(&self) -> Result<IpAddr, DecodeError> {
        ip_of_len(self.value).ok_or_else(|| self.bad_length())
    }

    /// An address of the message's family: AF_INET needs 4 bytes, AF_INET6 16.
    pub fn ip_of_family(&self, family: u8) -> Result<IpAddr, DecodeError> {
        match family {
            AF_INET => self.v4(),
            AF_INET6 => self.v6(),
            _ => Err(self.bad_length()),
        }
    }

    /// A string; one trailing NUL (the kernel always sends it) is not part of it, as in
    /// netlink-packet-route.
    pub fn string(&self) -> Result<String, DecodeError> {
        self.utf8(self.value.strip_suffix(&[0]).unwrap_or(self.value))
    }

    /// A C string: up to the first NUL, or all of it without one (as genl's
    /// `nla_strscpy` readers see it).
    pub fn c_string(&self) -> Result<String, DecodeError> {
        let end = self
            .value
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.value.len());
        self.utf8(&self.value[..end])
    }

    fn utf8(&self, b: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NotUtf8 {
            what: self.what,
            kind: self.kind,
        })
    }

    /// The attributes nested in this one, read with the same context.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value, self.what)
    }

    /// The attribute kept as received (for ones the reader does not interpret).
    pub fn keep(&self) -> RawAttr {
        RawAttr {
            kind: self.raw_kind,
            value: self.value.to_vec(),
        }
    }
}

/// An attribute kept as received.
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

/// 4 bytes are IPv4, 16 IPv6, anything else none.
pub fn ip_of_len(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
    }
}

/// Iterator over an attribute list; a broken list ends in one error.
pub struct Attrs<'a> {
    inner: NlasIterator<&'a [u8]>,
    /// Where the next attribute starts: NlasIterator keeps it private, errors name it.
    pos: usize,
    what: &'static str,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Attrs {
            inner: NlasIterator::new(buf),
            pos: 0,
            what,
        }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        // new_checked inside: 4 <= length <= what is left, else an error and the end.
        let nla: NlaBuffer<&'a [u8]> = match self.inner.next()? {
            Ok(nla) => nla,
            Err(_) => {
                return Some(Err(DecodeError::BadAttributes {
                    what: self.what,
                    offset: self.pos,
                }))
            }
        };
        let len = usize::from(nla.length());
        self.pos += (len + 3) & !3;
        let mut raw_kind = nla.kind();
        if nla.nested_flag() {
            raw_kind |= NLA_F_NESTED;
        }
        if nla.network_byte_order_flag() {
            raw_kind |= NLA_F_NET_BYTEORDER;
        }
        let whole: &'a [u8] = nla.into_inner();
        Some(Ok(Attr {
            kind: raw_kind & NLA_TYPE_MASK,
            raw_kind,
            value: whole.get(4..len).unwrap_or_default(),
            what: self.what,
        }))
    }
}

/// The fixed header at the start of `payload` and the attributes after it, or a
/// [`DecodeError::Truncated`].
pub fn header<'a>(
    payload: &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<(&'a [u8], Attrs<'a>), DecodeError> {
    let (h, rest) = split_header(payload, len, what)?;
    Ok((h, Attrs::new(rest, what)))
}

/// The fixed header at the start of `payload` and the bytes after it.
pub fn split_header<'a>(
    payload: &'a [u8],
    len: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
    if payload.len() < len {
        return Err(DecodeError::Truncated {
            what,
            len: payload.len(),
            need: len,
        });
    }
    Ok(payload.split_at(len))
}

/// A native-endian u16 at `at`; the caller has checked the length (a fixed header).
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

/// A native-endian u32 at `at`; the caller has checked the length (a fixed header).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests;
