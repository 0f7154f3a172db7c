// SPDX-License-Identifier: MIT OR Apache-2.0
//! The soak's summary: the markdown section for docs/performance.md, the console.

use super::*;

pub(super) fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("never".into(), |x| format!("{x:.1} ms"))
}

pub(super) fn failed_restart(what: &str, e: String) -> Restart {
    Restart {
        what: what.into(),
        healthy_untouched: false,
        resync_ms: None,
        detail: format!("could not run: {e}"),
    }
}

/// The summary for docs/performance.md.
pub(super) fn markdown(r: &SoakReport, args: &SoakArgs) -> String {
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

pub(super) fn print_report(r: &SoakReport, dir: &std::path::Path) {
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
