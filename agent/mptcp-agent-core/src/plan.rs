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

mod assess;
mod diagnostic;
mod routes;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

pub use assess::{
    assess, flags_as_asked, Control, FamilyAssessment, LinkAssessment, RoutePath, Want,
};
pub use diagnostic::Diagnostic;
pub use routes::network;
use routes::{policy_route_steps, routed, RouteSteps};

use crate::{
    config::{sysctl_since, CarrierLoss, Config, LinkPolicy},
    model::{Address, EndpointFlags, Family, KernelCaps, KernelEndpoint, Limits},
    op::{Op, OpError, EINVAL},
    state::Observed,
    time::Millis,
};

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

/// Endpoint changes by kind, each kind its own place in the execution order.
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
