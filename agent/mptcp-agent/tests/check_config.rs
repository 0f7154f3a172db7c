// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent check-config FILE`, the OTA pre-install hook, as a process: exit status and
//! messages for the shipped configs, broken files, unsafe permissions, unreadable files.
//! No root needed.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use mptcp_lab::prereq::{met_or_skip, Need};

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

/// `mptcp-agent ARGS` with `stdin` as its input: (exit code, stdout, stderr).
fn agent_with_input(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mptcp-agent"));
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_problem_in_one_run_in_words_a_user_knows() {
    let dir = tempfile::tempdir().unwrap();
    // Two misspelt keys, a type error and a range error hidden behind it before.
    let p = write(
        dir.path(),
        "agent.toml",
        b"schema_version = 1\n[limits]\nsubflow = 2\nadd_addr_accepted = \"two\"\n[routing]\nprotocol = 1\n[sysctl]\nscheduler = \"BLEST\"\nenabeld = true\n",
        0o600,
    );
    let (code, out, err) = check(&p);
    assert_eq!(code, 1, "{out}{err}");
    let shown = p.display().to_string();
    let want = [
        format!("{shown}:3:1: unknown key `limits.subflow`; did you mean `limits.subflows`?"),
        format!(
            "{shown}:4:21: limits.add_addr_accepted: expected a whole number, found the text \"two\""
        ),
        format!("{shown}:6:12: routing.protocol = 1 is out of range (5..=255)"),
        format!("{shown}:8:13: sysctl.scheduler = \"BLEST\": a scheduler name is 1-15 characters of a-z, 0-9 and _"),
        format!("{shown}:9:1: unknown key `sysctl.enabeld`; did you mean `sysctl.enabled`?"),
    ];
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines, want, "{err}");
    assert!(!err.contains("i64"), "{err}");
}

#[test]
fn stdin_is_dash() {
    let good = std::fs::read(repo().join("conf/agent.toml")).unwrap();
    let (code, out, err) = agent_with_input(&["check-config", "-"], &good, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("<stdin>: valid (schema_version 1,"),
        "{out}"
    );
    let (code, _, err) = agent_with_input(
        &["check-config", "-"],
        b"schema_version = 1\n[limits]\nsubflows = 9\n",
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim_end(),
        "<stdin>:3:12: limits.subflows = 9 is out of range (0..=8)"
    );
    let (code, _, err) =
        agent_with_input(&["check-config", "-"], b"schema_version = 1\n\xff\n", &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("<stdin>:2:1: not UTF-8"), "{err}");
}

#[test]
fn symlinks_only_to_files_that_could_be_a_config() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(repo().join("conf/agent.toml")).unwrap();
    // A symlink into a directory only its owner (root or this user) can write: accepted.
    let slot = dir.path().join("slot-a");
    std::fs::create_dir(&slot).unwrap();
    std::fs::set_permissions(&slot, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(&slot, "agent.toml", &text, 0o644);
    let link = dir.path().join("agent.toml");
    symlink(slot.join("agent.toml"), &link).unwrap();
    let (code, out, err) = check(&link);
    assert_eq!(code, 0, "{out}{err}");
    // A directory on the way that is a symlink counts the same.
    let via = dir.path().join("current");
    symlink(&slot, &via).unwrap();
    let (code, _, err) = check(&via.join("agent.toml"));
    assert_eq!(code, 0, "{err}");

    // To a system file: refused before it is read; nothing of it appears.
    for target in ["/etc/passwd", "/etc/shadow", "/etc/hostname"] {
        if !Path::new(target).exists() {
            continue;
        }
        let link = dir.path().join(format!("to-{}.toml", &target[5..]));
        symlink(target, &link).unwrap();
        let (code, out, err) = check(&link);
        // /etc/shadow is unreadable (3) to a normal user; as root it is refused (4).
        let readable = std::fs::File::open(target).is_ok();
        assert_eq!(code, if readable { 4 } else { 3 }, "{target}: {out}{err}");
        if readable {
            assert!(
                err.contains(&format!(
                    "a symlink to {target}, which is not a *.toml file; refused"
                )),
                "{err}"
            );
        }
        assert!(!err.contains("root:") && !err.contains("line"), "{err}");
    }

    // To a *.toml in a directory others may write: refused.
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    write(&open_dir, "agent.toml", &text, 0o644);
    let link = dir.path().join("to-open.toml");
    symlink(open_dir.join("agent.toml"), &link).unwrap();
    let (code, _, err) = check(&link);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("writable by group or others (mode 0777)"),
        "{err}"
    );
}

#[test]
fn help_of_help_and_every_command() {
    for args in [
        &["help", "--help"][..],
        &["help"],
        &["help", "status"],
        &["help", "check-config"],
        &["status", "--help"],
        &["resync", "--help"],
        &["run", "--help"],
    ] {
        let (code, out, err) = agent_with_input(args, b"", &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Usage: mptcp-agent"), "{args:?}: {out}");
    }
    let (_, out, _) = agent_with_input(&["help", "check-config"], b"", &[]);
    assert!(
        out.contains("--diff") && out.contains("`-` reads standard input"),
        "{out}"
    );
    let (_, out, _) = agent_with_input(&["help", "run"], b"", &[]);
    assert!(out.contains("--log-level") && out.contains("-v"), "{out}");
    let (code, _, err) = agent_with_input(&["help", "bogus"], b"", &[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = agent_with_input(&["run", "--log-level", "loud"], b"", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("use one of error, warning, info, debug, trace"),
        "{err}"
    );
}

#[test]
fn without_a_bus_the_error_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("no-bus");
    let address = format!("unix:path={}", sock.display());
    for verb in ["status", "resync", "reload"] {
        let (code, _, err) =
            agent_with_input(&[verb], b"", &[("DBUS_SYSTEM_BUS_ADDRESS", &address)]);
        assert_eq!(code, 3, "{verb}: {err}");
        assert!(
            err.contains(&format!("cannot reach the system bus at {address}"))
                && err.contains("DBUS_SYSTEM_BUS_ADDRESS"),
            "{verb}: {err}"
        );
    }
}

/// `check-config --diff` in a throwaway network namespace with one uplink: it lists the
/// limits and the endpoint the config asks for, and changes neither.
#[test]
fn diff_shows_what_would_change_and_changes_nothing() {
    if !met_or_skip(
        &[Need::Root],
        "check-config --diff in a throwaway network namespace",
    ) {
        return;
    }
    if !Path::new("/proc/sys/net/mptcp").exists() {
        panic!("this kernel has no MPTCP (/proc/sys/net/mptcp missing)");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "diff.toml",
        b"schema_version = 1\n[networkmanager]\nfollow = false\n[limits]\nsubflows = 3\n[[link]]\ninterfaces = [\"up0\"]\nflags = [\"subflow\"]\n",
        0o600,
    );
    let script = format!(
        "set -e; ip link set lo up; ip link add up0 type veth peer name up1; \
         ip addr add 10.77.0.2/24 dev up0; ip link set up1 up; ip link set up0 up; \
         ip route add default via 10.77.0.1 dev up0; \
         before=$(ip mptcp endpoint show; ip mptcp limits show); \
         {} check-config --diff {}; \
         after=$(ip mptcp endpoint show; ip mptcp limits show); \
         [ \"$before\" = \"$after\" ] || {{ echo \"CHANGED: $before / $after\" >&2; exit 9; }}",
        env!("CARGO_BIN_EXE_mptcp-agent"),
        cfg.display()
    );
    let out = Command::new("timeout")
        .args(["60", "unshare", "--net", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(
        text.contains("(kernel-only mode) would make 3 change(s)"),
        "{text}"
    );
    // An uplink coming into use gets its unresolved neighbour entries reset first (the
    // join must not wait for the next ARP probe).
    assert!(text.contains("  neighbour flush ifindex "), "{text}");
    assert!(text.contains("  limits set subflows 3"), "{text}");
    assert!(
        text.contains("  endpoint add 10.77.0.2 id 1 subflow"),
        "{text}"
    );
    assert!(text.contains("because up0: usable"), "{text}");
}
