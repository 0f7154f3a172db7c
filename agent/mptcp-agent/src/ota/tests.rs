// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config lifecycle without a kernel: last good config, start-up fallbacks, the file
//! watch, shipped configs. (Transactions and reloads against a fake kernel: daemon/tests.rs.)

use std::{
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
    time::Duration,
};

use mptcp_agent_core::config::load as parse;

use super::{
    watch::{Watcher, DEBOUNCE, REWATCH},
    *,
};
use crate::{service::ConfigSource, test_fixtures::run};

/// The config in force before (one link rule).
pub(crate) const OLD: &str = r#"schema_version = 1
[limits]
subflows = 2
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow"]
"#;

/// The config a reload brings (every kind of change).
pub(crate) const NEW: &str = r#"schema_version = 1
[limits]
subflows = 4
add_addr_accepted = 1
[sysctl]
add_addr_timeout = 60
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow", "backup"]
[[link]]
name = "cellular"
interfaces = ["wwan*"]
flags = ["subflow"]
[[link]]
name = "ppp"
interfaces = ["ppp*"]
flags = ["subflow"]
"#;

// ---------------------------------------------------------------------------------------
// Files

pub(crate) fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn shipped_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let b = built_in();
    assert!(!b.config.links.is_empty());
    assert_eq!(b.text, BUILT_IN);
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("conf/examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!l.config.links.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3, "conf/examples has {n} configs");
    // Every key of the schema appears (set or commented out) in the annotated default.
    for key in [
        "schema_version",
        "[networkmanager]",
        "follow",
        "conf_paths",
        "[limits]",
        "subflows",
        "add_addr_accepted",
        "[sysctl]",
        "enabled",
        "add_addr_timeout",
        "checksum_enabled",
        "allow_join_initial_addr_port",
        "stale_loss_cnt",
        "scheduler",
        "close_timeout",
        "blackhole_timeout",
        "syn_retrans_before_tcp_fallback",
        "[routing]",
        "table_base",
        "rule_priority",
        "protocol",
        "[reestablish]",
        "initial_delay_ms",
        "max_delay_ms",
        "[[link]]",
        "name",
        "interfaces",
        "device_types",
        "metered",
        "manage",
        "flags",
        "on_carrier_loss",
        "ipv4",
        "ipv6",
        "metered_backup",
        "allow_virtual",
    ] {
        assert!(
            BUILT_IN.contains(key),
            "conf/agent.toml does not document {key}"
        );
    }
}

#[test]
fn digest_is_stable_and_content_bound() {
    assert_eq!(digest(""), "fnv1a64:cbf29ce484222325");
    assert_eq!(digest("a"), "fnv1a64:af63dc4c8601ec8c");
    assert_ne!(
        digest("schema_version = 1\n"),
        digest("schema_version = 1 \n")
    );
}

#[test]
fn last_good_is_saved_atomically_and_privately() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/nested");
    save_last_good(&state, "schema_version = 1\n").unwrap();
    let p = state.join(LAST_GOOD_FILE);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "schema_version = 1\n");
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    save_last_good(&state, "schema_version = 1\n# two\n").unwrap();
    assert!(std::fs::read_to_string(&p).unwrap().ends_with("# two\n"));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(load(&p).is_ok());
}

pub(crate) fn options(dir: &Path) -> Options {
    Options {
        config: dir.join("etc/agent.toml"),
        state_dir: dir.join("state"),
    }
}

#[test]
fn start_falls_back_to_last_good_then_built_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let opts = options(dir.path());
    // Valid file: runs, and becomes the last good config.
    write(&opts.config, OLD, 0o644);
    let (lc, cfg) = Lifecycle::start(options(dir.path()));
    assert_eq!(cfg, parse(OLD).unwrap());
    assert_eq!(lc.info.source, ConfigSource::File);
    assert_eq!(lc.info.digest, digest(OLD));
    assert_eq!(
        std::fs::read_to_string(opts.state_dir.join(LAST_GOOD_FILE)).unwrap(),
        OLD
    );
    drop(lc);

    // Broken file: the last good one runs; the error names the position.
    write(
        &opts.config,
        "schema_version = 1\n[limits]\nsubflows = 99\n",
        0o644,
    );
    let (lc, cfg) = Lifecycle::start(options(dir.path()));
    assert_eq!(cfg, parse(OLD).unwrap());
    assert_eq!(lc.info.source, ConfigSource::LastGood);
    assert!(
        lc.info
            .last_error
            .contains("agent.toml:3:12: limits.subflows = 99"),
        "{}",
        lc.info.last_error
    );
    assert_eq!(lc.info.digest, digest(OLD));
    drop(lc);

    // World-writable file and no last good config: the built-in default runs.
    write(&opts.config, OLD, 0o666);
    std::fs::remove_file(opts.state_dir.join(LAST_GOOD_FILE)).unwrap();
    let (lc, cfg) = Lifecycle::start(options(dir.path()));
    assert_eq!(cfg, built_in().config);
    assert_eq!(lc.info.source, ConfigSource::BuiltIn);
    assert!(
        lc.info.last_error.contains("world-writable"),
        "{}",
        lc.info.last_error
    );
    drop(lc);

    // An unsafe last good file is not used either.
    write(&opts.config, "garbage", 0o644);
    write(&opts.state_dir.join(LAST_GOOD_FILE), OLD, 0o666);
    let (lc, _) = Lifecycle::start(options(dir.path()));
    assert_eq!(lc.info.source, ConfigSource::BuiltIn);
}

// ---------------------------------------------------------------------------------------
// The watch

#[test]
fn watcher_sees_rename_and_in_place_write_only_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    write(&path, OLD, 0o600);
    run(async {
        let mut w = Watcher::new(&path).unwrap();
        let bound = Duration::from_secs(3);
        // Atomic replace.
        let tmp = dir.path().join(".agent.toml.new");
        write(&tmp, NEW, 0o600);
        std::fs::rename(&tmp, &path).unwrap();
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("rename seen");
        // In-place write in several pieces: one change after the writer is done.
        let t0 = tokio::time::Instant::now();
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            for chunk in OLD.as_bytes().chunks(16) {
                f.write_all(chunk).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("in-place write seen");
        assert!(t0.elapsed() >= DEBOUNCE, "debounced");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), w.changed())
                .await
                .is_err(),
            "one change per write burst"
        );
        // Other files in the directory are not the config.
        write(&dir.path().join("other.toml"), "x", 0o600);
        assert!(
            tokio::time::timeout(Duration::from_millis(400), w.changed())
                .await
                .is_err()
        );
        // chmod counts (permissions are part of the check).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("chmod seen");
    });
}

#[test]
fn watcher_survives_the_directory_being_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let path = etc.join("agent.toml");
    write(&path, OLD, 0o600);
    run(async {
        let mut w = Watcher::new(&path).unwrap();
        std::fs::remove_dir_all(&etc).unwrap();
        // The deletion itself is a change of the file.
        tokio::time::timeout(Duration::from_secs(3), w.changed())
            .await
            .expect("delete seen");
        std::fs::create_dir(&etc).unwrap();
        write(&path, NEW, 0o600);
        tokio::time::timeout(REWATCH * 3, w.changed())
            .await
            .expect("seen again after re-watch");
        write(&path, OLD, 0o600);
        tokio::time::timeout(Duration::from_secs(3), w.changed())
            .await
            .expect("watching the new directory");
    });
}
