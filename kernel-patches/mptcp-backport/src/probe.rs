// SPDX-License-Identifier: MIT OR Apache-2.0
//! `probe`: what the running kernel really does, as opposed to what its source text says.
//! Runs as root (on the host, or in a kmx guest through `verify --boot`): the 5.15 sysctls,
//! the PM netlink family through mptcp-genl (limits, endpoints, SET_FLAGS, events), an MPTCP
//! transfer between two network namespaces whose second subflow really joins, and
//! SO_TIMESTAMPNS delivered as a control message on an MPTCP socket. Every check reports the
//! kernel's own error; the namespaces are removed at the end.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mptcp_genl::{Endpoint, EndpointFlags, EndpointKey, EventKind, EventStream, Limits, PmHandle};
use nix::sched::{setns, CloneFlags};
use serde::Serialize;

/// Bound of every wait.
const WAIT: Duration = Duration::from_secs(10);
const BULK: usize = 1 << 20;
const SYSCTLS: [&str; 5] = [
    "enabled",
    "add_addr_timeout",
    "checksum_enabled",
    "allow_join_initial_addr_port",
    "stale_loss_cnt",
];

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was seen, or the kernel's (or tool's) error.
    pub detail: String,
}

/// All checks.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// `uname -r` of the running kernel.
    pub kernel: String,
    pub checks: Vec<Check>,
    pub ok: bool,
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &str, r: Result<String, String>) -> bool {
        let ok = r.is_ok();
        let detail = match r {
            Ok(d) | Err(d) => d,
        };
        self.0.push(Check {
            name: name.into(),
            ok,
            detail,
        });
        ok
    }
}

/// Run every check.
pub fn probe() -> ProbeReport {
    let mut c = Checks(Vec::new());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    for s in SYSCTLS {
        let path = format!("/proc/sys/net/mptcp/{s}");
        c.add(
            &format!("sysctl net.mptcp.{s}"),
            std::fs::read_to_string(&path)
                .map(|v| format!("= {}", v.trim()))
                .map_err(|e| format!("{path}: {e}")),
        );
    }
    if !nix::unistd::geteuid().is_root() {
        c.add(
            "namespaces",
            Err("not root: the netlink, transfer and timestamp checks need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)".into()),
        );
    } else {
        match Lab::new() {
            Ok(lab) => lab.run(&mut c),
            Err(e) => {
                c.add("namespaces", Err(e));
            }
        }
    }
    let ok = c.0.iter().all(|k| k.ok);
    ProbeReport {
        kernel,
        checks: c.0,
        ok,
    }
}

/// Human-readable report: one line per check.
pub fn render_text(r: &ProbeReport) -> String {
    let mut s = format!("mptcp-backport probe on Linux {}\n", r.kernel);
    for k in &r.checks {
        s.push_str(&format!(
            "{} {}: {}\n",
            if k.ok { "pass" } else { "FAIL" },
            k.name,
            k.detail
        ));
    }
    s.push_str(if r.ok {
        "probe: every check passed\n"
    } else {
        "probe: FAILED\n"
    });
    s
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace made with `ip netns add`, deleted on drop.
struct Ns {
    name: String,
}

impl Ns {
    fn new(tag: &str) -> Result<Ns, String> {
        let name = format!(
            "mbp-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let ns = Ns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Enter on this thread until the guard drops; sockets made meanwhile stay in the netns.
    fn enter(&self) -> Result<Entered, String> {
        let back = File::open("/proc/thread-self/ns/net").map_err(|e| format!("own netns: {e}"))?;
        let path = format!("/run/netns/{}", self.name);
        let target = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {path}: {e}"))?;
        Ok(Entered { back })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

struct Entered {
    back: File,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) = setns(self.back.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Carrying on in the wrong namespace would make every later result a lie.
            panic!("cannot return to the original network namespace: {e}");
        }
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("ip: {e} (install iproute2)"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Client and server namespaces joined by one veth pair; each side has two addresses.
struct Lab {
    srv: Ns,
    cli: Ns,
}

const SRV: [&str; 2] = ["10.77.0.1", "10.77.0.4"];
const CLI: [&str; 2] = ["10.77.0.2", "10.77.0.3"];

impl Lab {
    fn new() -> Result<Lab, String> {
        let srv = Ns::new("srv")?;
        let cli = Ns::new("cli")?;
        cli.ip(&[
            "link", "add", "c0", "type", "veth", "peer", "name", "s0", "netns", &srv.name,
        ])?;
        for (ns, dev, addrs) in [(&cli, "c0", CLI), (&srv, "s0", SRV)] {
            for a in addrs {
                ns.ip(&["addr", "add", &format!("{a}/24"), "dev", dev, "nodad"])?;
            }
            ns.ip(&["link", "set", dev, "up"])?;
        }
        Ok(Lab { srv, cli })
    }

    fn run(&self, c: &mut Checks) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                c.add("tokio runtime", Err(e.to_string()));
                return;
            }
        };
        let limits = Limits {
            subflows: Some(2),
            add_addr_accepted: Some(2),
        };
        // Server: family, limits.
        let srv_pm = match self.in_ns_flat(&self.srv, || {
            rt.block_on(PmHandle::connect()).map_err(|e| e.to_string())
        }) {
            Ok(pm) => pm,
            Err(e) => {
                c.add("PM netlink family mptcp_pm", Err(e));
                return;
            }
        };
        let caps = srv_pm.capabilities();
        c.add(
            "PM netlink family mptcp_pm",
            Ok(format!(
                "id {}, version {}, commands {:?}",
                caps.family_id,
                caps.version,
                caps.commands()
            )),
        );
        c.add(
            "PM limits (SET_LIMITS, GET_LIMITS)",
            rt.block_on(async {
                srv_pm.set_limits(limits).await.map_err(|e| e.to_string())?;
                let got = srv_pm.limits().await.map_err(|e| e.to_string())?;
                if got == limits {
                    Ok(format!(
                        "subflows {:?}, add_addr_accepted {:?}",
                        got.subflows, got.add_addr_accepted
                    ))
                } else {
                    Err(format!("set {limits:?}, read back {got:?}"))
                }
            }),
        );
        // Client: limits, events, a subflow endpoint, SET_FLAGS.
        let cli_side = self.in_ns_flat(&self.cli, || {
            rt.block_on(async {
                let pm = PmHandle::connect().await.map_err(|e| e.to_string())?;
                pm.set_limits(limits).await.map_err(|e| e.to_string())?;
                let ev = pm.subscribe_events().map_err(|e| e.to_string());
                Ok::<_, String>((pm, ev))
            })
        });
        let (cli_pm, events) = match cli_side {
            Ok(x) => x,
            Err(e) => {
                c.add("client PM", Err(e));
                return;
            }
        };
        let mut events = match events {
            Ok(ev) => {
                c.add("PM events group mptcp_pm_events", Ok("subscribed".into()));
                Some(ev)
            }
            Err(e) => {
                c.add("PM events group mptcp_pm_events", Err(e));
                None
            }
        };
        let extra: IpAddr = CLI[1].parse().expect("constant address");
        let added = c.add(
            "PM ADD_ADDR (subflow endpoint)",
            rt.block_on(async {
                cli_pm
                    .add_endpoint(&Endpoint::new(extra, EndpointFlags::SUBFLOW))
                    .await
                    .map_err(|e| e.to_string())?;
                let eps = cli_pm.endpoints().await.map_err(|e| e.to_string())?;
                eps.iter()
                    .find(|e| e.addr == extra)
                    .map(|e| format!("{} id {} {:?}", e.addr, e.id, e.flags.names()))
                    .ok_or_else(|| format!("added {extra}, the dump has {eps:?}"))
            }),
        );
        if added {
            c.add(
                "PM SET_FLAGS (backup on, then off)",
                rt.block_on(set_flags_round_trip(&cli_pm, extra)),
            );
        }
        self.transfer(c, &rt, events.as_mut());
    }

    fn in_ns<T>(&self, ns: &Ns, f: impl FnOnce() -> T) -> Result<T, String> {
        let _in = ns.enter()?;
        Ok(f())
    }

    fn in_ns_flat<T>(&self, ns: &Ns, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        self.in_ns(ns, f)?
    }

    /// Connect, let the second subflow join, move 1 MiB, check SO_TIMESTAMPNS cmsgs.
    fn transfer(
        &self,
        c: &mut Checks,
        rt: &tokio::runtime::Runtime,
        events: Option<&mut EventStream>,
    ) {
        let port = 20000 + (std::process::id() % 20000) as u16;
        let srv_addr = SocketAddrV4::new(SRV[0].parse().expect("constant"), port);
        let listener = match self.in_ns_flat(&self.srv, || mptcp_listen(srv_addr)) {
            Ok(l) => l,
            Err(e) => {
                c.add("MPTCP transfer", Err(e));
                return;
            }
        };
        let server = std::thread::spawn(move || serve(listener));
        let stream = self.in_ns_flat(&self.cli, || mptcp_connect(srv_addr));
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                c.add("MPTCP transfer", Err(e));
                let _ = server.join();
                return;
            }
        };
        // Handshake: the server switches timestamps on before the bulk data is sent.
        let hello = stream
            .write_all(b"hello")
            .and_then(|_| {
                let mut go = [0u8; 2];
                stream.read_exact(&mut go)
            })
            .map_err(|e| format!("hello/go exchange: {e}"));
        if let Err(e) = hello {
            c.add("MPTCP transfer", Err(e));
            drop(stream);
            let _ = server.join();
            return;
        }
        // The second subflow: the server counts the join's third ACK.
        let start = Instant::now();
        let joined = loop {
            match self.in_ns_flat(&self.srv, || mptcp_counter("MPJoinAckRx")) {
                Ok(n) if n >= 1 => break Ok(n),
                Ok(n) if start.elapsed() > WAIT => {
                    break Err(format!(
                        "MPTcpExt MPJoinAckRx = {n} on the server after {WAIT:?}: no subflow joined (client endpoint {} subflow)",
                        CLI[1]
                    ))
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => break Err(e),
            }
        };
        let data: Vec<u8> = (0..BULK).map(|i| (i % 251) as u8).collect();
        let sent = stream
            .write_all(&data)
            .and_then(|_| stream.shutdown(std::net::Shutdown::Write))
            .map_err(|e| format!("send: {e}"));
        let served = server
            .join()
            .unwrap_or_else(|_| Err("server thread panicked".into()));
        let proto = socket_protocol(&stream);
        drop(stream);
        c.add(
            "MPTCP transfer between two namespaces",
            match (&sent, &served, proto) {
                (Err(e), _, _) => Err(e.clone()),
                (_, Err(e), _) => Err(e.clone()),
                (_, _, Err(e)) => Err(e),
                (Ok(()), Ok(s), Ok(p)) if p != libc::IPPROTO_MPTCP => Err(format!(
                    "the client socket has protocol {p}, not IPPROTO_MPTCP ({}); {} bytes",
                    libc::IPPROTO_MPTCP,
                    s.bytes
                )),
                (Ok(()), Ok(s), Ok(_)) if s.bytes == BULK && s.sum == checksum(&data) => {
                    Ok(format!(
                        "{} bytes, content intact, socket protocol IPPROTO_MPTCP",
                        s.bytes
                    ))
                }
                (Ok(()), Ok(s), Ok(_)) => Err(format!(
                    "received {} of {BULK} bytes (content {})",
                    s.bytes,
                    if s.sum == checksum(&data) {
                        "ok"
                    } else {
                        "corrupt"
                    }
                )),
            },
        );
        c.add(
            "second subflow joins",
            joined.map(|n| format!("MPTcpExt MPJoinAckRx = {n} on the server")),
        );
        c.add(
            "SO_TIMESTAMPNS cmsg on an MPTCP socket",
            match &served {
                Ok(s) => s.timestamps.clone(),
                Err(e) => Err(format!("no server result: {e}")),
            },
        );
        if let Some(ev) = events {
            c.add(
                "PM events (CREATED, ESTABLISHED, SUB_ESTABLISHED)",
                rt.block_on(expect_events(ev)),
            );
        }
    }
}

async fn set_flags_round_trip(pm: &PmHandle, addr: IpAddr) -> Result<String, String> {
    let key = EndpointKey::Addr { addr, port: None };
    let flags_now = || async {
        let eps = pm.endpoints().await.map_err(|e| e.to_string())?;
        eps.iter()
            .find(|e| e.addr == addr)
            .map(|e| e.flags)
            .ok_or_else(|| format!("{addr} vanished from the dump"))
    };
    pm.set_endpoint_flags(key, EndpointFlags::SUBFLOW | EndpointFlags::BACKUP)
        .await
        .map_err(|e| e.to_string())?;
    let on = flags_now().await?;
    if !on.contains(EndpointFlags::BACKUP) {
        return Err(format!(
            "SET_FLAGS backup answered ok, the endpoint has {:?}",
            on.names()
        ));
    }
    pm.set_endpoint_flags(key, EndpointFlags::SUBFLOW)
        .await
        .map_err(|e| e.to_string())?;
    let off = flags_now().await?;
    if off.contains(EndpointFlags::BACKUP) {
        return Err(format!(
            "SET_FLAGS nobackup answered ok, the endpoint has {:?}",
            off.names()
        ));
    }
    Ok(format!("{:?} -> {:?}", on.names(), off.names()))
}

async fn expect_events(ev: &mut EventStream) -> Result<String, String> {
    let want = [
        EventKind::Created,
        EventKind::Established,
        EventKind::SubEstablished,
    ];
    let mut seen: Vec<EventKind> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !want.iter().all(|w| seen.contains(w)) {
        match tokio::time::timeout_at(deadline, ev.next()).await {
            Err(_) => {
                return Err(format!(
                    "within {WAIT:?} saw only {:?}",
                    seen.iter().map(|k| k.name()).collect::<Vec<_>>()
                ))
            }
            Ok(None) => return Err("event stream ended".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(e))) => seen.push(e.kind),
        }
    }
    Ok(seen.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "))
}

/// What the server got.
struct Served {
    bytes: usize,
    sum: u64,
    timestamps: Result<String, String>,
}

fn checksum(data: &[u8]) -> u64 {
    data.iter().enumerate().fold(0u64, |a, (i, &b)| {
        a.wrapping_mul(31).wrapping_add(b as u64 ^ i as u64)
    })
}

/// Accept one connection (bounded), switch SO_TIMESTAMPNS on, answer "go", read to EOF with
/// recvmsg and look for SCM_TIMESTAMPNS.
fn serve(listener: TcpListener) -> Result<Served, String> {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, WAIT.as_millis() as libc::c_int) };
    if n <= 0 {
        return Err(format!("no connection within {WAIT:?}"));
    }
    let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    set_timeouts(&s)?;
    let mut hello = [0u8; 5];
    s.read_exact(&mut hello)
        .map_err(|e| format!("hello: {e}"))?;
    let one: libc::c_int = 1;
    // SAFETY: valid fd, option value of the advertised size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let ts_set = if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "setsockopt(SO_TIMESTAMPNS): {}",
            std::io::Error::last_os_error()
        ))
    };
    s.write_all(b"go").map_err(|e| format!("go: {e}"))?;
    let mut bytes = 0usize;
    let mut sum = 0u64;
    let mut with_ts = 0usize;
    let mut reads = 0usize;
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 64];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr is valid; pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(format!(
                "recvmsg after {bytes} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        if n == 0 {
            break;
        }
        reads += 1;
        for (i, &b) in buf[..n as usize].iter().enumerate() {
            sum = sum
                .wrapping_mul(31)
                .wrapping_add(b as u64 ^ (bytes + i) as u64);
        }
        bytes += n as usize;
        // SAFETY: walking the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut cm = libc::CMSG_FIRSTHDR(&msg);
            while !cm.is_null() {
                if (*cm).cmsg_level == libc::SOL_SOCKET && (*cm).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    with_ts += 1;
                }
                cm = libc::CMSG_NXTHDR(&msg, cm);
            }
        }
    }
    let timestamps = ts_set.and_then(|()| {
        if with_ts > 0 {
            Ok(format!("SCM_TIMESTAMPNS on {with_ts} of {reads} reads"))
        } else {
            Err(format!(
                "setsockopt ok, but none of {reads} reads carried SCM_TIMESTAMPNS"
            ))
        }
    });
    Ok(Served {
        bytes,
        sum,
        timestamps,
    })
}

fn mptcp_socket() -> Result<OwnedFd, String> {
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_MPTCP) };
    if fd < 0 {
        return Err(format!(
            "socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn mptcp_listen(a: SocketAddrV4) -> Result<TcpListener, String> {
    let fd = mptcp_socket()?;
    let sa = sockaddr(a);
    let one: libc::c_int = 1;
    // SAFETY: valid fd and option/address buffers of the sizes given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        if libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            return Err(format!("bind {a}: {}", std::io::Error::last_os_error()));
        }
        if libc::listen(fd.as_raw_fd(), 4) != 0 {
            return Err(format!("listen {a}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(TcpListener::from(fd))
}

fn mptcp_connect(a: SocketAddrV4) -> Result<TcpStream, String> {
    let fd = mptcp_socket()?;
    let sa = sockaddr(a);
    let tv = libc::timeval {
        tv_sec: WAIT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: valid fd and buffers of the sizes given. SO_SNDTIMEO bounds connect()
    // where the kernel accepts it (5.15's MPTCP refuses it: set_timeouts).
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(format!("connect {a}: {}", std::io::Error::last_os_error()));
    }
    let s = TcpStream::from(fd);
    set_timeouts(&s)?;
    Ok(s)
}

/// Bounds reads and, where the kernel allows it, writes. 5.15's MPTCP (so the backport)
/// refuses SO_SNDTIMEO with EOPNOTSUPP (6.x accepts it); writes stay bounded all the same
/// because the peer reads with SO_RCVTIMEO and closes on timeout, which fails our write.
fn set_timeouts(s: &TcpStream) -> Result<(), String> {
    s.set_read_timeout(Some(WAIT))
        .map_err(|e| format!("setsockopt(SO_RCVTIMEO): {e}"))?;
    match s.set_write_timeout(Some(WAIT)) {
        Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => {
            Err(format!("setsockopt(SO_SNDTIMEO): {e}"))
        }
        _ => Ok(()),
    }
}

fn socket_protocol(s: &TcpStream) -> Result<i32, String> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd; v and len are live and sized.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "getsockopt(SO_PROTOCOL): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(v)
}

/// An `MPTcpExt` counter of the calling thread's network namespace.
fn mptcp_counter(name: &str) -> Result<u64, String> {
    let path = "/proc/thread-self/net/netstat";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("MPTcpExt:"))
        .collect();
    if lines.len() < 2 {
        return Err(format!("{path}: no MPTcpExt counters"));
    }
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("{path}: no MPTcpExt {name}"))?
        .1
        .parse()
        .map_err(|e| format!("MPTcpExt {name}: {e}"))
}
