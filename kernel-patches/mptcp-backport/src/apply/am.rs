// SPDX-License-Identifier: MIT OR Apache-2.0
//! `git am -3`: the whole rest of the series in one process, and where it stopped.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use super::conflict::conflict;
use super::patch::{patch_cmd, patch_conflict_files};
use super::state::Log;
use super::{finish, tail, ApplyOptions, Outcome, State};
use crate::error::{Error, Result};
use crate::export::ExportInfo;
use crate::git::Git;

/// `git am -3` the remaining patches in one process (or `git am --continue/--skip`).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_am(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
