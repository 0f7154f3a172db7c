// SPDX-License-Identifier: MIT OR Apache-2.0
//! Rules 3 and 4: lost subflows re-added with bounded backoff; address changes.

use super::*;

/// Every link managed, with the shipped backoff (1 s doubling to 30 s).
const SHIPPED_BACKOFF: &str = "schema_version = 1\n[reestablish]\ninitial_delay_ms = 1000\nmax_delay_ms = 30000\n[[link]]\nflags = [\"subflow\"]\n";
/// Every link managed, with a short backoff (100 ms doubling to 400 ms).
const FAST_BACKOFF: &str = "schema_version = 1\n[reestablish]\ninitial_delay_ms = 100\nmax_delay_ms = 400\n[[link]]\nflags = [\"subflow\"]\n";

#[test]
fn lost_subflow_readds_only_its_endpoint() {
    let mut w = World::new(BASE);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 104); // ECONNRESET, e.g. ss -K on the server
    let p = w.plan();
    assert_eq!(p.steps.len(), 1);
    assert_eq!(
        p.steps[0].op,
        Op::ReaddEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))
    );
    assert!(p.steps[0].why.contains("error 104"), "{}", p.steps[0].why);
    w.settle();
    assert!(w.ops().is_empty());
}

#[test]
fn close_without_error_is_a_loss_after_a_moment() {
    let mut w = World::new(BASE);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 0);
    let p = w.plan();
    assert!(
        p.steps.is_empty(),
        "not at once: it may be the agent's own delete"
    );
    assert_eq!(p.wake_at, Some(w.now.plus(500)));
    w.advance(500);
    let p = w.plan();
    assert_eq!(p.steps.len(), 1);
    assert!(
        p.steps[0].why.contains("closed without error"),
        "{}",
        p.steps[0].why
    );
}

#[test]
fn closes_caused_by_a_readd_do_not_cascade() {
    let mut w = World::new(BASE);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 104);
    assert_eq!(w.settle().len(), 1, "one re-add");
    // The delete half closed connection 8's healthy subflow; the add half brings both back.
    w.subflow_closed(8, "10.2.0.2", 0);
    w.advance(20);
    w.subflow_established(7, "10.2.0.2");
    w.subflow_established(8, "10.2.0.2");
    w.advance(2_000);
    assert!(w.ops().is_empty());
}

#[test]
fn subflow_closed_by_the_peer_after_a_flap_is_readded() {
    // Seen in the lab: the peer acts on a REMOVE_ADDR from before the flap and closes the
    // new subflow (no error) right after it was established.
    let mut w = World::new(BASE);
    w.settle();
    w.set_carrier(WWAN, false);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 0); // from the agent's delete
    w.set_carrier(WWAN, true);
    assert_eq!(w.settle(), vec![add(2, "10.2.0.2", WWAN)]);
    w.advance(15);
    w.subflow_established(7, "10.2.0.2");
    w.advance(2);
    w.subflow_closed(7, "10.2.0.2", 0); // the peer's doing
    assert!(w.ops().is_empty());
    w.advance(500);
    assert_eq!(
        w.ops(),
        vec![Op::ReaddEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
}

#[test]
fn gives_up_after_max_attempts_until_the_link_changes() {
    let mut w = World::new("schema_version = 1\n[reestablish]\ninitial_delay_ms = 100\nmax_delay_ms = 400\nmax_attempts = 3\n[[link]]\nflags = [\"subflow\"]\n");
    w.settle();
    let mut readds = 0;
    for _ in 0..6 {
        w.subflow_closed(7, "10.2.0.2", 113);
        if let Some(wake) = w.plan().wake_at {
            w.now = wake;
        }
        readds += w.settle().len();
    }
    assert_eq!(readds, 3);
    let p = w.plan();
    assert!(
        p.diagnostics
            .iter()
            .any(|d| matches!(d, Diagnostic::GaveUp { attempts: 3, .. })),
        "{:?}",
        p.diagnostics
    );
    assert_eq!(p.wake_at, None, "nothing pending");
    // A flap: fresh add, and losses after it get immediate attention again.
    w.set_carrier(WWAN, false);
    w.settle();
    w.set_carrier(WWAN, true);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 113);
    assert_eq!(w.ops().len(), 1);
}

#[test]
fn readd_backoff_doubles_and_is_bounded() {
    let mut w = World::new(FAST_BACKOFF);
    w.settle();
    let mut gaps = Vec::new();
    let mut last = w.now;
    for _ in 0..6 {
        // The join fails every time (no route to the server through this uplink).
        w.subflow_closed(7, "10.2.0.2", 113);
        loop {
            let p = w.plan();
            if !p.steps.is_empty() {
                assert_eq!(p.steps.len(), 1);
                break;
            }
            let wake = p
                .wake_at
                .expect("a re-add is pending, so plan names a wake-up time");
            assert!(wake > w.now);
            w.now = wake;
        }
        gaps.push(w.now.since(last));
        last = w.now;
        w.settle();
    }
    assert_eq!(gaps, vec![0, 100, 200, 400, 400, 400]);
}

#[test]
fn backoff_starts_over_after_a_quiet_period() {
    let mut w = World::new(FAST_BACKOFF);
    w.settle();
    for _ in 0..3 {
        w.subflow_closed(7, "10.2.0.2", 104);
        w.now = w.plan().wake_at.unwrap_or(w.now);
        w.settle();
    }
    w.advance(801);
    w.subflow_closed(8, "10.2.0.2", 104);
    assert_eq!(w.ops().len(), 1, "immediate again");
}

#[test]
fn a_readd_that_worked_ends_the_backoff_episode() {
    // Seen in the bench: resets from the server a few seconds apart, each one repaired at
    // once. Backoff is for re-adds that do not help, so each reset gets an immediate re-add.
    let mut w = World::new(SHIPPED_BACKOFF);
    w.settle();
    for round in 0..10 {
        w.subflow_closed(7, "10.2.0.2", 104);
        assert_eq!(w.settle().len(), 1, "round {round}: immediate re-add");
        w.advance(20);
        w.subflow_established(7, "10.2.0.2");
        w.advance(2_000);
        assert!(w.ops().is_empty());
    }
}

#[test]
fn a_readd_that_worked_counts_even_when_its_join_is_read_before_its_result() {
    // The kernel's SF_ESTABLISHED for the new subflow can reach the agent before the
    // netlink answer to the add does.
    let mut w = World::new(SHIPPED_BACKOFF);
    w.settle();
    for round in 0..6 {
        w.subflow_closed(7, "10.2.0.2", 104);
        let ops = w.ops();
        assert_eq!(ops.len(), 1, "round {round}: immediate re-add");
        w.advance(5);
        w.subflow_established(7, "10.2.0.2");
        w.ev(Event::OpDone {
            op: ops[0].clone(),
            error: None,
        });
        w.advance(1_500);
        assert!(w.ops().is_empty());
    }
}

#[test]
fn a_lost_subflow_that_lived_ends_the_episode_whatever_its_neighbours_did() {
    // iperf3 has two connections: one's new subflow can come up well after the other's.
    // The one that lived long enough decides.
    let mut w = World::new(SHIPPED_BACKOFF);
    w.settle();
    for round in 0..4 {
        w.subflow_closed(7, "10.2.0.2", 104);
        w.subflow_closed(8, "10.2.0.2", 104);
        assert_eq!(w.settle().len(), 1, "round {round}: immediate re-add");
        w.advance(10);
        w.subflow_established(7, "10.2.0.2");
        w.advance(600);
        w.subflow_established(8, "10.2.0.2");
        w.advance(900);
    }
}

#[test]
fn subflows_whose_close_was_never_seen_are_bounded() {
    // Events lost to a receive-buffer overrun: subflows come up, their closes never arrive.
    let mut w = World::new(SHIPPED_BACKOFF);
    w.settle();
    let extra = 10u32;
    for token in 0..(crate::state::SUBFLOWS_UP_MAX as u32 + extra) {
        w.advance(1);
        w.subflow_established(token, "10.2.0.2");
    }
    assert_eq!(w.obs.subflows_up.len(), crate::state::SUBFLOWS_UP_MAX);
    // The oldest went; the newest is kept and still ends its episode when lost.
    assert!(!w.obs.subflows_up.contains_key(&(ip("10.2.0.2"), extra - 1)));
    let newest = crate::state::SUBFLOWS_UP_MAX as u32 + extra - 1;
    assert!(w.obs.subflows_up.contains_key(&(ip("10.2.0.2"), newest)));
    w.advance(2_000);
    w.subflow_closed(newest, "10.2.0.2", 104);
    assert_eq!(w.settle().len(), 1, "immediate re-add");
}

#[test]
fn a_subflow_reset_right_after_its_readd_still_backs_off() {
    // A middlebox that resets every join once it is up: the re-add did not really help.
    let mut w = World::new(FAST_BACKOFF);
    w.settle();
    let mut gaps = Vec::new();
    let mut last = w.now;
    for _ in 0..5 {
        w.subflow_closed(7, "10.2.0.2", 104);
        loop {
            let p = w.plan();
            if !p.steps.is_empty() {
                break;
            }
            w.now = p.wake_at.expect("a re-add is pending");
        }
        gaps.push(w.now.since(last));
        last = w.now;
        w.settle();
        w.advance(10);
        w.subflow_established(7, "10.2.0.2");
        w.advance(50);
    }
    assert_eq!(gaps, vec![0, 100, 200, 400, 400]);
}

#[test]
fn reestablished_subflow_clears_the_loss() {
    let mut w = World::new(BASE);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 104);
    w.subflow_established(7, "10.2.0.2");
    assert!(w.ops().is_empty());
    w.subflow_closed(7, "10.2.0.2", 104);
    w.ev(Event::Mptcp(MptcpEvent {
        kind: MptcpEventKind::Closed,
        token: Some(7),
        ..MptcpEvent::default()
    }));
    assert!(
        w.ops().is_empty(),
        "connection gone: nothing to re-establish"
    );
}

#[test]
fn loss_on_a_link_without_carrier_waits_for_the_link() {
    let mut w = World::new(BASE);
    w.settle();
    w.subflow_closed(7, "10.2.0.2", 110);
    w.set_carrier(WWAN, false);
    assert_eq!(
        w.settle(),
        vec![Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
    w.set_carrier(WWAN, true);
    assert_eq!(
        w.settle(),
        vec![add(2, "10.2.0.2", WWAN)],
        "a fresh add, no extra re-add"
    );
}

// ---------------------------------------------------------------------------------------
// Rule 4: address change; ids stable per address

#[test]
fn address_change_replaces_the_endpoint_and_ids_stay_per_address() {
    let mut w = World::new(BASE);
    w.settle();
    // The new address first: with an IPv4 address left on the link, its routes stay.
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.3", 24)));
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    assert_eq!(
        w.settle(),
        vec![
            Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN))),
            add(3, "10.2.0.3", WWAN)
        ]
    );
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.2", 24)));
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.3", 24)));
    assert_eq!(
        w.settle(),
        vec![
            Op::DelEndpoint(ep(3, "10.2.0.3", SUBFLOW, Some(WWAN))),
            add(2, "10.2.0.2", WWAN)
        ]
    );
}

#[test]
fn last_ipv4_address_gone_takes_the_links_ipv4_routes_with_it() {
    // A new DHCP lease: the old address goes first. The kernel then drops every IPv4 route
    // via the link without an RTM_DELROUTE, so the new address waits for its route.
    let mut w = World::new(BASE);
    w.settle();
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    assert_eq!(
        w.settle(),
        vec![Op::DelEndpoint(ep(2, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.3", 24)));
    assert_eq!(w.settle(), vec![], "no IPv4 route via wwan0 any more");
    w.ev(Event::RouteAdded(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    assert_eq!(w.settle(), vec![add(3, "10.2.0.3", WWAN)]);
}

#[test]
fn admin_down_takes_the_links_ipv4_routes_with_it() {
    // `ip link set wwan0 down` drops every IPv4 route via it without an RTM_DELROUTE (the
    // foreign table's and the agent's own); `up` does not bring them back.
    let mut w = World::new(BASE);
    w.ev(Event::RouteAdded(default_route(WWAN, "10.2.0.1", 200, 0)));
    w.settle();
    let mut l = w.obs.links[&WWAN].clone();
    l.up = false;
    l.lower_up = false;
    w.ev(Event::LinkChanged(l.clone()));
    w.settle();
    assert!(
        w.obs.routes.iter().all(|r| r.ifindex != Some(WWAN)),
        "{:?}",
        w.obs.routes
    );
    l.up = true;
    l.lower_up = true;
    w.ev(Event::LinkChanged(l));
    assert_eq!(w.settle(), vec![], "carrier and address, but no route");
    w.ev(Event::RouteAdded(default_route(WWAN, "10.2.0.1", 200, 0)));
    let ops = w.settle();
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::AddRoute(r) if r.is_default() && r.table == 1003)),
        "the agent's own table is filled again: {ops:?}"
    );
    assert_eq!(ops.last(), Some(&add(2, "10.2.0.2", WWAN)));
}

#[test]
fn both_addresses_present_keeps_the_one_with_an_endpoint() {
    let mut w = World::new(BASE);
    w.settle();
    w.ev(Event::AddressAdded(addr(WWAN, "10.2.0.1", 24)));
    assert!(w.ops().is_empty(), "no churn for a second address");
}
