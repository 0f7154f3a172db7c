// SPDX-License-Identifier: MIT OR Apache-2.0
//! Logging of `run`: one line per decision, on stderr. Under systemd, when stderr is the
//! journal (`$JOURNAL_STREAM` names stderr's device and inode), each line starts with its
//! syslog priority (`<3>` … `<7>`, see sd-daemon(3)) and has no timestamp of its own, so
//! `journalctl -p warning` works. Elsewhere: a timestamp and the level.
//!
//! The level: `--log-level`/`-v` if given, else `RUST_LOG` if set (per-module filters, for
//! developers), else the config's `[log] level` (applied again on every reload), else info.

use std::{
    io::Write,
    sync::atomic::{AtomicBool, Ordering},
};

use log::LevelFilter;
use mptcp_agent_core::config::LogLevel;

/// The level was fixed on the command line or by `RUST_LOG`: the config does not change it.
static FIXED: AtomicBool = AtomicBool::new(false);

pub fn filter_of(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error => LevelFilter::Error,
        LogLevel::Warning => LevelFilter::Warn,
        LogLevel::Info => LevelFilter::Info,
        LogLevel::Debug => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Trace,
    }
}

/// The syslog priority of a log level (sd-daemon(3)): err, warning, info, debug.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Whether `JOURNAL_STREAM` ("DEVICE:INODE", decimal) names this stat of stderr.
pub fn is_journal(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(js), Some((dev, ino))) = (journal_stream, stderr) else {
        return false;
    };
    let Some((d, i)) = js.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

fn stderr_stat() -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(libc::STDERR_FILENO).ok()?;
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    Some((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Set up the logger. `cli`: the level from `--log-level`/`-v`.
pub fn init(cli: Option<LogLevel>) {
    let journal = is_journal(
        std::env::var("JOURNAL_STREAM").ok().as_deref(),
        stderr_stat(),
    );
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let mut b = env_logger::Builder::new();
    match (&cli, &rust_log) {
        (None, Some(filters)) => {
            b.parse_filters(filters);
        }
        _ => {
            // Our crates as chatty as the level says; the libraries' debug output only
            // with trace, and netlink-packet-route's complaints about attributes it does
            // not know (newer kernels) never.
            b.filter_level(LevelFilter::Info)
                .filter_module("mptcp_agent", LevelFilter::Trace)
                .filter_module("mptcp_agent_core", LevelFilter::Trace)
                .filter_module("mptcp_genl", LevelFilter::Trace)
                .filter_module("netlink_packet_route", LevelFilter::Error);
        }
    }
    if journal {
        b.format(|buf, record| writeln!(buf, "<{}>{}", priority(record.level()), record.args()));
    } else {
        b.format_timestamp_millis();
    }
    b.init();
    match (cli, rust_log) {
        (Some(level), _) => {
            FIXED.store(true, Ordering::Relaxed);
            log::set_max_level(filter_of(level));
        }
        (None, Some(_)) => FIXED.store(true, Ordering::Relaxed),
        (None, None) => log::set_max_level(LevelFilter::Info),
    }
    log::debug!(
        "logging at {} to {}",
        log::max_level(),
        if journal {
            "the journal (syslog priority prefixes)"
        } else {
            "stderr"
        }
    );
}

/// Apply the config's `[log] level` (at start and after each reload), unless the level was
/// fixed on the command line or by `RUST_LOG`.
pub fn apply_config(level: Option<LogLevel>) {
    if FIXED.load(Ordering::Relaxed) {
        return;
    }
    let want = filter_of(level.unwrap_or(LogLevel::Info));
    if log::max_level() != want {
        log::set_max_level(want);
        log::info!("log level {}", level.unwrap_or(LogLevel::Info).name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_match_stderr() {
        assert!(is_journal(Some("8:12345"), Some((8, 12345))));
        assert!(!is_journal(Some("8:12345"), Some((8, 12346))));
        assert!(!is_journal(Some("9:12345"), Some((8, 12345))));
        assert!(!is_journal(Some("garbage"), Some((8, 12345))));
        assert!(!is_journal(None, Some((8, 12345))));
        assert!(!is_journal(Some("8:12345"), None));
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
        assert_eq!(priority(log::Level::Trace), 7);
    }
}
