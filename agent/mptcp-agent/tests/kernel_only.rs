// SPDX-License-Identifier: MIT OR Apache-2.0
//! The agent in kernel-only mode: no NetworkManager and no D-Bus bus at all
//! (`networkmanager.follow = false`, `DBUS_SYSTEM_BUS_ADDRESS` pointing nowhere), as on a
//! Buildroot image. Only the kernel decides: an uplink is usable with carrier, an eligible
//! address and a default route (in main, or in another table, which gets the agent's policy
//! routing).
//!
//! The same binary runs on the host kernel (`cargo test -p mptcp-agent --test kernel_only`)
//! and inside a real 5.10 guest (`testing/test.d/50-kernel-5.10.sh`, suite
//! `mptcp-agent:kernel_only`). Where kernels differ (SET_FLAGS, the events group), a case
//! asks the agent's own capability probe (its start-up log line) and checks what that kernel
//! does; endpoints are compared by address, flags and interface, never by id (5.10 ignores
//! requested ids).
//!
//! Every case builds its own namespaces ("dev" with uplinks `up0`, `up1`; "far" with their
//! peers `p0`, `p1`) and its own agent, all removed when the case ends, also on failure.
//! Root only: skipped loudly without root/MPTCP, failing with MPTCP_REQUIRE_ROOT_TESTS=1.
//! Timings go to stderr (`-- --nocapture`).

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::{Duration, Instant},
};

use mptcp_lab::{
    netns::{run_in_netns, Netns},
    prereq::{run_trials, trials, Need},
    wait_for,
};
use support::{ctx, ensure, write_file, Agent, Notify, R};

/// Bound for the first endpoints after start (the agent is a debug build, and the 5.10 guest
/// is emulated).
const START: Duration = Duration::from_secs(30);
/// Bound for reacting to a link event (carrier, address, route). It proves the reaction came
/// from the event: the agent's only timer is its 5 s mptcpd scan, so 4 s stays below it while
/// giving the emulated 5.10 guest on a loaded host twice the old 2 s.
const REACT: Duration = Duration::from_secs(4);
/// Bound for an endpoint to come back once its uplink is usable again.
const RETURN: Duration = Duration::from_secs(5);
/// How long "nothing happens" is watched for.
const IDLE: Duration = Duration::from_secs(2);

/// Where the D-Bus system bus is not: the agent must run without it.
const NO_BUS: &str = "unix:path=/nonexistent/mptcp-agent-kernel-only/system_bus_socket";

/// The foreign table holding up1's default route (like a DHCP client's per-link table).
const UP1_TABLE: &str = "200";
/// `[routing] table_base` in the test config: up1 gets table TABLE_BASE + its ifindex.
const TABLE_BASE: u32 = 1000;

type Test = (&'static str, fn() -> R);

fn main() {
    let tests: Vec<Test> = vec![
        (
            "start_adds_an_endpoint_per_usable_uplink",
            start_adds_an_endpoint_per_usable_uplink,
        ),
        (
            "carrier_cut_withdraws_only_that_uplink",
            carrier_cut_withdraws_only_that_uplink,
        ),
        (
            "address_change_replaces_the_endpoint",
            address_change_replaces_the_endpoint,
        ),
        (
            "route_removed_withdraws_the_endpoint",
            route_removed_withdraws_the_endpoint,
        ),
        ("limits_from_config_applied", limits_from_config_applied),
        (
            "carrier_loss_backup_by_kernel_capability",
            carrier_loss_backup_by_kernel_capability,
        ),
        (
            "after_flaps_alive_quiet_and_sigterm_keeps_endpoints",
            after_flaps_alive_quiet_and_sigterm_keeps_endpoints,
        ),
        (
            "virtual_links_get_no_endpoint_unless_opted_in",
            virtual_links_get_no_endpoint_unless_opted_in,
        ),
        (
            "laminar_sent_only_where_the_kernel_knows_it",
            laminar_sent_only_where_the_kernel_knows_it,
        ),
        (
            "blackhole_detection_is_reported",
            blackhole_detection_is_reported,
        ),
        (
            "metrics_file_counts_a_carrier_flap",
            metrics_file_counts_a_carrier_flap,
        ),
        (
            "endpoints_come_back_after_255_endpoint_adds",
            endpoints_come_back_after_255_endpoint_adds,
        ),
        (
            "endpoint_ids_used_up_is_reported_and_endpoints_kept",
            endpoint_ids_used_up_is_reported_and_endpoints_kept,
        ),
    ];
    run_trials(trials(
        &[Need::Root, Need::Mptcp, Need::Program("ip")],
        tests,
    ))
}

// ---------------------------------------------------------------------------------------
// Endpoints as `ip mptcp endpoint show` prints them

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ep {
    addr: IpAddr,
    id: u8,
    /// Sorted flag words ("backup", "subflow", ...).
    flags: String,
    dev: String,
}

impl Ep {
    /// What is compared: address, flags, interface (not the id).
    fn key(&self) -> Key {
        (self.addr, self.flags.clone(), self.dev.clone())
    }
}

type Key = (IpAddr, String, String);

fn show_keys(keys: &BTreeSet<Key>) -> String {
    if keys.is_empty() {
        return "(none)".to_string();
    }
    keys.iter()
        .map(|(a, f, d)| format!("{a} [{f}] dev {d}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn show_eps(eps: &[Ep]) -> String {
    if eps.is_empty() {
        return "(none)".to_string();
    }
    eps.iter()
        .map(|e| format!("{} id {} [{}] dev {}", e.addr, e.id, e.flags, e.dev))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse `ip mptcp endpoint show`: `ADDR [port P] id N FLAGS... [dev IF]`.
fn parse_endpoints(text: &str) -> Result<Vec<Ep>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let addr: IpAddr = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("unexpected endpoint line {line:?}"))?;
        let (mut id, mut dev, mut flags) = (None, String::new(), Vec::new());
        while let Some(w) = words.next() {
            match w {
                "id" => id = words.next().and_then(|v| v.parse().ok()),
                "dev" => dev = words.next().unwrap_or_default().to_string(),
                "port" => {
                    words.next();
                }
                f => flags.push(f.to_string()),
            }
        }
        flags.sort();
        out.push(Ep {
            addr,
            id: id.ok_or_else(|| format!("no id in endpoint line {line:?}"))?,
            flags: flags.join(","),
            dev,
        });
    }
    out.sort();
    Ok(out)
}

fn unsuitable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

// ---------------------------------------------------------------------------------------
// The world: two namespaces, two uplinks, the agent

/// What the agent's start-up line says the kernel offers ("kernel MPTCP: …; set_flags
/// true, events false, fullmesh false").
#[derive(Debug, Clone, Copy)]
struct Caps {
    set_flags: bool,
    events: bool,
    /// Linux 5.10: endpoint ids are never reused in a namespace.
    ids_run_out: bool,
}

struct Uplink {
    name: &'static str,
    peer: &'static str,
    v4: String,
    gw4: &'static str,
    v6: Option<String>,
    gw6: &'static str,
}

/// Fields drop in declaration order: the agent first, then the namespaces, then files.
struct World {
    agent: Agent,
    dev: Netns,
    far: Netns,
    notify: Notify,
    dir: tempfile::TempDir,
    v6: bool,
    up: Vec<Uplink>,
    caps: Caps,
}

fn ipv6_available() -> bool {
    Path::new("/proc/sys/net/ipv6").exists()
}

/// The config: kernel-only, the `up*` uplinks with flags subflow (plus `rule_extra`).
fn config(rule_extra: &str, limits: (u32, u32)) -> String {
    format!(
        r#"schema_version = 1
[networkmanager]
follow = false
[limits]
subflows = {}
add_addr_accepted = {}
[sysctl]
enabled = true
[routing]
table_base = {TABLE_BASE}
[[link]]
name = "uplinks"
interfaces = ["up*"]
flags = ["subflow"]
{rule_extra}
"#,
        limits.0, limits.1
    )
}

impl World {
    /// Build the namespaces and start the agent with `config`.
    fn start(config: &str) -> Result<World, String> {
        let dev = ctx(Netns::new("kod"), "creating the dev namespace")?;
        let far = ctx(Netns::new("kof"), "creating the far namespace")?;
        let v6 = ipv6_available();
        let up = vec![
            Uplink {
                name: "up0",
                peer: "p0",
                v4: "10.61.0.2".into(),
                gw4: "10.61.0.1",
                v6: v6.then(|| "fd61::2".into()),
                gw6: "fd61::1",
            },
            Uplink {
                name: "up1",
                peer: "p1",
                v4: "10.62.0.2".into(),
                gw4: "10.62.0.1",
                v6: v6.then(|| "fd62::2".into()),
                gw6: "fd62::1",
            },
        ];
        let d = |args: &[&str]| ctx(dev.ip(args), &format!("ip -n DEV {}", args.join(" ")));
        let f = |args: &[&str]| ctx(far.ip(args), &format!("ip -n FAR {}", args.join(" ")));
        for u in &up {
            d(&[
                "link",
                "add",
                u.name,
                "type",
                "veth",
                "peer",
                "name",
                u.peer,
                "netns",
                far.name(),
            ])?;
            d(&["addr", "add", &format!("{}/24", u.v4), "dev", u.name])?;
            f(&["addr", "add", &format!("{}/24", u.gw4), "dev", u.peer])?;
            if let Some(a) = &u.v6 {
                d(&["addr", "add", &format!("{a}/64"), "dev", u.name, "nodad"])?;
                f(&[
                    "addr",
                    "add",
                    &format!("{}/64", u.gw6),
                    "dev",
                    u.peer,
                    "nodad",
                ])?;
            }
            f(&["link", "set", u.peer, "up"])?;
            d(&["link", "set", u.name, "up"])?;
        }
        // An IPv4 link-local address on up1 (never an endpoint); IPv6 link-local comes by itself.
        d(&["addr", "add", "169.254.62.2/16", "dev", "up1"])?;
        // up0: default route in main. up1: only in a foreign table, so the agent gives it
        // its own table and a source rule.
        d(&["route", "add", "default", "via", "10.61.0.1", "dev", "up0"])?;
        d(&[
            "route",
            "add",
            "default",
            "via",
            "10.62.0.1",
            "dev",
            "up1",
            "table",
            UP1_TABLE,
        ])?;
        if v6 {
            d(&[
                "-6", "route", "add", "default", "via", "fd61::1", "dev", "up0",
            ])?;
            d(&[
                "-6", "route", "add", "default", "via", "fd62::1", "dev", "up1", "table", UP1_TABLE,
            ])?;
        }

        let dir = ctx(tempfile::tempdir(), "tempdir")?;
        let cfg_path = dir.path().join("agent.toml");
        write_file(&cfg_path, config, 0o600)?;
        let state = dir.path().join("state");
        ctx(std::fs::create_dir(&state), "state dir")?;
        let notify = Notify::bind(dir.path())?;
        let log = dir.path().join("agent.log");
        let agent = Agent::start(dev.name(), NO_BUS, &cfg_path, &state, &notify.path, &log)?;
        let mut w = World {
            agent,
            dev,
            far,
            notify,
            dir,
            v6,
            up,
            caps: Caps {
                set_flags: false,
                events: false,
                ids_run_out: false,
            },
        };
        w.caps = w.read_caps()?;
        Ok(w)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// The capabilities the agent probed, from its start-up line.
    fn read_caps(&mut self) -> Result<Caps, String> {
        let line = wait_for(START, || {
            self.agent
                .log_text()
                .lines()
                .find(|l| l.contains("kernel MPTCP:") && l.contains("set_flags"))
                .map(str::to_string)
        });
        let Some(line) = line else {
            let alive = self.agent.alive();
            return Err(format!(
                "the agent did not log its kernel capabilities (\"kernel MPTCP: …\") within {START:?}; alive: {alive}\n--- agent log:\n{}",
                self.log_tail(40)
            ));
        };
        let flag = |name: &str| line.contains(&format!("{name} true"));
        Ok(Caps {
            set_flags: flag("set_flags"),
            events: flag("events"),
            ids_run_out: flag("ids_run_out"),
        })
    }

    fn endpoints(&self) -> Result<Vec<Ep>, String> {
        parse_endpoints(&ctx(
            self.dev.ip(&["mptcp", "endpoint", "show"]),
            "ip mptcp endpoint show",
        )?)
    }

    /// The endpoints the agent should keep, for the uplinks in `usable` (addresses of v6
    /// only where IPv6 exists), with `flags`.
    fn expected(&self, usable: &[&str], flags: &str) -> BTreeSet<Key> {
        let mut want = BTreeSet::new();
        for u in self.up.iter().filter(|u| usable.contains(&u.name)) {
            let addrs = std::iter::once(u.v4.as_str()).chain(u.v6.as_deref());
            for a in addrs {
                want.insert((
                    a.parse().expect("test address"),
                    flags.to_string(),
                    u.name.to_string(),
                ));
            }
        }
        want
    }

    /// Wait until the endpoints are exactly `want` (by address, flags, interface).
    fn wait_endpoints(&self, want: &BTreeSet<Key>, within: Duration, what: &str) -> R {
        let t0 = Instant::now();
        let mut last = Vec::new();
        let mut last_err = None;
        let hit = wait_for(within, || {
            std::thread::sleep(Duration::from_millis(40));
            match self.endpoints() {
                Ok(eps) => {
                    let got: BTreeSet<Key> = eps.iter().map(Ep::key).collect();
                    last = eps;
                    (got == *want).then_some(())
                }
                Err(e) => {
                    last_err = Some(e);
                    None
                }
            }
        });
        match hit {
            Some(()) => {
                eprintln!("  {what}: {:.2} s", t0.elapsed().as_secs_f64());
                Ok(())
            }
            None => Err(format!(
                "{what}: expected endpoints {} within {within:?}; saw {}{}",
                show_keys(want),
                show_eps(&last),
                last_err.map_or(String::new(), |e| format!(" (last error: {e})"))
            )),
        }
    }

    /// The endpoints stay exactly `want` for `dur` (the agent must not act).
    fn hold_endpoints(&self, want: &BTreeSet<Key>, dur: Duration, what: &str) -> R {
        let end = Instant::now() + dur;
        while Instant::now() < end {
            let eps = self.endpoints()?;
            let got: BTreeSet<Key> = eps.iter().map(Ep::key).collect();
            ensure(got == *want, || {
                format!(
                    "{what}: expected endpoints to stay {} but saw {}",
                    show_keys(want),
                    show_eps(&eps)
                )
            })?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn ids_of(&self, dev: &str) -> Result<BTreeMap<IpAddr, u8>, String> {
        Ok(self
            .endpoints()?
            .into_iter()
            .filter(|e| e.dev == dev)
            .map(|e| (e.addr, e.id))
            .collect())
    }

    fn same_ids(&self, dev: &str, before: &BTreeMap<IpAddr, u8>, when: &str) -> R {
        let now = self.ids_of(dev)?;
        ensure(now == *before, || {
            format!("{when}: {dev}'s endpoints should be untouched (same ids) but were {before:?} and are now {now:?}")
        })
    }

    fn dev_ip(&self, args: &[&str]) -> R {
        ctx(self.dev.ip(args), &format!("ip -n DEV {}", args.join(" "))).map(drop)
    }

    /// `sysctl -w NAME=VALUE` in DEV; an error when the kernel lacks it.
    fn dev_sysctl(&self, name: &str, value: &str) -> R {
        ctx(
            self.dev
                .exec_ok("sysctl", &["-w", &format!("{name}={value}")]),
            &format!("sysctl -w {name}={value} in DEV"),
        )
        .map(drop)
    }

    fn far_ip(&self, args: &[&str]) -> R {
        ctx(self.far.ip(args), &format!("ip -n FAR {}", args.join(" "))).map(drop)
    }

    fn uplink(&self, name: &str) -> &Uplink {
        self.up.iter().find(|u| u.name == name).expect("uplink")
    }

    /// Cut (or restore) carrier on a dev uplink from the far side.
    fn carrier(&self, uplink: &str, on: bool) -> R {
        let peer = self.uplink(uplink).peer;
        self.far_ip(&["link", "set", peer, if on { "up" } else { "down" }])
    }

    fn ifindex(&self, name: &str) -> Result<u32, String> {
        let out = ctx(self.dev.ip(&["-o", "link", "show", name]), "ip link show")?;
        out.split(':')
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("no ifindex in {out:?}"))
    }

    fn alive(&mut self) -> R {
        let alive = self.agent.alive();
        ensure(alive, || {
            "the agent exited; expected it to keep running".to_string()
        })
    }

    /// Lines of the agent log containing `needle`.
    fn log_count(&self, needle: &str) -> usize {
        self.agent
            .log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The last lines of the agent log, for failure messages.
    fn log_tail(&self, n: usize) -> String {
        let text = self.agent.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM, and the exit status within `grace` (SIGKILL after it, which is an error).
    fn terminate(&mut self, grace: Duration) -> Result<ExitStatus, String> {
        self.agent
            .terminate(grace)
            .ok_or_else(|| format!("the agent did not exit within {grace:?} of SIGTERM"))
    }
}

/// Build a world with `config`, run `f`, and on failure add the kernel's endpoints and the
/// tail of the agent log to the message.
fn case(config: &str, f: impl FnOnce(&mut World) -> R) -> R {
    let mut w = World::start(config)?;
    eprintln!(
        "  kernel: set_flags {}, events {}; IPv6 {}",
        w.caps.set_flags, w.caps.events, w.v6
    );
    let result = f(&mut w);
    result.map_err(|e| {
        let eps = w.endpoints().map_or_else(|e| e, |eps| show_eps(&eps));
        format!(
            "{e}\n--- kernel endpoints now: {eps}\n--- agent log {} (last 40 lines):\n{}",
            w.log_path().display(),
            w.log_tail(40)
        )
    })
}

fn base_config() -> String {
    config("", (2, 0))
}

// ---------------------------------------------------------------------------------------
// Cases

fn start_adds_an_endpoint_per_usable_uplink() -> R {
    case(&base_config(), |w| {
        let want = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&want, START, "start: an endpoint per usable uplink address")?;
        let eps = w.endpoints()?;
        let bad: Vec<&Ep> = eps.iter().filter(|e| unsuitable(&e.addr)).collect();
        ensure(bad.is_empty(), || {
            format!("expected no endpoint for link-local or loopback addresses, saw {bad:?}")
        })?;
        // READY=1 after the first reconciliation, even without any bus.
        let ready = w.notify.wait_for("READY=1", START);
        ensure(ready.is_ok(), || {
            format!("expected READY=1 on $NOTIFY_SOCKET: {}", ready.unwrap_err())
        })?;
        let log = w.agent.log_text();
        ensure(log.contains("kernel-only mode"), || {
            "expected the log to say \"kernel-only mode\"".to_string()
        })?;
        // up1 routes through a foreign table only: the agent's table and source rule.
        let table = (TABLE_BASE + w.ifindex("up1")?).to_string();
        let rules = ctx(w.dev.ip(&["rule", "show"]), "ip rule show")?;
        ensure(
            rules
                .lines()
                .any(|l| format!("{l} ").contains(&format!("from 10.62.0.2 lookup {table} "))),
            || format!("expected a rule \"from 10.62.0.2 lookup {table}\"; ip rule show:\n{rules}"),
        )?;
        let routes = ctx(
            w.dev.ip(&["route", "show", "table", &table]),
            "ip route show table",
        )?;
        ensure(routes.contains("default via 10.62.0.1 dev up1"), || {
            format!("expected \"default via 10.62.0.1 dev up1\" in table {table}; saw:\n{routes}")
        })?;
        w.alive()
    })
}

fn carrier_cut_withdraws_only_that_uplink() -> R {
    case(&base_config(), |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        let only_up1 = w.expected(&["up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        let up1_ids = w.ids_of("up1")?;
        w.carrier("up0", false)?;
        w.wait_endpoints(
            &only_up1,
            REACT,
            "carrier cut on up0: its endpoints withdrawn",
        )?;
        w.same_ids("up1", &up1_ids, "after up0 lost carrier")?;
        w.carrier("up0", true)?;
        w.wait_endpoints(&both, RETURN, "carrier back on up0: its endpoints back")?;
        w.same_ids("up1", &up1_ids, "after up0 got carrier back")?;
        // The other way round: up1 (policy-routed) loses carrier.
        let up0_ids = w.ids_of("up0")?;
        w.carrier("up1", false)?;
        let only_up0 = w.expected(&["up0"], "subflow");
        w.wait_endpoints(
            &only_up0,
            REACT,
            "carrier cut on up1: its endpoints withdrawn",
        )?;
        w.same_ids("up0", &up0_ids, "after up1 lost carrier")?;
        w.carrier("up1", true)?;
        w.wait_endpoints(&both, RETURN, "carrier back on up1: its endpoints back")?;
        w.same_ids("up0", &up0_ids, "after up1 got carrier back")?;
        w.alive()
    })
}

fn address_change_replaces_the_endpoint() -> R {
    case(&base_config(), |w| {
        w.wait_endpoints(&w.expected(&["up0", "up1"], "subflow"), START, "start")?;
        let up1_ids = w.ids_of("up1")?;
        // Like a DHCP client on a new lease: the old address goes (and with the last IPv4
        // address of up0, the kernel silently drops up0's IPv4 routes), the new address
        // comes, then its route.
        w.dev_ip(&["addr", "del", "10.61.0.2/24", "dev", "up0"])?;
        if w.v6 {
            w.dev_ip(&["addr", "del", "fd61::2/64", "dev", "up0"])?;
        }
        let mut gone = w.expected(&["up1"], "subflow");
        w.wait_endpoints(
            &gone,
            REACT,
            "old addresses of up0 removed: their endpoints removed",
        )?;
        w.same_ids("up1", &up1_ids, "after up0's address went")?;

        w.dev_ip(&["addr", "add", "10.61.0.3/24", "dev", "up0"])?;
        let kernel_route = ctx(
            w.dev.ip(&["-4", "route", "show", "default", "dev", "up0"]),
            "ip route show",
        )?;
        if kernel_route.trim().is_empty() {
            // No IPv4 default route via up0 now: 10.61.0.3 is not usable yet.
            w.hold_endpoints(
                &gone,
                Duration::from_secs(1),
                "new IPv4 address on up0 but the kernel has no IPv4 default route via up0 (it was dropped with the old address): no endpoint yet",
            )?;
        } else {
            eprintln!(
                "  this kernel kept up0's IPv4 default route: {}",
                kernel_route.trim()
            );
        }
        w.dev_ip(&[
            "route",
            "replace",
            "default",
            "via",
            "10.61.0.1",
            "dev",
            "up0",
        ])?;
        gone.insert(("10.61.0.3".parse().unwrap(), "subflow".into(), "up0".into()));
        w.wait_endpoints(
            &gone,
            REACT,
            "new IPv4 address and route on up0: endpoint added",
        )?;
        if w.v6 {
            w.dev_ip(&["addr", "add", "fd61::3/64", "dev", "up0", "nodad"])?;
            w.dev_ip(&[
                "-6", "route", "replace", "default", "via", "fd61::1", "dev", "up0",
            ])?;
            gone.insert(("fd61::3".parse().unwrap(), "subflow".into(), "up0".into()));
            w.wait_endpoints(&gone, REACT, "new IPv6 address on up0: endpoint added")?;
        }
        w.same_ids("up1", &up1_ids, "after up0's new address")?;
        w.alive()
    })
}

fn route_removed_withdraws_the_endpoint() -> R {
    case(&base_config(), |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        let up1_ids = w.ids_of("up1")?;
        let v4_up0: Key = ("10.61.0.2".parse().unwrap(), "subflow".into(), "up0".into());
        let mut without = both.clone();
        without.remove(&v4_up0);

        w.dev_ip(&["route", "del", "default", "via", "10.61.0.1", "dev", "up0"])?;
        w.wait_endpoints(
            &without,
            REACT,
            "IPv4 default route of up0 removed: its IPv4 endpoint withdrawn",
        )?;
        w.same_ids("up1", &up1_ids, "after up0's route went")?;
        w.dev_ip(&["route", "add", "default", "via", "10.61.0.1", "dev", "up0"])?;
        w.wait_endpoints(
            &both,
            REACT,
            "IPv4 default route of up0 back: endpoint back",
        )?;

        // An administrative down drops every IPv4 route via the link in the kernel without
        // a netlink notification. After `up`, carrier and address are back, the route is
        // not: no IPv4 endpoint until someone adds the route again.
        w.dev_ip(&["link", "set", "up0", "down"])?;
        w.wait_endpoints(
            &w.expected(&["up1"], "subflow"),
            REACT,
            "up0 set down: its endpoints withdrawn",
        )?;
        w.dev_ip(&["link", "set", "up0", "up"])?;
        // IPv6 drops a link's addresses on down (keep_addr_on_down = 0): put them back.
        if let Some(a) = &w.uplink("up0").v6 {
            w.dev_ip(&["addr", "replace", &format!("{a}/64"), "dev", "up0", "nodad"])?;
            w.dev_ip(&[
                "-6", "route", "replace", "default", "via", "fd61::1", "dev", "up0",
            ])?;
        }
        let kernel_route = ctx(
            w.dev.ip(&["-4", "route", "show", "default", "dev", "up0"]),
            "ip route show",
        )?;
        ensure(kernel_route.trim().is_empty(), || {
            format!("expected the kernel to have dropped up0's IPv4 default route on down; it has {kernel_route:?}")
        })?;
        // Wait for carrier first (veth: immediate), then watch.
        w.wait_endpoints(
            &without,
            RETURN,
            "up0 up again without an IPv4 route: only its IPv6 endpoint back",
        )?;
        w.hold_endpoints(
            &without,
            Duration::from_secs(1),
            "up0 up again without an IPv4 route: no IPv4 endpoint",
        )?;
        w.dev_ip(&["route", "add", "default", "via", "10.61.0.1", "dev", "up0"])?;
        w.wait_endpoints(&both, REACT, "IPv4 route of up0 added again: endpoint back")?;
        w.same_ids("up1", &up1_ids, "after up0's flaps")?;
        w.alive()
    })
}

fn limits_from_config_applied() -> R {
    case(&config("", (3, 2)), |w| {
        w.wait_endpoints(&w.expected(&["up0", "up1"], "subflow"), START, "start")?;
        let want = "add_addr_accepted 2 subflows 3";
        let mut last = String::new();
        let ok = wait_for(REACT, || {
            last = w
                .dev
                .ip(&["mptcp", "limits", "show"])
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|e| e.to_string());
            (last == want).then_some(())
        });
        ensure(ok.is_some(), || {
            format!("expected `ip mptcp limits show` to say {want:?}, saw {last:?}")
        })?;
        let out = ctx(
            w.dev.exec_ok("cat", &["/proc/sys/net/mptcp/enabled"]),
            "reading net.mptcp.enabled",
        )?;
        ensure(out.trim() == "1", || {
            format!(
                "expected net.mptcp.enabled = 1 in the namespace, saw {:?}",
                out.trim()
            )
        })?;
        w.alive()
    })
}

fn carrier_loss_backup_by_kernel_capability() -> R {
    let cfg = config("on_carrier_loss = \"backup\"", (2, 0));
    case(&cfg, |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        let up1_ids = w.ids_of("up1")?;
        let up0_ids = w.ids_of("up0")?;
        for round in 1..=3 {
            w.carrier("up0", false)?;
            if w.caps.set_flags {
                let mut demoted = w.expected(&["up0"], "backup,subflow");
                demoted.extend(w.expected(&["up1"], "subflow"));
                w.wait_endpoints(
                    &demoted,
                    REACT,
                    &format!("round {round}: up0 lost carrier, SET_FLAGS kernel: endpoints demoted to backup"),
                )?;
                w.same_ids("up0", &up0_ids, "demoted in place")?;
            } else {
                w.wait_endpoints(
                    &w.expected(&["up1"], "subflow"),
                    REACT,
                    &format!("round {round}: up0 lost carrier, no SET_FLAGS: endpoints withdrawn instead"),
                )?;
            }
            w.same_ids("up1", &up1_ids, "up1 during up0's carrier loss")?;
            w.carrier("up0", true)?;
            w.wait_endpoints(
                &both,
                RETURN,
                &format!("round {round}: carrier back on up0"),
            )?;
            if w.caps.set_flags {
                w.same_ids("up0", &up0_ids, "promoted back in place")?;
            }
        }
        // Unsupported features: one clear warning each, not one per event.
        let no_set_flags = "on_carrier_loss = \"backup\" needs MPTCP_PM_CMD_SET_FLAGS";
        for u in ["up0", "up1"] {
            let n = w.log_count(&format!("{u}: {no_set_flags}"));
            let want = usize::from(!w.caps.set_flags);
            ensure(n == want, || {
                format!(
                    "expected the \"{u}: {no_set_flags}\" warning {want} time(s) (set_flags {}), saw it {n} times",
                    w.caps.set_flags
                )
            })?;
        }
        let no_events = "has no mptcp_pm_events multicast group";
        let n = w.log_count(no_events);
        let want = usize::from(!w.caps.events);
        ensure(n == want, || {
            format!(
                "expected the \"{no_events}\" warning {want} time(s) (events {}), saw it {n} times",
                w.caps.events
            )
        })?;
        ensure(w.log_count("FAILED") == 0, || {
            "expected no failed kernel operation in the log".to_string()
        })?;
        w.alive()
    })
}

/// Real tun, bridge, bridge-port veth and (where the kernel has it) WireGuard links, each
/// with an address, matched by a rule that manages them: none gets an endpoint, the log
/// says why for each; a bridge under a rule with `allow_virtual = true` gets one.
fn virtual_links_get_no_endpoint_unless_opted_in() -> R {
    let cfg = config("", (2, 0)).replace(
        "interfaces = [\"up*\"]",
        "interfaces = [\"up*\", \"vpn*\", \"ctr*\"]",
    ) + "[[link]]\nname = \"opt-in\"\ninterfaces = [\"opt*\"]\nallow_virtual = true\nflags = [\"subflow\"]\n";
    case(&cfg, |w| {
        let mut want = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&want, START, "start")?;
        // A VPN's tun device (persistent, no process behind it).
        w.dev_ip(&["tuntap", "add", "dev", "vpntun0", "mode", "tun"])?;
        w.dev_ip(&["addr", "add", "10.71.0.2/24", "dev", "vpntun0"])?;
        w.dev_ip(&["link", "set", "vpntun0", "up"])?;
        // A container bridge with a container's veth as its port, and a default route: with
        // carrier, address and route it would be an uplink by the kernel's criteria alone.
        // The opt-in bridge is built the same way.
        for (br, port, peer, net, metric) in [
            ("ctrbr0", "ctrv0", "ctrp0", "10.72.0", "500"),
            ("optbr0", "optv0", "optp0", "10.74.0", "600"),
        ] {
            w.dev_ip(&["link", "add", br, "type", "bridge"])?;
            w.dev_ip(&[
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "netns",
                w.far.name(),
            ])?;
            w.dev_ip(&["link", "set", port, "master", br])?;
            w.dev_ip(&["addr", "add", &format!("{net}.2/24"), "dev", br])?;
            w.far_ip(&["addr", "add", &format!("{net}.1/24"), "dev", peer])?;
            w.far_ip(&["link", "set", peer, "up"])?;
            w.dev_ip(&["link", "set", port, "up"])?;
            w.dev_ip(&["link", "set", br, "up"])?;
            w.dev_ip(&[
                "route",
                "add",
                "default",
                "via",
                &format!("{net}.1"),
                "dev",
                br,
                "metric",
                metric,
            ])?;
        }
        let mut excluded = vec![
            ("vpntun0", "tun/tap device (VPN)"),
            ("ctrbr0", "bridge"),
            ("ctrv0", "container or VM veth, port of ctrbr0"),
        ];
        match w.dev.ip(&["link", "add", "vpnwg0", "type", "wireguard"]) {
            Ok(_) => {
                w.dev_ip(&["addr", "add", "10.75.0.2/24", "dev", "vpnwg0"])?;
                w.dev_ip(&["link", "set", "vpnwg0", "up"])?;
                w.dev_ip(&["route", "add", "default", "dev", "vpnwg0", "metric", "700"])?;
                excluded.push(("vpnwg0", "WireGuard tunnel"));
            }
            Err(e) => eprintln!(
                "  SKIP (part): no WireGuard link on this kernel (`ip link add type wireguard`: {e}); \
                 tun, bridge and bridge-port veth checked"
            ),
        }
        want.insert((
            "10.74.0.2".parse().expect("test address"),
            "subflow".to_string(),
            "optbr0".to_string(),
        ));
        w.wait_endpoints(&want, REACT, "the opt-in bridge gets an endpoint")?;
        w.hold_endpoints(
            &want,
            IDLE,
            "no endpoint on a VPN, a container bridge or its veth",
        )?;
        for (name, why) in excluded {
            let needle = format!("{name}: no endpoint: never an uplink by default: {why}");
            ensure(w.log_count(&needle) == 1, || {
                format!(
                    "expected the log line \"{needle}\" once, saw it {} times",
                    w.log_count(&needle)
                )
            })?;
        }
        w.alive()
    })
}

/// The kernel's MPTCP blackhole detection. Linux 6.12+: a far side that drops every SYN
/// carrying an MPTCP option (nftables `tcp option mptcp exists drop`) while plain TCP passes
/// makes an outgoing MPTCP connect fall back to TCP after its SYN retransmissions
/// (`net.mptcp.syn_retrans_before_tcp_fallback`, set to 1 here where the kernel has it) and
/// raises `MPTcpExtBlackhole`; the agent logs it naming `net.mptcp.blackhole_timeout` and
/// keeps it as a warning. A kernel without the counter (5.10, 6.1): the agent says the
/// detection is not there, and nothing is triggered.
/// The endpoint flags the kernel holds, by address, straight from `mptcp_pm` (iproute2 6.1
/// does not print bits it does not name, laminar among them).
fn raw_flags(ns: &Netns) -> Result<BTreeMap<IpAddr, u32>, String> {
    let handle = ctx(
        run_in_netns(ns.name(), || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let pm = mptcp_genl::PmHandle::connect()
                    .await
                    .map_err(std::io::Error::other)?;
                pm.endpoints().await.map_err(std::io::Error::other)
            })
        }),
        "thread in DEV",
    )?;
    let eps = handle
        .join()
        .map_err(|_| "endpoint dump thread panicked".to_string())?
        .and_then(|r| r)
        .map_err(|e| format!("endpoint dump in DEV: {e}"))?;
    Ok(eps.into_iter().map(|e| (e.addr, e.flags.bits())).collect())
}

/// A rule with `laminar`: where the agent's probe says the kernel knows the flag (6.18+),
/// the kernel's endpoints carry it; elsewhere (5.10, 6.1) they never do: an older kernel
/// would store the bit silently.
fn laminar_sent_only_where_the_kernel_knows_it() -> R {
    const LAMINAR: u32 = 1 << 5;
    let cfg = config("", (2, 0)).replace(
        "flags = [\"subflow\"]",
        "flags = [\"subflow\", \"laminar\"]",
    );
    case(&cfg, |w| {
        // The start-up line comes before the first endpoint (case() waited for it).
        let line = w
            .agent
            .log_text()
            .lines()
            .find(|l| l.contains("kernel MPTCP:"))
            .map(str::to_string)
            .unwrap_or_default();
        let known = line.contains("laminar true");
        ensure(known || line.contains("laminar false"), || {
            format!("the start-up line should say whether laminar is known: {line:?}")
        })?;
        // Ground truth: the flag came with 6.18 (a vendor backport would be missed, never
        // sent wrongly; no kernel in these runs has one).
        let release = ctx(
            std::fs::read_to_string("/proc/sys/kernel/osrelease"),
            "/proc/sys/kernel/osrelease",
        )?;
        let has = mptcp_genl::release_version(&release).is_some_and(|v| v >= (6, 18));
        ensure(known == has, || {
            format!(
                "kernel {}: laminar has {has}, but the agent's probe says {known}: {line:?}",
                release.trim()
            )
        })?;
        // iproute2 6.1 names no laminar: it prints the bit as "rawflags 20".
        let shown = if known {
            "20,rawflags,subflow"
        } else {
            "subflow"
        };
        w.wait_endpoints(&w.expected(&["up0", "up1"], shown), START, "start")?;
        let flags = raw_flags(&w.dev)?;
        ensure(!flags.is_empty(), || "no endpoints in the dump".to_string())?;
        for (addr, f) in &flags {
            ensure((f & LAMINAR != 0) == known, || {
                format!(
                    "{addr}: kernel flags {f:#x}; laminar known {known}, so the bit should be {}",
                    if known { "set" } else { "absent" }
                )
            })?;
        }
        let warned = w.log_count("flag \"laminar\" is configured but this kernel does not know it");
        ensure(warned == if known { 0 } else { 2 }, || {
            format!(
                "expected one laminar warning per uplink only where it is unknown; saw {warned}"
            )
        })?;
        let probe = line.split("laminar ").nth(1).unwrap_or_default();
        eprintln!("  laminar {probe}; kernel flags {flags:x?}");
        w.alive()
    })
}

fn blackhole_detection_is_reported() -> R {
    case(&base_config(), |w| {
        w.wait_endpoints(&w.expected(&["up0", "up1"], "subflow"), START, "start")?;
        let netstat = ctx(
            w.dev.exec_ok("cat", &["/proc/net/netstat"]),
            "cat /proc/net/netstat in DEV",
        )?;
        let before = match mptcp_agent_core::blackhole::counter_of(&netstat) {
            Ok(n) => n,
            Err(why) => {
                let said = wait_for(START, || {
                    (w.log_count("MPTCP blackhole detection: not reported: ") == 1).then_some(())
                });
                ensure(said.is_some(), || {
                    format!("this kernel has no blackhole counter ({why}); expected the agent to say so once")
                })?;
                eprintln!("  no blackhole counter on this kernel, and the agent says so: {why}");
                return w.alive();
            }
        };
        ensure(
            wait_for(START, || {
                (w.log_count("MPTCP blackhole detection: watching MPTcpExtBlackhole") == 1)
                    .then_some(())
            })
            .is_some(),
            || "expected the agent to say it watches MPTcpExtBlackhole".to_string(),
        )?;
        ctx(
            w.far.exec_ok(
                "nft",
                &["add table inet bh; add chain inet bh in { type filter hook input priority 0; }; \
                   add rule inet bh in tcp flags syn tcp option mptcp exists drop"],
            ),
            "nft in FAR: drop SYNs with MPTCP options",
        )?;
        let fast = w.dev_sysctl("net.mptcp.syn_retrans_before_tcp_fallback", "1");
        // A plain TCP listener in FAR, bounded; killed by pid at the end.
        let mut listener = ctx(
            std::process::Command::new("ip")
                .args(["netns", "exec", w.far.name(), "python3", "-c"])
                .arg(
                    "import socket\n\
                     s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                     s.bind(('10.61.0.1', 5599)); s.listen(); s.settimeout(20)\n\
                     c, a = s.accept()\n",
                )
                .stdout(std::process::Stdio::null())
                .spawn(),
            "python3 listener in FAR",
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let client = w.dev.exec(
            "python3",
            &[
                "-c",
                "import socket\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); s.settimeout(15)\n\
                 s.connect(('10.61.0.1', 5599))\n",
            ],
        );
        let connect = t0.elapsed();
        let _ = listener.kill();
        let _ = listener.wait();
        let out = ctx(client, "python3 MPTCP client in DEV")?;
        ensure(out.status.success(), || {
            format!(
                "the MPTCP connect through the SYN-dropping path should fall back to TCP and succeed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        let after = ctx(
            w.dev.exec_ok("cat", &["/proc/net/netstat"]),
            "cat /proc/net/netstat in DEV",
        )
        .map(|t| mptcp_agent_core::blackhole::counter_of(&t))?
        .map_err(|e| format!("counter gone: {e}"))?;
        ensure(after == before + 1, || {
            format!(
                "expected the kernel to count one blackhole (MPTcpExtBlackhole {before} -> {}), saw {after}",
                before + 1
            )
        })?;
        let needle = format!(
            "MPTCP blackhole detected by the kernel (MPTcpExtBlackhole {before} -> {after})"
        );
        let logged = wait_for(Duration::from_secs(6), || {
            (w.log_count(&needle) == 1).then_some(())
        });
        ensure(logged.is_some(), || {
            format!("expected the log line \"{needle}\" within 6 s")
        })?;
        let seen = t0.elapsed();
        ensure(
            w.log_count("net.mptcp.blackhole_timeout = 3600 s") >= 2,
            || {
                "expected the log line and the warning to name net.mptcp.blackhole_timeout = 3600 s"
                    .to_string()
            },
        )?;
        eprintln!(
            "  fallback connect {:.2} s (syn_retrans_before_tcp_fallback = 1: {}); logged {:.2} s after the connect started",
            connect.as_secs_f64(),
            fast.is_ok(),
            seen.as_secs_f64()
        );
        w.alive()
    })
}

fn after_flaps_alive_quiet_and_sigterm_keeps_endpoints() -> R {
    case(&base_config(), |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        // Flaps: carrier, quick carrier bursts, a route.
        for _ in 0..3 {
            w.carrier("up0", false)?;
            w.wait_endpoints(&w.expected(&["up1"], "subflow"), REACT, "up0 carrier cut")?;
            w.carrier("up0", true)?;
            w.wait_endpoints(&both, RETURN, "up0 carrier back")?;
        }
        for _ in 0..5 {
            w.carrier("up1", false)?;
            w.carrier("up1", true)?;
        }
        w.dev_ip(&["route", "del", "default", "via", "10.61.0.1", "dev", "up0"])?;
        w.dev_ip(&["route", "add", "default", "via", "10.61.0.1", "dev", "up0"])?;
        w.wait_endpoints(&both, RETURN, "settled after the flaps")?;
        w.alive()?;
        ensure(w.log_count("plan did not settle") == 0, || {
            "expected every plan to settle (\"plan did not settle\" in the log)".to_string()
        })?;

        // Nothing happens: the log must not grow.
        std::thread::sleep(Duration::from_millis(500));
        let before = ctx(std::fs::metadata(w.log_path()), "agent log")?.len();
        std::thread::sleep(IDLE);
        let after = ctx(std::fs::metadata(w.log_path()), "agent log")?.len();
        ensure(after == before, || {
            let text = w.agent.log_text();
            let grown = text.get(before as usize..).unwrap_or("").to_string();
            format!(
                "expected a quiet log while nothing happens ({IDLE:?}); it grew by {} bytes:\n{grown}",
                after - before
            )
        })?;
        w.alive()?;

        // SIGTERM: a clean exit, endpoints (and up1's policy rule) stay.
        let before = w.endpoints()?;
        let rules_before = ctx(w.dev.ip(&["rule", "show"]), "ip rule show")?;
        let status = w.terminate(Duration::from_secs(5))?;
        ensure(status.success(), || {
            format!("expected exit status 0 after SIGTERM, got {status}")
        })?;
        ensure(w.log_count("SIGTERM: exiting") == 1, || {
            "expected the log line \"SIGTERM: exiting\"".to_string()
        })?;
        let after = w.endpoints()?;
        ensure(after == before, || {
            format!(
                "expected SIGTERM to leave the endpoints as they were ({}), saw {}",
                show_eps(&before),
                show_eps(&after)
            )
        })?;
        let rules_after = ctx(w.dev.ip(&["rule", "show"]), "ip rule show")?;
        ensure(rules_after == rules_before, || {
            format!(
                "expected SIGTERM to leave the rules; before:\n{rules_before}after:\n{rules_after}"
            )
        })
    })
}

/// The samples of a metrics file: "name{labels}" → value. Only the shape the agent writes.
fn metric_samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// `[metrics]` on: the file shows up0 active, then a carrier cut as a withdrawal and state
/// down, then active again with a later last change; the kernel's counters are there.
fn metrics_file_counts_a_carrier_flap() -> R {
    let dir = ctx(tempfile::tempdir(), "tempdir")?;
    let file = dir.path().join("metrics/agent.prom");
    let extra = format!(
        "[metrics]\nenabled = true\nfile = {:?}\ninterval_ms = 1000\n",
        file.display().to_string()
    );
    // [metrics] must come before [[link]]: a table after it would belong to the rule.
    let cfg = base_config().replacen("[[link]]", &format!("{extra}[[link]]"), 1);
    case(&cfg, |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        let only_up1 = w.expected(&["up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        let up0_eps = both.iter().filter(|(_, _, d)| d == "up0").count() as f64;
        let mut last = String::new();
        // The file is rewritten every second; wait until it shows `want`.
        let mut wait_file = |what: &str, want: &dyn Fn(&BTreeMap<String, f64>) -> bool| {
            let hit = wait_for(Duration::from_secs(10), || {
                std::thread::sleep(Duration::from_millis(200));
                last = std::fs::read_to_string(&file).unwrap_or_default();
                want(&metric_samples(&last)).then_some(())
            });
            hit.ok_or_else(|| {
                format!(
                    "{what}: not seen in {} within 10 s; it reads:\n{last}",
                    file.display()
                )
            })
        };
        let s = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied();
        wait_file("up0 active, no withdrawal yet", &|m| {
            s(m, r#"mptcp_agent_link_state{link="up0",state="active"}"#) == Some(1.0)
                && s(m, r#"mptcp_agent_link_endpoints{link="up0"}"#) == Some(up0_eps)
                && s(m, r#"mptcp_agent_link_withdrawals_total{link="up0"}"#) == Some(0.0)
                && s(m, "mptcp_agent_ready") == Some(1.0)
        })?;
        let first = metric_samples(&std::fs::read_to_string(&file).unwrap_or_default());
        let changed_at = |m: &BTreeMap<String, f64>| {
            s(
                m,
                r#"mptcp_agent_link_last_change_timestamp_seconds{link="up0"}"#,
            )
            .unwrap_or(0.0)
        };
        ensure(
            s(&first, "mptcp_agent_kernel_mp_capable_syn_rx_total").is_some(),
            || "expected the kernel's MPCapableSYNRX (every MPTCP kernel has it)".to_string(),
        )?;
        std::thread::sleep(Duration::from_millis(1100));
        w.carrier("up0", false)?;
        w.wait_endpoints(&only_up1, REACT, "carrier cut on up0")?;
        wait_file("up0 down, its endpoints counted as withdrawn", &|m| {
            s(m, r#"mptcp_agent_link_state{link="up0",state="down"}"#) == Some(1.0)
                && s(m, r#"mptcp_agent_link_withdrawals_total{link="up0"}"#) == Some(up0_eps)
                && s(m, r#"mptcp_agent_link_withdrawals_total{link="up1"}"#) == Some(0.0)
                && s(m, r#"mptcp_agent_link_endpoints{link="up0"}"#) == Some(0.0)
        })?;
        w.carrier("up0", true)?;
        w.wait_endpoints(&both, RETURN, "carrier back on up0")?;
        wait_file("up0 active again, changed later than at start", &|m| {
            s(m, r#"mptcp_agent_link_state{link="up0",state="active"}"#) == Some(1.0)
                && changed_at(m) > changed_at(&first)
                && s(
                    m,
                    r#"mptcp_agent_link_endpoint_flag{link="up0",flag="subflow"}"#,
                ) == Some(1.0)
        })?;
        // Readable by others (node_exporter's own user), no temporary file left behind.
        let mode = ctx(std::fs::metadata(&file), "metrics file")?.permissions();
        ensure(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777 == 0o644,
            || {
                format!(
                    "expected mode 0644, got {:o}",
                    std::os::unix::fs::PermissionsExt::mode(&mode)
                )
            },
        )?;
        let names: Vec<String> = ctx(std::fs::read_dir(file.parent().unwrap()), "metrics dir")?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        ensure(names == ["agent.prom"], || {
            format!("expected only agent.prom, saw {names:?}")
        })?;
        w.alive()
    })
}

/// Add and delete an endpoint for an address on no link, `n` times, in `ns`: what `n` flaps
/// of an uplink cost in endpoint ids, in a moment.
fn spend_endpoint_ids(ns: &Netns, n: usize) -> R {
    let thread = ctx(
        run_in_netns(ns.name(), move || -> R {
            let rt = ctx(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                "tokio runtime",
            )?;
            rt.block_on(async {
                let pm = ctx(mptcp_genl::PmHandle::connect().await, "mptcp_pm")?;
                let addr: IpAddr = "10.99.0.1".parse().expect("address");
                for i in 0..n {
                    let ep = mptcp_genl::Endpoint::new(addr, mptcp_genl::EndpointFlags::empty());
                    ctx(pm.add_endpoint(&ep).await, &format!("endpoint add #{i}"))?;
                    let eps = ctx(pm.endpoints().await, "endpoint dump")?;
                    let id = eps
                        .iter()
                        .find(|e| e.addr == addr)
                        .map(|e| e.id)
                        .ok_or_else(|| format!("endpoint add #{i}: {addr} not in the dump"))?;
                    ctx(pm.del_endpoint(id).await, &format!("endpoint delete #{i}"))?;
                }
                Ok(())
            })
        }),
        "thread in the dev namespace",
    )?;
    thread
        .join()
        .map_err(|_| "the endpoint-id thread panicked".to_string())?
        .map_err(|e| format!("entering the dev namespace: {e}"))?
}

fn endpoints_come_back_after_255_endpoint_adds() -> R {
    // A device whose uplink flapped a hundred times: every flap deletes and re-adds its
    // endpoints. The kernel must keep handing out ids, and the agent keep getting endpoints.
    case(&base_config(), |w| {
        let both = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        spend_endpoint_ids(&w.dev, 250)?;
        let up1_ids = w.ids_of("up1")?;
        for flap in 1..=4 {
            w.carrier("up0", false)?;
            w.wait_endpoints(
                &w.expected(&["up1"], "subflow"),
                REACT,
                &format!("flap {flap} after 250 endpoint adds: up0 withdrawn"),
            )?;
            w.carrier("up0", true)?;
            w.wait_endpoints(
                &both,
                RETURN,
                &format!("flap {flap} after 250 endpoint adds: up0's endpoints back"),
            )?;
        }
        w.same_ids("up1", &up1_ids, "after up0's flaps")?;
        w.alive()
    })
}

/// Linux 5.10 never reuses an endpoint id in a namespace, not even after a flush (only a
/// reboot starts over), so enough flaps leave it unable to add any endpoint. The agent must
/// say so plainly and then keep the endpoints it still has through carrier loss. Kernels
/// that reuse ids (5.12+, the backport) must not take that path.
fn endpoint_ids_used_up_is_reported_and_endpoints_kept() -> R {
    const USED_UP: &str = "has used all 255 MPTCP endpoint ids";
    case(&base_config(), |w| {
        let ids_run_out = w.caps.ids_run_out;
        let both = w.expected(&["up0", "up1"], "subflow");
        w.wait_endpoints(&both, START, "start")?;
        spend_endpoint_ids(&w.dev, 250)?;
        let up1_ids = w.ids_of("up1")?;
        w.carrier("up0", false)?;
        w.wait_endpoints(&w.expected(&["up1"], "subflow"), REACT, "up0 carrier cut")?;
        w.carrier("up0", true)?;
        if !ids_run_out {
            w.wait_endpoints(&both, RETURN, "up0 carrier back (this kernel reuses ids)")?;
            ensure(w.log_count("MPTCP endpoint ids") == 0, || {
                format!(
                    "expected no endpoint-id warning on a kernel that reuses ids:\n{}",
                    w.log_tail(20)
                )
            })?;
            return w.alive();
        }
        // 5.10: 4 ids at start + 250 leave one: one of up0's two endpoints comes back.
        let said = wait_for(RETURN, || (w.log_count(USED_UP) > 0).then_some(()));
        ensure(said.is_some(), || {
            format!(
                "expected the agent to say \"{USED_UP} …\" within {RETURN:?}:\n{}",
                w.log_tail(30)
            )
        })?;
        let now = w.endpoints()?;
        let up0: Vec<&Ep> = now.iter().filter(|e| e.dev == "up0").collect();
        ensure(up0.len() == 1, || {
            format!(
                "expected exactly one of up0's endpoints back (one id was left), saw {}",
                show_eps(&now)
            )
        })?;
        w.same_ids("up1", &up1_ids, "after the ids ran out")?;
        // Few ids left: carrier loss no longer withdraws (each add would spend an id).
        let kept: BTreeSet<Key> = now.iter().map(Ep::key).collect();
        w.carrier("up0", false)?;
        w.hold_endpoints(&kept, REACT, "up0 carrier cut with no ids left")?;
        w.carrier("up0", true)?;
        w.hold_endpoints(&kept, REACT, "up0 carrier back with no ids left")?;
        w.alive()
    })
}
