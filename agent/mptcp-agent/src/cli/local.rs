// SPDX-License-Identifier: MIT OR Apache-2.0
//! The verbs that need no running agent: `check-config` (with `--diff`, a dry run against
//! this device's state) and `--version`.

use std::{path::Path, process::ExitCode};

use super::{
    runtime, say,
    text::{wrap, yes, WIDTH},
    EXIT_UNREACHABLE,
};
use crate::ota;

/// `check-config FILE|-` and, with `diff`, what applying it would change now.
pub fn check_config(file: &Path, diff: bool) -> ExitCode {
    let stdin = file.as_os_str() == "-";
    let shown = if stdin {
        crate::config_file::STDIN_NAME.to_string()
    } else {
        file.display().to_string()
    };
    let loaded = if stdin {
        crate::config_file::read_stdin()
            .and_then(|text| crate::config_file::load_text(text, &shown))
            .map(|(config, text)| ota::Loaded {
                config,
                digest: ota::digest(&text),
                text,
            })
    } else {
        ota::load(file)
    };
    let l = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
    };
    say(&format!(
        "{shown}: valid (schema_version {}, {} link rule(s), {})",
        mptcp_agent_core::config::SCHEMA_VERSION,
        l.config.links.len(),
        l.digest
    ));
    if !diff {
        return ExitCode::SUCCESS;
    }
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(crate::preview::preview(&l.config)) {
        Ok(p) => {
            say(render_preview(&shown, &p).trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mptcp-agent: cannot read this device's state for --diff: {e}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
    }
}

pub fn render_preview(shown: &str, p: &crate::preview::Preview) -> String {
    let mut out = String::new();
    out.push_str(&wrap(
        &format!(
            "{} (dry run: nothing was changed)",
            if p.steps.is_empty() {
                format!(
                    "Applying {shown} now ({} mode) would change nothing",
                    p.mode
                )
            } else {
                format!(
                    "Applying {shown} now ({} mode) would make {} change(s)",
                    p.mode,
                    p.steps.len()
                )
            }
        ),
        "",
        "",
        WIDTH,
    ));
    for s in &p.steps {
        out.push_str(&wrap(&s.op.to_string(), "  ", "    ", WIDTH));
        out.push_str(&wrap(
            &format!("because {}", s.why),
            "      ",
            "      ",
            WIDTH,
        ));
    }
    if !p.missing.is_empty() {
        out.push_str(&wrap(
            &format!("incomplete: no answer yet from {}", p.missing.join(", ")),
            "note: ",
            "      ",
            WIDTH,
        ));
    }
    if !p.diagnostics.is_empty() {
        out.push_str("with this config the agent would also report:\n");
        for d in &p.diagnostics {
            out.push_str(&wrap(&d.to_string(), "  ", "    ", WIDTH));
        }
    }
    out
}

/// The version, and what this network namespace's kernel MPTCP offers (probed over
/// generic netlink like the daemon does).
pub fn version() -> ExitCode {
    say(&format!("mptcp-agent {}", env!("CARGO_PKG_VERSION")));
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    match rt.block_on(mptcp_genl::PmHandle::connect()) {
        Ok(pm) => {
            let c = pm.capabilities();
            let core = crate::pm::caps_of(c);
            say(&format!("kernel MPTCP: {}", c.generation()));
            let cmds: Vec<&str> = c.commands().iter().map(|c| c.name()).collect();
            say(&format!("  path-manager commands: {}", cmds.join(" ")));
            say(&format!(
                "  set_flags {}, events {}, fullmesh {}",
                yes(core.set_flags),
                yes(core.events),
                yes(core.fullmesh)
            ));
            let sysctls: Vec<&str> = c.sysctls.iter().map(String::as_str).collect();
            say(&format!(
                "  net.mptcp sysctls: {}",
                if sysctls.is_empty() {
                    "-".to_string()
                } else {
                    sysctls.join(" ")
                }
            ));
            let laminar = rt.block_on(crate::pm::probe_laminar());
            say(&format!("  laminar {} ({laminar})", yes(laminar.known())));
            let blackhole = std::fs::read_to_string("/proc/net/netstat")
                .map_err(|e| format!("cannot read /proc/net/netstat: {e}"))
                .and_then(|t| mptcp_agent_core::blackhole::counter_of(&t));
            say(&match blackhole {
                Ok(n) => format!("  blackhole detection: yes (MPTcpExtBlackhole {n})"),
                Err(why) => format!("  blackhole detection: no: {why}"),
            });
        }
        Err(e) => {
            say(&format!("kernel MPTCP: not available here ({e})"));
        }
    }
    ExitCode::SUCCESS
}
