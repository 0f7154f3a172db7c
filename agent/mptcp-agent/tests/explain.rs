// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent explain` without a running agent, in a throwaway network namespace
//! (`unshare --net`): it reads the kernel and reasons with the config file, says why each
//! link has or lacks an endpoint and the one thing to change, and changes nothing. Root
//! only (skipped loudly otherwise; failing with MPTCP_REQUIRE_ROOT_TESTS=1). The lab test
//! against a running agent and real NetworkManager is in tests/lab.rs.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use mptcp_lab::prereq::{met_or_skip, Need};

/// Three links: up0 usable (carrier, address, default route), dn0 without carrier (its peer
/// is down), other0 matched by no rule. Then `explain` as JSON, as text and for a link that
/// does not exist, each with its exit status; the endpoints and limits before and after.
const SCRIPT: &str = r#"set -e
ip link set lo up
ip link add up0 type veth peer name up1; ip link set up1 up; ip link set up0 up
ip addr add 10.77.0.2/24 dev up0; ip route add default via 10.77.0.1 dev up0
ip link add dn0 type veth peer name dn1; ip link set dn0 up
ip addr add 10.78.0.2/24 dev dn0
ip link add other0 type veth peer name other1
before=$(ip mptcp endpoint show; ip mptcp limits show)
set +e
"$AGENT" explain --json --config "$CFG" > "$DIR/json"; echo $? > "$DIR/json.rc"
"$AGENT" explain --config "$CFG" > "$DIR/text"; echo $? > "$DIR/text.rc"
"$AGENT" explain nosuch0 --config "$CFG" > /dev/null 2> "$DIR/nosuch.err"; echo $? > "$DIR/nosuch.rc"
set -e
after=$(ip mptcp endpoint show; ip mptcp limits show)
[ "$before" = "$after" ] || { echo "CHANGED: $before / $after" >&2; exit 9; }
"#;

#[test]
fn explain_without_agent_reads_the_kernel() {
    if !met_or_skip(
        &[Need::Root],
        "explain without an agent in a throwaway network namespace",
    ) {
        return;
    }
    if !Path::new("/proc/sys/net/mptcp").exists() {
        panic!("this kernel has no MPTCP (/proc/sys/net/mptcp missing)");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("explain.toml");
    std::fs::write(
        &cfg,
        "schema_version = 1\n[networkmanager]\nfollow = false\n[limits]\nsubflows = 3\n\
         [[link]]\nname = \"uplinks\"\ninterfaces = [\"up0\", \"dn0\"]\nflags = [\"subflow\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("timeout")
        .args(["60", "unshare", "--net", "sh", "-c", SCRIPT])
        .env("AGENT", env!("CARGO_BIN_EXE_mptcp-agent"))
        .env("CFG", &cfg)
        .env("DIR", dir.path())
        // No bus at all: no agent to ask, no NetworkManager to read.
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", dir.path().join("no-bus").display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("json.rc").trim(), "0", "{}", read("json"));
    let v: serde_json::Value = serde_json::from_str(&read("json")).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["source"], "kernel");
    let link = |name: &str| {
        v["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {v:#}"))
            .clone()
    };
    let up = link("up0");
    assert_eq!(up["state"], "active", "{up:#}");
    assert!(
        up["change"]
            .as_str()
            .unwrap()
            .contains("systemctl start mptcp-agent"),
        "{up:#}"
    );
    let facts = up["facts"].to_string();
    assert!(facts.contains("10.77.0.2 in use"), "{facts}");
    assert!(facts.contains("default route via up0"), "{facts}");
    let dn = link("dn0");
    assert_eq!(dn["state"], "down", "{dn:#}");
    assert!(
        dn["summary"].as_str().unwrap().contains("no carrier"),
        "{dn:#}"
    );
    assert!(dn["change"].as_str().unwrap().contains("carrier"), "{dn:#}");
    let other = link("other0");
    assert_eq!(other["state"], "unmatched", "{other:#}");
    let host = v["host"].to_string();
    assert!(host.contains("subflows 2 (config: 3)"), "{host}");
    assert!(host.contains("networkmanager.follow = false"), "{host}");

    assert_eq!(read("text.rc").trim(), "0");
    let text = read("text");
    assert!(
        text.starts_with("mptcp-agent explain (no agent running: from the kernel"),
        "{text}"
    );
    assert!(
        text.contains("\ndn0 (down): no endpoint: IPv4: no carrier"),
        "{text}"
    );
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{l:?} is wider than 80\n{text}");
    }
    assert_eq!(read("nosuch.rc").trim(), "1", "{}", read("nosuch.err"));
    assert!(read("nosuch.err").contains("nosuch0: no such link"));
}
