// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent run`: start the adapters, fold their events into the observed state, plan,
//! execute, repeat. Single-threaded (tokio current_thread): all decisions happen in one
//! place, in event order.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use mptcp_agent_core::{plan, Config, Diagnostic, Event, Millis, Observed};
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
/// How often to look for a running mptcpd.
const MPTCPD_SCAN: Duration = Duration::from_secs(5);
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
        self.obs.apply(&ev, now);
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
    let caps = pm::caps_of(pm.capabilities());
    log::info!(
        "kernel MPTCP: {}; set_flags {}, events {}, fullmesh {}, ids_run_out {}",
        caps.description,
        caps.set_flags,
        caps.events,
        caps.fullmesh,
        caps.ids_run_out
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

    // NetworkManager.
    if daemon.cfg.networkmanager.follow {
        match zbus::Connection::system().await {
            Ok(conn) => {
                let tx = tx.clone();
                let paths = daemon.cfg.networkmanager.conf_paths.clone();
                tokio::spawn(async move {
                    if let Err(e) = nm::watch(conn, paths, tx.clone()).await {
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
    }
}
