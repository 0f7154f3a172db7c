// SPDX-License-Identifier: MIT OR Apache-2.0
//! What the kernel does, with timestamps: MPTCP path-manager events as they arrive (event
//! driven, `mptcp_pm_events`) and the endpoint table. The kernel sends no event when an
//! endpoint is added or deleted, so the table is dumped every [`POLL`]; a change is stamped
//! with the start of the dump that first saw it (at most one poll interval late).
//!
//! Everything runs in one thread inside the device namespace with its own tokio runtime;
//! the benchmark thread waits on a condition variable for the records it needs.

use std::{
    io,
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use futures::StreamExt;
use mptcp_genl::{Endpoint, EventKind, PmEvent, PmHandle};

/// Endpoint table poll interval.
pub const POLL: Duration = Duration::from_millis(2);

/// One endpoint as the benchmark compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ep {
    pub id: u8,
    pub addr: IpAddr,
    pub flags: u32,
    pub ifindex: Option<u32>,
}

impl From<&Endpoint> for Ep {
    fn from(e: &Endpoint) -> Ep {
        Ep {
            id: e.id,
            addr: e.addr,
            flags: e.flags.bits(),
            ifindex: e.ifindex,
        }
    }
}

#[derive(Default)]
struct Log {
    /// Endpoint table changes (the first entry is the initial table).
    endpoints: Vec<(Instant, Vec<Ep>)>,
    events: Vec<(Instant, PmEvent)>,
    events_lost: u32,
    error: Option<String>,
}

struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A panic in the observer thread must not take the benchmark down with it.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running observer of one network namespace; stops when dropped.
pub struct Observer {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<io::Result<()>>>>,
}

impl Observer {
    /// Start observing namespace `ns`; returns once the first endpoint dump is in.
    pub fn start(ns: &str) -> io::Result<Observer> {
        let shared = Arc::new(Shared {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
        let thread = mptcp_lab::netns::run_in_netns(ns, move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let res = rt.block_on(observe(&sh, &st));
            if let Err(e) = &res {
                sh.lock().error = Some(e.clone());
                sh.changed.notify_all();
            }
            res.map_err(io::Error::other)
        })?;
        let obs = Observer {
            shared,
            stop,
            thread: Some(thread),
        };
        let end = Instant::now() + Duration::from_secs(10);
        let mut log = obs.shared.lock();
        while log.endpoints.is_empty() && log.error.is_none() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::other("observer: no endpoint dump within 10 s"));
            }
            log = obs
                .shared
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if let Some(e) = &log.error {
            return Err(io::Error::other(format!("observer: {e}")));
        }
        drop(log);
        Ok(obs)
    }

    /// The endpoint table as last seen.
    pub fn endpoints(&self) -> Vec<Ep> {
        self.shared
            .lock()
            .endpoints
            .last()
            .map(|(_, e)| e.clone())
            .unwrap_or_default()
    }

    /// Events the kernel dropped because the socket buffer was full (should stay 0).
    pub fn events_lost(&self) -> u32 {
        self.shared.lock().events_lost
    }

    /// First time at or after `since` when the endpoint table satisfied `pred`, waiting at
    /// most until `since + timeout`. If the table already satisfied it at `since`, that is
    /// `since` itself.
    pub fn wait_endpoints(
        &self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&[Ep]) -> bool,
    ) -> Option<Instant> {
        self.wait(since + timeout, |log| {
            let after = log.endpoints.partition_point(|(t, _)| *t <= since);
            let before = after.checked_sub(1);
            if let Some(i) = before {
                if pred(&log.endpoints[i].1) {
                    return Some(since);
                }
            }
            let from = before.map_or(0, |i| i + 1);
            log.endpoints[from..]
                .iter()
                .find(|(_, eps)| pred(eps))
                .map(|(t, _)| *t)
        })
    }

    /// First time at or after `since` from which the endpoint table satisfied `pred` for
    /// `hold` without interruption (waiting at most until `since + timeout + hold`).
    pub fn wait_endpoints_stable(
        &self,
        since: Instant,
        timeout: Duration,
        hold: Duration,
        pred: impl Fn(&[Ep]) -> bool,
    ) -> Option<Instant> {
        let deadline = since + timeout;
        let mut from = since;
        loop {
            let t = self.wait_endpoints(from, deadline.saturating_duration_since(from), &pred)?;
            let end = t + hold;
            let now = Instant::now();
            if end > now {
                std::thread::sleep(end - now);
            }
            let log = self.shared.lock();
            let a = log.endpoints.partition_point(|(r, _)| *r <= t);
            let b = log.endpoints.partition_point(|(r, _)| *r <= end);
            match log.endpoints[a..b].iter().find(|(_, eps)| !pred(eps)) {
                None => return Some(t),
                Some((broke, _)) => from = *broke,
            }
            if from >= deadline {
                return None;
            }
        }
    }

    /// First event at or after `since` matching `pred`, waiting until `since + timeout`.
    pub fn wait_event(
        &self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&PmEvent) -> bool,
    ) -> Option<(Instant, PmEvent)> {
        self.wait(since + timeout, |log| {
            // Records are appended in time order by one thread.
            let from = log.events.partition_point(|(t, _)| *t < since);
            log.events[from..].iter().find(|(_, e)| pred(e)).cloned()
        })
    }

    /// Events received in `[from, to)`.
    pub fn events_between(&self, from: Instant, to: Instant) -> Vec<(Instant, PmEvent)> {
        let log = self.shared.lock();
        let a = log.events.partition_point(|(t, _)| *t < from);
        let b = log.events.partition_point(|(t, _)| *t < to);
        log.events[a..b.max(a)].to_vec()
    }

    /// The endpoint table in force at `from` (stamped `from`), then every change before `to`.
    pub fn endpoints_between(&self, from: Instant, to: Instant) -> Vec<(Instant, Vec<Ep>)> {
        let log = self.shared.lock();
        let a = log.endpoints.partition_point(|(t, _)| *t <= from);
        let b = log.endpoints.partition_point(|(t, _)| *t < to).max(a);
        let first = a.checked_sub(1).map(|i| (from, log.endpoints[i].1.clone()));
        first
            .into_iter()
            .chain(log.endpoints[a..b].iter().cloned())
            .collect()
    }

    /// Events from position `*cursor` on; advances the cursor (for incremental readers).
    pub fn events_from(&self, cursor: &mut usize) -> Vec<(Instant, PmEvent)> {
        let log = self.shared.lock();
        let from = (*cursor).min(log.events.len());
        *cursor = log.events.len();
        log.events[from..].to_vec()
    }

    /// Whether the observer thread failed (its reason).
    pub fn error(&self) -> Option<String> {
        self.shared.lock().error.clone()
    }

    fn wait<T>(&self, deadline: Instant, mut probe: impl FnMut(&Log) -> Option<T>) -> Option<T> {
        let mut log = self.shared.lock();
        loop {
            if let Some(v) = probe(&log) {
                return Some(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || log.error.is_some() {
                return None;
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn observe(sh: &Shared, stop: &AtomicBool) -> Result<(), String> {
    let pm = PmHandle::connect()
        .await
        .map_err(|e| format!("mptcp_pm: {e}"))?;
    let mut events = pm
        .subscribe_events()
        .map_err(|e| format!("mptcp_pm events: {e}"))?;
    // Bursts (10,000 link events, many subflows) must not overflow the socket.
    events
        .set_receive_buffer(4 << 20)
        .map_err(|e| format!("events buffer: {e}"))?;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Vec<Ep>> = None;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            ev = events.next() => {
                let now = Instant::now();
                match ev {
                    Some(Ok(ev)) => {
                        sh.lock().events.push((now, ev));
                        sh.changed.notify_all();
                    }
                    Some(Err(mptcp_genl::Error::EventsLost)) => sh.lock().events_lost += 1,
                    Some(Err(mptcp_genl::Error::Decode(_))) => {}
                    Some(Err(e)) => return Err(format!("events: {e}")),
                    None => return Err("event stream ended".into()),
                }
            }
            _ = tick.tick() => {
                let t = Instant::now();
                let mut eps: Vec<Ep> = pm
                    .endpoints()
                    .await
                    .map_err(|e| format!("endpoint dump: {e}"))?
                    .iter()
                    .map(Ep::from)
                    .collect();
                eps.sort();
                if last.as_ref() != Some(&eps) {
                    last = Some(eps.clone());
                    sh.lock().endpoints.push((t, eps));
                    sh.changed.notify_all();
                }
            }
        }
    }
    Ok(())
}

/// Event predicates used by the scenarios.
pub fn is_sub_established(e: &PmEvent, token: u32, saddr: IpAddr) -> bool {
    e.kind == EventKind::SubEstablished && e.token == Some(token) && e.saddr == Some(saddr)
}

pub fn is_sub_closed(e: &PmEvent, token: u32, saddr: IpAddr) -> bool {
    e.kind == EventKind::SubClosed && e.token == Some(token) && e.saddr == Some(saddr)
}
