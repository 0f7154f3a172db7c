// SPDX-License-Identifier: MIT OR Apache-2.0
//! Loading and checking a config file, its digest, the built-in default, and the last
//! good config on disk.

use std::{
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use mptcp_agent_core::Config;

use crate::config_file::{self, LoadError};

/// Where the last good config is kept (systemd's StateDirectory=).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/mptcp-agent";
pub const LAST_GOOD_FILE: &str = "last-good.toml";
/// Runs when neither the config file nor a last good config can be used.
pub const BUILT_IN: &str = include_str!("../../../../conf/agent.toml");

/// The state directory: `$STATE_DIRECTORY` (set by systemd's StateDirectory=) or the default.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .filter(|s| !s.is_empty())
        // systemd passes a colon-separated list when several are configured.
        .and_then(|s| {
            s.to_str()
                .and_then(|s| s.split(':').next())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// A checked config with its text.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub text: String,
    pub digest: String,
}

/// FNV-1a (64 bit) of the text: identifies a config in logs and on D-Bus. Not a security
/// measure; the file's ownership and permissions are.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fnv1a64:{h:016x}")
}

/// Check and read a config file (the same checks as `check-config`).
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let (config, text) = config_file::load_file(path)?;
    Ok(Loaded {
        config,
        digest: digest(&text),
        text,
    })
}

fn parse_text(origin: &str, text: String) -> Result<Loaded, LoadError> {
    match mptcp_agent_core::config::load(&text) {
        Ok(config) => Ok(Loaded {
            config,
            digest: digest(&text),
            text,
        }),
        Err(error) => Err(LoadError::Invalid {
            path: origin.to_string(),
            error,
        }),
    }
}

/// The built-in default, checked by a unit test.
pub fn built_in() -> Loaded {
    match parse_text("built-in", BUILT_IN.to_string()) {
        Ok(l) => l,
        // The shipped file is tested to be valid; should it ever not be, manage nothing.
        Err(_) => Loaded {
            config: Config::default(),
            text: String::new(),
            digest: digest(""),
        },
    }
}

/// Save the text as the last good config: temporary file, fsync, rename, fsync of the
/// directory, so a power cut leaves either the old or the new file.
pub fn save_last_good(dir: &Path, text: &str) -> io::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = dir.join(format!(".{LAST_GOOD_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, dir.join(LAST_GOOD_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Save the text as the last good config unless it already is.
pub(super) fn save_if_changed(dir: &Path, text: &str) -> io::Result<()> {
    if std::fs::read_to_string(dir.join(LAST_GOOD_FILE)).is_ok_and(|t| t == text) {
        return Ok(());
    }
    save_last_good(dir, text)
}
