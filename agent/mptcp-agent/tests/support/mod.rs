// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared by the service tests: a private dbus-daemon, the agent as a process, its
//! sd_notify socket, running the CLI as `nobody`. Everything started here is stopped by
//! pid when dropped, also when a test fails.

#![allow(dead_code)]

use std::{
    io,
    os::unix::{fs::PermissionsExt, net::UnixDatagram},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub type R = Result<(), String>;

pub const AGENT: &str = env!("CARGO_BIN_EXE_mptcp-agent");

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub use mptcp_lab::support::{ctx, ensure};

/// A world-readable temporary directory (the bus socket must be reachable by `nobody`).
pub fn public_tempdir() -> Result<tempfile::TempDir, String> {
    let d = ctx(tempfile::tempdir(), "tempdir")?;
    ctx(
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)),
        "chmod tempdir",
    )?;
    Ok(d)
}

pub fn write_file(path: &Path, text: &str, mode: u32) -> R {
    // Replace atomically, like an OTA update does.
    let tmp = path.with_extension("tmp-new");
    ctx(std::fs::write(&tmp, text), "writing config")?;
    ctx(
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)),
        "chmod config",
    )?;
    ctx(std::fs::rename(&tmp, path), "renaming config")
}

/// Stop a child we started: SIGTERM, then SIGKILL after `grace`; always reaped.
pub fn stop_child(child: &mut Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------
// dbus-daemon

pub enum Policy {
    /// The system bus defaults plus the shipped conf/dbus/io.github.meta_mptcp.Agent1.conf.
    Shipped,
    /// Everyone may do everything (like the lab's bus): only the agent's own check is left.
    Permissive,
    /// A permissive bus that includes the shipped policy file: its explicit denies hold.
    PermissiveWithShipped,
}

pub struct PrivateBus {
    child: Child,
    pub address: String,
}

impl PrivateBus {
    pub fn start(dir: &Path, policy: Policy) -> Result<PrivateBus, String> {
        let socket = dir.join("bus");
        let shipped = repo()
            .join("conf/dbus/io.github.meta_mptcp.Agent1.conf")
            .canonicalize()
            .map_err(|e| e.to_string())?;
        let rules = match policy {
            Policy::Shipped => format!(
                r#"  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>{}</include>"#,
                shipped.display()
            ),
            Policy::Permissive => r#"  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>"#
                .to_string(),
            Policy::PermissiveWithShipped => format!(
                r#"  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
  <include>{}</include>"#,
                shipped.display()
            ),
        };
        // The system bus's own rules (see /usr/share/dbus-1/system.conf), on a private socket.
        let conf = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
{rules}
</busconfig>
"#,
            socket.display()
        );
        let conf_path = dir.join("bus.conf");
        ctx(std::fs::write(&conf_path, conf), "bus.conf")?;
        let log = ctx(std::fs::File::create(dir.join("dbus.log")), "dbus.log")?;
        let mut child = ctx(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", conf_path.display()))
                .args(["--nofork", "--nopidfile"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn(),
            "starting dbus-daemon",
        )?;
        let up = mptcp_lab::wait_for(Duration::from_secs(5), || socket.exists().then_some(()));
        if up.is_none() {
            stop_child(&mut child, Duration::from_secs(1));
            let log = std::fs::read_to_string(dir.join("dbus.log")).unwrap_or_default();
            return Err(format!(
                "dbus-daemon socket did not appear within 5 s: {log}"
            ));
        }
        Ok(PrivateBus {
            child,
            address: format!("unix:path={}", socket.display()),
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------------------------------
// sd_notify

/// The socket the agent reports READY=1 / RELOADING=1 to, as systemd would.
pub struct Notify {
    pub path: PathBuf,
    sock: UnixDatagram,
}

impl Notify {
    pub fn bind(dir: &Path) -> Result<Notify, String> {
        let path = dir.join("notify");
        let sock = ctx(UnixDatagram::bind(&path), "binding the notify socket")?;
        Ok(Notify { path, sock })
    }

    /// The next datagram within `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Throw away what is queued (e.g. before starting the agent again).
    pub fn drain(&self) {
        while self.recv(Duration::from_millis(1)).is_some() {}
    }

    /// Wait for a datagram containing `what`; the ones before it, in order.
    pub fn wait_for(&self, what: &str, timeout: Duration) -> Result<Vec<String>, String> {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.recv(left.max(Duration::from_millis(1))) {
                Some(m) => {
                    let hit = m.contains(what);
                    seen.push(m);
                    if hit {
                        return Ok(seen);
                    }
                }
                None => break,
            }
        }
        Err(format!("no {what} within {timeout:?}; got {seen:?}"))
    }
}

// ---------------------------------------------------------------------------------------
// The agent

pub struct Agent {
    child: Option<Child>,
    pub log: PathBuf,
}

/// Spawns `cmd` (an agent) with stdout and stderr appended to `log`, logging at the level
/// of `MPTCP_TEST_AGENT_LOG` (default: info, rtnetlink's own messages only when errors).
pub fn spawn_agent(cmd: &mut Command, log: &Path) -> Result<Child, String> {
    let out = ctx(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log),
        "agent log",
    )?;
    let err = ctx(out.try_clone(), "agent log")?;
    ctx(
        cmd.env(
            "RUST_LOG",
            std::env::var("MPTCP_TEST_AGENT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn(),
        "starting mptcp-agent",
    )
}

impl Agent {
    /// `mptcp-agent run` in network namespace `ns`, on the bus at `bus`.
    pub fn start(
        ns: &str,
        bus: &str,
        config: &Path,
        state: &Path,
        notify: &Path,
        log: &Path,
    ) -> Result<Agent, String> {
        let child = spawn_agent(
            Command::new("ip")
                .args(["netns", "exec", ns, AGENT, "run", "--config"])
                .arg(config)
                .arg("--state-dir")
                .arg(state)
                .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
                .env("NOTIFY_SOCKET", notify),
            log,
        )?;
        Ok(Agent {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(5));
        }
    }

    /// SIGTERM, and the exit status if the agent exits within `grace`; otherwise it is
    /// killed and `None` returned. Either way it is reaped.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Clients

/// Run a program with the private bus as the system bus, as root or as `nobody`.
pub fn client(bus: &str, as_nobody: bool, program: &str, args: &[&str]) -> io::Result<Output> {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    c.args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `dbus-send --system --print-reply` to the agent's object.
pub fn dbus_send(bus: &str, as_nobody: bool, member: &str, extra: &[&str]) -> io::Result<Output> {
    let mut args = vec![
        "--system",
        "--print-reply",
        "--reply-timeout=10000",
        "--dest=io.github.meta_mptcp.Agent1",
        "/io/github/meta_mptcp/Agent1",
        member,
    ];
    args.extend_from_slice(extra);
    client(bus, as_nobody, "dbus-send", &args)
}

/// `mptcp-agent status --json`, parsed.
pub fn status(bus: &str, as_nobody: bool) -> Result<serde_json::Value, String> {
    let o = ctx(
        client(bus, as_nobody, AGENT, &["status", "--json"]),
        "status",
    )?;
    // 5: shown, and a configured link is refused or degraded (tests look at the links).
    if !matches!(o.status.code(), Some(0 | 5)) {
        return Err(format!("status failed: {}", text(&o)));
    }
    let v: serde_json::Value = ctx(serde_json::from_slice(&o.stdout), "status JSON")?;
    let healthy = v["health"] == "healthy";
    if healthy != (o.status.code() == Some(0)) {
        return Err(format!(
            "status exit {:?} does not match health {}",
            o.status.code(),
            v["health"]
        ));
    }
    Ok(v)
}

/// The `<interface name="io.github.meta_mptcp.Agent1">` element, indentation removed.
pub fn interface_block(xml: &str) -> Option<String> {
    let start = xml.find("<interface name=\"io.github.meta_mptcp.Agent1\">")?;
    let end = start + xml[start..].find("</interface>")? + "</interface>".len();
    Some(
        xml[start..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Limits of a namespace as `ip mptcp limits show` prints them.
pub fn limits(ns: &mptcp_lab::netns::Netns) -> Result<String, String> {
    ctx(ns.ip(&["mptcp", "limits", "show"]), "ip mptcp limits").map(|s| s.trim().to_string())
}
