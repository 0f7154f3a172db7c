// SPDX-License-Identifier: MIT OR Apache-2.0
//! Wall-clock time as the agent reports it (D-Bus, metrics, log lines, the CLI):
//! microseconds since the epoch, and ISO 8601 UTC text.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the epoch; 0 for a time before it.
pub fn usec_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// [`usec_of`] the current time.
pub fn now_usec() -> u64 {
    usec_of(SystemTime::now())
}

/// ISO 8601 UTC from microseconds since the epoch (no time-zone database on purpose).
pub fn utc(usec: u64) -> String {
    let secs = usec / 1_000_000;
    let millis = (usec / 1000) % 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_764_046_801_123_456), "2025-11-25T05:00:01.123Z");
    }

    #[test]
    fn usec_of_the_epoch_and_before() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_764_046_801_123_456);
        assert_eq!(usec_of(t), 1_764_046_801_123_456);
        assert_eq!(usec_of(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
        assert!(now_usec() > 1_764_046_801_123_456);
    }
}
