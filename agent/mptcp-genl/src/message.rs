// SPDX-License-Identifier: MIT OR Apache-2.0
//! Generic netlink framing: the raw message type carried by netlink-proto, and the
//! path-manager command numbers.

use std::fmt;

use netlink_attr::{split_header, Attrs};

use crate::{
    uapi::{NLMSGERR_ATTR_MSG, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED},
    Result,
};

/// A path-manager command (`MPTCP_PM_CMD_*`), with the kernel release that added it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cmd {
    /// ADD_ADDR (5.6): add an endpoint.
    AddAddr,
    /// DEL_ADDR (5.6): delete an endpoint by id.
    DelAddr,
    /// GET_ADDR (5.6): get one endpoint (do) or all (dump).
    GetAddr,
    /// FLUSH_ADDRS (5.6): delete all endpoints.
    FlushAddrs,
    /// SET_LIMITS (5.6).
    SetLimits,
    /// GET_LIMITS (5.6).
    GetLimits,
    /// SET_FLAGS (5.12): change backup (and, 5.18+, fullmesh) of an endpoint.
    SetFlags,
    /// ANNOUNCE (5.19, userspace PM): send ADD_ADDR on one connection.
    Announce,
    /// REMOVE (5.19, userspace PM): send RM_ADDR on one connection.
    Remove,
    /// SUBFLOW_CREATE (5.19, userspace PM).
    SubflowCreate,
    /// SUBFLOW_DESTROY (5.19, userspace PM).
    SubflowDestroy,
    /// A command number this crate does not know.
    Other(u8),
}

impl Cmd {
    /// All commands this crate knows, in number order.
    pub const KNOWN: [Cmd; 11] = [
        Cmd::AddAddr,
        Cmd::DelAddr,
        Cmd::GetAddr,
        Cmd::FlushAddrs,
        Cmd::SetLimits,
        Cmd::GetLimits,
        Cmd::SetFlags,
        Cmd::Announce,
        Cmd::Remove,
        Cmd::SubflowCreate,
        Cmd::SubflowDestroy,
    ];

    /// The command number on the wire.
    pub fn number(self) -> u8 {
        match self {
            Cmd::AddAddr => 1,
            Cmd::DelAddr => 2,
            Cmd::GetAddr => 3,
            Cmd::FlushAddrs => 4,
            Cmd::SetLimits => 5,
            Cmd::GetLimits => 6,
            Cmd::SetFlags => 7,
            Cmd::Announce => 8,
            Cmd::Remove => 9,
            Cmd::SubflowCreate => 10,
            Cmd::SubflowDestroy => 11,
            Cmd::Other(n) => n,
        }
    }

    pub fn from_number(n: u8) -> Cmd {
        Cmd::KNOWN
            .iter()
            .copied()
            .find(|c| c.number() == n)
            .unwrap_or(Cmd::Other(n))
    }

    /// The uapi name without the `MPTCP_PM_CMD_` prefix.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::AddAddr => "ADD_ADDR",
            Cmd::DelAddr => "DEL_ADDR",
            Cmd::GetAddr => "GET_ADDR",
            Cmd::FlushAddrs => "FLUSH_ADDRS",
            Cmd::SetLimits => "SET_LIMITS",
            Cmd::GetLimits => "GET_LIMITS",
            Cmd::SetFlags => "SET_FLAGS",
            Cmd::Announce => "ANNOUNCE",
            Cmd::Remove => "REMOVE",
            Cmd::SubflowCreate => "SUBFLOW_CREATE",
            Cmd::SubflowDestroy => "SUBFLOW_DESTROY",
            Cmd::Other(_) => "unknown command",
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::Other(n) => write!(f, "MPTCP_PM_CMD_{n}"),
            c => write!(f, "MPTCP_PM_CMD_{}", c.name()),
        }
    }
}

/// A generic netlink message as netlink-proto carries it: the family id as its type, the
/// genl header and attributes as bytes. All checking happens in this crate, where a bad
/// reply becomes an [`crate::Error::Decode`].
pub(crate) type GenlRaw = netlink_attr::RawMessage;

/// struct genlmsghdr: cmd, version (u8), reserved (u16).
const GENL_HDRLEN: usize = 4;

/// The generic netlink header on a [`GenlRaw`].
pub(crate) trait GenlRawExt {
    fn new(family: u16, cmd: u8, version: u8, attrs: Vec<u8>) -> Self;
    /// Command number and attribute bytes; an error when the genl header is missing.
    fn split(&self) -> Result<(u8, &[u8])>;
}

impl GenlRawExt for GenlRaw {
    fn new(family: u16, cmd: u8, version: u8, attrs: Vec<u8>) -> Self {
        let mut payload = Vec::with_capacity(GENL_HDRLEN + attrs.len());
        payload.extend_from_slice(&[cmd, version, 0, 0]);
        payload.extend_from_slice(&attrs);
        GenlRaw {
            kind: family,
            payload,
        }
    }

    fn split(&self) -> Result<(u8, &[u8])> {
        let (h, attrs) = split_header(&self.payload, GENL_HDRLEN, "generic netlink header")?;
        Ok((h[0], attrs))
    }
}

/// The extended-ACK message (`NLMSGERR_ATTR_MSG`) of an NLMSG_ERROR.
///
/// `flags` are the error message's netlink header flags; `after_code` is everything after
/// the 4-byte error code: the echoed request (only its header when `NLM_F_CAPPED`) and
/// then the TLVs when `NLM_F_ACK_TLVS` is set.
pub(crate) fn extack_message(flags: u16, after_code: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || after_code.len() < NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes([after_code[0], after_code[1], after_code[2], after_code[3]])
            as usize;
        len.checked_add(3)? & !3
    };
    let tlvs = after_code.get(echoed..)?;
    Attrs::new(tlvs, "extended ACK")
        .map_while(|a| a.ok())
        .find(|a| a.kind == NLMSGERR_ATTR_MSG)
        .and_then(|a| a.c_string().ok())
        .filter(|m| !m.is_empty())
}
