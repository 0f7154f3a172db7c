// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules 7 to 10: policy routing, IPv6, start-up reconciliation, kernel-only mode.

use super::*;

#[test]
fn uplink_without_main_default_gets_table_and_rule_then_endpoint() {
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    let mut wwan = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    wwan.gateway4 = Some("10.2.0.1".parse().unwrap());
    w.nm_present(
        "1.42.4",
        vec![nm_device("/d/2", "wlan0", nm_state::ACTIVATED), wwan],
    );
    let table = 1000 + WWAN;
    let first: Vec<Op> = w.ops();
    let default_r = Route {
        table,
        dst: ip("0.0.0.0"),
        prefix_len: 0,
        gateway: Some(ip("10.2.0.1")),
        ifindex: Some(WWAN),
        protocol: 77,
        metric: 0,
        scope: 0,
        prefsrc: None,
    };
    let subnet_r = Route {
        table,
        dst: ip("10.2.0.0"),
        prefix_len: 24,
        gateway: None,
        ifindex: Some(WWAN),
        protocol: 77,
        metric: 0,
        scope: 253,
        prefsrc: Some(ip("10.2.0.2")),
    };
    let rule = Rule {
        family: Family::V4,
        priority: 1000,
        src: Some((ip("10.2.0.2"), 32)),
        table,
        protocol: 77,
    };
    assert_eq!(
        first,
        vec![
            Op::AddRoute(subnet_r.clone()),
            Op::AddRoute(default_r.clone()),
            Op::AddRule(rule.clone()),
            add(1, "10.1.0.2", WLAN)
        ],
        "the endpoint waits until its routes exist"
    );
    let all = w.settle();
    assert_eq!(all.last(), Some(&add(2, "10.2.0.2", WWAN)));
    // Carrier loss: the endpoint goes, and its table and rule with it.
    w.set_carrier(WWAN, false);
    assert_eq!(
        w.settle(),
        vec![
            Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN))),
            Op::DelRoute(subnet_r),
            Op::DelRoute(default_r),
            Op::DelRule(rule)
        ]
    );
}

#[test]
fn kernel_only_policy_routing_from_a_default_route_in_another_table() {
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    w.ev(Event::RouteAdded(default_route(WWAN, "10.2.0.1", 200, 0)));
    let ops = w.settle();
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::AddRule(r) if r.table == 1003)),
        "{ops:?}"
    );
    assert_eq!(ops.last(), Some(&add(2, "10.2.0.2", WWAN)));
}

#[test]
fn configured_gateway_serves_a_static_never_default_uplink() {
    // NetworkManager drops ipv4.gateway from a never-default profile: nothing else knows it.
    let cfg = "schema_version = 1\n[[link]]\ninterfaces = [\"wwan0\"]\nflags = [\"subflow\"]\ngateway4 = \"10.2.0.1\"\n";
    let mut w = World::new(cfg);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    let ops = w.settle();
    assert!(
        ops.iter().any(|o| matches!(o, Op::AddRoute(r) if r.is_default() && r.gateway == Some(ip("10.2.0.1")) && r.table == 1003)),
        "{ops:?}"
    );
    assert_eq!(ops.last(), Some(&add(1, "10.2.0.2", WWAN)));
}

#[test]
fn point_to_point_uplink_needs_no_gateway() {
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    let mut l = w.obs.links[&WWAN].clone();
    l.point_to_point = true;
    w.ev(Event::LinkChanged(l));
    let ops = w.settle();
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::AddRoute(r) if r.is_default() && r.gateway.is_none())),
        "{ops:?}"
    );
    assert_eq!(ops.last(), Some(&add(2, "10.2.0.2", WWAN)));
}

#[test]
fn agent_restart_adopts_its_policy_routes() {
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    w.ev(Event::RouteAdded(default_route(WWAN, "10.2.0.1", 200, 0)));
    w.settle();
    // Restart: a new state from the kernel as it is now, without the table-200 route
    // (say, NetworkManager moved it away): our own table still has the gateway.
    let mut fresh = World::new(BASE);
    fresh.obs.routes = w
        .obs
        .routes
        .iter()
        .filter(|r| r.table != 200 && !(r.table == TABLE_MAIN && r.ifindex == Some(WWAN)))
        .cloned()
        .collect();
    fresh.obs.rules = w.obs.rules.clone();
    fresh.ev(Event::Endpoints(w.endpoints()));
    assert_eq!(fresh.ops(), vec![]);
}

// ---------------------------------------------------------------------------------------
// Rule 8: IPv4 and IPv6, skipping link-local, temporary, deprecated, loopback

#[test]
fn ipv6_global_address_gets_an_endpoint_others_do_not() {
    let mut w = World::new(BASE);
    let mut ll = addr(WWAN, "fe80::1", 64);
    ll.scope = 253;
    let mut tmp = addr(WWAN, "2001:db8:2::99", 64);
    tmp.flags = AddrFlags(AddrFlags::TEMPORARY);
    let mut dep = addr(WWAN, "2001:db8:2::98", 64);
    dep.flags = AddrFlags(AddrFlags::DEPRECATED);
    let mut tent = addr(WWAN, "2001:db8:2::97", 64);
    tent.flags = AddrFlags(AddrFlags::TENTATIVE);
    for a in [ll, tmp, dep, tent] {
        w.ev(Event::AddressAdded(a));
    }
    w.ev(Event::RouteAdded(default_route(
        WWAN, "fe80::1", TABLE_MAIN, 700,
    )));
    w.ev(Event::AddressAdded(addr(1, "::1", 128)));
    assert_eq!(
        w.settle(),
        vec![add(1, "10.1.0.2", WLAN), add(2, "10.2.0.2", WWAN)],
        "no eligible v6 yet"
    );
    w.ev(Event::AddressAdded(addr(WWAN, "2001:db8:2::2", 64)));
    assert_eq!(w.settle(), vec![add(3, "2001:db8:2::2", WWAN)]);
}

#[test]
fn ipv6_can_be_switched_off_per_rule() {
    let mut w = World::new("schema_version = 1\n[[link]]\nflags = [\"subflow\"]\nipv6 = false\n");
    w.ev(Event::AddressAdded(addr(WWAN, "2001:db8:2::2", 64)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "fe80::1", TABLE_MAIN, 700,
    )));
    assert_eq!(w.settle().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Rule 9: startup reconciliation; restarts leave healthy subflows alone

#[test]
fn restart_adopts_right_endpoints_whatever_their_ids() {
    let mut w = World::new(BASE);
    w.ev(Event::Endpoints(vec![
        ep(7, "10.1.0.2", SUBFLOW, Some(WLAN)),
        ep(9, "10.2.0.2", SUBFLOW, Some(WWAN)),
    ]));
    assert!(w.settle().is_empty());
    // And the ids stick across a flap.
    w.set_carrier(WWAN, false);
    w.settle();
    w.set_carrier(WWAN, true);
    assert_eq!(w.settle(), vec![add(9, "10.2.0.2", WWAN)]);
}

#[test]
fn restart_removes_stale_owned_endpoints_and_fixes_wrong_ones() {
    let mut w = World::new(BASE);
    w.ev(Event::Endpoints(vec![
        // NetworkManager's leftover from an older address on a managed link
        ep(1, "10.2.0.77", SUBFLOW, Some(WWAN)),
        // right address, no dev: subflows would leave by the wrong interface
        ep(2, "10.1.0.2", SUBFLOW, None),
        // right address and dev, backup where the policy says not
        ep(
            3,
            "10.2.0.2",
            SUBFLOW.union(EndpointFlags::BACKUP),
            Some(WWAN),
        ),
        // someone else's on an unmanaged interface
        ep(4, "192.168.7.2", EndpointFlags::SIGNAL, Some(42)),
    ]));
    let ops = w.settle();
    assert_eq!(
        ops,
        vec![
            Op::DelEndpoint(ep(1, "10.2.0.77", SUBFLOW, Some(WWAN))),
            Op::DelEndpoint(ep(2, "10.1.0.2", SUBFLOW, None)),
            Op::SetEndpointFlags {
                endpoint: ep(
                    3,
                    "10.2.0.2",
                    SUBFLOW.union(EndpointFlags::BACKUP),
                    Some(WWAN)
                ),
                flags: SUBFLOW
            },
            add(2, "10.1.0.2", WLAN),
        ]
    );
    assert!(
        w.endpoints().iter().any(|e| e.id == 4),
        "foreign endpoint untouched"
    );
}

#[test]
fn wrong_flags_without_set_flags_means_readd() {
    let mut w = World::new(BASE);
    let mut c = caps();
    c.set_flags = false;
    w.ev(Event::Capabilities(c));
    w.ev(Event::Endpoints(vec![
        ep(1, "10.1.0.2", SUBFLOW, Some(WLAN)),
        ep(2, "10.2.0.2", EndpointFlags::SIGNAL, Some(WWAN)),
    ]));
    assert_eq!(
        w.settle(),
        vec![Op::ReaddEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
}

#[test]
fn networkmanager_restart_changes_nothing() {
    let mut w = World::new(BASE);
    let devices = vec![
        nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
        nm_device("/d/3", "wwan0", nm_state::ACTIVATED),
    ];
    w.nm_present("1.42.4", devices.clone());
    w.settle();
    w.ev(Event::NmGone);
    assert!(w.ops().is_empty(), "kernel-only criteria still hold");
    // Back, still starting up, devices not yet re-assumed.
    w.ev(Event::NmAppeared {
        version: NmVersion::parse("1.42.4"),
        startup: true,
    });
    w.ev(Event::NmDevices(vec![
        nm_device("/d/2", "wlan0", nm_state::DISCONNECTED),
        nm_device("/d/3", "wwan0", 20),
    ]));
    assert!(
        w.ops().is_empty(),
        "no decisions on NetworkManager's state while it starts"
    );
    w.ev(Event::NmDevice(devices[0].clone()));
    w.ev(Event::NmDevice(devices[1].clone()));
    w.ev(Event::NmStartup(false));
    assert!(w.ops().is_empty());
}

// ---------------------------------------------------------------------------------------
// Rule 10: kernel-only mode (see also kernel_only_mode_* above)

#[test]
fn follow_false_ignores_networkmanager() {
    let mut w = World::new(
        "schema_version = 1\n[networkmanager]\nfollow = false\n[[link]]\nflags = [\"subflow\"]\n",
    );
    w.nm_present(
        "1.42.4",
        vec![nm_device("/d/3", "wwan0", nm_state::DISCONNECTED)],
    );
    assert_eq!(w.settle().len(), 2);
}
