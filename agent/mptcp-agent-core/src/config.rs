// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's configuration: TOML text → [`RawConfig`] (serde, unknown keys refused,
//! every value with its position) → [`validate`] → [`Config`] (plain, checked values that
//! `plan()` uses). Parsing and validation are separate steps, and both report positions as
//! line and column, so an OTA hook can show exactly what is wrong.

use std::{
    collections::BTreeMap,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    ops::Range,
};

use serde::Deserialize;
use toml::Spanned;

use crate::{
    glob::Pattern,
    model::{DeviceType, EndpointFlags},
};

/// The `schema_version` this agent reads.
pub const SCHEMA_VERSION: i64 = 1;

/// Where NetworkManager reads its configuration, in its load order (later files win).
/// Directories contribute their `*.conf` files sorted by name.
pub const DEFAULT_NM_CONF_PATHS: [&str; 5] = [
    "/usr/lib/NetworkManager/conf.d",
    "/run/NetworkManager/conf.d",
    "/etc/NetworkManager/NetworkManager.conf",
    "/etc/NetworkManager/conf.d",
    "/var/lib/NetworkManager/NetworkManager-intern.conf",
];

// ---------------------------------------------------------------------------------------
// Raw (as written)

/// The config file as written. Integers are read as `i64` so that range errors come from
/// [`validate`] with a message that names the allowed range.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub schema_version: Spanned<i64>,
    #[serde(default)]
    pub networkmanager: RawNetworkManager,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub sysctl: RawSysctl,
    #[serde(default)]
    pub routing: RawRouting,
    #[serde(default)]
    pub reestablish: RawReestablish,
    #[serde(default, rename = "link")]
    pub links: Vec<Spanned<RawLinkRule>>,
}

type SpannedList = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetworkManager {
    pub follow: Option<Spanned<bool>>,
    pub conf_paths: Option<SpannedList>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub subflows: Option<Spanned<i64>>,
    pub add_addr_accepted: Option<Spanned<i64>>,
}

/// `net.mptcp.*` sysctls the agent knows how to set. Each is written only if this kernel
/// has it; see [`SYSCTLS`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub table_base: Option<Spanned<i64>>,
    pub rule_priority: Option<Spanned<i64>>,
    pub protocol: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReestablish {
    pub initial_delay_ms: Option<Spanned<i64>>,
    pub max_delay_ms: Option<Spanned<i64>>,
    pub max_attempts: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
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
}

// ---------------------------------------------------------------------------------------
// Validated

/// A checked configuration: what `plan()` works from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub networkmanager: NmSettings,
    pub limits: LimitsConfig,
    /// sysctl name (under `net.mptcp.`) → value as written to `/proc/sys`.
    pub sysctls: BTreeMap<String, String>,
    pub routing: RoutingConfig,
    pub reestablish: ReestablishConfig,
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

// ---------------------------------------------------------------------------------------
// Errors

/// One problem in a config file, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Every problem found in a config file (parsing stops at the first syntax error;
/// validation reports all it finds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render(None))]
pub struct ConfigError {
    pub issues: Vec<Issue>,
}

impl ConfigError {
    /// One issue per line, prefixed `ORIGIN:LINE:COLUMN: ` when `origin` (a file path) is
    /// given, the way compilers print positions.
    pub fn render(&self, origin: Option<&str>) -> String {
        let mut out = Vec::new();
        for i in &self.issues {
            out.push(match origin {
                Some(o) => format!("{o}:{}:{}: {}", i.line, i.column, i.message),
                None => i.to_string(),
            });
        }
        out.join("\n")
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

struct Issues<'a> {
    text: &'a str,
    list: Vec<Issue>,
}

impl<'a> Issues<'a> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = position(self.text, span.start);
        self.list.push(Issue {
            line,
            column,
            message: message.into(),
        });
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Read and validate a config file's text.
pub fn load(text: &str) -> Result<Config, ConfigError> {
    let raw = parse(text)?;
    validate(&raw, text)
}

/// Parse TOML into [`RawConfig`]: syntax, types, unknown keys and `schema_version`.
pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    // A newer schema has keys this agent does not know; say that rather than "unknown key".
    #[derive(Deserialize)]
    struct Probe {
        schema_version: Option<Spanned<toml::Value>>,
    }
    let probe: Probe = toml::from_str(text).map_err(|e| syntax(text, &e))?;
    match probe.schema_version {
        None => {
            return Err(ConfigError {
                issues: vec![Issue {
                    line: 1,
                    column: 1,
                    message: format!(
                    "schema_version is missing; this agent reads schema_version = {SCHEMA_VERSION}"
                ),
                }],
            })
        }
        Some(v) => {
            let ok = matches!(v.get_ref(), toml::Value::Integer(n) if *n == SCHEMA_VERSION);
            if !ok {
                let (line, column) = position(text, v.span().start);
                return Err(ConfigError {
                    issues: vec![Issue {
                        line,
                        column,
                        message: format!(
                            "schema_version = {} is not supported; this agent reads schema_version = {SCHEMA_VERSION}",
                            v.get_ref()
                        ),
                    }],
                });
            }
        }
    }
    toml::from_str(text).map_err(|e| syntax(text, &e))
}

fn syntax(text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map_or((1, 1), |s| position(text, s.start));
    ConfigError {
        issues: vec![Issue {
            line,
            column,
            message: e.message().trim().to_string(),
        }],
    }
}

// ---------------------------------------------------------------------------------------
// Validation

/// How a `net.mptcp.*` sysctl's value is written and checked.
#[derive(Debug, Clone, Copy)]
pub enum SysctlKind {
    Bool,
    Int { min: i64, max: i64 },
    Word,
}

/// The sysctls the config may set, with the kernel release that introduced each.
pub const SYSCTLS: [(&str, SysctlKind, &str); 9] = [
    ("enabled", SysctlKind::Bool, "5.6"),
    (
        "add_addr_timeout",
        SysctlKind::Int {
            min: 1,
            max: 86_400,
        },
        "5.8",
    ),
    ("checksum_enabled", SysctlKind::Bool, "5.14"),
    ("allow_join_initial_addr_port", SysctlKind::Bool, "5.14"),
    (
        "stale_loss_cnt",
        SysctlKind::Int { min: 1, max: 1_000 },
        "5.16",
    ),
    ("scheduler", SysctlKind::Word, "6.6"),
    (
        "close_timeout",
        SysctlKind::Int {
            min: 1,
            max: 86_400,
        },
        "6.8",
    ),
    (
        "blackhole_timeout",
        SysctlKind::Int {
            min: 0,
            max: 86_400,
        },
        "6.12",
    ),
    (
        "syn_retrans_before_tcp_fallback",
        SysctlKind::Int { min: 0, max: 255 },
        "6.15",
    ),
];

/// Kernel release that introduced a sysctl, for messages.
pub fn sysctl_since(name: &str) -> Option<&'static str> {
    SYSCTLS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, v)| *v)
}

fn int_in(issues: &mut Issues, v: &Spanned<i64>, what: &str, min: i64, max: i64) -> Option<i64> {
    let n = *v.get_ref();
    if n < min || n > max {
        issues.at(
            v.span(),
            format!("{what} = {n} is out of range ({min}..={max})"),
        );
        None
    } else {
        Some(n)
    }
}

/// Check a parsed config and turn it into [`Config`]. Reports every problem found.
pub fn validate(raw: &RawConfig, text: &str) -> Result<Config, ConfigError> {
    let mut issues = Issues {
        text,
        list: Vec::new(),
    };
    let mut cfg = Config::default();

    // [networkmanager]
    if let Some(f) = &raw.networkmanager.follow {
        cfg.networkmanager.follow = *f.get_ref();
    }
    if let Some(paths) = &raw.networkmanager.conf_paths {
        cfg.networkmanager.conf_paths.clear();
        for p in paths.get_ref() {
            if !p.get_ref().starts_with('/') {
                issues.at(
                    p.span(),
                    format!(
                        "networkmanager.conf_paths: {:?} is not an absolute path",
                        p.get_ref()
                    ),
                );
            } else {
                cfg.networkmanager.conf_paths.push(p.get_ref().clone());
            }
        }
    }

    // [limits]: the kernel caps both at 8 (MPTCP_PM_ADDR_MAX).
    if let Some(v) = &raw.limits.subflows {
        cfg.limits.subflows = int_in(&mut issues, v, "limits.subflows", 0, 8).map(|n| n as u32);
    }
    if let Some(v) = &raw.limits.add_addr_accepted {
        cfg.limits.add_addr_accepted =
            int_in(&mut issues, v, "limits.add_addr_accepted", 0, 8).map(|n| n as u32);
    }

    // [sysctl]
    let s = &raw.sysctl;
    let bools = [
        ("enabled", &s.enabled),
        ("checksum_enabled", &s.checksum_enabled),
        (
            "allow_join_initial_addr_port",
            &s.allow_join_initial_addr_port,
        ),
    ];
    for (name, v) in bools {
        if let Some(v) = v {
            cfg.sysctls.insert(
                name.to_string(),
                if *v.get_ref() { "1" } else { "0" }.to_string(),
            );
        }
    }
    let ints = [
        ("add_addr_timeout", &s.add_addr_timeout),
        ("stale_loss_cnt", &s.stale_loss_cnt),
        ("close_timeout", &s.close_timeout),
        ("blackhole_timeout", &s.blackhole_timeout),
        (
            "syn_retrans_before_tcp_fallback",
            &s.syn_retrans_before_tcp_fallback,
        ),
    ];
    for (name, v) in ints {
        if let Some(v) = v {
            let (min, max) = match SYSCTLS.iter().find(|(n, _, _)| *n == name) {
                Some((_, SysctlKind::Int { min, max }, _)) => (*min, *max),
                _ => (0, i64::MAX),
            };
            if let Some(n) = int_in(&mut issues, v, &format!("sysctl.{name}"), min, max) {
                cfg.sysctls.insert(name.to_string(), n.to_string());
            }
        }
    }
    if let Some(v) = &s.scheduler {
        let w = v.get_ref();
        let ok = !w.is_empty()
            && w.len() <= 15
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            cfg.sysctls.insert("scheduler".to_string(), w.clone());
        } else {
            issues.at(v.span(), format!("sysctl.scheduler = {w:?}: a scheduler name is 1-15 characters of a-z, 0-9 and _"));
        }
    }

    // [routing]
    let r = &raw.routing;
    if let Some(v) = &r.table_base {
        if let Some(n) = int_in(&mut issues, v, "routing.table_base", 256, 0x7000_0000) {
            cfg.routing.table_base = n as u32;
        }
    }
    if let Some(v) = &r.rule_priority {
        // Below the main table's rule (32766) or the route lookup never reaches it.
        if let Some(n) = int_in(&mut issues, v, "routing.rule_priority", 1, 32_765) {
            cfg.routing.rule_priority = n as u32;
        }
    }
    if let Some(v) = &r.protocol {
        // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
        if let Some(n) = int_in(&mut issues, v, "routing.protocol", 5, 255) {
            cfg.routing.protocol = n as u8;
        }
    }

    // [reestablish]
    let b = &raw.reestablish;
    if let Some(v) = &b.initial_delay_ms {
        if let Some(n) = int_in(&mut issues, v, "reestablish.initial_delay_ms", 10, 600_000) {
            cfg.reestablish.initial_delay_ms = n as u64;
        }
    }
    if let Some(v) = &b.max_attempts {
        if let Some(n) = int_in(&mut issues, v, "reestablish.max_attempts", 1, 1000) {
            cfg.reestablish.max_attempts = n as u32;
        }
    }
    if let Some(v) = &b.max_delay_ms {
        if let Some(n) = int_in(&mut issues, v, "reestablish.max_delay_ms", 10, 3_600_000) {
            cfg.reestablish.max_delay_ms = n as u64;
            if cfg.reestablish.max_delay_ms < cfg.reestablish.initial_delay_ms {
                issues.at(
                    v.span(),
                    format!(
                        "reestablish.max_delay_ms = {n} is below reestablish.initial_delay_ms = {}",
                        cfg.reestablish.initial_delay_ms
                    ),
                );
            }
        }
    }

    // [[link]]
    for (i, spanned) in raw.links.iter().enumerate() {
        if let Some(rule) = validate_link(&mut issues, spanned.get_ref(), spanned.span(), i + 1) {
            cfg.links.push(rule);
        }
    }
    let mut seen = BTreeMap::new();
    for (i, spanned) in raw.links.iter().enumerate() {
        if let Some(n) = &spanned.get_ref().name {
            if let Some(first) = seen.insert(n.get_ref().clone(), i + 1) {
                issues.at(
                    n.span(),
                    format!(
                        "link rule name {:?} is already used by link rule {first}",
                        n.get_ref()
                    ),
                );
            }
        }
    }

    if issues.list.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError {
            issues: issues.list,
        })
    }
}

fn validate_link(
    issues: &mut Issues,
    raw: &RawLinkRule,
    span: Range<usize>,
    number: usize,
) -> Option<LinkRule> {
    let before = issues.list.len();
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() || n.get_ref().len() > 64 => {
            issues.at(n.span(), "link rule name must be 1-64 characters");
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => format!("link rule {number}"),
    };
    let mut rule = LinkRule {
        name: name.clone(),
        interfaces: Vec::new(),
        device_types: Vec::new(),
        metered: raw.metered.as_ref().map(|m| *m.get_ref()),
        policy: None,
    };
    if let Some(list) = &raw.interfaces {
        if list.get_ref().is_empty() {
            issues.at(
                list.span(),
                format!("{name}: interfaces is empty; leave it out to match any interface"),
            );
        }
        for p in list.get_ref() {
            match Pattern::new(p.get_ref()) {
                Ok(pat) => rule.interfaces.push(pat),
                Err(e) => issues.at(
                    p.span(),
                    format!("{name}: interface pattern {:?}: {e}", p.get_ref()),
                ),
            }
        }
    }
    if let Some(list) = &raw.device_types {
        if list.get_ref().is_empty() {
            issues.at(
                list.span(),
                format!("{name}: device_types is empty; leave it out to match any type"),
            );
        }
        for t in list.get_ref() {
            match DeviceType::from_name(t.get_ref()) {
                Some(dt) => rule.device_types.push(dt),
                None => {
                    let known: Vec<&str> = DeviceType::NAMES.iter().map(|(n, _)| *n).collect();
                    issues.at(
                        t.span(),
                        format!(
                            "{name}: unknown device type {:?} (known: {})",
                            t.get_ref(),
                            known.join(", ")
                        ),
                    )
                }
            }
        }
    }
    let manage = raw.manage.as_ref().map_or(true, |m| *m.get_ref());
    if !manage {
        // Everything about endpoints is meaningless on a link the agent leaves alone.
        let extra = [
            raw.flags.as_ref().map(|f| f.span()),
            raw.on_carrier_loss.as_ref().map(|f| f.span()),
            raw.ipv4.as_ref().map(|f| f.span()),
            raw.ipv6.as_ref().map(|f| f.span()),
            raw.gateway4.as_ref().map(|f| f.span()),
            raw.gateway6.as_ref().map(|f| f.span()),
        ];
        for s in extra.into_iter().flatten() {
            issues.at(
                s,
                format!("{name}: manage = false, so this key has no effect; remove it"),
            );
        }
    } else {
        let mut flags = EndpointFlags::empty();
        match &raw.flags {
            None => issues.at(
                span.clone(),
                format!("{name}: flags is missing (e.g. flags = [\"subflow\"])"),
            ),
            Some(list) => {
                for f in list.get_ref() {
                    match EndpointFlags::from_name(f.get_ref()) {
                        Some(fl) if fl == EndpointFlags::IMPLICIT => {
                            issues.at(f.span(), format!("{name}: \"implicit\" is set by the kernel only"))
                        }
                        Some(fl) if flags.contains(fl) => issues.at(f.span(), format!("{name}: flag {:?} given twice", f.get_ref())),
                        Some(fl) => flags = flags.union(fl),
                        None => issues.at(
                            f.span(),
                            format!("{name}: unknown flag {:?} (known: subflow, signal, backup, fullmesh)", f.get_ref()),
                        ),
                    }
                }
                if !flags.contains(EndpointFlags::SUBFLOW) && !flags.contains(EndpointFlags::SIGNAL)
                {
                    issues.at(list.span(), format!("{name}: flags need \"subflow\" or \"signal\", or the endpoint does nothing"));
                }
                if flags.contains(EndpointFlags::FULLMESH) && flags.contains(EndpointFlags::SIGNAL)
                {
                    issues.at(
                        list.span(),
                        format!("{name}: the kernel refuses \"fullmesh\" together with \"signal\""),
                    );
                }
                if flags.contains(EndpointFlags::FULLMESH)
                    && !flags.contains(EndpointFlags::SUBFLOW)
                {
                    issues.at(
                        list.span(),
                        format!("{name}: \"fullmesh\" needs \"subflow\""),
                    );
                }
            }
        }
        let on_carrier_loss = match &raw.on_carrier_loss {
            None => CarrierLoss::Withdraw,
            Some(v) => {
                match v.get_ref().as_str() {
                    "withdraw" => CarrierLoss::Withdraw,
                    "backup" => CarrierLoss::Backup,
                    other => {
                        issues.at(v.span(), format!("{name}: on_carrier_loss = {other:?}; use \"withdraw\" or \"backup\""));
                        CarrierLoss::Withdraw
                    }
                }
            }
        };
        let ipv4 = raw.ipv4.as_ref().map_or(true, |v| *v.get_ref());
        let ipv6 = raw.ipv6.as_ref().map_or(true, |v| *v.get_ref());
        if !ipv4 && !ipv6 {
            issues.at(
                span,
                format!(
                    "{name}: ipv4 and ipv6 are both false; use manage = false to leave links alone"
                ),
            );
        }
        let gateway4 = raw
            .gateway4
            .as_ref()
            .and_then(|g| match g.get_ref().parse::<Ipv4Addr>() {
                Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() => Some(a),
                _ => {
                    issues.at(
                        g.span(),
                        format!(
                            "{name}: gateway4 = {:?} is not a unicast IPv4 address",
                            g.get_ref()
                        ),
                    );
                    None
                }
            });
        let gateway6 = raw
            .gateway6
            .as_ref()
            .and_then(|g| match g.get_ref().parse::<Ipv6Addr>() {
                Ok(a) if !a.is_unspecified() && !a.is_multicast() => Some(a),
                _ => {
                    issues.at(
                        g.span(),
                        format!(
                            "{name}: gateway6 = {:?} is not a unicast IPv6 address",
                            g.get_ref()
                        ),
                    );
                    None
                }
            });
        rule.policy = Some(LinkPolicy {
            flags,
            on_carrier_loss,
            ipv4,
            ipv6,
            gateway4,
            gateway6,
        });
    }
    (issues.list.len() == before).then_some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
schema_version = 1

[networkmanager]
follow = true

[limits]
subflows = 4
add_addr_accepted = 2

[sysctl]
enabled = true
add_addr_timeout = 60
scheduler = "default"

[routing]
table_base = 2000
rule_priority = 900
protocol = 99

[reestablish]
initial_delay_ms = 100
max_delay_ms = 10000

[[link]]
name = "cellular"
device_types = ["modem"]
interfaces = ["wwan*"]
flags = ["subflow", "backup"]
on_carrier_loss = "backup"
ipv6 = false

[[link]]
interfaces = ["docker*", "veth*"]
manage = false

[[link]]
flags = ["subflow"]
"#;

    #[test]
    fn good_config_loads() {
        let cfg = load(GOOD).unwrap();
        assert_eq!(cfg.limits.subflows, Some(4));
        assert_eq!(cfg.limits.add_addr_accepted, Some(2));
        assert_eq!(cfg.sysctls.get("enabled").map(String::as_str), Some("1"));
        assert_eq!(
            cfg.sysctls.get("add_addr_timeout").map(String::as_str),
            Some("60")
        );
        assert_eq!(
            cfg.sysctls.get("scheduler").map(String::as_str),
            Some("default")
        );
        assert_eq!(
            cfg.routing,
            RoutingConfig {
                table_base: 2000,
                rule_priority: 900,
                protocol: 99
            }
        );
        assert_eq!(cfg.reestablish.initial_delay_ms, 100);
        assert_eq!(cfg.links.len(), 3);
        let cell = &cfg.links[0];
        assert_eq!(cell.name, "cellular");
        let p = cell.policy.unwrap();
        assert_eq!(p.flags, EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP));
        assert_eq!(p.on_carrier_loss, CarrierLoss::Backup);
        assert!(p.ipv4 && !p.ipv6);
        assert!(cfg.links[1].policy.is_none());
        assert_eq!(cfg.links[2].name, "link rule 3");
        assert!(cfg.links[2].matches("anything", None, true));
    }

    #[test]
    fn rule_matching() {
        let cfg = load(GOOD).unwrap();
        let cell = &cfg.links[0];
        assert!(cell.matches("wwan0", Some(DeviceType::Modem), false));
        assert!(!cell.matches("wwan0", Some(DeviceType::Veth), false));
        // A rule that needs a type does not match an unknown type.
        assert!(!cell.matches("wwan0", None, false));
        assert!(!cell.matches("wlan0", Some(DeviceType::Modem), false));
    }

    fn first_issue(text: &str) -> Issue {
        load(text).unwrap_err().issues.into_iter().next().unwrap()
    }

    #[test]
    fn syntax_error_has_position() {
        let i = first_issue("schema_version = 1\n[limits\nsubflows = 2\n");
        assert_eq!(i.line, 2, "{i}");
    }

    #[test]
    fn unknown_key_has_position() {
        let i = first_issue("schema_version = 1\n[limits]\nsubflow = 2\n");
        assert_eq!((i.line, i.column), (3, 1), "{i}");
        assert!(i.message.contains("unknown field `subflow`"), "{i}");
    }

    #[test]
    fn wrong_type_has_position() {
        let i = first_issue("schema_version = 1\n[limits]\nsubflows = \"four\"\n");
        assert_eq!(i.line, 3, "{i}");
    }

    #[test]
    fn schema_version_checks() {
        let i = first_issue("[limits]\nsubflows = 2\n");
        assert!(i.message.contains("schema_version is missing"), "{i}");
        let i = first_issue("schema_version = 2\n[future]\nx = 1\n");
        assert_eq!((i.line, i.column), (1, 18), "{i}");
        assert!(
            i.message.contains("schema_version = 2 is not supported"),
            "{i}"
        );
        let i = first_issue("schema_version = \"1\"\n");
        assert!(i.message.contains("not supported"), "{i}");
    }

    #[test]
    fn range_errors_name_position_and_range() {
        let e = load("schema_version = 1\n[limits]\nsubflows = 9\nadd_addr_accepted = -1\n")
            .unwrap_err();
        assert_eq!(e.issues.len(), 2, "{e}");
        assert_eq!((e.issues[0].line, e.issues[0].column), (3, 12));
        assert!(e.issues[0].message.contains("0..=8"));
        assert_eq!(e.issues[1].line, 4);
        let rendered = e.render(Some("/etc/mptcp-agent/agent.toml"));
        assert!(
            rendered.starts_with("/etc/mptcp-agent/agent.toml:3:12: limits.subflows = 9"),
            "{rendered}"
        );
    }

    #[test]
    fn link_rule_errors() {
        let text = r#"schema_version = 1
[[link]]
interfaces = ["wl[an"]
device_types = ["toaster"]
flags = ["fullmesh", "signal", "bogus"]
on_carrier_loss = "panic"
"#;
        let e = load(text).unwrap_err();
        let msgs: Vec<String> = e.issues.iter().map(|i| i.to_string()).collect();
        let all = msgs.join("\n");
        assert!(
            all.contains("line 3, column 15: link rule 1: interface pattern \"wl[an\""),
            "{all}"
        );
        assert!(
            all.contains("line 4, column 17: link rule 1: unknown device type \"toaster\""),
            "{all}"
        );
        assert!(all.contains("unknown flag \"bogus\""), "{all}");
        assert!(
            all.contains("\"fullmesh\" together with \"signal\""),
            "{all}"
        );
        assert!(all.contains("on_carrier_loss = \"panic\""), "{all}");
    }

    #[test]
    fn link_rule_needs_useful_flags() {
        let e = load("schema_version = 1\n[[link]]\nflags = [\"backup\"]\n").unwrap_err();
        assert!(
            e.issues[0]
                .message
                .contains("need \"subflow\" or \"signal\""),
            "{e}"
        );
        let e = load("schema_version = 1\n[[link]]\ninterfaces = [\"x\"]\n").unwrap_err();
        assert!(e.issues[0].message.contains("flags is missing"), "{e}");
        let e =
            load("schema_version = 1\n[[link]]\nflags = [\"subflow\", \"subflow\"]\n").unwrap_err();
        assert!(e.issues[0].message.contains("given twice"), "{e}");
        let e = load("schema_version = 1\n[[link]]\nflags = [\"implicit\", \"subflow\"]\n")
            .unwrap_err();
        assert!(e.issues[0].message.contains("kernel only"), "{e}");
        let e = load("schema_version = 1\n[[link]]\nmanage = false\nflags = [\"subflow\"]\n")
            .unwrap_err();
        assert!(e.issues[0].message.contains("no effect"), "{e}");
        let e = load(
            "schema_version = 1\n[[link]]\nflags = [\"subflow\"]\nipv4 = false\nipv6 = false\n",
        )
        .unwrap_err();
        assert!(e.issues[0].message.contains("both false"), "{e}");
    }

    #[test]
    fn gateways() {
        let cfg = load("schema_version = 1\n[[link]]\ninterfaces = [\"wwan0\"]\nflags = [\"subflow\"]\ngateway4 = \"10.2.0.1\"\ngateway6 = \"fe80::1\"\n").unwrap();
        let p = cfg.links[0].policy.unwrap();
        assert_eq!(p.gateway4, Some(Ipv4Addr::new(10, 2, 0, 1)));
        assert_eq!(p.gateway6, Some("fe80::1".parse().unwrap()));
        let e = load("schema_version = 1\n[[link]]\nflags = [\"subflow\"]\ngateway4 = \"fe80::1\"\ngateway6 = \"ff02::1\"\n").unwrap_err();
        assert_eq!(e.issues.len(), 2, "{e}");
        assert_eq!((e.issues[0].line, e.issues[0].column), (4, 12), "{e}");
    }

    #[test]
    fn duplicate_rule_names() {
        let text = "schema_version = 1\n[[link]]\nname = \"a\"\nflags = [\"subflow\"]\n[[link]]\nname = \"a\"\nflags = [\"subflow\"]\n";
        let e = load(text).unwrap_err();
        assert_eq!(e.issues[0].line, 6, "{e}");
        assert!(e.issues[0].message.contains("already used by link rule 1"));
    }

    #[test]
    fn routing_and_backoff_ranges() {
        let e = load("schema_version = 1\n[routing]\ntable_base = 254\nrule_priority = 32766\nprotocol = 2\n").unwrap_err();
        assert_eq!(e.issues.len(), 3, "{e}");
        let e =
            load("schema_version = 1\n[reestablish]\ninitial_delay_ms = 500\nmax_delay_ms = 100\n")
                .unwrap_err();
        assert!(e.issues[0].message.contains("below"), "{e}");
    }

    #[test]
    fn sysctl_ranges_and_words() {
        let e = load(
            "schema_version = 1\n[sysctl]\nadd_addr_timeout = 0\nscheduler = \"a b\"\nbogus = 1\n",
        )
        .unwrap_err();
        // unknown key is a parse error and stops there
        assert!(e.issues[0].message.contains("unknown field `bogus`"), "{e}");
        let e = load("schema_version = 1\n[sysctl]\nadd_addr_timeout = 0\nscheduler = \"a b\"\n")
            .unwrap_err();
        assert_eq!(e.issues.len(), 2, "{e}");
    }

    #[test]
    fn conf_paths_absolute() {
        let e =
            load("schema_version = 1\n[networkmanager]\nconf_paths = [\"etc/nm\"]\n").unwrap_err();
        assert_eq!((e.issues[0].line, e.issues[0].column), (3, 15), "{e}");
    }

    #[test]
    fn backoff_is_bounded() {
        let b = ReestablishConfig {
            initial_delay_ms: 100,
            max_delay_ms: 1000,
            max_attempts: 8,
        };
        assert_eq!(b.delay_after(0), 0);
        assert_eq!(b.delay_after(1), 100);
        assert_eq!(b.delay_after(2), 200);
        assert_eq!(b.delay_after(4), 800);
        assert_eq!(b.delay_after(5), 1000);
        assert_eq!(b.delay_after(500), 1000);
    }

    #[test]
    fn table_for_avoids_reserved() {
        let r = RoutingConfig {
            table_base: 250,
            rule_priority: 1,
            protocol: 77,
        };
        assert_eq!(r.table_for(3), None);
        assert_eq!(r.table_for(10), Some(260));
        let r = RoutingConfig {
            table_base: u32::MAX - 1,
            rule_priority: 1,
            protocol: 77,
        };
        assert_eq!(r.table_for(5), None);
    }

    #[test]
    fn position_counts_chars() {
        assert_eq!(position("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(position("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(position("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(position("é", 1), (1, 1));
    }
}
