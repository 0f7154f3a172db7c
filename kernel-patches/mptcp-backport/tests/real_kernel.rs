// SPDX-License-Identifier: MIT OR Apache-2.0
//! `verify` on the real Debian bullseye linux-source-5.10 tree (5.10.223), with the config
//! fragments merged by the kernel's own kconfig (x86_64 defconfig + fragments →
//! merge_config.sh → olddefconfig) and net/mptcp/ compiled.
//!
//! The truth on a plain 5.10 tree: the 5.15 MPTCP features are MISSING, the 5.10 ones and the
//! core pieces 5.10.y already backported are present, and every fragment symbol that exists
//! in 5.10 reaches .config. The tree is extracted once into a cache keyed by the tarball's
//! hash ($MPTCP_BACKPORT_CACHE, else /var/cache/meta-mptcp, else target/tmp).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mptcp_lab::prereq::{run_trials, trials, Need};
use serde_json::Value;

const TARBALL: &str = "/usr/src/linux-source-5.10.tar.xz";

/// Required features a plain 5.10.223 tree has (5.10 MPTCP, and core pieces 5.10.y took).
const PRESENT: &[&str] = &[
    "sysctl net.mptcp.enabled",
    "in-kernel path manager (netlink ADD_ADDR)",
    "mptcp_diag (ss -M)",
    "ADD_ADDR echo MIB",
    "core: __tcp_close()",
    "core: proc_dou8vec_minmax()",
    "core: genetlink multicast group flags (GENL_UNS_ADMIN_PERM, or GENL_MCAST_CAP_* after cd4d7263d58a)",
    "core: struct sock::sk_wait_pending",
];

/// Required features it lacks: everything 5.11–5.15 brought, and the core pieces behind it.
const MISSING: &[&str] = &[
    "sysctl net.mptcp.add_addr_timeout",
    "sysctl net.mptcp.checksum_enabled",
    "sysctl net.mptcp.allow_join_initial_addr_port",
    "sysctl net.mptcp.stale_loss_cnt",
    "PM command SET_FLAGS (MP_PRIO / backup)",
    "PM netlink event group",
    "uapi: fullmesh endpoint flag",
    "uapi: mptcpi_csum_enabled",
    "uapi: MP_RST reset reasons",
    "uapi: netlink event types",
    "MP_FAIL MIBs",
    "MP_PRIO MIBs",
    "DSS checksum error MIB",
    "socket options file net/mptcp/sockopt.c",
    "tracepoints include/trace/events/mptcp.h",
    "KUnit symbol MPTCP_KUNIT_TEST (5.15 name)",
    "core: tcp_reset(sk, skb) parses MPTCP options on RST",
    "core: mptcp_incoming_options() can drop a segment",
    "core: MP_TCPRST reason in TCP resets",
    "core: lock_sock_fast_nested()",
    "core: sock_set_timestamp()/sock_set_timestamping() for MPTCP",
    "core: tcp_recv_timestamp() exported",
    "core: tcp_skb_entail()/tcp_mark_push() exported",
    "core: tcp_remove_empty_skb() visible to MPTCP",
    "core: <crypto/sha2.h>",
    "core: lockdep_assert_in_softirq()",
    "core: sk_error_report()",
    "core: ethtool_get_phc_vclocks() for SO_TIMESTAMPING PHC binding",
    "core: struct so_timestamping",
    "selftest mptcp_sockopt.sh",
];

/// Informational checks and what 5.10.223 says.
const INFO: &[(&str, bool)] = &[
    ("KUnit symbol MPTCP_KUNIT_TESTS (5.10 name)", true),
    ("selftest mptcp_lib.sh", true),
    ("variant: bare per-cpu TCP orphan counter", true),
    (
        "variant: busy-poll options SO_PREFER_BUSY_POLL in the core",
        false,
    ),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn manifest() -> PathBuf {
    workspace().join("kernel-patches/series.toml")
}

fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("MPTCP_BACKPORT_CACHE") {
        return PathBuf::from(dir);
    }
    let system = PathBuf::from("/var/cache/meta-mptcp");
    if std::fs::create_dir_all(&system).is_ok() && tempfile::tempdir_in(&system).is_ok() {
        return system;
    }
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meta-mptcp-cache")
}

/// The extracted tree (extracted at most once per tarball content, shared by the trials).
fn tree() -> Result<PathBuf, String> {
    static TREE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TREE.get_or_init(extract).clone()
}

fn extract() -> Result<PathBuf, String> {
    let out = Command::new("sha256sum")
        .arg(TARBALL)
        .output()
        .map_err(|e| format!("sha256sum: {e}"))?;
    let hash: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .take(16)
        .collect();
    if !out.status.success() || hash.len() != 16 {
        return Err(format!("cannot hash {TARBALL}"));
    }
    let root = cache_root();
    let dir = root.join(format!("linux-5.10-{hash}"));
    let tree = dir.join("linux-source-5.10");
    if tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let tmp = root.join(format!("linux-5.10-{hash}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let st = Command::new("tar")
        .arg("-xJf")
        .arg(TARBALL)
        .arg("-C")
        .arg(&tmp)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !st.success() {
        return Err(format!("tar -xJf {TARBALL} failed"));
    }
    // Another run may have finished first; either copy is the same content.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if tree.join("Makefile").is_file() {
        Ok(tree)
    } else {
        Err(format!(
            "{} has no Makefile after extraction",
            tree.display()
        ))
    }
}

fn run_verify(args: &[&str]) -> Result<(i32, Value, String), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"))
        .arg("--manifest")
        .arg(manifest())
        .arg("verify")
        .args(args)
        .arg("--json")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("bad JSON ({e}); stderr: {stderr}"))?;
    Ok((out.status.code().unwrap_or(-1), json, stderr))
}

fn names(report: &Value, present: bool) -> BTreeSet<String> {
    report["features"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| {
                    f["required"] == Value::Bool(true) && f["present"] == Value::Bool(present)
                })
                .filter_map(|f| f["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn features_on_plain_5_10() -> Result<(), String> {
    let tree = tree()?;
    let (code, report, stderr) = run_verify(&["--tree", tree.to_str().unwrap_or_default()])?;
    if report["kernel"] != "5.10.223" {
        return Err(format!("unexpected kernel {}", report["kernel"]));
    }
    let missing = names(&report, false);
    let present = names(&report, true);
    let want_missing: BTreeSet<String> = MISSING.iter().map(|s| s.to_string()).collect();
    let want_present: BTreeSet<String> = PRESENT.iter().map(|s| s.to_string()).collect();
    if missing != want_missing {
        return Err(format!(
            "MISSING differs.\n  unexpectedly missing: {:?}\n  unexpectedly present: {:?}",
            missing.difference(&want_missing).collect::<Vec<_>>(),
            want_missing.difference(&missing).collect::<Vec<_>>()
        ));
    }
    if present != want_present {
        return Err(format!("present differs: got {present:?}"));
    }
    for (name, expected) in INFO {
        let got = report["features"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == *name))
            .map(|f| f["present"] == Value::Bool(true));
        if got != Some(*expected) {
            return Err(format!(
                "info check {name:?}: got {got:?}, expected {expected}"
            ));
        }
    }
    if code != 1 {
        return Err(format!(
            "verify must fail (exit 1) on a tree without the backport, got {code}; {stderr}"
        ));
    }
    Ok(())
}

fn config_and_compile_on_5_10() -> Result<(), String> {
    let tree = tree()?;
    let build = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_, report, stderr) = run_verify(&[
        "--tree",
        tree.to_str().unwrap_or_default(),
        "--config",
        "--selftests",
        "--arch",
        "x86_64",
        "--build-dir",
        build.path().to_str().unwrap_or_default(),
        "--compile",
        "-j",
        "2",
    ])?;
    let config = &report["config"];
    let steps: Vec<&str> = config["steps"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if steps
        != [
            "make defconfig",
            "scripts/kconfig/merge_config.sh -m",
            "make olddefconfig",
        ]
    {
        return Err(format!("unexpected kconfig steps {steps:?}; {stderr}"));
    }
    let symbols = config["symbols"].as_array().ok_or("no symbols")?;
    let status = |sym: &str| {
        symbols
            .iter()
            .find(|s| s["symbol"] == sym)
            .map(|s| s["status"].as_str().unwrap_or("").to_string())
    };
    for s in symbols {
        let sym = s["symbol"].as_str().unwrap_or("");
        let st = s["status"].as_str().unwrap_or("");
        let expected = if sym == "MPTCP_KUNIT_TEST" {
            "renamed"
        } else {
            "ok"
        };
        if st != expected {
            return Err(format!(
                "CONFIG_{sym}: {st} (expected {expected}): {}",
                s["note"]
            ));
        }
    }
    for must in [
        "MPTCP",
        "MPTCP_IPV6",
        "INET_MPTCP_DIAG",
        "SYN_COOKIES",
        "MPTCP_KUNIT_TESTS",
        "NET_SCH_NETEM",
        "VETH",
        "NF_TABLES",
    ] {
        if status(must).as_deref() != Some("ok") {
            return Err(format!("CONFIG_{must} did not reach .config"));
        }
    }
    // The final .config really has them (not only the report).
    let final_config =
        std::fs::read_to_string(build.path().join(".config")).map_err(|e| e.to_string())?;
    for line in [
        "CONFIG_MPTCP=y",
        "CONFIG_MPTCP_IPV6=y",
        "CONFIG_INET_MPTCP_DIAG=y",
        "CONFIG_MPTCP_KUNIT_TESTS=m",
    ] {
        if !final_config.lines().any(|l| l == line) {
            return Err(format!("{line} not in the final .config"));
        }
    }
    if config["ok"] != Value::Bool(true) {
        return Err("config part not ok".into());
    }
    if report["compile"]["ok"] != Value::Bool(true) {
        return Err(format!(
            "net/mptcp/ did not compile:\n{}",
            report["compile"]["output"].as_str().unwrap_or("")
        ));
    }
    if !build.path().join("net/mptcp/protocol.o").is_file() {
        return Err("net/mptcp/protocol.o was not built".into());
    }
    Ok(())
}

fn ipv6_module_caveat() -> Result<(), String> {
    let tree = tree()?;
    let build = tempfile::tempdir().map_err(|e| e.to_string())?;
    let frag = build.path().join("ipv6-module.cfg");
    std::fs::write(&frag, "CONFIG_IPV6=m\n").map_err(|e| e.to_string())?;
    let (code, report, _) = run_verify(&[
        "--tree",
        tree.to_str().unwrap_or_default(),
        "--config",
        "--arch",
        "x86_64",
        "--build-dir",
        build.path().join("b").to_str().unwrap_or_default(),
        "--fragment",
        frag.to_str().unwrap_or_default(),
    ])?;
    let symbols = report["config"]["symbols"].as_array().ok_or("no symbols")?;
    let ipv6 = symbols
        .iter()
        .find(|s| s["symbol"] == "MPTCP_IPV6")
        .ok_or("no MPTCP_IPV6 line")?;
    if ipv6["status"] != "mismatch" || !ipv6["note"].as_str().unwrap_or("").contains("IPV6=m") {
        return Err(format!("IPV6=m must be reported on MPTCP_IPV6: {ipv6}"));
    }
    if code != 1 || report["config"]["ok"] != Value::Bool(false) {
        return Err("a config where MPTCP_IPV6 is lost must fail".into());
    }
    Ok(())
}

type Test = Box<dyn FnOnce() -> Result<(), String> + Send>;

fn main() {
    let needs = [
        Need::Program("make"),
        Need::Program("gcc"),
        Need::Program("flex"),
        Need::Program("bison"),
        Need::Program("bc"),
        Need::Program("tar"),
        Need::Program("xz"),
        Need::Program("sha256sum"),
        Need::Program(TARBALL),
    ];
    let tests: Vec<(&'static str, Test)> = vec![
        (
            "verify_features_on_plain_5_10_223",
            Box::new(features_on_plain_5_10),
        ),
        (
            "verify_config_fragments_and_compile_on_5_10_223",
            Box::new(config_and_compile_on_5_10),
        ),
        (
            "verify_reports_ipv6_module_caveat",
            Box::new(ipv6_module_caveat),
        ),
    ];
    run_trials(trials(&needs, tests))
}
