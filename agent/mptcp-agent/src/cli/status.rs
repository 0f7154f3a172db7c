// SPDX-License-Identifier: MIT OR Apache-2.0
//! `status`: what the agent reports, its health, and the text form that fits 80 columns.

use std::process::ExitCode;

use serde::Serialize;

use super::{
    bus::{agent, timed, Failure},
    runtime, say,
    text::{or_dash, table, wrap, yes, WIDTH},
};
use crate::{
    service::{
        Agent1Proxy, BlackholeInfo, EndpointInfo, KernelCapsInfo, LimitsInfo, LinkInfo, RefusalInfo,
    },
    walltime::utc,
};

/// Version of the `status --json` layout (docs/cli.md). Raised when a key is removed or
/// changes meaning; new keys may appear without a change.
pub const STATUS_SCHEMA: u32 = 1;

/// Exit status of `status` when a configured link is refused or degraded.
pub const EXIT_UNHEALTHY: u8 = 5;

/// Everything `status` shows; also its `--json` form.
#[derive(Debug, Serialize)]
pub struct Status {
    pub schema: u32,
    pub version: String,
    pub ready: bool,
    pub mode: String,
    /// "healthy", or "unhealthy" (then `status` exits with 5): see [`Status::unhealthy`].
    pub health: String,
    pub config: ConfigStatus,
    pub kernel_capabilities: KernelCapsInfo,
    pub blackhole: BlackholeInfo,
    pub limits: LimitsInfo,
    pub links: Vec<LinkInfo>,
    /// Refused links: who manages MPTCP there and the one command that changes it.
    pub refusals: Vec<RefusalInfo>,
    pub endpoints: Vec<EndpointInfo>,
    pub diagnostics: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ConfigStatus {
    pub path: String,
    pub schema_version: u32,
    pub digest: String,
    pub source: String,
    pub file_missing: bool,
    pub last_known_good_in_use: bool,
    pub last_error: String,
    pub applied_at_usec: u64,
}

impl Status {
    /// Links a `[[link]]` rule manages that are not where the policy wants them: refused
    /// (someone else manages MPTCP there), down, kept as backup for lack of carrier, or
    /// whose endpoints differ from the policy. Links no rule manages never count.
    pub fn unhealthy(&self) -> Vec<&LinkInfo> {
        self.links
            .iter()
            .filter(|l| match l.state.as_str() {
                "refused" | "down" | "backup" => true,
                "active" => !l.policy_applied,
                _ => false,
            })
            .collect()
    }

    fn with_health(mut self) -> Status {
        self.health = if self.unhealthy().is_empty() {
            "healthy"
        } else {
            "unhealthy"
        }
        .into();
        self
    }
}

async fn read_status(p: &Agent1Proxy<'_>) -> zbus::Result<Status> {
    let s = Status {
        schema: STATUS_SCHEMA,
        version: p.version().await?,
        ready: p.ready().await?,
        mode: p.mode().await?,
        health: String::new(),
        config: ConfigStatus {
            path: p.config_path().await?,
            schema_version: p.config_schema_version().await?,
            digest: p.config_digest().await?,
            source: p.config_source().await?,
            file_missing: p.config_file_missing().await?,
            last_known_good_in_use: p.last_known_good_in_use().await?,
            last_error: p.config_last_error().await?,
            applied_at_usec: p.config_applied_at().await?,
        },
        kernel_capabilities: p.kernel_capabilities().await?,
        blackhole: p.blackhole().await?,
        limits: p.limits().await?,
        links: p.links().await?,
        refusals: p.refusals().await?,
        endpoints: p.endpoints().await?,
        diagnostics: p.diagnostics().await?,
    };
    Ok(s.with_health())
}

pub fn status(json: bool) -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r = rt.block_on(timed("status", async {
        let (_conn, proxy) = agent().await?;
        read_status(&proxy).await.map_err(Failure::from_call)
    }));
    let s = match r {
        Ok(s) => s,
        Err(f) => return f.exit(),
    };
    if json {
        match serde_json::to_string_pretty(&s) {
            Ok(text) => {
                say(&text);
            }
            Err(e) => return Failure::unreachable(format!("encoding JSON: {e}")).exit(),
        }
    } else {
        say(render_status(&s).trim_end());
    }
    if s.unhealthy().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNHEALTHY)
    }
}

/// Where the running config came from, in words.
fn config_source_words(c: &ConfigStatus) -> String {
    match (c.source.as_str(), c.file_missing) {
        ("file", _) => format!("{} (applied {})", c.path, utc(c.applied_at_usec)),
        ("last-good", true) => format!(
            "{} does not exist; the last good config runs (applied {})",
            c.path,
            utc(c.applied_at_usec)
        ),
        ("last-good", false) => format!(
            "{} was rejected (below); the last good config runs (applied {})",
            c.path,
            utc(c.applied_at_usec)
        ),
        ("built-in", true) => format!("{} does not exist; the built-in default runs", c.path),
        ("built-in", false) => format!(
            "{} was rejected (below) and there is no last good config; the built-in default runs",
            c.path
        ),
        (other, _) => format!("{} (source {other})", c.path),
    }
}

pub fn render_status(s: &Status) -> String {
    let mut out = String::new();
    let unhealthy = s.unhealthy();
    out.push_str(&format!(
        "mptcp-agent {}: {}, mode {}, {}\n",
        s.version,
        if s.ready { "ready" } else { "starting" },
        s.mode,
        if unhealthy.is_empty() {
            "all configured links healthy".to_string()
        } else {
            format!("{} link(s) refused or degraded", unhealthy.len())
        }
    ));
    let c = &s.config;
    out.push_str(&wrap(
        &format!(
            "{} [schema_version {}, {}]",
            config_source_words(c),
            c.schema_version,
            c.digest
        ),
        "config:  ",
        "         ",
        WIDTH,
    ));
    let k = &s.kernel_capabilities;
    out.push_str(&wrap(
        &format!(
            "{}; set_flags {}, events {}, fullmesh {}, laminar {}",
            or_dash(&k.generation),
            yes(k.set_flags),
            yes(k.events),
            yes(k.fullmesh),
            yes(k.laminar)
        ),
        "kernel:  ",
        "         ",
        WIDTH,
    ));
    out.push_str(&wrap(
        &blackhole_words(&s.blackhole),
        "mptcp:   ",
        "         ",
        WIDTH,
    ));
    out.push_str(&format!(
        "limits:  subflows {}, add_addr_accepted {}\n\n",
        s.limits.subflows, s.limits.add_addr_accepted
    ));
    // One row per link; what explains it (carrier, metered, why) on wrapped lines below,
    // so the table stays within 80 columns whatever the explanation's length.
    let rows: Vec<Vec<String>> = s
        .links
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                or_dash(&l.device_type).into(),
                l.state.clone(),
                or_dash(&l.rule).into(),
                or_dash(&l.policy).into(),
                or_dash(&l.nm_state).into(),
            ]
        })
        .collect();
    let header = table(&["LINK", "TYPE", "STATE", "RULE", "POLICY", "NM"], &rows);
    let mut lines = header.lines();
    if let Some(h) = lines.next() {
        out.push_str(h);
        out.push('\n');
    }
    for (l, row) in s.links.iter().zip(lines) {
        out.push_str(row);
        out.push('\n');
        let mut notes = Vec::new();
        if !l.carrier {
            notes.push("no carrier".to_string());
        }
        if l.metered {
            notes.push("metered".to_string());
        }
        if l.state == "active" && !l.policy_applied {
            notes.push("endpoints differ from the policy".to_string());
        }
        if !l.detail.is_empty() {
            notes.push(l.detail.clone());
        }
        if !notes.is_empty() {
            out.push_str(&wrap(&notes.join("; "), "    ", "    ", WIDTH));
        }
        if let Some(r) = s.refusals.iter().find(|r| r.interface == l.name) {
            // A command to paste: whole words, split only where the shell continues.
            out.push_str("    to change:\n");
            out.push_str(&crate::explain::command_lines(&r.advice, "      "));
        }
    }
    out.push('\n');
    if s.endpoints.is_empty() {
        out.push_str("no MPTCP endpoints\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .endpoints
            .iter()
            .map(|e| {
                vec![
                    e.id.to_string(),
                    e.address.clone(),
                    if e.port == 0 {
                        "-".into()
                    } else {
                        e.port.to_string()
                    },
                    e.flags.join(","),
                    or_dash(&e.interface).into(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["ID", "ADDRESS", "PORT", "FLAGS", "INTERFACE"],
            &rows,
        ));
    }
    // A refusal's advice is shown under its link already: not again here.
    let shown: Vec<&str> = s
        .links
        .iter()
        .filter(|l| l.state == "refused" && !l.detail.is_empty())
        .map(|l| l.detail.as_str())
        .collect();
    let warnings: Vec<&String> = s
        .diagnostics
        .iter()
        .filter(|d| !shown.iter().any(|x| d.contains(x)))
        .collect();
    if !warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for d in warnings {
            out.push_str(&wrap(d, "  ", "    ", WIDTH));
        }
    }
    if !c.last_error.is_empty() {
        out.push_str("\nlast config error:\n");
        for l in c.last_error.lines() {
            out.push_str(&wrap(l, "  ", "    ", WIDTH));
        }
    }
    out
}

/// The kernel's blackhole detection, in words: what it offers, and whether it holds MPTCP
/// off now.
fn blackhole_words(b: &BlackholeInfo) -> String {
    let timeout = if b.timeout_s < 0 {
        "no net.mptcp.blackhole_timeout".to_string()
    } else {
        format!("net.mptcp.blackhole_timeout = {} s", b.timeout_s)
    };
    if !b.available {
        return if b.detail.is_empty() {
            "blackhole detection not read yet".to_string()
        } else {
            format!("blackhole detection: none: {}", b.detail)
        };
    }
    let last = if b.last_detected_at == 0 {
        String::new()
    } else {
        format!(", last {}", utc(b.last_detected_at))
    };
    match (b.active, b.detections) {
        (true, n) => format!(
            "BLACKHOLE DETECTED {n} time(s) since the agent started{last}: new outgoing MPTCP \
             connections are plain TCP for {timeout} or longer (MPTcpExtBlackhole {})",
            b.count
        ),
        (false, 0) => format!(
            "blackhole detection on, none since the agent started (MPTcpExtBlackhole {}; {timeout})",
            b.count
        ),
        (false, n) => format!(
            "blackhole detected {n} time(s) since the agent started{last}, period over \
             (MPTcpExtBlackhole {}; {timeout})",
            b.count
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            schema: STATUS_SCHEMA,
            version: "0.1.0".into(),
            ready: true,
            mode: "networkmanager".into(),
            health: String::new(),
            config: ConfigStatus {
                path: "/etc/mptcp-agent/agent.toml".into(),
                schema_version: 1,
                digest: "fnv1a64:0011223344556677".into(),
                source: "last-good".into(),
                file_missing: false,
                last_known_good_in_use: true,
                last_error: "agent.toml:3:12: limits.subflows = 99 is out of range (0..=8)".into(),
                applied_at_usec: 0,
            },
            kernel_capabilities: KernelCapsInfo {
                generation: "5.19+ (set_flags, events, userspace PM)".into(),
                set_flags: true,
                events: true,
                fullmesh: true,
                sysctls: vec!["enabled".into()],
                laminar: true,
                laminar_probe: "endpoint round trip".into(),
            },
            blackhole: BlackholeInfo {
                available: true,
                count: 1,
                detections: 1,
                last_detected_at: 1_765_000_000_000_000,
                timeout_s: 3600,
                active: true,
                ..BlackholeInfo::default()
            },
            limits: LimitsInfo {
                subflows: 4,
                add_addr_accepted: 0,
            },
            links: vec![LinkInfo {
                name: "wlan0".into(),
                ifindex: 2,
                state: "active".into(),
                carrier: true,
                device_type: "wifi".into(),
                metered: false,
                rule: "wifi".into(),
                policy: "subflow".into(),
                policy_applied: true,
                nm_state: "ACTIVATED".into(),
                detail: "IPv4: 10.1.0.2".into(),
            }],
            refusals: vec![],
            endpoints: vec![EndpointInfo {
                id: 1,
                address: "10.1.0.2".into(),
                port: 0,
                flags: vec!["subflow".into()],
                interface: "wlan0".into(),
                ifindex: 2,
            }],
            diagnostics: vec!["mptcpd (pid 7) runs".into()],
        }
    }

    /// A refusal as the agent reports it.
    fn refusal() -> mptcp_agent_core::Refusal {
        mptcp_agent_core::Refusal::NetworkManager {
            version: Some("1.42.4".into()),
            interface: "eth1".into(),
            profile: Some("uplink2".into()),
            flags: 0x22,
            source: mptcp_agent_core::NmFlagsSource::BuiltIn { ignored: None },
        }
    }

    fn refused_link() -> LinkInfo {
        LinkInfo {
            name: "eth1".into(),
            ifindex: 3,
            state: "refused".into(),
            carrier: true,
            device_type: "ethernet".into(),
            metered: true,
            rule: "wired".into(),
            policy: "subflow".into(),
            policy_applied: true,
            nm_state: "ACTIVATED".into(),
            detail: refusal().to_string(),
        }
    }

    #[test]
    fn status_table_shows_everything() {
        let mut s = sample().with_health();
        assert_eq!(s.health, "healthy");
        let text = render_status(&s);
        assert!(
            text.starts_with(
                "mptcp-agent 0.1.0: ready, mode networkmanager, all configured links healthy\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "config:  /etc/mptcp-agent/agent.toml was rejected (below); the last good config\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("limits:  subflows 4, add_addr_accepted 0"),
            "{text}"
        );
        let header = text.lines().find(|l| l.starts_with("LINK")).unwrap();
        let row = text.lines().find(|l| l.starts_with("wlan0")).unwrap();
        // Columns line up.
        assert_eq!(header.find("STATE"), row.find("active"), "{text}");
        assert_eq!(header.find("NM"), row.find("ACTIVATED"), "{text}");
        assert!(text.contains("\n    IPv4: 10.1.0.2\n"), "{text}");
        assert!(
            text.contains("1   10.1.0.2  -     subflow  wlan0"),
            "{text}"
        );
        assert!(text.contains("warnings:\n  mptcpd (pid 7) runs"), "{text}");
        assert!(
            text.contains("last config error:\n  agent.toml:3:12:"),
            "{text}"
        );
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{l:?} is wider than {WIDTH}");
        }

        // A refused link: the advice once, under the link, wrapped; exit status 5.
        s.links.push(refused_link());
        s.refusals.push(RefusalInfo {
            interface: "eth1".into(),
            kind: refusal().kind().into(),
            advice: refusal().advice(),
        });
        s.diagnostics.push(
            mptcp_agent_core::Diagnostic::Refused {
                interface: "eth1".into(),
                reason: refusal(),
            }
            .to_string(),
        );
        let s = s.with_health();
        assert_eq!(s.health, "unhealthy");
        assert_eq!(s.unhealthy().len(), 1);
        let text = render_status(&s);
        assert!(text.contains(", 1 link(s) refused or degraded\n"), "{text}");
        assert_eq!(text.matches("mptcp-flags disabled").count(), 1, "{text}");
        assert!(
            text.contains("\n    metered; NetworkManager 1.42.4 manages"),
            "{text}"
        );
        // The advice on lines of its own, split where a pasted line continues.
        assert!(
            text.contains(
                "    to change:\n      nmcli connection modify uplink2 connection.mptcp-flags disabled &&\n      nmcli device reapply eth1\n"
            ),
            "{text}"
        );
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{l:?} is wider than {WIDTH}");
        }
        // The other warning stays.
        assert!(text.contains("mptcpd (pid 7) runs"), "{text}");
    }

    #[test]
    fn health_counts_configured_links_only() {
        let mut s = sample();
        let mut l = s.links[0].clone();
        for (state, applied, bad) in [
            ("active", true, false),
            ("active", false, true),
            ("backup", true, true),
            ("down", true, true),
            ("refused", true, true),
            ("ignored", true, false),
            ("unmatched", true, false),
        ] {
            l.state = state.into();
            l.policy_applied = applied;
            s.links = vec![l.clone()];
            assert_eq!(s.unhealthy().len(), usize::from(bad), "{state} {applied}");
        }
    }

    #[test]
    fn config_source_in_words() {
        let mut c = sample().config;
        c.source = "built-in".into();
        c.file_missing = true;
        let w = config_source_words(&c);
        assert_eq!(
            w,
            "/etc/mptcp-agent/agent.toml does not exist; the built-in default runs"
        );
        assert!(!w.contains("LAST KNOWN GOOD"));
        c.file_missing = false;
        assert!(config_source_words(&c)
            .contains("was rejected (below) and there is no last good config"));
        c.source = "last-good".into();
        c.file_missing = true;
        assert!(config_source_words(&c).contains("does not exist; the last good config runs"));
        c.source = "file".into();
        assert!(config_source_words(&c).starts_with("/etc/mptcp-agent/agent.toml (applied 1970-"));
    }
}
