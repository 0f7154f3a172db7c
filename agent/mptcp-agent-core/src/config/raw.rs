// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config file as written: the TOML tree read against the schema, every value with
//! its position.

use toml::Spanned;

/// The config file as written (what [`parse`](super::parse) could read). Integers are read as `i64` so
/// that range errors come from [`validate`](super::validate) with a message that names the allowed range.
#[derive(Debug, Clone)]
pub struct RawConfig {
    pub schema_version: Spanned<i64>,
    pub networkmanager: RawNetworkManager,
    pub limits: RawLimits,
    pub sysctl: RawSysctl,
    pub routing: RawRouting,
    pub reestablish: RawReestablish,
    pub log: RawLog,
    pub metrics: RawMetrics,
    /// `[[link]]` sections.
    pub links: Vec<Spanned<RawLinkRule>>,
}

/// A list of texts, each with its position, and the list's own.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Clone, Default)]
pub struct RawNetworkManager {
    pub follow: Option<Spanned<bool>>,
    pub conf_paths: Option<SpannedList>,
}

#[derive(Debug, Clone, Default)]
pub struct RawLimits {
    pub subflows: Option<Spanned<i64>>,
    pub add_addr_accepted: Option<Spanned<i64>>,
}

/// `net.mptcp.*` sysctls the agent knows how to set. Each is written only if this kernel
/// has it; see [`SYSCTLS`](super::SYSCTLS).
#[derive(Debug, Clone, Default)]
pub struct RawSysctl {
    pub enabled: Option<Spanned<bool>>,
    pub add_addr_timeout: Option<Spanned<i64>>,
    pub checksum_enabled: Option<Spanned<bool>>,
    pub allow_join_initial_addr_port: Option<Spanned<bool>>,
    pub stale_loss_cnt: Option<Spanned<i64>>,
    pub scheduler: Option<Spanned<String>>,
    pub close_timeout: Option<Spanned<i64>>,
    pub blackhole_timeout: Option<Spanned<i64>>,
    pub syn_retrans_before_tcp_fallback: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawRouting {
    pub table_base: Option<Spanned<i64>>,
    pub rule_priority: Option<Spanned<i64>>,
    pub protocol: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawReestablish {
    pub initial_delay_ms: Option<Spanned<i64>>,
    pub max_delay_ms: Option<Spanned<i64>>,
    pub max_attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawLog {
    pub level: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawMetrics {
    pub enabled: Option<Spanned<bool>>,
    pub file: Option<Spanned<String>>,
    pub interval_ms: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default)]
pub struct RawLinkRule {
    pub name: Option<Spanned<String>>,
    pub interfaces: Option<SpannedList>,
    pub device_types: Option<SpannedList>,
    pub metered: Option<Spanned<bool>>,
    pub manage: Option<Spanned<bool>>,
    pub flags: Option<SpannedList>,
    pub on_carrier_loss: Option<Spanned<String>>,
    pub ipv4: Option<Spanned<bool>>,
    pub ipv6: Option<Spanned<bool>>,
    pub gateway4: Option<Spanned<String>>,
    pub gateway6: Option<Spanned<String>>,
    pub allow_virtual: Option<Spanned<bool>>,
    pub metered_backup: Option<Spanned<bool>>,
    /// `flags` was given but could not be read (already reported): not "missing".
    pub flags_unreadable: bool,
}
