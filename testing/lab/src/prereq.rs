// SPDX-License-Identifier: MIT OR Apache-2.0
//! Prerequisites of root-only tests.
//!
//! A test that cannot run here is reported as *ignored* with the reason printed on stderr,
//! never as passed. With `MPTCP_REQUIRE_ROOT_TESTS=1` (set by CI, which runs as root) a
//! missing prerequisite is a failure instead, so a green CI run means the tests really ran.

use std::path::Path;

/// What a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// uid 0 (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces and mounts).
    Root,
    /// The kernel has MPTCP (`/proc/sys/net/mptcp` exists).
    Mptcp,
    /// A program on PATH, e.g. `ip`, `NetworkManager`, `iperf3`.
    Program(&'static str),
}

/// Env var that turns a missing prerequisite into a test failure.
pub const REQUIRE_ENV: &str = "MPTCP_REQUIRE_ROOT_TESTS";

/// Why these needs are not met here, or `None` when they all are.
pub fn unmet(needs: &[Need]) -> Option<String> {
    let mut why = Vec::new();
    for need in needs {
        match need {
            Need::Root => {
                if !nix::unistd::geteuid().is_root() {
                    why.push("not running as root".to_string());
                }
            }
            Need::Mptcp => {
                if !Path::new("/proc/sys/net/mptcp").exists() {
                    why.push("kernel has no MPTCP (/proc/sys/net/mptcp missing)".to_string());
                }
            }
            Need::Program(p) => {
                if which(p).is_none() {
                    why.push(format!("`{p}` not found on PATH (run testing/setup.sh)"));
                }
            }
        }
    }
    if why.is_empty() {
        None
    } else {
        Some(why.join("; "))
    }
}

/// True when CI (or the user) demands that root tests run rather than skip.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV)
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// For a plain `#[test]`: true when `needs` are met. Otherwise the test is skipped loudly
/// (false: return early), or fails when [`required`].
pub fn met_or_skip(needs: &[Need], what: &str) -> bool {
    let Some(why) = unmet(needs) else {
        return true;
    };
    let msg = format!("SKIPPED ({why}): {what}");
    if required() {
        panic!("{msg}");
    }
    eprintln!("\n*** {msg} ***\n");
    false
}

/// Look a program up on PATH (also /usr/sbin and /usr/libexec, where daemons live).
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.exists().then(|| p.to_path_buf());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/libexec"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// Build libtest-mimic trials for root tests: each trial is ignored (with a loud note on
/// stderr) when its needs are unmet, or fails when [`required`] is set.
pub fn trials<F>(needs: &[Need], tests: Vec<(&'static str, F)>) -> Vec<libtest_mimic::Trial>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let unmet = unmet(needs);
    if let Some(why) = &unmet {
        if required() {
            eprintln!(
                "\n*** {} root tests CANNOT RUN ({why}) and {REQUIRE_ENV}=1: they FAIL ***\n",
                tests.len()
            );
        } else {
            eprintln!("\n*** SKIPPING {} root tests: {why} ***\n", tests.len());
        }
    }
    tests
        .into_iter()
        .map(|(name, f)| match &unmet {
            None => libtest_mimic::Trial::test(name, move || f().map_err(Into::into)),
            Some(why) if required() => {
                let why = why.clone();
                libtest_mimic::Trial::test(name, move || {
                    Err(format!("prerequisite missing: {why}").into())
                })
            }
            Some(_) => libtest_mimic::Trial::test(name, || Ok(())).with_ignored_flag(true),
        })
        .collect()
}

/// Run root trials and exit with the harness's status. Use as the whole `main` of a
/// `harness = false` test target.
pub fn run_trials(trials: Vec<libtest_mimic::Trial>) -> ! {
    let mut args = libtest_mimic::Arguments::from_args();
    // Ignored root tests are prerequisites-not-met, never "run with --ignored".
    args.ignored = false;
    args.include_ignored = false;
    libtest_mimic::run(&args, trials).exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn met_needs_run_and_unmet_ones_skip_or_fail() {
        assert!(met_or_skip(&[], "nothing needed"));
        let missing = [Need::Program("no-such-program-meta-mptcp")];
        assert!(unmet(&missing).is_some_and(|why| why.contains("no-such-program")));
        if required() {
            assert!(std::panic::catch_unwind(|| met_or_skip(&missing, "t")).is_err());
        } else {
            assert!(!met_or_skip(&missing, "a missing program"));
        }
    }
}
