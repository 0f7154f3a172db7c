// SPDX-License-Identifier: MIT OR Apache-2.0
//! [`RawConfig`] to [`Config`]: ranges, names, patterns and combinations, every problem
//! reported.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
    ops::Range,
};

use toml::Spanned;

use super::{
    issue::Issues, raw::*, CarrierLoss, Config, ConfigError, LimitsConfig, LinkPolicy, LinkRule,
    LogLevel, MetricsConfig, NmSettings, ReestablishConfig, RoutingConfig,
};
use crate::{
    glob::Pattern,
    model::{DeviceType, EndpointFlags},
};

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
    let mut issues = Issues::new(text);
    let mut cfg = Config::default();
    networkmanager(&mut issues, &raw.networkmanager, &mut cfg.networkmanager);
    limits(&mut issues, &raw.limits, &mut cfg.limits);
    sysctls(&mut issues, &raw.sysctl, &mut cfg.sysctls);
    routing(&mut issues, &raw.routing, &mut cfg.routing);
    reestablish(&mut issues, &raw.reestablish, &mut cfg.reestablish);
    if let Some(v) = &raw.log.level {
        cfg.log_level = log_level(&mut issues, v);
    }
    metrics(&mut issues, &raw.metrics, &mut cfg.metrics);
    cfg.links = links(&mut issues, &raw.links);
    if issues.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError {
            issues: issues.into_list(),
        })
    }
}

/// `[networkmanager]`.
fn networkmanager(issues: &mut Issues, raw: &RawNetworkManager, nm: &mut NmSettings) {
    if let Some(f) = &raw.follow {
        nm.follow = *f.get_ref();
    }
    if let Some(paths) = &raw.conf_paths {
        nm.conf_paths.clear();
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
                nm.conf_paths.push(p.get_ref().clone());
            }
        }
    }
}

/// `[limits]`: the kernel caps both at 8 (MPTCP_PM_ADDR_MAX).
fn limits(issues: &mut Issues, raw: &RawLimits, limits: &mut LimitsConfig) {
    if let Some(v) = &raw.subflows {
        limits.subflows = int_in(issues, v, "limits.subflows", 0, 8).map(|n| n as u32);
    }
    if let Some(v) = &raw.add_addr_accepted {
        limits.add_addr_accepted =
            int_in(issues, v, "limits.add_addr_accepted", 0, 8).map(|n| n as u32);
    }
}

/// `[sysctl]`: values as written to `/proc/sys/net/mptcp`.
fn sysctls(issues: &mut Issues, s: &RawSysctl, out: &mut BTreeMap<String, String>) {
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
            out.insert(
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
            if let Some(n) = int_in(issues, v, &format!("sysctl.{name}"), min, max) {
                out.insert(name.to_string(), n.to_string());
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
            out.insert("scheduler".to_string(), w.clone());
        } else {
            issues.at(v.span(), format!("sysctl.scheduler = {w:?}: a scheduler name is 1-15 characters of a-z, 0-9 and _"));
        }
    }
}

/// `[routing]`.
fn routing(issues: &mut Issues, r: &RawRouting, routing: &mut RoutingConfig) {
    if let Some(v) = &r.table_base {
        if let Some(n) = int_in(issues, v, "routing.table_base", 256, 0x7000_0000) {
            routing.table_base = n as u32;
        }
    }
    if let Some(v) = &r.rule_priority {
        // Below the main table's rule (32766) or the route lookup never reaches it.
        if let Some(n) = int_in(issues, v, "routing.rule_priority", 1, 32_765) {
            routing.rule_priority = n as u32;
        }
    }
    if let Some(v) = &r.protocol {
        // 0-4 are the kernel's own (unspec, redirect, kernel, boot, static).
        if let Some(n) = int_in(issues, v, "routing.protocol", 5, 255) {
            routing.protocol = n as u8;
        }
    }
}

/// `[reestablish]`.
fn reestablish(issues: &mut Issues, b: &RawReestablish, re: &mut ReestablishConfig) {
    if let Some(v) = &b.initial_delay_ms {
        if let Some(n) = int_in(issues, v, "reestablish.initial_delay_ms", 10, 600_000) {
            re.initial_delay_ms = n as u64;
        }
    }
    if let Some(v) = &b.max_attempts {
        if let Some(n) = int_in(issues, v, "reestablish.max_attempts", 1, 1000) {
            re.max_attempts = n as u32;
        }
    }
    if let Some(v) = &b.max_delay_ms {
        if let Some(n) = int_in(issues, v, "reestablish.max_delay_ms", 10, 3_600_000) {
            re.max_delay_ms = n as u64;
            if re.max_delay_ms < re.initial_delay_ms {
                issues.at(
                    v.span(),
                    format!(
                        "reestablish.max_delay_ms = {n} is below reestablish.initial_delay_ms = {}",
                        re.initial_delay_ms
                    ),
                );
            }
        }
    }
}

/// `[log] level`.
fn log_level(issues: &mut Issues, v: &Spanned<String>) -> Option<LogLevel> {
    let level = LogLevel::from_name(v.get_ref());
    if level.is_none() {
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
    level
}

/// `[metrics]`.
fn metrics(issues: &mut Issues, m: &RawMetrics, metrics: &mut MetricsConfig) {
    if let Some(v) = &m.enabled {
        metrics.enabled = *v.get_ref();
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
            metrics.file = f.clone();
        }
    }
    if let Some(v) = &m.interval_ms {
        if let Some(n) = int_in(issues, v, "metrics.interval_ms", 1_000, 3_600_000) {
            metrics.interval_ms = n as u64;
        }
    }
}

/// `[[link]]` rules in order, each checked alone, then their names against each other.
fn links(issues: &mut Issues, raw: &[Spanned<RawLinkRule>]) -> Vec<LinkRule> {
    let mut rules = Vec::new();
    for (i, spanned) in raw.iter().enumerate() {
        if let Some(rule) = link(issues, spanned.get_ref(), spanned.span(), i + 1) {
            rules.push(rule);
        }
    }
    let mut seen = BTreeMap::new();
    for (i, spanned) in raw.iter().enumerate() {
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
    rules
}

/// One `[[link]]` rule (`number` from 1), `None` if it has a problem.
fn link(
    issues: &mut Issues,
    raw: &RawLinkRule,
    span: Range<usize>,
    number: usize,
) -> Option<LinkRule> {
    let before = issues.len();
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() || n.get_ref().len() > 64 => {
            issues.at(n.span(), "link rule name must be 1-64 characters");
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => format!("link rule {number}"),
    };
    let rule = LinkRule {
        interfaces: raw
            .interfaces
            .as_ref()
            .map_or_else(Vec::new, |l| interface_patterns(issues, &name, l)),
        device_types: raw
            .device_types
            .as_ref()
            .map_or_else(Vec::new, |l| device_types(issues, &name, l)),
        metered: raw.metered.as_ref().map(|m| *m.get_ref()),
        policy: if raw.manage.as_ref().map_or(true, |m| *m.get_ref()) {
            Some(link_policy(issues, &name, raw, span))
        } else {
            left_alone(issues, &name, raw);
            None
        },
        name,
    };
    (issues.len() == before).then_some(rule)
}

fn interface_patterns(issues: &mut Issues, name: &str, list: &SpannedList) -> Vec<Pattern> {
    if list.get_ref().is_empty() {
        issues.at(
            list.span(),
            format!("{name}: interfaces is empty; leave it out to match any interface"),
        );
    }
    let mut patterns = Vec::new();
    for p in list.get_ref() {
        match Pattern::new(p.get_ref()) {
            Ok(pat) => patterns.push(pat),
            Err(e) => issues.at(
                p.span(),
                format!("{name}: interface pattern {:?}: {e}", p.get_ref()),
            ),
        }
    }
    patterns
}

fn device_types(issues: &mut Issues, name: &str, list: &SpannedList) -> Vec<DeviceType> {
    if list.get_ref().is_empty() {
        issues.at(
            list.span(),
            format!("{name}: device_types is empty; leave it out to match any type"),
        );
    }
    let mut types = Vec::new();
    for t in list.get_ref() {
        match DeviceType::from_name(t.get_ref()) {
            Some(dt) => types.push(dt),
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
    types
}

/// `manage = false`: everything about endpoints is meaningless on a link the agent
/// leaves alone.
fn left_alone(issues: &mut Issues, name: &str, raw: &RawLinkRule) {
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
}

/// What to do on a managed link: flags, carrier loss, families, gateways.
fn link_policy(
    issues: &mut Issues,
    name: &str,
    raw: &RawLinkRule,
    span: Range<usize>,
) -> LinkPolicy {
    let flags = match &raw.flags {
        None if raw.flags_unreadable => EndpointFlags::empty(),
        None => {
            issues.at(
                span.clone(),
                format!("{name}: flags is missing (e.g. flags = [\"subflow\"])"),
            );
            EndpointFlags::empty()
        }
        Some(list) => endpoint_flags(issues, name, list),
    };
    let on_carrier_loss = match &raw.on_carrier_loss {
        None => CarrierLoss::Withdraw,
        Some(v) => match v.get_ref().as_str() {
            "withdraw" => CarrierLoss::Withdraw,
            "backup" => CarrierLoss::Backup,
            other => {
                issues.at(
                    v.span(),
                    format!("{name}: on_carrier_loss = {other:?}; use \"withdraw\" or \"backup\""),
                );
                CarrierLoss::Withdraw
            }
        },
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
    LinkPolicy {
        flags,
        on_carrier_loss,
        ipv4,
        ipv6,
        gateway4: raw
            .gateway4
            .as_ref()
            .and_then(|g| gateway4(issues, name, g)),
        gateway6: raw
            .gateway6
            .as_ref()
            .and_then(|g| gateway6(issues, name, g)),
        allow_virtual: raw.allow_virtual.as_ref().is_some_and(|v| *v.get_ref()),
        metered_backup: raw.metered_backup.as_ref().map_or(true, |v| *v.get_ref()),
    }
}

/// `flags`: known names, each once, in a combination the kernel accepts and that does
/// something.
fn endpoint_flags(issues: &mut Issues, name: &str, list: &SpannedList) -> EndpointFlags {
    let mut flags = EndpointFlags::empty();
    for f in list.get_ref() {
        match EndpointFlags::from_name(f.get_ref()) {
            Some(fl) if fl == EndpointFlags::IMPLICIT => issues.at(
                f.span(),
                format!("{name}: \"implicit\" is set by the kernel only"),
            ),
            Some(fl) if flags.contains(fl) => issues.at(
                f.span(),
                format!("{name}: flag {:?} given twice", f.get_ref()),
            ),
            Some(fl) => flags = flags.union(fl),
            None => issues.at(
                f.span(),
                format!(
                    "{name}: unknown flag {:?} (known: subflow, signal, backup, fullmesh, laminar)",
                    f.get_ref()
                ),
            ),
        }
    }
    if !flags.contains(EndpointFlags::SUBFLOW)
        && !flags.contains(EndpointFlags::SIGNAL)
        && !flags.contains(EndpointFlags::LAMINAR)
    {
        issues.at(list.span(), format!("{name}: flags need \"subflow\", \"signal\" or \"laminar\", or the endpoint does nothing"));
    }
    if flags.contains(EndpointFlags::FULLMESH) && flags.contains(EndpointFlags::SIGNAL) {
        issues.at(
            list.span(),
            format!("{name}: the kernel refuses \"fullmesh\" together with \"signal\""),
        );
    }
    if flags.contains(EndpointFlags::FULLMESH) && !flags.contains(EndpointFlags::SUBFLOW) {
        issues.at(
            list.span(),
            format!("{name}: \"fullmesh\" needs \"subflow\""),
        );
    }
    flags
}

fn gateway4(issues: &mut Issues, name: &str, g: &Spanned<String>) -> Option<Ipv4Addr> {
    match g.get_ref().parse::<Ipv4Addr>() {
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
    }
}

fn gateway6(issues: &mut Issues, name: &str, g: &Spanned<String>) -> Option<Ipv6Addr> {
    match g.get_ref().parse::<Ipv6Addr>() {
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
    }
}
