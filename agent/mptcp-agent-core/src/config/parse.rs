// SPDX-License-Identifier: MIT OR Apache-2.0
//! TOML text to [`RawConfig`]: syntax, `schema_version`, unknown keys and wrong types.

use std::{collections::BTreeMap, ops::Range};

use toml::Spanned;

use super::{
    issue::Issues, position, raw::*, validate, Config, ConfigError, Issue, SCHEMA_VERSION,
};

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
pub(super) enum Kind {
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
    pub(super) fn words(self) -> &'static str {
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

pub(super) const NM_KEYS: &[(&str, Kind)] =
    &[("follow", Kind::Bool), ("conf_paths", Kind::StrList)];
pub(super) const LIMITS_KEYS: &[(&str, Kind)] =
    &[("subflows", Kind::Int), ("add_addr_accepted", Kind::Int)];
pub(super) const SYSCTL_KEYS: &[(&str, Kind)] = &[
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
pub(super) const ROUTING_KEYS: &[(&str, Kind)] = &[
    ("table_base", Kind::Int),
    ("rule_priority", Kind::Int),
    ("protocol", Kind::Int),
];
pub(super) const REESTABLISH_KEYS: &[(&str, Kind)] = &[
    ("initial_delay_ms", Kind::Int),
    ("max_delay_ms", Kind::Int),
    ("max_attempts", Kind::Int),
];
pub(super) const LOG_KEYS: &[(&str, Kind)] = &[("level", Kind::Str)];
pub(super) const METRICS_KEYS: &[(&str, Kind)] = &[
    ("enabled", Kind::Bool),
    ("file", Kind::Str),
    ("interval_ms", Kind::Int),
];
pub(super) const LINK_KEYS: &[(&str, Kind)] = &[
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
pub(super) const TOP_KEYS: &[(&str, Kind)] = &[
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

/// The values of one table that fit the schema, by key, with their positions.
type Fitting<'t> = BTreeMap<&'static str, (&'t toml_edit::Item, Range<usize>)>;

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
    ) -> Fitting<'t> {
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

fn get_bool(m: &Fitting<'_>, k: &str) -> Option<Spanned<bool>> {
    m.get(k).and_then(|(i, s)| i.as_bool().map(|b| sp(s, b)))
}

fn get_int(m: &Fitting<'_>, k: &str) -> Option<Spanned<i64>> {
    m.get(k).and_then(|(i, s)| i.as_integer().map(|n| sp(s, n)))
}

fn get_str(m: &Fitting<'_>, k: &str) -> Option<Spanned<String>> {
    m.get(k)
        .and_then(|(i, s)| i.as_str().map(|t| sp(s, t.to_string())))
}

fn get_list(m: &Fitting<'_>, k: &str) -> Option<SpannedList> {
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
        one_issue(line, column, e.message().trim().to_string())
    })?;
    let root = doc.as_table();
    check_schema_version(root, text)?;
    let mut r = Reader {
        issues: Issues::new(text),
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
        for (i, (t, tspan)) in link_tables(item, span).into_iter().enumerate() {
            let m = r.table(t, &format!("link[{}].", i + 1), LINK_KEYS, tspan.clone());
            links.push(sp(&tspan, raw_link(&m, &r.bad)));
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
        sysctl: raw_sysctl(&sysctl),
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
    Ok((raw, r.issues.into_list()))
}

fn one_issue(line: usize, column: usize, message: String) -> ConfigError {
    ConfigError {
        issues: vec![Issue {
            line,
            column,
            message,
        }],
    }
}

/// A newer schema has keys this agent does not know; say that rather than "unknown key".
fn check_schema_version(root: &toml_edit::Table, text: &str) -> Result<(), ConfigError> {
    let Some(v) = root.get("schema_version") else {
        return Err(one_issue(
            1,
            1,
            format!(
                "schema_version is missing; this agent reads schema_version = {SCHEMA_VERSION}"
            ),
        ));
    };
    if v.as_integer() == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    let (line, column) = position(text, span_of(v).map_or(0, |s| s.start));
    let shown = v
        .as_value()
        .map_or_else(|| found_item(v), |v| v.to_string());
    Err(one_issue(
        line,
        column,
        format!(
            "schema_version = {} is not supported; this agent reads schema_version = {SCHEMA_VERSION}",
            shown.trim()
        ),
    ))
}

/// The `[[link]]` tables, or the inline tables of `link = [...]`, each with its position.
fn link_tables<'t>(
    item: &'t toml_edit::Item,
    span: &Range<usize>,
) -> Vec<(&'t dyn toml_edit::TableLike, Range<usize>)> {
    match item {
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
    }
}

/// One link rule as written; `bad` are its keys whose value had the wrong type.
fn raw_link(m: &Fitting<'_>, bad: &[&str]) -> RawLinkRule {
    RawLinkRule {
        name: get_str(m, "name"),
        interfaces: get_list(m, "interfaces"),
        device_types: get_list(m, "device_types"),
        metered: get_bool(m, "metered"),
        manage: get_bool(m, "manage"),
        flags: get_list(m, "flags"),
        on_carrier_loss: get_str(m, "on_carrier_loss"),
        ipv4: get_bool(m, "ipv4"),
        ipv6: get_bool(m, "ipv6"),
        gateway4: get_str(m, "gateway4"),
        gateway6: get_str(m, "gateway6"),
        allow_virtual: get_bool(m, "allow_virtual"),
        metered_backup: get_bool(m, "metered_backup"),
        flags_unreadable: bad.contains(&"flags"),
    }
}

fn raw_sysctl(m: &Fitting<'_>) -> RawSysctl {
    RawSysctl {
        enabled: get_bool(m, "enabled"),
        add_addr_timeout: get_int(m, "add_addr_timeout"),
        checksum_enabled: get_bool(m, "checksum_enabled"),
        allow_join_initial_addr_port: get_bool(m, "allow_join_initial_addr_port"),
        stale_loss_cnt: get_int(m, "stale_loss_cnt"),
        scheduler: get_str(m, "scheduler"),
        close_timeout: get_int(m, "close_timeout"),
        blackhole_timeout: get_int(m, "blackhole_timeout"),
        syn_retrans_before_tcp_fallback: get_int(m, "syn_retrans_before_tcp_fallback"),
    }
}
