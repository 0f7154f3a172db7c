// SPDX-License-Identifier: MIT OR Apache-2.0
//! `transplant`: the flow for integrators without a linux-stable clone. Onto a 5.10.y BSP
//! tree, in this fixed order:
//!
//! 1. our core series (`[transplant] core_series`, in order) — core patches may touch path-set
//!    files so that "core alone" builds; step 2 overwrites those files;
//! 2. the manifest's path set copied from a 5.15.y tree or tarball (files of the path set the
//!    source lacks are deleted);
//! 3. our fixups whose `when` condition holds on the tree at that point.
//!
//! Git trees get one commit per core patch (`git am`), one for the copy, one per fixup and one
//! for the provenance file; plain trees get `patch -p1` (dry run first). The provenance
//! (`.mptcp-backport.json` at the top of the tree) makes a re-run with the same inputs a no-op
//! and one with other inputs a refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::apply::{git_toplevel, patch_cmd, summarize, tail, utc_now, Mode};
use crate::error::{Error, Result};
use crate::git::Git;
use crate::manifest::{path_matches, Manifest};
use sha2::{Digest, Sha256};

use crate::sha256;

mod provenance;
mod source;

use provenance::*;
pub use provenance::{
    read_provenance, render_provenance, FixupRecord, PatchRecord, Provenance, SourceRecord,
};
use source::*;
pub use source::{
    compare_pathsets, makefile_version, pathset_digest, read_pathset, source_digest, Comparison,
    Pathset, PathsetFile,
};

/// Provenance file at the top of a transplanted tree.
pub const PROVENANCE_FILE: &str = ".mptcp-backport.json";

/// Trailer of the path-set commit: finds a transplant that stopped before its provenance.
const TRAILER: &str = "Mptcp-backport-transplant";

/// What to transplant where.
#[derive(Debug, Clone)]
pub struct TransplantOptions {
    /// 5.15.y tree (plain or git work tree) or tarball (.tar, .tar.gz, .tgz, .tar.xz).
    pub source: PathBuf,
    /// The 5.10.y BSP tree.
    pub tree: PathBuf,
    /// Expected sha256 of a tarball source.
    pub sha256: Option<String>,
    /// Take a known 5.15.y version whose path set differs from the manifest's digest.
    pub allow_modified_source: bool,
}

/// How a transplant ended.
#[derive(Debug, Clone, Serialize)]
pub struct TransplantReport {
    /// `false`: the tree already had this transplant; nothing was done.
    pub changed: bool,
    pub provenance: Provenance,
    /// Things the user should know (unproven source version, modified source).
    pub warnings: Vec<String>,
}

/// The core series: patch files in order (`#` comments and blank lines ignored).
pub fn core_series(manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let series = manifest.dir.join(&manifest.transplant.core_series);
    let text = fs::read_to_string(&series).map_err(|e| Error::Series {
        path: series.clone(),
        message: format!("core series: {e}"),
    })?;
    let dir = series.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let p = dir.join(line);
        if !p.is_file() {
            return Err(Error::Series {
                path: series.clone(),
                message: format!("{line} is listed but missing"),
            });
        }
        out.push(p);
    }
    Ok(out)
}

fn rel_name(manifest: &Manifest, p: &Path) -> String {
    p.strip_prefix(&manifest.dir)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// Run the transplant.
pub fn transplant(manifest: &Manifest, opts: &TransplantOptions) -> Result<TransplantReport> {
    let mut warnings = Vec::new();
    let tree = fs::canonicalize(&opts.tree).map_err(|e| Error::io(&opts.tree, e))?;
    let paths = manifest.source.paths.clone();

    // Source: version, digest, proven or not.
    let source = open_source(&opts.source, &paths, opts.sha256.as_deref())?;
    let sv = version_of(&source.root).map_err(|_| Error::NotKernelTree(opts.source.clone()))?;
    let source_version = version_string(&sv);
    if (sv.0, sv.1) != (5, 15) {
        return Err(Error::SourceVersion {
            path: opts.source.clone(),
            found: source_version,
        });
    }
    let set = read_pathset(&source.root, &paths, source.tracked_only)?;
    if set.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no file of the path set ({}) in the source",
            opts.source.display(),
            paths.join(", ")
        )));
    }
    let digest = pathset_digest(&set);
    let known = &manifest.transplant.source;
    let mut proven = false;
    let mut modified_allowed = false;
    match known.iter().find(|s| s.version == source_version) {
        Some(k) if k.pathset_sha256.eq_ignore_ascii_case(&digest) => proven = true,
        Some(k) if opts.allow_modified_source => {
            modified_allowed = true;
            warnings.push(format!(
                "source {source_version} is modified: path-set sha256 {digest}, proven {} (taken with --allow-modified-source)",
                k.pathset_sha256
            ));
        }
        Some(k) => {
            return Err(Error::PathsetMismatch {
                version: source_version,
                expected: k.pathset_sha256.clone(),
                actual: digest,
            })
        }
        None => warnings.push(format!(
            "source {source_version} is not a proven version (proven: {}); proceeding",
            if known.is_empty() {
                "none".to_string()
            } else {
                known
                    .iter()
                    .map(|s| s.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }

    // Inputs: core series, fixups (all of them; conditions decide later).
    let core = core_series(manifest)?;
    let core_records = core
        .iter()
        .map(|p| {
            Ok(PatchRecord {
                file: rel_name(manifest, p),
                sha256: sha256::file_hex(p)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut fixup_records = manifest
        .fixup
        .iter()
        .map(|f| {
            Ok(FixupRecord {
                file: f.file.clone(),
                sha256: sha256::file_hex(&manifest.dir.join(&f.file))?,
                applied: false,
                condition: f.when.as_ref().map(|c| c.describe()),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let git = git_toplevel(&tree);
    let mode = if git.is_some() {
        Mode::Git
    } else {
        Mode::Plain
    };
    let mut prov = Provenance {
        tool: "mptcp-backport".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        manifest_product: manifest.product.name.clone(),
        manifest_version: manifest.product.version.clone(),
        base_kernel: String::new(),
        mode,
        source: SourceRecord {
            kind: source.kind.into(),
            path: opts.source.display().to_string(),
            version: source_version.clone(),
            pathset_sha256: digest.clone(),
            files: set.len(),
            tarball_sha256: source.tarball_sha256.clone(),
            proven,
            modified_allowed,
        },
        paths: paths.clone(),
        core: core_records,
        fixups: fixup_records.clone(),
        time: utc_now(),
    };

    // Idempotence: an earlier transplant decides before any other check on the tree.
    if let Some(old) = read_provenance(&tree)? {
        let diff = input_differences(&old, &prov);
        if diff.is_empty() {
            return Ok(TransplantReport {
                changed: false,
                provenance: old,
                warnings,
            });
        }
        return Err(Error::AlreadyTransplanted {
            tree: tree.clone(),
            differences: diff.join("; "),
        });
    }

    let bv = version_of(&tree)?;
    crate::verify::check_kernel_tree(&tree)?;
    prov.base_kernel = version_string(&bv);
    let series = &manifest.target_kernel.series;
    if format!("{}.{}", bv.0, bv.1) != *series {
        return Err(Error::BaseVersion {
            path: tree.clone(),
            found: prov.base_kernel.clone(),
            series: series.clone(),
        });
    }
    if let Some(git) = &git {
        // Tracked changes and untracked files that are not ignored. Ignored files (build
        // outputs) do not count; Debian's linux-source ignores its whole top level, so new
        // files the transplant adds are force-added.
        let text = git.run_text(&["status", "--porcelain", "--untracked-files=normal"])?;
        let dirty: Vec<String> = text
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if !dirty.is_empty() {
            return Err(Error::DirtyTree {
                path: tree.clone(),
                files: summarize(&dirty),
            });
        }
        if git.git_dir()?.join("rebase-apply").exists() {
            return Err(Error::Apply(
                "a `git am` or rebase is in progress in the tree; finish or abort it first".into(),
            ));
        }
        // A copy commit without provenance: an earlier transplant stopped at a fixup.
        let grep = format!("--grep=^{TRAILER}: ");
        let partial = git.run_text(&["log", "-1", "--format=%H%n%B", &grep, "HEAD"])?;
        if let Some(commit) = partial.lines().next().filter(|c| !c.is_empty()) {
            let n = partial
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{TRAILER}: ")))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let short = &commit[..12.min(commit.len())];
            return Err(Error::PartialTransplant {
                tree: tree.clone(),
                commit: short.to_string(),
                reset_to: format!("{short}~{}", n + 1),
            });
        }
    }

    // 1. Core series.
    for (i, p) in core.iter().enumerate() {
        let done = format!("core patches 1..{i} of {} are in", core.len());
        apply_patch(&tree, git.as_ref(), p, "core patch", &done)?;
    }
    // 2. The path set.
    copy_pathset(&tree, &paths, &set)?;
    if let Some(git) = &git {
        let mut specs: Vec<String> = Vec::new();
        for e in &paths {
            let rel = e.trim_end_matches('/');
            let tracked = !git.run(&["ls-files", "-z", "--", rel])?.is_empty();
            if tracked || tree.join(rel).exists() {
                specs.push(rel.to_string());
            }
        }
        let mut args = vec!["add", "-A", "-f", "--"];
        args.extend(specs.iter().map(String::as_str));
        git.run(&args)?;
        let msg = format!(
            "mptcp: MPTCP path set of Linux {source_version} (transplant)\n\nCopied by mptcp-backport transplant from {} ({}).\nPath set: {}\nPath-set sha256: {digest} ({} files){}\n\n{TRAILER}: {} core patches before this commit\n",
            opts.source.display(),
            source.kind,
            paths.join(" "),
            set.len(),
            source
                .tarball_sha256
                .as_ref()
                .map(|s| format!("\nTarball sha256: {s}"))
                .unwrap_or_default(),
            core.len()
        );
        commit(git, &msg)?;
    }
    // 3. Fixups whose condition holds now.
    for (i, f) in manifest.fixup.iter().enumerate() {
        if let Some(c) = &f.when {
            let content = fs::read(tree.join(&c.file)).ok();
            if !c.holds(content.as_deref()) {
                continue;
            }
        }
        let done = format!(
            "the core series and the path set are in{}",
            if git.is_some() {
                " (HEAD is the last good commit)"
            } else {
                ""
            }
        );
        apply_patch(
            &tree,
            git.as_ref(),
            &manifest.dir.join(&f.file),
            "fixup",
            &done,
        )?;
        fixup_records[i].applied = true;
    }
    prov.fixups = fixup_records;
    prov.time = utc_now();
    let json = serde_json::to_string_pretty(&prov)
        .map_err(|e| Error::parse("provenance", e.to_string()))?;
    let ppath = tree.join(PROVENANCE_FILE);
    fs::write(&ppath, json + "\n").map_err(|e| Error::io(&ppath, e))?;
    if let Some(git) = &git {
        git.run(&["add", "-f", "--", PROVENANCE_FILE])?;
        commit(
            git,
            &format!(
                "mptcp-backport: transplant provenance ({} {}, source {source_version})\n\nSee {PROVENANCE_FILE}; `mptcp-backport verify --tree .` prints it.\n",
                manifest.product.name, manifest.product.version
            ),
        )?;
    }
    Ok(TransplantReport {
        changed: true,
        provenance: prov,
        warnings,
    })
}

fn with_identity(git: &Git, cmd: &mut Command) {
    if git
        .run_text(&["config", "user.email"])
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)
    {
        cmd.env("GIT_COMMITTER_NAME", "mptcp-backport")
            .env("GIT_COMMITTER_EMAIL", "mptcp-backport@localhost")
            .env("GIT_AUTHOR_NAME", "mptcp-backport")
            .env("GIT_AUTHOR_EMAIL", "mptcp-backport@localhost");
    }
}

fn commit(git: &Git, msg: &str) -> Result<()> {
    let args = ["commit", "-q", "--allow-empty", "--no-verify", "-m", msg];
    let mut cmd = git.command(&args);
    with_identity(git, &mut cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: "git commit".into(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(git.error(&args[..2], &out.stderr));
    }
    Ok(())
}

/// One patch: `git am` (a failed one is aborted, so HEAD stays at the last good commit) or
/// `patch -p1` after a dry run.
fn apply_patch(tree: &Path, git: Option<&Git>, patch: &Path, step: &str, done: &str) -> Result<()> {
    match git {
        Some(git) => {
            let p = patch.to_string_lossy().into_owned();
            let args = ["am", "--keep-cr", p.as_str()];
            let mut cmd = git.command(&args);
            with_identity(git, &mut cmd);
            let out = cmd
                .stdin(Stdio::null())
                .output()
                .map_err(|e| Error::Command {
                    command: "git am".into(),
                    message: e.to_string(),
                })?;
            if !out.status.success() {
                let output = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if git.git_dir()?.join("rebase-apply").exists() {
                    git.run(&["am", "--abort"])?;
                }
                return Err(Error::PatchFailed {
                    step: step.into(),
                    patch: patch.to_path_buf(),
                    state: format!("{done}; the tree is at the last good commit (git log), the failed patch left nothing behind"),
                    output: tail(&output, 20),
                });
            }
        }
        None => {
            let (ok, text) = patch_cmd(tree, patch, true)?;
            let (ok, text) = if ok {
                patch_cmd(tree, patch, false)?
            } else {
                (ok, text)
            };
            if !ok {
                return Err(Error::PatchFailed {
                    step: step.into(),
                    patch: patch.to_path_buf(),
                    state: format!("{done}; this patch was not applied (dry run); the plain tree is part-way: restore it from your copy before running again"),
                    output: tail(&text, 20),
                });
            }
        }
    }
    Ok(())
}
