// SPDX-License-Identifier: MIT OR Apache-2.0
//! `verify`: does a kernel tree have the MPTCP features the manifest expects, does the config
//! fragment survive the kernel's own kconfig (`merge_config.sh` + `make olddefconfig`) into the
//! final `.config`, and (optionally) does `net/mptcp/` compile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Kernel configuration part of `verify`.
#[derive(Debug, Clone)]
pub struct ConfigOptions {
    /// Output directory (`O=`); the tree itself for in-tree builds.
    pub build_dir: PathBuf,
    /// `ARCH=` for make (default: the host).
    pub arch: Option<String>,
    /// `CROSS_COMPILE=` for make.
    pub cross_compile: Option<String>,
    /// Target used when the build directory has no `.config` yet.
    pub defconfig: String,
    /// Fragments to merge, in order.
    pub fragments: Vec<PathBuf>,
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub tree: PathBuf,
    pub config: Option<ConfigOptions>,
    /// Also build `net/mptcp/` (needs `config`).
    pub compile: bool,
    pub jobs: usize,
    /// Build and boot the tree with kmx and run `probe` in the guest.
    pub boot: Option<BootOptions>,
}

/// `verify --boot`: testing/kernel-matrix/kmx and the binary to run as `probe` in the guest (the
/// guest sees the host's root filesystem).
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub kmx: PathBuf,
    pub probe: PathBuf,
}

/// What the booted kernel did.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    /// `kmx build` succeeded.
    pub built: bool,
    /// Exit code of `kmx run -- mptcp-backport probe` (the probe's own, or kmx's).
    pub exit_code: Option<i32>,
    /// Probe result lines (`pass`/`FAIL`) seen in the guest output.
    pub lines: Vec<String>,
    /// Last lines of the output.
    pub output: String,
    pub ok: bool,
}

/// Result of one source-level feature check.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureResult {
    pub name: String,
    pub since: String,
    pub file: String,
    pub required: bool,
    pub present: bool,
}

/// How one fragment line ended up in the final `.config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymbolStatus {
    /// Has the requested value (or `y` for a requested `m`).
    Ok,
    /// Exists in this kernel but resolved to another value (unmet dependency…).
    Mismatch,
    /// No such Kconfig symbol here; its renamed twin is checked instead.
    Renamed,
    /// No such symbol here and the manifest lists it as optional.
    OptionalAbsent,
    /// No such Kconfig symbol in this kernel.
    NotInKernel,
}

/// One fragment symbol after kconfig.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolResult {
    pub symbol: String,
    pub requested: String,
    pub actual: Option<String>,
    pub status: SymbolStatus,
    pub fragment: String,
    pub note: String,
}

/// Config part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub build_dir: PathBuf,
    pub steps: Vec<String>,
    pub symbols: Vec<SymbolResult>,
    pub ok: bool,
}

/// Compile part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CompileReport {
    pub ok: bool,
    pub seconds: f64,
    pub output: String,
}

/// Everything `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub tree: PathBuf,
    pub kernel: String,
    pub features: Vec<FeatureResult>,
    pub missing_required: Vec<String>,
    pub config: Option<ConfigReport>,
    pub compile: Option<CompileReport>,
    /// Provenance of a transplanted tree (`.mptcp-backport.json`).
    pub provenance: Option<crate::transplant::Provenance>,
    pub boot: Option<BootReport>,
    pub ok: bool,
}

/// Check that `tree` is a Linux source tree; returns its version (e.g. `5.10.223`).
pub fn check_kernel_tree(tree: &Path) -> Result<String> {
    let makefile = fs::read_to_string(tree.join("Makefile"))
        .map_err(|_| Error::NotKernelTree(tree.to_path_buf()))?;
    let var = |name: &str| {
        makefile.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let (Some(version), Some(patchlevel)) = (var("VERSION"), var("PATCHLEVEL")) else {
        return Err(Error::NotKernelTree(tree.to_path_buf()));
    };
    if !tree.join("Kconfig").is_file() || !tree.join("net").is_dir() {
        return Err(Error::NotKernelTree(tree.to_path_buf()));
    }
    let sublevel = var("SUBLEVEL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".into());
    let extra = var("EXTRAVERSION").unwrap_or_default();
    Ok(format!("{version}.{patchlevel}.{sublevel}{extra}"))
}

/// Run the checks.
pub fn verify(manifest: &Manifest, opts: &VerifyOptions) -> Result<VerifyReport> {
    let kernel = check_kernel_tree(&opts.tree)?;
    let features = check_features(manifest, &opts.tree);
    let missing_required: Vec<String> = features
        .iter()
        .filter(|f| f.required && !f.present)
        .map(|f| f.name.clone())
        .collect();
    let config = match &opts.config {
        Some(c) => Some(check_config(manifest, &opts.tree, c)?),
        None => None,
    };
    let compile = match (&opts.config, opts.compile) {
        (Some(c), true) => Some(compile_mptcp(&opts.tree, c, opts.jobs)?),
        (None, true) => {
            return Err(Error::Usage(
                "--compile needs the configuration step (--config)".into(),
            ))
        }
        _ => None,
    };
    let provenance = crate::transplant::read_provenance(&opts.tree)?;
    let boot = match &opts.boot {
        Some(b) => Some(boot_probe(&opts.tree, b)?),
        None => None,
    };
    let ok = missing_required.is_empty()
        && config.as_ref().map(|c| c.ok).unwrap_or(true)
        && compile.as_ref().map(|c| c.ok).unwrap_or(true)
        && boot.as_ref().map(|b| b.ok).unwrap_or(true);
    Ok(VerifyReport {
        tree: opts.tree.clone(),
        kernel,
        features,
        missing_required,
        config,
        compile,
        provenance,
        boot,
        ok,
    })
}

/// `kmx build --source TREE`, then `kmx run --source TREE -- PROBE probe` (as root in the guest).
pub fn boot_probe(tree: &Path, b: &BootOptions) -> Result<BootReport> {
    if !b.kmx.is_file() {
        return Err(Error::Usage(format!(
            "--boot: no kmx at {} (give --kmx PATH)",
            b.kmx.display()
        )));
    }
    let tree = fs::canonicalize(tree).map_err(|e| Error::io(tree, e))?;
    let probe = fs::canonicalize(&b.probe).map_err(|e| Error::io(&b.probe, e))?;
    // kmx's progress (stderr) goes to the user as it happens; its stdout (the guest's output)
    // is echoed to stderr too, so that `--json` stays parseable, and kept for the report.
    let run = |args: &[&std::ffi::OsStr]| -> Result<(Option<i32>, String)> {
        use std::io::BufRead;
        let mut child = Command::new(&b.kmx)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Command {
                command: b.kmx.display().to_string(),
                message: e.to_string(),
            })?;
        let mut text = String::new();
        if let Some(out) = child.stdout.take() {
            for line in std::io::BufReader::new(out).lines() {
                let line = line.map_err(|e| Error::io(&b.kmx, e))?;
                eprintln!("{line}");
                text.push_str(&line);
                text.push('\n');
            }
        }
        let status = child.wait().map_err(|e| Error::io(&b.kmx, e))?;
        Ok((status.code(), text))
    };
    let tail = |t: &str| {
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let (code, text) = run(&["build".as_ref(), "--source".as_ref(), tree.as_os_str()])?;
    if code != Some(0) {
        return Ok(BootReport {
            built: false,
            exit_code: code,
            lines: Vec::new(),
            output: tail(&text),
            ok: false,
        });
    }
    let (code, text) = run(&[
        "run".as_ref(),
        "--source".as_ref(),
        tree.as_os_str(),
        "--".as_ref(),
        probe.as_os_str(),
        "probe".as_ref(),
    ])?;
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').trim_start())
        .filter(|l| l.starts_with("pass ") || l.starts_with("FAIL "))
        .map(str::to_string)
        .collect();
    Ok(BootReport {
        built: true,
        exit_code: code,
        ok: code == Some(0) && !lines.is_empty(),
        lines,
        output: tail(&text),
    })
}

/// Source-level checks from the manifest's `[[feature]]` list.
pub fn check_features(manifest: &Manifest, tree: &Path) -> Vec<FeatureResult> {
    let mut cache: HashMap<String, Option<String>> = HashMap::new();
    manifest
        .feature
        .iter()
        .map(|f| {
            let content = cache.entry(f.file.clone()).or_insert_with(|| {
                fs::read(tree.join(&f.file))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            });
            let present = match (content.as_deref(), &f.contains, &f.line) {
                (None, _, _) => false,
                (Some(text), Some(needle), _) => text.contains(needle.as_str()),
                (Some(text), None, Some(line)) => text.lines().any(|l| l.trim() == line.trim()),
                (Some(_), None, None) => true,
            };
            FeatureResult {
                name: f.name.clone(),
                since: f.since.clone(),
                file: f.file.clone(),
                required: f.required,
                present,
            }
        })
        .collect()
}

/// A fragment or `.config` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    pub symbol: String,
    /// `y`, `m`, `n` (for "is not set") or the literal value.
    pub value: String,
}

/// Parse `CONFIG_X=v` and `# CONFIG_X is not set` lines.
pub fn parse_config(text: &str) -> Vec<ConfigLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(sym) = rest.strip_suffix(" is not set") {
                out.push(ConfigLine {
                    symbol: sym.to_string(),
                    value: "n".into(),
                });
            }
        } else if let Some(rest) = line.strip_prefix("CONFIG_") {
            if let Some((sym, val)) = rest.split_once('=') {
                out.push(ConfigLine {
                    symbol: sym.trim().to_string(),
                    value: val.trim().to_string(),
                });
            }
        }
    }
    out
}

/// Every `config`/`menuconfig` symbol defined by the tree's Kconfig files.
pub fn kconfig_symbols(tree: &Path) -> HashSet<String> {
    let mut symbols = HashSet::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if !name.starts_with('.') && name != "Documentation" {
                    stack.push(path);
                }
            } else if name.starts_with("Kconfig") {
                if let Ok(text) = fs::read_to_string(&path) {
                    for line in text.lines() {
                        let t = line.trim();
                        let sym = t
                            .strip_prefix("config ")
                            .or_else(|| t.strip_prefix("menuconfig "));
                        if let Some(sym) = sym {
                            symbols.insert(sym.trim().to_string());
                        }
                    }
                }
            }
        }
    }
    symbols
}

fn make(tree: &Path, c: &ConfigOptions, extra: &[&str]) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(tree);
    let same = fs::canonicalize(&c.build_dir).ok() == fs::canonicalize(tree).ok();
    if !same {
        cmd.arg(format!("O={}", c.build_dir.display()));
    }
    if let Some(a) = &c.arch {
        cmd.arg(format!("ARCH={a}"));
    }
    if let Some(x) = &c.cross_compile {
        cmd.arg(format!("CROSS_COMPILE={x}"));
    }
    cmd.args(extra)
        .env_remove("KCONFIG_CONFIG")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    cmd
}

fn run_step(mut cmd: Command, label: &str, steps: &mut Vec<String>) -> Result<String> {
    let out = cmd.output().map_err(|e| Error::Command {
        command: label.into(),
        message: format!("{e} (install make, gcc, flex and bison)"),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        return Err(Error::Command {
            command: label.into(),
            message: lines[lines.len().saturating_sub(20)..].join("\n"),
        });
    }
    steps.push(label.to_string());
    Ok(text)
}

/// Merge the fragments with the kernel's own tools and check every symbol in `.config`.
pub fn check_config(manifest: &Manifest, tree: &Path, c: &ConfigOptions) -> Result<ConfigReport> {
    fs::create_dir_all(&c.build_dir).map_err(|e| Error::io(&c.build_dir, e))?;
    let build = fs::canonicalize(&c.build_dir).map_err(|e| Error::io(&c.build_dir, e))?;
    let c = ConfigOptions {
        build_dir: build.clone(),
        ..c.clone()
    };
    let config_path = build.join(".config");
    let mut steps = Vec::new();
    if !config_path.is_file() {
        run_step(
            make(tree, &c, &["-s", &c.defconfig]),
            &format!("make {}", c.defconfig),
            &mut steps,
        )?;
    }
    let mut merge = Command::new("sh");
    merge
        .arg(tree.join("scripts/kconfig/merge_config.sh"))
        .arg("-m")
        .arg("-O")
        .arg(&build)
        .arg(&config_path);
    merge
        .args(&c.fragments)
        .current_dir(tree)
        .env_remove("KCONFIG_CONFIG")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    run_step(merge, "scripts/kconfig/merge_config.sh -m", &mut steps)?;
    run_step(
        make(tree, &c, &["-s", "olddefconfig"]),
        "make olddefconfig",
        &mut steps,
    )?;

    let final_text = fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let actual: HashMap<String, String> = parse_config(&final_text)
        .into_iter()
        .map(|l| (l.symbol, l.value))
        .collect();
    let known = kconfig_symbols(tree);
    let mut requested: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut order = Vec::new();
    for frag in &c.fragments {
        let text = fs::read_to_string(frag).map_err(|e| Error::io(frag, e))?;
        let label = frag
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for l in parse_config(&text) {
            if !requested.contains_key(&l.symbol) {
                order.push(l.symbol.clone());
            }
            requested.insert(l.symbol.clone(), (l.value, label.clone()));
        }
    }
    let partner = |sym: &str| -> Option<String> {
        manifest.config.rename.iter().find_map(|r| {
            if r.old == sym {
                Some(r.new.clone())
            } else if r.new == sym {
                Some(r.old.clone())
            } else {
                None
            }
        })
    };
    let mut symbols = Vec::new();
    for sym in order {
        let (want, fragment) = requested[&sym].clone();
        let got = actual.get(&sym).cloned();
        let (status, note) = if !known.contains(&sym) {
            match partner(&sym) {
                Some(p) if known.contains(&p) => (
                    SymbolStatus::Renamed,
                    format!("not in this kernel; CONFIG_{p} is its name here"),
                ),
                _ if manifest.config.optional.contains(&sym) => (
                    SymbolStatus::OptionalAbsent,
                    "not in this kernel (optional)".into(),
                ),
                _ => (
                    SymbolStatus::NotInKernel,
                    "no such Kconfig symbol in this tree".into(),
                ),
            }
        } else if value_ok(&want, got.as_deref()) {
            let note = if want == "m" && got.as_deref() == Some("y") {
                "built in (y) where m was asked".into()
            } else {
                String::new()
            };
            (SymbolStatus::Ok, note)
        } else {
            let mut note =
                "resolved differently by kconfig (unmet dependency or a select)".to_string();
            if sym == "MPTCP_IPV6" && actual.get("IPV6").map(String::as_str) == Some("m") {
                note = "CONFIG_IPV6=m: MPTCP_IPV6 depends on IPV6=y, so MPTCP over IPv6 is silently off".into();
            }
            (SymbolStatus::Mismatch, note)
        };
        symbols.push(SymbolResult {
            symbol: sym,
            requested: want,
            actual: got,
            status,
            fragment,
            note,
        });
    }
    // A renamed symbol passes only if its twin (also in the fragments) resolved right.
    let ok = symbols.iter().all(|s| match s.status {
        SymbolStatus::Ok | SymbolStatus::OptionalAbsent => true,
        SymbolStatus::Renamed => partner(&s.symbol)
            .map(|p| {
                symbols
                    .iter()
                    .any(|t| t.symbol == p && t.status == SymbolStatus::Ok)
            })
            .unwrap_or(false),
        SymbolStatus::Mismatch | SymbolStatus::NotInKernel => false,
    });
    Ok(ConfigReport {
        build_dir: build,
        steps,
        symbols,
        ok,
    })
}

fn value_ok(want: &str, got: Option<&str>) -> bool {
    match (want, got) {
        ("n", None) | ("n", Some("n")) => true,
        ("m", Some("m")) | ("m", Some("y")) => true,
        (w, Some(g)) => w == g,
        _ => false,
    }
}

/// `make net/mptcp/` with the merged configuration.
pub fn compile_mptcp(tree: &Path, c: &ConfigOptions, jobs: usize) -> Result<CompileReport> {
    let build = fs::canonicalize(&c.build_dir).map_err(|e| Error::io(&c.build_dir, e))?;
    let c = ConfigOptions {
        build_dir: build,
        ..c.clone()
    };
    let jobs = format!("-j{}", jobs.max(1));
    let start = Instant::now();
    let out = make(tree, &c, &["-s", &jobs, "net/mptcp/"])
        .output()
        .map_err(|e| Error::Command {
            command: "make net/mptcp/".into(),
            message: e.to_string(),
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    Ok(CompileReport {
        ok: out.status.success(),
        seconds: start.elapsed().as_secs_f64(),
        output: lines[lines.len().saturating_sub(30)..].join("\n"),
    })
}

/// Human-readable report.
pub fn render_text(r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "mptcp-backport verify: {} (Linux {})",
        r.tree.display(),
        r.kernel
    );
    if let Some(p) = &r.provenance {
        let _ = write!(s, "\n{}", crate::transplant::render_provenance(p));
    }
    let _ = writeln!(
        s,
        "\nText checks (the source has the text; says nothing about what a built kernel does — `--boot` checks that):"
    );
    for f in &r.features {
        let state = match (f.present, f.required) {
            (true, _) => "has",
            (false, true) => "LACKS",
            (false, false) => "lacks",
        };
        let kind = if f.required { "" } else { " (info)" };
        let _ = writeln!(
            s,
            "  {state:<8} {}{kind}  [{}; since {}]",
            f.name, f.file, f.since
        );
    }
    if let Some(c) = &r.config {
        let _ = writeln!(
            s,
            "\nConfiguration ({}; {}):",
            c.build_dir.display(),
            c.steps.join(" -> ")
        );
        for sym in &c.symbols {
            let actual = sym.actual.as_deref().unwrap_or("(unset)");
            let status = match sym.status {
                SymbolStatus::Ok => "ok",
                SymbolStatus::Mismatch => "MISMATCH",
                SymbolStatus::Renamed => "renamed",
                SymbolStatus::OptionalAbsent => "absent",
                SymbolStatus::NotInKernel => "NO-SYMBOL",
            };
            let note = if sym.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", sym.note)
            };
            let _ = writeln!(
                s,
                "  {status:<9} CONFIG_{}={} -> {actual}  [{}]{note}",
                sym.symbol, sym.requested, sym.fragment
            );
        }
    }
    if let Some(c) = &r.compile {
        let _ = writeln!(
            s,
            "\nCompile net/mptcp/: {} in {:.0} s",
            if c.ok { "ok" } else { "FAILED" },
            c.seconds
        );
        if !c.ok {
            let _ = writeln!(s, "{}", c.output);
        }
    }
    if let Some(b) = &r.boot {
        let _ = writeln!(
            s,
            "\nBoot (kmx) and probe in the guest: {}",
            match (b.built, b.ok) {
                (false, _) => "BUILD FAILED".to_string(),
                (true, true) => "all checks pass".to_string(),
                (true, false) => format!("FAILED (exit {:?})", b.exit_code),
            }
        );
        for l in &b.lines {
            let _ = writeln!(s, "  {l}");
        }
        if !b.ok {
            let _ = writeln!(s, "{}", b.output);
        }
    }
    let mut parts = vec![if r.missing_required.is_empty() {
        "text checks: the source has every required feature".to_string()
    } else {
        format!(
            "text checks: the source LACKS {} required features",
            r.missing_required.len()
        )
    }];
    if let Some(c) = &r.config {
        parts.push(format!("config: {}", if c.ok { "ok" } else { "NOT OK" }));
    }
    if let Some(c) = &r.compile {
        parts.push(format!(
            "compile net/mptcp/: {}",
            if c.ok { "ok" } else { "FAILED" }
        ));
    }
    match &r.boot {
        Some(b) => parts.push(format!(
            "boot probe: {}",
            if b.ok { "pass" } else { "FAILED" }
        )),
        None => parts.push("not booted (add --boot to check the running kernel)".into()),
    }
    let _ = writeln!(
        s,
        "\nResult: {} ({})",
        if r.ok { "pass" } else { "FAIL" },
        parts.join("; ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines_parse() {
        let l = parse_config(
            "CONFIG_MPTCP=y\n# CONFIG_KUNIT is not set\n# comment\nCONFIG_CMDLINE=\"a b\"\n",
        );
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[1],
            ConfigLine {
                symbol: "KUNIT".into(),
                value: "n".into()
            }
        );
        assert_eq!(l[2].value, "\"a b\"");
    }

    #[test]
    fn values() {
        assert!(value_ok("m", Some("y")));
        assert!(!value_ok("y", Some("m")));
        assert!(value_ok("n", None));
        assert!(!value_ok("y", None));
    }

    #[test]
    fn non_kernel_tree_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_kernel_tree(dir.path()),
            Err(Error::NotKernelTree(_))
        ));
        fs::write(
            dir.path().join("Makefile"),
            "VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 66\nEXTRAVERSION =\n",
        )
        .unwrap();
        fs::write(dir.path().join("Kconfig"), "").unwrap();
        assert!(check_kernel_tree(dir.path()).is_err());
        fs::create_dir(dir.path().join("net")).unwrap();
        assert_eq!(check_kernel_tree(dir.path()).unwrap(), "5.10.66");
    }
}
