// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent check-config FILE`, the OTA pre-install hook, as a process: exit status and
//! messages for the shipped configs, broken files, unsafe permissions, unreadable files.
//! No root needed.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (exit code, stdout, stderr)
fn check(file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-agent"))
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn shipped_default_and_examples_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![repo().join("conf/agent.toml")];
    for e in std::fs::read_dir(repo().join("conf/examples")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        // Check a private copy: the work tree's permissions depend on the checkout's umask.
        let copy = write(dir.path(), "copy.toml", &std::fs::read(&f).unwrap(), 0o644);
        let (code, out, err) = check(&copy);
        assert_eq!(code, 0, "{}: {err}", f.display());
        assert!(
            out.contains(": valid (schema_version 1,") && out.contains("fnv1a64:"),
            "{out}"
        );
    }
}

#[test]
fn broken_file_is_rejected_naming_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "agent.toml",
        b"schema_version = 1\n[limits]\nsubflows = 9\n[[link]]\ninterfaces = [\"wl[an\"]\nflags = [\"subflow\"]\n",
        0o600,
    );
    let (code, out, err) = check(&p);
    assert_eq!(code, 1, "{out}{err}");
    let shown = p.display().to_string();
    assert!(
        err.contains(&format!(
            "{shown}:3:12: limits.subflows = 9 is out of range (0..=8)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{shown}:5:15: ")) && err.contains("wl[an"),
        "{err}"
    );
    // A syntax error also has its position.
    let p = write(
        dir.path(),
        "syntax.toml",
        b"schema_version = 1\n[limits\n",
        0o600,
    );
    let (code, _, err) = check(&p);
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("{}:2:", p.display())), "{err}");
    // Invalid UTF-8 is "unreadable", with its position.
    let p = write(
        dir.path(),
        "bytes.toml",
        b"schema_version = 1\n# caf\xe9\n",
        0o600,
    );
    let (code, _, err) = check(&p);
    assert_eq!(code, 3);
    assert!(err.contains(":2:6: not UTF-8"), "{err}");
}

#[test]
fn unsafe_and_unreadable_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(repo().join("conf/agent.toml")).unwrap();
    let ww = write(dir.path(), "ww.toml", &text, 0o666);
    let (code, _, err) = check(&ww);
    assert_eq!(code, 4);
    assert!(err.contains("world-writable (mode 0666); refused"), "{err}");
    let gw = write(dir.path(), "gw.toml", &text, 0o664);
    let (code, _, err) = check(&gw);
    assert_eq!(code, 4);
    assert!(err.contains("group-writable"), "{err}");
    let (code, _, err) = check(&dir.path().join("missing.toml"));
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = check(dir.path());
    assert_eq!(code, 3);
    assert!(err.contains("not a regular file"), "{err}");
    let mut big = text.clone();
    big.resize((1 << 20) + 1, b'#');
    let (code, _, err) = check(&write(dir.path(), "big.toml", &big, 0o600));
    assert_eq!(code, 3);
    assert!(err.contains("at most 1048576"), "{err}");
    // Usage errors are 2 (clap), distinct from every verdict.
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-agent"))
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_reports_kernel_capabilities() {
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("mptcp-agent {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("kernel MPTCP: "), "{text}");
    if Path::new("/proc/sys/net/mptcp").exists() {
        assert!(
            text.contains("path-manager commands: ") && text.contains("ADD_ADDR"),
            "{text}"
        );
    }
}
