// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every input of the agent as one type. Adapters (rtnetlink, `mptcp_pm`, D-Bus, signals,
//! timers, the executor) turn what they see into these; [`crate::Observed::apply`] folds
//! them into the observed state.

use std::collections::BTreeMap;

use crate::{
    model::{
        Address, KernelCaps, KernelEndpoint, Limits, Link, MptcpEvent, NmDevice, NmVersion, Route,
        Rule,
    },
    op::{Op, OpError},
};

/// A full rtnetlink dump; replaces what was known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelSnapshot {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    // rtnetlink
    KernelSnapshot(KernelSnapshot),
    LinkChanged(Link),
    LinkRemoved {
        ifindex: u32,
    },
    AddressAdded(Address),
    AddressRemoved(Address),
    RouteAdded(Route),
    RouteRemoved(Route),
    RuleAdded(Rule),
    RuleRemoved(Rule),

    // mptcp_pm and /proc/sys/net/mptcp
    Capabilities(KernelCaps),
    /// A full endpoint dump; replaces what was known.
    Endpoints(Vec<KernelEndpoint>),
    Limits(Limits),
    /// Current values of `net.mptcp.*`, by name.
    Sysctls(BTreeMap<String, String>),
    Mptcp(MptcpEvent),

    // NetworkManager
    /// NetworkManager is on the bus (at start, or it came back).
    NmAppeared {
        version: Option<NmVersion>,
        startup: bool,
    },
    /// `Startup` property changed (true while NetworkManager is still assuming devices).
    NmStartup(bool),
    /// All devices, after [`Event::NmAppeared`].
    NmDevices(Vec<NmDevice>),
    /// A device appeared or one of its properties changed (full, current copy).
    NmDevice(NmDevice),
    NmDeviceRemoved {
        path: String,
    },
    /// NetworkManager is not on the bus (at start, or its name owner went away), or the
    /// config says not to follow it.
    NmGone,
    /// NetworkManager's config files, path and contents, in its load order.
    NmConfFiles(Vec<(String, String)>),

    /// An mptcpd process in this network namespace (pid), or none.
    Mptcpd(Option<u32>),
    /// A reading of the MPTCP blackhole counter (`MPTcpExtBlackhole`), or why there is
    /// none, with the wall clock of the reading (µs since the epoch, for status).
    BlackholeCounter {
        reading: Result<u64, String>,
        wall_usec: u64,
    },

    /// The executor carried out (or failed) an op.
    OpDone {
        op: Op,
        error: Option<OpError>,
    },
    /// Time passed (backoff timers).
    Tick,
}
