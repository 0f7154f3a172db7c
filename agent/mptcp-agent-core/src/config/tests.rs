// SPDX-License-Identifier: MIT OR Apache-2.0
//! The config's parse and validation, message by message.

use std::net::Ipv4Addr;

use super::{
    parse::{
        Kind, LIMITS_KEYS, LINK_KEYS, LOG_KEYS, METRICS_KEYS, NM_KEYS, REESTABLISH_KEYS,
        ROUTING_KEYS, SYSCTL_KEYS,
    },
    *,
};
use crate::model::{DeviceType, EndpointFlags};

const GOOD: &str = r#"
schema_version = 1

[networkmanager]
follow = true

[limits]
subflows = 4
add_addr_accepted = 2

[sysctl]
enabled = true
add_addr_timeout = 60
scheduler = "default"

[routing]
table_base = 2000
rule_priority = 900
protocol = 99

[reestablish]
initial_delay_ms = 100
max_delay_ms = 10000

[[link]]
name = "cellular"
device_types = ["modem"]
interfaces = ["wwan*"]
flags = ["subflow", "backup"]
on_carrier_loss = "backup"
ipv6 = false

[[link]]
interfaces = ["docker*", "veth*"]
manage = false

[[link]]
flags = ["subflow"]
"#;

#[test]
fn good_config_loads() {
    let cfg = load(GOOD).unwrap();
    assert_eq!(cfg.limits.subflows, Some(4));
    assert_eq!(cfg.limits.add_addr_accepted, Some(2));
    assert_eq!(cfg.sysctls.get("enabled").map(String::as_str), Some("1"));
    assert_eq!(
        cfg.sysctls.get("add_addr_timeout").map(String::as_str),
        Some("60")
    );
    assert_eq!(
        cfg.sysctls.get("scheduler").map(String::as_str),
        Some("default")
    );
    assert_eq!(
        cfg.routing,
        RoutingConfig {
            table_base: 2000,
            rule_priority: 900,
            protocol: 99
        }
    );
    assert_eq!(cfg.reestablish.initial_delay_ms, 100);
    assert_eq!(cfg.links.len(), 3);
    let cell = &cfg.links[0];
    assert_eq!(cell.name, "cellular");
    let p = cell.policy.unwrap();
    assert_eq!(p.flags, EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP));
    assert_eq!(p.on_carrier_loss, CarrierLoss::Backup);
    assert!(p.ipv4 && !p.ipv6);
    assert!(cfg.links[1].policy.is_none());
    assert_eq!(cfg.links[2].name, "link rule 3");
    assert!(cfg.links[2].matches("anything", None, true));
}

#[test]
fn rule_matching() {
    let cfg = load(GOOD).unwrap();
    let cell = &cfg.links[0];
    assert!(cell.matches("wwan0", Some(DeviceType::Modem), false));
    assert!(!cell.matches("wwan0", Some(DeviceType::Veth), false));
    // A rule that needs a type does not match an unknown type.
    assert!(!cell.matches("wwan0", None, false));
    assert!(!cell.matches("wlan0", Some(DeviceType::Modem), false));
}

fn first_issue(text: &str) -> Issue {
    load(text).unwrap_err().issues.into_iter().next().unwrap()
}

#[test]
fn syntax_error_has_position() {
    let i = first_issue("schema_version = 1\n[limits\nsubflows = 2\n");
    assert_eq!(i.line, 2, "{i}");
}

#[test]
fn unknown_key_has_position() {
    let i = first_issue("schema_version = 1\n[limits]\nsubflow = 2\n");
    assert_eq!((i.line, i.column), (3, 1), "{i}");
    assert_eq!(
        i.message,
        "unknown key `limits.subflow`; did you mean `limits.subflows`?"
    );
    let i = first_issue(
        "schema_version = 1
[limits]
zzz = 2
",
    );
    assert!(
        i.message
            .ends_with("known here: subflows, add_addr_accepted"),
        "{i}"
    );
}

#[test]
fn every_problem_in_one_run() {
    // Two misspelt keys, a type error and a range error: all four, in file order.
    let text = "schema_version = 1\n[limits]\nsubflow = 2\nadd_addr_accepted = \"two\"\n\
                [routing]\ntable_bse = 5\nprotocol = 1\n[[link]]\nflags = \"subflow\"\n";
    let e = load(text).unwrap_err();
    let got: Vec<(usize, usize)> = e.issues.iter().map(|i| (i.line, i.column)).collect();
    assert_eq!(got, [(3, 1), (4, 21), (6, 1), (7, 12), (9, 9)], "{e}");
    assert_eq!(
        e.issues[1].message,
        "limits.add_addr_accepted: expected a whole number, found the text \"two\""
    );
    assert!(
        e.issues[3].message.contains("out of range (5..=255)"),
        "{e}"
    );
    assert!(
        e.issues[4]
            .message
            .starts_with("link[1].flags: expected a list of texts in quotes"),
        "{e}"
    );
    let rendered = e.to_string();
    for word in ["i64", "u32", "invalid type", "field"] {
        assert!(!rendered.contains(word), "{word:?} in {rendered}");
    }
}

#[test]
fn types_in_words_a_user_knows() {
    let e = load(
        "schema_version = 1\n[networkmanager]\nfollow = \"yes\"\nconf_paths = [\"/a\", 3]\n\
         [sysctl]\nadd_addr_timeout = 1.5\nscheduler = 7\nlimits = 3\n",
    )
    .unwrap_err();
    let all = e.render(None);
    assert!(
        all.contains("networkmanager.follow: expected true or false, found the text \"yes\""),
        "{all}"
    );
    assert!(
        all.contains("networkmanager.conf_paths: every entry must be a text in quotes; found the whole number 3"),
        "{all}"
    );
    assert!(
        all.contains("sysctl.add_addr_timeout: expected a whole number, found the number 1.5"),
        "{all}"
    );
    assert!(
        all.contains("sysctl.scheduler: expected a text in quotes, found the whole number 7"),
        "{all}"
    );
    assert!(all.contains("unknown key `sysctl.limits`"), "{all}");
    // A section where a value belongs and the other way round.
    let e = load(
        "schema_version = 1
limits = 4
[[sysctl]]
enabled = true
",
    )
    .unwrap_err();
    let all = e.render(None);
    assert!(
        all.contains("limits: expected a section ([name]), found the whole number 4"),
        "{all}"
    );
    assert!(
        all.contains("sysctl: expected a section ([name]), found a list of sections"),
        "{all}"
    );
}

/// Over the whole schema: every key given a value of the wrong type, all in one file,
/// gives one issue per key, on its line, naming the key and what it expects in words;
/// every key misspelt gives one issue per key that suggests the right one.
#[test]
fn every_key_of_the_schema_reported_at_once() {
    let wrong = |k: Kind| match k {
        Kind::Bool | Kind::StrList => "1",
        Kind::Int => "\"1\"",
        Kind::Str => "true",
        Kind::Table | Kind::Tables => unreachable!(),
    };
    let sections: [(&str, &[(&str, Kind)]); 8] = [
        ("networkmanager", NM_KEYS),
        ("limits", LIMITS_KEYS),
        ("sysctl", SYSCTL_KEYS),
        ("routing", ROUTING_KEYS),
        ("reestablish", REESTABLISH_KEYS),
        ("log", LOG_KEYS),
        ("metrics", METRICS_KEYS),
        ("[link]", LINK_KEYS),
    ];
    let mut text = String::from("schema_version = 1\n");
    let mut misspelt = String::from("schema_version = 1\n");
    let mut expected = Vec::new();
    for (section, keys) in sections {
        text.push_str(&format!("[{section}]\n"));
        misspelt.push_str(&format!("[{section}]\n"));
        let prefix = if section == "[link]" {
            "link[1].".to_string()
        } else {
            format!("{section}.")
        };
        for (key, kind) in keys {
            text.push_str(&format!("{key} = {}\n", wrong(*kind)));
            let line = text.lines().count();
            expected.push((line, format!("{prefix}{key}: expected {}", kind.words())));
            // One letter doubled: a typo the suggestion must catch.
            let typo = format!("{}{}", &key[..1], key);
            misspelt.push_str(&format!("{typo} = 1\n"));
        }
    }
    let e = load(&text).unwrap_err();
    let got: Vec<(usize, String)> = e
        .issues
        .iter()
        .map(|i| (i.line, i.message.clone()))
        .collect();
    assert_eq!(got.len(), expected.len(), "{e}");
    for ((line, msg), (want_line, want)) in got.iter().zip(&expected) {
        assert_eq!(line, want_line, "{msg}");
        assert!(msg.starts_with(want.as_str()), "{msg} / {want}");
    }
    let e = load(&misspelt).unwrap_err();
    // The [[link]] rule now lacks its flags: validation says so too.
    let (unknown, other): (Vec<&Issue>, Vec<&Issue>) = e
        .issues
        .iter()
        .partition(|i| i.message.starts_with("unknown key"));
    assert_eq!(unknown.len(), expected.len(), "{e}");
    assert_eq!(other.len(), 1, "{e}");
    assert!(other[0].message.contains("flags is missing"), "{e}");
    for (i, (_, want)) in unknown.iter().zip(&expected) {
        let key = want.split(':').next().unwrap();
        assert!(
            i.message.ends_with(&format!("did you mean `{key}`?")),
            "{} / {key}",
            i.message
        );
    }
}

#[test]
fn scheduler_is_lower_case_as_documented() {
    for bad in [
        "BLEST",
        "Default",
        "a b",
        "",
        "sixteen_chars_xx",
        "bl\u{e9}st",
    ] {
        let text = format!("schema_version = 1\n[sysctl]\nscheduler = {bad:?}\n");
        let e = load(&text).unwrap_err();
        assert!(
            e.issues[0]
                .message
                .contains("1-15 characters of a-z, 0-9 and _"),
            "{bad}: {e}"
        );
    }
    for good in ["default", "blest", "round_robin2"] {
        let text = format!("schema_version = 1\n[sysctl]\nscheduler = {good:?}\n");
        assert!(load(&text).is_ok(), "{good}");
    }
}

#[test]
fn log_level() {
    let cfg = load("schema_version = 1\n[log]\nlevel = \"debug\"\n").unwrap();
    assert_eq!(cfg.log_level, Some(LogLevel::Debug));
    assert_eq!(load("schema_version = 1\n").unwrap().log_level, None);
    let e = load("schema_version = 1\n[log]\nlevel = \"verbose\"\n").unwrap_err();
    assert_eq!(
        e.issues[0].message,
        "log.level = \"verbose\": use one of error, warning, info, debug, trace"
    );
}

#[test]
fn metrics_section() {
    let cfg = load("schema_version = 1\n").unwrap();
    assert_eq!(cfg.metrics, MetricsConfig::default());
    assert!(!cfg.metrics.enabled);
    let cfg = load(
        "schema_version = 1\n[metrics]\nenabled = true\nfile = \"/run/x/a.prom\"\ninterval_ms = 5000\n",
    )
    .unwrap();
    assert_eq!(
        cfg.metrics,
        MetricsConfig {
            enabled: true,
            file: "/run/x/a.prom".into(),
            interval_ms: 5000
        }
    );
    for bad in ["run/a.prom", "/run/a.txt", "/run/.prom", "/run/a.prom/"] {
        let e = load(&format!("schema_version = 1\n[metrics]\nfile = {bad:?}\n")).unwrap_err();
        assert_eq!(e.issues.len(), 1, "{bad}: {e}");
        assert_eq!((e.issues[0].line, e.issues[0].column), (3, 8), "{bad}: {e}");
        assert!(e.issues[0].message.contains("*.prom"), "{bad}: {e}");
    }
    let e = load("schema_version = 1\n[metrics]\ninterval_ms = 10\n").unwrap_err();
    assert_eq!(
        e.issues[0].message,
        "metrics.interval_ms = 10 is out of range (1000..=3600000)"
    );
}

#[test]
fn wrong_type_has_position() {
    let i = first_issue("schema_version = 1\n[limits]\nsubflows = \"four\"\n");
    assert_eq!(i.line, 3, "{i}");
}

#[test]
fn schema_version_checks() {
    let i = first_issue("[limits]\nsubflows = 2\n");
    assert!(i.message.contains("schema_version is missing"), "{i}");
    let i = first_issue("schema_version = 2\n[future]\nx = 1\n");
    assert_eq!((i.line, i.column), (1, 18), "{i}");
    assert!(
        i.message.contains("schema_version = 2 is not supported"),
        "{i}"
    );
    let i = first_issue("schema_version = \"1\"\n");
    assert!(i.message.contains("not supported"), "{i}");
}

#[test]
fn range_errors_name_position_and_range() {
    let e =
        load("schema_version = 1\n[limits]\nsubflows = 9\nadd_addr_accepted = -1\n").unwrap_err();
    assert_eq!(e.issues.len(), 2, "{e}");
    assert_eq!((e.issues[0].line, e.issues[0].column), (3, 12));
    assert!(e.issues[0].message.contains("0..=8"));
    assert_eq!(e.issues[1].line, 4);
    let rendered = e.render(Some("/etc/mptcp-agent/agent.toml"));
    assert!(
        rendered.starts_with("/etc/mptcp-agent/agent.toml:3:12: limits.subflows = 9"),
        "{rendered}"
    );
}

#[test]
fn link_rule_errors() {
    let text = r#"schema_version = 1
[[link]]
interfaces = ["wl[an"]
device_types = ["toaster"]
flags = ["fullmesh", "signal", "bogus"]
on_carrier_loss = "panic"
"#;
    let e = load(text).unwrap_err();
    let msgs: Vec<String> = e.issues.iter().map(|i| i.to_string()).collect();
    let all = msgs.join("\n");
    assert!(
        all.contains("line 3, column 15: link rule 1: interface pattern \"wl[an\""),
        "{all}"
    );
    assert!(
        all.contains("line 4, column 17: link rule 1: unknown device type \"toaster\""),
        "{all}"
    );
    assert!(all.contains("unknown flag \"bogus\""), "{all}");
    assert!(
        all.contains("\"fullmesh\" together with \"signal\""),
        "{all}"
    );
    assert!(all.contains("on_carrier_loss = \"panic\""), "{all}");
}

#[test]
fn link_rule_needs_useful_flags() {
    let e = load("schema_version = 1\n[[link]]\nflags = [\"backup\"]\n").unwrap_err();
    assert!(
        e.issues[0]
            .message
            .contains("need \"subflow\", \"signal\" or \"laminar\""),
        "{e}"
    );
    let e = load("schema_version = 1\n[[link]]\ninterfaces = [\"x\"]\n").unwrap_err();
    assert!(e.issues[0].message.contains("flags is missing"), "{e}");
    let e = load("schema_version = 1\n[[link]]\nflags = [\"subflow\", \"subflow\"]\n").unwrap_err();
    assert!(e.issues[0].message.contains("given twice"), "{e}");
    let e =
        load("schema_version = 1\n[[link]]\nflags = [\"implicit\", \"subflow\"]\n").unwrap_err();
    assert!(e.issues[0].message.contains("kernel only"), "{e}");
    let e =
        load("schema_version = 1\n[[link]]\nmanage = false\nflags = [\"subflow\"]\n").unwrap_err();
    assert!(e.issues[0].message.contains("no effect"), "{e}");
    let e =
        load("schema_version = 1\n[[link]]\nflags = [\"subflow\"]\nipv4 = false\nipv6 = false\n")
            .unwrap_err();
    assert!(e.issues[0].message.contains("both false"), "{e}");
}

#[test]
fn gateways() {
    let cfg = load("schema_version = 1\n[[link]]\ninterfaces = [\"wwan0\"]\nflags = [\"subflow\"]\ngateway4 = \"10.2.0.1\"\ngateway6 = \"fe80::1\"\n").unwrap();
    let p = cfg.links[0].policy.unwrap();
    assert_eq!(p.gateway4, Some(Ipv4Addr::new(10, 2, 0, 1)));
    assert_eq!(p.gateway6, Some("fe80::1".parse().unwrap()));
    let e = load("schema_version = 1\n[[link]]\nflags = [\"subflow\"]\ngateway4 = \"fe80::1\"\ngateway6 = \"ff02::1\"\n").unwrap_err();
    assert_eq!(e.issues.len(), 2, "{e}");
    assert_eq!((e.issues[0].line, e.issues[0].column), (4, 12), "{e}");
}

#[test]
fn duplicate_rule_names() {
    let text = "schema_version = 1\n[[link]]\nname = \"a\"\nflags = [\"subflow\"]\n[[link]]\nname = \"a\"\nflags = [\"subflow\"]\n";
    let e = load(text).unwrap_err();
    assert_eq!(e.issues[0].line, 6, "{e}");
    assert!(e.issues[0].message.contains("already used by link rule 1"));
}

#[test]
fn routing_and_backoff_ranges() {
    let e = load(
        "schema_version = 1\n[routing]\ntable_base = 254\nrule_priority = 32766\nprotocol = 2\n",
    )
    .unwrap_err();
    assert_eq!(e.issues.len(), 3, "{e}");
    let e = load("schema_version = 1\n[reestablish]\ninitial_delay_ms = 500\nmax_delay_ms = 100\n")
        .unwrap_err();
    assert!(e.issues[0].message.contains("below"), "{e}");
}

#[test]
fn sysctl_ranges_and_words() {
    let e = load(
        "schema_version = 1\n[sysctl]\nadd_addr_timeout = 0\nscheduler = \"a b\"\nbogus = 1\n",
    )
    .unwrap_err();
    // The unknown key does not hide the range and pattern errors.
    assert_eq!(e.issues.len(), 3, "{e}");
    assert!(
        e.issues[2].message.contains("unknown key `sysctl.bogus`"),
        "{e}"
    );
    let e = load("schema_version = 1\n[sysctl]\nadd_addr_timeout = 0\nscheduler = \"a b\"\n")
        .unwrap_err();
    assert_eq!(e.issues.len(), 2, "{e}");
}

#[test]
fn conf_paths_absolute() {
    let e = load("schema_version = 1\n[networkmanager]\nconf_paths = [\"etc/nm\"]\n").unwrap_err();
    assert_eq!((e.issues[0].line, e.issues[0].column), (3, 15), "{e}");
}

#[test]
fn backoff_is_bounded() {
    let b = ReestablishConfig {
        initial_delay_ms: 100,
        max_delay_ms: 1000,
        max_attempts: 8,
    };
    assert_eq!(b.delay_after(0), 0);
    assert_eq!(b.delay_after(1), 100);
    assert_eq!(b.delay_after(2), 200);
    assert_eq!(b.delay_after(4), 800);
    assert_eq!(b.delay_after(5), 1000);
    assert_eq!(b.delay_after(500), 1000);
}

#[test]
fn table_for_avoids_reserved() {
    let r = RoutingConfig {
        table_base: 250,
        rule_priority: 1,
        protocol: 77,
    };
    assert_eq!(r.table_for(3), None);
    assert_eq!(r.table_for(10), Some(260));
    let r = RoutingConfig {
        table_base: u32::MAX - 1,
        rule_priority: 1,
        protocol: 77,
    };
    assert_eq!(r.table_for(5), None);
}

#[test]
fn position_counts_chars() {
    assert_eq!(position("ab\ncdé\nx", 0), (1, 1));
    assert_eq!(position("ab\ncdé\nx", 3), (2, 1));
    assert_eq!(position("ab\ncdé\nx", 8), (3, 1));
    assert_eq!(position("é", 1), (1, 1));
}
