// SPDX-License-Identifier: MIT OR Apache-2.0
//! Man pages and shell completions from the CLI definition (src/args.rs), written on the
//! build host so that cross builds get them without running the target binary. Output, laid
//! out as under /usr, in `$OUT_DIR/share/` and, when set, in `$MPTCP_AGENT_GEN_DIR/share/`
//! (the Yocto recipe and the Buildroot package set it and install from there):
//!
//!   share/man/man1/mptcp-agent.1, mptcp-agent-COMMAND.1
//!   share/bash-completion/completions/mptcp-agent
//!   share/zsh/site-functions/_mptcp-agent
//!   share/fish/vendor_completions.d/mptcp-agent.fish

#[allow(dead_code)]
#[path = "src/args.rs"]
mod args;

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

use clap::CommandFactory;
use clap_complete::Shell;

const BIN: &str = "mptcp-agent";

/// Appended to the main page: what the options cannot say.
const MAIN_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/mptcp-agent/agent.toml\fR
The config file (\fBmptcp-agent run --config\fR for another); every key in docs/config-reference.md.
.TP
\fI/var/lib/mptcp-agent/\fR
The last good config (\fB$STATE_DIRECTORY\fR under systemd).
.TP
\fI/run/mptcp-agent/metrics.prom\fR
Prometheus metrics for node_exporter's textfile collector, when \fB[metrics] enabled = true\fR (docs/metrics.md).
.SH ENVIRONMENT
.TP
\fBDBUS_SYSTEM_BUS_ADDRESS\fR
The system bus to serve io.github.meta_mptcp.Agent1 on and to find NetworkManager.
.TP
\fBRUST_LOG\fR
Log filter; \fB--log-level\fR, \fB-v\fR and \fB[log] level\fR are the usual way.
.SH SEE ALSO
\fBip-mptcp\fR(8), \fBnmcli\fR(1), \fBmptcpd\fR(8).
The guides in the docs/ directory of meta-mptcp: cli.md, config-reference.md, dbus-api.md, metrics.md.
"#;

fn man_pages(cmd: &clap::Command, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // One page per command, as `git` does: mptcp-agent-status.1 and so on.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        clap_mangen::Man::new(sub.clone()).generate_to(dir)?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    page.extend_from_slice(MAIN_EXTRA.as_bytes());
    let mut f = std::fs::File::create(dir.join(format!("{BIN}.1")))?;
    f.write_all(&page)
}

fn completions(cmd: &mut clap::Command, share: &Path) -> io::Result<()> {
    for (shell, dir, name) in [
        (Shell::Bash, "bash-completion/completions", BIN.to_string()),
        (Shell::Zsh, "zsh/site-functions", format!("_{BIN}")),
        (
            Shell::Fish,
            "fish/vendor_completions.d",
            format!("{BIN}.fish"),
        ),
    ] {
        let dir = share.join(dir);
        std::fs::create_dir_all(&dir)?;
        let mut out = Vec::new();
        clap_complete::generate(shell, cmd, BIN, &mut out);
        std::fs::write(dir.join(name), out)?;
    }
    Ok(())
}

fn generate(share: &Path) -> io::Result<()> {
    let mut cmd = args::Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .disable_version_flag(true);
    cmd.build();
    man_pages(&cmd, &share.join("man/man1"))?;
    completions(&mut cmd, share)
}

/// Release builds abort on panic (`panic = "abort"` in the workspace's `profile.release`), so
/// nothing unwinds through the agent's frames: its unwind tables (`.eh_frame`, 13 % of the
/// stripped binary) only feed panic backtraces, which a stripped binary cannot symbolize, and
/// debuggers. No profile setting drops them and std's come precompiled, so the linker discards
/// them; a link argument from here reaches the Yocto and Buildroot builds, which set their own
/// RUSTFLAGS. GNU ld and lld take this script, gold does not: `MPTCP_AGENT_KEEP_UNWIND_TABLES=1`
/// keeps the tables (for gold, and for backtraces from core dumps). Debug and test builds keep
/// them.
const NO_UNWIND_TABLES: &str = "SECTIONS {
  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.gcc_except_table .gcc_except_table.*) }
} INSERT AFTER .text;
";

fn drop_unwind_tables(out: &Path) {
    println!("cargo:rerun-if-env-changed=MPTCP_AGENT_KEEP_UNWIND_TABLES");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("PROFILE") != "release"
        || var("CARGO_CFG_TARGET_OS") != "linux"
        || !var("MPTCP_AGENT_KEEP_UNWIND_TABLES").is_empty()
    {
        return;
    }
    let script = out.join("no-unwind-tables.ld");
    if let Err(e) = std::fs::write(&script, NO_UNWIND_TABLES) {
        panic!("writing {}: {e}", script.display());
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
}

fn main() {
    println!("cargo:rerun-if-changed=src/args.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MPTCP_AGENT_GEN_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    drop_unwind_tables(&out);
    let mut roots = vec![out];
    if let Some(d) = std::env::var_os("MPTCP_AGENT_GEN_DIR").filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(d));
    }
    for root in roots {
        let share = root.join("share");
        if let Err(e) = generate(&share) {
            panic!(
                "writing man pages and completions to {}: {e}",
                share.display()
            );
        }
    }
}
