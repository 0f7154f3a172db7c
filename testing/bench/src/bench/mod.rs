// SPDX-License-Identifier: MIT OR Apache-2.0
//! One lab per contender and the scenarios run against it.
//!
//! Times are taken on this process's monotonic clock: the action's timestamp is taken just
//! before the one `ip`/`nmcli`/`ss` call that performs it; the reaction's timestamp comes
//! from the [`Observer`] (event arrival, or the endpoint dump that first saw the change).

mod cycles;
mod scenarios;

pub use cycles::Cycles;

use std::{
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use mptcp_genl::EventKind;
use mptcp_lab::{
    traffic::{ClientConfig, Role},
    Lab, LabOptions, Node, TrafficServer, Uplink,
};

use crate::{
    holder::{Holder, HolderServer},
    model::{Contender, ContenderResult, RunParams, Timeline},
    observer::{is_sub_closed, is_sub_established, Ep, Observer},
    stats::Value,
    sys,
};

pub const HOLDER_PORT: u16 = 6000;
pub const TRAFFIC_PORT: u16 = 5000;
/// The uplink that is cut, reset and flapped. The initial subflow goes out of the other
/// one (wlan0 has the lower route metric), so the flapped path always carries a join.
pub const FLAPPED: &str = "wwan0";
pub const STEADY: &str = "wlan0";
/// How long the live connection's join has been up when the reset scenario kills it.
pub const RESET_AFTER_JOIN: Duration = Duration::from_millis(1500);
/// How the error of a lab that someone else tore down begins.
pub const DESTROYED_FROM_OUTSIDE: &str = "the lab was destroyed from outside";

/// What a run needs besides its parameters.
pub struct Settings {
    pub params: RunParams,
    /// The agent binary, or why it cannot run.
    pub agent: Result<PathBuf, String>,
    /// The agent's config for the lab, with `@NM_ETC@` standing for the lab's
    /// NetworkManager config directory.
    pub agent_config: String,
    pub results: PathBuf,
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn since_ms(t: Instant, t0: Instant) -> f64 {
    ms(t.saturating_duration_since(t0))
}

pub fn log(msg: impl AsRef<str>) {
    eprintln!("[bench {}] {}", chrono_now(), msg.as_ref());
}

fn chrono_now() -> String {
    // UTC wall clock to the millisecond, for log lines.
    jiff::Timestamp::now().strftime("%H:%M:%S%.3f").to_string()
}

/// The lab options a contender runs with (NM's default carrier-wait: 6 s).
pub fn lab_options(c: Contender, p: &RunParams) -> LabOptions {
    let mut o = LabOptions::default()
        .nm_mptcp(c == Contender::Nm)
        .rate(Some(&p.rate));
    if p.carrier_wait_ms != 6000 {
        o = o.carrier_wait_ms(p.carrier_wait_ms);
    }
    o
}

/// A live connection of the holder and its MPTCP token.
pub struct Live {
    pub holder: Holder,
    pub token: u32,
    /// The flapped uplink's join was established.
    pub joined: bool,
    /// When it was.
    pub joined_at: Option<Instant>,
}

/// The `$NOTIFY_SOCKET` the agent is started with: it sends `READY=1` (sd_notify) after
/// its first reconciliation, which times its start and its re-sync after a restart. A
/// thread stamps every datagram as it arrives.
pub struct Notify {
    path: PathBuf,
    got: Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notify {
    fn bind(path: PathBuf) -> Result<Notify, String> {
        let _ = std::fs::remove_file(&path);
        let sock = std::os::unix::net::UnixDatagram::bind(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, st) = (Arc::clone(&got), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let t = Instant::now();
                    if let Ok(mut v) = g.lock() {
                        v.push((t, String::from_utf8_lossy(&buf[..n]).into_owned()));
                    }
                }
            }
        });
        Ok(Notify {
            path,
            got,
            stop,
            thread: Some(thread),
        })
    }

    /// When the first `READY=1` at or after `since` arrived, waiting at most until
    /// `since + timeout`.
    pub fn wait_ready(&self, since: Instant, timeout: Duration) -> Option<Instant> {
        let end = since + timeout;
        loop {
            let found = self.got.lock().ok().and_then(|v| {
                v.iter()
                    .find(|(t, m)| *t >= since && m.lines().any(|l| l == "READY=1"))
                    .map(|(t, _)| *t)
            });
            if found.is_some() {
                return found;
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Session<'a> {
    pub c: Contender,
    pub s: &'a Settings,
    pub obs: Observer,
    pub holder_srv: HolderServer,
    pub traffic_srv: TrafficServer,
    pub steady: Uplink,
    pub flap: Uplink,
    pub timeout: Duration,
    /// The agent's sd_notify socket (agent sessions only).
    pub notify: Option<Notify>,
    /// Last field: dropped after the threads that live in its namespaces.
    pub lab: Lab,
}

impl<'a> Session<'a> {
    /// Bring up the lab for `c`, with the observer and both servers running. The manager
    /// is running afterwards (NM from the lab; mptcpd and the agent started here).
    pub fn open(c: Contender, s: &'a Settings) -> Result<Session<'a>, String> {
        let lab = Lab::up(lab_options(c, &s.params)).map_err(|e| format!("lab up: {e}"))?;
        let obs = Observer::start(lab.dev_ns()).map_err(|e| e.to_string())?;
        let holder_srv = HolderServer::start(
            lab.server_ns(),
            SocketAddr::from((lab.server_addr4(), HOLDER_PORT)),
        )
        .map_err(|e| e.to_string())?;
        let traffic_srv = lab
            .traffic_server(TRAFFIC_PORT)
            .map_err(|e| format!("traffic server: {e}"))?;
        let steady = lab.uplink(STEADY).map_err(|e| e.to_string())?.clone();
        let flap = lab.uplink(FLAPPED).map_err(|e| e.to_string())?.clone();
        let notify = if c == Contender::Agent {
            Some(Notify::bind(lab.dir().join("notify.sock"))?)
        } else {
            None
        };
        let sess = Session {
            c,
            s,
            obs,
            holder_srv,
            traffic_srv,
            steady,
            flap,
            timeout: Duration::from_secs_f64(s.params.timeout_s),
            notify,
            lab,
        };
        if c == Contender::Agent {
            sess.write_agent_config()?;
        }
        Ok(sess)
    }

    fn agent_config_path(&self) -> PathBuf {
        self.lab.dir().join("agent.toml")
    }

    fn write_agent_config(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let etc = self.lab.dir().join("nm/etc");
        let text = self
            .s
            .agent_config
            .replace("@NM_ETC@", &etc.to_string_lossy());
        let path = self.agent_config_path();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let bin = self.s.agent.as_ref().map_err(Clone::clone)?;
        let out = Command::new(bin)
            .arg("check-config")
            .arg(&path)
            .output()
            .map_err(|e| format!("{} check-config: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "mptcp-agent check-config rejects the lab config: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    // --- the manager -----------------------------------------------------------------------

    pub fn start_manager(&self) -> Result<(), String> {
        let r = match self.c {
            Contender::Nm => self.lab.nm_start(),
            Contender::Mptcpd => self.lab.mptcpd_start(),
            Contender::Agent => {
                let bin = self.s.agent.as_ref().map_err(Clone::clone)?;
                let cfg = self.agent_config_path();
                let notify = self
                    .notify
                    .as_ref()
                    .map(|n| format!("NOTIFY_SOCKET={}", n.path.display()))
                    .unwrap_or_default();
                // `env` execs the agent: the lab's pid is the agent's.
                self.lab
                    .spawn(
                        Node::Device,
                        "agent",
                        &[
                            "env",
                            &notify,
                            &bin.to_string_lossy(),
                            "run",
                            "--config",
                            &cfg.to_string_lossy(),
                        ],
                    )
                    .map(drop)
            }
        };
        r.map_err(|e| format!("starting {}: {e}", self.c.id()))
    }

    pub fn stop_manager(&self) -> Result<(), String> {
        let r = match self.c {
            Contender::Nm => self.lab.nm_stop(),
            Contender::Mptcpd => self.lab.mptcpd_stop(),
            Contender::Agent => self.lab.stop("agent"),
        };
        r.map_err(|e| format!("stopping {}: {e}", self.c.id()))
    }

    pub fn manager_pid(&self) -> Option<u32> {
        self.lab.pid(self.c.process())
    }

    fn pid_file(&self) -> PathBuf {
        self.lab
            .dir()
            .join("pids")
            .join(format!("{}.pid", self.c.process()))
    }

    /// The end of the manager's log (for "it died" reports).
    pub fn manager_log_tail(&self) -> String {
        let name = match self.c {
            Contender::Nm => "nm",
            Contender::Mptcpd => "mptcpd",
            Contender::Agent => "agent",
        };
        let path = self.lab.dir().join("log").join(format!("{name}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    // --- predicates ------------------------------------------------------------------------

    fn has(eps: &[Ep], addr: IpAddr) -> bool {
        eps.iter().any(|e| e.addr == addr)
    }

    /// Every uplink has an endpoint for its v4 and its v6 address.
    pub fn all_present(&self) -> impl Fn(&[Ep]) -> bool {
        let want: Vec<IpAddr> = [&self.steady, &self.flap]
            .iter()
            .flat_map(|u| [IpAddr::from(u.addr4), IpAddr::from(u.addr6)])
            .collect();
        move |eps: &[Ep]| want.iter().all(|a| Self::has(eps, *a))
    }

    /// The flapped uplink has no endpoint left.
    pub fn flap_withdrawn(&self) -> impl Fn(&[Ep]) -> bool {
        let (a4, a6) = (IpAddr::from(self.flap.addr4), IpAddr::from(self.flap.addr6));
        move |eps: &[Ep]| !Self::has(eps, a4) && !Self::has(eps, a6)
    }

    /// The flapped uplink has both its endpoints.
    pub fn flap_present(&self) -> impl Fn(&[Ep]) -> bool {
        let (a4, a6) = (IpAddr::from(self.flap.addr4), IpAddr::from(self.flap.addr6));
        move |eps: &[Ep]| Self::has(eps, a4) && Self::has(eps, a6)
    }

    /// All four namespaces of the lab still exist (a concurrent `testing/test.sh` deletes
    /// namespaces that appeared during its run, which tears down the lab's veths).
    pub fn lab_intact(&self) -> Result<(), String> {
        for node in [Node::Device, Node::Router, Node::Nat, Node::Server] {
            let ns = self.lab.ns(node);
            if !Path::new("/run/netns").join(ns).exists() {
                return Err(format!(
                    "{DESTROYED_FROM_OUTSIDE}: namespace {ns} is gone (another process deleted it)"
                ));
            }
        }
        Ok(())
    }

    /// Wait until every uplink has its endpoints (the state each repetition starts from).
    pub fn ensure_steady(&self) -> Result<(), String> {
        self.lab_intact()?;
        if let Some(e) = self.obs.error() {
            return Err(format!("the observer failed: {e}"));
        }
        if self.manager_pid().is_none() {
            return Err(format!(
                "{} is not running; its log ends:\n{}",
                self.c.id(),
                self.manager_log_tail()
            ));
        }
        let pred = self.all_present();
        self.obs
            .wait_endpoints(Instant::now(), self.timeout, pred)
            .map(drop)
            .ok_or_else(|| {
                format!(
                    "endpoints not on all uplinks within {:?} (have {:?})",
                    self.timeout,
                    self.obs.endpoints()
                )
            })
    }

    /// Open a live (trickling) MPTCP connection and wait for its join over the flapped
    /// uplink.
    pub fn live(&self) -> Result<Live, String> {
        let since = Instant::now();
        let server = SocketAddr::from((self.lab.server_addr4(), HOLDER_PORT));
        let holder = Holder::connect(self.lab.dev_ns(), server).map_err(|e| e.to_string())?;
        let port = holder.local.port();
        let (_, created) = self
            .obs
            .wait_event(since, Duration::from_secs(5), |e| {
                e.kind == EventKind::Created && e.sport == Some(port)
            })
            .ok_or("no CREATED event for the live connection")?;
        let token = created.token.ok_or("CREATED event without a token")?;
        let flap4 = IpAddr::from(self.flap.addr4);
        let joined_at = self
            .obs
            .wait_event(since, self.timeout, |e| is_sub_established(e, token, flap4))
            .map(|(t, _)| t);
        Ok(Live {
            holder,
            token,
            joined: joined_at.is_some(),
            joined_at,
        })
    }

    /// Subflows of the steady uplink closed, and whole connections closed, in a window.
    pub fn collateral(&self, token: u32, from: Instant, to: Instant) -> (usize, usize) {
        let steady4 = IpAddr::from(self.steady.addr4);
        let evs = self.obs.events_between(from, to);
        let sub = evs
            .iter()
            .filter(|(_, e)| is_sub_closed(e, token, steady4))
            .count();
        let conn = evs
            .iter()
            .filter(|(_, e)| e.kind == EventKind::Closed && e.token == Some(token))
            .count();
        (sub, conn)
    }

    /// Subflows of the flapped uplink that closed since `from` (failed joins), for notes.
    fn join_failures(&self, token: u32, from: Instant) -> String {
        let flap4 = IpAddr::from(self.flap.addr4);
        self.obs
            .events_between(from, Instant::now())
            .iter()
            .filter(|(_, e)| is_sub_closed(e, token, flap4))
            .map(|(t, e)| {
                format!(
                    "SF_CLOSED error {} at +{:.0} ms",
                    e.error.unwrap_or(0),
                    since_ms(*t, from)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn note_collateral(&self, r: &mut ContenderResult, live: &Live, from: Instant) {
        let (sub, conn) = self.collateral(live.token, from, Instant::now());
        r.add_fact("healthy_subflows_closed", sub as f64);
        r.add_fact("live_connections_lost", conn as f64);
        if let Some(e) = live.holder.error() {
            r.add_fact("live_connection_errors", 1.0);
            r.errors.push(format!("live connection: {e}"));
        }
    }
}

pub fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

pub struct WindowMetrics {
    pub before: Value,
    pub during: Value,
    pub after: Value,
    pub recovery: Value,
}

/// Means of the per-second figures before the cut (from second 2: slow start and the join
/// are over), during it, and from 2 s after carrier back; and the seconds from carrier back
/// to the first second at ≥ 90 % of the before level.
pub fn window_metrics(mbps: &[f64], cut_start: f64, cut_end: f64) -> WindowMetrics {
    let mean = |from: f64, to: f64| -> Value {
        let v: Vec<f64> = mbps
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as f64 >= from && (*i + 1) as f64 <= to)
            .map(|(_, x)| *x)
            .collect();
        if v.is_empty() {
            Value::NotApplicable
        } else {
            Value::Num((v.iter().sum::<f64>() / v.len() as f64 * 1000.0).round() / 1000.0)
        }
    };
    let before = mean(2.0, cut_start.floor());
    let during = mean(cut_start.ceil(), cut_end.floor());
    let after = mean(cut_end.ceil() + 2.0, mbps.len() as f64);
    let recovery = match before {
        Value::Num(b) => Value::from_opt(
            mbps.iter()
                .enumerate()
                .find(|(i, x)| *i as f64 >= cut_end.floor() && **x >= 0.9 * b)
                .map(|(i, _)| ((i + 1) as f64 - cut_end).max(0.0)),
        ),
        _ => Value::NotApplicable,
    };
    WindowMetrics {
        before,
        during,
        after,
        recovery,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_clock_is_hh_mm_ss_millis() {
        let t = chrono_now();
        assert_eq!(t.len(), 12, "{t}");
        assert_eq!((&t[2..3], &t[5..6], &t[8..9]), (":", ":", "."), "{t}");
        assert!(t.chars().filter(|c| c.is_ascii_digit()).count() == 9, "{t}");
    }

    #[test]
    fn windows_of_a_failover() {
        // 0..10 s: 36, cut 10..20: 18, recovery at second 22, 36 afterwards.
        let mut v = vec![20.0, 36.0];
        v.extend(std::iter::repeat(36.0).take(8));
        v.extend(std::iter::repeat(18.0).take(10));
        v.extend([18.0, 20.0, 35.0]);
        v.extend(std::iter::repeat(36.0).take(7));
        let m = window_metrics(&v, 10.0, 20.0);
        assert_eq!(m.before, Value::Num(36.0));
        assert_eq!(m.during, Value::Num(18.0));
        assert_eq!(m.recovery, Value::Num(3.0));
        match m.after {
            Value::Num(x) => assert!((x - 35.875).abs() < 1e-9, "{x}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_recovery_is_never() {
        let v = vec![36.0, 36.0, 36.0, 36.0, 18.0, 18.0, 18.0, 18.0];
        let m = window_metrics(&v, 4.0, 6.0);
        assert_eq!(m.recovery, Value::Never);
    }
}
