// SPDX-License-Identifier: MIT OR Apache-2.0
//! The provenance file: what a transplanted tree was made from, and how a re-run compares.

use super::*;

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
pub(super) fn input_differences(old: &Provenance, new: &Provenance) -> Vec<String> {
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
