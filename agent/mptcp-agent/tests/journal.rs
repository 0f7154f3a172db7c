// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent run` writes syslog priority prefixes (`<6>` …) when its stderr is the
//! journal: systemd says so with `JOURNAL_STREAM=DEVICE:INODE` of the stream it connected.
//! Here stderr is a file and JOURNAL_STREAM names that file, exactly as journald's stream
//! would be named. The agent runs with a config that manages nothing and no reachable bus,
//! in a throwaway network namespace when root, so it changes nothing anywhere. The last
//! test runs the real systemd-journald (root) and reads the priorities back with journalctl.

use std::{
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Run the agent ~3 s with these extra arguments; its stderr, and whether JOURNAL_STREAM
/// named it.
fn run_agent(dir: &Path, journal: bool, extra: &[&str]) -> String {
    run_agent_at(dir, journal, extra, "info")
}

fn run_agent_at(dir: &Path, journal: bool, extra: &[&str], level: &str) -> String {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "schema_version = 1\n[networkmanager]\nfollow = false\n[log]\nlevel = \"{level}\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = dir.join(format!("stderr-{journal}-{}.log", extra.join("")));
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let state = dir.join("state");
    let mut args: Vec<String> = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    let program = if root {
        // Its own network namespace: nothing of the host's MPTCP state is even visible.
        args.extend(["--net".into(), env!("CARGO_BIN_EXE_mptcp-agent").into()]);
        "unshare".to_string()
    } else {
        env!("CARGO_BIN_EXE_mptcp-agent").to_string()
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "run".into(),
        "--config".into(),
        cfg.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
    ]);
    let mut cmd = Command::new(program);
    cmd.args(&args)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", dir.join("no-bus").display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    } else {
        cmd.env_remove("JOURNAL_STREAM");
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let stop = Instant::now() + Duration::from_secs(5);
        while child.try_wait().unwrap().is_none() && Instant::now() < stop {
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn priorities_when_stderr_is_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_agent(dir.path(), true, &[]);
    assert!(!text.is_empty(), "no output");
    for line in text.lines() {
        let ok = line.len() > 3
            && line.starts_with('<')
            && matches!(line.as_bytes()[1], b'3'..=b'7')
            && line.as_bytes()[2] == b'>';
        assert!(ok, "line without a priority prefix: {line:?}\n{text}");
        // journald stamps lines itself.
        assert!(
            !line.contains("Z INFO") && !line.starts_with("<6>["),
            "{line:?}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>mptcp-agent ") && l.contains("running with")),
        "{text}"
    );
    // No bus: a warning, at priority 4.
    assert!(text.lines().any(|l| l.starts_with("<4>")), "{text}");
}

#[test]
fn no_prefixes_when_journal_stream_names_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_agent(dir.path(), false, &[]);
    assert!(text.contains("running with"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("<6>")), "{text}");
    assert!(text.contains(" INFO "), "{text}");
}

#[test]
fn log_level_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    // warning: no info lines (the config says info; the command line wins).
    let text = run_agent(dir.path(), true, &["--log-level", "warning"]);
    assert!(!text.lines().any(|l| l.starts_with("<6>")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("<4>")), "{text}");
    // -v: debug lines, priority 7.
    let text = run_agent(dir.path(), true, &["-v"]);
    assert!(text.lines().any(|l| l.starts_with("<7>")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("<6>")), "{text}");
}

#[test]
fn log_level_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_agent_at(dir.path(), true, &[], "warning");
    // Only the line that names the config comes before the config is read.
    assert!(!text.contains("running with"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("<4>")), "{text}");
    let text = run_agent_at(dir.path(), true, &[], "debug");
    assert!(text.contains("<6>log level debug"), "{text}");
}

/// The real thing: systemd-journald in a private mount namespace (its sockets and its
/// volatile journal on tmpfs, nothing of the host's touched), the agent's stderr connected
/// to it as systemd connects a service's (systemd-cat, JOURNAL_STREAM set as systemd sets
/// it), then journalctl: each line arrives with its priority and without the prefix.
#[test]
fn journald_stores_the_priorities() {
    let journald = Path::new("/lib/systemd/systemd-journald");
    if !nix::unistd::geteuid().is_root() || !journald.exists() {
        let msg = format!(
            "SKIPPED (needs root and {}): journald priorities",
            journald.display()
        );
        if std::env::var("MPTCP_REQUIRE_ROOT_TESTS").as_deref() == Ok("1")
            && nix::unistd::geteuid().is_root()
        {
            panic!("{msg}");
        }
        eprintln!("\n*** {msg} ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        "schema_version = 1\n[networkmanager]\nfollow = false\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let script = format!(
        r#"set -e
mkdir -p /run/systemd /run/log
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
mkdir -p /run/systemd/journal
{journald} & jpid=$!
trap 'kill $jpid 2>/dev/null' EXIT
for i in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
ip link set lo up
export DBUS_SYSTEM_BUS_ADDRESS=unix:path={dir}/no-bus
systemd-cat -t mptcp-agent-test --level-prefix=true sh -c \
  'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec {agent} run --config {cfg} --state-dir {dir}/state' &
apid=$!
sleep 3
kill -TERM $apid
wait $apid || true
sleep 0.5
journalctl -D /run/log/journal -t mptcp-agent-test -o json --no-pager
"#,
        journald = journald.display(),
        dir = dir.path().display(),
        agent = env!("CARGO_BIN_EXE_mptcp-agent"),
        cfg = cfg.display(),
    );
    let out = Command::new("timeout")
        .args([
            "60",
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg(&script)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let entries: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|j| {
            (
                j["PRIORITY"].as_str().unwrap_or("").to_string(),
                j["MESSAGE"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let all = format!("{entries:?}\n{stderr}");
    assert!(!entries.is_empty(), "nothing in the journal: {all}");
    assert!(
        entries
            .iter()
            .any(|(p, m)| p == "6" && m.contains("running with")),
        "{all}"
    );
    assert!(
        entries.iter().any(|(p, m)| p == "4" && m.contains("D-Bus")),
        "{all}"
    );
    assert!(
        entries.iter().all(|(_, m)| !m.starts_with('<')),
        "a prefix reached the journal: {all}"
    );
}
