// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's view of each link: who controls it, which address and route each family
//! has, and what the agent wants there.

use std::net::IpAddr;

use super::conserving_ids;
use crate::{
    config::{CarrierLoss, Config, LinkPolicy},
    model::{
        address_unsuitable, nm_state, AddrFlags, Address, DeviceType, EndpointFlags, Family,
        KernelCaps, KernelEndpoint, Link, NmDevice, Route, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN,
    },
    refusal::{NmFlagsSource, Refusal},
    state::{NmObserved, NmPresent, Observed},
};

/// NetworkManager's `connection.mptcp-flags` bits the agent looks at.
const NM_MPTCP_DISABLED: u32 = 0x1;
const NM_MPTCP_DEFAULT: u32 = 0x22;

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
                } else if (nm_state::UNAVAILABLE..=nm_state::DISCONNECTED).contains(&d.state) {
                    NmGate::Down(why)
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
                    want_for(
                        obs,
                        policy,
                        link,
                        a,
                        carrier,
                        metered,
                        &nm_gate,
                        nm_device.is_some_and(|d| obs.nm_profile(d).is_some()),
                        route,
                    ),
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
    /// Between activations (UNAVAILABLE, DISCONNECTED): no endpoint. Here and in
    /// `Activating`, one exception: an address NetworkManager committed after it reported the
    /// device down (`Observed::nm_committed`) gets its endpoint once it has carrier and
    /// NetworkManager's default route in main (a policy route waits for ACTIVATED), and the
    /// agent knows the profile being activated (the applied connection NetworkManager
    /// reports, or while the device is down the one it applied last). That is
    /// its next activation's IP configuration, where NetworkManager's own MPTCP adds its
    /// endpoint; its reports of the activation come later (D-Bus, read after the kernel's
    /// messages), ACTIVATED last.
    Down(String),
    /// Any other state, or an ACTIVATED that may be stale (NetworkManager took the device's
    /// IP configuration down, or its carrier-wait verdict is pending): no endpoint, and no
    /// exception until NetworkManager reports the device again.
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
    nm_profile_known: bool,
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
        // With NetworkManager's own default route only: its address comes a moment before
        // its route, and a policy route for that moment would be undone at once.
        // And with the profile NetworkManager activates known (reported, or the one it
        // applied last: `Observed::nm_last_profile`): without one, whether the profile leaves
        // MPTCP to NetworkManager is not known.
        NmGate::Activating(_) | NmGate::Down(_)
            if route == RoutePath::Main
                && nm_profile_known
                && obs.nm_committed.contains(&(link.ifindex, addr.addr)) => {}
        NmGate::Activating(why) | NmGate::Down(why) | NmGate::Closed(why) => {
            return Want::Absent(why.clone())
        }
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
    let applied = obs.nm_profile(d);
    let profile_flags = applied.map_or(0, |a| a.mptcp_flags);
    let profile = applied.map(|a| a.id.clone());
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
