// SPDX-License-Identifier: MIT OR Apache-2.0
//! The message type netlink-proto carries for both clients: type and payload bytes.

use std::convert::Infallible;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkPayload, NetlinkSerializable,
};

/// A netlink message kept as bytes. netlink-proto silently drops a message whose payload
/// fails to deserialize, so this never fails: the client parses the payload itself and
/// sees a malformed message as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The netlink message type: RTM_* for rtnetlink, the family id for generic netlink.
    pub kind: u16,
    /// Everything after the netlink header: fixed header, then attributes.
    pub payload: Vec<u8>,
}

impl NetlinkSerializable for RawMessage {
    fn message_type(&self) -> u16 {
        self.kind
    }

    fn buffer_len(&self) -> usize {
        self.payload.len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer[..self.payload.len()].copy_from_slice(&self.payload);
    }
}

impl NetlinkDeserializable for RawMessage {
    type Error = Infallible;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, Infallible> {
        Ok(RawMessage {
            kind: header.message_type,
            payload: payload.to_vec(),
        })
    }
}

impl From<RawMessage> for NetlinkPayload<RawMessage> {
    fn from(m: RawMessage) -> Self {
        NetlinkPayload::InnerMessage(m)
    }
}
