// SPDX-License-Identifier: MIT OR Apache-2.0
//! mptcp-agent: keeps the kernel's MPTCP endpoints, limits, sysctls and policy routes in
//! line with the links NetworkManager (or the kernel alone) reports as usable.

mod config_file;
mod daemon;
mod error;
mod executor;
mod mptcpd;
mod nm;
mod pm;
mod rtnl;
mod cli;
mod notify;
mod ota;
mod service;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mptcp-agent", version, about = "Keeps MPTCP endpoints right on devices with several uplinks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (the daemon).
    Run {
        /// Config file.
        #[arg(long, short, default_value = config_file::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Check a config file without applying it. Exit status: 0 valid, 1 invalid
    /// (positions on stderr), 3 unreadable, 4 unsafe ownership or permissions.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,netlink_packet_route=error"))
        .format_timestamp_millis()
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match config_file::load_file(&file) {
            Ok(cfg) => {
                println!(
                    "{}: valid (schema_version {}, {} link rule(s))",
                    file.display(),
                    mptcp_agent_core::config::SCHEMA_VERSION,
                    cfg.links.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
            }
        },
        Command::Run { config } => {
            init_logging();
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    log::error!("starting the tokio runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(daemon::run(daemon::RunOptions { config })) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
