// SPDX-License-Identifier: MIT OR Apache-2.0
//! An MPTCP traffic generator that works on every kernel with MPTCP, 5.10 included.
//!
//! `mptcpize run iperf3` fails on 5.10: MPTCP sockets there reject `TCP_NODELAY` (accepted only
//! from 5.17). This generator opens `IPPROTO_MPTCP` (262) sockets directly and sets **no socket
//! option at all**: non-blocking mode is a file flag (`fcntl`/`FIONBIO`), timeouts come from
//! `poll`, and connect errors from `poll` + `getpeername`.
//!
//! Protocol (one connection = one transfer):
//! 1. The client sends a 32-byte header: magic `MPTRAF1\0`, direction, amount kind, amount,
//!    seed.
//! 2. The *sender* (client for uploads, server for downloads) writes records `u32 len` +
//!    `len` bytes of a deterministic pattern derived from the seed, then `u32 0`, its byte
//!    count and 64-bit FNV-style checksum, then shuts down its write side (DATA_FIN).
//! 3. The *receiver* checks every byte against the pattern as it arrives (a corrupted,
//!    reordered or duplicated byte is caught at its exact offset), compares count and
//!    checksum, waits for the sender's FIN and answers with a 25-byte verdict (status, bytes,
//!    checksum, stalled seconds, longest gap).
//!
//! Both sides measure bytes per second; a full second in which the receiver got nothing is a
//! *stall*. The verdict carries the receiver's stall figures back to the sender, so whichever
//! side you run sees the end-to-end result.

use std::{
    io::{self, Read, Write},
    mem,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

mod client;
mod meter;
mod pattern;
mod protocol;
mod server;
mod socket;
#[cfg(test)]
mod tests;

pub use client::run_client;
use client::*;
use meter::*;
pub use pattern::{Fnv64, Pattern};
use protocol::*;
pub use server::{Server, ServerConfig, ServerEvent};
use socket::*;
pub use socket::{connect, listen};

/// `IPPROTO_MPTCP` from `<linux/in.h>` (libc crates may lack it on older targets).
pub const IPPROTO_MPTCP: libc::c_int = 262;

/// How often loops wake up to check the stop flag and deadlines.
pub(super) const POLL_SLICE: Duration = Duration::from_millis(100);

/// Socket protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `IPPROTO_MPTCP`.
    Mptcp,
    /// Plain TCP, for comparison and for machines without MPTCP.
    Tcp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Mptcp => "mptcp",
            Proto::Tcp => "tcp",
        }
    }
}

/// Which way the data flows, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client sends, server receives.
    Upload,
    /// Server sends, client receives.
    Download,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// How much the sender sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Keep writing for this long (then the receiver still drains the socket buffers).
    Duration(Duration),
    /// Exactly this many payload bytes.
    Bytes(u64),
}

/// This side's part in a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sender,
    Receiver,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sender => "sender",
            Role::Receiver => "receiver",
        }
    }
}

/// Bytes moved through the socket in one interval (seconds since the data phase began).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub start: f64,
    pub end: f64,
    pub bytes: u64,
}

impl Interval {
    pub fn mbps(&self) -> f64 {
        mbps(self.bytes, self.end - self.start)
    }
}

pub(super) fn mbps(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 * 8.0 / secs / 1e6
    } else {
        0.0
    }
}

/// Limits that keep a broken connection from hanging the caller.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bound for the whole transfer (connect to verdict).
    pub timeout: Duration,
    /// Give up after this long without a single byte of progress.
    pub stall_abort: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(120),
            stall_abort: Duration::from_secs(30),
        }
    }
}

/// What the client asks for.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    pub proto: Proto,
    pub direction: Direction,
    pub amount: Amount,
    /// Seed of the data pattern; any value works, both ends derive the same bytes from it.
    pub seed: u64,
    pub limits: Limits,
}

impl ClientConfig {
    /// MPTCP upload for `secs` seconds, timeout `secs + 60`.
    pub fn upload_for(server: SocketAddr, secs: u64) -> Self {
        ClientConfig {
            server,
            proto: Proto::Mptcp,
            direction: Direction::Upload,
            amount: Amount::Duration(Duration::from_secs(secs)),
            seed: 0x6d70_7463_7020_6c61,
            limits: Limits {
                timeout: Duration::from_secs(secs + 60),
                ..Limits::default()
            },
        }
    }

    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    pub fn proto(mut self, proto: Proto) -> Self {
        self.proto = proto;
        self
    }

    pub fn amount(mut self, amount: Amount) -> Self {
        self.amount = amount;
        self
    }
}

/// The outcome of one transfer, from one side.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub role: Role,
    pub direction: Direction,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// Payload bytes this side sent (sender) or received and verified (receiver).
    pub bytes: u64,
    /// [`Fnv64`] checksum of those bytes.
    pub checksum: u64,
    /// Data phase: first byte to verdict (sender) or to the end of the stream (receiver).
    pub elapsed: Duration,
    /// This side's per-second figures.
    pub intervals: Vec<Interval>,
    /// Full seconds in which the *receiver* got no byte (reported by it to the sender).
    pub receiver_stalled_intervals: u32,
    /// Longest time the *receiver* waited for a byte.
    pub receiver_max_gap: Duration,
    /// Why the transfer failed; `None` means it arrived complete and intact.
    pub error: Option<String>,
}

impl Transfer {
    fn new(role: Role, direction: Direction) -> Self {
        Transfer {
            role,
            direction,
            local: None,
            peer: None,
            bytes: 0,
            checksum: 0,
            elapsed: Duration::ZERO,
            intervals: Vec::new(),
            receiver_stalled_intervals: 0,
            receiver_max_gap: Duration::ZERO,
            error: None,
        }
    }

    /// Complete and intact.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The receiver saw at least one full second without data.
    pub fn stalled(&self) -> bool {
        self.receiver_stalled_intervals > 0
    }

    /// Average payload throughput over the data phase.
    pub fn mbps(&self) -> f64 {
        mbps(self.bytes, self.elapsed.as_secs_f64())
    }

    /// One JSON object (a line of the CLI's output).
    pub fn to_json(&self, conn: u64) -> String {
        serde_json::json!({
            "event": "result",
            "conn": conn,
            "role": self.role.as_str(),
            "direction": self.direction.as_str(),
            "local": self.local.map(|a| a.to_string()),
            "peer": self.peer.map(|a| a.to_string()),
            "ok": self.ok(),
            "bytes": self.bytes,
            "checksum": format!("{:016x}", self.checksum),
            "seconds": round3(self.elapsed.as_secs_f64()),
            "mbps": round3(self.mbps()),
            "stalled_intervals": self.receiver_stalled_intervals,
            "max_gap_ms": self.receiver_max_gap.as_millis() as u64,
            "error": self.error,
        })
        .to_string()
    }
}

/// One per-second line of the CLI's output.
pub fn interval_json(conn: u64, role: Role, iv: &Interval) -> String {
    serde_json::json!({
        "event": "interval",
        "conn": conn,
        "role": role.as_str(),
        "start": round3(iv.start),
        "end": round3(iv.end),
        "bytes": iv.bytes,
        "mbps": round3(iv.mbps()),
    })
    .to_string()
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Data pattern and checksum
