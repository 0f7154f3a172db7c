// SPDX-License-Identifier: MIT OR Apache-2.0
//! The manifest's `[[extra]]` commits: found by id, upstream reference or subject in the
//! range, else elsewhere in the clone.

use std::collections::HashMap;

use super::{
    Attention, Candidate, Chosen, Conditions, DropReason, ExtraState, ExtraStatus, FoundBy, Kind,
    PlanOptions,
};
use crate::error::Result;
use crate::git::{Git, Resolved};
use crate::history::{self, Commit};
use crate::manifest::{Manifest, Status};

/// Extras resolved: one status per manifest extra, and the commits found outside the range.
pub(super) struct Found {
    pub statuses: Vec<ExtraStatus>,
    /// (extra index, commit)
    pub outside: Vec<(usize, Commit)>,
}

/// Resolve every extra; those found in the range join `chosen`.
pub(super) fn resolve(
    git: &Git,
    manifest: &Manifest,
    opts: &PlanOptions,
    range: &[Commit],
    conditions: &Conditions,
    chosen: &mut Chosen,
    attention: &mut Vec<Attention>,
) -> Result<Found> {
    let index: HashMap<&str, usize> = range
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.as_str(), i))
        .collect();
    // Extras: by id, by upstream reference, by subject; then outside the range.
    let mut extras = Vec::new();
    let mut outside: Vec<(usize, Commit)> = Vec::new();
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
            state: ExtraState::Missing,
            commit: None,
            found_by: None,
            detail: String::new(),
        };
        if !extra.enabled {
            status.state = ExtraState::Disabled;
            status.detail = extra.instead.clone().unwrap_or_default();
            extras.push(status);
            continue;
        }
        if let Some(cond) = &extra.when {
            if !conditions.holds(cond) {
                status.state = ExtraState::NotNeeded;
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
            .and_then(|id| index.get(id).map(|&i| (i, FoundBy::Id)))
            .or_else(|| {
                if extra.id.is_empty() {
                    return None;
                }
                let want = extra.id.to_ascii_lowercase();
                range
                    .iter()
                    .position(|c| c.upstream.iter().any(|u| u.starts_with(&want)))
                    .map(|i| (i, FoundBy::UpstreamRef))
            })
            .or_else(|| {
                range
                    .iter()
                    .position(|c| !c.is_merge() && c.subject.trim() == extra.subject.trim())
                    .map(|i| (i, FoundBy::Subject))
            });
        match found {
            Some((i, how)) => {
                status.state = ExtraState::Carried;
                status.commit = Some(range[i].id.clone());
                status.found_by = Some(how);
                if how == FoundBy::Subject && extra.status == Status::Unconfirmed {
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
                    status.state = ExtraState::Carried;
                    status.commit = Some(c.id.clone());
                    status.found_by = Some(FoundBy::OutsideRange);
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
                    status.state = ExtraState::Missing;
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
    Ok(Found {
        statuses: extras,
        outside,
    })
}

/// Extras whose commit the duplicate detection dropped are in the base already.
pub(super) fn mark_in_base(extras: &mut [ExtraStatus], candidates: &[Candidate]) {
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
                status.state = ExtraState::InBase;
                status.detail = format!(
                    "already in the base as {}",
                    &base_commit[..12.min(base_commit.len())]
                );
            }
        }
    }
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
