// SPDX-License-Identifier: MIT OR Apache-2.0
//! Throwaway, named network namespaces for root tests.
//!
//! Named (via `ip netns add`) rather than anonymous, so that `ip -n NAME mptcp endpoint show`
//! can cross-check what a test did, and so a leftover is visible in `ip netns list`.
//! Dropping a [`Netns`] deletes it, also when the test panics.

use std::{
    fs::File,
    io,
    os::fd::AsFd,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use nix::sched::{setns, CloneFlags};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create `mmt-<tag>-<pid>-<seq>` with `lo` up. Names are unique per process and call,
    /// so tests can run side by side.
    pub fn new(tag: &str) -> io::Result<Self> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("mmt-{tag}-{}-{seq}", std::process::id());
        run_ok(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of the namespace file (for `setns`, `nsenter --net=`).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Run `ip -n NAME ARGS...`, returning stdout; a non-zero exit is an error with stderr.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let out = run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run any program inside the namespace (`ip netns exec NAME PROG ARGS...`).
    pub fn exec(&self, prog: &str, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name, prog])
            .args(args)
            .output()
    }

    /// Like [`Netns::exec`] but a non-zero exit is an error.
    pub fn exec_ok(&self, prog: &str, args: &[&str]) -> io::Result<String> {
        let out = run_ok(
            Command::new("ip")
                .args(["netns", "exec", &self.name, prog])
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Move the *calling thread* into this namespace until the guard drops. Sockets opened
    /// meanwhile (netlink included) stay bound to it. Build any tokio runtime after this.
    pub fn enter(&self) -> io::Result<EnteredNetns> {
        let back = File::open("/proc/thread-self/ns/net")?;
        let target = File::open(self.path())?;
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        Ok(EnteredNetns { back })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Run `f` in a new thread that lives in the named namespace (`/run/netns/NAME`) for its
/// whole life, so every socket it opens belongs there. The caller's thread is untouched.
pub fn run_in_netns<T, F>(name: &str, f: F) -> io::Result<std::thread::JoinHandle<io::Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = format!("/run/netns/{name}");
    let target = File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    std::thread::Builder::new()
        .name(format!("in-{name}"))
        .spawn(move || {
            setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            Ok(f())
        })
}

/// Returns the thread to the namespace it came from when dropped.
#[derive(Debug)]
pub struct EnteredNetns {
    back: File,
}

impl Drop for EnteredNetns {
    fn drop(&mut self) {
        if let Err(e) = setns(self.back.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Not recoverable for this thread; make it loud rather than run later tests in
            // the wrong namespace.
            panic!("could not return to the original network namespace: {e}");
        }
    }
}

/// Run a command; a non-zero exit becomes an error carrying the command line and stderr.
pub fn run_ok(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{:?} failed ({}): {}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
