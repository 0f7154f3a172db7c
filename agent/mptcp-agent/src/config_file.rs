// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading the config file: size, ownership and permission checks, then the core's
//! parser and validator. Used by `run` and by `check-config` (the OTA hook).

use std::{fmt, os::unix::fs::MetadataExt, path::Path};

use mptcp_agent_core::{config::load, Config, ConfigError};

/// A config file larger than this is refused unread.
const MAX_BYTES: u64 = 1 << 20;

/// Why a config file was not accepted. Each kind has its own `check-config` exit code.
#[derive(Debug)]
pub enum LoadError {
    /// Cannot be read: missing, not a regular file, too large, not UTF-8, I/O error.
    Unreadable(String),
    /// Ownership or permissions would let someone other than root (or the agent's user)
    /// change the agent's behaviour.
    Unsafe(String),
    /// Read, but not a valid config; positions included.
    Invalid { path: String, error: ConfigError },
}

impl LoadError {
    /// Exit status of `check-config` (documented in docs/config-reference.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Invalid { .. } => 1,
            LoadError::Unreadable(_) => 3,
            LoadError::Unsafe(_) => 4,
        }
    }
}

/// At most this many problems are listed, each line at most `MAX_LINE` characters: a
/// hostile file must not flood an OTA hook's log or a D-Bus property.
const MAX_ISSUES: usize = 20;
const MAX_LINE: usize = 300;

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unreadable(m) | LoadError::Unsafe(m) => f.write_str(m),
            LoadError::Invalid { path, error } => {
                let text = error.render(Some(path));
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().take(MAX_ISSUES).enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    if line.chars().count() > MAX_LINE {
                        let cut: String = line.chars().take(MAX_LINE).collect();
                        write!(f, "{cut}…")?;
                    } else {
                        f.write_str(line)?;
                    }
                }
                if lines.len() > MAX_ISSUES {
                    write!(f, "\n… and {} more problems", lines.len() - MAX_ISSUES)?;
                }
                Ok(())
            }
        }
    }
}

/// The parser gives some syntax errors without a message (a NUL byte, for one): say
/// which character is at the position.
fn explain_bare_positions(mut error: ConfigError, text: &str) -> ConfigError {
    for issue in &mut error.issues {
        if issue.message.trim().is_empty() {
            let c = text
                .lines()
                .nth(issue.line.saturating_sub(1))
                .and_then(|l| l.chars().nth(issue.column.saturating_sub(1)));
            issue.message = match c {
                Some(c) => format!("unexpected character {c:?} (U+{:04X})", u32::from(c)),
                None => "unexpected end of file".to_string(),
            };
        }
    }
    error
}

/// Ownership and permissions: a regular file, owned by root or by the user the agent runs
/// as, writable by its owner only; and not too large.
pub fn check_metadata(meta: &std::fs::Metadata, shown: &str) -> Result<(), LoadError> {
    if !meta.is_file() {
        return Err(LoadError::Unreadable(format!(
            "{shown}: not a regular file"
        )));
    }
    if meta.len() > MAX_BYTES {
        return Err(LoadError::Unreadable(format!(
            "{shown}: {} bytes; a config file may have at most {MAX_BYTES}",
            meta.len()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(LoadError::Unsafe(format!(
            "{shown}: world-writable (mode {mode:04o}); refused. Fix: chmod o-w {shown}"
        )));
    }
    if mode & 0o020 != 0 {
        return Err(LoadError::Unsafe(format!(
            "{shown}: group-writable (mode {mode:04o}); refused. Fix: chmod g-w {shown}"
        )));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(LoadError::Unsafe(format!(
            "{shown}: owned by uid {}, not root (or uid {euid}, which runs the agent); refused. Fix: chown root {shown}",
            meta.uid()
        )));
    }
    Ok(())
}

/// The rule for symlinks. A config path may be a symlink (A/B OTA layouts point
/// `/etc/mptcp-agent/agent.toml` into the active slot), but only to a file that could be a
/// config: its real name ends in `.toml` and the directory holding it is owned by root (or
/// the agent's user) and writable by its owner only (plus the ownership and mode checks every config file passes).
/// So a link planted to `/etc/shadow` or any other system file is refused before a byte of
/// it is read, and nothing of its content can appear in an error message.
fn check_symlink_target(path: &Path, file: &std::fs::File, shown: &str) -> Result<(), LoadError> {
    use std::os::fd::AsRawFd;
    let is_link = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    // A symlinked directory on the way counts too: compare with what was really opened.
    let real = match std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
        Ok(r) => r,
        // Without /proc (early boot) a plain path is still fine; a symlink cannot be checked.
        Err(_) if !is_link => return Ok(()),
        Err(e) => {
            return Err(LoadError::Unsafe(format!(
                "{shown}: a symlink, and what it leads to cannot be checked ({e}); refused"
            )))
        }
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path))
    };
    // Lexically: `.` dropped, `..` taken back; a symlink on the way shows as a difference.
    let mut plain = std::path::PathBuf::new();
    for c in absolute.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                plain.pop();
            }
            c => plain.push(c),
        }
    }
    if !is_link && real == plain {
        return Ok(());
    }
    let refuse = |why: String| {
        LoadError::Unsafe(format!(
            "{shown}: a symlink to {}, which {why}; refused (a config symlink must lead to a              *.toml file in a directory only its owner, root, can write)",
            real.display()
        ))
    };
    if real.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Err(refuse("is not a *.toml file".into()));
    }
    let dir = real.parent().unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(dir)
        .map_err(|e| refuse(format!("has a directory that cannot be checked ({e})")))?;
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(refuse(format!(
            "lies in {}, owned by uid {}, not root (or uid {euid}, which runs the agent)",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "lies in {}, writable by group or others (mode {:04o})",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Read a config from standard input (`check-config -`): the same size and UTF-8 rules,
/// no ownership checks (there is no file).
pub fn read_stdin() -> Result<String, LoadError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::Unreadable(format!("{STDIN_NAME}: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(LoadError::Unreadable(format!(
            "{STDIN_NAME}: more than {MAX_BYTES} bytes; a config file may have at most {MAX_BYTES}"
        )));
    }
    utf8(bytes, STDIN_NAME)
}

/// How standard input is named in messages (as compilers do).
pub const STDIN_NAME: &str = "<stdin>";

fn utf8(bytes: Vec<u8>, shown: &str) -> Result<String, LoadError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
        let (line, column) = mptcp_agent_core::config::position(&text, valid);
        LoadError::Unreadable(format!(
            "{shown}:{line}:{column}: not UTF-8 text (invalid byte sequence)"
        ))
    })
}

/// Validate config text read from somewhere other than a file.
pub fn load_text(text: String, shown: &str) -> Result<(Config, String), LoadError> {
    match load(&text) {
        Ok(cfg) => Ok((cfg, text)),
        Err(error) => Err(LoadError::Invalid {
            path: shown.to_string(),
            error: explain_bare_positions(error, &text),
        }),
    }
}

/// Open the file once, check what was opened (so a file swapped in after the check is
/// never read), and read it as UTF-8 text.
pub fn read_checked(path: &Path) -> Result<String, LoadError> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| LoadError::Unreadable(format!("{shown}: {e}"));
    // O_NONBLOCK: opening a FIFO put in the file's place must not hang the agent.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(unreadable)?;
    check_metadata(&file.metadata().map_err(unreadable)?, &shown)?;
    check_symlink_target(path, &file, &shown)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(LoadError::Unreadable(format!(
            "{shown}: grew beyond {MAX_BYTES} bytes while being read"
        )));
    }
    utf8(bytes, &shown)
}

/// Check, read and validate a config file; the config and its text.
pub fn load_file(path: &Path) -> Result<(Config, String), LoadError> {
    let text = read_checked(path)?;
    load_text(text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn shipped_default_is_valid() {
        let text = include_str!("../../../conf/agent.toml");
        let cfg = load(text)
            .unwrap_or_else(|e| panic!("conf/agent.toml:\n{}", e.render(Some("conf/agent.toml"))));
        assert!(!cfg.links.is_empty());
    }

    #[test]
    fn permissions_and_errors_map_to_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let ok = write(dir.path(), "ok.toml", "schema_version = 1\n", 0o644);
        assert!(load_file(&ok).is_ok());
        let ww = write(dir.path(), "ww.toml", "schema_version = 1\n", 0o666);
        let e = load_file(&ww).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("world-writable"), "{e}");
        let gw = write(dir.path(), "gw.toml", "schema_version = 1\n", 0o664);
        assert_eq!(load_file(&gw).unwrap_err().exit_code(), 4);
        let bad = write(
            dir.path(),
            "bad.toml",
            "schema_version = 1\n[limits]\nsubflows = 99\n",
            0o600,
        );
        let e = load_file(&bad).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string()
                .contains("bad.toml:3:12: limits.subflows = 99"),
            "{e}"
        );
        let missing = dir.path().join("missing.toml");
        assert_eq!(load_file(&missing).unwrap_err().exit_code(), 3);
        assert_eq!(load_file(dir.path()).unwrap_err().exit_code(), 3);
    }
}
