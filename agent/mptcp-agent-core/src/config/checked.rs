// SPDX-License-Identifier: MIT OR Apache-2.0
//! Checked configuration: the plain values `plan()` works from.

use std::{
    collections::BTreeMap,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
};

use super::DEFAULT_NM_CONF_PATHS;
use crate::{
    glob::Pattern,
    model::{DeviceType, EndpointFlags},
};

/// A checked configuration: what `plan()` works from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub networkmanager: NmSettings,
    pub limits: LimitsConfig,
    /// sysctl name (under `net.mptcp.`) → value as written to `/proc/sys`.
    pub sysctls: BTreeMap<String, String>,
    pub routing: RoutingConfig,
    pub reestablish: ReestablishConfig,
    /// `[log] level`; `None`: the agent's default (`info`).
    pub log_level: Option<LogLevel>,
    pub metrics: MetricsConfig,
    /// Link rules, first match wins.
    pub links: Vec<LinkRule>,
}

impl Default for Config {
    /// No link rules: manages nothing, changes nothing.
    fn default() -> Self {
        Config {
            networkmanager: NmSettings::default(),
            limits: LimitsConfig::default(),
            sysctls: BTreeMap::new(),
            routing: RoutingConfig::default(),
            reestablish: ReestablishConfig::default(),
            log_level: None,
            metrics: MetricsConfig::default(),
            links: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmSettings {
    /// Follow NetworkManager when it is on the bus (else kernel-only mode throughout).
    pub follow: bool,
    /// NetworkManager's config files/directories, read to find its global mptcp-flags.
    pub conf_paths: Vec<String>,
}

impl Default for NmSettings {
    fn default() -> Self {
        NmSettings {
            follow: true,
            conf_paths: DEFAULT_NM_CONF_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// `None` leaves the kernel's value alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitsConfig {
    pub subflows: Option<u32>,
    pub add_addr_accepted: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Uplink with ifindex N gets table `table_base + N`.
    pub table_base: u32,
    pub rule_priority: u32,
    /// `proto` of the routes and rules the agent creates; marks them as its own.
    pub protocol: u8,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            table_base: 1000,
            rule_priority: 1000,
            protocol: 77,
        }
    }
}

impl RoutingConfig {
    /// The table of the uplink with this ifindex; `None` if it would overflow or land on
    /// a reserved table.
    pub fn table_for(&self, ifindex: u32) -> Option<u32> {
        let t = self.table_base.checked_add(ifindex)?;
        if (253..=255).contains(&t) || t == 0 {
            None
        } else {
            Some(t)
        }
    }
}

/// The Prometheus text file (`[metrics]`) for node_exporter's textfile collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Write the file; the D-Bus counters are kept either way.
    pub enabled: bool,
    /// Absolute path ending in `.prom` (the only files the textfile collector reads).
    pub file: String,
    /// How often the file is written and the kernel's MPTCP counters are read.
    pub interval_ms: u64,
}

/// Where the metrics file goes unless the config says otherwise.
pub const DEFAULT_METRICS_FILE: &str = "/run/mptcp-agent/metrics.prom";

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            file: DEFAULT_METRICS_FILE.to_string(),
            interval_ms: 15_000,
        }
    }
}

/// How much the agent logs: each level includes the ones above it. In the journal they
/// are the syslog priorities err (3), warning (4), info (6) and debug (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const NAMES: [(&'static str, LogLevel); 5] = [
        ("error", LogLevel::Error),
        ("warning", LogLevel::Warning),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];

    pub fn from_name(name: &str) -> Option<LogLevel> {
        LogLevel::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| *l)
    }

    pub fn name(self) -> &'static str {
        LogLevel::NAMES
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("info", |(n, _)| n)
    }
}

/// Bounded exponential backoff for re-adding an endpoint whose subflow was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReestablishConfig {
    /// Delay before the second attempt; doubled for each further one. The first attempt
    /// is immediate.
    pub initial_delay_ms: u64,
    /// Upper bound of the delay.
    pub max_delay_ms: u64,
    /// Re-adds per episode before giving up until the link changes (or a quiet period).
    pub max_attempts: u32,
}

impl Default for ReestablishConfig {
    fn default() -> Self {
        ReestablishConfig {
            initial_delay_ms: 1000,
            max_delay_ms: 30_000,
            max_attempts: 8,
        }
    }
}

impl ReestablishConfig {
    /// Delay required after the `attempts`-th re-add before the next one.
    pub fn delay_after(&self, attempts: u32) -> u64 {
        if attempts == 0 {
            return 0;
        }
        let shift = (attempts - 1).min(32);
        self.initial_delay_ms
            .saturating_mul(1u64 << shift)
            .min(self.max_delay_ms)
    }
}

/// One `[[link]]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRule {
    /// Label for logs and status: `name`, or "link rule N" (1-based).
    pub name: String,
    /// Empty = any interface name.
    pub interfaces: Vec<Pattern>,
    /// Empty = any device type.
    pub device_types: Vec<DeviceType>,
    /// `None` = metered or not.
    pub metered: Option<bool>,
    /// `None` = matching links are left alone (`manage = false`).
    pub policy: Option<LinkPolicy>,
}

impl LinkRule {
    /// Whether a link with this name, type (if known) and metered flag matches. A rule that
    /// asks for a device type does not match a link whose type is unknown.
    pub fn matches(&self, name: &str, device_type: Option<DeviceType>, metered: bool) -> bool {
        (self.interfaces.is_empty() || self.interfaces.iter().any(|p| p.matches(name)))
            && (self.device_types.is_empty()
                || device_type.is_some_and(|t| self.device_types.contains(&t)))
            && self.metered.map_or(true, |m| m == metered)
    }
}

/// What to do on a link the agent manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPolicy {
    pub flags: EndpointFlags,
    pub on_carrier_loss: CarrierLoss,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Gateway for the policy table when nothing else tells (static never-default setups).
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
    /// Manage the link even when it is of a kind that never gets an endpoint by default
    /// (VPN, tunnel, bridge, a container's veth; see `Link::excluded_by_default`).
    pub allow_virtual: bool,
    /// Where NetworkManager says the link is metered (yes or guess-yes), its endpoint is
    /// flagged backup (default true), so a metered plan carries traffic only when no other
    /// subflow works.
    pub metered_backup: bool,
}

/// Reaction to carrier loss while the address is still configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierLoss {
    /// Delete the endpoint; its subflows close at once.
    Withdraw,
    /// Keep the endpoint but mark it backup, so the scheduler stops using its subflows;
    /// needs SET_FLAGS (5.12+), else falls back to withdraw.
    Backup,
}

impl fmt::Display for CarrierLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CarrierLoss::Withdraw => "withdraw",
            CarrierLoss::Backup => "backup",
        })
    }
}
