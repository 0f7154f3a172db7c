// SPDX-License-Identifier: MIT OR Apache-2.0
//! Counters for operators: per link endpoint state and flags, subflows up, re-adds,
//! backoff episodes, withdrawals and the time of the last change, plus the kernel's
//! MPTcpExt counters. The daemon loop feeds them (ops it did, the snapshot it publishes,
//! a read of /proc/net/netstat on its metrics timer); they are served as D-Bus properties
//! and, when `[metrics] enabled`, written as a Prometheus text file for node_exporter's
//! textfile collector. docs/metrics.md describes every metric.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::{self, Write as _},
    net::IpAddr,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use mptcp_agent_core::{
    config::MetricsConfig, Config, EndpointFlags, KernelEndpoint, Millis, Observed, Op,
};

use crate::{
    service::{LinkCountersInfo, Snapshot},
    walltime::usec_of,
};

/// The kernel's counters of the reader's network namespace.
pub const NETSTAT: &str = "/proc/net/netstat";

/// Links whose counters are kept after the interface went away; past this the oldest go.
const GONE_LINKS_MAX: usize = 64;

/// Every value of `mptcp_agent_link_state{state}` (the `Links` property's states, and
/// "gone" for an interface that no longer exists).
pub const LINK_STATES: [&str; 8] = [
    "active",
    "backup",
    "down",
    "refused",
    "excluded",
    "ignored",
    "unmatched",
    "gone",
];

/// Endpoint flags reported per link (named by the core's [`EndpointFlags`]).
pub const FLAGS: [EndpointFlags; 4] = [
    EndpointFlags::SIGNAL,
    EndpointFlags::SUBFLOW,
    EndpointFlags::BACKUP,
    EndpointFlags::FULLMESH,
];

/// The kernel's MPTcpExt counters that are exported: (kernel name, metric name, help).
/// A counter this kernel does not have is left out, never made up. `MPCurrEstab` is the
/// one gauge among them.
pub const KERNEL_COUNTERS: &[(&str, &str, &str)] = &[
    (
        "MPCapableSYNRX",
        "mp_capable_syn_rx_total",
        "MP_CAPABLE SYNs received (MPTCP connection requests).",
    ),
    (
        "MPCapableSYNTX",
        "mp_capable_syn_tx_total",
        "MP_CAPABLE SYNs sent.",
    ),
    (
        "MPCapableSYNACKRX",
        "mp_capable_synack_rx_total",
        "MP_CAPABLE SYN-ACKs received.",
    ),
    (
        "MPCapableACKRX",
        "mp_capable_ack_rx_total",
        "MP_CAPABLE third ACKs received.",
    ),
    (
        "MPCapableFallbackACK",
        "mp_capable_fallback_ack_total",
        "Server side fell back to TCP: the third ACK had no MP_CAPABLE.",
    ),
    (
        "MPCapableFallbackSYNACK",
        "mp_capable_fallback_synack_total",
        "Client side fell back to TCP: the SYN-ACK had no MP_CAPABLE.",
    ),
    (
        "MPFallbackTokenInit",
        "fallback_token_init_total",
        "Connections that fell back to TCP because no token could be allocated.",
    ),
    (
        "DssFallback",
        "dss_fallback_total",
        "Connections that fell back to TCP on a bad DSS mapping.",
    ),
    (
        "MPCapableDataFallback",
        "mp_capable_data_fallback_total",
        "Fallbacks to TCP when the first data had no MPTCP option.",
    ),
    (
        "SimultConnectFallback",
        "simult_connect_fallback_total",
        "Fallbacks to TCP on a simultaneous connect.",
    ),
    (
        "FallbackFailed",
        "fallback_failed_total",
        "Connections reset because a fallback to TCP was not possible.",
    ),
    (
        "InfiniteMapRx",
        "infinite_map_rx_total",
        "Infinite mappings received (the peer fell back to TCP mid-connection).",
    ),
    (
        "InfiniteMapTx",
        "infinite_map_tx_total",
        "Infinite mappings sent (fell back to TCP mid-connection).",
    ),
    (
        "MPJoinSynTx",
        "mp_join_syn_tx_total",
        "MP_JOIN SYNs sent (subflows this host opened).",
    ),
    (
        "MPJoinSynTxCreatSkErr",
        "mp_join_syn_tx_socket_error_total",
        "MP_JOIN SYNs not sent: the subflow socket could not be created.",
    ),
    (
        "MPJoinSynTxBindErr",
        "mp_join_syn_tx_bind_error_total",
        "MP_JOIN SYNs not sent: binding the subflow failed.",
    ),
    (
        "MPJoinSynTxConnectErr",
        "mp_join_syn_tx_connect_error_total",
        "MP_JOIN SYNs not sent: connect failed.",
    ),
    (
        "MPJoinSynRx",
        "mp_join_syn_rx_total",
        "MP_JOIN SYNs received.",
    ),
    (
        "MPJoinSynAckRx",
        "mp_join_synack_rx_total",
        "MP_JOIN SYN-ACKs received.",
    ),
    (
        "MPJoinAckRx",
        "mp_join_ack_rx_total",
        "MP_JOIN third ACKs received (joins completed by the peer).",
    ),
    (
        "MPJoinNoTokenFound",
        "mp_join_no_token_found_total",
        "MP_JOIN SYNs for an unknown connection.",
    ),
    (
        "MPJoinSynAckHMacFailure",
        "mp_join_synack_hmac_failure_total",
        "MP_JOIN SYN-ACKs with a bad HMAC.",
    ),
    (
        "MPJoinAckHMacFailure",
        "mp_join_ack_hmac_failure_total",
        "MP_JOIN ACKs with a bad HMAC.",
    ),
    (
        "MPJoinRejected",
        "mp_join_rejected_total",
        "MP_JOINs rejected by the path manager.",
    ),
    (
        "MPRstTx",
        "mp_rst_tx_total",
        "MP_RST sent (subflow resets).",
    ),
    ("MPRstRx", "mp_rst_rx_total", "MP_RST received."),
    (
        "MPFastcloseTx",
        "mp_fastclose_tx_total",
        "MP_FASTCLOSE sent (connection resets).",
    ),
    (
        "MPFastcloseRx",
        "mp_fastclose_rx_total",
        "MP_FASTCLOSE received.",
    ),
    ("MPFailTx", "mp_fail_tx_total", "MP_FAIL sent."),
    ("MPFailRx", "mp_fail_rx_total", "MP_FAIL received."),
    (
        "DSSCorruptionFallback",
        "dss_corruption_fallback_total",
        "Fallbacks to TCP on DSS corruption.",
    ),
    (
        "DSSCorruptionReset",
        "dss_corruption_reset_total",
        "Subflow resets on DSS corruption.",
    ),
    (
        "DataCsumErr",
        "data_checksum_error_total",
        "Data checksum errors.",
    ),
    ("AddAddr", "add_addr_rx_total", "ADD_ADDR received."),
    ("AddAddrTx", "add_addr_tx_total", "ADD_ADDR sent."),
    ("RmAddr", "rm_addr_rx_total", "RM_ADDR received."),
    ("RmAddrTx", "rm_addr_tx_total", "RM_ADDR sent."),
    (
        "RmSubflow",
        "rm_subflow_total",
        "Subflows removed on RM_ADDR.",
    ),
    (
        "MPPrioTx",
        "mp_prio_tx_total",
        "MP_PRIO sent (backup flag changes).",
    ),
    ("MPPrioRx", "mp_prio_rx_total", "MP_PRIO received."),
    (
        "SubflowStale",
        "subflow_stale_total",
        "Subflows marked stale (no progress).",
    ),
    (
        "SubflowRecover",
        "subflow_recover_total",
        "Stale subflows that recovered.",
    ),
    (
        "Blackhole",
        "blackhole_total",
        "MPTCP blackholes detected (MPTCP disabled for a while).",
    ),
    (
        "MPCurrEstab",
        "established_connections",
        "MPTCP connections established now.",
    ),
];

/// The MPTcpExt counters of `/proc/net/netstat` (two lines, names then values). `None`
/// when the file has no such pair (no MPTCP) or its lines do not match.
pub fn parse_netstat(text: &str) -> Option<BTreeMap<String, u64>> {
    let mut lines = text.lines().filter(|l| l.starts_with("MPTcpExt:"));
    let names = lines.next()?.split_whitespace().skip(1);
    let values = lines.next()?.split_whitespace().skip(1);
    let names: Vec<&str> = names.collect();
    let values: Vec<u64> = values.map(str::parse).collect::<Result<_, _>>().ok()?;
    if names.len() != values.len() {
        return None;
    }
    Some(names.into_iter().map(String::from).zip(values).collect())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LinkStats {
    state: String,
    flags: BTreeSet<String>,
    endpoints: u32,
    subflows_up: u32,
    readds: u64,
    backoff_episodes: u64,
    withdrawals: u64,
    /// Microseconds since the Unix epoch; when the agent first saw the link, else when its
    /// state, endpoint or flags last changed.
    last_change_us: u64,
    /// While gone: when it went (for eviction).
    gone_since: Option<u64>,
}

/// The counters, owned by the daemon loop.
#[derive(Debug, Default)]
pub struct Metrics {
    links: BTreeMap<String, LinkStats>,
    /// Addresses whose current re-add episode has already needed a delayed re-add.
    backing_off: BTreeSet<IpAddr>,
    kernel: BTreeMap<String, u64>,
    /// The last write failed (logged once, until a write works again).
    write_failing: bool,
    /// The file last written.
    written: Option<PathBuf>,
}

/// The link an endpoint belongs to: its `dev`, else the link that has its address.
fn link_of(obs: &Observed, e: &KernelEndpoint) -> Option<String> {
    let ifindex = e.ifindex.or_else(|| {
        obs.addresses
            .values()
            .find(|a| a.addr == e.addr)
            .map(|a| a.ifindex)
    })?;
    obs.links.get(&ifindex).map(|l| l.name.clone())
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// An op the daemon has just done successfully; `obs` is still the state before it.
    pub fn op_done(&mut self, op: &Op, cfg: &Config, obs: &Observed, now: Millis) {
        match op {
            Op::DelEndpoint(e) => {
                if let Some(link) = link_of(obs, e) {
                    self.links.entry(link).or_default().withdrawals += 1;
                }
            }
            Op::ReaddEndpoint(e) => {
                // A re-add while the previous one is still recent (the rule plan() backs
                // off by) is a delayed one: the first such re-add opens a backoff episode.
                let recent = obs.readds.get(&e.addr).is_some_and(|r| {
                    now.since(r.last_at) <= cfg.reestablish.max_delay_ms.saturating_mul(2)
                });
                let episode = recent && self.backing_off.insert(e.addr);
                if !recent {
                    self.backing_off.remove(&e.addr);
                }
                if let Some(link) = link_of(obs, e) {
                    let s = self.links.entry(link).or_default();
                    s.readds += 1;
                    s.backoff_episodes += u64::from(episode);
                }
            }
            Op::AddEndpoint(e) => {
                // A fresh endpoint starts backoff over (as in Observed).
                self.backing_off.remove(&e.addr);
            }
            _ => {}
        }
    }

    /// The kernel's MPTcpExt counters as just read (empty: this kernel has none).
    pub fn set_kernel(&mut self, counters: BTreeMap<String, u64>) {
        self.kernel = counters;
    }

    /// Take the link states, endpoints and subflows of the snapshot the daemon publishes,
    /// and put the counters into it.
    pub fn observe(&mut self, snap: &mut Snapshot, obs: &Observed, now: SystemTime) {
        let now_us = usec_of(now);
        let mut seen = BTreeSet::new();
        for l in &snap.links {
            let mut flags = BTreeSet::new();
            let mut endpoints = 0;
            for e in snap.endpoints.iter().filter(|e| e.interface == l.name) {
                endpoints += 1;
                flags.extend(
                    e.flags
                        .iter()
                        .filter(|f| {
                            EndpointFlags::from_name(f).is_some_and(|fl| FLAGS.contains(&fl))
                        })
                        .cloned(),
                );
            }
            let addrs: BTreeSet<IpAddr> = obs.addresses_of(l.ifindex).map(|a| a.addr).collect();
            let subflows_up = obs
                .subflows_up
                .keys()
                .filter(|(a, _)| addrs.contains(a))
                .count();
            let s = self.links.entry(l.name.clone()).or_default();
            if s.state != l.state || s.flags != flags || s.endpoints != endpoints {
                s.last_change_us = now_us;
            }
            s.state = l.state.clone();
            s.flags = flags;
            s.endpoints = endpoints;
            s.subflows_up = u32::try_from(subflows_up).unwrap_or(u32::MAX);
            s.gone_since = None;
            seen.insert(l.name.clone());
        }
        for (name, s) in &mut self.links {
            if !seen.contains(name) && s.gone_since.is_none() {
                s.state = "gone".into();
                s.flags.clear();
                s.endpoints = 0;
                s.subflows_up = 0;
                s.last_change_us = now_us;
                s.gone_since = Some(now_us);
            }
        }
        let gone = self
            .links
            .values()
            .filter(|s| s.gone_since.is_some())
            .count();
        if gone > GONE_LINKS_MAX {
            let mut by_age: Vec<(u64, String)> = self
                .links
                .iter()
                .filter_map(|(n, s)| s.gone_since.map(|t| (t, n.clone())))
                .collect();
            by_age.sort();
            for (_, n) in by_age.into_iter().take(gone - GONE_LINKS_MAX) {
                self.links.remove(&n);
            }
        }
        snap.link_counters = self
            .links
            .iter()
            .map(|(name, s)| LinkCountersInfo {
                name: name.clone(),
                state: s.state.clone(),
                endpoint_flags: s.flags.iter().cloned().collect(),
                endpoints: s.endpoints,
                subflows_up: s.subflows_up,
                readds: s.readds,
                backoff_episodes: s.backoff_episodes,
                withdrawals: s.withdrawals,
                last_change: s.last_change_us,
            })
            .collect();
        snap.kernel_counters = self.kernel.clone();
    }

    /// The Prometheus text exposition (format 0.0.4) of everything above.
    pub fn render(&self, ready: bool, now: SystemTime) -> String {
        let now_us = usec_of(now);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            // A family without samples (no links yet) is left out whole.
            if samples.is_empty() {
                return;
            }
            let _ = writeln!(out, "# HELP mptcp_agent_{name} {help}");
            let _ = writeln!(out, "# TYPE mptcp_agent_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "mptcp_agent_{name}{labels} {value}");
            }
        };
        family(
            "ready",
            "gauge",
            "1 once the agent has read every input and acted; 0 while it starts.",
            &[(String::new(), u8::from(ready).to_string())],
        );
        let links = &self.links;
        let per_link = |f: &dyn Fn(&LinkStats) -> String| -> Vec<(String, String)> {
            links
                .iter()
                .map(|(n, s)| (format!("{{link=\"{}\"}}", escape(n)), f(s)))
                .collect()
        };
        let mut states = Vec::new();
        for (n, s) in links {
            for st in LINK_STATES {
                let labels = format!("{{link=\"{}\",state=\"{st}\"}}", escape(n));
                states.push((labels, u8::from(s.state == st).to_string()));
            }
        }
        family(
            "link_state",
            "gauge",
            "Endpoint state of the link: 1 for its current state (see the Links D-Bus property).",
            &states,
        );
        let mut flags = Vec::new();
        for (n, s) in links {
            for f in FLAGS {
                let labels = format!("{{link=\"{}\",flag=\"{f}\"}}", escape(n));
                let set = s.flags.contains(&f.to_string());
                flags.push((labels, u8::from(set).to_string()));
            }
        }
        family(
            "link_endpoint_flag",
            "gauge",
            "1 when an MPTCP endpoint of the link has this flag.",
            &flags,
        );
        family(
            "link_endpoints",
            "gauge",
            "MPTCP endpoints the kernel has on the link.",
            &per_link(&|s| s.endpoints.to_string()),
        );
        family(
            "link_subflows_up",
            "gauge",
            "Established subflows from the link's addresses (as the kernel's events tell).",
            &per_link(&|s| s.subflows_up.to_string()),
        );
        family(
            "link_readds_total",
            "counter",
            "Endpoint re-adds on the link (after a lost subflow, or to change flags in place).",
            &per_link(&|s| s.readds.to_string()),
        );
        family(
            "link_backoff_episodes_total",
            "counter",
            "Re-add episodes on the link that needed a delayed (backed-off) re-add.",
            &per_link(&|s| s.backoff_episodes.to_string()),
        );
        family(
            "link_withdrawals_total",
            "counter",
            "Endpoints of the link the agent deleted (carrier or address lost, policy).",
            &per_link(&|s| s.withdrawals.to_string()),
        );
        family(
            "link_last_change_timestamp_seconds",
            "gauge",
            "When the link's state, endpoints or flags last changed (or the agent first saw it), Unix time.",
            &per_link(&|s| seconds(s.last_change_us)),
        );
        family(
            "link_seconds_since_change",
            "gauge",
            "Seconds since the link's state, endpoints or flags last changed (or the agent first saw it).",
            &per_link(&|s| seconds(now_us.saturating_sub(s.last_change_us))),
        );
        for (kname, metric, help) in KERNEL_COUNTERS {
            if let Some(v) = self.kernel.get(*kname) {
                let kind = if metric.ends_with("_total") {
                    "counter"
                } else {
                    "gauge"
                };
                family(
                    &format!("kernel_{metric}"),
                    kind,
                    &format!("{help} MPTcpExt {kname}."),
                    &[(String::new(), v.to_string())],
                );
            }
        }
        out
    }

    /// The metrics timer: read the kernel's counters, write the file if enabled. A file
    /// written before is removed once the config no longer asks for it there, so that the
    /// collector does not serve stale values.
    pub fn tick(&mut self, cfg: &MetricsConfig, netstat: &Path, ready: bool) {
        self.set_kernel(read_kernel_counters(netstat));
        let want = cfg.enabled.then(|| PathBuf::from(&cfg.file));
        if let Some(old) = self.written.take().filter(|o| Some(o) != want.as_ref()) {
            if let Err(e) = std::fs::remove_file(&old) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("metrics: removing {}: {e}", old.display());
                }
            }
        }
        if let Some(path) = want {
            self.write(&path, ready);
            self.written = Some(path);
        }
    }

    /// Write the exposition to `path` (see [`write_atomically`]). A failure is logged
    /// once, and its end too.
    pub fn write(&mut self, path: &Path, ready: bool) {
        let text = self.render(ready, SystemTime::now());
        match write_atomically(path, text.as_bytes()) {
            Ok(()) => {
                if std::mem::take(&mut self.write_failing) {
                    log::info!("metrics: writing {} works again", path.display());
                }
            }
            Err(e) => {
                if !self.write_failing {
                    self.write_failing = true;
                    log::warn!("metrics: writing {}: {e}", path.display());
                }
            }
        }
    }
}

/// Read the MPTcpExt counters of this network namespace. Empty when the kernel has none.
pub fn read_kernel_counters(netstat: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(netstat)
        .ok()
        .and_then(|t| parse_netstat(&t))
        .unwrap_or_default()
}

/// Microseconds as seconds with 6 decimals, the trailing zeros dropped.
fn seconds(us: u64) -> String {
    let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Write `data` to a temporary file in `path`'s directory (named so that the textfile
/// collector, which reads `*.prom` only, skips it), make it 0644 (the service's umask is
/// 0077; the collector runs as another user) and rename it over `path`: a reader sees the
/// old file or the new one, never a part. The directory is created (0755) if missing.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)?;
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(data)?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
