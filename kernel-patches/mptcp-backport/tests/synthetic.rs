// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every verb on a synthetic linux-stable-like history built by the test itself: ~3,400
//! commits with merges and rc/stable tags, duplicates of mainline MPTCP commits in 5.10.y
//! (cherry-picked with and without -x, adapted with "commit X upstream."), a core commit
//! outside the path set that a later MPTCP commit needs, renames, a revert pair, a stable-only
//! extra, an extra outside the range, and a BSP vendor change that conflicts.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use mptcp_backport::apply::{self, Action, ApplyOptions, Mode, Outcome};
use mptcp_backport::export::{export, read_info};
use mptcp_backport::git::Git;
use mptcp_backport::manifest::Manifest;
use mptcp_backport::plan::{plan, DropReason, ExtraState, FoundBy, Kind, Plan, PlanOptions};
use mptcp_backport::synth::{generate, Facts, Spec};
use mptcp_backport::Error;

struct History {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    facts: Facts,
}

/// One history for all tests (read-only for them).
fn history() -> &'static History {
    static H: OnceLock<History> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("linux");
        let facts = generate(&repo, &Spec::test()).expect("generate history");
        History {
            _dir: dir,
            repo,
            facts,
        }
    })
}

const HEAD: &str = r#"
schema = 1
[product]
name = "synthetic"
version = "5.15.7-1"
description = "test"
[source]
base = "v5.10.2"
target = "v5.15.7"
paths = ["net/mptcp/", "include/net/mptcp.h", "tools/testing/selftests/net/mptcp/"]
[target_kernel]
series = "5.10"
note = "test"
[config]
fragments = []
selftest_fragments = []
"#;

/// A manifest in `dir` with the designed extras (optionally without the core prerequisite),
/// a skip, a fixup after a commit and a known conflict.
fn manifest(dir: &Path, with_prereq: bool) -> Manifest {
    let f = &history().facts;
    let mut text = HEAD.to_string();
    if with_prereq {
        text.push_str(&format!(
            "\n[[extra]]\nid = \"\"\nsubject = \"{}\"\nrelease = \"v5.13\"\nwhy = \"helper used by mptcp\"\nseen = \"synthetic\"\nstatus = \"unconfirmed\"\n",
            f.prereq_subject
        ));
    }
    text.push_str(&format!(
        "\n[[extra]]\nid = \"{}\"\nsubject = \"tcp: stable-only helper\"\nrelease = \"v5.16\"\nwhy = \"stable-only\"\nseen = \"synthetic\"\nstatus = \"confirmed\"\n",
        &f.stable_extra_upstream[..12]
    ));
    text.push_str(&format!(
        "\n[[extra]]\nid = \"\"\nsubject = \"{}\"\nrelease = \"v5.16\"\nwhy = \"outside\"\nseen = \"synthetic\"\nstatus = \"unconfirmed\"\n",
        f.outside_extra_subject
    ));
    text.push_str(
        "\n[[extra]]\nid = \"abcdef0123456789\"\nsubject = \"net: never existed\"\nrelease = \"v5.11\"\nwhy = \"w\"\nseen = \"s\"\nstatus = \"confirmed\"\nwhen = { file = \"Makefile\", lacks = \"PATCHLEVEL\" }\n",
    );
    text.push_str("\n[[skip]]\nid = \"\"\nsubject = \"mptcp: touch the renamed pm_new.c\"\nrelease = \"v5.13\"\nwhy = \"test skip\"\nseen = \"synthetic\"\n");
    text.push_str(&format!(
        "\n[[fixup]]\nfile = \"fixups/0001-note.patch\"\nafter = \"{}\"\nwhy = \"test fixup\"\nwhen = {{ file = \"Makefile\", contains = \"PATCHLEVEL = 10\" }}\n",
        &f.prereq_user[..12]
    ));
    text.push_str(&format!(
        "\n[[known_conflict]]\nid = \"{}\"\nsubject = \"mptcp: ctrl tweak\"\nfiles = [\"net/mptcp/ctrl.c\"]\nhint = \"keep the vendor line\"\n",
        &f.ctrl_commit[..12]
    ));
    text.push_str("\n[[feature]]\nname = \"renamed pm file\"\nsince = \"v5.13\"\nfile = \"net/mptcp/pm_new.c\"\n");
    text.push_str("\n[[feature]]\nname = \"ctrl tweak\"\nsince = \"v5.13\"\nfile = \"net/mptcp/ctrl.c\"\ncontains = \"ctrl tweak\"\n");
    fs::create_dir_all(dir.join("fixups")).unwrap();
    fs::write(dir.join("fixups/0001-note.patch"), FIXUP).unwrap();
    let path = dir.join("series.toml");
    fs::write(&path, text).unwrap();
    Manifest::load(&path).unwrap()
}

const FIXUP: &str = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@example.org>
Date: Mon, 1 Jan 2024 00:00:00 +0000
Subject: [PATCH] mptcp: add a backport note

Upstream-Status: Inappropriate [test]
---
 net/mptcp/BACKPORT | 1 +
 1 file changed, 1 insertion(+)
 create mode 100644 net/mptcp/BACKPORT

diff --git a/net/mptcp/BACKPORT b/net/mptcp/BACKPORT
new file mode 100644
--- /dev/null
+++ b/net/mptcp/BACKPORT
@@ -0,0 +1 @@
+synthetic backport
";

fn plan_with(m: &Manifest, base: &str) -> Plan {
    let h = history();
    let git = Git::open(&h.repo).unwrap();
    plan(
        &git,
        m,
        &PlanOptions {
            base: base.to_string(),
            target: h.facts.target_tag.clone(),
            conditions_tree: None,
        },
    )
    .unwrap()
}

fn ids(plan: &Plan, pred: impl Fn(&DropReason) -> bool) -> BTreeSet<String> {
    plan.dropped
        .iter()
        .filter(|d| pred(&d.reason))
        .map(|d| d.commit.clone())
        .collect()
}

fn position(plan: &Plan, id: &str) -> Option<usize> {
    plan.entries
        .iter()
        .position(|e| e.commit.as_deref() == Some(id))
}

#[test]
fn plan_counts_duplicates_extras_and_order() {
    let h = history();
    let f = &h.facts;
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), true);
    let p = plan_with(&m, &f.base_tag);

    assert_eq!(
        p.scanned, f.range_commits,
        "one pass over every commit of the range"
    );
    assert_eq!(p.merges, f.merges);
    assert_eq!(p.touching_paths, f.touching);

    let by_pid = ids(&p, |r| matches!(r, DropReason::DuplicatePatchId { .. }));
    assert_eq!(
        by_pid,
        f.dup_patch_id.iter().cloned().collect(),
        "cherry-picks without a reference found by patch-id"
    );
    let by_ref = ids(&p, |r| matches!(r, DropReason::DuplicateUpstreamRef { .. }));
    let mut want_ref: BTreeSet<String> = f.dup_upstream_ref.iter().cloned().collect();
    want_ref.insert(f.stable_extra.clone()); // the 5.10.y backport of the same upstream fix
    assert_eq!(by_ref, want_ref);
    let reverts = ids(&p, |r| matches!(r, DropReason::RevertPair { .. }));
    assert_eq!(
        reverts,
        [f.revert_pair.0.clone(), f.revert_pair.1.clone()]
            .into_iter()
            .collect()
    );
    assert_eq!(
        ids(&p, |r| matches!(r, DropReason::Manifest { .. })).len(),
        1
    );

    // Extras: by subject (unconfirmed), by upstream reference (already in base), outside the range.
    let state = |s: &str| {
        p.extras
            .iter()
            .find(|e| e.subject == s)
            .map(|e| (e.state, e.found_by))
    };
    assert_eq!(
        state(&f.prereq_subject),
        Some((ExtraState::Carried, Some(FoundBy::Subject)))
    );
    assert_eq!(
        state("tcp: stable-only helper"),
        Some((ExtraState::InBase, Some(FoundBy::UpstreamRef)))
    );
    assert_eq!(
        state(&f.outside_extra_subject),
        Some((ExtraState::Carried, Some(FoundBy::OutsideRange)))
    );
    assert_eq!(
        state("net: never existed").map(|s| s.0),
        Some(ExtraState::NotNeeded)
    );

    // Order: the core prerequisite before its user; the fixup right after the user.
    let pre = position(&p, &f.prereq).expect("prerequisite carried");
    let user = position(&p, &f.prereq_user).expect("user carried");
    assert!(pre < user);
    assert_eq!(p.entries[user + 1].kind, Kind::Fixup);
    assert_eq!(p.entries[pre].kind, Kind::Extra);
    assert!(
        p.entries[pre]
            .release
            .as_deref()
            .unwrap_or("")
            .starts_with("v5.13"),
        "{:?}",
        p.entries[pre].release
    );
    assert!(position(&p, &f.outside_extra).is_some());

    // Report: renames, core files, attention.
    assert!(p
        .renames
        .iter()
        .any(|r| r.from == f.rename.0 && r.to == f.rename.1));
    assert!(p
        .core_files
        .get("net/ipv4/tcp.c")
        .map(|c| c.iter().any(|x| f.prereq_user.starts_with(x)))
        .unwrap_or(false));
    let topics: BTreeSet<&str> = p.attention.iter().map(|a| a.topic.as_str()).collect();
    for t in [
        "unconfirmed-extra",
        "extra-outside-range",
        "possible-duplicate",
        "known-conflict",
        "core-files",
    ] {
        assert!(topics.contains(t), "attention {t} missing: {topics:?}");
    }
    assert!(p
        .attention
        .iter()
        .any(|a| a.topic == "possible-duplicate"
            && a.commit.as_deref() == Some(f.subject_dup.as_str())));
    // Every path-set commit, the three found extras and the fixup are either in the series or
    // dropped with a reason.
    assert_eq!(p.entries.len() + p.dropped.len(), f.touching + 3 + 1);
}

#[test]
fn plan_takes_any_base_of_the_series() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), true);
    let p = plan_with(&m, &f.early_base_tag);
    // v5.10.1 predates every duplicate: nothing is dropped as already in base.
    assert!(p.dropped.iter().all(|d| !matches!(
        d.reason,
        DropReason::DuplicatePatchId { .. } | DropReason::DuplicateUpstreamRef { .. }
    )));
    let stable = p
        .extras
        .iter()
        .find(|e| e.subject == "tcp: stable-only helper")
        .unwrap();
    assert_eq!(stable.state, ExtraState::Carried);
    assert_eq!(stable.commit.as_deref(), Some(f.stable_extra.as_str()));
    assert!(p.entries.len() > plan_with(&m, &f.base_tag).entries.len());
}

fn cli(args: &[&str], path_prefix: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"));
    cmd.args(args);
    if let Some(p) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", p.display()));
    }
    cmd.output().unwrap()
}

#[test]
fn plan_uses_a_fixed_number_of_git_processes() {
    let h = history();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), true);
    let real_git = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let wrap = dir.path().join("bin");
    fs::create_dir_all(&wrap).unwrap();
    let log = dir.path().join("git.log");
    fs::write(
        wrap.join("git"),
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec {} \"$@\"\n",
            log.display(),
            real_git.trim()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(wrap.join("git"))
        .status()
        .unwrap();
    let manifest_path = m.dir.join("series.toml");
    let out = cli(
        &[
            "--manifest",
            manifest_path.to_str().unwrap(),
            "plan",
            "--repo",
            h.repo.to_str().unwrap(),
            "--base",
            &h.facts.base_tag,
            "--target",
            &h.facts.target_tag,
            "--json",
        ],
        Some(&wrap),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = fs::read_to_string(&log).unwrap();
    let n = calls.lines().count();
    // open, tags, extra ids, 2 log streams, diff-tree|patch-id, base files, 2-3 for extras
    // outside the range: never one per commit (the range has ~3,400).
    assert!(n <= 12, "{n} git processes:\n{calls}");
    // ONE stream for both sides of base...target, plus the two look-ups for the extra that
    // lives outside the range.
    assert_eq!(
        calls.lines().filter(|l| l.contains(" log ")).count(),
        3,
        "{calls}"
    );
    assert_eq!(
        calls.lines().filter(|l| l.contains(" diff-tree ")).count(),
        1,
        "{calls}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scanned"].as_u64(), Some(h.facts.range_commits as u64));
}

#[test]
fn export_writes_full_patches_with_provenance() {
    let h = history();
    let f = &h.facts;
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), true);
    let p = plan_with(&m, &f.base_tag);
    let git = Git::open(&h.repo).unwrap();
    let out = dir.path().join("series");
    let info = export(&git, &m, &p, &out, false).unwrap();
    assert_eq!(info.patches.len(), p.entries.len());

    let series = fs::read_to_string(out.join("series")).unwrap();
    let listed: Vec<&str> = series.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(listed.len(), p.entries.len());
    for (i, name) in listed.iter().enumerate() {
        assert!(name.starts_with(&format!("{:04}-", i + 1)), "{name}");
        let text = fs::read_to_string(out.join(name)).unwrap();
        assert!(text.contains("Upstream-Status:"), "{name}");
        if info.patches[i].kind != Kind::Fixup {
            let id = info.patches[i].commit.clone().unwrap();
            assert!(text.starts_with(&format!("From {id} Mon Sep 17 00:00:00 2001\n")));
            assert!(text.contains(&format!("Git-commit: {id}\n")));
            assert!(text.contains("Upstream-Status: Backport ["));
            assert!(text.contains("Patch-mainline: "));
            assert!(text.contains(&format!("(cherry picked from commit {id})")));
        }
    }
    // Full diffs: the MPTCP commit that needs the helper also carries its tcp.c hunk.
    let user = listed
        .iter()
        .find(|n| n.contains("use-the-synthetic-tcp-helper"))
        .unwrap();
    let text = fs::read_to_string(out.join(user)).unwrap();
    assert!(text.contains("diff --git a/net/ipv4/tcp.c b/net/ipv4/tcp.c"));
    assert!(text.contains("diff --git a/net/mptcp/protocol.c b/net/mptcp/protocol.c"));
    // 5.15.y stable commits cite their upstream commit.
    let stable = listed
        .iter()
        .find(|n| n.contains("-v5.15-mptcp-stable-fix"))
        .unwrap();
    let text = fs::read_to_string(out.join(stable)).unwrap();
    assert!(
        text.contains("Upstream-commit: ") && text.contains("Git-release: v5.15."),
        "{text}"
    );
    // The rename is exported as a rename, the fixup keeps its own header.
    assert!(listed
        .iter()
        .any(|n| n.contains("mptcp-backport-note.patch")));
    let rename = listed
        .iter()
        .find(|n| n.contains("rename-pm_old.c-to-pm_new.c"))
        .unwrap();
    assert!(fs::read_to_string(out.join(rename))
        .unwrap()
        .contains("rename from net/mptcp/pm_old.c"));
    // The skipped commit is not exported.
    assert!(!listed.iter().any(|n| n.contains("touch-the-renamed")));

    // Refuses to overwrite; --force replaces.
    assert!(matches!(
        export(&git, &m, &p, &out, false),
        Err(Error::Series { .. })
    ));
    export(&git, &m, &p, &out, true).unwrap();
    assert_eq!(read_info(&out).unwrap().patches.len(), p.entries.len());
}

/// A BSP tree at `tag`: the files only, as a fresh git repository or a plain directory.
fn bsp(dir: &Path, tag: &str, git_repo: bool, vendor_change: bool) -> PathBuf {
    let h = history();
    let tree = dir.join(if git_repo { "bsp-git" } else { "bsp-plain" });
    fs::create_dir_all(&tree).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive {tag} | tar -x -C '{}'",
            h.repo.display(),
            tree.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    if vendor_change {
        let f = &h.facts;
        let path = tree.join(&f.ctrl_file);
        let mut lines: Vec<String> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines[f.ctrl_line] = "/* vendor change next to the MPTCP ctrl tweak */".into(); // 0-based: the line after
        fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
    if git_repo {
        for args in [
            vec!["init", "-q"],
            vec!["add", "-A"],
            vec![
                "-c",
                "user.name=Vendor",
                "-c",
                "user.email=v@example.org",
                "commit",
                "-qm",
                "BSP",
            ],
        ] {
            assert!(Command::new("git")
                .arg("-C")
                .arg(&tree)
                .args(&args)
                .status()
                .unwrap()
                .success());
        }
    }
    tree
}

fn exported(dir: &Path, with_prereq: bool, base: &str) -> (Manifest, PathBuf) {
    let h = history();
    let m = manifest(&dir.join("m"), with_prereq);
    let p = plan_with(&m, base);
    let out = dir.join("series");
    export(&Git::open(&h.repo).unwrap(), &m, &p, &out, false).unwrap();
    (m, out)
}

fn git_show(rev_path: &str) -> String {
    String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&history().repo)
            .args(["show", rev_path])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

#[test]
fn apply_git_applies_the_whole_series() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    let (m, series) = exported(dir.path(), true, &f.base_tag);
    let tree = bsp(dir.path(), &f.base_tag, true, false);
    let opts = ApplyOptions {
        tree: tree.clone(),
        source: None,
        manifest: Some(m),
    };
    let out = apply::apply(
        Action::Start {
            series: series.clone(),
            mode: None,
        },
        &opts,
    )
    .unwrap();
    let n = read_info(&series).unwrap().patches.len();
    assert!(
        matches!(out, Outcome::Done { applied, skipped: 0 } if applied == n),
        "{out:?}"
    );
    let commits = Command::new("git")
        .arg("-C")
        .arg(&tree)
        .args(["rev-list", "--count", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&commits.stdout).trim(),
        (n + 1).to_string()
    );
    // The path set now matches the target (the renamed file, the moved selftest, ctrl.c).
    let target = &f.target_tag;
    assert_eq!(
        fs::read_to_string(tree.join("net/mptcp/ctrl.c")).unwrap(),
        git_show(&format!("{target}:net/mptcp/ctrl.c"))
    );
    assert!(!tree.join("net/mptcp/pm_old.c").exists() && tree.join("net/mptcp/pm_new.c").exists());
    assert!(tree
        .join("tools/testing/selftests/net/mptcp/helper.sh")
        .exists());
    assert!(tree.join("net/mptcp/BACKPORT").exists());
    let log = fs::read_to_string(tree.join(".git/mptcp-backport/apply.log")).unwrap();
    assert!(log.contains("done:"));
    assert!(!tree.join(".git/mptcp-backport/state.json").exists());
}

#[test]
fn apply_git_stops_on_conflicts_names_prerequisites_and_continues() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    // Without the core prerequisite in the manifest, and with a vendor change in ctrl.c.
    let (m, series) = exported(dir.path(), false, &f.base_tag);
    let tree = bsp(dir.path(), &f.base_tag, true, true);
    let opts = ApplyOptions {
        tree: tree.clone(),
        source: None,
        manifest: Some(m),
    };
    let out = apply::apply(
        Action::Start {
            series: series.clone(),
            mode: Some(Mode::Git),
        },
        &opts,
    )
    .unwrap();
    let Outcome::Conflict(report) = out else {
        panic!("expected a conflict, got {out:?}")
    };
    assert_eq!(report.commit.as_deref(), Some(f.prereq_user.as_str()));
    assert_eq!(
        report
            .files
            .iter()
            .map(|c| c.path.as_str())
            .collect::<Vec<_>>(),
        vec!["net/ipv4/tcp.c"]
    );
    let cand = report.candidates.first().expect("a candidate prerequisite");
    assert_eq!(cand.commit, f.prereq);
    assert!(cand.in_series.is_none() && cand.note.contains("NOT in the series"));
    let text = apply::render_conflict(&report);
    assert!(text.contains(&f.prereq[..12]) && text.contains("candidate prerequisites"));

    // A second start is refused while the session is open.
    assert!(matches!(
        apply::apply(
            Action::Start {
                series: series.clone(),
                mode: None
            },
            &opts
        ),
        Err(Error::Apply(_))
    ));
    // --continue before fixing anything fails and keeps the session.
    assert!(apply::apply(Action::Continue, &opts).is_err());

    // Fix by hand: bring in the prerequisite, apply the patch, stage.
    let h = history();
    let sh = |cmd: String| {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(&tree)
                .status()
                .unwrap()
                .success(),
            "{cmd}"
        )
    };
    sh(format!(
        "git -C '{}' show {} | git apply",
        h.repo.display(),
        f.prereq
    ));
    sh("git apply .git/rebase-apply/patch && git add -A".into());
    let out = apply::apply(Action::Continue, &opts).unwrap();
    let Outcome::Conflict(report) = out else {
        panic!("expected the vendor conflict, got {out:?}")
    };
    assert_eq!(report.commit.as_deref(), Some(f.ctrl_commit.as_str()));
    assert!(
        report.candidates.is_empty(),
        "only the vendor change is in the way: {:?}",
        report.candidates
    );
    assert!(report
        .hints
        .iter()
        .any(|h| h.contains("keep the vendor line")));

    // Resolve keeping the vendor line, then finish.
    let path = tree.join(&f.ctrl_file);
    let mut lines: Vec<String> = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines[f.ctrl_line - 1] = format!("/* {} line {} ctrl tweak */", f.ctrl_file, f.ctrl_line - 1);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    sh("git add -A".into());
    let out = apply::apply(Action::Continue, &opts).unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    let log = fs::read_to_string(tree.join(".git/mptcp-backport/apply.log")).unwrap();
    assert_eq!(log.matches("conflict in").count(), 2);
    assert_eq!(log.matches("continue after manual fix").count(), 2);
}

#[test]
fn apply_plain_tree_skip_and_abort() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    let (m, series) = exported(dir.path(), false, &f.base_tag);
    let tree = bsp(dir.path(), &f.base_tag, false, true);
    let opts = ApplyOptions {
        tree: tree.clone(),
        source: None,
        manifest: Some(m),
    };
    let out = apply::apply(
        Action::Start {
            series: series.clone(),
            mode: None,
        },
        &opts,
    )
    .unwrap();
    let Outcome::Conflict(first) = out else {
        panic!("{out:?}")
    };
    assert_eq!(first.commit.as_deref(), Some(f.prereq_user.as_str()));
    assert_eq!(first.files[0].path, "net/ipv4/tcp.c");
    assert_eq!(
        first.candidates.first().map(|c| c.commit.as_str()),
        Some(f.prereq.as_str())
    );
    // Nothing of the failing patch was written (dry run first).
    let protocol = fs::read_to_string(tree.join("net/mptcp/protocol.c")).unwrap();
    assert!(!protocol.contains("uses tcp_synth_helper"));
    let state = fs::read_to_string(tree.join(".mptcp-backport/state.json")).unwrap();
    assert!(state.contains("\"mode\": \"plain\""));

    let out = apply::apply(Action::Skip, &opts).unwrap();
    let Outcome::Conflict(second) = out else {
        panic!("{out:?}")
    };
    assert_eq!(second.commit.as_deref(), Some(f.ctrl_commit.as_str()));
    assert!(second.index > first.index);
    assert!(matches!(
        apply::apply(Action::Abort, &opts).unwrap(),
        Outcome::Aborted
    ));
    assert!(!tree.join(".mptcp-backport/state.json").exists());
    let log = fs::read_to_string(tree.join(".mptcp-backport/apply.log")).unwrap();
    assert!(log.contains("skip: ") && log.contains("abort at patch"));
}

#[test]
fn apply_refuses_dirty_and_non_kernel_trees() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    let (_, series) = exported(dir.path(), true, &f.base_tag);
    let tree = bsp(dir.path(), &f.base_tag, true, false);
    fs::write(tree.join("net/mptcp/ctrl.c"), "dirty\n").unwrap();
    let opts = ApplyOptions {
        tree: tree.clone(),
        source: None,
        manifest: None,
    };
    let err = apply::apply(
        Action::Start {
            series: series.clone(),
            mode: None,
        },
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, Error::DirtyTree { .. }), "{err}");
    assert!(err.to_string().contains("net/mptcp/ctrl.c"));

    let not_kernel = dir.path().join("empty");
    fs::create_dir_all(&not_kernel).unwrap();
    let err = apply::apply(
        Action::Start { series, mode: None },
        &ApplyOptions {
            tree: not_kernel,
            source: None,
            manifest: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotKernelTree(_)), "{err}");
    let err = apply::apply(
        Action::Continue,
        &ApplyOptions {
            tree: tree.clone(),
            source: None,
            manifest: None,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("no session"), "{err}");
}

#[test]
fn cli_errors_are_clear() {
    let h = history();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), true);
    let mp = m.dir.join("series.toml");
    let mp = mp.to_str().unwrap();
    let repo = h.repo.to_str().unwrap();

    let out = cli(
        &[
            "--manifest",
            mp,
            "plan",
            "--repo",
            repo,
            "--base",
            "v5.10.999",
            "--target",
            &h.facts.target_tag,
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("`v5.10.999` not found") && err.contains("fetch"),
        "{err}"
    );

    let out = cli(
        &[
            "--manifest",
            mp,
            "plan",
            "--repo",
            repo,
            "--base",
            "v5.15.1",
            "--target",
            &h.facts.target_tag,
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a 5.10.y release tag"));

    let out = cli(
        &[
            "--manifest",
            mp,
            "plan",
            "--repo",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));

    let bad = dir.path().join("bad.toml");
    let text = fs::read_to_string(mp)
        .unwrap()
        .replace("[target_kernel]\n", "[target_kernel]\nserie = \"5.10\"\n");
    fs::write(&bad, text).unwrap();
    let out = cli(
        &["--manifest", bad.to_str().unwrap(), "plan", "--repo", repo],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field `serie`") && err.contains("line 12") && err.contains("column"),
        "{err}"
    );

    let out = cli(
        &[
            "--manifest",
            mp,
            "verify",
            "--tree",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kernel source tree"));
}

#[test]
fn verify_features_before_and_after_apply() {
    let f = &history().facts;
    let dir = tempfile::tempdir().unwrap();
    let (m, series) = exported(dir.path(), true, &f.base_tag);
    let tree = bsp(dir.path(), &f.base_tag, false, false);
    let mp = m.dir.join("series.toml");
    let verify = |json: bool| {
        let mut args = vec![
            "--manifest",
            mp.to_str().unwrap(),
            "verify",
            "--tree",
            tree.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        cli(&args, None)
    };
    let before = verify(true);
    assert_eq!(before.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(report["missing_required"].as_array().unwrap().len(), 2);
    assert_eq!(report["kernel"], "5.10.0");

    let out = apply::apply(
        Action::Start { series, mode: None },
        &ApplyOptions {
            tree: tree.clone(),
            source: None,
            manifest: Some(m.clone()),
        },
    )
    .unwrap();
    assert!(matches!(out, Outcome::Done { .. }));
    let after = verify(false);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
    assert!(String::from_utf8_lossy(&after.stdout).contains("has      renamed pm file"));
}

#[test]
fn shipped_manifest_is_valid_and_plans_on_a_synthetic_clone() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../series.toml");
    let m = Manifest::load(&path).unwrap();
    let mut seen = BTreeSet::new();
    for e in &m.extra {
        if !e.id.is_empty() {
            assert!(seen.insert(e.id.clone()), "duplicate id {}", e.id);
        }
        assert!(!e.seen.is_empty() && !e.why.is_empty());
    }
    for must in ["049fe386d353", "2dcb96bacce3"] {
        assert!(
            m.extra.iter().any(|e| e.id.starts_with(must) && e.enabled),
            "{must} must be carried"
        );
    }
    for fx in &m.fixup {
        let text = fs::read_to_string(m.dir.join(&fx.file)).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("Upstream-Status: ")),
            "{}",
            fx.file
        );
        assert!(
            text.contains("\nChecked: "),
            "{} must say what its context was checked against",
            fx.file
        );
    }
    for frag in m
        .config
        .fragments
        .iter()
        .chain(&m.config.selftest_fragments)
    {
        assert!(m.dir.join(frag).is_file());
    }
    // The real manifest against the synthetic clone: its upstream ids are not there, and
    // the plan says so instead of failing.
    let h = history();
    let git = Git::open(&h.repo).unwrap();
    let p = plan(
        &git,
        &m,
        &PlanOptions {
            base: h.facts.base_tag.clone(),
            target: h.facts.target_tag.clone(),
            conditions_tree: None,
        },
    )
    .unwrap();
    assert!(p.attention.iter().any(|a| a.topic == "extra-missing"));
    assert!(p.extras.iter().any(|e| e.state == ExtraState::Disabled));
}

/// Deliverable of the transplant flow: where a clone exists, export+apply on one copy of the
/// BSP and transplant (from the target's files) on another give the same MPTCP path set,
/// except for what the manifest makes differ on purpose (the skipped commit).
#[test]
fn per_commit_and_transplant_give_the_same_path_set() {
    let h = history();
    let f = &h.facts;
    let dir = tempfile::tempdir().unwrap();
    let (m, series) = exported(dir.path(), true, &f.base_tag);
    let a = bsp(&dir.path().join("a"), &f.base_tag, true, false);
    let out = apply::apply(
        Action::Start { series, mode: None },
        &ApplyOptions {
            tree: a.clone(),
            source: None,
            manifest: Some(m.clone()),
        },
    )
    .unwrap();
    assert!(matches!(out, Outcome::Done { skipped: 0, .. }), "{out:?}");

    // The target's files as a plain 5.15.y tree (the synthetic Makefile never changes version).
    let src = dir.path().join("linux-5.15.7");
    fs::create_dir_all(&src).unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive {} | tar -x -C '{}'",
            h.repo.display(),
            f.target_tag,
            src.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(
        src.join("Makefile"),
        "VERSION = 5\nPATCHLEVEL = 15\nSUBLEVEL = 7\nEXTRAVERSION =\n",
    )
    .unwrap();
    // Core series: the core prerequisite the per-commit flow carries as an extra.
    let patch = Command::new("git")
        .arg("-C")
        .arg(&h.repo)
        .args(["format-patch", "-1", "--stdout", &f.prereq])
        .output()
        .unwrap();
    assert!(patch.status.success());
    fs::create_dir_all(m.dir.join("core")).unwrap();
    fs::write(m.dir.join("core/0001-prereq.patch"), &patch.stdout).unwrap();
    fs::write(m.dir.join("core/series"), "0001-prereq.patch\n").unwrap();

    let b = bsp(&dir.path().join("b"), &f.base_tag, false, false);
    let r = mptcp_backport::transplant::transplant(
        &m,
        &mptcp_backport::transplant::TransplantOptions {
            source: src,
            tree: b.clone(),
            sha256: None,
            allow_modified_source: false,
        },
    )
    .unwrap();
    assert!(r.changed);
    assert!(b.join("net/mptcp/BACKPORT").exists(), "fixup not applied");
    let c = mptcp_backport::transplant::compare_pathsets(&m, &a, &b).unwrap();
    assert!(c.only_in_a.is_empty() && c.only_in_b.is_empty(), "{c:#?}");
    // The two differences the per-commit flow makes on purpose: the skipped commit ("mptcp:
    // touch the renamed pm_new.c"), and 5.10.y's adapted backports ("commit X upstream.")
    // that the base keeps where the transplant has the 5.15 text.
    assert_eq!(
        c.differ,
        vec![
            "net/mptcp/pm_new.c".to_string(),
            "net/mptcp/protocol.c".to_string()
        ],
        "{c:#?}"
    );
    let (pa, pb) = (
        fs::read_to_string(a.join("net/mptcp/protocol.c")).unwrap(),
        fs::read_to_string(b.join("net/mptcp/protocol.c")).unwrap(),
    );
    let changed: Vec<(&str, &str)> = pa.lines().zip(pb.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(pa.lines().count(), pb.lines().count());
    assert!(!changed.is_empty());
    for (x, y) in &changed {
        assert_eq!(
            *x,
            format!("{y} adapted").replace(" */ adapted", " adapted */")
        );
    }
    // The core prerequisite arrived in both: every line it adds is in each tree.
    let diff = Command::new("git")
        .arg("-C")
        .arg(&h.repo)
        .args(["show", "--format=", &f.prereq])
        .output()
        .unwrap();
    let diff = String::from_utf8_lossy(&diff.stdout);
    let mut file = String::new();
    let mut checked = 0;
    for line in diff.lines() {
        if let Some(p) = line.strip_prefix("+++ b/") {
            file = p.to_string();
        } else if let Some(added) = line.strip_prefix('+') {
            for t in [&a, &b] {
                let text = fs::read_to_string(t.join(&file)).unwrap();
                assert!(
                    text.lines().any(|l| l == added),
                    "{file} in {} lacks {added:?}",
                    t.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "{diff}");
}
