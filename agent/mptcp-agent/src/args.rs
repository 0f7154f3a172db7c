// SPDX-License-Identifier: MIT OR Apache-2.0
//! The command line. Kept free of the agent's other modules: build.rs includes this file to
//! write the man pages and shell completions (docs/cli.md) without running the binary, so
//! cross builds get them too.

use std::{ffi::OsStr, path::PathBuf};

use clap::{
    builder::{PossibleValue, TypedValueParser},
    error::ErrorKind,
    Parser, Subcommand,
};

/// The config file `run` reads unless told otherwise (also in conf/systemd's ExecStart).
pub const DEFAULT_CONFIG: &str = "/etc/mptcp-agent/agent.toml";

/// The names `--log-level` takes (LogLevel::NAMES of the core; a test keeps them equal).
pub const LOG_LEVELS: [&str; 5] = ["error", "warning", "info", "debug", "trace"];

/// `--log-level`: one of LOG_LEVELS, listed in completions and man page.
#[derive(Clone, Copy)]
pub struct LevelParser;

impl TypedValueParser for LevelParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        match value.to_str() {
            Some(v) if LOG_LEVELS.contains(&v) => Ok(v.to_string()),
            _ => Err(clap::Error::raw(
                ErrorKind::InvalidValue,
                format!(
                    "invalid value {:?} for --log-level: use one of {}\n",
                    value.to_string_lossy(),
                    LOG_LEVELS.join(", ")
                ),
            )
            .with_cmd(cmd)),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(LOG_LEVELS.iter().map(PossibleValue::new)))
    }
}

#[derive(Parser)]
#[command(
    name = "mptcp-agent",
    about = "Keeps MPTCP endpoints right on devices with several uplinks",
    disable_version_flag = true,
    disable_help_subcommand = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Print the version and what this kernel's MPTCP offers.
    #[arg(long, short = 'V')]
    pub version: bool,
    /// More log output from `run`: -v debug, -vv trace. Overrides the config's [log] level.
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true, conflicts_with = "log_level")]
    pub verbose: u8,
    /// Log level of `run`: error, warning, info, debug or trace. Overrides the config's
    /// [log] level.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = LevelParser)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the agent (the daemon).
    Run {
        /// Config file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Where the last good config is kept [default: $STATE_DIRECTORY or /var/lib/mptcp-agent].
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Show the running agent's links, endpoints, limits, kernel capabilities and config.
    /// Exit status: 0 every configured link healthy, 5 a configured link is refused or
    /// degraded (for health checks), 3 agent not reachable.
    Status {
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Make the running agent re-read, check and apply its config file. Exit status: 0
    /// applied, 1 rejected or rolled back (reason on stderr), 3 agent not reachable, 4 access denied.
    Reload,
    /// Make the running agent read the kernel state again, retry failed operations now and
    /// reconcile. Exit status: 0 done, 1 failed (reason on stderr), 3 agent not reachable,
    /// 4 access denied.
    Resync,
    /// Print the running agent's events (endpoint changes, subflow events, config
    /// outcomes, link state changes) until interrupted.
    Monitor {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file without applying it. Exit status: 0 valid, 1 invalid
    /// (positions on stderr), 2 usage error, 3 unreadable, 4 unsafe ownership or permissions
    /// (or a symlink to a file that cannot be a config).
    CheckConfig {
        /// The file to check; `-` reads standard input.
        file: PathBuf,
        /// Also print what applying the file would change on this device now (endpoints,
        /// limits, sysctls, policy routes and rules). Reads the kernel and NetworkManager;
        /// changes nothing.
        #[arg(long)]
        diff: bool,
    },
    /// Why each link has or lacks an MPTCP endpoint: kernel capabilities, NetworkManager's
    /// state and flags, routes, limits, endpoint ids, backoff, coexistence with
    /// NetworkManager's MPTCP and mptcpd, and the one thing to change. Asks the running
    /// agent; without one, reads the kernel and NetworkManager and reasons with the config
    /// file. Exit status: 0 shown, 1 no such link, 3 neither the agent nor the kernel could
    /// be read.
    Explain {
        /// Only this link.
        interface: Option<String>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Config file to reason with when no agent is running.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print help for the agent or for one of its commands.
    Help {
        /// The command.
        command: Option<String>,
    },
}
