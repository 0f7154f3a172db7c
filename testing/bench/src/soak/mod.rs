// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent's reliability soak: random link flaps (far-side carrier, admin down, nmcli
//! down/up, address change) on one uplink at a time, with a live MPTCP connection; rounds
//! of NetworkManager SIGKILL + restart and agent SIGKILL + restart in between; then exact
//! checks of the end state. Bounded in time; every wait is bounded too.

mod probe;
mod report;
mod restarts;

use probe::*;
use report::*;
use restarts::*;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Args;
use mptcp_genl::EventKind;
use mptcp_lab::{
    support::{quantile, Rng},
    Node, Uplink,
};
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
            cycles: 0,
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
                median_ms: quantile(&rec, 0.5),
                p95_ms: quantile(&rec, 0.95),
                max_ms: quantile(&rec, 1.0),
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
        recovered_ms_median: quantile(&rec, 0.5),
        recovered_ms_p95: quantile(&rec, 0.95),
        by_kind: by_kind_stats,
        restarts,
        checks,
        flap_log: flaps,
        agent_warnings,
        machine: machine.clone(),
    })
}
