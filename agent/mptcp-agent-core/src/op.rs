// SPDX-License-Identifier: MIT OR Apache-2.0
//! Operations `plan()` asks the adapters to carry out.

use std::fmt;

use crate::model::{EndpointFlags, Family, KernelEndpoint, Limits, Route, Rule};

#[derive(Debug, Clone, PartialEq, Eq)]
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
}

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
