// SPDX-License-Identifier: MIT OR Apache-2.0
//! mptcp-agent: keeps the kernel's MPTCP endpoints, limits, sysctls and policy routes in
//! line with the links NetworkManager (or the kernel alone) reports as usable.

mod cli;
mod config_file;
mod daemon;
mod error;
mod executor;
mod logging;
mod metrics;
mod mptcpd;
mod nm;
mod notify;
mod ota;
mod pm;
mod preview;
mod rtnl;
mod service;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};
use mptcp_agent_core::config::LogLevel;

#[derive(Parser)]
#[command(
    name = "mptcp-agent",
    about = "Keeps MPTCP endpoints right on devices with several uplinks",
    disable_version_flag = true,
    disable_help_subcommand = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print the version and what this kernel's MPTCP offers.
    #[arg(long, short = 'V')]
    version: bool,
    /// More log output from `run`: -v debug, -vv trace. Overrides the config's [log] level.
    #[arg(long, short = 'v', action = clap::ArgAction::Count, global = true, conflicts_with = "log_level")]
    verbose: u8,
    /// Log level of `run`: error, warning, info, debug or trace. Overrides the config's
    /// [log] level.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = parse_level)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Option<Command>,
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    LogLevel::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = LogLevel::NAMES.iter().map(|(n, _)| *n).collect();
        format!("use one of {}", names.join(", "))
    })
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the daemon).
    Run {
        /// Config file.
        #[arg(long, short, default_value = config_file::DEFAULT_PATH)]
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
    /// Print help for the agent or for one of its commands.
    Help {
        /// The command.
        command: Option<String>,
    },
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let cli_level = match args.verbose {
        0 => args.log_level,
        1 => Some(LogLevel::Debug),
        _ => Some(LogLevel::Trace),
    };
    match args.command {
        Some(Command::CheckConfig { file, diff }) => cli::check_config(&file, diff),
        Some(Command::Status { json }) => cli::status(json),
        Some(Command::Reload) => cli::reload(),
        Some(Command::Resync) => cli::resync(),
        Some(Command::Help { command }) => help(command.as_deref()),
        Some(Command::Monitor { json }) => cli::monitor(json),
        None if args.version => cli::version(),
        None => {
            let _ = Cli::command().print_help();
            ExitCode::from(2)
        }
        Some(Command::Run { config, state_dir }) => {
            logging::init(cli_level);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("starting the tokio runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(daemon::run(daemon::RunOptions {
                config,
                state_dir: state_dir.unwrap_or_else(ota::default_state_dir),
            })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `mptcp-agent help [COMMAND]`.
fn help(command: Option<&str>) -> ExitCode {
    let mut cli = Cli::command();
    // Propagates the global options (-v, --log-level) into each command's help.
    cli.build();
    let shown = match command {
        None => cli.print_help(),
        Some(name) => match cli.find_subcommand_mut(name) {
            Some(sub) => sub
                .clone()
                .bin_name(format!("mptcp-agent {name}"))
                .print_help(),
            None => {
                eprintln!("mptcp-agent: no command {name:?}; see `mptcp-agent help`");
                return ExitCode::from(2);
            }
        },
    };
    match shown {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
