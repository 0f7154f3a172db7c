// SPDX-License-Identifier: MIT OR Apache-2.0
//! The client: connect, send the header, run its side of the transfer.

use super::*;

pub(super) fn deadline_from(limits: &Limits) -> Instant {
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
pub(super) fn exchange(
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
