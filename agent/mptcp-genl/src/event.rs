// SPDX-License-Identifier: MIT OR Apache-2.0
//! Path-manager events from the `mptcp_pm_events` multicast group (5.12+).

use std::{
    collections::VecDeque,
    fmt,
    net::IpAddr,
    pin::Pin,
    task::{Context, Poll},
};

use futures::Stream;
use netlink_attr::{Attrs, RawAttr};
use netlink_packet_core::{NetlinkBuffer, NLMSG_ERROR, NLMSG_OVERRUN};
use netlink_sys::{protocols::NETLINK_GENERIC, AsyncSocket, TokioSocket};

use crate::{uapi::*, Capabilities, Error, Result};

/// The event type (genl command of an event message, `enum mptcp_event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A connection was created (SYN sent or received).
    Created,
    /// A connection is fully established; subflows can be added.
    Established,
    /// A connection was closed.
    Closed,
    /// The peer announced an address (ADD_ADDR received).
    Announced,
    /// The peer removed an address (RM_ADDR received).
    Removed,
    /// A subflow was established.
    SubEstablished,
    /// A subflow was closed; `error` carries its `sk_err` if any.
    SubClosed,
    /// A subflow's backup priority changed (MP_PRIO).
    SubPriority,
    /// A path-manager listener socket was created (6.2+; a signal endpoint with a port,
    /// or an MPTCP `listen()`).
    ListenerCreated,
    /// A path-manager listener socket was closed (6.2+).
    ListenerClosed,
    /// An event type this crate does not know.
    Other(u8),
}

impl EventKind {
    pub fn from_number(n: u8) -> EventKind {
        match n {
            1 => EventKind::Created,
            2 => EventKind::Established,
            3 => EventKind::Closed,
            6 => EventKind::Announced,
            7 => EventKind::Removed,
            10 => EventKind::SubEstablished,
            11 => EventKind::SubClosed,
            13 => EventKind::SubPriority,
            15 => EventKind::ListenerCreated,
            16 => EventKind::ListenerClosed,
            n => EventKind::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            EventKind::Created => 1,
            EventKind::Established => 2,
            EventKind::Closed => 3,
            EventKind::Announced => 6,
            EventKind::Removed => 7,
            EventKind::SubEstablished => 10,
            EventKind::SubClosed => 11,
            EventKind::SubPriority => 13,
            EventKind::ListenerCreated => 15,
            EventKind::ListenerClosed => 16,
            EventKind::Other(n) => n,
        }
    }

    /// The uapi name in lower case without the `MPTCP_EVENT_` prefix (as `ip mptcp monitor`).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Established => "established",
            EventKind::Closed => "closed",
            EventKind::Announced => "announced",
            EventKind::Removed => "removed",
            EventKind::SubEstablished => "sf_established",
            EventKind::SubClosed => "sf_closed",
            EventKind::SubPriority => "sf_priority",
            EventKind::ListenerCreated => "listener_created",
            EventKind::ListenerClosed => "listener_closed",
            EventKind::Other(_) => "unknown",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Other(n) => write!(f, "event_{n}"),
            k => f.write_str(k.name()),
        }
    }
}

bitflags::bitflags! {
    /// `MPTCP_ATTR_FLAGS` of connection events (`MPTCP_PM_EV_FLAG_*`). Unknown bits kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct EventFlags: u16 {
        /// The peer refuses joins to its initial address (MP_CAPABLE "C" flag).
        const DENY_JOIN_ID0 = 1 << 0;
        /// This side is the server (6.18+; older kernels send `MPTCP_ATTR_SERVER_SIDE`).
        const SERVER_SIDE = 1 << 1;
        const _ = !0;
    }
}

/// One path-manager event with every attribute the kernel sent. Which fields are set
/// depends on the kind (see the comments in the uapi header); absent ones are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmEvent {
    pub kind: EventKind,
    /// Connection token (all but listener events).
    pub token: Option<u32>,
    /// Address family (`AF_INET` 2, `AF_INET6` 10).
    pub family: Option<u16>,
    /// Local endpoint id of a subflow.
    pub loc_id: Option<u8>,
    /// Remote address id (subflows, announced, removed).
    pub rem_id: Option<u8>,
    pub saddr: Option<IpAddr>,
    pub daddr: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// Subflow is backup.
    pub backup: Option<bool>,
    /// `sk_err` of a subflow (errno, e.g. 104 ECONNRESET, 110 ETIMEDOUT).
    pub error: Option<u8>,
    pub flags: Option<EventFlags>,
    /// ADD_ADDR retransmission timeout.
    pub timeout: Option<u32>,
    pub ifindex: Option<u32>,
    /// MP_TCPRST reason (`MPTCP_RST_E*`) of a closed subflow.
    pub reset_reason: Option<u32>,
    pub reset_flags: Option<u32>,
    /// `MPTCP_ATTR_SERVER_SIDE` (5.17..6.17); see also [`PmEvent::is_server_side`].
    pub server_side: Option<bool>,
    /// Attributes this crate does not interpret, as received.
    pub unknown: Vec<RawAttr>,
}

impl PmEvent {
    /// An event of this kind with no attributes (for building fakes in tests).
    pub fn new(kind: EventKind) -> PmEvent {
        PmEvent {
            kind,
            token: None,
            family: None,
            loc_id: None,
            rem_id: None,
            saddr: None,
            daddr: None,
            sport: None,
            dport: None,
            backup: None,
            error: None,
            flags: None,
            timeout: None,
            ifindex: None,
            reset_reason: None,
            reset_flags: None,
            server_side: None,
            unknown: Vec::new(),
        }
    }

    /// Whether this side is the server, from either the old attribute or the 6.18 flag.
    pub fn is_server_side(&self) -> bool {
        self.server_side == Some(true)
            || self
                .flags
                .is_some_and(|f| f.contains(EventFlags::SERVER_SIDE))
    }

    /// Parse an event from its genl command and attribute bytes.
    pub fn decode(cmd: u8, buf: &[u8]) -> Result<PmEvent> {
        let mut ev = PmEvent::new(EventKind::from_number(cmd));
        for a in Attrs::new(buf, "event") {
            let a = a?;
            match a.kind {
                MPTCP_ATTR_TOKEN => ev.token = Some(a.u32()?),
                MPTCP_ATTR_FAMILY => ev.family = Some(a.u16()?),
                MPTCP_ATTR_LOC_ID => ev.loc_id = Some(a.u8()?),
                MPTCP_ATTR_REM_ID => ev.rem_id = Some(a.u8()?),
                MPTCP_ATTR_SADDR4 => ev.saddr = Some(a.v4()?),
                MPTCP_ATTR_SADDR6 => ev.saddr = Some(a.v6()?),
                MPTCP_ATTR_DADDR4 => ev.daddr = Some(a.v4()?),
                MPTCP_ATTR_DADDR6 => ev.daddr = Some(a.v6()?),
                MPTCP_ATTR_SPORT => ev.sport = Some(a.be16()?),
                MPTCP_ATTR_DPORT => ev.dport = Some(a.be16()?),
                MPTCP_ATTR_BACKUP => ev.backup = Some(a.u8()? != 0),
                MPTCP_ATTR_ERROR => ev.error = Some(a.u8()?),
                MPTCP_ATTR_FLAGS => ev.flags = Some(EventFlags::from_bits_retain(a.u16()?)),
                MPTCP_ATTR_TIMEOUT => ev.timeout = Some(a.u32()?),
                MPTCP_ATTR_IF_IDX => ev.ifindex = Some(a.u32()?),
                MPTCP_ATTR_RESET_REASON => ev.reset_reason = Some(a.u32()?),
                MPTCP_ATTR_RESET_FLAGS => ev.reset_flags = Some(a.u32()?),
                MPTCP_ATTR_SERVER_SIDE => ev.server_side = Some(a.u8()? != 0),
                _ => ev.unknown.push(a.keep()),
            }
        }
        let want = match ev.family {
            None => None,
            Some(AF_INET) => Some(false),
            Some(AF_INET6) => Some(true),
            Some(f) => return Err(Error::decode(format!("event with bad address family {f}"))),
        };
        for addr in [ev.saddr, ev.daddr].into_iter().flatten() {
            if want.is_some_and(|v6| v6 != addr.is_ipv6()) {
                return Err(Error::decode("event address does not match its family"));
            }
        }
        Ok(ev)
    }
}

impl fmt::Display for PmEvent {
    /// One line in the style of `ip mptcp monitor`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>16}]", self.kind.to_string().to_uppercase())?;
        if let Some(t) = self.token {
            write!(f, " token={t:08x}")?;
        }
        if let Some(v) = self.rem_id {
            write!(f, " remid={v}")?;
        }
        if let Some(v) = self.loc_id {
            write!(f, " locid={v}")?;
        }
        if let Some(v) = self.saddr {
            write!(f, " saddr={v}")?;
        }
        if let Some(v) = self.daddr {
            write!(f, " daddr={v}")?;
        }
        if let Some(v) = self.sport {
            write!(f, " sport={v}")?;
        }
        if let Some(v) = self.dport {
            write!(f, " dport={v}")?;
        }
        if let Some(v) = self.backup {
            write!(f, " backup={}", u8::from(v))?;
        }
        if let Some(v) = self.ifindex {
            write!(f, " ifindex={v}")?;
        }
        if let Some(v) = self.error {
            write!(f, " error={v}")?;
        }
        if let Some(v) = self.reset_reason {
            write!(f, " reset_reason={v}")?;
        }
        if let Some(v) = self.reset_flags {
            write!(f, " reset_flags={v:#x}")?;
        }
        if let Some(v) = self.timeout {
            write!(f, " timeout={v}")?;
        }
        if self.is_server_side() {
            write!(f, " server_side")?;
        }
        if let Some(v) = self.flags {
            write!(f, " flags={:#x}", v.bits())?;
        }
        for a in &self.unknown {
            write!(f, " attr{}={:02x?}", a.number(), a.value)?;
        }
        Ok(())
    }
}

/// Parse every event in one datagram from the events socket. Messages of other types are
/// skipped; a malformed event is an `Err` item and parsing continues with the next message
/// when its length is sound.
pub(crate) fn decode_datagram(family: u16, mut buf: &[u8], out: &mut VecDeque<Result<PmEvent>>) {
    while !buf.is_empty() {
        let nl = match NetlinkBuffer::new_checked(buf) {
            Ok(nl) => nl,
            Err(e) => {
                out.push_back(Err(Error::decode(format!("event datagram: {e}"))));
                return;
            }
        };
        let len = nl.length() as usize;
        let msg_type = nl.message_type();
        let payload = nl.payload();
        if msg_type == family {
            out.push_back(if payload.len() < 4 {
                Err(Error::decode("event without generic netlink header"))
            } else {
                PmEvent::decode(payload[0], &payload[4..])
            });
        } else if msg_type == NLMSG_OVERRUN {
            out.push_back(Err(Error::EventsLost));
        } else if msg_type == NLMSG_ERROR {
            // Nothing is sent on this socket, so no errors are expected; ignore.
        }
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or(&[]);
    }
}

/// A stream of path-manager events (`ip mptcp monitor`), on its own netlink socket joined
/// to the `mptcp_pm_events` group of the network namespace current when it was created.
///
/// Items are `Err(Error::EventsLost)` when the kernel dropped events (ENOBUFS): the stream
/// goes on, and the caller should resynchronise (dump endpoints). `Err(Error::Decode)` for a
/// malformed event; the stream goes on. It ends (`None`) only on a socket error.
pub struct EventStream {
    socket: TokioSocket,
    family: u16,
    pending: VecDeque<Result<PmEvent>>,
    failed: bool,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// Open the events socket using already probed capabilities.
    pub(crate) fn open(caps: &Capabilities) -> Result<EventStream> {
        let group = caps.events_group().ok_or(Error::NoEventsGroup)?;
        let mut socket = TokioSocket::new(NETLINK_GENERIC)?;
        socket.socket_mut().bind_auto()?;
        socket.socket_mut().add_membership(group)?;
        Ok(EventStream {
            socket,
            family: caps.family_id,
            pending: VecDeque::new(),
            failed: false,
        })
    }
}

impl EventStream {
    /// Set the socket receive buffer (SO_RCVBUF; the kernel doubles the value and applies
    /// its minimum). A larger buffer makes [`Error::EventsLost`] less likely under bursts.
    pub fn set_receive_buffer(&mut self, bytes: usize) -> Result<()> {
        self.socket.socket_mut().set_rx_buf_sz(bytes)?;
        Ok(())
    }
}

impl Stream for EventStream {
    type Item = Result<PmEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.pending.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.failed {
                return Poll::Ready(None);
            }
            match this.socket.poll_recv_from_full(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((buf, _from))) => {
                    decode_datagram(this.family, &buf, &mut this.pending)
                }
                Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Poll::Ready(Some(Err(Error::EventsLost)))
                }
                Poll::Ready(Err(e)) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(Error::Io(e))));
                }
            }
        }
    }
}
