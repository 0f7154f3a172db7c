// SPDX-License-Identifier: MIT OR Apache-2.0
//! explain: why each link has or lacks an endpoint, and the one thing to change.

use super::*;

impl World {
    fn explain(&self, name: &str) -> crate::LinkExplanation {
        let e = crate::explain(&self.cfg, &self.obs, self.now, Some(name));
        assert_eq!(e.links.len(), 1, "{e:#?}");
        e.links.into_iter().next().unwrap()
    }
}

fn topic_text(l: &crate::LinkExplanation, topic: &str) -> String {
    l.facts
        .iter()
        .filter(|f| f.topic == topic)
        .map(|f| f.text.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn explain_active_link_needs_no_change() {
    let mut w = World::new(BASE);
    // Before the agent has acted: usable, the endpoint still missing.
    let l = w.explain("wlan0");
    assert_eq!(l.state, "active");
    assert!(l.summary.contains("the kernel has none yet"), "{l:#?}");
    assert!(
        l.change
            .as_deref()
            .unwrap()
            .contains("systemctl start mptcp-agent"),
        "{l:#?}"
    );
    w.settle();
    let l = w.explain("wlan0");
    assert_eq!(l.state, "active");
    assert_eq!(l.change, None, "{l:#?}");
    assert!(topic_text(&l, "rule").contains("\"wifi\""), "{l:#?}");
    assert!(
        topic_text(&l, "address").contains("10.1.0.2 in use"),
        "{l:#?}"
    );
    assert!(topic_text(&l, "route").contains("main table"), "{l:#?}");
    assert!(
        topic_text(&l, "endpoint").contains("endpoint id 1 (subflow) as the policy asks"),
        "{l:#?}"
    );
    // Only the link asked for; the host facts always.
    let all = crate::explain(&w.cfg, &w.obs, w.now, None);
    assert_eq!(all.links.len(), 2);
    assert!(all
        .host
        .iter()
        .any(|f| f.topic == "kernel" && f.text.contains("test kernel")));
    assert!(all
        .host
        .iter()
        .any(|f| f.topic == "limits" && f.text.contains("subflows 2")));
}

#[test]
fn explain_names_the_first_blocker() {
    // No carrier.
    let mut w = World::new(BASE);
    w.set_carrier(WWAN, false);
    let l = w.explain("wwan0");
    assert_eq!(l.state, "down");
    assert!(l.summary.contains("no carrier"), "{l:#?}");
    assert!(l.change.as_deref().unwrap().contains("carrier"), "{l:#?}");
    // Administratively down.
    let mut w = World::new(BASE);
    let mut k = w.obs.links[&WWAN].clone();
    k.up = false;
    w.ev(Event::LinkChanged(k));
    let l = w.explain("wwan0");
    assert!(
        l.change
            .as_deref()
            .unwrap()
            .contains("ip link set wwan0 up"),
        "{l:#?}"
    );
    // No route, no gateway.
    let mut w = World::new(BASE);
    w.ev(Event::RouteRemoved(default_route(
        WWAN, "10.2.0.1", TABLE_MAIN, 700,
    )));
    let l = w.explain("wwan0");
    assert!(
        topic_text(&l, "route").contains("no default route"),
        "{l:#?}"
    );
    assert!(l.change.as_deref().unwrap().contains("gateway4"), "{l:#?}");
    // NetworkManager has not activated it.
    let mut w = World::new(BASE);
    w.nm_present(
        "1.42.4",
        vec![
            nm_device("/d/2", "wlan0", nm_state::ACTIVATED),
            nm_device("/d/3", "wwan0", nm_state::DISCONNECTED),
        ],
    );
    let l = w.explain("wwan0");
    assert!(
        topic_text(&l, "networkmanager").contains("DISCONNECTED"),
        "{l:#?}"
    );
    assert!(
        l.change
            .as_deref()
            .unwrap()
            .contains("nmcli device connect wwan0"),
        "{l:#?}"
    );
    // No address.
    let mut w = World::new(BASE);
    w.ev(Event::AddressRemoved(addr(WWAN, "10.2.0.2", 24)));
    let l = w.explain("wwan0");
    assert!(
        topic_text(&l, "address").contains("IPv4: no address"),
        "{l:#?}"
    );
    assert!(l.change.as_deref().unwrap().contains("address"), "{l:#?}");
}

#[test]
fn explain_answers_for_every_refusal_kind() {
    use crate::Refusal;
    let mut seen = std::collections::BTreeSet::new();
    // networkmanager-default
    let mut w = World::new(BASE);
    w.nm_present("1.42.4", vec![nm_default_flags_device()]);
    let l = w.explain("wwan0");
    assert_eq!(l.state, "refused");
    assert_eq!(l.refusal, Some("networkmanager-default"));
    assert_eq!(
        l.change.as_deref(),
        Some("nmcli connection modify uplink-wwan0 connection.mptcp-flags disabled && nmcli device reapply wwan0")
    );
    assert!(
        topic_text(&l, "coexistence").contains("90-mptcp-agent.conf"),
        "{l:#?}"
    );
    seen.insert(l.refusal.unwrap());
    // networkmanager-global
    let mut w = World::new(BASE);
    w.ev(Event::NmConfFiles(vec![(
        "/etc/NetworkManager/conf.d/80-on.conf".into(),
        "[connection-on]\nconnection.mptcp-flags=0x22\n".into(),
    )]));
    w.nm_present("1.42.4", vec![nm_default_flags_device()]);
    let l = w.explain("wwan0");
    assert_eq!(l.refusal, Some("networkmanager-global"));
    assert!(
        topic_text(&l, "coexistence").contains("80-on.conf"),
        "{l:#?}"
    );
    seen.insert(l.refusal.unwrap());
    // networkmanager-profile
    let mut w = World::new(BASE);
    let mut d = nm_default_flags_device();
    d.applied.as_mut().unwrap().mptcp_flags = 0x22;
    w.nm_present("1.42.4", vec![d]);
    let l = w.explain("wwan0");
    assert_eq!(l.refusal, Some("networkmanager-profile"));
    assert!(
        topic_text(&l, "coexistence").contains("connection profile 'uplink-wwan0'"),
        "{l:#?}"
    );
    seen.insert(l.refusal.unwrap());
    // mptcpd
    let mut w = World::new(BASE);
    w.ev(Event::Mptcpd(Some(42)));
    let all = crate::explain(&w.cfg, &w.obs, w.now, None);
    for l in &all.links {
        assert_eq!(l.refusal, Some("mptcpd"), "{l:#?}");
        assert_eq!(
            l.change.as_deref(),
            Some("systemctl disable --now mptcp.service")
        );
    }
    assert!(all
        .host
        .iter()
        .any(|f| f.topic == "coexistence" && f.text.contains("pid 42")));
    seen.insert("mptcpd");
    assert_eq!(seen, Refusal::KINDS.into_iter().collect());
}

#[test]
fn explain_unmatched_and_ignored_links() {
    let cfg = format!("{BASE}[[link]]\nname = \"off\"\ninterfaces = [\"eth*\"]\nmanage = false\n");
    let mut w = World::new(&cfg);
    let mut e = link(7, "eth0");
    e.kind = Some(DeviceType::Ethernet);
    w.ev(Event::LinkChanged(e));
    let mut u = link(8, "usb0");
    u.kind = Some(DeviceType::Ethernet);
    w.ev(Event::LinkChanged(u));
    let l = w.explain("eth0");
    assert_eq!(l.state, "ignored");
    assert_eq!(l.change, None);
    let l = w.explain("usb0");
    assert_eq!(l.state, "unmatched");
    assert!(l.change.as_deref().unwrap().contains("[[link]]"), "{l:#?}");
}

#[test]
fn explain_shows_backoff_and_ids() {
    let mut w = World::new(BASE);
    w.obs.caps.as_mut().unwrap().ids_run_out = true;
    w.settle();
    w.ev(Event::OpDone {
        op: add(9, "10.2.0.2", WWAN),
        error: Some(OpError::rejected(28, "No space left on device")),
    });
    w.subflow_established(1, "10.2.0.2");
    w.advance(2_000);
    w.subflow_closed(1, "10.2.0.2", 104);
    w.settle();
    let l = w.explain("wwan0");
    let backoff = topic_text(&l, "backoff");
    assert!(backoff.contains("re-added 1 time(s)"), "{l:#?}");
    let all = crate::explain(&w.cfg, &w.obs, w.now, None);
    assert!(
        all.host
            .iter()
            .any(|f| f.topic == "ids" && f.text.contains("of 255 endpoint ids left")),
        "{all:#?}"
    );
}

#[test]
fn explain_shows_the_failures_of_the_links_address_only() {
    let mut w = World::new(BASE);
    w.settle();
    for (id, a) in [(9, "10.2.0.2"), (10, "10.2.0.20")] {
        w.ev(Event::OpDone {
            op: add(id, a, WWAN),
            error: Some(OpError::rejected(28, "No space left on device")),
        });
    }
    let backoff = topic_text(&w.explain("wwan0"), "backoff");
    assert!(
        backoff
            .contains("`endpoint add 10.2.0.2 id 9 subflow ifindex 3` failed 1 time(s): No space"),
        "{backoff}"
    );
    // Its text starts with the link's address, but it is another address.
    assert!(!backoff.contains("10.2.0.20"), "{backoff}");
}

#[test]
fn a_fullmesh_bit_the_kernel_cannot_use_counts_as_applied() {
    // 5.10 stores any flag bit it is given (ip mptcp by hand) and does nothing with
    // fullmesh: plan, explain and status agree the endpoint is as the policy asks, and no
    // id is spent on a re-add.
    let mut w = World::new(BASE);
    w.ev(Event::Capabilities(caps_510()));
    w.settle();
    let mut eps: Vec<KernelEndpoint> = w.obs.endpoints.clone().unwrap().into_values().collect();
    for e in &mut eps {
        e.flags = e.flags.union(EndpointFlags::FULLMESH);
    }
    w.ev(Event::Endpoints(eps));
    assert!(w.ops().is_empty(), "{:?}", w.ops());
    let links = crate::plan::assess(&w.cfg, &w.obs);
    let wwan = links.iter().find(|l| l.name == "wwan0").unwrap();
    assert!(wwan.families.iter().all(|f| f.policy_applied(&w.obs)));
    let endpoint = topic_text(&w.explain("wwan0"), "endpoint");
    assert!(endpoint.contains("as the policy asks"), "{endpoint}");
    // Where the kernel can do fullmesh, the same bit is a difference to fix.
    w.ev(Event::Capabilities(caps()));
    assert!(!w.ops().is_empty());
}
