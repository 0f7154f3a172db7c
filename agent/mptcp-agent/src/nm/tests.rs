// SPDX-License-Identifier: MIT OR Apache-2.0
use super::*;

/// A PropertiesChanged of NetworkManager's `path`, as it sends them.
fn changed(path: &str, iface: &str, props: &[(&str, Value<'_>)]) -> zbus::Message {
    let map: HashMap<&str, Value<'_>> = props
        .iter()
        .map(|(k, v)| (*k, v.try_clone().unwrap()))
        .collect();
    zbus::Message::signal(path, "org.freedesktop.DBus.Properties", "PropertiesChanged")
        .unwrap()
        .build(&(iface, map, Vec::<&str>::new()))
        .unwrap()
}

/// What each signal asks the watcher to read, without a D-Bus call: the burst of one
/// activation names the same device again and again, and it is read once.
#[test]
fn signals_say_which_device_to_read() {
    let dev = "/org/freedesktop/NetworkManager/Devices/3";
    let configs = HashMap::from([(
        "/org/freedesktop/NetworkManager/IP4Config/7".to_string(),
        dev.to_string(),
    )]);
    for (key, value) in [("State", 70u32), ("InterfaceFlags", 3)] {
        let msg = changed(dev, DEVICE_INTERFACE, &[(key, Value::U32(value))]);
        assert_eq!(
            classify(&msg, &configs),
            Some(Changed::Device(dev.to_string())),
            "{key}"
        );
    }
    let other = changed(dev, DEVICE_INTERFACE, &[("Ip4Connectivity", Value::U32(4))]);
    assert_eq!(classify(&other, &configs), None);
    let gateway = changed(
        "/org/freedesktop/NetworkManager/IP4Config/7",
        "org.freedesktop.NetworkManager.IP4Config",
        &[("Gateway", Value::from("10.2.0.1"))],
    );
    assert_eq!(
        classify(&gateway, &configs),
        Some(Changed::Device(dev.to_string()))
    );
    let unknown = changed(
        "/org/freedesktop/NetworkManager/IP4Config/8",
        "org.freedesktop.NetworkManager.IP4Config",
        &[("Gateway", Value::from("10.2.0.1"))],
    );
    assert_eq!(classify(&unknown, &configs), None);
    let startup = changed(NM_PATH, NM_SERVICE, &[("Startup", Value::Bool(false))]);
    assert_eq!(classify(&startup, &configs), Some(Changed::Startup(false)));
}

#[test]
fn applied_profile_reads_id_and_flags() {
    let mut conn = HashMap::new();
    conn.insert(
        "id".to_string(),
        OwnedValue::try_from(Value::from("uplink-wwan0")).unwrap(),
    );
    conn.insert("mptcp-flags".to_string(), OwnedValue::from(0x1u32));
    let mut s = HashMap::new();
    s.insert("connection".to_string(), conn);
    assert_eq!(
        applied_profile(&s),
        AppliedProfile {
            id: "uplink-wwan0".into(),
            mptcp_flags: 1
        }
    );
    // NetworkManager before 1.40 has no mptcp-flags key.
    s.get_mut("connection").unwrap().remove("mptcp-flags");
    assert_eq!(applied_profile(&s).mptcp_flags, 0);
}

#[test]
fn dhcp_router_is_the_first_of_option_3() {
    let mut o = HashMap::new();
    o.insert(
        "routers".to_string(),
        OwnedValue::try_from(Value::from("10.2.0.1 10.2.0.254")).unwrap(),
    );
    assert_eq!(dhcp_router(&o), Some(std::net::Ipv4Addr::new(10, 2, 0, 1)));
    o.clear();
    assert_eq!(dhcp_router(&o), None);
}

#[test]
fn conf_files_in_load_order_with_shadowing() {
    let dir = tempfile::tempdir().unwrap();
    let usr = dir.path().join("usr");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&usr).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(usr.join("10-a.conf"), "a").unwrap();
    std::fs::write(usr.join("20-b.conf"), "b-usr").unwrap();
    std::fs::write(usr.join("README"), "not a conf").unwrap();
    std::fs::write(etc.join("20-b.conf"), "b-etc").unwrap();
    let main = dir.path().join("NetworkManager.conf");
    std::fs::write(&main, "main").unwrap();
    let paths = vec![
        usr.to_string_lossy().into_owned(),
        main.to_string_lossy().into_owned(),
        etc.to_string_lossy().into_owned(),
        "/nonexistent/conf.d".to_string(),
    ];
    let texts: Vec<String> = read_conf_files(&paths)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts, vec!["a", "main", "b-etc"]);
}
