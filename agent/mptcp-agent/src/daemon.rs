// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent run`: start the adapters, fold their events into the observed state, plan,
//! execute, repeat. Single-threaded (tokio current_thread): all decisions happen in one
//! place, in event order.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use mptcp_agent_core::{
    plan, Blackhole, Config, Control, Diagnostic, Event, Millis, NmObserved, Observed, Refusal,
};
use mptcp_genl::PmHandle;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::mpsc,
};

use crate::{
    error::{Context, Error, Result},
    executor::Executor,
    metrics::{self, Metrics},
    mptcpd, nm, ota, pm, rtnl,
};

/// Rounds of plan → execute → plan per wake-up: policy routes first, then the endpoint
/// that needs them. More than this means something does not converge.
const MAX_ROUNDS: usize = 4;
/// After NetworkManager releases a link: when to read the kernel's endpoints again (delays,
/// one after the other), to see NetworkManager's late removal of its own endpoints.
const RELEASED_RELOOK_MS: [u64; 4] = [250, 750, 1000, 3000];
/// How often to look for a running mptcpd.
const MPTCPD_SCAN: Duration = Duration::from_secs(5);
/// How often to read the MPTCP blackhole counter: a detection costs the connection 1-3 s of
/// SYN retransmissions before it, so 2 s more to report it is in proportion; one small
/// procfs read.
const BLACKHOLE_SCAN: Duration = Duration::from_secs(2);
/// A missing route is reported only when it lasts this long: NetworkManager removes and
/// adds routes around every address change, which is not worth a warning each time.
const NO_ROUTE_REPORT_MS: u64 = 1500;

pub struct RunOptions {
    pub config: PathBuf,
    /// Where the last good config is kept.
    pub state_dir: PathBuf,
}

struct Daemon {
    cfg: Config,
    obs: Observed,
    start: Instant,
    exec: Executor,
    reported: BTreeSet<Diagnostic>,
    /// Diagnostics seen but not reported yet (see NO_ROUTE_REPORT_MS), with when first seen.
    pending: std::collections::BTreeMap<Diagnostic, Millis>,
    wake_at: Option<Millis>,
    was_ready: bool,
    /// Links excluded by default, as last logged (name → why).
    excluded: std::collections::BTreeMap<String, String>,
    metrics: Metrics,
}

impl Daemon {
    fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn apply(&mut self, ev: Event) {
        if let Event::ConfigChanged(cfg) = ev {
            self.cfg = *cfg;
            return;
        }
        let now = self.now();
        let before = self.obs.blackhole.clone();
        self.obs.apply(&ev, now);
        if let Event::BlackholeCounter { reading, .. } = &ev {
            self.log_blackhole(&before, reading);
        }
    }

    /// One line per rise of the kernel's blackhole counter, naming the sysctl; and once
    /// what the kernel offers (the counter, or why there is none).
    fn log_blackhole(&self, before: &Blackhole, reading: &std::result::Result<u64, String>) {
        let timeout = self
            .obs
            .sysctls
            .get(mptcp_agent_core::blackhole::SYSCTL)
            .map_or("?", |v| v.as_str());
        match (before, reading) {
            (Blackhole::Present { count, .. }, Ok(now)) if now > count => log::warn!(
                "MPTCP blackhole detected by the kernel (MPTcpExtBlackhole {count} -> {now}): SYNs with MPTCP \
                 options were dropped on a path where plain TCP passes; new outgoing MPTCP connections from this \
                 namespace are plain TCP for net.mptcp.blackhole_timeout = {timeout} s (doubling on repeats; 0 turns \
                 the detection off)"
            ),
            (Blackhole::Unknown, Ok(now)) => log::info!(
                "MPTCP blackhole detection: watching MPTcpExtBlackhole (now {now}; net.mptcp.blackhole_timeout = {timeout} s)"
            ),
            (Blackhole::Unknown | Blackhole::Present { .. }, Err(why)) => {
                log::info!("MPTCP blackhole detection: not reported: {why}")
            }
            _ => {}
        }
    }

    /// Plan and execute until nothing is left to do (bounded).
    async fn reconcile(&mut self) {
        if !self.obs.ready() {
            return;
        }
        if !self.was_ready {
            self.was_ready = true;
            log::info!("initial state read; reconciling");
            for l in mptcp_agent_core::assess(&self.cfg, &self.obs) {
                log::debug!("{l:?}");
            }
        }
        self.log_excluded();
        for _ in 0..MAX_ROUNDS {
            let p = plan(&self.cfg, &self.obs, self.now());
            let report_at = self.report(&p.diagnostics);
            self.wake_at = match (p.wake_at, report_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if p.steps.is_empty() {
                return;
            }
            let mut failed = Vec::new();
            let mut touched = false;
            for step in &p.steps {
                log::info!("{}: {}", step.why, step.op);
                let result = self.exec.apply(&step.op).await;
                let now = self.now();
                match &result {
                    Ok(()) => self.metrics.op_done(&step.op, &self.cfg, &self.obs, now),
                    Err(e) => {
                        log::warn!("{} FAILED: {e}", step.op);
                        failed.push(format!("{}: {e}", step.op));
                    }
                }
                touched |= step.op.touches_endpoints();
                self.obs.apply(
                    &Event::OpDone {
                        op: step.op.clone(),
                        error: result.err(),
                    },
                    now,
                );
            }
            if touched {
                // The kernel's view is the truth (ids it kept, endpoints others added).
                match pm::endpoints(&self.exec.pm).await {
                    Ok(eps) => self.apply(Event::Endpoints(eps)),
                    Err(e) => log::warn!("{e}"),
                }
            }
            if !failed.is_empty() {
                log::warn!(
                    "{} of {} operations failed: {}",
                    failed.len(),
                    p.steps.len(),
                    failed.join("; ")
                );
            }
        }
        log::warn!("plan did not settle in {MAX_ROUNDS} rounds; continuing with the next event");
    }

    /// Say once, at info, why a link a rule would manage gets no endpoint by default (a
    /// VPN, tunnel, bridge or container veth); not a warning: that is the normal case.
    fn log_excluded(&mut self) {
        let mut now = std::collections::BTreeMap::new();
        for l in mptcp_agent_core::assess(&self.cfg, &self.obs) {
            if let mptcp_agent_core::Control::Excluded(why) = l.control {
                if self.excluded.get(&l.name) != Some(&why) {
                    log::info!(
                        "{}: no endpoint: never an uplink by default: {why} (allow_virtual = true in rule {:?} opts it in)",
                        l.name,
                        l.rule.unwrap_or_default()
                    );
                }
                now.insert(l.name, why);
            }
        }
        self.excluded = now;
    }

    /// Log diagnostics when they appear and when they are resolved. A missing route counts
    /// only once it has lasted NO_ROUTE_REPORT_MS; returns when to look again for that.
    fn report(&mut self, now: &BTreeSet<Diagnostic>) -> Option<Millis> {
        let t = self.now();
        let stable = |d: &&Diagnostic| !matches!(d, Diagnostic::RetryLater { .. });
        let seen: BTreeSet<Diagnostic> = now.iter().filter(stable).cloned().collect();
        self.pending.retain(|d, _| seen.contains(d));
        let mut current = BTreeSet::new();
        let mut look_again: Option<Millis> = None;
        for d in seen {
            if matches!(d, Diagnostic::NoRoute { .. }) && !self.reported.contains(&d) {
                let since = *self.pending.entry(d.clone()).or_insert(t);
                let due = since.plus(NO_ROUTE_REPORT_MS);
                if t < due {
                    look_again = Some(look_again.map_or(due, |l| l.min(due)));
                    continue;
                }
                self.pending.remove(&d);
            }
            current.insert(d);
        }
        for d in current.difference(&self.reported) {
            log::warn!("{d}");
        }
        for d in self.reported.difference(&current) {
            log::info!("resolved: {d}");
        }
        self.reported = current;
        look_again
    }
}

/// NetworkManager's object paths of the devices refused because of its own MPTCP handling.
fn nm_refused_devices(cfg: &Config, obs: &Observed) -> BTreeSet<String> {
    let NmObserved::Present(p) = &obs.nm else {
        return BTreeSet::new();
    };
    mptcp_agent_core::assess(cfg, obs)
        .into_iter()
        .filter(|l| matches!(l.control, Control::Refused(Refusal::NetworkManager { .. })))
        .filter_map(|l| p.device(&l.name).map(|d| d.path.clone()))
        .collect()
}

/// Run the daemon until SIGTERM/SIGINT or a fatal adapter error.
pub async fn run(opts: RunOptions) -> Result<()> {
    // The config file, else the last good one, else the built-in default; the file watch,
    // SIGHUP and the D-Bus service (ota.rs).
    let (mut ota, cfg) = ota::Lifecycle::start(ota::Options {
        config: opts.config.clone(),
        state_dir: opts.state_dir.clone(),
        dbus: true,
    })
    .await;
    crate::logging::apply_config(cfg.log_level);
    let start = Instant::now();
    let pm = PmHandle::connect()
        .await
        .context("connecting to the kernel's mptcp_pm family")?;
    let mut caps = pm::caps_of(pm.capabilities());
    let laminar = pm::probe_laminar().await;
    caps.laminar = laminar.known();
    caps.laminar_probe = laminar.to_string();
    log::info!(
        "kernel MPTCP: {}; set_flags {}, events {}, fullmesh {}, ids_run_out {}, laminar {} ({})",
        caps.description,
        caps.set_flags,
        caps.events,
        caps.fullmesh,
        caps.ids_run_out,
        caps.laminar,
        caps.laminar_probe
    );
    let (rt, messages) = rtnl::connect()?;
    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    let (fatal_tx, mut fatal_rx) = mpsc::channel::<Error>(4);

    let mut daemon = Daemon {
        cfg,
        obs: Observed::new(),
        start,
        exec: Executor {
            pm: pm.clone(),
            rt: rt.clone(),
            sysctl_dir: PathBuf::from(pm::SYSCTL_DIR),
        },
        reported: BTreeSet::new(),
        pending: Default::default(),
        wake_at: None,
        was_ready: false,
        excluded: Default::default(),
        metrics: Metrics::new(),
    };

    // Kernel inputs.
    daemon.apply(Event::Sysctls(pm::read_sysctls(
        Path::new(pm::SYSCTL_DIR),
        &caps.sysctls,
    )));
    let has_events = caps.events;
    daemon.apply(Event::Capabilities(caps));
    match pm.limits().await {
        Ok(l) => daemon.apply(Event::Limits(mptcp_agent_core::Limits {
            subflows: l.subflows.unwrap_or(0),
            add_addr_accepted: l.add_addr_accepted.unwrap_or(0),
        })),
        Err(e) => log::warn!("reading MPTCP limits: {e}"),
    }
    daemon.apply(Event::Endpoints(pm::endpoints(&pm).await?));
    {
        let (tx, fatal) = (tx.clone(), fatal_tx.clone());
        tokio::spawn(async move {
            if let Err(e) = rtnl::monitor(rt, messages, tx).await {
                let _ = fatal.send(e).await;
            }
        });
    }
    if has_events {
        let (tx, fatal, pm) = (tx.clone(), fatal_tx.clone(), pm.clone());
        tokio::spawn(async move {
            if let Err(e) = pm::forward_events(pm, tx).await {
                let _ = fatal.send(e).await;
            }
        });
    }

    // NetworkManager. The watcher polls the devices refused because of NetworkManager's own
    // MPTCP: a reapply that turns it off sends no signal.
    let (poll_tx, poll_rx) = tokio::sync::watch::channel(BTreeSet::new());
    let nm_refresh = std::sync::Arc::new(tokio::sync::Notify::new());
    if daemon.cfg.networkmanager.follow {
        match zbus::Connection::system().await {
            Ok(conn) => {
                let tx = tx.clone();
                let paths = daemon.cfg.networkmanager.conf_paths.clone();
                let follow = nm::Follow {
                    poll: poll_rx,
                    refresh: nm_refresh.clone(),
                };
                tokio::spawn(async move {
                    if let Err(e) = nm::watch(conn, paths, tx.clone(), Some(follow)).await {
                        log::warn!(
                            "NetworkManager watcher stopped ({e}); kernel-only mode from now on"
                        );
                        let _ = tx.send(Event::NmGone).await;
                    }
                });
            }
            Err(e) => {
                log::warn!("{}: kernel-only mode", crate::cli::bus_failure_message(&e));
                daemon.apply(Event::NmGone);
            }
        }
    } else {
        log::info!("networkmanager.follow = false: kernel-only mode");
        daemon.apply(Event::NmGone);
    }

    // mptcpd, now and every few seconds.
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut first = true;
            loop {
                let found = mptcpd::find(Path::new("/proc"));
                if first || found != last {
                    if tx.send(Event::Mptcpd(found)).await.is_err() {
                        return;
                    }
                    last = found;
                    first = false;
                }
                tokio::time::sleep(MPTCPD_SCAN).await;
            }
        });
    }
    // The kernel's blackhole counter, now and every few seconds; sent when it changes.
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut last: Option<std::result::Result<u64, String>> = None;
            loop {
                let reading = std::fs::read_to_string("/proc/net/netstat")
                    .map_err(|e| format!("cannot read /proc/net/netstat: {e}"))
                    .and_then(|t| mptcp_agent_core::blackhole::counter_of(&t));
                if last.as_ref() != Some(&reading) {
                    let wall_usec = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
                    let ev = Event::BlackholeCounter {
                        reading: reading.clone(),
                        wall_usec,
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                    last = Some(reading);
                }
                tokio::time::sleep(BLACKHOLE_SCAN).await;
            }
        });
    }
    // A link NetworkManager released: its endpoints there go away some time after the
    // reapply, and the kernel reports no endpoint removals; look again a few times.
    let released_tx = tx.clone();
    drop(tx);

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    log::info!(
        "mptcp-agent {} running with {}",
        env!("CARGO_PKG_VERSION"),
        opts.config.display()
    );

    // The metrics timer: the kernel's counters are read and the file written here, in the
    // one loop, not by a task of its own.
    let mut metrics_at = tokio::time::Instant::now();
    loop {
        let wake = daemon
            .wake_at
            .map(|w| tokio::time::Instant::from_std(start + Duration::from_millis(w.0)));
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return Err(Error::msg("all event sources stopped")) };
                daemon.apply(ev);
                // Take everything that is queued before deciding: NetworkManager sends
                // bursts (IP config before the state change), netlink too.
                while let Ok(ev) = rx.try_recv() {
                    daemon.apply(ev);
                }
            }
            _ = async { tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)).await }, if wake.is_some() => {
                daemon.apply(Event::Tick);
            }
            // Config file changed, SIGHUP, D-Bus Reload/Resync.
            t = ota.next() => {
                // Resync reads NetworkManager's devices again too (their answer follows).
                if matches!(&t, ota::Trigger::Request(crate::service::Request::Resync(_))) {
                    nm_refresh.notify_one();
                }
                ota.handle(t, &mut daemon.cfg, &mut daemon.obs, &daemon.exec, start).await;
                crate::logging::apply_config(daemon.cfg.log_level);
            }
            _ = tokio::time::sleep_until(metrics_at) => {
                let m = &daemon.cfg.metrics;
                metrics_at = tokio::time::Instant::now() + Duration::from_millis(m.interval_ms);
                let ready = daemon.obs.ready();
                daemon.metrics.tick(m, Path::new(metrics::NETSTAT), ready);
            }
            _ = sigterm.recv() => {
                log::info!("SIGTERM: exiting; endpoints, routes and rules stay as they are");
                return Ok(());
            }
            _ = sigint.recv() => {
                log::info!("SIGINT: exiting; endpoints, routes and rules stay as they are");
                return Ok(());
            }
            e = fatal_rx.recv() => {
                return Err(e.unwrap_or_else(|| Error::msg("adapter stopped")));
            }
        }
        daemon.reconcile().await;
        ota.publish(
            &daemon.cfg,
            &daemon.obs,
            &daemon.reported,
            &mut daemon.metrics,
        );
        let refused = nm_refused_devices(&daemon.cfg, &daemon.obs);
        let released = poll_tx.borrow().iter().any(|d| !refused.contains(d));
        poll_tx.send_if_modified(|cur| {
            let changed = *cur != refused;
            *cur = refused;
            changed
        });
        if released {
            let (tx, pm) = (released_tx.clone(), daemon.exec.pm.clone());
            tokio::spawn(async move {
                for ms in RELEASED_RELOOK_MS {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    match pm::endpoints(&pm).await {
                        Ok(eps) => {
                            if tx.send(Event::Endpoints(eps)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => log::warn!("{e}"),
                    }
                }
            });
        }
    }
}
