// SPDX-License-Identifier: MIT OR Apache-2.0
//! Bad input: well over a thousand malformed, truncated, hostile and oversized config files,
//! edits of the shipped default and the examples drawn by proptest strategies from a fixed
//! seed. Each goes through the same path as `check-config` and a reload (open, fstat
//! checks, UTF-8, parse, validate) and must be rejected with a message that says where,
//! without a panic. A failure is shrunk: it reports the smallest edit that still fails.

use std::{
    cell::{Cell, RefCell},
    fmt,
    os::unix::fs::PermissionsExt,
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use proptest::{
    collection::vec,
    option,
    prelude::*,
    sample::{select, Index, Select},
    test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner},
};

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
// Inputs: the values that edits of the seeds put in, or whole files.

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

const TABLES: [&str; 7] = [
    "",
    "networkmanager",
    "limits",
    "sysctl",
    "routing",
    "reestablish",
    "link",
];
const UNKNOWN_TABLES: [&str; 5] = ["frobnicate", "limit", "sysctls", "links.extra", "Link"];
const ANY_VALUE: [&str; 4] = ["1", "true", "\"x\"", "[]"];
const GOOD_GLOBS: [&str; 4] = ["wlan*", "eth0", "wwan[0-9]", "en?"];
const NESTED_AT: [(&str, &str); 4] = [
    ("limits", "subflows"),
    ("", "schema_version"),
    ("link", "flags"),
    ("sysctl", "nested"),
];

// ---------------------------------------------------------------------------------------
// What is done to a seed. Every field shrinks (indices and counts toward 0, choices toward
// the first, options toward none), so a failure is reported as the smallest edit that
// still fails. Positions in a seed are `Index`es, scaled to what the seed has.

/// A seed by its place in [`SEEDS`], shown by name.
#[derive(Clone, Copy)]
struct Seed(usize);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SEEDS[self.0].0)
    }
}

#[derive(Debug, Clone)]
struct Bad {
    /// Drawn for every class; `Hostile` does not use it.
    seed: Seed,
    edit: Edit,
}

#[derive(Debug, Clone)]
enum Edit {
    /// The value of one `key = value` line replaced by one of another type.
    TypeChange {
        line: Index,
        wrong: Index,
    },
    /// `table.key = value`, in place of the key's line or added (see [`set`]).
    Set {
        table: &'static str,
        key: String,
        value: &'static str,
    },
    /// `reestablish.max_delay_ms` below `initial_delay_ms`, each in range on its own.
    MaxBelowInitial,
    /// A table the schema does not have, appended with one key.
    UnknownTable(&'static str),
    /// A bad interface pattern (after a good one, or alone), in place of an `interfaces`
    /// line or, with no line or none in the seed, in a rule of its own at the end.
    Glob {
        bad: &'static str,
        good: Option<&'static str>,
        line: Option<Index>,
    },
    /// Two more rules with the seed's first rule name (or a new one, twice).
    DuplicateName,
    /// A bad rule before the seed's rules or after them.
    Rule {
        rule: &'static str,
        first: bool,
    },
    /// A key, header or string cut where the rest can only be a syntax error.
    Truncate {
        line: Index,
        at: Cut,
        pos: Index,
        newline: bool,
    },
    /// NUL bytes inserted, each at a character boundary.
    Nul(Vec<Index>),
    /// An invalid UTF-8 sequence inserted at a character boundary.
    Utf8 {
        at: Index,
        bad: &'static [u8],
    },
    /// A value nested `depth` deep as `table.key`.
    Nested {
        shape: Shape,
        depth: usize,
        at: (&'static str, &'static str),
    },
    /// A dotted key `depth` parts long.
    DottedKey(usize),
    Oversized(Big),
    /// A whole file, not from a seed.
    Hostile(&'static str),
}

/// Where a `key = value` line is cut (a header is always cut before its `]`).
#[derive(Debug, Clone, Copy)]
enum Cut {
    InKey,
    AfterEquals,
    InString,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Arrays,
    InlineTables,
    /// Arrays with half their brackets closed.
    Unclosed,
}

#[derive(Debug, Clone)]
enum Big {
    /// Over the 1 MiB limit: refused unread.
    Padded,
    /// Under the limit, hostile values: a 600 kB name and pattern.
    LongName,
    LongPattern,
    /// Thousands of rules that all share a name.
    SameName(usize),
    /// A list of 100k patterns, one of them bad.
    ManyPatterns(Index),
}

/// One of `items`, shrinking toward the first.
fn one_of<T: Clone + fmt::Debug + 'static>(items: &'static [T]) -> Select<T> {
    select(items)
}

// Strategies: one per class of bad input.

fn type_change() -> BoxedStrategy<Edit> {
    (any::<Index>(), any::<Index>())
        .prop_map(|(line, wrong)| Edit::TypeChange { line, wrong })
        .boxed()
}

fn out_of_range() -> BoxedStrategy<Edit> {
    prop_oneof![
        27 => (one_of(&OUT_OF_RANGE), any::<Index>()).prop_map(|((table, key, values), v)| {
            Edit::Set {
                table,
                key: key.into(),
                value: values[v.index(values.len())],
            }
        }),
        1 => Just(Edit::MaxBelowInitial),
    ]
    .boxed()
}

fn unknown_key() -> BoxedStrategy<Edit> {
    prop_oneof![
        1 => one_of(&UNKNOWN_TABLES).prop_map(Edit::UnknownTable),
        1 => (one_of(&TABLES), 0..1000u32).prop_map(|(table, n)| Edit::Set {
            table,
            key: format!("unknown_{n}"),
            value: "1",
        }),
        2 => (one_of(&TABLES), one_of(&UNKNOWN_KEYS), one_of(&ANY_VALUE)).prop_map(
            |(table, key, value)| Edit::Set {
                table,
                key: key.into(),
                value,
            }
        ),
    ]
    .boxed()
}

fn bad_glob() -> BoxedStrategy<Edit> {
    (
        one_of(&BAD_GLOBS),
        option::of(one_of(&GOOD_GLOBS)),
        option::weighted(0.75, any::<Index>()),
    )
        .prop_map(|(bad, good, line)| Edit::Glob { bad, good, line })
        .boxed()
}

fn bad_value() -> BoxedStrategy<Edit> {
    prop_oneof![
        5 => one_of(&BAD_SETTINGS).prop_map(|(table, key, value)| Edit::Set {
            table,
            key: key.into(),
            value,
        }),
        2 => Just(Edit::DuplicateName),
        8 => (one_of(&BAD_RULES), any::<bool>()).prop_map(|(rule, first)| Edit::Rule { rule, first }),
    ]
    .boxed()
}

fn truncation() -> BoxedStrategy<Edit> {
    (
        any::<Index>(),
        one_of(&[Cut::InKey, Cut::AfterEquals, Cut::InString]),
        any::<Index>(),
        any::<bool>(),
    )
        .prop_map(|(line, at, pos, newline)| Edit::Truncate {
            line,
            at,
            pos,
            newline,
        })
        .boxed()
}

fn nul_bytes() -> BoxedStrategy<Edit> {
    vec(any::<Index>(), 1..=3).prop_map(Edit::Nul).boxed()
}

fn invalid_utf8() -> BoxedStrategy<Edit> {
    (any::<Index>(), one_of(&BAD_UTF8))
        .prop_map(|(at, bad)| Edit::Utf8 { at, bad })
        .boxed()
}

fn deep_nesting() -> BoxedStrategy<Edit> {
    prop_oneof![
        3 => (
            one_of(&[Shape::Arrays, Shape::InlineTables, Shape::Unclosed]),
            50..20_050usize,
            one_of(&NESTED_AT),
        )
            .prop_map(|(shape, depth, at)| Edit::Nested { shape, depth, at }),
        1 => (50..5_000usize).prop_map(Edit::DottedKey),
    ]
    .boxed()
}

fn oversized() -> BoxedStrategy<Edit> {
    prop_oneof![
        Just(Big::Padded),
        Just(Big::LongName),
        Just(Big::LongPattern),
        (1000..5000usize).prop_map(Big::SameName),
        any::<Index>().prop_map(Big::ManyPatterns),
    ]
    .prop_map(Edit::Oversized)
    .boxed()
}

fn hostile() -> BoxedStrategy<Edit> {
    one_of(&HOSTILE).prop_map(Edit::Hostile).boxed()
}

/// A class of bad input, its strategy, and how many cases to check.
type Class = (&'static str, fn() -> BoxedStrategy<Edit>, u32);

const CLASSES: [Class; 11] = [
    ("type change", type_change, 200),
    ("out of range", out_of_range, 150),
    ("unknown key", unknown_key, 120),
    ("bad glob", bad_glob, 100),
    ("bad value", bad_value, 150),
    ("truncated", truncation, 150),
    ("NUL byte", nul_bytes, 80),
    ("invalid UTF-8", invalid_utf8, 80),
    ("deep nesting", deep_nesting, 40),
    ("oversized", oversized, 20),
    ("hostile", hostile, 60),
];

/// The last character boundary of `seed` at or before `at`.
fn boundary(seed: &str, at: usize) -> usize {
    (0..=at)
        .rev()
        .find(|&j| seed.is_char_boundary(j))
        .unwrap_or(0)
}

/// The bytes of the config that `edit` makes of `seed`.
fn render(seed: &str, edit: &Edit) -> Vec<u8> {
    match edit {
        Edit::TypeChange { line, wrong } => {
            let mut lines = lines_of(seed);
            let i = *line.get(&assignments(&lines));
            let (key, value) = lines[i].text.split_once('=').unwrap();
            let v = value.trim();
            let wrongs: &[&str] = if v == "true" || v == "false" {
                &WRONG_FOR_BOOL
            } else if v.starts_with('[') {
                &WRONG_FOR_LIST
            } else if v.starts_with('"') {
                &WRONG_FOR_STR
            } else {
                &WRONG_FOR_INT
            };
            lines[i].text = format!("{key}= {}", wrong.get(wrongs));
            join(&lines).into_bytes()
        }
        Edit::Set { table, key, value } => set(seed, table, key, value).into_bytes(),
        Edit::MaxBelowInitial => set(
            &set(seed, "reestablish", "initial_delay_ms", "5000"),
            "reestablish",
            "max_delay_ms",
            "4999",
        )
        .into_bytes(),
        Edit::UnknownTable(t) => format!("{seed}\n[{t}]\nx = 1\n").into_bytes(),
        Edit::Glob { bad, good, line } => {
            let list = match good {
                Some(good) => format!("[\"{good}\", \"{bad}\"]"),
                None => format!("[\"{bad}\"]"),
            };
            let mut lines = lines_of(seed);
            let idx: Vec<usize> = assignments(&lines)
                .into_iter()
                .filter(|&i| key_of(&lines[i].text) == "interfaces")
                .collect();
            match line {
                Some(line) if !idx.is_empty() => {
                    lines[*line.get(&idx)].text = format!("interfaces = {list}");
                    join(&lines).into_bytes()
                }
                _ => format!("{seed}\n[[link]]\ninterfaces = {list}\nflags = [\"subflow\"]\n")
                    .into_bytes(),
            }
        }
        Edit::DuplicateName => {
            let name = seed
                .lines()
                .find(|l| l.trim_start().starts_with("name = "))
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|| "name = \"dup\"".to_string());
            format!("{seed}\n[[link]]\n{name}\nflags = [\"subflow\"]\n[[link]]\n{name}\nflags = [\"subflow\"]\n").into_bytes()
        }
        Edit::Rule { rule, first: false } => format!("{seed}\n[[link]]\n{rule}\n").into_bytes(),
        Edit::Rule { rule, first: true } => {
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
        Edit::Truncate {
            line,
            at,
            pos,
            newline,
        } => {
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
            let i = *line.get(&candidates);
            let line = &lines[i].text;
            let cut = if line.trim_start().starts_with('[') {
                // "[[li", "[limi": before the closing bracket.
                let close = line.find(']').unwrap_or(line.len());
                1 + pos.index(close.max(2) - 1)
            } else {
                let eq = line.find('=').unwrap();
                match at {
                    Cut::InKey => 1 + pos.index(eq.max(1)),
                    Cut::AfterEquals => eq + 1,
                    Cut::InString => match line[eq..].find('"') {
                        Some(q) => {
                            let rest = &line[eq + q + 1..];
                            eq + q + 1 + pos.index(rest.find('"').unwrap_or(0).max(1))
                        }
                        None => eq + 1,
                    },
                }
            };
            let mut out = join(&lines[..i]);
            out.push_str(&line[..cut.min(line.len())]);
            if *newline {
                // Truncated mid-file: whatever followed is lost too; or the file ends there.
                out.push('\n');
            }
            out.into_bytes()
        }
        Edit::Nul(at) => {
            let mut b = seed.as_bytes().to_vec();
            for i in at {
                // Keep UTF-8 intact so the parser, not the decoder, has to find it.
                let at = boundary(seed, i.index(b.len()));
                b.insert(at, 0);
            }
            b
        }
        Edit::Utf8 { at, bad } => {
            let mut b = seed.as_bytes().to_vec();
            let at = boundary(seed, at.index(b.len()));
            b.splice(at..at, bad.iter().copied());
            b
        }
        Edit::Nested { shape, depth, at } => {
            let d = *depth;
            let value = match shape {
                Shape::Arrays => format!("{}{}", "[".repeat(d), "]".repeat(d)),
                Shape::InlineTables => format!("{}1{}", "{ a = ".repeat(d), " }".repeat(d)),
                Shape::Unclosed => format!("{}{}", "[".repeat(d), "]".repeat(d / 2)),
            };
            set(seed, at.0, at.1, &value).into_bytes()
        }
        Edit::DottedKey(depth) => {
            let key = vec!["a"; *depth].join(".");
            format!("{seed}\n[limits]\n{key} = 1\n").into_bytes()
        }
        Edit::Oversized(big) => oversize(seed, big),
        Edit::Hostile(text) => text.as_bytes().to_vec(),
    }
}

fn oversize(seed: &str, big: &Big) -> Vec<u8> {
    match big {
        Big::Padded => {
            let mut s = seed.to_string();
            while s.len() <= 1 << 20 {
                s.push_str("# padding padding padding padding padding padding padding padding\n");
            }
            s.into_bytes()
        }
        Big::LongName => format!(
            "{seed}\n[[link]]\nname = \"{}\"\nflags = [\"subflow\"]\n",
            "n".repeat(600_000)
        )
        .into_bytes(),
        Big::LongPattern => format!(
            "{seed}\n[[link]]\ninterfaces = [\"{}\"]\nflags = [\"subflow\"]\n",
            "i".repeat(600_000)
        )
        .into_bytes(),
        Big::SameName(n) => {
            let mut s = seed.to_string();
            for _ in 0..*n {
                s.push_str("[[link]]\nname = \"same\"\nflags = [\"subflow\"]\n");
            }
            s.into_bytes()
        }
        Big::ManyPatterns(bad_at) => {
            let mut list: Vec<String> = (0..100_000).map(|i| format!("\"e{i}\"")).collect();
            let at = bad_at.index(list.len());
            list[at] = "\"bad one\"".into();
            format!(
                "{seed}\n[[link]]\ninterfaces = [{}]\nflags = [\"subflow\"]\n",
                list.join(",")
            )
            .into_bytes()
        }
    }
}

/// The lines of `bytes` that differ from `seed` (all of them for a file not from a seed),
/// escaped and cut short: what a failure report shows of its input.
fn changed_lines(seed: &str, bytes: &[u8]) -> String {
    let s = seed.as_bytes();
    let same_start = s.iter().zip(bytes).take_while(|(a, b)| a == b).count();
    let same_end = s[same_start..]
        .iter()
        .rev()
        .zip(bytes[same_start..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let start = bytes[..same_start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = bytes.len() - same_end;
    // Whole lines: up to the end of the last changed one (an insertion ends at a newline).
    let end = if end > start && bytes[end - 1] == b'\n' {
        end - 1
    } else {
        bytes[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| end + i)
    };
    let line = 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count();
    let text = String::from_utf8_lossy(&bytes[start..end.max(start)]);
    let escaped = text
        .split('\n')
        .map(|l| l.escape_debug().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let shown: String = escaped.chars().take(400).collect();
    let cut = if shown.len() < escaped.len() {
        format!("… ({} bytes in all)", bytes.len())
    } else {
        String::new()
    };
    format!("from line {line}:\n{shown}{cut}")
}

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
    let total = Cell::new(0usize);
    let mut failures = Vec::new();
    let mut examples = Vec::new();
    for (class, strategy, cases) in CLASSES {
        // A fixed-seed runner per class: the same cases on every run; a failure is shrunk.
        let config = RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        // The seed last: tuples shrink in order, and with the edit already small, trying
        // the first seeds finds the shortest input.
        let input = (strategy(), 0..SEEDS.len()).prop_map(|(edit, s)| Bad {
            seed: Seed(s),
            edit,
        });
        let example = RefCell::new(None);
        let outcome = runner.run(&input, |bad| {
            let seed = if matches!(bad.edit, Edit::Hostile(_)) {
                ""
            } else {
                SEEDS[bad.seed.0].1
            };
            let bytes = render(seed, &bad.edit);
            std::fs::write(&path, &bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            total.set(total.get() + 1);
            let msg = check_rejection(&path, &bytes).map_err(|why| {
                TestCaseError::fail(format!(
                    "{why}\n--- input, {}\n--- end of input",
                    changed_lines(seed, &bytes)
                ))
            })?;
            example
                .borrow_mut()
                .get_or_insert_with(|| msg.lines().next().unwrap_or("").to_string());
            Ok(())
        });
        match outcome {
            Ok(()) => examples.push(format!(
                "{class}: {}",
                example.into_inner().unwrap_or_default()
            )),
            Err(e) => failures.push(format!("{class}: {e}")),
        }
    }
    let total = total.get();
    eprintln!(
        "{total} bad configs rejected; one message per class:\n  {}",
        examples.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of {} classes of bad configs not handled (smallest failing input of each):\n{}",
        failures.len(),
        CLASSES.len(),
        failures.join("\n")
    );
    assert!(total >= 1000, "{total}");
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
