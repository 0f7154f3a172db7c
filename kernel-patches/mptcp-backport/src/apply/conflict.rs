// SPDX-License-Identifier: MIT OR Apache-2.0
//! Conflict analysis: which hunks of which files failed, and which upstream commits last
//! changed their context on the source side (the candidate prerequisites).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::{save_state, Log};
use super::{tail, ApplyOptions, Outcome, State};
use crate::error::Result;
use crate::export::ExportInfo;
use crate::git::Git;
use crate::plan::Kind;

/// Where and why `apply` stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictReport {
    /// Index (0-based) and file of the patch that failed.
    pub index: usize,
    /// Patches in the series.
    #[serde(default)]
    pub total: usize,
    pub patch: String,
    pub kind: Kind,
    pub commit: Option<String>,
    pub subject: String,
    pub files: Vec<ConflictFile>,
    /// Upstream commits that last changed the conflicting context (source side).
    pub candidates: Vec<Prerequisite>,
    pub hints: Vec<String>,
    /// What git am / patch said (last lines).
    pub output: String,
}

/// A file that did not apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConflictFile {
    pub path: String,
    /// Preimage line ranges (start, length) of the hunks that failed (all hunks when unknown).
    pub hunks: Vec<(u32, u32)>,
}

/// A candidate prerequisite commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prerequisite {
    pub commit: String,
    pub subject: String,
    /// Conflicting context lines it last changed.
    pub lines: usize,
    pub files: Vec<String>,
    /// Position in the series when it is part of it (1-based), else not carried.
    pub in_series: Option<usize>,
    pub note: String,
}

pub(super) fn conflict(
    mut state: State,
    info: &ExportInfo,
    files: Vec<(String, Vec<u32>)>,
    output: String,
    opts: &ApplyOptions,
    state_path: &Path,
    log: &Log,
) -> Result<Outcome> {
    let patch = &info.patches[state.next];
    let text = fs::read_to_string(state.series.join(&patch.file)).unwrap_or_default();
    let hunks = parse_hunks(&text);
    let mut conflict_files = Vec::new();
    for (path, failed) in files {
        let all = hunks.get(&path).cloned().unwrap_or_default();
        let chosen: Vec<(u32, u32)> = if failed.is_empty() {
            all.iter().map(|h| (h.old_start, h.old_len)).collect()
        } else {
            // `failed` holds hunk numbers (patch) or preimage start lines (git apply).
            let picked: Vec<(u32, u32)> = all
                .iter()
                .enumerate()
                .filter(|(i, h)| failed.contains(&(*i as u32 + 1)) || failed.contains(&h.old_start))
                .map(|(_, h)| (h.old_start, h.old_len))
                .collect();
            if picked.is_empty() {
                all.iter().map(|h| (h.old_start, h.old_len)).collect()
            } else {
                picked
            }
        };
        conflict_files.push(ConflictFile {
            path,
            hunks: chosen,
        });
    }
    let mut hints = Vec::new();
    let candidates = match (&patch.commit, patch.kind) {
        (Some(commit), _) => prerequisites(info, commit, &conflict_files, opts, &mut hints),
        (None, _) => {
            hints.push("this is one of our fixups: its header says which tree its context was checked against".into());
            Vec::new()
        }
    };
    if let (Some(m), Some(commit)) = (&opts.manifest, &patch.commit) {
        for k in &m.known_conflict {
            let id = k.id.to_ascii_lowercase();
            if commit.starts_with(&id)
                || patch
                    .upstream
                    .as_deref()
                    .map(|u| u.starts_with(&id))
                    .unwrap_or(false)
            {
                hints.push(format!(
                    "known conflict ({}): {}",
                    k.files.join(", "),
                    k.hint
                ));
            }
        }
    }
    let report = ConflictReport {
        index: state.next,
        total: info.patches.len(),
        patch: patch.file.clone(),
        kind: patch.kind,
        commit: patch.commit.clone(),
        subject: patch.subject.clone(),
        files: conflict_files,
        candidates,
        hints,
        output: tail(&output, 25),
    };
    log.write(&format!(
        "conflict in {} ({}): {}",
        report.patch,
        report
            .commit
            .as_deref()
            .map(|c| &c[..12.min(c.len())])
            .unwrap_or("fixup"),
        report
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    state.conflict = Some(report.clone());
    save_state(state_path, &state)?;
    Ok(Outcome::Conflict(Box::new(report)))
}

/// Blame the conflicting preimage lines at `commit^` in the source clone; keep commits that
/// the base does not have.
fn prerequisites(
    info: &ExportInfo,
    commit: &str,
    files: &[ConflictFile],
    opts: &ApplyOptions,
    hints: &mut Vec<String>,
) -> Vec<Prerequisite> {
    let source = opts
        .source
        .clone()
        .unwrap_or_else(|| info.source_repo.clone());
    let git = match Git::open(&source) {
        Ok(g) => g,
        Err(_) => {
            hints.push(format!(
                "no linux-stable clone at {} for conflict analysis (give --source)",
                source.display()
            ));
            return Vec::new();
        }
    };
    let parent = format!("{commit}^");
    let mut by_commit: BTreeMap<String, (usize, Vec<String>, String)> = BTreeMap::new();
    for f in files {
        let mut args: Vec<String> = vec!["blame".into(), "--porcelain".into()];
        let mut any = false;
        for &(start, len) in &f.hunks {
            if start == 0 {
                continue;
            }
            let end = start + len.max(1) - 1;
            args.push(format!("-L{start},{end}"));
            any = true;
        }
        if !any {
            continue;
        }
        args.extend([parent.clone(), "--".into(), f.path.clone()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = match git.run_text(&argv) {
            Ok(t) => t,
            Err(_) => {
                hints.push(format!(
                    "{}: not in {} on the source side (new file, or renamed by an earlier commit)",
                    f.path, &parent
                ));
                continue;
            }
        };
        let mut summaries: HashMap<String, String> = HashMap::new();
        let mut current = String::new();
        for line in text.lines() {
            let first = line.split(' ').next().unwrap_or("");
            if first.len() == 40
                && first.bytes().all(|b| b.is_ascii_hexdigit())
                && line.split(' ').count() >= 3
            {
                current = first.to_string();
                let e = by_commit
                    .entry(current.clone())
                    .or_insert((0, Vec::new(), String::new()));
                e.0 += 1;
                if !e.1.contains(&f.path) {
                    e.1.push(f.path.clone());
                }
            } else if let Some(s) = line.strip_prefix("summary ") {
                summaries.insert(current.clone(), s.to_string());
            }
        }
        for (c, s) in summaries {
            if let Some(e) = by_commit.get_mut(&c) {
                e.2 = s;
            }
        }
    }
    let position: HashMap<&str, usize> = info
        .patches
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.commit.as_deref().map(|c| (c, i + 1)))
        .collect();
    let mut out = Vec::new();
    for (c, (lines, files, subject)) in by_commit {
        if git.is_ancestor(&c, &info.base_commit).unwrap_or(false) {
            continue; // already in the base the BSP is built on
        }
        let in_series = position.get(c.as_str()).copied();
        let mut note = match in_series {
            Some(p) => format!("in the series as patch {p}"),
            None => "NOT in the series: candidate prerequisite (add it as [[extra]] in the manifest, or adapt the hunk)".into(),
        };
        if let Some(m) = &opts.manifest {
            if let Some(s) = m
                .skip
                .iter()
                .find(|s| !s.id.is_empty() && c.starts_with(&s.id.to_ascii_lowercase()))
            {
                note = format!(
                    "skipped by the manifest ({}){}",
                    s.why,
                    s.replaced_by
                        .as_ref()
                        .map(|r| format!(", replaced by {r}"))
                        .unwrap_or_default()
                );
            }
        }
        out.push(Prerequisite {
            commit: c,
            subject,
            lines,
            files,
            in_series,
            note,
        });
    }
    out.sort_by(|a, b| b.lines.cmp(&a.lines).then(a.commit.cmp(&b.commit)));
    out
}

/// A hunk header of a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub old_len: u32,
}

/// Hunks per (preimage) file of a patch text.
pub fn parse_hunks(text: &str) -> HashMap<String, Vec<Hunk>> {
    let mut map: HashMap<String, Vec<Hunk>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            current = rest.split_once(" b/").map(|(a, _)| a.to_string());
        } else if let (Some(file), Some(rest)) = (&current, line.strip_prefix("@@ -")) {
            let range = rest.split_whitespace().next().unwrap_or("");
            let (start, len) = match range.split_once(',') {
                Some((s, l)) => (s.parse().unwrap_or(0), l.parse().unwrap_or(0)),
                None => (range.parse().unwrap_or(0), 1),
            };
            map.entry(file.clone()).or_default().push(Hunk {
                old_start: start,
                old_len: len,
            });
        }
    }
    map
}

/// Human-readable conflict report.
pub fn render_conflict(r: &ConflictReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let id = r
        .commit
        .as_deref()
        .map(|c| c[..12.min(c.len())].to_string())
        .unwrap_or_else(|| "our fixup".into());
    let _ = writeln!(
        s,
        "CONFLICT at patch {}/{}: {}",
        r.index + 1,
        r.total,
        r.patch
    );
    let _ = writeln!(s, "  commit:  {id}  {}", r.subject);
    let _ = writeln!(s, "  files:");
    for f in &r.files {
        let hunks: Vec<String> = f.hunks.iter().map(|(a, l)| format!("-{a},{l}")).collect();
        let _ = writeln!(s, "    {}  (hunks {})", f.path, hunks.join(" "));
    }
    if r.candidates.is_empty() {
        let _ = writeln!(
            s,
            "  candidate prerequisites: none found on the source side"
        );
    } else {
        let _ = writeln!(s, "  candidate prerequisites (upstream commits that last changed the conflicting context):");
        for c in &r.candidates {
            let _ = writeln!(
                s,
                "    {}  {}  [{} lines in {}] {}",
                &c.commit[..12],
                c.subject,
                c.lines,
                c.files.join(", "),
                c.note
            );
        }
    }
    for h in &r.hints {
        let _ = writeln!(s, "  hint: {h}");
    }
    let _ = writeln!(
        s,
        "  output:\n{}",
        r.output
            .lines()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = writeln!(
        s,
        "\nFix the files (git: resolve and `git add`), then `mptcp-backport apply --continue --tree ...`;\n`--skip` leaves this patch out, `--abort` ends the session."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hunks_are_parsed_per_file() {
        let text = "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -10,7 +10,8 @@ f\n a\n@@ -40 +41 @@\n-b\n+c\ndiff --git a/y.c b/z.c\n@@ -1,3 +1,3 @@\n";
        let h = parse_hunks(text);
        assert_eq!(
            h["x.c"],
            vec![
                Hunk {
                    old_start: 10,
                    old_len: 7
                },
                Hunk {
                    old_start: 40,
                    old_len: 1
                }
            ]
        );
        assert_eq!(
            h["y.c"],
            vec![Hunk {
                old_start: 1,
                old_len: 3
            }]
        );
    }
}
