// SPDX-License-Identifier: MIT OR Apache-2.0
//! `apply`: put an exported series onto a BSP tree — a git tree with `git am -3`, or a plain
//! tree with `patch -p1` (dry-run first, so a failing patch leaves nothing half-applied).
//!
//! On a conflict it stops and says which patch, which files, and which upstream commits last
//! changed the conflicting context on the source side (`git blame` of the patch's preimage in
//! the linux-stable clone): those are the candidate prerequisites. The session is recorded in a
//! state file so that `apply --continue` resumes after a manual fix; every step is logged.

mod am;
mod conflict;
mod patch;
mod state;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::export::{read_info, ExportInfo};
use crate::git::Git;
use crate::manifest::Manifest;
use crate::verify::check_kernel_tree;

use am::run_am;
pub use conflict::{
    parse_hunks, render_conflict, ConflictFile, ConflictReport, Hunk, Prerequisite,
};
pub(crate) use patch::patch_cmd;
use patch::run_plain;
pub(crate) use state::utc_now;
pub use state::State;
use state::{read_state, Log};

/// How patches are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `git am -3`: one commit per patch, three-way merge where the blobs are available.
    Git,
    /// `patch -p1`: for trees without git.
    Plain,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Start applying the series from its first patch.
    Start { series: PathBuf, mode: Option<Mode> },
    /// Resume after the user fixed the conflicting patch.
    Continue,
    /// Leave the conflicting patch out and go on.
    Skip,
    /// Stop the session (git: `git am --abort`).
    Abort,
}

/// Options common to all actions.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The BSP kernel tree.
    pub tree: PathBuf,
    /// linux-stable clone for conflict analysis (default: the one recorded at export).
    pub source: Option<PathBuf>,
    /// Manifest, for known-conflict hints and skip reasons.
    pub manifest: Option<Manifest>,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// Every patch is in.
    Done { applied: usize, skipped: usize },
    /// Stopped on a conflict; fix it and run `apply --continue`.
    Conflict(Box<ConflictReport>),
    /// The session was abandoned.
    Aborted,
}

/// Run an apply action.
pub fn apply(action: Action, opts: &ApplyOptions) -> Result<Outcome> {
    let tree = fs::canonicalize(&opts.tree).map_err(|e| Error::io(&opts.tree, e))?;
    check_kernel_tree(&tree)?;
    let git_tree = git_toplevel(&tree);
    let state_dir = match &git_tree {
        Some(git) => git.git_dir()?.join("mptcp-backport"),
        None => tree.join(".mptcp-backport"),
    };
    let state_path = state_dir.join("state.json");
    let log = Log {
        path: state_dir.join("apply.log"),
    };
    let existing = read_state(&state_path)?;

    match action {
        Action::Start { series, mode } => {
            if let Some(s) = existing {
                return Err(Error::Apply(format!(
                    "a session is already in progress in {} (patch {} of {}); use --continue, --skip or --abort",
                    tree.display(),
                    s.next + 1,
                    s.series.display()
                )));
            }
            let series = fs::canonicalize(&series).map_err(|e| Error::io(&series, e))?;
            let info = read_info(&series)?;
            check_series_files(&series, &info)?;
            let mode = match (mode, &git_tree) {
                (Some(Mode::Git), None) => return Err(Error::NotARepo(tree.clone())),
                (Some(m), _) => m,
                (None, Some(_)) => Mode::Git,
                (None, None) => Mode::Plain,
            };
            if let Some(git) = git_tree.as_ref().filter(|_| mode == Mode::Git) {
                let dirty = git.dirty_files()?;
                if !dirty.is_empty() {
                    return Err(Error::DirtyTree {
                        path: tree.clone(),
                        files: summarize(&dirty),
                    });
                }
                if git.git_dir()?.join("rebase-apply").exists() {
                    return Err(Error::Apply("a `git am` or rebase is already in progress in the tree; finish or abort it first".into()));
                }
            }
            fs::create_dir_all(&state_dir).map_err(|e| Error::io(&state_dir, e))?;
            log.write(&format!(
                "start: {} patches from {} ({} {}), mode {:?}",
                info.patches.len(),
                series.display(),
                info.product,
                info.version,
                mode
            ))?;
            let state = State {
                series,
                mode,
                next: 0,
                am_from: 0,
                applied: Vec::new(),
                skipped: Vec::new(),
                conflict: None,
            };
            run(
                state,
                &info,
                &tree,
                git_tree.as_ref(),
                opts,
                &state_path,
                &log,
            )
        }
        Action::Continue | Action::Skip => {
            let mut state = existing.ok_or_else(|| {
                Error::Apply(format!("no session in progress in {}", tree.display()))
            })?;
            let info = read_info(&state.series)?;
            let skip = matches!(action, Action::Skip);
            let failed = info
                .patches
                .get(state.next)
                .map(|p| p.file.clone())
                .unwrap_or_default();
            match state.mode {
                Mode::Git => {
                    let git = git_tree
                        .as_ref()
                        .ok_or_else(|| Error::NotARepo(tree.clone()))?;
                    let am_dir = git.git_dir()?.join("rebase-apply");
                    if am_dir.exists() {
                        // Logged by run_am once git am has taken the fix.
                        record(&mut state, &failed, skip);
                        state.next += 1;
                        let sub = if skip { "--skip" } else { "--continue" };
                        return run_am(state, &info, git, opts, &state_path, &log, &[sub]);
                    }
                    // The user finished the patch with git directly; go on with the next one.
                    log.write(&format!(
                        "git am session gone; taking {failed} as {}",
                        if skip { "skipped" } else { "done by hand" }
                    ))?;
                }
                Mode::Plain => {
                    log.write(&format!(
                        "{}: {failed}",
                        if skip {
                            "skip"
                        } else {
                            "continue after manual fix"
                        }
                    ))?;
                }
            }
            record(&mut state, &failed, skip);
            state.next += 1;
            state.conflict = None;
            run(
                state,
                &info,
                &tree,
                git_tree.as_ref(),
                opts,
                &state_path,
                &log,
            )
        }
        Action::Abort => {
            let state = existing.ok_or_else(|| {
                Error::Apply(format!("no session in progress in {}", tree.display()))
            })?;
            let mut note = format!("patches 1..{} stay applied", state.next);
            if let (Mode::Git, Some(git)) = (state.mode, &git_tree) {
                if git.git_dir()?.join("rebase-apply").exists() {
                    git.run(&["am", "--abort"])?;
                    // git am --abort rolls back its own run, which started at am_from.
                    note = format!("git am --abort: patches 1..{} stay applied", state.am_from);
                }
            }
            log.write(&format!("abort at patch {} ({note})", state.next + 1))?;
            fs::remove_file(&state_path).map_err(|e| Error::io(&state_path, e))?;
            Ok(Outcome::Aborted)
        }
    }
}

fn record(state: &mut State, file: &str, skip: bool) {
    if skip {
        state.skipped.push(file.to_string());
    } else {
        state.applied.push(file.to_string());
    }
}

/// Apply from `state.next` on.
fn run(
    state: State,
    info: &ExportInfo,
    tree: &Path,
    git: Option<&Git>,
    opts: &ApplyOptions,
    state_path: &Path,
    log: &Log,
) -> Result<Outcome> {
    match state.mode {
        Mode::Git => {
            let git = git.ok_or_else(|| Error::NotARepo(tree.to_path_buf()))?;
            run_am(state, info, git, opts, state_path, log, &[])
        }
        Mode::Plain => run_plain(state, info, tree, opts, state_path, log),
    }
}

fn finish(mut state: State, state_path: &Path, log: &Log) -> Result<Outcome> {
    state.conflict = None;
    log.write(&format!(
        "done: {} applied, {} skipped",
        state.applied.len(),
        state.skipped.len()
    ))?;
    if state_path.exists() {
        fs::remove_file(state_path).map_err(|e| Error::io(state_path, e))?;
    }
    Ok(Outcome::Done {
        applied: state.applied.len(),
        skipped: state.skipped.len(),
    })
}

pub(crate) fn git_toplevel(tree: &Path) -> Option<Git> {
    let git = Git::open(tree).ok()?;
    let top = git.run_text(&["rev-parse", "--show-toplevel"]).ok()?;
    let top = fs::canonicalize(top.trim()).ok()?;
    (top == tree).then_some(git)
}

fn check_series_files(dir: &Path, info: &ExportInfo) -> Result<()> {
    if let Some(p) = info.patches.iter().find(|p| !dir.join(&p.file).is_file()) {
        return Err(Error::Series {
            path: dir.to_path_buf(),
            message: format!("{} listed in export.json is missing", p.file),
        });
    }
    Ok(())
}

pub(crate) fn summarize(files: &[String]) -> String {
    let mut s: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more;
    if files.len() > 5 {
        more = format!("+{} more", files.len() - 5);
        s.push(&more);
    }
    s.join(", ")
}

pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
