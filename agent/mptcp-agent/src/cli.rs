// SPDX-License-Identifier: MIT OR Apache-2.0
//! The client verbs of `mptcp-agent`: `status`, `reload`, `resync`, `monitor` talk to the
//! running agent over the system bus (`$DBUS_SYSTEM_BUS_ADDRESS` or the default socket);
//! `check-config` and `--version` work without it. Documented in docs/cli.md.
//!
//! Exit status of `status`, `reload`, `resync` and `monitor`: 0 done; 1 the agent refused
//! (config rejected, apply rolled back, resync failed); 3 the agent is not reachable (no
//! system bus, or it is not running); 4 access denied (`reload` and `resync` need root or
//! group mptcp-admin); 5 (`status` only) shown, and a configured link is refused or degraded.
//! `check-config`: 0 valid; 1 invalid (positions on stderr); 2 usage error; 3 unreadable
//! (missing, not a regular file, too large, not UTF-8); 4 unsafe ownership or permissions.

use std::{
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use serde::Serialize;
use zbus::{fdo::DBusProxy, Connection};

use crate::{
    ota,
    service::{
        self, Agent1Proxy, AgentError, BlackholeInfo, EndpointInfo, KernelCapsInfo, LimitsInfo,
        LinkInfo, RefusalInfo,
    },
};

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_DENIED: u8 = 4;
/// Bound on every call to the agent.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Print a line; false when stdout is gone (`mptcp-agent monitor | head`), which ends
/// the output quietly instead of panicking.
pub(crate) fn say(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .is_ok()
}

pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("mptcp-agent: starting the tokio runtime: {e}");
            None
        }
    }
}

/// A failed exchange with the agent, with the exit status it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }

    /// D-Bus errors: access denied (by the bus policy or by the agent) → 4; the agent's
    /// own errors → 1; anything else (no bus, agent gone) → 3.
    fn from_call(e: zbus::Error) -> Failure {
        match &e {
            zbus::Error::MethodError(name, msg, _) => {
                let name = name.as_str();
                let message = match msg {
                    Some(m) => format!("{m} ({name})"),
                    None => name.to_string(),
                };
                let code = if name.ends_with(".AccessDenied") {
                    EXIT_DENIED
                } else if name.starts_with(service::INTERFACE) {
                    EXIT_REFUSED
                } else {
                    EXIT_UNREACHABLE
                };
                Failure { code, message }
            }
            zbus::Error::FDO(fdo) => {
                let code = if matches!(**fdo, zbus::fdo::Error::AccessDenied(_)) {
                    EXIT_DENIED
                } else {
                    EXIT_UNREACHABLE
                };
                Failure {
                    code,
                    message: fdo.to_string(),
                }
            }
            _ => Failure::unreachable(e.to_string()),
        }
    }

    fn from_fdo(e: zbus::fdo::Error) -> Failure {
        Failure::from_call(zbus::Error::FDO(Box::new(e)))
    }

    pub(crate) fn from_agent(e: AgentError) -> Failure {
        let (code, message) = match e {
            AgentError::ZBus(e) => return Failure::from_call(e),
            AgentError::AccessDenied(m) => (EXIT_DENIED, format!("access denied: {m}")),
            AgentError::ConfigRejected(m) => (EXIT_REFUSED, format!("config rejected: {m}")),
            AgentError::ApplyFailed(m) => (EXIT_REFUSED, format!("config not applied: {m}")),
            AgentError::ResyncFailed(m) => (EXIT_REFUSED, format!("resync failed: {m}")),
            AgentError::Unavailable(m) => (EXIT_UNREACHABLE, m),
        };
        Failure { code, message }
    }

    pub(crate) fn exit(self) -> ExitCode {
        eprintln!("mptcp-agent: {}", self.message);
        ExitCode::from(self.code)
    }
}

pub(crate) async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(Failure::unreachable(format!(
            "{what}: no answer within {}s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

/// The system bus socket zbus tries: `$DBUS_SYSTEM_BUS_ADDRESS`, else the default.
pub fn system_bus_address() -> (String, bool) {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(a) if !a.is_empty() => (a, true),
        _ => (
            "unix:path=/var/run/dbus/system_bus_socket".to_string(),
            false,
        ),
    }
}

/// "cannot reach the system bus at ADDRESS (error)" and what to check.
pub fn bus_failure_message(e: &zbus::Error) -> String {
    let (address, from_env) = system_bus_address();
    let hint = if from_env {
        "(from DBUS_SYSTEM_BUS_ADDRESS); is that bus running?"
    } else {
        "(the default); is dbus running? Set DBUS_SYSTEM_BUS_ADDRESS=unix:path=SOCKET for another bus"
    };
    format!("cannot reach the system bus at {address} {hint} ({e})")
}

/// Connect to the system bus and make sure the agent is there.
pub(crate) async fn agent() -> Result<(Connection, Agent1Proxy<'static>), Failure> {
    let conn = Connection::system()
        .await
        .map_err(|e| Failure::unreachable(bus_failure_message(&e)))?;
    let dbus = DBusProxy::new(&conn).await.map_err(Failure::from_call)?;
    let name = zbus::names::BusName::try_from(service::BUS_NAME)
        .map_err(|e| Failure::unreachable(e.to_string()))?;
    if !dbus.name_has_owner(name).await.map_err(Failure::from_fdo)? {
        return Err(Failure::unreachable(format!(
            "the agent is not running (nobody owns {} on the system bus)",
            service::BUS_NAME
        )));
    }
    let proxy = Agent1Proxy::new(&conn).await.map_err(Failure::from_call)?;
    Ok((conn, proxy))
}

// ---------------------------------------------------------------------------------------
// status

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

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// The width `status` fits in.
pub const WIDTH: usize = 80;

/// Words filled into lines of at most `width` characters, each starting with `indent`
/// (the first with `first`); a word longer than a line stands alone.
pub fn wrap(text: &str, first: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
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

/// ISO 8601 UTC from microseconds since the epoch (no time-zone database on purpose).
pub fn utc(usec: u64) -> String {
    let secs = usec / 1_000_000;
    let millis = (usec / 1000) % 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// reload

pub fn reload() -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r = rt.block_on(timed("reload", async {
        let (_conn, proxy) = agent().await?;
        proxy.reload().await.map_err(Failure::from_agent)
    }));
    match r {
        Ok(digest) => {
            say(&format!("config applied ({digest})"));
            ExitCode::SUCCESS
        }
        Err(f) => f.exit(),
    }
}

pub fn resync() -> ExitCode {
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r = rt.block_on(timed("resync", async {
        let (_conn, proxy) = agent().await?;
        proxy.resync().await.map_err(Failure::from_agent)
    }));
    match r {
        Ok(summary) => {
            say(&format!("resynced: {summary}"));
            ExitCode::SUCCESS
        }
        Err(f) => f.exit(),
    }
}

// ---------------------------------------------------------------------------------------
// monitor

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum MonitorEvent {
    EndpointChanged {
        change: String,
        endpoint: EndpointInfo,
    },
    SubflowEvent {
        kind: String,
        token: u32,
        local_address: String,
        local_port: u16,
        remote_address: String,
        remote_port: u16,
        ifindex: u32,
        error: u32,
        backup: bool,
    },
    ConfigRejected {
        path: String,
        stage: String,
        reason: String,
    },
    ConfigApplied {
        path: String,
        digest: String,
        source: String,
    },
    LinkChanged {
        link: LinkInfo,
    },
    BlackholeDetected {
        count: u64,
        detections: u64,
        timeout_s: i64,
    },
    AgentStarted,
    AgentStopped,
}

impl std::fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorEvent::EndpointChanged {
                change,
                endpoint: e,
            } => {
                write!(f, "endpoint {change}: id {} {}", e.id, e.address)?;
                if e.port != 0 {
                    write!(f, " port {}", e.port)?;
                }
                write!(f, " {}", e.flags.join(" "))?;
                if !e.interface.is_empty() {
                    write!(f, " dev {}", e.interface)?;
                }
                Ok(())
            }
            MonitorEvent::SubflowEvent {
                kind,
                token,
                local_address,
                local_port,
                remote_address,
                remote_port,
                ifindex,
                error,
                backup,
            } => {
                write!(
                    f,
                    "subflow {kind}: token {token:08x} {local_address}:{local_port} -> {remote_address}:{remote_port} ifindex {ifindex}"
                )?;
                if *error != 0 {
                    write!(f, " error {error}")?;
                }
                if *backup {
                    f.write_str(" backup")?;
                }
                Ok(())
            }
            MonitorEvent::ConfigRejected {
                path,
                stage,
                reason,
            } => {
                // The reason names the file itself when it has a position.
                let reason = reason.replace('\n', " | ");
                if reason.starts_with(path.as_str()) {
                    write!(f, "config rejected ({stage}): {reason}")
                } else {
                    write!(f, "config rejected ({stage}): {path}: {reason}")
                }
            }
            MonitorEvent::ConfigApplied {
                path,
                digest,
                source,
            } => {
                write!(f, "config applied: {path} ({digest}, source {source})")
            }
            MonitorEvent::LinkChanged { link: l } => write!(
                f,
                "link {}: {} (carrier {}, rule {}, applied {}){}",
                l.name,
                l.state,
                yes(l.carrier),
                or_dash(&l.rule),
                yes(l.policy_applied),
                if l.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", l.detail)
                }
            ),
            MonitorEvent::BlackholeDetected {
                count,
                detections,
                timeout_s,
            } => write!(
                f,
                "MPTCP blackhole detected (MPTcpExtBlackhole {count}, {detections} since the agent started): new \
                 outgoing MPTCP connections are plain TCP for net.mptcp.blackhole_timeout = {timeout_s} s or longer"
            ),
            MonitorEvent::AgentStarted => f.write_str("agent started"),
            MonitorEvent::AgentStopped => f.write_str("agent stopped"),
        }
    }
}

/// Print one event; false when stdout is gone.
fn emit(json: bool, ev: &MonitorEvent) -> bool {
    let now = now_usec();
    if json {
        let mut v = serde_json::to_value(ev).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("time".into(), serde_json::Value::String(utc(now)));
        }
        say(&v.to_string())
    } else {
        say(&format!("{} {ev}", utc(now)))
    }
}

/// Print the agent's events until SIGINT/SIGTERM. Keeps listening across agent restarts.
pub fn monitor(json: bool) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let r: Result<(), Failure> = rt.block_on(async {
        let conn = Connection::system()
            .await
            .map_err(|e| Failure::unreachable(bus_failure_message(&e)))?;
        let proxy = Agent1Proxy::builder(&conn)
            .cache_properties(zbus::CacheProperties::No)
            .build()
            .await
            .map_err(Failure::from_call)?;
        let dbus = DBusProxy::new(&conn).await.map_err(Failure::from_call)?;
        let mut owners = dbus
            .receive_name_owner_changed_with_args(&[(0, service::BUS_NAME)])
            .await
            .map_err(Failure::from_call)?;
        let mut eps = proxy.receive_endpoint_changed().await.map_err(Failure::from_call)?;
        let mut subflows = proxy.receive_subflow_event().await.map_err(Failure::from_call)?;
        let mut rejected = proxy.receive_config_rejected().await.map_err(Failure::from_call)?;
        let mut applied = proxy.receive_config_applied().await.map_err(Failure::from_call)?;
        let mut blackholes = proxy.receive_blackhole_detected().await.map_err(Failure::from_call)?;
        let mut props = zbus::fdo::PropertiesProxy::builder(&conn)
            .destination(service::BUS_NAME)
            .and_then(|b| b.path(service::OBJECT_PATH))
            .map_err(Failure::from_call)?
            .build()
            .await
            .map_err(Failure::from_call)?
            .receive_properties_changed()
            .await
            .map_err(Failure::from_call)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(|e| Failure::unreachable(e.to_string()))?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(|e| Failure::unreachable(e.to_string()))?;
        // Link states as last seen, to print only changes.
        let mut links: BTreeMap<String, LinkInfo> = match proxy.links().await {
            Ok(l) => l.into_iter().map(|l| (l.name.clone(), l)).collect(),
            Err(_) => {
                eprintln!("mptcp-agent: the agent is not running now; waiting for it");
                BTreeMap::new()
            }
        };
        let mut open = true;
        while open {
            tokio::select! {
                Some(s) = eps.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::EndpointChanged { change: a.change.to_string(), endpoint: a.endpoint.clone() });
                },
                Some(s) = subflows.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::SubflowEvent {
                        kind: a.kind.to_string(),
                        token: a.token,
                        local_address: a.local_address.to_string(),
                        local_port: a.local_port,
                        remote_address: a.remote_address.to_string(),
                        remote_port: a.remote_port,
                        ifindex: a.ifindex,
                        error: a.error,
                        backup: a.backup,
                    });
                },
                Some(s) = rejected.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::ConfigRejected { path: a.path.to_string(), stage: a.stage.to_string(), reason: a.reason.to_string() });
                },
                Some(s) = applied.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::ConfigApplied { path: a.path.to_string(), digest: a.digest.to_string(), source: a.source.to_string() });
                },
                Some(s) = blackholes.next() => if let Ok(a) = s.args() {
                    open &= emit(json, &MonitorEvent::BlackholeDetected { count: a.count, detections: a.detections, timeout_s: a.timeout_s });
                },
                Some(s) = props.next() => if let Ok(a) = s.args() {
                    if let Some(v) = a.changed_properties().get("Links") {
                        let new: Vec<LinkInfo> = v.try_to_owned().ok().and_then(|o| Vec::<LinkInfo>::try_from(o).ok()).unwrap_or_default();
                        for l in new {
                            if links.get(&l.name) != Some(&l) {
                                open &= emit(json, &MonitorEvent::LinkChanged { link: l.clone() });
                                links.insert(l.name.clone(), l);
                            }
                        }
                    }
                },
                Some(s) = owners.next() => if let Ok(a) = s.args() {
                    open &= emit(json, if a.new_owner().is_some() { &MonitorEvent::AgentStarted } else { &MonitorEvent::AgentStopped });
                },
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
            }
        }
        Ok(())
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit(),
    }
}

// ---------------------------------------------------------------------------------------
// check-config and --version

/// `check-config FILE|-` and, with `diff`, what applying it would change now.
pub fn check_config(file: &Path, diff: bool) -> ExitCode {
    let stdin = file.as_os_str() == "-";
    let shown = if stdin {
        crate::config_file::STDIN_NAME.to_string()
    } else {
        file.display().to_string()
    };
    let loaded = if stdin {
        crate::config_file::read_stdin()
            .and_then(|text| crate::config_file::load_text(text, &shown))
            .map(|(config, text)| ota::Loaded {
                config,
                digest: ota::digest(&text),
                text,
            })
    } else {
        ota::load(file)
    };
    let l = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    };
    say(&format!(
        "{shown}: valid (schema_version {}, {} link rule(s), {})",
        mptcp_agent_core::config::SCHEMA_VERSION,
        l.config.links.len(),
        l.digest
    ));
    if !diff {
        return ExitCode::SUCCESS;
    }
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(crate::preview::preview(&l.config)) {
        Ok(p) => {
            say(render_preview(&shown, &p).trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mptcp-agent: cannot read this device's state for --diff: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}

pub fn render_preview(shown: &str, p: &crate::preview::Preview) -> String {
    let mut out = String::new();
    out.push_str(&wrap(
        &format!(
            "{} (dry run: nothing was changed)",
            if p.steps.is_empty() {
                format!(
                    "Applying {shown} now ({} mode) would change nothing",
                    p.mode
                )
            } else {
                format!(
                    "Applying {shown} now ({} mode) would make {} change(s)",
                    p.mode,
                    p.steps.len()
                )
            }
        ),
        "",
        "",
        WIDTH,
    ));
    for s in &p.steps {
        out.push_str(&wrap(&s.op.to_string(), "  ", "    ", WIDTH));
        out.push_str(&wrap(
            &format!("because {}", s.why),
            "      ",
            "      ",
            WIDTH,
        ));
    }
    if !p.missing.is_empty() {
        out.push_str(&wrap(
            &format!("incomplete: no answer yet from {}", p.missing.join(", ")),
            "note: ",
            "      ",
            WIDTH,
        ));
    }
    if !p.diagnostics.is_empty() {
        out.push_str("with this config the agent would also report:\n");
        for d in &p.diagnostics {
            out.push_str(&wrap(&d.to_string(), "  ", "    ", WIDTH));
        }
    }
    out
}

/// The version, and what this network namespace's kernel MPTCP offers (probed over
/// generic netlink like the daemon does).
pub fn version() -> ExitCode {
    say(&format!("mptcp-agent {}", env!("CARGO_PKG_VERSION")));
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(mptcp_genl::PmHandle::connect()) {
        Ok(pm) => {
            let c = pm.capabilities();
            let core = crate::pm::caps_of(c);
            say(&format!("kernel MPTCP: {}", c.generation()));
            let cmds: Vec<&str> = c.commands().iter().map(|c| c.name()).collect();
            say(&format!("  path-manager commands: {}", cmds.join(" ")));
            say(&format!(
                "  set_flags {}, events {}, fullmesh {}",
                yes(core.set_flags),
                yes(core.events),
                yes(core.fullmesh)
            ));
            let sysctls: Vec<&str> = c.sysctls.iter().map(String::as_str).collect();
            say(&format!(
                "  net.mptcp sysctls: {}",
                if sysctls.is_empty() {
                    "-".to_string()
                } else {
                    sysctls.join(" ")
                }
            ));
            let laminar = rt.block_on(crate::pm::probe_laminar());
            say(&format!("  laminar {} ({laminar})", yes(laminar.known())));
            let blackhole = std::fs::read_to_string("/proc/net/netstat")
                .map_err(|e| format!("cannot read /proc/net/netstat: {e}"))
                .and_then(|t| mptcp_agent_core::blackhole::counter_of(&t));
            say(&match blackhole {
                Ok(n) => format!("  blackhole detection: yes (MPTcpExtBlackhole {n})"),
                Err(why) => format!("  blackhole detection: no: {why}"),
            });
        }
        Err(e) => {
            say(&format!("kernel MPTCP: not available here ({e})"));
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_764_046_801_123_456), "2025-11-25T05:00:01.123Z");
    }

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

    #[test]
    fn wrap_fits_the_width() {
        let text = "a ".repeat(100) + &"x".repeat(90);
        let w = wrap(&text, "  ", "    ", 20);
        for l in w.lines() {
            assert!(l.chars().count() <= 20 || !l.trim().contains(' '), "{l:?}");
        }
        assert!(w.starts_with("  a a"));
        assert!(w.lines().nth(1).unwrap().starts_with("    a"));
        assert_eq!(wrap("short", "> ", "  ", 80), "> short\n");
    }

    #[test]
    fn monitor_lines() {
        let ev = MonitorEvent::SubflowEvent {
            kind: "sf_closed".into(),
            token: 0xabc,
            local_address: "10.2.0.2".into(),
            local_port: 40000,
            remote_address: "10.9.0.2".into(),
            remote_port: 5000,
            ifindex: 3,
            error: 104,
            backup: false,
        };
        assert_eq!(
            ev.to_string(),
            "subflow sf_closed: token 00000abc 10.2.0.2:40000 -> 10.9.0.2:5000 ifindex 3 error 104"
        );
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "subflow_event");
        let ev = MonitorEvent::ConfigRejected {
            path: "/x".into(),
            stage: "check".into(),
            reason: "a\nb".into(),
        };
        assert_eq!(ev.to_string(), "config rejected (check): /x: a | b");
        let ev = MonitorEvent::ConfigRejected {
            path: "/x".into(),
            stage: "check".into(),
            reason: "/x:3:1: bad".into(),
        };
        assert_eq!(ev.to_string(), "config rejected (check): /x:3:1: bad");
    }

    #[test]
    fn call_errors_map_to_exit_codes() {
        use zbus::{message::Message, names::OwnedErrorName};
        let msg = Message::method("/x", "Y").unwrap().build(&()).unwrap();
        let err = |name: &str| {
            zbus::Error::MethodError(
                OwnedErrorName::try_from(name.to_string()).unwrap(),
                Some("m".into()),
                msg.clone(),
            )
        };
        assert_eq!(
            Failure::from_call(err("org.freedesktop.DBus.Error.AccessDenied")).code,
            EXIT_DENIED
        );
        assert_eq!(
            Failure::from_call(err("io.github.meta_mptcp.Agent1.Error.AccessDenied")).code,
            EXIT_DENIED
        );
        assert_eq!(
            Failure::from_call(err("io.github.meta_mptcp.Agent1.Error.ConfigRejected")).code,
            EXIT_REFUSED
        );
        assert_eq!(
            Failure::from_call(err("org.freedesktop.DBus.Error.ServiceUnknown")).code,
            EXIT_UNREACHABLE
        );
    }
}
