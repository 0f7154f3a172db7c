// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-agent explain`: for each link, why it has or lacks an endpoint, and the one thing
//! to change. A pure function of the config and the observed state (the daemon's own, or
//! one read from the kernel and NetworkManager without a running agent), so every piece of
//! reasoning is unit-tested in `tests.rs`.

use std::net::IpAddr;

use serde::Serialize;

use crate::{
    config::Config,
    model::{address_unsuitable, nm_state, EndpointFlags, Family, KernelEndpoint},
    plan::{
        assess, flags_as_asked, ids_left, plan, Control, Diagnostic, LinkAssessment, RoutePath,
        Want,
    },
    state::{NmObserved, Observed},
    time::Millis,
};

/// Version of the `explain --json` layout (docs/cli.md). Raised when a key is removed or
/// changes meaning.
pub const EXPLAIN_SCHEMA: u32 = 1;

/// One fact about a link or the host, under a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    /// "rule", "coexistence", "carrier", "networkmanager", "address", "route", "endpoint",
    /// "backoff", "kernel", "limits", "ids", "sysctl", "config".
    pub topic: &'static str,
    pub text: String,
}

/// Why one link has or lacks its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkExplanation {
    pub name: String,
    pub ifindex: u32,
    /// "active", "backup", "down", "refused", "ignored" or "unmatched" (as in `status`).
    pub state: &'static str,
    /// One sentence: the answer.
    pub summary: String,
    /// For a refused link, the refusal's kind (see [`crate::Refusal::kind`]).
    pub refusal: Option<&'static str>,
    pub facts: Vec<Fact>,
    /// The one thing to change, when something is to change.
    pub change: Option<String>,
}

/// Everything `explain` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub schema: u32,
    /// Facts about the whole device (kernel, limits, ids, coexistence, NetworkManager).
    pub host: Vec<Fact>,
    pub links: Vec<LinkExplanation>,
}

fn fact(topic: &'static str, text: impl Into<String>) -> Fact {
    Fact {
        topic,
        text: text.into(),
    }
}

/// Explain every non-loopback link (or only `only`, when given).
pub fn explain(cfg: &Config, obs: &Observed, now: Millis, only: Option<&str>) -> Explanation {
    let diagnostics = if obs.ready() && obs.caps.is_some() {
        plan(cfg, obs, now).diagnostics
    } else {
        Default::default()
    };
    let links = assess(cfg, obs)
        .into_iter()
        .filter(|l| only.map_or(true, |n| n == l.name))
        .map(|l| explain_link(cfg, obs, now, &diagnostics, &l))
        .collect();
    Explanation {
        schema: EXPLAIN_SCHEMA,
        host: host_facts(cfg, obs, &diagnostics),
        links,
    }
}

fn host_facts(
    cfg: &Config,
    obs: &Observed,
    diagnostics: &std::collections::BTreeSet<Diagnostic>,
) -> Vec<Fact> {
    let mut out = Vec::new();
    match &obs.caps {
        Some(c) => out.push(fact(
            "kernel",
            format!(
                "MPTCP {}; flags changed in place (set_flags) {}, subflow events {}, fullmesh {}",
                c.description,
                yes(c.set_flags),
                yes(c.events),
                yes(c.fullmesh)
            ),
        )),
        None => out.push(fact("kernel", "MPTCP capabilities not probed yet")),
    }
    if let Some(l) = obs.limits {
        let want = cfg
            .limits
            .subflows
            .map_or(String::new(), |w| format!(" (config: {w})"));
        out.push(fact(
            "limits",
            format!(
                "subflows {}{want}, add_addr_accepted {}",
                l.subflows, l.add_addr_accepted
            ),
        ));
    }
    if let Some(left) = ids_left(obs) {
        out.push(fact(
            "ids",
            format!(
                "{left} of 255 endpoint ids left in this network namespace (Linux 5.10 never reuses one; a reboot \
                 starts over)"
            ),
        ));
    }
    match obs.mptcpd {
        Some(Some(pid)) => out.push(fact(
            "coexistence",
            format!(
                "mptcpd runs (pid {pid}): the agent leaves every endpoint and the limits alone"
            ),
        )),
        Some(None) => out.push(fact("coexistence", "mptcpd is not running")),
        None => {}
    }
    out.push(fact(
        "networkmanager",
        match (&obs.nm, cfg.networkmanager.follow) {
            (_, false) => {
                "not followed (networkmanager.follow = false): the kernel alone decides".to_string()
            }
            (NmObserved::Unknown, _) => "not known yet".to_string(),
            (NmObserved::Absent, _) => {
                "not on the system bus: the kernel alone decides (kernel-only mode)".to_string()
            }
            (NmObserved::Present(p), _) => format!(
                "NetworkManager {} on the bus{}",
                p.version
                    .map_or("(version unknown)".to_string(), |v| v.to_string()),
                if p.startup { ", still starting up" } else { "" }
            ),
        },
    ));
    if let Some(v) = obs.sysctls.get("enabled") {
        out.push(fact("sysctl", format!("net.mptcp.enabled = {v}")));
    }
    // Whatever else the agent reports about the whole device.
    for d in diagnostics {
        if diagnostic_interface(d).is_none()
            && !matches!(
                d,
                Diagnostic::MptcpdRunning { .. } | Diagnostic::RetryLater { .. }
            )
        {
            out.push(fact("config", d.to_string()));
        }
    }
    out
}

/// The interface a diagnostic is about, if it is about one.
fn diagnostic_interface(d: &Diagnostic) -> Option<&str> {
    match d {
        Diagnostic::Refused { interface, .. }
        | Diagnostic::NoSetFlags { interface }
        | Diagnostic::FullmeshUnsupported { interface }
        | Diagnostic::NoRoute { interface, .. }
        | Diagnostic::NoTable { interface }
        | Diagnostic::GaveUp { interface, .. } => Some(interface),
        _ => None,
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn kernel_endpoint<'a>(obs: &'a Observed, addr: &IpAddr) -> Option<&'a KernelEndpoint> {
    obs.endpoints.as_ref()?.values().find(|e| e.addr == *addr)
}

fn explain_link(
    cfg: &Config,
    obs: &Observed,
    now: Millis,
    diagnostics: &std::collections::BTreeSet<Diagnostic>,
    l: &LinkAssessment,
) -> LinkExplanation {
    let mut facts = Vec::new();
    let kind = l
        .device_type
        .map_or("unknown type".to_string(), |t| t.name());
    match &l.rule {
        Some(r) => facts.push(fact(
            "rule",
            format!(
                "[[link]] rule \"{r}\" matches ({kind}{})",
                if l.metered { ", metered" } else { "" }
            ),
        )),
        None => facts.push(fact("rule", format!("no [[link]] rule matches ({kind})"))),
    }
    let mut out = LinkExplanation {
        name: l.name.clone(),
        ifindex: l.ifindex,
        state: "down",
        summary: String::new(),
        refusal: None,
        facts,
        change: None,
    };
    match &l.control {
        Control::Unmatched => {
            out.state = "unmatched";
            out.summary = "no [[link]] rule matches it: the agent does not manage it".into();
            out.change = Some(format!(
                "if it is an uplink: add a [[link]] rule matching \"{}\" to the agent's config",
                l.name
            ));
            return out;
        }
        Control::Ignored => {
            out.state = "ignored";
            out.summary = "its rule says manage = false: the agent leaves it alone".into();
            return out;
        }
        Control::Refused(r) => {
            out.state = "refused";
            out.refusal = Some(r.kind());
            out.summary = format!("left alone: {r}");
            for t in r.explanation() {
                out.facts.push(fact("coexistence", t));
            }
            out.change = Some(r.advice());
            return out;
        }
        Control::Excluded(why) => {
            out.state = "excluded";
            out.summary = format!("never gets an endpoint by default: {why}");
            out.change = Some(format!(
                "if it is an uplink: set allow_virtual = true in the [[link]] rule matching \"{}\"",
                l.name
            ));
            return out;
        }
        Control::Managed(_) => {}
    }
    // Carrier and NetworkManager.
    let link = obs.links.get(&l.ifindex);
    out.facts.push(fact(
        "carrier",
        match (link.is_some_and(|k| k.up), l.carrier) {
            (false, _) => "the link is administratively down".to_string(),
            (true, false) => "no carrier (cable, radio or modem has no link)".to_string(),
            (true, true) => "carrier: yes".to_string(),
        },
    ));
    if let NmObserved::Present(p) = &obs.nm {
        if cfg.networkmanager.follow {
            match p.device(&l.name) {
                Some(d) if d.managed() => {
                    let profile = d.applied.as_ref().map_or(String::new(), |a| {
                        format!(
                            ", profile '{}' (connection.mptcp-flags={:#x})",
                            a.id, a.mptcp_flags
                        )
                    });
                    out.facts.push(fact(
                        "networkmanager",
                        format!("device state {}{profile}", nm_state::name(d.state)),
                    ));
                }
                Some(_) => out.facts.push(fact(
                    "networkmanager",
                    "the device is not managed by NetworkManager: the kernel alone decides",
                )),
                None => out.facts.push(fact(
                    "networkmanager",
                    "NetworkManager does not know this device: the kernel alone decides",
                )),
            }
        }
    }
    // Each family: address, route, endpoint, backoff.
    let (mut active, mut demoted) = (false, false);
    // Wanted endpoints the kernel does not have (yet).
    let mut missing = Vec::new();
    let mut first_absent: Option<(Family, String)> = None;
    for fam in &l.families {
        let f = fam.family;
        match &fam.address {
            Some(a) => out
                .facts
                .push(fact("address", format!("{f}: {} in use", a.addr))),
            None => {
                let unusable: Vec<String> = obs
                    .addresses_of(l.ifindex)
                    .filter(|a| Family::of(&a.addr) == f)
                    .filter_map(|a| address_unsuitable(a).map(|why| format!("{} ({why})", a.addr)))
                    .collect();
                out.facts.push(fact(
                    "address",
                    if unusable.is_empty() {
                        format!("{f}: no address")
                    } else {
                        format!("{f}: no usable address; not used: {}", unusable.join(", "))
                    },
                ));
            }
        }
        if fam.address.is_some() {
            out.facts.push(fact(
                "route",
                match fam.route {
                    RoutePath::Main => format!("{f}: default route via {} in the main table", l.name),
                    RoutePath::Policy { table, gateway } => format!(
                        "{f}: no default route via it in the main table; the agent's table {table} routes its \
                         traffic ({})",
                        gateway.map_or("on-link".to_string(), |g| format!("gateway {g}"))
                    ),
                    RoutePath::Missing => format!(
                        "{f}: no default route via {} in any table and no gateway known",
                        l.name
                    ),
                },
            ));
        }
        let addr = fam.address.as_ref().map(|a| a.addr);
        let present = addr.and_then(|a| kernel_endpoint(obs, &a));
        match (&fam.want, present) {
            (Want::Active(w) | Want::Demoted(w), Some(e)) => {
                let have = e.flags.without(EndpointFlags::IMPLICIT);
                out.facts.push(fact(
                    "endpoint",
                    if flags_as_asked(*w, e.flags, obs.caps.as_ref()) {
                        format!("{f}: endpoint id {} ({}) as the policy asks", e.id, have)
                    } else {
                        format!(
                            "{f}: endpoint id {} has flags \"{}\", the policy asks for \"{}\" (being changed)",
                            e.id, have, w
                        )
                    },
                ));
            }
            (Want::Active(w) | Want::Demoted(w), None) => {
                missing.push(f);
                out.facts.push(fact(
                    "endpoint",
                    format!("{f}: wanted ({w}) but not in the kernel yet"),
                ));
            }
            (Want::Absent(why), _) => {
                out.facts
                    .push(fact("endpoint", format!("{f}: no endpoint: {why}")));
                if first_absent.is_none() {
                    first_absent = Some((f, why.clone()));
                }
            }
        }
        match fam.want {
            Want::Active(_) => active = true,
            Want::Demoted(_) => demoted = true,
            Want::Absent(_) => {}
        }
        if let Some(a) = addr {
            if let Some(r) = obs.readds.get(&a) {
                out.facts.push(fact(
                    "backoff",
                    format!(
                        "{f}: lost subflows re-added {} time(s), last {} ms ago (at most {} per episode)",
                        r.attempts,
                        now.0.saturating_sub(r.last_at.0),
                        cfg.reestablish.max_attempts
                    ),
                ));
            }
            let mut failed: Vec<String> = obs
                .failures
                .iter()
                .filter(|(op, _)| op.concerns(a))
                .map(|(op, fl)| {
                    format!(
                        "`{op}` failed {} time(s): {} (retried with backoff)",
                        fl.count, fl.error
                    )
                })
                .collect();
            // Sorted as text: the order they have always been shown in.
            failed.sort();
            for text in failed {
                out.facts.push(fact("backoff", text));
            }
        }
    }
    if l.families.is_empty() {
        out.facts.push(fact(
            "rule",
            "the rule turns off both IPv4 and IPv6: no endpoint",
        ));
    }
    for d in diagnostics {
        if diagnostic_interface(d) == Some(l.name.as_str()) {
            out.facts.push(fact("config", d.to_string()));
        }
    }
    out.state = if active {
        "active"
    } else if demoted {
        "backup"
    } else {
        "down"
    };
    out.summary = match out.state {
        "active" | "backup" if !missing.is_empty() => {
            format!(
            "usable: an endpoint is wanted for {} but the kernel has none yet (the agent adds it)",
            missing.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" and ")
        )
        }
        "active" => "has its endpoint(s): in use for MPTCP subflows".to_string(),
        "backup" => "no carrier: its endpoint is kept, flagged backup, until the carrier is back"
            .to_string(),
        _ => match &first_absent {
            Some((f, why)) => format!("no endpoint: {f}: {why}"),
            None => "no endpoint".to_string(),
        },
    };
    out.change = change_for(
        obs,
        l,
        active || demoted,
        !missing.is_empty(),
        &first_absent,
        diagnostics,
    );
    out
}

/// The one thing to change for a managed link: the first thing that blocks it.
fn change_for(
    obs: &Observed,
    l: &LinkAssessment,
    fine: bool,
    missing: bool,
    first_absent: &Option<(Family, String)>,
    diagnostics: &std::collections::BTreeSet<Diagnostic>,
) -> Option<String> {
    if diagnostics.contains(&Diagnostic::EndpointIdsUsedUp) {
        return Some(
            "reboot (Linux 5.10 has used all 255 endpoint ids) or run a kernel with the MPTCP backport".into(),
        );
    }
    if diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::GaveUp { interface, .. } if *interface == l.name))
    {
        return Some(format!(
            "find out why subflows from {} keep failing (path, NAT, firewall); the agent tries again when the \
             link or its address changes",
            l.name
        ));
    }
    if fine && !missing {
        return None;
    }
    if fine {
        return Some(
            "nothing, if the agent is running (it adds the endpoint; its log says why not); else start it: \
             `systemctl start mptcp-agent`"
                .into(),
        );
    }
    let link = obs.links.get(&l.ifindex)?;
    if !link.up {
        return Some(format!(
            "bring it up (`ip link set {} up`, or activate its NetworkManager profile)",
            l.name
        ));
    }
    if !l.carrier {
        return Some("restore its carrier (cable, radio signal, modem registration)".into());
    }
    if l.nm_state.is_some_and(|s| s != nm_state::ACTIVATED) {
        return Some(format!(
            "let NetworkManager activate it (`nmcli device connect {}`)",
            l.name
        ));
    }
    if l.families.iter().all(|f| f.address.is_none()) {
        return Some("give it an address (its NetworkManager profile, DHCP or SLAAC)".into());
    }
    if l.families
        .iter()
        .any(|f| f.address.is_some() && f.route == RoutePath::Missing)
    {
        return Some(
            "give it a gateway: its NetworkManager profile's ipv4.gateway / ipv6.gateway, or gateway4 / \
             gateway6 in its [[link]] rule"
                .into(),
        );
    }
    first_absent.as_ref().map(|(f, why)| {
        format!("{f}: {why}; nothing to change in the agent, it acts when this changes")
    })
}
