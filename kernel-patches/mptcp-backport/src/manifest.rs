// SPDX-License-Identifier: MIT OR Apache-2.0
//! The series manifest (`kernel-patches/series.toml`): what to take from linux-stable, what to
//! add or skip, where our fixups go, which kernels it is for and what `verify` expects.
//!
//! Unknown keys are errors (with line and column): a typo must never silently drop a commit.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::git::is_object_id;

/// The whole manifest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version of this file; only 1 exists.
    pub schema: u32,
    pub product: Product,
    pub source: Source,
    pub target_kernel: TargetKernel,
    #[serde(default)]
    pub extra: Vec<Extra>,
    #[serde(default)]
    pub skip: Vec<Skip>,
    #[serde(default)]
    pub fixup: Vec<Fixup>,
    #[serde(default)]
    pub known_conflict: Vec<KnownConflict>,
    pub config: ConfigSection,
    #[serde(default)]
    pub feature: Vec<Feature>,
    /// The transplant flow (`mptcp-backport transplant`): core series and proven sources.
    #[serde(default)]
    pub transplant: TransplantSection,
    /// Directory of the manifest file; fixup and fragment paths are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// What the series produces.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub name: String,
    /// Version of the produced MPTCP stack + our revision, e.g. `5.15.162-1`.
    pub version: String,
    pub description: String,
}

/// Where the commits come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Default base tag (any tag of the target series can be given on the command line).
    pub base: String,
    /// Tag whose MPTCP stack is carried.
    pub target: String,
    /// Path set: a commit touching any of these is taken (entries ending in `/` are directories).
    pub paths: Vec<String>,
}

/// `[transplant]`: our core series and the 5.15.y sources the path set was proven with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransplantSection {
    /// Core-prerequisite series file (one patch file per line, `#` comments), relative to the
    /// manifest directory; patch files are relative to the series file.
    #[serde(default = "default_core_series")]
    pub core_series: String,
    /// 5.15.y releases whose path set was proven, with its digest.
    #[serde(default)]
    pub source: Vec<ProvenSource>,
}

impl Default for TransplantSection {
    fn default() -> Self {
        TransplantSection {
            core_series: default_core_series(),
            source: Vec::new(),
        }
    }
}

fn default_core_series() -> String {
    "core/series".into()
}

/// A 5.15.y release the backport was proven with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenSource {
    /// `5.15.162` (no `v`).
    pub version: String,
    /// Path-set digest of that release (`mptcp-backport pathset-digest`).
    pub pathset_sha256: String,
}

/// Kernels the series is for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetKernel {
    /// Kernel series, e.g. `5.10`: base tags must be `v5.10` or `v5.10.N`.
    pub series: String,
    pub note: String,
}

/// Whether a commit id was seen in a public source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Confirmed,
    Unconfirmed,
}

/// A commit outside the path set that the series needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Extra {
    /// Upstream (mainline) commit id as seen in a public source; empty when unconfirmed.
    pub id: String,
    pub subject: String,
    /// Release it first appeared in upstream, e.g. `v5.11`.
    pub release: String,
    pub why: String,
    /// Where the id was seen.
    pub seen: String,
    pub status: Status,
    /// Carried by default; `false` lists an alternative that is not carried.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only carried when the base tree matches.
    pub when: Option<Condition>,
    /// For a disabled alternative: what we do instead.
    pub instead: Option<String>,
}

/// A commit of the path set that is not taken.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Skip {
    pub id: String,
    pub subject: String,
    pub release: String,
    pub why: String,
    pub seen: String,
    /// Fixup that replaces what the skipped commit did, if any.
    pub replaced_by: Option<String>,
}

/// One of our own patches and where it goes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixup {
    /// Path relative to the manifest directory.
    pub file: String,
    /// Upstream commit id (prefix) it follows, or `start` / `end` of the series.
    pub after: Option<String>,
    /// Upstream commit id (prefix) it must precede.
    pub before: Option<String>,
    pub why: String,
    pub when: Option<Condition>,
}

/// A condition on one file of the base tree (or of the BSP tree).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub file: String,
    pub contains: Option<String>,
    pub lacks: Option<String>,
}

/// A conflict we know about, with the way to resolve it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnownConflict {
    pub id: String,
    pub subject: String,
    pub files: Vec<String>,
    pub when: Option<Condition>,
    pub hint: String,
}

/// Kernel configuration fragments and how to check them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSection {
    /// Product fragments (relative to the manifest directory).
    pub fragments: Vec<String>,
    /// Fragments for test kernels only.
    pub selftest_fragments: Vec<String>,
    /// Symbols renamed between the base and the target kernel.
    #[serde(default)]
    pub rename: Vec<Rename>,
    /// Symbols that may legitimately not exist in some trees of the range.
    #[serde(default)]
    pub optional: Vec<String>,
}

/// A Kconfig symbol renamed between releases; either name satisfies a fragment line.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub old: String,
    pub new: String,
    pub note: String,
}

/// A source-level check `verify` runs on a tree.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    /// Upstream release that introduced it, e.g. `v5.12`.
    pub since: String,
    pub file: String,
    /// Present when the file contains this text.
    pub contains: Option<String>,
    /// Present when the file has this exact line (surrounding whitespace ignored).
    pub line: Option<String>,
    /// Required after the backport (`false`: reported only, e.g. a variant of the base).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl Manifest {
    /// Read and validate a manifest.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut manifest = Manifest::parse(&text).map_err(|message| Error::Manifest {
            path: path.to_path_buf(),
            message,
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Absolute: patch paths are handed to git am / patch running inside the kernel tree.
        manifest.dir = std::fs::canonicalize(dir).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            message: format!("{}: {e}", dir.display()),
        })?;
        manifest.check_files().map_err(|message| Error::Manifest {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(manifest)
    }

    /// Parse and validate manifest text (no file checks).
    pub fn parse(text: &str) -> std::result::Result<Manifest, String> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != 1 {
            return Err(format!(
                "schema = {} is not supported (expected 1)",
                self.schema
            ));
        }
        if self.source.paths.is_empty() {
            return Err("[source] paths is empty".into());
        }
        if parse_version(&self.source.base).is_none()
            || parse_version(&self.source.target).is_none()
        {
            return Err("[source] base and target must be version tags like v5.10.66".into());
        }
        for (i, e) in self.extra.iter().enumerate() {
            let what = format!("[[extra]] #{} ({})", i + 1, e.subject);
            check_id(&e.id, e.status, &e.subject, &what)?;
            if let Some(c) = &e.when {
                c.validate(&what)?;
            }
            if !e.enabled && e.instead.is_none() {
                return Err(format!(
                    "{what}: a disabled extra must say what is done `instead`"
                ));
            }
        }
        for (i, s) in self.skip.iter().enumerate() {
            let what = format!("[[skip]] #{} ({})", i + 1, s.subject);
            // Without an id a skip matches by subject.
            let status = if s.id.is_empty() {
                Status::Unconfirmed
            } else {
                Status::Confirmed
            };
            check_id(&s.id, status, &s.subject, &what)?;
        }
        for (i, f) in self.fixup.iter().enumerate() {
            let what = format!("[[fixup]] #{} ({})", i + 1, f.file);
            match (&f.after, &f.before) {
                (Some(a), None) if a == "start" || a == "end" || is_object_id(a) => {}
                (None, Some(b)) if is_object_id(b) => {}
                _ => return Err(format!("{what}: give exactly one of `after` (commit id, \"start\" or \"end\") or `before` (commit id)")),
            }
            if let Some(c) = &f.when {
                c.validate(&what)?;
            }
        }
        for (i, k) in self.known_conflict.iter().enumerate() {
            let what = format!("[[known_conflict]] #{} ({})", i + 1, k.subject);
            check_id(&k.id, Status::Confirmed, &k.subject, &what)?;
            if let Some(c) = &k.when {
                c.validate(&what)?;
            }
        }
        for s in &self.transplant.source {
            if s.pathset_sha256.len() != 64
                || !s.pathset_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(format!(
                    "[[transplant.source]] {}: pathset_sha256 must be 64 hex digits",
                    s.version
                ));
            }
            if parse_version(&format!("v{}", s.version)).is_none() {
                return Err(format!(
                    "[[transplant.source]] `{}` is not a version like 5.15.162",
                    s.version
                ));
            }
        }
        for f in &self.feature {
            if f.contains.is_some() && f.line.is_some() {
                return Err(format!(
                    "[[feature]] {}: give at most one of `contains` and `line`",
                    f.name
                ));
            }
        }
        Ok(())
    }

    fn check_files(&self) -> std::result::Result<(), String> {
        for f in &self.fixup {
            let path = self.dir.join(&f.file);
            if !path.is_file() {
                return Err(format!("fixup file {} does not exist", path.display()));
            }
        }
        for frag in self
            .config
            .fragments
            .iter()
            .chain(&self.config.selftest_fragments)
        {
            let path = self.dir.join(frag);
            if !path.is_file() {
                return Err(format!("config fragment {} does not exist", path.display()));
            }
        }
        Ok(())
    }

    /// Whether `path` (a repository-relative file) is in the path set.
    pub fn in_paths(&self, path: &str) -> bool {
        self.source.paths.iter().any(|p| path_matches(p, path))
    }

    /// Check that `tag` is a release of the target kernel series (v5.10 or v5.10.N).
    pub fn check_base(&self, tag: &str) -> Result<()> {
        let series = parse_series(&self.target_kernel.series);
        match (parse_version(tag), series) {
            (Some(v), Some((maj, min))) if v.major == maj && v.minor == min && v.rc.is_none() => {
                Ok(())
            }
            _ => Err(Error::BaseOutOfRange {
                tag: tag.to_string(),
                series: self.target_kernel.series.clone(),
            }),
        }
    }
}

impl Condition {
    fn validate(&self, what: &str) -> std::result::Result<(), String> {
        match (&self.contains, &self.lacks) {
            (None, None) => Err(format!("{what}: `when` needs `contains`, `lacks` or both")),
            _ => Ok(()),
        }
    }

    /// Evaluate against the file's content (`None`: the file does not exist).
    pub fn holds(&self, content: Option<&[u8]>) -> bool {
        let text = content.map(String::from_utf8_lossy);
        // Both parts must hold when both are given (a missing file lacks everything).
        let contains = match &self.contains {
            Some(needle) => text.as_ref().is_some_and(|t| t.contains(needle.as_str())),
            None => true,
        };
        let lacks = match &self.lacks {
            Some(needle) => !text.as_ref().is_some_and(|t| t.contains(needle.as_str())),
            None => true,
        };
        contains && lacks
    }

    /// Human-readable form for reports.
    pub fn describe(&self) -> String {
        match (&self.contains, &self.lacks) {
            (Some(c), Some(l)) => format!("{} contains `{}` and lacks `{}`", self.file, c, l),
            (Some(n), None) => format!("{} contains `{}`", self.file, n),
            (None, Some(n)) => format!("{} lacks `{}`", self.file, n),
            (None, None) => self.file.clone(),
        }
    }
}

fn check_id(
    id: &str,
    status: Status,
    subject: &str,
    what: &str,
) -> std::result::Result<(), String> {
    if subject.trim().is_empty() {
        return Err(format!("{what}: `subject` is empty"));
    }
    match (id.is_empty(), status) {
        (true, Status::Unconfirmed) => Ok(()),
        (true, Status::Confirmed) => Err(format!(
            "{what}: empty `id` must have status = \"unconfirmed\""
        )),
        (false, _) if is_object_id(id) => Ok(()),
        (false, _) => Err(format!(
            "{what}: `{id}` is not a commit id (7 to 40 hex digits)"
        )),
    }
}

/// Whether a path-set entry covers a repository path.
pub fn path_matches(entry: &str, path: &str) -> bool {
    if let Some(dir) = entry.strip_suffix('/') {
        path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
    } else {
        path == entry
            || (path.len() > entry.len()
                && path.starts_with(entry)
                && path.as_bytes()[entry.len()] == b'/')
    }
}

/// A kernel version tag: v5.10, v5.10.66, v5.11-rc3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// `Some(n)` for -rcN (sorted before the release).
    pub rc: Option<u32>,
}

impl Version {
    /// Sort key: rcs come before the release of the same x.y.
    pub fn key(&self) -> (u32, u32, u32, u32) {
        (
            self.major,
            self.minor,
            self.patch,
            self.rc.unwrap_or(u32::MAX),
        )
    }

    /// `vX.Y` of this tag.
    pub fn series(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }
}

/// Parse `v5.10`, `v5.10.66`, `v5.11-rc1`.
pub fn parse_version(tag: &str) -> Option<Version> {
    let rest = tag.strip_prefix('v')?;
    let (nums, rc) = match rest.split_once("-rc") {
        Some((n, rc)) => (n, Some(rc.parse().ok()?)),
        None => (rest, None),
    };
    let mut parts = nums.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() || (rc.is_some() && patch != 0) {
        return None;
    }
    Some(Version {
        major,
        minor,
        patch,
        rc,
    })
}

fn parse_series(series: &str) -> Option<(u32, u32)> {
    let (a, b) = series.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
schema = 1
[product]
name = "p"
version = "5.15.162-1"
description = "d"
[source]
base = "v5.10.66"
target = "v5.15.162"
paths = ["net/mptcp/", "include/net/mptcp.h"]
[target_kernel]
series = "5.10"
note = "n"
[config]
fragments = []
selftest_fragments = []
"#;

    #[test]
    fn minimal_manifest_parses() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert!(m.in_paths("net/mptcp/protocol.c"));
        assert!(m.in_paths("include/net/mptcp.h"));
        assert!(!m.in_paths("include/net/mptcp.hh"));
        assert!(!m.in_paths("net/mptcpx/a.c"));
        assert!(!m.in_paths("net/ipv4/tcp.c"));
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let text = MINIMAL.replace("[target_kernel]\n", "[target_kernel]\nseries_typo = 1\n");
        let err = Manifest::parse(&text).unwrap_err();
        assert!(err.contains("line 12"), "{err}");
        assert!(err.contains("column"), "{err}");
        assert!(err.contains("series_typo"), "{err}");
    }

    #[test]
    fn empty_id_must_be_unconfirmed() {
        let text = format!(
            "{MINIMAL}\n[[extra]]\nid = \"\"\nsubject = \"tcp: x\"\nrelease = \"v5.11\"\nwhy = \"w\"\nseen = \"s\"\nstatus = \"confirmed\"\n"
        );
        assert!(Manifest::parse(&text).unwrap_err().contains("unconfirmed"));
        let ok = text.replace("status = \"confirmed\"", "status = \"unconfirmed\"");
        Manifest::parse(&ok).unwrap();
    }

    #[test]
    fn bad_ids_and_placements_are_rejected() {
        let bad_id = format!(
            "{MINIMAL}\n[[extra]]\nid = \"xyz\"\nsubject = \"s\"\nrelease = \"v5.11\"\nwhy = \"w\"\nseen = \"s\"\nstatus = \"confirmed\"\n"
        );
        assert!(Manifest::parse(&bad_id)
            .unwrap_err()
            .contains("not a commit id"));
        let both = format!("{MINIMAL}\n[[fixup]]\nfile = \"f.patch\"\nafter = \"start\"\nbefore = \"abcdef12\"\nwhy = \"w\"\n");
        assert!(Manifest::parse(&both).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn base_must_be_in_series() {
        let m = Manifest::parse(MINIMAL).unwrap();
        m.check_base("v5.10").unwrap();
        m.check_base("v5.10.223").unwrap();
        assert!(m.check_base("v5.15.1").is_err());
        assert!(m.check_base("v5.10-rc1").is_err());
        assert!(m.check_base("master").is_err());
    }

    #[test]
    fn versions_sort_rc_first() {
        let rc = parse_version("v5.11-rc1").unwrap();
        let rel = parse_version("v5.11").unwrap();
        let st = parse_version("v5.11.2").unwrap();
        assert!(rc.key() < rel.key() && rel.key() < st.key());
        assert!(parse_version("v5.11.2-rc1").is_none());
        assert!(parse_version("5.11").is_none());
    }

    #[test]
    fn conditions() {
        let c = Condition {
            file: "f".into(),
            contains: None,
            lacks: Some("x".into()),
        };
        assert!(c.holds(None));
        assert!(c.holds(Some(b"abc")));
        assert!(!c.holds(Some(b"axc")));
        // Both parts must hold: the fixups for the 5.15.2xx PM code need one
        // marker present and the upstream fix absent.
        let both = Condition {
            file: "f".into(),
            contains: Some("close_event_done".into()),
            lacks: Some("check_next".into()),
        };
        assert!(both.holds(Some(b"close_event_done")));
        assert!(!both.holds(Some(b"close_event_done check_next")));
        assert!(!both.holds(Some(b"neither")));
        assert!(!both.holds(None));
        assert!(both.describe().contains("and lacks `check_next`"));
    }
}
