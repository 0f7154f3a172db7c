// SPDX-License-Identifier: MIT OR Apache-2.0
//! `plan`: which commits of BASE..TARGET the series carries, in which order, and what needs a
//! human look. Few git processes whatever the history size:
//! 1 cat-file (tags), 1 log stream (both sides of base...target), 1 diff-tree|patch-id pipeline,
//! 1 cat-file (base files for conditions), plus 1–2 only when extras live outside the range.

mod conditions;
mod extras;
mod filter;
mod render;
mod series;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Git, Resolved};
use crate::history::{self, Commit};
use crate::manifest::Manifest;

pub use conditions::Conditions;
pub use render::render_text;
pub use series::patch_files;

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
    pub state: ExtraState,
    /// Commit used in the clone.
    pub commit: Option<String>,
    pub found_by: Option<FoundBy>,
    pub detail: String,
}

/// What became of one `[[extra]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtraState {
    /// In the series.
    Carried,
    /// The base already has it (same patch-id or upstream reference).
    InBase,
    /// Its manifest condition does not hold on the base (or BSP) tree.
    NotNeeded,
    /// Disabled in the manifest.
    Disabled,
    /// Not found in the clone.
    Missing,
}

impl ExtraState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExtraState::Carried => "carried",
            ExtraState::InBase => "in-base",
            ExtraState::NotNeeded => "not-needed",
            ExtraState::Disabled => "disabled",
            ExtraState::Missing => "missing",
        }
    }
}

impl std::fmt::Display for ExtraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How an `[[extra]]` was found in the clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// Its commit id is in the range.
    Id,
    /// A commit of the range names it as its upstream.
    UpstreamRef,
    /// A commit of the range has its subject.
    Subject,
    /// Found elsewhere in the clone, placed by commit date.
    OutsideRange,
}

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Id => "id",
            FoundBy::UpstreamRef => "upstream-ref",
            FoundBy::Subject => "subject",
            FoundBy::OutsideRange => "outside-range",
        }
    }
}

impl std::fmt::Display for FoundBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
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

/// Compute the plan, phase by phase.
pub fn plan(git: &Git, manifest: &Manifest, opts: &PlanOptions) -> Result<Plan> {
    manifest.check_base(&opts.base)?;
    let (base_commit, target_commit) = resolve_tags(git, opts)?;

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

    // Selection: the path set, then the extras (in the range or elsewhere in the clone).
    let mut chosen = select_path_set(manifest, &range);
    let touching_paths = chosen.len();
    let found = extras::resolve(
        git,
        manifest,
        opts,
        &range,
        &conditions,
        &mut chosen,
        &mut attention,
    )?;
    let mut extras = found.statuses;
    let mut candidates = order_candidates(manifest, &range, &releases, &chosen, found.outside);
    log::debug!("candidates at {:.2} s", t.elapsed().as_secs_f64());

    // Filtering: what the base has, revert pairs, the manifest's skips.
    filter::detect_duplicates(git, &mut candidates, &base_side, &mut attention)?;
    log::debug!("duplicates at {:.2} s", t.elapsed().as_secs_f64());
    filter::drop_revert_pairs(&mut candidates);
    filter::apply_skips(manifest, &mut candidates, &mut attention);
    extras::mark_in_base(&mut extras, &candidates);

    // The series: fixups placed among the carried commits.
    let (entries, dropped) = series::assemble(manifest, &candidates, &conditions, &mut attention)?;

    // Report.
    series::known_conflicts(manifest, &entries, &conditions, &mut attention);
    let (per_file, core_files, renames) = series::file_report(manifest, &entries, &candidates);
    summary_attention(&entries, &core_files, &mut attention);

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

/// Base and target tags to commit ids.
fn resolve_tags(git: &Git, opts: &PlanOptions) -> Result<(String, String)> {
    let resolved = git.resolve_commits(&[opts.base.clone(), opts.target.clone()])?;
    let mut ids = Vec::with_capacity(2);
    for (r, rev) in resolved.into_iter().zip([&opts.base, &opts.target]) {
        match r {
            Resolved::Commit(id) => ids.push(id),
            Resolved::Missing => {
                return Err(Error::MissingRev {
                    repo: git.path().to_path_buf(),
                    rev: rev.clone(),
                })
            }
        }
    }
    let target = ids.pop().unwrap_or_default();
    let base = ids.pop().unwrap_or_default();
    Ok((base, target))
}

/// Range index → (kind, why) of the commits selected so far.
type Chosen = HashMap<usize, (Kind, Option<String>)>;

/// Non-merge commits of the range touching the path set, by range index.
fn select_path_set(manifest: &Manifest, range: &[Commit]) -> Chosen {
    range
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_merge() && c.paths().any(|p| manifest.in_paths(p)))
        .map(|(i, _)| (i, (Kind::Upstream, None)))
        .collect()
}

/// Candidates in order: range order, then out-of-range extras by commit date.
fn order_candidates(
    manifest: &Manifest,
    range: &[Commit],
    releases: &[Option<String>],
    chosen: &Chosen,
    outside: Vec<(usize, Commit)>,
) -> Vec<Candidate> {
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
    // Extras already in base are recorded later through duplicate detection.
    candidates
}

/// Whole-series notes: selftest-only commits and core files touched.
fn summary_attention(
    entries: &[Entry],
    core_files: &BTreeMap<String, Vec<String>>,
    attention: &mut Vec<Attention>,
) {
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
}
