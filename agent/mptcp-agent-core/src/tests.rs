// SPDX-License-Identifier: MIT OR Apache-2.0
//! `plan()` against every behaviour rule of issue 3, without a kernel: a small world of
//! links, addresses, routes, NetworkManager devices and endpoints, driven by events.

use std::net::IpAddr;

use crate::{
    config::load,
    event::{Event, KernelSnapshot},
    model::*,
    op::{Op, OpError},
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

// Shared by more than one group of tests.

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

fn nm_default_flags_device() -> NmDevice {
    let mut d = nm_device("/d/3", "wwan0", nm_state::ACTIVATED);
    d.applied = Some(AppliedProfile {
        id: "uplink-wwan0".into(),
        mptcp_flags: 0,
    });
    d
}

fn caps_510() -> KernelCaps {
    let mut c = caps();
    c.set_flags = false;
    c.events = false;
    c.fullmesh = false;
    c.ids_run_out = true;
    c
}

mod coexistence;
mod explain;
mod ids;
mod policy;
mod readd;
mod routing;
mod usable;
