// SPDX-License-Identifier: MIT OR Apache-2.0
//! Synthetic linux-stable-like histories for tests and the benchmark, written with ONE
//! `git fast-import` process (100,000 commits in well under a minute).
//!
//! Shape: `v5.10` → mainline (rc and release tags up to `v5.15`, side-branch merges) →
//! `linux-5.15.y` (stable tags); `v5.10` → `linux-5.10.y` (stable tags) carrying duplicates of
//! mainline MPTCP commits (cherry-picked with and without `-x`, adapted with a
//! `commit X upstream.` line). Each file is split into line zones so that exactly the
//! designed duplicates and conflicts happen. Optional scenarios add a core prerequisite
//! outside the path set, renames, a revert pair, a subject-only duplicate, a stable-only
//! extra and an extra outside the range; [`Facts`] tells tests what to expect.

mod scenarios;
mod writer;

use scenarios::*;
pub use writer::{Change, Synth};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use mptcp_lab::support::Rng;

use crate::error::{Error, Result};

/// Size and features of a synthetic history.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Mainline commits between v5.10 and v5.15 (merges not included).
    pub mainline_commits: usize,
    /// Commits on linux-5.15.y after v5.15.
    pub target_stable_commits: usize,
    /// Commits on linux-5.10.y after v5.10 (duplicates not included).
    pub base_stable_commits: usize,
    /// Every Nth mainline commit changes net/mptcp.
    pub mptcp_every: usize,
    /// A side-branch merge every N mainline commits (0: none).
    pub merge_every: usize,
    /// Mainline MPTCP commits duplicated onto 5.10.y (split over the three kinds).
    pub duplicates: usize,
    /// Add the designed scenarios (prerequisite, renames, revert, …).
    pub scenarios: bool,
    pub seed: u64,
}

impl Spec {
    /// A few thousand commits with every scenario: the test history.
    pub fn test() -> Spec {
        Spec {
            mainline_commits: 3000,
            target_stable_commits: 300,
            base_stable_commits: 300,
            mptcp_every: 20,
            merge_every: 150,
            duplicates: 9,
            scenarios: true,
            seed: 7,
        }
    }

    /// The benchmark history: `commits` commits in the plan range, no scenarios.
    pub fn bench(commits: usize) -> Spec {
        let target_stable = commits / 30;
        Spec {
            mainline_commits: commits.saturating_sub(target_stable),
            target_stable_commits: target_stable,
            base_stable_commits: commits / 40,
            mptcp_every: 25,
            merge_every: 500,
            duplicates: 60,
            scenarios: false,
            seed: 42,
        }
    }
}

/// What a generated history contains, for assertions.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub base_tag: String,
    /// An early 5.10.y tag (before any duplicate).
    pub early_base_tag: String,
    pub target_tag: String,
    /// Non-merge commits of base..target touching the MPTCP path set.
    pub touching: usize,
    /// Commits of the range (merges included).
    pub range_commits: usize,
    pub merges: usize,
    /// Range commits the base has with the same diff and no reference.
    pub dup_patch_id: Vec<String>,
    /// Range commits a base commit names as its origin.
    pub dup_upstream_ref: Vec<String>,
    /// Core commit outside the path set that `prereq_user` needs.
    pub prereq: String,
    pub prereq_subject: String,
    pub prereq_user: String,
    /// Revert pair in the range (original, revert).
    pub revert_pair: (String, String),
    /// Range commit whose subject (only) also exists in the base, and that subject.
    pub subject_dup: String,
    pub subject_dup_subject: String,
    /// 5.15.y commit outside the path set, cited by the fake upstream id `stable_extra_upstream`.
    pub stable_extra: String,
    pub stable_extra_upstream: String,
    /// Commit outside the range (on `refs/heads/netdev-next`) found by subject.
    pub outside_extra: String,
    pub outside_extra_subject: String,
    /// MPTCP commit changing `ctrl_file` line `ctrl_line` (1-based), for the BSP conflict.
    pub ctrl_commit: String,
    pub ctrl_file: String,
    pub ctrl_line: usize,
    /// A renamed file in the range (from, to).
    pub rename: (String, String),
}

const MPTCP_FILES: [&str; 6] = [
    "net/mptcp/protocol.c",
    "net/mptcp/subflow.c",
    "net/mptcp/options.c",
    "net/mptcp/pm_netlink.c",
    "net/mptcp/ctrl.c",
    "include/net/mptcp.h",
];

const CORE_FILES: [&str; 4] = [
    "net/ipv4/tcp.c",
    "include/net/tcp.h",
    "net/core/sock.c",
    "net/ipv4/tcp_input.c",
];

const SELFTEST: &str = "tools/testing/selftests/net/mptcp/mptcp_join.sh";

const DRIVER_DIRS: usize = 40;

const DRIVER_FILES: usize = 25;

const LINES: usize = 400;

// Line zones (0-based). Mptcp files: mainline edits, dup zone, 5.15.y edits, reserved ctrl line.

const MPTCP_MAIN: (usize, usize) = (0, 150);

const DUP_START: usize = 400;

/// net/mptcp/protocol.c is longer: it also holds the duplicate zone (75 slots).
const PROTOCOL_LINES: usize = 1000;

const MPTCP_TARGET_STABLE: (usize, usize) = (320, 350);

const CTRL_LINE: usize = 370;
// Core files: churn outside the series, hunks of MPTCP commits, base stable, target stable, prereq.

const CORE_CHURN: (usize, usize) = (0, 100);

const CORE_MPTCP: (usize, usize) = (110, 150);

const CORE_BASE: (usize, usize) = (160, 200);

const CORE_TARGET: (usize, usize) = (210, 240);

const PREREQ_LINE: usize = 300;

fn initial_files() -> Vec<Change> {
    let mut out = Vec::new();
    let file = |path: &str, n: usize| Change::Write {
        path: path.to_string(),
        lines: (0..n).map(|i| format!("/* {path} line {i} */")).collect(),
    };
    out.push(Change::Write {
        path: "Makefile".into(),
        lines: vec![
            "# SPDX-License-Identifier: GPL-2.0".into(),
            "VERSION = 5".into(),
            "PATCHLEVEL = 10".into(),
            "SUBLEVEL = 0".into(),
            "EXTRAVERSION =".into(),
        ],
    });
    out.push(Change::Write {
        path: "Kconfig".into(),
        lines: vec![
            "mainmenu \"Synthetic\"".into(),
            "source \"net/Kconfig\"".into(),
        ],
    });
    out.push(Change::Write {
        path: "net/Kconfig".into(),
        lines: vec!["config NET".into(), "\tbool \"net\"".into()],
    });
    for p in MPTCP_FILES.iter().chain(CORE_FILES.iter()) {
        out.push(file(
            p,
            if *p == MPTCP_FILES[0] {
                PROTOCOL_LINES
            } else {
                LINES
            },
        ));
    }
    out.push(file(SELFTEST, 120));
    out.push(file("net/mptcp/pm_old.c", 60));
    out.push(file("tools/testing/selftests/net/helper.sh", 40));
    for d in 0..DRIVER_DIRS {
        for f in 0..DRIVER_FILES {
            out.push(file(&format!("drivers/sub{d:02}/file{f:02}.c"), 20));
        }
    }
    out
}

fn edit(path: &str, line: usize, tag: &str) -> Change {
    Change::Edit {
        path: path.to_string(),
        line,
        text: format!("/* {path} line {line} {tag} */"),
    }
}

/// Generate the history at `path`.
pub fn generate(path: &Path, spec: &Spec) -> Result<Facts> {
    let mut s = Synth::create(path)?;
    let mut rng = Rng::new(spec.seed);
    let mut facts = Facts::default();
    let author = |n: usize| format!("Dev {} <dev{}@example.org>", n % 50, n % 50);

    let root = s.commit(
        "master",
        "Linus <torvalds@example.org>",
        "Linux 5.10",
        &initial_files(),
    )?;
    s.tag("v5.10", root)?;
    s.branch("linux-5.10.y", "master");

    // Mainline between v5.10 and v5.15, with rc/release tags and side-branch merges.
    let releases = ["v5.11", "v5.12", "v5.13", "v5.14", "v5.15"];
    let per_release = (spec.mainline_commits / releases.len()).max(8);
    let mut mptcp_commits: Vec<u64> = Vec::new();
    let mut dup_targets: Vec<(u64, usize, String)> = Vec::new(); // (mark, dup index, subject)
    let mut n = 0usize;
    let mut side = 0usize;
    let mut scenario_done = false;
    for (ri, rel) in releases.iter().enumerate() {
        for k in 0..per_release {
            n += 1;
            // rc tags at fixed fractions of the cycle.
            if k > 0 && k % (per_release / 8).max(1) == 0 && k / (per_release / 8).max(1) <= 7 {
                let rc = k / (per_release / 8).max(1);
                if let Some(h) = s.head("master") {
                    s.tag(&format!("{rel}-rc{rc}"), h)?;
                }
            }
            if spec.merge_every > 0 && n % spec.merge_every == 0 {
                side += 1;
                let name = format!("side{side}");
                s.branch(&name, "master");
                let mut paths = Vec::new();
                for j in 0..3 {
                    let p = format!("drivers/side/s{side}_{j}.c");
                    s.commit(
                        &name,
                        &author(n + j),
                        &format!("net: side driver {side}.{j}"),
                        &[Change::Write {
                            path: p.clone(),
                            lines: vec![format!("/* side {side} {j} */")],
                        }],
                    )?;
                    paths.push(p);
                }
                s.merge(
                    "master",
                    &name,
                    &format!("Merge branch 'side{side}'"),
                    &paths,
                )?;
                facts.merges += 1;
                facts.range_commits += 4;
            }
            if spec.mptcp_every > 0 && n % spec.mptcp_every == 0 {
                let dup_index = dup_targets.len();
                let is_dup = dup_index < spec.duplicates.min(75) && mptcp_commits.len() % 3 == 1;
                let file = MPTCP_FILES[rng.below(MPTCP_FILES.len())];
                let subject = format!("mptcp: change {n}");
                let mut changes = Vec::new();
                if is_dup {
                    changes.push(edit(
                        MPTCP_FILES[0],
                        DUP_START + 8 * dup_index,
                        &format!("dup {dup_index}"),
                    ));
                } else {
                    changes.push(edit(file, rng.range(MPTCP_MAIN), &format!("m{n}")));
                    if rng.below(5) == 0 {
                        let core = CORE_FILES[rng.below(CORE_FILES.len())];
                        changes.push(edit(core, rng.range(CORE_MPTCP), &format!("m{n}")));
                    }
                    if rng.below(6) == 0 {
                        changes.push(edit(SELFTEST, rng.range((0, 100)), &format!("m{n}")));
                    }
                }
                let mark = s.commit(
                    "master",
                    &author(n),
                    &format!("{subject}\n\nSynthetic MPTCP change {n}.\n"),
                    &changes,
                )?;
                mptcp_commits.push(mark);
                if is_dup {
                    dup_targets.push((mark, dup_index, subject));
                }
                facts.touching += 1;
            } else if rng.below(10) == 0 {
                let core = CORE_FILES[rng.below(CORE_FILES.len())];
                s.commit(
                    "master",
                    &author(n),
                    &format!("tcp: core change {n}"),
                    &[edit(core, rng.range(CORE_CHURN), &format!("c{n}"))],
                )?;
            } else {
                let p = format!(
                    "drivers/sub{:02}/file{:02}.c",
                    rng.below(DRIVER_DIRS),
                    rng.below(DRIVER_FILES)
                );
                let line = rng.below(20);
                s.commit(
                    "master",
                    &author(n),
                    &format!("drivers: change {n}"),
                    &[edit(&p, line, &format!("d{n}"))],
                )?;
            }
            facts.range_commits += 1;
            if spec.scenarios && !scenario_done && ri == 2 && k == per_release / 2 {
                scenarios_mainline(&mut s, &mut facts)?;
                scenario_done = true;
            }
        }
        let h = s
            .head("master")
            .ok_or_else(|| Error::parse("synth", "no head"))?;
        s.tag(rel, h)?;
    }

    // linux-5.15.y
    s.branch("linux-5.15.y", "master");
    let mut stable_tag = 0;
    for k in 0..spec.target_stable_commits {
        n += 1;
        if k % 7 == 3 {
            let file = MPTCP_FILES[rng.below(MPTCP_FILES.len())];
            let up = fake_id(&mut rng);
            s.commit(
                "linux-5.15.y",
                &author(n),
                &format!(
                    "mptcp: stable fix {n}\n\ncommit {up} upstream.\n\nSynthetic stable fix.\n"
                ),
                &[edit(file, rng.range(MPTCP_TARGET_STABLE), &format!("t{n}"))],
            )?;
            facts.touching += 1;
        } else {
            let core = CORE_FILES[rng.below(CORE_FILES.len())];
            s.commit(
                "linux-5.15.y",
                &author(n),
                &format!("tcp: stable change {n}"),
                &[edit(core, rng.range(CORE_TARGET), &format!("t{n}"))],
            )?;
        }
        facts.range_commits += 1;
        if k % 50 == 49 {
            stable_tag += 1;
            let h = s
                .head("linux-5.15.y")
                .ok_or_else(|| Error::parse("synth", "no head"))?;
            s.tag(&format!("v5.15.{stable_tag}"), h)?;
        }
    }
    if spec.scenarios {
        scenarios_target_stable(&mut s, &mut facts, &mut rng)?;
        facts.range_commits += 2;
    }
    stable_tag += 1;
    let h = s
        .head("linux-5.15.y")
        .ok_or_else(|| Error::parse("synth", "no head"))?;
    s.tag(&format!("v5.15.{stable_tag}"), h)?;
    facts.target_tag = format!("v5.15.{stable_tag}");

    // linux-5.10.y (branched at v5.10 above), with the duplicates after the first stable tag.
    let mut base_tag = 0;
    let dup_every = (spec.base_stable_commits / (dup_targets.len() + 1)).max(1);
    let mut dup_iter = dup_targets.into_iter();
    for k in 0..spec.base_stable_commits.max(1) {
        n += 1;
        if k > 0 && k % dup_every == 0 {
            if let Some((mark, i, subject)) = dup_iter.next() {
                let id = s.sha(mark)?;
                let line = DUP_START + 8 * i;
                match i % 3 {
                    0 => {
                        s.commit("linux-5.10.y", &author(n), &format!("{subject}\n\nSynthetic MPTCP change.\n\n(cherry picked from commit {id})\n"), &[edit(MPTCP_FILES[0], line, &format!("dup {i}"))])?;
                        facts.dup_upstream_ref.push(id);
                    }
                    1 => {
                        s.commit(
                            "linux-5.10.y",
                            &author(n),
                            &format!("{subject}\n\nSame diff, no reference.\n"),
                            &[edit(MPTCP_FILES[0], line, &format!("dup {i}"))],
                        )?;
                        facts.dup_patch_id.push(id);
                    }
                    _ => {
                        s.commit(
                            "linux-5.10.y",
                            &author(n),
                            &format!("{subject}\n\ncommit {id} upstream.\n\nAdapted for 5.10.\n"),
                            &[edit(MPTCP_FILES[0], line, &format!("dup {i} adapted"))],
                        )?;
                        facts.dup_upstream_ref.push(id);
                    }
                }
            }
        }
        let core = CORE_FILES[rng.below(CORE_FILES.len())];
        s.commit(
            "linux-5.10.y",
            &author(n),
            &format!("tcp: 5.10 stable change {n}"),
            &[edit(core, rng.range(CORE_BASE), &format!("b{n}"))],
        )?;
        if k == 0 {
            base_tag += 1;
            let h = s
                .head("linux-5.10.y")
                .ok_or_else(|| Error::parse("synth", "no head"))?;
            s.tag(&format!("v5.10.{base_tag}"), h)?;
            facts.early_base_tag = format!("v5.10.{base_tag}");
        }
    }
    // Remaining duplicates (small histories).
    for (mark, i, subject) in dup_iter {
        let id = s.sha(mark)?;
        s.commit(
            "linux-5.10.y",
            &author(i),
            &format!("{subject}\n\nSame diff, no reference.\n"),
            &[edit(MPTCP_FILES[0], DUP_START + 8 * i, &format!("dup {i}"))],
        )?;
        facts.dup_patch_id.push(id);
    }
    if spec.scenarios {
        // Same subject as a mainline MPTCP commit, different change.
        let subject = facts.subject_dup_subject.clone();
        s.commit(
            "linux-5.10.y",
            &author(1),
            &format!("{subject}\n\nA different fix with the same title.\n"),
            &[edit("drivers/sub00/file00.c", 3, "subject dup")],
        )?;
        // The 5.10.y backport of the same (fake) upstream fix as a 5.15.y commit.
        let up = facts.stable_extra_upstream.clone();
        s.commit(
            "linux-5.10.y",
            &author(2),
            &format!("tcp: stable-only helper\n\ncommit {up} upstream.\n"),
            &[edit(
                "net/core/sock.c",
                CORE_BASE.1 - 1,
                "stable helper 5.10",
            )],
        )?;
    }
    base_tag += 1;
    let h = s
        .head("linux-5.10.y")
        .ok_or_else(|| Error::parse("synth", "no head"))?;
    s.tag(&format!("v5.10.{base_tag}"), h)?;
    facts.base_tag = format!("v5.10.{base_tag}");

    if spec.scenarios {
        // An extra commit outside base..target: a different branch altogether.
        s.branch("netdev-next", "master");
        let subject = "net: out-of-range helper for mptcp".to_string();
        let m = s.commit(
            "netdev-next",
            &author(3),
            &format!("{subject}\n\nOnly on netdev-next.\n"),
            &[Change::Write {
                path: "drivers/outside/helper.c".into(),
                lines: vec!["/* helper */".into()],
            }],
        )?;
        facts.outside_extra = s.sha(m)?;
        facts.outside_extra_subject = subject;
    }
    // Resolve the designed facts that were recorded as marks.
    s.finish()?;
    Ok(facts)
}

fn fake_id(rng: &mut Rng) -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64() as u32
    )
}
