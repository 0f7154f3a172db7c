// SPDX-License-Identifier: MIT OR Apache-2.0
//! The wire protocol: header, records, trailer and verdict, and the sender and receiver
//! state machines that speak it.

use super::*;

pub(super) const MAGIC: &[u8; 8] = b"MPTRAF1\0";

pub(super) const HEADER_LEN: usize = 32;

pub(super) const RECORD_MAX: usize = 64 * 1024;

pub(super) const TRAILER_LEN: usize = 16;

pub(super) const VERDICT_LEN: usize = 25;

/// Verdict status codes.
pub(super) const V_OK: u8 = 0;

pub(super) const V_MISMATCH: u8 = 1;

pub(super) const V_PROTOCOL: u8 = 2;

pub(super) struct Verdict {
    pub(super) status: u8,
    /// Bytes received (or, on a mismatch, the offset of the first wrong byte).
    pub(super) bytes: u64,
    pub(super) checksum: u64,
    pub(super) stalled: u32,
    pub(super) max_gap_ms: u32,
}

impl Verdict {
    pub(super) fn encode(&self) -> [u8; VERDICT_LEN] {
        let mut b = [0u8; VERDICT_LEN];
        b[0] = self.status;
        b[1..9].copy_from_slice(&self.bytes.to_be_bytes());
        b[9..17].copy_from_slice(&self.checksum.to_be_bytes());
        b[17..21].copy_from_slice(&self.stalled.to_be_bytes());
        b[21..25].copy_from_slice(&self.max_gap_ms.to_be_bytes());
        b
    }

    pub(super) fn decode(b: &[u8; VERDICT_LEN]) -> Verdict {
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

pub(super) struct Header {
    pub(super) direction: Direction,
    pub(super) amount: Amount,
    pub(super) seed: u64,
}

impl Header {
    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
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

    pub(super) fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, String> {
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

pub(super) fn send_stream(
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

pub(super) enum RecvState {
    Len { have: [u8; 4], got: usize },
    Payload { left: usize },
    Trailer { have: [u8; TRAILER_LEN], got: usize },
    Done,
}

/// Receive and verify the stream; returns the verdict to send back.
pub(super) fn receive_stream(
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
pub(super) fn collect_verdict(ctx: &Ctx, t: &mut Transfer, started: Instant) {
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
