// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bytes per second and stalls, as one side of a transfer sees them.

use super::*;

/// Per-second accounting, stall counting and the longest gap between two bytes.
pub(super) struct Meter {
    pub(super) start: Instant,
    pub(super) next_tick: Instant,
    pub(super) tick_bytes: u64,
    pub(super) last_progress: Instant,
    pub(super) max_gap: Duration,
    pub(super) stalled: u32,
    pub(super) intervals: Vec<Interval>,
}

impl Meter {
    pub(super) fn new() -> Self {
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

    pub(super) fn add(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.max_gap = self
                .max_gap
                .max(now.saturating_duration_since(self.last_progress));
            self.last_progress = now;
            self.tick_bytes += n as u64;
        }
    }

    pub(super) fn tick(&mut self, now: Instant, emit: &mut dyn FnMut(&Interval)) {
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
    pub(super) fn finish(&mut self, now: Instant, emit: &mut dyn FnMut(&Interval)) {
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
    pub(super) fn wake(&self, deadline: Instant) -> Duration {
        let now = Instant::now();
        self.next_tick
            .min(deadline)
            .saturating_duration_since(now)
            .min(POLL_SLICE)
    }
}
