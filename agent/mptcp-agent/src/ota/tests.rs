// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config lifecycle without a kernel: transactions and rollback against a fake kernel,
//! last good config, start-up fallbacks, the file watch, shipped configs.

use std::{
    cell::RefCell,
    collections::BTreeMap,
    net::IpAddr,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::Path,
};

use mptcp_agent_core::{
    config::load as parse, EndpointFlags, Family, KernelCaps, KernelSnapshot, Limits, Route, Rule,
    TABLE_MAIN,
};

use super::*;
use crate::test_fixtures::{addr, link};

// ---------------------------------------------------------------------------------------
// A fake kernel

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct KState {
    endpoints: BTreeMap<u8, KernelEndpoint>,
    limits: Option<Limits>,
    sysctls: BTreeMap<String, String>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
}

struct FakeKernel {
    state: RefCell<KState>,
    /// Ops whose text contains one of these fail.
    fail: RefCell<Vec<String>>,
    log: RefCell<Vec<String>>,
}

impl FakeKernel {
    fn new(state: KState) -> FakeKernel {
        FakeKernel {
            state: RefCell::new(state),
            fail: RefCell::new(Vec::new()),
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

    async fn endpoints(&self) -> Option<Vec<KernelEndpoint>> {
        Some(self.state.borrow().endpoints.values().cloned().collect())
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

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
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

fn default_via(ifindex: u32, gw: &str) -> Route {
    let gw: IpAddr = gw.parse().unwrap();
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

fn initial_kernel() -> KState {
    KState {
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
            links: vec![link(WLAN, "wlan0"), link(WWAN, "wwan0"), link(PPP, "ppp0")],
            addresses: vec![
                addr(WLAN, "10.1.0.2"),
                addr(WWAN, "10.2.0.2"),
                addr(PPP, "10.4.0.2"),
            ],
            routes: st.routes.clone(),
            rules: st.rules.clone(),
        }),
        t,
    );
    obs.apply(
        &Event::Capabilities(KernelCaps {
            set_flags: true,
            events: true,
            fullmesh: true,
            ids_run_out: false,
            laminar: false,
            laminar_probe: String::new(),
            sysctls: ["enabled".to_string(), "add_addr_timeout".to_string()].into(),
            description: "fake".into(),
        }),
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

const OLD: &str = r#"schema_version = 1
[limits]
subflows = 2
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow"]
"#;

const NEW: &str = r#"schema_version = 1
[limits]
subflows = 4
add_addr_accepted = 1
[sysctl]
add_addr_timeout = 60
[[link]]
name = "wifi"
interfaces = ["wlan*"]
flags = ["subflow", "backup"]
[[link]]
name = "cellular"
interfaces = ["wwan*"]
flags = ["subflow"]
[[link]]
name = "ppp"
interfaces = ["ppp*"]
flags = ["subflow"]
"#;

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

// ---------------------------------------------------------------------------------------
// Files

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn shipped_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let b = built_in();
    assert!(!b.config.links.is_empty());
    assert_eq!(b.text, BUILT_IN);
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("conf/examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!l.config.links.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3, "conf/examples has {n} configs");
    // Every key of the schema appears (set or commented out) in the annotated default.
    for key in [
        "schema_version",
        "[networkmanager]",
        "follow",
        "conf_paths",
        "[limits]",
        "subflows",
        "add_addr_accepted",
        "[sysctl]",
        "enabled",
        "add_addr_timeout",
        "checksum_enabled",
        "allow_join_initial_addr_port",
        "stale_loss_cnt",
        "scheduler",
        "close_timeout",
        "blackhole_timeout",
        "syn_retrans_before_tcp_fallback",
        "[routing]",
        "table_base",
        "rule_priority",
        "protocol",
        "[reestablish]",
        "initial_delay_ms",
        "max_delay_ms",
        "[[link]]",
        "name",
        "interfaces",
        "device_types",
        "metered",
        "manage",
        "flags",
        "on_carrier_loss",
        "ipv4",
        "ipv6",
        "metered_backup",
        "allow_virtual",
    ] {
        assert!(
            BUILT_IN.contains(key),
            "conf/agent.toml does not document {key}"
        );
    }
}

#[test]
fn digest_is_stable_and_content_bound() {
    assert_eq!(digest(""), "fnv1a64:cbf29ce484222325");
    assert_eq!(digest("a"), "fnv1a64:af63dc4c8601ec8c");
    assert_ne!(
        digest("schema_version = 1\n"),
        digest("schema_version = 1 \n")
    );
}

#[test]
fn last_good_is_saved_atomically_and_privately() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state/nested");
    save_last_good(&state, "schema_version = 1\n").unwrap();
    let p = state.join(LAST_GOOD_FILE);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "schema_version = 1\n");
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    save_last_good(&state, "schema_version = 1\n# two\n").unwrap();
    assert!(std::fs::read_to_string(&p).unwrap().ends_with("# two\n"));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(load(&p).is_ok());
}

fn options(dir: &Path) -> Options {
    Options {
        config: dir.join("etc/agent.toml"),
        state_dir: dir.join("state"),
        dbus: false,
    }
}

#[test]
fn start_falls_back_to_last_good_then_built_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let opts = options(dir.path());
    // Valid file: runs, and becomes the last good config.
    write(&opts.config, OLD, 0o644);
    let (lc, cfg) = run(Lifecycle::start(options(dir.path())));
    assert_eq!(cfg, parse(OLD).unwrap());
    assert_eq!(lc.info.source, ConfigSource::File);
    assert_eq!(lc.info.digest, digest(OLD));
    assert_eq!(
        std::fs::read_to_string(opts.state_dir.join(LAST_GOOD_FILE)).unwrap(),
        OLD
    );
    drop(lc);

    // Broken file: the last good one runs; the error names the position.
    write(
        &opts.config,
        "schema_version = 1\n[limits]\nsubflows = 99\n",
        0o644,
    );
    let (lc, cfg) = run(Lifecycle::start(options(dir.path())));
    assert_eq!(cfg, parse(OLD).unwrap());
    assert_eq!(lc.info.source, ConfigSource::LastGood);
    assert!(
        lc.info
            .last_error
            .contains("agent.toml:3:12: limits.subflows = 99"),
        "{}",
        lc.info.last_error
    );
    assert_eq!(lc.info.digest, digest(OLD));
    drop(lc);

    // World-writable file and no last good config: the built-in default runs.
    write(&opts.config, OLD, 0o666);
    std::fs::remove_file(opts.state_dir.join(LAST_GOOD_FILE)).unwrap();
    let (lc, cfg) = run(Lifecycle::start(options(dir.path())));
    assert_eq!(cfg, built_in().config);
    assert_eq!(lc.info.source, ConfigSource::BuiltIn);
    assert!(
        lc.info.last_error.contains("world-writable"),
        "{}",
        lc.info.last_error
    );
    drop(lc);

    // An unsafe last good file is not used either.
    write(&opts.config, "garbage", 0o644);
    write(&opts.state_dir.join(LAST_GOOD_FILE), OLD, 0o666);
    let (lc, _) = run(Lifecycle::start(options(dir.path())));
    assert_eq!(lc.info.source, ConfigSource::BuiltIn);
}

#[test]
fn reload_rejects_or_applies_and_keeps_last_good() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    let opts = options(dir.path());
    write(&opts.config, OLD, 0o600);
    let k = FakeKernel::new(initial_kernel());
    let mut obs = observed(&k);
    let start = Instant::now();
    run(async {
        let (mut lc, mut cfg) = Lifecycle::start(options(dir.path())).await;
        // Invalid: rejected with the position, nothing touched, last good in use.
        write(
            &opts.config,
            "schema_version = 1\n[[link]]\ninterfaces = [\"wl[an\"]\nflags = [\"subflow\"]\n",
            0o600,
        );
        let e = lc
            .reload("test", false, &mut cfg, &mut obs, &k, start)
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
        let d = lc
            .reload("test", false, &mut cfg, &mut obs, &k, start)
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
            lc.reload("test", true, &mut cfg, &mut obs, &k, start)
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
        let e = lc
            .reload("test", false, &mut cfg, &mut obs, &k, start)
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
// The watch

#[test]
fn watcher_sees_rename_and_in_place_write_only_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    write(&path, OLD, 0o600);
    run(async {
        let mut w = Watcher::new(&path).unwrap();
        let bound = Duration::from_secs(3);
        // Atomic replace.
        let tmp = dir.path().join(".agent.toml.new");
        write(&tmp, NEW, 0o600);
        std::fs::rename(&tmp, &path).unwrap();
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("rename seen");
        // In-place write in several pieces: one change after the writer is done.
        let t0 = tokio::time::Instant::now();
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            for chunk in OLD.as_bytes().chunks(16) {
                f.write_all(chunk).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("in-place write seen");
        assert!(t0.elapsed() >= DEBOUNCE, "debounced");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), w.changed())
                .await
                .is_err(),
            "one change per write burst"
        );
        // Other files in the directory are not the config.
        write(&dir.path().join("other.toml"), "x", 0o600);
        assert!(
            tokio::time::timeout(Duration::from_millis(400), w.changed())
                .await
                .is_err()
        );
        // chmod counts (permissions are part of the check).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        tokio::time::timeout(bound, w.changed())
            .await
            .expect("chmod seen");
    });
}

#[test]
fn watcher_survives_the_directory_being_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let path = etc.join("agent.toml");
    write(&path, OLD, 0o600);
    run(async {
        let mut w = Watcher::new(&path).unwrap();
        std::fs::remove_dir_all(&etc).unwrap();
        // The deletion itself is a change of the file.
        tokio::time::timeout(Duration::from_secs(3), w.changed())
            .await
            .expect("delete seen");
        std::fs::create_dir(&etc).unwrap();
        write(&path, NEW, 0o600);
        tokio::time::timeout(REWATCH * 3, w.changed())
            .await
            .expect("seen again after re-watch");
        write(&path, OLD, 0o600);
        tokio::time::timeout(Duration::from_secs(3), w.changed())
            .await
            .expect("watching the new directory");
    });
}
