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

/// Per-module levels: `RUST_LOG`'s directives (`info`, `mptcp_agent=debug,zbus=off`), or
/// ours. As env_logger reads them: the longest module prefix that matches decides; a bare
/// level is the default; nothing matching means off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    default: LevelFilter,
    /// (module path prefix, level), longest first.
    modules: Vec<(String, LevelFilter)>,
}

impl Filters {
    pub fn parse(spec: &str) -> Filters {
        let mut f = Filters {
            default: LevelFilter::Off,
            modules: Vec::new(),
        };
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            // A `/regex` suffix (env_logger's message filter) is not supported: ignored.
            let d = d.split('/').next().unwrap_or_default();
            match d.split_once('=') {
                Some((module, level)) => {
                    if let Ok(l) = level.trim().parse() {
                        f.modules.push((module.trim().to_string(), l));
                    }
                }
                None => match d.parse::<LevelFilter>() {
                    Ok(l) => f.default = l,
                    // A bare module name: everything of it.
                    Err(_) => f.modules.push((d.to_string(), LevelFilter::Trace)),
                },
            }
        }
        f.sort();
        f
    }

    fn ours() -> Filters {
        let mut f = Filters {
            default: LevelFilter::Info,
            modules: vec![
                ("mptcp_agent".into(), LevelFilter::Trace),
                ("mptcp_agent_core".into(), LevelFilter::Trace),
                ("mptcp_genl".into(), LevelFilter::Trace),
            ],
        };
        f.sort();
        f
    }

    fn sort(&mut self) {
        self.modules.sort_by_key(|m| std::cmp::Reverse(m.0.len()));
    }

    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.modules
            .iter()
            .find(|(m, _)| {
                target == m
                    || (target.starts_with(m.as_str()) && target[m.len()..].starts_with("::"))
            })
            .map_or(self.default, |(_, l)| *l)
    }

    fn max(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, l)| *l)
            .chain([self.default])
            .max()
            .unwrap_or(LevelFilter::Off)
    }
}

/// The agent's logger: one `write` per line on stderr.
struct Logger {
    journal: bool,
    filters: Filters,
}

impl Logger {
    fn line(&self, record: &log::Record<'_>, now_usec: u64) -> String {
        if self.journal {
            format!("<{}>{}\n", priority(record.level()), record.args())
        } else {
            // env_logger's default layout, which scripts and tests already read.
            format!(
                "[{} {:<5} {}] {}\n",
                crate::walltime::utc(now_usec),
                record.level(),
                record.target(),
                record.args()
            )
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.filters.level_for(m.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = crate::walltime::now_usec();
        let _ = std::io::stderr()
            .lock()
            .write_all(self.line(record, now).as_bytes());
    }

    fn flush(&self) {}
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
    // Our crates as chatty as the level says; the libraries' debug output only with
    // trace, and netlink-packet-route's complaints about attributes it does not know
    // (newer kernels) never.
    let filters = match (&cli, &rust_log) {
        (None, Some(spec)) => Filters::parse(spec),
        _ => Filters::ours(),
    };
    let max = filters.max();
    if log::set_boxed_logger(Box::new(Logger { journal, filters })).is_err() {
        return;
    }
    match (cli, rust_log) {
        (Some(level), _) => {
            FIXED.store(true, Ordering::Relaxed);
            log::set_max_level(filter_of(level));
        }
        (None, Some(_)) => {
            FIXED.store(true, Ordering::Relaxed);
            log::set_max_level(max);
        }
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
    fn filters_read_like_env_logger() {
        let f = Filters::parse("warn,mptcp_agent=debug,mptcp_agent::daemon=trace,zbus=off,tokio");
        assert_eq!(f.level_for("mptcp_agent"), LevelFilter::Debug);
        assert_eq!(f.level_for("mptcp_agent::nm"), LevelFilter::Debug);
        assert_eq!(f.level_for("mptcp_agent::daemon"), LevelFilter::Trace);
        // A prefix of a module name is not that module.
        assert_eq!(f.level_for("mptcp_agent_core::plan"), LevelFilter::Warn);
        assert_eq!(f.level_for("zbus::connection"), LevelFilter::Off);
        assert_eq!(f.level_for("tokio::runtime"), LevelFilter::Trace);
        assert_eq!(f.max(), LevelFilter::Trace);
        let f = Filters::parse("mptcp_agent=info");
        assert_eq!(f.level_for("rtnetlink"), LevelFilter::Off);
        assert_eq!(
            Filters::parse("debug").level_for("anything"),
            LevelFilter::Debug
        );
        let ours = Filters::ours();
        assert_eq!(
            ours.level_for("netlink_proto::connection"),
            LevelFilter::Info
        );
        assert_eq!(ours.level_for("mptcp_genl::event"), LevelFilter::Trace);
        assert_eq!(ours.level_for("zbus::conn"), LevelFilter::Info);
    }

    #[test]
    fn lines_as_the_journal_and_a_terminal_want_them() {
        let args = format_args!("eth0: endpoint added");
        let r = log::Record::builder()
            .level(log::Level::Warn)
            .target("mptcp_agent::daemon")
            .args(args)
            .build();
        let journal = Logger {
            journal: true,
            filters: Filters::ours(),
        };
        assert_eq!(journal.line(&r, 0), "<4>eth0: endpoint added\n");
        let term = Logger {
            journal: false,
            filters: Filters::ours(),
        };
        assert_eq!(
            term.line(&r, 1_796_704_201_234_000),
            "[2026-12-08T04:30:01.234Z WARN  mptcp_agent::daemon] eth0: endpoint added\n"
        );
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
