// SPDX-License-Identifier: MIT OR Apache-2.0
//! The NetworkManager lab from Rust: a thin, typed wrapper around `testing/lab/lab.sh`.
//!
//! [`Lab::up`] runs `lab.sh up` with a prefix and directory unique to this process and call,
//! so tests run side by side. Every helper is a `lab.sh` command, so the shell and Rust labs
//! behave the same. Dropping a [`Lab`] runs `lab.sh down` (also while a test panics): every
//! process the lab started is stopped by pid, the namespaces and the lab directory are deleted.
//!
//! ```no_run
//! use mptcp_lab::{Lab, LabOptions};
//! let lab = Lab::up(LabOptions::default().carrier_wait_ms(1000))?;
//! lab.dev_ip(&["mptcp", "endpoint", "add", "10.2.0.2", "dev", "wwan0", "subflow"])?;
//! lab.carrier("wwan0", false)?;          // peer link down: wwan0 loses LOWER_UP
//! let devs = lab.nmcli(&["-t", "-f", "DEVICE,STATE", "device"])?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::{
    collections::BTreeMap,
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::run_in_netns;
use crate::traffic::{self, ClientConfig, Limits, Proto, ServerConfig, ServerEvent, Transfer};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Env var overriding where `lab.sh` is (default: next to this crate's Cargo.toml).
pub const SCRIPT_ENV: &str = "MPTCP_LAB_SH";

/// The lab's script.
pub fn script_path() -> PathBuf {
    std::env::var_os(SCRIPT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("lab.sh"))
}

/// How to build the lab. `Default` = NM's own MPTCP off, no mptcpd, NM's default
/// carrier-wait (6 s), both uplinks with a default route, 20 Mbit/s each way per uplink.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Leave NetworkManager's own MPTCP endpoint handling on (its default, `0x22`).
    pub nm_mptcp: bool,
    /// Start mptcpd (addr_adv plugin) in the device namespace.
    pub mptcpd: bool,
    /// NetworkManager's `carrier-wait-timeout` in ms; `None` = NM's default (6000).
    pub carrier_wait_ms: Option<u32>,
    /// Uplinks whose profile has `never-default` (no default route in the main table).
    pub no_default_route: Vec<String>,
    /// tbf rate per uplink and direction (`"20mbit"`); `None` = unshaped.
    pub rate: Option<String>,
    /// Start `mptcpize run iperf3 -s -p 5201` in the server namespace.
    pub iperf3_server: bool,
    /// Bound for NetworkManager's startup and activation.
    pub startup_timeout: Duration,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            nm_mptcp: false,
            mptcpd: false,
            carrier_wait_ms: None,
            no_default_route: Vec::new(),
            rate: Some("20mbit".into()),
            iperf3_server: false,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

impl LabOptions {
    pub fn nm_mptcp(mut self, on: bool) -> Self {
        self.nm_mptcp = on;
        self
    }
    pub fn mptcpd(mut self, on: bool) -> Self {
        self.mptcpd = on;
        self
    }
    pub fn carrier_wait_ms(mut self, ms: u32) -> Self {
        self.carrier_wait_ms = Some(ms);
        self
    }
    pub fn no_default_route(mut self, uplink: &str) -> Self {
        self.no_default_route.push(uplink.to_string());
        self
    }
    pub fn rate(mut self, rate: Option<&str>) -> Self {
        self.rate = rate.map(str::to_string);
        self
    }
    pub fn iperf3_server(mut self, on: bool) -> Self {
        self.iperf3_server = on;
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--nm-mptcp".to_string(),
            if self.nm_mptcp { "on" } else { "off" }.to_string(),
        ];
        if self.mptcpd {
            a.push("--mptcpd".into());
        }
        if let Some(ms) = self.carrier_wait_ms {
            a.extend(["--carrier-wait".into(), ms.to_string()]);
        }
        for u in &self.no_default_route {
            a.extend(["--no-default".into(), u.clone()]);
        }
        a.extend([
            "--rate".into(),
            self.rate.clone().unwrap_or_else(|| "none".into()),
        ]);
        if self.iperf3_server {
            a.push("--iperf3".into());
        }
        a.extend([
            "--timeout".into(),
            self.startup_timeout.as_secs().max(1).to_string(),
        ]);
        a
    }
}

/// One of the lab's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The device: NetworkManager, mptcpd, the agent; uplinks wlan0 and wwan0.
    Device,
    /// The router between the uplinks and the server.
    Router,
    /// The CGNAT-like box behind wwan0 (nftables masquerade).
    Nat,
    /// The MPTCP server.
    Server,
}

impl Node {
    fn arg(self) -> &'static str {
        match self {
            Node::Device => "dev",
            Node::Router => "rtr",
            Node::Nat => "nat",
            Node::Server => "srv",
        }
    }
}

/// One uplink of the device, as configured by the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// Interface name in the device namespace (`wlan0`, `wwan0`).
    pub name: String,
    /// NetworkManager connection id (`uplink-wlan0`).
    pub connection: String,
    pub addr4: Ipv4Addr,
    pub gw4: Ipv4Addr,
    pub addr6: Ipv6Addr,
    pub gw6: Ipv6Addr,
    /// Source address the server sees for this path (the NAT's for wwan0).
    pub seen4: Ipv4Addr,
    pub seen6: Ipv6Addr,
    /// NetworkManager route metric.
    pub metric: u32,
    /// Whether NM installs a default route for it in the main table.
    pub default_route: bool,
    /// Far end of the veth: namespace and interface (what [`Lab::carrier`] toggles).
    pub peer_ns: String,
    pub peer_if: String,
}

/// A running lab; dropped = torn down.
#[derive(Debug)]
pub struct Lab {
    script: PathBuf,
    prefix: String,
    dir: PathBuf,
    env: BTreeMap<String, String>,
    uplinks: Vec<Uplink>,
    down: bool,
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Lab {
    /// Build a lab with a fresh unique prefix (`m<pid>x<seq>`) under `/tmp/mptcp-lab/`.
    /// First removes labs left behind by processes that no longer exist. On failure,
    /// `lab.sh` has already removed whatever it created.
    pub fn up(opts: LabOptions) -> io::Result<Lab> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("m{}x{}", std::process::id(), radix36(seq));
        let dir = PathBuf::from("/tmp/mptcp-lab").join(&prefix);
        Self::up_named(&prefix, &dir, opts)
    }

    /// Like [`Lab::up`] with an explicit prefix (`[a-z0-9]{1,12}`) and directory.
    pub fn up_named(prefix: &str, dir: &Path, opts: LabOptions) -> io::Result<Lab> {
        let script = script_path();
        // Best effort: a stale lab only costs memory, it never blocks a new one.
        let _ = Command::new(&script)
            .arg("sweep")
            .env("LAB_PREFIX", prefix)
            .output();
        let out = Command::new(&script)
            .arg("up")
            .args(opts.args())
            .env("LAB_PREFIX", prefix)
            .env("LAB_DIR", dir)
            .env("LAB_OWNER_PID", std::process::id().to_string())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab.sh up failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut lab = Lab {
            script,
            prefix: prefix.to_string(),
            dir: dir.to_path_buf(),
            env: BTreeMap::new(),
            uplinks: Vec::new(),
            down: false,
        };
        // From here on, Drop cleans up if parsing fails.
        lab.env = parse_env(&std::fs::read_to_string(dir.join("lab.env"))?);
        lab.uplinks = lab.parse_uplinks()?;
        Ok(lab)
    }

    fn parse_uplinks(&self) -> io::Result<Vec<Uplink>> {
        let names = self.env_value("LAB_UPLINKS")?;
        names
            .split_whitespace()
            .map(|name| {
                let k = |s: &str| format!("LAB_{}_{s}", name.to_uppercase());
                let ip4 = |s: &str| -> io::Result<Ipv4Addr> {
                    self.env_value(&k(s))?
                        .parse()
                        .map_err(|e| bad(format!("{}: {e}", k(s))))
                };
                let ip6 = |s: &str| -> io::Result<Ipv6Addr> {
                    self.env_value(&k(s))?
                        .parse()
                        .map_err(|e| bad(format!("{}: {e}", k(s))))
                };
                Ok(Uplink {
                    name: name.to_string(),
                    connection: self.env_value(&k("CONNECTION"))?.to_string(),
                    addr4: ip4("ADDR4")?,
                    gw4: ip4("GW4")?,
                    addr6: ip6("ADDR6")?,
                    gw6: ip6("GW6")?,
                    seen4: ip4("SEEN4")?,
                    seen6: ip6("SEEN6")?,
                    metric: self
                        .env_value(&k("METRIC"))?
                        .parse()
                        .map_err(|e| bad(format!("metric: {e}")))?,
                    default_route: self.env_value(&k("DEFAULT_ROUTE"))? == "true",
                    peer_ns: self.env_value(&k("PEER_NS"))?.to_string(),
                    peer_if: self.env_value(&k("PEER_IF"))?.to_string(),
                })
            })
            .collect()
    }

    /// A value from the lab's `lab.env` (see `lab.sh env`).
    pub fn env_value(&self, key: &str) -> io::Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("{key} missing from {}/lab.env", self.dir.display())))
    }

    // --- accessors -------------------------------------------------------------------------

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The lab's state directory (bus socket, NM config and state, logs, pid files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Namespace name of a node.
    pub fn ns(&self, node: Node) -> &str {
        let key = match node {
            Node::Device => "LAB_DEV_NS",
            Node::Router => "LAB_RTR_NS",
            Node::Nat => "LAB_NAT_NS",
            Node::Server => "LAB_SRV_NS",
        };
        self.env.get(key).map(String::as_str).unwrap_or("")
    }
    /// The device namespace: where NetworkManager runs and the agent must run.
    pub fn dev_ns(&self) -> &str {
        self.ns(Node::Device)
    }
    pub fn server_ns(&self) -> &str {
        self.ns(Node::Server)
    }
    /// `DBUS_SYSTEM_BUS_ADDRESS` of the lab's private system bus (usable from any namespace).
    pub fn bus_address(&self) -> &str {
        self.env
            .get("DBUS_SYSTEM_BUS_ADDRESS")
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn server_addr4(&self) -> Ipv4Addr {
        self.env
            .get("LAB_SERVER_ADDR4")
            .and_then(|v| v.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
    pub fn server_addr6(&self) -> Ipv6Addr {
        self.env
            .get("LAB_SERVER_ADDR6")
            .and_then(|v| v.parse().ok())
            .unwrap_or(Ipv6Addr::UNSPECIFIED)
    }
    pub fn uplinks(&self) -> &[Uplink] {
        &self.uplinks
    }
    /// An uplink by interface name; an error names the ones that exist.
    pub fn uplink(&self, name: &str) -> io::Result<&Uplink> {
        self.uplinks.iter().find(|u| u.name == name).ok_or_else(|| {
            let have: Vec<&str> = self.uplinks.iter().map(|u| u.name.as_str()).collect();
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no uplink {name} (have {have:?})"),
            )
        })
    }
    /// Seconds `lab.sh up` took, and of those NetworkManager's start → all uplinks activated.
    pub fn up_seconds(&self) -> Option<f64> {
        self.env.get("LAB_UP_S").and_then(|v| v.parse().ok())
    }
    pub fn nm_startup_seconds(&self) -> Option<f64> {
        self.env
            .get("LAB_NM_STARTUP_S")
            .and_then(|v| v.parse().ok())
    }

    // --- running things --------------------------------------------------------------------

    fn script_cmd(&self) -> Command {
        let mut c = Command::new(&self.script);
        c.env("LAB_PREFIX", &self.prefix).env("LAB_DIR", &self.dir);
        c
    }

    /// Run `lab.sh ARGS...`; stdout on success, an error with stderr otherwise.
    pub fn script(&self, args: &[&str]) -> io::Result<String> {
        let out = self.script_cmd().args(args).output()?;
        check(&format!("lab.sh {}", args.join(" ")), out)
    }

    /// A command that runs `program` in a namespace; in the device namespace with
    /// `DBUS_SYSTEM_BUS_ADDRESS` set. Spawn it yourself (it is not stopped by `down` unless
    /// still running in a lab namespace then: leftovers there are killed).
    pub fn command(&self, node: Node, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(node), program]);
        if node == Node::Device {
            c.env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address());
        }
        c
    }

    /// Run a program in a namespace and wait; stdout, or an error with stderr.
    pub fn exec(&self, node: Node, program: &str, args: &[&str]) -> io::Result<String> {
        let out = self.command(node, program).args(args).output()?;
        check(
            &format!(
                "{} in {}: {program} {}",
                node.arg(),
                self.ns(node),
                args.join(" ")
            ),
            out,
        )
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, node: Node, args: &[&str]) -> io::Result<String> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(self.ns(node))
            .args(args)
            .output()?;
        check(&format!("ip -n {} {}", self.ns(node), args.join(" ")), out)
    }

    /// `ip -n DEV ARGS...`.
    pub fn dev_ip(&self, args: &[&str]) -> io::Result<String> {
        self.ip(Node::Device, args)
    }

    /// `nmcli ARGS...` against the lab's private bus.
    pub fn nmcli(&self, args: &[&str]) -> io::Result<String> {
        let out = Command::new("nmcli")
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .output()?;
        check(&format!("nmcli {}", args.join(" ")), out)
    }

    /// NetworkManager has reached "startup complete" (`nm-online -s -t 0`).
    pub fn nm_startup_complete(&self) -> bool {
        Command::new("nm-online")
            .args(["-s", "-q", "-t", "0"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus_address())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// NM's state of an uplink's connection (`activated`, ...), `None` if not active.
    pub fn connection_state(&self, uplink: &str) -> io::Result<Option<String>> {
        let conn = self.uplink(uplink)?.connection.clone();
        let s = self.nmcli(&["-g", "GENERAL.STATE", "connection", "show", &conn])?;
        let s = s.trim();
        Ok(if s.is_empty() {
            None
        } else {
            Some(s.to_string())
        })
    }

    /// `lab.sh status`.
    pub fn status(&self) -> io::Result<String> {
        self.script(&["status"])
    }

    // --- link helpers ----------------------------------------------------------------------

    /// Cut (`false`) or restore (`true`) the uplink's carrier from the far side: the peer
    /// veth goes admin-down/up, and the device side loses/regains carrier (LOWER_UP) at once,
    /// before this returns. One `ip` call (a few ms), so take a timestamp just before calling
    /// it when you measure reaction times.
    pub fn carrier(&self, uplink: &str, on: bool) -> io::Result<()> {
        let u = self.uplink(uplink)?;
        let state = if on { "up" } else { "down" };
        let out = Command::new("ip")
            .args(["-n", &u.peer_ns, "link", "set", &u.peer_if, state])
            .output()?;
        check(&format!("carrier {uplink} {state}"), out).map(drop)
    }

    /// Set the uplink admin up/down on the device side (`ip link set`; one `ip` call).
    pub fn link(&self, uplink: &str, up: bool) -> io::Result<()> {
        self.uplink(uplink)?;
        self.dev_ip(&["link", "set", uplink, if up { "up" } else { "down" }])
            .map(drop)
    }

    /// `nmcli connection up/down uplink-IF`; returns when NM has finished (at most 10 s).
    pub fn connection(&self, uplink: &str, up: bool) -> io::Result<()> {
        let conn = self.uplink(uplink)?.connection.clone();
        let verb = if up { "up" } else { "down" };
        self.nmcli(&["--wait", "10", "connection", verb, &conn])
            .map(drop)
    }

    /// `ss -K` in the server namespace with an ss filter, e.g. `["dst", "10.20.0.2"]`:
    /// resets the matching TCP sockets (MPTCP subflows included).
    pub fn kill_subflows(&self, filter: &[&str]) -> io::Result<String> {
        let mut args = vec!["kill-subflows"];
        args.extend_from_slice(filter);
        self.script(&args)
    }

    /// Reset every TCP socket (subflow) of this uplink's path, as seen on the server.
    pub fn kill_subflows_of(&self, uplink: &str) -> io::Result<String> {
        self.script(&["kill-subflows-of", uplink])
    }

    // --- daemons ---------------------------------------------------------------------------

    /// SIGTERM NetworkManager, start it again, wait for startup complete + activation.
    pub fn nm_restart(&self) -> io::Result<()> {
        self.script(&["nm-restart"]).map(drop)
    }
    /// SIGKILL NetworkManager (it leaves addresses, routes and endpoints behind).
    pub fn nm_kill(&self) -> io::Result<()> {
        self.script(&["nm-kill"]).map(drop)
    }
    /// SIGTERM NetworkManager and wait until it is gone.
    pub fn nm_stop(&self) -> io::Result<()> {
        self.script(&["nm-stop"]).map(drop)
    }
    /// Start NetworkManager (after `nm_kill`/`nm_stop`) and wait until ready.
    pub fn nm_start(&self) -> io::Result<()> {
        self.script(&["nm-start"]).map(drop)
    }
    pub fn mptcpd_start(&self) -> io::Result<()> {
        self.script(&["mptcpd-start"]).map(drop)
    }
    pub fn mptcpd_stop(&self) -> io::Result<()> {
        self.script(&["mptcpd-stop"]).map(drop)
    }

    /// Start a background process in a namespace under `name` (log: `dir/log/NAME.log`);
    /// stopped by [`Lab::stop`] or when the lab goes down. Returns its pid.
    pub fn spawn(&self, node: Node, name: &str, argv: &[&str]) -> io::Result<u32> {
        let mut args = vec!["spawn", node.arg(), name];
        args.extend_from_slice(argv);
        let out = self.script(&args)?;
        out.trim()
            .parse()
            .map_err(|e| bad(format!("spawn {name}: pid {out:?}: {e}")))
    }

    /// Stop a process started by the lab (`nm`, `dbus`, `mptcpd`, `iperf3` or a spawn name).
    pub fn stop(&self, name: &str) -> io::Result<()> {
        self.script(&["stop", name]).map(drop)
    }

    /// Pid of a running lab process (`nm`, `dbus`, `mptcpd`, ...), `None` if not running.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// Every running lab process: (name, pid).
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut v = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.dir.join("pids")) else {
            return v;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Some(name) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut it = text.split_whitespace();
            let (Some(pid), Some(start)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if process_start_time(pid).as_deref() == Some(start) && !process_is_zombie(pid) {
                v.push((name, pid));
            }
        }
        v.sort();
        v
    }

    // --- traffic ---------------------------------------------------------------------------

    /// An in-process MPTCP traffic server in the server namespace, listening on both server
    /// addresses at `port`. Drop it before the lab (declare it after the `Lab`).
    pub fn traffic_server(&self, port: u16) -> io::Result<TrafficServer> {
        TrafficServer::start(
            self.server_ns(),
            vec![
                SocketAddr::from((self.server_addr4(), port)),
                SocketAddr::from((self.server_addr6(), port)),
            ],
        )
    }

    /// Run a traffic client in the device namespace and wait for its result.
    pub fn traffic_client(&self, cfg: ClientConfig) -> io::Result<Transfer> {
        self.spawn_traffic_client(cfg)?
            .join()
            .map_err(|_| io::Error::other("traffic client thread panicked"))?
    }

    /// Start a traffic client in the device namespace in a thread (e.g. to flap links
    /// meanwhile); join the handle for the result.
    pub fn spawn_traffic_client(
        &self,
        cfg: ClientConfig,
    ) -> io::Result<JoinHandle<io::Result<Transfer>>> {
        run_in_netns(self.dev_ns(), move || {
            traffic::run_client(&cfg, None, &mut |_| {})
        })
    }

    /// MPTCP server address for this family at `port`.
    pub fn server_sockaddr(&self, v6: bool, port: u16) -> SocketAddr {
        if v6 {
            SocketAddr::from((self.server_addr6(), port))
        } else {
            SocketAddr::from((self.server_addr4(), port))
        }
    }

    // --- teardown --------------------------------------------------------------------------

    /// Tear down now and report errors (Drop does the same, ignoring them).
    pub fn down(mut self) -> io::Result<()> {
        self.down = true;
        self.script(&["down"]).map(drop)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        match self.script_cmd().arg("down").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "lab {}: down failed: {}",
                self.prefix,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("lab {}: down failed: {e}", self.prefix),
        }
    }
}

fn check(what: &str, out: Output) -> io::Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

fn radix36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat` (start time), the same value `lab.sh` records.
pub fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

/// The process `pid` that started at `start_time` (see [`process_start_time`]) is still
/// running: not exited, not a zombie waiting to be reaped, not a recycled pid.
pub fn process_alive(pid: u32, start_time: &str) -> bool {
    process_start_time(pid).as_deref() == Some(start_time) && !process_is_zombie(pid)
}

fn process_is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

/// Poll `f` every 10 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An in-process [`traffic::Server`] running in a namespace; stops (bounded) when dropped.
pub struct TrafficServer {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    finished: Arc<Mutex<Vec<Transfer>>>,
    thread: Option<JoinHandle<io::Result<io::Result<()>>>>,
}

impl std::fmt::Debug for TrafficServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficServer")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl TrafficServer {
    /// Listen (MPTCP) on `addrs` inside namespace `ns`.
    pub fn start(ns: &str, addrs: Vec<SocketAddr>) -> io::Result<TrafficServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Vec<SocketAddr>>>();
        let (stop2, fin2) = (Arc::clone(&stop), Arc::clone(&finished));
        let thread = run_in_netns(ns, move || -> io::Result<()> {
            let server = match traffic::Server::bind(ServerConfig {
                listen: addrs,
                proto: Proto::Mptcp,
                limits: Limits {
                    timeout: Duration::from_secs(600),
                    stall_abort: Duration::from_secs(30),
                },
            }) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    return Err(e);
                }
            };
            let _ = ready_tx.send(Ok(server.local_addrs()));
            let sink: Arc<dyn Fn(ServerEvent) + Send + Sync> = Arc::new(move |ev| {
                if let ServerEvent::Finished { transfer, .. } = ev {
                    if let Ok(mut f) = fin2.lock() {
                        f.push(transfer);
                    }
                }
            });
            server.serve(&stop2, None, sink).map(drop)
        })?;
        let addrs = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::other("traffic server did not start"))??;
        Ok(TrafficServer {
            addrs,
            stop,
            finished,
            thread: Some(thread),
        })
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Transfers finished so far, oldest first.
    pub fn finished(&self) -> Vec<Transfer> {
        self.finished.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Wait (bounded) until at least `n` transfers have finished.
    pub fn wait_finished(&self, n: usize, timeout: Duration) -> Option<Vec<Transfer>> {
        wait_for(timeout, || {
            let f = self.finished();
            (f.len() >= n).then_some(f)
        })
    }
}

impl Drop for TrafficServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // Connection threads poll the stop flag every 100 ms.
            let _ = t.join();
        }
    }
}
