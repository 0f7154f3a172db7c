// SPDX-License-Identifier: MIT OR Apache-2.0
//! The reconcile step's transaction mode and the reload that drives it, against a fake
//! kernel: every change committed, any failure rolled back, the last good config kept.

use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
};

use mptcp_agent_core::{
    config::load as parse, plan, Address, Diagnostic, EndpointFlags, Family, KernelEndpoint,
    KernelSnapshot, Limits, Link, Op, OpError, Route, Rule, TABLE_MAIN,
};

use super::{
    transaction::{inverse, Committed, RolledBack},
    *,
};
use crate::{
    ota::{
        digest,
        tests::{options, write, NEW, OLD},
        LAST_GOOD_FILE,
    },
    service::ConfigSource,
    test_fixtures::{addr, caps, default_via, link, run},
};

// ---------------------------------------------------------------------------------------
// A fake kernel

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct KState {
    links: Vec<Link>,
    addresses: Vec<Address>,
    endpoints: BTreeMap<u8, KernelEndpoint>,
    limits: Option<Limits>,
    sysctls: BTreeMap<String, String>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
}

/// A read of the kernel's state, to make one fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Snapshot,
    Endpoints,
    Limits,
}

struct FakeKernel {
    state: RefCell<KState>,
    /// Ops whose text contains one of these fail.
    fail: RefCell<Vec<String>>,
    /// Reads that fail.
    fail_reads: RefCell<Vec<Read>>,
    log: RefCell<Vec<String>>,
}

impl FakeKernel {
    fn new(state: KState) -> FakeKernel {
        FakeKernel {
            state: RefCell::new(state),
            fail: RefCell::new(Vec::new()),
            fail_reads: RefCell::new(Vec::new()),
            log: RefCell::new(Vec::new()),
        }
    }

    fn fail_on(&self, pattern: &str) {
        self.fail.borrow_mut().push(pattern.to_string());
    }

    fn state(&self) -> KState {
        self.state.borrow().clone()
    }
}

impl Kernel for FakeKernel {
    async fn apply(&self, op: &Op) -> Result<(), OpError> {
        let text = op.to_string();
        self.log.borrow_mut().push(text.clone());
        if self.fail.borrow().iter().any(|p| text.contains(p.as_str())) {
            return Err(OpError::rejected(libc::EIO, "injected failure"));
        }
        self.change(op)
            .map_err(|(errno, message)| OpError::rejected(errno, message))
    }

    async fn snapshot(&self) -> Result<KernelSnapshot, crate::error::Error> {
        if self.fail_reads.borrow().contains(&Read::Snapshot) {
            return Err(crate::error::Error::msg("dumping links: injected failure"));
        }
        let s = self.state.borrow();
        Ok(KernelSnapshot {
            links: s.links.clone(),
            addresses: s.addresses.clone(),
            routes: s.routes.clone(),
            rules: s.rules.clone(),
        })
    }

    async fn endpoints(&self) -> Result<Vec<KernelEndpoint>, crate::error::Error> {
        if self.fail_reads.borrow().contains(&Read::Endpoints) {
            return Err(crate::error::Error::msg(
                "dumping MPTCP endpoints: injected failure",
            ));
        }
        Ok(self.state.borrow().endpoints.values().cloned().collect())
    }

    async fn limits(&self) -> Result<Limits, mptcp_genl::Error> {
        if self.fail_reads.borrow().contains(&Read::Limits) {
            return Err(mptcp_genl::Error::Timeout {
                command: mptcp_genl::Cmd::GetLimits,
                seconds: 1,
            });
        }
        self.state
            .borrow()
            .limits
            .ok_or(mptcp_genl::Error::Decode("no limits".into()))
    }

    fn sysctls(&self, names: &BTreeSet<String>) -> BTreeMap<String, String> {
        self.state
            .borrow()
            .sysctls
            .iter()
            .filter(|(k, _)| names.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl FakeKernel {
    /// Carry out `op` on the state, or the errno and words a kernel would answer.
    fn change(&self, op: &Op) -> Result<(), (i32, &'static str)> {
        let mut s = self.state.borrow_mut();
        match op {
            Op::SetSysctl { name, value } => {
                s.sysctls.insert(name.clone(), value.clone());
            }
            Op::SetLimits(l) => s.limits = Some(*l),
            Op::DelEndpoint(e) => {
                s.endpoints
                    .remove(&e.id)
                    .ok_or((libc::ENOENT, "address not found"))?;
            }
            Op::SetEndpointFlags { endpoint, flags } => {
                let e = s
                    .endpoints
                    .values_mut()
                    .find(|x| x.addr == endpoint.addr)
                    .ok_or((libc::ENOENT, "address not found"))?;
                e.flags = *flags;
            }
            Op::AddEndpoint(e) => {
                if s.endpoints.contains_key(&e.id) || s.endpoints.values().any(|x| x.addr == e.addr)
                {
                    return Err((libc::EEXIST, "exists"));
                }
                s.endpoints.insert(e.id, e.clone());
            }
            Op::ReaddEndpoint(e) => {
                s.endpoints.insert(e.id, e.clone());
            }
            Op::ResetNeighbours { .. } => {}
            Op::AddRoute(r) => s.routes.push(r.clone()),
            Op::DelRoute(r) => {
                let before = s.routes.len();
                s.routes.retain(|x| !x.same_as(r));
                if before == s.routes.len() {
                    return Err((libc::ESRCH, "no such route"));
                }
            }
            Op::AddRule(r) => s.rules.push(r.clone()),
            Op::DelRule(r) => {
                let before = s.rules.len();
                s.rules
                    .retain(|x| !mptcp_agent_core::state::same_rule(x, r));
                if before == s.rules.len() {
                    return Err((libc::ENOENT, "no such rule"));
                }
            }
        }
        Ok(())
    }
}

fn clock() -> Millis {
    Millis(10_000)
}

// ---------------------------------------------------------------------------------------
// A small world: wlan0 and wwan0 with carrier, addresses and main default routes;
// ppp0 point-to-point without a default route (needs policy routing).

const WLAN: u32 = 2;
const WWAN: u32 = 3;
const PPP: u32 = 4;

fn initial_kernel() -> KState {
    KState {
        links: vec![link(WLAN, "wlan0"), link(WWAN, "wwan0"), link(PPP, "ppp0")],
        addresses: vec![
            addr(WLAN, "10.1.0.2"),
            addr(WWAN, "10.2.0.2"),
            addr(PPP, "10.4.0.2"),
        ],
        endpoints: BTreeMap::new(),
        limits: Some(Limits {
            subflows: 2,
            add_addr_accepted: 0,
        }),
        sysctls: [("enabled", "1"), ("add_addr_timeout", "120")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        routes: vec![default_via(WLAN, "10.1.0.1"), default_via(WWAN, "10.2.0.1")],
        rules: Vec::new(),
    }
}

fn observed(k: &FakeKernel) -> Observed {
    let st = k.state();
    let mut obs = Observed::new();
    let t = clock();
    obs.apply(
        &Event::KernelSnapshot(KernelSnapshot {
            links: st.links.clone(),
            addresses: st.addresses.clone(),
            routes: st.routes.clone(),
            rules: st.rules.clone(),
        }),
        t,
    );
    obs.apply(
        &Event::Capabilities(caps(&["enabled", "add_addr_timeout"], "fake")),
        t,
    );
    obs.apply(
        &Event::Endpoints(st.endpoints.values().cloned().collect()),
        t,
    );
    obs.apply(&Event::Limits(st.limits.unwrap()), t);
    obs.apply(&Event::Sysctls(st.sysctls.clone()), t);
    obs.apply(&Event::Mptcpd(None), t);
    obs.apply(&Event::NmGone, t);
    assert!(obs.ready(), "{:?}", obs.waiting_for());
    obs
}

/// The daemon's transaction, on a daemon made of these parts (taken apart again after, so
/// that the tests look at the config and the observed state).
async fn apply_transaction<C: Fn() -> Millis + Copy + 'static>(
    new: Config,
    cfg: &mut Config,
    obs: &mut Observed,
    k: &FakeKernel,
    clock: &C,
) -> Result<Committed, RolledBack> {
    let mut d = Daemon::new(std::mem::take(cfg), k, Box::new(*clock));
    d.obs = std::mem::replace(obs, Observed::new());
    let r = d.transaction(new).await;
    *cfg = d.cfg;
    *obs = d.obs;
    r
}

/// The kernel and observed state with OLD applied (wlan0's endpoint in place).
fn settled_on_old() -> (FakeKernel, Config, Observed) {
    let k = FakeKernel::new(initial_kernel());
    let mut obs = observed(&k);
    let mut cfg = Config::default();
    run(apply_transaction(
        parse(OLD).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock,
    ))
    .unwrap();
    assert_eq!(k.state().endpoints.len(), 1, "{:?}", k.state());
    k.log.borrow_mut().clear();
    (k, cfg, obs)
}

#[test]
fn transaction_commits_every_change() {
    let (k, mut cfg, mut obs) = settled_on_old();
    let c = run(apply_transaction(
        parse(NEW).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock,
    ))
    .unwrap();
    assert!(!c.deferred);
    let st = k.state();
    assert_eq!(
        st.limits,
        Some(Limits {
            subflows: 4,
            add_addr_accepted: 1
        })
    );
    assert_eq!(
        st.sysctls.get("add_addr_timeout").map(String::as_str),
        Some("60")
    );
    let addrs: Vec<String> = st
        .endpoints
        .values()
        .map(|e| format!("{} {}", e.addr, e.flags))
        .collect();
    assert!(
        addrs.contains(&"10.1.0.2 subflow backup".to_string()),
        "{addrs:?}"
    );
    assert!(addrs.contains(&"10.2.0.2 subflow".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"10.4.0.2 subflow".to_string()), "{addrs:?}");
    // ppp0 has no default route in main: a table of its own and a source rule.
    assert_eq!(st.rules.len(), 1, "{st:?}");
    assert!(
        st.routes
            .iter()
            .any(|r| r.ifindex == Some(PPP) && r.table != TABLE_MAIN),
        "{st:?}"
    );
    assert_eq!(c.ops, k.log.borrow().len());
    assert_eq!(cfg, parse(NEW).unwrap());
}

/// Every op of the NEW transaction in turn fails: the kernel must end exactly as it was,
/// and the old config stays.
#[test]
fn any_failure_rolls_everything_back() {
    let (probe, mut cfg, mut obs) = settled_on_old();
    run(apply_transaction(
        parse(NEW).unwrap(),
        &mut cfg,
        &mut obs,
        &probe,
        &clock,
    ))
    .unwrap();
    let ops: Vec<String> = probe.log.borrow().clone();
    assert!(ops.len() >= 7, "{ops:?}");
    for (i, failing) in ops.iter().enumerate() {
        let (k, mut cfg, mut obs) = settled_on_old();
        let before = k.state();
        let old_cfg = cfg.clone();
        k.fail_on(failing);
        let rb = run(apply_transaction(
            parse(NEW).unwrap(),
            &mut cfg,
            &mut obs,
            &k,
            &clock,
        ))
        .expect_err(&format!("failing `{failing}` must roll back"));
        assert_eq!(rb.op, *failing);
        // Neighbour resets have nothing to undo.
        let undoable = ops[..i]
            .iter()
            .filter(|o| !o.starts_with("neighbour flush"))
            .count();
        assert_eq!(rb.undone, undoable, "{rb}");
        assert!(rb.undo_errors.is_empty(), "{rb}");
        let after = k.state();
        assert_eq!(
            after.endpoints, before.endpoints,
            "endpoints after failing `{failing}`"
        );
        assert_eq!(
            after.limits, before.limits,
            "limits after failing `{failing}`"
        );
        assert_eq!(
            after.sysctls, before.sysctls,
            "sysctls after failing `{failing}`"
        );
        assert_eq!(after.rules, before.rules, "rules after failing `{failing}`");
        let mut r1 = after.routes.clone();
        let mut r2 = before.routes.clone();
        r1.sort();
        r2.sort();
        assert_eq!(r1, r2, "routes after failing `{failing}`");
        assert_eq!(cfg, old_cfg);
        assert!(rb.to_string().contains("earlier change(s) undone"), "{rb}");
        // The observed state follows the kernel: planning with the old config wants nothing.
        assert!(
            plan(&cfg, &obs, clock()).steps.is_empty(),
            "{:?}",
            plan(&cfg, &obs, clock()).steps
        );
    }
}

#[test]
fn failed_config_fails_again_on_the_next_reload() {
    let (k, mut cfg, mut obs) = settled_on_old();
    k.fail_on("sysctl net.mptcp.add_addr_timeout=60");
    assert!(run(apply_transaction(
        parse(NEW).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock
    ))
    .is_err());
    // Within the failure backoff: the op is not held back, it is tried and fails again.
    assert!(run(apply_transaction(
        parse(NEW).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock
    ))
    .is_err());
    assert_eq!(k.state().limits, initial_kernel().limits);
}

#[test]
fn an_op_failing_before_does_not_block_a_new_config() {
    // The old config wants a sysctl the kernel refuses; the new one only changes limits.
    let old = "schema_version = 1\n[sysctl]\nadd_addr_timeout = 61\n";
    let new = "schema_version = 1\n[sysctl]\nadd_addr_timeout = 61\n[limits]\nsubflows = 3\n";
    let k = FakeKernel::new(initial_kernel());
    k.fail_on("add_addr_timeout=61");
    let mut obs = observed(&k);
    let mut cfg = parse(old).unwrap();
    let c = run(apply_transaction(
        parse(new).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock,
    ))
    .unwrap();
    assert_eq!(c.ops, 1);
    assert_eq!(k.state().limits.unwrap().subflows, 3);
}

#[test]
fn before_the_first_reconciliation_the_config_is_just_taken() {
    let k = FakeKernel::new(initial_kernel());
    let mut obs = Observed::new();
    let mut cfg = Config::default();
    let c = run(apply_transaction(
        parse(NEW).unwrap(),
        &mut cfg,
        &mut obs,
        &k,
        &clock,
    ))
    .unwrap();
    assert!(c.deferred);
    assert!(k.log.borrow().is_empty());
    assert_eq!(cfg, parse(NEW).unwrap());
}

#[test]
fn inverses() {
    let (k, _cfg, obs) = settled_on_old();
    let e = k.state().endpoints.values().next().unwrap().clone();
    assert_eq!(
        inverse(&Op::AddEndpoint(e.clone()), &obs),
        Some(Op::DelEndpoint(e.clone()))
    );
    let mut implicit = e.clone();
    implicit.flags = EndpointFlags::IMPLICIT.union(EndpointFlags::SUBFLOW);
    assert_eq!(
        inverse(&Op::DelEndpoint(implicit), &obs),
        Some(Op::AddEndpoint(e.clone()))
    );
    let set = Op::SetEndpointFlags {
        endpoint: e.clone(),
        flags: EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP),
    };
    match inverse(&set, &obs) {
        Some(Op::SetEndpointFlags { endpoint, flags }) => {
            assert_eq!(flags, e.flags);
            assert_eq!(
                endpoint.flags,
                EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        inverse(
            &Op::SetLimits(Limits {
                subflows: 8,
                add_addr_accepted: 8
            }),
            &obs
        ),
        Some(Op::SetLimits(Limits {
            subflows: 2,
            add_addr_accepted: 0
        }))
    );
    assert_eq!(
        inverse(
            &Op::SetSysctl {
                name: "add_addr_timeout".into(),
                value: "1".into()
            },
            &obs
        ),
        Some(Op::SetSysctl {
            name: "add_addr_timeout".into(),
            value: "120".into()
        })
    );
    assert_eq!(
        inverse(
            &Op::SetSysctl {
                name: "unknown".into(),
                value: "1".into()
            },
            &obs
        ),
        None
    );
    let r = default_via(WLAN, "10.1.0.1");
    assert_eq!(
        inverse(&Op::AddRoute(r.clone()), &obs),
        Some(Op::DelRoute(r.clone()))
    );
    assert_eq!(
        inverse(&Op::DelRoute(r.clone()), &obs),
        Some(Op::AddRoute(r))
    );
    let mut readd = e.clone();
    readd.flags = EndpointFlags::SIGNAL;
    assert_eq!(
        inverse(&Op::ReaddEndpoint(readd), &obs),
        Some(Op::ReaddEndpoint(e))
    );
}

/// `reload` on a daemon made of these parts, as `apply_transaction`.
async fn reload_parts(
    lc: &mut Lifecycle,
    why: &str,
    skip_unchanged: bool,
    cfg: &mut Config,
    obs: &mut Observed,
    k: &FakeKernel,
) -> Result<String, AgentError> {
    let mut d = Daemon::new(std::mem::take(cfg), k, Box::new(clock));
    d.obs = std::mem::replace(obs, Observed::new());
    let r = reload(&mut d, lc, why, skip_unchanged).await;
    *cfg = d.cfg;
    *obs = d.obs;
    r
}

#[test]
fn reload_rejects_or_applies_and_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let opts = options(dir.path());
    write(&opts.config, OLD, 0o600);
    let k = FakeKernel::new(initial_kernel());
    let mut obs = observed(&k);
    run(async {
        let (mut lc, mut cfg) = Lifecycle::start(options(dir.path()));
        // Invalid: rejected with the position, nothing touched, last good in use.
        write(
            &opts.config,
            "schema_version = 1\n[[link]]\ninterfaces = [\"wl[an\"]\nflags = [\"subflow\"]\n",
            0o600,
        );
        let e = reload_parts(&mut lc, "test", false, &mut cfg, &mut obs, &k)
            .await
            .unwrap_err();
        match &e {
            AgentError::ConfigRejected(m) => assert!(m.contains("agent.toml:3:15:"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(k.log.borrow().is_empty());
        assert_eq!(cfg, parse(OLD).unwrap());
        assert_eq!(lc.info.source, ConfigSource::LastGood);
        assert!(lc.info.last_error.contains("wl[an"));

        // Valid: applied, saved as last good, error cleared.
        write(&opts.config, NEW, 0o600);
        let d = reload_parts(&mut lc, "test", false, &mut cfg, &mut obs, &k)
            .await
            .unwrap();
        assert_eq!(d, digest(NEW));
        assert_eq!(cfg, parse(NEW).unwrap());
        assert_eq!(lc.info.source, ConfigSource::File);
        assert!(lc.info.last_error.is_empty());
        assert_eq!(
            std::fs::read_to_string(opts.state_dir.join(LAST_GOOD_FILE)).unwrap(),
            NEW
        );
        assert!(k.state().endpoints.len() >= 3);

        // Unchanged file on a file event: nothing happens.
        k.log.borrow_mut().clear();
        assert_eq!(
            reload_parts(&mut lc, "test", true, &mut cfg, &mut obs, &k)
                .await
                .unwrap(),
            digest(NEW)
        );
        assert!(k.log.borrow().is_empty());

        // Valid but a kernel op fails: rolled back, last good unchanged.
        let third = NEW.replace("subflows = 4", "subflows = 5");
        write(&opts.config, &third, 0o600);
        k.fail_on("limits set subflows 5");
        let before = k.state();
        let e = reload_parts(&mut lc, "test", false, &mut cfg, &mut obs, &k)
            .await
            .unwrap_err();
        assert!(
            matches!(e, AgentError::ApplyFailed(ref m) if m.contains("limits set subflows 5")),
            "{e:?}"
        );
        assert_eq!(k.state(), before);
        assert_eq!(cfg, parse(NEW).unwrap());
        assert_eq!(lc.info.source, ConfigSource::LastGood);
        assert_eq!(
            std::fs::read_to_string(opts.state_dir.join(LAST_GOOD_FILE)).unwrap(),
            NEW
        );
    });
}

// ---------------------------------------------------------------------------------------
// Resync and the missing-route delay, on a daemon with a clock the test moves

#[derive(Clone)]
struct FakeClock(Rc<Cell<Millis>>);

impl FakeClock {
    fn new() -> FakeClock {
        FakeClock(Rc::new(Cell::new(clock())))
    }

    fn boxed(&self) -> Box<dyn Fn() -> Millis> {
        let c = self.0.clone();
        Box::new(move || c.get())
    }

    fn advance(&self, ms: u64) {
        self.0.set(self.0.get().plus(ms));
    }
}

/// A daemon on NEW after its first reconciliation.
fn daemon_on_new<'k>(k: &'k FakeKernel, t: &FakeClock) -> Daemon<&'k FakeKernel> {
    let mut d = Daemon::new(parse(NEW).unwrap(), k, t.boxed());
    d.obs = observed(k);
    run(d.reconcile());
    d
}

/// wwan0's endpoint fails to be added: one operation failure, held back for a while.
fn daemon_with_a_failure<'k>(k: &'k FakeKernel, t: &FakeClock) -> Daemon<&'k FakeKernel> {
    k.fail_on("10.2.0.2");
    let mut d = daemon_on_new(k, t);
    assert_eq!(d.obs.failures.len(), 1, "{:?}", d.obs.failures);
    k.fail.borrow_mut().clear();
    k.log.borrow_mut().clear();
    run(d.reconcile());
    assert!(k.log.borrow().is_empty(), "held back: {:?}", k.log.borrow());
    d
}

/// Changes behind the agent's back: a new link with an address and a default route,
/// wlan0's endpoint gone, other limits and sysctl values.
fn change_behind_the_agents_back(k: &FakeKernel) {
    let mut s = k.state.borrow_mut();
    s.links.push(link(5, "eth0"));
    s.addresses.push(addr(5, "10.5.0.2"));
    s.routes.push(default_via(5, "10.5.0.1"));
    s.endpoints.retain(|_, e| e.addr.to_string() != "10.1.0.2");
    s.limits = Some(Limits {
        subflows: 1,
        add_addr_accepted: 0,
    });
    s.sysctls.insert("add_addr_timeout".into(), "90".into());
}

/// The parts of the observed state a resync reads.
fn kernel_view(o: &Observed) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        (&o.links, &o.addresses, &o.routes, &o.rules),
        (&o.endpoints, o.limits, &o.sysctls),
    )
}

#[test]
fn resync_rereads_everything_and_retries_failed_operations_at_once() {
    let k = FakeKernel::new(initial_kernel());
    let t = FakeClock::new();
    let mut d = daemon_with_a_failure(&k, &t);
    change_behind_the_agents_back(&k);
    let n_eps = k.state().endpoints.len();

    let summary = run(d.resync()).unwrap();
    assert_eq!(
        summary,
        format!("re-read 4 links, 4 addresses, {n_eps} endpoints; 1 failed operation(s) retried")
    );
    assert!(d.obs.failures.is_empty(), "{:?}", d.obs.failures);
    let read_now = observed(&k);
    assert_eq!(kernel_view(&d.obs), kernel_view(&read_now));

    // Same instant, still within the failure's backoff: the operation is tried now.
    run(d.reconcile());
    let log = k.log.borrow().clone();
    assert!(log.iter().any(|o| o.contains("10.2.0.2")), "{log:?}");
    let st = k.state();
    let addrs: BTreeSet<String> = st.endpoints.values().map(|e| e.addr.to_string()).collect();
    for a in ["10.1.0.2", "10.2.0.2", "10.4.0.2"] {
        assert!(addrs.contains(a), "{a} in {addrs:?}");
    }
    assert_eq!(st.limits.unwrap().subflows, 4);
    assert_eq!(st.sysctls["add_addr_timeout"], "60");
    assert!(d.obs.failures.is_empty(), "{:?}", d.obs.failures);
}

#[test]
fn a_failed_resync_read_says_which_and_changes_nothing() {
    for read in [Read::Snapshot, Read::Endpoints, Read::Limits] {
        let k = FakeKernel::new(initial_kernel());
        let t = FakeClock::new();
        let mut d = daemon_with_a_failure(&k, &t);
        change_behind_the_agents_back(&k);
        k.fail_reads.borrow_mut().push(read);
        let before = d.obs.clone();

        let e = run(d.resync()).unwrap_err();
        match (read, &e) {
            (Read::Snapshot, ResyncError::Snapshot(_))
            | (Read::Endpoints, ResyncError::Endpoints(_))
            | (Read::Limits, ResyncError::Limits(_)) => {}
            _ => panic!("{read:?} failed, got {e:?}"),
        }
        let expected = match read {
            Read::Snapshot => "dumping links: injected failure",
            Read::Endpoints => "dumping MPTCP endpoints: injected failure",
            Read::Limits => "reading MPTCP limits: no reply from the kernel to ",
        };
        assert!(e.to_string().starts_with(expected), "{read:?}: {e}");
        // Nothing read is applied, and the failure still waits for its backoff.
        assert_eq!(d.obs, before, "{read:?}");
        run(d.reconcile());
        assert!(k.log.borrow().is_empty(), "{read:?}: {:?}", k.log.borrow());
    }
}

fn wwan0_no_route() -> Diagnostic {
    Diagnostic::NoRoute {
        interface: "wwan0".into(),
        family: Family::V4,
    }
}

/// wwan0's default route goes (or comes back), in the kernel and as its event.
fn wwan0_route(k: &FakeKernel, d: &mut Daemon<&FakeKernel>, present: bool) {
    let r = default_via(WWAN, "10.2.0.1");
    let mut s = k.state.borrow_mut();
    s.routes.retain(|x| !x.same_as(&r));
    if present {
        s.routes.push(r.clone());
        d.apply(Event::RouteAdded(r));
    } else {
        d.apply(Event::RouteRemoved(r));
    }
}

/// Time passes to `t0 + ms`, and the daemon wakes up as the loop would.
fn wake(d: &mut Daemon<&FakeKernel>, t: &FakeClock, t0: Millis, ms: u64) {
    t.advance(t0.plus(ms).since(d.now()));
    d.apply(Event::Tick);
    run(d.reconcile());
}

#[test]
fn a_missing_route_is_reported_once_it_lasts() {
    let k = FakeKernel::new(initial_kernel());
    let t = FakeClock::new();
    let mut d = daemon_on_new(&k, &t);
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, None);

    wwan0_route(&k, &mut d, false);
    let t0 = d.now();
    let due = t0.plus(reconcile::NO_ROUTE_REPORT_MS);
    run(d.reconcile());
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, Some(due));

    wake(&mut d, &t, t0, reconcile::NO_ROUTE_REPORT_MS - 1);
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, Some(due));

    wake(&mut d, &t, t0, reconcile::NO_ROUTE_REPORT_MS);
    assert_eq!(d.reported, BTreeSet::from([wwan0_no_route()]));
    assert_eq!(d.wake_at, None);

    // Resolved when the route is back.
    t.advance(1);
    wwan0_route(&k, &mut d, true);
    run(d.reconcile());
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, None);
}

#[test]
fn a_route_back_within_the_delay_is_never_reported() {
    let k = FakeKernel::new(initial_kernel());
    let t = FakeClock::new();
    let mut d = daemon_on_new(&k, &t);
    let t0 = d.now();
    let half = reconcile::NO_ROUTE_REPORT_MS / 2;

    wwan0_route(&k, &mut d, false);
    run(d.reconcile());
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    t.advance(half);
    wwan0_route(&k, &mut d, true);
    run(d.reconcile());
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, None);
    wake(&mut d, &t, t0, 2 * reconcile::NO_ROUTE_REPORT_MS);
    assert!(d.reported.is_empty(), "{:?}", d.reported);

    // Gone again: the delay starts from now, not from the first time.
    let t1 = d.now();
    wwan0_route(&k, &mut d, false);
    run(d.reconcile());
    assert_eq!(d.wake_at, Some(t1.plus(reconcile::NO_ROUTE_REPORT_MS)));
    wake(&mut d, &t, t1, half);
    assert!(d.reported.is_empty(), "{:?}", d.reported);
    assert_eq!(d.wake_at, Some(t1.plus(reconcile::NO_ROUTE_REPORT_MS)));
}
