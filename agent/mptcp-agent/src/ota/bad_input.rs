// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bad input: well over a thousand malformed, truncated, hostile and oversized config files,
//! generated from the shipped default and the examples with a fixed-seed PRNG. Each goes
//! through the same path as `check-config` and a reload (open, fstat checks, UTF-8, parse,
//! validate) and must be rejected with a message that says where, without a panic.

use std::{
    os::unix::fs::PermissionsExt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use mptcp_lab::support::Rng;

use super::*;
use crate::config_file::LoadError;

const SEEDS: [(&str, &str); 4] = [
    ("agent.toml", BUILT_IN),
    (
        "dual-wan.toml",
        include_str!("../../../../conf/examples/dual-wan.toml"),
    ),
    (
        "wifi-plus-cellular.toml",
        include_str!("../../../../conf/examples/wifi-plus-cellular.toml"),
    ),
    (
        "lte-backup.toml",
        include_str!("../../../../conf/examples/lte-backup.toml"),
    ),
];

/// One line of a seed, with the table it is in.
#[derive(Debug, Clone)]
struct Line {
    table: String,
    text: String,
}

fn lines_of(seed: &str) -> Vec<Line> {
    let mut table = String::new();
    seed.lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('[') && !t.starts_with("[[") {
                table = t.trim_matches(|c| c == '[' || c == ']').to_string();
            } else if t.starts_with("[[") {
                table = "link".to_string();
            }
            Line {
                table: table.clone(),
                text: l.to_string(),
            }
        })
        .collect()
}

fn join(lines: &[Line]) -> String {
    let mut s: String = lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    s.push('\n');
    s
}

/// `key = value` lines (not comments, not headers), by index.
fn assignments(lines: &[Line]) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.text.trim_start();
            !t.starts_with('#') && !t.starts_with('[') && t.contains('=')
        })
        .map(|(i, _)| i)
        .collect()
}

fn key_of(line: &str) -> String {
    line.split('=').next().unwrap_or("").trim().to_string()
}

/// Set `table.key = value` in a seed: replace the line if the key is there, else add it
/// under the table's header (or a new header at the end). `table` "" = top level.
fn set(seed: &str, table: &str, key: &str, value: &str) -> String {
    let mut lines = lines_of(seed);
    let new = format!("{key} = {value}");
    if let Some(i) = assignments(&lines)
        .into_iter()
        .find(|&i| lines[i].table == table && key_of(&lines[i].text) == key)
    {
        lines[i].text = new;
        return join(&lines);
    }
    if table.is_empty() {
        // Top-level keys go before the first header.
        let at = lines
            .iter()
            .position(|l| l.text.trim_start().starts_with('['))
            .unwrap_or(lines.len());
        lines.insert(
            at,
            Line {
                table: String::new(),
                text: new,
            },
        );
        return join(&lines);
    }
    if table != "link" {
        if let Some(h) = lines
            .iter()
            .position(|l| l.text.trim() == format!("[{table}]"))
        {
            lines.insert(
                h + 1,
                Line {
                    table: table.into(),
                    text: new,
                },
            );
            return join(&lines);
        }
    }
    let mut s = join(&lines);
    if table == "link" {
        s.push_str(&format!("[[link]]\nflags = [\"subflow\"]\n{new}\n"));
    } else {
        s.push_str(&format!("[{table}]\n{new}\n"));
    }
    s
}

// ---------------------------------------------------------------------------------------
// Generators: each returns the bytes of a config that must be rejected.

const WRONG_FOR_BOOL: [&str; 7] = [
    "1",
    "\"true\"",
    "[true]",
    "{ v = true }",
    "1.5",
    "1979-05-27T07:32:00Z",
    "\"\"",
];
const WRONG_FOR_INT: [&str; 8] = [
    "\"4\"",
    "true",
    "4.0",
    "[4]",
    "{ v = 4 }",
    "1979-05-27",
    "nan",
    "inf",
];
const WRONG_FOR_STR: [&str; 6] = ["1", "true", "[\"x\"]", "{ a = 1 }", "2.5", "07:32:00"];
const WRONG_FOR_LIST: [&str; 7] = [
    "\"subflow\"",
    "[1, 2]",
    "[true]",
    "[[\"a\"]]",
    "{ x = 1 }",
    "7",
    "[\"a\", 1]",
];

fn type_change(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut lines = lines_of(seed);
    let idx = assignments(&lines);
    let i = rng.pick(&idx);
    let (key, value) = lines[i].text.split_once('=').unwrap();
    let v = value.trim();
    let wrong = if v == "true" || v == "false" {
        rng.pick(&WRONG_FOR_BOOL)
    } else if v.starts_with('[') {
        rng.pick(&WRONG_FOR_LIST)
    } else if v.starts_with('"') {
        rng.pick(&WRONG_FOR_STR)
    } else {
        rng.pick(&WRONG_FOR_INT)
    };
    lines[i].text = format!("{}= {wrong}", key);
    join(&lines).into_bytes()
}

/// (table, key, values outside its range or type).
const OUT_OF_RANGE: [(&str, &str, &[&str]); 14] = [
    (
        "",
        "schema_version",
        &["0", "2", "-1", "9223372036854775807", "1_000"],
    ),
    (
        "limits",
        "subflows",
        &["9", "-1", "256", "4294967296", "-9223372036854775808"],
    ),
    ("limits", "add_addr_accepted", &["9", "-1", "1000000"]),
    (
        "sysctl",
        "add_addr_timeout",
        &["0", "86401", "-5", "9223372036854775807"],
    ),
    ("sysctl", "stale_loss_cnt", &["0", "1001", "-1"]),
    ("sysctl", "close_timeout", &["0", "86401"]),
    ("sysctl", "blackhole_timeout", &["-1", "86401"]),
    ("sysctl", "syn_retrans_before_tcp_fallback", &["-1", "256"]),
    (
        "routing",
        "table_base",
        &["0", "255", "254", "1879048193", "-1"],
    ),
    ("routing", "rule_priority", &["0", "32766", "32767", "-1"]),
    ("routing", "protocol", &["0", "4", "256", "-77"]),
    (
        "reestablish",
        "initial_delay_ms",
        &["9", "600001", "0", "-250"],
    ),
    ("reestablish", "max_delay_ms", &["9", "3600001", "-1"]),
    // Integers too large for TOML itself: a syntax error, also with a position.
    (
        "limits",
        "subflows",
        &["99999999999999999999", "0x1_0000_0000_0000_0000", "1e999"],
    ),
];

fn out_of_range(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let (table, key, values) = rng.pick(&OUT_OF_RANGE);
    let mut text = set(seed, table, key, rng.pick(values));
    if key == "max_delay_ms" && rng.below(2) == 0 {
        // In range on its own, but below initial_delay_ms.
        text = set(
            &set(seed, "reestablish", "initial_delay_ms", "5000"),
            "reestablish",
            "max_delay_ms",
            "4999",
        );
    }
    text.into_bytes()
}

const UNKNOWN_KEYS: [&str; 14] = [
    "subflow",
    "interface",
    "flag",
    "device_type",
    "schema",
    "limit",
    "enable",
    "on_carrier",
    "ipv_4",
    "table",
    "priority",
    "Subflows",
    "follow_nm",
    "max_subflows",
];

fn unknown_key(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let tables = [
        "",
        "networkmanager",
        "limits",
        "sysctl",
        "routing",
        "reestablish",
        "link",
    ];
    match rng.below(4) {
        0 => format!(
            "{seed}\n[{}]\nx = 1\n",
            rng.pick(&["frobnicate", "limit", "sysctls", "links.extra", "Link"])
        )
        .into_bytes(),
        1 => set(
            seed,
            rng.pick(&tables),
            &format!("unknown_{}", rng.below(1000)),
            "1",
        )
        .into_bytes(),
        _ => set(
            seed,
            rng.pick(&tables),
            rng.pick(&UNKNOWN_KEYS),
            rng.pick(&["1", "true", "\"x\"", "[]"]),
        )
        .into_bytes(),
    }
}

const BAD_GLOBS: [&str; 14] = [
    "wl[an",
    "[]",
    "[!]",
    "[z-a]",
    "",
    "eth 0",
    "eth/0",
    "x:y",
    "\\t",
    "[a-",
    "[!",
    "wlan[0-9",
    "tab\\there",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
];

fn bad_glob(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let bad = rng.pick(&BAD_GLOBS);
    let good = rng.pick(&["wlan*", "eth0", "wwan[0-9]", "en?"]);
    let list = if rng.below(2) == 0 {
        format!("[\"{good}\", \"{bad}\"]")
    } else {
        format!("[\"{bad}\"]")
    };
    let mut lines = lines_of(seed);
    let idx: Vec<usize> = assignments(&lines)
        .into_iter()
        .filter(|&i| key_of(&lines[i].text) == "interfaces")
        .collect();
    if idx.is_empty() || rng.below(4) == 0 {
        return format!("{seed}\n[[link]]\ninterfaces = {list}\nflags = [\"subflow\"]\n")
            .into_bytes();
    }
    let i = rng.pick(&idx);
    lines[i].text = format!("interfaces = {list}");
    join(&lines).into_bytes()
}

const BAD_RULES: [&str; 20] = [
    "device_types = [\"toaster\"]\nflags = [\"subflow\"]",
    "device_types = []\nflags = [\"subflow\"]",
    "interfaces = []\nflags = [\"subflow\"]",
    "flags = [\"bogus\"]",
    "flags = [\"implicit\", \"subflow\"]",
    "flags = [\"subflow\", \"subflow\"]",
    "flags = [\"fullmesh\", \"signal\"]",
    "flags = [\"fullmesh\"]",
    "flags = [\"backup\"]",
    "flags = []",
    "interfaces = [\"x*\"]",
    "flags = [\"subflow\"]\non_carrier_loss = \"panic\"",
    "flags = [\"subflow\"]\non_carrier_loss = \"\"",
    "flags = [\"subflow\"]\nipv4 = false\nipv6 = false",
    "manage = false\nflags = [\"subflow\"]",
    "manage = false\non_carrier_loss = \"backup\"",
    "name = \"\"\nflags = [\"subflow\"]",
    "name = \"   \"\nflags = [\"subflow\"]",
    "name = \"0123456789012345678901234567890123456789012345678901234567890123456789\"\nflags = [\"subflow\"]",
    "flags = [\"SUBFLOW\"]",
];

const BAD_SETTINGS: [(&str, &str, &str); 8] = [
    ("sysctl", "scheduler", "\"a b\""),
    ("sysctl", "scheduler", "\"\""),
    ("sysctl", "scheduler", "\"../../../etc/passwd\""),
    ("sysctl", "scheduler", "\"averyveryverylongschedulername\""),
    ("networkmanager", "conf_paths", "[\"etc/NetworkManager\"]"),
    ("networkmanager", "conf_paths", "[\"\"]"),
    ("sysctl", "enabled", "\"yes\""),
    ("networkmanager", "follow", "\"false\""),
];

fn bad_values(rng: &mut Rng, seed: &str) -> Vec<u8> {
    if rng.below(3) == 0 {
        let (t, k, v) = rng.pick(&BAD_SETTINGS);
        return set(seed, t, k, v).into_bytes();
    }
    let rule = rng.pick(&BAD_RULES);
    // Put the bad rule first or last; a duplicate name is also an error.
    if rng.below(5) == 0 {
        let name = seed
            .lines()
            .find(|l| l.trim_start().starts_with("name = "))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "name = \"dup\"".to_string());
        return format!("{seed}\n[[link]]\n{name}\nflags = [\"subflow\"]\n[[link]]\n{name}\nflags = [\"subflow\"]\n").into_bytes();
    }
    if rng.below(2) == 0 {
        format!("{seed}\n[[link]]\n{rule}\n").into_bytes()
    } else {
        let lines = lines_of(seed);
        let first = lines
            .iter()
            .position(|l| l.text.trim() == "[[link]]")
            .unwrap_or(lines.len());
        let mut out = join(&lines[..first]);
        out.push_str(&format!("[[link]]\n{rule}\n"));
        out.push_str(&join(&lines[first..]));
        out.into_bytes()
    }
}

/// Cut a `key = value` or header line where the rest can only be a syntax error: inside
/// the key, right after `=`, inside a string, or inside a header.
fn truncation(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let lines = lines_of(seed);
    let candidates: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.text.trim_start();
            !t.is_empty() && !t.starts_with('#') && (t.starts_with('[') || t.contains('='))
        })
        .map(|(i, _)| i)
        .collect();
    let i = rng.pick(&candidates);
    let line = &lines[i].text;
    let cut = if line.trim_start().starts_with('[') {
        // "[[li", "[limi": before the closing bracket.
        let close = line.find(']').unwrap_or(line.len());
        1 + rng.below(close.max(2) - 1)
    } else {
        let eq = line.find('=').unwrap();
        match rng.below(3) {
            0 => 1 + rng.below(eq.max(1)),
            1 => eq + 1,
            _ => match line[eq..].find('"') {
                Some(q) => eq + q + 1 + rng.below(line[eq + q + 1..].find('"').unwrap_or(0).max(1)),
                None => eq + 1,
            },
        }
    };
    let cut = cut.min(line.len());
    let mut out = join(&lines[..i]);
    out.push_str(&line[..cut]);
    if rng.below(2) == 0 {
        // Truncated mid-file: whatever followed is lost too; or the file ends there.
        out.push('\n');
    }
    out.into_bytes()
}

fn nul_bytes(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    let n = 1 + rng.below(3);
    for _ in 0..n {
        let at = rng.below(b.len());
        // Keep UTF-8 intact so the parser, not the decoder, has to find it.
        let at = (0..=at)
            .rev()
            .find(|&j| seed.is_char_boundary(j))
            .unwrap_or(0);
        b.insert(at, 0);
    }
    b
}

const BAD_UTF8: [&[u8]; 8] = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xc0\xaf",
    b"\x80",
];

fn invalid_utf8(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut b = seed.as_bytes().to_vec();
    let at = rng.below(b.len());
    let at = (0..=at)
        .rev()
        .find(|&j| seed.is_char_boundary(j))
        .unwrap_or(0);
    let bad = rng.pick(&BAD_UTF8);
    b.splice(at..at, bad.iter().copied());
    b
}

fn deep_nesting(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let depth = 50 + rng.below(20_000);
    let value = match rng.below(4) {
        0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}1{}", "{ a = ".repeat(depth), " }".repeat(depth)),
        2 => format!("{}{}", "[".repeat(depth), "]".repeat(depth / 2)),
        _ => {
            let key = vec!["a"; depth.min(5_000)].join(".");
            return format!("{seed}\n[limits]\n{key} = 1\n").into_bytes();
        }
    };
    let (table, key) = rng.pick(&[
        ("limits", "subflows"),
        ("", "schema_version"),
        ("link", "flags"),
        ("sysctl", "nested"),
    ]);
    set(seed, table, key, &value).into_bytes()
}

fn oversized(rng: &mut Rng, seed: &str) -> Vec<u8> {
    match rng.below(5) {
        // Over the 1 MiB limit: refused unread.
        0 => {
            let mut s = seed.to_string();
            while s.len() <= 1 << 20 {
                s.push_str("# padding padding padding padding padding padding padding padding\n");
            }
            s.into_bytes()
        }
        // Under the limit, hostile values: a 600 kB name and pattern.
        1 => format!(
            "{seed}\n[[link]]\nname = \"{}\"\nflags = [\"subflow\"]\n",
            "n".repeat(600_000)
        )
        .into_bytes(),
        2 => format!(
            "{seed}\n[[link]]\ninterfaces = [\"{}\"]\nflags = [\"subflow\"]\n",
            "i".repeat(600_000)
        )
        .into_bytes(),
        // Thousands of rules that all share a name.
        3 => {
            let mut s = seed.to_string();
            for _ in 0..(1000 + rng.below(4000)) {
                s.push_str("[[link]]\nname = \"same\"\nflags = [\"subflow\"]\n");
            }
            s.into_bytes()
        }
        // A list of 100k patterns, one of them bad.
        _ => {
            let mut list: Vec<String> = (0..100_000).map(|i| format!("\"e{i}\"")).collect();
            let n = list.len();
            list[rng.below(n)] = "\"bad one\"".into();
            format!(
                "{seed}\n[[link]]\ninterfaces = [{}]\nflags = [\"subflow\"]\n",
                list.join(",")
            )
            .into_bytes()
        }
    }
}

const HOSTILE: [&str; 24] = [
    "",
    "\n\n\n",
    "[limits]\nsubflows = 2\n",
    "schema_version = \"1\"\n",
    "schema_version = 1.0\n",
    "schema_version = 1\nschema_version = 1\n",
    "schema_version = 1\n[limits]\n[limits]\n",
    "schema_version = 1\n[link]\nflags = [\"subflow\"]\n",
    "schema_version = 1\nlink = 5\n",
    "schema_version = 1\n[[link]]\nflags = [\"subflow\"]\n[link]\n",
    "schema_version = 1\nname = \"\"\"\nunterminated\n",
    "schema_version = 1\n[[link]]\nname = 'unterminated\nflags = [\"subflow\"]\n",
    "schema_version = 1\n[[link]]\nflags = [\"subflow\",\n",
    "schema_version = 1\n[[link]]\nflags = [\"subflow\"]]\n",
    "schema_version = 1\n[limits]\nsubflows = 2 3\n",
    "schema_version = 1\n[limits] x\n",
    "schema_version = 1\n= 4\n",
    "schema_version = 1\n[limits]\nsubflows == 2\n",
    "schema_version = 1\n[[link]]\nname = \"\\q\"\nflags = [\"subflow\"]\n",
    "schema_version = 1\n[[link]]\nname = \"\\uD800\"\nflags = [\"subflow\"]\n",
    "schema_version = 1\r[limits]\rsubflows = 2\r",
    "<?xml version=\"1.0\"?><config/>",
    "{\"schema_version\": 1}",
    "schema_version: 1\nlimits:\n  subflows: 2\n",
];

fn hostile(rng: &mut Rng, _seed: &str) -> Vec<u8> {
    rng.pick(&HOSTILE).as_bytes().to_vec()
}

type Generator = fn(&mut Rng, &str) -> Vec<u8>;

const GENERATORS: [(&str, Generator, usize); 11] = [
    ("type change", type_change, 200),
    ("out of range", out_of_range, 150),
    ("unknown key", unknown_key, 120),
    ("bad glob", bad_glob, 100),
    ("bad value", bad_values, 150),
    ("truncated", truncation, 150),
    ("NUL byte", nul_bytes, 80),
    ("invalid UTF-8", invalid_utf8, 80),
    ("deep nesting", deep_nesting, 40),
    ("oversized", oversized, 20),
    ("hostile", hostile, 60),
];

/// Longest line a rejection may print: hostile values must not flood an OTA hook's log.
const MAX_LINE: usize = 400;

fn check_rejection(path: &Path, bytes: &[u8]) -> Result<String, String> {
    let shown = path.display().to_string();
    let e = match catch_unwind(AssertUnwindSafe(|| load(path))) {
        Err(_) => return Err("PANIC".into()),
        Ok(Ok(l)) => return Err(format!("accepted ({} link rules)", l.config.links.len())),
        Ok(Err(e)) => e,
    };
    let text = e.to_string();
    if text.trim().is_empty() {
        return Err("empty message".into());
    }
    if let Some(l) = text.lines().find(|l| l.chars().count() > MAX_LINE) {
        return Err(format!(
            "message line of {} characters: {}…",
            l.chars().count(),
            &l[..80]
        ));
    }
    let n_lines = bytes
        .split(|b| *b == b'\n')
        .count()
        .max(bytes.split(|b| *b == b'\r').count());
    match &e {
        LoadError::Invalid { error, .. } => {
            if error.issues.is_empty() {
                return Err("invalid without issues".into());
            }
            for i in &error.issues {
                if i.line == 0 || i.column == 0 || i.line > n_lines + 1 {
                    return Err(format!(
                        "implausible position {}:{} ({} lines): {text}",
                        i.line, i.column, n_lines
                    ));
                }
            }
            if let Some(i) = error.issues.iter().find(|i| i.message.trim().is_empty()) {
                return Err(format!(
                    "issue at {}:{} without a message",
                    i.line, i.column
                ));
            }
            if text.lines().count() > 21 {
                return Err(format!("{} message lines", text.lines().count()));
            }
            let first = text.lines().next().unwrap_or("");
            let prefix = format!("{shown}:");
            let pos_ok = first
                .strip_prefix(&prefix)
                .and_then(|r| r.split_once(": "))
                .is_some_and(|(pos, _)| {
                    let mut p = pos.split(':');
                    p.next().is_some_and(|l| l.parse::<usize>().is_ok())
                        && p.next().is_some_and(|c| c.parse::<usize>().is_ok())
                        && p.next().is_none()
                });
            if !pos_ok {
                return Err(format!("no FILE:LINE:COLUMN: prefix: {first}"));
            }
            if e.exit_code() != 1 {
                return Err(format!("exit code {}", e.exit_code()));
            }
        }
        LoadError::Unreadable(m) => {
            let utf8 = m.contains("not UTF-8");
            let size = m.contains("at most");
            if !(utf8 || size) || !m.starts_with(&shown) || e.exit_code() != 3 {
                return Err(format!("unexpected unreadable: {m}"));
            }
            if utf8 && !m.starts_with(&format!("{shown}:")) {
                return Err(format!("UTF-8 error without position: {m}"));
            }
        }
        LoadError::Unsafe(m) => return Err(format!("unexpected unsafe: {m}")),
    }
    Ok(text)
}

#[test]
fn over_a_thousand_bad_configs_are_rejected_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let mut rng = Rng::new(0x6d70_7463_705f_6f74);
    let mut total = 0;
    let mut failures = Vec::new();
    let mut examples = Vec::new();
    for (kind, generate, count) in GENERATORS {
        for n in 0..count {
            let (seed_name, seed) = rng.pick(&SEEDS);
            let bytes = generate(&mut rng, seed);
            std::fs::write(&path, &bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            total += 1;
            match check_rejection(&path, &bytes) {
                Ok(msg) => {
                    if n == 0 {
                        examples.push(format!("{kind}: {}", msg.lines().next().unwrap_or("")));
                    }
                }
                Err(why) => {
                    let snippet: String =
                        String::from_utf8_lossy(&bytes).chars().take(300).collect();
                    failures.push(format!(
                        "{kind} #{n} (from {seed_name}): {why}\n--- input (start):\n{snippet}\n---"
                    ));
                }
            }
        }
    }
    eprintln!(
        "{total} bad configs rejected; one message per kind:\n  {}",
        examples.join("\n  ")
    );
    assert!(total >= 1000, "{total}");
    assert!(
        failures.is_empty(),
        "{} of {total} bad configs not handled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn mutation_helpers_keep_seeds_valid() {
    // The editing helpers themselves must not break a config: setting a valid value
    // keeps every seed valid, so rejections above come from the mutation.
    for (name, seed) in SEEDS {
        for (t, k, v) in [
            ("limits", "subflows", "3"),
            ("", "schema_version", "1"),
            ("routing", "protocol", "99"),
        ] {
            let text = set(seed, t, k, v);
            assert!(
                mptcp_agent_core::config::load(&text).is_ok(),
                "{name} with {t}.{k} = {v}:\n{text}"
            );
        }
    }
}
