// SPDX-License-Identifier: MIT OR Apache-2.0
//! Observed-state builders shared by the unit tests of this crate (ota, service, metrics).

use mptcp_agent_core::{AddrFlags, Address, Link, OperState};

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
