// SPDX-License-Identifier: MIT OR Apache-2.0
//! The kernel's MPTCP blackhole detection (Linux 6.12+), seen through its MIB counter.
//!
//! When the SYNs of an outgoing MPTCP connection are dropped while the same SYN without
//! MPTCP options gets through (a middlebox that drops unknown TCP options), the kernel
//! falls back to TCP, counts `MPTcpExtBlackhole` in `/proc/net/netstat` and, for
//! `net.mptcp.blackhole_timeout` seconds (doubled on each repeat, up to 64 times), makes
//! every new outgoing MPTCP connection of the network namespace plain TCP. Nothing else
//! tells: the sockets stay MPTCP sockets, only their subflows never join. Kernels without
//! the counter do not have the detection; the agent says so instead of guessing.

use std::collections::BTreeMap;

use crate::time::Millis;

/// The counter's name in the `MPTcpExt` section of `/proc/net/netstat`.
pub const COUNTER: &str = "Blackhole";
/// The sysctl that controls the detection (`net.mptcp.blackhole_timeout`).
pub const SYSCTL: &str = "blackhole_timeout";

/// The counters of the `MPTcpExt` section of `/proc/net/netstat` (names without the
/// prefix), or `None` when the section is not there (no MPTCP in this kernel).
pub fn parse_mptcp_mib(netstat: &str) -> Option<BTreeMap<String, u64>> {
    // Pairs of lines: "MPTcpExt: Name1 Name2 …" then "MPTcpExt: 1 2 …".
    let mut lines = netstat.lines().filter_map(|l| l.strip_prefix("MPTcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let map: BTreeMap<String, u64> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .filter_map(|(n, v)| Some((n.to_string(), v.parse().ok()?)))
        .collect();
    Some(map)
}

/// What the adapter read: the counter, or why there is none (for status, verbatim).
pub fn counter_of(netstat: &str) -> Result<u64, String> {
    match parse_mptcp_mib(netstat) {
        None => Err("no MPTcpExt section in /proc/net/netstat (no MPTCP in this kernel)".into()),
        Some(m) => m.get(COUNTER).copied().ok_or_else(|| {
            format!(
                "this kernel has no MPTCP blackhole detection (no MPTcpExt{COUNTER} counter in \
                 /proc/net/netstat; added in Linux 6.12)"
            )
        }),
    }
}

/// The agent's view of the detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Blackhole {
    /// Not read yet.
    #[default]
    Unknown,
    /// No counter, and why: the feature is not there.
    Absent(String),
    Present {
        /// The counter when the agent first read it.
        at_start: u64,
        count: u64,
        /// When the counter last rose while the agent watched (agent time, and wall clock
        /// in microseconds since the epoch as the adapter read it).
        last_rise: Option<(Millis, u64)>,
    },
}

impl Blackhole {
    /// Fold a reading in; returns the previous count when the counter rose.
    pub fn observe(
        &mut self,
        reading: &Result<u64, String>,
        now: Millis,
        wall_usec: u64,
    ) -> Option<u64> {
        match (reading, &mut *self) {
            (Err(why), _) => {
                *self = Blackhole::Absent(why.clone());
                None
            }
            (
                Ok(c),
                Blackhole::Present {
                    count, last_rise, ..
                },
            ) => {
                let before = *count;
                *count = *c;
                // A lower value is a counter that started over (a new namespace under the
                // same agent is not possible, but a reset MIB is): no detection.
                (*c > before).then(|| {
                    *last_rise = Some((now, wall_usec));
                    before
                })
            }
            (Ok(c), _) => {
                *self = Blackhole::Present {
                    at_start: *c,
                    count: *c,
                    last_rise: None,
                };
                None
            }
        }
    }

    /// Detections since the agent started.
    pub fn detections(&self) -> u64 {
        match self {
            Blackhole::Present {
                at_start, count, ..
            } => count.saturating_sub(*at_start),
            _ => 0,
        }
    }

    /// Until when (agent time) MPTCP is at least off after the last detection the agent saw,
    /// with the timeout in seconds; `None` when not in such a period or it cannot be told.
    /// Repeats double the period, which the counter alone does not show: "at least".
    pub fn off_until(&self, timeout_s: Option<u64>) -> Option<Millis> {
        match (self, timeout_s) {
            (
                Blackhole::Present {
                    last_rise: Some((at, _)),
                    ..
                },
                Some(t),
            ) if t > 0 => Some(at.plus(t.saturating_mul(1000))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Linux 6.18's /proc/net/netstat (TcpExt and IpExt shortened).
    const NETSTAT_618: &str = "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n\
IpExt: InNoRoutes InTruncatedPkts\nIpExt: 0 0\n\
MPTcpExt: MPCapableSYNRX MPCapableSYNTX MPCapableSYNTXDrop Blackhole MPCapableDataFallback\n\
MPTcpExt: 3 5 2 1 0\n";
    /// Linux 6.1: MPTcpExt without the counter.
    const NETSTAT_61: &str = "TcpExt: SyncookiesSent\nTcpExt: 0\n\
MPTcpExt: MPCapableSYNRX MPCapableSYNTX\nMPTcpExt: 0 4\n";

    #[test]
    fn counter_read_or_said_absent() {
        let m = parse_mptcp_mib(NETSTAT_618).unwrap();
        assert_eq!(m["MPCapableSYNTXDrop"], 2);
        assert_eq!(counter_of(NETSTAT_618), Ok(1));
        let e = counter_of(NETSTAT_61).unwrap_err();
        assert!(e.contains("no MPTCP blackhole detection"), "{e}");
        assert!(e.contains("6.12"), "{e}");
        assert!(counter_of("TcpExt: A\nTcpExt: 1\n")
            .unwrap_err()
            .contains("no MPTcpExt"));
    }

    #[test]
    fn detection_is_a_rise_of_the_counter() {
        let mut b = Blackhole::default();
        // A count from before the agent started is not a detection it saw.
        assert_eq!(b.observe(&Ok(4), Millis(10), 1), None);
        assert_eq!(b.detections(), 0);
        assert_eq!(b.off_until(Some(3600)), None);
        assert_eq!(b.observe(&Ok(4), Millis(20), 2), None);
        assert_eq!(b.observe(&Ok(6), Millis(30), 3), Some(4));
        assert_eq!(b.detections(), 2);
        assert_eq!(b.off_until(Some(3600)), Some(Millis(30 + 3_600_000)));
        // blackhole_timeout 0: the kernel does not disable MPTCP.
        assert_eq!(b.off_until(Some(0)), None);
        assert_eq!(b.off_until(None), None);
        assert_eq!(b.observe(&Ok(6), Millis(40), 4), None);
        // The feature vanishing (a kernel without it) is said, not guessed.
        assert_eq!(b.observe(&Err("gone".into()), Millis(50), 5), None);
        assert_eq!(b, Blackhole::Absent("gone".into()));
        assert_eq!(b.detections(), 0);
    }
}
