// SPDX-License-Identifier: MIT OR Apache-2.0
//! Root tests of mptcp-genl against the running kernel. Each test gets its own network
//! namespace(s); every command is cross-checked with iproute2 (`ip mptcp ...`), and events
//! come from a real MPTCP connection between two namespaces.
//!
//! They run on the host (6.x) and, through `testing/kernel-matrix/kmx libtest`, in a 5.10 guest.
//! Where 5.10 has a command but answers differently, a test branches on the crate's own
//! capability probe (`Capabilities::generation() == Mainline510`) and checks what 5.10 does.
//! A test of something 5.10 lacks (SET_FLAGS, events) fails there with a message saying so:
//! testing/kernel-matrix/expected/5.10.223.tsv lists those cases, and a backported kernel must
//! pass.
//! Between 5.12 and today kernels answer some requests differently (SET_FLAGS by id,
//! refusal codes, listener events); `Answers` says which answer each release gives, and a
//! 5.10 base with the backport is held to 5.15's.

use std::{
    io::{self, Read, Write},
    net::{IpAddr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::{FromRawFd, OwnedFd},
    time::Duration,
};

use futures::StreamExt;
use mptcp_genl::{
    Capabilities, Cmd, Endpoint, EndpointFlags, EndpointKey, Error, EventKind, EventStream,
    KernelGeneration, Limits, PmEvent, PmHandle,
};
use mptcp_lab::{
    netns::Netns,
    prereq::{run_trials, trials, Need},
    support::{ensure, Ctx},
};
use tokio::runtime::Runtime;

type TestResult = Result<(), String>;
type Test = (&'static str, fn() -> TestResult);

fn main() {
    let tests: Vec<Test> = vec![
        ("capabilities_of_this_kernel", capabilities_of_this_kernel),
        ("laminar_flag_probe", laminar_flag_probe),
        (
            "endpoints_add_get_dump_delete_flush",
            endpoints_add_get_dump_delete_flush,
        ),
        (
            "endpoints_added_by_iproute2_decode",
            endpoints_added_by_iproute2_decode,
        ),
        (
            "kernel_picks_id_and_refuses_duplicates",
            kernel_picks_id_and_refuses_duplicates,
        ),
        ("delete_and_get_errors", delete_and_get_errors),
        ("limits_get_set_and_maximum", limits_get_set_and_maximum),
        (
            "set_flags_backup_and_fullmesh",
            set_flags_backup_and_fullmesh,
        ),
        (
            "events_from_a_real_connection",
            events_from_a_real_connection,
        ),
        (
            "events_lost_on_overrun_then_continue",
            events_lost_on_overrun_then_continue,
        ),
    ];
    run_trials(trials(
        &[
            Need::Root,
            Need::Mptcp,
            Need::Program("ip"),
            Need::Program("ss"),
            Need::Program("genl"),
        ],
        tests,
    ))
}

fn eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> TestResult {
    ensure(got == want, || {
        format!("{what}: got {got:?}, want {want:?}")
    })
}

fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx("tokio runtime")
}

/// Run `f` on this thread inside a fresh namespace, with a runtime built after entering.
fn in_netns(tag: &str, f: impl FnOnce(&Netns, &Runtime) -> TestResult) -> TestResult {
    let ns = Netns::new(tag).ctx("create netns")?;
    let entered = ns.enter().ctx("enter netns")?;
    let rt = runtime()?;
    let result = f(&ns, &rt);
    drop(rt);
    drop(entered);
    result
}

/// `ip -n NS mptcp endpoint show`, one normalised line per endpoint, sorted.
fn ip_endpoints(ns: &Netns) -> Result<Vec<String>, String> {
    let out = ns
        .ip(&["mptcp", "endpoint", "show"])
        .ctx("ip mptcp endpoint show")?;
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    Ok(lines)
}

/// `ip mptcp limits show` as (add_addr_accepted, subflows).
fn ip_limits(ns: &Netns) -> Result<(u32, u32), String> {
    let out = ns
        .ip(&["mptcp", "limits", "show"])
        .ctx("ip mptcp limits show")?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let field = |name: &str| -> Result<u32, String> {
        let i = words
            .iter()
            .position(|w| *w == name)
            .ok_or_else(|| format!("no {name} in {out:?}"))?;
        words
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad {name} in {out:?}"))
    };
    Ok((field("add_addr_accepted")?, field("subflows")?))
}

fn ifindex(ns: &Netns, dev: &str) -> Result<u32, String> {
    let out = ns.ip(&["-o", "link", "show", dev]).ctx("ip link show")?;
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no ifindex in {out:?}"))
}

/// How iproute2 6.1 prints an endpoint, from our decoded value: the cross-check of our
/// decoding against iproute2's.
fn ip_style(ep: &Endpoint, devs: &[(u32, &str)]) -> String {
    let mut s = format!("{}", ep.addr);
    if let Some(p) = ep.port {
        s += &format!(" port {p}");
    }
    s += &format!(" id {}", ep.id);
    for (flag, name) in [
        (EndpointFlags::SIGNAL, "signal"),
        (EndpointFlags::SUBFLOW, "subflow"),
        (EndpointFlags::BACKUP, "backup"),
        (EndpointFlags::FULLMESH, "fullmesh"),
        (EndpointFlags::IMPLICIT, "implicit"),
    ] {
        if ep.flags.contains(flag) {
            s += &format!(" {name}");
        }
    }
    if let Some(i) = ep.ifindex {
        let name = devs
            .iter()
            .find(|(x, _)| *x == i)
            .map(|(_, n)| n.to_string());
        s += &format!(" dev {}", name.unwrap_or_else(|| i.to_string()));
    }
    s
}

/// A veth pair va/vb, up, with `addrs` on va: a signal endpoint with a port needs its
/// address to be local (the kernel opens a listener; EADDRNOTAVAIL otherwise).
fn veth_with_addrs(ns: &Netns, addrs: &[&str]) -> Result<u32, String> {
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
        .ctx("veth")?;
    for a in addrs {
        ns.ip(&["addr", "add", a, "dev", "va", "nodad"])
            .ctx("addr add")?;
    }
    ns.ip(&["link", "set", "vb", "up"]).ctx("vb up")?;
    ns.ip(&["link", "set", "va", "up"]).ctx("va up")?;
    ifindex(ns, "va")
}

fn ip_style_all(eps: &[Endpoint], devs: &[(u32, &str)]) -> Vec<String> {
    let mut v: Vec<String> = eps.iter().map(|e| ip_style(e, devs)).collect();
    v.sort();
    v
}

fn endpoint(id: u8, addr: &str, flags: EndpointFlags) -> Endpoint {
    Endpoint {
        id,
        addr: addr.parse().expect("test address"),
        port: None,
        flags,
        ifindex: None,
        unknown: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Kernel generations. The endpoint tests branch on the crate's own probe
// (`Capabilities::generation`), not on the release alone: a 5.10 BSP kernel with the 5.15
// MPTCP backport probes as `Events512` and takes the newer branch, so the 5.10 facts below are
// checked only where the probe says the kernel is plain 5.10. Each 5.10 fact is checked on
// its own with a message naming it: a kernel that behaves like 5.12+ while its probe says
// `Mainline510` is noticed, not silently accepted.

/// The answer of 5.10's ADD_ADDR to a duplicate address and to a ninth endpoint alike
/// (`mptcp_nl_cmd_add_addr`), with EINVAL.
const MSG_510_ADD_REFUSED: &str = "too many addresses or duplicate one";

/// Whether the probe of this namespace's family says plain 5.10 (`Mainline510`).
fn plain_510(pm: &PmHandle) -> bool {
    pm.capabilities().generation() == KernelGeneration::Mainline510
}

/// The failure message of a test whose feature this kernel's probe says is missing. Such a
/// test fails (never skips): it is listed in testing/kernel-matrix/expected/5.10.223.tsv as an
/// expected failure on plain 5.10, and is the regression test for a backported kernel.
fn lacks(caps: &Capabilities, feature: &str) -> String {
    format!(
        "this kernel has no {feature} (its probe says {}): expected on plain 5.10, a bug on a \
         kernel with the 5.15 MPTCP backport",
        caps.generation()
    )
}

/// What 5.10 stores for an accepted ADD_ADDR (net/mptcp/pm_netlink.c): the id is the
/// namespace's `next_id++` whatever id was asked (`mptcp_pm_nl_append_new_local_addr`), and
/// `MPTCP_PM_ADDR_ATTR_PORT` is never parsed (`mptcp_pm_parse_addr`). Address, flags
/// (fullmesh included) and ifindex are stored as given.
fn stored_by_510(requested: &Endpoint, id: u8) -> Endpoint {
    Endpoint {
        id,
        port: None,
        ..requested.clone()
    }
}

/// The 5.10 facts about one endpoint in a dump, each with its own message: the id is the
/// one 5.10 assigned (`want_id`), not the one asked for, and no port came back.
fn check_510_endpoint(dump: &[Endpoint], requested: &Endpoint, want_id: u8) -> TestResult {
    let got = dump
        .iter()
        .find(|e| e.addr == requested.addr)
        .ok_or_else(|| format!("{} missing from the dump {dump:?}", requested.addr))?;
    ensure(got.id == want_id, || {
        format!(
            "5.10 assigns endpoint ids in sequence (next_id++) and ignores the requested one: {} \
             asked as id {} should be id {want_id}, is id {}. A kernel that keeps requested \
             ids behaves like 5.12+, yet its probe says Mainline510",
            requested.addr, requested.id, got.id
        )
    })?;
    ensure(got.port.is_none(), || {
        format!(
            "5.10 never parses the endpoint port: {} asked with port {:?} came back with port \
             {:?}. Ports arrived in 5.12, yet this kernel's probe says Mainline510",
            requested.addr, requested.port, got.port
        )
    })
}

/// 5.10's refusal of an ADD_ADDR: EINVAL "too many addresses or duplicate one" (newer
/// kernels answer EEXIST for a duplicate and ERANGE for a ninth endpoint).
fn check_510_add_refused(err: &Error, what: &str) -> TestResult {
    ensure(
        matches!(err, Error::Kernel { command: Cmd::AddAddr, errno, .. } if *errno == libc::EINVAL)
            && err.kernel_message() == Some(MSG_510_ADD_REFUSED)
            && !err.is_already_exists(),
        || {
            format!(
                "{what}: 5.10 answers EINVAL \"{MSG_510_ADD_REFUSED}\", got {err:?}. An EEXIST \
                 or ERANGE here is the newer kernels' answer, yet this kernel's probe says \
                 Mainline510"
            )
        },
    )
}

// ---------------------------------------------------------------------------------------
// Kernels since 5.12. Their answers differ in ways the probe cannot see (no command or
// group marks them), so these checks also read the release, mapped to the upstream
// release whose answers it gives. A 5.10 base whose probe finds SET_FLAGS and events
// carries our backport and answers like 5.15. What each point rests on:
// - 5.15: its net/mptcp/pm_netlink.c (the backport's target);
// - 6.1: the 6.1.192 guest (`kmx libtest`) and its source;
// - 6.6: its pm_netlink.c (same answers as 6.1 where listed below);
// - 6.18: the host.
// Releases in between follow the upstream commit that changed the answer; where that
// release is not pinned (the precise refusals, between 6.7 and 6.17) either answer passes.

/// Which answers to expect from a kernel with SET_FLAGS and events.
#[derive(Debug, Clone, Copy)]
struct Answers {
    /// `major.minor` whose answers this kernel gives.
    like: (u32, u32),
    /// The kernel's own release, for messages.
    release: (u32, u32),
}

/// The two answers kernels give to a refused request, old and new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusals {
    /// Up to at least 6.6: EINVAL for a duplicate or a 9th endpoint alike, with
    /// "too many addresses or duplicate one" (6.6 adds ": -22"); SET_FLAGS refuses with
    /// EINVAL and no extack message.
    Old,
    /// 6.18: EEXIST for a duplicate, ERANGE for a 9th endpoint; SET_FLAGS says
    /// "invalid addr flags" / "address not found".
    New,
    /// A release between the two, where the change is not pinned here: either passes.
    Either,
}

/// `major.minor` of the running kernel (`/proc/sys/kernel/osrelease`).
fn kernel_release() -> Result<(u32, u32), String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").ctx("kernel release")?;
    let mut parts = text.trim().split(['.', '-']);
    let mut number = |what: &str| {
        parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(|| format!("kernel release {:?}: no {what} number", text.trim()))
    };
    Ok((number("major")?, number("minor")?))
}

impl Answers {
    fn of(pm: &PmHandle) -> Result<Answers, String> {
        let release = kernel_release()?;
        let like = if release == (5, 10) && !plain_510(pm) {
            (5, 15)
        } else {
            release
        };
        Ok(Answers { like, release })
    }

    /// SET_FLAGS finds an endpoint by id (5.17, "allow changing the backup bit by endpoint
    /// id"); 5.12-5.16 need the address ("missing family" without it).
    fn set_flags_by_id(&self) -> bool {
        self.like >= (5, 17)
    }

    /// SET_FLAGS changes fullmesh too (5.17); before, only backup, and a fullmesh request
    /// is taken as "backup off".
    fn set_flags_fullmesh(&self) -> bool {
        self.like >= (5, 17)
    }

    /// CREATED/ESTABLISHED say which side is the server (MPTCP_ATTR_SERVER_SIDE, 5.17; a
    /// flag in 6.18).
    fn says_server_side(&self) -> bool {
        self.like >= (5, 17)
    }

    /// LISTENER_CREATED / LISTENER_CLOSED events (6.2).
    fn listener_events(&self) -> bool {
        self.like >= (6, 2)
    }

    fn refusals(&self) -> Refusals {
        if self.like <= (6, 6) {
            Refusals::Old
        } else if self.like >= (6, 18) {
            Refusals::New
        } else {
            Refusals::Either
        }
    }

    /// For messages: "6.1.x" or "5.10 with the backport (answers like 5.15)".
    fn describe(&self) -> String {
        if self.like == self.release {
            format!("{}.{}", self.release.0, self.release.1)
        } else {
            format!(
                "{}.{} with the backport (answers like {}.{})",
                self.release.0, self.release.1, self.like.0, self.like.1
            )
        }
    }

    /// Check a refused ADD_ADDR: a duplicate (`duplicate`) or a 9th endpoint.
    fn check_add_refused(&self, err: &Error, duplicate: bool, what: &str) -> TestResult {
        let errno = err.errno();
        let msg = err.kernel_message().unwrap_or_default();
        let old = errno == Some(libc::EINVAL) && msg.starts_with(MSG_510_ADD_REFUSED);
        let new = if duplicate {
            err.is_already_exists() && msg.contains("duplicate")
        } else {
            errno == Some(libc::ERANGE) && msg.contains("too many addresses")
        };
        let ok = matches!(
            err,
            Error::Kernel {
                command: Cmd::AddAddr,
                ..
            }
        ) && match self.refusals() {
            Refusals::Old => old,
            Refusals::New => new,
            Refusals::Either => old || new,
        };
        eprintln!("kernel facts: {what} -> {err}");
        ensure(ok, || {
            format!(
                "{what} on {}: want the {:?} answer (old: EINVAL \"{MSG_510_ADD_REFUSED}\"; new: \
                 {} with its message), got {err:?}",
                self.describe(),
                self.refusals(),
                if duplicate { "EEXIST" } else { "ERANGE" }
            )
        })
    }

    /// Check a refused SET_FLAGS: EINVAL, with `new_msg` on kernels with the new answers
    /// and no message on the old ones.
    fn check_set_flags_refused(&self, err: &Error, new_msg: &str, what: &str) -> TestResult {
        let msg = err.kernel_message();
        let ok = matches!(err, Error::Kernel { command: Cmd::SetFlags, errno, .. } if *errno == libc::EINVAL)
            && match self.refusals() {
                Refusals::Old => msg.is_none(),
                Refusals::New => msg == Some(new_msg),
                Refusals::Either => msg.is_none() || msg == Some(new_msg),
            };
        ensure(ok, || {
            format!(
                "{what} on {}: want EINVAL with {}, got {err:?}",
                self.describe(),
                match self.refusals() {
                    Refusals::Old => "no message".to_string(),
                    Refusals::New => format!("\"{new_msg}\""),
                    Refusals::Either => format!("no message or \"{new_msg}\""),
                }
            )
        })
    }
}

/// The laminar endpoint flag (Linux 6.18) is probed by a round trip in a namespace of its
/// own: on a kernel that drops unknown flag bits the round trip decides, else the release.
/// Either way the answer must match the release (6.18+ knows it), and the caller's namespace
/// is left without any endpoint.
fn laminar_flag_probe() -> TestResult {
    in_netns("laminar", |ns, rt| {
        let probe = mptcp_genl::probe_endpoint_flag(EndpointFlags::LAMINAR, (6, 18));
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ctx("osrelease")?;
        let want = mptcp_genl::release_version(&release).map(|v| v >= (6, 18));
        eprintln!(
            "kernel {}: laminar {} ({probe})",
            release.trim(),
            probe.known()
        );
        ensure(Some(probe.known()) == want, || {
            format!(
                "laminar probe says {} ({probe}) on {release:?}",
                probe.known()
            )
        })?;
        let pm = rt.block_on(PmHandle::connect()).ctx("connect")?;
        let left = rt.block_on(pm.endpoints()).ctx("dump")?;
        ensure(left.is_empty(), || {
            format!(
                "the probe must not touch the caller's namespace {}: {left:?}",
                ns.name()
            )
        })
    })
}

fn capabilities_of_this_kernel() -> TestResult {
    in_netns("caps", |ns, rt| {
        let pm = rt.block_on(PmHandle::connect()).ctx("connect")?;
        let caps = pm.capabilities();
        let generation = caps.generation();
        eprintln!(
            "kernel facts: probe says {generation}; commands {:?}; groups {:?}; sysctls {:?}",
            caps.commands(),
            caps.mcast_groups,
            caps.sysctls
        );
        // Cross-check the family id, groups and commands with iproute2's genl.
        let genl = ns
            .exec_ok("genl", &["ctrl", "get", "name", "mptcp_pm"])
            .ctx("genl ctrl get")?;
        ensure(genl.contains(&format!("ID: {:#x}", caps.family_id)), || {
            format!(
                "family id {:#x} not in genl output {genl:?}",
                caps.family_id
            )
        })?;
        for (name, id) in &caps.mcast_groups {
            ensure(genl.contains(&format!("ID-{id:#x}  name: {name}")), || {
                format!("group {name} {id:#x} not in genl output {genl:?}")
            })?;
        }
        eq(caps.version, 1, "family version")?;
        for cmd in caps.commands() {
            ensure(genl.contains(&format!("ID-{:#x}", cmd.number())), || {
                format!("{cmd} not listed by genl")
            })?;
        }
        for cmd in Cmd::KNOWN.into_iter().filter(|c| caps.supports(*c)) {
            // Reading needs no privilege; every change needs CAP_NET_ADMIN.
            let reads = matches!(cmd, Cmd::GetAddr | Cmd::GetLimits);
            eq(
                caps.needs_admin(cmd),
                Some(!reads),
                &format!("{cmd} admin permission"),
            )?;
        }
        let endpoints_and_limits = [
            Cmd::AddAddr,
            Cmd::DelAddr,
            Cmd::GetAddr,
            Cmd::FlushAddrs,
            Cmd::SetLimits,
            Cmd::GetLimits,
        ];
        let groups: Vec<&str> = caps.mcast_groups.keys().map(String::as_str).collect();
        let sysctls: Vec<&str> = caps.sysctls.iter().map(String::as_str).collect();
        match generation {
            KernelGeneration::Mainline510 => {
                // Exactly what 5.10 offers: endpoints and limits, the cmds group, one sysctl.
                eq(
                    caps.commands(),
                    endpoints_and_limits.to_vec(),
                    "5.10 commands (no SET_FLAGS, no userspace PM)",
                )?;
                ensure(!caps.supports(Cmd::SetFlags), || {
                    "5.10 has no SET_FLAGS".into()
                })?;
                eq(
                    caps.events_group(),
                    None,
                    "5.10 has no mptcp_pm_events group",
                )?;
                eq(groups, vec!["mptcp_pm_cmds"], "5.10 multicast groups")?;
                eq(sysctls, vec!["enabled"], "5.10 net.mptcp sysctls")?;
                // What 5.10 lacks is refused before anything is sent.
                let err = rt
                    .block_on(pm.set_endpoint_flags(EndpointKey::Id(1), EndpointFlags::BACKUP))
                    .err()
                    .ok_or("SET_FLAGS accepted by a kernel without it")?;
                ensure(
                    matches!(
                        err,
                        Error::Unsupported {
                            command: Cmd::SetFlags
                        }
                    ),
                    || format!("SET_FLAGS on 5.10: {err:?}"),
                )?;
                let subscribed = {
                    let _rt = rt.enter();
                    pm.subscribe_events()
                };
                let err = subscribed
                    .err()
                    .ok_or("events subscribed on a kernel without the group")?;
                ensure(matches!(err, Error::NoEventsGroup), || {
                    format!("subscribe on 5.10: {err:?}")
                })?;
            }
            KernelGeneration::Events512 => {
                // 5.12-5.18, or 5.10 with the 5.15 backport: SET_FLAGS and events, no
                // userspace PM (commands and pm_type sysctl arrive together in 5.19).
                let mut want = endpoints_and_limits.to_vec();
                want.push(Cmd::SetFlags);
                eq(caps.commands(), want, "5.12-5.18 commands")?;
                ensure(caps.has_events(), || "no mptcp_pm_events group".into())?;
                ensure(caps.mcast_groups.contains_key("mptcp_pm_cmds"), || {
                    "no mptcp_pm_cmds group".into()
                })?;
                for s in ["enabled", "add_addr_timeout"] {
                    ensure(caps.has_sysctl(s), || {
                        format!("sysctl net.mptcp.{s} not seen: {sysctls:?}")
                    })?;
                }
                ensure(!caps.has_sysctl("pm_type"), || {
                    format!("net.mptcp.pm_type without userspace PM commands: {sysctls:?}")
                })?;
            }
            KernelGeneration::UserspacePm519 => {
                for cmd in Cmd::KNOWN {
                    ensure(caps.supports(cmd), || {
                        format!("{cmd} missing on this kernel")
                    })?;
                }
                ensure(caps.has_events(), || "no mptcp_pm_events group".into())?;
                ensure(caps.mcast_groups.contains_key("mptcp_pm_cmds"), || {
                    "no mptcp_pm_cmds group".into()
                })?;
                for s in [
                    "enabled",
                    "add_addr_timeout",
                    "checksum_enabled",
                    "pm_type",
                    "stale_loss_cnt",
                ] {
                    ensure(caps.has_sysctl(s), || {
                        format!("sysctl net.mptcp.{s} not seen: {sysctls:?}")
                    })?;
                }
            }
        }
        Ok(())
    })
}

fn endpoints_add_get_dump_delete_flush() -> TestResult {
    in_netns("ep", |ns, rt| {
        let va = veth_with_addrs(ns, &["2001:db8::10/64", "198.51.100.12/24"])?;
        let devs = [(va, "va")];
        rt.block_on(async {
            let pm = PmHandle::connect().await.ctx("connect")?;
            let v510 = plain_510(&pm);
            eq(pm.endpoints().await.ctx("dump")?, vec![], "fresh namespace")?;
            let mut with_port = endpoint(10, "2001:db8::10", EndpointFlags::SIGNAL);
            with_port.port = Some(8443);
            let mut with_dev = endpoint(11, "2001:db8::11", EndpointFlags::SUBFLOW);
            with_dev.ifindex = Some(va);
            let mut v4_port_dev = endpoint(
                12,
                "198.51.100.12",
                EndpointFlags::SIGNAL | EndpointFlags::BACKUP,
            );
            v4_port_dev.port = Some(1);
            v4_port_dev.ifindex = Some(va);
            // The kernel keeps at most 8 endpoints per namespace (MPTCP_PM_ADDR_MAX).
            let first = vec![
                endpoint(1, "10.0.0.1", EndpointFlags::SIGNAL),
                endpoint(2, "10.0.0.2", EndpointFlags::SUBFLOW),
                endpoint(
                    3,
                    "10.0.0.3",
                    EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
                ),
                endpoint(
                    4,
                    "10.0.0.4",
                    EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH,
                ),
                endpoint(
                    5,
                    "10.0.0.5",
                    EndpointFlags::SIGNAL | EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
                ),
                endpoint(6, "10.0.0.6", EndpointFlags::empty()),
                endpoint(
                    7,
                    "2001:db8::7",
                    EndpointFlags::SUBFLOW | EndpointFlags::FULLMESH | EndpointFlags::BACKUP,
                ),
                endpoint(255, "fe80::1", EndpointFlags::SIGNAL),
            ];
            for ep in &first {
                pm.add_endpoint(ep).await.ctx(&format!("add {ep:?}"))?;
            }
            // What the kernel stored: as asked, or on 5.10 with the ids 1..=8 it assigned.
            let first_stored: Vec<Endpoint> = if v510 {
                first
                    .iter()
                    .zip(1..)
                    .map(|(e, id)| stored_by_510(e, id))
                    .collect()
            } else {
                first.clone()
            };
            if v510 {
                let dump = pm.endpoints().await.ctx("dump")?;
                check_510_endpoint(&dump, &first[7], 8)?;
            }
            let check = |want: Vec<Endpoint>| {
                let pm = pm.clone();
                async move {
                    eq(&pm.endpoints().await.ctx("dump")?, &want, "dump")?;
                    eq(
                        ip_endpoints(ns)?,
                        ip_style_all(&want, &devs),
                        "ip mptcp endpoint show",
                    )?;
                    for ep in &want {
                        eq(&pm.endpoint(ep.id).await.ctx("get")?, ep, "get by id")?;
                    }
                    Ok::<_, String>(())
                }
            };
            check(first_stored.clone()).await?;
            let err = pm
                .add_endpoint(&with_port)
                .await
                .err()
                .ok_or("a 9th endpoint was accepted")?;
            if v510 {
                check_510_add_refused(&err, "9th endpoint")?;
            } else {
                Answers::of(&pm)?.check_add_refused(&err, false, "9th endpoint")?;
            }
            // Delete three (by the ids the kernel gave them), add the ones with port /
            // interface.
            let gone: Vec<u8> = [2, 5, 7].iter().map(|i| first_stored[*i].id).collect();
            for id in &gone {
                pm.del_endpoint(*id).await.ctx("delete")?;
            }
            let mut rest: Vec<Endpoint> = first_stored
                .into_iter()
                .filter(|e| !gone.contains(&e.id))
                .collect();
            check(rest.clone()).await?;
            // 5.10 goes on from id 9: a deleted id is not reused.
            for (ep, id_510) in [(&with_port, 9), (&with_dev, 10), (&v4_port_dev, 11)] {
                pm.add_endpoint(ep).await.ctx(&format!("add {ep:?}"))?;
                rest.push(if v510 {
                    stored_by_510(ep, id_510)
                } else {
                    ep.clone()
                });
            }
            if v510 {
                let dump = pm.endpoints().await.ctx("dump")?;
                check_510_endpoint(&dump, &with_port, 9)?;
                check_510_endpoint(&dump, &v4_port_dev, 11)?;
            }
            check(rest).await?;
            pm.flush_endpoints().await.ctx("flush")?;
            eq(
                pm.endpoints().await.ctx("dump")?,
                vec![],
                "dump after flush",
            )?;
            eq(ip_endpoints(ns)?, Vec::<String>::new(), "ip after flush")?;
            // After a flush, newer kernels start the ids over at 1; 5.10 does not (its
            // next_id is reset only when the namespace is created) and goes on from 12.
            let again = endpoint(0, "10.0.0.1", EndpointFlags::SUBFLOW);
            pm.add_endpoint(&again).await.ctx("add after flush")?;
            let got = pm.endpoints().await.ctx("dump after re-add")?;
            let want_id = if v510 { 12 } else { 1 };
            eq(
                got.iter().map(|e| e.id).collect::<Vec<_>>(),
                vec![want_id],
                if v510 {
                    "5.10: first id after a flush (ids are never reused)"
                } else {
                    "first id after a flush"
                },
            )?;
            pm.del_endpoint(want_id).await.ctx("delete after flush")?;
            if v510 {
                // Hence 5.10 accepts 255 ADD_ADDRs per namespace lifetime: once next_id has
                // passed 255 every ADD_ADDR is refused, though the namespace has no endpoint.
                for id in 13..=255u8 {
                    pm.add_endpoint(&again)
                        .await
                        .ctx(&format!("add as id {id}"))?;
                    pm.del_endpoint(id)
                        .await
                        .ctx(&format!("5.10: delete id {id}, the next id in sequence"))?;
                }
                let err = pm
                    .add_endpoint(&again)
                    .await
                    .err()
                    .ok_or("5.10 accepted a 256th ADD_ADDR in one namespace")?;
                check_510_add_refused(&err, "256th ADD_ADDR in an empty namespace")?;
                eq(
                    pm.endpoints().await.ctx("dump")?,
                    vec![],
                    "dump after the refused 256th",
                )?;
            }
            Ok(())
        })
    })
}

fn endpoints_added_by_iproute2_decode() -> TestResult {
    in_netns("ipadd", |ns, rt| {
        let va = veth_with_addrs(ns, &["10.1.0.1/24"])?;
        for args in [
            &[
                "10.1.0.1", "id", "20", "signal", "port", "4000", "dev", "va",
            ][..],
            &["fd00::21", "id", "21", "subflow", "backup", "fullmesh"],
            &["10.1.0.22", "id", "22", "signal", "subflow"],
        ] {
            let mut cmd = vec!["mptcp", "endpoint", "add"];
            cmd.extend_from_slice(args);
            ns.ip(&cmd).ctx("ip mptcp endpoint add")?;
        }
        let (got, v510) = rt
            .block_on(async {
                let pm = PmHandle::connect().await?;
                Ok::<_, Error>((pm.endpoints().await?, plain_510(&pm)))
            })
            .ctx("dump")?;
        let mut a = endpoint(20, "10.1.0.1", EndpointFlags::SIGNAL);
        a.port = Some(4000);
        a.ifindex = Some(va);
        let asked = vec![
            a,
            endpoint(
                21,
                "fd00::21",
                EndpointFlags::SUBFLOW | EndpointFlags::BACKUP | EndpointFlags::FULLMESH,
            ),
            endpoint(
                22,
                "10.1.0.22",
                EndpointFlags::SIGNAL | EndpointFlags::SUBFLOW,
            ),
        ];
        let want = if v510 {
            // Ids 20, 21, 22 come back as 1, 2, 3; the port is dropped; the flags
            // (fullmesh included) and the device are kept.
            for (ep, id) in asked.iter().zip(1..) {
                check_510_endpoint(&got, ep, id)?;
            }
            asked
                .iter()
                .zip(1..)
                .map(|(e, id)| stored_by_510(e, id))
                .collect()
        } else {
            asked
        };
        eq(&got, &want, "endpoints added by ip, read by us")?;
        eq(
            ip_endpoints(ns)?,
            ip_style_all(&got, &[(va, "va")]),
            "ip show vs our decode",
        )
    })
}

fn kernel_picks_id_and_refuses_duplicates() -> TestResult {
    in_netns("dup", |ns, rt| {
        rt.block_on(async {
            let pm = PmHandle::connect().await.ctx("connect")?;
            let v510 = plain_510(&pm);
            let asked_5 = endpoint(5, "10.2.0.5", EndpointFlags::SUBFLOW);
            pm.add_endpoint(&asked_5).await.ctx("add id 5")?;
            pm.add_endpoint(&endpoint(0, "10.2.0.6", EndpointFlags::SIGNAL))
                .await
                .ctx("add id 0")?;
            let eps = pm.endpoints().await.ctx("dump")?;
            let find = |addr: &str| {
                eps.iter()
                    .find(|e| e.addr == addr.parse::<IpAddr>().unwrap())
                    .ok_or_else(|| format!("{addr} missing from the dump {eps:?}"))
            };
            let kept = find("10.2.0.5")?.id;
            let picked = find("10.2.0.6")?.id;
            if v510 {
                // 5.10 picks every id, in sequence.
                check_510_endpoint(&eps, &asked_5, 1)?;
                eq(picked, 2, "5.10: id picked for the second endpoint")?;
            } else {
                eq(kept, 5, "requested id kept")?;
                ensure(picked != 0 && picked != 5, || {
                    format!("kernel picked id {picked}")
                })?;
            }
            let ip = ip_endpoints(ns)?;
            ensure(ip.contains(&format!("10.2.0.6 id {picked} signal")), || {
                format!("ip: {ip:?}")
            })?;

            // Same address again: refused with the kernel's message (EINVAL up to 6.6,
            // EEXIST on 6.18).
            let err = pm
                .add_endpoint(&endpoint(0, "10.2.0.5", EndpointFlags::SUBFLOW))
                .await
                .err()
                .ok_or("duplicate address accepted")?;
            if v510 {
                check_510_add_refused(&err, "duplicate address")?;
            } else {
                Answers::of(&pm)?.check_add_refused(&err, true, "duplicate address")?;
            }
            // Same id, other address: refused, except on 5.10, which ignores the requested
            // id and so adds the address under the next id.
            let same_id = endpoint(kept, "10.2.0.99", EndpointFlags::SUBFLOW);
            if v510 {
                pm.add_endpoint(&same_id)
                    .await
                    .ctx("5.10: an address asked with an id in use is added under the next id")?;
                let eps = pm.endpoints().await.ctx("dump")?;
                check_510_endpoint(&eps, &same_id, 3)?;
                eq(ip_endpoints(ns)?.len(), 3, "endpoints after the requests")?;
            } else {
                let err = pm
                    .add_endpoint(&same_id)
                    .await
                    .err()
                    .ok_or("duplicate id accepted")?;
                ensure(matches!(&err, Error::Kernel { .. }), || {
                    format!("duplicate id: {err:?}")
                })?;
                eprintln!("kernel facts: duplicate id -> {err}");
                eq(
                    ip_endpoints(ns)?.len(),
                    2,
                    "nothing added by the refused requests",
                )?;
            }
            Ok(())
        })
    })
}

fn delete_and_get_errors() -> TestResult {
    in_netns("del", |ns, rt| {
        rt.block_on(async {
            let pm = PmHandle::connect().await.ctx("connect")?;
            let v510 = plain_510(&pm);
            let err = pm.del_endpoint(77).await.err().ok_or("deleting a missing id succeeded")?;
            ensure(matches!(&err, Error::Kernel { command: Cmd::DelAddr, errno, .. } if *errno == libc::EINVAL), || {
                format!("{err:?}")
            })?;
            eq(err.kernel_message(), Some("address not found"), "extack")?;
            let err = pm.endpoint(77).await.err().ok_or("getting a missing id succeeded")?;
            ensure(matches!(&err, Error::Kernel { command: Cmd::GetAddr, .. }), || format!("{err:?}"))?;
            eprintln!("kernel facts: GET_ADDR of a missing id -> {err}");
            // Id 0 is not an endpoint: refused before sending.
            ensure(matches!(pm.del_endpoint(0).await, Err(Error::InvalidRequest(_))), || "del id 0".into())?;
            pm.add_endpoint(&endpoint(1, "10.3.0.1", EndpointFlags::SUBFLOW)).await.ctx("add")?;
            if v510 {
                // 5.10 has no DEL_ADDR of id 0 by address (5.13+): it looks id 0 up among
                // the endpoints and finds none, whether or not an endpoint has the address.
                for addr in ["10.3.0.9", "10.3.0.1"] {
                    let err = pm
                        .del_id_zero_address(addr.parse().unwrap())
                        .await
                        .err()
                        .ok_or_else(|| format!("5.10 accepted DEL_ADDR id 0 {addr}, which it does not have (5.13+), yet its probe says Mainline510"))?;
                    ensure(
                        matches!(&err, Error::Kernel { command: Cmd::DelAddr, errno, .. } if *errno == libc::EINVAL)
                            && err.kernel_message() == Some("address not found"),
                        || format!("5.10 DEL_ADDR id 0 {addr}: want EINVAL \"address not found\", got {err:?}"),
                    )?;
                }
            } else {
                // DEL_ADDR id 0 + address without connections using it: accepted, no-op.
                pm.del_id_zero_address("10.3.0.9".parse().unwrap()).await.ctx("del id 0 address")?;
                pm.del_id_zero_address("10.3.0.1".parse().unwrap()).await.ctx("del id 0 endpoint address")?;
            }
            eq(ip_endpoints(ns)?, vec!["10.3.0.1 id 1 subflow".to_string()], "id 0 delete keeps endpoints")?;
            pm.del_endpoint(1).await.ctx("delete id 1")?;
            eq(pm.endpoints().await.ctx("dump")?, vec![], "dump after delete")?;
            ensure(pm.endpoint(1).await.is_err(), || "get of the deleted id succeeded".into())?;
            Ok(())
        })
    })
}

fn limits_get_set_and_maximum() -> TestResult {
    in_netns("lim", |ns, rt| {
        rt.block_on(async {
            let pm = PmHandle::connect().await.ctx("connect")?;
            let l = pm.limits().await.ctx("get")?;
            let (ip_add, ip_sub) = ip_limits(ns)?;
            eq((l.add_addr_accepted, l.subflows), (Some(ip_add), Some(ip_sub)), "defaults vs ip")?;
            pm.set_limits(Limits {
                subflows: Some(8),
                add_addr_accepted: Some(8),
            })
            .await
            .ctx("set 8 8")?;
            eq(ip_limits(ns)?, (8, 8), "ip after set")?;
            // Only one limit: the other stays.
            pm.set_limits(Limits {
                subflows: Some(3),
                add_addr_accepted: None,
            })
            .await
            .ctx("set subflows")?;
            eq(ip_limits(ns)?, (8, 3), "ip after partial set")?;
            pm.set_limits(Limits {
                subflows: None,
                add_addr_accepted: Some(0),
            })
            .await
            .ctx("set add_addr_accepted")?;
            eq(
                pm.limits().await.ctx("get")?,
                Limits {
                    subflows: Some(3),
                    add_addr_accepted: Some(0),
                },
                "get after partial set",
            )?;
            // Above the maximum: EINVAL with the kernel's extack message; nothing changes.
            let err = pm
                .set_limits(Limits {
                    subflows: Some(9),
                    add_addr_accepted: None,
                })
                .await
                .err()
                .ok_or("limit 9 accepted")?;
            ensure(
                matches!(&err, Error::Kernel { command: Cmd::SetLimits, errno, .. } if *errno == libc::EINVAL),
                || format!("{err:?}"),
            )?;
            let msg = err.kernel_message().unwrap_or_default();
            ensure(msg.starts_with("limit greater than maximum"), || format!("extack {msg:?}"))?;
            eq(ip_limits(ns)?, (0, 3), "ip after refused set")?;
            Ok(())
        })
    })
}

/// Line `i` of `ip mptcp endpoint show` (sorted) is `want`.
fn ip_endpoint_is(ns: &Netns, i: usize, want: &str, what: &str) -> TestResult {
    let lines = ip_endpoints(ns)?;
    eq(lines.get(i).map(String::as_str), Some(want), what)
}

fn set_flags_backup_and_fullmesh() -> TestResult {
    in_netns("flags", |ns, rt| {
        rt.block_on(async {
            let pm = PmHandle::connect().await.ctx("connect")?;
            // Fails (never skips) where the probe finds no SET_FLAGS: plain 5.10.
            ensure(pm.capabilities().supports(Cmd::SetFlags), || {
                lacks(pm.capabilities(), "MPTCP_PM_CMD_SET_FLAGS (5.12+)")
            })?;
            let answers = Answers::of(&pm)?;
            eprintln!("kernel facts: SET_FLAGS answers of {}", answers.describe());
            pm.add_endpoint(&endpoint(1, "10.4.0.1", EndpointFlags::SUBFLOW))
                .await
                .ctx("add 1")?;
            pm.add_endpoint(&endpoint(2, "fd00::2", EndpointFlags::SIGNAL))
                .await
                .ctx("add 2")?;
            let key = EndpointKey::Addr {
                addr: "10.4.0.1".parse().unwrap(),
                port: None,
            };
            if answers.set_flags_by_id() {
                pm.set_endpoint_flags(EndpointKey::Id(1), EndpointFlags::BACKUP)
                    .await
                    .ctx("backup on by id")?;
            } else {
                // Before 5.17 SET_FLAGS needs the address: by id it is refused, unchanged.
                let err = pm
                    .set_endpoint_flags(EndpointKey::Id(1), EndpointFlags::BACKUP)
                    .await
                    .err()
                    .ok_or_else(|| {
                        format!(
                            "SET_FLAGS by id accepted on {}, which looks endpoints up by \
                             address only",
                            answers.describe()
                        )
                    })?;
                ensure(
                    matches!(&err, Error::Kernel { command: Cmd::SetFlags, errno, .. } if *errno == libc::EINVAL)
                        && err.kernel_message() == Some("missing family"),
                    || format!("SET_FLAGS by id on {}: want EINVAL \"missing family\", got {err:?}", answers.describe()),
                )?;
                ip_endpoint_is(ns, 0, "10.4.0.1 id 1 subflow", "ip after the refused SET_FLAGS by id")?;
                pm.set_endpoint_flags(key, EndpointFlags::BACKUP)
                    .await
                    .ctx("backup on by address")?;
            }
            ip_endpoint_is(ns, 0, "10.4.0.1 id 1 subflow backup", "ip after backup on")?;
            eq(
                pm.endpoint(1).await.ctx("get")?.flags,
                EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
                "get after backup on",
            )?;
            pm.set_endpoint_flags(key, EndpointFlags::FULLMESH)
                .await
                .ctx("fullmesh on, backup off by address")?;
            // Before 5.17 only the backup bit changes: fullmesh stays off.
            let want = if answers.set_flags_fullmesh() {
                "10.4.0.1 id 1 subflow fullmesh"
            } else {
                "10.4.0.1 id 1 subflow"
            };
            ip_endpoint_is(ns, 0, want, "ip after change")?;
            pm.set_endpoint_flags(key, EndpointFlags::empty())
                .await
                .ctx("all off")?;
            ip_endpoint_is(ns, 0, "10.4.0.1 id 1 subflow", "ip after all off")?;
            // SET_FLAGS changes only backup/fullmesh: SIGNAL in the request is ignored.
            let v6 = EndpointKey::Addr {
                addr: "fd00::2".parse().unwrap(),
                port: None,
            };
            pm.set_endpoint_flags(v6, EndpointFlags::BACKUP | EndpointFlags::SUBFLOW)
                .await
                .ctx("v6 backup")?;
            ip_endpoint_is(ns, 1, "fd00::2 id 2 signal backup", "ip v6 after backup")?;
            // Fullmesh on the signal endpoint: refused from 5.17; before, taken as "backup off".
            let v6_now = if answers.set_flags_fullmesh() {
                "fd00::2 id 2 signal backup"
            } else {
                "fd00::2 id 2 signal"
            };
            if answers.set_flags_fullmesh() {
                // Fullmesh on a signal endpoint: refused (EINVAL, "invalid addr flags" on
                // 6.18), nothing changes.
                let err = pm
                    .set_endpoint_flags(EndpointKey::Id(2), EndpointFlags::FULLMESH)
                    .await
                    .err()
                    .ok_or("fullmesh on signal accepted")?;
                answers.check_set_flags_refused(&err, "invalid addr flags", "fullmesh on a signal endpoint")?;
                ip_endpoint_is(ns, 1, v6_now, "ip v6 after the refused fullmesh")?;
            } else {
                // Taken as "backup off": fullmesh is not a flag this SET_FLAGS changes.
                pm.set_endpoint_flags(v6, EndpointFlags::FULLMESH)
                    .await
                    .ctx("fullmesh on signal (backup off before 5.17)")?;
                ip_endpoint_is(ns, 1, v6_now, "ip v6 after a fullmesh request before 5.17")?;
            }
            // Unknown endpoint: EINVAL ("address not found" on 6.18).
            let unknown = if answers.set_flags_by_id() {
                EndpointKey::Id(9)
            } else {
                EndpointKey::Addr {
                    addr: "10.4.0.9".parse().unwrap(),
                    port: None,
                }
            };
            let err = pm
                .set_endpoint_flags(unknown, EndpointFlags::BACKUP)
                .await
                .err()
                .ok_or("SET_FLAGS of an unknown endpoint accepted")?;
            answers.check_set_flags_refused(&err, "address not found", "unknown endpoint")?;
            // Id 0 is no endpoint: refused (EOPNOTSUPP by id since 5.17; before, the
            // missing address).
            let err = pm
                .set_endpoint_flags(EndpointKey::Id(0), EndpointFlags::BACKUP)
                .await
                .err()
                .ok_or("id 0")?;
            eprintln!("kernel facts: SET_FLAGS id 0 -> {err}");
            let want = if answers.set_flags_by_id() {
                libc::EOPNOTSUPP
            } else {
                libc::EINVAL
            };
            ensure(
                matches!(&err, Error::Kernel { command: Cmd::SetFlags, errno, .. } if *errno == want),
                || format!("SET_FLAGS id 0 on {}: want errno {want}, got {err:?}", answers.describe()),
            )?;
            eq(
                ip_endpoints(ns)?,
                vec!["10.4.0.1 id 1 subflow".to_string(), v6_now.to_string()],
                "endpoints after the refused requests",
            )?;
            Ok(())
        })
    })
}

// ---------------------------------------------------------------------------------------
// Events.

/// A burst larger than the receive buffer: the stream reports `EventsLost`, then goes on.
/// The burst comes from MPTCP connections over loopback (CREATED on both sides, then
/// ESTABLISHED and CLOSED), which every kernel with the events group sends.
fn events_lost_on_overrun_then_continue() -> TestResult {
    const CONNECTIONS: u16 = 100;
    const BURST_PORT: u16 = 20000;
    const AFTER_PORT: u16 = 19999;
    in_netns("evlost", |ns, rt| {
        // Fails (never skips) where the probe finds no events group: plain 5.10.
        let pm = rt.block_on(PmHandle::connect()).ctx("connect")?;
        ensure(pm.capabilities().has_events(), || {
            lacks(pm.capabilities(), "mptcp_pm_events multicast group (5.12+)")
        })?;
        drop(pm);
        ns.ip(&["link", "set", "lo", "up"]).ctx("lo up")?;
        let mut events = rt
            .block_on(mptcp_genl::subscribe_events())
            .ctx("subscribe")?;
        events.set_receive_buffer(1).ctx("receive buffer")?; // the kernel's minimum
        let loopback = |port| SocketAddrV4::new("127.0.0.1".parse().unwrap(), port);
        let listener = mptcp_listen(loopback(BURST_PORT)).ctx("listen")?;
        for i in 0..CONNECTIONS {
            let client = mptcp_connect(loopback(BURST_PORT)).ctx(&format!("connection {i}"))?;
            let (served, _) = listener.accept().ctx("accept")?;
            drop(client);
            drop(served);
        }
        drop(listener);
        // At least a CREATED on each side per connection.
        let at_least = 2 * usize::from(CONNECTIONS);
        let mut w = Watch {
            name: "burst",
            stream: events,
            seen: Vec::new(),
        };
        rt.block_on(async {
            let (mut lost, mut received) = (false, 0usize);
            // Drain what is queued; the overrun is reported where it happened.
            while let Ok(Some(item)) =
                tokio::time::timeout(Duration::from_millis(300), w.stream.next()).await
            {
                match item {
                    Err(Error::EventsLost) => lost = true,
                    Err(e) => return Err(format!("unexpected error {e}")),
                    Ok(_) => received += 1,
                }
            }
            ensure(lost, || {
                format!("no EventsLost after {at_least}+ events ({received} received)")
            })?;
            ensure(received < at_least, || {
                format!("all {received} events arrived despite the tiny buffer")
            })?;
            eprintln!(
                "kernel facts: {CONNECTIONS} connections ({at_least}+ events), rcvbuf minimum: \
                 {received} received, overrun reported"
            );
            Ok::<_, String>(())
        })?;
        // The stream still works: with room for them, the next connection's events arrive.
        w.stream
            .set_receive_buffer(1 << 20)
            .ctx("receive buffer back to 1 MiB")?;
        let listener = mptcp_listen(loopback(AFTER_PORT)).ctx("listen")?;
        let client = mptcp_connect(loopback(AFTER_PORT)).ctx("connect after the overrun")?;
        rt.block_on(w.expect("CREATED after the overrun", |e| {
            e.kind == EventKind::Created && e.dport == Some(AFTER_PORT)
        }))?;
        drop(client);
        drop(listener);
        Ok(())
    })
}

// Events from a real connection.

const PORT: u16 = 10100;
const WAIT: Duration = Duration::from_secs(5);
const IPPROTO_MPTCP: libc::c_int = 262;

fn mptcp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the returned descriptor is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            IPPROTO_MPTCP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An MPTCP listener (`socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)`) in the current netns.
fn mptcp_listen(addr: SocketAddrV4) -> io::Result<TcpListener> {
    use std::os::fd::AsRawFd;
    let fd = mptcp_socket()?;
    let sa = sockaddr(addr);
    // SAFETY: sa is a valid sockaddr_in of the given length; fd is open.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    // SAFETY: fd is an open, bound socket.
    check(unsafe { libc::listen(fd.as_raw_fd(), 16) })?;
    Ok(TcpListener::from(fd))
}

/// A connected MPTCP client socket in the current netns.
fn mptcp_connect(addr: SocketAddrV4) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    let fd = mptcp_socket()?;
    let sa = sockaddr(addr);
    // SAFETY: as in mptcp_listen.
    check(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(WAIT))?;
    // 5.15's MPTCP (the backport) refuses SO_SNDTIMEO with EOPNOTSUPP; 5.10 and 6.x accept it.
    // Writes stay bounded: the peer reads with a timeout and closes, which fails the write.
    match s.set_write_timeout(Some(WAIT)) {
        Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => return Err(e),
        _ => {}
    }
    Ok(s)
}

/// Events seen so far on one side, for error messages.
struct Watch {
    name: &'static str,
    stream: EventStream,
    seen: Vec<PmEvent>,
}

impl Watch {
    /// Wait (bounded) for the next event matching `pred`; earlier events are kept in `seen`.
    async fn expect(
        &mut self,
        what: &str,
        pred: impl Fn(&PmEvent) -> bool,
    ) -> Result<PmEvent, String> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Ok(self.seen.remove(i));
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    let seen: Vec<String> = self.seen.iter().map(|e| e.to_string()).collect();
                    return Err(format!(
                        "{}: no {what} within {WAIT:?}; unconsumed events:\n  {}",
                        self.name,
                        seen.join("\n  ")
                    ));
                }
                Ok(None) => return Err(format!("{}: event stream ended", self.name)),
                Ok(Some(Err(e))) => return Err(format!("{}: event error: {e}", self.name)),
                Ok(Some(Ok(ev))) => {
                    eprintln!("{} event: {ev}", self.name);
                    if pred(&ev) {
                        return Ok(ev);
                    }
                    self.seen.push(ev);
                }
            }
        }
    }
}

fn ip4(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn events_from_a_real_connection() -> TestResult {
    let srv = Netns::new("evsrv").ctx("server netns")?;
    let cli = Netns::new("evcli").ctx("client netns")?;
    // One veth pair; two addresses on each side (client: a second subflow; server: a
    // second address to announce).
    let srv_dev = "s0";
    cli.ip(&[
        "link",
        "add",
        "c0",
        "type",
        "veth",
        "peer",
        "name",
        srv_dev,
        "netns",
        srv.name(),
    ])
    .ctx("veth")?;
    for (ns, dev, addrs) in [
        (&cli, "c0", ["10.9.0.2/24", "10.9.0.3/24"]),
        (&srv, srv_dev, ["10.9.0.1/24", "10.9.0.4/24"]),
    ] {
        for a in addrs {
            ns.ip(&["addr", "add", a, "dev", dev, "nodad"])
                .ctx("addr")?;
        }
        ns.ip(&["link", "set", dev, "up"]).ctx("link up")?;
    }
    let c0 = ifindex(&cli, "c0")?;
    let rt = runtime()?;
    let limits = Limits {
        subflows: Some(8),
        add_addr_accepted: Some(8),
    };

    // Handles and event streams, each opened inside its namespace.
    let (srv_pm, srv_ev) = {
        let _in = srv.enter().ctx("enter server")?;
        let pm = rt.block_on(PmHandle::connect()).ctx("server pm")?;
        // Fails (never skips) where the probe finds no events group: plain 5.10.
        ensure(pm.capabilities().has_events(), || {
            lacks(pm.capabilities(), "mptcp_pm_events multicast group (5.12+)")
        })?;
        rt.block_on(async {
            pm.set_limits(limits).await?;
            let ev = pm.subscribe_events()?;
            Ok::<_, Error>((pm, ev))
        })
        .ctx("server pm")?
    };
    let answers = Answers::of(&srv_pm)?;
    eprintln!("kernel facts: event answers of {}", answers.describe());
    let (cli_pm, cli_ev) = {
        let _in = cli.enter().ctx("enter client")?;
        rt.block_on(async {
            let pm = PmHandle::connect().await?;
            pm.set_limits(limits).await?;
            let ev = mptcp_genl::subscribe_events().await?;
            Ok::<_, Error>((pm, ev))
        })
        .ctx("client pm")?
    };
    let mut srv_w = Watch {
        name: "server",
        stream: srv_ev,
        seen: Vec::new(),
    };
    let mut cli_w = Watch {
        name: "client",
        stream: cli_ev,
        seen: Vec::new(),
    };

    // LISTENER_CREATED when an MPTCP socket listens (6.2+; older kernels send none).
    let server_addr = SocketAddrV4::new("10.9.0.1".parse().unwrap(), PORT);
    let listener = {
        let _in = srv.enter().ctx("enter server")?;
        mptcp_listen(SocketAddrV4::new("0.0.0.0".parse().unwrap(), PORT)).ctx("listen")?
    };
    if answers.listener_events() {
        rt.block_on(async {
            let ev = srv_w
                .expect("LISTENER_CREATED", |e| e.kind == EventKind::ListenerCreated)
                .await?;
            eq(ev.sport, Some(PORT), "listener sport")?;
            eq(ev.family, Some(2), "listener family")?;
            Ok::<_, String>(())
        })?;
    }

    // CREATED / ESTABLISHED on both sides, with data exchanged.
    let mut client = {
        let _in = cli.enter().ctx("enter client")?;
        mptcp_connect(server_addr).ctx("connect")?
    };
    let (mut served, _) = listener.accept().ctx("accept")?;
    served.set_read_timeout(Some(WAIT)).ctx("timeout")?;
    client.write_all(b"ping").ctx("client write")?;
    let mut buf = [0u8; 4];
    served.read_exact(&mut buf).ctx("server read")?;
    served.write_all(b"pong").ctx("server write")?;
    client.read_exact(&mut buf).ctx("client read")?;
    let token = rt.block_on(async {
        let created = cli_w
            .expect("CREATED", |e| e.kind == EventKind::Created)
            .await?;
        eq(created.saddr, Some(ip4("10.9.0.2")), "created saddr")?;
        eq(created.daddr, Some(ip4("10.9.0.1")), "created daddr")?;
        eq(created.dport, Some(PORT), "created dport")?;
        ensure(!created.is_server_side(), || {
            "client event marked server side".into()
        })?;
        let token = created.token.ok_or("CREATED without token")?;
        let est = cli_w
            .expect("ESTABLISHED", |e| e.kind == EventKind::Established)
            .await?;
        eq(est.token, Some(token), "established token")?;
        let s_created = srv_w
            .expect("server CREATED", |e| e.kind == EventKind::Created)
            .await?;
        // Which side is the server: said since 5.17, absent before.
        ensure(
            s_created.is_server_side() == answers.says_server_side(),
            || {
                format!(
                    "server CREATED on {}: server side said {}, want {}: {s_created}",
                    answers.describe(),
                    s_created.is_server_side(),
                    answers.says_server_side()
                )
            },
        )?;
        eprintln!(
            "kernel facts: server CREATED server_side attr {:?}, flags {:?}",
            s_created.server_side, s_created.flags
        );
        eq(s_created.sport, Some(PORT), "server created sport")?;
        srv_w
            .expect("server ESTABLISHED", |e| e.kind == EventKind::Established)
            .await?;
        Ok::<_, String>(token)
    })?;

    // SUB_ESTABLISHED after adding a subflow endpoint on the client.
    let sub_ep = Endpoint {
        id: 30,
        addr: ip4("10.9.0.3"),
        port: None,
        flags: EndpointFlags::SUBFLOW,
        ifindex: Some(c0),
        unknown: Vec::new(),
    };
    rt.block_on(async {
        cli_pm
            .add_endpoint(&sub_ep)
            .await
            .ctx("client add subflow endpoint")?;
        let ev = cli_w
            .expect("SUB_ESTABLISHED from 10.9.0.3", |e| {
                e.kind == EventKind::SubEstablished && e.saddr == Some(ip4("10.9.0.3"))
            })
            .await?;
        eq(ev.token, Some(token), "sub token")?;
        eq(ev.loc_id, Some(30), "sub loc_id = endpoint id")?;
        eq(ev.rem_id, Some(0), "sub rem_id = initial address")?;
        eq(ev.daddr, Some(ip4("10.9.0.1")), "sub daddr")?;
        eq(ev.dport, Some(PORT), "sub dport")?;
        eq(ev.backup, Some(false), "sub backup")?;
        eq(ev.ifindex, Some(c0), "sub ifindex")?;
        eq(ev.error, None, "sub error")?;
        srv_w
            .expect("server SUB_ESTABLISHED", |e| {
                e.kind == EventKind::SubEstablished && e.daddr == Some(ip4("10.9.0.3"))
            })
            .await?;
        Ok::<_, String>(())
    })?;

    // ANNOUNCED on the client when the server adds a signal endpoint; REMOVED when it
    // deletes it.
    rt.block_on(async {
        srv_pm
            .add_endpoint(&Endpoint::new(ip4("10.9.0.4"), EndpointFlags::SIGNAL))
            .await
            .ctx("server add signal endpoint")?;
        let sig_id = srv_pm
            .endpoints()
            .await
            .ctx("server dump")?
            .iter()
            .find(|e| e.addr == ip4("10.9.0.4"))
            .map(|e| e.id)
            .ok_or("signal endpoint missing")?;
        let ann = cli_w
            .expect("ANNOUNCED", |e| e.kind == EventKind::Announced)
            .await?;
        eq(ann.token, Some(token), "announced token")?;
        eq(
            ann.rem_id,
            Some(sig_id),
            "announced rem_id = server endpoint id",
        )?;
        eq(ann.daddr, Some(ip4("10.9.0.4")), "announced daddr")?;
        // The client's PM opens a subflow to the announced address.
        cli_w
            .expect("SUB_ESTABLISHED to 10.9.0.4", |e| {
                e.kind == EventKind::SubEstablished && e.daddr == Some(ip4("10.9.0.4"))
            })
            .await?;
        srv_pm
            .del_endpoint(sig_id)
            .await
            .ctx("server delete signal endpoint")?;
        let rem = cli_w
            .expect("REMOVED", |e| e.kind == EventKind::Removed)
            .await?;
        eq(rem.token, Some(token), "removed token")?;
        eq(rem.rem_id, Some(sig_id), "removed rem_id")?;
        cli_w
            .expect("SUB_CLOSED to 10.9.0.4", |e| {
                e.kind == EventKind::SubClosed && e.daddr == Some(ip4("10.9.0.4"))
            })
            .await?;
        Ok::<_, String>(())
    })?;

    // SUB_PRIORITY when the client marks its subflow endpoint backup (MP_PRIO).
    rt.block_on(async {
        // By address: every kernel with SET_FLAGS finds it so (by id only since 5.17).
        cli_pm
            .set_endpoint_flags(
                EndpointKey::Addr {
                    addr: sub_ep.addr,
                    port: None,
                },
                EndpointFlags::BACKUP,
            )
            .await
            .ctx("client set backup")?;
        let prio = srv_w
            .expect("server SUB_PRIORITY", |e| e.kind == EventKind::SubPriority)
            .await?;
        eq(prio.token.is_some(), true, "priority token")?;
        eq(prio.backup, Some(true), "priority backup")?;
        eq(
            prio.daddr,
            Some(ip4("10.9.0.3")),
            "priority daddr (server view)",
        )?;
        Ok::<_, String>(())
    })?;

    // DEL_ADDR with id 0 and the client's initial address: the kernel closes the initial
    // subflow (local id 0) and tells the peer (RM_ADDR id 0); the connection lives on over
    // the 10.9.0.3 subflow. No endpoint is involved.
    rt.block_on(async {
        cli_pm
            .del_id_zero_address(ip4("10.9.0.2"))
            .await
            .ctx("client del id 0 address")?;
        let closed = cli_w
            .expect("SUB_CLOSED of the initial subflow", |e| {
                e.kind == EventKind::SubClosed && e.saddr == Some(ip4("10.9.0.2"))
            })
            .await?;
        eq(closed.loc_id, Some(0), "initial subflow loc_id")?;
        eq(closed.daddr, Some(ip4("10.9.0.1")), "initial subflow daddr")?;
        let rem = srv_w
            .expect("server REMOVED id 0", |e| e.kind == EventKind::Removed)
            .await?;
        eq(rem.rem_id, Some(0), "server REMOVED rem_id")?;
        Ok::<_, String>(())
    })?;
    client
        .write_all(b"still")
        .ctx("write after removing the initial subflow")?;
    let mut still = [0u8; 5];
    served
        .read_exact(&mut still)
        .ctx("read over the remaining subflow")?;

    // SUB_CLOSED with an error when the server kills the subflow (ss -K).
    let killed = srv
        .exec_ok("ss", &["-tnK", "dst", "10.9.0.3"])
        .ctx("ss -K")?;
    // ss lists only what the kernel destroyed; without CONFIG_INET_DIAG_DESTROY, nothing.
    ensure(killed.contains("10.9.0.3"), || {
        format!(
            "ss -K destroyed no subflow to 10.9.0.3 (does this kernel have \
             CONFIG_INET_DIAG_DESTROY?): {killed:?}"
        )
    })?;
    rt.block_on(async {
        let closed = cli_w
            .expect("SUB_CLOSED from 10.9.0.3", |e| {
                e.kind == EventKind::SubClosed && e.saddr == Some(ip4("10.9.0.3"))
            })
            .await?;
        eq(closed.token, Some(token), "sub closed token")?;
        eq(closed.loc_id, Some(30), "sub closed loc_id")?;
        eq(
            closed.error,
            Some(libc::ECONNRESET as u8),
            "client subflow error (reset by peer)",
        )?;
        let s_closed = srv_w
            .expect("server SUB_CLOSED", |e| {
                e.kind == EventKind::SubClosed && e.daddr == Some(ip4("10.9.0.3"))
            })
            .await?;
        ensure(s_closed.error.is_some(), || {
            format!("server SUB_CLOSED without error: {s_closed}")
        })?;
        Ok::<_, String>(())
    })?;

    // CLOSED on both sides, LISTENER_CLOSED when the listener goes.
    drop(client);
    drop(served);
    rt.block_on(async {
        let c = cli_w
            .expect("CLOSED", |e| e.kind == EventKind::Closed)
            .await?;
        eq(c.token, Some(token), "closed token")?;
        srv_w
            .expect("server CLOSED", |e| e.kind == EventKind::Closed)
            .await?;
        Ok::<_, String>(())
    })?;
    drop(listener);
    if answers.listener_events() {
        rt.block_on(async {
            let ev = srv_w
                .expect("LISTENER_CLOSED", |e| e.kind == EventKind::ListenerClosed)
                .await?;
            eq(ev.sport, Some(PORT), "listener closed sport")?;
            Ok::<_, String>(())
        })?;
    }
    Ok(())
}
