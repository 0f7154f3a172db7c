// SPDX-License-Identifier: MIT OR Apache-2.0
//! Observed-state builders shared by the unit tests of this crate (daemon, ota, service,
//! metrics), and a runtime to run their async parts on.

use mptcp_agent_core::{
    AddrFlags, Address, Family, KernelCaps, Link, OperState, Route, TABLE_MAIN,
};

/// Runs `f` to completion on a current-thread runtime, as the daemon's loop runs.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// An up link with carrier; `ppp*` names are point-to-point.
pub fn link(ifindex: u32, name: &str) -> Link {
    Link {
        ifindex,
        name: name.into(),
        up: true,
        lower_up: true,
        loopback: false,
        point_to_point: name.starts_with("ppp"),
        oper: OperState::Up,
        kind: None,
        info_kind: None,
        master: None,
    }
}

/// A permanent /24 address, global scope.
pub fn addr(ifindex: u32, a: &str) -> Address {
    Address {
        ifindex,
        addr: a.parse().unwrap(),
        prefix_len: 24,
        flags: AddrFlags(AddrFlags::PERMANENT),
        scope: 0,
    }
}

/// A default route in the main table via `gw`, metric 100 × ifindex (boot protocol).
pub fn default_via(ifindex: u32, gw: &str) -> Route {
    let gw: std::net::IpAddr = gw.parse().unwrap();
    Route {
        table: TABLE_MAIN,
        dst: Family::of(&gw).any(),
        prefix_len: 0,
        gateway: Some(gw),
        ifindex: Some(ifindex),
        protocol: 4,
        metric: 100 * ifindex,
        scope: 0,
        prefsrc: None,
    }
}

/// A kernel with set_flags, events and fullmesh, without laminar endpoints; `description`
/// is what status shows as its generation.
pub fn caps(sysctls: &[&str], description: &str) -> KernelCaps {
    KernelCaps {
        set_flags: true,
        events: true,
        fullmesh: true,
        ids_run_out: false,
        laminar: false,
        laminar_probe: String::new(),
        sysctls: sysctls.iter().map(|s| s.to_string()).collect(),
        description: description.into(),
    }
}
