// SPDX-License-Identifier: MIT OR Apache-2.0
//! Operations `plan()` asks the adapters to carry out, and how they fail.

use std::{fmt, net::IpAddr};

use crate::model::{EndpointFlags, Family, KernelEndpoint, Limits, Route, Rule};

/// Ordered so that failures can be keyed by the op itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Write `/proc/sys/net/mptcp/NAME`.
    SetSysctl {
        name: String,
        value: String,
    },
    SetLimits(Limits),
    DelEndpoint(KernelEndpoint),
    /// Change flags in place (MPTCP_PM_CMD_SET_FLAGS); sends MP_PRIO on existing subflows.
    SetEndpointFlags {
        endpoint: KernelEndpoint,
        flags: EndpointFlags,
    },
    AddEndpoint(KernelEndpoint),
    /// Delete and add again with the same id and these flags. Only an endpoint add opens
    /// subflows on established connections, so this is how a lost subflow comes back.
    ReaddEndpoint(KernelEndpoint),
    /// Delete the link's neighbour (ARP/NDP) entries of this family that are still
    /// resolving or have failed. Packets sent while the carrier was gone leave the
    /// gateway's entry INCOMPLETE with its next probe up to 1 s away, and every packet after
    /// carrier back (a join's SYN too) waits for that probe; a fresh entry probes at once.
    ResetNeighbours {
        ifindex: u32,
        family: Family,
    },
    AddRoute(Route),
    DelRoute(Route),
    AddRule(Rule),
    DelRule(Rule),
}

impl Op {
    /// Whether this op changes MPTCP endpoints (the adapter re-reads them afterwards).
    pub fn touches_endpoints(&self) -> bool {
        matches!(
            self,
            Op::DelEndpoint(_)
                | Op::SetEndpointFlags { .. }
                | Op::AddEndpoint(_)
                | Op::ReaddEndpoint(_)
        )
    }

    /// Whether this op is about `addr`: the endpoint's address, a route's destination,
    /// gateway or source, a rule's source.
    pub fn concerns(&self, addr: IpAddr) -> bool {
        match self {
            Op::DelEndpoint(e)
            | Op::AddEndpoint(e)
            | Op::ReaddEndpoint(e)
            | Op::SetEndpointFlags { endpoint: e, .. } => e.addr == addr,
            Op::AddRoute(r) | Op::DelRoute(r) => {
                r.dst == addr || r.gateway == Some(addr) || r.prefsrc == Some(addr)
            }
            Op::AddRule(r) | Op::DelRule(r) => r.src.is_some_and(|(a, _)| a == addr),
            Op::SetSysctl { .. } | Op::SetLimits(_) | Op::ResetNeighbours { .. } => false,
        }
    }
}

/// Linux's EINVAL, for the one answer the core reads (the same value on every architecture
/// the agent runs on; the core has no libc).
pub const EINVAL: i32 = 22;

/// What kind of failure an op met, as the adapter classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpErrorKind {
    /// The kernel answered the request with an error (netlink, or a sysctl write it
    /// refused); `errno` says which.
    Rejected,
    /// The kernel lacks the command, family or setting; nothing was changed.
    Unsupported,
    /// No answer within the request timeout.
    Timeout,
    /// The request did not reach the kernel or its answer was lost (socket, connection).
    Io,
    /// An answer of a shape the client does not understand.
    Malformed,
    /// Something the kernel cannot express, caught before sending.
    Invalid,
}

/// Why an op failed: decisions read `kind` and `errno`, people read `message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpError {
    pub kind: OpErrorKind,
    /// Positive errno, when the kernel or the OS gave one.
    pub errno: Option<i32>,
    /// The whole error as the adapter words it, for logs and status.
    pub message: String,
}

impl OpError {
    pub fn new(kind: OpErrorKind, errno: Option<i32>, message: impl Into<String>) -> OpError {
        OpError {
            kind,
            errno,
            message: message.into(),
        }
    }

    /// The kernel rejected the request with `errno`.
    pub fn rejected(errno: i32, message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Rejected, Some(errno), message)
    }

    /// Whether the kernel rejected the request with this errno.
    pub fn is_rejected_with(&self, errno: i32) -> bool {
        self.kind == OpErrorKind::Rejected && self.errno == Some(errno)
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

fn endpoint(f: &mut fmt::Formatter<'_>, e: &KernelEndpoint) -> fmt::Result {
    write!(f, "{} id {} {}", e.addr, e.id, e.flags)?;
    if let Some(port) = e.port {
        write!(f, " port {port}")?;
    }
    if let Some(i) = e.ifindex {
        write!(f, " ifindex {i}")?;
    }
    Ok(())
}

fn route(f: &mut fmt::Formatter<'_>, r: &Route) -> fmt::Result {
    if r.is_default() {
        f.write_str("default")?;
    } else {
        write!(f, "{}/{}", r.dst, r.prefix_len)?;
    }
    if let Some(g) = r.gateway {
        write!(f, " via {g}")?;
    }
    if let Some(i) = r.ifindex {
        write!(f, " ifindex {i}")?;
    }
    if let Some(s) = r.prefsrc {
        write!(f, " src {s}")?;
    }
    write!(f, " table {} proto {}", r.table, r.protocol)?;
    if r.metric != 0 {
        write!(f, " metric {}", r.metric)?;
    }
    Ok(())
}

fn rule(f: &mut fmt::Formatter<'_>, r: &Rule) -> fmt::Result {
    write!(f, "pref {} ", r.priority)?;
    match r.src {
        Some((a, l)) => write!(f, "from {a}/{l}")?,
        None => f.write_str("from all")?,
    }
    write!(f, " lookup {} proto {}", r.table, r.protocol)
}

impl fmt::Display for Op {
    /// Close to the `ip` command that would do the same, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::SetSysctl { name, value } => write!(f, "sysctl net.mptcp.{name}={value}"),
            Op::SetLimits(l) => write!(
                f,
                "limits set subflows {} add_addr_accepted {}",
                l.subflows, l.add_addr_accepted
            ),
            Op::DelEndpoint(e) => {
                f.write_str("endpoint delete ")?;
                endpoint(f, e)
            }
            Op::SetEndpointFlags { endpoint: e, flags } => {
                f.write_str("endpoint change ")?;
                endpoint(f, e)?;
                write!(f, " -> {flags}")
            }
            Op::AddEndpoint(e) => {
                f.write_str("endpoint add ")?;
                endpoint(f, e)
            }
            Op::ReaddEndpoint(e) => {
                f.write_str("endpoint re-add ")?;
                endpoint(f, e)
            }
            Op::ResetNeighbours { ifindex, family } => write!(
                f,
                "neighbour flush ifindex {ifindex} {family} nud incomplete,failed"
            ),
            Op::AddRoute(r) => {
                f.write_str("route add ")?;
                route(f, r)
            }
            Op::DelRoute(r) => {
                f.write_str("route delete ")?;
                route(f, r)
            }
            Op::AddRule(r) => {
                f.write_str("rule add ")?;
                rule(f, r)
            }
            Op::DelRule(r) => {
                f.write_str("rule delete ")?;
                rule(f, r)
            }
        }
    }
}
