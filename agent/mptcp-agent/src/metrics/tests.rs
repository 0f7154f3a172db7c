// SPDX-License-Identifier: MIT OR Apache-2.0
//! The exposition read back by a strict parser of the text format, the counters fed the
//! way the daemon feeds them, the file written atomically.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::PermissionsExt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use mptcp_agent_core::{
    EndpointFlags, Event, KernelEndpoint, KernelSnapshot, Millis, MptcpEvent, MptcpEventKind,
    Observed, Op,
};

use super::*;
use crate::service::{EndpointInfo, LinkInfo, Snapshot};
use crate::test_fixtures::{addr, link};

// ---------------------------------------------------------------------------------------
// A strict reader of the Prometheus text format (0.0.4)

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    /// labels → value
    samples: BTreeMap<BTreeMap<String, String>, f64>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    chars.next().is_some_and(first_ok)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Labels of `{a="x",b="y"}` (the braces stripped), escapes undone.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(format!("no = in {rest:?}"))?;
        let name = &rest[..eq];
        if !is_name(name, false) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label {name} value not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                '"' => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                '\n' => return Err("raw newline in a label value".into()),
                c => value.push(c),
            }
        }
        let end = end.ok_or("unterminated label value")?;
        if out.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.is_empty() {
            return Err(format!("junk after label {name}: {rest:?}"));
        }
    }
    Ok(out)
}

/// Every family of an exposition; errors for anything the format does not allow or our
/// conventions forbid (no HELP/TYPE, TYPE after samples, a family split up, duplicate
/// series, counters not named `_total`, a missing final newline).
fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    if !text.ends_with('\n') {
        return Err("no newline at the end".into());
    }
    let mut fams: BTreeMap<String, Family> = BTreeMap::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, arg) = (parts.next(), parts.next(), parts.next());
            let (Some(kw), Some(name), Some(arg)) = (kw, name, arg) else {
                return Err(err("short comment line".into()));
            };
            if !is_name(name, true) {
                return Err(err("bad metric name".into()));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(name) {
                    return Err(err("family appears twice".into()));
                }
                current = Some(name.to_string());
            }
            let f = fams.entry(name.to_string()).or_default();
            match kw {
                "HELP" => {
                    if !f.help.is_empty() || !f.kind.is_empty() {
                        return Err(err("HELP twice or after TYPE".into()));
                    }
                    f.help = arg.to_string();
                }
                "TYPE" => {
                    if !f.kind.is_empty() || !f.samples.is_empty() {
                        return Err(err("TYPE twice or after samples".into()));
                    }
                    if !["counter", "gauge"].contains(&arg) {
                        return Err(err(format!("type {arg}")));
                    }
                    if (arg == "counter") != name.ends_with("_total") {
                        return Err(err("counters, and only they, end in _total".into()));
                    }
                    f.kind = arg.to_string();
                }
                _ => return Err(err("unknown comment".into())),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err("comment without space".into()));
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| err("no value".into()))?;
        let value: f64 = value
            .parse()
            .map_err(|_| err("value not a number".into()))?;
        let (name, labels) = match series.split_once('{') {
            Some((name, l)) => {
                let l = l
                    .strip_suffix('}')
                    .ok_or_else(|| err("no closing brace".into()))?;
                (name, parse_labels(l).map_err(err)?)
            }
            None => (series, BTreeMap::new()),
        };
        if current.as_deref() != Some(name) {
            return Err(err("sample outside its family's block".into()));
        }
        let f = fams.get_mut(name).ok_or_else(|| err("no TYPE".into()))?;
        if f.kind.is_empty() || f.help.is_empty() {
            return Err(err("sample before HELP and TYPE".into()));
        }
        if f.kind == "counter" && value < 0.0 {
            return Err(err("negative counter".into()));
        }
        if f.samples.insert(labels, value).is_some() {
            return Err(err("duplicate series".into()));
        }
    }
    for (name, f) in &fams {
        if f.samples.is_empty() {
            return Err(format!("{name}: no samples"));
        }
    }
    Ok(fams)
}

#[test]
fn the_strict_reader_refuses_what_it_should() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\n";
    assert!(parse_exposition(ok).is_ok());
    for bad in [
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1",
        "# HELP a x\n# TYPE a counter\na 1\n",
        "# TYPE a_total counter\n# HELP a_total x\na_total 1\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v} 1\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\na_total{l=\"v\"} 2\n",
        "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} one\n",
        "a_total 1\n",
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
        "# HELP a x\n# TYPE a gauge\na{1x=\"1\"} 2\n",
        "# HELP a x\n# TYPE a gauge\na{x=\"\\t\"} 2\n",
    ] {
        assert!(parse_exposition(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_labels(r#"a="q\"b\\c\nd",b="""#).unwrap(),
        BTreeMap::from([
            ("a".to_string(), "q\"b\\c\nd".to_string()),
            ("b".to_string(), String::new())
        ])
    );
}

// ---------------------------------------------------------------------------------------
// A small world: eth0 (ifindex 2) with an endpoint, wwan0 (3) without

fn ep(id: u8, a: &str, ifindex: Option<u32>) -> KernelEndpoint {
    KernelEndpoint {
        id,
        addr: a.parse().unwrap(),
        port: None,
        flags: EndpointFlags::SUBFLOW,
        ifindex,
    }
}

fn world() -> Observed {
    let mut obs = Observed::new();
    obs.apply(
        &Event::KernelSnapshot(KernelSnapshot {
            links: vec![link(2, "eth0"), link(3, "wwan0")],
            addresses: vec![addr(2, "10.0.1.2"), addr(3, "10.0.2.2")],
            routes: vec![],
            rules: vec![],
        }),
        Millis(0),
    );
    obs
}

fn snapshot(eth0_state: &str, eth0_flags: &[&str]) -> Snapshot {
    let l = |name: &str, ifindex, state: &str| LinkInfo {
        name: name.into(),
        ifindex,
        state: state.into(),
        ..LinkInfo::default()
    };
    Snapshot {
        links: vec![l("eth0", 2, eth0_state), l("wwan0", 3, "down")],
        endpoints: if eth0_flags.is_empty() {
            vec![]
        } else {
            vec![EndpointInfo {
                id: 1,
                address: "10.0.1.2".into(),
                flags: eth0_flags.iter().map(|s| s.to_string()).collect(),
                interface: "eth0".into(),
                ifindex: 2,
                ..EndpointInfo::default()
            }]
        },
        ..Snapshot::default()
    }
}

fn subflow(kind: MptcpEventKind, saddr: &str, token: u32) -> Event {
    Event::Mptcp(MptcpEvent {
        kind,
        token: Some(token),
        saddr: Some(saddr.parse().unwrap()),
        ..MptcpEvent::default()
    })
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn series(fams: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let f = fams.get(name).unwrap_or_else(|| panic!("no family {name}"));
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *f.samples
        .get(&want)
        .unwrap_or_else(|| panic!("{name}{labels:?} not in {:?}", f.samples.keys()))
}

#[test]
fn counters_follow_ops_and_snapshots_and_read_back_strictly() {
    let cfg = mptcp_agent_core::config::load("schema_version = 1\n").unwrap();
    let mut obs = world();
    let mut m = Metrics::new();
    let mut snap = snapshot("active", &["subflow"]);
    m.observe(&mut snap, &obs, at(0));

    // Two subflows from eth0's address, one from elsewhere.
    for (a, t) in [("10.0.1.2", 1), ("10.0.1.2", 2), ("10.0.9.9", 3)] {
        obs.apply(
            &subflow(MptcpEventKind::SubflowEstablished, a, t),
            Millis(10),
        );
    }
    // A lost subflow re-added at once, then again (a backoff episode), then a third time
    // within the same episode: one episode.
    let e = ep(1, "10.0.1.2", Some(2));
    for t in [100, 1_200, 3_500] {
        m.op_done(&Op::ReaddEndpoint(e.clone()), &cfg, &obs, Millis(t));
        obs.apply(
            &Event::OpDone {
                op: Op::ReaddEndpoint(e.clone()),
                error: None,
            },
            Millis(t),
        );
    }
    // Long quiet: the next re-add is the first of a new episode, the one after opens it.
    for t in [600_000, 601_000] {
        m.op_done(&Op::ReaddEndpoint(e.clone()), &cfg, &obs, Millis(t));
        obs.apply(
            &Event::OpDone {
                op: Op::ReaddEndpoint(e.clone()),
                error: None,
            },
            Millis(t),
        );
    }
    // Carrier lost: the endpoint (not bound to a dev) withdrawn while its address is known.
    m.op_done(
        &Op::DelEndpoint(ep(1, "10.0.1.2", None)),
        &cfg,
        &obs,
        Millis(700_000),
    );
    let mut snap = snapshot("down", &[]);
    m.observe(&mut snap, &obs, at(700));

    let eth0 = snap
        .link_counters
        .iter()
        .find(|c| c.name == "eth0")
        .unwrap();
    assert_eq!(
        (eth0.readds, eth0.backoff_episodes, eth0.withdrawals),
        (5, 2, 1),
        "{eth0:?}"
    );
    assert_eq!(eth0.state, "down");
    assert_eq!(eth0.last_change, 1_800_000_700 * 1_000_000);
    let wwan0 = snap
        .link_counters
        .iter()
        .find(|c| c.name == "wwan0")
        .unwrap();
    assert_eq!(
        wwan0.last_change,
        1_800_000_000 * 1_000_000,
        "unchanged since first seen"
    );

    m.set_kernel(BTreeMap::from([
        ("MPJoinSynRx".to_string(), 7),
        ("MPRstTx".to_string(), 2),
        ("MPCurrEstab".to_string(), 1),
        ("SomethingNew".to_string(), 5),
    ]));
    let text = m.render(true, at(710));
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let l = |s: &'static str| [("link", s)];
    assert_eq!(series(&fams, "mptcp_agent_ready", &[]), 1.0);
    assert_eq!(
        series(&fams, "mptcp_agent_link_readds_total", &l("eth0")),
        5.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_link_backoff_episodes_total", &l("eth0")),
        2.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_link_withdrawals_total", &l("eth0")),
        1.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_link_withdrawals_total", &l("wwan0")),
        0.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_link_seconds_since_change", &l("eth0")),
        10.0
    );
    assert_eq!(
        series(
            &fams,
            "mptcp_agent_link_last_change_timestamp_seconds",
            &l("wwan0")
        ),
        1_800_000_000.0
    );
    for st in LINK_STATES {
        let want = if st == "down" { 1.0 } else { 0.0 };
        let got = series(
            &fams,
            "mptcp_agent_link_state",
            &[("link", "eth0"), ("state", st)],
        );
        assert_eq!(got, want, "{st}");
    }
    assert_eq!(
        series(&fams, "mptcp_agent_kernel_mp_join_syn_rx_total", &[]),
        7.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_kernel_mp_rst_tx_total", &[]),
        2.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_kernel_established_connections", &[]),
        1.0
    );
    assert_eq!(
        fams["mptcp_agent_kernel_established_connections"].kind,
        "gauge"
    );
    // Counters this kernel lacks are absent, not zero; unknown ones are not exported.
    assert!(!fams.contains_key("mptcp_agent_kernel_mp_rst_rx_total"));
    assert!(!text.contains("SomethingNew"));

    // Back up with flags: subflows counted per link, flags shown.
    let mut snap = snapshot("active", &["subflow", "backup", "implicit"]);
    m.observe(&mut snap, &obs, at(720));
    let text = m.render(true, at(720));
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        series(&fams, "mptcp_agent_link_subflows_up", &l("eth0")),
        2.0
    );
    assert_eq!(
        series(&fams, "mptcp_agent_link_subflows_up", &l("wwan0")),
        0.0
    );
    assert_eq!(series(&fams, "mptcp_agent_link_endpoints", &l("eth0")), 1.0);
    for (flag, want) in [
        ("subflow", 1.0),
        ("backup", 1.0),
        ("signal", 0.0),
        ("fullmesh", 0.0),
    ] {
        let got = series(
            &fams,
            "mptcp_agent_link_endpoint_flag",
            &[("link", "eth0"), ("flag", flag)],
        );
        assert_eq!(got, want, "{flag}");
    }
    assert_eq!(
        series(&fams, "mptcp_agent_link_seconds_since_change", &l("eth0")),
        0.0
    );

    // The interface goes: its counters stay, as "gone".
    let mut snap = Snapshot {
        links: vec![LinkInfo {
            name: "wwan0".into(),
            ifindex: 3,
            state: "down".into(),
            ..LinkInfo::default()
        }],
        ..Snapshot::default()
    };
    m.observe(&mut snap, &obs, at(730));
    let eth0 = snap
        .link_counters
        .iter()
        .find(|c| c.name == "eth0")
        .unwrap();
    assert_eq!((eth0.state.as_str(), eth0.readds), ("gone", 5));
}

#[test]
fn label_values_are_escaped() {
    let obs = world();
    let mut m = Metrics::new();
    let mut snap = Snapshot {
        links: vec![LinkInfo {
            name: "we\"ird\\name".into(),
            state: "unmatched".into(),
            ..LinkInfo::default()
        }],
        ..Snapshot::default()
    };
    m.observe(&mut snap, &obs, at(0));
    let text = m.render(false, at(1));
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        series(
            &fams,
            "mptcp_agent_link_readds_total",
            &[("link", "we\"ird\\name")]
        ),
        0.0
    );
    assert_eq!(series(&fams, "mptcp_agent_ready", &[]), 0.0);
}

#[test]
fn netstat_parsing() {
    let text = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 1\n\
                MPTcpExt: MPCapableSYNRX MPJoinSynRx MPRstTx\nMPTcpExt: 3 14 0\n";
    let m = parse_netstat(text).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m["MPJoinSynRx"], 14);
    // No MPTCP, names and values out of step, a value that is not a number.
    assert!(parse_netstat("TcpExt: A\nTcpExt: 1\n").is_none());
    assert!(parse_netstat("MPTcpExt: A B\nMPTcpExt: 1\n").is_none());
    assert!(parse_netstat("MPTcpExt: A\nMPTcpExt: x\n").is_none());
    assert!(parse_netstat("MPTcpExt: A\n").is_none());
    // This host's file, when its kernel has MPTCP: every exported name it has parses.
    if let Ok(host) = std::fs::read_to_string("/proc/net/netstat") {
        if host.contains("MPTcpExt:") {
            let m = parse_netstat(&host).expect("the host's MPTcpExt lines");
            assert!(m.contains_key("MPJoinSynRx"), "{m:?}");
        }
    }
}

#[test]
fn every_exported_kernel_counter_is_documented() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md"),
    )
    .unwrap();
    let names: BTreeSet<&str> = KERNEL_COUNTERS.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(names.len(), KERNEL_COUNTERS.len(), "a kernel name twice");
    for (kname, metric, _) in KERNEL_COUNTERS {
        assert!(doc.contains(kname), "docs/metrics.md lacks {kname}");
        assert!(
            doc.contains(&format!("mptcp_agent_kernel_{metric}")),
            "docs/metrics.md lacks {metric}"
        );
    }
    for fam in [
        "mptcp_agent_ready",
        "mptcp_agent_link_state",
        "mptcp_agent_link_endpoint_flag",
        "mptcp_agent_link_endpoints",
        "mptcp_agent_link_subflows_up",
        "mptcp_agent_link_readds_total",
        "mptcp_agent_link_backoff_episodes_total",
        "mptcp_agent_link_withdrawals_total",
        "mptcp_agent_link_last_change_timestamp_seconds",
        "mptcp_agent_link_seconds_since_change",
    ] {
        assert!(doc.contains(fam), "docs/metrics.md lacks {fam}");
    }
}

// ---------------------------------------------------------------------------------------
// The file

#[test]
fn file_is_replaced_whole_readable_by_others_and_no_temp_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/metrics.prom");
    // Two contents of different length; a reader must only ever see one of them whole.
    let a = "a".repeat(200_000) + "\n";
    let b = "b".repeat(50_000) + "\n";
    write_atomically(&path, a.as_bytes()).unwrap();
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o755);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop, a, b) = (path.clone(), stop.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let got = std::fs::read_to_string(&path).expect("the file is always there");
                assert!(got == a || got == b, "a torn read of {} bytes", got.len());
                reads += 1;
            }
            reads
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut writes = 0;
    // The service runs with umask 0077; the file must still be 0644.
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    while std::time::Instant::now() < deadline && writes < 2_000 {
        let data = if writes % 2 == 0 { &b } else { &a };
        write_atomically(&path, data.as_bytes()).unwrap();
        writes += 1;
    }
    nix::sys::stat::umask(old_umask);
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0 && writes > 10, "reads {reads}, writes {writes}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("metrics.prom")]);
}

#[test]
fn a_failed_write_leaves_the_old_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a directory: rename fails after the temp file was written.
    let path = dir.path().join("x.prom");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), "1").unwrap();
    assert!(write_atomically(&path, b"data\n").is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("x.prom")]);
    assert!(write_atomically(std::path::Path::new("x.prom"), b"").is_err());
}

#[test]
fn tick_writes_when_enabled_and_removes_the_file_when_no_longer_asked() {
    let dir = tempfile::tempdir().unwrap();
    let netstat = dir.path().join("netstat");
    std::fs::write(&netstat, "MPTcpExt: MPRstRx\nMPTcpExt: 9\n").unwrap();
    let file = dir.path().join("m.prom");
    let mut cfg = MetricsConfig {
        enabled: true,
        file: file.to_string_lossy().into_owned(),
        interval_ms: 1000,
    };
    let mut m = Metrics::new();
    m.tick(&cfg, &netstat, true);
    let text = std::fs::read_to_string(&file).unwrap();
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        series(&fams, "mptcp_agent_kernel_mp_rst_rx_total", &[]),
        9.0
    );
    // Moved: the old file goes, the new one comes.
    let moved = dir.path().join("n.prom");
    cfg.file = moved.to_string_lossy().into_owned();
    m.tick(&cfg, &netstat, true);
    assert!(!file.exists() && moved.exists());
    // Disabled: removed; the counters stay for D-Bus.
    cfg.enabled = false;
    std::fs::write(&netstat, "MPTcpExt: MPRstRx\nMPTcpExt: 10\n").unwrap();
    m.tick(&cfg, &netstat, true);
    assert!(!moved.exists());
    let mut snap = Snapshot::default();
    m.observe(&mut snap, &Observed::new(), at(0));
    assert_eq!(snap.kernel_counters.get("MPRstRx"), Some(&10));
}

/// Every state the `Links` property gives a link has its own `link_state` series: an
/// excluded link (a VPN, tunnel, bridge or container veth) shows as exactly that.
#[test]
fn every_links_state_is_a_metrics_state() {
    let service = include_str!("../service/snapshot.rs");
    let mut named = BTreeSet::new();
    for part in service.split("info.state = \"").skip(1) {
        named.insert(part.split('"').next().unwrap());
    }
    for st in ["active", "backup", "down"] {
        assert!(service.contains(&format!("\"{st}\"")), "{st}");
        named.insert(st);
    }
    assert!(named.contains("excluded"), "{named:?}");
    for st in &named {
        assert!(LINK_STATES.contains(st), "{st} missing from LINK_STATES");
    }

    let mut m = Metrics::new();
    let mut snap = snapshot("excluded", &[]);
    m.observe(&mut snap, &world(), at(0));
    let text = m.render(true, at(1));
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let on: Vec<&str> = LINK_STATES
        .iter()
        .copied()
        .filter(|st| {
            series(
                &fams,
                "mptcp_agent_link_state",
                &[("link", "eth0"), ("state", st)],
            ) == 1.0
        })
        .collect();
    assert_eq!(on, ["excluded"], "{text}");
}
