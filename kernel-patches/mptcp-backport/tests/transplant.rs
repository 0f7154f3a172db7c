// SPDX-License-Identifier: MIT OR Apache-2.0
//! `transplant` on small synthetic trees made here: a 5.10 BSP (git with Debian's "ignore the
//! whole top level" .gitignore, or plain), a 5.15 source (directory, git or tarball), a core
//! series whose patch only applies before the path-set copy, and a fixup that only applies
//! after it (so the order is proven).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mptcp_backport::manifest::Manifest;
use mptcp_backport::transplant::{
    compare_pathsets, read_pathset, read_provenance, transplant, TransplantOptions, PROVENANCE_FILE,
};
use mptcp_backport::Error;

const PATHS: &str = r#"["net/mptcp/", "include/net/mptcp.h", "include/uapi/linux/mptcp.h", "tools/testing/selftests/net/mptcp/"]"#;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn makefile(v: &str) -> String {
    let parts: Vec<&str> = v.split('.').collect();
    format!(
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\nEXTRAVERSION =\n",
        parts[0], parts[1], parts[2]
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A 5.10 BSP tree. Git: committed with `git add -f` under a Debian-like .gitignore.
fn bsp(dir: &Path, version: &str, git_repo: bool) -> PathBuf {
    let t = dir.join(if git_repo { "bsp-git" } else { "bsp-plain" });
    write(&t, "Makefile", &makefile(version));
    write(&t, "Kconfig", "source \"net/Kconfig\"\n");
    write(&t, "net/Kconfig", "config NET\n\tbool \"net\"\n");
    write(&t, "net/ipv4/tcp.c", "int tcp_a;\nint tcp_b;\nint tcp_c;\n");
    write(
        &t,
        "net/mptcp/protocol.c",
        "/* 5.10 protocol */\nint old_proto;\nint x;\n",
    );
    write(&t, "net/mptcp/old_only.c", "/* gone in 5.15 */\n");
    write(&t, "include/net/mptcp.h", "/* 5.10 header */\n");
    if git_repo {
        write(&t, ".gitignore", ".*\n*.o\n/*\n!/debian/\n");
        git(&t, &["init", "-q"]);
        git(&t, &["add", "-f", "-A", "."]);
        git(&t, &["commit", "-qm", "BSP"]);
    }
    t
}

/// A 5.15 source tree (plain).
fn source(dir: &Path, version: &str) -> PathBuf {
    let s = dir.join(format!("linux-{version}"));
    write(&s, "Makefile", &makefile(version));
    write(&s, "Kconfig", "source \"net/Kconfig\"\n");
    write(&s, "net/Kconfig", "config NET\n\tbool \"net\"\n");
    // Outside the path set: must never be copied.
    write(
        &s,
        "net/ipv4/tcp.c",
        "/* 5.15 tcp.c: must not be copied */\n",
    );
    write(
        &s,
        "net/mptcp/protocol.c",
        "/* 5.15 protocol */\nint new_proto;\n",
    );
    write(&s, "net/mptcp/sockopt.c", "/* 5.15 sockopt */\nint so;\n");
    write(&s, "include/net/mptcp.h", "/* 5.15 header */\n");
    write(&s, "include/uapi/linux/mptcp.h", "/* 5.15 uapi */\n");
    let sh = s.join("tools/testing/selftests/net/mptcp/mptcp_join.sh");
    write(
        &s,
        "tools/testing/selftests/net/mptcp/mptcp_join.sh",
        "#!/bin/sh\n",
    );
    fs::set_permissions(&sh, fs::Permissions::from_mode(0o755)).unwrap();
    s
}

fn patch(subject: &str, diff: &str) -> String {
    format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: Test <t@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [PATCH] {subject}\n\nUpstream-Status: Inappropriate [test]\n---\n{diff}"
    )
}

/// Core patch 1: a core change plus a 5.10 MPTCP adaptation (context only exists before the copy).
const CORE1: &str = "diff --git a/net/ipv4/tcp.c b/net/ipv4/tcp.c
--- a/net/ipv4/tcp.c
+++ b/net/ipv4/tcp.c
@@ -1,3 +1,4 @@
 int tcp_a;
 int tcp_b;
+int tcp_core_helper;
 int tcp_c;
diff --git a/net/mptcp/protocol.c b/net/mptcp/protocol.c
--- a/net/mptcp/protocol.c
+++ b/net/mptcp/protocol.c
@@ -1,3 +1,4 @@
 /* 5.10 protocol */
 int old_proto;
+int core_alone_builds;
 int x;
";

/// Core patch 2 that does not apply (context absent).
const CORE_BAD: &str = "diff --git a/net/ipv4/tcp.c b/net/ipv4/tcp.c
--- a/net/ipv4/tcp.c
+++ b/net/ipv4/tcp.c
@@ -1,2 +1,3 @@
 int no_such_line;
+int never;
 int tcp_b;
";

/// Fixup: context only exists after the copy (5.15 sockopt.c).
const FIXUP: &str = "diff --git a/net/mptcp/sockopt.c b/net/mptcp/sockopt.c
--- a/net/mptcp/sockopt.c
+++ b/net/mptcp/sockopt.c
@@ -1,2 +1,3 @@
 /* 5.15 sockopt */
 int so;
+int fixed_for_510;
";

/// Fixup whose condition does not hold.
const FIXUP_UNNEEDED: &str = "diff --git a/net/ipv4/tcp.c b/net/ipv4/tcp.c
--- a/net/ipv4/tcp.c
+++ b/net/ipv4/tcp.c
@@ -1,1 +1,2 @@
 int tcp_a;
+int unneeded;
";

/// Manifest dir with core series and fixups; `digest`: proven 5.15.162 digest (if any).
fn manifest(dir: &Path, digest: Option<&str>, bad_core: bool) -> Manifest {
    let m = dir.join("m");
    write(
        &m,
        "core/0001-core.patch",
        &patch("tcp: core helper", CORE1),
    );
    let mut series = "# test core series\n0001-core.patch\n".to_string();
    if bad_core {
        write(
            &m,
            "core/0002-bad.patch",
            &patch("tcp: does not apply", CORE_BAD),
        );
        series.push_str("0002-bad.patch\n");
    }
    write(&m, "core/series", &series);
    write(
        &m,
        "fixups/0001-fix.patch",
        &patch("mptcp: 5.10 fix", FIXUP),
    );
    write(
        &m,
        "fixups/0002-unneeded.patch",
        &patch("tcp: unneeded", FIXUP_UNNEEDED),
    );
    let mut text = format!(
        "schema = 1\n[product]\nname = \"t\"\nversion = \"5.15.162-1\"\ndescription = \"d\"\n[source]\nbase = \"v5.10.66\"\ntarget = \"v5.15.162\"\npaths = {PATHS}\n[target_kernel]\nseries = \"5.10\"\nnote = \"n\"\n[config]\nfragments = []\nselftest_fragments = []\n\n[[fixup]]\nfile = \"fixups/0001-fix.patch\"\nafter = \"end\"\nwhy = \"w\"\nwhen = {{ file = \"net/mptcp/sockopt.c\", lacks = \"fixed_for_510\" }}\n\n[[fixup]]\nfile = \"fixups/0002-unneeded.patch\"\nafter = \"end\"\nwhy = \"w\"\nwhen = {{ file = \"net/ipv4/tcp.c\", contains = \"no such text\" }}\n"
    );
    if let Some(d) = digest {
        text.push_str(&format!(
            "\n[transplant]\ncore_series = \"core/series\"\n[[transplant.source]]\nversion = \"5.15.162\"\npathset_sha256 = \"{d}\"\n"
        ));
    }
    write(&m, "series.toml", &text);
    Manifest::load(&m.join("series.toml")).unwrap()
}

fn digest_of(src: &Path, m: &Manifest) -> String {
    mptcp_backport::transplant::source_digest(m, src).unwrap().1
}

fn opts(source: &Path, tree: &Path) -> TransplantOptions {
    TransplantOptions {
        source: source.to_path_buf(),
        tree: tree.to_path_buf(),
        sha256: None,
        allow_modified_source: false,
    }
}

fn proven(dir: &Path) -> (Manifest, PathBuf) {
    let src = source(dir, "5.15.162");
    let plain = manifest(&dir.join("tmp"), None, false);
    let d = digest_of(&src, &plain);
    (manifest(dir, Some(&d), false), src)
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

fn check_transplanted(tree: &Path) {
    // Core change outside the path set stays; 5.15's tcp.c is not copied.
    assert!(read(&tree.join("net/ipv4/tcp.c")).contains("tcp_core_helper"));
    // The core patch's path-set hunk was overwritten by the copy.
    assert_eq!(
        read(&tree.join("net/mptcp/protocol.c")),
        "/* 5.15 protocol */\nint new_proto;\n"
    );
    assert!(!tree.join("net/mptcp/old_only.c").exists());
    // The fixup applied on top of the copied file.
    assert!(read(&tree.join("net/mptcp/sockopt.c")).contains("fixed_for_510"));
    assert!(!read(&tree.join("net/ipv4/tcp.c")).contains("unneeded"));
    let mode = fs::metadata(tree.join("tools/testing/selftests/net/mptcp/mptcp_join.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "selftest lost its x bit: {mode:o}");
    assert_eq!(
        read(&tree.join("include/uapi/linux/mptcp.h")),
        "/* 5.15 uapi */\n"
    );
}

#[test]
fn git_tree_from_a_directory_source() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    let r = transplant(&m, &opts(&src, &tree)).unwrap();
    assert!(r.changed);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    check_transplanted(&tree);
    // base + core + copy + fixup + provenance, in this order.
    let log = git(&tree, &["log", "--format=%s"]);
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(subjects.len(), 5, "{log}");
    assert_eq!(subjects[4], "BSP");
    assert_eq!(subjects[3], "tcp: core helper");
    assert!(subjects[2].starts_with("mptcp: MPTCP path set of Linux 5.15.162"));
    assert_eq!(subjects[1], "mptcp: 5.10 fix");
    assert!(subjects[0].starts_with("mptcp-backport: transplant provenance"));
    let body = git(&tree, &["log", "-1", "--format=%b", "HEAD~2"]);
    assert!(body.contains(&r.provenance.source.pathset_sha256), "{body}");
    // Everything committed (the Debian-like .gitignore ignores the whole top level).
    assert_eq!(git(&tree, &["status", "--porcelain", "--ignored"]), "");
    assert!(git(&tree, &["ls-files"]).contains("net/mptcp/sockopt.c"));
    assert!(git(&tree, &["ls-files"]).contains(PROVENANCE_FILE));
    // Provenance.
    let p = read_provenance(&tree).unwrap().unwrap();
    assert_eq!(p, r.provenance);
    assert_eq!(p.source.version, "5.15.162");
    assert_eq!(p.source.kind, "directory");
    assert!(p.source.proven && !p.source.modified_allowed);
    assert_eq!(p.source.tarball_sha256, None);
    assert_eq!(p.base_kernel, "5.10.223");
    assert_eq!(p.manifest_version, "5.15.162-1");
    assert_eq!(p.core.len(), 1);
    assert_eq!(p.core[0].file, "core/0001-core.patch");
    assert_eq!(p.core[0].sha256.len(), 64);
    assert_eq!(p.fixups.len(), 2);
    assert!(p.fixups[0].applied && !p.fixups[1].applied);
    assert!(!p.time.is_empty());
}

#[test]
fn plain_tree_from_a_tarball_with_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tarball = dir.path().join("linux-5.15.162.tar.xz");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cJf")
        .arg(&tarball)
        .arg("linux-5.15.162")
        .status()
        .unwrap();
    assert!(st.success());
    let sha = mptcp_backport::sha256::file_hex(&tarball).unwrap();
    let tree = bsp(dir.path(), "5.10.66", false);

    // Wrong --sha256: refused before anything is touched.
    let mut o = opts(&tarball, &tree);
    o.sha256 = Some("0".repeat(64));
    assert!(matches!(
        transplant(&m, &o),
        Err(Error::Sha256Mismatch { .. })
    ));
    assert!(tree.join("net/mptcp/old_only.c").exists());

    o.sha256 = Some(sha.to_uppercase());
    let r = transplant(&m, &o).unwrap();
    assert!(r.changed && r.warnings.is_empty(), "{:?}", r.warnings);
    check_transplanted(&tree);
    let p = read_provenance(&tree).unwrap().unwrap();
    assert_eq!(p.source.kind, "tarball");
    assert_eq!(p.source.tarball_sha256.as_deref(), Some(sha.as_str()));
    assert!(p.source.proven);
    assert_eq!(p.base_kernel, "5.10.66");
    // Same digest from the tarball as from the directory.
    assert_eq!(p.source.pathset_sha256, digest_of(&src, &m));

    // Idempotent: the same inputs again are a no-op.
    let again = transplant(&m, &o).unwrap();
    assert!(!again.changed);
    assert_eq!(again.provenance, p);
}

#[test]
fn git_source_counts_tracked_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let before = digest_of(&src, &m);
    git(&src, &["init", "-q"]);
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-qm", "5.15.162"]);
    // A build output in the source tree is not part of the path set.
    write(
        &src,
        "tools/testing/selftests/net/mptcp/mptcp_connect",
        "ELF",
    );
    fs::write(src.join(".git/info/exclude"), "mptcp_connect\n").unwrap();
    assert_eq!(digest_of(&src, &m), before);
    let tree = bsp(dir.path(), "5.10.223", true);
    let r = transplant(&m, &opts(&src, &tree)).unwrap();
    assert_eq!(r.provenance.source.kind, "git");
    assert!(!tree
        .join("tools/testing/selftests/net/mptcp/mptcp_connect")
        .exists());
}

#[test]
fn versions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    // Base not 5.10.
    let tree = bsp(dir.path(), "5.4.200", false);
    assert!(matches!(
        transplant(&m, &opts(&src, &tree)),
        Err(Error::BaseVersion { ref found, .. }) if found == "5.4.200"
    ));
    // Source not 5.15.
    let old = source(dir.path(), "5.14.21");
    let tree = bsp(dir.path(), "5.10.223", true);
    assert!(matches!(
        transplant(&m, &opts(&old, &tree)),
        Err(Error::SourceVersion { ref found, .. }) if found == "5.14.21"
    ));
    // Unknown 5.15.y: proceeds with a warning naming the proven version.
    let newer = source(dir.path(), "5.15.170");
    let r = transplant(&m, &opts(&newer, &tree)).unwrap();
    assert!(!r.provenance.source.proven);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("5.15.170") && r.warnings[0].contains("5.15.162"));
}

#[test]
fn dirty_git_trees_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    // A tracked change.
    write(&tree, "net/ipv4/tcp.c", "int changed;\n");
    assert!(matches!(
        transplant(&m, &opts(&src, &tree)),
        Err(Error::DirtyTree { .. })
    ));
    git(&tree, &["checkout", "--", "net/ipv4/tcp.c"]);
    // An untracked file that is not ignored (the Debian top-level rule has an exception).
    write(&tree, "debian/rules", "x\n");
    assert!(matches!(
        transplant(&m, &opts(&src, &tree)),
        Err(Error::DirtyTree { .. })
    ));
    fs::remove_dir_all(tree.join("debian")).unwrap();
    // Ignored build outputs are not dirt.
    write(&tree, "net/ipv4/tcp.o", "obj");
    transplant(&m, &opts(&src, &tree)).unwrap();
}

#[test]
fn modified_sources_and_changed_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    write(&src, "net/mptcp/protocol.c", "/* locally patched 5.15 */\n");
    let e = transplant(&m, &opts(&src, &tree)).unwrap_err();
    assert!(matches!(e, Error::PathsetMismatch { .. }), "{e}");
    // Untouched.
    assert_eq!(git(&tree, &["rev-list", "--count", "HEAD"]).trim(), "1");
    let mut o = opts(&src, &tree);
    o.allow_modified_source = true;
    let r = transplant(&m, &o).unwrap();
    assert!(r.provenance.source.modified_allowed && !r.provenance.source.proven);
    assert!(r.warnings[0].contains("modified"));
    // The same (modified) inputs: no-op. Other inputs: refused, saying what differs.
    assert!(!transplant(&m, &o).unwrap().changed);
    write(&src, "net/mptcp/protocol.c", "/* patched again */\n");
    match transplant(&m, &o) {
        Err(Error::AlreadyTransplanted { differences, .. }) => {
            assert!(differences.contains("path-set sha256"), "{differences}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failing_core_patch_leaves_the_last_good_commit() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "5.15.162");
    let m = manifest(dir.path(), None, true);
    let tree = bsp(dir.path(), "5.10.223", true);
    match transplant(&m, &opts(&src, &tree)) {
        Err(Error::PatchFailed { step, patch, .. }) => {
            assert_eq!(step, "core patch");
            assert!(patch.ends_with("core/0002-bad.patch"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        git(&tree, &["log", "-1", "--format=%s"]).trim(),
        "tcp: core helper"
    );
    assert_eq!(git(&tree, &["status", "--porcelain"]), "");
    assert!(!tree.join(".git/rebase-apply").exists());
    assert!(read_provenance(&tree).unwrap().is_none());
    // Plain tree: refused at the same patch, nothing of the bad patch written.
    let plain = bsp(dir.path(), "5.10.223", false);
    assert!(matches!(
        transplant(&m, &opts(&src, &plain)),
        Err(Error::PatchFailed { .. })
    ));
    assert!(!read(&plain.join("net/ipv4/tcp.c")).contains("never"));
}

/// A fixup that fails after the copy: HEAD stays at the path-set commit; running again says
/// the earlier run stopped part-way and how to go back, instead of failing on the core series.
#[test]
fn a_failing_fixup_then_a_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    // The fixup's context is not in this source's sockopt.c.
    write(&src, "net/mptcp/sockopt.c", "/* other 5.15 sockopt */\n");
    let mut o = opts(&src, &bsp(dir.path(), "5.10.223", true));
    o.allow_modified_source = true;
    match transplant(&m, &o) {
        Err(Error::PatchFailed { step, .. }) => assert_eq!(step, "fixup"),
        other => panic!("{other:?}"),
    }
    let tree = o.tree.clone();
    assert!(git(&tree, &["log", "-1", "--format=%s"]).starts_with("mptcp: MPTCP path set"));
    assert_eq!(git(&tree, &["status", "--porcelain"]), "");
    match transplant(&m, &o) {
        Err(Error::PartialTransplant { reset_to, .. }) => {
            // The advice is right: it leads back to the BSP commit.
            git(&tree, &["reset", "-q", "--hard", &reset_to]);
            assert_eq!(git(&tree, &["log", "-1", "--format=%s"]).trim(), "BSP");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn compare_pathset_names_the_differences() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let a = bsp(dir.path(), "5.10.223", true);
    let b = bsp(dir.path(), "5.10.223", false);
    transplant(&m, &opts(&src, &a)).unwrap();
    transplant(&m, &opts(&src, &b)).unwrap();
    let c = compare_pathsets(&m, &a, &b).unwrap();
    assert!(c.same, "{c:?}");
    assert_eq!(c.a_sha256, c.b_sha256);
    write(&b, "net/mptcp/extra.c", "x\n");
    write(&b, "include/net/mptcp.h", "changed\n");
    fs::remove_file(b.join("net/mptcp/sockopt.c")).unwrap();
    let c = compare_pathsets(&m, &a, &b).unwrap();
    assert!(!c.same);
    assert_eq!(c.only_in_a, vec!["net/mptcp/sockopt.c"]);
    assert_eq!(c.only_in_b, vec!["net/mptcp/extra.c"]);
    assert_eq!(c.differ, vec!["include/net/mptcp.h"]);
    // The CLI exits 1 on a difference.
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"))
        .arg("--manifest")
        .arg(m.dir.join("series.toml"))
        .arg("compare-pathset")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("differs:   include/net/mptcp.h"));
    // The path-set reader sees what is on disk.
    assert!(read_pathset(&b, &m.source.paths, false)
        .unwrap()
        .contains_key("net/mptcp/extra.c"));
}

#[test]
fn cli_transplant_and_verify_show_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mptcp-backport"))
            .arg("--manifest")
            .arg(m.dir.join("series.toml"))
            .args(args)
            .output()
            .unwrap()
    };
    let (s, t) = (src.to_str().unwrap(), tree.to_str().unwrap());
    let out = run(&["transplant", "--source", s, "--tree", t, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changed"], true);
    assert_eq!(v["provenance"]["source"]["version"], "5.15.162");
    let out = run(&["transplant", "--source", s, "--tree", t]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already transplanted"));
    // --sha256 on a directory source is a usage error.
    let out = run(&["transplant", "--source", s, "--tree", t, "--sha256", "ab"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["verify", "--tree", t]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Transplanted"), "{text}");
    assert!(text.contains("Text checks"), "{text}");
    assert!(text.contains("not booted"), "{text}");
}

/// The manifest named by a relative path (the documented `./kernel-patches/series.toml` from the
/// repository root): its patches must still be found by git am running inside the kernel tree.
#[test]
fn relative_manifest_path_from_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    let parent = m.dir.parent().unwrap();
    let rel = Path::new(m.dir.file_name().unwrap()).join("series.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"))
        .current_dir(parent)
        .arg("--manifest")
        .arg(&rel)
        .args(["transplant", "--source"])
        .arg(&src)
        .arg("--tree")
        .arg(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `verify --boot` drives kmx as `kmx build --source TREE` then `kmx run --source TREE --
/// PROBE probe`. A stand-in kmx that runs the command on this machine checks the plumbing
/// (the real boot is `kmx`'s job, tested with testing/kernel-matrix).
#[test]
fn verify_boot_runs_probe_through_kmx() {
    let dir = tempfile::tempdir().unwrap();
    let (m, src) = proven(dir.path());
    let tree = bsp(dir.path(), "5.10.223", true);
    transplant(&m, &opts(&src, &tree)).unwrap();
    let kmx = dir.path().join("kmx");
    let log = dir.path().join("kmx.log");
    fs::write(
        &kmx,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\ncase \"$1\" in\n  build) [ -n \"$FAIL_BUILD\" ] && exit 3; exit 0 ;;\n  run) while [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\" ;;\nesac\nexit 2\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&kmx, fs::Permissions::from_mode(0o755)).unwrap();
    let verify = |fail_build: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mptcp-backport"));
        cmd.arg("--manifest")
            .arg(m.dir.join("series.toml"))
            .args(["verify", "--json", "--boot", "--kmx"])
            .arg(&kmx)
            .arg("--tree")
            .arg(&tree);
        if fail_build {
            cmd.env("FAIL_BUILD", "1");
        }
        let out = cmd.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), v)
    };
    let (code, v) = verify(true);
    assert_eq!(code, Some(1));
    assert_eq!(v["boot"]["built"], false);
    let (code, v) = verify(false);
    let calls = read(&log);
    let tree_s = fs::canonicalize(&tree).unwrap().display().to_string();
    assert!(
        calls.contains(&format!("build --source {tree_s}")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!("run --source {tree_s} -- ")) && calls.contains(" probe"),
        "{calls}"
    );
    let lines = v["boot"]["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().contains("sysctl net.mptcp.enabled")),
        "{v}"
    );
    // The probe passes only as root on an MPTCP kernel; verify's verdict follows it.
    let root = nix::unistd::geteuid().is_root();
    let mptcp = Path::new("/proc/sys/net/mptcp/stale_loss_cnt").exists();
    assert_eq!(v["boot"]["ok"], root && mptcp, "{v}");
    assert_eq!(code, Some(if root && mptcp { 0 } else { 1 }), "{v}");
}
