// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules 5 and 6: per-link policy, virtual and metered links, blackhole, limits and sysctls.

use super::*;

#[test]
fn policy_by_type_and_metered() {
    let cfg = r#"
schema_version = 1
[[link]]
name = "metered"
metered = true
flags = ["subflow", "backup"]
[[link]]
name = "modem"
device_types = ["modem"]
flags = ["subflow", "fullmesh"]
[[link]]
device_types = ["veth"]
manage = false
"#;
    let mut w = World::new(cfg);
    let mut wlan = nm_device("/d/2", "wlan0", nm_state::ACTIVATED);
    wlan.device_type = DeviceType::Wifi;
    wlan.metered = Metered::GuessYes;
    let mut wwan = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    wwan.device_type = DeviceType::Modem;
    w.nm_present("1.36.2", vec![wlan, wwan]);
    assert_eq!(
        w.settle(),
        vec![
            Op::AddEndpoint(ep(
                1,
                "10.1.0.2",
                SUBFLOW.union(EndpointFlags::BACKUP),
                Some(WLAN)
            )),
            Op::AddEndpoint(ep(
                2,
                "10.2.0.2",
                SUBFLOW.union(EndpointFlags::FULLMESH),
                Some(WWAN)
            )),
        ]
    );
    let assessed = crate::assess(&w.cfg, &w.obs);
    assert_eq!(assessed[0].rule.as_deref(), Some("metered"));
    assert_eq!(assessed[1].rule.as_deref(), Some("modem"));
}

#[test]
fn fullmesh_without_kernel_support_is_dropped_with_a_warning() {
    let mut w = World::new("schema_version = 1\n[[link]]\ninterfaces = [\"wwan0\"]\nflags = [\"subflow\", \"fullmesh\"]\n");
    let mut c = caps();
    c.fullmesh = false;
    w.ev(Event::Capabilities(c));
    let p = w.plan();
    assert!(p.diagnostics.contains(&Diagnostic::FullmeshUnsupported {
        interface: "wwan0".into()
    }));
    assert_eq!(w.ops()[0], add(1, "10.2.0.2", WWAN));
}

#[test]
fn laminar_is_never_sent_to_a_kernel_that_does_not_know_it() {
    let cfg = "schema_version = 1\n[[link]]\ninterfaces = [\"wwan0\"]\nflags = [\"subflow\", \"laminar\"]\n";
    // Known (6.18+): sent as configured.
    let mut w = World::new(cfg);
    assert_eq!(
        w.settle(),
        vec![Op::AddEndpoint(ep(
            1,
            "10.2.0.2",
            SUBFLOW.union(EndpointFlags::LAMINAR),
            Some(WWAN)
        ))]
    );
    // Not known: never in an add, a re-add or a flag change; one warning that says why.
    let mut w = World::new(cfg);
    let mut c = caps();
    c.laminar = false;
    c.laminar_probe = "kernel release \"6.12.1\" is too old".into();
    w.ev(Event::Capabilities(c));
    let p = w.plan();
    assert!(p.diagnostics.iter().any(|d| matches!(d,
        Diagnostic::LaminarUnsupported { interface, probe } if interface == "wwan0" && probe.contains("6.12.1"))));
    let all = w.settle();
    assert_eq!(all, vec![add(1, "10.2.0.2", WWAN)]);
    // Carrier flaps, a metered change and a lost subflow: still never the laminar bit.
    w.set_carrier(WWAN, false);
    w.settle();
    w.set_carrier(WWAN, true);
    let ops = w.settle();
    w.subflow_closed(7, "10.2.0.2", 104);
    let ops2 = w.settle();
    for op in ops.iter().chain(&ops2) {
        let flags = match op {
            Op::AddEndpoint(e) | Op::ReaddEndpoint(e) => e.flags,
            Op::SetEndpointFlags { flags, .. } => *flags,
            _ => continue,
        };
        assert!(!flags.contains(EndpointFlags::LAMINAR), "{op:?}");
    }
    assert!(!ops.is_empty() && !ops2.is_empty(), "{ops:?} {ops2:?}");
}

#[test]
fn unmatched_and_ignored_links_are_left_alone() {
    let mut w =
        World::new("schema_version = 1\n[[link]]\ninterfaces = [\"wlan0\"]\nmanage = false\n");
    w.ev(Event::Endpoints(vec![
        ep(9, "10.1.0.2", SUBFLOW, Some(WLAN)),
        ep(8, "10.2.0.2", EndpointFlags::SIGNAL, None),
    ]));
    assert!(w.settle().is_empty());
}

#[test]
fn missing_events_capability_is_reported() {
    let mut w = World::new(BASE);
    let mut c = caps();
    c.events = false;
    w.ev(Event::Capabilities(c));
    assert!(w.plan().diagnostics.contains(&Diagnostic::NoEvents));
}

// ---------------------------------------------------------------------------------------
// Rule 5a: VPNs, tunnels, bridges and container veths never get an endpoint by default

/// A rule that matches everything, as a careless config would write it.
const ANY_LINK: &str = "schema_version = 1\n[[link]]\nname = \"any\"\nflags = [\"subflow\"]\n";

/// A link of `kind` with an address and a main default route.
fn add_uplink_like(w: &mut World, ifindex: u32, name: &str, kind: &str, master: Option<u32>) {
    let mut l = link(ifindex, name);
    l.info_kind = Some(kind.to_string());
    l.master = master;
    w.ev(Event::LinkChanged(l));
    let a = format!("10.{ifindex}.0.2");
    w.ev(Event::AddressAdded(addr(ifindex, &a, 24)));
    w.ev(Event::RouteAdded(default_route(
        ifindex,
        &format!("10.{ifindex}.0.1"),
        TABLE_MAIN,
        900,
    )));
}

#[test]
fn virtual_links_are_excluded_unless_opted_in() {
    let mut w = World::new(ANY_LINK);
    add_uplink_like(&mut w, 10, "wg0", "wireguard", None);
    add_uplink_like(&mut w, 11, "tun0", "tun", None);
    add_uplink_like(&mut w, 12, "docker0", "bridge", None);
    add_uplink_like(&mut w, 13, "vethc0ffee", "veth", Some(12));
    add_uplink_like(&mut w, 14, "gre1", "gre", None);
    // The lab's uplinks are veths without a master: still uplinks. So is a VRF member.
    let mut l = link(WLAN, "wlan0");
    l.info_kind = Some("veth".into());
    w.ev(Event::LinkChanged(l));
    add_uplink_like(&mut w, 15, "vrf-wan", "vrf", None);
    add_uplink_like(&mut w, 16, "eth1", "veth", Some(15));
    let ops = w.settle();
    let added: Vec<String> = ops
        .iter()
        .filter_map(|o| match o {
            Op::AddEndpoint(e) => Some(e.addr.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(added, ["10.1.0.2", "10.2.0.2", "10.16.0.2"], "{ops:#?}");
    let assessed = crate::assess(&w.cfg, &w.obs);
    let control = |name: &str| {
        assessed
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.control.clone())
            .unwrap()
    };
    for (name, why) in [
        ("wg0", "WireGuard tunnel (kernel link kind \"wireguard\")"),
        ("tun0", "tun/tap device (VPN) (kernel link kind \"tun\")"),
        ("docker0", "bridge (kernel link kind \"bridge\")"),
        ("vethc0ffee", "container or VM veth, port of docker0"),
        ("gre1", "GRE tunnel (kernel link kind \"gre\")"),
    ] {
        assert_eq!(control(name), Control::Excluded(why.into()), "{name}");
    }
    // NetworkManager's device type alone also excludes (a tun it created, kind unknown).
    let mut w = World::new(ANY_LINK);
    let mut d = nm_device("/d/2", "wlan0", nm_state::ACTIVATED);
    d.device_type = DeviceType::Wireguard;
    d.applied = None;
    w.nm_present("1.36.2", vec![d]);
    assert!(w
        .settle()
        .iter()
        .all(|o| !matches!(o, Op::AddEndpoint(e) if e.ifindex == Some(WLAN))));

    // The opt-in: the rule that names the VPN manages it.
    let mut w = World::new(
        "schema_version = 1\n[[link]]\ninterfaces = [\"wg*\"]\nallow_virtual = true\nflags = [\"subflow\"]\n",
    );
    add_uplink_like(&mut w, 10, "wg0", "wireguard", None);
    assert_eq!(w.settle(), vec![add(1, "10.10.0.2", 10)]);
}

#[test]
fn excluded_link_loses_an_endpoint_it_had() {
    // An endpoint left on a bridge (by an older config, or by hand on a link the agent
    // owns by rule) goes once the link is seen to be a bridge.
    let mut w = World::new(ANY_LINK);
    add_uplink_like(&mut w, 12, "br0", "dummy", None);
    assert!(w.settle().contains(&add(3, "10.12.0.2", 12)));
    let mut l = w.obs.links[&12].clone();
    l.info_kind = Some("bridge".into());
    w.ev(Event::LinkChanged(l));
    assert!(
        matches!(&w.ops()[..], [Op::DelEndpoint(e)] if e.addr == ip("10.12.0.2")),
        "{:?}",
        w.ops()
    );
}

// ---------------------------------------------------------------------------------------
// Rule 5b: a metered uplink is backup by default

fn metered_world(cfg: &str, metered: Metered) -> World {
    let mut w = World::new(cfg);
    let wlan = nm_device("/d/2", "wlan0", nm_state::ACTIVATED);
    let mut wwan = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    wwan.metered = metered;
    w.nm_present("1.36.2", vec![wlan, wwan]);
    w
}

#[test]
fn metered_uplink_is_backup_by_default_and_follows_networkmanager() {
    for (m, backup) in [
        (Metered::Yes, true),
        (Metered::GuessYes, true),
        (Metered::No, false),
        (Metered::GuessNo, false),
        (Metered::Unknown, false),
    ] {
        let mut w = metered_world(BASE, m);
        let want = if backup {
            SUBFLOW.union(EndpointFlags::BACKUP)
        } else {
            SUBFLOW
        };
        assert_eq!(
            w.settle(),
            vec![
                add(1, "10.1.0.2", WLAN),
                Op::AddEndpoint(ep(2, "10.2.0.2", want, Some(WWAN))),
            ],
            "{m:?}"
        );
    }
    // Set to metered and back on a live endpoint: flags change in place, nothing else.
    let mut w = metered_world(BASE, Metered::No);
    w.settle();
    let mut wwan = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    wwan.metered = Metered::Yes;
    w.ev(Event::NmDevice(wwan.clone()));
    let p = w.plan();
    let ops: Vec<Op> = p.steps.iter().map(|s| s.op.clone()).collect();
    assert_eq!(
        ops,
        vec![Op::SetEndpointFlags {
            endpoint: ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)),
            flags: SUBFLOW.union(EndpointFlags::BACKUP)
        }]
    );
    assert!(p.steps[0].why.contains("metered"), "{}", p.steps[0].why);
    w.settle();
    wwan.metered = Metered::No;
    w.ev(Event::NmDevice(wwan));
    assert_eq!(
        w.ops(),
        vec![Op::SetEndpointFlags {
            endpoint: ep(
                2,
                "10.2.0.2",
                SUBFLOW.union(EndpointFlags::BACKUP),
                Some(WWAN)
            ),
            flags: SUBFLOW
        }]
    );
}

#[test]
fn metered_backup_can_be_turned_off_per_link() {
    let cfg = BASE.replace(
        "interfaces = [\"wwan*\"]\n",
        "interfaces = [\"wwan*\"]\nmetered_backup = false\n",
    );
    assert!(cfg.contains("metered_backup"));
    let mut w = metered_world(&cfg, Metered::Yes);
    assert_eq!(
        w.settle(),
        vec![add(1, "10.1.0.2", WLAN), add(2, "10.2.0.2", WWAN)]
    );
}

// ---------------------------------------------------------------------------------------
// Rule 5c: the kernel's MPTCP blackhole detection is reported while it holds MPTCP off

#[test]
fn blackhole_detection_is_reported_for_its_timeout() {
    let mut w = World::new(BASE);
    w.ev(Event::Sysctls(
        [
            ("enabled".to_string(), "1".to_string()),
            ("blackhole_timeout".to_string(), "60".to_string()),
        ]
        .into(),
    ));
    let reading = |n: u64| Event::BlackholeCounter {
        reading: Ok(n),
        wall_usec: 1,
    };
    let off = Diagnostic::BlackholeOff { timeout_s: 60 };
    w.settle();
    // A count from before the agent started: not reported (the agent cannot tell when).
    w.ev(reading(3));
    assert!(!w.plan().diagnostics.contains(&off));
    w.advance(1000);
    w.ev(reading(4));
    let p = w.plan();
    assert!(p.diagnostics.contains(&off));
    let text = off.to_string();
    assert!(
        text.contains("net.mptcp.blackhole_timeout = 60 s"),
        "{text}"
    );
    assert!(p.wake_at.is_some_and(|t| t <= w.now.plus(60_000)));
    assert!(p.steps.is_empty(), "reported, nothing done: {:?}", p.steps);
    w.advance(59_000);
    assert!(w.plan().diagnostics.contains(&off));
    w.advance(1_000);
    assert!(
        !w.plan().diagnostics.contains(&off),
        "past the timeout: resolved"
    );
    // Kernel without the counter: never reported, whatever the sysctls say.
    let mut w = World::new(BASE);
    w.ev(Event::BlackholeCounter {
        reading: Err("no counter".into()),
        wall_usec: 1,
    });
    assert!(w
        .plan()
        .diagnostics
        .iter()
        .all(|d| !matches!(d, Diagnostic::BlackholeOff { .. })));
    assert_eq!(
        w.obs.blackhole,
        crate::Blackhole::Absent("no counter".into())
    );
}

// ---------------------------------------------------------------------------------------
// Rule 6: limits and sysctls, only those the kernel has

#[test]
fn limits_and_sysctls_follow_the_config() {
    let cfg = r#"
schema_version = 1
[limits]
subflows = 4
[sysctl]
enabled = true
add_addr_timeout = 60
stale_loss_cnt = 4
"#;
    let mut w = World::new(cfg);
    let p = w.plan();
    let ops: Vec<Op> = p.steps.iter().map(|s| s.op.clone()).collect();
    assert_eq!(
        ops,
        vec![
            Op::SetSysctl {
                name: "add_addr_timeout".into(),
                value: "60".into()
            },
            Op::SetLimits(Limits {
                subflows: 4,
                add_addr_accepted: 0
            }),
        ],
        "enabled already 1; add_addr_accepted not configured, kept"
    );
    assert!(p.diagnostics.contains(&Diagnostic::SysctlMissing {
        name: "stale_loss_cnt".into(),
        since: "5.16".into()
    }));
    w.settle();
    assert!(w.ops().is_empty());
}

#[test]
fn too_low_subflow_limit_is_reported() {
    let mut w =
        World::new("schema_version = 1\n[limits]\nsubflows = 0\n[[link]]\nflags = [\"subflow\"]\n");
    w.settle();
    assert!(w.plan().diagnostics.contains(&Diagnostic::LimitTooLow {
        subflows: 0,
        endpoints: 2
    }));
}

#[test]
fn userspace_pm_and_disabled_mptcp_are_reported() {
    let mut w = World::new(BASE);
    w.ev(Event::Sysctls(
        [
            ("enabled".to_string(), "0".to_string()),
            ("pm_type".to_string(), "1".to_string()),
        ]
        .into(),
    ));
    let d = w.plan().diagnostics;
    assert!(d.contains(&Diagnostic::MptcpDisabled));
    assert!(d
        .iter()
        .any(|x| matches!(x, Diagnostic::UserspacePm { .. })));
}
