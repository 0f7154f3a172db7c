// SPDX-License-Identifier: MIT OR Apache-2.0
//! One lab per contender and the scenarios run against it.
//!
//! Times are taken on this process's monotonic clock: the action's timestamp is taken just
//! before the one `ip`/`nmcli`/`ss` call that performs it; the reaction's timestamp comes
//! from the [`Observer`] (event arrival, or the endpoint dump that first saw the change).

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
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = t.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        t.subsec_millis()
    )
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

    /// All four namespaces of the lab still exist (a concurrent `tools/test.sh` deletes
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

    // --- scenarios -------------------------------------------------------------------------

    /// Manager started (forked) → endpoints on every uplink. The manager is stopped, the
    /// endpoints flushed, and the manager started again for every repetition.
    pub fn start_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.stop_manager()?;
        self.lab
            .dev_ip(&["mptcp", "endpoint", "flush"])
            .map_err(|e| e.to_string())?;
        self.obs
            .wait_endpoints(Instant::now(), Duration::from_secs(2), |e| e.is_empty())
            .ok_or("endpoints still there after flush")?;
        let pid_file = self.pid_file();
        let pred = self.all_present();
        let value = std::thread::scope(|sc| -> Result<(Value, Option<Value>), String> {
            let starter = sc.spawn(|| self.start_manager());
            let end = Instant::now() + Duration::from_secs(30);
            let forked = loop {
                if let Some(t) = sys::mtime_instant(&pid_file) {
                    break Some(t);
                }
                if Instant::now() > end || starter.is_finished() && !pid_file.exists() {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            let v = forked.map(|t0| {
                let eps = Value::from_opt(
                    self.obs
                        .wait_endpoints(t0, self.timeout, &pred)
                        .map(|t| since_ms(t, t0)),
                );
                let ready = self.notify.as_ref().map(|n| {
                    Value::from_opt(n.wait_ready(t0, self.timeout).map(|t| since_ms(t, t0)))
                });
                (eps, ready)
            });
            let started = starter
                .join()
                .map_err(|_| "manager start thread panicked".to_string())?;
            started?;
            v.ok_or_else(|| "the lab recorded no pid for the manager".into())
        })?;
        r.push("start_endpoints_ms", rep, value.0, None);
        if let Some(ready) = value.1 {
            r.push("start_ready_ms", rep, ready, None);
        }
        Ok(())
    }

    /// Carrier cut from the far side of the flapped uplink with a live connection: time to
    /// the endpoint withdrawal; the cut lasts until 1 s after that (or the time limit);
    /// then carrier back: time to the endpoint's return and to the new join.
    pub fn carrier_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let live = self.live()?;
        if !live.joined {
            r.add_fact("live_connection_without_join", 1.0);
        }
        let flap4 = IpAddr::from(self.flap.addr4);
        let t0 = Instant::now();
        self.lab
            .carrier(&self.flap.name, false)
            .map_err(|e| e.to_string())?;
        let withdrawn = self
            .obs
            .wait_endpoints(t0, self.timeout, self.flap_withdrawn());
        r.push(
            "carrier_withdraw_ms",
            rep,
            Value::from_opt(withdrawn.map(|t| since_ms(t, t0))),
            None,
        );
        if withdrawn.is_some() {
            std::thread::sleep(Duration::from_secs(1));
        }
        let t1 = Instant::now();
        self.lab
            .carrier(&self.flap.name, true)
            .map_err(|e| e.to_string())?;
        let back = if withdrawn.is_some() {
            Value::from_opt(
                self.obs
                    .wait_endpoints(t1, self.timeout, self.flap_present())
                    .map(|t| since_ms(t, t1)),
            )
        } else {
            Value::NotApplicable
        };
        r.push(
            "carrier_back_endpoint_ms",
            rep,
            back,
            withdrawn.is_none().then(|| "never withdrawn".to_string()),
        );
        let sf = self
            .obs
            .wait_event(t1, self.timeout, |e| {
                is_sub_established(e, live.token, flap4)
            })
            .map(|(t, _)| since_ms(t, t1));
        let failed_joins = self.join_failures(live.token, t1);
        let note = match (sf, withdrawn) {
            (None, None) => Some("old subflow kept, no new join".to_string()),
            _ if !failed_joins.is_empty() => Some(failed_joins),
            _ => None,
        };
        r.push("carrier_back_subflow_ms", rep, Value::from_opt(sf), note);
        self.note_collateral(r, &live, t0);
        Ok(())
    }

    /// `ss -K` on the server for the flapped uplink's subflow of a live connection → a new
    /// join from that uplink.
    pub fn reset_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let live = self.live()?;
        if !live.joined {
            r.add_fact("live_connection_without_join", 1.0);
            r.push(
                "reset_reestablish_ms",
                rep,
                Value::NotApplicable,
                Some("the live connection never joined over the flapped uplink".into()),
            );
            return Ok(());
        }
        // A subflow that lives on for a while and is then reset, as in the field. A join
        // reset the moment it is up is what a middlebox that kills joins does, and a
        // manager is right to back off from that (the agent does, for 1 s of life).
        if let Some(t) = live.joined_at {
            sleep_until(t + RESET_AFTER_JOIN);
        }
        let flap4 = IpAddr::from(self.flap.addr4);
        let seen = self.flap.seen4.to_string();
        let sport = format!(":{HOLDER_PORT}");
        let t0 = Instant::now();
        self.lab
            .kill_subflows(&["dst", &seen, "and", "sport", "=", &sport])
            .map_err(|e| e.to_string())?;
        if self
            .obs
            .wait_event(t0, Duration::from_secs(2), |e| {
                is_sub_closed(e, live.token, flap4)
            })
            .is_none()
        {
            return Err("ss -K did not close the subflow".into());
        }
        let re = self
            .obs
            .wait_event(t0, self.timeout, |e| {
                is_sub_established(e, live.token, flap4)
            })
            .map(|(t, _)| since_ms(t, t0));
        let failed = self.join_failures(live.token, t0);
        // The first SF_CLOSED is the reset itself.
        let retries = failed.matches("SF_CLOSED").count().saturating_sub(1);
        let note = (retries > 0).then(|| format!("{retries} failed re-join(s): {failed}"));
        r.push("reset_reestablish_ms", rep, Value::from_opt(re), note);
        self.note_collateral(r, &live, t0);
        Ok(())
    }

    /// `nmcli connection down/up` of the flapped uplink, `n` times, with one live
    /// connection: does the join come back after each `up`?
    pub fn flaps(&self, n: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let mut live = self.live()?;
        let mut live_since = Instant::now();
        let flap4 = IpAddr::from(self.flap.addr4);
        for i in 0..n {
            if live.holder.error().is_some() {
                self.note_collateral(r, &live, live_since);
                live = self.live()?;
                live_since = Instant::now();
            }
            let t_down = Instant::now();
            self.lab
                .connection(&self.flap.name, false)
                .map_err(|e| e.to_string())?;
            let gone =
                self.obs
                    .wait_endpoints(t_down, Duration::from_secs(5), self.flap_withdrawn());
            if gone.is_none() {
                r.add_fact("flap_endpoint_not_withdrawn", 1.0);
            }
            std::thread::sleep(Duration::from_millis(300));
            let t_up = Instant::now();
            self.lab
                .connection(&self.flap.name, true)
                .map_err(|e| e.to_string())?;
            let join = self
                .obs
                .wait_event(t_up, self.timeout, |e| {
                    is_sub_established(e, live.token, flap4)
                })
                .map(|(t, _)| since_ms(t, t_up));
            let errs = self.join_failures(live.token, t_up);
            let note = match (join, errs.is_empty()) {
                (None, true) => Some("no join".to_string()),
                (_, false) => Some(errs),
                (Some(_), true) => None,
            };
            r.push("flap_join_ms", i, Value::from_opt(join), note);
            if (i + 1) % 10 == 0 {
                log(format!("  {}: {} of {n} flaps", self.c.id(), i + 1));
            }
        }
        self.note_collateral(r, &live, live_since);
        Ok(())
    }

    /// Upload over both uplinks; the flapped uplink's carrier is cut from `cut_start_s` to
    /// `cut_end_s`. The receiver's per-second figures make the timeline.
    pub fn throughput_rep(&self, rep: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let p = &self.s.params;
        let already = self.traffic_srv.finished().len();
        let t_start = Instant::now();
        let client = self
            .lab
            .spawn_traffic_client(ClientConfig::upload_for(
                self.lab.server_sockaddr(false, TRAFFIC_PORT),
                p.throughput_seconds,
            ))
            .map_err(|e| e.to_string())?;
        sleep_until(t_start + Duration::from_secs(p.cut_start_s));
        let t_cut = Instant::now();
        let cut = self.lab.carrier(&self.flap.name, false);
        sleep_until(t_start + Duration::from_secs(p.cut_end_s));
        let t_back = Instant::now();
        let back = self.lab.carrier(&self.flap.name, true);
        cut.and(back).map_err(|e| e.to_string())?;
        let sender = client
            .join()
            .map_err(|_| "traffic client panicked".to_string())?
            .map_err(|e| e.to_string())?;
        let finished = self
            .traffic_srv
            .wait_finished(already + 1, Duration::from_secs(60))
            .ok_or("the server saw no finished transfer")?;
        let recv = finished[already..]
            .iter()
            .rev()
            .find(|t| t.role == Role::Receiver)
            .ok_or("no receiver-side transfer")?
            .clone();
        let mbps: Vec<f64> = recv
            .intervals
            .iter()
            .filter(|iv| iv.end - iv.start >= 0.5)
            .map(|iv| (iv.mbps() * 1000.0).round() / 1000.0)
            .collect();
        let cut_start_s = t_cut.duration_since(t_start).as_secs_f64();
        let cut_end_s = t_back.duration_since(t_start).as_secs_f64();
        let m = window_metrics(&mbps, cut_start_s, cut_end_s);
        r.push("throughput_before_mbps", rep, m.before, None);
        r.push("throughput_during_mbps", rep, m.during, None);
        r.push("throughput_after_mbps", rep, m.after, None);
        r.push("throughput_recovery_s", rep, m.recovery, None);
        let error = sender.error.clone().or(recv.error.clone());
        r.timelines.push(Timeline {
            rep,
            mbps,
            cut_start_s,
            cut_end_s,
            ok: error.is_none(),
            error,
        });
        Ok(())
    }

    /// Resident memory of the manager (NetworkManager, mptcpd or the agent) idle, steady,
    /// with its endpoints in place: every contender in the same run, so the figures sit side
    /// by side.
    pub fn idle_memory(&self, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let pid = self.manager_pid().ok_or("manager not running")?;
        std::thread::sleep(Duration::from_secs(2));
        let (idle, _) = sys::rss_kib(pid).ok_or("no /proc status for the manager")?;
        r.push("rss_idle_kib", 0, Value::Num(idle as f64), None);
        Ok(())
    }

    /// Resident memory of the agent under a storm of `events` link events (the flapped
    /// uplink's carrier toggled from the far side), after [`Self::idle_memory`].
    pub fn storm(&self, events: usize, r: &mut ContenderResult) -> Result<(), String> {
        self.ensure_steady()?;
        let pid = self.manager_pid().ok_or("manager not running")?;
        std::thread::sleep(Duration::from_secs(2));
        let (idle, _) = sys::rss_kib(pid).ok_or("no /proc status for the manager")?;

        // One `ip -batch` of far-side carrier toggles. The kernel's linkwatch coalesces
        // toggles that come faster than it runs, so batches are repeated until the device
        // namespace has seen `events` link messages for the uplink (bounded in time).
        let batch = self.lab.dir().join("storm.batch");
        let mut text = String::new();
        for _ in 0..1000 {
            text.push_str(&format!("link set {} down\n", self.flap.peer_if));
            text.push_str(&format!("link set {} up\n", self.flap.peer_if));
        }
        std::fs::write(&batch, text).map_err(|e| e.to_string())?;

        let mut mon = Command::new("ip")
            .args(["-n", self.lab.dev_ns(), "-o", "monitor", "link"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ip monitor: {e}"))?;
        let seen = Arc::new(AtomicU64::new(0));
        let counter = {
            let seen = Arc::clone(&seen);
            let out = mon.stdout.take().ok_or("ip monitor: no stdout")?;
            // `3: wwan0@if5: <...>` for a veth, `3: wwan0: <...>` otherwise.
            let (name, veth) = (
                format!(": {}:", self.flap.name),
                format!(": {}@", self.flap.name),
            );
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line.contains(&name) || line.contains(&veth) {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        let cpu0 = sys::cpu_ms(pid);
        let t0 = Instant::now();
        let mut peak = idle;
        let mut toggles = 0usize;
        let limit = t0 + Duration::from_secs(300);
        let status: Result<(), String> = loop {
            if seen.load(Ordering::Relaxed) >= events as u64 {
                break Ok(());
            }
            if Instant::now() >= limit {
                break Err(format!(
                    "only {} link events after 300 s",
                    seen.load(Ordering::Relaxed)
                ));
            }
            let mut storm = match Command::new("ip")
                .args(["-n", &self.flap.peer_ns, "-batch"])
                .arg(&batch)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => break Err(format!("ip -batch: {e}")),
            };
            let st = loop {
                if let Some((rss, _)) = sys::rss_kib(pid) {
                    peak = peak.max(rss);
                }
                match storm.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) if Instant::now() < limit => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Ok(None) => {
                        let _ = storm.kill();
                        let _ = storm.wait();
                        break Err("ip -batch still running after 300 s".to_string());
                    }
                    Err(e) => break Err(e.to_string()),
                }
            };
            match st {
                Ok(st) if st.success() => toggles += 2000,
                Ok(st) => break Err(format!("ip -batch failed: {st}")),
                Err(e) => break Err(e),
            }
        };
        let t_end = Instant::now();
        // Right again = present and staying so for 500 ms (not one of the storm's last flips).
        let reconverge = self
            .obs
            .wait_endpoints_stable(
                t_end,
                self.timeout,
                Duration::from_millis(500),
                self.flap_present(),
            )
            .map(|t| since_ms(t, t_end));
        // Let the tail of the storm drain before reading the figures.
        let settle = t_end + Duration::from_secs(2);
        while Instant::now() < settle {
            if let Some((rss, _)) = sys::rss_kib(pid) {
                peak = peak.max(rss);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let cpu1 = sys::cpu_ms(pid);
        let after = sys::rss_kib(pid);
        let _ = mon.kill();
        let _ = mon.wait();
        let _ = counter.join();
        status?;
        let (after, hwm) = after.ok_or("the manager died during the storm")?;
        r.push("rss_peak_storm_kib", 0, Value::Num(peak as f64), None);
        r.push("rss_after_storm_kib", 0, Value::Num(after as f64), None);
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            r.push("storm_cpu_ms", 0, Value::Num(b - a), None);
        }
        r.push("storm_reconverge_ms", 0, Value::from_opt(reconverge), None);
        r.add_fact("storm_far_side_toggles", toggles as f64);
        r.add_fact(
            "storm_link_events_seen_in_device_ns",
            seen.load(Ordering::Relaxed) as f64,
        );
        r.add_fact("storm_seconds", ms(t_end - t0) / 1000.0);
        r.add_fact("rss_hwm_kib", hwm as f64);
        Ok(())
    }

    /// Copy the lab's logs (NM, mptcpd, the agent) into the results.
    pub fn save_logs(&self, dir: &Path) {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(rd) = std::fs::read_dir(self.lab.dir().join("log")) {
            for e in rd.flatten() {
                let _ = std::fs::copy(e.path(), dir.join(e.file_name()));
            }
        }
        let _ = std::fs::write(
            dir.join("endpoints-at-end.txt"),
            format!("{:#?}\n", self.obs.endpoints()),
        );
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
