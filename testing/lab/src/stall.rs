// SPDX-License-Identifier: MIT OR Apache-2.0
//! How long the machine itself kept a runnable thread waiting, so that a timing test can tell
//! a slow kernel or agent from a starved host (a 2-core CI machine building a kernel beside
//! the tests delays a normal-priority thread, the kernel's workers included, by up to ~0.5 s).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// The meter's own sleep; a wake-up later than this plus [`NOTICED`] counts as a stall.
const TICK: Duration = Duration::from_millis(1);
/// Lateness below this is ordinary timer slack, not a stall.
const NOTICED: Duration = Duration::from_millis(10);

/// A thread at the caller's priority that sleeps [`TICK`] in a loop and records every wake-up
/// that came late: (when it woke, how late). Stops when dropped.
pub struct StallMeter {
    stop: Arc<AtomicBool>,
    late: Arc<Mutex<Vec<(Instant, Duration)>>>,
    thread: Option<JoinHandle<()>>,
}

impl StallMeter {
    pub fn start() -> StallMeter {
        let stop = Arc::new(AtomicBool::new(false));
        let late = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), late.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::thread::sleep(TICK);
                let woke = Instant::now();
                let over = (woke - t).saturating_sub(TICK);
                if over >= NOTICED {
                    if let Ok(mut v) = l.lock() {
                        v.push((woke, over));
                    }
                }
            }
        });
        StallMeter {
            stop,
            late,
            thread: Some(thread),
        }
    }

    /// How much of `from..to` the machine spent stalled.
    pub fn within(&self, from: Instant, to: Instant) -> Duration {
        self.late
            .lock()
            .map(|v| stalled(&v, from, to))
            .unwrap_or_default()
    }
}

impl Drop for StallMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The part of `from..to` covered by the stalls (each ends at its wake-up and lasted its
/// lateness); stalls do not overlap, as one thread recorded them.
fn stalled(late: &[(Instant, Duration)], from: Instant, to: Instant) -> Duration {
    late.iter()
        .map(|&(woke, over)| {
            let began = woke.checked_sub(over).unwrap_or(woke);
            woke.min(to).saturating_duration_since(began.max(from))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_part_inside_the_window_counts() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let late = [
            (t + ms(100), ms(50)),
            (t + ms(300), ms(100)),
            (t + ms(900), ms(20)),
        ];
        // The first stall (50-100) wholly, half of the second (200-300), none of the third.
        assert_eq!(stalled(&late, t + ms(40), t + ms(250)), ms(100));
        assert_eq!(stalled(&late, t + ms(400), t + ms(800)), ms(0));
        assert_eq!(stalled(&late, t, t + ms(1000)), ms(170));
    }
}
