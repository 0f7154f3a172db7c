// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's reliability soak: random link flaps (far-side carrier, admin down, nmcli
//! down/up, address change) on one uplink at a time, with a live MPTCP connection; rounds
//! of NetworkManager SIGKILL + restart and agent SIGKILL + restart in between; then exact
//! checks of the end state. Bounded in time; every wait is bounded too.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Args;
use mptcp_genl::EventKind;
use mptcp_lab::{support::Rng, Node, Uplink};
use serde::Serialize;

use crate::{
    bench::{log, ms, sleep_until, Live, Session, Settings},
    model::{Contender, RunParams},
    observer::Ep,
    sys,
};

#[derive(Args)]
pub struct SoakArgs {
    /// How long to flap, seconds (CI: 120; by hand: e.g. 7200 with --max-flaps 10000).
    #[arg(long, default_value_t = 120.0)]
    seconds: f64,
    /// Stop flapping after this many flaps even if time is left.
    #[arg(long, default_value_t = 10_000)]
    max_flaps: usize,
    /// Rounds of restarts spread over the soak; each round is one NetworkManager SIGKILL +
    /// restart and one agent SIGKILL + restart.
    #[arg(long, default_value_t = 2)]
    restarts: usize,
    /// Seed of the flap sequence (default: from the clock; printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Bound for re-syncing after a restart, ms.
    #[arg(long, default_value_t = 1000)]
    resync_ms: u64,
    /// Bound for a flapped uplink's subflow to come back, ms.
    #[arg(long, default_value_t = 5000)]
    recover_ms: u64,
    /// The agent binary (default: target/release/mptcp-agent).
    #[arg(long)]
    agent_bin: Option<PathBuf>,
    /// The agent's config (default: conf/agent.toml plus the lab's NM config paths).
    #[arg(long)]
    agent_config: Option<PathBuf>,
    /// Results directory (default: target/mptcp-bench/soak-UTC-TIMESTAMP).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Also write the summary into this docs directory's performance.md (between its
    /// mptcp-bench soak markers).
    #[arg(long)]
    docs: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum FlapKind {
    Carrier,
    Admin,
    Nmcli,
    Address,
}

const KINDS: [FlapKind; 4] = [
    FlapKind::Carrier,
    FlapKind::Admin,
    FlapKind::Nmcli,
    FlapKind::Address,
];

#[derive(Debug, Serialize)]
struct Flap {
    n: usize,
    uplink: String,
    kind: FlapKind,
    hold_ms: u64,
    /// Twice down/up back to back, without waiting for anything.
    burst: bool,
    /// Restore → the uplink's subflow on the live connection is back; `None` = missed.
    recovered_ms: Option<f64>,
    /// Errors of the uplink's subflows that closed from the flap's start to its recovery
    /// (0 = closed cleanly); a failed join shows here (113 EHOSTUNREACH, 110 ETIMEDOUT).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    closed_errors: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Restart {
    what: String,
    /// No subflow of the live connection closed or opened, endpoints unchanged.
    healthy_untouched: bool,
    /// The reaction bound after the restart, ms (see `detail`).
    resync_ms: Option<f64>,
    detail: String,
}

/// Recovery by flap kind and uplink.
#[derive(Debug, Serialize)]
struct KindStats {
    kind: String,
    uplink: String,
    flaps: usize,
    misses: usize,
    median_ms: Option<f64>,
    p95_ms: Option<f64>,
    max_ms: Option<f64>,
    /// Flaps in which a join from this uplink failed (SF_CLOSED with an error) first.
    failed_joins: usize,
}

#[derive(Debug, Serialize)]
struct SoakReport {
    started_utc: String,
    seed: u64,
    seconds_flapping: f64,
    flaps: usize,
    flaps_by_kind: BTreeMap<String, usize>,
    misses: usize,
    recovered_ms_median: Option<f64>,
    recovered_ms_p95: Option<f64>,
    by_kind: Vec<KindStats>,
    restarts: Vec<Restart>,
    checks: Vec<Check>,
    flap_log: Vec<Flap>,
    agent_warnings: usize,
    machine: crate::model::Machine,
}

/// The live connection's subflows, kept up to date from the observer's events.
struct Subflows {
    token: u32,
    cursor: usize,
    live: BTreeSet<(IpAddr, u16)>,
    closed: bool,
}

impl Subflows {
    fn new(token: u32) -> Self {
        Subflows {
            token,
            cursor: 0,
            live: BTreeSet::new(),
            closed: false,
        }
    }

    fn update(&mut self, sess: &Session) {
        for (_, e) in sess.obs.events_from(&mut self.cursor) {
            if e.token != Some(self.token) {
                continue;
            }
            let key = match (e.saddr, e.sport) {
                (Some(a), Some(p)) => (a, p),
                _ => continue,
            };
            match e.kind {
                EventKind::Established | EventKind::SubEstablished => {
                    self.live.insert(key);
                }
                EventKind::SubClosed => {
                    self.live.remove(&key);
                }
                EventKind::Closed => {
                    self.live.clear();
                    self.closed = true;
                }
                _ => {}
            }
        }
    }

    /// Live subflows from the uplink's configured IPv4 address.
    fn count_from(&self, u: &Uplink) -> usize {
        let a = IpAddr::from(u.addr4);
        self.live.iter().filter(|(s, _)| *s == a).count()
    }
}

/// Wait (bounded) until the live connection has a subflow from `u`'s configured address.
fn wait_subflow(sess: &Session, sf: &mut Subflows, u: &Uplink, bound: Duration) -> Option<f64> {
    let t0 = Instant::now();
    loop {
        sf.update(sess);
        if sf.count_from(u) > 0 {
            return Some(ms(t0.elapsed()));
        }
        if t0.elapsed() >= bound || sf.closed {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn other_addr(u: &Uplink) -> Ipv4Addr {
    let o = u.addr4.octets();
    Ipv4Addr::new(o[0], o[1], o[2], o[3].wrapping_add(1))
}

fn set_link(sess: &Session, u: &Uplink, kind: FlapKind, up: bool) -> Result<(), String> {
    let r = match kind {
        FlapKind::Carrier => sess.lab.carrier(&u.name, up),
        FlapKind::Admin => sess.lab.link(&u.name, up),
        FlapKind::Nmcli => sess.lab.connection(&u.name, up),
        FlapKind::Address => {
            // A runtime change of the applied connection: NM swaps the address only.
            let addr = if up { u.addr4 } else { other_addr(u) };
            sess.lab
                .nmcli(&[
                    "device",
                    "modify",
                    &u.name,
                    "ipv4.addresses",
                    &format!("{addr}/24"),
                ])
                .map(drop)
        }
    };
    r.map_err(|e| {
        format!(
            "{kind:?} {} {}: {e}",
            u.name,
            if up { "up" } else { "down" }
        )
    })
}

/// Normalised routing state: rules and routes of every table but `local`.
fn routing(sess: &Session) -> BTreeMap<String, Vec<String>> {
    let mut m = BTreeMap::new();
    for (key, args) in [
        ("rules4", vec!["-4", "rule", "show"]),
        ("rules6", vec!["-6", "rule", "show"]),
        ("routes4", vec!["-4", "route", "show", "table", "all"]),
        ("routes6", vec!["-6", "route", "show", "table", "all"]),
    ] {
        let text = sess.lab.dev_ip(&args).unwrap_or_else(|e| e.to_string());
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| {
                !l.contains("table local")
                    && !l.starts_with("fe80")
                    && !l.starts_with("multicast")
                    && !l.starts_with("local ")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        m.insert(key.to_string(), lines);
    }
    m
}

fn routing_diff(a: &BTreeMap<String, Vec<String>>, b: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    for (k, va) in a {
        let vb = b.get(k).cloned().unwrap_or_default();
        let sa: BTreeSet<&String> = va.iter().collect();
        let sb: BTreeSet<&String> = vb.iter().collect();
        for gone in sa.difference(&sb) {
            let _ = write!(out, "{k}: missing '{gone}'; ");
        }
        for extra in sb.difference(&sa) {
            let _ = write!(out, "{k}: extra '{extra}'; ");
        }
    }
    out
}

/// The endpoints the config asks for: every uplink's v4 and v6 address, `subflow`.
fn endpoints_exact(eps: &[Ep], uplinks: &[Uplink]) -> Result<(), String> {
    const SUBFLOW: u32 = 1 << 1;
    const SIGNAL_BACKUP_FULLMESH: u32 = 1 | (1 << 2) | (1 << 3);
    let want: BTreeSet<IpAddr> = uplinks
        .iter()
        .flat_map(|u| [IpAddr::from(u.addr4), IpAddr::from(u.addr6)])
        .collect();
    let have: BTreeSet<IpAddr> = eps.iter().map(|e| e.addr).collect();
    let mut problems = Vec::new();
    if have != want || eps.len() != want.len() {
        problems.push(format!("addresses {have:?} (want {want:?}, one each)"));
    }
    for e in eps {
        if e.flags & SUBFLOW == 0 || e.flags & SIGNAL_BACKUP_FULLMESH != 0 {
            problems.push(format!(
                "{} has flags {:#x} (want subflow)",
                e.addr, e.flags
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn ss_lines(sess: &Session, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["-tnH"];
    args.extend_from_slice(filter);
    sess.lab
        .exec(Node::Device, "ss", &args)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn kill9(pid: u32) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
    }
}

fn wait_gone(sess: &Session, name: &str) -> bool {
    mptcp_lab::wait_for(Duration::from_secs(5), || {
        sess.lab.pid(name).is_none().then_some(())
    })
    .is_some()
}

struct Soak<'s, 'a> {
    sess: &'s Session<'a>,
    args: &'s SoakArgs,
    live: Live,
    sf: Subflows,
    uplinks: Vec<Uplink>,
}

impl Soak<'_, '_> {
    fn wait_all_subflows(&mut self, bound: Duration) -> bool {
        let end = Instant::now() + bound;
        let ups = self.uplinks.clone();
        ups.iter().all(|u| {
            let left = end.saturating_duration_since(Instant::now());
            wait_subflow(self.sess, &mut self.sf, u, left).is_some()
        })
    }

    /// Quiet state before a restart: every endpoint in place, a subflow on every uplink.
    fn settle(&mut self) -> Result<(), String> {
        self.sess.ensure_steady()?;
        if !self.wait_all_subflows(Duration::from_millis(self.args.recover_ms)) {
            return Err(format!(
                "not every uplink has a subflow: {:?}",
                self.sf.live
            ));
        }
        // Let join retries and late events drain.
        std::thread::sleep(Duration::from_millis(300));
        self.sf.update(self.sess);
        Ok(())
    }

    /// Events of the live connection (subflows opened or closed) in a window.
    fn churn(&self, from: Instant, to: Instant) -> Vec<String> {
        self.sess
            .obs
            .events_between(from, to)
            .iter()
            .filter(|(_, e)| {
                e.token == Some(self.live.token)
                    && matches!(
                        e.kind,
                        EventKind::SubEstablished | EventKind::SubClosed | EventKind::Closed
                    )
            })
            .map(|(_, e)| format!("{e}"))
            .collect()
    }

    /// Agent SIGKILL + restart twice: once with nothing changed (healthy subflows must stay
    /// untouched), once with the flapped uplink's carrier cut while it was dead (it must
    /// withdraw that endpoint within the bound after its restart).
    fn agent_round(&mut self) -> Vec<Restart> {
        let mut out = Vec::new();
        let sess = self.sess;
        let bound = Duration::from_millis(self.args.resync_ms);
        // 1: nothing changed.
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let eps = sess.obs.endpoints();
            let pid = sess.manager_pid().ok_or("agent not running")?;
            kill9(pid);
            if !wait_gone(sess, "agent") {
                return Err("agent still alive 5 s after SIGKILL".into());
            }
            let t0 = Instant::now();
            sess.start_manager()?;
            let forked = sys::mtime_instant(&sess.lab.dir().join("pids/agent.pid")).unwrap_or(t0);
            // Re-synced: READY=1 (sent after its first reconciliation).
            let ready = sess
                .notify
                .as_ref()
                .and_then(|n| n.wait_ready(forked, Duration::from_secs(5)))
                .map(|t| ms(t.saturating_duration_since(forked)));
            sleep_until(forked + Duration::from_secs(2));
            let churn = self.churn(forked, Instant::now());
            let eps_after = sess.obs.endpoints();
            let same = eps == eps_after;
            let alive = sess.manager_pid().is_some();
            let in_time = ready.is_some_and(|r| r <= bound.as_secs_f64() * 1000.0);
            Ok(Restart {
                what: "agent SIGKILL + restart, nothing changed".into(),
                healthy_untouched: churn.is_empty() && same && alive && in_time,
                resync_ms: ready,
                detail: format!(
                    "READY=1 {} after the fork; subflow events in the 2 s after restart: {churn:?}; endpoints {}; agent {}",
                    fmt_opt(ready),
                    if same {
                        "unchanged".to_string()
                    } else {
                        format!("changed {eps:?} -> {eps_after:?}")
                    },
                    if alive { "running" } else { "DIED" }
                ),
            })
        })();
        out.push(
            r.unwrap_or_else(|e| failed_restart("agent SIGKILL + restart, nothing changed", e)),
        );
        // 2: carrier cut while the agent was dead.
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let flap = sess.flap.clone();
            let pid = sess.manager_pid().ok_or("agent not running")?;
            kill9(pid);
            if !wait_gone(sess, "agent") {
                return Err("agent still alive 5 s after SIGKILL".into());
            }
            sess.lab
                .carrier(&flap.name, false)
                .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(300));
            let t_before = Instant::now();
            sess.start_manager()?;
            let forked =
                sys::mtime_instant(&sess.lab.dir().join("pids/agent.pid")).unwrap_or(t_before);
            let withdrawn = sess
                .obs
                .wait_endpoints(forked, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t.saturating_duration_since(forked)));
            let steady4 = IpAddr::from(sess.steady.addr4);
            let steady_closed: Vec<String> = sess
                .obs
                .events_between(forked, Instant::now())
                .iter()
                .filter(|(_, e)| {
                    e.token == Some(self.live.token)
                        && e.kind == EventKind::SubClosed
                        && e.saddr == Some(steady4)
                })
                .map(|(_, e)| format!("{e}"))
                .collect();
            sess.lab
                .carrier(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            let ok_bound = withdrawn.is_some_and(|w| w <= bound.as_secs_f64() * 1000.0);
            Ok(Restart {
                what: format!("agent SIGKILL, {} carrier cut while it was down, restart", flap.name),
                healthy_untouched: steady_closed.is_empty() && back.is_some() && ok_bound,
                resync_ms: withdrawn,
                detail: format!(
                    "restart → {} endpoint withdrawn: {}; {} subflows closed: {steady_closed:?}; carrier back → subflow back: {}",
                    flap.name,
                    withdrawn.map_or("never within 5 s".into(), |w| format!("{w:.1} ms")),
                    sess.steady.name,
                    back.map_or("never".into(), |b| format!("{b:.1} ms"))
                ),
            })
        })();
        out.push(r.unwrap_or_else(|e| {
            failed_restart("agent SIGKILL + carrier cut while down + restart", e)
        }));
        out
    }

    /// NetworkManager SIGKILL; a carrier cut while it is gone (the agent must go on in
    /// kernel-only mode); NetworkManager back (nothing of the live connection may change);
    /// then `nmcli connection down` right away, which the agent must follow within the bound.
    fn nm_round(&mut self) -> Restart {
        let sess = self.sess;
        let bound = Duration::from_millis(self.args.resync_ms);
        let r = (|| -> Result<Restart, String> {
            self.settle()?;
            let flap = sess.flap.clone();
            sess.lab.nm_kill().map_err(|e| e.to_string())?;
            // Without NetworkManager: a cut must still withdraw, carrier back restore.
            let t_cut = Instant::now();
            sess.lab
                .carrier(&flap.name, false)
                .map_err(|e| e.to_string())?;
            let no_nm_withdraw = sess
                .obs
                .wait_endpoints(t_cut, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t - t_cut));
            std::thread::sleep(Duration::from_millis(300));
            sess.lab
                .carrier(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let no_nm_back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            self.settle()?;
            let eps = sess.obs.endpoints();
            let t_start = Instant::now();
            sess.lab.nm_start().map_err(|e| e.to_string())?;
            let t_ready = Instant::now();
            std::thread::sleep(Duration::from_secs(1));
            let churn = self.churn(t_start, Instant::now());
            let eps_after = sess.obs.endpoints();
            // Re-synced with NetworkManager: it follows a deactivation right away.
            let t_down = Instant::now();
            sess.lab
                .connection(&flap.name, false)
                .map_err(|e| e.to_string())?;
            let follow = sess
                .obs
                .wait_endpoints(t_down, Duration::from_secs(5), sess.flap_withdrawn())
                .map(|t| ms(t - t_down));
            sess.lab
                .connection(&flap.name, true)
                .map_err(|e| e.to_string())?;
            let back = wait_subflow(
                sess,
                &mut self.sf,
                &flap,
                Duration::from_millis(self.args.recover_ms),
            );
            let within = |v: Option<f64>| v.is_some_and(|w| w <= bound.as_secs_f64() * 1000.0);
            let untouched = churn.is_empty() && eps == eps_after;
            Ok(Restart {
                what: "NetworkManager SIGKILL + restart".into(),
                healthy_untouched: untouched && within(no_nm_withdraw) && no_nm_back.is_some() && within(follow) && back.is_some(),
                resync_ms: follow,
                detail: format!(
                    "without NM: carrier cut → withdrawn {}, back → subflow {}; NM start took {:.0} ms; \
                     live-connection events while NM came back: {churn:?}; endpoints {}; \
                     then nmcli down → withdrawn {}; up → subflow {}",
                    fmt_opt(no_nm_withdraw),
                    fmt_opt(no_nm_back),
                    ms(t_ready - t_start),
                    if eps == eps_after { "unchanged".to_string() } else { format!("changed {eps:?} -> {eps_after:?}") },
                    fmt_opt(follow),
                    fmt_opt(back)
                ),
            })
        })();
        r.unwrap_or_else(|e| failed_restart("NetworkManager SIGKILL + restart", e))
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("never".into(), |x| format!("{x:.1} ms"))
}

fn failed_restart(what: &str, e: String) -> Restart {
    Restart {
        what: what.into(),
        healthy_untouched: false,
        resync_ms: None,
        detail: format!("could not run: {e}"),
    }
}

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

pub fn run(args: SoakArgs) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root: the lab builds network namespaces and runs NetworkManager".into());
    }
    let agent = crate::find_agent(args.agent_bin.as_deref())?;
    let (stamp, human) = crate::utc_stamp();
    let results = args.results.clone().unwrap_or_else(|| {
        crate::target_dir()
            .join("mptcp-bench")
            .join(format!("soak-{stamp}"))
    });
    std::fs::create_dir_all(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let config_path = args
        .agent_config
        .clone()
        .unwrap_or_else(|| crate::repo_root().join("conf/agent.toml"));
    let agent_config = crate::lab_agent_config(
        &std::fs::read_to_string(&config_path)
            .map_err(|e| format!("{}: {e}", config_path.display()))?,
    );
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    log(format!(
        "soak: seed {seed}, {} s, results in {}",
        args.seconds,
        results.display()
    ));
    let settings = Settings {
        params: RunParams {
            quick: true,
            reps: 0,
            flaps: 0,
            throughput_reps: 0,
            throughput_seconds: 0,
            cut_start_s: 0,
            cut_end_s: 0,
            timeout_s: args.recover_ms as f64 / 1000.0,
            storm_events: 0,
            rate: "20mbit".into(),
            carrier_wait_ms: 6000,
            flapped_uplink: crate::bench::FLAPPED.into(),
            scenarios: Vec::new(),
        },
        agent: Ok(agent.clone()),
        agent_config,
        results: results.clone(),
    };
    let mut machine = sys::machine(Some(&agent), &crate::repo_root());
    let sess = Session::open(Contender::Agent, &settings)?;
    let report = soak(&sess, &args, seed, &human, &mut machine);
    sess.save_logs(&results.join("logs"));
    drop(sess);
    let report = report?;
    std::fs::write(
        results.join("soak.json"),
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    print_report(&report, &results);
    let md = markdown(&report, &args);
    std::fs::write(results.join("soak.md"), &md).map_err(|e| e.to_string())?;
    if let Some(docs) = &args.docs {
        crate::replace_between_markers(
            &docs.join("performance.md"),
            "<!-- mptcp-bench:soak:begin -->",
            "<!-- mptcp-bench:soak:end -->",
            &md,
        )?;
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    println!("{} passed, {} failed", report.checks.len() - failed, failed);
    if failed > 0 {
        return Err(format!("{failed} soak checks failed"));
    }
    Ok(())
}

/// The summary for docs/performance.md.
fn markdown(r: &SoakReport, args: &SoakArgs) -> String {
    let m = &r.machine;
    let failed = r.checks.iter().filter(|c| !c.ok).count();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Soak {} (`mptcp-bench soak --seconds {} --restarts {} --seed {}`): **{} of {} checks passed**. \
         {} flaps in {:.0} s ({}), {} misses; the flapped uplink's subflow was back after a median \
         of {} (p95 {}) from the restore.\n",
        r.started_utc,
        args.seconds,
        args.restarts,
        r.seed,
        r.checks.len() - failed,
        r.checks.len(),
        r.flaps,
        r.seconds_flapping,
        r.flaps_by_kind
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.misses,
        fmt_opt(r.recovered_ms_median),
        fmt_opt(r.recovered_ms_p95)
    );
    o.push_str("| flap | uplink | flaps | misses | subflow back: median / p95 / max | flaps with a failed join first |\n|---|---|---|---|---|---|\n");
    for k in &r.by_kind {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} / {} / {} | {} |",
            k.kind,
            k.uplink,
            k.flaps,
            k.misses,
            fmt_opt(k.median_ms),
            fmt_opt(k.p95_ms),
            fmt_opt(k.max_ms),
            k.failed_joins
        );
    }
    o.push('\n');
    o.push_str("| check | result | detail |\n|---|---|---|\n");
    for c in &r.checks {
        let detail = if c.detail.len() > 400 {
            format!(
                "{}…",
                &c.detail[..c
                    .detail
                    .char_indices()
                    .nth(400)
                    .map_or(c.detail.len(), |(i, _)| i)]
            )
        } else {
            c.detail.clone()
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            c.name,
            if c.ok { "ok" } else { "**FAIL**" },
            detail.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        o,
        "\nAgent log: {} warnings or errors. Machine: {} CPUs ({}), kernel {}, NetworkManager {}, {}; agent: {}; \
         tree: {}; load average {} at the end.",
        r.agent_warnings, m.nproc, m.cpu, m.kernel, m.networkmanager, m.mptcpd, m.agent, m.git, m.loadavg_end
    );
    o
}

fn print_report(r: &SoakReport, dir: &std::path::Path) {
    println!(
        "soak: seed {}, {} flaps in {:.0} s {:?}, {} misses, subflow back after restore: median {} / p95 {}",
        r.seed,
        r.flaps,
        r.seconds_flapping,
        r.flaps_by_kind,
        r.misses,
        fmt_opt(r.recovered_ms_median),
        fmt_opt(r.recovered_ms_p95)
    );
    for k in &r.by_kind {
        println!(
            "  {} {}: {} flaps, {} misses, back after median {} / p95 {} / max {}, {} with a failed join first",
            k.kind,
            k.uplink,
            k.flaps,
            k.misses,
            fmt_opt(k.median_ms),
            fmt_opt(k.p95_ms),
            fmt_opt(k.max_ms),
            k.failed_joins
        );
    }
    for x in &r.restarts {
        println!(
            "  {}: {}{} — {}",
            x.what,
            if x.healthy_untouched { "ok" } else { "FAILED" },
            x.resync_ms
                .map_or(String::new(), |v| format!(" (re-sync {v:.1} ms)")),
            x.detail
        );
    }
    for c in &r.checks {
        println!(
            "  [{}] {}: {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    println!("  details: {}", dir.join("soak.json").display());
}

fn soak(
    sess: &Session,
    args: &SoakArgs,
    seed: u64,
    started: &str,
    machine: &mut crate::model::Machine,
) -> Result<SoakReport, String> {
    let baseline = routing(sess);
    sess.start_manager()?;
    sess.ensure_steady()?;
    let ids_at_start = sess.obs.endpoints();
    let live = sess.live()?;
    if !live.joined {
        return Err("the live connection never joined over the second uplink".into());
    }
    let mut sf = Subflows::new(live.token);
    sf.update(sess);
    let uplinks = vec![sess.steady.clone(), sess.flap.clone()];
    let mut st = Soak {
        sess,
        args,
        live,
        sf,
        uplinks: uplinks.clone(),
    };
    let mut rng = Rng::new(seed);
    let mut flaps: Vec<Flap> = Vec::new();
    let mut restarts = Vec::new();
    let t_start = Instant::now();
    let duration = Duration::from_secs_f64(args.seconds);
    // Restart rounds at evenly spaced points of the soak.
    let mut schedule: Vec<Duration> = (0..args.restarts)
        .map(|k| duration.mul_f64((k as f64 + 0.5) / args.restarts.max(1) as f64))
        .collect();
    schedule.reverse();
    let recover = Duration::from_millis(args.recover_ms);
    while t_start.elapsed() < duration && flaps.len() < args.max_flaps {
        if schedule.last().is_some_and(|at| t_start.elapsed() >= *at) {
            schedule.pop();
            log(format!("soak: restart round after {} flaps", flaps.len()));
            restarts.extend(st.agent_round());
            restarts.push(st.nm_round());
            continue;
        }
        let ui = rng.below(2);
        let (u, other) = (&uplinks[ui], &uplinks[1 - ui]);
        let kind = KINDS[rng.below(4)];
        let hold = rng.below(300) as u64;
        let burst = rng.chance(15);
        let n = flaps.len();
        // One uplink at a time: the other one must carry the connection meanwhile.
        if wait_subflow(sess, &mut st.sf, other, recover).is_none() {
            flaps.push(Flap {
                n,
                uplink: other.name.clone(),
                kind,
                hold_ms: 0,
                burst: false,
                recovered_ms: None,
                closed_errors: Vec::new(),
                error: Some("no subflow on the other uplink before the flap".into()),
            });
            continue;
        }
        let mut error = None;
        let t_flap = Instant::now();
        let rounds = if burst { 2 } else { 1 };
        for _ in 0..rounds {
            if let Err(e) = set_link(sess, u, kind, false) {
                error = Some(e);
            }
            std::thread::sleep(Duration::from_millis(hold));
            if let Err(e) = set_link(sess, u, kind, true) {
                error = Some(e);
            }
        }
        let recovered = wait_subflow(sess, &mut st.sf, u, recover);
        let net = u.addr4.octets();
        let closed_errors: Vec<u8> = sess
            .obs
            .events_between(t_flap, Instant::now())
            .iter()
            .filter(|(_, e)| {
                e.token == Some(st.live.token)
                    && e.kind == EventKind::SubClosed
                    && matches!(e.saddr, Some(IpAddr::V4(a)) if a.octets()[..3] == net[..3])
            })
            .map(|(_, e)| e.error.unwrap_or(0))
            .collect();
        if recovered.is_none() {
            log(format!(
                "soak: flap {n} ({kind:?} {}): no subflow back within {:?}; endpoints {:?}",
                u.name,
                recover,
                sess.obs.endpoints()
            ));
        }
        flaps.push(Flap {
            n,
            uplink: u.name.clone(),
            kind,
            hold_ms: hold,
            burst,
            recovered_ms: recovered,
            closed_errors,
            error,
        });
        if (n + 1) % 100 == 0 {
            log(format!(
                "soak: {} flaps, {:.0} s",
                n + 1,
                t_start.elapsed().as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(rng.below(100) as u64));
        sess.lab_intact()?;
        if sess.manager_pid().is_none() {
            return Err(format!(
                "the agent died; its log ends:\n{}",
                sess.manager_log_tail()
            ));
        }
    }
    // Rounds not reached (few flaps, short soak) still run.
    while schedule.pop().is_some() {
        restarts.extend(st.agent_round());
        restarts.push(st.nm_round());
    }
    let seconds_flapping = t_start.elapsed().as_secs_f64();
    log(format!(
        "soak: {} flaps done; checking the end state",
        flaps.len()
    ));

    // --- end state ---------------------------------------------------------------------
    let mut checks = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            ok,
            detail,
        })
    };
    let settled = st.settle();
    let eps = sess.obs.endpoints();
    let exact = endpoints_exact(&eps, &uplinks);
    check(
        "endpoints exactly as configured",
        settled.is_ok() && exact.is_ok(),
        match (&settled, &exact) {
            (Ok(()), Ok(())) => format!("{} endpoints: {eps:?}", eps.len()),
            (Err(e), _) | (_, Err(e)) => e.clone(),
        },
    );
    let ids = |v: &[Ep]| v.iter().map(|e| (e.addr, e.id)).collect::<BTreeSet<_>>();
    check(
        "endpoint ids stable per address",
        ids(&eps) == ids(&ids_at_start),
        format!("start {:?}, end {:?}", ids(&ids_at_start), ids(&eps)),
    );
    let now_routing = routing(sess);
    let diff = routing_diff(&baseline, &now_routing);
    check(
        "no leaked routes or rules",
        diff.is_empty(),
        if diff.is_empty() {
            "rules and routes as before the agent started".into()
        } else {
            diff
        },
    );
    // Stuck: a handshake that never finishes, or an established subflow that should not
    // exist (from an address that is gone, or a second one on an uplink). Subflows in the
    // kernel's normal teardown (FIN-WAIT, TIME-WAIT...) are counted, not failed.
    let handshakes = ss_lines(sess, &["state", "syn-sent"]);
    let holder_port = format!("dport = :{}", crate::bench::HOLDER_PORT);
    let socks = ss_lines(sess, &["state", "all", &holder_port]);
    let configured: BTreeSet<IpAddr> = uplinks.iter().map(|u| IpAddr::from(u.addr4)).collect();
    let estab: Vec<&String> = socks.iter().filter(|l| l.starts_with("ESTAB")).collect();
    let stale: Vec<&&String> = estab
        .iter()
        .filter(|l| {
            let local = l.split_whitespace().nth(3).unwrap_or("");
            let addr = local.rsplit_once(':').map_or(local, |(a, _)| a);
            let addr = addr.split('%').next().unwrap_or(addr);
            !addr
                .parse::<IpAddr>()
                .is_ok_and(|a| configured.contains(&a))
        })
        .collect();
    let mut teardown: BTreeMap<String, usize> = BTreeMap::new();
    for l in socks.iter().filter(|l| !l.starts_with("ESTAB")) {
        *teardown
            .entry(l.split_whitespace().next().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    st.sf.update(sess);
    let per_uplink: Vec<(String, usize)> = uplinks
        .iter()
        .map(|u| (u.name.clone(), st.sf.count_from(u)))
        .collect();
    check(
        "no stuck subflows",
        handshakes.is_empty()
            && stale.is_empty()
            && estab.len() == uplinks.len()
            && per_uplink.iter().all(|(_, n)| *n == 1),
        format!(
            "SYN-SENT: {handshakes:?}; ESTAB subflows of the live connection: {} (per uplink from events: {per_uplink:?}); \
             ESTAB from an unconfigured address: {stale:?}; closing (kernel teardown): {teardown:?}",
            estab.len()
        ),
    );
    let srv = sess.holder_srv.latest();
    let flowing = srv
        .as_ref()
        .and_then(|r| r.last_data)
        .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
    let srv_err = srv.as_ref().and_then(|r| r.error.clone());
    let cli_err = st.live.holder.error();
    check(
        "live connection intact",
        flowing && srv_err.is_none() && cli_err.is_none() && !st.sf.closed,
        format!(
            "{} bytes received in order, data in the last 2 s: {flowing}, server error {srv_err:?}, client error {cli_err:?}",
            srv.map_or(0, |r| r.bytes)
        ),
    );
    let misses = flaps.iter().filter(|f| f.recovered_ms.is_none()).count();
    check(
        "flapped uplink's subflow back after every flap",
        misses == 0 && !flaps.is_empty(),
        format!("{misses} misses in {} flaps", flaps.len()),
    );
    let flap_errors: Vec<&String> = flaps.iter().filter_map(|f| f.error.as_ref()).collect();
    check(
        "every flap command worked",
        flap_errors.is_empty(),
        format!(
            "{} errors{}",
            flap_errors.len(),
            flap_errors
                .first()
                .map_or(String::new(), |e| format!(", first: {e}"))
        ),
    );
    for r in &restarts {
        check(&r.what, r.healthy_untouched, r.detail.clone());
    }
    check(
        "agent running at the end",
        sess.manager_pid().is_some(),
        "pid file and process".into(),
    );
    let lost = sess.obs.events_lost();
    check(
        "observer lost no events",
        lost == 0,
        format!("{lost} ENOBUFS on the observer's event socket"),
    );
    let agent_log =
        std::fs::read_to_string(sess.lab.dir().join("log/agent.log")).unwrap_or_default();
    let agent_warnings = agent_log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .count();

    let rec: Vec<f64> = flaps.iter().filter_map(|f| f.recovered_ms).collect();
    let mut by_kind = BTreeMap::new();
    for f in &flaps {
        *by_kind
            .entry(format!("{:?}", f.kind).to_lowercase())
            .or_insert(0) += 1;
    }
    let mut groups: BTreeMap<(String, String), Vec<&Flap>> = BTreeMap::new();
    for f in &flaps {
        groups
            .entry((format!("{:?}", f.kind).to_lowercase(), f.uplink.clone()))
            .or_default()
            .push(f);
    }
    let by_kind_stats: Vec<KindStats> = groups
        .into_iter()
        .map(|((kind, uplink), fs)| {
            let rec: Vec<f64> = fs.iter().filter_map(|f| f.recovered_ms).collect();
            KindStats {
                kind,
                uplink,
                flaps: fs.len(),
                misses: fs.iter().filter(|f| f.recovered_ms.is_none()).count(),
                median_ms: quantile(rec.clone(), 0.5),
                p95_ms: quantile(rec.clone(), 0.95),
                max_ms: quantile(rec, 1.0),
                failed_joins: fs
                    .iter()
                    .filter(|f| {
                        f.closed_errors
                            .iter()
                            .any(|e| *e == 110 || *e == 113 || *e == 111)
                    })
                    .count(),
            }
        })
        .collect();
    machine.loadavg_end = sys::loadavg();
    Ok(SoakReport {
        started_utc: started.to_string(),
        seed,
        seconds_flapping,
        flaps: flaps.len(),
        flaps_by_kind: by_kind,
        misses,
        recovered_ms_median: quantile(rec.clone(), 0.5),
        recovered_ms_p95: quantile(rec, 0.95),
        by_kind: by_kind_stats,
        restarts,
        checks,
        flap_log: flaps,
        agent_warnings,
        machine: machine.clone(),
    })
}
