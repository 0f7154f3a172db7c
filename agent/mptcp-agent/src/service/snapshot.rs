// SPDX-License-Identifier: MIT OR Apache-2.0
//! The types on the bus and the [`Snapshot`] the daemon builds from its state after each
//! reconciliation (the service turns its differences into signals).

use std::collections::{BTreeMap, BTreeSet};

use mptcp_agent_core::{
    assess, Blackhole, Config, Control, Diagnostic, KernelEndpoint, NmObserved, Observed, Want,
};
use serde::{Deserialize, Serialize};
use zbus::zvariant::{OwnedValue, Type, Value};

/// One network interface as the agent sees it (property `Links`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct LinkInfo {
    pub name: String,
    pub ifindex: u32,
    /// "active", "backup" (carrier lost, endpoint kept as backup), "down" (managed, no
    /// endpoint now; see `detail`), "ignored" (rule says manage = false), "unmatched" (no
    /// rule), "refused" (someone else manages MPTCP there; see `detail`), "excluded" (a VPN,
    /// tunnel, bridge or container veth the rule does not opt in; see `detail`).
    pub state: String,
    pub carrier: bool,
    /// NetworkManager's device type name, or the kernel's guess; "" when unknown.
    pub device_type: String,
    pub metered: bool,
    /// Name of the matching `[[link]]` rule; "" when none.
    pub rule: String,
    /// Endpoint flags the rule asks for ("subflow backup"); "" when not managed.
    pub policy: String,
    /// The kernel's endpoints for this link are what the policy asks for now (always true
    /// for links the agent leaves alone).
    pub policy_applied: bool,
    /// NetworkManager device state ("ACTIVATED"), "" when not followed or not managed by it.
    pub nm_state: String,
    /// Why the link is in this state, per address family.
    pub detail: String,
}

/// A link the agent leaves alone because someone else manages MPTCP there (property
/// `Refusals`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct RefusalInfo {
    pub interface: String,
    /// "mptcpd", "networkmanager-profile", "networkmanager-global" or
    /// "networkmanager-default".
    pub kind: String,
    /// The one command that lets the agent take the link over (it notices by itself).
    pub advice: String,
}

/// One MPTCP endpoint of the kernel (property `Endpoints`, signal `EndpointChanged`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct EndpointInfo {
    pub id: u8,
    pub address: String,
    /// 0 = none.
    pub port: u16,
    /// Flag names as `ip mptcp endpoint show` prints them.
    pub flags: Vec<String>,
    /// Interface the endpoint is bound to (`dev`), or that carries its address; "" when none.
    pub interface: String,
    /// 0 = not bound to an interface.
    pub ifindex: u32,
}

/// The in-kernel path manager's limits (property `Limits`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue,
)]
pub struct LimitsInfo {
    pub subflows: u32,
    pub add_addr_accepted: u32,
}

/// What the running kernel's MPTCP offers (property `KernelCapabilities`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct KernelCapsInfo {
    /// e.g. "5.10 (endpoints and limits only)"; "" before the probe.
    pub generation: String,
    pub set_flags: bool,
    pub events: bool,
    pub fullmesh: bool,
    /// Files under /proc/sys/net/mptcp.
    pub sysctls: Vec<String>,
    /// The laminar endpoint flag (Linux 6.18) is known to the kernel and may be sent.
    pub laminar: bool,
    /// How that was found (an endpoint round trip in a namespace of its own, or the
    /// kernel release).
    pub laminar_probe: String,
}

/// The kernel's MPTCP blackhole detection (property `Blackhole`, signal `BlackholeDetected`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct BlackholeInfo {
    /// The kernel has the detection (Linux 6.12+: `MPTcpExtBlackhole` in /proc/net/netstat).
    pub available: bool,
    /// Why it is not available ("" when it is, or before the first reading).
    pub detail: String,
    /// `MPTcpExtBlackhole` now (detections since the namespace was created).
    pub count: u64,
    /// Rises of the counter seen since the agent started.
    pub detections: u64,
    /// When the agent last saw it rise, µs since the Unix epoch; 0 = not since it started.
    pub last_detected_at: u64,
    /// `net.mptcp.blackhole_timeout` in seconds; -1 when this kernel has no such sysctl.
    pub timeout_s: i64,
    /// New outgoing MPTCP connections are plain TCP now: a detection less than
    /// `timeout_s` ago (at least; the kernel doubles the period on repeats).
    pub active: bool,
}

/// Counters of one link (property `LinkCounters`; docs/metrics.md).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, Type, Value, OwnedValue)]
pub struct LinkCountersInfo {
    pub name: String,
    /// As in `Links`, or "gone" (the interface no longer exists).
    pub state: String,
    /// Flags of the link's endpoints ("signal", "subflow", "backup", "fullmesh").
    pub endpoint_flags: Vec<String>,
    pub endpoints: u32,
    /// Established subflows from the link's addresses.
    pub subflows_up: u32,
    pub readds: u64,
    pub backoff_episodes: u64,
    pub withdrawals: u64,
    /// When state, endpoints or flags last changed (or the agent first saw the link), in
    /// microseconds since the Unix epoch.
    pub last_change: u64,
}

/// Where the running config came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// The config file (the normal case).
    #[default]
    File,
    /// The file was rejected; the last good config (state directory) runs.
    LastGood,
    /// The file was rejected and there is no usable last good config; the built-in
    /// default (the shipped conf/agent.toml) runs.
    BuiltIn,
}

impl ConfigSource {
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::File => "file",
            ConfigSource::LastGood => "last-good",
            ConfigSource::BuiltIn => "built-in",
        }
    }
}

/// The config properties.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigInfo {
    pub path: String,
    pub schema_version: u32,
    pub digest: String,
    pub source: ConfigSource,
    pub last_error: String,
    /// Microseconds since the Unix epoch.
    pub applied_at: u64,
}

/// Everything the properties show, published by the daemon after each reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub ready: bool,
    pub mode: String,
    pub links: Vec<LinkInfo>,
    pub refusals: Vec<RefusalInfo>,
    pub endpoints: Vec<EndpointInfo>,
    pub limits: LimitsInfo,
    pub caps: KernelCapsInfo,
    pub blackhole: BlackholeInfo,
    pub diagnostics: Vec<String>,
    pub config: ConfigInfo,
    /// Filled by the daemon's metrics (crate::metrics).
    pub link_counters: Vec<LinkCountersInfo>,
    /// The kernel's MPTcpExt counters, by their /proc/net/netstat name.
    pub kernel_counters: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Built from the daemon's state; `diagnostics` are the ones it currently reports.
    pub fn build(
        cfg: &Config,
        obs: &Observed,
        diagnostics: &BTreeSet<Diagnostic>,
        config: ConfigInfo,
    ) -> Snapshot {
        let mode = match &obs.nm {
            NmObserved::Unknown => "starting",
            NmObserved::Present(_) if cfg.networkmanager.follow => "networkmanager",
            _ => "kernel-only",
        };
        let kernel_eps: Vec<&KernelEndpoint> =
            obs.endpoints.iter().flat_map(|m| m.values()).collect();
        let mut refusals = Vec::new();
        let links = assess(cfg, obs)
            .into_iter()
            .map(|a| {
                let mut info = LinkInfo {
                    name: a.name.clone(),
                    ifindex: a.ifindex,
                    carrier: a.carrier,
                    device_type: a.device_type.map(|t| t.name()).unwrap_or_default(),
                    metered: a.metered,
                    rule: a.rule.clone().unwrap_or_default(),
                    nm_state: a
                        .nm_state
                        .map(|s| mptcp_agent_core::nm_state::name(s).to_string())
                        .unwrap_or_default(),
                    policy_applied: true,
                    ..LinkInfo::default()
                };
                match &a.control {
                    Control::Unmatched => info.state = "unmatched".into(),
                    Control::Ignored => info.state = "ignored".into(),
                    Control::Refused(why) => {
                        info.state = "refused".into();
                        info.detail = why.to_string();
                        refusals.push(RefusalInfo {
                            interface: a.name.clone(),
                            kind: why.kind().into(),
                            advice: why.advice(),
                        });
                    }
                    Control::Excluded(why) => {
                        info.state = "excluded".into();
                        info.detail = format!(
                            "never an uplink by default: {why}; allow_virtual = true in rule {:?} opts it in",
                            info.rule
                        );
                    }
                    Control::Managed(policy) => {
                        info.policy = policy.flags.to_string();
                        let mut details = Vec::new();
                        let (mut active, mut demoted) = (false, false);
                        for fam in &a.families {
                            let addr = fam.address.as_ref().map(|x| x.addr);
                            info.policy_applied &= fam.policy_applied(obs);
                            match &fam.want {
                                Want::Active(_) => {
                                    active = true;
                                    details.push(format!(
                                        "{}: {}",
                                        fam.family,
                                        addr.map(|a| a.to_string()).unwrap_or_default()
                                    ));
                                }
                                Want::Demoted(_) => {
                                    demoted = true;
                                    details.push(format!(
                                        "{}: {} kept as backup (no carrier)",
                                        fam.family,
                                        addr.map(|a| a.to_string()).unwrap_or_default()
                                    ));
                                }
                                Want::Absent(why) => details.push(format!("{}: {why}", fam.family)),
                            }
                        }
                        info.state = if active {
                            "active"
                        } else if demoted {
                            "backup"
                        } else {
                            "down"
                        }
                        .into();
                        info.detail = details.join("; ");
                    }
                }
                info
            })
            .collect();
        let endpoints = kernel_eps.iter().map(|e| endpoint_info(obs, e)).collect();
        let limits = obs
            .limits
            .map(|l| LimitsInfo {
                subflows: l.subflows,
                add_addr_accepted: l.add_addr_accepted,
            })
            .unwrap_or_default();
        let caps = obs
            .caps
            .as_ref()
            .map(|c| KernelCapsInfo {
                generation: c.description.clone(),
                set_flags: c.set_flags,
                events: c.events,
                fullmesh: c.fullmesh,
                sysctls: c.sysctls.iter().cloned().collect(),
                laminar: c.laminar,
                laminar_probe: c.laminar_probe.clone(),
            })
            .unwrap_or_default();
        let blackhole = blackhole_info(obs, diagnostics);
        let diagnostics = diagnostics
            .iter()
            .filter(|d| !matches!(d, Diagnostic::RetryLater { .. }))
            .map(|d| d.to_string())
            .collect();
        Snapshot {
            ready: obs.ready(),
            mode: mode.to_string(),
            links,
            refusals,
            endpoints,
            limits,
            caps,
            blackhole,
            diagnostics,
            config,
            link_counters: Vec::new(),
            kernel_counters: BTreeMap::new(),
        }
    }
}

fn blackhole_info(obs: &Observed, diagnostics: &BTreeSet<Diagnostic>) -> BlackholeInfo {
    let timeout_s = obs
        .sysctls
        .get(mptcp_agent_core::blackhole::SYSCTL)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    let active = diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::BlackholeOff { .. }));
    match &obs.blackhole {
        Blackhole::Unknown => BlackholeInfo {
            timeout_s,
            ..BlackholeInfo::default()
        },
        Blackhole::Absent(why) => BlackholeInfo {
            detail: why.clone(),
            timeout_s,
            ..BlackholeInfo::default()
        },
        Blackhole::Present {
            count, last_rise, ..
        } => BlackholeInfo {
            available: true,
            detail: String::new(),
            count: *count,
            detections: obs.blackhole.detections(),
            last_detected_at: last_rise.map_or(0, |(_, wall)| wall),
            timeout_s,
            active,
        },
    }
}

fn endpoint_info(obs: &Observed, e: &KernelEndpoint) -> EndpointInfo {
    let by_index = e
        .ifindex
        .and_then(|i| obs.links.get(&i))
        .map(|l| l.name.clone());
    let by_address = || {
        obs.addresses
            .values()
            .find(|a| a.addr == e.addr)
            .and_then(|a| obs.links.get(&a.ifindex))
            .map(|l| l.name.clone())
    };
    EndpointInfo {
        id: e.id,
        address: e.addr.to_string(),
        port: e.port.unwrap_or(0),
        flags: e.flags.names(),
        interface: by_index.or_else(by_address).unwrap_or_default(),
        ifindex: e.ifindex.unwrap_or(0),
    }
}

/// Endpoint changes between two snapshots, by id: ("added" | "removed" | "changed", endpoint).
pub fn endpoint_changes(
    old: &[EndpointInfo],
    new: &[EndpointInfo],
) -> Vec<(&'static str, EndpointInfo)> {
    let old: BTreeMap<u8, &EndpointInfo> = old.iter().map(|e| (e.id, e)).collect();
    let new_map: BTreeMap<u8, &EndpointInfo> = new.iter().map(|e| (e.id, e)).collect();
    let mut out = Vec::new();
    for (id, e) in &old {
        if !new_map.contains_key(id) {
            out.push(("removed", (*e).clone()));
        }
    }
    for (id, e) in &new_map {
        match old.get(id) {
            None => out.push(("added", (*e).clone())),
            Some(o) if o != e => out.push(("changed", (*e).clone())),
            Some(_) => {}
        }
    }
    out
}
