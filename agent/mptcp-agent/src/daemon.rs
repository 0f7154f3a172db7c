// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent run`: start the adapters, fold their events into the observed state, plan,
//! execute, repeat. Single-threaded (tokio current_thread): all decisions happen in one
//! place, in input order. Every input arrives on one channel ([`Input`]): the kernel's and
//! NetworkManager's events, config file changes, SIGHUP and the D-Bus methods. A new
//! config is applied by the same reconcile step, in transaction mode (reconcile.rs).

mod reconcile;
mod transaction;

use std::{
    collections::BTreeSet,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use mptcp_agent_core::{Config, Control, Event, Millis, NmObserved, Observed, Refusal};
use mptcp_genl::PmHandle;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, oneshot, watch, Notify},
    task::JoinHandle,
};

use reconcile::Daemon;
use transaction::Kernel;

use crate::{
    error::{Context, Error, Result},
    executor::Executor,
    metrics, mptcpd, nm,
    ota::{self, Checked, Lifecycle, Outcome},
    pm, rtnl,
    service::{self, AgentError, Request, ServiceHandle, Snapshot},
};

/// After NetworkManager releases a link: when to read the kernel's endpoints again (delays,
/// one after the other), to see NetworkManager's late removal of its own endpoints.
const RELEASED_RELOOK_MS: [u64; 4] = [250, 750, 1000, 3000];
/// How often to look for a running mptcpd.
const MPTCPD_SCAN: Duration = Duration::from_secs(5);
/// How often to read the MPTCP blackhole counter: a detection costs the connection 1-3 s of
/// SYN retransmissions before it, so 2 s more to report it is in proportion; one small
/// procfs read.
const BLACKHOLE_SCAN: Duration = Duration::from_secs(2);
/// The loop's channel: adapters wait when it is full (netlink bursts are bounded by the
/// kernel's socket buffers, NetworkManager's by the bus).
const INBOX: usize = 4096;

/// Everything the loop acts on, in arrival order.
pub enum Input {
    /// From an adapter: the kernel, NetworkManager, mptcpd, the blackhole counter.
    Event(Event),
    /// The config file changed (inotify, debounced).
    FileChanged,
    /// SIGHUP: read the config file again.
    Sighup,
    /// A D-Bus method: Reload, Resync, Explain.
    Request(Request),
    /// Dump the kernel's endpoints again (after NetworkManager released a link).
    ReadEndpoints,
}

impl From<Event> for Input {
    fn from(ev: Event) -> Input {
        Input::Event(ev)
    }
}

pub struct RunOptions {
    pub config: PathBuf,
    /// Where the last good config is kept.
    pub state_dir: PathBuf,
}

/// Check the config file and make it the one in force as a transaction of the reconcile
/// step. `skip_unchanged`: a file event for the text already in force does nothing.
pub async fn reload<K: Kernel>(
    d: &mut Daemon<K>,
    ota: &mut Lifecycle,
    why: &str,
    skip_unchanged: bool,
) -> std::result::Result<String, AgentError> {
    let loaded = match ota.check(why, skip_unchanged)? {
        Checked::Unchanged(digest) => return Ok(digest),
        Checked::New(l) => l,
    };
    // NetworkManager's config files where the new config says, for the plan; back to the
    // old ones if it is rolled back.
    let nm_paths_changed =
        loaded.config.networkmanager.conf_paths != d.cfg.networkmanager.conf_paths;
    if nm_paths_changed {
        let files = nm::read_conf_files(&loaded.config.networkmanager.conf_paths);
        d.apply(Event::NmConfFiles(files));
    }
    let t0 = Instant::now();
    let outcome = match d.transaction(loaded.config.clone()).await {
        Ok(c) => Outcome::Committed {
            ops: c.ops,
            deferred: c.deferred,
            took: t0.elapsed(),
        },
        Err(rb) => {
            if nm_paths_changed {
                let files = nm::read_conf_files(&d.cfg.networkmanager.conf_paths);
                d.apply(Event::NmConfFiles(files));
            }
            Outcome::RolledBack(rb.to_string())
        }
    };
    ota.finished(why, &loaded, outcome, &d.obs)
}

/// Why each link (or the one named; "" = all) has or lacks its endpoints, as JSON.
fn explain<K: Kernel>(d: &Daemon<K>, interface: &str) -> std::result::Result<String, AgentError> {
    let only = Some(interface).filter(|i| !i.is_empty());
    let e = mptcp_agent_core::explain(&d.cfg, &d.obs, d.now(), only);
    serde_json::to_string(&e).map_err(|e| AgentError::Unavailable(format!("encoding JSON: {e}")))
}

/// Which read of a resync failed. Only its message goes out (the Resync reply).
#[derive(Debug)]
pub enum ResyncError {
    /// Links, addresses, routes and rules.
    Snapshot(Error),
    Endpoints(Error),
    Limits(mptcp_genl::Error),
}

impl fmt::Display for ResyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResyncError::Snapshot(e) | ResyncError::Endpoints(e) => write!(f, "{e}"),
            ResyncError::Limits(e) => write!(f, "reading MPTCP limits: {e}"),
        }
    }
}

impl<K: Kernel> Daemon<K> {
    /// Read the kernel's state again and forget operation failures, so the next
    /// reconciliation starts from the truth and retries at once. Everything is read before
    /// anything is applied: a failed read changes nothing.
    async fn resync(&mut self) -> std::result::Result<String, ResyncError> {
        let snap = self.exec.snapshot().await.map_err(ResyncError::Snapshot)?;
        let eps = self
            .exec
            .endpoints()
            .await
            .map_err(ResyncError::Endpoints)?;
        let limits = self.exec.limits().await.map_err(ResyncError::Limits)?;
        let (links, addrs, n_eps) = (snap.links.len(), snap.addresses.len(), eps.len());
        self.apply(Event::KernelSnapshot(snap));
        self.apply(Event::Endpoints(eps));
        self.apply(Event::Limits(limits));
        if let Some(caps) = &self.obs.caps {
            let s = self.exec.sysctls(&caps.sysctls);
            self.apply(Event::Sysctls(s));
        }
        let retried = self.obs.failures.len();
        self.obs.failures.clear();
        log::info!("resync: {links} links, {addrs} addresses, {n_eps} endpoints read again; {retried} failed operation(s) retried now");
        Ok(format!(
            "re-read {links} links, {addrs} addresses, {n_eps} endpoints; {retried} failed operation(s) retried"
        ))
    }
}

/// NetworkManager followed or not, as the config in force says.
struct NmFollower {
    inbox: mpsc::Sender<Input>,
    /// Devices refused because of NetworkManager's own MPTCP, polled by the watcher: a
    /// reapply that turns it off sends no signal.
    poll: watch::Sender<BTreeSet<String>>,
    /// Read every device again now (Resync).
    refresh: Arc<Notify>,
    task: Option<JoinHandle<()>>,
    /// `networkmanager.follow` as last configured (`None` before the start).
    following: Option<bool>,
}

impl NmFollower {
    fn new(inbox: mpsc::Sender<Input>) -> NmFollower {
        NmFollower {
            inbox,
            poll: watch::channel(BTreeSet::new()).0,
            refresh: Arc::new(Notify::new()),
            task: None,
            following: None,
        }
    }

    /// Follow NetworkManager or not, as the config in force says; at start and after every
    /// reload.
    async fn configure(&mut self, d: &mut Daemon<Executor>) {
        let follow = d.cfg.networkmanager.follow;
        if self.following.replace(follow) == Some(follow) {
            return;
        }
        if !follow {
            log::info!("networkmanager.follow = false: kernel-only mode");
            match self.task.take() {
                Some(t) => {
                    t.abort();
                    // Behind what the watcher has queued already.
                    let tx = self.inbox.clone();
                    tokio::spawn(async move { tx.send(Event::NmGone.into()).await });
                }
                None => d.apply(Event::NmGone),
            }
            return;
        }
        match zbus::Connection::system().await {
            Ok(conn) => {
                let tx = self.inbox.clone();
                let follow = nm::Follow {
                    poll: self.poll.subscribe(),
                    refresh: self.refresh.clone(),
                };
                self.task = Some(tokio::spawn(async move {
                    if let Err(e) = nm::watch(conn, tx.clone(), Some(follow)).await {
                        log::warn!(
                            "NetworkManager watcher stopped ({e}); kernel-only mode from now on"
                        );
                        let _ = tx.send(Event::NmGone.into()).await;
                    }
                }));
            }
            Err(e) => {
                log::warn!("{}: kernel-only mode", crate::cli::bus_failure_message(&e));
                d.apply(Event::NmGone);
            }
        }
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

type Reply = oneshot::Sender<std::result::Result<String, AgentError>>;

/// The config outcomes `ota` has to tell, as D-Bus signals.
fn tell(bus: Option<&ServiceHandle>, ota: &mut Lifecycle) {
    for n in ota.take_notices() {
        if let Some(b) = bus {
            b.notice(n);
        }
    }
}

/// Act on one input. Resync replies wait for the reconciliation that follows (`resyncs`).
async fn handle(
    d: &mut Daemon<Executor>,
    ota: &mut Lifecycle,
    bus: Option<&ServiceHandle>,
    nm: &mut NmFollower,
    resyncs: &mut Vec<(Reply, String)>,
    input: Input,
) {
    let reloaded = match input {
        Input::Event(ev) => {
            match &ev {
                Event::Mptcp(m) => {
                    if let Some(b) = bus {
                        b.subflow(m);
                    }
                }
                // NetworkManager (re)started and read its config files: read them too, where
                // the config in force says they are (a reload may have moved them).
                Event::NmAppeared { .. } => {
                    let files = nm::read_conf_files(&d.cfg.networkmanager.conf_paths);
                    d.apply(Event::NmConfFiles(files));
                }
                _ => {}
            }
            d.apply(ev);
            return;
        }
        Input::ReadEndpoints => {
            d.read_endpoints().await;
            return;
        }
        Input::FileChanged => reload(d, ota, "file change", true).await.is_ok(),
        Input::Sighup => reload(d, ota, "SIGHUP", false).await.is_ok(),
        Input::Request(Request::Reload(reply)) => {
            let r = reload(d, ota, "D-Bus Reload", false).await;
            let applied = r.is_ok();
            let _ = reply.send(r);
            applied
        }
        Input::Request(Request::Explain(interface, reply)) => {
            let _ = reply.send(explain(d, &interface));
            return;
        }
        Input::Request(Request::Resync(reply)) => {
            // NetworkManager's devices are read again too (their answer follows).
            nm.refresh.notify_one();
            match d.resync().await {
                Ok(summary) => resyncs.push((reply, summary)),
                Err(e) => {
                    let _ = reply.send(Err(AgentError::ResyncFailed(e.to_string())));
                }
            }
            return;
        }
    };
    tell(bus, ota);
    if reloaded {
        crate::logging::apply_config(d.cfg.log_level);
        nm.configure(d).await;
    }
}

/// Run the daemon until SIGTERM/SIGINT or a fatal adapter error.
pub async fn run(opts: RunOptions) -> Result<()> {
    // The config file, else the last good one, else the built-in default (ota); the D-Bus
    // service.
    let (mut ota, cfg) = Lifecycle::start(ota::Options {
        config: opts.config.clone(),
        state_dir: opts.state_dir.clone(),
    });
    let mut bus = service::start_or_none(Snapshot {
        mode: "starting".into(),
        config: ota.info().clone(),
        ..Snapshot::default()
    })
    .await;
    tell(bus.as_ref(), &mut ota);
    let (tx, mut rx) = mpsc::channel::<Input>(INBOX);
    // Config triggers: the file watch, SIGHUP, the D-Bus methods.
    match ota::watch::Watcher::new(&opts.config) {
        Ok(mut w) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    w.changed().await;
                    if tx.send(Input::FileChanged).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => log::warn!(
            "cannot watch {} ({e}); changes apply on SIGHUP or Reload only",
            opts.config.display()
        ),
    }
    match signal(SignalKind::hangup()) {
        Ok(mut s) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(Input::Sighup).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => log::warn!("no SIGHUP handler: {e}"),
    }
    if let Some(mut requests) = bus.as_mut().and_then(ServiceHandle::take_requests) {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(r) = requests.recv().await {
                if tx.send(Input::Request(r)).await.is_err() {
                    return;
                }
            }
        });
    }

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
    let (fatal_tx, mut fatal_rx) = mpsc::channel::<Error>(4);

    let mut nm = NmFollower::new(tx.clone());
    let exec = Executor {
        pm: pm.clone(),
        rt: rt.clone(),
        sysctl_dir: PathBuf::from(pm::SYSCTL_DIR),
    };
    let clock = move || Millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut daemon = Daemon::new(cfg, exec, Box::new(clock));

    // Kernel inputs.
    let sysctls = daemon.exec.sysctls(&caps.sysctls);
    daemon.apply(Event::Sysctls(sysctls));
    let has_events = caps.events;
    daemon.apply(Event::Capabilities(caps));
    match daemon.exec.limits().await {
        Ok(l) => daemon.apply(Event::Limits(l)),
        Err(e) => log::warn!("reading MPTCP limits: {e}"),
    }
    let eps = daemon.exec.endpoints().await?;
    daemon.apply(Event::Endpoints(eps));
    {
        let (tx, fatal) = (tx.clone(), fatal_tx.clone());
        tokio::spawn(async move {
            if let Err(e) = rtnl::monitor(rt, messages, tx).await {
                let _ = fatal.send(e).await;
            }
        });
    }
    // The one subscription to the kernel's path-manager events: the plan and the D-Bus
    // SubflowEvent signals both take theirs from it.
    if has_events {
        let (tx, fatal, pm) = (tx.clone(), fatal_tx.clone(), pm.clone());
        tokio::spawn(async move {
            if let Err(e) = pm::forward_events(pm, tx).await {
                let _ = fatal.send(e).await;
            }
        });
    }

    // NetworkManager, if the config says to follow it.
    nm.configure(&mut daemon).await;

    // mptcpd, now and every few seconds.
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut first = true;
            loop {
                let found = mptcpd::find(Path::new("/proc"));
                if first || found != last {
                    if tx.send(Event::Mptcpd(found).into()).await.is_err() {
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
                    let wall_usec = crate::walltime::now_usec();
                    let ev = Event::BlackholeCounter {
                        reading: reading.clone(),
                        wall_usec,
                    };
                    if tx.send(ev.into()).await.is_err() {
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
    let mut resyncs = Vec::new();
    loop {
        let wake = daemon
            .wake_at
            .map(|w| tokio::time::Instant::from_std(start + Duration::from_millis(w.0)));
        tokio::select! {
            input = rx.recv() => {
                let Some(input) = input else { return Err(Error::msg("all event sources stopped")) };
                handle(&mut daemon, &mut ota, bus.as_ref(), &mut nm, &mut resyncs, input).await;
                // Take everything that is queued before deciding: NetworkManager sends
                // bursts (IP config before the state change), netlink too.
                while let Ok(input) = rx.try_recv() {
                    handle(&mut daemon, &mut ota, bus.as_ref(), &mut nm, &mut resyncs, input).await;
                }
            }
            _ = async { tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)).await }, if wake.is_some() => {
                daemon.apply(Event::Tick);
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
        for (reply, summary) in resyncs.drain(..) {
            let _ = reply.send(Ok(summary));
        }
        // READY=1 once, then the D-Bus snapshot (with the metrics' counters, which follow it).
        ota.reconciled(&daemon.obs);
        let mut snap = Snapshot::build(
            &daemon.cfg,
            &daemon.obs,
            &daemon.reported,
            ota.info().clone(),
        );
        daemon
            .metrics
            .observe(&mut snap, &daemon.obs, std::time::SystemTime::now());
        if let Some(b) = &bus {
            b.publish(snap);
        }
        let refused = nm_refused_devices(&daemon.cfg, &daemon.obs);
        let released = nm.poll.borrow().iter().any(|d| !refused.contains(d));
        nm.poll.send_if_modified(|cur| {
            let changed = *cur != refused;
            *cur = refused;
            changed
        });
        if released {
            // Only the timer is a task: the dump is the loop's, through its Kernel.
            let tx = released_tx.clone();
            tokio::spawn(async move {
                for ms in RELEASED_RELOOK_MS {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    if tx.send(Input::ReadEndpoints).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests;
