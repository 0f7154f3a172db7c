// SPDX-License-Identifier: MIT OR Apache-2.0
//! Linux 5.10: endpoint ids run out (next_id++ up to 255, never reused).

use super::*;

const EINVAL_510: &str = "kernel rejected MPTCP_PM_CMD_ADD_ADDR: Invalid argument (os error 22) \
                          (errno 22): \"too many addresses or duplicate one\"";

/// The kernel has handed out ids up to `highest` (5.10 never reuses one).
fn ids_spent_up_to(w: &mut World, highest: u8) {
    w.ev(Event::Endpoints(vec![
        ep(highest - 1, "10.1.0.2", SUBFLOW, Some(WLAN)),
        ep(highest, "10.2.0.2", SUBFLOW, Some(WWAN)),
    ]));
}

#[test]
fn few_ids_left_on_5_10_keeps_endpoints_through_carrier_loss() {
    let mut w = World::new(BASE);
    w.ev(Event::Capabilities(caps_510()));
    w.settle();
    ids_spent_up_to(&mut w, 230);
    assert!(w.ops().is_empty());
    w.set_carrier(WWAN, false);
    let p = w.plan();
    assert!(p.steps.is_empty(), "no withdrawal: {:?}", p.steps);
    assert!(
        p.diagnostics
            .contains(&Diagnostic::EndpointIdsLow { left: 25 }),
        "{:?}",
        p.diagnostics
    );
    assert!(p
        .diagnostics
        .iter()
        .any(|d| d.to_string().contains("reboot")));
    // The address goes away: that endpoint has to go, ids or not.
    w.ev(Event::AddressRemoved(
        w.obs.addresses[&(WWAN, ip("10.2.0.2"))].clone(),
    ));
    assert_eq!(
        w.ops(),
        vec![Op::DelEndpoint(ep(230, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
}

#[test]
fn enough_ids_left_on_5_10_withdraws_as_usual() {
    let mut w = World::new(BASE);
    w.ev(Event::Capabilities(caps_510()));
    w.settle();
    ids_spent_up_to(&mut w, 200);
    w.set_carrier(WWAN, false);
    let p = w.plan();
    assert_eq!(
        p.steps.iter().map(|s| s.op.clone()).collect::<Vec<_>>(),
        vec![Op::DelEndpoint(ep(200, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
    assert!(!p
        .diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::EndpointIdsLow { .. })));
}

#[test]
fn kernels_that_reuse_ids_always_withdraw() {
    let mut w = World::new(BASE);
    w.settle();
    ids_spent_up_to(&mut w, 250);
    w.set_carrier(WWAN, false);
    assert_eq!(
        w.ops(),
        vec![Op::DelEndpoint(ep(250, "10.2.0.2", SUBFLOW, Some(WWAN)))]
    );
}

#[test]
fn ids_used_up_on_5_10_is_said_plainly() {
    let mut w = World::new(BASE);
    w.ev(Event::Capabilities(caps_510()));
    w.settle();
    w.set_carrier(WWAN, false);
    w.settle();
    w.set_carrier(WWAN, true);
    let ops = w.ops();
    assert_eq!(ops, vec![add(2, "10.2.0.2", WWAN)]);
    w.ev(Event::OpDone {
        op: ops[0].clone(),
        error: Some(OpError::rejected(crate::op::EINVAL, EINVAL_510)),
    });
    let p = w.plan();
    assert!(
        p.diagnostics.contains(&Diagnostic::EndpointIdsUsedUp),
        "{:?}",
        p.diagnostics
    );
}

#[test]
fn other_refusals_of_an_add_are_not_ids_used_up() {
    // Decided by errno and op, never by the words: the same words with another errno, or
    // EINVAL for another op, say nothing about ids.
    for (op_is_add, errno) in [(true, 12), (false, crate::op::EINVAL)] {
        let mut w = World::new(BASE);
        w.ev(Event::Capabilities(caps_510()));
        w.settle();
        w.set_carrier(WWAN, false);
        w.settle();
        w.set_carrier(WWAN, true);
        let add = w.ops().remove(0);
        let op = if op_is_add {
            add
        } else {
            let Op::AddEndpoint(e) = add else {
                panic!("{add:?}")
            };
            Op::DelEndpoint(e)
        };
        w.ev(Event::OpDone {
            op,
            error: Some(OpError::rejected(errno, EINVAL_510)),
        });
        let p = w.plan();
        assert!(
            !p.diagnostics.contains(&Diagnostic::EndpointIdsUsedUp),
            "errno {errno}: {:?}",
            p.diagnostics
        );
    }
}
