// SPDX-License-Identifier: MIT OR Apache-2.0
//! NetworkManager adapter: typed zbus proxies for the few interfaces the agent reads, and
//! a watcher that turns NetworkManager's presence (name owner), devices and their changes
//! into core [`Event`]s.
//!
//! Only API that exists in NetworkManager 1.36 (Yocto kirkstone) is used, checked against
//! its introspection XML: `GetDevices`, `Version`, `Startup`, `DeviceAdded`/`DeviceRemoved`;
//! `Device.{Interface, IpInterface, DeviceType, State, Metered, Ip4Config, Ip6Config,
//! Dhcp4Config, GetAppliedConnection}`; `IP4Config.Gateway`, `IP6Config.Gateway`,
//! `DHCP4Config.Options`; `Settings.Connection.Updated`, `Connection.Active.Devices`; and
//! the standard `org.freedesktop.DBus.Properties` (`GetAll`, `Get`, `PropertiesChanged`).
//!
//! A profile's MPTCP setting can change without any device property changing: `nmcli
//! connection modify` (signal `Updated`) and `nmcli device reapply` (no signal at all: only
//! the applied connection's version id moves). So the watcher re-reads devices on `Updated`
//! and on active-connection changes, and polls the applied connection of the devices the
//! daemon asks it to (those refused because of NetworkManager's own MPTCP), so that a fix
//! applied with reapply lifts the refusal without a restart.

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use futures::{FutureExt, StreamExt};
use mptcp_agent_core::{AppliedProfile, DeviceType, Event, Metered, NmDevice, NmVersion};
use tokio::sync::{mpsc::Sender, watch as watch_channel};
use zbus::{
    fdo::{DBusProxy, PropertiesProxy},
    names::{BusName, InterfaceName},
    proxy::CacheProperties,
    zvariant::{OwnedObjectPath, OwnedValue, Value},
    Connection, MatchRule, MessageStream,
};

use crate::error::{Context, Result};

/// A connection's settings: setting name → key → value.
type Settings = HashMap<String, HashMap<String, OwnedValue>>;

pub const NM_SERVICE: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const SETTINGS_PATH: &str = "/org/freedesktop/NetworkManager/Settings";
const ACTIVE_INTERFACE: &str = "org.freedesktop.NetworkManager.Connection.Active";

/// How often the applied connection of a polled device is checked (a reapply sends no signal).
pub const APPLIED_POLL: Duration = Duration::from_secs(2);

/// What the daemon asks of the watcher besides following signals.
pub struct Follow {
    /// Device object paths whose applied connection to poll.
    pub poll: watch_channel::Receiver<BTreeSet<String>>,
    /// Read every device again now (D-Bus `Resync`).
    pub refresh: std::sync::Arc<tokio::sync::Notify>,
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager",
    default_service = "org.freedesktop.NetworkManager",
    default_path = "/org/freedesktop/NetworkManager"
)]
trait NetworkManager {
    fn get_devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;

    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn startup(&self) -> zbus::Result<bool>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Device",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Device {
    /// The profile as applied to the device (what NetworkManager acts on, unlike the
    /// saved profile after an `nmcli connection modify` without reapply).
    fn get_applied_connection(&self, flags: u32) -> zbus::Result<(Settings, u64)>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.Connection.Active",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Active {
    #[zbus(property)]
    fn devices(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.NetworkManager.DHCP4Config",
    default_service = "org.freedesktop.NetworkManager"
)]
trait Dhcp4Config {
    #[zbus(property)]
    fn options(&self) -> zbus::Result<HashMap<String, OwnedValue>>;
}

/// Properties whose change means the agent's view of a device is stale.
/// `InterfaceFlags` (its carrier bit) changes when NetworkManager has handled a carrier
/// change: the report the agent waits for when a carrier comes back about when
/// NetworkManager's carrier-wait runs out.
const DEVICE_KEYS: [&str; 10] = [
    "Dhcp4Config",
    "State",
    "InterfaceFlags",
    "Metered",
    "IpInterface",
    "Interface",
    "Ip4Config",
    "Ip6Config",
    "ActiveConnection",
    "DeviceType",
];

const DEVICE_INTERFACE: &str = "org.freedesktop.NetworkManager.Device";

/// Read one device. Properties are fetched fresh (no proxy cache: the watcher has its
/// own signal subscription and re-reads on change).
pub async fn read_device(conn: &Connection, path: &str) -> zbus::Result<NmDevice> {
    Ok(read_device_and_configs(conn, path).await?.0)
}

/// One device, and the object paths of its IP and DHCP configs, in two rounds of D-Bus
/// calls: the device's properties at once (`GetAll`) beside its applied connection, then the
/// configs' gateways side by side. Read one property after the other (about 15 round trips
/// per signal) during an activation, when NetworkManager is busy and sends a burst of
/// signals, ACTIVATED took effect 32–76 ms after NetworkManager's signal (lab, load 8).
async fn read_device_and_configs(
    conn: &Connection,
    path: &str,
) -> zbus::Result<(NmDevice, Vec<String>)> {
    let props = properties(conn, path).await?;
    let d = DeviceProxy::builder(conn)
        .path(path)?
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let (all, applied) = futures::join!(
        props.get_all(Some(InterfaceName::from_static_str_unchecked(DEVICE_INTERFACE)).into()),
        d.get_applied_connection(0)
    );
    let all = all?;
    let text = |k: &str| match all.get(k).map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    let number = |k: &str| match all.get(k).map(|v| &**v) {
        Some(Value::U32(n)) => Some(*n),
        _ => None,
    };
    let object = |k: &str| match all.get(k).map(|v| &**v) {
        Some(Value::ObjectPath(p)) if p.as_str() != "/" => Some(p.to_string()),
        _ => None,
    };
    let missing = |k: &str| zbus::Error::Failure(format!("{path}: no {k} property"));
    let interface = text("Interface").ok_or_else(|| missing("Interface"))?;
    let ip_interface = text("IpInterface").unwrap_or_default();
    let state = number("State").ok_or_else(|| missing("State"))?;
    let device_type =
        DeviceType::from_nm(number("DeviceType").ok_or_else(|| missing("DeviceType"))?);
    let metered = Metered::from_nm(number("Metered").unwrap_or(0));
    // PREPARE..DEACTIVATING have an applied connection.
    let applied_settings = if (40..=110).contains(&state) {
        match applied {
            Ok((settings, _)) => Some((
                applied_profile(&settings),
                setting_str(&settings, "ipv4", "gateway").and_then(|g| g.parse().ok()),
                setting_str(&settings, "ipv6", "gateway").and_then(|g| g.parse().ok()),
            )),
            Err(e) => {
                log::debug!("NetworkManager {path}: GetAppliedConnection: {e}");
                None
            }
        }
    } else {
        None
    };
    let (ip4, ip6, dhcp4) = (
        object("Ip4Config"),
        object("Ip6Config"),
        object("Dhcp4Config"),
    );
    let (gateway4, gateway6, router) = futures::join!(
        config_gateway::<std::net::Ipv4Addr>(
            conn,
            ip4.as_deref(),
            "org.freedesktop.NetworkManager.IP4Config"
        ),
        config_gateway::<std::net::Ipv6Addr>(
            conn,
            ip6.as_deref(),
            "org.freedesktop.NetworkManager.IP6Config"
        ),
        dhcp4_router(conn, dhcp4.as_deref())
    );
    // With never-default, NetworkManager's IP config has no gateway; DHCP still names the
    // router, and a static profile may keep it in its settings.
    let mut gateway4 = gateway4.or(router);
    let mut gateway6 = gateway6;
    if let Some((_, g4, g6)) = &applied_settings {
        gateway4 = gateway4.or(*g4);
        gateway6 = gateway6.or(*g6);
    }
    let applied = applied_settings.map(|(a, _, _)| a);
    let device = NmDevice {
        path: path.to_string(),
        interface: if ip_interface.is_empty() {
            interface
        } else {
            ip_interface
        },
        device_type,
        state,
        metered,
        applied,
        gateway4,
        gateway6,
    };
    Ok((device, [ip4, ip6, dhcp4].into_iter().flatten().collect()))
}

/// `org.freedesktop.DBus.Properties` of one NetworkManager object.
async fn properties<'a>(conn: &Connection, path: &'a str) -> zbus::Result<PropertiesProxy<'a>> {
    PropertiesProxy::builder(conn)
        .destination(NM_SERVICE)?
        .path(path)?
        .cache_properties(CacheProperties::No)
        .build()
        .await
}

/// The `Gateway` of an IP4Config or IP6Config object, if it has one.
async fn config_gateway<A: std::str::FromStr>(
    conn: &Connection,
    path: Option<&str>,
    interface: &'static str,
) -> Option<A> {
    let props = properties(conn, path?).await.ok()?;
    let v = props
        .get(
            InterfaceName::from_static_str_unchecked(interface),
            "Gateway",
        )
        .await
        .ok()?;
    match &*v {
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// The router DHCPv4 names, if the device has a DHCPv4 config.
async fn dhcp4_router(conn: &Connection, path: Option<&str>) -> Option<std::net::Ipv4Addr> {
    let c = Dhcp4ConfigProxy::builder(conn)
        .path(path?)
        .ok()?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    c.options().await.ok().and_then(|o| dhcp_router(&o))
}

/// The first router of DHCPv4 option 3 ("routers": space-separated addresses).
fn dhcp_router(options: &HashMap<String, OwnedValue>) -> Option<std::net::Ipv4Addr> {
    match &**options.get("routers")? {
        Value::Str(s) => s.split_whitespace().next()?.parse().ok(),
        _ => None,
    }
}

fn setting_str(settings: &Settings, group: &str, key: &str) -> Option<String> {
    match &**settings.get(group)?.get(key)? {
        Value::Str(s) if !s.is_empty() => Some(s.to_string()),
        _ => None,
    }
}

fn applied_profile(settings: &Settings) -> AppliedProfile {
    let conn = settings.get("connection");
    let id = conn
        .and_then(|c| c.get("id"))
        .and_then(|v| match &**v {
            Value::Str(s) => Some(s.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    // `mptcp-flags` exists from 1.40 on; absent means "default" (0).
    let mptcp_flags = conn
        .and_then(|c| c.get("mptcp-flags"))
        .and_then(|v| match &**v {
            Value::U32(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0);
    AppliedProfile { id, mptcp_flags }
}

/// Read NetworkManager's config files (paths or directories of `*.conf`) in its load
/// order; a file in a later directory shadows the same name in an earlier one.
pub fn read_conf_files(paths: &[String]) -> Vec<(String, String)> {
    let mut entries: Vec<(String, std::path::PathBuf)> = Vec::new();
    for p in paths {
        let path = std::path::Path::new(p);
        if path.is_dir() {
            let mut names: Vec<std::path::PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect(),
                Err(_) => continue,
            };
            names.sort();
            for f in names {
                let base = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                entries.retain(|(b, _)| *b != base);
                entries.push((base, f));
            }
        } else if path.is_file() {
            entries.push((String::new(), path.to_path_buf()));
        }
    }
    entries
        .into_iter()
        .filter_map(|(_, f)| {
            // NetworkManager's own files are small; bound what a stray file can cost.
            let meta = std::fs::metadata(&f).ok()?;
            if meta.len() > 1 << 20 {
                return None;
            }
            let text = std::fs::read_to_string(&f).ok()?;
            Some((f.to_string_lossy().into_owned(), text))
        })
        .collect()
}

/// Watch NetworkManager forever: presence, devices, changes. Sends [`Event::NmGone`] when it
/// is not on the bus, [`Event::NmAppeared`] + [`Event::NmDevices`] when it is (again).
/// `follow`: devices whose applied connection to check every [`APPLIED_POLL`], and
/// requests to read every device again. NetworkManager's config files are the caller's to
/// read ([`read_conf_files`]) on [`Event::NmAppeared`], where its config says they are.
pub async fn watch<T: From<Event>>(
    conn: Connection,
    tx: Sender<T>,
    follow: Option<Follow>,
) -> Result<()> {
    let (mut poll, refresh_all_now) = match follow {
        Some(f) => (Some(f.poll), Some(f.refresh)),
        None => (None, None),
    };
    let dbus = DBusProxy::new(&conn).await.context("D-Bus daemon proxy")?;
    let mut owner_changes = dbus
        .receive_name_owner_changed_with_args(&[(0, NM_SERVICE)])
        .await
        .context("subscribing to NameOwnerChanged")?;
    let props_rule = properties_rule().context("NetworkManager match rule")?;
    let mut props = MessageStream::for_match_rule(props_rule, &conn, Some(1024))
        .await
        .context("subscribing to NetworkManager PropertiesChanged")?;
    let devices_rule = devices_rule().context("NetworkManager match rule")?;
    let mut device_signals = MessageStream::for_match_rule(devices_rule, &conn, Some(256))
        .await
        .context("subscribing to NetworkManager DeviceAdded/DeviceRemoved")?;
    let updated_rule = updated_rule().context("NetworkManager match rule")?;
    let mut updated = MessageStream::for_match_rule(updated_rule, &conn, Some(256))
        .await
        .context("subscribing to NetworkManager's Settings.Connection.Updated")?;
    let mut poll_tick = tokio::time::interval(APPLIED_POLL);
    poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Applied-connection version ids last seen, by device path.
    let mut versions: HashMap<String, u64> = HashMap::new();

    loop {
        let present = dbus
            .name_has_owner(BusName::WellKnown(
                zbus::names::WellKnownName::from_static_str_unchecked(NM_SERVICE),
            ))
            .await
            .unwrap_or(false);
        if !present {
            log::info!("NetworkManager is not on the bus: kernel-only mode");
            if tx.send(Event::NmGone.into()).await.is_err() {
                return Ok(());
            }
            // Wait until it gets an owner.
            loop {
                match owner_changes.next().await {
                    Some(sig) => {
                        if let Ok(args) = sig.args() {
                            if args.new_owner().is_some() {
                                break;
                            }
                        }
                    }
                    None => return Err(crate::error::Error::msg("the D-Bus connection closed")),
                }
            }
        }
        // Present: snapshot, then follow changes until it leaves.
        match snapshot(&conn, &tx).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                log::warn!("NetworkManager: reading its state failed ({e}); retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let mut config_paths: HashMap<String, String> = HashMap::new();
        loop {
            tokio::select! {
                sig = owner_changes.next() => {
                    let Some(sig) = sig else { return Err(crate::error::Error::msg("the D-Bus connection closed")) };
                    let gone = sig.args().map(|a| a.new_owner().is_none()).unwrap_or(true);
                    if gone {
                        log::info!("NetworkManager left the bus");
                    } else {
                        log::info!("NetworkManager has a new owner (restarted)");
                    }
                    break;
                }
                _ = async { match &refresh_all_now { Some(n) => n.notified().await, None => std::future::pending().await } } => {
                    if !refresh_all(&conn, &tx, &mut config_paths).await {
                        return Ok(());
                    }
                }
                msg = updated.next() => {
                    let Some(Ok(_)) = msg else { continue };
                    // A profile changed (`nmcli connection modify`): what devices apply may
                    // follow (reapply), or already has for a profile being activated.
                    if !refresh_all(&conn, &tx, &mut config_paths).await {
                        return Ok(());
                    }
                }
                _ = poll_tick.tick(), if poll.as_ref().is_some_and(|p| !p.borrow().is_empty()) => {
                    let paths: Vec<String> = poll.as_mut().map(|p| p.borrow_and_update().iter().cloned().collect()).unwrap_or_default();
                    versions.retain(|k, _| paths.contains(k));
                    for path in paths {
                        let Some(v) = applied_version(&conn, &path).await else { continue };
                        if versions.insert(path.clone(), v) == Some(v) {
                            continue;
                        }
                        // First look or a new version (reapply): read the device again.
                        if let Some(ev) = refresh(&conn, &path, &mut config_paths).await {
                            if tx.send(ev.into()).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
                msg = props.next() => {
                    let Some(Ok(msg)) = msg else { continue };
                    // Everything NetworkManager has sent by now, at once: a device reported
                    // several times in a burst (each state of an activation) is read once, after
                    // it, instead of once per signal with the latest state read last.
                    let mut batch = vec![msg];
                    while let Some(Some(next)) = props.next().now_or_never() {
                        batch.extend(next.ok());
                    }
                    let mut devices: Vec<String> = Vec::new();
                    let mut started = false;
                    for msg in &batch {
                        let changed = match active_connection_devices(&conn, msg).await {
                            Some(list) => list.into_iter().map(Changed::Device).collect(),
                            None => Vec::from_iter(classify(msg, &config_paths)),
                        };
                        for c in changed {
                            match c {
                                Changed::Device(path) => {
                                    if !devices.contains(&path) {
                                        devices.push(path);
                                    }
                                }
                                // Startup done: devices are assumed or activated now, and the
                                // version is known; read everything again rather than patch it up.
                                Changed::Startup(false) => started = true,
                                Changed::Startup(true) => {
                                    if tx.send(Event::NmStartup(true).into()).await.is_err() {
                                        return Ok(());
                                    }
                                }
                            }
                        }
                    }
                    if started {
                        match snapshot(&conn, &tx).await {
                            Ok(true) => {}
                            Ok(false) => return Ok(()),
                            Err(e) => log::warn!("NetworkManager: reading its state after startup failed: {e}"),
                        }
                        continue;
                    }
                    for path in devices {
                        if let Some(ev) = refresh(&conn, &path, &mut config_paths).await {
                            if tx.send(ev.into()).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
                msg = device_signals.next() => {
                    let Some(Ok(msg)) = msg else { continue };
                    let header = msg.header();
                    let member = header.member().map(|m| m.to_string()).unwrap_or_default();
                    let Ok(path) = msg.body().deserialize::<OwnedObjectPath>() else { continue };
                    let ev = match member.as_str() {
                        "DeviceAdded" => match read_device(&conn, path.as_str()).await {
                            Ok(d) => Some(Event::NmDevice(d)),
                            Err(e) => { log::debug!("NetworkManager {}: {e}", path.as_str()); None }
                        },
                        "DeviceRemoved" => Some(Event::NmDeviceRemoved { path: path.to_string() }),
                        _ => None,
                    };
                    if let Some(ev) = ev {
                        if tx.send(ev.into()).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// Signal `member` of `interface` from NetworkManager, on every object under `namespace`.
fn nm_signal_rule(
    interface: &'static str,
    member: &'static str,
    namespace: &'static str,
) -> zbus::Result<MatchRule<'static>> {
    Ok(MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(NM_SERVICE)?
        .interface(interface)?
        .member(member)?
        .path_namespace(namespace)?
        .build())
}

/// PropertiesChanged of every NetworkManager object.
fn properties_rule() -> zbus::Result<MatchRule<'static>> {
    nm_signal_rule(
        "org.freedesktop.DBus.Properties",
        "PropertiesChanged",
        NM_PATH,
    )
}

/// `Updated` of every connection profile (`nmcli connection modify`, a keyfile reload).
fn updated_rule() -> zbus::Result<MatchRule<'static>> {
    nm_signal_rule(
        "org.freedesktop.NetworkManager.Settings.Connection",
        "Updated",
        SETTINGS_PATH,
    )
}

/// The version id of the connection applied to a device (moves on reapply); None when it
/// has none.
async fn applied_version(conn: &Connection, path: &str) -> Option<u64> {
    let d = DeviceProxy::builder(conn)
        .path(path)
        .ok()?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    d.get_applied_connection(0).await.ok().map(|(_, v)| v)
}

/// Read every device again; false when the agent is shutting down.
async fn refresh_all<T: From<Event>>(
    conn: &Connection,
    tx: &Sender<T>,
    config_paths: &mut HashMap<String, String>,
) -> bool {
    let Ok(nm) = NetworkManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
    else {
        return true;
    };
    let Ok(paths) = nm.get_devices().await else {
        return true;
    };
    for p in paths {
        if let Some(ev) = refresh(conn, p.as_str(), config_paths).await {
            if tx.send(ev.into()).await.is_err() {
                return false;
            }
        }
    }
    true
}

/// An active connection's profile, type or devices changed (its state changes come with
/// the device's own): the devices to read again.
async fn active_connection_devices(conn: &Connection, msg: &zbus::Message) -> Option<Vec<String>> {
    let header = msg.header();
    let path = header.path()?.to_string();
    let (iface, changed, _) = msg
        .body()
        .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
        .ok()?;
    if iface != ACTIVE_INTERFACE {
        return None;
    }
    if !["Id", "Uuid", "Type", "Connection", "Devices"]
        .iter()
        .any(|k| changed.contains_key(*k))
    {
        return Some(Vec::new());
    }
    let a = ActiveProxy::builder(conn)
        .path(path)
        .ok()?
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    Some(
        a.devices()
            .await
            .ok()?
            .into_iter()
            .map(|p| p.to_string())
            .collect(),
    )
}

/// DeviceAdded / DeviceRemoved (and NetworkManager's other signals on its main object).
fn devices_rule() -> zbus::Result<MatchRule<'static>> {
    Ok(MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender(NM_SERVICE)?
        .interface(NM_SERVICE)?
        .path(NM_PATH)?
        .build())
}

/// Version, startup flag and all devices. `Ok(false)` when the agent is shutting down.
async fn snapshot<T: From<Event>>(conn: &Connection, tx: &Sender<T>) -> zbus::Result<bool> {
    let nm = NetworkManagerProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await?;
    let version_text = nm.version().await.unwrap_or_default();
    let version = NmVersion::parse(&version_text);
    let startup = nm.startup().await.unwrap_or(false);
    log::info!(
        "NetworkManager {} on the bus{}",
        if version_text.is_empty() {
            "(version unknown)"
        } else {
            &version_text
        },
        if startup { ", still starting up" } else { "" }
    );
    let mut devices = Vec::new();
    for p in nm.get_devices().await? {
        match read_device(conn, p.as_str()).await {
            Ok(d) => devices.push(d),
            // A device can vanish between GetDevices and reading it.
            Err(e) => log::debug!("NetworkManager {}: {e}", p.as_str()),
        }
    }
    for ev in [
        Event::NmAppeared { version, startup },
        Event::NmDevices(devices),
    ] {
        if tx.send(ev.into()).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a PropertiesChanged of NetworkManager asks for.
#[derive(Debug, PartialEq, Eq)]
enum Changed {
    /// NetworkManager's `Startup` flag.
    Startup(bool),
    /// Read this device again.
    Device(String),
}

/// What a PropertiesChanged means, without D-Bus calls (active connections aside, see
/// [`active_connection_devices`]).
fn classify(msg: &zbus::Message, config_paths: &HashMap<String, String>) -> Option<Changed> {
    let header = msg.header();
    let path = header.path()?.to_string();
    let (iface, changed, _invalidated) = msg
        .body()
        .deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
        .ok()?;
    match iface.as_str() {
        "org.freedesktop.NetworkManager" => {
            if path != NM_PATH {
                return None;
            }
            match changed.get("Startup").map(|v| &**v) {
                Some(Value::Bool(b)) => Some(Changed::Startup(*b)),
                _ => None,
            }
        }
        DEVICE_INTERFACE => DEVICE_KEYS
            .iter()
            .any(|k| changed.contains_key(*k))
            .then_some(Changed::Device(path)),
        "org.freedesktop.NetworkManager.IP4Config"
        | "org.freedesktop.NetworkManager.IP6Config"
        | "org.freedesktop.NetworkManager.DHCP4Config" => {
            if !changed.contains_key("Gateway") && !changed.contains_key("Options") {
                return None;
            }
            Some(Changed::Device(config_paths.get(&path)?.clone()))
        }
        _ => None,
    }
}

async fn refresh(
    conn: &Connection,
    path: &str,
    config_paths: &mut HashMap<String, String>,
) -> Option<Event> {
    let started = std::time::Instant::now();
    match read_device_and_configs(conn, path).await {
        Ok((d, configs)) => {
            log::debug!(
                "NetworkManager {}: read state {} in {} us",
                d.interface,
                d.state,
                started.elapsed().as_micros()
            );
            // Remember which IP config objects belong to the device, to follow gateway changes.
            for cp in configs {
                config_paths.insert(cp, path.to_string());
            }
            Some(Event::NmDevice(d))
        }
        Err(e) => {
            log::debug!("NetworkManager {path}: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests;
