// SPDX-License-Identifier: MIT OR Apache-2.0
//! Policy routing: a table and a source rule per uplink without a default route in main.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Desired, DesiredState, RoutePath, Step};
use crate::{
    config::Config,
    model::{Family, Route, Rule, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN},
    op::Op,
    state::{same_rule, Observed},
};

/// Route and rule changes: deletions run before, additions after the endpoint changes.
#[derive(Debug, Default)]
pub(super) struct RouteSteps {
    pub(super) del: Vec<Step>,
    pub(super) add: Vec<Step>,
}

/// The per-uplink tables and source rules the desired endpoints need, against the
/// agent's own routes and rules in the kernel.
pub(super) fn policy_route_steps(
    cfg: &Config,
    obs: &Observed,
    desired: &DesiredState,
) -> RouteSteps {
    let mut steps = RouteSteps::default();
    let mut want_routes: Vec<Route> = Vec::new();
    let mut want_rules: Vec<Rule> = Vec::new();
    for d in desired.endpoints.values() {
        if let RoutePath::Policy { table, gateway } = d.route {
            let (routes, rule) = policy_routing(cfg, d, table, gateway);
            want_routes.extend(routes);
            want_rules.push(rule);
        }
    }
    let owned_route = |r: &Route| {
        r.protocol == cfg.routing.protocol
            && ![TABLE_MAIN, TABLE_LOCAL, TABLE_DEFAULT].contains(&r.table)
    };
    let owned_rule = |r: &Rule| r.protocol == cfg.routing.protocol;
    for r in obs.routes.iter().filter(|r| owned_route(r)) {
        if !want_routes.iter().any(|w| w.same_as(r)) {
            steps.del.push(Step {
                op: Op::DelRoute(r.clone()),
                why: "policy route no longer needed".to_string(),
            });
        }
    }
    for r in obs.rules.iter().filter(|r| owned_rule(r)) {
        if !want_rules.iter().any(|w| same_rule(w, r)) {
            steps.del.push(Step {
                op: Op::DelRule(r.clone()),
                why: "policy rule no longer needed".to_string(),
            });
        }
    }
    for w in &want_routes {
        if !obs.routes.iter().any(|r| r.same_as(w)) {
            steps.add.push(Step {
                op: Op::AddRoute(w.clone()),
                why: format!(
                    "uplink ifindex {} has no default route in main",
                    w.ifindex.unwrap_or(0)
                ),
            });
        }
    }
    for w in &want_rules {
        if !obs.rules.iter().any(|r| same_rule(r, w)) {
            steps.add.push(Step {
                op: Op::AddRule(w.clone()),
                why: format!(
                    "source rule into table {} for the uplink's endpoint",
                    w.table
                ),
            });
        }
    }
    steps
}

/// Whether the routes an endpoint needs are in the kernel already.
pub(super) fn routed(cfg: &Config, obs: &Observed, d: &Desired) -> bool {
    match d.route {
        RoutePath::Policy { table, gateway } => {
            let (routes, rule) = policy_routing(cfg, d, table, gateway);
            routes
                .iter()
                .all(|w| obs.routes.iter().any(|r| r.same_as(w)))
                && obs.rules.iter().any(|r| same_rule(r, &rule))
        }
        RoutePath::Main => true,
        RoutePath::Missing => false,
    }
}

/// The per-uplink table's routes (default, and the address's own subnet so that
/// neighbours stay on-link) and the source rule into it.
fn policy_routing(
    cfg: &Config,
    d: &Desired,
    table: u32,
    gateway: Option<IpAddr>,
) -> (Vec<Route>, Rule) {
    let family = Family::of(&d.addr.addr);
    // The subnet route first: the kernel accepts a gateway only when it can reach it, and
    // while NetworkManager re-adds main's routes the table's own subnet route is the way.
    let mut routes = Vec::new();
    if d.addr.prefix_len < family.host_prefix() {
        routes.push(Route {
            table,
            dst: network(d.addr.addr, d.addr.prefix_len),
            prefix_len: d.addr.prefix_len,
            gateway: None,
            ifindex: Some(d.ifindex),
            protocol: cfg.routing.protocol,
            metric: 0,
            scope: 253,
            prefsrc: Some(d.addr.addr),
        });
    }
    routes.push(Route {
        table,
        dst: family.any(),
        prefix_len: 0,
        gateway,
        ifindex: Some(d.ifindex),
        protocol: cfg.routing.protocol,
        metric: 0,
        scope: 0,
        prefsrc: None,
    });
    let rule = Rule {
        family,
        priority: cfg.routing.rule_priority,
        src: Some((d.addr.addr, family.host_prefix())),
        table,
        protocol: cfg.routing.protocol,
    };
    (routes, rule)
}

/// The network address of `addr/prefix`.
pub fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}
