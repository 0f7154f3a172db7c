// SPDX-License-Identifier: MIT OR Apache-2.0
//! What plan() tells the operator besides its ops, in the words the log and status use.

use std::{fmt, net::IpAddr};

use crate::{
    model::Family,
    op::{Op, OpError},
    refusal::Refusal,
    time::Millis,
};

/// Something the operator should know; not an op. Reported when it first appears.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Diagnostic {
    /// The agent leaves this interface alone, and why (coexistence).
    Refused {
        interface: String,
        reason: Refusal,
    },
    MptcpdRunning {
        pid: u32,
    },
    SysctlMissing {
        name: String,
        since: String,
    },
    NoEvents,
    NoSetFlags {
        interface: String,
    },
    FullmeshUnsupported {
        interface: String,
    },
    LaminarUnsupported {
        interface: String,
        probe: String,
    },
    UserspacePm {
        setting: String,
    },
    MptcpDisabled,
    /// The kernel's blackhole detection fired (its counter rose while the agent watched):
    /// new outgoing MPTCP connections are plain TCP for at least `timeout_s` seconds.
    BlackholeOff {
        timeout_s: u64,
    },
    NoRoute {
        interface: String,
        family: Family,
    },
    NoTable {
        interface: String,
    },
    NoFreeId {
        addr: IpAddr,
    },
    LimitTooLow {
        subflows: u32,
        endpoints: usize,
    },
    GaveUp {
        interface: String,
        addr: IpAddr,
        attempts: u32,
    },
    /// Linux 5.10: few endpoint ids left in this namespace; withdrawals are paused.
    EndpointIdsLow {
        left: u16,
    },
    /// Linux 5.10: no endpoint id left; every add fails until a reboot.
    EndpointIdsUsedUp,
    RetryLater {
        op: Op,
        error: OpError,
        at: Millis,
    },
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::Refused { interface, reason } => {
                write!(f, "{interface}: left alone: {reason}; to change: {}", reason.advice())
            }
            Diagnostic::MptcpdRunning { pid } => write!(
                f,
                "mptcpd (pid {pid}) runs in this network namespace and manages MPTCP endpoints and limits on every \
                 interface; mptcp-agent touches neither while it runs. Stop and disable it \
                 (`systemctl disable --now mptcp.service`, or remove it from the image)"
            ),
            Diagnostic::SysctlMissing { name, since } => write!(
                f,
                "sysctl.{name} is configured but this kernel has no net.mptcp.{name} (added in Linux {since}); not set"
            ),
            Diagnostic::NoEvents => f.write_str(
                "this kernel has no mptcp_pm_events multicast group (Linux 5.12+ or the MPTCP backport): lost subflows \
                 cannot be seen, so they are not re-established",
            ),
            Diagnostic::NoSetFlags { interface } => write!(
                f,
                "{interface}: on_carrier_loss = \"backup\" needs MPTCP_PM_CMD_SET_FLAGS (Linux 5.12+ or the MPTCP \
                 backport), which this kernel lacks; withdrawing the endpoint instead"
            ),
            Diagnostic::FullmeshUnsupported { interface } => write!(
                f,
                "{interface}: flag \"fullmesh\" is configured but this kernel does not support it; the endpoint is \
                 added without it"
            ),
            Diagnostic::LaminarUnsupported { interface, probe } => write!(
                f,
                "{interface}: flag \"laminar\" is configured but this kernel does not know it (Linux 6.18+; {probe}); \
                 the endpoint is added without it (a kernel that does not know the flag would store it and do nothing)"
            ),
            Diagnostic::UserspacePm { setting } => write!(
                f,
                "{setting} selects the userspace path manager: in-kernel endpoints have no effect until it is set back"
            ),
            Diagnostic::MptcpDisabled => f.write_str(
                "net.mptcp.enabled is 0: applications cannot create MPTCP sockets (set sysctl.enabled = true)",
            ),
            Diagnostic::BlackholeOff { timeout_s } => write!(
                f,
                "the kernel's MPTCP blackhole detection fired (MPTcpExtBlackhole rose: SYNs with MPTCP options \
                 were dropped where plain TCP got through): new outgoing MPTCP connections from this network \
                 namespace are plain TCP for net.mptcp.blackhole_timeout = {timeout_s} s after the last \
                 detection, longer after repeats (the period doubles, up to 64 times). Find the middlebox; \
                 sysctl.blackhole_timeout = 0 in this config turns the detection off"
            ),
            Diagnostic::NoRoute { interface, family } => write!(
                f,
                "{interface}: {family} address but no default route via it in any table and no gateway known \
                 (NetworkManager's IP or DHCP config, gateway4/gateway6 in the link rule, or a point-to-point \
                 link); no endpoint"
            ),
            Diagnostic::NoTable { interface } => write!(
                f,
                "{interface}: routing.table_base + ifindex is not a usable table number; no policy routing"
            ),
            Diagnostic::NoFreeId { addr } => write!(f, "{addr}: all 255 endpoint ids are in use"),
            Diagnostic::LimitTooLow { subflows, endpoints } => write!(
                f,
                "limits.subflows = {subflows} but {endpoints} uplinks have subflow endpoints: connections use at most \
                 {subflows} additional subflows"
            ),
            Diagnostic::GaveUp { interface, addr, attempts } => write!(
                f,
                "{interface}: subflows from {addr} keep failing; gave up after {attempts} re-adds (reestablish.max_attempts) \
                 until the link or its address changes"
            ),
            Diagnostic::EndpointIdsLow { left } => write!(
                f,
                "this kernel (Linux 5.10) has {left} of 255 MPTCP endpoint ids left in this network namespace: it \
                 never reuses one, not even after a flush, and only a reboot starts over. To make them last, \
                 endpoints now stay in place while their uplink lacks carrier or a route instead of being \
                 withdrawn and added again. The MPTCP backport (kernel-patches/) lifts the limit"
            ),
            Diagnostic::EndpointIdsUsedUp => f.write_str(
                "this kernel (Linux 5.10) has used all 255 MPTCP endpoint ids of this network namespace and \
                 refuses every new endpoint (\"too many addresses or duplicate one\") until a reboot; the MPTCP \
                 backport (kernel-patches/) reuses ids",
            ),
            Diagnostic::RetryLater { op, error, at } => write!(f, "`{op}` failed ({error}); retrying at {at}"),
        }
    }
}
