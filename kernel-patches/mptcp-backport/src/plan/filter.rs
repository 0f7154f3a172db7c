// SPDX-License-Identifier: MIT OR Apache-2.0
//! Filtering the candidates: what the base already has, revert pairs, the manifest's skips.

use std::collections::{HashMap, HashSet};

use super::{Attention, Candidate, DropReason};
use crate::error::Result;
use crate::git::Git;
use crate::history::Commit;
use crate::manifest::Manifest;

/// Mark candidates already in the base: same upstream reference, same patch-id (one
/// diff-tree|patch-id pipeline), or only the same subject (reported, not dropped).
pub(super) fn detect_duplicates(
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
pub(super) fn drop_revert_pairs(candidates: &mut [Candidate]) {
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

pub(super) fn matches_id(commit: &Commit, id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    commit.id.starts_with(&id) || commit.upstream.iter().any(|u| u.starts_with(&id))
}

/// `[[skip]]` entries: matched by id (or the id a stable commit names), else by subject.
pub(super) fn apply_skips(
    manifest: &Manifest,
    candidates: &mut [Candidate],
    attention: &mut Vec<Attention>,
) {
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
