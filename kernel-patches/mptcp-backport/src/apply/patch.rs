// SPDX-License-Identifier: MIT OR Apache-2.0
//! GNU `patch -p1` for trees without git: dry-run first, so a failing patch leaves nothing
//! half-applied.

use std::path::Path;
use std::process::{Command, Stdio};

use super::conflict::conflict;
use super::state::{save_state, Log};
use super::{finish, tail, ApplyOptions, Outcome, State};
use crate::error::{Error, Result};
use crate::export::ExportInfo;

/// `patch -p1` each remaining patch, dry-run first.
pub(super) fn run_plain(
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

/// Files and failing hunk numbers from GNU patch output.
pub(super) fn patch_conflict_files(output: &str) -> Vec<(String, Vec<u32>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_output_is_parsed() {
        let out = "checking file net/ipv4/tcp.c\nHunk #2 FAILED at 2511.\n1 out of 2 hunks FAILED\nchecking file net/mptcp/protocol.c\n";
        assert_eq!(
            patch_conflict_files(out),
            vec![("net/ipv4/tcp.c".to_string(), vec![2])]
        );
    }
}
