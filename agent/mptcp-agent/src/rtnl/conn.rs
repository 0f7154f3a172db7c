// SPDX-License-Identifier: MIT OR Apache-2.0
//! The rtnetlink connection over netlink-proto: dumps, acknowledged changes, and the
//! multicast messages the kernel sends on the same socket.

use std::io;

use futures::{channel::mpsc::UnboundedReceiver, Stream, StreamExt};
use netlink_packet_core::{
    ErrorMessage, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_proto::{Connection, ConnectionHandle};

use netlink_sys::{protocols::NETLINK_ROUTE, SocketAddr};

use super::{
    message::{dump_request, RtnlRaw},
    wire::DecodeError,
};

/// Multicast messages, in the order the kernel sent them.
pub type Messages = UnboundedReceiver<(NetlinkMessage<RtnlRaw>, SocketAddr)>;

/// What can go wrong with an rtnetlink request. The texts of the first and last are
/// rtnetlink 0.18's (they end up in logs and op results).
#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    /// NLMSG_ERROR with an errno.
    #[error("Received a netlink error message {0}")]
    Kernel(ErrorMessage),
    /// A reply of a type the request does not produce.
    #[error("Received an unexpected message of type {0}")]
    Unexpected(u16),
    #[error("malformed rtnetlink message: {0}")]
    Malformed(#[from] DecodeError),
    /// The connection task is gone.
    #[error("A netlink request failed")]
    RequestFailed,
}

impl RtnlError {
    /// The kernel's errno (positive), for [`RtnlError::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            RtnlError::Kernel(m) => m.code.map(|c| c.get().wrapping_neg()),
            _ => None,
        }
    }
}

/// Requests on one rtnetlink socket; cheap to clone. The connection task serves it.
#[derive(Debug, Clone)]
pub struct Handle(ConnectionHandle<RtnlRaw>);

/// A connection (to spawn), its handle, and the multicast messages it receives.
pub fn new_connection() -> io::Result<(Connection<RtnlRaw>, Handle, Messages)> {
    let (conn, handle, messages) = netlink_proto::new_connection(NETLINK_ROUTE)?;
    Ok((conn, Handle(handle), messages))
}

/// The netlink message of a request (netlink-proto sets the sequence number).
pub(super) fn request(msg: RtnlRaw, flags: u16) -> NetlinkMessage<RtnlRaw> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    nl.finalize();
    nl
}

impl Handle {
    fn send(
        &self,
        msg: RtnlRaw,
        flags: u16,
    ) -> Result<impl Stream<Item = NetlinkMessage<RtnlRaw>>, RtnlError> {
        self.0
            .request(request(msg, flags), SocketAddr::new(0, 0))
            .map_err(|_| RtnlError::RequestFailed)
    }

    /// A dump (`get`: RTM_GET*) of one address family: the replies (the matching
    /// RTM_NEW*), parsed, in the kernel's order. A reply that does not parse is logged
    /// and skipped, as netlink-proto skipped the messages netlink-packet-route could not
    /// decode; a kernel error ends the dump.
    pub async fn dump<T>(
        &self,
        get: u16,
        family: u8,
        parse: fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, RtnlError> {
        // RTM_NEW* is RTM_GET* - 2 in every rtnetlink family.
        let reply = get - 2;
        let mut replies = self.send(dump_request(get, family), NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut out = Vec::new();
        while let Some(m) = replies.next().await {
            match m.payload {
                NetlinkPayload::InnerMessage(raw) if raw.kind == reply => {
                    match parse(&raw.payload) {
                        Ok(v) => out.push(v),
                        Err(e) => log::error!("rtnetlink: skipping a dump reply: {e}"),
                    }
                }
                NetlinkPayload::Error(e) => return Err(RtnlError::Kernel(e)),
                _ => return Err(RtnlError::Unexpected(m.header.message_type)),
            }
        }
        Ok(out)
    }

    /// A change the kernel acknowledges (`flags` besides REQUEST and ACK: CREATE, EXCL).
    pub async fn ack(&self, req: RtnlRaw, flags: u16) -> Result<(), RtnlError> {
        let mut replies = self.send(req, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        while let Some(m) = replies.next().await {
            // The ACK itself is not forwarded: the stream just ends.
            if let NetlinkPayload::Error(e) = m.payload {
                return Err(RtnlError::Kernel(e));
            }
        }
        Ok(())
    }
}
