// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rule 11 and failures: NetworkManager's MPTCP and mptcpd; failed ops retried with backoff.

use super::*;

#[test]
fn networkmanager_mptcp_on_by_default_refuses_the_interface() {
    let mut w = World::new(BASE);
    w.ev(Event::Endpoints(vec![ep(
        5,
        "10.2.0.2",
        SUBFLOW,
        Some(WWAN),
    )]));
    w.nm_present(
        "1.42.4",
        vec![
            nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
            nm_default_flags_device(),
        ],
    );
    let p = w.plan();
    assert_eq!(w.ops(), vec![add(1, "10.1.0.2", WLAN)]);
    let msg = p
        .diagnostics
        .iter()
        .find_map(|d| match d {
            Diagnostic::Refused { interface, reason } if interface == "wwan0" => {
                Some(reason.clone())
            }
            _ => None,
        })
        .expect("refusal for wwan0");
    assert_eq!(msg.kind(), "networkmanager-default");
    let text = msg.to_string();
    assert!(text.contains("NetworkManager 1.42.4"), "{text}");
    assert!(
        text.contains("connection.mptcp-flags=0x22, NetworkManager's built-in default"),
        "{text}"
    );
    assert_eq!(
        msg.advice(),
        "nmcli connection modify uplink-wwan0 connection.mptcp-flags disabled && nmcli device reapply wwan0"
    );
    let long = msg.explanation().join(" ");
    assert!(long.contains("90-mptcp-agent.conf"), "{long}");
    assert!(long.contains("connection.mptcp-flags=0x1"), "{long}");
}

#[test]
fn refusal_kinds_are_typed() {
    use crate::{NmFlagsSource, Refusal};
    let refusal_of = |w: &World, name: &str| {
        w.assess()
            .into_iter()
            .find(|l| l.name == name)
            .and_then(|l| match l.control {
                Control::Refused(r) => Some(r),
                _ => None,
            })
    };
    // Global default from a file.
    let mut w = World::new(BASE);
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/conf.d/80-on.conf".into(),
        "[connection-on]\nconnection.mptcp-flags=0x22\n".into(),
    )]));
    w.nm_present("1.42.4", vec![nm_default_flags_device()]);
    let r = refusal_of(&w, "wwan0").expect("refused");
    assert_eq!(r.kind(), "networkmanager-global");
    assert!(
        matches!(&r, Refusal::NetworkManager { source: NmFlagsSource::Global { file }, flags: 0x22, .. }
            if file.starts_with("/etc/NetworkManager/conf.d/80-on.conf")),
        "{r:?}"
    );
    // Per profile.
    let mut w = World::new(BASE);
    let mut d = nm_default_flags_device();
    d.applied.as_mut().unwrap().mptcp_flags = 0x2;
    w.nm_present("1.42.4", vec![d]);
    let r = refusal_of(&w, "wwan0").expect("refused");
    assert_eq!(r.kind(), "networkmanager-profile");
    // Disabled in the profile: not refused, whatever the global says.
    let mut w = World::new(BASE);
    let mut d = nm_default_flags_device();
    d.applied.as_mut().unwrap().mptcp_flags = 0x1;
    w.nm_present("1.42.4", vec![d]);
    assert_eq!(refusal_of(&w, "wwan0"), None);
    // mptcpd: every link, and only the mptcpd diagnostic is reported.
    let mut w = World::new(BASE);
    w.ev(Event::Mptcpd(Some(42)));
    let r = refusal_of(&w, "wlan0").expect("refused");
    assert_eq!(r, Refusal::Mptcpd { pid: 42 });
    let p = w.plan();
    assert!(!p
        .diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::Refused { .. })));
    assert!(p
        .diagnostics
        .contains(&Diagnostic::MptcpdRunning { pid: 42 }));
}

#[test]
fn networkmanager_mptcp_disabled_globally_is_fine() {
    let mut w = World::new(BASE);
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/conf.d/50-mptcp.conf".into(),
        "[connection-mptcp]\nconnection.mptcp-flags=0x1\n".into(),
    )]));
    w.nm_present("1.42.4", vec![nm_default_flags_device()]);
    assert_eq!(w.settle().len(), 2);
}

#[test]
fn networkmanager_word_disabled_in_conf_is_ignored_like_networkmanager_does() {
    let mut w = World::new(BASE);
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/conf.d/50-mptcp.conf".into(),
        "[connection-mptcp]\nconnection.mptcp-flags=disabled\n".into(),
    )]));
    w.nm_present("1.42.4", vec![nm_default_flags_device()]);
    let p = w.plan();
    let refused = p
        .diagnostics
        .iter()
        .find(|d| matches!(d, Diagnostic::Refused { .. }))
        .unwrap()
        .to_string();
    assert!(
        refused.contains("\"disabled\", which is not a number"),
        "{refused}"
    );
}

#[test]
fn networkmanager_profile_flags_override_global() {
    let mut w = World::new(BASE);
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/NetworkManager.conf".into(),
        "[connection]\nconnection.mptcp-flags=0x1\n".into(),
    )]));
    let mut d = nm_default_flags_device();
    d.applied.as_mut().unwrap().mptcp_flags = 0x22;
    w.nm_present("1.42.4", vec![d]);
    let p = w.plan();
    assert!(p.diagnostics.iter().any(|d| d
        .to_string()
        .contains("set in connection profile 'uplink-wwan0'")));
}

#[test]
fn networkmanager_before_1_40_has_no_mptcp() {
    let mut w = World::new(BASE);
    w.nm_present("1.36.2", vec![nm_default_flags_device()]);
    assert_eq!(w.settle().len(), 2);
}

#[test]
fn mptcpd_running_means_hands_off_endpoints_and_limits() {
    let mut w = World::new("schema_version = 1\n[limits]\nsubflows = 8\n[sysctl]\nadd_addr_timeout = 30\n[[link]]\nflags = [\"subflow\"]\n");
    w.ev(Event::Endpoints(vec![ep(
        1,
        "10.2.0.2",
        SUBFLOW,
        Some(WWAN),
    )]));
    w.ev(Event::Mptcpd(Some(4242)));
    let p = w.plan();
    assert_eq!(
        p.steps.iter().map(|s| s.op.clone()).collect::<Vec<_>>(),
        vec![Op::SetSysctl {
            name: "add_addr_timeout".into(),
            value: "30".into()
        }]
    );
    assert!(p
        .diagnostics
        .contains(&Diagnostic::MptcpdRunning { pid: 4242 }));
    assert!(p.diagnostics.iter().any(|d| d
        .to_string()
        .contains("systemctl disable --now mptcp.service")));
}

// ---------------------------------------------------------------------------------------
// Failures: collected, retried with backoff, not in a loop

#[test]
fn failed_op_is_retried_later_not_at_once() {
    let mut w = World::new(BASE);
    for op in w.all_ops() {
        if matches!(op, Op::ResetNeighbours { .. }) {
            w.ev(Event::OpDone { op, error: None });
        }
    }
    let ops = w.ops();
    w.ev(Event::OpDone {
        op: ops[0].clone(),
        error: Some(OpError::rejected(16, "EBUSY")),
    });
    w.ev(Event::OpDone {
        op: ops[1].clone(),
        error: None,
    });
    let p = w.plan();
    assert!(p.steps.is_empty());
    assert_eq!(p.wake_at, Some(w.now.plus(1000)));
    assert!(p
        .diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::RetryLater { .. })));
    w.advance(1000);
    assert_eq!(
        w.all_ops(),
        vec![
            Op::ResetNeighbours {
                ifindex: WLAN,
                family: Family::V4
            },
            ops[0].clone()
        ]
    );
}

#[test]
fn steps_say_why() {
    let w = World::new(BASE);
    let p = w.plan();
    assert!(p.steps[0]
        .why
        .starts_with("wlan0: back in use; IPv4 neighbour entries"));
    assert_eq!(
        p.steps[0].op.to_string(),
        "neighbour flush ifindex 2 IPv4 nud incomplete,failed"
    );
    let p = Plan {
        steps: p.steps[1..].to_vec(),
        ..p
    };
    assert_eq!(
        p.steps[0].why,
        "wlan0: usable (carrier, address, default route in main)"
    );
    assert_eq!(
        p.steps[0].op.to_string(),
        "endpoint add 10.1.0.2 id 1 subflow ifindex 2"
    );
}

#[test]
fn config_change_is_planned_as_a_diff() {
    let mut w = World::new(BASE);
    w.settle();
    w.cfg = load(
        BACKUP_ON_LOSS
            .replace(
                "flags = [\"subflow\"]\non_carrier_loss",
                "flags = [\"subflow\", \"backup\"]\non_carrier_loss",
            )
            .as_str(),
    )
    .unwrap();
    assert_eq!(
        w.settle(),
        vec![Op::SetEndpointFlags {
            endpoint: ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)),
            flags: SUBFLOW.union(EndpointFlags::BACKUP)
        }]
    );
}
