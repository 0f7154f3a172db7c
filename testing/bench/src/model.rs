// SPDX-License-Identifier: MIT OR Apache-2.0
//! The benchmark's data: contenders, metrics, samples, results (all serialisable, so a
//! run's `raw.json` can be rendered again later).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::Value;

/// Who manages the MPTCP endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contender {
    /// NetworkManager's own MPTCP handling (its default, `connection.mptcp-flags=0x22`).
    Nm,
    /// mptcpd with the addr_adv plugin; NetworkManager's MPTCP off.
    Mptcpd,
    /// mptcp-agent; NetworkManager's MPTCP off.
    Agent,
}

impl Contender {
    pub const ALL: [Contender; 3] = [Contender::Nm, Contender::Mptcpd, Contender::Agent];

    pub fn id(self) -> &'static str {
        match self {
            Contender::Nm => "nm",
            Contender::Mptcpd => "mptcpd",
            Contender::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.id() == s)
    }

    pub fn is_peer(self) -> bool {
        self != Contender::Agent
    }

    /// Name of the managing process in the lab's pid directory.
    pub fn process(self) -> &'static str {
        match self {
            Contender::Nm => "nm",
            Contender::Mptcpd => "mptcpd",
            Contender::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// A row of the table.
pub struct MetricDef {
    pub id: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub better: Better,
}

pub const METRICS: &[MetricDef] = &[
    MetricDef {
        id: "start_endpoints_ms",
        label: "start → endpoints on all uplinks (v4+v6)",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "start_ready_ms",
        label: "start → ready (sd_notify READY=1 after the first reconciliation; ours only)",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "carrier_withdraw_ms",
        label: "carrier cut (far side) → endpoint withdrawn",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "carrier_back_endpoint_ms",
        label: "carrier back → endpoint back",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "carrier_back_subflow_ms",
        label: "carrier back → subflow re-established",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "cb_short_subflow_ms",
        label: "carrier back after a 1 s cut (NetworkManager rides it out) → subflow re-established, one live connection over all cycles",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "cb_long_subflow_ms",
        label: "carrier back after a cut 1.5 s past NetworkManager's carrier-wait (it re-activates the device) → subflow re-established",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "initial_flap_subflow_ms",
        label: "initial-path (wlan0) 1 s carrier cut: carrier back → wlan0 carries a subflow again",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "reset_reestablish_ms",
        label: "subflow reset by server (ss -K) → re-established",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "flap_join_ms",
        label: "nmcli down/up flap: up → join (per flap)",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "throughput_before_mbps",
        label: "throughput before the failover",
        unit: "Mbit/s",
        better: Better::Higher,
    },
    MetricDef {
        id: "throughput_during_mbps",
        label: "throughput during the carrier cut",
        unit: "Mbit/s",
        better: Better::Higher,
    },
    MetricDef {
        id: "throughput_after_mbps",
        label: "throughput after carrier back (+2 s on)",
        unit: "Mbit/s",
        better: Better::Higher,
    },
    MetricDef {
        id: "throughput_recovery_s",
        label: "carrier back → ≥ 90 % of the before throughput",
        unit: "s",
        better: Better::Lower,
    },
    MetricDef {
        id: "rss_idle_kib",
        label: "resident memory, idle",
        unit: "KiB",
        better: Better::Lower,
    },
    MetricDef {
        id: "rss_idle_anon_kib",
        label: "of which anonymous (heap, stacks)",
        unit: "KiB",
        better: Better::Lower,
    },
    MetricDef {
        id: "rss_idle_file_kib",
        label: "of which mapped files (program and library code, clean)",
        unit: "KiB",
        better: Better::Lower,
    },
    MetricDef {
        id: "rss_peak_storm_kib",
        label: "resident memory, peak under the link-event storm",
        unit: "KiB",
        better: Better::Lower,
    },
    MetricDef {
        id: "rss_after_storm_kib",
        label: "resident memory after the storm",
        unit: "KiB",
        better: Better::Lower,
    },
    MetricDef {
        id: "storm_cpu_ms",
        label: "CPU time spent on the storm",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "storm_reconverge_ms",
        label: "storm over → endpoints right again",
        unit: "ms",
        better: Better::Lower,
    },
    MetricDef {
        id: "binary_bytes",
        label: "binary size (ours: stripped release; peers: installed files)",
        unit: "bytes",
        better: Better::Lower,
    },
];

pub fn metric(id: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.id == id)
}

/// One repetition's outcome of one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub metric: String,
    pub rep: usize,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One throughput run: receiver-side Mbit/s per second and the cut window (seconds from
/// the client's start).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timeline {
    pub rep: usize,
    pub mbps: Vec<f64>,
    pub cut_start_s: f64,
    pub cut_end_s: f64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything measured for one contender.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContenderResult {
    pub contender: Contender,
    /// E.g. "NetworkManager 1.42.4 (own MPTCP)".
    pub label: String,
    /// Why it did not run (or stopped early); `None` when every scenario ran.
    #[serde(default)]
    pub not_run: Option<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    pub samples: Vec<Sample>,
    #[serde(default)]
    pub timelines: Vec<Timeline>,
    /// Counts and other single facts (healthy subflows closed, link events seen, ...).
    #[serde(default)]
    pub facts: BTreeMap<String, f64>,
    /// Wall time this contender took, s.
    #[serde(default)]
    pub seconds: f64,
}

impl ContenderResult {
    pub fn new(contender: Contender, label: String) -> Self {
        ContenderResult {
            contender,
            label,
            not_run: None,
            errors: Vec::new(),
            samples: Vec::new(),
            timelines: Vec::new(),
            facts: BTreeMap::new(),
            seconds: 0.0,
        }
    }

    pub fn values(&self, metric: &str) -> Vec<Value> {
        self.samples
            .iter()
            .filter(|s| s.metric == metric)
            .map(|s| s.value)
            .collect()
    }

    pub fn push(&mut self, metric: &str, rep: usize, value: Value, note: Option<String>) {
        self.samples.push(Sample {
            metric: metric.to_string(),
            rep,
            value,
            note,
        });
    }

    pub fn add_fact(&mut self, key: &str, by: f64) {
        *self.facts.entry(key.to_string()).or_insert(0.0) += by;
    }
}

/// The machine and software a run used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub networkmanager: String,
    pub mptcpd: String,
    pub iproute2: String,
    pub agent: String,
    pub git: String,
    pub loadavg_start: String,
    pub loadavg_end: String,
}

/// The parameters of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunParams {
    pub quick: bool,
    pub reps: usize,
    /// Carrier cycles per class (carrier-back short and long, initial-flap).
    #[serde(default)]
    pub cycles: usize,
    pub flaps: usize,
    pub throughput_reps: usize,
    pub throughput_seconds: u64,
    pub cut_start_s: u64,
    pub cut_end_s: u64,
    pub timeout_s: f64,
    pub storm_events: usize,
    pub rate: String,
    pub carrier_wait_ms: u32,
    pub flapped_uplink: String,
    /// Scenarios that ran (all of them unless `--scenarios` said otherwise).
    #[serde(default)]
    pub scenarios: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub started_utc: String,
    pub seconds: f64,
    pub command: String,
    pub params: RunParams,
    pub machine: Machine,
    pub contenders: Vec<ContenderResult>,
}
