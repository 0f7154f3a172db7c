// SPDX-License-Identifier: MIT OR Apache-2.0
//! `mptcp-backport`: carry the Linux 5.15 MPTCP stack onto 5.10 BSP kernels.
//!
//! Exit status: 0 success; 1 error (or `verify` found something missing); 2 `apply` stopped
//! on a conflict (fix it, then `apply --continue`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use mptcp_backport::apply::{self, Action, ApplyOptions, Mode, Outcome};
#[cfg(feature = "bench")]
use mptcp_backport::bench::{bench, BenchOptions};
use mptcp_backport::export::export;
use mptcp_backport::git::Git;
use mptcp_backport::manifest::Manifest;
use mptcp_backport::plan::{plan, render_text, PlanOptions};
use mptcp_backport::verify::{self, ConfigOptions, VerifyOptions};
use mptcp_backport::{probe, transplant};
use mptcp_backport::{Error, Result};

/// Plan, export, apply and verify the Linux 5.15 MPTCP backport onto 5.10 BSP kernels.
///
/// The series comes from your linux-stable clone: every commit of BASE..TARGET that touches
/// the manifest's path set, the extra core commits the manifest lists, minus what the base
/// already has, plus our fixups. Patches are always full commits (never path-limited).
#[derive(Parser, Debug)]
#[command(
    name = "mptcp-backport",
    version,
    about,
    long_about = None,
    after_help = "Exit status: 0 ok; 1 error, or `verify` found something missing; 2 `apply` stopped on a conflict.\nGuide: docs/backport-guide.md"
)]
struct Cli {
    /// Series manifest [default: $MPTCP_BACKPORT_MANIFEST, ./kernel-patches/series.toml,
    /// or <prefix>/share/mptcp-backport/series.toml next to the binary]
    #[arg(long, global = true, value_name = "FILE")]
    manifest: Option<PathBuf>,

    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// List the series (in order) and report what needs attention; nothing is written.
    Plan {
        #[command(flatten)]
        range: RangeArgs,
        /// Also list every patch of the series.
        #[arg(long)]
        list: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the series: numbered full patches with provenance headers, `series`, `export.json`.
    Export {
        #[command(flatten)]
        range: RangeArgs,
        /// Output directory (created; must be empty unless --force).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace an earlier export in DIR.
        #[arg(long)]
        force: bool,
        /// Print the export summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Apply an exported series to a BSP tree (git: `git am -3`; plain: `patch -p1`).
    Apply {
        /// The BSP kernel tree.
        #[arg(long, value_name = "DIR")]
        tree: PathBuf,
        /// Exported series directory (starts a session).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["cont", "skip", "abort"], required_unless_present_any = ["cont", "skip", "abort"])]
        series: Option<PathBuf>,
        /// Resume after fixing the conflicting patch (git: resolve and `git add` first).
        #[arg(long = "continue", id = "cont")]
        cont: bool,
        /// Leave the conflicting patch out and go on.
        #[arg(long, conflicts_with_all = ["cont", "abort"])]
        skip: bool,
        /// End the session (git: `git am --abort` undoes its current run; plain: applied patches stay).
        #[arg(long, conflicts_with_all = ["cont", "skip"])]
        abort: bool,
        /// Force a mode [default: git when the tree is a git work tree, else plain].
        #[arg(long, value_enum)]
        mode: Option<ModeArg>,
        /// linux-stable clone for conflict analysis [default: the one recorded by export].
        #[arg(long, value_name = "DIR")]
        source: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Carry the 5.15 MPTCP stack onto a 5.10 tree from a 5.15.y tree or tarball (no clone
    /// needed): our core series, then the path set copied from SRC, then our fixups.
    Transplant {
        /// 5.15.y kernel tree (plain or git) or tarball (.tar, .tar.gz, .tgz, .tar.xz).
        #[arg(long, value_name = "SRC")]
        source: PathBuf,
        /// The 5.10.y BSP tree (git work tree or plain directory).
        #[arg(long, value_name = "BSP")]
        tree: PathBuf,
        /// Expected sha256 of a tarball SRC; a mismatch is an error.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// Take a proven 5.15.y version whose path set differs from the manifest's digest
        /// (recorded in the provenance).
        #[arg(long)]
        allow_modified_source: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the MPTCP path set of two kernel trees (e.g. per-commit flow vs transplant).
    ComparePathset {
        /// First tree.
        tree_a: PathBuf,
        /// Second tree.
        tree_b: PathBuf,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the version and path-set sha256 of a 5.15.y tree or tarball (for
    /// `[[transplant.source]]` in the manifest).
    PathsetDigest {
        /// Kernel tree or tarball.
        source: PathBuf,
    },
    /// Check what the running kernel really does (run as root, e.g. inside `verify --boot`):
    /// 5.15 sysctls, PM netlink commands and events, a transfer whose second subflow joins,
    /// SO_TIMESTAMPNS on an MPTCP socket. Exit 1 on any failure.
    Probe {
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a kernel tree: MPTCP features, the config fragments through kconfig, compile.
    Verify {
        /// Kernel source tree.
        #[arg(long, value_name = "DIR")]
        tree: PathBuf,
        /// Merge the product fragment(s) with the kernel's kconfig and check the final .config.
        #[arg(long)]
        config: bool,
        /// Also merge the selftest fragment(s) (test kernels).
        #[arg(long, requires = "config")]
        selftests: bool,
        /// Additional fragment to merge after the manifest's (repeatable).
        #[arg(long, value_name = "FILE", requires = "config")]
        fragment: Vec<PathBuf>,
        /// Build directory (O=) [default: the tree itself].
        #[arg(long, value_name = "DIR")]
        build_dir: Option<PathBuf>,
        /// Start from this target when the build directory has no .config.
        #[arg(long, default_value = "defconfig")]
        defconfig: String,
        /// ARCH= for make.
        #[arg(long)]
        arch: Option<String>,
        /// CROSS_COMPILE= for make.
        #[arg(long)]
        cross_compile: Option<String>,
        /// Also compile net/mptcp/ (needs --config).
        #[arg(long, requires = "config")]
        compile: bool,
        /// Parallel make jobs [default: number of CPUs].
        #[arg(short = 'j', long)]
        jobs: Option<usize>,
        /// Build and boot the tree with testing/kernel-matrix/kmx and run `mptcp-backport
        /// probe` in the guest: what the kernel does, not only what its source says.
        #[arg(long)]
        boot: bool,
        /// kmx to use for --boot [default: <manifest dir>/../testing/kernel-matrix/kmx].
        #[arg(long, value_name = "PATH", requires = "boot")]
        kmx: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark `plan` against the field script's per-commit loop on a synthetic history.
    #[cfg(feature = "bench")]
    Bench {
        /// Commits in the planned range.
        #[arg(long, default_value_t = 100_000)]
        commits: usize,
        /// Where to build (and reuse) the synthetic history.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "target/mptcp-backport-bench"
        )]
        dir: PathBuf,
        /// Time the field loop on the first N commits only and extrapolate (said in the output).
        #[arg(long, value_name = "N")]
        field_limit: Option<usize>,
    },
}

#[derive(Args, Debug)]
struct RangeArgs {
    /// linux-stable clone (with the base and target tags).
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// Base tag: the 5.10.y release the BSP is built on [default: the manifest's].
    #[arg(long)]
    base: Option<String>,
    /// Target tag [default: the manifest's].
    #[arg(long)]
    target: Option<String>,
    /// Evaluate manifest conditions on this tree (the real BSP) instead of the base tag.
    #[arg(long, value_name = "DIR")]
    conditions_tree: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Git,
    Plain,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mptcp-backport: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn find_manifest(arg: Option<&Path>) -> Result<Manifest> {
    if let Some(p) = arg {
        return Manifest::load(p);
    }
    if let Some(p) = std::env::var_os("MPTCP_BACKPORT_MANIFEST") {
        return Manifest::load(Path::new(&p));
    }
    let mut tried = vec![PathBuf::from("kernel-patches/series.toml")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            tried.push(prefix.join("share/mptcp-backport/series.toml"));
        }
    }
    for p in &tried {
        if p.is_file() {
            return Manifest::load(p);
        }
    }
    Err(Error::Usage(format!(
        "no manifest found (tried {}); give --manifest FILE",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn plan_for(manifest: &Manifest, range: &RangeArgs) -> Result<(Git, mptcp_backport::plan::Plan)> {
    let git = Git::open(&range.repo)?;
    let opts = PlanOptions {
        base: range
            .base
            .clone()
            .unwrap_or_else(|| manifest.source.base.clone()),
        target: range
            .target
            .clone()
            .unwrap_or_else(|| manifest.source.target.clone()),
        conditions_tree: range.conditions_tree.clone(),
    };
    let p = plan(&git, manifest, &opts)?;
    Ok((git, p))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::parse("JSON output", e.to_string()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Commands::Plan { range, list, json } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let (_, p) = plan_for(&manifest, &range)?;
            if json {
                println!("{}", to_json(&p)?);
            } else {
                print!("{}", render_text(&p, list));
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Export {
            range,
            out,
            force,
            json,
        } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let (git, p) = plan_for(&manifest, &range)?;
            let info = export(&git, &manifest, &p, &out, force)?;
            if json {
                println!("{}", to_json(&info)?);
            } else {
                print!("{}", render_text(&p, false));
                println!(
                    "\nexported {} patches to {} (series, export.json)",
                    info.patches.len(),
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Apply {
            tree,
            series,
            cont,
            skip,
            abort,
            mode,
            source,
            json,
        } => {
            // The manifest is optional here: it only adds hints to conflict reports.
            let manifest = find_manifest(cli.manifest.as_deref()).ok();
            let action = match (series, cont, skip, abort) {
                (Some(s), _, _, _) => Action::Start {
                    series: s,
                    mode: mode.map(|m| match m {
                        ModeArg::Git => Mode::Git,
                        ModeArg::Plain => Mode::Plain,
                    }),
                },
                (None, true, _, _) => Action::Continue,
                (None, _, true, _) => Action::Skip,
                (None, _, _, true) => Action::Abort,
                _ => {
                    return Err(Error::Usage(
                        "give --series DIR, --continue, --skip or --abort".into(),
                    ))
                }
            };
            let outcome = apply::apply(
                action,
                &ApplyOptions {
                    tree,
                    source,
                    manifest,
                },
            )?;
            if json {
                println!("{}", to_json(&outcome)?);
            }
            match outcome {
                Outcome::Done { applied, skipped } => {
                    if !json {
                        println!("applied {applied} patches ({skipped} skipped)");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Outcome::Aborted => {
                    if !json {
                        println!("session aborted");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Outcome::Conflict(report) => {
                    if !json {
                        print!("{}", apply::render_conflict(&report));
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
        Commands::Verify {
            tree,
            config,
            selftests,
            fragment,
            build_dir,
            defconfig,
            arch,
            cross_compile,
            compile,
            jobs,
            boot,
            kmx,
            json,
        } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let config = if config {
                let mut fragments: Vec<PathBuf> = manifest
                    .config
                    .fragments
                    .iter()
                    .map(|f| manifest.dir.join(f))
                    .collect();
                if selftests {
                    fragments.extend(
                        manifest
                            .config
                            .selftest_fragments
                            .iter()
                            .map(|f| manifest.dir.join(f)),
                    );
                }
                fragments.extend(fragment);
                Some(ConfigOptions {
                    build_dir: build_dir.unwrap_or_else(|| tree.clone()),
                    arch,
                    cross_compile,
                    defconfig,
                    fragments,
                })
            } else {
                None
            };
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            let boot = boot.then(|| verify::BootOptions {
                kmx: kmx.unwrap_or_else(|| manifest.dir.join("../testing/kernel-matrix/kmx")),
                probe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("mptcp-backport")),
            });
            let report = verify::verify(
                &manifest,
                &VerifyOptions {
                    tree,
                    config,
                    compile,
                    jobs,
                    boot,
                },
            )?;
            if json {
                println!("{}", to_json(&report)?);
            } else {
                print!("{}", verify::render_text(&report));
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Commands::Transplant {
            source,
            tree,
            sha256,
            allow_modified_source,
            json,
        } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let report = transplant::transplant(
                &manifest,
                &transplant::TransplantOptions {
                    source,
                    tree: tree.clone(),
                    sha256,
                    allow_modified_source,
                },
            )?;
            for w in &report.warnings {
                eprintln!("mptcp-backport: warning: {w}");
            }
            if json {
                println!("{}", to_json(&report)?);
            } else if report.changed {
                print!("{}", transplant::render_provenance(&report.provenance));
                println!(
                    "transplant done; provenance in {}",
                    tree.join(transplant::PROVENANCE_FILE).display()
                );
            } else {
                println!(
                    "already transplanted with the same inputs ({}); nothing to do",
                    report.provenance.time
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::ComparePathset {
            tree_a,
            tree_b,
            json,
        } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let c = transplant::compare_pathsets(&manifest, &tree_a, &tree_b)?;
            if json {
                println!("{}", to_json(&c)?);
            } else {
                println!("{}  {}", c.a_sha256, c.a.display());
                println!("{}  {}", c.b_sha256, c.b.display());
                for f in &c.only_in_a {
                    println!("only in A: {f}");
                }
                for f in &c.only_in_b {
                    println!("only in B: {f}");
                }
                for f in &c.differ {
                    println!("differs:   {f}");
                }
                println!(
                    "{}",
                    if c.same {
                        "path sets are identical"
                    } else {
                        "path sets DIFFER"
                    }
                );
            }
            Ok(if c.same {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Commands::PathsetDigest { source } => {
            let manifest = find_manifest(cli.manifest.as_deref())?;
            let (version, digest, files) = transplant::source_digest(&manifest, &source)?;
            println!("[[transplant.source]]\nversion = \"{version}\"\npathset_sha256 = \"{digest}\"  # {files} files");
            Ok(ExitCode::SUCCESS)
        }
        Commands::Probe { json } => {
            let report = probe::probe();
            if json {
                println!("{}", to_json(&report)?);
            } else {
                print!("{}", probe::render_text(&report));
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "bench")]
        Commands::Bench {
            commits,
            dir,
            field_limit,
        } => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))?;
            let mut out = std::io::stdout();
            let ratio = bench(
                &BenchOptions {
                    commits,
                    dir,
                    field_limit,
                },
                &mut out,
            )?;
            Ok(if ratio >= 20.0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
