// SPDX-License-Identifier: MIT OR Apache-2.0
//! The observed state: everything the agent knows about the kernel, NetworkManager and
//! the subflows, built only from [`Event`]s. Together with the config it is the whole
//! input of `plan()`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use crate::{
    event::{Event, KernelSnapshot},
    ids::IdAllocator,
    model::{
        nm_state, Address, AppliedProfile, KernelCaps, KernelEndpoint, Limits, Link,
        MptcpEventKind, NmDevice, NmVersion, Route, Rule, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN,
    },
    nmconf::NmConf,
    op::{Op, OpError},
    time::Millis,
};

/// What is known about NetworkManager.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NmObserved {
    /// Not found out yet: the agent does not act before it knows.
    #[default]
    Unknown,
    /// Not on the bus, or not followed: kernel-only mode.
    Absent,
    Present(NmPresent),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NmPresent {
    pub version: Option<NmVersion>,
    /// NetworkManager is still starting (assuming devices after a restart).
    pub startup: bool,
    /// By D-Bus object path.
    pub devices: BTreeMap<String, NmDevice>,
    /// The device list has been read.
    pub devices_loaded: bool,
}

impl NmPresent {
    /// The device whose IP interface is `ifname`.
    pub fn device(&self, ifname: &str) -> Option<&NmDevice> {
        self.devices.values().find(|d| d.interface == ifname)
    }
}

/// Subflows lost from one local address while their connections lived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Tokens of the connections that lost a subflow from this address.
    pub tokens: BTreeSet<u32>,
    pub since: Millis,
    /// `sk_err` of the latest loss with an error; 0 while every close was without one.
    pub last_error: u32,
}

/// Re-adds done for one address, for backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readds {
    pub attempts: u32,
    pub last_at: Millis,
}

/// How long a subflow must have lived for its loss to start a new episode (see
/// [`Observed::subflows_up`]).
pub const READD_STABLE_MS: u64 = 1_000;

/// Most subflows tracked in [`Observed::subflows_up`]. A subflow whose SUB_CLOSED and
/// CLOSED events were lost (a receive-buffer overrun) is never removed; past this bound the
/// oldest entry goes. Far above what a device carries (8 subflows per connection).
pub const SUBFLOWS_UP_MAX: usize = 4_096;

/// How long a device NetworkManager deconfigured during a carrier loss (see
/// [`Observed::nm_deconfigured`]) waits for NetworkManager to report it before the kernel's
/// view alone decides again. NetworkManager reports a state change within milliseconds;
/// this only bounds the wait should it never do so.
pub const NM_CATCH_UP_MS: u64 = 5_000;

/// A carrier that comes back this close to NetworkManager's carrier-wait (or later) may
/// race its timer: NetworkManager may still take the device down and activate it again.
pub const NM_VERDICT_NEAR_MS: u64 = 500;
/// How long the agent then waits for NetworkManager's report before it adds the endpoint.
pub const NM_VERDICT_HOLD_MS: u64 = 1_000;

/// An op that failed, kept so the same op is retried with backoff instead of in a loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub count: u32,
    pub last_at: Millis,
    pub error: OpError,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub links: BTreeMap<u32, Link>,
    /// By (ifindex, address).
    pub addresses: BTreeMap<(u32, IpAddr), Address>,
    /// Default routes of every table, and all routes outside main/local/default (where
    /// the agent's own policy tables live).
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    pub kernel_synced: bool,

    pub caps: Option<KernelCaps>,
    /// By id; `None` until the first dump.
    pub endpoints: Option<BTreeMap<u8, KernelEndpoint>>,
    pub limits: Option<Limits>,
    pub sysctls: BTreeMap<String, String>,

    pub nm: NmObserved,
    pub nm_conf: NmConf,
    /// `Some(pid)` while mptcpd runs in this namespace; outer `None` = not checked yet.
    pub mptcpd: Option<Option<u32>>,
    /// The kernel's MPTCP blackhole detection, from its MIB counter.
    pub blackhole: crate::blackhole::Blackhole,

    pub losses: BTreeMap<IpAddr, Loss>,
    pub readds: BTreeMap<IpAddr, Readds>,
    pub failures: BTreeMap<Op, Failure>,
    /// When each live subflow was established, by (local address, connection token).
    /// Backoff is for re-adds that do not help: a lost subflow that had lived at least
    /// READD_STABLE_MS ends its address's episode, so the loss gets an immediate re-add; one
    /// reset right after its join (a middlebox that kills joins) keeps backing off.
    pub subflows_up: BTreeMap<(IpAddr, u32), Millis>,
    pub ids: IdAllocator,
    /// The highest endpoint id the kernel has shown. Linux 5.10 numbers endpoints
    /// next_id++ and never reuses one, so this tells how many ids it has left.
    pub highest_endpoint_id: u8,
    /// Links whose address went away while they had no carrier and NetworkManager, as last
    /// reported, still had the device ACTIVATED: its carrier-wait ran out and it took the
    /// IP configuration down; on carrier back it activates the device again, and the
    /// addresses return before its D-Bus reports say so. Until NetworkManager reports the
    /// device again (or NM_CATCH_UP_MS pass) the stale ACTIVATED does not count, so an
    /// endpoint is added once, on the new activation, not added, deleted and added again.
    pub nm_deconfigured: BTreeMap<u32, Millis>,
    /// When each link without carrier lost it.
    pub carrier_lost_at: BTreeMap<u32, Millis>,
    /// Links whose carrier came back about when NetworkManager's carrier-wait ran out,
    /// with the time until which the agent waits for NetworkManager's next report of the
    /// device: whether it kept the device or takes it down to activate it again decides
    /// whether an endpoint added now would live (see NM_VERDICT_NEAR_MS).
    pub nm_verdict: BTreeMap<u32, Millis>,
    /// Addresses (by link) the kernel announced after NetworkManager reported the device
    /// down (UNAVAILABLE, DISCONNECTED) or activating (PREPARE to SECONDARIES), not under a
    /// stale ACTIVATED (`nm_deconfigured`, `nm_verdict`): the IP configuration of its next
    /// activation, which it commits before it reports the activation (D-Bus lags the
    /// kernel's messages) and 3-15 ms before ACTIVATED (lab, NetworkManager 1.42). Such an
    /// address gets its endpoint with carrier and route, the moment NetworkManager's own
    /// MPTCP adds its endpoint, once NetworkManager has reported the activation's profile
    /// (plan: `NmGate::Down`); one that was there before waits for ACTIVATED (it may be the
    /// old configuration). Cleared when the address goes, and when NetworkManager reports
    /// the device ACTIVATED (the normal rule holds), deactivating or failed.
    pub nm_committed: BTreeSet<(u32, IpAddr)>,
    /// The profile NetworkManager last applied to each device (by D-Bus path), for while it
    /// has none: NetworkManager 1.42 runs an activation from DISCONNECTED through its IP
    /// configuration's commit in one go (stages 1 to 3 synchronously, 1-3 ms) and answers
    /// reads only after it, so the commit of `nmcli connection up`, or of the re-activation
    /// after carrier-wait, reaches the agent while the device still reads DISCONNECTED
    /// without a profile. Such an activation nearly always applies the same profile again;
    /// the next report corrects a different one.
    pub nm_last_profile: BTreeMap<String, AppliedProfile>,
}

impl Observed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every input the agent needs before its first decision has arrived.
    pub fn ready(&self) -> bool {
        self.kernel_synced
            && self.caps.is_some()
            && self.endpoints.is_some()
            && self.mptcpd.is_some()
            && match &self.nm {
                NmObserved::Unknown => false,
                NmObserved::Absent => true,
                NmObserved::Present(p) => p.devices_loaded,
            }
    }

    /// What is still missing before the agent acts, for status and logs.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if !self.kernel_synced {
            w.push("rtnetlink dump");
        }
        if self.caps.is_none() {
            w.push("kernel capabilities");
        }
        if self.endpoints.is_none() {
            w.push("endpoint dump");
        }
        if self.mptcpd.is_none() {
            w.push("mptcpd check");
        }
        match &self.nm {
            NmObserved::Unknown => w.push("NetworkManager presence"),
            NmObserved::Present(p) if !p.devices_loaded => w.push("NetworkManager devices"),
            _ => {}
        }
        w
    }

    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    pub fn addresses_of(&self, ifindex: u32) -> impl Iterator<Item = &Address> {
        self.addresses
            .range((ifindex, IpAddr::from([0u8; 4]))..)
            .take_while(move |((i, _), _)| *i == ifindex)
            .map(|(_, a)| a)
    }

    /// Fold one event into the state. `now` stamps losses, re-adds and failures.
    pub fn apply(&mut self, event: &Event, now: Millis) {
        self.nm_deconfigured
            .retain(|_, at| now.since(*at) < NM_CATCH_UP_MS);
        self.nm_verdict.retain(|_, until| now < *until);
        match event {
            Event::KernelSnapshot(KernelSnapshot {
                links,
                addresses,
                routes,
                rules,
            }) => {
                self.links = links.iter().map(|l| (l.ifindex, l.clone())).collect();
                self.addresses = addresses
                    .iter()
                    .map(|a| ((a.ifindex, a.addr), a.clone()))
                    .collect();
                self.routes = routes.iter().filter(|r| keep_route(r)).cloned().collect();
                self.rules = rules.clone();
                self.kernel_synced = true;
            }
            Event::LinkChanged(l) => {
                // Set down, the kernel drops every IPv4 route via the link (fib_disable_ip),
                // without an RTM_DELROUTE for any of them. IPv6 reports its own removals.
                if !l.up {
                    self.forget_ipv4_routes_via(l.ifindex);
                }
                let had_carrier = self.links.get(&l.ifindex).map(Link::has_carrier);
                self.links.insert(l.ifindex, l.clone());
                match (had_carrier, l.has_carrier()) {
                    (Some(true), false) => {
                        self.carrier_lost_at.insert(l.ifindex, now);
                        self.nm_verdict.remove(&l.ifindex);
                    }
                    (Some(false), true) => {
                        let lost = self.carrier_lost_at.remove(&l.ifindex);
                        if let (Some(lost), Some(wait)) = (lost, self.nm_carrier_wait(l)) {
                            if now.since(lost) + NM_VERDICT_NEAR_MS >= wait {
                                self.nm_verdict
                                    .insert(l.ifindex, now.plus(NM_VERDICT_HOLD_MS));
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::LinkRemoved { ifindex } => {
                self.nm_committed.retain(|(i, _)| i != ifindex);
                self.nm_deconfigured.remove(ifindex);
                self.nm_verdict.remove(ifindex);
                self.carrier_lost_at.remove(ifindex);
                self.links.remove(ifindex);
                self.addresses.retain(|(i, _), _| i != ifindex);
                self.routes.retain(|r| r.ifindex != Some(*ifindex));
            }
            Event::AddressAdded(a) => {
                if self.nm_between_activations(a.ifindex) {
                    self.nm_committed.insert((a.ifindex, a.addr));
                }
                self.addresses.insert((a.ifindex, a.addr), a.clone());
            }
            Event::AddressRemoved(a) => {
                self.nm_committed.remove(&(a.ifindex, a.addr));
                if self.nm_took_down(a.ifindex) {
                    self.nm_deconfigured.insert(a.ifindex, now);
                }
                self.addresses.remove(&(a.ifindex, a.addr));
                // The link's last IPv4 address gone: the kernel drops its IPv4 routes the
                // same silent way as on down.
                if a.addr.is_ipv4() && !self.addresses_of(a.ifindex).any(|x| x.addr.is_ipv4()) {
                    self.forget_ipv4_routes_via(a.ifindex);
                }
            }
            Event::RouteAdded(r) => self.add_route(r),
            Event::RouteRemoved(r) => self.routes.retain(|x| !x.same_as(r)),
            Event::RuleAdded(r) => {
                if !self.rules.contains(r) {
                    self.rules.push(r.clone());
                }
            }
            Event::RuleRemoved(r) => self.rules.retain(|x| !same_rule(x, r)),
            Event::Capabilities(c) => self.caps = Some(c.clone()),
            Event::Endpoints(list) => {
                let mut map = BTreeMap::new();
                for e in list {
                    self.ids.bind(e.addr, e.id);
                    self.highest_endpoint_id = self.highest_endpoint_id.max(e.id);
                    map.insert(e.id, e.clone());
                }
                self.endpoints = Some(map);
            }
            Event::Limits(l) => self.limits = Some(*l),
            Event::Sysctls(s) => self.sysctls = s.clone(),
            Event::Mptcp(ev) => self.subflow_event(ev, now),
            Event::NmAppeared { version, startup } => {
                self.nm_last_profile.clear();
                self.nm_deconfigured.clear();
                self.nm_verdict.clear();
                self.nm_committed.clear();
                self.nm = NmObserved::Present(NmPresent {
                    version: *version,
                    startup: *startup,
                    devices: BTreeMap::new(),
                    devices_loaded: false,
                });
            }
            Event::NmStartup(s) => {
                if let NmObserved::Present(p) = &mut self.nm {
                    p.startup = *s;
                }
            }
            Event::NmDevices(list) => {
                if let NmObserved::Present(p) = &mut self.nm {
                    p.devices = list.iter().map(|d| (d.path.clone(), d.clone())).collect();
                    p.devices_loaded = true;
                }
                self.nm_last_profile.clear();
                for d in list {
                    self.remember_profile(d);
                }
                self.nm_deconfigured.clear();
                self.nm_verdict.clear();
                self.nm_committed.clear();
            }
            Event::NmDevice(d) => {
                if let NmObserved::Present(p) = &mut self.nm {
                    p.devices.insert(d.path.clone(), d.clone());
                }
                self.remember_profile(d);
                // NetworkManager has caught up with this device: its state counts again.
                let links = &self.links;
                let other = |i: &u32| links.get(i).map_or(true, |l| l.name != d.interface);
                self.nm_deconfigured.retain(|i, _| other(i));
                self.nm_verdict.retain(|i, _| other(i));
                if !between_activations(d) {
                    self.nm_committed.retain(|(i, _)| other(i));
                }
            }
            Event::NmDeviceRemoved { path } => {
                if let NmObserved::Present(p) = &mut self.nm {
                    p.devices.remove(path);
                }
                self.nm_last_profile.remove(path);
            }
            Event::NmGone => {
                self.nm_last_profile.clear();
                self.nm_deconfigured.clear();
                self.nm_verdict.clear();
                self.nm_committed.clear();
                self.nm = NmObserved::Absent;
            }
            Event::NmConfFiles(files) => self.nm_conf = NmConf::from_files(files),
            Event::Mptcpd(pid) => self.mptcpd = Some(*pid),
            Event::BlackholeCounter { reading, wall_usec } => {
                self.blackhole.observe(reading, now, *wall_usec);
            }
            Event::OpDone { op, error } => self.op_done(op, error.as_ref(), now),
            Event::Tick => {}
        }
    }

    /// The profile NetworkManager applies to this device: the one it reports, or, between
    /// activations, the one it applied last (see `nm_last_profile`).
    pub fn nm_profile<'a>(&'a self, d: &'a NmDevice) -> Option<&'a AppliedProfile> {
        d.applied.as_ref().or_else(|| {
            between_activations(d)
                .then(|| self.nm_last_profile.get(&d.path))
                .flatten()
        })
    }

    fn remember_profile(&mut self, d: &NmDevice) {
        if let Some(a) = &d.applied {
            self.nm_last_profile.insert(d.path.clone(), a.clone());
        }
    }

    /// An address of this link goes while the link has no carrier and NetworkManager (as
    /// last reported) has the device ACTIVATED: NetworkManager's carrier-wait ran out.
    fn nm_took_down(&self, ifindex: u32) -> bool {
        let Some(link) = self.links.get(&ifindex) else {
            return false;
        };
        let NmObserved::Present(p) = &self.nm else {
            return false;
        };
        !link.has_carrier()
            && !p.startup
            && p.device(&link.name)
                .is_some_and(|d| d.managed() && d.state == nm_state::ACTIVATED)
    }

    /// NetworkManager, as last reported, has this link's device between activations (see
    /// [`between_activations`]), is not starting up, and its report is not the stale
    /// ACTIVATED of a device it deconfigured or may be about to (`nm_deconfigured`,
    /// `nm_verdict`).
    fn nm_between_activations(&self, ifindex: u32) -> bool {
        let Some(link) = self.links.get(&ifindex) else {
            return false;
        };
        let NmObserved::Present(p) = &self.nm else {
            return false;
        };
        !p.startup
            && !self.nm_deconfigured.contains_key(&ifindex)
            && !self.nm_verdict.contains_key(&ifindex)
            && p.device(&link.name).is_some_and(between_activations)
    }

    /// NetworkManager's carrier-wait for this link, when NetworkManager has it ACTIVATED
    /// (as last reported) and is not starting up: the time after which it takes the device
    /// down for lack of carrier.
    fn nm_carrier_wait(&self, link: &Link) -> Option<u64> {
        let NmObserved::Present(p) = &self.nm else {
            return None;
        };
        let d = p
            .device(&link.name)
            .filter(|d| !p.startup && d.managed() && d.state == nm_state::ACTIVATED)?;
        Some(
            self.nm_conf
                .carrier_wait_ms(&link.name, Some(d.device_type)),
        )
    }

    fn forget_ipv4_routes_via(&mut self, ifindex: u32) {
        self.routes
            .retain(|r| !(r.ifindex == Some(ifindex) && r.dst.is_ipv4()));
    }

    fn add_route(&mut self, r: &Route) {
        if keep_route(r) && !self.routes.iter().any(|x| x.same_as(r)) {
            self.routes.push(r.clone());
        }
    }

    fn subflow_event(&mut self, ev: &crate::model::MptcpEvent, now: Millis) {
        match ev.kind {
            MptcpEventKind::SubflowClosed => {
                if let (Some(addr), Some(token)) = (ev.saddr, ev.token) {
                    let lived = self
                        .subflows_up
                        .remove(&(addr, token))
                        .map(|t| now.since(t));
                    if lived.is_some_and(|ms| ms >= READD_STABLE_MS) {
                        self.readds.remove(&addr);
                    }
                }
                // Every close counts: with an error (reset, failed join, timeout) or without
                // (the peer closed it, e.g. on a late REMOVE_ADDR from before a flap). Closes
                // caused by the agent's own delete are followed by the add's SF_ESTABLISHED,
                // which clears them, or concern an endpoint that is gone; plan() waits a
                // moment before acting on a close without error.
                if let (Some(addr), Some(token)) = (ev.saddr, ev.token) {
                    let err = ev.error.unwrap_or(0);
                    let loss = self.losses.entry(addr).or_insert_with(|| Loss {
                        tokens: BTreeSet::new(),
                        since: now,
                        last_error: err,
                    });
                    loss.tokens.insert(token);
                    if err != 0 || loss.last_error == 0 {
                        loss.last_error = err;
                    }
                }
            }
            MptcpEventKind::SubflowEstablished => {
                if let (Some(addr), Some(token)) = (ev.saddr, ev.token) {
                    self.forget_loss(addr, token);
                    self.subflows_up.insert((addr, token), now);
                    if self.subflows_up.len() > SUBFLOWS_UP_MAX {
                        let oldest = self.subflows_up.iter().min_by_key(|(_, at)| **at);
                        if let Some(key) = oldest.map(|(k, _)| *k) {
                            self.subflows_up.remove(&key);
                        }
                    }
                }
            }
            MptcpEventKind::Closed => {
                if let Some(token) = ev.token {
                    self.subflows_up.retain(|(_, t), _| *t != token);
                    for loss in self.losses.values_mut() {
                        loss.tokens.remove(&token);
                    }
                    self.losses.retain(|_, l| !l.tokens.is_empty());
                }
            }
            MptcpEventKind::Created
            | MptcpEventKind::Established
            | MptcpEventKind::SubflowPriority
            | MptcpEventKind::Other => {}
        }
    }

    fn forget_loss(&mut self, addr: IpAddr, token: u32) {
        if let Some(loss) = self.losses.get_mut(&addr) {
            loss.tokens.remove(&token);
            if loss.tokens.is_empty() {
                self.losses.remove(&addr);
            }
        }
    }

    fn op_done(&mut self, op: &Op, error: Option<&OpError>, now: Millis) {
        if let Some(error) = error {
            let f = self.failures.entry(op.clone()).or_insert(Failure {
                count: 0,
                last_at: now,
                error: error.clone(),
            });
            f.count += 1;
            f.last_at = now;
            f.error = error.clone();
            return;
        }
        self.failures.remove(op);
        match op {
            Op::SetSysctl { name, value } => {
                self.sysctls.insert(name.clone(), value.clone());
            }
            Op::SetLimits(l) => self.limits = Some(*l),
            Op::DelEndpoint(e) => {
                if let Some(eps) = &mut self.endpoints {
                    eps.remove(&e.id);
                }
                self.losses.remove(&e.addr);
            }
            Op::SetEndpointFlags { endpoint, flags } => {
                if let Some(eps) = &mut self.endpoints {
                    if let Some(e) = eps.get_mut(&endpoint.id) {
                        e.flags = *flags;
                    }
                }
            }
            Op::AddEndpoint(e) => {
                self.ids.bind(e.addr, e.id);
                if let Some(eps) = &mut self.endpoints {
                    eps.insert(e.id, e.clone());
                }
                // A fresh endpoint opens subflows on every connection: old losses are moot,
                // and backoff starts over.
                self.losses.remove(&e.addr);
                self.readds.remove(&e.addr);
            }
            Op::ReaddEndpoint(e) => {
                self.ids.bind(e.addr, e.id);
                if let Some(eps) = &mut self.endpoints {
                    eps.insert(e.id, e.clone());
                }
                self.losses.remove(&e.addr);
                let r = self.readds.entry(e.addr).or_insert(Readds {
                    attempts: 0,
                    last_at: now,
                });
                r.attempts += 1;
                r.last_at = now;
            }
            Op::ResetNeighbours { .. } => {}
            Op::AddRoute(r) => self.add_route(r),
            Op::DelRoute(r) => self.routes.retain(|x| !x.same_as(r)),
            Op::AddRule(r) => {
                if !self.rules.iter().any(|x| same_rule(x, r)) {
                    self.rules.push(r.clone());
                }
            }
            Op::DelRule(r) => self.rules.retain(|x| !same_rule(x, r)),
        }
    }
}

/// NetworkManager has the device down (UNAVAILABLE, DISCONNECTED) or is activating it
/// (PREPARE to SECONDARIES): what it configures now is its next activation's.
fn between_activations(d: &NmDevice) -> bool {
    (nm_state::UNAVAILABLE..=nm_state::SECONDARIES).contains(&d.state)
}

/// Routes worth keeping: defaults of any table (to see where uplinks route) and anything
/// outside the predefined tables (where the agent's per-uplink tables are).
fn keep_route(r: &Route) -> bool {
    r.is_default() || ![TABLE_MAIN, TABLE_LOCAL, TABLE_DEFAULT].contains(&r.table)
}

/// Rules are identified without the protocol: the kernel does not take it into account
/// when deleting either.
pub fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.family == b.family && a.priority == b.priority && a.src == b.src && a.table == b.table
}
