// SPDX-License-Identifier: MIT OR Apache-2.0
//! Endpoints (`ip mptcp endpoint`) and limits (`ip mptcp limits`).

use std::net::IpAddr;

use netlink_attr::{AttrWriter, Attrs, RawAttr};

use crate::{uapi::*, Error, Result};

bitflags::bitflags! {
    /// Endpoint flags (`MPTCP_PM_ADDR_FLAG_*`). Bits this crate does not name are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct EndpointFlags: u32 {
        /// Announce this address to the peer (ADD_ADDR).
        const SIGNAL = 1 << 0;
        /// Open a subflow from this address.
        const SUBFLOW = 1 << 1;
        /// Subflows on this address are backup (MP_PRIO).
        const BACKUP = 1 << 2;
        /// Subflows to every announced peer address (5.15+).
        const FULLMESH = 1 << 3;
        /// Created by the kernel for an address in use by a connection (5.16+); read-only.
        const IMPLICIT = 1 << 4;
        /// Use peer-announced addresses, not only the primary one (6.18+).
        const LAMINAR = 1 << 5;
        // Keep unknown bits from newer kernels.
        const _ = !0;
    }
}

impl EndpointFlags {
    /// Flag names as `ip mptcp endpoint` prints them, unknown bits as hex.
    pub fn names(self) -> Vec<String> {
        let mut out: Vec<String> = self
            .iter_names()
            .map(|(name, _)| name.to_ascii_lowercase())
            .collect();
        let unknown = self.bits() & !Self::all_named().bits();
        if unknown != 0 {
            out.push(format!("{unknown:#x}"));
        }
        out
    }

    fn all_named() -> Self {
        Self::SIGNAL
            | Self::SUBFLOW
            | Self::BACKUP
            | Self::FULLMESH
            | Self::IMPLICIT
            | Self::LAMINAR
    }
}

/// One in-kernel path-manager endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Endpoint id, 1..=255. On add, 0 lets the kernel pick the id.
    pub id: u8,
    pub addr: IpAddr,
    /// Port for a signal endpoint with its own listener (5.12+); `None` = the connection's.
    pub port: Option<u16>,
    pub flags: EndpointFlags,
    /// Interface the endpoint's subflows are bound to (`dev NAME`).
    pub ifindex: Option<u32>,
    /// Attributes from the kernel this crate does not interpret; never sent back.
    pub unknown: Vec<RawAttr>,
}

impl Endpoint {
    /// An endpoint with kernel-chosen id, no port, no interface.
    pub fn new(addr: IpAddr, flags: EndpointFlags) -> Self {
        Endpoint {
            id: 0,
            addr,
            port: None,
            flags,
            ifindex: None,
            unknown: Vec::new(),
        }
    }

    /// The nested `MPTCP_PM_ATTR_ADDR` value for ADD_ADDR.
    pub(crate) fn encode(&self) -> AttrWriter {
        let mut w = encode_addr(self.addr);
        if self.id != 0 {
            w.u8(MPTCP_PM_ADDR_ATTR_ID, self.id);
        }
        if let Some(port) = self.port {
            w.u16(MPTCP_PM_ADDR_ATTR_PORT, port);
        }
        w.u32(MPTCP_PM_ADDR_ATTR_FLAGS, self.flags.bits());
        if let Some(ifindex) = self.ifindex {
            w.u32(MPTCP_PM_ADDR_ATTR_IF_IDX, ifindex);
        }
        w
    }

    /// Parse the attributes of a GET_ADDR reply (the top level, holding
    /// `MPTCP_PM_ATTR_ADDR`).
    pub(crate) fn decode_reply(buf: &[u8]) -> Result<Endpoint> {
        let mut found = None;
        for a in Attrs::new(buf, "GET_ADDR reply") {
            let a = a?;
            if a.kind == MPTCP_PM_ATTR_ADDR {
                found = Some(Endpoint::decode_nested(a.value)?);
            }
        }
        found.ok_or_else(|| Error::decode("GET_ADDR reply without MPTCP_PM_ATTR_ADDR"))
    }

    /// Parse the inside of a nested `MPTCP_PM_ATTR_ADDR`.
    pub(crate) fn decode_nested(buf: &[u8]) -> Result<Endpoint> {
        let mut family = None;
        let mut id = None;
        let mut v4 = None;
        let mut v6 = None;
        let mut port = None;
        let mut flags = EndpointFlags::empty();
        let mut ifindex = None;
        let mut unknown = Vec::new();
        for a in Attrs::new(buf, "endpoint address") {
            let a = a?;
            match a.kind {
                MPTCP_PM_ADDR_ATTR_FAMILY => family = Some(a.u16()?),
                MPTCP_PM_ADDR_ATTR_ID => id = Some(a.u8()?),
                MPTCP_PM_ADDR_ATTR_ADDR4 => v4 = Some(a.v4()?),
                MPTCP_PM_ADDR_ATTR_ADDR6 => v6 = Some(a.v6()?),
                MPTCP_PM_ADDR_ATTR_PORT => port = Some(a.u16()?).filter(|p| *p != 0),
                MPTCP_PM_ADDR_ATTR_FLAGS => flags = EndpointFlags::from_bits_retain(a.u32()?),
                MPTCP_PM_ADDR_ATTR_IF_IDX => ifindex = Some(a.u32()?).filter(|i| *i != 0),
                _ => unknown.push(a.keep()),
            }
        }
        let addr = match (family, v4, v6) {
            (Some(AF_INET), Some(a), _) => a,
            (Some(AF_INET6), _, Some(a)) => a,
            (Some(AF_INET), None, _) | (Some(AF_INET6), _, None) => {
                return Err(Error::decode("endpoint without an address of its family"))
            }
            (Some(f), _, _) => {
                return Err(Error::decode(format!(
                    "endpoint with bad address family {f}"
                )))
            }
            (None, _, _) => return Err(Error::decode("endpoint without address family")),
        };
        Ok(Endpoint {
            id: id.ok_or_else(|| Error::decode("endpoint without id"))?,
            addr,
            port,
            flags,
            ifindex,
            unknown,
        })
    }
}

/// family + ADDR4/ADDR6 of a nested address.
pub(crate) fn encode_addr(addr: IpAddr) -> AttrWriter {
    let mut w = AttrWriter::new();
    match addr {
        IpAddr::V4(a) => {
            w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET);
            w.bytes(MPTCP_PM_ADDR_ATTR_ADDR4, &a.octets());
        }
        IpAddr::V6(a) => {
            w.u16(MPTCP_PM_ADDR_ATTR_FAMILY, AF_INET6);
            w.bytes(MPTCP_PM_ADDR_ATTR_ADDR6, &a.octets());
        }
    }
    w
}

/// How SET_FLAGS finds the endpoint to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKey {
    /// By id. Only kernels whose SET_FLAGS looks up by id (mainline since about 5.17, and
    /// stable trees that took that change); id 0 gives EOPNOTSUPP "missing address ID".
    Id(u8),
    /// By address, and port if the endpoint has one: every kernel with SET_FLAGS (5.12+).
    /// The first SET_FLAGS versions answer success even when no endpoint matches, so check
    /// the result with a dump there.
    Addr { addr: IpAddr, port: Option<u16> },
}

impl EndpointKey {
    pub(crate) fn encode(&self, flags: EndpointFlags) -> AttrWriter {
        let mut w = match self {
            EndpointKey::Id(id) => {
                let mut w = AttrWriter::new();
                w.u8(MPTCP_PM_ADDR_ATTR_ID, *id);
                w
            }
            EndpointKey::Addr { addr, port } => {
                let mut w = encode_addr(*addr);
                if let Some(port) = port {
                    w.u16(MPTCP_PM_ADDR_ATTR_PORT, *port);
                }
                w
            }
        };
        w.u32(MPTCP_PM_ADDR_ATTR_FLAGS, flags.bits());
        w
    }
}

/// Per-namespace limits of the in-kernel path manager (`ip mptcp limits`).
/// `None` in a SET leaves that limit unchanged; GET fills both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// Maximum number of additional subflows per connection (kernel maximum 8).
    pub subflows: Option<u32>,
    /// Maximum number of ADD_ADDR announcements accepted per connection (kernel maximum 8).
    pub add_addr_accepted: Option<u32>,
}

impl Limits {
    pub(crate) fn encode(&self) -> AttrWriter {
        let mut w = AttrWriter::new();
        if let Some(v) = self.add_addr_accepted {
            w.u32(MPTCP_PM_ATTR_RCV_ADD_ADDRS, v);
        }
        if let Some(v) = self.subflows {
            w.u32(MPTCP_PM_ATTR_SUBFLOWS, v);
        }
        w
    }

    pub(crate) fn decode(buf: &[u8]) -> Result<Limits> {
        let mut limits = Limits::default();
        for a in Attrs::new(buf, "GET_LIMITS reply") {
            let a = a?;
            match a.kind {
                MPTCP_PM_ATTR_RCV_ADD_ADDRS => limits.add_addr_accepted = Some(a.u32()?),
                MPTCP_PM_ATTR_SUBFLOWS => limits.subflows = Some(a.u32()?),
                _ => {}
            }
        }
        if limits.subflows.is_none() || limits.add_addr_accepted.is_none() {
            return Err(Error::decode("GET_LIMITS reply without both limits"));
        }
        Ok(limits)
    }
}
