// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-bench`: the three ways to manage MPTCP endpoints, measured side by side on the
//! same lab links in one run (NetworkManager's own MPTCP, mptcpd, mptcp-agent), and the
//! agent's reliability soak. Needs root (the lab is network namespaces with a real
//! NetworkManager). See docs/performance.md.

mod bench;
mod holder;
mod model;
mod observer;
mod report;
mod soak;
mod stats;
mod svg;
mod sys;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{Args, Parser, Subcommand};

use crate::{
    bench::{log, Cycles, Session, Settings},
    model::{Contender, ContenderResult, Results, RunParams},
    stats::Value,
};

#[derive(Parser)]
#[command(
    name = "mptcp-bench",
    version,
    about = "NetworkManager's MPTCP vs mptcpd vs mptcp-agent, side by side in the lab; and the agent's soak"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Measure every contender (one lab each) and write the table, plot and raw data.
    Run(RunArgs),
    /// Render table.md and the plot again from a results directory's raw.json.
    Render {
        /// A results directory of `run`.
        dir: PathBuf,
        #[command(flatten)]
        out: DocsArgs,
    },
    /// Reliability soak of the agent: random link flaps with a live MPTCP connection,
    /// NetworkManager and agent restarts, then exact end-state checks.
    Soak(soak::SoakArgs),
}

#[derive(Args)]
struct DocsArgs {
    /// Also update this docs directory: performance.md (between its mptcp-bench markers)
    /// and performance-throughput.svg.
    #[arg(long)]
    docs: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Few repetitions (3, 10 flaps, one 24 s throughput run): a few minutes.
    #[arg(long)]
    quick: bool,
    /// Contenders, comma separated: nm, mptcpd, agent.
    #[arg(long, value_delimiter = ',', default_value = "nm,mptcpd,agent")]
    contenders: Vec<String>,
    /// Repetitions of start, carrier cut and subflow reset (default 20; quick 3).
    #[arg(long)]
    reps: Option<usize>,
    /// Carrier cycles per class (carrier-back short and long, initial-flap) with one live
    /// connection (default 20; quick 3). A long cycle takes about 11 s, a short one 5 s.
    #[arg(long)]
    cycles: Option<usize>,
    /// nmcli down/up flaps with one live connection (default 100; quick 10).
    #[arg(long)]
    flaps: Option<usize>,
    /// Throughput runs (default 3; quick 1).
    #[arg(long)]
    throughput_reps: Option<usize>,
    /// Time limit for every reaction, seconds ("never within T s"; default 10, quick 8).
    #[arg(long)]
    timeout: Option<f64>,
    /// Link events for the agent's memory storm (as seen in the device namespace).
    #[arg(long, default_value_t = 10_000)]
    storm_events: usize,
    /// Scenarios to run, comma separated: start, carrier, reset, carrier-back, initial-flap,
    /// flaps, throughput, storm.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "start,carrier,reset,carrier-back,initial-flap,flaps,throughput,storm"
    )]
    scenarios: Vec<String>,
    /// The agent binary (default: the workspace's target/release/mptcp-agent).
    #[arg(long)]
    agent_bin: Option<PathBuf>,
    /// The agent's config (default: conf/agent.toml as shipped; the lab's NetworkManager
    /// config paths are added).
    #[arg(long)]
    agent_config: Option<PathBuf>,
    /// Results directory (default: target/mptcp-bench/UTC-TIMESTAMP).
    #[arg(long)]
    results: Option<PathBuf>,
    #[command(flatten)]
    out: DocsArgs,
}

/// The workspace root (this crate lives in `testing/bench/`).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `YYYYmmdd-HHMMSS` (UTC) and `YYYY-mm-dd HH:MM:SS UTC`.
pub fn utc_stamp() -> (String, String) {
    let now = jiff::Timestamp::now();
    (
        now.strftime("%Y%m%d-%H%M%S").to_string(),
        now.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The agent binary if it exists and answers `--version`, or why not.
pub fn find_agent(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let path = explicit.map_or_else(
        || target_dir().join("release/mptcp-agent"),
        Path::to_path_buf,
    );
    if !path.exists() {
        return Err(format!(
            "{} does not exist (build it: cargo build --release -p mptcp-agent)",
            path.display()
        ));
    }
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    match std::process::Command::new(&path).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(path),
        Ok(o) => Err(format!(
            "{} --version failed ({}): {}",
            path.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The agent config for the lab: `text` plus the lab's NetworkManager config paths (so the
/// agent reads the lab's NM settings, not the host's), unless it names its own.
pub fn lab_agent_config(text: &str) -> String {
    let paths = r#"conf_paths = ["@NM_ETC@/NetworkManager.conf", "@NM_ETC@/conf.d"]"#;
    if text
        .lines()
        .any(|l| l.trim_start().starts_with("conf_paths"))
    {
        return text.to_string();
    }
    let mut out = String::new();
    let mut done = false;
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.trim() == "[networkmanager]" {
            out.push_str(paths);
            out.push('\n');
            done = true;
        }
    }
    if !done {
        out.push_str("\n[networkmanager]\n");
        out.push_str(paths);
        out.push('\n');
    }
    out
}

fn params(a: &RunArgs) -> RunParams {
    let (throughput_seconds, cut_start_s, cut_end_s) =
        if a.quick { (24, 8, 16) } else { (30, 10, 20) };
    RunParams {
        quick: a.quick,
        reps: a.reps.unwrap_or(if a.quick { 3 } else { 20 }),
        cycles: a.cycles.unwrap_or(if a.quick { 3 } else { 20 }),
        flaps: a.flaps.unwrap_or(if a.quick { 10 } else { 100 }),
        throughput_reps: a.throughput_reps.unwrap_or(if a.quick { 1 } else { 3 }),
        throughput_seconds,
        cut_start_s,
        cut_end_s,
        timeout_s: a.timeout.unwrap_or(if a.quick { 8.0 } else { 10.0 }),
        storm_events: a.storm_events,
        rate: "20mbit".into(),
        carrier_wait_ms: 6000,
        flapped_uplink: bench::FLAPPED.into(),
        scenarios: a.scenarios.iter().map(|s| s.trim().to_string()).collect(),
    }
}

fn label(c: Contender, m: &model::Machine) -> String {
    match c {
        Contender::Nm => format!("NetworkManager {} (own MPTCP)", m.networkmanager),
        Contender::Mptcpd => {
            let v = m.mptcpd.trim_start_matches("mptcpd").trim();
            format!("mptcpd {v} (addr_adv)")
        }
        Contender::Agent => m.agent.clone(),
    }
}

/// Run one scenario step; `false` when the manager is gone and nothing more can run.
fn step(
    sess: &Session,
    r: &mut ContenderResult,
    what: &str,
    f: impl FnOnce(&Session, &mut ContenderResult) -> Result<(), String>,
) -> bool {
    if let Err(e) = f(sess, r) {
        log(format!("  {}: {what}: {e}", sess.c.id()));
        r.errors.push(format!("{what}: {e}"));
    }
    if let Err(e) = sess.lab_intact() {
        log(&e);
        r.not_run = Some(e);
        return false;
    }
    if sess.manager_pid().is_none() {
        let why = format!(
            "{} is no longer running (after {what}); its log ends:\n{}",
            sess.c.id(),
            sess.manager_log_tail()
        );
        log(&why);
        r.not_run = Some(why);
        return false;
    }
    true
}

pub const SCENARIOS: [&str; 8] = [
    "start",
    "carrier",
    "reset",
    "carrier-back",
    "initial-flap",
    "flaps",
    "throughput",
    "storm",
];

/// Repeated scenarios: name, repetitions, one repetition.
type RepFn = fn(&Session, usize, &mut ContenderResult) -> Result<(), String>;

fn scenarios(sess: &Session, r: &mut ContenderResult) {
    let p = &sess.s.params;
    let want = |name: &str| p.scenarios.iter().any(|s| s == name);
    if sess.c != Contender::Nm {
        if let Err(e) = sess.start_manager() {
            r.not_run = Some(e);
            return;
        }
    }
    if let Err(e) = sess.ensure_steady() {
        r.not_run = Some(format!("never reached endpoints on all uplinks: {e}"));
        return;
    }
    let repeated: [(&str, usize, RepFn); 3] = [
        ("start", p.reps, |s, rep, r| s.start_rep(rep, r)),
        ("carrier", p.reps, |s, rep, r| s.carrier_rep(rep, r)),
        ("reset", p.reps, |s, rep, r| s.reset_rep(rep, r)),
    ];
    for (name, reps, f) in repeated {
        if !want(name) {
            continue;
        }
        log(format!("  {}: {name} ({reps} reps)", sess.c.id()));
        for rep in 0..reps {
            if !step(sess, r, &format!("{name} rep {rep}"), |s, r| f(s, rep, r)) {
                return;
            }
        }
    }
    if !carrier_cycles(sess, r) {
        return;
    }
    if want("flaps") {
        log(format!("  {}: {} nmcli flaps", sess.c.id(), p.flaps));
        if !step(sess, r, "flaps", |s, r| s.flaps(p.flaps, r)) {
            return;
        }
    }
    if want("throughput") {
        log(format!(
            "  {}: throughput ({} runs)",
            sess.c.id(),
            p.throughput_reps
        ));
        for rep in 0..p.throughput_reps {
            if !step(sess, r, &format!("throughput rep {rep}"), |s, r| {
                s.throughput_rep(rep, r)
            }) {
                return;
            }
        }
    }
    if want("storm") {
        log(format!("  {}: idle memory", sess.c.id()));
        if !step(sess, r, "idle memory", |s, r| s.idle_memory(r)) {
            return;
        }
        if sess.c == Contender::Agent {
            log(format!("  agent: memory, {} link events", p.storm_events));
            step(sess, r, "storm", |s, r| s.storm(p.storm_events, r));
        }
    }
    let lost = sess.obs.events_lost();
    if lost > 0 {
        r.errors
            .push(format!("the observer lost {lost} event batches (ENOBUFS)"));
    }
}

/// The carrier cycles: `carrier-back` (cuts shorter and longer than NetworkManager's
/// carrier-wait, on the flapped uplink) and `initial-flap` (short cuts of the uplink that
/// carries the initial subflow). `false` when nothing more can run.
fn carrier_cycles(sess: &Session, r: &mut ContenderResult) -> bool {
    let p = &sess.s.params;
    let want = |name: &str| p.scenarios.iter().any(|s| s == name);
    let short = Duration::from_secs(1);
    // Past carrier-wait by more than the agent's "near the verdict" window: NetworkManager
    // has taken the device down and activates it again on carrier back.
    let long = Duration::from_millis(u64::from(p.carrier_wait_ms) + 1500);
    let mut classes = Vec::new();
    if want("carrier-back") {
        classes.push((
            "carrier-back short",
            Cycles {
                prefix: "cb_short",
                cut: &sess.flap,
                other: &sess.steady,
                length: short,
            },
        ));
        classes.push((
            "carrier-back long",
            Cycles {
                prefix: "cb_long",
                cut: &sess.flap,
                other: &sess.steady,
                length: long,
            },
        ));
    }
    if want("initial-flap") {
        classes.push((
            "initial-flap",
            Cycles {
                prefix: "initial_flap",
                cut: &sess.steady,
                other: &sess.flap,
                length: short,
            },
        ));
    }
    for (what, k) in classes {
        log(format!(
            "  {}: {what} ({} cycles, {} ms cuts of {})",
            sess.c.id(),
            p.cycles,
            k.length.as_millis(),
            k.cut.name
        ));
        if !step(sess, r, what, |s, r| s.carrier_cycles(&k, p.cycles, r)) {
            return false;
        }
    }
    true
}

fn sizes(c: Contender, s: &Settings, r: &mut ContenderResult) {
    if c == Contender::Agent {
        if let Ok(bin) = &s.agent {
            if let Some((size, stripped)) = sys::binary_size(bin) {
                let note = format!(
                    "{}{}",
                    bin.display(),
                    if stripped { "" } else { ", NOT stripped" }
                );
                if !stripped {
                    r.errors.push(format!(
                        "{} is not stripped (a debug build?): its size is not the shipped one",
                        bin.display()
                    ));
                }
                r.push("binary_bytes", 0, Value::Num(size as f64), Some(note));
            }
        }
        return;
    }
    let files = sys::peer_binaries(c);
    let total: u64 = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if total > 0 {
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        r.push(
            "binary_bytes",
            0,
            Value::Num(total as f64),
            Some(format!("installed: {}", names.join(" + "))),
        );
    }
}

fn run_contender(c: Contender, s: &Settings, m: &model::Machine) -> ContenderResult {
    let mut r = ContenderResult::new(c, label(c, m));
    let t = Instant::now();
    log(format!("== {} ==", r.label));
    if c == Contender::Agent {
        if let Err(why) = &s.agent {
            r.not_run = Some(why.clone());
            log(format!("  agent not run: {why}"));
            return r;
        }
    }
    // A lab destroyed from outside (a concurrent `testing/test.sh` deletes namespaces that
    // appeared during its run) says nothing about the contender: start it over, fresh.
    const ATTEMPTS: usize = 3;
    let mut destroyed = 0;
    for attempt in 1..=ATTEMPTS {
        match Session::open(c, s) {
            Err(e) => {
                log(format!("  {}: {e}", c.id()));
                r.not_run = Some(e);
            }
            Ok(sess) => {
                scenarios(&sess, &mut r);
                sess.save_logs(&s.results.join("logs").join(c.id()));
            }
        }
        let outside = r
            .not_run
            .as_deref()
            .is_some_and(|w| w.starts_with(bench::DESTROYED_FROM_OUTSIDE));
        if !outside || attempt == ATTEMPTS {
            break;
        }
        destroyed += 1;
        log(format!(
            "  {}: starting over with a fresh lab (attempt {})",
            c.id(),
            attempt + 1
        ));
        r = ContenderResult::new(c, r.label.clone());
    }
    if destroyed > 0 {
        r.add_fact("labs_destroyed_from_outside", destroyed as f64);
    }
    sizes(c, s, &mut r);
    r.seconds = t.elapsed().as_secs_f64();
    log(format!("  {} done in {:.0} s", c.id(), r.seconds));
    r
}

/// Write table.md, the plot, raw data; update docs if asked. Returns the Markdown.
fn render(results: &Results, dir: &Path, docs: Option<&Path>) -> Result<String, String> {
    report::write_raw(results, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let svg = svg::timeline(results);
    if let Some(svg) = &svg {
        std::fs::write(dir.join("throughput.svg"), svg).map_err(|e| e.to_string())?;
    }
    let md = report::markdown(results, "throughput.svg");
    std::fs::write(dir.join("table.md"), &md).map_err(|e| e.to_string())?;
    if let Some(docs) = docs {
        // A run of some scenarios only goes to its own section: the full run's table stays.
        let ran = &results.params.scenarios;
        let full = ran.is_empty() || SCENARIOS.iter().all(|s| ran.iter().any(|r| r == s));
        let svg_name = "performance-throughput.svg";
        if let (Some(svg), true) = (&svg, full) {
            std::fs::write(docs.join(svg_name), svg).map_err(|e| e.to_string())?;
        }
        let section = if full { "results" } else { "partial" };
        replace_between_markers(
            &docs.join("performance.md"),
            &format!("<!-- mptcp-bench:{section}:begin -->"),
            &format!("<!-- mptcp-bench:{section}:end -->"),
            &report::markdown(results, svg_name),
        )?;
    }
    Ok(md)
}

/// Replace what is between two marker lines of a document (the markers stay).
pub fn replace_between_markers(
    page: &Path,
    begin: &str,
    end: &str,
    body: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
    let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
        return Err(format!("{}: no {begin} … {end} markers", page.display()));
    };
    if b < a {
        return Err(format!("{}: {end} comes before {begin}", page.display()));
    }
    let new = format!("{}{begin}\n{}\n{}", &text[..a], body.trim_end(), &text[b..]);
    std::fs::write(page, new).map_err(|e| format!("{}: {e}", page.display()))?;
    log(format!("updated {}", page.display()));
    Ok(())
}

fn run(a: RunArgs) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root: the lab builds network namespaces and runs NetworkManager".into());
    }
    let started = Instant::now();
    let (stamp, human) = utc_stamp();
    let params = params(&a);
    for sc in &params.scenarios {
        if !SCENARIOS.contains(&sc.as_str()) {
            return Err(format!(
                "unknown scenario {sc:?} (have {})",
                SCENARIOS.join(", ")
            ));
        }
    }
    let mut contenders = Vec::new();
    for name in &a.contenders {
        let c = Contender::parse(name.trim())
            .ok_or_else(|| format!("unknown contender {name:?} (nm, mptcpd, agent)"))?;
        if !contenders.contains(&c) {
            contenders.push(c);
        }
    }
    let agent = if contenders.contains(&Contender::Agent) {
        find_agent(a.agent_bin.as_deref())
    } else {
        Err("not asked for".into())
    };
    let config_path = a
        .agent_config
        .clone()
        .unwrap_or_else(|| repo_root().join("conf/agent.toml"));
    let agent_config = lab_agent_config(
        &std::fs::read_to_string(&config_path)
            .map_err(|e| format!("{}: {e}", config_path.display()))?,
    );
    let results_dir = a
        .results
        .clone()
        .unwrap_or_else(|| target_dir().join("mptcp-bench").join(&stamp));
    std::fs::create_dir_all(&results_dir).map_err(|e| format!("{}: {e}", results_dir.display()))?;
    log(format!("results in {}", results_dir.display()));
    let settings = Settings {
        params,
        agent,
        agent_config,
        results: results_dir.clone(),
    };
    let mut machine = sys::machine(
        settings.agent.as_ref().ok().map(PathBuf::as_path),
        &repo_root(),
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut results = Results {
        started_utc: human,
        seconds: 0.0,
        command,
        params: settings.params.clone(),
        machine: machine.clone(),
        contenders: Vec::new(),
    };
    for c in contenders {
        let r = run_contender(c, &settings, &machine);
        results.contenders.push(r);
        // Keep what we have if a later contender brings the run down.
        let _ = report::write_raw(&results, &results_dir);
    }
    machine.loadavg_end = sys::loadavg();
    results.machine = machine;
    results.seconds = started.elapsed().as_secs_f64();
    let md = render(&results, &results_dir, a.out.docs.as_deref())?;
    println!("{md}");
    println!("Ratios (ours ÷ best peer, medians):");
    let lines = report::ratio_lines(&results);
    if lines.is_empty() {
        let ours = results
            .contenders
            .iter()
            .any(|c| c.contender == Contender::Agent && c.not_run.is_none());
        let peers = results
            .contenders
            .iter()
            .any(|c| c.contender.is_peer() && c.not_run.is_none());
        println!(
            "  none: {}",
            match (ours, peers) {
                (false, _) => "our agent did not run (see the notes above)",
                (true, false) => "no peer ran in this run",
                (true, true) => "no metric has numbers for both",
            }
        );
    }
    for l in lines {
        println!("  {l}");
    }
    println!("\nRaw data, plot and logs: {}", results_dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Render { dir, out } => std::fs::read_to_string(dir.join("raw.json"))
            .map_err(|e| format!("{}: {e}", dir.join("raw.json").display()))
            .and_then(|t| serde_json::from_str::<Results>(&t).map_err(|e| e.to_string()))
            .and_then(|res| render(&res, &dir, out.docs.as_deref()))
            .map(|md| println!("{md}")),
        Cmd::Soak(a) => soak::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_config_gets_the_lab_nm_paths_once() {
        let shipped =
            "schema_version = 1\n[networkmanager]\nfollow = true\n[[link]]\nname = \"x\"\n";
        let out = lab_agent_config(shipped);
        let at = out
            .find("[networkmanager]\nconf_paths = [\"@NM_ETC@")
            .expect(&out);
        assert!(at < out.find("[[link]]").unwrap());
        assert_eq!(out.matches("conf_paths").count(), 1);
        // A config naming its own paths is left alone; one without the table gets it.
        let own = "[networkmanager]\nconf_paths = [\"/x\"]\n";
        assert_eq!(lab_agent_config(own), own);
        assert!(lab_agent_config("schema_version = 1\n").ends_with("[networkmanager]\nconf_paths = [\"@NM_ETC@/NetworkManager.conf\", \"@NM_ETC@/conf.d\"]\n"));
    }

    #[test]
    fn utc_stamp_shape() {
        let (short, long) = utc_stamp();
        assert_eq!(short.len(), 15, "{short}");
        assert!(long.ends_with(" UTC"), "{long}");
        assert!(short.starts_with("20"), "{short}");
    }

    #[test]
    fn markers_are_replaced_and_kept() {
        let dir = std::env::temp_dir().join(format!("mptcp-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let page = dir.join("p.md");
        std::fs::write(&page, "head\n<!-- b -->\nold\n<!-- e -->\ntail\n").unwrap();
        replace_between_markers(&page, "<!-- b -->", "<!-- e -->", "new table\n").unwrap();
        let text = std::fs::read_to_string(&page).unwrap();
        assert_eq!(text, "head\n<!-- b -->\nnew table\n<!-- e -->\ntail\n");
        assert!(replace_between_markers(&page, "<!-- x -->", "<!-- e -->", "y").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
