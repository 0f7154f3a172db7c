// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config lifecycle for OTA updates.
//!
//! - **Triggers**: the config file replaced (atomic rename) or rewritten in place (an
//!   inotify watch on its directory, debounced), SIGHUP, and the D-Bus `Reload` method.
//! - **Check first**: ownership, permissions and size on the opened file, then the core's
//!   parser and validator (positions as line and column). A rejected file changes nothing.
//! - **One transaction**: the new config is planned and executed like a reconciliation,
//!   with the inverse of every operation recorded; when an operation fails, the inverses
//!   run in reverse order and the previous config stays in force.
//! - **Last good**: every applied config is saved to `STATE_DIR/last-good.toml`. At start,
//!   an unusable config file means the last good one runs, or the built-in default (the
//!   shipped conf/agent.toml) when there is none; the reason is logged and shown on D-Bus.
//! - **sd_notify**: READY=1 after the first reconciliation, RELOADING=1 … READY=1 around
//!   each reload.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::OsString,
    io::{self, Write},
    os::{
        fd::{AsFd, AsRawFd, RawFd},
        unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mptcp_agent_core::{
    config::SCHEMA_VERSION, plan, Config, Diagnostic, Event, KernelEndpoint, Millis, Observed, Op,
    OpError,
};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, Signal, SignalKind},
    sync::oneshot,
};

use crate::{
    config_file::{self, LoadError},
    executor::Executor,
    nm,
    notify::Notifier,
    pm, rtnl,
    service::{
        self, AgentError, ConfigInfo, ConfigSource, Notice, Request, ServiceHandle, Snapshot,
    },
};

/// Where the last good config is kept (systemd's StateDirectory=).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/mptcp-agent";
pub const LAST_GOOD_FILE: &str = "last-good.toml";
/// Runs when neither the config file nor a last good config can be used.
pub const BUILT_IN: &str = include_str!("../../../conf/agent.toml");
/// Quiet time after the last change of the file before it is read: an in-place write
/// arrives as several events.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A file that keeps changing is read at the latest this long after its first change.
const DEBOUNCE_MAX: Duration = Duration::from_secs(1);
/// How often to try watching the config directory again when it is missing.
const REWATCH: Duration = Duration::from_secs(2);
/// Plan rounds in one transaction (policy routes, then the endpoints that need them).
const MAX_ROUNDS: usize = 4;
/// Bound on connecting to the system bus at start.
const BUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The state directory: `$STATE_DIRECTORY` (set by systemd's StateDirectory=) or the default.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .filter(|s| !s.is_empty())
        // systemd passes a colon-separated list when several are configured.
        .and_then(|s| {
            s.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

// ---------------------------------------------------------------------------------------
// Reading

/// A checked config with its text.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub text: String,
    pub digest: String,
}

/// FNV-1a (64 bit) of the text: identifies a config in logs and on D-Bus. Not a security
/// measure; the file's ownership and permissions are.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Check and read a config file (the same checks as `check-config`).
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let (config, text) = config_file::load_file(path)?;
    Ok(Loaded {
        config,
        digest: digest(&text),
        text,
    })
}

fn parse_text(origin: &str, text: String) -> Result<Loaded, LoadError> {
    match mptcp_agent_core::config::load(&text) {
        Ok(config) => Ok(Loaded {
            config,
            digest: digest(&text),
            text,
        }),
        Err(error) => Err(LoadError::Invalid {
            path: origin.to_string(),
            error,
        }),
    }
}

/// The built-in default, checked by a unit test.
pub fn built_in() -> Loaded {
    match parse_text("built-in", BUILT_IN.to_string()) {
        Ok(l) => l,
        // The shipped file is tested to be valid; should it ever not be, manage nothing.
        Err(_) => Loaded {
            config: Config::default(),
            text: String::new(),
            digest: digest(""),
        },
    }
}

/// Save the text as the last good config: temporary file, fsync, rename, fsync of the
/// directory, so a power cut leaves either the old or the new file.
pub fn save_last_good(dir: &Path, text: &str) -> io::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = dir.join(format!(".{LAST_GOOD_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, dir.join(LAST_GOOD_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------------------
// The transaction

/// What a transaction needs from the kernel; the executor in the daemon, a fake in tests.
#[allow(async_fn_in_trait)]
pub trait Kernel {
    async fn apply(&self, op: &Op) -> Result<(), OpError>;
    /// A fresh endpoint dump, `None` if it failed.
    async fn endpoints(&self) -> Option<Vec<KernelEndpoint>>;
    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String>;
}

impl Kernel for Executor {
    async fn apply(&self, op: &Op) -> Result<(), OpError> {
        Executor::apply(self, op).await
    }

    async fn endpoints(&self) -> Option<Vec<KernelEndpoint>> {
        match pm::endpoints(&self.pm).await {
            Ok(e) => Some(e),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        }
    }

    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String> {
        pm::read_sysctls(&self.sysctl_dir, names)
    }
}

/// A committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Kernel operations carried out.
    pub ops: usize,
    /// The agent had not read the kernel yet: the config takes effect at the first
    /// reconciliation.
    pub deferred: bool,
}

/// A rolled-back transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub op: String,
    pub error: String,
    /// Operations undone.
    pub undone: usize,
    /// Inverse operations that failed too (the kernel may differ from before).
    pub undo_errors: Vec<String>,
}

impl std::fmt::Display for RolledBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` failed: {}; {} earlier change(s) undone",
            self.op, self.error, self.undone
        )?;
        if !self.undo_errors.is_empty() {
            write!(f, "; undoing failed too: {}", self.undo_errors.join("; "))?;
        }
        Ok(())
    }
}

/// The operation that restores what `op` changes, from the state before it.
pub fn inverse(op: &Op, obs: &Observed) -> Option<Op> {
    Some(match op {
        Op::SetSysctl { name, .. } => Op::SetSysctl {
            name: name.clone(),
            value: obs.sysctls.get(name)?.clone(),
        },
        Op::SetLimits(_) => Op::SetLimits(obs.limits?),
        Op::DelEndpoint(e) => {
            let mut e = e.clone();
            e.flags = e.flags.without(mptcp_agent_core::EndpointFlags::IMPLICIT);
            Op::AddEndpoint(e)
        }
        Op::SetEndpointFlags { endpoint, flags } => Op::SetEndpointFlags {
            endpoint: KernelEndpoint {
                flags: *flags,
                ..endpoint.clone()
            },
            flags: endpoint.flags,
        },
        Op::AddEndpoint(e) => Op::DelEndpoint(e.clone()),
        Op::ReaddEndpoint(e) => match obs.endpoints.as_ref().and_then(|m| m.get(&e.id)) {
            Some(old) => Op::ReaddEndpoint(old.clone()),
            None => Op::DelEndpoint(e.clone()),
        },
        // Only entries the kernel would have had to probe again anyway.
        Op::ResetNeighbours { .. } => return None,
        Op::AddRoute(r) => Op::DelRoute(r.clone()),
        Op::DelRoute(r) => Op::AddRoute(r.clone()),
        Op::AddRule(r) => Op::DelRule(r.clone()),
        Op::DelRule(r) => Op::AddRule(r.clone()),
    })
}

/// Make `new` the config in force as one transaction: plan and execute until nothing is
/// left to do; if an operation fails, undo every earlier one (in reverse order) and keep
/// `cfg`. An operation that the old config wanted too (it was failing before) does not
/// count against the new config.
pub async fn apply_transaction<K: Kernel>(
    new: Config,
    cfg: &mut Config,
    obs: &mut Observed,
    kernel: &K,
    clock: &dyn Fn() -> Millis,
) -> Result<Committed, RolledBack> {
    if !obs.ready() {
        *cfg = new;
        return Ok(Committed {
            ops: 0,
            deferred: true,
        });
    }
    if let Some(caps) = &obs.caps {
        let current = kernel.sysctls(&caps.sysctls);
        obs.apply(&Event::Sysctls(current), clock());
    }
    // A reload is an explicit retry: an op held back after a recent failure must be tried
    // now, or the new config would be committed without it.
    obs.failures.clear();
    let before: BTreeSet<Op> = plan(cfg, obs, clock())
        .steps
        .into_iter()
        .map(|s| s.op)
        .collect();
    let old = std::mem::replace(cfg, new);
    let mut undo: Vec<Op> = Vec::new();
    let mut ops = 0;
    for _ in 0..MAX_ROUNDS {
        let p = plan(cfg, obs, clock());
        if p.steps.is_empty() {
            break;
        }
        let mut touched = false;
        for step in &p.steps {
            let inv = inverse(&step.op, obs);
            let result = kernel.apply(&step.op).await;
            touched |= step.op.touches_endpoints();
            obs.apply(
                &Event::OpDone {
                    op: step.op.clone(),
                    error: result.clone().err(),
                },
                clock(),
            );
            match result {
                Ok(()) => {
                    log::info!("config: {}: {}", step.why, step.op);
                    ops += 1;
                    match inv {
                        Some(i) => undo.push(i),
                        None if matches!(step.op, Op::ResetNeighbours { .. }) => {}
                        None => log::warn!(
                            "config: `{}` cannot be undone (previous value unknown)",
                            step.op
                        ),
                    }
                }
                Err(e) if before.contains(&step.op) => {
                    log::warn!(
                        "config: {}: {} FAILED (failing before this config too): {e}",
                        step.why,
                        step.op
                    );
                }
                Err(error) => {
                    log::warn!(
                        "config: {}: {} FAILED: {error}; rolling back",
                        step.why,
                        step.op
                    );
                    let undone = undo.len();
                    let undo_errors = roll_back(undo, obs, kernel, clock).await;
                    *cfg = old;
                    return Err(RolledBack {
                        op: step.op.to_string(),
                        error: error.to_string(),
                        undone,
                        undo_errors,
                    });
                }
            }
        }
        if touched {
            if let Some(eps) = kernel.endpoints().await {
                obs.apply(&Event::Endpoints(eps), clock());
            }
        }
    }
    Ok(Committed {
        ops,
        deferred: false,
    })
}

async fn roll_back<K: Kernel>(
    undo: Vec<Op>,
    obs: &mut Observed,
    kernel: &K,
    clock: &dyn Fn() -> Millis,
) -> Vec<String> {
    let mut errors = Vec::new();
    for op in undo.into_iter().rev() {
        let result = kernel.apply(&op).await;
        match &result {
            Ok(()) => log::info!("config: rollback: {op}"),
            Err(e) => {
                log::error!("config: rollback: {op} FAILED: {e}");
                errors.push(format!("{op}: {e}"));
            }
        }
        obs.apply(
            &Event::OpDone {
                op,
                error: result.err(),
            },
            clock(),
        );
    }
    if let Some(eps) = kernel.endpoints().await {
        obs.apply(&Event::Endpoints(eps), clock());
    }
    errors
}

// ---------------------------------------------------------------------------------------
// Watching the file

/// `AsyncFd` wants `AsRawFd`; nix's Inotify offers `AsFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// An inotify watch on the config file's directory, filtered to the file's name.
struct Watcher {
    fd: AsyncFd<InotifyFd>,
    dir: PathBuf,
    name: OsString,
    wd: Option<WatchDescriptor>,
    /// (first change, last change) not yet acted on.
    pending: Option<(tokio::time::Instant, tokio::time::Instant)>,
    rewatch_at: Option<tokio::time::Instant>,
}

impl Watcher {
    fn new(path: &Path) -> io::Result<Watcher> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "config path has no file name")
            })?
            .to_os_string();
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // `new` is deprecated from tokio 1.5x on in favour of the unsafe `register`, which
        // older tokio lacks; the fd is owned by `Inotify` and lives as long as the AsyncFd.
        #[allow(deprecated)]
        let fd = AsyncFd::new(InotifyFd(ino))?;
        let mut w = Watcher {
            fd,
            dir,
            name,
            wd: None,
            pending: None,
            rewatch_at: None,
        };
        if let Err(e) = w.watch() {
            log::warn!(
                "watching {}: {e}; trying again every {}s",
                w.dir.display(),
                REWATCH.as_secs()
            );
            w.rewatch_at = Some(tokio::time::Instant::now() + REWATCH);
        }
        Ok(w)
    }

    fn watch(&mut self) -> io::Result<()> {
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        let wd = self.fd.get_ref().0.add_watch(&self.dir, flags)?;
        self.wd = Some(wd);
        Ok(())
    }

    fn touched(&mut self) {
        let now = tokio::time::Instant::now();
        self.pending = Some(match self.pending {
            Some((first, _)) => (first, now),
            None => (now, now),
        });
    }

    /// Wait until the file has changed and then stayed quiet (or the directory could be
    /// watched again). Cancel-safe: all state is in `self`.
    async fn changed(&mut self) {
        loop {
            let due = self
                .pending
                .map(|(first, last)| (last + DEBOUNCE).min(first + DEBOUNCE_MAX));
            let rewatch = self.rewatch_at;
            tokio::select! {
                guard = self.fd.readable() => {
                    let Ok(mut guard) = guard else {
                        std::future::pending::<()>().await;
                        return;
                    };
                    match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                        Ok(Ok(events)) => {
                            for ev in events {
                                if ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF | AddWatchFlags::IN_IGNORED) {
                                    if self.wd == Some(ev.wd) {
                                        log::warn!("{} went away; watching for it to come back", self.dir.display());
                                        if let Some(wd) = self.wd.take() {
                                            // Moved elsewhere, the old watch would report a stranger's files.
                                            let _ = self.fd.get_ref().0.rm_watch(wd);
                                        }
                                        self.rewatch_at = Some(tokio::time::Instant::now() + REWATCH);
                                    }
                                } else if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) || ev.name.as_deref() == Some(self.name.as_os_str()) {
                                    self.touched();
                                }
                            }
                        }
                        Ok(Err(e)) => log::warn!("reading inotify events: {e}"),
                        Err(_would_block) => {}
                    }
                }
                _ = sleep_until(due), if due.is_some() => {
                    self.pending = None;
                    return;
                }
                _ = sleep_until(rewatch), if rewatch.is_some() => {
                    match self.watch() {
                        Ok(()) => {
                            log::info!("watching {} again", self.dir.display());
                            self.rewatch_at = None;
                            self.touched();
                        }
                        Err(_) => self.rewatch_at = Some(tokio::time::Instant::now() + REWATCH),
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------
// The lifecycle, driven by the daemon loop

/// What woke the lifecycle up.
pub enum Trigger {
    FileChanged,
    Sighup,
    Request(Request),
}

pub struct Options {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// Serve the D-Bus API on the system bus (off in unit tests).
    pub dbus: bool,
}

pub struct Lifecycle {
    path: PathBuf,
    state_dir: PathBuf,
    info: ConfigInfo,
    watcher: Option<Watcher>,
    sighup: Option<Signal>,
    service: Option<ServiceHandle>,
    notify: Notifier,
    ready_sent: bool,
    /// Resync replies, answered after the reconciliation that follows.
    pending_resync: Vec<(oneshot::Sender<Result<String, AgentError>>, String)>,
}

fn now_usec() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Lifecycle {
    /// The config to start with (file, else last good, else built-in), the watch, SIGHUP,
    /// and the D-Bus service (without a system bus the agent runs without it).
    pub async fn start(opts: Options) -> (Lifecycle, Config) {
        let path_shown = opts.config.display().to_string();
        let mut info = ConfigInfo {
            path: path_shown.clone(),
            schema_version: u32::try_from(SCHEMA_VERSION).unwrap_or(0),
            applied_at: now_usec(),
            ..ConfigInfo::default()
        };
        let mut rejected = None;
        let loaded = match load(&opts.config) {
            Ok(l) => {
                log::info!("config {path_shown} ({})", l.digest);
                if let Err(e) = save_if_changed(&opts.state_dir, &l.text) {
                    log::warn!(
                        "keeping the last good config in {}: {e}",
                        opts.state_dir.display()
                    );
                }
                l
            }
            Err(e) => {
                let why = e.to_string();
                let last_good = opts.state_dir.join(LAST_GOOD_FILE);
                let fallback = match load(&last_good) {
                    Ok(l) => {
                        log::error!(
                            "config {path_shown} rejected; running on the last good config {} ({}):\n{why}",
                            last_good.display(),
                            l.digest
                        );
                        info.source = ConfigSource::LastGood;
                        l
                    }
                    Err(e2) => {
                        let l = built_in();
                        log::error!(
                            "config {path_shown} rejected, and no usable last good config ({e2}); running on the built-in default ({}):\n{why}",
                            l.digest
                        );
                        info.source = ConfigSource::BuiltIn;
                        l
                    }
                };
                info.last_error = why.clone();
                rejected = Some(why);
                fallback
            }
        };
        info.digest = loaded.digest.clone();

        let watcher = match Watcher::new(&opts.config) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!(
                    "cannot watch {path_shown} ({e}); changes apply on SIGHUP or Reload only"
                );
                None
            }
        };
        let sighup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("no SIGHUP handler: {e}");
                None
            }
        };
        let initial = Snapshot {
            mode: "starting".into(),
            config: info.clone(),
            ..Snapshot::default()
        };
        let service = match tokio::time::timeout(BUS_TIMEOUT, async {
            if opts.dbus {
                service::start(initial).await.map(Some)
            } else {
                Ok(None)
            }
        })
        .await
        {
            Ok(Ok(None)) => None,
            Ok(Ok(Some(s))) => {
                log::info!("D-Bus: serving {} on the system bus", service::BUS_NAME);
                Some(s)
            }
            Ok(Err(e)) => {
                log::warn!(
                    "D-Bus: not serving {} ({e}); status and reload over D-Bus unavailable",
                    service::BUS_NAME
                );
                None
            }
            Err(_) => {
                log::warn!("D-Bus: the system bus did not answer within {}s; running without the D-Bus API", BUS_TIMEOUT.as_secs());
                None
            }
        };
        let lc = Lifecycle {
            path: opts.config,
            state_dir: opts.state_dir,
            info,
            watcher,
            sighup,
            service,
            notify: Notifier::from_env(),
            ready_sent: false,
            pending_resync: Vec::new(),
        };
        if let Some(reason) = rejected {
            lc.notice(Notice::Rejected {
                path: path_shown,
                stage: "check".into(),
                reason,
            });
        }
        (lc, loaded.config)
    }

    fn notice(&self, n: Notice) {
        if let Some(s) = &self.service {
            s.notice(n);
        }
    }

    /// The next thing to act on. Cancel-safe (used in the daemon's `select!`).
    pub async fn next(&mut self) -> Trigger {
        let requests = self.service.as_mut().map(|s| &mut s.requests);
        tokio::select! {
            Some(r) = async { match requests { Some(rx) => rx.recv().await, None => None } } => Trigger::Request(r),
            _ = async { match self.watcher.as_mut() { Some(w) => w.changed().await, None => std::future::pending().await } } => Trigger::FileChanged,
            Some(()) = async { match self.sighup.as_mut() { Some(s) => s.recv().await, None => None } } => Trigger::Sighup,
        }
    }

    /// Act on a trigger.
    pub async fn handle(
        &mut self,
        t: Trigger,
        cfg: &mut Config,
        obs: &mut Observed,
        exec: &Executor,
        start: Instant,
    ) {
        match t {
            Trigger::FileChanged => {
                let _ = self
                    .reload("file change", true, cfg, obs, exec, start)
                    .await;
            }
            Trigger::Sighup => {
                let _ = self.reload("SIGHUP", false, cfg, obs, exec, start).await;
            }
            Trigger::Request(Request::Reload(reply)) => {
                let r = self
                    .reload("D-Bus Reload", false, cfg, obs, exec, start)
                    .await;
                let _ = reply.send(r);
            }
            Trigger::Request(Request::Explain(interface, reply)) => {
                let now = Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
                let only = Some(interface.as_str()).filter(|i| !i.is_empty());
                let e = mptcp_agent_core::explain(cfg, obs, now, only);
                let _ = reply.send(
                    serde_json::to_string(&e)
                        .map_err(|e| AgentError::Unavailable(format!("encoding JSON: {e}"))),
                );
            }
            Trigger::Request(Request::Resync(reply)) => match resync(obs, exec, start).await {
                Ok(summary) => self.pending_resync.push((reply, summary)),
                Err(e) => {
                    let _ = reply.send(Err(AgentError::ResyncFailed(e)));
                }
            },
        }
    }

    /// Check the file and apply it. `skip_unchanged`: a file event for the text already in
    /// force (touch, chmod) does nothing.
    pub async fn reload(
        &mut self,
        why: &str,
        skip_unchanged: bool,
        cfg: &mut Config,
        obs: &mut Observed,
        exec: &impl Kernel,
        start: Instant,
    ) -> Result<String, AgentError> {
        let shown = self.path.display().to_string();
        let loaded = match load(&self.path) {
            Ok(l) => l,
            Err(e) => {
                let reason = e.to_string();
                log::error!(
                    "{why}: config {shown} rejected, keeping the running config ({}):\n{reason}",
                    self.info.digest
                );
                self.info.last_error = reason.clone();
                self.file_rejected();
                self.notice(Notice::Rejected {
                    path: shown,
                    stage: "check".into(),
                    reason: reason.clone(),
                });
                return Err(AgentError::ConfigRejected(reason));
            }
        };
        if skip_unchanged
            && loaded.digest == self.info.digest
            && self.info.source == ConfigSource::File
        {
            log::debug!("{why}: {shown} unchanged ({})", loaded.digest);
            return Ok(loaded.digest);
        }
        self.notify.reloading();
        let clock = move || Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
        let nm_paths_changed =
            loaded.config.networkmanager.conf_paths != cfg.networkmanager.conf_paths;
        if nm_paths_changed {
            obs.apply(
                &Event::NmConfFiles(nm::read_conf_files(
                    &loaded.config.networkmanager.conf_paths,
                )),
                clock(),
            );
        }
        let t0 = Instant::now();
        let result = apply_transaction(loaded.config, cfg, obs, exec, &clock).await;
        let outcome = match result {
            Ok(c) => {
                log::info!(
                    "{why}: config {shown} applied ({}, {} kernel operation(s) in {} ms{})",
                    loaded.digest,
                    c.ops,
                    t0.elapsed().as_millis(),
                    if c.deferred {
                        ", takes effect at the first reconciliation"
                    } else {
                        ""
                    }
                );
                self.info.digest = loaded.digest.clone();
                self.info.source = ConfigSource::File;
                self.info.last_error.clear();
                self.info.applied_at = now_usec();
                if let Err(e) = save_if_changed(&self.state_dir, &loaded.text) {
                    log::warn!(
                        "keeping the last good config in {}: {e}",
                        self.state_dir.display()
                    );
                }
                self.notice(Notice::Applied {
                    path: shown,
                    digest: loaded.digest.clone(),
                    source: ConfigSource::File.name().into(),
                });
                Ok(loaded.digest)
            }
            Err(rb) => {
                if nm_paths_changed {
                    obs.apply(
                        &Event::NmConfFiles(nm::read_conf_files(&cfg.networkmanager.conf_paths)),
                        clock(),
                    );
                }
                let reason = format!(
                    "{shown}: applying it failed, the previous config stays in force: {rb}"
                );
                log::error!("{why}: {reason}");
                self.info.last_error = reason.clone();
                self.file_rejected();
                self.notice(Notice::Rejected {
                    path: shown,
                    stage: "apply".into(),
                    reason: reason.clone(),
                });
                Err(AgentError::ApplyFailed(reason))
            }
        };
        self.notify.ready(&self.status_line(obs));
        outcome
    }

    /// The file on disk is not what runs: the running config is now the last good one
    /// (unless it already is the built-in default).
    fn file_rejected(&mut self) {
        if self.info.source == ConfigSource::File {
            self.info.source = ConfigSource::LastGood;
        }
    }

    fn status_line(&self, obs: &Observed) -> String {
        let eps = obs.endpoints.as_ref().map_or(0, |m| m.len());
        let src = match self.info.source {
            ConfigSource::File => String::new(),
            s => format!(", running on the {} config", s.name()),
        };
        format!("{eps} endpoint(s), config {}{src}", self.info.digest)
    }

    /// After each reconciliation: READY=1 the first time the agent has acted, Resync
    /// replies, and the D-Bus snapshot (with the metrics' counters, which follow it).
    pub fn publish(
        &mut self,
        cfg: &Config,
        obs: &Observed,
        diagnostics: &BTreeSet<Diagnostic>,
        metrics: &mut crate::metrics::Metrics,
    ) {
        if obs.ready() && !self.ready_sent {
            self.ready_sent = true;
            self.notify.ready(&self.status_line(obs));
        }
        for (reply, summary) in self.pending_resync.drain(..) {
            let _ = reply.send(Ok(summary));
        }
        let mut snap = Snapshot::build(cfg, obs, diagnostics, self.info.clone());
        metrics.observe(&mut snap, obs, std::time::SystemTime::now());
        if let Some(s) = &self.service {
            s.publish(snap);
        }
    }
}

fn save_if_changed(dir: &Path, text: &str) -> io::Result<()> {
    if std::fs::read_to_string(dir.join(LAST_GOOD_FILE)).is_ok_and(|t| t == text) {
        return Ok(());
    }
    save_last_good(dir, text)
}

/// Read the kernel's state again and forget operation failures, so the next
/// reconciliation starts from the truth and retries at once.
async fn resync(obs: &mut Observed, exec: &Executor, start: Instant) -> Result<String, String> {
    let now = || Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let snap = rtnl::dump(&exec.rt).await.map_err(|e| e.to_string())?;
    let (links, addrs) = (snap.links.len(), snap.addresses.len());
    obs.apply(&Event::KernelSnapshot(snap), now());
    let eps = pm::endpoints(&exec.pm).await.map_err(|e| e.to_string())?;
    let n_eps = eps.len();
    obs.apply(&Event::Endpoints(eps), now());
    match exec.pm.limits().await {
        Ok(l) => obs.apply(
            &Event::Limits(mptcp_agent_core::Limits {
                subflows: l.subflows.unwrap_or(0),
                add_addr_accepted: l.add_addr_accepted.unwrap_or(0),
            }),
            now(),
        ),
        Err(e) => return Err(format!("reading MPTCP limits: {e}")),
    }
    if let Some(caps) = &obs.caps {
        let s = pm::read_sysctls(&exec.sysctl_dir, &caps.sysctls);
        obs.apply(&Event::Sysctls(s), now());
    }
    let retried = obs.failures.len();
    obs.failures.clear();
    log::info!("resync: {links} links, {addrs} addresses, {n_eps} endpoints read again; {retried} failed operation(s) retried now");
    Ok(format!(
        "re-read {links} links, {addrs} addresses, {n_eps} endpoints; {retried} failed operation(s) retried"
    ))
}

#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod tests;
