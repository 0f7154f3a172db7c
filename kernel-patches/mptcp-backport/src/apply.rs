// SPDX-License-Identifier: MIT OR Apache-2.0
//! `apply`: put an exported series onto a BSP tree — a git tree with `git am -3`, or a plain
//! tree with `patch -p1` (dry-run first, so a failing patch leaves nothing half-applied).
//!
//! On a conflict it stops and says which patch, which files, and which upstream commits last
//! changed the conflicting context on the source side (`git blame` of the patch's preimage in
//! the linux-stable clone): those are the candidate prerequisites. The session is recorded in a
//! state file so that `apply --continue` resumes after a manual fix; every step is logged.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::export::{read_info, ExportInfo};
use crate::git::Git;
use crate::manifest::Manifest;
use crate::plan::Kind;
use crate::verify::check_kernel_tree;

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

/// Persistent state of an apply session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub series: PathBuf,
    pub mode: Mode,
    /// Index of the first patch not yet dealt with.
    pub next: usize,
    /// Index at which the running `git am` session started (git mode).
    pub am_from: usize,
    pub applied: Vec<String>,
    pub skipped: Vec<String>,
    pub conflict: Option<ConflictReport>,
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

/// `git am -3` the remaining patches in one process (or `git am --continue/--skip`).
#[allow(clippy::too_many_arguments)]
fn run_am(
    mut state: State,
    info: &ExportInfo,
    git: &Git,
    opts: &ApplyOptions,
    state_path: &Path,
    log: &Log,
    resume: &[&str],
) -> Result<Outcome> {
    if resume.is_empty() {
        if state.next >= info.patches.len() {
            return finish(state, state_path, log);
        }
        state.am_from = state.next;
    }
    let mut args: Vec<String> = vec!["am".into()];
    if resume.is_empty() {
        args.extend(["-3".to_string(), "--keep-cr".to_string()]);
        for p in &info.patches[state.next..] {
            args.push(state.series.join(&p.file).to_string_lossy().into_owned());
        }
    } else {
        args.extend(resume.iter().map(|s| s.to_string()));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = git.command(&argv);
    if git
        .run_text(&["config", "user.email"])
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        cmd.env("GIT_COMMITTER_NAME", "mptcp-backport")
            .env("GIT_COMMITTER_EMAIL", "mptcp-backport@localhost");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: "git am".into(),
            message: e.to_string(),
        })?;
    let resumed = |log: &Log, state: &State| -> Result<()> {
        match resume.first() {
            Some(&"--skip") => log.write(&format!(
                "skip: {}",
                state.skipped.last().map(String::as_str).unwrap_or("")
            )),
            Some(_) => log.write(&format!(
                "continue after manual fix: {}",
                state.applied.last().map(String::as_str).unwrap_or("")
            )),
            None => Ok(()),
        }
    };
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let am_dir = git.git_dir()?.join("rebase-apply");
    if out.status.success() && !am_dir.exists() {
        resumed(log, &state)?;
        for p in &info.patches[state.next.min(info.patches.len())..] {
            log.write(&format!("applied {}", p.file))?;
            state.applied.push(p.file.clone());
        }
        state.next = info.patches.len();
        return finish(state, state_path, log);
    }
    if !am_dir.exists() {
        return Err(Error::Command {
            command: "git am".into(),
            message: tail(&output, 20),
        });
    }
    // rebase-apply/next: number (1-based) of the patch git am stopped on, in this session.
    let next_text = fs::read_to_string(am_dir.join("next")).unwrap_or_default();
    let k: usize = next_text
        .trim()
        .parse()
        .map_err(|_| Error::parse("git am state", format!("rebase-apply/next = {next_text:?}")))?;
    let failed = state.am_from + k.saturating_sub(1);
    if failed < state.next {
        // `--continue` on the same patch: the fix is not staged yet. Nothing was saved.
        return Err(Error::Apply(format!(
            "patch {} still does not apply: resolve the conflicts, `git add` the files, then run apply --continue again\n{}",
            info.patches.get(failed).map(|p| p.file.as_str()).unwrap_or(""),
            tail(&output, 12)
        )));
    }
    resumed(log, &state)?;
    for p in &info.patches[state.next..failed] {
        log.write(&format!("applied {}", p.file))?;
        state.applied.push(p.file.clone());
    }
    state.next = failed;
    // Three-way conflicts leave unmerged paths; otherwise nothing was touched and a dry run of
    // GNU patch tells which hunks of which files fail (git am names at most one file).
    let mut files: Vec<(String, Vec<u32>)> = git
        .run_text(&["diff", "--name-only", "--diff-filter=U"])
        .unwrap_or_default()
        .lines()
        .map(|f| (f.to_string(), Vec::new()))
        .collect();
    if files.is_empty() {
        let patch_file = state.series.join(&info.patches[failed].file);
        if let Ok((false, dry)) = patch_cmd(git.path(), &patch_file, true) {
            files = patch_conflict_files(&dry);
        }
    }
    if files.is_empty() {
        files = am_conflict_files(&output);
    }
    conflict(state, info, files, output, opts, state_path, log)
}

/// `patch -p1` each remaining patch, dry-run first.
fn run_plain(
    mut state: State,
    info: &ExportInfo,
    tree: &Path,
    opts: &ApplyOptions,
    state_path: &Path,
    log: &Log,
) -> Result<Outcome> {
    while state.next < info.patches.len() {
        let p = &info.patches[state.next];
        let file = state.series.join(&p.file);
        let dry = patch_cmd(tree, &file, true)?;
        if !dry.0 {
            let files = patch_conflict_files(&dry.1);
            return conflict(state, info, files, dry.1, opts, state_path, log);
        }
        let real = patch_cmd(tree, &file, false)?;
        if !real.0 {
            return Err(Error::Command {
                command: format!("patch -p1 < {}", file.display()),
                message: tail(&real.1, 20),
            });
        }
        log.write(&format!("applied {}", p.file))?;
        state.applied.push(p.file.clone());
        state.next += 1;
        save_state(state_path, &state)?;
    }
    finish(state, state_path, log)
}

pub(crate) fn patch_cmd(tree: &Path, file: &Path, dry: bool) -> Result<(bool, String)> {
    let mut cmd = Command::new("patch");
    cmd.args([
        "-p1",
        "--forward",
        "--batch",
        "--fuzz=0",
        "--no-backup-if-mismatch",
        "-r",
        "-",
    ]);
    if dry {
        cmd.arg("--dry-run");
    }
    cmd.arg("-i")
        .arg(file)
        .current_dir(tree)
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    let out = cmd.output().map_err(|e| Error::Command {
        command: "patch".into(),
        message: format!("{e} (install GNU patch)"),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
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

fn conflict(
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

/// Files (and failing preimage start lines) from `git am` output.
fn am_conflict_files(output: &str) -> Vec<(String, Vec<u32>)> {
    let mut files: Vec<(String, Vec<u32>)> = Vec::new();
    let mut add = |path: &str, line: Option<u32>| {
        let path = path.trim().to_string();
        if path.is_empty() {
            return;
        }
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, lines)) => lines.extend(line),
            None => files.push((path, line.into_iter().collect())),
        }
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("error: patch failed: ") {
            match rest.rsplit_once(':') {
                Some((p, l)) => add(p, l.trim().parse().ok()),
                None => add(rest, None),
            }
        } else if let Some(rest) = line.strip_prefix("CONFLICT (content): Merge conflict in ") {
            add(rest, None);
        } else if let Some(rest) = line.strip_prefix("error: ") {
            for suffix in [
                ": patch does not apply",
                ": does not exist in index",
                ": already exists in index",
                ": already exists in working directory",
                ": No such file or directory",
            ] {
                if let Some(p) = rest.strip_suffix(suffix) {
                    add(p, None);
                }
            }
        }
    }
    files
}

/// Files and failing hunk numbers from GNU patch output.
fn patch_conflict_files(output: &str) -> Vec<(String, Vec<u32>)> {
    let mut files: Vec<(String, Vec<u32>)> = Vec::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        let file = line
            .strip_prefix("checking file ")
            .or_else(|| line.strip_prefix("patching file "));
        if let Some(f) = file {
            let f = f.trim().trim_matches('\'').to_string();
            current = Some(f);
            continue;
        }
        let failed = line.starts_with("Hunk #") && line.contains(" FAILED");
        let problem = failed
            || line.contains("Reversed (or previously applied) patch detected")
            || line.contains("can't find file to patch")
            || line.contains("No such file or directory");
        if let (true, Some(f)) = (problem, &current) {
            let n = if failed {
                line.trim_start_matches("Hunk #")
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
            } else {
                None
            };
            match files.iter_mut().find(|(p, _)| p == f) {
                Some((_, ns)) => ns.extend(n),
                None => files.push((f.clone(), n.into_iter().collect())),
            }
        }
    }
    files
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

fn read_state(path: &Path) -> Result<Option<State>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::parse(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn save_state(path: &Path, state: &State) -> Result<()> {
    let json =
        serde_json::to_vec_pretty(state).map_err(|e| Error::parse("apply state", e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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

/// The apply log (one timestamped line per step).
struct Log {
    path: PathBuf,
}

impl Log {
    fn write(&self, line: &str) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        writeln!(f, "{} {line}", utc_now()).map_err(|e| Error::io(&self.path, e))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` without a date crate.
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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

    #[test]
    fn am_output_is_parsed() {
        let out = "Applying: mptcp: x\nerror: patch failed: net/ipv4/tcp.c:2511\nerror: net/ipv4/tcp.c: patch does not apply\nPatch failed at 0003 mptcp: x\n";
        assert_eq!(
            am_conflict_files(out),
            vec![("net/ipv4/tcp.c".to_string(), vec![2511])]
        );
        let out = "CONFLICT (content): Merge conflict in net/mptcp/protocol.c\n";
        assert_eq!(
            am_conflict_files(out),
            vec![("net/mptcp/protocol.c".to_string(), vec![])]
        );
    }

    #[test]
    fn patch_output_is_parsed() {
        let out = "checking file net/ipv4/tcp.c\nHunk #2 FAILED at 2511.\n1 out of 2 hunks FAILED\nchecking file net/mptcp/protocol.c\n";
        assert_eq!(
            patch_conflict_files(out),
            vec![("net/ipv4/tcp.c".to_string(), vec![2])]
        );
    }

    #[test]
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20);
        assert!(s.ends_with('Z'));
    }
}
