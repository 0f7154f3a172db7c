// SPDX-License-Identifier: MIT OR Apache-2.0
//! The request side: a cloneable handle over one netlink-proto connection.

use std::{net::IpAddr, path::Path, sync::Arc, time::Duration};

use futures::StreamExt;
use netlink_attr::AttrWriter;
use netlink_packet_core::{
    Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::{
    constants::GENL_ID_CTRL,
    ctrl::{nlas::GenlCtrlAttrs, GenlCtrl, GenlCtrlCmd},
    GenlMessage,
};
use netlink_proto::{
    sys::protocols::NETLINK_GENERIC, sys::AsyncSocket, sys::SocketAddr, ConnectionHandle,
};

use crate::{
    caps::read_sysctl_names,
    endpoint::encode_addr,
    message::{extack_message, GenlRaw, GenlRawExt},
    uapi::*,
    Capabilities, Cmd, Endpoint, EndpointFlags, EndpointKey, Error, EventStream, Limits, Result,
};

/// Default bound on every request; the kernel answers these in microseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Handle to the in-kernel path manager of one network namespace (the one the creating
/// thread was in). Cheap to clone; all clones share one netlink socket, served by a task
/// spawned on the tokio runtime that was current at [`PmHandle::connect`]. The task ends
/// when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PmHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: ConnectionHandle<GenlRaw>,
    caps: Capabilities,
    timeout: Duration,
}

/// Where the request's answer ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// NLM_F_ACK: replies (if any), then an ACK or an error.
    Do,
    /// NLM_F_DUMP: replies, then NLMSG_DONE or an error.
    Dump,
}

impl PmHandle {
    /// Open a generic netlink socket in the calling thread's network namespace, spawn its
    /// connection task on the current tokio runtime, resolve the `mptcp_pm` family and
    /// probe its capabilities. Requests extended ACKs so kernel error messages surface.
    ///
    /// Errors: [`Error::FamilyNotFound`] when the kernel has no MPTCP; [`Error::Io`].
    /// Panics when called outside a tokio runtime (like `tokio::spawn`).
    pub async fn connect() -> Result<PmHandle> {
        let (mut conn, handle, unsolicited) =
            netlink_proto::new_connection::<GenlRaw>(NETLINK_GENERIC)?;
        // Unsolicited messages are not expected on this socket; dropping the receiver
        // makes the connection discard them.
        drop(unsolicited);
        {
            let sock = conn.socket_mut().socket_mut();
            sock.set_ext_ack(true)?;
            // Echo only the request header in errors, not the whole request.
            sock.set_cap_ack(true)?;
        }
        // Needed to tell a finished request from a dead connection.
        conn.set_forward_ack(true);
        conn.set_forward_done(true);
        tokio::spawn(conn);

        let caps = resolve_family(&handle, DEFAULT_TIMEOUT).await?;
        Ok(PmHandle {
            inner: Arc::new(Inner {
                conn: handle,
                caps,
                timeout: DEFAULT_TIMEOUT,
            }),
        })
    }

    /// A handle with given capabilities on an unconnected socket, to test the checks made
    /// before sending.
    #[cfg(test)]
    pub(crate) fn with_capabilities(caps: Capabilities) -> Result<PmHandle> {
        let (_conn, handle, _) = netlink_proto::new_connection::<GenlRaw>(NETLINK_GENERIC)?;
        Ok(PmHandle {
            inner: Arc::new(Inner {
                conn: handle,
                caps,
                timeout: DEFAULT_TIMEOUT,
            }),
        })
    }

    /// What this kernel's family offers, probed at connect time.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.caps
    }

    /// One endpoint by id (`ip mptcp endpoint show id ID`).
    pub async fn endpoint(&self, id: u8) -> Result<Endpoint> {
        let mut w = AttrWriter::new();
        let mut addr = AttrWriter::new();
        addr.u8(MPTCP_PM_ADDR_ATTR_ID, id);
        w.nested(MPTCP_PM_ATTR_ADDR, addr);
        let replies = self.request(Cmd::GetAddr, w, Kind::Do).await?;
        let reply = replies
            .first()
            .ok_or_else(|| Error::decode("GET_ADDR answered without a reply message"))?;
        Endpoint::decode_reply(reply.split()?.1)
    }

    /// All endpoints (`ip mptcp endpoint show`), in id order.
    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let replies = self
            .request(Cmd::GetAddr, AttrWriter::new(), Kind::Dump)
            .await?;
        replies
            .iter()
            .map(|r| Endpoint::decode_reply(r.split()?.1))
            .collect()
    }

    /// Add an endpoint (`ip mptcp endpoint add`). With `id` 0 the kernel picks the id; find
    /// it with [`PmHandle::endpoints`]. Unknown attributes in `ep` are not sent.
    ///
    /// Kernel errors (6.18): an existing address gives EEXIST (see
    /// [`Error::is_already_exists`]), an existing id EBUSY, a ninth endpoint ERANGE (at most
    /// 8 per namespace), a signal endpoint with a port on an address that is not local
    /// EADDRNOTAVAIL (the kernel opens a listener for it).
    pub async fn add_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let mut w = AttrWriter::new();
        w.nested(MPTCP_PM_ATTR_ADDR, ep.encode());
        self.request(Cmd::AddAddr, w, Kind::Do).await.map(drop)
    }

    /// Delete the endpoint with this id (`ip mptcp endpoint delete id ID`). Subflows using
    /// it are closed and, for a signal endpoint, RM_ADDR is sent. Id 0 is not an endpoint:
    /// use [`PmHandle::del_id_zero_address`].
    pub async fn del_endpoint(&self, id: u8) -> Result<()> {
        if id == 0 {
            return Err(Error::InvalidRequest(
                "endpoint id 0 cannot be deleted by id; use del_id_zero_address",
            ));
        }
        let mut addr = AttrWriter::new();
        addr.u8(MPTCP_PM_ADDR_ATTR_ID, id);
        let mut w = AttrWriter::new();
        w.nested(MPTCP_PM_ATTR_ADDR, addr);
        self.request(Cmd::DelAddr, w, Kind::Do).await.map(drop)
    }

    /// DEL_ADDR with id 0 and an address (`ip mptcp endpoint delete id 0 ADDR`): on every
    /// connection whose initial subflow (local id 0) uses `addr`, close that subflow and
    /// send RM_ADDR id 0 to the peer; other subflows carry on. No endpoint is removed, and
    /// an address no connection uses is a successful no-op. Kernels without this id-0
    /// special case answer EINVAL "address not found".
    pub async fn del_id_zero_address(&self, addr: IpAddr) -> Result<()> {
        let mut nest = encode_addr(addr);
        nest.u8(MPTCP_PM_ADDR_ATTR_ID, 0);
        let mut w = AttrWriter::new();
        w.nested(MPTCP_PM_ATTR_ADDR, nest);
        self.request(Cmd::DelAddr, w, Kind::Do).await.map(drop)
    }

    /// Delete all endpoints (`ip mptcp endpoint flush`).
    pub async fn flush_endpoints(&self) -> Result<()> {
        self.request(Cmd::FlushAddrs, AttrWriter::new(), Kind::Do)
            .await
            .map(drop)
    }

    /// Current limits (`ip mptcp limits show`); both fields are `Some`.
    pub async fn limits(&self) -> Result<Limits> {
        let replies = self
            .request(Cmd::GetLimits, AttrWriter::new(), Kind::Do)
            .await?;
        let reply = replies
            .first()
            .ok_or_else(|| Error::decode("GET_LIMITS answered without a reply message"))?;
        Limits::decode(reply.split()?.1)
    }

    /// Set limits (`ip mptcp limits set`); `None` fields stay as they are. Above the kernel
    /// maximum (8) gives [`Error::Kernel`] EINVAL with the kernel's message.
    pub async fn set_limits(&self, limits: Limits) -> Result<()> {
        self.request(Cmd::SetLimits, limits.encode(), Kind::Do)
            .await
            .map(drop)
    }

    /// Change an endpoint's flags (`ip mptcp endpoint change ... [no]backup [no]fullmesh`,
    /// kernel 5.12+). The kernel applies only BACKUP (and FULLMESH, 5.18+) from `flags`
    /// and sends MP_PRIO on existing subflows. [`Error::Unsupported`] when the kernel's
    /// family lacks SET_FLAGS (nothing is sent).
    pub async fn set_endpoint_flags(&self, key: EndpointKey, flags: EndpointFlags) -> Result<()> {
        let mut w = AttrWriter::new();
        w.nested(MPTCP_PM_ATTR_ADDR, key.encode(flags));
        self.request(Cmd::SetFlags, w, Kind::Do).await.map(drop)
    }

    /// Subscribe to path-manager events on a new socket in the calling thread's network
    /// namespace, using the group id probed by this handle. [`Error::NoEventsGroup`] before
    /// 5.12. Needs a tokio runtime with IO enabled.
    pub fn subscribe_events(&self) -> Result<EventStream> {
        EventStream::open(&self.inner.caps)
    }

    async fn request(&self, cmd: Cmd, attrs: AttrWriter, kind: Kind) -> Result<Vec<GenlRaw>> {
        if !self.inner.caps.supports(cmd) {
            return Err(Error::Unsupported { command: cmd });
        }
        let msg = GenlRaw::new(
            self.inner.caps.family_id,
            cmd.number(),
            MPTCP_PM_VER,
            attrs.finish(),
        );
        let flags = match kind {
            Kind::Do => NLM_F_REQUEST | NLM_F_ACK,
            Kind::Dump => NLM_F_REQUEST | NLM_F_DUMP,
        };
        let seconds = self.inner.timeout.as_secs();
        tokio::time::timeout(
            self.inner.timeout,
            exchange(&self.inner.conn, msg, flags, kind),
        )
        .await
        .map_err(|_| Error::Timeout {
            command: cmd,
            seconds,
        })?
        .map_err(|e| e.for_command(cmd))
    }
}

/// Subscribe to path-manager events in the calling thread's network namespace (`ip mptcp
/// monitor`): resolves the family on a short-lived connection, then joins
/// `mptcp_pm_events` on a socket of its own. Needs a tokio runtime.
pub async fn subscribe_events() -> Result<EventStream> {
    let handle = PmHandle::connect().await?;
    handle.subscribe_events()
}

/// An error before we know which PM command it belongs to.
enum ExchangeError {
    Kernel { errno: i32, message: Option<String> },
    Other(Error),
}

impl ExchangeError {
    fn for_command(self, command: Cmd) -> Error {
        match self {
            ExchangeError::Kernel { errno, message } => Error::Kernel {
                command,
                errno,
                message,
            },
            ExchangeError::Other(e) => e,
        }
    }
}

async fn exchange(
    conn: &ConnectionHandle<GenlRaw>,
    msg: GenlRaw,
    flags: u16,
    kind: Kind,
) -> Result<Vec<GenlRaw>, ExchangeError> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    let mut responses = conn
        .request(nl, SocketAddr::new(0, 0))
        .map_err(|_| ExchangeError::Other(Error::ConnectionClosed))?;
    let mut replies = Vec::new();
    while let Some(resp) = responses.next().await {
        match resp.payload {
            NetlinkPayload::InnerMessage(m) => replies.push(m),
            NetlinkPayload::Error(e) => match e.code {
                None => return Ok(replies),
                Some(code) => {
                    return Err(ExchangeError::Kernel {
                        errno: code.get().checked_neg().unwrap_or(i32::MAX),
                        message: extack_message(resp.header.flags, &e.header),
                    })
                }
            },
            NetlinkPayload::Done(d) if kind == Kind::Dump => {
                // A dump can end in DONE carrying a negative error code.
                if d.code < 0 {
                    return Err(ExchangeError::Kernel {
                        errno: d.code.checked_neg().unwrap_or(i32::MAX),
                        message: None,
                    });
                }
                return Ok(replies);
            }
            NetlinkPayload::Overrun(_) => {
                return Err(ExchangeError::Other(Error::Io(
                    std::io::Error::from_raw_os_error(libc::ENOBUFS),
                )))
            }
            _ => {}
        }
    }
    Err(ExchangeError::Other(Error::ConnectionClosed))
}

/// CTRL_CMD_GETFAMILY "mptcp_pm" on the connection, plus the sysctl names.
async fn resolve_family(
    conn: &ConnectionHandle<GenlRaw>,
    timeout: Duration,
) -> Result<Capabilities> {
    let ctrl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(MPTCP_PM_NAME.to_string())],
    });
    let mut payload = vec![0u8; ctrl.buffer_len()];
    ctrl.emit(&mut payload);
    let msg = GenlRaw {
        kind: GENL_ID_CTRL,
        payload,
    };
    let replies = tokio::time::timeout(
        timeout,
        exchange(conn, msg, NLM_F_REQUEST | NLM_F_ACK, Kind::Do),
    )
    .await
    .map_err(|_| Error::Io(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
    .map_err(|e| match e {
        ExchangeError::Kernel { errno, .. } if errno == libc::ENOENT => Error::FamilyNotFound,
        ExchangeError::Kernel { errno, .. } => Error::Io(std::io::Error::from_raw_os_error(errno)),
        ExchangeError::Other(e) => e,
    })?;
    let reply = replies
        .first()
        .ok_or_else(|| Error::decode("GETFAMILY answered without a reply message"))?;
    let mut caps = Capabilities::decode_family(reply.split()?.1)?;
    caps.sysctls = read_sysctl_names(Path::new("/proc/sys/net/mptcp"));
    Ok(caps)
}
