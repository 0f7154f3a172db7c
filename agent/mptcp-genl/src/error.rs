// SPDX-License-Identifier: MIT OR Apache-2.0
//! Errors of the MPTCP path-manager client.

use std::io;

use crate::Cmd;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the kernel's `mptcp_pm` family.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel answered the command with an error (`NLMSG_ERROR` with a negative code).
    /// `message` is the extended-ACK text (`NLMSGERR_ATTR_MSG`) when the kernel gave one,
    /// e.g. "limit greater than maximum (8)".
    #[error("kernel rejected {command}: {} (errno {errno}){}", io::Error::from_raw_os_error(*errno), fmt_msg(message))]
    Kernel {
        command: Cmd,
        /// Positive errno (`EEXIST`, `EINVAL`, ...).
        errno: i32,
        message: Option<String>,
    },
    /// A reply or event that does not have the shape the uapi header promises
    /// (truncated, wrong attribute length, bad address family, ...). Attribute-level
    /// problems come from [`netlink_attr::DecodeError`], whose text this is.
    #[error("malformed netlink message: {0}")]
    Decode(String),
    /// The kernel has no `mptcp_pm` generic netlink family: built without CONFIG_MPTCP,
    /// or MPTCP unavailable in this network namespace.
    #[error("generic netlink family \"mptcp_pm\" not found (kernel without MPTCP?)")]
    FamilyNotFound,
    /// This kernel's `mptcp_pm` family does not offer the command (see [`crate::Capabilities`]);
    /// nothing was sent.
    #[error("{command} is not supported by this kernel's mptcp_pm family")]
    Unsupported { command: Cmd },
    /// The family has no `mptcp_pm_events` multicast group (kernels before 5.12).
    #[error(
        "this kernel's mptcp_pm family has no \"mptcp_pm_events\" multicast group (before 5.12)"
    )]
    NoEventsGroup,
    /// The caller asked for something the kernel cannot express (checked before sending).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The kernel dropped events because the socket receive buffer was full (ENOBUFS).
    /// The event stream continues; resynchronise state with a dump.
    #[error("events were lost (netlink receive buffer overrun); resynchronise with a dump")]
    EventsLost,
    /// No reply within the request timeout.
    #[error("no reply from the kernel to {command} within {seconds} s")]
    Timeout { command: Cmd, seconds: u64 },
    /// Socket error.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The netlink connection task is gone (its runtime shut down or the socket failed).
    #[error("netlink connection closed")]
    ConnectionClosed,
}

fn fmt_msg(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": \"{m}\""),
        None => String::new(),
    }
}

/// The attribute reader's typed errors are all malformed messages to this crate's callers.
impl From<netlink_attr::DecodeError> for Error {
    fn from(e: netlink_attr::DecodeError) -> Self {
        Error::Decode(e.to_string())
    }
}

impl Error {
    pub(crate) fn decode(msg: impl Into<String>) -> Self {
        Error::Decode(msg.into())
    }

    /// The kernel's errno for [`Error::Kernel`].
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// The kernel's extended-ACK message for [`Error::Kernel`], if it sent one.
    pub fn kernel_message(&self) -> Option<&str> {
        match self {
            Error::Kernel { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// True for EEXIST: an endpoint with this address or id already exists.
    pub fn is_already_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}
