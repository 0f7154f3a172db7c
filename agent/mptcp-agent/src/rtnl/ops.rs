// SPDX-License-Identifier: MIT OR Apache-2.0
//! The executor's rtnetlink ops: routes, rules, and stuck neighbour entries.

use mptcp_agent_core::{Family, OpError, OpErrorKind, Route, Rule};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};

use super::{
    conn::{Handle, RtnlError},
    convert::{route_request, rule_request},
    message::NeighMsg,
    wire::*,
};

/// Flags of an add besides REQUEST and ACK: create, and fail when it exists.
pub(super) const ADD: u16 = NLM_F_CREATE | NLM_F_EXCL;

/// An rtnetlink error as the core's op failure; `context` goes before its text.
fn op_error(e: &RtnlError, context: &str) -> OpError {
    let kind = match e {
        RtnlError::Kernel(_) => OpErrorKind::Rejected,
        RtnlError::Unexpected(_) | RtnlError::Malformed(_) => OpErrorKind::Malformed,
        RtnlError::RequestFailed => OpErrorKind::Io,
    };
    OpError::new(kind, e.errno(), format!("{context}{e}"))
}

/// Ok when the request succeeded or failed with `fine` (the wanted state already holds).
fn done_unless(r: Result<(), RtnlError>, fine: i32, context: &str) -> Result<(), OpError> {
    match r {
        Err(e) if e.errno() != Some(fine) => Err(op_error(&e, context)),
        _ => Ok(()),
    }
}

/// Delete the link's INCOMPLETE and FAILED neighbour entries of one family, so that the
/// next packet probes at once (see `Op::ResetNeighbours`). Entries that are gone already
/// are fine.
pub async fn reset_neighbours(
    handle: &Handle,
    ifindex: u32,
    family: Family,
) -> Result<(), OpError> {
    let af = match family {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    };
    let entries = handle
        .dump(RTM_GETNEIGH, af, NeighMsg::parse)
        .await
        .map_err(|e| op_error(&e, "neighbour dump: "))?;
    let stuck = entries
        .iter()
        .filter(|m| m.ifindex == ifindex && matches!(m.state, NUD_INCOMPLETE | NUD_FAILED));
    for m in stuck {
        let r = handle.ack(m.delete_request(), 0).await;
        done_unless(r, libc::ENOENT, "neighbour delete: ")?;
    }
    Ok(())
}

pub async fn add_route(handle: &Handle, r: &Route) -> Result<(), OpError> {
    let req = route_request(RTM_NEWROUTE, r);
    // Already there (e.g. added before a restart): that is the wanted state.
    done_unless(handle.ack(req, ADD).await, libc::EEXIST, "")
}

pub async fn del_route(handle: &Handle, r: &Route) -> Result<(), OpError> {
    let req = route_request(RTM_DELROUTE, r);
    done_unless(handle.ack(req, 0).await, libc::ESRCH, "")
}

pub async fn add_rule(handle: &Handle, r: &Rule) -> Result<(), OpError> {
    let req = rule_request(RTM_NEWRULE, r);
    done_unless(handle.ack(req, ADD).await, libc::EEXIST, "")
}

pub async fn del_rule(handle: &Handle, r: &Rule) -> Result<(), OpError> {
    let req = rule_request(RTM_DELRULE, r);
    done_unless(handle.ack(req, 0).await, libc::ENOENT, "")
}
