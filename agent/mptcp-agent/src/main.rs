// SPDX-License-Identifier: MIT OR Apache-2.0
//! mptcp-agent: keeps the kernel's MPTCP endpoints, limits, sysctls and policy routes in
//! line with the links NetworkManager (or the kernel alone) reports as usable.

mod args;
mod cli;
mod config_file;
mod daemon;
mod error;
mod executor;
mod explain;
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
#[cfg(test)]
mod test_fixtures;
mod walltime;

use std::process::ExitCode;

use args::{Cli, Command};
use clap::{CommandFactory, Parser};
use mptcp_agent_core::config::LogLevel;

fn main() -> ExitCode {
    let args = Cli::parse();
    let cli_level = match args.verbose {
        0 => args.log_level.as_deref().and_then(LogLevel::from_name),
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
        Some(Command::Explain {
            interface,
            json,
            config,
        }) => explain::explain(interface.as_deref(), json, &config),
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

#[cfg(test)]
mod tests {
    use mptcp_agent_core::config::LogLevel;

    use crate::args::{DEFAULT_CONFIG, LOG_LEVELS};

    /// args.rs stands alone (build.rs includes it); its copies must match.
    #[test]
    fn args_copies_match() {
        assert_eq!(DEFAULT_CONFIG, "/etc/mptcp-agent/agent.toml");
        let names: Vec<&str> = LogLevel::NAMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(LOG_LEVELS.to_vec(), names);
    }

    /// build.rs's man pages and completions: the main page names every command (and has a
    /// page per command), every shell's completion offers every command and the log levels.
    #[test]
    fn man_pages_and_completions_name_every_command() {
        use clap::CommandFactory;
        let share = std::path::Path::new(env!("OUT_DIR")).join("share");
        let read =
            |p: &str| std::fs::read_to_string(share.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let main = read("man/man1/mptcp-agent.1");
        assert!(
            main.starts_with(".ie \\n(.g .ds Aq"),
            "not roff: {main:.80}"
        );
        assert!(
            main.contains(".SH SUBCOMMANDS") && main.contains(".SH FILES"),
            "{main}"
        );
        let bash = read("bash-completion/completions/mptcp-agent");
        let zsh = read("zsh/site-functions/_mptcp-agent");
        let fish = read("fish/vendor_completions.d/mptcp-agent.fish");
        let cli = crate::args::Cli::command();
        let subs: Vec<&str> = cli.get_subcommands().map(|s| s.get_name()).collect();
        assert!(subs.len() >= 7, "{subs:?}");
        for sub in subs {
            // clap_mangen writes a subcommand as \fBNAME\fR in SUBCOMMANDS.
            let roff_name = sub.replace('-', "\\-");
            assert!(
                main.contains(&format!("mptcp\\-agent\\-{roff_name}(1)")),
                "mptcp-agent.1 does not name {sub}:\n{main}"
            );
            let page = read(&format!("man/man1/mptcp-agent-{sub}.1"));
            assert!(page.contains(".SH NAME"), "{sub}: {page}");
            for (shell, text) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
                assert!(text.contains(sub), "{shell} completion lacks {sub}");
            }
        }
        for level in LOG_LEVELS {
            assert!(bash.contains(level) && zsh.contains(level) && fish.contains(level));
        }
    }
}
