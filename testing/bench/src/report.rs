// SPDX-License-Identifier: MIT OR Apache-2.0
//! The table (Markdown), the ratio lines, and the raw data files of a run.

use std::{fmt::Write as _, io, path::Path};

use crate::{
    model::{metric, Better, Contender, ContenderResult, Results, RunParams, METRICS},
    stats::{summarize, Summary, Value},
};

fn num(x: f64, unit: &str) -> String {
    match unit {
        "bytes" => format!("{:.0}", x),
        "KiB" => format!("{:.0}", x),
        "Mbit/s" => format!("{:.1}", x),
        "s" => format!("{:.1}", x),
        _ if x >= 100.0 => format!("{:.0}", x),
        _ if x >= 10.0 => format!("{:.1}", x),
        _ => format!("{:.2}", x),
    }
}

fn value(v: Value, unit: &str, timeout_s: f64) -> String {
    match v {
        Value::Num(x) => num(x, unit),
        Value::Never if unit == "s" || unit == "ms" => format!("never ≤ {timeout_s:.0} s"),
        Value::Never => "never".into(),
        Value::NotApplicable => "n/a".into(),
    }
}

/// "median / p95 (n)" plus how many runs never got there, and how many the question did
/// not apply to (`na`).
fn cell(s: &Summary, na: usize, unit: &str, timeout_s: f64) -> String {
    if s.n == 0 {
        return if na > 0 {
            format!("n/a (n={na})")
        } else {
            "—".into()
        };
    }
    if s.never == s.n {
        return format!("{} (n={})", value(Value::Never, unit, timeout_s), s.n);
    }
    let mut c = if s.n == 1 {
        value(s.median, unit, timeout_s)
    } else {
        format!(
            "{} / {}",
            value(s.median, unit, timeout_s),
            value(s.p95, unit, timeout_s)
        )
    };
    let _ = write!(c, " (n={}", s.n);
    if s.never > 0 {
        let _ = write!(c, ", {} never", s.never);
    }
    if na > 0 {
        let _ = write!(c, ", {na} n/a");
    }
    c.push(')');
    c
}

fn short_name(c: Contender) -> &'static str {
    match c {
        Contender::Nm => "NM",
        Contender::Mptcpd => "mptcpd",
        Contender::Agent => "ours",
    }
}

/// Ours against the best peer on one metric, as (table cell, sentence).
fn ratio(results: &Results, metric_id: &str) -> Option<(String, String)> {
    let def = metric(metric_id)?;
    let ours = results
        .contenders
        .iter()
        .find(|c| c.contender == Contender::Agent)?;
    let ours_s = summarize(&ours.values(metric_id));
    if ours_s.n == 0 {
        return None;
    }
    let peers: Vec<(&ContenderResult, Summary)> = results
        .contenders
        .iter()
        .filter(|c| c.contender.is_peer())
        .map(|c| (c, summarize(&c.values(metric_id))))
        .filter(|(_, s)| s.n > 0)
        .collect();
    if peers.is_empty() {
        return None;
    }
    let better_of = |a: f64, b: f64| match def.better {
        Better::Lower => a < b,
        Better::Higher => a > b,
    };
    let best = peers
        .iter()
        .filter_map(|(c, s)| match s.median {
            Value::Num(x) => Some((*c, x)),
            _ => None,
        })
        .fold(None::<(&ContenderResult, f64)>, |acc, (c, x)| match acc {
            Some((_, y)) if !better_of(x, y) => acc,
            _ => Some((c, x)),
        });
    let label = def.label;
    match (ours_s.median, best) {
        (Value::Num(o), Some((peer, p))) => {
            let r = if p != 0.0 { o / p } else { f64::INFINITY };
            // Within 2 % counts as equal for times and sizes; throughput says how far below.
            let how = match def.better {
                Better::Lower if r > 0.0 && r < 0.98 => format!("{:.0}× better", 1.0 / r),
                Better::Lower if r > 1.02 => format!("{r:.1}× worse"),
                Better::Lower => "about equal".into(),
                Better::Higher if r >= 1.0 => "not worse".to_string(),
                Better::Higher => format!("{:.0} % lower", (1.0 - r) * 100.0),
            };
            let cellv = format!("{} ({}; {how})", fmt_ratio(r), short_name(peer.contender));
            let sentence = format!(
                "{label}: ours {} {u} vs best peer {} {} {u} → ratio {} ({how})",
                num(o, def.unit),
                peer.label,
                num(p, def.unit),
                fmt_ratio(r),
                u = def.unit
            );
            Some((cellv, sentence))
        }
        (Value::Num(o), None) => Some((
            "peers: never".into(),
            format!(
                "{label}: ours {} {} vs peers never within the limit",
                num(o, def.unit),
                def.unit
            ),
        )),
        (Value::Never, Some((peer, p))) => Some((
            "ours: never".into(),
            format!(
                "{label}: ours never vs {} {} {}",
                peer.label,
                num(p, def.unit),
                def.unit
            ),
        )),
        _ => None,
    }
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "∞".into()
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.4}×")
    }
}

/// Joins that succeeded over the flaps, "k / N".
fn joins(c: &ContenderResult) -> Option<(usize, usize)> {
    let v = c.values("flap_join_ms");
    if v.is_empty() {
        return None;
    }
    let ok = v.iter().filter(|x| matches!(x, Value::Num(_))).count();
    Some((ok, v.len()))
}

/// Samples of `metric` the question did not apply to.
fn not_applicable(c: &ContenderResult, metric: &str) -> usize {
    c.values(metric)
        .iter()
        .filter(|v| matches!(v, Value::NotApplicable))
        .count()
}

fn fact(c: &ContenderResult, key: &str) -> Option<f64> {
    c.facts.get(key).copied()
}

/// The Markdown table of a run.
pub fn table(results: &Results) -> String {
    let t = results.params.timeout_s;
    let cs = &results.contenders;
    let mut out = String::new();
    let _ = write!(out, "| metric | unit |");
    for c in cs {
        let _ = write!(out, " {} |", c.label);
    }
    let has_ours = cs.iter().any(|c| c.contender == Contender::Agent);
    if has_ours {
        out.push_str(" ours ÷ best peer (median) |");
    }
    out.push('\n');
    out.push_str("|---|---|");
    for _ in cs {
        out.push_str("---|");
    }
    if has_ours {
        out.push_str("---|");
    }
    out.push('\n');
    for def in METRICS {
        let sums: Vec<Summary> = cs.iter().map(|c| summarize(&c.values(def.id))).collect();
        if cs
            .iter()
            .zip(&sums)
            .all(|(c, s)| s.n == 0 && not_applicable(c, def.id) == 0)
        {
            continue;
        }
        let _ = write!(out, "| {} | {} |", def.label, def.unit);
        for (c, s) in cs.iter().zip(&sums) {
            let _ = write!(
                out,
                " {} |",
                cell(s, not_applicable(c, def.id), def.unit, t)
            );
        }
        if has_ours {
            let peers_na = cs
                .iter()
                .zip(&sums)
                .filter(|(c, _)| c.contender.is_peer())
                .all(|(c, s)| s.n == 0 && not_applicable(c, def.id) > 0);
            let r = ratio(results, def.id)
                .map(|(c, _)| c)
                .unwrap_or(if peers_na { "peers: n/a" } else { "—" }.into());
            let _ = write!(out, " {r} |");
        }
        out.push('\n');
        if def.id == "flap_join_ms" {
            let _ = write!(out, "| joins that succeed over the nmcli flaps | count |");
            for c in cs {
                let v = joins(c).map_or("—".into(), |(k, n)| format!("{k} / {n}"));
                let _ = write!(out, " {v} |");
            }
            if has_ours {
                let lost = |c: &ContenderResult| joins(c).map(|(k, n)| n - k);
                let ours = cs
                    .iter()
                    .find(|c| c.contender == Contender::Agent)
                    .and_then(lost);
                let best = cs
                    .iter()
                    .filter(|c| c.contender.is_peer())
                    .filter_map(lost)
                    .min();
                let r = match (ours, best) {
                    (Some(o), Some(b)) => format!("lost {o} vs {b}"),
                    _ => "—".into(),
                };
                let _ = write!(out, " {r} |");
            }
            out.push('\n');
        }
    }
    // Counts gathered across the scenarios; the carrier cycles' are compared (fewer is
    // better).
    let plain = [
        (
            "healthy_subflows_closed",
            "healthy (steady-uplink) subflows torn down, all scenarios",
        ),
        (
            "live_connections_lost",
            "live connections lost, all scenarios",
        ),
        (
            "storm_link_events_seen_in_device_ns",
            "link events the device saw during the storm",
        ),
    ];
    let rows = plain
        .iter()
        .map(|(k, l)| (*k, *l, false))
        .chain(CYCLE_COUNTS.iter().map(|(k, l)| (*k, *l, true)));
    for (key, label, compared) in rows {
        if cs.iter().all(|c| fact(c, key).is_none()) {
            continue;
        }
        let _ = write!(out, "| {label} | count |");
        for c in cs {
            let v = fact(c, key).map_or("—".into(), |x| format!("{x:.0}"));
            let _ = write!(out, " {v} |");
        }
        if has_ours {
            let r = compared
                .then(|| count_against_best_peer(results, key))
                .flatten()
                .map_or(String::new(), |(cell, _)| cell);
            let _ = write!(out, " {r} |");
        }
        out.push('\n');
    }
    out
}

/// Counts summed over the carrier cycles (`model::RunParams::cycles` per class).
const CYCLE_COUNTS: [(&str, &str); 7] = [
    (
        "cb_short_extra_closes",
        "subflow closes beyond the cut's own over the 1 s carrier cycles (either uplink)",
    ),
    (
        "cb_long_extra_closes",
        "subflow closes beyond the cut's own over the cycles past carrier-wait (either uplink)",
    ),
    (
        "cb_short_endpoint_churn",
        "endpoint changes beyond one withdrawal and one add, 1 s cuts",
    ),
    (
        "cb_long_endpoint_churn",
        "endpoint changes beyond one withdrawal and one add, cuts past carrier-wait (NetworkManager re-activates through IP_CHECK)",
    ),
    (
        "cb_long_connections_lost",
        "live connections lost over the cycles past carrier-wait",
    ),
    (
        "initial_flap_extra_closes",
        "subflow closes beyond the cut's own over the wlan0 flaps (any on wwan0 counts)",
    ),
    (
        "initial_flap_connections_lost",
        "live connections lost over the wlan0 flaps",
    ),
];

/// Ours against the peer with the fewest, on a count where fewer is better, as (table
/// cell, sentence).
fn count_against_best_peer(results: &Results, key: &str) -> Option<(String, String)> {
    let cs = &results.contenders;
    let ours = cs
        .iter()
        .find(|c| c.contender == Contender::Agent)
        .and_then(|c| fact(c, key))?;
    let (peer, best) = cs
        .iter()
        .filter(|c| c.contender.is_peer())
        .filter_map(|c| fact(c, key).map(|x| (c, x)))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    let how = match ours.total_cmp(&best) {
        std::cmp::Ordering::Less => "fewer",
        std::cmp::Ordering::Equal => "equal",
        std::cmp::Ordering::Greater => "more",
    };
    let label = CYCLE_COUNTS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, l)| *l);
    Some((
        format!(
            "{ours:.0} vs {best:.0} ({}; {how})",
            short_name(peer.contender)
        ),
        format!(
            "{label}: ours {ours:.0} vs best peer {} {best:.0} ({how})",
            peer.label
        ),
    ))
}

/// One sentence per metric: ours against the best peer.
pub fn ratio_lines(results: &Results) -> Vec<String> {
    let mut v: Vec<String> = METRICS
        .iter()
        .filter_map(|m| ratio(results, m.id).map(|(_, s)| s))
        .collect();
    let ours = results
        .contenders
        .iter()
        .find(|c| c.contender == Contender::Agent)
        .and_then(joins);
    let best = results
        .contenders
        .iter()
        .filter(|c| c.contender.is_peer())
        .filter_map(|c| joins(c).map(|j| (c, j)))
        .max_by_key(|(_, (k, _))| *k);
    if let (Some((k, n)), Some((peer, (pk, pn)))) = (ours, best) {
        v.push(format!(
            "joins over nmcli flaps: ours {k}/{n} vs best peer {} {pk}/{pn}",
            peer.label
        ));
    }
    v.extend(
        CYCLE_COUNTS
            .iter()
            .filter_map(|(k, _)| count_against_best_peer(results, k).map(|(_, s)| s)),
    );
    v
}

/// Notes under the table: contenders that did not run, errors.
pub fn notes(results: &Results) -> String {
    let mut out = String::new();
    for c in &results.contenders {
        if let Some(why) = &c.not_run {
            let _ = writeln!(
                out,
                "- **{}** did not run (or stopped early): {why}",
                c.label
            );
        }
        for def in METRICS {
            let na: Vec<&str> = c
                .samples
                .iter()
                .filter(|s| s.metric == def.id && s.value == Value::NotApplicable)
                .map(|s| s.note.as_deref().unwrap_or("no reason recorded"))
                .collect();
            if let Some(first) = na.first() {
                let all = c.samples.iter().filter(|s| s.metric == def.id).count();
                let _ = writeln!(
                    out,
                    "- {}, {}: n/a in {} of {all} ({first})",
                    c.label,
                    def.label,
                    na.len()
                );
            }
        }
        for e in c.errors.iter().take(10) {
            let _ = writeln!(out, "- {}: {e}", c.label);
        }
        if c.errors.len() > 10 {
            let _ = writeln!(
                out,
                "- {}: … {} more errors in raw.json",
                c.label,
                c.errors.len() - 10
            );
        }
    }
    out
}

/// `samples.csv`, `timeline.csv` and `raw.json`.
pub fn write_raw(results: &Results, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("raw.json"),
        serde_json::to_string_pretty(results).map_err(io::Error::other)? + "\n",
    )?;
    let mut csv = String::from("contender,metric,rep,kind,value,note\n");
    for c in &results.contenders {
        for s in &c.samples {
            let (kind, v) = match s.value {
                Value::Num(x) => ("num", format!("{x}")),
                Value::Never => ("never", String::new()),
                Value::NotApplicable => ("n/a", String::new()),
            };
            let note = s.note.clone().unwrap_or_default().replace('"', "'");
            let _ = writeln!(
                csv,
                "{},{},{},{kind},{v},\"{note}\"",
                c.contender.id(),
                s.metric,
                s.rep
            );
        }
    }
    std::fs::write(dir.join("samples.csv"), csv)?;
    let mut tl = String::from("contender,rep,second,mbps,cut_start_s,cut_end_s\n");
    for c in &results.contenders {
        for t in &c.timelines {
            for (i, m) in t.mbps.iter().enumerate() {
                let _ = writeln!(
                    tl,
                    "{},{},{},{m},{:.3},{:.3}",
                    c.contender.id(),
                    t.rep,
                    i,
                    t.cut_start_s,
                    t.cut_end_s
                );
            }
        }
    }
    std::fs::write(dir.join("timeline.csv"), tl)?;
    Ok(())
}

/// The Markdown block for docs/performance.md and table.md.
pub fn markdown(results: &Results, svg_name: &str) -> String {
    let m = &results.machine;
    let p = &results.params;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} ({}; {:.0} s): `{}`\n",
        results.started_utc,
        if p.quick { "quick form" } else { "full form" },
        results.seconds,
        results.command
    );
    out.push_str(&table(results));
    out.push('\n');
    let n = notes(results);
    if !n.is_empty() {
        out.push_str(&n);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Cells: median / p95 (n = repetitions). \"never ≤ T s\": did not happen within the \
         {:.0} s limit; it counts as slower than any number in the median and p95. \
         Repetitions: {}.\n",
        p.timeout_s,
        repetitions(p).join("; ")
    );
    let _ = writeln!(
        out,
        "{}Machine: {} CPUs ({}), {} MiB, kernel {}, \
         {}, {}, {}; agent: {}; tree: {}; load average {} at the start, {} at the end.",
        if ran(p, "throughput") {
            format!("![throughput timeline]({svg_name})\n\n")
        } else {
            String::new()
        },
        m.nproc,
        m.cpu,
        m.mem_total_mib,
        m.kernel,
        m.networkmanager_label(),
        m.mptcpd_label(),
        m.iproute2,
        m.agent,
        m.git,
        m.loadavg_start,
        m.loadavg_end
    );
    out
}

/// Whether a run had `scenario` (runs from before `scenarios` was recorded had all).
fn ran(p: &RunParams, scenario: &str) -> bool {
    p.scenarios.is_empty() || p.scenarios.iter().any(|s| s == scenario)
}

/// What the scenarios of a run repeated, one phrase each.
fn repetitions(p: &RunParams) -> Vec<String> {
    let mut v = Vec::new();
    let basic: Vec<&str> = ["start", "carrier", "reset"]
        .into_iter()
        .filter(|s| ran(p, s))
        .collect();
    if !basic.is_empty() {
        v.push(format!("{} ({})", p.reps, basic.join(", ")));
    }
    if ran(p, "carrier-back") || ran(p, "initial-flap") {
        v.push(format!(
            "{} carrier cycles per class (1 s cuts of {u}; cuts of {u} 1.5 s past the {} ms \
             carrier-wait; 1 s cuts of wlan0), each class with one live connection, each cycle \
             watched until 3 s after the join",
            p.cycles,
            p.carrier_wait_ms,
            u = p.flapped_uplink
        ));
    }
    if ran(p, "flaps") {
        v.push(format!("{} nmcli flaps", p.flaps));
    }
    if ran(p, "throughput") {
        v.push(format!(
            "{} throughput run(s) of {} s with the carrier of {} cut from s {} to s {}",
            p.throughput_reps, p.throughput_seconds, p.flapped_uplink, p.cut_start_s, p.cut_end_s
        ));
    }
    if ran(p, "storm") {
        v.push(format!(
            "memory storm: {} link events (far-side carrier toggles)",
            p.storm_events
        ));
    }
    v
}

impl crate::model::Machine {
    fn networkmanager_label(&self) -> String {
        format!("NetworkManager {}", self.networkmanager)
    }
    fn mptcpd_label(&self) -> String {
        if self.mptcpd.starts_with("mptcpd") {
            self.mptcpd.clone()
        } else {
            format!("mptcpd {}", self.mptcpd)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContenderResult, Machine, RunParams};

    fn results(samples: &[(Contender, &str, Value)]) -> Results {
        let mut cs: Vec<ContenderResult> = Contender::ALL
            .iter()
            .map(|c| ContenderResult::new(*c, format!("{c:?}")))
            .collect();
        for (i, (c, m, v)) in samples.iter().enumerate() {
            let r = cs.iter_mut().find(|r| r.contender == *c).unwrap();
            r.push(m, i, *v, None);
        }
        Results {
            started_utc: String::new(),
            seconds: 0.0,
            command: String::new(),
            params: RunParams {
                quick: true,
                reps: 1,
                cycles: 1,
                flaps: 1,
                throughput_reps: 1,
                throughput_seconds: 24,
                cut_start_s: 8,
                cut_end_s: 16,
                timeout_s: 8.0,
                storm_events: 1,
                rate: "20mbit".into(),
                carrier_wait_ms: 6000,
                flapped_uplink: "wwan0".into(),
                scenarios: Vec::new(),
            },
            machine: Machine::default(),
            contenders: cs,
        }
    }

    #[test]
    fn ratio_against_the_best_peer_for_times() {
        let r = results(&[
            (Contender::Nm, "carrier_withdraw_ms", Value::Num(6000.0)),
            (Contender::Mptcpd, "carrier_withdraw_ms", Value::Never),
            (Contender::Agent, "carrier_withdraw_ms", Value::Num(30.0)),
        ]);
        let (cell, sentence) = ratio(&r, "carrier_withdraw_ms").unwrap();
        assert!(cell.starts_with("0.0050× (NM; 200× better)"), "{cell}");
        assert!(
            sentence.contains("ours 30.0 ms vs best peer Nm 6000 ms"),
            "{sentence}"
        );
    }

    #[test]
    fn ratio_for_throughput_and_when_peers_never() {
        let r = results(&[
            (Contender::Nm, "throughput_after_mbps", Value::Num(36.0)),
            (Contender::Mptcpd, "throughput_after_mbps", Value::Num(30.0)),
            (Contender::Agent, "throughput_after_mbps", Value::Num(36.0)),
            (Contender::Nm, "reset_reestablish_ms", Value::Never),
            (Contender::Mptcpd, "reset_reestablish_ms", Value::Never),
            (Contender::Agent, "reset_reestablish_ms", Value::Num(20.0)),
        ]);
        let (cell, _) = ratio(&r, "throughput_after_mbps").unwrap();
        assert_eq!(cell, "1.00× (NM; not worse)");
        assert_eq!(ratio(&r, "reset_reestablish_ms").unwrap().0, "peers: never");
    }

    #[test]
    fn table_has_a_row_per_measured_metric_and_the_join_count() {
        let r = results(&[
            (Contender::Nm, "flap_join_ms", Value::Num(80.0)),
            (Contender::Mptcpd, "flap_join_ms", Value::Never),
            (Contender::Agent, "flap_join_ms", Value::Num(40.0)),
        ]);
        let t = table(&r);
        assert!(t.contains("| nmcli down/up flap: up → join (per flap) | ms | 80.0 (n=1) | never ≤ 8 s (n=1) | 40.0 (n=1) |"), "{t}");
        assert!(t.contains("| joins that succeed over the nmcli flaps | count | 1 / 1 | 0 / 1 | 1 / 1 | lost 0 vs 0 |"), "{t}");
        assert!(!t.contains("start → endpoints"), "{t}");
    }

    #[test]
    fn cycle_counts_are_compared_with_the_fewest_of_the_peers() {
        let mut r = results(&[]);
        for (c, closes, churn) in [
            (Contender::Nm, 3.0, 0.0),
            (Contender::Mptcpd, 1.0, 0.0),
            (Contender::Agent, 0.0, 2.0),
        ] {
            let x = r.contenders.iter_mut().find(|x| x.contender == c).unwrap();
            x.add_fact("cb_long_extra_closes", closes);
            x.add_fact("cb_long_endpoint_churn", churn);
        }
        let t = table(&r);
        assert!(
            t.contains("(either uplink) | count | 3 | 1 | 0 | 0 vs 1 (mptcpd; fewer) |"),
            "{t}"
        );
        assert!(
            t.contains("through IP_CHECK) | count | 0 | 0 | 2 | 2 vs 0 (NM; more) |"),
            "{t}"
        );
        // Only what ran: no row for a count nobody has, none for the wlan0 flaps.
        assert!(!t.contains("wlan0 flaps"), "{t}");
        let lines = ratio_lines(&r);
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("ours 0 vs best peer Mptcpd 1 (fewer)")),
            "{lines:?}"
        );
    }

    #[test]
    fn repetitions_name_only_the_scenarios_that_ran() {
        let mut p = results(&[]).params;
        p.scenarios = vec!["carrier-back".into()];
        let v = repetitions(&p);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("1 carrier cycles per class"), "{v:?}");
        // Runs recorded before the scenarios were: all of them.
        p.scenarios.clear();
        assert_eq!(repetitions(&p).len(), 5);
    }

    #[test]
    fn a_row_nobody_could_measure_says_why() {
        let mut r = results(&[
            (Contender::Nm, "cb_short_subflow_ms", Value::NotApplicable),
            (
                Contender::Mptcpd,
                "cb_short_subflow_ms",
                Value::NotApplicable,
            ),
            (Contender::Agent, "cb_short_subflow_ms", Value::Num(12.0)),
            (
                Contender::Agent,
                "cb_short_subflow_ms",
                Value::NotApplicable,
            ),
        ]);
        r.contenders[0].samples[0].note = Some("old subflow kept, no new join".into());
        let t = table(&r);
        assert!(
            t.contains("| n/a (n=1) | n/a (n=1) | 12.0 (n=1, 1 n/a) | peers: n/a |"),
            "{t}"
        );
        let n = notes(&r);
        assert!(n.contains("- Nm, carrier back after a 1 s cut"), "{n}");
        assert!(
            n.contains(": n/a in 1 of 1 (old subflow kept, no new join)"),
            "{n}"
        );
    }
}
