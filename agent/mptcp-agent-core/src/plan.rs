// SPDX-License-Identifier: MIT OR Apache-2.0
//! `plan(config, observed, now) -> Plan`: the agent's decisions, as a pure function.
//!
//! Rules (issue 3), each with a unit test in `tests.rs`:
//! * An uplink's endpoint exists only while the uplink is *usable*: carrier, an eligible
//!   address, a route (a default route in main, or a per-uplink policy table), and, when
//!   NetworkManager manages the device, state ACTIVATED (never before its route). Without
//!   NetworkManager (or for devices it does not manage, or while it is starting up) the
//!   kernel criteria alone decide.
//! * Carrier loss withdraws the endpoint at once, or demotes it to backup where the link's
//!   policy says so and the kernel can change flags in place.
//! * Before an endpoint comes back (added, or restored from backup), the link's neighbour
//!   entries left resolving by the outage are reset, so the join is not held until their
//!   next probe.
//! * One decision per transition while NetworkManager catches up: an endpoint
//!   stays through NetworkManager's re-activation while carrier, address and route stay; a
//!   stale ACTIVATED after NetworkManager took the device down, and a carrier back that
//!   races NetworkManager's carrier-wait, wait for its next report.
//! * A subflow lost with an error while its link is usable is brought back by re-adding
//!   only that endpoint, with bounded exponential backoff. Nothing else is touched.
//! * Address changes remove the old endpoint and add the new one; ids are stable per
//!   address ([`crate::IdAllocator`]).
//! * Endpoints already right are adopted as they are; endpoints the agent owns (bound to,
//!   or carrying an address of, a link it manages) that are not wanted are removed.
//! * Limits and `net.mptcp.*` sysctls follow the config, where the kernel has them.
//! * An uplink without a default route in main gets a table and a source rule, removed
//!   with its endpoint.
//! * Interfaces where NetworkManager's own MPTCP is on, or everything while mptcpd runs,
//!   are refused with a message that says what to change.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use crate::{
    config::{sysctl_since, CarrierLoss, Config, LinkPolicy},
    model::{
        address_unsuitable, nm_state, AddrFlags, Address, DeviceType, EndpointFlags, Family,
        KernelCaps, KernelEndpoint, Limits, Link, NmDevice, Route, Rule, TABLE_DEFAULT,
        TABLE_LOCAL, TABLE_MAIN,
    },
    op::{Op, OpError, EINVAL},
    refusal::{NmFlagsSource, Refusal},
    state::{same_rule, NmObserved, NmPresent, Observed},
    time::Millis,
};

/// NetworkManager's `connection.mptcp-flags` bits the agent looks at.
const NM_MPTCP_DISABLED: u32 = 0x1;
const NM_MPTCP_DEFAULT: u32 = 0x22;

/// How long a subflow closed without error may take to come back by itself (the add that
/// follows the agent's own delete) before it counts as lost.
const CLOSE_SETTLE_MS: u64 = 500;

/// Delay before retrying an op that failed: 1 s, doubling, at most 60 s.
fn failure_retry_ms(count: u32) -> u64 {
    (1000u64 << count.saturating_sub(1).min(6)).min(60_000)
}

/// An op with the reason for it, for the one log line per decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub why: String,
}

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

/// Who decides about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// No `[[link]]` rule matches.
    Unmatched,
    /// The matching rule says `manage = false`.
    Ignored,
    /// Managed by someone else (NetworkManager's MPTCP, mptcpd).
    Refused(Refusal),
    /// A kind of link that never gets an endpoint by default (VPN, tunnel, bridge, a
    /// container's veth), and why; the matching rule can opt it in with `allow_virtual`.
    Excluded(String),
    Managed(LinkPolicy),
}

/// How an address on an uplink is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutePath {
    /// A default route via this link in the main table.
    Main,
    /// The agent's per-uplink table with a default route (`gateway` None: on-link/point-to-point).
    Policy {
        table: u32,
        gateway: Option<IpAddr>,
    },
    Missing,
}

/// What the agent wants for one family of one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Active(EndpointFlags),
    /// Carrier lost, policy "backup": keep the endpoint, flagged backup.
    Demoted(EndpointFlags),
    /// No endpoint, and why.
    Absent(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyAssessment {
    pub family: Family,
    pub address: Option<Address>,
    pub route: RoutePath,
    pub want: Want,
}

/// The agent's view of one link: for decisions, logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAssessment {
    pub ifindex: u32,
    pub name: String,
    pub device_type: Option<DeviceType>,
    pub metered: bool,
    /// Name of the matching `[[link]]` rule.
    pub rule: Option<String>,
    pub control: Control,
    pub carrier: bool,
    /// NetworkManager's device state, when it manages the device and is followed.
    pub nm_state: Option<u32>,
    pub families: Vec<FamilyAssessment>,
}

/// The result of planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In execution order.
    pub steps: Vec<Step>,
    pub diagnostics: BTreeSet<Diagnostic>,
    /// Plan again at this time even without events (a backoff ends).
    pub wake_at: Option<Millis>,
}

impl Plan {
    fn wake(&mut self, at: Millis) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// Assess every (non-loopback) link.
pub fn assess(cfg: &Config, obs: &Observed) -> Vec<LinkAssessment> {
    let nm = followed_nm(cfg, obs);
    obs.links
        .values()
        .filter(|l| !l.loopback)
        .map(|link| assess_link(cfg, obs, nm, link))
        .collect()
}

fn followed_nm<'a>(cfg: &Config, obs: &'a Observed) -> Option<&'a NmPresent> {
    match &obs.nm {
        NmObserved::Present(p) if cfg.networkmanager.follow => Some(p),
        _ => None,
    }
}

fn assess_link(
    cfg: &Config,
    obs: &Observed,
    nm: Option<&NmPresent>,
    link: &Link,
) -> LinkAssessment {
    let dev = nm.and_then(|p| p.device(&link.name));
    let device_type = dev.map(|d| d.device_type).or(link.kind);
    let metered = dev.is_some_and(|d| d.metered.is_metered());
    let rule = cfg
        .links
        .iter()
        .find(|r| r.matches(&link.name, device_type, metered));
    let control = match rule {
        None => Control::Unmatched,
        Some(r) => match r.policy {
            None => Control::Ignored,
            Some(p) => match (
                p.allow_virtual,
                link.excluded_by_default(
                    dev.map(|d| d.device_type),
                    link.master.and_then(|m| obs.links.get(&m)),
                ),
            ) {
                (false, Some(why)) => Control::Excluded(why),
                _ => match coexistence(obs, nm, dev, link, device_type) {
                    Some(reason) => Control::Refused(reason),
                    None => Control::Managed(p),
                },
            },
        },
    };
    let carrier = link.has_carrier();
    // NetworkManager's device state counts only for devices it manages, and not while it
    // is starting up (after a restart it re-assumes devices; the kernel state is the truth).
    let nm_device = dev.filter(|d| d.managed());
    let nm_gate = match (nm, nm_device) {
        (Some(p), Some(d)) if !p.startup => {
            if obs.nm_deconfigured.contains_key(&link.ifindex) {
                NmGate::Closed(
                    "NetworkManager took the device's IP configuration down during the carrier loss; waiting \
                     for it to activate the device again"
                        .to_string(),
                )
            } else if obs.nm_verdict.contains_key(&link.ifindex) {
                NmGate::Closed(format!(
                    "carrier came back about when NetworkManager's carrier-wait ({} ms) ran out; waiting for \
                     NetworkManager to keep the device or activate it again",
                    obs.nm_conf.carrier_wait_ms(&link.name, device_type)
                ))
            } else if d.state == nm_state::ACTIVATED {
                NmGate::Open
            } else {
                let why = format!("NetworkManager device state is {}", nm_state::name(d.state));
                if (nm_state::PREPARE..=nm_state::SECONDARIES).contains(&d.state) {
                    NmGate::Activating(why)
                } else {
                    NmGate::Closed(why)
                }
            }
        }
        _ => NmGate::Open,
    };
    let mut families = Vec::new();
    if let Control::Managed(policy) = &control {
        for (family, on) in [(Family::V4, policy.ipv4), (Family::V6, policy.ipv6)] {
            if !on {
                continue;
            }
            let address = choose_address(obs, link.ifindex, family);
            let route = route_path(cfg, obs, link, family, nm_device, policy);
            let want = match &address {
                None => Want::Absent(format!("no usable {family} address")),
                Some(a) => conserve_ids(
                    obs,
                    link,
                    a,
                    want_for(obs, policy, link, a, carrier, metered, &nm_gate, route),
                ),
            };
            families.push(FamilyAssessment {
                family,
                address,
                route,
                want,
            });
        }
    }
    LinkAssessment {
        ifindex: link.ifindex,
        name: link.name.clone(),
        device_type,
        metered,
        rule: rule.map(|r| r.name.clone()),
        control,
        carrier,
        nm_state: nm_device.map(|d| d.state),
        families,
    }
}

/// With few endpoint ids left (Linux 5.10, see conserving_ids) an uplink that is not usable
/// for now keeps its endpoint as it is, as long as the address is still there.
fn conserve_ids(obs: &Observed, link: &Link, addr: &Address, want: Want) -> Want {
    if !matches!(want, Want::Absent(_)) || !conserving_ids(obs) {
        return want;
    }
    match kernel_endpoint_for(obs, &addr.addr).filter(|e| e.ifindex == Some(link.ifindex)) {
        Some(e) => Want::Active(e.flags),
        None => want,
    }
}

/// What NetworkManager's device state says about a link it manages.
enum NmGate {
    /// ACTIVATED, or NetworkManager does not decide here.
    Open,
    /// Activating (PREPARE to SECONDARIES): no new endpoint before ACTIVATED, but one that
    /// is there stays while carrier, address and route stay. NetworkManager passes through
    /// these states when it activates a device again (after its carrier-wait ran out,
    /// `nmcli device reapply`), and its reports lag the kernel's: deleting here would close
    /// a live subflow that the ACTIVATED a moment later opens again.
    Activating(String),
    Closed(String),
}

#[allow(clippy::too_many_arguments)]
fn want_for(
    obs: &Observed,
    policy: &LinkPolicy,
    link: &Link,
    addr: &Address,
    carrier: bool,
    metered: bool,
    nm_gate: &NmGate,
    route: RoutePath,
) -> Want {
    let caps = obs.caps.as_ref();
    let mut flags = policy.flags;
    if metered && policy.metered_backup {
        flags = flags.union(EndpointFlags::BACKUP);
    }
    if flags.contains(EndpointFlags::FULLMESH) && !caps.is_some_and(|c| c.fullmesh) {
        flags = flags.without(EndpointFlags::FULLMESH);
    }
    if flags.contains(EndpointFlags::LAMINAR) && !caps.is_some_and(|c| c.laminar) {
        flags = flags.without(EndpointFlags::LAMINAR);
    }
    if !carrier {
        let can_demote = policy.on_carrier_loss == CarrierLoss::Backup
            && caps.is_some_and(|c| c.set_flags)
            && matches!(nm_gate, NmGate::Open)
            && kernel_endpoint_for(obs, &addr.addr)
                .is_some_and(|e| e.ifindex == Some(link.ifindex));
        return if can_demote {
            Want::Demoted(flags.union(EndpointFlags::BACKUP))
        } else {
            Want::Absent(
                if link.up {
                    "no carrier"
                } else {
                    "link is down"
                }
                .to_string(),
            )
        };
    }
    let has_endpoint =
        kernel_endpoint_for(obs, &addr.addr).is_some_and(|e| e.ifindex == Some(link.ifindex));
    match nm_gate {
        NmGate::Open => {}
        NmGate::Activating(_) if has_endpoint => {}
        NmGate::Activating(why) | NmGate::Closed(why) => return Want::Absent(why.clone()),
    }
    match route {
        RoutePath::Missing => Want::Absent(format!("no {} default route", Family::of(&addr.addr))),
        RoutePath::Main | RoutePath::Policy { .. } => Want::Active(flags),
    }
}

fn kernel_endpoint_for<'a>(obs: &'a Observed, addr: &IpAddr) -> Option<&'a KernelEndpoint> {
    obs.endpoints.as_ref()?.values().find(|e| e.addr == *addr)
}

/// The address of this family to use: one per family and link. Prefers the address that
/// already has an endpoint (no churn), then primary over secondary, then static, then the
/// lowest.
fn choose_address(obs: &Observed, ifindex: u32, family: Family) -> Option<Address> {
    obs.addresses_of(ifindex)
        .filter(|a| Family::of(&a.addr) == family && address_unsuitable(a).is_none())
        .min_by_key(|a| {
            let has_endpoint = kernel_endpoint_for(obs, &a.addr).is_some();
            let secondary = family == Family::V4 && a.flags.has(AddrFlags::SECONDARY);
            let dynamic = !a.flags.has(AddrFlags::PERMANENT);
            (!has_endpoint, secondary, dynamic, a.addr)
        })
        .cloned()
}

fn route_path(
    cfg: &Config,
    obs: &Observed,
    link: &Link,
    family: Family,
    dev: Option<&NmDevice>,
    policy: &LinkPolicy,
) -> RoutePath {
    let via_link =
        |r: &&Route| r.is_default() && r.family() == family && r.ifindex == Some(link.ifindex);
    if obs
        .routes
        .iter()
        .filter(via_link)
        .any(|r| r.table == TABLE_MAIN)
    {
        return RoutePath::Main;
    }
    let Some(table) = cfg.routing.table_for(link.ifindex) else {
        return RoutePath::Missing;
    };
    // The config's gateway is the administrator's explicit word.
    let configured = match family {
        Family::V4 => policy.gateway4.map(IpAddr::V4),
        Family::V6 => policy.gateway6.map(IpAddr::V6),
    };
    if configured.is_some() {
        return RoutePath::Policy {
            table,
            gateway: configured,
        };
    }
    let foreign_table = obs.routes.iter().filter(via_link).find(|r| {
        r.protocol != cfg.routing.protocol && ![TABLE_LOCAL, TABLE_DEFAULT].contains(&r.table)
    });
    if let Some(r) = foreign_table {
        return RoutePath::Policy {
            table,
            gateway: r.gateway,
        };
    }
    let nm_gateway = dev.and_then(|d| match family {
        Family::V4 => d.gateway4.map(IpAddr::V4),
        Family::V6 => d.gateway6.map(IpAddr::V6),
    });
    if let Some(g) = nm_gateway {
        return RoutePath::Policy {
            table,
            gateway: Some(g),
        };
    }
    // Our own route from before a restart still knows the gateway.
    let ours = obs
        .routes
        .iter()
        .filter(via_link)
        .find(|r| r.protocol == cfg.routing.protocol && r.table == table);
    if let Some(r) = ours {
        return RoutePath::Policy {
            table,
            gateway: r.gateway,
        };
    }
    if link.point_to_point {
        return RoutePath::Policy {
            table,
            gateway: None,
        };
    }
    RoutePath::Missing
}

/// Why the agent must not manage this link's endpoints, if it must not.
fn coexistence(
    obs: &Observed,
    nm: Option<&NmPresent>,
    dev: Option<&NmDevice>,
    link: &Link,
    device_type: Option<DeviceType>,
) -> Option<Refusal> {
    if let Some(Some(pid)) = obs.mptcpd {
        return Some(Refusal::Mptcpd { pid });
    }
    let (p, d) = (nm?, dev?);
    // Unknown version: assume it may handle MPTCP (1.40+); refusing is the safe mistake.
    if p.version.is_some_and(|v| !v.has_mptcp()) || !d.managed() {
        return None;
    }
    let profile_flags = d.applied.as_ref().map_or(0, |a| a.mptcp_flags);
    let profile = d.applied.as_ref().map(|a| a.id.clone());
    let (flags, source) = if profile_flags != 0 {
        (profile_flags, NmFlagsSource::Profile)
    } else {
        match obs.nm_conf.mptcp_flags_for(&link.name, device_type) {
            Some(g) if g.value != 0 => (g.value, NmFlagsSource::Global { file: g.origin }),
            Some(g) => (
                NM_MPTCP_DEFAULT,
                NmFlagsSource::BuiltIn {
                    ignored: Some((g.origin, g.raw)),
                },
            ),
            None => (NM_MPTCP_DEFAULT, NmFlagsSource::BuiltIn { ignored: None }),
        }
    };
    if flags & NM_MPTCP_DISABLED != 0 {
        return None;
    }
    Some(Refusal::NetworkManager {
        version: p.version.map(|v| v.to_string()),
        interface: link.name.clone(),
        profile,
        flags,
        source,
    })
}

/// Compute the ops that bring the kernel to what the config wants, given what is observed.
///
/// In phases: diagnostics about the host, sysctls and limits, the desired endpoints (with
/// per-link diagnostics), policy routes, endpoints, then the steps in execution order with
/// recently failed ones held back.
pub fn plan(cfg: &Config, obs: &Observed, now: Millis) -> Plan {
    let mut plan = Plan::default();
    if !obs.ready() {
        return plan;
    }
    let caps = match &obs.caps {
        Some(c) => c,
        None => return plan,
    };
    let links = assess(cfg, obs);
    host_diagnostics(cfg, obs, caps, &links, now, &mut plan);
    let sysctl_steps = sysctl_steps(cfg, obs, caps, &mut plan);
    // mptcpd rewrites limits and endpoints: do not fight.
    let mptcpd_running = matches!(obs.mptcpd, Some(Some(_)));
    let limit_steps = if mptcpd_running {
        Vec::new()
    } else {
        limit_steps(cfg, obs)
    };
    let desired = desired_state(cfg, obs, caps, &links, &mut plan);
    let (routes, endpoints) = if mptcpd_running {
        (RouteSteps::default(), EndpointSteps::default())
    } else {
        (
            policy_route_steps(cfg, obs, &desired),
            endpoint_steps(cfg, obs, caps, &links, &desired, now, &mut plan),
        )
    };
    let all = sysctl_steps
        .into_iter()
        .chain(limit_steps)
        .chain(endpoints.del)
        .chain(endpoints.flags)
        .chain(routes.del)
        .chain(routes.add)
        .chain(endpoints.add);
    hold_back_failed(all, obs, now, &mut plan);
    plan
}

/// Diagnostics that do not depend on one link, and the wake-ups NetworkManager's
/// catch-up and the blackhole detection ask for.
fn host_diagnostics(
    cfg: &Config,
    obs: &Observed,
    caps: &KernelCaps,
    links: &[LinkAssessment],
    now: Millis,
    plan: &mut Plan,
) {
    if let Some(at) = obs.nm_deconfigured.values().min() {
        plan.wake(at.plus(crate::state::NM_CATCH_UP_MS));
    }
    if let Some(until) = obs.nm_verdict.values().min() {
        plan.wake(*until);
    }
    if let Some(Some(pid)) = obs.mptcpd {
        plan.diagnostics.insert(Diagnostic::MptcpdRunning { pid });
    }
    if obs.sysctls.get("pm_type").is_some_and(|v| v == "1") {
        plan.diagnostics.insert(Diagnostic::UserspacePm {
            setting: "net.mptcp.pm_type = 1".to_string(),
        });
    }
    if obs
        .sysctls
        .get("path_manager")
        .is_some_and(|v| v == "userspace")
    {
        plan.diagnostics.insert(Diagnostic::UserspacePm {
            setting: "net.mptcp.path_manager = userspace".to_string(),
        });
    }
    if obs.sysctls.get("enabled").is_some_and(|v| v == "0")
        && cfg.sysctls.get("enabled").map_or(true, |v| v == "0")
    {
        plan.diagnostics.insert(Diagnostic::MptcpDisabled);
    }
    let timeout_s = obs
        .sysctls
        .get(crate::blackhole::SYSCTL)
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(until) = obs.blackhole.off_until(timeout_s) {
        if now < until {
            plan.diagnostics.insert(Diagnostic::BlackholeOff {
                timeout_s: timeout_s.unwrap_or(0),
            });
            plan.wake(until);
        }
    }
    if let Some(left) = ids_left(obs) {
        let endpoints = obs.endpoints.as_ref().map_or(0, |m| m.len());
        let refused = obs
            .failures
            .iter()
            .any(|(op, f)| matches!(op, Op::AddEndpoint(_)) && ids_used_up(&f.error));
        if refused && endpoints < MAX_ENDPOINTS_510 {
            plan.diagnostics.insert(Diagnostic::EndpointIdsUsedUp);
        } else if left < IDS_RESERVE_510 {
            plan.diagnostics.insert(Diagnostic::EndpointIdsLow { left });
        }
    }
    let any_managed = links
        .iter()
        .any(|l| matches!(l.control, Control::Managed(_)));
    if any_managed && !caps.events {
        plan.diagnostics.insert(Diagnostic::NoEvents);
    }
}

/// The configured `net.mptcp.*` values the kernel does not have yet; only those this
/// kernel knows.
fn sysctl_steps(cfg: &Config, obs: &Observed, caps: &KernelCaps, plan: &mut Plan) -> Vec<Step> {
    let mut steps = Vec::new();
    for (name, value) in &cfg.sysctls {
        if !caps.sysctls.contains(name) {
            plan.diagnostics.insert(Diagnostic::SysctlMissing {
                name: name.clone(),
                since: sysctl_since(name).unwrap_or("?").to_string(),
            });
            continue;
        }
        let current = obs.sysctls.get(name);
        if current != Some(value) {
            steps.push(Step {
                op: Op::SetSysctl {
                    name: name.clone(),
                    value: value.clone(),
                },
                why: format!(
                    "config sysctl.{name} = {value}, kernel has {}",
                    current.map_or("?", |v| v.as_str())
                ),
            });
        }
    }
    steps
}

/// The configured limits, where they differ from the kernel's.
fn limit_steps(cfg: &Config, obs: &Observed) -> Vec<Step> {
    let Some(cur) = obs.limits else {
        return Vec::new();
    };
    let want = Limits {
        subflows: cfg.limits.subflows.unwrap_or(cur.subflows),
        add_addr_accepted: cfg
            .limits
            .add_addr_accepted
            .unwrap_or(cur.add_addr_accepted),
    };
    if want == cur {
        return Vec::new();
    }
    vec![Step {
        op: Op::SetLimits(want),
        why: format!(
            "config limits differ from the kernel's (subflows {}, add_addr_accepted {})",
            cur.subflows, cur.add_addr_accepted
        ),
    }]
}

/// What the agent wants for one address.
#[derive(Debug, Clone)]
struct Desired {
    addr: Address,
    link: String,
    ifindex: u32,
    flags: EndpointFlags,
    demoted: bool,
    /// Backup only because NetworkManager says the link is metered (`metered_backup`).
    metered_backup: bool,
    route: RoutePath,
}

/// The endpoints the agent wants, and what it owns: links it manages (or that a rule
/// asks it to manage but are excluded) and their addresses.
#[derive(Debug, Default)]
struct DesiredState {
    endpoints: BTreeMap<IpAddr, Desired>,
    managed_ifindexes: BTreeSet<u32>,
    managed_addrs: BTreeSet<IpAddr>,
}

impl DesiredState {
    /// Endpoints bound to, or carrying an address of, a link the agent manages.
    fn owns(&self, e: &KernelEndpoint) -> bool {
        e.ifindex
            .is_some_and(|i| self.managed_ifindexes.contains(&i))
            || self.managed_addrs.contains(&e.addr)
    }

    fn own_link(&mut self, obs: &Observed, ifindex: u32) {
        self.managed_ifindexes.insert(ifindex);
        for a in obs.addresses_of(ifindex) {
            self.managed_addrs.insert(a.addr);
        }
    }
}

/// The desired endpoints from the links' assessments, with the per-link diagnostics.
fn desired_state(
    cfg: &Config,
    obs: &Observed,
    caps: &KernelCaps,
    links: &[LinkAssessment],
    plan: &mut Plan,
) -> DesiredState {
    let mut desired = DesiredState::default();
    for l in links {
        match &l.control {
            Control::Refused(reason) if !reason.is_mptcpd() => {
                plan.diagnostics.insert(Diagnostic::Refused {
                    interface: l.name.clone(),
                    reason: reason.clone(),
                });
            }
            // The rule asks the agent to manage it, so endpoints there are the agent's to
            // remove (one left by an older config or an earlier guess of the link's kind).
            Control::Excluded(_) => desired.own_link(obs, l.ifindex),
            Control::Managed(policy) => {
                desired.own_link(obs, l.ifindex);
                link_diagnostics(cfg, caps, l, policy, plan);
                for f in &l.families {
                    let Some(addr) = &f.address else { continue };
                    if l.carrier
                        && f.route == RoutePath::Missing
                        && matches!(f.want, Want::Absent(_))
                    {
                        plan.diagnostics.insert(Diagnostic::NoRoute {
                            interface: l.name.clone(),
                            family: f.family,
                        });
                    }
                    let (flags, demoted) = match &f.want {
                        Want::Active(fl) => (*fl, false),
                        Want::Demoted(fl) => (*fl, true),
                        Want::Absent(_) => continue,
                    };
                    desired.endpoints.insert(
                        addr.addr,
                        Desired {
                            addr: addr.clone(),
                            link: l.name.clone(),
                            ifindex: l.ifindex,
                            flags,
                            demoted,
                            metered_backup: l.metered
                                && policy.metered_backup
                                && !policy.flags.contains(EndpointFlags::BACKUP),
                            route: f.route,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    if let Some(limit) = cfg.limits.subflows.or(obs.limits.map(|l| l.subflows)) {
        let subflow_uplinks: BTreeSet<u32> = desired
            .endpoints
            .values()
            .filter(|d| !d.demoted && d.flags.contains(EndpointFlags::SUBFLOW))
            .map(|d| d.ifindex)
            .collect();
        // The initial subflow uses one uplink; each other one needs an additional subflow.
        if subflow_uplinks.len() > limit as usize + 1 {
            plan.diagnostics.insert(Diagnostic::LimitTooLow {
                subflows: limit,
                endpoints: subflow_uplinks.len(),
            });
        }
    }
    desired
}

/// What a managed link's policy asks that this kernel or config cannot give.
fn link_diagnostics(
    cfg: &Config,
    caps: &KernelCaps,
    l: &LinkAssessment,
    policy: &LinkPolicy,
    plan: &mut Plan,
) {
    if policy.flags.contains(EndpointFlags::FULLMESH) && !caps.fullmesh {
        plan.diagnostics.insert(Diagnostic::FullmeshUnsupported {
            interface: l.name.clone(),
        });
    }
    if policy.flags.contains(EndpointFlags::LAMINAR) && !caps.laminar {
        plan.diagnostics.insert(Diagnostic::LaminarUnsupported {
            interface: l.name.clone(),
            probe: caps.laminar_probe.clone(),
        });
    }
    if policy.on_carrier_loss == CarrierLoss::Backup && !caps.set_flags {
        plan.diagnostics.insert(Diagnostic::NoSetFlags {
            interface: l.name.clone(),
        });
    }
    if cfg.routing.table_for(l.ifindex).is_none() {
        plan.diagnostics.insert(Diagnostic::NoTable {
            interface: l.name.clone(),
        });
    }
}

#[derive(Debug, Default)]
struct RouteSteps {
    del: Vec<Step>,
    add: Vec<Step>,
}

/// The per-uplink tables and source rules the desired endpoints need, against the
/// agent's own routes and rules in the kernel.
fn policy_route_steps(cfg: &Config, obs: &Observed, desired: &DesiredState) -> RouteSteps {
    let mut steps = RouteSteps::default();
    let mut want_routes: Vec<Route> = Vec::new();
    let mut want_rules: Vec<Rule> = Vec::new();
    for d in desired.endpoints.values() {
        if let RoutePath::Policy { table, gateway } = d.route {
            let (routes, rule) = policy_routing(cfg, d, table, gateway);
            want_routes.extend(routes);
            want_rules.push(rule);
        }
    }
    let owned_route = |r: &Route| {
        r.protocol == cfg.routing.protocol
            && ![TABLE_MAIN, TABLE_LOCAL, TABLE_DEFAULT].contains(&r.table)
    };
    let owned_rule = |r: &Rule| r.protocol == cfg.routing.protocol;
    for r in obs.routes.iter().filter(|r| owned_route(r)) {
        if !want_routes.iter().any(|w| w.same_as(r)) {
            steps.del.push(Step {
                op: Op::DelRoute(r.clone()),
                why: "policy route no longer needed".to_string(),
            });
        }
    }
    for r in obs.rules.iter().filter(|r| owned_rule(r)) {
        if !want_rules.iter().any(|w| same_rule(w, r)) {
            steps.del.push(Step {
                op: Op::DelRule(r.clone()),
                why: "policy rule no longer needed".to_string(),
            });
        }
    }
    for w in &want_routes {
        if !obs.routes.iter().any(|r| r.same_as(w)) {
            steps.add.push(Step {
                op: Op::AddRoute(w.clone()),
                why: format!(
                    "uplink ifindex {} has no default route in main",
                    w.ifindex.unwrap_or(0)
                ),
            });
        }
    }
    for w in &want_rules {
        if !obs.rules.iter().any(|r| same_rule(r, w)) {
            steps.add.push(Step {
                op: Op::AddRule(w.clone()),
                why: format!(
                    "source rule into table {} for the uplink's endpoint",
                    w.table
                ),
            });
        }
    }
    steps
}

/// Whether the routes an endpoint needs are in the kernel already.
fn routed(cfg: &Config, obs: &Observed, d: &Desired) -> bool {
    match d.route {
        RoutePath::Policy { table, gateway } => {
            let (routes, rule) = policy_routing(cfg, d, table, gateway);
            routes
                .iter()
                .all(|w| obs.routes.iter().any(|r| r.same_as(w)))
                && obs.rules.iter().any(|r| same_rule(r, &rule))
        }
        RoutePath::Main => true,
        RoutePath::Missing => false,
    }
}

/// Why the agent does not want an endpoint for `addr`.
fn why_absent(links: &[LinkAssessment], obs: &Observed, addr: &IpAddr) -> String {
    for l in links {
        for f in &l.families {
            if f.address.as_ref().is_some_and(|a| a.addr == *addr) {
                if let Want::Absent(r) = &f.want {
                    return format!("{}: {r}", l.name);
                }
            }
        }
        if obs.addresses_of(l.ifindex).any(|a| a.addr == *addr) {
            return format!("{}: not the address chosen for its family", l.name);
        }
    }
    "address is no longer on a managed link".to_string()
}

#[derive(Debug, Default)]
struct EndpointSteps {
    del: Vec<Step>,
    flags: Vec<Step>,
    add: Vec<Step>,
}

/// The endpoint changes: owned endpoints that are not wanted go, wrong ones are replaced,
/// re-added (lost subflows, flags the kernel cannot change in place) or changed in place,
/// and missing ones are added once their routes exist. Each comeback is preceded by its
/// link's neighbour reset.
fn endpoint_steps(
    cfg: &Config,
    obs: &Observed,
    caps: &KernelCaps,
    links: &[LinkAssessment],
    desired: &DesiredState,
    now: Millis,
    plan: &mut Plan,
) -> EndpointSteps {
    let mut steps = EndpointSteps::default();
    let kernel: Vec<KernelEndpoint> = obs
        .endpoints
        .as_ref()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    let mut in_use: BTreeSet<u8> = kernel.iter().map(|e| e.id).collect();
    let mut present: BTreeSet<IpAddr> = BTreeSet::new();
    let mut reset: BTreeSet<(u32, Family)> = BTreeSet::new();
    for ep in kernel.iter().filter(|e| desired.owns(e)) {
        let Some(d) = desired.endpoints.get(&ep.addr) else {
            steps.del.push(Step {
                op: Op::DelEndpoint(ep.clone()),
                why: why_absent(links, obs, &ep.addr),
            });
            continue;
        };
        present.insert(ep.addr);
        let want = KernelEndpoint {
            id: ep.id,
            addr: ep.addr,
            port: None,
            flags: d.flags,
            ifindex: Some(d.ifindex),
        };
        if ep.ifindex != Some(d.ifindex) || ep.port.is_some() {
            steps.del.push(Step {
                op: Op::DelEndpoint(ep.clone()),
                why: format!(
                    "{}: endpoint is not bound to {} alone; replacing it",
                    d.link, d.link
                ),
            });
            steps.add.push(Step {
                op: Op::AddEndpoint(want),
                why: format!("{}: replacement bound to {}", d.link, d.link),
            });
            continue;
        }
        if let Some(step) = readd_lost(cfg, obs, ep, d, &want, now, plan) {
            steps.add.push(step);
            continue;
        }
        if !flags_as_asked(d.flags, ep.flags, Some(caps)) {
            let differing = EndpointFlags(ep.flags.0 ^ d.flags.0);
            if EndpointFlags::BACKUP.contains(differing) && caps.set_flags {
                let why = if d.demoted {
                    format!("{}: carrier lost, policy says backup", d.link)
                } else if d.metered_backup {
                    format!(
                        "{}: NetworkManager says metered, so backup (metered_backup = false in its rule turns this off)",
                        d.link
                    )
                } else if d.flags.contains(EndpointFlags::BACKUP) {
                    format!("{}: policy flags are {}", d.link, d.flags)
                } else {
                    steps.flags.extend(reset_neighbours(&mut reset, d));
                    format!("{}: usable again, back to {}", d.link, d.flags)
                };
                steps.flags.push(Step {
                    op: Op::SetEndpointFlags {
                        endpoint: ep.clone(),
                        flags: d.flags,
                    },
                    why,
                });
            } else {
                steps.add.push(Step {
                    op: Op::ReaddEndpoint(want),
                    why: format!(
                        "{}: kernel has flags {}, policy wants {}",
                        d.link, ep.flags, d.flags
                    ),
                });
            }
        }
    }
    for d in desired.endpoints.values() {
        if present.contains(&d.addr.addr) || d.demoted {
            continue;
        }
        if !routed(cfg, obs, d) {
            // Routes and rule are added in this round; the endpoint follows once they exist.
            continue;
        }
        let Some(id) = obs.ids.pick(&d.addr.addr, &in_use) else {
            plan.diagnostics
                .insert(Diagnostic::NoFreeId { addr: d.addr.addr });
            continue;
        };
        in_use.insert(id);
        let route = match d.route {
            RoutePath::Main => "default route in main".to_string(),
            RoutePath::Policy { table, .. } => format!("policy table {table}"),
            RoutePath::Missing => "no route".to_string(),
        };
        steps.add.extend(reset_neighbours(&mut reset, d));
        steps.add.push(Step {
            op: Op::AddEndpoint(KernelEndpoint {
                id,
                addr: d.addr.addr,
                port: None,
                flags: d.flags,
                ifindex: Some(d.ifindex),
            }),
            why: format!("{}: usable (carrier, address, {route})", d.link),
        });
    }
    steps
}

/// The re-add that brings back subflows lost from `ep` while its link is usable, when
/// backoff permits (a wake-up otherwise) and attempts are left (a diagnostic otherwise).
fn readd_lost(
    cfg: &Config,
    obs: &Observed,
    ep: &KernelEndpoint,
    d: &Desired,
    want: &KernelEndpoint,
    now: Millis,
    plan: &mut Plan,
) -> Option<Step> {
    if d.demoted {
        return None;
    }
    let loss = obs.losses.get(&ep.addr)?;
    let attempts = obs
        .readds
        .get(&ep.addr)
        .map_or(0, |r| effective_attempts(cfg, r, now));
    if attempts >= cfg.reestablish.max_attempts {
        plan.diagnostics.insert(Diagnostic::GaveUp {
            interface: d.link.clone(),
            addr: ep.addr,
            attempts,
        });
        return None;
    }
    // A close without error may be the agent's own delete, whose add is about to bring the
    // subflow back: give that a moment.
    let settled = if loss.last_error == 0 {
        loss.since.plus(CLOSE_SETTLE_MS)
    } else {
        Millis(0)
    };
    let allowed_at = readd_allowed_at(cfg, obs, &ep.addr, now).max(settled);
    if now < allowed_at {
        plan.wake(allowed_at);
        return None;
    }
    let cause = if loss.last_error == 0 {
        "closed without error".to_string()
    } else {
        format!("error {}", loss.last_error)
    };
    Some(Step {
        op: Op::ReaddEndpoint(want.clone()),
        why: format!(
            "{}: {} connection(s) lost their subflow from {} ({cause}) while the link is \
             usable; attempt {} of {}",
            d.link,
            loss.tokens.len(),
            ep.addr,
            attempts + 1,
            cfg.reestablish.max_attempts
        ),
    })
}

/// The steps in execution order, but an op that failed recently waits for its backoff
/// (and the neighbour reset planned just for it waits too).
fn hold_back_failed(
    steps: impl Iterator<Item = Step>,
    obs: &Observed,
    now: Millis,
    plan: &mut Plan,
) {
    for step in steps {
        if let Some(f) = obs.failures.get(&step.op) {
            let at = f.last_at.plus(failure_retry_ms(f.count));
            if now < at {
                if let Some(prev) = plan.steps.last() {
                    if resets_for(&prev.op, &step.op) {
                        plan.steps.pop();
                    }
                }
                plan.diagnostics.insert(Diagnostic::RetryLater {
                    op: step.op.clone(),
                    error: f.error.clone(),
                    at,
                });
                plan.wake(at);
                continue;
            }
        }
        plan.steps.push(step);
    }
}

/// Whether the kernel's endpoint flags `have` are as the policy asks (`want`): the
/// kernel's own IMPLICIT bit aside, and FULLMESH aside on a kernel that cannot do it (5.10
/// stores the bit and does nothing with it). The one definition of "policy applied", for
/// plan, explain and status.
pub fn flags_as_asked(want: EndpointFlags, have: EndpointFlags, caps: Option<&KernelCaps>) -> bool {
    let mut have = have.without(EndpointFlags::IMPLICIT);
    let mut want = want;
    if !caps.map_or(true, |c| c.fullmesh) {
        want = want.without(EndpointFlags::FULLMESH);
        have = have.without(EndpointFlags::FULLMESH);
    }
    want == have
}

impl FamilyAssessment {
    /// Whether the kernel is as the policy asks for this family: the wanted endpoint with
    /// the wanted flags, or no endpoint where none is wanted.
    pub fn policy_applied(&self, obs: &Observed) -> bool {
        let present = self
            .address
            .as_ref()
            .and_then(|a| kernel_endpoint_for(obs, &a.addr));
        match (&self.want, present) {
            (Want::Active(w) | Want::Demoted(w), Some(e)) => {
                flags_as_asked(*w, e.flags, obs.caps.as_ref())
            }
            (Want::Active(_) | Want::Demoted(_), None) => false,
            (Want::Absent(_), found) => found.is_none(),
        }
    }
}

/// The neighbour reset that goes before an uplink's endpoint comes back (once per link and
/// family and plan).
fn reset_neighbours(done: &mut BTreeSet<(u32, Family)>, d: &Desired) -> Option<Step> {
    let family = Family::of(&d.addr.addr);
    done.insert((d.ifindex, family)).then(|| Step {
        op: Op::ResetNeighbours {
            ifindex: d.ifindex,
            family,
        },
        why: format!(
            "{}: back in use; {family} neighbour entries still resolving from the outage would hold the \
             first packets (the join) until their next probe",
            d.link
        ),
    })
}

/// Whether `reset` is the neighbour reset planned for `op`.
fn resets_for(reset: &Op, op: &Op) -> bool {
    let Op::ResetNeighbours { ifindex, family } = reset else {
        return false;
    };
    let ep = match op {
        Op::AddEndpoint(e) => e,
        Op::SetEndpointFlags { endpoint, .. } => endpoint,
        _ => return false,
    };
    ep.ifindex == Some(*ifindex) && Family::of(&ep.addr) == *family
}

/// Endpoints Linux 5.10 holds at most (MPTCP_PM_ADDR_MAX); beyond that EINVAL is real.
const MAX_ENDPOINTS_510: usize = 8;
/// Endpoint ids a Linux 5.10 network namespace hands out in its lifetime.
const IDS_510: u16 = 255;
/// Ids left below which the agent stops spending them on temporary withdrawals.
pub const IDS_RESERVE_510: u16 = 32;

/// The 5.10 kernel's answer to an add when it has no id left: EINVAL ("too many addresses
/// or duplicate one"). The same answer means no room with 8 endpoints (the caller checks)
/// or a duplicate address, which plan() never asks for; the agent's requests are otherwise
/// well-formed, so on 5.10 no other EINVAL is expected from an add.
fn ids_used_up(error: &OpError) -> bool {
    error.is_rejected_with(EINVAL)
}

/// Endpoint ids this namespace still has, on kernels whose ids run out.
pub(crate) fn ids_left(obs: &Observed) -> Option<u16> {
    obs.caps
        .as_ref()
        .filter(|c| c.ids_run_out)
        .map(|_| IDS_510.saturating_sub(u16::from(obs.highest_endpoint_id)))
}

/// Few ids left: an endpoint stays while its uplink lacks carrier or a route, instead of
/// being withdrawn and added again (each add spends an id for good).
fn conserving_ids(obs: &Observed) -> bool {
    ids_left(obs).is_some_and(|left| left < IDS_RESERVE_510)
}

/// Re-adds count towards backoff only while they are recent: after twice the maximum
/// delay without one, the next loss starts from the first (immediate) attempt again.
fn effective_attempts(cfg: &Config, r: &crate::state::Readds, now: Millis) -> u32 {
    if now.since(r.last_at) > cfg.reestablish.max_delay_ms.saturating_mul(2) {
        0
    } else {
        r.attempts
    }
}

fn readd_allowed_at(cfg: &Config, obs: &Observed, addr: &IpAddr, now: Millis) -> Millis {
    match obs.readds.get(addr) {
        None => Millis(0),
        Some(r) => r
            .last_at
            .plus(cfg.reestablish.delay_after(effective_attempts(cfg, r, now))),
    }
}

/// The per-uplink table's routes (default, and the address's own subnet so that
/// neighbours stay on-link) and the source rule into it.
fn policy_routing(
    cfg: &Config,
    d: &Desired,
    table: u32,
    gateway: Option<IpAddr>,
) -> (Vec<Route>, Rule) {
    let family = Family::of(&d.addr.addr);
    // The subnet route first: the kernel accepts a gateway only when it can reach it, and
    // while NetworkManager re-adds main's routes the table's own subnet route is the way.
    let mut routes = Vec::new();
    if d.addr.prefix_len < family.host_prefix() {
        routes.push(Route {
            table,
            dst: network(d.addr.addr, d.addr.prefix_len),
            prefix_len: d.addr.prefix_len,
            gateway: None,
            ifindex: Some(d.ifindex),
            protocol: cfg.routing.protocol,
            metric: 0,
            scope: 253,
            prefsrc: Some(d.addr.addr),
        });
    }
    routes.push(Route {
        table,
        dst: family.any(),
        prefix_len: 0,
        gateway,
        ifindex: Some(d.ifindex),
        protocol: cfg.routing.protocol,
        metric: 0,
        scope: 0,
        prefsrc: None,
    });
    let rule = Rule {
        family,
        priority: cfg.routing.rule_priority,
        src: Some((d.addr.addr, family.host_prefix())),
        table,
        protocol: cfg.routing.protocol,
    };
    (routes, rule)
}

/// The network address of `addr/prefix`.
pub fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}
