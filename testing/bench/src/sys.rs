// SPDX-License-Identifier: MIT OR Apache-2.0
//! Small facts from /proc and from the installed programs.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Instant, SystemTime},
};

use crate::model::Machine;

/// Fields of `/proc/PID/status` that are in kB, in the order asked.
fn status_kib<const N: usize>(pid: u32, names: [&str; N]) -> Option<[u64; N]> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut out = [0; N];
    for (o, name) in out.iter_mut().zip(names) {
        *o = s
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
    }
    Some(out)
}

/// `VmRSS` and `VmHWM` of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    status_kib(pid, ["VmRSS", "VmHWM"]).map(|[rss, hwm]| (rss, hwm))
}

/// `VmRSS` split: `RssAnon` (heap, stacks: the process's own) and `RssFile` (mapped pages of
/// the program and its libraries: clean, reclaimable, libc's shared with other processes), KiB.
pub fn rss_split_kib(pid: u32) -> Option<(u64, u64)> {
    status_kib(pid, ["RssAnon", "RssFile"]).map(|[anon, file]| (anon, file))
}

/// utime + stime of a process, ms.
pub fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 * 1000.0 / hz as f64)
}

/// When a file was last written, as an `Instant` (for "the lab forked the process now":
/// `lab.sh` writes the pid file right after the fork).
pub fn mtime_instant(path: &Path) -> Option<Instant> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    let (now_i, now_s) = (Instant::now(), SystemTime::now());
    let age = now_s.duration_since(m).unwrap_or_default();
    now_i.checked_sub(age)
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| format!("{cmd}: not found"))
}

pub fn mptcpd_binary() -> PathBuf {
    let libexec = PathBuf::from("/usr/libexec/mptcpd");
    if libexec.exists() {
        libexec
    } else {
        PathBuf::from("mptcpd")
    }
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn machine(agent_bin: Option<&Path>, repo: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_mib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |k| k / 1024);
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let git = {
        let rev = first_line(
            "git",
            &[
                "-C",
                &repo.to_string_lossy(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
        );
        let dirty = Command::new("git")
            .args([
                "-C",
                &repo.to_string_lossy(),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        if dirty {
            format!("{rev} (with uncommitted changes)")
        } else {
            rev
        }
    };
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        mem_total_mib,
        kernel,
        networkmanager: first_line("NetworkManager", &["--version"]),
        mptcpd: first_line(&mptcpd_binary().to_string_lossy(), &["--version"]),
        iproute2: first_line("ip", &["-V"]),
        agent: agent_bin
            .map(|b| first_line(&b.to_string_lossy(), &["--version"]))
            .unwrap_or_else(|| "not run".into()),
        git,
        loadavg_start: loadavg(),
        loadavg_end: String::new(),
    }
}

/// Size of a file and whether it still has a symbol table.
pub fn binary_size(path: &Path) -> Option<(u64, bool)> {
    let data = std::fs::read(path).ok()?;
    let has_symtab = data.windows(8).any(|w| w == b".symtab\0");
    Some((data.len() as u64, !has_symtab))
}

/// The peers' installed programs, for context next to the agent's size.
pub fn peer_binaries(c: crate::model::Contender) -> Vec<PathBuf> {
    use crate::model::Contender;
    match c {
        Contender::Nm => vec![PathBuf::from("/usr/sbin/NetworkManager")],
        Contender::Mptcpd => {
            let mut v = vec![mptcpd_binary()];
            for dir in glob_dirs("/usr/lib", "mptcpd") {
                v.push(dir.join("addr_adv.so"));
            }
            for lib in glob_files("/usr/lib", "libmptcpd.so.") {
                v.push(lib);
            }
            v.retain(|p| p.exists());
            v
        }
        Contender::Agent => Vec::new(),
    }
}

/// `/usr/lib/*/NAME` directories.
fn glob_dirs(root: &str, name: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join(name);
            if p.is_dir() {
                v.push(p);
            }
        }
    }
    v
}

/// `/usr/lib/*/PREFIX*` regular files (not symlinks), so a library counts once.
fn glob_files(root: &str, prefix: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            if let Ok(inner) = std::fs::read_dir(e.path()) {
                for f in inner.flatten() {
                    let name = f.file_name();
                    let is_file = f.file_type().map(|t| t.is_file()).unwrap_or(false);
                    if is_file && name.to_string_lossy().starts_with(prefix) {
                        v.push(f.path());
                    }
                }
            }
        }
    }
    v
}
