// SPDX-License-Identifier: MIT OR Apache-2.0
//! `plan`: which commits of BASE..TARGET the series carries, in which order, and what needs a
//! human look. Few git processes whatever the history size:
//! 1 cat-file (tags), 1 log stream (both sides of base...target), 1 diff-tree|patch-id pipeline,
//! 1 cat-file (base files for conditions), plus 1–2 only when extras live outside the range.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Git, Resolved};
use crate::history::{self, Commit};
use crate::manifest::{Condition, Manifest, Status};

/// Inputs of a plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Base tag (a 5.10.y release the BSP is built on).
    pub base: String,
    /// Target tag whose MPTCP stack is carried.
    pub target: String,
    /// Evaluate manifest conditions on this tree instead of the base tag (the real BSP).
    pub conditions_tree: Option<PathBuf>,
}

/// Kind of a series entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Touches the path set.
    Upstream,
    /// Listed in the manifest as an extra commit.
    Extra,
    /// One of our fixups.
    Fixup,
}

/// One patch of the series, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub kind: Kind,
    /// Commit in the linux-stable clone (none for fixups).
    pub commit: Option<String>,
    pub subject: String,
    pub author: String,
    pub author_time: i64,
    /// First tag of the range containing the commit (`v5.11-rc1`, `v5.15.64`).
    pub release: Option<String>,
    /// Mainline commit a stable commit was taken from.
    pub upstream: Option<String>,
    /// Why it is carried (extras and fixups).
    pub why: Option<String>,
    /// Fixup file (absolute).
    pub fixup_file: Option<PathBuf>,
    /// Files outside the path set the commit changes.
    pub core_files: Vec<String>,
    /// Files the commit changes.
    pub files: Vec<String>,
}

/// Why a commit of the range is not carried.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum DropReason {
    /// Same patch-id as a commit already in the base.
    DuplicatePatchId {
        base_commit: String,
        base_subject: String,
    },
    /// A base commit names it (or its upstream) as its origin.
    DuplicateUpstreamRef {
        base_commit: String,
        base_subject: String,
    },
    /// `[[skip]]` in the manifest.
    Manifest {
        why: String,
        replaced_by: Option<String>,
    },
    /// It and its revert are both in the range.
    RevertPair { other: String },
}

/// A commit not carried, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub commit: String,
    pub subject: String,
    pub kind: Kind,
    #[serde(flatten)]
    pub reason: DropReason,
}

/// Resolution of one `[[extra]]`.
#[derive(Debug, Clone, Serialize)]
pub struct ExtraStatus {
    pub id: String,
    pub subject: String,
    /// `carried`, `in-base`, `not-needed`, `disabled`, `missing`.
    pub state: String,
    /// Commit used in the clone.
    pub commit: Option<String>,
    /// How it was found: `id`, `upstream-ref`, `subject`, `outside-range`.
    pub found_by: Option<String>,
    pub detail: String,
}

/// Something a human should look at before applying.
#[derive(Debug, Clone, Serialize)]
pub struct Attention {
    pub topic: String,
    pub commit: Option<String>,
    pub message: String,
}

/// A rename inside the carried commits.
#[derive(Debug, Clone, Serialize)]
pub struct RenameInfo {
    pub commit: String,
    pub from: String,
    pub to: String,
}

/// The plan: the ordered series plus the report.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub product: String,
    pub version: String,
    pub base: String,
    pub target: String,
    pub base_commit: String,
    pub target_commit: String,
    pub source_repo: PathBuf,
    /// Commits in the range (merges included).
    pub scanned: usize,
    pub merges: usize,
    /// Non-merge commits of the range touching the path set.
    pub touching_paths: usize,
    pub entries: Vec<Entry>,
    pub dropped: Vec<Dropped>,
    pub extras: Vec<ExtraStatus>,
    /// Path-set file → number of carried commits changing it.
    pub per_file: BTreeMap<String, usize>,
    /// Core file (outside the path set) → carried commits changing it.
    pub core_files: BTreeMap<String, Vec<String>>,
    pub renames: Vec<RenameInfo>,
    pub attention: Vec<Attention>,
}

impl Plan {
    /// Number of upstream commits (path set + extras) in the final series.
    pub fn commit_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind != Kind::Fixup)
            .count()
    }

    /// Entries of a kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }
}

/// One commit on its way into the series.
struct Candidate {
    commit: Commit,
    kind: Kind,
    why: Option<String>,
    release: Option<String>,
    dropped: Option<DropReason>,
}

/// Compute the plan.
pub fn plan(git: &Git, manifest: &Manifest, opts: &PlanOptions) -> Result<Plan> {
    manifest.check_base(&opts.base)?;
    let resolved = git.resolve_commits(&[opts.base.clone(), opts.target.clone()])?;
    let base_commit = match &resolved[0] {
        Resolved::Commit(id) => id.clone(),
        Resolved::Missing => {
            return Err(Error::MissingRev {
                repo: git.path().to_path_buf(),
                rev: opts.base.clone(),
            })
        }
    };
    let target_commit = match &resolved[1] {
        Resolved::Commit(id) => id.clone(),
        Resolved::Missing => {
            return Err(Error::MissingRev {
                repo: git.path().to_path_buf(),
                rev: opts.target.clone(),
            })
        }
    };

    // The one pass over the range, and the base side (the 5.10.y commits the target lacks).
    let t = std::time::Instant::now();
    let (range, base_side) = history::scan_sides(git, &base_commit, &target_commit)?;
    log::debug!(
        "scanned {} + {} commits in {:.2} s",
        range.len(),
        base_side.len(),
        t.elapsed().as_secs_f64()
    );
    let releases = history::first_releases(&range);
    let merges = range.iter().filter(|c| c.is_merge()).count();

    let conditions =
        Conditions::load(git, manifest, &base_commit, opts.conditions_tree.as_deref())?;
    let mut attention = Vec::new();

    // Path-set commits, in stream order.
    let index: HashMap<&str, usize> = range
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    let mut chosen: HashMap<usize, (Kind, Option<String>)> = HashMap::new();
    for (i, c) in range.iter().enumerate() {
        if !c.is_merge() && c.paths().any(|p| manifest.in_paths(p)) {
            chosen.insert(i, (Kind::Upstream, None));
        }
    }
    let touching_paths = chosen.len();

    // Extras: by id, by upstream reference, by subject; then outside the range.
    let mut extras = Vec::new();
    let mut outside: Vec<(usize, Commit)> = Vec::new(); // (extra index, commit)
    let extra_ids: Vec<String> = manifest
        .extra
        .iter()
        .map(|e| e.id.clone())
        .filter(|id| !id.is_empty())
        .collect();
    let extra_resolved: HashMap<String, Resolved> = extra_ids
        .iter()
        .cloned()
        .zip(git.resolve_commits(&extra_ids)?)
        .collect();
    let mut need_outside_ids = Vec::new();
    let mut need_outside_subjects = Vec::new();
    for (ei, extra) in manifest.extra.iter().enumerate() {
        let mut status = ExtraStatus {
            id: extra.id.clone(),
            subject: extra.subject.clone(),
            state: String::new(),
            commit: None,
            found_by: None,
            detail: String::new(),
        };
        if !extra.enabled {
            status.state = "disabled".into();
            status.detail = extra.instead.clone().unwrap_or_default();
            extras.push(status);
            continue;
        }
        if let Some(cond) = &extra.when {
            if !conditions.holds(cond) {
                status.state = "not-needed".into();
                status.detail = format!("condition not met: {}", cond.describe());
                extras.push(status);
                continue;
            }
        }
        let full = match extra_resolved.get(&extra.id) {
            Some(Resolved::Commit(id)) => Some(id.clone()),
            _ => None,
        };
        let found = full
            .as_deref()
            .and_then(|id| index.get(id).map(|&i| (i, "id")))
            .or_else(|| {
                if extra.id.is_empty() {
                    return None;
                }
                let want = extra.id.to_ascii_lowercase();
                range
                    .iter()
                    .position(|c| c.upstream.iter().any(|u| u.starts_with(&want)))
                    .map(|i| (i, "upstream-ref"))
            })
            .or_else(|| {
                range
                    .iter()
                    .position(|c| !c.is_merge() && c.subject.trim() == extra.subject.trim())
                    .map(|i| (i, "subject"))
            });
        match found {
            Some((i, how)) => {
                status.state = "carried".into();
                status.commit = Some(range[i].id.clone());
                status.found_by = Some(how.into());
                if how == "subject" && extra.status == Status::Unconfirmed {
                    attention.push(Attention {
                        topic: "unconfirmed-extra".into(),
                        commit: Some(range[i].id.clone()),
                        message: format!(
                            "extra \"{}\" has no confirmed id; resolved by subject to {} — check it and record the id in the manifest",
                            extra.subject,
                            range[i].short()
                        ),
                    });
                }
                chosen
                    .entry(i)
                    .and_modify(|(_, why)| *why = Some(extra.why.clone()))
                    .or_insert((Kind::Extra, Some(extra.why.clone())));
            }
            None => {
                if let Some(id) = full {
                    need_outside_ids.push((ei, id));
                } else {
                    need_outside_subjects.push(ei);
                }
            }
        }
        extras.push(status);
    }
    resolve_outside(
        git,
        manifest,
        &need_outside_ids,
        &need_outside_subjects,
        &mut outside,
    )?;
    for (ei, extra) in manifest.extra.iter().enumerate() {
        let is_pending =
            need_outside_ids.iter().any(|(i, _)| *i == ei) || need_outside_subjects.contains(&ei);
        if !is_pending {
            continue;
        }
        // One status per manifest extra, in manifest order.
        if let Some(status) = extras.get_mut(ei) {
            match outside.iter().find(|(i, _)| *i == ei) {
                Some((_, c)) => {
                    status.state = "carried".into();
                    status.commit = Some(c.id.clone());
                    status.found_by = Some("outside-range".into());
                    attention.push(Attention {
                        topic: "extra-outside-range".into(),
                        commit: Some(c.id.clone()),
                        message: format!(
                            "extra \"{}\" is not in {}..{}; {} from elsewhere in the clone is placed by commit date",
                            extra.subject,
                            opts.base,
                            opts.target,
                            c.short()
                        ),
                    });
                }
                None => {
                    status.state = "missing".into();
                    status.detail = "not found by id, upstream reference or subject".into();
                    attention.push(Attention {
                        topic: "extra-missing".into(),
                        commit: None,
                        message: format!(
                            "extra {} \"{}\" not found in the clone (fetch the branch that has it, or fix the manifest)",
                            if extra.id.is_empty() { "(no id)" } else { &extra.id },
                            extra.subject
                        ),
                    });
                }
            }
        }
    }

    // Candidates in order: range order, then out-of-range extras by commit date.
    let mut order: Vec<usize> = chosen.keys().copied().collect();
    order.sort_unstable();
    let mut candidates: Vec<Candidate> = order
        .iter()
        .map(|&i| {
            let (kind, why) = chosen[&i].clone();
            Candidate {
                commit: range[i].clone(),
                kind,
                why,
                release: releases[i].clone(),
                dropped: None,
            }
        })
        .collect();
    for (ei, commit) in outside {
        let pos = candidates
            .iter()
            .position(|c| c.commit.commit_time > commit.commit_time)
            .unwrap_or(candidates.len());
        let why = Some(manifest.extra[ei].why.clone());
        candidates.insert(
            pos,
            Candidate {
                commit,
                kind: Kind::Extra,
                why,
                release: None,
                dropped: None,
            },
        );
    }
    // Extras already in base are recorded below through duplicate detection.

    log::debug!("candidates at {:.2} s", t.elapsed().as_secs_f64());
    detect_duplicates(git, &mut candidates, &base_side, &mut attention)?;
    log::debug!("duplicates at {:.2} s", t.elapsed().as_secs_f64());
    drop_revert_pairs(&mut candidates);
    apply_skips(manifest, &mut candidates, &mut attention);

    for (status, c) in extras
        .iter_mut()
        .filter_map(|s| s.commit.clone().map(|id| (s, id)))
    {
        if let Some(cand) = candidates.iter().find(|x| x.commit.id == c) {
            if let Some(
                DropReason::DuplicatePatchId { base_commit, .. }
                | DropReason::DuplicateUpstreamRef { base_commit, .. },
            ) = &cand.dropped
            {
                status.state = "in-base".into();
                status.detail = format!(
                    "already in the base as {}",
                    &base_commit[..12.min(base_commit.len())]
                );
            }
        }
    }

    // Final entries with fixups placed.
    let fixups = place_fixups(manifest, &candidates, &conditions, &mut attention)?;
    let mut entries = Vec::new();
    let mut dropped = Vec::new();
    for slot in 0..=candidates.len() {
        for f in fixups.iter().filter(|f| f.slot == slot) {
            entries.push(f.entry.clone());
        }
        if slot == candidates.len() {
            break;
        }
        let c = &candidates[slot];
        match &c.dropped {
            Some(reason) => dropped.push(Dropped {
                commit: c.commit.id.clone(),
                subject: c.commit.subject.clone(),
                kind: c.kind,
                reason: reason.clone(),
            }),
            None => entries.push(entry_of(manifest, c)),
        }
    }

    known_conflicts(manifest, &entries, &conditions, &mut attention);
    let (per_file, core_files, renames) = file_report(manifest, &entries, &candidates);
    let selftests_only = entries
        .iter()
        .filter(|e| {
            e.kind == Kind::Upstream
                && !e.files.is_empty()
                && e.files
                    .iter()
                    .all(|f| f.starts_with("tools/testing/selftests/"))
        })
        .count();
    if selftests_only > 0 {
        attention.push(Attention {
            topic: "selftests".into(),
            commit: None,
            message: format!("{selftests_only} commits change only selftests; run them on the patched kernel (docs/backport-guide.md)"),
        });
    }
    let with_core = entries
        .iter()
        .filter(|e| e.kind != Kind::Fixup && !e.core_files.is_empty())
        .count();
    if with_core > 0 {
        attention.push(Attention {
            topic: "core-files".into(),
            commit: None,
            message: format!(
                "{with_core} carried commits also change {} core files (see \"core files\"): conflicts and silent TCP hooks live there",
                core_files.len()
            ),
        });
    }

    Ok(Plan {
        product: manifest.product.name.clone(),
        version: manifest.product.version.clone(),
        base: opts.base.clone(),
        target: opts.target.clone(),
        base_commit,
        target_commit,
        source_repo: git.path().to_path_buf(),
        scanned: range.len(),
        merges,
        touching_paths,
        entries,
        dropped,
        extras,
        per_file,
        core_files,
        renames,
        attention,
    })
}

/// Find extras that are not in the range: by id anywhere in the clone (one `git log
/// --no-walk`), else by subject with one `git log --all -F --grep`.
fn resolve_outside(
    git: &Git,
    manifest: &Manifest,
    by_id: &[(usize, String)],
    by_subject: &[usize],
    out: &mut Vec<(usize, Commit)>,
) -> Result<()> {
    if !by_id.is_empty() {
        let ids: Vec<String> = by_id.iter().map(|(_, id)| id.clone()).collect();
        let commits = history::scan_commits(git, &ids)?;
        for (ei, id) in by_id {
            if let Some(c) = commits.iter().find(|c| &c.id == id) {
                out.push((*ei, c.clone()));
            }
        }
    }
    if !by_subject.is_empty() {
        let mut args: Vec<String> = [
            "log",
            "--all",
            "--no-merges",
            "--fixed-strings",
            "--format=%H%x1f%s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for &ei in by_subject {
            args.push(format!("--grep={}", manifest.extra[ei].subject));
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let text = git.run_text(&argv)?;
        let mut found: Vec<(usize, String)> = Vec::new();
        for line in text.lines() {
            let Some((id, subject)) = line.split_once('\x1f') else {
                continue;
            };
            for &ei in by_subject {
                if subject.trim() == manifest.extra[ei].subject.trim()
                    && !found.iter().any(|(e, _)| *e == ei)
                {
                    found.push((ei, id.to_string()));
                }
            }
        }
        let ids: Vec<String> = found.iter().map(|(_, id)| id.clone()).collect();
        let commits = history::scan_commits(git, &ids)?;
        for (ei, id) in found {
            if let Some(c) = commits.iter().find(|c| c.id == id) {
                out.push((ei, c.clone()));
            }
        }
    }
    Ok(())
}

/// Mark candidates already in the base: same upstream reference, same patch-id (one
/// diff-tree|patch-id pipeline), or only the same subject (reported, not dropped).
fn detect_duplicates(
    git: &Git,
    candidates: &mut [Candidate],
    base_side: &[Commit],
    attention: &mut Vec<Attention>,
) -> Result<()> {
    // Upstream references of base commits (their own id does not count: it is not in the range).
    let mut base_refs: HashMap<&str, &Commit> = HashMap::new();
    for b in base_side.iter().filter(|b| !b.is_merge()) {
        for u in &b.upstream {
            base_refs.entry(u.as_str()).or_insert(b);
        }
    }
    for cand in candidates.iter_mut() {
        let keys = std::iter::once(cand.commit.id.as_str())
            .chain(cand.commit.upstream.iter().map(String::as_str));
        let hit = keys.filter_map(|k| base_refs.get(k)).next();
        if let Some(b) = hit {
            cand.dropped = Some(DropReason::DuplicateUpstreamRef {
                base_commit: b.id.clone(),
                base_subject: b.subject.clone(),
            });
        }
    }

    // Patch-ids: the candidates plus the base commits touching the same files.
    let files: HashSet<&str> = candidates.iter().flat_map(|c| c.commit.paths()).collect();
    let base_pool: Vec<&Commit> = base_side
        .iter()
        .filter(|b| !b.is_merge() && b.paths().any(|p| files.contains(p)))
        .collect();
    let mut ids: Vec<String> = candidates
        .iter()
        .filter(|c| c.dropped.is_none())
        .map(|c| c.commit.id.clone())
        .collect();
    ids.extend(base_pool.iter().map(|b| b.id.clone()));
    let pids = git.patch_ids(&ids)?;
    let mut base_by_pid: HashMap<&str, &Commit> = HashMap::new();
    for b in &base_pool {
        if let Some(pid) = pids.get(&b.id) {
            base_by_pid.entry(pid.as_str()).or_insert(*b);
        }
    }
    let base_by_subject: HashMap<&str, &Commit> = base_side
        .iter()
        .filter(|b| !b.is_merge())
        .map(|b| (b.subject.trim(), b))
        .collect();
    for cand in candidates.iter_mut().filter(|c| c.dropped.is_none()) {
        if let Some(b) = pids
            .get(&cand.commit.id)
            .and_then(|pid| base_by_pid.get(pid.as_str()))
        {
            cand.dropped = Some(DropReason::DuplicatePatchId {
                base_commit: b.id.clone(),
                base_subject: b.subject.clone(),
            });
        } else if let Some(b) = base_by_subject.get(cand.commit.subject.trim()) {
            attention.push(Attention {
                topic: "possible-duplicate".into(),
                commit: Some(cand.commit.id.clone()),
                message: format!(
                    "{} \"{}\" has the same subject as base commit {} but a different diff: partial or adapted backport? Kept; drop it if the base already has it",
                    cand.commit.short(),
                    cand.commit.subject,
                    b.short()
                ),
            });
        }
    }
    Ok(())
}

/// A commit and its revert, both in the range, cancel out.
fn drop_revert_pairs(candidates: &mut [Candidate]) {
    let live: HashMap<String, usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.dropped.is_none())
        .map(|(i, c)| (c.commit.id.clone(), i))
        .collect();
    let mut pairs = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if c.dropped.is_some() {
            continue;
        }
        if let Some(target) = c.commit.reverts.as_ref().and_then(|r| live.get(r)) {
            pairs.push((i, *target));
        }
    }
    for (revert, original) in pairs {
        let revert_id = candidates[revert].commit.id.clone();
        let original_id = candidates[original].commit.id.clone();
        candidates[revert].dropped = Some(DropReason::RevertPair { other: original_id });
        candidates[original].dropped = Some(DropReason::RevertPair { other: revert_id });
    }
}

fn matches_id(commit: &Commit, id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    commit.id.starts_with(&id) || commit.upstream.iter().any(|u| u.starts_with(&id))
}

/// `[[skip]]` entries: matched by id (or the id a stable commit names), else by subject.
fn apply_skips(manifest: &Manifest, candidates: &mut [Candidate], attention: &mut Vec<Attention>) {
    for skip in &manifest.skip {
        let mut hit = false;
        for cand in candidates.iter_mut() {
            let by_id = !skip.id.is_empty() && matches_id(&cand.commit, &skip.id);
            let by_subject =
                skip.id.is_empty() && cand.commit.subject.trim() == skip.subject.trim();
            if by_id || by_subject {
                hit = true;
                if cand.dropped.is_none() {
                    cand.dropped = Some(DropReason::Manifest {
                        why: skip.why.clone(),
                        replaced_by: skip.replaced_by.clone(),
                    });
                }
            }
        }
        if !hit {
            attention.push(Attention {
                topic: "skip-unmatched".into(),
                commit: None,
                message: format!(
                    "skip entry {} \"{}\" matches no commit of the range",
                    skip.id, skip.subject
                ),
            });
        }
    }
}

struct PlacedFixup {
    slot: usize,
    entry: Entry,
}

/// Slot `k` = before candidate `k` (`candidates.len()` = at the end). Anchors may be dropped
/// commits: a fixup replacing a skipped commit goes where that commit would have been.
fn place_fixups(
    manifest: &Manifest,
    candidates: &[Candidate],
    conditions: &Conditions,
    attention: &mut Vec<Attention>,
) -> Result<Vec<PlacedFixup>> {
    let mut placed = Vec::new();
    for fixup in &manifest.fixup {
        if let Some(cond) = &fixup.when {
            if !conditions.holds(cond) {
                continue;
            }
        }
        let file = manifest.dir.join(&fixup.file);
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(|s| s.trim_start_matches("[PATCH]").trim().to_string())
            .unwrap_or_else(|| fixup.file.clone());
        let author = text
            .lines()
            .find_map(|l| l.strip_prefix("From: "))
            .unwrap_or("")
            .to_string();
        let anchor = fixup
            .after
            .as_deref()
            .or(fixup.before.as_deref())
            .unwrap_or("end");
        let slot = match (fixup.after.as_deref(), anchor) {
            (Some("start"), _) => 0,
            (Some("end"), _) => candidates.len(),
            (_, id) => match candidates.iter().position(|c| matches_id(&c.commit, id)) {
                Some(pos) if fixup.after.is_some() => pos + 1,
                Some(pos) => pos,
                None => {
                    attention.push(Attention {
                        topic: "fixup-anchor".into(),
                        commit: None,
                        message: format!(
                            "fixup {}: anchor {} is not in the series; placed at the end",
                            fixup.file, id
                        ),
                    });
                    candidates.len()
                }
            },
        };
        let files = patch_files(&text);
        let core_files = files
            .iter()
            .filter(|f| !manifest.in_paths(f))
            .cloned()
            .collect();
        placed.push(PlacedFixup {
            slot,
            entry: Entry {
                kind: Kind::Fixup,
                commit: None,
                subject,
                author,
                author_time: 0,
                release: None,
                upstream: None,
                why: Some(fixup.why.clone()),
                fixup_file: Some(file),
                core_files,
                files,
            },
        });
    }
    Ok(placed)
}

/// Files a patch text changes (`diff --git a/X b/Y` lines).
pub fn patch_files(text: &str) -> Vec<String> {
    let mut files = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git a/") {
            if let Some((_, b)) = rest.split_once(" b/") {
                if !files.iter().any(|f| f == b) {
                    files.push(b.to_string());
                }
            }
        }
    }
    files
}

fn entry_of(manifest: &Manifest, c: &Candidate) -> Entry {
    let files: Vec<String> = c.commit.files.iter().map(|f| f.path.clone()).collect();
    let core_files = c
        .commit
        .paths()
        .filter(|p| !manifest.in_paths(p))
        .map(str::to_string)
        .collect::<Vec<_>>();
    let mut core_dedup: Vec<String> = Vec::new();
    for f in core_files {
        if !core_dedup.contains(&f) {
            core_dedup.push(f);
        }
    }
    Entry {
        kind: c.kind,
        commit: Some(c.commit.id.clone()),
        subject: c.commit.subject.clone(),
        author: c.commit.author.clone(),
        author_time: c.commit.author_time,
        release: c.release.clone(),
        upstream: c.commit.upstream.first().cloned(),
        why: c.why.clone(),
        fixup_file: None,
        core_files: core_dedup,
        files,
    }
}

fn known_conflicts(
    manifest: &Manifest,
    entries: &[Entry],
    conditions: &Conditions,
    attention: &mut Vec<Attention>,
) {
    for k in &manifest.known_conflict {
        if let Some(cond) = &k.when {
            if !conditions.holds(cond) {
                continue;
            }
        }
        let id = k.id.to_ascii_lowercase();
        let hit = entries.iter().find(|e| {
            e.commit
                .as_deref()
                .map(|c| c.starts_with(&id))
                .unwrap_or(false)
                || e.upstream
                    .as_deref()
                    .map(|u| u.starts_with(&id))
                    .unwrap_or(false)
        });
        if let Some(e) = hit {
            attention.push(Attention {
                topic: "known-conflict".into(),
                commit: e.commit.clone(),
                message: format!(
                    "{} \"{}\" will conflict in {}: {}",
                    k.id,
                    k.subject,
                    k.files.join(", "),
                    k.hint
                ),
            });
        }
    }
}

type FileReport = (
    BTreeMap<String, usize>,
    BTreeMap<String, Vec<String>>,
    Vec<RenameInfo>,
);

fn file_report(manifest: &Manifest, entries: &[Entry], candidates: &[Candidate]) -> FileReport {
    let mut per_file = BTreeMap::new();
    let mut core: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in entries {
        let label = e
            .commit
            .as_deref()
            .map(|c| c[..12.min(c.len())].to_string())
            .unwrap_or_else(|| {
                e.fixup_file
                    .as_ref()
                    .and_then(|f| f.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        for f in &e.files {
            if manifest.in_paths(f) {
                *per_file.entry(f.clone()).or_insert(0) += 1;
            }
        }
        for f in &e.core_files {
            core.entry(f.clone()).or_default().push(label.clone());
        }
    }
    let carried: HashSet<&str> = entries.iter().filter_map(|e| e.commit.as_deref()).collect();
    let renames = candidates
        .iter()
        .filter(|c| carried.contains(c.commit.id.as_str()))
        .flat_map(|c| {
            c.commit
                .files
                .iter()
                .filter(|f| f.status == 'R')
                .map(move |f| RenameInfo {
                    commit: c.commit.id.clone(),
                    from: f.old_path.clone().unwrap_or_default(),
                    to: f.path.clone(),
                })
        })
        .collect();
    (per_file, core, renames)
}

/// Files of the base (or BSP) tree that manifest conditions look at, read once.
pub struct Conditions {
    files: HashMap<String, Option<Vec<u8>>>,
}

impl Conditions {
    /// Read every file named by a condition, from `tree` if given, else from the base commit.
    pub fn load(
        git: &Git,
        manifest: &Manifest,
        base_commit: &str,
        tree: Option<&Path>,
    ) -> Result<Conditions> {
        let mut names: Vec<String> = manifest
            .extra
            .iter()
            .filter_map(|e| e.when.as_ref())
            .chain(manifest.fixup.iter().filter_map(|f| f.when.as_ref()))
            .chain(
                manifest
                    .known_conflict
                    .iter()
                    .filter_map(|k| k.when.as_ref()),
            )
            .map(|c| c.file.clone())
            .collect();
        names.sort();
        names.dedup();
        let mut files = HashMap::new();
        match tree {
            Some(dir) => {
                for n in names {
                    let content = std::fs::read(dir.join(&n)).ok();
                    files.insert(n, content);
                }
            }
            None => {
                let specs: Vec<String> =
                    names.iter().map(|n| format!("{base_commit}:{n}")).collect();
                let blobs = git.read_blobs(&specs)?;
                files.extend(names.into_iter().zip(blobs));
            }
        }
        Ok(Conditions { files })
    }

    /// Evaluate one condition.
    pub fn holds(&self, cond: &Condition) -> bool {
        cond.holds(self.files.get(&cond.file).and_then(|c| c.as_deref()))
    }
}

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
    let carried_extras = plan.extras.iter().filter(|e| e.state == "carried").count();
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
        let how = e
            .found_by
            .as_deref()
            .map(|h| format!(" by {h}"))
            .unwrap_or_default();
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
