// SPDX-License-Identifier: MIT OR Apache-2.0
//! Client for the Linux MPTCP in-kernel path manager over generic netlink (family
//! `mptcp_pm`), on the same netlink crates as rtnetlink 0.18.
//!
//! ```no_run
//! # async fn demo() -> mptcp_genl::Result<()> {
//! use mptcp_genl::{Endpoint, EndpointFlags, PmHandle};
//! let pm = PmHandle::connect().await?;            // resolves the family, probes capabilities
//! println!("{}", pm.capabilities().generation());
//! pm.add_endpoint(&Endpoint::new("10.0.1.2".parse().unwrap(), EndpointFlags::SUBFLOW)).await?;
//! for ep in pm.endpoints().await? {
//!     println!("{} id {} {:?}", ep.addr, ep.id, ep.flags);
//! }
//! # Ok(()) }
//! ```
//!
//! Everything is bound to the network namespace of the thread that creates the handle or
//! event stream. Kernel replies are checked attribute by attribute: malformed input is an
//! [`Error::Decode`], never a panic; attributes and flag bits this crate does not know are
//! kept ([`RawAttr`], unnamed bits of [`EndpointFlags`] / [`EventFlags`]).

mod caps;
mod endpoint;
mod error;
mod event;
mod flag_probe;
mod handle;
mod message;
pub mod uapi;

#[cfg(test)]
mod tests;

pub use caps::{Capabilities, KernelGeneration};
pub use endpoint::{Endpoint, EndpointFlags, EndpointKey, Limits};
pub use error::{Error, Result};
pub use event::{EventFlags, EventKind, EventStream, PmEvent};
pub use flag_probe::{probe_endpoint_flag, release_version, FlagProbe};
pub use handle::{subscribe_events, PmHandle, DEFAULT_TIMEOUT};
pub use message::Cmd;
pub use netlink_attr::RawAttr;
