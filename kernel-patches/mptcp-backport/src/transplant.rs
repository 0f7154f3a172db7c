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

/// Everything recorded about a transplant (written to [`PROVENANCE_FILE`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    pub tool: String,
    pub tool_version: String,
    /// Manifest product and version, e.g. `mptcp-5.15-on-5.10` `5.15.162-1`.
    pub manifest_product: String,
    pub manifest_version: String,
    /// Kernel version of the tree before the transplant.
    pub base_kernel: String,
    pub mode: Mode,
    pub source: SourceRecord,
    /// The path set copied (manifest `[source] paths`).
    pub paths: Vec<String>,
    /// Core patches applied, in order.
    pub core: Vec<PatchRecord>,
    /// Every fixup of the manifest, applied or not.
    pub fixups: Vec<FixupRecord>,
    /// UTC time of the transplant.
    pub time: String,
}

/// Where the path set came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceRecord {
    /// `tarball`, `git` or `directory`.
    pub kind: String,
    /// As given on the command line.
    pub path: String,
    pub version: String,
    pub pathset_sha256: String,
    pub files: usize,
    pub tarball_sha256: Option<String>,
    /// The version is in the manifest's `[[transplant.source]]` table with this digest.
    pub proven: bool,
    /// A known version with another digest, taken with --allow-modified-source.
    pub modified_allowed: bool,
}

/// A patch file and its digest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatchRecord {
    pub file: String,
    pub sha256: String,
}

/// A manifest fixup and whether its condition held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FixupRecord {
    pub file: String,
    pub sha256: String,
    pub applied: bool,
    /// The `when` condition, if any.
    pub condition: Option<String>,
}

/// One file of a path set: git-style mode (100644, 100755, 120000) and content (link target
/// for symlinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathsetFile {
    pub mode: u32,
    pub data: Vec<u8>,
}

/// A path set read from a tree: relative path → file.
pub type Pathset = BTreeMap<String, PathsetFile>;

/// Kernel version from a top-level Makefile: (VERSION, PATCHLEVEL, SUBLEVEL, EXTRAVERSION).
pub fn makefile_version(text: &str) -> Option<(u32, u32, u32, String)> {
    let var = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let major = var("VERSION")?.parse().ok()?;
    let minor = var("PATCHLEVEL")?.parse().ok()?;
    let sub = match var("SUBLEVEL") {
        Some(s) if !s.is_empty() => s.parse().ok()?,
        _ => 0,
    };
    Some((major, minor, sub, var("EXTRAVERSION").unwrap_or_default()))
}

fn version_of(root: &Path) -> Result<(u32, u32, u32, String)> {
    let mk = root.join("Makefile");
    let text = fs::read_to_string(&mk).map_err(|_| Error::NotKernelTree(root.to_path_buf()))?;
    makefile_version(&text).ok_or_else(|| Error::NotKernelTree(root.to_path_buf()))
}

fn version_string(v: &(u32, u32, u32, String)) -> String {
    format!("{}.{}.{}{}", v.0, v.1, v.2, v.3)
}

/// Read the path set under `root`. `tracked_only`: a git work tree, where only tracked files
/// count (build outputs in the source are not part of it).
pub fn read_pathset(root: &Path, paths: &[String], tracked_only: bool) -> Result<Pathset> {
    let mut rels: BTreeSet<String> = BTreeSet::new();
    if tracked_only {
        let git = Git::open(root)?;
        let mut args = vec!["ls-files", "-z", "--"];
        let specs: Vec<String> = paths
            .iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .collect();
        args.extend(specs.iter().map(String::as_str));
        let out = git.run(&args)?;
        for name in out.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            if paths.iter().any(|p| path_matches(p, &name)) {
                rels.insert(name);
            }
        }
    } else {
        for entry in paths {
            let rel = entry.trim_end_matches('/');
            let full = root.join(rel);
            let meta = match fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&full, e)),
            };
            if entry.ends_with('/') && meta.is_dir() {
                walk(root, rel, &mut rels)?;
            } else if !entry.ends_with('/') && !meta.is_dir() {
                rels.insert(rel.to_string());
            }
        }
    }
    let mut set = Pathset::new();
    for rel in rels {
        let full = root.join(&rel);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            // Tracked but deleted in the work tree: not part of what is there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&full, e)),
        };
        let file = if meta.file_type().is_symlink() {
            let target = fs::read_link(&full).map_err(|e| Error::io(&full, e))?;
            PathsetFile {
                mode: 0o120000,
                data: target.as_os_str().as_encoded_bytes().to_vec(),
            }
        } else if meta.is_file() {
            PathsetFile {
                mode: if meta.permissions().mode() & 0o111 != 0 {
                    0o100755
                } else {
                    0o100644
                },
                data: fs::read(&full).map_err(|e| Error::io(&full, e))?,
            }
        } else {
            continue;
        };
        set.insert(rel, file);
    }
    Ok(set)
}

fn walk(root: &Path, rel: &str, out: &mut BTreeSet<String>) -> Result<()> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = format!("{rel}/{name}");
        let ft = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if ft.is_dir() {
            walk(root, &child, out)?;
        } else {
            out.insert(child);
        }
    }
    Ok(())
}

/// Deterministic digest of a path set: for each file in byte order of its relative path,
/// `"{mode:o} {path}\0{len}\0"` followed by the content (link target for symlinks).
pub fn pathset_digest(set: &Pathset) -> String {
    let mut h = Sha256::new();
    for (path, f) in set {
        h.update(format!("{:o} {path}\0{}\0", f.mode, f.data.len()).as_bytes());
        h.update(&f.data);
    }
    sha256::finish_hex(h)
}

/// A source made readable: a directory (the tree, or a tarball's extracted subset).
struct Source {
    root: PathBuf,
    kind: &'static str,
    tarball_sha256: Option<String>,
    tracked_only: bool,
    _scratch: Option<Scratch>,
}

/// A temporary directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_tarball(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2"]
        .iter()
        .any(|s| name.ends_with(s))
}

fn open_source(path: &Path, paths: &[String], want_sha: Option<&str>) -> Result<Source> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        if want_sha.is_some() {
            return Err(Error::Usage(
                "--sha256 is for tarball sources; this source is a directory".into(),
            ));
        }
        let git = git_toplevel(&fs::canonicalize(path).map_err(|e| Error::io(path, e))?);
        return Ok(Source {
            root: path.to_path_buf(),
            kind: if git.is_some() { "git" } else { "directory" },
            tarball_sha256: None,
            tracked_only: git.is_some(),
            _scratch: None,
        });
    }
    if !is_tarball(path) {
        return Err(Error::Usage(format!(
            "{}: a source is a kernel tree or a .tar, .tar.gz, .tgz, .tar.xz or .tar.bz2 tarball",
            path.display()
        )));
    }
    let actual = sha256::file_hex(path)?;
    if let Some(want) = want_sha {
        if !want.eq_ignore_ascii_case(&actual) {
            return Err(Error::Sha256Mismatch {
                path: path.to_path_buf(),
                expected: want.to_ascii_lowercase(),
                actual,
            });
        }
    }
    let listing = run_tar(Command::new("tar").arg("-tf").arg(path), path)?;
    let names: Vec<&str> = listing.lines().collect();
    // The top directory: "", "./", "linux-5.15.162/" or "./linux-5.15.162/".
    let prefix = names
        .iter()
        .filter_map(|n| n.strip_suffix("Makefile"))
        .filter(|p| {
            let p = p.strip_prefix("./").unwrap_or(p);
            p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1)
        })
        .min_by_key(|p| p.len())
        .map(str::to_string)
        .ok_or_else(|| Error::NotKernelTree(path.to_path_buf()))?;
    let mut members = vec![format!("{prefix}Makefile")];
    for entry in paths {
        let m = format!("{prefix}{}", entry.trim_end_matches('/'));
        if names
            .iter()
            .any(|n| n.trim_end_matches('/') == m || n.starts_with(&format!("{m}/")))
        {
            members.push(m);
        }
    }
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "mptcp-backport-source-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )));
    fs::create_dir_all(&scratch.0).map_err(|e| Error::io(&scratch.0, e))?;
    run_tar(
        Command::new("tar")
            .arg("-xf")
            .arg(path)
            .arg("-C")
            .arg(&scratch.0)
            .arg("--no-same-owner")
            .arg("--")
            .args(&members),
        path,
    )?;
    Ok(Source {
        root: scratch.0.join(&prefix),
        kind: "tarball",
        tarball_sha256: Some(actual),
        tracked_only: false,
        _scratch: Some(scratch),
    })
}

fn run_tar(cmd: &mut Command, path: &Path) -> Result<String> {
    let out = cmd
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: "tar".into(),
            message: format!("{e} (install GNU tar, and xz/gzip for compressed tarballs)"),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            command: format!("tar ({})", path.display()),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

/// Read the provenance of a transplanted tree, if it has one.
pub fn read_provenance(tree: &Path) -> Result<Option<Provenance>> {
    let path = tree.join(PROVENANCE_FILE);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::parse(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// What differs between the inputs of two transplants (empty: the same).
fn input_differences(old: &Provenance, new: &Provenance) -> Vec<String> {
    let mut d = Vec::new();
    let mut cmp = |what: &str, a: &str, b: &str| {
        if a != b {
            d.push(format!("{what}: {a} in the tree, {b} now"));
        }
    };
    cmp(
        "manifest version",
        &old.manifest_version,
        &new.manifest_version,
    );
    cmp("source version", &old.source.version, &new.source.version);
    cmp(
        "path-set sha256",
        &old.source.pathset_sha256,
        &new.source.pathset_sha256,
    );
    if let (Some(a), Some(b)) = (&old.source.tarball_sha256, &new.source.tarball_sha256) {
        cmp("tarball sha256", a, b);
    }
    let list = |v: &[PatchRecord]| {
        v.iter()
            .map(|p| format!("{}@{}", p.file, &p.sha256[..12]))
            .collect::<Vec<_>>()
            .join(",")
    };
    cmp("core series", &list(&old.core), &list(&new.core));
    let fx = |v: &[FixupRecord]| {
        v.iter()
            .map(|p| format!("{}@{}", p.file, &p.sha256[..12]))
            .collect::<Vec<_>>()
            .join(",")
    };
    cmp("fixups", &fx(&old.fixups), &fx(&new.fixups));
    cmp("path set", &old.paths.join(","), &new.paths.join(","));
    d
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

/// Replace the tree's path set with `set`: files the source lacks go, the rest is written with
/// its mode; directories left empty are removed.
fn copy_pathset(tree: &Path, paths: &[String], set: &Pathset) -> Result<()> {
    let current = read_pathset(tree, paths, false)?;
    for rel in current.keys().filter(|r| !set.contains_key(*r)) {
        let p = tree.join(rel);
        fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    for (rel, f) in set {
        let p = tree.join(rel);
        if current.get(rel) == Some(f) {
            continue;
        }
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
        if f.mode == 0o120000 {
            let target = PathBuf::from(String::from_utf8_lossy(&f.data).into_owned());
            symlink(&target, &p).map_err(|e| Error::io(&p, e))?;
        } else {
            fs::write(&p, &f.data).map_err(|e| Error::io(&p, e))?;
            let perm = if f.mode == 0o100755 { 0o755 } else { 0o644 };
            fs::set_permissions(&p, fs::Permissions::from_mode(perm))
                .map_err(|e| Error::io(&p, e))?;
        }
    }
    for e in paths.iter().filter(|e| e.ends_with('/')) {
        remove_empty_dirs(&tree.join(e.trim_end_matches('/')));
    }
    Ok(())
}

fn remove_empty_dirs(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !(is_dir && remove_empty_dirs(&entry.path())) {
            empty = false;
        }
    }
    empty && fs::remove_dir(dir).is_ok()
}

/// Path-set comparison of two trees.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: PathBuf,
    pub b: PathBuf,
    pub a_sha256: String,
    pub b_sha256: String,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// Content or mode differs.
    pub differ: Vec<String>,
    pub same: bool,
}

/// Compare the path sets of two kernel trees (git work trees: tracked files only).
pub fn compare_pathsets(manifest: &Manifest, a: &Path, b: &Path) -> Result<Comparison> {
    let read = |t: &Path| -> Result<Pathset> {
        crate::verify::check_kernel_tree(t)?;
        let canon = fs::canonicalize(t).map_err(|e| Error::io(t, e))?;
        let tracked = git_toplevel(&canon).is_some();
        read_pathset(t, &manifest.source.paths, tracked)
    };
    let (sa, sb) = (read(a)?, read(b)?);
    let only_in_a: Vec<String> = sa
        .keys()
        .filter(|k| !sb.contains_key(*k))
        .cloned()
        .collect();
    let only_in_b: Vec<String> = sb
        .keys()
        .filter(|k| !sa.contains_key(*k))
        .cloned()
        .collect();
    let differ: Vec<String> = sa
        .iter()
        .filter(|(k, f)| sb.get(*k).is_some_and(|g| g != *f))
        .map(|(k, _)| k.clone())
        .collect();
    let same = only_in_a.is_empty() && only_in_b.is_empty() && differ.is_empty();
    Ok(Comparison {
        a: a.to_path_buf(),
        b: b.to_path_buf(),
        a_sha256: pathset_digest(&sa),
        b_sha256: pathset_digest(&sb),
        only_in_a,
        only_in_b,
        differ,
        same,
    })
}

/// Path-set digest of a tree or tarball (what `[[transplant.source]]` records).
pub fn source_digest(manifest: &Manifest, source: &Path) -> Result<(String, String, usize)> {
    let s = open_source(source, &manifest.source.paths, None)?;
    let v = version_of(&s.root).map_err(|_| Error::NotKernelTree(source.to_path_buf()))?;
    let set = read_pathset(&s.root, &manifest.source.paths, s.tracked_only)?;
    Ok((version_string(&v), pathset_digest(&set), set.len()))
}

/// Human-readable provenance.
pub fn render_provenance(p: &Provenance) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Transplanted {} ({} {}, {} {}) on {}:",
        p.time, p.manifest_product, p.manifest_version, p.tool, p.tool_version, p.base_kernel
    );
    let _ = writeln!(
        s,
        "  source: Linux {} ({} {}), path-set sha256 {} ({} files){}{}",
        p.source.version,
        p.source.kind,
        p.source.path,
        p.source.pathset_sha256,
        p.source.files,
        if p.source.proven {
            ", proven"
        } else {
            ", NOT a proven version"
        },
        if p.source.modified_allowed {
            ", MODIFIED (--allow-modified-source)"
        } else {
            ""
        }
    );
    if let Some(t) = &p.source.tarball_sha256 {
        let _ = writeln!(s, "  tarball sha256: {t}");
    }
    let _ = writeln!(s, "  core patches: {}", p.core.len());
    for c in &p.core {
        let _ = writeln!(s, "    {}  {}", &c.sha256[..16], c.file);
    }
    let _ = writeln!(s, "  fixups:");
    for f in &p.fixups {
        let _ = writeln!(
            s,
            "    {}  {}  {}",
            &f.sha256[..16],
            if f.applied {
                "applied    "
            } else {
                "not needed "
            },
            f.file
        );
    }
    s
}
