// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-backport probe` on the host kernel (root): every check must pass on a kernel with
//! the 5.15 MPTCP stack or newer. Skipped loudly when not root or without MPTCP, a failure
//! then when MPTCP_REQUIRE_ROOT_TESTS=1 (CI).

use std::process::Command;

use mptcp_lab::prereq::{run_trials, trials, Need};

fn probe_passes_on_the_host() -> Result<(), String> {
    let child = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"))
        .args(["probe", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("run probe: {e}"))?;
    let pid = child.id();
    let out = child
        .wait_with_output()
        .map_err(|e| format!("probe: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "probe output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c["ok"] != serde_json::Value::Bool(true))
        .map(|c| format!("{}: {}", c["name"], c["detail"]))
        .collect();
    if !out.status.success() || !failed.is_empty() {
        return Err(format!(
            "probe failed on Linux {} (exit {:?}):\n  {}",
            report["kernel"],
            out.status.code(),
            failed.join("\n  ")
        ));
    }
    // Every kind of check ran: 5 sysctls, netlink, transfer, join, timestamps, events.
    let names: Vec<String> = checks
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect();
    for want in [
        "sysctl net.mptcp.stale_loss_cnt",
        "PM SET_FLAGS (backup on, then off)",
        "MPTCP transfer between two namespaces",
        "second subflow joins",
        "SO_TIMESTAMPNS cmsg on an MPTCP socket",
        "PM events (CREATED, ESTABLISHED, SUB_ESTABLISHED)",
    ] {
        if !names.iter().any(|n| n == want) {
            return Err(format!("check `{want}` did not run; ran {names:?}"));
        }
    }
    // Its namespaces (named mbp-TAG-PID-N) are gone.
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|e| e.to_string())?;
    let left: Vec<String> = String::from_utf8_lossy(&ns.stdout)
        .lines()
        .filter(|l| l.starts_with("mbp-") && l.contains(&format!("-{pid}-")))
        .map(str::to_string)
        .collect();
    if !left.is_empty() {
        return Err(format!("probe left namespaces behind: {left:?}"));
    }
    Ok(())
}

fn main() {
    run_trials(trials(
        &[Need::Root, Need::Mptcp, Need::Program("ip")],
        vec![("probe_passes_on_the_host", probe_passes_on_the_host)],
    ));
}
