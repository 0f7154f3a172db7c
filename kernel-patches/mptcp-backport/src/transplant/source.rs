// SPDX-License-Identifier: MIT OR Apache-2.0
//! The 5.15.y source (tree or tarball) and the path set: reading, digesting, copying and
//! comparing it.

use super::*;

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

pub(super) fn version_of(root: &Path) -> Result<(u32, u32, u32, String)> {
    let mk = root.join("Makefile");
    let text = fs::read_to_string(&mk).map_err(|_| Error::NotKernelTree(root.to_path_buf()))?;
    makefile_version(&text).ok_or_else(|| Error::NotKernelTree(root.to_path_buf()))
}

pub(super) fn version_string(v: &(u32, u32, u32, String)) -> String {
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

pub(super) fn walk(root: &Path, rel: &str, out: &mut BTreeSet<String>) -> Result<()> {
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
pub(super) struct Source {
    pub(super) root: PathBuf,
    pub(super) kind: &'static str,
    pub(super) tarball_sha256: Option<String>,
    pub(super) tracked_only: bool,
    pub(super) _scratch: Option<Scratch>,
}

/// A temporary directory removed on drop.
pub(super) struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn is_tarball(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2"]
        .iter()
        .any(|s| name.ends_with(s))
}

pub(super) fn open_source(path: &Path, paths: &[String], want_sha: Option<&str>) -> Result<Source> {
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

pub(super) fn run_tar(cmd: &mut Command, path: &Path) -> Result<String> {
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

/// Replace the tree's path set with `set`: files the source lacks go, the rest is written with
/// its mode; directories left empty are removed.
pub(super) fn copy_pathset(tree: &Path, paths: &[String], set: &Pathset) -> Result<()> {
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

pub(super) fn remove_empty_dirs(dir: &Path) -> bool {
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
