// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's configuration: TOML text → [`RawConfig`] (the TOML tree read against the
//! schema: unknown keys and wrong types refused, every value with its position) →
//! [`validate`] → [`Config`] (plain, checked values that `plan()` uses). Both steps report
//! every problem they find, as line and column, so an OTA hook can show exactly what is
//! wrong.

use std::{
    collections::BTreeMap,
    fmt,
    net::{Ipv4Addr, Ipv6Addr},
    ops::Range,
};

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

/// The config file as written (what [`parse`] could read). Integers are read as `i64` so
/// that range errors come from [`validate`] with a message that names the allowed range.
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

type SpannedList = Spanned<Vec<Spanned<String>>>;

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
/// has it; see [`SYSCTLS`].
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
    let (raw, mut issues) = parse_all(text)?;
    match validate(&raw, text) {
        Ok(cfg) if issues.is_empty() => Ok(cfg),
        Ok(_) => Err(ConfigError {
            issues: in_file_order(issues),
        }),
        Err(e) => {
            issues.extend(e.issues);
            Err(ConfigError {
                issues: in_file_order(issues),
            })
        }
    }
}

/// As a compiler lists them (the sort is stable: one position keeps its order).
fn in_file_order(mut issues: Vec<Issue>) -> Vec<Issue> {
    issues.sort_by_key(|i| (i.line, i.column));
    issues
}

/// Parse TOML into [`RawConfig`]: syntax, `schema_version`, unknown keys and types.
/// A syntax error stops there (the rest of the file cannot be read reliably); otherwise
/// every unknown key and every value of the wrong type is reported, and [`load`] goes on
/// to validate the values that could be read.
pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let (raw, issues) = parse_all(text)?;
    if issues.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigError { issues })
    }
}

/// What a key holds, in words a user knows.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Str,
    StrList,
    /// A `[name]` section (its keys are checked on their own).
    Table,
    /// `[[name]]` sections (or a list of inline tables).
    Tables,
}

impl Kind {
    fn words(self) -> &'static str {
        match self {
            Kind::Bool => "true or false",
            Kind::Int => "a whole number",
            Kind::Str => "a text in quotes",
            Kind::StrList => "a list of texts in quotes, e.g. [\"a\", \"b\"]",
            Kind::Table => "a section ([name])",
            Kind::Tables => "a list of sections ([[name]])",
        }
    }
}

const NM_KEYS: &[(&str, Kind)] = &[("follow", Kind::Bool), ("conf_paths", Kind::StrList)];
const LIMITS_KEYS: &[(&str, Kind)] = &[("subflows", Kind::Int), ("add_addr_accepted", Kind::Int)];
const SYSCTL_KEYS: &[(&str, Kind)] = &[
    ("enabled", Kind::Bool),
    ("add_addr_timeout", Kind::Int),
    ("checksum_enabled", Kind::Bool),
    ("allow_join_initial_addr_port", Kind::Bool),
    ("stale_loss_cnt", Kind::Int),
    ("scheduler", Kind::Str),
    ("close_timeout", Kind::Int),
    ("blackhole_timeout", Kind::Int),
    ("syn_retrans_before_tcp_fallback", Kind::Int),
];
const ROUTING_KEYS: &[(&str, Kind)] = &[
    ("table_base", Kind::Int),
    ("rule_priority", Kind::Int),
    ("protocol", Kind::Int),
];
const REESTABLISH_KEYS: &[(&str, Kind)] = &[
    ("initial_delay_ms", Kind::Int),
    ("max_delay_ms", Kind::Int),
    ("max_attempts", Kind::Int),
];
const LOG_KEYS: &[(&str, Kind)] = &[("level", Kind::Str)];
const METRICS_KEYS: &[(&str, Kind)] = &[
    ("enabled", Kind::Bool),
    ("file", Kind::Str),
    ("interval_ms", Kind::Int),
];
const LINK_KEYS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("interfaces", Kind::StrList),
    ("device_types", Kind::StrList),
    ("metered", Kind::Bool),
    ("manage", Kind::Bool),
    ("flags", Kind::StrList),
    ("on_carrier_loss", Kind::Str),
    ("ipv4", Kind::Bool),
    ("ipv6", Kind::Bool),
    ("gateway4", Kind::Str),
    ("gateway6", Kind::Str),
    ("allow_virtual", Kind::Bool),
    ("metered_backup", Kind::Bool),
];
/// The whole file.
const TOP_KEYS: &[(&str, Kind)] = &[
    ("schema_version", Kind::Int),
    ("networkmanager", Kind::Table),
    ("limits", Kind::Table),
    ("sysctl", Kind::Table),
    ("routing", Kind::Table),
    ("reestablish", Kind::Table),
    ("log", Kind::Table),
    ("metrics", Kind::Table),
    ("link", Kind::Tables),
];

/// A value as found, for "found …" in messages.
fn found(v: &toml_edit::Value) -> String {
    use toml_edit::Value as V;
    fn cut(s: &str) -> String {
        if s.chars().count() > 40 {
            format!("{}…", s.chars().take(40).collect::<String>())
        } else {
            s.to_string()
        }
    }
    match v {
        V::String(s) => format!("the text {:?}", cut(s.value())),
        V::Integer(i) => format!("the whole number {}", i.value()),
        V::Float(f) => format!("the number {}", f.value()),
        V::Boolean(b) => format!("{}", b.value()),
        V::Datetime(d) => format!("the date/time {}", d.value()),
        V::Array(_) => "a list".to_string(),
        V::InlineTable(_) => "a table".to_string(),
    }
}

fn found_item(i: &toml_edit::Item) -> String {
    match i {
        toml_edit::Item::Value(v) => found(v),
        toml_edit::Item::Table(_) => "a section".to_string(),
        toml_edit::Item::ArrayOfTables(_) => "a list of sections".to_string(),
        toml_edit::Item::None => "nothing".to_string(),
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Reads the document against the schema: every unknown key and wrong type becomes an
/// issue; the values that fit are kept with their positions.
struct Reader<'a> {
    issues: Issues<'a>,
    /// Known keys of the last table read whose value had the wrong type.
    bad: Vec<&'static str>,
}

fn span_of(item: &toml_edit::Item) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
        toml_edit::Item::None => None,
    }
}

impl<'a> Reader<'a> {
    /// Check the keys of one table; returns the items whose type fits, by key.
    fn table<'t>(
        &mut self,
        table: &'t dyn toml_edit::TableLike,
        prefix: &str,
        keys: &'static [(&'static str, Kind)],
        fallback: Range<usize>,
    ) -> BTreeMap<&'static str, (&'t toml_edit::Item, Range<usize>)> {
        let mut out = BTreeMap::new();
        self.bad.clear();
        for (key, item) in table.iter() {
            let key_span = table
                .key(key)
                .and_then(|k| k.span())
                .unwrap_or_else(|| fallback.clone());
            let full = format!("{prefix}{key}");
            let Some((name, kind)) = keys.iter().find(|(n, _)| *n == key) else {
                let mut near: Vec<&str> = keys
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| distance(n, key) <= 2.max(n.len() / 4))
                    .collect();
                near.sort_by_key(|n| distance(n, key));
                let known: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
                let hint = match near.first() {
                    Some(n) => format!("did you mean `{prefix}{n}`?"),
                    None => format!("known here: {}", known.join(", ")),
                };
                self.issues
                    .at(key_span, format!("unknown key `{full}`; {hint}"));
                continue;
            };
            let span = span_of(item).unwrap_or_else(|| key_span.clone());
            let fits = match (kind, item) {
                (Kind::Bool, toml_edit::Item::Value(v)) => v.is_bool(),
                (Kind::Int, toml_edit::Item::Value(v)) => v.is_integer(),
                (Kind::Str, toml_edit::Item::Value(v)) => v.is_str(),
                (Kind::StrList, toml_edit::Item::Value(toml_edit::Value::Array(a))) => {
                    let mut ok = true;
                    for v in a.iter() {
                        if !v.is_str() {
                            ok = false;
                            self.issues.at(
                                v.span().unwrap_or_else(|| span.clone()),
                                format!(
                                    "{full}: every entry must be a text in quotes; found {}",
                                    found(v)
                                ),
                            );
                        }
                    }
                    if !ok {
                        self.bad.push(name);
                        continue;
                    }
                    true
                }
                (Kind::Table, i) => i.is_table_like(),
                (Kind::Tables, toml_edit::Item::ArrayOfTables(_)) => true,
                (Kind::Tables, toml_edit::Item::Value(toml_edit::Value::Array(a))) => {
                    a.iter().all(|v| v.is_inline_table())
                }
                _ => false,
            };
            if fits {
                out.insert(*name, (item, span));
            } else {
                self.bad.push(name);
                self.issues.at(
                    span,
                    format!(
                        "{full}: expected {}, found {}",
                        kind.words(),
                        found_item(item)
                    ),
                );
            }
        }
        out
    }
}

fn sp<T>(span: &Range<usize>, v: T) -> Spanned<T> {
    Spanned::new(span.clone(), v)
}

fn get_bool(
    m: &BTreeMap<&str, (&toml_edit::Item, Range<usize>)>,
    k: &str,
) -> Option<Spanned<bool>> {
    m.get(k).and_then(|(i, s)| i.as_bool().map(|b| sp(s, b)))
}

fn get_int(m: &BTreeMap<&str, (&toml_edit::Item, Range<usize>)>, k: &str) -> Option<Spanned<i64>> {
    m.get(k).and_then(|(i, s)| i.as_integer().map(|n| sp(s, n)))
}

fn get_str(
    m: &BTreeMap<&str, (&toml_edit::Item, Range<usize>)>,
    k: &str,
) -> Option<Spanned<String>> {
    m.get(k)
        .and_then(|(i, s)| i.as_str().map(|t| sp(s, t.to_string())))
}

fn get_list(m: &BTreeMap<&str, (&toml_edit::Item, Range<usize>)>, k: &str) -> Option<SpannedList> {
    let (i, s) = m.get(k)?;
    let a = i.as_array()?;
    let list = a
        .iter()
        .filter_map(|v| {
            let vs = v.span().unwrap_or_else(|| s.clone());
            v.as_str().map(|t| sp(&vs, t.to_string()))
        })
        .collect();
    Some(sp(s, list))
}

/// Parse and read the whole file: the config as far as it could be read, and every problem
/// found on the way. `Err` only for a syntax error or an unsupported `schema_version`.
pub fn parse_all(text: &str) -> Result<(RawConfig, Vec<Issue>), ConfigError> {
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| position(text, s.start));
        ConfigError {
            issues: vec![Issue {
                line,
                column,
                message: e.message().trim().to_string(),
            }],
        }
    })?;
    let root = doc.as_table();
    // A newer schema has keys this agent does not know; say that rather than "unknown key".
    match root.get("schema_version") {
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
            if v.as_integer() != Some(SCHEMA_VERSION) {
                let (line, column) = position(text, span_of(v).map_or(0, |s| s.start));
                let shown = v
                    .as_value()
                    .map_or_else(|| found_item(v), |v| v.to_string());
                return Err(ConfigError {
                    issues: vec![Issue {
                        line,
                        column,
                        message: format!(
                            "schema_version = {} is not supported; this agent reads schema_version = {SCHEMA_VERSION}",
                            shown.trim()
                        ),
                    }],
                });
            }
        }
    }
    let mut r = Reader {
        issues: Issues {
            text,
            list: Vec::new(),
        },
        bad: Vec::new(),
    };
    let top = r.table(root, "", TOP_KEYS, 0..0);
    let section = |r: &mut Reader<'_>, name: &str, keys| match top.get(name) {
        Some((item, span)) => match item.as_table_like() {
            Some(t) => r.table(t, &format!("{name}."), keys, span.clone()),
            None => BTreeMap::new(),
        },
        None => BTreeMap::new(),
    };
    let nm = section(&mut r, "networkmanager", NM_KEYS);
    let limits = section(&mut r, "limits", LIMITS_KEYS);
    let sysctl = section(&mut r, "sysctl", SYSCTL_KEYS);
    let routing = section(&mut r, "routing", ROUTING_KEYS);
    let reestablish = section(&mut r, "reestablish", REESTABLISH_KEYS);
    let log = section(&mut r, "log", LOG_KEYS);
    let metrics = section(&mut r, "metrics", METRICS_KEYS);
    let mut links = Vec::new();
    if let Some((item, span)) = top.get("link") {
        let tables: Vec<(&dyn toml_edit::TableLike, Range<usize>)> = match item {
            toml_edit::Item::ArrayOfTables(a) => a
                .iter()
                .map(|t| {
                    (
                        t as &dyn toml_edit::TableLike,
                        t.span().unwrap_or_else(|| span.clone()),
                    )
                })
                .collect(),
            _ => item
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| {
                            let s = v.span().unwrap_or_else(|| span.clone());
                            v.as_inline_table()
                                .map(|t| (t as &dyn toml_edit::TableLike, s))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        for (i, (t, tspan)) in tables.into_iter().enumerate() {
            let m = r.table(t, &format!("link[{}].", i + 1), LINK_KEYS, tspan.clone());
            links.push(sp(
                &tspan,
                RawLinkRule {
                    name: get_str(&m, "name"),
                    interfaces: get_list(&m, "interfaces"),
                    device_types: get_list(&m, "device_types"),
                    metered: get_bool(&m, "metered"),
                    manage: get_bool(&m, "manage"),
                    flags: get_list(&m, "flags"),
                    on_carrier_loss: get_str(&m, "on_carrier_loss"),
                    ipv4: get_bool(&m, "ipv4"),
                    ipv6: get_bool(&m, "ipv6"),
                    gateway4: get_str(&m, "gateway4"),
                    gateway6: get_str(&m, "gateway6"),
                    allow_virtual: get_bool(&m, "allow_virtual"),
                    metered_backup: get_bool(&m, "metered_backup"),
                    flags_unreadable: r.bad.contains(&"flags"),
                },
            ));
        }
    }
    let sv_span = top.get("schema_version").map_or(0..0, |(_, s)| s.clone());
    let raw = RawConfig {
        schema_version: sp(&sv_span, SCHEMA_VERSION),
        networkmanager: RawNetworkManager {
            follow: get_bool(&nm, "follow"),
            conf_paths: get_list(&nm, "conf_paths"),
        },
        limits: RawLimits {
            subflows: get_int(&limits, "subflows"),
            add_addr_accepted: get_int(&limits, "add_addr_accepted"),
        },
        sysctl: RawSysctl {
            enabled: get_bool(&sysctl, "enabled"),
            add_addr_timeout: get_int(&sysctl, "add_addr_timeout"),
            checksum_enabled: get_bool(&sysctl, "checksum_enabled"),
            allow_join_initial_addr_port: get_bool(&sysctl, "allow_join_initial_addr_port"),
            stale_loss_cnt: get_int(&sysctl, "stale_loss_cnt"),
            scheduler: get_str(&sysctl, "scheduler"),
            close_timeout: get_int(&sysctl, "close_timeout"),
            blackhole_timeout: get_int(&sysctl, "blackhole_timeout"),
            syn_retrans_before_tcp_fallback: get_int(&sysctl, "syn_retrans_before_tcp_fallback"),
        },
        routing: RawRouting {
            table_base: get_int(&routing, "table_base"),
            rule_priority: get_int(&routing, "rule_priority"),
            protocol: get_int(&routing, "protocol"),
        },
        reestablish: RawReestablish {
            initial_delay_ms: get_int(&reestablish, "initial_delay_ms"),
            max_delay_ms: get_int(&reestablish, "max_delay_ms"),
            max_attempts: get_int(&reestablish, "max_attempts"),
        },
        log: RawLog {
            level: get_str(&log, "level"),
        },
        metrics: RawMetrics {
            enabled: get_bool(&metrics, "enabled"),
            file: get_str(&metrics, "file"),
            interval_ms: get_int(&metrics, "interval_ms"),
        },
        links,
    };
    Ok((raw, r.issues.list))
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
        // Kernel scheduler names are lower case (MPTCP_SCHED_NAME_MAX is 16 with the NUL).
        let ok = !w.is_empty()
            && w.len() <= 15
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
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

    // [log]
    if let Some(v) = &raw.log.level {
        match LogLevel::from_name(v.get_ref()) {
            Some(l) => cfg.log_level = Some(l),
            None => {
                let known: Vec<&str> = LogLevel::NAMES.iter().map(|(n, _)| *n).collect();
                issues.at(
                    v.span(),
                    format!(
                        "log.level = {:?}: use one of {}",
                        v.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
    }

    // [metrics]
    let m = &raw.metrics;
    if let Some(v) = &m.enabled {
        cfg.metrics.enabled = *v.get_ref();
    }
    if let Some(v) = &m.file {
        let f = v.get_ref();
        let name = f.rsplit('/').next().unwrap_or_default();
        if !f.starts_with('/') || name.len() <= ".prom".len() || !name.ends_with(".prom") {
            issues.at(
                v.span(),
                format!(
                    "metrics.file = {f:?}: use an absolute path to a file named *.prom (the only \
                     files node_exporter's textfile collector reads)"
                ),
            );
        } else {
            cfg.metrics.file = f.clone();
        }
    }
    if let Some(v) = &m.interval_ms {
        if let Some(n) = int_in(&mut issues, v, "metrics.interval_ms", 1_000, 3_600_000) {
            cfg.metrics.interval_ms = n as u64;
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
            raw.allow_virtual.as_ref().map(|f| f.span()),
            raw.metered_backup.as_ref().map(|f| f.span()),
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
            None if raw.flags_unreadable => {}
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
                            format!("{name}: unknown flag {:?} (known: subflow, signal, backup, fullmesh, laminar)", f.get_ref()),
                        ),
                    }
                }
                if !flags.contains(EndpointFlags::SUBFLOW)
                    && !flags.contains(EndpointFlags::SIGNAL)
                    && !flags.contains(EndpointFlags::LAMINAR)
                {
                    issues.at(list.span(), format!("{name}: flags need \"subflow\", \"signal\" or \"laminar\", or the endpoint does nothing"));
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
            allow_virtual: raw.allow_virtual.as_ref().is_some_and(|v| *v.get_ref()),
            metered_backup: raw.metered_backup.as_ref().map_or(true, |v| *v.get_ref()),
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
        assert_eq!(
            i.message,
            "unknown key `limits.subflow`; did you mean `limits.subflows`?"
        );
        let i = first_issue(
            "schema_version = 1
[limits]
zzz = 2
",
        );
        assert!(
            i.message
                .ends_with("known here: subflows, add_addr_accepted"),
            "{i}"
        );
    }

    #[test]
    fn every_problem_in_one_run() {
        // Two misspelt keys, a type error and a range error: all four, in file order.
        let text = "schema_version = 1\n[limits]\nsubflow = 2\nadd_addr_accepted = \"two\"\n\
                    [routing]\ntable_bse = 5\nprotocol = 1\n[[link]]\nflags = \"subflow\"\n";
        let e = load(text).unwrap_err();
        let got: Vec<(usize, usize)> = e.issues.iter().map(|i| (i.line, i.column)).collect();
        assert_eq!(got, [(3, 1), (4, 21), (6, 1), (7, 12), (9, 9)], "{e}");
        assert_eq!(
            e.issues[1].message,
            "limits.add_addr_accepted: expected a whole number, found the text \"two\""
        );
        assert!(
            e.issues[3].message.contains("out of range (5..=255)"),
            "{e}"
        );
        assert!(
            e.issues[4]
                .message
                .starts_with("link[1].flags: expected a list of texts in quotes"),
            "{e}"
        );
        let rendered = e.to_string();
        for word in ["i64", "u32", "invalid type", "field"] {
            assert!(!rendered.contains(word), "{word:?} in {rendered}");
        }
    }

    #[test]
    fn types_in_words_a_user_knows() {
        let e = load(
            "schema_version = 1\n[networkmanager]\nfollow = \"yes\"\nconf_paths = [\"/a\", 3]\n\
             [sysctl]\nadd_addr_timeout = 1.5\nscheduler = 7\nlimits = 3\n",
        )
        .unwrap_err();
        let all = e.render(None);
        assert!(
            all.contains("networkmanager.follow: expected true or false, found the text \"yes\""),
            "{all}"
        );
        assert!(
            all.contains("networkmanager.conf_paths: every entry must be a text in quotes; found the whole number 3"),
            "{all}"
        );
        assert!(
            all.contains("sysctl.add_addr_timeout: expected a whole number, found the number 1.5"),
            "{all}"
        );
        assert!(
            all.contains("sysctl.scheduler: expected a text in quotes, found the whole number 7"),
            "{all}"
        );
        assert!(all.contains("unknown key `sysctl.limits`"), "{all}");
        // A section where a value belongs and the other way round.
        let e = load(
            "schema_version = 1
limits = 4
[[sysctl]]
enabled = true
",
        )
        .unwrap_err();
        let all = e.render(None);
        assert!(
            all.contains("limits: expected a section ([name]), found the whole number 4"),
            "{all}"
        );
        assert!(
            all.contains("sysctl: expected a section ([name]), found a list of sections"),
            "{all}"
        );
    }

    /// Over the whole schema: every key given a value of the wrong type, all in one file,
    /// gives one issue per key, on its line, naming the key and what it expects in words;
    /// every key misspelt gives one issue per key that suggests the right one.
    #[test]
    fn every_key_of_the_schema_reported_at_once() {
        let wrong = |k: Kind| match k {
            Kind::Bool | Kind::StrList => "1",
            Kind::Int => "\"1\"",
            Kind::Str => "true",
            Kind::Table | Kind::Tables => unreachable!(),
        };
        let sections: [(&str, &[(&str, Kind)]); 8] = [
            ("networkmanager", NM_KEYS),
            ("limits", LIMITS_KEYS),
            ("sysctl", SYSCTL_KEYS),
            ("routing", ROUTING_KEYS),
            ("reestablish", REESTABLISH_KEYS),
            ("log", LOG_KEYS),
            ("metrics", METRICS_KEYS),
            ("[link]", LINK_KEYS),
        ];
        let mut text = String::from("schema_version = 1\n");
        let mut misspelt = String::from("schema_version = 1\n");
        let mut expected = Vec::new();
        for (section, keys) in sections {
            text.push_str(&format!("[{section}]\n"));
            misspelt.push_str(&format!("[{section}]\n"));
            let prefix = if section == "[link]" {
                "link[1].".to_string()
            } else {
                format!("{section}.")
            };
            for (key, kind) in keys {
                text.push_str(&format!("{key} = {}\n", wrong(*kind)));
                let line = text.lines().count();
                expected.push((line, format!("{prefix}{key}: expected {}", kind.words())));
                // One letter doubled: a typo the suggestion must catch.
                let typo = format!("{}{}", &key[..1], key);
                misspelt.push_str(&format!("{typo} = 1\n"));
            }
        }
        let e = load(&text).unwrap_err();
        let got: Vec<(usize, String)> = e
            .issues
            .iter()
            .map(|i| (i.line, i.message.clone()))
            .collect();
        assert_eq!(got.len(), expected.len(), "{e}");
        for ((line, msg), (want_line, want)) in got.iter().zip(&expected) {
            assert_eq!(line, want_line, "{msg}");
            assert!(msg.starts_with(want.as_str()), "{msg} / {want}");
        }
        let e = load(&misspelt).unwrap_err();
        // The [[link]] rule now lacks its flags: validation says so too.
        let (unknown, other): (Vec<&Issue>, Vec<&Issue>) = e
            .issues
            .iter()
            .partition(|i| i.message.starts_with("unknown key"));
        assert_eq!(unknown.len(), expected.len(), "{e}");
        assert_eq!(other.len(), 1, "{e}");
        assert!(other[0].message.contains("flags is missing"), "{e}");
        for (i, (_, want)) in unknown.iter().zip(&expected) {
            let key = want.split(':').next().unwrap();
            assert!(
                i.message.ends_with(&format!("did you mean `{key}`?")),
                "{} / {key}",
                i.message
            );
        }
    }

    #[test]
    fn scheduler_is_lower_case_as_documented() {
        for bad in [
            "BLEST",
            "Default",
            "a b",
            "",
            "sixteen_chars_xx",
            "bl\u{e9}st",
        ] {
            let text = format!("schema_version = 1\n[sysctl]\nscheduler = {bad:?}\n");
            let e = load(&text).unwrap_err();
            assert!(
                e.issues[0]
                    .message
                    .contains("1-15 characters of a-z, 0-9 and _"),
                "{bad}: {e}"
            );
        }
        for good in ["default", "blest", "round_robin2"] {
            let text = format!("schema_version = 1\n[sysctl]\nscheduler = {good:?}\n");
            assert!(load(&text).is_ok(), "{good}");
        }
    }

    #[test]
    fn log_level() {
        let cfg = load("schema_version = 1\n[log]\nlevel = \"debug\"\n").unwrap();
        assert_eq!(cfg.log_level, Some(LogLevel::Debug));
        assert_eq!(load("schema_version = 1\n").unwrap().log_level, None);
        let e = load("schema_version = 1\n[log]\nlevel = \"verbose\"\n").unwrap_err();
        assert_eq!(
            e.issues[0].message,
            "log.level = \"verbose\": use one of error, warning, info, debug, trace"
        );
    }

    #[test]
    fn metrics_section() {
        let cfg = load("schema_version = 1\n").unwrap();
        assert_eq!(cfg.metrics, MetricsConfig::default());
        assert!(!cfg.metrics.enabled);
        let cfg = load(
            "schema_version = 1\n[metrics]\nenabled = true\nfile = \"/run/x/a.prom\"\ninterval_ms = 5000\n",
        )
        .unwrap();
        assert_eq!(
            cfg.metrics,
            MetricsConfig {
                enabled: true,
                file: "/run/x/a.prom".into(),
                interval_ms: 5000
            }
        );
        for bad in ["run/a.prom", "/run/a.txt", "/run/.prom", "/run/a.prom/"] {
            let e = load(&format!("schema_version = 1\n[metrics]\nfile = {bad:?}\n")).unwrap_err();
            assert_eq!(e.issues.len(), 1, "{bad}: {e}");
            assert_eq!((e.issues[0].line, e.issues[0].column), (3, 8), "{bad}: {e}");
            assert!(e.issues[0].message.contains("*.prom"), "{bad}: {e}");
        }
        let e = load("schema_version = 1\n[metrics]\ninterval_ms = 10\n").unwrap_err();
        assert_eq!(
            e.issues[0].message,
            "metrics.interval_ms = 10 is out of range (1000..=3600000)"
        );
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
                .contains("need \"subflow\", \"signal\" or \"laminar\""),
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
        // The unknown key does not hide the range and pattern errors.
        assert_eq!(e.issues.len(), 3, "{e}");
        assert!(
            e.issues[2].message.contains("unknown key `sysctl.bogus`"),
            "{e}"
        );
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
