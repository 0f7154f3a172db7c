// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules 1 and 2: an endpoint while the uplink is usable; carrier loss and carrier back.

use super::*;

#[test]
fn start_adds_an_endpoint_per_uplink() {
    let mut w = World::new(BASE);
    assert_eq!(
        w.settle(),
        vec![add(1, "10.1.0.2", WLAN), add(2, "10.2.0.2", WWAN)]
    );
    assert_eq!(w.ops(), vec![], "converged");
}

#[test]
fn nothing_before_every_input_is_known() {
    let mut w = World::new(BASE);
    w.obs.nm = crate::NmObserved::Unknown;
    assert!(w.plan().steps.is_empty());
    assert_eq!(w.obs.waiting_for(), vec!["NetworkManager presence"]);
    w.ev(Event::NmAppeared {
        version: NmVersion::parse("1.42.4"),
        startup: false,
    });
    assert!(w.plan().steps.is_empty(), "device list not read yet");
    w.ev(Event::NmDevices(vec![]));
    assert_eq!(w.ops().len(), 2);
}

#[test]
fn networkmanager_device_must_be_activated() {
    let mut w = World::new(BASE);
    w.nm_present(
        "1.42.4",
        vec![
            nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
            nm_device("/d/3", "wwan0", 80), // IP_CHECK: address and routes are there already
        ],
    );
    assert_eq!(w.settle(), vec![add(1, "10.1.0.2", WLAN)]);
    w.ev(Event::NmDevice(nm_device("/d/3", "wwan0", 90)));
    assert!(w.ops().is_empty());
    w.ev(Event::NmDevice(nm_device(
        "/d/3",
        "wwan0",
        nm_state::ACTIVATED,
    )));
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
}

#[test]
fn kernel_only_mode_waits_for_the_route() {
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    let p = w.plan();
    assert_eq!(w.ops(), vec![add(1, "10.1.0.2", WLAN)]);
    assert!(p.diagnostics.contains(&Diagnostic::NoRoute {
        interface: "wwan0".into(),
        family: Family::V4
    }));
    w.settle();
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
}

#[test]
fn kernel_only_mode_needs_address_and_carrier() {
    let mut w = World::new(BASE);
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    w.set_carrier(WLAN, false);
    assert!(w.settle().is_empty());
    w.set_carrier(WLAN, true);
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    // The kernel dropped wwan0's IPv4 routes with its last IPv4 address: no route yet.
    assert_eq!(w.settle(), vec![add(1, "10.1.0.2", WLAN)]);
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
}

#[test]
fn devices_networkmanager_does_not_manage_use_kernel_criteria() {
    let mut w = World::new(BASE);
    w.nm_present(
        "1.42.4",
        vec![nm_device("/d/2", "wlan0", nm_state::UNMANAGED)],
    );
    assert_eq!(w.settle().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Rule 2: carrier loss withdraws (or demotes) at once; carrier back restores

#[test]
fn carrier_loss_withdraws_without_waiting_for_networkmanager() {
    let mut w = World::new(BASE);
    w.nm_present(
        "1.42.4",
        vec![
            nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
            nm_device("/d/3", "wwan0", nm_state::ACTIVATED),
        ],
    );
    w.settle();
    // NetworkManager stays ACTIVATED for carrier-wait-timeout; the kernel says no carrier.
    w.set_carrier(WWAN, false);
    assert_eq!(
        w.settle(),
        vec![Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
    w.set_carrier(WWAN, true);
    assert_eq!(
        w.settle(),
        vec![add(2, "10.2.0.2", WWAN)],
        "same address, same id"
    );
}

// ---------------------------------------------------------------------------------------
// Carrier back: the join is not held by the outage's neighbour entries, and NetworkManager's
// re-activation does not make the agent add, delete and add again

#[test]
fn carrier_back_resets_neighbours_before_the_endpoint() {
    let mut w = World::new(BASE);
    w.settle();
    w.set_carrier(WWAN, false);
    let withdrawn = w.all_ops();
    assert_eq!(
        withdrawn,
        vec![Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))],
        "no reset on the way down"
    );
    w.settle();
    w.set_carrier(WWAN, true);
    // Only wwan0's IPv4 entries, and before the add whose join they would hold up.
    assert_eq!(
        w.all_ops(),
        vec![
            Op::ResetNeighbours {
                ifindex: WWAN,
                family: Family::V4
            },
            add(2, "10.2.0.2", WWAN)
        ]
    );
    w.settle();
    assert!(w.all_ops().is_empty(), "once per transition");
}

#[test]
fn carrier_back_resets_neighbours_before_a_demoted_endpoint_is_restored() {
    let mut w = World::new(BACKUP_ON_LOSS);
    w.settle();
    w.set_carrier(WWAN, false);
    w.settle();
    w.set_carrier(WWAN, true);
    let ops = w.all_ops();
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(
        ops[0],
        Op::ResetNeighbours {
            ifindex: WWAN,
            family: Family::V4
        }
    );
    assert!(matches!(ops[1], Op::SetEndpointFlags { .. }), "{ops:?}");
}

/// What the agent does to wwan0's endpoint over a sequence: every add and delete in order.
fn endpoint_changes(ops: &[Op]) -> Vec<&'static str> {
    ops.iter()
        .filter_map(|op| match op {
            Op::AddEndpoint(e) if e.ifindex == Some(WWAN) => Some("add"),
            Op::DelEndpoint(e) if e.ifindex == Some(WWAN) => Some("delete"),
            Op::ReaddEndpoint(e) if e.ifindex == Some(WWAN) => Some("re-add"),
            _ => None,
        })
        .collect()
}

fn nm_world() -> World {
    let mut w = World::new(BASE);
    w.nm_present(
        "1.42.4",
        vec![
            nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
            nm_device("/d/3", "wwan0", nm_state::ACTIVATED),
        ],
    );
    w.settle();
    w
}

fn wwan_state(w: &mut World, state: u32) -> Vec<Op> {
    w.ev(Event::NmDevice(nm_device("/d/3", "wwan0", state)));
    w.settle()
}

/// NetworkManager's carrier-wait ran out during the cut: it took the addresses and routes
/// down, and on carrier back it activates the device again. Its addresses and routes come
/// back before its D-Bus reports do, so for a moment the kernel looks usable while the last
/// reported state is the old ACTIVATED. One add, on the new activation; nothing in between.
#[test]
fn cut_longer_than_carrier_wait_adds_once_on_the_new_activation() {
    let mut w = nm_world();
    let mut ops = Vec::new();
    w.set_carrier(WWAN, false);
    ops.extend(w.settle());
    w.advance(6_000);
    // Carrier-wait over: NetworkManager deconfigures; its UNAVAILABLE report is late.
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    ops.extend(w.settle());
    w.advance(500);
    // Carrier back; NetworkManager configures the device again, reports still lagging.
    w.set_carrier(WWAN, true);
    ops.extend(w.settle());
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert!(w.settle().is_empty(), "stale ACTIVATED must not count");
    // The reports arrive, possibly not all of them (each is a fresh read of the state).
    for state in [nm_state::UNAVAILABLE, 70, 80, nm_state::SECONDARIES] {
        ops.extend(wwan_state(&mut w, state));
        assert_eq!(endpoint_changes(&ops), vec!["delete"], "at state {state}");
    }
    ops.extend(wwan_state(&mut w, nm_state::ACTIVATED));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
    assert!(w.obs.nm_deconfigured.is_empty());
}

/// wwan0 as the adapter reads it: NetworkManager has an applied connection (the profile,
/// with its MPTCP flags) from PREPARE to DEACTIVATING only; its profile knows the gateway.
fn wwan_report(state: u32, mptcp_flags: u32) -> NmDevice {
    let mut d = nm_device("/d/3", "wwan0", state);
    d.applied = (nm_state::PREPARE..=nm_state::DEACTIVATING)
        .contains(&state)
        .then(|| AppliedProfile {
            id: "uplink-wwan0".into(),
            mptcp_flags,
        });
    d.gateway4 = Some("10.2.0.1".parse().unwrap());
    d
}

fn report(w: &mut World, state: u32, mptcp_flags: u32) -> Vec<Op> {
    w.ev(Event::NmDevice(wwan_report(state, mptcp_flags)));
    w.settle()
}

/// Reports of wwan0 in these states, one after the other.
fn reports(w: &mut World, states: &[u32], mptcp_flags: u32) -> Vec<Op> {
    let mut ops = Vec::new();
    for state in states {
        ops.extend(report(w, *state, mptcp_flags));
    }
    ops
}

/// The lab's NetworkManager: its own MPTCP off in its global config, so a device without an
/// applied connection is not refused.
fn nm_world_mptcp_off() -> World {
    let mut w = nm_world();
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/conf.d/50-mptcp.conf".into(),
        "[connection-mptcp]\nconnection.mptcp-flags=0x1\n".into(),
    )]));
    assert!(w.settle().is_empty());
    w
}

/// NetworkManager commits wwan0's address and default route.
fn wwan_commit(w: &mut World) {
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
}

/// NetworkManager takes wwan0's address and default route down.
fn wwan_deconfigure(w: &mut World) {
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
}

/// `nmcli connection down`, then `up`, whose commit reaches the agent before any report of
/// the activation (D-Bus lags the kernel's messages).
fn connection_down_then_commit(w: &mut World, mptcp_flags: u32) -> Vec<Op> {
    let mut ops = report(w, nm_state::DEACTIVATING, mptcp_flags);
    wwan_deconfigure(w);
    ops.extend(report(w, nm_state::DISCONNECTED, mptcp_flags));
    wwan_commit(w);
    ops.extend(w.settle());
    ops
}

/// The same cut as NetworkManager reports it when the agent keeps up: UNAVAILABLE during
/// the cut (within milliseconds of its deconfiguration, seconds before carrier back), then
/// DISCONNECTED and the activation. The address and route its activation commits get the
/// endpoint at once, whether or not the agent has read a report of the activation yet (the
/// profile is the one applied last): that commit is where NetworkManager's own MPTCP adds
/// its endpoint, and its reports (D-Bus, read after the kernel's messages; ACTIVATED 3-15
/// ms after the commit in the lab, NetworkManager 1.42) change nothing.
#[test]
fn cut_longer_than_carrier_wait_adds_on_networkmanagers_commit() {
    for prepare_read in [true, false] {
        let mut w = nm_world_mptcp_off();
        w.set_carrier(WWAN, false);
        let mut ops = w.settle();
        w.advance(6_000);
        wwan_deconfigure(&mut w);
        ops.extend(report(&mut w, nm_state::UNAVAILABLE, 0x1));
        w.advance(1_500);
        w.set_carrier(WWAN, true);
        ops.extend(report(&mut w, nm_state::DISCONNECTED, 0x1));
        if prepare_read {
            ops.extend(report(&mut w, nm_state::PREPARE, 0x1));
        }
        assert_eq!(endpoint_changes(&ops), vec!["delete"]);
        w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
        // NetworkManager's route follows its address: no policy route for the moment between.
        assert_eq!(w.settle(), vec![], "no route yet");
        w.ev(Event::RouteAdded(default_route(
            WWAN, "10.2.0.1", TABLE_MAIN, 700,
        )));
        ops.extend(w.settle());
        assert_eq!(
            endpoint_changes(&ops),
            vec!["delete", "add"],
            "added on the commit (PREPARE read before it: {prepare_read})"
        );
        ops.extend(reports(
            &mut w,
            &[70, 80, nm_state::SECONDARIES, nm_state::ACTIVATED],
            0x1,
        ));
        assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
        assert!(w.obs.nm_committed.is_empty(), "ACTIVATED clears it");
    }
}

/// `nmcli connection down` / `up`: NetworkManager deactivates the device (its addresses and
/// routes go) and activates it again; the endpoint returns with the new activation's
/// commit, not with its ACTIVATED report. An address NetworkManager's report of a
/// deactivation (or failure) does not make it its next activation's.
#[test]
fn connection_down_up_adds_on_the_new_activations_commit() {
    let mut w = nm_world_mptcp_off();
    let mut ops = report(&mut w, nm_state::DEACTIVATING, 0x1);
    wwan_deconfigure(&mut w);
    assert_eq!(endpoint_changes(&ops), vec!["delete"]);
    // Re-announced while DEACTIVATING: not the next activation's.
    wwan_commit(&mut w);
    ops.extend(report(&mut w, nm_state::DISCONNECTED, 0x1));
    assert_eq!(endpoint_changes(&ops), vec!["delete"]);
    assert!(w.obs.nm_committed.is_empty());
    wwan_deconfigure(&mut w);
    // `up`: PREPARE, read before the commit, names the profile; the commit adds.
    ops.extend(report(&mut w, nm_state::PREPARE, 0x1));
    wwan_commit(&mut w);
    ops.extend(w.settle());
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
    ops.extend(reports(&mut w, &[70, 80, nm_state::ACTIVATED], 0x1));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
}

/// `nmcli connection down` / `up` where the commit reaches the agent before any report of
/// the activation (NetworkManager runs it from DISCONNECTED to the commit in one go and
/// answers reads after it): the device still reads DISCONNECTED, without a profile. The
/// profile NetworkManager applied last decides, here one that turns its MPTCP off
/// (`connection.mptcp-flags` disabled, the agent's own advice) under its built-in default,
/// which would refuse the device: the endpoint comes with the commit, once.
#[test]
fn commit_before_any_report_counts_with_the_profile_applied_last() {
    let mut w = nm_world();
    let mut ops = connection_down_then_commit(&mut w, 0x1);
    assert_eq!(
        endpoint_changes(&ops),
        vec!["delete", "add"],
        "on the commit"
    );
    ops.extend(reports(
        &mut w,
        &[70, 80, nm_state::SECONDARIES, nm_state::ACTIVATED],
        0x1,
    ));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
}

/// As above, but the profile applied last leaves MPTCP to NetworkManager (its flags 0x22;
/// the global config says 0x1): no endpoint at the commit, none after.
#[test]
fn commit_of_a_profile_that_leaves_mptcp_to_networkmanager_gets_no_endpoint() {
    let mut w = nm_world_mptcp_off();
    // `nmcli connection modify ... mptcp-flags 0x22` and a reapply: refused from now on.
    let before = endpoint_changes(&report(&mut w, nm_state::ACTIVATED, 0x22)).len();
    let ops = connection_down_then_commit(&mut w, 0x22);
    assert!(!endpoint_changes(&ops).contains(&"add"), "{ops:?}");
    let ops = reports(&mut w, &[70, 80, nm_state::ACTIVATED], 0x22);
    assert!(!endpoint_changes(&ops).contains(&"add"), "{ops:?}");
    assert!(before <= 1);
    assert!(matches!(
        w.assess()
            .iter()
            .find(|l| l.name == "wwan0")
            .map(|l| &l.control),
        Some(Control::Refused(_))
    ));
}

/// A device the agent has never seen with a profile (NetworkManager's built-in default
/// would refuse it): its commit waits for the report that names the profile.
#[test]
fn commit_without_any_known_profile_waits_for_the_report() {
    let mut w = World::new(BASE);
    let mut down = wwan_report(nm_state::DISCONNECTED, 0x1);
    down.gateway4 = None;
    w.nm_present(
        "1.42.4",
        vec![nm_device("/d/2", "wlan0", nm_state::ACTIVATED), down],
    );
    wwan_deconfigure(&mut w);
    let mut ops = w.settle();
    wwan_commit(&mut w);
    ops.extend(w.settle());
    assert!(endpoint_changes(&ops).is_empty(), "profile not known yet");
    ops.extend(report(&mut w, 70, 0x1));
    assert_eq!(endpoint_changes(&ops), vec!["add"], "IP_CONFIG names it");
}

/// As above, but the first report the agent reads is IP_CHECK (NetworkManager went through
/// UNAVAILABLE, DISCONNECTED, PREPARE ... while the agent read nothing).
#[test]
fn cut_longer_than_carrier_wait_with_reports_skipped() {
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    let mut ops = w.settle();
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    w.set_carrier(WWAN, true);
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    ops.extend(w.settle());
    ops.extend(wwan_state(&mut w, 80));
    ops.extend(wwan_state(&mut w, nm_state::ACTIVATED));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
}

/// A cut shorter than carrier-wait: NetworkManager stays ACTIVATED, the agent adds at once.
/// Should NetworkManager then activate the device again anyway (the cut ended just as its
/// carrier-wait did, or `nmcli device reapply`) while carrier, address and route stay, the
/// endpoint stays through PREPARE ... SECONDARIES.
#[test]
fn reactivation_keeps_the_endpoint_while_carrier_address_and_route_stay() {
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    let mut ops = w.settle();
    w.advance(1_000);
    w.set_carrier(WWAN, true);
    ops.extend(w.settle());
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
    for state in [40, 50, 70, 80, 90, nm_state::ACTIVATED] {
        ops.extend(wwan_state(&mut w, state));
    }
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);
    // Activating does not add an endpoint that is not there, and a deactivation still
    // withdraws it.
    ops.extend(wwan_state(&mut w, nm_state::DEACTIVATING));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add", "delete"]);
    ops.extend(wwan_state(&mut w, 70));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add", "delete"]);
    ops.extend(wwan_state(&mut w, nm_state::ACTIVATED));
    assert_eq!(
        endpoint_changes(&ops),
        vec!["delete", "add", "delete", "add"]
    );
}

/// The carrier comes back just as NetworkManager's carrier-wait (6 s by default) runs out:
/// NetworkManager may keep the device, or take it down and activate it again, and an
/// endpoint added at once would then be deleted with the address and added again (or its
/// join would fail with the address gone). The agent waits for NetworkManager's report.
#[test]
fn carrier_back_at_carrier_wait_waits_for_networkmanager() {
    use crate::state::{NM_VERDICT_HOLD_MS, NM_VERDICT_NEAR_MS};
    let cut = crate::nmconf::CARRIER_WAIT_DEFAULT_MS - NM_VERDICT_NEAR_MS;
    // NetworkManager kept the device: its report (carrier in its interface flags) ends
    // the wait.
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    let mut ops = w.settle();
    w.advance(cut);
    w.set_carrier(WWAN, true);
    assert!(w.settle().is_empty());
    assert_eq!(w.plan().wake_at, Some(w.now.plus(NM_VERDICT_HOLD_MS)));
    ops.extend(wwan_state(&mut w, nm_state::ACTIVATED));
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);

    // NetworkManager took it down and activates it again: one add, on ACTIVATED.
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    let mut ops = w.settle();
    w.advance(cut + NM_VERDICT_NEAR_MS);
    w.set_carrier(WWAN, true);
    ops.extend(w.settle());
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    ops.extend(w.settle());
    for state in [nm_state::DISCONNECTED, 70, 80, nm_state::ACTIVATED] {
        ops.extend(wwan_state(&mut w, state));
    }
    assert_eq!(endpoint_changes(&ops), vec!["delete", "add"]);

    // No report at all: the kernel's view decides after NM_VERDICT_HOLD_MS.
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    w.settle();
    w.advance(cut);
    w.set_carrier(WWAN, true);
    assert!(w.settle().is_empty());
    w.advance(NM_VERDICT_HOLD_MS);
    w.ev(Event::Tick);
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);

    // A cut well inside carrier-wait: no wait.
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    w.settle();
    w.advance(cut - 1);
    w.set_carrier(WWAN, true);
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
}

/// NetworkManager never reports the device again: after NM_CATCH_UP_MS the kernel's view
/// decides, and plan() asks to be woken for it.
#[test]
fn deconfigured_device_waits_for_networkmanager_only_so_long() {
    let mut w = nm_world();
    w.set_carrier(WWAN, false);
    w.settle();
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    let removed_at = w.now;
    w.set_carrier(WWAN, true);
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert!(w.settle().is_empty());
    assert_eq!(
        w.plan().wake_at,
        Some(removed_at.plus(crate::state::NM_CATCH_UP_MS))
    );
    w.advance(crate::state::NM_CATCH_UP_MS);
    w.ev(Event::Tick);
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
}

/// An address that goes while the carrier is there (DHCP, by hand) is not NetworkManager's
/// carrier-wait: the new address gets its endpoint at once.
#[test]
fn address_change_with_carrier_is_not_a_deconfiguration() {
    let mut w = nm_world();
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.3", 24)));
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    assert!(w.obs.nm_deconfigured.is_empty());
    assert_eq!(
        endpoint_changes(&w.settle()),
        vec!["delete", "add"],
        "old address out, new one in"
    );
}

/// Admin up: the kernel reports up and lower-up at once and the operational state
/// ("down" until then) up to a second later; the endpoint comes back with the first.
#[test]
fn admin_up_counts_before_the_operational_state_catches_up() {
    let mut w = World::new(BASE);
    w.settle();
    let mut l = w.obs.links[&WWAN].clone();
    l.up = false;
    l.lower_up = false;
    l.oper = OperState::Down;
    w.ev(Event::LinkChanged(l.clone()));
    assert_eq!(endpoint_changes(&w.settle()), vec!["delete"]);
    l.up = true;
    l.lower_up = true;
    w.ev(Event::LinkChanged(l.clone()));
    // Down took the IPv4 routes; NetworkManager puts the default route back.
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
    // Lower layer down or dormant (Wi-Fi authenticating) still counts as no carrier.
    for oper in [OperState::LowerLayerDown, OperState::Dormant] {
        l.oper = oper;
        w.ev(Event::LinkChanged(l.clone()));
        assert_eq!(endpoint_changes(&w.settle()), vec!["delete"], "{oper:?}");
        l.oper = OperState::Up;
        w.ev(Event::LinkChanged(l.clone()));
        w.settle();
    }
}

#[test]
fn admin_down_withdraws() {
    let mut w = World::new(BASE);
    w.settle();
    let mut l = w.obs.links[&WWAN].clone();
    l.up = false;
    l.lower_up = false;
    w.ev(Event::LinkChanged(l));
    let p = w.plan();
    assert_eq!(p.steps.len(), 1);
    assert!(
        p.steps[0].why.contains("link is down"),
        "{}",
        p.steps[0].why
    );
}

#[test]
fn carrier_loss_demotes_to_backup_where_configured() {
    let mut w = World::new(BACKUP_ON_LOSS);
    w.settle();
    w.set_carrier(WWAN, false);
    let backup = SUBFLOW.union(EndpointFlags::BACKUP);
    assert_eq!(
        w.settle(),
        vec![Op::SetEndpointFlags {
            endpoint: ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)),
            flags: backup
        }]
    );
    w.set_carrier(WWAN, true);
    assert_eq!(
        w.settle(),
        vec![Op::SetEndpointFlags {
            endpoint: ep(2, "10.2.0.2", backup, Some(WWAN)),
            flags: SUBFLOW
        }]
    );
}

#[test]
fn demotion_falls_back_to_withdraw_without_set_flags() {
    let mut w = World::new(BACKUP_ON_LOSS);
    let mut c = caps();
    c.set_flags = false;
    w.ev(Event::Capabilities(c));
    w.settle();
    w.set_carrier(WWAN, false);
    let p = w.plan();
    assert!(p.diagnostics.contains(&Diagnostic::NoSetFlags {
        interface: "wwan0".into()
    }));
    assert_eq!(
        p.steps[0].op,
        Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))
    );
}

#[test]
fn demoted_endpoint_with_lost_subflow_is_readded_on_return() {
    let mut w = World::new(BACKUP_ON_LOSS);
    w.settle();
    w.set_carrier(WWAN, false);
    w.settle();
    // The subflow timed out during the outage.
    w.subflow_closed(7, "10.2.0.2", 110);
    assert!(w.ops().is_empty(), "link not usable: no re-add");
    w.set_carrier(WWAN, true);
    assert_eq!(
        w.settle(),
        vec![Op::ReaddEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
}
