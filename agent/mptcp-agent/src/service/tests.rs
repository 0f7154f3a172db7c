// SPDX-License-Identifier: MIT OR Apache-2.0
//! The D-Bus API without a bus: the checked-in introspection XML and docs/dbus-api.md stay
//! in sync with the interface, snapshots show what the daemon sees, access rules.

use std::{collections::BTreeSet, path::PathBuf};

use mptcp_agent_core::{
    config::load, Config, Diagnostic, EndpointFlags, Event, KernelEndpoint, KernelSnapshot, Link,
    Millis, Observed, OperState,
};

use super::*;
use crate::test_fixtures::{self, addr, default_via};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub const XML_PATH: &str = "conf/dbus/io.github.meta_mptcp.Agent1.xml";
const DOC_PATH: &str = "docs/dbus-api.md";

/// The `<interface name="io.github.meta_mptcp.Agent1">` element, lines right-trimmed.
pub fn interface_block(xml: &str) -> Option<String> {
    let start = xml.find(&format!("<interface name=\"{INTERFACE}\">"))?;
    let end = start + xml[start..].find("</interface>")? + "</interface>".len();
    // Indentation relative to the element's own line.
    let line_start = xml[..start].rfind('\n').map_or(0, |i| i + 1);
    let indent = start - line_start;
    let block: Vec<String> = xml[line_start..end]
        .lines()
        .map(|l| {
            let l = l.trim_end();
            let strip = l.len() - l.trim_start().len();
            l[strip.min(indent)..].to_string()
        })
        .collect();
    Some(block.join("\n"))
}

fn checked_in_file(served: &str) -> String {
    format!(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
         <!-- SPDX-License-Identifier: MIT OR Apache-2.0 -->\n\
         <!--\n  Introspection of {INTERFACE} at {OBJECT_PATH}, as the agent serves it\n  \
         (generated from agent/mptcp-agent/src/service.rs; docs/dbus-api.md describes each member).\n  \
         A test compares it with the interface: after changing the interface, regenerate with\n  \
         MPTCP_AGENT_BLESS=1 cargo test -p mptcp-agent introspection\n-->\n\
         <node>\n{}\n</node>\n",
        served
            .lines()
            .map(|l| if l.is_empty() { String::new() } else { format!("  {l}") })
            .collect::<Vec<_>>()
            .join("\n")
    )
}

#[test]
fn introspection_xml_is_checked_in() {
    let served = interface_block(&introspection_xml()).expect("served XML has the interface");
    let path = repo().join(XML_PATH);
    if std::env::var("MPTCP_AGENT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, checked_in_file(&served)).unwrap();
    }
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    let checked_in = interface_block(&file).unwrap_or_default();
    assert!(
        checked_in == served,
        "{XML_PATH} differs from the served interface; regenerate with \
         MPTCP_AGENT_BLESS=1 cargo test -p mptcp-agent introspection\n--- served:\n{served}\n--- {XML_PATH}:\n{checked_in}"
    );
    // The interface block must sit inside a <node>, like every D-Bus interface file.
    assert!(
        file.contains("<node>") && file.trim_end().ends_with("</node>"),
        "{file}"
    );
}

/// Member names of the interface (methods, signals, properties) and the error names.
fn members(xml: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for kind in ["<method name=\"", "<signal name=\"", "<property name=\""] {
        let mut rest = xml;
        while let Some(i) = rest.find(kind) {
            rest = &rest[i + kind.len()..];
            if let Some(end) = rest.find('"') {
                out.insert(rest[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn dbus_api_doc_mentions_every_member_and_error() {
    let served = interface_block(&introspection_xml()).unwrap();
    let doc = std::fs::read_to_string(repo().join(DOC_PATH)).unwrap_or_default();
    let mut missing = Vec::new();
    let names = members(&served);
    assert!(names.len() >= 20, "{names:?}");
    for m in &names {
        if !doc.contains(&format!("`{m}`")) {
            missing.push(m.clone());
        }
    }
    for e in [
        "AccessDenied",
        "ConfigRejected",
        "ApplyFailed",
        "ResyncFailed",
        "Unavailable",
    ] {
        let full = format!("io.github.meta_mptcp.Agent1.Error.{e}");
        if !doc.contains(&full) {
            missing.push(full);
        }
    }
    for word in [
        BUS_NAME,
        OBJECT_PATH,
        ADMIN_GROUP,
        "org.freedesktop.DBus.Error.AccessDenied",
    ] {
        if !doc.contains(word) {
            missing.push(word.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "{DOC_PATH} does not mention: {missing:?}"
    );
}

#[test]
fn error_names() {
    use zbus::DBusError as _;
    assert_eq!(
        AgentError::AccessDenied("x".into()).name().as_str(),
        "io.github.meta_mptcp.Agent1.Error.AccessDenied"
    );
    assert_eq!(
        AgentError::ConfigRejected("x".into()).name().as_str(),
        "io.github.meta_mptcp.Agent1.Error.ConfigRejected"
    );
    assert_eq!(
        AgentError::ApplyFailed("why".into()).description(),
        Some("why")
    );
}

const CFG: &str = r#"
schema_version = 1
[[link]]
name = "virtual"
interfaces = ["veth*"]
manage = false
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow"]
[[link]]
name = "cellular"
interfaces = ["wwan*"]
flags = ["subflow", "backup"]
ipv6 = false
"#;

/// [`test_fixtures::link`] with carrier as given; never point-to-point.
fn link(ifindex: u32, name: &str, carrier: bool) -> Link {
    Link {
        lower_up: carrier,
        point_to_point: false,
        oper: if carrier {
            OperState::Up
        } else {
            OperState::LowerLayerDown
        },
        ..test_fixtures::link(ifindex, name)
    }
}

/// wlan0 usable with its endpoint in place; wwan0 usable without one yet; veth0 ignored;
/// eth9 matched by no rule.
fn world() -> (Config, Observed) {
    let cfg = load(CFG).unwrap();
    let mut obs = Observed::new();
    let now = Millis(0);
    obs.apply(
        &Event::KernelSnapshot(KernelSnapshot {
            links: vec![
                link(2, "wlan0", true),
                link(3, "wwan0", true),
                link(4, "veth0", true),
                link(5, "eth9", false),
            ],
            addresses: vec![addr(2, "10.1.0.2"), addr(3, "10.2.0.2")],
            routes: vec![default_via(2, "10.1.0.1"), default_via(3, "10.2.0.1")],
            rules: vec![],
        }),
        now,
    );
    obs.apply(
        &Event::Capabilities(test_fixtures::caps(&["enabled"], "test kernel")),
        now,
    );
    obs.apply(
        &Event::Endpoints(vec![KernelEndpoint {
            id: 1,
            addr: "10.1.0.2".parse().unwrap(),
            port: None,
            flags: EndpointFlags::SUBFLOW,
            ifindex: Some(2),
        }]),
        now,
    );
    obs.apply(
        &Event::Limits(mptcp_agent_core::Limits {
            subflows: 2,
            add_addr_accepted: 0,
        }),
        now,
    );
    obs.apply(&Event::Mptcpd(None), now);
    obs.apply(&Event::NmGone, now);
    assert!(obs.ready(), "{:?}", obs.waiting_for());
    (cfg, obs)
}

#[test]
fn snapshot_shows_links_endpoints_limits_caps() {
    let (cfg, obs) = world();
    let info = ConfigInfo {
        path: "/etc/mptcp-agent/agent.toml".into(),
        schema_version: 1,
        digest: "fnv1a64:x".into(),
        source: ConfigSource::LastGood,
        last_error: "bad".into(),
        applied_at: 5,
    };
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), info.clone());
    assert!(s.ready);
    assert_eq!(s.mode, "kernel-only");
    let by = |n: &str| s.links.iter().find(|l| l.name == n).unwrap().clone();
    let wlan = by("wlan0");
    assert_eq!(
        (
            wlan.state.as_str(),
            wlan.carrier,
            wlan.rule.as_str(),
            wlan.policy.as_str()
        ),
        ("active", true, "wifi", "subflow")
    );
    assert!(wlan.policy_applied, "{wlan:?}");
    assert!(wlan.detail.contains("10.1.0.2"), "{wlan:?}");
    let wwan = by("wwan0");
    assert_eq!(
        (wwan.state.as_str(), wwan.policy.as_str()),
        ("active", "subflow backup")
    );
    assert!(!wwan.policy_applied, "no endpoint yet: {wwan:?}");
    assert_eq!(by("veth0").state, "ignored");
    assert!(by("veth0").policy_applied);
    let eth = by("eth9");
    assert_eq!((eth.state.as_str(), eth.carrier), ("unmatched", false));
    assert_eq!(s.endpoints.len(), 1);
    let e = &s.endpoints[0];
    assert_eq!(
        (e.id, e.address.as_str(), e.interface.as_str(), e.port),
        (1, "10.1.0.2", "wlan0", 0)
    );
    assert_eq!(e.flags, vec!["subflow".to_string()]);
    assert_eq!(
        s.limits,
        LimitsInfo {
            subflows: 2,
            add_addr_accepted: 0
        }
    );
    assert_eq!(s.caps.generation, "test kernel");
    assert!(s.caps.events && s.caps.set_flags);
    assert_eq!(s.config, info);
}

#[test]
fn snapshot_of_a_down_managed_link_says_why() {
    let (cfg, mut obs) = world();
    obs.apply(&Event::LinkChanged(link(3, "wwan0", false)), Millis(1));
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), ConfigInfo::default());
    let wwan = s.links.iter().find(|l| l.name == "wwan0").unwrap();
    assert!(!wwan.carrier);
    assert_ne!(wwan.state, "active", "{wwan:?}");
    assert!(!wwan.detail.is_empty(), "{wwan:?}");
}

#[test]
fn snapshot_of_a_refused_link_gives_its_kind_and_advice() {
    let (cfg, mut obs) = world();
    obs.apply(&Event::Mptcpd(Some(77)), Millis(1));
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), ConfigInfo::default());
    let wlan = s.links.iter().find(|l| l.name == "wlan0").unwrap();
    assert_eq!(wlan.state, "refused");
    assert!(wlan.detail.contains("pid 77"), "{wlan:?}");
    let r = s.refusals.iter().find(|r| r.interface == "wlan0").unwrap();
    assert_eq!(
        (r.kind.as_str(), r.advice.as_str()),
        ("mptcpd", "systemctl disable --now mptcp.service")
    );
    // Every managed link is refused while mptcpd runs; ignored and unmatched ones are not.
    assert_eq!(s.refusals.len(), 2, "{:?}", s.refusals);
    obs.apply(&Event::Mptcpd(None), Millis(2));
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), ConfigInfo::default());
    assert!(s.refusals.is_empty());
}

#[test]
fn snapshot_shows_excluded_links_and_the_blackhole_detection() {
    let (cfg, mut obs) = world();
    // A WireGuard link a rule would manage by name: excluded, with the reason.
    let mut wg = link(9, "wlan-vpn", true);
    wg.info_kind = Some("wireguard".into());
    obs.apply(&Event::LinkChanged(wg), Millis(1));
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), ConfigInfo::default());
    let l = s.links.iter().find(|l| l.name == "wlan-vpn").unwrap();
    assert_eq!(l.state, "excluded", "{l:?}");
    assert!(
        l.detail.contains("WireGuard") && l.detail.contains("allow_virtual"),
        "{l:?}"
    );
    // Before the first reading, then a kernel without the counter: said, never guessed.
    assert!(!s.blackhole.available);
    assert_eq!(s.blackhole.detail, "");
    let reading = |r: Result<u64, String>| Event::BlackholeCounter {
        reading: r,
        wall_usec: 1_765_000_000_000_000,
    };
    obs.apply(&reading(Err("no counter here".into())), Millis(2));
    let s = Snapshot::build(&cfg, &obs, &BTreeSet::new(), ConfigInfo::default());
    assert!(!s.blackhole.available);
    assert_eq!(s.blackhole.detail, "no counter here");
    // The counter, then a rise with the diagnostic in force.
    obs.apply(&reading(Ok(2)), Millis(3));
    obs.apply(&reading(Ok(3)), Millis(4));
    let diags: BTreeSet<Diagnostic> = [Diagnostic::BlackholeOff { timeout_s: 3600 }].into();
    let s = Snapshot::build(&cfg, &obs, &diags, ConfigInfo::default());
    let b = &s.blackhole;
    assert!(b.available && b.active, "{b:?}");
    assert_eq!((b.count, b.detections), (3, 1));
    assert_eq!(b.last_detected_at, 1_765_000_000_000_000);
    assert!(s
        .diagnostics
        .iter()
        .any(|d| d.contains("net.mptcp.blackhole_timeout = 3600 s")));
}

#[test]
fn endpoint_changes_by_id() {
    let e = |id: u8, a: &str, flags: &[&str]| EndpointInfo {
        id,
        address: a.into(),
        flags: flags.iter().map(|s| s.to_string()).collect(),
        ..EndpointInfo::default()
    };
    let old = vec![
        e(1, "10.1.0.2", &["subflow"]),
        e(2, "10.2.0.2", &["subflow"]),
    ];
    let new = vec![
        e(2, "10.2.0.2", &["subflow", "backup"]),
        e(3, "10.3.0.2", &["subflow"]),
    ];
    let ch: Vec<(&str, u8)> = endpoint_changes(&old, &new)
        .into_iter()
        .map(|(c, e)| (c, e.id))
        .collect();
    assert_eq!(ch, vec![("removed", 1), ("changed", 2), ("added", 3)]);
    assert!(endpoint_changes(&new, &new).is_empty());
}

#[test]
fn admin_is_root_or_group_member() {
    assert!(is_admin(0, ADMIN_GROUP));
    // nobody's primary group is nogroup (Debian); it is in no other admin group.
    assert!(is_admin(65534, "nogroup"));
    assert!(!is_admin(65534, "root"));
    assert!(!is_admin(65534, "no-such-group-mptcp-test"));
    assert!(!is_admin(4_000_000, "nogroup"), "unknown uid");
}
