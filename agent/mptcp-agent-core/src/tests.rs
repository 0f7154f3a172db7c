// SPDX-License-Identifier: MIT OR Apache-2.0
//! `plan()` against every behaviour rule of issue 3, without a kernel: a small world of
//! links, addresses, routes, NetworkManager devices and endpoints, driven by events.

use std::net::IpAddr;

use crate::{
    config::load,
    event::{Event, KernelSnapshot},
    model::*,
    op::Op,
    plan::{plan, Control, Diagnostic, Plan},
    state::Observed,
    time::Millis,
};

const BASE: &str = r#"
schema_version = 1
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow"]
[[link]]
name = "cellular"
interfaces = ["wwan*"]
flags = ["subflow"]
"#;

const WLAN: u32 = 2;
const WWAN: u32 = 3;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn caps() -> KernelCaps {
    KernelCaps {
        set_flags: true,
        events: true,
        fullmesh: true,
        ids_run_out: false,
        laminar: true,
        laminar_probe: "test".to_string(),
        sysctls: ["enabled", "add_addr_timeout", "checksum_enabled"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        description: "test kernel".to_string(),
    }
}

fn link(ifindex: u32, name: &str) -> Link {
    Link {
        ifindex,
        name: name.to_string(),
        up: true,
        lower_up: true,
        loopback: false,
        point_to_point: false,
        oper: OperState::Up,
        kind: None,
        info_kind: None,
        master: None,
    }
}

fn addr(ifindex: u32, a: &str, prefix_len: u8) -> Address {
    Address {
        ifindex,
        addr: ip(a),
        prefix_len,
        flags: AddrFlags(AddrFlags::PERMANENT),
        scope: 0,
    }
}

fn default_route(ifindex: u32, gw: &str, table: u32, metric: u32) -> Route {
    Route {
        table,
        dst: Family::of(&ip(gw)).any(),
        prefix_len: 0,
        gateway: Some(ip(gw)),
        ifindex: Some(ifindex),
        protocol: 4,
        metric,
        scope: 0,
        prefsrc: None,
    }
}

fn ep(id: u8, a: &str, flags: EndpointFlags, ifindex: Option<u32>) -> KernelEndpoint {
    KernelEndpoint {
        id,
        addr: ip(a),
        port: None,
        flags,
        ifindex,
    }
}

fn nm_device(path: &str, iface: &str, state: u32) -> NmDevice {
    NmDevice {
        path: path.to_string(),
        interface: iface.to_string(),
        device_type: DeviceType::Veth,
        state,
        metered: Metered::GuessNo,
        applied: Some(AppliedProfile {
            id: format!("uplink-{iface}"),
            mptcp_flags: 0x1,
        }),
        gateway4: None,
        gateway6: None,
    }
}

const SUBFLOW: EndpointFlags = EndpointFlags::SUBFLOW;

struct World {
    cfg: crate::Config,
    obs: Observed,
    now: Millis,
}

impl World {
    /// Two uplinks with carrier, addresses and main default routes; NetworkManager absent;
    /// no endpoints yet.
    fn new(cfg: &str) -> World {
        let mut w = World {
            cfg: load(cfg).unwrap(),
            obs: Observed::new(),
            now: Millis(1_000),
        };
        let mut lo = link(1, "lo");
        lo.loopback = true;
        w.ev(Event::KernelSnapshot(KernelSnapshot {
            links: vec![lo, link(WLAN, "wlan0"), link(WWAN, "wwan0")],
            addresses: vec![
                addr(1, "127.0.0.1", 8),
                addr(WLAN, "10.1.0.2", 24),
                addr(WWAN, "10.2.0.2", 24),
            ],
            routes: vec![
                default_route(WLAN, "10.1.0.1", TABLE_MAIN, 600),
                default_route(WWAN, "10.2.0.1", TABLE_MAIN, 700),
            ],
            rules: vec![],
        }));
        w.ev(Event::Capabilities(caps()));
        w.ev(Event::Endpoints(vec![]));
        w.ev(Event::Limits(Limits {
            subflows: 2,
            add_addr_accepted: 0,
        }));
        w.ev(Event::Sysctls(
            [("enabled".to_string(), "1".to_string())].into(),
        ));
        w.ev(Event::Mptcpd(None));
        w.ev(Event::NmGone);
        w
    }

    fn ev(&mut self, e: Event) {
        self.obs.apply(&e, self.now);
    }

    fn assess(&self) -> Vec<crate::LinkAssessment> {
        crate::assess(&self.cfg, &self.obs)
    }

    fn plan(&self) -> Plan {
        plan(&self.cfg, &self.obs, self.now)
    }

    /// The planned ops without neighbour resets (they go before every endpoint add; the
    /// tests of that rule use [`World::all_ops`]).
    fn ops(&self) -> Vec<Op> {
        self.all_ops()
            .into_iter()
            .filter(|op| !matches!(op, Op::ResetNeighbours { .. }))
            .collect()
    }

    fn all_ops(&self) -> Vec<Op> {
        self.plan().steps.into_iter().map(|s| s.op).collect()
    }

    /// Plan, "execute" everything successfully, repeat until nothing is left. Returns
    /// every op in order.
    fn settle(&mut self) -> Vec<Op> {
        let mut done = Vec::new();
        for _ in 0..5 {
            let ops = self.ops();
            if ops.is_empty() {
                return done;
            }
            for op in ops {
                self.ev(Event::OpDone {
                    op: op.clone(),
                    error: None,
                });
                done.push(op);
            }
        }
        panic!("plan does not converge: {done:#?}");
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now.plus(ms);
    }

    fn endpoints(&self) -> Vec<KernelEndpoint> {
        self.obs
            .endpoints
            .as_ref()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    fn set_carrier(&mut self, ifindex: u32, on: bool) {
        let mut l = self.obs.links[&ifindex].clone();
        l.lower_up = on;
        l.oper = if on {
            OperState::Up
        } else {
            OperState::LowerLayerDown
        };
        self.ev(Event::LinkChanged(l));
    }

    fn subflow_closed(&mut self, token: u32, saddr: &str, error: u32) {
        self.ev(Event::Mptcp(MptcpEvent {
            kind: MptcpEventKind::SubflowClosed,
            token: Some(token),
            saddr: Some(ip(saddr)),
            daddr: Some(ip("10.9.0.2")),
            sport: Some(40000),
            dport: Some(5201),
            loc_id: Some(2),
            ifindex: Some(WWAN),
            error: Some(error),
            backup: Some(false),
        }));
    }

    fn subflow_established(&mut self, token: u32, saddr: &str) {
        self.ev(Event::Mptcp(MptcpEvent {
            kind: MptcpEventKind::SubflowEstablished,
            token: Some(token),
            saddr: Some(ip(saddr)),
            daddr: Some(ip("10.9.0.2")),
            sport: Some(40001),
            dport: Some(5201),
            loc_id: Some(2),
            ifindex: Some(WWAN),
            error: None,
            backup: Some(false),
        }));
    }

    fn nm_present(&mut self, version: &str, devices: Vec<NmDevice>) {
        self.ev(Event::NmAppeared {
            version: NmVersion::parse(version),
            startup: false,
        });
        self.ev(Event::NmDevices(devices));
    }
}

fn add(id: u8, a: &str, ifindex: u32) -> Op {
    Op::AddEndpoint(ep(id, a, SUBFLOW, Some(ifindex)))
}

// ---------------------------------------------------------------------------------------
// Rule 1: endpoint when usable, never before the route (NM ACTIVATED, or kernel criteria)

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

const BACKUP_ON_LOSS: &str = r#"
schema_version = 1
[[link]]
interfaces = ["wlan0"]
flags = ["subflow"]
[[link]]
interfaces = ["wwan0"]
flags = ["subflow"]
on_carrier_loss = "backup"
"#;

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

// ---------------------------------------------------------------------------------------
// Rule 3: lost subflow → re-add only that endpoint, bounded backoff

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
        saddr: None,
        daddr: None,
        sport: None,
        dport: None,
        loc_id: None,
        ifindex: None,
        error: None,
        backup: None,
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

// ---------------------------------------------------------------------------------------
// Rule 5: per-link policy by name, type, metered; capability checks

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

// ---------------------------------------------------------------------------------------
// Rule 7: policy routing for an uplink without a default route in main

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

// ---------------------------------------------------------------------------------------
// Rule 11: coexistence with NetworkManager's MPTCP and mptcpd

fn nm_default_flags_device() -> NmDevice {
    let mut d = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    d.applied = Some(AppliedProfile {
        id: "uplink-wwan0".into(),
        mptcp_flags: 0,
    });
    d
}

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
        error: Some("EBUSY".into()),
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

// ---------------------------------------------------------------------------------------
// Linux 5.10: endpoint ids run out (next_id++ up to 255, never reused)

const EINVAL_510: &str = "kernel rejected MPTCP_PM_CMD_ADD_ADDR: Invalid argument (os error 22) \
                          (errno 22): \"too many addresses or duplicate one\"";

fn caps_510() -> KernelCaps {
    let mut c = caps();
    c.set_flags = false;
    c.events = false;
    c.fullmesh = false;
    c.ids_run_out = true;
    c
}

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
        error: Some(EINVAL_510.into()),
    });
    let p = w.plan();
    assert!(
        p.diagnostics.contains(&Diagnostic::EndpointIdsUsedUp),
        "{:?}",
        p.diagnostics
    );
}

// ---------------------------------------------------------------------------------------
// explain: why each link has or lacks an endpoint, and the one thing to change

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
        error: Some("No space left on device".into()),
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
