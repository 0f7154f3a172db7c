// SPDX-License-Identifier: MIT OR Apache-2.0
//! The plan as a human reads it.

use super::{DropReason, ExtraState, Kind, Plan};

/// Human-readable report.
pub fn render_text(plan: &Plan, list: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "mptcp-backport plan: {} {} on {} ({}..{})",
        plan.product, plan.version, plan.base, plan.base, plan.target
    );
    let _ = writeln!(
        s,
        "  source clone:                 {}",
        plan.source_repo.display()
    );
    let _ = writeln!(
        s,
        "  commits in range:             {} ({} merges)",
        plan.scanned, plan.merges
    );
    let _ = writeln!(s, "  touching the path set:        {}", plan.touching_paths);
    let carried_extras = plan
        .extras
        .iter()
        .filter(|e| e.state == ExtraState::Carried)
        .count();
    let _ = writeln!(
        s,
        "  extra commits carried:        {} of {} listed",
        carried_extras,
        plan.extras.len()
    );
    let dup = |f: fn(&DropReason) -> bool| plan.dropped.iter().filter(|d| f(&d.reason)).count();
    let _ = writeln!(
        s,
        "  already in base (dropped):    {} (patch-id {}, upstream reference {})",
        dup(|r| matches!(
            r,
            DropReason::DuplicatePatchId { .. } | DropReason::DuplicateUpstreamRef { .. }
        )),
        dup(|r| matches!(r, DropReason::DuplicatePatchId { .. })),
        dup(|r| matches!(r, DropReason::DuplicateUpstreamRef { .. }))
    );
    let _ = writeln!(
        s,
        "  reverted pairs (dropped):     {}",
        dup(|r| matches!(r, DropReason::RevertPair { .. })) / 2
    );
    let _ = writeln!(
        s,
        "  skipped by the manifest:      {}",
        dup(|r| matches!(r, DropReason::Manifest { .. }))
    );
    let _ = writeln!(
        s,
        "  our fixups:                   {}",
        plan.count(Kind::Fixup)
    );
    let _ = writeln!(
        s,
        "  patches in the series:        {} ({} upstream commits)",
        plan.entries.len(),
        plan.commit_count()
    );

    let _ = writeln!(s, "\nExtra commits:");
    for e in &plan.extras {
        let id = if e.id.is_empty() {
            "(unconfirmed)".to_string()
        } else {
            e.id[..12.min(e.id.len())].to_string()
        };
        let commit = e
            .commit
            .as_deref()
            .map(|c| format!(" -> {}", &c[..12]))
            .unwrap_or_default();
        let how = e.found_by.map(|h| format!(" by {h}")).unwrap_or_default();
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", e.detail)
        };
        let _ = writeln!(
            s,
            "  {:<10} {id:<13} {}{commit}{how}{detail}",
            e.state, e.subject
        );
    }

    let _ = writeln!(s, "\nPer file (path set):");
    for (f, n) in &plan.per_file {
        let _ = writeln!(s, "  {n:>5}  {f}");
    }
    let _ = writeln!(s, "\nCore files touched (outside the path set):");
    for (f, commits) in &plan.core_files {
        let shown: Vec<&str> = commits.iter().take(6).map(String::as_str).collect();
        let more = if commits.len() > 6 {
            format!(" +{}", commits.len() - 6)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  {:>5}  {f}  [{}{more}]",
            commits.len(),
            shown.join(" ")
        );
    }
    if !plan.renames.is_empty() {
        let _ = writeln!(s, "\nRenames:");
        for r in &plan.renames {
            let _ = writeln!(s, "  {}  {} -> {}", &r.commit[..12], r.from, r.to);
        }
    }
    if !plan.dropped.is_empty() {
        let _ = writeln!(s, "\nNot carried:");
        for d in &plan.dropped {
            let why = match &d.reason {
                DropReason::DuplicatePatchId { base_commit, .. } => {
                    format!("same patch-id as base {}", &base_commit[..12])
                }
                DropReason::DuplicateUpstreamRef { base_commit, .. } => {
                    format!("base {} names it as upstream", &base_commit[..12])
                }
                DropReason::Manifest { why, .. } => format!("manifest: {why}"),
                DropReason::RevertPair { other } => format!("reverted/revert of {}", &other[..12]),
            };
            let _ = writeln!(s, "  {}  {}  ({why})", &d.commit[..12], d.subject);
        }
    }
    let _ = writeln!(s, "\nNeeds attention ({}):", plan.attention.len());
    for a in &plan.attention {
        let _ = writeln!(s, "  - [{}] {}", a.topic, a.message);
    }
    if list {
        let _ = writeln!(s, "\nSeries:");
        for (n, e) in plan.entries.iter().enumerate() {
            let id = e
                .commit
                .as_deref()
                .map(|c| c[..12].to_string())
                .unwrap_or_else(|| "fixup".into());
            let rel = e.release.as_deref().unwrap_or("-");
            let kind = match e.kind {
                Kind::Upstream => "",
                Kind::Extra => " [extra]",
                Kind::Fixup => " [ours]",
            };
            let _ = writeln!(s, "  {:04} {rel:<11} {id:<12}{kind} {}", n + 1, e.subject);
        }
    }
    s
}
