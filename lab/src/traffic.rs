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

/// `IPPROTO_MPTCP` from `<linux/in.h>` (libc crates may lack it on older targets).
pub const IPPROTO_MPTCP: libc::c_int = 262;

const MAGIC: &[u8; 8] = b"MPTRAF1\0";
const HEADER_LEN: usize = 32;
const RECORD_MAX: usize = 64 * 1024;
const TRAILER_LEN: usize = 16;
const VERDICT_LEN: usize = 25;
/// How often loops wake up to check the stop flag and deadlines.
const POLL_SLICE: Duration = Duration::from_millis(100);

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

fn mbps(bytes: u64, secs: f64) -> f64 {
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

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Data pattern and checksum

/// The deterministic byte stream: byte `i` is byte `i % 8` (little endian) of
/// `splitmix64(seed ^ (i / 8) * golden)`. Position-addressed, so read boundaries don't matter.
#[derive(Debug, Clone)]
pub struct Pattern {
    seed: u64,
    pos: u64,
}

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern { seed, pos: 0 }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        let mut z = self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    }

    /// Fill `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        // Unaligned head, whole words, tail: word-at-a-time keeps debug builds fast enough.
        let mut i = 0;
        let head = ((8 - self.pos % 8) % 8) as usize;
        let head = head.min(buf.len());
        if head > 0 {
            let w = self.word(self.pos / 8);
            let off = (self.pos % 8) as usize;
            buf[..head].copy_from_slice(&w[off..off + head]);
            i = head;
            self.pos += head as u64;
        }
        let mut index = self.pos / 8;
        let rest = buf.len() - i;
        let mut words = buf[i..].chunks_exact_mut(8);
        for chunk in &mut words {
            chunk.copy_from_slice(&self.word(index));
            index += 1;
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let n = tail.len();
            tail.copy_from_slice(&self.word(index)[..n]);
        }
        self.pos += rest as u64;
    }

    /// Check that `data` is the next part of the stream; on a mismatch, the stream offset of
    /// the first wrong byte.
    pub fn verify(&mut self, data: &[u8], scratch: &mut Vec<u8>) -> Result<(), u64> {
        let start = self.pos;
        scratch.resize(data.len(), 0);
        self.fill(scratch);
        if data == &scratch[..] {
            return Ok(());
        }
        let i = data
            .iter()
            .zip(scratch.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        Err(start + i as u64)
    }
}

/// FNV-1a-style 64-bit checksum over little-endian 8-byte words of the stream (the last,
/// partial word zero-padded). Buffered, so it does not depend on how the stream was cut up;
/// word-wise, so it stays fast in debug builds.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64 {
    h: u64,
    pending: [u8; 8],
    npending: usize,
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64 {
            h: 0xcbf2_9ce4_8422_2325,
            pending: [0; 8],
            npending: 0,
        }
    }
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv64 {
    pub fn update(&mut self, mut data: &[u8]) {
        if self.npending > 0 {
            let k = (8 - self.npending).min(data.len());
            self.pending[self.npending..self.npending + k].copy_from_slice(&data[..k]);
            self.npending += k;
            data = &data[k..];
            if self.npending < 8 {
                return;
            }
            self.h = (self.h ^ u64::from_le_bytes(self.pending)).wrapping_mul(FNV_PRIME);
            self.npending = 0;
        }
        let mut words = data.chunks_exact(8);
        let mut h = self.h;
        for w in &mut words {
            h = (h ^ u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
                .wrapping_mul(FNV_PRIME);
        }
        self.h = h;
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
    }

    pub fn value(&self) -> u64 {
        if self.npending == 0 {
            return self.h;
        }
        let mut last = [0u8; 8];
        last[..self.npending].copy_from_slice(&self.pending[..self.npending]);
        (self.h ^ u64::from_le_bytes(last)).wrapping_mul(FNV_PRIME) ^ self.npending as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets without socket options

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn new_socket(addr: &SocketAddr, proto: Proto) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let protocol = match proto {
        Proto::Mptcp => IPPROTO_MPTCP,
        Proto::Tcp => 0,
    };
    // SAFETY: plain syscall; the fd is owned from here on.
    let fd = cvt(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, protocol) })
        .map_err(|e| {
            if proto == Proto::Mptcp && e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                io::Error::new(
                    e.kind(),
                    "MPTCP sockets not supported (kernel without MPTCP or net.mptcp.enabled=0)",
                )
            } else {
                e
            }
        })?;
    // SAFETY: fd was just returned by socket() and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid fd; O_NONBLOCK is a file status flag, not a socket option.
    unsafe {
        let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Wait for `events` on `fd` for at most `timeout`; returns the revents (0 on timeout).
fn poll_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: one valid pollfd.
        match cvt(unsafe { libc::poll(&mut pfd, 1, ms) }) {
            Ok(0) => return Ok(0),
            Ok(_) => return Ok(pfd.revents),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Non-blocking connect bounded by `timeout`.
pub fn connect(addr: &SocketAddr, proto: Proto, timeout: Duration) -> io::Result<TcpStream> {
    let fd = new_socket(addr, proto)?;
    set_nonblocking(fd.as_raw_fd())?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: sa/len describe a valid sockaddr for this family.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                ));
            }
            let rev = poll_fd(fd.as_raw_fd(), libc::POLLOUT, left)?;
            if rev != 0 {
                break;
            }
        }
    }
    let stream = TcpStream::from(fd);
    // Connected iff it has a peer; otherwise the first read reports why (ECONNREFUSED...).
    if stream.peer_addr().is_err() {
        let mut b = [0u8; 1];
        return Err(match (&stream).read(&mut b) {
            Err(e) => e,
            Ok(_) => io::Error::new(
                io::ErrorKind::NotConnected,
                format!("connect to {addr} failed"),
            ),
        });
    }
    Ok(stream)
}

/// A non-blocking listening socket (no SO_REUSEADDR: that would be a socket option).
pub fn listen(addr: &SocketAddr, proto: Proto) -> io::Result<TcpListener> {
    let fd = new_socket(addr, proto)?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: valid fd and sockaddr.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    })
    .map_err(|e| io::Error::new(e.kind(), format!("bind {addr}: {e}")))?;
    // SAFETY: valid fd.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    set_nonblocking(fd.as_raw_fd())?;
    Ok(TcpListener::from(fd))
}

// ---------------------------------------------------------------------------------------------
// Transfer engine

/// Per-second accounting, stall counting and the longest gap between two bytes.
struct Meter {
    start: Instant,
    next_tick: Instant,
    tick_bytes: u64,
    last_progress: Instant,
    max_gap: Duration,
    stalled: u32,
    intervals: Vec<Interval>,
}

impl Meter {
    fn new() -> Self {
        let now = Instant::now();
        Meter {
            start: now,
            next_tick: now + Duration::from_secs(1),
            tick_bytes: 0,
            last_progress: now,
            max_gap: Duration::ZERO,
            stalled: 0,
            intervals: Vec::new(),
        }
    }

    fn add(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.max_gap = self
                .max_gap
                .max(now.saturating_duration_since(self.last_progress));
            self.last_progress = now;
            self.tick_bytes += n as u64;
        }
    }

    fn tick(&mut self, now: Instant, emit: &mut dyn FnMut(&Interval)) {
        while now >= self.next_tick {
            let end = self
                .next_tick
                .saturating_duration_since(self.start)
                .as_secs_f64();
            let iv = Interval {
                start: end - 1.0,
                end,
                bytes: self.tick_bytes,
            };
            if iv.bytes == 0 {
                self.stalled += 1;
            }
            emit(&iv);
            self.intervals.push(iv);
            self.tick_bytes = 0;
            self.next_tick += Duration::from_secs(1);
        }
    }

    /// Close the last, partial interval (never a stall: it is shorter than a second).
    fn finish(&mut self, now: Instant, emit: &mut dyn FnMut(&Interval)) {
        self.tick(now, emit);
        let prev_end = self.intervals.last().map(|i| i.end).unwrap_or(0.0);
        let end = now.saturating_duration_since(self.start).as_secs_f64();
        if end > prev_end + 0.001 {
            let iv = Interval {
                start: prev_end,
                end,
                bytes: self.tick_bytes,
            };
            emit(&iv);
            self.intervals.push(iv);
        }
        self.tick_bytes = 0;
    }

    /// The next time the loop must wake up.
    fn wake(&self, deadline: Instant) -> Duration {
        let now = Instant::now();
        self.next_tick
            .min(deadline)
            .saturating_duration_since(now)
            .min(POLL_SLICE)
    }
}

struct Ctx<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    limits: Limits,
    stop: Option<&'a AtomicBool>,
}

impl Ctx<'_> {
    /// Stop flag and overall deadline.
    fn check_deadline(&self, what: &str) -> Result<(), String> {
        if self
            .stop
            .map(|s| s.load(Ordering::Relaxed))
            .unwrap_or(false)
        {
            return Err(format!("stopped while {what}"));
        }
        if Instant::now() >= self.deadline {
            return Err(format!(
                "timed out after {:?} while {what}",
                self.limits.timeout
            ));
        }
        Ok(())
    }

    /// Stop flag, deadline, and no-progress limit.
    fn check(&self, meter: &Meter, what: &str) -> Result<(), String> {
        self.check_deadline(what)?;
        let idle = Instant::now().saturating_duration_since(meter.last_progress);
        if idle >= self.limits.stall_abort {
            return Err(format!(
                "no progress for {:.1} s while {what}",
                idle.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// Write all of `buf`, bounded by the deadline (no metering: control messages).
    fn write_all(&self, buf: &[u8], what: &str) -> Result<(), String> {
        let mut off = 0;
        while off < buf.len() {
            match (&*self.stream).write(&buf[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLOUT, what)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
        Ok(())
    }

    /// Read exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
    fn read_exact(&self, buf: &mut [u8], what: &str) -> Result<bool, String> {
        let mut off = 0;
        while off < buf.len() {
            match (&*self.stream).read(&mut buf[off..]) {
                Ok(0) if off == 0 => return Ok(false),
                Ok(0) => {
                    return Err(format!(
                        "{what}: connection closed after {off} of {} bytes",
                        buf.len()
                    ))
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLIN, what)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{what}: {e}")),
            }
        }
        Ok(true)
    }

    fn wait(&self, events: libc::c_short, what: &str) -> Result<(), String> {
        self.check_deadline(what)?;
        let left = self.deadline.saturating_duration_since(Instant::now());
        poll_fd(self.stream.as_raw_fd(), events, left.min(POLL_SLICE))
            .map_err(|e| format!("{what}: poll: {e}"))?;
        Ok(())
    }
}

/// Verdict status codes.
const V_OK: u8 = 0;
const V_MISMATCH: u8 = 1;
const V_PROTOCOL: u8 = 2;

struct Verdict {
    status: u8,
    /// Bytes received (or, on a mismatch, the offset of the first wrong byte).
    bytes: u64,
    checksum: u64,
    stalled: u32,
    max_gap_ms: u32,
}

impl Verdict {
    fn encode(&self) -> [u8; VERDICT_LEN] {
        let mut b = [0u8; VERDICT_LEN];
        b[0] = self.status;
        b[1..9].copy_from_slice(&self.bytes.to_be_bytes());
        b[9..17].copy_from_slice(&self.checksum.to_be_bytes());
        b[17..21].copy_from_slice(&self.stalled.to_be_bytes());
        b[21..25].copy_from_slice(&self.max_gap_ms.to_be_bytes());
        b
    }

    fn decode(b: &[u8; VERDICT_LEN]) -> Verdict {
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        Verdict {
            status: b[0],
            bytes: u64_at(1),
            checksum: u64_at(9),
            stalled: u32_at(17),
            max_gap_ms: u32_at(21),
        }
    }
}

struct Header {
    direction: Direction,
    amount: Amount,
    seed: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8] = match self.direction {
            Direction::Upload => 0,
            Direction::Download => 1,
        };
        let (kind, value) = match self.amount {
            Amount::Duration(d) => (0u8, d.as_millis() as u64),
            Amount::Bytes(n) => (1u8, n),
        };
        b[9] = kind;
        b[16..24].copy_from_slice(&value.to_be_bytes());
        b[24..32].copy_from_slice(&self.seed.to_be_bytes());
        b
    }

    fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
        if &b[..8] != MAGIC {
            return Err("not an mptcp-traffic client (bad magic)".into());
        }
        let direction = match b[8] {
            0 => Direction::Upload,
            1 => Direction::Download,
            d => return Err(format!("bad direction {d}")),
        };
        let value = u64::from_be_bytes(b[16..24].try_into().map_err(|_| "short header")?);
        let amount = match b[9] {
            0 => Amount::Duration(Duration::from_millis(value)),
            1 => Amount::Bytes(value),
            k => return Err(format!("bad amount kind {k}")),
        };
        let seed = u64::from_be_bytes(b[24..32].try_into().map_err(|_| "short header")?);
        Ok(Header {
            direction,
            amount,
            seed,
        })
    }
}

fn send_stream(
    ctx: &Ctx,
    hdr: &Header,
    t: &mut Transfer,
    emit: &mut dyn FnMut(&Interval),
) -> Result<(), String> {
    let mut pattern = Pattern::new(hdr.seed);
    let mut sum = Fnv64::default();
    let mut meter = Meter::new();
    let mut buf: Vec<u8> = Vec::with_capacity(4 + RECORD_MAX);
    let mut off = 0usize;
    let mut trailer_queued = false;
    let mut payload = 0u64;
    loop {
        if off == buf.len() {
            if trailer_queued {
                break;
            }
            buf.clear();
            off = 0;
            let next = match hdr.amount {
                Amount::Bytes(n) => (n - payload).min(RECORD_MAX as u64) as usize,
                Amount::Duration(d) if meter.start.elapsed() >= d => 0,
                Amount::Duration(_) => RECORD_MAX,
            };
            if next == 0 {
                buf.extend_from_slice(&0u32.to_be_bytes());
                buf.extend_from_slice(&payload.to_be_bytes());
                buf.extend_from_slice(&sum.value().to_be_bytes());
                trailer_queued = true;
            } else {
                buf.extend_from_slice(&(next as u32).to_be_bytes());
                buf.resize(4 + next, 0);
                pattern.fill(&mut buf[4..]);
                sum.update(&buf[4..]);
                payload += next as u64;
            }
        }
        match (&*ctx.stream).write(&buf[off..]) {
            Ok(n) => {
                off += n;
                meter.add(n, Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll_fd(
                    ctx.stream.as_raw_fd(),
                    libc::POLLOUT,
                    meter.wake(ctx.deadline),
                )
                .map_err(|e| format!("poll: {e}"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                t.bytes = payload;
                return Err(format!("send failed after {payload} payload bytes: {e}"));
            }
        }
        meter.tick(Instant::now(), emit);
        ctx.check(&meter, "sending")?;
    }
    meter.finish(Instant::now(), emit);
    t.bytes = payload;
    t.checksum = sum.value();
    t.intervals = meter.intervals;
    // DATA_FIN: the receiver answers only after it has seen the end of the stream.
    ctx.stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    Ok(())
}

enum RecvState {
    Len { have: [u8; 4], got: usize },
    Payload { left: usize },
    Trailer { have: [u8; TRAILER_LEN], got: usize },
    Done,
}

/// Receive and verify the stream; returns the verdict to send back.
fn receive_stream(
    ctx: &Ctx,
    hdr: &Header,
    t: &mut Transfer,
    emit: &mut dyn FnMut(&Interval),
) -> Verdict {
    let mut pattern = Pattern::new(hdr.seed);
    let mut sum = Fnv64::default();
    let mut meter = Meter::new();
    let mut state = RecvState::Len {
        have: [0; 4],
        got: 0,
    };
    let mut rbuf = vec![0u8; RECORD_MAX];
    let mut scratch = Vec::with_capacity(RECORD_MAX);
    let mut total = 0u64;
    let mut status = V_OK;
    let mut error: Option<String> = None;
    'outer: loop {
        let n = match (&*ctx.stream).read(&mut rbuf) {
            Ok(0) => {
                if !matches!(state, RecvState::Done) {
                    status = V_PROTOCOL;
                    error = Some(format!(
                        "connection closed before the end of the stream, after {total} bytes"
                    ));
                }
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let wake = if matches!(state, RecvState::Done) {
                    POLL_SLICE
                } else {
                    meter.wake(ctx.deadline)
                };
                if let Err(e) = poll_fd(ctx.stream.as_raw_fd(), libc::POLLIN, wake) {
                    status = V_PROTOCOL;
                    error = Some(format!("poll: {e}"));
                    break;
                }
                0
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => {
                status = V_PROTOCOL;
                error = Some(format!("receive failed after {total} bytes: {e}"));
                break;
            }
        };
        let now = Instant::now();
        if !matches!(state, RecvState::Done) {
            meter.add(n, now);
        }
        let mut data = &rbuf[..n];
        while !data.is_empty() {
            match &mut state {
                RecvState::Len { have, got } => {
                    let k = (4 - *got).min(data.len());
                    have[*got..*got + k].copy_from_slice(&data[..k]);
                    *got += k;
                    data = &data[k..];
                    if *got == 4 {
                        let len = u32::from_be_bytes(*have) as usize;
                        state = if len == 0 {
                            RecvState::Trailer {
                                have: [0; TRAILER_LEN],
                                got: 0,
                            }
                        } else if len > RECORD_MAX {
                            status = V_PROTOCOL;
                            error = Some(format!(
                                "record length {len} > {RECORD_MAX} at byte {total}"
                            ));
                            break 'outer;
                        } else {
                            RecvState::Payload { left: len }
                        };
                    }
                }
                RecvState::Payload { left } => {
                    let k = (*left).min(data.len());
                    if let Err(at) = pattern.verify(&data[..k], &mut scratch) {
                        status = V_MISMATCH;
                        total = at;
                        error = Some(format!(
                            "data corrupted: first wrong byte at stream offset {at}"
                        ));
                        break 'outer;
                    }
                    sum.update(&data[..k]);
                    total += k as u64;
                    *left -= k;
                    data = &data[k..];
                    if *left == 0 {
                        state = RecvState::Len {
                            have: [0; 4],
                            got: 0,
                        };
                    }
                }
                RecvState::Trailer { have, got } => {
                    let k = (TRAILER_LEN - *got).min(data.len());
                    have[*got..*got + k].copy_from_slice(&data[..k]);
                    *got += k;
                    data = &data[k..];
                    if *got == TRAILER_LEN {
                        let sent = u64::from_be_bytes(have[..8].try_into().unwrap_or([0; 8]));
                        let sent_sum = u64::from_be_bytes(have[8..].try_into().unwrap_or([0; 8]));
                        if sent != total || sent_sum != sum.value() {
                            status = V_MISMATCH;
                            error = Some(format!(
                                "sender sent {sent} bytes (checksum {sent_sum:016x}), received {total} ({:016x})",
                                sum.value()
                            ));
                            break 'outer;
                        }
                        meter.finish(now, emit);
                        t.elapsed = now.saturating_duration_since(meter.start);
                        state = RecvState::Done;
                    }
                }
                RecvState::Done => {
                    status = V_PROTOCOL;
                    error = Some("data after the end of the stream".into());
                    break 'outer;
                }
            }
        }
        if !matches!(state, RecvState::Done) {
            meter.tick(Instant::now(), emit);
            if let Err(e) = ctx.check(&meter, "receiving") {
                status = V_PROTOCOL;
                error = Some(e);
                break;
            }
        } else if let Err(e) = ctx.check_deadline("waiting for the sender's FIN") {
            status = V_PROTOCOL;
            error = Some(e);
            break;
        }
    }
    if !matches!(state, RecvState::Done) {
        meter.finish(Instant::now(), emit);
        t.elapsed = meter.start.elapsed();
    }
    t.bytes = total;
    t.checksum = sum.value();
    t.intervals = meter.intervals;
    t.receiver_stalled_intervals = meter.stalled;
    t.receiver_max_gap = meter.max_gap;
    t.error = error;
    Verdict {
        status,
        bytes: total,
        checksum: sum.value(),
        stalled: meter.stalled,
        max_gap_ms: meter.max_gap.as_millis().min(u32::MAX as u128) as u32,
    }
}

/// Sender side after the stream: read the receiver's verdict and fold it into `t`.
fn collect_verdict(ctx: &Ctx, t: &mut Transfer, started: Instant) {
    let mut b = [0u8; VERDICT_LEN];
    // Draining the socket buffers is legitimately quiet on this side: only the deadline counts.
    let quiet = Ctx {
        limits: Limits {
            stall_abort: Duration::MAX,
            ..ctx.limits
        },
        ..*ctx
    };
    match quiet.read_exact(&mut b, "waiting for the receiver's verdict") {
        Ok(true) => {
            t.elapsed = started.elapsed();
            let v = Verdict::decode(&b);
            t.receiver_stalled_intervals = v.stalled;
            t.receiver_max_gap = Duration::from_millis(u64::from(v.max_gap_ms));
            t.error = match v.status {
                V_OK if v.bytes == t.bytes && v.checksum == t.checksum => None,
                V_OK => Some(format!(
                    "receiver got {} bytes ({:016x}), sent {} ({:016x})",
                    v.bytes, v.checksum, t.bytes, t.checksum
                )),
                V_MISMATCH => Some(format!(
                    "receiver found corrupted data at stream offset {}",
                    v.bytes
                )),
                _ => Some(format!(
                    "receiver reported a broken stream after {} bytes",
                    v.bytes
                )),
            };
        }
        Ok(false) => t.error = Some("receiver closed without a verdict".into()),
        Err(e) => t.error = Some(e),
    }
}

fn deadline_from(limits: &Limits) -> Instant {
    Instant::now()
        .checked_add(limits.timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365))
}

/// Run one transfer as the client. Never panics on network errors: they end up in
/// [`Transfer::error`]. `on_interval` sees this side's per-second figures as they happen.
pub fn run_client(
    cfg: &ClientConfig,
    stop: Option<&AtomicBool>,
    on_interval: &mut dyn FnMut(&Interval),
) -> Transfer {
    let role = match cfg.direction {
        Direction::Upload => Role::Sender,
        Direction::Download => Role::Receiver,
    };
    let mut t = Transfer::new(role, cfg.direction);
    let deadline = deadline_from(&cfg.limits);
    let stream = match connect(
        &cfg.server,
        cfg.proto,
        cfg.limits.timeout.min(Duration::from_secs(30)),
    ) {
        Ok(s) => s,
        Err(e) => {
            t.error = Some(format!(
                "connect to {} ({}): {e}",
                cfg.server,
                cfg.proto.as_str()
            ));
            return t;
        }
    };
    t.local = stream.local_addr().ok();
    t.peer = stream.peer_addr().ok();
    let ctx = Ctx {
        stream: &stream,
        deadline,
        limits: cfg.limits,
        stop,
    };
    let hdr = Header {
        direction: cfg.direction,
        amount: cfg.amount,
        seed: cfg.seed,
    };
    if let Err(e) = ctx.write_all(&hdr.encode(), "sending the header") {
        t.error = Some(e);
        return t;
    }
    exchange(&ctx, &hdr, role, &mut t, on_interval);
    t
}

/// The data phase plus verdict, for either role.
fn exchange(
    ctx: &Ctx,
    hdr: &Header,
    role: Role,
    t: &mut Transfer,
    emit: &mut dyn FnMut(&Interval),
) {
    match role {
        Role::Sender => {
            let started = Instant::now();
            if let Err(e) = send_stream(ctx, hdr, t, emit) {
                t.error = Some(e);
                t.elapsed = started.elapsed();
                // The receiver may already have said why (e.g. corrupted data): prefer that.
                let mut probe = Transfer::new(role, hdr.direction);
                probe.bytes = t.bytes;
                collect_verdict(
                    &Ctx {
                        deadline: Instant::now() + Duration::from_secs(1),
                        ..*ctx
                    },
                    &mut probe,
                    started,
                );
                if let Some(v) = probe.error.filter(|m| m.starts_with("receiver found")) {
                    t.error = Some(v);
                }
                return;
            }
            collect_verdict(ctx, t, started);
        }
        Role::Receiver => {
            let v = receive_stream(ctx, hdr, t, emit);
            // Best effort: on a broken stream the peer may be gone already.
            let _ = ctx.write_all(&v.encode(), "sending the verdict");
            let _ = ctx.stream.shutdown(Shutdown::Write);
            if v.status == V_OK {
                // Wait (bounded) for the sender to close, so its last read sees our verdict.
                let mut b = [0u8; 1];
                let _ = Ctx {
                    deadline: ctx.deadline.min(Instant::now() + Duration::from_secs(5)),
                    ..*ctx
                }
                .read_exact(&mut b, "waiting for close");
            }
        }
    }
}

/// What a server reports while it runs.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    Listening(SocketAddr),
    Interval {
        conn: u64,
        role: Role,
        interval: Interval,
    },
    Finished {
        conn: u64,
        transfer: Transfer,
    },
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub proto: Proto,
    /// Per-connection limits.
    pub limits: Limits,
}

/// Listening sockets plus the accept loop; each connection runs in its own thread.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<TcpListener>,
    cfg: ServerConfig,
    next_conn: AtomicU64,
}

impl Server {
    pub fn bind(cfg: ServerConfig) -> io::Result<Server> {
        if cfg.listen.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listen address",
            ));
        }
        let listeners = cfg
            .listen
            .iter()
            .map(|a| listen(a, cfg.proto))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Server {
            listeners,
            cfg,
            next_conn: AtomicU64::new(0),
        })
    }

    /// Actual addresses (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Accept and serve until `stop` is set, or until `max_conns` connections have been
    /// served (then it waits for them). Returns the finished transfers' success count.
    pub fn serve(
        &self,
        stop: &AtomicBool,
        max_conns: Option<u64>,
        sink: Arc<dyn Fn(ServerEvent) + Send + Sync>,
    ) -> io::Result<Vec<bool>> {
        for a in self.local_addrs() {
            sink(ServerEvent::Listening(a));
        }
        let results = std::sync::Mutex::new(Vec::new());
        let mut accepted = 0u64;
        std::thread::scope(|s| -> io::Result<()> {
            let mut pfds: Vec<libc::pollfd> = self
                .listeners
                .iter()
                .map(|l| libc::pollfd {
                    fd: l.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            while !stop.load(Ordering::Relaxed) && max_conns.map(|m| accepted < m).unwrap_or(true) {
                // SAFETY: pfds is a valid array of pollfd.
                let r = unsafe {
                    libc::poll(
                        pfds.as_mut_ptr(),
                        pfds.len() as libc::nfds_t,
                        POLL_SLICE.as_millis() as i32,
                    )
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                for l in &self.listeners {
                    match l.accept() {
                        Ok((stream, _)) => {
                            accepted += 1;
                            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
                            let sink = Arc::clone(&sink);
                            let results = &results;
                            let limits = self.cfg.limits;
                            s.spawn(move || {
                                let t = serve_conn(stream, limits, Some(stop), conn, &sink);
                                if let Ok(mut r) = results.lock() {
                                    r.push(t.ok());
                                }
                                sink(ServerEvent::Finished { conn, transfer: t });
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // A connection that died in the backlog: not the listener's fault.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        })?;
        Ok(results.into_inner().unwrap_or_default())
    }
}

fn serve_conn(
    stream: TcpStream,
    limits: Limits,
    stop: Option<&AtomicBool>,
    conn: u64,
    sink: &Arc<dyn Fn(ServerEvent) + Send + Sync>,
) -> Transfer {
    let mut t = Transfer::new(Role::Receiver, Direction::Upload);
    t.local = stream.local_addr().ok();
    t.peer = stream.peer_addr().ok();
    if let Err(e) = stream.set_nonblocking(true) {
        t.error = Some(format!("set non-blocking: {e}"));
        return t;
    }
    let ctx = Ctx {
        stream: &stream,
        deadline: deadline_from(&limits),
        limits,
        stop,
    };
    let mut hb = [0u8; HEADER_LEN];
    let hdr_ctx = Ctx {
        deadline: ctx.deadline.min(Instant::now() + Duration::from_secs(10)),
        ..ctx
    };
    let hdr = match hdr_ctx
        .read_exact(&mut hb, "reading the header")
        .and_then(|got| {
            if got {
                Header::decode(&hb)
            } else {
                Err("closed before sending a header".into())
            }
        }) {
        Ok(h) => h,
        Err(e) => {
            t.error = Some(e);
            return t;
        }
    };
    let role = match hdr.direction {
        Direction::Upload => Role::Receiver,
        Direction::Download => Role::Sender,
    };
    t.role = role;
    t.direction = hdr.direction;
    let mut emit = |iv: &Interval| {
        sink(ServerEvent::Interval {
            conn,
            role,
            interval: *iv,
        })
    };
    exchange(&ctx, &hdr, role, &mut t, &mut emit);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn pattern_is_independent_of_chunking() {
        let mut whole = vec![0u8; 1000];
        Pattern::new(7).fill(&mut whole);
        let mut p = Pattern::new(7);
        let mut pieces = Vec::new();
        for n in [1usize, 3, 8, 13, 64, 911] {
            let mut b = vec![0u8; n];
            p.fill(&mut b);
            pieces.extend_from_slice(&b);
        }
        assert_eq!(&pieces[..1000], &whole[..]);
        let mut other = vec![0u8; 1000];
        Pattern::new(8).fill(&mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn verify_reports_the_first_wrong_offset() {
        let mut data = vec![0u8; 100];
        Pattern::new(1).fill(&mut data);
        let mut p = Pattern::new(1);
        let mut scratch = Vec::new();
        p.verify(&data[..40], &mut scratch).unwrap();
        data[57] ^= 0x10;
        assert_eq!(p.verify(&data[40..], &mut scratch), Err(57));
    }

    #[test]
    fn checksum_is_independent_of_chunking() {
        let mut data = vec![0u8; 1001];
        Pattern::new(3).fill(&mut data);
        let mut a = Fnv64::default();
        a.update(&data);
        let mut b = Fnv64::default();
        for piece in data.chunks(7) {
            b.update(piece);
        }
        assert_eq!(a.value(), b.value());
        // Padding is not confusable with real zero bytes.
        let mut c = Fnv64::default();
        c.update(&data);
        c.update(&[0]);
        assert_ne!(a.value(), c.value());
        let mut d = data.clone();
        d[500] ^= 4;
        let mut e = Fnv64::default();
        e.update(&d);
        assert_ne!(a.value(), e.value());
    }

    #[test]
    fn header_and_verdict_round_trip() {
        let h = Header {
            direction: Direction::Download,
            amount: Amount::Bytes(12345),
            seed: 99,
        };
        let d = Header::decode(&h.encode()).unwrap();
        assert_eq!(
            (d.direction, d.amount, d.seed),
            (Direction::Download, Amount::Bytes(12345), 99)
        );
        let mut bad = h.encode();
        bad[0] = b'X';
        assert!(Header::decode(&bad).is_err());
        bad = h.encode();
        bad[9] = 7;
        assert!(Header::decode(&bad).is_err());
        let v = Verdict {
            status: V_MISMATCH,
            bytes: 5,
            checksum: 6,
            stalled: 7,
            max_gap_ms: 8,
        }
        .encode();
        let v = Verdict::decode(&v);
        assert_eq!(
            (v.status, v.bytes, v.checksum, v.stalled, v.max_gap_ms),
            (V_MISMATCH, 5, 6, 7, 8)
        );
    }

    type Events = Arc<Mutex<Vec<ServerEvent>>>;

    /// Plain-TCP server on loopback (unit tests need neither root nor MPTCP).
    fn start_server() -> (
        SocketAddr,
        Arc<AtomicBool>,
        Events,
        std::thread::JoinHandle<()>,
    ) {
        let server = Server::bind(ServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            proto: Proto::Tcp,
            limits: Limits {
                timeout: Duration::from_secs(20),
                stall_abort: Duration::from_secs(5),
            },
        })
        .unwrap();
        let addr = server.local_addrs()[0];
        let stop = Arc::new(AtomicBool::new(false));
        let events: Events = Arc::new(Mutex::new(Vec::new()));
        let (s2, e2) = (Arc::clone(&stop), Arc::clone(&events));
        let h = std::thread::spawn(move || {
            let sink: Arc<dyn Fn(ServerEvent) + Send + Sync> =
                Arc::new(move |e| e2.lock().unwrap().push(e));
            server.serve(&s2, None, sink).unwrap();
        });
        (addr, stop, events, h)
    }

    fn finished(events: &Events) -> Vec<Transfer> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let done: Vec<Transfer> = events
                .lock()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::Finished { transfer, .. } => Some(transfer.clone()),
                    _ => None,
                })
                .collect();
            if !done.is_empty() || Instant::now() > deadline {
                return done;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn upload_and_download_arrive_intact() {
        let (addr, stop, events, h) = start_server();
        let cfg = ClientConfig::upload_for(addr, 1)
            .proto(Proto::Tcp)
            .amount(Amount::Bytes(3_000_001));
        let up = run_client(&cfg, None, &mut |_| {});
        assert!(up.ok(), "{:?}", up.error);
        assert_eq!(up.bytes, 3_000_001);
        let srv = finished(&events);
        assert_eq!(srv.len(), 1);
        assert!(srv[0].ok(), "{:?}", srv[0].error);
        assert_eq!(
            (srv[0].role, srv[0].bytes, srv[0].checksum),
            (Role::Receiver, up.bytes, up.checksum)
        );

        let down = run_client(
            &cfg.clone().direction(Direction::Download),
            None,
            &mut |_| {},
        );
        assert!(down.ok(), "{:?}", down.error);
        assert_eq!((down.role, down.bytes), (Role::Receiver, 3_000_001));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn duration_mode_reports_intervals() {
        let (addr, stop, _events, h) = start_server();
        let mut lines = 0;
        let cfg = ClientConfig::upload_for(addr, 1)
            .proto(Proto::Tcp)
            .direction(Direction::Download);
        let t = run_client(&cfg, None, &mut |_| lines += 1);
        assert!(t.ok(), "{:?}", t.error);
        assert!(t.bytes > 0);
        assert!(
            lines >= 1 && lines == t.intervals.len(),
            "{lines} vs {:?}",
            t.intervals
        );
        assert!(t.elapsed >= Duration::from_secs(1));
        assert_eq!(t.receiver_stalled_intervals, 0);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    /// A hand-made sender that corrupts one byte, or pauses, or stops early.
    fn fake_sender(
        addr: SocketAddr,
        corrupt_at: Option<usize>,
        pause: Option<Duration>,
        truncate: bool,
    ) -> Vec<u8> {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let hdr = Header {
            direction: Direction::Upload,
            amount: Amount::Bytes(20_000),
            seed: 5,
        };
        s.write_all(&hdr.encode()).unwrap();
        let mut data = vec![0u8; 20_000];
        Pattern::new(5).fill(&mut data);
        let mut sum = Fnv64::default();
        sum.update(&data);
        if let Some(i) = corrupt_at {
            data[i] ^= 1;
        }
        for (k, chunk) in data.chunks(10_000).enumerate() {
            if k == 1 {
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
            }
            // Best effort: after a corrupted record the receiver hangs up early.
            let _ = s.write_all(&(chunk.len() as u32).to_be_bytes());
            let _ = s.write_all(chunk);
        }
        if !truncate {
            let _ = s.write_all(&0u32.to_be_bytes());
            let _ = s.write_all(&20_000u64.to_be_bytes());
            let _ = s.write_all(&sum.value().to_be_bytes());
        }
        let _ = s.shutdown(Shutdown::Write);
        let mut verdict = Vec::new();
        let _ = s.read_to_end(&mut verdict);
        verdict
    }

    #[test]
    fn corrupted_byte_is_caught_at_its_offset() {
        let (addr, stop, events, h) = start_server();
        let verdict = fake_sender(addr, Some(12_345), None, false);
        let srv = finished(&events);
        let err = srv[0].error.clone().unwrap();
        assert!(err.contains("offset 12345"), "{err}");
        assert_eq!(verdict.len(), VERDICT_LEN);
        assert_eq!(verdict[0], V_MISMATCH);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let (addr, stop, events, h) = start_server();
        let verdict = fake_sender(addr, None, None, true);
        let srv = finished(&events);
        let err = srv[0].error.clone().unwrap();
        assert!(err.contains("closed before the end"), "{err}");
        assert_eq!(verdict.first(), Some(&V_PROTOCOL));
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn a_quiet_second_is_a_stall() {
        let (addr, stop, events, h) = start_server();
        let verdict = fake_sender(addr, None, Some(Duration::from_millis(2100)), false);
        let srv = finished(&events);
        assert!(srv[0].ok(), "{:?}", srv[0].error);
        assert!(
            srv[0].receiver_stalled_intervals >= 1,
            "{:?}",
            srv[0].intervals
        );
        assert!(srv[0].receiver_max_gap >= Duration::from_secs(2));
        let v = Verdict::decode(&verdict[..VERDICT_LEN].try_into().unwrap());
        assert_eq!(v.status, V_OK);
        assert!(v.stalled >= 1 && v.max_gap_ms >= 2000);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn connect_refused_is_reported_not_panicked() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg =
            ClientConfig::upload_for(SocketAddr::from(([127, 0, 0, 1], port)), 1).proto(Proto::Tcp);
        let t = run_client(&cfg, None, &mut |_| {});
        let err = t.error.unwrap();
        assert!(err.contains("connect"), "{err}");
    }
}
