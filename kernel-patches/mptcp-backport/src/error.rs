// SPDX-License-Identifier: MIT OR Apache-2.0
//! Errors of the backport tool. Each variant says what to do next where that is known.

use std::path::PathBuf;

/// Everything that can go wrong while planning, exporting, applying or verifying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest could not be read or does not follow the schema (unknown key, wrong type…).
    #[error("manifest {path}: {message}")]
    Manifest { path: PathBuf, message: String },

    /// A path given to the tool is not a git repository.
    #[error("{0}: not a git repository (expected a linux-stable clone or a git BSP tree)")]
    NotARepo(PathBuf),

    /// A tag or commit the plan needs is not in the clone.
    #[error("`{rev}` not found in {repo}: fetch it first (git -C {repo} fetch --tags <linux-stable URL>)")]
    MissingRev { repo: PathBuf, rev: String },

    /// The base tag is not a release of the kernel series the manifest targets.
    #[error("base `{tag}` is not a {series}.y release tag (expected v{series} or v{series}.N)")]
    BaseOutOfRange { tag: String, series: String },

    /// The tree to patch has local modifications.
    #[error("{path}: working tree has uncommitted changes ({files}); commit or stash them first")]
    DirtyTree { path: PathBuf, files: String },

    /// The directory is not a Linux source tree.
    #[error("{0}: not a kernel source tree (no top-level Makefile with VERSION/PATCHLEVEL, Kconfig and net/)")]
    NotKernelTree(PathBuf),

    /// A git command failed.
    #[error("git {args} (in {repo}): {stderr}")]
    Git {
        repo: PathBuf,
        args: String,
        stderr: String,
    },

    /// An external command (make, patch, bash…) could not run or failed.
    #[error("{command}: {message}")]
    Command { command: String, message: String },

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Output of git or of a tree file did not have the expected shape.
    #[error("unexpected {what}: {detail}")]
    Parse { what: String, detail: String },

    /// `apply` cannot proceed in the current state (no session, session of another series…).
    #[error("apply: {0}")]
    Apply(String),

    /// The exported series directory is missing or inconsistent.
    #[error("series {path}: {message}")]
    Series { path: PathBuf, message: String },

    /// The transplant source is not a 5.15.y kernel (tree or tarball).
    #[error("{path}: source is Linux {found}, not 5.15.y (give a 5.15.y tree or tarball)")]
    SourceVersion { path: PathBuf, found: String },

    /// The tree to transplant into is not a 5.10.y kernel.
    #[error("{path}: tree is Linux {found}, not {series}.y")]
    BaseVersion {
        path: PathBuf,
        found: String,
        series: String,
    },

    /// A tarball's sha256 differs from the one given with --sha256.
    #[error("{path}: sha256 is {actual}, expected {expected} (--sha256)")]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A proven 5.15.y version whose path set differs from the recorded digest.
    #[error("source {version}: path-set sha256 is {actual}, but the manifest records {expected} for {version} (a modified source; --allow-modified-source takes it anyway and records that)")]
    PathsetMismatch {
        version: String,
        expected: String,
        actual: String,
    },

    /// The tree was transplanted before with other inputs.
    #[error("{tree}: already transplanted with other inputs ({differences}); start from a fresh BSP tree")]
    AlreadyTransplanted { tree: PathBuf, differences: String },

    /// An earlier transplant of this git tree stopped after its path-set commit.
    #[error("{tree}: an earlier transplant stopped part-way (its path-set commit {commit} is in HEAD's history, no provenance file); go back to the BSP commit before it with `git reset --hard {reset_to}`")]
    PartialTransplant {
        tree: PathBuf,
        commit: String,
        reset_to: String,
    },

    /// A core patch or fixup did not apply during transplant.
    #[error("transplant: {step} {patch} does not apply; {state}\n{output}")]
    PatchFailed {
        step: String,
        patch: PathBuf,
        state: String,
        output: String,
    },

    /// A command-line argument is wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error about `what`.
    pub fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
