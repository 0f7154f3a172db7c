// SPDX-License-Identifier: MIT OR Apache-2.0
//! The daemon's state and its one reconcile step: plan, execute, read the endpoints again,
//! repeat until nothing is left. A new config runs the same step in transaction mode,
//! where a failed operation undoes the earlier ones and restores the previous config.

use std::collections::{BTreeMap, BTreeSet};

use mptcp_agent_core::{plan, Blackhole, Config, Diagnostic, Event, Millis, Observed, Op};

use super::transaction::{inverse, Committed, Kernel, RolledBack, Txn};
use crate::metrics::Metrics;

/// Rounds of plan → execute → plan per wake-up: policy routes first, then the endpoint
/// that needs them. More than this means something does not converge.
const MAX_ROUNDS: usize = 4;
/// A missing route is reported only when it lasts this long: NetworkManager removes and
/// adds routes around every address change, which is not worth a warning each time.
pub(super) const NO_ROUTE_REPORT_MS: u64 = 1500;

pub struct Daemon<K> {
    pub cfg: Config,
    pub obs: Observed,
    clock: Box<dyn Fn() -> Millis>,
    pub exec: K,
    pub reported: BTreeSet<Diagnostic>,
    /// Diagnostics seen but not reported yet (see NO_ROUTE_REPORT_MS), with when first seen.
    pending: BTreeMap<Diagnostic, Millis>,
    pub wake_at: Option<Millis>,
    was_ready: bool,
    /// Links excluded by default, as last logged (name → why).
    excluded: BTreeMap<String, String>,
    pub metrics: Metrics,
}

impl<K: Kernel> Daemon<K> {
    pub fn new(cfg: Config, exec: K, clock: Box<dyn Fn() -> Millis>) -> Daemon<K> {
        Daemon {
            cfg,
            obs: Observed::new(),
            clock,
            exec,
            reported: BTreeSet::new(),
            pending: BTreeMap::new(),
            wake_at: None,
            was_ready: false,
            excluded: BTreeMap::new(),
            metrics: Metrics::new(),
        }
    }

    pub fn now(&self) -> Millis {
        (self.clock)()
    }

    pub fn apply(&mut self, ev: Event) {
        if log::log_enabled!(log::Level::Debug) {
            log_event(&ev);
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
    pub async fn reconcile(&mut self) {
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
        // Without a transaction nothing rolls back.
        let _ = self.rounds(None).await;
    }

    /// Make `new` the config in force as one transaction: the reconcile step in transaction
    /// mode. If an operation fails, every earlier one is undone (in reverse order) and the
    /// previous config stays. An operation that the old config wanted too (it was failing
    /// before) does not count against the new config.
    pub async fn transaction(&mut self, new: Config) -> Result<Committed, RolledBack> {
        if !self.obs.ready() {
            self.cfg = new;
            return Ok(Committed {
                ops: 0,
                deferred: true,
            });
        }
        if let Some(caps) = &self.obs.caps {
            let current = self.exec.sysctls(&caps.sysctls);
            self.apply(Event::Sysctls(current));
        }
        // A reload is an explicit retry: an op held back after a recent failure must be tried
        // now, or the new config would be committed without it.
        self.obs.failures.clear();
        let before: BTreeSet<Op> = plan(&self.cfg, &self.obs, self.now())
            .steps
            .into_iter()
            .map(|s| s.op)
            .collect();
        let old = std::mem::replace(&mut self.cfg, new);
        let mut txn = Txn {
            old,
            before,
            undo: Vec::new(),
            ops: 0,
        };
        self.rounds(Some(&mut txn)).await?;
        Ok(Committed {
            ops: txn.ops,
            deferred: false,
        })
    }

    /// The one reconcile step: plan → execute → re-dump, at most MAX_ROUNDS times. In
    /// transaction mode (`txn`), the first failure that is the new config's rolls back.
    async fn rounds(&mut self, mut txn: Option<&mut Txn>) -> Result<(), RolledBack> {
        for _ in 0..MAX_ROUNDS {
            let p = plan(&self.cfg, &self.obs, self.now());
            let report_at = self.report(&p.diagnostics);
            self.wake_at = match (p.wake_at, report_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if p.steps.is_empty() {
                return Ok(());
            }
            let mut failed = Vec::new();
            let mut touched = false;
            for step in &p.steps {
                let inv = txn.as_ref().and_then(|_| inverse(&step.op, &self.obs));
                if txn.is_none() {
                    log::info!("{}: {}", step.why, step.op);
                }
                let result = self.exec.apply(&step.op).await;
                let now = self.now();
                touched |= step.op.touches_endpoints();
                if txn.is_none() {
                    match &result {
                        Ok(()) => self.metrics.op_done(&step.op, &self.cfg, &self.obs, now),
                        Err(e) => {
                            log::warn!("{} FAILED: {e}", step.op);
                            failed.push(format!("{}: {e}", step.op));
                        }
                    }
                }
                self.obs.apply(
                    &Event::OpDone {
                        op: step.op.clone(),
                        error: result.clone().err(),
                    },
                    now,
                );
                let Some(t) = txn.as_deref_mut() else {
                    continue;
                };
                match result {
                    Ok(()) => {
                        log::info!("config: {}: {}", step.why, step.op);
                        t.ops += 1;
                        match inv {
                            Some(i) => t.undo.push(i),
                            None if matches!(step.op, Op::ResetNeighbours { .. }) => {}
                            None => log::warn!(
                                "config: `{}` cannot be undone (previous value unknown)",
                                step.op
                            ),
                        }
                    }
                    Err(e) if t.before.contains(&step.op) => {
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
                        let rb = RolledBack {
                            op: step.op.to_string(),
                            error: error.to_string(),
                            undone: t.undo.len(),
                            undo_errors: Vec::new(),
                        };
                        return Err(self.roll_back(t, rb).await);
                    }
                }
            }
            if touched {
                self.read_endpoints().await;
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
        if txn.is_none() {
            log::warn!(
                "plan did not settle in {MAX_ROUNDS} rounds; continuing with the next event"
            );
        }
        Ok(())
    }

    /// Undo a transaction's operations in reverse order and go back to its config.
    async fn roll_back(&mut self, txn: &mut Txn, mut rb: RolledBack) -> RolledBack {
        for op in std::mem::take(&mut txn.undo).into_iter().rev() {
            let result = self.exec.apply(&op).await;
            match &result {
                Ok(()) => log::info!("config: rollback: {op}"),
                Err(e) => {
                    log::error!("config: rollback: {op} FAILED: {e}");
                    rb.undo_errors.push(format!("{op}: {e}"));
                }
            }
            self.apply(Event::OpDone {
                op,
                error: result.err(),
            });
        }
        self.read_endpoints().await;
        self.cfg = std::mem::take(&mut txn.old);
        rb
    }

    /// Read the endpoints again after changing them: the kernel's view is the truth (ids
    /// it kept, endpoints others added). A failed dump keeps the view as it was.
    pub async fn read_endpoints(&mut self) {
        match self.exec.endpoints().await {
            Ok(eps) => self.apply(Event::Endpoints(eps)),
            Err(e) => log::warn!("{e}"),
        }
    }

    /// Say once, at info, why a link a rule would manage gets no endpoint by default (a
    /// VPN, tunnel, bridge or container veth); not a warning: that is the normal case.
    fn log_excluded(&mut self) {
        let mut now = BTreeMap::new();
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

/// The inputs that decide when an endpoint comes and goes, one debug line each, so a log
/// shows how long after the kernel's or NetworkManager's report the agent acted.
fn log_event(ev: &Event) {
    match ev {
        Event::LinkChanged(l) => log::debug!(
            "event: link {} up {} lower-up {} oper {:?}",
            l.name,
            l.up,
            l.lower_up,
            l.oper
        ),
        Event::AddressAdded(a) => log::debug!("event: address {} added on {}", a.addr, a.ifindex),
        Event::AddressRemoved(a) => {
            log::debug!("event: address {} removed from {}", a.addr, a.ifindex)
        }
        Event::RouteAdded(r) if r.is_default() => {
            log::debug!("event: default route added: {r:?}")
        }
        Event::RouteRemoved(r) if r.is_default() => {
            log::debug!("event: default route removed: {r:?}")
        }
        Event::NmDevice(d) => log::debug!(
            "event: NetworkManager device {} state {}",
            d.interface,
            mptcp_agent_core::nm_state::name(d.state)
        ),
        Event::NmDevices(list) => log::debug!("event: NetworkManager devices ({})", list.len()),
        _ => {}
    }
}
