// SPDX-License-Identifier: MIT OR Apache-2.0
//! Access control of the D-Bus API, with a private dbus-daemon (system-bus rules on a
//! temporary socket) and the real agent in a throwaway network namespace:
//!
//! - with the SHIPPED policy file (conf/dbus/io.github.meta_mptcp.Agent1.conf): `nobody`
//!   reads every property and the introspection (which matches the checked-in XML), but
//!   gets org.freedesktop.DBus.Error.AccessDenied for Reload and Resync, and nothing
//!   changes; root can call both;
//! - with a permissive bus: the agent's own uid check still refuses `nobody`;
//! - with a permissive bus that includes the shipped file: its explicit denies hold.
//!
//! Also: READY=1 reaches $NOTIFY_SOCKET only after the first reconciliation, and
//! RELOADING=1 … READY=1 surround a reload. Root only (skipped loudly otherwise).

mod support;

use std::time::{Duration, Instant};

use mptcp_lab::{
    netns::Netns,
    prereq::{run_trials, trials, Need},
    wait_for,
};
use support::*;

const CONFIG: &str = "schema_version = 1
[networkmanager]
follow = false
[limits]
subflows = 2
add_addr_accepted = 0
[[link]]
name = \"uplink\"
interfaces = [\"up0\"]
flags = [\"subflow\"]
";

/// A namespace with one usable uplink `up0` (veth, 10.77.0.2/24, default route).
fn netns(tag: &str) -> Result<Netns, String> {
    let ns = ctx(Netns::new(tag), "netns")?;
    for args in [
        &["link", "add", "up0", "type", "veth", "peer", "name", "up0p"][..],
        &["addr", "add", "10.77.0.2/24", "dev", "up0"],
        &["link", "set", "up0", "up"],
        &["link", "set", "up0p", "up"],
        &["route", "add", "default", "via", "10.77.0.1", "dev", "up0"],
    ] {
        ctx(ns.ip(args), &format!("ip {}", args.join(" ")))?;
    }
    Ok(ns)
}

/// Fields drop in order: the agent first, the namespace last.
struct Setup {
    agent: Agent,
    bus: PrivateBus,
    notify: Notify,
    /// The file the config symlink points to: changing it is not seen by the agent's
    /// directory watch, so only Reload (or SIGHUP) applies it.
    staged: std::path::PathBuf,
    _dir: tempfile::TempDir,
    ns: Netns,
}

fn setup(tag: &str, policy: Policy) -> Result<Setup, String> {
    let ns = netns(tag)?;
    let dir = public_tempdir()?;
    let etc = dir.path().join("etc");
    let staging = dir.path().join("staging");
    ctx(std::fs::create_dir(&etc), "etc")?;
    ctx(std::fs::create_dir(&staging), "staging")?;
    let staged = staging.join("agent.toml");
    write_file(&staged, CONFIG, 0o600)?;
    let config = etc.join("agent.toml");
    ctx(std::os::unix::fs::symlink(&staged, &config), "symlink")?;
    let bus = PrivateBus::start(dir.path(), policy)?;
    let notify = Notify::bind(dir.path())?;
    let started = Instant::now();
    let agent = Agent::start(
        ns.name(),
        &bus.address,
        &config,
        &dir.path().join("state"),
        &notify.path,
        &dir.path().join("agent.log"),
    )?;
    let mut s = Setup {
        agent,
        bus,
        notify,
        staged,
        _dir: dir,
        ns,
    };
    // READY=1 comes after the first reconciliation: the endpoint is already there.
    let msgs = s
        .notify
        .wait_for("READY=1", Duration::from_secs(15))
        .map_err(|e| format!("{e}\n{}", s.agent.log_text()))?;
    let ready_ms = started.elapsed().as_millis();
    let eps = ctx(s.ns.ip(&["mptcp", "endpoint", "show"]), "endpoints")?;
    ensure(eps.contains("10.77.0.2"), || {
        format!("READY=1 before the first reconciliation: {eps:?}")
    })?;
    ensure(msgs.iter().all(|m| !m.contains("RELOADING")), || {
        format!("{msgs:?}")
    })?;
    eprintln!("{tag}: start -> READY=1 in {ready_ms} ms ({msgs:?})");
    ensure(s.agent.alive(), || s.agent.log_text())?;
    ensure(limits(&s.ns)?.contains("subflows 2"), || {
        "limits not applied".into()
    })?;
    Ok(s)
}

fn shipped_policy_denies_unprivileged_callers() -> R {
    let s = setup("pol", Policy::Shipped)?;
    let bus = s.bus.address.clone();

    // Reading: everyone.
    let st = status(&bus, true)?;
    ensure(st["ready"] == true && st["limits"]["subflows"] == 2, || {
        format!("{st}")
    })?;
    ensure(
        st["links"].as_array().is_some_and(|l| !l.is_empty()),
        || format!("{st}"),
    )?;
    let digest = st["config"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let o = ctx(
        dbus_send(
            &bus,
            true,
            "org.freedesktop.DBus.Properties.Get",
            &[
                "string:io.github.meta_mptcp.Agent1",
                "string:LastKnownGoodInUse",
            ],
        ),
        "Get",
    )?;
    ensure(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("boolean false"),
        || text(&o),
    )?;
    // The served introspection is the checked-in XML.
    let o = ctx(
        dbus_send(
            &bus,
            true,
            "org.freedesktop.DBus.Introspectable.Introspect",
            &[],
        ),
        "Introspect",
    )?;
    ensure(o.status.success(), || text(&o))?;
    let served =
        interface_block(&String::from_utf8_lossy(&o.stdout)).ok_or("no Agent1 interface served")?;
    let file = ctx(
        std::fs::read_to_string(repo().join("conf/dbus/io.github.meta_mptcp.Agent1.xml")),
        "checked-in XML",
    )?;
    let checked_in = interface_block(&file).ok_or("no interface in the XML file")?;
    ensure(served == checked_in, || {
        format!(
            "served introspection differs from the checked-in XML:\n{served}\n---\n{checked_in}"
        )
    })?;

    // Explain only reads: nobody may call it, as the bus and as the CLI.
    let o = ctx(
        dbus_send(
            &bus,
            true,
            "io.github.meta_mptcp.Agent1.Explain",
            &["string:"],
        ),
        "Explain",
    )?;
    ensure(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"links\""),
        || text(&o),
    )?;
    let o = ctx(
        client(&bus, true, AGENT, &["explain", "--json"]),
        "explain as nobody",
    )?;
    ensure(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"source\": \"agent\""),
        || text(&o),
    )?;

    // Mutating: refused by the bus for nobody, nothing changes.
    write_file(
        &s.staged,
        &CONFIG.replace("subflows = 2", "subflows = 5"),
        0o600,
    )?;
    let o = ctx(client(&bus, true, AGENT, &["reload"]), "reload as nobody")?;
    ensure(o.status.code() == Some(4), || text(&o))?;
    ensure(
        String::from_utf8_lossy(&o.stderr).contains("org.freedesktop.DBus.Error.AccessDenied"),
        || text(&o),
    )?;
    for member in [
        "io.github.meta_mptcp.Agent1.Resync",
        "io.github.meta_mptcp.Agent1.Reload",
    ] {
        let o = ctx(dbus_send(&bus, true, member, &[]), member)?;
        ensure(!o.status.success(), || {
            format!("{member} as nobody succeeded: {}", text(&o))
        })?;
        ensure(
            String::from_utf8_lossy(&o.stderr).contains("org.freedesktop.DBus.Error.AccessDenied"),
            || text(&o),
        )?;
    }
    std::thread::sleep(Duration::from_millis(300));
    ensure(limits(&s.ns)?.contains("subflows 2"), || {
        "limits changed by an unprivileged call".into()
    })?;
    let st = status(&bus, true)?;
    ensure(st["config"]["digest"] == digest.as_str(), || {
        format!("config changed: {st}")
    })?;
    let log = s.agent.log_text();
    ensure(
        !log.contains("resync:") && !log.contains("D-Bus Reload"),
        || format!("the agent acted:\n{log}"),
    )?;

    // root can.
    let t0 = Instant::now();
    let o = ctx(client(&bus, false, AGENT, &["reload"]), "reload as root")?;
    ensure(o.status.success(), || text(&o))?;
    let applied = wait_for(Duration::from_secs(1), || {
        limits(&s.ns).ok().filter(|l| l.contains("subflows 5"))
    });
    ensure(applied.is_some(), || {
        "root's Reload not applied within 1 s".into()
    })?;
    eprintln!(
        "root Reload -> limits applied in {} ms",
        t0.elapsed().as_millis()
    );
    let msgs = s.notify.wait_for("READY=1", Duration::from_secs(2))?;
    ensure(
        msgs.first()
            .is_some_and(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC=")),
        || format!("{msgs:?}"),
    )?;
    let o = ctx(
        dbus_send(&bus, false, "io.github.meta_mptcp.Agent1.Resync", &[]),
        "Resync as root",
    )?;
    ensure(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("re-read"),
        || text(&o),
    )?;
    let st = status(&bus, false)?;
    ensure(
        st["config"]["digest"] != digest.as_str() && st["config"]["source"] == "file",
        || format!("{st}"),
    )?;
    Ok(())
}

fn agent_checks_the_caller_itself() -> R {
    let s = setup("uid", Policy::Permissive)?;
    let bus = s.bus.address.clone();
    write_file(
        &s.staged,
        &CONFIG.replace("subflows = 2", "subflows = 6"),
        0o600,
    )?;
    // The bus lets the call through; the agent refuses it.
    let o = ctx(client(&bus, true, AGENT, &["reload"]), "reload as nobody")?;
    ensure(o.status.code() == Some(4), || text(&o))?;
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ensure(
        err.contains("uid 65534 is neither root nor a member of group mptcp-admin"),
        || text(&o),
    )?;
    let o = ctx(
        dbus_send(&bus, true, "io.github.meta_mptcp.Agent1.Resync", &[]),
        "Resync as nobody",
    )?;
    ensure(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("io.github.meta_mptcp.Agent1.Error.AccessDenied"),
        || text(&o),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    ensure(limits(&s.ns)?.contains("subflows 2"), || {
        "limits changed by an unprivileged call".into()
    })?;
    ensure(!s.agent.log_text().contains("resync:"), || {
        s.agent.log_text()
    })?;
    let o = ctx(client(&bus, false, AGENT, &["reload"]), "reload as root")?;
    ensure(o.status.success(), || text(&o))?;
    ensure(limits(&s.ns)?.contains("subflows 6"), || {
        "root's Reload not applied".into()
    })?;
    Ok(())
}

fn shipped_policy_holds_on_a_permissive_bus() -> R {
    let s = setup("perm", Policy::PermissiveWithShipped)?;
    let bus = s.bus.address.clone();
    write_file(
        &s.staged,
        &CONFIG.replace("subflows = 2", "subflows = 7"),
        0o600,
    )?;
    let o = ctx(client(&bus, true, AGENT, &["reload"]), "reload as nobody")?;
    ensure(
        o.status.code() == Some(4)
            && String::from_utf8_lossy(&o.stderr)
                .contains("org.freedesktop.DBus.Error.AccessDenied"),
        || text(&o),
    )?;
    let o = ctx(
        dbus_send(
            &bus,
            true,
            "org.freedesktop.DBus.Properties.Set",
            &[
                "string:io.github.meta_mptcp.Agent1",
                "string:Ready",
                "variant:boolean:false",
            ],
        ),
        "Set as nobody",
    )?;
    ensure(
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("org.freedesktop.DBus.Error.AccessDenied"),
        || text(&o),
    )?;
    ensure(status(&bus, true)?["limits"]["subflows"] == 2, || {
        "read failed or limits changed".into()
    })?;
    ensure(limits(&s.ns)?.contains("subflows 2"), || {
        "limits changed by an unprivileged call".into()
    })
}

/// Holds the agent's bus name on its own connection until dropped.
struct NameHolder {
    _conn: zbus::Connection,
    _rt: tokio::runtime::Runtime,
}

fn hold_name(bus: &str) -> Result<NameHolder, String> {
    let rt = ctx(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "runtime",
    )?;
    let conn = rt
        .block_on(async {
            let c = zbus::connection::Builder::address(bus)?.build().await?;
            c.request_name("io.github.meta_mptcp.Agent1").await?;
            Ok::<_, zbus::Error>(c)
        })
        .map_err(|e| format!("holding the name: {e}"))?;
    Ok(NameHolder {
        _conn: conn,
        _rt: rt,
    })
}

/// A restart right after a crash can ask for the name before dbus-daemon has read the old
/// owner's hangup: the agent waits for the name (2 s), and says so when it stays taken.
fn a_taken_name_is_waited_for() -> R {
    let ns = netns("name")?;
    let dir = public_tempdir()?;
    let config = dir.path().join("agent.toml");
    write_file(&config, CONFIG, 0o600)?;
    let bus = PrivateBus::start(dir.path(), Policy::Permissive)?;
    let notify = Notify::bind(dir.path())?;
    let start = |log: &str| {
        Agent::start(
            ns.name(),
            &bus.address,
            &config,
            &dir.path().join("state"),
            &notify.path,
            &dir.path().join(log),
        )
    };

    // Freed 300 ms after the agent starts: the agent serves.
    let holder = hold_name(&bus.address)?;
    let mut agent = start("freed.log")?;
    std::thread::sleep(Duration::from_millis(300));
    drop(holder);
    notify
        .wait_for("READY=1", Duration::from_secs(15))
        .map_err(|e| format!("{e}\n{}", agent.log_text()))?;
    let st = status(&bus.address, false).map_err(|e| format!("{e}\n{}", agent.log_text()))?;
    ensure(st["limits"]["subflows"] == 2, || format!("{st}"))?;
    ensure(!agent.log_text().contains("not serving"), || {
        agent.log_text()
    })?;
    agent.stop();

    // Never freed: the agent runs without its API and names the cause.
    let _holder = hold_name(&bus.address)?;
    notify.drain();
    let mut agent = start("taken.log")?;
    let t0 = Instant::now();
    notify
        .wait_for("READY=1", Duration::from_secs(15))
        .map_err(|e| format!("{e}\n{}", agent.log_text()))?;
    let waited = t0.elapsed();
    let log = agent.log_text();
    ensure(
        log.contains("is owned by another process")
            && log.contains("is another mptcp-agent running?"),
        || log.clone(),
    )?;
    ensure(agent.alive(), || log.clone())?;
    ensure(waited >= Duration::from_secs(2), || {
        format!("READY=1 after {waited:?}: the name was not waited for\n{log}")
    })?;
    eprintln!(
        "taken name: waited {:.1} s, then ran without the D-Bus API",
        waited.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let needs = [
        Need::Root,
        Need::Mptcp,
        Need::Program("ip"),
        Need::Program("dbus-daemon"),
        Need::Program("dbus-send"),
        Need::Program("setpriv"),
    ];
    run_trials(trials(
        &needs,
        vec![
            (
                "shipped_policy_denies_unprivileged_callers",
                shipped_policy_denies_unprivileged_callers as fn() -> R,
            ),
            (
                "agent_checks_the_caller_itself",
                agent_checks_the_caller_itself as fn() -> R,
            ),
            (
                "shipped_policy_holds_on_a_permissive_bus",
                shipped_policy_holds_on_a_permissive_bus as fn() -> R,
            ),
            (
                "a_taken_name_is_waited_for",
                a_taken_name_is_waited_for as fn() -> R,
            ),
        ],
    ))
}
