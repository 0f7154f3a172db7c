// SPDX-License-Identifier: MIT OR Apache-2.0
//! mptcp-agent: keeps the kernel's MPTCP endpoints, limits, sysctls and policy routes in
//! line with the links NetworkManager (or the kernel alone) reports as usable.

mod cli;
mod config_file;
mod daemon;
mod error;
mod executor;
mod mptcpd;
mod nm;
mod notify;
mod ota;
mod pm;
mod rtnl;
mod service;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mptcp-agent",
    about = "Keeps MPTCP endpoints right on devices with several uplinks",
    disable_version_flag = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print the version and what this kernel's MPTCP offers.
    #[arg(long, short = 'V')]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
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
    /// Exit status: 0 shown, 3 agent not reachable.
    Status {
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Make the running agent re-read, check and apply its config file. Exit status: 0
    /// applied, 1 rejected or rolled back (reason on stderr), 3 agent not reachable, 4 access denied.
    Reload,
    /// Print the running agent's events (endpoint changes, subflow events, config
    /// outcomes, link state changes) until interrupted.
    Monitor {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file without applying it. Exit status: 0 valid, 1 invalid
    /// (positions on stderr), 2 usage error, 3 unreadable, 4 unsafe ownership or permissions.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn init_logging() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,netlink_packet_route=error"),
    )
    .format_timestamp_millis()
    .init();
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match args.command {
        Some(Command::CheckConfig { file }) => cli::check_config(&file),
        Some(Command::Status { json }) => cli::status(json),
        Some(Command::Reload) => cli::reload(),
        Some(Command::Monitor { json }) => cli::monitor(json),
        None if args.version => cli::version(),
        None => {
            let _ = Cli::command().print_help();
            ExitCode::from(2)
        }
        Some(Command::Run { config, state_dir }) => {
            init_logging();
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
