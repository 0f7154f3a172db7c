// SPDX-License-Identifier: MIT OR Apache-2.0
//! The series: fixups placed among the carried commits, and the per-file report.

use std::collections::{BTreeMap, HashSet};

use super::filter::matches_id;
use super::{Attention, Candidate, Conditions, Dropped, Entry, Kind, RenameInfo};
use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// The final entries (fixups placed) and the commits not carried.
pub(super) fn assemble(
    manifest: &Manifest,
    candidates: &[Candidate],
    conditions: &Conditions,
    attention: &mut Vec<Attention>,
) -> Result<(Vec<Entry>, Vec<Dropped>)> {
    let fixups = place_fixups(manifest, candidates, conditions, attention)?;
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
    Ok((entries, dropped))
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

pub(super) fn known_conflicts(
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

pub(super) type FileReport = (
    BTreeMap<String, usize>,
    BTreeMap<String, Vec<String>>,
    Vec<RenameInfo>,
);

pub(super) fn file_report(
    manifest: &Manifest,
    entries: &[Entry],
    candidates: &[Candidate],
) -> FileReport {
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
