// SPDX-License-Identifier: MIT OR Apache-2.0
//! Root tests of the lab itself: real NetworkManager on a private bus, real kernel MPTCP,
//! real tbf shaping and nftables NAT, in namespaces that each test creates and removes.
//! Skipped loudly without root/MPTCP/tools; failing instead with MPTCP_REQUIRE_ROOT_TESTS=1.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant, SystemTime},
};

use mptcp_lab::{
    lab::{process_alive, process_start_time},
    prereq::{run_trials, trials, Need},
    support::{ensure, Ctx},
    traffic::{ClientConfig, Direction},
    wait_for, Lab, LabOptions, Node,
};

type R = Result<(), String>;

/// Bound for a reaction these tests prove happens, not how fast: NetworkManager or mptcpd
/// following a carrier, link or connection change, a second lab's NM adding endpoints, a server
/// seeing a transfer end. Each takes well under 1 s idle and under 2 s with a `-j2` kernel build
/// beside the tests (2 cores, load 15); a green run never waits for the bound, so it can be wide.
/// How fast the agent reacts is measured by mptcp-bench, not here.
const REACTION: Duration = Duration::from_secs(20);
/// Wait for a transfer's subflows (the initial one and the MP_JOIN, a few round trips on veth).
/// It must end well before the transfer does, so the subflows are looked at while it runs.
const JOIN_WAIT: Duration = Duration::from_secs(6);
/// Length of a transfer whose subflows are inspected while it runs: JOIN_WAIT, then up to 3.5 s
/// of checks (ss -K test), with room to spare.
const LIVE_TRANSFER_S: u64 = 10;

/// A thread's panic as text (its message), for the failure report.
fn panicked(what: &str, p: Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("{what} panicked: {msg}")
}

fn up(opts: LabOptions) -> Result<Lab, String> {
    let t0 = Instant::now();
    let lab = Lab::up(opts).ctx("lab up")?;
    eprintln!(
        "[{}] lab up {:.3} s (lab.sh {:.3} s, NetworkManager start -> uplinks activated {:.3} s)",
        lab.prefix(),
        t0.elapsed().as_secs_f64(),
        lab.up_seconds().unwrap_or(f64::NAN),
        lab.nm_startup_seconds().unwrap_or(f64::NAN)
    );
    Ok(lab)
}

/// Flags of a device-side link, e.g. ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"].
fn link_flags(lab: &Lab, ifname: &str) -> Result<Vec<String>, String> {
    let out = lab
        .dev_ip(&["-o", "link", "show", "dev", ifname])
        .ctx("ip link show")?;
    let inner = out
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(f, _)| f)
        .unwrap_or("");
    Ok(inner.split(',').map(str::to_string).collect())
}

fn endpoints(lab: &Lab) -> Result<String, String> {
    lab.dev_ip(&["mptcp", "endpoint", "show"])
        .ctx("endpoint show")
}

/// True when an endpoint line for `addr` with `dev IF` and the `subflow` flag exists.
fn has_endpoint(list: &str, addr: &str, ifname: &str) -> bool {
    list.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.first() == Some(&addr)
            && w.contains(&"subflow")
            && w.windows(2).any(|p| p == ["dev", ifname])
    })
}

/// Peers of the established TCP sockets (MPTCP subflows) on the server's `port`.
fn server_subflow_peers(lab: &Lab, port: u16) -> Result<Vec<(IpAddr, u16)>, String> {
    let filter = format!("( sport = :{port} )");
    let out = lab
        .exec(
            Node::Server,
            "ss",
            &["-Htn", "state", "established", &filter],
        )
        .ctx("ss on server")?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|peer| {
            let (a, p) = peer.rsplit_once(':')?;
            let a = a.trim_start_matches('[').trim_end_matches(']');
            let a = a.strip_prefix("::ffff:").unwrap_or(a);
            Some((a.parse().ok()?, p.parse().ok()?))
        })
        .collect())
}

fn wait_for_peers(
    lab: &Lab,
    port: u16,
    want: &[IpAddr],
    timeout: Duration,
) -> Result<Vec<(IpAddr, u16)>, String> {
    let mut last = Vec::new();
    let mut err = String::new();
    let got = wait_for(timeout, || {
        last = server_subflow_peers(lab, port)
            .map_err(|e| err = e)
            .unwrap_or_default();
        want.iter()
            .all(|w| last.iter().any(|(a, _)| a == w))
            .then(|| last.clone())
    });
    got.ok_or_else(|| {
        format!("server port {port}: wanted subflows from {want:?} within {timeout:?}, have {last:?} {err}")
    })
}

fn ping(lab: &Lab, ifname: &str, dst: &str) -> R {
    lab.exec(
        Node::Device,
        "ping",
        &["-n", "-c", "1", "-W", "2", "-I", ifname, dst],
    )
    .map(drop)
    .ctx(&format!("ping {dst} via {ifname}"))
}

/// Files under the host's NetworkManager paths (and /run/mount, which `mount` without -n
/// would create), with size and mtime: the lab must not change any of them.
fn host_nm_snapshot() -> BTreeMap<String, (u64, Option<SystemTime>)> {
    fn walk(p: &Path, out: &mut BTreeMap<String, (u64, Option<SystemTime>)>) {
        if let Ok(md) = std::fs::symlink_metadata(p) {
            out.insert(
                p.display().to_string(),
                (if md.is_dir() { 0 } else { md.len() }, md.modified().ok()),
            );
            if md.is_dir() {
                if let Ok(rd) = std::fs::read_dir(p) {
                    for e in rd.flatten() {
                        walk(&e.path(), out);
                    }
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    for root in [
        "/run/NetworkManager",
        "/var/lib/NetworkManager",
        "/etc/NetworkManager",
        "/run/mount",
    ] {
        walk(Path::new(root), &mut out);
    }
    out
}

// ---------------------------------------------------------------------------------------------

fn nm_starts_uplinks_activated_routes_no_endpoints() -> R {
    let host_before = host_nm_snapshot();
    let lab = up(LabOptions::default())?;
    ensure(lab.nm_startup_complete(), || {
        "NetworkManager not at startup-complete".into()
    })?;
    for u in lab.uplinks() {
        let st = lab.connection_state(&u.name).ctx("connection state")?;
        ensure(st.as_deref() == Some("activated"), || {
            format!("{}: {st:?}", u.connection)
        })?;
    }
    let devs = lab
        .nmcli(&["-t", "-f", "DEVICE,STATE,CONNECTION", "device"])
        .ctx("nmcli device")?;
    for want in [
        "wlan0:connected:uplink-wlan0",
        "wwan0:connected:uplink-wwan0",
    ] {
        ensure(devs.lines().any(|l| l == want), || {
            format!("no {want:?} in\n{devs}")
        })?;
    }
    // Inside the device namespace, with the bus address set for us.
    let bus = lab
        .exec(Node::Device, "sh", &["-c", "echo $DBUS_SYSTEM_BUS_ADDRESS"])
        .ctx("dev sh")?;
    ensure(bus.trim() == lab.bus_address(), || {
        format!("bus in dev ns: {bus:?}")
    })?;
    let running = lab
        .exec(Node::Device, "nmcli", &["-t", "-f", "RUNNING", "general"])
        .ctx("nmcli in dev ns")?;
    ensure(running.trim() == "running", || {
        format!("nmcli general: {running:?}")
    })?;

    let r4 = lab
        .dev_ip(&["-4", "route", "show", "default"])
        .ctx("routes")?;
    let r6 = lab
        .dev_ip(&["-6", "route", "show", "default"])
        .ctx("routes")?;
    for u in lab.uplinks() {
        let want4 = format!(
            "default via {} dev {} proto static metric {}",
            u.gw4, u.name, u.metric
        );
        ensure(r4.contains(&want4), || format!("no {want4:?} in\n{r4}"))?;
        let want6 = format!(
            "default via {} dev {} proto static metric {}",
            u.gw6, u.name, u.metric
        );
        ensure(r6.contains(&want6), || format!("no {want6:?} in\n{r6}"))?;
        let addrs = lab
            .dev_ip(&["-br", "addr", "show", "dev", &u.name])
            .ctx("addr")?;
        ensure(
            addrs.contains(&u.addr4.to_string()) && addrs.contains(&u.addr6.to_string()),
            || addrs.clone(),
        )?;
        // Both families reach the server over both uplinks (wwan0 through the NAT box).
        ping(&lab, &u.name, &lab.server_addr4().to_string())?;
        ping(&lab, &u.name, &lab.server_addr6().to_string())?;
    }
    // NM's MPTCP is off: it added no endpoint at activation, nor after a reapply.
    lab.nmcli(&["device", "reapply", "wwan0"]).ctx("reapply")?;
    std::thread::sleep(Duration::from_millis(300));
    let eps = endpoints(&lab)?;
    ensure(eps.trim().is_empty(), || {
        format!("NM's MPTCP is off but endpoints exist:\n{eps}")
    })?;

    let dir = lab.dir().to_path_buf();
    lab.down().ctx("down")?;
    ensure(!dir.exists(), || format!("{} left behind", dir.display()))?;
    let host_after = host_nm_snapshot();
    ensure(host_before == host_after, || {
        format!("host NetworkManager paths changed:\nbefore {host_before:?}\nafter {host_after:?}")
    })
}

fn nm_mptcp_on_adds_endpoints() -> R {
    let lab = up(LabOptions::default().nm_mptcp(true))?;
    let mut eps = String::new();
    let all = wait_for(REACTION, || {
        eps = endpoints(&lab).unwrap_or_else(|e| e);
        lab.uplinks()
            .iter()
            .all(|u| {
                has_endpoint(&eps, &u.addr4.to_string(), &u.name)
                    && has_endpoint(&eps, &u.addr6.to_string(), &u.name)
            })
            .then_some(())
    });
    ensure(all.is_some(), || {
        format!("NM's MPTCP is on, expected v4+v6 subflow endpoints per uplink:\n{eps}")
    })
}

fn two_subflows_v4_upload_join_through_nat() -> R {
    let lab = up(LabOptions::default())?;
    let wwan = lab.uplink("wwan0").ctx("uplink")?.clone();
    let wlan = lab.uplink("wlan0").ctx("uplink")?.clone();
    lab.dev_ip(&[
        "mptcp",
        "limits",
        "set",
        "subflow",
        "2",
        "add_addr_accepted",
        "0",
    ])
    .ctx("limits")?;
    lab.dev_ip(&[
        "mptcp",
        "endpoint",
        "add",
        &wwan.addr4.to_string(),
        "dev",
        "wwan0",
        "subflow",
    ])
    .ctx("endpoint")?;
    let srv = lab.traffic_server(5000).ctx("traffic server")?;
    let client = lab
        .spawn_traffic_client(ClientConfig::upload_for(
            lab.server_sockaddr(false, 5000),
            LIVE_TRANSFER_S,
        ))
        .ctx("client")?;
    // The server sees the initial subflow from wlan0 and the join from the NAT box.
    let peers = wait_for_peers(
        &lab,
        5000,
        &[wlan.seen4.into(), wwan.seen4.into()],
        JOIN_WAIT,
    )?;
    eprintln!("[{}] v4 subflows at the server: {peers:?}", lab.prefix());
    let t = client
        .join()
        .map_err(|p| panicked("client", p))?
        .ctx("client")?;
    ensure(t.ok(), || format!("client: {:?}", t.error))?;
    let done = srv
        .wait_finished(1, REACTION)
        .ok_or("server saw no finished transfer")?;
    let rx = &done[0];
    ensure(
        rx.ok() && rx.bytes == t.bytes && rx.checksum == t.checksum,
        || format!("server: {rx:?}"),
    )?;
    eprintln!(
        "[{}] v4 upload over 2x20 Mbit/s: {:.1} Mbit/s, {} bytes intact",
        lab.prefix(),
        rx.mbps(),
        rx.bytes
    );
    // More than one 20 Mbit/s uplink can carry (its tbf lets through at most ~19 Mbit/s of
    // goodput): both paths were used.
    ensure(rx.mbps() > 21.0, || {
        format!("aggregate {:.1} Mbit/s, want > 21", rx.mbps())
    })
}

fn v6_download_far_side_shaping_and_two_subflows() -> R {
    let lab = up(LabOptions::default())?;
    let wwan = lab.uplink("wwan0").ctx("uplink")?.clone();
    let wlan = lab.uplink("wlan0").ctx("uplink")?.clone();
    let srv = lab.traffic_server(5001).ctx("traffic server")?;
    let server = lab.server_sockaddr(true, 5001);
    // One path, downloading: limited by the far side's tbf. Below 23: shaped to 20 Mbit/s (tbf's
    // burst adds well under 1 Mbit/s over 2 s); above 10: a working path, not a trickle.
    let single = lab
        .traffic_client(ClientConfig::upload_for(server, 2).direction(Direction::Download))
        .ctx("client")?;
    ensure(single.ok(), || {
        format!("single-path download: {:?}", single.error)
    })?;
    eprintln!(
        "[{}] v6 single-path download: {:.1} Mbit/s",
        lab.prefix(),
        single.mbps()
    );
    ensure(single.mbps() < 23.0 && single.mbps() > 10.0, || {
        format!("single path {:.1} Mbit/s", single.mbps())
    })?;
    lab.dev_ip(&[
        "mptcp",
        "endpoint",
        "add",
        &wwan.addr6.to_string(),
        "dev",
        "wwan0",
        "subflow",
    ])
    .ctx("endpoint")?;
    let client = lab
        .spawn_traffic_client(
            ClientConfig::upload_for(server, LIVE_TRANSFER_S).direction(Direction::Download),
        )
        .ctx("client")?;
    let peers = wait_for_peers(
        &lab,
        5001,
        &[wlan.seen6.into(), wwan.seen6.into()],
        JOIN_WAIT,
    )?;
    eprintln!("[{}] v6 subflows at the server: {peers:?}", lab.prefix());
    let t = client
        .join()
        .map_err(|p| panicked("client", p))?
        .ctx("client")?;
    ensure(t.ok() && !t.stalled(), || {
        format!("two-path download: {t:?}")
    })?;
    eprintln!(
        "[{}] v6 download over 2 paths: {:.1} Mbit/s",
        lab.prefix(),
        t.mbps()
    );
    // As for the upload: above what one shaped uplink can carry.
    ensure(t.mbps() > 21.0, || {
        format!("aggregate {:.1} Mbit/s, want > 21", t.mbps())
    })?;
    ensure(srv.wait_finished(2, REACTION).is_some(), || {
        "server: transfers not finished".into()
    })
}

fn carrier_admin_and_nmcli_helpers() -> R {
    let lab = up(LabOptions::default().carrier_wait_ms(1000))?;
    let carrier = |v: &str| -> bool {
        lab.nmcli(&["-g", "WIRED-PROPERTIES.CARRIER", "device", "show", "wwan0"])
            .map(|s| s.trim() == v)
            .unwrap_or(false)
    };
    // Carrier cut from the far side.
    lab.carrier("wwan0", false).ctx("carrier off")?;
    let f = link_flags(&lab, "wwan0")?;
    ensure(
        !f.iter().any(|x| x == "LOWER_UP") && f.iter().any(|x| x == "NO-CARRIER"),
        || format!("after cut: {f:?}"),
    )?;
    ensure(
        wait_for(REACTION, || carrier("off").then_some(())).is_some(),
        || "NM still sees carrier".into(),
    )?;
    lab.carrier("wwan0", true).ctx("carrier on")?;
    let f = link_flags(&lab, "wwan0")?;
    ensure(f.iter().any(|x| x == "LOWER_UP"), || {
        format!("after restore: {f:?}")
    })?;
    ensure(
        wait_for(REACTION, || carrier("on").then_some(())).is_some(),
        || "NM sees no carrier".into(),
    )?;
    // NM re-activates it (its profile autoconnects) if the cut outlasted carrier-wait, or keeps it.
    let activated = wait_for(REACTION, || {
        (lab.connection_state("wwan0").ok().flatten().as_deref() == Some("activated")).then_some(())
    });
    ensure(activated.is_some(), || {
        "wwan0 not activated after carrier came back".into()
    })?;

    // Admin down/up on the device side: the kernel drops its routes, NM puts them back.
    lab.link("wwan0", false).ctx("link down")?;
    let f = link_flags(&lab, "wwan0")?;
    ensure(!f.iter().any(|x| x == "UP"), || {
        format!("after admin down: {f:?}")
    })?;
    let r4 = lab
        .dev_ip(&["-4", "route", "show", "default"])
        .ctx("routes")?;
    ensure(!r4.contains("dev wwan0"), || {
        format!("route via a down link:\n{r4}")
    })?;
    lab.link("wwan0", true).ctx("link up")?;
    ensure(link_flags(&lab, "wwan0")?.iter().any(|x| x == "UP"), || {
        "not UP".into()
    })?;
    let back = wait_for(REACTION, || {
        let r = lab
            .dev_ip(&["-4", "route", "show", "default"])
            .unwrap_or_default();
        r.contains("via 10.2.0.1 dev wwan0").then_some(())
    });
    ensure(back.is_some(), || {
        "default route via wwan0 not restored after admin up".into()
    })?;

    // nmcli connection down removes the addresses; up restores them.
    lab.connection("wwan0", false).ctx("conn down")?;
    let gone = wait_for(REACTION, || {
        let a = lab
            .dev_ip(&["-br", "addr", "show", "dev", "wwan0"])
            .unwrap_or_default();
        (!a.contains("10.2.0.2") && !a.contains("2001:db8:2::2")).then_some(())
    });
    ensure(gone.is_some(), || {
        "addresses still on wwan0 after connection down".into()
    })?;
    // The addresses go during deactivation; the active connection itself goes after it (on a
    // loaded host seen still there when the addresses were gone).
    let inactive = wait_for(REACTION, || {
        lab.connection_state("wwan0").ok()?.is_none().then_some(())
    });
    ensure(inactive.is_some(), || {
        format!(
            "connection still active {REACTION:?} after its addresses went: {:?}",
            lab.connection_state("wwan0")
        )
    })?;
    lab.connection("wwan0", true).ctx("conn up")?;
    let a = lab
        .dev_ip(&["-br", "addr", "show", "dev", "wwan0"])
        .ctx("addr")?;
    ensure(
        a.contains("10.2.0.2/24") && a.contains("2001:db8:2::2/64"),
        || format!("after conn up: {a}"),
    )?;
    ensure(
        lab.connection_state("wwan0").ctx("state")?.as_deref() == Some("activated"),
        || "not activated".into(),
    )
}

fn ss_kill_resets_one_subflow_and_transfer_survives() -> R {
    let lab = up(LabOptions::default())?;
    let wwan = lab.uplink("wwan0").ctx("uplink")?.clone();
    let wlan = lab.uplink("wlan0").ctx("uplink")?.clone();
    lab.dev_ip(&[
        "mptcp",
        "endpoint",
        "add",
        &wwan.addr4.to_string(),
        "dev",
        "wwan0",
        "subflow",
    ])
    .ctx("endpoint")?;
    let srv = lab.traffic_server(5002).ctx("traffic server")?;
    let mut cfg = ClientConfig::upload_for(lab.server_sockaddr(false, 5002), LIVE_TRANSFER_S);
    cfg.limits.stall_abort = Duration::from_secs(10);
    let client = lab.spawn_traffic_client(cfg).ctx("client")?;
    let before = wait_for_peers(
        &lab,
        5002,
        &[wlan.seen4.into(), wwan.seen4.into()],
        JOIN_WAIT,
    )?;
    let wlan_port = before
        .iter()
        .find(|(a, _)| *a == IpAddr::from(wlan.seen4))
        .map(|p| p.1);
    std::thread::sleep(Duration::from_millis(500));
    lab.kill_subflows_of("wwan0").ctx("ss -K")?;
    let mut now = Vec::new();
    // ss -K destroys the socket at once and its RST crosses one veth: 3 s allows a stalled host
    // and keeps the check of the wlan0 subflow inside the transfer.
    let closed = wait_for(REACTION, || {
        now = server_subflow_peers(&lab, 5002).unwrap_or_default();
        (!now.iter().any(|(a, _)| *a == IpAddr::from(wwan.seen4))).then_some(())
    });
    ensure(closed.is_some(), || {
        format!("wwan0 subflow still there after ss -K: {now:?}")
    })?;
    let wlan_after = now
        .iter()
        .find(|(a, _)| *a == IpAddr::from(wlan.seen4))
        .map(|p| p.1);
    ensure(wlan_port.is_some() && wlan_after == wlan_port, || {
        format!("wlan0 subflow changed: {before:?} -> {now:?}")
    })?;
    let t = client
        .join()
        .map_err(|p| panicked("client", p))?
        .ctx("client")?;
    ensure(t.ok(), || {
        format!("transfer broken by a subflow reset: {:?}", t.error)
    })?;
    let rx = srv
        .wait_finished(1, REACTION)
        .ok_or("server: not finished")?;
    ensure(rx[0].ok() && rx[0].checksum == t.checksum, || {
        format!("server: {:?}", rx[0])
    })
}

fn nm_restart_kill_and_start() -> R {
    let lab = up(LabOptions::default())?;
    let activated = |lab: &Lab| {
        lab.uplinks()
            .iter()
            .all(|u| lab.connection_state(&u.name).ok().flatten().as_deref() == Some("activated"))
    };
    let pid1 = lab.pid("nm").ok_or("nm not running")?;
    let start1 = process_start_time(pid1).unwrap_or_default();
    let t0 = Instant::now();
    lab.nm_restart().ctx("nm restart")?;
    eprintln!(
        "[{}] NetworkManager restart: {:.3} s",
        lab.prefix(),
        t0.elapsed().as_secs_f64()
    );
    let pid2 = lab.pid("nm").ok_or("nm not running after restart")?;
    ensure(pid2 != pid1 && !process_alive(pid1, &start1), || {
        format!("old NM {pid1} still there")
    })?;
    ensure(lab.nm_startup_complete() && activated(&lab), || {
        "not activated after restart".into()
    })?;

    lab.nm_kill().ctx("nm kill")?;
    ensure(lab.pid("nm").is_none(), || {
        "NM still running after SIGKILL".into()
    })?;
    ensure(!lab.nm_startup_complete(), || "NM still on the bus".into())?;
    // SIGKILL leaves the configuration in the kernel.
    let a = lab
        .dev_ip(&["-br", "addr", "show", "dev", "wwan0"])
        .ctx("addr")?;
    ensure(a.contains("10.2.0.2/24"), || {
        format!("address gone with NM: {a}")
    })?;
    lab.nm_start().ctx("nm start")?;
    ensure(lab.nm_startup_complete() && activated(&lab), || {
        "not activated after start".into()
    })
}

fn mptcpd_adds_endpoints_and_stops() -> R {
    let lab = up(LabOptions::default().mptcpd(true))?;
    let pid = lab.pid("mptcpd").ok_or("mptcpd not running")?;
    let start = process_start_time(pid).unwrap_or_default();
    let mut eps = String::new();
    let all = wait_for(REACTION, || {
        eps = endpoints(&lab).unwrap_or_else(|e| e);
        lab.uplinks()
            .iter()
            .all(|u| has_endpoint(&eps, &u.addr4.to_string(), &u.name))
            .then_some(())
    });
    ensure(all.is_some(), || {
        format!("mptcpd added no endpoints for both uplinks:\n{eps}")
    })?;
    lab.mptcpd_stop().ctx("mptcpd stop")?;
    ensure(
        lab.pid("mptcpd").is_none() && !process_alive(pid, &start),
        || "mptcpd still running".into(),
    )?;
    lab.mptcpd_start().ctx("mptcpd start")?;
    ensure(lab.pid("mptcpd").is_some(), || {
        "mptcpd did not start again".into()
    })
}

fn uplink_without_default_route() -> R {
    let lab = up(LabOptions::default().no_default_route("wwan0"))?;
    ensure(!lab.uplink("wwan0").ctx("uplink")?.default_route, || {
        "env says wwan0 has a default route".into()
    })?;
    ensure(
        lab.connection_state("wwan0").ctx("state")?.as_deref() == Some("activated"),
        || "not activated".into(),
    )?;
    let r4 = lab
        .dev_ip(&["-4", "route", "show", "default"])
        .ctx("routes")?;
    let r6 = lab
        .dev_ip(&["-6", "route", "show", "default"])
        .ctx("routes")?;
    ensure(
        r4.contains("dev wlan0") && !r4.contains("dev wwan0"),
        || format!("v4 defaults:\n{r4}"),
    )?;
    ensure(
        r6.contains("dev wlan0") && !r6.contains("dev wwan0"),
        || format!("v6 defaults:\n{r6}"),
    )?;
    let a = lab
        .dev_ip(&["-br", "addr", "show", "dev", "wwan0"])
        .ctx("addr")?;
    ensure(
        a.contains("10.2.0.2/24") && a.contains("2001:db8:2::2/64"),
        || format!("wwan0: {a}"),
    )
}

fn two_labs_side_by_side() -> R {
    let a = std::thread::spawn(|| up(LabOptions::default()));
    let b = std::thread::spawn(|| up(LabOptions::default().nm_mptcp(true)));
    let a = a.join().map_err(|p| panicked("lab a", p))??;
    let b = b.join().map_err(|p| panicked("lab b", p))??;
    ensure(
        a.dev_ns() != b.dev_ns() && a.bus_address() != b.bus_address(),
        || "labs share names".into(),
    )?;
    for lab in [&a, &b] {
        ensure(lab.nm_startup_complete(), || {
            format!("{}: NM not ready", lab.prefix())
        })?;
        for u in lab.uplinks() {
            ensure(
                lab.connection_state(&u.name).ctx("state")?.as_deref() == Some("activated"),
                || format!("{}: {} not activated", lab.prefix(), u.name),
            )?;
        }
        ping(lab, "wwan0", &lab.server_addr4().to_string())?;
        ping(lab, "wwan0", &lab.server_addr6().to_string())?;
    }
    // Each NM manages only its own lab: only b (NM's MPTCP on) has endpoints.
    ensure(endpoints(&a)?.trim().is_empty(), || {
        "lab a has endpoints".into()
    })?;
    ensure(
        wait_for(REACTION, || {
            (!endpoints(&b).unwrap_or_default().trim().is_empty()).then_some(())
        })
        .is_some(),
        || "lab b has no endpoints".into(),
    )?;
    let names: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|l| {
            [Node::Device, Node::Router, Node::Nat, Node::Server].map(|n| l.ns(n).to_string())
        })
        .collect();
    let dirs = [a.dir().to_path_buf(), b.dir().to_path_buf()];
    let pids: Vec<(u32, String)> = [&a, &b]
        .iter()
        .flat_map(|l| l.pids())
        .map(|(_, p)| (p, process_start_time(p).unwrap_or_default()))
        .collect();
    ensure(pids.len() == 4, || {
        format!("expected 2 x (dbus, nm): {pids:?}")
    })?;
    drop(a);
    drop(b);
    for n in names {
        ensure(!Path::new("/run/netns").join(&n).exists(), || {
            format!("netns {n} left behind")
        })?;
    }
    for (pid, start) in &pids {
        ensure(!process_alive(*pid, start), || {
            format!("pid {pid} survived Drop")
        })?;
    }
    for d in &dirs {
        ensure(!d.exists(), || format!("{} survived Drop", d.display()))?;
    }
    Ok(())
}

struct Leftovers {
    namespaces: Vec<String>,
    pids: Vec<(u32, String)>,
    dir: std::path::PathBuf,
    stray: std::process::Child,
}

fn drop_cleans_up_even_after_a_panic() -> R {
    let (tx, rx) = std::sync::mpsc::channel::<Leftovers>();
    let worker = std::thread::spawn(move || {
        let lab = Lab::up(LabOptions::default().mptcpd(true)).expect("lab up");
        lab.spawn(Node::Server, "sleeper", &["sleep", "600"])
            .expect("spawn");
        // Started outside the lab's bookkeeping, but inside its namespace: down kills it too.
        let stray = lab
            .command(Node::Device, "sleep")
            .arg("600")
            .spawn()
            .expect("stray");
        let mut pids: Vec<(u32, String)> = lab
            .pids()
            .into_iter()
            .map(|(_, p)| (p, process_start_time(p).unwrap_or_default()))
            .collect();
        pids.push((
            stray.id(),
            process_start_time(stray.id()).unwrap_or_default(),
        ));
        let namespaces = [Node::Device, Node::Router, Node::Nat, Node::Server]
            .map(|n| lab.ns(n).to_string())
            .to_vec();
        tx.send(Leftovers {
            namespaces,
            pids,
            dir: lab.dir().to_path_buf(),
            stray,
        })
        .expect("send");
        panic!("deliberate panic with a live lab (this message is expected)");
    });
    ensure(worker.join().is_err(), || "the worker did not panic".into())?;
    let mut left = rx
        .recv_timeout(Duration::from_secs(1))
        .map_err(|_| "worker sent nothing")?;
    ensure(left.pids.len() >= 5, || {
        format!(
            "expected dbus, nm, mptcpd, sleeper and the stray: {:?}",
            left.pids
        )
    })?;
    // The stray is our own child: it must have been killed; reap it.
    let status = wait_for(REACTION, || left.stray.try_wait().ok().flatten());
    ensure(status.is_some(), || {
        "the stray process in the device namespace survived".into()
    })?;
    for (pid, start) in &left.pids {
        ensure(!process_alive(*pid, start), || {
            format!("pid {pid} still running")
        })?;
    }
    for n in &left.namespaces {
        ensure(!Path::new("/run/netns").join(n).exists(), || {
            format!("netns {n} left behind")
        })?;
    }
    ensure(!left.dir.exists(), || {
        format!("{} left behind", left.dir.display())
    })
}

/// The lab's iperf3 server listens on 5201 (tcp or mptcp line in `ss -l`).
fn iperf3_listening(lab: &Lab) -> bool {
    lab.exec(Node::Server, "ss", &["-Hln", "sport = :5201"])
        .map(|o| !o.trim().is_empty())
        .unwrap_or(false)
}

/// What iperf3 said, for a failure message: its JSON "error", stderr, the tail of stdout and
/// of the server's log.
fn iperf3_report(lab: &Lab, out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let error = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "(none)".into());
    let tail = |s: &str, n: usize| {
        let start = s.len().saturating_sub(n);
        let start = (start..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].trim().to_string()
    };
    let server = std::fs::read_to_string(lab.dir().join("log/iperf3.log")).unwrap_or_default();
    format!(
        "{}; iperf3 error: {error}; stderr: {}; stdout (tail): {}; server log (tail): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim(),
        tail(&stdout, 1500),
        tail(&server, 800)
    )
}

fn iperf3_through_mptcpize() -> R {
    let lab = up(LabOptions::default().iperf3_server(true))?;
    let wwan = lab.uplink("wwan0").ctx("uplink")?.clone();
    lab.dev_ip(&[
        "mptcp",
        "endpoint",
        "add",
        &wwan.addr4.to_string(),
        "dev",
        "wwan0",
        "subflow",
    ])
    .ctx("endpoint")?;
    let srv = lab.server_addr4().to_string();
    // The server is started in the background by lab.sh: wait until it listens (one run of
    // iperf3, no retries that could meet a half-finished earlier attempt). 10 s: a process
    // start and bind, which takes well under 1 s even on a loaded 2-core machine.
    ensure(
        wait_for(Duration::from_secs(10), || {
            iperf3_listening(&lab).then_some(())
        })
        .is_some(),
        || "iperf3 server not listening on 5201 after 10 s".into(),
    )?;
    let out = lab
        .command(Node::Device, "mptcpize")
        .args(["run", "iperf3", "-c", &srv, "-t", "3", "-J"])
        .output()
        .ctx("mptcpize run iperf3")?;
    let report = || iperf3_report(&lab, &out);
    ensure(out.status.success(), || {
        format!("iperf3 failed: {}", report())
    })?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("iperf3 json: {e}: {}", report()))?;
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| format!("no sum_received in iperf3 output: {}", report()))?;
    eprintln!(
        "[{}] iperf3 (mptcpize) over 2x20 Mbit/s: {:.1} Mbit/s",
        lab.prefix(),
        bps / 1e6
    );
    // Proves aggregation: one 20 Mbit/s tbf link delivers at most ~19 Mbit/s of goodput, so
    // anything above 21 needs both subflows. Not tighter: a loaded host stalls the sender.
    ensure(bps > 21e6, || {
        format!("iperf3 {:.1} Mbit/s, want > 21: {}", bps / 1e6, report())
    })
}

fn main() {
    let base = [
        Need::Root,
        Need::Mptcp,
        Need::Program("ip"),
        Need::Program("NetworkManager"),
        Need::Program("nmcli"),
        Need::Program("nm-online"),
        Need::Program("dbus-daemon"),
        Need::Program("nft"),
        Need::Program("tc"),
        Need::Program("ss"),
        Need::Program("unshare"),
        Need::Program("setsid"),
        Need::Program("ping"),
    ];
    type T = fn() -> R;
    let mut all = trials(
        &base,
        vec![
            (
                "lab::nm_starts_uplinks_activated_routes_no_endpoints",
                nm_starts_uplinks_activated_routes_no_endpoints as T,
            ),
            (
                "lab::nm_mptcp_on_adds_endpoints",
                nm_mptcp_on_adds_endpoints,
            ),
            (
                "lab::two_subflows_v4_upload_join_through_nat",
                two_subflows_v4_upload_join_through_nat,
            ),
            (
                "lab::v6_download_far_side_shaping_and_two_subflows",
                v6_download_far_side_shaping_and_two_subflows,
            ),
            (
                "lab::carrier_admin_and_nmcli_helpers",
                carrier_admin_and_nmcli_helpers,
            ),
            (
                "lab::ss_kill_resets_one_subflow_and_transfer_survives",
                ss_kill_resets_one_subflow_and_transfer_survives,
            ),
            ("lab::nm_restart_kill_and_start", nm_restart_kill_and_start),
            (
                "lab::uplink_without_default_route",
                uplink_without_default_route,
            ),
            ("lab::two_labs_side_by_side", two_labs_side_by_side),
        ],
    );
    let mut with_mptcpd = base.to_vec();
    with_mptcpd.push(Need::Program("mptcpd"));
    all.extend(trials(
        &with_mptcpd,
        vec![
            (
                "lab::mptcpd_adds_endpoints_and_stops",
                mptcpd_adds_endpoints_and_stops as T,
            ),
            (
                "lab::drop_cleans_up_even_after_a_panic",
                drop_cleans_up_even_after_a_panic,
            ),
        ],
    ));
    let mut with_iperf = base.to_vec();
    with_iperf.extend([Need::Program("iperf3"), Need::Program("mptcpize")]);
    all.extend(trials(
        &with_iperf,
        vec![("lab::iperf3_through_mptcpize", iperf3_through_mptcpize as T)],
    ));
    run_trials(all)
}
