// SPDX-License-Identifier: MIT OR Apache-2.0
//! Benchmark: `plan` against the field script's per-commit loop (one `git diff-tree` per
//! commit, seed-mptcp-5.10-to-5.15.txt §3.2) on the same synthetic history.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::git::Git;
use crate::manifest::Manifest;
use crate::plan::{plan, PlanOptions};
use crate::synth::{generate, Spec};

/// Path set of the benchmark; the field script's `grep -q "net/mptcp"` matches exactly these.
const BENCH_MANIFEST: &str = r#"
schema = 1
[product]
name = "bench"
version = "0"
description = "benchmark"
[source]
base = "v5.10"
target = "v5.15"
paths = ["net/mptcp/", "include/net/mptcp.h", "include/uapi/linux/mptcp.h", "include/trace/events/mptcp.h", "tools/testing/selftests/net/mptcp/"]
[target_kernel]
series = "5.10"
note = "bench"
[config]
fragments = []
selftest_fragments = []
"#;

/// The field script's selection loop, as published, minus `git format-patch` (plan does not
/// write patches either). A trailing newline is added to all.log so `read` sees the last hash.
const FIELD_LOOP: &str = r#"
set -e
cd "$REPO"
git log "$BASE..$TARGET" --pretty=format:"%H" --reverse > "$WORK/all.log"
echo >> "$WORK/all.log"
if [ -n "$LIMIT" ]; then head -n "$LIMIT" "$WORK/all.log" > "$WORK/some.log"; mv "$WORK/some.log" "$WORK/all.log"; fi
n=0
while read commit_hash; do
    [ -n "$commit_hash" ] || continue
    files=$(git diff-tree --no-commit-id --name-only -r $commit_hash)
    if echo "$files" | grep -q "net/mptcp"; then
        commit_subject=$(git show -s --format=%s $commit_hash)
        n=$((n + 1))
    fi
done < "$WORK/all.log"
wc -l < "$WORK/all.log"
echo "$n"
"#;

/// Benchmark options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub commits: usize,
    /// Where the history lives (reused when it already exists).
    pub dir: PathBuf,
    /// Run the field loop on the first N commits only and extrapolate linearly.
    pub field_limit: Option<usize>,
}

/// Run the benchmark and print the report to `out`.
pub fn bench(opts: &BenchOptions, out: &mut dyn Write) -> Result<f64> {
    let repo = opts.dir.join(format!("history-{}", opts.commits));
    let t = Instant::now();
    if !repo.join(".git").exists() {
        let tmp = opts.dir.join(format!("history-{}.tmp", opts.commits));
        let _ = std::fs::remove_dir_all(&tmp);
        generate(&tmp, &Spec::bench(opts.commits))?;
        std::fs::rename(&tmp, &repo).map_err(|e| Error::io(&repo, e))?;
        let _ = writeln!(
            out,
            "generated a synthetic history in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            repo.display()
        );
    } else {
        let _ = writeln!(out, "reusing the synthetic history {}", repo.display());
    }
    let git = Git::open(&repo)?;
    let tags = git.run_text(&["tag", "-l", "v5.*"])?;
    let latest = |prefix: &str| -> Option<String> {
        tags.lines()
            .filter(|t| t.starts_with(prefix))
            .max_by_key(|t| t[prefix.len()..].parse::<u32>().unwrap_or(0))
            .map(str::to_string)
    };
    let base = latest("v5.10.").ok_or_else(|| Error::parse("bench history", "no v5.10.N tag"))?;
    let target = latest("v5.15.").ok_or_else(|| Error::parse("bench history", "no v5.15.N tag"))?;
    let manifest = Manifest::parse(BENCH_MANIFEST).map_err(|m| Error::Manifest {
        path: "bench".into(),
        message: m,
    })?;

    let t = Instant::now();
    let p = plan(
        &git,
        &manifest,
        &PlanOptions {
            base: base.clone(),
            target: target.clone(),
            conditions_tree: None,
        },
    )?;
    let plan_secs = t.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "plan {base}..{target}: {:.2} s for {} commits ({} touching the path set, {} dropped as already in base)",
        plan_secs,
        p.scanned,
        p.touching_paths,
        p.dropped.len()
    );

    let work = tempfile_dir(&opts.dir)?;
    let limit = opts.field_limit.map(|n| n.to_string()).unwrap_or_default();
    let t = Instant::now();
    let res = Command::new("bash")
        .arg("-c")
        .arg(FIELD_LOOP)
        .env("REPO", &repo)
        .env("WORK", &work)
        .env("BASE", &base)
        .env("TARGET", &target)
        .env("LIMIT", &limit)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: "bash".into(),
            message: e.to_string(),
        })?;
    let field_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&work);
    if !res.status.success() {
        return Err(Error::Command {
            command: "field loop".into(),
            message: String::from_utf8_lossy(&res.stderr).into_owned(),
        });
    }
    let text = String::from_utf8_lossy(&res.stdout);
    let mut nums = text.lines().filter_map(|l| l.trim().parse::<usize>().ok());
    let looped = nums.next().unwrap_or(0);
    let found = nums.next().unwrap_or(0);
    let (field_full, covered, note) = if opts.field_limit.is_some() && looped < p.scanned {
        let est = field_secs * p.scanned as f64 / looped.max(1) as f64;
        (
            est,
            p.scanned,
            format!(
                " (EXTRAPOLATED linearly: measured {field_secs:.1} s on the first {looped} commits, \
                 {found} of them touching net/mptcp)"
            ),
        )
    } else {
        (field_secs, looped, format!(", {found} touching net/mptcp"))
    };
    let _ = writeln!(
        out,
        "field per-commit loop: {field_full:.1} s for {covered} commits{note}"
    );
    if opts.field_limit.is_none() {
        let agree = if found == p.touching_paths {
            "yes"
        } else {
            "NO"
        };
        let _ = writeln!(
            out,
            "selection agrees with plan: {agree} ({found} vs {})",
            p.touching_paths
        );
    }
    let ratio = field_full / plan_secs.max(1e-6);
    let _ = writeln!(out, "speed-up: {ratio:.1}x (required: >= 20x)");
    Ok(ratio)
}

fn tempfile_dir(base: &Path) -> Result<PathBuf> {
    let dir = base.join(format!("field-work-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(dir)
}
